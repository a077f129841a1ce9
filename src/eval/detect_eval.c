/*
 * detect_eval.c — face-detection ground truth and the rules that decide whether a detection found an
 * annotated face: dlib's imglab XML boxes (detection/dlib: training.xml, testing.xml), CompreFace's nose
 * points (detection/compreface/nose_points.txt), images known to hold no face (dogs.jpg), and one-to-one
 * greedy matching by IoU, by GT-box centre inside the detection, or by GT point inside the detection.
 * Pure parsing and geometry; `facekit eval detect` runs the detector and reports recall and false
 * positives per image from these.
 */
#include "core/core.h"
#include "eval/datasets.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GT_FILE ((size_t)16 << 20)

static int read_text(const char *path, char **out, size_t *len, char *err, size_t errsize) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fk__seterr(err, errsize, "cannot open %s: %s", path, strerror(errno));
        return FK_EIO;
    }
    char *buf = fk__malloc(MAX_GT_FILE + 1);
    if (!buf) {
        fclose(f);
        return FK_ENOMEM;
    }
    size_t n = fread(buf, 1, MAX_GT_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fk__free(buf);
        fk__seterr(err, errsize, "cannot read %s", path);
        return FK_EIO;
    }
    if (n > MAX_GT_FILE) {
        fk__free(buf);
        fk__seterr(err, errsize, "%s: larger than 16 MiB", path);
        return FK_ELIMIT;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        fk__free(buf);
        fk__seterr(err, errsize, "%s: contains a NUL byte (not a text file)", path);
        return FK_EFORMAT;
    }
    *out = buf;
    *len = n;
    return FK_OK;
}

void fk__det_gt_free(fk__det_gt_t *gt) {
    if (!gt) return;
    for (size_t i = 0; i < gt->n_images; i++) {
        fk__free(gt->image[i].file);
        fk__free(gt->image[i].face);
    }
    fk__free(gt->image);
    fk__free(gt);
}

static int ensure_gt(fk__det_gt_t **gt, int points) {
    if (!*gt) {
        *gt = fk__calloc(1, sizeof **gt);
        if (!*gt) return FK_ENOMEM;
        (*gt)->points = points;
    }
    return FK_OK;
}

/* Appends an empty image named FILE (LEN bytes) and returns it through *IMG. */
static int push_image(fk__det_gt_t *gt, const char *file, size_t len, fk__det_gt_image_t **img) {
    fk__det_gt_image_t *a = fk__realloc(gt->image, (gt->n_images + 1) * sizeof *a);
    if (!a) return FK_ENOMEM;
    gt->image = a;
    fk__det_gt_image_t *im = &a[gt->n_images];
    memset(im, 0, sizeof *im);
    im->file = fk__malloc(len + 1);
    if (!im->file) return FK_ENOMEM;
    memcpy(im->file, file, len);
    im->file[len] = 0;
    gt->n_images++;
    *img = im;
    return FK_OK;
}

static int push_face(fk__det_gt_image_t *im, fk__det_gt_face_t f) {
    fk__det_gt_face_t *a = fk__realloc(im->face, (im->n_faces + 1) * sizeof *a);
    if (!a) return FK_ENOMEM;
    im->face = a;
    a[im->n_faces++] = f;
    return FK_OK;
}

int fk__det_gt_add_negative(fk__det_gt_t **gt, const char *file) {
    if (!gt || !file) return FK_EINVAL;
    int rc = ensure_gt(gt, 0);
    if (rc) return rc;
    fk__det_gt_image_t *im;
    return push_image(*gt, file, strlen(file), &im);
}

/* ---- dlib imglab XML -------------------------------------------------------------------------------- */

static int line_of(const char *buf, const char *at) {
    int l = 1;
    for (const char *s = buf; s < at; s++) l += *s == '\n';
    return l;
}

/* Finds attribute NAME in the tag text [S, E) and returns its value's start and length. */
static const char *attr(const char *s, const char *e, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (const char *p = s; p + nl < e; p++) {
        if (strncmp(p, name, nl) != 0) continue;
        if (p > s && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n' && p[-1] != '\r') continue;
        const char *q = p + nl;
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        if (q >= e || *q != '=') continue;
        q++;
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        if (q >= e || (*q != '\'' && *q != '"')) return NULL;
        char quote = *q++;
        const char *v = q;
        while (q < e && *q != quote) q++;
        if (q >= e) return NULL;
        *len = (size_t)(q - v);
        return v;
    }
    return NULL;
}

static int attr_num(const char *s, const char *e, const char *name, double *v) {
    size_t len;
    const char *a = attr(s, e, name, &len);
    if (!a || len == 0 || len > 31) return -1;
    char tmp[32];
    memcpy(tmp, a, len);
    tmp[len] = 0;
    char *end;
    *v = strtod(tmp, &end);
    if (*end || !isfinite(*v)) return -1;
    return 0;
}

int fk__det_gt_load_dlib(const char *path, fk__det_gt_t **gt, char *err, size_t errsize) {
    if (!path || !gt) return FK_EINVAL;
    char *buf;
    size_t len;
    int rc = read_text(path, &buf, &len, err, errsize);
    if (rc) return rc;
    int created = *gt == NULL;
    if ((rc = ensure_gt(gt, 0))) goto done;
    if ((*gt)->points) {
        fk__seterr(err, errsize, "%s: cannot mix boxes with point ground truth", path);
        rc = FK_EINVAL;
        goto done;
    }
    fk__det_gt_image_t *cur = NULL;
    int saw_images = 0;
    for (const char *p = buf; (p = strchr(p, '<')) != NULL;) {
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p + 4, "-->");
            if (!e) {
                fk__seterr(err, errsize, "%s:%d: unterminated comment", path, line_of(buf, p));
                rc = FK_EFORMAT;
                goto done;
            }
            p = e + 3;
            continue;
        }
        const char *e = strchr(p, '>');
        if (!e) {
            fk__seterr(err, errsize, "%s:%d: unterminated tag", path, line_of(buf, p));
            rc = FK_EFORMAT;
            goto done;
        }
        const char *t = p + 1;
        size_t tl = strcspn(t, " \t\r\n/>");
        if (tl == 6 && !strncmp(t, "images", 6)) {
            saw_images = 1;
        } else if (tl == 5 && !strncmp(t, "image", 5)) {
            size_t fl;
            const char *file = attr(t + tl, e, "file", &fl);
            if (!file || fl == 0) {
                fk__seterr(err, errsize, "%s:%d: <image> without file=", path, line_of(buf, p));
                rc = FK_EFORMAT;
                goto done;
            }
            if ((rc = push_image(*gt, file, fl, &cur))) goto done;
            if (e[-1] == '/') cur = NULL; /* <image file='x'/>: no boxes */
        } else if (t[0] == '/' && !strncmp(t + 1, "image", 5) && (t[6] == '>' || t[6] == ' ')) {
            cur = NULL;
        } else if (tl == 3 && !strncmp(t, "box", 3)) {
            double top, left, w, h, ign = 0;
            if (!cur) {
                fk__seterr(err, errsize, "%s:%d: <box> outside an <image>", path, line_of(buf, p));
                rc = FK_EFORMAT;
                goto done;
            }
            if (attr_num(t + tl, e, "top", &top) || attr_num(t + tl, e, "left", &left) ||
                attr_num(t + tl, e, "width", &w) || attr_num(t + tl, e, "height", &h) || w < 0 || h < 0) {
                fk__seterr(err, errsize, "%s:%d: <box> needs numeric top, left, width, height (>= 0)", path,
                           line_of(buf, p));
                rc = FK_EFORMAT;
                goto done;
            }
            size_t il;
            if (attr(t + tl, e, "ignore", &il)) (void)attr_num(t + tl, e, "ignore", &ign);
            fk__det_gt_face_t f = {(float)left, (float)top, (float)w, (float)h, ign != 0};
            if ((rc = push_face(cur, f))) goto done;
        }
        p = e + 1;
    }
    if (!saw_images) {
        fk__seterr(err, errsize, "%s: no <images> element (not a dlib imglab file)", path);
        rc = FK_EFORMAT;
    }
done:
    fk__free(buf);
    if (rc && created) {
        fk__det_gt_free(*gt);
        *gt = NULL;
    }
    return rc;
}

/* ---- CompreFace nose points ------------------------------------------------------------------------- */

int fk__det_gt_load_points(const char *path, fk__det_gt_t **gt, char *err, size_t errsize) {
    if (!path || !gt) return FK_EINVAL;
    char *buf;
    size_t len;
    int rc = read_text(path, &buf, &len, err, errsize);
    if (rc) return rc;
    int created = *gt == NULL;
    if ((rc = ensure_gt(gt, 1))) goto done;
    if (!(*gt)->points) {
        fk__seterr(err, errsize, "%s: cannot mix points with box ground truth", path);
        rc = FK_EINVAL;
        goto done;
    }
    int lineno = 0;
    char *next;
    for (char *line = buf; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        if (line[0] == '#' || strspn(line, " \t") == l) continue;
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab1) {
            fk__seterr(err, errsize, "%s:%d: expected \"file<TAB>count<TAB>x,y;...\"", path, lineno);
            rc = FK_EFORMAT;
            goto done;
        }
        *tab1 = 0;
        if (tab2) *tab2 = 0;
        char *end;
        long count = strtol(tab1 + 1, &end, 10);
        if (end == tab1 + 1 || *end || count < 0 || count > 100000) {
            fk__seterr(err, errsize, "%s:%d: bad face count", path, lineno);
            rc = FK_EFORMAT;
            goto done;
        }
        fk__det_gt_image_t *im;
        if ((rc = push_image(*gt, line, strlen(line), &im))) goto done;
        const char *s = tab2 ? tab2 + 1 : "";
        while (*s == ' ') s++;
        while (*s) {
            double x, y;
            int used = 0;
            if (sscanf(s, "%lf,%lf%n", &x, &y, &used) != 2 || !isfinite(x) || !isfinite(y)) {
                fk__seterr(err, errsize, "%s:%d: bad point \"%.20s\" (expected x,y)", path, lineno, s);
                rc = FK_EFORMAT;
                goto done;
            }
            fk__det_gt_face_t f = {(float)x, (float)y, 0, 0, 0};
            if ((rc = push_face(im, f))) goto done;
            s += used;
            while (*s == ' ') s++;
            if (*s == ';') s++;
            while (*s == ' ') s++;
        }
        if ((long)im->n_faces != count) {
            fk__seterr(err, errsize, "%s:%d: count says %ld faces, %zu points given", path, lineno, count,
                       im->n_faces);
            rc = FK_EFORMAT;
            goto done;
        }
    }
done:
    fk__free(buf);
    if (rc && created) {
        fk__det_gt_free(*gt);
        *gt = NULL;
    }
    return rc;
}

/* ---- matching ----------------------------------------------------------------------------------------- */

float fk__det_iou(const fk_rectf_t *a, const fk_rectf_t *b) {
    if (!a || !b || a->w <= 0 || a->h <= 0 || b->w <= 0 || b->h <= 0) return 0.0f;
    float x0 = fmaxf(a->x, b->x), y0 = fmaxf(a->y, b->y);
    float x1 = fminf(a->x + a->w, b->x + b->w), y1 = fminf(a->y + a->h, b->y + b->h);
    if (x1 <= x0 || y1 <= y0) return 0.0f;
    float inter = (x1 - x0) * (y1 - y0);
    return inter / (a->w * a->h + b->w * b->h - inter);
}

static int inside(const fk_rectf_t *r, float x, float y) {
    return x >= r->x && x <= r->x + r->w && y >= r->y && y <= r->y + r->h;
}

typedef struct {
    float s;
    size_t i;
} order_t;

static int by_score_desc(const void *a, const void *b) {
    const order_t *x = a, *y = b;
    if (x->s != y->s) return (x->s < y->s) - (x->s > y->s);
    return (x->i > y->i) - (x->i < y->i);
}

/* How well detection D fits GT face F under RULE: < 0 means no match; larger is better. */
static double fit(const fk_rectf_t *d, const fk__det_gt_face_t *f, int points, fk__det_match_rule_t rule,
                  float min_iou) {
    float cx = points ? f->x : f->x + 0.5f * f->w, cy = points ? f->y : f->y + 0.5f * f->h;
    if (rule == FK__DET_MATCH_IOU && !points) {
        fk_rectf_t g = {f->x, f->y, f->w, f->h};
        float iou = fk__det_iou(d, &g);
        return iou >= min_iou ? iou : -1.0;
    }
    if (!inside(d, cx, cy)) return -1.0;
    /* the nearer the annotated centre is to the box centre, the better */
    float dx = cx - (d->x + 0.5f * d->w), dy = cy - (d->y + 0.5f * d->h);
    return 1.0 / (1.0 + sqrt((double)dx * dx + (double)dy * dy));
}

int fk__det_match(const fk__det_gt_image_t *img, int points, const fk_rectf_t *det, const float *score,
                  size_t n_det, fk__det_match_rule_t rule, float min_iou, fk__det_match_result_t *res,
                  long *matched_gt) {
    if (!img || !res || (n_det && !det)) return FK_EINVAL;
    if (points && rule == FK__DET_MATCH_IOU) return FK_EINVAL; /* a point has no area */
    *res = (fk__det_match_result_t){0};
    order_t *ord = fk__malloc((n_det ? n_det : 1) * sizeof *ord);
    long *m = fk__malloc((img->n_faces ? img->n_faces : 1) * sizeof *m);
    if (!ord || !m) {
        fk__free(ord);
        fk__free(m);
        return FK_ENOMEM;
    }
    for (size_t i = 0; i < n_det; i++) ord[i] = (order_t){score ? score[i] : -(float)i, i};
    qsort(ord, n_det, sizeof *ord, by_score_desc);
    for (size_t g = 0; g < img->n_faces; g++) m[g] = -1;
    for (size_t k = 0; k < n_det; k++) {
        const fk_rectf_t *d = &det[ord[k].i];
        double best = -1.0;
        size_t bg = 0;
        int on_ignored = 0;
        for (size_t g = 0; g < img->n_faces; g++) {
            double q = fit(d, &img->face[g], points, rule, min_iou);
            if (q < 0) continue;
            if (img->face[g].ignore) {
                on_ignored = 1;
                continue;
            }
            if (m[g] >= 0) continue;
            if (q > best) {
                best = q;
                bg = g;
            }
        }
        if (best >= 0) m[bg] = (long)ord[k].i;
        else if (!on_ignored) res->false_pos++;
    }
    for (size_t g = 0; g < img->n_faces; g++) {
        if (img->face[g].ignore) continue;
        res->gt++;
        res->hits += m[g] >= 0;
        if (matched_gt) matched_gt[g] = m[g];
    }
    if (matched_gt)
        for (size_t g = 0; g < img->n_faces; g++)
            if (img->face[g].ignore) matched_gt[g] = -1;
    fk__free(ord);
    fk__free(m);
    return FK_OK;
}
