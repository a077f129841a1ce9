/*
 * exec.c — the public neural-network API (facekit.h, "Neural-network executor"): opening a model through a
 * front-end and preparing it (prepare.c), the per-thread sessions and the run loop. The loop is deliberately
 * plain: for each prepared node, call its fast kernel if fast*.c chose one at prepare time, else the
 * reference kernel (ops_ref.c), with one pointer per tensor into the session's arena, the model's constants
 * or the caller's input buffers. Sessions allocate everything at creation so that a run allocates nothing.
 */
#include "nn/ops.h"

#include <stdio.h>
#include <string.h>

struct fk_nn_model {
    fk__graph g;
    int ok;
    int threads;
    int use_reference;
    int loaded_ops[FK__OP_COUNT];
    int prepared_ops[FK__OP_COUNT];
    int nodes_loaded;
    uint64_t parameters;
    char err[512];
};

struct fk_nn_session {
    const fk_nn_model_t *m;
    unsigned char *arena;
    unsigned char *scratch;
    void **data;      /* per tensor */
    int *root;        /* per tensor: the tensor whose storage it uses (views), else itself */
    fk__pool *pool;
    int threads;
    char err[512];
};

static int model_prepare(fk_nn_model_t *m, const fk_nn_options_t *opt, const char *path);

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suf[i]) return 0;
    }
    return 1;
}

int fk_nn_model_open(const char *path, const fk_nn_options_t *opt, fk_nn_model_t **out) {
    if (!out) return FK_EINVAL;
    fk_nn_model_t *m = fk__calloc(1, sizeof *m);
    *out = m;
    if (!m) return FK_ENOMEM;
    if (!path) {
        fk__seterr(m->err, sizeof m->err, "no model path given");
        return FK_EINVAL;
    }
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    m->threads = o.threads > 0 ? o.threads : 1;
    m->use_reference = o.use_reference;
    int is_onnx = ends_with(path, ".onnx"), is_json = ends_with(path, ".json");
    if (!is_onnx && !is_json) {
        fk__seterr(m->err, sizeof m->err, "%s: unknown model format (expected .onnx or a TF.js model.json)", path);
        return FK_EUNSUPPORTED;
    }
    int rc = fk__graph_init(&m->g, path, is_onnx ? "onnx" : "tfjs");
    if (rc) {
        fk__seterr(m->err, sizeof m->err, "%s: out of memory", path);
        return rc;
    }
    rc = is_onnx ? fk__onnx_load(&m->g, path) : fk__tfjs_load(&m->g, path);
    if (rc) goto fail;
    return model_prepare(m, &o, path);
fail:
    fk__seterr(m->err, sizeof m->err, "%s", m->g.err[0] ? m->g.err : fk_status_str(rc));
    if (!strstr(m->err, path)) { /* every message names the file */
        char tmp[sizeof m->err];
        memcpy(tmp, m->err, sizeof tmp);
        fk__seterr(m->err, sizeof m->err, "%s: %.400s", path, tmp);
    }
    fk__graph_free(&m->g);
    return rc;
}

int fk__nn_model_from_graph(fk__graph *g, const fk_nn_options_t *opt, fk_nn_model_t **out) {
    if (!out) return FK_EINVAL;
    fk_nn_model_t *m = fk__calloc(1, sizeof *m);
    *out = m;
    if (!m) {
        fk__graph_free(g);
        return FK_ENOMEM;
    }
    fk_nn_options_t o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    m->threads = o.threads > 0 ? o.threads : 1;
    m->use_reference = o.use_reference;
    m->g = *g;
    memset(g, 0, sizeof *g);
    return model_prepare(m, &o, m->g.source ? m->g.source : "?");
}

/* Everything after loading: chosen outputs, input sizes, prepare, statistics. Frees the graph on failure. */
static int model_prepare(fk_nn_model_t *m, const fk_nn_options_t *opt, const char *path) {
    fk_nn_options_t o = *opt;
    int rc;
    m->nodes_loaded = m->g.nn;
    for (int i = 0; i < m->g.nn; i++)
        if (m->g.n[i].op >= 0 && m->g.n[i].op < FK__OP_COUNT) m->loaded_ops[m->g.n[i].op]++;

    if (o.outputs && o.n_outputs > 0) {
        int *outs = fk__malloc((size_t)o.n_outputs * sizeof(int));
        if (!outs) {
            fk__seterr(m->err, sizeof m->err, "%s: out of memory", path);
            rc = FK_ENOMEM;
            goto fail_msg;
        }
        for (int i = 0; i < o.n_outputs; i++) {
            outs[i] = o.outputs[i] ? fk__graph_find(&m->g, o.outputs[i]) : -1;
            if (outs[i] < 0) {
                fk__seterr(m->err, sizeof m->err, "%s: no tensor named '%s' to use as an output", path,
                           o.outputs[i] ? o.outputs[i] : "(null)");
                fk__free(outs);
                rc = FK_ENOTFOUND;
                goto fail_msg;
            }
        }
        for (int i = 0; i < m->g.nt; i++) m->g.t[i].is_output = 0;
        for (int i = 0; i < o.n_outputs; i++) m->g.t[outs[i]].is_output = 1;
        fk__free(m->g.outputs);
        m->g.outputs = outs;
        m->g.n_outputs = o.n_outputs;
    }
    /* input sizes: explicit dims, else the height/width override on image inputs */
    int64_t dims[64][FK__MAX_RANK];
    const int64_t *ptrs[64];
    const int64_t *const *use = NULL;
    if (m->g.n_inputs > 64) {
        fk__seterr(m->err, sizeof m->err, "%s: more than 64 inputs", path);
        rc = FK_ELIMIT;
        goto fail_msg;
    }
    if (o.input_dims) {
        use = o.input_dims;
    } else if (o.input_height > 0 || o.input_width > 0) {
        for (int i = 0; i < m->g.n_inputs; i++) {
            const fk__tensor *t = &m->g.t[m->g.inputs[i]];
            memcpy(dims[i], t->dims, sizeof dims[i]);
            ptrs[i] = dims[i];
            if (t->rank != 4) continue;
            int hi = m->g.layout == FK__NHWC ? 1 : 2;
            if (o.input_height > 0) dims[i][hi] = o.input_height;
            if (o.input_width > 0) dims[i][hi + 1] = o.input_width;
        }
        use = ptrs;
    }
    rc = fk__graph_prepare(&m->g, use);
    if (rc) goto fail;
    for (int i = 0; i < m->g.n_inputs; i++)
        if (m->g.t[m->g.inputs[i]].dtype != FK__DT_F32) {
            fk__seterr(m->err, sizeof m->err, "%s: input '%s' is not float32", path, m->g.t[m->g.inputs[i]].name);
            rc = FK_EUNSUPPORTED;
            goto fail_msg;
        }
    for (int i = 0; i < m->g.nn; i++) {
        m->prepared_ops[m->g.n[i].op]++;
        const fk__node *n = &m->g.n[i];
        for (int k = 0; k < n->n_in; k++) { /* each constant counted once: at its last reader */
            int t = n->in[k];
            if (t >= 0 && m->g.t[t].kind == FK__T_CONST && m->g.t[t].dtype == FK__DT_F32 && m->g.t[t].last_use == i)
                m->parameters += (uint64_t)fk__tensor_numel(&m->g.t[t]);
        }
        int sl = n->a.act_slope; /* fused PReLU slopes */
        if (sl >= 0 && m->g.t[sl].kind == FK__T_CONST && m->g.t[sl].last_use == i)
            m->parameters += (uint64_t)fk__tensor_numel(&m->g.t[sl]);
    }
    m->ok = 1;
    return FK_OK;
fail:
    fk__seterr(m->err, sizeof m->err, "%s%s", m->g.err[0] ? m->g.err : fk_status_str(rc),
               rc == FK_ESHAPE && (o.input_height > 0 || o.input_width > 0 || o.input_dims)
                   ? " (with another input size, outputs may depend on constants baked for the exported size:"
                     " choose earlier tensors as outputs)"
                   : "");
    if (!strstr(m->err, path)) { /* every message names the file */
        char tmp[sizeof m->err];
        memcpy(tmp, m->err, sizeof tmp);
        fk__seterr(m->err, sizeof m->err, "%s: %.400s", path, tmp);
    }
fail_msg:
    fk__graph_free(&m->g);
    return rc;
}

void fk_nn_model_close(fk_nn_model_t *m) {
    if (!m) return;
    fk__graph_free(&m->g);
    fk__free(m);
}

const fk__graph *fk__nn_model_graph(const fk_nn_model_t *m) { return m ? &m->g : NULL; }

const char *fk_nn_model_errmsg(const fk_nn_model_t *m) { return m ? m->err : "out of memory"; }

static const fk__tensor *io_tensor(const fk_nn_model_t *m, int i, int output) {
    if (!m || !m->ok) return NULL;
    int n = output ? m->g.n_outputs : m->g.n_inputs;
    if (i < 0 || i >= n) return NULL;
    return &m->g.t[output ? m->g.outputs[i] : m->g.inputs[i]];
}

int fk_nn_model_input_count(const fk_nn_model_t *m) { return m && m->ok ? m->g.n_inputs : 0; }
int fk_nn_model_output_count(const fk_nn_model_t *m) { return m && m->ok ? m->g.n_outputs : 0; }

const char *fk_nn_model_input_name(const fk_nn_model_t *m, int i) {
    const fk__tensor *t = io_tensor(m, i, 0);
    return t ? t->name : NULL;
}

const char *fk_nn_model_output_name(const fk_nn_model_t *m, int i) {
    const fk__tensor *t = io_tensor(m, i, 1);
    return t ? t->name : NULL;
}

static int shape_of(const fk__tensor *t, int *rank, int64_t *dims) {
    if (!t || !rank || !dims) return FK_EINVAL;
    *rank = t->rank;
    for (int k = 0; k < FK_NN_MAX_RANK; k++) dims[k] = k < t->rank ? t->dims[k] : 0;
    return FK_OK;
}

int fk_nn_model_input_shape(const fk_nn_model_t *m, int i, int *rank, int64_t dims[FK_NN_MAX_RANK]) {
    return shape_of(io_tensor(m, i, 0), rank, dims);
}

int fk_nn_model_output_shape(const fk_nn_model_t *m, int i, int *rank, int64_t dims[FK_NN_MAX_RANK]) {
    return shape_of(io_tensor(m, i, 1), rank, dims);
}

size_t fk_nn_model_input_numel(const fk_nn_model_t *m, int i) {
    const fk__tensor *t = io_tensor(m, i, 0);
    return t ? (size_t)fk__tensor_numel(t) : 0;
}

size_t fk_nn_model_output_numel(const fk_nn_model_t *m, int i) {
    const fk__tensor *t = io_tensor(m, i, 1);
    return t ? (size_t)fk__tensor_numel(t) : 0;
}

int fk_nn_model_info(const fk_nn_model_t *m, fk_nn_model_info_t *info) {
    if (!m || !m->ok || !info) return FK_EINVAL;
    memset(info, 0, sizeof *info);
    info->format = m->g.format;
    info->layout = m->g.layout;
    info->nodes_loaded = m->nodes_loaded;
    info->nodes_prepared = m->g.nn;
    info->parameters = m->parameters;
    info->arena_bytes = m->g.arena_bytes;
    info->peak_bytes = m->g.peak_bytes;
    info->scratch_bytes = m->g.scratch_bytes;
    return FK_OK;
}

int fk_nn_op_count(void) { return FK__OP_COUNT; }

const char *fk_nn_op_name(int op) { return op >= 0 && op < FK__OP_COUNT ? fk__op_name((enum fk__op)op) : NULL; }

int fk_nn_model_op_count(const fk_nn_model_t *m, int op, int prepared) {
    if (!m || !m->ok || op < 0 || op >= FK__OP_COUNT) return 0;
    return prepared ? m->prepared_ops[op] : m->loaded_ops[op];
}

/* ---- sessions --------------------------------------------------------------------------------------- */

void fk_nn_session_destroy(fk_nn_session_t *s) {
    if (!s) return;
    fk__pool_destroy(s->pool);
    fk__free(s->arena);
    fk__free(s->scratch);
    fk__free(s->data);
    fk__free(s->root);
    fk__free(s);
}

int fk_nn_session_create(const fk_nn_model_t *m, int threads, fk_nn_session_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!m || !m->ok) return FK_EINVAL;
    const fk__graph *g = &m->g;
    fk_nn_session_t *s = fk__calloc(1, sizeof *s);
    if (!s) return FK_ENOMEM;
    s->m = m;
    s->threads = threads > 0 ? threads : m->threads;
    s->arena = fk__malloc(g->arena_bytes ? g->arena_bytes : 64);
    s->scratch = fk__malloc(g->scratch_bytes ? g->scratch_bytes : 64);
    s->data = fk__calloc((size_t)(g->nt ? g->nt : 1), sizeof(void *));
    s->root = fk__malloc((size_t)(g->nt ? g->nt : 1) * sizeof(int));
    s->pool = fk__pool_create(s->threads);
    if (!s->arena || !s->scratch || !s->data || !s->root || !s->pool) {
        fk_nn_session_destroy(s);
        return FK_ENOMEM;
    }
    for (int i = 0; i < g->nt; i++) {
        const fk__tensor *t = &g->t[i];
        int r = i;
        while (g->t[r].alias_of >= 0 && g->t[r].alias_of != r) r = g->t[r].alias_of;
        s->root[i] = r;
        if (t->kind == FK__T_CONST)
            s->data[i] = t->data;
        else if (g->t[r].kind == FK__T_ACT && g->t[r].producer >= 0)
            s->data[i] = s->arena + g->t[r].offset;
    }
    *out = s;
    return FK_OK;
}

const char *fk_nn_session_errmsg(const fk_nn_session_t *s) { return s ? s->err : "no session"; }

int fk_nn_session_run(fk_nn_session_t *s, const float *const *inputs, float *const *outputs) {
    if (!s) return FK_EINVAL;
    const fk_nn_model_t *m = s->m;
    const fk__graph *g = &m->g;
    s->err[0] = 0;
    if (!inputs || !outputs) {
        fk__seterr(s->err, sizeof s->err, "NULL input or output array");
        return FK_EINVAL;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        if (!inputs[i]) {
            fk__seterr(s->err, sizeof s->err, "input %d ('%s') is NULL", i, g->t[g->inputs[i]].name);
            return FK_EINVAL;
        }
        s->data[g->inputs[i]] = (void *)(uintptr_t)inputs[i]; /* kernels never write their inputs */
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!outputs[i]) {
            fk__seterr(s->err, sizeof s->err, "output %d ('%s') is NULL", i, g->t[g->outputs[i]].name);
            return FK_EINVAL;
        }
    for (int i = 0; i < g->nt; i++) /* views of inputs follow the caller's buffers */
        if (s->root[i] != i && g->t[s->root[i]].kind == FK__T_INPUT) s->data[i] = s->data[s->root[i]];
    unsigned mxcsr = fk__cpu_set_ftz();
    fk__run_ctx cx = {g, s->data, s->scratch, s->threads, s->pool};
    int rc = FK_OK;
    for (int i = 0; i < g->nn; i++) {
        const fk__node *n = &g->n[i];
        if (n->noop) continue; /* its inputs were written into its output (memory plan) */
        fk__kernel_fn fn = m->use_reference ? NULL : fk__fast_kernel(n);
        if (!fn) fn = fk__ref_kernel(n->op);
        rc = fn ? fn(&cx, n) : FK_EINTERNAL;
        if (rc) {
            fk__seterr(s->err, sizeof s->err, "%s: node '%s' (%s) failed: %s", g->source, n->name,
                       fk__op_name(n->op), fk_status_str(rc));
            break;
        }
    }
    fk__cpu_restore(mxcsr);
    if (rc) return rc;
    for (int i = 0; i < g->n_outputs; i++) {
        const fk__tensor *t = &g->t[g->outputs[i]];
        const void *src = s->data[g->outputs[i]];
        int64_t cnt = fk__tensor_numel(t);
        if (t->dtype == FK__DT_F32)
            memcpy(outputs[i], src, (size_t)cnt * sizeof(float));
        else if (t->dtype == FK__DT_I64)
            for (int64_t k = 0; k < cnt; k++) outputs[i][k] = (float)((const int64_t *)src)[k];
        else
            for (int64_t k = 0; k < cnt; k++) outputs[i][k] = (float)((const int32_t *)src)[k];
    }
    return FK_OK;
}
