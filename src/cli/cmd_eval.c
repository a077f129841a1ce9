/*
 * cmd_eval.c — `facekit eval lfw|detect`: accuracy measurements of the face pipeline on public data.
 *   eval lfw --pairs PAIRS [--root DIR] [--train PAIRS] [--flip] [--threads N] [--pick centre|largest]
 *            [--size WxH] [--scores FILE]
 *       The LFW protocol: every distinct image embedded once (a worker pool, one face context per
 *       thread), pairs scored by cosine, a pair with a faceless image scored NaN (an error, never
 *       skipped); 10-fold threshold selection for a View 2 list, or the threshold from --train (View 1
 *       DevTrain) applied to the list. Human-readable lines, then one JSON line.
 *   eval detect --dataset dlib|compreface [--root DIR] [--size WxH] [--match iou|centre] [--iou T]
 *            [--threshold T] [--multiscale]
 *       Detection recall and false positives per image against the data set's ground truth, per-image
 *       lines, then one JSON line.
 *   calibrate lfw --pairs P --root DIR --out manifest.json [--threads N] [--far F]
 *       Fits the compare calibration (logistic on cosine) and the FAR threshold on a pair list (View 1
 *       DevTrain) with the same embedding of every distinct image as `eval lfw` (largest face, no flip)
 *       and writes the model manifest.
 * A front-end over facekit.h (face engine) and the data-set helpers of src/eval/datasets.h.
 */
#include "cli.h"
#include "eval/datasets.h"
#include "facekit.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void) {
    fprintf(stderr,
            "usage: facekit eval lfw --pairs PAIRS [--root DIR] [--train PAIRS] [--flip] [--threads N]\n"
            "                        [--pick centre|largest] [--size WxH] [--scores FILE] [--models DIR]\n"
            "       facekit eval detect --dataset dlib|compreface [--root DIR] [--size WxH] [--match iou|centre]\n"
            "                        [--iou T] [--threshold T] [--multiscale] [--models DIR]\n");
    return 2;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_wxh(const char *s, int *w, int *h) {
    char c;
    return sscanf(s, "%dx%d%c", w, h, &c) == 2 && *w > 0 && *h > 0 ? 0 : -1;
}

static fk_engine_t *open_engine(const char *models_dir, unsigned models) {
    fk_engine_options_t eo = {0};
    eo.models_dir = models_dir;
    eo.models = models;
    const char *mf = getenv("FK_MANIFEST");
    if (mf && *mf) eo.manifest = mf;
    fk_engine_t *e = NULL;
    int rc = fk_engine_open(&eo, &e);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit eval: cannot open the face engine in %s: %s: %s\n", models_dir, fk_status_str(rc),
                fk_engine_errmsg(e));
        fk_engine_close(e);
        return NULL;
    }
    return e;
}

/* ---- eval lfw ----------------------------------------------------------------------------------------- */

typedef struct {
    char *path;
    fk_template_t tpl;
    int has;        /* a face was found and embedded */
    int n_faces;    /* faces the detector returned */
    float det_score; /* of the face used */
    int failed;     /* the image could not be read/decoded, or a pipeline error */
    char err[200];
} lfw_item_t;

typedef struct {
    fk_engine_t *engine;
    lfw_item_t *item;
    size_t n;
    atomic_size_t next, done;
    unsigned flags;
    int pick_largest;
    fk_detect_options_t det;
} lfw_job_t;

/* The face the pair list means: LFW images are centred on the labelled person, so the face whose box
 * centre is nearest the image centre (or, with --pick largest, the largest box). */
static size_t pick_face(const fk_face_t *f, size_t n, const fk_image_t *img, int largest) {
    size_t best = 0;
    double bv = INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (largest) {
            v = -(double)f[i].box[2] * f[i].box[3];
        } else {
            double dx = f[i].box[0] + 0.5 * f[i].box[2] - 0.5 * img->width;
            double dy = f[i].box[1] + 0.5 * f[i].box[3] - 0.5 * img->height;
            v = dx * dx + dy * dy;
        }
        if (v < bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

static void lfw_one(lfw_job_t *job, fk_ctx_t *ctx, lfw_item_t *it) {
    fk_image_t *img = NULL;
    fk_face_t *faces = NULL;
    size_t nf = 0;
    int rc = fk_image_load(it->path, NULL, &img, it->err, sizeof it->err);
    if (rc != FK_OK) {
        it->failed = 1;
        return;
    }
    rc = fk_detect(ctx, img, &job->det, &faces, &nf);
    if (rc != FK_OK) {
        snprintf(it->err, sizeof it->err, "detect: %s: %s", fk_status_str(rc), fk_ctx_errmsg(ctx));
        it->failed = 1;
    } else if (nf > 0) {
        size_t k = pick_face(faces, nf, img, job->pick_largest);
        it->n_faces = (int)nf;
        it->det_score = faces[k].score;
        rc = fk_embed(ctx, img, &faces[k], job->flags, &it->tpl);
        if (rc != FK_OK) {
            snprintf(it->err, sizeof it->err, "embed: %s: %s", fk_status_str(rc), fk_ctx_errmsg(ctx));
            it->failed = 1;
        } else {
            it->has = 1;
        }
    }
    fk_free(faces);
    fk_image_free(img);
}

static void *lfw_worker(void *arg) {
    lfw_job_t *job = arg;
    fk_ctx_t *ctx = NULL;
    int rc = fk_ctx_create(job->engine, &ctx);
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n) break;
        lfw_item_t *it = &job->item[i];
        if (rc != FK_OK) {
            snprintf(it->err, sizeof it->err, "cannot create a face context: %s", fk_status_str(rc));
            it->failed = 1;
        } else {
            lfw_one(job, ctx, it);
        }
        size_t d = atomic_fetch_add(&job->done, 1) + 1;
        if (d % 500 == 0) fprintf(stderr, "  %zu/%zu images\n", d, job->n);
    }
    fk_ctx_destroy(ctx);
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Index of PATH in the sorted table (it is there). */
static size_t find_path(char **paths, size_t n, const char *path) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(paths[mid], path);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return (size_t)-1;
}

typedef struct {
    const fk_engine_t *engine;
    const lfw_item_t *item;
    const size_t *map; /* pair-list image index -> item index */
} sim_ctx_t;

static double lfw_sim(void *p, size_t a, size_t b) {
    sim_ctx_t *s = p;
    fk_match_t m;
    if (fk_compare(s->engine, &s->item[s->map[a]].tpl, &s->item[s->map[b]].tpl, -1.0, &m) != FK_OK) return NAN;
    return m.cosine;
}

/* Scores of the pairs of P; *NO_FACE_PAIRS counts the pairs that got NaN. */
static int score_list(const fk__lfw_pairs_t *p, const char *root, const fk_engine_t *e, lfw_item_t *items,
                      char **paths, size_t n_items, double *scores, size_t *no_face_pairs) {
    size_t *map = malloc((p->n_images ? p->n_images : 1) * sizeof *map);
    unsigned char *has = malloc(p->n_images ? p->n_images : 1);
    if (!map || !has) {
        free(map);
        free(has);
        return -1;
    }
    for (size_t i = 0; i < p->n_images; i++) {
        char path[4096];
        fk__lfw_image_path(root, &p->image[i], path, sizeof path);
        map[i] = find_path(paths, n_items, path);
        has[i] = (unsigned char)items[map[i]].has;
    }
    sim_ctx_t sc = {e, items, map};
    fk__lfw_score_pairs(p, has, lfw_sim, &sc, scores);
    *no_face_pairs = 0;
    for (size_t i = 0; i < p->n; i++) *no_face_pairs += isnan(scores[i]) != 0;
    free(map);
    free(has);
    return 0;
}

/* Every distinct image of the pair lists A and B (B may be NULL) under ROOT, embedded once by THREADS
 * workers. Prints what went wrong (prefixed "facekit CMD: ") and returns -1 when an image could not be
 * read or the pipeline failed; an image without a face is not an error (its pairs score NaN). */
typedef struct {
    char **paths; /* sorted, distinct */
    lfw_item_t *items;
    size_t n, no_face;
    double secs;
    int threads; /* workers that ran */
} lfw_set_t;

static void lfw_set_free(lfw_set_t *set) {
    for (size_t i = 0; set->paths && i < set->n; i++) free(set->paths[i]);
    free(set->paths);
    free(set->items);
    memset(set, 0, sizeof *set);
}

static int lfw_embed_all(const char *cmd, const fk__lfw_pairs_t *a, const fk__lfw_pairs_t *b, const char *root,
                         fk_engine_t *engine, int threads, unsigned flags, int pick_largest, int sw, int sh,
                         lfw_set_t *set) {
    memset(set, 0, sizeof *set);
    size_t cap = a->n_images + (b ? b->n_images : 0), n = 0;
    char **paths = calloc(cap ? cap : 1, sizeof *paths);
    set->paths = paths;
    if (!paths) return -1;
    for (int s = 0; s < 2; s++) {
        const fk__lfw_pairs_t *p = s ? b : a;
        for (size_t i = 0; p && i < p->n_images; i++) {
            char path[4096];
            if (fk__lfw_image_path(root, &p->image[i], path, sizeof path) != FK_OK) {
                fprintf(stderr, "facekit %s: path too long under %s\n", cmd, root);
                set->n = n;
                return -1;
            }
            if (!(paths[n++] = strdup(path))) {
                set->n = n - 1;
                return -1;
            }
        }
    }
    qsort(paths, n, sizeof *paths, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u && !strcmp(paths[u - 1], paths[i])) {
            free(paths[i]);
            continue;
        }
        paths[u++] = paths[i];
    }
    set->n = n = u;
    lfw_item_t *items = set->items = calloc(n ? n : 1, sizeof *items);
    if (!items) return -1;
    for (size_t i = 0; i < n; i++) items[i].path = paths[i];

    lfw_job_t job = {.engine = engine, .item = items, .n = n, .flags = flags, .pick_largest = pick_largest};
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    fk_detect_options_default(&job.det);
    job.det.width = sw;
    job.det.height = sh;
    double t0 = now_s();
    pthread_t tid[256];
    int started = 0;
    for (int t = 0; t < threads && t < 256; t++) {
        if (pthread_create(&tid[t], NULL, lfw_worker, &job) != 0) break;
        started++;
    }
    if (started == 0) lfw_worker(&job);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    set->secs = now_s() - t0;
    set->threads = started ? started : 1;

    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].failed) {
            fprintf(stderr, "facekit %s: %s: %s\n", cmd, items[i].path, items[i].err);
            failed++;
        } else if (!items[i].has) {
            set->no_face++;
        }
    }
    if (failed) {
        fprintf(stderr, "facekit %s: %zu image(s) could not be processed (missing data?)\n", cmd, failed);
        return -1;
    }
    return 0;
}

static int cmd_lfw(int argc, char **argv) {
    const char *pairs_path = NULL, *train_path = NULL, *root = NULL, *scores_path = NULL;
    const char *models = fk_cli_models_dir();
    int threads = 1, flip = 0, pick_largest = 0, sw = 0, sh = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--pairs") && more) pairs_path = argv[++i];
        else if (!strcmp(a, "--train") && more) train_path = argv[++i];
        else if (!strcmp(a, "--root") && more) root = argv[++i];
        else if (!strcmp(a, "--scores") && more) scores_path = argv[++i];
        else if (!strcmp(a, "--models") && more) models = argv[++i];
        else if (!strcmp(a, "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--flip")) flip = 1;
        else if (!strcmp(a, "--pick") && more) {
            const char *v = argv[++i];
            if (!strcmp(v, "largest")) pick_largest = 1;
            else if (!strcmp(v, "centre") || !strcmp(v, "center")) pick_largest = 0;
            else return usage();
        } else if (!strcmp(a, "--size") && more) {
            if (parse_wxh(argv[++i], &sw, &sh)) return usage();
        } else {
            fprintf(stderr, "facekit eval lfw: unknown or incomplete option '%s'\n", a);
            return usage();
        }
    }
    if (!pairs_path || threads < 1 || threads > 256) return usage();
    char default_root[4096];
    if (!root) {
        snprintf(default_root, sizeof default_root, "%s/lfw-view1/images", fk_cli_data_dir());
        root = default_root;
    }
    char err[512] = "";
    fk__lfw_pairs_t *test = NULL, *train = NULL;
    int rc = fk__lfw_pairs_load(pairs_path, &test, err, sizeof err);
    if (rc == FK_OK && train_path) rc = fk__lfw_pairs_load(train_path, &train, err, sizeof err);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit eval lfw: %s: %s\n", fk_status_str(rc), err);
        fk__lfw_pairs_free(test);
        return 1;
    }
    if (train && test->n_folds > 1)
        fprintf(stderr, "facekit eval lfw: --train is ignored with a %d-fold list (thresholds come from the "
                        "other folds)\n",
                test->n_folds);
    int status = 1;
    lfw_set_t set = {0};
    double *scores = NULL, *tscores = NULL;
    fk_engine_t *engine = NULL;

    if (!(engine = open_engine(models, FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE))) goto out;
    fk_engine_info_t info;
    fk_engine_info(engine, &info);
    if (lfw_embed_all("eval lfw", test, train, root, engine, threads, flip ? FK_EMBED_FLIP : 0, pick_largest, sw,
                      sh, &set))
        goto out;
    char **paths = set.paths;
    lfw_item_t *items = set.items;
    size_t n = set.n, no_face = set.no_face, multi = 0;
    for (size_t i = 0; i < n; i++) multi += items[i].n_faces > 1;
    scores = malloc(test->n * sizeof *scores);
    if (train && test->n_folds == 1) tscores = malloc(train->n * sizeof *tscores);
    if (!scores || (train && test->n_folds == 1 && !tscores)) goto out;

    size_t nf_pairs = 0, nf_train = 0;
    if (score_list(test, root, engine, items, paths, n, scores, &nf_pairs)) goto out;
    if (tscores && score_list(train, root, engine, items, paths, n, tscores, &nf_train)) goto out;
    fk_eval_summary_t sum;
    rc = fk__lfw_summarize(test, scores, tscores ? train : NULL, tscores, &sum);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit eval lfw: summary: %s\n", fk_status_str(rc));
        goto out;
    }
    if (scores_path) {
        FILE *f = fopen(scores_path, "w");
        if (!f) {
            fprintf(stderr, "facekit eval lfw: cannot write %s\n", scores_path);
            goto out;
        }
        fprintf(f, "# line\tsame\tcosine\tfold\timage_a\timage_b\n");
        for (size_t i = 0; i < test->n; i++) {
            const fk__lfw_pair_t *q = &test->pair[i];
            fprintf(f, "%d\t%d\t%.6f\t%d\t%s_%04d\t%s_%04d\n", q->line, q->same, scores[i], q->fold,
                    test->image[q->a].name, test->image[q->a].index, test->image[q->b].name,
                    test->image[q->b].index);
        }
        fclose(f);
    }

    double train_acc = 0;
    if (tscores) {
        int *ts = malloc(train->n * sizeof *ts);
        if (!ts) goto out;
        for (size_t i = 0; i < train->n; i++) ts[i] = train->pair[i].same;
        train_acc = fk_eval_accuracy(tscores, ts, train->n, sum.threshold);
        free(ts);
    }
    const char *protocol = test->n_folds > 1 ? "k-fold" : tscores ? "train-threshold" : "self-threshold";
    printf("LFW %s: %zu pairs (%zu same, %zu different), %zu distinct images%s\n", pairs_path, test->n,
           (size_t)test->n_folds * test->per_fold, (size_t)test->n_folds * test->per_fold, n,
           tscores ? " (with the training list)" : "");
    printf("pipeline: detect (%s) -> 5 landmarks -> align 112x112 -> fr_feature%s; face picked: %s; model %s\n",
           sw ? "fixed working size" : "automatic working size", flip ? " + flip fusion" : "",
           pick_largest ? "largest" : "nearest the image centre", info.model_id ? info.model_id : "?");
    if (test->n_folds > 1)
        printf("protocol: %d folds, threshold chosen on the other %d and applied to each\n", test->n_folds,
               test->n_folds - 1);
    else if (tscores)
        printf("protocol: threshold chosen on %s (%zu pairs, training accuracy %.4f, %zu no-face pairs) and "
               "applied to this list\n",
               train_path, train->n, train_acc, nf_train);
    else
        printf("protocol: NOTE threshold chosen on this same list (no --train given): an optimistic figure\n");
    printf("embedded %zu images in %.1f s with %d thread(s) (%.1f images/s); %zu with several faces\n", n, set.secs,
           set.threads, n / (set.secs > 0 ? set.secs : 1), multi);
    printf("no face found: %zu image(s) -> %zu pair(s) counted as errors%s\n", no_face, nf_pairs,
           tscores && nf_train ? " (plus errors in the training list)" : "");
    for (size_t i = 0; i < n && no_face; i++)
        if (!items[i].has) printf("  no face: %s\n", items[i].path);
    if (test->n_folds > 1)
        printf("accuracy %.4f +- %.4f\n", sum.accuracy, sum.std);
    else
        printf("accuracy %.4f (%zu errors)\n", sum.accuracy, (size_t)llround((1.0 - sum.accuracy) * test->n));
    printf("threshold (cosine) %.4f; AUC %.5f; TAR@FAR=1e-3 %.4f; EER %.4f\n", sum.threshold, sum.auc,
           sum.tar_at_far_1e_3, sum.eer);
    printf("{\"accuracy\":%.6f,\"std\":%.6f,\"auc\":%.6f,\"tar_at_far_1e_3\":%.6f,\"eer\":%.6f,\"no_face\":%zu,"
           "\"pairs\":%zu,\"threshold\":%.6f,\"protocol\":\"%s\",\"flip\":%s,\"images\":%zu}\n",
           sum.accuracy, sum.std, sum.auc, sum.tar_at_far_1e_3, sum.eer, no_face, test->n, sum.threshold,
           protocol, flip ? "true" : "false", n);
    status = 0;
out:
    fk_engine_close(engine);
    lfw_set_free(&set);
    free(scores);
    free(tscores);
    fk__lfw_pairs_free(test);
    fk__lfw_pairs_free(train);
    return status;
}

/* ---- eval detect -------------------------------------------------------------------------------------- */

static int read_file(const char *path, unsigned char **buf, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long sz = ftell(f);
    rewind(f);
    if (sz <= 0 || !(*buf = malloc((size_t)sz))) {
        fclose(f);
        return -1;
    }
    *n = fread(*buf, 1, (size_t)sz, f);
    fclose(f);
    return *n == (size_t)sz ? 0 : -1;
}

static int cmd_detect(int argc, char **argv) {
    const char *dataset = NULL, *root = NULL, *models = fk_cli_models_dir();
    int sw = 0, sh = 0, multiscale = 0;
    fk__det_match_rule_t rule = FK__DET_MATCH_IOU;
    float min_iou = 0.5f, thr = -1.0f;
    int rule_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--dataset") && more) dataset = argv[++i];
        else if (!strcmp(a, "--root") && more) root = argv[++i];
        else if (!strcmp(a, "--models") && more) models = argv[++i];
        else if (!strcmp(a, "--iou") && more) min_iou = (float)atof(argv[++i]);
        else if (!strcmp(a, "--threshold") && more) thr = (float)atof(argv[++i]);
        else if (!strcmp(a, "--multiscale")) multiscale = 1;
        else if (!strcmp(a, "--match") && more) {
            const char *v = argv[++i];
            rule_given = 1;
            if (!strcmp(v, "iou")) rule = FK__DET_MATCH_IOU;
            else if (!strcmp(v, "centre") || !strcmp(v, "center")) rule = FK__DET_MATCH_CENTRE;
            else return usage();
        } else if (!strcmp(a, "--size") && more) {
            if (parse_wxh(argv[++i], &sw, &sh)) return usage();
        } else {
            fprintf(stderr, "facekit eval detect: unknown or incomplete option '%s'\n", a);
            return usage();
        }
    }
    if (!dataset || (strcmp(dataset, "dlib") && strcmp(dataset, "compreface"))) return usage();
    int points = !strcmp(dataset, "compreface");
    if (points) {
        if (rule_given && rule != FK__DET_MATCH_CENTRE) {
            fprintf(stderr, "facekit eval detect: compreface marks faces by nose points: only the point-inside "
                            "rule applies\n");
            return 2;
        }
        rule = FK__DET_MATCH_POINT;
    }
    char droot[4096], path[4200], err[512] = "";
    if (!root) {
        snprintf(droot, sizeof droot, "%s/detection/%s", fk_cli_data_dir(), dataset);
        root = droot;
    }
    fk__det_gt_t *gt = NULL;
    int rc;
    if (points) {
        snprintf(path, sizeof path, "%s/nose_points.txt", root);
        rc = fk__det_gt_load_points(path, &gt, err, sizeof err);
    } else {
        snprintf(path, sizeof path, "%s/training.xml", root);
        rc = fk__det_gt_load_dlib(path, &gt, err, sizeof err);
        snprintf(path, sizeof path, "%s/testing.xml", root);
        if (rc == FK_OK) rc = fk__det_gt_load_dlib(path, &gt, err, sizeof err);
        /* dogs.jpg has no human face: every detection there is a false positive */
        if (rc == FK_OK) rc = fk__det_gt_add_negative(&gt, "dogs.jpg");
    }
    if (rc != FK_OK) {
        fprintf(stderr, "facekit eval detect: %s: %s\n", fk_status_str(rc), err);
        fk__det_gt_free(gt);
        return 1;
    }
    fk_engine_t *engine = open_engine(models, FK_ENGINE_DETECT | FK_ENGINE_LANDMARK);
    fk_ctx_t *ctx = NULL;
    int status = 1;
    if (!engine) goto out;
    if ((rc = fk_ctx_create(engine, &ctx)) != FK_OK) {
        fprintf(stderr, "facekit eval detect: context: %s\n", fk_status_str(rc));
        goto out;
    }
    fk_detect_options_t o;
    fk_detect_options_default(&o);
    o.width = sw;
    o.height = sh;
    o.flags |= FK_DETECT_NO_LANDMARKS;
    if (multiscale) o.flags |= FK_DETECT_MULTISCALE;
    if (thr >= 0) o.score_threshold = thr;
    const char *rule_name = rule == FK__DET_MATCH_IOU ? "iou" : rule == FK__DET_MATCH_CENTRE ? "centre" : "nose";
    printf("detection on %s (%s): %zu images; working size %s; score >= %.2f; match: %s", dataset, root,
           gt->n_images, sw ? "fixed" : "automatic (longer side 320)", o.score_threshold,
           rule == FK__DET_MATCH_IOU ? "IoU" : rule == FK__DET_MATCH_CENTRE ? "GT box centre inside detection"
                                                                           : "nose point inside detection");
    if (rule == FK__DET_MATCH_IOU) printf(" >= %.2f", min_iou);
    printf("%s\n", multiscale ? "; multiscale" : "");
    size_t tot_gt = 0, tot_hit = 0, tot_fp = 0, tot_hit_alt = 0, tot_fp_alt = 0, tot_det = 0;
    double secs = 0;
    for (size_t i = 0; i < gt->n_images; i++) {
        const fk__det_gt_image_t *im = &gt->image[i];
        snprintf(path, sizeof path, "%s/%s", root, im->file);
        unsigned char *bytes = NULL;
        size_t nb = 0;
        if (read_file(path, &bytes, &nb)) {
            fprintf(stderr, "facekit eval detect: cannot read %s\n", path);
            free(bytes);
            goto out;
        }
        fk_image_info_t ii;
        fk_image_decode_options_t dopt = {0};
        dopt.max_side = FK_FACE_DECODE_MAX_SIDE;
        fk_image_t *img = NULL;
        rc = fk_image_probe(bytes, nb, &ii, err, sizeof err);
        if (rc == FK_OK) rc = fk_image_decode(bytes, nb, &dopt, &img, err, sizeof err);
        free(bytes);
        if (rc != FK_OK) {
            fprintf(stderr, "facekit eval detect: %s: %s: %s\n", path, fk_status_str(rc), err);
            goto out;
        }
        /* the ground truth is in the file's pixels; the image may be decoded smaller (DCT scaling) */
        float sx = (float)ii.width / (float)img->width, sy = (float)ii.height / (float)img->height;
        fk_face_t *faces = NULL;
        size_t nf = 0;
        double t0 = now_s();
        rc = fk_detect(ctx, img, &o, &faces, &nf);
        secs += now_s() - t0;
        int iw = img->width, ih = img->height;
        fk_image_free(img);
        if (rc != FK_OK) {
            fprintf(stderr, "facekit eval detect: %s: %s: %s\n", path, fk_status_str(rc), fk_ctx_errmsg(ctx));
            goto out;
        }
        fk_rectf_t *boxes = malloc((nf ? nf : 1) * sizeof *boxes);
        float *sc = malloc((nf ? nf : 1) * sizeof *sc);
        long *m = malloc((im->n_faces ? im->n_faces : 1) * sizeof *m);
        if (!boxes || !sc || !m) {
            free(boxes);
            free(sc);
            free(m);
            fk_free(faces);
            goto out;
        }
        for (size_t k = 0; k < nf; k++) {
            boxes[k] = (fk_rectf_t){faces[k].box[0] * sx, faces[k].box[1] * sy, faces[k].box[2] * sx,
                                    faces[k].box[3] * sy};
            sc[k] = faces[k].score;
        }
        fk__det_match_result_t r, ralt = {0};
        rc = fk__det_match(im, points, boxes, sc, nf, rule, min_iou, &r, m);
        if (rc == FK_OK && !points)
            rc = fk__det_match(im, points, boxes, sc, nf,
                               rule == FK__DET_MATCH_IOU ? FK__DET_MATCH_CENTRE : FK__DET_MATCH_IOU, min_iou, &ralt,
                               NULL);
        if (rc == FK_OK) {
            tot_gt += r.gt;
            tot_hit += r.hits;
            tot_fp += r.false_pos;
            tot_hit_alt += ralt.hits;
            tot_fp_alt += ralt.false_pos;
            tot_det += nf;
            printf("  %-28s %4dx%-4d faces %2zu  found %2zu  fp %zu  detections %2zu", im->file, iw, ih, r.gt,
                   r.hits, r.false_pos, nf);
            if (!points) printf("  (%s: found %zu fp %zu)", rule == FK__DET_MATCH_IOU ? "centre" : "iou",
                                ralt.hits, ralt.false_pos);
            printf("\n");
            for (size_t g = 0; g < im->n_faces; g++)
                if (m[g] < 0 && !im->face[g].ignore) {
                    if (points) printf("      missed nose (%.0f, %.0f)\n", im->face[g].x, im->face[g].y);
                    else
                        printf("      missed box (%.0f, %.0f, %.0f x %.0f)\n", im->face[g].x, im->face[g].y,
                               im->face[g].w, im->face[g].h);
                }
            for (size_t k = 0; k < nf; k++) {
                int used = 0;
                for (size_t g = 0; g < im->n_faces; g++) used |= m[g] == (long)k;
                if (!used)
                    printf("      unmatched detection (%.0f, %.0f, %.0f x %.0f) score %.3f\n", boxes[k].x,
                           boxes[k].y, boxes[k].w, boxes[k].h, sc[k]);
            }
        }
        free(boxes);
        free(sc);
        free(m);
        fk_free(faces);
        if (rc != FK_OK) {
            fprintf(stderr, "facekit eval detect: matching: %s\n", fk_status_str(rc));
            goto out;
        }
    }
    double recall = tot_gt ? (double)tot_hit / (double)tot_gt : 0.0;
    double fppi = (double)tot_fp / (double)gt->n_images;
    printf("recall %.4f (%zu of %zu faces), false positives %zu = %.3f per image, %zu detections; %.1f ms per "
           "image\n",
           recall, tot_hit, tot_gt, tot_fp, fppi, tot_det, 1e3 * secs / (double)gt->n_images);
    if (!points)
        printf("by %s instead: recall %.4f, false positives %.3f per image\n",
               rule == FK__DET_MATCH_IOU ? "GT box centre inside the detection" : "IoU",
               (double)tot_hit_alt / (double)(tot_gt ? tot_gt : 1), (double)tot_fp_alt / (double)gt->n_images);
    printf("{\"dataset\":\"%s\",\"match\":\"%s\",\"images\":%zu,\"faces\":%zu,\"found\":%zu,\"recall\":%.6f,"
           "\"false_positives\":%zu,\"fp_per_image\":%.6f,\"detections\":%zu",
           dataset, rule_name, gt->n_images, tot_gt, tot_hit, recall, tot_fp, fppi, tot_det);
    if (!points)
        printf(",\"recall_%s\":%.6f,\"fp_per_image_%s\":%.6f", rule == FK__DET_MATCH_IOU ? "centre" : "iou",
               (double)tot_hit_alt / (double)(tot_gt ? tot_gt : 1), rule == FK__DET_MATCH_IOU ? "centre" : "iou",
               (double)tot_fp_alt / (double)gt->n_images);
    printf(",\"width\":%d,\"height\":%d}\n", sw, sh);
    status = 0;
out:
    fk_ctx_destroy(ctx);
    fk_engine_close(engine);
    fk__det_gt_free(gt);
    return status;
}

int fk_cli_eval(int argc, char **argv) {
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "lfw")) return cmd_lfw(argc - 1, argv + 1);
    if (!strcmp(argv[1], "detect")) return cmd_detect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return 0;
    }
    fprintf(stderr, "facekit eval: unknown sub-command '%s'\n", argv[1]);
    return usage();
}

/* ---- calibrate lfw ------------------------------------------------------------------------------------ */

static int calibrate_usage(void) {
    fprintf(stderr, "usage: facekit calibrate lfw --pairs pairsDevTrain.txt --root DIR --out models/manifest.json "
                    "[--threads N] [--far F]\n");
    return 2;
}

/* The manifest fk_engine_open reads: the calibration, how it was fitted, the liveness threshold. */
static int write_manifest(const char *out, const char *pairs_path, const fk_engine_info_t *info, double a, double b,
                          double thr, double far, double cthr, int np, size_t nofit, size_t nofaces, double tar,
                          double acc_thr, double acc_best, double thr_best) {
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char sha[65] = "", mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/faceplugin/fr_feature.onnx", fk_cli_models_dir());
    fk_sha256_file(mpath, sha, NULL);
    FILE *o = fopen(out, "w");
    if (!o) return -1;
    fprintf(o, "{\n  \"format\": \"facekit-model-manifest\",\n  \"version\": 1,\n");
    fprintf(o, "  \"feature_model\": {\"file\": \"faceplugin/fr_feature.onnx\", \"sha256\": \"%s\", \"model_id\": \"%s\"},\n",
            sha, info->model_id ? info->model_id : "");
    fprintf(o, "  \"compare\": {\n");
    fprintf(o, "    \"calibration\": \"logistic: score = 1 / (1 + exp(-(a * cosine + b)))\",\n");
    fprintf(o, "    \"a\": %.9g,\n    \"b\": %.9g,\n    \"threshold\": %.9g,\n", a, b, thr);
    fprintf(o, "    \"threshold_far\": %.9g,\n    \"cosine_threshold\": %.9g,\n", far, cthr);
    fprintf(o, "    \"fitted\": {\n      \"command\": \"facekit calibrate lfw --pairs <data>/lfw-view1/pairsDevTrain.txt "
               "--root <data>/lfw-view1/images --out models/manifest.json\",\n");
    fprintf(o, "      \"date\": \"%s\",\n", date);
    const char *base = strrchr(pairs_path, '/') ? strrchr(pairs_path, '/') + 1 : pairs_path;
    fprintf(o, "      \"data\": \"LFW View 1 ");
    for (; *base; base++) /* a file name in a JSON string */
        if (*base == '"' || *base == '\\') fprintf(o, "\\%c", *base);
        else if ((unsigned char)*base >= 0x20) fputc(*base, o);
    fprintf(o, " (deep-funneled 250x250), largest detected face, no flip\",\n");
    fprintf(o, "      \"pairs\": %d,\n      \"pairs_without_face\": %zu,\n      \"images_without_face\": %zu,\n", np,
            nofit, nofaces);
    fprintf(o, "      \"tar_at_threshold\": %.6f,\n      \"accuracy_at_threshold\": %.6f,\n", tar, acc_thr);
    fprintf(o, "      \"best_accuracy\": %.6f,\n      \"best_accuracy_cosine_threshold\": %.6f\n    }\n  },\n", acc_best,
            thr_best);
    fprintf(o, "  \"liveness\": {\n    \"threshold\": %.4g,\n", info->liveness_threshold);
    fprintf(o, "    \"note\": \"fr_liveness softmax class 0 (live); threshold chosen on data/antispoof samples, "
               "see docs/accuracy.md\"\n  }\n}\n");
    return fclose(o) ? -1 : 0;
}

int fk_cli_calibrate(int argc, char **argv) {
    const char *pairs_path = NULL, *root = NULL, *out = NULL;
    int threads = 2;
    double far = 1e-3;
    if (argc < 2 || strcmp(argv[1], "lfw")) return calibrate_usage();
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--pairs") && i + 1 < argc) pairs_path = argv[++i];
        else if (!strcmp(argv[i], "--root") && i + 1 < argc) root = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 64) return calibrate_usage();
            threads = (int)v;
        } else if (!strcmp(argv[i], "--far") && i + 1 < argc) {
            far = strtod(argv[++i], &end);
            if (*end || !(far >= 1e-6 && far <= 0.5)) return calibrate_usage();
        } else return calibrate_usage();
    }
    if (!pairs_path || !root || !out) return calibrate_usage();
    char err[512] = "";
    fk__lfw_pairs_t *p = NULL;
    int rc = fk__lfw_pairs_load(pairs_path, &p, err, sizeof err);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit calibrate: %s: %s\n", fk_status_str(rc), err);
        return 1;
    }
    int ret = 1;
    lfw_set_t set = {0};
    size_t np = p->n, nofit = 0;
    double *cosv = malloc(np * sizeof *cosv), *score = malloc(np * sizeof *score), *fitx = malloc(np * sizeof *fitx);
    int *same = malloc(np * sizeof *same), *fity = malloc(np * sizeof *fity);
    fk_engine_t *e = open_engine(fk_cli_models_dir(), FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE);
    if (!e || !cosv || !score || !fitx || !same || !fity) goto done;
    fk_engine_info_t info;
    fk_engine_info(e, &info);
    if (lfw_embed_all("calibrate", p, NULL, root, e, threads, 0, 1, 0, 0, &set)) goto done;
    if (score_list(p, root, e, set.items, set.paths, set.n, cosv, &nofit)) goto done;
    size_t nfit = 0;
    for (size_t i = 0; i < np; i++) {
        same[i] = p->pair[i].same;
        if (!isnan(cosv[i])) {
            fitx[nfit] = cosv[i];
            fity[nfit++] = same[i];
        }
    }
    double a, b, thr, tar, cthr, ctar, acc_best, thr_best;
    if (fk_eval_fit_logistic(fitx, fity, nfit, &a, &b)) {
        fprintf(stderr, "facekit calibrate: logistic fit failed\n");
        goto done;
    }
    for (size_t i = 0; i < np; i++) score[i] = isnan(cosv[i]) ? NAN : 1 / (1 + exp(-(a * cosv[i] + b)));
    fk_eval_threshold_at_far(score, same, np, far, &thr, &tar);
    fk_eval_threshold_at_far(cosv, same, np, far, &cthr, &ctar);
    fk_eval_best_threshold(cosv, same, np, &thr_best, &acc_best);
    double acc_thr = fk_eval_accuracy(score, same, np, thr);
    if (write_manifest(out, pairs_path, &info, a, b, thr, far, cthr, (int)np, nofit, set.no_face, tar, acc_thr,
                       acc_best, thr_best)) {
        fprintf(stderr, "facekit calibrate: cannot write %s\n", out);
        goto done;
    }
    printf("{\"pairs\":%zu,\"images\":%zu,\"images_without_face\":%zu,\"a\":%.6f,\"b\":%.6f,\"threshold\":%.6f,"
           "\"cosine_threshold\":%.6f,\"tar_at_far\":%.6f,\"far\":%g,\"accuracy_at_threshold\":%.6f,"
           "\"best_accuracy\":%.6f,\"seconds\":%.1f,\"out\":\"",
           np, set.n, set.no_face, a, b, thr, cthr, tar, far, acc_thr, acc_best, set.secs);
    for (const char *q = out; *q; q++)
        if (*q == '"' || *q == '\\') printf("\\%c", *q);
        else if ((unsigned char)*q >= 0x20) putchar(*q);
    printf("\"}\n");
    ret = 0;
done:
    lfw_set_free(&set);
    free(cosv);
    free(score);
    free(fitx);
    free(same);
    free(fity);
    fk_engine_close(e);
    fk__lfw_pairs_free(p);
    return ret;
}
