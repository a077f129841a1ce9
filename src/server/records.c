/*
 * records.c — recognition records (written by identify): query with filters (time range, name, source,
 * score range, matched, decision; paginated, newest first), one record, and its probe snapshot. The
 * snapshot is sealed at rest with AES-256-GCM under a key derived from the data key (HMAC-SHA256 with
 * a label), the record id as associated data, so a snapshot cannot be moved to another row.
 */
#include "server/server.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gcm(fk_srv_t *s, int enc, int64_t rid, const uint8_t *nonce, const uint8_t *in, size_t n, uint8_t *out,
               uint8_t tag[16]) {
    char aad[48];
    int al = snprintf(aad, sizeof aad, "record.snapshot:%lld", (long long)rid);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) &&
                      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) &&
                      EVP_CipherInit_ex(c, NULL, NULL, s->snap_key, nonce, enc) &&
                      EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)aad, al) &&
                      EVP_CipherUpdate(c, out, &len, in, (int)n);
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag);
    if (ok) ok = EVP_CipherFinal_ex(c, out + len, &len);
    if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

int fk__snapshot_seal(fk_srv_t *s, int64_t rid, const void *pt, size_t n, uint8_t **out, size_t *out_n) {
    if (n > (size_t)1 << 30) return -1;
    uint8_t *o = fk__malloc(n + 28);
    if (!o) return -1;
    if (RAND_bytes(o, 12) != 1 || gcm(s, 1, rid, o, pt, n, o + 12, o + 12 + n)) {
        fk__free(o);
        return -1;
    }
    *out = o;
    *out_n = n + 28;
    return 0;
}

int fk__snapshot_open(fk_srv_t *s, int64_t rid, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n) {
    if (n < 28) return -1;
    uint8_t *o = fk__malloc(n - 28 + 1);
    uint8_t tag[16];
    if (!o) return -1;
    memcpy(tag, in + n - 16, 16);
    if (gcm(s, 0, rid, in, in + 12, n - 28, o, tag)) {
        fk__free(o);
        return -1;
    }
    *out = o;
    *out_n = n - 28;
    return 0;
}

static json_t *record_json(sqlite3_stmt *st) {
    int64_t id = sqlite3_column_int64(st, 0);
    char snap[80], enr[120];
    snprintf(snap, sizeof snap, "/api/v1/records/%lld/snapshot", (long long)id);
    json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:b,s:s,s:f,s:f,s:s}", "id", (json_int_t)id, "time",
                          (json_int_t)sqlite3_column_int64(st, 1), "source", (const char *)sqlite3_column_text(st, 2),
                          "decision", (const char *)sqlite3_column_text(st, 3), "matched",
                          sqlite3_column_type(st, 4) != SQLITE_NULL, "person_name", (const char *)sqlite3_column_text(st, 5),
                          "score", sqlite3_column_double(st, 7), "cosine", sqlite3_column_double(st, 8), "snapshot_url",
                          snap);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        json_object_set_new(o, "person_id", json_integer(sqlite3_column_int64(st, 4)));
        json_object_set_new(o, "face_id", json_integer(sqlite3_column_int64(st, 6)));
        snprintf(enr, sizeof enr, "/api/v1/persons/%lld/faces/%lld/image", (long long)sqlite3_column_int64(st, 4),
                 (long long)sqlite3_column_int64(st, 6));
        json_object_set_new(o, "enrolment_image_url", json_string(enr));
    } else {
        json_object_set_new(o, "person_id", json_null());
        json_object_set_new(o, "face_id", json_null());
        json_object_set_new(o, "enrolment_image_url", json_null());
    }
    json_object_set_new(o, "liveness",
                        sqlite3_column_type(st, 9) == SQLITE_NULL ? json_null() : json_real(sqlite3_column_double(st, 9)));
    return o;
}

/* limit/offset; -1 with a response set when invalid */
int fk__page_args(fk_req_t *r, int64_t *limit, int64_t *offset);
int fk__page_args(fk_req_t *r, int64_t *limit, int64_t *offset) {
    const char *l = fk__req_query(r, "limit"), *o = fk__req_query(r, "offset");
    *limit = l ? strtoll(l, NULL, 10) : 50;
    *offset = o ? strtoll(o, NULL, 10) : 0;
    if (*limit < 1 || *limit > 500 || *offset < 0) {
        fk__resp_error(r, 400, "bad_request", "limit must be 1..500 and offset >= 0");
        return -1;
    }
    return 0;
}

void fk__h_records_list(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    const char *from = fk__req_query(r, "from"), *to = fk__req_query(r, "to"), *name = fk__req_query(r, "name"),
               *source = fk__req_query(r, "source"), *mins = fk__req_query(r, "min_score"),
               *maxs = fk__req_query(r, "max_score"), *matched = fk__req_query(r, "matched"),
               *decision = fk__req_query(r, "decision");
    char like[300];
    snprintf(like, sizeof like, "%%%s%%", name ? name : "");
    const char *where = " WHERE time >= ? AND time < ? AND person_name LIKE ? AND (? IS NULL OR source = ?) AND score >= ? "
                        "AND score <= ? AND (? < 0 OR (person_id IS NOT NULL) = ?) AND (? IS NULL OR decision = ?)";
    int64_t f = from ? strtoll(from, NULL, 10) : 0, t = to ? strtoll(to, NULL, 10) : INT64_MAX;
    double lo = mins ? strtod(mins, NULL) : -1e9, hi = maxs ? strtod(maxs, NULL) : 1e9;
    int64_t m = !matched ? -1 : (!strcmp(matched, "true") || !strcmp(matched, "1")) ? 1 : 0;
    char sql[1024];
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM records%s", where);
    int64_t total = fk__sdb_int(s->db, sql, "iisssddiiss", f, t, like, source, source, lo, hi, m, m, decision, decision);
    snprintf(sql, sizeof sql,
             "SELECT id, time, source, decision, person_id, person_name, face_id, score, cosine, liveness FROM records%s "
             "ORDER BY id DESC LIMIT ? OFFSET ?",
             where);
    sqlite3_stmt *st =
        fk__sdb_prepare(s->db, sql, "iisssddiissii", f, t, like, source, source, lo, hi, m, m, decision, decision, limit, offset);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) json_array_append_new(items, record_json(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "records");
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit",
                                    (json_int_t)limit, "offset", (json_int_t)offset));
}

void fk__h_record_get(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(
        s->db, "SELECT id, time, source, decision, person_id, person_name, face_id, score, cosine, liveness FROM records WHERE id=?",
        "i", r->ids[0]);
    json_t *o = st && sqlite3_step(st) == SQLITE_ROW ? record_json(st) : NULL;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "record:%lld", (long long)r->ids[0]);
    if (!o) fk__resp_error(r, 404, "not_found", "no record %lld", (long long)r->ids[0]);
    else fk__resp_json(r, 200, o);
}

void fk__h_record_snapshot(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    uint8_t *sealed = NULL;
    size_t n = 0;
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT snapshot FROM records WHERE id=?", "i", r->ids[0]);
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
        n = (size_t)sqlite3_column_bytes(st, 0);
        sealed = fk__malloc(n ? n : 1);
        if (sealed) memcpy(sealed, sqlite3_column_blob(st, 0), n);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "record:%lld", (long long)r->ids[0]);
    uint8_t *img = NULL;
    size_t in = 0;
    if (!sealed) {
        fk__resp_error(r, 404, "not_found", "no snapshot for record %lld", (long long)r->ids[0]);
        return;
    }
    if (fk__snapshot_open(s, r->ids[0], sealed, n, &img, &in)) {
        fk__free(sealed);
        fk__resp_error(r, 500, "internal", "the snapshot does not authenticate (altered, or another data key)");
        return;
    }
    fk__free(sealed);
    char ct[32];
    snprintf(ct, sizeof ct, "image/%s", fk_image_format_name(fk_image_detect_format(img, in)));
    fk__resp_bytes(r, 200, ct, img, in);
    fk__free(img);
}
