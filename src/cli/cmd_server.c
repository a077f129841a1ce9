/*
 * cmd_server.c — the service commands: `serve` (the HTTP API, src/server), `user add`, `apikey create`
 * and `audit verify` (offline work on DATA/server.db). Argument parsing only; the work is in src/server.
 */
#include "cli.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the console directory of this build tree (CMakeLists.txt: <build>/web); none when built elsewhere */
#ifndef FK_DEFAULT_WEB_DIR
#define FK_DEFAULT_WEB_DIR ""
#endif

static const char *opt(int argc, char **argv, const char *name, int *bad) {
    const char *v = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) {
            if (i + 1 >= argc) {
                *bad = 1;
                return NULL;
            }
            v = argv[++i];
        }
    return v;
}

static int flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

/* the service's log: one line per message on stderr, UTC timestamp and level (the library never prints) */
static void serve_log(void *user, int level, const char *msg) {
    (void)user;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s facekit-serve %s: %s\n", ts, fk__srv_level_name(level), msg);
}

/* lines for the operator's terminal (stdout): the first admin's one-time password, the address */
static void serve_say(void *user, const char *line) {
    (void)user;
    printf("facekit serve: %s\n", line);
    fflush(stdout);
}

/* prints an offline command's message: the result on stdout, a failure on stderr with the command's name */
static int report(const char *cmd, int rc, const char *msg) {
    if (rc) fprintf(stderr, "facekit %s: %s\n", cmd, msg);
    else printf("%s\n", msg);
    return rc;
}

int fk_cli_serve(int argc, char **argv) {
    int bad = 0;
    const char *data = opt(argc, argv, "--data", &bad), *listen = opt(argc, argv, "--listen", &bad),
               *config = opt(argc, argv, "--config", &bad), *web = opt(argc, argv, "--web", &bad);
    if (bad || flag(argc, argv, "-h") || flag(argc, argv, "--help")) {
        fprintf(bad ? stderr : stdout,
                "usage: facekit serve --data DIR --listen HOST:PORT [--config FILE] [--web DIR]\n"
                "  --web DIR   the built web console served at / (default: %s;\n"
                "              also the config key web_dir and FK_SERVE_WEB_DIR)\n",
                FK_DEFAULT_WEB_DIR[0] ? FK_DEFAULT_WEB_DIR : "none");
        return bad ? 2 : 0;
    }
    return fk__srv_serve(data, listen, config, fk_cli_models_dir(), web, FK_DEFAULT_WEB_DIR[0] ? FK_DEFAULT_WEB_DIR : NULL, serve_log,
                         serve_say, NULL);
}

int fk_cli_user(int argc, char **argv) {
    int bad = 0;
    const char *data = opt(argc, argv, "--data", &bad), *name = opt(argc, argv, "--name", &bad),
               *role = opt(argc, argv, "--role", &bad);
    if (argc < 2 || strcmp(argv[1], "add") || bad || !data || !name || !role || !flag(argc, argv, "--password-stdin")) {
        fprintf(stderr, "usage: echo PASS | facekit user add --data DIR --name NAME --role ROLE --password-stdin\n"
                        "       ROLE: admin, operator, auditor or device\n");
        return 2;
    }
    char pw[512];
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "facekit user add: no password on standard input\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = 0;
    if (!fk__role_parse(role)) {
        fprintf(stderr, "facekit user add: --role must be admin, operator, auditor or device\n");
        return 2;
    }
    char msg[1400];
    int rc = fk__srv_user_add(data, name, role, pw, msg, sizeof msg);
    memset(pw, 0, sizeof pw);
    return report("user add", rc, msg);
}

int fk_cli_apikey(int argc, char **argv) {
    int bad = 0;
    const char *data = opt(argc, argv, "--data", &bad), *name = opt(argc, argv, "--name", &bad),
               *role = opt(argc, argv, "--role", &bad);
    if (argc < 2 || strcmp(argv[1], "create") || bad || !data || !name || !role) {
        fprintf(stderr, "usage: facekit apikey create --data DIR --role ROLE --name NAME\n");
        return 2;
    }
    char msg[1400];
    int rc = report("apikey create", fk__srv_apikey_create(data, name, role, msg, sizeof msg), msg);
    memset(msg, 0, sizeof msg); /* the key */
    return rc;
}

int fk_cli_audit(int argc, char **argv) {
    int bad = 0;
    const char *data = opt(argc, argv, "--data", &bad);
    if (argc < 2 || strcmp(argv[1], "verify") || bad || !data) {
        fprintf(stderr, "usage: facekit audit verify --data DIR\n");
        return 2;
    }
    char msg[1400];
    return report("audit verify", fk__srv_audit_verify(data, msg, sizeof msg), msg);
}
