/*
 * test_nn_fast.c — the executor's fast kernels against the plain reference: every fast convolution path
 * (NCHW GEMM direct / im2col / grouped, NHWC GEMM, depthwise in both layouts) on random shapes, strides,
 * asymmetric pads, dilations, groups, batches and every fused activation, compared with a naive convolution
 * written here (in double) and with the reference kernel fk__ref_kernel(FK__OP_CONV) (tolerance 1e-4 relative:
 * max |fast - ref| / max(1, |ref|)). Also: the thread pool (every index exactly once, 1 and 2 threads,
 * repeated loops, fewer threads than the pool has), FTZ/DAZ in the caller and in workers, and that results
 * do not depend on the thread count. Graph, nodes and run contexts are built by hand.
 */
#include "fk_test.h"
#include "nn/fast.h"

#include <stdatomic.h>
#include <stdint.h>
#include <xmmintrin.h>


static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_f(void) { return (float)(rnd() % 2000001u) / 1000000.0f - 1.0f; }

typedef struct conv_case {
    int layout, batch, C, O, H, W, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group, act, has_bias, slope_n;
} conv_case;

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

static double max_rel_err(const float *a, const float *ref, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]) / fmax(1.0, fabs((double)ref[i]));
        if (!(d <= m)) m = d; /* NaN counts as a failure */
    }
    return m;
}

static void set_tensor(fk__tensor *t, const char *name, int kind, int rank, const int64_t *dims, void *data) {
    memset(t, 0, sizeof *t);
    t->name = (char *)name;
    t->dtype = FK__DT_F32;
    t->kind = kind;
    t->rank = rank;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->data = data;
    t->alias_of = -1;
    t->producer = -1;
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
    memset(&n, 0, sizeof n);
    n.op = FK__OP_CONV;
    n.name = "conv";
    n.n_in = k->has_bias ? 3 : 2;
    n.in = in;
    n.n_out = 1;
    n.out = out;
    n.a.layout = k->layout;
    n.a.kernel[0] = k->kh, n.a.kernel[1] = k->kw;
    n.a.stride[0] = k->sh, n.a.stride[1] = k->sw;
    n.a.dilation[0] = k->dh, n.a.dilation[1] = k->dw;
    n.a.pads[0] = k->pt, n.a.pads[1] = k->pl, n.a.pads[2] = k->pb, n.a.pads[3] = k->pr;
    n.a.group = k->group;
    n.a.act = k->act;
    n.a.act_a = k->act == FK__ACT_CLIP ? 0.0f : 0.1f;
    n.a.act_b = 6.0f;
    n.a.act_slope = k->act == FK__ACT_PRELU ? 4 : -1;
    fk__graph g;
    memset(&g, 0, sizeof g);
    g.t = t;
    g.nt = 5;
    g.n = &n;
    g.nn = 1;
    g.format = "test";
    g.source = "test";

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
    fk__cpu_restore(old);
    fk__pool_destroy(pool2);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
