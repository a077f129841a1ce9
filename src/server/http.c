/*
 * http.c — the HTTP layer of `facekit serve` over libmicrohttpd: request lifecycle with limits (431 JSON
 * for a head over max_header, 413 JSON for a body over max_body, 503 + Retry-After beyond max_uploads
 * bodies in flight; a connection idle for request_timeout seconds, or still sending its body after that
 * long, is closed without an answer: libmicrohttpd has no way to send 408 there; see docs/performance.md
 * "## Service"; beyond max_connections, or max_connections_per_ip from one address, a new connection is
 * closed at once), JSON / multipart / base64 input parsing, JSON error
 * responses, routing with the role matrix (401 without credentials, 403 for a wrong role, CSRF for cookie
 * sessions), the audit hook after each request, and metrics counters.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* case-insensitive strstr (strcasestr is a GNU extension) */
char *fk__strcasestr(const char *h, const char *n) {
    size_t nl = strlen(n);
    for (; *h; h++)
        if (!strncasecmp(h, n, nl)) return (char *)h;
    return nl ? NULL : (char *)h;
}

double fk__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void fk__sha256_hex(const void *p, size_t n, char hex[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void fk__random_hex(char *out, size_t nbytes) {
    unsigned char b[64];
    if (nbytes > sizeof b) nbytes = sizeof b;
    if (RAND_bytes(b, (int)nbytes) != 1) { /* never expected; fall back to /dev/urandom */
        FILE *f = fopen("/dev/urandom", "rb");
        size_t got = f ? fread(b, 1, nbytes, f) : 0;
        if (f) fclose(f);
        (void)got;
    }
    for (size_t i = 0; i < nbytes; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *fk__b64_encode(const void *p, size_t n) {
    const uint8_t *s = p;
    char *o = fk__malloc(4 * ((n + 2) / 3) + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *q++ = b64chars[v >> 18 & 63];
        *q++ = b64chars[v >> 12 & 63];
        *q++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *q = 0;
    return o;
}

/* the value of a base64 digit (standard and URL-safe alphabets), -1 for anything else; no table, so no
 * lazily initialised static shared by the request threads */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int fk__b64_decode(const char *s, size_t len, uint8_t **out, size_t *n) {
    uint8_t *o = fk__malloc(len / 4 * 3 + 4);
    if (!o) return FK_ENOMEM;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
        int v = b64_value(c);
        if (v < 0) {
            fk__free(o);
            return FK_EFORMAT;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *n = k;
    return FK_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* responses                                                                                      */

static void set_body(fk_req_t *r, int status, const char *ctype, char *p, size_t n) {
    fk__free(r->resp);
    r->resp = p;
    r->resp_n = n;
    r->status = status;
    snprintf(r->resp_type, sizeof r->resp_type, "%s", ctype);
}

void fk__resp_json(fk_req_t *r, int status, json_t *j) {
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    char *p = fk__malloc(n + 1);
    if (p && j) json_dumpb(j, p, n, JSON_COMPACT);
    json_decref(j);
    if (!p) {
        set_body(r, 500, "application/json", NULL, 0);
        return;
    }
    p[n] = 0;
    set_body(r, status, "application/json", p, n);
}

void fk__resp_error(fk_req_t *r, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg);
    if (!strcmp(code, "login_failed")) json_object_set_new(e, "message_zh", json_string("登录失败，请重新登录！"));
    fk__resp_json(r, status, json_pack("{s:o}", "error", e));
    snprintf(r->audit_detail, sizeof r->audit_detail, "%s", code);
}

void fk__resp_bytes(fk_req_t *r, int status, const char *ctype, const void *p, size_t n) {
    char *b = fk__malloc(n ? n : 1);
    if (!b) {
        fk__resp_error(r, 500, "internal", "out of memory");
        return;
    }
    memcpy(b, p, n);
    set_body(r, status, ctype, b, n);
}

const char *fk__req_query(fk_req_t *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *fk__req_header(fk_req_t *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

const fk_part_t *fk__req_part(fk_req_t *r, const char *name, int nth) {
    for (int i = 0; i < r->n_parts; i++)
        if (!strcmp(r->parts[i].name, name) && nth-- == 0) return &r->parts[i];
    return NULL;
}

int fk__req_blob(fk_req_t *r, const char *name, int nth, uint8_t **buf, size_t *n, int *owned) {
    *owned = 0;
    const fk_part_t *p = fk__req_part(r, name, nth);
    if (p) {
        *buf = (uint8_t *)p->data;
        *n = p->size;
        return 0;
    }
    if (!r->json) return 1;
    json_t *v = json_object_get(r->json, name);
    if (json_is_array(v)) v = json_array_get(v, (size_t)nth);
    else if (nth > 0) return 1;
    if (!v) return 1;
    if (!json_is_string(v)) {
        fk__resp_error(r, 400, "bad_request", "\"%s\" must be a base64 string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (!strncmp(s, "data:", 5)) {
        const char *c = strchr(s, ',');
        if (c) {
            len -= (size_t)(c + 1 - s);
            s = c + 1;
        }
    }
    if (fk__b64_decode(s, len, buf, n)) {
        fk__resp_error(r, 400, "bad_request", "\"%s\" is not valid base64", name);
        return -1;
    }
    *owned = 1;
    return 0;
}

const char *fk__req_text(fk_req_t *r, const char *name, char *tmp, size_t tmpsize) {
    const fk_part_t *p = fk__req_part(r, name, 0);
    if (p) {
        size_t n = p->size < tmpsize - 1 ? p->size : tmpsize - 1;
        memcpy(tmp, p->data, n);
        tmp[n] = 0;
        return tmp;
    }
    json_t *v = r->json ? json_object_get(r->json, name) : NULL;
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(tmp, tmpsize, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, tmpsize, "%.17g", json_real_value(v));
        return tmp;
    }
    if (json_is_boolean(v)) {
        snprintf(tmp, tmpsize, "%s", json_is_true(v) ? "true" : "false");
        return tmp;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* multipart/form-data (RFC 7578) over the buffered body                                          */

static const uint8_t *memfind(const uint8_t *h, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || hn < nn) return NULL;
    for (const uint8_t *p = h; p + nn <= h + hn; p++) {
        p = memchr(p, needle[0], (size_t)(h + hn - p));
        if (!p || p + nn > h + hn) return NULL;
        if (!memcmp(p, needle, nn)) return p;
    }
    return NULL;
}

static void header_param(const char *hdr, const char *key, char *out, size_t outsize) {
    out[0] = 0;
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = hdr;
    while ((p = fk__strcasestr(p, pat))) {
        if (p > hdr && p[-1] != ' ' && p[-1] != ';') {
            p++;
            continue;
        }
        p += strlen(pat);
        size_t k = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"' && k + 1 < outsize) out[k++] = *p++;
        } else {
            while (*p && *p != ';' && *p != ' ' && *p != '\r' && k + 1 < outsize) out[k++] = *p++;
        }
        out[k] = 0;
        return;
    }
}

int fk__multipart_parse(const uint8_t *body, size_t body_n, const char *ctype, fk_part_t *parts, int max_parts,
                        int *n_parts) {
    *n_parts = 0;
    if (!body || !ctype) return -1;
    char boundary[128];
    header_param(ctype, "boundary", boundary, sizeof boundary);
    if (!boundary[0]) return -1;
    char delim[140];
    int dn = snprintf(delim, sizeof delim, "--%s", boundary);
    const uint8_t *b = body, *end = body + body_n;
    const uint8_t *p = memfind(b, body_n, delim, (size_t)dn);
    if (!p) return -1;
    p += dn;
    while (p + 2 <= end) {
        if (p[0] == '-' && p[1] == '-') return 0; /* closing delimiter */
        if (p[0] == '\r' && p[1] == '\n') p += 2;
        else return -1;
        const uint8_t *he = memfind(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!he) return -1;
        char hdrs[2048];
        size_t hl = (size_t)(he - p) < sizeof hdrs - 1 ? (size_t)(he - p) : sizeof hdrs - 1;
        memcpy(hdrs, p, hl);
        hdrs[hl] = 0;
        const uint8_t *data = he + 4;
        char d2[150];
        int d2n = snprintf(d2, sizeof d2, "\r\n%s", delim);
        const uint8_t *next = memfind(data, (size_t)(end - data), d2, (size_t)d2n);
        if (!next) return -1;
        if (*n_parts >= max_parts) return -2;
        fk_part_t *pt = &parts[(*n_parts)++];
        memset(pt, 0, sizeof *pt);
        char *cd = fk__strcasestr(hdrs, "content-disposition:");
        if (cd) {
            char *eol = strstr(cd, "\r\n");
            char line[1024];
            size_t ll = eol ? (size_t)(eol - cd) : strlen(cd);
            if (ll >= sizeof line) ll = sizeof line - 1;
            memcpy(line, cd, ll);
            line[ll] = 0;
            header_param(line, "name", pt->name, sizeof pt->name);
            header_param(line, "filename", pt->filename, sizeof pt->filename);
        }
        char *ct = fk__strcasestr(hdrs, "content-type:");
        if (ct) {
            ct += 13;
            while (*ct == ' ') ct++;
            size_t k = 0;
            while (ct[k] && ct[k] != '\r' && k + 1 < sizeof pt->ctype) k++;
            memcpy(pt->ctype, ct, k);
            pt->ctype[k] = 0;
        }
        pt->data = data;
        pt->size = (size_t)(next - data);
        p = next + d2n;
    }
    return -1;
}

json_t *fk__json_body_parse(const uint8_t *body, size_t n, char *err, size_t errsize) {
    json_error_t je;
    json_t *j = json_loadb((const char *)body, n, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        snprintf(err, errsize, "%s (line %d, column %d)", j ? "other JSON value" : je.text, je.line, je.column);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---------------------------------------------------------------------------------------------- */
/* routing                                                                                        */

static int match(const char *pattern, const char *path, int64_t ids[2]) {
    int k = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *e = strchr(pattern, '}');
            if (!e) return 0;
            pattern = e + 1;
            if (*path < '0' || *path > '9') return 0;
            int64_t v = 0;
            int digits = 0;
            while (*path >= '0' && *path <= '9') {
                if (++digits > 15) return 0;
                v = v * 10 + (*path++ - '0');
            }
            if (k < 2) ids[k++] = v;
            continue;
        }
        if (*pattern++ != *path++) return 0;
    }
    return *pattern == 0 && *path == 0;
}

static void add(uint64_t *c, uint64_t v) { __atomic_fetch_add(c, v, __ATOMIC_RELAXED); }

static void dispatch(fk_req_t *r) {
    const fk_route_t *route = NULL;
    int path_found = 0;
    for (size_t i = 0; i < fk__n_routes; i++) {
        int64_t ids[2] = {0, 0};
        if (!match(fk__routes[i].pattern, r->path, ids)) continue;
        path_found = 1;
        if (!strcmp(fk__routes[i].method, r->method) ||
            (!strcmp(r->method, "HEAD") && !strcmp(fk__routes[i].method, "GET"))) {
            route = &fk__routes[i];
            memcpy(r->ids, ids, sizeof ids);
            break;
        }
    }
    int state_changing = strcmp(r->method, "GET") && strcmp(r->method, "HEAD");
    r->audit = state_changing;
    if (!route) {
        if (!path_found && fk__static_serve(r)) { /* the web console (static.c): no credentials, not audited */
            r->audit = 0;
            return;
        }
        if (path_found) fk__resp_error(r, 405, "method_not_allowed", "%s is not allowed on %s", r->method, r->path);
        else fk__resp_error(r, 404, "not_found", "no such endpoint: %s", r->path);
        r->audit = 0;
        return;
    }
    if (route->audit) r->audit = 1;
    /* detect, analyze and compare are POSTs only to carry images: they store nothing and read no stored
     * personal data, so they leave no audit entry (a hash-chained INSERT with fsync per request) unless
     * refused for credentials (below, 401/403 keep the entry) */
    if (route->fn == fk__h_detect || route->fn == fk__h_analyze || route->fn == fk__h_compare) r->audit = 2;
    fk__auth_identify(r);
    if (!(route->roles & FK_ROLE_ANON)) {
        if (r->role == FK_ROLE_ANON) {
            fk__resp_error(r, 401, "unauthenticated", "log in or send an API key (X-API-Key)");
            return;
        }
        if (!(route->roles & r->role)) {
            fk__resp_error(r, 403, "forbidden", "the role %s may not %s %s", fk__role_name(r->role), r->method,
                           route->pattern);
            return;
        }
        if (r->must_change && route->fn != fk__h_password && route->fn != fk__h_me && route->fn != fk__h_logout) {
            fk__resp_error(r, 403, "password_change_required", "change your one-time password first");
            return;
        }
        if (r->is_session && state_changing) {
            const char *t = fk__req_header(r, "X-CSRF-Token");
            if (!t || strcmp(t, r->csrf)) {
                fk__resp_error(r, 403, "csrf", "missing or wrong X-CSRF-Token header");
                return;
            }
        }
    }
    if (r->too_large) {
        fk__resp_error(r, 413, "too_large", "request body larger than %zu bytes", r->srv->cfg.max_body);
        return;
    }
    const char *ct = fk__req_header(r, "Content-Type");
    if (r->body_n && ct && !strncasecmp(ct, "application/json", 16)) {
        char jerr[200];
        r->json = fk__json_body_parse(r->body, r->body_n, jerr, sizeof jerr);
        if (!r->json) {
            fk__resp_error(r, 400, "bad_json", "the body is not a JSON object: %s", jerr);
            return;
        }
    } else if (r->body_n && ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        int rc = fk__multipart_parse(r->body, r->body_n, ct, r->parts, FK_MAX_PARTS, &r->n_parts);
        if (rc) {
            fk__resp_error(r, 400, "bad_request",
                           rc == -2 ? "too many multipart fields" : "malformed multipart/form-data body");
            return;
        }
    } else if (r->body_n && state_changing) {
        fk__resp_error(r, 415, "unsupported_media_type", "send application/json or multipart/form-data");
        return;
    }
    route->fn(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* libmicrohttpd callbacks                                                                        */

static enum MHD_Result queue(fk_req_t *r) {
    if (!r->resp && !r->status) fk__resp_error(r, 500, "internal", "no response");
    struct MHD_Response *resp =
        r->resp ? MHD_create_response_from_buffer_with_free_callback(r->resp_n, r->resp, fk__free)
                : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO; /* r->resp is freed with the request */
    r->resp = NULL;
    MHD_add_response_header(resp, "Content-Type", r->resp_type[0] ? r->resp_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", r->cache_control[0] ? r->cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->set_cookie[0]) MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
    if (r->status == 503) MHD_add_response_header(resp, "Retry-After", "1"); /* every 503 is a momentary "busy" */
    fk__resp_headers(r, resp); /* static.c: ETag, Content-Disposition, console security headers */
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* seconds on the monotonic clock: request durations and the body time limit ignore wall-clock steps */
static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* the size of the request head as received (name: value CRLF per header) */
static enum MHD_Result header_bytes(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    fk_srv_t *s = cls;
    fk_req_t *r = *con_cls;
    if (!r) {
        r = fk__calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->t0 = mono_now();
        r->role = FK_ROLE_ANON;
        snprintf(r->actor, sizeof r->actor, "anonymous");
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            char host[64] = "";
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
            snprintf(r->addr, sizeof r->addr, "%s", host);
        }
        size_t hsize = strlen(url) + strlen(method) + 16;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, header_bytes, &hsize);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, header_bytes, &hsize); /* the query string */
        if (hsize > s->cfg.max_header) {
            fk__srv_log(s, FK_LOG_INFO, "%s %s %s -> 431: head of %zu bytes", r->addr, method, url, hsize);
            fk__resp_error(r, 431, "headers_too_large", "request headers larger than %zu bytes", s->cfg.max_header);
            add(&s->m_rejected, 1);
            return queue(r);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
            fk__srv_log(s, FK_LOG_INFO, "%s %s %s -> 413: Content-Length %s", r->addr, method, url, cl);
            fk__resp_error(r, 413, "too_large", "request body larger than %zu bytes", s->cfg.max_body);
            add(&s->m_rejected, 1);
            return queue(r);
        }
        /* a chunked body counts too: it can grow to max_body like any other */
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        if (strcmp(method, "GET") && strcmp(method, "HEAD") && ((cl && strtoull(cl, NULL, 10) > 0) || te)) {
            pthread_mutex_lock(&s->up_lock);
            int busy = s->uploads >= s->cfg.max_uploads;
            if (!busy) {
                s->uploads++;
                r->counted_upload = 1;
            }
            pthread_mutex_unlock(&s->up_lock);
            if (busy) {
                fk__srv_log(s, FK_LOG_WARN, "%s %s %s -> 503: %d uploads in flight (max_uploads)", r->addr, method, url,
                            s->cfg.max_uploads);
                fk__resp_error(r, 503, "busy", "too many uploads in progress; retry later");
                add(&s->m_rejected, 1);
                return queue(r);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (mono_now() - r->t0 > s->cfg.request_timeout) {
            /* libmicrohttpd cannot answer in the middle of an upload: the connection is closed instead */
            fk__srv_log(s, FK_LOG_WARN, "%s %s %s: body still arriving after %d s; connection closed", r->addr, r->method,
                        r->path, s->cfg.request_timeout);
            add(&s->m_rejected, 1);
            return MHD_NO;
        }
        if (r->too_large || r->body_n + n > s->cfg.max_body) {
            r->too_large = 1;
            return MHD_YES;
        }
        if (r->body_n + n + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 65536;
            while (cap < r->body_n + n + 1) cap *= 2;
            uint8_t *nb = fk__realloc(r->body, cap);
            if (!nb) {
                r->too_large = 1;
                return MHD_YES;
            }
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_n, upload_data, n);
        r->body_n += n;
        r->body[r->body_n] = 0;
        return MHD_YES;
    }
    if (r->status) return MHD_YES; /* already answered (413/503 on the first call) */
    dispatch(r);
    if (r->status >= 500) /* the error body names the cause (never a secret: no input is echoed) */
        fk__srv_log(s, FK_LOG_ERROR, "%s %s %s -> %d %.300s", r->addr, r->method, r->path, r->status, r->resp ? r->resp : "");
    else
        fk__srv_log(s, FK_LOG_DEBUG, "%s %s %s -> %d (%.1f ms)", r->addr, r->method, r->path, r->status,
                    (mono_now() - r->t0) * 1e3);
    if (r->audit == 2 && r->status != 401 && r->status != 403) r->audit = 0;
    if (r->audit) {
        char action[300];
        snprintf(action, sizeof action, "%s %s", r->method, r->path);
        fk__audit_add(s, r->actor, fk__role_name(r->role), r->addr, action, r->audit_target, r->status,
                      r->audit_detail);
    }
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    fk_srv_t *s = cls;
    fk_req_t *r = *con_cls;
    if (!r) return;
    add(&s->m_requests, 1);
    if (r->status >= 200 && r->status < 300) add(&s->m_2xx, 1);
    else if (r->status >= 400 && r->status < 500) add(&s->m_4xx, 1);
    else if (r->status >= 500) add(&s->m_5xx, 1);
    if (r->counted_upload) {
        pthread_mutex_lock(&s->up_lock);
        s->uploads--;
        pthread_mutex_unlock(&s->up_lock);
    }
    json_decref(r->json);
    fk__free(r->body);
    fk__free(r->resp);
    fk__free(r);
    *con_cls = NULL;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = n >= 0 ? fk__malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        fk__free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

void *fk__http_start(fk_srv_t *s, char *err, size_t errsize);
void fk__http_stop(void *d);

/* the running daemon with the PEM text libmicrohttpd points into (it must live as long as the daemon) */
typedef struct http_daemon {
    struct MHD_Daemon *d;
    char *cert, *key;
} http_daemon_t;

/* libmicrohttpd's own error messages go to the server's log, not to stderr */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    fk__srv_log(cls, FK_LOG_WARN, "libmicrohttpd: %s", line);
}

void *fk__http_start(fk_srv_t *s, char *err, size_t errsize) {
    char host[256];
    snprintf(host, sizeof host, "%s", s->cfg.listen);
    char *colon = strrchr(host, ':');
    if (!colon) {
        snprintf(err, errsize, "--listen must be HOST:PORT, got %s", s->cfg.listen);
        return NULL;
    }
    *colon = 0;
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (!strcmp(host, "") || !strcmp(host, "0.0.0.0") || !strcmp(host, "*")) sa.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost")) sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errsize, "--listen: %s is not an IPv4 address", host);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    char *cert = NULL, *key = NULL;
    if (s->cfg.tls_cert[0] && s->cfg.tls_key[0]) {
        cert = read_all(s->cfg.tls_cert);
        key = read_all(s->cfg.tls_key);
        if (!cert || !key) {
            snprintf(err, errsize, "cannot read the TLS certificate or key (%s, %s)", s->cfg.tls_cert, s->cfg.tls_key);
            fk__free(cert);
            fk__free(key);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    /* Room for headers up to twice max_header: a head between max_header and that is answered 431 with our
     * JSON error (on_request); only a larger one meets libmicrohttpd's own 431 (plain HTML body). */
    size_t memlimit = 2 * s->cfg.max_header + 32768;
    http_daemon_t *h = fk__calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errsize, "out of memory");
        fk__free(cert);
        fk__free(key);
        return NULL;
    }
    struct MHD_Daemon *d;
    if (cert)
        d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)s->cfg.request_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, memlimit,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections_per_ip,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                             MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)s->cfg.request_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, memlimit,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections_per_ip,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                             MHD_OPTION_END);
    if (!d) {
        snprintf(err, errsize, "cannot listen on %s (in use, or no permission)", s->cfg.listen);
        fk__free(cert);
        fk__free(key);
        fk__free(h);
        return NULL;
    }
    h->d = d;
    h->cert = cert;
    h->key = key;
    return h;
}

/* graceful: stop accepting, wait (up to the request timeout) for connections in flight, then stop */
void fk__http_stop(void *hd) {
    http_daemon_t *h = hd;
    if (!h) return;
    struct MHD_Daemon *d = h->d;
    if (d) {
        MHD_quiesce_daemon(d);
        for (int i = 0; i < 100; i++) { /* 5 s at most: idle keep-alive connections also count */
            const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
            if (!info || info->num_connections == 0) break;
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(d);
    }
    fk__free(h->cert);
    fk__free(h->key);
    fk__free(h);
}
