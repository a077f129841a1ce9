/*
 * lfw.c — the LFW verification protocol around verify.c: parsing the pair lists (View 1 pairsDevTrain /
 * pairsDevTest with an "N" header, View 2 pairs.txt with "10 300"), the list of distinct images a run
 * must embed, fold assignment, pair scoring with the "no face is an error" rule, and the summary
 * (10-fold threshold selection, or a DevTrain threshold applied to DevTest). No model runs here: the
 * `facekit eval lfw` front-end embeds the images and passes a similarity callback.
 */
#include "core/core.h"
#include "eval/datasets.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pair as read, before images are de-duplicated. */
typedef struct {
    const char *n1, *n2; /* point into the parse buffer */
    int i1, i2, same, fold, line;
} raw_pair_t;

/* Splits LINE (NUL-terminated, modified) at tabs/spaces into at most MAX fields; returns the count
 * (MAX + 1 when there are more). */
static int split_fields(char *line, char **f, int max) {
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        if (n == max) return max + 1;
        f[n++] = s;
        while (*s && *s != ' ' && *s != '\t') s++;
        if (*s) *s++ = 0;
    }
    return n;
}

static int parse_int(const char *s, int *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno || x < INT_MIN || x > INT_MAX) return -1;
    *v = (int)x;
    return 0;
}

static int cmp_image(const fk__lfw_image_t *a, const char *name, int index) {
    int c = strcmp(a->name, name);
    if (c) return c;
    return (a->index > index) - (a->index < index);
}

static int sort_image(const void *x, const void *y) {
    const fk__lfw_image_t *b = y;
    return cmp_image(x, b->name, b->index);
}

static size_t find_image(const fk__lfw_pairs_t *p, const char *name, int index) {
    size_t lo = 0, hi = p->n_images;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_image(&p->image[mid], name, index);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return (size_t)-1; /* not reached: every pair's images were inserted */
}

void fk__lfw_pairs_free(fk__lfw_pairs_t *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_images; i++) fk__free(p->image[i].name);
    fk__free(p->image);
    fk__free(p->pair);
    fk__free(p);
}

/* Builds the distinct-image table and the pairs' indices into it. */
static int build(fk__lfw_pairs_t *p, const raw_pair_t *raw, size_t n) {
    p->pair = fk__calloc(n ? n : 1, sizeof *p->pair);
    p->image = fk__calloc(2 * n + 1, sizeof *p->image);
    if (!p->pair || !p->image) return FK_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            fk__lfw_image_t *im = &p->image[p->n_images];
            im->name = fk__strdup(k ? raw[i].n2 : raw[i].n1);
            if (!im->name) return FK_ENOMEM;
            im->index = k ? raw[i].i2 : raw[i].i1;
            p->n_images++;
        }
    }
    qsort(p->image, p->n_images, sizeof *p->image, sort_image);
    size_t u = 0;
    for (size_t i = 0; i < p->n_images; i++) {
        if (u && !cmp_image(&p->image[u - 1], p->image[i].name, p->image[i].index)) {
            fk__free(p->image[i].name);
            continue;
        }
        p->image[u++] = p->image[i];
    }
    p->n_images = u;
    for (size_t i = 0; i < n; i++) {
        fk__lfw_pair_t *q = &p->pair[i];
        q->a = find_image(p, raw[i].n1, raw[i].i1);
        q->b = find_image(p, raw[i].n2, raw[i].i2);
        q->same = raw[i].same;
        q->fold = raw[i].fold;
        q->line = raw[i].line;
    }
    p->n = n;
    return FK_OK;
}

int fk__lfw_pairs_parse(const char *text, size_t len, const char *name, fk__lfw_pairs_t **out, char *err,
                        size_t errsize) {
    if (out) *out = NULL;
    if (!text || !out) return FK_EINVAL;
    if (!name) name = "pairs";
    char *buf = fk__malloc(len + 1);
    if (!buf) return FK_ENOMEM;
    memcpy(buf, text, len);
    buf[len] = 0;
    int rc = FK_OK;
    raw_pair_t *raw = NULL;
    fk__lfw_pairs_t *p = fk__calloc(1, sizeof *p);
    if (!p) {
        fk__free(buf);
        return FK_ENOMEM;
    }
    if (memchr(buf, 0, len)) {
        fk__seterr(err, errsize, "%s: contains a NUL byte (not a text pair list)", name);
        rc = FK_EFORMAT;
        goto done;
    }
    char *save = NULL;
    int lineno = 0;
    size_t n = 0, total = 0;
    int folds = 0, per = 0;
    for (char *line = buf; line; line = save) {
        save = strchr(line, '\n');
        if (save) *save++ = 0;
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        char *f[5];
        int nf = split_fields(line, f, 4);
        if (lineno == 1) {
            int a = 0, b = 0;
            if (nf == 1 && !parse_int(f[0], &a) && a > 0) {
                folds = 1;
                per = a;
            } else if (nf == 2 && !parse_int(f[0], &a) && !parse_int(f[1], &b) && a > 1 && b > 0) {
                folds = a;
                per = b;
            } else {
                fk__seterr(err, errsize,
                           "%s:1: header must be \"N\" (View 1: N same then N different pairs) or "
                           "\"FOLDS N\" (View 2, e.g. \"10 300\")",
                           name);
                rc = FK_EFORMAT;
                goto done;
            }
            if ((size_t)folds * (size_t)per > (size_t)1 << 24) {
                fk__seterr(err, errsize, "%s:1: header promises %d x %d pairs: too many", name, folds, 2 * per);
                rc = FK_ELIMIT;
                goto done;
            }
            total = (size_t)folds * 2 * (size_t)per;
            raw = fk__calloc(total, sizeof *raw);
            if (!raw) {
                rc = FK_ENOMEM;
                goto done;
            }
            continue;
        }
        if (nf == 0) continue; /* blank lines carry nothing */
        if (n == total) {
            fk__seterr(err, errsize, "%s:%d: more pairs than the header's %zu", name, lineno, total);
            rc = FK_EFORMAT;
            goto done;
        }
        size_t k = n % (2 * (size_t)per);
        int same = k < (size_t)per;
        raw_pair_t *r = &raw[n];
        r->same = same;
        r->fold = (int)(n / (2 * (size_t)per));
        r->line = lineno;
        if (same) {
            if (nf != 3 || parse_int(f[1], &r->i1) || parse_int(f[2], &r->i2)) {
                fk__seterr(err, errsize,
                           "%s:%d: expected a same-person pair \"name i j\" (pair %zu of fold %d), got %d field%s",
                           name, lineno, k + 1, r->fold + 1, nf > 4 ? 5 : nf, nf == 1 ? "" : "s");
                rc = FK_EFORMAT;
                goto done;
            }
            r->n1 = r->n2 = f[0];
        } else {
            if (nf != 4 || parse_int(f[1], &r->i1) || parse_int(f[3], &r->i2)) {
                fk__seterr(err, errsize,
                           "%s:%d: expected a different-person pair \"name1 i name2 j\" (pair %zu of fold %d)", name,
                           lineno, k + 1, r->fold + 1);
                rc = FK_EFORMAT;
                goto done;
            }
            r->n1 = f[0];
            r->n2 = f[2];
        }
        if (r->i1 < 1 || r->i2 < 1 || r->i1 > 9999 || r->i2 > 9999) {
            fk__seterr(err, errsize, "%s:%d: image index must be 1..9999", name, lineno);
            rc = FK_EFORMAT;
            goto done;
        }
        n++;
    }
    if (lineno == 0 || folds == 0) {
        fk__seterr(err, errsize, "%s: empty pair list", name);
        rc = FK_EFORMAT;
        goto done;
    }
    if (n != total) {
        fk__seterr(err, errsize, "%s: ends after %zu pairs; the header promises %zu", name, n, total);
        rc = FK_EFORMAT;
        goto done;
    }
    p->n_folds = folds;
    p->per_fold = per;
    rc = build(p, raw, n);
done:
    fk__free(raw);
    if (rc == FK_OK) {
        *out = p;
    } else {
        fk__lfw_pairs_free(p);
    }
    fk__free(buf); /* names were copied by build() */
    return rc;
}

int fk__lfw_pairs_load(const char *path, fk__lfw_pairs_t **out, char *err, size_t errsize) {
    if (out) *out = NULL;
    if (!path || !out) return FK_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fk__seterr(err, errsize, "cannot open %s: %s", path, strerror(errno));
        return FK_EIO;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = fk__malloc(cap);
    int rc = buf ? FK_OK : FK_ENOMEM;
    while (rc == FK_OK) {
        if (len == cap) {
            if (cap >= ((size_t)64 << 20)) {
                fk__seterr(err, errsize, "%s: larger than 64 MiB", path);
                rc = FK_ELIMIT;
                break;
            }
            char *nb = fk__realloc(buf, cap * 2);
            if (!nb) {
                rc = FK_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                fk__seterr(err, errsize, "cannot read %s", path);
                rc = FK_EIO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == FK_OK) rc = fk__lfw_pairs_parse(buf, len, path, out, err, errsize);
    fk__free(buf);
    return rc;
}

int fk__lfw_image_path(const char *root, const fk__lfw_image_t *img, char *buf, size_t size) {
    if (!root || !img || !buf || size == 0) return FK_EINVAL;
    int w = snprintf(buf, size, "%s/%s/%s_%04d.jpg", root, img->name, img->name, img->index);
    if (w < 0 || (size_t)w >= size) return FK_ELIMIT;
    return FK_OK;
}

void fk__lfw_score_pairs(const fk__lfw_pairs_t *p, const unsigned char *has, fk__lfw_similarity_fn sim,
                         void *ctx, double *scores) {
    if (!p || !has || !sim || !scores) return;
    for (size_t i = 0; i < p->n; i++) {
        const fk__lfw_pair_t *q = &p->pair[i];
        scores[i] = has[q->a] && has[q->b] ? sim(ctx, q->a, q->b) : NAN;
    }
}

int fk__lfw_summarize(const fk__lfw_pairs_t *p, const double *scores, const fk__lfw_pairs_t *train,
                      const double *train_scores, fk_eval_summary_t *out) {
    if (!p || !scores || !out || p->n == 0) return FK_EINVAL;
    int *same = fk__malloc(p->n * sizeof *same), *fold = fk__malloc(p->n * sizeof *fold);
    int *tsame = NULL;
    int rc = same && fold ? FK_OK : FK_ENOMEM;
    if (rc == FK_OK && train && train_scores && train->n) {
        tsame = fk__malloc(train->n * sizeof *tsame);
        if (!tsame) rc = FK_ENOMEM;
        else
            for (size_t i = 0; i < train->n; i++) tsame[i] = train->pair[i].same;
    }
    if (rc == FK_OK) {
        for (size_t i = 0; i < p->n; i++) {
            same[i] = p->pair[i].same;
            fold[i] = p->pair[i].fold;
        }
        if (p->n_folds > 1)
            rc = fk_eval_summarize(scores, same, p->n, fold, p->n_folds, NULL, NULL, 0, out);
        else
            rc = fk_eval_summarize(scores, same, p->n, NULL, 0, tsame ? train_scores : NULL, tsame,
                                   tsame ? train->n : 0, out);
    }
    fk__free(same);
    fk__free(fold);
    fk__free(tsame);
    return rc;
}
