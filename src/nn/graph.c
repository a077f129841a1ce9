/*
 * graph.c — building the internal NN graph (graph.h): the helpers both front-ends use to add tensors and
 * nodes, op names for messages, dtype sizes. Sits at the bottom of src/nn: no shapes are inferred and nothing
 * runs here (ops.c infers, prepare.c plans, exec.c runs).
 */
#include "nn/graph.h"

#include <string.h>

static const char *const op_names[FK__OP_COUNT] = {
#define FK__OP_NAME(id, name) name,
    FK__OP_LIST(FK__OP_NAME)
#undef FK__OP_NAME
};

const char *fk__op_name(enum fk__op op) {
    if ((int)op < 0 || op >= FK__OP_COUNT) return "?";
    return op_names[op];
}

size_t fk__dtype_size(int dtype) {
    switch (dtype) {
    case FK__DT_F32: return 4;
    case FK__DT_I64: return 8;
    case FK__DT_I32: return 4;
    default: return 0;
    }
}

int64_t fk__tensor_numel(const fk__tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

void fk__attr_defaults(fk__attr *a) {
    memset(a, 0, sizeof *a);
    a->kernel[0] = a->kernel[1] = 1;
    a->stride[0] = a->stride[1] = 1;
    a->dilation[0] = a->dilation[1] = 1;
    a->group = 1;
    a->act_slope = -1;
    a->keepdims = 1;
    a->alpha = 1.0f;
    a->beta = 1.0f;
    a->clip_min = -3.402823466e38f;
    a->clip_max = 3.402823466e38f;
    a->eps = 1e-5f;
    a->block = 1;
    a->to = FK__DT_F32;
}

int fk__graph_init(fk__graph *g, const char *source, const char *format) {
    memset(g, 0, sizeof *g);
    g->source = fk__strdup(source ? source : "");
    g->format = fk__strdup(format ? format : "");
    if (!g->source || !g->format) {
        fk__free(g->source);
        fk__free(g->format);
        g->source = g->format = NULL;
        fk__seterr(g->err, sizeof g->err, "out of memory");
        return FK_ENOMEM;
    }
    return FK_OK;
}

static void node_free(fk__node *n) {
    if (n->prep && n->prep_free) n->prep_free(n->prep);
    fk__free(n->name);
    fk__free(n->in);
    fk__free(n->out);
    memset(n, 0, sizeof *n);
}

void fk__graph_free(fk__graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nt; i++) {
        fk__free(g->t[i].name);
        fk__free(g->t[i].data);
    }
    for (int i = 0; i < g->nn; i++) node_free(&g->n[i]);
    fk__free(g->t);
    fk__free(g->n);
    fk__free(g->inputs);
    fk__free(g->outputs);
    fk__free(g->source);
    fk__free(g->format);
    memset(g, 0, sizeof *g);
}

/* Exposed for prepare.c, which drops nodes after folding and fusion. */
void fk__node_release(fk__node *n) { node_free(n); }

int fk__graph_find(const fk__graph *g, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].name && !strcmp(g->t[i].name, name)) return i;
    return -1;
}

int fk__graph_add_tensor(fk__graph *g, const char *name, int dtype, int kind, int rank, const int64_t *dims,
                         void *data) {
    if (!name || rank < 0 || rank > FK__MAX_RANK || !fk__dtype_size(dtype)) {
        fk__seterr(g->err, sizeof g->err, "%s: tensor '%s': invalid dtype %d or rank %d", g->source,
                   name ? name : "?", dtype, rank);
        fk__free(data);
        return FK_EINVAL;
    }
    if (fk__graph_find(g, name) >= 0) {
        fk__seterr(g->err, sizeof g->err, "%s: duplicate tensor name '%s'", g->source, name);
        fk__free(data);
        return FK_EFORMAT;
    }
    if (g->nt == g->cap_t) {
        int cap = g->cap_t ? g->cap_t * 2 : 64;
        fk__tensor *t = fk__realloc(g->t, (size_t)cap * sizeof *t);
        if (!t) goto oom;
        g->t = t;
        g->cap_t = cap;
    }
    fk__tensor *t = &g->t[g->nt];
    memset(t, 0, sizeof *t);
    t->name = fk__strdup(name);
    if (!t->name) goto oom;
    t->dtype = dtype;
    t->kind = kind;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims ? dims[i] : 0;
    t->data = data;
    t->alias_of = -1;
    t->placed_in = -1;
    t->producer = -1;
    t->last_use = -1;
    return g->nt++;
oom:
    fk__free(data);
    fk__seterr(g->err, sizeof g->err, "%s: out of memory adding tensor '%s'", g->source, name);
    return FK_ENOMEM;
}

int fk__graph_add_node(fk__graph *g, int op, const char *name, int n_in, const int *in, int n_out,
                       const int *out) {
    if (op < 0 || op >= FK__OP_COUNT || n_in < 0 || n_out < 1) {
        fk__seterr(g->err, sizeof g->err, "%s: node '%s': invalid op %d or arity", g->source, name ? name : "?",
                   op);
        return FK_EINVAL;
    }
    for (int i = 0; i < n_in; i++)
        if (in[i] < -1 || in[i] >= g->nt) {
            fk__seterr(g->err, sizeof g->err, "%s: node '%s': input %d refers to no tensor", g->source,
                       name ? name : "?", i);
            return FK_EINVAL;
        }
    for (int i = 0; i < n_out; i++)
        if (out[i] < 0 || out[i] >= g->nt) {
            fk__seterr(g->err, sizeof g->err, "%s: node '%s': output %d refers to no tensor", g->source,
                       name ? name : "?", i);
            return FK_EINVAL;
        }
    if (g->nn == g->cap_n) {
        int cap = g->cap_n ? g->cap_n * 2 : 64;
        fk__node *n = fk__realloc(g->n, (size_t)cap * sizeof *n);
        if (!n) goto oom;
        g->n = n;
        g->cap_n = cap;
    }
    fk__node *n = &g->n[g->nn];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = fk__strdup(name ? name : "");
    n->in = fk__malloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    n->out = fk__malloc((size_t)n_out * sizeof(int));
    if (!n->name || !n->in || !n->out) {
        node_free(n);
        goto oom;
    }
    if (n_in) memcpy(n->in, in, (size_t)n_in * sizeof(int));
    memcpy(n->out, out, (size_t)n_out * sizeof(int));
    n->n_in = n_in;
    n->n_out = n_out;
    fk__attr_defaults(&n->a);
    return g->nn++;
oom:
    fk__seterr(g->err, sizeof g->err, "%s: out of memory adding node '%s'", g->source, name ? name : "?");
    return FK_ENOMEM;
}
