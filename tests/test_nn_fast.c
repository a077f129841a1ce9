/*
 * test_nn_fast.c — the executor's fast kernels against the plain reference: every fast convolution path
 * (NCHW GEMM direct / im2col / grouped, NHWC GEMM, depthwise in both layouts) on random shapes, strides,
 * asymmetric pads, dilations, groups, batches and every fused activation, compared with a naive convolution
 * written here (in double) and with the reference kernel fk__ref_kernel(FK__OP_CONV) (tolerance 1e-4 relative:
 * max |fast - ref| / max(1, |ref|)). Also: the thread pool (every index exactly once, 1 and 2 threads,
 * repeated loops, fewer threads than the pool has), FTZ/DAZ in the caller and in workers, and that results
 * do not depend on the thread count. Also every other fast kernel (fast_elt.c: unary activations, batch norm,
 * broadcast binaries with fused activations, constant Pad, NCHW Max/AveragePool, Transpose) against its
 * reference kernel on random shapes, and Gemm/MatMul with constant weights. Graph, nodes and run contexts are
 * built by hand.
 */
#include "fk_test.h"
#include "nn_opcase.h"
#include "nn/fast.h"

#include <stdatomic.h>
#include <stdint.h>
#include <xmmintrin.h>



static float act_ref(const conv_case *k, const float *slope, int o, float v) {
    switch (k->act) {
    case FK__ACT_RELU: return v > 0 ? v : 0;
    case FK__ACT_CLIP: return v < 0 ? 0 : v > 6 ? 6 : v;
    case FK__ACT_LEAKY: return v < 0 ? v * 0.1f : v;
    case FK__ACT_PRELU: return v < 0 ? v * slope[k->slope_n == 1 ? 0 : o] : v;
    case FK__ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case FK__ACT_TANH: return tanhf(v);
    default: return v;
    }
}

/* Naive convolution in double: the oracle. */
static void conv_naive(const conv_case *k, int Ho, int Wo, const float *x, const float *w, const float *bias,
                       const float *slope, float *y) {
    int Cg = k->C / k->group, Og = k->O / k->group, nhwc = k->layout == FK__NHWC;
    for (int b = 0; b < k->batch; b++)
        for (int o = 0; o < k->O; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = bias ? bias[o] : 0;
                    int gi = o / Og;
                    for (int c = 0; c < Cg; c++)
                        for (int ky = 0; ky < k->kh; ky++)
                            for (int kx = 0; kx < k->kw; kx++) {
                                int iy = oy * k->sh - k->pt + ky * k->dh, ix = ox * k->sw - k->pl + kx * k->dw;
                                if (iy < 0 || iy >= k->H || ix < 0 || ix >= k->W) continue;
                                int ci = gi * Cg + c;
                                size_t xi = nhwc ? (((size_t)b * k->H + iy) * k->W + ix) * k->C + ci
                                                 : (((size_t)b * k->C + ci) * k->H + iy) * k->W + ix;
                                acc += (double)x[xi] * w[(((size_t)o * Cg + c) * k->kh + ky) * k->kw + kx];
                            }
                    size_t yi = nhwc ? (((size_t)b * Ho + oy) * Wo + ox) * k->O + o
                                     : (((size_t)b * k->O + o) * Ho + oy) * Wo + ox;
                    y[yi] = act_ref(k, slope, o, (float)acc);
                }
}

static int conv_ok; /* cases where the fast path was taken */

/* Builds the graph for one case, runs fast (threads 1 and 2) and compares. Returns the max error. */
static double run_conv_case(const conv_case *k, fk__pool *pool2, int expect_fast) {
    int Ho = (k->H + k->pt + k->pb - k->dh * (k->kh - 1) - 1) / k->sh + 1;
    int Wo = (k->W + k->pl + k->pr - k->dw * (k->kw - 1) - 1) / k->sw + 1;
    if (Ho < 1 || Wo < 1) return 0;
    int nhwc = k->layout == FK__NHWC, Cg = k->C / k->group;
    size_t nx = (size_t)k->batch * k->C * k->H * k->W, ny = (size_t)k->batch * k->O * Ho * Wo;
    size_t nw = (size_t)k->O * Cg * k->kh * k->kw;
    float *x = malloc(nx * 4), *w = fk__malloc(nw * 4), *bias = fk__malloc((size_t)k->O * 4);
    float *slope = fk__malloc((size_t)k->O * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *yr = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) x[i] = rnd_f();
    for (size_t i = 0; i < nw; i++) w[i] = rnd_f();
    for (int i = 0; i < k->O; i++) bias[i] = rnd_f(), slope[i] = rnd_f() * 0.5f;
    conv_naive(k, Ho, Wo, x, w, k->has_bias ? bias : NULL, slope, yr);

    fk__tensor t[5];
    int64_t xd[4] = {k->batch, nhwc ? k->H : k->C, nhwc ? k->W : k->H, nhwc ? k->C : k->W};
    int64_t yd[4] = {k->batch, nhwc ? Ho : k->O, nhwc ? Wo : Ho, nhwc ? k->O : Wo};
    int64_t wd[4] = {k->O, Cg, k->kh, k->kw}, bd[1] = {k->O}, sd[3] = {k->slope_n, 1, 1};
    set_tensor(&t[0], "x", FK__T_INPUT, 4, xd, NULL);
    set_tensor(&t[1], "w", FK__T_CONST, 4, wd, w);
    set_tensor(&t[2], "b", FK__T_CONST, 1, bd, bias);
    set_tensor(&t[3], "y", FK__T_ACT, 4, yd, NULL);
    set_tensor(&t[4], "slope", FK__T_CONST, 3, sd, slope);
    t[3].producer = 0;
    int in[3] = {0, 1, k->has_bias ? 2 : -1}, out[1] = {3};
    fk__node n;
    conv_node_init(&n, k, in, out);
    fk__graph g;
    test_graph(&g, t, 5, &n, 1);

    FK_CHECK_INT(fk__fast_prepare(&g, &n), FK_OK);
    fk__kernel_fn fn = fk__fast_kernel(&n);
    double err = 0;
    if (expect_fast) FK_CHECK(fn != NULL);
    if (fn) {
        conv_ok++;
        unsigned char *scratch = fk__malloc(n.scratch_bytes ? n.scratch_bytes : 1);
        void *data[5] = {x, w, bias, y1, slope};
        fk__run_ctx cx = {&g, data, scratch, 1, NULL};
        FK_CHECK_INT(fn(&cx, &n), FK_OK);
        err = max_rel_err(y1, yr, ny);
        data[3] = y2;
        cx.threads = 2;
        cx.pool = pool2;
        FK_CHECK_INT(fn(&cx, &n), FK_OK);
        FK_CHECK(memcmp(y1, y2, ny * 4) == 0); /* tiles never split a sum: thread count cannot matter */
        {
            float *y3 = malloc(ny * 4);
            data[3] = y3;
            cx.threads = 1;
            cx.pool = NULL;
            FK_CHECK_INT(fk__ref_kernel(FK__OP_CONV)(&cx, &n), FK_OK);
            double e3 = max_rel_err(y1, y3, ny);
            if (e3 > err) err = e3;
            free(y3);
        }
        fk__free(scratch);
    }
    if (n.prep_free) n.prep_free(n.prep);
    free(x), fk__free(w), fk__free(bias), fk__free(slope), free(y1), free(y2), free(yr);
    return err;
}

static conv_case random_case(void) {
    conv_case k;
    memset(&k, 0, sizeof k);
    k.layout = rnd_in(0, 1);
    k.batch = rnd_in(1, 2);
    int kind = rnd_in(0, 3); /* 0,1 dense; 2 depthwise; 3 grouped */
    k.C = rnd_in(1, 40);
    k.O = rnd_in(1, 70);
    k.group = 1;
    if (kind == 2) k.O = k.C, k.group = k.C;
    if (kind == 3 && k.layout == FK__NCHW) {
        k.group = rnd_in(2, 4);
        k.C = k.group * rnd_in(1, 8);
        k.O = k.group * rnd_in(1, 20);
    }
    int ks[] = {1, 1, 3, 3, 3, 5, 7};
    k.kh = ks[rnd_in(0, 6)];
    k.kw = rnd_in(0, 3) ? k.kh : ks[rnd_in(0, 6)];
    k.sh = rnd_in(1, 3), k.sw = rnd_in(0, 1) ? k.sh : rnd_in(1, 3);
    k.dh = rnd_in(0, 3) ? 1 : rnd_in(2, 3), k.dw = rnd_in(0, 3) ? k.dh : rnd_in(1, 3);
    k.pt = rnd_in(0, 3), k.pl = rnd_in(0, 3), k.pb = rnd_in(0, 3), k.pr = rnd_in(0, 3);
    k.H = rnd_in(1, 40), k.W = rnd_in(1, 40);
    k.act = rnd_in(0, 6);
    k.has_bias = rnd_in(0, 3) != 0;
    k.slope_n = rnd_in(0, 1) ? k.O : 1;
    return k;
}

/* ---- other ops: fast vs reference ---------------------------------------------------------------------- */

static float *rand_data(int64_t cnt, float scale) {
    float *p = fk__malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
    for (int64_t i = 0; i < cnt; i++) p[i] = rnd_f() * scale;
    return p;
}

/* Input and output tensors of a pool case whose attributes are set (ONNX output size); 0 if no window fits. */
static int pool_tensors(op_case *c, const int64_t d[4]) {
    const fk__attr *a = &c->n.a;
    int64_t o[4] = {d[0], d[1], 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t span = d[2 + i] + a->pads[i] + a->pads[2 + i] - a->kernel[i];
        o[2 + i] = (a->ceil_mode ? (span + a->stride[i] - 1) / a->stride[i] : span / a->stride[i]) + 1;
        /* ONNX: the last window must start inside the input or the begin padding */
        if (a->ceil_mode && (o[2 + i] - 1) * a->stride[i] >= d[2 + i] + a->pads[i]) o[2 + i]--;
    }
    if (o[2] < 1 || o[3] < 1 || d[2] + a->pads[0] + a->pads[2] < a->kernel[0] ||
        d[3] + a->pads[1] + a->pads[3] < a->kernel[1])
        return 0;
    set_tensor(&c->t[0], "x", FK__T_INPUT, 4, d, rand_data(numel_of(4, d), 3.0f));
    set_tensor(&c->t[1], "y", FK__T_ACT, 4, o, NULL);
    return 1;
}

/* Pools at the edges of the fast paths' conditions: fr_eye's 3x3/2 pad-1 pools on 20x20..3x3 maps and rows of
 * up to 32 columns (two registers), wide kernels, strides 1-3, ceil mode, padding counted or not; then rows
 * just too wide for that (planes) and tiling windows. The fast kernel must run and agree with the reference. */
static void test_pool_shapes(fk__pool *pool2) {
    static const int cases[][12] = {
        /* max, C, H, W, kh, kw, stride, pads top/left/bottom (right = top), ceil, count padding */
        {1, 16, 20, 20, 3, 3, 2, 1, 1, 1, 1, 0},  {1, 32, 10, 10, 3, 3, 2, 1, 1, 1, 1, 0},
        {1, 64, 5, 5, 3, 3, 2, 1, 1, 1, 1, 0},    {1, 128, 3, 3, 3, 3, 2, 1, 1, 1, 1, 0},
        {0, 16, 20, 20, 3, 3, 2, 1, 1, 1, 1, 0},  {0, 16, 20, 20, 3, 3, 2, 1, 1, 1, 1, 1},
        {1, 3, 9, 32, 2, 2, 2, 0, 0, 0, 1, 0},    {0, 3, 9, 31, 8, 8, 2, 3, 3, 4, 1, 1},
        {1, 5, 7, 17, 8, 8, 1, 4, 4, 3, 0, 0},    {0, 5, 7, 17, 7, 5, 3, 2, 2, 2, 1, 0},
        {1, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},     {0, 2, 33, 16, 3, 3, 1, 1, 1, 1, 0, 1},
        {1, 4, 6, 33, 3, 3, 2, 1, 1, 1, 1, 0},    {0, 4, 6, 40, 3, 3, 1, 1, 1, 1, 0, 0},
        {1, 4, 12, 32, 2, 2, 2, 0, 0, 0, 0, 0},   {0, 4, 12, 30, 3, 3, 3, 0, 0, 0, 0, 0},
        /* max 3 wide at stride 2 on wider rows (pool_k3s2): DenseNet's stem pool, left pad 0 / 1, ceil mode */
        {1, 64, 112, 112, 3, 3, 2, 1, 1, 1, 0, 0}, {1, 3, 9, 33, 3, 3, 2, 0, 0, 0, 1, 0},
        {1, 5, 7, 50, 3, 3, 2, 1, 1, 1, 1, 0},    {1, 3, 10, 47, 5, 3, 2, 2, 1, 2, 1, 0},
        {1, 2, 5, 64, 3, 3, 2, 0, 0, 0, 0, 0},    {1, 2, 4, 65, 1, 3, 2, 0, 1, 0, 1, 0},
    };
    for (size_t i = 0; i < FK__ARRAY_LEN(cases); i++) {
        const int *k = cases[i];
        op_case c;
        op_init(&c, k[0] ? FK__OP_MAX_POOL : FK__OP_AVG_POOL, 1);
        fk__attr *a = &c.n.a;
        a->kernel[0] = k[4], a->kernel[1] = k[5], a->stride[0] = a->stride[1] = k[6];
        for (int j = 0; j < 4; j++) a->pads[j] = k[7 + j % 3];
        a->ceil_mode = k[10], a->count_include_pad = k[11];
        int64_t d[4] = {1, k[1], k[2], k[3]};
        FK_CHECK(pool_tensors(&c, d));
        double e = run_op(&c, pool2);
        if (e < 0 || e > 1e-4) fprintf(stderr, "pool case %zu: error %g\n", i, e);
        FK_CHECK(e >= 0 && e <= 1e-4);
    }
}

static void test_other_ops(fk__pool *pool2) {
    int fast_seen[FK__OP_COUNT] = {0};
    for (int it = 0; it < 800; it++) {
        op_case c;
        int kind = it % 8;
        if (kind == 0) { /* unary */
            int ops[] = {FK__OP_RELU, FK__OP_CLIP, FK__OP_LEAKY_RELU, FK__OP_SIGMOID, FK__OP_TANH};
            op_init(&c, ops[rnd_in(0, 4)], 1);
            int64_t d[1] = {rnd_in(1, 3000)};
            set_tensor(&c.t[0], "x", FK__T_INPUT, 1, d, rand_data(d[0], 12.0f));
            set_tensor(&c.t[1], "y", FK__T_ACT, 1, d, NULL);
            c.n.a.clip_min = -1.5f, c.n.a.clip_max = 2.5f, c.n.a.alpha = 0.2f;
        } else if (kind == 1) { /* batch norm */
            op_init(&c, FK__OP_BATCH_NORM, 3);
            c.n.a.layout = rnd_in(0, 1);
            int64_t C = rnd_in(1, 40), d[4] = {rnd_in(1, 2), C, rnd_in(1, 20), rnd_in(1, 20)}, cd[1] = {C};
            if (c.n.a.layout == FK__NHWC) d[1] = rnd_in(1, 20), d[3] = C;
            set_tensor(&c.t[0], "x", FK__T_INPUT, 4, d, rand_data(numel_of(4, d), 3.0f));
            set_tensor(&c.t[1], "scale", FK__T_CONST, 1, cd, rand_data(C, 2.0f));
            set_tensor(&c.t[2], "shift", FK__T_CONST, 1, cd, rand_data(C, 2.0f));
            set_tensor(&c.t[3], "y", FK__T_ACT, 4, d, NULL);
            c.n.a.act = rnd_in(0, 6);
            c.n.a.act_a = c.n.a.act == FK__ACT_CLIP ? 0.0f : 0.1f, c.n.a.act_b = 6.0f;
            if (c.n.a.act == FK__ACT_PRELU) c.n.a.act = FK__ACT_TANH; /* slope needs a 5th tensor: covered by conv */
        } else if (kind == 2) { /* broadcast binaries */
            int ops[] = {FK__OP_ADD, FK__OP_SUB, FK__OP_MUL, FK__OP_DIV, FK__OP_MAX, FK__OP_MIN, FK__OP_PRELU};
            op_init(&c, ops[rnd_in(0, 6)], 2);
            int r = rnd_in(1, 4);
            int64_t o[4], a[4], b[4];
            for (int i = 0; i < r; i++) {
                o[i] = rnd_in(1, 12);
                a[i] = rnd_in(0, 2) ? o[i] : 1;
                b[i] = rnd_in(0, 2) ? o[i] : 1;
            }
            int ra = rnd_in(0, 1) ? r : rnd_in(0, r), rb = rnd_in(0, 1) ? r : rnd_in(0, r);
            set_tensor(&c.t[0], "a", FK__T_INPUT, ra, a + (r - ra), rand_data(numel_of(ra, a + (r - ra)), 4.0f));
            set_tensor(&c.t[1], "b", FK__T_INPUT, rb, b + (r - rb), rand_data(numel_of(rb, b + (r - rb)), 4.0f));
            if (c.n.op == FK__OP_DIV) { /* keep divisors away from 0 */
                float *bb = c.t[1].data;
                for (int64_t i = 0; i < numel_of(rb, b + (r - rb)); i++) bb[i] = bb[i] < 0 ? bb[i] - 0.5f : bb[i] + 0.5f;
            }
            set_tensor(&c.t[2], "y", FK__T_ACT, r, o, NULL);
            c.n.a.act = rnd_in(0, 3) ? FK__ACT_NONE : rnd_in(1, 3);
            c.n.a.act_a = 0.1f, c.n.a.act_b = 6.0f;
        } else if (kind == 3) { /* pad */
            op_init(&c, FK__OP_PAD, 1);
            int r = rnd_in(1, 4);
            int64_t d[4], o[4];
            c.n.a.n_pads_nd = 2 * r;
            for (int i = 0; i < r; i++) {
                d[i] = rnd_in(1, 24);
                c.n.a.pads_nd[i] = rnd_in(-1, 3);
                c.n.a.pads_nd[r + i] = rnd_in(-1, 3);
                if (d[i] + c.n.a.pads_nd[i] + c.n.a.pads_nd[r + i] < 1) c.n.a.pads_nd[i] = c.n.a.pads_nd[r + i] = 0;
                o[i] = d[i] + c.n.a.pads_nd[i] + c.n.a.pads_nd[r + i];
            }
            c.n.a.pad_value = rnd_f();
            set_tensor(&c.t[0], "x", FK__T_INPUT, r, d, rand_data(numel_of(r, d), 1.0f));
            set_tensor(&c.t[1], "y", FK__T_ACT, r, o, NULL);
        } else if (kind == 4) { /* pools */
            op_init(&c, rnd_in(0, 1) ? FK__OP_MAX_POOL : FK__OP_AVG_POOL, 1);
            fk__attr *a = &c.n.a;
            a->kernel[0] = rnd_in(1, 4), a->kernel[1] = rnd_in(0, 2) ? a->kernel[0] : rnd_in(1, 4);
            a->stride[0] = rnd_in(1, 3), a->stride[1] = rnd_in(0, 2) ? a->stride[0] : rnd_in(1, 3);
            for (int i = 0; i < 4; i++) a->pads[i] = rnd_in(0, a->kernel[i % 2] - 1);
            a->ceil_mode = rnd_in(0, 1);
            a->count_include_pad = rnd_in(0, 1);
            if (rnd_in(0, 2) == 0) { /* windows that tile the input (the fast path without a padded copy) */
                a->stride[0] = a->kernel[0] = rnd_in(1, 8), a->stride[1] = a->kernel[1] = rnd_in(0, 1) ? 2 : rnd_in(1, 8);
                for (int i = 0; i < 4; i++) a->pads[i] = 0;
            }
            int64_t d[4] = {rnd_in(1, 2), rnd_in(1, 12), rnd_in(1, 40), rnd_in(1, 70)};
            if (!pool_tensors(&c, d)) {
                it--;
                continue;
            }
        } else if (kind == 6) { /* Gemm with constant B (and C) */
            int hasc = rnd_in(0, 2) != 0;
            op_init(&c, FK__OP_GEMM, hasc ? 3 : 2);
            int64_t M = rnd_in(1, 20), K = rnd_in(1, 300), N = rnd_in(1, 100);
            c.n.a.trans_b = rnd_in(0, 1);
            c.n.a.alpha = rnd_in(0, 1) ? 1.0f : 0.5f, c.n.a.beta = rnd_in(0, 1) ? 1.0f : 2.0f;
            int64_t ad[2] = {M, K}, bd[2] = {c.n.a.trans_b ? N : K, c.n.a.trans_b ? K : N}, od[2] = {M, N};
            int64_t cd[2] = {1, rnd_in(0, 3) ? N : 1};
            set_tensor(&c.t[0], "a", FK__T_INPUT, 2, ad, rand_data(M * K, 1.0f));
            set_tensor(&c.t[1], "b", FK__T_CONST, 2, bd, rand_data(K * N, 1.0f));
            if (hasc) {
                int rc = rnd_in(1, 2);
                set_tensor(&c.t[2], "c", FK__T_CONST, rc, rc == 1 ? cd + 1 : cd, rand_data(cd[1], 1.0f));
            }
            set_tensor(&c.t[hasc ? 3 : 2], "y", FK__T_ACT, 2, od, NULL);
            c.n.a.act = rnd_in(0, 2) ? FK__ACT_NONE : rnd_in(1, 6);
            if (c.n.a.act == FK__ACT_PRELU) c.n.a.act = FK__ACT_RELU;
            c.n.a.act_a = 0.1f, c.n.a.act_b = 6.0f;
        } else if (kind == 7) { /* MatMul with constant B */
            op_init(&c, FK__OP_MATMUL, 2);
            int64_t bt = rnd_in(1, 3), M = rnd_in(1, 16), K = rnd_in(1, 200), N = rnd_in(1, 80);
            int64_t ad[3] = {bt, M, K}, bd[2] = {K, N}, od[3] = {bt, M, N};
            set_tensor(&c.t[0], "a", FK__T_INPUT, 3, ad, rand_data(bt * M * K, 1.0f));
            set_tensor(&c.t[1], "b", FK__T_CONST, 2, bd, rand_data(K * N, 1.0f));
            set_tensor(&c.t[2], "y", FK__T_ACT, 3, od, NULL);
        } else { /* transpose with trailing axes kept */
            op_init(&c, FK__OP_TRANSPOSE, 1);
            int r = rnd_in(2, 5), keep = rnd_in(1, r - 1);
            int64_t d[6], o[6];
            int perm[6];
            for (int i = 0; i < r; i++) d[i] = rnd_in(1, 6), perm[i] = i;
            d[r - 1] = rnd_in(8, 20);
            for (int i = r - keep - 1; i > 0; i--) { /* shuffle the leading axes */
                int j = rnd_in(0, i), t = perm[i];
                perm[i] = perm[j], perm[j] = t;
            }
            for (int i = 0; i < r; i++) o[i] = d[perm[i]], c.n.a.perm[i] = perm[i];
            c.n.a.n_perm = r;
            set_tensor(&c.t[0], "x", FK__T_INPUT, r, d, rand_data(numel_of(r, d), 1.0f));
            set_tensor(&c.t[1], "y", FK__T_ACT, r, o, NULL);
        }
        int op = c.n.op;
        double e = run_op(&c, pool2);
        if (e >= 0) fast_seen[op]++;
        if (e > 1e-4) fprintf(stderr, "op %s case %d: error %g\n", fk__op_name(op), it, e);
        FK_CHECK(e <= 1e-4);
    }
    int ops[] = {FK__OP_RELU,     FK__OP_TANH,     FK__OP_SIGMOID,   FK__OP_BATCH_NORM, FK__OP_ADD, FK__OP_MUL,
                 FK__OP_PAD,      FK__OP_MAX_POOL, FK__OP_AVG_POOL, FK__OP_TRANSPOSE,  FK__OP_GEMM, FK__OP_MATMUL};
    for (size_t i = 0; i < FK__ARRAY_LEN(ops); i++) {
        if (!fast_seen[ops[i]]) fprintf(stderr, "no fast kernel exercised for %s\n", fk__op_name(ops[i]));
        FK_CHECK(fast_seen[ops[i]] > 0);
    }
}

/* ---- pool ---------------------------------------------------------------------------------------------- */

typedef struct pool_job {
    atomic_int hits[1000];
    atomic_int ftz_bad;
} pool_job;

static void pool_fn(void *arg, int i) {
    pool_job *j = arg;
    atomic_fetch_add(&j->hits[i], 1);
    if ((_mm_getcsr() & 0x8040) != 0x8040) atomic_fetch_add(&j->ftz_bad, 1);
}

static void test_pool(void) {
    static pool_job j;
    for (int threads = 1; threads <= 2; threads++) {
        fk__pool *p = fk__pool_create(threads);
        FK_CHECK(p != NULL);
        unsigned old = fk__cpu_set_ftz();
        for (int round = 0; round < 200; round++) {
            int n = 1 + round * 5 % 1000;
            for (int i = 0; i < 1000; i++) atomic_store(&j.hits[i], 0);
            atomic_store(&j.ftz_bad, 0);
            fk__pool_for(p, round % 3 == 0 ? 1 : threads, n, pool_fn, &j);
            int bad = 0;
            for (int i = 0; i < 1000; i++) bad += atomic_load(&j.hits[i]) != (i < n);
            FK_CHECK_INT(bad, 0);
            FK_CHECK_INT(atomic_load(&j.ftz_bad), 0);
        }
        fk__cpu_restore(old);
        fk__pool_destroy(p);
    }
    fk__pool_for(NULL, 4, 3, pool_fn, &j); /* no pool: serial */
    fk__pool_destroy(NULL);
}

static void test_ftz(void) {
    volatile float tiny = 1e-39f; /* subnormal */
    volatile float one = 1.0f, small = 1e-20f;
    unsigned old = fk__cpu_set_ftz();
    FK_CHECK(tiny * one == 0.0f);   /* DAZ: subnormal input reads as zero */
    FK_CHECK(small * small == 0.0f); /* FTZ: subnormal result flushed */
    fk__cpu_restore(old);
    FK_CHECK(tiny * one != 0.0f);
    FK_CHECK(small * small != 0.0f);
}

int main(void) {
    rng = 0x9E3779B97F4A7C15ull; /* this test's case sequence */
    test_ftz();
    test_pool();
    if (!fk__cpu_avx512()) {
        printf("no AVX-512 on this CPU: fast convolution paths are not compiled in, nothing to compare\n");
        return fk_t_finish();
    }
    fk__pool *pool2 = fk__pool_create(2);
    unsigned old = fk__cpu_set_ftz();
    /* The models' own layer shapes (fr_feature, fr_detect, fr_landmark). */
    const conv_case fixed[] = {
        {FK__NCHW, 1, 128, 256, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, FK__ACT_PRELU, 1, 256},
        {FK__NCHW, 1, 64, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64, FK__ACT_PRELU, 1, 64},
        {FK__NCHW, 1, 3, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, FK__ACT_PRELU, 1, 64},
        {FK__NCHW, 1, 128, 128, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 128, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 512, 512, 7, 7, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 512, FK__ACT_NONE, 1, 1},
        {FK__NCHW, 1, 16, 16, 60, 80, 3, 3, 1, 1, 5, 5, 5, 5, 5, 5, 1, FK__ACT_RELU, 1, 1},
        {FK__NCHW, 1, 256, 6, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, FK__ACT_NONE, 1, 1},
        {FK__NHWC, 1, 32, 64, 64, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, FK__ACT_CLIP, 1, 1},
        {FK__NHWC, 1, 3, 24, 128, 128, 5, 5, 2, 2, 1, 1, 1, 1, 2, 2, 1, FK__ACT_RELU, 1, 1},
        {FK__NHWC, 1, 96, 96, 32, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 96, FK__ACT_PRELU, 1, 96},
    };
    for (size_t i = 0; i < FK__ARRAY_LEN(fixed); i++) {
        double e = run_conv_case(&fixed[i], pool2, 1);
        FK_CHECK_NEAR(e, 0, 1e-4);
        if (e > 1e-4) fprintf(stderr, "  fixed case %zu\n", i);
    }
    for (int it = 0; it < 400; it++) {
        conv_case k = random_case();
        double e = run_conv_case(&k, pool2, 1);
        if (e > 1e-4)
            fprintf(stderr,
                    "case %d: layout %d b%d C%d O%d %dx%d k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d g%d act%d bias%d slope%d\n",
                    it, k.layout, k.batch, k.C, k.O, k.H, k.W, k.kh, k.kw, k.sh, k.sw, k.dh, k.dw, k.pt, k.pl, k.pb,
                    k.pr, k.group, k.act, k.has_bias, k.slope_n);
        FK_CHECK_NEAR(e, 0, 1e-4);
    }
    FK_CHECK(conv_ok > 300);
    test_other_ops(pool2);
    test_pool_shapes(pool2);
    fk__cpu_restore(old);
    fk__pool_destroy(pool2);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
