/*
 * face.h — internals of the face engine (src/face): the engine (models opened once, shared read-only by
 * every thread), the per-thread context (executor sessions and scratch) and the helpers the files of this
 * folder share. Sits above image/ and nn/, below gallery/, applications and the CLI.
 */
#ifndef FK_FACE_H
#define FK_FACE_H

#include "core/core.h"

#include <pthread.h>
#include <stdint.h>

/* Models other than the detector, indexed like the FK_ENGINE_* bits (bit 1 << i). */
enum {
    FK__M_DETECT = 0,
    FK__M_LANDMARK,
    FK__M_FEATURE,
    FK__M_LIVENESS,
    FK__M_POSE,
    FK__M_EYE,
    FK__M_AGE,
    FK__M_GENDER,
    FK__M_EXPRESSION,
    FK__M_COUNT
};

/* The RFB detector runs at whatever working size a call asks for: one model per size, opened on first
 * use (under the engine's lock) and then never changed, so contexts may keep pointers to a slot. */
#define FK__DET_MAX_SIZES 32

typedef struct fk__det_model {
    int width, height;     /* working size */
    int n_priors;          /* anchors = model output rows */
    float *priors;         /* n_priors x (cx, cy, w, h), normalised to the working size */
    fk_nn_model_t *model;  /* outputs {"scores", "462"} */
} fk__det_model_t;

struct fk_engine {
    char err[512];
    int ok;          /* fk_engine_open() succeeded: contexts may be created */
    unsigned models; /* FK_ENGINE_* opened */
    int threads, use_reference;
    char models_dir[1024];
    fk_nn_model_t *m[FK__M_COUNT]; /* NULL for the detector (see det) and for models not opened */

    pthread_mutex_t det_lock;
    int det_lock_ok;
    fk__det_model_t det[FK__DET_MAX_SIZES];
    int n_det;

    char model_id[FK_TEMPLATE_MODEL_ID_LEN];
    char feature_sha256[65];
    int dim;
    int calibrated;
    double calib_a, calib_b, threshold, liveness_threshold;
    char manifest[1024];
};

/* A detector session of the context for one working size. */
typedef struct fk__det_session {
    const fk__det_model_t *dm;
    fk_nn_session_t *s;
    float *in, *scores, *loc; /* input tensor and the two outputs */
} fk__det_session_t;

/* A detection candidate before non-maximum suppression: corners in image pixels. */
typedef struct fk__cand {
    float x1, y1, x2, y2, score;
} fk__cand_t;

struct fk_ctx {
    fk_engine_t *e;
    char err[512];
    fk_nn_session_t *s[FK__M_COUNT];
    fk__det_session_t det[FK__DET_MAX_SIZES];
    int n_det;
    float *in;       /* scratch input tensor, large enough for every fixed-size model (3x224x224) */
    float *in2;      /* second input (flipped crop) */
    float *out;      /* scratch outputs (all outputs of one model, concatenated) */
    uint8_t *pix;    /* scratch RGB pixels (224x224x3) */
    uint8_t *gray;   /* scratch gray pixels (224x224) */
    fk__cand_t *cand; /* detection candidates */
    size_t cand_cap;
};

/* An NCHW float tensor spec of W x H in ORDER with per-channel MEAN and SCALE ((v - mean) * scale), fill 0. */
fk_tensor_spec_t fk__tensor_spec(int w, int h, fk_channel_order_t order, const float mean[3], const float scale[3]);
/* Message on the context; returns RC. */
int fk__ctx_fail(fk_ctx_t *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The detector model for WIDTH x HEIGHT, opening it on first use. Thread-safe. */
int fk__engine_detector(fk_engine_t *e, int width, int height, const fk__det_model_t **out, char *err,
                        size_t errsize);
/* SSD priors of the RFB detector for a working size, ordered like the model's outputs. Returns the count;
 * with PRIORS non-NULL also writes 4 floats each. */
int fk__rfb_priors(int width, int height, float *priors);
/* Runs model I of the context with one input, writing its outputs concatenated into C->out. */
int fk__ctx_run(fk_ctx_t *c, int i, const float *in);

/* The vendor's crop rule for the face models (fr_landmark scale 1, fr_age/gender 1.4, fr_liveness 2.7):
 * the square box scaled by SCALE about its centre, shrunk to fit the image and shifted inside it. */
fk_rectf_t fk__face_crop_rect(const fk_image_t *img, const float square[4], float scale);
/* The square box the vendor's models were trained on: side = box height, same centre. */
void fk__face_square(const fk_face_t *f, float sq[4]);

#endif
