/*
 * test_nn_tfjs.c — the TF.js graph-model front-end (src/nn/tfjs.c): every model in models/human loads into an
 * fk__graph with the right inputs, outputs and dequantised weights (values computed with @tensorflow/tfjs);
 * a tiny hand-written model checks uint8/uint16/float16 dequantisation and the filter reorder exactly; and the
 * loader survives outside damage: truncated JSON, short and missing shards, bit flips, unsupported ops and
 * every allocation failing in turn (FK_ENOMEM, nothing leaked).
 */
#include "fk_test.h"
#include "nn/graph.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *models_dir(void) {
    const char *d = getenv("FK_MODELS_DIR");
    return d && *d ? d : "models";
}

static char tmpdir[256];

static void write_file(const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(2);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size + 1);
    *n = fread(b, 1, (size_t)size, f);
    fclose(f);
    return b;
}

/* Loads PATH into a fresh graph; returns the status, the graph stays for inspection (caller frees). */
static int load(fk__graph *g, const char *path) {
    if (fk__graph_init(g, path, "tfjs")) return FK_ENOMEM;
    return fk__tfjs_load(g, path);
}

static const fk__tensor *tensor(const fk__graph *g, const char *name) {
    int id = fk__graph_find(g, name);
    return id >= 0 ? &g->t[id] : NULL;
}

/* ---- the real models ---------------------------------------------------------------------------- */

typedef struct model_expect {
    const char *file, *input;
    int64_t dims[4];
    const char *outputs[4];
    int64_t out_dims[4][4]; /* after fk__graph_prepare; 0 ends a shape */
} model_expect;

static const model_expect models[] = {
    {"antispoof", "conv2d_input", {1, 128, 128, 3}, {"Identity"}, {{1, 1}}},
    {"blazeface", "input", {1, 256, 256, 3}, {"Identity", "Identity_2", "Identity_3", "Identity_1"},
     {{1, 512, 1}, {1, 512, 16}, {1, 384, 16}, {1, 384, 1}}},
    {"emotion", "input_1", {1, 64, 64, 1}, {"Identity"}, {{1, 7}}},
    {"facemesh-detection-full", "input", {1, 192, 192, 3}, {"Identity_1", "Identity"}, {{1, 2304, 17}, {1, 2304, 17}}},
    {"facemesh-detection-short", "input", {1, 128, 128, 3}, {"Identity"}, {{1, 896, 17}}},
    {"facemesh", "input_1", {1, 192, 192, 3}, {"Identity_2", "Identity_1", "Identity"}, {{1, 1404}, {1, 1}, {1, 266}}},
    {"faceres", "input_1", {1, 224, 224, 3}, {"gender_pred/Sigmoid", "global_pooling/Mean", "age_pred/Softmax"},
     {{1, 1}, {1, 1024}, {1, 100}}},
    {"iris", "input_1", {1, 64, 64, 3}, {"Identity"}, {{1, 1, 1, 228}}},
    {"liveness", "conv2d_1_input", {1, 32, 32, 3}, {"Identity"}, {{1, 2}}},
    {"meet", "input_1", {1, 144, 256, 3}, {"segment"}, {{1, 144, 256, 2}}},
    {"mobileface", "data", {1, 112, 112, 3}, {"batchnorm0/add_1"}, {{1, 256}}},
    {"mobilefacenet", "img_inputs", {1, 112, 112, 3}, {"embeddings"}, {{1, 192}}},
    {"selfie", "input_1", {1, 256, 256, 3}, {"activation_10"}, {{1, 256, 256, 1}}},
};

/* The loaded graph prepares (shape inference of every converted node) to the outputs TF.js produces. */
static void check_prepared(fk__graph *g, const model_expect *e) {
    int rc = fk__graph_prepare(g, NULL);
    if (rc) fprintf(stderr, "%s: prepare: %s\n", e->file, g->err);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) return;
    for (int i = 0; i < g->n_outputs && i < 4; i++) {
        const fk__tensor *t = &g->t[g->outputs[i]];
        int rank = 0;
        while (rank < 4 && e->out_dims[i][rank]) rank++;
        FK_CHECK_INT(t->rank, rank);
        for (int k = 0; k < rank && k < t->rank; k++) FK_CHECK_INT(t->dims[k], e->out_dims[i][k]);
    }
}

static void test_models(void) {
    size_t base = fk_mem_in_use();
    for (size_t m = 0; m < FK__ARRAY_LEN(models); m++) {
        const model_expect *e = &models[m];
        char path[512];
        snprintf(path, sizeof path, "%s/human/%s.json", models_dir(), e->file);
        fk__graph g;
        int rc = load(&g, path);
        if (rc) fprintf(stderr, "%s: %s\n", e->file, g.err);
        FK_CHECK_INT(rc, FK_OK);
        FK_CHECK_INT(g.n_inputs, 1);
        FK_CHECK(g.nn > 0);
        FK_CHECK_INT(g.layout, FK__NHWC);
        if (g.n_inputs == 1) {
            const fk__tensor *t = &g.t[g.inputs[0]];
            FK_CHECK_STR(t->name, e->input);
            FK_CHECK_INT(t->kind, FK__T_INPUT);
            FK_CHECK_INT(t->rank, 4);
            for (int i = 0; i < 4; i++) FK_CHECK_INT(t->dims[i], e->dims[i]);
        }
        int n_out = 0;
        while (n_out < 4 && e->outputs[n_out]) n_out++;
        FK_CHECK_INT(g.n_outputs, n_out);
        for (int i = 0; i < n_out && i < g.n_outputs; i++) {
            FK_CHECK_STR(g.t[g.outputs[i]].name, e->outputs[i]);
            FK_CHECK(g.t[g.outputs[i]].is_output);
        }
        /* every node's tensors exist; every constant has data */
        for (int i = 0; i < g.nn; i++)
            for (int k = 0; k < g.n[i].n_in; k++) FK_CHECK(g.n[i].in[k] >= -1 && g.n[i].in[k] < g.nt);
        for (int i = 0; i < g.nt; i++)
            if (g.t[i].kind == FK__T_CONST) FK_CHECK(g.t[i].data != NULL);
        printf("%-26s %4d nodes %4d tensors\n", e->file, g.nn, g.nt);
        if (!rc) check_prepared(&g, e);
        fk__graph_free(&g);
    }
    FK_CHECK_INT(fk_mem_in_use(), base);
}

/* facemesh stores float16 weights: values from tf.io.decodeWeights (@tensorflow/tfjs 4.22). The first conv
 * filter [3,3,3,16] HWIO must now be [16,3,3,3] OIHW. */
static void test_float16_weights(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/human/facemesh.json", models_dir());
    fk__graph g;
    FK_CHECK_INT(load(&g, path), FK_OK);
    const fk__tensor *w = tensor(&g, "StatefulPartitionedCall/model_1/conv2d_1/Conv2D_weights");
    const fk__tensor *a = tensor(&g, "StatefulPartitionedCall/model_1/p_re_lu_1/Neg");
    FK_CHECK(w && a);
    if (w && a) {
        const float *d = w->data;
        FK_CHECK_INT(w->rank, 4);
        FK_CHECK_INT(w->dims[0], 16);
        FK_CHECK_INT(w->dims[1], 3);
        FK_CHECK_INT(w->dims[2], 3);
        FK_CHECK_INT(w->dims[3], 3);
        /* HWIO flat 0 (o0), 1 (o1), 5 (o5), last (h2 w2 i2 o15) -> OIHW index o*27 + i*9 + y*3 + x */
        FK_CHECK_NEAR(d[0], 0.106933594, 1e-9);
        FK_CHECK_NEAR(d[27], -0.0803222656, 1e-9);
        FK_CHECK_NEAR(d[5 * 27], -0.114624023, 1e-9);
        FK_CHECK_NEAR(d[16 * 27 - 1], 0.281738281, 1e-9);
        const float *s = a->data;
        FK_CHECK_NEAR(s[0], 0.769042969, 1e-9);
        FK_CHECK_NEAR(s[3], -0.0292816162, 1e-9);
        FK_CHECK_NEAR(s[15], -0.134277344, 1e-9);
    }
    fk__graph_free(&g);
}

/* The caller picks the input size at prepare time: facemesh-detection-short's anchors scale with it (its
 * Shape -> StridedSlice -> Pack -> Reshape chain folds to the new batch and -1). */
static void test_input_size(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/human/facemesh-detection-short.json", models_dir());
    fk__graph g;
    FK_CHECK_INT(load(&g, path), FK_OK);
    int64_t d[4] = {1, 256, 256, 3};
    const int64_t *dims[1] = {d};
    int rc = fk__graph_prepare(&g, dims);
    if (rc) fprintf(stderr, "prepare 256x256: %s\n", g.err);
    FK_CHECK_INT(rc, FK_OK);
    if (!rc && g.n_outputs == 1) {
        const fk__tensor *t = &g.t[g.outputs[0]];
        FK_CHECK_INT(t->rank, 3);
        FK_CHECK_INT(t->dims[1], 32 * 32 * 2 + 16 * 16 * 6);
        FK_CHECK_INT(t->dims[2], 17);
    }
    fk__graph_free(&g);
}

/* ---- a tiny hand-written model ------------------------------------------------------------------ */

static const char *tiny_json_fmt =
    "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": ["
    "{\"name\": \"x\", \"op\": \"Placeholder\", \"attr\": {\"dtype\": {\"type\": \"DT_FLOAT\"}, \"shape\": {\"shape\":"
    " {\"dim\": [{\"size\": \"-1\"}, {\"size\": \"4\"}, {\"size\": \"4\"}, {\"size\": \"2\"}]}}}},"
    "{\"name\": \"w\", \"op\": \"Const\", \"attr\": {}},"
    "{\"name\": \"b\", \"op\": \"Const\"},"
    "{\"name\": \"h\", \"op\": \"Const\"},"
    "{\"name\": \"k\", \"op\": \"Const\"},"
    "{\"name\": \"conv\", \"op\": \"Conv2D\", \"input\": [\"x\", \"w\"], \"attr\": {\"padding\": {\"s\": \"U0FNRQ==\"},"
    " \"strides\": {\"list\": {\"i\": [\"1\", \"2\", \"2\", \"1\"]}}, \"data_format\": {\"s\": \"TkhXQw==\"}}},"
    "{\"name\": \"add\", \"op\": \"BiasAdd\", \"input\": [\"conv\", \"b\", \"^x\"]},"
    "{\"name\": \"%s\", \"op\": \"%s\", \"input\": [\"add:0\"]},"
    "{\"name\": \"Identity\", \"op\": \"Identity\", \"input\": [\"act\"]}"
    "]}, \"weightsManifest\": [{\"paths\": [\"group1-shard1of2.bin\", \"group1-shard2of2.bin\"], \"weights\": ["
    "{\"name\": \"w\", \"shape\": [1, 1, 2, 3], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint8\","
    " \"scale\": 0.5, \"min\": -1}},"
    "{\"name\": \"b\", \"shape\": [3], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint16\", \"scale\": 0.25,"
    " \"min\": -2}},"
    "{\"name\": \"h\", \"shape\": [3], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"float16\","
    " \"original_dtype\": \"float32\"}},"
    "{\"name\": \"k\", \"shape\": [2], \"dtype\": \"int32\"}"
    "]}]}";

/* w: uint8 0..5; b: uint16 1, 256, 1000; h: float16 1.0, -2.0, smallest subnormal; k: int32 7, -3 */
static const unsigned char tiny_bin[26] = {0, 1, 2, 3, 4, 5, 1, 0, 0, 1, 0xe8, 0x03, 0x00, 0x3c, 0x00,
                                           0xc0, 0x01, 0x00, 7, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff};

static char tiny_path[512];

static void write_tiny(const char *act_name, const char *act_op, size_t json_len, size_t shard2_len) {
    char json[4096];
    int n = snprintf(json, sizeof json, tiny_json_fmt, act_name, act_op);
    write_file("model.json", json, json_len && json_len < (size_t)n ? json_len : (size_t)n);
    write_file("group1-shard1of2.bin", tiny_bin, 10);
    write_file("group1-shard2of2.bin", tiny_bin + 10, shard2_len);
}

static void test_tiny(void) {
    size_t base = fk_mem_in_use();
    write_tiny("act", "Relu6", 0, 16);
    fk__graph g;
    int rc = load(&g, tiny_path);
    if (rc) fprintf(stderr, "tiny: %s\n", g.err);
    FK_CHECK_INT(rc, FK_OK);
    const fk__tensor *w = tensor(&g, "w"), *b = tensor(&g, "b"), *h = tensor(&g, "h"), *k = tensor(&g, "k");
    FK_CHECK(w && b && h && k);
    if (w && b && h && k) {
        static const float wx[6] = {-1, 0.5f, -0.5f, 1, 0, 1.5f}; /* OIHW [3,2,1,1] of HWIO q*0.5-1 */
        FK_CHECK_INT(w->dims[0], 3);
        FK_CHECK_INT(w->dims[1], 2);
        for (int i = 0; i < 6; i++) FK_CHECK_NEAR(((float *)w->data)[i], wx[i], 0);
        FK_CHECK_NEAR(((float *)b->data)[0], -1.75, 0);
        FK_CHECK_NEAR(((float *)b->data)[1], 62, 0);
        FK_CHECK_NEAR(((float *)b->data)[2], 248, 0);
        FK_CHECK_NEAR(((float *)h->data)[0], 1.0, 0);
        FK_CHECK_NEAR(((float *)h->data)[1], -2.0, 0);
        FK_CHECK_NEAR(((float *)h->data)[2], 5.9604644775390625e-08, 0);
        FK_CHECK_INT(k->dtype, FK__DT_I32);
        FK_CHECK_INT(((int32_t *)k->data)[0], 7);
        FK_CHECK_INT(((int32_t *)k->data)[1], -3);
    }
    FK_CHECK_INT(g.nn, 4);
    if (g.nn == 4) {
        FK_CHECK_INT(g.n[0].op, FK__OP_CONV);
        FK_CHECK_INT(g.n[0].a.layout, FK__NHWC);
        FK_CHECK_INT(g.n[0].a.auto_pad, FK__AUTOPAD_SAME_UPPER);
        FK_CHECK_INT(g.n[0].a.stride[0], 2);
        FK_CHECK_INT(g.n[0].a.stride[1], 2);
        FK_CHECK_INT(g.n[1].op, FK__OP_ADD);
        FK_CHECK_INT(g.n[2].op, FK__OP_CLIP);
        FK_CHECK_NEAR(g.n[2].a.clip_max, 6, 0);
        FK_CHECK_INT(g.n[3].op, FK__OP_IDENTITY);
    }
    FK_CHECK_INT(g.n_inputs, 1);
    FK_CHECK_INT(g.n_outputs, 1);
    if (g.n_inputs == 1) FK_CHECK_INT(g.t[g.inputs[0]].dims[0], 1);
    if (g.n_outputs == 1) FK_CHECK_STR(g.t[g.outputs[0]].name, "Identity");
    fk__graph_free(&g);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

/* _FusedConv2D with FusedBatchNorm (TF.js itself cannot run it, so no reference run): the batch norm is
 * folded into the filter and bias, s = scale / sqrt(var + eps), w' = w * s, b' = offset - mean * s. */
static void test_fused_batch_norm(void) {
    static const char *json =
        "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": ["
        "{\"name\": \"x\", \"op\": \"Placeholder\", \"attr\": {\"shape\": {\"shape\": {\"dim\": [{\"size\": \"1\"},"
        " {\"size\": \"2\"}, {\"size\": \"2\"}, {\"size\": \"1\"}]}}}},"
        "{\"name\": \"w\", \"op\": \"Const\"}, {\"name\": \"sc\", \"op\": \"Const\"}, {\"name\": \"of\", \"op\": \"Const\"},"
        "{\"name\": \"mu\", \"op\": \"Const\"}, {\"name\": \"var\", \"op\": \"Const\"},"
        "{\"name\": \"cv\", \"op\": \"_FusedConv2D\", \"input\": [\"x\", \"w\", \"sc\", \"of\", \"mu\", \"var\"], \"attr\":"
        " {\"padding\": {\"s\": \"VkFMSUQ=\"}, \"num_args\": {\"i\": \"4\"}, \"epsilon\": {\"f\": 1},"
        " \"fused_ops\": {\"list\": {\"s\": [\"RnVzZWRCYXRjaE5vcm0=\", \"UmVsdQ==\"]}}}}"
        "]}, \"weightsManifest\": [{\"paths\": [\"bn.bin\"], \"weights\": ["
        "{\"name\": \"w\", \"shape\": [1, 1, 1, 2], \"dtype\": \"float32\"},"
        "{\"name\": \"sc\", \"shape\": [2], \"dtype\": \"float32\"}, {\"name\": \"of\", \"shape\": [2], \"dtype\": \"float32\"},"
        "{\"name\": \"mu\", \"shape\": [2], \"dtype\": \"float32\"}, {\"name\": \"var\", \"shape\": [2], \"dtype\": \"float32\"}"
        "]}]}";
    static const float bin[10] = {1, 2, /* scale */ 2, 3, /* offset */ 0.5f, -1, /* mean */ 1, 0, /* var */ 3, 0};
    write_file("bn.json", json, strlen(json));
    write_file("bn.bin", bin, sizeof bin);
    char p[512];
    snprintf(p, sizeof p, "%s/bn.json", tmpdir);
    fk__graph g;
    int rc = load(&g, p);
    if (rc) fprintf(stderr, "fused batch norm: %s\n", g.err);
    FK_CHECK_INT(rc, FK_OK);
    FK_CHECK_INT(g.nn, 1);
    if (!rc && g.nn == 1) {
        const fk__node *n = &g.n[0];
        FK_CHECK_INT(n->op, FK__OP_CONV);
        FK_CHECK_INT(n->n_in, 3);
        FK_CHECK_INT(n->a.act, FK__ACT_RELU);
        const fk__tensor *w = &g.t[n->in[1]], *b = &g.t[n->in[2]];
        FK_CHECK_INT(w->dims[0], 2);
        FK_CHECK_NEAR(((float *)w->data)[0], 1.0, 1e-6); /* s = 2 / sqrt(3 + 1) = 1 */
        FK_CHECK_NEAR(((float *)w->data)[1], 6.0, 1e-6); /* s = 3 / sqrt(0 + 1) = 3 */
        FK_CHECK_NEAR(((float *)b->data)[0], -0.5, 1e-6);
        FK_CHECK_NEAR(((float *)b->data)[1], -1.0, 1e-6);
    }
    fk__graph_free(&g);
}

static void expect_error(const char *what, int want, const char *needle1, const char *needle2) {
    size_t base = fk_mem_in_use();
    fk__graph g;
    int rc = load(&g, tiny_path);
    FK_CHECK_INT(rc, want);
    if (rc != want || (needle1 && !strstr(g.err, needle1)) || (needle2 && !strstr(g.err, needle2)))
        fprintf(stderr, "%s: message was: %s\n", what, g.err);
    if (needle1) FK_CHECK(strstr(g.err, needle1) != NULL);
    if (needle2) FK_CHECK(strstr(g.err, needle2) != NULL);
    fk__graph_free(&g);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

static void test_errors(void) {
    write_tiny("myerf", "Erf", 0, 16);
    expect_error("unsupported op", FK_EUNSUPPORTED, "Erf", "myerf");

    write_tiny("w", "Relu6", 0, 16); /* a node named like a constant */
    expect_error("duplicate name", FK_EFORMAT, "duplicate", "'w'");

    write_tiny("act", "Relu6", 300, 16);
    expect_error("truncated json", FK_EFORMAT, "model.json", "JSON");

    write_tiny("act", "Relu6", 0, 15);
    expect_error("short shard", FK_EFORMAT, "group1-shard2of2.bin", "short");

    write_tiny("act", "Relu6", 0, 16);
    char p[512];
    snprintf(p, sizeof p, "%s/group1-shard2of2.bin", tmpdir);
    unlink(p);
    expect_error("missing shard", FK_EIO, "group1-shard2of2.bin", NULL);

    write_tiny("act", "Relu6", 0, 16);
    unsigned char big[17];
    memcpy(big, tiny_bin + 10, 16);
    big[16] = 0;
    write_file("group1-shard2of2.bin", big, 17);
    expect_error("long shard", FK_EFORMAT, "group1-shard2of2.bin", "longer");

    snprintf(p, sizeof p, "%s/nothere.json", tmpdir);
    size_t base = fk_mem_in_use();
    fk__graph g;
    FK_CHECK_INT(load(&g, p), FK_EIO);
    FK_CHECK(strstr(g.err, "nothere.json") != NULL);
    fk__graph_free(&g);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

/* Every allocation failing in turn: FK_ENOMEM (or success once N passes the count), nothing leaked. */
static void fault_inject(const char *path, long step, long max_n) {
    size_t base = fk_mem_in_use();
    int ok = 0, bad = 0;
    long n;
    for (n = 1; n <= max_n; n += step) {
        fk__graph g;
        if (fk__graph_init(&g, path, "tfjs")) {
            bad++;
            break;
        }
        fk__alloc_fail_at(n);
        int rc = fk__tfjs_load(&g, path);
        fk__alloc_fail_at(0);
        if (rc != FK_OK && rc != FK_ENOMEM) {
            if (!bad) fprintf(stderr, "fail_at %ld: status %d: %s\n", n, rc, g.err);
            bad++;
        }
        fk__graph_free(&g);
        if (fk_mem_in_use() != base) {
            if (!bad) fprintf(stderr, "fail_at %ld: leaked %zu bytes\n", n, fk_mem_in_use() - base);
            bad++;
        }
        if (rc == FK_OK) {
            ok = 1;
            break;
        }
    }
    printf("fault injection %s: %ld allocation points tried\n", path, (n - 1) / step + 1);
    FK_CHECK_INT(bad, 0);
    if (max_n > 100000) FK_CHECK(ok);
}

/* Random bit flips in model.json and the shards: an error or a correct load, never a crash or a leak. */
static void bit_flips(const char *model, int rounds) {
    char src[512];
    snprintf(src, sizeof src, "%s/human/%s.json", models_dir(), model);
    size_t jn, bn;
    unsigned char *json = slurp(src, &jn);
    snprintf(src, sizeof src, "%s/human/%s.bin", models_dir(), model);
    unsigned char *bin = slurp(src, &bn);
    FK_CHECK(json && bin);
    if (!json || !bin) return;
    char name[64];
    snprintf(name, sizeof name, "%s.bin", model);
    write_file(name, bin, bn);
    snprintf(name, sizeof name, "%s.json", model);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    size_t base = fk_mem_in_use();
    int loaded = 0, failed = 0, leaks = 0;
    srand(1234);
    for (int r = 0; r < rounds; r++) {
        unsigned char *j = malloc(jn);
        memcpy(j, json, jn);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++) j[(size_t)rand() % jn] ^= (unsigned char)(1u << (rand() % 8));
        write_file(name, j, jn);
        free(j);
        fk__graph g;
        int rc = load(&g, path);
        if (rc == FK_OK) rc = fk__graph_prepare(&g, NULL); /* a damaged graph that loads must not crash later */
        if (rc == FK_OK) loaded++;
        else failed++;
        FK_CHECK(rc == FK_OK || g.err[0]);
        fk__graph_free(&g);
        if (fk_mem_in_use() != base) leaks++;
    }
    /* weight bytes are just numbers: flips there still load */
    write_file(name, json, jn);
    for (int f = 0; f < 64; f++) bin[(size_t)rand() % bn] ^= (unsigned char)(1u << (rand() % 8));
    snprintf(name, sizeof name, "%s.bin", model);
    write_file(name, bin, bn);
    fk__graph g;
    FK_CHECK_INT(load(&g, path), FK_OK);
    fk__graph_free(&g);
    printf("bit flips %s: %d loaded and prepared, %d rejected\n", model, loaded, failed);
    FK_CHECK_INT(leaks, 0);
    FK_CHECK_INT(fk_mem_in_use(), base);
    free(json);
    free(bin);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fk_test_tfjs_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(tiny_path, sizeof tiny_path, "%s/model.json", tmpdir);

    test_models();
    test_float16_weights();
    test_input_size();
    test_tiny();
    test_fused_batch_norm();
    test_errors();

    write_tiny("act", "Relu6", 0, 16);
    fault_inject(tiny_path, 1, 1000000);
    char path[512];
    snprintf(path, sizeof path, "%s/human/antispoof.json", models_dir());
    fault_inject(path, 97, 3000);
    /* FK_FUZZ_ROUNDS raises the count for a longer run by hand (under ASan) */
    int rounds = getenv("FK_FUZZ_ROUNDS") ? atoi(getenv("FK_FUZZ_ROUNDS")) : 300;
    bit_flips("antispoof", rounds);
    bit_flips("facemesh-detection-short", rounds / 3);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return fk_t_finish();
}
