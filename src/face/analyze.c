/*
 * analyze.c — what the face pipeline says about a face beyond who it is: quality (size, sharpness,
 * brightness, contrast, pose, eyes, border cut; each with a reason code and a threshold), passive liveness
 * (fr_liveness) and attributes (age, gender, expression, eye state, pose). Every model sees the crop its
 * vendor fed it (the faceplugin JS: see the comments at each crop), resampled once into context scratch.
 * Layer: face, on image/ and nn/ through engine.c's context.
 */
#include "face/face.h"

#include <math.h>
#include <string.h>

/* Colour orders and class indices, measured here (docs/accuracy.md):
 *  - liveness BGR: the live sample of data/antispoof scores 0.65 (RGB: 0.01), spoofs <= 0.03;
 *  - age/gender BGR: 17 of 18 known-gender photos right (RGB: 13), ages spread more plausibly;
 *  - expression RGB: inspireface emotion/{anger,happy,sad} all recognised, FER-2013 class order;
 *  - pose RGB: HopeNet-style 66-bin model trained on RGB with ImageNet statistics;
 *  - eye class 1 = open: reaction/close_eyes 0.00/0.00, open_eyes 1.00/1.00, close_open_eyes 0.00/1.00. */
#define POSE_ORDER FK_CHANNELS_RGB
#define LIVENESS_ORDER FK_CHANNELS_BGR
#define AGE_ORDER FK_CHANNELS_BGR
#define EXPRESSION_ORDER FK_CHANNELS_RGB
#define EYE_OPEN_INDEX 1 /* softmax class of fr_eye meaning "open" */
#define LIVE_INDEX 0     /* softmax class of fr_liveness meaning "live" */

static const char *const expressions[7] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};

const char *fk_expression_name(int i) { return i >= 0 && i < 7 ? expressions[i] : NULL; }

const char *fk_quality_reason_code(unsigned bit) {
#define FK__QR_CODE(name, b, code, text) \
    if (bit == (b)) return code;
    FK_QUALITY_REASONS(FK__QR_CODE)
#undef FK__QR_CODE
    return NULL;
}

void fk_quality_options_default(fk_quality_options_t *o) {
    if (!o) return;
    o->min_face_size = 64;
    o->min_sharpness = 9;
    o->min_brightness = 50;
    o->max_brightness = 210;
    o->min_contrast = 25;
    o->max_yaw = 30;
    o->max_pitch = 25;
    o->max_roll = 25;
    o->min_eye_open = 0.5f;
    o->max_cut = 0.1f;
    o->min_detect_score = 0.8f;
}

static void softmax(const float *x, int n, float *p) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = fmaxf(m, x[i]);
    float s = 0;
    for (int i = 0; i < n; i++) s += p[i] = expf(x[i] - m);
    for (int i = 0; i < n; i++) p[i] /= s;
}

static int face_ok(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f) {
    if (!img || !img->rgb || img->width < 1 || img->height < 1 || !f)
        return fk__ctx_fail(c, FK_EINVAL, "NULL image or face");
    if (!(f->box[2] > 0 && f->box[3] > 0) || !isfinite(f->box[0]) || !isfinite(f->box[1]) ||
        !isfinite(f->box[2]) || !isfinite(f->box[3]))
        return fk__ctx_fail(c, FK_EINVAL, "empty face box");
    return FK_OK;
}

/* ImageNet normalisation over 0..255 samples, for the channel order the tensor is written in */
static void imagenet(float mean[3], float scale[3]) {
    /* the vendor applies R's statistics to tensor channel 0 whatever colour it holds */
    static const float m[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int k = 0; k < 3; k++) {
        mean[k] = m[k] * 255.0f;
        scale[k] = 1.0f / (255.0f * sd[k]);
    }
}

/* ---- pose (fr_pose.js: box + 1/4 each side, 224x224, ImageNet statistics, 66 bins of 3 degrees) ---- */

static int run_pose(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, float *yaw, float *pitch, float *roll) {
    float sq[4];
    fk__face_square(f, sq);
    float x1 = sq[0] - sq[2] / 4, y1 = sq[1] - sq[3] / 4, x2 = sq[0] + sq[2] * 1.25f, y2 = sq[1] + sq[3] * 1.25f;
    x1 = fmaxf(x1, 0);
    y1 = fmaxf(y1, 0);
    x2 = fminf(x2, (float)img->width);
    y2 = fminf(y2, (float)img->height);
    if (!(x2 - x1 >= 1 && y2 - y1 >= 1)) return fk__ctx_fail(c, FK_EINVAL, "face outside the image");
    fk_rectf_t r = {x1, y1, x2 - x1, y2 - y1};
    float mean[3], scale[3];
    imagenet(mean, scale);
    fk_tensor_spec_t s = fk__tensor_spec(224, 224, POSE_ORDER, mean, scale);
    int rc = fk_image_to_tensor(img, &r, &s, c->in);
    if (rc) return fk__ctx_fail(c, rc, "cannot crop the face for pose");
    if ((rc = fk__ctx_run(c, FK__M_POSE, c->in))) return rc;
    float *ang[3] = {yaw, pitch, roll};
    for (int k = 0; k < 3; k++) {
        float p[66], e = 0;
        softmax(c->out + 66 * k, 66, p);
        for (int i = 0; i < 66; i++) e += p[i] * i;
        *ang[k] = e * 3 - 99;
    }
    return FK_OK;
}

/* ---- eyes (fr_eye.js: square 1.6x the eye's corner-to-corner width, 24x24 gray / 255) ---- */

static int run_eyes(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, float *left, float *right) {
    if (!f->has_landmarks) return fk__ctx_fail(c, FK_EINVAL, "eye state needs landmarks");
    const fk_pointf_t *p = f->landmarks68;
    for (int eye = 0; eye < 2; eye++) {
        int b = eye ? 42 : 36; /* contour: corners b and b+3, lids b+1, b+2, b+4, b+5 */
        float cx = (p[b + 1].x + p[b + 2].x + p[b + 4].x + p[b + 5].x) / 4;
        float cy = (p[b + 1].y + p[b + 2].y + p[b + 4].y + p[b + 5].y) / 4;
        float size = (p[b + 3].x - p[b].x) * 1.6f;
        if (!(size >= 2)) size = 2;
        fk_rectf_t r = {cx - size / 2, cy - size / 2, size, size};
        fk_image_t crop = {24, 24, 24 * 3, c->pix};
        static const uint8_t gray[3] = {128, 128, 128};
        int rc = fk_image_resample(img, &r, gray, &crop);
        if (!rc) rc = fk_image_to_gray(&crop, c->gray, 24);
        if (rc) return fk__ctx_fail(c, rc, "cannot crop the eye");
        for (int i = 0; i < 24 * 24; i++) c->in[i] = c->gray[i] * (1.0f / 255.0f);
        if ((rc = fk__ctx_run(c, FK__M_EYE, c->in))) return rc;
        float pr[2];
        softmax(c->out, 2, pr);
        *(eye ? right : left) = pr[EYE_OPEN_INDEX];
    }
    return FK_OK;
}

/* ---- quality ---- */

/* Brightness and contrast: mean and standard deviation of the aligned crop's gray levels over its central
 * 96x96 (the face, not the warp's border). Sharpness, on that region after 2x2 averaging (56x56 scale):
 * 1000 x (weakest of four directional second-difference energies — horizontal, vertical, both diagonals —
 * per unit gray variance) x sqrt(weakest / strongest direction). Why each part:
 *  - the weakest direction: motion blur smears along one direction and leaves the others (and the sensor
 *    noise added after it) intact, so an isotropic measure such as the variance of the Laplacian stays high
 *    — inspireface bulk/blur.jpg scored 304 there, above most sharp faces; defocus lowers every direction;
 *  - per unit variance: second differences grow with contrast (which has its own check);
 *  - sqrt(weakest / strongest): how one-sided the loss is, the signature of motion; a face rich in fine
 *    texture keeps a high weakest-direction energy even when smeared, but not its balance;
 *  - 2x2 averaging: at full 112 scale JPEG blocks and noise score like detail.
 * The threshold (min_sharpness, 9) and the samples it was chosen on are in docs/accuracy.md. */
static void gray_stats(const uint8_t *g, float *sharp, float *mean, float *sd) {
    double s = 0, s2 = 0;
    for (int y = 8; y < 104; y++)
        for (int x = 8; x < 104; x++) {
            double v = g[y * 112 + x];
            s += v;
            s2 += v * v;
        }
    double m = s / (96.0 * 96.0), var = fmax(0, s2 / (96.0 * 96.0) - m * m);
    *mean = (float)m;
    *sd = (float)sqrt(var);
    float h[48][48]; /* the central 96x96 at half scale */
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 48; x++) {
            const uint8_t *p = g + (8 + 2 * y) * 112 + 8 + 2 * x;
            h[y][x] = (p[0] + p[1] + p[112] + p[113]) * 0.25f;
        }
    double e[4] = {0, 0, 0, 0};
    for (int y = 2; y < 46; y++)
        for (int x = 2; x < 46; x++) {
            double c2 = 2.0 * h[y][x];
            double dx = h[y][x - 1] + h[y][x + 1] - c2, dy = h[y - 1][x] + h[y + 1][x] - c2;
            /* diagonal neighbours are sqrt(2) away: halve their second difference */
            double d1 = 0.5 * (h[y - 1][x - 1] + h[y + 1][x + 1] - c2), d2 = 0.5 * (h[y - 1][x + 1] + h[y + 1][x - 1] - c2);
            e[0] += dx * dx;
            e[1] += dy * dy;
            e[2] += d1 * d1;
            e[3] += d2 * d2;
        }
    double emin = fmin(fmin(e[0], e[1]), fmin(e[2], e[3])), emax = fmax(fmax(e[0], e[1]), fmax(e[2], e[3]));
    double aniso = emax > 0 ? emin / emax : 0;
    *sharp = (float)(1000.0 * emin / (44.0 * 44.0) / fmax(var, 1.0) * sqrt(aniso));
}

int fk_quality(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, const fk_quality_options_t *opt,
               fk_quality_t *out) {
    if (!c) return FK_EINVAL;
    c->err[0] = 0;
    int rc = face_ok(c, img, f);
    if (rc) return rc;
    if (!out) return fk__ctx_fail(c, FK_EINVAL, "NULL output");
    if (!f->has_landmarks) return fk__ctx_fail(c, FK_EINVAL, "quality needs landmarks");
    fk_quality_options_t o;
    if (opt) o = *opt;
    else fk_quality_options_default(&o);
    fk_quality_t q;
    memset(&q, 0, sizeof q);
    q.face_size = fminf(f->box[2], f->box[3]);

    fk_image_t a = {112, 112, 112 * 3, c->pix};
    if ((rc = fk_face_align(img, f, &a, NULL))) return fk__ctx_fail(c, rc, "cannot align the face");
    if ((rc = fk_image_to_gray(&a, c->gray, 112))) return fk__ctx_fail(c, rc, "gray conversion failed");
    gray_stats(c->gray, &q.sharpness, &q.brightness, &q.contrast);

    float bx1 = fmaxf(f->box[0], 0), by1 = fmaxf(f->box[1], 0);
    float bx2 = fminf(f->box[0] + f->box[2], (float)img->width), by2 = fminf(f->box[1] + f->box[3], (float)img->height);
    float inside = (bx2 > bx1 && by2 > by1) ? (bx2 - bx1) * (by2 - by1) : 0;
    q.cut = 1 - inside / (f->box[2] * f->box[3]);

    q.yaw = q.pitch = q.roll = NAN;
    q.left_eye_open = q.right_eye_open = NAN;
    if (c->s[FK__M_POSE] && (rc = run_pose(c, img, f, &q.yaw, &q.pitch, &q.roll))) return rc;
    if (c->s[FK__M_EYE] && (rc = run_eyes(c, img, f, &q.left_eye_open, &q.right_eye_open))) return rc;

    unsigned r = 0;
    if (q.face_size < o.min_face_size) r |= FK_QUALITY_SMALL;
    if (q.sharpness < o.min_sharpness) r |= FK_QUALITY_BLURRY;
    if (q.brightness < o.min_brightness) r |= FK_QUALITY_DARK;
    if (q.brightness > o.max_brightness) r |= FK_QUALITY_BRIGHT;
    if (q.contrast < o.min_contrast) r |= FK_QUALITY_LOW_CONTRAST;
    if (!isnan(q.yaw) && (fabsf(q.yaw) > o.max_yaw || fabsf(q.pitch) > o.max_pitch || fabsf(q.roll) > o.max_roll))
        r |= FK_QUALITY_POSE;
    if (!isnan(q.left_eye_open) && (q.left_eye_open < o.min_eye_open || q.right_eye_open < o.min_eye_open))
        r |= FK_QUALITY_EYES_CLOSED;
    if (q.cut > o.max_cut) r |= FK_QUALITY_CUT;
    if (f->score < o.min_detect_score) r |= FK_QUALITY_LOW_SCORE;
    q.reasons = r;
    q.pass = r == 0;
    *out = q;
    return FK_OK;
}

/* ---- liveness (fr_liveness.js: square box x2.7 kept inside the image, 128x128, raw 0..255) ---- */

int fk_liveness(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, float threshold, fk_liveness_t *out) {
    if (!c) return FK_EINVAL;
    c->err[0] = 0;
    int rc = face_ok(c, img, f);
    if (rc) return rc;
    if (!out || !(threshold <= 1) || isnan(threshold)) return fk__ctx_fail(c, FK_EINVAL, "bad liveness arguments");
    float sq[4];
    fk__face_square(f, sq);
    fk_rectf_t r = fk__face_crop_rect(img, sq, 2.7f);
    static const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    fk_tensor_spec_t s = fk__tensor_spec(128, 128, LIVENESS_ORDER, zero, one);
    if ((rc = fk_image_to_tensor(img, &r, &s, c->in))) return fk__ctx_fail(c, rc, "cannot crop for liveness");
    if ((rc = fk__ctx_run(c, FK__M_LIVENESS, c->in))) return rc;
    float p[3];
    softmax(c->out, 3, p);
    out->score = p[LIVE_INDEX];
    out->threshold = threshold >= 0 ? threshold : (float)c->e->liveness_threshold;
    out->live = out->score >= out->threshold;
    return FK_OK;
}

/* ---- attributes ---- */

/* SSR-Net's soft stagewise regression (fr_age.js mergeAge, fr_gender.js mergeGender): X holds the three
 * stage probabilities (3 each), the three delta_k and the three index offsets (3 each). */
static float ssr_merge(const float *x, float V) {
    const int s1 = 3, s2 = 3, s3 = 3;
    float a = 0, b = 0, cc = 0;
    for (int i = 0; i < s1; i++) a += (i + x[12 + i]) * x[i];
    a = a / (s1 * (1 + x[9]));
    for (int i = 0; i < s2; i++) b += (i + x[15 + i]) * x[3 + i];
    b = b / (s1 * (1 + x[9])) / (s2 * (1 + x[10]));
    for (int i = 0; i < s3; i++) cc += (i + x[18 + i]) * x[6 + i];
    cc = cc / (s1 * (1 + x[9])) / (s2 * (1 + x[10])) / (s3 * (1 + x[11]));
    return (a + b + cc) * V;
}

static int run_ssr(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, int model, float V, float *out) {
    float sq[4];
    fk__face_square(f, sq);
    fk_rectf_t r = fk__face_crop_rect(img, sq, 1.4f);
    float mean[3], scale[3];
    imagenet(mean, scale);
    fk_tensor_spec_t s = fk__tensor_spec(64, 64, AGE_ORDER, mean, scale);
    int rc = fk_image_to_tensor(img, &r, &s, c->in);
    if (rc) return fk__ctx_fail(c, rc, "cannot crop the face");
    if ((rc = fk__ctx_run(c, model, c->in))) return rc;
    *out = ssr_merge(c->out, V);
    if (V == 1) *out = fminf(fmaxf(*out, 0), 1); /* gender: a probability-like 0..1 */
    return FK_OK;
}

static int run_expression(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, int *idx, float *score) {
    /* fr_expression.js: the box's top-left corner, 1.2x its size, clipped to the image */
    float sq[4];
    fk__face_square(f, sq);
    float x1 = fmaxf(sq[0], 0), y1 = fmaxf(sq[1], 0);
    float x2 = fminf(sq[0] + sq[2] * 1.2f, (float)img->width), y2 = fminf(sq[1] + sq[3] * 1.2f, (float)img->height);
    if (!(x2 - x1 >= 1 && y2 - y1 >= 1)) return fk__ctx_fail(c, FK_EINVAL, "face outside the image");
    fk_rectf_t r = {x1, y1, x2 - x1, y2 - y1};
    static const float zero[3] = {0, 0, 0}, sc[3] = {1 / 255.0f, 1 / 255.0f, 1 / 255.0f};
    fk_tensor_spec_t s = fk__tensor_spec(224, 224, EXPRESSION_ORDER, zero, sc);
    int rc = fk_image_to_tensor(img, &r, &s, c->in);
    if (rc) return fk__ctx_fail(c, rc, "cannot crop the face");
    if ((rc = fk__ctx_run(c, FK__M_EXPRESSION, c->in))) return rc;
    float p[7];
    softmax(c->out, 7, p);
    int best = 0;
    for (int i = 1; i < 7; i++)
        if (p[i] > p[best]) best = i;
    *idx = best;
    *score = p[best];
    return FK_OK;
}

int fk_attributes(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *f, fk_attributes_t *out) {
    if (!c) return FK_EINVAL;
    c->err[0] = 0;
    int rc = face_ok(c, img, f);
    if (rc) return rc;
    if (!out) return fk__ctx_fail(c, FK_EINVAL, "NULL output");
    fk_attributes_t a;
    a.age = a.male = a.left_eye_open = a.right_eye_open = a.yaw = a.pitch = a.roll = NAN;
    a.expression = -1;
    a.expression_score = NAN;
    if (c->s[FK__M_AGE] && (rc = run_ssr(c, img, f, FK__M_AGE, 101, &a.age))) return rc;
    if (c->s[FK__M_GENDER] && (rc = run_ssr(c, img, f, FK__M_GENDER, 1, &a.male))) return rc;
    if (c->s[FK__M_EXPRESSION] && (rc = run_expression(c, img, f, &a.expression, &a.expression_score))) return rc;
    if (c->s[FK__M_EYE] && f->has_landmarks && (rc = run_eyes(c, img, f, &a.left_eye_open, &a.right_eye_open)))
        return rc;
    if (c->s[FK__M_POSE] && (rc = run_pose(c, img, f, &a.yaw, &a.pitch, &a.roll))) return rc;
    *out = a;
    return FK_OK;
}
