/*
 * geometry.c — resampling, tensor conversion, affine warp, crop, flips/rotations and gray conversion.
 * Layer: image. The face pipeline builds on these: the detector input (fk_image_to_tensor of the whole
 * frame), the aligned 112x112 recognition crop (fk_image_warp_affine) and its normalisation.
 *
 * Resampling is separable and fixed-point. For each output column and row a small table of source taps
 * and Q12 weights (summing to exactly 4096) is built once per call: bilinear (2 taps) when the axis is
 * enlarged or shrunk by at most 2x, area averaging (the output pixel's footprint, ceil(scale)+1 taps)
 * beyond that, so a detector never sees aliasing. Each output row is first filtered vertically over just
 * the source columns the row needs (a contiguous, vectorisable multiply-add into a Q4 row buffer), then
 * horizontally. A constant image therefore stays exactly constant and an identity resample is exact.
 * Source taps outside the image refer to a "fill" entry (slot 0 of the row buffer, or a fill row), so
 * the inner loops have no bounds branches.
 */
#include "image/image.h"

#include <math.h>
#include <string.h>

#define FK__WBITS 12
#define FK__WONE (1 << FK__WBITS)

static int image_ok(const fk_image_t *img) {
    return img && img->rgb && img->width >= 1 && img->height >= 1 && img->width <= FK_IMAGE_MAX_DIMENSION &&
           img->height <= FK_IMAGE_MAX_DIMENSION && img->stride >= 3 * img->width;
}

/* ---- resampling tables ----------------------------------------------------------------------------- */

typedef struct axis {
    int taps;     /* taps per output position (unused ones have weight 0 and index of the fill) */
    int *idx;     /* [n_out * taps] source index, or -1 for the fill value */
    int16_t *w;   /* [n_out * taps] Q12 weights, each output's sum exactly FK__WONE */
    int lo, hi;   /* range of source indices used (lo > hi when none) */
} axis_t;

/* Rounds float weights to Q12 so that they sum to exactly FK__WONE (the largest absorbs the error). */
static void quantise(const double *wf, int16_t *wq, int taps) {
    int sum = 0, big = 0;
    for (int t = 0; t < taps; t++) {
        wq[t] = (int16_t)lrint(wf[t] * FK__WONE);
        sum += wq[t];
        if (wf[t] > wf[big]) big = t;
    }
    wq[big] = (int16_t)(wq[big] + FK__WONE - sum);
}

/* Builds the taps mapping N_OUT outputs onto [R0, R0 + RLEN) of a source axis of length SRC. */
static int axis_build(axis_t *a, int src, double r0, double rlen, int n_out) {
    double scale = rlen / n_out;
    int area = scale > 2.0;
    long taps = area ? (long)ceil(scale) + 2 : 2;
    if (taps > (long)src + 2) taps = (long)src + 2; /* outside taps collapse into the single fill tap */
    taps += taps & 1;                                /* even: the SIMD pass takes taps in pairs */
    a->taps = (int)taps;
    a->idx = fk__malloc(sizeof(int) * (size_t)n_out * (size_t)taps);
    a->w = fk__malloc(sizeof(int16_t) * (size_t)n_out * (size_t)taps);
    double *wf = fk__malloc(sizeof(double) * (size_t)taps);
    if (!a->idx || !a->w || !wf) {
        fk__free(wf);
        return FK_ENOMEM;
    }
    a->lo = src;
    a->hi = -1;
    for (int o = 0; o < n_out; o++) {
        int *idx = a->idx + (size_t)o * taps;
        int16_t *w = a->w + (size_t)o * taps;
        for (int t = 0; t < taps; t++) {
            idx[t] = -1;
            wf[t] = 0;
        }
        if (area) {
            /* footprint [p0, p1) in edge coordinates; parts outside the image weigh the fill (tap 0) */
            double p0 = r0 + o * scale, p1 = p0 + scale, fill = 0;
            if (p0 < 0) fill += (p1 < 0 ? p1 : 0) - p0;
            if (p1 > src) fill += p1 - (p0 > src ? p0 : src);
            double q0 = p0 < 0 ? 0 : p0, q1 = p1 > src ? src : p1;
            wf[0] = fill / scale;
            int t = 1;
            if (q1 > q0) {
                for (int i = (int)floor(q0); i < q1 && i < src && t < taps; i++, t++) {
                    double lo = i > q0 ? i : q0, hi = i + 1 < q1 ? i + 1 : q1;
                    idx[t] = i;
                    wf[t] = (hi - lo) / scale;
                }
            }
        } else {
            double c = r0 + (o + 0.5) * scale; /* centre of the output pixel, edge coordinates */
            if (c >= 0 && c < src) {
                double s = c - 0.5, f0 = floor(s), f = s - f0;
                int i0 = (int)f0, i1 = i0 + 1;
                if (i0 < 0) i0 = 0;
                if (i1 > src - 1) i1 = src - 1;
                idx[0] = i0;
                idx[1] = i1;
                wf[0] = 1 - f;
                wf[1] = f;
            } else {
                wf[0] = 1; /* idx[0] = -1: the fill */
            }
        }
        quantise(wf, w, (int)taps);
        for (int t = 0; t < taps; t++) {
            if (idx[t] < 0) continue;
            if (w[t] == 0) { /* keep the column range tight: zero-weight taps read the fill instead */
                idx[t] = -1;
                continue;
            }
            if (idx[t] < a->lo) a->lo = idx[t];
            if (idx[t] > a->hi) a->hi = idx[t];
        }
    }
    fk__free(wf);
    return FK_OK;
}

static void axis_free(axis_t *a) {
    fk__free(a->idx);
    fk__free(a->w);
}

/* Output of the resampler: an RGB8 image, or floats for a network. */
typedef struct sink {
    fk_image_t *dst;
    float *tensor;
    const fk_tensor_spec_t *spec;
    float lut[3][256]; /* per output channel: (v - mean) * scale */
    int src_ch[3];     /* output channel c takes source channel src_ch[c] */
} sink_t;

static int check_rect(const fk_image_t *src, const fk_rectf_t *rect, double *r) {
    if (!rect) {
        r[0] = 0;
        r[1] = 0;
        r[2] = src->width;
        r[3] = src->height;
        return FK_OK;
    }
    r[0] = rect->x;
    r[1] = rect->y;
    r[2] = rect->w;
    r[3] = rect->h;
    for (int i = 0; i < 4; i++)
        if (!isfinite(r[i]) || fabs(r[i]) > 1e7) return FK_EINVAL;
    if (r[2] <= 0 || r[3] <= 0) return FK_EINVAL;
    return FK_OK;
}

/* The vertical pass's inner loops: contiguous, restrict-qualified, so the compiler vectorises them.
 * One or two taps (bilinear, most area rows) go straight to the Q4 int16 row; more accumulate Q12 sums in
 * int32 first. */
static void vrow2(int16_t *restrict vb, const uint8_t *restrict r0, int32_t w0, const uint8_t *restrict r1, int32_t w1,
                  size_t n) {
    for (size_t k = 0; k < n; k++) vb[k] = (int16_t)((w0 * r0[k] + w1 * r1[k] + 128) >> 8);
}

static void vacc2(int32_t *restrict acc, const uint8_t *restrict r0, int32_t w0, const uint8_t *restrict r1,
                  int32_t w1, size_t n) {
    for (size_t k = 0; k < n; k++) acc[k] = w0 * r0[k] + w1 * r1[k] + 128;
}

static void vacc_add(int32_t *restrict acc, const uint8_t *restrict r, int32_t w, size_t n) {
    for (size_t k = 0; k < n; k++) acc[k] += w * r[k];
}

static void vacc_done(int16_t *restrict vb, const int32_t *restrict acc, size_t n) {
    for (size_t k = 0; k < n; k++) vb[k] = (int16_t)(acc[k] >> 8);
}

/* Horizontal pass, reference: output pixel ox = sum over taps of Q12 weight x Q4 pixel, rounded to 8 bits.
 * VB holds the fill pixel at 0 and source columns after it; IDX are element offsets into VB. */
static void hpass_ref(const int16_t *vb, const axis_t *ax, int out_w, uint8_t *o8) {
    for (int ox = 0; ox < out_w; ox++) {
        const int *ix = ax->idx + (size_t)ox * ax->taps;
        const int16_t *wx = ax->w + (size_t)ox * ax->taps;
        int32_t a0 = 1 << 15, a1 = 1 << 15, a2 = 1 << 15;
        for (int t = 0; t < ax->taps; t++) {
            const int16_t *p = vb + ix[t];
            int32_t wt = wx[t];
            a0 += wt * p[0];
            a1 += wt * p[1];
            a2 += wt * p[2];
        }
        o8[3 * ox] = (uint8_t)(a0 >> 16);
        o8[3 * ox + 1] = (uint8_t)(a1 >> 16);
        o8[3 * ox + 2] = (uint8_t)(a2 >> 16);
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* Same sums, two taps per step: interleave the two taps' pixels (4 int16 each: R, G, B and the next
 * sample, which gets a weight but is discarded) and let pmaddwd form w0*p + w1*q per channel. The taps
 * count is even (axis_build pads) and VB has 4 spare elements for the over-read. Bit-identical to the
 * reference. */
static void hpass_sse2(const int16_t *vb, const axis_t *ax, int out_w, uint8_t *o8) {
    const __m128i bias = _mm_set1_epi32(1 << 15);
    for (int ox = 0; ox < out_w; ox++) {
        const int *ix = ax->idx + (size_t)ox * ax->taps;
        const int16_t *wx = ax->w + (size_t)ox * ax->taps;
        __m128i acc = bias;
        for (int t = 0; t < ax->taps; t += 2) {
            __m128i p = _mm_loadl_epi64((const __m128i *)(const void *)(vb + ix[t]));
            __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(vb + ix[t + 1]));
            __m128i w = _mm_set1_epi32((int)((uint32_t)(uint16_t)wx[t] | (uint32_t)(uint16_t)wx[t + 1] << 16));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_unpacklo_epi16(p, q), w));
        }
        acc = _mm_srai_epi32(acc, 16);
        __m128i v8 = _mm_packus_epi16(_mm_packs_epi32(acc, acc), acc);
        uint32_t v = (uint32_t)_mm_cvtsi128_si32(v8);
        if (ox + 1 < out_w) {
            memcpy(o8 + 3 * ox, &v, 4); /* the 4th byte is overwritten by the next pixel */
        } else {
            o8[3 * ox] = (uint8_t)v;
            o8[3 * ox + 1] = (uint8_t)(v >> 8);
            o8[3 * ox + 2] = (uint8_t)(v >> 16);
        }
    }
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FK__VPASS_AVX2 1
#define FK__VMAX 16 /* taps the AVX2 vertical pass takes at once; more (shrinking > 14x) use the plain loops */

static int have_avx2(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2");
    }
    return cached;
}

/* The vertical pass for M taps at once, 16 row values per step: pixels widened to int16 and paired tap by
 * tap so that vpmaddwd forms w0 * r0 + w1 * r1 in int32 (weights are Q12, at most 4096, pixels 0..255), an odd
 * last tap paired with weight 0. Same sums and rounding as vrow2 / vacc*: bit-identical. The unpacks work
 * inside 128-bit lanes and the final pack undoes their order. */
__attribute__((target("avx2"))) static void vpass_avx2(int16_t *restrict vb, const uint8_t *const *rows,
                                                       const int32_t *w, int m, size_t n) {
    __m256i wp[FK__VMAX / 2];
    for (int t = 0; t < m; t += 2) {
        uint32_t lo = (uint16_t)w[t], hi = t + 1 < m ? (uint16_t)w[t + 1] : 0;
        wp[t / 2] = _mm256_set1_epi32((int)(lo | hi << 16));
    }
    const __m256i bias = _mm256_set1_epi32(128);
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256i alo = bias, ahi = bias;
        for (int t = 0; t < m; t += 2) {
            __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(rows[t] + k)));
            __m256i b = t + 1 < m ? _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(rows[t + 1] + k)))
                                  : _mm256_setzero_si256();
            alo = _mm256_add_epi32(alo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wp[t / 2]));
            ahi = _mm256_add_epi32(ahi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wp[t / 2]));
        }
        __m256i v = _mm256_packs_epi32(_mm256_srai_epi32(alo, 8), _mm256_srai_epi32(ahi, 8));
        _mm256_storeu_si256((__m256i *)(void *)(vb + k), v);
    }
    for (; k < n; k++) {
        int32_t acc = 128;
        for (int t = 0; t < m; t++) acc += w[t] * rows[t][k];
        vb[k] = (int16_t)(acc >> 8);
    }
}

/* The horizontal pass (hpass_sse2's sums) for two output pixels per step, one in each 128-bit lane. WP holds
 * each output's tap pairs as packed int16 weight pairs (low = even tap), built once per call. */
__attribute__((target("avx2"))) static void hpass_avx2(const int16_t *vb, const axis_t *ax, const int32_t *wp,
                                                       int out_w, uint8_t *o8) {
    const int T = ax->taps, P = T / 2;
    const __m256i bias = _mm256_set1_epi32(1 << 15);
    int ox = 0;
    for (; ox + 2 <= out_w; ox += 2) {
        const int *ia = ax->idx + (size_t)ox * T, *ib = ia + T;
        const int32_t *wa = wp + (size_t)ox * P, *wb = wa + P;
        __m256i acc = bias;
        for (int t = 0; t < T; t += 2) {
            __m128i pa = _mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(vb + ia[t])),
                                            _mm_loadl_epi64((const __m128i *)(const void *)(vb + ia[t + 1])));
            __m128i pb = _mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(vb + ib[t])),
                                            _mm_loadl_epi64((const __m128i *)(const void *)(vb + ib[t + 1])));
            __m256i p = _mm256_inserti128_si256(_mm256_castsi128_si256(pa), pb, 1);
            __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(wa[t / 2])),
                                                _mm_set1_epi32(wb[t / 2]), 1);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, w));
        }
        acc = _mm256_srai_epi32(acc, 16);
        __m256i v16 = _mm256_packs_epi32(acc, acc);
        __m256i v8 = _mm256_packus_epi16(v16, v16);
        uint32_t a = (uint32_t)_mm256_cvtsi256_si32(v8);
        uint32_t b = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(v8, 1));
        memcpy(o8 + 3 * ox, &a, 4); /* its 4th byte is overwritten by pixel b */
        if (ox + 2 < out_w) {
            memcpy(o8 + 3 * (ox + 1), &b, 4);
        } else {
            o8[3 * ox + 3] = (uint8_t)b;
            o8[3 * ox + 4] = (uint8_t)(b >> 8);
            o8[3 * ox + 5] = (uint8_t)(b >> 16);
        }
    }
    if (ox < out_w) { /* an odd last pixel */
        axis_t one = *ax;
        one.idx = ax->idx + (size_t)ox * T;
        one.w = ax->w + (size_t)ox * T;
        hpass_sse2(vb, &one, 1, o8 + 3 * ox);
    }
}
#endif

static int resample(const fk_image_t *src, const fk_rectf_t *rect, const uint8_t fill_rgb[3], int out_w, int out_h,
                    sink_t *sink, int use_ref) {
    double r[4];
    if (check_rect(src, rect, r) != FK_OK) return FK_EINVAL;
    static const uint8_t black[3] = {0, 0, 0};
    const uint8_t *fill = fill_rgb ? fill_rgb : black;
    axis_t ax = {0}, ay = {0};
    int16_t *vbuf = NULL;
    int32_t *acc = NULL;
    uint8_t *fillrow = NULL, *orow = NULL;
    int32_t *wpair = NULL; /* AVX2 horizontal pass: the x weights as packed pairs */
    int rc = axis_build(&ax, src->width, r[0], r[2], out_w);
    if (rc == FK_OK) rc = axis_build(&ay, src->height, r[1], r[3], out_h);
    int lo = ax.lo, ncol = ax.hi >= ax.lo ? ax.hi - ax.lo + 1 : 0;
    size_t nv = 3 * (size_t)ncol;
    if (rc == FK_OK) {
        vbuf = fk__malloc(sizeof(int16_t) * (3 + nv + 4));
        acc = fk__malloc(sizeof(int32_t) * (nv + 1));
        fillrow = fk__malloc(nv + 1);
        orow = fk__malloc(3 * (size_t)out_w);
        if (!vbuf || !acc || !fillrow || !orow) rc = FK_ENOMEM;
    }
    if (rc != FK_OK) goto done;
    /* x taps become element offsets in vbuf: 0 is the fill pixel, 3 * (1 + i - lo) is source column i */
    for (size_t k = 0; k < (size_t)out_w * ax.taps; k++) ax.idx[k] = ax.idx[k] < 0 ? 0 : 3 * (1 + ax.idx[k] - lo);
    for (int i = 0; i < ncol; i++) memcpy(fillrow + 3 * i, fill, 3);
    for (int c = 0; c < 3; c++) vbuf[c] = (int16_t)(fill[c] << 4);
    memset(vbuf + 3 + nv, 0, 4 * sizeof *vbuf);

    int16_t *vb = vbuf + 3;
#ifdef FK__VPASS_AVX2
    const int fast_v = !use_ref && have_avx2();
    if (fast_v) {
        size_t np = (size_t)out_w * (size_t)(ax.taps / 2);
        wpair = fk__malloc(sizeof *wpair * (np ? np : 1));
        if (!wpair) {
            rc = FK_ENOMEM;
            goto done;
        }
        for (size_t k = 0; k < np; k++)
            wpair[k] = (int32_t)((uint32_t)(uint16_t)ax.w[2 * k] | (uint32_t)(uint16_t)ax.w[2 * k + 1] << 16);
    }
#endif
    for (int oy = 0; oy < out_h; oy++) {
        /* vertical: Q12 weights on 8-bit rows, rounded to Q4 (value * 16) */
        const int *iy = ay.idx + (size_t)oy * ay.taps;
        const int16_t *wy = ay.w + (size_t)oy * ay.taps;
#ifdef FK__VPASS_AVX2
        if (fast_v) {
            const uint8_t *vr[FK__VMAX];
            int32_t vw[FK__VMAX];
            int m = 0;
            for (int t = 0; t < ay.taps && m <= FK__VMAX; t++) {
                if (wy[t] == 0) continue;
                if (m < FK__VMAX) {
                    vr[m] = iy[t] < 0 ? fillrow : src->rgb + (size_t)iy[t] * src->stride + 3 * (size_t)lo;
                    vw[m] = wy[t];
                }
                m++;
            }
            if (m == 0) { /* every weight zero cannot happen (they sum to 4096); keep the plain path's answer */
                vr[0] = fillrow;
                vw[0] = 0;
                m = 1;
            }
            if (m <= FK__VMAX) {
                vpass_avx2(vb, vr, vw, m, nv);
                goto horizontal;
            }
        }
#endif
        const uint8_t *rows[2] = {fillrow, fillrow};
        int32_t ws[2] = {0, 0}, m = 0;
        for (int t = 0; t < ay.taps; t++) {
            if (wy[t] == 0) continue;
            const uint8_t *row = iy[t] < 0 ? fillrow : src->rgb + (size_t)iy[t] * src->stride + 3 * (size_t)lo;
            if (m < 2) {
                rows[m] = row;
                ws[m] = wy[t];
            } else {
                if (m == 2) vacc2(acc, rows[0], ws[0], rows[1], ws[1], nv);
                vacc_add(acc, row, wy[t], nv);
            }
            m++;
        }
        if (m <= 2) vrow2(vb, rows[0], ws[0], rows[1], ws[1], nv);
        else vacc_done(vb, acc, nv);
#ifdef FK__VPASS_AVX2
    horizontal:;
#endif

        /* horizontal: Q12 weights on Q4 values, rounded to 8 bits */
        uint8_t *o8 = sink->dst ? sink->dst->rgb + (size_t)oy * sink->dst->stride : orow;
#ifdef FK__VPASS_AVX2
        if (fast_v) hpass_avx2(vbuf, &ax, wpair, out_w, o8);
        else
#endif
#if defined(__SSE2__)
        if (!use_ref) hpass_sse2(vbuf, &ax, out_w, o8);
        else
#endif
            hpass_ref(vbuf, &ax, out_w, o8);
        if (sink->tensor) {
            const fk_tensor_spec_t *sp = sink->spec;
            const float *l0 = sink->lut[0], *l1 = sink->lut[1], *l2 = sink->lut[2];
            const uint8_t *s0 = orow + sink->src_ch[0], *s1 = orow + sink->src_ch[1], *s2 = orow + sink->src_ch[2];
            if (sp->layout == FK_TENSOR_HWC) {
                float *t = sink->tensor + (size_t)oy * out_w * 3;
                for (int ox = 0; ox < out_w; ox++) {
                    t[3 * ox] = l0[s0[3 * ox]];
                    t[3 * ox + 1] = l1[s1[3 * ox]];
                    t[3 * ox + 2] = l2[s2[3 * ox]];
                }
            } else {
                size_t plane = (size_t)out_w * out_h;
                float *t0 = sink->tensor + (size_t)oy * out_w, *t1 = t0 + plane, *t2 = t1 + plane;
                for (int ox = 0; ox < out_w; ox++) {
                    t0[ox] = l0[s0[3 * ox]];
                    t1[ox] = l1[s1[3 * ox]];
                    t2[ox] = l2[s2[3 * ox]];
                }
            }
        }
    }
done:
    axis_free(&ax);
    axis_free(&ay);
    fk__free(vbuf);
    fk__free(acc);
    fk__free(fillrow);
    fk__free(orow);
    fk__free(wpair);
    return rc;
}

int fk__image_resample_ref(const fk_image_t *src, const fk_rectf_t *rect, const uint8_t fill[3], fk_image_t *dst) {
    if (!image_ok(src) || !image_ok(dst)) return FK_EINVAL;
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    sink.dst = dst;
    return resample(src, rect, fill, dst->width, dst->height, &sink, 1);
}

int fk_image_resample(const fk_image_t *src, const fk_rectf_t *rect, const uint8_t fill[3], fk_image_t *dst) {
    if (!image_ok(src) || !image_ok(dst)) return FK_EINVAL;
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    sink.dst = dst;
    return resample(src, rect, fill, dst->width, dst->height, &sink, 0);
}

int fk_image_resize(const fk_image_t *src, int out_w, int out_h, fk_image_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!image_ok(src)) return FK_EINVAL;
    fk_image_t *dst;
    int rc = fk_image_create(out_w, out_h, &dst);
    if (rc != FK_OK) return rc;
    rc = fk_image_resample(src, NULL, NULL, dst);
    if (rc != FK_OK) {
        fk_image_free(dst);
        return rc;
    }
    *out = dst;
    return FK_OK;
}

int fk_image_to_tensor(const fk_image_t *img, const fk_rectf_t *rect, const fk_tensor_spec_t *spec, float *out) {
    if (!image_ok(img) || !spec || !out) return FK_EINVAL;
    if (spec->width < 1 || spec->height < 1 || spec->width > FK_IMAGE_MAX_DIMENSION ||
        spec->height > FK_IMAGE_MAX_DIMENSION)
        return FK_EINVAL;
    if ((spec->layout != FK_TENSOR_CHW && spec->layout != FK_TENSOR_HWC) ||
        (spec->order != FK_CHANNELS_RGB && spec->order != FK_CHANNELS_BGR))
        return FK_EINVAL;
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    sink.tensor = out;
    sink.spec = spec;
    for (int c = 0; c < 3; c++) {
        sink.src_ch[c] = spec->order == FK_CHANNELS_BGR ? 2 - c : c;
        for (int v = 0; v < 256; v++) sink.lut[c][v] = ((float)v - spec->mean[c]) * spec->scale[c];
    }
    return resample(img, rect, spec->fill, spec->width, spec->height, &sink, 0);
}

/* ---- affine warp ------------------------------------------------------------------------------------ */

int fk_affine_invert(const float m[6], float inv[6]) {
    if (!m || !inv) return FK_EINVAL;
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5];
    double det = a * e - b * d;
    if (!isfinite(det) || fabs(det) < 1e-12) return FK_EINVAL;
    double ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
    double ic = -(ia * c + ib * f), jf = -(id * c + ie * f);
    const double v[6] = {ia, ib, ic, id, ie, jf};
    for (int i = 0; i < 6; i++) /* converting a double beyond float's range would be undefined */
        if (!(fabs(v[i]) < 3e38)) return FK_EINVAL;
    inv[0] = (float)ia;
    inv[1] = (float)ib;
    inv[2] = (float)ic;
    inv[3] = (float)id;
    inv[4] = (float)ie;
    inv[5] = (float)jf;
    return FK_OK;
}

/* One warp row. Every pixel maps to src (sx, sy) = (k0 x + bx, k3 x + by); weights are Q11 fractions.
 * Pixels in [xa, xb) are known to have all four neighbours inside the image and take the branch-free
 * loop; the others (borders, outside) take the general one. Both compute x0/y0/weights identically. */
typedef struct warp_row {
    const fk_image_t *src;
    const uint8_t *fill;
    double k0, k3, bx, by;
    uint8_t *d;
} warp_row_t;

static void warp_general(const warp_row_t *r, int from, int to) {
    const int W = r->src->width, H = r->src->height;
    const size_t ss = (size_t)r->src->stride;
    const uint8_t *fill = r->fill, *base = r->src->rgb;
    uint8_t *d = r->d;
    for (int x = from; x < to; x++) {
        double sx = r->k0 * (double)x + r->bx, sy = r->k3 * (double)x + r->by;
        if (!(sx > -1.0 && sy > -1.0 && sx < W && sy < H)) { /* all four neighbours outside */
            d[3 * x] = fill[0];
            d[3 * x + 1] = fill[1];
            d[3 * x + 2] = fill[2];
            continue;
        }
        /* sx, sy > -1 here, so truncating sx + 1 is floor(sx) + 1 (no libm call in the loop) */
        int x0 = (int)(sx + 1.0) - 1, y0 = (int)(sy + 1.0) - 1;
        int32_t fx = (int32_t)((sx - x0) * 2048 + 0.5), fy = (int32_t)((sy - y0) * 2048 + 0.5);
        int32_t w00 = (2048 - fx) * (2048 - fy), w01 = fx * (2048 - fy), w10 = (2048 - fx) * fy, w11 = fx * fy;
        /* neighbours outside the image are the fill colour, so the border blends into it */
        int xin0 = x0 >= 0 && x0 < W, xin1 = x0 + 1 >= 0 && x0 + 1 < W;
        int yin0 = y0 >= 0 && y0 < H, yin1 = y0 + 1 >= 0 && y0 + 1 < H;
        const uint8_t *r0 = base + (size_t)(yin0 ? y0 : 0) * ss, *r1 = base + (size_t)(yin1 ? y0 + 1 : 0) * ss;
        const uint8_t *p00 = xin0 && yin0 ? r0 + 3 * (size_t)x0 : fill;
        const uint8_t *p01 = xin1 && yin0 ? r0 + 3 * (size_t)(x0 + 1) : fill;
        const uint8_t *p10 = xin0 && yin1 ? r1 + 3 * (size_t)x0 : fill;
        const uint8_t *p11 = xin1 && yin1 ? r1 + 3 * (size_t)(x0 + 1) : fill;
        for (int c = 0; c < 3; c++)
            d[3 * x + c] = (uint8_t)((w00 * p00[c] + w01 * p01[c] + w10 * p10[c] + w11 * p11[c] + (1 << 21)) >> 22);
    }
}

static void warp_inner(const warp_row_t *r, int from, int to) {
    const size_t ss = (size_t)r->src->stride;
    const uint8_t *base = r->src->rgb;
    uint8_t *d = r->d;
    for (int x = from; x < to; x++) {
        double sx = r->k0 * (double)x + r->bx, sy = r->k3 * (double)x + r->by;
        int x0 = (int)(sx + 1.0) - 1, y0 = (int)(sy + 1.0) - 1;
        int32_t fx = (int32_t)((sx - x0) * 2048 + 0.5), fy = (int32_t)((sy - y0) * 2048 + 0.5);
        int32_t w00 = (2048 - fx) * (2048 - fy), w01 = fx * (2048 - fy), w10 = (2048 - fx) * fy, w11 = fx * fy;
        const uint8_t *p = base + (size_t)y0 * ss + 3 * (size_t)x0, *q = p + ss;
        for (int c = 0; c < 3; c++)
            d[3 * x + c] = (uint8_t)((w00 * p[c] + w01 * p[3 + c] + w10 * q[c] + w11 * q[3 + c] + (1 << 21)) >> 22);
    }
}

#ifdef FK__VPASS_AVX2
/* warp_inner four pixels at a time: the same double coordinates (multiply then add, no fused multiply-add),
 * the same truncations and Q11 weights, the four neighbours fetched with 32-bit gathers — the right-hand ones
 * from one byte earlier and shifted, so no load reaches past the last pixel of a row (every pixel here has
 * x0 + 1 < width) — and the same rounding: bit-identical. */
__attribute__((target("avx2"))) static void warp_inner_avx2(const warp_row_t *r, int from, int to) {
    const int ss = r->src->stride;
    const int *base = (const int *)(const void *)r->src->rgb; /* gathers take byte offsets (scale 1) */
    uint8_t *d = r->d;
    const __m256d k0 = _mm256_set1_pd(r->k0), k3 = _mm256_set1_pd(r->k3), bx = _mm256_set1_pd(r->bx),
                  by = _mm256_set1_pd(r->by), one = _mm256_set1_pd(1.0), q11 = _mm256_set1_pd(2048.0),
                  half = _mm256_set1_pd(0.5);
    const __m128i ione = _mm_set1_epi32(1), i2048 = _mm_set1_epi32(2048), ff = _mm_set1_epi32(0xff),
                  round = _mm_set1_epi32(1 << 21), vss = _mm_set1_epi32(ss), three = _mm_set1_epi32(3);
    /* bytes 0-2, 4-6, 8-10, 12-14 of the packed result: four RGB pixels, 12 bytes */
    const __m128i pack = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    int x = from;
    for (; x + 4 <= to; x += 4) {
        __m256d xs = _mm256_setr_pd(x, x + 1, x + 2, x + 3);
        __m256d sx = _mm256_add_pd(_mm256_mul_pd(k0, xs), bx), sy = _mm256_add_pd(_mm256_mul_pd(k3, xs), by);
        __m128i x0 = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(sx, one)), ione);
        __m128i y0 = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(sy, one)), ione);
        __m128i fx = _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(sx, _mm256_cvtepi32_pd(x0)), q11), half));
        __m128i fy = _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(sy, _mm256_cvtepi32_pd(y0)), q11), half));
        __m128i gx = _mm_sub_epi32(i2048, fx), gy = _mm_sub_epi32(i2048, fy);
        __m128i w00 = _mm_mullo_epi32(gx, gy), w01 = _mm_mullo_epi32(fx, gy), w10 = _mm_mullo_epi32(gx, fy),
                w11 = _mm_mullo_epi32(fx, fy);
        __m128i off = _mm_add_epi32(_mm_mullo_epi32(y0, vss), _mm_mullo_epi32(x0, three));
        __m128i offq = _mm_add_epi32(off, vss);
        __m128i p00 = _mm_i32gather_epi32(base, off, 1), p10 = _mm_i32gather_epi32(base, offq, 1);
        __m128i p01 = _mm_srli_epi32(_mm_i32gather_epi32(base, _mm_add_epi32(off, _mm_set1_epi32(2)), 1), 8);
        __m128i p11 = _mm_srli_epi32(_mm_i32gather_epi32(base, _mm_add_epi32(offq, _mm_set1_epi32(2)), 1), 8);
        __m128i out = _mm_setzero_si128();
        for (int c = 0; c < 3; c++) {
            __m128i a = _mm_mullo_epi32(w00, _mm_and_si128(_mm_srli_epi32(p00, 8 * c), ff));
            a = _mm_add_epi32(a, _mm_mullo_epi32(w01, _mm_and_si128(_mm_srli_epi32(p01, 8 * c), ff)));
            a = _mm_add_epi32(a, _mm_mullo_epi32(w10, _mm_and_si128(_mm_srli_epi32(p10, 8 * c), ff)));
            a = _mm_add_epi32(a, _mm_mullo_epi32(w11, _mm_and_si128(_mm_srli_epi32(p11, 8 * c), ff)));
            a = _mm_srli_epi32(_mm_add_epi32(a, round), 22);
            out = _mm_or_si128(out, _mm_slli_epi32(a, 8 * c));
        }
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, _mm_shuffle_epi8(out, pack));
        memcpy(d + 3 * x, tmp, 12);
    }
    if (x < to) warp_inner(r, x, to);
}
#endif

/* True when pixel X of the row has all four neighbours inside (the exact test warp_inner relies on). */
static int warp_is_inner(const warp_row_t *r, int x) {
    double sx = r->k0 * (double)x + r->bx, sy = r->k3 * (double)x + r->by;
    if (!(sx > -1.0 && sy > -1.0 && sx < r->src->width && sy < r->src->height)) return 0;
    int x0 = (int)(sx + 1.0) - 1, y0 = (int)(sy + 1.0) - 1;
    return x0 >= 0 && y0 >= 0 && x0 + 1 < r->src->width && y0 + 1 < r->src->height;
}

/* Narrows [*lo, *hi] to the x where LO_V <= k x + b < HI_V (an estimate; exact ends are found after). */
static void constrain(double k, double b, double lo_v, double hi_v, double *lo, double *hi) {
    if (k > 0) {
        if ((lo_v - b) / k > *lo) *lo = (lo_v - b) / k;
        if ((hi_v - b) / k < *hi) *hi = (hi_v - b) / k;
    } else if (k < 0) {
        if ((hi_v - b) / k > *lo) *lo = (hi_v - b) / k;
        if ((lo_v - b) / k < *hi) *hi = (lo_v - b) / k;
    } else if (!(b >= lo_v && b < hi_v)) {
        *hi = *lo - 1;
    }
}

static int warp_affine(const fk_image_t *src, const float m[6], const uint8_t fill_rgb[3], fk_image_t *dst,
                       int use_ref) {
    if (!image_ok(src) || !image_ok(dst) || !m) return FK_EINVAL;
#ifdef FK__VPASS_AVX2
    /* gather offsets are int32: byte offsets into the source must fit */
    const int fast = !use_ref && have_avx2() && (size_t)src->stride * (size_t)src->height < ((size_t)1 << 31) - 64;
#else
    (void)use_ref;
#endif
    for (int i = 0; i < 6; i++)
        if (!isfinite(m[i])) return FK_EINVAL;
    float inv[6];
    if (fk_affine_invert(m, inv) != FK_OK) return FK_EINVAL;
    static const uint8_t black[3] = {0, 0, 0};
    warp_row_t r = {src, fill_rgb ? fill_rgb : black, inv[0], inv[3], 0, 0, NULL};
    const int n = dst->width;
    for (int y = 0; y < dst->height; y++) {
        r.d = dst->rgb + (size_t)y * dst->stride;
        r.bx = (double)inv[1] * y + inv[2];
        r.by = (double)inv[4] * y + inv[5];
        /* the inner pixels form one interval of x (x0 and y0 are monotonic in x): estimate it, then move
         * its ends until they pass the exact test */
        double lo = 0, hi = n;
        constrain(r.k0, r.bx, 0, src->width - 1, &lo, &hi);
        constrain(r.k3, r.by, 0, src->height - 1, &lo, &hi);
        int xa = n, xb = n;
        if (hi >= lo) {
            xa = lo <= 0 ? 0 : lo >= n ? n : (int)ceil(lo);
            xb = hi >= n ? n : hi <= 0 ? 0 : (int)hi + 1;
            if (xb > n) xb = n;
            while (xa < xb && !warp_is_inner(&r, xa)) xa++;
            while (xb > xa && !warp_is_inner(&r, xb - 1)) xb--;
            if (xa >= xb) xa = xb = n;
        }
        warp_general(&r, 0, xa);
#ifdef FK__VPASS_AVX2
        if (fast) warp_inner_avx2(&r, xa, xb);
        else
#endif
            warp_inner(&r, xa, xb);
        warp_general(&r, xb, n);
    }
    return FK_OK;
}

int fk_image_warp_affine(const fk_image_t *src, const float m[6], const uint8_t fill_rgb[3], fk_image_t *dst) {
    return warp_affine(src, m, fill_rgb, dst, 0);
}

int fk__image_warp_affine_ref(const fk_image_t *src, const float m[6], const uint8_t fill[3], fk_image_t *dst) {
    return warp_affine(src, m, fill, dst, 1);
}

/* ---- crops, flips, rotations ------------------------------------------------------------------------ */

int fk_image_crop(const fk_image_t *src, int x, int y, int w, int h, fk_image_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!image_ok(src) || w <= 0 || h <= 0) return FK_EINVAL;
    int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int64_t x1 = (int64_t)x + w, y1 = (int64_t)y + h;
    if (x1 > src->width) x1 = src->width;
    if (y1 > src->height) y1 = src->height;
    if (x1 <= x0 || y1 <= y0) return FK_EINVAL;
    fk_image_t *c = fk__image_new((int)(x1 - x0), (int)(y1 - y0));
    if (!c) return FK_ENOMEM;
    for (int r = 0; r < c->height; r++)
        memcpy(c->rgb + (size_t)r * c->stride, src->rgb + (size_t)(y0 + r) * src->stride + 3 * (size_t)x0,
               (size_t)c->stride);
    *out = c;
    return FK_OK;
}

/* Output pixel (x, y) takes source (sx, sy) = (ax*x + bx*y + cx, ay*x + by*y + cy): the eight EXIF
 * orientations are the eight such maps with coefficients in {-1, 0, 1}. */
int fk_image_orient(const fk_image_t *src, int o, fk_image_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!image_ok(src) || o < 1 || o > 8) return FK_EINVAL;
    const int W = src->width, H = src->height;
    int ax, bx, cx, ay, by, cy;
    switch (o) {
    case 1: ax = 1, bx = 0, cx = 0, ay = 0, by = 1, cy = 0; break;
    case 2: ax = -1, bx = 0, cx = W - 1, ay = 0, by = 1, cy = 0; break;      /* mirror */
    case 3: ax = -1, bx = 0, cx = W - 1, ay = 0, by = -1, cy = H - 1; break; /* 180 */
    case 4: ax = 1, bx = 0, cx = 0, ay = 0, by = -1, cy = H - 1; break;      /* flip vertical */
    case 5: ax = 0, bx = 1, cx = 0, ay = 1, by = 0, cy = 0; break;           /* transpose */
    case 6: ax = 0, bx = 1, cx = 0, ay = -1, by = 0, cy = H - 1; break;      /* 90 clockwise */
    case 7: ax = 0, bx = -1, cx = W - 1, ay = -1, by = 0, cy = H - 1; break; /* transverse */
    default: ax = 0, bx = -1, cx = W - 1, ay = 1, by = 0, cy = 0; break;     /* 8: 90 counter-clockwise */
    }
    int ow = o >= 5 ? H : W, oh = o >= 5 ? W : H;
    fk_image_t *d = fk__image_new(ow, oh);
    if (!d) return FK_ENOMEM;
    const ptrdiff_t step = (ptrdiff_t)ax * 3 + (ptrdiff_t)ay * src->stride;
    for (int y = 0; y < oh; y++) {
        const uint8_t *s = src->rgb + (ptrdiff_t)(bx * y + cx) * 3 + (ptrdiff_t)(by * y + cy) * src->stride;
        uint8_t *dr = d->rgb + (size_t)y * d->stride;
        for (int x = 0; x < ow; x++, s += step) {
            dr[3 * x] = s[0];
            dr[3 * x + 1] = s[1];
            dr[3 * x + 2] = s[2];
        }
    }
    *out = d;
    return FK_OK;
}

int fk_image_flip_horizontal(const fk_image_t *src, fk_image_t **out) { return fk_image_orient(src, 2, out); }

int fk_image_rotate(const fk_image_t *src, int degrees, fk_image_t **out) {
    switch (degrees) {
    case 0: return fk_image_orient(src, 1, out);
    case 90: return fk_image_orient(src, 6, out);
    case 180: return fk_image_orient(src, 3, out);
    case 270: return fk_image_orient(src, 8, out);
    default:
        if (out) *out = NULL;
        return FK_EINVAL;
    }
}

int fk_image_to_gray(const fk_image_t *img, uint8_t *gray, int gray_stride) {
    if (!image_ok(img) || !gray || gray_stride < img->width) return FK_EINVAL;
    for (int y = 0; y < img->height; y++) {
        const uint8_t *s = img->rgb + (size_t)y * img->stride;
        uint8_t *g = gray + (size_t)y * gray_stride;
        for (int x = 0; x < img->width; x++) /* Q14 BT.601 weights (4899 + 9617 + 1868 = 16384) */
            g[x] = (uint8_t)((s[3 * x] * 4899 + s[3 * x + 1] * 9617 + s[3 * x + 2] * 1868 + 8192) >> 14);
    }
    return FK_OK;
}
