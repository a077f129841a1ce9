/*
 * prepare.c — turns a loaded graph into a runnable one (fk__graph_prepare): fixes the input sizes, sorts the
 * nodes, infers every shape (ops.c), folds constants, fuses, drops dead nodes and plans activation memory.
 * After this the graph is immutable; exec.c only reads it.
 *
 * Order matters:
 *   - Folding happens during the shape pass, the moment a node's inputs are all constant, so that an ONNX
 *     shape subgraph (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) collapses for the input size in use
 *     and the Reshape after it sees a constant shape.
 *   - Batch-norm folds into the convolution before activations are fused, so Conv+BN+Relu becomes one node.
 *   - The memory plan runs last, on the final node list: every activation buffer gets an arena offset
 *     (greedy by size, best-fitting gap among buffers whose lifetimes overlap); Reshape-like nodes alias their
 *     input, so they cost neither memory nor a copy.
 */
#include "nn/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

static int oom(fk__graph *g) {
    fk__seterr(g->err, sizeof g->err, "%s: out of memory preparing the graph", g->source ? g->source : "?");
    return FK_ENOMEM;
}

static int fail(fk__graph *g, int status, const char *msg, const char *name) {
    fk__seterr(g->err, sizeof g->err, "%s: %s '%s'", g->source ? g->source : "?", msg, name ? name : "?");
    return status;
}

/* ---- input sizes ------------------------------------------------------------------------------------ */

static int set_inputs(fk__graph *g, const int64_t *const *input_dims) {
    for (int i = 0; i < g->n_inputs; i++) {
        int id = g->inputs[i];
        if (id < 0 || id >= g->nt) return fail(g, FK_EFORMAT, "graph input refers to no tensor", "?");
        fk__tensor *t = &g->t[id];
        t->kind = FK__T_INPUT;
        if (input_dims && input_dims[i])
            for (int k = 0; k < t->rank; k++) t->dims[k] = input_dims[i][k];
        for (int k = 0; k < t->rank; k++) {
            if (t->dims[k] <= 0 && k == 0) t->dims[k] = 1; /* symbolic batch: one */
            if (t->dims[k] <= 0 || t->dims[k] > FK__MAX_NUMEL) {
                fk__seterr(g->err, sizeof g->err, "%s: input '%s' has unknown or invalid dim %d (%lld); give its size",
                           g->source, t->name, k, (long long)t->dims[k]);
                return FK_ESHAPE;
            }
        }
        if (fk__tensor_numel(t) > FK__MAX_NUMEL) return fail(g, FK_ELIMIT, "input too large", t->name);
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= g->nt) return fail(g, FK_EFORMAT, "graph output refers to no tensor", "?");
    return FK_OK;
}

/* ---- topological order ------------------------------------------------------------------------------ */

static int topo_sort(fk__graph *g, int *order) {
    int rc = FK_OK;
    int *indeg = fk__calloc((size_t)g->nn + 1, sizeof(int));
    int *cstart = fk__calloc((size_t)g->nt + 1, sizeof(int));
    int nedge = 0;
    for (int i = 0; i < g->nn; i++) nedge += g->n[i].n_in;
    int *cons = fk__malloc((size_t)(nedge ? nedge : 1) * sizeof(int));
    int *fill = fk__calloc((size_t)g->nt + 1, sizeof(int));
    if (!indeg || !cstart || !cons || !fill) {
        rc = oom(g);
        goto out;
    }
    for (int i = 0; i < g->nt; i++) g->t[i].producer = -1;
    for (int i = 0; i < g->nn; i++)
        for (int k = 0; k < g->n[i].n_out; k++) {
            fk__tensor *t = &g->t[g->n[i].out[k]];
            if (t->producer >= 0) {
                rc = fail(g, FK_EFORMAT, "tensor produced by two nodes:", t->name);
                goto out;
            }
            if (t->kind != FK__T_ACT) {
                rc = fail(g, FK_EFORMAT, "node output is also a constant or graph input:", t->name);
                goto out;
            }
            t->producer = i;
        }
    /* consumers in CSR form */
    for (int i = 0; i < g->nn; i++)
        for (int k = 0; k < g->n[i].n_in; k++)
            if (g->n[i].in[k] >= 0) cstart[g->n[i].in[k] + 1]++;
    for (int i = 0; i < g->nt; i++) cstart[i + 1] += cstart[i];
    for (int i = 0; i < g->nn; i++)
        for (int k = 0; k < g->n[i].n_in; k++) {
            int t = g->n[i].in[k];
            if (t < 0) continue;
            cons[cstart[t] + fill[t]++] = i;
            if (g->t[t].producer >= 0) indeg[i]++;
            else if (g->t[t].kind == FK__T_ACT && !g->t[t].data) {
                rc = fail(g, FK_EFORMAT, "tensor is read but produced by no node:", g->t[t].name);
                goto out;
            }
        }
    int head = 0, tail = 0;
    for (int i = 0; i < g->nn; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        int v = order[head++];
        for (int k = 0; k < g->n[v].n_out; k++) {
            int t = g->n[v].out[k];
            for (int c = cstart[t]; c < cstart[t + 1]; c++)
                if (--indeg[cons[c]] == 0) order[tail++] = cons[c];
        }
    }
    if (tail != g->nn) rc = fail(g, FK_EFORMAT, "graph has a cycle or an unreachable node, e.g.", "");
out:
    fk__free(indeg);
    fk__free(cstart);
    fk__free(cons);
    fk__free(fill);
    return rc;
}

/* ---- constant folding ------------------------------------------------------------------------------- */

static int foldable(const fk__graph *g, const fk__node *n) {
    if (n->op == FK__OP_SHAPE) return 1; /* the shape is known now, whatever the data */
    for (int k = 0; k < n->n_in; k++) {
        int t = n->in[k];
        if (t < 0) continue;
        if (g->t[t].kind != FK__T_CONST || !g->t[t].data) return 0;
    }
    return 1;
}

static int fold(fk__graph *g, fk__node *n, void **data) {
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0) data[n->in[k]] = g->t[n->in[k]].data;
    for (int k = 0; k < n->n_out; k++) {
        fk__tensor *t = &g->t[n->out[k]];
        size_t bytes = (size_t)fk__tensor_numel(t) * fk__dtype_size(t->dtype);
        void *p = fk__malloc(bytes ? bytes : 1);
        if (!p) return oom(g);
        fk__free(t->data);
        t->data = p;
        data[n->out[k]] = p;
    }
    fk__run_ctx cx = {g, data, NULL, 1, NULL};
    int rc = fk__ref_kernel(n->op)(&cx, n);
    if (rc) return fk__node_fail(g, n, rc, "constant folding failed");
    for (int k = 0; k < n->n_out; k++) g->t[n->out[k]].kind = FK__T_CONST;
    return FK_OK;
}

/* ---- graph surgery helpers ---------------------------------------------------------------------------- */

typedef struct {
    fk__graph *g;
    int *order; /* node indices in run order */
    int nlive;
    char *dead; /* per node */
    int *readers; /* per tensor: live node input slots + act slopes + graph output */
    int cap_readers;
} surgery;

static int is_output(const fk__graph *g, int t) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return 1;
    return 0;
}

static int count_readers(surgery *s) {
    fk__graph *g = s->g;
    if (s->cap_readers < g->nt) {
        fk__free(s->readers);
        s->readers = fk__calloc((size_t)g->nt, sizeof(int));
        if (!s->readers) {
            s->cap_readers = 0;
            return oom(g);
        }
        s->cap_readers = g->nt;
    }
    memset(s->readers, 0, (size_t)g->nt * sizeof(int));
    for (int i = 0; i < s->nlive; i++) {
        const fk__node *n = &g->n[s->order[i]];
        if (s->dead[s->order[i]]) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) s->readers[n->in[k]]++;
        if (n->a.act_slope >= 0) s->readers[n->a.act_slope]++;
    }
    for (int i = 0; i < g->n_outputs; i++) s->readers[g->outputs[i]]++;
    return FK_OK;
}

/* Adds a constant made by prepare, named BASE + SUFFIX, made unique (node names need not be). Takes DATA. */
static int add_made_const(fk__graph *g, const char *base, const char *suffix, int rank, const int64_t *dims,
                          float *data) {
    char name[600];
    snprintf(name, sizeof name, "%.500s%s", base ? base : "", suffix);
    for (int k = 2; fk__graph_find(g, name) >= 0; k++)
        snprintf(name, sizeof name, "%.500s%s#%d", base ? base : "", suffix, k);
    return fk__graph_add_tensor(g, name, FK__DT_F32, FK__T_CONST, rank, dims, data);
}

/* A private copy of constant T when others read it too, so it can be rewritten in place. */
static int own_const(surgery *s, int t, const char *suffix) {
    fk__graph *g = s->g;
    if (s->readers[t] <= 1) return t;
    size_t bytes = (size_t)fk__tensor_numel(&g->t[t]) * 4;
    float *d = fk__malloc(bytes ? bytes : 1);
    if (!d) return oom(g);
    memcpy(d, g->t[t].data, bytes);
    int64_t dims[FK__MAX_RANK];
    memcpy(dims, g->t[t].dims, sizeof dims);
    int id = add_made_const(g, g->t[t].name, suffix, g->t[t].rank, dims, d);
    if (id < 0) return id;
    s->readers[t]--;
    return id;
}

static int const_f32(const fk__graph *g, int t) {
    return t >= 0 && g->t[t].kind == FK__T_CONST && g->t[t].data && g->t[t].dtype == FK__DT_F32;
}

static int fold_batch_norm(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        int bi = s->order[i];
        if (s->dead[bi] || g->n[bi].op != FK__OP_BATCH_NORM) continue;
        int x = g->n[bi].in[0];
        int p = g->t[x].producer;
        if (p < 0 || s->dead[p] || g->n[p].op != FK__OP_CONV || g->n[p].a.act != FK__ACT_NONE) continue;
        if (s->readers[x] != 1 || g->n[p].a.layout != g->n[bi].a.layout || g->n[p].n_out != 1) continue;
        int sc = g->n[bi].in[1], sh = g->n[bi].in[2];
        int cw = g->n[p].in[1], cb = g->n[p].n_in > 2 ? g->n[p].in[2] : -1;
        /* only constant data can be rewritten: weights, bias (when present), scale and shift */
        if (!const_f32(g, sc) || !const_f32(g, sh) || !const_f32(g, cw) || (cb >= 0 && !const_f32(g, cb)))
            continue;
        if (fk__tensor_numel(&g->t[sc]) != g->t[cw].dims[0] || fk__tensor_numel(&g->t[sh]) != g->t[cw].dims[0] ||
            (cb >= 0 && fk__tensor_numel(&g->t[cb]) != g->t[cw].dims[0]))
            continue;
        int rc = count_readers(s); /* tensors may have been added by an earlier fold */
        if (rc) return rc;
        int w = own_const(s, g->n[p].in[1], "/bn");
        if (w < 0) return w;
        g->n[p].in[1] = w;
        int b = g->n[p].n_in > 2 ? g->n[p].in[2] : -1;
        int64_t O = g->t[w].dims[0];
        if (b >= 0) {
            b = own_const(s, b, "/bn");
            if (b < 0) return b;
            g->n[p].in[2] = b;
        } else {
            float *d = fk__calloc((size_t)O, sizeof(float));
            if (!d) return oom(g);
            if (g->n[p].n_in < 3) {
                int *in = fk__realloc(g->n[p].in, 3 * sizeof(int));
                if (!in) {
                    fk__free(d);
                    return oom(g);
                }
                g->n[p].in = in;
                in[2] = -1;
                g->n[p].n_in = 3;
            }
            b = add_made_const(g, g->n[p].name, "/bn_bias", 1, &O, d);
            if (b < 0) return b;
            g->n[p].in[2] = b;
        }
        float *wd = g->t[w].data, *bd = g->t[b].data;
        const float *scale = g->t[sc].data, *shift = g->t[sh].data;
        int64_t per = fk__tensor_numel(&g->t[w]) / O;
        for (int64_t o = 0; o < O; o++) {
            for (int64_t k = 0; k < per; k++) wd[o * per + k] *= scale[o];
            bd[o] = bd[o] * scale[o] + shift[o];
        }
        int y = g->n[bi].out[0];
        g->n[p].out[0] = y;
        g->t[y].producer = p;
        s->dead[bi] = 1;
        rc = count_readers(s);
        if (rc) return rc;
    }
    return FK_OK;
}

/* TF.js graphs spell PReLU out: relu(x) + c * (x - |x|) (slope 2c), or x + c * (x - |x|) (slope 1 + 2c).
 * Rewritten into one PRelu node so that it can fuse into the convolution before it. */
static int producer_live(surgery *s, int t, int op) {
    int p = s->g->t[t].producer;
    return p >= 0 && !s->dead[p] && s->g->n[p].op == op && s->readers[t] == 1 && s->g->n[p].n_out == 1 ? p : -1;
}

static int fold_prelu_patterns(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        int ai = s->order[i];
        if (s->dead[ai] || g->n[ai].op != FK__OP_ADD || g->n[ai].n_in != 2) continue;
        for (int side = 0; side < 2; side++) {
            fk__node *an = &g->n[ai];
            int pm = an->in[side], other = an->in[1 - side];
            int mi = producer_live(s, pm, FK__OP_MUL);
            if (mi < 0) continue;
            int sub = -1, c = -1;
            for (int k = 0; k < 2; k++) {
                int t = g->n[mi].in[k];
                if (const_f32(g, t)) c = t;
                else sub = t;
            }
            if (c < 0 || sub < 0) continue;
            int si = producer_live(s, sub, FK__OP_SUB);
            if (si < 0) continue;
            int x = g->n[si].in[0], ab = g->n[si].in[1];
            int bi = producer_live(s, ab, FK__OP_ABS);
            if (bi < 0 || g->n[bi].in[0] != x || g->t[x].dtype != FK__DT_F32) continue;
            int ri = -1, plus_one;
            if (other == x) {
                plus_one = 1;
            } else {
                ri = producer_live(s, other, FK__OP_RELU);
                if (ri < 0 || g->n[ri].in[0] != x) continue;
                plus_one = 0;
            }
            /* the result must have x's shape (c only scales) */
            const fk__tensor *yt = &g->t[an->out[0]], *xt = &g->t[x];
            if (yt->rank != xt->rank || memcmp(yt->dims, xt->dims, sizeof(int64_t) * (size_t)xt->rank)) continue;
            int64_t n = fk__tensor_numel(&g->t[c]);
            float *slope = fk__malloc((size_t)(n ? n : 1) * sizeof(float));
            if (!slope) return oom(g);
            for (int64_t k = 0; k < n; k++) slope[k] = (plus_one ? 1.0f : 0.0f) + 2.0f * ((const float *)g->t[c].data)[k];
            int64_t dims[FK__MAX_RANK];
            memcpy(dims, g->t[c].dims, sizeof dims);
            int st = add_made_const(g, an->name, "/prelu_slope", g->t[c].rank, dims, slope);
            if (st < 0) return st;
            an = &g->n[ai];
            an->op = FK__OP_PRELU;
            an->in[0] = x;
            an->in[1] = st;
            s->dead[mi] = s->dead[si] = s->dead[bi] = 1;
            if (ri >= 0) s->dead[ri] = 1;
            int rc = count_readers(s);
            if (rc) return rc;
            break;
        }
    }
    return FK_OK;
}

/* Channel axis and count of a fusable producer's output, for per-channel PReLU slopes. */
static int producer_channels(const fk__graph *g, const fk__node *p, int *axis, int64_t *C) {
    const fk__tensor *o = &g->t[p->out[0]];
    switch (p->op) {
    case FK__OP_CONV:
    case FK__OP_CONV_TRANSPOSE:
    case FK__OP_BATCH_NORM: *axis = fk__chan_axis(p->a.layout, o->rank); break;
    case FK__OP_GEMM:
    case FK__OP_MATMUL: *axis = o->rank - 1; break;
    default: return 0;
    }
    *C = o->dims[*axis];
    return 1;
}

static int slope_per_channel(const fk__graph *g, int slope, const fk__node *p) {
    int axis;
    int64_t C;
    const fk__tensor *st = &g->t[slope];
    if (!const_f32(g, slope) || !producer_channels(g, p, &axis, &C)) return 0;
    int64_t numel = fk__tensor_numel(st);
    if (numel == 1) return 1;
    if (numel != C) return 0;
    int orank = g->t[p->out[0]].rank;
    if (st->rank > orank) return 0;
    for (int i = 0; i < st->rank; i++) {
        int oi = i + orank - st->rank;
        if (st->dims[i] != 1 && oi != axis) return 0;
    }
    return 1;
}

static int fuse_activations(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        int ai = s->order[i];
        fk__node *an = &g->n[ai];
        if (s->dead[ai]) continue;
        int op = an->op;
        if (op != FK__OP_RELU && op != FK__OP_CLIP && op != FK__OP_LEAKY_RELU && op != FK__OP_PRELU &&
            op != FK__OP_SIGMOID && op != FK__OP_TANH)
            continue;
        int x = an->in[0], p = g->t[x].producer;
        if (p < 0 || s->dead[p] || s->readers[x] != 1 || g->n[p].n_out != 1) continue;
        fk__node *pn = &g->n[p];
        if (g->t[x].dtype != FK__DT_F32) continue;
        if (pn->op != FK__OP_CONV && pn->op != FK__OP_CONV_TRANSPOSE && pn->op != FK__OP_GEMM &&
            pn->op != FK__OP_MATMUL && pn->op != FK__OP_ADD && pn->op != FK__OP_BATCH_NORM)
            continue;
        if (pn->a.act != FK__ACT_NONE) {
            /* Relu, PRelu and LeakyRelu leave non-negative values alone: after a fused Relu, Sigmoid or
             * Clip(>= 0) they are identities (TF.js models put PReLU after a conv that already has Relu) */
            int nonneg = pn->a.act == FK__ACT_RELU || pn->a.act == FK__ACT_SIGMOID ||
                         (pn->a.act == FK__ACT_CLIP && pn->a.act_a >= 0);
            const fk__tensor *yt = &g->t[an->out[0]], *xt = &g->t[x];
            if (!nonneg || (op != FK__OP_RELU && op != FK__OP_PRELU && op != FK__OP_LEAKY_RELU) ||
                yt->rank != xt->rank || memcmp(yt->dims, xt->dims, sizeof(int64_t) * (size_t)xt->rank))
                continue;
        } else {
            switch (op) {
            case FK__OP_RELU: pn->a.act = FK__ACT_RELU; break;
            case FK__OP_CLIP:
                pn->a.act = FK__ACT_CLIP;
                pn->a.act_a = an->a.clip_min;
                pn->a.act_b = an->a.clip_max;
                break;
            case FK__OP_LEAKY_RELU:
                pn->a.act = FK__ACT_LEAKY;
                pn->a.act_a = an->a.alpha;
                break;
            case FK__OP_PRELU:
                if (an->n_in < 2 || an->in[1] < 0 || !slope_per_channel(g, an->in[1], pn)) continue;
                pn->a.act = FK__ACT_PRELU;
                pn->a.act_slope = an->in[1];
                break;
            case FK__OP_SIGMOID: pn->a.act = FK__ACT_SIGMOID; break;
            case FK__OP_TANH: pn->a.act = FK__ACT_TANH; break;
            }
        }
        int y = an->out[0];
        pn->out[0] = y;
        g->t[y].producer = p;
        s->dead[ai] = 1;
        int rc = count_readers(s);
        if (rc) return rc;
    }
    return FK_OK;
}

/* Pre-activation (DenseNet: BN -> ReLU -> Conv 1x1): a BatchNormalization, with at most a fused Relu, whose
 * only reader is an NCHW 1x1 stride-1 unpadded convolution becomes that convolution's pre-operation
 * (fk__attr.pre_op; scale and shift become its inputs 3 and 4), so the normalised tensor is never stored.
 * Only the 1x1 case: with padding the zeros would have to stay unnormalised, and the fast kernel
 * (fast_conv3.c) applies the pre-operation while it packs the activations of a 1x1 GEMM. */
static int fold_batch_norm_forward(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        int ci = s->order[i];
        fk__node *cn = &g->n[ci];
        if (s->dead[ci] || cn->op != FK__OP_CONV || cn->a.pre_op || cn->n_in < 2 || cn->n_in > 3 || cn->n_out != 1)
            continue;
        const fk__attr *ca = &cn->a;
        if (ca->layout != FK__NCHW || ca->group > 1 || ca->kernel[0] != 1 || ca->kernel[1] != 1 || ca->stride[0] != 1 ||
            ca->stride[1] != 1 || ca->pads[0] || ca->pads[1] || ca->pads[2] || ca->pads[3])
            continue;
        int x = cn->in[0], bi = g->t[x].producer;
        if (bi < 0 || s->dead[bi] || s->readers[x] != 1 || is_output(g, x) || g->t[x].dtype != FK__DT_F32) continue;
        const fk__node *bn = &g->n[bi];
        if (bn->op != FK__OP_BATCH_NORM || bn->n_in < 3 || bn->n_out != 1 || bn->a.layout != FK__NCHW ||
            (bn->a.act != FK__ACT_NONE && bn->a.act != FK__ACT_RELU))
            continue;
        int bx = bn->in[0], sc = bn->in[1], sh = bn->in[2];
        const fk__tensor *bxt = &g->t[bx];
        if (bxt->rank != 4 || !const_f32(g, sc) || !const_f32(g, sh) || fk__tensor_numel(&g->t[sc]) != bxt->dims[1] ||
            fk__tensor_numel(&g->t[sh]) != bxt->dims[1])
            continue;
        int *in = fk__realloc(cn->in, 5 * sizeof(int));
        if (!in) return oom(g);
        cn->in = in;
        if (cn->n_in < 3) in[2] = -1;
        in[0] = bx;
        in[3] = sc;
        in[4] = sh;
        cn->n_in = 5;
        cn->a.pre_op = 1;
        cn->a.pre_act = bn->a.act;
        s->dead[bi] = 1;
        int rc = count_readers(s);
        if (rc) return rc;
    }
    return FK_OK;
}

static void replace_uses(surgery *s, int from, int to) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        fk__node *n = &g->n[s->order[i]];
        if (s->dead[s->order[i]]) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == from) n->in[k] = to;
        if (n->a.act_slope == from) n->a.act_slope = to;
    }
}

/* A Pad whose pads are all zero (fr_gender has five, before its pools) copies its input: an identity. */
static int pad_is_noop(const fk__node *n) {
    if (n->op != FK__OP_PAD) return 0;
    for (int k = 0; k < n->a.n_pads_nd; k++)
        if (n->a.pads_nd[k]) return 0;
    return 1;
}

static int remove_identities(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < s->nlive; i++) {
        int ii = s->order[i];
        fk__node *n = &g->n[ii];
        if (!s->dead[ii] && pad_is_noop(n)) n->op = FK__OP_IDENTITY, n->n_in = 1;
        if (s->dead[ii] || n->op != FK__OP_IDENTITY) continue;
        int x = n->in[0], y = n->out[0];
        if (!is_output(g, y)) {
            replace_uses(s, y, x);
            s->dead[ii] = 1;
        } else {
            int p = g->t[x].producer;
            if (p < 0 || s->dead[p] || is_output(g, x) || s->readers[x] != 1) continue; /* keep the copy */
            for (int k = 0; k < g->n[p].n_out; k++)
                if (g->n[p].out[k] == x) g->n[p].out[k] = y;
            g->t[y].producer = p;
            s->dead[ii] = 1;
        }
        int rc = count_readers(s);
        if (rc) return rc;
    }
    return FK_OK;
}

static int remove_dead(surgery *s) {
    fk__graph *g = s->g;
    char *need = fk__calloc((size_t)g->nt, 1);
    if (!need) return oom(g);
    for (int i = 0; i < g->n_outputs; i++) need[g->outputs[i]] = 1;
    for (int i = s->nlive - 1; i >= 0; i--) {
        int ni = s->order[i];
        if (s->dead[ni]) continue;
        fk__node *n = &g->n[ni];
        int used = 0;
        for (int k = 0; k < n->n_out; k++) used |= need[n->out[k]];
        if (!used) {
            s->dead[ni] = 1;
            continue;
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) need[n->in[k]] = 1;
        if (n->a.act_slope >= 0) need[n->a.act_slope] = 1;
    }
    fk__free(need);
    return FK_OK;
}

/* Compacts g->n to the live nodes in run order and frees the rest. */
static int compact(surgery *s) {
    fk__graph *g = s->g;
    int live = 0;
    for (int i = 0; i < s->nlive; i++) live += !s->dead[s->order[i]];
    fk__node *nn = fk__malloc((size_t)(live ? live : 1) * sizeof *nn);
    if (!nn) return oom(g);
    int k = 0;
    for (int i = 0; i < s->nlive; i++)
        if (!s->dead[s->order[i]]) nn[k++] = g->n[s->order[i]];
    for (int i = 0; i < g->nn; i++)
        if (s->dead[i]) fk__node_release(&g->n[i]);
    fk__free(g->n);
    g->n = nn;
    g->nn = g->cap_n = live;
    for (int i = 0; i < g->nt; i++) g->t[i].producer = -1;
    for (int i = 0; i < g->nn; i++)
        for (int j = 0; j < g->n[i].n_out; j++) g->t[g->n[i].out[j]].producer = i;
    return FK_OK;
}

static void drop_unused_constants(surgery *s) {
    fk__graph *g = s->g;
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].kind == FK__T_CONST && g->t[i].data && s->readers[i] == 0) {
            fk__free(g->t[i].data);
            g->t[i].data = NULL;
        }
}

/* ---- memory plan ---------------------------------------------------------------------------------- */

typedef struct {
    int t;          /* root tensor */
    int def, end;   /* lifetime in node steps, inclusive */
    size_t size, off;
} buf;

static int cmp_size_desc(const void *a, const void *b) {
    const buf *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->def - y->def;
}

typedef struct {
    size_t lo, hi;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Concat in place: when everything before the concat axis has size 1 (batch 1, channel concat in NCHW), each
 * input is one contiguous piece of the output, so its producer can write it there and the Concat copies
 * nothing (the node is marked noop). PAR[t] is the tensor t is placed in and SUB[t] its byte offset there.
 * DenseNet's dense layers each concatenate all earlier features (cat(x0, f1), cat(x0, f1, f2), ...): an input
 * already placed in an earlier, smaller Concat's output T brings T along, which is placed in the new output
 * where it lines up with it, so a whole dense block ends up in its last Concat's buffer. An input is placed
 * only when it is an activation with its own buffer (not a view, graph input or output), and only when every
 * input of the Concat can be, consistently. */
static int top_of(const int *par, const size_t *sub, int t, size_t *pos) {
    size_t off = 0;
    for (; par[t] >= 0; t = par[t]) off += sub[t];
    *pos = off;
    return t;
}

static void place_concat(fk__graph *g, fk__node *n, const int *root, int *par, size_t *sub) {
    int y = n->out[0], ax = n->a.axis;
    const fk__tensor *yt = &g->t[y];
    if (n->n_in < 1 || n->n_in > 4096 || ax < 0 || ax >= yt->rank || yt->kind != FK__T_ACT || root[y] != y ||
        par[y] >= 0)
        return;
    for (int d = 0; d < ax; d++)
        if (yt->dims[d] != 1) return;
    size_t es = fk__dtype_size(yt->dtype), ysize = (size_t)fk__tensor_numel(yt) * es, off[4096], sz[4096], at = 0;
    int T = -1;
    ptrdiff_t base = 0; /* where T's start lies in y, negated */
    for (int k = 0; k < n->n_in; k++) {
        int x = n->in[k];
        const fk__tensor *xt = x >= 0 ? &g->t[x] : NULL;
        if (!xt || xt->kind != FK__T_ACT || xt->producer < 0 || root[x] != x || x == y || xt->dtype != yt->dtype ||
            is_output(g, x))
            return;
        for (int j = 0; j < k; j++)
            if (n->in[j] == x) return;
        off[k] = at;
        sz[k] = (size_t)fk__tensor_numel(xt) * es;
        at += sz[k];
        if (par[x] < 0) continue;
        size_t pos;
        int top = top_of(par, sub, x, &pos);
        if (T < 0) T = top, base = (ptrdiff_t)pos - (ptrdiff_t)off[k];
        else if (top != T || (ptrdiff_t)pos - (ptrdiff_t)off[k] != base) return;
    }
    if (at != ysize) return;
    size_t tpos = 0, tsize = 0;
    if (T >= 0) { /* T goes into y at -base; the unplaced inputs must lie outside it */
        if (base > 0 || T == y || g->t[T].dtype != yt->dtype || is_output(g, T)) return;
        tpos = (size_t)-base;
        tsize = (size_t)fk__tensor_numel(&g->t[T]) * es;
        if (tpos + tsize > ysize) return;
        for (int k = 0; k < n->n_in; k++)
            if (par[n->in[k]] < 0 && off[k] < tpos + tsize && off[k] + sz[k] > tpos) return;
        par[T] = y;
        sub[T] = tpos;
    }
    for (int k = 0; k < n->n_in; k++)
        if (par[n->in[k]] < 0) {
            par[n->in[k]] = y;
            sub[n->in[k]] = off[k];
        }
    n->noop = 1;
}

static void place_concats(fk__graph *g, const int *root, int *par, size_t *sub) {
    for (int i = 0; i < g->nn; i++)
        if (g->n[i].op == FK__OP_CONCAT && g->n[i].n_out == 1) place_concat(g, &g->n[i], root, par, sub);
}

static int is_view_op(int op) {
    return op == FK__OP_RESHAPE || op == FK__OP_FLATTEN || op == FK__OP_SQUEEZE || op == FK__OP_UNSQUEEZE ||
           op == FK__OP_IDENTITY;
}

static int plan_memory(fk__graph *g) {
    int rc = FK_OK;
    int nt = g->nt;
    int *root = fk__malloc((size_t)nt * sizeof(int));
    int *bufof = fk__malloc((size_t)nt * sizeof(int));
    int *par = fk__malloc((size_t)nt * sizeof(int));
    size_t *sub = fk__malloc((size_t)nt * sizeof(size_t));
    buf *b = fk__malloc((size_t)nt * sizeof(buf));
    span *sp = fk__malloc((size_t)nt * sizeof(span));
    if (!root || !bufof || !par || !sub || !b || !sp) {
        rc = oom(g);
        goto out;
    }
    for (int i = 0; i < nt; i++) {
        root[i] = i;
        bufof[i] = -1;
        par[i] = -1;
        sub[i] = 0;
        g->t[i].alias_of = -1;
        g->t[i].placed_in = -1;
        g->t[i].last_use = -1;
        g->t[i].offset = 0;
    }
    /* views share their input's buffer; outputs of views are never graph inputs or constants */
    for (int i = 0; i < g->nn; i++) {
        const fk__node *n = &g->n[i];
        if (!is_view_op(n->op) || n->in[0] < 0) continue;
        int x = root[n->in[0]];
        if (g->t[x].kind == FK__T_CONST || g->t[x].dtype != g->t[n->out[0]].dtype) continue;
        root[n->out[0]] = x;
        g->t[n->out[0]].alias_of = x;
    }
    for (int i = 0; i < g->nn; i++) {
        const fk__node *n = &g->n[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) g->t[n->in[k]].last_use = i;
        if (n->a.act_slope >= 0) g->t[n->a.act_slope].last_use = i;
        for (int k = 0; k < n->n_out; k++)
            if (g->t[n->out[k]].last_use < i) g->t[n->out[k]].last_use = i; /* written even if unread */
    }
    for (int i = 0; i < g->n_outputs; i++) g->t[g->outputs[i]].last_use = g->nn;
    place_concats(g, root, par, sub);
    int nb = 0;
    for (int i = 0; i < nt; i++) {
        fk__tensor *t = &g->t[i];
        if (t->kind != FK__T_ACT || t->producer < 0 || root[i] != i || par[i] >= 0) continue;
        bufof[i] = nb;
        b[nb].t = i;
        b[nb].def = t->producer;
        b[nb].end = t->last_use;
        b[nb].size = ALIGN64((size_t)fk__tensor_numel(t) * fk__dtype_size(t->dtype));
        if (!b[nb].size) b[nb].size = 64;
        b[nb].off = 0;
        nb++;
    }
    for (int i = 0; i < nt; i++) { /* a view keeps its root alive; a placed tensor, the buffer it lives in */
        int r = root[i];
        while (par[r] >= 0) r = par[r];
        if (r == i || bufof[r] < 0) continue;
        buf *br = &b[bufof[r]];
        if (g->t[i].last_use > br->end) br->end = g->t[i].last_use;
        if (g->t[i].producer >= 0 && g->t[i].producer < br->def) br->def = g->t[i].producer;
    }
    qsort(b, (size_t)nb, sizeof *b, cmp_size_desc);
    size_t arena = 0;
    for (int i = 0; i < nb; i++) {
        int ns = 0;
        for (int j = 0; j < i; j++)
            if (b[j].def <= b[i].end && b[i].def <= b[j].end) sp[ns++] = (span){b[j].off, b[j].off + b[j].size};
        qsort(sp, (size_t)ns, sizeof *sp, cmp_span);
        size_t best = SIZE_MAX, best_gap = SIZE_MAX, cur = 0;
        for (int j = 0; j < ns; j++) {
            if (sp[j].lo > cur && sp[j].lo - cur >= b[i].size && sp[j].lo - cur < best_gap) {
                best = cur;
                best_gap = sp[j].lo - cur;
            }
            if (sp[j].hi > cur) cur = sp[j].hi;
        }
        b[i].off = best != SIZE_MAX ? best : cur;
        if (b[i].off + b[i].size > arena) arena = b[i].off + b[i].size;
    }
    size_t peak = 0;
    for (int step = 0; step <= g->nn; step++) {
        size_t live = 0;
        for (int i = 0; i < nb; i++)
            if (b[i].def <= step && step <= b[i].end) live += b[i].size;
        if (live > peak) peak = live;
    }
    for (int i = 0; i < nb; i++) g->t[b[i].t].offset = b[i].off;
    for (int i = 0; i < nt; i++) { /* placed tensors: their container's offset plus their place in it */
        if (par[i] < 0) continue;
        size_t off = 0;
        int r = i;
        for (; par[r] >= 0; r = par[r]) off += sub[r];
        g->t[i].offset = g->t[r].offset + off;
        g->t[i].placed_in = r;
    }
    for (int i = 0; i < nt; i++)
        if (root[i] != i) g->t[i].offset = g->t[root[i]].offset;
    g->arena_bytes = arena;
    g->peak_bytes = peak;
out:
    fk__free(root);
    fk__free(bufof);
    fk__free(par);
    fk__free(sub);
    fk__free(b);
    fk__free(sp);
    return rc;
}

/* ---- the whole pass ------------------------------------------------------------------------------- */

int fk__graph_prepare(fk__graph *g, const int64_t *const *input_dims) {
    if (!g) return FK_EINVAL;
    if (g->prepared) {
        fk__seterr(g->err, sizeof g->err, "%s: graph already prepared", g->source ? g->source : "?");
        return FK_EINVAL;
    }
    if (g->n_outputs < 1) return fail(g, FK_EFORMAT, "graph has no outputs:", "");
    surgery s = {g, NULL, 0, NULL, NULL, 0};
    void **data = NULL;
    int rc = set_inputs(g, input_dims);
    if (rc) return rc;
    s.order = fk__malloc((size_t)(g->nn ? g->nn : 1) * sizeof(int));
    s.dead = fk__calloc((size_t)(g->nn ? g->nn : 1), 1);
    data = fk__calloc((size_t)(g->nt ? g->nt : 1), sizeof(void *));
    if (!s.order || !s.dead || !data) {
        rc = oom(g);
        goto out;
    }
    rc = topo_sort(g, s.order);
    if (rc) goto out;
    s.nlive = g->nn;
    /* nodes no output needs are dropped before inference: with outputs chosen by the caller, the rest of
     * the graph may not even be valid for the input size in use */
    rc = remove_dead(&s);
    if (rc) goto out;
    for (int i = 0; i < g->nn; i++) {
        if (s.dead[s.order[i]]) continue;
        fk__node *n = &g->n[s.order[i]];
        rc = fk__op_infer(g, n);
        if (rc) goto out;
        if (foldable(g, n)) {
            rc = fold(g, n, data);
            if (rc) goto out;
            s.dead[s.order[i]] = 1;
        }
    }
    rc = count_readers(&s);
    if (!rc) rc = fold_batch_norm(&s);
    if (!rc) rc = count_readers(&s);
    if (!rc) rc = fold_prelu_patterns(&s);
    if (!rc) rc = fuse_activations(&s);
    if (!rc) rc = fold_batch_norm_forward(&s);
    if (!rc) rc = remove_identities(&s);
    if (!rc) rc = remove_dead(&s);
    if (!rc) rc = count_readers(&s);
    if (rc) goto out;
    /* constants dropped here belonged only to folded or fused-away nodes */
    drop_unused_constants(&s);
    rc = compact(&s);
    if (rc) goto out;
    rc = plan_memory(g);
    if (rc) goto out;
    g->scratch_bytes = 0;
    for (int i = 0; i < g->nn; i++) {
        rc = fk__fast_prepare(g, &g->n[i]);
        if (rc) {
            if (!g->err[0]) fk__node_fail(g, &g->n[i], rc, "preparing the fast kernel failed");
            goto out;
        }
        if (g->n[i].scratch_bytes > g->scratch_bytes) g->scratch_bytes = g->n[i].scratch_bytes;
    }
    g->prepared = 1;
out:
    fk__free(s.order);
    fk__free(s.dead);
    fk__free(s.readers);
    fk__free(data);
    return rc;
}
