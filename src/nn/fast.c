/*
 * fast.c — dispatch to fast kernels. Initial version: no fast path yet, every node runs its reference
 * kernel. The fast-kernel work (convolution, depthwise, GEMM; oneDNN or our own AVX2/AVX-512) replaces this.
 */
#include "nn/graph.h"

int fk__fast_prepare(fk__graph *g, fk__node *n) {
    (void)g;
    (void)n;
    return FK_OK;
}

fk__kernel_fn fk__fast_kernel(const fk__node *n) {
    (void)n;
    return NULL;
}
