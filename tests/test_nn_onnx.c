/*
 * test_nn_onnx.c — the ONNX front-end (src/nn/onnx.c): loads every faceplugin model into a fk__graph and
 * checks inputs, outputs and op counts (and prints the op table per model); builds tiny models with
 * protobuf-c's pack API to check op conversions and errors (unsupported op, opset, external data, bad raw
 * data); feeds truncated and bit-flipped files and injects allocation failures, which must give an error
 * (never a crash, never a leak); corrupted files that still load are also opened (prepared) and run once. Run it under ASan too (-DFK_SANITIZE=ON).
 */
#include "fk_test.h"
#include "nn/graph.h"
#include "onnx.pb-c.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *models_dir(void) {
    const char *d = getenv("FK_MODELS_DIR");
    return d && *d ? d : "models";
}

static char g_tmp[512];

static const char *tmp_path(const char *leaf) {
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", g_tmp, leaf);
    return p;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Loads PATH into a fresh graph; *G must be freed by the caller (also on error). */
static int load(fk__graph *g, const char *path) {
    int rc = fk__graph_init(g, path, "onnx");
    if (rc) return rc;
    return fk__onnx_load(g, path);
}

/* ---- the faceplugin models ----------------------------------------------------------------------- */

typedef struct model_expect {
    const char *name;
    int64_t in_dims[4];
    int n_out;
} model_expect;

static const model_expect g_models[] = {
    {"fr_detect", {1, 3, 240, 320}, 2}, {"fr_landmark", {1, 1, 64, 64}, 1},  {"fr_feature", {1, 3, 112, 112}, 1},
    {"fr_liveness", {1, 3, 128, 128}, 1}, {"fr_pose", {1, 3, 224, 224}, 3},   {"fr_age", {1, 3, 64, 64}, 9},
    {"fr_gender", {1, 3, 64, 64}, 9},   {"fr_eye", {1, 1, 24, 24}, 1},      {"fr_expression", {1, 3, 224, 224}, 1},
};

static void test_models(void) {
    printf("op table (internal ops after conversion; Constant nodes became constants):\n");
    for (size_t m = 0; m < FK__ARRAY_LEN(g_models); m++) {
        char path[700];
        snprintf(path, sizeof path, "%s/faceplugin/%s.onnx", models_dir(), g_models[m].name);
        size_t base = fk_mem_in_use();
        fk__graph g;
        int rc = load(&g, path);
        if (rc) fprintf(stderr, "%s\n", g.err);
        FK_CHECK_INT(rc, FK_OK);
        FK_CHECK_INT(g.n_inputs, 1);
        if (g.n_inputs == 1) {
            const fk__tensor *t = &g.t[g.inputs[0]];
            FK_CHECK_STR(t->name, "input");
            FK_CHECK_INT(t->kind, FK__T_INPUT);
            FK_CHECK_INT(t->rank, 4);
            for (int i = 0; i < 4; i++) FK_CHECK_INT(t->dims[i], g_models[m].in_dims[i]);
        }
        FK_CHECK_INT(g.n_outputs, g_models[m].n_out);
        for (int i = 0; i < g.n_outputs; i++) FK_CHECK(g.t[g.outputs[i]].is_output);
        FK_CHECK(g.nn > 0);
        int counts[FK__OP_COUNT] = {0}, n_const = 0;
        for (int i = 0; i < g.nn; i++) {
            FK_CHECK(g.n[i].op >= 0 && g.n[i].op < FK__OP_COUNT);
            for (int k = 0; k < g.n[i].n_in; k++) FK_CHECK(g.n[i].in[k] >= -1 && g.n[i].in[k] < g.nt);
            counts[g.n[i].op]++;
        }
        for (int i = 0; i < g.nt; i++) n_const += g.t[i].kind == FK__T_CONST;
        printf("  %-14s %4d nodes %4d tensors (%d const):", g_models[m].name, g.nn, g.nt, n_const);
        for (int op = 0; op < FK__OP_COUNT; op++)
            if (counts[op]) printf(" %s %d", fk__op_name(op), counts[op]);
        printf("\n");
        fk__graph_free(&g);
        FK_CHECK_INT(fk_mem_in_use(), base);
    }
}

/* ---- tiny models built with protobuf-c --------------------------------------------------------- */

/* Everything the builder allocates, freed by mb_reset (LeakSanitizer watches the test too). */
static void *g_mb_ptrs[4096];
static int g_mb_n;

static void *mb_alloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p || g_mb_n == (int)FK__ARRAY_LEN(g_mb_ptrs)) abort(); /* test-only: a broken test machine */
    g_mb_ptrs[g_mb_n++] = p;
    return p;
}

static char *mb_str(const char *s) {
    char *p = mb_alloc(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

static Onnx__ModelProto *g_mb;

static void mb_reset(void) {
    for (int i = 0; i < g_mb_n; i++) free(g_mb_ptrs[i]);
    g_mb_n = 0;
    g_mb = NULL;
}

#define MB_GROW(arr, n, type) \
    do { \
        type *na_ = mb_alloc(((n) + 1) * sizeof(type)); \
        if (n) memcpy(na_, arr, (n) * sizeof(type)); \
        arr = na_; \
    } while (0)

static void mb_begin(int opset) {
    mb_reset();
    g_mb = mb_alloc(sizeof *g_mb);
    onnx__model_proto__init(g_mb);
    g_mb->has_ir_version = 1;
    g_mb->ir_version = 7;
    Onnx__OperatorSetIdProto *o = mb_alloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = mb_str("");
    o->has_version = 1;
    o->version = opset;
    g_mb->opset_import = mb_alloc(sizeof(void *));
    g_mb->opset_import[0] = o;
    g_mb->n_opset_import = 1;
    g_mb->graph = mb_alloc(sizeof *g_mb->graph);
    onnx__graph_proto__init(g_mb->graph);
    g_mb->graph->name = mb_str("test");
}

static Onnx__ValueInfoProto *mb_value(const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = mb_alloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = mb_str(name);
    if (rank >= 0) {
        Onnx__TypeProto *tp = mb_alloc(sizeof *tp);
        onnx__type_proto__init(tp);
        Onnx__TypeProto__Tensor *tt = mb_alloc(sizeof *tt);
        onnx__type_proto__tensor__init(tt);
        tt->has_elem_type = 1;
        tt->elem_type = 1;
        tt->shape = mb_alloc(sizeof *tt->shape);
        onnx__tensor_shape_proto__init(tt->shape);
        tt->shape->dim = mb_alloc((size_t)(rank + 1) * sizeof(void *));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] < 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = mb_str("batch");
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            tt->shape->dim[i] = d;
        }
        tt->shape->n_dim = (size_t)rank;
        tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp->tensor_type = tt;
        v->type = tp;
    }
    return v;
}

static void mb_input(const char *name, int rank, const int64_t *dims) {
    Onnx__GraphProto *g = g_mb->graph;
    MB_GROW(g->input, g->n_input, Onnx__ValueInfoProto *);
    g->input[g->n_input++] = mb_value(name, rank, dims);
}

static void mb_output(const char *name) {
    Onnx__GraphProto *g = g_mb->graph;
    MB_GROW(g->output, g->n_output, Onnx__ValueInfoProto *);
    g->output[g->n_output++] = mb_value(name, -1, NULL);
}

static Onnx__TensorProto *mb_tensor(const char *name, int dtype, int rank, const int64_t *dims, const void *raw,
                                    size_t raw_len) {
    Onnx__TensorProto *t = mb_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = mb_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->dims = mb_alloc((size_t)(rank + 1) * sizeof(int64_t));
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->n_dims = (size_t)rank;
    t->has_raw_data = 1;
    t->raw_data.len = raw_len;
    t->raw_data.data = mb_alloc(raw_len);
    memcpy(t->raw_data.data, raw, raw_len);
    return t;
}

static Onnx__TensorProto *mb_init(const char *name, int dtype, int rank, const int64_t *dims, const void *raw,
                                  size_t raw_len) {
    Onnx__GraphProto *g = g_mb->graph;
    MB_GROW(g->initializer, g->n_initializer, Onnx__TensorProto *);
    return g->initializer[g->n_initializer++] = mb_tensor(name, dtype, rank, dims, raw, raw_len);
}

static Onnx__NodeProto *mb_node(const char *op, const char *name, const char *ins, const char *outs) {
    Onnx__GraphProto *g = g_mb->graph;
    Onnx__NodeProto *n = mb_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_str(op);
    n->name = mb_str(name);
    /* INS / OUTS: comma-separated names ("x,,w" has an empty optional input) */
    const char *lists[2] = {ins, outs};
    for (int k = 0; k < 2; k++) {
        char **arr = NULL;
        size_t cnt = 0;
        const char *s = lists[k];
        while (s && *s) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            char *nm = mb_alloc(len + 1);
            memcpy(nm, s, len);
            MB_GROW(arr, cnt, char *);
            arr[cnt++] = nm;
            s = e ? e + 1 : NULL;
        }
        if (k == 0) n->input = arr, n->n_input = cnt;
        else n->output = arr, n->n_output = cnt;
    }
    MB_GROW(g->node, g->n_node, Onnx__NodeProto *);
    g->node[g->n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mb_attr(Onnx__NodeProto *n, const char *name, int type) {
    Onnx__AttributeProto *a = mb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_str(name);
    a->has_type = 1;
    a->type = type;
    MB_GROW(n->attribute, n->n_attribute, Onnx__AttributeProto *);
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void mb_attr_i(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = mb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void mb_attr_f(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = mb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void mb_attr_ints(Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = mb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->ints = mb_alloc((size_t)(cnt + 1) * sizeof(int64_t));
    for (int i = 0; i < cnt; i++) a->ints[i] = v[i];
    a->n_ints = (size_t)cnt;
}

static void mb_attr_s(Onnx__NodeProto *n, const char *name, const char *s) {
    Onnx__AttributeProto *a = mb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)mb_str(s);
    a->s.len = strlen(s);
}

static void mb_attr_t(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t) {
    Onnx__AttributeProto *a = mb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

/* Packs the model under construction to FILE in the temp dir; returns its path. */
static const char *mb_write(const char *leaf) {
    size_t len = onnx__model_proto__get_packed_size(g_mb);
    uint8_t *buf = mb_alloc(len);
    onnx__model_proto__pack(g_mb, buf);
    const char *p = tmp_path(leaf);
    if (write_all(p, buf, len)) fprintf(stderr, "cannot write %s\n", p);
    return p;
}

static const fk__node *find_node(const fk__graph *g, const char *name) {
    for (int i = 0; i < g->nn; i++)
        if (!strcmp(g->n[i].name, name)) return &g->n[i];
    return NULL;
}

static const int64_t k_x4[4] = {1, 3, 4, 4};

/* Loads PATH expecting failure with STATUS and an error naming the file and each of NEEDLES. */
static void expect_error(const char *path, int status, const char *n1, const char *n2) {
    size_t base = fk_mem_in_use();
    fk__graph g;
    int rc = load(&g, path);
    FK_CHECK_INT(rc, status);
    FK_CHECK(strstr(g.err, path) != NULL);
    if (n1) FK_CHECK(strstr(g.err, n1) != NULL);
    if (n2) FK_CHECK(strstr(g.err, n2) != NULL);
    if (getenv("FK_TEST_VERBOSE")) printf("  error: %s\n", g.err);
    fk__graph_free(&g);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

static void test_errors(void) {
    /* a missing file, an empty file, a file that is not protobuf */
    expect_error(tmp_path("does-not-exist.onnx"), FK_ENOTFOUND, "cannot open", NULL);
    write_all(tmp_path("empty.onnx"), "", 0);
    expect_error(tmp_path("empty.onnx"), FK_EFORMAT, "empty", NULL);
    const char text[] = "this is not an ONNX model\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    write_all(tmp_path("text.onnx"), text, sizeof text);
    expect_error(tmp_path("text.onnx"), FK_EFORMAT, "not an ONNX model", NULL);
    /* a well-formed protobuf that is not a model: no graph */
    mb_begin(11);
    g_mb->graph = NULL;
    expect_error(mb_write("nograph.onnx"), FK_EFORMAT, "no graph", NULL);

    /* an unsupported op names the op type and the node */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    mb_node("Relu", "relu_1", "x", "r");
    mb_node("FooBar", "my_foo_node", "r", "y");
    mb_output("y");
    expect_error(mb_write("foobar.onnx"), FK_EUNSUPPORTED, "FooBar", "my_foo_node");

    /* another domain */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    Onnx__NodeProto *n = mb_node("Relu", "ms_relu", "x", "y");
    n->domain = mb_str("com.microsoft");
    mb_output("y");
    expect_error(mb_write("domain.onnx"), FK_EUNSUPPORTED, "com.microsoft", "ms_relu");

    /* opsets outside 9..17 */
    int bad_opsets[2] = {8, 18};
    for (int i = 0; i < 2; i++) {
        mb_begin(bad_opsets[i]);
        mb_input("x", 4, k_x4);
        mb_node("Relu", "r", "x", "y");
        mb_output("y");
        char num[16];
        snprintf(num, sizeof num, "opset %d", bad_opsets[i]);
        expect_error(mb_write("opset.onnx"), FK_EUNSUPPORTED, num, NULL);
    }

    /* raw data shorter than its dims say: names the tensor */
    float w[3] = {1, 2, 3};
    int64_t wd[1] = {4};
    mb_begin(11);
    mb_input("x", 4, k_x4);
    mb_init("short_weight", 1, 1, wd, w, sizeof w);
    mb_node("Mul", "m", "x,short_weight", "y");
    mb_output("y");
    expect_error(mb_write("short.onnx"), FK_EFORMAT, "short_weight", "raw data");

    /* external data */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    Onnx__TensorProto *t = mb_init("ext_weight", 1, 1, wd, w, 0);
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    mb_node("Mul", "m", "x,ext_weight", "y");
    mb_output("y");
    expect_error(mb_write("external.onnx"), FK_EUNSUPPORTED, "ext_weight", "external");

    /* an unsupported data type */
    uint8_t bytes[4] = {1, 2, 3, 4};
    mb_begin(11);
    mb_input("x", 4, k_x4);
    mb_init("u8_weight", 2, 1, wd, bytes, 4);
    mb_node("Mul", "m", "x,u8_weight", "y");
    mb_output("y");
    expect_error(mb_write("u8.onnx"), FK_EUNSUPPORTED, "u8_weight", "data type 2");

    /* a node reading a tensor nobody defines, a graph output nobody produces */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    mb_node("Add", "adder", "x,ghost", "y");
    mb_output("y");
    expect_error(mb_write("undefined.onnx"), FK_EFORMAT, "ghost", "adder");
    mb_begin(11);
    mb_input("x", 4, k_x4);
    mb_node("Relu", "r", "x", "y");
    mb_output("nowhere");
    expect_error(mb_write("noout.onnx"), FK_EFORMAT, "nowhere", NULL);

    /* bad attributes: stride 0, a permutation that is not one, a non-constant Unsqueeze axes input */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    n = mb_node("MaxPool", "pool0", "x", "y");
    int64_t k2[2] = {2, 2}, s0[2] = {0, 1};
    mb_attr_ints(n, "kernel_shape", 2, k2);
    mb_attr_ints(n, "strides", 2, s0);
    mb_output("y");
    expect_error(mb_write("stride0.onnx"), FK_EFORMAT, "pool0", "strides");
    mb_begin(11);
    mb_input("x", 4, k_x4);
    n = mb_node("Transpose", "tr0", "x", "y");
    int64_t perm[4] = {0, 1, 1, 3};
    mb_attr_ints(n, "perm", 4, perm);
    mb_output("y");
    expect_error(mb_write("perm.onnx"), FK_EFORMAT, "tr0", "perm");
    mb_begin(13);
    mb_input("x", 4, k_x4);
    mb_input("ax", 1, wd);
    mb_node("Unsqueeze", "unsq0", "x,ax", "y");
    mb_output("y");
    expect_error(mb_write("unsq.onnx"), FK_EUNSUPPORTED, "unsq0", "constant");
    mb_reset();
}

/* Conversions: attribute and input forms end up as graph.h says. */
static void test_conversions(void) {
    fk__graph g;
    int64_t one[1] = {1}, two[1] = {2}, c3[1] = {3};

    /* opset 13: Unsqueeze/Squeeze/Split axes and sizes as constant inputs become attributes */
    mb_begin(13);
    mb_input("x", 4, k_x4);
    int64_t ax[1] = {0}, sp[2] = {1, 2};
    mb_init("ax0", 7, 1, one, ax, sizeof ax);
    mb_init("sp", 7, 1, two, sp, sizeof sp);
    mb_node("Split", "split0", "x,sp", "a,b");
    mb_node("Unsqueeze", "unsq0", "a,ax0", "u");
    mb_node("Squeeze", "sq0", "u,ax0", "s");
    mb_output("s");
    mb_output("b");
    FK_CHECK_INT(load(&g, mb_write("conv13.onnx")), FK_OK);
    const fk__node *nd = find_node(&g, "split0");
    FK_CHECK(nd && nd->op == FK__OP_SPLIT && nd->n_in == 1 && nd->n_out == 2 && nd->a.n_split == 2 &&
             nd->a.split[0] == 1 && nd->a.split[1] == 2 && nd->a.axis == 0);
    nd = find_node(&g, "unsq0");
    FK_CHECK(nd && nd->op == FK__OP_UNSQUEEZE && nd->n_in == 1 && nd->a.n_axes == 1 && nd->a.axes[0] == 0);
    nd = find_node(&g, "sq0");
    FK_CHECK(nd && nd->op == FK__OP_SQUEEZE && nd->n_in == 1 && nd->a.n_axes == 1);
    FK_CHECK_INT(g.n_outputs, 2);
    fk__graph_free(&g);

    /* opset 11: Pad and Clip inputs; Softmax axis 1 becomes Shape+Flatten+Softmax+Reshape; Dropout */
    mb_begin(11);
    mb_input("x", 4, k_x4);
    int64_t pads[8] = {0, 0, 1, 2, 0, 0, 3, 4}, eight[1] = {8};
    float lo = 0.0f, hi = 6.0f, pv = 0.5f;
    mb_init("pads", 7, 1, eight, pads, sizeof pads);
    mb_init("lo", 1, 0, NULL, &lo, 4);
    mb_init("hi", 1, 0, NULL, &hi, 4);
    mb_init("pv", 1, 0, NULL, &pv, 4);
    Onnx__NodeProto *n = mb_node("Pad", "pad0", "x,pads,pv", "p");
    mb_attr_s(n, "mode", "reflect");
    mb_node("Clip", "clip0", "p,lo,hi", "c");
    mb_node("Clip", "clip1", "c,,hi", "c1");
    mb_node("Dropout", "drop0", "c1", "d");
    n = mb_node("Softmax", "sm0", "d", "y");
    mb_attr_i(n, "axis", 1);
    n = mb_node("Softmax", "sm1", "d", "y2");
    mb_attr_i(n, "axis", -1);
    mb_output("y");
    mb_output("y2");
    FK_CHECK_INT(load(&g, mb_write("conv11.onnx")), FK_OK);
    nd = find_node(&g, "pad0");
    FK_CHECK(nd && nd->op == FK__OP_PAD && nd->n_in == 1 && nd->a.n_pads_nd == 8 && nd->a.pads_nd[2] == 1 &&
             nd->a.pads_nd[7] == 4 && nd->a.pad_mode == FK__PAD_REFLECT && nd->a.pad_value == 0.5f);
    nd = find_node(&g, "clip0");
    FK_CHECK(nd && nd->op == FK__OP_CLIP && nd->n_in == 1 && nd->a.clip_min == 0.0f && nd->a.clip_max == 6.0f);
    nd = find_node(&g, "clip1");
    FK_CHECK(nd && nd->a.clip_min < -1e38f && nd->a.clip_max == 6.0f);
    nd = find_node(&g, "drop0");
    FK_CHECK(nd && nd->op == FK__OP_IDENTITY);
    nd = find_node(&g, "sm0");
    FK_CHECK(nd && nd->op == FK__OP_SOFTMAX && nd->a.axis == 1);
    FK_CHECK(find_node(&g, "sm0::flatten") && find_node(&g, "sm0::reshape") && find_node(&g, "sm0::shape"));
    nd = find_node(&g, "sm1");
    FK_CHECK(nd && nd->op == FK__OP_SOFTMAX && nd->a.axis == -1 && nd->out[0] == fk__graph_find(&g, "y2"));
    fk__graph_free(&g);

    /* opset 9: BatchNormalization folds to scale/shift; Slice attributes; Conv attributes; Constant;
     * an IR-3 style graph input that is an initializer stays a constant; an unknown batch dim becomes 1 */
    mb_begin(9);
    int64_t xd[4] = {-1, 3, 4, 4};
    mb_input("x", 4, xd);
    float gam[3] = {1, 2, 3}, bet[3] = {0.5f, 0, -1}, mean[3] = {0, 1, 2}, var[3] = {1, 4, 0.25f};
    mb_init("gamma", 1, 1, c3, gam, sizeof gam);
    mb_init("beta", 1, 1, c3, bet, sizeof bet);
    mb_init("mean", 1, 1, c3, mean, sizeof mean);
    mb_init("var", 1, 1, c3, var, sizeof var);
    mb_input("gamma", 1, c3);
    n = mb_node("BatchNormalization", "bn0", "x,gamma,beta,mean,var", "b");
    mb_attr_f(n, "epsilon", 0.0f);
    float wv[3 * 3 * 2 * 2] = {0};
    int64_t wdims[4] = {3, 3, 2, 2};
    mb_init("w", 1, 4, wdims, wv, sizeof wv);
    n = mb_node("Conv", "conv0", "b,w", "cv");
    int64_t cpads[4] = {0, 1, 0, 1}, cstr[2] = {2, 1};
    mb_attr_ints(n, "pads", 4, cpads);
    mb_attr_ints(n, "strides", 2, cstr);
    n = mb_node("Slice", "slice0", "cv", "sl");
    int64_t st[1] = {1}, en[1] = {INT64_MAX}, sax[1] = {-1};
    mb_attr_ints(n, "starts", 1, st);
    mb_attr_ints(n, "ends", 1, en);
    mb_attr_ints(n, "axes", 1, sax);
    float cv = 2.0f;
    n = mb_node("Constant", "const0", "", "k");
    mb_attr_t(n, "value", mb_tensor("k", 1, 0, NULL, &cv, 4));
    mb_node("Mul", "", "sl,k", "y");
    mb_output("y");
    FK_CHECK_INT(load(&g, mb_write("conv9.onnx")), FK_OK);
    FK_CHECK_INT(g.n_inputs, 1);
    FK_CHECK_INT(g.t[g.inputs[0]].dims[0], 1);
    nd = find_node(&g, "bn0");
    FK_CHECK(nd && nd->op == FK__OP_BATCH_NORM && nd->n_in == 3);
    if (nd && nd->n_in == 3) {
        const float *sc = g.t[nd->in[1]].data, *sh = g.t[nd->in[2]].data;
        FK_CHECK_NEAR(sc[1], 1.0, 1e-6);  /* 2 / sqrt(4) */
        FK_CHECK_NEAR(sh[1], -1.0, 1e-6); /* 0 - 1 * 1 */
        FK_CHECK_NEAR(sc[2], 6.0, 1e-6);  /* 3 / sqrt(0.25) */
        FK_CHECK_NEAR(sh[2], -13.0, 1e-5);
    }
    nd = find_node(&g, "conv0");
    FK_CHECK(nd && nd->op == FK__OP_CONV && nd->a.kernel[0] == 2 && nd->a.kernel[1] == 2 && nd->a.pads[1] == 1 &&
             nd->a.pads[3] == 1 && nd->a.stride[0] == 2 && nd->a.stride[1] == 1 && nd->a.layout == FK__NCHW);
    nd = find_node(&g, "slice0");
    FK_CHECK(nd && nd->op == FK__OP_SLICE && nd->n_in == 1 && nd->a.s_n == 1 && nd->a.s_starts[0] == 1 &&
             nd->a.s_ends[0] == INT64_MAX && nd->a.s_axes[0] == -1 && nd->a.s_steps[0] == 1);
    int k = fk__graph_find(&g, "k");
    FK_CHECK(k >= 0 && g.t[k].kind == FK__T_CONST && g.t[k].rank == 0 && ((float *)g.t[k].data)[0] == 2.0f);
    FK_CHECK(find_node(&g, "Mul_4") != NULL); /* unnamed nodes get "<op>_<index>" */
    fk__graph_free(&g);
    mb_reset();
}

/* ---- corrupted files and allocation failures --------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* Opens a model through the public API and runs it once on zeros: any status is fine, but an open error
 * must name the file and nothing may leak. Returns 10 ran, 11 opened but the run failed cleanly, 12 open
 * failed cleanly, 13 bad error message or leak. */
static int g_n_opened, g_n_ran;

static int open_and_run(const char *p) {
    size_t base = fk_mem_in_use();
    fk_nn_model_t *m = NULL;
    int rc = fk_nn_model_open(p, NULL, &m), code = 12;
    if (rc == FK_OK) {
        code = 11;
        fk_nn_session_t *s = NULL;
        int ni = fk_nn_model_input_count(m), no = fk_nn_model_output_count(m);
        float *ins[8] = {0}, *outs[64] = {0};
        int sized = ni <= 8 && no <= 64;
        for (int i = 0; sized && i < ni; i++) sized = (ins[i] = calloc(fk_nn_model_input_numel(m, i) + 1, 4)) != NULL;
        for (int i = 0; sized && i < no; i++) sized = (outs[i] = calloc(fk_nn_model_output_numel(m, i) + 1, 4)) != NULL;
        if (sized && fk_nn_session_create(m, 1, &s) == FK_OK) {
            if (fk_nn_session_run(s, (const float *const *)ins, outs) == FK_OK) code = 10;
            fk_nn_session_destroy(s);
        }
        for (int i = 0; i < 8; i++) free(ins[i]);
        for (int i = 0; i < 64; i++) free(outs[i]);
    } else if (m && !strstr(fk_nn_model_errmsg(m), p)) {
        fprintf(stderr, "open error does not name the file: %s\n", fk_nn_model_errmsg(m));
        code = 13;
    }
    fk_nn_model_close(m);
    if (fk_mem_in_use() != base) code = 13;
    if (code == 10 || code == 11) g_n_opened++;
    if (code == 10) g_n_ran++;
    return code;
}

/* Loads a corrupted copy: must return an error (with a message naming the file) or load; never crash. */
static int load_corrupt(const unsigned char *data, size_t len, int *n_ok) {
    const char *p = tmp_path("corrupt.onnx");
    if (write_all(p, data, len)) return 0;
    size_t base = fk_mem_in_use();
    fk__graph g;
    int rc = load(&g, p);
    int good = 1;
    if (rc == FK_OK) {
        (*n_ok)++;
        /* it loaded: the whole pipeline (prepare, plan, a run on zeros) must cope with it too */
        int64_t in_numel = 0;
        for (int i = 0; i < g.n_inputs; i++) in_numel += fk__tensor_numel(&g.t[g.inputs[i]]);
        fk__graph_free(&g);
        if (in_numel <= (1 << 22)) good = open_and_run(p) != 13;
        if (fk_mem_in_use() != base) good = 0;
        return good;
    } else if (!strstr(g.err, p) || rc >= 0) {
        fprintf(stderr, "bad error (%d) for a corrupted file: %s\n", rc, g.err);
        good = 0;
    }
    fk__graph_free(&g);
    if (fk_mem_in_use() != base) good = 0;
    return good;
}

static void test_corruption(const char *model) {
    char path[700];
    snprintf(path, sizeof path, "%s/faceplugin/%s.onnx", models_dir(), model);
    size_t len;
    unsigned char *data = read_all(path, &len);
    FK_CHECK(data != NULL);
    if (!data) return;
    unsigned char *copy = malloc(len);
    int bad = 0, n_ok = 0, tries = 0;
    /* truncations: every offset in the first KiB (headers, the first nodes), then spread over the file */
    for (size_t cut = 0; cut < len; cut += cut < 1024 ? 1 : 97 + rnd() % 600) {
        bad += !load_corrupt(data, cut, &n_ok);
        tries++;
    }
    printf("  %s: %d truncations, %d loaded anyway\n", model, tries, n_ok);
    g_n_opened = g_n_ran = 0;
    /* bit flips and byte overwrites at random offsets, one or a few per file */
    n_ok = 0;
    int flips = 1500;
    for (int i = 0; i < flips; i++) {
        memcpy(copy, data, len);
        int nflip = 1 + (int)(rnd() % 3);
        for (int k = 0; k < nflip; k++) {
            size_t off = (size_t)(i < 500 ? rnd() % (len < 8192 ? len : 8192) : rnd() % len);
            unsigned char mask = (unsigned char)(rnd() % 3 == 0 ? 0xff : 1u << (rnd() % 8));
            copy[off] ^= mask;
        }
        bad += !load_corrupt(copy, len, &n_ok);
    }
    printf("  %s: %d corrupted copies, %d loaded anyway, %d of them opened (prepared), %d ran\n", model, flips,
           n_ok, g_n_opened, g_n_ran);
    FK_CHECK_INT(bad, 0);
    free(copy);
    free(data);
}

/* Runs test_corruption(MODEL) in a child process: a crash anywhere (loader, prepare, kernels) is reported
 * with the corrupted file that caused it, kept for the engineer who owns the failing layer. */
static void test_corruption_isolated(const char *model) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        test_corruption(model);
        fflush(NULL);
        _exit(fk_t_fail ? 1 : 0);
    }
    int st = 0;
    int code = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 0 || code == 1) {
        FK_CHECK_INT(code, 0); /* the child printed what failed */
        return;
    }
    char keep[700];
    snprintf(keep, sizeof keep, "%s/../fk_onnx_crash_%d_%s.onnx", g_tmp, (int)getpid(), model);
    size_t len;
    unsigned char *d = read_all(tmp_path("corrupt.onnx"), &len);
    if (d) write_all(keep, d, len);
    free(d);
    fprintf(stderr, "CRASH (%s %d) loading/opening/running a corrupted copy of %s: kept as %s\n",
            WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : code, model, keep);
    FK_CHECK(!"a corrupted model crashed the process");
}

/* A Conv whose bias is a graph input (not a constant: IR-4 models may list an override this way), then a
 * BatchNormalization: prepare must not fold the BN into the bias as if it were constant data. Run in a
 * child; y = 2x + b + 0.5 for x = 1..4, b = 1. Found by the corrupted-file runs above (fr_age with an
 * initializer name changed). */
static int conv_bias_input_child(const char *p) {
    fk_nn_model_t *m = NULL;
    if (fk_nn_model_open(p, NULL, &m) != FK_OK) {
        fprintf(stderr, "%s\n", fk_nn_model_errmsg(m));
        fk_nn_model_close(m);
        return 12;
    }
    int bi = !strcmp(fk_nn_model_input_name(m, 0), "b") ? 0 : 1;
    float x[4] = {1, 2, 3, 4}, b[1] = {1}, y[4] = {0};
    const float *ins[2];
    ins[bi] = b;
    ins[1 - bi] = x;
    float *outs[1] = {y};
    fk_nn_session_t *s = NULL;
    int code = 11;
    if (fk_nn_session_create(m, 1, &s) == FK_OK && fk_nn_session_run(s, ins, outs) == FK_OK) {
        code = 10;
        for (int i = 0; i < 4; i++)
            if (fabsf(y[i] - (2 * x[i] + 1.5f)) > 1e-5f) code = 14;
    }
    fk_nn_session_destroy(s);
    fk_nn_model_close(m);
    return code;
}

static void test_conv_bias_input_bn(void) {
    mb_begin(11);
    int64_t xd[4] = {1, 1, 2, 2}, one[1] = {1}, wd[4] = {1, 1, 1, 1};
    mb_input("x", 4, xd);
    mb_input("b", 1, one);
    float w = 2, gam = 1, bet = 0.5f, mean = 0, var = 1;
    mb_init("w", 1, 4, wd, &w, 4);
    mb_init("gamma", 1, 1, one, &gam, 4);
    mb_init("beta", 1, 1, one, &bet, 4);
    mb_init("mean", 1, 1, one, &mean, 4);
    mb_init("var", 1, 1, one, &var, 4);
    mb_node("Conv", "conv_b", "x,w,b", "c");
    Onnx__NodeProto *n = mb_node("BatchNormalization", "bn_b", "c,gamma,beta,mean,var", "y");
    mb_attr_f(n, "epsilon", 0.0f);
    mb_output("y");
    const char *p = mb_write("conv_bias_input.onnx");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(conv_bias_input_child(p));
    int st = 0;
    int code = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code != 10)
        fprintf(stderr, "Conv with a graph-input bias + BatchNormalization: %s (child status %d)%s\n",
                code == 14 ? "wrong result" : code == 12 || code == 11 ? "clean error" : "CRASH", code,
                code < 0 || code == 1 ? " — prepare.c fold_batch_norm folds into a non-constant Conv bias "
                                        "(t->data is NULL for a graph input)" : "");
    FK_CHECK(code == 10 || code == 12); /* runs correctly, or refuses cleanly */
    mb_reset();
}

/* Fails allocation N = 1, 2, ... during load: each must report FK_ENOMEM and leave nothing allocated, until
 * the load needs fewer allocations than N and succeeds. */
static void test_alloc_failures(const char *path, int stride) {
    size_t base = fk_mem_in_use();
    int failures = 0, bad = 0;
    long n;
    for (n = 1;; n += (n < 200 ? 1 : stride)) {
        fk__graph g;
        fk__alloc_fail_at(n);
        int rc = load(&g, path);
        fk__alloc_fail_at(0);
        if (rc == FK_OK) {
            fk__graph_free(&g);
            break;
        }
        failures++;
        if (rc != FK_ENOMEM) {
            fprintf(stderr, "allocation %ld failed: status %d, %s\n", n, rc, g.err);
            bad++;
        }
        fk__graph_free(&g);
        if (fk_mem_in_use() != base) {
            fprintf(stderr, "allocation %ld failed: %zu bytes leaked\n", n, fk_mem_in_use() - base);
            bad++;
        }
        if (bad > 5) break;
    }
    printf("  %s: %d injected allocation failures (last N=%ld)\n", path, failures, n);
    FK_CHECK(failures > 10);
    FK_CHECK_INT(bad, 0);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/fk_test_nn_onnx.%d", t && *t ? t : "/tmp", (int)getpid());
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_tmp);
    if (system(cmd) != 0) return 1;

    test_models();
    test_errors();
    test_conversions();
    printf("corrupted files:\n");
    test_conv_bias_input_bn();
    test_corruption_isolated("fr_eye");
    test_corruption_isolated("fr_age");
    printf("allocation failures:\n");
    char path[700];
    snprintf(path, sizeof path, "%s/faceplugin/fr_eye.onnx", models_dir());
    test_alloc_failures(path, 1);
    snprintf(path, sizeof path, "%s/faceplugin/fr_age.onnx", models_dir());
    test_alloc_failures(path, 7);
    /* the tiny model with every conversion path */
    mb_begin(9);
    mb_reset();

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_tmp);
    return fk_t_finish();
}
