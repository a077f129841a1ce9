/*
 * test_nn_graph.c — what fk__graph_prepare does to a graph and what the public NN API promises:
 * constant folding of an ONNX shape subgraph for the input size in use, batch-norm folding and activation
 * fusion (results equal to the unfused graph), Identity and dead-node removal, the memory plan (buffers
 * reused, views aliased), out-of-memory at every allocation of prepare/open/session create (FK_ENOMEM, no
 * crash, no leak), a session run that allocates nothing, error handles for missing and garbage files,
 * .npy reading/writing with strict validation, and the real models: fr_landmark through the public API
 * and fr_detect at 480x640.
 */
#include "nn_tgraph.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static const char *models_dir(void) {
    const char *d = getenv("FK_MODELS_DIR");
    return d && *d ? d : "models";
}

static int count_op(const fk__graph *g, int op) {
    int c = 0;
    for (int i = 0; i < g->nn; i++) c += g->n[i].op == op;
    return c;
}

/* x[1,2,3,4] -> Shape -> Gather(0) -> Unsqueeze -> Concat(.., [-1]) -> Reshape(x, ..) -> [N, rest] */
static void build_shape_chain(void) {
    tg_begin();
    int x = tg_in(DIMS(1, 2, 3, 4));
    int s, g0, u, c, r;
    tg_node(FK__OP_SHAPE, 1, &x, &s);
    int gin[2] = {s, tg_consti(0, NULL, IV(0))};
    tg_node(FK__OP_GATHER, 2, gin, &g0);
    fk__node *n = tg_node(FK__OP_UNSQUEEZE, 1, &g0, &u);
    n->a.n_axes = 1;
    n->a.axes[0] = 0;
    int cin[2] = {u, tg_consti(DIMS(1), IV(-1))};
    n = tg_node(FK__OP_CONCAT, 2, cin, &c);
    n->a.axis = 0;
    int rin[2] = {x, c};
    tg_node(FK__OP_RESHAPE, 2, rin, &r);
    tg_output(r);
}

static void test_fold_shape_chain(void) {
    build_shape_chain();
    /* at another input size: [2, 2, 3, 5] -> [2, 30] */
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.use_reference = 1;
    const int64_t d[4] = {2, 2, 3, 5};
    const int64_t *dims[1] = {d};
    o.input_dims = dims;
    fk_nn_model_t *m = NULL;
    FK_CHECK_INT(fk__nn_model_from_graph(&tg, &o, &m), FK_OK);
    const fk__graph *g = fk__nn_model_graph(m);
    FK_CHECK_INT(g->nn, 1);
    FK_CHECK_INT(count_op(g, FK__OP_RESHAPE), 1);
    FK_CHECK_INT(fk_nn_model_op_count(m, FK__OP_SHAPE, 0), 1);
    FK_CHECK_INT(fk_nn_model_op_count(m, FK__OP_SHAPE, 1), 0);
    check_shape(m, 0, 2, (int64_t[]){2, 30});
    /* the reshape is a view of the input: no arena bytes */
    FK_CHECK(g->t[g->n[0].out[0]].alias_of >= 0);
    float x[60], y[60];
    for (int i = 0; i < 60; i++) x[i] = (float)i * 0.5f;
    fk_nn_session_t *s = NULL;
    FK_CHECK_INT(fk_nn_session_create(m, 1, &s), FK_OK);
    const float *ins[1] = {x};
    float *outs[1] = {y};
    FK_CHECK_INT(fk_nn_session_run(s, ins, outs), FK_OK);
    check_vals("reshape view", y, x, 60, 0);
    fk_nn_session_destroy(s);
    fk_nn_model_close(m);
}

/* x -> Conv -> BatchNorm -> Relu -> y ; EXTRA = 1 also exposes the intermediates, which blocks fusion */
static void build_conv_bn_relu(int extra, int act_op) {
    tg_begin();
    int x = tg_in(DIMS(1, 2, 3, 3));
    float w[2 * 2 * 3 * 3];
    for (int i = 0; i < 36; i++) w[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    int cin[3] = {x, tg_const(DIMS(2, 2, 3, 3), w), tg_const(DIMS(2), FV(0.1f, -0.2f))};
    int c, b, r;
    fk__node *n = tg_node(FK__OP_CONV, 3, cin, &c);
    n->a.pads[0] = n->a.pads[1] = n->a.pads[2] = n->a.pads[3] = 1;
    int bin[3] = {c, tg_const(DIMS(2), FV(1.5f, -0.5f)), tg_const(DIMS(2), FV(0.25f, 0.3f))};
    tg_node(FK__OP_BATCH_NORM, 3, bin, &b);
    if (act_op == FK__OP_PRELU) {
        int pin[2] = {b, tg_const(DIMS(2, 1, 1), FV(0.1f, 0.3f))};
        tg_node(FK__OP_PRELU, 2, pin, &r);
    } else {
        n = tg_node(act_op, 1, &b, &r);
        n->a.clip_min = 0;
        n->a.clip_max = 0.5f;
        n->a.alpha = 0.2f;
    }
    tg_output(r);
    if (extra) {
        tg_output(c);
        tg_output(b);
    }
}

static void test_fusion(void) {
    const int acts[] = {FK__OP_RELU, FK__OP_CLIP, FK__OP_LEAKY_RELU, FK__OP_PRELU, FK__OP_SIGMOID, FK__OP_TANH};
    float x[18];
    for (int i = 0; i < 18; i++) x[i] = (float)((i * 5) % 7) - 3.0f;
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
        float fused[18], plain[18], c[18], b[18];
        build_conv_bn_relu(0, acts[k]);
        const float *ins[1] = {x};
        float *o1[1] = {fused};
        fk_nn_model_t *m = tg_run(ins, o1);
        const fk__graph *g = fk__nn_model_graph(m);
        FK_CHECK_INT(g->nn, 1);
        FK_CHECK_INT(g->n[0].op, FK__OP_CONV);
        FK_CHECK(g->n[0].a.act != FK__ACT_NONE);
        fk_nn_model_close(m);
        build_conv_bn_relu(1, acts[k]);
        float *o2[3] = {plain, c, b};
        m = tg_run(ins, o2);
        FK_CHECK_INT(fk__nn_model_graph(m)->nn, 3);
        fk_nn_model_close(m);
        check_vals(fk__op_name(acts[k]), fused, plain, 18, 1e-5f);
    }
    /* Add + Relu fuses; Gemm + Sigmoid fuses; a Relu whose input has a second reader does not */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(4)), tg_const(DIMS(4), FV(1, -1, 1, -1))};
        int a, r, r2;
        tg_node(FK__OP_ADD, 2, in, &a);
        tg_node(FK__OP_RELU, 1, &a, &r);
        tg_node(FK__OP_NEG, 1, &a, &r2);
        tg_output(r);
        tg_output(r2);
        float y1[4], y2[4];
        const float *ins[1] = {FV(-2, 2, 0, 0)};
        float *os[2] = {y1, y2};
        fk_nn_model_t *m = tg_run(ins, os);
        FK_CHECK_INT(fk__nn_model_graph(m)->nn, 3);
        check_vals("add relu (2 readers)", y1, FV(0, 1, 1, 0), 4, 0);
        check_vals("neg", y2, FV(1, -1, -1, 1), 4, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(1, 2)), tg_const(DIMS(2, 1), FV(1, 1))};
        int a, r;
        tg_node(FK__OP_GEMM, 2, in, &a);
        tg_node(FK__OP_SIGMOID, 1, &a, &r);
        tg_output(r);
        float y[1];
        const float *ins[1] = {FV(0.5f, -0.5f)};
        float *os[1] = {y};
        fk_nn_model_t *m = tg_run(ins, os);
        FK_CHECK_INT(fk__nn_model_graph(m)->nn, 1);
        FK_CHECK_INT(fk__nn_model_graph(m)->n[0].a.act, FK__ACT_SIGMOID);
        FK_CHECK_NEAR(y[0], 0.5, 1e-7);
        fk_nn_model_close(m);
    }
}

/* conv(+relu) -> relu(x) + c*(x - |x|): becomes one conv with a fused PReLU (slope 2c); after a conv that
 * already has a Relu, x + c*(x - |x|) is the identity and disappears. */
static void build_prelu_pattern(int conv_relu, int with_relu, int expose) {
    tg_begin();
    int x = tg_in(DIMS(1, 2, 2, 2));
    int cin[2] = {x, tg_const(DIMS(2, 2, 1, 1), FV(1, -0.5f, 0.25f, 1))};
    int c, ab, sb, ml, r, y;
    fk__node *n = tg_node(FK__OP_CONV, 2, cin, &c);
    n->a.act = conv_relu ? FK__ACT_RELU : FK__ACT_NONE;
    tg_node(FK__OP_ABS, 1, &c, &ab);
    int in[2] = {c, ab};
    tg_node(FK__OP_SUB, 2, in, &sb);
    in[0] = sb, in[1] = tg_const(DIMS(2, 1, 1), FV(0.125f, 0.25f));
    tg_node(FK__OP_MUL, 2, in, &ml);
    r = c;
    if (with_relu) tg_node(FK__OP_RELU, 1, &c, &r);
    in[0] = r, in[1] = ml;
    tg_node(FK__OP_ADD, 2, in, &y);
    tg_output(y);
    if (expose) tg_output(ml);
}

static void test_prelu_pattern(void) {
    const float *ins[1] = {FV(1, -2, 3, -4, -1, 2, -3, 4)};
    for (int v = 0; v < 3; v++) {
        int conv_relu = v == 2, with_relu = v == 0;
        float y1[8], y2[8], ml[8];
        float *o1[1] = {y1}, *o2[2] = {y2, ml};
        build_prelu_pattern(conv_relu, with_relu, 0);
        fk_nn_model_t *m = tg_run(ins, o1);
        const fk__graph *g = fk__nn_model_graph(m);
        FK_CHECK_INT(g->nn, 1);
        FK_CHECK_INT(g->n[0].a.act, conv_relu ? FK__ACT_RELU : FK__ACT_PRELU);
        fk_nn_model_close(m);
        build_prelu_pattern(conv_relu, with_relu, 1);
        m = tg_run(ins, o2);
        FK_CHECK(fk__nn_model_graph(m)->nn > 3);
        fk_nn_model_close(m);
        check_vals("prelu pattern", y1, y2, 8, 1e-6f);
    }
}

/* A conv whose bias is a graph input (no constant data) followed by BatchNorm: not folded, still right. */
static void test_bn_nonconst_bias(void) {
    tg_begin();
    int x = tg_in(DIMS(1, 1, 2, 2)), b = tg_in(DIMS(1));
    int cin[3] = {x, tg_const(DIMS(1, 1, 1, 1), FV(2)), b};
    int c, y;
    tg_node(FK__OP_CONV, 3, cin, &c);
    int bin[3] = {c, tg_const(DIMS(1), FV(1)), tg_const(DIMS(1), FV(0.5f))};
    tg_node(FK__OP_BATCH_NORM, 3, bin, &y);
    tg_output(y);
    float out[4];
    const float *ins[2] = {FV(1, 2, 3, 4), FV(1)};
    float *os[1] = {out};
    fk_nn_model_t *m = tg_run(ins, os);
    FK_CHECK_INT(fk__nn_model_graph(m)->nn, 2);
    check_vals("conv(bias input)+bn", out, FV(3.5f, 5.5f, 7.5f, 9.5f), 4, 1e-6f);
    fk_nn_model_close(m);
}

static void test_identity_dead(void) {
    tg_begin();
    int x = tg_in(DIMS(3));
    int i1, e, dead, i2;
    tg_node(FK__OP_IDENTITY, 1, &x, &i1);
    tg_node(FK__OP_EXP, 1, &i1, &e);
    tg_node(FK__OP_ABS, 1, &x, &dead); /* read by nobody */
    tg_node(FK__OP_IDENTITY, 1, &e, &i2);
    tg_output(i2);
    float y[3];
    const float *ins[1] = {FV(0, 1, -1)};
    float *os[1] = {y};
    fk_nn_model_t *m = tg_run(ins, os);
    const fk__graph *g = fk__nn_model_graph(m);
    FK_CHECK_INT(g->nn, 1);
    FK_CHECK_INT(g->n[0].op, FK__OP_EXP);
    check_vals("exp", y, FV(1, 2.7182817f, 0.36787944f), 3, 1e-6f);
    fk_nn_model_close(m);
    /* a cycle is an error, not a hang */
    tg_begin();
    int a = tg_act(), b = tg_act();
    int xin = tg_in(DIMS(2));
    int in1[2] = {xin, b};
    fk__graph_add_node(&tg, FK__OP_ADD, "a", 2, in1, 1, &a);
    fk__graph_add_node(&tg, FK__OP_RELU, "b", 1, &a, 1, &b);
    tg_output(b);
    m = NULL;
    FK_CHECK_INT(fk__nn_model_from_graph(&tg, NULL, &m), FK_EFORMAT);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), "cycle") != NULL);
    fk_nn_model_close(m);
}

static void test_memory_plan(void) {
    /* x -> Sigmoid -> Tanh -> Exp -> Reshape -> Abs -> Neg -> y: at most two buffers live at a time */
    tg_begin();
    int x = tg_in(DIMS(1, 1, 64, 64));
    int t = x;
    const int ops[] = {FK__OP_SIGMOID, FK__OP_TANH, FK__OP_EXP, FK__OP_RESHAPE, FK__OP_ABS, FK__OP_NEG};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        int y;
        if (ops[k] == FK__OP_RESHAPE) {
            int in[2] = {t, tg_consti(DIMS(2), IV(64, -1))};
            tg_node(ops[k], 2, in, &y);
        } else {
            tg_node(ops[k], 1, &t, &y);
        }
        t = y;
    }
    tg_output(t);
    static float xin[4096], y[4096];
    for (int i = 0; i < 4096; i++) xin[i] = (float)(i % 13) / 13.0f - 0.5f;
    const float *ins[1] = {xin};
    float *os[1] = {y};
    fk_nn_model_t *m = tg_run(ins, os);
    const fk__graph *g = fk__nn_model_graph(m);
    size_t one = 4096 * 4, sum = 0;
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].kind == FK__T_ACT && g->t[i].producer >= 0) sum += one;
    FK_CHECK_INT(sum, 6 * one);
    FK_CHECK(g->arena_bytes < sum);
    FK_CHECK_INT(g->arena_bytes, 2 * one);
    FK_CHECK_INT(g->peak_bytes, 2 * one);
    fk_nn_model_info_t info;
    FK_CHECK_INT(fk_nn_model_info(m, &info), FK_OK);
    FK_CHECK_INT(info.peak_bytes, 2 * one);
    /* the values survive the buffer reuse */
    for (int i = 0; i < 4096; i += 97) {
        float v = -fabsf(expf(tanhf(1.0f / (1.0f + expf(-xin[i])))));
        FK_CHECK_NEAR(y[i], v, 1e-6);
    }
    fk_nn_model_close(m);
}

/* Every allocation of prepare fails in turn: FK_ENOMEM, never a crash or a leak. */
static void test_prepare_oom(void) {
    size_t base = fk_mem_in_use();
    int n, ok = 0, ooms = 0;
    for (n = 1; n < 2000 && !ok; n++) {
        build_conv_bn_relu(0, FK__OP_PRELU);
        /* add the shape chain too, so folding is part of it */
        int x2 = tg_in(DIMS(1, 2, 3, 4));
        int s, r;
        tg_node(FK__OP_SHAPE, 1, &x2, &s);
        int rin[2] = {x2, s};
        tg_node(FK__OP_RESHAPE, 2, rin, &r);
        tg_output(r);
        fk_nn_model_t *m = NULL;
        fk__alloc_fail_at(n);
        int rc = fk__nn_model_from_graph(&tg, NULL, &m);
        fk_nn_session_t *s1 = NULL;
        if (rc == FK_OK) rc = fk_nn_session_create(m, 1, &s1);
        fk__alloc_fail_at(0);
        if (rc == FK_OK) ok = 1;
        else if (rc == FK_ENOMEM) ooms++;
        else FK_CHECK_INT(rc, FK_ENOMEM);
        fk_nn_session_destroy(s1);
        fk_nn_model_close(m);
        FK_CHECK_INT(fk_mem_in_use(), base);
        if (fk_mem_in_use() != base) break;
    }
    FK_CHECK(ok);
    FK_CHECK(ooms > 10);
}

static void test_files(void) {
    char path[4096];
    fk_nn_model_t *m = NULL;
    /* missing file: a handle with a message naming it */
    int rc = fk_nn_model_open("/nonexistent/dir/model.onnx", NULL, &m);
    FK_CHECK(rc != FK_OK);
    FK_CHECK(m != NULL);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), "/nonexistent/dir/model.onnx") != NULL);
    FK_CHECK_INT(fk_nn_model_input_count(m), 0);
    fk_nn_session_t *s = NULL;
    FK_CHECK_INT(fk_nn_session_create(m, 1, &s), FK_EINVAL);
    fk_nn_model_close(m);
    /* garbage */
    snprintf(path, sizeof path, "/tmp/fk_test_nn_graph_%d.onnx", (int)getpid());
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 1000; i++) fputc((i * 131) & 0xff, f);
    fclose(f);
    rc = fk_nn_model_open(path, NULL, &m);
    FK_CHECK(rc != FK_OK);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), path) != NULL);
    fk_nn_model_close(m);
    remove(path);
    rc = fk_nn_model_open("model.bin", NULL, &m);
    FK_CHECK_INT(rc, FK_EUNSUPPORTED);
    fk_nn_model_close(m);
    FK_CHECK_INT(fk_nn_model_open(NULL, NULL, NULL), FK_EINVAL);
    fk_nn_model_close(NULL);
    fk_nn_session_destroy(NULL);
}

static void test_npy(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/fk_test_npy_%d.npy", (int)getpid());
    const float v[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    const int64_t d[2] = {2, 3};
    FK_CHECK_INT(fk_nn_npy_write(path, v, 2, d, NULL, 0), FK_OK);
    float *r = NULL;
    int rank;
    int64_t rd[FK_NN_MAX_RANK];
    char err[256];
    FK_CHECK_INT(fk_nn_npy_read(path, &r, &rank, rd, err, sizeof err), FK_OK);
    FK_CHECK_INT(rank, 2);
    FK_CHECK_INT(rd[0], 2);
    FK_CHECK_INT(rd[1], 3);
    if (r) check_vals("npy", r, v, 6, 0);
    fk_free(r);
    /* the data starts 64-byte aligned, like numpy writes it */
    {
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        FK_CHECK_INT(ftell(f), 128 + 24); /* 70-byte header padded to 128 */
        fclose(f);
    }
    /* truncated */
    FILE *f = fopen(path, "r+b");
    FK_CHECK(ftruncate(fileno(f), 140) == 0);
    fclose(f);
    r = NULL;
    FK_CHECK_INT(fk_nn_npy_read(path, &r, &rank, rd, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "truncated") != NULL);
    FK_CHECK(r == NULL);
    /* wrong dtype, fortran order, bad magic, trailing bytes */
    const char *bad[] = {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                         "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                         "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7), }",
                         "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
                         "{'descr': '<f4', 'fortran_order': False, }"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        f = fopen(path, "wb");
        unsigned short hl = (unsigned short)strlen(bad[k]);
        fwrite("\x93NUMPY\x01\x00", 1, 8, f);
        fwrite(&hl, 2, 1, f);
        fwrite(bad[k], 1, hl, f);
        float z = 0;
        fwrite(&z, 4, 1, f);
        fclose(f);
        FK_CHECK_INT(fk_nn_npy_read(path, &r, &rank, rd, err, sizeof err), FK_EFORMAT);
    }
    f = fopen(path, "wb");
    fwrite("NOTNPY....", 1, 10, f);
    fclose(f);
    FK_CHECK_INT(fk_nn_npy_read(path, &r, &rank, rd, err, sizeof err), FK_EFORMAT);
    const int64_t d1[1] = {1};
    FK_CHECK_INT(fk_nn_npy_write(path, v, 1, d1, NULL, 0), FK_OK);
    f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    FK_CHECK_INT(fk_nn_npy_read(path, &r, &rank, rd, err, sizeof err), FK_EFORMAT);
    FK_CHECK_INT(fk_nn_npy_read("/nonexistent.npy", &r, &rank, rd, err, sizeof err), FK_EIO);
    remove(path);
}

static void test_real_models(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/faceplugin/fr_landmark.onnx", models_dir());
    fk_nn_model_t *m = NULL;
    int rc = fk_nn_model_open(path, NULL, &m);
    if (rc) fprintf(stderr, "%s\n", fk_nn_model_errmsg(m));
    FK_CHECK_INT(rc, FK_OK);
    if (rc == FK_OK) {
        FK_CHECK_INT(fk_nn_model_input_count(m), 1);
        FK_CHECK_INT(fk_nn_model_output_count(m), 1);
        FK_CHECK_INT(fk_nn_model_input_numel(m, 0), 64 * 64);
        FK_CHECK_INT(fk_nn_model_output_numel(m, 0), 136);
        fk_nn_model_info_t info;
        FK_CHECK_INT(fk_nn_model_info(m, &info), FK_OK);
        FK_CHECK(info.parameters > 100000);
        FK_CHECK(info.peak_bytes > 0 && info.peak_bytes <= info.arena_bytes);
        FK_CHECK(info.nodes_prepared < info.nodes_loaded);
        static float x[4096], y1[136], y2[136];
        for (int i = 0; i < 4096; i++) x[i] = (float)((i * 37) % 255) / 128.0f - 1.0f;
        fk_nn_session_t *s = NULL;
        FK_CHECK_INT(fk_nn_session_create(m, 1, &s), FK_OK);
        const float *ins[1] = {x};
        float *o1[1] = {y1}, *o2[1] = {y2};
        FK_CHECK_INT(fk_nn_session_run(s, ins, o1), FK_OK);
        /* a run allocates nothing */
        size_t before = fk_mem_in_use();
        FK_CHECK_INT(fk_nn_session_run(s, ins, o2), FK_OK);
        FK_CHECK_INT(fk_mem_in_use(), before);
        fk__alloc_fail_at(1); /* and so cannot fail for lack of memory */
        FK_CHECK_INT(fk_nn_session_run(s, ins, o2), FK_OK);
        fk__alloc_fail_at(0);
        check_vals("repeatable", y1, y2, 136, 0);
        FK_CHECK_INT(fk_nn_session_run(s, NULL, o2), FK_EINVAL);
        fk_nn_session_destroy(s);
        /* reference kernels agree with the default ones */
        fk_nn_options_t o;
        memset(&o, 0, sizeof o);
        o.use_reference = 1;
        fk_nn_model_t *mr = NULL;
        FK_CHECK_INT(fk_nn_model_open(path, &o, &mr), FK_OK);
        FK_CHECK_INT(fk_nn_session_create(mr, 1, &s), FK_OK);
        FK_CHECK_INT(fk_nn_session_run(s, ins, o2), FK_OK);
        check_vals("fast vs reference", y1, y2, 136, 1e-4f);
        fk_nn_session_destroy(s);
        fk_nn_model_close(mr);
    }
    fk_nn_model_close(m);

    /* out of memory at every allocation of open + session create: no crash, no leak */
    size_t base = fk_mem_in_use();
    int ok = 0, tries = 0;
    for (long n = 1; n < 100000 && !ok; n++, tries++) {
        fk__alloc_fail_at(n);
        rc = fk_nn_model_open(path, NULL, &m);
        fk_nn_session_t *s = NULL;
        if (rc == FK_OK) rc = fk_nn_session_create(m, 1, &s);
        fk__alloc_fail_at(0);
        if (rc == FK_OK) ok = 1;
        else if (rc != FK_ENOMEM) {
            fprintf(stderr, "allocation %ld: %s: %s\n", n, fk_status_str(rc), fk_nn_model_errmsg(m));
            FK_CHECK_INT(rc, FK_ENOMEM);
        }
        fk_nn_session_destroy(s);
        fk_nn_model_close(m);
        if (fk_mem_in_use() != base) {
            fprintf(stderr, "leak after failing allocation %ld\n", n);
            FK_CHECK_INT(fk_mem_in_use(), base);
            break;
        }
    }
    FK_CHECK(ok);
    FK_CHECK(tries > 20);
    fprintf(stderr, "fr_landmark open: %d failing allocations tried\n", tries);

    /* the RFB detector at 480x640: scores and raw regressions (boxes multiply 320x240 priors) */
    snprintf(path, sizeof path, "%s/faceplugin/fr_detect.onnx", models_dir());
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    o.input_height = 480;
    o.input_width = 640;
    rc = fk_nn_model_open(path, &o, &m);
    FK_CHECK_INT(rc, FK_ESHAPE);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), "outputs") != NULL);
    fk_nn_model_close(m);
    const char *outs[2] = {"scores", "462"};
    o.outputs = outs;
    o.n_outputs = 2;
    rc = fk_nn_model_open(path, &o, &m);
    if (rc) fprintf(stderr, "%s\n", fk_nn_model_errmsg(m));
    FK_CHECK_INT(rc, FK_OK);
    if (rc == FK_OK) {
        int64_t d[FK_NN_MAX_RANK];
        int r;
        fk_nn_model_input_shape(m, 0, &r, d);
        FK_CHECK_INT(d[2], 480);
        FK_CHECK_INT(d[3], 640);
        check_shape(m, 0, 3, (int64_t[]){1, 17640, 2});
        check_shape(m, 1, 3, (int64_t[]){1, 17640, 4});
    }
    fk_nn_model_close(m);
}

/* Random DAGs of shape-preserving ops on [1,4,3,3]: the prepared graph (fused, folded, buffers reused and
 * aliased) must compute what the same graph computes with every tensor exposed as an output (nothing fused,
 * nothing reused). Catches memory-plan overlaps and fusion mistakes that hand-made graphs miss. */
static uint32_t rs = 12345;
static int rnd(int n) {
    rs = rs * 1664525u + 1013904223u;
    return (int)((rs >> 8) % (uint32_t)n);
}

static void build_random(uint32_t seed, int expose_all, int *n_out) {
    rs = seed;
    tg_begin();
    int t[64], nt = 0;
    t[nt++] = tg_in(DIMS(1, 4, 3, 3));
    t[nt++] = tg_in(DIMS(1, 4, 3, 3));
    int nodes = 6 + rnd(14);
    for (int k = 0; k < nodes; k++) {
        int a = t[rnd(nt)], b = t[rnd(nt)], y = -1;
        fk__node *n;
        switch (rnd(14)) {
        case 0: tg_node(FK__OP_RELU, 1, &a, &y); break;
        case 1: tg_node(FK__OP_SIGMOID, 1, &a, &y); break;
        case 2: {
            int in[2] = {a, b};
            tg_node(rnd(2) ? FK__OP_ADD : FK__OP_MUL, 2, in, &y);
            break;
        }
        case 3: {
            float w[16];
            for (int i = 0; i < 16; i++) w[i] = (float)(rnd(200) - 100) / 100.0f;
            int in[3] = {a, tg_const(DIMS(4, 4, 1, 1), w), tg_const(DIMS(4), FV(0.1f, 0.2f, -0.1f, 0))};
            tg_node(FK__OP_CONV, 3, in, &y);
            break;
        }
        case 4: {
            int in[3] = {a, tg_const(DIMS(4), FV(1, 2, -1, 0.5f)), tg_const(DIMS(4), FV(0, 1, 0, -1))};
            tg_node(FK__OP_BATCH_NORM, 3, in, &y);
            break;
        }
        case 5: {
            n = tg_node(FK__OP_CLIP, 1, &a, &y);
            n->a.clip_min = -0.5f;
            n->a.clip_max = 0.5f;
            break;
        }
        case 6: { /* reshape there and back: two views */
            int r, in[2] = {a, tg_consti(DIMS(2), IV(1, -1))};
            tg_node(FK__OP_RESHAPE, 2, in, &r);
            int in2[2] = {r, tg_consti(DIMS(4), IV(1, 4, 3, 3))};
            tg_node(FK__OP_RESHAPE, 2, in2, &y);
            break;
        }
        case 7: { /* concat on channels, then keep the second half */
            int c, in[2] = {a, b};
            n = tg_node(FK__OP_CONCAT, 2, in, &c);
            n->a.axis = 1;
            n = tg_node(FK__OP_SLICE, 1, &c, &y);
            n->a.s_n = 1;
            n->a.s_axes[0] = 1, n->a.s_starts[0] = 4, n->a.s_ends[0] = INT64_MAX, n->a.s_steps[0] = 1;
            break;
        }
        case 8: {
            n = tg_node(FK__OP_TRANSPOSE, 1, &a, &y);
            int perm[4] = {0, 1, 3, 2};
            memcpy(n->a.perm, perm, sizeof perm);
            n->a.n_perm = 4;
            break;
        }
        case 9: tg_node(FK__OP_IDENTITY, 1, &a, &y); break;
        case 10: {
            int in[2] = {a, tg_const(DIMS(4, 1, 1), FV(0.1f, 0.2f, 0.3f, 0.4f))};
            tg_node(FK__OP_PRELU, 2, in, &y);
            break;
        }
        case 12:
        case 13: { /* TF.js PReLU spelled out: relu(a) + c*(a - |a|), or a + c*(a - |a|) */
            int ab, sb, ml, in[2];
            tg_node(FK__OP_ABS, 1, &a, &ab);
            in[0] = a, in[1] = ab;
            tg_node(FK__OP_SUB, 2, in, &sb);
            in[0] = tg_const(DIMS(4, 1, 1), FV(0.05f, -0.1f, 0.2f, 0.5f)), in[1] = sb;
            tg_node(FK__OP_MUL, 2, in, &ml);
            int first = a;
            if (rnd(2)) tg_node(FK__OP_RELU, 1, &a, &first);
            in[0] = ml, in[1] = first;
            tg_node(FK__OP_ADD, 2, in, &y);
            break;
        }
        default: tg_node(FK__OP_TANH, 1, &a, &y); break;
        }
        t[nt++] = y;
    }
    *n_out = 0;
    if (expose_all) {
        for (int i = 2; i < nt; i++) tg_output(t[i]);
        *n_out = nt - 2;
    } else {
        tg_output(t[nt - 1]);
        tg_output(t[2 + rnd(nt - 2)]);
        *n_out = 2;
    }
}

static int n_nodes_loaded(const fk_nn_model_t *m) {
    fk_nn_model_info_t info;
    return fk_nn_model_info(m, &info) == FK_OK ? info.nodes_loaded : 0;
}

static void test_random_graphs(void) {
    static float x[2][36], o1[64][36], o2[64][36];
    for (int i = 0; i < 36; i++) x[0][i] = (float)(i % 7) / 3.0f - 1.0f, x[1][i] = (float)(i % 5) / 2.0f - 1.0f;
    int bad = 0, fused = 0;
    for (uint32_t seed = 1; seed <= 300; seed++) {
        int n1, n2;
        const float *ins[2] = {x[0], x[1]};
        float *outs1[64], *outs2[64];
        for (int i = 0; i < 64; i++) outs1[i] = o1[i], outs2[i] = o2[i];
        build_random(seed, 0, &n1);
        int want_a = tg.outputs[0], want_b = tg.outputs[1];
        fk_nn_options_t o;
        memset(&o, 0, sizeof o);
        o.use_reference = seed % 2; /* odd seeds: reference kernels; even: fast ones */
        fk_nn_model_t *m = NULL;
        int rc = fk__nn_model_from_graph(&tg, &o, &m);
        fk_nn_session_t *s = NULL;
        if (!rc) rc = fk_nn_session_create(m, 1, &s);
        if (!rc) rc = fk_nn_session_run(s, ins, outs1);
        if (rc) fprintf(stderr, "seed %u: %s %s\n", seed, fk_nn_model_errmsg(m), s ? fk_nn_session_errmsg(s) : "");
        FK_CHECK_INT(rc, FK_OK);
        if (!rc && fk__nn_model_graph(m)->nn < n_nodes_loaded(m)) fused++;
        fk_nn_session_destroy(s);
        fk_nn_model_close(m);
        build_random(seed, 1, &n2);
        int ia = -1, ib = -1; /* tensor ids are the same in both builds */
        for (int i = 0; i < tg.n_outputs; i++) {
            if (tg.outputs[i] == want_a) ia = i;
            if (tg.outputs[i] == want_b) ib = i;
        }
        o.use_reference = 1;
        m = NULL;
        s = NULL;
        rc = fk__nn_model_from_graph(&tg, &o, &m);
        if (!rc) rc = fk_nn_session_create(m, 1, &s);
        if (!rc) rc = fk_nn_session_run(s, ins, outs2);
        if (rc) fprintf(stderr, "seed %u (exposed): %s\n", seed, fk_nn_model_errmsg(m));
        FK_CHECK_INT(rc, FK_OK);
        fk_nn_session_destroy(s);
        fk_nn_model_close(m);
        if (ia < 0 || ib < 0) {
            FK_CHECK(ia >= 0 && ib >= 0);
            continue;
        }
        for (int i = 0; i < 36; i++)
            if (fabsf(o1[0][i] - o2[ia][i]) > 1e-4f || fabsf(o1[1][i] - o2[ib][i]) > 1e-4f) {
                if (bad < 5) fprintf(stderr, "random graph seed %u differs at %d\n", seed, i);
                bad++;
                break;
            }
    }
    FK_CHECK_INT(bad, 0);
    FK_CHECK(fused > 100); /* most random graphs had something fused or removed */
}

/* One model shared by two threads, each with its own session: same results as a lone run. */
typedef struct {
    const fk_nn_model_t *m;
    const float *x;
    float y[136];
    int rc;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    fk_nn_session_t *s = NULL;
    w->rc = fk_nn_session_create(w->m, 1, &s);
    const float *ins[1] = {w->x};
    float *outs[1] = {w->y};
    for (int k = 0; k < 20 && w->rc == FK_OK; k++) w->rc = fk_nn_session_run(s, ins, outs);
    fk_nn_session_destroy(s);
    return NULL;
}

static void test_threads(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/faceplugin/fr_landmark.onnx", models_dir());
    fk_nn_model_t *m = NULL;
    FK_CHECK_INT(fk_nn_model_open(path, NULL, &m), FK_OK);
    static float x[2][4096], want[2][136];
    for (int i = 0; i < 4096; i++) x[0][i] = (float)(i % 17) / 8.0f - 1.0f, x[1][i] = (float)(i % 29) / 14.0f - 1.0f;
    for (int t = 0; t < 2; t++) {
        fk_nn_session_t *s = NULL;
        FK_CHECK_INT(fk_nn_session_create(m, 1, &s), FK_OK);
        const float *ins[1] = {x[t]};
        float *outs[1] = {want[t]};
        FK_CHECK_INT(fk_nn_session_run(s, ins, outs), FK_OK);
        fk_nn_session_destroy(s);
    }
    worker_arg w[2] = {{m, x[0], {0}, -1}, {m, x[1], {0}, -1}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++) pthread_create(&th[t], NULL, worker, &w[t]);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 2; t++) {
        FK_CHECK_INT(w[t].rc, FK_OK);
        check_vals("threaded run", w[t].y, want[t], 136, 0);
    }
    fk_nn_model_close(m);
}

int main(void) {
    size_t base = fk_mem_in_use();
    test_fold_shape_chain();
    test_fusion();
    test_prelu_pattern();
    test_bn_nonconst_bias();
    test_identity_dead();
    test_memory_plan();
    test_prepare_oom();
    test_files();
    test_npy();
    test_real_models();
    test_threads();
    test_random_graphs();
    FK_CHECK_INT(fk_mem_in_use(), base);
    return fk_t_finish();
}
