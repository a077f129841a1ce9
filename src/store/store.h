/*
 * store.h — internal interface of the store layer (src/store): record encryption (crypt.c) and the small
 * database abstraction (db_sqlite.c, db_pg.c) that store.c writes its one schema and its queries against.
 * Nothing outside src/store and src/gallery includes this.
 */
#ifndef FK_STORE_INTERNAL_H
#define FK_STORE_INTERNAL_H

#include "core/core.h"

#include <stdint.h>

/* ---- record encryption (crypt.c) ----
 * A sealed record is: version byte 1 | cipher byte | nonce | ciphertext | tag.
 *   AES-256-GCM:           12-byte random nonce, 16-byte GCM tag.
 *   SM4-CTR + HMAC-SM3:    16-byte random IV, 32-byte HMAC-SM3 over (len(aad) | aad | version | cipher |
 *                          IV | ciphertext) — encrypt-then-MAC.
 * The per-cipher keys are derived from the 32-byte data key with HMAC (domain-separated labels), so one
 * data key serves both ciphers. AAD binds a record to its row ("face.template:<face>:<person>"). */
#define FK__SEAL_MAX_OVERHEAD (2 + 16 + 32)

typedef struct fk__keys {
    uint8_t aes[32];  /* AES-256-GCM key */
    uint8_t sm4[16];  /* SM4-CTR key */
    uint8_t mac[32];  /* HMAC-SM3 key */
    uint8_t check[32]; /* key check value stored in the database: detects a wrong key at open */
    uint8_t archive[32]; /* AES-256-GCM key of exported archives (archive.c) */
} fk__keys_t;

int fk__keys_derive(const uint8_t data_key[FK_DATA_KEY_BYTES], fk__keys_t *k);
void fk__keys_wipe(fk__keys_t *k);
/* Seals PT into a new buffer *OUT of *OUT_N bytes (fk__free). */
int fk__seal(const fk__keys_t *k, fk_cipher_t cipher, const char *aad, const void *pt, size_t n, uint8_t **out,
             size_t *out_n);
/* Opens a sealed record; FK_EAUTH when the tag does not verify (wrong key, wrong row, tampering),
 * FK_EFORMAT when malformed. *OUT (fk__free) holds *OUT_N plaintext bytes (+1 NUL, not counted). */
int fk__open(const fk__keys_t *k, const char *aad, const uint8_t *rec, size_t n, uint8_t **out, size_t *out_n);

/* ---- database abstraction ----
 * Parameters are numbered $1..$n in the SQL text of both dialects. Column values arrive through a row
 * callback; blobs and text are only valid during the callback. */
typedef enum { FK__V_NULL, FK__V_INT, FK__V_REAL, FK__V_TEXT, FK__V_BLOB } fk__vtype_t;
typedef struct fk__val {
    fk__vtype_t t;
    int64_t i;
    double d;
    const void *p; /* text (NUL-terminated) or blob */
    size_t n;
} fk__val_t;

static inline fk__val_t fk__vint(int64_t i) { fk__val_t v = {FK__V_INT, i, 0, 0, 0}; return v; }
static inline fk__val_t fk__vreal(double d) { fk__val_t v = {FK__V_REAL, 0, d, 0, 0}; return v; }
static inline fk__val_t fk__vtext(const char *s) {
    fk__val_t v = {s ? FK__V_TEXT : FK__V_NULL, 0, 0, s, 0};
    return v;
}
static inline fk__val_t fk__vblob(const void *p, size_t n) {
    fk__val_t v = {p ? FK__V_BLOB : FK__V_NULL, 0, 0, p, n};
    return v;
}
static inline fk__val_t fk__vnull(void) { fk__val_t v = {FK__V_NULL, 0, 0, 0, 0}; return v; }

/* Return non-zero from a row callback to stop (that value is returned by query). */
typedef int (*fk__row_fn)(void *ctx, const fk__val_t *cols, int ncols);

typedef struct fk__db fk__db_t;
typedef struct fk__db_ops {
    const char *dialect; /* "sqlite" or "postgresql" */
    int (*query)(fk__db_t *db, const char *sql, const fk__val_t *params, int nparams, fk__row_fn fn, void *ctx);
    int (*exec_script)(fk__db_t *db, const char *sql); /* several statements, no parameters */
    void (*after_delete)(fk__db_t *db);                /* physical erasure: checkpoint / vacuum */
    void (*close)(fk__db_t *db);
} fk__db_ops_t;

struct fk__db {
    const fk__db_ops_t *ops;
    char err[512];
};

int fk__db_sqlite_open(const char *path, fk__db_t **out, char *err, size_t errsize);
int fk__db_pg_open(const char *conninfo, fk__db_t **out, char *err, size_t errsize);

#endif
