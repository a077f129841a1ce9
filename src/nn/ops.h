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

#endif
