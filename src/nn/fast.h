/*
 * fast.h — internal interface between the executor's fast-kernel files (fast.c dispatch, fast_gemm.c the
 * packed SGEMM, fast_conv.c convolution/depthwise). Nothing outside src/nn/fast*.c includes this; the
 * executor only sees fk__fast_prepare / fk__fast_kernel from graph.h.
 */
#ifndef FK_NN_FAST_H
#define FK_NN_FAST_H

#include "nn/graph.h"

#include <stddef.h>

/* 1 when this CPU runs the AVX-512 kernels (F, BW, VL, DQ and FMA). */
int fk__cpu_avx512(void);

/* GEMM register block: MR rows of A (packed) times NR columns of B (two 16-float vectors). */
#define FK__GEMM_MR 12
#define FK__GEMM_NR 32

/* What is applied to each result before it is stored: bias, then the fused activation. Bias and slope
 * are indexed by the output channel, which is the GEMM row (NCHW) or the column (NHWC). */
typedef struct fk__epilogue {
    const float *bias;  /* one per channel, never NULL */
    const float *slope; /* PReLU: one per channel; else NULL */
    int act;            /* enum fk__act */
    float act_a, act_b;
    int per_row;        /* 1: channel = row (NCHW), 0: channel = column (NHWC) */
} fk__epilogue;

/* C[M x N] = A[M x K] * B[K x N] (+ epilogue). A is packed in panels of MR rows: panel p holds
 * A[p*MR + m][k] at ap[p*K*MR + k*MR + m] (zero beyond M). B is read as b[k*ldb + n]: either a plain row-major
 * matrix (NCHW activations, im2col buffer) or, with bpanel > 0, NR-wide packed panels where column block j
 * starts at b + j*bpanel. Rows of C are ldc apart. Runs on up to `threads` threads of POOL. */
typedef struct fk__gemm_args {
    int M, N, K;
    const float *ap;
    const float *b;
    ptrdiff_t ldb, bpanel;
    float *c;
    ptrdiff_t ldc;
    const fk__epilogue *epi;
    /* Optional: B is produced panel by panel (implicit im2col): pack_b writes columns [col0, col0 + nc) as a
     * K x NR panel into dst. Each parallel chunk (at most FK__GEMM_MAX_CHUNKS) packs into its own buffer:
     * bbuf + chunk * K * NR floats. b/ldb/bpanel are ignored then. */
    void (*pack_b)(const void *ctx, float *dst, int col0, int nc);
    const void *pack_ctx;
    float *bbuf;
    /* Optional: K = ntaps * (K / ntaps) and row t * (K / ntaps) + c of B is b + toff[t] + c * ldb (a
     * convolution's taps read straight from zero-padded input planes). NULL: plain rows. */
    const int *toff;
    int ntaps;
    /* Optional (plain or toff B): bwo > 0 maps column n of B to b + (n / bwo) * bwp + n % bwo — outputs of a
     * convolution taken row by row from padded planes of width bwp, C written compactly. bwo must be a
     * multiple of NR (a column block never crosses a row) or NR / 2 (a block is two whole rows). */
    int bwo, bwp;
} fk__gemm_args;

#define FK__GEMM_MAX_CHUNKS 8

void fk__gemm_avx512(const fk__gemm_args *ga, fk__pool *pool, int threads);

/* Packs rows [0, M) of a row-major M x K matrix (row stride lda) into MR-row panels (fk__gemm_packed_a_size
 * floats). */
size_t fk__gemm_packed_a_size(int M, int K);
void fk__gemm_pack_a(float *dst, const float *a, ptrdiff_t lda, int M, int K);

/* Tensor ID's float32 constant values, or NULL (not a constant, or, with N >= 0, not N values). */
static inline const float *fk__const_data(const fk__graph *g, int id, int64_t n) {
    if (id < 0 || id >= g->nt) return NULL;
    const fk__tensor *t = &g->t[id];
    if (t->kind != FK__T_CONST || t->dtype != FK__DT_F32 || !t->data) return NULL;
    return n < 0 || fk__tensor_numel(t) == n ? t->data : NULL;
}

/* Scalar activation / bias + activation of one value of channel CH (border paths, sigmoid/tanh). */
float fk__act_scalar(const fk__epilogue *e, int ch, float v);
float fk__epi_apply(const fk__epilogue *e, int ch, float v);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define FK_HAVE_X86 1

/* the first N of 16 lanes (none for N <= 0, all from 16) */
static inline __mmask16 fk__lanes16(int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* exp of 16 lanes: Cephes' expf (range reduction by ln 2 in two parts, degree-6 polynomial, exponent via
 * scalef), within 2 ulp of expf on [-87, 88]; inputs are clamped so the result is finite and not subnormal. */
static inline __attribute__((always_inline)) FK_AVX512 __m512 fk__exp_vec(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 1 / (1 + exp(-x)) */
static inline __attribute__((always_inline)) FK_AVX512 __m512 fk__sigmoid_vec(__m512 x) {
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), fk__exp_vec(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh x = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7 near 0, exact 1 beyond |x| = 9. */
static inline __attribute__((always_inline)) FK_AVX512 __m512 fk__tanh_vec(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 e = fk__exp_vec(_mm512_min_ps(_mm512_add_ps(ax, ax), _mm512_set1_ps(18.0f)));
    __m512 t = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                             _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    /* copy the sign of x */
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t),
                                                _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
}

/* Activation of one vector (SLOPE: the PReLU slopes of its 16 lanes). */
static inline __attribute__((always_inline)) FK_AVX512 __m512 fk__act_vec(const fk__epilogue *e, __m512 v,
                                                                            __m512 slope) {
    switch (e->act) {
    case FK__ACT_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case FK__ACT_CLIP: return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(e->act_a)), _mm512_set1_ps(e->act_b));
    case FK__ACT_LEAKY: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(e->act_a));
    }
    case FK__ACT_PRELU: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(v, neg, v, slope);
    }
    case FK__ACT_SIGMOID: return fk__sigmoid_vec(v);
    case FK__ACT_TANH: return fk__tanh_vec(v);
    default: return v;
    }
}

/* Bias, then activation ACT, of one vector, where ACT is a constant after inlining (none, ReLU, PReLU
 * specialised; anything else through fk__act_vec): a switch per stored vector was a good part of the small
 * depthwise kernels' time. */
static inline __attribute__((always_inline)) FK_AVX512 __m512 fk__bias_act_vec(const fk__epilogue *e, int act,
                                                                                 __m512 v, __m512 bias, __m512 slope) {
    v = _mm512_add_ps(v, bias);
    switch (act) {
    case FK__ACT_NONE: return v;
    case FK__ACT_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case FK__ACT_PRELU: return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, slope);
    default: return fk__act_vec(e, v, slope);
    }
}
#endif

/* Gemm / MatMul with constant B (fast_gemm.c). */
int fk__fast_fc_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__fast_fc_kernel(const fk__node *n);

/* Elementwise, batch norm, pad, pools, transpose (fast_elt.c). */
int fk__fast_elt_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__fast_elt_kernel(const fk__node *n);

/* Geometry of one NCHW convolution image (the fields fast_conv.c derives from the node). */
typedef struct fk__conv_geom {
    int C, H, W, O, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl;
} fk__conv_geom;

/* Direct convolution for few input channels, group 1 (fast_direct.c). create leaves *out NULL when the shape
 * is not one it takes; W is OIHW; *scratch_bytes is what a run needs. run does one image. */
typedef struct fk__direct_conv fk__direct_conv;
int fk__direct_conv_create(const fk__conv_geom *g, const float *w, fk__direct_conv **out, size_t *scratch_bytes);
void fk__direct_conv_run(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *y, float *scratch,
                         fk__pool *pool, int threads);
void fk__direct_conv_free(fk__direct_conv *d);
/* One output row OY (fast_dw_fuse.c): BUF holds fk__direct_conv_buf floats; channel o goes to yrow + o * plane. */
size_t fk__direct_conv_buf(const fk__direct_conv *d);
void fk__direct_conv_row(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *buf, float *yrow,
                         size_t plane, int oy);

/* NCHW depthwise convolution without padded planes (fast_dw.c): C == O, W is [C][kh][kw]. create leaves *out
 * NULL for shapes it does not take (the padded-plane kernels in fast_conv.c run those). run does one image. */
typedef struct fk__dw_conv fk__dw_conv;
int fk__dw_conv_create(const fk__conv_geom *g, const float *w, fk__dw_conv **out);
void fk__dw_conv_run(const fk__dw_conv *d, const fk__epilogue *e, const float *x, float *y, fk__pool *pool,
                     int threads);
void fk__dw_conv_free(fk__dw_conv *d);

/* A stem chain (direct conv, then depthwise 3x3 / 1x1 convs) run row by row as one kernel at its last node, the
 * earlier nodes doing nothing (fast_dw_fuse.c); fast_conv.c offers every Conv to it first. */
int fk__dw_fuse_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__dw_fuse_kernel(const fk__node *n);

/* Slice, Concat, Softmax (fast_copy.c); fast_elt.c hands these ops over. */
int fk__fast_copy_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__fast_copy_kernel(const fk__node *n);

/* Convolution (fast_conv.c). */
int fk__fast_conv_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__fast_conv_kernel(const fk__node *n);

/* Stride-1 NCHW convolutions with input and output channels in multiples of 16, run in a channel-blocked
 * layout (fast_blocked.c; with or without a pre-operation); with STEM, instead a few-input-channel conv of
 * stride 2 across and many taps (output channels in multiples of 16). fk__fast_conv_prepare offers every Conv
 * here first. */
int fk__blocked_conv_prepare(fk__graph *g, fk__node *n, int stem);
/* For tests: which of N's tensors a blocked conv keeps blocked (0 when N is not one): 1 its output, 2 its whole
 * input (the tensor between two blocked convs), 4 part of its input (a dense block's Concat buffer). */
int fk__blocked_conv_layout(const fk__node *n);
fk__kernel_fn fk__blocked_conv_kernel(const fk__node *n);

/* Convolutions whose GEMM packs its own B panels: 1x1 with a folded-forward BatchNorm (fk__attr.pre_op) and
 * stride 2 with many taps (fast_conv3.c). fk__fast_conv_prepare offers every Conv here first. */
int fk__fast_conv3_prepare(fk__graph *g, fk__node *n);
fk__kernel_fn fk__fast_conv3_kernel(const fk__node *n);

#endif
