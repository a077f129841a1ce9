/*
 * config.c — `facekit serve` configuration: defaults, a JSON config file, then FK_SERVE_* environment
 * overrides (environment wins); and the log hook: lines at or below the configured level go to the callback
 * the front-end installed in the config (the library itself never prints; no process-global state). Secrets
 * never pass through it: callers log names and outcomes, never passwords, keys, cookies or captcha answers.
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fk__srv_level_name(int level) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    return names[level < 0 ? 0 : level > 3 ? 3 : level];
}

void fk__srv_log(const fk_srv_t *s, int level, const char *fmt, ...) {
    if (!s || !s->cfg.log || level > s->cfg.log_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_user, level, line);
}

void fk__srv_config_default(fk_srv_config_t *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->data, sizeof c->data, "data");
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    c->max_body = (size_t)16 << 20;
    c->max_header = 16 << 10;
    c->request_timeout = 30;
    c->max_uploads = 64; /* requests with a body in flight: bounds memory (64 x max_body) */
    /* one request thread per core, each with one inference thread (fk_ctx_t): more threads only share the
     * same cores and thrash their caches */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = ncpu >= 1 && ncpu <= 256 ? (int)ncpu : 4;
    c->session_ttl = 8 * 3600;
    c->captcha_ttl = 120;
    c->notify_interval_ms = 500;
    c->notify_max_backoff = 60;
    c->log_level = FK_LOG_INFO;
    c->max_connections = 1024; /* bounds what slow clients can hold: ~64 MiB of connection memory */
    c->max_connections_per_ip = 0;
}

static int level_of(const char *s) {
    if (!strcmp(s, "error")) return FK_LOG_ERROR;
    if (!strcmp(s, "warn")) return FK_LOG_WARN;
    if (!strcmp(s, "debug")) return FK_LOG_DEBUG;
    return FK_LOG_INFO;
}

/* one table: name, kind (s string, z size, i int, l level), offset */
#define F(n, k, m) {n, k, offsetof(fk_srv_config_t, m), sizeof(((fk_srv_config_t *)0)->m)}
static const struct {
    const char *name;
    char kind;
    size_t off, size;
} fields[] = {
    F("data", 's', data), F("listen", 's', listen), F("tls_cert", 's', tls_cert), F("tls_key", 's', tls_key),
    F("models", 's', models), F("max_body", 'z', max_body), F("max_header", 'z', max_header),
    F("request_timeout", 'i', request_timeout), F("max_uploads", 'i', max_uploads), F("threads", 'i', threads),
    F("session_ttl", 'i', session_ttl), F("captcha_ttl", 'i', captcha_ttl),
    F("notify_interval_ms", 'i', notify_interval_ms), F("notify_max_backoff", 'i', notify_max_backoff),
    F("log_level", 'l', log_level), F("max_connections", 'i', max_connections),
    F("max_connections_per_ip", 'i', max_connections_per_ip), F("web_dir", 's', web_dir),
};
#undef F

static int set_field(fk_srv_config_t *c, size_t i, const char *v, char *err, size_t errsize) {
    char *p = (char *)c + fields[i].off;
    if (fields[i].kind == 's') {
        snprintf(p, fields[i].size, "%s", v);
        return 0;
    }
    if (fields[i].kind == 'l') {
        *(int *)p = level_of(v);
        return 0;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x <= 0) {
        snprintf(err, errsize, "%s: not a positive integer: %s", fields[i].name, v);
        return -1;
    }
    if (fields[i].kind == 'z') *(size_t *)p = (size_t)x;
    else *(int *)p = (int)x;
    return 0;
}

int fk__srv_config_load(fk_srv_config_t *c, const char *path, char *err, size_t errsize) {
    if (path) {
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        if (!j || !json_is_object(j)) {
            snprintf(err, errsize, "%s: %s (line %d)", path, j ? "not a JSON object" : je.text, je.line);
            json_decref(j);
            return -1;
        }
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            size_t i;
            for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
                if (!strcmp(fields[i].name, k)) break;
            if (i == sizeof fields / sizeof fields[0]) {
                snprintf(err, errsize, "%s: unknown setting \"%s\"", path, k);
                json_decref(j);
                return -1;
            }
            char tmp[1100];
            if (json_is_string(v)) snprintf(tmp, sizeof tmp, "%s", json_string_value(v));
            else if (json_is_integer(v)) snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
            else {
                snprintf(err, errsize, "%s: \"%s\" must be a string or an integer", path, k);
                json_decref(j);
                return -1;
            }
            if (set_field(c, i, tmp, err, errsize)) {
                json_decref(j);
                return -1;
            }
        }
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char env[64];
        snprintf(env, sizeof env, "FK_SERVE_%s", fields[i].name);
        for (char *q = env; *q; q++)
            if (*q >= 'a' && *q <= 'z') *q = (char)(*q - 32);
        const char *v = getenv(env);
        if (v && *v && set_field(c, i, v, err, errsize)) return -1;
    }
    return 0;
}
