/*
 * fast_blocked.c — stride-1 NCHW convolutions computed in a channel-blocked layout (nn layer, beside
 * fast_conv.c, whose dispatch offers every Conv here first). For each run the input is copied once into a
 * zero-padded [C/16][Hp][Wp][16] buffer (16 channels of one pixel side by side; a folded-forward
 * BatchNormalization + ReLU, fk__attr.pre_op, is applied during that copy), then a register tile of up to 14
 * output pixels x 32 output channels (28 accumulators) walks input channel blocks, taps and the 16 channels
 * of a block: per step two weight vectors (32 output channels) and one broadcast input value per pixel.
 * The tile is transposed back in registers (16 x 16) and stored straight into the NCHW output.
 *
 * Why: the GEMM paths (Y[O x HW] = W * X, pixels along the vector) read each input channel from a plane a
 * page away per step and waste lanes on short rows; ONNX Runtime's NCHWc kernels ran DenseNet's 3x3
 * layers at ~113 GFLOP/s here against our 80. This layout streams the weights from L2 and the inputs from
 * L1, and its lanes are output channels, which DenseNet has in multiples of 16 on every layer. Measured in
 * fr_expression (bench/prof_nn, 1 thread, GFLOP/s GEMM -> blocked): 3x3 128->32 at 56x56 81 -> 104, 28x28
 * 86 -> 103, 14x14 77 -> 98, 7x7 49 -> 87; 1x1 with the pre-operation at 56x56 67 -> 83, 28x28 84 -> 92,
 * 14x14 82 -> 91, 7x7 57 -> 78. Plain 1x1 convs with few channels stay on the GEMM (see the prepare).
 * The reference is fk__op_conv_ref; tests/test_nn_fast_conv.c compares them.
 */
#include "nn/fast.h"

#include <string.h>

#define BK_PMAX 14 /* output pixels per tile: 14 x 2 channel blocks = 28 accumulators of 32 registers */
#define BK_MAX_CHUNKS 8 /* streaming mode: one ring of input rows per parallel chunk in scratch */

typedef struct bk_prep {
    int C, O, H, W, Ho, Wo, kh, kw, pt, pl, Hp, Wp, CB, OB, npairs;
    int P;         /* pixels per tile: a divisor of Wo when one is close to BK_PMAX, the rest a shorter tile */
    int pair_major; /* work order: all rows of one output pair (weights too big for L2) or pairs within a row */
    float *w;      /* per output pair j: [cb][ky][kx][16 ic][nob * 16 oc] at w + j * 32 * C * kh * kw */
    float *bias, *slope, *scale, *shift;
    int pre_op, pre_relu;
    int rows2; /* streaming mode, Wo <= 7: tiles of two output rows (bk2_table) */
    int stem; /* few input channels, stride 2 (DenseNet's 7x7 stem): input plain NCHW, padded, see bk_stem_tile */
    /* The tensor between two blocked convs, when the second is its only reader (DenseNet's bottleneck 1x1 ->
     * 3x3), stays blocked, [C/16][H][W][16] per image (same bytes): the first skips its output transposes
     * (out_blocked), the second copies rows instead of transposing them (in_blocked). */
    int out_blocked, in_blocked;
    /* In a dense block's Concat buffer kept blocked from channel block blk_cb on (family_blocked_from): the
     * input's channel blocks from blk_cb are copied, the ones below transposed (CB = none). */
    int blk_cb;
    int sh;
    fk__epilogue epi;
} bk_prep;

static void bk_prep_free(void *pv) {
    bk_prep *p = pv;
    if (!p) return;
    fk__free(p->w);
    fk__free(p->bias);
    fk__free(p->slope);
    fk__free(p->scale);
    fk__free(p->shift);
    fk__free(p);
}

#ifdef FK_HAVE_X86

/* r[i][j] -> r[j][i] for a 16 x 16 block in 16 registers: 32-bit, then 64-bit interleaves within 128-bit
 * lanes, then two rounds of 128-bit lane shuffles. */
static inline __attribute__((always_inline)) FK_AVX512 void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* u[4i + c]: column c (+4, +8, +12 in lanes 1-3) of rows 4i..4i+3 */
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[c + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

/* Padded row YY of channel block CB of one image into ROW (Wp x 16 floats; borders zero): 16 channel rows
 * are loaded 16 pixels at a time, normalised when the conv has a pre-operation (PRE: 0 none, 1 x * scale +
 * shift, 2 and ReLU), and transposed. */
static inline __attribute__((always_inline)) FK_AVX512 void pack_row(const bk_prep *p, const float *x, float *row,
                                                                      int cb, int yy, const int PRE) {
    const size_t plane = (size_t)p->H * p->W;
    const __m512 z = _mm512_setzero_ps();
    int iy = yy - p->pt;
    if (iy < 0 || iy >= p->H) {
        for (int xx = 0; xx < p->Wp; xx++) _mm512_store_ps(row + (size_t)xx * 16, z);
        return;
    }
    for (int xx = 0; xx < p->pl; xx++) _mm512_store_ps(row + (size_t)xx * 16, z);
    for (int xx = p->pl + p->W; xx < p->Wp; xx++) _mm512_store_ps(row + (size_t)xx * 16, z);
    if (p->in_blocked || cb >= p->blk_cb) { /* rows of a blocked input: a copy (normalised with a pre-op) */
        const float *b = x + ((size_t)cb * plane + (size_t)iy * p->W) * 16;
        float *d = row + (size_t)p->pl * 16;
        const __m512 vs = PRE ? _mm512_loadu_ps(p->scale + cb * 16) : z, vt = PRE ? _mm512_loadu_ps(p->shift + cb * 16) : z;
        for (int j = 0; j < p->W; j++) {
            __m512 v = _mm512_loadu_ps(b + (size_t)j * 16);
            if (PRE) v = _mm512_fmadd_ps(v, vs, vt);
            if (PRE == 2) v = _mm512_max_ps(v, z);
            _mm512_store_ps(d + (size_t)j * 16, v);
        }
        return;
    }
    const float *src = x + (size_t)cb * 16 * plane + (size_t)iy * p->W;
    const float *sc = PRE ? p->scale + cb * 16 : NULL, *sh = PRE ? p->shift + cb * 16 : NULL;
    for (int x0 = 0; x0 < p->W; x0 += 16) {
        int n = p->W - x0 < 16 ? p->W - x0 : 16;
        __mmask16 m = fk__lanes16(n);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            r[i] = _mm512_maskz_loadu_ps(m, src + i * plane + x0);
            if (PRE) r[i] = _mm512_fmadd_ps(r[i], _mm512_set1_ps(sc[i]), _mm512_set1_ps(sh[i]));
            if (PRE == 2) r[i] = _mm512_max_ps(r[i], z);
        }
        transpose16(r);
        float *d = row + (size_t)(p->pl + x0) * 16;
        /* pixel by pixel with a test each: a plain loop to n becomes a memcpy of the spilled registers */
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            if (j < n) _mm512_store_ps(d + (size_t)j * 16, r[j]);
    }
}

static FK_AVX512 void bk_pack_row(const bk_prep *p, const float *x, float *row, int cb, int yy) {
    if (!p->pre_op) pack_row(p, x, row, cb, yy, 0);
    else if (!p->pre_relu) pack_row(p, x, row, cb, yy, 1);
    else pack_row(p, x, row, cb, yy, 2);
}

static inline __attribute__((always_inline)) FK_AVX512 void bk_store(const bk_prep *p, const int NP, const int NOB,
                                                                        const __m512 *a0, const __m512 *a1, float *y,
                                                                        int ob0, int oy, int ox0);

/* Where a tile finds its input: padded row oy + ky of channel block cb starts at rows[ky] + cb * cbs. */
typedef struct bk_rows {
    const float *rows[8];
    size_t cbs;
} bk_rows;

/* One tile: NP output pixels from (oy, ox0) on, output channel blocks OB0 (and OB0 + 1 when NOB = 2); WT: the
 * pair's packed weights. */
static inline __attribute__((always_inline)) FK_AVX512 void bk_tile(const bk_prep *p, const int NP, const int NPR,
                                                                       const int NOB, const bk_rows *in,
                                                                       const float *wt, float *y, int ob0, int oy,
                                                                       int ox0) {
    __m512 a0[BK_PMAX], a1[BK_PMAX];
#pragma GCC unroll 14
    for (int j = 0; j < NP; j++) a0[j] = a1[j] = _mm512_setzero_ps();
    const size_t cbs = in->cbs;
    const int NB = NOB * 16;
    for (int cb = 0; cb < p->CB; cb++)
        for (int ky = 0; ky < p->kh; ky++) {
            /* pixels [NPR, NP) of a two-row tile are the next output row's, from the next input row */
            const float *xr = in->rows[ky] + cb * cbs + (size_t)ox0 * 16;
            const float *xr2 = NPR < NP ? in->rows[ky + 1] + cb * cbs : xr;
            for (int kx = 0; kx < p->kw; kx++, xr += 16, xr2 += 16, wt += 16 * NB)
                for (int ic = 0; ic < 16; ic++) {
                    __m512 w0 = _mm512_loadu_ps(wt + ic * NB);
                    __m512 w1 = NOB > 1 ? _mm512_loadu_ps(wt + ic * NB + 16) : w0;
#pragma GCC unroll 14
                    for (int j = 0; j < NP; j++) {
                        __m512 a = _mm512_set1_ps(j < NPR ? xr[j * 16 + ic] : xr2[(j - NPR) * 16 + ic]);
                        a0[j] = _mm512_fmadd_ps(a, w0, a0[j]);
                        if (NOB > 1) a1[j] = _mm512_fmadd_ps(a, w1, a1[j]);
                    }
                }
        }
    bk_store(p, NP, NOB, a0, a1, y, ob0, oy, ox0);
}

/* Bias, activation, 16 x 16 transposes and the NCHW stores of a tile's accumulators. */
static inline __attribute__((always_inline)) FK_AVX512 void bk_store(const bk_prep *p, const int NP, const int NOB,
                                                                        const __m512 *a0, const __m512 *a1, float *y,
                                                                        int ob0, int oy, int ox0) {
    const fk__epilogue *e = &p->epi;
    const size_t plane = (size_t)p->Ho * p->Wo;
    const __mmask16 m = fk__lanes16(NP);
    for (int b = 0; b < NOB; b++) {
        int o0 = (ob0 + b) * 16;
        __m512 vb = _mm512_loadu_ps(e->bias + o0);
        __m512 vs = e->slope ? _mm512_loadu_ps(e->slope + o0) : _mm512_setzero_ps();
        if (p->out_blocked) {
            float *yo = y + ((size_t)o0 * plane + ((size_t)oy * p->Wo + ox0) * 16);
#pragma GCC unroll 14
            for (int j = 0; j < NP; j++) _mm512_storeu_ps(yo + j * 16, fk__act_vec(e, _mm512_add_ps(b ? a1[j] : a0[j], vb), vs));
            continue;
        }
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            r[j] = j < NP ? fk__act_vec(e, _mm512_add_ps(b ? a1[j] : a0[j], vb), vs) : _mm512_setzero_ps();
        transpose16(r);
        float *yo = y + (size_t)o0 * plane + (size_t)oy * p->Wo + ox0;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(yo + i * plane, m, r[i]);
    }
}

typedef void (*bk_tile_fn)(const bk_prep *p, const bk_rows *in, const float *wt, float *y, int ob0, int oy, int ox0);
#define BK_DEF(np, nob)                                                                                          \
    static FK_AVX512 void bk_##np##_##nob(const bk_prep *p, const bk_rows *in, const float *wt, float *y, int ob0, \
                                          int oy, int ox0) {                                                     \
        bk_tile(p, np, np, nob, in, wt, y, ob0, oy, ox0);                                                        \
    }
#define BK_ROW(np) BK_DEF(np, 1) BK_DEF(np, 2)
BK_ROW(1) BK_ROW(2) BK_ROW(3) BK_ROW(4) BK_ROW(5) BK_ROW(6) BK_ROW(7)
BK_ROW(8) BK_ROW(9) BK_ROW(10) BK_ROW(11) BK_ROW(12) BK_ROW(13) BK_ROW(14)
#define BK_PAIR(np) {bk_##np##_1, bk_##np##_2}
static const bk_tile_fn bk_table[BK_PMAX][2] = {BK_PAIR(1),  BK_PAIR(2),  BK_PAIR(3),  BK_PAIR(4), BK_PAIR(5),
                                                BK_PAIR(6),  BK_PAIR(7),  BK_PAIR(8),  BK_PAIR(9), BK_PAIR(10),
                                                BK_PAIR(11), BK_PAIR(12), BK_PAIR(13), BK_PAIR(14)};

/* Two-row tiles for maps at most 7 wide (DenseNet's 7x7 stage): 2 x Wo pixels, so the tile keeps enough
 * accumulators to hide the FMA latency (one 7-pixel row: 14, measured 74-85 GFLOP/s). The stores need no
 * change: whole rows are contiguous in the output. */
#define BK2_DEF(w, nob)                                                                                          \
    static FK_AVX512 void bk2_##w##_##nob(const bk_prep *p, const bk_rows *in, const float *wt, float *y, int ob0, \
                                          int oy, int ox0) {                                                     \
        bk_tile(p, 2 * w, w, nob, in, wt, y, ob0, oy, ox0);                                                      \
    }
#define BK2_ROW(w) BK2_DEF(w, 1) BK2_DEF(w, 2)
BK2_ROW(1) BK2_ROW(2) BK2_ROW(3) BK2_ROW(4) BK2_ROW(5) BK2_ROW(6) BK2_ROW(7)
#define BK2_PAIR(w) {bk2_##w##_1, bk2_##w##_2}
static const bk_tile_fn bk2_table[BK_PMAX / 2][2] = {BK2_PAIR(1), BK2_PAIR(2), BK2_PAIR(3), BK2_PAIR(4),
                                                     BK2_PAIR(5), BK2_PAIR(6), BK2_PAIR(7)};

/* The stem's tile (stride 2 across): XP is the padded plain input, each step one input channel and tap, the
 * 14 pixels' values two floats apart. */
static inline __attribute__((always_inline)) FK_AVX512 void bk_stem_tile(const bk_prep *p, const int NP, const int NOB,
                                                                            const float *xp, const float *wt, float *y,
                                                                            int ob0, int oy, int ox0) {
    __m512 a0[BK_PMAX], a1[BK_PMAX];
#pragma GCC unroll 14
    for (int j = 0; j < NP; j++) a0[j] = a1[j] = _mm512_setzero_ps();
    const int NB = NOB * 16;
    for (int c = 0; c < p->C; c++)
        for (int ky = 0; ky < p->kh; ky++) {
            const float *xr = xp + ((size_t)c * p->Hp + (size_t)oy * p->sh + ky) * p->Wp + (size_t)ox0 * 2;
            for (int kx = 0; kx < p->kw; kx++, wt += NB) {
                __m512 w0 = _mm512_loadu_ps(wt);
                __m512 w1 = NOB > 1 ? _mm512_loadu_ps(wt + 16) : w0;
                /* hidden from the optimiser: it would otherwise keep the values shared by taps kx and kx + 2 in
                 * registers across steps and spill the accumulators for them (measured 60 GFLOP/s) */
                const float *xk = xr + kx;
                __asm__("" : "+r"(xk));
#pragma GCC unroll 14
                for (int j = 0; j < NP; j++) {
                    __m512 v = _mm512_set1_ps(xk[2 * j]);
                    a0[j] = _mm512_fmadd_ps(v, w0, a0[j]);
                    if (NOB > 1) a1[j] = _mm512_fmadd_ps(v, w1, a1[j]);
                }
            }
        }
    bk_store(p, NP, NOB, a0, a1, y, ob0, oy, ox0);
}

typedef void (*bk_stem_fn)(const bk_prep *p, const float *xp, const float *wt, float *y, int ob0, int oy, int ox0);
#define BKS_DEF(np, nob)                                                                                         \
    static FK_AVX512 void bks_##np##_##nob(const bk_prep *p, const float *xp, const float *wt, float *y, int ob0, \
                                           int oy, int ox0) {                                                    \
        bk_stem_tile(p, np, nob, xp, wt, y, ob0, oy, ox0);                                                       \
    }
#define BKS_ROW(np) BKS_DEF(np, 1) BKS_DEF(np, 2)
BKS_ROW(1) BKS_ROW(2) BKS_ROW(3) BKS_ROW(4) BKS_ROW(5) BKS_ROW(6) BKS_ROW(7)
BKS_ROW(8) BKS_ROW(9) BKS_ROW(10) BKS_ROW(11) BKS_ROW(12) BKS_ROW(13) BKS_ROW(14)
#define BKS_PAIR(np) {bks_##np##_1, bks_##np##_2}
static const bk_stem_fn bks_table[BK_PMAX][2] = {BKS_PAIR(1),  BKS_PAIR(2),  BKS_PAIR(3),  BKS_PAIR(4), BKS_PAIR(5),
                                                 BKS_PAIR(6),  BKS_PAIR(7),  BKS_PAIR(8),  BKS_PAIR(9), BKS_PAIR(10),
                                                 BKS_PAIR(11), BKS_PAIR(12), BKS_PAIR(13), BKS_PAIR(14)};

/* One output row of one channel pair. */
static FK_AVX512 void bk_row(const bk_prep *p, const bk_rows *in, float *y, int pair, int oy) {
    int nob = p->OB - 2 * pair < 2 ? 1 : 2;
    const float *wt = p->w + (size_t)pair * 32 * p->C * p->kh * p->kw;
    for (int ox0 = 0; ox0 < p->Wo; ox0 += p->P) {
        int np = p->Wo - ox0 < p->P ? p->Wo - ox0 : p->P;
        bk_table[np - 1][nob - 1](p, in, wt, y, 2 * pair, oy, ox0);
    }
}

typedef struct bk_run {
    const bk_prep *p;
    const float *x;
    float *xb, *y;
    int chunks, items;
} bk_run;

/* Whole-image mode (pair_major): channel blocks of the padded input, then every row of each pair in turn. */
static void bk_pack_task(void *arg, int i) {
    const bk_run *r = arg;
    const bk_prep *p = r->p;
    const size_t rs = (size_t)p->Wp * 16;
    for (int cb = (int)((long)p->CB * i / r->chunks); cb < (int)((long)p->CB * (i + 1) / r->chunks); cb++)
        for (int yy = 0; yy < p->Hp; yy++) bk_pack_row(p, r->x, r->xb + ((size_t)cb * p->Hp + yy) * rs, cb, yy);
}

static void bk_pairs_task(void *arg, int i) {
    const bk_run *r = arg;
    const bk_prep *p = r->p;
    const size_t rs = (size_t)p->Wp * 16;
    bk_rows in = {{0}, (size_t)p->Hp * rs};
    for (int t = (int)((long)r->items * i / r->chunks); t < (int)((long)r->items * (i + 1) / r->chunks); t++) {
        int pair = t / p->Ho, oy = t % p->Ho;
        for (int ky = 0; ky < p->kh; ky++) in.rows[ky] = r->xb + (size_t)(oy + ky) * rs;
        bk_row(p, &in, r->y, pair, oy);
    }
}

/* Streaming mode: each chunk of output rows keeps the kh padded input rows it needs in a ring of its own
 * (slot = one padded row of every channel block), packing each input row once just before its first use, so
 * the blocked copy stays in L2 instead of making a round trip through L3; each output row runs every pair. */
static void bk_stream_task(void *arg, int i) {
    const bk_run *r = arg;
    const bk_prep *p = r->p;
    const int R = p->kh + p->rows2; /* ring slots: the rows one step of output rows reads */
    const size_t rs = (size_t)p->Wp * 16, slot = (size_t)p->CB * rs;
    float *ring = r->xb + (size_t)i * R * slot;
    int units = p->rows2 ? (p->Ho + 1) / 2 : p->Ho, u = p->rows2 ? 2 : 1; /* chunks start on even rows */
    int oy0 = u * (int)((long)units * i / r->chunks), oy1 = u * (int)((long)units * (i + 1) / r->chunks);
    if (oy1 > p->Ho) oy1 = p->Ho;
    bk_rows in = {{0}, rs};
    for (int oy = oy0, next = oy0, step; oy < oy1; oy += step) {
        step = p->rows2 && oy + 1 < oy1 ? 2 : 1;
        for (; next < oy + p->kh + step - 1; next++)
            for (int cb = 0; cb < p->CB; cb++) bk_pack_row(p, r->x, ring + (size_t)(next % R) * slot + cb * rs, cb, next);
        for (int ky = 0; ky < p->kh + step - 1; ky++) in.rows[ky] = ring + (size_t)((oy + ky) % R) * slot;
        /* The input rows the next step will pack are short runs in each of C planes (or, blocked, in each of
         * C/16 block planes): too many streams for the hardware prefetchers, so each line would be a demand
         * miss to L3 (measured: the packing was 12 % of fr_expression). Requested while this step computes, a
         * slice of the runs before each tile (all at once, the requests queued up and stalled the tile). Runs:
         * one per plain channel below blk_cb * 16, then one per blocked channel block. */
        const size_t plane = (size_t)p->H * p->W;
        int iy0 = next - p->pt, iy1 = iy0 + step; /* input rows [iy0, iy1) */
        if (iy0 < 0) iy0 = 0;
        if (iy1 > p->H) iy1 = p->H;
        int plain = p->in_blocked ? 0 : p->blk_cb * 16, runs = plain + (p->in_blocked ? p->CB : p->CB - p->blk_cb);
        int pf = oy + step < oy1 && iy0 < iy1;
        const uintptr_t row0 = (uintptr_t)(r->x + (size_t)iy0 * p->W), row1 = row0 + (size_t)(iy1 - iy0) * p->W * sizeof(float) - 1;
        const uintptr_t brow0 = (uintptr_t)(r->x + (size_t)iy0 * p->W * 16), brow1 = brow0 + (size_t)(iy1 - iy0) * p->W * 64 - 1;
        int tiles = p->npairs * (step == 2 ? 1 : (p->Wo + p->P - 1) / p->P), per = (runs + tiles - 1) / tiles, c = 0;
        for (int pair = 0; pair < p->npairs; pair++) {
            int nob = p->OB - 2 * pair < 2 ? 1 : 2;
            const float *wt = p->w + (size_t)pair * 32 * p->C * p->kh * p->kw;
            for (int ox0 = 0; ox0 < p->Wo; ox0 += step == 2 ? p->Wo : p->P) {
                for (int ce = c + per < runs ? c + per : runs; pf && c < ce; c++) {
                    uintptr_t lo = c < plain ? row0 : brow0, hi = c < plain ? row1 : brow1;
                    size_t at = c < plain ? (size_t)c * plane * sizeof(float)
                                          : ((size_t)(p->CB - (runs - c)) * plane * 16) * sizeof(float);
                    for (uintptr_t l = lo & ~(uintptr_t)63; l <= hi; l += 64) _mm_prefetch((const char *)(l + at), _MM_HINT_T1);
                }
                int np = p->Wo - ox0 < p->P ? p->Wo - ox0 : p->P;
                if (step == 2) bk2_table[p->Wo - 1][nob - 1](p, &in, wt, r->y, 2 * pair, oy, 0);
                else bk_table[np - 1][nob - 1](p, &in, wt, r->y, 2 * pair, oy, ox0);
            }
        }
    }
}

/* Stem: channels [c0, c1) of one image into zero-padded planes (C x Hp x Wp). */
static void bk_stem_pad_task(void *arg, int i) {
    const bk_run *r = arg;
    const bk_prep *p = r->p;
    for (int c = (int)((long)p->C * i / r->chunks); c < (int)((long)p->C * (i + 1) / r->chunks); c++)
        for (int yy = 0; yy < p->Hp; yy++) {
            float *d = r->xb + ((size_t)c * p->Hp + yy) * p->Wp;
            int iy = yy - p->pt;
            memset(d, 0, sizeof(float) * (size_t)p->Wp);
            if (iy >= 0 && iy < p->H) memcpy(d + p->pl, r->x + ((size_t)c * p->H + iy) * p->W, sizeof(float) * (size_t)p->W);
        }
}

static FK_AVX512 void bk_stem_rows_task(void *arg, int i) {
    const bk_run *r = arg;
    const bk_prep *p = r->p;
    for (int t = (int)((long)r->items * i / r->chunks); t < (int)((long)r->items * (i + 1) / r->chunks); t++) {
        int oy = t / p->npairs, pair = t % p->npairs, nob = p->OB - 2 * pair < 2 ? 1 : 2;
        const float *wt = p->w + (size_t)pair * 32 * p->C * p->kh * p->kw;
        for (int ox0 = 0; ox0 < p->Wo; ox0 += p->P) {
            int np = p->Wo - ox0 < p->P ? p->Wo - ox0 : p->P;
            bks_table[np - 1][nob - 1](p, r->xb, wt, r->y, 2 * pair, oy, ox0);
        }
    }
}

static int blocked_fast(const fk__run_ctx *cx, const fk__node *n) {
    const bk_prep *p = n->prep;
    const float *x = cx->data[n->in[0]];
    float *y = cx->data[n->out[0]];
    int batch = (int)cx->g->t[n->in[0]].dims[0];
    float *xb = (float *)(((uintptr_t)cx->scratch + 63) & ~(uintptr_t)63);
    for (int b = 0; b < batch; b++, x += (size_t)p->C * p->H * p->W, y += (size_t)p->O * p->Ho * p->Wo) {
        bk_run r = {p, x, xb, y, 1, 0};
        if (p->stem) {
            r.chunks = cx->threads < p->C ? cx->threads : p->C;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, bk_stem_pad_task, &r);
            else bk_stem_pad_task(&r, 0);
            r.items = p->npairs * p->Ho;
            r.chunks = cx->threads < r.items ? cx->threads : r.items;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, bk_stem_rows_task, &r);
            else bk_stem_rows_task(&r, 0);
        } else if (p->pair_major) {
            r.chunks = cx->threads < p->CB ? cx->threads : p->CB;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, bk_pack_task, &r);
            else bk_pack_task(&r, 0);
            r.items = p->npairs * p->Ho;
            r.chunks = cx->threads < r.items ? cx->threads : r.items;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, bk_pairs_task, &r);
            else bk_pairs_task(&r, 0);
        } else {
            int units = p->rows2 ? (p->Ho + 1) / 2 : p->Ho;
            r.chunks = cx->threads < units ? cx->threads : units;
            if (r.chunks > BK_MAX_CHUNKS) r.chunks = BK_MAX_CHUNKS;
            if (r.chunks > 1) fk__pool_for(cx->pool, cx->threads, r.chunks, bk_stream_task, &r);
            else bk_stream_task(&r, 0);
        }
    }
    return FK_OK;
}

#endif

#ifdef FK_HAVE_X86
/* N's input stays blocked when a blocked conv (prepared before it: nodes are in topological order) produced it
 * and N is its only reader and it is nobody's output or alias. */
static void link_blocked(const fk__graph *g, const fk__node *n, bk_prep *p) {
    int x = n->in[0];
    const fk__tensor *t = &g->t[x];
    if (t->is_output || t->alias_of >= 0 || t->kind != FK__T_ACT) return;
    fk__node *prod = NULL;
    for (int i = 0; i < g->nn; i++) {
        const fk__node *m = &g->n[i];
        for (int k = 0; k < m->n_in; k++)
            if (m->in[k] == x && m != n) return; /* another reader */
        for (int k = 0; k < m->n_out; k++)
            if (m->out[k] == x) prod = (fk__node *)m;
    }
    if (!prod || prod->n_out != 1 || prod->prep_free != bk_prep_free) return;
    bk_prep *pp = prod->prep;
    if (pp->O != p->C || pp->Ho * pp->Wo != p->H * p->W) return; /* either may see the map as one row */
    pp->out_blocked = 1;
    p->in_blocked = 1;
}

/* The geometry and constants of N when the blocked kernels take it (returns 1), else 0. Also used on other
 * nodes, to know whether they will be blocked (family_blocked_from). */
typedef struct bk_consts {
    const float *w, *bias, *scale, *shift, *slope;
    int64_t ns;
} bk_consts;

static int bk_check(const fk__graph *g, const fk__node *n, int stem, bk_prep *qo, bk_consts *k) {
    const fk__attr *a = &n->a;
    if (n->n_in < 2 || n->n_out < 1 || a->layout != FK__NCHW || a->group > 1) return 0;
    if (a->stride[1] != (stem ? 2 : 1) || (!stem && a->stride[0] != 1) || a->dilation[0] != 1 || a->dilation[1] != 1)
        return 0;
    const fk__tensor *xt = &g->t[n->in[0]], *yt = &g->t[n->out[0]], *wt = &g->t[n->in[1]];
    if (xt->rank != 4 || yt->rank != 4 || wt->rank != 4 || xt->dtype != FK__DT_F32) return 0;
    bk_prep q;
    memset(&q, 0, sizeof q);
    q.C = (int)xt->dims[1], q.H = (int)xt->dims[2], q.W = (int)xt->dims[3];
    q.O = (int)yt->dims[1], q.Ho = (int)yt->dims[2], q.Wo = (int)yt->dims[3];
    q.kh = (int)wt->dims[2], q.kw = (int)wt->dims[3], q.pt = a->pads[0], q.pl = a->pads[1];
    q.stem = stem, q.sh = a->stride[0];
    if (wt->dims[0] != q.O || wt->dims[1] != q.C || q.O % 16 || q.C < 1 || q.Ho < 1 || q.Wo < 1 || q.sh < 1) return 0;
    if (q.pt < 0 || q.pl < 0 || q.kh < 1 || q.kw < 1 || q.kh > 7 || q.kw > 7) return 0;
    if (stem) {
        /* a few input channels and many taps (the GEMM paths' K = C * kh * kw > 64 case), no pre-operation */
        if (q.C >= 16 || q.C * q.kh * q.kw <= 64 || a->pre_op) return 0;
        if (q.Ho != (q.H + a->pads[0] + a->pads[2] - q.kh) / q.sh + 1 || q.Wo != (q.W + a->pads[1] + a->pads[3] - q.kw) / 2 + 1)
            return 0;
    } else {
        if (q.C % 16) return 0;
        if (q.Ho != q.H + a->pads[0] + a->pads[2] - q.kh + 1 || q.Wo != q.W + a->pads[1] + a->pads[3] - q.kw + 1) return 0;
    }
    if (a->pre_op && n->n_in < 5) return 0;
    /* A plain 1x1 conv reads its input in place on the GEMM path, while here the input is repacked and the
     * output transposed: with few channels on either side that overhead is not paid back (fr_landmark's
     * 64 -> 32..512 and 128 -> 64 layers on 4x4..16x16 maps were 15-30 % slower; 128 -> 256/512 on 7x7 and
     * 464 -> 1024 were 10-20 % faster; in-process A/B, thread CPU). */
    if (!a->pre_op && q.kh * q.kw == 1 && (q.C < 128 || q.O < 256)) return 0;
    const float *w = fk__const_data(g, n->in[1], -1);
    const float *bias = n->n_in > 2 && n->in[2] >= 0 ? fk__const_data(g, n->in[2], q.O) : NULL;
    if (!w || (n->n_in > 2 && n->in[2] >= 0 && !bias)) return 0;
    const float *scale = NULL, *shift = NULL, *slope = NULL;
    if (a->pre_op) {
        scale = fk__const_data(g, n->in[3], q.C), shift = fk__const_data(g, n->in[4], q.C);
        if (!scale || !shift) return 0;
    }
    int64_t ns = 0;
    if (a->act == FK__ACT_PRELU) {
        slope = fk__const_data(g, a->act_slope, -1);
        if (!slope) return 0;
        ns = fk__tensor_numel(&g->t[a->act_slope]);
        if (ns != 1 && ns != q.O) return 0;
    }
    /* A 1x1 conv without padding on a small map (DenseNet's 7x7 stage) is the same conv on one row of H x W
     * pixels: whole tiles of up to 14 pixels instead of 7-pixel rows, and the packing reads each channel's
     * plane as one run. */
    if (!stem && q.kh == 1 && q.kw == 1 && !a->pads[0] && !a->pads[1] && !a->pads[2] && !a->pads[3] && q.H > 1 &&
        q.H * q.W <= 64)
        q.W = q.Wo = q.H * q.W, q.H = q.Ho = 1;
    q.CB = q.C / 16, q.OB = q.O / 16, q.npairs = (q.OB + 1) / 2;
    int sw = stem ? 2 : 1;
    q.Hp = (q.Ho - 1) * q.sh + q.kh > q.H + q.pt ? (q.Ho - 1) * q.sh + q.kh : q.H + q.pt;
    q.Wp = (q.Wo - 1) * sw + q.kw > q.W + q.pl ? (q.Wo - 1) * sw + q.kw : q.W + q.pl;
    /* tile width: as few tiles per row as 14 pixels allow, evenly wide (17 = 9 + 8, not 14 + 3: a short tile
     * has too few accumulators to hide the FMA latency) */
    q.P = (q.Wo + (q.Wo + BK_PMAX - 1) / BK_PMAX - 1) / ((q.Wo + BK_PMAX - 1) / BK_PMAX);
    int T = q.kh * q.kw;
    q.pair_major = (size_t)q.O * q.C * T * sizeof(float) > (512u << 10);
    q.rows2 = !stem && !q.pair_major && 2 * q.Wo <= BK_PMAX && q.Ho >= 2;
    q.pre_op = a->pre_op != 0;
    q.pre_relu = a->pre_act == FK__ACT_RELU;
    *qo = q;
    *k = (bk_consts){w, bias, scale, shift, slope, ns};
    return 1;
}

/* A dense block's Concat buffer T (the outermost tensor Concat inputs are placed in) can hold its channels from
 * CSTART on in the blocked layout when: every node reading a tensor placed in T (or T) is a conv the blocked
 * kernels take, reading a prefix of T (DenseNet: each layer's 1x1 reads all features so far); every writer is
 * such a conv too, except writers of channels below CSTART (the block's input, from a pool); CSTART is a
 * multiple of 16. Returns CSTART, or -1 (then T stays NCHW). Only Concats done in place join a family. */
static int family_blocked_from(const fk__graph *g, int T) {
    const fk__tensor *tt = &g->t[T];
    if (T < 0 || T >= g->nt || tt->placed_in >= 0 || tt->is_output || tt->rank != 4 || tt->dims[0] != 1 ||
        tt->dtype != FK__DT_F32 || tt->kind != FK__T_ACT)
        return -1;
    const size_t chan = (size_t)tt->dims[2] * tt->dims[3] * sizeof(float);
    int cstart = 0, first_blocked = -1, placed = 0;
    for (int i = 0; i < g->nn; i++) {
        const fk__node *m = &g->n[i];
        if (m->op == FK__OP_CONCAT && m->noop && (m->out[0] == T || g->t[m->out[0]].placed_in == T)) {
            placed = 1;
            continue;
        }
        bk_prep q;
        bk_consts k;
        for (int j = 0; j < m->n_in; j++) {
            int x = m->in[j];
            if (x < 0 || (x != T && g->t[x].placed_in != T)) continue;
            const fk__tensor *xt = &g->t[x];
            if (j != 0 || m->op != FK__OP_CONV || xt->offset != tt->offset || g->t[x].is_output || !bk_check(g, m, 0, &q, &k))
                return -1;
        }
        for (int j = 0; j < m->n_out; j++) {
            int y = m->out[j];
            if (y < 0 || (y != T && g->t[y].placed_in != T)) continue;
            const fk__tensor *yt = &g->t[y];
            if (yt->rank != 4 || yt->dims[2] != tt->dims[2] || yt->dims[3] != tt->dims[3] || yt->offset < tt->offset)
                return -1;
            int c0 = (int)((yt->offset - tt->offset) / chan), c1 = c0 + (int)yt->dims[1];
            if (m->op == FK__OP_CONV && bk_check(g, m, 0, &q, &k) && c0 % 16 == 0) {
                if (first_blocked < 0 || c0 < first_blocked) first_blocked = c0;
            } else if (c1 > cstart) {
                cstart = c1;
            }
        }
    }
    if (!placed || first_blocked < 0 || first_blocked < cstart || cstart % 16) return -1;
    /* a plain writer above a blocked one would break the order */
    for (int i = 0; i < g->nn; i++) {
        const fk__node *m = &g->n[i];
        for (int j = 0; j < m->n_out && !m->noop; j++) {
            int y = m->out[j];
            if (y < 0 || g->t[y].placed_in != T) continue;
            bk_prep q;
            bk_consts k;
            int c0 = (int)((g->t[y].offset - tt->offset) / chan);
            if (!(m->op == FK__OP_CONV && bk_check(g, m, 0, &q, &k) && c0 % 16 == 0) && c0 >= first_blocked) return -1;
        }
    }
    return cstart;
}
#endif

int fk__blocked_conv_prepare(fk__graph *g, fk__node *n, int stem) {
#ifdef FK_HAVE_X86
    const fk__attr *a = &n->a;
    bk_prep q;
    bk_consts k;
    if (!bk_check(g, n, stem, &q, &k)) return FK_OK;
    const float *w = k.w, *bias = k.bias, *scale = k.scale, *shift = k.shift, *slope = k.slope;
    int64_t ns = k.ns;
    int T = q.kh * q.kw;
    bk_prep *p = fk__calloc(1, sizeof *p);
    if (!p) return FK_ENOMEM;
    *p = q;
    p->w = fk__calloc((size_t)q.npairs * 32 * q.C * T, sizeof(float));
    p->bias = fk__calloc((size_t)q.O, sizeof(float));
    if (scale) p->scale = fk__malloc(sizeof(float) * (size_t)q.C);
    if (shift) p->shift = fk__malloc(sizeof(float) * (size_t)q.C);
    if (slope) p->slope = fk__malloc(sizeof(float) * (size_t)q.O);
    if (!p->w || !p->bias || (scale && (!p->scale || !p->shift)) || (slope && !p->slope)) {
        bk_prep_free(p);
        return FK_ENOMEM;
    }
    for (int o = 0; o < q.O; o++) {
        int pair = o / 32, nob = q.OB - 2 * pair < 2 ? 1 : 2, ol = o % 32;
        float *wp = p->w + (size_t)pair * 32 * q.C * T;
        for (int c = 0; c < q.C; c++)
            for (int t = 0; t < T; t++) /* [cb][ky][kx][ic][nob * 16]; the stem: [c][ky][kx][nob * 16] */
                wp[(stem ? (size_t)c * T + t : ((size_t)((c / 16) * T + t) * 16 + c % 16)) * nob * 16 + ol] =
                    w[((size_t)o * q.C + c) * T + t];
    }
    if (bias) memcpy(p->bias, bias, sizeof(float) * (size_t)q.O);
    if (scale) memcpy(p->scale, scale, sizeof(float) * (size_t)q.C);
    if (shift) memcpy(p->shift, shift, sizeof(float) * (size_t)q.C);
    for (int o = 0; slope && o < q.O; o++) p->slope[o] = slope[ns == 1 ? 0 : o];
    p->epi.bias = p->bias;
    p->epi.slope = p->slope;
    p->epi.act = a->act;
    p->epi.act_a = a->act_a;
    p->epi.act_b = a->act_b;
    p->epi.per_row = 0;
    n->scratch_bytes = sizeof(float) * ((stem || q.pair_major ? (size_t)q.C * q.Hp * q.Wp : (size_t)BK_MAX_CHUNKS * (q.kh + q.rows2) * q.C * q.Wp) + 16);
    n->prep = p;
    n->prep_free = bk_prep_free;
    p->blk_cb = p->CB;
    if (!stem) { /* a dense block's Concat buffer, read (a prefix) or written (a slice), may be kept blocked */
        const fk__tensor *xt = &g->t[n->in[0]], *yt = &g->t[n->out[0]];
        int T = xt->placed_in >= 0 ? xt->placed_in : n->in[0], cs = family_blocked_from(g, T);
        if (cs >= 0) p->blk_cb = cs / 16;
        T = yt->placed_in;
        if (T >= 0 && (cs = family_blocked_from(g, T)) >= 0 && yt->offset - g->t[T].offset >= (size_t)cs * yt->dims[2] * yt->dims[3] * sizeof(float))
            p->out_blocked = 1;
    }
    if (!stem && !q.pre_op) link_blocked(g, n, p);
#else
    (void)g;
    (void)n;
#endif
    return FK_OK;
}

int fk__blocked_conv_layout(const fk__node *n) {
    if (!fk__blocked_conv_kernel(n)) return 0;
    const bk_prep *p = n->prep;
    return (p->out_blocked ? 1 : 0) | (p->in_blocked ? 2 : 0) | (p->blk_cb < p->CB ? 4 : 0);
}

fk__kernel_fn fk__blocked_conv_kernel(const fk__node *n) {
#ifdef FK_HAVE_X86
    if (n->prep && n->prep_free == bk_prep_free) return blocked_fast;
#else
    (void)n;
#endif
    return NULL;
}
