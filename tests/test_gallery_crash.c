/*
 * test_gallery_crash.c — crash safety of enrolment (src/gallery over the SQLite store). A child process
 * enrols persons in a loop and prints "ack" on a pipe after each fk_gallery_enroll() returned; the parent
 * kills it with SIGKILL at a random moment, six times over the same data directory. After each kill the
 * gallery is reopened: every acknowledged person must be there with both faces and the exact templates,
 * no person may be half-written, the index (rebuilt from the store) must hold exactly the store's faces,
 * and SQLite's integrity check must pass.
 */
#include "fk_test.h"
#include "store/store.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIM 512
static uint8_t KEY[FK_DATA_KEY_BYTES];

static void tmpl_for(int round, int i, int face, float *v) {
    uint32_t s = (uint32_t)(round * 1000003 + i * 7919 + face * 104729 + 1);
    double n = 0;
    for (int j = 0; j < DIM; j++) {
        s = s * 1664525u + 1013904223u;
        v[j] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 23);
        n += (double)v[j] * v[j];
    }
    for (int j = 0; j < DIM; j++) v[j] = (float)(v[j] / sqrt(n));
}

static fk_gallery_options_t options(const char *db) {
    fk_gallery_options_t o;
    memset(&o, 0, sizeof o);
    o.store.location = db;
    o.store.key = KEY;
    o.model_id = "synthetic";
    o.dim = DIM;
    o.threshold = 0.5;
    return o;
}

static void child(const char *db, int round, int wfd) {
    fk_gallery_options_t o = options(db);
    fk_gallery_t *g = NULL;
    if (fk_gallery_open(&o, &g) != FK_OK) _exit(3);
    float a[DIM], b[DIM];
    static const uint8_t img[300] = {0xff, 0xd8, 0xff, 0xe0};
    for (int i = 0; i < 100000; i++) {
        char name[64], ext[64];
        snprintf(name, sizeof name, "person %d/%d", round, i);
        snprintf(ext, sizeof ext, "ID-%d-%d", round, i);
        tmpl_for(round, i, 0, a);
        tmpl_for(round, i, 1, b);
        fk_face_record_t f[2] = {{0, 0, "synthetic", a, DIM, img, sizeof img, 0.9f, 0},
                                 {0, 0, "synthetic", b, DIM, NULL, 0, 0.8f, 0}};
        fk_person_t p = {0, name, ext, i % 2 ? "east" : "west", NULL, 0, 0, 0};
        int64_t pid, fids[2];
        if (fk_gallery_enroll(g, &p, f, 2, &pid, fids) != FK_OK) _exit(4);
        char line[128];
        int n = snprintf(line, sizeof line, "ack %lld %d %d\n", (long long)pid, round, i);
        if (write(wfd, line, (size_t)n) != n) _exit(5);
    }
    _exit(0);
}

typedef struct {
    long long pid;
    int round, i;
} ack_t;

static int integrity_ok(void *ctx, const fk__val_t *c, int n) {
    *(int *)ctx = n >= 1 && c[0].t == FK__V_TEXT && !strcmp(c[0].p, "ok");
    return 0;
}

int main(void) {
    for (int i = 0; i < 32; i++) KEY[i] = (uint8_t)(3 * i + 5);
    char dir[] = "/tmp/fk_crash_test.XXXXXX", db[128];
    if (!mkdtemp(dir)) return 1;
    snprintf(db, sizeof db, "%s/facekit.db", dir);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    static ack_t acks[200000];
    int nacks = 0;
    const int rounds = 6;
    for (int r = 0; r < rounds; r++) {
        int fds[2];
        if (pipe(fds)) return 1;
        pid_t c = fork();
        if (c == 0) {
            close(fds[0]);
            child(db, r, fds[1]);
        }
        close(fds[1]);
        FILE *in = fdopen(fds[0], "r");
        int target = 2 + rand() % 30, seen = 0, killed = 0;
        char line[128];
        while (fgets(line, sizeof line, in)) {
            ack_t a;
            if (sscanf(line, "ack %lld %d %d", &a.pid, &a.round, &a.i) == 3 && nacks < 200000) acks[nacks++] = a;
            if (++seen == target && !killed) {
                usleep((useconds_t)(rand() % 20000)); /* land somewhere inside a later transaction */
                kill(c, SIGKILL);
                killed = 1;
            }
        }
        fclose(in);
        int st = 0;
        waitpid(c, &st, 0);
        FK_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        fprintf(stderr, "round %d: killed after %d acks (%d acked in total)\n", r, seen, nacks);

        /* restart: everything acknowledged is there, nothing half-written, index == store */
        fk_gallery_options_t o = options(db);
        fk_gallery_t *g = NULL;
        FK_CHECK_INT(fk_gallery_open(&o, &g), FK_OK);
        fk_store_t *s = fk_gallery_store(g);
        int missing = 0, wrong = 0;
        float v[DIM];
        for (int k = 0; k < nacks; k++) {
            fk_person_t *p = NULL;
            fk_face_record_t *f = NULL;
            size_t nf = 0;
            char name[64];
            snprintf(name, sizeof name, "person %d/%d", acks[k].round, acks[k].i);
            if (fk_store_person_get(s, acks[k].pid, &p) != FK_OK) {
                missing++;
                continue;
            }
            if (strcmp(p->name, name) || fk_store_face_list(s, acks[k].pid, 1, &f, &nf) != FK_OK || nf != 2) {
                wrong++;
            } else {
                for (int fi = 0; fi < 2; fi++) {
                    tmpl_for(acks[k].round, acks[k].i, fi, v);
                    if (memcmp(v, f[fi].tmpl, sizeof v)) wrong++;
                }
                if (f[0].image_size != 300) wrong++;
            }
            fk_free(p);
            fk_free(f);
        }
        FK_CHECK_INT(missing, 0);
        FK_CHECK_INT(wrong, 0);
        /* no half-written person: every stored person has both faces */
        fk_person_t *all = NULL;
        size_t np = 0, nfaces = 0, np2 = 0;
        FK_CHECK_INT(fk_store_person_list(s, NULL, &all, &np), FK_OK);
        int partial = 0;
        for (size_t k = 0; k < np; k++) partial += all[k].n_faces != 2;
        FK_CHECK_INT(partial, 0);
        FK_CHECK(np >= (size_t)nacks);
        fk_free(all);
        FK_CHECK_INT(fk_store_count(s, &np2, &nfaces), FK_OK);
        FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), nfaces);
        size_t loaded = 0, skipped = 0;
        fk_gallery_stats(g, &loaded, &skipped);
        FK_CHECK_INT(loaded, nfaces);
        /* each acked person is found by its own template */
        int found = 0;
        for (int k = 0; k < nacks; k++) {
            fk_identify_result_t res;
            tmpl_for(acks[k].round, acks[k].i, 1, v);
            if (fk_gallery_identify(g, v, DIM, "synthetic", NULL, 1, &res) == FK_OK && res.n == 1 &&
                res.matches[0].person_id == acks[k].pid && !res.unknown)
                found++;
        }
        FK_CHECK_INT(found, nacks);
        fk_gallery_close(g);
        fk__db_t *d = NULL;
        char err[128];
        int ok = 0;
        if (fk__db_sqlite_open(db, &d, err, sizeof err) == FK_OK) {
            d->ops->query(d, "PRAGMA integrity_check", NULL, 0, integrity_ok, &ok);
            d->ops->close(d);
        }
        FK_CHECK(ok);
    }
    FK_CHECK(nacks >= rounds * 2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return fk_t_finish();
}
