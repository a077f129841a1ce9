/*
 * bench_conv.c — the measurement behind the executor's choice of convolution backend: facekit's own fast
 * kernels (src/nn/fast_conv.c) against oneDNN on the faceplugin models' own layer shapes, 1 thread, FTZ/DAZ on,
 * thread CPU time (oneDNN runs its OpenMP region in the calling thread when OMP_NUM_THREADS=1).
 * oneDNN is timed twice: with plain NCHW activations (what our graph holds between ops) and with the blocked
 * layout it prefers (format_tag any, reorders excluded: its best case). Weights are reordered once, outside
 * the timing, in both. Prints one line per layer: median microseconds. Not a test (no assertions).
 */
#include "nn/fast.h"

#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct layer {
    const char *name;
    int C, O, H, W, k, s, p, group;
} layer;

static const layer layers[] = {
    {"fr_feature conv1 3x3 s2 3->64 @112", 3, 64, 112, 112, 3, 2, 1, 1},
    {"fr_feature dw3x3 64 @56", 64, 64, 56, 56, 3, 1, 1, 64},
    {"fr_feature 1x1 64->128 @56", 64, 128, 56, 56, 1, 1, 0, 1},
    {"fr_feature dw3x3 s2 128 @56", 128, 128, 56, 56, 3, 2, 1, 128},
    {"fr_feature 1x1 128->64 @28", 128, 64, 28, 28, 1, 1, 0, 1},
    {"fr_feature 1x1 64->128 @28", 64, 128, 28, 28, 1, 1, 0, 1},
    {"fr_feature dw3x3 128 @28", 128, 128, 28, 28, 3, 1, 1, 128},
    {"fr_feature 1x1 256->128 @14", 256, 128, 14, 14, 1, 1, 0, 1},
    {"fr_feature 1x1 128->256 @14", 128, 256, 14, 14, 1, 1, 0, 1},
    {"fr_feature dw3x3 256 @14", 256, 256, 14, 14, 3, 1, 1, 256},
    {"fr_feature 1x1 512->512 @7", 512, 512, 7, 7, 1, 1, 0, 1},
    {"fr_detect 1x1 32->32 @60x80", 32, 32, 60, 80, 1, 1, 0, 1},
    {"fr_detect dw3x3 64 @30x40", 64, 64, 30, 40, 3, 1, 1, 64},
    {"fr_landmark 1x1 64->128 @8", 64, 128, 8, 8, 1, 1, 0, 1},
    {"fr_expression 3x3 128->32 @56", 128, 32, 56, 56, 3, 1, 1, 1},
    {"fr_expression 1x1 256->128 @56", 256, 128, 56, 56, 1, 1, 0, 1},
    {"fr_gender 3x3 32->32 @32", 32, 32, 32, 32, 3, 1, 1, 1},
    {"fr_expression 7x7 s2 3->64 @224", 3, 64, 224, 224, 7, 2, 3, 1},
    {"fr_expression 3x3 128->32 @28", 128, 32, 28, 28, 3, 1, 1, 1},
    {"fr_expression 3x3 128->32 @14", 128, 32, 14, 14, 3, 1, 1, 1},
    {"fr_expression 3x3 128->32 @7", 128, 32, 7, 7, 3, 1, 1, 1},
    {"fr_expression 1x1 480->128 @28", 480, 128, 28, 28, 1, 1, 0, 1},
    {"fr_expression 1x1 768->128 @14", 768, 128, 14, 14, 1, 1, 0, 1},
    {"fr_expression 1x1 1024->512 @14", 1024, 512, 14, 14, 1, 1, 0, 1},
    {"fr_expression 1x1 768->128 @7", 768, 128, 7, 7, 1, 1, 0, 1},
    {"fr_gender 3x3 3->32 @64", 3, 32, 64, 64, 3, 1, 1, 1},
};

/* Thread CPU time: a busy machine preempts long layers, and wall time would measure the other processes. */
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define REPS 101
static double median(double *t) {
    qsort(t, REPS, sizeof *t, cmp_d);
    return t[REPS / 2];
}

static float *rand_buf(size_t n) {
    float *p = fk__malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
    return p;
}

static double time_ours(const layer *l, const float *x, const float *w, const float *b, float *y, int Ho, int Wo) {
    fk__tensor t[4];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 4; i++) t[i].alias_of = t[i].placed_in = -1;
    int64_t xd[4] = {1, l->C, l->H, l->W}, wd[4] = {l->O, l->C / l->group, l->k, l->k}, bd[1] = {l->O},
            yd[4] = {1, l->O, Ho, Wo};
    int64_t *dims[4] = {xd, wd, bd, yd};
    int ranks[4] = {4, 4, 1, 4}, kinds[4] = {FK__T_INPUT, FK__T_CONST, FK__T_CONST, FK__T_ACT};
    const void *datas[4] = {NULL, w, b, NULL};
    for (int i = 0; i < 4; i++) {
        t[i].dtype = FK__DT_F32, t[i].kind = kinds[i], t[i].rank = ranks[i], t[i].data = (void *)datas[i];
        memcpy(t[i].dims, dims[i], sizeof(int64_t) * 4);
    }
    int in[3] = {0, 1, 2}, out[1] = {3};
    fk__node n;
    memset(&n, 0, sizeof n);
    n.op = FK__OP_CONV, n.n_in = 3, n.in = in, n.n_out = 1, n.out = out;
    n.a.layout = FK__NCHW, n.a.kernel[0] = n.a.kernel[1] = l->k, n.a.stride[0] = n.a.stride[1] = l->s;
    n.a.dilation[0] = n.a.dilation[1] = 1, n.a.group = l->group, n.a.act = FK__ACT_RELU, n.a.act_slope = -1;
    for (int i = 0; i < 4; i++) n.a.pads[i] = l->p;
    fk__graph g;
    memset(&g, 0, sizeof g);
    g.t = t, g.nt = 4, g.n = &n, g.nn = 1;
    if (fk__fast_prepare(&g, &n) != FK_OK || !fk__fast_kernel(&n)) return -1;
    void *scratch = fk__malloc(n.scratch_bytes + 64);
    void *data[4] = {(void *)x, (void *)w, (void *)b, y};
    fk__run_ctx cx = {&g, data, scratch, 1, NULL};
    fk__kernel_fn fn = fk__fast_kernel(&n);
    double ts[REPS];
    for (int r = 0; r < 20; r++) fn(&cx, &n);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_us();
        fn(&cx, &n);
        ts[r] = now_us() - t0;
    }
    n.prep_free(n.prep);
    fk__free(scratch);
    return median(ts);
}

#define CK(x)                                                                     \
    do {                                                                          \
        if ((x) != dnnl_success) {                                                \
            fprintf(stderr, "oneDNN call failed: %s (line %d)\n", #x, __LINE__);  \
            return -1;                                                            \
        }                                                                         \
    } while (0)

static double time_dnnl(const layer *l, int blocked, const float *x, const float *w, const float *b, float *y, int Ho,
                        int Wo, const char **impl) {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    int g = l->group;
    dnnl_dims_t xd = {1, l->C, l->H, l->W}, yd = {1, l->O, Ho, Wo}, bd = {l->O};
    dnnl_dims_t wd5 = {g, l->O / g, l->C / g, l->k, l->k}, wd4 = {l->O, l->C, l->k, l->k};
    dnnl_memory_desc_t xm, ym, wm, bm, xa, ya, wa, xuser, yuser, wuser;
    CK(dnnl_memory_desc_init_by_tag(&xuser, 4, xd, dnnl_f32, dnnl_nchw));
    CK(dnnl_memory_desc_init_by_tag(&yuser, 4, yd, dnnl_f32, dnnl_nchw));
    if (g > 1) CK(dnnl_memory_desc_init_by_tag(&wuser, 5, wd5, dnnl_f32, dnnl_goihw));
    else CK(dnnl_memory_desc_init_by_tag(&wuser, 4, wd4, dnnl_f32, dnnl_oihw));
    CK(dnnl_memory_desc_init_by_tag(&bm, 1, bd, dnnl_f32, dnnl_x));
    CK(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, blocked ? dnnl_format_tag_any : dnnl_nchw));
    CK(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, blocked ? dnnl_format_tag_any : dnnl_nchw));
    if (g > 1) CK(dnnl_memory_desc_init_by_tag(&wa, 5, wd5, dnnl_f32, dnnl_format_tag_any));
    else CK(dnnl_memory_desc_init_by_tag(&wa, 4, wd4, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    dnnl_dims_t s = {l->s, l->s}, p = {l->p, l->p};
    CK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &xa, &wa, &bm, &ya, s,
                                          p, p));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    CK(dnnl_primitive_attr_create(&attr));
    CK(dnnl_post_ops_create(&po));
    CK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    CK(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_primitive_desc_t pd;
    CK(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL));
    CK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    xm = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    ym = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    wm = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t mx, my, mw, mb, mwu, mxu;
    CK(dnnl_memory_create(&mxu, &xuser, eng, (void *)x));
    CK(dnnl_memory_create(&mx, &xm, eng, DNNL_MEMORY_ALLOCATE));
    CK(dnnl_memory_create(&my, &ym, eng, blocked ? DNNL_MEMORY_ALLOCATE : y));
    CK(dnnl_memory_create(&mwu, &wuser, eng, (void *)w));
    CK(dnnl_memory_create(&mw, &wm, eng, DNNL_MEMORY_ALLOCATE));
    CK(dnnl_memory_create(&mb, &bm, eng, (void *)b));
    /* weights reordered once (model load); the input too, so the blocked timing is the conv alone */
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t rp;
    CK(dnnl_reorder_primitive_desc_create(&rpd, &wuser, eng, &wm, eng, NULL));
    CK(dnnl_primitive_create(&rp, rpd));
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwu}, {DNNL_ARG_TO, mw}};
    CK(dnnl_primitive_execute(rp, st, 2, ra));
    dnnl_primitive_desc_t rpx;
    dnnl_primitive_t rx;
    CK(dnnl_reorder_primitive_desc_create(&rpx, &xuser, eng, &xm, eng, NULL));
    CK(dnnl_primitive_create(&rx, rpx));
    dnnl_exec_arg_t rxa[2] = {{DNNL_ARG_FROM, mxu}, {DNNL_ARG_TO, mx}};
    CK(dnnl_primitive_execute(rx, st, 2, rxa));
    CK(dnnl_stream_wait(st));
    dnnl_primitive_t conv;
    CK(dnnl_primitive_create(&conv, pd));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, my}};
    double ts[REPS];
    for (int r = 0; r < 20; r++) dnnl_primitive_execute(conv, st, 4, args);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_us();
        dnnl_primitive_execute(conv, st, 4, args);
        dnnl_stream_wait(st);
        ts[r] = now_us() - t0;
    }
    return median(ts);
}

int main(int argc, char **argv) {
    /* "bench_conv ours [name-substring]": only our kernels (for profiling) */
    int ours_only = argc > 1 && !strcmp(argv[1], "ours");
    const char *only = argc > 2 ? argv[2] : NULL;
    fk__cpu_set_ftz();
    printf("%-38s %9s %9s %9s  %s\n", "layer (1 thread, median us)", "facekit", "dnnl-nchw", "dnnl-blk", "dnnl impl (nchw / blocked)");
    double tot[3] = {0, 0, 0};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        if (only && !strstr(l->name, only)) continue;
        int Ho = (l->H + 2 * l->p - l->k) / l->s + 1, Wo = (l->W + 2 * l->p - l->k) / l->s + 1;
        float *x = rand_buf((size_t)l->C * l->H * l->W), *w = rand_buf((size_t)l->O * l->C / l->group * l->k * l->k);
        float *b = rand_buf((size_t)l->O), *y = rand_buf((size_t)l->O * Ho * Wo);
        const char *i1 = "?", *i2 = "?";
        double a = time_ours(l, x, w, b, y, Ho, Wo);
        double d1 = ours_only ? 0 : time_dnnl(l, 0, x, w, b, y, Ho, Wo, &i1);
        double d2 = ours_only ? 0 : time_dnnl(l, 1, x, w, b, y, Ho, Wo, &i2);
        printf("%-38s %9.1f %9.1f %9.1f  %s / %s\n", l->name, a, d1, d2, i1, i2);
        tot[0] += a, tot[1] += d1, tot[2] += d2;
        fk__free(x), fk__free(w), fk__free(b), fk__free(y);
    }
    printf("%-38s %9.1f %9.1f %9.1f\n", "total", tot[0], tot[1], tot[2]);
    return 0;
}
