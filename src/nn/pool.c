/*
 * pool.c — the executor's thread pool and per-thread floating-point mode.
 * Initial version runs serially; the fast-kernel work replaces it with real worker threads.
 */
#include "nn/graph.h"

#include <xmmintrin.h>

struct fk__pool {
    int threads;
};

fk__pool *fk__pool_create(int threads) {
    fk__pool *p = fk__calloc(1, sizeof *p);
    if (p) p->threads = threads < 1 ? 1 : threads;
    return p;
}

void fk__pool_destroy(fk__pool *p) { fk__free(p); }

void fk__pool_for(fk__pool *p, int threads, int n, void (*fn)(void *arg, int i), void *arg) {
    (void)p;
    (void)threads;
    for (int i = 0; i < n; i++) fn(arg, i);
}

unsigned fk__cpu_set_ftz(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}

void fk__cpu_restore(unsigned mxcsr) { _mm_setcsr(mxcsr); }
