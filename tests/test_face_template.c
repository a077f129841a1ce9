/*
 * test_face_template.c — the .fkt template format and the model-id guard: serialize/parse and save/load
 * round trips are exact; every truncation and every single-bit flip is refused; a newer format version is
 * FK_EMISMATCH; a template from another model (id or dimension) is refused by fk_compare, never compared.
 */
#include "facekit.h"
#include "fk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fk_engine_t *open_engine(void) {
    const char *d = getenv("FK_MODELS_DIR");
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = d && *d ? d : "models";
    o.models = FK_ENGINE_FEATURE;
    fk_engine_t *e = NULL;
    int rc = fk_engine_open(&o, &e);
    if (rc) fprintf(stderr, "engine: %s\n", fk_engine_errmsg(e));
    FK_CHECK_INT(rc, FK_OK);
    if (rc) {
        fk_engine_close(e);
        return NULL;
    }
    return e;
}

static void make(const fk_engine_t *e, fk_template_t *t, unsigned seed) {
    fk_engine_info_t info;
    FK_CHECK_INT(fk_engine_info(e, &info), FK_OK);
    memset(t, 0, sizeof *t);
    snprintf(t->model_id, sizeof t->model_id, "%s", info.model_id);
    t->dim = info.dim;
    double n = 0;
    for (int i = 0; i < t->dim; i++) {
        seed = seed * 1103515245u + 12345u;
        t->v[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
        n += t->v[i] * t->v[i];
    }
    for (int i = 0; i < t->dim; i++) t->v[i] = (float)(t->v[i] / sqrt(n));
}

static void test_round_trip(const fk_engine_t *e) {
    fk_engine_info_t info;
    fk_engine_info(e, &info);
    FK_CHECK(!strncmp(info.model_id, "fr_feature:", 11));
    FK_CHECK_INT(strlen(info.model_id), 11 + 16);
    FK_CHECK_INT(info.dim, 512);
    fk_template_t a, b;
    make(e, &a, 1);
    a.flags = FK_EMBED_FLIP;
    uint8_t buf[4096];
    size_t n = 0;
    FK_CHECK_INT(fk_template_serialized_size(&a), 68 + 4 * 512);
    FK_CHECK_INT(fk_template_serialize(&a, buf, 100, &n), FK_ELIMIT);
    FK_CHECK_INT(n, 68 + 4 * 512);
    FK_CHECK_INT(fk_template_serialize(&a, buf, sizeof buf, &n), FK_OK);
    FK_CHECK(!memcmp(buf, "FKT1", 4));
    FK_CHECK_INT(buf[4] | buf[5] << 8, 1); /* format version */
    FK_CHECK_INT(fk_template_parse(buf, n, &b), FK_OK);
    FK_CHECK(!memcmp(&a, &b, sizeof a));
    FK_CHECK_INT(fk_engine_check_template(e, &b), FK_OK);
    fk_match_t m;
    FK_CHECK_INT(fk_compare(e, &a, &b, -1, &m), FK_OK);
    FK_CHECK_NEAR(m.cosine, 1.0, 1e-6);
    FK_CHECK(m.same);

    /* file round trip */
    char path[64];
    snprintf(path, sizeof path, "/tmp/fk_test_face_template_%d.fkt", (int)getpid());
    FK_CHECK_INT(fk_template_save(&a, path), FK_OK);
    memset(&b, 0, sizeof b);
    FK_CHECK_INT(fk_template_load(path, &b), FK_OK);
    FK_CHECK(!memcmp(&a, &b, sizeof a));
    remove(path);
    FK_CHECK_INT(fk_template_load(path, &b), FK_EIO);
    FK_CHECK_INT(fk_template_save(&a, "/nonexistent-dir/x.fkt"), FK_EIO);

    /* every truncation is refused */
    int accepted = 0;
    for (size_t k = 0; k < n; k++)
        if (fk_template_parse(buf, k, &b) == FK_OK) accepted++;
    FK_CHECK_INT(accepted, 0);
    /* a trailing byte too */
    buf[n] = 0;
    FK_CHECK_INT(fk_template_parse(buf, n + 1, &b), FK_EFORMAT);
    /* every single-bit flip is refused (CRC-32 detects all of them) */
    accepted = 0;
    for (size_t k = 0; k < n; k++)
        for (int bit = 0; bit < 8; bit++) {
            buf[k] ^= (uint8_t)(1u << bit);
            if (fk_template_parse(buf, n, &b) == FK_OK) accepted++;
            buf[k] ^= (uint8_t)(1u << bit);
        }
    FK_CHECK_INT(accepted, 0);
    FK_CHECK_INT(fk_template_parse(buf, n, &b), FK_OK);
    /* a newer version (with a valid CRC) is a mismatch, not garbage */
    fk_template_t v2 = a;
    FK_CHECK_INT(fk_template_serialize(&v2, buf, sizeof buf, &n), FK_OK);
    buf[4] = 2;
    uint32_t c = 0xffffffffu; /* recompute the CRC the way the format defines it */
    for (size_t i = 0; i < n - 4; i++) {
        c ^= buf[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    c ^= 0xffffffffu;
    for (int i = 0; i < 4; i++) buf[n - 4 + i] = (uint8_t)(c >> (8 * i));
    FK_CHECK_INT(fk_template_parse(buf, n, &b), FK_EMISMATCH);
    memcpy(buf, "XKT1", 4);
    FK_CHECK_INT(fk_template_parse(buf, n, &b), FK_EFORMAT);
    FK_CHECK_INT(fk_template_parse(NULL, n, &b), FK_EINVAL);
}

static void test_other_model(const fk_engine_t *e) {
    fk_template_t a, other;
    make(e, &a, 7);
    make(e, &other, 7); /* identical values ... */
    snprintf(other.model_id, sizeof other.model_id, "fr_feature:0123456789abcdef"); /* ... other model */
    fk_match_t m;
    memset(&m, 0, sizeof m);
    FK_CHECK_INT(fk_engine_check_template(e, &other), FK_EMISMATCH);
    FK_CHECK_INT(fk_compare(e, &a, &other, -1, &m), FK_EMISMATCH);
    FK_CHECK_INT(fk_compare(e, &other, &a, 0.5, &m), FK_EMISMATCH);
    FK_CHECK_NEAR(m.cosine, 0, 0); /* never computed */
    /* it survives a file round trip with its id, and is still refused */
    uint8_t buf[4096];
    size_t n;
    fk_template_t back;
    FK_CHECK_INT(fk_template_serialize(&other, buf, sizeof buf, &n), FK_OK);
    FK_CHECK_INT(fk_template_parse(buf, n, &back), FK_OK);
    FK_CHECK_STR(back.model_id, "fr_feature:0123456789abcdef");
    FK_CHECK_INT(fk_compare(e, &a, &back, -1, &m), FK_EMISMATCH);
    /* same id, other dimension */
    fk_template_t small = a;
    small.dim = 128;
    FK_CHECK_INT(fk_compare(e, &a, &small, -1, &m), FK_EMISMATCH);
    /* bad arguments */
    FK_CHECK_INT(fk_compare(e, &a, &a, 1.5, &m), FK_EINVAL);
    FK_CHECK_INT(fk_compare(e, &a, &a, NAN, &m), FK_EINVAL);
    FK_CHECK_INT(fk_compare(NULL, &a, &a, -1, &m), FK_EINVAL);
    fk_template_t bad = a;
    bad.dim = 0;
    FK_CHECK_INT(fk_template_serialize(&bad, buf, sizeof buf, &n), FK_EINVAL);
}

static void test_scores(const fk_engine_t *e) {
    /* score is monotone in cosine and the threshold override is applied as given */
    fk_template_t a, b;
    make(e, &a, 3);
    double prev = -1;
    for (int k = 0; k <= 10; k++) {
        b = a;
        double t = k / 10.0; /* mix a with an orthogonal-ish vector */
        fk_template_t r;
        make(e, &r, 99);
        double n = 0;
        for (int i = 0; i < b.dim; i++) {
            b.v[i] = (float)(t * a.v[i] + (1 - t) * r.v[i]);
            n += b.v[i] * b.v[i];
        }
        for (int i = 0; i < b.dim; i++) b.v[i] = (float)(b.v[i] / sqrt(n));
        fk_match_t m;
        FK_CHECK_INT(fk_compare(e, &a, &b, 0.25, &m), FK_OK);
        FK_CHECK(m.score >= prev);
        FK_CHECK(m.score >= 0 && m.score <= 1);
        FK_CHECK_NEAR(m.threshold, 0.25, 0);
        FK_CHECK_INT(m.same, m.score >= 0.25);
        prev = m.score;
    }
}

int main(void) {
    fk_engine_t *e = open_engine();
    if (e) {
        test_round_trip(e);
        test_other_model(e);
        test_scores(e);
    }
    fk_engine_close(e);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
