/*
 * notify.c — match / stranger / spoof events POSTed as JSON to the configured notification URL. Events
 * are first written to the outbox table in server.db (in the same lock as the record that caused them),
 * then a notifier thread delivers them with libcurl, oldest first, retrying with a growing delay
 * (1 s, 2 s, 4 s ... notify_max_backoff, default 60 s; all pending ones again at start) while the receiver is down. An event is marked delivered as soon as the
 * receiver answers 2xx, so a restart resends only undelivered events; every event carries a unique
 * event_id (also in the X-Facekit-Event-Id header) so a receiver can drop a repeat.
 */
#include "server/server.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fk__notify_queue(fk_srv_t *s, const char *type, int64_t record_id, const char *source, int64_t person_id,
                      const char *person_name, double score) {
    char id[40];
    fk__random_hex(id, 16);
    int64_t now = (int64_t)time(NULL);
    json_t *ev = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:f}", "event_id", id, "type", type, "time", (json_int_t)now,
                           "record_id", (json_int_t)record_id, "source", source ? source : "", "person_name",
                           person_name ? person_name : "", "score", score);
    json_object_set_new(ev, "person_id", person_id > 0 ? json_integer(person_id) : json_null());
    size_t n = json_dumpb(ev, NULL, 0, JSON_COMPACT);
    char *body = fk__malloc(n + 1);
    if (!body) {
        json_decref(ev);
        return;
    }
    json_dumpb(ev, body, n, JSON_COMPACT);
    body[n] = 0;
    json_decref(ev);
    fk__sdb_exec(s->db, "INSERT INTO outbox(event_id, type, body, created_at, next_at) VALUES(?,?,?,?,0)", "sssi", id, type,
                 body, now);
    fk__free(body);
    pthread_mutex_lock(&s->notify_lock);
    pthread_cond_signal(&s->notify_cond);
    pthread_mutex_unlock(&s->notify_lock);
}

static size_t discard(char *p, size_t size, size_t n, void *u) {
    (void)p;
    (void)u;
    return size * n;
}

/* one attempt; 0 = delivered */
static int post(const char *url, const char *event_id, const char *body, char *err, size_t errsize) {
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errsize, "curl init");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char eh[80];
    snprintf(eh, sizeof eh, "X-Facekit-Event-Id: %s", event_id);
    h = curl_slist_append(h, eh);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 3L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(err, errsize, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (code < 200 || code >= 300) {
        snprintf(err, errsize, "HTTP %ld", code);
        return -1;
    }
    return 0;
}

/* records older than retention_days are deleted at start and then hourly (by this thread) */
void fk__retention_run(fk_srv_t *s) {
    pthread_mutex_lock(&s->db_lock);
    json_t *st = fk__settings_get(s);
    int64_t days = json_integer_value(json_object_get(st, "retention_days"));
    json_decref(st);
    if (days > 0) fk__sdb_exec(s->db, "DELETE FROM records WHERE time < ?", "i", (int64_t)time(NULL) - days * 86400);
    pthread_mutex_unlock(&s->db_lock);
}

static void *notifier(void *arg) {
    fk_srv_t *s = arg;
    double next_retention = fk__now() + 3600;
    while (!s->stopping) {
        if (fk__now() >= next_retention) {
            fk__retention_run(s);
            next_retention = fk__now() + 3600;
        }
        char url[1024] = "";
        pthread_mutex_lock(&s->db_lock);
        json_t *st = fk__settings_get(s);
        const char *u = json_string_value(json_object_get(st, "notify_url"));
        if (u) snprintf(url, sizeof url, "%s", u);
        json_decref(st);
        char id[40] = "", *body = NULL;
        int attempts = 0;
        if (url[0]) {
            sqlite3_stmt *q = fk__sdb_prepare(s->db,
                                              "SELECT event_id, body, attempts FROM outbox WHERE delivered_at=0 AND next_at<=? "
                                              "ORDER BY created_at, rowid LIMIT 1",
                                              "d", fk__now());
            if (q && sqlite3_step(q) == SQLITE_ROW) {
                snprintf(id, sizeof id, "%s", (const char *)sqlite3_column_text(q, 0));
                body = fk__strdup((const char *)sqlite3_column_text(q, 1));
                attempts = sqlite3_column_int(q, 2);
            }
            sqlite3_finalize(q);
        }
        pthread_mutex_unlock(&s->db_lock);
        if (id[0] && body) {
            char err[256] = "";
            int rc = post(url, id, body, err, sizeof err);
            pthread_mutex_lock(&s->db_lock);
            if (!rc)
                fk__sdb_exec(s->db, "UPDATE outbox SET delivered_at=?, attempts=attempts+1, last_error='' WHERE event_id=?", "is",
                             (int64_t)time(NULL), id);
            else {
                double delay = attempts < 6 ? (double)(1 << attempts) : 60.0;
                if (delay > s->cfg.notify_max_backoff) delay = s->cfg.notify_max_backoff;
                fk__sdb_exec(s->db, "UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE event_id=?", "dss",
                             fk__now() + delay, err, id);
            }
            pthread_mutex_unlock(&s->db_lock);
            __atomic_fetch_add(rc ? &s->m_notify_fail : &s->m_notify_ok, 1, __ATOMIC_RELAXED);
            if (rc) fk__srv_log(s, FK_LOG_DEBUG, "notify %s: %s (retrying)", id, err);
            fk__free(body);
            body = NULL;
            if (!rc) continue; /* drain quickly */
        }
        fk__free(body);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)s->cfg.notify_interval_ms * 1000000L;
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_mutex_lock(&s->notify_lock);
        if (!s->stopping) pthread_cond_timedwait(&s->notify_cond, &s->notify_lock, &ts);
        pthread_mutex_unlock(&s->notify_lock);
    }
    return NULL;
}

int fk__notify_start(fk_srv_t *s) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* a restart is a good moment to try every pending event again at once */
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "UPDATE outbox SET next_at=0 WHERE delivered_at=0", "");
    pthread_mutex_unlock(&s->db_lock);
    if (pthread_create(&s->notifier, NULL, notifier, s)) return -1;
    s->notifier_started = 1;
    return 0;
}

void fk__notify_stop(fk_srv_t *s) {
    pthread_mutex_lock(&s->notify_lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->notify_cond);
    pthread_mutex_unlock(&s->notify_lock);
    if (s->notifier_started) pthread_join(s->notifier, NULL);
    s->notifier_started = 0;
    curl_global_cleanup();
}
