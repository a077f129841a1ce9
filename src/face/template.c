/*
 * template.c — face templates: the 512-d embedding of the aligned crop (fr_feature; BGR, (x - 127) / 128,
 * L2-normalised, optionally fused with the mirrored crop), the versioned ".fkt" binary format with its
 * CRC, and comparison: cosine mapped through the manifest's logistic calibration onto a 0..1 score.
 * Templates carry the id of the model that made them; one from another model is refused, never compared.
 * Layer: face (engine.c provides the models and calibration).
 */
#include "face/face.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FKT_MAGIC "FKT1"
#define FKT_VERSION 1
#define FKT_DTYPE_F32 1
#define FKT_HEADER 64

int fk_embed_aligned(fk_ctx_t *c, const fk_image_t *a, unsigned flags, fk_template_t *out) {
    if (!c) return FK_EINVAL;
    c->err[0] = 0;
    if (!a || !a->rgb || !out) return fk__ctx_fail(c, FK_EINVAL, "fk_embed_aligned: NULL argument");
    if (!c->s[FK__M_FEATURE]) return fk__ctx_fail(c, FK_EUNSUPPORTED, "the engine was opened without fr_feature");
    if (a->width != 112 || a->height != 112 || a->stride < 3 * 112)
        return fk__ctx_fail(c, FK_EINVAL, "fk_embed_aligned: the crop must be 112x112");
    /* BGR planes, (x - 127) / 128: BGR gives 99.45 % on LFW against 99.20 % for RGB. The crop is already
     * 112x112, so a direct conversion instead of a second (identity) resample. */
    float *pb = c->in, *pg = pb + 112 * 112, *pr = pg + 112 * 112;
    for (int y = 0; y < 112; y++) {
        const uint8_t *row = a->rgb + (size_t)y * a->stride;
        for (int x = 0; x < 112; x++) {
            pr[y * 112 + x] = ((float)row[3 * x] - 127.0f) * (1.0f / 128.0f);
            pg[y * 112 + x] = ((float)row[3 * x + 1] - 127.0f) * (1.0f / 128.0f);
            pb[y * 112 + x] = ((float)row[3 * x + 2] - 127.0f) * (1.0f / 128.0f);
        }
    }
    int rc;
    if ((rc = fk__ctx_run(c, FK__M_FEATURE, c->in))) return rc;
    float v[FK_TEMPLATE_MAX_DIM];
    int dim = c->e->dim;
    memcpy(v, c->out, (size_t)dim * sizeof(float));
    if (flags & FK_EMBED_FLIP) {
        for (int p = 0; p < 3 * 112; p++) { /* each row of each plane reversed */
            const float *s = c->in + (size_t)p * 112;
            float *d = c->in2 + (size_t)p * 112;
            for (int x = 0; x < 112; x++) d[x] = s[111 - x];
        }
        if ((rc = fk__ctx_run(c, FK__M_FEATURE, c->in2))) return rc;
        /* sum of the two unit vectors: normalise each first so that neither dominates */
        double n1 = 0, n2 = 0;
        for (int i = 0; i < dim; i++) {
            n1 += (double)v[i] * v[i];
            n2 += (double)c->out[i] * c->out[i];
        }
        n1 = n1 > 0 ? 1 / sqrt(n1) : 0;
        n2 = n2 > 0 ? 1 / sqrt(n2) : 0;
        for (int i = 0; i < dim; i++) v[i] = (float)(v[i] * n1 + c->out[i] * n2);
    }
    double nn = 0;
    for (int i = 0; i < dim; i++) nn += (double)v[i] * v[i];
    if (!(nn > 0) || !isfinite(nn)) return fk__ctx_fail(c, FK_EINTERNAL, "fr_feature produced a zero/NaN vector");
    double inv = 1 / sqrt(nn);
    memset(out, 0, sizeof *out);
    snprintf(out->model_id, sizeof out->model_id, "%s", c->e->model_id);
    out->dim = dim;
    out->flags = flags & FK_EMBED_FLIP;
    for (int i = 0; i < dim; i++) out->v[i] = (float)(v[i] * inv);
    return FK_OK;
}

int fk_embed(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *face, unsigned flags, fk_template_t *out) {
    if (!c) return FK_EINVAL;
    if (!img || !face || !out) return fk__ctx_fail(c, FK_EINVAL, "fk_embed: NULL argument");
    if (!face->has_landmarks) return fk__ctx_fail(c, FK_EINVAL, "fk_embed: the face has no landmarks");
    fk_image_t a = {112, 112, 112 * 3, c->pix};
    int rc = fk_face_align(img, face, &a, NULL);
    if (rc) return fk__ctx_fail(c, rc, "cannot align the face");
    return fk_embed_aligned(c, &a, flags, out);
}

int fk_embed_largest(fk_ctx_t *c, const fk_image_t *img, unsigned flags, fk_template_t *out, fk_face_t *face_out) {
    if (!c) return FK_EINVAL;
    fk_face_t *f;
    size_t n;
    fk_detect_options_t o;
    fk_detect_options_default(&o);
    o.flags = FK_DETECT_NO_LANDMARKS;
    int rc = fk_detect(c, img, &o, &f, &n);
    if (rc) return rc;
    if (!n) return fk__ctx_fail(c, FK_ENOFACE, "no face found");
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (f[i].box[2] * f[i].box[3] > f[best].box[2] * f[best].box[3]) best = i;
    fk_face_t face = f[best];
    fk__free(f);
    if ((rc = fk_face_landmarks(c, img, &face))) return rc;
    if ((rc = fk_embed(c, img, &face, flags, out))) return rc;
    if (face_out) *face_out = face;
    return FK_OK;
}

/* ---- .fkt format ---- */

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int template_ok(const fk_template_t *t) {
    return t && t->dim >= 1 && t->dim <= FK_TEMPLATE_MAX_DIM &&
           memchr(t->model_id, 0, sizeof t->model_id) != NULL;
}

size_t fk_template_serialized_size(const fk_template_t *t) {
    return template_ok(t) ? FKT_HEADER + 4 * (size_t)t->dim + 4 : 0;
}

int fk_template_serialize(const fk_template_t *t, void *buf, size_t cap, size_t *n) {
    if (!template_ok(t) || !buf) return FK_EINVAL;
    size_t need = fk_template_serialized_size(t);
    if (n) *n = need;
    if (cap < need) return FK_ELIMIT;
    uint8_t *p = buf;
    memset(p, 0, FKT_HEADER);
    memcpy(p, FKT_MAGIC, 4);
    put16(p + 4, FKT_VERSION);
    put16(p + 6, FKT_DTYPE_F32);
    put32(p + 8, (uint32_t)t->dim);
    put32(p + 12, t->flags);
    memcpy(p + 16, t->model_id, strlen(t->model_id));
    for (int i = 0; i < t->dim; i++) {
        uint32_t u;
        memcpy(&u, &t->v[i], 4);
        put32(p + FKT_HEADER + 4 * (size_t)i, u);
    }
    put32(p + need - 4, crc32_ieee(p, need - 4));
    return FK_OK;
}

int fk_template_parse(const void *bytes, size_t n, fk_template_t *out) {
    if (!bytes || !out) return FK_EINVAL;
    const uint8_t *p = bytes;
    if (n < FKT_HEADER + 4 || memcmp(p, FKT_MAGIC, 4)) return FK_EFORMAT;
    uint32_t ver = get16(p + 4), dtype = get16(p + 6), dim = get32(p + 8);
    if (ver != FKT_VERSION) return ver > FKT_VERSION ? FK_EMISMATCH : FK_EFORMAT;
    if (dtype != FKT_DTYPE_F32 || dim < 1 || dim > FK_TEMPLATE_MAX_DIM) return FK_EFORMAT;
    size_t need = FKT_HEADER + 4 * (size_t)dim + 4;
    if (n != need) return n < need ? FK_ECHECKSUM : FK_EFORMAT; /* truncated / trailing bytes */
    if (crc32_ieee(p, need - 4) != get32(p + need - 4)) return FK_ECHECKSUM;
    if (!memchr(p + 16, 0, FK_TEMPLATE_MODEL_ID_LEN)) return FK_EFORMAT;
    fk_template_t t;
    memset(&t, 0, sizeof t);
    memcpy(t.model_id, p + 16, FK_TEMPLATE_MODEL_ID_LEN);
    t.dim = (int)dim;
    t.flags = get32(p + 12);
    for (uint32_t i = 0; i < dim; i++) {
        uint32_t u = get32(p + FKT_HEADER + 4 * (size_t)i);
        memcpy(&t.v[i], &u, 4);
        if (!isfinite(t.v[i])) return FK_EFORMAT;
    }
    *out = t;
    return FK_OK;
}

int fk_template_save(const fk_template_t *t, const char *path) {
    if (!template_ok(t) || !path) return FK_EINVAL;
    uint8_t buf[FKT_HEADER + 4 * FK_TEMPLATE_MAX_DIM + 4];
    size_t n;
    int rc = fk_template_serialize(t, buf, sizeof buf, &n);
    if (rc) return rc;
    FILE *f = fopen(path, "wb");
    if (!f) return FK_EIO;
    int bad = fwrite(buf, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? FK_EIO : FK_OK;
}

int fk_template_load(const char *path, fk_template_t *out) {
    if (!path || !out) return FK_EINVAL;
    uint8_t buf[FKT_HEADER + 4 * FK_TEMPLATE_MAX_DIM + 8];
    FILE *f = fopen(path, "rb");
    if (!f) return FK_EIO;
    size_t n = fread(buf, 1, sizeof buf, f);
    int err = ferror(f);
    fclose(f);
    if (err) return FK_EIO;
    if (n == sizeof buf) return FK_EFORMAT; /* longer than any template */
    return fk_template_parse(buf, n, out);
}

int fk_engine_check_template(const fk_engine_t *e, const fk_template_t *t) {
    if (!e || !e->ok || !template_ok(t)) return FK_EINVAL;
    if (!e->model_id[0] || strcmp(t->model_id, e->model_id) || t->dim != e->dim) return FK_EMISMATCH;
    return FK_OK;
}

int fk_compare(const fk_engine_t *e, const fk_template_t *a, const fk_template_t *b, double threshold,
               fk_match_t *out) {
    if (!e || !template_ok(a) || !template_ok(b) || !out || !(threshold <= 1) || isnan(threshold))
        return FK_EINVAL;
    int rc = fk_engine_check_template(e, a);
    if (!rc) rc = fk_engine_check_template(e, b);
    if (rc) return rc;
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < a->dim; i++) {
        dot += (double)a->v[i] * b->v[i];
        na += (double)a->v[i] * a->v[i];
        nb += (double)b->v[i] * b->v[i];
    }
    double cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
    if (cosine > 1) cosine = 1;
    if (cosine < -1) cosine = -1;
    out->cosine = cosine;
    out->score = e->calibrated ? 1 / (1 + exp(-(e->calib_a * cosine + e->calib_b))) : (cosine + 1) / 2;
    out->threshold = threshold >= 0 ? threshold : e->threshold;
    out->same = out->score >= out->threshold;
    return FK_OK;
}
