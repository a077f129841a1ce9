/*
 * db_sqlite.c — the embedded SQLite backend of the store's database interface (store.h): one file in WAL
 * mode with synchronous=FULL (an acknowledged commit survives a crash of the process or the machine),
 * secure_delete=ON (freed pages are zeroed) and foreign keys on. Parameters are written $1..$n.
 */
#include "store/store.h"

#include <sqlite3.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    fk__db_t base;
    sqlite3 *h;
} sq_t;

static int sq_err(sq_t *d, int rc) {
    snprintf(d->base.err, sizeof d->base.err, "sqlite: %s", sqlite3_errmsg(d->h));
    if (rc == SQLITE_NOMEM) return FK_ENOMEM;
    if (rc == SQLITE_CONSTRAINT) return FK_EMISMATCH;
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return FK_EFORMAT;
    return FK_EIO;
}

static int sq_query(fk__db_t *db, const char *sql, const fk__val_t *params, int np, fk__row_fn fn, void *ctx) {
    sq_t *d = (sq_t *)db;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_err(d, rc);
    for (int i = 0; i < np; i++) {
        char name[16];
        snprintf(name, sizeof name, "$%d", i + 1);
        int ix = sqlite3_bind_parameter_index(st, name);
        if (!ix) continue;
        const fk__val_t *v = &params[i];
        switch (v->t) {
        case FK__V_NULL: rc = sqlite3_bind_null(st, ix); break;
        case FK__V_INT: rc = sqlite3_bind_int64(st, ix, v->i); break;
        case FK__V_REAL: rc = sqlite3_bind_double(st, ix, v->d); break;
        case FK__V_TEXT: rc = sqlite3_bind_text(st, ix, v->p, -1, SQLITE_STATIC); break;
        case FK__V_BLOB: rc = sqlite3_bind_blob64(st, ix, v->p, v->n, SQLITE_STATIC); break;
        }
        if (rc != SQLITE_OK) {
            int e = sq_err(d, rc);
            sqlite3_finalize(st);
            return e;
        }
    }
    fk__val_t cols[16];
    int out = FK_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!fn) continue;
        int nc = sqlite3_column_count(st);
        if (nc > 16) nc = 16;
        for (int c = 0; c < nc; c++) {
            fk__val_t *v = &cols[c];
            memset(v, 0, sizeof *v);
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER: v->t = FK__V_INT; v->i = sqlite3_column_int64(st, c); v->d = (double)v->i; break;
            case SQLITE_FLOAT: v->t = FK__V_REAL; v->d = sqlite3_column_double(st, c); v->i = (int64_t)v->d; break;
            case SQLITE_TEXT:
                v->t = FK__V_TEXT;
                v->p = sqlite3_column_text(st, c);
                v->n = (size_t)sqlite3_column_bytes(st, c);
                break;
            case SQLITE_BLOB:
                v->t = FK__V_BLOB;
                v->p = sqlite3_column_blob(st, c);
                v->n = (size_t)sqlite3_column_bytes(st, c);
                break;
            default: v->t = FK__V_NULL;
            }
        }
        if ((out = fn(ctx, cols, nc)) != 0) break;
    }
    if (out == FK_OK && rc != SQLITE_DONE) out = sq_err(d, rc);
    sqlite3_finalize(st);
    return out;
}

static int sq_exec_script(fk__db_t *db, const char *sql) {
    sq_t *d = (sq_t *)db;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FK_OK : sq_err(d, rc);
}

/* Zeroed free pages are not enough with WAL: the WAL still holds the frames that wrote the deleted rows.
 * A TRUNCATE checkpoint copies everything into the main file (where secure_delete zeroed them) and empties
 * the WAL. It can be blocked by a reader of another connection; then the next one finishes the job. */
static void sq_after_delete(fk__db_t *db) {
    sq_t *d = (sq_t *)db;
    sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static void sq_close(fk__db_t *db) {
    sq_t *d = (sq_t *)db;
    if (!d) return;
    sqlite3_close_v2(d->h);
    fk__free(d);
}

static const fk__db_ops_t sq_ops = {"sqlite", sq_query, sq_exec_script, sq_after_delete, sq_close};

int fk__db_sqlite_open(const char *path, fk__db_t **out, char *err, size_t errsize) {
    *out = NULL;
    sq_t *d = fk__calloc(1, sizeof *d);
    if (!d) return FK_ENOMEM;
    d->base.ops = &sq_ops;
    int rc = sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        fk__seterr(err, errsize, "cannot open %s: %s", path, d->h ? sqlite3_errmsg(d->h) : "out of memory");
        sqlite3_close_v2(d->h);
        fk__free(d);
        return rc == SQLITE_NOMEM ? FK_ENOMEM : FK_EIO;
    }
    sqlite3_busy_timeout(d->h, 10000);
    sqlite3_extended_result_codes(d->h, 0);
    const char *setup = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;"
                        "PRAGMA foreign_keys = ON;";
    rc = sqlite3_exec(d->h, setup, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        fk__seterr(err, errsize, "%s: %s", path, sqlite3_errmsg(d->h));
        int e = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? FK_EFORMAT : FK_EIO;
        sqlite3_close_v2(d->h);
        fk__free(d);
        return e;
    }
    *out = &d->base;
    return FK_OK;
}
