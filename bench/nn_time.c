/*
 * nn_time.c — times one model through the public API (facekit.h), like `facekit nn bench`, but reports both the
 * median wall time and the median thread CPU time per run (bench tool used by bench_nn.js). On a busy machine
 * the CPU time is the steadier of the two; the inputs are the same LCG values `facekit nn bench` uses.
 * Usage: nn_time MODEL [RUNS] [THREADS]   ->   {"median_ms":..,"median_cpu_ms":..}
 *        nn_time MODEL serve [THREADS]      ->   one warm session; each line N read from stdin times N runs
 *                                                and answers one such JSON line (bench_nn.js alternates short
 *                                                rounds of it with ONNX Runtime's); 0 or end of input stops.
 */
#include "facekit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double ms_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: nn_time MODEL [RUNS] [THREADS]\n");
        return 2;
    }
    int serve = argc > 2 && !strcmp(argv[2], "serve");
    int runs = argc > 2 && !serve ? atoi(argv[2]) : 20, threads = argc > 3 ? atoi(argv[3]) : 1;
    if (runs < 1) runs = 1;
    fk_nn_options_t o = {0};
    o.threads = threads;
    fk_nn_model_t *m = NULL;
    fk_nn_session_t *s = NULL;
    if (fk_nn_model_open(argv[1], &o, &m) || fk_nn_session_create(m, threads, &s)) {
        fprintf(stderr, "nn_time: %s: %s\n", argv[1], m ? fk_nn_model_errmsg(m) : "out of memory");
        return 1;
    }
    int ni = fk_nn_model_input_count(m), no = fk_nn_model_output_count(m);
    float **in = calloc((size_t)ni, sizeof *in), **out = calloc((size_t)no, sizeof *out);
    uint32_t seed = 12345;
    for (int i = 0; i < ni; i++) {
        size_t n = fk_nn_model_input_numel(m, i);
        in[i] = malloc(n * sizeof(float) + 4);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1664525u + 1013904223u;
            in[i][k] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
        }
    }
    for (int i = 0; i < no; i++) out[i] = malloc(fk_nn_model_output_numel(m, i) * sizeof(float) + 4);
    for (int first = 1;; first = 0) {
        if (serve) {
            if (scanf("%d", &runs) != 1 || runs < 1) break;
        } else if (!first) {
            break;
        }
        double *wall = malloc(sizeof(double) * (size_t)runs), *cpu = malloc(sizeof(double) * (size_t)runs);
        if (!wall || !cpu) return 1;
        for (int k = first ? -3 : 0; k < runs; k++) {
            double w0 = ms_of(CLOCK_MONOTONIC), c0 = ms_of(CLOCK_THREAD_CPUTIME_ID);
            if (fk_nn_session_run(s, (const float *const *)in, out)) {
                fprintf(stderr, "nn_time: %s\n", fk_nn_session_errmsg(s));
                return 1;
            }
            if (k >= 0) wall[k] = ms_of(CLOCK_MONOTONIC) - w0, cpu[k] = ms_of(CLOCK_THREAD_CPUTIME_ID) - c0;
        }
        printf("{\"median_ms\":%.4f,\"median_cpu_ms\":%.4f}\n", median(wall, runs), median(cpu, runs));
        fflush(stdout);
        free(wall);
        free(cpu);
    }
    fk_nn_session_destroy(s);
    fk_nn_model_close(m);
    return 0;
}
