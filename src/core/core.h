/*
 * core.h — internal foundation shared by every layer: the counting allocator, error-message helpers and
 * small utilities. Nothing here depends on any other facekit folder.
 */
#ifndef FK_CORE_H
#define FK_CORE_H

#include "facekit.h"

#include <stdarg.h>
#include <stddef.h>

/* All library memory goes through these so that fk_mem_in_use() counts it and tests can inject failures.
 * fk__free(NULL) does nothing. Returned memory is aligned to 64 bytes (SIMD kernels rely on it). */
void *fk__malloc(size_t n);
void *fk__calloc(size_t count, size_t size);
void *fk__realloc(void *p, size_t n);
void fk__free(void *p);
char *fk__strdup(const char *s);

/* Fault injection for tests: allocation number N (1-based, counted from the call) fails; 0 disables.
 * Process-wide and only meant for single-threaded tests. */
void fk__alloc_fail_at(long n);

/* snprintf into a fixed error buffer; always NUL-terminates; BUF may be NULL. */
void fk__seterr(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* jansson's allocator is process-global: call this before any json_* use. It installs the counting
 * allocator once (thread-safe) and clears this thread's allocation-failure flag, which
 * fk__json_alloc_failed() reports afterwards (a parse that lost an allocation may drop members). */
void fk__json_init(void);
int fk__json_alloc_failed(void);

#define FK__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
