/*
 * test_eval.c — verification metrics on small hand-checked score sets and on a synthetic experiment whose
 * answers are known (separable data, ties, NaN "no face" pairs counted as errors).
 */
#include "facekit.h"
#include "fk_test.h"

#include <math.h>

int main(void) {
    /* 4 positives above 4 negatives: perfectly separable */
    double s[] = {0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1};
    int y[] = {1, 1, 1, 1, 0, 0, 0, 0};
    double t, acc;
    FK_CHECK_INT(fk_eval_best_threshold(s, y, 8, &t, &acc), FK_OK);
    FK_CHECK_NEAR(acc, 1.0, 1e-12);
    FK_CHECK_NEAR(t, 0.5, 1e-12);
    FK_CHECK_NEAR(fk_eval_accuracy(s, y, 8, 0.65), 7.0 / 8.0, 1e-12);

    fk_eval_summary_t sum;
    FK_CHECK_INT(fk_eval_summarize(s, y, 8, NULL, 0, NULL, NULL, 0, &sum), FK_OK);
    FK_CHECK_NEAR(sum.auc, 1.0, 1e-12);
    FK_CHECK_NEAR(sum.eer, 0.0, 1e-12);
    FK_CHECK_NEAR(sum.tar_at_far_1e_3, 1.0, 1e-12);

    /* one swapped pair: AUC = 15/16; best accuracy 7/8 */
    double s2[] = {0.9, 0.8, 0.7, 0.35, 0.4, 0.3, 0.2, 0.1};
    FK_CHECK_INT(fk_eval_summarize(s2, y, 8, NULL, 0, NULL, NULL, 0, &sum), FK_OK);
    FK_CHECK_NEAR(sum.auc, 15.0 / 16.0, 1e-12);
    FK_CHECK_NEAR(sum.accuracy, 7.0 / 8.0, 1e-12);
    /* FAR <= 1e-3 means no negative accepted: threshold above 0.4 accepts 3 of 4 positives */
    FK_CHECK_NEAR(sum.tar_at_far_1e_3, 0.75, 1e-12);
    FK_CHECK_NEAR(sum.eer, 0.25, 1e-12);

    /* ties: AUC counts a tie as one half */
    double s3[] = {0.5, 0.5};
    int y3[] = {1, 0};
    FK_CHECK_INT(fk_eval_summarize(s3, y3, 2, NULL, 0, NULL, NULL, 0, &sum), FK_OK);
    FK_CHECK_NEAR(sum.auc, 0.5, 1e-12);

    /* NaN (no face) is an error at every threshold and is never skipped */
    double s4[] = {0.9, NAN, 0.1, 0.2};
    int y4[] = {1, 1, 0, 0};
    FK_CHECK_INT(fk_eval_best_threshold(s4, y4, 4, &t, &acc), FK_OK);
    FK_CHECK_NEAR(acc, 0.75, 1e-12);
    FK_CHECK_NEAR(fk_eval_accuracy(s4, y4, 4, -1e9), 0.25, 1e-12);

    /* threshold from a training set applied to a test set */
    double tr[] = {0.9, 0.8, 0.2, 0.1};
    int ytr[] = {1, 1, 0, 0};
    double te[] = {0.6, 0.45, 0.55, 0.1};
    int yte[] = {1, 1, 0, 0};
    FK_CHECK_INT(fk_eval_summarize(te, yte, 4, NULL, 0, tr, ytr, 4, &sum), FK_OK);
    FK_CHECK_NEAR(sum.threshold, 0.5, 1e-12);
    FK_CHECK_NEAR(sum.accuracy, 0.5, 1e-12);

    /* 10 folds of a synthetic experiment: N(+1,1) positives vs N(-1,1) negatives; Bayes accuracy 84.1% */
    enum { N = 6000 };
    static double ss[N];
    static int yy[N], ff[N];
    unsigned long long rng = 42;
    for (int i = 0; i < N; i++) {
        double u1, u2;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        u1 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        u2 = ((rng >> 11) + 0.5) / 9007199254740992.0;
        double g = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        yy[i] = i % 2;
        ss[i] = g + (yy[i] ? 1.0 : -1.0);
        ff[i] = (i / 2) % 10; /* both classes in every fold */
    }
    FK_CHECK_INT(fk_eval_summarize(ss, yy, N, ff, 10, NULL, NULL, 0, &sum), FK_OK);
    FK_CHECK_NEAR(sum.accuracy, 0.8413, 0.02);
    FK_CHECK_NEAR(sum.threshold, 0.0, 0.15);
    FK_CHECK_NEAR(sum.auc, 0.9214, 0.02); /* Phi(2/sqrt(2)) */
    FK_CHECK(sum.std > 0 && sum.std < 0.05);
    FK_CHECK_NEAR(sum.eer, 1 - 0.8413, 0.02);

    /* logistic calibration is increasing and puts 0.5 near the class boundary */
    double a, b;
    FK_CHECK_INT(fk_eval_fit_logistic(ss, yy, N, &a, &b), FK_OK);
    FK_CHECK(a > 0);
    FK_CHECK_NEAR(-b / a, 0.0, 0.15);
    FK_CHECK_NEAR(a, 2.0, 0.3); /* log-odds of two unit Gaussians at +-1: 2x */

    fk_roc_point_t *roc;
    size_t nroc;
    FK_CHECK_INT(fk_eval_roc(s2, y, 8, &roc, &nroc), FK_OK);
    FK_CHECK_INT(nroc, 9);
    FK_CHECK_NEAR(roc[nroc - 1].far, 1.0, 1e-12);
    FK_CHECK_NEAR(roc[nroc - 1].tar, 1.0, 1e-12);
    fk_free(roc);

    FK_CHECK_INT(fk_eval_best_threshold(NULL, y, 8, &t, &acc), FK_EINVAL);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
