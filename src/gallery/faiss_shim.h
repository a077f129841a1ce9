/*
 * faiss_shim.h — the C side of faiss_shim.cpp: the few FAISS operations the gallery uses, behind plain C
 * functions (Debian's libfaiss-dev ships the C++ library and the C API headers but not the C API's code).
 * Every function catches C++ exceptions and turns them into fk_status codes. Without FAISS at build time
 * (FK_HAVE_FAISS undefined) they return FK_EUNSUPPORTED. FAISS allocates with its own allocator.
 */
#ifndef FK_GALLERY_FAISS_SHIM_H
#define FK_GALLERY_FAISS_SHIM_H

#include "facekit.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fk__faiss fk__faiss_t;
enum { FK__FAISS_FLAT = 0, FK__FAISS_HNSW = 1, FK__FAISS_IVF = 2 };

int fk__faiss_available(void);
int fk__faiss_create(int dim, int kind, fk__faiss_t **out);
void fk__faiss_destroy(fk__faiss_t *f);
/* N vectors of DIM values, rows STRIDE floats apart, labelled IDS */
int fk__faiss_add(fk__faiss_t *f, size_t n, const float *x, int stride, int dim, const int64_t *ids);
/* IVF: trains on the N vectors, then adds them */
int fk__faiss_train_add(fk__faiss_t *f, size_t n, const float *x, int stride, int dim, const int64_t *ids);
int fk__faiss_remove(fk__faiss_t *f, int64_t id);
/* top-K labels for one query (STRIDE ignored beyond DIM); *GOT receives how many are valid */
int fk__faiss_search(fk__faiss_t *f, const float *q, int stride, int k, int threads, int64_t *labels, int *got);

#ifdef __cplusplus
}
#endif
#endif
