/*
 * json.c — installs jansson's allocator once per process. jansson keeps its malloc/free pair in
 * process-global variables, so setting them from several places (the TF.js loader, the engine's manifest,
 * the service) races; here it happens exactly once, and every parse in the library goes through the
 * counting allocator. A thread-local flag tells a caller whether an allocation failed during its parse.
 */
#include "core.h"

#include <jansson.h>
#include <pthread.h>

static pthread_once_t g_json_once = PTHREAD_ONCE_INIT;
static _Thread_local int t_json_alloc_failed;

static void *json_alloc(size_t n) {
    void *p = fk__malloc(n);
    if (!p) t_json_alloc_failed = 1;
    return p;
}

static void json_install(void) { json_set_alloc_funcs(json_alloc, fk__free); }

void fk__json_init(void) {
    pthread_once(&g_json_once, json_install);
    t_json_alloc_failed = 0;
}

int fk__json_alloc_failed(void) { return t_json_alloc_failed; }
