/*
 * fast.c — the executor's fast-kernel dispatch (nn layer). After planning, the executor offers every node
 * to fk__fast_prepare, which packs weights for the ops that have a fast kernel on this CPU (checked once at
 * run time, so one binary serves CPUs with and without AVX-512); fk__fast_kernel then names the kernel, or
 * NULL for the reference kernel in ops_ref.c, which stays the oracle in tests and the fallback everywhere.
 */
#include "nn/fast.h"

int fk__fast_prepare(fk__graph *g, fk__node *n) {
    if (!fk__cpu_avx512() || n->prep) return FK_OK;
    switch (n->op) {
    case FK__OP_CONV: return fk__fast_conv_prepare(g, n);
    case FK__OP_GEMM:
    case FK__OP_MATMUL: return fk__fast_fc_prepare(g, n);
    default: return fk__fast_elt_prepare(g, n);
    }
}

fk__kernel_fn fk__fast_kernel(const fk__node *n) {
    if (!n->prep) return NULL;
    switch (n->op) {
    case FK__OP_CONV: return fk__fast_conv_kernel(n);
    case FK__OP_GEMM:
    case FK__OP_MATMUL: return fk__fast_fc_kernel(n);
    default: return fk__fast_elt_kernel(n);
    }
}
