/*
 * datasets.h — internal interface of the evaluation data sets: LFW pair lists (lfw.c) and face-detection
 * ground truth with its matching rules (detect_eval.c). Pure parsing and arithmetic: nothing here runs a
 * model; the front-end (`facekit eval`) runs the face engine and hands scores and boxes to these helpers.
 * Everything allocates through the counting allocator and reports problems as a status plus a message.
 */
#ifndef FK_EVAL_DATASETS_H
#define FK_EVAL_DATASETS_H

#include "facekit.h"

#include <stddef.h>

/* ---- LFW pairs ---------------------------------------------------------------------------------- */

/* One distinct image of a pair list: DIR/<name>/<name>_<index as %04d>.jpg. */
typedef struct fk__lfw_image {
    char *name;
    int index; /* 1-based, as in the pair files */
} fk__lfw_image_t;

typedef struct fk__lfw_pair {
    size_t a, b; /* indices into fk__lfw_pairs_t.image */
    int same;    /* 1: same person */
    int fold;    /* 0..n_folds-1 (View 2: pair k of the file is in fold k / (2 * per_fold)); 0 for View 1 */
    int line;    /* line number in the file, for messages */
} fk__lfw_pair_t;

typedef struct fk__lfw_pairs {
    fk__lfw_pair_t *pair;
    size_t n;
    int n_folds;  /* 10 for View 2 ("10 300" header), 1 for View 1 ("N" header) */
    int per_fold; /* same (and different) pairs per fold: 300 for View 2, N for View 1 */
    fk__lfw_image_t *image; /* distinct images, sorted by (name, index) */
    size_t n_images;
} fk__lfw_pairs_t;

/* Parses a View 1 ("N", then N same and N different pairs) or View 2 ("FOLDS N", then per fold N same
 * and N different pairs) pair list. Fields are separated by tabs or spaces; CR-LF is accepted; blank
 * lines are ignored. Anything else (a missing or extra field, an index < 1, fewer or
 * more pairs than the header promises, a same-person line where a different-person one is due) is
 * FK_EFORMAT with "PATH:LINE: ..." in ERR. FK_EIO when the file cannot be read. *OUT is freed with
 * fk__lfw_pairs_free. */
int fk__lfw_pairs_load(const char *path, fk__lfw_pairs_t **out, char *err, size_t errsize);
/* Same from a string (NAME stands for the path in messages). */
int fk__lfw_pairs_parse(const char *text, size_t len, const char *name, fk__lfw_pairs_t **out, char *err,
                        size_t errsize);
void fk__lfw_pairs_free(fk__lfw_pairs_t *p);

/* ROOT/<name>/<name>_<%04d index>.jpg into BUF; FK_ELIMIT when it does not fit. */
int fk__lfw_image_path(const char *root, const fk__lfw_image_t *img, char *buf, size_t size);

/* Scores every pair: SCORES[i] = SIMILARITY(ctx, a, b) when both images have a template (HAS[a] and HAS[b]
 * non-zero), else NaN, which fk_eval_* counts as an error at every threshold — a pair whose image has
 * no face is never skipped. */
typedef double (*fk__lfw_similarity_fn)(void *ctx, size_t a, size_t b);
void fk__lfw_score_pairs(const fk__lfw_pairs_t *p, const unsigned char *has, fk__lfw_similarity_fn sim,
                         void *ctx, double *scores);

/* The LFW summary of SCORES (one per pair of P): with P->n_folds > 1, the threshold is chosen on the
 * other folds and applied to each fold; otherwise from (TRAIN, TRAIN_SCORES) when given, else on P
 * itself. AUC, TAR@FAR 1e-3 and EER are over all pairs of P. */
int fk__lfw_summarize(const fk__lfw_pairs_t *p, const double *scores, const fk__lfw_pairs_t *train,
                      const double *train_scores, fk_eval_summary_t *out);

/* ---- Face-detection ground truth ------------------------------------------------------------------- */

typedef enum fk__det_match_rule {
    FK__DET_MATCH_IOU = 0,    /* detection box and GT box overlap with IoU >= min_iou */
    FK__DET_MATCH_CENTRE = 1, /* the GT box's centre lies inside the detection box */
    FK__DET_MATCH_POINT = 2   /* the GT point (nose) lies inside the detection box */
} fk__det_match_rule_t;

/* One annotated face: a box (dlib) or a point (CompreFace nose), pixel edge coordinates. */
typedef struct fk__det_gt_face {
    float x, y, w, h; /* box; for a point, (x, y) and w = h = 0 */
    int ignore;       /* dlib ignore='1': neither a hit nor a miss, a detection on it is no false positive */
} fk__det_gt_face_t;

typedef struct fk__det_gt_image {
    char *file; /* relative to the data set directory */
    fk__det_gt_face_t *face;
    size_t n_faces;
} fk__det_gt_image_t;

typedef struct fk__det_gt {
    fk__det_gt_image_t *image;
    size_t n_images;
    int points; /* 1: faces are points (nose), 0: boxes */
} fk__det_gt_t;

/* dlib imglab XML (<image file='..'><box top left width height [ignore]/>...</image>): appends the images
 * of PATH to *GT (created when *GT is NULL). FK_EFORMAT with a message on a box missing an attribute or a
 * negative size, an unterminated tag, no <images>. */
int fk__det_gt_load_dlib(const char *path, fk__det_gt_t **gt, char *err, size_t errsize);
/* CompreFace nose points: "file<TAB>count<TAB>x,y;x,y;..." ('#' comments); COUNT must equal the points. */
int fk__det_gt_load_points(const char *path, fk__det_gt_t **gt, char *err, size_t errsize);
/* Adds an image with no face at all (e.g. dlib's dogs.jpg: every detection there is a false positive). */
int fk__det_gt_add_negative(fk__det_gt_t **gt, const char *file);
void fk__det_gt_free(fk__det_gt_t *gt);

/* Result of matching one image's detections with its ground truth. */
typedef struct fk__det_match_result {
    size_t gt;        /* faces that count (not ignored) */
    size_t hits;      /* of them matched by a detection */
    size_t false_pos; /* detections matched to no face (and not to an ignored one) */
} fk__det_match_result_t;

/* One-to-one greedy matching: detections in decreasing SCORE order each take the still-unmatched GT face
 * that fits best (highest IoU for IOU; nearest GT centre/point to the box centre for CENTRE/POINT).
 * DET is N_DET boxes (x, y, w, h), SCORE their confidences (NULL = the given order). MATCHED_GT (may be
 * NULL; n_faces entries) receives the detection index of each GT face or -1. Allocates a small work
 * array: FK_ENOMEM possible. */
int fk__det_match(const fk__det_gt_image_t *img, int points, const fk_rectf_t *det, const float *score,
                  size_t n_det, fk__det_match_rule_t rule, float min_iou, fk__det_match_result_t *res,
                  long *matched_gt);

/* Intersection over union of two boxes (0 when either is empty). */
float fk__det_iou(const fk_rectf_t *a, const fk_rectf_t *b);

#endif
