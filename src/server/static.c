/*
 * static.c — the web console at `/`: files of the built console (web/ built by Vite into <build>/web, or
 * `--web DIR` / the web_dir setting) for GET and HEAD on every path outside /api. No credentials are
 * needed here (the login page must load); every /api endpoint keeps its own role check in the router.
 *
 * Safety: the path (already percent-decoded by libmicrohttpd, so "%2e%2e" arrives as "..") must be
 * absolute and have no "." / ".." / dot-file segment, no backslash and no control character; the file is
 * then resolved with realpath() and must lie inside the resolved web directory, so a symlink pointing out
 * of it is refused too. Refusals are plain 404s that reveal nothing.
 *
 * Routing: a path that names a file serves it; a directory serves its index.html; any other path without a
 * file extension gets the console's index.html (SPA fallback; the console routes by #hash, so this only
 * keeps bookmarked paths working), while a missing file with an extension (a stale asset) is a 404 rather
 * than HTML under a script's name.
 *
 * Headers: Content-Type by extension; Vite's content-hashed assets (assets/name-HASH.ext) are cached for a
 * year as immutable, everything else (index.html first) must be revalidated (no-cache + ETag, 304 on
 * If-None-Match); console responses carry a Content-Security-Policy without inline script or style (the
 * built console has none), frame-ancestors 'none' + X-Frame-Options DENY, no referrer, and camera use for
 * this origin only (the enrolment webcam).
 */
#include "server/server.h"

#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_MAX_FILE ((off_t)64 << 20)

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                          "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self' data:; "
                          "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"}, {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"}, {"ico", "image/x-icon"},
    {"woff2", "font/woff2"}, {"woff", "font/woff"}, {"ttf", "font/ttf"}, {"json", "application/json"},
    {"map", "application/json"}, {"webmanifest", "application/manifest+json"}, {"wasm", "application/wasm"},
    {"txt", "text/plain; charset=utf-8"},
};

/* the extension of the last segment of P ("" when none) */
static const char *ext_of(const char *p) {
    const char *slash = strrchr(p, '/'), *dot = strrchr(p, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static const char *type_of(const char *path) {
    const char *e = ext_of(path);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(e, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* 1 when P may be joined to the web directory (see the header comment) */
static int safe_path(const char *p) {
    if (p[0] != '/') return 0;
    for (const char *s = p; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\') return 0;
        if (c == '/' && s[1] == '.') return 0; /* ".", "..", ".git", ".env", ... */
    }
    return 1;
}

/* Vite names built assets name-HASH.ext under assets/, HASH being 8 base64url characters (which may
 * themselves contain '-' or '_') */
static int hashed_asset(const char *p) {
    if (strncmp(p, "/assets/", 8)) return 0;
    const char *dot = strrchr(p, '.'), *slash = strrchr(p, '/');
    if (!dot || dot - slash < 10 || dot[-9] != '-') return 0;
    for (const char *c = dot - 8; c < dot; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    return 1;
}

static void not_found(fk_req_t *r, const char *why) { fk__resp_error(r, 404, "not_found", "%s", why); }

/* reads FULL (already known to be inside ROOT) into the response; 0 = served, -1 = gone meanwhile */
static int send_file(fk_req_t *r, const char *root, const char *full, const char *url_path) {
    char real[PATH_MAX];
    if (!realpath(full, real)) return -1;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) || real[rl] != '/') { /* a symlink out of the web directory */
        not_found(r, "no such file");
        return 0;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    if (st.st_size > WEB_MAX_FILE) {
        close(fd);
        not_found(r, "file too large to serve");
        return 0;
    }
    snprintf(r->etag, sizeof r->etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec);
    if (hashed_asset(url_path)) snprintf(r->cache_control, sizeof r->cache_control, "public, max-age=31536000, immutable");
    else snprintf(r->cache_control, sizeof r->cache_control, "no-cache");
    const char *inm = fk__req_header(r, "If-None-Match");
    if (inm && strstr(inm, r->etag)) {
        close(fd);
        fk__free(r->resp);
        r->resp = NULL;
        r->resp_n = 0;
        r->status = 304;
        snprintf(r->resp_type, sizeof r->resp_type, "%s", type_of(real));
        return 0;
    }
    size_t n = (size_t)st.st_size;
    char *buf = fk__malloc(n ? n : 1);
    size_t got = 0;
    while (buf && got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != n) {
        fk__free(buf);
        fk__resp_error(r, 500, "internal", "cannot read a console file");
        return 0;
    }
    fk__free(r->resp);
    r->resp = buf;
    r->resp_n = n;
    r->status = 200;
    snprintf(r->resp_type, sizeof r->resp_type, "%s", type_of(real));
    return 0;
}

int fk__static_serve(fk_req_t *r) {
    const char *p = r->path;
    if (!strncmp(p, "/api/", 5) || !strcmp(p, "/api") || !strcmp(p, "/metrics")) return 0;
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) return 0;
    r->web = 1;
    char root[PATH_MAX];
    if (!r->srv->cfg.web_dir[0] || !realpath(r->srv->cfg.web_dir, root)) {
        not_found(r, "the web console is not installed (build web/, or start facekit serve --web DIR)");
        return 1;
    }
    if (!safe_path(p) || strlen(p) > PATH_MAX) { /* (a longer path could only be cut short below) */
        not_found(r, "no such file");
        return 1;
    }
    char full[2 * PATH_MAX + 16];
    size_t pl = strlen(p);
    snprintf(full, sizeof full, "%s%s%s", root, p, p[pl - 1] == '/' ? "index.html" : "");
    struct stat st;
    if (!stat(full, &st) && S_ISDIR(st.st_mode)) snprintf(full, sizeof full, "%s%s/index.html", root, p);
    if (!stat(full, &st) && S_ISREG(st.st_mode) && !send_file(r, root, full, p)) return 1;
    /* not a file: a path without an extension is a console route (SPA fallback) */
    if (p[pl - 1] != '/' && ext_of(p)[0]) {
        not_found(r, "no such file");
        return 1;
    }
    snprintf(full, sizeof full, "%s/index.html", root);
    if (send_file(r, root, full, "/index.html")) not_found(r, "the web console has no index.html");
    return 1;
}

void fk__resp_headers(fk_req_t *r, struct MHD_Response *resp) {
    if (r->etag[0]) MHD_add_response_header(resp, "ETag", r->etag);
    if (r->disposition[0]) MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    if (r->web) {
        MHD_add_response_header(resp, "Content-Security-Policy", CSP);
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "Permissions-Policy", "camera=(self), microphone=(), geolocation=()");
        MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    }
}

void fk__static_check(fk_srv_t *s) {
    char idx[1100];
    struct stat st;
    snprintf(idx, sizeof idx, "%s/index.html", s->cfg.web_dir);
    if (!s->cfg.web_dir[0])
        fk__srv_log(s, FK_LOG_WARN, "web console: no directory configured: GET / answers 404 (start with --web DIR)");
    else if (stat(idx, &st) || !S_ISREG(st.st_mode))
        fk__srv_log(s, FK_LOG_WARN, "web console: %s has no index.html: GET / answers 404 (build web/, or start with --web DIR)",
                    s->cfg.web_dir);
    else
        fk__srv_log(s, FK_LOG_INFO, "web console: serving %s at /", s->cfg.web_dir);
}
