/*
 * fast_gemm.c — the executor's single-precision GEMM (nn layer, below fast_conv.c): a register-blocked
 * AVX-512 micro-kernel of MR x NR = 12 x 32 (24 accumulators) over A packed in MR-row panels at model load
 * and B read in place (NCHW activations, an im2col buffer or NR-wide packed weights), with bias and the fused
 * activation applied in registers before the single store. Tiles are spread over the session's pool.
 *
 * Why this shape: a 512-bit FMA per cycle needs >= 4 independent accumulators to hide its latency; 24 leave
 * room for 2 B vectors and the broadcast A value in 32 registers, and each k step does 24 FMAs for 2 vector
 * loads plus 12 broadcasts, so L2 bandwidth never limits it. K is blocked only beyond KC (2048): a K x NR
 * panel up to there stays within L2 (see KC).
 */
#include "nn/fast.h"

#include <math.h>
#include <string.h>


#define MR FK__GEMM_MR
#define NR FK__GEMM_NR

float fk__act_scalar(const fk__epilogue *e, int ch, float v) {
    switch (e->act) {
    case FK__ACT_RELU: return v > 0.0f ? v : 0.0f;
    case FK__ACT_CLIP: return v < e->act_a ? e->act_a : (v > e->act_b ? e->act_b : v);
    case FK__ACT_LEAKY: return v < 0.0f ? v * e->act_a : v;
    case FK__ACT_PRELU: return v < 0.0f ? v * e->slope[ch] : v;
    case FK__ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case FK__ACT_TANH: return tanhf(v);
    default: return v;
    }
}

float fk__epi_apply(const fk__epilogue *e, int ch, float v) { return fk__act_scalar(e, ch, v + e->bias[ch]); }

size_t fk__gemm_packed_a_size(int M, int K) { return (size_t)((M + MR - 1) / MR) * MR * (size_t)K; }

void fk__gemm_pack_a(float *dst, const float *a, ptrdiff_t lda, int M, int K) {
    int np = (M + MR - 1) / MR;
    for (int p = 0; p < np; p++) {
        float *d = dst + (size_t)p * K * MR;
        for (int k = 0; k < K; k++)
            for (int m = 0; m < MR; m++) {
                int r = p * MR + m;
                d[(size_t)k * MR + m] = r < M ? a[r * lda + k] : 0.0f;
            }
    }
}

#ifdef FK_HAVE_X86

static inline __attribute__((always_inline)) FK_AVX512 void
ukr(const int mr, const int nv, int K, const float *restrict a, const float *restrict b, ptrdiff_t ldb,
    float *restrict c, ptrdiff_t ldc, __mmask16 k0, __mmask16 k1, const fk__epilogue *e, int row0, int col0,
    int b1off, const int *toff, int ntaps, int kb0, int kb1) {
    __m512 acc0[MR], acc1[MR];
    if (kb0 == 0) {
#pragma GCC unroll 12
        for (int m = 0; m < mr; m++) {
            acc0[m] = _mm512_setzero_ps();
            acc1[m] = _mm512_setzero_ps();
        }
    } else { /* a later K block: continue the partial sums stored by the previous one */
#pragma GCC unroll 12
        for (int m = 0; m < mr; m++) {
            acc0[m] = _mm512_maskz_loadu_ps(k0, c + m * ldc);
            acc1[m] = nv > 1 ? _mm512_maskz_loadu_ps(k1, c + m * ldc + 16) : _mm512_setzero_ps();
        }
    }
    /* rows of B: k = t * kc + ch -> b + toff[t] + ch * ldb (plain B: one "tap" at offset 0) */
    int kc = K / ntaps, t = kb0 / kc, ch = kb0 % kc;
    const float *bt = (toff ? b + toff[t] : b) + (ptrdiff_t)ch * ldb;
    a += (size_t)kb0 * MR;
    for (int k = kb0; k < kb1; k++) {
        __m512 b0 = _mm512_maskz_loadu_ps(k0, bt);
        __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(k1, bt + b1off) : _mm512_setzero_ps();
#pragma GCC unroll 12
        for (int m = 0; m < mr; m++) {
            __m512 av = _mm512_set1_ps(a[m]);
            acc0[m] = _mm512_fmadd_ps(av, b0, acc0[m]);
            if (nv > 1) acc1[m] = _mm512_fmadd_ps(av, b1, acc1[m]);
        }
        a += MR;
        bt += ldb;
        if (++ch == kc && toff && k + 1 < kb1) {
            ch = 0;
            bt = b + toff[++t];
        }
    }
    if (kb1 < K) { /* not the last K block: store the partial sums as they are */
#pragma GCC unroll 12
        for (int m = 0; m < mr; m++) {
            _mm512_mask_storeu_ps(c + m * ldc, k0, acc0[m]);
            if (nv > 1) _mm512_mask_storeu_ps(c + m * ldc + 16, k1, acc1[m]);
        }
        return;
    }
    __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps(), cs0 = cb0, cs1 = cb0;
    if (!e->per_row) {
        cb0 = _mm512_maskz_loadu_ps(k0, e->bias + col0);
        if (nv > 1) cb1 = _mm512_maskz_loadu_ps(k1, e->bias + col0 + 16);
        if (e->act == FK__ACT_PRELU) {
            cs0 = _mm512_maskz_loadu_ps(k0, e->slope + col0);
            if (nv > 1) cs1 = _mm512_maskz_loadu_ps(k1, e->slope + col0 + 16);
        }
    }
#pragma GCC unroll 12
    for (int m = 0; m < mr; m++) {
        __m512 vb0 = cb0, vb1 = cb1, vs0 = cs0, vs1 = cs1;
        if (e->per_row) {
            vb0 = vb1 = _mm512_set1_ps(e->bias[row0 + m]);
            if (e->act == FK__ACT_PRELU) vs0 = vs1 = _mm512_set1_ps(e->slope[row0 + m]);
        }
        __m512 v0 = fk__act_vec(e, _mm512_add_ps(acc0[m], vb0), vs0);
        _mm512_mask_storeu_ps(c + m * ldc, k0, v0);
        if (nv > 1) {
            __m512 v1 = fk__act_vec(e, _mm512_add_ps(acc1[m], vb1), vs1);
            _mm512_mask_storeu_ps(c + m * ldc + 16, k1, v1);
        }
    }
}

typedef void (*ukr_fn)(int K, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                       __mmask16 k0, __mmask16 k1, const fk__epilogue *e, int row0, int col0, int b1off,
                       const int *toff, int ntaps, int kb0, int kb1);

#define UKR_DEF(mr, nv)                                                                                       \
    static FK_AVX512 void ukr_##mr##_##nv(int K, const float *a, const float *b, ptrdiff_t ldb, float *c,     \
                                          ptrdiff_t ldc, __mmask16 k0, __mmask16 k1, const fk__epilogue *e,   \
                                          int row0, int col0, int b1off, const int *toff, int ntaps, int kb0, \
                                          int kb1) {                                                          \
        ukr(mr, nv, K, a, b, ldb, c, ldc, k0, k1, e, row0, col0, b1off, toff, ntaps, kb0, kb1);               \
    }
#define UKR_ROW(mr) UKR_DEF(mr, 1) UKR_DEF(mr, 2)
UKR_ROW(1) UKR_ROW(2) UKR_ROW(3) UKR_ROW(4) UKR_ROW(5) UKR_ROW(6)
UKR_ROW(7) UKR_ROW(8) UKR_ROW(9) UKR_ROW(10) UKR_ROW(11) UKR_ROW(12)
#define UKR_PAIR(mr) {ukr_##mr##_1, ukr_##mr##_2}
static const ukr_fn ukr_table[MR][2] = {UKR_PAIR(1), UKR_PAIR(2), UKR_PAIR(3), UKR_PAIR(4),
                                        UKR_PAIR(5), UKR_PAIR(6), UKR_PAIR(7), UKR_PAIR(8),
                                        UKR_PAIR(9), UKR_PAIR(10), UKR_PAIR(11), UKR_PAIR(12)};

typedef struct gemm_job {
    const fk__gemm_args *ga;
    int nmb, tiles, chunks;
} gemm_job;

/* Plain B whose rows are far apart (NCHW activations: one row per channel, a page or more apart) is copied
 * into a contiguous K x NR panel once per column block, so the M tiles that reuse it stream it from L1
 * instead of touching K pages each. Above PACK_B_MAX_K the panel would not fit the stack buffer and B is
 * read in place. */
#define PACK_B_MAX_K 512

static FK_AVX512 void pack_b_panel(float *restrict d, const float *restrict b, ptrdiff_t ldb, int K, int nc) {
    __mmask16 k0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
    __mmask16 k1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
    for (int k = 0; k < K; k++, b += ldb, d += NR) {
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(k0, b));
        _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(k1, b + 16));
    }
}

/* K block: the part of a B panel (KC x NR floats) that the M tiles of one column block share before the next
 * part. Measured on the DenseNet layers (K 64..1152, same-process A/B): 128 (16 KB, L1) was 2-4 % slower
 * than 256, 256 1-6 % slower than 512, and 512 about 1 % slower than no blocking at all — the panel is
 * streamed from L2 fast enough, while every extra block stores and reloads all partial sums. So only
 * very deep K (beyond these models) is split. */
#define KC 2048

/* Small K (a few input channels): each tile is little work, so what counts is memory order. Row-block-major
 * order writes every C row as one sequential stream and reads B in place (K rows are few enough for the TLB). */
#define SMALL_K 64

/* where column COL0 of a plain B starts, and the offset of its block's second 16 columns (fk__gemm_args.bwo:
 * with 16-wide rows a block takes two of them) */
static inline ptrdiff_t bcol(const fk__gemm_args *ga, int col0) {
    return ga->bwo > 0 ? (ptrdiff_t)(col0 / ga->bwo) * ga->bwp + col0 % ga->bwo : col0;
}

static inline int b1off(const fk__gemm_args *ga) { return ga->bwo == NR / 2 ? ga->bwp : NR / 2; }

static FK_AVX512 void gemm_tiles_rowmajor(const fk__gemm_args *ga, int nnb, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        int mb = t / nnb, nb = t % nnb;
        int row0 = mb * MR, col0 = nb * NR;
        int mr = ga->M - row0 < MR ? ga->M - row0 : MR;
        int nc = ga->N - col0 < NR ? ga->N - col0 : NR;
        __mmask16 k0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
        __mmask16 k1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
        ukr_table[mr - 1][nc > 16](ga->K, ga->ap + (size_t)mb * ga->K * MR, ga->b + bcol(ga, col0), ga->ldb,
                                   ga->c + row0 * ga->ldc + col0, ga->ldc, k0, k1, ga->epi, row0, col0, b1off(ga),
                                   ga->toff, ga->toff ? ga->ntaps : 1, 0, ga->K);
    }
}

static FK_AVX512 void gemm_tiles(const fk__gemm_args *ga, int nmb, int t0, int t1, int chunk) {
    float bbuf[PACK_B_MAX_K * NR] __attribute__((aligned(64)));
    int pack = !ga->pack_b && !ga->toff && !ga->bpanel && ga->ldb > 4 * NR && ga->K <= PACK_B_MAX_K && nmb > 1 &&
               ga->bwo != NR / 2;
    float *pbuf = ga->pack_b ? ga->bbuf + (size_t)chunk * ga->K * NR : NULL;
    int ntaps = ga->toff ? ga->ntaps : 1;
    for (int t = t0; t < t1;) {
        int nb = t / nmb, mb0 = t % nmb, mb1 = mb0 + (t1 - t) < nmb ? mb0 + (t1 - t) : nmb;
        int col0 = nb * NR;
        int nc = ga->N - col0 < NR ? ga->N - col0 : NR;
        __mmask16 k0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
        __mmask16 k1 = nc >= 32 ? (__mmask16)0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;
        const float *b;
        ptrdiff_t ldb = ga->ldb;
        int b1 = NR / 2; /* where the block's second 16 columns start in B */
        if (pbuf) {
            ga->pack_b(ga->pack_ctx, pbuf, col0, nc);
            b = pbuf;
            ldb = NR;
        } else if (ga->bpanel) {
            b = ga->b + nb * ga->bpanel;
        } else if (pack) {
            pack_b_panel(bbuf, ga->b + bcol(ga, col0), ga->ldb, ga->K, nc);
            b = bbuf;
            ldb = NR;
        } else {
            b = ga->b + bcol(ga, col0);
            b1 = b1off(ga);
        }
        for (int kb = 0; kb < ga->K; kb += KC) {
            int kb1 = ga->K - kb < KC ? ga->K : kb + KC;
            if (ga->K - kb1 < KC / 4) kb1 = ga->K; /* no sliver of a last block */
            for (int mb = mb0; mb < mb1; mb++) {
                int row0 = mb * MR;
                int mr = ga->M - row0 < MR ? ga->M - row0 : MR;
                ukr_table[mr - 1][nc > 16](ga->K, ga->ap + (size_t)mb * ga->K * MR, b, ldb,
                                           ga->c + row0 * ga->ldc + col0, ga->ldc, k0, k1, ga->epi, row0, col0, b1,
                                           ga->toff, ntaps, kb, kb1);
            }
            kb = kb1 - KC;
        }
        t += mb1 - mb0;
    }
}

static int rowmajor(const fk__gemm_args *ga) { return ga->K <= SMALL_K && !ga->pack_b && !ga->bpanel; }

static void gemm_task(void *arg, int i) {
    const gemm_job *j = arg;
    if (rowmajor(j->ga)) {
        int nnb = (j->ga->N + NR - 1) / NR;
        gemm_tiles_rowmajor(j->ga, nnb, (int)((long)j->tiles * i / j->chunks), (int)((long)j->tiles * (i + 1) / j->chunks));
        return;
    }
    gemm_tiles(j->ga, j->nmb, (int)((long)j->tiles * i / j->chunks), (int)((long)j->tiles * (i + 1) / j->chunks), i);
}

void fk__gemm_avx512(const fk__gemm_args *ga, fk__pool *pool, int threads) {
    if (ga->M <= 0 || ga->N <= 0) return;
    int nmb = (ga->M + MR - 1) / MR, nnb = (ga->N + NR - 1) / NR;
    int tiles = nmb * nnb;
    if (threads <= 1 || !pool || tiles < 2) {
        if (rowmajor(ga)) gemm_tiles_rowmajor(ga, nnb, 0, tiles);
        else gemm_tiles(ga, nmb, 0, tiles, 0);
        return;
    }
    gemm_job j = {ga, nmb, tiles, tiles < threads ? tiles : threads};
    if (ga->pack_b && j.chunks > FK__GEMM_MAX_CHUNKS) j.chunks = FK__GEMM_MAX_CHUNKS;
    fk__pool_for(pool, threads, j.chunks, gemm_task, &j);
}

#else

void fk__gemm_avx512(const fk__gemm_args *ga, fk__pool *pool, int threads) {
    (void)ga;
    (void)pool;
    (void)threads;
}

#endif

/* ---- Gemm / MatMul with constant weights (fully connected layers) ---------------------------------------
 * B is packed once at load into NR-wide panels with alpha folded in, beta * C becomes the column bias; a run
 * packs A (the activations, M rows of K) into the session scratch and runs the same micro-kernel. */

typedef struct fc_prep {
    float *bp;    /* packed B panels */
    float *bias;  /* N values */
    float *slope; /* N PReLU slopes or NULL */
    fk__epilogue epi;
    int M, N, K;
} fc_prep;

static void fc_prep_free(void *pv) {
    fc_prep *p = pv;
    if (!p) return;
    fk__free(p->bp);
    fk__free(p->bias);
    fk__free(p->slope);
    fk__free(p);
}

#ifdef FK_HAVE_X86
static int fc_fast(const fk__run_ctx *cx, const fk__node *n) {
    const fc_prep *p = n->prep;
    float *ap = (float *)cx->scratch;
    fk__gemm_pack_a(ap, cx->data[n->in[0]], p->K, p->M, p->K);
    fk__gemm_args ga = {p->M, p->N, p->K, ap, p->bp, NR, (ptrdiff_t)p->K * NR, cx->data[n->out[0]], p->N, &p->epi,
                        NULL, NULL, NULL, NULL, 0, 0, 0};
    fk__gemm_avx512(&ga, cx->pool, cx->threads);
    return FK_OK;
}
#endif

static const float *fc_const(const fk__graph *g, int id) {
    if (id < 0 || id >= g->nt) return NULL;
    const fk__tensor *t = &g->t[id];
    return t->kind == FK__T_CONST && t->dtype == FK__DT_F32 ? t->data : NULL;
}

static int64_t fc_numel(const fk__tensor *t) {
    int64_t k = 1;
    for (int i = 0; i < t->rank; i++) k *= t->dims[i];
    return k;
}

int fk__fast_fc_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    const fk__attr *a = &n->a;
    if (n->n_in < 2 || n->n_out != 1 || n->in[0] < 0) return FK_OK;
    const fk__tensor *A = &g->t[n->in[0]], *B = &g->t[n->in[1]], *O = &g->t[n->out[0]];
    const float *b = fc_const(g, n->in[1]), *cv = NULL;
    if (!b || B->rank != 2 || A->dtype != FK__DT_F32 || O->dtype != FK__DT_F32 || A->rank < 2) return FK_OK;
    int trans_b = 0;
    float alpha = 1.0f, beta = 1.0f;
    int64_t M, N, K, cn = 0;
    if (n->op == FK__OP_GEMM) {
        if (a->trans_a || A->rank != 2 || O->rank != 2) return FK_OK;
        trans_b = a->trans_b, alpha = a->alpha, beta = a->beta;
        M = A->dims[0], K = A->dims[1], N = O->dims[1];
        if (n->n_in > 2 && n->in[2] >= 0) {
            const fk__tensor *C = &g->t[n->in[2]];
            cv = fc_const(g, n->in[2]);
            cn = fc_numel(C);
            if (!cv || (cn != N && cn != 1) || (C->rank == 2 && C->dims[0] != 1)) return FK_OK;
        }
    } else {
        K = A->dims[A->rank - 1], N = B->dims[1], M = fc_numel(A) / (K ? K : 1);
        if (n->n_in > 2) return FK_OK;
    }
    if ((trans_b ? B->dims[1] : B->dims[0]) != K || (trans_b ? B->dims[0] : B->dims[1]) != N || M < 1 || N < 1 ||
        K < 1 || fc_numel(O) != M * N)
        return FK_OK;
    if (M * N * K < 16384) return FK_OK; /* tiny (fr_age's 3x6 heads): packing A costs more than the plain loop */
    if (a->act == FK__ACT_PRELU) {
        const float *s = fc_const(g, a->act_slope);
        if (!s || (fc_numel(&g->t[a->act_slope]) != N && fc_numel(&g->t[a->act_slope]) != 1)) return FK_OK;
    }
    fc_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    int64_t nnb = (N + NR - 1) / NR;
    p->bp = fk__calloc((size_t)(nnb * NR * K), sizeof(float));
    p->bias = fk__calloc((size_t)N, sizeof(float));
    if (a->act == FK__ACT_PRELU) p->slope = fk__calloc((size_t)N, sizeof(float));
    if (!p->bp || !p->bias || (a->act == FK__ACT_PRELU && !p->slope)) {
        fc_prep_free(p);
        return FK_ENOMEM;
    }
    for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++)
            p->bp[(j / NR) * K * NR + k * NR + j % NR] = alpha * (trans_b ? b[j * K + k] : b[k * N + j]);
    for (int64_t j = 0; j < N; j++) p->bias[j] = cv ? beta * cv[cn == 1 ? 0 : j] : 0.0f;
    if (p->slope) {
        const float *s = g->t[a->act_slope].data;
        int64_t ns = fc_numel(&g->t[a->act_slope]);
        for (int64_t j = 0; j < N; j++) p->slope[j] = s[ns == 1 ? 0 : j];
    }
    p->M = (int)M, p->N = (int)N, p->K = (int)K;
    p->epi.bias = p->bias;
    p->epi.slope = p->slope;
    p->epi.act = a->act;
    p->epi.act_a = a->act_a;
    p->epi.act_b = a->act_b;
    p->epi.per_row = 0;
    n->scratch_bytes = sizeof(float) * fk__gemm_packed_a_size((int)M, (int)K);
    n->prep = p;
    n->prep_free = fc_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__fast_fc_kernel(const fk__node *n) {
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == fc_prep_free) return fc_fast;
#else
    (void)n;
#endif
    return NULL;
}
