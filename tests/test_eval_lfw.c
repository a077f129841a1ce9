/*
 * test_eval_lfw.c — the LFW protocol around verify.c and the detection ground truth: pair-list parsing for
 * View 1 ("N") and View 2 ("10 300") files including malformed ones, fold assignment, de-duplicated image
 * lists and paths, "no face" pairs counted as errors (never skipped), the DevTrain -> DevTest threshold,
 * dlib XML / nose-point parsing and one-to-one detection matching; then the real View 1 lists and the dlib
 * ground truth from ../shared/data (missing data fails the test).
 */
#include "core/core.h"
#include "eval/datasets.h"
#include "fk_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static int parse(const char *text, fk__lfw_pairs_t **p, char *err, size_t es) {
    return fk__lfw_pairs_parse(text, strlen(text), "t.txt", p, err, es);
}

/* Expects TEXT to be rejected with FK_EFORMAT and a message containing WANT. */
static void bad(const char *text, const char *want) {
    fk__lfw_pairs_t *p = (fk__lfw_pairs_t *)1;
    char err[256] = "";
    int rc = parse(text, &p, err, sizeof err);
    FK_CHECK_INT(rc, FK_EFORMAT);
    FK_CHECK(p == NULL);
    if (!strstr(err, want)) {
        fk_t_fail++;
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, want);
    } else {
        fk_t_pass++;
    }
}

static double dot_sim(void *ctx, size_t a, size_t b) {
    const double *v = ctx;
    return v[a] * v[b];
}

static void test_view1(void) {
    const char *txt = "2\n"
                      "Ann_Lee\t1\t2\n"
                      "Bob  3 4\r\n"
                      "Ann_Lee\t1\tBob\t3\n"
                      "Cy\t12\tAnn_Lee\t2\n"
                      "\n";
    fk__lfw_pairs_t *p = NULL;
    char err[256] = "";
    FK_CHECK_INT(parse(txt, &p, err, sizeof err), FK_OK);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        fk_t_fail++;
        return;
    }
    FK_CHECK_INT(p->n, 4);
    FK_CHECK_INT(p->n_folds, 1);
    FK_CHECK_INT(p->per_fold, 2);
    FK_CHECK_INT(p->pair[0].same, 1);
    FK_CHECK_INT(p->pair[1].same, 1);
    FK_CHECK_INT(p->pair[2].same, 0);
    FK_CHECK_INT(p->pair[3].same, 0);
    FK_CHECK_INT(p->pair[3].fold, 0);
    FK_CHECK_INT(p->pair[3].line, 5);
    /* distinct images: Ann_Lee 1, 2; Bob 3, 4; Cy 12 — sorted by name then index */
    FK_CHECK_INT(p->n_images, 5);
    FK_CHECK_STR(p->image[p->pair[3].a].name, "Cy");
    FK_CHECK_INT(p->image[p->pair[3].a].index, 12);
    FK_CHECK_INT(p->pair[2].a, p->pair[0].a); /* Ann_Lee 1 embedded once */
    FK_CHECK_INT(p->pair[2].b, p->pair[1].a); /* Bob 3 */
    char path[128];
    FK_CHECK_INT(fk__lfw_image_path("/d", &p->image[p->pair[3].a], path, sizeof path), FK_OK);
    FK_CHECK_STR(path, "/d/Cy/Cy_0012.jpg");
    FK_CHECK_INT(fk__lfw_image_path("/d", &p->image[0], path, 8), FK_ELIMIT);

    /* no-face rule: an image without a template makes its pairs NaN, and they count as errors */
    double v[5] = {1, 1, 1, 1, 1};
    unsigned char has[5] = {1, 1, 1, 1, 1};
    double s[4];
    /* same pairs score 1, different pairs -1: perfectly separable */
    fk__lfw_score_pairs(p, has, dot_sim, v, s);
    FK_CHECK_NEAR(s[0], 1.0, 0);
    v[p->pair[2].b] = -1; /* Bob 3: also in the same pair Bob 3-4, so give Bob 4 -1 too */
    v[p->pair[1].b] = -1;
    v[p->pair[3].a] = -1; /* Cy 12 */
    fk__lfw_score_pairs(p, has, dot_sim, v, s);
    FK_CHECK_NEAR(s[0], 1.0, 0);
    FK_CHECK_NEAR(s[1], 1.0, 0);
    FK_CHECK_NEAR(s[2], -1.0, 0);
    FK_CHECK_NEAR(s[3], -1.0, 0);
    fk_eval_summary_t sum;
    FK_CHECK_INT(fk__lfw_summarize(p, s, NULL, NULL, &sum), FK_OK);
    FK_CHECK_NEAR(sum.accuracy, 1.0, 1e-12);
    FK_CHECK_INT(sum.pairs, 4);
    has[p->pair[3].a] = 0; /* no face in Cy 12 */
    fk__lfw_score_pairs(p, has, dot_sim, v, s);
    FK_CHECK(isnan(s[3]));
    FK_CHECK(!isnan(s[2]));
    FK_CHECK_INT(fk__lfw_summarize(p, s, NULL, NULL, &sum), FK_OK);
    FK_CHECK_NEAR(sum.accuracy, 0.75, 1e-12); /* the NaN pair is an error, not skipped */
    FK_CHECK_INT(sum.pairs, 4);

    /* threshold from a training list: train says "same" needs > 0.95, so the test's 0.9 same pairs fail */
    fk__lfw_pairs_t *tr = NULL;
    FK_CHECK_INT(parse("1\nA\t1\t2\nA\t1\tB\t1\n", &tr, err, sizeof err), FK_OK);
    double trs[2] = {1.0, 0.9};
    double ts[4] = {0.9, 0.9, 0.1, 0.1};
    if (tr) {
        FK_CHECK_INT(fk__lfw_summarize(p, ts, tr, trs, &sum), FK_OK);
        FK_CHECK_NEAR(sum.threshold, 0.95, 1e-12);
        FK_CHECK_NEAR(sum.accuracy, 0.5, 1e-12);
        FK_CHECK_INT(fk__lfw_summarize(p, ts, NULL, NULL, &sum), FK_OK); /* chosen on the set itself */
        FK_CHECK_NEAR(sum.accuracy, 1.0, 1e-12);
    }
    fk__lfw_pairs_free(tr);
    fk__lfw_pairs_free(p);
}

static void test_view2(void) {
    /* 3 folds of 2 same + 2 different pairs: pair k of the file is in fold k / 4 */
    char txt[4096];
    int off = snprintf(txt, sizeof txt, "3 2\n");
    for (int f = 0; f < 3; f++) {
        off += snprintf(txt + off, sizeof txt - off, "P%d\t1\t2\nQ%d\t1\t3\n", f, f);
        off += snprintf(txt + off, sizeof txt - off, "P%d\t1\tQ%d\t1\nP%d\t2\tQ%d\t3\n", f, f, f, f);
    }
    fk__lfw_pairs_t *p = NULL;
    char err[256] = "";
    FK_CHECK_INT(parse(txt, &p, err, sizeof err), FK_OK);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        fk_t_fail++;
        return;
    }
    FK_CHECK_INT(p->n, 12);
    FK_CHECK_INT(p->n_folds, 3);
    FK_CHECK_INT(p->per_fold, 2);
    int ok = 1;
    for (size_t k = 0; k < p->n; k++) {
        ok &= p->pair[k].fold == (int)(k / 4);
        ok &= p->pair[k].same == ((k % 4) < 2);
    }
    FK_CHECK(ok);
    FK_CHECK_STR(p->image[p->pair[5].a].name, "Q1");
    FK_CHECK_INT(p->image[p->pair[5].b].index, 3);
    /* 10-fold summary: a fold where one same pair scores low costs that fold 1/4 */
    double s[12];
    for (size_t k = 0; k < 12; k++) s[k] = p->pair[k].same ? 0.8 : 0.2;
    s[4] = 0.1; /* fold 1, a same pair */
    fk_eval_summary_t sum;
    FK_CHECK_INT(fk__lfw_summarize(p, s, NULL, NULL, &sum), FK_OK);
    FK_CHECK_NEAR(sum.accuracy, (1.0 + 0.75 + 1.0) / 3.0, 1e-12);
    FK_CHECK(sum.std > 0.1);
    fk__lfw_pairs_free(p);

    /* the real View 2 header shape */
    FK_CHECK_INT(parse("10 300\n", &p, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "ends after 0 pairs; the header promises 6000") != NULL);
}

static void test_malformed(void) {
    bad("", "header");
    bad("abc\n", ":1: header");
    bad("0\n", ":1: header");
    bad("1 2 3\n", ":1: header");
    bad("1 0\n", ":1: header"); /* one fold is View 1 */
    bad("2\nA\t1\t2\n", "ends after 1 pairs; the header promises 4");
    bad("1\nA\t1\tB\t2\nA\t1\tB\t2\n", ":2: expected a same-person pair");
    bad("1\nA\t1\t2\nA\t1\t2\n", ":3: expected a different-person pair");
    bad("1\nA\t1\tx\nA\t1\tB\t2\n", ":2: expected a same-person pair");
    bad("1\nA\t1\t2\t7\t8\nA\t1\tB\t2\n", ":2: expected a same-person pair");
    bad("1\nA\t0\t2\nA\t1\tB\t2\n", ":2: image index must be 1..9999");
    bad("1\nA\t1\t2\nA\t1\tB\t2\nC\t1\t2\n", ":4: more pairs than the header's 2");
    bad("1\nA\t1\t2\nA\t1\tB\t99999999999999\n", ":3: expected a different-person pair");
    char nul[] = "1\nA\t1\t2\nA\t1\tB\t2\n";
    nul[3] = 0;
    fk__lfw_pairs_t *p = NULL;
    char err[256];
    FK_CHECK_INT(fk__lfw_pairs_parse(nul, sizeof nul - 1, "t", &p, err, sizeof err), FK_EFORMAT);
    FK_CHECK_INT(fk__lfw_pairs_load("/nonexistent/pairs.txt", &p, err, sizeof err), FK_EIO);
    FK_CHECK(strstr(err, "/nonexistent/pairs.txt") != NULL);
    /* from a file */
    const char *path = write_tmp("pairs.txt", "1\nA\t1\t2\nA\t1\tB\t2\n");
    FK_CHECK_INT(fk__lfw_pairs_load(path, &p, err, sizeof err), FK_OK);
    FK_CHECK(p && p->n == 2);
    fk__lfw_pairs_free(p);
    path = write_tmp("bad.txt", "1\nA\t1\t2\nA\t1\tB\n");
    FK_CHECK_INT(fk__lfw_pairs_load(path, &p, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "bad.txt:3: expected a different-person pair") != NULL);
    fk__lfw_pairs_free(NULL);

    /* every allocation failing in turn: an error, never a crash or a leak */
    size_t before = fk_mem_in_use();
    int saw_ok = 0;
    for (long k = 1; k < 200 && !saw_ok; k++) {
        fk__alloc_fail_at(k);
        int rc = parse("2\nA\t1\t2\nB\t3\t4\nA\t1\tB\t3\nC\t1\tA\t2\n", &p, err, sizeof err);
        fk__alloc_fail_at(0);
        if (rc == FK_OK) {
            saw_ok = 1;
            fk__lfw_pairs_free(p);
        } else if (rc != FK_ENOMEM) {
            FK_CHECK_INT(rc, FK_ENOMEM);
        }
    }
    FK_CHECK(saw_ok);
    FK_CHECK_INT(fk_mem_in_use(), before);
}

static void test_detection_gt(void) {
    char err[256] = "";
    const char *xml = write_tmp("gt.xml", "<?xml version='1.0'?>\n<dataset><images>\n"
                                          "<!-- a <comment> -->\n"
                                          "  <image file='a.jpg' width='100' height='80'>\n"
                                          "    <box top='10' left='20' width='30' height='30'/>\n"
                                          "    <box top=\"50\" left=\"60\" width=\"20\" height=\"20\" ignore=\"1\">\n"
                                          "      <part name='00' x='1' y='2'/>\n    </box>\n"
                                          "  </image>\n  <image file='empty.jpg'/>\n</images></dataset>\n");
    fk__det_gt_t *gt = NULL;
    FK_CHECK_INT(fk__det_gt_load_dlib(xml, &gt, err, sizeof err), FK_OK);
    if (!gt) {
        fprintf(stderr, "%s\n", err);
        fk_t_fail++;
        return;
    }
    FK_CHECK_INT(gt->n_images, 2);
    FK_CHECK_STR(gt->image[0].file, "a.jpg");
    FK_CHECK_INT(gt->image[0].n_faces, 2);
    FK_CHECK_NEAR(gt->image[0].face[0].x, 20, 0);
    FK_CHECK_NEAR(gt->image[0].face[0].y, 10, 0);
    FK_CHECK_INT(gt->image[0].face[1].ignore, 1);
    FK_CHECK_INT(gt->image[1].n_faces, 0);
    FK_CHECK_INT(fk__det_gt_add_negative(&gt, "dogs.jpg"), FK_OK);
    FK_CHECK_INT(gt->n_images, 3);

    /* matching: box (20,10,30,30); detections: a good one, a duplicate, one on the ignored face, a stray */
    fk_rectf_t det[4] = {{22, 12, 30, 30}, {20, 10, 28, 28}, {60, 50, 20, 20}, {0, 60, 10, 10}};
    float score[4] = {0.8f, 0.9f, 0.7f, 0.95f};
    fk__det_match_result_t r;
    long m[2];
    FK_CHECK_INT(fk__det_match(&gt->image[0], 0, det, score, 4, FK__DET_MATCH_IOU, 0.5f, &r, m), FK_OK);
    FK_CHECK_INT(r.gt, 1);
    FK_CHECK_INT(r.hits, 1);
    FK_CHECK_INT(r.false_pos, 2); /* the stray and the lower-scored duplicate */
    FK_CHECK_INT(m[0], 1);        /* the higher-scored of the two takes the face */
    FK_CHECK_INT(m[1], -1);
    /* a looser box: IoU below 0.5 but centre inside */
    fk_rectf_t big = {5, -5, 60, 60};
    FK_CHECK(fk__det_iou(&big, &(fk_rectf_t){20, 10, 30, 30}) < 0.5f);
    FK_CHECK_INT(fk__det_match(&gt->image[0], 0, &big, NULL, 1, FK__DET_MATCH_IOU, 0.5f, &r, NULL), FK_OK);
    FK_CHECK_INT(r.hits, 0);
    FK_CHECK_INT(r.false_pos, 1);
    FK_CHECK_INT(fk__det_match(&gt->image[0], 0, &big, NULL, 1, FK__DET_MATCH_CENTRE, 0, &r, NULL), FK_OK);
    FK_CHECK_INT(r.hits, 1);
    FK_CHECK_INT(r.false_pos, 0);
    /* negative image: everything is a false positive */
    FK_CHECK_INT(fk__det_match(&gt->image[2], 0, det, score, 4, FK__DET_MATCH_IOU, 0.5f, &r, NULL), FK_OK);
    FK_CHECK_INT(r.gt, 0);
    FK_CHECK_INT(r.false_pos, 4);
    FK_CHECK_NEAR(fk__det_iou(&det[0], &det[0]), 1.0, 1e-6);
    FK_CHECK_NEAR(fk__det_iou(&(fk_rectf_t){0, 0, 2, 2}, &(fk_rectf_t){1, 0, 2, 2}), 1.0 / 3.0, 1e-6);
    fk__det_gt_free(gt);
    gt = NULL;

    xml = write_tmp("bad.xml", "<dataset><images><image file='a.jpg'><box top='1' left='2' width='3'/>"
                               "</image></images></dataset>");
    FK_CHECK_INT(fk__det_gt_load_dlib(xml, &gt, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "bad.xml:1: <box> needs numeric top, left, width, height") != NULL);
    FK_CHECK(gt == NULL);
    xml = write_tmp("bad2.xml", "<dataset><images><image file='a.jpg'><box top='1'");
    FK_CHECK_INT(fk__det_gt_load_dlib(xml, &gt, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "unterminated tag") != NULL);
    xml = write_tmp("bad3.xml", "<dataset></dataset>");
    FK_CHECK_INT(fk__det_gt_load_dlib(xml, &gt, err, sizeof err), FK_EFORMAT);

    /* nose points */
    const char *pts = write_tmp("noses.txt", "# comment\nx.jpg\t2\t10,20;30.5,40\nnone.jpg\t0\t\n");
    FK_CHECK_INT(fk__det_gt_load_points(pts, &gt, err, sizeof err), FK_OK);
    if (gt) {
        FK_CHECK_INT(gt->points, 1);
        FK_CHECK_INT(gt->n_images, 2);
        FK_CHECK_INT(gt->image[0].n_faces, 2);
        FK_CHECK_NEAR(gt->image[0].face[1].x, 30.5, 1e-6);
        FK_CHECK_INT(gt->image[1].n_faces, 0);
        /* one box around both noses matches only one of them; IoU has no meaning for points */
        fk_rectf_t d[2] = {{0, 0, 50, 50}, {25, 35, 10, 10}};
        FK_CHECK_INT(fk__det_match(&gt->image[0], 1, d, NULL, 1, FK__DET_MATCH_POINT, 0, &r, NULL), FK_OK);
        FK_CHECK_INT(r.hits, 1);
        FK_CHECK_INT(fk__det_match(&gt->image[0], 1, d, NULL, 2, FK__DET_MATCH_POINT, 0, &r, NULL), FK_OK);
        FK_CHECK_INT(r.hits, 2);
        FK_CHECK_INT(r.false_pos, 0);
        FK_CHECK_INT(fk__det_match(&gt->image[0], 1, d, NULL, 2, FK__DET_MATCH_IOU, 0.5f, &r, NULL), FK_EINVAL);
    }
    fk__det_gt_free(gt);
    gt = NULL;
    pts = write_tmp("noses_bad.txt", "x.jpg\t3\t10,20;30,40\n");
    FK_CHECK_INT(fk__det_gt_load_points(pts, &gt, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "count says 3 faces, 2 points given") != NULL);
    pts = write_tmp("noses_bad2.txt", "x.jpg\t1\t10;20\n");
    FK_CHECK_INT(fk__det_gt_load_points(pts, &gt, err, sizeof err), FK_EFORMAT);
    FK_CHECK(strstr(err, "bad point") != NULL);
}

/* The real lists in ../shared/data: missing data fails the test. */
static void test_real_data(void) {
    const char *data = fk_t_data_dir();
    char path[1024], err[256] = "";
    fk__lfw_pairs_t *p = NULL;
    snprintf(path, sizeof path, "%s/lfw-view1/pairsDevTest.txt", data);
    FK_CHECK_INT(fk__lfw_pairs_load(path, &p, err, sizeof err), FK_OK);
    if (!p) {
        fprintf(stderr, "LFW View 1 lists are needed: %s (set FK_DATA)\n", err);
        fk_t_fail++;
        return;
    }
    FK_CHECK_INT(p->n, 1000);
    FK_CHECK_INT(p->n_folds, 1);
    FK_CHECK_INT(p->per_fold, 500);
    size_t missing = 0;
    char root[1024];
    snprintf(root, sizeof root, "%s/lfw-view1/images", data);
    for (size_t i = 0; i < p->n_images; i++) {
        char ip[1200];
        FK_CHECK_INT(fk__lfw_image_path(root, &p->image[i], ip, sizeof ip), FK_OK);
        missing += access(ip, R_OK) != 0;
    }
    FK_CHECK_INT(missing, 0);
    fk__lfw_pairs_free(p);
    snprintf(path, sizeof path, "%s/lfw-view1/pairsDevTrain.txt", data);
    FK_CHECK_INT(fk__lfw_pairs_load(path, &p, err, sizeof err), FK_OK);
    FK_CHECK(p && p->n == 2200);
    fk__lfw_pairs_free(p);

    fk__det_gt_t *gt = NULL;
    snprintf(path, sizeof path, "%s/detection/dlib/training.xml", data);
    FK_CHECK_INT(fk__det_gt_load_dlib(path, &gt, err, sizeof err), FK_OK);
    snprintf(path, sizeof path, "%s/detection/dlib/testing.xml", data);
    FK_CHECK_INT(fk__det_gt_load_dlib(path, &gt, err, sizeof err), FK_OK);
    size_t boxes = 0;
    for (size_t i = 0; gt && i < gt->n_images; i++) boxes += gt->image[i].n_faces;
    FK_CHECK(gt && gt->n_images == 9);
    FK_CHECK_INT(boxes, 43);
    fk__det_gt_free(gt);
    gt = NULL;
    snprintf(path, sizeof path, "%s/detection/compreface/nose_points.txt", data);
    FK_CHECK_INT(fk__det_gt_load_points(path, &gt, err, sizeof err), FK_OK);
    size_t noses = 0;
    for (size_t i = 0; gt && i < gt->n_images; i++) noses += gt->image[i].n_faces;
    FK_CHECK(gt && gt->n_images == 18);
    FK_CHECK_INT(noses, 46);
    fk__det_gt_free(gt);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fk_test_eval_lfw_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_view1();
    test_view2();
    test_malformed();
    test_detection_gt();
    test_real_data();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return fk_t_finish();
}
