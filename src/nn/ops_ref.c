/*
 * ops_ref.c — the plain C reference kernel of every op (fk__op_<name>_ref) and fk__ref_kernel(). These are
 * the oracle: tests compare the fast kernels (fast*.c) against them, prepare.c folds constants with them and
 * `facekit nn run --reference` runs whole models on them. Clarity first; loop orders are chosen only so that
 * a whole model still runs in seconds (convolution accumulates whole output rows per weight).
 *
 * Spatial ops read the activation layout from the node (NCHW or NHWC) and address elements through strides,
 * so one loop nest serves both layouts. Shapes were inferred and attributes normalised by ops.c, so kernels
 * trust them; the only run-time checks are on data (Gather indices that were not constant).
 */
#include "nn/ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define IN(i) (&cx->g->t[n->in[i]])
#define OUT(i) (&cx->g->t[n->out[i]])
#define INP(i) (n->in[i] >= 0 ? cx->data[n->in[i]] : NULL)
#define OUTP(i) (cx->data[n->out[i]])
#define HAS(i) (n->n_in > (i) && n->in[i] >= 0)

/* ---- shared helpers ------------------------------------------------------------------------------- */

typedef struct {
    int64_t N, C, H, W;
    int64_t sn, sc, sh, sw;
} sp4;

static sp4 sp_of(const fk__tensor *t, int layout) {
    sp4 s;
    s.N = t->dims[0];
    if (layout == FK__NHWC) {
        s.H = t->dims[1], s.W = t->dims[2], s.C = t->dims[3];
        s.sc = 1, s.sw = s.C, s.sh = s.W * s.C, s.sn = s.H * s.W * s.C;
    } else {
        s.C = t->dims[1], s.H = t->dims[2], s.W = t->dims[3];
        s.sw = 1, s.sh = s.W, s.sc = s.H * s.W, s.sn = s.C * s.H * s.W;
    }
    return s;
}

static float act1(int act, float v, float a, float b, float slope) {
    switch (act) {
    case FK__ACT_RELU: return v > 0 ? v : 0;
    case FK__ACT_CLIP: return v < a ? a : v > b ? b : v;
    case FK__ACT_LEAKY: return v >= 0 ? v : v * a;
    case FK__ACT_PRELU: return v >= 0 ? v : v * slope;
    case FK__ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case FK__ACT_TANH: return tanhf(v);
    default: return v;
    }
}

/* Fused activation over Y viewed as [outer, C, inner]; the PReLU slope is per channel (or one value). */
static void apply_act(const fk__run_ctx *cx, const fk__node *n, float *y, int64_t outer, int64_t C,
                      int64_t inner) {
    const fk__attr *a = &n->a;
    if (a->act == FK__ACT_NONE) return;
    const float *slope = NULL;
    int64_t ns = 0;
    if (a->act == FK__ACT_PRELU && a->act_slope >= 0) {
        slope = cx->data[a->act_slope];
        ns = fk__tensor_numel(&cx->g->t[a->act_slope]);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++) {
            float s = slope ? slope[ns == 1 ? 0 : c % ns] : 0.0f;
            float *p = y + (o * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) p[i] = act1(a->act, p[i], a->act_a, a->act_b, s);
        }
}

static void strides_of(const fk__tensor *t, int64_t *st) {
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->dims[i];
    }
}

/* o[i*os] += w * x[i*xs] for i < cnt */
static inline void axpy(float *o, int64_t os, const float *x, int64_t xs, float w, int64_t cnt) {
    if (os == 1 && xs == 1) {
        for (int64_t i = 0; i < cnt; i++) o[i] += w * x[i];
    } else {
        for (int64_t i = 0; i < cnt; i++) o[i * os] += w * x[i * xs];
    }
}

/* o[i*os] += w * pre(x[i*xs]) for i < cnt, pre(v) = v * sc + sh, then ReLU when relu (fk__attr.pre_op) */
static void axpy_pre(float *o, int64_t os, const float *x, int64_t xs, float w, int64_t cnt, float sc, float sh,
                     int relu) {
    if (os == 1 && xs == 1 && relu) { /* the common case, written so that it vectorises */
        for (int64_t i = 0; i < cnt; i++) {
            float v = x[i] * sc + sh;
            o[i] += w * (v > 0.0f ? v : 0.0f);
        }
        return;
    }
    for (int64_t i = 0; i < cnt; i++) {
        float v = x[i * xs] * sc + sh;
        if (relu && v < 0.0f) v = 0.0f;
        o[i * os] += w * v;
    }
}

/* outputs o in [lo, hi) whose input coordinate o*s - p + k*d lies in [0, in) */
static void valid_range(int64_t in, int64_t out, int s, int p, int64_t kd, int64_t *lo, int64_t *hi) {
    int64_t a = p - kd; /* need o*s >= a */
    int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = in - 1 + p - kd; /* need o*s <= b */
    int64_t h = b < 0 ? 0 : b / s + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* ---- convolution ---------------------------------------------------------------------------------- */

int fk__op_conv_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__attr *a = &n->a;
    sp4 X = sp_of(IN(0), a->layout), Y = sp_of(OUT(0), a->layout);
    const float *x = INP(0), *w = INP(1), *b = HAS(2) ? INP(2) : NULL;
    float *y = OUTP(0);
    int KH = a->kernel[0], KW = a->kernel[1], G = a->group;
    int64_t Cg = X.C / G, Og = Y.C / G;
    /* pre-operation on the input (a BatchNorm folded forward): applied where the input is read, so padding
     * stays zero */
    const float *pre_sc = a->pre_op && n->n_in > 4 ? INP(3) : NULL, *pre_sh = pre_sc ? INP(4) : NULL;
    for (int64_t nb = 0; nb < Y.N; nb++)
        for (int64_t oc = 0; oc < Y.C; oc++) {
            float *yo = y + nb * Y.sn + oc * Y.sc;
            float bias = b ? b[oc] : 0.0f;
            for (int64_t oh = 0; oh < Y.H; oh++)
                for (int64_t ow = 0; ow < Y.W; ow++) yo[oh * Y.sh + ow * Y.sw] = bias;
            int64_t g = oc / Og;
            for (int64_t ic = 0; ic < Cg; ic++) {
                const float *xi = x + nb * X.sn + (g * Cg + ic) * X.sc;
                const float *wk = w + (oc * Cg + ic) * KH * KW;
                for (int kh = 0; kh < KH; kh++) {
                    int64_t oh0, oh1;
                    valid_range(X.H, Y.H, a->stride[0], a->pads[0], (int64_t)kh * a->dilation[0], &oh0, &oh1);
                    for (int kw = 0; kw < KW; kw++) {
                        float wv = wk[kh * KW + kw];
                        int64_t ow0, ow1;
                        valid_range(X.W, Y.W, a->stride[1], a->pads[1], (int64_t)kw * a->dilation[1], &ow0, &ow1);
                        if (ow1 <= ow0) continue;
                        for (int64_t oh = oh0; oh < oh1; oh++) {
                            int64_t ih = oh * a->stride[0] - a->pads[0] + (int64_t)kh * a->dilation[0];
                            int64_t iw0 = ow0 * a->stride[1] - a->pads[1] + (int64_t)kw * a->dilation[1];
                            if (pre_sc)
                                axpy_pre(yo + oh * Y.sh + ow0 * Y.sw, Y.sw, xi + ih * X.sh + iw0 * X.sw,
                                         X.sw * a->stride[1], wv, ow1 - ow0, pre_sc[g * Cg + ic], pre_sh[g * Cg + ic],
                                         a->pre_act == FK__ACT_RELU);
                            else
                                axpy(yo + oh * Y.sh + ow0 * Y.sw, Y.sw, xi + ih * X.sh + iw0 * X.sw,
                                     X.sw * a->stride[1], wv, ow1 - ow0);
                        }
                    }
                }
            }
        }
    if (a->layout == FK__NHWC)
        apply_act(cx, n, y, Y.N * Y.H * Y.W, Y.C, 1);
    else
        apply_act(cx, n, y, Y.N, Y.C, Y.H * Y.W);
    return FK_OK;
}

/* weights [I, O/group, kh, kw]; every input pixel scatters into the output */
int fk__op_conv_transpose_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__attr *a = &n->a;
    sp4 X = sp_of(IN(0), a->layout), Y = sp_of(OUT(0), a->layout);
    const float *x = INP(0), *w = INP(1), *b = HAS(2) ? INP(2) : NULL;
    float *y = OUTP(0);
    int KH = a->kernel[0], KW = a->kernel[1], G = a->group;
    int64_t Cg = X.C / G, Og = Y.C / G;
    for (int64_t nb = 0; nb < Y.N; nb++)
        for (int64_t oc = 0; oc < Y.C; oc++)
            for (int64_t oh = 0; oh < Y.H; oh++)
                for (int64_t ow = 0; ow < Y.W; ow++)
                    y[nb * Y.sn + oc * Y.sc + oh * Y.sh + ow * Y.sw] = b ? b[oc] : 0.0f;
    for (int64_t nb = 0; nb < X.N; nb++)
        for (int64_t ic = 0; ic < X.C; ic++) {
            int64_t g = ic / Cg;
            for (int64_t ocg = 0; ocg < Og; ocg++) {
                int64_t oc = g * Og + ocg;
                const float *wk = w + (ic * Og + ocg) * KH * KW;
                for (int64_t ih = 0; ih < X.H; ih++)
                    for (int64_t iw = 0; iw < X.W; iw++) {
                        float v = x[nb * X.sn + ic * X.sc + ih * X.sh + iw * X.sw];
                        for (int kh = 0; kh < KH; kh++) {
                            int64_t oh = ih * a->stride[0] - a->pads[0] + (int64_t)kh * a->dilation[0];
                            if (oh < 0 || oh >= Y.H) continue;
                            for (int kw = 0; kw < KW; kw++) {
                                int64_t ow = iw * a->stride[1] - a->pads[1] + (int64_t)kw * a->dilation[1];
                                if (ow < 0 || ow >= Y.W) continue;
                                y[nb * Y.sn + oc * Y.sc + oh * Y.sh + ow * Y.sw] += v * wk[kh * KW + kw];
                            }
                        }
                    }
            }
        }
    if (a->layout == FK__NHWC)
        apply_act(cx, n, y, Y.N * Y.H * Y.W, Y.C, 1);
    else
        apply_act(cx, n, y, Y.N, Y.C, Y.H * Y.W);
    return FK_OK;
}

/* ---- pooling -------------------------------------------------------------------------------------- */

static int pool(const fk__run_ctx *cx, const fk__node *n, int is_max) {
    const fk__attr *a = &n->a;
    sp4 X = sp_of(IN(0), a->layout), Y = sp_of(OUT(0), a->layout);
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t nb = 0; nb < Y.N; nb++)
        for (int64_t c = 0; c < Y.C; c++)
            for (int64_t oh = 0; oh < Y.H; oh++)
                for (int64_t ow = 0; ow < Y.W; ow++) {
                    int64_t hs = oh * a->stride[0] - a->pads[0], ws = ow * a->stride[1] - a->pads[1];
                    const float *xc = x + nb * X.sn + c * X.sc;
                    float r;
                    if (is_max) {
                        r = -FLT_MAX;
                        for (int kh = 0; kh < a->kernel[0]; kh++) {
                            int64_t ih = hs + (int64_t)kh * a->dilation[0];
                            if (ih < 0 || ih >= X.H) continue;
                            for (int kw = 0; kw < a->kernel[1]; kw++) {
                                int64_t iw = ws + (int64_t)kw * a->dilation[1];
                                if (iw < 0 || iw >= X.W) continue;
                                float v = xc[ih * X.sh + iw * X.sw];
                                if (v > r) r = v;
                            }
                        }
                    } else {
                        /* the window may run past the end padding in ceil mode: that part never counts */
                        int64_t he = hs + a->kernel[0], we = ws + a->kernel[1];
                        if (he > X.H + a->pads[2]) he = X.H + a->pads[2];
                        if (we > X.W + a->pads[3]) we = X.W + a->pads[3];
                        int64_t padded = (he - hs) * (we - ws);
                        int64_t h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
                        int64_t h1 = he > X.H ? X.H : he, w1 = we > X.W ? X.W : we;
                        double s = 0;
                        for (int64_t ih = h0; ih < h1; ih++)
                            for (int64_t iw = w0; iw < w1; iw++) s += xc[ih * X.sh + iw * X.sw];
                        int64_t cnt = a->count_include_pad ? padded : (h1 - h0) * (w1 - w0);
                        r = cnt > 0 ? (float)(s / (double)cnt) : 0.0f;
                    }
                    y[nb * Y.sn + c * Y.sc + oh * Y.sh + ow * Y.sw] = r;
                }
    return FK_OK;
}

int fk__op_max_pool_ref(const fk__run_ctx *cx, const fk__node *n) { return pool(cx, n, 1); }
int fk__op_avg_pool_ref(const fk__run_ctx *cx, const fk__node *n) { return pool(cx, n, 0); }

int fk__op_global_avg_pool_ref(const fk__run_ctx *cx, const fk__node *n) {
    sp4 X = sp_of(IN(0), n->a.layout);
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t nb = 0; nb < X.N; nb++)
        for (int64_t c = 0; c < X.C; c++) {
            double s = 0;
            for (int64_t h = 0; h < X.H; h++)
                for (int64_t w = 0; w < X.W; w++) s += x[nb * X.sn + c * X.sc + h * X.sh + w * X.sw];
            y[nb * X.C + c] = (float)(s / (double)(X.H * X.W));
        }
    return FK_OK;
}

int fk__op_batch_norm_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *t = IN(0);
    int ax = fk__chan_axis(n->a.layout, t->rank);
    int64_t outer = 1, inner = 1, C = t->dims[ax];
    for (int i = 0; i < ax; i++) outer *= t->dims[i];
    for (int i = ax + 1; i < t->rank; i++) inner *= t->dims[i];
    const float *x = INP(0), *sc = INP(1), *sh = INP(2);
    float *y = OUTP(0);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = (o * C + c) * inner + i;
                y[k] = x[k] * sc[c] + sh[c];
            }
    apply_act(cx, n, y, outer, C, inner);
    return FK_OK;
}

/* ---- elementwise ---------------------------------------------------------------------------------- */

/* Broadcast iteration: calls the op for every output element with the matching input offsets. */
typedef struct {
    int rank;
    int64_t dims[FK__MAX_RANK], sx[FK__MAX_RANK], sy[FK__MAX_RANK];
} bcast;

static void bcast_init(bcast *b, const fk__tensor *x, const fk__tensor *y, const fk__tensor *o) {
    int64_t stx[FK__MAX_RANK], sty[FK__MAX_RANK];
    strides_of(x, stx);
    strides_of(y, sty);
    b->rank = o->rank;
    for (int i = 0; i < o->rank; i++) {
        int ix = i - (o->rank - x->rank), iy = i - (o->rank - y->rank);
        b->dims[i] = o->dims[i];
        b->sx[i] = ix >= 0 && x->dims[ix] != 1 ? stx[ix] : 0;
        b->sy[i] = iy >= 0 && y->dims[iy] != 1 ? sty[iy] : 0;
    }
    /* Merge neighbouring axes that both operands walk the same way (contiguously or not at all), so that a
     * same-shape or per-row operation becomes one long inner loop. Purely a speed-up; same element order. */
    int r = 0;
    for (int i = 0; i < b->rank; i++) {
        if (b->dims[i] == 1) continue;
        if (r > 0 && b->sx[r - 1] == b->sx[i] * b->dims[i] && b->sy[r - 1] == b->sy[i] * b->dims[i]) {
            b->dims[r - 1] *= b->dims[i];
            b->sx[r - 1] = b->sx[i];
            b->sy[r - 1] = b->sy[i];
            continue;
        }
        b->dims[r] = b->dims[i], b->sx[r] = b->sx[i], b->sy[r] = b->sy[i];
        r++;
    }
    b->rank = r;
}

#define BCAST_LOOP(TYPE, EXPR)                                                                    \
    do {                                                                                          \
        const TYPE *X_ = xv;                                                                      \
        const TYPE *Y_ = yv;                                                                      \
        TYPE *O_ = ov;                                                                            \
        int64_t idx_[FK__MAX_RANK] = {0}, total_ = 1;                                             \
        int r_ = bc.rank;                                                                         \
        for (int i_ = 0; i_ < r_ - 1; i_++) total_ *= bc.dims[i_];                                \
        int64_t in_ = r_ ? bc.dims[r_ - 1] : 1, isx_ = r_ ? bc.sx[r_ - 1] : 0,                    \
                isy_ = r_ ? bc.sy[r_ - 1] : 0;                                                    \
        for (int64_t o_ = 0; o_ < total_; o_++) {                                                 \
            int64_t ox_ = 0, oy_ = 0;                                                             \
            for (int i_ = 0; i_ < r_ - 1; i_++) ox_ += idx_[i_] * bc.sx[i_], oy_ += idx_[i_] * bc.sy[i_]; \
            const TYPE *xr_ = X_ + ox_, *yr_ = Y_ + oy_;                                          \
            if (isx_ == 1 && isy_ == 1) { /* the common cases get loops the compiler vectorises */ \
                for (int64_t j_ = 0; j_ < in_; j_++) {                                            \
                    TYPE a = xr_[j_], b = yr_[j_];                                                \
                    O_[j_] = (EXPR);                                                              \
                }                                                                                 \
            } else if (isx_ == 1 && isy_ == 0) {                                                  \
                for (int64_t j_ = 0; j_ < in_; j_++) {                                            \
                    TYPE a = xr_[j_], b = yr_[0];                                                 \
                    O_[j_] = (EXPR);                                                              \
                }                                                                                 \
            } else {                                                                              \
                for (int64_t j_ = 0; j_ < in_; j_++) {                                            \
                    TYPE a = xr_[j_ * isx_], b = yr_[j_ * isy_];                                  \
                    O_[j_] = (EXPR);                                                              \
                }                                                                                 \
            }                                                                                     \
            O_ += in_;                                                                            \
            for (int i_ = r_ - 2; i_ >= 0; i_--) {                                                \
                if (++idx_[i_] < bc.dims[i_]) break;                                              \
                idx_[i_] = 0;                                                                     \
            }                                                                                     \
        }                                                                                         \
    } while (0)

static int binary(const fk__run_ctx *cx, const fk__node *n) {
    bcast bc;
    bcast_init(&bc, IN(0), IN(1), OUT(0));
    const void *xv = INP(0), *yv = INP(1);
    void *ov = OUTP(0);
    int dt = OUT(0)->dtype;
    if (fk__tensor_numel(OUT(0)) == 0) return FK_OK;
    if (dt == FK__DT_F32) {
        switch (n->op) {
        case FK__OP_ADD: BCAST_LOOP(float, a + b); break;
        case FK__OP_SUB: BCAST_LOOP(float, a - b); break;
        case FK__OP_MUL: BCAST_LOOP(float, a * b); break;
        case FK__OP_DIV: BCAST_LOOP(float, a / b); break;
        case FK__OP_MAX: BCAST_LOOP(float, a > b ? a : b); break;
        case FK__OP_MIN: BCAST_LOOP(float, a < b ? a : b); break;
        case FK__OP_POW: BCAST_LOOP(float, b == 2.0f ? a * a : powf(a, b)); break;
        case FK__OP_PRELU: BCAST_LOOP(float, a >= 0 ? a : a * b); break;
        default: return FK_EUNSUPPORTED;
        }
        apply_act(cx, n, ov, 1, 1, fk__tensor_numel(OUT(0)));
        return FK_OK;
    }
#define INT_OPS(T)                                                                     \
    switch (n->op) {                                                                   \
    case FK__OP_ADD: BCAST_LOOP(T, (T)(a + b)); break;                                 \
    case FK__OP_SUB: BCAST_LOOP(T, (T)(a - b)); break;                                 \
    case FK__OP_MUL: BCAST_LOOP(T, (T)(a * b)); break;                                 \
    case FK__OP_DIV: BCAST_LOOP(T, b == 0 ? 0 : (T)(a / b)); break; /* no trap on bad data */ \
    case FK__OP_MAX: BCAST_LOOP(T, a > b ? a : b); break;                              \
    case FK__OP_MIN: BCAST_LOOP(T, a < b ? a : b); break;                              \
    default: return FK_EUNSUPPORTED;                                                   \
    }
    if (dt == FK__DT_I64) {
        INT_OPS(int64_t)
    } else {
        INT_OPS(int32_t)
    }
#undef INT_OPS
    return FK_OK;
}

int fk__op_add_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_sub_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_mul_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_div_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_max_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_min_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_pow_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }
int fk__op_prelu_ref(const fk__run_ctx *cx, const fk__node *n) { return binary(cx, n); }

static int unary(const fk__run_ctx *cx, const fk__node *n) {
    const float *x = INP(0);
    float *y = OUTP(0);
    int64_t cnt = fk__tensor_numel(OUT(0));
    const fk__attr *a = &n->a;
    float lo = a->clip_min, hi = a->clip_max, alpha = a->alpha;
    /* one loop per op (the switch outside), so that each loop is simple enough to vectorise */
#define UNARY_LOOP(EXPR)                         \
    for (int64_t i = 0; i < cnt; i++) {          \
        float v = x[i];                          \
        y[i] = (EXPR);                           \
    }                                            \
    break
    switch (n->op) {
    case FK__OP_RELU: UNARY_LOOP(v > 0 ? v : 0);
    case FK__OP_CLIP: UNARY_LOOP(v < lo ? lo : v > hi ? hi : v);
    case FK__OP_LEAKY_RELU: UNARY_LOOP(v >= 0 ? v : v * alpha);
    case FK__OP_SIGMOID: UNARY_LOOP(1.0f / (1.0f + expf(-v)));
    case FK__OP_TANH: UNARY_LOOP(tanhf(v));
    case FK__OP_EXP: UNARY_LOOP(expf(v));
    case FK__OP_ABS: UNARY_LOOP(fabsf(v));
    case FK__OP_NEG: UNARY_LOOP(-v);
    case FK__OP_SQRT: UNARY_LOOP(sqrtf(v));
    case FK__OP_RSQRT: UNARY_LOOP(1.0f / sqrtf(v));
    case FK__OP_SQUARE: UNARY_LOOP(v * v);
    default: return FK_EUNSUPPORTED;
    }
#undef UNARY_LOOP
    return FK_OK;
}

int fk__op_relu_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_clip_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_leaky_relu_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_sigmoid_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_tanh_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_exp_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_abs_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_neg_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_sqrt_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_rsqrt_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }
int fk__op_square_ref(const fk__run_ctx *cx, const fk__node *n) { return unary(cx, n); }

int fk__op_softmax_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *t = IN(0);
    int ax = n->a.axis;
    int64_t outer = 1, inner = 1, L = t->dims[ax];
    for (int i = 0; i < ax; i++) outer *= t->dims[i];
    for (int i = ax + 1; i < t->rank; i++) inner *= t->dims[i];
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xp = x + o * L * inner + i;
            float *yp = y + o * L * inner + i;
            float m = -FLT_MAX;
            for (int64_t k = 0; k < L; k++) m = xp[k * inner] > m ? xp[k * inner] : m;
            double s = 0;
            for (int64_t k = 0; k < L; k++) s += yp[k * inner] = expf(xp[k * inner] - m);
            for (int64_t k = 0; k < L; k++) yp[k * inner] = (float)(yp[k * inner] / s);
        }
    return FK_OK;
}

/* ---- matrix products ------------------------------------------------------------------------------ */

int fk__op_matmul_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *A = IN(0), *B = IN(1), *O = OUT(0);
    int64_t M = A->rank == 1 ? 1 : A->dims[A->rank - 2], K = A->dims[A->rank - 1];
    int64_t N = B->rank == 1 ? 1 : B->dims[B->rank - 1];
    /* batch shapes (everything before the last two dims), broadcast like numpy */
    fk__tensor ba = *A, bb = *B, bo = *O;
    ba.rank = A->rank > 2 ? A->rank - 2 : 0;
    bb.rank = B->rank > 2 ? B->rank - 2 : 0;
    bo.rank = ba.rank > bb.rank ? ba.rank : bb.rank;
    for (int i = 0; i < bo.rank; i++) {
        int ia = i - (bo.rank - ba.rank), ib = i - (bo.rank - bb.rank);
        int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
        bo.dims[i] = da == 1 ? db : da;
    }
    bcast bc;
    bcast_init(&bc, &ba, &bb, &bo);
    int64_t nbatch = fk__tensor_numel(&bo), idx[FK__MAX_RANK] = {0};
    const float *a = INP(0), *b = INP(1);
    float *y = OUTP(0);
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < bc.rank; i++) oa += idx[i] * bc.sx[i], ob += idx[i] * bc.sy[i];
        const float *ap = a + oa * M * K, *bp = b + ob * K * N;
        float *yp = y + bi * M * N;
        for (int64_t m = 0; m < M; m++) {
            float *row = yp + m * N;
            for (int64_t j = 0; j < N; j++) row[j] = 0;
            for (int64_t k = 0; k < K; k++) {
                float av = ap[m * K + k];
                const float *brow = bp + k * N;
                for (int64_t j = 0; j < N; j++) row[j] += av * brow[j];
            }
        }
        for (int i = bc.rank - 1; i >= 0; i--) {
            if (++idx[i] < bc.dims[i]) break;
            idx[i] = 0;
        }
    }
    apply_act(cx, n, y, nbatch * M, N, 1);
    return FK_OK;
}

int fk__op_gemm_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__attr *at = &n->a;
    const fk__tensor *A = IN(0), *O = OUT(0);
    int64_t M = O->dims[0], N = O->dims[1], K = at->trans_a ? A->dims[0] : A->dims[1];
    const float *a = INP(0), *b = INP(1), *c = HAS(2) ? INP(2) : NULL;
    float *y = OUTP(0);
    int64_t cs0 = 0, cs1 = 0;
    if (c) {
        const fk__tensor *C = IN(2);
        if (C->rank == 2) cs0 = C->dims[0] == 1 ? 0 : C->dims[1], cs1 = C->dims[1] == 1 ? 0 : 1;
        if (C->rank == 1) cs1 = C->dims[0] == 1 ? 0 : 1;
    }
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                float av = at->trans_a ? a[k * M + m] : a[m * K + k];
                float bv = at->trans_b ? b[j * K + k] : b[k * N + j];
                s += (double)av * bv;
            }
            float r = at->alpha * (float)s;
            if (c) r += at->beta * c[m * cs0 + j * cs1];
            y[m * N + j] = r;
        }
    apply_act(cx, n, y, M, N, 1);
    return FK_OK;
}

/* ---- data movement (any dtype: bytes) ------------------------------------------------------------- */

int fk__op_concat_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *O = OUT(0);
    int ax = n->a.axis;
    size_t es = fk__dtype_size(O->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= O->dims[i];
    for (int i = ax + 1; i < O->rank; i++) inner *= O->dims[i];
    unsigned char *y = OUTP(0);
    size_t orow = (size_t)(O->dims[ax] * inner) * es, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        const unsigned char *x = INP(k);
        size_t row = (size_t)(IN(k)->dims[ax] * inner) * es;
        for (int64_t o = 0; o < outer; o++) memcpy(y + o * orow + off, x + o * row, row);
        off += row;
    }
    return FK_OK;
}

int fk__op_split_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0);
    int ax = n->a.axis;
    size_t es = fk__dtype_size(X->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= X->dims[i];
    for (int i = ax + 1; i < X->rank; i++) inner *= X->dims[i];
    const unsigned char *x = INP(0);
    size_t irow = (size_t)(X->dims[ax] * inner) * es, off = 0;
    for (int k = 0; k < n->n_out; k++) {
        unsigned char *y = OUTP(k);
        size_t row = (size_t)(OUT(k)->dims[ax] * inner) * es;
        for (int64_t o = 0; o < outer; o++) memcpy(y + o * row, x + o * irow + off, row);
        off += row;
    }
    return FK_OK;
}

/* Walks every output element of an N-d gather whose source offset is base + sum(idx[i] * step[i]). */
static void strided_copy(unsigned char *y, const unsigned char *x, size_t es, int rank, const int64_t *dims,
                         int64_t base, const int64_t *step) {
    int64_t total = 1, idx[FK__MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (total == 0) return;
    /* the innermost axis is copied as one row: one memcpy when it is contiguous in the source */
    int64_t inner = rank ? dims[rank - 1] : 1, istep = rank ? step[rank - 1] : 0;
    int outer_rank = rank ? rank - 1 : 0;
    size_t row = (size_t)inner * es;
    for (int64_t o = 0; o < total; o += inner) {
        int64_t src = base;
        for (int i = 0; i < outer_rank; i++) src += idx[i] * step[i];
        unsigned char *yo = y + (size_t)o * es;
        if (istep == 1) {
            memcpy(yo, x + (size_t)src * es, row);
        } else if (es == 4) {
            for (int64_t j = 0; j < inner; j++) memcpy(yo + j * 4, x + (size_t)(src + j * istep) * 4, 4);
        } else {
            for (int64_t j = 0; j < inner; j++) memcpy(yo + (size_t)j * es, x + (size_t)(src + j * istep) * es, es);
        }
        for (int i = outer_rank - 1; i >= 0; i--) {
            if (++idx[i] < dims[i]) break;
            idx[i] = 0;
        }
    }
}

int fk__op_slice_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    int64_t st[FK__MAX_RANK], step[FK__MAX_RANK], base = 0;
    strides_of(X, st);
    for (int k = 0; k < X->rank; k++) {
        base += n->a.s_starts[k] * st[k];
        step[k] = n->a.s_steps[k] * st[k];
    }
    strided_copy(OUTP(0), INP(0), fk__dtype_size(X->dtype), O->rank, O->dims, base, step);
    return FK_OK;
}

static int copy_through(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *O = OUT(0);
    size_t bytes = (size_t)fk__tensor_numel(O) * fk__dtype_size(O->dtype);
    const void *x = cx->data[n->in[0]];
    if (OUTP(0) != x && bytes) memcpy(OUTP(0), x, bytes); /* nothing to do when the plan aliased them */
    return FK_OK;
}

int fk__op_reshape_ref(const fk__run_ctx *cx, const fk__node *n) { return copy_through(cx, n); }
int fk__op_flatten_ref(const fk__run_ctx *cx, const fk__node *n) { return copy_through(cx, n); }
int fk__op_squeeze_ref(const fk__run_ctx *cx, const fk__node *n) { return copy_through(cx, n); }
int fk__op_unsqueeze_ref(const fk__run_ctx *cx, const fk__node *n) { return copy_through(cx, n); }
int fk__op_identity_ref(const fk__run_ctx *cx, const fk__node *n) { return copy_through(cx, n); }

int fk__op_transpose_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    int64_t st[FK__MAX_RANK], step[FK__MAX_RANK];
    strides_of(X, st);
    for (int k = 0; k < O->rank; k++) step[k] = st[n->a.perm[k]];
    strided_copy(OUTP(0), INP(0), fk__dtype_size(X->dtype), O->rank, O->dims, 0, step);
    return FK_OK;
}

int fk__op_gather_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *I = IN(1);
    int ax = n->a.axis;
    size_t es = fk__dtype_size(X->dtype);
    int64_t outer = 1, inner = 1, L = X->dims[ax], ni = fk__tensor_numel(I);
    for (int i = 0; i < ax; i++) outer *= X->dims[i];
    for (int i = ax + 1; i < X->rank; i++) inner *= X->dims[i];
    const unsigned char *x = INP(0);
    const void *iv = INP(1);
    unsigned char *y = OUTP(0);
    size_t row = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = I->dtype == FK__DT_I64 ? ((const int64_t *)iv)[j] : ((const int32_t *)iv)[j];
            if (k < 0) k += L;
            if (k < 0 || k >= L) return FK_EINVAL; /* data-dependent index: an error, never a wild read */
            memcpy(y + (size_t)(o * ni + j) * row, x + (size_t)(o * L + k) * row, row);
        }
    return FK_OK;
}

int fk__op_pad_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    const fk__attr *a = &n->a;
    int r = X->rank;
    int64_t st[FK__MAX_RANK], idx[FK__MAX_RANK] = {0}, total = fk__tensor_numel(O);
    strides_of(X, st);
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t o = 0; o < total; o++) {
        int64_t src = 0;
        int outside = 0;
        for (int i = 0; i < r; i++) {
            int64_t j = idx[i] - a->pads_nd[i], d = X->dims[i];
            if (j < 0 || j >= d) {
                if (a->pad_mode == FK__PAD_CONSTANT) {
                    outside = 1;
                    break;
                } else if (a->pad_mode == FK__PAD_REFLECT) {
                    j = j < 0 ? -j : 2 * (d - 1) - j;
                    if (d == 1) j = 0;
                } else {
                    j = j < 0 ? 0 : d - 1;
                }
            }
            src += j * st[i];
        }
        y[o] = outside ? a->pad_value : x[src];
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < O->dims[i]) break;
            idx[i] = 0;
        }
    }
    return FK_OK;
}

static int reduce(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    const fk__attr *a = &n->a;
    int r = X->rank;
    int64_t ost[FK__MAX_RANK], xs[FK__MAX_RANK], idx[FK__MAX_RANK] = {0};
    /* output strides expressed on the input's axes: reduced axes step 0 */
    fk__tensor kept = *X;
    unsigned mask = 0;
    for (int i = 0; i < a->n_axes; i++) mask |= 1u << a->axes[i];
    for (int i = 0; i < r; i++) kept.dims[i] = (mask >> i) & 1 ? 1 : X->dims[i];
    strides_of(&kept, ost);
    for (int i = 0; i < r; i++) xs[i] = (mask >> i) & 1 ? 0 : ost[i];
    int64_t total = fk__tensor_numel(X), no = fk__tensor_numel(O);
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t o = 0; o < no; o++) y[o] = n->op == FK__OP_REDUCE_MAX ? -FLT_MAX : 0.0f;
    for (int64_t k = 0; k < total; k++) {
        int64_t o = 0;
        for (int i = 0; i < r; i++) o += idx[i] * xs[i];
        if (n->op == FK__OP_REDUCE_MAX)
            y[o] = x[k] > y[o] ? x[k] : y[o];
        else
            y[o] += x[k];
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < X->dims[i]) break;
            idx[i] = 0;
        }
    }
    if (n->op == FK__OP_REDUCE_MEAN && no) {
        float cnt = (float)(total / no);
        for (int64_t o = 0; o < no; o++) y[o] /= cnt;
    }
    return FK_OK;
}

int fk__op_reduce_mean_ref(const fk__run_ctx *cx, const fk__node *n) { return reduce(cx, n); }
int fk__op_reduce_sum_ref(const fk__run_ctx *cx, const fk__node *n) { return reduce(cx, n); }
int fk__op_reduce_max_ref(const fk__run_ctx *cx, const fk__node *n) { return reduce(cx, n); }

/* source coordinate of output coordinate o along an axis of IN -> OUT elements */
static double src_coord(int coord, int64_t o, int64_t in, int64_t out) {
    switch (coord) {
    case FK__COORD_ALIGN_CORNERS: return out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
    case FK__COORD_ASYMMETRIC: return (double)o * (double)in / (double)out;
    default: return ((double)o + 0.5) * (double)in / (double)out - 0.5;
    }
}

static int64_t nearest_index(int mode, double c, int64_t in) {
    double f = floor(c);
    int64_t k;
    switch (mode) {
    case FK__NEAREST_FLOOR: k = (int64_t)f; break;
    case FK__NEAREST_CEIL: k = (int64_t)ceil(c); break;
    case FK__NEAREST_ROUND_PREFER_CEIL: k = (int64_t)(c - f >= 0.5 ? f + 1 : f); break;
    default: k = (int64_t)(c - f > 0.5 ? f + 1 : f); break;
    }
    return k < 0 ? 0 : k >= in ? in - 1 : k;
}

int fk__op_resize_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__attr *a = &n->a;
    sp4 X = sp_of(IN(0), a->layout), Y = sp_of(OUT(0), a->layout);
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t oh = 0; oh < Y.H; oh++) {
        double ch = src_coord(a->resize_coord, oh, X.H, Y.H);
        for (int64_t ow = 0; ow < Y.W; ow++) {
            double cw = src_coord(a->resize_coord, ow, X.W, Y.W);
            int64_t h0, h1, w0, w1;
            float fh = 0, fw = 0;
            if (a->resize_mode == FK__RESIZE_NEAREST) {
                h0 = h1 = nearest_index(a->nearest_mode, ch, X.H);
                w0 = w1 = nearest_index(a->nearest_mode, cw, X.W);
            } else {
                double hh = ch < 0 ? 0 : ch > X.H - 1 ? (double)(X.H - 1) : ch;
                double ww = cw < 0 ? 0 : cw > X.W - 1 ? (double)(X.W - 1) : cw;
                h0 = (int64_t)hh, w0 = (int64_t)ww;
                h1 = h0 + 1 < X.H ? h0 + 1 : h0;
                w1 = w0 + 1 < X.W ? w0 + 1 : w0;
                fh = (float)(hh - (double)h0), fw = (float)(ww - (double)w0);
            }
            for (int64_t nb = 0; nb < Y.N; nb++)
                for (int64_t c = 0; c < Y.C; c++) {
                    const float *xc = x + nb * X.sn + c * X.sc;
                    float v00 = xc[h0 * X.sh + w0 * X.sw], v01 = xc[h0 * X.sh + w1 * X.sw];
                    float v10 = xc[h1 * X.sh + w0 * X.sw], v11 = xc[h1 * X.sh + w1 * X.sw];
                    float top = v00 + (v01 - v00) * fw, bot = v10 + (v11 - v10) * fw;
                    y[nb * Y.sn + c * Y.sc + oh * Y.sh + ow * Y.sw] = top + (bot - top) * fh;
                }
        }
    }
    return FK_OK;
}

int fk__op_depth_to_space_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__attr *a = &n->a;
    sp4 X = sp_of(IN(0), a->layout), Y = sp_of(OUT(0), a->layout);
    int64_t b = a->block;
    const float *x = INP(0);
    float *y = OUTP(0);
    for (int64_t nb = 0; nb < Y.N; nb++)
        for (int64_t c = 0; c < Y.C; c++)
            for (int64_t oh = 0; oh < Y.H; oh++)
                for (int64_t ow = 0; ow < Y.W; ow++) {
                    int64_t by = oh % b, bx = ow % b;
                    int64_t ic = a->dcr ? (by * b + bx) * Y.C + c : c * b * b + by * b + bx;
                    y[nb * Y.sn + c * Y.sc + oh * Y.sh + ow * Y.sw] =
                        x[nb * X.sn + ic * X.sc + (oh / b) * X.sh + (ow / b) * X.sw];
                }
    return FK_OK;
}

int fk__op_shape_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0);
    int64_t *y = OUTP(0);
    for (int i = 0; i < X->rank; i++) y[i] = X->dims[i];
    return FK_OK;
}

int fk__op_cast_ref(const fk__run_ctx *cx, const fk__node *n) {
    const fk__tensor *X = IN(0), *O = OUT(0);
    int64_t cnt = fk__tensor_numel(O);
    const void *x = INP(0);
    void *y = OUTP(0);
    for (int64_t i = 0; i < cnt; i++) {
        double v = X->dtype == FK__DT_F32   ? ((const float *)x)[i]
                   : X->dtype == FK__DT_I64 ? (double)((const int64_t *)x)[i]
                                            : ((const int32_t *)x)[i];
        if (O->dtype == FK__DT_F32) {
            ((float *)y)[i] = (float)v;
        } else {
            /* float -> int truncates toward zero; out-of-range values saturate instead of being UB */
            double lim = O->dtype == FK__DT_I64 ? 9.2233720368547748e18 : 2147483647.0;
            int64_t iv = isnan(v) ? 0 : v >= lim ? (int64_t)lim - (O->dtype == FK__DT_I64 ? 1 : 0)
                         : v <= -lim ? -(int64_t)lim : (int64_t)v;
            if (X->dtype == FK__DT_I64) iv = ((const int64_t *)x)[i];
            if (O->dtype == FK__DT_I64) ((int64_t *)y)[i] = iv;
            else ((int32_t *)y)[i] = (int32_t)iv;
        }
    }
    return FK_OK;
}

fk__kernel_fn fk__ref_kernel(int op) {
    static const fk__kernel_fn table[FK__OP_COUNT] = {
        [FK__OP_CONV] = fk__op_conv_ref,
        [FK__OP_CONV_TRANSPOSE] = fk__op_conv_transpose_ref,
        [FK__OP_MAX_POOL] = fk__op_max_pool_ref,
        [FK__OP_AVG_POOL] = fk__op_avg_pool_ref,
        [FK__OP_GLOBAL_AVG_POOL] = fk__op_global_avg_pool_ref,
        [FK__OP_BATCH_NORM] = fk__op_batch_norm_ref,
        [FK__OP_ADD] = fk__op_add_ref,
        [FK__OP_SUB] = fk__op_sub_ref,
        [FK__OP_MUL] = fk__op_mul_ref,
        [FK__OP_DIV] = fk__op_div_ref,
        [FK__OP_MAX] = fk__op_max_ref,
        [FK__OP_MIN] = fk__op_min_ref,
        [FK__OP_POW] = fk__op_pow_ref,
        [FK__OP_PRELU] = fk__op_prelu_ref,
        [FK__OP_RELU] = fk__op_relu_ref,
        [FK__OP_CLIP] = fk__op_clip_ref,
        [FK__OP_LEAKY_RELU] = fk__op_leaky_relu_ref,
        [FK__OP_SIGMOID] = fk__op_sigmoid_ref,
        [FK__OP_TANH] = fk__op_tanh_ref,
        [FK__OP_EXP] = fk__op_exp_ref,
        [FK__OP_ABS] = fk__op_abs_ref,
        [FK__OP_NEG] = fk__op_neg_ref,
        [FK__OP_SQRT] = fk__op_sqrt_ref,
        [FK__OP_RSQRT] = fk__op_rsqrt_ref,
        [FK__OP_SQUARE] = fk__op_square_ref,
        [FK__OP_SOFTMAX] = fk__op_softmax_ref,
        [FK__OP_MATMUL] = fk__op_matmul_ref,
        [FK__OP_GEMM] = fk__op_gemm_ref,
        [FK__OP_CONCAT] = fk__op_concat_ref,
        [FK__OP_SPLIT] = fk__op_split_ref,
        [FK__OP_SLICE] = fk__op_slice_ref,
        [FK__OP_RESHAPE] = fk__op_reshape_ref,
        [FK__OP_FLATTEN] = fk__op_flatten_ref,
        [FK__OP_SQUEEZE] = fk__op_squeeze_ref,
        [FK__OP_UNSQUEEZE] = fk__op_unsqueeze_ref,
        [FK__OP_TRANSPOSE] = fk__op_transpose_ref,
        [FK__OP_GATHER] = fk__op_gather_ref,
        [FK__OP_PAD] = fk__op_pad_ref,
        [FK__OP_REDUCE_MEAN] = fk__op_reduce_mean_ref,
        [FK__OP_REDUCE_SUM] = fk__op_reduce_sum_ref,
        [FK__OP_REDUCE_MAX] = fk__op_reduce_max_ref,
        [FK__OP_RESIZE] = fk__op_resize_ref,
        [FK__OP_DEPTH_TO_SPACE] = fk__op_depth_to_space_ref,
        [FK__OP_SHAPE] = fk__op_shape_ref,
        [FK__OP_CAST] = fk__op_cast_ref,
        [FK__OP_IDENTITY] = fk__op_identity_ref,
    };
    if (op < 0 || op >= FK__OP_COUNT) return NULL;
    return table[op];
}
