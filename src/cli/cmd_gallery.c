/*
 * cmd_gallery.c — the gallery commands, a thin front-end over the Store and Gallery sections of facekit.h:
 *   enroll --data DIR --name NAME [--group G] [--external-id ID] [--metadata JSON] IMG...
 *   identify --data DIR IMG [--group G] [--top K]
 *   gallery list|show|remove|export|import --data DIR ...   (export FILE [--plain]; import FILE)
 *   bench search --n N --dim 512 [--threads T] [--queries Q] [--sketch-min N]   (dispatched from main.c)
 * Data: --data DIR holds facekit.db (SQLite) and facekit.key (created 0600 on first use; FK_DATA_KEY
 * overrides); --db URL or FK_DB selects PostgreSQL instead of DIR/facekit.db. --cipher sm4 writes new
 * records with SM4-CTR + HMAC-SM3. Results are JSON on stdout, errors on stderr.
 */
#include "cli.h"
#include "facekit.h"
#include "gallery/faiss_shim.h"
#include "gallery/scan.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    const char *data, *db, *name, *group, *external_id, *metadata, *cipher;
    int top, plain;
    const char *pos[256];
    int npos;
} args_t;

static int parse(const char *cmd, int argc, char **argv, args_t *a) {
    memset(a, 0, sizeof *a);
    a->top = 5;
    a->db = getenv("FK_DB");
    if (a->db && !*a->db) a->db = NULL;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **dst = NULL;
        if (!strcmp(s, "--data")) dst = &a->data;
        else if (!strcmp(s, "--db")) dst = &a->db;
        else if (!strcmp(s, "--name")) dst = &a->name;
        else if (!strcmp(s, "--group")) dst = &a->group;
        else if (!strcmp(s, "--external-id")) dst = &a->external_id;
        else if (!strcmp(s, "--metadata")) dst = &a->metadata;
        else if (!strcmp(s, "--cipher")) dst = &a->cipher;
        else if (!strcmp(s, "--plain")) {
            a->plain = 1;
            continue;
        }
        else if (!strcmp(s, "--top")) {
            if (i + 1 >= argc || (a->top = atoi(argv[++i])) < 1 || a->top > FK_IDENTIFY_MAX_K) {
                fprintf(stderr, "facekit %s: --top takes 1..%d\n", cmd, FK_IDENTIFY_MAX_K);
                return 2;
            }
            continue;
        } else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "facekit %s: unknown option %s\n", cmd, s);
            return 2;
        } else {
            if (a->npos == 256) return 2;
            a->pos[a->npos++] = s;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "facekit %s: %s needs a value\n", cmd, s);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!a->data && !a->db) {
        fprintf(stderr, "facekit %s: --data DIR (or --db URL / FK_DB) is required\n", cmd);
        return 2;
    }
    return 0;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* key + store location; creates DIR (0700) and the key file on first use */
static int data_setup(const char *cmd, const args_t *a, uint8_t key[FK_DATA_KEY_BYTES], char *loc, size_t locsize) {
    char kpath[4096] = "";
    if (a->data) {
        if (mkdir(a->data, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "facekit %s: cannot create %s: %s\n", cmd, a->data, strerror(errno));
            return 1;
        }
        snprintf(kpath, sizeof kpath, "%s/facekit.key", a->data);
    }
    int created = 0;
    char err[512];
    int rc = fk_data_key_load(kpath[0] ? kpath : NULL, 1, key, &created, err, sizeof err);
    if (rc) {
        fprintf(stderr, "facekit %s: data key: %s\n", cmd, err);
        return 1;
    }
    if (created)
        fprintf(stderr, "facekit %s: created a new data key %s (mode 0600). Keep a copy in a safe place: "
                        "without it the enrolled faces cannot be read.\n", cmd, kpath);
    if (a->db)
        snprintf(loc, locsize, "%s", a->db);
    else
        snprintf(loc, locsize, "%s/facekit.db", a->data);
    return 0;
}

static int cipher_of(const args_t *a, fk_cipher_t *c) {
    *c = FK_CIPHER_AES256_GCM;
    if (!a->cipher || !strcmp(a->cipher, "aes") || !strcmp(a->cipher, "aes-256-gcm")) return 0;
    if (!strcmp(a->cipher, "sm4") || !strcmp(a->cipher, "sm4-ctr-hmac-sm3")) {
        *c = FK_CIPHER_SM4_CTR_HMAC_SM3;
        return 0;
    }
    fprintf(stderr, "facekit: --cipher is aes or sm4\n");
    return 2;
}

static int open_engine(const char *cmd, fk_engine_t **e, fk_ctx_t **c) {
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = fk_cli_models_dir();
    o.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE;
    const char *mf = getenv("FK_MANIFEST");
    if (mf && *mf) o.manifest = mf;
    int rc = fk_engine_open(&o, e);
    if (!rc) rc = fk_ctx_create(*e, c);
    if (rc) {
        fprintf(stderr, "facekit %s: cannot open the face engine: %s: %s\n", cmd, fk_status_str(rc),
                fk_engine_errmsg(*e));
        fk_engine_close(*e);
        *e = NULL;
    }
    return rc;
}

static int open_gallery(const char *cmd, const args_t *a, const fk_engine_t *e, fk_gallery_t **g) {
    uint8_t key[FK_DATA_KEY_BYTES];
    char loc[4200];
    int rc = data_setup(cmd, a, key, loc, sizeof loc);
    if (rc) return rc;
    fk_gallery_options_t o;
    memset(&o, 0, sizeof o);
    o.store.location = loc;
    o.store.key = key;
    if ((rc = cipher_of(a, &o.store.cipher))) return rc;
    o.engine = e;
    o.threshold = -1;
    if (!e) { /* management commands: any model; templates are not compared */
        o.model_id = "-";
        o.dim = 512;
    }
    rc = fk_gallery_open(&o, g);
    memset(key, 0, sizeof key);
    if (rc) {
        fprintf(stderr, "facekit %s: %s: %s\n", cmd, fk_status_str(rc), fk_gallery_errmsg(*g));
        fk_gallery_close(*g);
        *g = NULL;
        return 1;
    }
    return 0;
}

static int read_file(const char *path, uint8_t **buf, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return FK_EIO;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return FK_EIO;
    }
    long sz = ftell(f);
    rewind(f);
    if (sz < 0 || (size_t)sz > FK_IMAGE_DEFAULT_MAX_FILE_BYTES) {
        fclose(f);
        return FK_ELIMIT;
    }
    *buf = malloc((size_t)sz + 1);
    *n = *buf ? fread(*buf, 1, (size_t)sz, f) : 0;
    fclose(f);
    if (!*buf || *n != (size_t)sz) {
        free(*buf);
        *buf = NULL;
        return FK_EIO;
    }
    return FK_OK;
}

/* decode + largest face + template; prints the reason on failure */
static int template_of(const char *cmd, fk_ctx_t *c, const char *path, const uint8_t *bytes, size_t n,
                       fk_template_t *t, float *quality) {
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    fk_image_t *img = NULL;
    char err[256] = "";
    int rc = fk_image_decode(bytes, n, &d, &img, err, sizeof err);
    if (rc) {
        fprintf(stderr, "facekit %s: %s: not a readable image (%s%s%s)\n", cmd, path, fk_status_str(rc),
                err[0] ? ": " : "", err);
        return rc;
    }
    fk_face_t face;
    rc = fk_embed_largest(c, img, 0, t, &face);
    fk_image_free(img);
    if (rc == FK_ENOFACE) {
        fprintf(stderr, "facekit %s: %s: no face found\n", cmd, path);
        return rc;
    }
    if (rc) {
        fprintf(stderr, "facekit %s: %s: %s: %s\n", cmd, path, fk_status_str(rc), fk_ctx_errmsg(c));
        return rc;
    }
    if (quality) *quality = face.score;
    return FK_OK;
}

int fk_cli_enroll(int argc, char **argv) {
    args_t a;
    int rc = parse("enroll", argc, argv, &a);
    if (rc) return rc;
    if (!a.name || !a.npos) {
        fprintf(stderr, "usage: facekit enroll --data DIR --name NAME [--group G] [--external-id ID] "
                        "[--metadata JSON] [--cipher aes|sm4] IMG...\n");
        return 2;
    }
    fk_engine_t *e = NULL;
    fk_ctx_t *c = NULL;
    if (open_engine("enroll", &e, &c)) return 1;
    /* every image first: one bad file enrols nothing */
    fk_template_t *t = calloc((size_t)a.npos, sizeof *t);
    fk_face_record_t *f = calloc((size_t)a.npos, sizeof *f);
    uint8_t **bytes = calloc((size_t)a.npos, sizeof *bytes);
    int bad = 0;
    for (int i = 0; i < a.npos && t && f && bytes; i++) {
        size_t n = 0;
        rc = read_file(a.pos[i], &bytes[i], &n);
        if (rc) {
            fprintf(stderr, "facekit enroll: %s: cannot read (%s)\n", a.pos[i], fk_status_str(rc));
            bad++;
            continue;
        }
        float q = 0;
        if (template_of("enroll", c, a.pos[i], bytes[i], n, &t[i], &q)) {
            bad++;
            continue;
        }
        f[i] = (fk_face_record_t){0, 0, t[i].model_id, t[i].v, t[i].dim, bytes[i], n, q, 0};
    }
    int ret = 1;
    fk_gallery_t *g = NULL;
    if (!t || !f || !bytes) {
        fprintf(stderr, "facekit enroll: out of memory\n");
    } else if (bad) {
        fprintf(stderr, "facekit enroll: %d of %d images failed; nothing was enrolled\n", bad, a.npos);
    } else if (open_gallery("enroll", &a, e, &g) == 0) {
        fk_person_t p = {0, a.name, a.external_id, a.group, a.metadata, 0, 0, 0};
        int64_t pid = 0, *fids = calloc((size_t)a.npos, sizeof *fids);
        rc = fids ? fk_gallery_enroll(g, &p, f, (size_t)a.npos, &pid, fids) : FK_ENOMEM;
        if (rc) {
            fprintf(stderr, "facekit enroll: %s: %s\n", fk_status_str(rc), fk_gallery_errmsg(g));
        } else {
            printf("{\"person\":%lld,\"name\":", (long long)pid);
            json_str(stdout, a.name);
            printf(",\"faces\":[");
            for (int i = 0; i < a.npos; i++) printf("%s%lld", i ? "," : "", (long long)fids[i]);
            printf("],\"model\":");
            json_str(stdout, t[0].model_id);
            printf("}\n");
            fflush(stdout);
            ret = 0;
        }
        free(fids);
    }
    fk_gallery_close(g);
    for (int i = 0; bytes && i < a.npos; i++) free(bytes[i]);
    free(bytes);
    free(f);
    free(t);
    fk_ctx_destroy(c);
    fk_engine_close(e);
    return ret;
}

int fk_cli_identify(int argc, char **argv) {
    args_t a;
    int rc = parse("identify", argc, argv, &a);
    if (rc) return rc;
    if (a.npos != 1) {
        fprintf(stderr, "usage: facekit identify --data DIR IMG [--group G] [--top K]\n");
        return 2;
    }
    uint8_t *bytes = NULL;
    size_t n = 0;
    if ((rc = read_file(a.pos[0], &bytes, &n))) {
        fprintf(stderr, "facekit identify: %s: cannot read (%s)\n", a.pos[0], fk_status_str(rc));
        return 1;
    }
    fk_engine_t *e = NULL;
    fk_ctx_t *c = NULL;
    int ret = 1;
    fk_template_t t;
    fk_gallery_t *g = NULL;
    static fk_identify_result_t r;
    if (open_engine("identify", &e, &c) == 0 && template_of("identify", c, a.pos[0], bytes, n, &t, NULL) == 0 &&
        open_gallery("identify", &a, e, &g) == 0) {
        rc = fk_gallery_identify(g, t.v, t.dim, t.model_id, a.group, a.top, &r);
        if (rc) {
            fprintf(stderr, "facekit identify: %s: %s\n", fk_status_str(rc), fk_gallery_errmsg(g));
        } else {
            printf("{\"matches\":[");
            for (int i = 0; i < r.n; i++) {
                printf("%s{\"person\":%lld,\"name\":", i ? "," : "", (long long)r.matches[i].person_id);
                json_str(stdout, r.matches[i].name);
                printf(",\"external_id\":");
                json_str(stdout, r.matches[i].external_id);
                printf(",\"score\":%.6f,\"cosine\":%.6f,\"face\":%lld}", r.matches[i].score, r.matches[i].cosine,
                       (long long)r.matches[i].face_id);
            }
            printf("],\"unknown\":%s,\"threshold\":%.6f}\n", r.unknown ? "true" : "false", r.threshold);
            ret = 0;
        }
    }
    fk_gallery_close(g);
    fk_ctx_destroy(c);
    fk_engine_close(e);
    free(bytes);
    return ret;
}

static void print_person(const fk_person_t *p) {
    printf("{\"person\":%lld,\"name\":", (long long)p->id);
    json_str(stdout, p->name);
    printf(",\"external_id\":");
    json_str(stdout, p->external_id);
    printf(",\"group\":");
    json_str(stdout, p->group);
    printf(",\"metadata\":%s,\"faces\":%d,\"created\":%lld,\"updated\":%lld", p->metadata[0] ? p->metadata : "{}",
           p->n_faces, (long long)p->created_at, (long long)p->updated_at);
}

/* import needs the engine's model id: templates of another model are refused */
static int gallery_import(const args_t *a) {
    fk_engine_options_t eo;
    memset(&eo, 0, sizeof eo);
    eo.models_dir = fk_cli_models_dir();
    eo.models = FK_ENGINE_FEATURE;
    const char *mf = getenv("FK_MANIFEST");
    if (mf && *mf) eo.manifest = mf;
    fk_engine_t *e = NULL;
    fk_engine_info_t info;
    int rc = fk_engine_open(&eo, &e);
    if (!rc) rc = fk_engine_info(e, &info);
    if (rc) {
        fprintf(stderr, "facekit gallery import: cannot open the face engine: %s\n", fk_engine_errmsg(e));
        fk_engine_close(e);
        return 1;
    }
    fk_gallery_t *g = NULL;
    int ret = 1;
    if (open_gallery("gallery", a, NULL, &g) == 0) {
        size_t np = 0, nf = 0;
        rc = fk_store_import(fk_gallery_store(g), a->pos[0], info.model_id, &np, &nf);
        if (rc == FK_EMISMATCH)
            fprintf(stderr, "facekit gallery import: %s: holds templates of another model (this engine: %s) or a "
                            "newer format; nothing imported\n", a->pos[0], info.model_id);
        else if (rc == FK_EAUTH)
            fprintf(stderr, "facekit gallery import: %s: cannot be decrypted with this data key (or altered); nothing "
                            "imported\n", a->pos[0]);
        else if (rc)
            fprintf(stderr, "facekit gallery import: %s: %s %s\n", a->pos[0], fk_status_str(rc),
                    fk_store_errmsg(fk_gallery_store(g)));
        else {
            printf("{\"imported\":");
            json_str(stdout, a->pos[0]);
            printf(",\"persons\":%zu,\"faces\":%zu}\n", np, nf);
            ret = 0;
        }
    }
    fk_gallery_close(g);
    fk_engine_close(e);
    return ret;
}

int fk_cli_gallery(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: facekit gallery list [--group G] | show ID | remove ID | export FILE [--plain] | "
                        "import FILE   --data DIR\n");
        return 2;
    }
    const char *sub = argv[1];
    args_t a;
    int rc = parse("gallery", argc - 1, argv + 1, &a);
    if (rc) return rc;
    int needs_id = !strcmp(sub, "show") || !strcmp(sub, "remove");
    int needs_file = !strcmp(sub, "export") || !strcmp(sub, "import");
    if ((strcmp(sub, "list") && !needs_id && !needs_file) || ((needs_id || needs_file) && a.npos != 1)) {
        fprintf(stderr, "usage: facekit gallery list [--group G] | show ID | remove ID | export FILE [--plain] | "
                        "import FILE   --data DIR\n");
        return 2;
    }
    if (!strcmp(sub, "import")) return gallery_import(&a);
    long long id = needs_id ? strtoll(a.pos[0], NULL, 10) : 0;
    fk_gallery_t *g = NULL;
    if (open_gallery("gallery", &a, NULL, &g)) return 1;
    fk_store_t *s = fk_gallery_store(g);
    int ret = 0;
    if (!strcmp(sub, "list")) {
        fk_person_t *p = NULL;
        size_t n = 0;
        rc = fk_store_person_list(s, a.group, &p, &n);
        if (rc) {
            fprintf(stderr, "facekit gallery list: %s\n", fk_store_errmsg(s));
            ret = 1;
        } else {
            printf("{\"persons\":[");
            for (size_t i = 0; i < n; i++) {
                printf("%s", i ? "," : "");
                print_person(&p[i]);
                printf("}");
            }
            printf("],\"count\":%zu}\n", n);
        }
        fk_free(p);
    } else if (!strcmp(sub, "show")) {
        fk_person_t *p = NULL;
        fk_face_record_t *f = NULL;
        size_t n = 0;
        rc = fk_store_person_get(s, id, &p);
        if (!rc) rc = fk_store_face_list(s, id, 1, &f, &n);
        if (rc) {
            fprintf(stderr, "facekit gallery show: %s: %s\n", fk_status_str(rc), fk_store_errmsg(s));
            ret = 1;
        } else {
            print_person(p);
            printf(",\"face_list\":[");
            for (size_t i = 0; i < n; i++) {
                printf("%s{\"face\":%lld,\"model\":", i ? "," : "", (long long)f[i].id);
                json_str(stdout, f[i].model_id);
                printf(",\"dim\":%d,\"quality\":%.4f,\"image_bytes\":%zu,\"created\":%lld}", f[i].dim, f[i].quality,
                       f[i].image_size, (long long)f[i].created_at);
            }
            printf("]}\n");
        }
        fk_free(p);
        fk_free(f);
    } else if (!strcmp(sub, "export")) {
        size_t np = 0, nf = 0;
        rc = fk_store_export(s, a.pos[0], !a.plain, &np, &nf);
        if (rc) {
            fprintf(stderr, "facekit gallery export: %s: %s %s\n", a.pos[0], fk_status_str(rc), fk_store_errmsg(s));
            ret = 1;
        } else {
            if (a.plain)
                fprintf(stderr, "facekit gallery export: %s is NOT encrypted: it holds templates and face images in "
                                "the clear\n", a.pos[0]);
            printf("{\"exported\":");
            json_str(stdout, a.pos[0]);
            printf(",\"persons\":%zu,\"faces\":%zu,\"encrypted\":%s}\n", np, nf, a.plain ? "false" : "true");
        }
    } else {
        rc = fk_gallery_remove_person(g, id);
        if (rc) {
            fprintf(stderr, "facekit gallery remove: %s: %s\n", fk_status_str(rc), fk_gallery_errmsg(g));
            ret = 1;
        } else {
            printf("{\"removed\":%lld}\n", id);
        }
    }
    fk_gallery_close(g);
    return ret;
}

/* ---- bench search ---- */

static uint64_t brng = 0x9E3779B97F4A7C15ull;
static double bu(void) {
    brng ^= brng << 13;
    brng ^= brng >> 7;
    brng ^= brng << 17;
    return (double)(brng >> 11) / 9007199254740992.0;
}
static float bn(void) {
    double u = bu() + 1e-12, v = bu();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}
/* a second stream for the harder probes, so that the gallery and the main queries stay as they were */
static uint64_t hrng = 0xD1B54A32D192ED03ull;
static double hu(void) {
    hrng ^= hrng << 13;
    hrng ^= hrng >> 7;
    hrng ^= hrng << 17;
    return (double)(hrng >> 11) / 9007199254740992.0;
}
static float hn(void) {
    double u = hu() + 1e-12, v = hu();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}
static void bunit(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static double cpu_us(void) { /* this thread's CPU time: what a search costs when the machine is shared */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int fk_cli_bench_search(int argc, char **argv) {
    long n = 0, sketch_min = 0;
    int dim = 512, threads = 1, nq = 200;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--n")) n = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--sketch-min")) sketch_min = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--dim")) dim = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--queries")) nq = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: facekit bench search --n N --dim 512 [--threads T] [--queries Q] [--sketch-min N]\n");
            return 2;
        }
    }
    if (n < 1 || dim < 1 || dim > 4096 || threads < 1 || threads > 64 || nq < 2) {
        fprintf(stderr, "usage: facekit bench search --n N --dim 512 [--threads T] [--queries Q] [--sketch-min N]\n");
        return 2;
    }
    fk_index_options_t o;
    memset(&o, 0, sizeof o);
    o.threads = threads;
    fk_index_t *ix = NULL;
    fk__faiss_t *fa = NULL;
    int rc = fk_index_create(dim, &o, &ix);
    if (rc) {
        fprintf(stderr, "facekit bench search: %s\n", fk_status_str(rc));
        return 1;
    }
    if (sketch_min > 0) fk__index_set_sketch_min(ix, (size_t)sketch_min);
    int have_faiss = fk__faiss_create(dim, FK__FAISS_FLAT, &fa) == FK_OK;
    /* gallery: N random unit vectors, added in batches; queries: half probes of gallery vectors (cosine about
     * 0.78: a genuine search), half unrelated random vectors (an impostor: the closest-to-tie case). Besides,
     * NQ / 2 harder probes (cosine about 0.55 with their source, like real pairs of face photos), reported
     * apart (hard_*), from a second random stream so that gallery and main queries do not change. */
    const long B = 8192;
    const int nhq = nq / 2;
    float *buf = malloc((size_t)B * dim * sizeof(float)), *q = malloc((size_t)nq * dim * sizeof(float));
    float *qh = malloc((size_t)nhq * dim * sizeof(float));
    int64_t *ids = malloc((size_t)B * sizeof(int64_t));
    long *src = malloc((size_t)nq * sizeof(long)), *hsrc = malloc((size_t)nhq * sizeof(long));
    if (!buf || !q || !qh || !ids || !src || !hsrc) return 1;
    for (int i = 0; i < nq; i++) src[i] = i % 2 == 0 ? (long)(bu() * n) : -1;
    for (int i = 0; i < nhq; i++) hsrc[i] = (long)(hu() * n);
    for (long b = 0; b < n; b += B) {
        long m = n - b < B ? n - b : B;
        for (long i = 0; i < m; i++) {
            for (int j = 0; j < dim; j++) buf[i * dim + j] = bn();
            bunit(buf + i * dim, dim);
            ids[i] = b + i + 1;
            for (int k = 0; k < nq; k++)
                if (src[k] == b + i) {
                    for (int j = 0; j < dim; j++) q[(size_t)k * dim + j] = buf[i * dim + j] + 0.035f * bn();
                    bunit(q + (size_t)k * dim, dim);
                }
            /* noise 0.067 per value: |noise|^2 = 512 * 0.067^2 = 2.3, cosine 1 / sqrt(3.3) = 0.55 */
            for (int k = 0; k < nhq; k++)
                if (hsrc[k] == b + i) {
                    for (int j = 0; j < dim; j++) qh[(size_t)k * dim + j] = buf[i * dim + j] + 0.067f * hn();
                    bunit(qh + (size_t)k * dim, dim);
                }
        }
        if ((rc = fk_index_add(ix, (size_t)m, ids, ids, NULL, buf)) != FK_OK ||
            (have_faiss && fk__faiss_add(fa, (size_t)m, buf, dim, dim, NULL) != FK_OK)) {
            fprintf(stderr, "facekit bench search: cannot build the gallery (%s)\n", fk_status_str(rc));
            return 1;
        }
    }
    for (int k = 0; k < nq; k++)
        if (src[k] < 0) {
            for (int j = 0; j < dim; j++) q[(size_t)k * dim + j] = bn();
            bunit(q + (size_t)k * dim, dim);
        }
    double *t = malloc((size_t)nq * sizeof(double)), *tf = malloc((size_t)nq * sizeof(double));
    double *tc = malloc((size_t)nq * sizeof(double)), *ev = malloc((size_t)nq * sizeof(double));
    double *th = malloc((size_t)(nhq > 0 ? nhq : 1) * sizeof(double));
    int hits = 0, faiss_agree = 0, hhits = 0;
    fk_index_hit_t h[1], ex[1];
    int nh, ne;
    int64_t *ours = malloc((size_t)nq * sizeof(int64_t)), *theirs = malloc((size_t)nq * sizeof(int64_t));
    /* each engine answers all queries back to back (steady state, as in a server), then the ground truth */
    for (int k = 0; k < 3; k++) fk_index_search(ix, q, 1, 0, 0, h, &nh); /* warm-up */
    for (int k = 0; k < nq; k++) {
        double c0 = cpu_us(), t0 = now_us();
        fk_index_search(ix, q + (size_t)k * dim, 1, 0, 0, h, &nh);
        t[k] = now_us() - t0;
        tc[k] = cpu_us() - c0;
        ev[k] = (double)fk__index_last_evals(NULL, NULL);
        ours[k] = nh == 1 ? h[0].face_id : -1;
    }
    if (have_faiss) {
        int64_t lab[1];
        int got = 0;
        for (int k = 0; k < 3; k++) fk__faiss_search(fa, q, dim, 1, threads, lab, &got);
        for (int k = 0; k < nq; k++) {
            double t0 = now_us();
            fk__faiss_search(fa, q + (size_t)k * dim, dim, 1, threads, lab, &got);
            tf[k] = now_us() - t0;
            theirs[k] = got == 1 ? lab[0] + 1 : -1;
        }
    }
    for (int k = 0; k < nq; k++) {
        fk_index_search(ix, q + (size_t)k * dim, 1, 0, FK_SEARCH_EXACT, ex, &ne);
        hits += ne == 1 && ours[k] == ex[0].face_id;
        faiss_agree += ne == 1 && theirs[k] == ex[0].face_id;
    }
    /* the harder probes: back to back as well, then their ground truth */
    int64_t *hard = malloc((size_t)(nhq > 0 ? nhq : 1) * sizeof(int64_t));
    if (!hard) return 1;
    for (int k = 0; k < nhq; k++) {
        double t0 = now_us();
        fk_index_search(ix, qh + (size_t)k * dim, 1, 0, 0, h, &nh);
        th[k] = now_us() - t0;
        hard[k] = nh == 1 ? h[0].face_id : -1;
    }
    for (int k = 0; k < nhq; k++) {
        fk_index_search(ix, qh + (size_t)k * dim, 1, 0, FK_SEARCH_EXACT, ex, &ne);
        hhits += ne == 1 && hard[k] == ex[0].face_id;
    }
    free(hard);
    free(ours);
    free(theirs);
    /* genuine and impostor queries apart: the sketch pass costs more for an impostor */
    double *tg = malloc((size_t)nq * sizeof(double)), *ti = malloc((size_t)nq * sizeof(double));
    int ng = 0, ni = 0;
    for (int k = 0; tg && ti && k < nq; k++) {
        if (src[k] >= 0) tg[ng++] = t[k];
        else ti[ni++] = t[k];
    }
    if (tg && ti && ng > 0 && ni > 0) {
        qsort(tg, (size_t)ng, sizeof *tg, cmp_d);
        qsort(ti, (size_t)ni, sizeof *ti, cmp_d);
    }
    qsort(t, (size_t)nq, sizeof *t, cmp_d);
    qsort(tc, (size_t)nq, sizeof *tc, cmp_d);
    qsort(ev, (size_t)nq, sizeof *ev, cmp_d);
    if (nhq > 0) qsort(th, (size_t)nhq, sizeof *th, cmp_d);
    printf("{\"n\":%ld,\"dim\":%d,\"threads\":%d,\"queries\":%d,\"median_us\":%.1f,\"p90_us\":%.1f,"
           "\"recall_at_1\":%.4f",
           n, dim, threads, nq, t[nq / 2], t[nq * 9 / 10], (double)hits / nq);
    if (have_faiss) {
        qsort(tf, (size_t)nq, sizeof *tf, cmp_d);
        printf(",\"faiss_median_us\":%.1f,\"faiss_recall_at_1\":%.4f", tf[nq / 2], (double)faiss_agree / nq);
    } else {
        printf(",\"faiss_median_us\":null");
    }
    /* cpu_median_us: CPU time of the calling thread (with T > 1 the helpers' time is not in it) */
    printf(",\"cpu_median_us\":%.1f,\"kernels\":\"%s\",\"sketch_kernels\":\"%s\"", tc[nq / 2],
           fk_index_kernels(ix), fk__index_sketch_kernels(ix));
    /* coarse scores per query (0 without the sketch pass: then every template gets one), the harder probes,
     * and memory: bytes per template in each stage, and what the index holds in all (with growth slack) */
    size_t bf, bc, bs, bi, bt = fk__index_bytes_per_template(ix, &bf, &bc, &bs, &bi);
    if (tg && ti && ng > 0 && ni > 0)
        printf(",\"genuine_median_us\":%.1f,\"impostor_median_us\":%.1f", tg[ng / 2], ti[ni / 2]);
    free(tg);
    free(ti);
    printf(",\"coarse_scored_median\":%.0f,\"coarse_scored_max\":%.0f", ev[nq / 2], ev[nq - 1]);
    if (nhq > 0)
        printf(",\"hard_queries\":%d,\"hard_recall_at_1\":%.4f,\"hard_median_us\":%.1f", nhq,
               (double)hhits / nhq, th[nhq / 2]);
    printf(",\"bytes_per_template\":{\"fp32\":%zu,\"coarse\":%zu,\"sketch\":%zu,\"ids\":%zu,\"total\":%zu}"
           ",\"index_mb\":%.1f}\n",
           bf, bc, bs, bi, bt, (double)fk_mem_in_use() / 1048576.0);
    fk__faiss_destroy(fa);
    fk_index_destroy(ix);
    free(buf);
    free(q);
    free(ids);
    free(src);
    free(t);
    free(tf);
    free(tc);
    free(ev);
    free(th);
    free(qh);
    free(hsrc);
    return 0;
}
