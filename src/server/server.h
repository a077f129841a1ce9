/*
 * server.h — internals of `facekit serve` (src/server), the HTTP service on top of the library.
 *
 * Layering: the server is an application: it uses the public API (engine, gallery, images) plus the
 * store's sealing helpers, and owns a second SQLite file (DATA/server.db) for accounts, sessions, API
 * keys, the audit chain, records, settings, the notification outbox and support messages. Nothing below
 * src/server includes this header. Only src/cli/cmd_server.c calls the fk__srv_* entry points.
 *
 * Threads: libmicrohttpd's thread pool calls the handlers; each worker owns an fk_ctx_t (created on its
 * first face request, kept in a list and destroyed at shutdown). server.db is one connection guarded by
 * db_lock; the gallery by gallery_lock; a notifier thread drains the outbox.
 */
#ifndef FK_SERVER_H
#define FK_SERVER_H

#include "core/core.h"
#include "facekit.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>

/* ---- configuration (config.c) ---- */
typedef struct fk_srv_config {
    char data[1024];
    char listen[256];      /* HOST:PORT */
    char tls_cert[1024];   /* PEM files; both set = HTTPS */
    char tls_key[1024];
    char models[1024];
    size_t max_body;       /* bytes */
    size_t max_header;     /* bytes (connection memory limit for headers) */
    int request_timeout;   /* seconds */
    int max_uploads;       /* concurrent requests with a body */
    int threads;           /* worker threads */
    int session_ttl;       /* seconds */
    int captcha_ttl;       /* seconds */
    int notify_interval_ms;
    int notify_max_backoff; /* seconds between retries of an event at most */
    int log_level;         /* 0 error, 1 warn, 2 info, 3 debug */
    int max_connections;   /* open connections at most (each holds up to 2 x max_header + 32 KiB) */
    int max_connections_per_ip; /* 0 = no limit per client address */
    char web_dir[1024];    /* the built web console served at / (static.c); "" = none */
    /* The library never prints: log lines (no newline, secrets never included) go to this callback,
     * installed by the front-end (`facekit serve`: stderr with timestamps); NULL drops them. */
    void (*log)(void *user, int level, const char *msg);
    void *log_user;
} fk_srv_config_t;

void fk__srv_config_default(fk_srv_config_t *c);
/* Reads a JSON config file (NULL = none), then FK_SERVE_* environment overrides. */
int fk__srv_config_load(fk_srv_config_t *c, const char *path, char *err, size_t errsize);

enum { FK_LOG_ERROR = 0, FK_LOG_WARN = 1, FK_LOG_INFO = 2, FK_LOG_DEBUG = 3 };
const char *fk__srv_level_name(int level); /* "error" .. "debug" */
typedef struct fk_srv fk_srv_t;
/* Formats and hands one line to S->cfg.log when LEVEL <= S->cfg.log_level (S may be NULL: dropped). */
void fk__srv_log(const fk_srv_t *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- roles ---- */
enum { FK_ROLE_ADMIN = 1, FK_ROLE_OPERATOR = 2, FK_ROLE_AUDITOR = 4, FK_ROLE_DEVICE = 8, FK_ROLE_ANON = 16 };
#define FK_ROLES_ALL (FK_ROLE_ADMIN | FK_ROLE_OPERATOR | FK_ROLE_AUDITOR | FK_ROLE_DEVICE)
int fk__role_parse(const char *s); /* bit or 0 */
const char *fk__role_name(int role);

/* ---- server.db (db.c) ---- */
typedef struct fk_srv fk_srv_t;
int fk__sdb_open(const char *data_dir, sqlite3 **out, char *err, size_t errsize);
/* Runs SQL with "?" parameters given as a format string: i = int64, d = double, s = text (NULL ok),
 * b = blob (ptr, size_t). Returns SQLITE_OK/DONE as 0, else the sqlite error. The caller holds db_lock. */
int fk__sdb_exec(sqlite3 *db, const char *sql, const char *fmt, ...);
sqlite3_stmt *fk__sdb_prepare(sqlite3 *db, const char *sql, const char *fmt, ...);
int64_t fk__sdb_int(sqlite3 *db, const char *sql, const char *fmt, ...); /* first column of first row, or -1 */

/* ---- the server object ---- */
struct fk_srv {
    fk_srv_config_t cfg;
    sqlite3 *db;
    pthread_mutex_t db_lock;
    fk_engine_t *engine;
    fk_engine_info_t einfo;
    fk_gallery_t *gallery;
    pthread_mutex_t gallery_lock;
    uint8_t key[FK_DATA_KEY_BYTES];
    uint8_t snap_key[32]; /* HMAC-SHA256(data key, label): seals record snapshots */
    /* contexts of worker threads */
    pthread_mutex_t ctx_lock;
    fk_ctx_t **ctxs;
    size_t n_ctxs;
    /* uploads in flight */
    int uploads;
    pthread_mutex_t up_lock;
    /* notifier */
    pthread_t notifier;
    int notifier_started;
    volatile int stopping;
    pthread_mutex_t notify_lock;
    pthread_cond_t notify_cond;
    /* metrics */
    uint64_t m_requests, m_2xx, m_4xx, m_5xx, m_rejected;
    double m_seconds;
    uint64_t m_compare, m_identify, m_notify_ok, m_notify_fail;
    int64_t started_at;
    /* captchas (auth.c) */
    void *captchas;
};

/* ---- requests (http.c) ---- */
typedef struct fk_part {
    char name[128];
    char filename[256];
    char ctype[128];
    const uint8_t *data;
    size_t size;
} fk_part_t;

#define FK_MAX_PARTS 16

typedef struct fk_req {
    fk_srv_t *srv;
    const char *method, *path; /* path without query */
    struct MHD_Connection *conn;
    char addr[64];
    uint8_t *body;
    size_t body_n, body_cap;
    int too_large;
    int counted_upload;
    double t0;
    /* parsed */
    json_t *json;          /* JSON body (object) when Content-Type is JSON */
    fk_part_t parts[FK_MAX_PARTS];
    int n_parts;
    int64_t ids[2];        /* numeric path parameters */
    /* principal */
    int role;              /* FK_ROLE_* or FK_ROLE_ANON */
    int64_t user_id;       /* 0 for API keys */
    int64_t key_id;
    char actor[160];       /* "user:alice", "apikey:door-1", "anonymous" */
    char who[128];         /* name only */
    int is_session;
    int must_change;
    char csrf[80];
    char session_hash[80];
    /* response */
    int status;
    char *resp;            /* fk__malloc'ed */
    size_t resp_n;
    char resp_type[64];
    char cache_control[96]; /* "" = no-store (every API answer); console files set their own */
    char etag[48];          /* console files (static.c) */
    char disposition[128];  /* Content-Disposition of downloads (CSV exports); "" = none */
    int web;                /* 1: a console file: document security headers (static.c) */
    char set_cookie[512];
    char audit_target[128];
    char audit_detail[256];
    int audit;             /* 1: write an audit entry after the handler */
} fk_req_t;

/* responses */
void fk__resp_json(fk_req_t *r, int status, json_t *j); /* steals J */
void fk__resp_error(fk_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fk__resp_bytes(fk_req_t *r, int status, const char *ctype, const void *p, size_t n);
/* input helpers */
/* Body parsers (http.c; fuzzed by tests/fuzz_multipart.c, tests/test_server_parse.c). Multipart (RFC 7578)
 * over a whole buffered body: PARTS point into BODY; never reads outside BODY[0..N); 0 ok, -1 malformed,
 * -2 more than MAX_PARTS fields. JSON: a new object, or NULL with ERR set (any other JSON value too). */
int fk__multipart_parse(const uint8_t *body, size_t n, const char *ctype, fk_part_t *parts, int max_parts,
                        int *n_parts);
json_t *fk__json_body_parse(const uint8_t *body, size_t n, char *err, size_t errsize);
const char *fk__req_query(fk_req_t *r, const char *key);
const char *fk__req_header(fk_req_t *r, const char *key);
const fk_part_t *fk__req_part(fk_req_t *r, const char *name, int nth);
/* An image argument: multipart field NAME, or JSON member NAME (base64, data: prefix allowed). On
 * success *BUF and *N point at the bytes (*OWNED = malloc'ed copy to free). 0 = found, 1 = missing,
 * -1 = bad base64 (response already set). */
int fk__req_blob(fk_req_t *r, const char *name, int nth, uint8_t **buf, size_t *n, int *owned);
/* A text argument from multipart field or JSON member (string or number as text); NULL when absent. */
const char *fk__req_text(fk_req_t *r, const char *name, char *tmp, size_t tmpsize);
double fk__now(void);
char *fk__strcasestr(const char *haystack, const char *needle);

/* base64 */
char *fk__b64_encode(const void *p, size_t n);                 /* malloc */
int fk__b64_decode(const char *s, size_t len, uint8_t **out, size_t *n); /* malloc */
void fk__sha256_hex(const void *p, size_t n, char hex[65]);
void fk__random_hex(char *out, size_t nbytes); /* 2*nbytes hex + NUL */

/* ---- auth (auth.c) ---- */
int fk__pw_hash(const char *pw, char *out, size_t outsize);
int fk__pw_verify(const char *encoded, const char *pw);
/* Fills r->role etc. from the cookie or X-API-Key. */
void fk__auth_identify(fk_req_t *r);
int fk__user_create(fk_srv_t *s, const char *name, const char *role, const char *pw, int must_change,
                    int64_t *id, char *err, size_t errsize);
int fk__apikey_create(fk_srv_t *s, const char *name, const char *role, char key_out[80], int64_t *id);
void fk__captcha_init(fk_srv_t *s);
void fk__captcha_free(fk_srv_t *s);
int fk__captcha_png(int w, int h, const char *text, void **png, size_t *n); /* captcha.c */

/* ---- audit (audit.c) ---- */
/* Appends one entry; holds db_lock itself. */
void fk__audit_add(fk_srv_t *s, const char *actor, const char *role, const char *addr, const char *action,
                   const char *target, int status, const char *detail);
/* 0 = intact (*N entries); else the id of the first bad entry in *BAD. Caller holds db_lock. */
int fk__audit_verify(sqlite3 *db, int64_t *n, int64_t *bad);

/* ---- notifications (notify.c) ---- */
int fk__notify_start(fk_srv_t *s);
void fk__retention_run(fk_srv_t *s); /* deletes records older than the retention_days setting */
void fk__notify_stop(fk_srv_t *s);
/* Queues an event (caller holds db_lock); wakes the notifier. */
void fk__notify_queue(fk_srv_t *s, const char *type, int64_t record_id, const char *source, int64_t person_id,
                      const char *person_name, double score);

/* ---- records (records.c): probe snapshots sealed with AES-256-GCM under a key derived from the data key
 * (nonce 12 | ciphertext | tag 16; the record id is associated data). malloc'ed output. */
int fk__snapshot_seal(fk_srv_t *s, int64_t record_id, const void *pt, size_t n, uint8_t **out, size_t *out_n);
int fk__snapshot_open(fk_srv_t *s, int64_t record_id, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n);

/* ---- CSV exports (records.c): a growing buffer and RFC 4180 text cells with the formula guard (cells
 * starting with = + - @ tab CR get a leading apostrophe). On OOM the buffer sets .oom and stops growing. */
typedef struct fk_sbuf {
    char *p; /* fk__malloc'ed */
    size_t n, cap;
    int oom;
} fk_sbuf_t;
void fk__sb_put(fk_sbuf_t *b, const char *t, size_t n);
void fk__csv_text(fk_sbuf_t *b, const char *v);
/* Answers B as a text/csv attachment FILENAME (takes B's buffer; 503 when B ran out of memory). */
void fk__resp_csv(fk_req_t *r, fk_sbuf_t *b, const char *filename);

/* ---- settings ---- */
json_t *fk__settings_get(fk_srv_t *s); /* new reference; caller holds db_lock */

/* ---- face helpers (routes_face.c) ---- */
fk_ctx_t *fk__srv_ctx(fk_srv_t *s);
/* Decodes uploaded image bytes for the face pipeline (max side FK_FACE_DECODE_MAX_SIDE). NULL = the
 * response is set: 400 bad_image, 413 too_large (pixel limit) or 503 busy (out of memory); WHAT names the
 * argument in the message ("\"a\"", "image 2"). */
fk_image_t *fk__srv_decode(fk_req_t *r, const uint8_t *buf, size_t n, const char *what);

/* ---- routes ---- */
typedef void (*fk_handler_fn)(fk_req_t *r);
typedef struct fk_route {
    const char *method;
    const char *pattern; /* "/api/v1/persons/{id}" — {id} matches digits */
    fk_handler_fn fn;
    int roles;           /* FK_ROLE_* bits allowed; FK_ROLE_ANON = no credentials needed */
    int audit;           /* 1: audited even when a GET (personal data) */
} fk_route_t;
extern const fk_route_t fk__routes[];
extern const size_t fk__n_routes;

void fk__h_health(fk_req_t *r);
void fk__h_metrics(fk_req_t *r);
void fk__h_captcha(fk_req_t *r);
void fk__h_login(fk_req_t *r);
void fk__h_logout(fk_req_t *r);
void fk__h_me(fk_req_t *r);
void fk__h_password(fk_req_t *r);
void fk__h_roles(fk_req_t *r);
void fk__h_detect(fk_req_t *r);
void fk__h_analyze(fk_req_t *r);
void fk__h_compare(fk_req_t *r);
void fk__h_identify(fk_req_t *r);
void fk__h_persons_list(fk_req_t *r);
void fk__h_persons_create(fk_req_t *r);
void fk__h_person_get(fk_req_t *r);
void fk__h_person_delete(fk_req_t *r);
void fk__h_faces_list(fk_req_t *r);
void fk__h_faces_add(fk_req_t *r);
void fk__h_face_image(fk_req_t *r);
void fk__h_records_list(fk_req_t *r);
void fk__h_record_get(fk_req_t *r);
void fk__h_record_snapshot(fk_req_t *r);
void fk__h_settings_get(fk_req_t *r);
void fk__h_settings_put(fk_req_t *r);
void fk__h_users_list(fk_req_t *r);
void fk__h_users_create(fk_req_t *r);
void fk__h_user_get(fk_req_t *r);
void fk__h_user_put(fk_req_t *r);
void fk__h_user_password(fk_req_t *r);
void fk__h_apikeys_list(fk_req_t *r);
void fk__h_apikeys_create(fk_req_t *r);
void fk__h_apikey_delete(fk_req_t *r);
void fk__h_audit_list(fk_req_t *r);
void fk__h_audit_csv(fk_req_t *r);
void fk__h_audit_verify(fk_req_t *r);
void fk__h_login_failures(fk_req_t *r);
void fk__h_support_list(fk_req_t *r);
void fk__h_support_create(fk_req_t *r);
void fk__h_support_reply(fk_req_t *r);
void fk__h_notifications(fk_req_t *r);
void fk__h_person_put(fk_req_t *r);
void fk__h_face_delete(fk_req_t *r);
void fk__h_records_csv(fk_req_t *r);
void fk__h_stats(fk_req_t *r);
void fk__h_models(fk_req_t *r);

/* ---- the web console (static.c) ---- */
struct MHD_Response;
/* Answers GET/HEAD outside /api from cfg.web_dir (no credentials needed); 0 = not a console path. */
int fk__static_serve(fk_req_t *r);
/* Adds the headers the request asked for (ETag, Content-Disposition, console security headers). */
void fk__resp_headers(fk_req_t *r, struct MHD_Response *resp);
/* Logs at start which console directory is served, or why / answers 404. */
void fk__static_check(fk_srv_t *s);

/* ---- entry points (server.c) for src/cli/cmd_server.c ---- */
/* WEB: --web DIR (wins over the config); WEB_DEFAULT: used when neither --web nor the config names one.
 * LOG gets the service's log lines; SAY the few lines meant for the operator's terminal and never for a log
 * (the first admin's one-time password, the address it listens on). Both get LOG_USER. */
int fk__srv_serve(const char *data, const char *listen, const char *config, const char *models, const char *web,
                  const char *web_default, void (*log)(void *user, int level, const char *msg),
                  void (*say)(void *user, const char *line), void *log_user);
/* Offline commands on DATA/server.db. Each writes one message into MSG (the result on 0, the reason otherwise)
 * for the front-end to print; the library prints nothing. */
int fk__srv_user_add(const char *data, const char *name, const char *role, const char *password, char *msg,
                     size_t msgsize);
int fk__srv_apikey_create(const char *data, const char *name, const char *role, char *msg, size_t msgsize);
int fk__srv_audit_verify(const char *data, char *msg, size_t msgsize);

#endif
