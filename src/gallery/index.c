/*
 * index.c — the in-memory template index behind 1:N search (src/gallery). Templates live in one padded
 * fp32 matrix plus an int8 copy (per-template scale) for the coarse pass over large galleries; ids sit in
 * parallel arrays with a hash from face id to slot, so that removal is O(1) (the last slot moves into the
 * hole). One writer, many readers through a pthread read-write lock. Optionally FAISS (faiss_shim.cpp)
 * proposes candidates instead of the scan; the final scores are always our exact fp32 dot products.
 */
#include "core/core.h"
#include "gallery/faiss_shim.h"
#include "gallery/scan.h"
#include "gallery/sketch.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct fk_index {
    int dim, dp; /* dimension, padded to FK__SCAN_PAD */
    fk_index_kind_t kind;
    int threads, rerank;
    size_t parallel_min, coarse_min;
    pthread_rwlock_t lock;
    size_t n, cap;
    float *vec;     /* cap x dp, normalised, zero padded */
    int bits;       /* coarse codes: 8 (int8) or 4 (nibbles centred on 8) */
    size_t cb;      /* code bytes per template: dp or dp / 2 */
    uint8_t *code;  /* cap x cb */
    float *scale;   /* per slot: value = code * scale (int4: (nibble - 8) * scale) */
    int32_t *csum;  /* per slot: sum of the int8 codes (VNNI correction) */
    int sbits;          /* 1-bit sketch (sketch.c): bits per template, a power of two >= dp */
    size_t sbytes;      /* sbits / 8 */
    size_t sketch_min;  /* the sketch pass runs from this many templates on */
    uint8_t *sk, *skm;  /* cap x sbytes: sign and magnitude planes, kept up to date at every size (the gallery
                           may grow past the mark) */
    float *sinv, *spop, *sinv2; /* per slot: 1 / sum |x'_i|, set bits of the sign plane, 2-bit factor */
    fk__sketch_dots_fn skd;
    fk__sketch_refine_fn skr;
    fk__sketch_scan_fn sks;
    const char *sklevel;
    int64_t *face, *person, *group;
    int64_t *hkeys; /* open addressing: face id -> slot; key INT64_MIN = empty, INT64_MIN + 1 = deleted */
    uint32_t *hval;
    size_t hcap, hused;
    fk__dots_f32_fn f32;
    fk__dots_i8_fn i8;
    fk__dots_i4_fn i4;
    const char *level;
    fk__faiss_t *faiss; /* FAISS kinds: labels are face ids; removed ones are filtered through the hash */
    size_t faiss_dead;
    int faiss_trained;
};

/* from this many templates on, a search starts with the 1-bit sketch pass; below, the coarse scan of every
 * template is as fast or faster (its codes fit in the cache). Measured 1 thread, 512-d, same process
 * (CPU us, coarse scan vs sketch): 20k 162 vs 243, 30k 242 vs 285, 40k ~350-420 both, 50k 496 vs 389,
 * 100k 1419 vs 1160, 1M ~19000 vs ~12000. */
#define SKETCH_MIN 50000

#define H_EMPTY INT64_MIN
#define H_DEAD (INT64_MIN + 1)

static size_t hslot(int64_t key, size_t cap) {
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static int hgrow(fk_index_t *ix, size_t want) {
    size_t cap = ix->hcap ? ix->hcap : 1024;
    while (cap < want * 2) cap *= 2;
    if (cap == ix->hcap && ix->hused < cap / 2) return FK_OK;
    int64_t *k = fk__malloc(cap * sizeof *k);
    uint32_t *v = fk__malloc(cap * sizeof *v);
    if (!k || !v) {
        fk__free(k);
        fk__free(v);
        return FK_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++) k[i] = H_EMPTY;
    for (size_t i = 0; i < ix->n; i++) {
        size_t s = hslot(ix->face[i], cap);
        while (k[s] != H_EMPTY) s = (s + 1) & (cap - 1);
        k[s] = ix->face[i];
        v[s] = (uint32_t)i;
    }
    fk__free(ix->hkeys);
    fk__free(ix->hval);
    ix->hkeys = k;
    ix->hval = v;
    ix->hcap = cap;
    ix->hused = ix->n;
    return FK_OK;
}

/* position in the table of KEY, or of the empty cell where it would go */
static size_t hfind(const fk_index_t *ix, int64_t key, int *found) {
    size_t s = hslot(key, ix->hcap);
    while (ix->hkeys[s] != H_EMPTY) {
        if (ix->hkeys[s] == key) {
            *found = 1;
            return s;
        }
        s = (s + 1) & (ix->hcap - 1);
    }
    *found = 0;
    return s;
}

static int hget(const fk_index_t *ix, int64_t key, size_t *slot) {
    if (!ix->hcap) return 0;
    int f;
    size_t s = hfind(ix, key, &f);
    if (f) *slot = ix->hval[s];
    return f;
}

int fk_index_create(int dim, const fk_index_options_t *opt, fk_index_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (dim < 1 || dim > 4096) return FK_EINVAL;
    fk_index_options_t o = {0};
    if (opt) o = *opt;
    if (o.kind != FK_INDEX_EXACT && o.kind != FK_INDEX_FAISS_HNSW && o.kind != FK_INDEX_FAISS_IVF) return FK_EINVAL;
    if (o.kind != FK_INDEX_EXACT && !fk__faiss_available()) return FK_EUNSUPPORTED;
    fk_index_t *ix = fk__calloc(1, sizeof *ix);
    if (!ix) return FK_ENOMEM;
    ix->dim = dim;
    ix->dp = (dim + FK__SCAN_PAD - 1) / FK__SCAN_PAD * FK__SCAN_PAD;
    ix->kind = o.kind;
    ix->threads = o.threads > 0 ? (o.threads > 64 ? 64 : o.threads) : 1;
    ix->parallel_min = o.parallel_min ? o.parallel_min : 65536;
    ix->coarse_min = o.coarse_min ? o.coarse_min : 2048;
    ix->rerank = o.rerank > 0 ? o.rerank : 64;
    ix->f32 = fk__dots_f32_select(o.kernels, &ix->level);
    ix->i8 = fk__dots_i8_select(o.kernels, NULL);
    ix->i4 = fk__dots_i4_select(o.kernels, NULL);
    ix->skd = fk__sketch_dots_select(o.kernels, &ix->sklevel);
    ix->skr = fk__sketch_refine_select(o.kernels, NULL);
    ix->sks = fk__sketch_scan_select(o.kernels, NULL);
    ix->sbits = fk__sketch_bits(ix->dp);
    ix->sbytes = (size_t)ix->sbits / 8;
    ix->sketch_min = SKETCH_MIN;
    if (o.coarse_bits != 0 && o.coarse_bits != 4 && o.coarse_bits != 8) {
        fk__free(ix);
        return FK_EINVAL;
    }
    ix->bits = o.coarse_bits ? o.coarse_bits : 4;
    ix->cb = ix->bits == 4 ? (size_t)ix->dp / 2 : (size_t)ix->dp;
    if (pthread_rwlock_init(&ix->lock, NULL) != 0) {
        fk__free(ix);
        return FK_ENOMEM;
    }
    if (o.kind != FK_INDEX_EXACT) {
        int rc = fk__faiss_create(dim, o.kind == FK_INDEX_FAISS_HNSW ? FK__FAISS_HNSW : FK__FAISS_IVF, &ix->faiss);
        if (rc) {
            fk_index_destroy(ix);
            return rc;
        }
    }
    *out = ix;
    return FK_OK;
}

void fk_index_destroy(fk_index_t *ix) {
    if (!ix) return;
    pthread_rwlock_destroy(&ix->lock);
    fk__faiss_destroy(ix->faiss);
    fk__free(ix->vec);
    fk__free(ix->code);
    fk__free(ix->scale);
    fk__free(ix->csum);
    fk__free(ix->sk);
    fk__free(ix->skm);
    fk__free(ix->sinv);
    fk__free(ix->spop);
    fk__free(ix->sinv2);
    fk__free(ix->face);
    fk__free(ix->person);
    fk__free(ix->group);
    fk__free(ix->hkeys);
    fk__free(ix->hval);
    fk__free(ix);
}

size_t fk_index_size(fk_index_t *ix) {
    if (!ix) return 0;
    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->n;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

const char *fk_index_kernels(const fk_index_t *ix) { return ix ? ix->level : ""; }

/* fk__realloc, asking the kernel for 2 MB pages on large arrays before the copy touches them: the
 * later stages of a search over a big gallery read scattered templates, and with 4 KB pages every one
 * of them also costs a TLB miss and page walk */
static void *grow(void *old, size_t had, size_t want) {
    unsigned char *p = fk__malloc(want);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (want >= 2 * huge) {
        uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + want) & ~(huge - 1);
        if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* a hint: refused, it only costs speed */
    }
#endif
    if (old) memcpy(p, old, had);
    fk__free(old);
    return p;
}

#define GROW(field, T, per)                                                                          \
    do {                                                                                             \
        T *p_ = grow(ix->field, ix->cap * (size_t)(per) * sizeof(T), cap * (size_t)(per) * sizeof(T)); \
        if (!p_) return FK_ENOMEM;                                                                   \
        ix->field = p_;                                                                              \
    } while (0)

static int reserve(fk_index_t *ix, size_t want) {
    if (want <= ix->cap) return FK_OK;
    size_t cap = ix->cap ? ix->cap : 256;
    while (cap < want) cap *= 2;
    if (cap > UINT32_MAX) return FK_ELIMIT;
    GROW(vec, float, ix->dp);
    GROW(code, uint8_t, ix->cb);
    GROW(scale, float, 1);
    GROW(csum, int32_t, 1);
    GROW(sk, uint8_t, ix->sbytes);
    GROW(skm, uint8_t, ix->sbytes);
    GROW(sinv, float, 1);
    GROW(spop, float, 1);
    GROW(sinv2, float, 1);
    GROW(face, int64_t, 1);
    GROW(person, int64_t, 1);
    GROW(group, int64_t, 1);
    ix->cap = cap;
    return FK_OK;
}

/* normalised, padded copy of V into DST; 0 when V has no direction */
static int normalise(const float *v, int dim, int dp, float *dst) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += (double)v[j] * v[j];
    if (!(s > 0) || !isfinite(s)) return -1;
    float inv = (float)(1.0 / sqrt(s));
    for (int j = 0; j < dim; j++) dst[j] = v[j] * inv;
    for (int j = dim; j < dp; j++) dst[j] = 0;
    return 0;
}

/* 4-bit: value = (nibble - 8) * scale, the largest magnitude mapped to 7 */
static float quantise4(const float *v, int dp, uint8_t *c) {
    float m = 0;
    for (int j = 0; j < dp; j++) m = fmaxf(m, fabsf(v[j]));
    float s = m > 0 ? m / 7.0f : 1.0f, inv = 1.0f / s;
    for (int g = 0; g < dp / 128; g++)
        for (int b = 0; b < 64; b++) {
            long lo = lrintf(v[g * 128 + b] * inv) + 8, hi = lrintf(v[g * 128 + 64 + b] * inv) + 8;
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            c[g * 64 + b] = (uint8_t)(lo | hi << 4);
        }
    return s;
}

static float quantise(const float *v, int dp, int8_t *c, int32_t *sum) {
    float m = 0;
    for (int j = 0; j < dp; j++) m = fmaxf(m, fabsf(v[j]));
    float s = m > 0 ? m / 127.0f : 1.0f, inv = 1.0f / s;
    int32_t t = 0;
    for (int j = 0; j < dp; j++) {
        long r = lrintf(v[j] * inv);
        c[j] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        t += c[j];
    }
    if (sum) *sum = t;
    return s;
}

int fk_index_add(fk_index_t *ix, size_t n, const int64_t *face_ids, const int64_t *person_ids,
                 const int64_t *group_ids, const float *v) {
    if (!ix || (n && (!face_ids || !person_ids || !v))) return FK_EINVAL;
    float *work = fk__malloc((size_t)ix->sbits * sizeof(float));
    if (!work) return FK_ENOMEM;
    pthread_rwlock_wrlock(&ix->lock);
    int rc = reserve(ix, ix->n + n);
    if (!rc) rc = hgrow(ix, ix->hused + n + 1);
    size_t base = ix->n;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t s = base + i;
        float *dst = ix->vec + s * (size_t)ix->dp;
        int f;
        size_t h = face_ids[i] > H_DEAD ? hfind(ix, face_ids[i], &f) : (f = 1, 0);
        if (f || normalise(v + i * (size_t)ix->dim, ix->dim, ix->dp, dst)) {
            rc = FK_EINVAL; /* duplicate face id or a template without direction */
            break;
        }
        if (ix->bits == 4)
            ix->scale[s] = quantise4(dst, ix->dp, ix->code + s * ix->cb);
        else
            ix->scale[s] = quantise(dst, ix->dp, (int8_t *)(ix->code + s * ix->cb), &ix->csum[s]);
        fk__sketch_encode(dst, ix->dp, ix->sbits, work, ix->sk + s * ix->sbytes, &ix->sinv[s], &ix->spop[s],
                          ix->skm + s * ix->sbytes, &ix->sinv2[s]);
        ix->face[s] = face_ids[i];
        ix->person[s] = person_ids[i];
        ix->group[s] = group_ids ? group_ids[i] : 0;
        ix->hkeys[h] = face_ids[i];
        ix->hval[h] = (uint32_t)s;
        ix->hused++;
        ix->n = s + 1;
    }
    if (!rc && ix->faiss && (ix->kind == FK_INDEX_FAISS_HNSW || ix->faiss_trained))
        rc = fk__faiss_add(ix->faiss, n, ix->vec + base * (size_t)ix->dp, ix->dp, ix->dim, face_ids);
    if (rc) { /* all or nothing */
        for (size_t s = base; s < ix->n; s++) {
            int f;
            size_t h = hfind(ix, ix->face[s], &f);
            if (f) ix->hkeys[h] = H_DEAD;
        }
        if (ix->n > base) memset(ix->vec + base * (size_t)ix->dp, 0, (ix->n - base) * (size_t)ix->dp * sizeof(float));
        ix->n = base;
    }
    pthread_rwlock_unlock(&ix->lock);
    fk__free(work);
    return rc;
}

/* under the write lock: moves the last slot into S */
static void remove_slot(fk_index_t *ix, size_t s) {
    int f;
    size_t h = hfind(ix, ix->face[s], &f);
    if (f) ix->hkeys[h] = H_DEAD;
    if (ix->faiss) {
        if (ix->kind == FK_INDEX_FAISS_IVF && ix->faiss_trained)
            fk__faiss_remove(ix->faiss, ix->face[s]);
        else
            ix->faiss_dead++;
    }
    size_t last = ix->n - 1;
    if (s != last) {
        memcpy(ix->vec + s * (size_t)ix->dp, ix->vec + last * (size_t)ix->dp, (size_t)ix->dp * sizeof(float));
        memcpy(ix->code + s * ix->cb, ix->code + last * ix->cb, ix->cb);
        ix->scale[s] = ix->scale[last];
        ix->csum[s] = ix->csum[last];
        memcpy(ix->sk + s * ix->sbytes, ix->sk + last * ix->sbytes, ix->sbytes);
        memcpy(ix->skm + s * ix->sbytes, ix->skm + last * ix->sbytes, ix->sbytes);
        ix->sinv[s] = ix->sinv[last];
        ix->spop[s] = ix->spop[last];
        ix->sinv2[s] = ix->sinv2[last];
        ix->face[s] = ix->face[last];
        ix->person[s] = ix->person[last];
        ix->group[s] = ix->group[last];
        h = hfind(ix, ix->face[s], &f);
        if (f) ix->hval[h] = (uint32_t)s;
    }
    /* the template's bytes do not linger in the freed slot */
    memset(ix->vec + last * (size_t)ix->dp, 0, (size_t)ix->dp * sizeof(float));
    memset(ix->code + last * ix->cb, 0, ix->cb);
    memset(ix->sk + last * ix->sbytes, 0, ix->sbytes);
    memset(ix->skm + last * ix->sbytes, 0, ix->sbytes);
    ix->n = last;
}

int fk_index_remove_face(fk_index_t *ix, int64_t face_id, size_t *removed) {
    if (removed) *removed = 0;
    if (!ix) return FK_EINVAL;
    pthread_rwlock_wrlock(&ix->lock);
    size_t s;
    int f = hget(ix, face_id, &s);
    if (f) remove_slot(ix, s);
    pthread_rwlock_unlock(&ix->lock);
    if (removed) *removed = (size_t)f;
    return f ? FK_OK : FK_ENOTFOUND;
}

int fk_index_remove_person(fk_index_t *ix, int64_t person_id, size_t *removed) {
    if (removed) *removed = 0;
    if (!ix) return FK_EINVAL;
    pthread_rwlock_wrlock(&ix->lock);
    size_t cnt = 0;
    for (size_t s = ix->n; s-- > 0;)
        if (ix->person[s] == person_id) {
            remove_slot(ix, s);
            cnt++;
        }
    pthread_rwlock_unlock(&ix->lock);
    if (removed) *removed = cnt;
    return FK_OK;
}

/* ---- search ---- */

typedef struct {
    float s;
    uint32_t slot;
} cand_t;

/* min-heap of the C best candidates */
typedef struct {
    cand_t *a;
    int n, cap;
} heap_t;

/* puts (S, SLOT) at I, where S is not below the old score there, and restores the heap below I */
static void heap_sift_down(heap_t *h, int i, float s, uint32_t slot) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        float ms = s;
        if (l < h->n && h->a[l].s < ms) m = l, ms = h->a[l].s;
        if (r < h->n && h->a[r].s < ms) m = r;
        if (m == i) break;
        h->a[i] = h->a[m];
        i = m;
    }
    h->a[i].s = s;
    h->a[i].slot = slot;
}

static void heap_push(heap_t *h, float s, uint32_t slot) {
    if (h->n < h->cap) {
        int i = h->n++;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (h->a[p].s <= s) break;
            h->a[i] = h->a[p];
            i = p;
        }
        h->a[i].s = s;
        h->a[i].slot = slot;
        return;
    }
    if (s > h->a[0].s) heap_sift_down(h, 0, s, slot);
}

/* the k best with at most one entry per person (FK_SEARCH_DISTINCT): a person already held keeps the
 * better of the two scores. O(k) per call; used for the k-th best score of the sketch stages only. */
static void heap_push_person(heap_t *h, float s, uint32_t slot, const int64_t *person) {
    for (int i = 0; i < h->n; i++) {
        if (person[h->a[i].slot] != person[slot]) continue;
        if (s > h->a[i].s) heap_sift_down(h, i, s, slot); /* raised: it can only sink in a min-heap */
        return;
    }
    heap_push(h, s, slot);
}

#define BLOCK 512

typedef struct {
    const fk_index_t *ix;
    size_t lo, hi;
    int coarse;
    int64_t group;
    const float *q;
    const int8_t *q8;
    const uint8_t *qu8;
    float qscale;
    int32_t qsum8; /* 8 * sum(q8): the int4 codes' centre */
    heap_t heap;
    /* sketch pass */
    const uint64_t *planes;
    fk__sketch_query_t sq;
    int k, rc, distinct;
    size_t evals, refined; /* coarse scores and 2-bit estimates computed */
} part_t;

static void *scan_part(void *arg) {
    part_t *p = arg;
    const fk_index_t *ix = p->ix;
    float fs[BLOCK];
    int32_t is[BLOCK];
    for (size_t b = p->lo; b < p->hi; b += BLOCK) {
        size_t m = p->hi - b < BLOCK ? p->hi - b : BLOCK;
        if (p->coarse && ix->bits == 4) {
            ix->i4(p->q8, ix->code + b * ix->cb, m, ix->dp, is);
            for (size_t i = 0; i < m; i++) fs[i] = (float)(is[i] - p->qsum8) * ix->scale[b + i];
        } else if (p->coarse) {
            ix->i8(p->q8, p->qu8, (const int8_t *)(ix->code + b * ix->cb), ix->csum + b, m, ix->dp, is);
            for (size_t i = 0; i < m; i++) fs[i] = (float)is[i] * ix->scale[b + i];
        } else {
            ix->f32(p->q, ix->vec + b * (size_t)ix->dp, m, ix->dp, fs);
        }
        if (p->group > 0) {
            for (size_t i = 0; i < m; i++)
                if (ix->group[b + i] == p->group) heap_push(&p->heap, fs[i], (uint32_t)(b + i));
        } else {
            for (size_t i = 0; i < m; i++) heap_push(&p->heap, fs[i], (uint32_t)(b + i));
        }
    }
    return NULL;
}

/* ---- four stages for large galleries: 1-bit sketch, 2-bit sketch, coarse code, fp32 ----
 *
 * One pass over the sign planes (64 bytes per 512-d template) in blocks; within each block, while its
 * sign rows are still in cache:
 * 1. the 1-bit estimate of every template (sketch.c);
 * 2. for those whose estimate exceeds L - margin1, the 2-bit estimate (their magnitude rows: one cache
 *    line each, prefetched together);
 * 3. for those whose 2-bit estimate exceeds L - margin2, the coarse (4-bit) score;
 * where L is the k-th best coarse score so far (-inf until k are known), so it only rises. margin =
 * SKETCH_Z standard deviations of (that estimate's error - the coarse error of the k-th best): a template
 * truly at least as good as the k-th best is dropped only if one of its estimates is more than SKETCH_Z
 * sigma too low (about 3e-5 each for z = 4 with Gaussian errors). For an unrelated query over 1M random
 * 512-d templates (best cosine ~0.22, spread 0.044) stage 2 sees ~8 - 16 % and stage 3 ~0.3 - 0.6 %
 * (measured); once a genuine match (cosine 0.5 - 0.8) is found almost nothing passes stage 1.
 * 4. The candidates whose coarse score could still be the k-th best (coarse margin) get the exact fp32
 *    score, as in the plain coarse scan. */
#define SKETCH_Z 4.0f
#define PREFETCH 8 /* coarse rows ahead */

/* a cosine estimate from the coarse codes (the scan's formula times the query's scale) */
static float coarse_one(const part_t *p, size_t s) {
    const fk_index_t *ix = p->ix;
    int32_t v;
    if (ix->bits == 4) {
        ix->i4(p->q8, ix->code + s * ix->cb, 1, ix->dp, &v);
        return (float)(v - p->qsum8) * ix->scale[s] * p->qscale;
    }
    ix->i8(p->q8, p->qu8, (const int8_t *)(ix->code + s * ix->cb), ix->csum + s, 1, ix->dp, &v);
    return (float)v * ix->scale[s] * p->qscale;
}

static void coarse_prefetch(const fk_index_t *ix, size_t s) {
    const uint8_t *c = ix->code + s * ix->cb;
    for (size_t o = 0; o < ix->cb; o += 64) __builtin_prefetch(c + o, 0, 2);
    __builtin_prefetch(ix->scale + s, 0, 2);
    if (ix->bits != 4) __builtin_prefetch(ix->csum + s, 0, 2);
}

/* variance of a coarse score's error: rounding of template and query (uniform, variance step^2 / 12 each,
 * the query's step in cosine units being qscale) */
static float coarse_var(const part_t *p, size_t s) {
    float t = p->ix->scale[s], q = p->qscale;
    return (t * t + q * q) / 12.0f;
}

/* thresholds of stages 1 and 2 from the k best coarse scores (BEST, a min-heap); -inf until it is full */
static void sketch_thr(const part_t *p, const heap_t *best, float *t1, float *t2) {
    if (best->n < best->cap) {
        *t1 = *t2 = -INFINITY;
        return;
    }
    float c = coarse_var(p, best->a[0].slot), l = best->a[0].s;
    *t1 = l - SKETCH_Z * sqrtf(p->sq.sigma * p->sq.sigma + c);
    *t2 = l - SKETCH_Z * sqrtf(p->sq.sigma2 * p->sq.sigma2 + c);
}

/* the work of one block between stages: candidates (slots) with their 1-bit numerators */
typedef struct {
    int n;
    float num[BLOCK + 16]; /* + 16: the scan kernel stores whole registers */
    uint32_t slot[BLOCK + 16];
} stage_t;

/* stage 2 on S (whose magnitude rows were prefetched a block ago) into OUT, prefetching OUT's coarse rows */
static void stage2(const part_t *p, const stage_t *s, float t2, stage_t *out) {
    const fk_index_t *ix = p->ix;
    int32_t r2[2 * BLOCK];
    out->n = 0;
    if (!s->n) return;
    ix->skr(p->planes, ix->sk, ix->skm, s->slot, (size_t)s->n, ix->sbits, r2);
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        float e2 = ix->sinv2[s->slot[i]] * (s->num[i] + p->sq.a * (float)r2[2 * i] + p->sq.b * (float)r2[2 * i + 1]);
        out->slot[n] = s->slot[i];
        n += e2 > t2;
    }
    out->n = n;
    for (int j = 0; j < n && j < PREFETCH; j++) coarse_prefetch(ix, out->slot[j]);
}

/* stage 3 on S: coarse scores into the candidate heap and the k best */
static void stage3(part_t *p, const stage_t *s, heap_t *best) {
    const fk_index_t *ix = p->ix;
    for (int j = 0; j < s->n; j++) {
        if (j + PREFETCH < s->n) coarse_prefetch(ix, s->slot[j + PREFETCH]);
        float f = coarse_one(p, s->slot[j]);
        heap_push(&p->heap, f, s->slot[j]);
        if (p->distinct)
            heap_push_person(best, f, s->slot[j], ix->person);
        else
            heap_push(best, f, s->slot[j]);
    }
    p->evals += (size_t)s->n;
}

/* A software pipeline over the blocks: stage 1 of block i (streamed) runs while the magnitude rows of
 * block i - 1 and the coarse rows of block i - 2 arrive; the thresholds used may be a block or two old,
 * which only lets more through. */
static void *sketch_part(void *arg) {
    part_t *p = arg;
    const fk_index_t *ix = p->ix;
    const fk__sketch_query_t *sq = &p->sq;
    cand_t *ba = fk__malloc((size_t)p->k * sizeof(cand_t) + 3 * sizeof(stage_t));
    if (!ba) {
        p->rc = FK_ENOMEM;
        return NULL;
    }
    heap_t best = {ba, 0, p->k};
    stage_t *s1[2], *s2;
    s1[0] = (stage_t *)(ba + p->k); /* cand_t is 8 bytes, stage_t needs 4 */
    s1[1] = s1[0] + 1;
    s2 = s1[0] + 2;
    s1[0]->n = s1[1]->n = s2->n = 0;
    float t1 = -INFINITY, t2 = -INFINITY;
    int cur = 0;
    for (size_t b = p->lo;; b += BLOCK, cur ^= 1) {
        stage_t *c1 = s1[cur];
        int more = b < p->hi;
        c1->n = 0;
        if (more) { /* 1 on block i */
            size_t mb = p->hi - b < BLOCK ? p->hi - b : BLOCK;
            int n = ix->sks(p->planes, ix->sk + b * ix->sbytes, ix->sinv + b, ix->spop + b, mb, ix->sbits, sq, t1,
                            (uint32_t)b, c1->num, c1->slot);
            if (p->group > 0) {
                int j = 0;
                for (int i = 0; i < n; i++)
                    if (ix->group[c1->slot[i]] == p->group) c1->num[j] = c1->num[i], c1->slot[j++] = c1->slot[i];
                n = j;
            }
            c1->n = n;
            /* into L2 (locality 2): measured faster than into L1 (a block of stage 1 evicts L1 meanwhile) */
            for (int i = 0; i < n; i++) {
                __builtin_prefetch(ix->skm + (size_t)c1->slot[i] * ix->sbytes, 0, 2);
                __builtin_prefetch(ix->sinv2 + c1->slot[i], 0, 2);
            }
            p->refined += (size_t)n;
        }
        /* 3 on block i - 2, then 2 on block i - 1 */
        stage3(p, s2, &best);
        if (s2->n) sketch_thr(p, &best, &t1, &t2);
        stage2(p, s1[cur ^ 1], t2, s2);
        s1[cur ^ 1]->n = 0;
        if (!more && !s2->n) break;
    }
    fk__free(ba);
    return NULL;
}

static _Thread_local size_t last_evals, last_refined, last_exact;

size_t fk__index_last_evals(size_t *refined, size_t *exact) {
    if (refined) *refined = last_refined;
    if (exact) *exact = last_exact;
    return last_evals;
}

void fk__index_set_sketch_min(struct fk_index *ix, size_t n) {
    if (!ix) return;
    pthread_rwlock_wrlock(&ix->lock);
    ix->sketch_min = n ? n : SKETCH_MIN;
    pthread_rwlock_unlock(&ix->lock);
}

const char *fk__index_sketch_kernels(const struct fk_index *ix) { return ix ? ix->sklevel : ""; }

size_t fk__index_bytes_per_template(const struct fk_index *ix, size_t *fp32, size_t *coarse, size_t *sketch,
                                    size_t *ids) {
    if (!ix) return 0;
    size_t f = (size_t)ix->dp * sizeof(float), c = ix->cb + sizeof(float) + sizeof(int32_t),
           s = 2 * ix->sbytes + 3 * sizeof(float), d = 3 * sizeof(int64_t) + 2 * (sizeof(int64_t) + sizeof(uint32_t));
    if (fp32) *fp32 = f;
    if (coarse) *coarse = c;
    if (sketch) *sketch = s;
    if (ids) *ids = d;
    return f + c + s + d;
}

static int cmp_hit(const void *a, const void *b) {
    const fk_index_hit_t *x = a, *y = b;
    if (x->cosine != y->cosine) return x->cosine > y->cosine ? -1 : 1;
    return x->face_id < y->face_id ? -1 : x->face_id > y->face_id;
}

int fk_index_search(fk_index_t *ix, const float *q, int k, int64_t group_id, unsigned flags, fk_index_hit_t *hits,
                    int *n_hits) {
    if (n_hits) *n_hits = 0;
    if (!ix || !q || !hits || !n_hits || k < 1 || k > 1000) return FK_EINVAL;
    /* candidates to re-score: more for the coarser 4-bit codes on large galleries (about n / 1000: the
     * score gap between the best and the C-th best shrinks slowly with n, the re-ranking cost is small) */
    int C = ix->rerank > 4 * k ? ix->rerank : 4 * k;
    size_t nn = fk_index_size(ix);
    if (ix->bits == 4 && nn / 1000 > (size_t)C) C = nn / 1000 > 4096 ? 4096 : (int)(nn / 1000);
    int T = ix->threads;
    /* scratch: query (fp32, int8, uint8), T heaps, candidates */
    size_t need = (size_t)ix->dp * (sizeof(float) + 2) + (size_t)T * C * sizeof(cand_t) + 64 * 4 +
                  (size_t)T * C * sizeof(fk_index_hit_t);
    uint8_t *mem = fk__malloc(need);
    if (!mem) return FK_ENOMEM;
    float *qf = (float *)mem;
    int8_t *q8 = (int8_t *)(qf + ix->dp);
    uint8_t *qu8 = (uint8_t *)(q8 + ix->dp);
    cand_t *heaps = (cand_t *)(((uintptr_t)(qu8 + ix->dp) + 63) & ~(uintptr_t)63);
    fk_index_hit_t *cands = (fk_index_hit_t *)(((uintptr_t)(heaps + (size_t)T * C) + 63) & ~(uintptr_t)63);
    if (normalise(q, ix->dim, ix->dp, qf)) {
        fk__free(mem);
        return FK_EINVAL;
    }
    float qscale = quantise(qf, ix->dp, q8, NULL);
    int32_t qsum8 = 0;
    for (int j = 0; j < ix->dp; j++) qu8[j] = (uint8_t)(q8[j] + 128), qsum8 += 8 * q8[j];

    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->n;
    int nc = 0, rc = FK_OK;
    int exact = (flags & FK_SEARCH_EXACT) != 0;
    if (ix->faiss && !exact && n > 0) {
        /* FAISS proposes; removed labels are skipped (HNSW cannot delete), so ask for more */
        if (ix->kind == FK_INDEX_FAISS_IVF && !ix->faiss_trained) {
            /* trained lazily on the templates present: writers are excluded by upgrading the lock */
            pthread_rwlock_unlock(&ix->lock);
            pthread_rwlock_wrlock(&ix->lock);
            if (!ix->faiss_trained) {
                rc = fk__faiss_train_add(ix->faiss, ix->n, ix->vec, ix->dp, ix->dim, ix->face);
                if (!rc) ix->faiss_trained = 1;
            }
            pthread_rwlock_unlock(&ix->lock);
            pthread_rwlock_rdlock(&ix->lock);
            n = ix->n;
        }
        int want = C + (int)(ix->faiss_dead < 4096 ? ix->faiss_dead : 4096);
        int64_t *labels = (int64_t *)heaps; /* reuse: T*C cands hold at least C labels; grow if needed */
        int64_t *own = NULL;
        if ((size_t)want * sizeof(int64_t) > (size_t)T * C * sizeof(cand_t)) {
            own = fk__malloc((size_t)want * sizeof(int64_t));
            labels = own;
        }
        int got = 0;
        if (!rc && labels) rc = fk__faiss_search(ix->faiss, qf, ix->dp, want, T, labels, &got);
        else if (!labels) rc = FK_ENOMEM;
        for (int i = 0; !rc && i < got && nc < C; i++) {
            size_t s;
            if (labels[i] < 0 || !hget(ix, labels[i], &s)) continue;
            if (group_id > 0 && ix->group[s] != group_id) continue;
            cands[nc].face_id = (int64_t)s; /* slot for now */
            nc++;
        }
        fk__free(own);
    } else if (n > 0) {
        int coarse = !exact && n >= ix->coarse_min;
        int sketch = coarse && n >= ix->sketch_min;
        int parts = (n >= ix->parallel_min && T > 1) ? T : 1;
        void *(*run)(void *) = sketch ? sketch_part : scan_part;
        part_t pp[64];
        pthread_t th[64];
        int started[64] = {0};
        fk__sketch_query_t sq = {0, 0, 0, 0, 0};
        uint64_t *planes = NULL;
        if (sketch) {
            planes = fk__malloc((size_t)ix->sbits * sizeof(float) + (size_t)FK__SKETCH_QBITS * ix->sbits / 8);
            if (!planes) {
                pthread_rwlock_unlock(&ix->lock);
                fk__free(mem);
                return FK_ENOMEM;
            }
            fk__sketch_query(qf, ix->dp, ix->sbits, (float *)(planes + FK__SKETCH_QBITS * ix->sbits / 64), planes,
                             &sq);
        }
        for (int t = 0; t < parts; t++) {
            pp[t] = (part_t){ix, n * t / parts, n * (t + 1) / parts, coarse, group_id, qf, q8, qu8, qscale,
                             qsum8, {heaps + (size_t)t * C, 0, C}, planes, sq, k, FK_OK,
                             (flags & FK_SEARCH_DISTINCT) != 0, 0, 0};
            if (t > 0) started[t] = pthread_create(&th[t], NULL, run, &pp[t]) == 0;
        }
        run(&pp[0]);
        for (int t = 1; t < parts; t++) {
            if (started[t])
                pthread_join(th[t], NULL);
            else
                run(&pp[t]); /* could not start a thread: do its share here */
        }
        last_evals = last_refined = 0;
        for (int t = 0; t < parts; t++) {
            if (pp[t].rc) rc = pp[t].rc;
            last_evals += pp[t].evals;
            last_refined += pp[t].refined;
        }
        fk__free(planes);
        /* merge the per-thread heaps into one candidate list */
        heap_t all = {heaps + (size_t)(parts - 1) * C, pp[parts - 1].heap.n, C};
        for (int t = 0; t < parts - 1; t++)
            for (int i = 0; i < pp[t].heap.n; i++) heap_push(&all, pp[t].heap.a[i].s, pp[t].heap.a[i].slot);
        if (sketch && all.n > k && !rc) {
            /* 4: only candidates whose coarse score may reach the k-th best one go to fp32 */
            cand_t *kb = fk__malloc((size_t)k * sizeof(cand_t));
            if (!kb) {
                rc = FK_ENOMEM;
            } else {
                heap_t kh = {kb, 0, k};
                for (int i = 0; i < all.n; i++) {
                    if (flags & FK_SEARCH_DISTINCT)
                        heap_push_person(&kh, all.a[i].s, all.a[i].slot, ix->person);
                    else
                        heap_push(&kh, all.a[i].s, all.a[i].slot);
                }
                const part_t *p0 = &pp[0];
                float vk = coarse_var(p0, kh.a[0].slot), lk = kh.a[0].s;
                int j = 0;
                for (int i = 0; i < all.n; i++)
                    if (all.a[i].s >= lk - SKETCH_Z * sqrtf(vk + coarse_var(p0, all.a[i].slot))) all.a[j++] = all.a[i];
                all.n = j;
                fk__free(kb);
            }
        }
        for (int i = 0; i < all.n; i++) cands[nc++].face_id = all.a[i].slot;
        last_exact = (size_t)nc;
    }
    /* exact fp32 scores of the candidates, then ids */
    for (int i = 0; i < nc; i++) {
        size_t s = (size_t)cands[i].face_id;
        float d;
        ix->f32(qf, ix->vec + s * (size_t)ix->dp, 1, ix->dp, &d);
        cands[i].face_id = ix->face[s];
        cands[i].person_id = ix->person[s];
        cands[i].group_id = ix->group[s];
        cands[i].cosine = d;
    }
    pthread_rwlock_unlock(&ix->lock);
    qsort(cands, (size_t)nc, sizeof *cands, cmp_hit);
    int out = 0;
    for (int i = 0; i < nc && out < k; i++) {
        if (flags & FK_SEARCH_DISTINCT) {
            int dup = 0;
            for (int j = 0; j < out && !dup; j++) dup = hits[j].person_id == cands[i].person_id;
            if (dup) continue;
        }
        hits[out++] = cands[i];
    }
    *n_hits = out;
    fk__free(mem);
    return rc;
}
