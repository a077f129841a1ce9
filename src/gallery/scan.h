/*
 * scan.h — internal kernels of the gallery index (scan.c): fp32 dot products and the int8 coarse scan, each
 * with a plain C reference (`_ref`) beside the AVX2 and AVX-512 versions chosen at run time. Vectors are
 * padded with zeros to a multiple of 128 values (FK__SCAN_PAD) so that no kernel needs a tail loop.
 */
#ifndef FK_GALLERY_SCAN_H
#define FK_GALLERY_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define FK__SCAN_PAD 128

/* OUT[i] = dot(Q, X + i * DIM) for i < N, fp32; DIM a multiple of FK__SCAN_PAD */
typedef void (*fk__dots_f32_fn)(const float *q, const float *x, size_t n, int dim, float *out);
/* OUT[i] = sum_j Q8[j] * C8[i * DIM + j] exactly (int32), for int8 codes. QU8 = Q8 + 128 (as unsigned)
 * and CSUM[i] = sum_j C8[i * DIM + j] let the VNNI kernel use its unsigned x signed instruction. */
typedef void (*fk__dots_i8_fn)(const int8_t *q8, const uint8_t *qu8, const int8_t *c8, const int32_t *csum,
                               size_t n, int dim, int32_t *out);

/* 4-bit codes: DIM / 2 bytes per vector; in each 64-byte group, byte b holds value (b) of that group's 128
 * values in its low nibble and value (64 + b) in its high nibble; nibbles are unsigned 0..15.
 * OUT[i] = sum_j Q8[j] * nibble_j (the caller subtracts 8 * sum(Q8) for codes centred on 8). */
typedef void (*fk__dots_i4_fn)(const int8_t *q8, const uint8_t *c4, size_t n, int dim, int32_t *out);

void fk__dots_f32_ref(const float *q, const float *x, size_t n, int dim, float *out);
void fk__dots_i8_ref(const int8_t *q8, const uint8_t *qu8, const int8_t *c8, const int32_t *csum, size_t n,
                     int dim, int32_t *out);

void fk__dots_i4_ref(const int8_t *q8, const uint8_t *c4, size_t n, int dim, int32_t *out);

/* The fastest kernels this CPU runs; LEVEL (may be NULL) receives "avx512", "avx2" or "c". FORCE: NULL, or
 * "c"/"avx2"/"avx512" to pick one (tests; falls back to "c" when the CPU lacks it). */
fk__dots_f32_fn fk__dots_f32_select(const char *force, const char **level);
fk__dots_i8_fn fk__dots_i8_select(const char *force, const char **level);
fk__dots_i4_fn fk__dots_i4_select(const char *force, const char **level);

/* index.c internals for tests and the bench: the size from which the 1-bit sketch pass runs (0 = the
 * default), the sketch kernel level, the bytes one template takes in each stage (fp32, coarse code + scale,
 * sketch planes + three factors, ids + hash; returns the sum), and how many coarse scores, 2-bit estimates
 * (*REFINED) and fp32 scores (*EXACT) this thread's last search computed */
struct fk_index;
void fk__index_set_sketch_min(struct fk_index *ix, size_t n);
const char *fk__index_sketch_kernels(const struct fk_index *ix);
size_t fk__index_bytes_per_template(const struct fk_index *ix, size_t *fp32, size_t *coarse, size_t *sketch,
                                    size_t *ids);
size_t fk__index_last_evals(size_t *refined, size_t *exact);

#endif
