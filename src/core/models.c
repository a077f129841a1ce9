/*
 * models.c — checks model files on disk against models/models.lock (SHA-256 per file), so that a missing or
 * corrupted model is named before anything tries to run it. Hashing uses OpenSSL's EVP interface.
 */
#include "core.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int fk_sha256_file(const char *path, char hex_out[65], uint64_t *size_out) {
    if (!path || !hex_out) return FK_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) return FK_ENOTFOUND;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        fclose(f);
        return FK_ENOMEM;
    }
    int rc = FK_OK;
    uint64_t total = 0;
    unsigned char buf[1 << 16];
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) rc = FK_EINTERNAL;
    while (rc == FK_OK) {
        size_t got = fread(buf, 1, sizeof buf, f);
        if (got > 0 && EVP_DigestUpdate(ctx, buf, got) != 1) rc = FK_EINTERNAL;
        total += got;
        if (got < sizeof buf) {
            if (ferror(f)) rc = FK_EIO;
            break;
        }
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (rc == FK_OK && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) rc = FK_EINTERNAL;
    EVP_MD_CTX_free(ctx);
    fclose(f);
    if (rc != FK_OK) return rc;
    for (unsigned i = 0; i < 32; i++) snprintf(hex_out + 2 * i, 3, "%02x", md[i]);
    if (size_out) *size_out = total;
    return FK_OK;
}

int fk_models_verify(const char *models_dir, const char *lock_path, fk_model_file_check_t **out, size_t *n,
                     char *errbuf, size_t errbuf_size) {
    if (!models_dir || !lock_path || !out || !n) return FK_EINVAL;
    *out = NULL;
    *n = 0;
    FILE *lock = fopen(lock_path, "r");
    if (!lock) {
        fk__seterr(errbuf, errbuf_size, "cannot open %s", lock_path);
        return FK_ENOTFOUND;
    }
    size_t cap = 0, count = 0;
    fk_model_file_check_t *res = NULL;
    char line[1024];
    int rc = FK_OK;
    while (fgets(line, sizeof line, lock)) {
        char kind[16], dir[128], name[128], sha[80];
        if (line[0] == '#' || sscanf(line, "%15s %127s %127s %79s", kind, dir, name, sha) != 4) continue;
        if (strcmp(kind, "file") != 0) continue;
        if (strlen(sha) != 64) {
            fk__seterr(errbuf, errbuf_size, "%s: bad sha256 for %s/%s", lock_path, dir, name);
            rc = FK_EFORMAT;
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            fk_model_file_check_t *r = fk__realloc(res, ncap * sizeof *r);
            if (!r) {
                rc = FK_ENOMEM;
                break;
            }
            res = r;
            cap = ncap;
        }
        fk_model_file_check_t *c = &res[count++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s/%s", dir, name);
        char path[2048];
        snprintf(path, sizeof path, "%s/%s/%s", models_dir, dir, name);
        int hr = fk_sha256_file(path, c->sha256, &c->size);
        if (hr == FK_ENOTFOUND) {
            snprintf(c->problem, sizeof c->problem, "missing (run scripts/setup)");
        } else if (hr != FK_OK) {
            snprintf(c->problem, sizeof c->problem, "cannot read: %s", fk_status_str(hr));
        } else if (strcmp(c->sha256, sha) != 0) {
            snprintf(c->problem, sizeof c->problem, "sha256 differs from models.lock (expected %.16s...)", sha);
        } else {
            c->ok = 1;
        }
    }
    fclose(lock);
    if (rc != FK_OK) {
        fk__free(res);
        return rc;
    }
    *out = res;
    *n = count;
    return FK_OK;
}
