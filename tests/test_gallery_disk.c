/*
 * test_gallery_disk.c — encryption at rest, checked on the bytes on disk. Real faces from ../shared/data
 * are enrolled with the `facekit enroll` command (AES-256-GCM and SM4) and one more through the library
 * while its connection stays open (so the WAL and shared-memory files exist and hold the newest pages).
 * Then every file under the data directory is scanned: no 16-byte window of any stored template's float
 * bytes (as decrypted from the store), no SOI+APP marker and no 32-byte window of an enrolled JPEG may
 * appear. After `facekit gallery remove`, not even the removed person's ciphertext may remain on disk.
 */
#include "fk_test.h"
#include "store/store.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    uint8_t *p;
    size_t n;
} bytes_t;

static bytes_t slurp(const char *path) {
    bytes_t b = {0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    b.p = malloc((size_t)n + 1);
    b.n = fread(b.p, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Windows with fewer than 6 distinct byte values (zero padding, 0xFF fill in JPEG headers) are not
 * evidence of the image: every database page has runs of zeros. They are not searched for. */
static int low_entropy(const uint8_t *p, size_t w) {
    uint8_t seen[256] = {0};
    int d = 0;
    for (size_t i = 0; i < w; i++) d += !seen[p[i]]++;
    return d < 6;
}

/* Does any W-byte window of SECRET occur in HAY? Rabin-Karp: hash every window of the secret into a
 * table, roll the same hash over HAY, confirm candidates with memcmp. */
static size_t windows_found(const uint8_t *hay, size_t hn, const uint8_t *secret, size_t sn, size_t w) {
    if (sn < w || hn < w) return 0;
    const uint64_t B = 1099511628211ull;
    uint64_t pw = 1;
    for (size_t i = 1; i < w; i++) pw *= B;
    size_t nwin = sn - w + 1, cap = 1;
    while (cap < 2 * nwin) cap <<= 1;
    uint64_t *hk = calloc(cap, 8);
    uint32_t *ho = calloc(cap, 4);
    uint8_t *used = calloc(cap, 1);
    uint64_t h = 0;
    for (size_t i = 0; i < w; i++) h = h * B + secret[i];
    for (size_t i = 0; i < nwin; i++) {
        if (i) h = (h - secret[i - 1] * pw) * B + secret[i + w - 1];
        if (low_entropy(secret + i, w)) continue;
        size_t s = (size_t)(h * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
        while (used[s]) s = (s + 1) & (cap - 1);
        used[s] = 1, hk[s] = h, ho[s] = (uint32_t)i;
    }
    size_t found = 0;
    h = 0;
    for (size_t i = 0; i < w; i++) h = h * B + hay[i];
    for (size_t i = 0; i + w <= hn; i++) {
        if (i) h = (h - hay[i - 1] * pw) * B + hay[i + w - 1];
        size_t s = (size_t)(h * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
        for (; used[s]; s = (s + 1) & (cap - 1))
            if (hk[s] == h && !memcmp(hay + i, secret + ho[s], w)) {
                found++;
                break;
            }
    }
    free(hk);
    free(ho);
    free(used);
    return found;
}

typedef struct {
    const char *what;
    const uint8_t *p;
    size_t n, w;
} secret_t;

/* scans every regular file under DIR for every secret; returns the number of hits (printed) */
static size_t scan_dir(const char *dir, const secret_t *sec, int ns, int *files) {
    size_t hits = 0;
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            hits += scan_dir(path, sec, ns, files);
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue;
        bytes_t b = slurp(path);
        ++*files;
        for (int k = 0; k < ns; k++) {
            size_t h = windows_found(b.p, b.n, sec[k].p, sec[k].n, sec[k].w);
            if (h) fprintf(stderr, "  %s: %zu windows of %s\n", path, h, sec[k].what);
            hits += h;
        }
        static const uint8_t soi_app[][4] = {{0xff, 0xd8, 0xff, 0xe0}, {0xff, 0xd8, 0xff, 0xe1}};
        for (int k = 0; k < 2; k++) {
            size_t h = windows_found(b.p, b.n, soi_app[k], 4, 4);
            if (h) fprintf(stderr, "  %s: JPEG SOI+APP marker\n", path);
            hits += h;
        }
        free(b.p);
    }
    closedir(d);
    return hits;
}

static int run(const char *cmd) {
    fprintf(stderr, "$ %s\n", cmd);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct {
    uint8_t *blob[8];
    size_t n[8];
    int count;
} blobs_t;

static int row_blobs(void *ctx, const fk__val_t *c, int n) {
    blobs_t *b = ctx;
    for (int i = 0; i < n && b->count < 8; i++)
        if (c[i].t == FK__V_BLOB) {
            b->blob[b->count] = malloc(c[i].n);
            memcpy(b->blob[b->count], c[i].p, c[i].n);
            b->n[b->count++] = c[i].n;
        }
    return 0;
}

int main(void) {
    const char *bin = getenv("FK_BIN"), *data = fk_t_data_dir();
    FK_CHECK(bin != NULL);
    char img[3][512];
    const char *names[3] = {"img5.jpg", "img12.jpg", "img51.jpg"};
    bytes_t jpg[3];
    for (int i = 0; i < 3; i++) {
        snprintf(img[i], sizeof img[i], "%s/faces/deepface/%s", data, names[i]);
        jpg[i] = slurp(img[i]);
        if (!jpg[i].p) {
            fprintf(stderr, "FAIL: test data missing: %s (../shared/data)\n", img[i]);
            FK_CHECK(jpg[i].p != NULL);
            return fk_t_finish();
        }
    }
    if (!bin) return fk_t_finish();
    char dir[] = "/tmp/fk_disk_test.XXXXXX", cmd[4096];
    if (!mkdtemp(dir)) return 1;
    unsetenv("FK_DATA_KEY");
    unsetenv("FK_DB");
    snprintf(cmd, sizeof cmd, "'%s' enroll --data '%s' --name Alice --group A '%s' > '%s/out1.json'", bin, dir, img[0], dir);
    FK_CHECK_INT(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' enroll --data '%s' --name Bob --cipher sm4 '%s' > '%s/out2.json'", bin, dir, img[1], dir);
    FK_CHECK_INT(run(cmd), 0);
    /* the key file was created 0600 */
    char kpath[600], db[600];
    snprintf(kpath, sizeof kpath, "%s/facekit.key", dir);
    snprintf(db, sizeof db, "%s/facekit.db", dir);
    struct stat st;
    FK_CHECK_INT(stat(kpath, &st), 0);
    FK_CHECK_INT(st.st_mode & 0777, 0600);
    uint8_t key[32];
    char err[256];
    FK_CHECK_INT(fk_data_key_load(kpath, 0, key, NULL, err, sizeof err), FK_OK);

    /* a third person through the library, connection kept open: WAL + SHM exist while we scan */
    fk_store_options_t so = {db, key, 0};
    fk_store_t *s = NULL;
    FK_CHECK_INT(fk_store_open(&so, &s), FK_OK);
    fk_face_record_t *f1 = NULL;
    size_t n1 = 0;
    FK_CHECK_INT(fk_store_face_list(s, 1, 1, &f1, &n1), FK_OK);
    FK_CHECK_INT(n1, 1);
    if (n1 != 1) return fk_t_finish();
    float tmpl3[512];
    for (int j = 0; j < 512; j++) tmpl3[j] = f1[0].tmpl[(j * 7) % 512]; /* any plausible template */
    fk_face_record_t f3 = {0, 0, f1[0].model_id, tmpl3, 512, jpg[2].p, jpg[2].n, 0.9f, 0};
    fk_person_t p3 = {0, "Carol", "ID-3", "B", NULL, 0, 0, 0};
    int64_t pid3 = 0;
    FK_CHECK_INT(fk_store_person_add(s, &p3, &f3, 1, &pid3, NULL), FK_OK);

    /* the secrets, as stored: templates decrypted from the store, images compared with the files */
    secret_t sec[8];
    int ns = 0;
    fk_face_record_t *fl[3] = {0};
    for (int p = 1; p <= 3; p++) {
        size_t n = 0;
        FK_CHECK_INT(fk_store_face_list(s, p, 1, &fl[p - 1], &n), FK_OK);
        FK_CHECK_INT(n, 1);
        if (n != 1) continue;
        FK_CHECK_INT(fl[p - 1][0].image_size, jpg[p - 1].n);
        FK_CHECK(fl[p - 1][0].image && !memcmp(fl[p - 1][0].image, jpg[p - 1].p, jpg[p - 1].n));
        sec[ns++] = (secret_t){"template", (const uint8_t *)fl[p - 1][0].tmpl, 512 * sizeof(float), 16};
        sec[ns++] = (secret_t){"JPEG", jpg[p - 1].p, jpg[p - 1].n, 32};
    }
    /* positive control: the scanner finds a 20-byte slice of a template and a 40-byte slice of a JPEG */
    {
        char ctl[700];
        snprintf(ctl, sizeof ctl, "%s/control.bin", dir);
        FILE *cf = fopen(ctl, "wb");
        fputs("xyz", cf);
        fwrite(sec[0].p + 1001, 1, 20, cf);
        fwrite(jpg[0].p + jpg[0].n / 2 + 3, 1, 40, cf);
        fclose(cf);
        int cfiles = 0;
        FK_CHECK(scan_dir(dir, sec, ns, &cfiles) >= 2);
        unlink(ctl);
    }
    char wal[640];
    snprintf(wal, sizeof wal, "%s-wal", db);
    FK_CHECK_INT(stat(wal, &st), 0);
    FK_CHECK(st.st_size > 0);
    int files = 0;
    size_t hits = scan_dir(dir, sec, ns, &files);
    fprintf(stderr, "scanned %d files with the store open: %zu hits\n", files, hits);
    FK_CHECK(files >= 4); /* db, wal, shm, key (+ outputs) */
    FK_CHECK_INT(hits, 0);
    fk_store_close(s);
    files = 0;
    hits = scan_dir(dir, sec, ns, &files);
    fprintf(stderr, "scanned %d files after close: %zu hits\n", files, hits);
    FK_CHECK_INT(hits, 0);

    /* removal is physical: Alice's ciphertexts are nowhere on disk afterwards */
    fk__db_t *d = NULL;
    blobs_t cb = {0};
    FK_CHECK_INT(fk__db_sqlite_open(db, &d, err, sizeof err), FK_OK);
    if (d) {
        d->ops->query(d, "SELECT template, image FROM fk_faces WHERE person_id = 1", NULL, 0, row_blobs, &cb);
        d->ops->close(d);
    }
    FK_CHECK_INT(cb.count, 2);
    secret_t ct[2];
    for (int i = 0; i < cb.count && i < 2; i++) ct[i] = (secret_t){"ciphertext", cb.blob[i], cb.n[i], 32};
    files = 0;
    FK_CHECK(scan_dir(dir, ct, cb.count, &files) > 0); /* sanity: the scanner sees them before removal */
    snprintf(cmd, sizeof cmd, "'%s' gallery remove 1 --data '%s' > /dev/null", bin, dir);
    FK_CHECK_INT(run(cmd), 0);
    files = 0;
    hits = scan_dir(dir, ct, cb.count, &files);
    fprintf(stderr, "after removal: %zu windows of the removed ciphertexts\n", hits);
    FK_CHECK_INT(hits, 0);
    snprintf(cmd, sizeof cmd, "'%s' gallery show 1 --data '%s' 2>/dev/null", bin, dir);
    FK_CHECK_INT(run(cmd), 1);

    for (int i = 0; i < cb.count; i++) free(cb.blob[i]);
    for (int i = 0; i < 3; i++) {
        fk_free(fl[i]);
        free(jpg[i].p);
    }
    fk_free(f1);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return fk_t_finish();
}
