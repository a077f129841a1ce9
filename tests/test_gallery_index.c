/*
 * test_gallery_index.c — the in-memory index (src/gallery): every kernel level against the plain C
 * reference (int8 dots bit-exact, fp32 within rounding), search against a brute-force double-precision
 * ground truth (recall@1 = 1 on genuine and random queries, with and without the int8 pass, 1 and 2
 * threads), group filter, one hit per person, removal (slot moves), duplicate ids, FAISS flat agreeing
 * with us, FAISS HNSW/IVF candidates, concurrent readers with a writer, allocation failures. The staged
 * search of large galleries (1-bit sketch -> 2-bit -> coarse -> fp32, sketch.c): its kernels against the
 * reference, the rotation is orthogonal, the estimators are unbiased with the error the margins assume,
 * and recall@1 against brute force for every stage configuration (kernel levels, int4/int8, 1 and 2
 * threads, groups, one hit per person, genuine / hard (cosine ~0.55) / random queries), also after
 * removing and adding templates in a built index.
 */
#include "fk_test.h"
#include "core/core.h"
#include "gallery/scan.h"
#include "gallery/sketch.h"

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
/* a harder probe: cosine about 0.55 with V at 512-d (like real pairs of face photos) */
static void hard_probe(const float *v, float *q, int d) {
    float s = 0.067f * sqrtf(512.0f / (float)d);
    for (int i = 0; i < d; i++) q[i] = v[i] + s * nrand();
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

static void search_tests(size_t n, const char *kernels, int threads, size_t coarse_min, int bits, size_t sketch_min) {
    const int dim = 512;
    fprintf(stderr, "search n=%zu kernels=%s threads=%d coarse_min=%zu bits=%d sketch_min=%zu\n", n,
            kernels ? kernels : "best", threads, coarse_min, bits, sketch_min);
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
    if (sketch_min) fk__index_set_sketch_min(ix, sketch_min);
    FK_CHECK_INT(fk_index_add(ix, n, fid, pid, gid, x), FK_OK);
    FK_CHECK_INT(fk_index_size(ix), n);
    int ok_gen = 0, ok_rand = 0, ok_group = 0, ok_hard = 0, nq = 40;
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
        hard_probe(x + target * dim, q, dim);
        fk_index_search(ix, q, 1, 0, 0, h, &nh);
        b = brute_top1(x, n, dim, q, gid, 0);
        ok_hard += nh == 1 && h[0].face_id == fid[b];
    }
    FK_CHECK_INT(ok_gen, nq);
    FK_CHECK_INT(ok_rand, nq);
    FK_CHECK_INT(ok_group, nq);
    FK_CHECK_INT(ok_hard, nq);
    if (sketch_min && n >= sketch_min) { /* the staged search ran: far fewer coarse scores than templates */
        size_t refined, exact, ev;
        randv(q, dim);
        fk_index_search(ix, q, 1, 0, 0, h, &nh);
        ev = fk__index_last_evals(&refined, &exact);
        fprintf(stderr, "  random query: %zu 2-bit, %zu coarse, %zu fp32 of %zu\n", refined, ev, exact, n);
        FK_CHECK(ev > 0 && ev < n / 2 && refined >= ev && exact >= 1 && exact <= ev);
    }
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

/* every sketch kernel level gives the reference's integers, for several code sizes */
static void sketch_kernel_tests(void) {
    const int sizes[] = {128, 256, 512, 1024};
    for (int z = 0; z < 4; z++) {
        int bits = sizes[z], wpp = bits / 64;
        const size_t n = 41;
        uint8_t *c = fk__malloc(n * (size_t)bits / 8), *m = fk__malloc(n * (size_t)bits / 8);
        uint64_t planes[FK__SKETCH_QBITS * 16];
        for (size_t i = 0; i < n * (size_t)bits / 8; i++) {
            c[i] = (uint8_t)(urand() * 256);
            m[i] = (uint8_t)(urand() * 256);
        }
        memset(c, 0xff, (size_t)bits / 8); /* extremes: all bits set, and none */
        memset(c + (size_t)bits / 8, 0, (size_t)bits / 8);
        for (int i = 0; i < FK__SKETCH_QBITS * wpp; i++)
            planes[i] = (uint64_t)(urand() * 4294967296.0) << 32 | (uint64_t)(urand() * 4294967296.0);
        int32_t ref[41], out[41], rref[82], rout[82];
        uint32_t idx[41];
        for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)((i * 7) % n);
        fk__sketch_dots_ref(planes, c, n, bits, ref);
        fk__sketch_refine_ref(planes, c, m, idx, n, bits, rref);
        /* the reference itself against a direct sum over bits */
        for (size_t i = 0; i < n; i++) {
            int32_t s = 0, r0 = 0, r1 = 0;
            for (int b = 0; b < bits; b++) {
                int cb = c[i * bits / 8 + b / 8] >> (b % 8) & 1, u = 0;
                for (int j = 0; j < FK__SKETCH_QBITS; j++) u |= (int)(planes[j * wpp + b / 64] >> (b % 64) & 1) << j;
                s += cb * u;
                size_t row = idx[i] * (size_t)bits / 8 + (size_t)b / 8;
                int mb = m[row] >> (b % 8) & 1, cc = c[row] >> (b % 8) & 1;
                r0 += mb * (2 * cc - 1) * u;
                r1 += mb * (2 * cc - 1);
            }
            FK_CHECK_INT(ref[i], s);
            FK_CHECK_INT(rref[2 * i], r0);
            FK_CHECK_INT(rref[2 * i + 1], r1);
        }
        const char *levels[] = {"c", "avx2", "avx512"};
        for (int l = 0; l < 3; l++) {
            const char *got, *got2;
            fk__sketch_dots_fn f = fk__sketch_dots_select(levels[l], &got);
            fk__sketch_refine_fn g = fk__sketch_refine_select(levels[l], &got2);
            if (bits == 512) fprintf(stderr, "sketch kernels %s -> %s, %s\n", levels[l], got, got2);
            f(planes, c, n, bits, out);
            g(planes, c, m, idx, n, bits, rout);
            for (size_t i = 0; i < n; i++) FK_CHECK_INT(out[i], ref[i]);
            for (size_t i = 0; i < 2 * n; i++) FK_CHECK_INT(rout[i], rref[i]);
        }
        /* the fused stage-1 scan: same survivors and numerators at every level, for a full block, a short
         * one (tail) and thresholds letting all, some or none through */
        size_t nb = 512 + 23;
        uint8_t *cc = fk__malloc(nb * (size_t)bits / 8);
        float *inv = fk__malloc(nb * sizeof(float)), *pop = fk__malloc(nb * sizeof(float));
        float *nr = fk__malloc((nb + 16) * sizeof(float)), *no = fk__malloc((nb + 16) * sizeof(float));
        uint32_t *sr = fk__malloc((nb + 16) * sizeof(uint32_t)), *so = fk__malloc((nb + 16) * sizeof(uint32_t));
        for (size_t i = 0; i < nb * (size_t)bits / 8; i++) cc[i] = (uint8_t)(urand() * 256);
        for (size_t i = 0; i < nb; i++) inv[i] = (float)(0.05 + 0.01 * urand()), pop[i] = (float)(int)(urand() * bits);
        fk__sketch_query_t sq = {0.02f, -0.25f, 0.7f * (float)bits / 512, 0.034f, 0.017f};
        const float thr[] = {-INFINITY, 0.0f, 0.05f, 10.0f};
        const size_t lens[] = {512, 41, 7};
        for (int t = 0; t < 4; t++)
            for (int li = 0; li < 3; li++) {
                size_t len = lens[li];
                int kr = fk__sketch_scan_ref(planes, cc + 23 * (size_t)bits / 8, inv + 23, pop + 23, len, bits, &sq,
                                             thr[t], 1000, nr, sr);
                if (t == 0) FK_CHECK_INT(kr, (int)len);
                if (t == 3) FK_CHECK_INT(kr, 0);
                for (int l = 0; l < 3; l++) {
                    fk__sketch_scan_fn sf = fk__sketch_scan_select(levels[l], NULL);
                    int ko = sf(planes, cc + 23 * (size_t)bits / 8, inv + 23, pop + 23, len, bits, &sq, thr[t], 1000,
                                no, so);
                    FK_CHECK_INT(ko, kr);
                    for (int i = 0; i < ko && i < kr; i++) {
                        FK_CHECK_INT(so[i], sr[i]);
                        FK_CHECK(no[i] == nr[i]);
                    }
                }
            }
        fk__free(cc);
        fk__free(inv);
        fk__free(pop);
        fk__free(nr);
        fk__free(no);
        fk__free(sr);
        fk__free(so);
        fk__free(c);
        fk__free(m);
    }
}

/* the rotation keeps inner products; the 1-bit and 2-bit estimates are unbiased and err by about the sigma
 * the search's margins use (measured over random templates and near ones) */
static void sketch_estimator_tests(void) {
    const int dims[] = {512, 200};
    for (int z = 0; z < 2; z++) {
        int dim = dims[z], dp = (dim + 127) / 128 * 128, bits = fk__sketch_bits(dp);
        float *a = fk__calloc((size_t)dp, sizeof(float)), *b = fk__calloc((size_t)dp, sizeof(float));
        float *ra = fk__malloc((size_t)bits * sizeof(float)), *rb = fk__malloc((size_t)bits * sizeof(float));
        float *work = fk__malloc((size_t)bits * sizeof(float));
        uint8_t *code = fk__malloc((size_t)bits / 8), *mag = fk__malloc((size_t)bits / 8);
        uint64_t *planes = fk__malloc((size_t)FK__SKETCH_QBITS * bits / 8);
        randv(a, dim);
        randv(b, dim);
        fk__sketch_rotate(a, dp, bits, ra);
        fk__sketch_rotate(b, dp, bits, rb);
        double d0 = 0, d1 = 0, n1 = 0;
        for (int i = 0; i < dim; i++) d0 += (double)a[i] * b[i];
        for (int i = 0; i < bits; i++) d1 += (double)ra[i] * rb[i], n1 += (double)ra[i] * ra[i];
        FK_CHECK_NEAR(d1, d0, 1e-5);
        FK_CHECK_NEAR(n1, 1.0, 1e-5);
        fk__sketch_query_t sq;
        fk__sketch_query(a, dp, bits, work, planes, &sq);
        double e1 = 0, e1s = 0, e2 = 0, e2s = 0;
        const int N = 4000;
        for (int t = 0; t < N; t++) {
            randv(b, dim);
            if (t % 2) /* half of them near the query (cosine ~0.5) */
                for (int i = 0; i < dim; i++) b[i] = b[i] + a[i];
            unit(b, dim);
            float inv, pop, inv2;
            fk__sketch_encode(b, dp, bits, work, code, &inv, &pop, mag, &inv2);
            int32_t s, r[2];
            uint32_t zero = 0;
            fk__sketch_dots_ref(planes, code, 1, bits, &s);
            fk__sketch_refine_ref(planes, code, mag, &zero, 1, bits, r);
            double num = sq.a * (double)s + sq.b * (double)pop - sq.c, tru = 0;
            for (int i = 0; i < dim; i++) tru += (double)a[i] * b[i];
            double x1 = inv * num - tru, x2 = inv2 * (num + sq.a * (double)r[0] + sq.b * (double)r[1]) - tru;
            e1 += x1, e1s += x1 * x1, e2 += x2, e2s += x2 * x2;
        }
        double m1 = e1 / N, s1 = sqrt(e1s / N - m1 * m1), m2 = e2 / N, s2 = sqrt(e2s / N - m2 * m2);
        fprintf(stderr,
                "sketch dim %d bits %d: 1-bit bias %.4f sd %.4f (sigma %.4f), 2-bit bias %.4f sd %.4f (sigma %.4f)\n",
                dim, bits, m1, s1, sq.sigma, m2, s2, sq.sigma2);
        /* for one fixed query (and a fixed rotation) the query's rounding leaves a small bias: the margins
         * must cover bias and spread together */
        FK_CHECK(fabs(m1) < 0.25 * sq.sigma && fabs(m2) < 0.35 * sq.sigma2);
        FK_CHECK(sqrt(s1 * s1 + m1 * m1) < 1.05 * sq.sigma && s1 > 0.7 * sq.sigma);
        FK_CHECK(sqrt(s2 * s2 + m2 * m2) < 1.05 * sq.sigma2 && s2 > 0.7 * sq.sigma2);
        fk__free(a);
        fk__free(b);
        fk__free(ra);
        fk__free(rb);
        fk__free(work);
        fk__free(code);
        fk__free(mag);
        fk__free(planes);
    }
}

/* the staged search after removals and additions in a built index: the codes of moved and new slots are
 * right (recall@1 against brute force over what the index holds now) */
static void sketch_edit_tests(int dim) {
    const size_t n0 = 12000, nadd = 3000;
    fprintf(stderr, "sketch edits dim=%d\n", dim);
    float *x = malloc((n0 + nadd) * (size_t)dim * sizeof(float)), *q = malloc((size_t)dim * sizeof(float));
    int64_t *fid = malloc((n0 + nadd) * 8), *pid = malloc((n0 + nadd) * 8), *gid = malloc((n0 + nadd) * 8);
    char *live = calloc(n0 + nadd, 1);
    for (size_t i = 0; i < n0 + nadd; i++) {
        randv(x + i * dim, dim);
        fid[i] = 1 + (int64_t)i;
        pid[i] = 1 + (int64_t)i / 3;
        gid[i] = 0;
    }
    fk_index_options_t o = {0};
    o.coarse_min = 500;
    fk_index_t *ix = NULL;
    FK_CHECK_INT(fk_index_create(dim, &o, &ix), FK_OK);
    fk__index_set_sketch_min(ix, 1000);
    FK_CHECK_INT(fk_index_add(ix, n0, fid, pid, NULL, x), FK_OK);
    memset(live, 1, n0);
    /* remove every 7th face and every 50th person, then add new ones in small batches */
    size_t r;
    for (size_t i = 0; i < n0; i += 7)
        if (live[i]) {
            FK_CHECK_INT(fk_index_remove_face(ix, fid[i], NULL), FK_OK);
            live[i] = 0;
        }
    for (int64_t p = 1; p <= (int64_t)n0 / 3; p += 50) {
        FK_CHECK_INT(fk_index_remove_person(ix, p, &r), FK_OK);
        for (size_t i = (size_t)(p - 1) * 3; i < (size_t)p * 3 && i < n0; i++) live[i] = 0;
    }
    for (size_t b = n0; b < n0 + nadd; b += 100) {
        FK_CHECK_INT(fk_index_add(ix, 100, fid + b, pid + b, NULL, x + b * dim), FK_OK);
        memset(live + b, 1, 100);
    }
    size_t nlive = 0;
    for (size_t i = 0; i < n0 + nadd; i++) nlive += live[i];
    FK_CHECK_INT(fk_index_size(ix), nlive);
    int ok = 0, nq = 60;
    fk_index_hit_t h[2];
    int nh;
    for (int t = 0; t < nq; t++) {
        size_t target;
        do target = (size_t)(urand() * (n0 + nadd));
        while (!live[target]);
        if (t % 3 == 0) probe(x + target * dim, q, dim);
        else if (t % 3 == 1) hard_probe(x + target * dim, q, dim);
        else randv(q, dim);
        FK_CHECK_INT(fk_index_search(ix, q, 1, 0, 0, h, &nh), FK_OK);
        int best = -1;
        double bs = -2;
        for (size_t i = 0; i < n0 + nadd; i++) {
            if (!live[i]) continue;
            double s = 0;
            for (int j = 0; j < dim; j++) s += (double)q[j] * x[i * dim + j];
            if (s > bs) bs = s, best = (int)i;
        }
        ok += nh == 1 && h[0].face_id == fid[best] && fabs(h[0].cosine - bs) < 1e-5;
    }
    FK_CHECK_INT(ok, nq);
    /* a removed template is never found again, even by itself */
    FK_CHECK_INT(fk_index_search(ix, x, 1, 0, 0, h, &nh), FK_OK);
    FK_CHECK(nh == 1 && h[0].face_id != fid[0]);
    /* allocation failures inside the staged search: FK_ENOMEM or a right answer, nothing leaked */
    size_t before = fk_mem_in_use();
    for (long i = 1; i < 8; i++) {
        fk__alloc_fail_at(i);
        int rc = fk_index_search(ix, x + 3 * (size_t)dim, 1, 0, FK_SEARCH_DISTINCT, h, &nh); /* face 3 is live */
        fk__alloc_fail_at(0);
        FK_CHECK(rc == FK_ENOMEM || (rc == FK_OK && nh == 1 && h[0].face_id == fid[3]));
    }
    FK_CHECK_INT(fk_mem_in_use(), before);
    fk_index_destroy(ix);
    free(x);
    free(q);
    free(fid);
    free(pid);
    free(gid);
    free(live);
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
    search_tests(3000, NULL, 1, (size_t)-1, 0, 0); /* fp32 scan only */
    search_tests(3000, "c", 1, 100, 8, 0);         /* int8 + re-rank, reference kernels */
    search_tests(3000, "c", 1, 100, 4, 0);         /* int4 + re-rank, reference kernels */
    search_tests(3000, "avx2", 1, 100, 8, 0);
    search_tests(3000, "avx2", 1, 100, 4, 0);
    search_tests(20000, NULL, 1, 0, 8, 0);         /* int8 + re-rank, fastest kernels */
    search_tests(20000, NULL, 1, 0, 0, 0);         /* defaults: int4 + re-rank */
    search_tests(20000, NULL, 2, 0, 0, 0);         /* two threads (parallel_min 1000) */
    /* the staged search (sketch pass from 1000 templates on instead of the default size) */
    sketch_kernel_tests();
    sketch_estimator_tests();
    search_tests(20000, NULL, 1, 0, 0, 1000);      /* fastest kernels, int4 */
    search_tests(20000, "c", 1, 0, 4, 1000);       /* reference kernels */
    search_tests(20000, "avx2", 1, 0, 4, 1000);
    search_tests(20000, NULL, 1, 0, 8, 1000);      /* int8 coarse codes */
    search_tests(20000, NULL, 2, 0, 0, 1000);      /* two threads, each with its own stages */
    sketch_edit_tests(200);                        /* 256-bit sketches, add / remove after the build */
    sketch_edit_tests(512);
    edit_tests();
    faiss_tests();
    concurrency_tests();
    return fk_t_finish();
}
