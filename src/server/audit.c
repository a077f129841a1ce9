/*
 * audit.c — the append-only audit log: every state-changing request and every read of personal data
 * (who, what, when, from where, result). Entries form a hash chain: hash = SHA-256(prev_hash || canonical
 * entry), canonical = the compact JSON array [id, time, actor, role, address, action, target, status,
 * detail], so editing, inserting or deleting a row breaks the chain at that row (`facekit audit verify`).
 * A trigger refuses DELETE; ids are consecutive, so a gap is detected too.
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char zero_hash[] = "0000000000000000000000000000000000000000000000000000000000000000";

static void entry_hash(int64_t id, int64_t t, const char *actor, const char *role, const char *addr, const char *action,
                       const char *target, int status, const char *detail, const char *prev, char out[65]) {
    json_t *a = json_pack("[I,I,s,s,s,s,s,i,s]", (json_int_t)id, (json_int_t)t, actor, role, addr, action, target, status,
                          detail);
    size_t n = a ? json_dumpb(a, NULL, 0, JSON_COMPACT) : 0;
    char *buf = fk__malloc(64 + n + 1);
    if (!buf) {
        json_decref(a);
        snprintf(out, 65, "%s", zero_hash);
        return;
    }
    memcpy(buf, prev, 64);
    if (a) json_dumpb(a, buf + 64, n, JSON_COMPACT);
    json_decref(a);
    fk__sha256_hex(buf, 64 + n, out);
    fk__free(buf);
}

void fk__audit_add(fk_srv_t *s, const char *actor, const char *role, const char *addr, const char *action,
                   const char *target, int status, const char *detail) {
    pthread_mutex_lock(&s->db_lock);
    char prev[65];
    snprintf(prev, sizeof prev, "%s", zero_hash);
    int64_t id = 1;
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", "");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0) + 1;
        snprintf(prev, sizeof prev, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    int64_t t = (int64_t)time(NULL);
    char h[65];
    actor = actor ? actor : "";
    role = role ? role : "";
    addr = addr ? addr : "";
    target = target ? target : "";
    detail = detail ? detail : "";
    entry_hash(id, t, actor, role, addr, action, target, status, detail, prev, h);
    if (fk__sdb_exec(s->db,
                     "INSERT INTO audit(id, time, actor, role, address, action, target, status, detail, prev_hash, hash) "
                     "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                     "iisssssisss", id, t, actor, role, addr, action, target, (int64_t)status, detail, prev, h))
        fk__srv_log(s, FK_LOG_ERROR, "audit: cannot append entry %lld", (long long)id);
    pthread_mutex_unlock(&s->db_lock);
}

static const char *col(sqlite3_stmt *st, int i) {
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

int fk__audit_verify(sqlite3 *db, int64_t *n, int64_t *bad) {
    *n = 0;
    *bad = 0;
    sqlite3_stmt *st = fk__sdb_prepare(
        db, "SELECT id, time, actor, role, address, action, target, status, detail, prev_hash, hash FROM audit ORDER BY id", "");
    if (!st) return -1;
    char prev[65];
    snprintf(prev, sizeof prev, "%s", zero_hash);
    int64_t expect = 1;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char h[65];
        entry_hash(id, sqlite3_column_int64(st, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 5), col(st, 6),
                   sqlite3_column_int(st, 7), col(st, 8), prev, h);
        if (id != expect || strcmp(col(st, 9), prev) || strcmp(col(st, 10), h)) {
            *bad = id != expect ? expect : id;
            rc = 1;
            break;
        }
        snprintf(prev, sizeof prev, "%s", col(st, 10));
        expect++;
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc;
}
