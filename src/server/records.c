/*
 * records.c — recognition records (written by identify): query with filters (time range, name, source,
 * score range, matched, decision; paginated, newest first), the same query as a CSV download, the
 * dashboard's day statistics (per decision and per source), one record, and its probe snapshot. The
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
#include <time.h>

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
        /* the face may be gone (deleted face or person): then the record keeps the match, not the image */
        int face = sqlite3_column_type(st, 6) != SQLITE_NULL;
        json_object_set_new(o, "person_id", json_integer(sqlite3_column_int64(st, 4)));
        json_object_set_new(o, "face_id", face ? json_integer(sqlite3_column_int64(st, 6)) : json_null());
        snprintf(enr, sizeof enr, "/api/v1/persons/%lld/faces/%lld/image", (long long)sqlite3_column_int64(st, 4),
                 (long long)sqlite3_column_int64(st, 6));
        json_object_set_new(o, "enrolment_image_url", face ? json_string(enr) : json_null());
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

/* The filters of GET /records (and records.csv, stats): from/to (Unix seconds, [from, to)), name
 * (substring of the matched person's name), source, min_score/max_score, matched, decision. */
typedef struct {
    int64_t from, to, matched;
    double lo, hi;
    char like[300];
    const char *source, *decision;
} rec_filter_t;

static void rec_filter(fk_req_t *r, rec_filter_t *q) {
    const char *from = fk__req_query(r, "from"), *to = fk__req_query(r, "to"), *name = fk__req_query(r, "name"),
               *mins = fk__req_query(r, "min_score"), *maxs = fk__req_query(r, "max_score"),
               *matched = fk__req_query(r, "matched");
    q->source = fk__req_query(r, "source");
    q->decision = fk__req_query(r, "decision");
    snprintf(q->like, sizeof q->like, "%%%s%%", name ? name : "");
    q->from = from ? strtoll(from, NULL, 10) : 0;
    q->to = to ? strtoll(to, NULL, 10) : INT64_MAX;
    q->lo = mins ? strtod(mins, NULL) : -1e9;
    q->hi = maxs ? strtod(maxs, NULL) : 1e9;
    q->matched = !matched ? -1 : (!strcmp(matched, "true") || !strcmp(matched, "1")) ? 1 : 0;
}

/* "HEAD WHERE <filters> TAIL LIMIT ? OFFSET ?" prepared with the filter's values; caller holds db_lock */
static sqlite3_stmt *rec_prepare(fk_srv_t *s, const char *head, const rec_filter_t *q, const char *tail, int64_t limit,
                                 int64_t offset) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%s WHERE time >= ? AND time < ? AND person_name LIKE ? AND (? IS NULL OR source = ?) AND score >= ? "
             "AND score <= ? AND (? < 0 OR (person_id IS NOT NULL) = ?) AND (? IS NULL OR decision = ?)%s LIMIT ? OFFSET ?",
             head, tail);
    return fk__sdb_prepare(s->db, sql, "iisssddiissii", q->from, q->to, q->like, q->source, q->source, q->lo, q->hi,
                           q->matched, q->matched, q->decision, q->decision, limit, offset);
}

#define REC_COLUMNS "SELECT id, time, source, decision, person_id, person_name, face_id, score, cosine, liveness FROM records"

void fk__h_records_list(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    rec_filter_t q;
    rec_filter(r, &q);
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = rec_prepare(s, "SELECT COUNT(*) FROM records", &q, "", 1, 0);
    int64_t total = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    st = rec_prepare(s, REC_COLUMNS, &q, " ORDER BY id DESC", limit, offset);
    json_t *items = json_array();
    while (st && sqlite3_step(st) == SQLITE_ROW) json_array_append_new(items, record_json(st));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "records");
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit",
                                    (json_int_t)limit, "offset", (json_int_t)offset));
}

/* ---- CSV export (RFC 4180: CRLF lines, fields with a comma, quote or line break are quoted, quotes
 * doubled). Text cells that a spreadsheet would run as a formula (= + - @, tab, CR first) get a leading
 * apostrophe; numeric columns are written as numbers and never altered. */
void fk__sb_put(fk_sbuf_t *b, const char *t, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n + 1) c *= 2;
        char *q = fk__realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, t, n);
    b->n += n;
}

void fk__csv_text(fk_sbuf_t *b, const char *v) {
    if (!v) v = "";
    int guard = v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r';
    int quote = guard || strpbrk(v, ",\"\r\n") != NULL;
    if (quote) fk__sb_put(b, "\"", 1);
    if (guard) fk__sb_put(b, "'", 1);
    for (const char *c = v; *c; c++) {
        if (*c == '"') fk__sb_put(b, "\"", 1);
        fk__sb_put(b, c, 1);
    }
    if (quote) fk__sb_put(b, "\"", 1);
}

void fk__resp_csv(fk_req_t *r, fk_sbuf_t *b, const char *filename) {
    if (b->oom || !b->p) {
        fk__free(b->p);
        fk__resp_error(r, 503, "busy", "out of memory building the export");
        return;
    }
    snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s\"", filename);
    fk__free(r->resp);
    r->resp = b->p; /* handed over: freed with the response */
    r->resp_n = b->n;
    r->status = 200;
    snprintf(r->resp_type, sizeof r->resp_type, "text/csv; charset=utf-8; header=present");
}

static void csv_num(fk_sbuf_t *b, sqlite3_stmt *st, int col, int real) {
    char t[48] = "";
    if (sqlite3_column_type(st, col) != SQLITE_NULL) {
        if (real) snprintf(t, sizeof t, "%.6f", sqlite3_column_double(st, col));
        else snprintf(t, sizeof t, "%lld", (long long)sqlite3_column_int64(st, col));
    }
    fk__sb_put(b, t, strlen(t));
}

void fk__h_records_csv(fk_req_t *r) {
    const char *l = fk__req_query(r, "limit"), *bom = fk__req_query(r, "bom");
    int64_t limit = l ? strtoll(l, NULL, 10) : 100000;
    if (limit < 1 || limit > 1000000) {
        fk__resp_error(r, 400, "bad_request", "limit must be 1..1000000");
        return;
    }
    rec_filter_t q;
    rec_filter(r, &q);
    fk_sbuf_t b = {0};
    if (bom && !strcmp(bom, "1")) fk__sb_put(&b, "\xEF\xBB\xBF", 3); /* for spreadsheets that guess the encoding */
    static const char hdr[] = "id,time,source,decision,matched,person_id,person_name,face_id,score,cosine,liveness\r\n";
    fk__sb_put(&b, hdr, sizeof hdr - 1);
    fk_srv_t *s = r->srv;
    int64_t rows = 0;
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = rec_prepare(s, REC_COLUMNS, &q, " ORDER BY id DESC", limit, 0);
    while (st && !b.oom && sqlite3_step(st) == SQLITE_ROW) {
        char ts[32] = "";
        time_t t = (time_t)sqlite3_column_int64(st, 1);
        struct tm tm;
        if (gmtime_r(&t, &tm)) strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int matched = sqlite3_column_type(st, 4) != SQLITE_NULL;
        csv_num(&b, st, 0, 0);
        fk__sb_put(&b, ",", 1);
        fk__sb_put(&b, ts, strlen(ts));
        fk__sb_put(&b, ",", 1);
        fk__csv_text(&b, (const char *)sqlite3_column_text(st, 2));
        fk__sb_put(&b, ",", 1);
        fk__csv_text(&b, (const char *)sqlite3_column_text(st, 3));
        fk__sb_put(&b, matched ? ",true," : ",false,", matched ? 6 : 7);
        csv_num(&b, st, 4, 0);
        fk__sb_put(&b, ",", 1);
        fk__csv_text(&b, (const char *)sqlite3_column_text(st, 5));
        fk__sb_put(&b, ",", 1);
        csv_num(&b, st, 6, 0);
        for (int c = 7; c <= 9; c++) {
            fk__sb_put(&b, ",", 1);
            csv_num(&b, st, c, 1);
        }
        fk__sb_put(&b, "\r\n", 2);
        rows++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "records");
    snprintf(r->audit_detail, sizeof r->audit_detail, "csv rows=%lld", (long long)rows);
    fk__resp_csv(r, &b, "records.csv");
}

/* ---- dashboard statistics: counts per decision and per source over a day (or from/to) ----
 * "Today" is a calendar day in a stated time zone: tz_offset (minutes east of UTC, e.g. 480 for
 * Beijing; the console sends the browser's), else the server's local zone. from/to override the day. */
void fk__h_stats(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    const char *tzs = fk__req_query(r, "tz_offset"), *from = fk__req_query(r, "from"), *to = fk__req_query(r, "to");
    time_t now = time(NULL);
    long off;
    if (tzs) {
        char *end;
        off = strtol(tzs, &end, 10);
        if (end == tzs || *end || off < -14 * 60 || off > 14 * 60) {
            fk__resp_error(r, 400, "bad_request", "tz_offset must be minutes east of UTC, -840..840");
            return;
        }
    } else {
        struct tm lt;
        localtime_r(&now, &lt);
        off = lt.tm_gmtoff / 60;
    }
    /* local midnight of today in that zone */
    int64_t local = (int64_t)now + off * 60;
    int64_t day0 = local - ((local % 86400) + 86400) % 86400 - off * 60;
    int64_t f = from ? strtoll(from, NULL, 10) : day0, t = to ? strtoll(to, NULL, 10) : day0 + 86400;
    if (t <= f) {
        fk__resp_error(r, 400, "bad_request", "to must be after from");
        return;
    }
    char zone[16];
    int aoff = (int)labs(off); /* <= 840 */
    snprintf(zone, sizeof zone, "UTC%c%02d:%02d", off < 0 ? '-' : '+', aoff / 60 % 100, aoff % 60);
    json_t *totals = json_pack("{s:I,s:I,s:I,s:I}", "match", (json_int_t)0, "stranger", (json_int_t)0, "spoof",
                               (json_int_t)0, "total", (json_int_t)0);
    json_t *by = json_object(); /* source -> counts, kept in source order by the query */
    json_t *sources = json_array();
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db,
                                       "SELECT source, decision, COUNT(*) FROM records WHERE time >= ? AND time < ? "
                                       "GROUP BY source, decision ORDER BY source, decision",
                                       "ii", f, t);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(st, 0), *dec = (const char *)sqlite3_column_text(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (!src) src = "";
        if (!dec) dec = "";
        json_t *row = json_object_get(by, src);
        if (!row) {
            row = json_pack("{s:s,s:I,s:I,s:I,s:I}", "source", src, "match", (json_int_t)0, "stranger", (json_int_t)0,
                            "spoof", (json_int_t)0, "total", (json_int_t)0);
            json_object_set(by, src, row);
            json_array_append_new(sources, row);
        }
        json_t *c = json_object_get(row, dec);
        json_object_set_new(row, dec, json_integer((c ? json_integer_value(c) : 0) + n));
        json_object_set_new(row, "total", json_integer(json_integer_value(json_object_get(row, "total")) + n));
        c = json_object_get(totals, dec);
        json_object_set_new(totals, dec, json_integer((c ? json_integer_value(c) : 0) + n));
        json_object_set_new(totals, "total", json_integer(json_integer_value(json_object_get(totals, "total")) + n));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    json_decref(by);
    size_t persons = 0, faces = 0;
    pthread_mutex_lock(&s->gallery_lock);
    fk_store_count(fk_gallery_store(s->gallery), &persons, &faces);
    pthread_mutex_unlock(&s->gallery_lock);
    fk__resp_json(r, 200, json_pack("{s:I,s:I,s:s,s:i,s:I,s:o,s:o,s:{s:I,s:I}}", "from", (json_int_t)f, "to", (json_int_t)t,
                                    "timezone", zone, "tz_offset", (int)off, "generated_at", (json_int_t)now, "totals",
                                    totals, "by_source", sources, "gallery", "persons", (json_int_t)persons, "faces",
                                    (json_int_t)faces));
}

void fk__h_record_get(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, REC_COLUMNS " WHERE id=?", "i", r->ids[0]);
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
