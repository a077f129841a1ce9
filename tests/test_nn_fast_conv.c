/*
 * test_nn_fast_conv.c — the DenseNet-shaped graph rewrites and their kernels: a BatchNormalization (+ Relu)
 * folded forward into the 1x1 convolution it feeds (prepare.c fold_batch_norm_forward, fast_conv3.c) and
 * Concats whose inputs are written straight into their output (prepare.c place_concats, executor skips them).
 * Each graph is built by hand (nn_tgraph.h), prepared twice — fast kernels and reference kernels — and run
 * on the same random input; results must agree to 1e-4 (relative to the output's magnitude), and the fast
 * model's prepared graph must show the rewrite (no BatchNorm left, Concats noop) or its absence where it
 * would be wrong (padded convolution, batch 2, a Concat input that is also a graph output). Strided and
 * shifted-GEMM convolutions (fast_conv3.c's phase planes for stride 2, fast_conv.c's conv_nchw_shift writing
 * whole 32-column rows) are compared the same way, one conv each; so are the channel-blocked kernels
 * (fast_blocked.c: stride 1, channels in multiples of 16, with and without a pre-operation), on 1 and 2
 * threads, checking that the blocked path (and not another) took the conv.
 */
#include "nn_tgraph.h"
#include "nn/fast.h"

#include <math.h>
#include <stdlib.h>

static unsigned rng_state = 12345u;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static int rand_const(int rank, const int64_t *dims, float lo, float hi) {
    int64_t n = tg_numel(rank, dims);
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (frand() * 0.5f + 0.5f);
    int t = tg_const(rank, dims, v);
    free(v);
    return t;
}

/* BN (scale, shift per channel) [+ Relu] -> y */
static int bn_relu(int x, int64_t C, int relu) {
    int in[3] = {x, rand_const(1, (int64_t[]){C}, 0.5f, 1.5f), rand_const(1, (int64_t[]){C}, -0.5f, 0.5f)}, b, r;
    tg_node(FK__OP_BATCH_NORM, 3, in, &b);
    if (!relu) return b;
    tg_node(FK__OP_RELU, 1, &b, &r);
    return r;
}

static int conv(int x, int64_t C, int64_t O, int k, int pad, int bias) {
    float sc = 1.0f / sqrtf((float)(C * k * k));
    int in[3] = {x, rand_const(4, (int64_t[]){O, C, k, k}, -sc, sc), bias ? rand_const(1, (int64_t[]){O}, -0.1f, 0.1f) : -1};
    int y;
    fk__node *n = tg_node(FK__OP_CONV, bias ? 3 : 2, in, &y);
    n->a.kernel[0] = n->a.kernel[1] = k;
    n->a.pads[0] = n->a.pads[1] = n->a.pads[2] = n->a.pads[3] = pad;
    return y;
}

static int concat(int n_in, const int *in) {
    int y;
    fk__node *n = tg_node(FK__OP_CONCAT, n_in, in, &y);
    n->a.axis = 1;
    return y;
}

typedef struct shape {
    int64_t N, C0, H, W;
    int layers, growth, bottleneck;
    int chained;    /* 1: cat(prev_cat, f) (chained); 0: cat(x, f1, ..., fi) (torchvision's DenseNet) */
    int pad_1x1;    /* the bottleneck conv is 3x3 padded instead (no BN folding) */
    int expose;     /* the first new feature is also a graph output (its Concat is not placed) */
    int relu;       /* BN followed by Relu */
    unsigned seed;
    int out16;      /* the transition has 16 outputs (a blocked conv: the Concat buffer can stay blocked), else 7 */
} shape;

/* a dense block: layers of BN-ReLU-Conv1x1-(bias, Relu)-Conv3x3 whose outputs are concatenated; then a
 * transition BN-ReLU-Conv1x1 */
static void build_block(const shape *s) {
    rng_state = s->seed;
    tg_begin();
    int x = tg_in(4, (int64_t[]){s->N, s->C0, s->H, s->W});
    int feats[64], nf = 0, cat;
    feats[nf++] = conv(x, s->C0, s->C0, 1, 0, 1); /* the block's input is an activation (a pool in DenseNet) */
    int64_t C = s->C0;
    cat = concat(1, feats); /* torchvision starts a block with a one-input Concat */
    int first = -1;
    for (int l = 0; l < s->layers; l++) {
        int a = bn_relu(cat, C, s->relu);
        int b = conv(a, C, s->bottleneck, s->pad_1x1 ? 3 : 1, s->pad_1x1 ? 1 : 0, 1), r;
        tg_node(FK__OP_RELU, 1, &b, &r);
        int f = conv(r, s->bottleneck, s->growth, 3, 1, l & 1);
        if (first < 0) first = f;
        if (s->chained) {
            int in[2] = {cat, f};
            cat = concat(2, in);
        } else {
            feats[nf++] = f;
            cat = concat(nf, feats);
        }
        C += s->growth;
    }
    int y = conv(bn_relu(cat, C, 1), C, s->out16 ? 16 : 7, 1, 0, 1);
    tg_output(y);
    if (s->expose) tg_output(first);
}

/* prepares the graph built in tg with the fast kernels or the reference ones */
static fk_nn_model_t *prepare_tg(int reference) {
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.use_reference = reference;
    fk_nn_model_t *m = NULL;
    int rc = fk__nn_model_from_graph(&tg, &o, &m);
    if (rc) fprintf(stderr, "prepare failed: %s\n", fk_nn_model_errmsg(m));
    FK_CHECK_INT(rc, FK_OK);
    return rc ? NULL : m;
}

static fk_nn_model_t *prepare(const shape *s, int reference) {
    build_block(s);
    return prepare_tg(reference);
}

static int run_threads(fk_nn_model_t *m, int threads, const float *x, float *y, float *y2) {
    fk_nn_session_t *s = NULL;
    int rc = fk_nn_session_create(m, threads, &s);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) return rc;
    const float *in[1] = {x};
    float *out[2] = {y, y2};
    rc = fk_nn_session_run(s, in, out);
    if (rc) fprintf(stderr, "run failed: %s\n", fk_nn_session_errmsg(s));
    FK_CHECK_INT(rc, FK_OK);
    fk_nn_session_destroy(s);
    return rc;
}

static int run(fk_nn_model_t *m, const float *x, float *y, float *y2) { return run_threads(m, 1, x, y, y2); }

static int count_blocked(const fk__graph *g) {
    int k = 0;
    for (int i = 0; i < g->nn; i++) k += g->n[i].op == FK__OP_CONV && fk__blocked_conv_kernel(&g->n[i]) != NULL;
    return k;
}

static int count_op(const fk__graph *g, int op, int noop) {
    int k = 0;
    for (int i = 0; i < g->nn; i++) k += g->n[i].op == op && (noop < 0 || g->n[i].noop == noop);
    return k;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    float mag = 0.0f;
    for (size_t i = 0; i < n; i++) mag = fmaxf(mag, fabsf(want[i]));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-4f * (mag > 1.0f ? mag : 1.0f)))
            if (bad++ < 4) fprintf(stderr, "  %s[%zu]: got %.7g want %.7g\n", what, i, got[i], want[i]);
    if (bad) fprintf(stderr, "%s: %zu of %zu values differ\n", what, bad, n);
    FK_CHECK(bad == 0);
}

static void test_block(const shape *s) {
    fk_nn_model_t *mf = prepare(s, 0), *mr = prepare(s, 1);
    if (!mf || !mr) {
        fk_nn_model_close(mf);
        fk_nn_model_close(mr);
        return;
    }
    const fk__graph *g = fk__nn_model_graph(mf);
    int n_concat = count_op(g, FK__OP_CONCAT, -1), placed = s->N == 1 && !s->expose;
    /* the rewrites happened where they are valid, and only there */
    if (s->expose) FK_CHECK(count_op(g, FK__OP_CONCAT, 1) < n_concat);
    else FK_CHECK_INT(count_op(g, FK__OP_CONCAT, 1), placed ? n_concat : 0);
    FK_CHECK_INT(count_op(g, FK__OP_BATCH_NORM, -1), s->pad_1x1 ? s->layers : 0);
    int pre = 0;
    for (int i = 0; i < g->nn; i++) pre += g->n[i].op == FK__OP_CONV && g->n[i].a.pre_op;
    FK_CHECK_INT(pre, s->pad_1x1 ? 1 : s->layers + 1);
    /* the channel-blocked kernels take each pre-op 1x1 and 3x3 whose channel counts are multiples of 16 (not
     * the transition to 7 channels, nor the plain 1x1 at the start with too few channels) */
    int blocked = 0;
    for (int l = 0; l < s->layers && !s->pad_1x1; l++) {
        blocked += (s->C0 + l * s->growth) % 16 == 0 && s->bottleneck % 16 == 0;
        blocked += s->bottleneck % 16 == 0 && s->growth % 16 == 0;
    }
    if (s->out16) blocked++; /* the transition */
    FK_CHECK_INT(count_blocked(g), blocked);
    /* with every writer but the block's input and every reader of the Concat buffer blocked, the buffer is
     * kept blocked past the input: the 3x3s write blocked slices, the 1x1s (and the transition) copy them */
    if (s->out16 && blocked == 2 * s->layers + 1 && s->N == 1 && !s->expose && s->C0 % 16 == 0) {
        int writers = 0, readers = 0;
        for (int i = 0; i < g->nn; i++) {
            int l = fk__blocked_conv_layout(&g->n[i]);
            writers += g->n[i].a.kernel[0] == 3 && (l & 1);
            readers += g->n[i].a.pre_op && (l & 4);
        }
        FK_CHECK_INT(writers, s->layers);
        FK_CHECK_INT(readers, s->layers); /* layers 2.. and the transition: the first reads the input only */
    }
    /* fast kernels for every conv (the pre-op ones included) */
    for (int i = 0; i < g->nn; i++)
        if (g->n[i].op == FK__OP_CONV && !fk__fast_kernel(&g->n[i])) {
            fprintf(stderr, "conv %d has no fast kernel\n", i);
            FK_CHECK(0);
        }
    size_t nx = (size_t)(s->N * s->C0 * s->H * s->W), ny = (size_t)(s->N * (s->out16 ? 16 : 7) * s->H * s->W),
           n2 = (size_t)(s->N * s->growth * s->H * s->W);
    float *x = malloc(nx * sizeof(float)), *yf = calloc(ny, sizeof(float)), *yr = calloc(ny, sizeof(float));
    float *ff = calloc(n2, sizeof(float)), *fr = calloc(n2, sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    if (!run(mf, x, yf, ff) && !run(mr, x, yr, fr)) {
        check_close("block output", yf, yr, ny);
        if (s->expose) check_close("exposed feature", ff, fr, n2);
    }
    memset(yf, 0, ny * sizeof(float));
    if (!run_threads(mf, 2, x, yf, ff)) check_close("block output, 2 threads", yf, yr, ny);
    free(x), free(yf), free(yr), free(ff), free(fr);
    fk_nn_model_close(mf);
    fk_nn_model_close(mr);
}

/* one strided convolution x -> Conv -> y (fast_conv3.c's phase-plane path when stride 2 and K > 64) */
typedef struct sconv {
    int C, O, H, W, k, s, pt, pl, pb, pr, act; /* act: 0 none, 1 Relu, 2 PRelu */
    unsigned seed;
    int blocked; /* 1: must run on the channel-blocked kernels, -1: must not, 0: either */
} sconv;

static fk_nn_model_t *prepare_conv(const sconv *c, int reference) {
    rng_state = c->seed;
    tg_begin();
    int x = tg_in(4, (int64_t[]){1, c->C, c->H, c->W}), y, r;
    int y0 = conv(x, c->C, c->O, c->k, 0, 1);
    fk__node *n = &tg.n[tg.nn - 1];
    n->a.stride[0] = n->a.stride[1] = c->s;
    n->a.pads[0] = c->pt, n->a.pads[1] = c->pl, n->a.pads[2] = c->pb, n->a.pads[3] = c->pr;
    y = y0;
    if (c->act == 1) tg_node(FK__OP_RELU, 1, &y0, &y);
    if (c->act == 2) {
        int in[2] = {y0, rand_const(3, (int64_t[]){c->O, 1, 1}, 0.0f, 0.5f)};
        tg_node(FK__OP_PRELU, 2, in, &r);
        y = r;
    }
    tg_output(y);
    return prepare_tg(reference);
}

static void test_strided(const sconv *c) {
    fk_nn_model_t *mf = prepare_conv(c, 0), *mr = prepare_conv(c, 1);
    if (mf && mr) {
        const fk__graph *g = fk__nn_model_graph(mf);
        FK_CHECK_INT(g->nn, 1);
        FK_CHECK(fk__fast_kernel(&g->n[0]) != NULL);
        if (c->blocked) FK_CHECK_INT(count_blocked(g), (c->blocked > 0));
        int Ho = (c->H + c->pt + c->pb - c->k) / c->s + 1, Wo = (c->W + c->pl + c->pr - c->k) / c->s + 1;
        size_t nx = (size_t)c->C * c->H * c->W, ny = (size_t)c->O * Ho * Wo;
        float *x = malloc(nx * sizeof(float)), *yf = calloc(ny, sizeof(float)), *yr = calloc(ny, sizeof(float));
        for (size_t i = 0; i < nx; i++) x[i] = frand();
        if (!run(mf, x, yf, NULL) && !run(mr, x, yr, NULL)) check_close("conv", yf, yr, ny);
        memset(yf, 0, ny * sizeof(float));
        if (!run_threads(mf, 2, x, yf, NULL)) check_close("conv, 2 threads", yf, yr, ny);
        free(x), free(yf), free(yr);
    }
    fk_nn_model_close(mf);
    fk_nn_model_close(mr);
}

int main(void) {
    (void)tg_run, (void)check_vals, (void)check_shape, (void)tg_consti; /* nn_tgraph.h helpers not used here */
    const shape shapes[] = {
        /* N  C0  H   W  layers growth bottleneck chained pad expose relu seed */
        {1, 5, 13, 11, 4, 4, 8, 0, 0, 0, 1, 1u, 0},   /* odd sizes: column tails */
        {1, 16, 8, 8, 3, 8, 16, 1, 0, 0, 1, 2u, 0},   /* chained Concats */
        {1, 64, 14, 14, 6, 32, 128, 0, 0, 0, 1, 3u, 0}, /* fr_expression's 14x14 stage: K up to 256, 196 columns */
        {1, 300, 7, 5, 2, 16, 24, 0, 0, 0, 0, 4u, 0},  /* K > the GEMM's K block; BN without Relu */
        {1, 6, 9, 9, 3, 4, 8, 0, 1, 0, 1, 5u, 0},      /* padded bottleneck: BN stays */
        {2, 6, 9, 7, 3, 4, 8, 0, 0, 0, 1, 6u, 0},      /* batch 2: Concats copy */
        {1, 6, 9, 7, 3, 4, 8, 0, 0, 1, 1, 7u, 0},      /* a Concat input is a graph output: not placed */
        {1, 32, 10, 17, 3, 16, 48, 1, 0, 0, 0, 8u, 0}, /* blocked: one-block output (16), 3 blocks, 17 = 14 + 3 wide, no Relu */
        {1, 32, 7, 7, 3, 32, 64, 0, 0, 0, 1, 9u, 0},   /* blocked 7x7 stage: two-row tiles, odd row count */
        {1, 48, 6, 5, 2, 16, 32, 0, 0, 0, 1, 10u, 0},  /* two-row tiles of 5, even row count */
        {1, 64, 14, 14, 4, 32, 128, 0, 0, 0, 1, 11u, 1}, /* the Concat buffer kept blocked past the input */
        {1, 32, 7, 9, 3, 16, 64, 1, 0, 0, 0, 12u, 1},  /* same, chained Concats, no Relu in the pre-op */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_block(&shapes[i]);
    const sconv convs[] = {
        /* C   O    H   W   k  s  pt pl pb pr act seed */
        {3, 64, 61, 45, 7, 2, 3, 3, 3, 3, 1, 11u, 1},  /* DenseNet's stem, odd sizes: the blocked stem kernel */
        {3, 13, 40, 37, 7, 2, 2, 3, 4, 1, 2, 12u, -1}, /* uneven pads, PReLU, O not a multiple of 16: phase planes */
        {3, 32, 30, 29, 5, 2, 2, 2, 2, 2, 2, 28u, 1},  /* blocked stem: 15 = 14 + 1 wide, PReLU */
        {4, 48, 17, 40, 7, 2, 3, 2, 1, 3, 0, 29u, 1},  /* blocked stem: uneven pads, a pair and a single block */
        {8, 20, 17, 23, 3, 2, 1, 1, 1, 1, 0, 13u, 0},  /* K = 72 */
        {16, 24, 9, 9, 5, 2, 0, 0, 0, 0, 1, 14u, 0},   /* no padding, small map: a panel spans several rows */
        {5, 7, 70, 9, 4, 2, 1, 2, 2, 1, 0, 15u, 0},    /* even kernel, tall narrow */
        {8, 16, 20, 20, 3, 3, 1, 1, 1, 1, 1, 16u, 0},  /* stride 3: the generic path */
        {16, 24, 12, 32, 3, 1, 1, 1, 1, 1, 1, 17u, 0}, /* stride 1, 32 wide: shifted GEMM writing rows directly */
        {8, 13, 5, 64, 3, 1, 1, 1, 1, 1, 2, 18u, 0},   /* 64 wide, PReLU */
        {4, 8, 9, 34, 5, 1, 2, 1, 2, 1, 0, 19u, 0},    /* 5x5, output 32 wide from 34 with uneven pads */
        {6, 8, 9, 30, 3, 1, 1, 1, 1, 1, 0, 20u, 0},    /* 30 wide: the padded-grid shifted GEMM */
        {24, 32, 7, 16, 3, 1, 1, 1, 1, 1, 1, 21u, 0},  /* 16 wide: two rows per column block, odd row count */
        {4, 20, 16, 16, 3, 1, 1, 1, 1, 1, 2, 22u, 0},  /* 16 wide with K = 36 (row-block-major GEMM) */
        {9, 16, 5, 18, 5, 1, 2, 1, 2, 1, 0, 23u, 0},   /* 5x5, 16 wide from 18 */
        /* channel-blocked (stride 1, channels in multiples of 16) */
        {32, 48, 9, 29, 3, 1, 1, 1, 1, 1, 2, 24u, 1},    /* 29 = 14 + 14 + 1 wide, a single last block, PReLU */
        {16, 16, 6, 7, 5, 1, 2, 2, 2, 2, 1, 25u, 1},     /* 5x5, one block each side */
        {64, 32, 8, 9, 7, 1, 3, 3, 3, 3, 0, 26u, 1},     /* 7x7, 9 wide (one tile) */
        {16, 32, 7, 7, 3, 1, 0, 0, 0, 0, 1, 27u, 1},     /* no padding */
        {48, 16, 5, 40, 2, 1, 0, 1, 1, 0, 0, 28u, 1},    /* even kernel, uneven pads, 40 = 4 x 10 wide */
        {512, 512, 3, 5, 1, 1, 0, 0, 0, 0, 1, 29u, 1},   /* weights over 512 KB: whole-image mode */
        {256, 256, 4, 6, 3, 1, 1, 1, 1, 1, 0, 30u, 1},   /* whole-image mode, 3x3 */
        {128, 256, 7, 7, 1, 1, 0, 0, 0, 0, 1, 31u, 1},   /* a plain 1x1 with channels enough both sides */
        {64, 512, 4, 4, 1, 1, 0, 0, 0, 0, 1, 32u, -1},   /* a plain 1x1 with few input channels: GEMM */
        {128, 64, 8, 8, 1, 1, 0, 0, 0, 0, 1, 33u, -1},   /* ... or few output channels: GEMM */
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) test_strided(&convs[i]);
    return fk_t_finish();
}
