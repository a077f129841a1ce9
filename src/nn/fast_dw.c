/*
 * fast_dw.c — NCHW depthwise convolution straight from the activations (nn layer, called from fast_conv.c;
 * reference fk__op_conv_ref, compared in tests/test_nn_fast_dw.c). The older path in fast_conv.c first copies
 * every channel into a zero-padded plane; on fr_detect's 120x160 maps that copy costs as much as the
 * convolution. Here borders are handled by masked loads (a masked-off lane reads nothing, so a vector may start
 * before or run past a row), rows outside the image are skipped, and three kernels cover the shapes MobileNet-
 * style models have:
 *   rows s1  stride 1: R output rows x U 16-column blocks per step; for 3x3 each input row vector is loaded
 *            once and feeds every output row it touches (weights live in registers).
 *   rows s2  stride 2, 3x3, no dilation: per input row and block, two or three loads de-interleaved into
 *            the even columns, the odd columns and the even columns shifted by one (taps kx = 0, 1, 2); each
 *            input row feeds the one or two output rows that use it.
 *   flat     small maps (fr_landmark's 8x8 and 4x4, fr_detect's 15x20 ...): the channel's output is treated as
 *            one flat run of Ho*Wo values in 16-lane vectors, so a 4x5 map uses 20 lanes instead of four 16-lane
 *            rows. Stride 1 with Wo == W: tap t of vector v is one masked load at a fixed offset (masks
 *            precomputed per vector and tap); other strides: one masked gather per vector and tap.
 *            Four (channel, vector) items are interleaved to hide the FMA latency.
 *   register 3x3 on maps of at most 64 values (fr_landmark's 4x4 and 8x8 -> 4x4, fr_eye's 5x5 and 3x3): the
 *            channel's plane is held in registers and each tap of each output vector is a lane permutation
 *            (indices and border masks precomputed); no tap re-reads memory. Loads, not FMAs, bound the flat
 *            kernels on these maps (measured: ~5 cycles per channel and tap, whatever the arithmetic).
 *   permute  stride 2 with at most 64 outputs (fr_landmark's 16x16 -> 8x8): per (output vector, tap) the lanes
 *            read two input vectors, permuted together; taps reading only padding are left out of the table.
 * Bias and the fused activation are applied before the store.
 */
#include "nn/fast.h"

#include <string.h>

#define DW_MAX_CHUNKS 16
#define FLAT_MAX_MASKS 8192 /* vectors * taps of the flat kernel's mask table */

enum { DW_ROWS_S1 = 1, DW_ROWS_S2, DW_FLAT_S1, DW_FLAT_GATHER, DW_PACK_S2, DW_SLOTS, DW_PERM, DW_REG, DW_SUM };
#define PERM_MAX_TAPS 1024 /* table entries of the permute kernel */
#define SLOTS_MAX_KW 8

/* Permute kernel: one (output vector, tap) pair whose lanes read at most two 16-value vectors of the channel */
typedef struct dw_tap {
    int32_t oa, ob;      /* offsets of the two input vectors in the channel plane */
    uint16_t la, lb, pm; /* their load masks (the plane's end), the lanes that read an input value */
    uint16_t t;          /* tap index ky * kw + kx */
} dw_tap;

struct fk__dw_conv {
    fk__conv_geom g;
    int kind;
    int nblk;         /* rows kernels: 16-column blocks per output row */
    int nvec;         /* flat kernels: 16-lane vectors per channel */
    dw_tap *taps;     /* permute: the nonzero (vector, tap) pairs, vector by vector; gidx: their lane indices */
    int *vstart;      /* permute: [nvec + 1] first entry of each output vector */
    float *w;         /* [C][kh*kw] */
    int *toff;        /* flat: per tap, offset of the input read by output lane 0 of vector 0 */
    uint16_t *masks;  /* flat: [nvec][taps] valid lanes; rows s1: [nblk][kw] valid lanes of each column load */
    int32_t *gidx;    /* flat gather: [nvec][16] input offset of each output lane's window origin;
                       * packed stride 2: [3][16] permute indices of taps kx = 0, 1, 2 */
};

void fk__dw_conv_free(fk__dw_conv *d) {
    if (!d) return;
    fk__free(d->w);
    fk__free(d->toff);
    fk__free(d->masks);
    fk__free(d->gidx);
    fk__free(d->taps);
    fk__free(d->vstart);
    fk__free(d);
}

/* lanes [lo, hi) of 16, clamped */
static uint16_t lanes16(int lo, int hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (uint16_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* The permute kernel's table for D (d->g, d->nvec set): returns 1 when built, 0 when some (vector, tap) pair
 * reads more than two input vectors or the table would be too long, -1 out of memory. */
static int perm_table(fk__dw_conv *d) {
    const fk__conv_geom *g = &d->g;
    int T = g->kh * g->kw, HW = g->H * g->W, HWo = g->Ho * g->Wo, nv = d->nvec;
    if ((long)nv * T > PERM_MAX_TAPS) return 0;
    d->taps = fk__malloc(sizeof(dw_tap) * (size_t)nv * T);
    d->gidx = fk__malloc(sizeof(int32_t) * 16 * (size_t)nv * T);
    d->vstart = fk__malloc(sizeof(int) * (size_t)(nv + 1));
    if (!d->taps || !d->gidx || !d->vstart) return -1;
    int n = 0;
    for (int v = 0; v < nv; v++) {
        d->vstart[v] = n;
        for (int t = 0; t < T; t++) {
            int ky = t / g->kw, kx = t % g->kw, src[16], qa = -1, qb = -1;
            for (int l = 0; l < 16; l++) {
                int p = v * 16 + l, oy = p / g->Wo, ox = p % g->Wo;
                int iy = oy * g->sh - g->pt + ky * g->dh, ix = ox * g->sw - g->pl + kx * g->dw;
                src[l] = p < HWo && iy >= 0 && iy < g->H && ix >= 0 && ix < g->W ? iy * g->W + ix : -1;
                if (src[l] < 0) continue;
                int qv = src[l] / 16;
                if (qa < 0 || qv == qa) qa = qv;
                else if (qb < 0 || qv == qb) qb = qv;
                else return 0;
            }
            if (qa < 0) continue; /* every lane reads padding */
            if (qb < 0) qb = qa;
            dw_tap *tp = &d->taps[n];
            tp->oa = qa * 16, tp->ob = qb * 16, tp->t = (uint16_t)t, tp->pm = 0;
            tp->la = lanes16(0, HW - qa * 16), tp->lb = lanes16(0, HW - qb * 16);
            for (int l = 0; l < 16; l++) {
                d->gidx[n * 16 + l] = src[l] < 0 ? 0 : src[l] / 16 == qa ? src[l] % 16 : 16 + src[l] % 16;
                if (src[l] >= 0) tp->pm |= (uint16_t)(1u << l);
            }
            n++;
        }
    }
    d->vstart[nv] = n;
    return 1;
}

/* The register kernel's table (3x3, HW <= 64, Ho*Wo <= 64): for every output vector v and tap t, the index of
 * the input value each lane reads (0..63, the plane as four vectors) in gidx[(v * 9 + t) * 16 + l], the lanes
 * that read one in masks[(v * 9 + t) * 2] and those reading vectors 2-3 in masks[(v * 9 + t) * 2 + 1]. */
static int reg_table(fk__dw_conv *d) {
    const fk__conv_geom *g = &d->g;
    int HWo = g->Ho * g->Wo, nv = d->nvec;
    d->gidx = fk__malloc(sizeof(int32_t) * 16 * 9 * (size_t)nv);
    d->masks = fk__malloc(sizeof(uint16_t) * 2 * 9 * (size_t)nv);
    if (!d->gidx || !d->masks) return -1;
    for (int v = 0; v < nv; v++)
        for (int t = 0; t < 9; t++) {
            int i = v * 9 + t;
            d->masks[2 * i] = d->masks[2 * i + 1] = 0;
            for (int l = 0; l < 16; l++) {
                int p = v * 16 + l, oy = p / g->Wo, ox = p % g->Wo;
                int iy = oy * g->sh - g->pt + (t / 3) * g->dh, ix = ox * g->sw - g->pl + (t % 3) * g->dw;
                int src = p < HWo && iy >= 0 && iy < g->H && ix >= 0 && ix < g->W ? iy * g->W + ix : -1;
                d->gidx[i * 16 + l] = src < 0 ? 0 : src;
                if (src >= 0) d->masks[2 * i] |= (uint16_t)(1u << l);
                if (src >= 32) d->masks[2 * i + 1] |= (uint16_t)(1u << l);
            }
        }
    return 1;
}

int fk__dw_conv_create(const fk__conv_geom *g, const float *w, fk__dw_conv **out) {
    *out = NULL;
    if (g->C != g->O || g->Ho < 1 || g->Wo < 1 || g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) return FK_OK;
    if (g->kh * g->kw > 64) return FK_OK;
    int T = g->kh * g->kw, HWo = g->Ho * g->Wo, nvec = (HWo + 15) / 16;
    int kind = 0;
    int s1 = g->sh == 1 && g->sw == 1;
    /* flat where rows would idle many lanes: Wo < 16, and 3x3 with 16 < Wo < 32 (fr_detect's 15x20); wider maps:
     * the rows kernels measured as fast or faster even where lanes idle */
    int small = g->Wo < 16 || (g->Wo % 16 && g->Wo < 32 && T == 9);
    int fits = nvec * T <= FLAT_MAX_MASKS;
    if (s1 && small && g->Wo == g->W && fits) kind = DW_FLAT_S1;
    else if (s1) kind = DW_ROWS_S1;
    else if (g->sh == 2 && g->sw == 2 && g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && g->pt == 1 &&
             g->pl == 1 && g->Wo == 4 && g->W == 8)
        kind = DW_PACK_S2; /* fr_landmark's 8x8 -> 4x4: four output rows per vector (for 16 -> 8 the rows kernel
                            * measured faster) */
    else if (g->sh == 2 && g->sw == 2 && g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1) kind = DW_ROWS_S2;
    else if (small && fits) kind = DW_FLAT_GATHER; /* a gather per tap: only where nothing better applies */
    /* small maps, 3x3: the register kernel where its taps are one permutation each (the input fits two vectors)
     * or where the other kernels waste most lanes (stride 2); stride 2 on maps up to 64 outputs: the permute
     * kernel (when each tap reads at most two vectors; else the kinds above) */
    /* 3x3 pad 1, stride 1 same width or stride 2: the summed-taps kernel where the rows kernels would run, and
     * in place of flat from 14 columns on (fr_detect's 15x20, fr_feature's 28x28 and 14x14 measured 10-30%
     * faster; 7x7 slower) */
    int k3p1 = g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && g->pl == 1;
    if (k3p1 && ((kind == DW_ROWS_S1 && g->Wo == g->W) || kind == DW_ROWS_S2 ||
                 (kind == DW_FLAT_S1 && g->Wo == g->W && g->Wo >= 14)))
        kind = DW_SUM;
    int s2 = g->sh == 2 && g->sw == 2, old_kind = kind;
    if (T == 9 && HWo <= 64 && (g->H * g->W <= 32 || (s2 && g->H * g->W <= 64))) kind = DW_REG;
    else if (s2 && HWo <= 64) kind = DW_PERM;
    if (!kind) return FK_OK;
    fk__dw_conv *d = fk__calloc(1, sizeof *d);
    if (!d) return FK_ENOMEM;
    d->g = *g;
    d->kind = kind;
    d->nblk = (g->Wo + 15) / 16;
    d->nvec = nvec;
    d->w = fk__malloc(sizeof(float) * (size_t)g->C * T);
    if (!d->w) goto oom;
    memcpy(d->w, w, sizeof(float) * (size_t)g->C * T);
    if (kind == DW_PERM) {
        int rc = perm_table(d);
        if (rc < 0) goto oom;
        if (rc == 0) { /* some tap reads more than two vectors: the kind chosen without it */
            fk__free(d->taps), fk__free(d->gidx), fk__free(d->vstart);
            d->taps = NULL, d->gidx = NULL, d->vstart = NULL;
            d->kind = kind = old_kind;
            if (!kind) {
                fk__dw_conv_free(d);
                return FK_OK;
            }
        }
    }
    if (kind == DW_REG) {
        if (reg_table(d) < 0) goto oom;
    } else if (kind == DW_PACK_S2) {
        /* lane l: output row l / Wo of the group, column ox = l % Wo; in the 32 values of the group's input rows
         * (q = 16 / Wo rows of W = 2 Wo), tap kx reads value (l / Wo) * W + 2 ox - 1 + kx (none for ox = 0, kx = 0) */
        d->gidx = fk__malloc(sizeof(int32_t) * 48);
        if (!d->gidx) goto oom;
        for (int l = 0; l < 16; l++) {
            int j = l / g->Wo, ox = l % g->Wo;
            for (int kx = 0; kx < 3; kx++) {
                int v = j * g->W + 2 * ox - 1 + kx;
                d->gidx[kx * 16 + l] = v < 0 || (kx == 0 && ox == 0) ? 0 : v;
            }
        }
    } else if (kind == DW_SUM) {
        int nv = g->sh == 2 ? 2 * d->nblk : d->nblk;
        d->masks = fk__malloc(sizeof(uint16_t) * (size_t)nv);
        if (!d->masks) goto oom;
        for (int v = 0; v < nv; v++) d->masks[v] = lanes16(0, g->W - v * 16);
    } else if (kind == DW_ROWS_S1) {
        d->masks = fk__malloc(sizeof(uint16_t) * (size_t)d->nblk * g->kw);
        if (!d->masks) goto oom;
        for (int b = 0; b < d->nblk; b++)
            for (int kx = 0; kx < g->kw; kx++) {
                int i0 = b * 16 - g->pl + kx * g->dw; /* input column of lane 0 */
                d->masks[b * g->kw + kx] = lanes16(-i0, g->W - i0);
            }
    } else if (kind == DW_FLAT_S1 || kind == DW_FLAT_GATHER) {
        d->toff = fk__malloc(sizeof(int) * (size_t)T);
        d->masks = fk__malloc(sizeof(uint16_t) * (size_t)nvec * T);
        if (kind == DW_FLAT_GATHER) d->gidx = fk__malloc(sizeof(int32_t) * (size_t)nvec * 16);
        if (!d->toff || !d->masks || (kind == DW_FLAT_GATHER && !d->gidx)) goto oom;
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++)
                d->toff[ky * g->kw + kx] = (ky * g->dh - g->pt) * g->W + kx * g->dw - g->pl;
        for (int v = 0; v < nvec; v++) {
            for (int t = 0; t < T; t++) d->masks[(size_t)v * T + t] = 0;
            for (int l = 0; l < 16; l++) {
                int p = v * 16 + l;
                if (d->gidx) d->gidx[v * 16 + l] = 0;
                if (p >= HWo) continue;
                int oy = p / g->Wo, ox = p % g->Wo;
                if (d->gidx) d->gidx[v * 16 + l] = oy * g->sh * g->W + ox * g->sw;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->sh - g->pt + ky * g->dh, ix = ox * g->sw - g->pl + kx * g->dw;
                        if (iy >= 0 && iy < g->H && ix >= 0 && ix < g->W)
                            d->masks[(size_t)v * T + ky * g->kw + kx] |= (uint16_t)(1u << l);
                    }
            }
        }
    }
    *out = d;
    return FK_OK;
oom:
    fk__dw_conv_free(d);
    return FK_ENOMEM;
}

#ifdef FK_HAVE_X86

static inline __attribute__((always_inline)) FK_AVX512 void store_out(const fk__epilogue *e, int c, __m512 acc,
                                                                       float *dst, __mmask16 m) {
    __m512 v = _mm512_add_ps(acc, _mm512_set1_ps(e->bias[c]));
    __m512 sl = e->slope ? _mm512_set1_ps(e->slope[c]) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst, m, fk__act_vec(e, v, sl));
}

/* ---- rows, stride 1 ------------------------------------------------------------------------------------ */

/* 3x3, no dilation: R output rows from R + 2 input rows, U column blocks; each input vector is loaded once
 * per step and used for every (output row, tap row) pair it belongs to. */
static inline __attribute__((always_inline)) FK_AVX512 void rows3_step(const fk__dw_conv *d, const fk__epilogue *e,
                                                                       const float *xc, float *yc, int c,
                                                                       const __m512 *w9, int oy, int bk,
                                                                       const int U) {
    const fk__conv_geom *g = &d->g;
    enum { R = 4 };
    __m512 acc[R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int u = 0; u < U; u++) acc[r][u] = _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < R + 2; i++) {
        int iy = oy - g->pt + i;
        if (iy < 0 || iy >= g->H) continue;
        const float *xr = xc + (size_t)iy * g->W;
#pragma GCC unroll 2
        for (int u = 0; u < U; u++) {
            int b = bk + u, i0 = b * 16 - g->pl;
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                __m512 v = _mm512_maskz_loadu_ps(d->masks[b * 3 + kx], xr + i0 + kx);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    if (i - r >= 0 && i - r < 3) acc[r][u] = _mm512_fmadd_ps(v, w9[(i - r) * 3 + kx], acc[r][u]);
            }
        }
    }
    /* the next row group's new input rows: L3 is far, and the hardware prefetcher misses these six-row walks */
#pragma GCC unroll 4
    for (int i = R + 2; i < 2 * R + 2; i++)
#pragma GCC unroll 2
        for (int u = 0; u < U; u++) {
            const char *pf = (const char *)(xc + (size_t)(oy - g->pt + i) * g->W + (bk + u) * 16);
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 63, _MM_HINT_T0);
        }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        if (oy + r >= g->Ho) break;
#pragma GCC unroll 2
        for (int u = 0; u < U; u++) {
            int x0 = (bk + u) * 16;
            store_out(e, c, acc[r][u], yc + (size_t)(oy + r) * g->Wo + x0, lanes16(0, g->Wo - x0));
        }
    }
}

static FK_AVX512 void dw_rows_s1(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0,
                                 int c1) {
    const fk__conv_geom *g = &d->g;
    int T = g->kh * g->kw;
    int k3 = g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * g->H * g->W, *wc = d->w + (size_t)c * T;
        float *yc = y + (size_t)c * g->Ho * g->Wo;
        if (k3) {
            __m512 w9[9];
#pragma GCC unroll 9
            for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(wc[k]);
            for (int oy = 0; oy < g->Ho; oy += 4) {
                int bk = 0;
                for (; bk + 2 <= d->nblk; bk += 2) rows3_step(d, e, xc, yc, c, w9, oy, bk, 2);
                if (bk < d->nblk) rows3_step(d, e, xc, yc, c, w9, oy, bk, 1);
            }
            continue;
        }
        /* any other kernel: one output row, two blocks at a time */
        for (int oy = 0; oy < g->Ho; oy++)
            for (int bk = 0; bk < d->nblk; bk += 2) {
                int two = bk + 1 < d->nblk;
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
                for (int ky = 0; ky < g->kh; ky++) {
                    int iy = oy - g->pt + ky * g->dh;
                    if (iy < 0 || iy >= g->H) continue;
                    const float *xr = xc + (size_t)iy * g->W;
                    for (int kx = 0; kx < g->kw; kx++) {
                        __m512 wv = _mm512_set1_ps(wc[ky * g->kw + kx]);
                        int i0 = bk * 16 - g->pl + kx * g->dw;
                        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(d->masks[bk * g->kw + kx], xr + i0), wv, a0);
                        if (two)
                            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(d->masks[(bk + 1) * g->kw + kx], xr + i0 + 16),
                                                 wv, a1);
                    }
                }
                float *yr = yc + (size_t)oy * g->Wo + bk * 16;
                store_out(e, c, a0, yr, lanes16(0, g->Wo - bk * 16));
                if (two) store_out(e, c, a1, yr + 16, lanes16(0, g->Wo - bk * 16 - 16));
            }
    }
}

/* ---- rows, stride 2, 3x3 --------------------------------------------------------------------------------- */

/* The three tap vectors of input row XR for output columns [16*b, 16*b + 16): columns 2*ox - pl + kx. */
static inline __attribute__((always_inline)) FK_AVX512 void s2_taps(const fk__dw_conv *d, const float *xr, int b,
                                                                    __m512 *t0, __m512 *t1, __m512 *t2) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i sh1 = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
    int W = d->g.W, i0 = 32 * b - d->g.pl;
    __m512 a = _mm512_maskz_loadu_ps(lanes16(-i0, W - i0), xr + i0);
    __m512 bb = _mm512_maskz_loadu_ps(lanes16(-i0 - 16, W - i0 - 16), xr + i0 + 16);
    __m512 cc = _mm512_maskz_loadu_ps(lanes16(-i0 - 32, W - i0 - 32) & 1, xr + i0 + 32);
    __m512 e0 = _mm512_permutex2var_ps(a, even, bb);
    *t0 = e0;
    *t1 = _mm512_permutex2var_ps(a, odd, bb);
    *t2 = _mm512_permutex2var_ps(e0, sh1, cc);
}

static FK_AVX512 void dw_rows_s2(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0,
                                 int c1) {
    const fk__conv_geom *g = &d->g;
    enum { R = 4 }; /* output rows per step: input rows 2*oy - pt .. 2*(oy + R - 1) - pt + 2 */
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * g->H * g->W, *wc = d->w + (size_t)c * 9;
        float *yc = y + (size_t)c * g->Ho * g->Wo;
        __m512 w9[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(wc[k]);
        for (int oy = 0; oy < g->Ho; oy += R)
            for (int b = 0; b < d->nblk; b++) {
                __m512 acc[R];
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 9
                for (int i = 0; i < 2 * R + 1; i++) {
                    int iy = 2 * oy - g->pt + i;
                    if (iy < 0 || iy >= g->H) continue;
                    __m512 t0, t1, t2;
                    s2_taps(d, xc + (size_t)iy * g->W, b, &t0, &t1, &t2);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++) {
                        int ky = i - 2 * r;
                        if (ky < 0 || ky > 2) continue;
                        acc[r] = _mm512_fmadd_ps(t0, w9[ky * 3], acc[r]);
                        acc[r] = _mm512_fmadd_ps(t1, w9[ky * 3 + 1], acc[r]);
                        acc[r] = _mm512_fmadd_ps(t2, w9[ky * 3 + 2], acc[r]);
                    }
                }
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    if (oy + r >= g->Ho) break;
                    store_out(e, c, acc[r], yc + (size_t)(oy + r) * g->Wo + b * 16, lanes16(0, g->Wo - b * 16));
                }
            }
    }
}

/* ---- summed taps: 3x3, pad 1 left, no dilation, stride 1 (Wo == W) or 2 ---------------------------------- */

/* One output row per pass over a channel's row (the method of fast_dw_fuse.c's dw_row): each input row is
 * loaded once per 16 columns instead of once per tap at three misaligned addresses. Per block the three weight
 * columns are summed over the kernel rows first (P0, P1, P2 for taps kx = 0, 1, 2 on unshifted columns), then
 * the outer two sums are shifted one lane into place with the neighbour block's edge lane (valignd): two
 * shuffles per output vector instead of six loads. Columns past the row and rows outside the map load as
 * zeros, which is the padding. Stride 2 splits a block's two input vectors into the even columns (tap 1) and
 * odd columns (tap 2); tap 0 is the odd columns one lane later, the previous block's last odd column entering
 * lane 0. ACT is a constant where this is inlined (none, ReLU, PReLU) or -1 (any, through fk__act_vec): a
 * switch per stored vector was a good part of the time. */

/* the three column sums of one 16-column input vector of each kernel row */
#define SUM3(x0, x1, x2, p0, p1, p2)                                                                                 \
    do {                                                                                                             \
        p0 = _mm512_fmadd_ps(x2, w9[6], _mm512_fmadd_ps(x1, w9[3], _mm512_mul_ps(x0, w9[0])));                       \
        p1 = _mm512_fmadd_ps(x2, w9[7], _mm512_fmadd_ps(x1, w9[4], _mm512_mul_ps(x0, w9[1])));                       \
        p2 = _mm512_fmadd_ps(x2, w9[8], _mm512_fmadd_ps(x1, w9[5], _mm512_mul_ps(x0, w9[2])));                       \
    } while (0)

/* lanes N.. of LO then HI (valignd); a macro: the shift must be a constant expression for clang */
#define SHIFT_IN(hi, lo, n) _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), n))

static inline __attribute__((always_inline)) FK_AVX512 void dw_sum_act(const fk__dw_conv *d, const fk__epilogue *e,
                                                                       const float *x, float *y, int c0, int c1,
                                                                       const int act) {
    const fk__conv_geom *g = &d->g;
    int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, nblk = d->nblk, s2 = g->sh == 2;
    __mmask16 mlast = lanes16(0, Wo - (nblk - 1) * 16);
    const uint16_t *lm = d->masks; /* per 16-column input vector of a row: its lanes inside the row */
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W, *wc = d->w + (size_t)c * 9;
        float *yc = y + (size_t)c * Ho * Wo;
        __m512 w9[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(wc[k]);
        __m512 bias = _mm512_set1_ps(e->bias[c]), slope = e->slope ? _mm512_set1_ps(e->slope[c]) : bias;
        if (!s2) {
            /* two output rows per pass: their four input rows are loaded once for both */
            for (int oy = 0; oy < Ho; oy += 2) {
                int two = oy + 1 < Ho;
                const float *r[4];
                __mmask16 rv[4]; /* all lanes, or none for a row outside the map (its loads read nothing) */
                for (int k = 0; k < 4; k++) {
                    int iy = oy - g->pt + k, in = iy >= 0 && iy < H && (k < 3 || two);
                    r[k] = xc + (size_t)(in ? iy : 0) * W;
                    rv[k] = in ? 0xFFFF : 0;
                }
                float *ya = yc + (size_t)oy * Wo, *yb = ya + Wo;
                /* P of block b + 1 is computed before block b is stored: its P2 lane 0 is block b's last tap */
                __m512 a0l = _mm512_setzero_ps(), b0l = a0l, a0, a1, a2, b0, b1, b2;
                {
                    __m512 x0 = _mm512_maskz_loadu_ps(rv[0] & lm[0], r[0]);
                    __m512 x1 = _mm512_maskz_loadu_ps(rv[1] & lm[0], r[1]);
                    __m512 x2 = _mm512_maskz_loadu_ps(rv[2] & lm[0], r[2]);
                    __m512 x3 = _mm512_maskz_loadu_ps(rv[3] & lm[0], r[3]);
                    SUM3(x0, x1, x2, a0, a1, a2);
                    SUM3(x1, x2, x3, b0, b1, b2);
                }
                for (int b = 0; b < nblk; b++) {
                    __m512 qa0 = _mm512_setzero_ps(), qa1 = qa0, qa2 = qa0, qb0 = qa0, qb1 = qa0, qb2 = qa0;
                    if (b + 1 < nblk) {
                        int o = (b + 1) * 16;
                        __m512 x0 = _mm512_maskz_loadu_ps(rv[0] & lm[b + 1], r[0] + o);
                        __m512 x1 = _mm512_maskz_loadu_ps(rv[1] & lm[b + 1], r[1] + o);
                        __m512 x2 = _mm512_maskz_loadu_ps(rv[2] & lm[b + 1], r[2] + o);
                        __m512 x3 = _mm512_maskz_loadu_ps(rv[3] & lm[b + 1], r[3] + o);
                        SUM3(x0, x1, x2, qa0, qa1, qa2);
                        SUM3(x1, x2, x3, qb0, qb1, qb2);
                    }
                    __mmask16 m = b + 1 < nblk ? 0xFFFF : mlast;
                    __m512 va = _mm512_add_ps(_mm512_add_ps(SHIFT_IN(a0, a0l, 15), a1), SHIFT_IN(qa2, a2, 1));
                    _mm512_mask_storeu_ps(ya + b * 16, m, fk__bias_act_vec(e, act, va, bias, slope));
                    if (two) {
                        __m512 vb = _mm512_add_ps(_mm512_add_ps(SHIFT_IN(b0, b0l, 15), b1), SHIFT_IN(qb2, b2, 1));
                        _mm512_mask_storeu_ps(yb + b * 16, m, fk__bias_act_vec(e, act, vb, bias, slope));
                    }
                    a0l = a0, a0 = qa0, a1 = qa1, a2 = qa2;
                    b0l = b0, b0 = qb0, b1 = qb1, b2 = qb2;
                }
            }
            continue;
        }
        for (int oy = 0; oy < Ho; oy++) {
            const float *r[3];
            __mmask16 rv[3]; /* all lanes, or none for a row outside the map (its loads read nothing) */
            for (int ky = 0; ky < 3; ky++) {
                int iy = oy * 2 - g->pt + ky;
                int in = iy >= 0 && iy < H;
                r[ky] = xc + (size_t)(in ? iy : 0) * W;
                rv[ky] = in ? 0xFFFF : 0;
            }
            float *yr = yc + (size_t)oy * Wo;
            __m512 p0l = _mm512_setzero_ps();
            for (int b = 0; b < nblk; b++) {
                int o = b * 32;
                __m512 ev[3], od[3];
#pragma GCC unroll 3
                for (int ky = 0; ky < 3; ky++) {
                    __m512 a = _mm512_maskz_loadu_ps(rv[ky] & lm[2 * b], r[ky] + o);
                    __m512 bb = _mm512_maskz_loadu_ps(rv[ky] & lm[2 * b + 1], r[ky] + o + 16);
                    ev[ky] = _mm512_permutex2var_ps(a, even, bb), od[ky] = _mm512_permutex2var_ps(a, odd, bb);
                }
                __m512 p0 = _mm512_fmadd_ps(od[2], w9[6], _mm512_fmadd_ps(od[1], w9[3], _mm512_mul_ps(od[0], w9[0])));
                __m512 p1 = _mm512_fmadd_ps(ev[2], w9[7], _mm512_fmadd_ps(ev[1], w9[4], _mm512_mul_ps(ev[0], w9[1])));
                __m512 p2 = _mm512_fmadd_ps(od[2], w9[8], _mm512_fmadd_ps(od[1], w9[5], _mm512_mul_ps(od[0], w9[2])));
                __m512 v = _mm512_add_ps(_mm512_add_ps(SHIFT_IN(p0, p0l, 15), p1), p2);
                _mm512_mask_storeu_ps(yr + b * 16, b + 1 < nblk ? 0xFFFF : mlast, fk__bias_act_vec(e, act, v, bias, slope));
                p0l = p0;
            }
        }
    }
}

#undef SUM3

static FK_AVX512 void dw_sum(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0, int c1) {
    switch (e->act) {
    case FK__ACT_NONE: dw_sum_act(d, e, x, y, c0, c1, FK__ACT_NONE); break;
    case FK__ACT_RELU: dw_sum_act(d, e, x, y, c0, c1, FK__ACT_RELU); break;
    case FK__ACT_PRELU: dw_sum_act(d, e, x, y, c0, c1, FK__ACT_PRELU); break;
    default: dw_sum_act(d, e, x, y, c0, c1, -1); break;
    }
}

/* ---- packed stride 2: W = 2 Wo, Wo = 4 (written for 8 too) --------------------------------------------------------------- */

/* A vector holds q = 16 / Wo whole output rows. For each kernel row its q input rows (2 Wo values each) are
 * loaded into two vectors, and each tap is one permute of the pair (kx = 0 with the first column of every row
 * zeroed: the left padding). */
static FK_AVX512 void dw_pack_s2(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0,
                                 int c1) {
    const fk__conv_geom *g = &d->g;
    int W = g->W, H = g->H, Wo = g->Wo, Ho = g->Ho, q = 16 / Wo, HWo = Ho * Wo;
    const __m512i i0 = _mm512_loadu_si512(d->gidx), i1 = _mm512_loadu_si512(d->gidx + 16),
                  i2 = _mm512_loadu_si512(d->gidx + 32);
    __mmask16 m0 = 0;
    for (int l = 0; l < 16; l++)
        if (l % Wo) m0 |= (__mmask16)(1u << l);
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W, *wc = d->w + (size_t)c * 9;
        __m512 w9[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(wc[k]);
        for (int r = 0; r < Ho; r += q) {
            __m512 acc = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps();
#pragma GCC unroll 3
            for (int ky = 0; ky < 3; ky++) {
                __m512 v[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
                for (int j = 0; j < q; j++) { /* row j of the group: lanes [(j % (q/2)) * W, + W) of vector j / (q/2) */
                    int iy = 2 * (r + j) - 1 + ky, at = (j % (q / 2)) * W;
                    if (iy < 0 || iy >= H || r + j >= Ho) continue;
                    __mmask16 mj = (__mmask16)(((1u << W) - 1) << at);
                    v[j / (q / 2)] = _mm512_mask_loadu_ps(v[j / (q / 2)], mj, xc + (size_t)iy * W - at);
                }
                acc = _mm512_fmadd_ps(_mm512_maskz_permutex2var_ps(m0, v[0], i0, v[1]), w9[ky * 3], acc);
                acc2 = _mm512_fmadd_ps(_mm512_permutex2var_ps(v[0], i1, v[1]), w9[ky * 3 + 1], acc2);
                acc = _mm512_fmadd_ps(_mm512_permutex2var_ps(v[0], i2, v[1]), w9[ky * 3 + 2], acc);
            }
            store_out(e, c, _mm512_add_ps(acc, acc2), y + (size_t)c * HWo + (size_t)r * Wo,
                      (__mmask16)lanes16(0, HWo - r * Wo));
        }
    }
}

/* ---- registers: 3x3 on maps of at most 64 values ---------------------------------------------------------- */

/* The channel's whole input plane sits in four registers (NI4: two suffice, HW <= 32) and its nine weights in
 * nine: each tap of each output vector is one permutation of the pair of input vectors (NI4: of both pairs,
 * merged by the table's mask), with no load but the table's indices. */
static inline __attribute__((always_inline)) FK_AVX512 void reg_chan(const fk__dw_conv *d, const fk__epilogue *e,
                                                                     const float *xc, float *yc, int c,
                                                                     const float *wc, const int NI4) {
    const fk__conv_geom *g = &d->g;
    int HW = g->H * g->W, HWo = g->Ho * g->Wo;
    __m512 in0 = _mm512_maskz_loadu_ps(lanes16(0, HW), xc), in1 = _mm512_maskz_loadu_ps(lanes16(0, HW - 16), xc + 16);
    __m512 in2 = _mm512_setzero_ps(), in3 = in2;
    if (NI4) in2 = _mm512_maskz_loadu_ps(lanes16(0, HW - 32), xc + 32), in3 = _mm512_maskz_loadu_ps(lanes16(0, HW - 48), xc + 48);
    __m512 w9[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++) w9[t] = _mm512_set1_ps(wc[t]);
    for (int v = 0; v < d->nvec; v++) {
        __m512 acc[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        const int32_t *ti = d->gidx + v * 9 * 16;
        const uint16_t *tm = d->masks + v * 9 * 2;
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) {
            __m512i ix = _mm512_loadu_si512(ti + t * 16);
            __m512 tap = _mm512_maskz_permutex2var_ps(tm[2 * t], in0, ix, in1);
            if (NI4) tap = _mm512_mask_mov_ps(tap, tm[2 * t + 1], _mm512_maskz_permutex2var_ps(tm[2 * t], in2, ix, in3));
            acc[t % 3] = _mm512_fmadd_ps(tap, w9[t], acc[t % 3]);
        }
        store_out(e, c, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2]), yc + v * 16,
                  (__mmask16)lanes16(0, HWo - v * 16));
    }
}

static FK_AVX512 void dw_reg(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0, int c1) {
    const fk__conv_geom *g = &d->g;
    int HW = g->H * g->W, HWo = g->Ho * g->Wo;
    for (int c = c0; c < c1; c++) {
        if (HW > 32) reg_chan(d, e, x + (size_t)c * HW, y + (size_t)c * HWo, c, d->w + (size_t)c * 9, 1);
        else reg_chan(d, e, x + (size_t)c * HW, y + (size_t)c * HWo, c, d->w + (size_t)c * 9, 0);
    }
}

/* ---- permute: small maps, any stride ------------------------------------------------------------------------ */

/* Four channels at a time; per output vector, each table entry is two loads per channel, one lane permutation
 * and one FMA. */
static FK_AVX512 void dw_perm(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0, int c1) {
    const fk__conv_geom *g = &d->g;
    int T = g->kh * g->kw, HW = g->H * g->W, HWo = g->Ho * g->Wo, nv = d->nvec;
    enum { G = 8 };
    for (int c = c0; c < c1; c += G) {
        int cc[G];
        const float *xk[G], *wk[G];
        for (int k = 0; k < G; k++) {
            cc[k] = c + k < c1 ? c + k : c1 - 1; /* a short last group repeats a channel */
            xk[k] = x + (size_t)cc[k] * HW, wk[k] = d->w + (size_t)cc[k] * T;
        }
        for (int v = 0; v < nv; v++) {
            __m512 acc[G];
#pragma GCC unroll 8
            for (int k = 0; k < G; k++) acc[k] = _mm512_setzero_ps();
            for (int i = d->vstart[v]; i < d->vstart[v + 1]; i++) {
                const dw_tap *tp = &d->taps[i];
                __m512i ix = _mm512_loadu_si512(d->gidx + i * 16);
                __mmask16 pm = tp->pm, la = tp->la, lb = tp->lb;
                int oa = tp->oa, ob = tp->ob, t = tp->t;
#pragma GCC unroll 8
                for (int k = 0; k < G; k++)
                    acc[k] = _mm512_fmadd_ps(_mm512_maskz_permutex2var_ps(pm, _mm512_maskz_loadu_ps(la, xk[k] + oa), ix,
                                                                          _mm512_maskz_loadu_ps(lb, xk[k] + ob)),
                                             _mm512_set1_ps(wk[k][t]), acc[k]);
            }
            __mmask16 mo = (__mmask16)lanes16(0, HWo - v * 16);
#pragma GCC unroll 8
            for (int k = 0; k < G; k++) store_out(e, cc[k], acc[k], y + (size_t)cc[k] * HWo + v * 16, mo);
        }
    }
}

/* ---- flat: small maps ------------------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) FK_AVX512 void dw_flat(const fk__dw_conv *d, const fk__epilogue *e,
                                                                    const float *x, float *y, int c0, int c1,
                                                                    const int gather) {
    const fk__conv_geom *g = &d->g;
    int T = g->kh * g->kw, nv = d->nvec, HW = g->H * g->W, HWo = g->Ho * g->Wo;
    long n = (long)(c1 - c0) * nv;
    enum { G = 4 };
    for (long it = 0; it < n; it += G) {
        int cc[G], vv[G];
        __m512 acc[G];
        __m512i gi[G];
#pragma GCC unroll 4
        for (int k = 0; k < G; k++) {
            long j = it + k < n ? it + k : n - 1; /* a short last group recomputes its last item */
            cc[k] = c0 + (int)(j / nv), vv[k] = (int)(j % nv);
            acc[k] = _mm512_setzero_ps();
            gi[k] = gather ? _mm512_loadu_si512(d->gidx + vv[k] * 16) : _mm512_setzero_si512();
        }
        for (int t = 0; t < T; t++) {
#pragma GCC unroll 4
            for (int k = 0; k < G; k++) {
                __mmask16 m = d->masks[(size_t)vv[k] * T + t];
                const float *src = x + (size_t)cc[k] * HW + d->toff[t];
                __m512 v = gather ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, gi[k], src, 4)
                                  : _mm512_maskz_loadu_ps(m, src + vv[k] * 16);
                acc[k] = _mm512_fmadd_ps(v, _mm512_set1_ps(d->w[(size_t)cc[k] * T + t]), acc[k]);
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < G; k++)
            store_out(e, cc[k], acc[k], y + (size_t)cc[k] * HWo + vv[k] * 16, lanes16(0, HWo - vv[k] * 16));
    }
}

/* Flat, stride 1, 3x3: four channels at a time (four independent FMA chains), the nine tap offsets and each
 * vector's masks shared by the four, weights broadcast from memory; fewer instructions per FMA than the
 * generic item loop above, which is what bounds these small maps. */
static FK_AVX512 void dw_flat3(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0, int c1) {
    const fk__conv_geom *g = &d->g;
    int nv = d->nvec, HW = g->H * g->W, HWo = g->Ho * g->Wo;
    int to[9];
    for (int t = 0; t < 9; t++) to[t] = d->toff[t];
    for (int c = c0; c < c1; c += 4) {
        int cc[4];
        for (int k = 0; k < 4; k++) cc[k] = c + k < c1 ? c + k : c1 - 1; /* a short last group repeats a channel */
        const float *x0 = x + (size_t)cc[0] * HW, *x1 = x + (size_t)cc[1] * HW, *x2 = x + (size_t)cc[2] * HW,
                    *x3 = x + (size_t)cc[3] * HW;
        const float *w0 = d->w + (size_t)cc[0] * 9, *w1 = d->w + (size_t)cc[1] * 9, *w2 = d->w + (size_t)cc[2] * 9,
                    *w3 = d->w + (size_t)cc[3] * 9;
        for (int v = 0; v < nv; v++) {
            const uint16_t *mv = d->masks + (size_t)v * 9;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                __mmask16 m = mv[t];
                int off = v * 16 + to[t];
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x0 + off), _mm512_set1_ps(w0[t]), a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x1 + off), _mm512_set1_ps(w1[t]), a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x2 + off), _mm512_set1_ps(w2[t]), a2);
                a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x3 + off), _mm512_set1_ps(w3[t]), a3);
            }
            __mmask16 mo = (__mmask16)lanes16(0, HWo - v * 16);
            store_out(e, cc[0], a0, y + (size_t)cc[0] * HWo + v * 16, mo);
            store_out(e, cc[1], a1, y + (size_t)cc[1] * HWo + v * 16, mo);
            store_out(e, cc[2], a2, y + (size_t)cc[2] * HWo + v * 16, mo);
            store_out(e, cc[3], a3, y + (size_t)cc[3] * HWo + v * 16, mo);
        }
    }
}

static FK_AVX512 void dw_flat_s1(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0,
                                 int c1) {
    if (d->g.kh * d->g.kw == 9) dw_flat3(d, e, x, y, c0, c1);
    else dw_flat(d, e, x, y, c0, c1, 0);
}

static FK_AVX512 void dw_flat_gather(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, int c0,
                                     int c1) {
    dw_flat(d, e, x, y, c0, c1, 1);
}

typedef struct dw_run {
    const fk__dw_conv *d;
    const fk__epilogue *e;
    const float *x;
    float *y;
    int chunks;
} dw_run;

static void dw_task(void *arg, int i) {
    const dw_run *r = arg;
    const fk__dw_conv *d = r->d;
    int C = d->g.C, c0 = (int)((long)C * i / r->chunks), c1 = (int)((long)C * (i + 1) / r->chunks);
    switch (d->kind) {
    case DW_ROWS_S1: dw_rows_s1(d, r->e, r->x, r->y, c0, c1); break;
    case DW_ROWS_S2: dw_rows_s2(d, r->e, r->x, r->y, c0, c1); break;
    case DW_SUM: dw_sum(d, r->e, r->x, r->y, c0, c1); break;
    case DW_PACK_S2: dw_pack_s2(d, r->e, r->x, r->y, c0, c1); break;
    case DW_FLAT_S1: dw_flat_s1(d, r->e, r->x, r->y, c0, c1); break;
    case DW_REG: dw_reg(d, r->e, r->x, r->y, c0, c1); break;
    case DW_PERM: dw_perm(d, r->e, r->x, r->y, c0, c1); break;
    default: dw_flat_gather(d, r->e, r->x, r->y, c0, c1); break;
    }
}

void fk__dw_conv_run(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, fk__pool *pool,
                     int threads) {
    int chunks = threads < d->g.C ? threads : d->g.C;
    if (chunks > DW_MAX_CHUNKS) chunks = DW_MAX_CHUNKS;
    if (chunks < 1) chunks = 1;
    dw_run r = {d, e, x, y, chunks};
    if (chunks > 1) fk__pool_for(pool, threads, chunks, dw_task, &r);
    else dw_task(&r, 0);
}

#else

void fk__dw_conv_run(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, fk__pool *pool,
                     int threads) {
    (void)d, (void)e, (void)x, (void)y, (void)pool, (void)threads;
}

#endif
