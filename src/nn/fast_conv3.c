/*
 * fast_conv3.c — two NCHW convolution paths that pack the GEMM's B panels themselves (nn layer, beside
 * fast_conv.c, offered each Conv first by its dispatch; both run fk__gemm_avx512 with fk__gemm_args.pack_b,
 * Y[O x HW] = W[O x K] * B[K x HW], the weights packed once at load as A):
 *   - 1x1 with a pre-operation: prepare.c folds a BatchNormalization (+ Relu) whose only reader is a 1x1
 *     convolution forward into it (fk__attr.pre_op: inputs 3 and 4 are the per-channel scale and shift):
 *     DenseNet's pre-activation layer BN -> ReLU -> Conv 1x1. Each K x NR panel of B gets x * scale + shift
 *     and the ReLU while it is packed, so the normalised activations are never written and read back.
 *   - stride 2 with many taps (K = C*kh*kw > 64, e.g. DenseNet's 7x7 stride-2 stem on 3 channels): the input
 *     is first split once into four zero-padded phase planes per channel (even/odd rows x even/odd columns),
 *     where every tap of a run of consecutive outputs in a row is a contiguous run: packing a panel is then
 *     one masked copy per K row and output row, instead of the border checks and even-lane permutes of the
 *     generic im2col (which took 30 % of the stem's time).
 * The reference is fk__op_conv_ref (which applies the pre-operation too); tests/test_nn_fast_conv.c.
 */
#include "nn/fast.h"

#include <string.h>

enum { C3_PRE_1X1 = 1, C3_S2_PHASE };

typedef struct c3_prep {
    int kind;
    int C, O, H, W, Ho, Wo, K;
    float *w;             /* A: the weights packed in MR-row panels */
    float *bias, *slope;  /* O values; slope only for PReLU */
    float *scale, *shift; /* C3_PRE_1X1: C values */
    int pre_relu;
    /* C3_S2_PHASE */
    int kh, kw, pt, pl, Hq, Wq; /* Hq x Wq: one phase plane */
    int *koff;                   /* per K row: offset of its (oy, ox) = (0, 0) input in the phase planes */
    fk__epilogue epi;
} c3_prep;

static void c3_prep_free(void *pv) {
    c3_prep *p = pv;
    if (!p) return;
    fk__free(p->w);
    fk__free(p->bias);
    fk__free(p->slope);
    fk__free(p->scale);
    fk__free(p->shift);
    fk__free(p->koff);
    fk__free(p);
}

#ifdef FK_HAVE_X86

typedef struct c3_ctx {
    const c3_prep *p;
    const float *x; /* C3_PRE_1X1: the input; C3_S2_PHASE: the phase planes */
} c3_ctx;

/* Columns [col0, col0 + nc) of pre(X) as a K x NR panel (columns past nc: don't care, the GEMM masks them). */
static FK_AVX512 void pack_pre(const void *ctxv, float *dst, int col0, int nc) {
    const c3_ctx *c = ctxv;
    const c3_prep *p = c->p;
    __mmask16 k0 = fk__lanes16(nc), k1 = fk__lanes16(nc - 16);
    const float *x = c->x + col0;
    const __m512 z = _mm512_setzero_ps();
    int HW = p->H * p->W;
    for (int k = 0; k < p->C; k++, x += HW, dst += FK__GEMM_NR) {
        __m512 s = _mm512_set1_ps(p->scale[k]), t = _mm512_set1_ps(p->shift[k]);
        __m512 v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k0, x), s, t);
        __m512 v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k1, x + 16), s, t);
        if (p->pre_relu) {
            v0 = _mm512_max_ps(v0, z);
            v1 = _mm512_max_ps(v1, z);
        }
        _mm512_storeu_ps(dst, v0);
        _mm512_storeu_ps(dst + 16, v1);
    }
}

/* Splits channel after channel into its four phase planes [C][ry][rx][Hq][Wq]: padded position (y, x) of the
 * input (zero outside it) goes to plane (y & 1, x & 1) at (y >> 1, x >> 1). */
static FK_AVX512 void split_phases(const c3_prep *p, const float *x, float *q) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 z = _mm512_setzero_ps();
    size_t plane = (size_t)p->Hq * p->Wq;
    for (int c = 0; c < p->C; c++) {
        const float *xc = x + (size_t)c * p->H * p->W;
        for (int y = 0; y < 2 * p->Hq; y++) {
            float *de = q + ((size_t)c * 4 + (y & 1) * 2) * plane + (size_t)(y >> 1) * p->Wq, *dod = de + plane;
            int iy = y - p->pt;
            const float *xr = iy >= 0 && iy < p->H ? xc + (size_t)iy * p->W : NULL;
            for (int j = 0; j < p->Wq; j += 16) { /* padded columns [2j, 2j + 32) */
                __m512 v[2];
                for (int h = 0; h < 2; h++) {
                    int x0 = 2 * j + 16 * h, lo = p->pl - x0, hi = p->pl + p->W - x0; /* lanes [lo, hi) */
                    if (lo < 0) lo = 0;
                    if (hi > 16) hi = 16;
                    v[h] = xr && hi > lo ? _mm512_maskz_loadu_ps((__mmask16)(fk__lanes16(hi) & ~fk__lanes16(lo)), xr + (x0 - p->pl))
                                         : z;
                }
                __mmask16 m = fk__lanes16(p->Wq - j);
                _mm512_mask_storeu_ps(de + j, m, _mm512_permutex2var_ps(v[0], even, v[1]));
                _mm512_mask_storeu_ps(dod + j, m, _mm512_permutex2var_ps(v[0], odd, v[1]));
            }
        }
    }
}

/* Columns [col0, col0 + nc) of the im2col matrix from the phase planes: per output row crossed, one
 * contiguous run per K row. */
static FK_AVX512 void pack_s2(const void *ctxv, float *dst, int col0, int nc) {
    const c3_ctx *c = ctxv;
    const c3_prep *p = c->p;
    int pix = col0, rel = 0;
    while (rel < nc) {
        int oy = pix / p->Wo, ox = pix - oy * p->Wo, seg = p->Wo - ox < nc - rel ? p->Wo - ox : nc - rel;
        const float *src = c->x + (size_t)oy * p->Wq + ox;
        float *d = dst + rel;
        if (seg > 16) {
            __mmask16 m = fk__lanes16(seg - 16);
            for (int k = 0; k < p->K; k++) {
                const float *s = src + p->koff[k];
                _mm512_storeu_ps(d + (size_t)k * FK__GEMM_NR, _mm512_loadu_ps(s));
                _mm512_mask_storeu_ps(d + (size_t)k * FK__GEMM_NR + 16, m, _mm512_maskz_loadu_ps(m, s + 16));
            }
        } else {
            __mmask16 m = fk__lanes16(seg);
            for (int k = 0; k < p->K; k++)
                _mm512_mask_storeu_ps(d + (size_t)k * FK__GEMM_NR, m, _mm512_maskz_loadu_ps(m, src + p->koff[k]));
        }
        rel += seg;
        pix += seg;
    }
}

static int conv3_fast(const fk__run_ctx *cx, const fk__node *n) {
    const c3_prep *p = n->prep;
    const float *x = cx->data[n->in[0]];
    float *y = cx->data[n->out[0]];
    int batch = (int)cx->g->t[n->in[0]].dims[0], HWo = p->Ho * p->Wo;
    float *scratch = (float *)cx->scratch, *planes = NULL;
    if (p->kind == C3_S2_PHASE) {
        planes = scratch;
        scratch += (size_t)p->C * 4 * p->Hq * p->Wq;
    }
    for (int b = 0; b < batch; b++, x += (size_t)p->C * p->H * p->W, y += (size_t)p->O * HWo) {
        c3_ctx c = {p, x};
        if (planes) {
            split_phases(p, x, planes);
            c.x = planes;
        }
        fk__gemm_args ga = {p->O, HWo, p->K, p->w, NULL, 0, 0, y, HWo, &p->epi,
                            p->kind == C3_PRE_1X1 ? pack_pre : pack_s2, &c, scratch, NULL, 0, 0, 0};
        fk__gemm_avx512(&ga, cx->pool, cx->threads);
    }
    return FK_OK;
}

#endif

int fk__fast_conv3_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    const fk__attr *a = &n->a;
    if (n->n_in < 2 || n->n_out < 1 || a->layout != FK__NCHW || a->group > 1) return FK_OK;
    const fk__tensor *xt = &g->t[n->in[0]], *yt = &g->t[n->out[0]], *wt = &g->t[n->in[1]];
    if (xt->rank != 4 || yt->rank != 4 || wt->rank != 4 || xt->dtype != FK__DT_F32) return FK_OK;
    c3_prep q = {0};
    q.C = (int)xt->dims[1], q.H = (int)xt->dims[2], q.W = (int)xt->dims[3];
    q.O = (int)yt->dims[1], q.Ho = (int)yt->dims[2], q.Wo = (int)yt->dims[3];
    q.kh = (int)wt->dims[2], q.kw = (int)wt->dims[3], q.pt = a->pads[0], q.pl = a->pads[1];
    q.K = q.C * q.kh * q.kw;
    if (wt->dims[0] != q.O || wt->dims[1] != q.C || q.Ho < 1 || q.Wo < 1) return FK_OK;
    if (a->pre_op) {
        if (n->n_in < 5 || q.kh != 1 || q.kw != 1 || q.Ho != q.H || q.Wo != q.W || a->stride[0] != 1 ||
            a->stride[1] != 1 || a->pads[0] || a->pads[1] || a->pads[2] || a->pads[3])
            return FK_OK;
        q.kind = C3_PRE_1X1;
    } else if (a->stride[0] == 2 && a->stride[1] == 2 && a->dilation[0] == 1 && a->dilation[1] == 1 && q.K > 64 &&
               n->n_in <= 3) {
        q.kind = C3_S2_PHASE;
        /* the planes cover every padded position a tap reads: rows up to 2*(Ho-1) + kh - 1, same for columns */
        int hp = 2 * (q.Ho - 1) + q.kh, wp = 2 * (q.Wo - 1) + q.kw;
        if (hp < q.H + q.pt) hp = q.H + q.pt;
        if (wp < q.W + q.pl) wp = q.W + q.pl;
        q.Hq = (hp + 1) / 2;
        q.Wq = (wp + 1) / 2 + 16; /* + 16: a panel's run may read a whole vector past the last output */
    } else {
        return FK_OK;
    }
    const float *w = fk__const_data(g, n->in[1], -1), *bias = n->n_in > 2 && n->in[2] >= 0 ? fk__const_data(g, n->in[2], q.O) : NULL;
    if (!w || (n->n_in > 2 && n->in[2] >= 0 && !bias)) return FK_OK;
    const float *scale = NULL, *shift = NULL, *slope = NULL;
    if (q.kind == C3_PRE_1X1) {
        scale = fk__const_data(g, n->in[3], q.C), shift = fk__const_data(g, n->in[4], q.C);
        if (!scale || !shift) return FK_OK;
    }
    int64_t ns = 0;
    if (a->act == FK__ACT_PRELU) {
        slope = fk__const_data(g, a->act_slope, -1);
        if (!slope) return FK_OK;
        ns = fk__tensor_numel(&g->t[a->act_slope]);
        if (ns != 1 && ns != q.O) return FK_OK;
    }
    c3_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    *p = q;
    p->pre_relu = a->pre_act == FK__ACT_RELU;
    p->w = fk__malloc(sizeof(float) * fk__gemm_packed_a_size(q.O, q.K));
    p->bias = fk__calloc((size_t)q.O, sizeof(float));
    if (scale) p->scale = fk__malloc(sizeof(float) * (size_t)q.C);
    if (shift) p->shift = fk__malloc(sizeof(float) * (size_t)q.C);
    if (slope) p->slope = fk__malloc(sizeof(float) * (size_t)q.O);
    if (q.kind == C3_S2_PHASE) p->koff = fk__malloc(sizeof(int) * (size_t)q.K);
    if (!p->w || !p->bias || (scale && (!p->scale || !p->shift)) || (slope && !p->slope) ||
        (q.kind == C3_S2_PHASE && !p->koff)) {
        c3_prep_free(p);
        return FK_ENOMEM;
    }
    fk__gemm_pack_a(p->w, w, q.K, q.O, q.K);
    if (bias) memcpy(p->bias, bias, sizeof(float) * (size_t)q.O);
    if (scale) memcpy(p->scale, scale, sizeof(float) * (size_t)q.C);
    if (shift) memcpy(p->shift, shift, sizeof(float) * (size_t)q.C);
    for (int o = 0; slope && o < q.O; o++) p->slope[o] = slope[ns == 1 ? 0 : o];
    size_t scratch = (size_t)FK__GEMM_MAX_CHUNKS * q.K * FK__GEMM_NR;
    if (q.kind == C3_S2_PHASE) {
        /* K row (c, ky, kx) (the weights' own order) reads plane (c, ky & 1, kx & 1) from (ky >> 1, kx >> 1) */
        size_t plane = (size_t)q.Hq * q.Wq;
        for (int c = 0; c < q.C; c++)
            for (int ky = 0; ky < q.kh; ky++)
                for (int kx = 0; kx < q.kw; kx++)
                    p->koff[(c * q.kh + ky) * q.kw + kx] =
                        (int)(((size_t)c * 4 + (ky & 1) * 2 + (kx & 1)) * plane + (size_t)(ky >> 1) * q.Wq + (kx >> 1));
        scratch += (size_t)q.C * 4 * plane;
    }
    p->epi.bias = p->bias;
    p->epi.slope = p->slope;
    p->epi.act = a->act;
    p->epi.act_a = a->act_a;
    p->epi.act_b = a->act_b;
    p->epi.per_row = 1;
    n->scratch_bytes = sizeof(float) * scratch;
    n->prep = p;
    n->prep_free = c3_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__fast_conv3_kernel(const fk__node *n) {
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == c3_prep_free) return conv3_fast;
#else
    (void)n;
#endif
    return NULL;
}
