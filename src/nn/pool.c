/*
 * pool.c — the executor's thread pool and per-thread floating-point mode (nn layer). A pool belongs to one
 * session (one session per calling thread), so pools never share state and the engine stays safe to call
 * from many threads at once. fk__pool_create(T) starts T-1 workers that set FTZ/DAZ once and then sleep; a
 * parallel loop wakes them, hands out indices through an atomic counter (the calling thread takes part) and
 * returns when every index is done. The thread count is a per-call setting: a call may use fewer threads
 * than the pool has, and the extra workers stay asleep.
 *
 * Workers spin briefly before sleeping because an inference issues one parallel loop per layer, microseconds
 * apart; a condition-variable wake-up per layer would cost more than small layers take.
 */
#include "nn/graph.h"

#include <pthread.h>
#include <stdatomic.h>
#include <xmmintrin.h>

#define SPIN_ROUNDS 20000

struct fk__pool {
    int threads; /* including the caller */
    pthread_t *tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    atomic_uint gen;   /* bumped for every loop (and for shutdown) */
    atomic_int next;   /* next index to run */
    atomic_int done;   /* indices finished */
    atomic_int active; /* workers still inside the current loop */
    int stop;
    int n, use;        /* current loop: indices, workers taking part (excluding the caller) */
    void (*fn)(void *arg, int i);
    void *arg;
    struct worker_arg { struct fk__pool *p; int id; } *wa;
};

static void run_indices(fk__pool *p) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        p->fn(p->arg, i);
        atomic_fetch_add(&p->done, 1);
    }
}

static void *worker_main(void *argp) {
    struct worker_arg *wa = argp;
    fk__pool *p = wa->p;
    fk__cpu_set_ftz();
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && spins < SPIN_ROUNDS) {
            spins++;
            _mm_pause();
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stop) break;
        if (wa->id < p->use) run_indices(p);
        if (atomic_fetch_sub(&p->active, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

fk__pool *fk__pool_create(int threads) {
    fk__pool *p = fk__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads < 1 ? 1 : threads;
    if (p->threads == 1) return p;
    p->tid = fk__calloc((size_t)p->threads - 1, sizeof *p->tid);
    p->wa = fk__calloc((size_t)p->threads - 1, sizeof *p->wa);
    if (!p->tid || !p->wa || pthread_mutex_init(&p->mu, NULL)) goto fail_mem;
    if (pthread_cond_init(&p->wake, NULL)) goto fail_mu;
    if (pthread_cond_init(&p->done_cv, NULL)) goto fail_wake;
    for (int i = 0; i < p->threads - 1; i++) {
        p->wa[i].p = p;
        p->wa[i].id = i;
        if (pthread_create(&p->tid[i], NULL, worker_main, &p->wa[i])) break;
        p->started++;
    }
    if (p->started == 0) { /* no threads available: a serial pool is still a valid pool */
        pthread_cond_destroy(&p->done_cv);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        fk__free(p->tid);
        fk__free(p->wa);
        p->tid = NULL;
        p->wa = NULL;
    }
    p->threads = p->started + 1;
    return p;
fail_wake:
    pthread_cond_destroy(&p->wake);
fail_mu:
    pthread_mutex_destroy(&p->mu);
fail_mem:
    fk__free(p->tid);
    fk__free(p->wa);
    fk__free(p);
    return NULL;
}

void fk__pool_destroy(fk__pool *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        atomic_store(&p->active, p->started);
        atomic_fetch_add(&p->gen, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++) pthread_join(p->tid[i], NULL);
        pthread_cond_destroy(&p->done_cv);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
    }
    fk__free(p->tid);
    fk__free(p->wa);
    fk__free(p);
}

void fk__pool_for(fk__pool *p, int threads, int n, void (*fn)(void *arg, int i), void *arg) {
    if (n <= 0) return;
    int use = threads;
    if (!p || use > p->threads) use = p ? p->threads : 1;
    if (use > n) use = n;
    if (use <= 1) {
        for (int i = 0; i < n; i++) fn(arg, i);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->use = use - 1;
    atomic_store(&p->next, 0);
    atomic_store(&p->done, 0);
    atomic_store(&p->active, p->started);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_indices(p);
    /* Every worker (also those not taking part) acknowledges the loop before the next one may start, so a
     * late worker never reads the next loop's fields half-written. */
    int spins = 0;
    while (atomic_load(&p->active) > 0 && spins < SPIN_ROUNDS) {
        spins++;
        _mm_pause();
    }
    if (atomic_load(&p->active) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->active) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

unsigned fk__cpu_set_ftz(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}

void fk__cpu_restore(unsigned mxcsr) { _mm_setcsr(mxcsr); }
