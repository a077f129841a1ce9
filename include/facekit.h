/*
 * facekit.h — the public C API of facekit, a face-recognition engine.
 *
 * This header is the specification: every exported function is described here with who owns what,
 * what it returns and whether it may be called from several threads at once.
 *
 * Conventions (see docs/architecture.md):
 *   - Every function that can fail returns `enum fk_status` (0 = FK_OK, negative = error).
 *   - Objects are opaque handles with open/close (or create/destroy) pairs; closing NULL does nothing.
 *   - The last error message lives on the handle: fk_model_errmsg(m) and so on.
 *   - The library never prints and never aborts on outside input (images, model files, network bytes).
 *   - Strings and buffers returned by the library are freed with fk_free(); buffers the caller passes in
 *     are never freed by the library.
 */
#ifndef FACEKIT_H
#define FACEKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FK_BUILDING_LIBRARY) && defined(__GNUC__)
#define FK_API __attribute__((visibility("default")))
#else
#define FK_API
#endif

#define FK_VERSION_MAJOR 0
#define FK_VERSION_MINOR 1
#define FK_VERSION_PATCH 0
#define FK_VERSION_STRING "0.1.0"

/* Version of the library actually linked: MAJOR*10000 + MINOR*100 + PATCH. Thread-safe. */
FK_API int fk_version_number(void);
FK_API const char *fk_version_string(void);

/* Status codes. X-macro so that the enum and its strings cannot drift apart. */
#define FK_STATUS_LIST(X)                                                  \
    X(OK, 0, "ok")                                                         \
    X(EINVAL, -1, "invalid argument")                                      \
    X(ENOMEM, -2, "out of memory")                                         \
    X(EIO, -3, "input/output error")                                       \
    X(EFORMAT, -4, "malformed or unsupported file")                        \
    X(EUNSUPPORTED, -5, "unsupported operation")                           \
    X(ESHAPE, -6, "shape mismatch")                                        \
    X(ENOTFOUND, -7, "not found")                                          \
    X(ECHECKSUM, -8, "checksum mismatch")                                  \
    X(ELIMIT, -9, "size limit exceeded")                                   \
    X(ENOFACE, -10, "no face found")                                       \
    X(EMISMATCH, -11, "incompatible data (other model or version)")        \
    X(EAUTH, -12, "authentication failed")                                 \
    X(EDENIED, -13, "permission denied")                                   \
    X(EINTERNAL, -14, "internal error")

enum fk_status {
#define FK__STATUS_ENUM(name, value, text) FK_##name = value,
    FK_STATUS_LIST(FK__STATUS_ENUM)
#undef FK__STATUS_ENUM
};

/* Static English text for a status code; never NULL. Thread-safe. */
FK_API const char *fk_status_str(int status);

/* Frees memory returned by the library (strings, result arrays). fk_free(NULL) does nothing. */
FK_API void fk_free(void *p);

/* Bytes currently allocated through the library's allocator (all threads). For leak tests and metrics. */
FK_API size_t fk_mem_in_use(void);

/* ------------------------------------------------------------------------------------------------ */
/* Model files                                                                                        */

/* The lock file lists every model file with its SHA-256. One result per file. */
typedef struct fk_model_file_check {
    char name[264];    /* "faceplugin/fr_detect.onnx" */
    uint64_t size;     /* bytes on disk, 0 when missing */
    char sha256[65];   /* hex digest of the file on disk, "" when missing */
    int ok;            /* 1 when present and matching the lock */
    char problem[160]; /* "missing", "sha256 differs from models.lock (expected ...)", "" when ok */
} fk_model_file_check_t;

/* Checks every "file" line of LOCK_PATH against files under MODELS_DIR.
 * On FK_OK, *out is an array of *n results (free with fk_free) — FK_OK means the check ran, not that every
 * file is fine: look at each .ok. ERRBUF (may be NULL) receives a message on failure. Thread-safe. */
FK_API int fk_models_verify(const char *models_dir, const char *lock_path, fk_model_file_check_t **out,
                            size_t *n, char *errbuf, size_t errbuf_size);

/* SHA-256 of a file as 64 hex characters plus NUL. Thread-safe. */
FK_API int fk_sha256_file(const char *path, char hex_out[65], uint64_t *size_out);

/* ------------------------------------------------------------------------------------------------ */
/* Evaluation of verification scores on labelled pairs (src/eval)                                    */

/* Summary of a verification experiment. Thresholds are in the units of the scores given. */
typedef struct fk_eval_summary {
    double accuracy;        /* mean accuracy over folds (or on the test set) */
    double std;             /* standard deviation over folds, 0 with one test set */
    double auc;             /* area under the ROC curve, all pairs */
    double tar_at_far_1e_3; /* true-accept rate at the strictest threshold with FAR <= 1e-3, all pairs */
    double eer;             /* equal error rate, all pairs */
    double threshold;       /* threshold applied (mean over folds) */
    size_t pairs;           /* pairs scored */
} fk_eval_summary_t;

/* One point of a ROC curve. */
typedef struct fk_roc_point {
    double threshold, far, tar;
} fk_roc_point_t;

/* The threshold that maximises accuracy on (SCORES, SAME) — "same" when score >= threshold. Pairs whose
 * score is NaN (no face) always count as errors. Thread-safe; no allocation beyond a sort buffer. */
FK_API int fk_eval_best_threshold(const double *scores, const int *same, size_t n, double *threshold_out,
                                  double *accuracy_out);

/* Accuracy of a fixed threshold (NaN scores are errors). */
FK_API double fk_eval_accuracy(const double *scores, const int *same, size_t n, double threshold);

/* Full summary. FOLD (may be NULL) gives each pair's fold 0..N_FOLDS-1: the threshold is chosen on the
 * other folds and applied to each fold in turn (LFW View 2 protocol). With FOLD NULL, TRAIN_* (may be NULL)
 * choose the threshold applied to the whole set (LFW View 1: DevTrain -> DevTest); with neither, the
 * threshold is chosen on the set itself. */
FK_API int fk_eval_summarize(const double *scores, const int *same, size_t n, const int *fold, int n_folds,
                             const double *train_scores, const int *train_same, size_t n_train,
                             fk_eval_summary_t *out);

/* ROC over all distinct thresholds, sorted by decreasing threshold; *points freed with fk_free. */
FK_API int fk_eval_roc(const double *scores, const int *same, size_t n, fk_roc_point_t **points,
                       size_t *n_points);

/* The lowest threshold whose false-accept rate on (SCORES, SAME) is <= MAX_FAR. */
FK_API int fk_eval_threshold_at_far(const double *scores, const int *same, size_t n, double max_far,
                                    double *threshold_out, double *tar_out);

/* Monotone calibration score = 1 / (1 + exp(-(a * x + b))), fitted by logistic regression (Platt).
 * Deterministic; a > 0 is enforced so that the map is increasing. */
FK_API int fk_eval_fit_logistic(const double *scores, const int *same, size_t n, double *a_out,
                                double *b_out);

#ifdef __cplusplus
}
#endif
#endif /* FACEKIT_H */
