/*
 * test_gallery_edit.c — changing an enrolled gallery through the library (src/gallery/gallery.c over
 * src/store): fk_gallery_update_person (a new group moves the person's templates in the index, so that
 * identification per group follows at once; a refused change leaves store and index as they were) and
 * fk_gallery_remove_face (one template leaves the store and the index; another person's face id is
 * refused). After every step the index must equal what a fresh open loads from the store.
 * Synthetic unit templates, no face engine (model "m1", dim 16), a temporary SQLite store.
 */
#include "fk_test.h"

#include <facekit.h>
#include <stdint.h>
#include <unistd.h>

#define DIM 16

static uint8_t KEY[FK_DATA_KEY_BYTES];
static char LOC[256];

static void unit(float *v, int axis) {
    memset(v, 0, DIM * sizeof *v);
    v[axis] = 1.0f;
}

static fk_gallery_t *open_gallery(void) {
    fk_gallery_options_t o;
    memset(&o, 0, sizeof o);
    o.store.location = LOC;
    o.store.key = KEY;
    o.model_id = "m1";
    o.dim = DIM;
    o.threshold = 0.5;
    fk_gallery_t *g = NULL;
    int rc = fk_gallery_open(&o, &g);
    FK_CHECK_INT(rc, FK_OK);
    if (rc) fprintf(stderr, "open: %s\n", fk_gallery_errmsg(g));
    return g;
}

/* the best match of axis AXIS within GROUP: person id, or 0 when there is none */
static int64_t best(fk_gallery_t *g, int axis, const char *group, int64_t *face) {
    float q[DIM];
    unit(q, axis);
    fk_identify_result_t res;
    int rc = fk_gallery_identify(g, q, DIM, "m1", group, 5, &res);
    FK_CHECK_INT(rc, FK_OK);
    if (face) *face = res.n ? res.matches[0].face_id : 0;
    return res.n && !res.unknown ? res.matches[0].person_id : 0;
}

/* the index holds exactly what a fresh open loads */
static void index_matches_store(fk_gallery_t *g) {
    fk_gallery_t *g2 = open_gallery();
    size_t loaded = 0;
    if (g2) fk_gallery_stats(g2, &loaded, NULL);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), loaded);
    fk_gallery_close(g2);
}

int main(void) {
    for (int i = 0; i < FK_DATA_KEY_BYTES; i++) KEY[i] = (uint8_t)(i * 7 + 3);
    char dir[] = "/tmp/fk_gallery_edit.XXXXXX";
    FK_CHECK(mkdtemp(dir) != NULL);
    snprintf(LOC, sizeof LOC, "%s/g.db", dir);
    fk_gallery_t *g = open_gallery();
    if (!g) return fk_t_finish();

    float t0[DIM], t1[DIM], t2[DIM];
    unit(t0, 0);
    unit(t1, 1);
    unit(t2, 2);
    fk_face_record_t fa[2] = {{0, 0, "m1", t0, DIM, NULL, 0, 0.9f, 0}, {0, 0, "m1", t1, DIM, NULL, 0, 0.8f, 0}};
    fk_face_record_t fb[1] = {{0, 0, "m1", t2, DIM, NULL, 0, 0.9f, 0}};
    fk_person_t a = {0, "Ann", "A-1", "North", NULL, 0, 0, 0}, b = {0, "Ben", "A-1", "South", NULL, 0, 0, 0};
    int64_t pa = 0, pb = 0, fida[2] = {0, 0}, fidb[1] = {0};
    FK_CHECK_INT(fk_gallery_enroll(g, &a, fa, 2, &pa, fida), FK_OK);
    FK_CHECK_INT(fk_gallery_enroll(g, &b, fb, 1, &pb, fidb), FK_OK);
    /* a template of another model, stored for Ann but never in this gallery's index */
    float o0[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    fk_face_record_t other = {0, 0, "m2", o0, 8, NULL, 0, 0.5f, 0};
    FK_CHECK_INT(fk_store_face_add(fk_gallery_store(g), pa, &other, 1, NULL), FK_OK);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), 3);
    FK_CHECK_INT(best(g, 0, "North", NULL), pa);
    FK_CHECK_INT(best(g, 0, "South", NULL), 0);

    /* move Ann to South: Ben holds A-1 there, so refused; nothing moves */
    fk_person_t mv = {0, NULL, NULL, "South", NULL, 0, 0, 0};
    FK_CHECK_INT(fk_gallery_update_person(g, pa, &mv), FK_EMISMATCH);
    FK_CHECK_INT(best(g, 0, "North", NULL), pa);
    FK_CHECK_INT(best(g, 0, "South", NULL), 0);
    /* with a new external id the move goes through, and identification per group follows at once */
    fk_person_t mv2 = {0, "Ann Lee", "A-2", "South", NULL, 0, 0, 0};
    FK_CHECK_INT(fk_gallery_update_person(g, pa, &mv2), FK_OK);
    FK_CHECK_INT(best(g, 0, "South", NULL), pa);
    FK_CHECK_INT(best(g, 1, "South", NULL), pa);
    FK_CHECK_INT(best(g, 0, "North", NULL), 0);
    FK_CHECK_INT(best(g, 2, "South", NULL), pb);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), 3); /* the m2 template stayed out */
    {
        float q[DIM];
        unit(q, 0);
        fk_identify_result_t res;
        FK_CHECK_INT(fk_gallery_identify(g, q, DIM, NULL, NULL, 1, &res), FK_OK);
        FK_CHECK_STR(res.matches[0].name, "Ann Lee");
        FK_CHECK_STR(res.matches[0].external_id, "A-2");
    }
    index_matches_store(g);
    /* out of every group; a name-only change leaves the index alone */
    fk_person_t none = {0, NULL, NULL, "", NULL, 0, 0, 0};
    FK_CHECK_INT(fk_gallery_update_person(g, pa, &none), FK_OK);
    FK_CHECK_INT(best(g, 0, "South", NULL), 0);
    FK_CHECK_INT(best(g, 0, NULL, NULL), pa);
    fk_person_t nm = {0, "Ann", NULL, NULL, NULL, 0, 0, 0};
    FK_CHECK_INT(fk_gallery_update_person(g, pa, &nm), FK_OK);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), 3);
    FK_CHECK_INT(fk_gallery_update_person(g, 999999, &nm), FK_ENOTFOUND);
    FK_CHECK_INT(fk_gallery_update_person(g, pa, NULL), FK_EINVAL);

    /* one face: refused for another person, then gone from store and index */
    FK_CHECK_INT(fk_gallery_remove_face(g, pb, fida[0]), FK_ENOTFOUND);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), 3);
    FK_CHECK_INT(fk_gallery_remove_face(g, pa, fida[0]), FK_OK);
    FK_CHECK_INT(fk_index_size(fk_gallery_index(g)), 2);
    int64_t face = 0;
    best(g, 0, NULL, &face);
    FK_CHECK(face != fida[0]);
    FK_CHECK_INT(best(g, 1, NULL, &face), pa); /* Ann's other face still finds her */
    FK_CHECK_INT(face, fida[1]);
    FK_CHECK_INT(fk_gallery_remove_face(g, pa, fida[0]), FK_ENOTFOUND);
    fk_face_record_t *fl = NULL;
    size_t n = 0;
    FK_CHECK_INT(fk_store_face_list(fk_gallery_store(g), pa, 0, &fl, &n), FK_OK);
    FK_CHECK_INT(n, 2); /* the m1 face left and the m2 one */
    fk_free(fl);
    index_matches_store(g);

    fk_gallery_close(g);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return fk_t_finish();
}
