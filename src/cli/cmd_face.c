/*
 * cmd_face.c — the face commands of `facekit`, thin front-ends over the face engine in facekit.h:
 *   detect IMG [--draw out.jpg] [--min-face PX] [--threshold S] [--size WxH] [--multiscale]
 *   analyze IMG                         quality, liveness and attributes of every face
 *   embed IMG --out face.fkt [--flip]   template of the largest face
 *   compare A B [--threshold T] [--flip] each an image or a .fkt
 *   bench pipeline IMG [--threads N] [--runs N]   median wall and thread-CPU ms of each stage
 * JSON on stdout; errors on stderr with exit 1 (2 for usage errors).
 */
#include "cli.h"
#include "facekit.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared helpers ---- */

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* NaN/inf are not JSON: null */
static void json_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the calling thread: on a loaded machine it says what a stage costs, wall time what it took */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int open_engine(const char *cmd, unsigned models, int threads, fk_engine_t **e) {
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = fk_cli_models_dir();
    o.models = models;
    o.threads = threads;
    const char *mf = getenv("FK_MANIFEST");
    if (mf && *mf) o.manifest = mf;
    int rc = fk_engine_open(&o, e);
    if (rc) {
        fprintf(stderr, "facekit %s: cannot open the face engine: %s: %s\n", cmd, fk_status_str(rc),
                fk_engine_errmsg(*e));
        fk_engine_close(*e);
        *e = NULL;
    }
    return rc;
}

/* The engine and one context, or a message and non-zero with nothing left open. */
static int open_pipeline(const char *cmd, unsigned models, int threads, fk_engine_t **e, fk_ctx_t **c) {
    *c = NULL;
    if (open_engine(cmd, models, threads, e)) return 1;
    int rc = fk_ctx_create(*e, c);
    if (rc) {
        fprintf(stderr, "facekit %s: cannot create a face context: %s\n", cmd, fk_status_str(rc));
        fk_engine_close(*e);
        *e = NULL;
        return 1;
    }
    return 0;
}

/* An image as the pipeline wants it: decoded with DCT scaling when much larger than needed. *SCALE
 * receives original/decoded so that results can be reported in the file's own pixels. */
static int load_image(const char *cmd, const char *path, fk_image_t **img, double *scale, int *orig_w,
                      int *orig_h) {
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    char err[256] = "";
    int rc = fk_image_load(path, &d, img, err, sizeof err);
    if (rc) {
        fprintf(stderr, "facekit %s: %s: %s%s%s\n", cmd, path, fk_status_str(rc), err[0] ? ": " : "", err);
        return rc;
    }
    /* the displayed size (after EXIF orientation) of the file, to map boxes back */
    FILE *f = fopen(path, "rb");
    uint8_t head[1 << 16];
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    fk_image_info_t info;
    if (n && fk_image_probe(head, n, &info, NULL, 0) == FK_OK && info.width >= (*img)->width) {
        *orig_w = info.width;
        *orig_h = info.height;
        *scale = (double)info.width / (*img)->width;
    } else {
        *orig_w = (*img)->width;
        *orig_h = (*img)->height;
        *scale = 1.0;
    }
    return FK_OK;
}

static void print_point(FILE *f, fk_pointf_t p, double s) { fprintf(f, "[%.1f,%.1f]", p.x * s, p.y * s); }

static void print_face_core(FILE *f, const fk_face_t *fc, double s, int lm68) {
    fprintf(f, "\"box\":[%.1f,%.1f,%.1f,%.1f],\"score\":%.4f", fc->box[0] * s, fc->box[1] * s, fc->box[2] * s,
            fc->box[3] * s, fc->score);
    if (!fc->has_landmarks) return;
    fprintf(f, ",\"landmarks\":[");
    for (int k = 0; k < 5; k++) {
        if (k) fputc(',', f);
        print_point(f, fc->landmarks[k], s);
    }
    fputc(']', f);
    if (lm68) {
        fprintf(f, ",\"landmarks68\":[");
        for (int k = 0; k < 68; k++) {
            if (k) fputc(',', f);
            print_point(f, fc->landmarks68[k], s);
        }
        fputc(']', f);
    }
}

/* ---- detect / analyze: one image, its faces ---- */

typedef struct {
    fk_engine_t *e;
    fk_ctx_t *c;
    fk_image_t *img;
    fk_face_t *faces;
    size_t n;
    double s;  /* file pixels per decoded pixel */
    int w, h;  /* the file's displayed size */
} face_run_t;

static void face_run_close(face_run_t *r) {
    fk_free(r->faces);
    fk_ctx_destroy(r->c);
    fk_image_free(r->img);
    fk_engine_close(r->e);
}

/* Opens the pipeline with MODELS, loads PATH and finds its faces (O: NULL = defaults; MIN_FACE in the
 * file's pixels). Non-zero after a message, with everything closed. */
static int face_run_open(const char *cmd, unsigned models, const char *path, fk_detect_options_t *o, double min_face,
                         face_run_t *r) {
    memset(r, 0, sizeof *r);
    r->s = 1;
    if (open_pipeline(cmd, models, 1, &r->e, &r->c)) return 1;
    int rc = load_image(cmd, path, &r->img, &r->s, &r->w, &r->h);
    if (!rc) {
        if (o) o->min_face = (float)(min_face / r->s);
        rc = fk_detect(r->c, r->img, o, &r->faces, &r->n);
        if (rc) fprintf(stderr, "facekit %s: %s: %s\n", cmd, fk_status_str(rc), fk_ctx_errmsg(r->c));
    }
    if (rc) face_run_close(r);
    return rc ? 1 : 0;
}

/* ---- detect ---- */

static int usage_detect(void) {
    fprintf(stderr, "usage: facekit detect IMG [--draw out.jpg] [--min-face PX] [--threshold S] [--size WxH]\n"
                    "                      [--multiscale] [--no-landmarks68]\n");
    return 2;
}

int fk_cli_detect(int argc, char **argv) {
    const char *path = NULL, *draw = NULL;
    fk_detect_options_t o;
    fk_detect_options_default(&o);
    double min_face = 0, thr = o.score_threshold;
    int lm68 = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--draw") && i + 1 < argc) draw = argv[++i];
        else if (!strcmp(argv[i], "--min-face") && i + 1 < argc) {
            if (parse_double(argv[++i], 0, 1e5, &min_face)) return usage_detect();
        } else if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_double(argv[++i], 0, 1, &thr)) return usage_detect();
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            char c;
            if (sscanf(argv[++i], "%dx%d%c", &o.width, &o.height, &c) != 2 || o.width < 32 || o.height < 32 ||
                o.width > 4096 || o.height > 4096)
                return usage_detect();
        } else if (!strcmp(argv[i], "--multiscale")) o.flags |= FK_DETECT_MULTISCALE;
        else if (!strcmp(argv[i], "--no-landmarks68")) lm68 = 0;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage_detect();
    }
    if (!path) return usage_detect();
    o.score_threshold = (float)thr;
    face_run_t r;
    if (face_run_open("detect", FK_ENGINE_DETECT | FK_ENGINE_LANDMARK, path, &o, min_face, &r)) return 1;
    fk_image_t *img = r.img;
    const fk_face_t *faces = r.faces;
    size_t n = r.n;
    double s = r.s;
    int ret = 1;
    printf("{\"width\":%d,\"height\":%d,\"faces\":[", r.w, r.h);
    for (size_t i = 0; i < n; i++) {
        printf("%s{", i ? "," : "");
        print_face_core(stdout, &faces[i], s, lm68);
        putchar('}');
    }
    printf("]}\n");
    if (draw) {
        static const uint8_t green[3] = {0, 255, 0}, red[3] = {255, 0, 0};
        for (size_t i = 0; i < n; i++) {
            const fk_face_t *f = &faces[i];
            int t = img->width > 800 ? 3 : 2;
            fk_image_draw_rect(img, (int)lrintf(f->box[0]), (int)lrintf(f->box[1]), (int)lrintf(f->box[2]),
                               (int)lrintf(f->box[3]), t, green);
            for (int k = 0; k < 5 && f->has_landmarks; k++)
                fk_image_draw_point(img, (int)f->landmarks[k].x, (int)f->landmarks[k].y, t, red);
        }
        char err[256] = "";
        int rc = fk_image_save(img, draw, 90, err, sizeof err);
        if (rc) {
            fprintf(stderr, "facekit detect: cannot write %s: %s %s\n", draw, fk_status_str(rc), err);
            goto done;
        }
    }
    ret = 0;
done:
    face_run_close(&r);
    return ret;
}

/* ---- analyze ---- */

static void print_angles(FILE *f, float yaw, float pitch, float roll) {
    const float v[3] = {yaw, pitch, roll};
    static const char *const k[3] = {"yaw", "pitch", "roll"};
    for (int i = 0; i < 3; i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", k[i]);
        json_num(f, "%.1f", v[i]);
    }
}

int fk_cli_analyze(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "usage: facekit analyze IMG\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: facekit analyze IMG\n");
        return 2;
    }
    face_run_t r;
    if (face_run_open("analyze", FK_ENGINE_ALL, path, NULL, 0, &r)) return 1;
    fk_ctx_t *c = r.c;
    const fk_image_t *img = r.img;
    const fk_face_t *faces = r.faces;
    size_t n = r.n;
    double s = r.s;
    int rc, ret = 1;
    printf("{\"width\":%d,\"height\":%d,\"faces\":[", r.w, r.h);
    for (size_t i = 0; i < n; i++) {
        fk_quality_t q;
        fk_liveness_t l;
        fk_attributes_t a;
        fk_quality_options_t qo;
        fk_quality_options_default(&qo);
        qo.min_face_size = (float)(qo.min_face_size / s); /* thresholds are in the file's pixels */
        if ((rc = fk_quality(c, img, &faces[i], &qo, &q)) || (rc = fk_liveness(c, img, &faces[i], -1, &l)) ||
            (rc = fk_attributes(c, img, &faces[i], &a))) {
            printf("]}\n");
            fprintf(stderr, "facekit analyze: %s: %s\n", fk_status_str(rc), fk_ctx_errmsg(c));
            goto done;
        }
        printf("%s{", i ? "," : "");
        print_face_core(stdout, &faces[i], s, 0);
        printf(",\"quality\":{\"face_size\":%.1f,\"sharpness\":%.1f,\"brightness\":%.1f,\"contrast\":%.1f,",
               q.face_size * s, q.sharpness, q.brightness, q.contrast);
        print_angles(stdout, q.yaw, q.pitch, q.roll);
        printf(",\"left_eye_open\":");
        json_num(stdout, "%.3f", q.left_eye_open);
        printf(",\"right_eye_open\":");
        json_num(stdout, "%.3f", q.right_eye_open);
        printf(",\"cut\":%.3f,\"pass\":%s,\"reasons\":[", q.cut, q.pass ? "true" : "false");
        int first = 1;
        for (unsigned bit = 1; bit && bit <= 0x8000u; bit <<= 1)
            if ((q.reasons & bit) && fk_quality_reason_code(bit)) {
                printf("%s\"%s\"", first ? "" : ",", fk_quality_reason_code(bit));
                first = 0;
            }
        printf("]},\"liveness\":{\"score\":%.4f,\"threshold\":%.4f,\"live\":%s}", l.score, l.threshold,
               l.live ? "true" : "false");
        printf(",\"attributes\":{\"age\":");
        json_num(stdout, "%.1f", a.age);
        printf(",\"gender\":");
        if (isnan(a.male)) printf("null");
        else printf("\"%s\"", a.male > 0.5f ? "male" : "female");
        printf(",\"male\":");
        json_num(stdout, "%.3f", a.male);
        printf(",\"expression\":");
        if (fk_expression_name(a.expression)) printf("\"%s\"", fk_expression_name(a.expression));
        else printf("null");
        printf(",\"expression_score\":");
        json_num(stdout, "%.3f", a.expression_score);
        printf(",\"eyes_open\":");
        if (isnan(a.left_eye_open)) printf("null");
        else printf("[%s,%s]", a.left_eye_open >= 0.5f ? "true" : "false", a.right_eye_open >= 0.5f ? "true" : "false");
        putchar(',');
        print_angles(stdout, a.yaw, a.pitch, a.roll);
        printf("}}");
    }
    printf("]}\n");
    ret = 0;
done:
    face_run_close(&r);
    return ret;
}

/* ---- embed / compare ---- */

/* Template of an image's largest face, or of a .fkt file (recognised by its magic, not its name). */
static int template_of(const char *cmd, fk_engine_t *e, fk_ctx_t *c, const char *path, unsigned flags,
                       fk_template_t *t, fk_face_t *face, double *scale) {
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    if (!f) {
        fprintf(stderr, "facekit %s: cannot open %s\n", cmd, path);
        return FK_EIO;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(magic, "FKT1", 4)) {
        int rc = fk_template_load(path, t);
        if (!rc) rc = fk_engine_check_template(e, t);
        if (rc == FK_EMISMATCH) {
            fk_engine_info_t inf;
            fk_engine_info(e, &inf);
            fprintf(stderr, "facekit %s: %s: %s: made by model %s, this engine uses %s\n", cmd, path,
                    fk_status_str(rc), t->model_id, inf.model_id);
        } else if (rc)
            fprintf(stderr, "facekit %s: %s: %s\n", cmd, path, fk_status_str(rc));
        if (face) face->score = -1;
        return rc;
    }
    fk_image_t *img;
    int ow, oh;
    int rc = load_image(cmd, path, &img, scale, &ow, &oh);
    if (rc) return rc;
    rc = fk_embed_largest(c, img, flags, t, face);
    if (rc) fprintf(stderr, "facekit %s: %s: %s: %s\n", cmd, path, fk_status_str(rc), fk_ctx_errmsg(c));
    fk_image_free(img);
    return rc;
}

/* Templates of N images or .fkt files (see template_of) with one engine, which stays open in *E for the
 * caller (fk_compare needs it). FACE and S (may be NULL) describe the last one. Non-zero after a message. */
static int templates_of(const char *cmd, const char *const *paths, int n, unsigned flags, fk_template_t *t,
                        fk_face_t *face, double *s, fk_engine_t **e) {
    fk_ctx_t *c;
    if (open_pipeline(cmd, FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE, 1, e, &c)) return 1;
    double scale = 1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = template_of(cmd, *e, c, paths[i], flags, &t[i], face, &scale);
    fk_ctx_destroy(c);
    if (s) *s = scale;
    if (rc) {
        fk_engine_close(*e);
        *e = NULL;
        return 1;
    }
    return 0;
}

int fk_cli_embed(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--flip")) flags |= FK_EMBED_FLIP;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else path = NULL, i = argc;
    }
    if (!path || !out) {
        fprintf(stderr, "usage: facekit embed IMG --out face.fkt [--flip]\n");
        return 2;
    }
    fk_engine_t *e;
    fk_template_t t;
    fk_face_t face;
    double s;
    if (templates_of("embed", &path, 1, flags, &t, &face, &s, &e)) return 1;
    fk_engine_close(e);
    int rc = fk_template_save(&t, out);
    if (rc) {
        fprintf(stderr, "facekit embed: cannot write %s: %s\n", out, fk_status_str(rc));
        return 1;
    }
    printf("{\"out\":");
    json_str(stdout, out);
    printf(",\"model_id\":");
    json_str(stdout, t.model_id);
    printf(",\"dim\":%d,\"flip\":%s", t.dim, (t.flags & FK_EMBED_FLIP) ? "true" : "false");
    if (face.score >= 0) {
        printf(",\"face\":{");
        print_face_core(stdout, &face, s, 0);
        putchar('}');
    }
    printf("}\n");
    return 0;
}

int fk_cli_compare(int argc, char **argv) {
    const char *ab[2] = {NULL, NULL};
    double thr = -1;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_double(argv[++i], 0, 1, &thr)) ab[0] = ab[1] = NULL, i = argc;
        } else if (!strcmp(argv[i], "--flip")) flags |= FK_EMBED_FLIP;
        else if (argv[i][0] != '-' && !ab[0]) ab[0] = argv[i];
        else if (argv[i][0] != '-' && !ab[1]) ab[1] = argv[i];
        else ab[0] = ab[1] = NULL, i = argc;
    }
    if (!ab[0] || !ab[1]) {
        fprintf(stderr, "usage: facekit compare A B [--threshold T] [--flip]   (A, B: images or .fkt files)\n");
        return 2;
    }
    fk_engine_t *e;
    fk_template_t t[2];
    if (templates_of("compare", ab, 2, flags, t, NULL, NULL, &e)) return 1;
    fk_match_t m;
    int rc = fk_compare(e, &t[0], &t[1], thr, &m);
    fk_engine_close(e);
    if (rc) {
        fprintf(stderr, "facekit compare: %s\n", fk_status_str(rc));
        return 1;
    }
    printf("{\"score\":%.6f,\"cosine\":%.6f,\"threshold\":%.6f,\"same\":%s}\n", m.score, m.cosine, m.threshold,
           m.same ? "true" : "false");
    return 0;
}

/* ---- bench pipeline ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int fk_cli_bench(int argc, char **argv) {
    const char *path = NULL;
    int threads = 1, runs = 20;
    if (argc < 2 || strcmp(argv[1], "pipeline")) {
        fprintf(stderr, "usage: facekit bench pipeline IMG [--threads N] [--runs N]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 64, &threads)) return 2;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 100000, &runs)) return 2;
        } else if (argv[i][0] != '-' && !path) path = argv[i];
        else return 2;
    }
    if (!path) return 2;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "facekit bench: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = len > 0 && len < (64L << 20) ? malloc((size_t)len) : NULL;
    if (!bytes || fread(bytes, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(bytes);
        fprintf(stderr, "facekit bench: cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    fk_engine_t *e;
    if (open_engine("bench", FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE | FK_ENGINE_LIVENESS,
                    threads, &e)) {
        free(bytes);
        return 1;
    }
    enum { DECODE, DETECT, LANDMARKS, ALIGN, EMBED, LIVENESS, TOTAL, NSTAGE };
    static const char *const names[NSTAGE] = {"decode", "detect", "landmarks", "align", "embed", "liveness", "total"};
    double *t[NSTAGE], *u[NSTAGE];
    for (int k = 0; k < NSTAGE; k++) {
        t[k] = calloc((size_t)runs, sizeof(double));
        u[k] = calloc((size_t)runs, sizeof(double));
    }
    fk_ctx_t *c = NULL;
    int ret = 1, warm = 3, w = 0, h = 0;
    uint8_t pix[112 * 112 * 3];
    fk_image_t aligned = {112, 112, 112 * 3, pix};
    if (fk_ctx_create(e, &c)) goto done;
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    fk_detect_options_t dopt;
    fk_detect_options_default(&dopt);
    dopt.flags = FK_DETECT_NO_LANDMARKS;
    for (int r = -warm; r < runs; r++) {
        double st[NSTAGE], sc[NSTAGE];
        double t0 = now_ms(), c0 = cpu_ms();
        fk_image_t *img;
        char err[256];
        int rc = fk_image_decode(bytes, (size_t)len, &d, &img, err, sizeof err);
        if (rc) {
            fprintf(stderr, "facekit bench: %s: %s %s\n", path, fk_status_str(rc), err);
            goto done;
        }
        double t1 = now_ms(), c1 = cpu_ms();
        fk_face_t *faces;
        size_t n;
        rc = fk_detect(c, img, &dopt, &faces, &n);
        double t2 = now_ms(), c2 = cpu_ms();
        if (!rc && !n) rc = FK_ENOFACE;
        if (rc) {
            fprintf(stderr, "facekit bench: %s: %s %s\n", path, fk_status_str(rc), fk_ctx_errmsg(c));
            fk_image_free(img);
            goto done;
        }
        fk_face_t face = faces[0];
        fk_free(faces);
        rc = fk_face_landmarks(c, img, &face);
        double t3 = now_ms(), c3 = cpu_ms();
        if (!rc) rc = fk_face_align(img, &face, &aligned, NULL);
        double t4 = now_ms(), c4 = cpu_ms();
        fk_template_t tp;
        if (!rc) rc = fk_embed_aligned(c, &aligned, 0, &tp);
        double t5 = now_ms(), c5 = cpu_ms();
        fk_liveness_t lv;
        if (!rc) rc = fk_liveness(c, img, &face, -1, &lv);
        double t6 = now_ms(), c6 = cpu_ms();
        w = img->width;
        h = img->height;
        fk_image_free(img);
        if (rc) {
            fprintf(stderr, "facekit bench: %s: %s\n", fk_status_str(rc), fk_ctx_errmsg(c));
            goto done;
        }
        st[DECODE] = t1 - t0;
        st[DETECT] = t2 - t1;
        st[LANDMARKS] = t3 - t2;
        st[ALIGN] = t4 - t3;
        st[EMBED] = t5 - t4;
        st[LIVENESS] = t6 - t5;
        st[TOTAL] = t6 - t0;
        double cs[NSTAGE + 1] = {c0, c1, c2, c3, c4, c5, c6};
        for (int k = 0; k < TOTAL; k++) sc[k] = cs[k + 1] - cs[k];
        sc[TOTAL] = c6 - c0;
        if (r >= 0)
            for (int k = 0; k < NSTAGE; k++) {
                t[k][r] = st[k];
                u[k][r] = sc[k];
            }
    }
    printf("{\"image\":");
    json_str(stdout, path);
    printf(",\"width\":%d,\"height\":%d,\"threads\":%d,\"runs\":%d", w, h, threads, runs);
    for (int k = 0; k < NSTAGE; k++) printf(",\"%s_ms\":%.3f", names[k], median(t[k], runs));
    for (int k = 0; k < NSTAGE; k++) printf(",\"%s_cpu_ms\":%.3f", names[k], median(u[k], runs));
    printf("}\n");
    ret = 0;
done:
    for (int k = 0; k < NSTAGE; k++) {
        free(t[k]);
        free(u[k]);
    }
    free(bytes);
    fk_ctx_destroy(c);
    fk_engine_close(e);
    return ret;
}
