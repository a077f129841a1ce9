/*
 * faiss_shim.cpp — the one C++ file of facekit: a small extern "C" shim over FAISS (IndexFlatIP,
 * IndexHNSWFlat, IndexIVFFlat with inner product) for the gallery index (index.c) and the search bench.
 * Exceptions never cross into C: each entry point catches them and returns an fk_status.
 */
#include "gallery/faiss_shim.h"

#include <cstring>
#include <vector>

#ifdef FK_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

/* FAISS 1.7 spells its label type faiss::Index::idx_t (later versions: faiss::idx_t); both are int64_t */
typedef faiss::Index::idx_t fidx_t;

struct fk__faiss {
    int dim = 0, kind = 0;
    faiss::IndexFlatIP *quantizer = nullptr; /* IVF coarse quantizer */
    faiss::Index *index = nullptr;
    ~fk__faiss() {
        delete index;
        delete quantizer;
    }
};

/* packs rows STRIDE apart into DIM-wide rows */
static const float *packed(const float *x, size_t n, int stride, int dim, std::vector<float> &buf) {
    if (stride == dim) return x;
    buf.resize(n * (size_t)dim);
    for (size_t i = 0; i < n; i++) std::memcpy(&buf[i * dim], x + i * (size_t)stride, sizeof(float) * dim);
    return buf.data();
}

extern "C" int fk__faiss_available(void) { return 1; }

extern "C" int fk__faiss_create(int dim, int kind, fk__faiss_t **out) {
    *out = nullptr;
    try {
        fk__faiss_t *f = new fk__faiss_t;
        f->dim = dim;
        f->kind = kind;
        if (kind == FK__FAISS_FLAT) {
            f->index = new faiss::IndexFlatIP(dim);
        } else if (kind == FK__FAISS_HNSW) {
            auto *h = new faiss::IndexHNSWFlat(dim, 32, faiss::METRIC_INNER_PRODUCT);
            h->hnsw.efSearch = 128;
            h->hnsw.efConstruction = 80;
            f->index = new faiss::IndexIDMap(h);
            static_cast<faiss::IndexIDMap *>(f->index)->own_fields = true;
        } else {
            f->quantizer = new faiss::IndexFlatIP(dim);
            f->index = nullptr; /* created at training, when the gallery size fixes nlist */
        }
        *out = f;
        return FK_OK;
    } catch (const std::bad_alloc &) {
        return FK_ENOMEM;
    } catch (...) {
        return FK_EINTERNAL;
    }
}

extern "C" void fk__faiss_destroy(fk__faiss_t *f) { delete f; }

extern "C" int fk__faiss_add(fk__faiss_t *f, size_t n, const float *x, int stride, int dim, const int64_t *ids) {
    if (!f || !f->index) return FK_EINVAL;
    try {
        std::vector<float> buf;
        const float *p = packed(x, n, stride, dim, buf);
        if (f->kind == FK__FAISS_FLAT)
            f->index->add((fidx_t)n, p);
        else
            f->index->add_with_ids((fidx_t)n, p, reinterpret_cast<const fidx_t *>(ids));
        return FK_OK;
    } catch (const std::bad_alloc &) {
        return FK_ENOMEM;
    } catch (...) {
        return FK_EINTERNAL;
    }
}

extern "C" int fk__faiss_train_add(fk__faiss_t *f, size_t n, const float *x, int stride, int dim,
                                   const int64_t *ids) {
    if (!f || f->kind != FK__FAISS_IVF) return FK_EINVAL;
    try {
        size_t nlist = 1;
        while (nlist * nlist < n) nlist *= 2; /* about sqrt(n) lists */
        if (nlist > 65536) nlist = 65536;
        if (n < 39 * nlist) nlist = n / 39 > 0 ? n / 39 : 1;
        auto *ivf = new faiss::IndexIVFFlat(f->quantizer, dim, nlist, faiss::METRIC_INNER_PRODUCT);
        ivf->nprobe = nlist < 32 ? nlist : 32;
        f->index = ivf;
        std::vector<float> buf;
        const float *p = packed(x, n, stride, dim, buf);
        if (n) {
            ivf->train((fidx_t)n, p);
            ivf->add_with_ids((fidx_t)n, p, reinterpret_cast<const fidx_t *>(ids));
        }
        return FK_OK;
    } catch (const std::bad_alloc &) {
        return FK_ENOMEM;
    } catch (...) {
        return FK_EINTERNAL;
    }
}

extern "C" int fk__faiss_remove(fk__faiss_t *f, int64_t id) {
    if (!f || !f->index) return FK_EINVAL;
    try {
        faiss::IDSelectorBatch sel(1, reinterpret_cast<const fidx_t *>(&id));
        f->index->remove_ids(sel);
        return FK_OK;
    } catch (...) {
        return FK_EUNSUPPORTED;
    }
}

extern "C" int fk__faiss_search(fk__faiss_t *f, const float *q, int stride, int k, int threads, int64_t *labels,
                                int *got) {
    (void)stride;
    *got = 0;
    if (!f || !f->index) return FK_EINVAL;
    try {
        std::vector<float> d((size_t)k);
        omp_set_num_threads(threads > 0 ? threads : 1);
        f->index->search(1, q, k, d.data(), reinterpret_cast<fidx_t *>(labels));
        int g = 0;
        while (g < k && labels[g] >= 0) g++;
        *got = g;
        return FK_OK;
    } catch (const std::bad_alloc &) {
        return FK_ENOMEM;
    } catch (...) {
        return FK_EINTERNAL;
    }
}

extern "C" int fk_faiss_flat_search(const float *x, size_t n, int dim, const float *q, size_t nq, int k,
                                    int threads, float *d, int64_t *ids) {
    if (!x || !q || !d || !ids || dim < 1 || k < 1) return FK_EINVAL;
    try {
        /* IndexFlatIP copies the vectors; benches build it once per run through fk__faiss_* instead */
        faiss::IndexFlatIP index(dim);
        index.add((fidx_t)n, x);
        omp_set_num_threads(threads > 0 ? threads : 1);
        index.search((fidx_t)nq, q, k, d, reinterpret_cast<fidx_t *>(ids));
        return FK_OK;
    } catch (const std::bad_alloc &) {
        return FK_ENOMEM;
    } catch (...) {
        return FK_EINTERNAL;
    }
}

#else /* no FAISS */

extern "C" int fk__faiss_available(void) { return 0; }
extern "C" int fk__faiss_create(int, int, fk__faiss_t **out) {
    *out = nullptr;
    return FK_EUNSUPPORTED;
}
extern "C" void fk__faiss_destroy(fk__faiss_t *) {}
extern "C" int fk__faiss_add(fk__faiss_t *, size_t, const float *, int, int, const int64_t *) { return FK_EUNSUPPORTED; }
extern "C" int fk__faiss_train_add(fk__faiss_t *, size_t, const float *, int, int, const int64_t *) {
    return FK_EUNSUPPORTED;
}
extern "C" int fk__faiss_remove(fk__faiss_t *, int64_t) { return FK_EUNSUPPORTED; }
extern "C" int fk__faiss_search(fk__faiss_t *, const float *, int, int, int, int64_t *, int *got) {
    *got = 0;
    return FK_EUNSUPPORTED;
}
extern "C" int fk_faiss_flat_search(const float *, size_t, int, const float *, size_t, int, int, float *, int64_t *) {
    return FK_EUNSUPPORTED;
}
#endif
