/*
 * routes_gallery.c — persons and faces: list (filter by group and name, paginated), create with
 * enrolment from uploads (multipart `image` fields or JSON base64 `images`) and the consent record (who
 * consented, when, for what purpose, and which account recorded it), read, update (name, external id,
 * group, metadata, consent), delete (every face template and image goes with the person; the audit entry
 * stays), add faces, delete one face, and read an enrolment image.
 * Every read here is personal data and audited (see the route table).
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int fk__page_args(fk_req_t *r, int64_t *limit, int64_t *offset);

static json_t *consent_json(fk_srv_t *s, int64_t pid) {
    json_t *o = json_null();
    pthread_mutex_lock(&s->db_lock);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT given_by, purpose, at, recorded_by FROM consent WHERE person_id=?", "i", pid);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        o = json_pack("{s:s,s:s,s:I,s:s}", "by", (const char *)sqlite3_column_text(st, 0), "purpose",
                      (const char *)sqlite3_column_text(st, 1), "at", (json_int_t)sqlite3_column_int64(st, 2), "recorded_by",
                      (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->db_lock);
    return o;
}

/* the answer to a failed person operation: 404 for an unknown person, else 500; 0 when RC is FK_OK */
static int person_failed(fk_req_t *r, int rc) {
    if (rc == FK_ENOTFOUND) fk__resp_error(r, 404, "not_found", "no person %lld", (long long)r->ids[0]);
    else if (rc) fk__resp_error(r, 500, "internal", "%s", fk_status_str(rc));
    return rc;
}

static json_t *person_json(const fk_person_t *p) {
    json_t *meta = json_loads(p->metadata && p->metadata[0] ? p->metadata : "{}", 0, NULL);
    return json_pack("{s:I,s:s,s:s,s:s,s:o,s:i,s:I,s:I}", "id", (json_int_t)p->id, "name", p->name, "external_id",
                     p->external_id, "group", p->group, "metadata", meta ? meta : json_object(), "faces", p->n_faces,
                     "created_at", (json_int_t)p->created_at, "updated_at", (json_int_t)p->updated_at);
}

void fk__h_persons_list(fk_req_t *r) {
    int64_t limit, offset;
    if (fk__page_args(r, &limit, &offset)) return;
    const char *group = fk__req_query(r, "group"), *name = fk__req_query(r, "name");
    fk_person_t *ps = NULL;
    size_t n = 0;
    pthread_mutex_lock(&r->srv->gallery_lock);
    int rc = fk_store_person_list(fk_gallery_store(r->srv->gallery), group && *group ? group : NULL, &ps, &n);
    pthread_mutex_unlock(&r->srv->gallery_lock);
    if (rc) {
        fk__resp_error(r, 500, "internal", "cannot list persons: %s", fk_status_str(rc));
        return;
    }
    json_t *items = json_array();
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (name && *name && !fk__strcasestr(ps[i].name, name)) continue;
        if (total >= offset && total < offset + limit) json_array_append_new(items, person_json(&ps[i]));
        total++;
    }
    fk_free(ps);
    snprintf(r->audit_target, sizeof r->audit_target, "persons");
    fk__resp_json(r, 200, json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "limit",
                                    (json_int_t)limit, "offset", (json_int_t)offset));
}

typedef struct {
    fk_face_record_t rec[FK_MAX_PARTS];
    fk_template_t t[FK_MAX_PARTS];
    uint8_t *img[FK_MAX_PARTS];
    int n;
} faces_t;

static void faces_free(faces_t *f) {
    for (int i = 0; i < f->n; i++) fk__free(f->img[i]); /* f->n stays: callers report the count */
}

/* decodes and embeds every uploaded image; 0 ok, else the response is set */
static int collect_faces(fk_req_t *r, faces_t *f, int required) {
    memset(f, 0, sizeof *f);
    fk_ctx_t *c = fk__srv_ctx(r->srv);
    if (!c) {
        fk__resp_error(r, 503, "busy", "no working context");
        return -1;
    }
    const char *field = fk__req_part(r, "image", 0) ? "image" : json_object_get(r->json, "images") ? "images" : "image";
    for (int i = 0; i < FK_MAX_PARTS; i++) {
        uint8_t *buf = NULL;
        size_t n = 0;
        int owned = 0;
        int rc = fk__req_blob(r, field, i, &buf, &n, &owned);
        if (rc < 0) {
            faces_free(f);
            return -1;
        }
        if (rc > 0) break;
        char what[32];
        snprintf(what, sizeof what, "image %d", i + 1);
        fk_image_t *img = fk__srv_decode(r, buf, n, what);
        if (!img) {
            if (owned) fk__free(buf);
            faces_free(f);
            return -1;
        }
        fk_face_t face;
        rc = fk_embed_largest(c, img, 0, &f->t[f->n], &face);
        fk_image_free(img);
        if (rc) {
            if (rc == FK_ENOFACE) fk__resp_error(r, 422, "no_face", "no face found in image %d (nothing stored)", i + 1);
            else fk__resp_error(r, 500, "internal", "template of image %d failed: %s", i + 1, fk_status_str(rc));
            if (owned) fk__free(buf);
            faces_free(f);
            return -1;
        }
        if (!owned) {
            uint8_t *copy = fk__malloc(n ? n : 1);
            if (!copy) {
                faces_free(f);
                fk__resp_error(r, 503, "busy", "out of memory");
                return -1;
            }
            memcpy(copy, buf, n);
            buf = copy;
        }
        f->img[f->n] = buf;
        fk_face_record_t *fr = &f->rec[f->n];
        memset(fr, 0, sizeof *fr);
        fr->model_id = f->t[f->n].model_id;
        fr->tmpl = f->t[f->n].v;
        fr->dim = f->t[f->n].dim;
        fr->image = buf;
        fr->image_size = n;
        fr->quality = face.score;
        f->n++;
    }
    if (required && f->n == 0) {
        fk__resp_error(r, 400, "bad_request", "no image: send multipart \"image\" fields or JSON \"images\" (base64)");
        return -1;
    }
    return 0;
}

/* consent from JSON {"consent":{"by","purpose","at"}} or multipart consent_by / consent_purpose / consent_at */
static int consent_args(fk_req_t *r, char *by, size_t bys, char *purpose, size_t ps, int64_t *at) {
    char t1[256], t2[256], t3[32];
    const char *b = NULL, *p = NULL, *a = NULL;
    json_t *c = json_object_get(r->json, "consent");
    if (json_is_object(c)) {
        b = json_string_value(json_object_get(c, "by"));
        p = json_string_value(json_object_get(c, "purpose"));
        json_t *ja = json_object_get(c, "at");
        *at = json_is_integer(ja) ? json_integer_value(ja) : (int64_t)time(NULL);
    } else {
        b = fk__req_text(r, "consent_by", t1, sizeof t1);
        p = fk__req_text(r, "consent_purpose", t2, sizeof t2);
        a = fk__req_text(r, "consent_at", t3, sizeof t3);
        *at = a ? strtoll(a, NULL, 10) : (int64_t)time(NULL);
    }
    if (!b || !*b || !p || !*p) return -1;
    snprintf(by, bys, "%s", b);
    snprintf(purpose, ps, "%s", p);
    return 0;
}

/* compact JSON text of J (fk__malloc'ed; NULL on OOM) */
static char *json_text(json_t *j) {
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    char *t = fk__malloc(n + 1);
    if (t) {
        json_dumpb(j, t, n, JSON_COMPACT);
        t[n] = 0;
    }
    return t;
}

void fk__h_persons_create(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    char t1[256], t2[256], t3[256], t4[4096];
    const char *name = fk__req_text(r, "name", t1, sizeof t1);
    const char *ext = fk__req_text(r, "external_id", t2, sizeof t2);
    const char *group = fk__req_text(r, "group", t3, sizeof t3);
    const char *meta = NULL;
    char *meta_owned = NULL;
    json_t *jm = json_object_get(r->json, "metadata");
    if (jm) {
        if (!json_is_object(jm)) {
            fk__resp_error(r, 400, "bad_request", "metadata must be a JSON object");
            return;
        }
        meta = meta_owned = json_text(jm);
    } else if ((meta = fk__req_text(r, "metadata", t4, sizeof t4))) {
        json_t *x = json_loads(meta, 0, NULL);
        int ok = json_is_object(x);
        json_decref(x);
        if (!ok) {
            fk__resp_error(r, 400, "bad_request", "metadata must be a JSON object");
            return;
        }
    }
    if (!name || !*name) {
        fk__free(meta_owned);
        fk__resp_error(r, 400, "bad_request", "name is required");
        return;
    }
    char by[256], purpose[256];
    int64_t at;
    if (consent_args(r, by, sizeof by, purpose, sizeof purpose, &at)) {
        fk__free(meta_owned);
        fk__resp_error(r, 400, "bad_request", "consent is required: who consented (by) and for what purpose");
        return;
    }
    faces_t f;
    if (collect_faces(r, &f, 0)) {
        fk__free(meta_owned);
        return;
    }
    fk_person_t p = {0, name, ext, group && *group ? group : NULL, meta, 0, 0, 0};
    int64_t pid = 0, fids[FK_MAX_PARTS];
    pthread_mutex_lock(&s->gallery_lock);
    int rc = fk_gallery_enroll(s->gallery, &p, f.rec, (size_t)f.n, &pid, fids);
    pthread_mutex_unlock(&s->gallery_lock);
    faces_free(&f);
    fk__free(meta_owned);
    if (rc == FK_EMISMATCH) {
        fk__resp_error(r, 409, "conflict", "external id already used in this group (or a template of another model)");
        return;
    }
    if (rc) {
        fk__resp_error(r, 500, "internal", "enrolment failed: %s", fk_status_str(rc));
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "INSERT OR REPLACE INTO consent(person_id, given_by, purpose, at, recorded_by) VALUES(?,?,?,?,?)",
                 "issis", pid, by, purpose, at, r->actor);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)pid);
    snprintf(r->audit_detail, sizeof r->audit_detail, "faces=%d consent_purpose=%.100s", f.n, purpose);
    json_t *ids = json_array();
    for (int i = 0; i < f.n; i++) json_array_append_new(ids, json_integer(fids[i]));
    fk_person_t *got = NULL;
    pthread_mutex_lock(&s->gallery_lock);
    rc = fk_store_person_get(fk_gallery_store(s->gallery), pid, &got);
    pthread_mutex_unlock(&s->gallery_lock);
    json_t *o = !rc ? person_json(got) : json_pack("{s:I}", "id", (json_int_t)pid);
    fk_free(got);
    json_object_set_new(o, "face_ids", ids);
    json_object_set_new(o, "consent", consent_json(s, pid));
    fk__resp_json(r, 201, o);
}

static void person_answer(fk_req_t *r, int status);

void fk__h_person_get(fk_req_t *r) {
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)r->ids[0]);
    person_answer(r, 200);
}

/* GET's answer for person R->ids[0] with STATUS (the person and the consent record) */
static void person_answer(fk_req_t *r, int status) {
    fk_person_t *p = NULL;
    pthread_mutex_lock(&r->srv->gallery_lock);
    int rc = fk_store_person_get(fk_gallery_store(r->srv->gallery), r->ids[0], &p);
    pthread_mutex_unlock(&r->srv->gallery_lock);
    if (person_failed(r, rc)) return;
    json_t *o = person_json(p);
    fk_free(p);
    json_object_set_new(o, "consent", consent_json(r->srv, r->ids[0]));
    fk__resp_json(r, status, o);
}

/* a string member that may be null (= clear, given as ""); 0 ok, -1 wrong type (response set) */
static int nullable_text(fk_req_t *r, const char *key, const char **out) {
    json_t *v = json_object_get(r->json, key);
    *out = NULL;
    if (!v) return 0;
    if (json_is_null(v)) *out = "";
    else if (json_is_string(v)) *out = json_string_value(v);
    else {
        fk__resp_error(r, 400, "bad_request", "%s must be a string or null", key);
        return -1;
    }
    return 0;
}

/* PUT /persons/{id}: JSON with any of name, external_id, group, metadata, consent. Members GET returns
 * (id, faces, times, face_ids) are accepted and ignored, so a client may send back what it read. */
void fk__h_person_put(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)r->ids[0]);
    if (!r->json) {
        fk__resp_error(r, 400, "bad_request", "send a JSON object (Content-Type: application/json)");
        return;
    }
    static const char *const known[] = {"name", "external_id", "group", "metadata", "consent",
                                        "id", "faces", "created_at", "updated_at", "face_ids"};
    const char *k;
    json_t *v;
    json_object_foreach(r->json, k, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], k)) i++;
        if (i == sizeof known / sizeof known[0]) {
            fk__resp_error(r, 400, "bad_request", "unknown member \"%.60s\" (name, external_id, group, metadata, consent)", k);
            return;
        }
    }
    fk_person_t ch;
    memset(&ch, 0, sizeof ch);
    json_t *jn = json_object_get(r->json, "name"), *jm = json_object_get(r->json, "metadata"),
           *jc = json_object_get(r->json, "consent");
    if (jn && (!json_is_string(jn) || !json_string_length(jn))) {
        fk__resp_error(r, 400, "bad_request", "name must be a non-empty string");
        return;
    }
    ch.name = jn ? json_string_value(jn) : NULL;
    if (nullable_text(r, "external_id", &ch.external_id) || nullable_text(r, "group", &ch.group)) return;
    if (jm && !json_is_object(jm)) {
        fk__resp_error(r, 400, "bad_request", "metadata must be a JSON object");
        return;
    }
    char by[256] = "", purpose[256] = "";
    int64_t at = 0;
    if (jc && (!json_is_object(jc) || consent_args(r, by, sizeof by, purpose, sizeof purpose, &at))) {
        fk__resp_error(r, 400, "bad_request", "consent must be an object with who consented (by) and the purpose");
        return;
    }
    if (!jn && !jm && !jc && !ch.external_id && !ch.group) {
        fk__resp_error(r, 400, "bad_request", "nothing to change: send name, external_id, group, metadata or consent");
        return;
    }
    char *meta = jm ? json_text(jm) : NULL;
    if (jm && !meta) {
        fk__resp_error(r, 503, "busy", "out of memory");
        return;
    }
    ch.metadata = meta;
    pthread_mutex_lock(&s->gallery_lock);
    int rc = fk_gallery_update_person(s->gallery, r->ids[0], &ch);
    pthread_mutex_unlock(&s->gallery_lock);
    fk__free(meta);
    if (rc == FK_EMISMATCH) {
        fk__resp_error(r, 409, "conflict", "external id already used in this group");
        return;
    }
    if (rc == FK_EINVAL) {
        fk__resp_error(r, 400, "bad_request", "%s", fk_gallery_errmsg(s->gallery));
        return;
    }
    if (person_failed(r, rc)) return;
    if (jc) {
        pthread_mutex_lock(&s->db_lock);
        fk__sdb_exec(s->db, "INSERT OR REPLACE INTO consent(person_id, given_by, purpose, at, recorded_by) VALUES(?,?,?,?,?)",
                     "issis", r->ids[0], by, purpose, at, r->actor);
        pthread_mutex_unlock(&s->db_lock);
    }
    snprintf(r->audit_detail, sizeof r->audit_detail, "changed:%s%s%s%s%s", jn ? " name" : "", ch.external_id ? " external_id" : "",
             ch.group ? " group" : "", jm ? " metadata" : "", jc ? " consent" : "");
    person_answer(r, 200);
}

void fk__h_person_delete(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    fk_person_t *p = NULL;
    pthread_mutex_lock(&s->gallery_lock);
    int rc = fk_store_person_get(fk_gallery_store(s->gallery), r->ids[0], &p);
    int nf = p ? p->n_faces : 0;
    fk_free(p);
    if (!rc) rc = fk_gallery_remove_person(s->gallery, r->ids[0]);
    pthread_mutex_unlock(&s->gallery_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)r->ids[0]);
    if (person_failed(r, rc)) return;
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "DELETE FROM consent WHERE person_id=?", "i", r->ids[0]);
    fk__sdb_exec(s->db, "UPDATE records SET face_id=NULL WHERE person_id=?", "i", r->ids[0]);
    pthread_mutex_unlock(&s->db_lock);
    snprintf(r->audit_detail, sizeof r->audit_detail, "deleted with %d faces", nf);
    fk__resp_json(r, 200, json_pack("{s:b,s:i}", "ok", 1, "deleted_faces", nf));
}

void fk__h_faces_list(fk_req_t *r) {
    fk_face_record_t *fs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&r->srv->gallery_lock);
    fk_person_t *p = NULL;
    int rc = fk_store_person_get(fk_gallery_store(r->srv->gallery), r->ids[0], &p);
    fk_free(p);
    if (!rc) rc = fk_store_face_list(fk_gallery_store(r->srv->gallery), r->ids[0], 0, &fs, &n);
    pthread_mutex_unlock(&r->srv->gallery_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)r->ids[0]);
    if (person_failed(r, rc)) return;
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        char url[120];
        snprintf(url, sizeof url, "/api/v1/persons/%lld/faces/%lld/image", (long long)fs[i].person_id, (long long)fs[i].id);
        json_array_append_new(items, json_pack("{s:I,s:I,s:s,s:f,s:I,s:s}", "id", (json_int_t)fs[i].id, "person_id",
                                               (json_int_t)fs[i].person_id, "model_id", fs[i].model_id, "quality",
                                               fs[i].quality, "created_at", (json_int_t)fs[i].created_at, "image_url", url));
    }
    fk_free(fs);
    fk__resp_json(r, 200, json_pack("{s:o}", "items", items));
}

void fk__h_faces_add(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    faces_t f;
    if (collect_faces(r, &f, 1)) return;
    int64_t fids[FK_MAX_PARTS];
    pthread_mutex_lock(&s->gallery_lock);
    fk_person_t *p = NULL;
    int rc = fk_store_person_get(fk_gallery_store(s->gallery), r->ids[0], &p);
    if (!rc) rc = fk_store_face_add(fk_gallery_store(s->gallery), r->ids[0], f.rec, (size_t)f.n, fids);
    if (!rc) {
        int64_t pids[FK_MAX_PARTS], gids[FK_MAX_PARTS];
        float *v = fk__malloc((size_t)f.n * (size_t)s->einfo.dim * sizeof *v);
        int64_t gid = 0;
        if (p && p->group[0]) fk_store_group_id(fk_gallery_store(s->gallery), p->group, &gid);
        for (int i = 0; i < f.n && v; i++) {
            pids[i] = r->ids[0];
            gids[i] = gid;
            memcpy(v + (size_t)i * (size_t)s->einfo.dim, f.t[i].v, (size_t)s->einfo.dim * sizeof *v);
        }
        if (v) fk_index_add(fk_gallery_index(s->gallery), (size_t)f.n, fids, pids, gids, v);
        fk__free(v);
    }
    fk_free(p);
    pthread_mutex_unlock(&s->gallery_lock);
    faces_free(&f);
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld", (long long)r->ids[0]);
    if (person_failed(r, rc)) return;
    json_t *ids = json_array();
    for (int i = 0; i < f.n; i++) json_array_append_new(ids, json_integer(fids[i]));
    fk__resp_json(r, 201, json_pack("{s:o}", "face_ids", ids));
}

void fk__h_face_image(fk_req_t *r) {
    fk_face_record_t *fs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&r->srv->gallery_lock);
    int rc = fk_store_face_list(fk_gallery_store(r->srv->gallery), r->ids[0], 1, &fs, &n);
    pthread_mutex_unlock(&r->srv->gallery_lock);
    snprintf(r->audit_target, sizeof r->audit_target, "face:%lld", (long long)r->ids[1]);
    for (size_t i = 0; !rc && i < n; i++)
        if (fs[i].id == r->ids[1] && fs[i].image_size) {
            char ct[32];
            snprintf(ct, sizeof ct, "image/%s", fk_image_format_name(fk_image_detect_format(fs[i].image, fs[i].image_size)));
            fk__resp_bytes(r, 200, ct, fs[i].image, fs[i].image_size);
            fk_free(fs);
            return;
        }
    fk_free(fs);
    fk__resp_error(r, 404, "not_found", "no image for face %lld of person %lld", (long long)r->ids[1], (long long)r->ids[0]);
}

/* DELETE /persons/{id}/faces/{face_id}: the template, its sealed image and its index entry go for real;
 * records that showed this face as the enrolment image keep the match but lose the image link. */
void fk__h_face_delete(fk_req_t *r) {
    fk_srv_t *s = r->srv;
    snprintf(r->audit_target, sizeof r->audit_target, "person:%lld/face:%lld", (long long)r->ids[0], (long long)r->ids[1]);
    pthread_mutex_lock(&s->gallery_lock);
    int rc = fk_gallery_remove_face(s->gallery, r->ids[0], r->ids[1]);
    pthread_mutex_unlock(&s->gallery_lock);
    if (rc == FK_ENOTFOUND) {
        fk__resp_error(r, 404, "not_found", "person %lld has no face %lld", (long long)r->ids[0], (long long)r->ids[1]);
        return;
    }
    if (rc) {
        fk__resp_error(r, 500, "internal", "%s", fk_status_str(rc));
        return;
    }
    pthread_mutex_lock(&s->db_lock);
    fk__sdb_exec(s->db, "UPDATE records SET face_id=NULL WHERE person_id=? AND face_id=?", "ii", r->ids[0], r->ids[1]);
    pthread_mutex_unlock(&s->db_lock);
    fk__resp_json(r, 200, json_pack("{s:b}", "ok", 1));
}
