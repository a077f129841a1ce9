/*
 * auth.c — accounts and credentials of `facekit serve`: Argon2id password hashes (libargon2), login with
 * a one-time expiring captcha and lockout after 5 failures (every failure recorded: time, address,
 * reason), cookie sessions (HttpOnly, SameSite=Strict, CSRF token), API keys (SHA-256 of 32 random
 * bytes, last-used time, revocable) and the role table. Secrets are never logged or audited.
 */
#include "server/server.h"

#include <argon2.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
    const char *name;
    int bit;
} roles[] = {{"admin", FK_ROLE_ADMIN}, {"operator", FK_ROLE_OPERATOR}, {"auditor", FK_ROLE_AUDITOR},
             {"device", FK_ROLE_DEVICE}};

int fk__role_parse(const char *s) {
    for (size_t i = 0; s && i < 4; i++)
        if (!strcmp(s, roles[i].name)) return roles[i].bit;
    return 0;
}

const char *fk__role_name(int role) {
    for (size_t i = 0; i < 4; i++)
        if (role == roles[i].bit) return roles[i].name;
    return "anonymous";
}

/* OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane */
#define PW_T 2
#define PW_M 19456
#define PW_P 1

int fk__pw_hash(const char *pw, char *out, size_t outsize) {
    uint8_t salt[16];
    char hex[40];
    fk__random_hex(hex, 16);
    for (int i = 0; i < 16; i++) salt[i] = (uint8_t)strtoul((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16);
    int rc = argon2id_hash_encoded(PW_T, PW_M, PW_P, pw, strlen(pw), salt, sizeof salt, 32, out, outsize);
    return rc == ARGON2_OK ? 0 : -1;
}

int fk__pw_verify(const char *encoded, const char *pw) {
    return argon2id_verify(encoded, pw, strlen(pw)) == ARGON2_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* captcha store: in memory, one-time, expiring                                                    */

#define N_CAPTCHA 512
typedef struct {
    char id[33];
    char answer[8];
    double expires;
} captcha_t;
typedef struct {
    pthread_mutex_t lock;
    captcha_t c[N_CAPTCHA];
    size_t next;
} captchas_t;

void fk__captcha_init(fk_srv_t *s) {
    captchas_t *c = fk__calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->lock, NULL);
    s->captchas = c;
}

void fk__captcha_free(fk_srv_t *s) {
    captchas_t *c = s->captchas;
    if (!c) return;
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof *c);
    fk__free(c);
    s->captchas = NULL;
}

static const char captcha_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

void fk__h_captcha(fk_req_t *r) {
    captchas_t *cs = r->srv->captchas;
    char rnd[16], answer[8], id[33];
    fk__random_hex(rnd, 5);
    for (int i = 0; i < 5; i++) answer[i] = captcha_alphabet[(unsigned char)rnd[i] * 7u % 32u];
    /* random hex digits are a weak source for the letters: mix in more randomness */
    char more[16];
    fk__random_hex(more, 5);
    for (int i = 0; i < 5; i++)
        answer[i] = captcha_alphabet[(strtoul((char[3]){more[2 * i], more[2 * i + 1], 0}, NULL, 16)) % 32u];
    answer[5] = 0;
#ifdef FK_TEST_HOOKS
    /* test-only: compiled only with -DFK_TEST_HOOKS (the facekit-testhooks binary), never in a release */
    const char *forced = getenv("FK_TEST_CAPTCHA_ANSWER");
    if (forced && *forced) snprintf(answer, sizeof answer, "%.5s", forced);
#endif
    fk__random_hex(id, 16);
    void *png = NULL;
    size_t n = 0;
    if (fk__captcha_png(160, 60, answer, &png, &n)) {
        fk__resp_error(r, 500, "internal", "cannot draw the captcha");
        return;
    }
    pthread_mutex_lock(&cs->lock);
    captcha_t *slot = &cs->c[cs->next++ % N_CAPTCHA];
    snprintf(slot->id, sizeof slot->id, "%s", id);
    snprintf(slot->answer, sizeof slot->answer, "%s", answer);
    slot->expires = fk__now() + r->srv->cfg.captcha_ttl;
    pthread_mutex_unlock(&cs->lock);
    char *b64 = fk__b64_encode(png, n);
    fk_free(png);
    if (!b64) {
        fk__resp_error(r, 500, "internal", "out of memory");
        return;
    }
    size_t ul = strlen(b64) + 32;
    char *url = fk__malloc(ul);
    if (url) snprintf(url, ul, "data:image/png;base64,%s", b64);
    fk__free(b64);
    fk__resp_json(r, 200, json_pack("{s:s,s:s?,s:i}", "captcha_id", id, "image", url, "expires_in",
                                    r->srv->cfg.captcha_ttl));
    fk__free(url);
}

/* consumes the captcha whatever the answer: one attempt per picture */
static int captcha_check(fk_srv_t *s, const char *id, const char *answer) {
    captchas_t *cs = s->captchas;
    int ok = 0;
    if (!id || !answer || !*id) return 0;
    pthread_mutex_lock(&cs->lock);
    for (size_t i = 0; i < N_CAPTCHA; i++) {
        captcha_t *c = &cs->c[i];
        if (c->id[0] && !strcmp(c->id, id)) {
            ok = c->expires > fk__now() && !strcasecmp(c->answer, answer);
            memset(c, 0, sizeof *c);
            break;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    return ok;
}

/* ---------------------------------------------------------------------------------------------- */
/* principal of a request                                                                          */

void fk__auth_identify(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    int64_t now = (int64_t)time(NULL);
    const char *key = fk__req_header(r, "X-API-Key");
    if (key && *key) {
        char h[65];
        fk__sha256_hex(key, strlen(key), h);
        pthread_mutex_lock(&s->db_lock);
        sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT id, name, role, last_used_at FROM apikeys WHERE key_hash=? AND revoked=0", "s", h);
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            r->key_id = sqlite3_column_int64(st, 0);
            snprintf(r->who, sizeof r->who, "%s", (const char *)sqlite3_column_text(st, 1));
            r->role = fk__role_parse((const char *)sqlite3_column_text(st, 2));
            if (!r->role) r->role = FK_ROLE_ANON;
            snprintf(r->actor, sizeof r->actor, "apikey:%s", r->who);
            int64_t last = sqlite3_column_int64(st, 3);
            sqlite3_finalize(st);
            st = NULL;
            if (now - last >= 10) /* coarse: keeps the hot path free of a write per request */
                fk__sdb_exec(s->db, "UPDATE apikeys SET last_used_at=? WHERE id=?", "ii", now, r->key_id);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->db_lock);
        return;
    }
    const char *cookie = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "fk_session");
    if (!cookie || !*cookie) return;
    char h[65];
    fk__sha256_hex(cookie, strlen(cookie), h);
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db,
                                       "SELECT u.id, u.username, u.role, u.must_change, s.csrf FROM sessions s JOIN users u "
                                       "ON u.id=s.user_id WHERE s.token_hash=? AND s.expires_at>? AND u.disabled=0",
                                       "si", h, now);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        r->user_id = sqlite3_column_int64(st, 0);
        snprintf(r->who, sizeof r->who, "%s", (const char *)sqlite3_column_text(st, 1));
        r->role = fk__role_parse((const char *)sqlite3_column_text(st, 2));
        if (!r->role) r->role = FK_ROLE_ANON;
        r->must_change = sqlite3_column_int(st, 3);
        snprintf(r->csrf, sizeof r->csrf, "%s", (const char *)sqlite3_column_text(st, 4));
        snprintf(r->actor, sizeof r->actor, "user:%s", r->who);
        snprintf(r->session_hash, sizeof r->session_hash, "%s", h);
        r->is_session = 1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* accounts                                                                                        */

static int valid_username(const char *n) {
    size_t l = strlen(n);
    if (l < 1 || l > 64) return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') || strchr("_.@-", *n)))
            return 0;
    return 1;
}

int fk__user_create(fk_srv_t *s, const char *name, const char *role, const char *pw, int must_change, int64_t *id,
                    char *err, size_t errsize) {
    if (!name || !valid_username(name)) {
        snprintf(err, errsize, "username must be 1..64 of A-Z a-z 0-9 _ . @ -");
        return FK_EINVAL;
    }
    if (!fk__role_parse(role)) {
        snprintf(err, errsize, "role must be admin, operator, auditor or device");
        return FK_EINVAL;
    }
    if (!pw || strlen(pw) < 8) {
        snprintf(err, errsize, "password must have at least 8 characters");
        return FK_EINVAL;
    }
    char hash[256];
    if (fk__pw_hash(pw, hash, sizeof hash)) {
        snprintf(err, errsize, "cannot hash the password");
        return FK_EINTERNAL;
    }
    pthread_mutex_lock(&s->db_lock);
    int rc = FK_OK;
    if (fk__sdb_int(s->db, "SELECT id FROM users WHERE username=?", "s", name) >= 0) {
        snprintf(err, errsize, "user %s already exists", name);
        rc = FK_EMISMATCH;
    } else if (fk__sdb_exec(s->db, "INSERT INTO users(username, role, pw_hash, must_change, created_at) VALUES(?,?,?,?,?)",
                            "sssii", name, role, hash, (int64_t)must_change, (int64_t)time(NULL))) {
        snprintf(err, errsize, "database error");
        rc = FK_EIO;
    } else if (id)
        *id = sqlite3_last_insert_rowid(s->db);
    pthread_mutex_unlock(&s->db_lock);
    return rc;
}

int fk__apikey_create(fk_srv_t *s, const char *name, const char *role, char key_out[80], int64_t *id) {
    char raw[65];
    fk__random_hex(raw, 32);
    snprintf(key_out, 80, "fk_%s", raw);
    char h[65];
    fk__sha256_hex(key_out, strlen(key_out), h);
    char prefix[12];
    snprintf(prefix, sizeof prefix, "%.8s", key_out);
    pthread_mutex_lock(&s->db_lock);
    int rc = fk__sdb_exec(s->db, "INSERT INTO apikeys(name, role, key_hash, prefix, created_at) VALUES(?,?,?,?,?)", "ssssi",
                          name, role, h, prefix, (int64_t)time(NULL));
    if (!rc && id) *id = sqlite3_last_insert_rowid(s->db);
    pthread_mutex_unlock(&s->db_lock);
    return rc ? FK_EIO : FK_OK;
}

static int lockout_minutes(fk_srv_t *s) {
    json_t *st = fk__settings_get(s);
    int m = (int)json_integer_value(json_object_get(st, "lockout_minutes"));
    json_decref(st);
    return m > 0 ? m : 15;
}

static void login_fail(fk_req_t *r, const char *user, const char *reason) {
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "INSERT INTO login_failures(time, address, username, reason) VALUES(?,?,?,?)", "isss",
                 (int64_t)time(NULL), r->addr, user ? user : "", reason);
    pthread_mutex_unlock(&s->db_lock);
    fk__srv_log(s, FK_LOG_WARN, "login failed for \"%.64s\" from %s: %s", user ? user : "", r->addr, reason);
    fk__resp_error(r, 401, "login_failed", "Login failed, please log in again.");
    snprintf(r->audit_detail, sizeof r->audit_detail, "login_failed: %s", reason);
    snprintf(r->audit_target, sizeof r->audit_target, "user:%.100s", user ? user : "");
}

void fk__h_login(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    char t1[64], t2[64], t3[64], t4[64];
    const char *user = fk__req_text(r, "username", t1, sizeof t1);
    const char *pw = fk__req_text(r, "password", t2, sizeof t2);
    const char *cid = fk__req_text(r, "captcha_id", t3, sizeof t3);
    const char *cans = fk__req_text(r, "captcha", t4, sizeof t4);
    if (!user || !pw) {
        login_fail(r, user, "missing username or password");
        return;
    }
    if (!captcha_check(s, cid, cans)) {
        login_fail(r, user, "wrong or expired captcha");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db,
                                       "SELECT id, pw_hash, disabled, failures, locked_until, role, must_change FROM users "
                                       "WHERE username=?",
                                       "s", user);
    int found = st && sqlite3_step(st) == SQLITE_ROW;
    int64_t uid = 0, locked_until = 0;
    int disabled = 0, failures = 0, must_change = 0;
    char hash[256] = "", role[32] = "";
    if (found) {
        uid = sqlite3_column_int64(st, 0);
        snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 1));
        disabled = sqlite3_column_int(st, 2);
        failures = sqlite3_column_int(st, 3);
        locked_until = sqlite3_column_int64(st, 4);
        snprintf(role, sizeof role, "%s", (const char *)sqlite3_column_text(st, 5));
        must_change = sqlite3_column_int(st, 6);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    if (!found) {
        /* same Argon2 work as a real check, so that timing does not tell which usernames exist */
        char dummy[256];
        fk__pw_hash(pw, dummy, sizeof dummy);
        login_fail(r, user, "unknown user");
        return;
    }
    if (locked_until > now) {
        login_fail(r, user, "account locked");
        return;
    }
    if (disabled) {
        login_fail(r, user, "account disabled");
        return;
    }
    if (!fk__pw_verify(hash, pw)) {
        failures++;
        int lock = failures >= 5;
        int mins = lock ? lockout_minutes(s) : 0;
        pthread_mutex_lock(&s->db_lock);
        fk__sdb_exec(s->db, "UPDATE users SET failures=?, locked_until=? WHERE id=?", "iii", (int64_t)(lock ? 0 : failures),
                     lock ? now + 60 * (int64_t)mins : locked_until, uid);
        pthread_mutex_unlock(&s->db_lock);
        login_fail(r, user, lock ? "wrong password; account locked" : "wrong password");
        return;
    }
    char token[65], csrf[65], th[65];
    fk__random_hex(token, 32);
    fk__random_hex(csrf, 24);
    fk__sha256_hex(token, strlen(token), th);
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "UPDATE users SET failures=0, locked_until=0, last_login_at=? WHERE id=?", "ii", now, uid);
    fk__sdb_exec(s->db, "DELETE FROM sessions WHERE expires_at<=?", "i", now);
    fk__sdb_exec(s->db, "INSERT INTO sessions(token_hash, user_id, csrf, created_at, expires_at) VALUES(?,?,?,?,?)",
                 "sisii", th, uid, csrf, now, now + s->cfg.session_ttl);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->set_cookie, sizeof r->set_cookie, "fk_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", token,
             s->cfg.session_ttl, s->cfg.tls_cert[0] ? "; Secure" : "");
    snprintf(r->actor, sizeof r->actor, "user:%.100s", user);
    r->role = fk__role_parse(role);
    snprintf(r->audit_target, sizeof r->audit_target, "user:%.100s", user);
    fk__srv_log(s, FK_LOG_INFO, "login: %s from %s", user, r->addr);
    fk__resp_json(r, 200,
                  json_pack("{s:{s:I,s:s,s:s,s:b},s:s,s:b}", "user", "id", (json_int_t)uid, "username", user, "role", role,
                            "must_change_password", must_change, "csrf_token", csrf, "must_change_password", must_change));
}

void fk__h_logout(fk_req_t *r) {
    if (r->is_session) {
        pthread_mutex_lock(&r->srv->db_lock);
        fk__sdb_exec(r->srv->db, "DELETE FROM sessions WHERE token_hash=?", "s", r->session_hash);
        pthread_mutex_unlock(&r->srv->db_lock);
    }
    snprintf(r->set_cookie, sizeof r->set_cookie, "fk_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    fk__resp_json(r, 200, json_pack("{s:b}", "ok", 1));
}

void fk__h_me(fk_req_t *r) {
    json_t *perms = json_array();
    for (size_t i = 0; i < fk__n_routes; i++)
        if (fk__routes[i].roles & r->role) {
            char p[160];
            snprintf(p, sizeof p, "%s %s", fk__routes[i].method, fk__routes[i].pattern);
            json_array_append_new(perms, json_string(p));
        }
    fk__resp_json(r, 200,
                  json_pack("{s:{s:I,s:s,s:s,s:b},s:s,s:s?,s:o}", "user", "id", (json_int_t)(r->user_id ? r->user_id : r->key_id),
                            "username", r->who, "role", fk__role_name(r->role), "must_change_password", r->must_change,
                            "kind", r->is_session ? "session" : "apikey", "csrf_token", r->is_session ? r->csrf : NULL,
                            "permissions", perms));
}

void fk__h_password(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    if (!r->user_id) {
        fk__resp_error(r, 400, "bad_request", "API keys have no password");
        return;
    }
    char t1[256], t2[256];
    const char *old = fk__req_text(r, "old_password", t1, sizeof t1);
    const char *nw = fk__req_text(r, "new_password", t2, sizeof t2);
    if (!old || !nw) {
        fk__resp_error(r, 400, "bad_request", "old_password and new_password are required");
        return;
    }
    if (strlen(nw) < 8 || !strcmp(old, nw)) {
        fk__resp_error(r, 400, "bad_request", "the new password must have at least 8 characters and differ from the old one");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT pw_hash FROM users WHERE id=?", "i", r->user_id);
    char hash[256] = "";
    if (st && sqlite3_step(st) == SQLITE_ROW) snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    if (!hash[0] || !fk__pw_verify(hash, old)) {
        fk__resp_error(r, 401, "unauthenticated", "the old password is wrong");
        return;
    }
    char nh[256];
    if (fk__pw_hash(nw, nh, sizeof nh)) {
        fk__resp_error(r, 500, "internal", "cannot hash the password");
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "UPDATE users SET pw_hash=?, must_change=0 WHERE id=?", "si", nh, r->user_id);
    /* other sessions of this user end; this one stays */
    fk__sdb_exec(s->db, "DELETE FROM sessions WHERE user_id=? AND token_hash<>?", "is", r->user_id, r->session_hash);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "user:%.100s", r->who);
    fk__resp_json(r, 200, json_pack("{s:b}", "ok", 1));
}

void fk__h_roles(fk_req_t *r) {
    json_t *perms = json_object();
    for (size_t k = 0; k < 4; k++) {
        json_t *a = json_array();
        for (size_t i = 0; i < fk__n_routes; i++)
            if (fk__routes[i].roles & (roles[k].bit | FK_ROLE_ANON)) {
                char p[160];
                snprintf(p, sizeof p, "%s %s", fk__routes[i].method, fk__routes[i].pattern);
                json_array_append_new(a, json_string(p));
            }
        json_object_set_new(perms, roles[k].name, a);
    }
    fk__resp_json(r, 200, json_pack("{s:[ssss],s:o}", "roles", "admin", "operator", "auditor", "device", "permissions", perms));
}
