/*
 * test_face_threads.c — re-entrancy: one engine shared by two threads, each with its own context, embedding
 * the same photos at the same time (and detecting at a size no one opened yet, so both race to open that
 * detector) gives templates bit-identical to a single-threaded run.
 */
#include "facekit.h"
#include "fk_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIMG 3
#define ROUNDS 3

static const char *const files[NIMG] = {"faces/face_recognition/examples/obama-480p.jpg",
                                        "faces/deepface/img1.jpg", "detection/dlib/2008_002470.jpg"};
static fk_image_t *images[NIMG];
static fk_engine_t *engine;

typedef struct {
    fk_template_t t[ROUNDS][NIMG];
    size_t nfaces[ROUNDS];
    int rc;
} result_t;

static void *worker(void *arg) {
    result_t *r = arg;
    fk_ctx_t *c = NULL;
    r->rc = fk_ctx_create(engine, &c);
    for (int round = 0; round < ROUNDS && !r->rc; round++) {
        for (int i = 0; i < NIMG && !r->rc; i++) r->rc = fk_embed_largest(c, images[i], FK_EMBED_FLIP, &r->t[round][i], NULL);
        fk_detect_options_t o;
        fk_detect_options_default(&o);
        o.width = 416; /* a working size first opened here, by whichever thread comes first */
        o.height = 288;
        fk_face_t *f = NULL;
        if (!r->rc) r->rc = fk_detect(c, images[2], &o, &f, &r->nfaces[round]);
        fk_free(f);
    }
    fk_ctx_destroy(c);
    return NULL;
}

int main(void) {
    const char *d = getenv("FK_MODELS_DIR");
    fk_engine_options_t o;
    memset(&o, 0, sizeof o);
    o.models_dir = d && *d ? d : "models";
    o.models = FK_ENGINE_DETECT | FK_ENGINE_LANDMARK | FK_ENGINE_FEATURE;
    int rc = fk_engine_open(&o, &engine);
    FK_CHECK_INT(rc, FK_OK);
    for (int i = 0; i < NIMG && !rc; i++) {
        char path[1024], err[256] = "";
        snprintf(path, sizeof path, "%s/%s", fk_t_data_dir(), files[i]);
        rc = fk_image_load(path, NULL, &images[i], err, sizeof err);
        if (rc) fprintf(stderr, "cannot load %s: %s\n", path, err);
        FK_CHECK_INT(rc, FK_OK);
    }
    if (!rc) {
        static result_t a, b;
        pthread_t ta, tb;
        pthread_create(&ta, NULL, worker, &a);
        pthread_create(&tb, NULL, worker, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        FK_CHECK_INT(a.rc, FK_OK);
        FK_CHECK_INT(b.rc, FK_OK);
        /* reference: one context, one thread */
        static result_t s;
        worker(&s);
        FK_CHECK_INT(s.rc, FK_OK);
        int same = 0, total = 0;
        for (int round = 0; round < ROUNDS; round++)
            for (int i = 0; i < NIMG; i++) {
                total += 2;
                same += !memcmp(&a.t[round][i], &s.t[0][i], sizeof(fk_template_t));
                same += !memcmp(&b.t[round][i], &s.t[0][i], sizeof(fk_template_t));
            }
        FK_CHECK_INT(same, total);
        for (int round = 0; round < ROUNDS; round++) {
            FK_CHECK_INT(a.nfaces[round], 6);
            FK_CHECK_INT(b.nfaces[round], 6);
        }
    }
    for (int i = 0; i < NIMG; i++) fk_image_free(images[i]);
    fk_engine_close(engine);
    FK_CHECK_INT(fk_mem_in_use(), 0);
    return fk_t_finish();
}
