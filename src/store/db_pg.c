/*
 * db_pg.c — the PostgreSQL backend of the store's database interface (store.h), through libpq. Parameters
 * go in binary with explicit types; results come back in binary and are streamed row by row (single-row
 * mode), so loading a gallery of millions of templates never holds the whole result in memory.
 */
#include "store/store.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <string.h>

/* type OIDs from PostgreSQL's pg_type.dat (stable across versions) */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_JSONB = 3802, OID_NUMERIC = 1700 };

typedef struct {
    fk__db_t base;
    PGconn *c;
} pg_t;

static int pg_err(pg_t *d, const PGresult *r) {
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (!m || !*m) m = PQerrorMessage(d->c);
    snprintf(d->base.err, sizeof d->base.err, "postgresql: %s", m);
    size_t n = strlen(d->base.err);
    while (n && d->base.err[n - 1] == '\n') d->base.err[--n] = 0;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strncmp(state, "23", 2)) return FK_EMISMATCH; /* integrity constraint violation */
    return FK_EIO;
}

static uint64_t be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static void conv(const PGresult *r, int row, int c, fk__val_t *v) {
    memset(v, 0, sizeof *v);
    if (PQgetisnull(r, row, c)) return;
    const uint8_t *p = (const uint8_t *)PQgetvalue(r, row, c);
    int n = PQgetlength(r, row, c);
    switch (PQftype(r, c)) {
    case OID_INT8: v->t = FK__V_INT; v->i = n == 8 ? (int64_t)be64(p) : 0; v->d = (double)v->i; break;
    case OID_INT4: v->t = FK__V_INT; v->i = n == 4 ? (int32_t)(p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]) : 0;
        v->d = (double)v->i; break;
    case OID_INT2: v->t = FK__V_INT; v->i = n == 2 ? (int16_t)(p[0] << 8 | p[1]) : 0; v->d = (double)v->i; break;
    case OID_BOOL: v->t = FK__V_INT; v->i = n == 1 && p[0]; break;
    case OID_FLOAT8: {
        uint64_t u = n == 8 ? be64(p) : 0;
        v->t = FK__V_REAL;
        memcpy(&v->d, &u, 8);
        v->i = (int64_t)v->d;
        break;
    }
    case OID_FLOAT4: {
        uint32_t u = n == 4 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
        float f;
        memcpy(&f, &u, 4);
        v->t = FK__V_REAL;
        v->d = f;
        break;
    }
    case OID_BYTEA: v->t = FK__V_BLOB; v->p = p; v->n = (size_t)n; break;
    case OID_JSONB: /* binary jsonb is a version byte (1) and the text; libpq NUL-terminates values */
        v->t = FK__V_TEXT;
        v->p = n >= 1 ? p + 1 : p;
        v->n = n >= 1 ? (size_t)n - 1 : 0;
        break;
    default: v->t = FK__V_TEXT; v->p = p; v->n = (size_t)n; break;
    }
}

static int pg_query(fk__db_t *db, const char *sql, const fk__val_t *params, int np, fk__row_fn fn, void *ctx) {
    pg_t *d = (pg_t *)db;
    if (np > 16) return FK_EINVAL;
    Oid types[16];
    const char *vals[16];
    int lens[16], fmts[16];
    uint8_t nums[16][8];
    for (int i = 0; i < np; i++) {
        const fk__val_t *v = &params[i];
        types[i] = 0;
        vals[i] = NULL;
        lens[i] = 0;
        fmts[i] = 1;
        switch (v->t) {
        case FK__V_NULL: break;
        case FK__V_INT: types[i] = OID_INT8; put_be64(nums[i], (uint64_t)v->i); vals[i] = (char *)nums[i]; lens[i] = 8; break;
        case FK__V_REAL: {
            uint64_t u;
            memcpy(&u, &v->d, 8);
            types[i] = OID_FLOAT8;
            put_be64(nums[i], u);
            vals[i] = (char *)nums[i];
            lens[i] = 8;
            break;
        }
        case FK__V_TEXT: vals[i] = v->p; fmts[i] = 0; break; /* type inferred: text, jsonb, ... */
        case FK__V_BLOB: types[i] = OID_BYTEA; vals[i] = v->p ? v->p : ""; lens[i] = (int)v->n; break;
        }
    }
    d->base.err[0] = 0;
    if (!PQsendQueryParams(d->c, sql, np, types, vals, lens, fmts, 1)) return pg_err(d, NULL);
    PQsetSingleRowMode(d->c);
    int out = FK_OK;
    PGresult *r;
    fk__val_t cols[16];
    while ((r = PQgetResult(d->c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && out == FK_OK && fn) {
            int nc = PQnfields(r);
            if (nc > 16) nc = 16;
            for (int c = 0; c < nc; c++) conv(r, 0, c, &cols[c]);
            out = fn(ctx, cols, nc);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && out == FK_OK) {
            out = pg_err(d, r);
        }
        PQclear(r); /* drain every result so the connection is ready for the next query */
    }
    return out;
}

static int pg_exec_script(fk__db_t *db, const char *sql) {
    pg_t *d = (pg_t *)db;
    PGresult *r = PQexec(d->c, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? FK_OK : pg_err(d, r);
    PQclear(r);
    return rc;
}

/* Deleted tuples stay in the heap until vacuumed; VACUUM (outside a transaction) prunes them. */
static void pg_after_delete(fk__db_t *db) {
    pg_t *d = (pg_t *)db;
    PGresult *r = PQexec(d->c, "VACUUM fk_faces, fk_persons");
    PQclear(r);
}

static void pg_close(fk__db_t *db) {
    pg_t *d = (pg_t *)db;
    if (!d) return;
    PQfinish(d->c);
    fk__free(d);
}

static const fk__db_ops_t pg_ops = {"postgresql", pg_query, pg_exec_script, pg_after_delete, pg_close};

static void notice_quiet(void *arg, const char *msg) {
    (void)arg;
    (void)msg; /* the library never prints: NOTICEs ("relation already exists, skipping") are dropped */
}

int fk__db_pg_open(const char *conninfo, fk__db_t **out, char *err, size_t errsize) {
    *out = NULL;
    pg_t *d = fk__calloc(1, sizeof *d);
    if (!d) return FK_ENOMEM;
    d->base.ops = &pg_ops;
    d->c = PQconnectdb(conninfo);
    if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
        fk__seterr(err, errsize, "cannot connect to PostgreSQL: %s", d->c ? PQerrorMessage(d->c) : "out of memory");
        size_t n = err ? strlen(err) : 0;
        while (n && err[n - 1] == '\n') err[--n] = 0;
        PQfinish(d->c);
        fk__free(d);
        return FK_EIO;
    }
    PQsetNoticeProcessor(d->c, notice_quiet, NULL);
    PGresult *r = PQexec(d->c, "SET client_min_messages = warning; SET synchronous_commit = on");
    PQclear(r);
    *out = &d->base;
    return FK_OK;
}
