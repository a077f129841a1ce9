/*
 * align.c — face alignment: the least-squares similarity (Umeyama, no reflection) taking the five landmarks
 * onto the standard 112x112 ArcFace template, and the warp producing the crop the recognition model was
 * trained on. Pure geometry on image/: no model, no context, re-entrant.
 */
#include "face/face.h"

#include <math.h>
#include <string.h>

static const float template112[10] = {38.2946f, 51.6963f, 73.5318f, 51.5014f, 56.0252f,
                                      71.7366f, 41.5493f, 92.3655f, 70.7299f, 92.2041f};

const float *fk_face_template_112(void) { return template112; }

/* In 2-D the rotation-and-uniform-scale part of a similarity is [a -b; b a], so Umeyama's least-squares
 * solution reduces to two projections of the centred point sets; reflection cannot occur. */
int fk_similarity_estimate(const float *src, const float *dst, int n, float m[6]) {
    if (!src || !dst || !m || n < 2) return FK_EINVAL;
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (int i = 0; i < n; i++) {
        msx += src[2 * i];
        msy += src[2 * i + 1];
        mdx += dst[2 * i];
        mdy += dst[2 * i + 1];
    }
    msx /= n;
    msy /= n;
    mdx /= n;
    mdy /= n;
    double ss = 0, pa = 0, pb = 0;
    for (int i = 0; i < n; i++) {
        double sx = src[2 * i] - msx, sy = src[2 * i + 1] - msy;
        double dx = dst[2 * i] - mdx, dy = dst[2 * i + 1] - mdy;
        ss += sx * sx + sy * sy;
        pa += sx * dx + sy * dy;
        pb += sx * dy - sy * dx;
    }
    if (!(ss > 1e-12) || !isfinite(ss) || !isfinite(pa) || !isfinite(pb)) return FK_EINVAL;
    double a = pa / ss, b = pb / ss;
    if (!(a * a + b * b > 1e-20)) return FK_EINVAL;
    m[0] = (float)a;
    m[1] = (float)-b;
    m[2] = (float)(mdx - (a * msx - b * msy));
    m[3] = (float)b;
    m[4] = (float)a;
    m[5] = (float)(mdy - (b * msx + a * msy));
    return FK_OK;
}

int fk_face_align(const fk_image_t *img, const fk_face_t *face, fk_image_t *out, float m_out[6]) {
    if (!img || !face || !out || !out->rgb || out->width < 1 || out->width != out->height) return FK_EINVAL;
    if (!face->has_landmarks) return FK_EINVAL;
    /* landmarks are in edge coordinates; the template and the warp use pixel centres */
    float src[10], dst[10];
    float s = out->width / 112.0f;
    for (int i = 0; i < 5; i++) {
        src[2 * i] = face->landmarks[i].x - 0.5f;
        src[2 * i + 1] = face->landmarks[i].y - 0.5f;
        dst[2 * i] = template112[2 * i] * s;
        dst[2 * i + 1] = template112[2 * i + 1] * s;
    }
    float m[6];
    int rc = fk_similarity_estimate(src, dst, 5, m);
    if (rc) return rc;
    static const uint8_t black[3] = {0, 0, 0};
    rc = fk_image_warp_affine(img, m, black, out);
    if (rc) return rc;
    if (m_out) memcpy(m_out, m, sizeof m);
    return FK_OK;
}
