/*
 * test_face_detect.c — face detection and landmarks on real photos:
 *   - our decode of the raw regressions ("462") with our priors equals the model's own "boxes" at 320x240;
 *   - detection/dlib (43 hand-drawn boxes in 9 photos): recall >= 95 % at IoU >= 0.3, <= 1 false positive
 *     per image, dogs.jpg has no face; detection/compreface (46 nose points): recall >= 95 %;
 *   - landmark sanity: the five points lie inside the box, in the right order;
 *   - other working sizes, options and error paths.
 */
#include "face/face.h"
#include "facekit.h"
#include "fk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *models_dir(void) {
    const char *d = getenv("FK_MODELS_DIR");
    return d && *d ? d : "models";
}

static fk_image_t *load(const char *path) {
    fk_image_t *img = NULL;
    char err[256] = "";
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    int rc = fk_image_load(path, &d, &img, err, sizeof err);
    if (rc) fprintf(stderr, "cannot load %s: %s %s\n", path, fk_status_str(rc), err);
    FK_CHECK_INT(rc, FK_OK);
    return img;
}

/* fr_detect at 320x240: the model's "boxes" against our decode of "462" with fk__rfb_priors. */
static void test_prior_decode(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/faceplugin/fr_detect.onnx", models_dir());
    static const char *const outs[3] = {"scores", "boxes", "462"};
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.outputs = outs;
    o.n_outputs = 3;
    fk_nn_model_t *m = NULL;
    int rc = fk_nn_model_open(path, &o, &m);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) {
        fprintf(stderr, "%s\n", fk_nn_model_errmsg(m));
        fk_nn_model_close(m);
        return;
    }
    int n = fk__rfb_priors(320, 240, NULL);
    FK_CHECK_INT(n, 4420);
    FK_CHECK_INT(fk_nn_model_output_numel(m, 1), (size_t)n * 4);
    float *pri = malloc((size_t)n * 16), *in = malloc(3 * 320 * 240 * 4);
    float *sc = malloc((size_t)n * 8), *bx = malloc((size_t)n * 16), *loc = malloc((size_t)n * 16);
    fk__rfb_priors(320, 240, pri);
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/detection/dlib/2008_002470.jpg", fk_t_data_dir());
    fk_image_t *img = load(ip);
    fk_nn_session_t *s = NULL;
    if (img && fk_nn_session_create(m, 1, &s) == FK_OK) {
        fk_tensor_spec_t sp;
        memset(&sp, 0, sizeof sp);
        sp.width = 320;
        sp.height = 240;
        for (int k = 0; k < 3; k++) sp.mean[k] = 127, sp.scale[k] = 1 / 128.0f;
        FK_CHECK_INT(fk_image_to_tensor(img, NULL, &sp, in), FK_OK);
        const float *ins[1] = {in};
        float *o3[3] = {sc, bx, loc};
        FK_CHECK_INT(fk_nn_session_run(s, ins, o3), FK_OK);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            const float *p = pri + 4 * i, *l = loc + 4 * i;
            float cx = p[0] + l[0] * 0.1f * p[2], cy = p[1] + l[1] * 0.1f * p[3];
            float w = p[2] * expf(l[2] * 0.2f), h = p[3] * expf(l[3] * 0.2f);
            float d[4] = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
            for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(d[k] - bx[4 * i + k]));
        }
        FK_CHECK_NEAR(worst, 0, 1e-5);
    }
    fk_nn_session_destroy(s);
    fk_image_free(img);
    free(pri);
    free(in);
    free(sc);
    free(bx);
    free(loc);
    fk_nn_model_close(m);
}

typedef struct {
    float x, y, w, h;
} box_t;

static float iou(const box_t *a, const float *b) {
    float ix = fminf(a->x + a->w, b[0] + b[2]) - fmaxf(a->x, b[0]);
    float iy = fminf(a->y + a->h, b[1] + b[3]) - fmaxf(a->y, b[1]);
    if (ix <= 0 || iy <= 0) return 0;
    float in = ix * iy;
    return in / (a->w * a->h + b[2] * b[3] - in);
}

static float attr(const char *s, const char *name) {
    char key[32];
    snprintf(key, sizeof key, "%s='", name);
    const char *p = strstr(s, key);
    return p ? strtof(p + strlen(key), NULL) : NAN;
}

static void check_landmarks(const fk_face_t *f, int *bad) {
    const fk_pointf_t *p = f->landmarks;
    float mx = f->box[2] * 0.1f, my = f->box[3] * 0.1f;
    int ok = f->has_landmarks;
    for (int k = 0; k < 5 && ok; k++)
        ok = p[k].x >= f->box[0] - mx && p[k].x <= f->box[0] + f->box[2] + mx && p[k].y >= f->box[1] - my &&
             p[k].y <= f->box[1] + f->box[3] + my;
    ok = ok && p[FK_LM_LEFT_EYE].x < p[FK_LM_RIGHT_EYE].x && p[FK_LM_MOUTH_LEFT].x < p[FK_LM_MOUTH_RIGHT].x;
    float eye_y = (p[0].y + p[1].y) / 2, mouth_y = (p[3].y + p[4].y) / 2;
    ok = ok && eye_y < p[FK_LM_NOSE].y && p[FK_LM_NOSE].y < mouth_y;
    ok = ok && p[FK_LM_NOSE].x > fminf(p[0].x, p[3].x) && p[FK_LM_NOSE].x < fmaxf(p[1].x, p[4].x);
    if (!ok) {
        (*bad)++;
        fprintf(stderr, "landmarks out of order for box %.0f,%.0f,%.0f,%.0f\n", f->box[0], f->box[1], f->box[2],
                f->box[3]);
    }
}

static void test_dlib(fk_ctx_t *c) {
    int gt_total = 0, hits = 0, fps = 0, images = 0, lm_bad = 0, lm_checked = 0;
    static const char *const xmls[2] = {"training.xml", "testing.xml"};
    for (int x = 0; x < 2; x++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/detection/dlib/%s", fk_t_data_dir(), xmls[x]);
        FILE *f = fopen(path, "r");
        if (!f) fprintf(stderr, "missing test data %s (FK_DATA)\n", path);
        FK_CHECK(f != NULL);
        if (!f) continue;
        char line[512], file[256] = "";
        box_t gt[64];
        int ngt = 0;
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, "<image file='");
            if (p) {
                sscanf(p + 13, "%255[^']", file);
                ngt = 0;
            } else if (strstr(line, "<box ") && ngt < 64) {
                gt[ngt++] = (box_t){attr(line, "left"), attr(line, "top"), attr(line, "width"), attr(line, "height")};
            } else if (strstr(line, "</image>")) {
                char ip[1024];
                snprintf(ip, sizeof ip, "%s/detection/dlib/%s", fk_t_data_dir(), file);
                fk_image_t *img = load(ip);
                if (!img) continue;
                fk_face_t *faces = NULL;
                size_t n = 0;
                FK_CHECK_INT(fk_detect(c, img, NULL, &faces, &n), FK_OK);
                int used[256] = {0}, h = 0;
                for (int g = 0; g < ngt; g++) {
                    int best = -1;
                    float bi = 0.3f;
                    for (size_t k = 0; k < n && k < 256; k++)
                        if (!used[k] && iou(&gt[g], faces[k].box) >= bi) bi = iou(&gt[g], faces[k].box), best = (int)k;
                    if (best >= 0) {
                        used[best] = 1;
                        h++;
                        check_landmarks(&faces[best], &lm_bad);
                        lm_checked++;
                    }
                }
                gt_total += ngt;
                hits += h;
                fps += (int)n - h;
                images++;
                fk_free(faces);
                fk_image_free(img);
            }
        }
        fclose(f);
    }
    printf("dlib: recall %d/%d, false positives %d over %d images, landmark order bad %d/%d\n", hits, gt_total,
           fps, images, lm_bad, lm_checked);
    FK_CHECK_INT(gt_total, 43);
    FK_CHECK(hits >= 0.95 * gt_total);
    FK_CHECK(fps <= images);
    FK_CHECK_INT(lm_bad, 0);
    FK_CHECK(lm_checked >= 40);

    char ip[1024];
    snprintf(ip, sizeof ip, "%s/detection/dlib/dogs.jpg", fk_t_data_dir());
    fk_image_t *img = load(ip);
    if (img) {
        fk_face_t *faces = (fk_face_t *)1;
        size_t n = 99;
        FK_CHECK_INT(fk_detect(c, img, NULL, &faces, &n), FK_OK);
        FK_CHECK_INT(n, 0);
        FK_CHECK(faces == NULL);
        fk_image_free(img);
    }
}

static void test_compreface(fk_ctx_t *c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/detection/compreface/nose_points.txt", fk_t_data_dir());
    FILE *f = fopen(path, "r");
    FK_CHECK(f != NULL);
    if (!f) return;
    char line[2048];
    int total = 0, hits = 0, fps = 0, images = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char file[256];
        int nf;
        if (sscanf(line, "%255s %d", file, &nf) != 2) continue;
        char ip[1024];
        snprintf(ip, sizeof ip, "%s/detection/compreface/%s", fk_t_data_dir(), file);
        fk_image_info_t info;
        fk_image_t *img = load(ip);
        if (!img) continue;
        /* nose points are in the file's pixels; the decode may be DCT-scaled */
        FILE *jf = fopen(ip, "rb");
        static uint8_t head[1 << 16];
        size_t hn = jf ? fread(head, 1, sizeof head, jf) : 0;
        if (jf) fclose(jf);
        FK_CHECK_INT(fk_image_probe(head, hn, &info, NULL, 0), FK_OK);
        float s = (float)img->width / info.width;
        fk_face_t *faces = NULL;
        size_t n = 0;
        FK_CHECK_INT(fk_detect(c, img, NULL, &faces, &n), FK_OK);
        const char *p = strchr(line, '\t');
        p = p ? strchr(p + 1, '\t') : NULL;
        int used[256] = {0}, h = 0;
        for (int k = 0; k < nf && p; k++) {
            float x, y;
            if (sscanf(p + 1, "%f,%f", &x, &y) != 2) break;
            x *= s;
            y *= s;
            for (size_t j = 0; j < n && j < 256; j++) {
                const float *b = faces[j].box;
                if (!used[j] && x >= b[0] && x <= b[0] + b[2] && y >= b[1] && y <= b[1] + b[3]) {
                    used[j] = 1;
                    h++;
                    break;
                }
            }
            p = strchr(p + 1, ';');
        }
        total += nf;
        hits += h;
        fps += (int)n - h;
        images++;
        fk_free(faces);
        fk_image_free(img);
    }
    fclose(f);
    printf("compreface: recall %d/%d, false positives %d over %d images\n", hits, total, fps, images);
    FK_CHECK_INT(total, 46);
    FK_CHECK(hits >= 0.95 * total);
    FK_CHECK(fps <= images);
}

static void test_options(fk_engine_t *e, fk_ctx_t *c) {
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/faces/face_recognition/examples/obama-480p.jpg", fk_t_data_dir());
    fk_image_t *img = load(ip);
    if (!img) return;
    fk_face_t *a = NULL, *b = NULL, *m = NULL;
    size_t na = 0, nb = 0, nm = 0;
    FK_CHECK_INT(fk_detect(c, img, NULL, &a, &na), FK_OK);
    FK_CHECK_INT(na, 1);
    fk_detect_options_t o;
    fk_detect_options_default(&o);
    o.width = 640;
    o.height = 480;
    FK_CHECK_INT(fk_detect(c, img, &o, &b, &nb), FK_OK);
    FK_CHECK_INT(nb, 1);
    if (na == 1 && nb == 1) {
        box_t ba = {a[0].box[0], a[0].box[1], a[0].box[2], a[0].box[3]};
        FK_CHECK(iou(&ba, b[0].box) > 0.7f);
        FK_CHECK(a[0].has_landmarks && b[0].has_landmarks);
    }
    fk_detect_options_default(&o);
    o.flags = FK_DETECT_MULTISCALE | FK_DETECT_NO_LANDMARKS;
    FK_CHECK_INT(fk_detect(c, img, &o, &m, &nm), FK_OK);
    FK_CHECK_INT(nm, 1);
    if (nm == 1) FK_CHECK_INT(m[0].has_landmarks, 0);
    /* min_face above the face: nothing */
    fk_face_t *z = NULL;
    size_t nz = 5;
    fk_detect_options_default(&o);
    o.min_face = 2000;
    FK_CHECK_INT(fk_detect(c, img, &o, &z, &nz), FK_OK);
    FK_CHECK_INT(nz, 0);
    /* bad options and arguments */
    fk_detect_options_default(&o);
    o.width = 320;
    FK_CHECK_INT(fk_detect(c, img, &o, &z, &nz), FK_EINVAL);
    FK_CHECK(fk_ctx_errmsg(c)[0] != 0);
    fk_detect_options_default(&o);
    o.score_threshold = 2;
    FK_CHECK_INT(fk_detect(c, img, &o, &z, &nz), FK_EINVAL);
    FK_CHECK_INT(fk_detect(c, NULL, NULL, &z, &nz), FK_EINVAL);
    FK_CHECK_INT(fk_detect(NULL, img, NULL, &z, &nz), FK_EINVAL);
    fk_face_t empty;
    memset(&empty, 0, sizeof empty);
    FK_CHECK_INT(fk_face_landmarks(c, img, &empty), FK_EINVAL);
    /* a 1x1 and a uniform gray image: no face, no error */
    fk_image_t *tiny;
    FK_CHECK_INT(fk_image_create(1, 1, &tiny), FK_OK);
    FK_CHECK_INT(fk_detect(c, tiny, NULL, &z, &nz), FK_OK);
    FK_CHECK_INT(nz, 0);
    fk_image_free(tiny);
    fk_free(a);
    fk_free(b);
    fk_free(m);
    fk_image_free(img);
    (void)e;
}

/* Every allocation of fk_ctx_create and of a first fk_detect (which creates the context's detector session)
 * failing in turn: FK_ENOMEM or another error, never a crash, nothing leaked. */
static void test_alloc_failures(fk_engine_t *e) {
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/detection/dlib/2008_002470.jpg", fk_t_data_dir());
    fk_image_t *img = load(ip);
    if (!img) return;
    size_t base = fk_mem_in_use();
    int failures = 0, ok = 0;
    for (long n = 1; n < 10000 && !ok; n++) {
        fk_ctx_t *c = NULL;
        fk__alloc_fail_at(n);
        int rc = fk_ctx_create(e, &c);
        if (!rc) {
            fk_face_t *f = NULL;
            size_t nf = 0;
            rc = fk_detect(c, img, NULL, &f, &nf);
            if (!rc) {
                ok = 1;
                FK_CHECK_INT(nf, 6);
            } else FK_CHECK(f == NULL && nf == 0);
            fk_free(f);
        } else FK_CHECK(c == NULL);
        fk__alloc_fail_at(0);
        if (rc) failures++;
        if (rc && rc != FK_ENOMEM) fprintf(stderr, "allocation %ld failing gave %s\n", n, fk_status_str(rc));
        fk_ctx_destroy(c);
        FK_CHECK_INT(fk_mem_in_use(), base);
    }
    FK_CHECK(ok);
    FK_CHECK(failures > 5);
    fk_image_free(img);
}

static void test_engine_errors(void) {
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = "/nonexistent-facekit-models";
    fk_engine_t *e = NULL;
    int rc = fk_engine_open(&o, &e);
    FK_CHECK(rc != FK_OK);
    FK_CHECK(e != NULL);
    FK_CHECK(strstr(fk_engine_errmsg(e), "nonexistent") != NULL);
    fk_ctx_t *bad = (fk_ctx_t *)1;
    FK_CHECK_INT(fk_ctx_create(e, &bad), FK_EINVAL); /* a handle whose open failed */
    FK_CHECK(bad == NULL);
    fk_engine_info_t info;
    FK_CHECK_INT(fk_engine_info(e, &info), FK_EINVAL);
    fk_engine_close(e);
    fk_engine_close(NULL);
    fk_ctx_destroy(NULL);
    FK_CHECK_INT(fk_engine_open(&o, NULL), FK_EINVAL);
    /* a named manifest that does not exist is an error */
    memset(&o, 0, sizeof o);
    o.models_dir = models_dir();
    o.models = FK_ENGINE_DETECT;
    o.manifest = "/nonexistent-facekit-manifest.json";
    FK_CHECK_INT(fk_engine_open(&o, &e), FK_EIO);
    fk_engine_close(e);
    /* an engine without landmarks: detection works, landmarks say unsupported */
    o.manifest = NULL;
    FK_CHECK_INT(fk_engine_open(&o, &e), FK_OK);
    fk_ctx_t *c = NULL;
    FK_CHECK_INT(fk_ctx_create(e, &c), FK_OK);
    fk_image_t *img;
    FK_CHECK_INT(fk_image_create(64, 64, &img), FK_OK);
    fk_face_t *f;
    size_t n;
    FK_CHECK_INT(fk_detect(c, img, NULL, &f, &n), FK_EUNSUPPORTED);
    fk_detect_options_t d;
    fk_detect_options_default(&d);
    d.flags = FK_DETECT_NO_LANDMARKS;
    FK_CHECK_INT(fk_detect(c, img, &d, &f, &n), FK_OK);
    fk_face_t one;
    memset(&one, 0, sizeof one);
    one.box[2] = one.box[3] = 30;
    FK_CHECK_INT(fk_face_landmarks(c, img, &one), FK_EUNSUPPORTED);
    fk_image_free(img);
    fk_ctx_destroy(c);
    fk_engine_close(e);
}

int main(void) {
    test_prior_decode();
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = models_dir();
    o.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK;
    fk_engine_t *e = NULL;
    fk_ctx_t *c = NULL;
    int rc = fk_engine_open(&o, &e);
    if (rc) fprintf(stderr, "engine: %s\n", fk_engine_errmsg(e));
    FK_CHECK_INT(rc, FK_OK);
    if (!rc) FK_CHECK_INT(fk_ctx_create(e, &c), FK_OK);
    if (c) {
        test_dlib(c);
        test_compreface(c);
        test_options(e, c);
        test_alloc_failures(e);
    }
    fk_ctx_destroy(c);
    fk_engine_close(e);
    test_engine_errors();
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
