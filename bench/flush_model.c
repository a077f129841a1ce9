/*
 * flush_model.c — bench helper: writes a copy of an ONNX model whose float weights with |w| < 1e-10 are set
 * to zero. facekit runs with flush-to-zero/denormals-are-zero, so subnormal weights cost it nothing; ONNX
 * Runtime computes them at full (microcoded) cost. Giving ORT the flushed copy makes the comparison in
 * bench_nn.js start from the same math. Usage: fk_flush_model IN.onnx OUT.onnx (prints how many were zeroed).
 * Initializers are also searched inside Constant nodes. A bench tool, not part of the library.
 */
#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long flush_tensor(Onnx__TensorProto *t) {
    long n = 0;
    if (!t || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return 0;
    for (size_t i = 0; i < t->n_float_data; i++)
        if (t->float_data[i] != 0.0f && fabsf(t->float_data[i]) < 1e-10f) t->float_data[i] = 0.0f, n++;
    if (t->has_raw_data) {
        size_t cnt = t->raw_data.len / 4;
        for (size_t i = 0; i < cnt; i++) {
            float v;
            memcpy(&v, t->raw_data.data + 4 * i, 4); /* little-endian host, as ONNX raw_data */
            if (v != 0.0f && fabsf(v) < 1e-10f) {
                v = 0.0f;
                memcpy(t->raw_data.data + 4 * i, &v, 4);
                n++;
            }
        }
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fk_flush_model IN.onnx OUT.onnx\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: read failed\n", argv[1]);
        return 1;
    }
    fclose(f);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, (size_t)size, buf);
    if (!m || !m->graph) {
        fprintf(stderr, "%s: not an ONNX model\n", argv[1]);
        return 1;
    }
    long n = 0;
    for (size_t i = 0; i < m->graph->n_initializer; i++) n += flush_tensor(m->graph->initializer[i]);
    for (size_t i = 0; i < m->graph->n_node; i++)
        for (size_t a = 0; a < m->graph->node[i]->n_attribute; a++) n += flush_tensor(m->graph->node[i]->attribute[a]->t);
    size_t out_len = onnx__model_proto__get_packed_size(m);
    unsigned char *out = malloc(out_len);
    if (!out) return 1;
    onnx__model_proto__pack(m, out);
    f = fopen(argv[2], "wb");
    if (!f || fwrite(out, 1, out_len, f) != out_len || fclose(f)) {
        perror(argv[2]);
        return 1;
    }
    printf("%ld\n", n);
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
    free(out);
    return 0;
}
