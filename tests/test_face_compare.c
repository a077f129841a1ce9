/*
 * test_face_compare.c — recognition on real photos through the whole pipeline (detect -> landmarks ->
 * align -> embed -> compare) with the committed manifest's calibration:
 *   - faces/deepface identity clusters (13 people, 61 photos): same-person pairs score above the default
 *     threshold, different-person pairs below (rates asserted, every failure printed);
 *   - faces/face_recognition: Obama at 240p..1080p and obama2 match each other, not Biden;
 *   - flip fusion stays close to the plain template; an image without a face is FK_ENOFACE.
 */
#include "facekit.h"
#include "fk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fk_engine_t *e;
static fk_ctx_t *c;

static int embed_file(const char *rel, unsigned flags, fk_template_t *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fk_t_data_dir(), rel);
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    fk_image_t *img = NULL;
    char err[256] = "";
    int rc = fk_image_load(path, &d, &img, err, sizeof err);
    if (rc) {
        fprintf(stderr, "cannot load %s: %s %s\n", path, fk_status_str(rc), err);
        return rc;
    }
    rc = fk_embed_largest(c, img, flags, t, NULL);
    fk_image_free(img);
    return rc;
}

#define MAXIMG 80

static void test_deepface(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/faces/deepface/identity_clusters.txt", fk_t_data_dir());
    FILE *f = fopen(path, "r");
    if (!f) fprintf(stderr, "missing test data %s\n", path);
    FK_CHECK(f != NULL);
    if (!f) return;
    static fk_template_t tpl[MAXIMG];
    static char names[MAXIMG][64];
    int id[MAXIMG], ok[MAXIMG], n = 0, nid = 0;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *tok = strtok(line, " \t\n");
        if (!tok) continue;
        for (tok = strtok(NULL, " \t\n"); tok && n < MAXIMG; tok = strtok(NULL, " \t\n")) {
            snprintf(names[n], sizeof names[n], "%s", tok);
            char rel[128];
            snprintf(rel, sizeof rel, "faces/deepface/%s", tok);
            int rc = embed_file(rel, 0, &tpl[n]);
            if (rc) fprintf(stderr, "%s: %s %s\n", tok, fk_status_str(rc), fk_ctx_errmsg(c));
            ok[n] = rc == FK_OK;
            id[n++] = nid;
        }
        nid++;
    }
    fclose(f);
    int embedded = 0;
    for (int i = 0; i < n; i++) embedded += ok[i];
    FK_CHECK_INT(n, 61);
    FK_CHECK(embedded >= n - 1);
    int same = 0, same_ok = 0, diff = 0, diff_ok = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!ok[i] || !ok[j]) continue;
            fk_match_t m;
            FK_CHECK_INT(fk_compare(e, &tpl[i], &tpl[j], -1, &m), FK_OK);
            if (id[i] == id[j]) {
                same++;
                same_ok += m.same;
                if (!m.same) printf("  same person below threshold: %s %s score %.3f cos %.3f\n", names[i], names[j], m.score, m.cosine);
            } else {
                diff++;
                diff_ok += !m.same;
                if (m.same) printf("  different people above threshold: %s %s score %.3f cos %.3f\n", names[i], names[j], m.score, m.cosine);
            }
        }
    printf("deepface: same-person pairs accepted %d/%d, different-person pairs rejected %d/%d\n", same_ok, same,
           diff_ok, diff);
    FK_CHECK(same >= 130 && diff > 1500);
    FK_CHECK(same_ok >= 0.95 * same); /* default threshold is strict: FAR 1e-3 on LFW */
    FK_CHECK(diff_ok >= 0.995 * diff); /* look-alikes exist: Damon (id06) vs DiCaprio (id08) reach cos 0.47 */
}

static void test_obama(void) {
    static const char *const obama[] = {"obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg",
                                        "obama.jpg", "obama2.jpg"};
    fk_template_t t[6], biden;
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "faces/face_recognition/examples/%s", obama[i]);
        int rc = embed_file(rel, 0, &t[i]);
        FK_CHECK_INT(rc, FK_OK);
        ok &= rc == FK_OK;
    }
    int rc = embed_file("faces/face_recognition/examples/biden.jpg", 0, &biden);
    FK_CHECK_INT(rc, FK_OK);
    if (!ok || rc) return;
    for (int i = 0; i < 6; i++) {
        fk_match_t m;
        for (int j = i + 1; j < 6; j++) {
            FK_CHECK_INT(fk_compare(e, &t[i], &t[j], -1, &m), FK_OK);
            if (!m.same) printf("  obama %s vs %s: score %.3f\n", obama[i], obama[j], m.score);
            FK_CHECK(m.same);
        }
        FK_CHECK_INT(fk_compare(e, &t[i], &biden, -1, &m), FK_OK);
        FK_CHECK(!m.same);
        FK_CHECK(m.cosine < 0.3);
        /* the resolutions of one frame are nearly the same template */
        if (i > 0 && i < 4) {
            FK_CHECK_INT(fk_compare(e, &t[i], &t[i - 1], -1, &m), FK_OK);
            FK_CHECK(m.cosine > 0.85);
        }
    }
    /* flip fusion: a different but close template, flagged */
    fk_template_t fl;
    FK_CHECK_INT(embed_file("faces/face_recognition/examples/obama-480p.jpg", FK_EMBED_FLIP, &fl), FK_OK);
    FK_CHECK_INT(fl.flags, FK_EMBED_FLIP);
    fk_match_t m;
    FK_CHECK_INT(fk_compare(e, &fl, &t[1], -1, &m), FK_OK);
    FK_CHECK(m.cosine > 0.9 && m.cosine < 0.99999);
    double n2 = 0;
    for (int i = 0; i < fl.dim; i++) n2 += fl.v[i] * fl.v[i];
    FK_CHECK_NEAR(n2, 1.0, 1e-5);
}

static void test_noface(void) {
    fk_template_t t;
    FK_CHECK_INT(embed_file("attributes/inspireface/crop/no_face.png", 0, &t), FK_ENOFACE);
    FK_CHECK_INT(embed_file("detection/dlib/dogs.jpg", 0, &t), FK_ENOFACE);
    FK_CHECK(strstr(fk_ctx_errmsg(c), "no face") != NULL);
    fk_image_t *img;
    FK_CHECK_INT(fk_image_create(300, 200, &img), FK_OK);
    FK_CHECK_INT(fk_embed_largest(c, img, 0, &t, NULL), FK_ENOFACE);
    fk_face_t f;
    memset(&f, 0, sizeof f);
    FK_CHECK_INT(fk_embed(c, img, &f, 0, &t), FK_EINVAL); /* no landmarks */
    fk_image_free(img);
}

int main(void) {
    const char *d = getenv("FK_MODELS_DIR");
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = d && *d ? d : "models";
    o.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE;
    int rc = fk_engine_open(&o, &e);
    if (rc) fprintf(stderr, "engine: %s\n", fk_engine_errmsg(e));
    FK_CHECK_INT(rc, FK_OK);
    fk_engine_info_t info;
    if (!rc) {
        fk_engine_info(e, &info);
        /* the committed models/manifest.json carries the LFW calibration */
        FK_CHECK_INT(info.calibrated, 1);
        FK_CHECK(info.calib_a > 0);
        FK_CHECK(info.threshold > 0.5 && info.threshold < 1);
        printf("calibration a %.4f b %.4f threshold %.4f (%s)\n", info.calib_a, info.calib_b, info.threshold,
               info.manifest);
        FK_CHECK_INT(fk_ctx_create(e, &c), FK_OK);
    }
    if (c) {
        test_deepface();
        test_obama();
        test_noface();
    }
    fk_ctx_destroy(c);
    fk_engine_close(e);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
