/*
 * test_face_align.c — alignment geometry without models: Umeyama recovers a known similarity exactly from
 * transformed template points (any rotation, scale, translation), never answers with a reflection, refuses
 * degenerate input; fk_face_align puts the five landmarks onto the 112x112 template.
 */
#include "facekit.h"
#include "fk_test.h"

#include <math.h>

static void apply(const float m[6], float x, float y, float *ox, float *oy) {
    *ox = m[0] * x + m[1] * y + m[2];
    *oy = m[3] * x + m[4] * y + m[5];
}

static void test_recover(void) {
    const float *t = fk_face_template_112();
    FK_CHECK(t != NULL);
    FK_CHECK_NEAR(t[0], 38.2946, 1e-4);
    FK_CHECK_NEAR(t[9], 92.2041, 1e-4);
    static const double cases[][4] = {{1.0, 0.0, 0, 0}, {2.5, 0.3, 100, -40}, {0.37, -2.9, 512.5, 300.25},
                                      {7.0, 3.14159, -20, 900}, {1.3, 1.5707963, 12, 34}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double s = cases[k][0], a = cases[k][1];
        float m[6] = {(float)(s * cos(a)), (float)(-s * sin(a)), (float)cases[k][2],
                      (float)(s * sin(a)), (float)(s * cos(a)),  (float)cases[k][3]};
        float src[10], est[6];
        for (int i = 0; i < 5; i++) apply(m, t[2 * i], t[2 * i + 1], &src[2 * i], &src[2 * i + 1]);
        /* estimate the map back: src -> template, i.e. the inverse of m */
        FK_CHECK_INT(fk_similarity_estimate(src, t, 5, est), FK_OK);
        float inv[6];
        FK_CHECK_INT(fk_affine_invert(m, inv), FK_OK);
        double tol = 1e-4 * (1 + fabs(inv[2]) + fabs(inv[5]));
        for (int i = 0; i < 6; i++) FK_CHECK_NEAR(est[i], inv[i], tol);
        /* and forward */
        FK_CHECK_INT(fk_similarity_estimate(t, src, 5, est), FK_OK);
        for (int i = 0; i < 6; i++) FK_CHECK_NEAR(est[i], m[i], 1e-4 * (1 + fabs(m[i])));
    }
}

static void test_no_reflection(void) {
    /* mirrored points: the best similarity is not a reflection, its determinant stays positive */
    const float *t = fk_face_template_112();
    float mir[10], m[6];
    for (int i = 0; i < 5; i++) {
        mir[2 * i] = 112 - t[2 * i];
        mir[2 * i + 1] = t[2 * i + 1];
    }
    FK_CHECK_INT(fk_similarity_estimate(mir, t, 5, m), FK_OK);
    FK_CHECK(m[0] * m[4] - m[1] * m[3] > 0);
    FK_CHECK_NEAR(m[0], m[4], 1e-6);
    FK_CHECK_NEAR(m[1], -m[3], 1e-6);
}

static void test_degenerate(void) {
    float same[10] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, m[6];
    FK_CHECK_INT(fk_similarity_estimate(same, fk_face_template_112(), 5, m), FK_EINVAL);
    FK_CHECK_INT(fk_similarity_estimate(same, same, 1, m), FK_EINVAL);
    FK_CHECK_INT(fk_similarity_estimate(NULL, same, 5, m), FK_EINVAL);
    float nan_pts[10] = {NAN, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    FK_CHECK_INT(fk_similarity_estimate(nan_pts, fk_face_template_112(), 5, m), FK_EINVAL);
}

static void test_align_image(void) {
    /* a 400x300 image with a bright square at each landmark of a face placed by a known similarity */
    fk_image_t *img;
    FK_CHECK_INT(fk_image_create(400, 300, &img), FK_OK);
    if (!img) return;
    const float *t = fk_face_template_112();
    double s = 1.8, a = 0.25;
    float m[6] = {(float)(s * cos(a)), (float)(-s * sin(a)), 120, (float)(s * sin(a)), (float)(s * cos(a)), 40};
    fk_face_t f;
    memset(&f, 0, sizeof f);
    f.has_landmarks = 1;
    static const uint8_t white[3] = {255, 255, 255};
    for (int i = 0; i < 5; i++) {
        float x, y;
        apply(m, t[2 * i], t[2 * i + 1], &x, &y); /* pixel-centre coordinates */
        f.landmarks[i].x = x + 0.5f;              /* -> edge coordinates of the API */
        f.landmarks[i].y = y + 0.5f;
        fk_image_draw_point(img, (int)lrintf(x), (int)lrintf(y), 3, white);
    }
    uint8_t pix[112 * 112 * 3];
    fk_image_t out = {112, 112, 112 * 3, pix};
    float mo[6], inv[6];
    FK_CHECK_INT(fk_face_align(img, &f, &out, mo), FK_OK);
    FK_CHECK_INT(fk_affine_invert(m, inv), FK_OK);
    for (int i = 0; i < 6; i++) FK_CHECK_NEAR(mo[i], inv[i], 1e-3 * (1 + fabs(inv[i])));
    /* each template point is bright in the crop */
    for (int i = 0; i < 5; i++) {
        int x = (int)lrintf(t[2 * i]), y = (int)lrintf(t[2 * i + 1]);
        FK_CHECK(pix[(y * 112 + x) * 3] > 200);
    }
    /* a point between the eyes is dark */
    FK_CHECK(pix[(40 * 112 + 56) * 3] < 30);
    /* no landmarks, non-square output: refused */
    f.has_landmarks = 0;
    FK_CHECK_INT(fk_face_align(img, &f, &out, NULL), FK_EINVAL);
    f.has_landmarks = 1;
    fk_image_t rect = {112, 100, 112 * 3, pix};
    FK_CHECK_INT(fk_face_align(img, &f, &rect, NULL), FK_EINVAL);
    fk_image_free(img);
}

int main(void) {
    test_recover();
    test_no_reflection();
    test_degenerate();
    test_align_image();
    return fk_t_finish();
}
