/*
 * test_server_log.c — the service's log hook (src/server/config.c) in-process: nothing is printed by the
 * library; lines at or below cfg.log_level reach the callback installed in the config (with its user
 * pointer), others and a NULL callback or server are dropped; log_level comes from the config file and the
 * FK_SERVE_LOG_LEVEL environment override; two servers log to their own callbacks (no process-global
 * level). Also the defaults that the limits rely on (request threads = online cores).
 */
#include "fk_test.h"
#include "server/server.h"

#include <unistd.h>

typedef struct {
    int n;
    int last_level;
    char last[256];
} sink_t;

static void capture(void *user, int level, const char *msg) {
    sink_t *k = user;
    k->n++;
    k->last_level = level;
    snprintf(k->last, sizeof k->last, "%s", msg);
}

int main(void) {
    fk_srv_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    fk__srv_config_default(&a->cfg);
    fk__srv_config_default(&b->cfg);
    FK_CHECK(a->cfg.log == NULL);
    FK_CHECK_INT(a->cfg.log_level, FK_LOG_INFO);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    FK_CHECK_INT(a->cfg.threads, ncpu >= 1 && ncpu <= 256 ? ncpu : 4);

    /* no callback, no server: dropped, no crash */
    fk__srv_log(a, FK_LOG_ERROR, "dropped %d", 1);
    fk__srv_log(NULL, FK_LOG_ERROR, "dropped %d", 2);

    sink_t ka = {0}, kb = {0};
    a->cfg.log = capture;
    a->cfg.log_user = &ka;
    b->cfg.log = capture;
    b->cfg.log_user = &kb;
    b->cfg.log_level = FK_LOG_DEBUG;
    fk__srv_log(a, FK_LOG_INFO, "listening on %s", "127.0.0.1:1");
    FK_CHECK_INT(ka.n, 1);
    FK_CHECK_INT(ka.last_level, FK_LOG_INFO);
    FK_CHECK_STR(ka.last, "listening on 127.0.0.1:1");
    fk__srv_log(a, FK_LOG_DEBUG, "below the level");
    FK_CHECK_INT(ka.n, 1);
    fk__srv_log(b, FK_LOG_DEBUG, "debug for b");   /* b's level is its own */
    FK_CHECK_INT(kb.n, 1);
    FK_CHECK_INT(ka.n, 1);
    FK_CHECK_STR(kb.last, "debug for b");
    /* long lines are cut, not overflowed */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    fk__srv_log(a, FK_LOG_ERROR, "%s", big);
    FK_CHECK_INT(ka.n, 2);
    FK_CHECK_INT(strlen(ka.last), 255);

    /* log_level from a config file, then the environment wins */
    char path[] = "/tmp/fk_server_log_XXXXXX";
    int fd = mkstemp(path);
    FK_CHECK(fd >= 0);
    const char *js = "{\"log_level\": \"warn\", \"threads\": 3}";
    FK_CHECK(write(fd, js, strlen(js)) == (ssize_t)strlen(js));
    close(fd);
    char err[256] = "";
    fk_srv_config_t c;
    fk__srv_config_default(&c);
    unsetenv("FK_SERVE_LOG_LEVEL");
    unsetenv("FK_SERVE_THREADS");
    FK_CHECK_INT(fk__srv_config_load(&c, path, err, sizeof err), 0);
    FK_CHECK_INT(c.log_level, FK_LOG_WARN);
    FK_CHECK_INT(c.threads, 3);
    setenv("FK_SERVE_LOG_LEVEL", "debug", 1);
    FK_CHECK_INT(fk__srv_config_load(&c, path, err, sizeof err), 0);
    FK_CHECK_INT(c.log_level, FK_LOG_DEBUG);
    unsetenv("FK_SERVE_LOG_LEVEL");
    unlink(path);
    FK_CHECK_STR(fk__srv_level_name(FK_LOG_ERROR), "error");
    FK_CHECK_STR(fk__srv_level_name(FK_LOG_DEBUG), "debug");
    FK_CHECK_STR(fk__srv_level_name(99), "debug");
    free(a);
    free(b);
    return fk_t_finish();
}
