/*
 * routes_face.c — the face endpoints: detect, analyze, compare (images or .fkt templates) and identify
 * (1:N against the gallery, which writes a record with a sealed probe snapshot and queues a match /
 * stranger / spoof event). Each worker thread gets its own fk_ctx_t (the engine is shared), created on
 * first use and destroyed at shutdown.
 */
#include "server/server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local fk_ctx_t *tl_ctx;
static _Thread_local fk_srv_t *tl_srv;

fk_ctx_t *fk__srv_ctx(fk_srv_t *s) {
    if (tl_ctx && tl_srv == s) return tl_ctx;
    fk_ctx_t *c = NULL;
    if (fk_ctx_create(s->engine, &c)) return NULL;
    pthread_mutex_lock(&s->ctx_lock);
    fk_ctx_t **n = fk__realloc(s->ctxs, (s->n_ctxs + 1) * sizeof *n);
    if (!n) {
        pthread_mutex_unlock(&s->ctx_lock);
        fk_ctx_destroy(c);
        return NULL;
    }
    s->ctxs = n;
    s->ctxs[s->n_ctxs++] = c;
    pthread_mutex_unlock(&s->ctx_lock);
    tl_ctx = c;
    tl_srv = s;
    return c;
}

fk_image_t *fk__srv_decode(fk_req_t *r, const uint8_t *buf, size_t n, const char *what) {
    fk_image_decode_options_t d;
    memset(&d, 0, sizeof d);
    d.max_side = FK_FACE_DECODE_MAX_SIDE;
    fk_image_t *img = NULL;
    char err[256] = "";
    int rc = fk_image_decode(buf, n, &d, &img, err, sizeof err);
    if (rc == FK_ENOMEM) fk__resp_error(r, 503, "busy", "out of memory decoding %s", what);
    else if (rc)
        fk__resp_error(r, rc == FK_ELIMIT ? 413 : 400, rc == FK_ELIMIT ? "too_large" : "bad_image",
                       "%s is not a readable image: %s%s%s", what, fk_status_str(rc), err[0] ? ": " : "", err);
    return rc ? NULL : img;
}

/* decodes an image argument; on failure the response is set and NULL returned */
static fk_image_t *image_arg(fk_req_t *r, const char *field, int nth, uint8_t **raw, size_t *raw_n) {
    uint8_t *buf = NULL;
    size_t n = 0;
    int owned = 0;
    int rc = fk__req_blob(r, field, nth, &buf, &n, &owned);
    if (rc < 0) return NULL;
    if (rc > 0) {
        fk__resp_error(r, 400, "bad_request", "missing image field \"%s\" (multipart file or base64 JSON)", field);
        return NULL;
    }
    char what[160];
    snprintf(what, sizeof what, "\"%s\"", field);
    fk_image_t *img = fk__srv_decode(r, buf, n, what);
    if (!img) {
        if (owned) fk__free(buf);
        return NULL;
    }
    if (raw) {
        if (owned) *raw = buf;
        else {
            *raw = fk__malloc(n ? n : 1);
            if (*raw) memcpy(*raw, buf, n);
        }
        *raw_n = n;
    } else if (owned)
        fk__free(buf);
    return img;
}

static json_t *box_json(const fk_face_t *f) {
    return json_pack("[f,f,f,f]", f->box[0], f->box[1], f->box[2], f->box[3]);
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* detect and analyze: the thread's context, the decoded "image" and its faces */
typedef struct {
    fk_ctx_t *c;
    fk_image_t *img;
    fk_face_t *faces;
    size_t n;
} detected_t;

/* 0 = ok (detected_answer frees D); else the response is set */
static int detect_arg(fk_req_t *r, detected_t *d) {
    memset(d, 0, sizeof *d);
    d->c = fk__srv_ctx(r->srv);
    if (!d->c) {
        fk__resp_error(r, 503, "busy", "no working context");
        return -1;
    }
    d->img = image_arg(r, "image", 0, NULL, NULL);
    if (!d->img) return -1;
    int rc = fk_detect(d->c, d->img, NULL, &d->faces, &d->n);
    if (rc) {
        fk__resp_error(r, 500, "internal", "detection failed: %s", fk_status_str(rc));
        fk_image_free(d->img);
        return -1;
    }
    return 0;
}

/* answers {width, height, faces: ARR} and frees D */
static void detected_answer(fk_req_t *r, detected_t *d, json_t *arr) {
    fk__resp_json(r, 200, json_pack("{s:i,s:i,s:o}", "width", d->img->width, "height", d->img->height, "faces", arr));
    fk_free(d->faces);
    fk_image_free(d->img);
}

void fk__h_detect(fk_req_t *r) {
    detected_t d;
    if (detect_arg(r, &d)) return;
    json_t *arr = json_array();
    for (size_t i = 0; i < d.n; i++) {
        json_t *lm = json_array();
        for (int k = 0; k < 5 && d.faces[i].has_landmarks; k++)
            json_array_append_new(lm, json_pack("[f,f]", d.faces[i].landmarks[k].x, d.faces[i].landmarks[k].y));
        json_array_append_new(arr, json_pack("{s:o,s:f,s:o}", "box", box_json(&d.faces[i]), "score", d.faces[i].score,
                                             "landmarks", lm));
    }
    detected_answer(r, &d, arr);
}

void fk__h_analyze(fk_req_t *r) {
    detected_t d;
    if (detect_arg(r, &d)) return;
    json_t *arr = json_array();
    for (size_t i = 0; i < d.n; i++) {
        json_t *f = json_pack("{s:o,s:f}", "box", box_json(&d.faces[i]), "score", d.faces[i].score);
        fk_quality_t q;
        if (!fk_quality(d.c, d.img, &d.faces[i], NULL, &q)) {
            json_t *reasons = json_array();
            for (unsigned b = 1; b <= 0x100; b <<= 1)
                if (q.reasons & b) json_array_append_new(reasons, json_string(fk_quality_reason_code(b)));
            json_object_set_new(f, "quality",
                                json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:o}", "face_size", num(q.face_size), "sharpness",
                                          num(q.sharpness), "brightness", num(q.brightness), "contrast", num(q.contrast),
                                          "yaw", num(q.yaw), "pitch", num(q.pitch), "roll", num(q.roll), "pass", q.pass,
                                          "reasons", reasons));
        }
        fk_liveness_t lv;
        if (!fk_liveness(d.c, d.img, &d.faces[i], -1, &lv))
            json_object_set_new(f, "liveness",
                                json_pack("{s:f,s:f,s:b}", "score", lv.score, "threshold", lv.threshold, "live", lv.live));
        fk_attributes_t at;
        if (!fk_attributes(d.c, d.img, &d.faces[i], &at)) {
            const char *ex = fk_expression_name(at.expression);
            json_object_set_new(f, "attributes",
                                json_pack("{s:o,s:o,s:s?,s:o}", "age", num(at.age), "male", num(at.male), "expression", ex,
                                          "expression_score", num(at.expression_score)));
        }
        json_array_append_new(arr, f);
    }
    detected_answer(r, &d, arr);
}

/* template of an argument: a .fkt template (multipart field starting with "FKT1", or JSON NAME_template),
 * or an image whose largest face is embedded. 0 = ok; else the response is set. */
static int template_arg(fk_req_t *r, fk_ctx_t *c, const char *name, fk_template_t *t) {
    char tname[64];
    snprintf(tname, sizeof tname, "%s_template", name);
    uint8_t *buf = NULL;
    size_t n = 0;
    int owned = 0;
    int rc = fk__req_blob(r, tname, 0, &buf, &n, &owned);
    if (rc < 0) return -1;
    if (rc > 0) {
        const fk_part_t *p = fk__req_part(r, name, 0);
        if (p && p->size >= 4 && !memcmp(p->data, "FKT1", 4)) {
            buf = (uint8_t *)p->data;
            n = p->size;
            rc = 0;
        }
    }
    if (rc == 0) {
        int prc = fk_template_parse(buf, n, t);
        if (owned) fk__free(buf);
        if (prc || fk_engine_check_template(r->srv->engine, t)) {
            fk__resp_error(r, 400, "bad_template", "\"%s\" is not a valid template of this engine's model (%s)", name,
                           fk_status_str(prc ? prc : FK_EMISMATCH));
            return -1;
        }
        return 0;
    }
    fk_image_t *img = image_arg(r, name, 0, NULL, NULL);
    if (!img) return -1;
    rc = fk_embed_largest(c, img, 0, t, NULL);
    fk_image_free(img);
    if (rc == FK_ENOFACE) {
        fk__resp_error(r, 422, "no_face", "no face found in \"%s\"", name);
        return -1;
    }
    if (rc) {
        fk__resp_error(r, 500, "internal", "template of \"%s\" failed: %s", name, fk_status_str(rc));
        return -1;
    }
    return 0;
}

static int threshold_arg(fk_req_t *r, const char *settings_key, double *thr) {
    char tmp[64];
    const char *v = fk__req_text(r, "threshold", tmp, sizeof tmp);
    if (v) {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || !(d >= 0 && d <= 1)) {
            fk__resp_error(r, 400, "bad_request", "threshold must be a number in 0..1");
            return -1;
        }
        *thr = d;
        return 0;
    }
    pthread_mutex_lock(&r->srv->db_lock);
    json_t *st = fk__settings_get(r->srv);
    pthread_mutex_unlock(&r->srv->db_lock);
    json_t *x = json_object_get(st, settings_key);
    *thr = json_is_number(x) ? json_number_value(x) : -1;
    json_decref(st);
    return 0;
}

void fk__h_compare(fk_req_t *r) {
    fk_ctx_t *c = fk__srv_ctx(r->srv);
    if (!c) {
        fk__resp_error(r, 503, "busy", "no working context");
        return;
    }
    double thr;
    if (threshold_arg(r, "compare_threshold", &thr)) return;
    fk_template_t a, b;
    if (template_arg(r, c, "a", &a) || template_arg(r, c, "b", &b)) return;
    fk_match_t m;
    int rc = fk_compare(r->srv->engine, &a, &b, thr, &m);
    if (rc) {
        fk__resp_error(r, 400, "bad_template", "cannot compare: %s", fk_status_str(rc));
        return;
    }
    __atomic_fetch_add(&r->srv->m_compare, 1, __ATOMIC_RELAXED);
    fk__resp_json(r, 200, json_pack("{s:f,s:f,s:f,s:b}", "score", m.score, "cosine", m.cosine, "threshold", m.threshold,
                                    "same", m.same));
}

static const char *decision_of(int spoof, int unknown) { return spoof ? "spoof" : unknown ? "stranger" : "match"; }

void fk__h_identify(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    fk_ctx_t *c = fk__srv_ctx(s);
    if (!c) {
        fk__resp_error(r, 503, "busy", "no working context");
        return;
    }
    double thr;
    if (threshold_arg(r, "identify_threshold", &thr)) return;
    char t1[256], t2[32], t3[256];
    const char *group = fk__req_text(r, "group", t1, sizeof t1);
    const char *top = fk__req_text(r, "top", t2, sizeof t2);
    const char *source = fk__req_text(r, "source", t3, sizeof t3);
    if (!source || !*source) source = r->who;
    int k = top ? atoi(top) : 5;
    if (k < 1 || k > FK_IDENTIFY_MAX_K) {
        fk__resp_error(r, 400, "bad_request", "top must be 1..%d", FK_IDENTIFY_MAX_K);
        return;
    }
    uint8_t *raw = NULL;
    size_t raw_n = 0;
    fk_image_t *img = image_arg(r, "image", 0, &raw, &raw_n);
    if (!img) return;
    fk_template_t t;
    fk_face_t face;
    int rc = fk_embed_largest(c, img, 0, &t, &face);
    if (rc) {
        fk_image_free(img);
        fk__free(raw);
        if (rc == FK_ENOFACE) fk__resp_error(r, 422, "no_face", "no face found in \"image\"");
        else fk__resp_error(r, 500, "internal", "template failed: %s", fk_status_str(rc));
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    json_t *st = fk__settings_get(s);
    pthread_mutex_unlock(&s->db_lock);
    int live_required = json_is_true(json_object_get(st, "liveness_required"));
    json_t *lt = json_object_get(st, "liveness_threshold");
    double live_thr = json_is_number(lt) ? json_number_value(lt) : -1;
    json_decref(st);
    double liveness = NAN;
    int spoof = 0;
    if (live_required) {
        fk_liveness_t lv;
        if (!fk_liveness(c, img, &face, (float)live_thr, &lv)) {
            liveness = lv.score;
            spoof = !lv.live;
        }
    }
    fk_image_free(img);
    fk_identify_result_t *res = fk__calloc(1, sizeof *res);
    if (!res) {
        fk__free(raw);
        fk__resp_error(r, 503, "busy", "out of memory");
        return;
    }
    pthread_mutex_lock(&s->gallery_lock);
    rc = fk_gallery_identify(s->gallery, t.v, t.dim, t.model_id, group && *group ? group : NULL, k, res);
    pthread_mutex_unlock(&s->gallery_lock);
    if (rc) {
        fk__free(raw);
        fk__free(res);
        fk__resp_error(r, 500, "internal", "identify failed: %s", fk_status_str(rc));
        return;
    }
    if (thr >= 0) {
        res->threshold = thr;
        res->unknown = res->n == 0 || res->matches[0].score < thr;
    }
    const fk_gallery_match_t *best = res->n && !res->unknown ? &res->matches[0] : NULL;
    const char *decision = decision_of(spoof, !best);
    /* the probe snapshot, sealed like the gallery's face images */
    uint8_t *sealed = NULL;
    size_t sealed_n = 0;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&s->db_lock);
    /* the record, its fields and the outbox event in one transaction: one commit (one fsync) instead of
     * one per statement, and never a record without its event */
    fk__sdb_exec(s->db, "BEGIN IMMEDIATE", "");
    int64_t rid = fk__sdb_int(s->db, "SELECT COALESCE(MAX(id),0)+1 FROM records", "");
    if (fk__snapshot_seal(s, rid, raw, raw_n, &sealed, &sealed_n)) sealed = NULL;
    int drc = fk__sdb_exec(s->db,
                           "INSERT INTO records(id, time, source, decision, person_id, person_name, face_id, score, cosine, liveness, "
                           "snapshot) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                           "iissisiddsb", rid, now, source, decision, best ? best->person_id : (int64_t)0,
                           best ? best->name : "", best ? best->face_id : (int64_t)0,
                           res->n ? res->matches[0].score : 0.0, res->n ? res->matches[0].cosine : 0.0, (const char *)NULL,
                           (const void *)sealed, sealed_n);
    if (!drc) {
        if (!isnan(liveness)) fk__sdb_exec(s->db, "UPDATE records SET liveness=? WHERE id=?", "di", liveness, rid);
        if (!best) fk__sdb_exec(s->db, "UPDATE records SET person_id=NULL, face_id=NULL WHERE id=?", "i", rid);
        fk__notify_queue(s, decision, rid, source, best ? best->person_id : 0, best ? best->name : "",
                         res->n ? res->matches[0].score : 0.0);
    }
    if (!drc) drc = fk__sdb_exec(s->db, "COMMIT", "");
    if (drc) fk__sdb_exec(s->db, "ROLLBACK", "");
    pthread_mutex_unlock(&s->db_lock);
    fk__free(sealed);
    fk__free(raw);
    if (drc) {
        fk__free(res);
        fk__resp_error(r, 500, "internal", "cannot write the record");
        return;
    }
    __atomic_fetch_add(&s->m_identify, 1, __ATOMIC_RELAXED);
    json_t *arr = json_array();
    for (int i = 0; i < res->n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:I,s:s,s:s,s:f,s:f}", "person_id", (json_int_t)res->matches[i].person_id,
                                             "face_id", (json_int_t)res->matches[i].face_id, "name", res->matches[i].name,
                                             "external_id", res->matches[i].external_id, "score", res->matches[i].score,
                                             "cosine", res->matches[i].cosine));
    snprintf(r->audit_target, sizeof r->audit_target, "record:%lld", (long long)rid);
    snprintf(r->audit_detail, sizeof r->audit_detail, "%s", decision);
    fk__resp_json(r, 200, json_pack("{s:I,s:s,s:b,s:f,s:o}", "record_id", (json_int_t)rid, "decision", decision, "unknown",
                                    !best, "threshold", res->threshold, "matches", arr));
    fk__free(res);
}
