/*
 * fast_conv.c — fast convolution (nn layer, above fast_gemm.c, called through fast.c). At model load the
 * weights are packed once for the path the node takes; a run does no allocation (im2col goes to the
 * session's scratch). Paths:
 *   NCHW, groups of any size except depthwise: Y[O x HW] = W[O x K] * X[K x HW]; 1x1/stride 1/no pad reads
 *     the activations in place, anything else goes through im2col. Weights are the packed A.
 *   NHWC, group 1: Y[HW x O] = X[HW x K] * W^T[K x O]; the activations are packed (im2col straight into
 *     MR-row panels), the weights are NR-wide packed B panels.
 *   Depthwise (group == C == O) in either layout: a direct kernel, vectorised along W (NCHW) or along C
 *     (NHWC), interior without bounds checks, borders scalar.
 * Bias and the fused activation (node->a.act) are applied before the store. Anything else (other channel
 * multipliers, non-constant weights, no AVX-512) has no fast path and runs the reference kernel.
 */
#include "nn/fast.h"

#include <string.h>

/* NCHW depthwise: one padded plane per parallel chunk in scratch, so at most this many chunks. */
#define DW_SMALL_OUT 64 /* NCHW depthwise with at most this many outputs per channel goes through NHWC */
#define DW_MAX_CHUNKS 16

enum conv_kind { CONV_NCHW_GEMM = 1, CONV_NHWC_GEMM, CONV_NCHW_DW, CONV_NHWC_DW, CONV_NCHW_SHIFT, CONV_NCHW_DIRECT };

typedef struct conv_prep {
    int kind;
    int C, O, H, W, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl, group, K;
    int direct;   /* NCHW 1x1, stride 1, no pad: the input is the B matrix */
    float *w;     /* packed weights */
    float *bias;  /* O values (zeros when the node has none) */
    float *slope; /* O PReLU slopes or NULL */
    fk__epilogue epi;
    int dw_hp, dw_wp; /* NCHW depthwise and shifted GEMM: padded plane size in scratch */
    int *toff;        /* shifted GEMM: offset of each tap in a padded plane */
    int dw_global;    /* depthwise whose kernel is the whole unpadded input (1x1 output) */
    int dw_u;         /* NCHW depthwise: column blocks per step (1, 2 or 4; rows = 4 / dw_u) */
    float *w_t;       /* NCHW depthwise on a small map: weights [kh*kw][C] for the channel-vector kernel */
    fk__direct_conv *direct_conv; /* CONV_NCHW_DIRECT: few input channels (fast_direct.c) */
    fk__dw_conv *dw_conv;         /* NCHW depthwise without padded planes (fast_dw.c) */
} conv_prep;

static void conv_prep_free(void *pv) {
    conv_prep *p = pv;
    if (!p) return;
    fk__free(p->w);
    fk__free(p->bias);
    fk__free(p->slope);
    fk__free(p->toff);
    fk__free(p->w_t);
    fk__direct_conv_free(p->direct_conv);
    fk__dw_conv_free(p->dw_conv);
    fk__free(p);
}

static const float *const_f32(const fk__graph *g, int id) {
    if (id < 0 || id >= g->nt) return NULL;
    const fk__tensor *t = &g->t[id];
    return t->kind == FK__T_CONST && t->dtype == FK__DT_F32 ? t->data : NULL;
}

#ifdef FK_HAVE_X86

static inline __mmask16 mask_n(int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* ---- NCHW: im2col and GEMM ------------------------------------------------------------------------- */

typedef struct conv_run {
    const conv_prep *p;
    const float *x;
    float *y;
    float *col;
    int c0, nc; /* im2col: channel range (one group) */
    int chunks;
} conv_run;

/* im2col of input channel C (of the current group) straight into NR-wide B panels: element (k, p) goes to
 * col[(p / NR) * K * NR + k * NR + p % NR], so the GEMM streams each panel contiguously. Each output row of
 * each tap is a zero run, a (strided) copy of part of an input row, and a zero run; runs are written a
 * vector at a time, split where they cross a panel. */
static FK_AVX512 void panel_run(float *dk, size_t pstride, int pix, int len, const float *src, int s) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    while (len > 0) {
        int j = pix % FK__GEMM_NR, take = FK__GEMM_NR - j;
        if (take > 16) take = 16;
        if (take > len) take = len;
        __mmask16 m = mask_n(take);
        float *d = dk + (size_t)(pix / FK__GEMM_NR) * pstride + j;
        __m512 v;
        if (!src) {
            v = _mm512_setzero_ps();
        } else if (s == 1) {
            v = _mm512_maskz_loadu_ps(m, src);
        } else if (s == 2) {
            int nel = 2 * take - 1;
            __m512 lo = _mm512_maskz_loadu_ps(mask_n(nel), src);
            __m512 hi = nel > 16 ? _mm512_maskz_loadu_ps(mask_n(nel - 16), src + 16) : _mm512_setzero_ps();
            v = _mm512_permutex2var_ps(lo, even, hi);
        } else {
            __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                             _mm512_set1_epi32(s));
            v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, src, 4);
        }
        _mm512_mask_storeu_ps(d, m, v);
        if (src) src += (size_t)take * s;
        pix += take;
        len -= take;
    }
}

/* Implicit im2col: writes columns [col0, col0 + nc) of the (C/group * kh * kw) x (Ho * Wo) im2col matrix of
 * one group as a K x NR panel, while the GEMM works through the previous one; the panel stays in L1/L2
 * instead of a whole-image im2col buffer being written and read back. */
typedef struct im2col_ctx {
    const conv_prep *p;
    const float *x; /* first input channel of the group */
} im2col_ctx;

static void pack_im2col(const void *ctxv, float *dst, int col0, int nc) {
    const im2col_ctx *ic = ctxv;
    const conv_prep *p = ic->p;
    int s = p->sw, Cg = p->C / p->group;
    for (int kx = 0; kx < p->kw; kx++) {
        int off = kx * p->dw - p->pl;
        /* output columns [oxa, oxb) read inside the row: 0 <= ox*s + off < W */
        int oxa = off < 0 ? (-off + s - 1) / s : 0;
        int oxb = p->W - off > 0 ? (p->W - off + s - 1) / s : 0;
        if (oxb > p->Wo) oxb = p->Wo;
        if (oxa > oxb) oxa = oxb;
        for (int c = 0; c < Cg; c++) {
            const float *xc = ic->x + (size_t)c * p->H * p->W;
            for (int ky = 0; ky < p->kh; ky++) {
                float *d = dst + (size_t)((c * p->kh + ky) * p->kw + kx) * FK__GEMM_NR;
                int pix = col0, rem = nc;
                while (rem > 0) {
                    int oy = pix / p->Wo, ox = pix - oy * p->Wo, seg = p->Wo - ox < rem ? p->Wo - ox : rem;
                    int rel = pix - col0, iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= p->H) {
                        panel_run(d, 0, rel, seg, NULL, s);
                    } else {
                        const float *xr = xc + (size_t)iy * p->W;
                        int a0 = ox > oxa ? ox : oxa, b0 = ox + seg < oxb ? ox + seg : oxb;
                        if (b0 < a0) a0 = b0 = ox + seg < oxa ? ox + seg : (ox > oxb ? ox : oxb);
                        if (a0 > ox) panel_run(d, 0, rel, a0 - ox, NULL, s);
                        if (b0 > a0) panel_run(d, 0, rel + (a0 - ox), b0 - a0, xr + a0 * s + off, s);
                        if (ox + seg > b0) panel_run(d, 0, rel + (b0 - ox), ox + seg - b0, NULL, s);
                    }
                    pix += seg;
                    rem -= seg;
                }
            }
        }
    }
}

/* Plain im2col for small K (K <= SMALL_IM2COL_K rows of Ho*Wo): rows are written sequentially, and the GEMM
 * walks them row-block-major. Used for first layers (3 input channels, stride 2) where per-panel packing
 * would cost as much as the multiply. */
#define SMALL_IM2COL_K 64

static FK_AVX512 void row_run(float *d, int len, const float *src, int s) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(s));
    for (int i = 0; i < len; i += 16, d += 16) {
        int take = len - i < 16 ? len - i : 16;
        __mmask16 m = mask_n(take);
        __m512 v;
        if (!src) v = _mm512_setzero_ps();
        else if (s == 1) v = _mm512_maskz_loadu_ps(m, src + i);
        else if (s == 2) {
            int nel = 2 * take - 1;
            __m512 lo = _mm512_maskz_loadu_ps(mask_n(nel), src + 2 * i);
            __m512 hi = nel > 16 ? _mm512_maskz_loadu_ps(mask_n(nel - 16), src + 2 * i + 16) : _mm512_setzero_ps();
            v = _mm512_permutex2var_ps(lo, even, hi);
        } else v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, src + (size_t)i * s, 4);
        _mm512_mask_storeu_ps(d, m, v);
    }
}

static void im2col_plain(const conv_prep *p, const float *x, float *col) {
    int s = p->sw, Cg = p->C / p->group, HWo = p->Ho * p->Wo;
    for (int c = 0; c < Cg; c++)
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                float *d = col + (size_t)((c * p->kh + ky) * p->kw + kx) * HWo;
                const float *xc = x + (size_t)c * p->H * p->W;
                int off = kx * p->dw - p->pl;
                int oxa = off < 0 ? (-off + s - 1) / s : 0;
                int oxb = p->W - off > 0 ? (p->W - off + s - 1) / s : 0;
                if (oxb > p->Wo) oxb = p->Wo;
                if (oxa > oxb) oxa = oxb;
                for (int oy = 0; oy < p->Ho; oy++, d += p->Wo) {
                    int iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= p->H) {
                        row_run(d, p->Wo, NULL, s);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * p->W;
                    if (oxa > 0) row_run(d, oxa, NULL, s);
                    if (oxb > oxa) row_run(d + oxa, oxb - oxa, xr + oxa * s + off, s);
                    if (oxb < p->Wo) row_run(d + oxb, p->Wo - oxb, NULL, s);
                }
            }
}

static int chunks_for(int threads, int n) { return threads < n ? threads : n; }

static void conv_nchw_gemm(const fk__run_ctx *cx, const conv_prep *p, const float *x, float *y) {
    int HW = p->H * p->W, HWo = p->Ho * p->Wo;
    int Cg = p->C / p->group, Og = p->O / p->group;
    size_t wsz = fk__gemm_packed_a_size(Og, p->K);
    for (int gi = 0; gi < p->group; gi++) {
        fk__epilogue e = p->epi;
        e.bias += gi * Og;
        if (e.slope) e.slope += gi * Og;
        im2col_ctx ic = {p, x + (size_t)gi * Cg * HW};
        fk__gemm_args ga = {Og, HWo, p->K, p->w + gi * wsz, ic.x, HWo, 0, y + (size_t)gi * Og * HWo, HWo, &e,
                            NULL, NULL, NULL, NULL, 0, 0, 0};
        if (!p->direct && p->K <= SMALL_IM2COL_K) {
            im2col_plain(p, ic.x, (float *)cx->scratch);
            ga.b = (const float *)cx->scratch;
        } else if (!p->direct) {
            ga.pack_b = pack_im2col;
            ga.pack_ctx = &ic;
            ga.bbuf = (float *)cx->scratch;
        }
        fk__gemm_avx512(&ga, cx->pool, cx->threads);
    }
}

static FK_AVX512 void dw_pad_plane(const conv_prep *p, const float *xc, float *xp);

/* Stride-1 k x k convolution without im2col ("shifted GEMM"): the input is copied once into zero-padded
 * planes of width Wp; outputs are computed on the Ho x Wp grid, where tap (ky, kx) of output n reads padded
 * position n + ky*dh*Wp + kx*dw, so every B row is a plain pointer into a plane. The Wp - Wo extra columns per
 * row are computed and dropped when the rows are compacted into Y. */
static void conv_nchw_shift(const fk__run_ctx *cx, const conv_prep *p, const float *x, float *y) {
    size_t plane = (size_t)p->dw_hp * p->dw_wp;
    float *xp = (float *)cx->scratch, *yp = xp + plane * p->C;
    int N = p->Ho * p->dw_wp;
    for (int c = 0; c < p->C; c++) dw_pad_plane(p, x + (size_t)c * p->H * p->W, xp + plane * c);
    fk__gemm_args ga = {p->O, N, p->K, p->w, xp, (ptrdiff_t)plane, 0, yp, N, &p->epi, NULL, NULL, NULL, p->toff,
                        p->kh * p->kw, 0, 0};
    if (p->Wo % FK__GEMM_NR == 0 || p->Wo == FK__GEMM_NR / 2) {
        /* whole column blocks per output row, or two 16-wide rows per block (fr_gender's 32- and 16-wide maps):
         * the GEMM takes them row by row from the planes and writes Y directly — no extra columns, no
         * compaction */
        ga.N = ga.ldc = p->Ho * p->Wo;
        ga.c = y;
        ga.bwo = p->Wo;
        ga.bwp = p->dw_wp;
        fk__gemm_avx512(&ga, cx->pool, cx->threads);
        return;
    }
    fk__gemm_avx512(&ga, cx->pool, cx->threads);
    for (int o = 0; o < p->O; o++)
        for (int oy = 0; oy < p->Ho; oy++)
            memcpy(y + ((size_t)o * p->Ho + oy) * p->Wo, yp + (size_t)o * N + (size_t)oy * p->dw_wp,
                   sizeof(float) * (size_t)p->Wo);
}

/* ---- NHWC: implicit im2col into A panels, packed weights as B ------------------------------------------ */

static void pack_nhwc_panel(const conv_prep *p, const float *x, float *d, int panel) {
    int HWo = p->Ho * p->Wo, C = p->C;
    for (int m = 0; m < FK__GEMM_MR; m++) {
        int pix = panel * FK__GEMM_MR + m;
        if (pix >= HWo) {
            for (int k = 0; k < p->K; k++) d[(size_t)k * FK__GEMM_MR + m] = 0.0f;
            continue;
        }
        int oy = pix / p->Wo, ox = pix % p->Wo;
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                int iy = oy * p->sh - p->pt + ky * p->dh, ix = ox * p->sw - p->pl + kx * p->dw;
                float *dk = d + (size_t)((ky * p->kw + kx) * C) * FK__GEMM_MR + m;
                if (iy < 0 || iy >= p->H || ix < 0 || ix >= p->W) {
                    for (int c = 0; c < C; c++) dk[(size_t)c * FK__GEMM_MR] = 0.0f;
                } else {
                    const float *s = x + ((size_t)iy * p->W + ix) * C;
                    for (int c = 0; c < C; c++) dk[(size_t)c * FK__GEMM_MR] = s[c];
                }
            }
    }
}

static void pack_nhwc_task(void *arg, int i) {
    const conv_run *r = arg;
    int np = (r->p->Ho * r->p->Wo + FK__GEMM_MR - 1) / FK__GEMM_MR;
    int p0 = (int)((long)np * i / r->chunks), p1 = (int)((long)np * (i + 1) / r->chunks);
    for (int q = p0; q < p1; q++) pack_nhwc_panel(r->p, r->x, r->col + (size_t)q * r->p->K * FK__GEMM_MR, q);
}

static void conv_nhwc_gemm(const fk__run_ctx *cx, const conv_prep *p, const float *x, float *y) {
    int HWo = p->Ho * p->Wo;
    int np = (HWo + FK__GEMM_MR - 1) / FK__GEMM_MR;
    conv_run r = {p, x, NULL, (float *)cx->scratch, 0, 0, chunks_for(cx->threads, np)};
    if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, pack_nhwc_task, &r);
    else pack_nhwc_task(&r, 0);
    fk__gemm_args ga = {HWo,  p->O, p->K, r.col, p->w, FK__GEMM_NR, (ptrdiff_t)p->K * FK__GEMM_NR, y, p->O, &p->epi,
                        NULL, NULL, NULL, NULL, 0, 0, 0};
    fk__gemm_avx512(&ga, cx->pool, cx->threads);
}

/* ---- depthwise ----------------------------------------------------------------------------------------- */


/* NCHW depthwise. Each channel is first copied into a zero-padded plane in scratch (Hp x Wp, with slack
 * right and below so whole vectors may be read past the last output): after that no tap needs a bounds
 * check or a mask. Output is done R rows x U 16-column blocks at a time, R*U independent accumulators to
 * hide the FMA latency. Stride 2 loads 32 consecutive values and keeps the even ones; larger strides
 * gather. */
static inline __attribute__((always_inline)) FK_AVX512 void dw_nchw_plane(const conv_prep *p, const float *xp,
                                                                          const float *wc, float *yc, int c,
                                                                          const int s, const int R, const int U,
                                                                          const int K3) {
    const fk__epilogue *e = &p->epi;
    const int kh = p->kh, kw = p->kw, Wp = p->dw_wp, Wo = p->Wo, Ho = p->Ho, nblk = (Wo + 15) / 16;
    const __m512 vb = _mm512_set1_ps(e->bias[c]);
    const __m512 vs = e->slope ? _mm512_set1_ps(e->slope[c]) : _mm512_setzero_ps();
    const __m512i gidx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(p->sw));
    /* 3x3, stride 1, no dilation: the nine weights stay in registers and each input row vector is loaded once
     * and used for every output row it feeds (R + 2 rows x 3 taps loads for R x 9 FMAs), so the loop is no
     * longer bound by loads (two per FMA: input and broadcast weight). */
    const int rows3 = s == 1 && K3 && p->sh == 1 && p->dh == 1 && p->dw == 1;
    __m512 w9[9];
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(K3 ? wc[k] : 0.0f);
    for (int oy = 0; oy < Ho; oy += R) {
        for (int bk = 0; bk < nblk; bk += U) {
            __m512 acc[4][4];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) acc[r][u] = _mm512_setzero_ps();
            if (rows3) {
                const float *b3 = xp + (size_t)oy * Wp + bk * 16;
#pragma GCC unroll 6
                for (int i = 0; i < R + 2; i++)
#pragma GCC unroll 3
                    for (int kx = 0; kx < 3; kx++)
#pragma GCC unroll 4
                        for (int u = 0; u < U; u++) {
                            __m512 v = _mm512_loadu_ps(b3 + (size_t)i * Wp + kx + u * 16);
#pragma GCC unroll 4
                            for (int r = 0; r < R; r++)
                                if (i - r >= 0 && i - r < 3) acc[r][u] = _mm512_fmadd_ps(v, w9[(i - r) * 3 + kx], acc[r][u]);
                        }
                goto store;
            }
            /* stride 2: the plane rows are split, even columns then odd ones (dw_pad_plane_s2) */
            const float *base = xp + (size_t)oy * p->sh * Wp + bk * 16 * (s == 1 || s == 2 ? 1 : p->sw);
            const size_t rstep = (size_t)p->sh * Wp;
            const int KH = K3 ? 3 : kh, KW = K3 ? 3 : kw;
#pragma GCC unroll 3
            for (int ky = 0; ky < KH; ky++) {
                const float *row = base + (size_t)ky * p->dh * Wp;
#pragma GCC unroll 3
                for (int kx = 0; kx < KW; kx++) {
                    const float *src = s == 2 ? row + (kx & 1) * ((Wp + 1) / 2) + (kx >> 1) : row + kx * p->dw;
                    __m512 wv = _mm512_set1_ps(wc[ky * kw + kx]);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                        for (int u = 0; u < U; u++) {
                            const float *q = src + r * rstep;
                            __m512 v;
                            if (s == 1) {
                                v = _mm512_loadu_ps(q + u * 16);
                            } else if (s == 2) {
                                v = _mm512_loadu_ps(q + u * 16);
                            } else {
                                v = _mm512_i32gather_ps(gidx, q + u * 16 * p->sw, 4);
                            }
                            acc[r][u] = _mm512_fmadd_ps(v, wv, acc[r][u]);
                        }
                }
            }
        store:
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                if (oy + r >= Ho) break;
                float *yr = yc + (size_t)(oy + r) * Wo;
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) {
                    int x0 = (bk + u) * 16, cnt = Wo - x0 < 16 ? Wo - x0 : 16;
                    if (cnt <= 0) break;
                    __m512 v = fk__act_vec(e, _mm512_add_ps(acc[r][u], vb), vs);
                    _mm512_mask_storeu_ps(yr + x0, mask_n(cnt), v);
                }
            }
        }
    }
}

typedef void (*dw_plane_fn)(const conv_prep *, const float *, const float *, float *, int);
#define DW_PLANE(sv, sname, R, U, K3)                                                                        \
    static FK_AVX512 void dw_plane_##sname##_##R##x##U##_##K3(const conv_prep *p, const float *xc,            \
                                                              const float *wc, float *yc, int c) {            \
        dw_nchw_plane(p, xc, wc, yc, c, sv, R, U, K3);                                                       \
    }
#define DW_PLANES(sv, sname, K3) DW_PLANE(sv, sname, 4, 1, K3) DW_PLANE(sv, sname, 2, 2, K3) DW_PLANE(sv, sname, 1, 4, K3)
DW_PLANES(1, s1, 0) DW_PLANES(2, s2, 0) DW_PLANES(3, sn, 0) DW_PLANES(1, s1, 1) DW_PLANES(2, s2, 1)
#define DW_ROW(sname, K3) {dw_plane_##sname##_4x1_##K3, dw_plane_##sname##_2x2_##K3, dw_plane_##sname##_1x4_##K3}
static const dw_plane_fn dw_planes[2][3][3] = {{DW_ROW(s1, 0), DW_ROW(s2, 0), DW_ROW(sn, 0)},
                                               {DW_ROW(s1, 1), DW_ROW(s2, 1), DW_ROW(sn, 0)}};

/* Padded columns [x, x + 16) of input row XR: the lanes inside the row are loaded, the padding lanes are 0. */
static inline __attribute__((always_inline)) FK_AVX512 __m512 padded_row_vec(const conv_prep *p, const float *xr, int x) {
    int lo = p->pl - x, hi = p->pl + p->W - x; /* lanes [lo, hi) come from the row */
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return _mm512_setzero_ps();
    __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    return _mm512_maskz_loadu_ps(m, xr + (x - p->pl));
}

/* Copies one channel into its zero-padded plane, a 16-lane vector at a time. */
static FK_AVX512 void dw_pad_plane(const conv_prep *p, const float *xc, float *xp) {
    int Wp = p->dw_wp;
    __m512 z = _mm512_setzero_ps();
    for (int y = 0; y < p->dw_hp; y++) {
        float *d = xp + (size_t)y * Wp;
        int iy = y - p->pt;
        if (iy < 0 || iy >= p->H) {
            for (int x = 0; x < Wp; x += 16) _mm512_mask_storeu_ps(d + x, mask_n(Wp - x), z);
            continue;
        }
        const float *xr = xc + (size_t)iy * p->W;
        for (int x = 0; x < Wp; x += 16) _mm512_mask_storeu_ps(d + x, mask_n(Wp - x), padded_row_vec(p, xr, x));
    }
}

/* Stride 2 (no dilation): the plane as dw_pad_plane makes it, but each row split into its even columns
 * [0, (Wp+1)/2) and then its odd ones, so that every tap of a stride-2 output vector is one plain load (tap kx
 * reads the even or odd half at kx/2) instead of two loads and a permute per tap and row. */
static FK_AVX512 void dw_pad_plane_s2(const conv_prep *p, const float *xc, float *xp) {
    int Wp = p->dw_wp, he = (Wp + 1) / 2, ho = Wp / 2;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    __m512 z = _mm512_setzero_ps();
    for (int y = 0; y < p->dw_hp; y++) {
        float *d = xp + (size_t)y * Wp;
        int iy = y - p->pt;
        if (iy < 0 || iy >= p->H) {
            for (int x = 0; x < Wp; x += 16) _mm512_mask_storeu_ps(d + x, mask_n(Wp - x), z);
            continue;
        }
        const float *xr = xc + (size_t)iy * p->W;
        for (int j = 0; j < he; j += 16) { /* padded columns [2j, 2j + 32) */
            __m512 v[2];
            for (int h = 0; h < 2; h++) v[h] = padded_row_vec(p, xr, 2 * j + 16 * h);
            _mm512_mask_storeu_ps(d + j, mask_n(he - j), _mm512_permutex2var_ps(v[0], even, v[1]));
            _mm512_mask_storeu_ps(d + he + j, mask_n(ho - j), _mm512_permutex2var_ps(v[0], odd, v[1]));
        }
    }
}

/* Global depthwise (the kernel covers the whole unpadded input, one output per channel: MobileFaceNet's GDC):
 * a dot product per channel, no padded plane. */
static FK_AVX512 void dw_global(const conv_prep *p, const float *x, float *y, int c0, int c1) {
    const fk__epilogue *e = &p->epi;
    int n = p->H * p->W;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * n, *wc = p->w + (size_t)c * n;
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = mask_n(n - i);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xc + i), _mm512_maskz_loadu_ps(m, wc + i), acc);
        }
        y[c] = fk__epi_apply(e, c, _mm512_reduce_add_ps(acc));
    }
}

static void dw_nchw_task(void *arg, int i) {
    const conv_run *r = arg;
    const conv_prep *p = r->p;
    int c0 = (int)((long)p->C * i / r->chunks), c1 = (int)((long)p->C * (i + 1) / r->chunks);
    if (p->dw_global) {
        dw_global(p, r->x, r->y, c0, c1);
        return;
    }
    int split = p->sw == 2 && p->dw == 1; /* the split-row stride-2 kernel; dilated stride 2 gathers */
    dw_plane_fn plane = dw_planes[p->kh == 3 && p->kw == 3][p->sw == 1 ? 0 : split ? 1 : 2][p->dw_u == 1 ? 0 : p->dw_u == 2 ? 1 : 2];
    float *xp = r->col + (size_t)i * p->dw_hp * p->dw_wp; /* this chunk's plane, reused channel after channel */
    for (int c = c0; c < c1; c++) {
        if (split) dw_pad_plane_s2(p, r->x + (size_t)c * p->H * p->W, xp);
        else dw_pad_plane(p, r->x + (size_t)c * p->H * p->W, xp);
        plane(p, xp, p->w + (size_t)c * p->kh * p->kw, r->y + (size_t)c * p->Ho * p->Wo, c);
    }
}

/* Output rows [oy0, oy1) of an NHWC depthwise conv; weights packed [kh*kw][C]. */
static FK_AVX512 void dw_nhwc_rows(const conv_prep *p, const float *x, float *y, int oy0, int oy1) {
    const fk__epilogue *e = &p->epi;
    int C = p->C;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < p->Wo; ox++) {
            float *yp = y + ((size_t)oy * p->Wo + ox) * C;
            for (int c = 0; c < C; c += 16) {
                __mmask16 km = mask_n(C - c);
                __m512 acc = _mm512_maskz_loadu_ps(km, e->bias + c);
                for (int ky = 0; ky < p->kh; ky++) {
                    int iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= p->H) continue;
                    for (int kx = 0; kx < p->kw; kx++) {
                        int ix = ox * p->sw - p->pl + kx * p->dw;
                        if (ix < 0 || ix >= p->W) continue;
                        __m512 xv = _mm512_maskz_loadu_ps(km, x + ((size_t)iy * p->W + ix) * C + c);
                        __m512 wv = _mm512_maskz_loadu_ps(km, p->w + (size_t)(ky * p->kw + kx) * C + c);
                        acc = _mm512_fmadd_ps(xv, wv, acc);
                    }
                }
                __m512 vs = e->slope ? _mm512_maskz_loadu_ps(km, e->slope + c) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(yp + c, km, fk__act_vec(e, acc, vs));
            }
        }
}

static void dw_nhwc_task(void *arg, int i) {
    const conv_run *r = arg;
    int Ho = r->p->Ho;
    dw_nhwc_rows(r->p, r->x, r->y, (int)((long)Ho * i / r->chunks), (int)((long)Ho * (i + 1) / r->chunks));
}

/* NCHW depthwise on a small map (at most DW_SMALL_OUT outputs per channel, fr_landmark's 8x8 and 4x4 stages):
 * per-channel planes would use a few lanes of each vector and pay a padded-plane copy per channel, so the
 * input is transposed to NHWC in scratch, run by the channel-vector NHWC kernel and transposed back. */
static void dw_nchw_small(const conv_prep *p, const float *x, float *y, float *scratch) {
    int C = p->C, HW = p->H * p->W, HWo = p->Ho * p->Wo;
    float *xt = scratch, *yt = scratch + (size_t)C * HW;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i++) xt[(size_t)i * C + c] = x[(size_t)c * HW + i];
    conv_prep q = *p;
    q.w = p->w_t;
    dw_nhwc_rows(&q, xt, yt, 0, p->Ho);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HWo; i++) y[(size_t)c * HWo + i] = yt[(size_t)i * C + c];
}

/* ---- the kernel ------------------------------------------------------------------------------------------ */

static int conv_fast(const fk__run_ctx *cx, const fk__node *n) {
    const conv_prep *p = n->prep;
    const fk__tensor *xt = &cx->g->t[n->in[0]];
    const float *x = cx->data[n->in[0]];
    float *y = cx->data[n->out[0]];
    int batch = (int)xt->dims[0];
    size_t xs = (size_t)p->C * p->H * p->W, ys = (size_t)p->O * p->Ho * p->Wo;
    for (int b = 0; b < batch; b++, x += xs, y += ys) {
        switch (p->kind) {
        case CONV_NCHW_GEMM: conv_nchw_gemm(cx, p, x, y); break;
        case CONV_NCHW_SHIFT: conv_nchw_shift(cx, p, x, y); break;
        case CONV_NCHW_DIRECT:
            fk__direct_conv_run(p->direct_conv, &p->epi, x, y, (float *)cx->scratch, cx->pool, cx->threads);
            break;
        case CONV_NHWC_GEMM: conv_nhwc_gemm(cx, p, x, y); break;
        case CONV_NCHW_DW:
            if (p->dw_conv) {
                fk__dw_conv_run(p->dw_conv, &p->epi, x, y, cx->pool, cx->threads);
                break;
            }
            if (p->w_t) {
                dw_nchw_small(p, x, y, (float *)cx->scratch);
                break;
            }
            /* fall through */
        case CONV_NHWC_DW: {
            int work = p->kind == CONV_NCHW_DW ? p->C : p->Ho;
            conv_run r = {p, x, y, (float *)cx->scratch, 0, 0, chunks_for(cx->threads, work)};
            if (p->kind == CONV_NCHW_DW && r.chunks > DW_MAX_CHUNKS) r.chunks = DW_MAX_CHUNKS;
            void (*task)(void *, int) = p->kind == CONV_NCHW_DW ? dw_nchw_task : dw_nhwc_task;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, task, &r);
            else task(&r, 0);
            break;
        }
        default: return FK_EINTERNAL;
        }
    }
    return FK_OK;
}

#endif /* FK_HAVE_X86 */

/* Padded plane for the NCHW depthwise kernel: the kernel computes whole R-row x U-block groups (see
 * dw_nchw_task) and reads whole vectors (stride 2: 32 values), so the plane has that much slack, zeroed. */
static void dw_plane_size(conv_prep *p) {
    int nblk = (p->Wo + 15) / 16;
    /* R rows x U column blocks per step, R*U = 4: rows first (they waste at most 3 rows of a tall map); more
     * column blocks only for short maps */
    int U = p->Ho >= 8 ? 1 : nblk >= 4 ? 4 : nblk >= 2 ? 2 : 1, R = 4 / U;
    int nblk_u = (nblk + U - 1) / U * U, ho_r = (p->Ho + R - 1) / R * R;
    /* the last block group reads 16 lanes (stride 2: 32 values; larger strides: 16 strided) from each tap */
    int need_w = nblk_u * 16 * p->sw + (p->kw - 1) * p->dw;
    int need_h = (ho_r - 1) * p->sh + (p->kh - 1) * p->dh + 1;
    int wp = p->W + p->pl, hp = p->H + p->pt;
    if (wp < need_w) wp = need_w;
    if (hp < need_h) hp = need_h;
    p->dw_wp = wp;
    p->dw_hp = hp;
    p->dw_u = U;
}

int fk__fast_conv_prepare(fk__graph *g, fk__node *n) {
    /* Order: the channel-blocked kernels (fast_blocked.c: stride 1, channels in multiples of 16) for a conv
     * with a pre-operation, and their few-channel stride-2 stem variant; else fast_conv3.c (pre-op 1x1, many-tap stride 2); then a stem chain run row by
     * row (fast_dw_fuse.c, which decides chain membership by itself, so it must see its members before any
     * other path claims one); then fast_blocked.c; then the paths below. */
    int rc = n->a.pre_op ? fk__blocked_conv_prepare(g, n, 0) : fk__blocked_conv_prepare(g, n, 1);
    if (rc || n->prep) return rc;
    rc = fk__fast_conv3_prepare(g, n);
    if (rc || n->prep || n->a.pre_op) return rc; /* a pre-op conv both decline runs the reference */
    rc = fk__dw_fuse_prepare(g, n);
    if (rc || n->prep) return rc;
    rc = fk__blocked_conv_prepare(g, n, 0);
    if (rc || n->prep) return rc;
#ifdef FK_HAVE_X86
    if (n->n_in < 2 || n->n_out < 1) return FK_OK;
    const fk__tensor *xt = &g->t[n->in[0]], *yt = &g->t[n->out[0]], *wt = &g->t[n->in[1]];
    const float *w = const_f32(g, n->in[1]);
    const float *bias = n->n_in > 2 && n->in[2] >= 0 ? const_f32(g, n->in[2]) : NULL;
    if (!w || (n->n_in > 2 && n->in[2] >= 0 && !bias)) return FK_OK;
    if (xt->rank != 4 || yt->rank != 4 || wt->rank != 4 || xt->dtype != FK__DT_F32) return FK_OK;
    const fk__attr *a = &n->a;
    int nhwc = a->layout == FK__NHWC;
    conv_prep q = {0};
    q.C = (int)xt->dims[nhwc ? 3 : 1];
    q.H = (int)xt->dims[nhwc ? 1 : 2];
    q.W = (int)xt->dims[nhwc ? 2 : 3];
    q.O = (int)yt->dims[nhwc ? 3 : 1];
    q.Ho = (int)yt->dims[nhwc ? 1 : 2];
    q.Wo = (int)yt->dims[nhwc ? 2 : 3];
    q.kh = (int)wt->dims[2];
    q.kw = (int)wt->dims[3];
    q.sh = a->stride[0], q.sw = a->stride[1], q.dh = a->dilation[0], q.dw = a->dilation[1];
    q.pt = a->pads[0], q.pl = a->pads[1];
    q.group = a->group < 1 ? 1 : a->group;
    if (wt->dims[0] != q.O || wt->dims[1] * q.group != q.C || q.O % q.group) return FK_OK;
    if (q.sh < 1 || q.sw < 1 || q.dh < 1 || q.dw < 1 || q.Ho < 1 || q.Wo < 1) return FK_OK;
    if (a->act == FK__ACT_PRELU && const_f32(g, a->act_slope) == NULL) return FK_OK;
    int dw = q.group == q.C && q.group == q.O;
    if (dw) q.kind = nhwc ? CONV_NHWC_DW : CONV_NCHW_DW;
    else if (!nhwc) q.kind = CONV_NCHW_GEMM;
    else if (q.group == 1) q.kind = CONV_NHWC_GEMM;
    else return FK_OK;
    int Cg = q.C / q.group, Og = q.O / q.group;
    q.K = Cg * q.kh * q.kw;
    q.direct = q.kind == CONV_NCHW_GEMM && q.kh == 1 && q.kw == 1 && q.sh == 1 && q.sw == 1 && q.pt == 0 &&
               q.pl == 0 && q.Ho == q.H && q.Wo == q.W;
    if (q.kind == CONV_NCHW_GEMM && q.group == 1 && !q.direct && q.sh == 1 && q.sw == 1 && q.kh * q.kw > 1)
        q.kind = CONV_NCHW_SHIFT;

    conv_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    *p = q;
    if ((q.kind == CONV_NCHW_GEMM || q.kind == CONV_NCHW_SHIFT) && q.group == 1) {
        fk__conv_geom cg = {q.C, q.H, q.W, q.O, q.Ho, q.Wo, q.kh, q.kw, q.sh, q.sw, q.dh, q.dw, q.pt, q.pl};
        size_t sb = 0;
        int rc = fk__direct_conv_create(&cg, w, &p->direct_conv, &sb);
        if (rc) {
            conv_prep_free(p);
            return rc;
        }
        if (p->direct_conv) q.kind = p->kind = CONV_NCHW_DIRECT, n->scratch_bytes = sb;
    }
    size_t wn = 0;
    if (q.kind == CONV_NCHW_GEMM) wn = fk__gemm_packed_a_size(Og, q.K) * q.group;
    else if (q.kind == CONV_NCHW_SHIFT) wn = fk__gemm_packed_a_size(q.O, q.K);
    else if (q.kind == CONV_NHWC_GEMM) wn = (size_t)((q.O + FK__GEMM_NR - 1) / FK__GEMM_NR) * FK__GEMM_NR * q.K;
    else wn = (size_t)q.C * q.kh * q.kw;
    p->w = fk__calloc(wn, sizeof(float));
    p->bias = fk__calloc((size_t)q.O, sizeof(float));
    if (a->act == FK__ACT_PRELU) p->slope = fk__calloc((size_t)q.O, sizeof(float));
    if (!p->w || !p->bias || (a->act == FK__ACT_PRELU && !p->slope)) {
        conv_prep_free(p);
        return FK_ENOMEM;
    }
    if (bias) memcpy(p->bias, bias, sizeof(float) * (size_t)q.O);
    if (p->slope) {
        const fk__tensor *st = &g->t[a->act_slope];
        int64_t ns = 1;
        for (int d = 0; d < st->rank; d++) ns *= st->dims[d];
        const float *s = st->data;
        for (int o = 0; o < q.O; o++) p->slope[o] = ns == q.O ? s[o] : s[0];
    }
    if (q.kind == CONV_NCHW_GEMM) {
        size_t wsz = fk__gemm_packed_a_size(Og, q.K);
        for (int gi = 0; gi < q.group; gi++)
            fk__gemm_pack_a(p->w + gi * wsz, w + (size_t)gi * Og * q.K, q.K, Og, q.K);
        if (!q.direct)
            n->scratch_bytes = sizeof(float) * (q.K <= SMALL_IM2COL_K ? (size_t)q.K * q.Ho * q.Wo
                                                                       : (size_t)FK__GEMM_MAX_CHUNKS * q.K * FK__GEMM_NR);
    } else if (q.kind == CONV_NCHW_SHIFT) {
        /* A[o][t*C + c] = W[o][c][t]: taps outer, channels inner, as the micro-kernel walks them */
        int T = q.kh * q.kw;
        float *tmp = fk__malloc(sizeof(float) * (size_t)q.O * q.K);
        p->toff = fk__malloc(sizeof(int) * (size_t)T);
        if (!tmp || !p->toff) {
            fk__free(tmp);
            conv_prep_free(p);
            return FK_ENOMEM;
        }
        for (int o = 0; o < q.O; o++)
            for (int c = 0; c < q.C; c++)
                for (int t = 0; t < T; t++) tmp[(size_t)o * q.K + (size_t)t * q.C + c] = w[((size_t)o * q.C + c) * T + t];
        fk__gemm_pack_a(p->w, tmp, q.K, q.O, q.K);
        fk__free(tmp);
        /* padded planes: Wp covers the widest tap, Hp the rows the last 32-column tile can read */
        int wp = q.Wo + (q.kw - 1) * q.dw;
        if (wp < q.W + q.pl) wp = q.W + q.pl;
        long n_read = (long)((q.Ho * wp + FK__GEMM_NR - 1) / FK__GEMM_NR) * FK__GEMM_NR + (long)(q.kh - 1) * q.dh * wp +
                      (q.kw - 1) * q.dw;
        int hp = (int)((n_read + wp - 1) / wp);
        if (hp < q.H + q.pt) hp = q.H + q.pt;
        p->dw_wp = wp;
        p->dw_hp = hp;
        for (int ky = 0; ky < q.kh; ky++)
            for (int kx = 0; kx < q.kw; kx++) p->toff[ky * q.kw + kx] = ky * q.dh * wp + kx * q.dw;
        n->scratch_bytes = sizeof(float) * ((size_t)q.C * hp * wp + (size_t)q.O * q.Ho * wp);
    } else if (q.kind == CONV_NHWC_GEMM) {
        /* B[k][o] with k = (ky*kw + kx)*C + c, NR columns per panel */
        for (int o = 0; o < q.O; o++)
            for (int c = 0; c < q.C; c++)
                for (int t = 0; t < q.kh * q.kw; t++) {
                    size_t k = (size_t)t * q.C + c;
                    p->w[(size_t)(o / FK__GEMM_NR) * q.K * FK__GEMM_NR + k * FK__GEMM_NR + o % FK__GEMM_NR] =
                        w[((size_t)o * q.C + c) * q.kh * q.kw + t];
                }
        n->scratch_bytes = sizeof(float) * fk__gemm_packed_a_size(q.Ho * q.Wo, q.K);
    } else if (q.kind == CONV_NCHW_DW) {
        memcpy(p->w, w, sizeof(float) * wn);
        p->dw_global = q.Ho == 1 && q.Wo == 1 && q.kh == q.H && q.kw == q.W && q.pt == 0 && q.pl == 0 && q.dh == 1 &&
                       q.dw == 1;
        dw_plane_size(p);
        n->scratch_bytes = sizeof(float) * (size_t)DW_MAX_CHUNKS * p->dw_hp * p->dw_wp;
        if (!p->dw_global) {
            fk__conv_geom cg = {q.C, q.H, q.W, q.O, q.Ho, q.Wo, q.kh, q.kw, q.sh, q.sw, q.dh, q.dw, q.pt, q.pl};
            if (fk__dw_conv_create(&cg, w, &p->dw_conv)) {
                conv_prep_free(p);
                return FK_ENOMEM;
            }
            if (p->dw_conv) n->scratch_bytes = 0;
        }
        if (!p->dw_global && !p->dw_conv && q.Ho * q.Wo <= DW_SMALL_OUT && q.H * q.W <= DW_SMALL_OUT) {
            p->w_t = fk__malloc(sizeof(float) * wn);
            if (!p->w_t) {
                conv_prep_free(p);
                return FK_ENOMEM;
            }
            for (int c = 0; c < q.C; c++)
                for (int t = 0; t < q.kh * q.kw; t++) p->w_t[(size_t)t * q.C + c] = w[(size_t)c * q.kh * q.kw + t];
            n->scratch_bytes = sizeof(float) * (size_t)q.C * (q.H * q.W + q.Ho * q.Wo);
        }
    } else if (q.kind == CONV_NHWC_DW) {
        for (int c = 0; c < q.C; c++)
            for (int t = 0; t < q.kh * q.kw; t++) p->w[(size_t)t * q.C + c] = w[(size_t)c * q.kh * q.kw + t];
    }
    p->epi.bias = p->bias;
    p->epi.slope = p->slope;
    p->epi.act = a->act;
    p->epi.act_a = a->act_a;
    p->epi.act_b = a->act_b;
    p->epi.per_row = !nhwc;
    n->prep = p;
    n->prep_free = conv_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__fast_conv_kernel(const fk__node *n) {
    fk__kernel_fn kb = fk__blocked_conv_kernel(n);
    if (kb) return kb;
    fk__kernel_fn k3 = fk__fast_conv3_kernel(n);
    if (k3 || n->a.pre_op) return k3;
    if (fk__dw_fuse_kernel(n)) return fk__dw_fuse_kernel(n);
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == conv_prep_free) return conv_fast;
#else
    (void)n;
#endif
    return NULL;
}
