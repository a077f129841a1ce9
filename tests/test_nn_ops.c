/*
 * test_nn_ops.c — every reference kernel (ops_ref.c) and its shape inference (ops.c) on small graphs built
 * by hand, against values computed by hand: convolution (grouped, depthwise, dilated, SAME pads with the
 * extra row at the end or the beginning, both layouts), pooling (ceil mode, count_include_pad), softmax,
 * broadcasting binaries, 5-D transpose, Slice (INT64_MAX ends, negative steps), Gather, Pad modes,
 * reductions, Resize, DepthToSpace DCR/CRD, Gemm transposes, MatMul batch broadcast, ConvTranspose, Cast,
 * Concat/Split, activations. Each graph runs through the public session API with use_reference = 1.
 */
#include "nn_tgraph.h"

#include <limits.h>

/* one-op graph on input X (shape XD), extra constant inputs already in IN[1..], output values OUT */
static fk_nn_model_t *run1(int op, int n_in, int *in, const float *x, float *out, fk__attr *attr) {
    int y;
    fk__node *n = tg_node(op, n_in, in, &y);
    int64_t keep_slope = n->a.act_slope;
    if (attr) n->a = *attr;
    (void)keep_slope;
    tg_output(y);
    return tg_run(&x, &out);
}

static fk__attr A0(void) {
    fk__attr a;
    fk__attr_defaults(&a);
    return a;
}

static const float seq9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_conv(void) {
    float out[64];
    fk_nn_model_t *m;
    /* diagonal 2x2 kernel + bias, both layouts (one channel: same memory order) */
    for (int layout = 0; layout < 2; layout++) {
        tg_begin();
        int x = layout ? tg_in(DIMS(1, 3, 3, 1)) : tg_in(DIMS(1, 1, 3, 3));
        int in[3] = {x, tg_const(DIMS(1, 1, 2, 2), FV(1, 0, 0, 1)), tg_const(DIMS(1), FV(1))};
        fk__attr a = A0();
        a.layout = layout;
        m = run1(FK__OP_CONV, 3, in, seq9, out, &a);
        check_vals("conv diag", out, FV(7, 9, 13, 15), 4, 1e-6f);
        check_shape(m, 0, 4, layout ? (int64_t[]){1, 2, 2, 1} : (int64_t[]){1, 1, 2, 2});
        fk_nn_model_close(m);
    }
    /* pads 1, stride 2, 3x3 ones */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 3, 3));
        int in[2] = {x, tg_const(DIMS(1, 1, 3, 3), FV(1, 1, 1, 1, 1, 1, 1, 1, 1))};
        fk__attr a = A0();
        a.pads[0] = a.pads[1] = a.pads[2] = a.pads[3] = 1;
        a.stride[0] = a.stride[1] = 2;
        m = run1(FK__OP_CONV, 2, in, seq9, out, &a);
        check_vals("conv pad stride", out, FV(12, 16, 24, 28), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* dilation 2 on 5x5 ramp: y[i][j] = 4*(5i+j) + 24 */
    tg_begin();
    {
        float x5[25], want[9];
        for (int i = 0; i < 25; i++) x5[i] = (float)i;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) want[i * 3 + j] = 4.0f * (5 * i + j) + 24;
        int x = tg_in(DIMS(1, 1, 5, 5));
        int in[2] = {x, tg_const(DIMS(1, 1, 2, 2), FV(1, 1, 1, 1))};
        fk__attr a = A0();
        a.dilation[0] = a.dilation[1] = 2;
        m = run1(FK__OP_CONV, 2, in, x5, out, &a);
        check_vals("conv dilated", out, want, 9, 1e-5f);
        fk_nn_model_close(m);
    }
    /* group 2 */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 4, 1, 1));
        int in[2] = {x, tg_const(DIMS(2, 2, 1, 1), FV(1, 1, 1, -1))};
        fk__attr a = A0();
        a.group = 2;
        m = run1(FK__OP_CONV, 2, in, FV(1, 2, 3, 4), out, &a);
        check_vals("conv grouped", out, FV(3, -1), 2, 1e-6f);
        fk_nn_model_close(m);
    }
    /* depthwise, both layouts */
    for (int layout = 0; layout < 2; layout++) {
        tg_begin();
        int x = tg_in(DIMS(1, 2, 2, 2));
        int in[2] = {x, tg_const(DIMS(2, 1, 1, 1), FV(2, 3))};
        fk__attr a = A0();
        a.group = 2;
        a.layout = layout;
        m = run1(FK__OP_CONV, 2, in, layout ? FV(1, 5, 2, 6, 3, 7, 4, 8) : FV(1, 2, 3, 4, 5, 6, 7, 8), out, &a);
        if (layout)
            check_vals("conv depthwise nhwc", out, FV(2, 15, 4, 18, 6, 21, 8, 24), 8, 1e-6f);
        else
            check_vals("conv depthwise nchw", out, FV(2, 4, 6, 8, 15, 18, 21, 24), 8, 1e-6f);
        fk_nn_model_close(m);
    }
    /* TF SAME on 4x4, k3 s2: total pad 1 -> end (SAME_UPPER) or begin (SAME_LOWER) */
    float ones16[16];
    for (int i = 0; i < 16; i++) ones16[i] = 1;
    for (int layout = 0; layout < 2; layout++)
        for (int lower = 0; lower < 2; lower++) {
            tg_begin();
            int x = layout ? tg_in(DIMS(1, 4, 4, 1)) : tg_in(DIMS(1, 1, 4, 4));
            int in[2] = {x, tg_const(DIMS(1, 1, 3, 3), FV(1, 1, 1, 1, 1, 1, 1, 1, 1))};
            fk__attr a = A0();
            a.layout = layout;
            a.stride[0] = a.stride[1] = 2;
            a.auto_pad = lower ? FK__AUTOPAD_SAME_LOWER : FK__AUTOPAD_SAME_UPPER;
            m = run1(FK__OP_CONV, 2, in, ones16, out, &a);
            check_vals(lower ? "conv same_lower" : "conv same_upper", out, lower ? FV(4, 6, 6, 9) : FV(9, 6, 6, 4), 4,
                       1e-6f);
            const fk__node *n = &fk__nn_model_graph(m)->n[0];
            FK_CHECK_INT(n->a.pads[0], lower ? 1 : 0);
            FK_CHECK_INT(n->a.pads[2], lower ? 0 : 1);
            FK_CHECK_INT(n->a.auto_pad, FK__AUTOPAD_NONE);
            fk_nn_model_close(m);
        }
    /* SAME formula on odd sizes: in 7, k 3, s 2, dilation 2 -> out 4, total = 3*2 + 5 - 7 = 4: 2 and 2 */
    tg_begin();
    {
        float x49[49];
        for (int i = 0; i < 49; i++) x49[i] = 1;
        int x = tg_in(DIMS(1, 1, 7, 7));
        int in[2] = {x, tg_const(DIMS(1, 1, 3, 3), FV(1, 1, 1, 1, 1, 1, 1, 1, 1))};
        fk__attr a = A0();
        a.stride[0] = a.stride[1] = 2;
        a.dilation[0] = a.dilation[1] = 2;
        a.auto_pad = FK__AUTOPAD_SAME_UPPER;
        m = run1(FK__OP_CONV, 2, in, x49, out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 1, 4, 4});
        FK_CHECK_INT(fk__nn_model_graph(m)->n[0].a.pads[0], 2);
        FK_CHECK_INT(fk__nn_model_graph(m)->n[0].a.pads[2], 2);
        /* corner: rows -2,0,2 -> 2 valid, cols the same -> 4 */
        FK_CHECK_NEAR(out[0], 4, 1e-6);
        fk_nn_model_close(m);
    }
    /* fused activations on conv (set by hand): relu, clip, leaky, prelu per channel */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 2, 1, 2));
        int slope = tg_const(DIMS(2, 1, 1), FV(0.5f, 0.25f));
        int in[2] = {x, tg_const(DIMS(2, 2, 1, 1), FV(1, 0, 0, 1))};
        fk__attr a = A0();
        a.act = FK__ACT_PRELU;
        a.act_slope = slope;
        m = run1(FK__OP_CONV, 2, in, FV(-2, 3, -4, 5), out, &a);
        check_vals("conv+prelu", out, FV(-1, 3, -1, 5), 4, 1e-6f);
        fk_nn_model_close(m);
    }
}

static void test_conv_transpose(void) {
    float out[64];
    fk_nn_model_t *m;
    /* stride 2, k 2: each pixel becomes a 2x2 block */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 2, 2));
        int in[2] = {x, tg_const(DIMS(1, 1, 2, 2), FV(1, 1, 1, 1))};
        fk__attr a = A0();
        a.stride[0] = a.stride[1] = 2;
        m = run1(FK__OP_CONV_TRANSPOSE, 2, in, FV(1, 2, 3, 4), out, &a);
        check_vals("convT s2", out, FV(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4), 16, 1e-6f);
        fk_nn_model_close(m);
    }
    /* stride 1, k 2 -> 3x3 overlapping sums, plus bias */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 2, 2));
        int in[3] = {x, tg_const(DIMS(1, 1, 2, 2), FV(1, 1, 1, 1)), tg_const(DIMS(1), FV(0.5f))};
        m = run1(FK__OP_CONV_TRANSPOSE, 3, in, FV(1, 2, 3, 4), out, NULL);
        check_vals("convT s1", out, FV(1.5f, 3.5f, 2.5f, 4.5f, 10.5f, 6.5f, 3.5f, 7.5f, 4.5f), 9, 1e-6f);
        fk_nn_model_close(m);
    }
    /* explicit output size 4x4 with k3 s2 (full 5x5): the extra row/col is cut at the end */
    for (int layout = 0; layout < 2; layout++) {
        tg_begin();
        int x = layout ? tg_in(DIMS(1, 2, 2, 1)) : tg_in(DIMS(1, 1, 2, 2));
        int in[2] = {x, tg_const(DIMS(1, 1, 3, 3), FV(1, 1, 1, 1, 1, 1, 1, 1, 1))};
        fk__attr a = A0();
        a.layout = layout;
        a.stride[0] = a.stride[1] = 2;
        a.out_hw[0] = a.out_hw[1] = 4;
        m = run1(FK__OP_CONV_TRANSPOSE, 2, in, FV(1, 2, 3, 4), out, &a);
        check_vals("convT out_hw", out, FV(1, 1, 3, 2, 1, 1, 3, 2, 4, 4, 10, 6, 3, 3, 7, 4), 16, 1e-6f);
        fk_nn_model_close(m);
    }
    /* output_padding 1: k2 s2 on 2x2 -> 5x5, last row/col only bias */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 2, 2));
        int in[3] = {x, tg_const(DIMS(1, 1, 2, 2), FV(1, 1, 1, 1)), tg_const(DIMS(1), FV(1))};
        fk__attr a = A0();
        a.stride[0] = a.stride[1] = 2;
        a.out_pad[0] = a.out_pad[1] = 1;
        m = run1(FK__OP_CONV_TRANSPOSE, 3, in, FV(1, 2, 3, 4), out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 1, 5, 5});
        FK_CHECK_NEAR(out[0], 2, 1e-6);
        FK_CHECK_NEAR(out[4], 1, 1e-6);
        FK_CHECK_NEAR(out[24], 1, 1e-6);
        FK_CHECK_NEAR(out[18], 5, 1e-6);
        fk_nn_model_close(m);
    }
}

static void test_pool(void) {
    float out[64], x16[16];
    fk_nn_model_t *m;
    for (int i = 0; i < 16; i++) x16[i] = (float)i;
    for (int layout = 0; layout < 2; layout++) {
        tg_begin();
        int x = layout ? tg_in(DIMS(1, 4, 4, 1)) : tg_in(DIMS(1, 1, 4, 4));
        fk__attr a = A0();
        a.layout = layout;
        a.kernel[0] = a.kernel[1] = a.stride[0] = a.stride[1] = 2;
        m = run1(FK__OP_MAX_POOL, 1, &x, x16, out, &a);
        check_vals("maxpool", out, FV(5, 7, 13, 15), 4, 0);
        fk_nn_model_close(m);
    }
    /* ceil mode on 3x3, k2 s2 */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 3, 3));
        fk__attr a = A0();
        a.kernel[0] = a.kernel[1] = a.stride[0] = a.stride[1] = 2;
        a.ceil_mode = 1;
        m = run1(FK__OP_MAX_POOL, 1, &x, seq9, out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 1, 2, 2});
        check_vals("maxpool ceil", out, FV(5, 6, 8, 9), 4, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 3, 3));
        fk__attr a = A0();
        a.kernel[0] = a.kernel[1] = a.stride[0] = a.stride[1] = 2;
        a.ceil_mode = 1;
        m = run1(FK__OP_AVG_POOL, 1, &x, seq9, out, &a);
        check_vals("avgpool ceil", out, FV(3, 4.5f, 7.5f, 9), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* ceil mode with count_include_pad: the part of the window past the end padding never counts */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 3, 3));
        fk__attr a = A0();
        a.kernel[0] = a.kernel[1] = a.stride[0] = a.stride[1] = 2;
        a.ceil_mode = 1;
        a.count_include_pad = 1;
        m = run1(FK__OP_AVG_POOL, 1, &x, seq9, out, &a);
        check_vals("avgpool ceil cip", out, FV(3, 4.5f, 7.5f, 9), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* pads 1, k3 s1: corners divide by 9 (count_include_pad) or by 4 */
    for (int cip = 0; cip < 2; cip++) {
        tg_begin();
        int x = tg_in(DIMS(1, 1, 3, 3));
        fk__attr a = A0();
        a.kernel[0] = a.kernel[1] = 3;
        a.pads[0] = a.pads[1] = a.pads[2] = a.pads[3] = 1;
        a.count_include_pad = cip;
        m = run1(FK__OP_AVG_POOL, 1, &x, seq9, out, &a);
        FK_CHECK_NEAR(out[0], cip ? 12.0 / 9 : 3.0, 1e-6);
        FK_CHECK_NEAR(out[4], 5.0, 1e-6);
        FK_CHECK_NEAR(out[8], cip ? 28.0 / 9 : 7.0, 1e-6);
        fk_nn_model_close(m);
    }
    /* global average, NHWC */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 2, 2, 2));
        fk__attr a = A0();
        a.layout = FK__NHWC;
        m = run1(FK__OP_GLOBAL_AVG_POOL, 1, &x, FV(1, 10, 2, 20, 3, 30, 4, 40), out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 1, 1, 2});
        check_vals("gap nhwc", out, FV(2.5f, 25), 2, 1e-6f);
        fk_nn_model_close(m);
    }
}

static void test_elementwise(void) {
    float out[64];
    fk_nn_model_t *m;
    /* softmax rows */
    tg_begin();
    {
        int x = tg_in(DIMS(2, 3));
        fk__attr a = A0();
        a.axis = -1;
        m = run1(FK__OP_SOFTMAX, 1, &x, FV(1, 2, 3, 1, 1, 1), out, &a);
        check_vals("softmax", out, FV(0.09003057f, 0.24472847f, 0.66524096f, 1 / 3.f, 1 / 3.f, 1 / 3.f), 6, 1e-6f);
        fk_nn_model_close(m);
    }
    /* softmax over axis 0 */
    tg_begin();
    {
        int x = tg_in(DIMS(2, 2));
        fk__attr a = A0();
        a.axis = 0;
        m = run1(FK__OP_SOFTMAX, 1, &x, FV(0, 5, 0, 5), out, &a);
        check_vals("softmax axis0", out, FV(0.5f, 0.5f, 0.5f, 0.5f), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* broadcasting */
    struct {
        int op;
        int rx, ry;
        int64_t dx[3], dy[3];
        float y[6];
        float want[12];
        int nwant;
    } cases[] = {
        {FK__OP_ADD, 2, 1, {2, 3}, {3}, {10, 20, 30}, {11, 22, 33, 14, 25, 36}, 6},
        {FK__OP_SUB, 2, 2, {2, 3}, {2, 1}, {100, 200}, {-99, -98, -97, -196, -195, -194}, 6},
        {FK__OP_MUL, 2, 0, {2, 3}, {0}, {2}, {2, 4, 6, 8, 10, 12}, 6},
        {FK__OP_DIV, 2, 2, {2, 3}, {1, 3}, {1, 2, 4}, {1, 1, 0.75f, 4, 2.5f, 1.5f}, 6},
        {FK__OP_MAX, 2, 1, {2, 3}, {3}, {3, 3, 3}, {3, 3, 3, 4, 5, 6}, 6},
        {FK__OP_MIN, 2, 1, {2, 3}, {3}, {3, 3, 3}, {1, 2, 3, 3, 3, 3}, 6},
        {FK__OP_POW, 2, 0, {2, 3}, {0}, {2}, {1, 4, 9, 16, 25, 36}, 6},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_begin();
        int x = tg_in(cases[c].rx, cases[c].dx);
        int in[2] = {x, tg_const(cases[c].ry, cases[c].dy, cases[c].y)};
        m = run1(cases[c].op, 2, in, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_vals(fk__op_name(cases[c].op), out, cases[c].want, cases[c].nwant, 1e-6f);
        fk_nn_model_close(m);
    }
    /* both sides broadcast: [3,1] + [1,2] -> [3,2], two graph inputs */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(3, 1)), tg_in(DIMS(1, 2))};
        int y;
        tg_node(FK__OP_ADD, 2, in, &y);
        tg_output(y);
        const float *ins[2] = {FV(1, 2, 3), FV(10, 20)};
        float *outs[1] = {out};
        m = tg_run(ins, outs);
        check_shape(m, 0, 2, (int64_t[]){3, 2});
        check_vals("add 2-sided", out, FV(11, 21, 12, 22, 13, 23), 6, 0);
        fk_nn_model_close(m);
    }
    /* axes merged by the broadcast walker: same shape 3-D, per-channel [2,1,1] on [1,2,1,3] */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(1, 2, 1, 3)), tg_const(DIMS(1, 2, 1, 3), FV(1, 1, 1, 2, 2, 2))};
        m = run1(FK__OP_MUL, 2, in, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_vals("mul same shape", out, FV(1, 2, 3, 8, 10, 12), 6, 0);
        fk_nn_model_close(m);
        tg_begin();
        int in2[2] = {tg_in(DIMS(1, 2, 1, 3)), tg_const(DIMS(2, 1, 1), FV(10, 20))};
        m = run1(FK__OP_ADD, 2, in2, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_vals("add per channel", out, FV(11, 12, 13, 24, 25, 26), 6, 0);
        fk_nn_model_close(m);
        tg_begin();
        int in3[2] = {tg_in(DIMS(2, 1, 3)), tg_const(DIMS(1, 2, 1), FV(10, 20))};
        m = run1(FK__OP_SUB, 2, in3, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_shape(m, 0, 3, (int64_t[]){2, 2, 3});
        check_vals("sub outer", out, FV(-9, -8, -7, -19, -18, -17, -6, -5, -4, -16, -15, -14), 12, 0);
        fk_nn_model_close(m);
    }
    /* PRelu with per-channel slope [2,1,1] on [1,2,1,2] */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(1, 2, 1, 2)), tg_const(DIMS(2, 1, 1), FV(0.1f, 0.2f))};
        m = run1(FK__OP_PRELU, 2, in, FV(-1, 1, -1, 1), out, NULL);
        check_vals("prelu", out, FV(-0.1f, 1, -0.2f, 1), 4, 1e-7f);
        fk_nn_model_close(m);
    }
    /* unary */
    struct {
        int op;
        float want[4];
    } un[] = {
        {FK__OP_RELU, {0, 0, 0.5f, 4}},
        {FK__OP_SIGMOID, {0.11920292f, 0.5f, 0.62245933f, 0.98201379f}},
        {FK__OP_TANH, {-0.96402758f, 0, 0.46211716f, 0.99932930f}},
        {FK__OP_EXP, {0.13533528f, 1, 1.64872127f, 54.59815003f}},
        {FK__OP_ABS, {2, 0, 0.5f, 4}},
        {FK__OP_NEG, {2, 0, -0.5f, -4}},
        {FK__OP_SQUARE, {4, 0, 0.25f, 16}},
    };
    for (size_t c = 0; c < sizeof un / sizeof un[0]; c++) {
        tg_begin();
        int x = tg_in(DIMS(4));
        m = run1(un[c].op, 1, &x, FV(-2, 0, 0.5f, 4), out, NULL);
        check_vals(fk__op_name(un[c].op), out, un[c].want, 4, 1e-5f);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(3));
        m = run1(FK__OP_SQRT, 1, &x, FV(4, 9, 0.25f), out, NULL);
        check_vals("sqrt", out, FV(2, 3, 0.5f), 3, 1e-6f);
        fk_nn_model_close(m);
        tg_begin();
        x = tg_in(DIMS(3));
        m = run1(FK__OP_RSQRT, 1, &x, FV(4, 16, 0.25f), out, NULL);
        check_vals("rsqrt", out, FV(0.5f, 0.25f, 2), 3, 1e-6f);
        fk_nn_model_close(m);
    }
    /* clip (ONNX-11 form: bounds as constant inputs) and leaky relu */
    tg_begin();
    {
        int in[3] = {tg_in(DIMS(4)), tg_const(0, NULL, FV(0)), tg_const(0, NULL, FV(6))};
        m = run1(FK__OP_CLIP, 3, in, FV(-1, 3, 6, 7), out, NULL);
        check_vals("clip", out, FV(0, 3, 6, 6), 4, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(2));
        fk__attr a = A0();
        a.alpha = 0.1f;
        m = run1(FK__OP_LEAKY_RELU, 1, &x, FV(-5, 5), out, &a);
        check_vals("leaky", out, FV(-0.5f, 5), 2, 1e-6f);
        fk_nn_model_close(m);
    }
    /* batch norm as scale/shift, NHWC channel last */
    tg_begin();
    {
        int in[3] = {tg_in(DIMS(1, 1, 2, 2)), tg_const(DIMS(2), FV(2, 3)), tg_const(DIMS(2), FV(1, -1))};
        fk__attr a = A0();
        a.layout = FK__NHWC;
        m = run1(FK__OP_BATCH_NORM, 3, in, FV(1, 1, 2, 2), out, &a);
        check_vals("bn nhwc", out, FV(3, 2, 5, 5), 4, 0);
        fk_nn_model_close(m);
    }
}

static void test_matrix(void) {
    float out[64];
    fk_nn_model_t *m;
    /* Gemm: A [2,3], B stored [2,3] used transposed, alpha 2, beta 1, C [2] */
    for (int ta = 0; ta < 2; ta++) {
        tg_begin();
        int x = ta ? tg_in(DIMS(3, 2)) : tg_in(DIMS(2, 3));
        int in[3] = {x, tg_const(DIMS(2, 3), FV(1, 0, 1, 0, 1, 0)), tg_const(DIMS(2), FV(1, 1))};
        fk__attr a = A0();
        a.trans_a = ta;
        a.trans_b = 1;
        a.alpha = 2;
        m = run1(FK__OP_GEMM, 3, in, ta ? FV(1, 4, 2, 5, 3, 6) : FV(1, 2, 3, 4, 5, 6), out, &a);
        check_vals("gemm", out, FV(9, 5, 21, 11), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* Gemm without transposes, C [2,1] broadcast over columns, beta 0.5 */
    tg_begin();
    {
        int in[3] = {tg_in(DIMS(2, 2)), tg_const(DIMS(2, 2), FV(1, 2, 3, 4)), tg_const(DIMS(2, 1), FV(2, 4))};
        fk__attr a = A0();
        a.beta = 0.5f;
        m = run1(FK__OP_GEMM, 3, in, FV(1, 0, 0, 1), out, &a);
        check_vals("gemm C col", out, FV(2, 3, 5, 6), 4, 1e-6f);
        fk_nn_model_close(m);
    }
    /* MatMul: [2,1,1,2] x [3,2,1] -> [2,3,1,1] */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(2, 1, 1, 2)), tg_const(DIMS(3, 2, 1), FV(1, 10, 2, 20, 3, 30))};
        m = run1(FK__OP_MATMUL, 2, in, FV(1, 2, 3, 4), out, NULL);
        check_shape(m, 0, 4, (int64_t[]){2, 3, 1, 1});
        check_vals("matmul bcast", out, FV(21, 42, 63, 43, 86, 129), 6, 1e-5f);
        fk_nn_model_close(m);
    }
    /* MatMul with a 1-D right side: [2,3] x [3] -> [2] */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(2, 3)), tg_const(DIMS(3), FV(1, 1, 1))};
        m = run1(FK__OP_MATMUL, 2, in, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_shape(m, 0, 1, (int64_t[]){2});
        check_vals("matmul 1d", out, FV(6, 15), 2, 1e-6f);
        fk_nn_model_close(m);
    }
}

static void test_movement(void) {
    float out[64], x12[12];
    fk_nn_model_t *m;
    for (int i = 0; i < 12; i++) x12[i] = (float)i;
    /* 5-D transpose */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 2, 3, 1, 2));
        fk__attr a = A0();
        int perm[5] = {4, 2, 0, 3, 1};
        memcpy(a.perm, perm, sizeof perm);
        a.n_perm = 5;
        m = run1(FK__OP_TRANSPOSE, 1, &x, x12, out, &a);
        check_shape(m, 0, 5, (int64_t[]){2, 3, 1, 1, 2});
        check_vals("transpose5d", out, FV(0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11), 12, 0);
        fk_nn_model_close(m);
    }
    /* Slice, ONNX-10 form: reverse with INT64_MIN end, step 2 to INT64_MAX, negative step -2 */
    struct {
        int64_t s, e, st;
        float want[5];
        int n;
    } sl[] = {{-1, INT64_MIN, -1, {4, 3, 2, 1, 0}, 5},
              {1, INT64_MAX, 2, {1, 3}, 2},
              {3, 0, -2, {3, 1}, 2},
              {-3, -1, 1, {2, 3}, 2},
              {10, 20, 1, {0}, 0}};
    for (size_t c = 0; c < sizeof sl / sizeof sl[0]; c++) {
        tg_begin();
        int in[5] = {tg_in(DIMS(1, 5)), tg_consti(DIMS(1), IV(sl[c].s)), tg_consti(DIMS(1), IV(sl[c].e)),
                     tg_consti(DIMS(1), IV(-1)), tg_consti(DIMS(1), IV(sl[c].st))};
        m = run1(FK__OP_SLICE, 5, in, FV(0, 1, 2, 3, 4), out, NULL);
        check_shape(m, 0, 2, (int64_t[]){1, sl[c].n});
        check_vals("slice", out, sl[c].want, sl[c].n, 0);
        fk_nn_model_close(m);
    }
    /* Slice, attribute form on a 2-D tensor: rows 1.., columns reversed */
    tg_begin();
    {
        int x = tg_in(DIMS(3, 4));
        fk__attr a = A0();
        a.s_n = 2;
        a.s_axes[0] = 0, a.s_starts[0] = 1, a.s_ends[0] = INT64_MAX, a.s_steps[0] = 1;
        a.s_axes[1] = -1, a.s_starts[1] = -1, a.s_ends[1] = INT64_MIN, a.s_steps[1] = -1;
        m = run1(FK__OP_SLICE, 1, &x, x12, out, &a);
        check_shape(m, 0, 2, (int64_t[]){2, 4});
        check_vals("slice attr", out, FV(7, 6, 5, 4, 11, 10, 9, 8), 8, 0);
        fk_nn_model_close(m);
    }
    /* Gather rows, then one column with a negative scalar index */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(3, 2)), tg_consti(DIMS(2), IV(2, 0))};
        m = run1(FK__OP_GATHER, 2, in, FV(1, 2, 3, 4, 5, 6), out, NULL);
        check_vals("gather axis0", out, FV(5, 6, 1, 2), 4, 0);
        fk_nn_model_close(m);
        tg_begin();
        int in2[2] = {tg_in(DIMS(3, 2)), tg_consti(0, NULL, IV(-1))};
        fk__attr a = A0();
        a.axis = 1;
        m = run1(FK__OP_GATHER, 2, in2, FV(1, 2, 3, 4, 5, 6), out, &a);
        check_shape(m, 0, 1, (int64_t[]){3});
        check_vals("gather axis1", out, FV(2, 4, 6), 3, 0);
        fk_nn_model_close(m);
    }
    /* Pad modes: [1,3] with 2 before and 1 after on axis 1 */
    const float want_pad[3][6] = {{9, 9, 1, 2, 3, 9}, {3, 2, 1, 2, 3, 2}, {1, 1, 1, 2, 3, 3}};
    for (int mode = 0; mode < 3; mode++) {
        tg_begin();
        int x = tg_in(DIMS(1, 3));
        fk__attr a = A0();
        a.n_pads_nd = 4;
        a.pads_nd[1] = 2;
        a.pads_nd[3] = 1;
        a.pad_mode = mode;
        a.pad_value = 9;
        m = run1(FK__OP_PAD, 1, &x, FV(1, 2, 3), out, &a);
        check_shape(m, 0, 2, (int64_t[]){1, 6});
        check_vals("pad", out, want_pad[mode], 6, 0);
        fk_nn_model_close(m);
    }
    /* Concat along the last axis, Split back */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(2, 1)), tg_const(DIMS(2, 2), FV(7, 8, 9, 10))};
        fk__attr a = A0();
        a.axis = -1;
        m = run1(FK__OP_CONCAT, 2, in, FV(1, 2), out, &a);
        check_shape(m, 0, 2, (int64_t[]){2, 3});
        check_vals("concat", out, FV(1, 7, 8, 2, 9, 10), 6, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(2, 3));
        int outs[2] = {tg_act(), tg_act()};
        int id = fk__graph_add_node(&tg, FK__OP_SPLIT, "split", 1, &x, 2, outs);
        tg.n[id].a.axis = 1;
        tg.n[id].a.n_split = 2;
        tg.n[id].a.split[0] = 1;
        tg.n[id].a.split[1] = 2;
        tg_output(outs[0]);
        tg_output(outs[1]);
        float o1[2], o2[4];
        const float *ins[1] = {FV(1, 2, 3, 4, 5, 6)};
        float *os[2] = {o1, o2};
        m = tg_run(ins, os);
        check_vals("split a", o1, FV(1, 4), 2, 0);
        check_vals("split b", o2, FV(2, 3, 5, 6), 4, 0);
        fk_nn_model_close(m);
    }
    /* Reshape with 0 and -1, Flatten, Squeeze, Unsqueeze */
    tg_begin();
    {
        int in[2] = {tg_in(DIMS(2, 3, 2)), tg_consti(DIMS(2), IV(0, -1))};
        m = run1(FK__OP_RESHAPE, 2, in, x12, out, NULL);
        check_shape(m, 0, 2, (int64_t[]){2, 6});
        check_vals("reshape", out, x12, 12, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(1, 3, 1, 4));
        fk__attr a = A0();
        a.n_axes = 1;
        a.axes[0] = -2;
        m = run1(FK__OP_SQUEEZE, 1, &x, x12, out, &a);
        check_shape(m, 0, 3, (int64_t[]){1, 3, 4});
        fk_nn_model_close(m);
        tg_begin();
        x = tg_in(DIMS(3, 4));
        a = A0();
        a.n_axes = 2;
        a.axes[0] = 0;
        a.axes[1] = -1;
        m = run1(FK__OP_UNSQUEEZE, 1, &x, x12, out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 3, 4, 1});
        check_vals("unsqueeze", out, x12, 12, 0);
        fk_nn_model_close(m);
        tg_begin();
        x = tg_in(DIMS(2, 3, 2));
        a = A0();
        a.axis = 1;
        m = run1(FK__OP_FLATTEN, 1, &x, x12, out, &a);
        check_shape(m, 0, 2, (int64_t[]){2, 6});
        fk_nn_model_close(m);
    }
}

static void test_reduce_resize(void) {
    float out[64];
    fk_nn_model_t *m;
    struct {
        int op, n_axes, axis, keep;
        int rank;
        int64_t dims[2];
        float want[3];
        int n;
    } rd[] = {{FK__OP_REDUCE_MEAN, 1, 1, 1, 2, {2, 1}, {2, 5}, 2},
              {FK__OP_REDUCE_SUM, 1, -2, 0, 1, {3}, {5, 7, 9}, 3},
              {FK__OP_REDUCE_MAX, 0, 0, 1, 2, {1, 1}, {6}, 1}};
    for (size_t c = 0; c < sizeof rd / sizeof rd[0]; c++) {
        tg_begin();
        int x = tg_in(DIMS(2, 3));
        fk__attr a = A0();
        a.n_axes = rd[c].n_axes;
        a.axes[0] = rd[c].axis;
        a.keepdims = rd[c].keep;
        m = run1(rd[c].op, 1, &x, FV(1, 2, 3, 4, 5, 6), out, &a);
        check_shape(m, 0, rd[c].rank, rd[c].dims);
        check_vals(fk__op_name(rd[c].op), out, rd[c].want, rd[c].n, 1e-6f);
        fk_nn_model_close(m);
    }
    /* bilinear, half-pixel, 2x2 -> 4x4 (a linear ramp stays linear, clamped at the borders) */
    for (int layout = 0; layout < 2; layout++) {
        tg_begin();
        int x = layout ? tg_in(DIMS(1, 2, 2, 1)) : tg_in(DIMS(1, 1, 2, 2));
        fk__attr a = A0();
        a.layout = layout;
        a.resize_mode = FK__RESIZE_BILINEAR;
        a.resize_coord = FK__COORD_HALF_PIXEL;
        a.out_hw[0] = a.out_hw[1] = 4;
        m = run1(FK__OP_RESIZE, 1, &x, FV(1, 2, 3, 4), out, &a);
        check_vals("resize bilinear", out,
                   FV(1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4), 16,
                   1e-6f);
        fk_nn_model_close(m);
    }
    /* align corners 2 -> 3: midpoints */
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 1, 2));
        fk__attr a = A0();
        a.resize_mode = FK__RESIZE_BILINEAR;
        a.resize_coord = FK__COORD_ALIGN_CORNERS;
        a.out_hw[0] = 1;
        a.out_hw[1] = 3;
        m = run1(FK__OP_RESIZE, 1, &x, FV(0, 10), out, &a);
        check_vals("resize align", out, FV(0, 5, 10), 3, 1e-6f);
        fk_nn_model_close(m);
    }
    /* nearest, asymmetric floor (PyTorch), sizes from an ONNX "sizes" input */
    tg_begin();
    {
        int in[4] = {tg_in(DIMS(1, 1, 2, 2)), -1, -1, tg_consti(DIMS(4), IV(1, 1, 4, 4))};
        fk__attr a = A0();
        a.resize_mode = FK__RESIZE_NEAREST;
        a.resize_coord = FK__COORD_ASYMMETRIC;
        a.nearest_mode = FK__NEAREST_FLOOR;
        m = run1(FK__OP_RESIZE, 4, in, FV(1, 2, 3, 4), out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 1, 4, 4});
        check_vals("resize nearest", out, FV(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4), 16, 0);
        fk_nn_model_close(m);
    }
    /* DepthToSpace: 8 channels, block 2 */
    float x8[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int dcr = 0; dcr < 2; dcr++) {
        tg_begin();
        int x = tg_in(DIMS(1, 8, 1, 1));
        fk__attr a = A0();
        a.block = 2;
        a.dcr = dcr;
        m = run1(FK__OP_DEPTH_TO_SPACE, 1, &x, x8, out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 2, 2, 2});
        check_vals(dcr ? "d2s dcr" : "d2s crd", out, dcr ? FV(0, 2, 4, 6, 1, 3, 5, 7) : x8, 8, 0);
        fk_nn_model_close(m);
    }
    tg_begin();
    {
        int x = tg_in(DIMS(1, 1, 1, 8));
        fk__attr a = A0();
        a.block = 2;
        a.dcr = 1;
        a.layout = FK__NHWC;
        m = run1(FK__OP_DEPTH_TO_SPACE, 1, &x, x8, out, &a);
        check_shape(m, 0, 4, (int64_t[]){1, 2, 2, 2});
        check_vals("d2s nhwc", out, x8, 8, 0);
        fk_nn_model_close(m);
    }
}

/* Kernels on int64 data, the way folded ONNX shape subgraphs use them, called directly. */
static void test_int_kernels(void) {
    tg_begin();
    int a = tg_consti(DIMS(3), IV(6, 8, -9));
    int b = tg_consti(DIMS(1), IV(2));
    int y = fk__graph_add_tensor(&tg, "y", FK__DT_I64, FK__T_ACT, 1, (int64_t[]){3}, NULL);
    int yc = fk__graph_add_tensor(&tg, "yc", FK__DT_F32, FK__T_ACT, 1, (int64_t[]){3}, NULL);
    int in[2] = {a, b};
    int id = fk__graph_add_node(&tg, FK__OP_DIV, "div", 2, in, 1, &y);
    FK_CHECK_INT(fk__op_infer(&tg, &tg.n[id]), FK_OK);
    tg.t[y].producer = id; /* normally set by prepare */
    int id2 = fk__graph_add_node(&tg, FK__OP_CAST, "cast", 1, &y, 1, &yc);
    tg.n[id2].a.to = FK__DT_F32;
    FK_CHECK_INT(fk__op_infer(&tg, &tg.n[id2]), FK_OK);
    FK_CHECK_INT(tg.t[y].dtype, FK__DT_I64);
    int64_t ybuf[3];
    float ycbuf[3];
    void *data[8] = {0};
    data[a] = tg.t[a].data;
    data[b] = tg.t[b].data;
    data[y] = ybuf;
    data[yc] = ycbuf;
    fk__run_ctx cx = {&tg, data, NULL, 1, NULL};
    const int ops[] = {FK__OP_DIV, FK__OP_MUL, FK__OP_SUB, FK__OP_ADD};
    const int64_t want[4][3] = {{3, 4, -4}, {12, 16, -18}, {4, 6, -11}, {8, 10, -7}};
    for (int k = 0; k < 4; k++) {
        tg.n[id].op = ops[k];
        FK_CHECK_INT(fk__ref_kernel(ops[k])(&cx, &tg.n[id]), FK_OK);
        for (int i = 0; i < 3; i++) FK_CHECK_INT(ybuf[i], want[k][i]);
    }
    FK_CHECK_INT(fk__ref_kernel(FK__OP_CAST)(&cx, &tg.n[id2]), FK_OK);
    FK_CHECK_NEAR(ycbuf[2], -7, 0);
    /* float -> int64 truncates toward zero */
    tg.n[id2].in[0] = yc;
    tg.n[id2].out[0] = y;
    tg.n[id2].a.to = FK__DT_I64;
    ycbuf[0] = 2.7f, ycbuf[1] = -2.7f, ycbuf[2] = 1e30f;
    FK_CHECK_INT(fk__ref_kernel(FK__OP_CAST)(&cx, &tg.n[id2]), FK_OK);
    FK_CHECK_INT(ybuf[0], 2);
    FK_CHECK_INT(ybuf[1], -2);
    FK_CHECK(ybuf[2] > 0); /* saturates, no UB */
    /* gather of a non-constant out-of-range index is an error, not a wild read */
    int gi = fk__graph_add_tensor(&tg, "gi", FK__DT_I64, FK__T_ACT, 1, (int64_t[]){1}, NULL);
    int go = fk__graph_add_tensor(&tg, "go", FK__DT_I64, FK__T_ACT, 1, (int64_t[]){1}, NULL);
    int gin[2] = {a, gi};
    int id3 = fk__graph_add_node(&tg, FK__OP_GATHER, "g", 2, gin, 1, &go);
    int64_t bad = 5, gout = 0;
    void *data2[16] = {0};
    data2[a] = tg.t[a].data;
    data2[gi] = &bad;
    data2[go] = &gout;
    fk__run_ctx cx2 = {&tg, data2, NULL, 1, NULL};
    FK_CHECK_INT(fk__ref_kernel(FK__OP_GATHER)(&cx2, &tg.n[id3]), FK_EINVAL);
    bad = -1;
    FK_CHECK_INT(fk__ref_kernel(FK__OP_GATHER)(&cx2, &tg.n[id3]), FK_OK);
    FK_CHECK_INT(gout, -9);
    fk__graph_free(&tg);
}

static void test_infer_errors(void) {
    /* channel mismatch names the node */
    tg_begin();
    int in[2] = {tg_in(DIMS(1, 3, 4, 4)), tg_const(DIMS(1, 2, 1, 1), FV(1, 1))};
    int y;
    tg_node(FK__OP_CONV, 2, in, &y);
    tg_output(y);
    fk_nn_model_t *m = NULL;
    FK_CHECK_INT(fk__nn_model_from_graph(&tg, NULL, &m), FK_ESHAPE);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), "'Conv'") != NULL);
    FK_CHECK(strstr(fk_nn_model_errmsg(m), "channels") != NULL);
    FK_CHECK_INT(fk_nn_model_input_count(m), 0);
    fk_nn_model_close(m);
    /* non-broadcastable */
    tg_begin();
    int in2[2] = {tg_in(DIMS(2, 3)), tg_const(DIMS(2), FV(1, 1))};
    tg_node(FK__OP_ADD, 2, in2, &y);
    tg_output(y);
    FK_CHECK_INT(fk__nn_model_from_graph(&tg, NULL, &m), FK_ESHAPE);
    fk_nn_model_close(m);
    /* reshape to a wrong element count */
    tg_begin();
    int in3[2] = {tg_in(DIMS(2, 3)), tg_consti(DIMS(2), IV(4, 2))};
    tg_node(FK__OP_RESHAPE, 2, in3, &y);
    tg_output(y);
    FK_CHECK_INT(fk__nn_model_from_graph(&tg, NULL, &m), FK_ESHAPE);
    fk_nn_model_close(m);
    /* every op has a reference kernel and a name */
    for (int op = 0; op < FK__OP_COUNT; op++) {
        FK_CHECK(fk__ref_kernel(op) != NULL);
        FK_CHECK(strcmp(fk__op_name(op), "?") != 0);
    }
    FK_CHECK(fk__ref_kernel(FK__OP_COUNT) == NULL);
}

int main(void) {
    size_t base = fk_mem_in_use();
    test_conv();
    test_conv_transpose();
    test_pool();
    test_elementwise();
    test_matrix();
    test_movement();
    test_reduce_resize();
    test_int_kernels();
    test_infer_errors();
    FK_CHECK_INT(fk_mem_in_use(), base);
    return fk_t_finish();
}
