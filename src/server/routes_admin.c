/*
 * routes_admin.c — administration endpoints: health and Prometheus metrics, users (list, create, edit
 * role / disable / unlock, reset password), API keys (create, list, revoke), the audit log (query, CSV
 * export, chain verification), login failures, help/support messages, the notification outbox and the
 * model manifest (model id, score calibration, thresholds in effect).
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fk__page_args(fk_req_t *r, int64_t *limit, int64_t *offset);

static const char *col(sqlite3_stmt *st, int i) {
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

void fk__h_health(fk_req_t *r) {
    fk__resp_json(r, 200, json_pack("{s:s,s:s,s:I}", "status", "ok", "version", fk_version_string(), "uptime",
                                    (json_int_t)((int64_t)time(NULL) - r->srv->started_at)));
}

void fk__h_metrics(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    size_t persons = 0, faces = 0, pending = 0;
    pthread_mutex_lock(&s->gallery_lock);
    fk_store_count(fk_gallery_store(s->gallery), &persons, &faces);
    pthread_mutex_unlock(&s->gallery_lock);
    pthread_mutex_lock(&s->db_lock);
    int64_t p = fk__sdb_int(s->db, "SELECT COUNT(*) FROM outbox WHERE delivered_at=0", "");
    pthread_mutex_unlock(&s->db_lock);
    pending = p > 0 ? (size_t)p : 0;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "# HELP facekit_http_requests_total HTTP requests answered, by status class.\n"
                     "# TYPE facekit_http_requests_total counter\n"
                     "facekit_http_requests_total{class=\"2xx\"} %llu\n"
                     "facekit_http_requests_total{class=\"4xx\"} %llu\n"
                     "facekit_http_requests_total{class=\"5xx\"} %llu\n"
                     "# HELP facekit_http_rejected_total Requests rejected before reading the body (413, 503).\n"
                     "# TYPE facekit_http_rejected_total counter\n"
                     "facekit_http_rejected_total %llu\n"
                     "# TYPE facekit_compare_total counter\nfacekit_compare_total %llu\n"
                     "# TYPE facekit_identify_total counter\nfacekit_identify_total %llu\n"
                     "# TYPE facekit_notify_delivered_total counter\nfacekit_notify_delivered_total %llu\n"
                     "# TYPE facekit_notify_failed_attempts_total counter\nfacekit_notify_failed_attempts_total %llu\n"
                     "# TYPE facekit_notify_pending gauge\nfacekit_notify_pending %zu\n"
                     "# TYPE facekit_gallery_persons gauge\nfacekit_gallery_persons %zu\n"
                     "# TYPE facekit_gallery_faces gauge\nfacekit_gallery_faces %zu\n"
                     "# TYPE facekit_memory_bytes gauge\nfacekit_memory_bytes %zu\n"
                     "# TYPE facekit_uptime_seconds gauge\nfacekit_uptime_seconds %lld\n",
                     (unsigned long long)s->m_2xx, (unsigned long long)s->m_4xx, (unsigned long long)s->m_5xx,
                     (unsigned long long)s->m_rejected, (unsigned long long)s->m_compare, (unsigned long long)s->m_identify,
                     (unsigned long long)s->m_notify_ok, (unsigned long long)s->m_notify_fail, pending, persons, faces,
                     fk_mem_in_use(), (long long)((int64_t)time(NULL) - s->started_at));
    fk__resp_bytes(r, 200, "text/plain; version=0.0.4", buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

/* ---- users ---- */

static json_t *user_row(sqlite3_stmt *st) {
    return json_pack("{s:I,s:s,s:s,s:b,s:b,s:I,s:I,s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0), "username", col(st, 1),
                     "role", col(st, 2), "disabled", sqlite3_column_int(st, 3), "must_change_password",
                     sqlite3_column_int(st, 4), "locked_until", (json_int_t)sqlite3_column_int64(st, 5), "created_at",
                     (json_int_t)sqlite3_column_int64(st, 6), "last_login_at", (json_int_t)sqlite3_column_int64(st, 7));
}
#define USER_COLS "id, username, role, disabled, must_change, locked_until, created_at, last_login_at"

void fk__h_users_list(fk_req_t *r) {
    pthread_mutex_lock(&r->srv->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db, "SELECT " USER_COLS " FROM users ORDER BY id", "");
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) json_array_append_new(items, user_row(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "users");
    fk__resp_json(r, 200, json_pack("{s:o}", "items", items));
}

static json_t *user_get(fk_srv_t *s, int64_t id) {
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT " USER_COLS " FROM users WHERE id=?", "i", id);
    json_t *o = st && sqlite3_step(st) == SQLITE_ROW ? user_row(st) : NULL;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    return o;
}

static void one_time_password(char out[20]) {
    static const char a[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    char hex[40];
    fk__random_hex(hex, 16);
    for (int i = 0; i < 16; i++) out[i] = a[strtoul((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16) % (sizeof a - 1)];
    out[16] = 0;
}

void fk__h_users_create(fk_req_t *r) {
    char t1[128], t2[32], t3[256], otp[20] = "";
    const char *name = fk__req_text(r, "username", t1, sizeof t1);
    const char *role = fk__req_text(r, "role", t2, sizeof t2);
    const char *pw = fk__req_text(r, "password", t3, sizeof t3);
    if (!pw) {
        one_time_password(otp);
        pw = otp;
    }
    int64_t id = 0;
    char err[200];
    int rc = fk__user_create(r->srv, name, role, pw, otp[0] != 0, &id, err, sizeof err);
    snprintf(r->audit_target, sizeof r->audit_target, "user:%.100s", name ? name : "");
    if (rc) {
        fk__resp_error(r, rc == FK_EMISMATCH ? 409 : rc == FK_EINVAL ? 400 : 500,
                       rc == FK_EMISMATCH ? "conflict" : rc == FK_EINVAL ? "bad_request" : "internal", "%s", err);
        return;
    }
    json_t *o = user_get(r->srv, id);
    if (otp[0]) json_object_set_new(o, "one_time_password", json_string(otp));
    fk__resp_json(r, 201, o);
}

void fk__h_user_get(fk_req_t *r) {
    json_t *o = user_get(r->srv, r->ids[0]);
    if (!o) fk__resp_error(r, 404, "not_found", "no user %lld", (long long)r->ids[0]);
    else fk__resp_json(r, 200, o);
}

void fk__h_user_put(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    snprintf(r->audit_target, sizeof r->audit_target, "user:%lld", (long long)r->ids[0]);
    if (!r->json) {
        fk__resp_error(r, 400, "bad_request", "send a JSON object");
        return;
    }
    json_t *role = json_object_get(r->json, "role"), *dis = json_object_get(r->json, "disabled"),
           *unl = json_object_get(r->json, "unlock");
    if ((role && !fk__role_parse(json_string_value(role))) || (dis && !json_is_boolean(dis)) || (unl && !json_is_boolean(unl))) {
        fk__resp_error(r, 400, "bad_request", "role must be admin|operator|auditor|device; disabled and unlock booleans");
        return;
    }
    if (r->ids[0] == r->user_id && ((dis && json_is_true(dis)) || (role && strcmp(json_string_value(role), "admin")))) {
        fk__resp_error(r, 409, "conflict", "you cannot disable or demote your own account");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    int exists = fk__sdb_int(s->db, "SELECT id FROM users WHERE id=?", "i", r->ids[0]) >= 0;
    if (exists) {
        if (role) fk__sdb_exec(s->db, "UPDATE users SET role=? WHERE id=?", "si", json_string_value(role), r->ids[0]);
        if (dis) {
            fk__sdb_exec(s->db, "UPDATE users SET disabled=? WHERE id=?", "ii", (int64_t)json_is_true(dis), r->ids[0]);
            if (json_is_true(dis)) fk__sdb_exec(s->db, "DELETE FROM sessions WHERE user_id=?", "i", r->ids[0]);
        }
        if (unl && json_is_true(unl))
            fk__sdb_exec(s->db, "UPDATE users SET locked_until=0, failures=0 WHERE id=?", "i", r->ids[0]);
    }
    pthread_mutex_unlock(&s->db_lock);
    if (!exists) {
        fk__resp_error(r, 404, "not_found", "no user %lld", (long long)r->ids[0]);
        return;
    }
    snprintf(r->audit_detail, sizeof r->audit_detail, "%s%s%s", role ? "role " : "", dis ? (json_is_true(dis) ? "disabled " : "enabled ") : "",
             unl ? "unlocked" : "");
    fk__resp_json(r, 200, user_get(s, r->ids[0]));
}

void fk__h_user_password(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    char otp[20], hash[256];
    one_time_password(otp);
    snprintf(r->audit_target, sizeof r->audit_target, "user:%lld", (long long)r->ids[0]);
    if (fk__pw_hash(otp, hash, sizeof hash)) {
        fk__resp_error(r, 500, "internal", "cannot hash");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    int exists = fk__sdb_int(s->db, "SELECT id FROM users WHERE id=?", "i", r->ids[0]) >= 0;
    if (exists) {
        fk__sdb_exec(s->db, "UPDATE users SET pw_hash=?, must_change=1, failures=0, locked_until=0 WHERE id=?", "si", hash, r->ids[0]);
        fk__sdb_exec(s->db, "DELETE FROM sessions WHERE user_id=?", "i", r->ids[0]);
    }
    pthread_mutex_unlock(&s->db_lock);
    if (!exists) fk__resp_error(r, 404, "not_found", "no user %lld", (long long)r->ids[0]);
    else fk__resp_json(r, 200, json_pack("{s:s}", "one_time_password", otp));
}

/* ---- API keys ---- */

static json_t *key_row(sqlite3_stmt *st) {
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:b}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name", col(st, 1), "role",
                     col(st, 2), "prefix", col(st, 3), "created_at", (json_int_t)sqlite3_column_int64(st, 4), "last_used_at",
                     (json_int_t)sqlite3_column_int64(st, 5), "revoked", sqlite3_column_int(st, 6));
}

void fk__h_apikeys_list(fk_req_t *r) {
    pthread_mutex_lock(&r->srv->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db, "SELECT id, name, role, prefix, created_at, last_used_at, revoked FROM apikeys ORDER BY id", "");
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) json_array_append_new(items, key_row(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    fk__resp_json(r, 200, json_pack("{s:o}", "items", items));
}

void fk__h_apikeys_create(fk_req_t *r) {
    char t1[128], t2[32];
    const char *name = fk__req_text(r, "name", t1, sizeof t1);
    const char *role = fk__req_text(r, "role", t2, sizeof t2);
    if (!name || !*name || !fk__role_parse(role)) {
        fk__resp_error(r, 400, "bad_request", "name and role (admin|operator|auditor|device) are required");
        return;
    }
    char key[80];
    int64_t id = 0;
    snprintf(r->audit_target, sizeof r->audit_target, "apikey:%.100s", name);
    if (fk__apikey_create(r->srv, name, role, key, &id)) {
        fk__resp_error(r, 500, "internal", "cannot store the key");
        return;
    }
    pthread_mutex_lock(&r->srv->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db, "SELECT id, name, role, prefix, created_at, last_used_at, revoked FROM apikeys WHERE id=?", "i", id);
    json_t *o = st && sqlite3_step(st) == SQLITE_ROW ? key_row(st) : json_object();
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    json_object_set_new(o, "key", json_string(key));
    fk__resp_json(r, 201, o);
}

void fk__h_apikey_delete(fk_req_t *r) {
    pthread_mutex_lock(&r->srv->db_lock);
    int exists = fk__sdb_int(r->srv->db, "SELECT id FROM apikeys WHERE id=?", "i", r->ids[0]) >= 0;
    if (exists) fk__sdb_exec(r->srv->db, "UPDATE apikeys SET revoked=1 WHERE id=?", "i", r->ids[0]);
    pthread_mutex_unlock(&r->srv->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "apikey:%lld", (long long)r->ids[0]);
    if (!exists) fk__resp_error(r, 404, "not_found", "no API key %lld", (long long)r->ids[0]);
    else fk__resp_json(r, 200, json_pack("{s:b}", "ok", 1));
}

/* ---- audit ---- */

static sqlite3_stmt *audit_query(fk_req_t *r, int64_t limit, int64_t offset, int64_t *total) {
    const char *from = fk__req_query(r, "from"), *to = fk__req_query(r, "to"), *actor = fk__req_query(r, "actor"),
               *action = fk__req_query(r, "action"), *status = fk__req_query(r, "status");
    int64_t f = from ? strtoll(from, NULL, 10) : 0, t = to ? strtoll(to, NULL, 10) : INT64_MAX;
    int64_t st = status ? strtoll(status, NULL, 10) : -1;
    char like[300];
    snprintf(like, sizeof like, "%%%s%%", action ? action : "");
    const char *where = " WHERE time >= ? AND time < ? AND (? IS NULL OR actor = ?) AND action LIKE ? AND (? < 0 OR status = ?)";
    char sql[600];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM audit%s", where);
    *total = fk__sdb_int(r->srv->db, sql, "iisssii", f, t, actor, actor, like, st, st);
    snprintf(sql, sizeof sql,
             "SELECT id, time, actor, role, address, action, target, status, detail, hash FROM audit%s ORDER BY id DESC LIMIT ? OFFSET ?",
             where);
    return fk__sdb_prepare(r->srv->db, sql, "iisssiiii", f, t, actor, actor, like, st, st, limit, offset);
}

void fk__h_audit_list(fk_req_t *r) {
    int64_t limit, offset, total = 0;
    if (fk__page_args(r, &limit, &offset)) return;
    pthread_mutex_lock(&r->srv->db_lock);
    sqlite3_stmt *st = audit_query(r, limit, offset, &total);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s}", "id",
                                               (json_int_t)sqlite3_column_int64(st, 0), "time",
                                               (json_int_t)sqlite3_column_int64(st, 1), "actor", col(st, 2), "role", col(st, 3),
                                               "address", col(st, 4), "action", col(st, 5), "target", col(st, 6), "status",
                                               sqlite3_column_int(st, 7), "detail", col(st, 8), "hash", col(st, 9)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "audit");
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit", (json_int_t)limit,
                                    "offset", (json_int_t)offset));
}

/* the same query as CSV: RFC 4180 with the formula guard (actors, targets and details can hold user text) */
void fk__h_audit_csv(fk_req_t *r) {
    int64_t total = 0;
    const char *l = fk__req_query(r, "limit");
    int64_t limit = l ? strtoll(l, NULL, 10) : 100000;
    if (limit < 1) limit = 100000;
    fk_sbuf_t b = {0};
    static const char hdr[] = "id,time,actor,role,address,action,target,status,detail,hash\r\n";
    fk__sb_put(&b, hdr, sizeof hdr - 1);
    pthread_mutex_lock(&r->srv->db_lock);
    sqlite3_stmt *st = audit_query(r, limit, 0, &total);
    while (st && !b.oom && sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < 10; i++) {
            fk__csv_text(&b, col(st, i));
            fk__sb_put(&b, i == 9 ? "\r\n" : ",", i == 9 ? 2 : 1);
        }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "audit");
    fk__resp_csv(r, &b, "audit.csv");
}

void fk__h_audit_verify(fk_req_t *r) {
    int64_t n = 0, bad = 0;
    pthread_mutex_lock(&r->srv->db_lock);
    int rc = fk__audit_verify(r->srv->db, &n, &bad);
    pthread_mutex_unlock(&r->srv->db_lock);
    if (rc) fk__resp_json(r, 200, json_pack("{s:b,s:I,s:I}", "ok", 0, "entries", (json_int_t)n, "first_bad", (json_int_t)bad));
    else fk__resp_json(r, 200, json_pack("{s:b,s:I}", "ok", 1, "entries", (json_int_t)n));
}

void fk__h_login_failures(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    pthread_mutex_lock(&r->srv->db_lock);
    int64_t total = fk__sdb_int(r->srv->db, "SELECT COUNT(*) FROM login_failures", "");
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db,
                                       "SELECT id, time, address, username, reason FROM login_failures ORDER BY id DESC LIMIT ? OFFSET ?",
                                       "ii", limit, offset);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:I,s:I,s:s,s:s,s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "time",
                                               (json_int_t)sqlite3_column_int64(st, 1), "address", col(st, 2), "username",
                                               col(st, 3), "reason", col(st, 4)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit", (json_int_t)limit,
                                    "offset", (json_int_t)offset));
}

/* ---- support messages ---- */

static json_t *support_row(sqlite3_stmt *st) {
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0), "time",
                     (json_int_t)sqlite3_column_int64(st, 1), "author", col(st, 2), "contact", col(st, 3), "message", col(st, 4),
                     "reply", col(st, 5), "replied_by", col(st, 6), "replied_at", (json_int_t)sqlite3_column_int64(st, 7));
}
#define SUPPORT_COLS "id, time, author, contact, message, reply, replied_by, replied_at"

void fk__h_support_list(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    const char *mine = r->role == FK_ROLE_ADMIN ? NULL : r->actor;
    pthread_mutex_lock(&r->srv->db_lock);
    int64_t total = fk__sdb_int(r->srv->db, "SELECT COUNT(*) FROM support WHERE (? IS NULL OR author=?)", "ss", mine, mine);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db,
                                       "SELECT " SUPPORT_COLS " FROM support WHERE (? IS NULL OR author=?) ORDER BY id DESC LIMIT ? OFFSET ?",
                                       "ssii", mine, mine, limit, offset);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) json_array_append_new(items, support_row(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit", (json_int_t)limit,
                                    "offset", (json_int_t)offset));
}

void fk__h_support_create(fk_req_t *r) {
    char t1[4100], t2[210];
    const char *msg = fk__req_text(r, "message", t1, sizeof t1);
    const char *contact = fk__req_text(r, "contact", t2, sizeof t2);
    if (!msg || !*msg || strlen(msg) > 4000 || !contact || !*contact || strlen(contact) > 200) {
        fk__resp_error(r, 400, "bad_request", "message (1..4000 characters) and contact (1..200) are required");
        return;
    }
    pthread_mutex_lock(&r->srv->db_lock);
    fk__sdb_exec(r->srv->db, "INSERT INTO support(time, author, contact, message) VALUES(?,?,?,?)", "isss", (int64_t)time(NULL),
                 r->actor, contact, msg);
    int64_t id = sqlite3_last_insert_rowid(r->srv->db);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db, "SELECT " SUPPORT_COLS " FROM support WHERE id=?", "i", id);
    json_t *o = st && sqlite3_step(st) == SQLITE_ROW ? support_row(st) : json_object();
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "support:%lld", (long long)id);
    fk__resp_json(r, 201, o);
}

void fk__h_support_reply(fk_req_t *r) {
    char t1[4100];
    const char *reply = fk__req_text(r, "reply", t1, sizeof t1);
    snprintf(r->audit_target, sizeof r->audit_target, "support:%lld", (long long)r->ids[0]);
    if (!reply || !*reply) {
        fk__resp_error(r, 400, "bad_request", "reply is required");
        return;
    }
    pthread_mutex_lock(&r->srv->db_lock);
    fk__sdb_exec(r->srv->db, "UPDATE support SET reply=?, replied_by=?, replied_at=? WHERE id=?", "ssii", reply, r->actor,
                 (int64_t)time(NULL), r->ids[0]);
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db, "SELECT " SUPPORT_COLS " FROM support WHERE id=?", "i", r->ids[0]);
    json_t *o = st && sqlite3_step(st) == SQLITE_ROW ? support_row(st) : NULL;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    if (!o) fk__resp_error(r, 404, "not_found", "no message %lld", (long long)r->ids[0]);
    else fk__resp_json(r, 200, o);
}

void fk__h_notifications(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    pthread_mutex_lock(&r->srv->db_lock);
    int64_t total = fk__sdb_int(r->srv->db, "SELECT COUNT(*) FROM outbox", "");
    sqlite3_stmt *st = fk__sdb_prepare(r->srv->db,
                                       "SELECT event_id, type, created_at, attempts, delivered_at, last_error FROM outbox ORDER BY "
                                       "created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                       "ii", limit, offset);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:s,s:s,s:I,s:i,s:I,s:s}", "event_id", col(st, 0), "type", col(st, 1),
                                               "created_at", (json_int_t)sqlite3_column_int64(st, 2), "attempts",
                                               sqlite3_column_int(st, 3), "delivered_at", (json_int_t)sqlite3_column_int64(st, 4),
                                               "last_error", col(st, 5)));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->srv->db_lock);
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit", (json_int_t)limit,
                                    "offset", (json_int_t)offset));
}

/* ---- the model manifest: which template model this service runs, its score calibration and the
 * thresholds in effect (the manifest's defaults and the settings that override them), so that a device
 * or the console can tell whether its templates and scores are comparable. ---- */
void fk__h_models(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    const fk_engine_info_t *e = &s->einfo;
    static const char *const names[] = {"detect", "landmark", "feature", "liveness", "pose",
                                        "eye", "age", "gender", "expression"};
    json_t *opened = json_array();
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (e->models & (1u << i)) json_array_append_new(opened, json_string(names[i]));
    json_t *cal = json_pack("{s:b,s:s,s:f,s:f}", "calibrated", e->calibrated, "formula",
                            e->calibrated ? "score = 1 / (1 + exp(-(a * cosine + b)))" : "score = (cosine + 1) / 2",
                            "a", e->calib_a, "b", e->calib_b);
    /* the manifest's own description of the fit (data, pairs, FAR), when there is one */
    json_t *man = e->manifest && e->manifest[0] ? json_load_file(e->manifest, 0, NULL) : NULL;
    json_t *cmp = json_object_get(man, "compare");
    if (json_is_object(cmp)) {
        const char *keys[] = {"threshold_far", "cosine_threshold", "fitted"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(cmp, keys[i]);
            if (v) json_object_set(cal, keys[i], v);
        }
    }
    json_t *live = json_object_get(man, "liveness");
    json_t *note = json_is_object(live) ? json_object_get(live, "note") : NULL;
    pthread_mutex_lock(&s->db_lock);
    json_t *st = fk__settings_get(s);
    pthread_mutex_unlock(&s->db_lock);
    json_t *o = json_pack(
        "{s:s,s:i,s:o,s:o,s:{s:f,s:f},s:{s:O,s:O,s:O,s:O},s:s}", "model_id", e->model_id ? e->model_id : "", "dim",
        e->dim, "models", opened, "calibration", cal, "defaults", "threshold", e->threshold, "liveness_threshold",
        e->liveness_threshold, "in_effect", "compare_threshold", json_object_get(st, "compare_threshold"),
        "identify_threshold", json_object_get(st, "identify_threshold"), "liveness_threshold",
        json_object_get(st, "liveness_threshold"), "liveness_required", json_object_get(st, "liveness_required"),
        "manifest", e->manifest && e->manifest[0] ? "present" : "absent");
    if (o && note && json_is_string(note)) json_object_set(o, "liveness_note", note);
    json_decref(st);
    json_decref(man);
    if (!o) fk__resp_error(r, 500, "internal", "cannot describe the models");
    else fk__resp_json(r, 200, o);
}
