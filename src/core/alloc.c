/*
 * alloc.c — the one allocator wrapper. Every block carries a 64-byte header holding its size, so that
 * fk_mem_in_use() can count live bytes and every pointer handed out is 64-byte aligned for AVX-512 loads.
 * Out of memory is reported as NULL (callers turn it into FK_ENOMEM), never abort().
 */
#include "core.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FK__ALLOC_HEADER 64

static atomic_size_t g_in_use;   /* statistics only: process-wide by nature */
static atomic_long g_fail_at;    /* test-only fault injection countdown */

void fk__alloc_fail_at(long n) { atomic_store(&g_fail_at, n); }

static int should_fail(void) {
    long n = atomic_load(&g_fail_at);
    if (n <= 0) return 0;
    if (atomic_fetch_sub(&g_fail_at, 1) == 1) return 1;
    return 0;
}

void *fk__malloc(size_t n) {
    if (should_fail() || n > SIZE_MAX - 2 * FK__ALLOC_HEADER) return NULL;
    size_t total = (n + FK__ALLOC_HEADER + 63) & ~(size_t)63;
    unsigned char *base = aligned_alloc(64, total);
    if (!base) return NULL;
    memcpy(base, &n, sizeof n);
    atomic_fetch_add(&g_in_use, n);
    return base + FK__ALLOC_HEADER;
}

void *fk__calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = fk__malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

static size_t block_size(void *p) {
    size_t n;
    memcpy(&n, (unsigned char *)p - FK__ALLOC_HEADER, sizeof n);
    return n;
}

void *fk__realloc(void *p, size_t n) {
    if (!p) return fk__malloc(n);
    size_t old = block_size(p);
    if (n <= old) return p; /* shrinking keeps the block: simpler and always succeeds */
    void *q = fk__malloc(n);
    if (!q) return NULL;
    memcpy(q, p, old);
    fk__free(p);
    return q;
}

void fk__free(void *p) {
    if (!p) return;
    atomic_fetch_sub(&g_in_use, block_size(p));
    free((unsigned char *)p - FK__ALLOC_HEADER);
}

char *fk__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = fk__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void fk_free(void *p) { fk__free(p); }

size_t fk_mem_in_use(void) { return atomic_load(&g_in_use); }
