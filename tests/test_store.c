/*
 * test_store.c — the store (src/store): one suite run against both backends, SQLite in a temporary
 * directory and a real PostgreSQL server started for the test by tests/pg_harness.sh (initdb + pg_ctl,
 * unix socket only, stopped afterwards). Covers the data key (file permissions, creation, environment),
 * migrations, persons/groups/faces (add, update, remove one face), encryption with both ciphers, row
 * binding of ciphertexts, wrong keys, removal, and allocation failures.
 */
#include "fk_test.h"
#include "store/store.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t KEY[FK_DATA_KEY_BYTES], KEY2[FK_DATA_KEY_BYTES];

static void rand_template(float *v, int dim, unsigned seed) {
    double s = 0;
    for (int i = 0; i < dim; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
        s += (double)v[i] * v[i];
    }
    for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(s));
}

static int count_face(void *ctx, int64_t face_id, int64_t person_id, int64_t group_id, const char *model_id,
                      const float *tmpl, int dim) {
    (void)face_id, (void)person_id, (void)group_id, (void)model_id;
    if (dim != 512 || fabsf(tmpl[0]) > 1) return FK_EINTERNAL;
    ++*(int *)ctx;
    return 0;
}

static int contains(const uint8_t *h, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(h + i, needle, m)) return 1;
    return 0;
}

static int row_count(void *ctx, const fk__val_t *c, int n) {
    (void)c;
    (void)n;
    ++*(int *)ctx;
    return 0;
}

typedef struct {
    uint8_t *blob;
    size_t n;
    int64_t id;
} grab_t;

static int row_grab(void *ctx, const fk__val_t *c, int n) {
    grab_t *g = ctx;
    if (n >= 2 && c[1].t == FK__V_BLOB && !g->blob) {
        g->blob = malloc(c[1].n);
        memcpy(g->blob, c[1].p, c[1].n);
        g->n = c[1].n;
        g->id = c[0].i;
    }
    return 0;
}

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void archive_tests(fk_store_t *s, const char *loc) {
    char dir[] = "/tmp/fk_archive_test.XXXXXX", enc[256], plain[256], db2[256], cmd[512];
    if (!mkdtemp(dir)) return;
    snprintf(enc, sizeof enc, "%s/g.fkga", dir);
    snprintf(plain, sizeof plain, "%s/g-plain.fkga", dir);
    snprintf(db2, sizeof db2, "%s/restore.db", dir);
    size_t np = 0, nf = 0, np0 = 0, nf0 = 0;
    fk_store_count(s, &np0, &nf0);
    FK_CHECK_INT(fk_store_export(s, enc, 1, &np, &nf), FK_OK);
    FK_CHECK_INT(np, np0);
    FK_CHECK_INT(nf, nf0);
    FK_CHECK_INT(fk_store_export(s, plain, 0, NULL, NULL), FK_OK);
    fk_store_options_t o = {db2, KEY, 0};
    fk_store_t *r = NULL;
    FK_CHECK_INT(fk_store_open(&o, &r), FK_OK);
    /* another model: refused before anything is written */
    FK_CHECK_INT(fk_store_import(r, enc, "other-model", &np, &nf), FK_EMISMATCH);
    size_t a = 9, b = 9;
    fk_store_count(r, &a, &b);
    FK_CHECK_INT(a, 0);
    FK_CHECK_INT(fk_store_import(r, enc, "m1", &np, &nf), FK_OK);
    FK_CHECK_INT(np, np0);
    FK_CHECK_INT(nf, nf0);
    FK_CHECK_INT(fk_store_import(r, plain, NULL, NULL, NULL), FK_EMISMATCH); /* same external ids again */
    fk_store_count(r, &a, &b);
    FK_CHECK_INT(a, np0); /* the conflicting person came first: nothing more was added */
    /* the restored faces equal the originals */
    fk_person_t *l1 = NULL, *l2 = NULL;
    size_t n1 = 0, n2 = 0;
    fk_store_person_list(s, NULL, &l1, &n1);
    fk_store_person_list(r, NULL, &l2, &n2);
    FK_CHECK_INT(n1, n2);
    int same = 0;
    for (size_t i = 0; i < n1 && i < n2; i++) {
        fk_face_record_t *f1 = NULL, *f2 = NULL;
        size_t k1 = 0, k2 = 0;
        fk_store_face_list(s, l1[i].id, 1, &f1, &k1);
        fk_store_face_list(r, l2[i].id, 1, &f2, &k2);
        int ok = k1 == k2 && !strcmp(l1[i].name, l2[i].name) && !strcmp(l1[i].group, l2[i].group) &&
                 !strcmp(l1[i].external_id, l2[i].external_id);
        for (size_t j = 0; ok && j < k1; j++)
            ok = f1[j].dim == f2[j].dim && !memcmp(f1[j].tmpl, f2[j].tmpl, (size_t)f1[j].dim * 4) &&
                 f1[j].image_size == f2[j].image_size &&
                 (!f1[j].image_size || !memcmp(f1[j].image, f2[j].image, f1[j].image_size));
        same += ok;
        fk_free(f1);
        fk_free(f2);
    }
    FK_CHECK_INT(same, (int)n1);
    fk_free(l1);
    fk_free(l2);
    fk_store_close(r);
    /* wrong key, altered and truncated archives */
    snprintf(db2, sizeof db2, "%s/other.db", dir);
    fk_store_options_t o2 = {db2, KEY2, 0};
    FK_CHECK_INT(fk_store_open(&o2, &r), FK_OK);
    FK_CHECK_INT(fk_store_import(r, enc, NULL, NULL, NULL), FK_EAUTH);
    flip_byte(enc, 100);
    FK_CHECK_INT(fk_store_import(r, enc, NULL, NULL, NULL), FK_EAUTH);
    flip_byte(plain, 100);
    FK_CHECK_INT(fk_store_import(r, plain, NULL, NULL, NULL), FK_ECHECKSUM);
    flip_byte(plain, 0);
    FK_CHECK_INT(fk_store_import(r, plain, NULL, NULL, NULL), FK_EFORMAT);
    FK_CHECK_INT(fk_store_import(r, "/nonexistent/x", NULL, NULL, NULL), FK_EIO);
    fk_store_count(r, &a, &b);
    FK_CHECK_INT(a, 0);
    fk_store_close(r);
    (void)loc;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}

static void suite(const char *loc, const char *name) {
    fprintf(stderr, "-- store suite on %s\n", name);
    fk_store_options_t o = {loc, KEY, 0};
    fk_store_t *s = NULL;
    int rc = fk_store_open(&o, &s);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) {
        fprintf(stderr, "open: %s\n", fk_store_errmsg(s));
        fk_store_close(s);
        return;
    }
    FK_CHECK_STR(fk_store_backend(s), name);
    int ver = 0;
    FK_CHECK_INT(fk_store_schema_version(s, &ver), FK_OK);
    FK_CHECK_INT(ver, 1);

    /* a person with two faces, one with an image */
    float t1[512], t2[512];
    rand_template(t1, 512, 1);
    rand_template(t2, 512, 2);
    static const uint8_t img[] = {0xff, 0xd8, 0xff, 0xe0, 'f', 'a', 'k', 'e', ' ', 'j', 'p', 'g', 0xff, 0xd9};
    fk_face_record_t faces[2] = {{0, 0, "m1", t1, 512, img, sizeof img, 0.9f, 0}, {0, 0, "m1", t2, 512, NULL, 0, 0.5f, 0}};
    fk_person_t p = {0, "Alice Zhang", "110101199001011234", "Building A", "{\"floor\": 3}", 0, 0, 0};
    int64_t pid = 0, fids[2] = {0, 0};
    rc = fk_store_person_add(s, &p, faces, 2, &pid, fids);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) fprintf(stderr, "add: %s\n", fk_store_errmsg(s));
    FK_CHECK(pid > 0 && fids[0] > 0 && fids[1] > fids[0]);

    /* same external id in the same group: refused, nothing written */
    int64_t pid2 = 0;
    fk_person_t dup = {0, "Mallory", "110101199001011234", "Building A", NULL, 0, 0, 0};
    FK_CHECK_INT(fk_store_person_add(s, &dup, faces, 1, &pid2, NULL), FK_EMISMATCH);
    size_t np = 0, nf = 0;
    FK_CHECK_INT(fk_store_count(s, &np, &nf), FK_OK);
    FK_CHECK_INT(np, 1);
    FK_CHECK_INT(nf, 2);
    /* ...but fine in another group, and without a group; invalid metadata is refused */
    dup.group = "Building B";
    FK_CHECK_INT(fk_store_person_add(s, &dup, faces + 1, 1, &pid2, NULL), FK_OK);
    fk_person_t bob = {0, "Bob", NULL, NULL, NULL, 0, 0, 0};
    int64_t pid3 = 0;
    FK_CHECK_INT(fk_store_person_add(s, &bob, NULL, 0, &pid3, NULL), FK_OK);
    bob.metadata = "[1,2]";
    FK_CHECK_INT(fk_store_person_add(s, &bob, NULL, 0, NULL, NULL), FK_EINVAL);
    bob.metadata = "{bad json";
    FK_CHECK_INT(fk_store_person_add(s, &bob, NULL, 0, NULL, NULL), FK_EINVAL);
    float nanv[4] = {0, NAN, 0, 0};
    fk_face_record_t badf = {0, 0, "m1", nanv, 4, NULL, 0, 0, 0};
    FK_CHECK_INT(fk_store_person_add(s, &dup, &badf, 1, NULL, NULL), FK_EINVAL);

    /* read back */
    fk_person_t *pp = NULL;
    FK_CHECK_INT(fk_store_person_get(s, pid, &pp), FK_OK);
    if (pp) {
        FK_CHECK_STR(pp->name, "Alice Zhang");
        FK_CHECK_STR(pp->external_id, "110101199001011234");
        FK_CHECK_STR(pp->group, "Building A");
        FK_CHECK(strstr(pp->metadata, "floor") != NULL);
        FK_CHECK_INT(pp->n_faces, 2);
        FK_CHECK(pp->created_at > 1600000000);
    }
    fk_free(pp);
    FK_CHECK_INT(fk_store_person_get(s, 999999, &pp), FK_ENOTFOUND);
    fk_person_t *list = NULL;
    size_t n = 0;
    FK_CHECK_INT(fk_store_person_list(s, NULL, &list, &n), FK_OK);
    FK_CHECK_INT(n, 3);
    if (n == 3) {
        FK_CHECK_INT(list[0].id, pid);
        FK_CHECK_STR(list[2].name, "Bob");
        FK_CHECK_STR(list[2].group, "");
        FK_CHECK_STR(list[2].metadata, "{}");
    }
    fk_free(list);
    FK_CHECK_INT(fk_store_person_list(s, "Building B", &list, &n), FK_OK);
    FK_CHECK_INT(n, 1);
    if (n == 1) FK_CHECK_STR(list[0].name, "Mallory");
    fk_free(list);
    FK_CHECK_INT(fk_store_person_list(s, "nowhere", &list, &n), FK_OK);
    FK_CHECK_INT(n, 0);
    FK_CHECK(list == NULL);

    fk_face_record_t *fl = NULL;
    FK_CHECK_INT(fk_store_face_list(s, pid, 1, &fl, &n), FK_OK);
    FK_CHECK_INT(n, 2);
    if (n == 2) {
        FK_CHECK_INT(fl[0].id, fids[0]);
        FK_CHECK_INT(fl[0].dim, 512);
        FK_CHECK(!memcmp(fl[0].tmpl, t1, sizeof t1));
        FK_CHECK(!memcmp(fl[1].tmpl, t2, sizeof t2));
        FK_CHECK_INT(fl[0].image_size, sizeof img);
        FK_CHECK(fl[0].image && !memcmp(fl[0].image, img, sizeof img));
        FK_CHECK(fl[1].image == NULL);
        FK_CHECK_STR(fl[0].model_id, "m1");
        FK_CHECK_NEAR(fl[0].quality, 0.9, 1e-6);
    }
    fk_free(fl);
    FK_CHECK_INT(fk_store_face_list(s, pid, 0, &fl, &n), FK_OK);
    if (n == 2) FK_CHECK(fl[0].image == NULL);
    fk_free(fl);

    int64_t gid = 0;
    FK_CHECK_INT(fk_store_group_id(s, "Building A", &gid), FK_OK);
    FK_CHECK(gid > 0);
    FK_CHECK_INT(fk_store_group_id(s, "nowhere", &gid), FK_ENOTFOUND);

    /* faces added later; unknown person refused */
    int64_t f3 = 0;
    FK_CHECK_INT(fk_store_face_add(s, pid3, faces, 1, &f3), FK_OK);
    FK_CHECK_INT(fk_store_face_add(s, 987654, faces, 1, NULL), FK_ENOTFOUND);

    /* update: only the fields given change; the external id stays unique in the (new) group */
    {
        fk_person_t ch = {0, "Robert", NULL, NULL, "{\"k\":1}", 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &ch), FK_OK);
        FK_CHECK_INT(fk_store_person_get(s, pid3, &pp), FK_OK);
        if (pp) {
            FK_CHECK_STR(pp->name, "Robert");
            FK_CHECK_STR(pp->external_id, "");
            FK_CHECK_STR(pp->group, "");
            FK_CHECK(strstr(pp->metadata, "\"k\"") != NULL);
            FK_CHECK_INT(pp->n_faces, 1);
            FK_CHECK(pp->updated_at >= pp->created_at);
        }
        fk_free(pp);
        fk_person_t g = {0, NULL, NULL, "Building B", NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &g), FK_OK);
        FK_CHECK_INT(fk_store_person_list(s, "Building B", &list, &n), FK_OK);
        FK_CHECK_INT(n, 2);
        fk_free(list);
        /* Mallory holds this external id in Building B: refused, nothing written */
        fk_person_t e = {0, NULL, "110101199001011234", NULL, NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &e), FK_EMISMATCH);
        FK_CHECK_INT(fk_store_person_get(s, pid3, &pp), FK_OK);
        if (pp) FK_CHECK_STR(pp->external_id, "");
        fk_free(pp);
        /* moving Mallory to Building A collides with Alice's (unchanged) external id */
        fk_person_t ga = {0, NULL, NULL, "Building A", NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid2, &ga), FK_EMISMATCH);
        FK_CHECK_INT(fk_store_person_get(s, pid2, &pp), FK_OK);
        if (pp) FK_CHECK_STR(pp->group, "Building B");
        fk_free(pp);
        /* several fields at once; "" clears */
        fk_person_t both = {0, "Bob", "B-7", "", NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &both), FK_OK);
        FK_CHECK_INT(fk_store_person_get(s, pid3, &pp), FK_OK);
        if (pp) {
            FK_CHECK_STR(pp->name, "Bob");
            FK_CHECK_STR(pp->external_id, "B-7");
            FK_CHECK_STR(pp->group, "");
            FK_CHECK(strstr(pp->metadata, "\"k\"") != NULL);
        }
        fk_free(pp);
        fk_person_t clr = {0, NULL, "", NULL, NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &clr), FK_OK);
        FK_CHECK_INT(fk_store_person_get(s, pid3, &pp), FK_OK);
        if (pp) FK_CHECK_STR(pp->external_id, "");
        fk_free(pp);
        /* errors */
        FK_CHECK_INT(fk_store_person_update(s, 999999, &ch), FK_ENOTFOUND);
        fk_person_t bad = {0, "", NULL, NULL, NULL, 0, 0, 0};
        FK_CHECK_INT(fk_store_person_update(s, pid3, &bad), FK_EINVAL);
        bad.name = NULL;
        bad.metadata = "[1]";
        FK_CHECK_INT(fk_store_person_update(s, pid3, &bad), FK_EINVAL);
        FK_CHECK_INT(fk_store_person_update(s, pid3, NULL), FK_EINVAL);
    }
    /* one face removed: only that one, only from its own person */
    {
        int64_t f4 = 0;
        FK_CHECK_INT(fk_store_face_add(s, pid3, faces, 1, &f4), FK_OK);
        FK_CHECK_INT(fk_store_face_remove(s, pid, f4), FK_ENOTFOUND); /* not Alice's */
        FK_CHECK_INT(fk_store_face_list(s, pid3, 1, &fl, &n), FK_OK);
        FK_CHECK_INT(n, 2);
        fk_free(fl);
        FK_CHECK_INT(fk_store_face_remove(s, pid3, f4), FK_OK);
        FK_CHECK_INT(fk_store_face_remove(s, pid3, f4), FK_ENOTFOUND);
        FK_CHECK_INT(fk_store_face_list(s, pid3, 1, &fl, &n), FK_OK);
        FK_CHECK_INT(n, 1);
        if (n == 1) FK_CHECK_INT(fl[0].id, f3);
        fk_free(fl);
    }

    /* SM4 store handle: writes SM4 records; both handles read both kinds */
    fk_store_options_t o2 = {loc, KEY, FK_CIPHER_SM4_CTR_HMAC_SM3};
    fk_store_t *s2 = NULL;
    FK_CHECK_INT(fk_store_open(&o2, &s2), FK_OK);
    int64_t psm = 0, fsm = 0;
    fk_person_t carol = {0, "Carol", "C-1", "Building A", NULL, 0, 0, 0};
    FK_CHECK_INT(fk_store_person_add(s2, &carol, faces, 1, &psm, &fsm), FK_OK);
    FK_CHECK_INT(fk_store_face_list(s, psm, 1, &fl, &n), FK_OK);
    FK_CHECK_INT(n, 1);
    if (n == 1) {
        FK_CHECK(!memcmp(fl[0].tmpl, t1, sizeof t1));
        FK_CHECK(fl[0].image && !memcmp(fl[0].image, img, sizeof img));
    }
    fk_free(fl);
    FK_CHECK_INT(fk_store_face_list(s2, pid, 1, &fl, &n), FK_OK);
    FK_CHECK_INT(n, 2);
    fk_free(fl);
    fk_store_close(s2);

    /* the raw rows: cipher bytes, and a ciphertext moved to another row fails authentication */
    fk__db_t *db = NULL;
    char err[256];
    rc = name[0] == 's' ? fk__db_sqlite_open(loc, &db, err, sizeof err) : fk__db_pg_open(loc, &db, err, sizeof err);
    FK_CHECK_INT(rc, FK_OK);
    if (db) {
        grab_t a = {0}, b = {0};
        fk__val_t p1[1] = {fk__vint(fsm)}, p2[1] = {fk__vint(fids[0])};
        db->ops->query(db, "SELECT id, template FROM fk_faces WHERE id = $1", p1, 1, row_grab, &a);
        db->ops->query(db, "SELECT id, template FROM fk_faces WHERE id = $1", p2, 1, row_grab, &b);
        FK_CHECK(a.blob && a.blob[0] == 1 && a.blob[1] == FK_CIPHER_SM4_CTR_HMAC_SM3);
        FK_CHECK(b.blob && b.blob[0] == 1 && b.blob[1] == FK_CIPHER_AES256_GCM);
        FK_CHECK_INT(a.n, 2 + 16 + 2048 + 32);
        FK_CHECK_INT(b.n, 2 + 12 + 2048 + 16);
        /* swap: Carol's template into Alice's first face row */
        fk__val_t u[2] = {fk__vblob(a.blob, a.n), fk__vint(fids[0])};
        FK_CHECK_INT(db->ops->query(db, "UPDATE fk_faces SET template = $1 WHERE id = $2", u, 2, NULL, NULL), FK_OK);
        FK_CHECK_INT(fk_store_face_list(s, pid, 0, &fl, &n), FK_EAUTH);
        FK_CHECK(strstr(fk_store_errmsg(s), "authentication") != NULL);
        /* a flipped bit in the right row fails too */
        b.blob[b.n / 2] ^= 1;
        fk__val_t u2[2] = {fk__vblob(b.blob, b.n), fk__vint(fids[0])};
        db->ops->query(db, "UPDATE fk_faces SET template = $1 WHERE id = $2", u2, 2, NULL, NULL);
        FK_CHECK_INT(fk_store_face_list(s, pid, 0, &fl, &n), FK_EAUTH);
        b.blob[b.n / 2] ^= 1; /* restore */
        db->ops->query(db, "UPDATE fk_faces SET template = $1 WHERE id = $2", u2, 2, NULL, NULL);
        FK_CHECK_INT(fk_store_face_list(s, pid, 0, &fl, &n), FK_OK);
        fk_free(fl);
        free(a.blob);
        free(b.blob);
    }

    /* foreach: every face once, in id order, decrypted */
    int cnt = 0;
    FK_CHECK_INT(fk_store_face_foreach(s, NULL, NULL), FK_EINVAL);
    FK_CHECK_INT(fk_store_face_foreach(s, count_face, &cnt), FK_OK);
    FK_CHECK_INT(cnt, 5);
    FK_CHECK_INT(fk_store_count(s, &np, &nf), FK_OK);
    FK_CHECK_INT(np, 4);
    FK_CHECK_INT(nf, 5);

    /* remove: rows really gone */
    FK_CHECK_INT(fk_store_person_remove(s, pid), FK_OK);
    FK_CHECK_INT(fk_store_person_remove(s, pid), FK_ENOTFOUND);
    FK_CHECK_INT(fk_store_person_get(s, pid, &pp), FK_ENOTFOUND);
    FK_CHECK_INT(fk_store_count(s, &np, &nf), FK_OK);
    FK_CHECK_INT(np, 3);
    FK_CHECK_INT(nf, 3);
    if (db) {
        cnt = 0;
        fk__val_t p1[1] = {fk__vint(pid)};
        db->ops->query(db, "SELECT id FROM fk_faces WHERE person_id = $1", p1, 1, row_count, &cnt);
        FK_CHECK_INT(cnt, 0);
        db->ops->close(db);
    }

    /* export / import: encrypted and plain archives into a fresh SQLite store */
    archive_tests(s, loc);

    /* allocation failures: every failure point returns an error, never crashes or leaks */
    size_t before = fk_mem_in_use();
    int ok_after = 0;
    for (long i = 1; i < 200 && !ok_after; i++) {
        fk__alloc_fail_at(i);
        fk_face_record_t *x = NULL;
        rc = fk_store_face_list(s, pid3, 1, &x, &n);
        fk__alloc_fail_at(0);
        if (rc == FK_OK) ok_after = 1;
        else FK_CHECK(rc == FK_ENOMEM);
        fk_free(x);
    }
    FK_CHECK(ok_after);
    FK_CHECK_INT(fk_mem_in_use(), before);
    fk_store_close(s);

    /* another key: refused at open */
    fk_store_options_t o3 = {loc, KEY2, 0};
    FK_CHECK_INT(fk_store_open(&o3, &s), FK_EAUTH);
    fk_store_close(s);
    /* reopen: schema stays at version 1, data intact */
    FK_CHECK_INT(fk_store_open(&o, &s), FK_OK);
    FK_CHECK_INT(fk_store_count(s, &np, &nf), FK_OK);
    FK_CHECK_INT(np, 3);
    fk_store_close(s);
}

static void key_tests(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/facekit.key", dir);
    uint8_t k[32], k2[32];
    int created = 0;
    char err[256];
    unsetenv("FK_DATA_KEY");
    FK_CHECK_INT(fk_data_key_load(path, 0, k, &created, err, sizeof err), FK_ENOTFOUND);
    FK_CHECK_INT(fk_data_key_load(path, 1, k, &created, err, sizeof err), FK_OK);
    FK_CHECK_INT(created, 1);
    struct stat st;
    FK_CHECK_INT(stat(path, &st), 0);
    FK_CHECK_INT(st.st_mode & 0777, 0600);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_OK);
    FK_CHECK_INT(created, 0);
    FK_CHECK(!memcmp(k, k2, 32));
    chmod(path, 0644);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_EDENIED);
    FK_CHECK(strstr(err, "0600") != NULL);
    chmod(path, 0640);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_EDENIED);
    chmod(path, 0400);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_OK);
    setenv("FK_DATA_KEY", "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF", 1);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_OK);
    FK_CHECK_INT(k2[1], 0x11);
    FK_CHECK_INT(k2[31], 0xff);
    setenv("FK_DATA_KEY", "0011zz", 1);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_EINVAL);
    unsetenv("FK_DATA_KEY");
    FILE *f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    chmod(path, 0600);
    FK_CHECK_INT(fk_data_key_load(path, 1, k2, &created, err, sizeof err), FK_EFORMAT);
}

/* record sealing on its own: both ciphers, AAD binding, truncation */
static void seal_tests(void) {
    fk__keys_t k;
    FK_CHECK_INT(fk__keys_derive(KEY, &k), FK_OK);
    const char msg[] = "template bytes";
    for (int c = 1; c <= 2; c++) {
        uint8_t *r = NULL, *p = NULL, *r2 = NULL;
        size_t rn, pn, rn2;
        FK_CHECK_INT(fk__seal(&k, (fk_cipher_t)c, "facekit:template:1:2", msg, sizeof msg, &r, &rn), FK_OK);
        FK_CHECK_INT(fk__seal(&k, (fk_cipher_t)c, "facekit:template:1:2", msg, sizeof msg, &r2, &rn2), FK_OK);
        FK_CHECK(rn == rn2 && memcmp(r, r2, rn) != 0); /* fresh nonce each time */
        FK_CHECK(!contains(r, rn, "template", 8));
        FK_CHECK_INT(fk__open(&k, "facekit:template:1:2", r, rn, &p, &pn), FK_OK);
        FK_CHECK(pn == sizeof msg && !memcmp(p, msg, pn));
        fk__free(p);
        FK_CHECK_INT(fk__open(&k, "facekit:template:1:3", r, rn, &p, &pn), FK_EAUTH);
        FK_CHECK_INT(fk__open(&k, "facekit:image:1:2", r, rn, &p, &pn), FK_EAUTH);
        FK_CHECK_INT(fk__open(&k, "facekit:template:1:2", r, rn - 1, &p, &pn), FK_EAUTH);
        FK_CHECK_INT(fk__open(&k, "facekit:template:1:2", r, 5, &p, &pn), FK_EFORMAT);
        r[1] = 9;
        FK_CHECK_INT(fk__open(&k, "facekit:template:1:2", r, rn, &p, &pn), FK_EFORMAT);
        fk__free(r);
        fk__free(r2);
    }
    fk__keys_wipe(&k);
}

int main(void) {
    for (int i = 0; i < 32; i++) {
        KEY[i] = (uint8_t)(i * 7 + 1);
        KEY2[i] = (uint8_t)(i * 7 + 2);
    }
    char dir[] = "/tmp/fk_store_test.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    key_tests(dir);
    seal_tests();

    char db[600];
    snprintf(db, sizeof db, "%s/facekit.db", dir);
    suite(db, "sqlite");

    /* PostgreSQL: a real server for this test only */
    const char *src = getenv("FK_SOURCE_DIR");
    char pgdir[] = "/tmp/fkpg.XXXXXX", cmd[1400], url[600] = "";
    FK_CHECK(src != NULL && mkdtemp(pgdir) != NULL);
    if (src) {
        snprintf(cmd, sizeof cmd, "bash '%s/tests/pg_harness.sh' start '%s'", src, pgdir);
        FILE *pf = popen(cmd, "r");
        if (pf && fgets(url, sizeof url, pf)) url[strcspn(url, "\n")] = 0;
        int st = pf ? pclose(pf) : -1;
        FK_CHECK_INT(st, 0);
        FK_CHECK(!strncmp(url, "postgresql://", 13));
        if (st == 0 && url[0]) suite(url, "postgresql");
        else fprintf(stderr, "PostgreSQL could not be started (see above): the PostgreSQL suite FAILED\n");
        snprintf(cmd, sizeof cmd, "bash '%s/tests/pg_harness.sh' stop '%s'; rm -rf '%s'", src, pgdir, pgdir);
        if (system(cmd) != 0) fprintf(stderr, "pg_harness stop failed\n");
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return fk_t_finish();
}
