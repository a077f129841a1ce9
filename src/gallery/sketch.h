/*
 * sketch.h — the 1-bit first stage of 1:N search over large galleries (sketch.c): every template is
 * rotated by a fixed random orthogonal transform and kept as the signs of its coordinates (B bits, B the
 * padded dimension rounded up to a power of two: 64 bytes for 512-d) plus one correction factor. A query
 * stays fine-grained (4 bits per rotated coordinate), so the estimate of a cosine is the asymmetric
 * "RaBitQ" estimator: unbiased, with a standard deviation of about 0.034 at B = 512 that the search
 * turns into a safety margin (see index.c). A second plane of B bits (|x'_i| above 1 / sqrt(B), about
 * one standard deviation) makes a 2-bit code (levels -3, -1, 1, 3) read only for the templates the first
 * plane could not rule out; its estimate errs by about 0.017.
 */
#ifndef FK_GALLERY_SKETCH_H
#define FK_GALLERY_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define FK__SKETCH_QBITS 4 /* bit planes of the query */

/* bits per template for padded dimension DP: the smallest power of two >= DP, at least 128 */
int fk__sketch_bits(int dp);

/* Y (BITS floats) = R X, with X (DP floats, DP <= BITS) taken as zero beyond DP. R is three rounds of
 * random sign flips and a normalised Walsh-Hadamard transform: orthogonal, fixed, O(B log B). */
void fk__sketch_rotate(const float *x, int dp, int bits, float *y);

/* Codes of unit vector X: CODE (BITS / 8 bytes, bit i of little-endian 64-bit word i / 64 = coordinate
 * i is positive), *INV = 1 / sum |y_i| and *POP = number of set bits; MAG (BITS / 8 bytes): bit i = |y_i| >
 * 1 / sqrt(BITS), *INV2 = 1 / <y, yq> with yq_i = sign(y_i) (1 + 2 mag_i). WORK: BITS floats. */
void fk__sketch_encode(const float *x, int dp, int bits, float *work, uint8_t *code, float *inv, float *pop,
                       uint8_t *mag, float *inv2);

/* A prepared query: PLANES[j * BITS / 64 + w] is bit plane j of the 4-bit rotated query. The estimate of
 * the cosine with a template is  inv * (a * S + b * pop - c),  S = sum_j 2^j popcount(code & plane_j)
 * (what the kernels compute), and SIGMA the standard deviation of its error (estimator plus the query's
 * rounding), an upper bound over cosines. */
typedef struct {
    float a, b, c, sigma;
    float sigma2; /* error of the 2-bit estimate inv2 * (a * S + b * pop - c + a * R[0] + b * R[1]) */
} fk__sketch_query_t;

/* WORK: BITS floats; PLANES: FK__SKETCH_QBITS * BITS / 64 words */
void fk__sketch_query(const float *q, int dp, int bits, float *work, uint64_t *planes, fk__sketch_query_t *sq);

/* OUT[i] = sum_j 2^j popcount(CODES[i] & plane_j), exact, for N codes of BITS / 8 bytes each */
typedef void (*fk__sketch_dots_fn)(const uint64_t *planes, const uint8_t *codes, size_t n, int bits, int32_t *out);

void fk__sketch_dots_ref(const uint64_t *planes, const uint8_t *codes, size_t n, int bits, int32_t *out);

/* Stage 1 over N <= FK__SKETCH_SCAN_MAX templates: num_i = (a * S_i + b * POP[i]) - c (S_i as above, in
 * this order of float operations) and the templates with INV[i] * num_i > T1 are appended in order:
 * SLOT[k] = BASE + i, NUM[k] = num_i. Returns k. SLOT and NUM need room for N + 16. */
#define FK__SKETCH_SCAN_MAX 512
typedef int (*fk__sketch_scan_fn)(const uint64_t *planes, const uint8_t *codes, const float *inv, const float *pop,
                                  size_t n, int bits, const fk__sketch_query_t *sq, float t1, uint32_t base,
                                  float *num, uint32_t *slot);
int fk__sketch_scan_ref(const uint64_t *planes, const uint8_t *codes, const float *inv, const float *pop, size_t n,
                        int bits, const fk__sketch_query_t *sq, float t1, uint32_t base, float *num, uint32_t *slot);
fk__sketch_scan_fn fk__sketch_scan_select(const char *force, const char **level);

/* The second plane's terms for the N templates at rows IDX[i] of CODES / MAGS: with m = mag, bm = code & mag,
 * R[2i] = sum_j 2^j (2 popcount(bm & plane_j) - popcount(m & plane_j)) and R[2i + 1] = 2 popcount(bm) -
 * popcount(m), exact. */
typedef void (*fk__sketch_refine_fn)(const uint64_t *planes, const uint8_t *codes, const uint8_t *mags,
                                     const uint32_t *idx, size_t n, int bits, int32_t *r);

void fk__sketch_refine_ref(const uint64_t *planes, const uint8_t *codes, const uint8_t *mags, const uint32_t *idx,
                           size_t n, int bits, int32_t *r);
fk__sketch_refine_fn fk__sketch_refine_select(const char *force, const char **level);

/* fastest kernel on this CPU: "avx512" (VPOPCNTDQ), "avx2" (nibble lookup with vpshufb) or "c"; FORCE as
 * in scan.h */
fk__sketch_dots_fn fk__sketch_dots_select(const char *force, const char **level);

#endif
