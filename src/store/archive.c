/*
 * archive.c — gallery export and import (src/store): every person with their faces (templates and source
 * images) in one versioned file, encrypted with a key derived from the data key (AES-256-GCM) or, on
 * request, plain with a SHA-256 trailer. The format is described in facekit.h (Store). Import verifies
 * the whole file and every template's model before writing anything.
 */
#include "store/store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const fk__keys_t *fk__store_keys(const fk_store_t *s);

#define AR_MAGIC "FKGALLRY"
#define AR_VERSION 1u
#define AR_HEAD 20

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf_t;

static void put(wbuf_t *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n) c *= 2;
        uint8_t *p = fk__realloc(b->p, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = c;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(wbuf_t *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(wbuf_t *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(wbuf_t *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    put(b, s ? s : "", n);
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int bad;
} rbuf_t;

static const uint8_t *get(rbuf_t *r, size_t n) {
    if (r->bad || n > r->n - r->off) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}
static uint32_t get_u32(rbuf_t *r) {
    const uint8_t *x = get(r, 4);
    return x ? (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24 : 0;
}
static uint64_t get_u64(rbuf_t *r) {
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}
/* a string copied into a NUL-terminated buffer of the caller (at most CAP - 1 bytes, else bad) */
static void get_str(rbuf_t *r, char *dst, size_t cap) {
    uint32_t n = get_u32(r);
    const uint8_t *s = n < cap ? get(r, n) : NULL;
    if (!s) {
        r->bad = 1;
        dst[0] = 0;
        return;
    }
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* the archive key is its own derivation of the data key: archives never share a key with records */
static int arch_key(const fk__keys_t *k, uint8_t out[32]) {
    memcpy(out, k->archive, 32);
    return FK_OK;
}

typedef struct {
    fk_store_t *s;
    wbuf_t *b;
    size_t faces;
    int rc;
} exp_t;

int fk_store_export(fk_store_t *s, const char *path, int encrypt, size_t *persons, size_t *faces) {
    if (!s || !path) return FK_EINVAL;
    fk_person_t *pl = NULL;
    size_t np = 0, nf = 0;
    int rc = fk_store_person_list(s, NULL, &pl, &np);
    if (rc) return rc;
    wbuf_t b = {0};
    for (size_t i = 0; i < np && !rc; i++) {
        fk_face_record_t *fl = NULL;
        size_t n = 0;
        rc = fk_store_face_list(s, pl[i].id, 1, &fl, &n);
        if (rc) break;
        put(&b, "P", 1);
        put_u64(&b, (uint64_t)pl[i].id);
        put_str(&b, pl[i].name);
        put_str(&b, pl[i].external_id);
        put_str(&b, pl[i].group);
        put_str(&b, pl[i].metadata);
        put_u64(&b, (uint64_t)pl[i].created_at);
        put_u64(&b, (uint64_t)pl[i].updated_at);
        put_u32(&b, (uint32_t)n);
        for (size_t j = 0; j < n; j++) {
            put(&b, "F", 1);
            put_str(&b, fl[j].model_id);
            put_u32(&b, (uint32_t)fl[j].dim);
            uint32_t qb;
            memcpy(&qb, &fl[j].quality, 4);
            put_u32(&b, qb);
            put_u64(&b, (uint64_t)fl[j].created_at);
            put(&b, fl[j].tmpl, (size_t)fl[j].dim * sizeof(float)); /* little-endian hosts only (x86-64) */
            put_u32(&b, (uint32_t)fl[j].image_size);
            if (fl[j].image_size) put(&b, fl[j].image, fl[j].image_size);
        }
        nf += n;
        fk_free(fl);
    }
    fk_free(pl);
    put(&b, "E", 1);
    put_u64(&b, np);
    put_u64(&b, nf);
    if (!rc && b.oom) rc = FK_ENOMEM;
    uint8_t head[AR_HEAD];
    memcpy(head, AR_MAGIC, 8);
    uint32_t hv[3] = {AR_VERSION, encrypt ? 1u : 0u, 0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) head[8 + 4 * i + j] = (uint8_t)(hv[i] >> (8 * j));
    FILE *f = NULL;
    if (!rc) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        f = fopen(tmp, "wb");
        if (!f) rc = FK_EIO;
        uint8_t trailer[32], nonce[12], key[32];
        if (!rc && encrypt) {
            /* body encrypted in place */
            EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
            int len = 0, ok = c && RAND_bytes(nonce, 12) == 1 && arch_key(fk__store_keys(s), key) == FK_OK;
            ok = ok && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1;
            ok = ok && EVP_EncryptUpdate(c, NULL, &len, head, AR_HEAD) == 1;
            ok = ok && b.n < (size_t)1 << 31 && EVP_EncryptUpdate(c, b.p, &len, b.p, (int)b.n) == 1;
            ok = ok && EVP_EncryptFinal_ex(c, b.p + b.n, &len) == 1;
            ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, trailer) == 1;
            EVP_CIPHER_CTX_free(c);
            OPENSSL_cleanse(key, sizeof key);
            if (!ok) rc = FK_EINTERNAL;
        } else if (!rc) {
            EVP_MD_CTX *m = EVP_MD_CTX_new();
            unsigned int len = 32;
            int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(m, head, AR_HEAD) == 1 &&
                     EVP_DigestUpdate(m, b.p, b.n) == 1 && EVP_DigestFinal_ex(m, trailer, &len) == 1;
            EVP_MD_CTX_free(m);
            if (!ok) rc = FK_EINTERNAL;
        }
        if (!rc) {
            int ok = fwrite(head, 1, AR_HEAD, f) == AR_HEAD && (!encrypt || fwrite(nonce, 1, 12, f) == 12) &&
                     fwrite(b.p, 1, b.n, f) == b.n && fwrite(trailer, 1, encrypt ? 16 : 32, f) == (encrypt ? 16u : 32u);
            ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
            if (!ok) rc = FK_EIO;
        }
        if (f && fclose(f) != 0) rc = rc ? rc : FK_EIO;
        if (!rc && rename(tmp, path) != 0) rc = FK_EIO;
        if (rc) remove(tmp);
    }
    if (b.p) OPENSSL_cleanse(b.p, b.cap);
    fk__free(b.p);
    if (!rc) {
        if (persons) *persons = np;
        if (faces) *faces = nf;
    }
    return rc;
}

/* one pass over the body: ADD = 0 only checks, ADD = 1 writes */
static int walk(fk_store_t *s, rbuf_t *r, const char *model_id, int add, size_t *np_out, size_t *nf_out) {
    size_t np = 0, nf = 0;
    static char name[4096], ext[1024], group[1024], meta[65536], model[256];
    for (;;) {
        const uint8_t *t = get(r, 1);
        if (!t) return FK_EFORMAT;
        if (*t == 'E') {
            uint64_t a = get_u64(r), b = get_u64(r);
            if (r->bad || a != np || b != nf || r->off != r->n) return FK_EFORMAT;
            break;
        }
        if (*t != 'P') return FK_EFORMAT;
        get_u64(r);
        get_str(r, name, sizeof name);
        get_str(r, ext, sizeof ext);
        get_str(r, group, sizeof group);
        get_str(r, meta, sizeof meta);
        int64_t created = (int64_t)get_u64(r), updated = (int64_t)get_u64(r);
        (void)created;
        (void)updated;
        uint32_t n = get_u32(r);
        if (r->bad || n > 10000) return FK_EFORMAT;
        fk_face_record_t *f = n ? fk__calloc(n, sizeof *f) : NULL;
        char (*models)[256] = n ? fk__calloc(n, 256) : NULL;
        float **tmpls = n ? fk__calloc(n, sizeof *tmpls) : NULL; /* aligned copies: the body is byte-packed */
        if (n && (!f || !models || !tmpls)) {
            fk__free(f);
            fk__free(models);
            fk__free(tmpls);
            return FK_ENOMEM;
        }
        int rc = FK_OK;
        for (uint32_t j = 0; j < n && !rc; j++) {
            const uint8_t *ft = get(r, 1);
            get_str(r, model, sizeof model);
            uint32_t dim = get_u32(r), qb = get_u32(r);
            int64_t fc = (int64_t)get_u64(r);
            const uint8_t *tm = dim >= 1 && dim <= 65536 ? get(r, (size_t)dim * 4) : NULL;
            uint32_t il = get_u32(r);
            const uint8_t *im = il ? get(r, il) : NULL;
            if (r->bad || !ft || *ft != 'F' || !tm) {
                rc = FK_EFORMAT;
                break;
            }
            if (model_id && strcmp(model, model_id)) rc = FK_EMISMATCH;
            memcpy(models[j], model, sizeof model);
            if (!rc && add) {
                tmpls[j] = fk__malloc((size_t)dim * sizeof(float));
                if (!tmpls[j]) {
                    rc = FK_ENOMEM;
                    break;
                }
                memcpy(tmpls[j], tm, (size_t)dim * sizeof(float));
            }
            float qf;
            memcpy(&qf, &qb, 4);
            f[j] = (fk_face_record_t){0, 0, models[j], tmpls[j], (int)dim, im, il, qf, fc};
        }
        if (!rc && add) {
            fk_person_t p = {0, name, ext[0] ? ext : NULL, group[0] ? group : NULL, meta[0] ? meta : NULL, 0, 0, 0};
            rc = fk_store_person_add(s, &p, f, n, NULL, NULL);
        }
        for (uint32_t j = 0; j < n; j++) {
            if (tmpls[j]) OPENSSL_cleanse(tmpls[j], (size_t)f[j].dim * sizeof(float));
            fk__free(tmpls[j]);
        }
        fk__free(tmpls);
        fk__free(f);
        fk__free(models);
        if (rc) return rc;
        np++;
        nf += n;
    }
    if (np_out) *np_out = np;
    if (nf_out) *nf_out = nf;
    return FK_OK;
}

int fk_store_import(fk_store_t *s, const char *path, const char *model_id, size_t *persons, size_t *faces) {
    if (!s || !path) return FK_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) return FK_EIO;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    if (sz < AR_HEAD + 16 || (unsigned long)sz > ((size_t)1 << 31)) {
        fclose(f);
        return FK_EFORMAT;
    }
    uint8_t *buf = fk__malloc((size_t)sz);
    if (!buf) {
        fclose(f);
        return FK_ENOMEM;
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    int rc = got == (size_t)sz ? FK_OK : FK_EIO;
    uint32_t version = 0, flags = 0;
    if (!rc && memcmp(buf, AR_MAGIC, 8)) rc = FK_EFORMAT;
    if (!rc) {
        for (int j = 3; j >= 0; j--) version = version << 8 | buf[8 + j], flags = flags << 8 | buf[12 + j];
        if (version != AR_VERSION) rc = FK_EMISMATCH;
        else if (flags > 1) rc = FK_EFORMAT;
    }
    const uint8_t *body = NULL;
    size_t bn = 0;
    if (!rc && (flags & 1)) {
        if ((size_t)sz < AR_HEAD + 12 + 16) rc = FK_EFORMAT;
        uint8_t key[32];
        body = buf + AR_HEAD + 12;
        bn = (size_t)sz - AR_HEAD - 12 - 16;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int len = 0, ok = !rc && c && arch_key(fk__store_keys(s), key) == FK_OK;
        ok = ok && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf + AR_HEAD) == 1;
        ok = ok && EVP_DecryptUpdate(c, NULL, &len, buf, AR_HEAD) == 1;
        ok = ok && EVP_DecryptUpdate(c, (uint8_t *)body, &len, body, (int)bn) == 1;
        ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, buf + (size_t)sz - 16) == 1;
        ok = ok && EVP_DecryptFinal_ex(c, (uint8_t *)body + len, &len) == 1;
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(key, sizeof key);
        if (!rc && !ok) rc = FK_EAUTH; /* another data key, or altered */
    } else if (!rc) {
        body = buf + AR_HEAD;
        bn = (size_t)sz - AR_HEAD - 32;
        uint8_t d[32];
        unsigned int len = 32;
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(m, buf, AR_HEAD + bn) == 1 &&
                 EVP_DigestFinal_ex(m, d, &len) == 1;
        EVP_MD_CTX_free(m);
        if (!ok || memcmp(d, buf + AR_HEAD + bn, 32)) rc = FK_ECHECKSUM;
    }
    size_t np = 0, nf = 0;
    if (!rc) {
        rbuf_t r = {body, bn, 0, 0};
        rc = walk(s, &r, model_id, 0, NULL, NULL); /* everything checked before anything is written */
    }
    if (!rc) {
        rbuf_t r = {body, bn, 0, 0};
        rc = walk(s, &r, model_id, 1, &np, &nf);
    }
    OPENSSL_cleanse(buf, (size_t)sz);
    fk__free(buf);
    if (!rc) {
        if (persons) *persons = np;
        if (faces) *faces = nf;
    }
    return rc;
}
