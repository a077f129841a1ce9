/*
 * db.c — the server's own SQLite file DATA/server.db: accounts, sessions, API keys, login failures, the
 * audit chain, recognition records (snapshots sealed with the data key), settings, the notification
 * outbox, consent and support messages. The gallery (persons, faces) stays in the store (facekit.db).
 * One connection, used under fk_srv_t.db_lock; small variadic helpers bind "?" parameters by a format.
 */
#include "server/server.h"

#include <stdio.h>
#include <string.h>

static const char *schema =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
    "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, role TEXT NOT NULL,"
    " pw_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, must_change INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    " last_login_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, csrf TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS apikeys(id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
    " key_hash TEXT UNIQUE NOT NULL, prefix TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " last_used_at INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS login_failures(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, address TEXT,"
    " username TEXT, reason TEXT);"
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,"
    " role TEXT NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL,"
    " detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    "CREATE TABLE IF NOT EXISTS records(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, source TEXT NOT NULL,"
    " decision TEXT NOT NULL, person_id INTEGER, person_name TEXT NOT NULL DEFAULT '', face_id INTEGER,"
    " score REAL NOT NULL DEFAULT 0, cosine REAL NOT NULL DEFAULT 0, liveness REAL, snapshot BLOB);"
    "CREATE INDEX IF NOT EXISTS records_time ON records(time);"
    "CREATE TABLE IF NOT EXISTS settings(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbox(event_id TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,"
    " delivered_at INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS consent(person_id INTEGER PRIMARY KEY, given_by TEXT NOT NULL, purpose TEXT NOT NULL,"
    " at INTEGER NOT NULL, recorded_by TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS support(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, author TEXT NOT NULL,"
    " contact TEXT NOT NULL, message TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '', replied_by TEXT NOT NULL DEFAULT '',"
    " replied_at INTEGER NOT NULL DEFAULT 0);";

int fk__sdb_open(const char *data_dir, sqlite3 **out, char *err, size_t errsize) {
    char path[1200];
    snprintf(path, sizeof path, "%s/server.db", data_dir);
    *out = NULL;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errsize, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return FK_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errsize, "%s: %s", path, msg ? msg : "schema");
        sqlite3_free(msg);
        sqlite3_close(db);
        return FK_EIO;
    }
    *out = db;
    return FK_OK;
}

static sqlite3_stmt *vprep(sqlite3 *db, const char *sql, const char *fmt, va_list ap) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL; /* callers answer 500 (logged) */
    int i = 1;
    for (const char *f = fmt ? fmt : ""; *f; f++, i++) {
        switch (*f) {
        case 'i': sqlite3_bind_int64(st, i, va_arg(ap, int64_t)); break;
        case 'd': sqlite3_bind_double(st, i, va_arg(ap, double)); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, i);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            if (p) sqlite3_bind_blob64(st, i, p, n, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, i);
            break;
        }
        default: break;
        }
    }
    return st;
}

sqlite3_stmt *fk__sdb_prepare(sqlite3 *db, const char *sql, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = vprep(db, sql, fmt, ap);
    va_end(ap);
    return st;
}

int fk__sdb_exec(sqlite3 *db, const char *sql, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = vprep(db, sql, fmt, ap);
    va_end(ap);
    if (!st) return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

int64_t fk__sdb_int(sqlite3 *db, const char *sql, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = vprep(db, sql, fmt, ap);
    va_end(ap);
    if (!st) return -1;
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
