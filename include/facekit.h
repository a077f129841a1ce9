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

/* ------------------------------------------------------------------------------------------------ */
/* Images (src/image): decode, encode, geometry, drawing                                             */
/*
 * fk_image_t is an 8-bit RGB picture: R,G,B interleaved, rows STRIDE bytes apart. Images made by the
 * library (decode, create, resize, crop, ...) own their pixels and are released with fk_image_free().
 * A caller may also describe its own pixels in an fk_image_t it fills in itself and pass it wherever a
 * `const fk_image_t *` (or a destination image) is taken — never to fk_image_free().
 * Thread-safety: every function here is reentrant; any number of threads may read one image at once;
 * writing into an image (drawing, a destination) needs the caller to keep other users away.
 * Coordinates: pixel (x, y) covers the square [x, x+1) x [y, y+1); its centre is (x + 0.5, y + 0.5) in
 * these "edge" coordinates (fk_rectf_t, resize, tensor). fk_image_warp_affine alone uses OpenCV's
 * convention where integer coordinates are pixel centres (see there).
 */
typedef struct fk_image {
    int width, height; /* pixels, >= 1 */
    int stride;        /* bytes between row starts, >= 3 * width (library images: exactly 3 * width) */
    uint8_t *rgb;      /* pixel (x, y) is rgb[y * stride + 3 * x + 0..2] = R, G, B */
} fk_image_t;

typedef enum fk_image_format {
    FK_IMAGE_FORMAT_UNKNOWN = 0,
    FK_IMAGE_FORMAT_JPEG = 1,
    FK_IMAGE_FORMAT_PNG = 2,
    FK_IMAGE_FORMAT_WEBP = 3,
    FK_IMAGE_FORMAT_BMP = 4
} fk_image_format_t;

#define FK_IMAGE_DEFAULT_MAX_FILE_BYTES ((size_t)40 << 20) /* 40 MiB */
#define FK_IMAGE_DEFAULT_MAX_PIXELS ((uint64_t)50000000)   /* 50 Mpx */
#define FK_IMAGE_MAX_DIMENSION 65535                        /* no side may exceed this, any format */

/* Decoding options. All-zero (or passing NULL) means the defaults. */
typedef struct fk_image_decode_options {
    size_t max_file_bytes; /* 0 = FK_IMAGE_DEFAULT_MAX_FILE_BYTES; more input bytes -> FK_ELIMIT */
    uint64_t max_pixels;   /* 0 = FK_IMAGE_DEFAULT_MAX_PIXELS; width*height read from the file header (the
                              stored size, before any DCT scaling) is checked BEFORE any pixel memory is
                              allocated -> FK_ELIMIT */
    int max_side;          /* JPEG only; 0 = none. A hint that the caller will shrink the picture until its
                              longer side is <= max_side anyway: the decoder then uses libjpeg's DCT scaling
                              (1/2, 1/4 or 1/8, the smallest that keeps the longer side >= max_side). The
                              result is not resized to max_side; compare its size with fk_image_probe's. */
    int min_side;          /* JPEG only; 0 = none. Same, keeping the shorter side >= min_side. With both set
                              both are respected. */
    int ignore_orientation; /* 0 (default): a JPEG's EXIF orientation (1..8) is applied, so the image comes
                              out upright; 1: pixels in stored order. */
} fk_image_decode_options_t;

/* What a file's header says, without decoding the pixels. */
typedef struct fk_image_info {
    fk_image_format_t format;
    int width, height;               /* as displayed: after the EXIF orientation (5..8 swap the sides) */
    int stored_width, stored_height; /* as coded in the file */
    int orientation;                 /* EXIF orientation 1..8; 1 when absent, invalid or not a JPEG */
    int has_alpha;                   /* 1 when the file carries transparency (it is composited on white) */
} fk_image_info_t;

/* Format by magic bytes (never by file name): JPEG FF D8 FF, PNG signature, RIFF....WEBP, "BM". */
FK_API fk_image_format_t fk_image_detect_format(const void *bytes, size_t n);
/* "jpeg", "png", "webp", "bmp" or "unknown"; never NULL. */
FK_API const char *fk_image_format_name(fk_image_format_t format);

/* Reads the header of an image in memory into *INFO (dimensions, format, orientation). Cheap; it does not
 * validate the pixel data, so a later decode may still fail. Errors: FK_EINVAL, FK_EFORMAT. */
FK_API int fk_image_probe(const void *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize);

/* Decodes JPEG (baseline/progressive; gray, YCbCr, RGB, CMYK and YCCK incl. Adobe-inverted), PNG (any bit
 * depth incl. 16-bit, palette, gray, interlaced), WebP (lossy/lossless, not animated) or BMP (uncompressed
 * 24/32-bit, 8-bit palette; 32-bit BI_BITFIELDS with the standard masks) to 8-bit RGB.
 * Transparency (PNG alpha or tRNS, WebP alpha) is composited on white; the fourth byte of a 32-bit BMP is
 * ignored. Colour profiles (ICC, gAMA) are not applied: samples are taken as sRGB. JPEG uses libjpeg's
 * accurate integer IDCT and smooth chroma upsampling.
 * On FK_OK *OUT is a new image (fk_image_free). A truncated or corrupt file is FK_EFORMAT with a message in
 * ERR (may be NULL) — never a partial image (libjpeg's "premature end" and corrupt-data warnings are
 * errors here); limits exceeded are FK_ELIMIT; FK_ENOMEM. */
FK_API int fk_image_decode(const void *bytes, size_t n, const fk_image_decode_options_t *opt,
                           fk_image_t **out, char *err, size_t errsize);
/* Same from a file: FK_ENOTFOUND when it does not exist, FK_EIO when it cannot be read; the size limit is
 * checked against the file's size before reading it. ERR starts with the path. */
FK_API int fk_image_load(const char *path, const fk_image_decode_options_t *opt, fk_image_t **out,
                         char *err, size_t errsize);

/* A new WIDTHxHEIGHT image, all pixels black. FK_EINVAL for sides outside 1..FK_IMAGE_MAX_DIMENSION. */
FK_API int fk_image_create(int width, int height, fk_image_t **out);
/* A new image with the same pixels (tightly packed). */
FK_API int fk_image_clone(const fk_image_t *img, fk_image_t **out);
/* Releases an image made by the library. fk_image_free(NULL) does nothing. */
FK_API void fk_image_free(fk_image_t *img);

/* Encodes to JPEG (QUALITY 1..100, 0 = 90; 4:2:0 below 90, 4:4:4 from 90), PNG (lossless; QUALITY
 * ignored) or WebP (QUALITY 1..100 lossy, 0 = 90; 101 = lossless). On FK_OK *OUT holds *N bytes
 * (fk_free). FK_EUNSUPPORTED for BMP. */
FK_API int fk_image_encode(const fk_image_t *img, fk_image_format_t format, int quality, void **out,
                           size_t *n, char *err, size_t errsize);
/* Encodes by the extension of PATH (.jpg/.jpeg, .png, .webp; case-insensitive) and writes the file. */
FK_API int fk_image_save(const fk_image_t *img, const char *path, int quality, char *err, size_t errsize);

/* A rectangle in edge coordinates (see above); may reach outside the image. */
typedef struct fk_rectf {
    float x, y, w, h;
} fk_rectf_t;

/* Resamples the region RECT of SRC (NULL = the whole image) into DST, which the caller sized (its own
 * width/height are the output size; its pixels are overwritten). Output pixel centres map linearly onto
 * RECT. Bilinear interpolation, or area averaging along an axis shrunk by more than 2x (no aliasing
 * before a detector). Inside the image, samples near its edge replicate the edge pixel; output pixels whose
 * centre falls outside the image get FILL (R,G,B; NULL = black) — with area averaging, a footprint that
 * straddles the edge mixes image and FILL in proportion. Exact for an identity mapping; a constant image
 * stays constant. Allocates only small tables (FK_ENOMEM). FK_EINVAL for an empty or non-finite RECT. */
FK_API int fk_image_resample(const fk_image_t *src, const fk_rectf_t *rect, const uint8_t fill[3],
                             fk_image_t *dst);
/* The whole of SRC resampled into a new OUT_WxOUT_H image. */
FK_API int fk_image_resize(const fk_image_t *src, int out_w, int out_h, fk_image_t **out);

typedef enum fk_tensor_layout { FK_TENSOR_CHW = 0, FK_TENSOR_HWC = 1 } fk_tensor_layout_t;
typedef enum fk_channel_order { FK_CHANNELS_RGB = 0, FK_CHANNELS_BGR = 1 } fk_channel_order_t;

/* How a network wants its input. OUT[c] = (pixel[c] - mean[c]) * scale[c], where c counts the output
 * channels, i.e. after ORDER: for BGR, mean[0] is the blue one. (x-127.5)/128 is mean 127.5, scale 1/128. */
typedef struct fk_tensor_spec {
    int width, height;         /* output size */
    fk_tensor_layout_t layout; /* CHW: 3 planes of height*width; HWC: interleaved */
    fk_channel_order_t order;
    float mean[3];
    float scale[3];
    uint8_t fill[3]; /* R,G,B for output pixels outside the image, before normalisation */
} fk_tensor_spec_t;

/* Resamples RECT of IMG (NULL = whole image) exactly as fk_image_resample to spec->width x spec->height
 * and writes 3*width*height floats to OUT (caller's buffer). */
FK_API int fk_image_to_tensor(const fk_image_t *img, const fk_rectf_t *rect, const fk_tensor_spec_t *spec,
                              float *out);

/* Affine warp with bilinear interpolation into DST (caller-sized), as OpenCV's warpAffine(src, M, dsize,
 * INTER_LINEAR, BORDER_CONSTANT, fill): M (row-major 2x3) maps SRC coordinates to DST coordinates, where
 * integer coordinates are pixel CENTRES; each dst pixel (x, y) samples src at M^-1 (x, y). Neighbours
 * outside SRC count as FILL (NULL = black), so the border blends into it. FK_EINVAL if M is singular. */
FK_API int fk_image_warp_affine(const fk_image_t *src, const float m[6], const uint8_t fill[3],
                                fk_image_t *dst);
/* Inverse of a 2x3 affine matrix (FK_EINVAL when singular). */
FK_API int fk_affine_invert(const float m[6], float inv[6]);

/* Copy of the rectangle (x, y, w, h) intersected with the image; FK_EINVAL when nothing is left. */
FK_API int fk_image_crop(const fk_image_t *src, int x, int y, int w, int h, fk_image_t **out);
/* Mirror image (left <-> right). */
FK_API int fk_image_flip_horizontal(const fk_image_t *src, fk_image_t **out);
/* Rotation clockwise by DEGREES = 0, 90, 180 or 270 (else FK_EINVAL). */
FK_API int fk_image_rotate(const fk_image_t *src, int degrees, fk_image_t **out);
/* Applies an EXIF orientation 1..8 (what decode does for JPEG): the result is upright. */
FK_API int fk_image_orient(const fk_image_t *src, int exif_orientation, fk_image_t **out);
/* Luma (BT.601: 0.299 R + 0.587 G + 0.114 B, rounded) into GRAY, a caller buffer of rows GRAY_STRIDE
 * bytes apart (>= width). */
FK_API int fk_image_to_gray(const fk_image_t *img, uint8_t *gray, int gray_stride);

/* Drawing, clipped to the image. A rectangle outline THICKNESS pixels wide drawn inside (x, y, w, h); a
 * filled disc of RADIUS (0 = one pixel) centred on pixel (x, y). FK_EINVAL for a NULL image/colour. */
FK_API int fk_image_draw_rect(fk_image_t *img, int x, int y, int w, int h, int thickness,
                              const uint8_t rgb[3]);
FK_API int fk_image_draw_point(fk_image_t *img, int x, int y, int radius, const uint8_t rgb[3]);

/* ------------------------------------------------------------------------------------------------ */
/* Neural-network executor                                                                            */
/*                                                                                                    */
/* Runs ONNX (.onnx) and TF.js graph models (model.json + weight shards beside it) on the CPU. A model   */
/* is opened once (parsed, shapes fixed, constants folded, layers fused, activation memory planned) and  */
/* then run through sessions: one session per thread, each owning its activation arena, scratch and     */
/* thread pool, so that a run does no memory allocation at all.                                         */
/*                                                                                                    */
/* Threading: an fk_nn_model_t is immutable after fk_nn_model_open() succeeds and may be shared by any  */
/* number of threads and sessions. An fk_nn_session_t must be used by one thread at a time.             */
/* Tensors cross the API as float32 in C order, in the model's own layout (NCHW for the ONNX models,     */
/* NHWC for TF.js).                                                                                    */

#define FK_NN_MAX_RANK 6

typedef struct fk_nn_model fk_nn_model_t;
typedef struct fk_nn_session fk_nn_session_t;

/* Options for fk_nn_model_open(). Zero-initialise, then set what you need; NULL means all defaults. */
typedef struct fk_nn_options {
    /* Threads for sessions created with threads = 0. 0 = 1 thread. */
    int threads;
    /* 1: run the plain C reference kernels instead of the fast ones (tests, debugging). */
    int use_reference;
    /* Spatial size override for every rank-4 image input: rows and columns (0 = the size in the file).
     * E.g. the RFB detector declared 1x3x240x320 also runs at 480x640. Applied in the input's layout. */
    int input_height, input_width;
    /* Full override: NULL, or one entry per model input (NULL entry = keep that input), each an array of
     * that input's rank. Wins over input_height/width. Dims of 0 or below in a file are taken as 1 for the
     * batch axis; any other unknown dim must be given here (else FK_ESHAPE). */
    const int64_t *const *input_dims;
    /* NULL, or N_OUTPUTS tensor names to use as the model's outputs instead of the file's own (everything
     * they do not need is dropped). For parts of a model that baked constants for the exported size: the
     * RFB detector at 480x640 runs with outputs {"scores", "462"} (462 = raw box regressions, decoded by
     * the caller with priors for that size), since its "boxes" output multiplies by 320x240 priors. */
    const char *const *outputs;
    int n_outputs;
} fk_nn_options_t;

/* Opens the model at PATH: ".onnx" uses the ONNX front-end, ".json" the TF.js one (weight shards are read
 * from the same directory). Like sqlite3_open(): *OUT receives a handle even on failure (then only
 * fk_nn_model_errmsg() and fk_nn_model_close() are meaningful; the message names the file and, where it
 * applies, the node); *OUT is NULL only when even the handle could not be allocated (FK_ENOMEM).
 * Returns FK_OK, FK_EINVAL (NULL arguments), FK_EIO (cannot read), FK_EFORMAT (malformed file),
 * FK_EUNSUPPORTED (an op or attribute we do not run), FK_ESHAPE (inconsistent shapes), FK_ELIMIT,
 * FK_ENOMEM. Thread-safe (distinct handles). */
FK_API int fk_nn_model_open(const char *path, const fk_nn_options_t *opt, fk_nn_model_t **out);
/* Frees the model. Every session created from it must have been destroyed first. NULL does nothing. */
FK_API void fk_nn_model_close(fk_nn_model_t *m);
/* The last error of M ("" when none); valid until the handle is closed. Never NULL (for M == NULL:
 * "out of memory"). */
FK_API const char *fk_nn_model_errmsg(const fk_nn_model_t *m);

/* Inputs and outputs in model order. Names are owned by the model. Shapes are the prepared (static)
 * shapes: RANK receives the rank (<= FK_NN_MAX_RANK) and DIMS (FK_NN_MAX_RANK entries) the sizes.
 * Counts return 0 and getters return NULL / FK_EINVAL on a model that failed to open or on a bad index.
 * fk_nn_model_*_numel() is the number of float32 values of the tensor (0 on error). */
FK_API int fk_nn_model_input_count(const fk_nn_model_t *m);
FK_API int fk_nn_model_output_count(const fk_nn_model_t *m);
FK_API const char *fk_nn_model_input_name(const fk_nn_model_t *m, int i);
FK_API const char *fk_nn_model_output_name(const fk_nn_model_t *m, int i);
FK_API int fk_nn_model_input_shape(const fk_nn_model_t *m, int i, int *rank, int64_t dims[FK_NN_MAX_RANK]);
FK_API int fk_nn_model_output_shape(const fk_nn_model_t *m, int i, int *rank, int64_t dims[FK_NN_MAX_RANK]);
FK_API size_t fk_nn_model_input_numel(const fk_nn_model_t *m, int i);
FK_API size_t fk_nn_model_output_numel(const fk_nn_model_t *m, int i);

/* Facts about an opened model, for `facekit nn info` and monitoring. */
typedef struct fk_nn_model_info {
    const char *format;       /* "onnx" or "tfjs" (owned by the model) */
    int layout;               /* 0 = NCHW image inputs, 1 = NHWC */
    int nodes_loaded;         /* nodes in the file (after front-end conversion) */
    int nodes_prepared;       /* nodes left after folding, fusion and dead-node removal */
    uint64_t parameters;      /* float values in the constant tensors the prepared graph reads */
    size_t arena_bytes;       /* activation arena of one session (planned, buffers reused) */
    size_t peak_bytes;        /* largest sum of simultaneously live activations */
    size_t scratch_bytes;     /* per-session scratch for the fast kernels */
} fk_nn_model_info_t;

/* Fills *INFO. FK_EINVAL on NULL or on a model that failed to open. Thread-safe. */
FK_API int fk_nn_model_info(const fk_nn_model_t *m, fk_nn_model_info_t *info);

/* Op statistics: fk_nn_op_count() internal op kinds, numbered 0..count-1, named by fk_nn_op_name() ("Conv",
 * "Relu", ...; NULL out of range). fk_nn_model_op_count() is how many nodes of kind OP the model had as
 * loaded (PREPARED = 0) or has after preparation (PREPARED = 1); 0 on error. Thread-safe. */
FK_API int fk_nn_op_count(void);
FK_API const char *fk_nn_op_name(int op);
FK_API int fk_nn_model_op_count(const fk_nn_model_t *m, int op, int prepared);

/* Creates a session for M with THREADS threads (0 = the model's option, else 1). All memory a run needs
 * (activation arena, kernel scratch, thread pool) is allocated here. The model must outlive the session.
 * Returns FK_OK, FK_EINVAL (NULL or failed model), FK_ENOMEM. *OUT is NULL on failure. */
FK_API int fk_nn_session_create(const fk_nn_model_t *m, int threads, fk_nn_session_t **out);
/* Runs the model once. INPUTS: one float32 buffer per model input (fk_nn_model_input_numel() values, C
 * order); OUTPUTS: one caller buffer per model output (fk_nn_model_output_numel() values) that receives
 * the result (integer outputs are converted to float). The library reads and writes the caller's buffers
 * only during the call and never keeps or frees them. No allocation happens; flush-to-zero is set in the
 * running threads for the duration of the call and restored after. Returns FK_OK, FK_EINVAL (NULL
 * buffers), or the error of a failing kernel (message in fk_nn_session_errmsg()). One thread per
 * session at a time; different sessions of one model may run concurrently. */
FK_API int fk_nn_session_run(fk_nn_session_t *s, const float *const *inputs, float *const *outputs);
/* The last error of S ("" when none); valid until the next call on S. Never NULL. */
FK_API const char *fk_nn_session_errmsg(const fk_nn_session_t *s);
/* Frees the session. NULL does nothing. */
FK_API void fk_nn_session_destroy(fk_nn_session_t *s);

/* NumPy .npy files (format 1.0-3.0, little-endian float32 '<f4', C order) for model inputs and outputs.
 * fk_nn_npy_read(): *DATA receives the values (free with fk_free), *RANK and DIMS (FK_NN_MAX_RANK entries)
 * the shape. Strict: any other dtype, Fortran order, truncated or oversized data is FK_EFORMAT with a
 * message in ERRBUF (may be NULL); FK_EIO when the file cannot be read. fk_nn_npy_write() writes RANK dims
 * and their product of values from DATA; FK_EIO on write errors. Thread-safe. */
FK_API int fk_nn_npy_read(const char *path, float **data, int *rank, int64_t dims[FK_NN_MAX_RANK], char *errbuf,
                          size_t errbuf_size);
FK_API int fk_nn_npy_write(const char *path, const float *data, int rank, const int64_t *dims, char *errbuf,
                           size_t errbuf_size);

/* ------------------------------------------------------------------------------------------------ */
/* Face engine (src/face): detection, landmarks, alignment, templates, compare, quality, liveness,   */
/* attributes                                                                                         */
/*                                                                                                    */
/* An fk_engine_t holds every model opened once (plus the calibration read from the model manifest);  */
/* it is immutable after fk_engine_open() and shared by any number of threads. Each thread works      */
/* through its own fk_ctx_t, which owns the executor sessions and all scratch buffers, so that a call  */
/* reuses memory instead of allocating (the result arrays returned to the caller excepted).           */
/* Coordinates are the image's "edge" coordinates (see Images): pixel (x, y) covers [x, x+1).          */

typedef struct fk_engine fk_engine_t;
typedef struct fk_ctx fk_ctx_t;

/* Models an engine opens (fk_engine_options_t.models). The pipeline detect -> landmarks -> align ->
 * embed needs DETECT | LANDMARK | FEATURE; a call whose model was not opened returns FK_EUNSUPPORTED. */
#define FK_ENGINE_DETECT 0x001u     /* faceplugin/fr_detect.onnx (RFB-320 face detector) */
#define FK_ENGINE_LANDMARK 0x002u   /* faceplugin/fr_landmark.onnx (68 points) */
#define FK_ENGINE_FEATURE 0x004u    /* faceplugin/fr_feature.onnx (512-d templates) */
#define FK_ENGINE_LIVENESS 0x008u   /* faceplugin/fr_liveness.onnx (passive anti-spoofing) */
#define FK_ENGINE_POSE 0x010u       /* faceplugin/fr_pose.onnx (yaw, pitch, roll) */
#define FK_ENGINE_EYE 0x020u        /* faceplugin/fr_eye.onnx (eye open/closed) */
#define FK_ENGINE_AGE 0x040u        /* faceplugin/fr_age.onnx */
#define FK_ENGINE_GENDER 0x080u     /* faceplugin/fr_gender.onnx */
#define FK_ENGINE_EXPRESSION 0x100u /* faceplugin/fr_expression.onnx */
#define FK_ENGINE_ALL 0x1ffu

/* Options for fk_engine_open(). Zero-initialise, then set what you need; NULL means all defaults. */
typedef struct fk_engine_options {
    const char *models_dir; /* directory holding faceplugin/ ; NULL = "models" */
    const char *manifest;   /* model manifest (calibration, thresholds); NULL = <models_dir>/manifest.json.
                               When the default file is absent the engine opens uncalibrated (see
                               fk_engine_info_t.calibrated); a named file that cannot be read is an error. */
    unsigned models;        /* FK_ENGINE_* bits; 0 = FK_ENGINE_ALL */
    int threads;            /* executor threads of each context's sessions; 0 = 1 */
    int use_reference;      /* 1: the executor's plain C reference kernels (tests) */
} fk_engine_options_t;

/* Opens the models and reads the manifest. Like sqlite3_open(): *OUT receives a handle even on failure
 * (then only fk_engine_errmsg() and fk_engine_close() are meaningful); NULL only when even the handle
 * could not be allocated. Returns FK_OK, FK_EINVAL, FK_EIO, FK_EFORMAT (model or manifest malformed),
 * FK_EMISMATCH (the manifest was fitted for another fr_feature file), FK_EUNSUPPORTED, FK_ENOMEM.
 * Thread-safe (distinct handles). */
FK_API int fk_engine_open(const fk_engine_options_t *opt, fk_engine_t **out);
/* Closes the engine; every context created from it must have been destroyed. NULL does nothing. */
FK_API void fk_engine_close(fk_engine_t *e);
/* Last error of E ("" when none; "out of memory" for NULL). Never NULL. */
FK_API const char *fk_engine_errmsg(const fk_engine_t *e);

/* What an engine runs with. Strings are owned by the engine. */
typedef struct fk_engine_info {
    unsigned models;          /* FK_ENGINE_* bits actually opened */
    const char *model_id;     /* template model id: "fr_feature:<first 16 hex of the file's SHA-256>" */
    int dim;                  /* template dimension (512) */
    int calibrated;           /* 1 when the manifest's compare calibration was loaded; 0: score is
                                 (cosine + 1) / 2 and the threshold 0.7 */
    double calib_a, calib_b;  /* score = 1 / (1 + exp(-(a * cosine + b))) */
    double threshold;         /* default compare threshold on that score (FAR 1e-3 on LFW DevTrain) */
    double liveness_threshold;/* default liveness threshold (live when score >= threshold) */
    const char *manifest;     /* path of the manifest read, "" when none */
} fk_engine_info_t;
FK_API int fk_engine_info(const fk_engine_t *e, fk_engine_info_t *out);

/* A per-thread working context: the executor sessions and scratch memory. Created for one engine (which
 * must outlive it); used by one thread at a time. Returns FK_OK, FK_EINVAL, FK_ENOMEM (*OUT NULL). */
FK_API int fk_ctx_create(fk_engine_t *e, fk_ctx_t **out);
FK_API void fk_ctx_destroy(fk_ctx_t *c);
/* Last error of C ("" when none); valid until the next call on C. Never NULL. */
FK_API const char *fk_ctx_errmsg(const fk_ctx_t *c);

typedef struct fk_pointf {
    float x, y;
} fk_pointf_t;

/* Indices into fk_face_t.landmarks. "Left" is the image's left (the person's right) for an upright
 * frontal face: the order of the ArcFace alignment template. */
enum { FK_LM_LEFT_EYE = 0, FK_LM_RIGHT_EYE = 1, FK_LM_NOSE = 2, FK_LM_MOUTH_LEFT = 3, FK_LM_MOUTH_RIGHT = 4 };

/* One detected face. */
typedef struct fk_face {
    float box[4];               /* x, y, w, h in the image's pixels (may reach outside the image) */
    float score;                /* detector confidence 0..1 */
    int has_landmarks;          /* 1 when landmarks/landmarks68 are filled */
    fk_pointf_t landmarks[5];   /* FK_LM_*: eyes = mean of the 68-point eye contours, nose tip = 30,
                                   mouth corners = 48 and 54 */
    fk_pointf_t landmarks68[68];/* iBUG-300W 68-point layout, image pixels */
} fk_face_t;

#define FK_DETECT_NO_LANDMARKS 0x1 /* boxes only (fk_face_landmarks() can add them later) */
#define FK_DETECT_MULTISCALE 0x2   /* add a pass at twice the working size for small faces in big photos */

/* Detection options. fk_detect_options_default() fills the defaults; NULL means the defaults. */
typedef struct fk_detect_options {
    float score_threshold; /* keep candidates with score >= this (default 0.9) */
    float nms_iou;         /* suppress a box overlapping a better one by IoU > this (default 0.4) */
    float min_face;        /* drop faces whose box side is below this many image pixels (default 0) */
    int width, height;     /* detector working size; 0 = automatic: longer side 320 at the image's aspect
                              (sides rounded up to multiples of 32). The image is scaled to fit and the
                              rest padded, never stretched. Each new size opens the detector once. */
    int max_faces;         /* 0 = no limit; else the MAX_FACES best-scoring faces */
    unsigned flags;        /* FK_DETECT_* */
} fk_detect_options_t;
FK_API void fk_detect_options_default(fk_detect_options_t *o);

/* Finds faces in IMG. On FK_OK, *FACES is an array of *N faces sorted by decreasing score (fk_free; NULL
 * when *N is 0 — no face is not an error here). Needs FK_ENGINE_DETECT (and LANDMARK unless
 * FK_DETECT_NO_LANDMARKS). Errors: FK_EINVAL, FK_EUNSUPPORTED, FK_ENOMEM, executor errors. */
FK_API int fk_detect(fk_ctx_t *c, const fk_image_t *img, const fk_detect_options_t *opt, fk_face_t **faces,
                     size_t *n);
/* (Re)computes FACE's 68 and 5 landmarks from its box (e.g. a box from elsewhere). */
FK_API int fk_face_landmarks(fk_ctx_t *c, const fk_image_t *img, fk_face_t *face);

/* The standard 112x112 ArcFace template for the five FK_LM_* points (x, y pairs). */
FK_API const float *fk_face_template_112(void);
/* Least-squares similarity (rotation, uniform scale, translation; no reflection — Umeyama 1991) mapping
 * the N points SRC onto DST (x, y pairs), as a row-major 2x3 matrix M (dst = M * [src; 1]). FK_EINVAL for
 * N < 2 or degenerate points. Thread-safe. */
FK_API int fk_similarity_estimate(const float *src, const float *dst, int n, float m[6]);
/* Warps IMG so that FACE's five landmarks land on the 112x112 template: OUT must be a caller-sized square
 * image (usually 112x112; other sizes scale the template) — fk_image_warp_affine, black outside the image
 * as in ArcFace's own alignment. M_OUT (may be NULL) receives the image->crop matrix in warp (pixel-centre)
 * coordinates. FK_EINVAL without face->has_landmarks. Thread-safe. */
FK_API int fk_face_align(const fk_image_t *img, const fk_face_t *face, fk_image_t *out, float m_out[6]);

/* ---- templates ---- */
#define FK_TEMPLATE_MAX_DIM 512
#define FK_TEMPLATE_MODEL_ID_LEN 48
#define FK_EMBED_FLIP 0x1 /* fuse the embedding of the mirrored crop (sum, renormalised) */

/* A face template: an L2-normalised embedding and the id of the model that made it. Plain data. */
typedef struct fk_template {
    char model_id[FK_TEMPLATE_MODEL_ID_LEN]; /* NUL-terminated, e.g. "fr_feature:87aacdfe57510db2" */
    int dim;                                 /* values used in v (512) */
    unsigned flags;                          /* FK_EMBED_* used to make it */
    float v[FK_TEMPLATE_MAX_DIM];
} fk_template_t;

/* Template of FACE in IMG (aligned with fk_face_align; needs landmarks). Needs FK_ENGINE_FEATURE. */
FK_API int fk_embed(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *face, unsigned flags,
                    fk_template_t *out);
/* Template of an already aligned 112x112 crop. */
FK_API int fk_embed_aligned(fk_ctx_t *c, const fk_image_t *aligned112, unsigned flags, fk_template_t *out);
/* Detects faces (default options), picks the largest box, and makes its template. FACE_OUT (may be NULL)
 * receives that face. FK_ENOFACE when the image has none. */
FK_API int fk_embed_largest(fk_ctx_t *c, const fk_image_t *img, unsigned flags, fk_template_t *out,
                            fk_face_t *face_out);

/* Binary template format (".fkt"), little-endian:
 *   0  "FKT1"  magic            4  u16 format version (1)     6  u16 dtype (1 = float32)
 *   8  u32 dim                 12  u32 flags                 16  model id, 48 bytes NUL-padded
 *   64 dim float32 values      64+4*dim  u32 CRC-32 (IEEE) of every preceding byte
 * fk_template_serialized_size() = 68 + 4 * dim. */
FK_API size_t fk_template_serialized_size(const fk_template_t *t);
/* Writes T into BUF (CAP bytes); *N receives the size. FK_ELIMIT when CAP is too small. */
FK_API int fk_template_serialize(const fk_template_t *t, void *buf, size_t cap, size_t *n);
/* Parses BYTES: FK_EFORMAT (bad magic, length, dtype or dimension), FK_EMISMATCH (a newer format
 * version), FK_ECHECKSUM (CRC differs: truncated or altered). Which model made it is checked by
 * fk_compare()/fk_engine_check_template(). */
FK_API int fk_template_parse(const void *bytes, size_t n, fk_template_t *out);
/* File versions of the two (FK_EIO when the file cannot be read/written). */
FK_API int fk_template_save(const fk_template_t *t, const char *path);
FK_API int fk_template_load(const char *path, fk_template_t *out);
/* FK_OK when T was made by E's feature model, else FK_EMISMATCH (other model id or dimension). */
FK_API int fk_engine_check_template(const fk_engine_t *e, const fk_template_t *t);

/* Result of a comparison. */
typedef struct fk_match {
    double cosine;    /* raw cosine similarity -1..1 */
    double score;     /* calibrated 0..1 (monotone in cosine; logistic fit on LFW DevTrain) */
    double threshold; /* threshold applied to score */
    int same;         /* score >= threshold */
} fk_match_t;

/* Compares two templates of E's model. THRESHOLD: on the 0..1 score; negative = the manifest's default.
 * FK_EMISMATCH when either template comes from another model (never compared). Thread-safe. */
FK_API int fk_compare(const fk_engine_t *e, const fk_template_t *a, const fk_template_t *b, double threshold,
                      fk_match_t *out);

/* ---- quality ---- */
#define FK_QUALITY_REASONS(X)                                                    \
    X(SMALL, 0x001, "small", "face smaller than min_face_size")                 \
    X(BLURRY, 0x002, "blurry", "sharpness below min_sharpness")                  \
    X(DARK, 0x004, "dark", "brightness below min_brightness")                    \
    X(BRIGHT, 0x008, "bright", "brightness above max_brightness")                \
    X(LOW_CONTRAST, 0x010, "low_contrast", "contrast below min_contrast")        \
    X(POSE, 0x020, "pose", "yaw, pitch or roll beyond the limits")               \
    X(EYES_CLOSED, 0x040, "eyes_closed", "an eye's open probability too low")    \
    X(CUT, 0x080, "cut", "face cut by the image border")                         \
    X(LOW_SCORE, 0x100, "low_score", "detector score below min_detect_score")

enum fk_quality_reason {
#define FK__QR_ENUM(name, bit, code, text) FK_QUALITY_##name = bit,
    FK_QUALITY_REASONS(FK__QR_ENUM)
#undef FK__QR_ENUM
};
/* Short code ("blurry") of one reason bit; NULL for an unknown bit. */
FK_API const char *fk_quality_reason_code(unsigned bit);

/* Quality thresholds. fk_quality_options_default() fills the defaults; NULL means the defaults. A check
 * whose model is not opened (pose, eye) is skipped and its values are NaN. */
typedef struct fk_quality_options {
    float min_face_size;       /* shorter side of the box, image pixels (default 64) */
    float min_sharpness;       /* aligned gray crop's centre at 56x56: weakest directional second-difference
                                  energy per unit gray variance x sqrt(weakest / strongest direction) x 1000
                                  (default 9; catches motion blur and defocus; docs/accuracy.md) */
    float min_brightness, max_brightness; /* mean gray level of the aligned crop (default 50, 210) */
    float min_contrast;        /* standard deviation of the gray level (default 25) */
    float max_yaw, max_pitch, max_roll; /* degrees (default 30, 25, 25) */
    float min_eye_open;        /* per-eye open probability (default 0.5) */
    float max_cut;             /* largest fraction of the box outside the image (default 0.1) */
    float min_detect_score;    /* default 0.8 */
} fk_quality_options_t;
FK_API void fk_quality_options_default(fk_quality_options_t *o);

typedef struct fk_quality {
    float face_size;          /* shorter side of the box, pixels */
    float sharpness;          /* directional, contrast-normalised (see min_sharpness) */
    float brightness;         /* mean gray 0..255 */
    float contrast;           /* gray standard deviation */
    float yaw, pitch, roll;   /* degrees, 0 = frontal (NaN without FK_ENGINE_POSE) */
    float left_eye_open, right_eye_open; /* probabilities 0..1 (NaN without FK_ENGINE_EYE) */
    float cut;                /* fraction of the box area outside the image */
    unsigned reasons;         /* FK_QUALITY_* bits that failed; 0 when it passes */
    int pass;                 /* reasons == 0 */
} fk_quality_t;

/* Measures FACE (with landmarks) in IMG against OPT. Needs FK_ENGINE_POSE/EYE for those checks. */
FK_API int fk_quality(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *face, const fk_quality_options_t *opt,
                      fk_quality_t *out);

/* ---- liveness ---- */
typedef struct fk_liveness {
    float score;     /* probability that the face is live (not a photo/screen), 0..1 */
    float threshold; /* applied */
    int live;        /* score >= threshold */
} fk_liveness_t;
/* Passive liveness of FACE in IMG (the model sees a square 2.7x the box). THRESHOLD < 0 = the manifest's
 * default. Needs FK_ENGINE_LIVENESS. */
FK_API int fk_liveness(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *face, float threshold,
                       fk_liveness_t *out);

/* ---- attributes ---- */
typedef struct fk_attributes {
    float age;                    /* years (NaN without FK_ENGINE_AGE) */
    float male;                   /* 0..1, > 0.5 = male (NaN without FK_ENGINE_GENDER) */
    int expression;               /* index into fk_expression_name(); -1 without FK_ENGINE_EXPRESSION */
    float expression_score;       /* softmax probability of that expression */
    float left_eye_open, right_eye_open; /* NaN without FK_ENGINE_EYE (needs landmarks) */
    float yaw, pitch, roll;       /* degrees; NaN without FK_ENGINE_POSE */
} fk_attributes_t;
/* "neutral", "happy", ...; NULL out of range. */
FK_API const char *fk_expression_name(int expression);
/* Every attribute whose model is opened. */
FK_API int fk_attributes(fk_ctx_t *c, const fk_image_t *img, const fk_face_t *face, fk_attributes_t *out);

/* Recommended fk_image_decode_options_t.max_side for images fed to the face pipeline: big photos are
 * decoded with JPEG DCT scaling, keeping faces large enough for 112x112 templates. */
#define FK_FACE_DECODE_MAX_SIDE 1280

/* ------------------------------------------------------------------------------------------------ */
/* Store (src/store): persons, groups and face templates, encrypted at rest                          */
/*                                                                                                    */
/* Two backends behind one interface and one schema (versioned migrations, applied at open):          */
/*   SQLite — the embedded default: one file (WAL journal, synchronous=FULL, secure_delete=ON,        */
/*            foreign keys on); PostgreSQL — through libpq, selected by a "postgresql://" or          */
/*            "postgres://" URL (or any libpq "key=value" string starting with "host=" or "dbname=").  */
/* Schema: groups(id, name), persons(id, name, external_id, group, metadata JSON, created_at,          */
/* updated_at), faces(id, person, model_id, template, image, quality, created_at). Templates (float32   */
/* bytes) and source images are sealed with AES-256-GCM or SM4-CTR + HMAC-SM3 (encrypt-then-MAC) under */
/* keys derived from a 32-byte data key, with a random nonce per record and "<kind>:<face id>:<person  */
/* id>" as associated data, so a ciphertext moved to another row or column fails to open (FK_EAUTH).   */
/* The database holds a key-check value: opening with another key is FK_EAUTH before anything is read. */
/* Removing a person deletes the rows (faces cascade) and then erases: SQLite zeroes freed pages        */
/* (secure_delete) and truncates the WAL; PostgreSQL runs VACUUM on the tables.                        */
/* Every write is one transaction, acknowledged only after it is durable.                             */
/*                                                                                                    */
/* Threading: an fk_store_t is used by one thread at a time (open one per thread; SQLite in WAL mode   */
/* lets readers and one writer work concurrently across handles and processes).                       */

#define FK_DATA_KEY_BYTES 32

typedef enum fk_cipher {
    FK_CIPHER_AES256_GCM = 1,      /* default */
    FK_CIPHER_SM4_CTR_HMAC_SM3 = 2 /* GB/T 32907 SM4 in CTR mode, HMAC-SM3 tag */
} fk_cipher_t;

/* The data key. FK_DATA_KEY (64 hex digits) in the environment wins; otherwise KEY_FILE is read: it must
 * be a regular file with no group/other permission bits (0600 or stricter, else FK_EDENIED) holding 64 hex
 * digits. With CREATE = 1 a missing KEY_FILE is created (O_EXCL, mode 0600, from the OpenSSL random
 * generator) and *CREATED (may be NULL) is set to 1 so that the caller can tell the user. Thread-safe. */
FK_API int fk_data_key_load(const char *key_file, int create, uint8_t key[FK_DATA_KEY_BYTES], int *created,
                            char *err, size_t errsize);

typedef struct fk_store fk_store_t;

typedef struct fk_store_options {
    const char *location;      /* SQLite file path, or a PostgreSQL URL / conninfo (see above) */
    const uint8_t *key;        /* FK_DATA_KEY_BYTES bytes; required (copied; derived keys kept) */
    fk_cipher_t cipher;        /* for records written from now on; 0 = AES-256-GCM. Reading handles both */
} fk_store_options_t;

/* Opens (creating when needed) the store and migrates its schema to the current version. Like
 * fk_nn_model_open(): *OUT receives a handle even on failure (for fk_store_errmsg), NULL only on
 * FK_ENOMEM. Errors: FK_EINVAL, FK_EIO (cannot open/connect), FK_EAUTH (another data key), FK_EMISMATCH
 * (schema newer than this library), FK_EFORMAT. */
FK_API int fk_store_open(const fk_store_options_t *opt, fk_store_t **out);
FK_API void fk_store_close(fk_store_t *s);
/* Last error message of S ("" when none). Never NULL. */
FK_API const char *fk_store_errmsg(const fk_store_t *s);
/* "sqlite" or "postgresql"; schema version in *VERSION. */
FK_API const char *fk_store_backend(const fk_store_t *s);
FK_API int fk_store_schema_version(fk_store_t *s, int *version);

/* A person. In inputs, NULL strings mean "none" (metadata NULL = "{}"; it must be a JSON object). In
 * results, all strings are non-NULL ("" = none) and live in the same block as the array. */
typedef struct fk_person {
    int64_t id;
    const char *name;
    const char *external_id; /* e.g. the ID-card number; unique within a group when not empty */
    const char *group;       /* group name (an estate, a building); created on first use */
    const char *metadata;    /* JSON object text */
    int64_t created_at, updated_at; /* Unix seconds, UTC */
    int n_faces;             /* results only */
} fk_person_t;

/* One enrolled face. TMPL holds DIM floats (an L2-normalised template of model MODEL_ID); IMAGE is the
 * encoded source image (any format; NULL/0 = none). In results, pointers live in the array's block. */
typedef struct fk_face_record {
    int64_t id, person_id;
    const char *model_id;
    const float *tmpl;
    int dim;
    const void *image;
    size_t image_size;
    float quality;
    int64_t created_at;
} fk_face_record_t;

/* Creates a person with N_FACES faces in one transaction: on return FK_OK all of it is durable; on
 * any error none of it exists. *PERSON_ID receives the new id, FACE_IDS (may be NULL) N_FACES face ids.
 * FK_EMISMATCH when an external id is already used in the group (and nothing is written). */
FK_API int fk_store_person_add(fk_store_t *s, const fk_person_t *person, const fk_face_record_t *faces,
                               size_t n_faces, int64_t *person_id, int64_t *face_ids);
/* Adds faces to an existing person (one transaction). FK_ENOTFOUND when there is no such person. */
FK_API int fk_store_face_add(fk_store_t *s, int64_t person_id, const fk_face_record_t *faces, size_t n_faces,
                             int64_t *face_ids);
/* Deletes the person, their faces (templates and images) and erases them as described above.
 * FK_ENOTFOUND when there is no such person. */
FK_API int fk_store_person_remove(fk_store_t *s, int64_t person_id);
/* Changes a person: every field of CHANGES that is not NULL replaces the stored one (name must not be
 * empty; external_id "" and group "" clear them; metadata must be a JSON object); id, times and n_faces
 * are ignored; updated_at is set. One transaction. FK_ENOTFOUND, FK_EINVAL, FK_EMISMATCH when the external
 * id would be used twice in the (new) group — nothing is written then. */
FK_API int fk_store_person_update(fk_store_t *s, int64_t person_id, const fk_person_t *changes);
/* Deletes one face (template and image) of PERSON_ID and erases it as described above. FK_ENOTFOUND when
 * PERSON_ID has no face FACE_ID. */
FK_API int fk_store_face_remove(fk_store_t *s, int64_t person_id, int64_t face_id);
/* One person (*OUT: one fk_person_t, fk_free). FK_ENOTFOUND. */
FK_API int fk_store_person_get(fk_store_t *s, int64_t person_id, fk_person_t **out);
/* Persons in GROUP (NULL = all), ordered by id. *OUT: array of *N (fk_free; NULL when empty). */
FK_API int fk_store_person_list(fk_store_t *s, const char *group, fk_person_t **out, size_t *n);
/* The faces of a person, decrypted, ordered by id; images only when WITH_IMAGES. *OUT: array of *N
 * (fk_free frees everything). FK_EAUTH when a record fails authentication. */
FK_API int fk_store_face_list(fk_store_t *s, int64_t person_id, int with_images, fk_face_record_t **out,
                              size_t *n);

/* Calls FN for every face (decrypted template, no image) in id order; FN returns non-zero to stop (that
 * value is returned). GROUP_ID is the person's group id (0 = none). TMPL is valid during the call only.
 * Used to load the in-memory index. */
typedef int (*fk_store_face_fn)(void *ctx, int64_t face_id, int64_t person_id, int64_t group_id,
                                const char *model_id, const float *tmpl, int dim);
FK_API int fk_store_face_foreach(fk_store_t *s, fk_store_face_fn fn, void *ctx);
/* The id of group NAME: FK_ENOTFOUND when it does not exist. */
FK_API int fk_store_group_id(fk_store_t *s, const char *name, int64_t *id);
/* Counts of persons and faces. */
FK_API int fk_store_count(fk_store_t *s, size_t *persons, size_t *faces);

/* Gallery archive: every person with their faces (templates and source images), for backup and transfer.
 * File format (integers little-endian):
 *   0  "FKGALLRY"   8  u32 format version (1)   12  u32 flags (bit 0: encrypted)   16  u32 0 (reserved)
 *   encrypted: 20  12-byte random nonce, then the body encrypted with AES-256-GCM under a key derived from
 *              the data key (the 20 header bytes are associated data), then the 16-byte tag;
 *   plain:     20  the body, then SHA-256 of header + body (integrity only: templates and images are in
 *              the clear — export plain archives only to trusted media).
 *   body: per person "P" u64 id, str name, str external_id, str group, str metadata, u64 created,
 *         u64 updated, u32 faces, then per face "F" str model_id, u32 dim, f32 quality, u64 created,
 *         dim f32 template, u32 image bytes + image; finally "E" u64 persons, u64 faces.
 *         (str = u32 length + bytes.)
 * Export writes PATH.tmp, fsyncs and renames. Import reads and verifies the whole archive first (FK_EAUTH:
 * another data key or altered; FK_ECHECKSUM: a plain archive altered; FK_EFORMAT; FK_EMISMATCH: a newer
 * format version, or a template whose model is not MODEL_ID when MODEL_ID is given — nothing is written),
 * then adds each person (new ids) in its own transaction. */
FK_API int fk_store_export(fk_store_t *s, const char *path, int encrypt, size_t *persons, size_t *faces);
FK_API int fk_store_import(fk_store_t *s, const char *path, const char *model_id, size_t *persons,
                           size_t *faces);


/* ------------------------------------------------------------------------------------------------ */
/* Gallery (src/gallery): in-memory template index and open-set 1:N identification                   */
/*                                                                                                    */
/* fk_index_t keeps every template in memory (fp32, padded to 128 values) with its face, person and    */
/* group ids. Search is exact cosine (dot product of L2-normalised vectors): small galleries are       */
/* scanned in fp32; from `coarse_min` templates on, a first pass scans 4-bit (default) or int8 codes   */
/* and the best `rerank` candidates are re-scored exactly in fp32, so results and scores are the fp32  */
/* ones (recall@1 = 1 unless the true best is not among the candidates). Kernels: AVX-512 VNNI, AVX2 or */
/* plain C, chosen at run time. Above `parallel_min` templates a search splits the scan over `threads`. */
/* From 50,000 templates on, a staged search replaces the full coarse scan: a 1-bit sketch of a        */
/* random rotation of every template (64 bytes at 512-d) screens all of them, then a 2-bit estimate,   */
/* the coarse code and fp32 score fewer and fewer, each stage cut 4 standard deviations of its         */
/* estimator's error below the k-th best so far (docs/performance.md, 1:N search).                     */
/* Optionally (large galleries) FAISS HNSW or IVF-Flat finds the candidates instead of the scan.       */
/*                                                                                                    */
/* Threading: one writer, many readers. fk_index_add and fk_index_remove_* take the index's write lock and */
/* fk_index_search takes its read lock (a pthread read-write lock), so any number of threads may search */
/* while one thread adds or removes; a search sees a template either completely or not at all.        */

typedef struct fk_index fk_index_t;

typedef enum fk_index_kind {
    FK_INDEX_EXACT = 0,      /* our scan (fp32 or int8 + fp32 re-rank) */
    FK_INDEX_FAISS_HNSW = 1, /* FAISS IndexHNSWFlat (inner product, M = 32) finds candidates */
    FK_INDEX_FAISS_IVF = 2   /* FAISS IndexIVFFlat (inner product), trained at the first search */
} fk_index_kind_t;

typedef struct fk_index_options {
    fk_index_kind_t kind;
    int threads;          /* search threads for large galleries; 0 = 1 */
    size_t parallel_min;  /* scan with several threads from this many templates; 0 = 65536 */
    size_t coarse_min;    /* int8 pass from this many templates; 0 = 2048; SIZE_MAX = always fp32 */
    int rerank;           /* candidates re-scored in fp32; 0 = 64 (always at least 4 * k) */
    const char *kernels;  /* NULL = fastest; "c", "avx2", "avx512" force one (tests, benchmarks) */
    int coarse_bits;      /* codes of the coarse pass: 8 (int8) or 4 (nibbles: half the memory traffic);
                             0 = 4. Either way the final scores are exact fp32 */
} fk_index_options_t;

/* Creates an empty index for DIM-dimensional templates (1..4096). FK_EUNSUPPORTED for a FAISS kind when
 * the library was built without FAISS. Returns FK_OK, FK_EINVAL, FK_ENOMEM. */
FK_API int fk_index_create(int dim, const fk_index_options_t *opt, fk_index_t **out);
FK_API void fk_index_destroy(fk_index_t *ix);
/* Adds N templates (N x DIM floats, normalised again here) with their ids. GROUP_IDS may be NULL (0 = no
 * group). Face ids must be unique (FK_EINVAL otherwise, nothing added). Write lock. */
FK_API int fk_index_add(fk_index_t *ix, size_t n, const int64_t *face_ids, const int64_t *person_ids,
                        const int64_t *group_ids, const float *v);
/* Removes one face / every face of a person; *REMOVED (may be NULL) receives the count. Write lock. */
FK_API int fk_index_remove_face(fk_index_t *ix, int64_t face_id, size_t *removed);
FK_API int fk_index_remove_person(fk_index_t *ix, int64_t person_id, size_t *removed);
/* Templates in the index. */
FK_API size_t fk_index_size(fk_index_t *ix);
/* Kernel level in use: "avx512", "avx2" or "c". */
FK_API const char *fk_index_kernels(const fk_index_t *ix);

typedef struct fk_index_hit {
    int64_t face_id, person_id, group_id;
    float cosine; /* exact fp32 dot product with the normalised query */
} fk_index_hit_t;

#define FK_SEARCH_DISTINCT 0x1 /* at most one hit per person (their best face) */
#define FK_SEARCH_EXACT 0x2    /* brute-force fp32 over every template (ground truth for tests/benches) */

/* The K (1..1000) best templates for query Q (DIM floats; normalised here), best first, restricted to
 * GROUP_ID when it is > 0. HITS has room for K; *N_HITS receives how many were found (fewer when the
 * gallery/group is smaller). Read lock; thread-safe. */
FK_API int fk_index_search(fk_index_t *ix, const float *q, int k, int64_t group_id, unsigned flags,
                           fk_index_hit_t *hits, int *n_hits);

/* FAISS IndexFlatIP through the C++ shim, for comparisons in benchmarks: exact inner-product top-K of NQ
 * queries over N vectors (row-major), with THREADS OpenMP threads. D/I receive NQ x K scores / row numbers.
 * FK_EUNSUPPORTED without FAISS. */
FK_API int fk_faiss_flat_search(const float *x, size_t n, int dim, const float *q, size_t nq, int k, int threads,
                                float *d, int64_t *ids);

/* A gallery: a store, the index loaded from it at open, and open-set identification calibrated by the
 * face engine (fk_compare: the manifest's logistic calibration and threshold). */
typedef struct fk_gallery fk_gallery_t;

typedef struct fk_gallery_options {
    fk_store_options_t store;
    fk_index_options_t index;
    const fk_engine_t *engine; /* scores and threshold via fk_compare; its model id and dimension */
    const char *model_id;      /* without engine: templates of this model (required then) */
    int dim;                   /* without engine: template dimension (required then) */
    double threshold;          /* on the score; < 0 = the engine's default (without engine: raw cosine) */
} fk_gallery_options_t;

/* Opens the store and loads every template of the gallery's model into the index (templates of other
 * models are skipped and counted in fk_gallery_stats). *OUT receives a handle even on failure (for
 * fk_gallery_errmsg), NULL only on FK_ENOMEM. */
FK_API int fk_gallery_open(const fk_gallery_options_t *opt, fk_gallery_t **out);
FK_API void fk_gallery_close(fk_gallery_t *g);
FK_API const char *fk_gallery_errmsg(const fk_gallery_t *g);
/* The store and index of G (owned by G). The store must not be used while another thread calls G. */
FK_API fk_store_t *fk_gallery_store(fk_gallery_t *g);
FK_API fk_index_t *fk_gallery_index(fk_gallery_t *g);
/* Templates loaded at open / skipped because another model made them. */
FK_API int fk_gallery_stats(const fk_gallery_t *g, size_t *loaded, size_t *skipped_other_model);

/* Enrols a person with N faces: one store transaction, then the index. A template of another model or
 * dimension is FK_EMISMATCH (nothing written). */
FK_API int fk_gallery_enroll(fk_gallery_t *g, const fk_person_t *person, const fk_face_record_t *faces,
                             size_t n, int64_t *person_id, int64_t *face_ids);
/* Deletes the person from the store (for real, see Store) and from the index. */
FK_API int fk_gallery_remove_person(fk_gallery_t *g, int64_t person_id);
/* Changes a person (fk_store_person_update); a new group moves their templates to it in the index. */
FK_API int fk_gallery_update_person(fk_gallery_t *g, int64_t person_id, const fk_person_t *changes);
/* Deletes one face of a person from the store (for real) and from the index. FK_ENOTFOUND when PERSON_ID
 * has no face FACE_ID. */
FK_API int fk_gallery_remove_face(fk_gallery_t *g, int64_t person_id, int64_t face_id);

#define FK_IDENTIFY_MAX_K 100

typedef struct fk_gallery_match {
    int64_t person_id, face_id;
    double cosine;  /* raw cosine of the best face of that person */
    double score;   /* calibrated 0..1 */
    char name[256]; /* the person's name (truncated) */
    char external_id[128];
} fk_gallery_match_t;

typedef struct fk_identify_result {
    int n;              /* matches filled, best first (<= k) */
    int unknown;        /* 1 when there is no match or the best score is below the threshold */
    double threshold;   /* applied */
    fk_gallery_match_t matches[FK_IDENTIFY_MAX_K];
} fk_identify_result_t;

/* Open-set identification of TMPL (DIM floats of model MODEL_ID; NULL = the gallery's): the K
 * (1..FK_IDENTIFY_MAX_K) best persons with calibrated scores, within GROUP (NULL = everyone; an unknown
 * group gives no match). Safe to call from several threads at once (the index is read-locked; the name
 * lookup is serialised). FK_EMISMATCH for a template of another model. */
FK_API int fk_gallery_identify(fk_gallery_t *g, const float *tmpl, int dim, const char *model_id,
                               const char *group, int k, fk_identify_result_t *out);

#ifdef __cplusplus
}
#endif
#endif /* FACEKIT_H */
