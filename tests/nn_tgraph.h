/*
 * nn_tgraph.h — small helpers for tests that build NN graphs by hand through graph.c (test_nn_ops.c,
 * test_nn_graph.c): add inputs, constants and nodes with short calls, then run the graph through the public
 * session API with the reference kernels.
 */
#ifndef FK_NN_TGRAPH_H
#define FK_NN_TGRAPH_H

#include "fk_test.h"
#include "nn/ops.h"

#include <stdint.h>
#include <string.h>

#define DIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}
#define FV(...) (const float[]){__VA_ARGS__}
#define IV(...) (const int64_t[]){__VA_ARGS__}

static fk__graph tg;
static int tg_names;

static void tg_begin(void) {
    fk__graph_init(&tg, "test", "onnx");
    tg.inputs = fk__malloc(64 * sizeof(int)); /* room for the tests' largest graphs */
    tg.outputs = fk__malloc(64 * sizeof(int));
    tg_names = 0;
}

static const char *tg_name(void) {
    static char buf[32];
    snprintf(buf, sizeof buf, "t%d", tg_names++);
    return buf;
}

/* graph input of the given shape */
static int tg_in(int rank, const int64_t *dims) {
    int t = fk__graph_add_tensor(&tg, tg_name(), FK__DT_F32, FK__T_INPUT, rank, dims, NULL);
    tg.inputs[tg.n_inputs++] = t;
    return t;
}

static int64_t tg_numel(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

static int tg_const(int rank, const int64_t *dims, const float *v) {
    size_t n = (size_t)tg_numel(rank, dims);
    float *d = fk__malloc(n * 4 + 4);
    memcpy(d, v, n * 4);
    return fk__graph_add_tensor(&tg, tg_name(), FK__DT_F32, FK__T_CONST, rank, dims, d);
}

static int tg_consti(int rank, const int64_t *dims, const int64_t *v) {
    size_t n = (size_t)tg_numel(rank, dims);
    int64_t *d = fk__malloc(n * 8 + 8);
    memcpy(d, v, n * 8);
    return fk__graph_add_tensor(&tg, tg_name(), FK__DT_I64, FK__T_CONST, rank, dims, d);
}

static int tg_act(void) { return fk__graph_add_tensor(&tg, tg_name(), FK__DT_F32, FK__T_ACT, 0, NULL, NULL); }

/* node with inputs IN (n_in) and one new activation output; returns the node (valid until the next add) */
static fk__node *tg_node(int op, int n_in, const int *in, int *out) {
    *out = tg_act();
    int id = fk__graph_add_node(&tg, op, fk__op_name(op), n_in, in, 1, out);
    return &tg.n[id];
}

static void tg_output(int t) { tg.outputs[tg.n_outputs++] = t; }

/* Prepares the graph (reference kernels) and runs it once. INPUTS: one array per graph input. OUT: one
 * buffer per output (caller-sized). Returns the model (close it) or NULL with a failed check. */
static fk_nn_model_t *tg_run(const float *const *inputs, float *const *outs) {
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.use_reference = 1;
    fk_nn_model_t *m = NULL;
    int rc = fk__nn_model_from_graph(&tg, &o, &m);
    if (rc) {
        fprintf(stderr, "prepare failed: %s\n", fk_nn_model_errmsg(m));
        FK_CHECK_INT(rc, FK_OK);
        fk_nn_model_close(m);
        return NULL;
    }
    fk_nn_session_t *s = NULL;
    rc = fk_nn_session_create(m, 1, &s);
    FK_CHECK_INT(rc, FK_OK);
    if (!rc) {
        rc = fk_nn_session_run(s, inputs, outs);
        if (rc) fprintf(stderr, "run failed: %s\n", fk_nn_session_errmsg(s));
        FK_CHECK_INT(rc, FK_OK);
    }
    fk_nn_session_destroy(s);
    return m;
}

static void check_vals(const char *what, const float *got, const float *want, int n, float tol) {
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol)) {
            if (bad++ < 4) fprintf(stderr, "  %s[%d]: got %.6g want %.6g\n", what, i, got[i], want[i]);
        }
    if (bad) fprintf(stderr, "%s: %d of %d values differ\n", what, bad, n);
    FK_CHECK(bad == 0);
}

static void check_shape(fk_nn_model_t *m, int out, int rank, const int64_t *dims) {
    int r;
    int64_t d[FK_NN_MAX_RANK];
    FK_CHECK_INT(fk_nn_model_output_shape(m, out, &r, d), FK_OK);
    FK_CHECK_INT(r, rank);
    for (int i = 0; i < rank && i < r; i++) FK_CHECK_INT(d[i], dims[i]);
}

#endif
