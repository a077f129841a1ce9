/*
 * fast_elt.c — fast kernels for the executor's cheap-per-element ops (nn layer, beside fast_conv.c): unary
 * activations, BatchNormalization (+ fused activation), numpy-broadcast binaries (+ fused activation), constant
 * Pad, NCHW MaxPool/AveragePool, Exp and Transpose (trailing axes kept: block copies; NCHW <-> NHWC: 16 x 16
 * tiles). Slice, Concat and Softmax are handed to fast_copy.c. Each is the AVX-512 counterpart of a reference kernel in
 * ops_ref.c with the same semantics; tests/test_nn_fast.c compares them. They matter because after the
 * convolutions are fast, these memory-bound ops are what is left: a per-element switch or a scalar tanhf over
 * a feature map costs more than the convolution that produced it.
 *
 * Broadcasting: output dims are coalesced (adjacent axes merged while both inputs are either broadcast or
 * not along them), so the innermost loop is a long run in one of four shapes: both contiguous, one of them a
 * repeated value, or both repeated.
 */
#include "nn/fast.h"

#include <float.h>
#include <string.h>

typedef struct elt_prep {
    fk__kernel_fn fn;
    /* pools */
    int C, H, W, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl, hp, wp, is_max, chunks_max;
    int tiles; /* windows tile the input (kernel = stride, no padding, no dilation): pool_tiles */
    /* pool_narrow: an input row fits two vectors, an output row one; per column tap kx, the lanes of those two
     * vectors that feed output columns 0..15 (nmask: the lanes whose column is inside the input), and for
     * averages 1 / the column count of each output column */
    int narrow;
    int k3s2; /* max pool 3 wide, stride 2 across, left pad 0 or 1, wider rows: pool_k3s2 */
    int32_t nidx[8][16];
    uint16_t nmask[8];
    float ncolinv[16];
    /* binaries: coalesced broadcast */
    int rank;
    int64_t dims[FK__MAX_RANK], sx[FK__MAX_RANK], sy[FK__MAX_RANK];
} elt_prep;

static void elt_prep_free(void *p) { fk__free(p); }

#define IN(i) (&cx->g->t[n->in[i]])
#define OUT(i) (&cx->g->t[n->out[i]])
#define INP(i) (cx->data[n->in[i]])
#define OUTP(i) (cx->data[n->out[i]])

static int64_t numel(const fk__tensor *t) {
    int64_t k = 1;
    for (int i = 0; i < t->rank; i++) k *= t->dims[i];
    return k;
}

#ifdef FK_HAVE_X86

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

static inline __attribute__((always_inline)) FK_AVX512 __m512 binop(int op, __m512 a, __m512 b) {
    switch (op) {
    case FK__OP_ADD: return _mm512_add_ps(a, b);
    case FK__OP_SUB: return _mm512_sub_ps(a, b);
    case FK__OP_MUL: return _mm512_mul_ps(a, b);
    case FK__OP_DIV: return _mm512_div_ps(a, b);
    case FK__OP_MAX: return _mm512_max_ps(a, b);
    case FK__OP_MIN: return _mm512_min_ps(a, b);
    default: { /* PRELU: a >= 0 ? a : a * b */
        __mmask16 neg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(a, neg, a, b);
    }
    }
}

/* ---- unary ------------------------------------------------------------------------------------------- */

static FK_AVX512 int unary_fast(const fk__run_ctx *cx, const fk__node *n) {
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t cnt = numel(OUT(0));
    fk__epilogue e = {0};
    const fk__attr *a = &n->a;
    switch (n->op) {
    case FK__OP_RELU: e.act = FK__ACT_RELU; break;
    case FK__OP_CLIP: e.act = FK__ACT_CLIP, e.act_a = a->clip_min, e.act_b = a->clip_max; break;
    case FK__OP_LEAKY_RELU: e.act = FK__ACT_LEAKY, e.act_a = a->alpha; break;
    case FK__OP_SIGMOID: e.act = FK__ACT_SIGMOID; break;
    default: e.act = FK__ACT_TANH; break;
    }
    __m512 z = _mm512_setzero_ps();
    for (int64_t i = 0; i < cnt; i += 16) {
        __mmask16 m = tail_mask(cnt - i);
        _mm512_mask_storeu_ps(y + i, m, fk__act_vec(&e, _mm512_maskz_loadu_ps(m, x + i), z));
    }
    return FK_OK;
}

/* exp: the vector exp clamps its input to [-87, 88], so lanes above 87 take exp(x - 1) * e, lanes beyond expf's
 * overflow threshold +inf (as the reference), and NaN stays NaN. */
static FK_AVX512 int exp_fast(const fk__run_ctx *cx, const fk__node *n) {
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t cnt = numel(OUT(0));
    const __m512 big = _mm512_set1_ps(88.72283935546875f), inf = _mm512_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < cnt; i += 16) {
        __mmask16 m = tail_mask(cnt - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 r = fk__exp_vec(v);
        __mmask16 hi = _mm512_cmp_ps_mask(v, _mm512_set1_ps(87.0f), _CMP_GT_OQ);
        if (hi)
            r = _mm512_mask_mul_ps(r, hi, fk__exp_vec(_mm512_sub_ps(v, _mm512_set1_ps(1.0f))),
                                   _mm512_set1_ps(2.71828182845904524f));
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, big, _CMP_GT_OQ), inf);
        r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
        _mm512_mask_storeu_ps(y + i, m, r);
    }
    return FK_OK;
}

/* ---- batch norm: y = x * scale[c] + shift[c], then the fused activation ------------------------------------ */

static FK_AVX512 int batch_norm_fast(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *t = IN(0);
    int ax = n->a.layout == FK__NHWC ? t->rank - 1 : 1;
    int64_t outer = 1, inner = 1, C = t->dims[ax];
    for (int i = 0; i < ax; i++) outer *= t->dims[i];
    for (int i = ax + 1; i < t->rank; i++) inner *= t->dims[i];
    const float *x = INP(0), *sc = INP(1), *sh = INP(2);
    const float *slope = n->a.act == FK__ACT_PRELU ? cx->data[n->a.act_slope] : NULL;
    int64_t ns = slope ? numel(&cx->g->t[n->a.act_slope]) : 0;
    float *y = OUTP(0);
    fk__epilogue e = {.act = n->a.act, .act_a = n->a.act_a, .act_b = n->a.act_b};
    for (int64_t o = 0; o < outer; o++) {
        if (inner == 1) { /* channels last: vectors along C */
            const float *xo = x + o * C;
            float *yo = y + o * C;
            for (int64_t c = 0; c < C; c += 16) {
                __mmask16 m = tail_mask(C - c);
                __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xo + c), _mm512_maskz_loadu_ps(m, sc + c),
                                           _mm512_maskz_loadu_ps(m, sh + c));
                __m512 s = slope ? (ns == 1 ? _mm512_set1_ps(slope[0]) : _mm512_maskz_loadu_ps(m, slope + c))
                                 : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(yo + c, m, fk__act_vec(&e, v, s));
            }
            continue;
        }
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + (o * C + c) * inner;
            float *yc = y + (o * C + c) * inner;
            __m512 vs = _mm512_set1_ps(sc[c]), vb = _mm512_set1_ps(sh[c]);
            __m512 s = slope ? _mm512_set1_ps(slope[ns == 1 ? 0 : c % ns]) : _mm512_setzero_ps();
            for (int64_t i = 0; i < inner; i += 16) {
                __mmask16 m = tail_mask(inner - i);
                __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xc + i), vs, vb);
                _mm512_mask_storeu_ps(yc + i, m, fk__act_vec(&e, v, s));
            }
        }
    }
    return FK_OK;
}

/* ---- binaries ------------------------------------------------------------------------------------------ */

static inline __attribute__((always_inline)) FK_AVX512 void bin_run(int op, const fk__epilogue *e, const float *x,
                                                                    int64_t sx, const float *y, int64_t sy, float *o,
                                                                    int64_t cnt) {
    __m512 z = _mm512_setzero_ps();
    __m512 bx = _mm512_set1_ps(x[0]), by = _mm512_set1_ps(y[0]);
    for (int64_t i = 0; i < cnt; i += 16) {
        __mmask16 m = tail_mask(cnt - i);
        __m512 a = sx ? _mm512_maskz_loadu_ps(m, x + i) : bx;
        __m512 b = sy ? _mm512_maskz_loadu_ps(m, y + i) : by;
        _mm512_mask_storeu_ps(o + i, m, fk__act_vec(e, binop(op, a, b), z));
    }
}

static FK_AVX512 int binary_fast(const fk__run_ctx *cx, const fk__node *n) {
    const elt_prep *p = n->prep;
    const float *x = INP(0), *y = INP(1);
    float *o = OUTP(0);
    fk__epilogue e = {.act = n->a.act, .act_a = n->a.act_a, .act_b = n->a.act_b};
    int r = p->rank;
    int64_t inner = p->dims[r - 1], total = 1, idx[FK__MAX_RANK] = {0};
    int64_t isx = p->sx[r - 1], isy = p->sy[r - 1];
    for (int i = 0; i < r - 1; i++) total *= p->dims[i];
    for (int64_t t = 0; t < total; t++, o += inner) {
        int64_t ox = 0, oy = 0;
        for (int i = 0; i < r - 1; i++) ox += idx[i] * p->sx[i], oy += idx[i] * p->sy[i];
        switch (n->op) { /* one instantiation per op keeps binop() a single instruction */
        case FK__OP_ADD: bin_run(FK__OP_ADD, &e, x + ox, isx, y + oy, isy, o, inner); break;
        case FK__OP_SUB: bin_run(FK__OP_SUB, &e, x + ox, isx, y + oy, isy, o, inner); break;
        case FK__OP_MUL: bin_run(FK__OP_MUL, &e, x + ox, isx, y + oy, isy, o, inner); break;
        case FK__OP_DIV: bin_run(FK__OP_DIV, &e, x + ox, isx, y + oy, isy, o, inner); break;
        case FK__OP_MAX: bin_run(FK__OP_MAX, &e, x + ox, isx, y + oy, isy, o, inner); break;
        case FK__OP_MIN: bin_run(FK__OP_MIN, &e, x + ox, isx, y + oy, isy, o, inner); break;
        default: bin_run(FK__OP_PRELU, &e, x + ox, isx, y + oy, isy, o, inner); break;
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < p->dims[i]) break;
            idx[i] = 0;
        }
    }
    return FK_OK;
}

/* ---- pad (constant) ------------------------------------------------------------------------------------- */

static FK_AVX512 int pad_fast(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    const fk__attr *a = &n->a;
    int r = X->rank;
    int64_t st[FK__MAX_RANK], idx[FK__MAX_RANK] = {0}, rows = 1;
    st[r - 1] = 1;
    for (int i = r - 2; i >= 0; i--) st[i] = st[i + 1] * X->dims[i + 1];
    for (int i = 0; i < r - 1; i++) rows *= O->dims[i];
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t W = X->dims[r - 1], Wo = O->dims[r - 1], b = a->pads_nd[r - 1];
    /* output columns [c0, c1) come from input columns c - b */
    int64_t c0 = b > 0 ? b : 0, c1 = W + b < Wo ? W + b : Wo;
    if (c1 < c0) c1 = c0;
    __m512 pv = _mm512_set1_ps(a->pad_value);
    for (int64_t row = 0; row < rows; row++, y += Wo) {
        int64_t src = 0;
        int outside = 0;
        for (int i = 0; i < r - 1; i++) {
            int64_t j = idx[i] - a->pads_nd[i];
            if (j < 0 || j >= X->dims[i]) outside = 1;
            src += j * st[i];
        }
        for (int64_t c = 0; c < Wo; c += 16) {
            __mmask16 m = tail_mask(Wo - c);
            if (outside || c + 16 <= c0 || c >= c1) {
                _mm512_mask_storeu_ps(y + c, m, pv);
                continue;
            }
            /* lanes [lo, hi) of this vector come from the row */
            int64_t lo = c0 - c > 0 ? c0 - c : 0, hi = c1 - c < 16 ? c1 - c : 16;
            __mmask16 in = (__mmask16)(tail_mask(hi) & ~tail_mask(lo));
            __m512 v = _mm512_mask_loadu_ps(pv, in, x + src + (c - b));
            _mm512_mask_storeu_ps(y + c, m, v);
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < O->dims[i]) break;
            idx[i] = 0;
        }
    }
    return FK_OK;
}

/* ---- pools (NCHW) ------------------------------------------------------------------------------------- */

/* Like the depthwise convolution: each channel is copied into a padded plane (padding = -FLT_MAX for max,
 * 0 for average) so windows need no bounds checks; averages divide by the window's row extent times its
 * column extent, which is what the reference counts (with or without the padding). */
typedef struct pool_run {
    const fk__run_ctx *cx;
    const fk__node *n;
    int chunks, planes;
} pool_run;

/* Windows that tile the input (fr_gender's 2x2/2 and 8x8/8 pools): no padded copy — each output row first
 * reduces its KH input rows column-wise with whole-vector loads into a row of W partial results (one pass over
 * the input), then each group of KW neighbours of that row gives one output (pairs by an even/odd permute,
 * wider groups by a short scalar loop over the already reduced row). */
static FK_AVX512 void pool_tiles(const pool_run *pr, int i) {
    const fk__node *n = pr->n;
    const fk__run_ctx *cx = pr->cx;
    const elt_prep *p = n->prep;
    int c0 = (int)((long)pr->planes * i / pr->chunks), c1 = (int)((long)pr->planes * (i + 1) / pr->chunks);
    float *row = (float *)cx->scratch + (size_t)i * p->hp * p->wp; /* >= W + 32 floats (prepare) */
    const int W = p->Wo * p->sw; /* the columns the windows read */
    const float inv = 1.0f / (float)(p->kh * p->kw);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int c = c0; c < c1; c++) {
        const float *xc = (const float *)INP(0) + (size_t)c * p->H * p->W;
        float *yc = (float *)OUTP(0) + (size_t)c * p->Ho * p->Wo;
        for (int oy = 0; oy < p->Ho; oy++) {
            const float *x0 = xc + (size_t)oy * p->sh * p->W;
            for (int x = 0; x < W; x += 16) {
                __mmask16 m = tail_mask(W - x);
                __m512 acc = _mm512_maskz_loadu_ps(m, x0 + x);
                for (int ky = 1; ky < p->kh; ky++) {
                    __m512 v = _mm512_maskz_loadu_ps(m, x0 + (size_t)ky * p->W + x);
                    acc = p->is_max ? _mm512_max_ps(acc, v) : _mm512_add_ps(acc, v);
                }
                _mm512_storeu_ps(row + x, acc);
            }
            float *y = yc + (size_t)oy * p->Wo;
            if (p->kw == 2) {
                for (int ox = 0; ox < p->Wo; ox += 16) {
                    __m512 a = _mm512_loadu_ps(row + 2 * ox), b = _mm512_loadu_ps(row + 2 * ox + 16);
                    __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b);
                    __m512 v = p->is_max ? _mm512_max_ps(e, o) : _mm512_mul_ps(_mm512_add_ps(e, o), _mm512_set1_ps(inv));
                    _mm512_mask_storeu_ps(y + ox, tail_mask(p->Wo - ox), v);
                }
            } else {
                for (int ox = 0; ox < p->Wo; ox++) {
                    const float *g = row + (size_t)ox * p->kw;
                    float v = g[0];
                    for (int k = 1; k < p->kw; k++) v = p->is_max ? (g[k] > v ? g[k] : v) : v + g[k];
                    y[ox] = p->is_max ? v : v * inv;
                }
            }
        }
    }
}

static FK_AVX512 void pool_planes(const pool_run *pr, int i) {
    const fk__node *n = pr->n;
    const fk__run_ctx *cx = pr->cx;
    const elt_prep *p = n->prep;
    const fk__attr *a = &n->a;
    int c0 = (int)((long)pr->planes * i / pr->chunks), c1 = (int)((long)pr->planes * (i + 1) / pr->chunks);
    float *xp = (float *)cx->scratch + (size_t)i * p->hp * p->wp;
    float padv = p->is_max ? -FLT_MAX : 0.0f;
    __m512 pv = _mm512_set1_ps(padv);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i gidx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(p->sw));
    /* average: 1 / window size for each output column of the current row factor, recomputed only when the
     * row factor changes (once per call for unpadded pools), not 16 divisions per output vector */
    enum { COLINV_MAX = 1024 };
    float colinv[COLINV_MAX];
    float colinv_rowf = -1.0f;
    for (int c = c0; c < c1; c++) {
        const float *xc = (const float *)INP(0) + (size_t)c * p->H * p->W;
        float *yc = (float *)OUTP(0) + (size_t)c * p->Ho * p->Wo;
        for (int yy = 0; yy < p->hp; yy++) {
            float *d = xp + (size_t)yy * p->wp;
            int iy = yy - p->pt;
            for (int xx = 0; xx < p->wp; xx += 16) {
                int lo = p->pl - xx, hi = p->pl + p->W - xx;
                if (lo < 0) lo = 0;
                if (hi > 16) hi = 16;
                if (iy < 0 || iy >= p->H || hi <= lo) {
                    _mm512_storeu_ps(d + xx, pv);
                    continue;
                }
                __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
                _mm512_storeu_ps(d + xx, _mm512_mask_loadu_ps(pv, m, xc + (size_t)iy * p->W + (xx - p->pl)));
            }
        }
        for (int oy = 0; oy < p->Ho; oy++) {
            float rowf = 1.0f;
            if (!p->is_max) {
                int hs = oy * p->sh - p->pt, he = hs + p->kh;
                if (he > p->H + a->pads[2]) he = p->H + a->pads[2];
                int h0 = hs < 0 ? 0 : hs, h1 = he > p->H ? p->H : he;
                rowf = (float)(a->count_include_pad ? he - hs : h1 - h0);
            }
            for (int ox0 = 0; ox0 < p->Wo; ox0 += 16) {
                int cnt = p->Wo - ox0 < 16 ? p->Wo - ox0 : 16;
                __m512 acc = p->is_max ? pv : _mm512_setzero_ps();
                for (int ky = 0; ky < p->kh; ky++) {
                    const float *row = xp + (size_t)(oy * p->sh + ky * p->dh) * p->wp + (size_t)ox0 * p->sw;
                    for (int kx = 0; kx < p->kw; kx++) {
                        const float *s = row + kx * p->dw;
                        __m512 v;
                        if (p->sw == 1) v = _mm512_loadu_ps(s);
                        else if (p->sw == 2) v = _mm512_permutex2var_ps(_mm512_loadu_ps(s), even, _mm512_loadu_ps(s + 16));
                        else v = _mm512_i32gather_ps(gidx, s, 4);
                        acc = p->is_max ? _mm512_max_ps(acc, v) : _mm512_add_ps(acc, v);
                    }
                }
                if (!p->is_max) {
                    int whole = p->Wo <= COLINV_MAX; /* table for the whole row, else per vector */
                    if (!whole || colinv_rowf != rowf) {
                        int j0 = whole ? 0 : ox0, j1 = whole ? p->Wo : ox0 + cnt;
                        for (int j = j0; j < j1; j++) {
                            int ws = j * p->sw - p->pl, we = ws + p->kw;
                            if (we > p->W + a->pads[3]) we = p->W + a->pads[3];
                            int w0 = ws < 0 ? 0 : ws, w1 = we > p->W ? p->W : we;
                            float cf = (float)(a->count_include_pad ? we - ws : w1 - w0) * rowf;
                            colinv[j - j0] = cf > 0 ? 1.0f / cf : 0.0f;
                        }
                        colinv_rowf = whole ? rowf : -1.0f;
                    }
                    acc = _mm512_mul_ps(acc, _mm512_maskz_loadu_ps(tail_mask(cnt), colinv + (whole ? ox0 : 0)));
                }
                _mm512_mask_storeu_ps(yc + (size_t)oy * p->Wo + ox0, tail_mask(cnt), acc);
            }
        }
    }
}

/* Rows narrower than two vectors (fr_eye's 3x3/2 pools on 20x20..3x3 maps): a padded plane would be written
 * and at once read back at offsets that straddle the still-buffered vector stores (loads that cannot be
 * forwarded), and most lanes of each output vector would be thrown away. Instead each output row reduces its
 * kernel rows that lie inside the input into two registers, and each column tap is one lane permutation of
 * them (lanes outside the input take the padding value). */
static FK_AVX512 void pool_narrow(const pool_run *pr, int i) {
    const fk__node *n = pr->n;
    const fk__run_ctx *cx = pr->cx;
    const elt_prep *p = n->prep;
    const fk__attr *a = &n->a;
    int c0 = (int)((long)pr->planes * i / pr->chunks), c1 = (int)((long)pr->planes * (i + 1) / pr->chunks);
    const __m512 pv = _mm512_set1_ps(p->is_max ? -FLT_MAX : 0.0f);
    const __mmask16 m0 = tail_mask(p->W), m1 = tail_mask(p->W > 16 ? p->W - 16 : 0), mo = tail_mask(p->Wo);
    __m512i idx[8];
    for (int kx = 0; kx < p->kw; kx++) idx[kx] = _mm512_loadu_si512(p->nidx[kx]);
    const __m512 colinv = _mm512_loadu_ps(p->ncolinv);
    for (int c = c0; c < c1; c++) {
        const float *xc = (const float *)INP(0) + (size_t)c * p->H * p->W;
        float *yc = (float *)OUTP(0) + (size_t)c * p->Ho * p->Wo;
        for (int oy = 0; oy < p->Ho; oy++) {
            int hs = oy * p->sh - p->pt, h0 = hs < 0 ? 0 : hs, h1 = hs + p->kh > p->H ? p->H : hs + p->kh;
            __m512 r0 = pv, r1 = pv;
            for (int h = h0; h < h1; h++) {
                const float *x = xc + (size_t)h * p->W;
                __m512 v0 = _mm512_mask_loadu_ps(pv, m0, x), v1 = _mm512_mask_loadu_ps(pv, m1, x + 16);
                r0 = p->is_max ? _mm512_max_ps(r0, v0) : _mm512_add_ps(r0, v0);
                r1 = p->is_max ? _mm512_max_ps(r1, v1) : _mm512_add_ps(r1, v1);
            }
            __m512 acc = _mm512_mask_mov_ps(pv, p->nmask[0], _mm512_permutex2var_ps(r0, idx[0], r1));
            for (int kx = 1; kx < p->kw; kx++) {
                __m512 v = _mm512_mask_mov_ps(pv, p->nmask[kx], _mm512_permutex2var_ps(r0, idx[kx], r1));
                acc = p->is_max ? _mm512_max_ps(acc, v) : _mm512_add_ps(acc, v);
            }
            if (!p->is_max) { /* the reference's count: with the padding (not past its end) or without */
                int he = hs + p->kh;
                if (he > p->H + a->pads[2]) he = p->H + a->pads[2];
                int rows = a->count_include_pad ? he - hs : h1 - h0;
                acc = _mm512_mul_ps(acc, _mm512_mul_ps(colinv, _mm512_set1_ps(rows > 0 ? 1.0f / (float)rows : 0.0f)));
            }
            _mm512_mask_storeu_ps(yc + (size_t)oy * p->Wo, mo, acc);
        }
    }
}

/* Max pool 3 columns wide at stride 2 (ResNet/DenseNet stems: 3x3/2, pad 1, on 112x112) over rows wider than
 * pool_narrow takes. The padded-plane path spent most of its time writing a plane that does not fit L1 and
 * reading it back; here each output row reduces its kernel rows that lie inside the input into one row of
 * W values in L1 (lanes past W hold the padding value), read back only at the offsets it was written at, and
 * the three taps of 16 outputs are the row's even and odd columns (two permutes) and the odd ones shifted by
 * one output (left pad 1) or the even ones shifted the other way (left pad 0), taken across blocks with
 * valignd. */
static FK_AVX512 void pool_k3s2(const pool_run *pr, int i) {
    const fk__node *n = pr->n;
    const fk__run_ctx *cx = pr->cx;
    const elt_prep *p = n->prep;
    int c0 = (int)((long)pr->planes * i / pr->chunks), c1 = (int)((long)pr->planes * (i + 1) / pr->chunks);
    float *row = (float *)(((uintptr_t)cx->scratch + 63) & ~(uintptr_t)63) + (size_t)i * p->wp;
    const __m512 pv = _mm512_set1_ps(-FLT_MAX);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int nb = (p->Wo + 15) / 16; /* output blocks; the row holds 32 * (nb + 1) values */
    for (int x = (p->W + 15) / 16 * 16; x < 32 * (nb + 1); x += 16) _mm512_store_ps(row + x, pv);
    for (int c = c0; c < c1; c++) {
        const float *xc = (const float *)INP(0) + (size_t)c * p->H * p->W;
        float *yc = (float *)OUTP(0) + (size_t)c * p->Ho * p->Wo;
        for (int oy = 0; oy < p->Ho; oy++) {
            int hs = oy * p->sh - p->pt, h0 = hs < 0 ? 0 : hs, h1 = hs + p->kh > p->H ? p->H : hs + p->kh;
            for (int x = 0; x < p->W; x += 16) {
                __mmask16 m = tail_mask(p->W - x);
                __m512 acc = pv;
                for (int h = h0; h < h1; h++) acc = _mm512_max_ps(acc, _mm512_mask_loadu_ps(pv, m, xc + (size_t)h * p->W + x));
                _mm512_store_ps(row + x, acc);
            }
            float *y = yc + (size_t)oy * p->Wo;
            __m512 a = _mm512_load_ps(row), b = _mm512_load_ps(row + 16);
            __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b), oprev = pv;
            for (int blk = 0; blk < nb; blk++) {
                a = _mm512_load_ps(row + 32 * (blk + 1)), b = _mm512_load_ps(row + 32 * (blk + 1) + 16);
                __m512 en = _mm512_permutex2var_ps(a, even, b), on = _mm512_permutex2var_ps(a, odd, b);
                __m512 v = _mm512_max_ps(e, o);
                if (p->pl) /* columns 2ox - 1, 2ox, 2ox + 1 */
                    v = _mm512_max_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(o), _mm512_castps_si512(oprev), 15)));
                else /* columns 2ox, 2ox + 1, 2ox + 2 */
                    v = _mm512_max_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(en), _mm512_castps_si512(e), 1)));
                _mm512_mask_storeu_ps(y + 16 * blk, tail_mask(p->Wo - 16 * blk), v);
                oprev = o, e = en, o = on;
            }
        }
    }
}

static void pool_task(void *arg, int i) {
    const pool_run *pr = arg;
    const elt_prep *p = pr->n->prep;
    if (p->tiles) pool_tiles(pr, i);
    else if (p->narrow) pool_narrow(pr, i);
    else if (p->k3s2) pool_k3s2(pr, i);
    else pool_planes(pr, i);
}

static int pool_fast(const fk__run_ctx *cx, const fk__node *n) {
    const elt_prep *p = n->prep;
    int planes = (int)(OUT(0)->dims[0] * p->C);
    pool_run pr = {cx, n, cx->threads < planes ? cx->threads : planes, planes};
    if (pr.chunks > p->chunks_max) pr.chunks = p->chunks_max;
    if (pr.chunks < 1) pr.chunks = 1;
    if (pr.chunks > 1) fk__pool_for(cx->pool, cx->threads, pr.chunks, pool_task, &pr);
    else pool_task(&pr, 0);
    return FK_OK;
}

/* ---- transpose: the trailing axes the permutation keeps in place are copied as one block ------------------ */

static int transpose_fast(const fk__run_ctx *cx, const fk__node *n) {
    const elt_prep *p = n->prep; /* rank/dims: output outer axes; sx: their input strides; sy[0]: block */
    const unsigned char *x = INP(0);
    unsigned char *y = OUTP(0);
    size_t es = fk__dtype_size(IN(0)->dtype), block = (size_t)p->sy[0] * es;
    int64_t total = 1, idx[FK__MAX_RANK] = {0};
    for (int i = 0; i < p->rank; i++) total *= p->dims[i];
    for (int64_t t = 0; t < total; t++, y += block) {
        int64_t src = 0;
        for (int i = 0; i < p->rank; i++) src += idx[i] * p->sx[i];
        memcpy(y, x + (size_t)src * es, block);
        for (int i = p->rank - 1; i >= 0; i--) {
            if (++idx[i] < p->dims[i]) break;
            idx[i] = 0;
        }
    }
    return FK_OK;
}

/* [B][R][S] -> [B][S][R] (NCHW <-> NHWC, dims[0..2] = B, R, S), 4-byte elements: 16 x 16 tiles, each input
 * row segment read once with a vector load, written out column-wise. */
static FK_AVX512 int transpose2d_fast(const fk__run_ctx *cx, const fk__node *n) {
    const elt_prep *p = n->prep;
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t B = p->dims[0], R = p->dims[1], S = p->dims[2];
    float tile[16][16];
    for (int64_t b = 0; b < B; b++, x += R * S, y += R * S)
        for (int64_t s0 = 0; s0 < S; s0 += 16) {
            int64_t ns = S - s0 < 16 ? S - s0 : 16;
            for (int64_t r0 = 0; r0 < R; r0 += 16) {
                int64_t nr = R - r0 < 16 ? R - r0 : 16;
                for (int64_t i = 0; i < nr; i++)
                    _mm512_storeu_ps(tile[i], _mm512_maskz_loadu_ps(tail_mask(ns), x + (r0 + i) * S + s0));
                for (int64_t j = 0; j < ns; j++) {
                    float *d = y + (s0 + j) * R + r0;
                    for (int64_t i = 0; i < nr; i++) d[i] = tile[i][j];
                }
            }
        }
    return FK_OK;
}

#endif /* FK_HAVE_X86 */

/* ---- prepare ---------------------------------------------------------------------------------------------- */

static int all_f32(const fk__graph *g, const fk__node *n, int nin) {
    for (int i = 0; i < nin; i++)
        if (i >= n->n_in || n->in[i] < 0 || g->t[n->in[i]].dtype != FK__DT_F32) return 0;
    return n->n_out >= 1 && g->t[n->out[0]].dtype == FK__DT_F32;
}

static int attach(fk__node *n, elt_prep *p) {
    n->prep = p;
    n->prep_free = elt_prep_free;
    return FK_OK;
}

int fk__fast_elt_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    elt_prep q;
    memset(&q, 0, sizeof q);
    const fk__attr *a = &n->a;
    switch (n->op) {
    case FK__OP_RELU:
    case FK__OP_CLIP:
    case FK__OP_LEAKY_RELU:
    case FK__OP_SIGMOID:
    case FK__OP_TANH:
        if (!all_f32(g, n, 1) || numel(&g->t[n->in[0]]) != numel(&g->t[n->out[0]])) return FK_OK;
        q.fn = unary_fast;
        break;
    case FK__OP_BATCH_NORM: {
        if (!all_f32(g, n, 3) || n->n_in < 3) return FK_OK;
        const fk__tensor *t = &g->t[n->in[0]];
        int ax = a->layout == FK__NHWC ? t->rank - 1 : 1;
        if (t->rank < 2 || numel(&g->t[n->in[1]]) != t->dims[ax] || numel(&g->t[n->in[2]]) != t->dims[ax]) return FK_OK;
        if (a->act == FK__ACT_PRELU && (a->act_slope < 0 || g->t[a->act_slope].dtype != FK__DT_F32)) return FK_OK;
        q.fn = batch_norm_fast;
        break;
    }
    case FK__OP_ADD:
    case FK__OP_SUB:
    case FK__OP_MUL:
    case FK__OP_DIV:
    case FK__OP_MAX:
    case FK__OP_MIN:
    case FK__OP_PRELU: {
        if (!all_f32(g, n, 2) || a->act == FK__ACT_PRELU) return FK_OK;
        const fk__tensor *x = &g->t[n->in[0]], *y = &g->t[n->in[1]], *o = &g->t[n->out[0]];
        if (o->rank < 1 || x->rank > o->rank || y->rank > o->rank || numel(o) == 0) return FK_OK;
        int64_t stx[FK__MAX_RANK], sty[FK__MAX_RANK], s = 1;
        for (int i = x->rank - 1; i >= 0; i--) stx[i] = s, s *= x->dims[i];
        s = 1;
        for (int i = y->rank - 1; i >= 0; i--) sty[i] = s, s *= y->dims[i];
        int r = 0;
        for (int i = 0; i < o->rank; i++) {
            int ix = i - (o->rank - x->rank), iy = i - (o->rank - y->rank);
            int64_t sx = ix >= 0 && x->dims[ix] != 1 ? stx[ix] : 0, sy = iy >= 0 && y->dims[iy] != 1 ? sty[iy] : 0;
            if (o->dims[i] == 1) continue;
            /* merge with the previous axis when both inputs keep their pattern (contiguous or repeated) */
            if (r > 0 && (sx == 0) == (q.sx[r - 1] == 0) && (sy == 0) == (q.sy[r - 1] == 0)) {
                q.dims[r - 1] *= o->dims[i];
                q.sx[r - 1] = sx, q.sy[r - 1] = sy;
                continue;
            }
            q.dims[r] = o->dims[i], q.sx[r] = sx, q.sy[r] = sy;
            r++;
        }
        if (r == 0) q.dims[0] = 1, q.sx[0] = 1, q.sy[0] = 1, r = 1;
        /* element strides on the coalesced shape (0 along repeated axes) */
        int64_t ax = 1, ay = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t bx = q.sx[i] != 0, by = q.sy[i] != 0;
            q.sx[i] = bx ? ax : 0;
            q.sy[i] = by ? ay : 0;
            if (bx) ax *= q.dims[i];
            if (by) ay *= q.dims[i];
        }
        q.rank = r;
        q.fn = binary_fast;
        break;
    }
    case FK__OP_PAD: {
        if (!all_f32(g, n, 1) || a->pad_mode != FK__PAD_CONSTANT) return FK_OK;
        const fk__tensor *x = &g->t[n->in[0]];
        if (x->rank < 1 || a->n_pads_nd != 2 * x->rank || numel(x) == 0) return FK_OK;
        q.fn = pad_fast;
        break;
    }
    case FK__OP_MAX_POOL:
    case FK__OP_AVG_POOL: {
        if (!all_f32(g, n, 1) || a->layout != FK__NCHW || n->n_out != 1) return FK_OK;
        const fk__tensor *x = &g->t[n->in[0]], *y = &g->t[n->out[0]];
        if (x->rank != 4 || y->rank != 4) return FK_OK;
        q.C = (int)x->dims[1], q.H = (int)x->dims[2], q.W = (int)x->dims[3], q.Ho = (int)y->dims[2],
        q.Wo = (int)y->dims[3];
        q.kh = a->kernel[0], q.kw = a->kernel[1], q.sh = a->stride[0], q.sw = a->stride[1];
        q.dh = n->op == FK__OP_MAX_POOL ? a->dilation[0] : 1, q.dw = n->op == FK__OP_MAX_POOL ? a->dilation[1] : 1;
        q.pt = a->pads[0], q.pl = a->pads[1];
        q.is_max = n->op == FK__OP_MAX_POOL;
        if (q.kh < 1 || q.kw < 1 || q.sh < 1 || q.sw < 1 || q.dh < 1 || q.dw < 1 || q.Ho < 1 || q.Wo < 1 ||
            q.pt < 0 || q.pl < 0)
            return FK_OK;
        int nb = (q.Wo + 15) / 16;
        int need_w = ((nb - 1) * 16 + 15) * q.sw + (q.kw - 1) * q.dw + 1 + (q.sw == 2 ? 16 : 0);
        int need_h = (q.Ho - 1) * q.sh + (q.kh - 1) * q.dh + 1;
        q.wp = need_w > q.W + q.pl ? need_w : q.W + q.pl;
        q.wp = (q.wp + 15) / 16 * 16;
        q.hp = need_h > q.H + q.pt ? need_h : q.H + q.pt;
        q.chunks_max = 16;
        /* the tiled path reads rows [0, Ho*sh) x columns [0, Wo*sw) of the input only (ceil_mode may have made a
         * last window that leaves the input: then it is not tiled) and needs a row of W + 32 floats of scratch */
        q.tiles = q.kh == q.sh && q.kw == q.sw && q.dh == 1 && q.dw == 1 && !a->pads[0] && !a->pads[1] &&
                  !a->pads[2] && !a->pads[3] && q.Ho * q.sh <= q.H && q.Wo * q.sw <= q.W;
        if (q.tiles && (size_t)q.hp * q.wp < (size_t)q.Wo * q.sw + 32) q.wp += 32;
        q.narrow = !q.tiles && q.W <= 32 && q.Wo <= 16 && q.kw <= 8 && q.dh == 1 && q.dw == 1;
        /* every column a window reads, 2 * Wo - 1 + 2 - pl, lies in the row of 32 * (blocks + 1) values */
        q.k3s2 = !q.tiles && !q.narrow && q.is_max && q.kw == 3 && q.sw == 2 && q.pl <= 1 && q.dh == 1 && q.dw == 1;
        for (int kx = 0; q.narrow && kx < q.kw; kx++)
            for (int ox = 0; ox < 16; ox++) {
                int col = ox * q.sw - q.pl + kx;
                int inside = ox < q.Wo && col >= 0 && col < q.W;
                q.nidx[kx][ox] = inside ? col : 0;
                if (inside) q.nmask[kx] |= (uint16_t)(1u << ox);
            }
        for (int ox = 0; q.narrow && ox < 16; ox++) {
            int ws = ox * q.sw - q.pl, we = ws + q.kw;
            if (we > q.W + a->pads[3]) we = q.W + a->pads[3];
            int w0 = ws < 0 ? 0 : ws, w1 = we > q.W ? q.W : we;
            int cols = a->count_include_pad ? we - ws : w1 - w0;
            q.ncolinv[ox] = ox < q.Wo && cols > 0 ? 1.0f / (float)cols : 0.0f;
        }
        if (q.k3s2) { /* one row per chunk, 64-byte aligned */
            q.wp = 32 * ((q.Wo + 15) / 16 + 1);
            if (q.wp < (q.W + 15) / 16 * 16) q.wp = (q.W + 15) / 16 * 16;
            q.hp = 1;
            n->scratch_bytes = sizeof(float) * ((size_t)q.chunks_max * q.wp + 16);
        } else {
            n->scratch_bytes = sizeof(float) * (size_t)q.chunks_max * q.hp * q.wp;
        }
        q.fn = pool_fast;
        break;
    }
    case FK__OP_TRANSPOSE: {
        const fk__tensor *x = &g->t[n->in[0]], *y = &g->t[n->out[0]];
        int r = x->rank;
        if (n->n_in < 1 || y->rank != r || r < 2 || a->n_perm != r) return FK_OK;
        int keep = 0; /* trailing axes left in place */
        while (keep < r && a->perm[r - 1 - keep] == r - 1 - keep) keep++;
        int64_t block = 1, st[FK__MAX_RANK], s = 1;
        for (int i = r - 1; i >= 0; i--) st[i] = s, s *= x->dims[i];
        for (int i = r - keep; i < r; i++) block *= x->dims[i];
        if (keep == 0 || block < 8) {
            /* without size-1 axes and with the input axes that stay adjacent merged, NCHW <-> NHWC is a batched
             * 2-D transpose [B][R][S] -> [B][S][R] */
            int ax[FK__MAX_RANK], m = 0;
            for (int i = 0; i < r; i++)
                if (x->dims[a->perm[i]] != 1) ax[m++] = a->perm[i];
            int64_t gd[FK__MAX_RANK];
            int gs[FK__MAX_RANK], ng = 0; /* merged groups in output order: first input axis, size */
            for (int i = 0; i < m; i++) {
                if (ng > 0 && ax[i] == ax[i - 1] + 1) {
                    gd[ng - 1] *= x->dims[ax[i]];
                    continue;
                }
                gs[ng] = ax[i], gd[ng] = x->dims[ax[i]], ng++;
            }
            int lead = ng == 3 && gs[0] < gs[2] && gs[2] < gs[1]; /* [B][R][S] -> [B][S][R] */
            if (!(ng == 2 && gs[1] < gs[0]) && !lead) return FK_OK;
            if (fk__dtype_size(x->dtype) != 4) return FK_OK;
            q.dims[0] = lead ? gd[0] : 1;   /* B */
            q.dims[1] = gd[lead ? 2 : 1];   /* R: rows of the input */
            q.dims[2] = gd[lead ? 1 : 0];   /* S: row length of the input */
            q.fn = transpose2d_fast;
            break;
        }
        q.rank = r - keep;
        for (int i = 0; i < q.rank; i++) q.dims[i] = y->dims[i], q.sx[i] = st[a->perm[i]];
        q.sy[0] = block;
        q.fn = transpose_fast;
        break;
    }
    case FK__OP_EXP:
        if (!all_f32(g, n, 1) || numel(&g->t[n->in[0]]) != numel(&g->t[n->out[0]])) return FK_OK;
        q.fn = exp_fast;
        break;
    default: return fk__fast_copy_prepare(g, n); /* Slice, Concat, Softmax (fast_copy.c) */
    }
    elt_prep *p = fk__malloc(sizeof *p);
    if (!p) return FK_ENOMEM;
    *p = q;
    return attach(n, p);
#else
    (void)g;
    (void)n;
    return FK_OK;
#endif
}

fk__kernel_fn fk__fast_elt_kernel(const fk__node *n) {
    if (n->prep && n->prep_free == elt_prep_free) return ((const elt_prep *)n->prep)->fn;
    return fk__fast_copy_kernel(n);
}
