/*
 * crypt.c — encryption at rest for the store layer: the data key (key file or FK_DATA_KEY), key derivation,
 * and sealing/opening of single records with AES-256-GCM or SM4-CTR + HMAC-SM3 (encrypt-then-MAC; OpenSSL
 * 3.0 has no SM4-GCM). Every record gets a fresh random nonce and is bound to its row by associated data.
 * Below the store, above core; uses OpenSSL's EVP and EVP_MAC interfaces only.
 */
#include "store/store.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- data key ---- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 64 hex digits, optionally surrounded by white space. */
static int parse_hex_key(const char *s, size_t n, uint8_t key[FK_DATA_KEY_BYTES]) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    if (n != 2 * FK_DATA_KEY_BYTES) return -1;
    for (size_t i = 0; i < FK_DATA_KEY_BYTES; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int fk_data_key_load(const char *key_file, int create, uint8_t key[FK_DATA_KEY_BYTES], int *created, char *err,
                     size_t errsize) {
    if (created) *created = 0;
    if (!key) return FK_EINVAL;
    const char *env = getenv("FK_DATA_KEY");
    if (env && *env) {
        if (parse_hex_key(env, strlen(env), key)) {
            fk__seterr(err, errsize, "FK_DATA_KEY must be %d hex digits", 2 * FK_DATA_KEY_BYTES);
            return FK_EINVAL;
        }
        return FK_OK;
    }
    if (!key_file) {
        fk__seterr(err, errsize, "no data key: set FK_DATA_KEY or give a key file");
        return FK_EINVAL;
    }
    int fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && create) {
        uint8_t k[FK_DATA_KEY_BYTES];
        if (RAND_bytes(k, sizeof k) != 1) {
            fk__seterr(err, errsize, "random generator failed");
            return FK_EINTERNAL;
        }
        char hex[2 * FK_DATA_KEY_BYTES + 2];
        for (size_t i = 0; i < sizeof k; i++) snprintf(hex + 2 * i, 3, "%02x", k[i]);
        hex[2 * FK_DATA_KEY_BYTES] = '\n';
        /* O_EXCL: two processes racing to create the key cannot both win with different keys */
        int wfd = open(key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (wfd < 0) {
            if (errno != EEXIST) {
                fk__seterr(err, errsize, "cannot create key file %s: %s", key_file, strerror(errno));
                OPENSSL_cleanse(k, sizeof k);
                return FK_EIO;
            }
        } else {
            ssize_t w = write(wfd, hex, 2 * FK_DATA_KEY_BYTES + 1);
            int ok = w == 2 * FK_DATA_KEY_BYTES + 1 && fsync(wfd) == 0;
            close(wfd);
            OPENSSL_cleanse(hex, sizeof hex);
            if (!ok) {
                unlink(key_file);
                OPENSSL_cleanse(k, sizeof k);
                fk__seterr(err, errsize, "cannot write key file %s", key_file);
                return FK_EIO;
            }
            memcpy(key, k, sizeof k);
            OPENSSL_cleanse(k, sizeof k);
            if (created) *created = 1;
            return FK_OK;
        }
        OPENSSL_cleanse(k, sizeof k);
        fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        fk__seterr(err, errsize, "cannot open key file %s: %s", key_file, strerror(errno));
        return errno == ENOENT ? FK_ENOTFOUND : FK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        fk__seterr(err, errsize, "key file %s is not a regular file", key_file);
        return FK_EIO;
    }
    if (st.st_mode & 077) {
        close(fd);
        fk__seterr(err, errsize, "key file %s has permissions %03o; it must be 0600 (chmod 600 %s)", key_file,
                   (unsigned)(st.st_mode & 0777), key_file);
        return FK_EDENIED;
    }
    char buf[160];
    ssize_t r = read(fd, buf, sizeof buf);
    close(fd);
    int rc = r > 0 && parse_hex_key(buf, (size_t)r, key) == 0 ? FK_OK : FK_EFORMAT;
    OPENSSL_cleanse(buf, sizeof buf);
    if (rc) fk__seterr(err, errsize, "key file %s must hold %d hex digits", key_file, 2 * FK_DATA_KEY_BYTES);
    return rc;
}

/* ---- derivation ---- */

static int hmac(const char *digest, const uint8_t *key, size_t keylen, const void *const *parts,
                const size_t *lens, int nparts, uint8_t *out, size_t outcap) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
                            OSSL_PARAM_construct_end()};
    size_t outlen = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, keylen, params) == 1;
    for (int i = 0; ok && i < nparts; i++) ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
    ok = ok && EVP_MAC_final(ctx, out, &outlen, outcap) == 1 && outlen == outcap;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? FK_OK : FK_EINTERNAL;
}

static int derive(const char *digest, const uint8_t *dk, const char *label, uint8_t out[32]) {
    const void *parts[1] = {label};
    size_t lens[1] = {strlen(label)};
    return hmac(digest, dk, FK_DATA_KEY_BYTES, parts, lens, 1, out, 32);
}

int fk__keys_derive(const uint8_t data_key[FK_DATA_KEY_BYTES], fk__keys_t *k) {
    uint8_t sm4[32];
    int rc = derive("SHA256", data_key, "facekit/v1/aes-256-gcm", k->aes);
    if (!rc) rc = derive("SM3", data_key, "facekit/v1/sm4-ctr", sm4);
    if (!rc) rc = derive("SM3", data_key, "facekit/v1/hmac-sm3", k->mac);
    if (!rc) rc = derive("SHA256", data_key, "facekit/v1/key-check", k->check);
    if (!rc) rc = derive("SHA256", data_key, "facekit/v1/archive", k->archive);
    memcpy(k->sm4, sm4, sizeof k->sm4);
    OPENSSL_cleanse(sm4, sizeof sm4);
    return rc;
}

void fk__keys_wipe(fk__keys_t *k) {
    if (k) OPENSSL_cleanse(k, sizeof *k);
}

/* ---- records ---- */

#define REC_VERSION 1

static int sm4_mac(const fk__keys_t *k, const char *aad, const uint8_t *head, size_t headlen, uint8_t tag[32]) {
    uint8_t alen[8];
    uint64_t a = strlen(aad);
    for (int i = 0; i < 8; i++) alen[i] = (uint8_t)(a >> (56 - 8 * i));
    const void *parts[3] = {alen, aad, head};
    size_t lens[3] = {8, (size_t)a, headlen};
    return hmac("SM3", k->mac, sizeof k->mac, parts, lens, 3, tag, 32);
}

static int ctr_crypt(const fk__keys_t *k, const uint8_t iv[16], const uint8_t *in, size_t n, uint8_t *out) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c && EVP_CipherInit_ex(c, EVP_sm4_ctr(), NULL, k->sm4, iv, 1) == 1;
    if (ok && n) ok = EVP_CipherUpdate(c, out, &len, in, (int)n) == 1 && (size_t)len == n;
    if (ok) ok = EVP_CipherFinal_ex(c, out + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? FK_OK : FK_EINTERNAL;
}

static int gcm(const fk__keys_t *k, int enc, const uint8_t iv[12], const char *aad, const uint8_t *in, size_t n,
               uint8_t *out, uint8_t tag[16]) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, k->aes, iv, enc) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1;
    if (ok && n) ok = EVP_CipherUpdate(c, out, &len, in, (int)n) == 1 && (size_t)len == n;
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    int fin = ok ? EVP_CipherFinal_ex(c, out + n, &len) : 0;
    if (ok && enc && fin == 1) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) return FK_EINTERNAL;
    return fin == 1 ? FK_OK : FK_EAUTH;
}

int fk__seal(const fk__keys_t *k, fk_cipher_t cipher, const char *aad, const void *pt, size_t n, uint8_t **out,
             size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    if (n > (size_t)1 << 30) return FK_ELIMIT;
    if (cipher == 0) cipher = FK_CIPHER_AES256_GCM;
    size_t nonce = cipher == FK_CIPHER_AES256_GCM ? 12 : 16, tagn = cipher == FK_CIPHER_AES256_GCM ? 16 : 32;
    if (cipher != FK_CIPHER_AES256_GCM && cipher != FK_CIPHER_SM4_CTR_HMAC_SM3) return FK_EINVAL;
    size_t total = 2 + nonce + n + tagn;
    uint8_t *r = fk__malloc(total + 16);
    if (!r) return FK_ENOMEM;
    r[0] = REC_VERSION;
    r[1] = (uint8_t)cipher;
    int rc = RAND_bytes(r + 2, (int)nonce) == 1 ? FK_OK : FK_EINTERNAL;
    if (!rc && cipher == FK_CIPHER_AES256_GCM) {
        rc = gcm(k, 1, r + 2, aad, pt, n, r + 2 + nonce, r + 2 + nonce + n);
    } else if (!rc) {
        rc = ctr_crypt(k, r + 2, pt, n, r + 2 + nonce);
        if (!rc) rc = sm4_mac(k, aad, r, 2 + nonce + n, r + 2 + nonce + n);
    }
    if (rc) {
        fk__free(r);
        return rc;
    }
    *out = r;
    *out_n = total;
    return FK_OK;
}

int fk__open(const fk__keys_t *k, const char *aad, const uint8_t *rec, size_t n, uint8_t **out, size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    if (!rec || n < 2 || rec[0] != REC_VERSION) return FK_EFORMAT;
    int cipher = rec[1];
    if (cipher != FK_CIPHER_AES256_GCM && cipher != FK_CIPHER_SM4_CTR_HMAC_SM3) return FK_EFORMAT;
    size_t nonce = cipher == FK_CIPHER_AES256_GCM ? 12 : 16, tagn = cipher == FK_CIPHER_AES256_GCM ? 16 : 32;
    if (n < 2 + nonce + tagn) return FK_EFORMAT;
    size_t m = n - 2 - nonce - tagn;
    uint8_t *p = fk__malloc(m + 16 + 1);
    if (!p) return FK_ENOMEM;
    int rc;
    if (cipher == FK_CIPHER_AES256_GCM) {
        uint8_t tag[16];
        memcpy(tag, rec + 2 + nonce + m, 16);
        rc = gcm(k, 0, rec + 2, aad, rec + 2 + nonce, m, p, tag);
    } else {
        uint8_t tag[32];
        rc = sm4_mac(k, aad, rec, 2 + nonce + m, tag);
        if (!rc && CRYPTO_memcmp(tag, rec + 2 + nonce + m, 32) != 0) rc = FK_EAUTH;
        if (!rc) rc = ctr_crypt(k, rec + 2, rec + 2 + nonce, m, p);
    }
    if (rc) {
        OPENSSL_cleanse(p, m);
        fk__free(p);
        return rc;
    }
    p[m] = 0;
    *out = p;
    *out_n = m;
    return FK_OK;
}
