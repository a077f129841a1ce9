/*
 * scan.c — the inner loops of 1:N search (src/gallery): fp32 dot products of a query with many templates,
 * and the exact int32 dot products of int8 codes used by the coarse pass over large galleries. Each kernel
 * has a plain C reference; the AVX2 and AVX-512 (VNNI) versions are compiled per function with
 * __attribute__((target)) and picked at run time with __builtin_cpu_supports, so the binary runs anywhere.
 */
#include "gallery/scan.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FK_X86 1
#endif

/* ---- reference ---- */

void fk__dots_f32_ref(const float *q, const float *x, size_t n, int dim, float *out) {
    for (size_t i = 0; i < n; i++) {
        const float *v = x + i * (size_t)dim;
        float s = 0;
        for (int j = 0; j < dim; j++) s += q[j] * v[j];
        out[i] = s;
    }
}

void fk__dots_i8_ref(const int8_t *q8, const uint8_t *qu8, const int8_t *c8, const int32_t *csum, size_t n,
                     int dim, int32_t *out) {
    (void)qu8;
    (void)csum;
    for (size_t i = 0; i < n; i++) {
        const int8_t *v = c8 + i * (size_t)dim;
        int32_t s = 0;
        for (int j = 0; j < dim; j++) s += (int32_t)q8[j] * v[j];
        out[i] = s;
    }
}

void fk__dots_i4_ref(const int8_t *q8, const uint8_t *c4, size_t n, int dim, int32_t *out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *v = c4 + i * (size_t)(dim / 2);
        int32_t s = 0;
        for (int g = 0; g < dim / 128; g++)
            for (int b = 0; b < 64; b++) {
                uint8_t x = v[g * 64 + b];
                s += (int32_t)q8[g * 128 + b] * (x & 15) + (int32_t)q8[g * 128 + 64 + b] * (x >> 4);
            }
        out[i] = s;
    }
}

#ifdef FK_X86

/* ---- AVX2 ---- */

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static void dots_f32_avx2(const float *q, const float *x, size_t n, int dim,
                                                              float *out) {
    for (size_t i = 0; i < n; i++) {
        const float *v = x + i * (size_t)dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
               a3 = _mm256_setzero_ps();
        for (int j = 0; j < dim; j += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), _mm256_loadu_ps(v + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), _mm256_loadu_ps(v + j + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 16), _mm256_loadu_ps(v + j + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 24), _mm256_loadu_ps(v + j + 24), a3);
        }
        out[i] = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

__attribute__((target("avx2"))) static int32_t hsum256i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* maddubs multiplies unsigned by signed bytes: |q| times (c with q's sign) keeps every pair sum within
 * int16 (codes and query are in -127..127), so the result is exact. */
__attribute__((target("avx2"))) static void dots_i8_avx2(const int8_t *q8, const uint8_t *qu8, const int8_t *c8,
                                                         const int32_t *csum, size_t n, int dim, int32_t *out) {
    (void)qu8;
    (void)csum;
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t i = 0; i < n; i++) {
        const int8_t *v = c8 + i * (size_t)dim;
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (int j = 0; j < dim; j += 64) {
            __m256i qa = _mm256_loadu_si256((const __m256i *)(q8 + j));
            __m256i qb = _mm256_loadu_si256((const __m256i *)(q8 + j + 32));
            __m256i va = _mm256_loadu_si256((const __m256i *)(v + j));
            __m256i vb = _mm256_loadu_si256((const __m256i *)(v + j + 32));
            __m256i pa = _mm256_maddubs_epi16(_mm256_abs_epi8(qa), _mm256_sign_epi8(va, qa));
            __m256i pb = _mm256_maddubs_epi16(_mm256_abs_epi8(qb), _mm256_sign_epi8(vb, qb));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(pa, ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(pb, ones));
        }
        out[i] = hsum256i(_mm256_add_epi32(a0, a1));
    }
}

/* 4-bit: nibbles (0..15) are the unsigned operand of maddubs, so pair sums stay far inside int16 */
__attribute__((target("avx2"))) static void dots_i4_avx2(const int8_t *q8, const uint8_t *c4, size_t n, int dim,
                                                         int32_t *out) {
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *v = c4 + i * (size_t)(dim / 2);
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (int g = 0; g < dim / 128; g++) {
            for (int h = 0; h < 2; h++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(v + g * 64 + h * 32));
                __m256i lo = _mm256_and_si256(x, low), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
                __m256i ql = _mm256_loadu_si256((const __m256i *)(q8 + g * 128 + h * 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(q8 + g * 128 + 64 + h * 32));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ql), ones));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, qh), ones));
            }
        }
        out[i] = hsum256i(_mm256_add_epi32(a0, a1));
    }
}

/* ---- AVX-512 ---- */

/* four vectors at a time: independent accumulator chains hide the FMA latency, and one transposing
 * reduction serves four results */
__attribute__((target("avx512f"))) static void dots_f32_avx512(const float *q, const float *x, size_t n, int dim,
                                                                float *out) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *v0 = x + i * (size_t)dim, *v1 = v0 + dim, *v2 = v1 + dim, *v3 = v2 + dim;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
               a3 = _mm512_setzero_ps();
        for (int j = 0; j < dim; j += 16) {
            __m512 qq = _mm512_loadu_ps(q + j);
            a0 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(v0 + j), a0);
            a1 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(v1 + j), a1);
            a2 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(v2 + j), a2);
            a3 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(v3 + j), a3);
        }
        out[i] = _mm512_reduce_add_ps(a0);
        out[i + 1] = _mm512_reduce_add_ps(a1);
        out[i + 2] = _mm512_reduce_add_ps(a2);
        out[i + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; i < n; i++) {
        const float *v = x + i * (size_t)dim;
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < dim; j += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), _mm512_loadu_ps(v + j), a);
        out[i] = _mm512_reduce_add_ps(a);
    }
}

/* VNNI: vpdpbusd (unsigned x signed, no saturation) on QU8 = Q8 + 128, then dot(Q8, c) = dot(QU8, c) -
 * 128 * sum(c). Four vectors per step, with a prefetch a few vectors ahead for galleries that live in
 * DRAM. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void dots_i8_avx512(const int8_t *q8,
                                                                                   const uint8_t *qu8,
                                                                                   const int8_t *c8,
                                                                                   const int32_t *csum, size_t n,
                                                                                   int dim, int32_t *out) {
    (void)q8;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int8_t *v0 = c8 + i * (size_t)dim, *v1 = v0 + dim, *v2 = v1 + dim, *v3 = v2 + dim;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
                a3 = _mm512_setzero_si512();
        for (int j = 0; j < dim; j += 64) {
            _mm_prefetch((const char *)(v0 + 8 * (size_t)dim + j), _MM_HINT_T0);
            _mm_prefetch((const char *)(v2 + 8 * (size_t)dim + j), _MM_HINT_T0);
            __m512i qq = _mm512_loadu_si512(qu8 + j);
            a0 = _mm512_dpbusd_epi32(a0, qq, _mm512_loadu_si512(v0 + j));
            a1 = _mm512_dpbusd_epi32(a1, qq, _mm512_loadu_si512(v1 + j));
            a2 = _mm512_dpbusd_epi32(a2, qq, _mm512_loadu_si512(v2 + j));
            a3 = _mm512_dpbusd_epi32(a3, qq, _mm512_loadu_si512(v3 + j));
        }
        out[i] = _mm512_reduce_add_epi32(a0) - 128 * csum[i];
        out[i + 1] = _mm512_reduce_add_epi32(a1) - 128 * csum[i + 1];
        out[i + 2] = _mm512_reduce_add_epi32(a2) - 128 * csum[i + 2];
        out[i + 3] = _mm512_reduce_add_epi32(a3) - 128 * csum[i + 3];
    }
    for (; i < n; i++) {
        const int8_t *v = c8 + i * (size_t)dim;
        __m512i a = _mm512_setzero_si512();
        for (int j = 0; j < dim; j += 64)
            a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(qu8 + j), _mm512_loadu_si512(v + j));
        out[i] = _mm512_reduce_add_epi32(a) - 128 * csum[i];
    }
}

/* 4-bit with VNNI: nibbles are vpdpbusd's unsigned operand, the query its signed one. Four vectors per
 * step. No software prefetch: the stream is sequential and the hardware prefetcher alone reached the
 * machine's streaming bandwidth, while explicit prefetches cost about a third of it (measured on 1M). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void dots_i4_avx512(const int8_t *q8,
                                                                                   const uint8_t *c4, size_t n,
                                                                                   int dim, int32_t *out) {
    const __m512i low = _mm512_set1_epi8(15);
    const size_t vb = (size_t)(dim / 2);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *v0 = c4 + i * vb;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
                a3 = _mm512_setzero_si512();
        for (int g = 0; g < dim / 128; g++) {
            const uint8_t *p = v0 + g * 64;
            __m512i ql = _mm512_loadu_si512(q8 + g * 128), qh = _mm512_loadu_si512(q8 + g * 128 + 64);
            __m512i x0 = _mm512_loadu_si512(p), x1 = _mm512_loadu_si512(p + vb), x2 = _mm512_loadu_si512(p + 2 * vb),
                    x3 = _mm512_loadu_si512(p + 3 * vb);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(x0, low), ql);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(x1, low), ql);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(x2, low), ql);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(x3, low), ql);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(_mm512_srli_epi16(x0, 4), low), qh);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(x1, 4), low), qh);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(_mm512_srli_epi16(x2, 4), low), qh);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(_mm512_srli_epi16(x3, 4), low), qh);
        }
        out[i] = _mm512_reduce_add_epi32(a0);
        out[i + 1] = _mm512_reduce_add_epi32(a1);
        out[i + 2] = _mm512_reduce_add_epi32(a2);
        out[i + 3] = _mm512_reduce_add_epi32(a3);
    }
    for (; i < n; i++) {
        const uint8_t *v = c4 + i * vb;
        __m512i a = _mm512_setzero_si512();
        for (int g = 0; g < dim / 128; g++) {
            __m512i x = _mm512_loadu_si512(v + g * 64);
            a = _mm512_dpbusd_epi32(a, _mm512_and_si512(x, low), _mm512_loadu_si512(q8 + g * 128));
            a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                                    _mm512_loadu_si512(q8 + g * 128 + 64));
        }
        out[i] = _mm512_reduce_add_epi32(a);
    }
}

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
static int has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}
#endif

static int want(const char *force, const char *name) { return !force || !strcmp(force, name); }

fk__dots_f32_fn fk__dots_f32_select(const char *force, const char **level) {
    const char *l = "c";
    fk__dots_f32_fn f = fk__dots_f32_ref;
#ifdef FK_X86
    if (want(force, "avx512") && has_avx512f()) {
        l = "avx512";
        f = dots_f32_avx512;
    } else if ((want(force, "avx2") || (force && !strcmp(force, "avx512"))) && has_avx2()) {
        l = "avx2";
        f = dots_f32_avx2;
    }
    if (force && !strcmp(force, "c")) {
        l = "c";
        f = fk__dots_f32_ref;
    }
#endif
    if (level) *level = l;
    return f;
}

fk__dots_i8_fn fk__dots_i8_select(const char *force, const char **level) {
    const char *l = "c";
    fk__dots_i8_fn f = fk__dots_i8_ref;
#ifdef FK_X86
    if (want(force, "avx512") && has_vnni()) {
        l = "avx512";
        f = dots_i8_avx512;
    } else if ((want(force, "avx2") || (force && !strcmp(force, "avx512"))) && has_avx2()) {
        l = "avx2";
        f = dots_i8_avx2;
    }
    if (force && !strcmp(force, "c")) {
        l = "c";
        f = fk__dots_i8_ref;
    }
#endif
    if (level) *level = l;
    return f;
}

fk__dots_i4_fn fk__dots_i4_select(const char *force, const char **level) {
    const char *l = "c";
    fk__dots_i4_fn f = fk__dots_i4_ref;
#ifdef FK_X86
    if (want(force, "avx512") && has_vnni()) {
        l = "avx512";
        f = dots_i4_avx512;
    } else if ((want(force, "avx2") || (force && !strcmp(force, "avx512"))) && has_avx2()) {
        l = "avx2";
        f = dots_i4_avx2;
    }
    if (force && !strcmp(force, "c")) {
        l = "c";
        f = fk__dots_i4_ref;
    }
#endif
    if (level) *level = l;
    return f;
}
