/*
 * gallery.c — a gallery: the store (src/store) plus the in-memory index loaded from it, and open-set 1:N
 * identification scored through the face engine's compare (its manifest calibration and threshold).
 * Writes (enrol, update, remove a person or one face) go to the store first (one durable transaction) and
 * to the index after the commit, so after a crash the index rebuilt from the store at open holds exactly
 * what was acknowledged.
 */
#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct fk_gallery {
    fk_store_t *store;
    fk_index_t *index;
    const fk_engine_t *engine;
    char model_id[FK_TEMPLATE_MODEL_ID_LEN];
    int dim;
    double threshold;
    size_t loaded, skipped;
    pthread_mutex_t store_lock; /* the store handle is single-threaded */
    char err[512];
};

static int gfail(fk_gallery_t *g, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gfail(fk_gallery_t *g, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* loading: batches of templates go to the index together */
#define LOAD_BATCH 1024
typedef struct {
    fk_gallery_t *g;
    size_t n;
    int64_t face[LOAD_BATCH], person[LOAD_BATCH], group[LOAD_BATCH];
    float *v;
} load_t;

static int flush(load_t *l) {
    int rc = l->n ? fk_index_add(l->g->index, l->n, l->face, l->person, l->group, l->v) : FK_OK;
    l->g->loaded += l->n;
    l->n = 0;
    return rc;
}

static int load_one(void *ctx, int64_t face_id, int64_t person_id, int64_t group_id, const char *model_id,
                    const float *tmpl, int dim) {
    load_t *l = ctx;
    if (dim != l->g->dim || strcmp(model_id, l->g->model_id)) {
        l->g->skipped++;
        return 0;
    }
    l->face[l->n] = face_id;
    l->person[l->n] = person_id;
    l->group[l->n] = group_id;
    memcpy(l->v + l->n * (size_t)dim, tmpl, (size_t)dim * sizeof(float));
    if (++l->n == LOAD_BATCH) return flush(l);
    return 0;
}

int fk_gallery_open(const fk_gallery_options_t *opt, fk_gallery_t **out) {
    if (!out) return FK_EINVAL;
    fk_gallery_t *g = fk__calloc(1, sizeof *g);
    *out = g;
    if (!g) return FK_ENOMEM;
    if (pthread_mutex_init(&g->store_lock, NULL)) {
        fk__free(g);
        *out = NULL;
        return FK_ENOMEM;
    }
    if (!opt) return gfail(g, FK_EINVAL, "options are required");
    g->engine = opt->engine;
    if (g->engine) {
        fk_engine_info_t info;
        int rc = fk_engine_info(g->engine, &info);
        if (rc) return gfail(g, rc, "engine: %s", fk_engine_errmsg(g->engine));
        snprintf(g->model_id, sizeof g->model_id, "%s", info.model_id ? info.model_id : "");
        g->dim = info.dim;
        g->threshold = opt->threshold >= 0 ? opt->threshold : info.threshold;
    } else {
        if (!opt->model_id || opt->dim <= 0) return gfail(g, FK_EINVAL, "without an engine, model_id and dim are required");
        snprintf(g->model_id, sizeof g->model_id, "%s", opt->model_id);
        g->dim = opt->dim;
        g->threshold = opt->threshold >= 0 ? opt->threshold : 0.5;
    }
    int rc = fk_store_open(&opt->store, &g->store);
    if (rc) return gfail(g, rc, "%s", fk_store_errmsg(g->store));
    rc = fk_index_create(g->dim, &opt->index, &g->index);
    if (rc) return gfail(g, rc, "index: %s", fk_status_str(rc));
    load_t *l = fk__malloc(sizeof *l);
    float *v = fk__malloc((size_t)LOAD_BATCH * g->dim * sizeof(float));
    if (!l || !v) {
        fk__free(l);
        fk__free(v);
        return gfail(g, FK_ENOMEM, "out of memory");
    }
    l->g = g;
    l->n = 0;
    l->v = v;
    rc = fk_store_face_foreach(g->store, load_one, l);
    if (!rc) rc = flush(l);
    fk__free(v);
    fk__free(l);
    if (rc) return gfail(g, rc, "loading the index: %s", fk_store_errmsg(g->store)[0] ? fk_store_errmsg(g->store) : fk_status_str(rc));
    return FK_OK;
}

void fk_gallery_close(fk_gallery_t *g) {
    if (!g) return;
    fk_index_destroy(g->index);
    fk_store_close(g->store);
    pthread_mutex_destroy(&g->store_lock);
    fk__free(g);
}

const char *fk_gallery_errmsg(const fk_gallery_t *g) { return g ? g->err : "out of memory"; }
fk_store_t *fk_gallery_store(fk_gallery_t *g) { return g ? g->store : NULL; }
fk_index_t *fk_gallery_index(fk_gallery_t *g) { return g ? g->index : NULL; }

int fk_gallery_stats(const fk_gallery_t *g, size_t *loaded, size_t *skipped_other_model) {
    if (!g) return FK_EINVAL;
    if (loaded) *loaded = g->loaded;
    if (skipped_other_model) *skipped_other_model = g->skipped;
    return FK_OK;
}

int fk_gallery_enroll(fk_gallery_t *g, const fk_person_t *person, const fk_face_record_t *faces, size_t n,
                      int64_t *person_id, int64_t *face_ids) {
    if (!g || !g->store || !g->index || !person || (n && !faces)) return FK_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (faces[i].dim != g->dim || !faces[i].model_id || strcmp(faces[i].model_id, g->model_id))
            return gfail(g, FK_EMISMATCH, "face %zu: template of model '%s' (dim %d); this gallery holds '%s' (dim %d)",
                         i, faces[i].model_id ? faces[i].model_id : "", faces[i].dim, g->model_id, g->dim);
    int64_t local[64], *fids = face_ids;
    if (!fids) {
        if (n > 64) return gfail(g, FK_EINVAL, "pass face_ids for more than 64 faces");
        fids = local;
    }
    int64_t pid;
    pthread_mutex_lock(&g->store_lock);
    int rc = fk_store_person_add(g->store, person, faces, n, &pid, fids);
    int64_t gid = 0;
    if (!rc && person->group && *person->group) fk_store_group_id(g->store, person->group, &gid);
    if (rc) gfail(g, rc, "%s", fk_store_errmsg(g->store));
    pthread_mutex_unlock(&g->store_lock);
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) rc = fk_index_add(g->index, 1, &fids[i], &pid, &gid, faces[i].tmpl);
    if (rc) return gfail(g, rc, "stored, but the index refused a template (%s); it is loaded at the next open",
                         fk_status_str(rc));
    if (person_id) *person_id = pid;
    return FK_OK;
}

int fk_gallery_remove_person(fk_gallery_t *g, int64_t person_id) {
    if (!g || !g->store) return FK_EINVAL;
    pthread_mutex_lock(&g->store_lock);
    int rc = fk_store_person_remove(g->store, person_id);
    if (rc) gfail(g, rc, "%s", fk_store_errmsg(g->store));
    pthread_mutex_unlock(&g->store_lock);
    /* the index follows the store even when the store had nothing (a stale index entry is worse) */
    fk_index_remove_person(g->index, person_id, NULL);
    return rc;
}

/* The store first; when the group changed, the person's templates (of this gallery's model) are moved to
 * the new group id in the index: removed, then added again from the store's copy. */
int fk_gallery_update_person(fk_gallery_t *g, int64_t person_id, const fk_person_t *changes) {
    if (!g || !g->store || !g->index || !changes) return FK_EINVAL;
    pthread_mutex_lock(&g->store_lock);
    int rc = fk_store_person_update(g->store, person_id, changes);
    fk_face_record_t *fs = NULL;
    size_t n = 0;
    int64_t gid = 0;
    if (!rc && changes->group) {
        if (*changes->group) rc = fk_store_group_id(g->store, changes->group, &gid);
        if (!rc) rc = fk_store_face_list(g->store, person_id, 0, &fs, &n);
    }
    if (rc) gfail(g, rc, "%s", fk_store_errmsg(g->store));
    pthread_mutex_unlock(&g->store_lock);
    if (rc || !changes->group) {
        fk_free(fs);
        return rc;
    }
    fk_index_remove_person(g->index, person_id, NULL);
    for (size_t i = 0; i < n && !rc; i++) {
        if (fs[i].dim != g->dim || strcmp(fs[i].model_id, g->model_id)) continue; /* not loaded at open either */
        rc = fk_index_add(g->index, 1, &fs[i].id, &person_id, &gid, fs[i].tmpl);
    }
    fk_free(fs);
    if (rc) return gfail(g, rc, "updated, but the index refused a template (%s); it is loaded at the next open",
                         fk_status_str(rc));
    return FK_OK;
}

int fk_gallery_remove_face(fk_gallery_t *g, int64_t person_id, int64_t face_id) {
    if (!g || !g->store) return FK_EINVAL;
    pthread_mutex_lock(&g->store_lock);
    int rc = fk_store_face_remove(g->store, person_id, face_id);
    if (rc) gfail(g, rc, "%s", fk_store_errmsg(g->store));
    pthread_mutex_unlock(&g->store_lock);
    /* only a face the store really had is taken from the index (another person's face id stays) */
    if (!rc) fk_index_remove_face(g->index, face_id, NULL);
    return rc;
}

/* The engine's calibration is applied through fk_compare itself, so identification and 1:1 verification
 * can never disagree: two unit templates a = e0 and b = c e0 + sqrt(1 - c^2) e1 have cosine exactly c. */
static void calibrate(const fk_gallery_t *g, int dim, double cosine, double *score) {
    if (!g->engine) {
        *score = cosine;
        return;
    }
    fk_template_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.model_id, sizeof a.model_id, "%s", g->model_id);
    snprintf(b.model_id, sizeof b.model_id, "%s", g->model_id);
    a.dim = b.dim = dim;
    double c = cosine > 1 ? 1 : cosine < -1 ? -1 : cosine;
    a.v[0] = 1.0f;
    b.v[0] = (float)c;
    if (dim > 1) b.v[1] = (float)sqrt(1 - c * c);
    fk_match_t m;
    *score = fk_compare(g->engine, &a, &b, -1, &m) == FK_OK ? m.score : cosine;
}

int fk_gallery_identify(fk_gallery_t *g, const float *tmpl, int dim, const char *model_id, const char *group,
                        int k, fk_identify_result_t *out) {
    if (!g || !g->index || !tmpl || !out || k < 1 || k > FK_IDENTIFY_MAX_K) return FK_EINVAL;
    memset(out, 0, sizeof *out);
    out->threshold = g->threshold;
    out->unknown = 1;
    if (dim != g->dim || (model_id && strcmp(model_id, g->model_id)))
        return gfail(g, FK_EMISMATCH, "template of model '%s' (dim %d); this gallery holds '%s' (dim %d)",
                     model_id ? model_id : "", dim, g->model_id, g->dim);
    int64_t gid = 0;
    if (group && *group) {
        pthread_mutex_lock(&g->store_lock);
        int rc = fk_store_group_id(g->store, group, &gid);
        pthread_mutex_unlock(&g->store_lock);
        if (rc == FK_ENOTFOUND) return FK_OK; /* nobody enrolled in that group */
        if (rc) return gfail(g, rc, "%s", fk_store_errmsg(g->store));
    }
    fk_index_hit_t hits[FK_IDENTIFY_MAX_K];
    int nh = 0;
    int rc = fk_index_search(g->index, tmpl, k, gid, FK_SEARCH_DISTINCT, hits, &nh);
    if (rc) return gfail(g, rc, "search: %s", fk_status_str(rc));
    for (int i = 0; i < nh; i++) {
        fk_gallery_match_t *m = &out->matches[i];
        m->person_id = hits[i].person_id;
        m->face_id = hits[i].face_id;
        m->cosine = hits[i].cosine;
        calibrate(g, dim, hits[i].cosine, &m->score);
        fk_person_t *p = NULL;
        pthread_mutex_lock(&g->store_lock);
        if (fk_store_person_get(g->store, m->person_id, &p) == FK_OK) {
            snprintf(m->name, sizeof m->name, "%s", p->name);
            snprintf(m->external_id, sizeof m->external_id, "%s", p->external_id);
        }
        pthread_mutex_unlock(&g->store_lock);
        fk_free(p);
    }
    out->n = nh;
    out->unknown = nh == 0 || out->matches[0].score < g->threshold;
    return FK_OK;
}
