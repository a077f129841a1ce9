/*
 * test_nn_fast_dw.c — the executor's newer fast kernels against the plain reference kernels (ops_ref.c):
 * NCHW depthwise convolution without padded planes (fast_dw.c: rows stride 1, rows stride 2, flat small maps
 * by masked loads or gathers), direct convolution for few input channels (fast_direct.c), and Slice, Concat,
 * Softmax (fast_copy.c), Exp and the tiled NCHW <-> NHWC Transpose (fast_elt.c), and stem chains of convolutions
 * run row by row as one kernel (fast_dw_fuse.c: a few-channel conv followed by depthwise and 1x1 convs). Shapes are random (odd sizes, 1-wide maps, asymmetric pads,
 * strides 1-3, dilations, every fused activation, batches) plus the models' own layer shapes (fr_detect,
 * fr_landmark); each case also runs on 2 threads and must give the same bytes. Tolerance: max |fast - ref| /
 * max(1, |ref|) <= 1e-4. Graph, nodes and run contexts are built by hand.
 */
#include "fk_test.h"
#include "nn_opcase.h"
#include "nn/fast.h"

#include <stdint.h>


/* ---- convolutions ------------------------------------------------------------------------------------------- */

static int conv_fast_runs;
static int chain_fused; /* chains that ran fused */

/* Runs the case through the fast kernel (1 and 2 threads) and the reference; returns the max error. */
static double run_conv(const conv_case *k, fk__pool *pool2) {
    int Ho = (k->H + k->pt + k->pb - k->dh * (k->kh - 1) - 1) / k->sh + 1;
    int Wo = (k->W + k->pl + k->pr - k->dw * (k->kw - 1) - 1) / k->sw + 1;
    if (Ho < 1 || Wo < 1) return 0;
    int Cg = k->C / k->group;
    size_t nx = (size_t)k->batch * k->C * k->H * k->W, ny = (size_t)k->batch * k->O * Ho * Wo;
    size_t nw = (size_t)k->O * Cg * k->kh * k->kw;
    float *x = fk__malloc(nx * 4), *w = fk__malloc(nw * 4), *bias = fk__malloc((size_t)k->O * 4);
    float *slope = fk__malloc((size_t)k->O * 4), *y1 = fk__malloc(ny * 4), *y2 = fk__malloc(ny * 4);
    float *yr = fk__malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) x[i] = rnd_f();
    for (size_t i = 0; i < nw; i++) w[i] = rnd_f();
    for (int i = 0; i < k->O; i++) bias[i] = rnd_f(), slope[i] = rnd_f() * 0.5f;
    fk__tensor t[5];
    int64_t xd[4] = {k->batch, k->C, k->H, k->W}, yd[4] = {k->batch, k->O, Ho, Wo};
    int64_t wd[4] = {k->O, Cg, k->kh, k->kw}, bd[1] = {k->O}, sd[3] = {k->slope_n, 1, 1};
    set_tensor(&t[0], "x", FK__T_INPUT, 4, xd, NULL);
    set_tensor(&t[1], "w", FK__T_CONST, 4, wd, w);
    set_tensor(&t[2], "b", FK__T_CONST, 1, bd, bias);
    set_tensor(&t[3], "y", FK__T_ACT, 4, yd, NULL);
    set_tensor(&t[4], "slope", FK__T_CONST, 3, sd, slope);
    int in[3] = {0, 1, k->has_bias ? 2 : -1}, out[1] = {3};
    fk__node n;
    conv_node_init(&n, k, in, out);
    fk__graph g;
    test_graph(&g, t, 5, &n, 1);
    FK_CHECK_INT(fk__fast_prepare(&g, &n), FK_OK);
    fk__kernel_fn fn = fk__fast_kernel(&n);
    FK_CHECK(fn != NULL);
    double err = 0;
    if (fn) {
        conv_fast_runs++;
        unsigned char *scratch = fk__malloc(n.scratch_bytes ? n.scratch_bytes : 1);
        void *data[5] = {x, w, bias, yr, slope};
        fk__run_ctx cx = {&g, data, scratch, 1, NULL};
        FK_CHECK_INT(fk__ref_kernel(FK__OP_CONV)(&cx, &n), FK_OK);
        data[3] = y1;
        FK_CHECK_INT(fn(&cx, &n), FK_OK);
        err = max_rel_err(y1, yr, ny);
        data[3] = y2;
        cx.threads = 2;
        cx.pool = pool2;
        FK_CHECK_INT(fn(&cx, &n), FK_OK);
        FK_CHECK(memcmp(y1, y2, ny * 4) == 0);
        fk__free(scratch);
    }
    if (n.prep_free) n.prep_free(n.prep);
    fk__free(x), fk__free(w), fk__free(bias), fk__free(slope), fk__free(y1), fk__free(y2), fk__free(yr);
    return err;
}

static void check_conv(const conv_case *k, fk__pool *pool2, const char *what, int i) {
    double e = run_conv(k, pool2);
    if (e > 1e-4)
        fprintf(stderr, "%s %d: b%d C%d O%d %dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d g%d act%d bias%d: error %g\n", what,
                i, k->batch, k->C, k->O, k->H, k->W, k->kh, k->kw, k->sh, k->sw, k->dh, k->dw, k->pt, k->pl, k->pb,
                k->pr, k->group, k->act, k->has_bias, e);
    FK_CHECK_NEAR(e, 0, 1e-4);
}

static conv_case random_conv(int depthwise) {
    conv_case k;
    memset(&k, 0, sizeof k);
    k.batch = rnd_in(1, 2);
    int ks[] = {1, 2, 3, 3, 3, 3, 5, 7};
    k.kh = ks[rnd_in(0, 7)];
    k.kw = rnd_in(0, 3) ? k.kh : ks[rnd_in(0, 7)];
    k.sh = rnd_in(0, 2) ? rnd_in(1, 2) : 3, k.sw = rnd_in(0, 3) ? k.sh : rnd_in(1, 3);
    k.dh = rnd_in(0, 4) ? 1 : rnd_in(2, 3), k.dw = rnd_in(0, 3) ? k.dh : rnd_in(1, 3);
    k.pt = rnd_in(0, 3), k.pl = rnd_in(0, 3), k.pb = rnd_in(0, 3), k.pr = rnd_in(0, 3);
    int big = rnd_in(0, 5) == 0;
    k.H = rnd_in(1, big ? 70 : 24), k.W = rnd_in(1, big ? 90 : 24);
    if (depthwise) {
        k.C = k.O = k.group = rnd_in(1, 40);
    } else {
        k.C = rnd_in(1, 4), k.O = rnd_in(1, 40), k.group = 1;
        k.sw = rnd_in(1, 2); /* the direct kernel's strides */
    }
    k.act = rnd_in(0, 6);
    k.has_bias = rnd_in(0, 3) != 0;
    k.slope_n = rnd_in(0, 1) ? k.O : 1;
    return k;
}

static void test_convs(fk__pool *pool2) {
    /* the models' shapes: fr_detect, fr_landmark, fr_feature's first layer */
    const conv_case fixed[] = {
        {FK__NCHW, 1, 3, 16, 240, 320, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 1, 32, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 3, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, FK__ACT_PRELU, 1, 64},
        {FK__NCHW, 1, 16, 16, 120, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 32, 32, 120, 160, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 32, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 64, 64, 30, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 128, 128, 15, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 128, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 256, 256, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 256, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 64, 64, 8, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 64, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 128, 128, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128, FK__ACT_PRELU, 1, 128},
        {FK__NCHW, 1, 256, 256, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 256, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 128, 128, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 128, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 2, 20, 20, 15, 16, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 20, FK__ACT_PRELU, 1, 20},
        {FK__NCHW, 1, 17, 17, 7, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 17, FK__ACT_CLIP, 0, 1},
        {FK__NCHW, 1, 128, 128, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128, FK__ACT_CLIP, 1, 1},
        {FK__NCHW, 1, 64, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64, FK__ACT_PRELU, 1, 64},
        {FK__NCHW, 2, 24, 24, 17, 33, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 24, FK__ACT_NONE, 0, 1},
        {FK__NCHW, 1, 8, 8, 9, 13, 3, 3, 3, 3, 2, 2, 1, 0, 2, 1, 8, FK__ACT_LEAKY, 1, 1},
        /* fr_landmark, fr_eye and fr_liveness small maps (fast_dw.c's register and permute kernels) */
        {FK__NCHW, 1, 128, 128, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 128, FK__ACT_PRELU, 1, 128},
        {FK__NCHW, 1, 256, 256, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 256, FK__ACT_PRELU, 1, 256},
        {FK__NCHW, 1, 64, 64, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64, FK__ACT_PRELU, 1, 64},
        {FK__NCHW, 1, 16, 16, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, FK__ACT_NONE, 1, 1},
        {FK__NCHW, 1, 64, 64, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64, FK__ACT_NONE, 1, 1},
        {FK__NCHW, 1, 128, 128, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128, FK__ACT_NONE, 1, 1},
        {FK__NCHW, 1, 308, 308, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 308, FK__ACT_PRELU, 1, 308},
        {FK__NCHW, 1, 64, 64, 8, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 64, FK__ACT_PRELU, 1, 64},
        /* the summed-taps kernel (fast_dw.c): fr_detect's and fr_feature's depthwise maps, then odd widths past
         * two blocks with uneven pads (a last row pair of one row, a last stride-2 block of one column) */
        {FK__NCHW, 1, 64, 64, 30, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 64, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 128, 128, 15, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 128, 128, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128, FK__ACT_PRELU, 1, 128},
        {FK__NCHW, 1, 256, 256, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 256, FK__ACT_PRELU, 1, 256},
        {FK__NCHW, 1, 256, 256, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 256, FK__ACT_PRELU, 1, 256},
        {FK__NCHW, 1, 512, 512, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 512, FK__ACT_PRELU, 1, 512},
        {FK__NCHW, 1, 7, 7, 13, 47, 3, 3, 1, 1, 1, 1, 0, 1, 2, 1, 7, FK__ACT_CLIP, 1, 1},
        {FK__NCHW, 2, 9, 9, 11, 65, 3, 3, 2, 2, 1, 1, 2, 1, 0, 0, 9, FK__ACT_LEAKY, 0, 1},
        {FK__NCHW, 1, 6, 6, 9, 66, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2, 6, FK__ACT_NONE, 1, 1},
    };
    for (size_t i = 0; i < FK__ARRAY_LEN(fixed); i++) check_conv(&fixed[i], pool2, "fixed", (int)i);
    /* 3x3 border cases of the small-map kernels: widths 1..32, heights 1..9, pads 0..2 (each side), stride 1 and
     * 2, no activation, ReLU and per-channel PReLU */
    int acts[3] = {FK__ACT_NONE, FK__ACT_RELU, FK__ACT_PRELU};
    for (int i = 0; i < 384; i++) {
        int s = 1 + i % 2, p = (i / 2) % 3;
        conv_case k = {FK__NCHW, 1, 5, 5, 1 + (i * 7) % 9, 1 + (i / 6) % 32, 3, 3, s, s, 1, 1, p, (p + i / 3) % 3, (p + i) % 3,
                       (i / 5) % 3, 5, acts[(i / 7) % 3], i % 4 != 0, 5};
        check_conv(&k, pool2, "small", i);
    }
    for (int i = 0; i < 300; i++) {
        conv_case k = random_conv(1);
        check_conv(&k, pool2, "depthwise", i);
    }
    for (int i = 0; i < 150; i++) {
        conv_case k = random_conv(0);
        check_conv(&k, pool2, "direct", i);
    }
    FK_CHECK(conv_fast_runs > 400);
}

/* ---- Slice, Concat, Softmax, Exp ------------------------------------------------------------------------- */

static float *rand_data(int64_t cnt, float lo, float hi) {
    float *p = fk__malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
    for (int64_t i = 0; i < cnt; i++) p[i] = lo + (hi - lo) * (rnd_f() + 1.0f) * 0.5f;
    return p;
}

/* ---- stem chains fused row by row (fast_dw_fuse.c) ------------------------------------------------------------ */

/* A chain of 2-8 convolutions on a graph input: a few-channel conv, then depthwise 3x3 (stride 1 or 2, pad 1)
 * and 1x1 convs in random order; every node run through fk__fast_kernel in order (the earlier members do
 * nothing, the last computes the chain) against the reference kernels node by node. */
static void test_chain(fk__pool *pool2, int it) {
    enum { MAXN = 8 };
    int len = rnd_in(2, MAXN);
    fk__tensor t[1 + 4 * MAXN];
    fk__node nodes[MAXN];
    int ins[MAXN][3], outs[MAXN][1];
    int64_t C = rnd_in(1, 4), H = rnd_in(1, 50), W = rnd_in(1, 70);
    if (it < 2) C = 3, H = 240, W = 320; /* fr_detect's stem */
    int64_t xd[4] = {1, C, H, W};
    set_tensor(&t[0], "x", FK__T_INPUT, 4, xd, rand_data(C * H * W, -1, 1));
    int nt = 1, prev = 0;
    int64_t c = C, h = H, w = W;
    for (int k = 0; k < len; k++) {
        fk__node *n = &nodes[k];
        memset(n, 0, sizeof *n);
        n->op = FK__OP_CONV;
        n->name = "chain";
        fk__attr *a = &n->a;
        a->layout = FK__NCHW;
        a->group = 1;
        a->dilation[0] = a->dilation[1] = 1;
        int kind = k == 0 ? 0 : rnd_in(1, 3); /* 0 direct, 1 dw s1, 2 dw s2, 3 1x1 */
        int64_t o = c, kh = 3, kw = 3, s = 1;
        if (kind == 0) {
            o = it < 2 ? 16 : rnd_in(1, 40);
            int ks[] = {1, 3, 3, 5};
            kh = ks[rnd_in(0, 3)], kw = rnd_in(0, 3) ? kh : ks[rnd_in(0, 3)];
            s = it < 2 ? 2 : rnd_in(1, 2);
            for (int i = 0; i < 4; i++) a->pads[i] = it < 2 ? 1 : rnd_in(0, 2);
        } else if (kind == 1 || kind == 2) {
            a->group = (int)c;
            s = kind == 2 ? 2 : 1;
            for (int i = 0; i < 4; i++) a->pads[i] = 1;
        } else {
            o = rnd_in(1, 40);
            kh = kw = 1;
        }
        a->kernel[0] = (int)kh, a->kernel[1] = (int)kw, a->stride[0] = a->stride[1] = (int)s;
        int64_t ho = (h + a->pads[0] + a->pads[2] - kh) / s + 1, wo = (w + a->pads[1] + a->pads[3] - kw) / s + 1;
        if (ho < 1 || wo < 1) { /* too small for this kernel: end the chain here */
            len = k;
            break;
        }
        int64_t wd[4] = {o, kind == 1 || kind == 2 ? 1 : c, kh, kw}, bd[1] = {o}, yd[4] = {1, o, ho, wo}, sd[3] = {o, 1, 1};
        set_tensor(&t[nt], "w", FK__T_CONST, 4, wd, rand_data(numel_of(4, wd), -1, 1));
        set_tensor(&t[nt + 1], "b", FK__T_CONST, 1, bd, rand_data(o, -1, 1));
        set_tensor(&t[nt + 2], "slope", FK__T_CONST, 3, sd, rand_data(o, -0.5f, 0.5f));
        set_tensor(&t[nt + 3], "y", FK__T_ACT, 4, yd, NULL);
        t[nt + 3].producer = k;
        ins[k][0] = prev, ins[k][1] = nt, ins[k][2] = nt + 1, outs[k][0] = nt + 3;
        n->n_in = 3, n->in = ins[k], n->n_out = 1, n->out = outs[k];
        a->act = rnd_in(0, 6);
        a->act_a = a->act == FK__ACT_CLIP ? 0.0f : 0.1f, a->act_b = 6.0f;
        a->act_slope = a->act == FK__ACT_PRELU ? nt + 2 : -1;
        prev = nt + 3;
        nt += 4;
        c = o, h = ho, w = wo;
    }
    if (len < 2) {
        for (int i = 0; i < nt; i++) fk__free(t[i].data);
        return;
    }
    t[prev].is_output = 1;
    fk__graph g;
    test_graph(&g, t, nt, nodes, len);
    size_t scratch_bytes = 64;
    for (int k = 0; k < len; k++) {
        FK_CHECK_INT(fk__fast_prepare(&g, &nodes[k]), FK_OK);
        if (nodes[k].scratch_bytes > scratch_bytes) scratch_bytes = nodes[k].scratch_bytes;
    }
    unsigned char *scratch = fk__malloc(scratch_bytes);
    void *ref[1 + 4 * MAXN], *fast[1 + 4 * MAXN], *fast2[1 + 4 * MAXN];
    for (int i = 0; i < nt; i++) {
        ref[i] = fast[i] = fast2[i] = t[i].data;
        if (t[i].kind == FK__T_ACT) {
            size_t bytes = (size_t)numel_of(4, t[i].dims) * 4;
            ref[i] = fk__malloc(bytes), fast[i] = fk__malloc(bytes), fast2[i] = fk__malloc(bytes);
        }
    }
    fk__run_ctx cr = {&g, ref, scratch, 1, NULL}, cf = {&g, fast, scratch, 1, NULL}, cf2 = {&g, fast2, scratch, 2, pool2};
    int fused = 0;
    for (int k = 0; k < len; k++) {
        FK_CHECK_INT(fk__ref_kernel(FK__OP_CONV)(&cr, &nodes[k]), FK_OK);
        fk__kernel_fn fn = fk__fast_kernel(&nodes[k]);
        FK_CHECK(fn != NULL);
        if (!fn) continue;
        FK_CHECK_INT(fn(&cf, &nodes[k]), FK_OK);
        FK_CHECK_INT(fn(&cf2, &nodes[k]), FK_OK);
        fused += fk__dw_fuse_kernel(&nodes[k]) != NULL;
    }
    size_t ny = (size_t)numel_of(4, t[prev].dims);
    double e = max_rel_err(fast[prev], ref[prev], ny);
    if (e > 1e-4) fprintf(stderr, "chain %d (len %d, x %dx%dx%d): error %g\n", it, len, (int)C, (int)H, (int)W, e);
    FK_CHECK_NEAR(e, 0, 1e-4);
    FK_CHECK(memcmp(fast[prev], fast2[prev], ny * 4) == 0);
    chain_fused += fused == len;
    for (int k = 0; k < len; k++)
        if (nodes[k].prep_free) nodes[k].prep_free(nodes[k].prep);
    for (int i = 0; i < nt; i++) {
        if (t[i].kind == FK__T_ACT) fk__free(ref[i]), fk__free(fast[i]), fk__free(fast2[i]);
        else fk__free(t[i].data);
    }
    fk__free(scratch);
}

static void test_ops(fk__pool *pool2) {
    int fast_seen[FK__OP_COUNT] = {0};
    for (int it = 0; it < 800; it++) {
        op_case c;
        int kind = it % 5;
        if (kind == 0) { /* Slice: any starts/steps on the outer axes, step 1 on the last (else the reference runs) */
            op_init(&c, FK__OP_SLICE, 1);
            int r = rnd_in(1, 4);
            int64_t d[4], o[4];
            for (int i = 0; i < r; i++) {
                d[i] = rnd_in(1, i == 1 ? 500 : 9);
                int64_t step = i == r - 1 ? (rnd_in(0, 5) ? 1 : 2) : (rnd_in(0, 2) ? 1 : rnd_in(0, 1) ? 2 : -1);
                int64_t start = rnd_in(0, (int)d[i] - 1), cnt;
                if (step > 0) cnt = rnd_in(1, (int)((d[i] - start + step - 1) / step));
                else cnt = rnd_in(1, (int)(start + 1));
                c.n.a.s_axes[i] = i, c.n.a.s_starts[i] = start, c.n.a.s_steps[i] = step;
                c.n.a.s_ends[i] = start + cnt * step;
                o[i] = cnt;
            }
            c.n.a.s_n = r;
            set_tensor(&c.t[0], "x", FK__T_INPUT, r, d, rand_data(numel_of(r, d), -1, 1));
            set_tensor(&c.t[1], "y", FK__T_ACT, r, o, NULL);
        } else if (kind == 1) { /* Concat along any axis */
            int nin = rnd_in(1, 4), r = rnd_in(1, 4), ax = rnd_in(0, r - 1);
            op_init(&c, FK__OP_CONCAT, nin);
            int64_t d[4], o[4];
            for (int i = 0; i < r; i++) d[i] = rnd_in(1, i == 1 ? 300 : 6);
            memcpy(o, d, sizeof o);
            o[ax] = 0;
            for (int k = 0; k < nin; k++) {
                int64_t dk[4];
                memcpy(dk, d, sizeof dk);
                dk[ax] = rnd_in(1, rnd_in(0, 1) ? 4 : 40);
                o[ax] += dk[ax];
                set_tensor(&c.t[k], "x", FK__T_INPUT, r, dk, rand_data(numel_of(r, dk), -1, 1));
            }
            c.n.a.axis = ax;
            set_tensor(&c.t[nin], "y", FK__T_ACT, r, o, NULL);
        } else if (kind == 2) { /* Softmax along any axis; last-axis lengths 2, 4, 8, 16 take the butterfly path */
            op_init(&c, FK__OP_SOFTMAX, 1);
            int r = rnd_in(1, 4), ax = rnd_in(0, r - 1);
            int64_t d[4];
            for (int i = 0; i < r; i++) d[i] = rnd_in(1, 12);
            if (rnd_in(0, 1)) {
                ax = r - 1;
                int Ls[] = {2, 4, 8, 16, 3, 37};
                d[ax] = Ls[rnd_in(0, 5)];
                d[0] = rnd_in(1, 900);
            }
            c.n.a.axis = ax;
            set_tensor(&c.t[0], "x", FK__T_INPUT, r, d, rand_data(numel_of(r, d), -30, 30));
            set_tensor(&c.t[1], "y", FK__T_ACT, r, d, NULL);
        } else if (kind == 4) { /* Transpose, any permutation (NCHW <-> NHWC and 2-D ones take the tiled path) */
            op_init(&c, FK__OP_TRANSPOSE, 1);
            int r = rnd_in(2, 4), perm[4];
            int64_t d[4], o[4];
            for (int i = 0; i < r; i++) d[i] = rnd_in(0, 3) ? rnd_in(1, 40) : 1, perm[i] = i;
            if (rnd_in(0, 1) && r == 4) { /* NCHW -> NHWC or back */
                int to_nhwc = rnd_in(0, 1);
                perm[0] = 0, perm[1] = to_nhwc ? 2 : 3, perm[2] = to_nhwc ? 3 : 1, perm[3] = to_nhwc ? 1 : 2;
            } else {
                for (int i = r - 1; i > 0; i--) {
                    int j = rnd_in(0, i), t = perm[i];
                    perm[i] = perm[j], perm[j] = t;
                }
            }
            for (int i = 0; i < r; i++) o[i] = d[perm[i]], c.n.a.perm[i] = perm[i];
            c.n.a.n_perm = r;
            set_tensor(&c.t[0], "x", FK__T_INPUT, r, d, rand_data(numel_of(r, d), -1, 1));
            set_tensor(&c.t[1], "y", FK__T_ACT, r, o, NULL);
        } else { /* Exp, into overflow and underflow */
            op_init(&c, FK__OP_EXP, 1);
            int64_t d[1] = {rnd_in(1, 3000)};
            set_tensor(&c.t[0], "x", FK__T_INPUT, 1, d, rand_data(d[0], rnd_in(0, 1) ? -4 : -110, rnd_in(0, 1) ? 4 : 95));
            set_tensor(&c.t[1], "y", FK__T_ACT, 1, d, NULL);
        }
        int op = c.n.op;
        double e = run_op(&c, pool2);
        if (e >= 0) fast_seen[op]++;
        if (e > 1e-4) fprintf(stderr, "op %s case %d: error %g\n", fk__op_name(op), it, e);
        FK_CHECK(e <= 1e-4);
    }
    int ops[] = {FK__OP_SLICE, FK__OP_CONCAT, FK__OP_SOFTMAX, FK__OP_EXP, FK__OP_TRANSPOSE};
    for (size_t i = 0; i < FK__ARRAY_LEN(ops); i++) {
        if (fast_seen[ops[i]] < 50) fprintf(stderr, "fast kernel for %s ran %d times\n", fk__op_name(ops[i]), fast_seen[ops[i]]);
        FK_CHECK(fast_seen[ops[i]] >= 50);
    }
}

int main(void) {
    rng = 0x2545F4914F6CDD1Dull; /* this test's case sequence */
    if (!fk__cpu_avx512()) {
        printf("no AVX-512 on this CPU: the fast kernels are not compiled in, nothing to compare\n");
        return fk_t_finish();
    }
    fk__pool *pool2 = fk__pool_create(2);
    unsigned old = fk__cpu_set_ftz();
    test_convs(pool2);
    for (int i = 0; i < 120; i++) test_chain(pool2, i);
    FK_CHECK(chain_fused > 60);
    test_ops(pool2);
    fk__cpu_restore(old);
    fk__pool_destroy(pool2);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
