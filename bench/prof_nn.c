/*
 * prof_nn.c — per-node profile of one model on the executor's kernels (bench tool, not a test): loads and
 * prepares the model the way the library does (internal graph API), runs it RUNS times on one thread and
 * prints, per op type and for the slowest nodes, the median thread CPU time with the fast or the reference
 * kernel.
 * Usage: prof_nn MODEL [RUNS] [TOP] [fast] — TOP slowest nodes listed (12), "fast" skips the reference
 * kernels (slow on the big models). Convolutions also show their GFLOP/s. What it shows decides which kernel to optimise next (docs/performance.md).
 */
#include "nn/fast.h"
#include "nn/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Thread CPU time, not wall time: on a busy machine a long node is preempted and its wall time says more
 * about the other processes than about the kernel. */
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: prof_nn MODEL [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 30, top = argc > 3 ? atoi(argv[3]) : 12;
    int modes = argc > 4 && !strcmp(argv[4], "fast") ? 1 : 2;
    const char *path = argv[1];
    size_t len = strlen(path);
    int onnx = len > 5 && !strcmp(path + len - 5, ".onnx");
    fk__graph g;
    if (fk__graph_init(&g, path, onnx ? "onnx" : "tfjs") || (onnx ? fk__onnx_load(&g, path) : fk__tfjs_load(&g, path)) ||
        fk__graph_prepare(&g, NULL)) {
        fprintf(stderr, "prof_nn: %s\n", g.err);
        return 1;
    }
    unsigned char *arena = fk__malloc(g.arena_bytes + 64), *scratch = fk__malloc(g.scratch_bytes + 64);
    void **data = calloc((size_t)g.nt, sizeof *data);
    for (int i = 0; i < g.nt; i++) {
        int r = i;
        while (g.t[r].alias_of >= 0 && g.t[r].alias_of != r) r = g.t[r].alias_of;
        if (g.t[i].kind == FK__T_CONST) data[i] = g.t[i].data;
        else if (g.t[r].kind == FK__T_INPUT) {
            if (!data[r]) {
                size_t n = (size_t)fk__tensor_numel(&g.t[r]);
                float *in = malloc(n * sizeof(float) + 64);
                for (size_t k = 0; k < n; k++) in[k] = (float)((k * 2654435761u) % 2001) / 1000.0f - 1.0f;
                data[r] = in;
            }
            data[i] = data[r];
        } else data[i] = arena + g.t[r].offset;
    }
    fk__run_ctx cx = {&g, data, scratch, 1, NULL};
    double *t = calloc((size_t)g.nn * 2 * runs, sizeof(double));
    fk__cpu_set_ftz();
    for (int mode = 0; mode < modes; mode++) /* 0 fast, 1 reference */
        for (int r = -2; r < runs; r++)
            for (int i = 0; i < g.nn; i++) {
                if (g.n[i].noop) continue; /* as the executor: a Concat done in place */
                fk__kernel_fn fn = mode ? NULL : fk__fast_kernel(&g.n[i]);
                if (!fn) fn = fk__ref_kernel(g.n[i].op);
                double t0 = now_us();
                fn(&cx, &g.n[i]);
                if (r >= 0) t[((size_t)mode * g.nn + i) * runs + r] = now_us() - t0;
            }
    double op_fast[FK__OP_COUNT] = {0}, op_ref[FK__OP_COUNT] = {0}, tot[2] = {0, 0};
    int op_n[FK__OP_COUNT] = {0};
    double *med = calloc((size_t)g.nn * 2, sizeof(double));
    for (int mode = 0; mode < modes; mode++)
        for (int i = 0; i < g.nn; i++) {
            double *a = t + ((size_t)mode * g.nn + i) * runs;
            qsort(a, (size_t)runs, sizeof *a, cmp_d);
            med[mode * g.nn + i] = a[runs / 2];
            tot[mode] += a[runs / 2];
            if (mode) op_ref[g.n[i].op] += a[runs / 2];
            else op_fast[g.n[i].op] += a[runs / 2], op_n[g.n[i].op]++;
        }
    printf("%s: sum of node medians: fast %.1f us, reference %.1f us\n", path, tot[0], tot[1]);
    printf("%-20s %5s %10s %10s\n", "op", "nodes", "fast_us", "ref_us");
    for (int o = 0; o < FK__OP_COUNT; o++)
        if (op_n[o]) printf("%-20s %5d %10.1f %10.1f\n", fk__op_name(o), op_n[o], op_fast[o], op_ref[o]);
    printf("slowest nodes (fast):\n");
    for (int k = 0; k < top; k++) {
        int best = -1;
        for (int i = 0; i < g.nn; i++)
            if (med[i] >= 0 && (best < 0 || med[i] > med[best])) best = i;
        if (best < 0) break;
        const fk__node *n = &g.n[best];
        const fk__tensor *x = &g.t[n->in[0]], *y = &g.t[n->out[0]];
        printf("  %8.1f us  %-14s %-30.30s in", med[best], fk__op_name(n->op), n->name);
        for (int d = 0; d < x->rank; d++) printf("%s%lld", d ? "x" : " ", (long long)x->dims[d]);
        printf(" out");
        for (int d = 0; d < y->rank; d++) printf("%s%lld", d ? "x" : " ", (long long)y->dims[d]);
        if (n->op == FK__OP_CONV)
        {
            double macs = (double)fk__tensor_numel(y) * (double)(x->rank != 4 ? 1 : n->a.layout == FK__NHWC ? x->dims[3] : x->dims[1]) / n->a.group *
                          n->a.kernel[0] * n->a.kernel[1];
            int lay = fk__blocked_conv_layout(n);
            printf(" k%dx%d s%d g%d act%d%s %.0f GFLOP/s%s%s%s%s", n->a.kernel[0], n->a.kernel[1], n->a.stride[0],
                   n->a.group, n->a.act, fk__fast_kernel(n) ? "" : " REF", 2 * macs / (med[best] * 1e3),
                   fk__blocked_conv_kernel(n) ? " blocked" : "", lay & 1 ? " out-blk" : "", lay & 2 ? " in-blk" : "",
                   lay & 4 ? " in-part-blk" : "");
        }
        if (n->op == FK__OP_MAX_POOL || n->op == FK__OP_AVG_POOL)
            printf(" k%dx%d s%d pads %d,%d,%d,%d%s", n->a.kernel[0], n->a.kernel[1], n->a.stride[0], n->a.pads[0],
                   n->a.pads[1], n->a.pads[2], n->a.pads[3], fk__fast_kernel(n) ? "" : " REF");
        printf("\n");
        med[best] = -1;
    }
    fk__free(arena);
    fk__free(scratch);
    fk__graph_free(&g);
    return 0;
}
