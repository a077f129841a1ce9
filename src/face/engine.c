/*
 * engine.c — the face engine's life cycle: fk_engine_open() opens every model once (the RFB detector lazily,
 * one per working size) and reads the model manifest (compare calibration, default thresholds);
 * fk_ctx_create() gives a thread its own executor sessions and scratch buffers. Sits on nn/ and image/;
 * the pipeline stages (detect.c, align.c, template.c, analyze.c) run on these two objects.
 */
#include "face/face.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const model_files[FK__M_COUNT] = {
    "fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "fr_liveness.onnx", "fr_pose.onnx",
    "fr_eye.onnx",    "fr_age.onnx",      "fr_gender.onnx",  "fr_expression.onnx"};

/* Uncalibrated engines (no manifest): score = (cosine + 1) / 2, threshold at cosine 0.4. */
#define UNCAL_THRESHOLD 0.7
#define DEFAULT_LIVENESS_THRESHOLD 0.5

static int efail(fk_engine_t *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int efail(fk_engine_t *e, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    return rc;
}

fk_tensor_spec_t fk__tensor_spec(int w, int h, fk_channel_order_t order, const float mean[3], const float scale[3]) {
    fk_tensor_spec_t s;
    memset(&s, 0, sizeof s);
    s.width = w;
    s.height = h;
    s.layout = FK_TENSOR_CHW;
    s.order = order;
    for (int k = 0; k < 3; k++) {
        s.mean[k] = mean[k];
        s.scale[k] = scale[k];
    }
    return s;
}

int fk__ctx_fail(fk_ctx_t *c, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

int fk__rfb_priors(int width, int height, float *priors) {
    static const int steps[4] = {8, 16, 32, 64};
    static const int n_min[4] = {3, 2, 2, 3};
    static const float min_sizes[4][3] = {{10, 16, 24}, {32, 48, 0}, {64, 96, 0}, {128, 192, 256}};
    int n = 0;
    for (int k = 0; k < 4; k++) {
        int fw = (width + steps[k] - 1) / steps[k], fh = (height + steps[k] - 1) / steps[k];
        for (int i = 0; i < fh; i++)
            for (int j = 0; j < fw; j++)
                for (int m = 0; m < n_min[k]; m++) {
                    if (priors) {
                        /* as the model's own decoder (Ultra-Light-Fast-Generic-Face-Detector's priors):
                         * centres spread over the feature map, so (j + 0.5) / fw rather than
                         * (j + 0.5) * step / width when the size is not a multiple of the step, and
                         * every value clamped to 0..1 */
                        float *p = priors + 4 * n;
                        p[0] = fminf((j + 0.5f) / fw, 1.0f);
                        p[1] = fminf((i + 0.5f) / fh, 1.0f);
                        p[2] = fminf(min_sizes[k][m] / width, 1.0f);
                        p[3] = fminf(min_sizes[k][m] / height, 1.0f);
                    }
                    n++;
                }
    }
    return n;
}

static void model_path(const fk_engine_t *e, int i, char *buf, size_t size) {
    snprintf(buf, size, "%s/faceplugin/%s", e->models_dir, model_files[i]);
}

/* Opens the detector for one working size. Caller holds det_lock. */
static int open_detector(fk_engine_t *e, int width, int height, fk__det_model_t *dm, char *err, size_t errsize) {
    char path[1200];
    model_path(e, FK__M_DETECT, path, sizeof path);
    static const char *const outs[2] = {"scores", "462"};
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.threads = e->threads;
    o.use_reference = e->use_reference;
    o.input_height = height;
    o.input_width = width;
    o.outputs = outs;
    o.n_outputs = 2;
    fk_nn_model_t *m = NULL;
    int rc = fk_nn_model_open(path, &o, &m);
    if (rc) {
        fk__seterr(err, errsize, "%s at %dx%d: %s", path, width, height, fk_nn_model_errmsg(m));
        fk_nn_model_close(m);
        return rc;
    }
    int n = fk__rfb_priors(width, height, NULL);
    if (fk_nn_model_output_numel(m, 0) != (size_t)n * 2 || fk_nn_model_output_numel(m, 1) != (size_t)n * 4) {
        fk__seterr(err, errsize, "%s at %dx%d: outputs do not match %d priors", path, width, height, n);
        fk_nn_model_close(m);
        return FK_ESHAPE;
    }
    float *p = fk__malloc((size_t)n * 4 * sizeof *p);
    if (!p) {
        fk_nn_model_close(m);
        fk__seterr(err, errsize, "out of memory");
        return FK_ENOMEM;
    }
    fk__rfb_priors(width, height, p);
    dm->width = width;
    dm->height = height;
    dm->n_priors = n;
    dm->priors = p;
    dm->model = m;
    return FK_OK;
}

int fk__engine_detector(fk_engine_t *e, int width, int height, const fk__det_model_t **out, char *err,
                        size_t errsize) {
    if (!(e->models & FK_ENGINE_DETECT)) {
        fk__seterr(err, errsize, "the engine was opened without the detector");
        return FK_EUNSUPPORTED;
    }
    int rc = FK_OK;
    pthread_mutex_lock(&e->det_lock);
    int i;
    for (i = 0; i < e->n_det; i++)
        if (e->det[i].width == width && e->det[i].height == height) break;
    if (i == e->n_det) {
        if (e->n_det == FK__DET_MAX_SIZES) {
            fk__seterr(err, errsize, "too many distinct detector sizes (%d)", FK__DET_MAX_SIZES);
            rc = FK_ELIMIT;
        } else {
            rc = open_detector(e, width, height, &e->det[i], err, errsize);
            if (!rc) e->n_det++;
        }
    }
    pthread_mutex_unlock(&e->det_lock);
    *out = rc ? NULL : &e->det[i];
    return rc;
}

/* ---- manifest ---- */

static int read_manifest(fk_engine_t *e, const char *path, int required) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!required) return FK_OK;
        return efail(e, FK_EIO, "cannot open manifest %s", path);
    }
    char buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    int big = len == sizeof buf;
    fclose(f);
    if (big) return efail(e, FK_ELIMIT, "manifest %s larger than 64 KiB", path);
    fk__json_init();
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return efail(e, FK_EFORMAT, "manifest %s: line %d: %s", path, jerr.line, jerr.text);
    int rc = FK_OK;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    json_t *ver = json_object_get(root, "version");
    json_t *cmp = json_object_get(root, "compare");
    json_t *fm = json_object_get(root, "feature_model");
    json_t *live = json_object_get(root, "liveness");
    if (!fmt || strcmp(fmt, "facekit-model-manifest") || !json_is_integer(ver)) {
        rc = efail(e, FK_EFORMAT, "manifest %s: not a facekit-model-manifest", path);
        goto done;
    }
    if (json_integer_value(ver) != 1) {
        rc = efail(e, FK_EMISMATCH, "manifest %s: version %lld not supported", path,
                   (long long)json_integer_value(ver));
        goto done;
    }
    if (json_is_object(live)) {
        json_t *t = json_object_get(live, "threshold");
        if (t && (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 1)) {
            rc = efail(e, FK_EFORMAT, "manifest %s: liveness.threshold must be a number in 0..1", path);
            goto done;
        }
        if (t) e->liveness_threshold = json_number_value(t);
    }
    if (json_is_object(cmp) && (e->models & FK_ENGINE_FEATURE)) {
        const char *sha = json_string_value(json_object_get(fm, "sha256"));
        if (!sha || strlen(sha) != 64) {
            rc = efail(e, FK_EFORMAT, "manifest %s: feature_model.sha256 missing", path);
            goto done;
        }
        if (strcmp(sha, e->feature_sha256)) {
            rc = efail(e, FK_EMISMATCH,
                       "manifest %s was fitted for fr_feature sha256 %.16s..., the file here is %.16s...: "
                       "refit with `facekit calibrate lfw`",
                       path, sha, e->feature_sha256);
            goto done;
        }
        json_t *a = json_object_get(cmp, "a"), *b = json_object_get(cmp, "b"), *t = json_object_get(cmp, "threshold");
        if (!json_is_number(a) || !json_is_number(b) || !json_is_number(t) || !(json_number_value(a) > 0) ||
            !isfinite(json_number_value(b)) || !(json_number_value(t) >= 0 && json_number_value(t) <= 1)) {
            rc = efail(e, FK_EFORMAT, "manifest %s: compare needs a > 0, b and threshold in 0..1", path);
            goto done;
        }
        e->calib_a = json_number_value(a);
        e->calib_b = json_number_value(b);
        e->threshold = json_number_value(t);
        e->calibrated = 1;
    }
    snprintf(e->manifest, sizeof e->manifest, "%s", path);
done:
    json_decref(root);
    return rc;
}

/* ---- engine ---- */

int fk_engine_open(const fk_engine_options_t *opt, fk_engine_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    fk_engine_t *e = fk__calloc(1, sizeof *e);
    if (!e) return FK_ENOMEM;
    *out = e;
    fk_engine_options_t o;
    if (opt) o = *opt;
    else memset(&o, 0, sizeof o);
    e->models = o.models ? (o.models & FK_ENGINE_ALL) : FK_ENGINE_ALL;
    e->threads = o.threads > 0 ? o.threads : 1;
    e->use_reference = o.use_reference;
    e->dim = 512;
    e->threshold = UNCAL_THRESHOLD;
    e->liveness_threshold = DEFAULT_LIVENESS_THRESHOLD;
    if (pthread_mutex_init(&e->det_lock, NULL)) return efail(e, FK_ENOMEM, "cannot create a mutex");
    e->det_lock_ok = 1;
    const char *dir = o.models_dir && *o.models_dir ? o.models_dir : "models";
    if (strlen(dir) >= sizeof e->models_dir - 64) return efail(e, FK_EINVAL, "models_dir too long");
    snprintf(e->models_dir, sizeof e->models_dir, "%s", dir);

    char path[1200];
    for (int i = 1; i < FK__M_COUNT; i++) {
        if (!(e->models & (1u << i))) continue;
        model_path(e, i, path, sizeof path);
        fk_nn_options_t no;
        memset(&no, 0, sizeof no);
        no.threads = e->threads;
        no.use_reference = e->use_reference;
        int rc = fk_nn_model_open(path, &no, &e->m[i]);
        if (rc) return efail(e, rc, "%s", fk_nn_model_errmsg(e->m[i]));
    }
    if (e->models & FK_ENGINE_FEATURE) {
        model_path(e, FK__M_FEATURE, path, sizeof path);
        int rc = fk_sha256_file(path, e->feature_sha256, NULL);
        if (rc) return efail(e, rc, "cannot hash %s", path);
        snprintf(e->model_id, sizeof e->model_id, "fr_feature:%.16s", e->feature_sha256);
        if (fk_nn_model_output_numel(e->m[FK__M_FEATURE], 0) != 512 ||
            fk_nn_model_input_numel(e->m[FK__M_FEATURE], 0) != 3 * 112 * 112)
            return efail(e, FK_ESHAPE, "%s: expected a 3x112x112 -> 512 model", path);
    }
    if (e->models & FK_ENGINE_DETECT) { /* the default working size, so that a broken file fails here */
        const fk__det_model_t *dm;
        int rc = fk__engine_detector(e, 320, 240, &dm, e->err, sizeof e->err);
        if (rc) return rc;
    }
    int rc;
    if (o.manifest && *o.manifest) rc = read_manifest(e, o.manifest, 1);
    else {
        snprintf(path, sizeof path, "%s/manifest.json", e->models_dir);
        rc = read_manifest(e, path, 0);
    }
    e->ok = rc == FK_OK;
    return rc;
}

void fk_engine_close(fk_engine_t *e) {
    if (!e) return;
    for (int i = 0; i < FK__M_COUNT; i++) fk_nn_model_close(e->m[i]);
    for (int i = 0; i < e->n_det; i++) {
        fk_nn_model_close(e->det[i].model);
        fk__free(e->det[i].priors);
    }
    if (e->det_lock_ok) pthread_mutex_destroy(&e->det_lock);
    fk__free(e);
}

const char *fk_engine_errmsg(const fk_engine_t *e) {
    return e ? e->err : "out of memory";
}

int fk_engine_info(const fk_engine_t *e, fk_engine_info_t *out) {
    if (!e || !e->ok || !out) return FK_EINVAL;
    memset(out, 0, sizeof *out);
    out->models = e->models;
    out->model_id = e->model_id;
    out->dim = e->dim;
    out->calibrated = e->calibrated;
    out->calib_a = e->calib_a;
    out->calib_b = e->calib_b;
    out->threshold = e->threshold;
    out->liveness_threshold = e->liveness_threshold;
    out->manifest = e->manifest;
    return FK_OK;
}

/* ---- context ---- */

#define SCRATCH_FLOATS (3 * 224 * 224)

int fk_ctx_create(fk_engine_t *e, fk_ctx_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!e || !e->ok) return FK_EINVAL; /* misuse: a handle whose open failed */
    fk_ctx_t *c = fk__calloc(1, sizeof *c);
    if (!c) return FK_ENOMEM;
    c->e = e;
    int rc = FK_OK;
    size_t out_floats = 1024;
    for (int i = 1; i < FK__M_COUNT && !rc; i++) {
        if (!e->m[i]) continue;
        rc = fk_nn_session_create(e->m[i], e->threads, &c->s[i]);
        size_t tot = 0;
        for (int k = 0; k < fk_nn_model_output_count(e->m[i]); k++) tot += fk_nn_model_output_numel(e->m[i], k);
        if (tot > out_floats) out_floats = tot;
    }
    if (!rc) {
        c->in = fk__malloc(SCRATCH_FLOATS * sizeof(float));
        c->in2 = fk__malloc(SCRATCH_FLOATS * sizeof(float));
        c->out = fk__malloc(out_floats * sizeof(float));
        c->pix = fk__malloc(SCRATCH_FLOATS);
        c->gray = fk__malloc(224 * 224);
        if (!c->in || !c->in2 || !c->out || !c->pix || !c->gray) rc = FK_ENOMEM;
    }
    if (rc) {
        fk_ctx_destroy(c);
        return rc;
    }
    *out = c;
    return FK_OK;
}

void fk_ctx_destroy(fk_ctx_t *c) {
    if (!c) return;
    for (int i = 0; i < FK__M_COUNT; i++) fk_nn_session_destroy(c->s[i]);
    for (int i = 0; i < c->n_det; i++) {
        fk_nn_session_destroy(c->det[i].s);
        fk__free(c->det[i].in);
        fk__free(c->det[i].scores);
        fk__free(c->det[i].loc);
    }
    fk__free(c->in);
    fk__free(c->in2);
    fk__free(c->out);
    fk__free(c->pix);
    fk__free(c->gray);
    fk__free(c->cand);
    fk__free(c);
}

const char *fk_ctx_errmsg(const fk_ctx_t *c) { return c ? c->err : "out of memory"; }

int fk__ctx_run(fk_ctx_t *c, int i, const float *in) {
    const fk_engine_t *e = c->e;
    if (!c->s[i]) return fk__ctx_fail(c, FK_EUNSUPPORTED, "the engine was opened without %s", model_files[i]);
    float *outs[16];
    int n = fk_nn_model_output_count(e->m[i]);
    if (n > 16) return fk__ctx_fail(c, FK_EINTERNAL, "%s: too many outputs", model_files[i]);
    float *p = c->out;
    for (int k = 0; k < n; k++) {
        outs[k] = p;
        p += fk_nn_model_output_numel(e->m[i], k);
    }
    const float *ins[1] = {in};
    int rc = fk_nn_session_run(c->s[i], ins, outs);
    if (rc) return fk__ctx_fail(c, rc, "%s: %s", model_files[i], fk_nn_session_errmsg(c->s[i]));
    return FK_OK;
}
