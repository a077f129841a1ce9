/*
 * verify.c — evaluation of verification scores on labelled pairs: best-accuracy thresholds, k-fold
 * accuracy (the LFW protocol), ROC, AUC, EER, TAR at a fixed FAR, and the logistic calibration that maps a
 * raw similarity onto a 0..1 score. Pure arithmetic on arrays: no I/O, no model; the applications (CLI
 * `facekit eval`, the service's evaluation page) feed it scores.
 *
 * Convention everywhere: a pair is declared "same" when score >= threshold. A NaN score means the pipeline
 * produced no score (no face found): such a pair is an error at every threshold, never skipped.
 */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double s;
    int same;
} pair_t;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const pair_t *)a)->s, y = ((const pair_t *)b)->s;
    return (x < y) - (x > y);
}

/* Copies the pairs with a real score, sorted by decreasing score; counts the NaN ones. */
/* The scored pairs sorted by decreasing score in *OUT (*M of them); *POS / *NEG count all same / different
 * pairs, *NAN_POS / *NAN_NEG those of them without a score (left out of *OUT). */
static int sorted_pairs(const double *scores, const int *same, size_t n, pair_t **out, size_t *m, size_t *pos,
                        size_t *neg, size_t *nan_pos, size_t *nan_neg) {
    pair_t *p = fk__malloc((n ? n : 1) * sizeof *p);
    if (!p) return FK_ENOMEM;
    size_t k = 0;
    *pos = *neg = *nan_pos = *nan_neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (same[i]) (*pos)++;
        else (*neg)++;
        if (isnan(scores[i])) {
            if (same[i]) (*nan_pos)++;
            else (*nan_neg)++;
            continue;
        }
        p[k].s = scores[i];
        p[k].same = same[i] != 0;
        k++;
    }
    qsort(p, k, sizeof *p, by_score_desc);
    *out = p;
    *m = k;
    return FK_OK;
}

double fk_eval_accuracy(const double *scores, const int *same, size_t n, double threshold) {
    if (!scores || !same || n == 0) return 0.0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) continue;
        int accept = scores[i] >= threshold;
        ok += (accept == (same[i] != 0));
    }
    return (double)ok / (double)n;
}

int fk_eval_best_threshold(const double *scores, const int *same, size_t n, double *threshold_out,
                           double *accuracy_out) {
    if (!scores || !same || n == 0 || !threshold_out) return FK_EINVAL;
    pair_t *p;
    size_t m, pos, neg, nan_pos, nan_neg;
    int rc = sorted_pairs(scores, same, n, &p, &m, &pos, &neg, &nan_pos, &nan_neg);
    if (rc) return rc;
    size_t neg_total = neg - nan_neg; /* the scored ones */
    /* threshold above every score: all rejected */
    size_t best_ok = neg_total, pos_acc = 0, neg_acc = 0;
    double best_t = m ? nextafter(p[0].s, INFINITY) : 0.0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && p[j].s == p[i].s) {
            pos_acc += p[j].same;
            neg_acc += !p[j].same;
            j++;
        }
        size_t ok = pos_acc + (neg_total - neg_acc);
        if (ok > best_ok) {
            best_ok = ok;
            /* midway to the next lower score: robust to small shifts on unseen data */
            best_t = j < m ? 0.5 * (p[i].s + p[j].s) : p[i].s;
        }
        i = j;
    }
    fk__free(p);
    *threshold_out = best_t;
    if (accuracy_out) *accuracy_out = (double)best_ok / (double)n;
    return FK_OK;
}

int fk_eval_threshold_at_far(const double *scores, const int *same, size_t n, double max_far,
                             double *threshold_out, double *tar_out) {
    if (!scores || !same || n == 0 || !threshold_out) return FK_EINVAL;
    pair_t *p;
    size_t m, pos_total, neg_total, nan_pos, nan_neg;
    int rc = sorted_pairs(scores, same, n, &p, &m, &pos_total, &neg_total, &nan_pos, &nan_neg);
    if (rc) return rc;
    double t = m ? nextafter(p[0].s, INFINITY) : 0.0;
    size_t pos_acc = 0, neg_acc = 0, best_pos = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i, pa = pos_acc, na = neg_acc;
        while (j < m && p[j].s == p[i].s) {
            pa += p[j].same;
            na += !p[j].same;
            j++;
        }
        if (neg_total && (double)na / (double)neg_total > max_far) break;
        pos_acc = pa;
        neg_acc = na;
        t = p[i].s;
        best_pos = pos_acc;
        i = j;
    }
    fk__free(p);
    *threshold_out = t;
    if (tar_out) *tar_out = pos_total ? (double)best_pos / (double)pos_total : 0.0;
    return FK_OK;
}

int fk_eval_roc(const double *scores, const int *same, size_t n, fk_roc_point_t **points, size_t *n_points) {
    if (!scores || !same || !points || !n_points || n == 0) return FK_EINVAL;
    pair_t *p;
    size_t m, pos_total, neg_total, nan_pos, nan_neg;
    int rc = sorted_pairs(scores, same, n, &p, &m, &pos_total, &neg_total, &nan_pos, &nan_neg);
    if (rc) return rc;
    fk_roc_point_t *r = fk__malloc((m + 1) * sizeof *r);
    if (!r) {
        fk__free(p);
        return FK_ENOMEM;
    }
    size_t k = 0, pos_acc = 0, neg_acc = 0;
    r[k++] = (fk_roc_point_t){m ? nextafter(p[0].s, INFINITY) : 0.0, 0.0, 0.0};
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && p[j].s == p[i].s) {
            pos_acc += p[j].same;
            neg_acc += !p[j].same;
            j++;
        }
        r[k].threshold = p[i].s;
        r[k].far = neg_total ? (double)neg_acc / (double)neg_total : 0.0;
        r[k].tar = pos_total ? (double)pos_acc / (double)pos_total : 0.0;
        k++;
        i = j;
    }
    fk__free(p);
    *points = r;
    *n_points = k;
    return FK_OK;
}

/* Mann-Whitney U with average ranks for ties; NaN scores rank lowest. */
static int auc_of(const double *scores, const int *same, size_t n, double *auc) {
    pair_t *p = fk__malloc((n ? n : 1) * sizeof *p);
    if (!p) return FK_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p[i].s = isnan(scores[i]) ? -INFINITY : scores[i];
        p[i].same = same[i] != 0;
    }
    qsort(p, n, sizeof *p, by_score_desc);
    double rank_sum_pos = 0; /* ranks counted from the lowest score = 1 */
    size_t npos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j].s == p[i].s) j++;
        double avg_rank = (double)n - (double)(i + j - 1) / 2.0; /* descending order */
        for (size_t k = i; k < j; k++)
            if (p[k].same) {
                rank_sum_pos += avg_rank;
                npos++;
            }
        i = j;
    }
    fk__free(p);
    size_t nneg = n - npos;
    *auc = (npos && nneg) ? (rank_sum_pos - (double)npos * (double)(npos + 1) / 2.0) / ((double)npos * (double)nneg)
                          : 0.0;
    return FK_OK;
}

static double eer_of(const fk_roc_point_t *r, size_t k) {
    /* walk the ROC until FRR (1 - TAR) drops below FAR; interpolate between the two points */
    for (size_t i = 1; i < k; i++) {
        double frr0 = 1.0 - r[i - 1].tar, frr1 = 1.0 - r[i].tar;
        double d0 = frr0 - r[i - 1].far, d1 = frr1 - r[i].far;
        if (d1 <= 0) {
            double w = d0 - d1 > 0 ? d0 / (d0 - d1) : 0.0;
            return r[i - 1].far + w * (r[i].far - r[i - 1].far);
        }
    }
    return 1.0;
}

int fk_eval_summarize(const double *scores, const int *same, size_t n, const int *fold, int n_folds,
                      const double *train_scores, const int *train_same, size_t n_train, fk_eval_summary_t *out) {
    if (!scores || !same || !out || n == 0 || (fold && n_folds < 2)) return FK_EINVAL;
    *out = (fk_eval_summary_t){0};
    out->pairs = n;
    int rc = FK_OK;
    if (fold) {
        double *ts = fk__malloc(n * sizeof *ts), *vs = fk__malloc(n * sizeof *vs);
        int *tl = fk__malloc(n * sizeof *tl), *vl = fk__malloc(n * sizeof *vl);
        double sum = 0, sum2 = 0, tsum = 0;
        int used = 0;
        if (!ts || !vs || !tl || !vl) rc = FK_ENOMEM;
        for (int k = 0; rc == FK_OK && k < n_folds; k++) {
            size_t nt = 0, nv = 0;
            for (size_t i = 0; i < n; i++) {
                if (fold[i] == k) {
                    vs[nv] = scores[i];
                    vl[nv++] = same[i];
                } else {
                    ts[nt] = scores[i];
                    tl[nt++] = same[i];
                }
            }
            if (nv == 0 || nt == 0) continue;
            double t;
            rc = fk_eval_best_threshold(ts, tl, nt, &t, NULL);
            if (rc) break;
            double acc = fk_eval_accuracy(vs, vl, nv, t);
            sum += acc;
            sum2 += acc * acc;
            tsum += t;
            used++;
        }
        fk__free(ts);
        fk__free(vs);
        fk__free(tl);
        fk__free(vl);
        if (rc) return rc;
        if (used == 0) return FK_EINVAL;
        out->accuracy = sum / used;
        double var = sum2 / used - out->accuracy * out->accuracy; /* population std, as numpy's np.std */
        out->std = var > 0 ? sqrt(var) : 0.0;
        out->threshold = tsum / used;
    } else {
        double t;
        if (train_scores && train_same && n_train)
            rc = fk_eval_best_threshold(train_scores, train_same, n_train, &t, NULL);
        else
            rc = fk_eval_best_threshold(scores, same, n, &t, NULL);
        if (rc) return rc;
        out->threshold = t;
        out->accuracy = fk_eval_accuracy(scores, same, n, t);
    }
    if ((rc = auc_of(scores, same, n, &out->auc))) return rc;
    double t3;
    if ((rc = fk_eval_threshold_at_far(scores, same, n, 1e-3, &t3, &out->tar_at_far_1e_3))) return rc;
    fk_roc_point_t *r;
    size_t k;
    if ((rc = fk_eval_roc(scores, same, n, &r, &k))) return rc;
    out->eer = eer_of(r, k);
    fk__free(r);
    return FK_OK;
}

int fk_eval_fit_logistic(const double *scores, const int *same, size_t n, double *a_out, double *b_out) {
    if (!scores || !same || !a_out || !b_out || n < 2) return FK_EINVAL;
    /* standardise for a well-conditioned Newton iteration, then map back */
    double mean = 0, var = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(scores[i])) {
            mean += scores[i];
            m++;
        }
    if (m < 2) return FK_EINVAL;
    mean /= (double)m;
    for (size_t i = 0; i < n; i++)
        if (!isnan(scores[i])) var += (scores[i] - mean) * (scores[i] - mean);
    double sd = sqrt(var / (double)m);
    if (sd <= 0) return FK_EINVAL;
    double a = 1.0, b = 0.0;
    const double l2 = 1e-6; /* keeps separable data finite */
    for (int it = 0; it < 100; it++) {
        double ga = l2 * a, gb = 0, haa = l2, hab = 0, hbb = 1e-12;
        for (size_t i = 0; i < n; i++) {
            if (isnan(scores[i])) continue;
            double x = (scores[i] - mean) / sd, z = a * x + b;
            double pr = 1.0 / (1.0 + exp(-z)), y = same[i] ? 1.0 : 0.0, w = pr * (1 - pr);
            ga += (pr - y) * x;
            gb += (pr - y);
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0)) break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if (fabs(da) + fabs(db) < 1e-12) break;
    }
    if (!(a > 0) || !isfinite(a) || !isfinite(b)) return FK_EINVAL;
    *a_out = a / sd;
    *b_out = b - a * mean / sd;
    return FK_OK;
}
