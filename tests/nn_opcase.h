/*
 * nn_opcase.h — the one-node harness the fast-kernel tests share (test_nn_fast.c, test_nn_fast_dw.c): a node
 * with its tensors built by hand, run through the fast kernel the executor would choose (2 threads) and
 * through the plain reference kernel, compared as max |fast - ref| / max(1, |ref|); the random-case generator and
 * the convolution case, node and graph set-up they both use.
 */
#ifndef FK_NN_OPCASE_H
#define FK_NN_OPCASE_H

#include "fk_test.h"
#include "nn/fast.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* xorshift64 for the random cases; each test seeds rng first thing in main */
static uint64_t rng;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_f(void) { return (float)(rnd() % 2000001u) / 1000000.0f - 1.0f; }

/* max |a - ref| / max(1, |ref|); equal values (also equal infinities) count 0, a NaN counts as a failure */
static double max_rel_err(const float *a, const float *ref, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == ref[i]) continue;
        double d = fabs((double)a[i] - ref[i]) / fmax(1.0, fabs((double)ref[i]));
        if (!(d <= m)) m = d;
    }
    return m;
}

static void set_tensor(fk__tensor *t, const char *name, int kind, int rank, const int64_t *dims, void *data) {
    memset(t, 0, sizeof *t);
    t->name = (char *)name;
    t->dtype = FK__DT_F32;
    t->kind = kind;
    t->rank = rank;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->data = data;
    t->alias_of = -1;
    t->placed_in = -1;
    t->producer = -1;
}

static int64_t numel_of(int rank, const int64_t *d) {
    int64_t k = 1;
    for (int i = 0; i < rank; i++) k *= d[i];
    return k;
}

typedef struct op_case {
    fk__tensor t[6];
    int nt, in[5], out[1];
    fk__node n;
} op_case;

/* a node OP reading tensors 0..NIN-1 and writing tensor NIN; unit strides and dilations, group 1 */
static void op_init(op_case *c, int op, int nin) {
    memset(c, 0, sizeof *c);
    c->n.op = op;
    c->n.name = (char *)fk__op_name(op);
    c->n.n_in = nin;
    c->n.in = c->in;
    c->n.n_out = 1;
    c->n.out = c->out;
    for (int i = 0; i < nin; i++) c->in[i] = i;
    c->out[0] = nin;
    c->nt = nin + 1;
    c->n.a.act_slope = -1;
    c->n.a.group = 1;
    for (int i = 0; i < 2; i++) c->n.a.stride[i] = c->n.a.dilation[i] = 1;
}

/* One convolution's shape and attributes (the fast-kernel tests' cases). */
typedef struct conv_case {
    int layout, batch, C, O, H, W, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group, act, has_bias, slope_n;
} conv_case;

/* Conv node N for case K reading tensors IN (x, w, bias or -1) and the PReLU slope as tensor 4, writing OUT. */
static void conv_node_init(fk__node *n, const conv_case *k, int *in, int *out) {
    memset(n, 0, sizeof *n);
    n->op = FK__OP_CONV;
    n->name = "conv";
    n->n_in = k->has_bias ? 3 : 2;
    n->in = in;
    n->n_out = 1;
    n->out = out;
    n->a.layout = k->layout;
    n->a.kernel[0] = k->kh, n->a.kernel[1] = k->kw;
    n->a.stride[0] = k->sh, n->a.stride[1] = k->sw;
    n->a.dilation[0] = k->dh, n->a.dilation[1] = k->dw;
    n->a.pads[0] = k->pt, n->a.pads[1] = k->pl, n->a.pads[2] = k->pb, n->a.pads[3] = k->pr;
    n->a.group = k->group;
    n->a.act = k->act;
    n->a.act_a = k->act == FK__ACT_CLIP ? 0.0f : 0.1f;
    n->a.act_b = 6.0f;
    n->a.act_slope = k->act == FK__ACT_PRELU ? 4 : -1;
}

/* A graph of NN nodes over NT tensors, unplanned (what fk__fast_prepare needs). */
static void test_graph(fk__graph *g, fk__tensor *t, int nt, fk__node *n, int nn) {
    memset(g, 0, sizeof *g);
    g->t = t;
    g->nt = nt;
    g->n = n;
    g->nn = nn;
    g->source = "test";
    g->format = "test";
}

/* Runs the node (inputs filled, output tensor shaped) fast on 2 threads and through the reference; returns
 * the max error, or -1 when no fast kernel was chosen. Frees the case's tensor data. */
static double run_op(op_case *c, fk__pool *pool2) {
    fk__graph g;
    test_graph(&g, c->t, c->nt, &c->n, 1);
    fk__tensor *yt = &c->t[c->out[0]];
    int64_t ny = numel_of(yt->rank, yt->dims);
    FK_CHECK_INT(fk__fast_prepare(&g, &c->n), FK_OK);
    fk__kernel_fn fn = fk__fast_kernel(&c->n);
    double err = -1;
    if (fn) {
        float *y1 = fk__malloc((size_t)ny * 4 + 4), *y2 = fk__malloc((size_t)ny * 4 + 4);
        unsigned char *scratch = fk__malloc(c->n.scratch_bytes + 64);
        void *data[6];
        for (int i = 0; i < c->nt; i++) data[i] = c->t[i].data;
        data[c->out[0]] = y1;
        fk__run_ctx cx = {&g, data, scratch, 2, pool2};
        FK_CHECK_INT(fn(&cx, &c->n), FK_OK);
        data[c->out[0]] = y2;
        cx.threads = 1;
        cx.pool = NULL;
        FK_CHECK_INT(fk__ref_kernel(c->n.op)(&cx, &c->n), FK_OK);
        err = max_rel_err(y1, y2, (size_t)ny);
        fk__free(y1), fk__free(y2), fk__free(scratch);
    }
    if (c->n.prep_free) c->n.prep_free(c->n.prep);
    for (int i = 0; i < c->nt; i++) fk__free(c->t[i].data);
    return err;
}

#endif
