/*
 * graph.h — facekit's internal neural-network graph: the one representation that both front-ends (ONNX in
 * onnx.c, TF.js graph models in tfjs.c) produce and that the executor (exec.c) runs.
 *
 * Life of a model:
 *   1. A front-end builds a fk__graph: constant tensors (weights, already float32 after dequantisation),
 *      graph inputs, and nodes in any order, each node an internal op with normalised attributes.
 *   2. fk__graph_prepare() fixes the input sizes, sorts nodes topologically, infers every shape (all shapes
 *      are static after this), folds constants (including ONNX shape subgraphs), fuses (batch-norm into conv,
 *      conv + bias + activation), removes dead nodes and plans activation memory (one arena, buffers reused).
 *   3. Kernels may attach prepared state to nodes (packed weights, oneDNN primitives) in node->prep.
 *   4. Runs use a per-thread session whose arena was sized by the plan: an inference does no allocation.
 *
 * Layout: weights of Conv are always stored OIHW (O = output channels, I = input channels / group), whatever
 * the source format; the activation layout of spatial ops is an attribute (NCHW for ONNX, NHWC for TF.js), so
 * each front-end keeps its model's own layout and no transposes are inserted.
 *
 * Ownership: the graph owns every name, shape and constant. Nothing here prints; errors go into the graph's
 * error buffer naming the source file and node.
 */
#ifndef FK_NN_GRAPH_H
#define FK_NN_GRAPH_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

#define FK__MAX_RANK 6
#define FK__MAX_SPLIT 32 /* most outputs of one Split node (attr.split) */

enum fk__dtype {
    FK__DT_F32 = 1,
    FK__DT_I64 = 2, /* shape arithmetic, indices (ONNX) */
    FK__DT_I32 = 3, /* shape arithmetic, indices (TF.js) */
};

enum fk__layout { FK__NCHW = 0, FK__NHWC = 1 };

/* X-macro: internal op, short name used in messages and `nn info` op counts. */
#define FK__OP_LIST(X)                                                                             \
    X(CONV, "Conv")                     /* in: x, w[OIHW], (bias)           attr: spatial, act   */ \
    X(CONV_TRANSPOSE, "ConvTranspose")  /* in: x, w[I,O/g,kh,kw], (bias)   attr: spatial, out_pad */\
    X(MAX_POOL, "MaxPool")              /* in: x                            attr: spatial         */\
    X(AVG_POOL, "AveragePool")          /* in: x                            attr: spatial, cip    */\
    X(GLOBAL_AVG_POOL, "GlobalAveragePool") /* in: x   (layout)                                   */\
    X(BATCH_NORM, "BatchNormalization") /* in: x, scale, shift (precomputed) attr: layout         */\
    X(ADD, "Add")                       /* numpy broadcasting binaries; attr act for fused Relu   */\
    X(SUB, "Sub")                                                                                  \
    X(MUL, "Mul")                                                                                  \
    X(DIV, "Div")                                                                                  \
    X(MAX, "Max")                                                                                  \
    X(MIN, "Min")                                                                                  \
    X(POW, "Pow")                                                                                  \
    X(PRELU, "PRelu")                   /* in: x, slope (broadcast)                               */\
    X(RELU, "Relu")                                                                                \
    X(CLIP, "Clip")                     /* attr: clip_min, clip_max (Relu6 = Clip 0..6)           */\
    X(LEAKY_RELU, "LeakyRelu")          /* attr: alpha                                            */\
    X(SIGMOID, "Sigmoid")                                                                          \
    X(TANH, "Tanh")                                                                                \
    X(EXP, "Exp")                                                                                  \
    X(ABS, "Abs")                                                                                  \
    X(NEG, "Neg")                                                                                  \
    X(SQRT, "Sqrt")                                                                                \
    X(RSQRT, "Rsqrt")                                                                              \
    X(SQUARE, "Square")                                                                            \
    X(SOFTMAX, "Softmax")               /* attr: axis (normalised >= 0)                           */\
    X(MATMUL, "MatMul")                 /* numpy matmul with batch broadcasting; act               */\
    X(GEMM, "Gemm")                     /* in: a, b, (c); attr: alpha, beta, trans_a, trans_b, act */\
    X(CONCAT, "Concat")                 /* n inputs; attr: axis                                   */\
    X(SPLIT, "Split")                   /* n outputs; sizes are the outputs' dims on axis         */\
    X(SLICE, "Slice")                   /* attr s_* lists, or ONNX-10 inputs starts,ends,(axes),(steps) */\
    X(RESHAPE, "Reshape")               /* in: data, shape (const int; 0 copies a dim, -1 infers) */\
    X(FLATTEN, "Flatten")               /* attr: axis                                             */\
    X(SQUEEZE, "Squeeze")               /* attr: axes (none = all size-1 dims)                    */\
    X(UNSQUEEZE, "Unsqueeze")           /* attr: axes, positions in the output                    */\
    X(TRANSPOSE, "Transpose")           /* attr: perm, n_perm (0 = reverse the axes)              */\
    X(GATHER, "Gather")                 /* in: data, indices (const i64); attr: axis              */\
    X(PAD, "Pad")                       /* attr: pads_nd[2*n_pads_nd/2] (begins, then ends), mode */\
    X(REDUCE_MEAN, "ReduceMean")        /* attr: axes (raw, may be negative; none = all), keepdims */\
    X(REDUCE_SUM, "ReduceSum")                                                                     \
    X(REDUCE_MAX, "ReduceMax")                                                                     \
    X(RESIZE, "Resize")                 /* attr: layout, out_hw, resize_mode, resize_coord        */\
    X(DEPTH_TO_SPACE, "DepthToSpace")   /* attr: layout, block, dcr                               */\
    X(SHAPE, "Shape")                   /* int64 result; always folded at prepare time            */\
    X(CAST, "Cast")                     /* attr: to (enum fk__dtype)                              */\
    X(IDENTITY, "Identity")

enum fk__op {
#define FK__OP_ENUM(id, name) FK__OP_##id,
    FK__OP_LIST(FK__OP_ENUM)
#undef FK__OP_ENUM
    FK__OP_COUNT
};

const char *fk__op_name(enum fk__op op);

enum fk__act {
    FK__ACT_NONE = 0,
    FK__ACT_RELU,
    FK__ACT_CLIP,    /* act_a = min, act_b = max (Relu6: 0, 6) */
    FK__ACT_LEAKY,   /* act_a = alpha */
    FK__ACT_PRELU,   /* slope tensor = node->act_slope, broadcast over channels */
    FK__ACT_SIGMOID,
    FK__ACT_TANH,
};

enum fk__pad_mode { FK__PAD_CONSTANT = 0, FK__PAD_REFLECT, FK__PAD_EDGE };
enum fk__resize_mode { FK__RESIZE_NEAREST = 0, FK__RESIZE_BILINEAR };
enum fk__resize_coord { FK__COORD_HALF_PIXEL = 0, FK__COORD_ALIGN_CORNERS, FK__COORD_ASYMMETRIC };
/* How nearest-neighbour Resize rounds the source coordinate. PyTorch exports use FLOOR (with ASYMMETRIC);
 * TF half_pixel_centers / align_corners nearest is ROUND_PREFER_CEIL. */
enum fk__nearest_mode { FK__NEAREST_ROUND_PREFER_FLOOR = 0, FK__NEAREST_FLOOR, FK__NEAREST_CEIL, FK__NEAREST_ROUND_PREFER_CEIL };

/* TF "SAME" padding is decided when the input size is known; the front-end marks it and shape inference
 * turns it into explicit (possibly asymmetric: more at the end) pads. */
enum fk__auto_pad { FK__AUTOPAD_NONE = 0, FK__AUTOPAD_SAME_UPPER, FK__AUTOPAD_SAME_LOWER, FK__AUTOPAD_VALID };

typedef struct fk__attr {
    /* spatial: Conv, ConvTranspose, pools, GlobalAveragePool, BatchNorm, Resize, DepthToSpace */
    int layout; /* enum fk__layout */
    int kernel[2], stride[2], dilation[2];
    int pads[4]; /* top, left, bottom, right */
    int auto_pad; /* enum fk__auto_pad; resolved into pads by shape inference */
    int group;
    int out_pad[2]; /* ConvTranspose output_padding */
    int ceil_mode, count_include_pad;

    /* fused activation (Conv, ConvTranspose, Gemm, MatMul, Add, BatchNorm) */
    int act;         /* enum fk__act */
    float act_a, act_b;
    int act_slope;   /* tensor id of PReLU slopes, -1 if none */

    /* generic. Axes are stored as the source gave them (possibly negative); shape inference normalises. */
    int axis;
    int perm[FK__MAX_RANK], n_perm;
    int axes[FK__MAX_RANK], n_axes; /* reductions, Squeeze, Unsqueeze */
    int s_axes[FK__MAX_RANK], s_n;  /* Slice in attribute form: s_n entries; ends may be INT64_MAX */
    int64_t s_starts[FK__MAX_RANK], s_ends[FK__MAX_RANK], s_steps[FK__MAX_RANK];
    int64_t pads_nd[2 * FK__MAX_RANK]; /* Pad: n_pads_nd = 2*rank values, begins for each axis then ends */
    int n_pads_nd;
    int pad_mode;
    float pad_value;
    int keepdims;
    int64_t out_hw[2]; /* Resize output size; ConvTranspose output size (0 = infer) */
    float alpha, beta;  /* Gemm, LeakyRelu */
    int trans_a, trans_b;
    float clip_min, clip_max;
    float eps;
    int block, dcr;     /* DepthToSpace: dcr = 1 for DCR (TF), 0 for CRD */
    int resize_mode, resize_coord;
    int nearest_mode; /* enum fk__nearest_mode (Resize nearest only); default ROUND_PREFER_FLOOR (ONNX) */
    int to; /* Cast */
    /* Split (added by the ONNX front-end; for ops.c shape inference): the size of each output along `axis`,
     * n_split == n_out entries, from the ONNX attribute (opset < 13) or constant input (opset 13+).
     * n_split = 0 means equal parts: the axis length divided by n_out (must divide exactly). */
    int n_split;
    int64_t split[FK__MAX_SPLIT];
    /* Conv with a pre-operation (prepare.c folds a BatchNormalization [+ Relu] that only feeds a 1x1 Conv
     * forward into it): inputs 3 and 4 are per-input-channel scale and shift, input 0 is read as
     * pre_act(x * scale + shift) (pre_act: enum fk__act, NONE or RELU). 0 = no pre-operation. */
    int pre_op, pre_act;
} fk__attr;

enum fk__tensor_kind { FK__T_ACT = 0, FK__T_CONST = 1, FK__T_INPUT = 2 };

typedef struct fk__tensor {
    char *name;
    int dtype; /* enum fk__dtype */
    int kind;  /* enum fk__tensor_kind */
    int is_output;
    int rank;
    int64_t dims[FK__MAX_RANK];
    void *data;       /* FK__T_CONST: owned values; else NULL */
    /* set by the memory plan */
    size_t offset;    /* byte offset in the session arena (activations and inputs) */
    int alias_of;     /* >= 0: this tensor shares that tensor's buffer (in-place Reshape), else -1 */
    int producer;     /* node index, -1 for constants and inputs */
    int placed_in;    /* a Concat input written in place: the outermost tensor whose buffer it lives in, else -1 */
    int last_use;     /* index (in run order) of the last node that reads it */
} fk__tensor;

typedef struct fk__node {
    int op; /* enum fk__op */
    char *name;
    int n_in, n_out;
    int *in;  /* tensor ids; -1 marks an absent optional input */
    int *out;
    fk__attr a;
    /* fast-kernel state attached after planning (packed weights, primitives), freed with prep_free */
    void *prep;
    void (*prep_free)(void *prep);
    size_t scratch_bytes; /* per-run scratch this node needs (im2col ...), provided by the session arena */
    int noop; /* set by the memory plan: the outputs are already in place (a Concat whose inputs were written
               * straight into it), the run skips the node */
} fk__node;

typedef struct fk__graph {
    fk__tensor *t;
    int nt, cap_t;
    fk__node *n;
    int nn, cap_n;
    /* Filled by the front-end (fk__malloc'd arrays of tensor ids, in the model's declared order; the ONNX
     * loader does so, and marks output tensors is_output); freed by fk__graph_free. */
    int *inputs, n_inputs;
    int *outputs, n_outputs;
    int layout;        /* layout of the model's image inputs (informative) */
    char *source;      /* file the model came from, for messages */
    char *format;      /* "onnx" or "tfjs" */
    /* memory plan */
    size_t arena_bytes;   /* activations, planned */
    size_t scratch_bytes; /* max over nodes */
    size_t peak_bytes;    /* peak live activation bytes */
    int prepared;
    char err[512];
} fk__graph;

/* Construction (front-ends). All return FK_OK or an error with g->err set. */
int fk__graph_init(fk__graph *g, const char *source, const char *format);
void fk__graph_free(fk__graph *g);
/* Adds a tensor; DATA (if not NULL) is taken over by the graph (must come from fk__malloc). Returns its id
 * or a negative status. Names must be unique; fk__graph_find returns -1 when absent. */
int fk__graph_add_tensor(fk__graph *g, const char *name, int dtype, int kind, int rank, const int64_t *dims,
                         void *data);
int fk__graph_find(const fk__graph *g, const char *name);
/* Adds a node with attributes initialised to defaults (stride/dilation 1, group 1, act_slope -1, ...),
 * returns its index or a negative status. IN/OUT are copied. */
int fk__graph_add_node(fk__graph *g, int op, const char *name, int n_in, const int *in, int n_out,
                       const int *out);
void fk__attr_defaults(fk__attr *a);
size_t fk__dtype_size(int dtype);
int64_t fk__tensor_numel(const fk__tensor *t);

/* Fixes input sizes (INPUT_DIMS may be NULL to keep the model's own; otherwise one dims array per graph
 * input, each of that input's rank), then sorts, infers shapes, folds, fuses, plans. */
int fk__graph_prepare(fk__graph *g, const int64_t *const *input_dims);

/* Shape inference for one node, given its inputs' shapes (ops.c).
 * After it (i.e. in every prepared graph) attributes are in normal form, so kernels need not re-interpret:
 *   - Conv/ConvTranspose/pools: auto_pad == NONE, pads explicit (TF SAME: extra pad at the end; SAME_LOWER:
 *     at the begin); kernel[] taken from the weights for convolutions; ConvTranspose out_hw[] set when an
 *     output size was asked for (its end pads may then be negative: extra zero rows at the end).
 *   - axis (Softmax, Concat, Split, Gather, Flatten) >= 0; Split has n_split == n_out sizes.
 *   - Slice: s_n == rank, s_axes[i] == i, s_starts in range, s_steps != 0, whatever form the source used;
 *     the kernel walks out dims with start + i * step (ends are informative only).
 *   - Squeeze/Unsqueeze/Reduce*: axes >= 0 (reductions: sorted, n_axes == 0 never: all axes listed);
 *     Transpose: n_perm == rank; Pad: pads_nd/pad_value filled (also from ONNX inputs); Clip: clip_min/max
 *     filled (also from ONNX inputs); Resize: out_hw set.
 * Fused activations (set by prepare): act_slope, when set, is a constant float tensor with 1 value or one
 * per channel, the channel being dim 1 (NCHW) or the last dim (NHWC, Gemm, MatMul). */
int fk__op_infer(fk__graph *g, fk__node *n);

/* Front-ends: fill an initialised graph from a file. Errors name the file and the node (g->err). */
int fk__onnx_load(fk__graph *g, const char *path);  /* onnx.c */
int fk__tfjs_load(fk__graph *g, const char *path);  /* tfjs.c: path of model.json; shards beside it */

/* ---- running ------------------------------------------------------------------------------------ */

typedef struct fk__pool fk__pool;

/* What a kernel sees during one run. DATA holds one pointer per tensor (arena slot, constant data or the
 * caller's input). SCRATCH is this run's scratch area (node->scratch_bytes available). */
typedef struct fk__run_ctx {
    const fk__graph *g;
    void *const *data;
    unsigned char *scratch;
    int threads;   /* threads this call may use, >= 1 */
    fk__pool *pool; /* NULL or a pool with at least `threads` threads */
} fk__run_ctx;

typedef int (*fk__kernel_fn)(const fk__run_ctx *cx, const fk__node *n);

/* Plain C reference kernel of every op (ops_ref.c): the oracle in tests. Never NULL for a valid op. */
fk__kernel_fn fk__ref_kernel(int op);

/* Fast paths (fast*.c): called once per node after planning; may attach node->prep and set
 * node->scratch_bytes. Returns an error only for real failures (out of memory), not for "no fast path". */
int fk__fast_prepare(fk__graph *g, fk__node *n);
/* The fast kernel chosen for this node at prepare time, or NULL to use the reference kernel. */
fk__kernel_fn fk__fast_kernel(const fk__node *n);

/* Thread pool (pool.c). fk__pool_create(T) starts T-1 workers; the calling thread takes part.
 * fk__pool_for runs fn(arg, i) for i in [0, n) on up to `threads` threads and returns when all are done.
 * p may be NULL (runs serially). Every thread that runs kernels has flush-to-zero and
 * denormals-are-zero set (fk__cpu_set_ftz). */
fk__pool *fk__pool_create(int threads);
void fk__pool_destroy(fk__pool *p);
void fk__pool_for(fk__pool *p, int threads, int n, void (*fn)(void *arg, int i), void *arg);
/* Sets FTZ+DAZ in the calling thread's MXCSR; returns the previous MXCSR so it can be restored. */
unsigned fk__cpu_set_ftz(void);
void fk__cpu_restore(unsigned mxcsr);

#endif
