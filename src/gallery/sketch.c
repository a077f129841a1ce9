/*
 * sketch.c — 1-bit sketches of templates for the first pass of 1:N search over large galleries
 * (src/gallery, used by index.c). A fixed random rotation (sign flips + Walsh-Hadamard, three rounds)
 * spreads every template evenly over B coordinates; the code keeps their signs (B / 8 bytes, a quarter of
 * the 4-bit code and 1/32 of the fp32 template), so a scan of a million templates streams 64 MB instead of
 * 256. The query is rotated the same way and kept at 4 bits per coordinate as four bit planes; the kernels
 * compute sum_j 2^j popcount(code & plane_j) with AVX-512 VPOPCNTDQ, AVX2 (nibble lookup with vpshufb) or
 * plain C, picked at run time like scan.c. The estimator is RaBitQ's (Gao & Long, SIGMOD 2024): with x' the
 * rotated template and xb = sign(x') / sqrt(B), <q, x> ~ <q', xb> / <x', xb>, unbiased, with an error whose
 * standard deviation is about sqrt((1 - c^2) / (c^2 (B - 1))), c = <x', xb> ~ sqrt(2 / pi): 0.034 at B = 512.
 */
#include "gallery/sketch.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FK_X86 1
#endif

int fk__sketch_bits(int dp) {
    int b = 128;
    while (b < dp) b *= 2;
    return b;
}

/* sign of coordinate I in round R: a fixed hash, so every index and process agrees without a table */
static float rsign(int r, int i) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u + (uint32_t)r * 0x85EBCA77u + 0x27d4eb2fu;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return (h & 1) ? -1.0f : 1.0f;
}

/* in-place Walsh-Hadamard transform of N (a power of two) values, scaled by 1 / sqrt(N): orthogonal */
static void fwht(float *y, int n) {
    for (int len = 1; len < n; len <<= 1)
        for (int i = 0; i < n; i += 2 * len)
            for (int j = i; j < i + len; j++) {
                float a = y[j], b = y[j + len];
                y[j] = a + b;
                y[j + len] = a - b;
            }
    float s = 1.0f / sqrtf((float)n);
    for (int i = 0; i < n; i++) y[i] *= s;
}

void fk__sketch_rotate(const float *x, int dp, int bits, float *y) {
    for (int i = 0; i < bits; i++) y[i] = i < dp ? x[i] : 0.0f;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < bits; i++) y[i] *= rsign(r, i);
        fwht(y, bits);
    }
}

/* The magnitude threshold: for Gaussian coordinates of standard deviation s, levels s (1, 3) with the
 * threshold at 1.0 s keep the most of the vector (cosine 0.939 with it; 0.9 s or 1.1 s: 0.938) */
#define MAG_T 1.0

void fk__sketch_encode(const float *x, int dp, int bits, float *work, uint8_t *code, float *inv, float *pop,
                       uint8_t *mag, float *inv2) {
    fk__sketch_rotate(x, dp, bits, work);
    double l1 = 0, l2 = 0, t = MAG_T / sqrt((double)bits);
    int pc = 0;
    memset(code, 0, (size_t)bits / 8);
    memset(mag, 0, (size_t)bits / 8);
    uint64_t *w = (uint64_t *)code, *m = (uint64_t *)mag; /* 8-byte aligned: BITS / 8 is a multiple of 16 */
    for (int i = 0; i < bits; i++) {
        double a = fabs((double)work[i]);
        l1 += a;
        if (work[i] > 0) {
            w[i / 64] |= (uint64_t)1 << (i % 64);
            pc++;
        }
        if (a > t) {
            m[i / 64] |= (uint64_t)1 << (i % 64);
            l2 += 3 * a;
        } else {
            l2 += a;
        }
    }
    *inv = l1 > 0 ? (float)(1.0 / l1) : 0.0f;
    *pop = (float)pc;
    *inv2 = l2 > 0 ? (float)(1.0 / l2) : 0.0f;
}

void fk__sketch_query(const float *q, int dp, int bits, float *work, uint64_t *planes, fk__sketch_query_t *sq) {
    fk__sketch_rotate(q, dp, bits, work);
    float lo = work[0], hi = work[0];
    for (int i = 1; i < bits; i++) {
        lo = fminf(lo, work[i]);
        hi = fmaxf(hi, work[i]);
    }
    const int levels = (1 << FK__SKETCH_QBITS) - 1;
    float step = hi > lo ? (hi - lo) / (float)levels : 1.0f;
    int wpp = bits / 64;
    memset(planes, 0, (size_t)FK__SKETCH_QBITS * wpp * sizeof(uint64_t));
    long usum = 0;
    for (int i = 0; i < bits; i++) {
        long u = lrintf((work[i] - lo) / step);
        u = u < 0 ? 0 : u > levels ? levels : u;
        usum += u;
        for (int j = 0; j < FK__SKETCH_QBITS; j++)
            if (u >> j & 1) planes[j * wpp + i / 64] |= (uint64_t)1 << (i % 64);
    }
    /* sum_{bit set} q~_i = lo * pop + step * S and sum_i q~_i = bits * lo + step * usum, so
     * <q~, sign(x')> = 2 (lo pop + step S) - (bits lo + step usum); dividing by sum |x'_i| gives
     * <q~, xb> / <x', xb> */
    sq->a = 2.0f * step;
    sq->b = 2.0f * lo;
    sq->c = (float)((double)bits * lo + (double)step * (double)usum);
    /* c = E <x', xb> for a rotated unit vector: sqrt(2 / pi); the query's rounding adds a uniform error of
     * variance step^2 / 12 per coordinate, i.e. step^2 / 12 on <q~, xb>, divided by c^2 in the estimate */
    const double c2 = 2.0 / 3.141592653589793;
    double var = (1.0 - c2) / (c2 * (bits - 1)) + (double)step * step / 12.0 / c2;
    sq->sigma = (float)sqrt(var);
    /* the 2-bit code: cosine c2 = 0.939 with the rotated template (MAG_T); the rounding error is weighted by
     * yq / <y, yq>, norm 1 / c2 */
    const double cc = 0.9388 * 0.9388;
    var = (1.0 - cc) / (cc * (bits - 1)) + (double)step * step / 12.0 / cc;
    sq->sigma2 = (float)sqrt(var);
}

/* ---- kernels ---- */

void fk__sketch_dots_ref(const uint64_t *planes, const uint8_t *codes, size_t n, int bits, int32_t *out) {
    int wpp = bits / 64;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *c = (const uint64_t *)(codes + i * (size_t)(bits / 8));
        int32_t s = 0;
        for (int j = 0; j < FK__SKETCH_QBITS; j++) {
            int32_t t = 0;
            for (int w = 0; w < wpp; w++) t += __builtin_popcountll(c[w] & planes[j * wpp + w]);
            s += t << j;
        }
        out[i] = s;
    }
}

void fk__sketch_refine_ref(const uint64_t *planes, const uint8_t *codes, const uint8_t *mags, const uint32_t *idx,
                           size_t n, int bits, int32_t *r) {
    int wpp = bits / 64;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *c = (const uint64_t *)(codes + (size_t)idx[i] * (size_t)(bits / 8));
        const uint64_t *m = (const uint64_t *)(mags + (size_t)idx[i] * (size_t)(bits / 8));
        int32_t s = 0, p = 0;
        for (int w = 0; w < wpp; w++) p += 2 * __builtin_popcountll(c[w] & m[w]) - __builtin_popcountll(m[w]);
        for (int j = 0; j < FK__SKETCH_QBITS; j++) {
            int32_t t = 0;
            for (int w = 0; w < wpp; w++) {
                uint64_t q = planes[j * wpp + w];
                t += 2 * __builtin_popcountll(c[w] & m[w] & q) - __builtin_popcountll(m[w] & q);
            }
            s += t * (1 << j);
        }
        r[2 * i] = s;
        r[2 * i + 1] = p;
    }
}

/* the threshold step after any dots kernel. Not inlined into the AVX-512 function: there a compiler may
 * fuse a * S + b * pop into an FMA (clang does), and every level must compute the same floats */
__attribute__((noinline)) static int scan_tail(const int32_t *S, const float *inv, const float *pop, size_t n,
                                               const fk__sketch_query_t *sq, float t1, uint32_t base, float *num,
                                               uint32_t *slot) {
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        float v = sq->a * (float)S[i] + sq->b * pop[i] - sq->c;
        num[k] = v;
        slot[k] = base + (uint32_t)i;
        k += inv[i] * v > t1;
    }
    return k;
}

int fk__sketch_scan_ref(const uint64_t *planes, const uint8_t *codes, const float *inv, const float *pop, size_t n,
                        int bits, const fk__sketch_query_t *sq, float t1, uint32_t base, float *num, uint32_t *slot) {
    int32_t S[FK__SKETCH_SCAN_MAX];
    fk__sketch_dots_ref(planes, codes, n, bits, S);
    return scan_tail(S, inv, pop, n, sq, t1, base, num, slot);
}

#ifdef FK_X86

/* AVX-512 for 512-bit codes (other sizes: the reference; this runs on a few percent of the templates) */
__attribute__((target("avx512f,avx512vpopcntdq"))) static void refine_avx512(const uint64_t *planes,
                                                                              const uint8_t *codes,
                                                                              const uint8_t *mags,
                                                                              const uint32_t *idx, size_t n,
                                                                              int bits, int32_t *r) {
    if (bits != 512) {
        fk__sketch_refine_ref(planes, codes, mags, idx, n, bits, r);
        return;
    }
    const __m512i p0 = _mm512_loadu_si512(planes), p1 = _mm512_loadu_si512(planes + 8),
                  p2 = _mm512_loadu_si512(planes + 16), p3 = _mm512_loadu_si512(planes + 24);
    for (size_t i = 0; i < n; i++) {
        __m512i c = _mm512_loadu_si512(codes + (size_t)idx[i] * 64), m = _mm512_loadu_si512(mags + (size_t)idx[i] * 64);
        __m512i bm = _mm512_and_si512(c, m);
#define T_(p) _mm512_sub_epi64(_mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(bm, p)), 1), \
                               _mm512_popcnt_epi64(_mm512_and_si512(m, p)))
        __m512i s = T_(p3);
        s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), T_(p2));
        s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), T_(p1));
        s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), T_(p0));
#undef T_
        __m512i q = _mm512_sub_epi64(_mm512_slli_epi64(_mm512_popcnt_epi64(bm), 1), _mm512_popcnt_epi64(m));
        r[2 * i] = (int32_t)_mm512_reduce_add_epi64(s);
        r[2 * i + 1] = (int32_t)_mm512_reduce_add_epi64(q);
    }
}

/* AVX2: byte popcounts by two nibble lookups; the four planes are combined per byte (at most
 * 8 * 15 = 120, no overflow) before one vpsadbw sums the bytes */
__attribute__((target("avx2"))) static void dots_avx2(const uint64_t *planes, const uint8_t *codes, size_t n,
                                                      int bits, int32_t *out) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                         2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(15), zero = _mm256_setzero_si256();
    const int wpp = bits / 64, cb = bits / 8;
    if (bits < 256) { /* 128-bit codes: shorter than one register */
        fk__sketch_dots_ref(planes, codes, n, bits, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * (size_t)cb;
        __m256i acc = zero;
        for (int o = 0; o < cb; o += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(c + o)), w = zero;
            for (int j = FK__SKETCH_QBITS - 1; j >= 0; j--) {
                __m256i t = _mm256_and_si256(x, _mm256_loadu_si256((const __m256i *)(planes + j * wpp + o / 8)));
                __m256i p = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(t, low)),
                                            _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(t, 4), low)));
                w = _mm256_add_epi8(_mm256_add_epi8(w, w), p);
            }
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(w, zero));
        }
        __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
        out[i] = (int32_t)_mm_cvtsi128_si64(s);
    }
}

/* AVX-512: one 512-bit load per 512 code bits, four VPOPCNTQ (one per query plane) weighted by shifts.
 * Codes shorter than 512 bits load with a mask. Four templates per step share the horizontal sums. */
__attribute__((target("avx512f,avx512vpopcntdq"))) static void dots_avx512(const uint64_t *planes,
                                                                            const uint8_t *codes, size_t n,
                                                                            int bits, int32_t *out) {
    const int wpp = bits / 64, cb = bits / 8;
    if (bits == 512) { /* the common case: planes stay in registers */
        const __m512i p0 = _mm512_loadu_si512(planes), p1 = _mm512_loadu_si512(planes + 8),
                      p2 = _mm512_loadu_si512(planes + 16), p3 = _mm512_loadu_si512(planes + 24);
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            __m512i r[4];
            for (int k = 0; k < 4; k++) {
                __m512i x = _mm512_loadu_si512(codes + (i + k) * 64);
                __m512i s = _mm512_popcnt_epi64(_mm512_and_si512(x, p3));
                s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p2)));
                s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p1)));
                r[k] = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p0)));
            }
            /* pairwise: lanes of r0/r1 and r2/r3 interleaved, then 256-bit and 128-bit halves */
            __m512i a = _mm512_add_epi64(_mm512_unpacklo_epi64(r[0], r[1]), _mm512_unpackhi_epi64(r[0], r[1]));
            __m512i b = _mm512_add_epi64(_mm512_unpacklo_epi64(r[2], r[3]), _mm512_unpackhi_epi64(r[2], r[3]));
            /* a = [r0 r1] pairs per 128-bit lane, b likewise; fold the four 128-bit lanes */
            __m512i ab = _mm512_add_epi64(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xdd));
            /* ab lanes: [a0+a1, a2+a3, b0+b1, b2+b3] (128-bit each) */
            __m512i f = _mm512_add_epi64(ab, _mm512_shuffle_i64x2(ab, ab, 0xb1));
            /* lane 0 = a total (r0, r1), lane 2 = b total (r2, r3) */
            __m128i lo = _mm512_castsi512_si128(f), hi = _mm512_extracti32x4_epi32(f, 2);
            out[i] = (int32_t)_mm_cvtsi128_si64(lo);
            out[i + 1] = (int32_t)_mm_extract_epi64(lo, 1);
            out[i + 2] = (int32_t)_mm_cvtsi128_si64(hi);
            out[i + 3] = (int32_t)_mm_extract_epi64(hi, 1);
        }
        for (; i < n; i++) {
            __m512i x = _mm512_loadu_si512(codes + i * 64);
            __m512i s = _mm512_popcnt_epi64(_mm512_and_si512(x, p3));
            s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p2)));
            s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p1)));
            s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p0)));
            out[i] = (int32_t)_mm512_reduce_add_epi64(s);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * (size_t)cb;
        __m512i acc = _mm512_setzero_si512();
        for (int w = 0; w < wpp; w += 8) {
            __mmask8 m = wpp - w >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (wpp - w)) - 1);
            __m512i x = _mm512_maskz_loadu_epi64(m, c + w * 8), s = _mm512_setzero_si512();
            for (int j = FK__SKETCH_QBITS - 1; j >= 0; j--) {
                __m512i p = _mm512_maskz_loadu_epi64(m, planes + j * wpp + w);
                s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p)));
            }
            acc = _mm512_add_epi64(acc, s);
        }
        out[i] = (int32_t)_mm512_reduce_add_epi64(acc);
    }
}

/* stage 1 fused for 512-bit codes: sixteen templates per step, their sums reduced into one register by a
 * transposing tree, the estimate and the threshold test in vector registers, and the survivors packed with
 * an in-register compress (Zen 4's compress-to-memory is microcoded and slow) */
__attribute__((target("avx512f,avx512vpopcntdq"))) static __m512i s8_avx512(const uint8_t *c, __m512i p0, __m512i p1,
                                                                            __m512i p2, __m512i p3) {
    __m512i r[8];
    for (int k = 0; k < 8; k++) {
        __m512i x = _mm512_loadu_si512(c + k * 64);
        __m512i s = _mm512_popcnt_epi64(_mm512_and_si512(x, p3));
        s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p2)));
        s = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p1)));
        r[k] = _mm512_add_epi64(_mm512_slli_epi64(s, 1), _mm512_popcnt_epi64(_mm512_and_si512(x, p0)));
    }
    __m512i a[4], b[2];
    for (int k = 0; k < 4; k++) /* 128-bit lane l: (r2k, r2k+1) partial sums */
        a[k] = _mm512_add_epi64(_mm512_unpacklo_epi64(r[2 * k], r[2 * k + 1]),
                                _mm512_unpackhi_epi64(r[2 * k], r[2 * k + 1]));
    for (int k = 0; k < 2; k++) /* lanes: (r4k, r4k+1) twice, (r4k+2, r4k+3) twice */
        b[k] = _mm512_add_epi64(_mm512_shuffle_i64x2(a[2 * k], a[2 * k + 1], 0x88),
                                _mm512_shuffle_i64x2(a[2 * k], a[2 * k + 1], 0xdd));
    return _mm512_add_epi64(_mm512_shuffle_i64x2(b[0], b[1], 0x88), _mm512_shuffle_i64x2(b[0], b[1], 0xdd));
}

__attribute__((target("avx512f,avx512vpopcntdq"))) static int scan_avx512(const uint64_t *planes,
                                                                          const uint8_t *codes, const float *inv,
                                                                          const float *pop, size_t n, int bits,
                                                                          const fk__sketch_query_t *sq, float t1,
                                                                          uint32_t base, float *num,
                                                                          uint32_t *slot) {
    if (bits != 512) {
        int32_t S[FK__SKETCH_SCAN_MAX];
        dots_avx512(planes, codes, n, bits, S);
        return scan_tail(S, inv, pop, n, sq, t1, base, num, slot);
    }
    const __m512i p0 = _mm512_loadu_si512(planes), p1 = _mm512_loadu_si512(planes + 8),
                  p2 = _mm512_loadu_si512(planes + 16), p3 = _mm512_loadu_si512(planes + 24);
    const __m512 va = _mm512_set1_ps(sq->a), vb = _mm512_set1_ps(sq->b), vc = _mm512_set1_ps(sq->c),
                 vt = _mm512_set1_ps(t1);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int k = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = _mm512_cvtepi64_epi32(s8_avx512(codes + i * 64, p0, p1, p2, p3));
        __m256i hi = _mm512_cvtepi64_epi32(s8_avx512(codes + (i + 8) * 64, p0, p1, p2, p3));
        __m512 S = _mm512_cvtepi32_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
        __m512 v = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(va, S), _mm512_mul_ps(vb, _mm512_loadu_ps(pop + i))), vc);
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_loadu_ps(inv + i), v), vt, _CMP_GT_OQ);
        if (!m) continue;
        __m512i sl = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(base + (uint32_t)i)));
        _mm512_storeu_ps(num + k, _mm512_maskz_compress_ps(m, v));
        _mm512_storeu_si512(slot + k, _mm512_maskz_compress_epi32(m, sl));
        k += __builtin_popcount((unsigned)m);
    }
    if (i < n) {
        int32_t S[16];
        dots_avx512(planes, codes + i * 64, n - i, bits, S);
        k += scan_tail(S, inv + i, pop + i, n - i, sq, t1, base + (uint32_t)i, num + k, slot + k);
    }
    return k;
}

__attribute__((target("avx2"))) static int scan_avx2(const uint64_t *planes, const uint8_t *codes, const float *inv,
                                                     const float *pop, size_t n, int bits,
                                                     const fk__sketch_query_t *sq, float t1, uint32_t base,
                                                     float *num, uint32_t *slot) {
    int32_t S[FK__SKETCH_SCAN_MAX];
    dots_avx2(planes, codes, n, bits, S);
    return scan_tail(S, inv, pop, n, sq, t1, base, num, slot);
}

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
static int has_vpopcnt(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
}
#endif

fk__sketch_dots_fn fk__sketch_dots_select(const char *force, const char **level) {
    const char *l = "c";
    fk__sketch_dots_fn f = fk__sketch_dots_ref;
#ifdef FK_X86
    int any = !force;
    if ((any || !strcmp(force, "avx512")) && has_vpopcnt()) {
        l = "avx512";
        f = dots_avx512;
    } else if ((any || !strcmp(force, "avx512") || !strcmp(force, "avx2")) && has_avx2()) {
        l = "avx2";
        f = dots_avx2;
    }
#endif
    (void)force;
    if (level) *level = l;
    return f;
}

fk__sketch_scan_fn fk__sketch_scan_select(const char *force, const char **level) {
    const char *l = "c";
    fk__sketch_scan_fn f = fk__sketch_scan_ref;
#ifdef FK_X86
    int any = !force;
    if ((any || !strcmp(force, "avx512")) && has_vpopcnt()) {
        l = "avx512";
        f = scan_avx512;
    } else if ((any || !strcmp(force, "avx512") || !strcmp(force, "avx2")) && has_avx2()) {
        l = "avx2";
        f = scan_avx2;
    }
#endif
    (void)force;
    if (level) *level = l;
    return f;
}

fk__sketch_refine_fn fk__sketch_refine_select(const char *force, const char **level) {
    const char *l = "c";
    fk__sketch_refine_fn f = fk__sketch_refine_ref;
#ifdef FK_X86
    if ((!force || !strcmp(force, "avx512")) && has_vpopcnt()) {
        l = "avx512";
        f = refine_avx512;
    }
#endif
    (void)force;
    if (level) *level = l;
    return f;
}
