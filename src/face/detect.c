/*
 * detect.c — face detection with the RFB-320 SSD detector (fr_detect) and 68-point landmarks (fr_landmark).
 * The detector runs at a working size chosen for the image's aspect (the picture is scaled to fit and the
 * rest padded, never stretched). The model's own "boxes" output decodes with priors baked for 320x240, so
 * we take the raw regressions ("462") and decode them with priors generated for the working size
 * (fk__rfb_priors), then threshold, suppress overlaps (greedy NMS on IoU) and map back to image pixels.
 * Landmarks come from a 64x64 gray crop of the square face box, as the vendor's fr_landmark.js does.
 * Layer: face, on image/ and nn/ through the engine and the per-thread context (engine.c).
 */
#include "face/face.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Colour order and default score threshold, measured on detection/dlib (43 boxes + dogs.jpg) and compreface
 * (46 faces): both orders find every face, but with RGB the dog faces score lower (best 0.89 against 0.93
 * for BGR, which the vendor's JS feeds), so that 0.9 keeps 100 % recall with no false positive. */
#define DETECT_ORDER FK_CHANNELS_RGB
#define AUTO_LONG_SIDE 320
#define SIZE_ROUND 32

void fk_detect_options_default(fk_detect_options_t *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->score_threshold = 0.9f;
    o->nms_iou = 0.4f;
}

/* Working size at the image's aspect, longer side LONG_SIDE, both sides rounded up to SIZE_ROUND. */
static void auto_size(int iw, int ih, int long_side, int *w, int *h) {
    double sw, sh;
    if (iw >= ih) {
        sw = long_side;
        sh = (double)long_side * ih / iw;
    } else {
        sh = long_side;
        sw = (double)long_side * iw / ih;
    }
    *w = ((int)ceil(sw - 1e-6) + SIZE_ROUND - 1) / SIZE_ROUND * SIZE_ROUND;
    *h = ((int)ceil(sh - 1e-6) + SIZE_ROUND - 1) / SIZE_ROUND * SIZE_ROUND;
    if (*w < SIZE_ROUND) *w = SIZE_ROUND;
    if (*h < SIZE_ROUND) *h = SIZE_ROUND;
}

static int det_session(fk_ctx_t *c, int w, int h, fk__det_session_t **out) {
    for (int i = 0; i < c->n_det; i++)
        if (c->det[i].dm->width == w && c->det[i].dm->height == h) {
            *out = &c->det[i];
            return FK_OK;
        }
    if (c->n_det == FK__DET_MAX_SIZES) return fk__ctx_fail(c, FK_ELIMIT, "too many detector sizes");
    const fk__det_model_t *dm;
    int rc = fk__engine_detector(c->e, w, h, &dm, c->err, sizeof c->err);
    if (rc) return rc;
    fk__det_session_t *d = &c->det[c->n_det];
    memset(d, 0, sizeof *d);
    d->dm = dm;
    rc = fk_nn_session_create(dm->model, c->e->threads, &d->s);
    if (!rc) {
        d->in = fk__malloc((size_t)3 * w * h * sizeof(float));
        d->scores = fk__malloc((size_t)dm->n_priors * 2 * sizeof(float));
        d->loc = fk__malloc((size_t)dm->n_priors * 4 * sizeof(float));
        if (!d->in || !d->scores || !d->loc) rc = FK_ENOMEM;
    }
    if (rc) {
        fk_nn_session_destroy(d->s);
        fk__free(d->in);
        fk__free(d->scores);
        fk__free(d->loc);
        memset(d, 0, sizeof *d);
        return fk__ctx_fail(c, rc, "cannot create a detector session at %dx%d", w, h);
    }
    c->n_det++;
    *out = d;
    return FK_OK;
}

static int reserve_cand(fk_ctx_t *c, size_t n) {
    if (n <= c->cand_cap) return FK_OK;
    size_t cap = c->cand_cap ? c->cand_cap : 256;
    while (cap < n) cap *= 2;
    fk__cand_t *p = fk__realloc(c->cand, cap * sizeof *p);
    if (!p) return fk__ctx_fail(c, FK_ENOMEM, "out of memory");
    c->cand = p;
    c->cand_cap = cap;
    return FK_OK;
}

/* One detector pass at W x H; appends candidates (image pixels) to c->cand[*n..]. Faces at least
 * MAX_SIDE image pixels are skipped (0 = keep all): the multiscale pass only adds small faces. */
static int detect_pass(fk_ctx_t *c, const fk_image_t *img, int w, int h, const fk_detect_options_t *o,
                       float max_side, size_t *n) {
    fk__det_session_t *d = NULL;
    int rc = det_session(c, w, h, &d);
    if (rc) return rc;
    /* fit the image into w x h, keep its aspect, pad right/bottom with mid-gray (0 after normalisation) */
    double s = fmin((double)w / img->width, (double)h / img->height);
    fk_rectf_t r = {0, 0, (float)(w / s), (float)(h / s)};
    static const float mean[3] = {127, 127, 127}, scale[3] = {1 / 128.0f, 1 / 128.0f, 1 / 128.0f};
    fk_tensor_spec_t spec = fk__tensor_spec(w, h, DETECT_ORDER, mean, scale);
    memset(spec.fill, 127, sizeof spec.fill);
    rc = fk_image_to_tensor(img, &r, &spec, d->in);
    if (rc) return fk__ctx_fail(c, rc, "cannot build the detector input");
    const float *ins[1] = {d->in};
    float *outs[2] = {d->scores, d->loc};
    rc = fk_nn_session_run(d->s, ins, outs);
    if (rc) return fk__ctx_fail(c, rc, "fr_detect: %s", fk_nn_session_errmsg(d->s));
    const float *pr = d->dm->priors;
    float sx = (float)(w / s), sy = (float)(h / s); /* normalised -> image pixels */
    for (int i = 0; i < d->dm->n_priors; i++) {
        float score = d->scores[2 * i + 1];
        if (!(score >= o->score_threshold)) continue;
        const float *p = pr + 4 * i, *l = d->loc + 4 * i;
        float cx = p[0] + l[0] * 0.1f * p[2], cy = p[1] + l[1] * 0.1f * p[3];
        float bw = p[2] * expf(l[2] * 0.2f), bh = p[3] * expf(l[3] * 0.2f);
        fk__cand_t cd = {(cx - bw / 2) * sx, (cy - bh / 2) * sy, (cx + bw / 2) * sx, (cy + bh / 2) * sy, score};
        float side = fminf(cd.x2 - cd.x1, cd.y2 - cd.y1);
        if (!(side > 0) || !isfinite(side) || side < o->min_face) continue;
        if (max_side > 0 && side >= max_side) continue;
        if ((rc = reserve_cand(c, *n + 1))) return rc;
        c->cand[(*n)++] = cd;
    }
    return FK_OK;
}

static int by_score(const void *a, const void *b) {
    float x = ((const fk__cand_t *)a)->score, y = ((const fk__cand_t *)b)->score;
    return (x < y) - (x > y);
}

static float iou(const fk__cand_t *a, const fk__cand_t *b) {
    float ix = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1), iy = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy;
    float u = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return u > 0 ? inter / u : 0;
}

/* Greedy NMS over c->cand[0..n) sorted by score; compacts the kept ones to the front. */
static size_t nms(fk__cand_t *cand, size_t n, float thr) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t k = 0; k < kept; k++)
            if (iou(&cand[i], &cand[k]) > thr) {
                keep = 0;
                break;
            }
        if (keep) cand[kept++] = cand[i];
    }
    return kept;
}

int fk_detect(fk_ctx_t *c, const fk_image_t *img, const fk_detect_options_t *opt, fk_face_t **faces, size_t *n) {
    if (faces) *faces = NULL;
    if (n) *n = 0;
    if (!c) return FK_EINVAL;
    c->err[0] = 0;
    if (!img || !img->rgb || img->width < 1 || img->height < 1 || !faces || !n)
        return fk__ctx_fail(c, FK_EINVAL, "fk_detect: NULL or empty argument");
    fk_detect_options_t o;
    if (opt) o = *opt;
    else fk_detect_options_default(&o);
    if ((o.width > 0) != (o.height > 0) || o.width < 0 || o.height < 0 || o.width > 4096 || o.height > 4096 ||
        !(o.nms_iou >= 0 && o.nms_iou <= 1) || !(o.score_threshold >= 0 && o.score_threshold <= 1) ||
        !(o.min_face >= 0) || o.max_faces < 0)
        return fk__ctx_fail(c, FK_EINVAL, "fk_detect: invalid options");
    if (!(o.flags & FK_DETECT_NO_LANDMARKS) && !c->s[FK__M_LANDMARK])
        return fk__ctx_fail(c, FK_EUNSUPPORTED, "the engine was opened without fr_landmark (use FK_DETECT_NO_LANDMARKS)");
    int w = o.width, h = o.height;
    if (!w) auto_size(img->width, img->height, AUTO_LONG_SIDE, &w, &h);
    size_t nc = 0;
    int rc = detect_pass(c, img, w, h, &o, 0, &nc);
    if (!rc && (o.flags & FK_DETECT_MULTISCALE)) {
        /* the second pass only contributes faces too small for the first one to see reliably */
        double s = fmin((double)w / img->width, (double)h / img->height);
        int w2, h2;
        auto_size(img->width, img->height, 2 * (w > h ? w : h), &w2, &h2);
        rc = detect_pass(c, img, w2, h2, &o, (float)(40.0 / s), &nc);
    }
    if (rc) return rc;
    if (nc > 1) qsort(c->cand, nc, sizeof *c->cand, by_score);
    nc = nms(c->cand, nc, o.nms_iou);
    if (o.max_faces && nc > (size_t)o.max_faces) nc = (size_t)o.max_faces;
    if (!nc) return FK_OK;
    fk_face_t *f = fk__calloc(nc, sizeof *f);
    if (!f) return fk__ctx_fail(c, FK_ENOMEM, "out of memory");
    for (size_t i = 0; i < nc; i++) {
        const fk__cand_t *cd = &c->cand[i];
        f[i].box[0] = cd->x1;
        f[i].box[1] = cd->y1;
        f[i].box[2] = cd->x2 - cd->x1;
        f[i].box[3] = cd->y2 - cd->y1;
        f[i].score = cd->score;
        if (!(o.flags & FK_DETECT_NO_LANDMARKS) && (rc = fk_face_landmarks(c, img, &f[i]))) {
            fk__free(f);
            return rc;
        }
    }
    *faces = f;
    *n = nc;
    return FK_OK;
}

/* ---- crops and landmarks ---- */

void fk__face_square(const fk_face_t *f, float sq[4]) {
    float side = f->box[3];
    float cx = f->box[0] + f->box[2] / 2, cy = f->box[1] + f->box[3] / 2;
    sq[0] = cx - side / 2;
    sq[1] = cy - side / 2;
    sq[2] = side;
    sq[3] = side;
}

fk_rectf_t fk__face_crop_rect(const fk_image_t *img, const float b[4], float scale_value) {
    float W = (float)img->width, H = (float)img->height;
    float scale = fminf((H - 1) / b[3], fminf((W - 1) / b[2], scale_value));
    float nw = b[2] * scale, nh = b[3] * scale;
    float cx = b[0] + b[2] / 2, cy = b[1] + b[3] / 2;
    float x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
    if (x1 < 0) {
        x2 -= x1;
        x1 = 0;
    }
    if (y1 < 0) {
        y2 -= y1;
        y1 = 0;
    }
    if (x2 > W - 1) {
        x1 -= x2 - W + 1;
        x2 = W - 1;
    }
    if (y2 > H - 1) {
        y1 -= y2 - H + 1;
        y2 = H - 1;
    }
    if (x1 < 0) x1 = 0;
    if (y1 < 0) y1 = 0;
    fk_rectf_t r = {x1, y1, x2 - x1, y2 - y1};
    if (r.w < 1) r.w = 1;
    if (r.h < 1) r.h = 1;
    return r;
}

int fk_face_landmarks(fk_ctx_t *c, const fk_image_t *img, fk_face_t *face) {
    if (!c) return FK_EINVAL;
    if (!img || !img->rgb || !face) return fk__ctx_fail(c, FK_EINVAL, "fk_face_landmarks: NULL argument");
    if (!c->s[FK__M_LANDMARK]) return fk__ctx_fail(c, FK_EUNSUPPORTED, "the engine was opened without fr_landmark");
    if (!(face->box[2] > 0 && face->box[3] > 0) || !isfinite(face->box[0]) || !isfinite(face->box[1]))
        return fk__ctx_fail(c, FK_EINVAL, "fk_face_landmarks: empty box");
    float sq[4];
    fk__face_square(face, sq);
    fk_rectf_t r = fk__face_crop_rect(img, sq, 1.0f);
    fk_image_t crop = {64, 64, 64 * 3, c->pix};
    int rc = fk_image_resample(img, &r, NULL, &crop);
    if (!rc) rc = fk_image_to_gray(&crop, c->gray, 64);
    if (rc) return fk__ctx_fail(c, rc, "cannot crop the face for landmarks");
    for (int i = 0; i < 64 * 64; i++) c->in[i] = c->gray[i] * (1.0f / 256.0f);
    if ((rc = fk__ctx_run(c, FK__M_LANDMARK, c->in))) return rc;
    const float *o = c->out;
    for (int k = 0; k < 68; k++) {
        face->landmarks68[k].x = r.x + o[2 * k] * r.w;
        face->landmarks68[k].y = r.y + o[2 * k + 1] * r.h;
    }
    const fk_pointf_t *p = face->landmarks68;
    fk_pointf_t le = {0, 0}, re = {0, 0};
    for (int k = 0; k < 6; k++) {
        le.x += p[36 + k].x / 6;
        le.y += p[36 + k].y / 6;
        re.x += p[42 + k].x / 6;
        re.y += p[42 + k].y / 6;
    }
    face->landmarks[FK_LM_LEFT_EYE] = le;
    face->landmarks[FK_LM_RIGHT_EYE] = re;
    face->landmarks[FK_LM_NOSE] = p[30];
    face->landmarks[FK_LM_MOUTH_LEFT] = p[48];
    face->landmarks[FK_LM_MOUTH_RIGHT] = p[54];
    face->has_landmarks = 1;
    return FK_OK;
}
