/*
 * fast_conv3.c — fast NCHW 1x1 convolution with a pre-operation (nn layer, beside fast_conv.c, reached through
 * its dispatch). prepare.c folds a BatchNormalization (+ Relu) whose only reader is a 1x1 convolution forward
 * into that convolution (fk__attr.pre_op: inputs 3 and 4 are the per-channel scale and shift), which is
 * DenseNet's pre-activation layer BN -> ReLU -> Conv 1x1. Here the GEMM Y[O x HW] = W[O x C] * X[C x HW] packs
 * each K x NR panel of B itself (fk__gemm_args.pack_b) and applies x * scale + shift and the ReLU while doing
 * so: the normalised activations are never written to memory and read back, and B panels are contiguous (the
 * rows of X are a whole plane apart). The reference is fk__op_conv_ref, which applies the same pre-operation.
 */
#include "nn/fast.h"

#include <string.h>

typedef struct pre_prep {
    int C, O, HW;
    float *w;            /* A: the weights packed in MR-row panels */
    float *bias, *slope; /* O values; slope only for PReLU */
    float *scale, *shift; /* C values */
    int pre_relu;
    fk__epilogue epi;
} pre_prep;

static void pre_prep_free(void *pv) {
    pre_prep *p = pv;
    if (!p) return;
    fk__free(p->w);
    fk__free(p->bias);
    fk__free(p->slope);
    fk__free(p->scale);
    fk__free(p->shift);
    fk__free(p);
}

static const float *const_data(const fk__graph *g, int id, int64_t n) {
    if (id < 0 || id >= g->nt) return NULL;
    const fk__tensor *t = &g->t[id];
    if (t->kind != FK__T_CONST || t->dtype != FK__DT_F32 || !t->data) return NULL;
    return n < 0 || fk__tensor_numel(t) == n ? t->data : NULL;
}

#ifdef FK_HAVE_X86

typedef struct pre_ctx {
    const pre_prep *p;
    const float *x;
} pre_ctx;

/* Columns [col0, col0 + nc) of pre(X) as a K x NR panel (columns past nc: don't care, the GEMM masks them). */
static FK_AVX512 void pack_pre(const void *ctxv, float *dst, int col0, int nc) {
    const pre_ctx *c = ctxv;
    const pre_prep *p = c->p;
    __mmask16 k0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
    __mmask16 k1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
    const float *x = c->x + col0;
    const __m512 z = _mm512_setzero_ps();
    for (int k = 0; k < p->C; k++, x += p->HW, dst += FK__GEMM_NR) {
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

static int conv_pre_fast(const fk__run_ctx *cx, const fk__node *n) {
    const pre_prep *p = n->prep;
    const float *x = cx->data[n->in[0]];
    float *y = cx->data[n->out[0]];
    int batch = (int)cx->g->t[n->in[0]].dims[0];
    for (int b = 0; b < batch; b++, x += (size_t)p->C * p->HW, y += (size_t)p->O * p->HW) {
        pre_ctx c = {p, x};
        fk__gemm_args ga = {p->O, p->HW, p->C, p->w, NULL, 0, 0, y, p->HW, &p->epi, pack_pre, &c,
                            (float *)cx->scratch, NULL, 0};
        fk__gemm_avx512(&ga, cx->pool, cx->threads);
    }
    return FK_OK;
}

#endif

int fk__fast_conv_pre_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    const fk__attr *a = &n->a;
    if (!a->pre_op || n->n_in < 5 || n->n_out < 1 || a->layout != FK__NCHW || a->group > 1) return FK_OK;
    const fk__tensor *xt = &g->t[n->in[0]], *yt = &g->t[n->out[0]], *wt = &g->t[n->in[1]];
    if (xt->rank != 4 || yt->rank != 4 || wt->rank != 4 || xt->dtype != FK__DT_F32) return FK_OK;
    int C = (int)xt->dims[1], O = (int)yt->dims[1], HW = (int)(xt->dims[2] * xt->dims[3]);
    if (wt->dims[0] != O || wt->dims[1] != C || wt->dims[2] != 1 || wt->dims[3] != 1 || yt->dims[2] != xt->dims[2] ||
        yt->dims[3] != xt->dims[3] || a->stride[0] != 1 || a->stride[1] != 1 || a->pads[0] || a->pads[1] ||
        a->pads[2] || a->pads[3])
        return FK_OK;
    const float *w = const_data(g, n->in[1], -1), *bias = n->in[2] >= 0 ? const_data(g, n->in[2], O) : NULL;
    const float *scale = const_data(g, n->in[3], C), *shift = const_data(g, n->in[4], C);
    if (!w || (n->in[2] >= 0 && !bias) || !scale || !shift) return FK_OK;
    const float *slope = NULL;
    int64_t ns = 0;
    if (a->act == FK__ACT_PRELU) {
        slope = const_data(g, a->act_slope, -1);
        if (!slope) return FK_OK;
        ns = fk__tensor_numel(&g->t[a->act_slope]);
        if (ns != 1 && ns != O) return FK_OK;
    }
    pre_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    p->C = C, p->O = O, p->HW = HW;
    p->pre_relu = a->pre_act == FK__ACT_RELU;
    p->w = fk__malloc(sizeof(float) * fk__gemm_packed_a_size(O, C));
    p->bias = fk__calloc((size_t)O, sizeof(float));
    p->scale = fk__malloc(sizeof(float) * (size_t)C);
    p->shift = fk__malloc(sizeof(float) * (size_t)C);
    if (slope) p->slope = fk__malloc(sizeof(float) * (size_t)O);
    if (!p->w || !p->bias || !p->scale || !p->shift || (slope && !p->slope)) {
        pre_prep_free(p);
        return FK_ENOMEM;
    }
    fk__gemm_pack_a(p->w, w, C, O, C);
    if (bias) memcpy(p->bias, bias, sizeof(float) * (size_t)O);
    memcpy(p->scale, scale, sizeof(float) * (size_t)C);
    memcpy(p->shift, shift, sizeof(float) * (size_t)C);
    for (int o = 0; slope && o < O; o++) p->slope[o] = slope[ns == 1 ? 0 : o];
    p->epi.bias = p->bias;
    p->epi.slope = p->slope;
    p->epi.act = a->act;
    p->epi.act_a = a->act_a;
    p->epi.act_b = a->act_b;
    p->epi.per_row = 1;
    n->scratch_bytes = sizeof(float) * (size_t)FK__GEMM_MAX_CHUNKS * C * FK__GEMM_NR;
    n->prep = p;
    n->prep_free = pre_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__fast_conv_pre_kernel(const fk__node *n) {
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == pre_prep_free) return conv_pre_fast;
#else
    (void)n;
#endif
    return NULL;
}
