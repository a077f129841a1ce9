/*
 * onnx.c — the ONNX front-end: reads a .onnx file (opsets 9..17), decodes it with the protobuf-c decoder
 * generated from Debian's onnx.proto, and fills a fk__graph (graph.h) with constants, inputs and internal
 * ops. It sits in the nn layer beside tfjs.c; the executor never sees a protobuf.
 *
 * The file is outside input: every count, length, dimension and attribute is checked before use, so a
 * truncated or corrupted file gives an error naming the file and the tensor or node, never a crash. What
 * this file normalises (so that ops.c/exec.c need not know ONNX):
 *   - initializers and Constant nodes become FK__T_CONST tensors (float32, int64, int32); graph inputs that
 *     are also initializers (required before IR 4, still found after it: fr_age) are constants, not inputs;
 *   - BatchNormalization's four parameter tensors become one scale and one shift (graph.h);
 *   - attribute forms and constant-input forms (Unsqueeze/Squeeze/Split/ReduceSum axes, Pad pads, Clip
 *     limits) become attributes; Slice keeps its opset-10 inputs (ops.c reads them);
 *   - Softmax before opset 13 (which flattens to 2-D at `axis`) becomes Shape + Flatten + Softmax(axis 1) +
 *     Reshape unless axis is -1, where both semantics agree;
 *   - Upsample and opset-10 Resize get the opset-11 input layout (x, roi, scales) and their coordinate rules;
 *   - Dropout becomes Identity.
 * Shapes of activations are left to fk__graph_prepare (ops.c); activation tensors are created rank 0,
 * float32 except Shape (int64) and Cast (its target).
 */
#include "nn/graph.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ONNX_MAX_FILE_BYTES ((int64_t)2000 * 1000 * 1000) /* protobuf's own limit is 2 GiB */
#define ONNX_OPSET_MIN 9
#define ONNX_OPSET_MAX 17
#define ONNX_MAX_ATTR_INT 65536 /* bound for kernel, stride, dilation, pads, group: keeps inference in range */
#define ONNX_MAX_NUMEL ((int64_t)1 << 31)

/* ONNX TensorProto.DataType values we read. */
enum { ONNX_FLOAT = 1, ONNX_INT32 = 6, ONNX_INT64 = 7 };

typedef struct loader {
    fk__graph *g;
    const char *path;
    int opset;
    int nomem;               /* the protobuf allocator failed: report FK_ENOMEM, not a format error */
    const Onnx__NodeProto *node; /* node being converted, for messages */
    size_t node_index;
    char desc[320];          /* "node 'Conv_3' (Conv)" of the current node */
} loader;

/* ---- errors ------------------------------------------------------------------------------------- */

static int fail(loader *L, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(loader *L, int status, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fk__seterr(L->g->err, sizeof L->g->err, "%s: %s", L->path, msg);
    return status;
}

static int fail_nomem(loader *L) { return fail(L, FK_ENOMEM, "out of memory while loading"); }

/* Node and tensor names from the file may be empty; messages then use the position. */
static void describe_node(loader *L, const Onnx__NodeProto *n, size_t index) {
    L->node = n;
    L->node_index = index;
    const char *op = n->op_type ? n->op_type : "?";
    if (n->name && n->name[0])
        snprintf(L->desc, sizeof L->desc, "node '%.120s' (%.60s)", n->name, op);
    else if (n->n_output > 0 && n->output[0] && n->output[0][0])
        snprintf(L->desc, sizeof L->desc, "node #%zu (%.60s, output '%.120s')", index, op, n->output[0]);
    else
        snprintf(L->desc, sizeof L->desc, "node #%zu (%.60s)", index, op);
}

static int fail_node(loader *L, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail_node(loader *L, int status, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(L, status, "%s: %s", L->desc, msg);
}

/* ---- protobuf decoding through the counting allocator -------------------------------------------- */

static void *pb_alloc(void *ud, size_t n) {
    void *p = fk__malloc(n ? n : 1);
    if (!p) ((loader *)ud)->nomem = 1;
    return p;
}

static void pb_free(void *ud, void *p) {
    (void)ud;
    fk__free(p);
}

static int read_file(loader *L, unsigned char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(L->path, "rb");
    if (!f) {
        int e = errno;
        return fail(L, e == ENOENT ? FK_ENOTFOUND : FK_EIO, "cannot open: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(L, FK_EIO, "not a regular file");
    }
    if ((int64_t)st.st_size > ONNX_MAX_FILE_BYTES) {
        fclose(f);
        return fail(L, FK_ELIMIT, "file is %lld bytes, more than the %lld-byte limit", (long long)st.st_size,
                    (long long)ONNX_MAX_FILE_BYTES);
    }
    if (st.st_size == 0) {
        fclose(f);
        return fail(L, FK_EFORMAT, "empty file, not an ONNX model");
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = fk__malloc(len);
    if (!buf) {
        fclose(f);
        return fail_nomem(L);
    }
    size_t got = fread(buf, 1, len, f);
    int err = ferror(f);
    fclose(f);
    if (got != len || err) {
        fk__free(buf);
        return fail(L, FK_EIO, "read %zu of %zu bytes", got, len);
    }
    *out = buf;
    *out_len = len;
    return FK_OK;
}

/* ---- tensors -------------------------------------------------------------------------------------- */

static int64_t numel_of(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

/* Checks dims from the file: rank, non-negative, element count bounded (no overflow). */
static int check_dims(loader *L, const char *what, const char *name, size_t rank, const int64_t *dims) {
    if (rank > FK__MAX_RANK)
        return fail(L, FK_EUNSUPPORTED, "%s '%s': rank %zu is more than %d", what, name, rank, FK__MAX_RANK);
    int64_t n = 1;
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > ONNX_MAX_NUMEL)
            return fail(L, FK_EFORMAT, "%s '%s': bad dimension %lld", what, name, (long long)dims[i]);
        n *= dims[i];
        if (n > ONNX_MAX_NUMEL)
            return fail(L, FK_EFORMAT, "%s '%s': too many elements", what, name);
    }
    return FK_OK;
}

/* Adds a tensor, giving a clear message for duplicates. Takes DATA over (freed here on failure). */
static int add_tensor(loader *L, const char *name, int dtype, int kind, int rank, const int64_t *dims,
                      void *data) {
    if (fk__graph_find(L->g, name) >= 0) {
        fk__free(data);
        return fail(L, FK_EFORMAT, "tensor '%s' is defined twice", name);
    }
    int id = fk__graph_add_tensor(L->g, name, dtype, kind, rank, dims, data);
    if (id < 0) {
        if (id == FK_ENOMEM) return fail_nomem(L);
        if (!L->g->err[0]) return fail(L, id, "cannot add tensor '%s'", name);
    }
    return id;
}

/* Converts one TensorProto (initializer or Constant value) to a constant tensor named NAME. WHAT names the
 * source in messages ("initializer", "Constant node ..."). Returns the tensor id or an error. */
static int add_tensor_proto(loader *L, Onnx__TensorProto *tp, const char *name, const char *what) {
    if (!name || !name[0]) return fail(L, FK_EFORMAT, "%s without a name", what);
    if (tp->n_external_data > 0 ||
        (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return fail(L, FK_EUNSUPPORTED, "%s '%s': external data files are not supported", what, name);
    if (tp->segment) return fail(L, FK_EUNSUPPORTED, "%s '%s': segmented tensors are not supported", what, name);
    int rc = check_dims(L, what, name, tp->n_dims, tp->dims);
    if (rc) return rc;
    int rank = (int)tp->n_dims;
    int64_t n = numel_of(rank, tp->dims);

    int dtype;
    size_t esize;
    size_t n_typed; /* values in the type-specific field */
    const void *typed;
    switch (tp->data_type) {
    case ONNX_FLOAT:
        dtype = FK__DT_F32, esize = 4, n_typed = tp->n_float_data, typed = tp->float_data;
        break;
    case ONNX_INT64:
        dtype = FK__DT_I64, esize = 8, n_typed = tp->n_int64_data, typed = tp->int64_data;
        break;
    case ONNX_INT32:
        dtype = FK__DT_I32, esize = 4, n_typed = tp->n_int32_data, typed = tp->int32_data;
        break;
    default:
        return fail(L, FK_EUNSUPPORTED, "%s '%s': data type %d is not supported (float32, int64, int32 are)",
                    what, name, (int)tp->data_type);
    }
    /* Lengths are checked before anything is allocated: corrupted dims must not cause a huge allocation. */
    size_t bytes = (size_t)n * esize;
    int use_raw = tp->has_raw_data && (tp->raw_data.len > 0 || n_typed == 0);
    if (use_raw && tp->raw_data.len != bytes)
        return fail(L, FK_EFORMAT, "%s '%s': raw data has %zu bytes, its %lld elements need %zu", what, name,
                    tp->raw_data.len, (long long)n, bytes);
    if (!use_raw && n_typed != (size_t)n) {
        if (n_typed == 0) return fail(L, FK_EFORMAT, "%s '%s': no data for %lld elements", what, name, (long long)n);
        return fail(L, FK_EFORMAT, "%s '%s': %zu values for %lld elements", what, name, n_typed, (long long)n);
    }
    unsigned char *data;
    if (use_raw && bytes > 0) {
        /* The decoder allocated raw_data through fk__malloc (pb_alloc), with exactly its length and 64-byte
         * aligned: the graph takes the block over instead of copying weights a second time. Raw data is
         * little-endian in the file and on the hosts we build for. */
        data = tp->raw_data.data;
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        tp->has_raw_data = 0;
    } else {
        data = fk__malloc(bytes ? bytes : 1);
        if (!data) return fail_nomem(L);
        if (bytes) memcpy(data, typed, bytes);
    }
    return add_tensor(L, name, dtype, FK__T_CONST, rank, tp->dims, data);
}

/* Adds a small constant made by the loader (scalars from Constant value_* attributes, BN scale/shift). */
static int add_const(loader *L, const char *name, int dtype, int rank, const int64_t *dims, const void *values) {
    int64_t n = numel_of(rank, dims);
    size_t bytes = (size_t)n * fk__dtype_size(dtype);
    void *data = fk__malloc(bytes ? bytes : 1);
    if (!data) return fail_nomem(L);
    if (bytes) memcpy(data, values, bytes);
    return add_tensor(L, name, dtype, FK__T_CONST, rank, dims, data);
}

/* The constant tensor named NAME, or NULL when NAME is not a constant (yet). */
static const fk__tensor *find_const(loader *L, const char *name) {
    if (!name || !name[0]) return NULL;
    int id = fk__graph_find(L->g, name);
    if (id < 0 || L->g->t[id].kind != FK__T_CONST) return NULL;
    return &L->g->t[id];
}

/* Reads a constant integer vector (int64 or int32) into OUT[MAX]; *N = its length. */
static int const_ints(loader *L, const char *name, const char *role, int64_t *out, int max, int *n) {
    const fk__tensor *t = find_const(L, name);
    if (!t) return fail_node(L, FK_EUNSUPPORTED, "%s ('%s') must be a constant", role, name ? name : "");
    if (t->rank > 1) return fail_node(L, FK_EFORMAT, "%s ('%s') must be a vector", role, name);
    int64_t cnt = fk__tensor_numel(t);
    if (cnt > max) return fail_node(L, FK_EUNSUPPORTED, "%s ('%s') has %lld values, at most %d", role, name,
                                    (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) {
        if (t->dtype == FK__DT_I64)
            out[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == FK__DT_I32)
            out[i] = ((const int32_t *)t->data)[i];
        else
            return fail_node(L, FK_EFORMAT, "%s ('%s') must be integers", role, name);
    }
    *n = (int)cnt;
    return FK_OK;
}

/* Reads a constant float scalar (one element, float32). */
static int const_float(loader *L, const char *name, const char *role, float *out) {
    const fk__tensor *t = find_const(L, name);
    if (!t) return fail_node(L, FK_EUNSUPPORTED, "%s ('%s') must be a constant", role, name ? name : "");
    if (t->dtype != FK__DT_F32 || fk__tensor_numel(t) != 1)
        return fail_node(L, FK_EFORMAT, "%s ('%s') must be one float32 value", role, name);
    *out = ((const float *)t->data)[0];
    return FK_OK;
}

/* ---- attributes ---------------------------------------------------------------------------------- */

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        if (a->name && !strcmp(a->name, name)) return a;
    }
    return NULL;
}

/* Old exporters may leave `type` unset; accept the attribute when the matching field is present. */
static int attr_is(const Onnx__AttributeProto *a, Onnx__AttributeProto__AttributeType type) {
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return a->type == type;
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return a->has_i;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return a->has_f;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return a->has_s;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return a->t != NULL;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return a->n_ints > 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return a->n_floats > 0;
    default: return 0;
    }
}

static int attr_i64(loader *L, const char *name, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = attr_find(L->node, name);
    *out = def;
    if (!a) return FK_OK;
    if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return fail_node(L, FK_EFORMAT, "attribute '%s' must be an integer", name);
    *out = a->i;
    return FK_OK;
}

/* An int attribute within [LO, HI]. */
static int attr_int(loader *L, const char *name, int def, int lo, int hi, int *out) {
    int64_t v;
    int rc = attr_i64(L, name, def, &v);
    if (rc) return rc;
    if (v < lo || v > hi)
        return fail_node(L, FK_EFORMAT, "attribute '%s' = %lld is out of range [%d, %d]", name, (long long)v, lo, hi);
    *out = (int)v;
    return FK_OK;
}

static int attr_float(loader *L, const char *name, float def, float *out) {
    const Onnx__AttributeProto *a = attr_find(L->node, name);
    *out = def;
    if (!a) return FK_OK;
    if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
        return fail_node(L, FK_EFORMAT, "attribute '%s' must be a float", name);
    if (isnan(a->f)) return fail_node(L, FK_EFORMAT, "attribute '%s' is NaN", name);
    *out = a->f;
    return FK_OK;
}

/* An ints attribute into OUT[MAX]; *N = count, -1 when absent. */
static int attr_ints(loader *L, const char *name, int64_t *out, int max, int *n) {
    const Onnx__AttributeProto *a = attr_find(L->node, name);
    *n = -1;
    if (!a) return FK_OK;
    if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) &&
        !(a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS))
        return fail_node(L, FK_EFORMAT, "attribute '%s' must be a list of integers", name);
    if (a->n_ints > (size_t)max)
        return fail_node(L, FK_EUNSUPPORTED, "attribute '%s' has %zu values, at most %d", name, a->n_ints, max);
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    *n = (int)a->n_ints;
    return FK_OK;
}

/* A string attribute compared case-sensitively with CHOICES; *OUT = index, DEF when absent. */
static int attr_choice(loader *L, const char *name, const char *const *choices, int n_choices, int def, int *out) {
    const Onnx__AttributeProto *a = attr_find(L->node, name);
    *out = def;
    if (!a) return FK_OK;
    if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING))
        return fail_node(L, FK_EFORMAT, "attribute '%s' must be a string", name);
    for (int i = 0; i < n_choices; i++) {
        if (a->s.len == strlen(choices[i]) && !memcmp(a->s.data, choices[i], a->s.len)) {
            *out = i;
            return FK_OK;
        }
    }
    return fail_node(L, FK_EUNSUPPORTED, "attribute %s='%.*s' is not supported", name,
                     (int)(a->s.len > 40 ? 40 : a->s.len), (const char *)a->s.data);
}

/* Axes lists (Squeeze, Unsqueeze, reductions, Slice): each within [-MAX_RANK, MAX_RANK]. */
static int to_axes(loader *L, const char *what, const int64_t *v, int n, int *axes) {
    for (int i = 0; i < n; i++) {
        if (v[i] < -FK__MAX_RANK || v[i] > FK__MAX_RANK)
            return fail_node(L, FK_EFORMAT, "%s: axis %lld is out of range", what, (long long)v[i]);
        axes[i] = (int)v[i];
    }
    return FK_OK;
}

static int attr_axis(loader *L, int def, int *axis) {
    return attr_int(L, "axis", def, -FK__MAX_RANK, FK__MAX_RANK, axis);
}

/* Attributes whose presence changes the meaning in ways we do not implement. */
static int reject_attr(loader *L, const char *name, const char *why) {
    if (attr_find(L->node, name)) return fail_node(L, FK_EUNSUPPORTED, "attribute '%s' is not supported (%s)", name, why);
    return FK_OK;
}

/* ---- op conversion ------------------------------------------------------------------------------- */

/* Spatial attributes of Conv / ConvTranspose / pools (2-D only). KERNEL_FROM: weight dims for Conv. */
static int spatial_attrs(loader *L, fk__attr *a, int is_conv, const int64_t *weight_dims, int weight_rank) {
    int64_t v[8];
    int n, rc;
    a->layout = FK__NCHW;
    if ((rc = attr_ints(L, "kernel_shape", v, 8, &n))) return rc;
    if (n < 0) {
        if (!is_conv || weight_rank != 4)
            return fail_node(L, FK_EUNSUPPORTED, "needs kernel_shape or a constant 4-D weight");
        v[0] = weight_dims[2], v[1] = weight_dims[3], n = 2;
    }
    if (n != 2) return fail_node(L, FK_EUNSUPPORTED, "only 2-D kernels are supported (kernel_shape has %d values)", n);
    for (int i = 0; i < 2; i++) {
        if (v[i] < 1 || v[i] > ONNX_MAX_ATTR_INT) return fail_node(L, FK_EFORMAT, "bad kernel_shape %lld", (long long)v[i]);
        a->kernel[i] = (int)v[i];
    }
    if (is_conv && weight_rank == 4 && (weight_dims[2] != a->kernel[0] || weight_dims[3] != a->kernel[1]))
        return fail_node(L, FK_EFORMAT, "kernel_shape %dx%d does not match the weight (%lldx%lld)", a->kernel[0],
                         a->kernel[1], (long long)weight_dims[2], (long long)weight_dims[3]);
    static const char *const names[3] = {"strides", "dilations", "pads"};
    int *dst[3] = {a->stride, a->dilation, a->pads};
    int want[3] = {2, 2, 4}, lo[3] = {1, 1, 0};
    for (int k = 0; k < 3; k++) {
        if ((rc = attr_ints(L, names[k], v, 8, &n))) return rc;
        if (n < 0) continue;
        if (n != want[k]) return fail_node(L, FK_EUNSUPPORTED, "%s has %d values, expected %d", names[k], n, want[k]);
        for (int i = 0; i < n; i++) {
            if (v[i] < lo[k] || v[i] > ONNX_MAX_ATTR_INT)
                return fail_node(L, FK_EFORMAT, "bad %s value %lld", names[k], (long long)v[i]);
            dst[k][i] = (int)v[i];
        }
    }
    static const char *const autopads[4] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    if ((rc = attr_choice(L, "auto_pad", autopads, 4, 0, &a->auto_pad))) return rc;
    /* NOTSET = 0 = FK__AUTOPAD_NONE, and the rest follow the enum's order. */
    return FK_OK;
}

#define ONNX_MAX_NODE_INPUTS 1024

/* One node being converted: resolved tensor ids (-1 = absent optional), edited by the op's conversion. */
typedef struct conv_ctx {
    int in[ONNX_MAX_NODE_INPUTS], n_in;
    int out[FK__MAX_SPLIT], n_out;
} conv_ctx;

/* Adds a node and returns FK_OK or an error. */
static int emit(loader *L, int op, const char *name, int n_in, const int *in, int n_out, const int *out,
                const fk__attr *a) {
    int idx = fk__graph_add_node(L->g, op, name, n_in, in, n_out, out);
    if (idx < 0) {
        if (idx == FK_ENOMEM) return fail_nomem(L);
        if (!L->g->err[0]) return fail_node(L, idx, "cannot add the node");
        return idx;
    }
    if (a) L->g->n[idx].a = *a;
    return FK_OK;
}

/* A loader-made activation tensor named "<base>::<suffix>". Returns its id or an error. */
static int add_temp(loader *L, const char *base, const char *suffix, int dtype) {
    char name[512];
    snprintf(name, sizeof name, "%s::%s", base, suffix);
    return add_tensor(L, name, dtype, FK__T_ACT, 0, NULL, NULL);
}

static int need_inputs(loader *L, int lo, int hi) {
    int n = (int)L->node->n_input;
    if (n < lo || n > hi) {
        if (lo == hi) return fail_node(L, FK_EFORMAT, "has %d inputs, expected %d", n, lo);
        return fail_node(L, FK_EFORMAT, "has %d inputs, expected %d to %d", n, lo, hi);
    }
    return FK_OK;
}

static int is_op(const char *t, const char *name) { return !strcmp(t, name); }

/* Converts BatchNormalization's gamma, beta, mean, var (constants) into scale and shift (graph.h). */
static int convert_batchnorm(loader *L, conv_ctx *c, const char *name, fk__attr *a) {
    int rc;
    if ((rc = attr_float(L, "epsilon", 1e-5f, &a->eps))) return rc;
    int64_t v;
    if ((rc = attr_i64(L, "spatial", 1, &v))) return rc;
    if (v != 1) return fail_node(L, FK_EUNSUPPORTED, "spatial=0 is not supported");
    if ((rc = attr_i64(L, "training_mode", 0, &v))) return rc;
    if (v != 0) return fail_node(L, FK_EUNSUPPORTED, "training_mode is not supported");
    if (L->node->n_output > 1) {
        for (size_t i = 1; i < L->node->n_output; i++)
            if (L->node->output[i][0]) return fail_node(L, FK_EUNSUPPORTED, "training outputs are not supported");
    }
    static const char *const roles[4] = {"scale", "B", "mean", "var"};
    const float *p[4];
    int64_t ch = -1;
    for (int k = 0; k < 4; k++) {
        const fk__tensor *t = find_const(L, L->node->input[k + 1]);
        if (!t) return fail_node(L, FK_EUNSUPPORTED, "input %s ('%s') must be a constant", roles[k], L->node->input[k + 1]);
        if (t->dtype != FK__DT_F32 || t->rank != 1)
            return fail_node(L, FK_EFORMAT, "input %s ('%s') must be a float32 vector", roles[k], L->node->input[k + 1]);
        if (ch >= 0 && t->dims[0] != ch)
            return fail_node(L, FK_EFORMAT, "input %s ('%s') has %lld values, expected %lld", roles[k],
                             L->node->input[k + 1], (long long)t->dims[0], (long long)ch);
        ch = t->dims[0];
        p[k] = t->data;
    }
    float *ss = fk__malloc((size_t)(2 * ch > 0 ? 2 * ch : 1) * sizeof(float));
    if (!ss) return fail_nomem(L);
    for (int64_t i = 0; i < ch; i++) {
        double var = p[3][i] + (double)a->eps;
        double s = var > 0 ? p[0][i] / sqrt(var) : 0.0;
        ss[i] = (float)s;
        ss[ch + i] = (float)(p[1][i] - p[2][i] * s);
    }
    int64_t dims[1] = {ch};
    char nm[512];
    snprintf(nm, sizeof nm, "%s::bn_scale", name);
    int sid = add_const(L, nm, FK__DT_F32, 1, dims, ss);
    if (sid < 0) {
        fk__free(ss);
        return sid;
    }
    snprintf(nm, sizeof nm, "%s::bn_shift", name);
    int hid = add_const(L, nm, FK__DT_F32, 1, dims, ss + ch);
    fk__free(ss);
    if (hid < 0) return hid;
    c->in[1] = sid;
    c->in[2] = hid;
    c->n_in = 3;
    c->n_out = 1;
    return FK_OK;
}

/* Dropout, MaxPool, BatchNormalization... have optional outputs we do not produce. */
static int only_first_output(loader *L, conv_ctx *c) {
    for (size_t i = 1; i < L->node->n_output; i++)
        if (L->node->output[i] && L->node->output[i][0])
            return fail_node(L, FK_EUNSUPPORTED, "output %zu ('%s') is not supported", i, L->node->output[i]);
    c->n_out = 1;
    return FK_OK;
}

/* Softmax before opset 13 coerces the input to 2-D at `axis` ([prod(d<axis), prod(d>=axis)]) and normalises
 * each row. With axis = last axis that equals softmax over the last axis; in general it is
 * Reshape(Softmax(Flatten(x, axis), axis=1), Shape(x)), which is what we emit (Shape folds at prepare). */
static int convert_softmax_v1(loader *L, conv_ctx *c, const char *name, int axis) {
    const char *base = L->node->output[0];
    int sh = add_temp(L, base, "softmax_shape", FK__DT_I64);
    if (sh < 0) return sh;
    int fl = add_temp(L, base, "softmax_2d_in", FK__DT_F32);
    if (fl < 0) return fl;
    int sm = add_temp(L, base, "softmax_2d_out", FK__DT_F32);
    if (sm < 0) return sm;
    char nm[512];
    fk__attr a;
    int rc;
    snprintf(nm, sizeof nm, "%s::shape", name);
    fk__attr_defaults(&a);
    if ((rc = emit(L, FK__OP_SHAPE, nm, 1, &c->in[0], 1, &sh, &a))) return rc;
    snprintf(nm, sizeof nm, "%s::flatten", name);
    fk__attr_defaults(&a);
    a.axis = axis;
    if ((rc = emit(L, FK__OP_FLATTEN, nm, 1, &c->in[0], 1, &fl, &a))) return rc;
    fk__attr_defaults(&a);
    a.axis = 1;
    if ((rc = emit(L, FK__OP_SOFTMAX, name, 1, &fl, 1, &sm, &a))) return rc;
    snprintf(nm, sizeof nm, "%s::reshape", name);
    fk__attr_defaults(&a);
    int rin[2] = {sm, sh};
    return emit(L, FK__OP_RESHAPE, nm, 2, rin, 1, &c->out[0], &a);
}

typedef struct op_map {
    const char *onnx;
    int op;
    int min_in, max_in;
} op_map;

/* Ops whose conversion is just "same inputs, no attributes". */
static const op_map g_plain_ops[] = {
    {"Relu", FK__OP_RELU, 1, 1},       {"Sigmoid", FK__OP_SIGMOID, 1, 1}, {"Tanh", FK__OP_TANH, 1, 1},
    {"Exp", FK__OP_EXP, 1, 1},         {"Abs", FK__OP_ABS, 1, 1},         {"Neg", FK__OP_NEG, 1, 1},
    {"Sqrt", FK__OP_SQRT, 1, 1},       {"Add", FK__OP_ADD, 2, 2},         {"Sub", FK__OP_SUB, 2, 2},
    {"Mul", FK__OP_MUL, 2, 2},         {"Div", FK__OP_DIV, 2, 2},         {"Pow", FK__OP_POW, 2, 2},
    {"Max", FK__OP_MAX, 2, 2},         {"Min", FK__OP_MIN, 2, 2},         {"PRelu", FK__OP_PRELU, 2, 2},
    {"MatMul", FK__OP_MATMUL, 2, 2},   {"Reshape", FK__OP_RESHAPE, 2, 2}, {"Identity", FK__OP_IDENTITY, 1, 1},
    {"GlobalAveragePool", FK__OP_GLOBAL_AVG_POOL, 1, 1},
};

static int convert_node(loader *L, const char *name, conv_ctx *c) {
    const Onnx__NodeProto *nd = L->node;
    const char *t = nd->op_type;
    fk__attr a;
    fk__attr_defaults(&a);
    int op = -1, rc;
    int64_t v[2 * FK__MAX_RANK];
    int n;

    for (size_t k = 0; k < FK__ARRAY_LEN(g_plain_ops); k++) {
        if (!is_op(t, g_plain_ops[k].onnx)) continue;
        if ((rc = need_inputs(L, g_plain_ops[k].min_in, g_plain_ops[k].max_in))) return rc;
        op = g_plain_ops[k].op;
        if (op == FK__OP_GLOBAL_AVG_POOL) a.layout = FK__NCHW;
        if (op == FK__OP_RESHAPE) {
            if ((rc = attr_i64(L, "allowzero", 0, v))) return rc;
            if (v[0] != 0) return fail_node(L, FK_EUNSUPPORTED, "allowzero=1 is not supported");
        }
        goto emit_node;
    }

    if (is_op(t, "Conv") || is_op(t, "ConvTranspose")) {
        int tr = is_op(t, "ConvTranspose");
        if ((rc = need_inputs(L, 2, 3))) return rc;
        const fk__tensor *w = find_const(L, nd->input[1]);
        if ((rc = spatial_attrs(L, &a, 1, w ? w->dims : NULL, w ? w->rank : 0))) return rc;
        if ((rc = attr_int(L, "group", 1, 1, ONNX_MAX_ATTR_INT, &a.group))) return rc;
        if (tr) {
            if ((rc = attr_ints(L, "output_padding", v, 2, &n))) return rc;
            for (int i = 0; i < n; i++) {
                if (v[i] < 0 || v[i] > ONNX_MAX_ATTR_INT) return fail_node(L, FK_EFORMAT, "bad output_padding");
                a.out_pad[i] = (int)v[i];
            }
            if ((rc = attr_ints(L, "output_shape", v, 2, &n))) return rc;
            if (n == 2) a.out_hw[0] = v[0], a.out_hw[1] = v[1];
            else if (n >= 0) return fail_node(L, FK_EUNSUPPORTED, "output_shape must have 2 values");
        }
        op = tr ? FK__OP_CONV_TRANSPOSE : FK__OP_CONV;
    } else if (is_op(t, "MaxPool") || is_op(t, "AveragePool")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = spatial_attrs(L, &a, 0, NULL, 0))) return rc;
        if (a.dilation[0] != 1 || a.dilation[1] != 1)
            return fail_node(L, FK_EUNSUPPORTED, "dilated pooling is not supported");
        if ((rc = attr_int(L, "ceil_mode", 0, 0, 1, &a.ceil_mode))) return rc;
        if (is_op(t, "AveragePool")) {
            if ((rc = attr_int(L, "count_include_pad", 0, 0, 1, &a.count_include_pad))) return rc;
            op = FK__OP_AVG_POOL;
        } else {
            if ((rc = only_first_output(L, c))) return rc;
            op = FK__OP_MAX_POOL;
        }
    } else if (is_op(t, "BatchNormalization")) {
        if ((rc = need_inputs(L, 5, 5))) return rc;
        a.layout = FK__NCHW;
        if ((rc = only_first_output(L, c))) return rc;
        if ((rc = convert_batchnorm(L, c, nd->output[0], &a))) return rc;
        op = FK__OP_BATCH_NORM;
    } else if (is_op(t, "Clip")) {
        a.clip_min = -FLT_MAX;
        a.clip_max = FLT_MAX;
        if (L->opset < 11) {
            if ((rc = need_inputs(L, 1, 1))) return rc;
            if ((rc = attr_float(L, "min", -FLT_MAX, &a.clip_min))) return rc;
            if ((rc = attr_float(L, "max", FLT_MAX, &a.clip_max))) return rc;
        } else {
            if ((rc = need_inputs(L, 1, 3))) return rc;
            if (nd->n_input > 1 && nd->input[1][0] && (rc = const_float(L, nd->input[1], "min", &a.clip_min))) return rc;
            if (nd->n_input > 2 && nd->input[2][0] && (rc = const_float(L, nd->input[2], "max", &a.clip_max))) return rc;
            c->n_in = 1;
        }
        op = FK__OP_CLIP;
    } else if (is_op(t, "LeakyRelu")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = attr_float(L, "alpha", 0.01f, &a.alpha))) return rc;
        a.act_a = a.alpha;
        op = FK__OP_LEAKY_RELU;
    } else if (is_op(t, "Softmax")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = attr_axis(L, L->opset < 13 ? 1 : -1, &a.axis))) return rc;
        if (L->opset < 13 && a.axis != -1) return convert_softmax_v1(L, c, name, a.axis);
        op = FK__OP_SOFTMAX;
    } else if (is_op(t, "Gemm")) {
        if ((rc = need_inputs(L, 2, 3))) return rc;
        if ((rc = attr_float(L, "alpha", 1.0f, &a.alpha))) return rc;
        if ((rc = attr_float(L, "beta", 1.0f, &a.beta))) return rc;
        if ((rc = attr_int(L, "transA", 0, 0, 1, &a.trans_a))) return rc;
        if ((rc = attr_int(L, "transB", 0, 0, 1, &a.trans_b))) return rc;
        if ((rc = reject_attr(L, "broadcast", "opset < 7"))) return rc;
        op = FK__OP_GEMM;
    } else if (is_op(t, "Concat")) {
        if (nd->n_input < 1) return fail_node(L, FK_EFORMAT, "has no inputs");
        if (!attr_find(nd, "axis")) return fail_node(L, FK_EFORMAT, "attribute 'axis' is required");
        if ((rc = attr_axis(L, 0, &a.axis))) return rc;
        op = FK__OP_CONCAT;
    } else if (is_op(t, "Flatten")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = attr_axis(L, 1, &a.axis))) return rc;
        op = FK__OP_FLATTEN;
    } else if (is_op(t, "Transpose")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = attr_ints(L, "perm", v, FK__MAX_RANK, &n))) return rc;
        if (n > 0) {
            int seen[FK__MAX_RANK] = {0};
            for (int i = 0; i < n; i++) {
                if (v[i] < 0 || v[i] >= n || seen[v[i]]) return fail_node(L, FK_EFORMAT, "perm is not a permutation");
                seen[v[i]] = 1;
                a.perm[i] = (int)v[i];
            }
            a.n_perm = n;
        }
        op = FK__OP_TRANSPOSE;
    } else if (is_op(t, "Split")) {
        if ((rc = need_inputs(L, 1, L->opset >= 13 ? 2 : 1))) return rc;
        if ((rc = attr_axis(L, 0, &a.axis))) return rc;
        if (nd->n_output < 1 || nd->n_output > FK__MAX_SPLIT)
            return fail_node(L, FK_EUNSUPPORTED, "%zu outputs, 1 to %d supported", nd->n_output, FK__MAX_SPLIT);
        int64_t sp[FK__MAX_SPLIT];
        n = -1;
        if (L->opset >= 13) {
            if (nd->n_input > 1 && nd->input[1][0] &&
                (rc = const_ints(L, nd->input[1], "split", sp, FK__MAX_SPLIT, &n)))
                return rc;
            c->n_in = 1;
        } else if ((rc = attr_ints(L, "split", sp, FK__MAX_SPLIT, &n))) {
            return rc;
        }
        if (n >= 0) {
            if (n != (int)nd->n_output)
                return fail_node(L, FK_EFORMAT, "split has %d sizes for %zu outputs", n, nd->n_output);
            for (int i = 0; i < n; i++) {
                if (sp[i] < 0 || sp[i] > ONNX_MAX_NUMEL) return fail_node(L, FK_EFORMAT, "bad split size %lld", (long long)sp[i]);
                a.split[i] = sp[i];
            }
            a.n_split = n;
        }
        op = FK__OP_SPLIT;
    } else if (is_op(t, "Slice")) {
        if (L->opset < 10) {
            if ((rc = need_inputs(L, 1, 1))) return rc;
            int64_t st[FK__MAX_RANK], en[FK__MAX_RANK], ax[FK__MAX_RANK];
            int ns, ne, na;
            if ((rc = attr_ints(L, "starts", st, FK__MAX_RANK, &ns))) return rc;
            if ((rc = attr_ints(L, "ends", en, FK__MAX_RANK, &ne))) return rc;
            if ((rc = attr_ints(L, "axes", ax, FK__MAX_RANK, &na))) return rc;
            if (ns < 0 || ne != ns) return fail_node(L, FK_EFORMAT, "starts and ends are required and of equal length");
            if (na >= 0 && na != ns) return fail_node(L, FK_EFORMAT, "axes and starts differ in length");
            for (int i = 0; i < ns; i++) {
                a.s_starts[i] = st[i];
                a.s_ends[i] = en[i];
                a.s_steps[i] = 1;
                if (na < 0) ax[i] = i;
            }
            if ((rc = to_axes(L, "axes", ax, ns, a.s_axes))) return rc;
            a.s_n = ns;
        } else {
            if ((rc = need_inputs(L, 3, 5))) return rc;
        }
        op = FK__OP_SLICE;
    } else if (is_op(t, "Gather")) {
        if ((rc = need_inputs(L, 2, 2))) return rc;
        if ((rc = attr_axis(L, 0, &a.axis))) return rc;
        op = FK__OP_GATHER;
    } else if (is_op(t, "Unsqueeze") || is_op(t, "Squeeze")) {
        int unsq = is_op(t, "Unsqueeze");
        n = -1;
        if (L->opset >= 13) {
            if ((rc = need_inputs(L, unsq ? 2 : 1, 2))) return rc;
            if (nd->n_input > 1 && nd->input[1][0] && (rc = const_ints(L, nd->input[1], "axes", v, FK__MAX_RANK, &n)))
                return rc;
            c->n_in = 1;
        } else {
            if ((rc = need_inputs(L, 1, 1))) return rc;
            if ((rc = attr_ints(L, "axes", v, FK__MAX_RANK, &n))) return rc;
        }
        if (unsq && n < 1) return fail_node(L, FK_EFORMAT, "axes are required");
        if (n > 0) {
            if ((rc = to_axes(L, "axes", v, n, a.axes))) return rc;
            a.n_axes = n;
        }
        op = unsq ? FK__OP_UNSQUEEZE : FK__OP_SQUEEZE;
    } else if (is_op(t, "Shape")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = reject_attr(L, "start", "opset-15 Shape slicing"))) return rc;
        if ((rc = reject_attr(L, "end", "opset-15 Shape slicing"))) return rc;
        op = FK__OP_SHAPE;
    } else if (is_op(t, "Pad")) {
        static const char *const modes[3] = {"constant", "reflect", "edge"};
        if ((rc = attr_choice(L, "mode", modes, 3, 0, &a.pad_mode))) return rc;
        if (L->opset < 11) {
            if ((rc = need_inputs(L, 1, 1))) return rc;
            if ((rc = attr_ints(L, "pads", v, 2 * FK__MAX_RANK, &n))) return rc;
            if (n < 0) return fail_node(L, FK_EFORMAT, "attribute 'pads' is required");
            if ((rc = attr_float(L, "value", 0.0f, &a.pad_value))) return rc;
        } else {
            if ((rc = need_inputs(L, 2, 3))) return rc;
            if ((rc = const_ints(L, nd->input[1], "pads", v, 2 * FK__MAX_RANK, &n))) return rc;
            if (nd->n_input > 2 && nd->input[2][0] && (rc = const_float(L, nd->input[2], "constant_value", &a.pad_value)))
                return rc;
            c->n_in = 1;
        }
        if (n % 2) return fail_node(L, FK_EFORMAT, "pads has an odd number (%d) of values", n);
        for (int i = 0; i < n; i++) {
            if (v[i] < -ONNX_MAX_ATTR_INT || v[i] > ONNX_MAX_ATTR_INT) return fail_node(L, FK_EFORMAT, "bad pads value");
            a.pads_nd[i] = v[i];
        }
        a.n_pads_nd = n;
        op = FK__OP_PAD;
    } else if (is_op(t, "ReduceMean") || is_op(t, "ReduceSum") || is_op(t, "ReduceMax")) {
        op = is_op(t, "ReduceMean") ? FK__OP_REDUCE_MEAN : is_op(t, "ReduceSum") ? FK__OP_REDUCE_SUM : FK__OP_REDUCE_MAX;
        if ((rc = attr_int(L, "keepdims", 1, 0, 1, &a.keepdims))) return rc;
        int64_t nwe;
        if ((rc = attr_i64(L, "noop_with_empty_axes", 0, &nwe))) return rc;
        if (nwe) return fail_node(L, FK_EUNSUPPORTED, "noop_with_empty_axes is not supported");
        n = -1;
        if (op == FK__OP_REDUCE_SUM && L->opset >= 13) {
            if ((rc = need_inputs(L, 1, 2))) return rc;
            if (nd->n_input > 1 && nd->input[1][0] && (rc = const_ints(L, nd->input[1], "axes", v, FK__MAX_RANK, &n)))
                return rc;
            c->n_in = 1;
        } else {
            if ((rc = need_inputs(L, 1, 1))) return rc;
            if ((rc = attr_ints(L, "axes", v, FK__MAX_RANK, &n))) return rc;
        }
        if (n > 0) {
            if ((rc = to_axes(L, "axes", v, n, a.axes))) return rc;
            a.n_axes = n;
        }
    } else if (is_op(t, "Cast")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        int64_t to;
        if ((rc = attr_i64(L, "to", -1, &to))) return rc;
        if (to == ONNX_FLOAT) a.to = FK__DT_F32;
        else if (to == ONNX_INT64) a.to = FK__DT_I64;
        else if (to == ONNX_INT32) a.to = FK__DT_I32;
        else return fail_node(L, FK_EUNSUPPORTED, "cast to data type %lld is not supported", (long long)to);
        op = FK__OP_CAST;
    } else if (is_op(t, "Dropout")) {
        if ((rc = need_inputs(L, 1, 3))) return rc;
        if ((rc = only_first_output(L, c))) return rc;
        c->n_in = 1; /* ratio and training_mode only matter when training */
        op = FK__OP_IDENTITY;
    } else if (is_op(t, "Resize") || is_op(t, "Upsample")) {
        /* ops.c reads the output size from constant inputs (roi, scales, sizes); Upsample and opset-10
         * Resize have (x, scales), so an absent roi is slotted in to give every form one layout. */
        int old_form = is_op(t, "Upsample") || L->opset < 11;
        if (is_op(t, "Upsample") && L->opset >= 10)
            return fail_node(L, FK_EUNSUPPORTED, "Upsample is deprecated since opset 10, use Resize");
        if ((rc = need_inputs(L, 2, old_form ? 2 : 4))) return rc;
        a.layout = FK__NCHW;
        static const char *const rmodes[3] = {"nearest", "linear", "bilinear"};
        int m;
        if ((rc = attr_choice(L, "mode", rmodes, 3, 0, &m))) return rc;
        a.resize_mode = m == 0 ? FK__RESIZE_NEAREST : FK__RESIZE_BILINEAR;
        if (old_form) {
            /* Upsample and Resize-10: asymmetric coordinates, nearest rounds down */
            a.resize_coord = FK__COORD_ASYMMETRIC;
            a.nearest_mode = FK__NEAREST_FLOOR;
            c->in[2] = c->in[1];
            c->in[1] = -1;
            c->n_in = 3;
        } else {
            /* pytorch_half_pixel differs from half_pixel only for an output dimension of 1 */
            static const char *const coords[4] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"};
            static const int coord_map[4] = {FK__COORD_HALF_PIXEL, FK__COORD_HALF_PIXEL, FK__COORD_ALIGN_CORNERS,
                                             FK__COORD_ASYMMETRIC};
            static const char *const nmodes[4] = {"round_prefer_floor", "floor", "ceil", "round_prefer_ceil"};
            int cm;
            if ((rc = attr_choice(L, "coordinate_transformation_mode", coords, 4, 0, &cm))) return rc;
            a.resize_coord = coord_map[cm];
            if ((rc = attr_choice(L, "nearest_mode", nmodes, 4, 0, &a.nearest_mode))) return rc;
            int64_t ex;
            if ((rc = attr_i64(L, "exclude_outside", 0, &ex))) return rc;
            if (ex) return fail_node(L, FK_EUNSUPPORTED, "exclude_outside is not supported");
        }
        op = FK__OP_RESIZE;
    } else if (is_op(t, "DepthToSpace")) {
        if ((rc = need_inputs(L, 1, 1))) return rc;
        if ((rc = attr_int(L, "blocksize", 0, 1, ONNX_MAX_ATTR_INT, &a.block))) return rc;
        static const char *const dmodes[2] = {"DCR", "CRD"};
        int m;
        if ((rc = attr_choice(L, "mode", dmodes, 2, 0, &m))) return rc;
        a.dcr = m == 0;
        a.layout = FK__NCHW;
        op = FK__OP_DEPTH_TO_SPACE;
    } else {
        return fail_node(L, FK_EUNSUPPORTED, "op type '%s' is not supported", t);
    }

emit_node:
    if (c->n_out != 1 && op != FK__OP_SPLIT)
        return fail_node(L, FK_EFORMAT, "has %d outputs, expected 1", c->n_out);
    for (int i = 0; i < c->n_in; i++) {
        /* The first input is required for every op; later absent ones are optional (Conv bias, Slice axes). */
        if (c->in[i] < 0 && i == 0) return fail_node(L, FK_EFORMAT, "input 0 is empty");
    }
    for (int i = 0; i < c->n_out; i++)
        if (c->out[i] < 0) return fail_node(L, FK_EFORMAT, "output %d is empty", i);
    return emit(L, op, name, c->n_in, c->in, c->n_out, c->out, &a);
}

/* ---- Constant nodes, inputs, outputs, the model -------------------------------------------------- */

static int convert_constant(loader *L) {
    const Onnx__NodeProto *nd = L->node;
    if (nd->n_input != 0 || nd->n_output != 1 || !nd->output[0][0])
        return fail_node(L, FK_EFORMAT, "a Constant needs no inputs and one output");
    const char *out = nd->output[0];
    if (nd->n_attribute != 1) return fail_node(L, FK_EFORMAT, "a Constant needs exactly one value attribute");
    const Onnx__AttributeProto *a = nd->attribute[0];
    const char *an = a->name ? a->name : "";
    if (!strcmp(an, "value")) {
        if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) || !a->t)
            return fail_node(L, FK_EFORMAT, "attribute 'value' must be a tensor");
        char what[400];
        snprintf(what, sizeof what, "%s: value", L->desc);
        int id = add_tensor_proto(L, a->t, out, what);
        return id < 0 ? id : FK_OK;
    }
    if (!strcmp(an, "value_float")) {
        if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)) return fail_node(L, FK_EFORMAT, "bad value_float");
        int id = add_const(L, out, FK__DT_F32, 0, NULL, &a->f);
        return id < 0 ? id : FK_OK;
    }
    if (!strcmp(an, "value_int")) {
        if (!attr_is(a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)) return fail_node(L, FK_EFORMAT, "bad value_int");
        int id = add_const(L, out, FK__DT_I64, 0, NULL, &a->i);
        return id < 0 ? id : FK_OK;
    }
    if (!strcmp(an, "value_floats") || !strcmp(an, "value_ints")) {
        int is_f = an[6] == 'f';
        size_t cnt = is_f ? a->n_floats : a->n_ints;
        if (cnt > (size_t)ONNX_MAX_NUMEL) return fail_node(L, FK_EFORMAT, "too many values");
        int64_t dims[1] = {(int64_t)cnt};
        int id = add_const(L, out, is_f ? FK__DT_F32 : FK__DT_I64, 1, dims,
                           is_f ? (const void *)a->floats : (const void *)a->ints);
        return id < 0 ? id : FK_OK;
    }
    return fail_node(L, FK_EUNSUPPORTED, "Constant attribute '%s' is not supported", an);
}

static int elem_dtype(int32_t onnx_type) {
    switch (onnx_type) {
    case ONNX_FLOAT: return FK__DT_F32;
    case ONNX_INT64: return FK__DT_I64;
    case ONNX_INT32: return FK__DT_I32;
    default: return 0;
    }
}

/* A graph input that is not an initializer: its declared type and shape; unknown dims become 1 (the batch,
 * usually; callers fix real sizes in fk__graph_prepare). */
static int add_input(loader *L, const Onnx__ValueInfoProto *vi, int *id) {
    const char *name = vi->name;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return fail(L, FK_EUNSUPPORTED, "input '%s' is not a tensor", name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int dtype = elem_dtype(tt->elem_type);
    if (!dtype) return fail(L, FK_EUNSUPPORTED, "input '%s': element type %d is not supported", name, (int)tt->elem_type);
    if (!tt->shape) return fail(L, FK_EUNSUPPORTED, "input '%s' has no declared shape", name);
    if (tt->shape->n_dim > FK__MAX_RANK)
        return fail(L, FK_EUNSUPPORTED, "input '%s': rank %zu is more than %d", name, tt->shape->n_dim, FK__MAX_RANK);
    int64_t dims[FK__MAX_RANK];
    int rank = (int)tt->shape->n_dim;
    for (int i = 0; i < rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        int64_t v = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? d->dim_value : -1;
        if (v > ONNX_MAX_NUMEL) return fail(L, FK_EFORMAT, "input '%s': bad dimension %lld", name, (long long)v);
        dims[i] = v > 0 ? v : 1;
    }
    *id = add_tensor(L, name, dtype, FK__T_INPUT, rank, dims, NULL);
    return *id < 0 ? *id : FK_OK;
}

static int default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

static int load_model(loader *L, const Onnx__ModelProto *m) {
    fk__graph *g = L->g;
    int rc;
    L->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (default_domain(o->domain)) L->opset = o->has_version ? (int)(o->version > 1000 ? 1000 : o->version) : 1;
    }
    if (L->opset < 0) return fail(L, FK_EFORMAT, "no ONNX opset_import (IR version %lld)", (long long)m->ir_version);
    if (L->opset < ONNX_OPSET_MIN || L->opset > ONNX_OPSET_MAX)
        return fail(L, FK_EUNSUPPORTED, "opset %d is not supported (opsets %d to %d are)", L->opset, ONNX_OPSET_MIN,
                    ONNX_OPSET_MAX);
    const Onnx__GraphProto *gp = m->graph;
    if (!gp) return fail(L, FK_EFORMAT, "the model has no graph (not an ONNX model?)");
    if (gp->n_node == 0) return fail(L, FK_EFORMAT, "the graph has no nodes");
    if (gp->n_sparse_initializer) return fail(L, FK_EUNSUPPORTED, "sparse initializers are not supported");

    for (size_t i = 0; i < gp->n_initializer; i++) {
        int id = add_tensor_proto(L, gp->initializer[i], gp->initializer[i]->name, "initializer");
        if (id < 0) return id;
    }

    g->inputs = fk__malloc((gp->n_input ? gp->n_input : 1) * sizeof(int));
    if (!g->inputs) return fail_nomem(L);
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0]) return fail(L, FK_EFORMAT, "graph input %zu has no name", i);
        int id = fk__graph_find(g, vi->name);
        if (id >= 0 && g->t[id].kind == FK__T_CONST) continue; /* an initializer listed as an input (IR < 4 style) */
        if ((rc = add_input(L, vi, &id))) return rc;
        g->inputs[g->n_inputs++] = id;
    }

    /* Pass 1: every tensor a node defines, so that pass 2 can resolve names in any order and read the
     * values of Constant nodes (axes, pads, shapes given as inputs). */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        if (!nd->op_type || !nd->op_type[0]) return fail(L, FK_EFORMAT, "node #%zu has no op type", i);
        describe_node(L, nd, i);
        if (!default_domain(nd->domain))
            return fail_node(L, FK_EUNSUPPORTED, "op type '%s' of domain '%s' is not supported", nd->op_type, nd->domain);
        if (!strcmp(nd->op_type, "Constant")) {
            if ((rc = convert_constant(L))) return rc;
            continue;
        }
        if (nd->n_output == 0) return fail_node(L, FK_EFORMAT, "has no outputs");
        int dt = !strcmp(nd->op_type, "Shape") ? FK__DT_I64 : FK__DT_F32;
        for (size_t k = 0; k < nd->n_output; k++) {
            if (!nd->output[k][0]) continue;
            if (fk__graph_find(g, nd->output[k]) >= 0)
                return fail_node(L, FK_EFORMAT, "output '%s' is already defined", nd->output[k]);
            int id = add_tensor(L, nd->output[k], dt, FK__T_ACT, 0, NULL, NULL);
            if (id < 0) return id;
        }
    }

    /* Pass 2: the nodes. */
    conv_ctx *c = fk__malloc(sizeof *c);
    if (!c) return fail_nomem(L);
    rc = FK_OK;
    for (size_t i = 0; i < gp->n_node && !rc; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        if (!strcmp(nd->op_type, "Constant")) continue;
        describe_node(L, nd, i);
        if (nd->n_input > ONNX_MAX_NODE_INPUTS) {
            rc = fail_node(L, FK_EUNSUPPORTED, "%zu inputs, at most %d", nd->n_input, ONNX_MAX_NODE_INPUTS);
            break;
        }
        if (nd->n_output > FK__MAX_SPLIT) {
            rc = fail_node(L, FK_EUNSUPPORTED, "%zu outputs, at most %d", nd->n_output, FK__MAX_SPLIT);
            break;
        }
        c->n_in = (int)nd->n_input;
        c->n_out = (int)nd->n_output;
        for (size_t k = 0; k < nd->n_input && !rc; k++) {
            c->in[k] = -1;
            if (!nd->input[k][0]) continue;
            c->in[k] = fk__graph_find(g, nd->input[k]);
            if (c->in[k] < 0) rc = fail_node(L, FK_EFORMAT, "input '%s' is not defined in the graph", nd->input[k]);
        }
        for (size_t k = 0; k < nd->n_output; k++) c->out[k] = nd->output[k][0] ? fk__graph_find(g, nd->output[k]) : -1;
        if (rc) break;
        char gen[128];
        const char *name = nd->name;
        if (!name || !name[0]) {
            snprintf(gen, sizeof gen, "%.60s_%zu", nd->op_type, i); /* what PyTorch would have named it */
            name = gen;
        }
        rc = convert_node(L, name, c);
    }
    fk__free(c);
    if (rc) return rc;

    if (gp->n_output == 0) return fail(L, FK_EFORMAT, "the graph has no outputs");
    g->outputs = fk__malloc(gp->n_output * sizeof(int));
    if (!g->outputs) return fail_nomem(L);
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name;
        int id = name ? fk__graph_find(g, name) : -1;
        if (id < 0) return fail(L, FK_EFORMAT, "graph output '%s' is not produced by any node", name ? name : "");
        if (g->t[id].is_output) return fail(L, FK_EFORMAT, "graph output '%s' is listed twice", name);
        g->t[id].is_output = 1;
        g->outputs[g->n_outputs++] = id;
    }
    g->layout = FK__NCHW;
    return FK_OK;
}

int fk__onnx_load(fk__graph *g, const char *path) {
    loader L;
    memset(&L, 0, sizeof L);
    L.g = g;
    L.path = path ? path : "(null)";
    g->err[0] = 0;
    if (!path) return fail(&L, FK_EINVAL, "no model path");
    if (g->nt || g->nn) return fail(&L, FK_EINVAL, "the graph is not empty");

    unsigned char *buf;
    size_t len;
    int rc = read_file(&L, &buf, &len);
    if (rc) return rc;
    ProtobufCAllocator al = {pb_alloc, pb_free, &L};
    Onnx__ModelProto *m = onnx__model_proto__unpack(&al, len, buf);
    fk__free(buf); /* the decoder copies every string and bytes field */
    if (!m) {
        if (L.nomem) return fail_nomem(&L);
        return fail(&L, FK_EFORMAT, "not an ONNX model, or a truncated or corrupted one (protobuf decoding failed)");
    }
    rc = load_model(&L, m);
    onnx__model_proto__free_unpacked(m, &al);
    return rc;
}
