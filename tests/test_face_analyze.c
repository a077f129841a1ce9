/*
 * test_face_analyze.c — liveness, quality and attributes on labelled photos:
 *   - antispoof/samples: image_T1 (live) passes the default liveness threshold, image_F1/F2 (photo/screen
 *     spoofs) fail; samples-inspireface: image_T1 passes, rgb_fake fails;
 *   - quality: a frontal sharp face passes; closed eyes, a turned head, a tiny face and a face cut by the
 *     border fail with the right reason codes; thresholds are configurable;
 *   - blur: inspireface bulk/blur.jpg (a motion-blurred face) and sharp faces smeared by a synthetic motion
 *     blur (a line of 15 % of the face width, four directions) fail as "blurry"; the sharp originals do not;
 *   - attributes: expressions of inspireface/emotion, eye states of inspireface/reaction, gender of
 *     known people, a plausible adult age.
 */
#include "facekit.h"
#include "fk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fk_engine_t *e;
static fk_ctx_t *c;

/* Loads REL and detects its largest face (with landmarks). Returns the image (caller frees) or NULL. */
static fk_image_t *largest(const char *rel, fk_face_t *face) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fk_t_data_dir(), rel);
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    fk_image_t *img = NULL;
    char err[256] = "";
    int rc = fk_image_load(path, &d, &img, err, sizeof err);
    if (rc) fprintf(stderr, "cannot load %s: %s %s\n", path, fk_status_str(rc), err);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) return NULL;
    fk_face_t *f = NULL;
    size_t n = 0;
    FK_CHECK_INT(fk_detect(c, img, NULL, &f, &n), FK_OK);
    if (!n) fprintf(stderr, "%s: no face\n", rel);
    FK_CHECK(n >= 1);
    if (!n) {
        fk_image_free(img);
        return NULL;
    }
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (f[i].box[2] * f[i].box[3] > f[best].box[2] * f[best].box[3]) best = i;
    *face = f[best];
    fk_free(f);
    return img;
}

static void test_liveness(void) {
    static const struct {
        const char *rel;
        int live;
    } cases[] = {{"antispoof/samples/image_T1.jpg", 1},
                 {"antispoof/samples/image_F1.jpg", 0},
                 {"antispoof/samples/image_F2.jpg", 0},
                 {"antispoof/samples-inspireface/image_T1.jpeg", 1},
                 {"antispoof/samples-inspireface/rgb_fake.jpg", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fk_face_t f;
        fk_image_t *img = largest(cases[i].rel, &f);
        if (!img) continue;
        fk_liveness_t l;
        FK_CHECK_INT(fk_liveness(c, img, &f, -1, &l), FK_OK);
        printf("liveness %-45s score %.4f threshold %.2f -> %s\n", cases[i].rel, l.score, l.threshold,
               l.live ? "live" : "spoof");
        FK_CHECK_INT(l.live, cases[i].live);
        FK_CHECK(l.score >= 0 && l.score <= 1);
        /* the per-call threshold wins */
        fk_liveness_t l2;
        FK_CHECK_INT(fk_liveness(c, img, &f, 0.0f, &l2), FK_OK);
        FK_CHECK_INT(l2.live, 1);
        FK_CHECK_NEAR(l2.score, l.score, 0);
        FK_CHECK_INT(fk_liveness(c, img, &f, 2.0f, &l2), FK_EINVAL);
        fk_image_free(img);
    }
}

static unsigned quality_of(const char *rel, fk_quality_t *q) {
    fk_face_t f;
    fk_image_t *img = largest(rel, &f);
    if (!img) return 0xffffffffu;
    FK_CHECK_INT(fk_quality(c, img, &f, NULL, q), FK_OK);
    printf("quality %-45s size %.0f sharp %.0f bright %.0f contrast %.0f yaw %.0f pitch %.0f roll %.0f eyes %.2f/%.2f "
           "cut %.2f reasons 0x%x\n",
           rel, q->face_size, q->sharpness, q->brightness, q->contrast, q->yaw, q->pitch, q->roll, q->left_eye_open,
           q->right_eye_open, q->cut, q->reasons);
    fk_image_free(img);
    return q->reasons;
}

static void test_quality(void) {
    fk_quality_t q;
    FK_CHECK_INT(quality_of("faces/face_recognition/examples/obama-720p.jpg", &q), 0);
    FK_CHECK_INT(q.pass, 1);
    FK_CHECK(fabsf(q.yaw) < 20 && fabsf(q.roll) < 10);
    FK_CHECK(quality_of("attributes/inspireface/reaction/close_eyes.jpeg", &q) & FK_QUALITY_EYES_CLOSED);
    FK_CHECK_INT(q.pass, 0);
    FK_CHECK(q.left_eye_open < 0.5f && q.right_eye_open < 0.5f);
    FK_CHECK(quality_of("attributes/inspireface/pose/left_face.jpeg", &q) & FK_QUALITY_POSE);
    FK_CHECK(q.yaw > 40);
    FK_CHECK(quality_of("attributes/inspireface/pose/right_face.png", &q) & FK_QUALITY_POSE);
    FK_CHECK(q.yaw < -40);
    /* 240p Obama: the face is ~50 px, below the default 64 */
    FK_CHECK(quality_of("faces/face_recognition/examples/obama-240p.jpg", &q) & FK_QUALITY_SMALL);
    FK_CHECK_STR(fk_quality_reason_code(FK_QUALITY_EYES_CLOSED), "eyes_closed");
    FK_CHECK_STR(fk_quality_reason_code(FK_QUALITY_CUT), "cut");
    FK_CHECK(fk_quality_reason_code(0x4000) == NULL);

    /* configurable thresholds; a face cut by the border */
    fk_face_t f;
    fk_image_t *img = largest("faces/face_recognition/examples/obama-480p.jpg", &f);
    if (!img) return;
    fk_quality_options_t o;
    fk_quality_options_default(&o);
    o.min_face_size = 1000;
    o.min_sharpness = 1e9f;
    FK_CHECK_INT(fk_quality(c, img, &f, &o, &q), FK_OK);
    FK_CHECK_INT(q.reasons & (FK_QUALITY_SMALL | FK_QUALITY_BLURRY), FK_QUALITY_SMALL | FK_QUALITY_BLURRY);
    fk_image_t *cut;
    int x0 = (int)(f.box[0] + f.box[2] * 0.5f);
    FK_CHECK_INT(fk_image_crop(img, x0, 0, img->width - x0, img->height, &cut), FK_OK);
    fk_face_t g = f; /* the same face, its left half now outside the picture */
    g.box[0] -= (float)x0;
    for (int k = 0; k < 5; k++) g.landmarks[k].x -= (float)x0;
    for (int k = 0; k < 68; k++) g.landmarks68[k].x -= (float)x0;
    FK_CHECK_INT(fk_quality(c, cut, &g, NULL, &q), FK_OK);
    FK_CHECK(q.reasons & FK_QUALITY_CUT);
    FK_CHECK(q.cut > 0.3f && q.cut < 0.7f);
    fk_face_t none = f;
    none.has_landmarks = 0;
    FK_CHECK_INT(fk_quality(c, img, &none, NULL, &q), FK_EINVAL);
    fk_image_free(cut);
    fk_image_free(img);
}

/* A box blur along a line of LEN pixels in direction DIR (0 horizontal, 1 vertical, 2 and 3 diagonals):
 * what a camera or a face moving during the exposure records. */
static fk_image_t *motion_blur(const fk_image_t *src, int len, int dir) {
    static const int step[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
    fk_image_t *dst = NULL;
    FK_CHECK_INT(fk_image_create(src->width, src->height, &dst), FK_OK);
    if (!dst) return NULL;
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < src->width; x++)
            for (int ch = 0; ch < 3; ch++) {
                int acc = 0, n = 0;
                for (int k = -len / 2; k <= len / 2; k++, n++) {
                    int xx = x + k * step[dir][0], yy = y + k * step[dir][1];
                    xx = xx < 0 ? 0 : xx >= src->width ? src->width - 1 : xx;
                    yy = yy < 0 ? 0 : yy >= src->height ? src->height - 1 : yy;
                    acc += src->rgb[(size_t)yy * src->stride + 3 * (size_t)xx + ch];
                }
                dst->rgb[(size_t)y * dst->stride + 3 * (size_t)x + ch] = (uint8_t)((acc + n / 2) / n);
            }
    return dst;
}

static void test_blur(void) {
    fk_quality_t q;
    FK_CHECK(quality_of("attributes/inspireface/bulk/blur.jpg", &q) & FK_QUALITY_BLURRY);
    FK_CHECK_INT(q.pass, 0);
    static const char *const sharp[] = {"faces/deepface/img1.jpg", "faces/face_recognition/examples/biden.jpg",
                                        "idphoto/portraits/test0.jpg"};
    for (size_t i = 0; i < sizeof sharp / sizeof sharp[0]; i++) {
        FK_CHECK_INT(quality_of(sharp[i], &q) & FK_QUALITY_BLURRY, 0);
        fk_face_t f;
        fk_image_t *img = largest(sharp[i], &f);
        if (!img) continue;
        int len = (int)(0.15f * f.box[2]);
        for (int dir = 0; dir < 4; dir++) {
            fk_image_t *b = motion_blur(img, len, dir);
            if (!b) break;
            fk_face_t g = f; /* the same box; landmarks found again on the smeared picture */
            FK_CHECK_INT(fk_face_landmarks(c, b, &g), FK_OK);
            FK_CHECK_INT(fk_quality(c, b, &g, NULL, &q), FK_OK);
            printf("blur %-45s motion %d px dir %d: sharpness %.1f reasons 0x%x\n", sharp[i], len, dir, q.sharpness,
                   q.reasons);
            FK_CHECK(q.reasons & FK_QUALITY_BLURRY);
            fk_image_free(b);
        }
        fk_image_free(img);
    }
}

static void test_attributes(void) {
    static const struct {
        const char *rel, *expr;
    } emo[] = {{"attributes/inspireface/emotion/anger.png", "angry"},
               {"attributes/inspireface/emotion/happy.png", "happy"},
               {"attributes/inspireface/emotion/sad.png", "sad"}};
    for (size_t i = 0; i < 3; i++) {
        fk_face_t f;
        fk_image_t *img = largest(emo[i].rel, &f);
        if (!img) continue;
        fk_attributes_t a;
        FK_CHECK_INT(fk_attributes(c, img, &f, &a), FK_OK);
        FK_CHECK_STR(fk_expression_name(a.expression), emo[i].expr);
        fk_image_free(img);
    }
    static const struct {
        const char *rel;
        int male;
    } people[] = {{"faces/face_recognition/examples/obama-480p.jpg", 1},
                  {"faces/face_recognition/examples/biden.jpg", 1},
                  {"faces/deepface/img2.jpg", 0},
                  {"faces/deepface/img8.jpg", 0},
                  {"faces/deepface/img18.jpg", 1}};
    for (size_t i = 0; i < 5; i++) {
        fk_face_t f;
        fk_image_t *img = largest(people[i].rel, &f);
        if (!img) continue;
        fk_attributes_t a;
        FK_CHECK_INT(fk_attributes(c, img, &f, &a), FK_OK);
        printf("attributes %-45s age %.1f male %.2f expression %s eyes %.2f/%.2f yaw %.1f\n", people[i].rel, a.age,
               a.male, fk_expression_name(a.expression), a.left_eye_open, a.right_eye_open, a.yaw);
        FK_CHECK_INT(a.male > 0.5f, people[i].male);
        FK_CHECK(a.age > 20 && a.age < 80);
        FK_CHECK(a.male >= 0 && a.male <= 1);
        FK_CHECK(a.left_eye_open > 0.5f && a.right_eye_open > 0.5f);
        fk_image_free(img);
    }
    fk_face_t f;
    fk_image_t *img = largest("attributes/inspireface/reaction/close_open_eyes.jpeg", &f);
    if (img) {
        fk_attributes_t a;
        FK_CHECK_INT(fk_attributes(c, img, &f, &a), FK_OK);
        FK_CHECK((a.left_eye_open < 0.5f) != (a.right_eye_open < 0.5f)); /* one closed, one open */
        fk_image_free(img);
    }
    FK_CHECK(fk_expression_name(7) == NULL);
    FK_CHECK(fk_expression_name(-1) == NULL);
}

static void test_missing_models(void) {
    /* an engine without pose/eye/age models: those values are NaN, the rest still works */
    const char *d = getenv("FK_MODELS_DIR");
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = d && *d ? d : "models";
    o.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_GENDER;
    fk_engine_t *e2;
    fk_ctx_t *c2 = NULL;
    FK_CHECK_INT(fk_engine_open(&o, &e2), FK_OK);
    FK_CHECK_INT(fk_ctx_create(e2, &c2), FK_OK);
    fk_face_t f;
    fk_image_t *img = largest("faces/face_recognition/examples/obama-480p.jpg", &f);
    if (img && c2) {
        fk_quality_t q;
        FK_CHECK_INT(fk_quality(c2, img, &f, NULL, &q), FK_OK);
        FK_CHECK(isnan(q.yaw) && isnan(q.left_eye_open));
        fk_attributes_t a;
        FK_CHECK_INT(fk_attributes(c2, img, &f, &a), FK_OK);
        FK_CHECK(isnan(a.age) && !isnan(a.male) && a.expression == -1);
        fk_liveness_t l;
        FK_CHECK_INT(fk_liveness(c2, img, &f, -1, &l), FK_EUNSUPPORTED);
        FK_CHECK(strstr(fk_ctx_errmsg(c2), "fr_liveness") != NULL);
    }
    fk_image_free(img);
    fk_ctx_destroy(c2);
    fk_engine_close(e2);
}

int main(void) {
    const char *d = getenv("FK_MODELS_DIR");
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = d && *d ? d : "models";
    int rc = fk_engine_open(&o, &e);
    if (rc) fprintf(stderr, "engine: %s\n", fk_engine_errmsg(e));
    FK_CHECK_INT(rc, FK_OK);
    if (!rc) FK_CHECK_INT(fk_ctx_create(e, &c), FK_OK);
    if (c) {
        fk_engine_info_t info;
        fk_engine_info(e, &info);
        FK_CHECK_INT(info.models, FK_ENGINE_ALL);
        FK_CHECK_NEAR(info.liveness_threshold, 0.5, 1e-9);
        test_liveness();
        test_quality();
        test_blur();
        test_attributes();
        test_missing_models();
    }
    fk_ctx_destroy(c);
    fk_engine_close(e);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
