/*
 * ops.h — private helpers shared by the executor's own files (graph.c, ops.c, ops_ref.c, prepare.c, exec.c).
 * Not part of the graph contract in graph.h: front-ends and fast kernels do not need these.
 */
#ifndef FK_NN_OPS_H
#define FK_NN_OPS_H

#include "nn/graph.h"

/* Frees a node's name, edges and prepared state and zeroes it (graph.c). */
void fk__node_release(fk__node *n);

/* Wraps an already built graph (tests, tools) into a model: takes over *G (left zeroed, freed on failure)
 * and prepares it with OPT (NULL = defaults) exactly like fk_nn_model_open() (exec.c). Same error contract:
 * *OUT holds a handle with a message even on failure. */
int fk__nn_model_from_graph(fk__graph *g, const fk_nn_options_t *opt, fk_nn_model_t **out);
/* The prepared graph inside a model (tests look at folding, fusion and the memory plan). */
const fk__graph *fk__nn_model_graph(const fk_nn_model_t *m);

/* Largest element count of one tensor we accept from a model (outside input): 2^31 elements. */
#define FK__MAX_NUMEL ((int64_t)1 << 31)

/* Channel axis of a spatial op's activation: 1 for NCHW, rank-1 for NHWC. */
static inline int fk__chan_axis(int layout, int rank) { return layout == FK__NHWC ? rank - 1 : 1; }

/* Sets the node's error (g->err) naming the file, the node and its op; returns STATUS. */
int fk__node_fail(fk__graph *g, const fk__node *n, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The reference kernel of every op (ops_ref.c), also reachable through fk__ref_kernel(op). */
int fk__op_conv_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_conv_transpose_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_max_pool_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_avg_pool_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_global_avg_pool_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_batch_norm_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_add_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_sub_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_mul_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_div_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_max_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_min_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_pow_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_prelu_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_relu_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_clip_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_leaky_relu_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_sigmoid_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_tanh_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_exp_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_abs_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_neg_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_sqrt_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_rsqrt_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_square_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_softmax_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_matmul_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_gemm_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_concat_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_split_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_slice_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_reshape_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_flatten_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_squeeze_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_unsqueeze_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_identity_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_transpose_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_gather_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_pad_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_reduce_mean_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_reduce_sum_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_reduce_max_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_resize_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_depth_to_space_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_shape_ref(const fk__run_ctx *cx, const fk__node *n);
int fk__op_cast_ref(const fk__run_ctx *cx, const fk__node *n);

#endif
