/*
 * tfjs.c — the TF.js graph-model front-end: reads model.json (a TensorFlow GraphDef in JSON plus a weights
 * manifest) and the binary weight shards beside it, and fills an internal fk__graph (graph.h). Sits beside
 * onnx.c at the bottom of src/nn; the executor (prepare.c, exec.c) never sees TF names or layouts.
 *
 * What happens here:
 *   - weights are read shard by shard, every length checked against the manifest, and dequantised to float32
 *     (uint8/uint16: q * scale + min; float16 by bit conversion); int32 weights stay int32 constants;
 *   - TF ops become internal ops, keeping the model's NHWC activation layout; filters are reordered to OIHW
 *     (Conv2D HWIO, depthwise [kh,kw,C,mult] with group = C, Conv2DBackpropInput [kh,kw,out,in] -> [in,out]);
 *   - composite TF ops are expanded: Pack = Unsqueeze + Concat, StridedSlice = Slice + Squeeze/Unsqueeze,
 *     Unpack = Split + Squeeze, AddN = a chain of Add, Elu and SquaredDifference from elementary ops,
 *     Shape (int64 inside) + Cast to TF's int32; a fused batch-norm is folded into the filter;
 *   - Conv2DBackpropInput's padding is computed here from its constant output_shape (TF's split of SAME);
 *   - TF "SAME" padding is left to shape inference (FK__AUTOPAD_SAME_UPPER: more padding at the end).
 *
 * Everything in the files is outside input: every size is checked and every failure is an error naming the
 * file and the node (g->err), never a crash. The JSON parser (jansson) allocates through fk__malloc so that
 * memory is counted and allocation failures can be injected in tests.
 */
#include "nn/graph.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_MAX_FUSED 4
#define TF_MAX_NUMEL ((int64_t)1 << 31) /* largest weight we accept: 2^31 elements */
#define TF_MAX_FILE ((long)1 << 31)     /* largest model.json or shard: 2 GiB */

/* One GraphDef node as read from the JSON. Strings point into the parsed JSON document. */
typedef struct tf_node {
    const char *name;
    const char *op;
    json_t *attr;        /* object or NULL */
    int n_in;            /* data inputs (control inputs "^x" dropped) */
    const char **in;     /* input references: "x", "x:1" */
    int n_out;           /* outputs referenced by other nodes (at least 1) */
} tf_node;

typedef struct tf_loader {
    fk__graph *g;
    const char *path;    /* model.json, for messages */
    json_t *root;
    tf_node *nodes;
    int nn;
    int *uses;           /* per tensor id: how many node inputs read it (decides in-place filter reorder) */
    int n_uses;
    const tf_node *cur;  /* node being converted, for messages */
    int status;          /* first error (fail() sets it); conversion stops there */
} tf_loader;

/* ---- errors ------------------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(tf_loader *L, int status, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!L->status) L->status = status;
    if (L->cur)
        fk__seterr(L->g->err, sizeof L->g->err, "%s: node '%s' (%s): %s", L->path, L->cur->name, L->cur->op,
                   msg);
    else
        fk__seterr(L->g->err, sizeof L->g->err, "%s: %s", L->path, msg);
    return status;
}

/* Graph helpers set g->err without the node context; keep their message but name our node too. */
static int graph_fail(tf_loader *L, int status) {
    if (status == FK_ENOMEM) return fail(L, FK_ENOMEM, "out of memory");
    char msg[512];
    snprintf(msg, sizeof msg, "%s", L->g->err);
    return fail(L, status, "%s", msg);
}

/* ---- small readers of JSON values --------------------------------------------------------------- */

/* TF JSON writes int64 as strings ("-1") and sometimes as numbers. */
static int json_to_i64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || *end || errno) return 0;
        *out = (int64_t)x;
        return 1;
    }
    return 0;
}

static int json_to_double(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 1;
    }
    if (json_is_string(v)) { /* "NaN", "Infinity" or a number written as text */
        const char *s = json_string_value(v);
        char *end;
        double x = strtod(s, &end);
        if (end == s || *end) return 0;
        *out = x;
        return 1;
    }
    return 0;
}

static json_t *attr_get(const tf_node *n, const char *key) { return n->attr ? json_object_get(n->attr, key) : NULL; }

/* Integer attribute ("i"); DEF when absent. Returns 0 on a malformed value. */
static int attr_int(tf_loader *L, const tf_node *n, const char *key, int64_t def, int64_t *out) {
    json_t *a = attr_get(n, key);
    *out = def;
    if (!a) return 1;
    json_t *v = json_object_get(a, "i");
    if (!v) return 1; /* proto3 omits zero values: {"i": "0"} may be written as {} */
    if (!json_to_i64(v, out)) return fail(L, FK_EFORMAT, "attribute '%s' is not an integer", key), 0;
    return 1;
}

static int attr_float(tf_loader *L, const tf_node *n, const char *key, double def, double *out) {
    json_t *a = attr_get(n, key);
    *out = def;
    if (!a) return 1;
    json_t *v = json_object_get(a, "f");
    if (!v) return 1;
    if (!json_to_double(v, out)) return fail(L, FK_EFORMAT, "attribute '%s' is not a number", key), 0;
    return 1;
}

static int attr_bool(const tf_node *n, const char *key) {
    json_t *a = attr_get(n, key);
    return a && json_is_true(json_object_get(a, "b"));
}

/* Decodes standard base64 (TF JSON writes bytes fields so). Returns the length, or -1 when malformed or
 * longer than CAP - 1; OUT is NUL-terminated. */
static int b64_decode(const char *s, char *out, int cap) {
    int n = 0, bits = 0;
    unsigned acc = 0;
    for (; *s && *s != '='; s++) {
        int c = (unsigned char)*s, v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;
        else if (c == '/' || c == '_') v = 63;
        else return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap - 1) return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = 0;
    return n;
}

/* String attribute ("s", base64); "" when absent. Returns 0 on a malformed value. */
static int attr_str(tf_loader *L, const tf_node *n, const char *key, char *out, int cap) {
    json_t *a = attr_get(n, key);
    out[0] = 0;
    if (!a) return 1;
    json_t *v = json_object_get(a, "s");
    if (!v) return 1;
    if (!json_is_string(v) || b64_decode(json_string_value(v), out, cap) < 0)
        return fail(L, FK_EFORMAT, "attribute '%s' is not a valid string", key), 0;
    return 1;
}

/* Integer list attribute ({"list": {"i": [...]}}). Returns the count (0 when absent), or -1 (error set). */
static int attr_ints(tf_loader *L, const tf_node *n, const char *key, int64_t *out, int cap) {
    json_t *a = attr_get(n, key);
    if (!a) return 0;
    json_t *l = json_object_get(a, "list");
    json_t *v = l ? json_object_get(l, "i") : NULL;
    if (!v) return 0;
    if (!json_is_array(v) || (int)json_array_size(v) > cap)
        return fail(L, FK_EFORMAT, "attribute '%s' is not a list of at most %d integers", key, cap), -1;
    for (int i = 0; i < (int)json_array_size(v); i++)
        if (!json_to_i64(json_array_get(v, i), &out[i]))
            return fail(L, FK_EFORMAT, "attribute '%s' has a non-integer entry", key), -1;
    return (int)json_array_size(v);
}

/* String list attribute (fused_ops). Returns the count or -1 (error set). */
static int attr_strs(tf_loader *L, const tf_node *n, const char *key, char (*out)[32], int cap) {
    json_t *a = attr_get(n, key);
    if (!a) return 0;
    json_t *l = json_object_get(a, "list");
    json_t *v = l ? json_object_get(l, "s") : NULL;
    if (!v) return 0;
    if (!json_is_array(v) || (int)json_array_size(v) > cap)
        return fail(L, FK_EFORMAT, "attribute '%s' is not a list of at most %d strings", key, cap), -1;
    for (int i = 0; i < (int)json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || b64_decode(json_string_value(s), out[i], 32) < 0)
            return fail(L, FK_EFORMAT, "attribute '%s' has a malformed entry", key), -1;
    }
    return (int)json_array_size(v);
}

/* TF DataType attribute ("type": "DT_FLOAT") to our dtype: F32/I32/I64, 0 = absent, -1 = unsupported. */
static int attr_dtype(const tf_node *n, const char *key) {
    json_t *a = attr_get(n, key);
    json_t *v = a ? json_object_get(a, "type") : NULL;
    if (!v) return 0;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (!strcmp(s, "DT_FLOAT")) return FK__DT_F32;
    if (!strcmp(s, "DT_INT32")) return FK__DT_I32;
    if (!strcmp(s, "DT_INT64")) return FK__DT_I64;
    return -1;
}

/* ---- files -------------------------------------------------------------------------------------- */

/* Reads a whole file into fk__malloc'd memory. Messages name FILE. */
static int read_file(tf_loader *L, const char *file, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(file, "rb");
    if (!f) return fail(L, FK_EIO, "cannot open '%s': %s", file, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || size > TF_MAX_FILE || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fail(L, FK_EIO, "cannot read '%s' (not a regular file or too large)", file);
    }
    unsigned char *buf = fk__malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return fail(L, FK_ENOMEM, "out of memory reading '%s'", file);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = ferror(f);
    fclose(f);
    if (got != (size_t)size || err) {
        fk__free(buf);
        return fail(L, FK_EIO, "cannot read '%s'", file);
    }
    buf[size] = 0;
    *out = buf;
    *len = (size_t)size;
    return FK_OK;
}

/* ---- weights ------------------------------------------------------------------------------------ */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* File name of shard I of a manifest group: a plain name beside model.json. */
static int shard_path(tf_loader *L, const char *dir, json_t *paths, size_t i, char *file, size_t cap) {
    const char *p = json_string_value(json_array_get(paths, i));
    if (!p || !*p || p[0] == '/' || strstr(p, ".."))
        return fail(L, FK_EFORMAT, "weight shard path %zu is not a file name beside the model", i);
    if (snprintf(file, cap, "%s%s", dir, p) >= (int)cap) return fail(L, FK_EFORMAT, "weight shard path too long");
    return FK_OK;
}

static int open_shard(tf_loader *L, const char *file, FILE **f, size_t *size) {
    *f = fopen(file, "rb");
    if (!*f) return fail(L, FK_EIO, "cannot open weight shard '%s': %s", file, strerror(errno));
    long n = -1;
    if (fseek(*f, 0, SEEK_END) == 0) n = ftell(*f);
    if (n < 0 || n > TF_MAX_FILE || fseek(*f, 0, SEEK_SET) != 0) {
        fclose(*f);
        *f = NULL;
        return fail(L, FK_EIO, "cannot read weight shard '%s' (not a regular file or too large)", file);
    }
    *size = (size_t)n;
    return FK_OK;
}

/* Reads one manifest group's shards (paths, in order) into one buffer of EXPECT bytes. The shard sizes are
 * checked against the manifest before anything is allocated, so a damaged manifest cannot ask for memory the
 * files do not back. */
static int read_group(tf_loader *L, const char *dir, json_t *paths, unsigned char **out, size_t expect) {
    *out = NULL;
    if (!json_is_array(paths) || json_array_size(paths) == 0)
        return fail(L, FK_EFORMAT, "weightsManifest entry has no 'paths'");
    char file[4096];
    size_t total = 0, n_paths = json_array_size(paths);
    for (size_t i = 0; i < n_paths; i++) {
        FILE *f;
        size_t n;
        int rc = shard_path(L, dir, paths, i, file, sizeof file);
        if (!rc) rc = open_shard(L, file, &f, &n);
        if (rc) return rc;
        fclose(f);
        if (n > expect - total)
            return fail(L, FK_EFORMAT, "weight shard '%s' is longer than the manifest says (%zu bytes in all)", file,
                        expect);
        total += n;
        if (i + 1 == n_paths && total != expect)
            return fail(L, FK_EFORMAT, "weight shard '%s' is short: the shards hold %zu bytes, the manifest needs %zu",
                        file, total, expect);
    }
    unsigned char *all = fk__malloc(expect ? expect : 1);
    if (!all) return fail(L, FK_ENOMEM, "out of memory for %zu weight bytes", expect);
    size_t at = 0;
    for (size_t i = 0; i < n_paths; i++) {
        FILE *f;
        size_t n;
        int rc = shard_path(L, dir, paths, i, file, sizeof file);
        if (!rc) rc = open_shard(L, file, &f, &n);
        if (!rc && n > expect - at) {
            fclose(f);
            rc = fail(L, FK_EIO, "weight shard '%s' changed while reading", file);
        } else if (!rc) {
            size_t got = fread(all + at, 1, n, f);
            fclose(f);
            if (got != n) rc = fail(L, FK_EIO, "cannot read weight shard '%s'", file);
            at += n;
        }
        if (rc) {
            fk__free(all);
            return rc;
        }
    }
    if (at != expect) {
        fk__free(all);
        return fail(L, FK_EIO, "weight shards changed while reading");
    }
    *out = all;
    return FK_OK;
}

typedef struct tf_weight {
    const char *name;
    int dtype;           /* FK__DT_F32 or FK__DT_I32 (what the graph stores) */
    int qbytes;          /* bytes per stored element: 4, or 1/2 when quantised */
    int qkind;           /* 0 none, 1 uint8, 2 uint16, 3 float16 */
    double scale, min;
    int rank;
    int64_t dims[FK__MAX_RANK];
    int64_t numel;
} tf_weight;

static int parse_weight(tf_loader *L, json_t *w, tf_weight *tw) {
    memset(tw, 0, sizeof *tw);
    tw->name = json_string_value(json_object_get(w, "name"));
    if (!tw->name || !*tw->name) return fail(L, FK_EFORMAT, "weightsManifest: a weight has no name");
    json_t *shape = json_object_get(w, "shape");
    const char *dt = json_string_value(json_object_get(w, "dtype"));
    if (!json_is_array(shape) || json_array_size(shape) > FK__MAX_RANK || !dt)
        return fail(L, FK_EFORMAT, "weight '%s': missing dtype or shape (rank <= %d)", tw->name, FK__MAX_RANK);
    tw->rank = (int)json_array_size(shape);
    tw->numel = 1;
    for (int i = 0; i < tw->rank; i++) {
        if (!json_to_i64(json_array_get(shape, i), &tw->dims[i]) || tw->dims[i] < 0 ||
            tw->dims[i] > TF_MAX_NUMEL)
            return fail(L, FK_EFORMAT, "weight '%s': bad dimension %d", tw->name, i);
        tw->numel *= tw->dims[i];
        if (tw->numel > TF_MAX_NUMEL) return fail(L, FK_ELIMIT, "weight '%s' is too large", tw->name);
    }
    if (!strcmp(dt, "float32")) tw->dtype = FK__DT_F32;
    else if (!strcmp(dt, "int32")) tw->dtype = FK__DT_I32;
    else return fail(L, FK_EUNSUPPORTED, "weight '%s': unsupported dtype '%s'", tw->name, dt);
    tw->qbytes = 4;
    json_t *q = json_object_get(w, "quantization");
    if (q) {
        const char *qd = json_string_value(json_object_get(q, "dtype"));
        if (!qd) return fail(L, FK_EFORMAT, "weight '%s': quantization without dtype", tw->name);
        if (!strcmp(qd, "float16")) {
            tw->qkind = 3;
            tw->qbytes = 2;
        } else if (!strcmp(qd, "uint8") || !strcmp(qd, "uint16")) {
            tw->qkind = qd[4] == '8' ? 1 : 2;
            tw->qbytes = tw->qkind;
            if (!json_to_double(json_object_get(q, "scale"), &tw->scale) ||
                !json_to_double(json_object_get(q, "min"), &tw->min))
                return fail(L, FK_EFORMAT, "weight '%s': %s quantization needs scale and min", tw->name, qd);
        } else {
            return fail(L, FK_EUNSUPPORTED, "weight '%s': unsupported quantization '%s'", tw->name, qd);
        }
    }
    return FK_OK;
}

/* Dequantises one weight from SRC (tw->numel * tw->qbytes bytes, little-endian) into a new constant. */
static int add_weight(tf_loader *L, const tf_weight *tw, const unsigned char *src) {
    size_t n = (size_t)tw->numel;
    void *data = fk__malloc(n ? n * 4 : 4);
    if (!data) return fail(L, FK_ENOMEM, "out of memory for weight '%s'", tw->name);
    if (tw->qkind == 0) {
        memcpy(data, src, n * 4);
    } else {
        for (size_t i = 0; i < n; i++) {
            double v;
            if (tw->qkind == 1) v = src[i] * tw->scale + tw->min;
            else if (tw->qkind == 2) v = (src[2 * i] | (src[2 * i + 1] << 8)) * tw->scale + tw->min;
            else v = half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
            if (tw->dtype == FK__DT_F32) ((float *)data)[i] = (float)v;
            else ((int32_t *)data)[i] = v >= -2147483648.0 && v <= 2147483647.0 ? (int32_t)lrint(v) : 0;
        }
    }
    int id = fk__graph_add_tensor(L->g, tw->name, tw->dtype, FK__T_CONST, tw->rank, tw->dims, data);
    return id < 0 ? graph_fail(L, id) : FK_OK;
}

static int load_weights(tf_loader *L, json_t *manifest) {
    if (!json_is_array(manifest)) return fail(L, FK_EFORMAT, "missing 'weightsManifest'");
    /* Shards live beside model.json. */
    char dir[4096];
    const char *slash = strrchr(L->path, '/');
    size_t dl = slash ? (size_t)(slash - L->path + 1) : 0;
    if (dl >= sizeof dir) return fail(L, FK_EFORMAT, "path too long");
    memcpy(dir, L->path, dl);
    dir[dl] = 0;
    for (size_t gi = 0; gi < json_array_size(manifest); gi++) {
        json_t *grp = json_array_get(manifest, gi);
        json_t *ws = json_object_get(grp, "weights");
        if (!json_is_array(ws)) return fail(L, FK_EFORMAT, "weightsManifest[%zu] has no 'weights' list", gi);
        size_t total = 0;
        for (size_t i = 0; i < json_array_size(ws); i++) {
            tf_weight tw;
            int rc = parse_weight(L, json_array_get(ws, i), &tw);
            if (rc) return rc;
            total += (size_t)tw.numel * (size_t)tw.qbytes;
        }
        unsigned char *buf;
        int rc = read_group(L, dir, json_object_get(grp, "paths"), &buf, total);
        if (rc) return rc;
        size_t at = 0;
        for (size_t i = 0; i < json_array_size(ws) && !rc; i++) {
            tf_weight tw;
            rc = parse_weight(L, json_array_get(ws, i), &tw);
            if (!rc) rc = add_weight(L, &tw, buf + at);
            at += (size_t)tw.numel * (size_t)tw.qbytes;
        }
        fk__free(buf);
        if (rc) return rc;
    }
    return FK_OK;
}

/* ---- tensors and nodes -------------------------------------------------------------------------- */

/* Canonical tensor name of a reference: "x" and "x:0" are output 0 of node x (tensor "x"); "x:k" stays. */
static void ref_name(const char *ref, char *out, size_t cap) {
    snprintf(out, cap, "%s", ref);
    char *c = strrchr(out, ':');
    if (c && !strcmp(c, ":0")) *c = 0;
}

static int input_id(tf_loader *L, const tf_node *n, int i) {
    char nm[512];
    if (i >= n->n_in) return fail(L, FK_EFORMAT, "expects at least %d inputs, has %d", i + 1, n->n_in);
    ref_name(n->in[i], nm, sizeof nm);
    int id = fk__graph_find(L->g, nm);
    if (id < 0) return fail(L, FK_EFORMAT, "input %d '%s' is not produced by any node", i, n->in[i]);
    return id;
}

/* Input I must be a constant (weights, sizes, axes); returns its id. */
static int const_input(tf_loader *L, const tf_node *n, int i, const char *what) {
    int id = input_id(L, n, i);
    if (id < 0) return id;
    if (L->g->t[id].kind != FK__T_CONST)
        return fail(L, FK_EUNSUPPORTED, "input %d (%s) '%s' must be a constant", i, what, n->in[i]);
    return id;
}

/* Reads up to CAP integer values of constant input I (int32, int64 or integral float32). */
static int const_ints(tf_loader *L, const tf_node *n, int i, const char *what, int64_t *out, int cap, int *count) {
    int id = const_input(L, n, i, what);
    if (id < 0) return id;
    const fk__tensor *t = &L->g->t[id];
    int64_t k = fk__tensor_numel(t);
    if (k > cap) return fail(L, FK_EUNSUPPORTED, "input %d (%s) has %lld values, at most %d", i, what, (long long)k, cap);
    for (int64_t j = 0; j < k; j++) {
        if (t->dtype == FK__DT_I32) {
            out[j] = ((const int32_t *)t->data)[j];
        } else if (t->dtype == FK__DT_I64) {
            out[j] = ((const int64_t *)t->data)[j];
        } else {
            float f = ((const float *)t->data)[j];
            if (!(f >= -2147483648.0f && f <= 2147483647.0f)) /* NaN too: the cast would be undefined */
                return fail(L, FK_EFORMAT, "input %d (%s) holds %g, not an integer", i, what, (double)f);
            out[j] = (int64_t)f;
        }
        if (out[j] < INT32_MIN || out[j] > INT32_MAX) /* sizes, axes, pads: keeps later arithmetic in range */
            return fail(L, FK_EFORMAT, "input %d (%s) holds %lld", i, what, (long long)out[j]);
    }
    *count = (int)k;
    return FK_OK;
}

static int const_int(tf_loader *L, const tf_node *n, int i, const char *what, int64_t *out) {
    int64_t v[1] = {0};
    int k = 0, rc = const_ints(L, n, i, what, v, 1, &k);
    if (rc) return rc;
    if (k != 1) return fail(L, FK_EFORMAT, "input %d (%s) must hold one value", i, what);
    *out = v[0];
    return FK_OK;
}

/* Output tensor of the node (port 0): created in the first pass. */
static int out_id(tf_loader *L, const tf_node *n) {
    int id = fk__graph_find(L->g, n->name);
    return id >= 0 ? id : fail(L, FK_EINTERNAL, "output tensor missing");
}

/* A new intermediate tensor for expansions: "<node>/<suffix>". */
static int temp_tensor(tf_loader *L, const tf_node *n, const char *suffix, int dtype) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s/%s", n->name, suffix);
    int id = fk__graph_add_tensor(L->g, nm, dtype, FK__T_ACT, 0, NULL, NULL);
    return id < 0 ? graph_fail(L, id) : id;
}

/* Adds an internal node and returns a pointer to it (valid until the next add) or NULL (error set). */
static fk__node *emit(tf_loader *L, int op, const char *name, int n_in, const int *in, int out) {
    if (L->status || out < 0) return NULL; /* an earlier lookup failed; its error is set */
    int idx = fk__graph_add_node(L->g, op, name, n_in, in, 1, &out);
    if (idx < 0) {
        graph_fail(L, idx);
        return NULL;
    }
    fk__node *nd = &L->g->n[idx];
    nd->a.layout = FK__NHWC;
    return nd;
}

/* The error status after emit() returned NULL. */
static int emit_status(const tf_loader *L) { return L->status ? L->status : FK_EINTERNAL; }

#define EMIT_OR_FAIL(var, ...)                                                                                    \
    fk__node *var = emit(__VA_ARGS__);                                                                            \
    if (!var) return emit_status(L)

/* ---- filters ------------------------------------------------------------------------------------ */

enum { W_HWIO = 1, W_DEPTHWISE, W_BACKPROP };

/* Returns a constant holding the filter of node input I reordered to OIHW (or [in,out,kh,kw] for
 * Conv2DBackpropInput). A filter read by this node only is reordered in place; a shared one is copied once
 * (named "<filter>:<kind>") so that every reader agrees. COPY forces a private copy "<node>/filter" that
 * the caller may change (batch-norm folding). */
static int filter_oihw(tf_loader *L, const tf_node *n, int i, int kind, int copy, int *group) {
    int id = const_input(L, n, i, "filter");
    if (id < 0) return id;
    fk__tensor *t = &L->g->t[id];
    if (t->dtype != FK__DT_F32 || t->rank != 4)
        return fail(L, FK_EFORMAT, "filter '%s' must be a float 4-D tensor", t->name);
    int64_t kh = t->dims[0], kw = t->dims[1], a = t->dims[2], b = t->dims[3];
    int64_t od[4];
    if (kind == W_HWIO) { od[0] = b; od[1] = a; } /* [kh,kw,I,O] -> [O,I,kh,kw] */
    else if (kind == W_DEPTHWISE) { od[0] = a * b; od[1] = 1; } /* [kh,kw,C,M] -> [C*M,1,kh,kw] */
    else { od[0] = b; od[1] = a; } /* [kh,kw,out,in] -> [in,out,kh,kw] */
    od[2] = kh;
    od[3] = kw;
    *group = kind == W_DEPTHWISE ? (int)a : 1;
    if (kind == W_DEPTHWISE && a > INT32_MAX) return fail(L, FK_EFORMAT, "too many channels");

    char nm[600];
    static const char *const suffix[] = {"", "oihw", "dw_oihw", "iohw"};
    if (copy) snprintf(nm, sizeof nm, "%s/filter", n->name);
    else snprintf(nm, sizeof nm, "%s:%s", t->name, suffix[kind]);
    int have = fk__graph_find(L->g, nm);
    if (have >= 0) return have;

    size_t numel = (size_t)fk__tensor_numel(t);
    float *dst = fk__malloc(numel ? numel * sizeof(float) : 4);
    if (!dst) return fail(L, FK_ENOMEM, "out of memory");
    const float *src = t->data;
    for (int64_t y = 0; y < kh; y++)
        for (int64_t x = 0; x < kw; x++)
            for (int64_t p = 0; p < a; p++)
                for (int64_t q = 0; q < b; q++) {
                    float v = src[((y * kw + x) * a + p) * b + q];
                    int64_t o, c; /* first and second index of the destination */
                    if (kind == W_DEPTHWISE) { o = p * b + q; c = 0; }
                    else { o = q; c = p; }
                    dst[((o * od[1] + c) * kh + y) * kw + x] = v;
                }
    if (!copy && id < L->n_uses && L->uses[id] <= 1) {
        fk__free(t->data);
        t->data = dst;
        memcpy(t->dims, od, sizeof od);
        L->uses[id] = -kind; /* reordered: a second reader (there is none) would see it */
        return id;
    }
    int nid = fk__graph_add_tensor(L->g, nm, FK__DT_F32, FK__T_CONST, 4, od, dst);
    return nid < 0 ? graph_fail(L, nid) : nid;
}

/* ---- conversions -------------------------------------------------------------------------------- */

/* data_format, strides, dilations, ksize, padding of Conv/Pool nodes (NHWC only). */
static int spatial(tf_loader *L, const tf_node *n, fk__attr *a, int pool) {
    char s[32];
    if (!attr_str(L, n, "data_format", s, sizeof s)) return FK_EFORMAT;
    if (*s && strcmp(s, "NHWC")) return fail(L, FK_EUNSUPPORTED, "data_format '%s' (only NHWC)", s);
    a->layout = FK__NHWC;
    int64_t v[8];
    int k = attr_ints(L, n, "strides", v, 4);
    if (k < 0) return FK_EFORMAT;
    if (k == 4) {
        if (v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 4096 || v[2] > 4096)
            return fail(L, FK_EUNSUPPORTED, "strides must be [1,h,w,1] with h,w >= 1");
        a->stride[0] = (int)v[1];
        a->stride[1] = (int)v[2];
    } else if (k) {
        return fail(L, FK_EFORMAT, "strides must have 4 entries");
    }
    k = attr_ints(L, n, "dilations", v, 4);
    if (k < 0) return FK_EFORMAT;
    if (k == 4) {
        if (v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 4096 || v[2] > 4096)
            return fail(L, FK_EUNSUPPORTED, "dilations must be [1,h,w,1] with h,w >= 1");
        a->dilation[0] = (int)v[1];
        a->dilation[1] = (int)v[2];
    } else if (k) {
        return fail(L, FK_EFORMAT, "dilations must have 4 entries");
    }
    if (pool) {
        k = attr_ints(L, n, "ksize", v, 4);
        if (k != 4 || v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 65536 || v[2] > 65536)
            return k < 0 ? FK_EFORMAT : fail(L, FK_EUNSUPPORTED, "ksize must be [1,h,w,1]");
        a->kernel[0] = (int)v[1];
        a->kernel[1] = (int)v[2];
    }
    if (!attr_str(L, n, "padding", s, sizeof s)) return FK_EFORMAT;
    if (!strcmp(s, "SAME")) {
        a->auto_pad = FK__AUTOPAD_SAME_UPPER;
    } else if (!strcmp(s, "VALID")) {
        a->auto_pad = FK__AUTOPAD_NONE;
    } else if (!strcmp(s, "EXPLICIT")) {
        k = attr_ints(L, n, "explicit_paddings", v, 8);
        if (k != 8 || v[0] || v[1] || v[6] || v[7])
            return k < 0 ? FK_EFORMAT : fail(L, FK_EUNSUPPORTED, "explicit_paddings must pad H and W only");
        for (int i = 2; i < 6; i++)
            if (v[i] < 0 || v[i] > 65536) return fail(L, FK_EFORMAT, "bad explicit padding");
        a->pads[0] = (int)v[2]; /* top, left, bottom, right */
        a->pads[2] = (int)v[3];
        a->pads[1] = (int)v[4];
        a->pads[3] = (int)v[5];
    } else {
        return fail(L, FK_EUNSUPPORTED, "padding '%s'", s);
    }
    return FK_OK;
}

/* Fused activation name (second entry of fused_ops) into the attribute; ALPHA_IN is the input index of the
 * PReLU slopes. */
static int fused_act(tf_loader *L, const tf_node *n, const char *act, fk__attr *a, int alpha_in) {
    if (!*act) return FK_OK;
    if (!strcmp(act, "Relu")) {
        a->act = FK__ACT_RELU;
    } else if (!strcmp(act, "Relu6")) {
        a->act = FK__ACT_CLIP;
        a->act_a = 0.0f;
        a->act_b = 6.0f;
    } else if (!strcmp(act, "LeakyRelu")) {
        double al;
        if (!attr_float(L, n, "leakyrelu_alpha", 0.2, &al)) return FK_EFORMAT;
        a->act = FK__ACT_LEAKY;
        a->act_a = (float)al;
    } else if (!strcmp(act, "Sigmoid")) {
        a->act = FK__ACT_SIGMOID;
    } else if (!strcmp(act, "Tanh")) {
        a->act = FK__ACT_TANH;
    } else if (!strcmp(act, "Prelu")) {
        int s = input_id(L, n, alpha_in);
        if (s < 0) return s;
        a->act = FK__ACT_PRELU;
        a->act_slope = s;
    } else {
        return fail(L, FK_EUNSUPPORTED, "fused activation '%s'", act);
    }
    return FK_OK;
}

/* Conv2D, DepthwiseConv2dNative and their fused forms (BiasAdd or FusedBatchNorm, then an activation). */
static int conv_fused(tf_loader *L, const tf_node *n, int depthwise, int fused) {
    char ops[TF_MAX_FUSED][32];
    int nf = 0;
    if (fused) {
        nf = attr_strs(L, n, "fused_ops", ops, TF_MAX_FUSED);
        if (nf < 0) return FK_EFORMAT;
    }
    const char *first = nf > 0 ? ops[0] : "", *act = nf > 1 ? ops[1] : "";
    if (nf > 2) return fail(L, FK_EUNSUPPORTED, "fused_ops has %d entries", nf);
    int bn = !strcmp(first, "FusedBatchNorm");
    if (*first && strcmp(first, "BiasAdd") && !bn) return fail(L, FK_EUNSUPPORTED, "fused op '%s'", first);
    if (!*first && *act) return fail(L, FK_EUNSUPPORTED, "activation without BiasAdd");
    int x = input_id(L, n, 0);
    if (x < 0) return x;
    int group = 1;
    int w = filter_oihw(L, n, 1, depthwise ? W_DEPTHWISE : W_HWIO, bn, &group);
    if (w < 0) return w;
    int b = -1, nargs = 0;
    if (bn) {
        /* fold: y = (conv - mean) * scale / sqrt(var + eps) + offset */
        double eps;
        if (!attr_float(L, n, "epsilon", 1e-3, &eps)) return FK_EFORMAT;
        int ids[4];
        for (int k = 0; k < 4; k++) {
            ids[k] = const_input(L, n, 2 + k, "batch-norm parameter");
            if (ids[k] < 0) return ids[k];
        }
        fk__tensor *wt = &L->g->t[w];
        int64_t O = wt->dims[0], per = fk__tensor_numel(wt) / (O ? O : 1);
        for (int k = 0; k < 4; k++)
            if (fk__tensor_numel(&L->g->t[ids[k]]) != O || L->g->t[ids[k]].dtype != FK__DT_F32)
                return fail(L, FK_ESHAPE, "batch-norm parameter %d has not %lld float values", k, (long long)O);
        float *bias = fk__malloc((size_t)(O ? O : 1) * sizeof(float));
        if (!bias) return fail(L, FK_ENOMEM, "out of memory");
        const float *sc = L->g->t[ids[0]].data, *of = L->g->t[ids[1]].data, *mu = L->g->t[ids[2]].data,
                    *var = L->g->t[ids[3]].data;
        float *wd = L->g->t[w].data;
        for (int64_t o = 0; o < O; o++) {
            float s = (float)(sc[o] / sqrt((double)var[o] + eps));
            for (int64_t j = 0; j < per; j++) wd[o * per + j] *= s;
            bias[o] = of[o] - mu[o] * s;
        }
        char nm[600];
        snprintf(nm, sizeof nm, "%s/bias", n->name);
        b = fk__graph_add_tensor(L->g, nm, FK__DT_F32, FK__T_CONST, 1, &O, bias);
        if (b < 0) return graph_fail(L, b);
        nargs = 4;
    } else if (*first) {
        b = input_id(L, n, 2);
        if (b < 0) return b;
        nargs = 1;
    }
    fk__attr a;
    fk__attr_defaults(&a);
    int rc = spatial(L, n, &a, 0);
    if (!rc) rc = fused_act(L, n, act, &a, 2 + nargs);
    if (rc) return rc;
    int in[3] = {x, w, b};
    int o = out_id(L, n);
    if (o < 0) return o;
    EMIT_OR_FAIL(nd, L, FK__OP_CONV, n->name, b >= 0 ? 3 : 2, in, o);
    const fk__tensor *wt = &L->g->t[w];
    a.kernel[0] = (int)wt->dims[2];
    a.kernel[1] = (int)wt->dims[3];
    a.group = group;
    nd->a = a;
    return FK_OK;
}

/* Conv2DBackpropInput(output_shape, filter[kh,kw,out,in], x): a transposed convolution. The output size is a
 * constant, so TF's padding is computed here: the forward convolution from the output to the input. */
static int conv_backprop(tf_loader *L, const tf_node *n) {
    int64_t os[4];
    int k = 0, group;
    int rc = const_ints(L, n, 0, "output_shape", os, 4, &k);
    if (rc) return rc;
    if (k != 4 || os[1] < 1 || os[2] < 1 || os[1] > 65536 || os[2] > 65536)
        return fail(L, FK_EFORMAT, "output_shape must be [n,h,w,c]");
    int w = filter_oihw(L, n, 1, W_BACKPROP, 0, &group);
    if (w < 0) return w;
    int x = input_id(L, n, 2);
    if (x < 0) return x;
    fk__attr a;
    fk__attr_defaults(&a);
    if ((rc = spatial(L, n, &a, 0))) return rc;
    const fk__tensor *wt = &L->g->t[w];
    if (wt->dims[1] != os[3]) return fail(L, FK_ESHAPE, "filter has %lld output channels, output_shape %lld",
                                          (long long)wt->dims[1], (long long)os[3]);
    a.kernel[0] = (int)wt->dims[2];
    a.kernel[1] = (int)wt->dims[3];
    for (int d = 0; d < 2; d++) {
        int64_t out = os[1 + d], s = a.stride[d], ke = (int64_t)a.dilation[d] * (a.kernel[d] - 1) + 1, in, total;
        if (a.auto_pad == FK__AUTOPAD_SAME_UPPER) {
            in = (out + s - 1) / s;
            total = (in - 1) * s + ke - out;
            if (total < 0) total = 0;
            a.pads[d] = (int)(total / 2);
            a.pads[d + 2] = (int)(total - total / 2);
        } else {
            in = (out - ke + s) / s; /* ceil((out - ke + 1) / s) */
            total = a.pads[d] + a.pads[d + 2];
            if (total) in = (out + total - ke + s) / s;
        }
        if (in < 1) return fail(L, FK_ESHAPE, "output_shape too small for the filter");
        int64_t made = (in - 1) * s + ke - total;
        a.out_pad[d] = (int)(out - made);
        if (a.out_pad[d] < 0 || a.out_pad[d] >= s) return fail(L, FK_ESHAPE, "inconsistent output_shape");
    }
    /* out_hw stays 0: pads and out_pad above give exactly output_shape, with TF's split of the padding (ONNX's
     * output_shape rule would put the larger half at the start). */
    a.auto_pad = FK__AUTOPAD_NONE;
    int in[2] = {x, w};
    int o = out_id(L, n);
    EMIT_OR_FAIL(nd, L, FK__OP_CONV_TRANSPOSE, n->name, 2, in, o);
    nd->a = a;
    return FK_OK;
}

/* MatMul and _FusedMatMul (BiasAdd + activation) -> Gemm. */
static int matmul(tf_loader *L, const tf_node *n, int fused) {
    char ops[TF_MAX_FUSED][32];
    int nf = 0;
    if (fused && (nf = attr_strs(L, n, "fused_ops", ops, TF_MAX_FUSED)) < 0) return FK_EFORMAT;
    const char *first = nf > 0 ? ops[0] : "", *act = nf > 1 ? ops[1] : "";
    if (nf > 2 || (*first && strcmp(first, "BiasAdd")) || (!*first && *act))
        return fail(L, FK_EUNSUPPORTED, "fused_ops '%s' '%s'", first, act);
    fk__attr a;
    fk__attr_defaults(&a);
    a.trans_a = attr_bool(n, "transpose_a");
    a.trans_b = attr_bool(n, "transpose_b");
    int in[3] = {input_id(L, n, 0), input_id(L, n, 1), -1};
    if (*first) in[2] = input_id(L, n, 2);
    int rc = fused_act(L, n, act, &a, 3);
    if (rc) return rc;
    EMIT_OR_FAIL(nd, L, FK__OP_GEMM, n->name, *first ? 3 : 2, in, out_id(L, n));
    nd->a = a;
    return FK_OK;
}

static int pool(tf_loader *L, const tf_node *n, int op) {
    fk__attr a;
    fk__attr_defaults(&a);
    int rc = spatial(L, n, &a, 1);
    if (rc) return rc;
    a.count_include_pad = 0; /* TF averages over the valid cells only */
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, op, n->name, 1, &in, out_id(L, n));
    nd->a = a;
    return FK_OK;
}

/* One-input ops without attributes, and numpy-broadcasting binaries. */
static int simple(tf_loader *L, const tf_node *n, int op, int n_in) {
    int in[2];
    for (int i = 0; i < n_in; i++) in[i] = input_id(L, n, i);
    EMIT_OR_FAIL(nd, L, op, n->name, n_in, in, out_id(L, n));
    (void)nd;
    return FK_OK;
}

static int relu6(tf_loader *L, const tf_node *n) {
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_CLIP, n->name, 1, &in, out_id(L, n));
    nd->a.clip_min = 0.0f;
    nd->a.clip_max = 6.0f;
    return FK_OK;
}

static int leaky_relu(tf_loader *L, const tf_node *n) {
    double al;
    if (!attr_float(L, n, "alpha", 0.2, &al)) return FK_EFORMAT;
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_LEAKY_RELU, n->name, 1, &in, out_id(L, n));
    nd->a.alpha = (float)al;
    return FK_OK;
}

static int softmax(tf_loader *L, const tf_node *n) {
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_SOFTMAX, n->name, 1, &in, out_id(L, n));
    nd->a.axis = -1;
    return FK_OK;
}

/* AddN: a chain of Add through intermediate tensors. */
static int add_n(tf_loader *L, const tf_node *n) {
    if (n->n_in < 1) return fail(L, FK_EFORMAT, "no inputs");
    int acc = input_id(L, n, 0);
    if (acc < 0) return acc;
    if (n->n_in == 1) return simple(L, n, FK__OP_IDENTITY, 1);
    for (int i = 1; i < n->n_in; i++) {
        int in[2] = {acc, input_id(L, n, i)};
        int o;
        char nm[600];
        if (i + 1 == n->n_in) {
            o = out_id(L, n);
            snprintf(nm, sizeof nm, "%s", n->name);
        } else {
            char suf[32];
            snprintf(suf, sizeof suf, "sum%d", i);
            o = temp_tensor(L, n, suf, FK__DT_F32);
            snprintf(nm, sizeof nm, "%s/sum%d", n->name, i);
        }
        EMIT_OR_FAIL(nd, L, FK__OP_ADD, nm, 2, in, o);
        (void)nd;
        acc = o;
    }
    return FK_OK;
}

/* Mean, Sum, Max: axes from a constant input. TF with no axes reduces nothing. */
static int reduce(tf_loader *L, const tf_node *n, int op) {
    int64_t ax[FK__MAX_RANK];
    int k = 0, rc = const_ints(L, n, 1, "axes", ax, FK__MAX_RANK, &k);
    if (rc) return rc;
    int in = input_id(L, n, 0);
    if (k == 0) return simple(L, n, FK__OP_IDENTITY, 1);
    EMIT_OR_FAIL(nd, L, op, n->name, 1, &in, out_id(L, n));
    for (int i = 0; i < k; i++) {
        if (ax[i] < -FK__MAX_RANK || ax[i] >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)ax[i]);
        nd->a.axes[i] = (int)ax[i];
    }
    nd->a.n_axes = k;
    nd->a.keepdims = attr_bool(n, "keep_dims") || attr_bool(n, "keepdims");
    return FK_OK;
}

/* ConcatV2: the last input is the axis. */
static int concat(tf_loader *L, const tf_node *n) {
    if (n->n_in < 2) return fail(L, FK_EFORMAT, "needs values and an axis");
    int64_t axis = 0;
    int rc = const_int(L, n, n->n_in - 1, "axis", &axis);
    if (rc) return rc;
    if (axis < -FK__MAX_RANK || axis >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)axis);
    int cnt = n->n_in - 1;
    int *in = fk__malloc((size_t)cnt * sizeof(int));
    if (!in) return fail(L, FK_ENOMEM, "out of memory");
    for (int i = 0; i < cnt; i++) in[i] = input_id(L, n, i);
    fk__node *nd = emit(L, cnt == 1 ? FK__OP_IDENTITY : FK__OP_CONCAT, n->name, cnt, in, out_id(L, n));
    fk__free(in);
    if (!nd) return emit_status(L);
    nd->a.axis = (int)axis;
    return FK_OK;
}

/* Pack (tf.stack) = Unsqueeze every input at `axis`, then Concat on it. */
static int pack(tf_loader *L, const tf_node *n) {
    int64_t axis = 0;
    if (!attr_int(L, n, "axis", 0, &axis)) return FK_EFORMAT;
    if (axis < -FK__MAX_RANK || axis >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)axis);
    if (n->n_in < 1) return fail(L, FK_EFORMAT, "no inputs");
    int o = out_id(L, n);
    if (o < 0) return o;
    int *parts = fk__malloc((size_t)n->n_in * sizeof(int));
    if (!parts) return fail(L, FK_ENOMEM, "out of memory");
    int rc = FK_OK;
    for (int i = 0; i < n->n_in && !rc; i++) {
        int x = input_id(L, n, i);
        if (x < 0) { rc = x; break; }
        char suf[32], nm[600];
        snprintf(suf, sizeof suf, "unsqueeze%d", i);
        snprintf(nm, sizeof nm, "%s/%s", n->name, suf);
        parts[i] = n->n_in == 1 ? o : temp_tensor(L, n, suf, L->g->t[x].dtype);
        fk__node *nd = emit(L, FK__OP_UNSQUEEZE, nm, 1, &x, parts[i]);
        if (!nd) { rc = emit_status(L); break; }
        nd->a.axes[0] = (int)axis;
        nd->a.n_axes = 1;
    }
    if (!rc && n->n_in > 1) {
        fk__node *nd = emit(L, FK__OP_CONCAT, n->name, n->n_in, parts, o);
        if (!nd) rc = emit_status(L);
        else nd->a.axis = (int)axis;
    }
    fk__free(parts);
    return rc;
}

static int reshape(tf_loader *L, const tf_node *n) {
    int in[2] = {input_id(L, n, 0), input_id(L, n, 1)};
    EMIT_OR_FAIL(nd, L, FK__OP_RESHAPE, n->name, 2, in, out_id(L, n));
    (void)nd;
    return FK_OK;
}

static int squeeze(tf_loader *L, const tf_node *n) {
    int64_t ax[FK__MAX_RANK];
    int k = attr_ints(L, n, "squeeze_dims", ax, FK__MAX_RANK);
    if (k == 0) k = attr_ints(L, n, "axis", ax, FK__MAX_RANK);
    if (k < 0) return FK_EFORMAT;
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_SQUEEZE, n->name, 1, &in, out_id(L, n));
    for (int i = 0; i < k; i++) {
        if (ax[i] < -FK__MAX_RANK || ax[i] >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)ax[i]);
        nd->a.axes[i] = (int)ax[i];
    }
    nd->a.n_axes = k;
    return FK_OK;
}

static int expand_dims(tf_loader *L, const tf_node *n) {
    int64_t axis = 0;
    int rc = const_int(L, n, 1, "axis", &axis);
    if (rc) return rc;
    if (axis < -FK__MAX_RANK || axis >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)axis);
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_UNSQUEEZE, n->name, 1, &in, out_id(L, n));
    nd->a.axes[0] = (int)axis;
    nd->a.n_axes = 1;
    return FK_OK;
}

static int transpose(tf_loader *L, const tf_node *n) {
    int64_t p[FK__MAX_RANK];
    int k = 0, rc = const_ints(L, n, 1, "perm", p, FK__MAX_RANK, &k);
    if (rc) return rc;
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_TRANSPOSE, n->name, 1, &in, out_id(L, n));
    for (int i = 0; i < k; i++) {
        if (p[i] < 0 || p[i] >= k) return fail(L, FK_EFORMAT, "bad permutation");
        nd->a.perm[i] = (int)p[i];
    }
    nd->a.n_perm = k;
    return FK_OK;
}

/* Pad / PadV2 / MirrorPad: paddings [rank, 2] constant; any axis, including channels. */
static int pad(tf_loader *L, const tf_node *n, int mirror) {
    int64_t p[2 * FK__MAX_RANK];
    int k = 0, rc = const_ints(L, n, 1, "paddings", p, 2 * FK__MAX_RANK, &k);
    if (rc) return rc;
    if (k % 2) return fail(L, FK_EFORMAT, "paddings must be [rank, 2]");
    double value = 0.0;
    if (!strcmp(n->op, "PadV2") && n->n_in > 2) {
        int id = const_input(L, n, 2, "constant_values");
        if (id < 0) return id;
        const fk__tensor *t = &L->g->t[id];
        if (fk__tensor_numel(t) != 1) return fail(L, FK_EFORMAT, "constant_values must be a scalar");
        value = t->dtype == FK__DT_F32 ? ((const float *)t->data)[0] : ((const int32_t *)t->data)[0];
    }
    int mode = FK__PAD_CONSTANT;
    if (mirror) {
        char s[32];
        if (!attr_str(L, n, "mode", s, sizeof s)) return FK_EFORMAT;
        if (strcmp(s, "REFLECT")) return fail(L, FK_EUNSUPPORTED, "MirrorPad mode '%s' (only REFLECT)", s);
        mode = FK__PAD_REFLECT;
    }
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_PAD, n->name, 1, &in, out_id(L, n));
    int r = k / 2;
    for (int i = 0; i < r; i++) {
        if (p[2 * i] < 0 || p[2 * i + 1] < 0) return fail(L, FK_EUNSUPPORTED, "negative padding");
        nd->a.pads_nd[i] = p[2 * i];
        nd->a.pads_nd[r + i] = p[2 * i + 1];
    }
    nd->a.n_pads_nd = k;
    nd->a.pad_mode = mode;
    nd->a.pad_value = (float)value;
    return FK_OK;
}

static int resize(tf_loader *L, const tf_node *n, int mode) {
    int64_t sz[2];
    int k = 0, rc = const_ints(L, n, 1, "size", sz, 2, &k);
    if (rc) return rc;
    if (k != 2 || sz[0] < 1 || sz[1] < 1 || sz[0] > 65536 || sz[1] > 65536)
        return fail(L, FK_EFORMAT, "size must be two positive values");
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_RESIZE, n->name, 1, &in, out_id(L, n));
    nd->a.out_hw[0] = sz[0];
    nd->a.out_hw[1] = sz[1];
    nd->a.resize_mode = mode;
    int ac = attr_bool(n, "align_corners"), hp = attr_bool(n, "half_pixel_centers");
    nd->a.resize_coord = ac ? FK__COORD_ALIGN_CORNERS : hp ? FK__COORD_HALF_PIXEL : FK__COORD_ASYMMETRIC;
    /* TF nearest: floor(src) without half-pixel or align-corners, rounding otherwise (half away from zero on
     * non-negative coordinates = prefer ceil). */
    nd->a.nearest_mode = (ac || hp) ? FK__NEAREST_ROUND_PREFER_CEIL : FK__NEAREST_FLOOR;
    return FK_OK;
}

static int depth_to_space(tf_loader *L, const tf_node *n) {
    int64_t bs = 0;
    char s[32];
    if (!attr_int(L, n, "block_size", 0, &bs) || !attr_str(L, n, "data_format", s, sizeof s)) return FK_EFORMAT;
    if (*s && strcmp(s, "NHWC")) return fail(L, FK_EUNSUPPORTED, "data_format '%s' (only NHWC)", s);
    if (bs < 1 || bs > 1024) return fail(L, FK_EFORMAT, "block_size %lld", (long long)bs);
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_DEPTH_TO_SPACE, n->name, 1, &in, out_id(L, n));
    nd->a.block = (int)bs;
    nd->a.dcr = 1;
    return FK_OK;
}

static int slice(tf_loader *L, const tf_node *n) {
    int64_t b[FK__MAX_RANK], s[FK__MAX_RANK];
    int kb = 0, ks = 0, rc = const_ints(L, n, 1, "begin", b, FK__MAX_RANK, &kb);
    if (!rc) rc = const_ints(L, n, 2, "size", s, FK__MAX_RANK, &ks);
    if (rc) return rc;
    if (kb != ks) return fail(L, FK_EFORMAT, "begin and size differ in length");
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_SLICE, n->name, 1, &in, out_id(L, n));
    for (int i = 0; i < kb; i++) {
        if (b[i] < 0 || s[i] < -1) return fail(L, FK_EFORMAT, "bad begin/size on axis %d", i);
        nd->a.s_axes[i] = i;
        nd->a.s_starts[i] = b[i];
        nd->a.s_ends[i] = s[i] == -1 ? INT64_MAX : b[i] + s[i];
        nd->a.s_steps[i] = 1;
    }
    nd->a.s_n = kb;
    return FK_OK;
}

/* StridedSlice: the sparse spec (begin/end/strides + masks) becomes a Slice in attribute form, then a Squeeze
 * of the shrunk axes and an Unsqueeze of the new ones. Entries after an ellipsis address axes from the end
 * (negative axes), so the input rank need not be known here. */
static int strided_slice(tf_loader *L, const tf_node *n) {
    int64_t b[FK__MAX_RANK], e[FK__MAX_RANK], st[FK__MAX_RANK];
    int kb = 0, ke = 0, ks = 0, rc = const_ints(L, n, 1, "begin", b, FK__MAX_RANK, &kb);
    if (!rc) rc = const_ints(L, n, 2, "end", e, FK__MAX_RANK, &ke);
    if (!rc && n->n_in > 3) rc = const_ints(L, n, 3, "strides", st, FK__MAX_RANK, &ks);
    else for (ks = 0; ks < kb; ks++) st[ks] = 1;
    if (rc) return rc;
    if (kb != ke || kb != ks) return fail(L, FK_EFORMAT, "begin, end and strides differ in length");
    int64_t bm = 0, em = 0, elm = 0, nam = 0, sam = 0;
    if (!attr_int(L, n, "begin_mask", 0, &bm) || !attr_int(L, n, "end_mask", 0, &em) ||
        !attr_int(L, n, "ellipsis_mask", 0, &elm) || !attr_int(L, n, "new_axis_mask", 0, &nam) ||
        !attr_int(L, n, "shrink_axis_mask", 0, &sam))
        return FK_EFORMAT;
    if (bm < 0 || em < 0 || elm < 0 || nam < 0 || sam < 0 || (bm | em | elm | nam | sam) >= (1 << 16))
        return fail(L, FK_EFORMAT, "bad mask");
    if (elm & (elm - 1)) return fail(L, FK_EFORMAT, "more than one ellipsis");
    int ell = -1;
    for (int i = 0; i < kb; i++)
        if (elm & (1LL << i)) ell = i;
    fk__attr a;
    fk__attr_defaults(&a);
    int sq[FK__MAX_RANK], nsq = 0, un[FK__MAX_RANK], nun = 0;
    /* Entries before the ellipsis count axes from the front, after it from the back. */
    int ia = 0, op = 0;
    int after_in = 0, after_out = 0; /* axes (input / output) addressed after the ellipsis */
    for (int i = ell + 1; ell >= 0 && i < kb; i++) {
        if (!(nam & (1LL << i))) after_in++;
        if (!(sam & (1LL << i)) || (nam & (1LL << i))) after_out++;
    }
    for (int i = 0; i < kb; i++) {
        int64_t bit = 1LL << i;
        if (i == ell) {
            ia = -after_in;
            op = -after_out;
            continue;
        }
        if (nam & bit) {
            un[nun++] = op++;
            continue;
        }
        if (st[i] == 0) return fail(L, FK_EFORMAT, "stride 0");
        int s = a.s_n++;
        a.s_axes[s] = ia;
        if (sam & bit) {
            a.s_starts[s] = b[i];
            a.s_ends[s] = b[i] == -1 ? INT64_MAX : b[i] + 1;
            a.s_steps[s] = 1;
            sq[nsq++] = ia;
        } else {
            a.s_steps[s] = st[i];
            a.s_starts[s] = (bm & bit) ? (st[i] > 0 ? 0 : INT64_MAX) : b[i];
            a.s_ends[s] = (em & bit) ? (st[i] > 0 ? INT64_MAX : INT64_MIN) : e[i];
            op++;
        }
        ia++;
    }
    int x = input_id(L, n, 0), o = out_id(L, n);
    if (x < 0 || o < 0) return FK_EFORMAT;
    int dt = L->g->t[o].dtype;
    int cur = x;
    char nm[600];
    if (a.s_n) {
        int t = (nsq || nun) ? temp_tensor(L, n, "slice", dt) : o;
        snprintf(nm, sizeof nm, "%s%s", n->name, t == o ? "" : "/slice");
        EMIT_OR_FAIL(nd, L, FK__OP_SLICE, nm, 1, &cur, t);
        memcpy(nd->a.s_axes, a.s_axes, sizeof a.s_axes);
        memcpy(nd->a.s_starts, a.s_starts, sizeof a.s_starts);
        memcpy(nd->a.s_ends, a.s_ends, sizeof a.s_ends);
        memcpy(nd->a.s_steps, a.s_steps, sizeof a.s_steps);
        nd->a.s_n = a.s_n;
        cur = t;
    }
    if (nsq) {
        int t = nun ? temp_tensor(L, n, "squeeze", dt) : o;
        snprintf(nm, sizeof nm, "%s%s", n->name, t == o ? "" : "/squeeze");
        EMIT_OR_FAIL(nd, L, FK__OP_SQUEEZE, nm, 1, &cur, t);
        memcpy(nd->a.axes, sq, sizeof sq);
        nd->a.n_axes = nsq;
        cur = t;
    }
    if (nun) {
        EMIT_OR_FAIL(nd, L, FK__OP_UNSQUEEZE, n->name, 1, &cur, o);
        memcpy(nd->a.axes, un, sizeof un);
        nd->a.n_axes = nun;
        cur = o;
    }
    if (cur != o) { /* the spec selects everything */
        EMIT_OR_FAIL(nd, L, FK__OP_IDENTITY, n->name, 1, &cur, o);
        (void)nd;
    }
    return FK_OK;
}

/* Output tensor K of a multi-output node ("x", "x:1", ...). */
static int out_k(tf_loader *L, const tf_node *n, int k) {
    char nm[512];
    if (!k) return out_id(L, n);
    snprintf(nm, sizeof nm, "%s:%d", n->name, k);
    int id = fk__graph_find(L->g, nm);
    return id >= 0 ? id : fail(L, FK_EINTERNAL, "output tensor %d missing", k);
}

/* Split(axis, value) equal parts; SplitV(value, sizes, axis); Unpack(value) = equal Split + Squeeze each. */
static int split(tf_loader *L, const tf_node *n) {
    int unpack = !strcmp(n->op, "Unpack"), v = !strcmp(n->op, "SplitV");
    int64_t k = 0, axis = 0;
    if (!attr_int(L, n, unpack ? "num" : "num_split", 0, &k)) return FK_EFORMAT;
    if (k < 1 || k > FK__MAX_SPLIT) return fail(L, FK_EUNSUPPORTED, "%lld outputs", (long long)k);
    int rc = FK_OK;
    if (unpack) {
        if (!attr_int(L, n, "axis", 0, &axis)) return FK_EFORMAT;
    } else {
        rc = const_int(L, n, v ? 2 : 0, "axis", &axis);
    }
    if (rc) return rc;
    if (axis < -FK__MAX_RANK || axis >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)axis);
    int64_t sizes[FK__MAX_SPLIT];
    int ns = 0;
    if (v) {
        if ((rc = const_ints(L, n, 1, "size_splits", sizes, FK__MAX_SPLIT, &ns))) return rc;
        if (ns != k) return fail(L, FK_EFORMAT, "%d sizes for %lld outputs", ns, (long long)k);
        for (int i = 0; i < ns; i++)
            if (sizes[i] < 0) return fail(L, FK_EUNSUPPORTED, "inferred (-1) split sizes");
    }
    int x = input_id(L, n, v ? 0 : unpack ? 0 : 1);
    if (x < 0) return x;
    int outs[FK__MAX_SPLIT];
    for (int i = 0; i < k; i++) {
        char suf[32];
        snprintf(suf, sizeof suf, "part%d", i);
        outs[i] = unpack ? temp_tensor(L, n, suf, L->g->t[x].dtype) : out_k(L, n, i);
        if (outs[i] < 0) return outs[i];
    }
    char nm[600];
    snprintf(nm, sizeof nm, "%s%s", n->name, unpack ? "/split" : "");
    int idx = fk__graph_add_node(L->g, FK__OP_SPLIT, nm, 1, &x, (int)k, outs);
    if (idx < 0) return graph_fail(L, idx);
    fk__node *nd = &L->g->n[idx];
    nd->a.layout = FK__NHWC;
    nd->a.axis = (int)axis;
    nd->a.n_split = ns;
    for (int i = 0; i < ns; i++) nd->a.split[i] = sizes[i];
    for (int i = 0; unpack && i < k; i++) {
        snprintf(nm, sizeof nm, "%s/squeeze%d", n->name, i);
        EMIT_OR_FAIL(sq, L, FK__OP_SQUEEZE, nm, 1, &outs[i], out_k(L, n, i));
        sq->a.axes[0] = (int)axis;
        sq->a.n_axes = 1;
    }
    return FK_OK;
}

/* A float scalar constant "<node>/<suffix>" for composed ops. */
static int scalar_const(tf_loader *L, const tf_node *n, const char *suffix, float value) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s/%s", n->name, suffix);
    float *d = fk__malloc(sizeof(float));
    if (!d) return fail(L, FK_ENOMEM, "out of memory");
    *d = value;
    int id = fk__graph_add_tensor(L->g, nm, FK__DT_F32, FK__T_CONST, 0, NULL, d);
    return id < 0 ? graph_fail(L, id) : id;
}

/* Elu(x) = Relu(x) + (Exp(Min(x, 0)) - 1): no internal op of its own. */
static int elu(tf_loader *L, const tf_node *n) {
    int x = input_id(L, n, 0), zero = scalar_const(L, n, "zero", 0.0f), one = scalar_const(L, n, "one", 1.0f);
    int r = temp_tensor(L, n, "relu", FK__DT_F32), m = temp_tensor(L, n, "min", FK__DT_F32);
    int e = temp_tensor(L, n, "exp", FK__DT_F32), s = temp_tensor(L, n, "expm1", FK__DT_F32);
    char nm[600];
    snprintf(nm, sizeof nm, "%s/relu", n->name);
    EMIT_OR_FAIL(n1, L, FK__OP_RELU, nm, 1, &x, r);
    int mi[2] = {x, zero};
    snprintf(nm, sizeof nm, "%s/min", n->name);
    EMIT_OR_FAIL(n2, L, FK__OP_MIN, nm, 2, mi, m);
    snprintf(nm, sizeof nm, "%s/exp", n->name);
    EMIT_OR_FAIL(n3, L, FK__OP_EXP, nm, 1, &m, e);
    int si[2] = {e, one};
    snprintf(nm, sizeof nm, "%s/expm1", n->name);
    EMIT_OR_FAIL(n4, L, FK__OP_SUB, nm, 2, si, s);
    int ai[2] = {r, s};
    EMIT_OR_FAIL(n5, L, FK__OP_ADD, n->name, 2, ai, out_id(L, n));
    (void)n1, (void)n2, (void)n3, (void)n4, (void)n5;
    return FK_OK;
}

/* SquaredDifference(a, b) = Square(a - b). */
static int squared_difference(tf_loader *L, const tf_node *n) {
    int in[2] = {input_id(L, n, 0), input_id(L, n, 1)}, d = temp_tensor(L, n, "diff", FK__DT_F32);
    char nm[600];
    snprintf(nm, sizeof nm, "%s/diff", n->name);
    EMIT_OR_FAIL(n1, L, FK__OP_SUB, nm, 2, in, d);
    EMIT_OR_FAIL(n2, L, FK__OP_SQUARE, n->name, 1, &d, out_id(L, n));
    (void)n1, (void)n2;
    return FK_OK;
}

static int clip_by_value(tf_loader *L, const tf_node *n) {
    float lim[2];
    for (int k = 0; k < 2; k++) {
        int id = const_input(L, n, 1 + k, k ? "clip_value_max" : "clip_value_min");
        if (id < 0) return id;
        const fk__tensor *t = &L->g->t[id];
        if (fk__tensor_numel(t) != 1 || t->dtype != FK__DT_F32)
            return fail(L, FK_EUNSUPPORTED, "clip bounds must be float scalars");
        lim[k] = ((const float *)t->data)[0];
    }
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_CLIP, n->name, 1, &in, out_id(L, n));
    nd->a.clip_min = lim[0];
    nd->a.clip_max = lim[1];
    return FK_OK;
}

/* GatherV2(params, indices, axis) with batch_dims 0. */
static int gather(tf_loader *L, const tf_node *n) {
    int64_t axis = 0, bd;
    if (!attr_int(L, n, "batch_dims", 0, &bd)) return FK_EFORMAT;
    if (bd) return fail(L, FK_EUNSUPPORTED, "batch_dims %lld", (long long)bd);
    int rc = n->n_in > 2 ? const_int(L, n, 2, "axis", &axis) : FK_OK;
    if (rc) return rc;
    if (axis < -FK__MAX_RANK || axis >= FK__MAX_RANK) return fail(L, FK_EFORMAT, "axis %lld", (long long)axis);
    int in[2] = {input_id(L, n, 0), input_id(L, n, 1)};
    EMIT_OR_FAIL(nd, L, FK__OP_GATHER, n->name, 2, in, out_id(L, n));
    nd->a.axis = (int)axis;
    return FK_OK;
}

static int batch_matmul(tf_loader *L, const tf_node *n) {
    if (attr_bool(n, "adj_x") || attr_bool(n, "adj_y")) return fail(L, FK_EUNSUPPORTED, "adj_x / adj_y");
    return simple(L, n, FK__OP_MATMUL, 2);
}

/* Shape: the internal op yields int64 (graph.h); TF's default out_type int32 gets a Cast so that Pack and
 * Concat see one integer type. Folded away at prepare time. */
static int shape(tf_loader *L, const tf_node *n) {
    int in = input_id(L, n, 0), o = out_id(L, n);
    if (o < 0) return o;
    if (L->g->t[o].dtype == FK__DT_I64) return simple(L, n, FK__OP_SHAPE, 1);
    int t = temp_tensor(L, n, "i64", FK__DT_I64);
    char nm[600];
    snprintf(nm, sizeof nm, "%s/i64", n->name);
    EMIT_OR_FAIL(sh, L, FK__OP_SHAPE, nm, 1, &in, t);
    (void)sh;
    EMIT_OR_FAIL(nd, L, FK__OP_CAST, n->name, 1, &t, o);
    nd->a.to = L->g->t[o].dtype;
    return FK_OK;
}

static int cast(tf_loader *L, const tf_node *n) {
    int to = attr_dtype(n, "DstT");
    if (to <= 0) return fail(L, FK_EUNSUPPORTED, "cast to an unsupported type");
    int in = input_id(L, n, 0);
    EMIT_OR_FAIL(nd, L, FK__OP_CAST, n->name, 1, &in, out_id(L, n));
    nd->a.to = to;
    return FK_OK;
}

/* Standalone FusedBatchNorm(V3)(x, scale, offset, mean, variance): precomputed scale and shift. */
static int batch_norm(tf_loader *L, const tf_node *n) {
    int ids[4];
    for (int k = 0; k < 4; k++)
        if ((ids[k] = const_input(L, n, 1 + k, "batch-norm parameter")) < 0) return ids[k];
    int64_t c = fk__tensor_numel(&L->g->t[ids[0]]);
    for (int k = 0; k < 4; k++)
        if (fk__tensor_numel(&L->g->t[ids[k]]) != c || L->g->t[ids[k]].dtype != FK__DT_F32)
            return fail(L, FK_ESHAPE, "batch-norm parameters differ in size");
    double eps;
    if (!attr_float(L, n, "epsilon", 1e-3, &eps)) return FK_EFORMAT;
    char s[32];
    if (!attr_str(L, n, "data_format", s, sizeof s)) return FK_EFORMAT;
    if (*s && strcmp(s, "NHWC")) return fail(L, FK_EUNSUPPORTED, "data_format '%s' (only NHWC)", s);
    float *scale = fk__malloc((size_t)(c ? c : 1) * sizeof(float)), *shift = fk__malloc((size_t)(c ? c : 1) * sizeof(float));
    if (!scale || !shift) {
        fk__free(scale);
        fk__free(shift);
        return fail(L, FK_ENOMEM, "out of memory");
    }
    const float *sc = L->g->t[ids[0]].data, *of = L->g->t[ids[1]].data, *mu = L->g->t[ids[2]].data,
                *var = L->g->t[ids[3]].data;
    for (int64_t i = 0; i < c; i++) {
        scale[i] = (float)(sc[i] / sqrt((double)var[i] + eps));
        shift[i] = of[i] - mu[i] * scale[i];
    }
    char nm[600];
    snprintf(nm, sizeof nm, "%s/scale", n->name);
    int si = fk__graph_add_tensor(L->g, nm, FK__DT_F32, FK__T_CONST, 1, &c, scale);
    if (si < 0) {
        fk__free(shift);
        return graph_fail(L, si);
    }
    snprintf(nm, sizeof nm, "%s/shift", n->name);
    int hi = fk__graph_add_tensor(L->g, nm, FK__DT_F32, FK__T_CONST, 1, &c, shift);
    if (hi < 0) return graph_fail(L, hi);
    int in[3] = {input_id(L, n, 0), si, hi};
    EMIT_OR_FAIL(nd, L, FK__OP_BATCH_NORM, n->name, 3, in, out_id(L, n));
    (void)nd;
    return FK_OK;
}

static int convert(tf_loader *L, const tf_node *n) {
    const char *op = n->op;
    static const struct { const char *tf; int op; int n_in; } table[] = {
        {"Identity", FK__OP_IDENTITY, 1}, {"StopGradient", FK__OP_IDENTITY, 1}, {"Snapshot", FK__OP_IDENTITY, 1},
        {"BiasAdd", FK__OP_ADD, 2},       {"Add", FK__OP_ADD, 2},               {"AddV2", FK__OP_ADD, 2},
        {"Sub", FK__OP_SUB, 2},           {"Mul", FK__OP_MUL, 2},               {"RealDiv", FK__OP_DIV, 2},
        {"Div", FK__OP_DIV, 2},           {"Maximum", FK__OP_MAX, 2},           {"Minimum", FK__OP_MIN, 2},
        {"Pow", FK__OP_POW, 2},           {"Prelu", FK__OP_PRELU, 2},           {"Relu", FK__OP_RELU, 1},
        {"Sigmoid", FK__OP_SIGMOID, 1},   {"Tanh", FK__OP_TANH, 1},             {"Abs", FK__OP_ABS, 1},
        {"Rsqrt", FK__OP_RSQRT, 1},       {"Sqrt", FK__OP_SQRT, 1},             {"Square", FK__OP_SQUARE, 1},
        {"Neg", FK__OP_NEG, 1},           {"Exp", FK__OP_EXP, 1},
    };
    if (!strcmp(op, "BiasAdd")) {
        char s[32];
        if (!attr_str(L, n, "data_format", s, sizeof s)) return FK_EFORMAT;
        if (*s && strcmp(s, "NHWC")) return fail(L, FK_EUNSUPPORTED, "data_format '%s' (only NHWC)", s);
    }
    for (size_t i = 0; i < FK__ARRAY_LEN(table); i++)
        if (!strcmp(op, table[i].tf)) return simple(L, n, table[i].op, table[i].n_in);
    if (!strcmp(op, "Shape")) return shape(L, n);
    if (!strcmp(op, "Split") || !strcmp(op, "SplitV") || !strcmp(op, "Unpack")) return split(L, n);
    if (!strcmp(op, "Elu")) return elu(L, n);
    if (!strcmp(op, "SquaredDifference")) return squared_difference(L, n);
    if (!strcmp(op, "ClipByValue")) return clip_by_value(L, n);
    if (!strcmp(op, "GatherV2")) return gather(L, n);
    if (!strcmp(op, "BatchMatMul") || !strcmp(op, "BatchMatMulV2")) return batch_matmul(L, n);
    if (!strcmp(op, "Conv2D")) return conv_fused(L, n, 0, 0);
    if (!strcmp(op, "_FusedConv2D")) return conv_fused(L, n, 0, 1);
    if (!strcmp(op, "DepthwiseConv2dNative")) return conv_fused(L, n, 1, 0);
    if (!strcmp(op, "FusedDepthwiseConv2dNative")) return conv_fused(L, n, 1, 1);
    if (!strcmp(op, "Conv2DBackpropInput")) return conv_backprop(L, n);
    if (!strcmp(op, "MatMul")) return matmul(L, n, 0);
    if (!strcmp(op, "_FusedMatMul")) return matmul(L, n, 1);
    if (!strcmp(op, "MaxPool")) return pool(L, n, FK__OP_MAX_POOL);
    if (!strcmp(op, "AvgPool")) return pool(L, n, FK__OP_AVG_POOL);
    if (!strcmp(op, "Relu6")) return relu6(L, n);
    if (!strcmp(op, "LeakyRelu")) return leaky_relu(L, n);
    if (!strcmp(op, "Softmax")) return softmax(L, n);
    if (!strcmp(op, "AddN")) return add_n(L, n);
    if (!strcmp(op, "Mean")) return reduce(L, n, FK__OP_REDUCE_MEAN);
    if (!strcmp(op, "Sum")) return reduce(L, n, FK__OP_REDUCE_SUM);
    if (!strcmp(op, "Max")) return reduce(L, n, FK__OP_REDUCE_MAX);
    if (!strcmp(op, "ConcatV2")) return concat(L, n);
    if (!strcmp(op, "Pack")) return pack(L, n);
    if (!strcmp(op, "Reshape")) return reshape(L, n);
    if (!strcmp(op, "Squeeze")) return squeeze(L, n);
    if (!strcmp(op, "ExpandDims")) return expand_dims(L, n);
    if (!strcmp(op, "Transpose")) return transpose(L, n);
    if (!strcmp(op, "Pad") || !strcmp(op, "PadV2")) return pad(L, n, 0);
    if (!strcmp(op, "MirrorPad")) return pad(L, n, 1);
    if (!strcmp(op, "ResizeBilinear")) return resize(L, n, FK__RESIZE_BILINEAR);
    if (!strcmp(op, "ResizeNearestNeighbor")) return resize(L, n, FK__RESIZE_NEAREST);
    if (!strcmp(op, "DepthToSpace")) return depth_to_space(L, n);
    if (!strcmp(op, "Slice")) return slice(L, n);
    if (!strcmp(op, "StridedSlice")) return strided_slice(L, n);
    if (!strcmp(op, "Cast")) return cast(L, n);
    if (!strcmp(op, "FusedBatchNorm") || !strcmp(op, "FusedBatchNormV3")) return batch_norm(L, n);
    return fail(L, FK_EUNSUPPORTED, "unsupported op '%s'", op);
}

/* ---- graph inputs and outputs ------------------------------------------------------------------- */

static int append_id(tf_loader *L, int **arr, int *n, int id) {
    for (int i = 0; i < *n; i++)
        if ((*arr)[i] == id) return FK_OK;
    int *p = fk__realloc(*arr, (size_t)(*n + 1) * sizeof(int));
    if (!p) return fail(L, FK_ENOMEM, "out of memory");
    p[(*n)++] = id;
    *arr = p;
    return FK_OK;
}

/* Placeholder: batch -1 becomes 1; other unknown sizes get the usual image defaults (224 for H and W,
 * 3 channels) and can be set by the caller through fk__graph_prepare's input dims. */
static int placeholder(tf_loader *L, const tf_node *n) {
    int dt = attr_dtype(n, "dtype");
    if (dt == 0) dt = FK__DT_F32;
    if (dt < 0) return fail(L, FK_EUNSUPPORTED, "input dtype (only float32, int32, int64)");
    json_t *a = attr_get(n, "shape"), *sh = a ? json_object_get(a, "shape") : NULL;
    json_t *dim = sh ? json_object_get(sh, "dim") : NULL;
    if (!sh || json_is_true(json_object_get(sh, "unknownRank")))
        return fail(L, FK_EUNSUPPORTED, "input of unknown rank");
    size_t rank = json_is_array(dim) ? json_array_size(dim) : 0;
    if (rank > FK__MAX_RANK) return fail(L, FK_EUNSUPPORTED, "input rank %zu", rank);
    int64_t d[FK__MAX_RANK];
    for (size_t i = 0; i < rank; i++) {
        json_t *sz = json_object_get(json_array_get(dim, i), "size");
        int64_t v = -1;
        if (sz && !json_to_i64(sz, &v)) return fail(L, FK_EFORMAT, "input dimension %zu is malformed", i);
        if (v > 1 << 20 || v < -1) return fail(L, FK_EFORMAT, "input dimension %zu is %lld", i, (long long)v);
        if (v < 0) v = i == 0 ? 1 : (rank == 4 && i == 3) ? 3 : 224;
        d[i] = v;
    }
    int id = fk__graph_add_tensor(L->g, n->name, dt, FK__T_INPUT, (int)rank, d, NULL);
    if (id < 0) return graph_fail(L, id);
    return append_id(L, &L->g->inputs, &L->g->n_inputs, id);
}

static int mark_output(tf_loader *L, const char *ref) {
    char nm[512];
    ref_name(ref, nm, sizeof nm);
    int id = fk__graph_find(L->g, nm);
    if (id < 0) return fail(L, FK_EFORMAT, "output '%s' is not produced by any node", ref);
    L->g->t[id].is_output = 1;
    return append_id(L, &L->g->outputs, &L->g->n_outputs, id);
}

/* Outputs: the signature's when it names them, else every node nobody reads (as TF.js does). */
static int outputs(tf_loader *L) {
    L->cur = NULL;
    json_t *sig = json_object_get(L->root, "signature");
    json_t *outs = sig ? json_object_get(sig, "outputs") : NULL;
    if (json_is_object(outs) && json_object_size(outs)) {
        const char *key;
        json_t *v;
        json_object_foreach(outs, key, v) {
            const char *nm = json_string_value(json_object_get(v, "name"));
            int rc = mark_output(L, nm ? nm : key);
            if (rc) return rc;
        }
        return FK_OK;
    }
    int *read = fk__calloc((size_t)L->nn + 1, sizeof(int));
    if (!read) return fail(L, FK_ENOMEM, "out of memory");
    for (int i = 0; i < L->nn; i++)
        for (int k = 0; k < L->nodes[i].n_in; k++) {
            char nm[512];
            snprintf(nm, sizeof nm, "%s", L->nodes[i].in[k]);
            char *c = strrchr(nm, ':');
            if (c) *c = 0;
            for (int j = 0; j < L->nn; j++)
                if (!strcmp(L->nodes[j].name, nm)) {
                    read[j] = 1;
                    break;
                }
        }
    int rc = FK_OK;
    for (int i = 0; i < L->nn && !rc; i++)
        if (!read[i] && strcmp(L->nodes[i].op, "Const") && strcmp(L->nodes[i].op, "Placeholder") &&
            strcmp(L->nodes[i].op, "NoOp"))
            rc = mark_output(L, L->nodes[i].name);
    fk__free(read);
    if (!rc && L->g->n_outputs == 0) rc = fail(L, FK_EFORMAT, "the graph has no outputs");
    return rc;
}

/* ---- driver ------------------------------------------------------------------------------------- */

/* jansson reports a failed allocation inside the parser as a syntax error ("string expected"), so core's
 * json.c routes its allocations through a wrapper that remembers the failure for this thread. */

static int read_nodes(tf_loader *L) {
    json_t *topo = json_object_get(L->root, "modelTopology");
    json_t *nodes = topo ? json_object_get(topo, "node") : NULL;
    if (!json_is_array(nodes) || json_array_size(nodes) == 0) return fail(L, FK_EFORMAT, "no modelTopology.node list");
    if (json_array_size(nodes) > 1000000) return fail(L, FK_ELIMIT, "too many nodes");
    L->nodes = fk__calloc(json_array_size(nodes), sizeof *L->nodes);
    if (!L->nodes) return fail(L, FK_ENOMEM, "out of memory");
    L->nn = (int)json_array_size(nodes);
    for (int i = 0; i < L->nn; i++) {
        json_t *j = json_array_get(nodes, i);
        tf_node *n = &L->nodes[i];
        n->name = json_string_value(json_object_get(j, "name"));
        n->op = json_string_value(json_object_get(j, "op"));
        if (!n->name || !n->op || !*n->name || strlen(n->name) > 400)
            return fail(L, FK_EFORMAT, "node %d has no name or op", i);
        n->attr = json_object_get(j, "attr");
        if (n->attr && !json_is_object(n->attr)) n->attr = NULL;
        n->n_out = 1;
        json_t *in = json_object_get(j, "input");
        if (in && !json_is_array(in)) return fail(L, FK_EFORMAT, "node '%s': 'input' is not a list", n->name);
        size_t k = in ? json_array_size(in) : 0;
        n->in = fk__malloc((k ? k : 1) * sizeof(char *));
        if (!n->in) return fail(L, FK_ENOMEM, "out of memory");
        for (size_t m = 0; m < k; m++) {
            const char *s = json_string_value(json_array_get(in, m));
            if (!s || !*s || strlen(s) > 400) return fail(L, FK_EFORMAT, "node '%s': bad input %zu", n->name, m);
            if (s[0] == '^') continue; /* control dependency: ordering only */
            n->in[n->n_in++] = s;
        }
    }
    /* How many outputs each node has: the highest port anybody reads. */
    for (int i = 0; i < L->nn; i++)
        for (int k = 0; k < L->nodes[i].n_in; k++) {
            const char *s = L->nodes[i].in[k], *c = strrchr(s, ':');
            if (!c) continue;
            char *end;
            long port = strtol(c + 1, &end, 10);
            if (*end || port < 0 || port > 64) continue;
            for (int j = 0; j < L->nn; j++)
                if (strlen(L->nodes[j].name) == (size_t)(c - s) && !strncmp(L->nodes[j].name, s, (size_t)(c - s))) {
                    if (port + 1 > L->nodes[j].n_out) L->nodes[j].n_out = (int)port + 1;
                    break;
                }
        }
    return FK_OK;
}

/* Output tensors of every non-constant node, so that any node can refer to any other in any order. */
static int make_tensors(tf_loader *L) {
    for (int i = 0; i < L->nn; i++) {
        const tf_node *n = L->cur = &L->nodes[i];
        int rc;
        if (!strcmp(n->op, "Const")) {
            int id = fk__graph_find(L->g, n->name);
            if (id < 0 || L->g->t[id].kind != FK__T_CONST)
                return fail(L, FK_EFORMAT, "constant has no entry in the weights manifest");
            continue;
        }
        if (!strcmp(n->op, "Placeholder")) {
            if ((rc = placeholder(L, n))) return rc;
            continue;
        }
        if (!strcmp(n->op, "NoOp")) continue;
        int dt = attr_dtype(n, "T");
        if (!strcmp(n->op, "Shape")) dt = attr_dtype(n, "out_type");
        if (!strcmp(n->op, "Cast")) dt = attr_dtype(n, "DstT");
        if (dt <= 0) dt = attr_dtype(n, "Tparams"); /* GatherV2 */
        if (dt <= 0) dt = FK__DT_F32;
        int outs = 1;
        if (!strcmp(n->op, "Split") || !strcmp(n->op, "SplitV") || !strcmp(n->op, "Unpack")) {
            int64_t k = 0;
            if (!attr_int(L, n, !strcmp(n->op, "Unpack") ? "num" : "num_split", 0, &k)) return FK_EFORMAT;
            if (k < 1 || k > FK__MAX_SPLIT) return fail(L, FK_EUNSUPPORTED, "%lld outputs (1 to %d)", (long long)k,
                                                         FK__MAX_SPLIT);
            outs = (int)k;
        }
        if (n->n_out > outs) return fail(L, FK_EFORMAT, "output %d is read but the node has %d", n->n_out - 1, outs);
        for (int k = 0; k < outs; k++) {
            char nm[512];
            if (k) snprintf(nm, sizeof nm, "%s:%d", n->name, k);
            int id = fk__graph_add_tensor(L->g, k ? nm : n->name, dt, FK__T_ACT, 0, NULL, NULL);
            if (id < 0) return graph_fail(L, id);
        }
    }
    L->cur = NULL;
    return FK_OK;
}

static int count_uses(tf_loader *L) {
    L->n_uses = L->g->nt;
    L->uses = fk__calloc((size_t)L->n_uses + 1, sizeof(int));
    if (!L->uses) return fail(L, FK_ENOMEM, "out of memory");
    for (int i = 0; i < L->nn; i++)
        for (int k = 0; k < L->nodes[i].n_in; k++) {
            char nm[512];
            ref_name(L->nodes[i].in[k], nm, sizeof nm);
            int id = fk__graph_find(L->g, nm);
            if (id >= 0 && id < L->n_uses) L->uses[id]++;
        }
    return FK_OK;
}

int fk__tfjs_load(fk__graph *g, const char *path) {
    tf_loader L;
    memset(&L, 0, sizeof L);
    L.g = g;
    L.path = path ? path : "(null)";
    if (!g || !path) return FK_EINVAL;
    /* Route the parser's memory through our allocator: counted, and failures injectable in tests. */
    fk__json_init();

    unsigned char *text;
    size_t len;
    int rc = read_file(&L, path, &text, &len);
    if (rc) return rc;
    json_error_t jerr;
    L.root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    fk__free(text);
    if (!L.root) {
        /* jansson reports some allocation failures (its buffers' set-up) with no text at all */
        if (fk__json_alloc_failed() || json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0])
            return fail(&L, FK_ENOMEM, "out of memory parsing JSON");
        return fail(&L, FK_EFORMAT, "JSON error at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    }
    if (fk__json_alloc_failed()) /* a document parsed despite a failed allocation may have lost members */
        rc = fail(&L, FK_ENOMEM, "out of memory parsing JSON");
    else if (!json_is_object(L.root))
        rc = fail(&L, FK_EFORMAT, "not a JSON object");
    const char *fmt = json_string_value(json_object_get(L.root, "format"));
    if (!rc && fmt && strcmp(fmt, "graph-model"))
        rc = fail(&L, FK_EUNSUPPORTED, "format '%s' (only TF.js graph models)", fmt);
    g->layout = FK__NHWC;
    if (!rc) rc = load_weights(&L, json_object_get(L.root, "weightsManifest"));
    if (!rc) rc = read_nodes(&L);
    if (!rc) rc = make_tensors(&L);
    if (!rc) rc = count_uses(&L);
    for (int i = 0; i < L.nn && !rc; i++) {
        L.cur = &L.nodes[i];
        if (strcmp(L.cur->op, "Const") && strcmp(L.cur->op, "Placeholder") && strcmp(L.cur->op, "NoOp"))
            rc = convert(&L, L.cur);
    }
    L.cur = NULL;
    if (!rc) rc = outputs(&L);
    if (!rc && g->n_inputs == 0) rc = fail(&L, FK_EFORMAT, "the graph has no Placeholder input");

    for (int i = 0; i < L.nn; i++) fk__free((void *)L.nodes[i].in);
    fk__free(L.nodes);
    fk__free(L.uses);
    json_decref(L.root);
    return rc;
}
