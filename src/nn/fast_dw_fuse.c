/*
 * fast_dw_fuse.c — a MobileNet-style stem run as one pipelined kernel (nn layer, offered every Conv by
 * fast_conv.c before its own paths). fr_detect's first four convolutions (3->16 3x3 s2, depthwise 3x3,
 * 1x1 16->32, depthwise 3x3 s2) work on 120x160 maps whose tensors (1.2-2.4 MB each) do not fit in L2: run one
 * after the other, most of their time goes to writing each tensor out to L3 and reading it back. Here the chain
 * is computed row by row instead: each stage keeps its last four output rows in a small ring (L2), a stage row
 * is computed when the next stage asks for it, and only the chain's last tensor is written. The chain:
 *   - starts with a convolution the direct kernel takes (fast_direct.c: few input channels) whose input is a
 *     graph input (so it stays valid and never shares memory with the output),
 *   - continues with up to seven 3x3 depthwise (stride 1 same-size or stride 2, pad 1 top/left) or 1x1 (stride
 *     1, no pad) convolutions (fr_detect: Conv_0 .. Conv_14, down to 30x40), each consuming the previous one's output, which has no other reader and is not a
 *     graph output, the nodes consecutive in run order, batch 1.
 * The last node of the chain gets the kernel; the earlier ones get a kernel that does nothing. Each stage keeps
 * its own bias and fused activation; results equal the unfused fast kernels' up to summation order (the test
 * compares with the reference kernels node by node: tests/test_nn_fast_dw.c). Threads split the last stage's
 * rows; every chunk recomputes the few rows its neighbours also need, so results do not depend on the thread
 * count.
 */
#include "nn/fast.h"

#include <string.h>

#define FUSE_MAX 8
#define FUSE_RING 4 /* rows kept per stage: a 3x3 consumer needs three, the one being written is the fourth */
#define FUSE_MAX_CHUNKS 8

enum { ST_DIRECT = 1, ST_DW, ST_PW };

typedef struct fuse_stage {
    int kind;
    int C, H, W, O, Ho, Wo, s;
    int wp;         /* floats per channel row in this stage's ring (multiple of 16) */
    float *w;       /* DW: [C][9]; PW: [O/16 blocks][C][16] */
    float *bias;    /* O */
    float *slope;   /* O or NULL */
    fk__epilogue epi;
    fk__direct_conv *direct;
    uint16_t *mask; /* DW: per 16-column input vector of a row, its lanes inside the map */
} fuse_stage;

typedef struct fuse_prep {
    int noop; /* an earlier member of a chain: the last member computes everything */
    int n;
    fuse_stage st[FUSE_MAX];
    int x, y; /* tensor ids: the chain's input and output */
    size_t dbuf, chunk_floats;
} fuse_prep;

static void fuse_prep_free(void *pv) {
    fuse_prep *p = pv;
    if (!p) return;
    for (int k = 0; k < p->n; k++) {
        fk__free(p->st[k].w);
        fk__free(p->st[k].bias);
        fk__free(p->st[k].slope);
        fk__direct_conv_free(p->st[k].direct);
        fk__free(p->st[k].mask);
    }
    fk__free(p);
}

static const float *cst(const fk__graph *g, int id) {
    if (id < 0 || id >= g->nt) return NULL;
    const fk__tensor *t = &g->t[id];
    return t->kind == FK__T_CONST && t->dtype == FK__DT_F32 ? t->data : NULL;
}

/* Geometry of a Conv node that could be a stage (NCHW, batch 1, float, constant weights and bias, no pre-op);
 * 0 when it cannot. */
static int conv_geom(const fk__graph *g, const fk__node *n, fk__conv_geom *cg, int *group) {
    if (n->op != FK__OP_CONV || n->n_in < 2 || n->n_in > 3 || n->n_out != 1) return 0;
    const fk__attr *a = &n->a;
    if (a->layout != FK__NCHW || !cst(g, n->in[1])) return 0;
    if (n->n_in > 2 && n->in[2] >= 0 && !cst(g, n->in[2])) return 0;
    if (a->act == FK__ACT_PRELU && !cst(g, a->act_slope)) return 0;
    const fk__tensor *x = &g->t[n->in[0]], *y = &g->t[n->out[0]], *w = &g->t[n->in[1]];
    if (x->rank != 4 || y->rank != 4 || w->rank != 4 || x->dtype != FK__DT_F32 || x->dims[0] != 1 || y->dims[0] != 1)
        return 0;
    fk__conv_geom q = {(int)x->dims[1], (int)x->dims[2], (int)x->dims[3], (int)y->dims[1], (int)y->dims[2],
                       (int)y->dims[3], (int)w->dims[2], (int)w->dims[3], a->stride[0], a->stride[1],
                       a->dilation[0], a->dilation[1], a->pads[0], a->pads[1]};
    *cg = q;
    *group = a->group < 1 ? 1 : a->group;
    return q.Ho > 0 && q.Wo > 0 && q.W <= 4096;
}

static int stage_kind(const fk__graph *g, const fk__node *n, fk__conv_geom *cg) {
    int group;
    if (!conv_geom(g, n, cg, &group)) return 0;
    const fk__conv_geom *q = cg;
    if (group == q->C && group == q->O && q->kh == 3 && q->kw == 3 && q->dh == 1 && q->dw == 1 && q->pt == 1 &&
        q->pl == 1 && q->sh == q->sw) {
        if (q->sh == 1 && q->Ho == q->H && q->Wo == q->W) return ST_DW;
        if (q->sh == 2 && q->Ho == (q->H + 1) / 2 && q->Wo == (q->W + 1) / 2) return ST_DW; /* pad 1 on both ends */
    }
    if (group == 1 && q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->pt == 0 && q->pl == 0 &&
        q->Ho == q->H && q->Wo == q->W && q->C <= 1024)
        return ST_PW;
    return 0;
}

static int root_of(const fk__graph *g, int t) {
    for (int i = 0; i < g->nt && g->t[t].alias_of >= 0 && g->t[t].alias_of != t; i++) t = g->t[t].alias_of;
    return t;
}

/* The only node reading tensor T (as its first input, nothing else), or -1. */
static int sole_reader(const fk__graph *g, int t) {
    int who = -1;
    for (int i = 0; i < g->nn; i++) {
        const fk__node *n = &g->n[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == t) {
                if (who >= 0 || k != 0) return -1;
                who = i;
            }
        if (n->a.act_slope == t) return -1;
    }
    return who;
}

/* Length (2..FUSE_MAX) of the chain starting at node S, else 0. */
static int chain_len(const fk__graph *g, int s) {
    const fk__node *n = &g->n[s];
    fk__conv_geom cg;
    int group;
    if (!conv_geom(g, n, &cg, &group) || group != 1 || cg.C > 4 || cg.sw > 2 || cg.kh * cg.kw * cg.C > 64) return 0;
    if (g->t[root_of(g, n->in[0])].kind != FK__T_INPUT) return 0;
    int len = 1;
    while (len < FUSE_MAX && s + len < g->nn) {
        int t = g->n[s + len - 1].out[0];
        const fk__tensor *tt = &g->t[t];
        if (tt->kind != FK__T_ACT || tt->is_output || root_of(g, t) != t || sole_reader(g, t) != s + len) break;
        fk__conv_geom q;
        if (!stage_kind(g, &g->n[s + len], &q)) break;
        len++;
    }
    return len >= 2 ? len : 0;
}

#ifdef FK_HAVE_X86

static inline __mmask16 lanes(int lo, int hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

static inline __attribute__((always_inline)) FK_AVX512 void put(const fk__epilogue *e, int c, __m512 acc, float *dst,
                                                                 __mmask16 m) {
    __m512 v = _mm512_add_ps(acc, _mm512_set1_ps(e->bias[c]));
    __m512 sl = e->slope ? _mm512_set1_ps(e->slope[c]) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst, m, fk__act_vec(e, v, sl));
}

/* Depthwise 3x3 row: IN[ky] is the input row s*r - 1 + ky (channel c at + c * inp), NULL outside the map.
 * Each input row is loaded once per 16-column block, aligned (rows start at column 0 of the ring), instead of
 * once per tap at a misaligned address: the loads were what bound this stage. Per block the three weight
 * columns are summed over the rows first (P0, P1, P2 for taps kx = 0, 1, 2, on unshifted columns), then the
 * outer two sums are shifted by one lane into place with the neighbour block's lane (valignd): two shuffles per
 * output vector instead of six. Columns beyond the map and missing rows load as zeros (the pad).
 * Stride 2 splits the two input vectors of a block into even columns (tap 1) and odd columns (tap 2; tap 0 is
 * the odd columns one lane later, the previous block's last odd column entering lane 0). */

/* ACT is a constant where this is inlined (the common activations) or -1 (any, through fk__act_vec): the
 * switch per stored vector was a good part of the row's time. */
static inline __attribute__((always_inline)) FK_AVX512 void dw_row_act(const fuse_stage *st, const float *const in[3],
                                                                       size_t inp, float *yrow, size_t plane, int act) {
    int nblk = (st->Wo + 15) / 16, s2 = st->s == 2;
    __mmask16 mlast = lanes(0, st->Wo - (nblk - 1) * 16);
    const float *row[3];
    __mmask16 rv[3]; /* all lanes, or none for a row outside the map (its loads read nothing) */
    for (int ky = 0; ky < 3; ky++) {
        row[ky] = in[ky] ? in[ky] : in[1];
        rv[ky] = in[ky] ? 0xFFFF : 0;
    }
    const uint16_t *lm = st->mask; /* per input vector: lanes inside the map */
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int c = 0; c < st->C; c++) {
        const float *wc = st->w + (size_t)c * 9;
        __m512 w9[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) w9[k] = _mm512_set1_ps(wc[k]);
        float *yc = yrow + (size_t)c * plane;
        __m512 bias = _mm512_set1_ps(st->bias[c]), slope = st->slope ? _mm512_set1_ps(st->slope[c]) : bias;
        const float *r0 = row[0] + (size_t)c * inp, *r1 = row[1] + (size_t)c * inp, *r2 = row[2] + (size_t)c * inp;
        if (!s2) {
            /* P of block b + 1 is computed before block b is stored: its P2 lane 0 is block b's last tap */
            __m512 p0l = _mm512_setzero_ps(), p0, p1, p2;
            {
                __m512 x0 = _mm512_maskz_loadu_ps(rv[0] & lm[0], r0);
                __m512 x1 = _mm512_maskz_loadu_ps(rv[1] & lm[0], r1);
                __m512 x2 = _mm512_maskz_loadu_ps(rv[2] & lm[0], r2);
                p0 = _mm512_fmadd_ps(x2, w9[6], _mm512_fmadd_ps(x1, w9[3], _mm512_mul_ps(x0, w9[0])));
                p1 = _mm512_fmadd_ps(x2, w9[7], _mm512_fmadd_ps(x1, w9[4], _mm512_mul_ps(x0, w9[1])));
                p2 = _mm512_fmadd_ps(x2, w9[8], _mm512_fmadd_ps(x1, w9[5], _mm512_mul_ps(x0, w9[2])));
            }
            for (int b = 0; b < nblk; b++) {
                __m512 q0 = _mm512_setzero_ps(), q1 = q0, q2 = q0;
                if (b + 1 < nblk) {
                    int o = (b + 1) * 16;
                    __m512 x0 = _mm512_maskz_loadu_ps(rv[0] & lm[b + 1], r0 + o);
                    __m512 x1 = _mm512_maskz_loadu_ps(rv[1] & lm[b + 1], r1 + o);
                    __m512 x2 = _mm512_maskz_loadu_ps(rv[2] & lm[b + 1], r2 + o);
                    q0 = _mm512_fmadd_ps(x2, w9[6], _mm512_fmadd_ps(x1, w9[3], _mm512_mul_ps(x0, w9[0])));
                    q1 = _mm512_fmadd_ps(x2, w9[7], _mm512_fmadd_ps(x1, w9[4], _mm512_mul_ps(x0, w9[1])));
                    q2 = _mm512_fmadd_ps(x2, w9[8], _mm512_fmadd_ps(x1, w9[5], _mm512_mul_ps(x0, w9[2])));
                }
                __m512 left = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(p0), _mm512_castps_si512(p0l), 15));
                __m512 right = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(q2), _mm512_castps_si512(p2), 1));
                __m512 v = fk__bias_act_vec(&st->epi, act, _mm512_add_ps(_mm512_add_ps(left, p1), right), bias, slope);
                _mm512_mask_storeu_ps(yc + b * 16, b + 1 < nblk ? 0xFFFF : mlast, v);
                p0l = p0, p0 = q0, p1 = q1, p2 = q2;
            }
        } else {
            __m512 p0l = _mm512_setzero_ps();
            for (int b = 0; b < nblk; b++) {
                int o = b * 32;
                __m512 e0, e1, e2, d0, d1, d2;
                {
                    __m512 a = _mm512_maskz_loadu_ps(rv[0] & lm[2 * b], r0 + o);
                    __m512 bb = _mm512_maskz_loadu_ps(rv[0] & lm[2 * b + 1], r0 + o + 16);
                    e0 = _mm512_permutex2var_ps(a, even, bb), d0 = _mm512_permutex2var_ps(a, odd, bb);
                }
                {
                    __m512 a = _mm512_maskz_loadu_ps(rv[1] & lm[2 * b], r1 + o);
                    __m512 bb = _mm512_maskz_loadu_ps(rv[1] & lm[2 * b + 1], r1 + o + 16);
                    e1 = _mm512_permutex2var_ps(a, even, bb), d1 = _mm512_permutex2var_ps(a, odd, bb);
                }
                {
                    __m512 a = _mm512_maskz_loadu_ps(rv[2] & lm[2 * b], r2 + o);
                    __m512 bb = _mm512_maskz_loadu_ps(rv[2] & lm[2 * b + 1], r2 + o + 16);
                    e2 = _mm512_permutex2var_ps(a, even, bb), d2 = _mm512_permutex2var_ps(a, odd, bb);
                }
                __m512 p0 = _mm512_fmadd_ps(d2, w9[6], _mm512_fmadd_ps(d1, w9[3], _mm512_mul_ps(d0, w9[0])));
                __m512 p1 = _mm512_fmadd_ps(e2, w9[7], _mm512_fmadd_ps(e1, w9[4], _mm512_mul_ps(e0, w9[1])));
                __m512 p2 = _mm512_fmadd_ps(d2, w9[8], _mm512_fmadd_ps(d1, w9[5], _mm512_mul_ps(d0, w9[2])));
                __m512 left = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(p0), _mm512_castps_si512(p0l), 15));
                __m512 v = fk__bias_act_vec(&st->epi, act, _mm512_add_ps(_mm512_add_ps(left, p1), p2), bias, slope);
                _mm512_mask_storeu_ps(yc + b * 16, b + 1 < nblk ? 0xFFFF : mlast, v);
                p0l = p0;
            }
        }
    }
}

static FK_AVX512 void dw_row(const fuse_stage *st, const float *const in[3], size_t inp, float *yrow, size_t plane) {
    switch (st->epi.act) {
    case FK__ACT_NONE: dw_row_act(st, in, inp, yrow, plane, FK__ACT_NONE); break;
    case FK__ACT_RELU: dw_row_act(st, in, inp, yrow, plane, FK__ACT_RELU); break;
    case FK__ACT_PRELU: dw_row_act(st, in, inp, yrow, plane, FK__ACT_PRELU); break;
    default: dw_row_act(st, in, inp, yrow, plane, -1); break;
    }
}

/* 1x1 row: 16 output channels of 16 pixels in registers, one input vector per input channel. */
static FK_AVX512 void pw_row(const fuse_stage *st, const float *in, size_t inp, float *yrow, size_t plane) {
    int nblk = (st->Wo + 15) / 16, nob = (st->O + 15) / 16;
    for (int b = 0; b < nblk; b++) {
        __mmask16 m = lanes(0, st->Wo - b * 16);
        for (int ob = 0; ob < nob; ob++) {
            const float *wb = st->w + (size_t)ob * st->C * 16;
            __m512 acc[16];
#pragma GCC unroll 16
            for (int o = 0; o < 16; o++) acc[o] = _mm512_setzero_ps();
            for (int ci = 0; ci < st->C; ci++) {
                __m512 v = _mm512_maskz_loadu_ps(m, in + (size_t)ci * inp + b * 16);
                const float *wt = wb + (size_t)ci * 16;
#pragma GCC unroll 16
                for (int o = 0; o < 16; o++) acc[o] = _mm512_fmadd_ps(v, _mm512_set1_ps(wt[o]), acc[o]);
            }
            int no = st->O - ob * 16 < 16 ? st->O - ob * 16 : 16;
            /* unrolled with constant indices: a runtime acc[o] would keep the accumulators in memory */
#pragma GCC unroll 16
            for (int o = 0; o < 16; o++)
                if (o < no) put(&st->epi, ob * 16 + o, acc[o], yrow + (size_t)(ob * 16 + o) * plane + b * 16, m);
        }
    }
}

typedef struct fuse_state {
    const fuse_prep *p;
    const float *x;
    float *y;
    float *dbuf;
    float *ring[FUSE_MAX];
    int next[FUSE_MAX];
} fuse_state;

static float *ring_row(const fuse_state *fs, int k, int r) {
    const fuse_stage *st = &fs->p->st[k];
    return fs->ring[k] + (size_t)(r % FUSE_RING) * st->O * st->wp;
}

/* Computes rows of stage K up to and including J (those not computed yet). */
static void ensure(fuse_state *fs, int k, int j) {
    const fuse_prep *p = fs->p;
    const fuse_stage *st = &p->st[k];
    for (; fs->next[k] <= j; fs->next[k]++) {
        int r = fs->next[k], last = k == p->n - 1;
        float *yrow = last ? fs->y + (size_t)r * st->Wo : ring_row(fs, k, r);
        size_t plane = last ? (size_t)st->Ho * st->Wo : (size_t)st->wp;
        if (st->kind == ST_DIRECT) {
            fk__direct_conv_row(st->direct, &st->epi, fs->x, fs->dbuf, yrow, plane, r);
        } else if (st->kind == ST_PW) {
            ensure(fs, k - 1, r);
            pw_row(st, ring_row(fs, k - 1, r), (size_t)p->st[k - 1].wp, yrow, plane);
        } else {
            const float *in[3];
            int hi = -1;
            for (int ky = 0; ky < 3; ky++) {
                int iy = r * st->s - 1 + ky;
                in[ky] = NULL;
                if (iy >= 0 && iy < st->H) hi = iy;
            }
            if (hi >= 0) ensure(fs, k - 1, hi);
            for (int ky = 0; ky < 3; ky++) {
                int iy = r * st->s - 1 + ky;
                if (iy >= 0 && iy < st->H) in[ky] = ring_row(fs, k - 1, iy);
            }
            dw_row(st, in, (size_t)p->st[k - 1].wp, yrow, plane);
        }
    }
}

typedef struct fuse_run_args {
    const fuse_prep *p;
    const float *x;
    float *y;
    float *scratch;
    int chunks;
} fuse_run_args;

static void fuse_task(void *arg, int i) {
    const fuse_run_args *a = arg;
    const fuse_prep *p = a->p;
    int L = p->n - 1, Ho = p->st[L].Ho;
    int r0 = (int)((long)Ho * i / a->chunks), r1 = (int)((long)Ho * (i + 1) / a->chunks);
    if (r1 <= r0) return;
    fuse_state fs;
    memset(&fs, 0, sizeof fs);
    fs.p = p, fs.x = a->x, fs.y = a->y;
    float *s = a->scratch + (size_t)i * p->chunk_floats;
    fs.dbuf = s;
    s += p->dbuf;
    for (int k = 0; k < L; k++) {
        fs.ring[k] = s;
        s += (size_t)FUSE_RING * p->st[k].O * p->st[k].wp;
    }
    /* first row each stage must produce for this chunk */
    int need = r0;
    fs.next[L] = need;
    for (int k = L; k > 0; k--) {
        if (p->st[k].kind == ST_DW) need = need * p->st[k].s - 1 < 0 ? 0 : need * p->st[k].s - 1;
        fs.next[k - 1] = need;
    }
    ensure(&fs, L, r1 - 1);
}

static int fuse_kernel(const fk__run_ctx *cx, const fk__node *n) {
    const fuse_prep *p = n->prep;
    if (p->noop) return FK_OK;
    int Ho = p->st[p->n - 1].Ho;
    int chunks = cx->threads < Ho ? cx->threads : Ho;
    if (chunks > FUSE_MAX_CHUNKS) chunks = FUSE_MAX_CHUNKS;
    if (chunks < 1) chunks = 1;
    fuse_run_args a = {p, cx->data[p->x], cx->data[p->y], (float *)cx->scratch, chunks};
    if (chunks > 1) fk__pool_for(cx->pool, cx->threads, chunks, fuse_task, &a);
    else fuse_task(&a, 0);
    return FK_OK;
}

#endif /* FK_HAVE_X86 */

static int stage_init(const fk__graph *g, const fk__node *n, fuse_stage *st, int first, size_t *dbuf) {
    fk__conv_geom q;
    int group;
    conv_geom(g, n, &q, &group);
    st->kind = first ? ST_DIRECT : stage_kind(g, n, &q);
    st->C = q.C, st->H = q.H, st->W = q.W, st->O = q.O, st->Ho = q.Ho, st->Wo = q.Wo, st->s = q.sh;
    st->wp = (q.Wo + 15) / 16 * 16;
    const float *w = cst(g, n->in[1]);
    const float *bias = n->n_in > 2 && n->in[2] >= 0 ? cst(g, n->in[2]) : NULL;
    st->bias = fk__calloc((size_t)q.O, sizeof(float));
    if (!st->bias) return FK_ENOMEM;
    if (bias) memcpy(st->bias, bias, sizeof(float) * (size_t)q.O);
    if (n->a.act == FK__ACT_PRELU) {
        const fk__tensor *stt = &g->t[n->a.act_slope];
        const float *sl = stt->data;
        int64_t ns = fk__tensor_numel(stt);
        st->slope = fk__malloc(sizeof(float) * (size_t)q.O);
        if (!st->slope) return FK_ENOMEM;
        for (int o = 0; o < q.O; o++) st->slope[o] = ns == q.O ? sl[o] : sl[0];
    }
    st->epi.bias = st->bias;
    st->epi.slope = st->slope;
    st->epi.act = n->a.act;
    st->epi.act_a = n->a.act_a;
    st->epi.act_b = n->a.act_b;
    st->epi.per_row = 1;
    if (st->kind == ST_DIRECT) {
        size_t sb = 0;
        int rc = fk__direct_conv_create(&q, w, &st->direct, &sb);
        if (rc) return rc;
        if (!st->direct) return FK_EINTERNAL; /* chain_len checked the direct kernel's limits */
        *dbuf = fk__direct_conv_buf(st->direct);
    } else if (st->kind == ST_DW) {
        st->w = fk__malloc(sizeof(float) * (size_t)q.C * 9);
        if (!st->w) return FK_ENOMEM;
        memcpy(st->w, w, sizeof(float) * (size_t)q.C * 9);
        int nvec = (q.Wo + 15) / 16 * (q.sh == 2 ? 2 : 1); /* input vectors read per row */
        st->mask = fk__malloc(sizeof(uint16_t) * (size_t)nvec);
        if (!st->mask) return FK_ENOMEM;
        for (int v = 0; v < nvec; v++) {
            int hi = q.W - 16 * v > 16 ? 16 : q.W - 16 * v;
            st->mask[v] = hi > 0 ? (uint16_t)((1u << hi) - 1) : 0;
        }
    } else {
        int nob = (q.O + 15) / 16;
        st->w = fk__calloc((size_t)nob * q.C * 16, sizeof(float));
        if (!st->w) return FK_ENOMEM;
        for (int o = 0; o < q.O; o++)
            for (int c = 0; c < q.C; c++) st->w[((size_t)(o / 16) * q.C + c) * 16 + o % 16] = w[(size_t)o * q.C + c];
    }
    return FK_OK;
}

int fk__dw_fuse_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    int idx = (int)(n - g->n);
    if (idx < 0 || idx >= g->nn || n->op != FK__OP_CONV) return FK_OK;
    int s = -1, len = 0;
    for (int c = idx - (FUSE_MAX - 1) < 0 ? 0 : idx - (FUSE_MAX - 1); c <= idx && s < 0; c++) {
        int l = chain_len(g, c);
        if (l && c + l > idx) s = c, len = l;
    }
    if (s < 0) return FK_OK;
    fuse_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    if (idx < s + len - 1) {
        p->noop = 1;
    } else {
        p->n = len;
        p->x = g->n[s].in[0];
        p->y = n->out[0];
        size_t dbuf = 0, cf = 0;
        for (int k = 0; k < len; k++) {
            int rc = stage_init(g, &g->n[s + k], &p->st[k], k == 0, &dbuf);
            if (rc) {
                fuse_prep_free(p);
                return rc;
            }
            if (k < len - 1) cf += (size_t)FUSE_RING * p->st[k].O * p->st[k].wp;
        }
        p->dbuf = dbuf;
        p->chunk_floats = (dbuf + cf + 15) / 16 * 16;
        n->scratch_bytes = sizeof(float) * p->chunk_floats * FUSE_MAX_CHUNKS;
    }
    n->prep = p;
    n->prep_free = fuse_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__dw_fuse_kernel(const fk__node *n) {
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == fuse_prep_free) return fuse_kernel;
#else
    (void)n;
#endif
    return NULL;
}
