/*
 * settings.c — runtime settings of the service (thresholds, retention, lockout, the service URLs devices
 * use, the notification URL and the camera parameters devices fetch), kept as one JSON object in
 * server.db and merged over defaults. GET answers the whole object; PUT validates every field (type and
 * range, unknown names refused) and merges.
 */
#include "server/server.h"

#include <string.h>

static json_t *defaults(fk_srv_t *s) {
    return json_pack("{s:f,s:f,s:f,s:b,s:i,s:i,s:s,s:s,s:s,s:{s:s,s:i,s:b,s:b,s:s,s:s,s:i,s:i,s:s,s:i}}",
                     "compare_threshold", s->einfo.threshold, "identify_threshold", s->einfo.threshold,
                     "liveness_threshold", s->einfo.liveness_threshold > 0 ? s->einfo.liveness_threshold : 0.5,
                     "liveness_required", 0, "retention_days", 90, "lockout_minutes", 15, "feature_url", "",
                     "compare_url", "", "notify_url", "", "camera", "white_balance", "auto", "white_balance_kelvin", 5000,
                     "mirror", 0, "flip", 0, "exposure", "auto", "shutter", "auto", "shutter_us", 10000, "power_line_hz",
                     50, "led", "on", "usb_bandwidth", 100);
}

json_t *fk__settings_get(fk_srv_t *s) {
    json_t *d = defaults(s);
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT v FROM settings WHERE k='settings'", "");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *saved = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (json_is_object(saved)) {
            json_t *cam = json_object_get(saved, "camera");
            if (json_is_object(cam)) json_object_update(json_object_get(d, "camera"), cam);
            json_object_del(saved, "camera");
            json_object_update(d, saved);
        }
        json_decref(saved);
    }
    sqlite3_finalize(st);
    return d;
}

typedef struct {
    const char *name;
    char kind; /* n number 0..1, b bool, i int >= lo, s string (URL or ""), e enum */
    double lo, hi;
    const char *choices; /* for 'e': "|a|b|c|" */
} field_t;

static const field_t top_fields[] = {
    {"compare_threshold", 'n', 0, 1, 0}, {"identify_threshold", 'n', 0, 1, 0}, {"liveness_threshold", 'n', 0, 1, 0},
    {"liveness_required", 'b', 0, 0, 0}, {"retention_days", 'i', 0, 36500, 0}, {"lockout_minutes", 'i', 1, 100000, 0},
    {"feature_url", 's', 0, 0, 0},       {"compare_url", 's', 0, 0, 0},         {"notify_url", 's', 0, 0, 0},
};
static const field_t cam_fields[] = {
    {"white_balance", 'e', 0, 0, "|auto|daylight|cloudy|tungsten|fluorescent|manual|"},
    {"white_balance_kelvin", 'i', 2000, 10000, 0},
    {"mirror", 'b', 0, 0, 0},
    {"flip", 'b', 0, 0, 0},
    {"exposure", 'e', 0, 0, "|auto|manual|"},
    {"shutter", 'e', 0, 0, "|auto|fixed|priority|"},
    {"shutter_us", 'i', 10, 1000000, 0},
    {"power_line_hz", 'e', 0, 0, "|50|60|"},
    {"led", 'e', 0, 0, "|on|blink|off|"},
    {"usb_bandwidth", 'i', 1, 100, 0},
};

static int check(fk_req_t *r, const field_t *fs, size_t nf, json_t *obj, const char *prefix) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!prefix[0] && !strcmp(k, "camera")) {
            if (!json_is_object(v)) {
                fk__resp_error(r, 400, "bad_request", "camera must be an object");
                return -1;
            }
            if (check(r, cam_fields, sizeof cam_fields / sizeof cam_fields[0], v, "camera.")) return -1;
            continue;
        }
        const field_t *f = NULL;
        for (size_t i = 0; i < nf; i++)
            if (!strcmp(fs[i].name, k)) f = &fs[i];
        if (!f) {
            fk__resp_error(r, 400, "bad_request", "unknown setting %s%s", prefix, k);
            return -1;
        }
        int ok = 1;
        switch (f->kind) {
        case 'n': ok = json_is_number(v) && json_number_value(v) >= f->lo && json_number_value(v) <= f->hi; break;
        case 'b': ok = json_is_boolean(v); break;
        case 'i': ok = json_is_integer(v) && json_integer_value(v) >= f->lo && json_integer_value(v) <= f->hi; break;
        case 's': {
            const char *u = json_string_value(v);
            ok = u && strlen(u) < 1000 && (!*u || !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8));
            break;
        }
        case 'e': {
            char tmp[64];
            if (json_is_string(v)) snprintf(tmp, sizeof tmp, "|%s|", json_string_value(v));
            else if (json_is_integer(v)) snprintf(tmp, sizeof tmp, "|%lld|", (long long)json_integer_value(v));
            else tmp[0] = 0;
            ok = tmp[0] && strstr(f->choices, tmp) != NULL;
            break;
        }
        }
        if (!ok) {
            fk__resp_error(r, 400, "bad_request", "invalid value for %s%s", prefix, k);
            return -1;
        }
    }
    return 0;
}

void fk__h_settings_get(fk_req_t *r) {
    pthread_mutex_lock(&r->srv->db_lock);
    json_t *s = fk__settings_get(r->srv);
    pthread_mutex_unlock(&r->srv->db_lock);
    fk__resp_json(r, 200, s);
}

void fk__h_settings_put(fk_req_t *r) {
    if (!r->json) {
        fk__resp_error(r, 400, "bad_request", "send the settings as a JSON object");
        return;
    }
    if (check(r, top_fields, sizeof top_fields / sizeof top_fields[0], r->json, "")) return;
    fk_srv_t *s = r->srv;
    pthread_mutex_lock(&s->db_lock);
    json_t *saved = NULL;
    sqlite3_stmt *st = fk__sdb_prepare(s->db, "SELECT v FROM settings WHERE k='settings'", "");
    if (st && sqlite3_step(st) == SQLITE_ROW) saved = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    sqlite3_finalize(st);
    if (!json_is_object(saved)) {
        json_decref(saved);
        saved = json_object();
    }
    json_t *cam = json_object_get(r->json, "camera");
    if (cam) {
        json_t *old = json_object_get(saved, "camera");
        if (!json_is_object(old)) {
            old = json_object();
            json_object_set_new(saved, "camera", old);
        }
        json_object_update(old, cam);
    }
    const char *k;
    json_t *v;
    json_object_foreach(r->json, k, v) if (strcmp(k, "camera")) json_object_set(saved, k, v);
    size_t n = json_dumpb(saved, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    char *txt = fk__malloc(n + 1);
    int rc = -1;
    if (txt) {
        json_dumpb(saved, txt, n, JSON_COMPACT | JSON_SORT_KEYS);
        txt[n] = 0;
        rc = fk__sdb_exec(s->db, "INSERT INTO settings(k, v) VALUES('settings', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                          "s", txt);
        fk__free(txt);
    }
    json_decref(saved);
    json_t *now = fk__settings_get(s);
    pthread_mutex_unlock(&s->db_lock);
    if (rc) {
        json_decref(now);
        fk__resp_error(r, 500, "internal", "cannot save the settings");
        return;
    }
    /* audit names the fields changed, never values (a URL may carry a token) */
    r->audit_detail[0] = 0;
    json_object_foreach(r->json, k, v) {
        size_t used = strlen(r->audit_detail);
        snprintf(r->audit_detail + used, sizeof r->audit_detail - used, "%s%s", used ? "," : "", k);
    }
    snprintf(r->audit_target, sizeof r->audit_target, "settings");
    pthread_mutex_lock(&s->notify_lock);
    pthread_cond_signal(&s->notify_cond);
    pthread_mutex_unlock(&s->notify_lock);
    fk__resp_json(r, 200, now);
}
