/*
 * server.c — `facekit serve` assembled: the route table with its permission matrix, start-up (data
 * directory, data key, face engine, gallery, server.db, first admin account, notifier, HTTP daemon),
 * graceful shutdown on SIGTERM/SIGINT (stop accepting, let requests in flight finish, stop the notifier,
 * free the per-thread contexts), and the offline commands behind `facekit user add`, `facekit apikey
 * create` and `facekit audit verify`.
 */
#include "server/server.h"

#include <errno.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define A FK_ROLE_ADMIN
#define O FK_ROLE_OPERATOR
#define U FK_ROLE_AUDITOR
#define D FK_ROLE_DEVICE
#define ANY FK_ROLES_ALL
#define ANON FK_ROLE_ANON

/* The permission matrix: one line per endpoint (docs/openapi.yaml lists the same roles as x-roles). */
const fk_route_t fk__routes[] = {
    {"GET", "/api/v1/health", fk__h_health, ANON | ANY, 0},
    {"GET", "/api/v1/metrics", fk__h_metrics, A | U, 0},
    {"GET", "/metrics", fk__h_metrics, A | U, 0},
    {"GET", "/api/v1/captcha", fk__h_captcha, ANON | ANY, 0},
    {"POST", "/api/v1/auth/login", fk__h_login, ANON | ANY, 0},
    {"POST", "/api/v1/auth/logout", fk__h_logout, ANY, 0},
    {"GET", "/api/v1/auth/me", fk__h_me, ANY, 0},
    {"POST", "/api/v1/auth/password", fk__h_password, ANY, 0},
    {"GET", "/api/v1/roles", fk__h_roles, ANY, 0},
    {"GET", "/api/v1/models", fk__h_models, ANY, 0},
    {"POST", "/api/v1/detect", fk__h_detect, A | O | D, 0},
    {"POST", "/api/v1/analyze", fk__h_analyze, A | O | D, 0},
    {"POST", "/api/v1/compare", fk__h_compare, A | O | D, 0},
    {"POST", "/api/v1/identify", fk__h_identify, A | O | D, 0},
    {"GET", "/api/v1/persons", fk__h_persons_list, A | O, 1},
    {"POST", "/api/v1/persons", fk__h_persons_create, A | O, 1},
    {"GET", "/api/v1/persons/{id}", fk__h_person_get, A | O, 1},
    {"PUT", "/api/v1/persons/{id}", fk__h_person_put, A | O, 1},
    {"DELETE", "/api/v1/persons/{id}", fk__h_person_delete, A | O, 1},
    {"GET", "/api/v1/persons/{id}/faces", fk__h_faces_list, A | O, 1},
    {"POST", "/api/v1/persons/{id}/faces", fk__h_faces_add, A | O, 1},
    {"DELETE", "/api/v1/persons/{id}/faces/{face_id}", fk__h_face_delete, A | O, 1},
    {"GET", "/api/v1/persons/{id}/faces/{face_id}/image", fk__h_face_image, A | O, 1},
    {"GET", "/api/v1/records", fk__h_records_list, A | O | U, 1},
    {"GET", "/api/v1/records.csv", fk__h_records_csv, A | O | U, 1},
    {"GET", "/api/v1/stats", fk__h_stats, A | O | U, 0},
    {"GET", "/api/v1/records/{id}", fk__h_record_get, A | O | U, 1},
    {"GET", "/api/v1/records/{id}/snapshot", fk__h_record_snapshot, A | O, 1},
    {"GET", "/api/v1/settings", fk__h_settings_get, ANY, 0},
    {"PUT", "/api/v1/settings", fk__h_settings_put, A, 1},
    {"GET", "/api/v1/users", fk__h_users_list, A, 1},
    {"POST", "/api/v1/users", fk__h_users_create, A, 1},
    {"GET", "/api/v1/users/{id}", fk__h_user_get, A, 1},
    {"PUT", "/api/v1/users/{id}", fk__h_user_put, A, 1},
    {"POST", "/api/v1/users/{id}/password", fk__h_user_password, A, 1},
    {"GET", "/api/v1/apikeys", fk__h_apikeys_list, A, 0},
    {"POST", "/api/v1/apikeys", fk__h_apikeys_create, A, 1},
    {"DELETE", "/api/v1/apikeys/{id}", fk__h_apikey_delete, A, 1},
    {"GET", "/api/v1/audit", fk__h_audit_list, A | U, 1},
    {"GET", "/api/v1/audit.csv", fk__h_audit_csv, A | U, 1},
    {"GET", "/api/v1/audit/verify", fk__h_audit_verify, A | U, 0},
    {"GET", "/api/v1/login-failures", fk__h_login_failures, A | U, 1},
    {"GET", "/api/v1/support", fk__h_support_list, ANY, 0},
    {"POST", "/api/v1/support", fk__h_support_create, ANY, 1},
    {"POST", "/api/v1/support/{id}/reply", fk__h_support_reply, A, 1},
    {"GET", "/api/v1/notifications", fk__h_notifications, A, 0},
};
const size_t fk__n_routes = sizeof fk__routes / sizeof fk__routes[0];

void *fk__http_start(fk_srv_t *s, char *err, size_t errsize);
void fk__http_stop(void *d);

static int data_dir(const char *dir, char *msg, size_t msgsize) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(msg, msgsize, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* opens server.db only (offline commands) */
static int open_db_only(fk_srv_t *s, const char *data, char *msg, size_t msgsize) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->db_lock, NULL);
    pthread_mutex_init(&s->notify_lock, NULL);
    pthread_cond_init(&s->notify_cond, NULL);
    fk__srv_config_default(&s->cfg);
    snprintf(s->cfg.data, sizeof s->cfg.data, "%s", data);
    if (data_dir(data, msg, msgsize) || fk__sdb_open(data, &s->db, msg, msgsize)) {
        pthread_mutex_destroy(&s->db_lock);
        pthread_mutex_destroy(&s->notify_lock);
        pthread_cond_destroy(&s->notify_cond);
        return -1;
    }
    return 0;
}

static void close_db_only(fk_srv_t *s) {
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->db_lock);
    pthread_mutex_destroy(&s->notify_lock);
    pthread_cond_destroy(&s->notify_cond);
}

int fk__srv_user_add(const char *data, const char *name, const char *role, const char *password, char *msg,
                     size_t msgsize) {
    fk_srv_t s;
    if (open_db_only(&s, data, msg, msgsize)) return 1;
    char err[200];
    int64_t id = 0;
    int rc = fk__user_create(&s, name, role, password, 0, &id, err, sizeof err);
    if (!rc) {
        char t[128];
        snprintf(t, sizeof t, "user:%.100s", name);
        fk__audit_add(&s, "system:cli", "admin", "local", "user add", t, 201, role);
        snprintf(msg, msgsize, "created user %s (id %lld, role %s)", name, (long long)id, role);
    } else
        snprintf(msg, msgsize, "%s", err);
    close_db_only(&s);
    return rc ? 1 : 0;
}

int fk__srv_apikey_create(const char *data, const char *name, const char *role, char *msg, size_t msgsize) {
    if (!fk__role_parse(role)) {
        snprintf(msg, msgsize, "--role must be admin, operator, auditor or device");
        return 2;
    }
    fk_srv_t s;
    if (open_db_only(&s, data, msg, msgsize)) return 1;
    char key[80];
    int64_t id = 0;
    int rc = fk__apikey_create(&s, name, role, key, &id);
    if (!rc) {
        char t[128];
        snprintf(t, sizeof t, "apikey:%.100s", name);
        fk__audit_add(&s, "system:cli", "admin", "local", "apikey create", t, 201, role);
        snprintf(msg, msgsize, "created API key %s (id %lld, role %s); it is shown only now:\n%s", name, (long long)id, role, key);
    } else
        snprintf(msg, msgsize, "cannot store the key");
    memset(key, 0, sizeof key);
    close_db_only(&s);
    return rc ? 1 : 0;
}

int fk__srv_audit_verify(const char *data, char *msg, size_t msgsize) {
    char path[1200];
    snprintf(path, sizeof path, "%s/server.db", data);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(msg, msgsize, "%s does not exist", path);
        return 1;
    }
    fk_srv_t s;
    if (open_db_only(&s, data, msg, msgsize)) return 1;
    int64_t n = 0, bad = 0;
    int rc = fk__audit_verify(s.db, &n, &bad);
    if (rc == 0) snprintf(msg, msgsize, "audit chain intact: %lld entries", (long long)n);
    else if (rc > 0)
        snprintf(msg, msgsize, "chain broken at entry %lld (%lld entries before it are intact)", (long long)bad, (long long)n);
    else
        snprintf(msg, msgsize, "cannot read the audit table");
    close_db_only(&s);
    return rc ? 1 : 0;
}

static int first_admin(fk_srv_t *s, void (*say)(void *user, const char *line), void *say_user) {
    pthread_mutex_lock(&s->db_lock);
    int64_t users = fk__sdb_int(s->db, "SELECT COUNT(*) FROM users", "");
    pthread_mutex_unlock(&s->db_lock);
    if (users != 0) return 0;
    static const char a[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    char hex[40], pw[20];
    fk__random_hex(hex, 16);
    for (int i = 0; i < 16; i++) pw[i] = a[strtoul((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16) % (sizeof a - 1)];
    pw[16] = 0;
    char err[200];
    if (fk__user_create(s, "admin", "admin", pw, 1, NULL, err, sizeof err)) {
        fk__srv_log(s, FK_LOG_ERROR, "cannot create the first admin: %s", err);
        return -1;
    }
    fk__audit_add(s, "system", "admin", "local", "first start", "user:admin", 201, "one-time password");
    /* the one place a password is shown: once, to the operator who started the service (the front-end's
     * terminal, never the log) */
    if (say) {
        char line[200];
        snprintf(line, sizeof line, "first start: created user \"admin\" with the one-time password: %s", pw);
        say(say_user, line);
        say(say_user, "log in with it and change it (the service asks for a new one at first login)");
        memset(line, 0, sizeof line);
    }
    memset(pw, 0, sizeof pw);
    return 0;
}

int fk__srv_serve(const char *data, const char *listen, const char *config, const char *models, const char *web,
                  const char *web_default, void (*log)(void *user, int level, const char *msg),
                  void (*say)(void *user, const char *line), void *log_user) {
    fk_srv_t *s = fk__calloc(1, sizeof *s);
    if (!s) return 1;
    char err[1024] = "";
    fk__srv_config_default(&s->cfg);
    s->cfg.log = log; /* the front-end's logger (the library never prints) */
    s->cfg.log_user = log_user;
    if (fk__srv_config_load(&s->cfg, config, err, sizeof err)) {
        fk__srv_log(s, FK_LOG_ERROR, "config: %s", err);
        fk__free(s);
        return 2;
    }
    if (data) snprintf(s->cfg.data, sizeof s->cfg.data, "%s", data);
    if (listen) snprintf(s->cfg.listen, sizeof s->cfg.listen, "%s", listen);
    if (!s->cfg.models[0] && models) snprintf(s->cfg.models, sizeof s->cfg.models, "%s", models);
    if (web) snprintf(s->cfg.web_dir, sizeof s->cfg.web_dir, "%s", web);
    else if (!s->cfg.web_dir[0] && web_default) snprintf(s->cfg.web_dir, sizeof s->cfg.web_dir, "%s", web_default);
    pthread_mutex_init(&s->db_lock, NULL);
    pthread_mutex_init(&s->gallery_lock, NULL);
    pthread_mutex_init(&s->ctx_lock, NULL);
    pthread_mutex_init(&s->up_lock, NULL);
    pthread_mutex_init(&s->notify_lock, NULL);
    pthread_cond_init(&s->notify_cond, NULL);
    s->started_at = (int64_t)time(NULL);
    int exit_code = 1;
    void *daemon = NULL;
    if (data_dir(s->cfg.data, err, sizeof err)) {
        fk__srv_log(s, FK_LOG_ERROR, "%s", err);
        goto out;
    }
    char kpath[1200];
    snprintf(kpath, sizeof kpath, "%s/facekit.key", s->cfg.data);
    int created = 0;
    if (fk_data_key_load(kpath, 1, s->key, &created, err, sizeof err)) {
        fk__srv_log(s, FK_LOG_ERROR, "data key: %s", err);
        goto out;
    }
    if (created) fk__srv_log(s, FK_LOG_WARN, "created a new data key %s (mode 0600): keep a copy in a safe place", kpath);
    unsigned int ml = 0;
    HMAC(EVP_sha256(), s->key, FK_DATA_KEY_BYTES, (const unsigned char *)"facekit.server.snapshot.v1", 26, s->snap_key, &ml);
    fk_engine_options_t eo;
    memset(&eo, 0, sizeof eo);
    eo.models_dir = s->cfg.models[0] ? s->cfg.models : NULL;
    eo.models = FK_ENGINE_ALL;
    const char *mf = getenv("FK_MANIFEST");
    if (mf && *mf) eo.manifest = mf;
    int rc = fk_engine_open(&eo, &s->engine);
    if (rc) {
        fk__srv_log(s, FK_LOG_WARN, "not every model opened (%s); analyze will lack some attributes", fk_engine_errmsg(s->engine));
        fk_engine_close(s->engine);
        s->engine = NULL;
        eo.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE;
        rc = fk_engine_open(&eo, &s->engine);
    }
    if (rc) {
        fk__srv_log(s, FK_LOG_ERROR, "cannot open the face engine: %s: %s", fk_status_str(rc), fk_engine_errmsg(s->engine));
        goto out;
    }
    fk_engine_info(s->engine, &s->einfo);
    char loc[1200];
    snprintf(loc, sizeof loc, "%s/facekit.db", s->cfg.data);
    fk_gallery_options_t go;
    memset(&go, 0, sizeof go);
    go.store.location = loc;
    go.store.key = s->key;
    go.engine = s->engine;
    go.threshold = -1;
    rc = fk_gallery_open(&go, &s->gallery);
    if (rc) {
        fk__srv_log(s, FK_LOG_ERROR, "gallery: %s: %s", fk_status_str(rc), fk_gallery_errmsg(s->gallery));
        goto out;
    }
    if (fk__sdb_open(s->cfg.data, &s->db, err, sizeof err)) {
        fk__srv_log(s, FK_LOG_ERROR, "%s", err);
        goto out;
    }
    fk__captcha_init(s);
    if (!s->captchas || first_admin(s, say, log_user)) goto out;
    fk__retention_run(s); /* then hourly in the notifier thread */

    /* SIGTERM / SIGINT are taken by sigwait below: block them before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (fk__notify_start(s)) {
        fk__srv_log(s, FK_LOG_ERROR, "cannot start the notifier");
        goto out;
    }
    daemon = fk__http_start(s, err, sizeof err);
    if (!daemon) {
        fk__srv_log(s, FK_LOG_ERROR, "%s", err);
        goto out;
    }
    fk__srv_log(s, FK_LOG_INFO, "listening on %s://%s (data %s, %d threads, model %s)", s->cfg.tls_cert[0] ? "https" : "http",
                s->cfg.listen, s->cfg.data, s->cfg.threads, s->einfo.model_id);
    fk__static_check(s);
    if (say) {
        char line[600];
        snprintf(line, sizeof line, "listening on %s://%s", s->cfg.tls_cert[0] ? "https" : "http", s->cfg.listen);
        say(log_user, line);
    }
    int sig = 0;
    sigwait(&set, &sig);
    fk__srv_log(s, FK_LOG_INFO, "signal %d: shutting down (finishing requests in flight)", sig);
    exit_code = 0;
out:
    fk__http_stop(daemon);
    fk__notify_stop(s);
    for (size_t i = 0; i < s->n_ctxs; i++) fk_ctx_destroy(s->ctxs[i]);
    fk__free(s->ctxs);
    fk_gallery_close(s->gallery);
    fk_engine_close(s->engine);
    if (s->db) sqlite3_close(s->db);
    fk__captcha_free(s);
    memset(s->key, 0, sizeof s->key);
    memset(s->snap_key, 0, sizeof s->snap_key);
    pthread_mutex_destroy(&s->db_lock);
    pthread_mutex_destroy(&s->gallery_lock);
    pthread_mutex_destroy(&s->ctx_lock);
    pthread_mutex_destroy(&s->up_lock);
    pthread_mutex_destroy(&s->notify_lock);
    pthread_cond_destroy(&s->notify_cond);
    if (!exit_code) fk__srv_log(s, FK_LOG_INFO, "stopped");
    fk__free(s);
    return exit_code;
}
