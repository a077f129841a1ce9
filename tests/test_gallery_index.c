/*
 * test_gallery_index.c — the in-memory index (src/gallery): every kernel level against the plain C
 * reference (int8 dots bit-exact, fp32 within rounding), search against a brute-force double-precision
 * ground truth (recall@1 = 1 on genuine and random queries, with and without the int8 pass, 1 and 2
 * threads), group filter, one hit per person, removal (slot moves), duplicate ids, FAISS flat agreeing
 * with us, FAISS HNSW/IVF candidates, concurrent readers with a writer, allocation failures.
 */
#include "fk_test.h"
#include "core/core.h"
#include "gallery/scan.h"

#include <pthread.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float nrand(void) { /* Box-Muller */
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}
static void unit(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}
static void randv(float *v, int d) {
    for (int i = 0; i < d; i++) v[i] = nrand();
    unit(v, d);
}
/* a probe of the same person: cosine about 0.7 with V */
static void probe(const float *v, float *q, int d) {
    for (int i = 0; i < d; i++) q[i] = v[i] + 0.035f * nrand();
    unit(q, d);
}

static int brute_top1(const float *x, size_t n, int d, const float *q, const int64_t *group, int64_t g) {
    int best = -1;
    double bs = -1e9;
    for (size_t i = 0; i < n; i++) {
        if (g > 0 && group[i] != g) continue;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)q[j] * x[i * (size_t)d + j];
        if (s > bs) bs = s, best = (int)i;
    }
    return best;
}

static void kernel_tests(void) {
    const int dim = 512;
    const size_t n = 37;
    float *x = fk__malloc(n * dim * sizeof(float)), q[512], ref[37], out[37];
    int8_t *c8 = fk__malloc(n * dim), q8[512];
    uint8_t qu8[512];
    int32_t csum[37], iref[37], iout[37];
    for (size_t i = 0; i < n; i++) {
        randv(x + i * dim, dim);
        csum[i] = 0;
        for (int j = 0; j < dim; j++) {
            c8[i * dim + j] = (int8_t)(urand() * 255 - 127);
            csum[i] += c8[i * dim + j];
        }
    }
    randv(q, dim);
    for (int j = 0; j < dim; j++) {
        q8[j] = (int8_t)(j % 3 == 0 ? 127 : j % 3 == 1 ? -127 : (int)(urand() * 255 - 127)); /* extremes */
        qu8[j] = (uint8_t)(q8[j] + 128);
    }
    fk__dots_f32_ref(q, x, n, dim, ref);
    fk__dots_i8_ref(q8, qu8, c8, csum, n, dim, iref);
    /* 4-bit reference against a direct sum over unpacked nibbles */
    const uint8_t *c4 = (const uint8_t *)c8; /* any bytes are valid nibble pairs */
    int32_t i4ref[37], i4out[37];
    fk__dots_i4_ref(q8, c4, n, dim, i4ref);
    for (size_t i = 0; i < n; i++) {
        int32_t s = 0;
        for (int j = 0; j < dim; j++) {
            int g = j / 128, r = j % 128;
            uint8_t b = c4[i * (dim / 2) + g * 64 + r % 64];
            s += q8[j] * (r < 64 ? (b & 15) : (b >> 4));
        }
        FK_CHECK_INT(i4ref[i], s);
    }
    const char *levels[] = {"c", "avx2", "avx512"};
    for (int l = 0; l < 3; l++) {
        const char *got;
        fk__dots_f32_fn f = fk__dots_f32_select(levels[l], &got);
        fk__dots_i8_fn g = fk__dots_i8_select(levels[l], NULL);
        fk__dots_i4_fn g4 = fk__dots_i4_select(levels[l], NULL);
        g4(q8, c4, n, dim, i4out);
        for (size_t i = 0; i < n; i++) FK_CHECK_INT(i4out[i], i4ref[i]);
        fprintf(stderr, "kernels %s -> %s\n", levels[l], got);
        f(q, x, n, dim, out);
        g(q8, qu8, c8, csum, n, dim, iout);
        for (size_t i = 0; i < n; i++) {
            FK_CHECK_NEAR(out[i], ref[i], 1e-5);
            FK_CHECK_INT(iout[i], iref[i]);
        }
    }
    fk__free(x);
    fk__free(c8);
}

static void search_tests(size_t n, const char *kernels, int threads, size_t coarse_min, int bits) {
    const int dim = 512;
    fprintf(stderr, "search n=%zu kernels=%s threads=%d coarse_min=%zu bits=%d\n", n, kernels ? kernels : "best",
            threads, coarse_min, bits);
    float *x = malloc(n * dim * sizeof(float));
    int64_t *fid = malloc(n * 8), *pid = malloc(n * 8), *gid = malloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        randv(x + i * dim, dim);
        fid[i] = 1000 + (int64_t)i;
        pid[i] = 1 + (int64_t)i / 2; /* two faces per person */
        gid[i] = 1 + (int64_t)(i % 3);
    }
    fk_index_options_t o = {FK_INDEX_EXACT, threads, 1000, coarse_min, 0, kernels, bits};
    fk_index_t *ix = NULL;
    FK_CHECK_INT(fk_index_create(dim, &o, &ix), FK_OK);
    FK_CHECK_INT(fk_index_add(ix, n, fid, pid, gid, x), FK_OK);
    FK_CHECK_INT(fk_index_size(ix), n);
    int ok_gen = 0, ok_rand = 0, ok_group = 0, nq = 40;
    float q[512];
    fk_index_hit_t h[10];
    int nh;
    for (int t = 0; t < nq; t++) {
        size_t target = (size_t)(urand() * n);
        probe(x + target * dim, q, dim);
        FK_CHECK_INT(fk_index_search(ix, q, 5, 0, 0, h, &nh), FK_OK);
        int b = brute_top1(x, n, dim, q, gid, 0);
        ok_gen += nh == 5 && h[0].face_id == fid[b] && (size_t)b == target;
        randv(q, dim);
        fk_index_search(ix, q, 1, 0, 0, h, &nh);
        b = brute_top1(x, n, dim, q, gid, 0);
        ok_rand += nh == 1 && h[0].face_id == fid[b];
        if (nh == 1) {
            double s = 0;
            for (int j = 0; j < dim; j++) s += (double)q[j] * x[b * (size_t)dim + j];
            FK_CHECK_NEAR(h[0].cosine, s, 1e-5);
        }
        fk_index_search(ix, q, 3, 2, 0, h, &nh);
        b = brute_top1(x, n, dim, q, gid, 2);
        ok_group += nh == 3 && h[0].face_id == fid[b] && h[1].group_id == 2 && h[2].group_id == 2;
    }
    FK_CHECK_INT(ok_gen, nq);
    FK_CHECK_INT(ok_rand, nq);
    FK_CHECK_INT(ok_group, nq);
    /* distinct persons: a probe of person P's face hits P once, then others */
    probe(x, q, dim);
    FK_CHECK_INT(fk_index_search(ix, q, 4, 0, FK_SEARCH_DISTINCT, h, &nh), FK_OK);
    FK_CHECK_INT(nh, 4);
    for (int i = 0; i < nh; i++)
        for (int j = 0; j < i; j++) FK_CHECK(h[i].person_id != h[j].person_id);
    FK_CHECK_INT(h[0].person_id, 1);
    /* ordering */
    for (int i = 1; i < nh; i++) FK_CHECK(h[i - 1].cosine >= h[i].cosine);
    fk_index_destroy(ix);
    free(x);
    free(fid);
    free(pid);
    free(gid);
}

static void edit_tests(void) {
    const int dim = 64, n = 300;
    float *x = malloc((size_t)n * dim * sizeof(float));
    int64_t fid[300], pid[300];
    for (int i = 0; i < n; i++) {
        randv(x + i * dim, dim);
        fid[i] = i + 1;
        pid[i] = i / 3 + 1;
    }
    fk_index_t *ix = NULL;
    fk_index_options_t o = {0};
    o.coarse_min = 100;
    FK_CHECK_INT(fk_index_create(dim, &o, &ix), FK_OK);
    FK_CHECK_INT(fk_index_add(ix, (size_t)n, fid, pid, NULL, x), FK_OK);
    /* duplicates and zero vectors are refused, all or nothing */
    float zero[64] = {0};
    int64_t f2[2] = {5000, 7}, p2[2] = {1, 1};
    float two[128];
    memcpy(two, x, 64 * sizeof(float));
    memcpy(two + 64, x, 64 * sizeof(float));
    FK_CHECK_INT(fk_index_add(ix, 2, f2, p2, NULL, two), FK_EINVAL);
    FK_CHECK_INT(fk_index_size(ix), n);
    FK_CHECK_INT(fk_index_add(ix, 1, f2, p2, NULL, zero), FK_EINVAL);
    FK_CHECK_INT(fk_index_size(ix), n);
    /* remove a face: the one moved into its slot is still found */
    size_t r;
    FK_CHECK_INT(fk_index_remove_face(ix, 10, &r), FK_OK);
    FK_CHECK_INT(r, 1);
    FK_CHECK_INT(fk_index_remove_face(ix, 10, &r), FK_ENOTFOUND);
    fk_index_hit_t h[3];
    int nh;
    FK_CHECK_INT(fk_index_search(ix, x + (n - 1) * dim, 1, 0, 0, h, &nh), FK_OK);
    FK_CHECK_INT(h[0].face_id, n);
    FK_CHECK_NEAR(h[0].cosine, 1.0, 1e-5);
    FK_CHECK_INT(fk_index_search(ix, x + 9 * dim, 1, 0, 0, h, &nh), FK_OK);
    FK_CHECK(h[0].face_id != 10);
    /* remove a person: all three faces */
    FK_CHECK_INT(fk_index_remove_person(ix, 5, &r), FK_OK);
    FK_CHECK_INT(r, 3);
    FK_CHECK_INT(fk_index_size(ix), n - 4);
    for (int i = 12; i < 15; i++) {
        fk_index_search(ix, x + i * dim, 1, 0, 0, h, &nh);
        FK_CHECK(h[0].person_id != 5);
    }
    /* re-adding a removed id works */
    FK_CHECK_INT(fk_index_add(ix, 1, &fid[9], &pid[9], NULL, x + 9 * dim), FK_OK);
    fk_index_search(ix, x + 9 * dim, 1, 0, 0, h, &nh);
    FK_CHECK_INT(h[0].face_id, 10);
    FK_CHECK_INT(fk_index_search(ix, x, 0, 0, 0, h, &nh), FK_EINVAL);
    FK_CHECK_INT(fk_index_search(ix, zero, 1, 0, 0, h, &nh), FK_EINVAL);

    /* allocation failures on add and search */
    size_t before = fk_mem_in_use();
    for (long i = 1; i < 20; i++) {
        fk_index_t *j = NULL;
        fk__alloc_fail_at(i);
        int rc = fk_index_create(dim, &o, &j);
        if (!rc) rc = fk_index_add(j, (size_t)n, fid, pid, NULL, x);
        if (!rc) rc = fk_index_search(j, x, 2, 0, 0, h, &nh);
        fk__alloc_fail_at(0);
        FK_CHECK(rc == FK_OK || rc == FK_ENOMEM);
        fk_index_destroy(j);
    }
    FK_CHECK_INT(fk_mem_in_use(), before);
    fk_index_destroy(ix);
    free(x);
}

/* FAISS: flat agrees with us; HNSW and IVF propose candidates that we re-score */
static void faiss_tests(void) {
    const int dim = 128;
    const size_t n = 5000;
    float *x = malloc(n * dim * sizeof(float)), q[128];
    int64_t *fid = malloc(n * 8), *pid = malloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        randv(x + i * dim, dim);
        fid[i] = (int64_t)i + 1;
        pid[i] = (int64_t)i + 1;
    }
    fk_index_t *ix = NULL;
    fk_index_options_t o = {0};
    FK_CHECK_INT(fk_index_create(dim, &o, &ix), FK_OK);
    fk_index_add(ix, n, fid, pid, NULL, x);
    int agree = 0;
    for (int t = 0; t < 20; t++) {
        randv(q, dim);
        float d[1];
        int64_t id[1];
        FK_CHECK_INT(fk_faiss_flat_search(x, n, dim, q, 1, 1, 1, d, id), FK_OK);
        fk_index_hit_t h[1];
        int nh;
        fk_index_search(ix, q, 1, 0, 0, h, &nh);
        agree += nh == 1 && h[0].face_id == id[0] + 1 && fabs(h[0].cosine - d[0]) < 1e-4;
    }
    FK_CHECK_INT(agree, 20);
    fk_index_destroy(ix);
    for (int kind = 1; kind <= 2; kind++) {
        fk_index_options_t fo = {0};
        fo.kind = (fk_index_kind_t)kind;
        FK_CHECK_INT(fk_index_create(dim, &fo, &ix), FK_OK);
        FK_CHECK_INT(fk_index_add(ix, n, fid, pid, NULL, x), FK_OK);
        int hit = 0;
        fk_index_hit_t h[2];
        int nh;
        for (int t = 0; t < 20; t++) {
            size_t target = (size_t)(urand() * n);
            probe(x + target * dim, q, dim);
            FK_CHECK_INT(fk_index_search(ix, q, 1, 0, 0, h, &nh), FK_OK);
            hit += nh == 1 && h[0].face_id == fid[target];
        }
        FK_CHECK_INT(hit, 20);
        /* a removed template never comes back */
        FK_CHECK_INT(fk_index_remove_face(ix, fid[7], NULL), FK_OK);
        fk_index_search(ix, x + 7 * dim, 2, 0, 0, h, &nh);
        FK_CHECK(nh >= 1 && h[0].face_id != fid[7]);
        fk_index_destroy(ix);
    }
    free(x);
    free(fid);
    free(pid);
}

/* many readers, one writer */
typedef struct {
    fk_index_t *ix;
    const float *x;
    int bad;
} rd_t;

static void *reader(void *arg) {
    rd_t *r = arg;
    fk_index_hit_t h[1];
    int nh;
    for (int i = 0; i < 300; i++) {
        /* faces 1..200 are never removed: each must always find itself */
        int j = i % 200;
        if (fk_index_search(r->ix, r->x + j * 64, 1, 0, 0, h, &nh) || nh != 1 || h[0].face_id != j + 1) r->bad++;
    }
    return NULL;
}

static void concurrency_tests(void) {
    const int dim = 64, n = 2000;
    float *x = malloc((size_t)n * dim * sizeof(float));
    int64_t *fid = malloc(n * 8);
    for (int i = 0; i < n; i++) randv(x + i * dim, dim), fid[i] = i + 1;
    fk_index_t *ix = NULL;
    fk_index_options_t o = {0};
    fk_index_create(dim, &o, &ix);
    fk_index_add(ix, 200, fid, fid, NULL, x);
    rd_t r[3] = {{ix, x, 0}, {ix, x, 0}, {ix, x, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, reader, &r[i]);
    for (int i = 200; i < n; i++) {
        fk_index_add(ix, 1, &fid[i], &fid[i], NULL, x + i * dim);
        if (i % 3 == 0) fk_index_remove_face(ix, fid[i - 1], NULL);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    FK_CHECK_INT(r[0].bad + r[1].bad + r[2].bad, 0);
    fk_index_destroy(ix);
    free(x);
    free(fid);
}

int main(void) {
    kernel_tests();
    search_tests(3000, NULL, 1, (size_t)-1, 0); /* fp32 scan only */
    search_tests(3000, "c", 1, 100, 8);         /* int8 + re-rank, reference kernels */
    search_tests(3000, "c", 1, 100, 4);         /* int4 + re-rank, reference kernels */
    search_tests(3000, "avx2", 1, 100, 8);
    search_tests(3000, "avx2", 1, 100, 4);
    search_tests(20000, NULL, 1, 0, 8);         /* int8 + re-rank, fastest kernels */
    search_tests(20000, NULL, 1, 0, 0);         /* defaults: int4 + re-rank */
    search_tests(20000, NULL, 2, 0, 0);         /* two threads (parallel_min 1000) */
    edit_tests();
    faiss_tests();
    concurrency_tests();
    return fk_t_finish();
}
