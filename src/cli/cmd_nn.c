/*
 * cmd_nn.c — `facekit nn info|run|bench`: a thin front-end over the neural-network executor in facekit.h.
 *   nn info MODEL [--size HxW] [--json]          inputs, outputs, op counts, parameters, memory plan
 *   nn run MODEL --input NAME=in.npy ... --output-dir DIR [--reference] [--threads N] [--size HxW]
 *                                                 writes DIR/<output>.npy; '/' and ':' in output names
 *                                                 become '_' in file names
 *   nn bench MODEL [--threads N] [--runs N] [--size HxW] [--reference]
 *                                                 one JSON line; random input, warm-up runs not counted
 */
#include "cli.h"
#include "facekit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void) {
    fprintf(stderr,
            "usage: facekit nn info MODEL [--size HxW] [--outputs A,B] [--json]\n"
            "       facekit nn run MODEL --input NAME=in.npy [--input ...] --output-dir DIR [--reference]\n"
            "                          [--threads N] [--size HxW] [--outputs A,B]\n"
            "         (writes DIR/<output name>.npy, float32; '/' and ':' in names become '_')\n"
            "       facekit nn bench MODEL [--threads N] [--runs N] [--size HxW] [--outputs A,B] [--reference]\n");
    return 2;
}

static int parse_size(const char *s, fk_nn_options_t *o) {
    int h, w;
    char c;
    if (sscanf(s, "%dx%d%c", &h, &w, &c) != 2 || h <= 0 || w <= 0) return -1;
    o->input_height = h;
    o->input_width = w;
    return 0;
}

/* --outputs A,B,C: splits in place into O (at most 64 names) */
static int parse_outputs(char *s, const char **names, fk_nn_options_t *o) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == 64) return -1;
        names[n++] = tok;
    }
    if (!n) return -1;
    o->outputs = names;
    o->n_outputs = n;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int open_model(const char *path, const fk_nn_options_t *o, fk_nn_model_t **m) {
    int rc = fk_nn_model_open(path, o, m);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit nn: %s: %s\n", fk_status_str(rc), fk_nn_model_errmsg(*m));
        fk_nn_model_close(*m);
        *m = NULL;
    }
    return rc;
}

static void print_shape(FILE *f, const fk_nn_model_t *m, int i, int output) {
    int rank;
    int64_t d[FK_NN_MAX_RANK];
    if (output ? fk_nn_model_output_shape(m, i, &rank, d) : fk_nn_model_input_shape(m, i, &rank, d)) return;
    fputc('[', f);
    for (int k = 0; k < rank; k++) fprintf(f, "%s%lld", k ? ", " : "", (long long)d[k]);
    fputc(']', f);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int cmd_info(int argc, char **argv) {
    fk_nn_options_t o;
    const char *onames[64];
    memset(&o, 0, sizeof o);
    const char *path = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (parse_size(argv[++i], &o)) return usage();
        } else if (!strcmp(argv[i], "--outputs") && i + 1 < argc) {
            if (parse_outputs(argv[++i], onames, &o)) return usage();
        } else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path) return usage();
    fk_nn_model_t *m;
    if (open_model(path, &o, &m)) return 1;
    fk_nn_model_info_t info;
    fk_nn_model_info(m, &info);
    FILE *f = stdout;
    if (json) {
        fprintf(f, "{\"model\":");
        json_str(f, path);
        fprintf(f, ",\"format\":\"%s\",\"inputs\":[", info.format);
        for (int i = 0; i < fk_nn_model_input_count(m); i++) {
            fprintf(f, "%s{\"name\":", i ? "," : "");
            json_str(f, fk_nn_model_input_name(m, i));
            fprintf(f, ",\"shape\":");
            print_shape(f, m, i, 0);
            fputc('}', f);
        }
        fprintf(f, "],\"outputs\":[");
        for (int i = 0; i < fk_nn_model_output_count(m); i++) {
            fprintf(f, "%s{\"name\":", i ? "," : "");
            json_str(f, fk_nn_model_output_name(m, i));
            fprintf(f, ",\"shape\":");
            print_shape(f, m, i, 1);
            fputc('}', f);
        }
        fprintf(f, "],\"ops\":{");
        int first = 1;
        for (int op = 0; op < fk_nn_op_count(); op++) {
            int c = fk_nn_model_op_count(m, op, 0);
            if (!c) continue;
            fprintf(f, "%s\"%s\":%d", first ? "" : ",", fk_nn_op_name(op), c);
            first = 0;
        }
        fprintf(f, "},\"prepared_ops\":{");
        first = 1;
        for (int op = 0; op < fk_nn_op_count(); op++) {
            int c = fk_nn_model_op_count(m, op, 1);
            if (!c) continue;
            fprintf(f, "%s\"%s\":%d", first ? "" : ",", fk_nn_op_name(op), c);
            first = 0;
        }
        fprintf(f, "},\"nodes\":%d,\"prepared_nodes\":%d,\"parameters\":%llu,\"peak_bytes\":%zu,"
                   "\"arena_bytes\":%zu,\"scratch_bytes\":%zu}\n",
                info.nodes_loaded, info.nodes_prepared, (unsigned long long)info.parameters, info.peak_bytes,
                info.arena_bytes, info.scratch_bytes);
    } else {
        fprintf(f, "model:      %s (%s, %s)\n", path, info.format, info.layout ? "NHWC" : "NCHW");
        for (int i = 0; i < fk_nn_model_input_count(m); i++) {
            fprintf(f, "input:      %s ", fk_nn_model_input_name(m, i));
            print_shape(f, m, i, 0);
            fputc('\n', f);
        }
        for (int i = 0; i < fk_nn_model_output_count(m); i++) {
            fprintf(f, "output:     %s ", fk_nn_model_output_name(m, i));
            print_shape(f, m, i, 1);
            fputc('\n', f);
        }
        fprintf(f, "nodes:      %d loaded, %d after folding and fusion\n", info.nodes_loaded, info.nodes_prepared);
        fprintf(f, "parameters: %llu\n", (unsigned long long)info.parameters);
        fprintf(f, "peak activation bytes: %zu (arena %zu, scratch %zu)\n", info.peak_bytes, info.arena_bytes,
                info.scratch_bytes);
        fprintf(f, "ops (loaded -> prepared):\n");
        for (int op = 0; op < fk_nn_op_count(); op++) {
            int a = fk_nn_model_op_count(m, op, 0), b = fk_nn_model_op_count(m, op, 1);
            if (a || b) fprintf(f, "  %-20s %5d -> %d\n", fk_nn_op_name(op), a, b);
        }
    }
    fk_nn_model_close(m);
    return 0;
}

/* '/' and ':' (common in TF and ONNX tensor names) cannot appear in file names: they become '_'. */
static void sanitize(char *s) {
    for (; *s; s++)
        if (*s == '/' || *s == ':' || *s == '\\') *s = '_';
}

static int cmd_run(int argc, char **argv) {
    fk_nn_options_t o;
    const char *onames[64];
    memset(&o, 0, sizeof o);
    const char *path = NULL, *outdir = NULL;
    const char *in_spec[64];
    int n_spec = 0, threads = 1, rc = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            if (n_spec == 64) return usage();
            in_spec[n_spec++] = argv[++i];
        } else if (!strcmp(argv[i], "--output-dir") && i + 1 < argc) outdir = argv[++i];
        else if (!strcmp(argv[i], "--reference")) o.use_reference = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 256, &threads)) return usage();
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (parse_size(argv[++i], &o)) return usage();
        } else if (!strcmp(argv[i], "--outputs") && i + 1 < argc) {
            if (parse_outputs(argv[++i], onames, &o)) return usage();
        } else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path || !outdir) return usage();
    o.threads = threads;
    fk_nn_model_t *m;
    if (open_model(path, &o, &m)) return 1;
    int ni = fk_nn_model_input_count(m), no = fk_nn_model_output_count(m);
    float *ins[64] = {0}, *outs[64] = {0};
    fk_nn_session_t *s = NULL;
    if (ni > 64 || no > 64) {
        fprintf(stderr, "facekit nn run: too many inputs or outputs\n");
        goto done;
    }
    for (int k = 0; k < n_spec; k++) {
        const char *eq = strchr(in_spec[k], '=');
        if (!eq) {
            fprintf(stderr, "facekit nn run: --input wants NAME=FILE.npy, got '%s'\n", in_spec[k]);
            goto done;
        }
        int found = -1;
        for (int i = 0; i < ni; i++)
            if (strlen(fk_nn_model_input_name(m, i)) == (size_t)(eq - in_spec[k]) &&
                !strncmp(fk_nn_model_input_name(m, i), in_spec[k], (size_t)(eq - in_spec[k])))
                found = i;
        if (found < 0 && ni == 1 && eq == in_spec[k]) found = 0; /* "=file.npy" for the only input */
        if (found < 0) {
            fprintf(stderr, "facekit nn run: model has no input '%.*s'\n", (int)(eq - in_spec[k]), in_spec[k]);
            goto done;
        }
        int rank, mrank;
        int64_t d[FK_NN_MAX_RANK], md[FK_NN_MAX_RANK];
        char err[512] = "";
        fk_free(ins[found]);
        ins[found] = NULL;
        int r = fk_nn_npy_read(eq + 1, &ins[found], &rank, d, err, sizeof err);
        if (r) {
            fprintf(stderr, "facekit nn run: %s: %s\n", fk_status_str(r), err);
            goto done;
        }
        fk_nn_model_input_shape(m, found, &mrank, md);
        int same = rank == mrank;
        for (int j = 0; same && j < rank; j++) same = d[j] == md[j];
        if (!same) {
            fprintf(stderr, "facekit nn run: %s: shape differs from input '%s' ", eq + 1, fk_nn_model_input_name(m, found));
            print_shape(stderr, m, found, 0);
            fprintf(stderr, " (use --size HxW for other image sizes)\n");
            goto done;
        }
    }
    for (int i = 0; i < ni; i++)
        if (!ins[i]) {
            fprintf(stderr, "facekit nn run: no --input for '%s'\n", fk_nn_model_input_name(m, i));
            goto done;
        }
    for (int i = 0; i < no; i++) {
        outs[i] = malloc(fk_nn_model_output_numel(m, i) * sizeof(float) + 4);
        if (!outs[i]) {
            fprintf(stderr, "facekit nn run: out of memory\n");
            goto done;
        }
    }
    int r = fk_nn_session_create(m, threads, &s);
    if (r) {
        fprintf(stderr, "facekit nn run: %s\n", fk_status_str(r));
        goto done;
    }
    r = fk_nn_session_run(s, (const float *const *)ins, outs);
    if (r) {
        fprintf(stderr, "facekit nn run: %s: %s\n", fk_status_str(r), fk_nn_session_errmsg(s));
        goto done;
    }
    for (int i = 0; i < no; i++) {
        char name[1024], file[4096], err[512] = "";
        snprintf(name, sizeof name, "%s", fk_nn_model_output_name(m, i));
        sanitize(name);
        snprintf(file, sizeof file, "%s/%s.npy", outdir, name);
        int rank;
        int64_t d[FK_NN_MAX_RANK];
        fk_nn_model_output_shape(m, i, &rank, d);
        r = fk_nn_npy_write(file, outs[i], rank, d, err, sizeof err);
        if (r) {
            fprintf(stderr, "facekit nn run: %s: %s\n", fk_status_str(r), err);
            goto done;
        }
        printf("%s ", file);
        print_shape(stdout, m, i, 1);
        putchar('\n');
    }
    rc = 0;
done:
    for (int i = 0; i < 64; i++) {
        fk_free(ins[i]);
        free(outs[i]);
    }
    fk_nn_session_destroy(s);
    fk_nn_model_close(m);
    return rc;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_bench(int argc, char **argv) {
    fk_nn_options_t o;
    const char *onames[64];
    memset(&o, 0, sizeof o);
    const char *path = NULL;
    int threads = 1, runs = 20, rc = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 256, &threads)) return usage();
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 100000, &runs)) return usage();
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (parse_size(argv[++i], &o)) return usage();
        } else if (!strcmp(argv[i], "--outputs") && i + 1 < argc) {
            if (parse_outputs(argv[++i], onames, &o)) return usage();
        } else if (!strcmp(argv[i], "--reference")) o.use_reference = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path) return usage();
    o.threads = threads;
    fk_nn_model_t *m;
    if (open_model(path, &o, &m)) return 1;
    int ni = fk_nn_model_input_count(m), no = fk_nn_model_output_count(m);
    float *ins[64] = {0}, *outs[64] = {0};
    double *ms = malloc((size_t)runs * sizeof(double));
    fk_nn_session_t *s = NULL;
    if (ni > 64 || no > 64 || !ms) goto done;
    uint32_t seed = 12345;
    for (int i = 0; i < ni; i++) {
        size_t cnt = fk_nn_model_input_numel(m, i);
        ins[i] = malloc(cnt * sizeof(float) + 4);
        if (!ins[i]) goto done;
        for (size_t k = 0; k < cnt; k++) {
            seed = seed * 1664525u + 1013904223u;
            ins[i][k] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
        }
    }
    for (int i = 0; i < no; i++)
        if (!(outs[i] = malloc(fk_nn_model_output_numel(m, i) * sizeof(float) + 4))) goto done;
    int r = fk_nn_session_create(m, threads, &s);
    if (r) {
        fprintf(stderr, "facekit nn bench: %s\n", fk_status_str(r));
        goto done;
    }
    int warm = runs < 3 ? 1 : 3;
    for (int k = 0; k < warm + runs; k++) {
        double t0 = now_ms();
        r = fk_nn_session_run(s, (const float *const *)ins, outs);
        double t1 = now_ms();
        if (r) {
            fprintf(stderr, "facekit nn bench: %s: %s\n", fk_status_str(r), fk_nn_session_errmsg(s));
            goto done;
        }
        if (k >= warm) ms[k - warm] = t1 - t0;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    fk_nn_model_info_t info;
    fk_nn_model_info(m, &info);
    int p90 = (int)((runs - 1) * 0.9 + 0.5);
    printf("{\"model\":");
    json_str(stdout, path);
    printf(",\"threads\":%d,\"runs\":%d,\"median_ms\":%.3f,\"p90_ms\":%.3f,\"peak_bytes\":%zu}\n", threads, runs,
           runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2, ms[p90], info.peak_bytes);
    rc = 0;
done:
    for (int i = 0; i < 64; i++) {
        free(ins[i]);
        free(outs[i]);
    }
    free(ms);
    fk_nn_session_destroy(s);
    fk_nn_model_close(m);
    return rc;
}

int fk_cli_nn(int argc, char **argv) {
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return 0;
    }
    return usage();
}
