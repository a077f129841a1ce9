/*
 * fk_test.h — the tiny harness every C test uses: asserts that print both values and a closing line
 * "N passed, N failed" that CI reads. Each test file is its own process, registered with ctest.
 */
#ifndef FK_TEST_H
#define FK_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fk_t_pass, fk_t_fail;

#define FK_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (cond) {                                                                      \
            fk_t_pass++;                                                                 \
        } else {                                                                         \
            fk_t_fail++;                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                                \
    } while (0)

#define FK_CHECK_INT(a, b)                                                                         \
    do {                                                                                           \
        long long fk_a_ = (long long)(a), fk_b_ = (long long)(b);                                  \
        if (fk_a_ == fk_b_) {                                                                      \
            fk_t_pass++;                                                                           \
        } else {                                                                                   \
            fk_t_fail++;                                                                           \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, \
                    fk_a_, fk_b_);                                                                 \
        }                                                                                          \
    } while (0)

#define FK_CHECK_NEAR(a, b, tol)                                                                    \
    do {                                                                                            \
        double fk_a_ = (double)(a), fk_b_ = (double)(b);                                            \
        if (fabs(fk_a_ - fk_b_) <= (tol)) {                                                         \
            fk_t_pass++;                                                                            \
        } else {                                                                                    \
            fk_t_fail++;                                                                            \
            fprintf(stderr, "%s:%d: %s ~= %s failed: %.9g vs %.9g (tol %g)\n", __FILE__, __LINE__, \
                    #a, #b, fk_a_, fk_b_, (double)(tol));                                           \
        }                                                                                           \
    } while (0)

#define FK_CHECK_STR(a, b)                                                                           \
    do {                                                                                             \
        const char *fk_a_ = (a), *fk_b_ = (b);                                                       \
        if (fk_a_ && fk_b_ && !strcmp(fk_a_, fk_b_)) {                                               \
            fk_t_pass++;                                                                             \
        } else {                                                                                     \
            fk_t_fail++;                                                                             \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" vs \"%s\"\n", __FILE__, __LINE__, #a, \
                    #b, fk_a_ ? fk_a_ : "(null)", fk_b_ ? fk_b_ : "(null)");                         \
        }                                                                                            \
    } while (0)

/* Test data (../shared/data): a test that needs it fails loudly when it is missing, never skips. */
static inline const char *fk_t_data_dir(void) {
    const char *d = getenv("FK_DATA");
    if (!d || !*d) d = "../shared/data";
    return d;
}

static inline int fk_t_finish(void) {
    printf("%d passed, %d failed\n", fk_t_pass, fk_t_fail);
    return fk_t_fail ? 1 : 0;
}

#endif
