/*
 * fast_direct.c — direct NCHW convolution for layers with few input channels (nn layer, called from
 * fast_conv.c): first layers such as fr_detect's 3->16 3x3 stride 2 at 240x320. There the GEMM path spends
 * as long writing and re-reading its im2col matrix (C*kh*kw rows of Ho*Wo) as multiplying, and pads the 16
 * output channels to whole 12-row panels. Here, per output row, the few input rows it needs are copied once
 * into a small row buffer split by column phase (stride 2: even columns, then odd columns, zero-padded), so
 * every tap of 16 consecutive outputs is one contiguous vector load; 16 output channels accumulate in
 * registers (one broadcast weight per FMA) and are stored with bias and the fused activation. No im2col, no
 * wasted rows, the buffer stays in L1. The reference is fk__op_conv_ref (tests/test_nn_fast_dw.c).
 */
#include "nn/fast.h"

#include <string.h>

#define DIRECT_MAX_CHUNKS 8

struct fk__direct_conv {
    fk__conv_geom g;
    int nblk;   /* 16-column output blocks per row */
    int nob;    /* 16-channel output blocks */
    int wph;    /* floats per phase row in the buffer (multiple of 16) */
    int ntap;   /* C * kh * kw */
    float *w;   /* [nob][ntap][16], zero beyond O */
    int *toff;  /* per tap: offset of its first input in the row buffer */
    size_t buf; /* floats of row buffer per chunk: C * kh * sw * wph */
};

void fk__direct_conv_free(fk__direct_conv *d) {
    if (!d) return;
    fk__free(d->w);
    fk__free(d->toff);
    fk__free(d);
}

int fk__direct_conv_create(const fk__conv_geom *g, const float *w, fk__direct_conv **out, size_t *scratch_bytes) {
    *out = NULL;
    int s = g->sw, ntap = g->C * g->kh * g->kw;
    if (s < 1 || s > 2 || g->sh < 1 || g->dh < 1 || g->dw < 1 || ntap > 64 || g->C > 4 || g->Ho < 1 || g->Wo < 1)
        return FK_OK;
    fk__direct_conv *d = fk__calloc(1, sizeof *d);
    if (!d) return FK_ENOMEM;
    d->g = *g;
    d->nblk = (g->Wo + 15) / 16;
    d->nob = (g->O + 15) / 16;
    d->ntap = ntap;
    /* tap kx of output column ox reads padded column s*ox + kx*dw: phase (kx*dw) % s, index ox + (kx*dw) / s */
    int need = d->nblk * 16 + ((g->kw - 1) * g->dw) / s;
    d->wph = (need + 15) / 16 * 16;
    d->buf = (size_t)g->C * g->kh * s * d->wph;
    d->w = fk__calloc((size_t)d->nob * ntap * 16, sizeof(float));
    d->toff = fk__malloc(sizeof(int) * (size_t)ntap);
    if (!d->w || !d->toff) {
        fk__direct_conv_free(d);
        return FK_ENOMEM;
    }
    for (int o = 0; o < g->O; o++)
        for (int t = 0; t < ntap; t++) d->w[((size_t)(o / 16) * ntap + t) * 16 + o % 16] = w[(size_t)o * ntap + t];
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int t = (c * g->kh + ky) * g->kw + kx, ph = (kx * g->dw) % s;
                d->toff[t] = ((c * g->kh + ky) * s + ph) * d->wph + (kx * g->dw) / s;
            }
    *out = d;
    *scratch_bytes = sizeof(float) * d->buf * DIRECT_MAX_CHUNKS;
    return FK_OK;
}

#ifdef FK_HAVE_X86

static inline __mmask16 lanes(int lo, int hi) { /* lanes [lo, hi) of 16, clamped */
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* Row buffer for output row OY: for each input channel and kernel row, the padded input row
 * P[i] = x[iy][i - pl] (zero outside the image) split into its s column phases, phase r holding P[s*j + r]. */
static FK_AVX512 void fill_rows(const fk__direct_conv *d, const float *x, float *buf, int oy) {
    const fk__conv_geom *g = &d->g;
    int s = g->sw, wph = d->wph;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 z = _mm512_setzero_ps();
    for (int c = 0; c < g->C; c++)
        for (int ky = 0; ky < g->kh; ky++) {
            float *dst = buf + (size_t)(c * g->kh + ky) * s * wph;
            int iy = oy * g->sh - g->pt + ky * g->dh;
            if (iy < 0 || iy >= g->H) {
                for (int j = 0; j < s * wph; j += 16) _mm512_storeu_ps(dst + j, z);
                continue;
            }
            const float *xr = x + ((size_t)c * g->H + iy) * g->W;
            if (s == 1) {
                for (int j = 0; j < wph; j += 16) {
                    int i0 = j - g->pl; /* input column of lane 0 */
                    _mm512_storeu_ps(dst + j, _mm512_maskz_loadu_ps(lanes(-i0, g->W - i0), xr + i0));
                }
            } else {
                for (int j = 0; j < wph; j += 16) {
                    int i0 = 2 * j - g->pl;
                    __m512 a = _mm512_maskz_loadu_ps(lanes(-i0, g->W - i0), xr + i0);
                    __m512 b = _mm512_maskz_loadu_ps(lanes(-i0 - 16, g->W - i0 - 16), xr + i0 + 16);
                    _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(a, even, b));
                    _mm512_storeu_ps(dst + wph + j, _mm512_permutex2var_ps(a, odd, b));
                }
            }
        }
}

/* Output row from the filled row buffer: channel o of the row goes to yrow + o * plane. */
static FK_AVX512 void conv_row(const fk__direct_conv *d, const fk__epilogue *e, const float *buf, float *yrow,
                               size_t plane) {
    const fk__conv_geom *g = &d->g;
    for (int ob = 0; ob < d->nob; ob++) {
        const float *wb = d->w + (size_t)ob * d->ntap * 16;
        int no = g->O - ob * 16 < 16 ? g->O - ob * 16 : 16;
        for (int bk = 0; bk < d->nblk; bk++) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int o = 0; o < 16; o++) acc[o] = _mm512_setzero_ps();
            const float *b0 = buf + bk * 16;
            for (int t = 0; t < d->ntap; t++) {
                __m512 v = _mm512_loadu_ps(b0 + d->toff[t]);
                const float *wt = wb + t * 16;
#pragma GCC unroll 16
                for (int o = 0; o < 16; o++) acc[o] = _mm512_fmadd_ps(v, _mm512_set1_ps(wt[o]), acc[o]);
            }
            int x0 = bk * 16, cnt = g->Wo - x0 < 16 ? g->Wo - x0 : 16;
            __mmask16 m = lanes(0, cnt);
            float *yo = yrow + (size_t)ob * 16 * plane + x0;
            /* unrolled with constant indices: a runtime acc[o] would keep the accumulators in memory */
#pragma GCC unroll 16
            for (int o = 0; o < 16; o++) {
                if (o >= no) break;
                int ch = ob * 16 + o;
                __m512 v = _mm512_add_ps(acc[o], _mm512_set1_ps(e->bias[ch]));
                __m512 sl = e->slope ? _mm512_set1_ps(e->slope[ch]) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(yo + (size_t)o * plane, m, fk__act_vec(e, v, sl));
            }
        }
    }
}

typedef struct direct_run {
    const fk__direct_conv *d;
    const fk__epilogue *e;
    const float *x;
    float *y, *scratch;
    int chunks;
} direct_run;

static void direct_task(void *arg, int i) {
    const direct_run *r = arg;
    int Ho = r->d->g.Ho;
    int oy0 = (int)((long)Ho * i / r->chunks), oy1 = (int)((long)Ho * (i + 1) / r->chunks);
    float *buf = r->scratch + (size_t)i * r->d->buf;
    for (int oy = oy0; oy < oy1; oy++) {
        fill_rows(r->d, r->x, buf, oy);
        conv_row(r->d, r->e, buf, r->y + (size_t)oy * r->d->g.Wo, (size_t)r->d->g.Ho * r->d->g.Wo);
    }
}

void fk__direct_conv_row(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *buf, float *yrow,
                         size_t plane, int oy) {
    fill_rows(d, x, buf, oy);
    conv_row(d, e, buf, yrow, plane);
}

size_t fk__direct_conv_buf(const fk__direct_conv *d) { return d->buf; }

void fk__direct_conv_run(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *y, float *scratch,
                         fk__pool *pool, int threads) {
    int chunks = threads < d->g.Ho ? threads : d->g.Ho;
    if (chunks > DIRECT_MAX_CHUNKS) chunks = DIRECT_MAX_CHUNKS;
    if (chunks < 1) chunks = 1;
    direct_run r = {d, e, x, y, scratch, chunks};
    if (chunks > 1) fk__pool_for(pool, threads, chunks, direct_task, &r);
    else direct_task(&r, 0);
}

#else

size_t fk__direct_conv_buf(const fk__direct_conv *d) { return d->buf; }

void fk__direct_conv_row(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *buf, float *yrow,
                         size_t plane, int oy) {
    (void)d, (void)e, (void)x, (void)buf, (void)yrow, (void)plane, (void)oy;
}

void fk__direct_conv_run(const fk__direct_conv *d, const fk__epilogue *e, const float *x, float *y, float *scratch,
                         fk__pool *pool, int threads) {
    (void)d, (void)e, (void)x, (void)y, (void)scratch, (void)pool, (void)threads;
}

#endif
