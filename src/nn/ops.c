/*
 * ops.c — shape inference for every internal op (fk__op_infer). prepare.c calls it once per node in
 * topological order, after the input sizes are fixed, so every shape is static before memory is planned.
 *
 * Inference also normalises attributes so that kernels need no second interpretation: negative axes become
 * positive, SAME auto-padding becomes explicit pads, ONNX inputs that carry attributes (Slice starts/ends,
 * Reshape shape, Pad pads, Clip bounds, reduction and squeeze axes, Resize sizes/scales, Transpose perm) are
 * read from their constant tensors into the attribute form. Every rewrite is idempotent.
 */
#include "nn/ops.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int fk__node_fail(fk__graph *g, const fk__node *n, int status, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fk__seterr(g->err, sizeof g->err, "%s: node '%s' (%s): %s", g->source ? g->source : "?",
               n->name ? n->name : "?", fk__op_name(n->op), msg);
    return status;
}

#define FAIL(...) return fk__node_fail(g, n, __VA_ARGS__)

static fk__tensor *input(fk__graph *g, const fk__node *n, int i) {
    if (i >= n->n_in || n->in[i] < 0) return NULL;
    return &g->t[n->in[i]];
}

static int is_const(const fk__tensor *t) { return t && t->kind == FK__T_CONST && t->data; }

/* Reads a constant integer (or float, rounded) tensor into OUT (at most MAX values). */
static int read_ints(const fk__tensor *t, int64_t *out, int max, int *count) {
    if (!is_const(t)) return FK_EUNSUPPORTED;
    int64_t n = fk__tensor_numel(t);
    if (n > max) return FK_ELIMIT;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == FK__DT_I64)
            out[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == FK__DT_I32)
            out[i] = ((const int32_t *)t->data)[i];
        else
            out[i] = (int64_t)llroundf(((const float *)t->data)[i]);
    }
    *count = (int)n;
    return FK_OK;
}

static int set_out(fk__graph *g, fk__node *n, int k, int dtype, int rank, const int64_t *dims) {
    if (k >= n->n_out) FAIL(FK_EFORMAT, "missing output %d", k);
    if (rank > FK__MAX_RANK) FAIL(FK_EUNSUPPORTED, "output rank %d exceeds %d", rank, FK__MAX_RANK);
    fk__tensor *t = &g->t[n->out[k]];
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) FAIL(FK_ESHAPE, "output '%s' gets negative dim %lld", t->name, (long long)dims[i]);
        if (dims[i] > FK__MAX_NUMEL) FAIL(FK_ELIMIT, "output '%s' too large", t->name);
        numel *= dims[i];
        if (numel > FK__MAX_NUMEL) FAIL(FK_ELIMIT, "output '%s' too large", t->name);
    }
    if (t->kind == FK__T_CONST || t->kind == FK__T_INPUT)
        FAIL(FK_EFORMAT, "output '%s' is also a constant or graph input", t->name);
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    return FK_OK;
}

static int norm_axis(int axis, int rank, int *out) {
    if (axis < -rank || axis >= (rank ? rank : 1)) return -1;
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

/* Spatial output size with explicit pads; resolves auto_pad for forward convolution and pools. */
static int resolve_pads(fk__attr *a, const int64_t in[2], const int k[2]) {
    for (int d = 0; d < 2; d++) {
        int64_t eff = (int64_t)(k[d] - 1) * a->dilation[d] + 1;
        if (a->auto_pad == FK__AUTOPAD_SAME_UPPER || a->auto_pad == FK__AUTOPAD_SAME_LOWER) {
            int64_t out = (in[d] + a->stride[d] - 1) / a->stride[d];
            int64_t total = (out - 1) * a->stride[d] + eff - in[d];
            if (total < 0) total = 0;
            int64_t small = total / 2, big = total - small;
            a->pads[d] = (int)(a->auto_pad == FK__AUTOPAD_SAME_UPPER ? small : big);
            a->pads[d + 2] = (int)(a->auto_pad == FK__AUTOPAD_SAME_UPPER ? big : small);
        } else if (a->auto_pad == FK__AUTOPAD_VALID) {
            a->pads[d] = a->pads[d + 2] = 0;
        }
    }
    a->auto_pad = FK__AUTOPAD_NONE;
    return 0;
}

static int64_t pool_out(int64_t in, int pb, int pe, int k, int s, int dil, int ceil_mode) {
    int64_t eff = (int64_t)(k - 1) * dil + 1;
    int64_t span = in + pb + pe - eff;
    if (span < 0) return -1;
    int64_t out = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    /* ceil mode: the last window must start inside the input or the begin padding (PyTorch, ONNX) */
    if (ceil_mode && (out - 1) * s >= in + pb) out--;
    return out;
}

static int check_attr_spatial(fk__graph *g, fk__node *n) {
    fk__attr *a = &n->a;
    for (int d = 0; d < 2; d++)
        if (a->stride[d] < 1 || a->dilation[d] < 1 || a->kernel[d] < 1 || a->pads[d] < 0 || a->pads[d + 2] < 0)
            FAIL(FK_EFORMAT, "invalid kernel/stride/dilation/pads");
    return FK_OK;
}

static void spatial_split(int layout, const fk__tensor *x, int64_t *N, int64_t *C, int64_t hw[2]) {
    *N = x->dims[0];
    if (layout == FK__NHWC) {
        hw[0] = x->dims[1];
        hw[1] = x->dims[2];
        *C = x->dims[3];
    } else {
        *C = x->dims[1];
        hw[0] = x->dims[2];
        hw[1] = x->dims[3];
    }
}

static void spatial_join(int layout, int64_t N, int64_t C, const int64_t hw[2], int64_t *d) {
    d[0] = N;
    if (layout == FK__NHWC) {
        d[1] = hw[0];
        d[2] = hw[1];
        d[3] = C;
    } else {
        d[1] = C;
        d[2] = hw[0];
        d[3] = hw[1];
    }
}

static int infer_conv(fk__graph *g, fk__node *n) {
    fk__attr *a = &n->a;
    fk__tensor *x = input(g, n, 0), *w = input(g, n, 1), *b = input(g, n, 2);
    if (!x || !w) FAIL(FK_EFORMAT, "needs input and weights");
    if (x->rank != 4 || w->rank != 4) FAIL(FK_EUNSUPPORTED, "only 2-D convolution (rank 4) is supported");
    if (x->dtype != FK__DT_F32 || w->dtype != FK__DT_F32) FAIL(FK_EUNSUPPORTED, "float32 only");
    int64_t N, C, hw[2], out[4];
    spatial_split(a->layout, x, &N, &C, hw);
    if (a->group < 1) FAIL(FK_EFORMAT, "group %d", a->group);
    int transpose = n->op == FK__OP_CONV_TRANSPOSE;
    int64_t O = transpose ? w->dims[1] * a->group : w->dims[0];
    int64_t I = transpose ? w->dims[0] : w->dims[1] * a->group;
    if (C != I) FAIL(FK_ESHAPE, "input has %lld channels, weights expect %lld", (long long)C, (long long)I);
    if (!transpose && O % a->group) FAIL(FK_ESHAPE, "%lld output channels not divisible by group %d",
                                          (long long)O, a->group);
    if (b && fk__tensor_numel(b) != O) FAIL(FK_ESHAPE, "bias has %lld values, expected %lld",
                                           (long long)fk__tensor_numel(b), (long long)O);
    if (b && b->dtype != FK__DT_F32) FAIL(FK_EUNSUPPORTED, "float32 bias only");
    a->kernel[0] = (int)w->dims[2];
    a->kernel[1] = (int)w->dims[3];
    if (!transpose) resolve_pads(a, hw, a->kernel);
    int rc = check_attr_spatial(g, n);
    if (rc) return rc;
    int64_t o[2];
    for (int d = 0; d < 2; d++) {
        int64_t eff = (int64_t)(a->kernel[d] - 1) * a->dilation[d] + 1;
        if (!transpose) {
            o[d] = pool_out(hw[d], a->pads[d], a->pads[d + 2], a->kernel[d], a->stride[d], a->dilation[d], 0);
            if (o[d] < 1) FAIL(FK_ESHAPE, "kernel larger than padded input");
        } else {
            int64_t full = a->stride[d] * (hw[d] - 1) + a->out_pad[d] + eff;
            if (a->out_hw[d] > 0 || a->auto_pad == FK__AUTOPAD_SAME_UPPER ||
                a->auto_pad == FK__AUTOPAD_SAME_LOWER) {
                int64_t want = a->out_hw[d] > 0 ? a->out_hw[d] : hw[d] * a->stride[d];
                int64_t total = full - want;
                int64_t small = total / 2, big = total - small;
                if (total < 0) small = 0, big = total; /* wanted more: extra zero rows at the end */
                a->pads[d] = (int)(a->auto_pad == FK__AUTOPAD_SAME_LOWER ? big : small);
                a->pads[d + 2] = (int)(total - a->pads[d]);
                o[d] = want;
                a->out_hw[d] = want;
            } else {
                o[d] = full - a->pads[d] - a->pads[d + 2];
            }
            if (o[d] < 1) FAIL(FK_ESHAPE, "output size < 1");
        }
    }
    if (transpose) a->auto_pad = FK__AUTOPAD_NONE;
    spatial_join(a->layout, N, O, o, out);
    return set_out(g, n, 0, FK__DT_F32, 4, out);
}

static int infer_pool(fk__graph *g, fk__node *n) {
    fk__attr *a = &n->a;
    fk__tensor *x = input(g, n, 0);
    if (!x || x->rank != 4) FAIL(FK_EUNSUPPORTED, "only 2-D pooling (rank 4) is supported");
    int64_t N, C, hw[2], out[4], o[2];
    spatial_split(a->layout, x, &N, &C, hw);
    if (n->op == FK__OP_GLOBAL_AVG_POOL) {
        o[0] = o[1] = 1;
    } else {
        resolve_pads(a, hw, a->kernel);
        int rc = check_attr_spatial(g, n);
        if (rc) return rc;
        for (int d = 0; d < 2; d++) {
            o[d] = pool_out(hw[d], a->pads[d], a->pads[d + 2], a->kernel[d], a->stride[d], a->dilation[d],
                            a->ceil_mode);
            if (o[d] < 1) FAIL(FK_ESHAPE, "window larger than padded input");
        }
    }
    spatial_join(a->layout, N, C, o, out);
    return set_out(g, n, 0, x->dtype, 4, out);
}

/* numpy broadcasting of two shapes */
static int broadcast(const fk__tensor *x, const fk__tensor *y, int64_t *out, int *rank) {
    int r = x->rank > y->rank ? x->rank : y->rank;
    for (int i = 0; i < r; i++) {
        int ix = i - (r - x->rank), iy = i - (r - y->rank);
        int64_t dx = ix >= 0 ? x->dims[ix] : 1, dy = iy >= 0 ? y->dims[iy] : 1;
        if (dx != dy && dx != 1 && dy != 1) return -1;
        out[i] = dx == 1 ? dy : dx;
    }
    *rank = r;
    return 0;
}

static int infer_binary(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0), *y = input(g, n, 1);
    if (!x || !y) FAIL(FK_EFORMAT, "needs two inputs");
    int64_t d[FK__MAX_RANK];
    int r;
    if (broadcast(x, y, d, &r)) FAIL(FK_ESHAPE, "shapes of '%s' and '%s' do not broadcast", x->name, y->name);
    if (x->dtype != y->dtype) FAIL(FK_EUNSUPPORTED, "operand types differ");
    if (x->dtype != FK__DT_F32 && n->op != FK__OP_ADD && n->op != FK__OP_SUB && n->op != FK__OP_MUL &&
        n->op != FK__OP_DIV && n->op != FK__OP_MAX && n->op != FK__OP_MIN)
        FAIL(FK_EUNSUPPORTED, "float32 only");
    return set_out(g, n, 0, x->dtype, r, d);
}

static int infer_same(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    if (!x) FAIL(FK_EFORMAT, "missing input");
    if (n->op == FK__OP_CLIP) {
        /* ONNX Clip-11+: min and max as optional constant inputs */
        for (int k = 1; k <= 2; k++) {
            fk__tensor *c = input(g, n, k);
            if (!c) continue;
            if (!is_const(c) || c->dtype != FK__DT_F32 || fk__tensor_numel(c) != 1)
                FAIL(FK_EUNSUPPORTED, "Clip bounds must be constant scalars");
            float v = *(const float *)c->data;
            if (k == 1) n->a.clip_min = v;
            else n->a.clip_max = v;
        }
    }
    if (n->op != FK__OP_IDENTITY && n->op != FK__OP_CAST && x->dtype != FK__DT_F32)
        FAIL(FK_EUNSUPPORTED, "float32 only");
    if (n->op == FK__OP_BATCH_NORM) {
        if (x->rank < 2) FAIL(FK_ESHAPE, "input rank %d", x->rank);
        int64_t C = x->dims[fk__chan_axis(n->a.layout, x->rank)];
        fk__tensor *s = input(g, n, 1), *b = input(g, n, 2);
        if (!s || !b || fk__tensor_numel(s) != C || fk__tensor_numel(b) != C)
            FAIL(FK_ESHAPE, "scale and shift need %lld values", (long long)C);
    }
    if (n->op == FK__OP_SOFTMAX) {
        int ax;
        if (norm_axis(n->a.axis, x->rank, &ax)) FAIL(FK_EFORMAT, "axis %d out of range", n->a.axis);
        n->a.axis = ax;
    }
    int dtype = n->op == FK__OP_CAST ? n->a.to : x->dtype;
    if (!fk__dtype_size(dtype)) FAIL(FK_EUNSUPPORTED, "cast to unsupported type %d", dtype);
    return set_out(g, n, 0, dtype, x->rank, x->dims);
}

static int infer_matmul(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0), *y = input(g, n, 1);
    if (!x || !y || x->rank < 1 || y->rank < 1) FAIL(FK_EFORMAT, "needs two inputs of rank >= 1");
    if (x->dtype != FK__DT_F32 || y->dtype != FK__DT_F32) FAIL(FK_EUNSUPPORTED, "float32 only");
    int64_t M = x->rank == 1 ? 1 : x->dims[x->rank - 2], K = x->dims[x->rank - 1];
    int64_t K2 = y->rank == 1 ? y->dims[0] : y->dims[y->rank - 2], N = y->rank == 1 ? 1 : y->dims[y->rank - 1];
    if (K != K2) FAIL(FK_ESHAPE, "inner dims differ: %lld vs %lld", (long long)K, (long long)K2);
    /* batch dims broadcast */
    fk__tensor bx = *x, by = *y;
    bx.rank = x->rank > 2 ? x->rank - 2 : 0;
    by.rank = y->rank > 2 ? y->rank - 2 : 0;
    int64_t d[FK__MAX_RANK + 2];
    int r;
    if (broadcast(&bx, &by, d, &r)) FAIL(FK_ESHAPE, "batch dims do not broadcast");
    if (x->rank > 1) d[r++] = M;
    if (y->rank > 1) d[r++] = N;
    return set_out(g, n, 0, FK__DT_F32, r, d);
}

static int infer_gemm(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0), *y = input(g, n, 1), *c = input(g, n, 2);
    if (!x || !y || x->rank != 2 || y->rank != 2) FAIL(FK_EFORMAT, "needs two rank-2 inputs");
    int64_t M = n->a.trans_a ? x->dims[1] : x->dims[0], K = n->a.trans_a ? x->dims[0] : x->dims[1];
    int64_t K2 = n->a.trans_b ? y->dims[1] : y->dims[0], N = n->a.trans_b ? y->dims[0] : y->dims[1];
    if (K != K2) FAIL(FK_ESHAPE, "inner dims differ: %lld vs %lld", (long long)K, (long long)K2);
    int64_t d[2] = {M, N};
    if (c) {
        fk__tensor o = *x;
        o.rank = 2;
        o.dims[0] = M;
        o.dims[1] = N;
        int64_t bd[FK__MAX_RANK];
        int r;
        if (c->rank > 2 || broadcast(&o, c, bd, &r) || bd[0] != M || bd[1] != N)
            FAIL(FK_ESHAPE, "C does not broadcast to [%lld,%lld]", (long long)M, (long long)N);
    }
    return set_out(g, n, 0, FK__DT_F32, 2, d);
}

static int infer_concat(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    if (!x || n->n_in < 1) FAIL(FK_EFORMAT, "needs inputs");
    int ax;
    if (norm_axis(n->a.axis, x->rank, &ax)) FAIL(FK_EFORMAT, "axis %d out of range", n->a.axis);
    n->a.axis = ax;
    int64_t d[FK__MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[ax] = 0;
    for (int i = 0; i < n->n_in; i++) {
        fk__tensor *t = input(g, n, i);
        if (!t) FAIL(FK_EFORMAT, "missing input %d", i);
        if (t->rank != x->rank || t->dtype != x->dtype) FAIL(FK_ESHAPE, "input %d rank or type differs", i);
        for (int k = 0; k < x->rank; k++)
            if (k != ax && t->dims[k] != x->dims[k]) FAIL(FK_ESHAPE, "input %d dim %d differs", i, k);
        d[ax] += t->dims[ax];
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static int infer_split(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x) FAIL(FK_EFORMAT, "missing input");
    int ax;
    if (norm_axis(a->axis, x->rank, &ax)) FAIL(FK_EFORMAT, "axis %d out of range", a->axis);
    a->axis = ax;
    if (n->n_out > FK__MAX_SPLIT) FAIL(FK_EUNSUPPORTED, "more than %d outputs", FK__MAX_SPLIT);
    fk__tensor *s = input(g, n, 1);
    if (s && a->n_split == 0) {
        int cnt;
        if (read_ints(s, a->split, FK__MAX_SPLIT, &cnt)) FAIL(FK_EUNSUPPORTED, "split sizes must be constant");
        a->n_split = cnt;
    }
    if (a->n_split == 0) {
        if (x->dims[ax] % n->n_out) FAIL(FK_ESHAPE, "axis length %lld not divisible by %d outputs",
                                         (long long)x->dims[ax], n->n_out);
        for (int i = 0; i < n->n_out; i++) a->split[i] = x->dims[ax] / n->n_out;
        a->n_split = n->n_out;
    }
    if (a->n_split != n->n_out) FAIL(FK_EFORMAT, "%d sizes for %d outputs", a->n_split, n->n_out);
    int64_t sum = 0;
    for (int i = 0; i < n->n_out; i++) {
        if (a->split[i] < 0) FAIL(FK_EFORMAT, "negative split size");
        sum += a->split[i];
    }
    if (sum != x->dims[ax]) FAIL(FK_ESHAPE, "split sizes sum to %lld, axis has %lld", (long long)sum,
                                 (long long)x->dims[ax]);
    for (int i = 0; i < n->n_out; i++) {
        int64_t d[FK__MAX_RANK];
        memcpy(d, x->dims, sizeof d);
        d[ax] = a->split[i];
        int rc = set_out(g, n, i, x->dtype, x->rank, d);
        if (rc) return rc;
    }
    return FK_OK;
}

/* Slice: brings either form (attributes or ONNX-10 inputs) into attribute form with one entry per axis,
 * starts clamped into range and ends clamped (INT64_MIN standing for "before index 0" with negative steps). */
static int infer_slice(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x) FAIL(FK_EFORMAT, "missing input");
    int64_t st[FK__MAX_RANK], en[FK__MAX_RANK], ax[FK__MAX_RANK], sp[FK__MAX_RANK];
    int cnt = a->s_n;
    if (n->n_in > 1) {
        int c1, c2, c3 = 0, c4 = 0;
        if (read_ints(input(g, n, 1), st, FK__MAX_RANK, &c1) || read_ints(input(g, n, 2), en, FK__MAX_RANK, &c2))
            FAIL(FK_EUNSUPPORTED, "starts and ends must be constant");
        if (c1 != c2) FAIL(FK_EFORMAT, "starts and ends differ in length");
        cnt = c1;
        if (input(g, n, 3) && (read_ints(input(g, n, 3), ax, FK__MAX_RANK, &c3) || c3 != cnt))
            FAIL(FK_EUNSUPPORTED, "axes must be constant and match starts");
        if (!input(g, n, 3))
            for (int i = 0; i < cnt; i++) ax[i] = i;
        if (input(g, n, 4) && (read_ints(input(g, n, 4), sp, FK__MAX_RANK, &c4) || c4 != cnt))
            FAIL(FK_EUNSUPPORTED, "steps must be constant and match starts");
        if (!input(g, n, 4))
            for (int i = 0; i < cnt; i++) sp[i] = 1;
    } else {
        if (cnt < 0 || cnt > FK__MAX_RANK) FAIL(FK_EFORMAT, "bad slice attribute count");
        for (int i = 0; i < cnt; i++) {
            st[i] = a->s_starts[i];
            en[i] = a->s_ends[i];
            ax[i] = a->s_axes[i];
            sp[i] = a->s_steps[i] ? a->s_steps[i] : 1;
        }
    }
    int64_t S[FK__MAX_RANK], E[FK__MAX_RANK], P[FK__MAX_RANK], d[FK__MAX_RANK];
    for (int i = 0; i < x->rank; i++) S[i] = 0, E[i] = x->dims[i], P[i] = 1;
    unsigned seen = 0;
    for (int i = 0; i < cnt; i++) {
        int k;
        if (ax[i] < INT_MIN || ax[i] > INT_MAX || norm_axis((int)ax[i], x->rank, &k))
            FAIL(FK_EFORMAT, "axis %lld out of range", (long long)ax[i]);
        if (seen & (1u << k)) FAIL(FK_EFORMAT, "axis %d repeated", k);
        seen |= 1u << k;
        int64_t dim = x->dims[k], s = st[i], e = en[i], p = sp[i];
        if (p == 0) FAIL(FK_EFORMAT, "step 0");
        if (s < 0) s = s < -dim ? 0 : s + dim; /* careful with INT64_MIN */
        if (e < 0) e = e < -dim ? -1 : e + dim;
        if (p > 0) {
            if (s > dim) s = dim;
            if (e > dim) e = dim;
            if (e < 0) e = 0;
        } else {
            if (s > dim - 1) s = dim - 1;
            if (e > dim - 1) e = dim - 1;
        }
        S[k] = s, E[k] = e, P[k] = p;
    }
    a->s_n = x->rank;
    for (int k = 0; k < x->rank; k++) {
        int64_t len;
        if (P[k] > 0)
            len = E[k] > S[k] ? (E[k] - S[k] + P[k] - 1) / P[k] : 0;
        else
            len = S[k] > E[k] ? (S[k] - E[k] + (-P[k]) - 1) / (-P[k]) : 0;
        d[k] = len;
        a->s_axes[k] = k;
        a->s_starts[k] = S[k];
        a->s_steps[k] = P[k];
        a->s_ends[k] = E[k] < 0 ? INT64_MIN : E[k];
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static int infer_reshape(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    if (!x) FAIL(FK_EFORMAT, "missing input");
    int64_t d[FK__MAX_RANK];
    int r = 0;
    int64_t numel = fk__tensor_numel(x);
    if (n->op == FK__OP_RESHAPE) {
        if (read_ints(input(g, n, 1), d, FK__MAX_RANK, &r)) FAIL(FK_EUNSUPPORTED, "shape must be constant");
        int minus = -1;
        int64_t known = 1;
        for (int i = 0; i < r; i++) {
            if (d[i] == 0) {
                if (i >= x->rank) FAIL(FK_ESHAPE, "0 at position %d copies no dim", i);
                d[i] = x->dims[i];
            }
            if (d[i] == -1) {
                if (minus >= 0) FAIL(FK_ESHAPE, "two -1 dims");
                minus = i;
                continue;
            }
            if (d[i] < 0) FAIL(FK_ESHAPE, "dim %lld", (long long)d[i]);
            known *= d[i];
        }
        if (minus >= 0) {
            if (known == 0 || numel % known) FAIL(FK_ESHAPE, "cannot infer -1 for %lld elements", (long long)numel);
            d[minus] = numel / known;
        }
    } else if (n->op == FK__OP_FLATTEN) {
        int ax = n->a.axis;
        if (ax < 0) ax += x->rank;
        if (ax < 0 || ax > x->rank) FAIL(FK_EFORMAT, "axis %d out of range", n->a.axis);
        n->a.axis = ax;
        d[0] = 1;
        for (int i = 0; i < ax; i++) d[0] *= x->dims[i];
        d[1] = ax == 0 ? numel : (d[0] ? numel / d[0] : 0);
        r = 2;
    } else {
        fk__attr *a = &n->a;
        int64_t axs[FK__MAX_RANK];
        int na = a->n_axes;
        for (int i = 0; i < na; i++) axs[i] = a->axes[i];
        if (input(g, n, 1) && read_ints(input(g, n, 1), axs, FK__MAX_RANK, &na))
            FAIL(FK_EUNSUPPORTED, "axes must be constant");
        int outr = n->op == FK__OP_UNSQUEEZE ? x->rank + na : x->rank;
        if (outr > FK__MAX_RANK) FAIL(FK_EUNSUPPORTED, "rank above %d", FK__MAX_RANK);
        unsigned mask = 0;
        for (int i = 0; i < na; i++) {
            int k;
            if (norm_axis((int)axs[i], outr, &k)) FAIL(FK_EFORMAT, "axis %lld out of range", (long long)axs[i]);
            if (mask & (1u << k)) FAIL(FK_EFORMAT, "axis repeated");
            mask |= 1u << k;
            a->axes[i] = k;
        }
        a->n_axes = na;
        if (n->op == FK__OP_SQUEEZE) {
            for (int i = 0; i < x->rank; i++) {
                int drop = na ? (int)((mask >> i) & 1) : x->dims[i] == 1;
                if (drop && x->dims[i] != 1) FAIL(FK_ESHAPE, "squeezed axis %d has size %lld", i,
                                                  (long long)x->dims[i]);
                if (!drop) d[r++] = x->dims[i];
            }
        } else {
            int j = 0;
            for (int i = 0; i < outr; i++) d[r++] = (mask >> i) & 1 ? 1 : x->dims[j++];
        }
    }
    int64_t check = 1;
    for (int i = 0; i < r; i++) check *= d[i];
    if (check != numel) FAIL(FK_ESHAPE, "%lld elements cannot become %lld", (long long)numel, (long long)check);
    return set_out(g, n, 0, x->dtype, r, d);
}

static int infer_transpose(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x) FAIL(FK_EFORMAT, "missing input");
    if (input(g, n, 1)) {
        int64_t p[FK__MAX_RANK];
        int c;
        if (read_ints(input(g, n, 1), p, FK__MAX_RANK, &c)) FAIL(FK_EUNSUPPORTED, "perm must be constant");
        for (int i = 0; i < c; i++) a->perm[i] = (int)p[i];
        a->n_perm = c;
    }
    if (a->n_perm == 0) {
        for (int i = 0; i < x->rank; i++) a->perm[i] = x->rank - 1 - i;
        a->n_perm = x->rank;
    }
    if (a->n_perm != x->rank) FAIL(FK_ESHAPE, "perm has %d entries for rank %d", a->n_perm, x->rank);
    int64_t d[FK__MAX_RANK];
    unsigned mask = 0;
    for (int i = 0; i < x->rank; i++) {
        int k;
        if (norm_axis(a->perm[i], x->rank, &k) || (mask & (1u << k))) FAIL(FK_EFORMAT, "invalid perm");
        mask |= 1u << k;
        a->perm[i] = k;
        d[i] = x->dims[k];
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static int infer_gather(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0), *idx = input(g, n, 1);
    if (!x || !idx) FAIL(FK_EFORMAT, "needs data and indices");
    if (idx->dtype == FK__DT_F32) FAIL(FK_EFORMAT, "indices must be integers");
    int ax;
    if (norm_axis(n->a.axis, x->rank, &ax)) FAIL(FK_EFORMAT, "axis %d out of range", n->a.axis);
    n->a.axis = ax;
    if (x->rank - 1 + idx->rank > FK__MAX_RANK) FAIL(FK_EUNSUPPORTED, "result rank too large");
    int64_t d[FK__MAX_RANK];
    int r = 0;
    for (int i = 0; i < ax; i++) d[r++] = x->dims[i];
    for (int i = 0; i < idx->rank; i++) d[r++] = idx->dims[i];
    for (int i = ax + 1; i < x->rank; i++) d[r++] = x->dims[i];
    if (is_const(idx)) { /* check indices now: the kernel then needs no run-time error path */
        int64_t m = fk__tensor_numel(idx);
        for (int64_t i = 0; i < m; i++) {
            int64_t v = idx->dtype == FK__DT_I64 ? ((const int64_t *)idx->data)[i] : ((const int32_t *)idx->data)[i];
            if (v < -x->dims[ax] || v >= x->dims[ax]) FAIL(FK_EFORMAT, "index %lld out of range", (long long)v);
        }
    }
    return set_out(g, n, 0, x->dtype, r, d);
}

static int infer_pad(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x) FAIL(FK_EFORMAT, "missing input");
    if (input(g, n, 1)) {
        int c;
        if (read_ints(input(g, n, 1), a->pads_nd, 2 * FK__MAX_RANK, &c)) FAIL(FK_EUNSUPPORTED, "pads must be constant");
        a->n_pads_nd = c;
    }
    fk__tensor *v = input(g, n, 2);
    if (v) {
        if (!is_const(v) || fk__tensor_numel(v) != 1 || v->dtype != FK__DT_F32)
            FAIL(FK_EUNSUPPORTED, "pad value must be a constant float scalar");
        a->pad_value = *(const float *)v->data;
    }
    if (a->n_pads_nd != 2 * x->rank) FAIL(FK_ESHAPE, "%d pads for rank %d", a->n_pads_nd, x->rank);
    if (x->dtype != FK__DT_F32) FAIL(FK_EUNSUPPORTED, "float32 only");
    int64_t d[FK__MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        d[i] = x->dims[i] + a->pads_nd[i] + a->pads_nd[i + x->rank];
        if (a->pad_mode == FK__PAD_REFLECT && (a->pads_nd[i] >= x->dims[i] || a->pads_nd[i + x->rank] >= x->dims[i]))
            FAIL(FK_ESHAPE, "reflect pad wider than the axis");
        if (a->pad_mode != FK__PAD_CONSTANT && x->dims[i] == 0 && d[i] > 0) FAIL(FK_ESHAPE, "padding empty axis");
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static int infer_reduce(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x) FAIL(FK_EFORMAT, "missing input");
    if (x->dtype != FK__DT_F32) FAIL(FK_EUNSUPPORTED, "float32 only");
    int64_t axs[FK__MAX_RANK];
    int na = a->n_axes;
    for (int i = 0; i < na; i++) axs[i] = a->axes[i];
    if (input(g, n, 1) && read_ints(input(g, n, 1), axs, FK__MAX_RANK, &na))
        FAIL(FK_EUNSUPPORTED, "axes must be constant");
    unsigned mask = 0;
    for (int i = 0; i < na; i++) {
        int k;
        if (norm_axis((int)axs[i], x->rank, &k)) FAIL(FK_EFORMAT, "axis %lld out of range", (long long)axs[i]);
        mask |= 1u << k;
    }
    if (na == 0) mask = (1u << x->rank) - 1;
    a->n_axes = 0;
    for (int k = 0; k < x->rank; k++)
        if ((mask >> k) & 1) a->axes[a->n_axes++] = k;
    int64_t d[FK__MAX_RANK];
    int r = 0;
    for (int k = 0; k < x->rank; k++) {
        if ((mask >> k) & 1) {
            if (a->keepdims) d[r++] = 1;
        } else {
            d[r++] = x->dims[k];
        }
    }
    return set_out(g, n, 0, x->dtype, r, d);
}

static int infer_resize(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x || x->rank != 4) FAIL(FK_EUNSUPPORTED, "only rank-4 images");
    int64_t N, C, hw[2], out[4];
    spatial_split(a->layout, x, &N, &C, hw);
    if (a->out_hw[0] <= 0 || a->out_hw[1] <= 0) {
        /* ONNX: roi, scales, sizes inputs; TF.js: one int size [h, w] input */
        for (int i = n->n_in - 1; i >= 1 && (a->out_hw[0] <= 0 || a->out_hw[1] <= 0); i--) {
            fk__tensor *s = input(g, n, i);
            if (!s || fk__tensor_numel(s) == 0) continue;
            if (!is_const(s)) FAIL(FK_EUNSUPPORTED, "output size must be constant");
            int64_t m = fk__tensor_numel(s);
            if (s->dtype != FK__DT_F32) {
                int64_t v[FK__MAX_RANK];
                int c;
                if (read_ints(s, v, FK__MAX_RANK, &c)) FAIL(FK_EFORMAT, "bad sizes");
                if (c == 2) a->out_hw[0] = v[0], a->out_hw[1] = v[1];
                else if (c == 4 && a->layout == FK__NHWC) a->out_hw[0] = v[1], a->out_hw[1] = v[2];
                else if (c == 4) a->out_hw[0] = v[2], a->out_hw[1] = v[3];
                else FAIL(FK_EFORMAT, "sizes has %d values", c);
            } else if (i >= 2 && (m == 4 || m == 2)) { /* scales (index 1 is the ROI) */
                const float *sc = s->data;
                int o = m == 2 ? 0 : a->layout == FK__NHWC ? 1 : 2;
                if ((m == 4 && (sc[0] != 1.0f || sc[a->layout == FK__NHWC ? 3 : 1] != 1.0f)))
                    FAIL(FK_EUNSUPPORTED, "scaling batch or channels");
                a->out_hw[0] = (int64_t)floor((double)hw[0] * sc[o]);
                a->out_hw[1] = (int64_t)floor((double)hw[1] * sc[o + 1]);
            }
        }
    }
    if (a->out_hw[0] <= 0 || a->out_hw[1] <= 0) FAIL(FK_EFORMAT, "output size unknown");
    spatial_join(a->layout, N, C, a->out_hw, out);
    return set_out(g, n, 0, x->dtype, 4, out);
}

static int infer_d2s(fk__graph *g, fk__node *n) {
    fk__tensor *x = input(g, n, 0);
    fk__attr *a = &n->a;
    if (!x || x->rank != 4) FAIL(FK_EUNSUPPORTED, "only rank-4 images");
    int64_t N, C, hw[2], out[4];
    spatial_split(a->layout, x, &N, &C, hw);
    int64_t bb = (int64_t)a->block * a->block;
    if (a->block < 1 || C % bb) FAIL(FK_ESHAPE, "%lld channels not divisible by block^2", (long long)C);
    hw[0] *= a->block;
    hw[1] *= a->block;
    spatial_join(a->layout, N, C / bb, hw, out);
    return set_out(g, n, 0, x->dtype, 4, out);
}

int fk__op_infer(fk__graph *g, fk__node *n) {
    for (int i = 0; i < n->n_in; i++) {
        if (n->in[i] < 0) continue;
        const fk__tensor *t = &g->t[n->in[i]];
        if (t->kind == FK__T_ACT && t->producer < 0 && !t->data)
            FAIL(FK_EFORMAT, "input '%s' is produced by no node", t->name);
    }
    switch (n->op) {
    case FK__OP_CONV:
    case FK__OP_CONV_TRANSPOSE: return infer_conv(g, n);
    case FK__OP_MAX_POOL:
    case FK__OP_AVG_POOL:
    case FK__OP_GLOBAL_AVG_POOL: return infer_pool(g, n);
    case FK__OP_ADD: case FK__OP_SUB: case FK__OP_MUL: case FK__OP_DIV:
    case FK__OP_MAX: case FK__OP_MIN: case FK__OP_POW: case FK__OP_PRELU: return infer_binary(g, n);
    case FK__OP_BATCH_NORM: case FK__OP_RELU: case FK__OP_CLIP: case FK__OP_LEAKY_RELU: case FK__OP_SIGMOID:
    case FK__OP_TANH: case FK__OP_EXP: case FK__OP_ABS: case FK__OP_NEG: case FK__OP_SQRT: case FK__OP_RSQRT:
    case FK__OP_SQUARE: case FK__OP_SOFTMAX: case FK__OP_CAST: case FK__OP_IDENTITY: return infer_same(g, n);
    case FK__OP_MATMUL: return infer_matmul(g, n);
    case FK__OP_GEMM: return infer_gemm(g, n);
    case FK__OP_CONCAT: return infer_concat(g, n);
    case FK__OP_SPLIT: return infer_split(g, n);
    case FK__OP_SLICE: return infer_slice(g, n);
    case FK__OP_RESHAPE: case FK__OP_FLATTEN: case FK__OP_SQUEEZE: case FK__OP_UNSQUEEZE:
        return infer_reshape(g, n);
    case FK__OP_TRANSPOSE: return infer_transpose(g, n);
    case FK__OP_GATHER: return infer_gather(g, n);
    case FK__OP_PAD: return infer_pad(g, n);
    case FK__OP_REDUCE_MEAN: case FK__OP_REDUCE_SUM: case FK__OP_REDUCE_MAX: return infer_reduce(g, n);
    case FK__OP_RESIZE: return infer_resize(g, n);
    case FK__OP_DEPTH_TO_SPACE: return infer_d2s(g, n);
    case FK__OP_SHAPE: {
        fk__tensor *x = input(g, n, 0);
        if (!x) FAIL(FK_EFORMAT, "missing input");
        int64_t d = x->rank;
        return set_out(g, n, 0, FK__DT_I64, 1, &d);
    }
    default: FAIL(FK_EUNSUPPORTED, "unknown op %d", n->op);
    }
}
