/*
 * fast_copy.c — fast Slice, Concat and Softmax (nn layer, beside fast_elt.c, which hands these ops over). They
 * are what a detector's head is made of: fr_detect slices and re-concatenates 4420 x 4 box tensors along their
 * last axis, two floats at a time, and takes a softmax over pairs. The reference kernels (ops_ref.c, compared in
 * tests/test_nn_fast_dw.c) walk an N-d index per row and call memcpy for 8 bytes, or take one scalar expf per
 * element; here rows are moved with one masked vector load and store (short rows) or memcpy (long rows), the
 * outer axes are merged where the source is contiguous across them, and the softmax is vectorised across
 * rows: along the last axis with a power-of-two length <= 16, a vector holds 16/L whole rows and the row
 * maximum and sum are taken with in-register butterflies; otherwise it runs across the inner positions.
 */
#include "nn/fast.h"

#include <float.h>
#include <string.h>

typedef struct copy_prep {
    fk__kernel_fn fn;
    /* Slice: output rows of `row` floats; outer axes (rank r, merged) with source steps; first source offset */
    int r;
    int64_t dims[FK__MAX_RANK], step[FK__MAX_RANK], base, row;
    /* Softmax */
    int64_t outer, L, inner;
} copy_prep;

static void copy_prep_free(void *p) { fk__free(p); }

#define IN(i) (&cx->g->t[n->in[i]])
#define OUT(i) (&cx->g->t[n->out[i]])
#define INP(i) (cx->data[n->in[i]])
#define OUTP(i) (cx->data[n->out[i]])

#ifdef FK_HAVE_X86

static inline __mmask16 tail16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* One row of N floats: a masked vector move when short, memcpy when long. */
static inline __attribute__((always_inline)) FK_AVX512 void move_row(float *d, const float *s, int64_t n) {
    if (n <= 16) {
        __mmask16 m = tail16(n);
        _mm512_mask_storeu_ps(d, m, _mm512_maskz_loadu_ps(m, s));
    } else if (n <= 64) {
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 m = tail16(n - i);
            _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
        }
    } else {
        memcpy(d, s, sizeof(float) * (size_t)n);
    }
}

/* ---- Slice ---------------------------------------------------------------------------------------------- */

static FK_AVX512 int slice_fast(const fk__run_ctx *cx, const fk__node *n) {
    const copy_prep *p = n->prep;
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t total = 1, idx[FK__MAX_RANK] = {0}, src = p->base;
    for (int i = 0; i < p->r; i++) total *= p->dims[i];
    int last = p->r - 1;
    for (int64_t t = 0; t < total; t++, y += p->row) {
        move_row(y, x + src, p->row);
        /* odometer over the outer axes, keeping the source offset incrementally */
        src += p->step[last];
        if (++idx[last] < p->dims[last]) continue;
        for (int i = last; i >= 0; i--) {
            src -= p->step[i] * p->dims[i];
            idx[i] = 0;
            if (i == 0) break;
            src += p->step[i - 1];
            if (++idx[i - 1] < p->dims[i - 1]) break;
        }
    }
    return FK_OK;
}

/* ---- Concat ------------------------------------------------------------------------------------------------ */

static FK_AVX512 int concat_fast(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *O = OUT(0);
    int ax = n->a.axis;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= O->dims[i];
    for (int i = ax + 1; i < O->rank; i++) inner *= O->dims[i];
    float *y = OUTP(0);
    int64_t orow = O->dims[ax] * inner, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        const float *x = INP(k);
        int64_t row = IN(k)->dims[ax] * inner;
        if (row <= 16) {
            __mmask16 m = tail16(row);
            for (int64_t o = 0; o < outer; o++)
                _mm512_mask_storeu_ps(y + o * orow + off, m, _mm512_maskz_loadu_ps(m, x + o * row));
        } else {
            for (int64_t o = 0; o < outer; o++) move_row(y + o * orow + off, x + o * row, row);
        }
        off += row;
    }
    return FK_OK;
}

/* ---- Softmax ------------------------------------------------------------------------------------------------ */

/* Rows of L = 2, 4, 8 or 16 along the last axis: lane i is combined with lane i ^ s for s < L, so every lane
 * ends up with its own row's maximum (and then sum). */
static FK_AVX512 void softmax_rows_pow2(const float *x, float *y, int64_t cnt, int L) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i perm[4];
    int steps = 0;
    for (int s = 1; s < L; s <<= 1) perm[steps++] = _mm512_xor_si512(lane, _mm512_set1_epi32(s));
    for (int64_t i = 0; i < cnt; i += 16) {
        __mmask16 m = tail16(cnt - i); /* whole rows: cnt is a multiple of L, and so is i */
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(0.0f), m, x + i);
        __m512 mx = v;
        for (int k = 0; k < steps; k++) mx = _mm512_max_ps(mx, _mm512_permutexvar_ps(perm[k], mx));
        __m512 e = fk__exp_vec(_mm512_sub_ps(v, mx));
        __m512 s = e;
        for (int k = 0; k < steps; k++) s = _mm512_add_ps(s, _mm512_permutexvar_ps(perm[k], s));
        _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(e, s));
    }
}

static FK_AVX512 int softmax_fast(const fk__run_ctx *cx, const fk__node *n) {
    const copy_prep *p = n->prep;
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t L = p->L, inner = p->inner;
    if (inner == 1 && (L == 2 || L == 4 || L == 8 || L == 16)) {
        softmax_rows_pow2(x, y, p->outer * L, (int)L);
        return FK_OK;
    }
    if (inner == 1) { /* one row at a time, vectors along it */
        for (int64_t o = 0; o < p->outer; o++) {
            const float *xr = x + o * L;
            float *yr = y + o * L;
            __m512 mx = _mm512_set1_ps(-FLT_MAX);
            for (int64_t k = 0; k < L; k += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail16(L - k), xr + k));
            __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), s = _mm512_setzero_ps();
            for (int64_t k = 0; k < L; k += 16) {
                __mmask16 m = tail16(L - k);
                __m512 e = _mm512_maskz_mov_ps(m, fk__exp_vec(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + k), vm)));
                s = _mm512_add_ps(s, e);
                _mm512_mask_storeu_ps(yr + k, m, e);
            }
            __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
            for (int64_t k = 0; k < L; k += 16) {
                __mmask16 m = tail16(L - k);
                _mm512_mask_storeu_ps(yr + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + k), inv));
            }
        }
        return FK_OK;
    }
    /* softmax across rows of inner values (NCHW channel softmax): 16 positions at a time */
    for (int64_t o = 0; o < p->outer; o++) {
        const float *xo = x + o * L * inner;
        float *yo = y + o * L * inner;
        for (int64_t i = 0; i < inner; i += 16) {
            __mmask16 m = tail16(inner - i);
            __m512 mx = _mm512_set1_ps(-FLT_MAX), s = _mm512_setzero_ps();
            for (int64_t k = 0; k < L; k++) mx = _mm512_max_ps(mx, _mm512_maskz_loadu_ps(m, xo + k * inner + i));
            for (int64_t k = 0; k < L; k++) {
                __m512 e = fk__exp_vec(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xo + k * inner + i), mx));
                s = _mm512_add_ps(s, e);
                _mm512_mask_storeu_ps(yo + k * inner + i, m, e);
            }
            __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), s);
            for (int64_t k = 0; k < L; k++)
                _mm512_mask_storeu_ps(yo + k * inner + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yo + k * inner + i), inv));
        }
    }
    return FK_OK;
}

#endif /* FK_HAVE_X86 */

/* ---- prepare --------------------------------------------------------------------------------------------------- */

int fk__fast_copy_prepare(fk__graph *g, fk__node *n) {
#ifdef FK_HAVE_X86
    copy_prep q;
    memset(&q, 0, sizeof q);
    if (n->n_in < 1 || n->n_out != 1 || n->in[0] < 0 || g->t[n->out[0]].dtype != FK__DT_F32) return FK_OK;
    const fk__tensor *x = &g->t[n->in[0]], *y = &g->t[n->out[0]];
    switch (n->op) {
    case FK__OP_SLICE: {
        const fk__attr *a = &n->a;
        int r = x->rank;
        if (x->dtype != FK__DT_F32 || r < 1 || y->rank != r || a->s_n != r || fk__tensor_numel(y) == 0) return FK_OK;
        if (a->s_steps[r - 1] != 1) return FK_OK;
        int64_t st[FK__MAX_RANK], s = 1;
        for (int i = r - 1; i >= 0; i--) st[i] = s, s *= x->dims[i];
        q.base = 0;
        for (int i = 0; i < r; i++) {
            if (a->s_axes[i] != i) return FK_OK;
            q.base += a->s_starts[i] * st[i];
        }
        q.row = y->dims[r - 1];
        /* outer axes, merged while the source steps are contiguous across them; size-1 axes dropped */
        int k = 0;
        for (int i = 0; i < r - 1; i++) {
            if (y->dims[i] == 1) continue;
            int64_t step = a->s_steps[i] * st[i];
            if (k > 0 && q.step[k - 1] == step * y->dims[i]) {
                q.dims[k - 1] *= y->dims[i];
                q.step[k - 1] = step;
                continue;
            }
            q.dims[k] = y->dims[i], q.step[k] = step;
            k++;
        }
        /* rows contiguous in the source and in the output: one long row */
        if (k >= 1 && q.step[k - 1] == q.row) {
            q.row *= q.dims[k - 1];
            k--;
        }
        if (k == 0) q.dims[0] = 1, q.step[0] = 0, k = 1;
        q.r = k;
        q.fn = slice_fast;
        break;
    }
    case FK__OP_CONCAT: {
        if (n->a.axis < 0 || n->a.axis >= y->rank) return FK_OK;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] < 0 || g->t[n->in[k]].dtype != FK__DT_F32 || g->t[n->in[k]].rank != y->rank) return FK_OK;
        q.fn = concat_fast;
        break;
    }
    case FK__OP_SOFTMAX: {
        int ax = n->a.axis;
        if (x->dtype != FK__DT_F32 || ax < 0 || ax >= x->rank || fk__tensor_numel(x) == 0) return FK_OK;
        q.outer = 1, q.inner = 1, q.L = x->dims[ax];
        for (int i = 0; i < ax; i++) q.outer *= x->dims[i];
        for (int i = ax + 1; i < x->rank; i++) q.inner *= x->dims[i];
        q.fn = softmax_fast;
        break;
    }
    default: return FK_OK;
    }
    copy_prep *p = fk__malloc(sizeof *p);
    if (!p) return FK_ENOMEM;
    *p = q;
    n->prep = p;
    n->prep_free = copy_prep_free;
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

fk__kernel_fn fk__fast_copy_kernel(const fk__node *n) {
    if (n->prep && n->prep_free == copy_prep_free) return ((const copy_prep *)n->prep)->fn;
    return NULL;
}
