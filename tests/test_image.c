/*
 * test_image.c — the image layer: decoding real photos (sizes, EXIF orientation against an upright
 * counterpart, PNG files named .jpg), every PNG/WebP/BMP/JPEG flavour written here with the reference
 * libraries or by hand, hostile input (truncation at many offsets, random byte flips, headers claiming
 * 100000x100000 pixels, the file-size limit), allocation-failure injection with leak checks, and the
 * geometry (resample, tensor, warp, crop, flips, rotations, gray, drawing) against hand-computed values.
 * Needs ../shared/data (FK_DATA): fails, never skips, when it is missing.
 */
#include "facekit.h"
#include "core/core.h"
#include "image/image.h"

#include "fk_test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

/* ---- helpers --------------------------------------------------------------------------------------- */

static char tmpdir[256];

static const char *data_path(const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fk_t_data_dir(), rel);
    return buf[k];
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (test data missing? FK_DATA=%s)\n", path, fk_t_data_dir());
        *n = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

static uint8_t *px(const fk_image_t *img, int x, int y) { return img->rgb + (size_t)y * img->stride + 3 * (size_t)x; }

/* Mean absolute difference over all samples; -1 when the sizes differ. */
static double mad(const fk_image_t *a, const fk_image_t *b) {
    if (!a || !b || a->width != b->width || a->height != b->height) return -1;
    double s = 0;
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < 3 * a->width; x++) s += abs(a->rgb[(size_t)y * a->stride + x] - b->rgb[(size_t)y * b->stride + x]);
    return s / (3.0 * a->width * a->height);
}

static int max_diff(const fk_image_t *a, const fk_image_t *b) {
    if (!a || !b || a->width != b->width || a->height != b->height) return 999;
    int m = 0;
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < 3 * a->width; x++) {
            int d = abs(a->rgb[(size_t)y * a->stride + x] - b->rgb[(size_t)y * b->stride + x]);
            if (d > m) m = d;
        }
    return m;
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* A W x H test pattern with different values in every channel, row and column. */
static fk_image_t *pattern(int w, int h) {
    fk_image_t *img = NULL;
    fk_image_create(w, h, &img);
    if (!img) return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px(img, x, y);
            p[0] = (uint8_t)(x * 7 + y * 3);
            p[1] = (uint8_t)(x * 2 + y * 11 + 40);
            p[2] = (uint8_t)((x ^ y) * 5 + 90);
        }
    return img;
}

static int decode_bytes(const void *b, size_t n, fk_image_t **out, char *err) {
    return fk_image_decode(b, n, NULL, out, err, 256);
}

static int load(const char *path, const fk_image_decode_options_t *o, fk_image_t **out) {
    char err[256] = "";
    int rc = fk_image_load(path, o, out, err, sizeof err);
    if (rc != FK_OK) fprintf(stderr, "load %s: %s (%s)\n", path, fk_status_str(rc), err);
    return rc;
}

/* ---- real files -------------------------------------------------------------------------------------- */

static void test_real_jpegs(void) {
    static const struct {
        const char *path;
        int w, h;
    } files[] = {
        {"faces/face_recognition/examples/obama-240p.jpg", 427, 240},
        {"faces/face_recognition/examples/obama-480p.jpg", 853, 480},
        {"faces/face_recognition/examples/obama-720p.jpg", 1280, 720},
        {"faces/face_recognition/examples/obama-1080p.jpg", 1920, 1080},
        {"faces/face_recognition/examples/obama.jpg", 910, 1137},
        {"faces/meds/extra/meds-aa-S001-01.jpg", 480, 600},
        {"faces/meds/extra/meds-af-S419-01_40deg.jpg", 1263, 768},
        {"faces/face_recognition/examples/lin-manuel-miranda.png", 0, 0},
        {"attributes/inspireface/rotate/rot_90.jpg", 402, 325}, /* a PNG named .jpg: magic bytes decide */
    };
    for (size_t i = 0; i < FK__ARRAY_LEN(files); i++) {
        fk_image_t *img = NULL;
        FK_CHECK_INT(load(data_path(files[i].path), NULL, &img), FK_OK);
        if (!img) continue;
        if (files[i].w) {
            FK_CHECK_INT(img->width, files[i].w);
            FK_CHECK_INT(img->height, files[i].h);
        }
        FK_CHECK_INT(img->stride, 3 * img->width);
        /* a real photo is not flat */
        long s = 0;
        for (int x = 0; x < img->width; x++) s += abs(px(img, x, img->height / 2)[1] - px(img, 0, img->height / 2)[1]);
        FK_CHECK(s > 0);
        fk_image_free(img);
    }
    size_t n;
    uint8_t *b = read_all(data_path("attributes/inspireface/rotate/rot_0.jpg"), &n);
    FK_CHECK(b != NULL);
    FK_CHECK_INT(fk_image_detect_format(b, n), FK_IMAGE_FORMAT_PNG);
    free(b);
    b = read_all(data_path("faces/face_recognition/examples/obama-480p.jpg"), &n);
    FK_CHECK_INT(fk_image_detect_format(b, n), FK_IMAGE_FORMAT_JPEG);
    FK_CHECK_STR(fk_image_format_name(fk_image_detect_format(b, n)), "jpeg");
    free(b);
}

/* meds-aa-S001-01-exif-rotation.jpg is S001-01 stored transposed (600x480, progressive) with EXIF
 * orientation 5: decoded, it must match the upright file within JPEG tolerance. */
static void test_exif_orientation_pair(void) {
    const char *rot = data_path("faces/meds/extra/meds-aa-S001-01-exif-rotation.jpg");
    const char *up = data_path("faces/meds/extra/meds-aa-S001-01.jpg");
    size_t n;
    uint8_t *b = read_all(rot, &n);
    FK_CHECK(b != NULL);
    fk_image_info_t info;
    char err[256];
    FK_CHECK_INT(fk_image_probe(b, n, &info, err, sizeof err), FK_OK);
    FK_CHECK_INT(info.format, FK_IMAGE_FORMAT_JPEG);
    FK_CHECK_INT(info.orientation, 5);
    FK_CHECK_INT(info.stored_width, 600);
    FK_CHECK_INT(info.stored_height, 480);
    FK_CHECK_INT(info.width, 480);
    FK_CHECK_INT(info.height, 600);
    free(b);
    fk_image_t *a = NULL, *c = NULL, *raw = NULL, *t = NULL;
    FK_CHECK_INT(load(rot, NULL, &a), FK_OK);
    FK_CHECK_INT(load(up, NULL, &c), FK_OK);
    if (a && c) {
        FK_CHECK_INT(a->width, 480);
        FK_CHECK_INT(a->height, 600);
        double d = mad(a, c);
        FK_CHECK(d >= 0 && d < 1.5);
        /* and the wrong way round is far off: the test can tell */
        fk_image_t *flipped = NULL;
        fk_image_flip_horizontal(a, &flipped);
        FK_CHECK(mad(flipped, c) > 10);
        fk_image_free(flipped);
    }
    fk_image_decode_options_t o = {0};
    o.ignore_orientation = 1;
    FK_CHECK_INT(load(rot, &o, &raw), FK_OK);
    if (raw && a) {
        FK_CHECK_INT(raw->width, 600);
        FK_CHECK_INT(raw->height, 480);
        FK_CHECK_INT(fk_image_orient(raw, 5, &t), FK_OK);
        FK_CHECK_INT(max_diff(t, a), 0);
    }
    fk_image_free(a);
    fk_image_free(c);
    fk_image_free(raw);
    fk_image_free(t);
}

/* inspireface's rot_90 / rot_270 are lossless (PNG) rotations of rot_0: our rotations must be exact. */
static void test_rotations_on_real_files(void) {
    fk_image_t *r0 = NULL, *r90 = NULL, *r180 = NULL, *r270 = NULL;
    FK_CHECK_INT(load(data_path("attributes/inspireface/rotate/rot_0.jpg"), NULL, &r0), FK_OK);
    FK_CHECK_INT(load(data_path("attributes/inspireface/rotate/rot_90.jpg"), NULL, &r90), FK_OK);
    FK_CHECK_INT(load(data_path("attributes/inspireface/rotate/rot_180.jpg"), NULL, &r180), FK_OK);
    FK_CHECK_INT(load(data_path("attributes/inspireface/rotate/rot_270.jpg"), NULL, &r270), FK_OK);
    if (!r0 || !r90 || !r180 || !r270) return;
    fk_image_t *t = NULL;
    FK_CHECK_INT(fk_image_rotate(r0, 90, &t), FK_OK);
    FK_CHECK_INT(max_diff(t, r90), 0);
    fk_image_free(t);
    FK_CHECK_INT(fk_image_rotate(r0, 270, &t), FK_OK);
    FK_CHECK_INT(max_diff(t, r270), 0);
    fk_image_free(t);
    FK_CHECK_INT(fk_image_rotate(r0, 180, &t), FK_OK);
    FK_CHECK(mad(t, r180) >= 0 && mad(t, r180) < 1.0); /* rot_180 was saved by another tool: near-exact */
    fk_image_free(t);
    fk_image_free(r0);
    fk_image_free(r90);
    fk_image_free(r180);
    fk_image_free(r270);
}

static void test_dct_scaling(void) {
    const char *p = data_path("faces/face_recognition/examples/obama-1080p.jpg");
    static const struct {
        int max_side, min_side, w, h;
    } cases[] = {
        {0, 0, 1920, 1080}, {400, 0, 480, 270}, {900, 0, 960, 540}, {1000, 0, 1920, 1080}, {1920, 0, 1920, 1080}, {200, 0, 240, 135},
        {0, 200, 480, 270}, {0, 100, 240, 135},  {0, 1080, 1920, 1080}, {400, 300, 960, 540},
    };
    fk_image_t *full = NULL;
    FK_CHECK_INT(load(p, NULL, &full), FK_OK);
    for (size_t i = 0; i < FK__ARRAY_LEN(cases); i++) {
        fk_image_decode_options_t o = {0};
        o.max_side = cases[i].max_side;
        o.min_side = cases[i].min_side;
        fk_image_t *img = NULL;
        FK_CHECK_INT(load(p, &o, &img), FK_OK);
        if (!img) continue;
        FK_CHECK_INT(img->width, cases[i].w);
        FK_CHECK_INT(img->height, cases[i].h);
        if (full && img->width < full->width) { /* same picture as decoding fully and area-averaging */
            fk_image_t *small = NULL;
            FK_CHECK_INT(fk_image_resize(full, img->width, img->height, &small), FK_OK);
            double d = mad(small, img);
            FK_CHECK(d >= 0 && d < 2.5);
            if (!(d >= 0 && d < 2.5)) fprintf(stderr, "  dct scale %dx%d: mad %.3f\n", img->width, img->height, d);
            fk_image_free(small);
        }
        fk_image_free(img);
    }
    fk_image_free(full);
}

/* ---- PNG written with libpng ----------------------------------------------------------------------- */

typedef struct membuf {
    uint8_t *b;
    size_t n, cap;
} membuf_t;

static void mb_write(png_structp p, png_bytep d, png_size_t len) {
    membuf_t *m = png_get_io_ptr(p);
    if (m->n + len > m->cap) {
        m->cap = (m->n + len) * 2;
        m->b = realloc(m->b, m->cap);
    }
    memcpy(m->b + m->n, d, len);
    m->n += len;
}
static void mb_flush(png_structp p) { (void)p; }

/* Writes a PNG of COLOR type and DEPTH whose rows are given packed as libpng expects them. */
static membuf_t write_png(int w, int h, int color, int depth, int interlace, uint8_t **rows, const png_color *pal,
                          int npal, const png_byte *trns, int ntrns) {
    membuf_t m = {0};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        free(m.b);
        m.b = NULL;
        m.n = 0;
        return m;
    }
    png_set_write_fn(p, &m, mb_write, mb_flush);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(p, info, pal, npal);
    if (trns) png_set_tRNS(p, info, trns, ntrns, NULL);
    png_write_info(p, info);
    png_write_image(p, rows);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    return m;
}

static void test_png_flavours(void) {
    enum { W = 13, H = 9 };
    uint8_t *rows[H];
    uint8_t store[H][W * 8];
    for (int y = 0; y < H; y++) rows[y] = store[y];
    char err[256];
    fk_image_t *img = NULL;

    /* 8-bit RGB, interlaced and not: exact */
    fk_image_t *ref = pattern(W, H);
    for (int il = 0; il < 2; il++) {
        for (int y = 0; y < H; y++) memcpy(store[y], px(ref, 0, y), 3 * W);
        membuf_t m = write_png(W, H, PNG_COLOR_TYPE_RGB, 8, il, rows, NULL, 0, NULL, 0);
        FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
        FK_CHECK_INT(max_diff(img, ref), 0);
        fk_image_free(img);
        img = NULL;
        free(m.b);
    }
    /* 16-bit RGB: samples scaled with rounding to 8 bits */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                unsigned v = px(ref, x, y)[c] * 257u + (c == 1 ? 100 : 0); /* not a multiple of 257 */
                if (v > 65535) v = 65535;
                store[y][6 * x + 2 * c] = (uint8_t)(v >> 8);
                store[y][6 * x + 2 * c + 1] = (uint8_t)v;
            }
    membuf_t m = write_png(W, H, PNG_COLOR_TYPE_RGB, 16, 0, rows, NULL, 0, NULL, 0);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    FK_CHECK(max_diff(img, ref) <= 1);
    fk_image_free(img);
    img = NULL;
    free(m.b);
    /* 16-bit gray */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            unsigned v = (unsigned)(x * 5000 + y * 100);
            store[y][2 * x] = (uint8_t)(v >> 8);
            store[y][2 * x + 1] = (uint8_t)v;
        }
    m = write_png(W, H, PNG_COLOR_TYPE_GRAY, 16, 0, rows, NULL, 0, NULL, 0);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    if (img) {
        int ok = 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int e = (int)((x * 5000 + y * 100) * 255.0 / 65535.0 + 0.5);
                uint8_t *p = px(img, x, y);
                if (abs(p[0] - e) > 1 || p[0] != p[1] || p[1] != p[2]) ok = 0;
            }
        FK_CHECK(ok);
    }
    fk_image_free(img);
    img = NULL;
    free(m.b);
    /* 1-bit gray */
    for (int y = 0; y < H; y++) {
        memset(store[y], 0, 8);
        for (int x = 0; x < W; x++)
            if ((x + y) & 1) store[y][x / 8] |= (uint8_t)(0x80 >> (x % 8));
    }
    m = write_png(W, H, PNG_COLOR_TYPE_GRAY, 1, 0, rows, NULL, 0, NULL, 0);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    if (img) {
        FK_CHECK_INT(px(img, 0, 0)[0], 0);
        FK_CHECK_INT(px(img, 1, 0)[2], 255);
        FK_CHECK_INT(px(img, 0, 1)[1], 255);
    }
    fk_image_free(img);
    img = NULL;
    free(m.b);
    /* 4-bit palette with a transparent entry: composited on white */
    png_color pal[3] = {{255, 0, 0}, {0, 0, 255}, {10, 20, 30}};
    png_byte trns[3] = {255, 0, 128};
    for (int y = 0; y < H; y++) {
        memset(store[y], 0, W);
        for (int x = 0; x < W; x++) store[y][x / 2] |= (uint8_t)(((x + y) % 3) << (x % 2 ? 0 : 4));
    }
    m = write_png(W, H, PNG_COLOR_TYPE_PALETTE, 4, 0, rows, pal, 3, trns, 3);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    if (img) {
        uint8_t *p0 = px(img, 0, 0), *p1 = px(img, 1, 0), *p2 = px(img, 2, 0);
        FK_CHECK(p0[0] == 255 && p0[1] == 0 && p0[2] == 0);     /* opaque red */
        FK_CHECK(p1[0] == 255 && p1[1] == 255 && p1[2] == 255); /* transparent -> white */
        /* half-transparent (10,20,30) over white: c*a/255 + 255-a, a = 128 */
        FK_CHECK_INT(p2[0], (10 * 128 + 255 * 127 + 127) / 255);
        FK_CHECK_INT(p2[2], (30 * 128 + 255 * 127 + 127) / 255);
    }
    fk_image_free(img);
    img = NULL;
    free(m.b);
    /* RGBA and gray+alpha */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *s = store[y] + 4 * x;
            memcpy(s, px(ref, x, y), 3);
            s[3] = (uint8_t)(x == 0 ? 0 : x == 1 ? 255 : 37 * x);
        }
    m = write_png(W, H, PNG_COLOR_TYPE_RGBA, 8, 0, rows, NULL, 0, NULL, 0);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    if (img) {
        int ok = 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    int a = x == 0 ? 0 : x == 1 ? 255 : (37 * x) & 255;
                    double e = px(ref, x, y)[c] * a / 255.0 + 255 - a;
                    if (fabs(px(img, x, y)[c] - e) > 0.5 + 1e-9) ok = 0;
                }
        FK_CHECK(ok);
        FK_CHECK(px(img, 0, 3)[0] == 255 && px(img, 0, 3)[1] == 255);
        FK_CHECK_INT(px(img, 1, 3)[1], px(ref, 1, 3)[1]);
    }
    fk_image_free(img);
    img = NULL;
    free(m.b);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            store[y][2 * x] = (uint8_t)(x * 19);
            store[y][2 * x + 1] = (uint8_t)(y == 0 ? 0 : 255);
        }
    m = write_png(W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, rows, NULL, 0, NULL, 0);
    FK_CHECK_INT(decode_bytes(m.b, m.n, &img, err), FK_OK);
    if (img) {
        FK_CHECK_INT(px(img, 5, 0)[0], 255);
        FK_CHECK_INT(px(img, 5, 1)[0], 95);
        FK_CHECK_INT(px(img, 5, 1)[2], 95);
    }
    fk_image_free(img);
    img = NULL;
    free(m.b);
    fk_image_free(ref);
}

/* ---- WebP ------------------------------------------------------------------------------------------- */

static void test_webp(void) {
    fk_image_t *ref = pattern(37, 21), *img = NULL;
    char err[256];
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGB(ref->rgb, ref->width, ref->height, ref->stride, &out);
    FK_CHECK(n > 0);
    write_all(tmp_path("lossless.webp"), out, n);
    WebPFree(out);
    FK_CHECK_INT(load(tmp_path("lossless.webp"), NULL, &img), FK_OK);
    FK_CHECK_INT(max_diff(img, ref), 0);
    fk_image_free(img);
    img = NULL;
    /* lossy: close */
    n = WebPEncodeRGB(ref->rgb, ref->width, ref->height, ref->stride, 95, &out);
    FK_CHECK_INT(decode_bytes(out, n, &img, err), FK_OK);
    FK_CHECK(mad(img, ref) >= 0 && mad(img, ref) < 12); /* the XOR pattern is hard on 4:2:0 chroma */
    FK_CHECK(img && img->width == 37 && img->height == 21);
    fk_image_free(img);
    img = NULL;
    WebPFree(out);
    /* lossless with alpha: composited on white exactly like PNG */
    uint8_t *rgba = malloc((size_t)ref->width * ref->height * 4);
    for (int y = 0; y < ref->height; y++)
        for (int x = 0; x < ref->width; x++) {
            memcpy(rgba + 4 * ((size_t)y * ref->width + x), px(ref, x, y), 3);
            rgba[4 * ((size_t)y * ref->width + x) + 3] = (uint8_t)(x < 10 ? 0 : 255);
        }
    n = WebPEncodeLosslessRGBA(rgba, ref->width, ref->height, ref->width * 4, &out);
    FK_CHECK_INT(decode_bytes(out, n, &img, err), FK_OK);
    if (img) {
        FK_CHECK(px(img, 3, 4)[0] == 255 && px(img, 3, 4)[1] == 255 && px(img, 3, 4)[2] == 255);
        FK_CHECK(!memcmp(px(img, 20, 4), px(ref, 20, 4), 3));
    }
    fk_image_info_t info;
    FK_CHECK_INT(fk_image_probe(out, n, &info, err, sizeof err), FK_OK);
    FK_CHECK_INT(info.format, FK_IMAGE_FORMAT_WEBP);
    FK_CHECK_INT(info.has_alpha, 1);
    FK_CHECK_INT(info.width, 37);
    /* truncated WebP: never a success */
    int bad = 0;
    for (size_t cut = 0; cut < n; cut += 1 + n / 97) {
        fk_image_t *t = NULL;
        int rc = decode_bytes(out, cut, &t, err);
        if (rc == FK_OK) bad++;
        fk_image_free(t);
    }
    FK_CHECK_INT(bad, 0);
    fk_image_free(img);
    WebPFree(out);
    free(rgba);
    fk_image_free(ref);
}

/* ---- BMP written by hand ---------------------------------------------------------------------------- */

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* BMP of REF with BPP 8 (palette of the 256 gray levels of channel G... see below), 24 or 32. */
static uint8_t *make_bmp(const fk_image_t *ref, int bpp, int top_down, uint32_t compression, size_t *n) {
    int w = ref->width, h = ref->height;
    size_t stride = ((size_t)w * bpp + 31) / 32 * 4;
    size_t hdr = 14 + 40 + (compression == 3 ? 12 : 0), pal = bpp == 8 ? 256 * 4 : 0;
    size_t off = hdr + pal;
    *n = off + stride * h;
    uint8_t *b = calloc(1, *n);
    b[0] = 'B';
    b[1] = 'M';
    put32(b + 2, (uint32_t)*n);
    put32(b + 10, (uint32_t)off);
    put32(b + 14, 40);
    put32(b + 18, (uint32_t)w);
    put32(b + 22, (uint32_t)(top_down ? -h : h));
    put16(b + 26, 1);
    put16(b + 28, (unsigned)bpp);
    put32(b + 30, compression);
    put32(b + 34, (uint32_t)(stride * h));
    if (compression == 3) {
        put32(b + 54, 0x00FF0000);
        put32(b + 58, 0x0000FF00);
        put32(b + 62, 0x000000FF);
    }
    if (bpp == 8) /* palette entry i = (i, 255 - i, i / 2) */
        for (int i = 0; i < 256; i++) {
            uint8_t *e = b + hdr + 4 * i;
            e[0] = (uint8_t)(i / 2); /* B */
            e[1] = (uint8_t)(255 - i);
            e[2] = (uint8_t)i; /* R */
        }
    for (int y = 0; y < h; y++) {
        uint8_t *row = b + off + stride * (size_t)(top_down ? y : h - 1 - y);
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px(ref, x, y);
            if (bpp == 8) row[x] = p[0];
            else {
                uint8_t *d = row + (size_t)x * (bpp / 8);
                d[0] = p[2];
                d[1] = p[1];
                d[2] = p[0];
                if (bpp == 32) d[3] = 0; /* reserved byte: must not be taken as alpha */
            }
        }
    }
    return b;
}

static void test_bmp(void) {
    fk_image_t *ref = pattern(5, 4), *img = NULL; /* width 5: 24-bit rows need padding */
    char err[256];
    size_t n;
    static const struct {
        int bpp, top, comp;
    } ok[] = {{24, 0, 0}, {24, 1, 0}, {32, 0, 0}, {32, 1, 3}};
    for (size_t i = 0; i < FK__ARRAY_LEN(ok); i++) {
        uint8_t *b = make_bmp(ref, ok[i].bpp, ok[i].top, (uint32_t)ok[i].comp, &n);
        FK_CHECK_INT(fk_image_detect_format(b, n), FK_IMAGE_FORMAT_BMP);
        FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_OK);
        FK_CHECK_INT(max_diff(img, ref), 0);
        fk_image_free(img);
        img = NULL;
        /* every truncation is an error */
        int bad = 0;
        for (size_t cut = 0; cut < n; cut++) {
            fk_image_t *t = NULL;
            if (decode_bytes(b, cut, &t, err) == FK_OK) bad++;
            fk_image_free(t);
        }
        FK_CHECK_INT(bad, 0);
        free(b);
    }
    /* 8-bit palette */
    uint8_t *b = make_bmp(ref, 8, 0, 0, &n);
    write_all(tmp_path("pal.bmp"), b, n);
    FK_CHECK_INT(load(tmp_path("pal.bmp"), NULL, &img), FK_OK);
    if (img) {
        int good = 1;
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                int i = px(ref, x, y)[0];
                uint8_t *p = px(img, x, y);
                if (p[0] != i || p[1] != 255 - i || p[2] != i / 2) good = 0;
            }
        FK_CHECK(good);
    }
    fk_image_free(img);
    img = NULL;
    /* a palette of 3 colours with an index beyond it */
    put32(b + 46, 3);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_EFORMAT);
    FK_CHECK(strstr(err, "palette") != NULL);
    free(b);
    /* refused flavours, each with a message */
    b = make_bmp(ref, 24, 0, 0, &n);
    uint8_t *c = malloc(n);
    struct {
        size_t at;
        uint32_t v;
        int size32;
        const char *msg;
    } rej[] = {
        {28, 16, 0, "16 bits"}, {30, 1, 1, "BI_RLE8"}, {30, 4, 1, "BI_JPEG"}, {14, 12, 1, "OS/2"},
        {26, 2, 0, "planes"},   {18, 0, 1, "invalid size"}, {10, 20, 1, "offset"}, {14, 200, 1, "header size"},
    };
    for (size_t i = 0; i < FK__ARRAY_LEN(rej); i++) {
        memcpy(c, b, n);
        if (rej[i].size32) put32(c + rej[i].at, rej[i].v);
        else put16(c + rej[i].at, (unsigned)rej[i].v);
        err[0] = 0;
        FK_CHECK_INT(decode_bytes(c, n, &img, err), FK_EFORMAT);
        FK_CHECK(img == NULL);
        if (!strstr(err, rej[i].msg)) fprintf(stderr, "  bmp reject %zu: message \"%s\" lacks \"%s\"\n", i, err, rej[i].msg);
        FK_CHECK(strstr(err, rej[i].msg) != NULL);
    }
    /* 32-bit bitfields with other masks */
    free(b);
    b = make_bmp(ref, 32, 0, 3, &n);
    put32(b + 54, 0x000000FF);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_EFORMAT);
    FK_CHECK(strstr(err, "masks") != NULL);
    free(b);
    free(c);
    fk_image_free(ref);
}

/* ---- JPEG written with libjpeg: gray, CMYK, YCCK, EXIF ------------------------------------------------ */

/* Encodes W x H samples of COMPONENTS in IN_CS, optionally as JCS (e.g. YCCK) and with/without the Adobe
 * marker, plus an optional APP1 payload. Returns malloc'd bytes. */
static uint8_t *write_jpeg(const uint8_t *samples, int w, int h, int comps, J_COLOR_SPACE in_cs, J_COLOR_SPACE jcs,
                           int adobe, const uint8_t *app1, size_t app1_n, size_t *n) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = in_cs;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, jcs);
    c.write_Adobe_marker = adobe ? TRUE : FALSE;
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_n);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(samples + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    uint8_t *out = malloc(len);
    memcpy(out, buf, len);
    free(buf);
    *n = len;
    return out;
}

static void test_jpeg_colour_spaces(void) {
    enum { W = 16, H = 16 };
    uint8_t gray[W * H], cmyk[W * H * 4];
    for (int i = 0; i < W * H; i++) gray[i] = (uint8_t)(i % W * 16);
    char err[256];
    fk_image_t *img = NULL;
    size_t n;
    uint8_t *b = write_jpeg(gray, W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0, NULL, 0, &n);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_OK);
    if (img) {
        int ok = 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = px(img, x, y);
                if (p[0] != p[1] || p[1] != p[2] || abs(p[0] - x * 16) > 2) ok = 0;
            }
        FK_CHECK(ok);
    }
    fk_image_free(img);
    img = NULL;
    free(b);
    /* left half pure red ink-free... : stored Adobe-inverted CMYK, 255 = no ink. Red = no C, full M+Y. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = cmyk + 4 * (y * W + x);
            if (x < W / 2) { /* red: C=0 M=1 Y=1 K=0 -> inverted 255,0,0,255 */
                p[0] = 255, p[1] = 0, p[2] = 0, p[3] = 255;
            } else { /* 50% gray through K only: inverted K = 128 */
                p[0] = 255, p[1] = 255, p[2] = 255, p[3] = 128;
            }
        }
    for (int ycck = 0; ycck < 2; ycck++) {
        b = write_jpeg(cmyk, W, H, 4, JCS_CMYK, ycck ? JCS_YCCK : JCS_CMYK, 1, NULL, 0, &n);
        FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_OK);
        if (img) {
            uint8_t *r = px(img, 2, 5), *g = px(img, 12, 5);
            FK_CHECK(r[0] >= 250 && r[1] <= 5 && r[2] <= 5);
            FK_CHECK(abs(g[0] - 128) <= 3 && abs(g[1] - 128) <= 3 && abs(g[2] - 128) <= 3);
        }
        fk_image_free(img);
        img = NULL;
        free(b);
    }
    /* plain (non-Adobe) CMYK: 0 = no ink */
    for (int i = 0; i < W * H * 4; i++) cmyk[i] = (uint8_t)(255 - cmyk[i]);
    b = write_jpeg(cmyk, W, H, 4, JCS_CMYK, JCS_CMYK, 0, NULL, 0, &n);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_OK);
    if (img) {
        uint8_t *r = px(img, 2, 5);
        FK_CHECK(r[0] >= 250 && r[1] <= 5 && r[2] <= 5);
    }
    fk_image_free(img);
    free(b);
}

/* APP1 payload "Exif\0\0" + TIFF with IFD0 holding the orientation (and a dummy tag before it). */
static size_t make_exif(uint8_t *p, int big, unsigned orientation, unsigned type) {
    memcpy(p, "Exif\0\0", 6);
    uint8_t *t = p + 6;
    t[0] = t[1] = big ? 'M' : 'I';
    int k = 2;
#define W16(v) (big ? (t[k] = (uint8_t)((v) >> 8), t[k + 1] = (uint8_t)(v)) : (t[k] = (uint8_t)(v), t[k + 1] = (uint8_t)((v) >> 8))), k += 2
#define W32(v) (big ? (t[k] = (uint8_t)((uint32_t)(v) >> 24), t[k + 1] = (uint8_t)((uint32_t)(v) >> 16), t[k + 2] = (uint8_t)((uint32_t)(v) >> 8), t[k + 3] = (uint8_t)(v)) : (t[k] = (uint8_t)(v), t[k + 1] = (uint8_t)((uint32_t)(v) >> 8), t[k + 2] = (uint8_t)((uint32_t)(v) >> 16), t[k + 3] = (uint8_t)((uint32_t)(v) >> 24))), k += 4
    W16(42);
    W32(8);
    W16(2); /* two entries */
    W16(0x010F); W16(2); W32(4); W32(0x41424300); /* Make = "ABC" (inline) */
    W16(0x0112); W16(type); W32(1);
    if (type == 3) { W16(orientation); W16(0); } else { W32(orientation); }
    W32(0); /* no next IFD */
#undef W16
#undef W32
    return 6 + (size_t)k;
}

static void test_exif(void) {
    uint8_t e[64];
    for (int big = 0; big < 2; big++)
        for (unsigned o = 1; o <= 8; o++) {
            size_t n = make_exif(e, big, o, 3);
            FK_CHECK_INT(fk__exif_orientation(e, n), (int)o);
        }
    size_t n = make_exif(e, 1, 6, 4);
    FK_CHECK_INT(fk__exif_orientation(e, n), 6); /* LONG instead of SHORT */
    n = make_exif(e, 0, 9, 3);
    FK_CHECK_INT(fk__exif_orientation(e, n), 0); /* out of range */
    n = make_exif(e, 0, 6, 5);
    FK_CHECK_INT(fk__exif_orientation(e, n), 0); /* RATIONAL: nonsense */
    n = make_exif(e, 0, 6, 3);
    /* every truncation of the block is handled (0 or the value, never a read past the end: ASan) */
    for (size_t cut = 0; cut <= n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, e, cut);
        int o = fk__exif_orientation(c, cut);
        FK_CHECK(o == 0 || (o == 6 && cut >= n - 4));
        free(c);
    }
    uint8_t bad[64];
    memcpy(bad, e, n);
    bad[6 + 4] = 0xF0; /* IFD offset far beyond the block */
    FK_CHECK_INT(fk__exif_orientation(bad, n), 0);
    memcpy(bad, e, n);
    bad[6 + 8] = 0xFF, bad[6 + 9] = 0xFF; /* 65535 entries claimed, and no orientation among them */
    bad[6 + 10 + 12] = 0x01, bad[6 + 10 + 13] = 0x01;
    FK_CHECK_INT(fk__exif_orientation(bad, n), 0);
    memcpy(bad, e, n);
    bad[0] = 'X';
    FK_CHECK_INT(fk__exif_orientation(bad, n), 0);

    /* a JPEG carrying each orientation decodes to fk_image_orient of its stored pixels */
    enum { W = 24, H = 16 };
    fk_image_t *ref = pattern(W, H);
    uint8_t rgb[W * H * 3];
    for (int y = 0; y < H; y++) memcpy(rgb + y * W * 3, px(ref, 0, y), W * 3);
    for (unsigned o = 1; o <= 8; o++) {
        size_t en = make_exif(e, (int)(o & 1), o, 3), jn;
        uint8_t *j = write_jpeg(rgb, W, H, 3, JCS_RGB, JCS_YCbCr, 0, e, en, &jn);
        fk_image_t *img = NULL, *stored = NULL, *want = NULL;
        char err[256];
        FK_CHECK_INT(decode_bytes(j, jn, &img, err), FK_OK);
        fk_image_decode_options_t opt = {0};
        opt.ignore_orientation = 1;
        FK_CHECK_INT(fk_image_decode(j, jn, &opt, &stored, err, sizeof err), FK_OK);
        FK_CHECK_INT(fk_image_orient(stored, (int)o, &want), FK_OK);
        FK_CHECK_INT(max_diff(img, want), 0);
        FK_CHECK_INT(img ? img->width : 0, o >= 5 ? H : W);
        fk_image_info_t info;
        FK_CHECK_INT(fk_image_probe(j, jn, &info, err, sizeof err), FK_OK);
        FK_CHECK_INT(info.orientation, (int)o);
        FK_CHECK(mad(stored, ref) < 3);
        fk_image_free(img);
        fk_image_free(stored);
        fk_image_free(want);
        free(j);
    }
    fk_image_free(ref);
}

/* ---- hostile input ------------------------------------------------------------------------------------ */

static void check_no_bad_success(const uint8_t *b, size_t n, const char *what, int expect_all_fail) {
    char err[256];
    int succeeded = 0, no_msg = 0, bad_code = 0;
    size_t step = n / 300 + 1;
    for (size_t cut = 0; cut < n; cut += (cut < 64 || n - cut < 64) ? 1 : step) {
        fk_image_t *img = NULL;
        err[0] = 0;
        int rc = decode_bytes(b, cut, &img, err);
        if (rc == FK_OK) {
            succeeded++;
            fk_image_free(img);
        } else {
            if (!err[0]) no_msg++;
            if (rc != FK_EFORMAT) bad_code++;
            if (img) bad_code++;
        }
    }
    if (expect_all_fail && succeeded) fprintf(stderr, "  %s: %d truncations decoded as success\n", what, succeeded);
    if (expect_all_fail) FK_CHECK_INT(succeeded, 0);
    FK_CHECK_INT(no_msg, 0);
    FK_CHECK_INT(bad_code, 0);
}

static void png_fix_crcs(uint8_t *b, size_t n);

/* FIXUP (may be NULL) repairs checksums after the flips so that the damage reaches the decoder proper. */
static void fuzz_flips_fix(const uint8_t *b, size_t n, int rounds, const char *what, void (*fixup)(uint8_t *, size_t)) {
    uint8_t *c = malloc(n);
    char err[256];
    int ok = 0, fail = 0, insane = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(c, b, n);
        int flips = 1 + (int)(rnd() % 8);
        for (int f = 0; f < flips; f++) {
            size_t at = rnd() % n;
            if (rnd() % 2) c[at] ^= (uint8_t)(1u << (rnd() % 8));
            else c[at] = (uint8_t)rnd();
        }
        if (fixup) fixup(c, n);
        fk_image_t *img = NULL;
        err[0] = 0;
        int rc = decode_bytes(c, n, &img, err);
        if (rc == FK_OK) {
            ok++;
            if (!img || img->width < 1 || img->height < 1 || img->stride < 3 * img->width) insane++;
            else { /* touch every pixel: ASan proves the buffer is as large as claimed */
                unsigned s = 0;
                for (int y = 0; y < img->height; y++) s += px(img, img->width - 1, y)[2];
                (void)s;
            }
            fk_image_free(img);
        } else {
            fail++;
            if (!err[0] || img) insane++;
        }
    }
    fprintf(stderr, "  %s: %d byte-flip rounds, %d decoded, %d rejected\n", what, rounds, ok, fail);
    FK_CHECK_INT(insane, 0);
    free(c);
}

static void fuzz_flips(const uint8_t *b, size_t n, int rounds, const char *what) { fuzz_flips_fix(b, n, rounds, what, NULL); }

static void test_truncation_and_corruption(void) {
    size_t n, n2;
    uint8_t *j = read_all(data_path("faces/face_recognition/examples/obama-240p.jpg"), &n);
    uint8_t *pj = read_all(data_path("faces/meds/extra/meds-aa-S001-01-exif-rotation.jpg"), &n2);
    FK_CHECK(j && pj);
    if (!j || !pj) {
        free(j);
        free(pj);
        return;
    }
    size_t base = fk_mem_in_use();
    check_no_bad_success(j, n, "baseline jpeg", 1);
    check_no_bad_success(pj, n2, "progressive jpeg", 1);
    fk_image_t *img = NULL;
    char err[256];
    FK_CHECK_INT(decode_bytes(j, n, &img, err), FK_OK);
    void *png = NULL;
    size_t pn = 0;
    FK_CHECK_INT(fk_image_encode(img, FK_IMAGE_FORMAT_PNG, 0, &png, &pn, err, sizeof err), FK_OK);
    fk_image_free(img);
    check_no_bad_success(png, pn, "png", 1);
    fuzz_flips(j, n, 400, "baseline jpeg");
    fuzz_flips(pj, n2, 150, "progressive jpeg");
    fuzz_flips(png, pn, 300, "png");
    fuzz_flips_fix(png, pn, 300, "png, CRCs repaired", png_fix_crcs);
    fk_free(png);
    /* WebP (no checksums: every flip reaches libwebp) and BMP */
    fk_image_t *small = NULL;
    FK_CHECK_INT(decode_bytes(j, n, &small, err), FK_OK);
    uint8_t *wl = NULL, *wy = NULL;
    size_t wln = small ? WebPEncodeLosslessRGB(small->rgb, small->width, small->height, small->stride, &wl) : 0;
    size_t wyn = small ? WebPEncodeRGB(small->rgb, small->width, small->height, small->stride, 80, &wy) : 0;
    FK_CHECK(wln > 0 && wyn > 0);
    if (wln && wyn) {
        check_no_bad_success(wl, wln, "webp lossless", 1);
        check_no_bad_success(wy, wyn, "webp lossy", 1);
        fuzz_flips(wl, wln, 200, "webp lossless");
        fuzz_flips(wy, wyn, 200, "webp lossy");
    }
    WebPFree(wl);
    WebPFree(wy);
    size_t bn;
    fk_image_t *pal = pattern(33, 9);
    uint8_t *bmp = make_bmp(pal, 8, 0, 0, &bn);
    fuzz_flips(bmp, bn, 300, "bmp 8-bit");
    free(bmp);
    fk_image_free(pal);
    fk_image_free(small);
    FK_CHECK_INT(fk_mem_in_use(), base);
    /* extraneous bytes: before EOI (camera padding) they are harmless, before the scan they are not */
    {
        uint8_t *g = malloc(n + 5);
        fk_image_t *orig = NULL, *pad = NULL;
        FK_CHECK_INT(decode_bytes(j, n, &orig, err), FK_OK);
        FK_CHECK(j[n - 2] == 0xFF && j[n - 1] == 0xD9);
        memcpy(g, j, n - 2);
        memcpy(g + n - 2, "abcde", 5);
        memcpy(g + n + 3, "\xFF\xD9", 2);
        FK_CHECK_INT(decode_bytes(g, n + 5, &pad, err), FK_OK);
        FK_CHECK_INT(max_diff(pad, orig), 0);
        fk_image_free(pad);
        pad = NULL;
        size_t sos = 0;
        for (size_t i = 2; i + 1 < n; i++)
            if (j[i] == 0xFF && j[i + 1] == 0xDA) {
                sos = i;
                break;
            }
        FK_CHECK(sos > 0);
        memcpy(g, j, sos);
        memcpy(g + sos, "abcde", 5);
        memcpy(g + sos + 5, j + sos, n - sos);
        err[0] = 0;
        FK_CHECK_INT(decode_bytes(g, n + 5, &pad, err), FK_EFORMAT);
        FK_CHECK(strstr(err, "extraneous") != NULL);
        fk_image_free(orig);
        free(g);
    }
    /* garbage and odd inputs */
    FK_CHECK_INT(decode_bytes("", 0, &img, err), FK_EFORMAT);
    FK_CHECK_INT(decode_bytes("GIF89a\1\0\1\0", 10, &img, err), FK_EFORMAT);
    FK_CHECK(strstr(err, "GIF") != NULL);
    FK_CHECK_INT(decode_bytes("\xFF\xD8\xFF", 3, &img, err), FK_EFORMAT);
    FK_CHECK_INT(decode_bytes("BM", 2, &img, err), FK_EFORMAT);
    FK_CHECK_INT(fk_image_decode(NULL, 5, NULL, &img, err, sizeof err), FK_EINVAL);
    FK_CHECK_INT(fk_image_decode(j, n, NULL, NULL, err, sizeof err), FK_EINVAL);
    fk_image_t *nf = NULL;
    FK_CHECK_INT(fk_image_load(tmp_path("does-not-exist.jpg"), NULL, &nf, err, sizeof err), FK_ENOTFOUND);
    FK_CHECK_INT(fk_image_load(tmpdir, NULL, &nf, err, sizeof err), FK_EIO);
    free(j);
    free(pj);
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return crc ^ 0xFFFFFFFFu;
}

static size_t png_chunk(uint8_t *c, const char *type, const uint8_t *data, uint32_t len) {
    for (int i = 0; i < 4; i++) c[i] = (uint8_t)(len >> (24 - 8 * i));
    memcpy(c + 4, type, 4);
    if (len) memcpy(c + 8, data, len);
    uint32_t crc = crc32_of(c + 4, 4 + (size_t)len);
    for (int i = 0; i < 4; i++) c[8 + len + i] = (uint8_t)(crc >> (24 - 8 * i));
    return 12 + (size_t)len;
}

/* Recomputes every chunk's CRC (chunks whose length runs past the end are left alone). */
static void png_fix_crcs(uint8_t *b, size_t n) {
    size_t at = 8;
    while (at + 12 <= n) {
        uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if (len > n - at - 12) break;
        uint32_t crc = crc32_of(b + at + 4, 4 + (size_t)len);
        for (int i = 0; i < 4; i++) b[at + 8 + len + i] = (uint8_t)(crc >> (24 - 8 * i));
        at += 12 + (size_t)len;
    }
}

/* PNG with an IHDR claiming W x H, one tiny IDAT and IEND: a header that promises far more than it has. */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b, sig, 8);
    uint8_t ihdr[13];
    for (int i = 0; i < 4; i++) ihdr[i] = (uint8_t)(w >> (24 - 8 * i)), ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01}; /* zlib of one 0 */
    size_t n = 8;
    n += png_chunk(b + n, "IHDR", ihdr, 13);
    n += png_chunk(b + n, "IDAT", idat, sizeof idat);
    n += png_chunk(b + n, "IEND", NULL, 0);
    return n;
}

static void test_limits(void) {
    char err[256];
    fk_image_t *img = NULL;
    size_t base = fk_mem_in_use();
    /* PNG claiming 100000 x 100000 */
    uint8_t b[128];
    size_t n = png_header(b, 100000, 100000);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_ELIMIT);
    FK_CHECK(img == NULL);
    fk_image_info_t info;
    FK_CHECK_INT(fk_image_probe(b, n, &info, err, sizeof err), FK_OK);
    FK_CHECK_INT(info.width, 100000);
    /* 20000 x 20000 = 400 Mpx: within the side limit, over the pixel limit */
    n = png_header(b, 20000, 20000);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_ELIMIT);
    FK_CHECK(strstr(err, "limit") != NULL);
    /* 8000 x 8000 = 64 Mpx is over the default; with the limit raised the header passes, the pixel buffer
     * (192 MB) is allocated and the missing data is then a format error: the limit, not luck, stopped it */
    n = png_header(b, 8000, 8000);
    FK_CHECK_INT(decode_bytes(b, n, &img, err), FK_ELIMIT);
    fk_image_decode_options_t big = {0};
    big.max_pixels = 64000000;
    FK_CHECK_INT(fk_image_decode(b, n, &big, &img, err, sizeof err), FK_EFORMAT);
    FK_CHECK(img == NULL);
    /* JPEG: a real file whose SOF0 is patched to claim 60000 x 60000 */
    size_t rn;
    uint8_t *real = read_all(data_path("faces/face_recognition/examples/obama-240p.jpg"), &rn);
    FK_CHECK(real != NULL);
    if (real) {
        /* patch the SOF0 dimensions of a real file */
        for (size_t i = 2; i + 9 < rn; i++)
            if (real[i] == 0xFF && real[i + 1] == 0xC0) {
                real[i + 5] = 0xEA, real[i + 6] = 0x60, real[i + 7] = 0xEA, real[i + 8] = 0x60;
                break;
            }
        FK_CHECK_INT(decode_bytes(real, rn, &img, err), FK_ELIMIT);
        FK_CHECK(img == NULL);
        FK_CHECK(strstr(err, "60000x60000") != NULL);
        free(real);
    }
    /* BMP claiming 100000 x 100000 */
    fk_image_t *tiny = pattern(2, 2);
    size_t bn;
    uint8_t *bmp = make_bmp(tiny, 24, 0, 0, &bn);
    put32(bmp + 18, 100000);
    put32(bmp + 22, 100000);
    FK_CHECK_INT(decode_bytes(bmp, bn, &img, err), FK_ELIMIT);
    put32(bmp + 18, 2);
    put32(bmp + 22, 2);
    /* max_pixels exactly at / below the size */
    fk_image_decode_options_t o = {0};
    o.max_pixels = 4;
    FK_CHECK_INT(fk_image_decode(bmp, bn, &o, &img, err, sizeof err), FK_OK);
    fk_image_free(img);
    img = NULL;
    o.max_pixels = 3;
    FK_CHECK_INT(fk_image_decode(bmp, bn, &o, &img, err, sizeof err), FK_ELIMIT);
    /* file-size limit: bytes and files */
    o.max_pixels = 0;
    o.max_file_bytes = bn - 1;
    FK_CHECK_INT(fk_image_decode(bmp, bn, &o, &img, err, sizeof err), FK_ELIMIT);
    write_all(tmp_path("small.bmp"), bmp, bn);
    FK_CHECK_INT(fk_image_load(tmp_path("small.bmp"), &o, &img, err, sizeof err), FK_ELIMIT);
    FK_CHECK(strstr(err, "limit") != NULL);
    o.max_file_bytes = bn;
    FK_CHECK_INT(fk_image_load(tmp_path("small.bmp"), &o, &img, err, sizeof err), FK_OK);
    fk_image_free(img);
    img = NULL;
    /* WebP: a lossless header claiming 16384 x 16384 (268 Mpx) */
    uint8_t *wp = NULL;
    size_t wn = WebPEncodeLosslessRGB(tiny->rgb, 2, 2, tiny->stride, &wp);
    if (wn > 25) {
        /* VP8L: "RIFF" size "WEBP" "VP8L" size 0x2f then 14-bit (w-1), 14-bit (h-1) */
        uint8_t *v = wp + 21;
        uint32_t bits = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 24;
        bits = (bits & ~0x0FFFFFFFu) | 0x3FFFu | (0x3FFFu << 14);
        for (int i = 0; i < 4; i++) v[i] = (uint8_t)(bits >> (8 * i));
        FK_CHECK_INT(decode_bytes(wp, wn, &img, err), FK_ELIMIT);
    }
    WebPFree(wp);
    free(bmp);
    fk_image_free(tiny);
    FK_CHECK_INT(fk_mem_in_use(), base);
}

/* Fails allocation 1, 2, 3, ... of each operation until it succeeds: every failure must be FK_ENOMEM
 * (or a success when the failed allocation was optional) and leave no memory behind. */
typedef int (*op_fn)(const void *arg);

static int run_fail_sweep(const char *name, op_fn fn, const void *arg) {
    size_t base = fk_mem_in_use();
    int nomem = 0, other = 0, leaks = 0, k;
    for (k = 1; k < 500; k++) {
        fk__alloc_fail_at(k);
        int rc = fn(arg);
        fk__alloc_fail_at(0);
        if (fk_mem_in_use() != base) leaks++;
        if (rc == FK_OK) break;
        if (rc == FK_ENOMEM) nomem++;
        else {
            other++;
            fprintf(stderr, "  %s: allocation %d failed -> %s\n", name, k, fk_status_str(rc));
        }
    }
    FK_CHECK(k < 500);
    FK_CHECK(nomem >= 1);
    FK_CHECK_INT(other, 0);
    FK_CHECK_INT(leaks, 0);
    return k;
}

typedef struct blob {
    const uint8_t *b;
    size_t n;
} blob_t;

static int op_decode(const void *arg) {
    const blob_t *bl = arg;
    fk_image_t *img = NULL;
    char err[256];
    int rc = fk_image_decode(bl->b, bl->n, NULL, &img, err, sizeof err);
    if ((rc == FK_OK) != (img != NULL)) return FK_EINTERNAL;
    fk_image_free(img);
    return rc;
}

static int op_geometry(const void *arg) {
    const fk_image_t *src = arg;
    fk_image_t *a = NULL, *b = NULL, *c = NULL;
    int rc = fk_image_resize(src, src->width / 3, src->height / 3, &a);
    if (rc == FK_OK) rc = fk_image_rotate(src, 90, &b);
    if (rc == FK_OK) rc = fk_image_crop(src, 1, 1, 5, 5, &c);
    float t[3 * 8 * 8];
    fk_tensor_spec_t sp = {8, 8, FK_TENSOR_CHW, FK_CHANNELS_RGB, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}};
    if (rc == FK_OK) rc = fk_image_to_tensor(src, NULL, &sp, t);
    fk_image_free(a);
    fk_image_free(b);
    fk_image_free(c);
    return rc;
}

static int op_encode(const void *arg) {
    const fk_image_t *src = arg;
    void *o = NULL;
    size_t n;
    char err[256];
    int rc = fk_image_encode(src, FK_IMAGE_FORMAT_JPEG, 80, &o, &n, err, sizeof err);
    fk_free(o);
    o = NULL;
    if (rc == FK_OK) rc = fk_image_encode(src, FK_IMAGE_FORMAT_PNG, 0, &o, &n, err, sizeof err);
    fk_free(o);
    o = NULL;
    if (rc == FK_OK) rc = fk_image_encode(src, FK_IMAGE_FORMAT_WEBP, 101, &o, &n, err, sizeof err);
    fk_free(o);
    return rc;
}

static void test_alloc_failures(void) {
    size_t n;
    uint8_t *rot = read_all(data_path("faces/meds/extra/meds-aa-S001-01-exif-rotation.jpg"), &n);
    FK_CHECK(rot != NULL);
    if (!rot) return;
    blob_t bl = {rot, n};
    run_fail_sweep("jpeg+exif", op_decode, &bl);
    fk_image_t *img = NULL;
    char err[256];
    decode_bytes(rot, n, &img, err);
    void *png = NULL;
    size_t pn;
    fk_image_encode(img, FK_IMAGE_FORMAT_PNG, 0, &png, &pn, err, sizeof err);
    blob_t pb = {png, pn};
    int k = run_fail_sweep("png", op_decode, &pb);
    FK_CHECK(k > 3); /* libpng's own allocations go through fk__malloc too */
    /* PNG with alpha (extra buffer) */
    enum { W = 6, H = 5 };
    uint8_t store[H][W * 4], *rows[H];
    for (int y = 0; y < H; y++) {
        rows[y] = store[y];
        for (int x = 0; x < W * 4; x++) store[y][x] = (uint8_t)(x * 9 + y);
    }
    membuf_t m = write_png(W, H, PNG_COLOR_TYPE_RGBA, 8, 1, rows, NULL, 0, NULL, 0);
    blob_t ab = {m.b, m.n};
    run_fail_sweep("png rgba", op_decode, &ab);
    fk_image_t *small = pattern(31, 17);
    uint8_t *wp = NULL;
    size_t wn = WebPEncodeLosslessRGB(small->rgb, small->width, small->height, small->stride, &wp);
    blob_t wb = {wp, wn};
    run_fail_sweep("webp", op_decode, &wb);
    size_t bn;
    uint8_t *bmp = make_bmp(small, 24, 0, 0, &bn);
    blob_t bb = {bmp, bn};
    run_fail_sweep("bmp", op_decode, &bb);
    run_fail_sweep("geometry", op_geometry, small);
    run_fail_sweep("encode", op_encode, small);
    free(bmp);
    WebPFree(wp);
    free(m.b);
    fk_free(png);
    fk_image_free(img);
    fk_image_free(small);
    free(rot);
}

/* ---- encoders ------------------------------------------------------------------------------------------ */

static void test_encode_roundtrip(void) {
    fk_image_t *img = NULL, *back = NULL;
    FK_CHECK_INT(load(data_path("faces/face_recognition/examples/obama-240p.jpg"), NULL, &img), FK_OK);
    if (!img) return;
    char err[256];
    FK_CHECK_INT(fk_image_save(img, tmp_path("out.png"), 0, err, sizeof err), FK_OK);
    FK_CHECK_INT(load(tmp_path("out.png"), NULL, &back), FK_OK);
    FK_CHECK_INT(max_diff(img, back), 0);
    fk_image_free(back);
    back = NULL;
    FK_CHECK_INT(fk_image_save(img, tmp_path("out.JPG"), 95, err, sizeof err), FK_OK);
    FK_CHECK_INT(load(tmp_path("out.JPG"), NULL, &back), FK_OK);
    double d95 = mad(img, back);
    FK_CHECK(d95 >= 0 && d95 < 2.0);
    fk_image_free(back);
    back = NULL;
    FK_CHECK_INT(fk_image_save(img, tmp_path("out30.jpg"), 30, err, sizeof err), FK_OK);
    FK_CHECK_INT(load(tmp_path("out30.jpg"), NULL, &back), FK_OK);
    double d30 = mad(img, back);
    FK_CHECK(d30 > d95 && d30 < 8);
    fk_image_free(back);
    back = NULL;
    FK_CHECK_INT(fk_image_save(img, tmp_path("out.webp"), 101, err, sizeof err), FK_OK);
    FK_CHECK_INT(load(tmp_path("out.webp"), NULL, &back), FK_OK);
    FK_CHECK_INT(max_diff(img, back), 0);
    fk_image_free(back);
    back = NULL;
    FK_CHECK_INT(fk_image_save(img, tmp_path("out.gif"), 0, err, sizeof err), FK_EINVAL);
    FK_CHECK_INT(fk_image_save(img, tmp_path("out.jpg"), 150, err, sizeof err), FK_EINVAL);
    void *o = NULL;
    size_t n;
    FK_CHECK_INT(fk_image_encode(img, FK_IMAGE_FORMAT_BMP, 0, &o, &n, err, sizeof err), FK_EUNSUPPORTED);
    FK_CHECK(o == NULL);
    /* a caller-described view with a stride (every other row of the image) encodes too */
    fk_image_t view = {img->width, img->height / 2, img->stride * 2, img->rgb};
    FK_CHECK_INT(fk_image_encode(&view, FK_IMAGE_FORMAT_PNG, 0, &o, &n, err, sizeof err), FK_OK);
    FK_CHECK_INT(decode_bytes(o, n, &back, err), FK_OK);
    if (back) FK_CHECK(!memcmp(px(back, 0, 3), px(img, 0, 6), 3 * (size_t)img->width));
    fk_free(o);
    fk_image_free(back);
    fk_image_free(img);
}

/* ---- geometry ------------------------------------------------------------------------------------------ */

static fk_image_t *constant(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    fk_image_t *img = NULL;
    fk_image_create(w, h, &img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px(img, x, y);
            p[0] = r, p[1] = g, p[2] = b;
        }
    return img;
}

static void test_resize(void) {
    fk_image_t *p = pattern(40, 30), *r = NULL;
    /* identity */
    FK_CHECK_INT(fk_image_resize(p, 40, 30, &r), FK_OK);
    FK_CHECK_INT(max_diff(r, p), 0);
    fk_image_free(r);
    /* constant stays constant at any scale, in both filters */
    fk_image_t *c = constant(97, 61, 200, 17, 99);
    static const int sizes[][2] = {{48, 30}, {32, 20}, {13, 7}, {1, 1}, {200, 150}, {97, 20}, {300, 5}};
    for (size_t i = 0; i < FK__ARRAY_LEN(sizes); i++) {
        FK_CHECK_INT(fk_image_resize(c, sizes[i][0], sizes[i][1], &r), FK_OK);
        fk_image_t *want = constant(sizes[i][0], sizes[i][1], 200, 17, 99);
        FK_CHECK_INT(max_diff(r, want), 0);
        fk_image_free(want);
        fk_image_free(r);
    }
    fk_image_free(c);
    /* 2x shrink = 2x2 box average (rounded half up) */
    FK_CHECK_INT(fk_image_resize(p, 20, 15, &r), FK_OK);
    int ok = 1;
    for (int y = 0; y < 15; y++)
        for (int x = 0; x < 20; x++)
            for (int ch = 0; ch < 3; ch++) {
                int s = px(p, 2 * x, 2 * y)[ch] + px(p, 2 * x + 1, 2 * y)[ch] + px(p, 2 * x, 2 * y + 1)[ch] +
                        px(p, 2 * x + 1, 2 * y + 1)[ch];
                if (px(r, x, y)[ch] != (s + 2) / 4) ok = 0;
            }
    FK_CHECK(ok);
    fk_image_free(r);
    /* 4x shrink (area): 4x4 box average, +-1 for the fixed point */
    FK_CHECK_INT(fk_image_resize(p, 10, 7, &r), FK_OK); /* 30/7 rows: not integral, skip rows */
    fk_image_free(r);
    FK_CHECK_INT(fk_image_resize(p, 10, 6, &r), FK_OK); /* 4x horizontally, 5x vertically */
    ok = 1;
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 10; x++)
            for (int ch = 0; ch < 3; ch++) {
                double s = 0;
                for (int yy = 0; yy < 5; yy++)
                    for (int xx = 0; xx < 4; xx++) s += px(p, 4 * x + xx, 5 * y + yy)[ch];
                if (fabs(px(r, x, y)[ch] - s / 20) > 1.0) ok = 0;
            }
    FK_CHECK(ok);
    fk_image_free(r);
    /* bilinear 2x enlargement of a row [0, 100]: [0, 25, 75, 100] (half-pixel centres, edge replicated) */
    fk_image_t *two = constant(2, 1, 0, 0, 0);
    px(two, 1, 0)[0] = 100;
    FK_CHECK_INT(fk_image_resize(two, 4, 1, &r), FK_OK);
    if (r) {
        FK_CHECK_INT(px(r, 0, 0)[0], 0);
        FK_CHECK_INT(px(r, 1, 0)[0], 25);
        FK_CHECK_INT(px(r, 2, 0)[0], 75);
        FK_CHECK_INT(px(r, 3, 0)[0], 100);
    }
    fk_image_free(r);
    fk_image_free(two);
    /* resample a region: a crop at integer edges equals fk_image_crop */
    fk_image_t dst = {0}, *crop = NULL;
    fk_image_create(12, 9, &r);
    dst = *r;
    fk_rectf_t rect = {5, 7, 12, 9};
    FK_CHECK_INT(fk_image_resample(p, &rect, NULL, &dst), FK_OK);
    FK_CHECK_INT(fk_image_crop(p, 5, 7, 12, 9, &crop), FK_OK);
    FK_CHECK_INT(max_diff(r, crop), 0);
    fk_image_free(crop);
    /* a region hanging off the image: outside pixels are the fill */
    uint8_t fill[3] = {1, 2, 3};
    fk_rectf_t off = {-6, 0, 12, 9};
    FK_CHECK_INT(fk_image_resample(p, &off, fill, &dst), FK_OK);
    FK_CHECK(!memcmp(px(r, 0, 0), fill, 3) && !memcmp(px(r, 5, 8), fill, 3));
    FK_CHECK(!memcmp(px(r, 6, 0), px(p, 0, 0), 3) && !memcmp(px(r, 11, 8), px(p, 5, 8), 3));
    fk_rectf_t away = {1000, 1000, 5, 5};
    FK_CHECK_INT(fk_image_resample(p, &away, fill, &dst), FK_OK);
    FK_CHECK(!memcmp(px(r, 7, 4), fill, 3));
    fk_rectf_t badr = {0, 0, 0, 5};
    FK_CHECK_INT(fk_image_resample(p, &badr, fill, &dst), FK_EINVAL);
    fk_image_free(r);
    FK_CHECK_INT(fk_image_resize(p, 0, 5, &r), FK_EINVAL);
    fk_image_free(p);
}

/* The SIMD passes (SSE2 or AVX2 horizontal, AVX2 vertical with up to 16 taps, plain loops beyond) against the
 * plain C reference: bit-identical on many sizes, regions and fills, odd widths (the AVX2 passes' tails) and
 * the detector's own shrink of an 853x480 frame to 320x180 (area taps). */
static void test_resample_simd_vs_ref(void) {
    fk_image_t *big = pattern(853, 480), *a0 = NULL, *b0 = NULL;
    fk_image_create(320, 180, &a0);
    fk_image_create(320, 180, &b0);
    FK_CHECK_INT(fk_image_resample(big, NULL, NULL, a0), FK_OK);
    FK_CHECK_INT(fk__image_resample_ref(big, NULL, NULL, b0), FK_OK);
    FK_CHECK_INT(max_diff(a0, b0), 0);
    fk_image_free(a0);
    fk_image_free(b0);
    fk_image_free(big);
    fk_image_t *p = pattern(157, 91);
    int mismatches = 0, runs = 0;
    for (int i = 0; i < 200; i++) {
        int ow = 1 + (int)(rnd() % 300), oh = 1 + (int)(rnd() % 120);
        fk_rectf_t r = {(float)((int)(rnd() % 400) - 200) / 3.0f, (float)((int)(rnd() % 200) - 100) / 3.0f,
                        1.0f + (float)(rnd() % 2000) / 7.0f, 1.0f + (float)(rnd() % 1000) / 7.0f};
        uint8_t fill[3] = {(uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd()};
        fk_image_t *a = NULL, *b = NULL;
        fk_image_create(ow, oh, &a);
        fk_image_create(ow, oh, &b);
        int ra = fk_image_resample(p, i % 5 ? &r : NULL, fill, a), rb = fk__image_resample_ref(p, i % 5 ? &r : NULL, fill, b);
        if (ra != FK_OK || rb != FK_OK || max_diff(a, b) != 0) mismatches++;
        runs++;
        fk_image_free(a);
        fk_image_free(b);
    }
    FK_CHECK_INT(runs, 200);
    FK_CHECK_INT(mismatches, 0);
    fk_image_free(p);
}

static void test_tensor(void) {
    fk_image_t *img = constant(2, 1, 10, 20, 30);
    uint8_t *q = px(img, 1, 0);
    q[0] = 200, q[1] = 100, q[2] = 0;
    float t[2 * 3 * 4];
    fk_tensor_spec_t sp = {2, 1, FK_TENSOR_CHW, FK_CHANNELS_BGR, {127, 127, 127}, {1 / 128.f, 1 / 128.f, 1 / 128.f}, {0, 0, 0}};
    FK_CHECK_INT(fk_image_to_tensor(img, NULL, &sp, t), FK_OK);
    /* CHW, BGR: plane 0 is blue */
    FK_CHECK_NEAR(t[0], (30 - 127) / 128.0, 1e-6);
    FK_CHECK_NEAR(t[1], (0 - 127) / 128.0, 1e-6);
    FK_CHECK_NEAR(t[2], (20 - 127) / 128.0, 1e-6);
    FK_CHECK_NEAR(t[3], (100 - 127) / 128.0, 1e-6);
    FK_CHECK_NEAR(t[4], (10 - 127) / 128.0, 1e-6);
    FK_CHECK_NEAR(t[5], (200 - 127) / 128.0, 1e-6);
    /* HWC, RGB, per-channel mean/scale */
    fk_tensor_spec_t hw = {2, 1, FK_TENSOR_HWC, FK_CHANNELS_RGB, {1, 2, 3}, {1, 0.5f, 2}, {0, 0, 0}};
    FK_CHECK_INT(fk_image_to_tensor(img, NULL, &hw, t), FK_OK);
    FK_CHECK_NEAR(t[0], 9, 1e-6);
    FK_CHECK_NEAR(t[1], 9, 1e-6);
    FK_CHECK_NEAR(t[2], 54, 1e-6);
    FK_CHECK_NEAR(t[3], 199, 1e-6);
    FK_CHECK_NEAR(t[4], 49, 1e-6);
    FK_CHECK_NEAR(t[5], -6, 1e-6);
    /* HWC BGR with a letterbox: rect 4 wide over the 2-pixel image; the right half is fill */
    fk_tensor_spec_t lb = {4, 1, FK_TENSOR_HWC, FK_CHANNELS_BGR, {0, 0, 0}, {1, 1, 1}, {7, 8, 9}};
    fk_rectf_t rect = {0, 0, 4, 1};
    FK_CHECK_INT(fk_image_to_tensor(img, &rect, &lb, t), FK_OK);
    FK_CHECK_NEAR(t[0], 30, 1e-6);
    FK_CHECK_NEAR(t[2], 10, 1e-6);
    FK_CHECK_NEAR(t[5], 200, 1e-6);
    FK_CHECK_NEAR(t[6], 9, 1e-6); /* fill, blue first */
    FK_CHECK_NEAR(t[8], 7, 1e-6);
    FK_CHECK_NEAR(t[11], 7, 1e-6);
    /* tensor = resample then normalise */
    fk_image_t *p = pattern(50, 40), *r = NULL;
    fk_image_create(17, 11, &r);
    fk_rectf_t re = {3.5f, -2, 40, 30};
    fk_image_resample(p, &re, NULL, r);
    float *big = malloc(sizeof(float) * 3 * 17 * 11);
    fk_tensor_spec_t s2 = {17, 11, FK_TENSOR_CHW, FK_CHANNELS_RGB, {127.5f, 127.5f, 127.5f}, {1 / 128.f, 1 / 128.f, 1 / 128.f}, {0, 0, 0}};
    FK_CHECK_INT(fk_image_to_tensor(p, &re, &s2, big), FK_OK);
    int ok = 1;
    for (int y = 0; y < 11; y++)
        for (int x = 0; x < 17; x++)
            for (int c = 0; c < 3; c++)
                if (fabsf(big[c * 17 * 11 + y * 17 + x] - (px(r, x, y)[c] - 127.5f) / 128.f) > 1e-6f) ok = 0;
    FK_CHECK(ok);
    free(big);
    fk_tensor_spec_t bad = sp;
    bad.layout = 7;
    FK_CHECK_INT(fk_image_to_tensor(img, NULL, &bad, t), FK_EINVAL);
    fk_image_free(p);
    fk_image_free(r);
    fk_image_free(img);
}

static void test_warp(void) {
    fk_image_t *p = pattern(23, 17), *d = NULL;
    fk_image_create(23, 17, &d);
    float id[6] = {1, 0, 0, 0, 1, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, id, NULL, d), FK_OK);
    FK_CHECK_INT(max_diff(d, p), 0);
    /* translation by +1 px in x: dst(x, y) = src(x - 1, y); column 0 is the fill */
    uint8_t fill[3] = {5, 6, 7};
    float tx[6] = {1, 0, 1, 0, 1, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, tx, fill, d), FK_OK);
    int ok = 1;
    for (int y = 0; y < 17; y++) {
        if (memcmp(px(d, 0, y), fill, 3)) ok = 0;
        for (int x = 1; x < 23; x++)
            if (memcmp(px(d, x, y), px(p, x - 1, y), 3)) ok = 0;
    }
    FK_CHECK(ok);
    /* translation by -1 px in y: the last row is the fill */
    float ty[6] = {1, 0, 0, 0, 1, -1};
    FK_CHECK_INT(fk_image_warp_affine(p, ty, fill, d), FK_OK);
    FK_CHECK(!memcmp(px(d, 4, 15), px(p, 4, 16), 3) && !memcmp(px(d, 4, 16), fill, 3));
    /* half a pixel: the average of neighbours (rounded) */
    float th[6] = {1, 0, 0.5f, 0, 1, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, th, fill, d), FK_OK);
    ok = 1;
    for (int x = 1; x < 23; x++)
        for (int c = 0; c < 3; c++)
            if (px(d, x, 3)[c] != (px(p, x - 1, 3)[c] + px(p, x, 3)[c] + 1) / 2) ok = 0;
    FK_CHECK(ok);
    /* border blends into the fill: dst(0) = (fill + src(0)) / 2 */
    FK_CHECK_INT(px(d, 0, 3)[1], (fill[1] + px(p, 0, 3)[1] + 1) / 2);
    /* a 90-degree rotation matrix equals fk_image_rotate: x' = H-1-y, y' = x */
    fk_image_t *rot = NULL, *d2 = NULL;
    fk_image_rotate(p, 90, &rot);
    fk_image_create(17, 23, &d2);
    float r90[6] = {0, -1, 16, 1, 0, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, r90, fill, d2), FK_OK);
    FK_CHECK_INT(max_diff(d2, rot), 0);
    /* a 2x enlargement with the centre convention: dst(2x) = src(x) exactly */
    fk_image_t *d3 = NULL;
    fk_image_create(40, 30, &d3);
    float s2[6] = {2, 0, 0, 0, 2, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, s2, fill, d3), FK_OK);
    FK_CHECK(!memcmp(px(d3, 10, 8), px(p, 5, 4), 3));
    /* inverse and singular */
    float m[6] = {0.8f, -0.3f, 12, 0.25f, 1.1f, -4}, inv[6], back[6];
    FK_CHECK_INT(fk_affine_invert(m, inv), FK_OK);
    FK_CHECK_INT(fk_affine_invert(inv, back), FK_OK);
    for (int i = 0; i < 6; i++) FK_CHECK_NEAR(back[i], m[i], 1e-4);
    float sing[6] = {1, 2, 0, 2, 4, 0};
    FK_CHECK_INT(fk_affine_invert(sing, inv), FK_EINVAL);
    FK_CHECK_INT(fk_image_warp_affine(p, sing, fill, d), FK_EINVAL);
    /* degenerate and extreme matrices: an error or fill, never undefined behaviour */
    float tiny[6] = {1e-20f, 0, 0, 0, 1e-20f, 0}, huge[6] = {1e30f, 0, 0, 0, 1e30f, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, tiny, fill, d), FK_EINVAL);
    FK_CHECK_INT(fk_image_warp_affine(p, huge, fill, d), FK_OK);
    float nan6[6] = {1, 0, NAN, 0, 1, 0};
    FK_CHECK_INT(fk_image_warp_affine(p, nan6, fill, d), FK_EINVAL);
    /* a far-away warp only fills; extreme coordinates do not overflow */
    float far[6] = {1, 0, 1e9f, 0, 1, -1e9f};
    FK_CHECK_INT(fk_image_warp_affine(p, far, fill, d), FK_OK);
    FK_CHECK(!memcmp(px(d, 11, 8), fill, 3));
    fk_image_free(p);
    fk_image_free(d);
    fk_image_free(d2);
    fk_image_free(d3);
    fk_image_free(rot);
}

/* Plain double-precision bilinear with constant border, written from the definition (OpenCV's
 * convention: integer coordinates are pixel centres). */
static void warp_oracle(const fk_image_t *src, const float m[6], const uint8_t fill[3], fk_image_t *dst) {
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5], det = a * e - b * d;
    double ia = e / det, ib = -b / det, id = -d / det, ie = a / det, ic = -(ia * c + ib * f), jf = -(id * c + ie * f);
    for (int y = 0; y < dst->height; y++)
        for (int x = 0; x < dst->width; x++) {
            double sx = ia * x + ib * y + ic, sy = id * x + ie * y + jf;
            double x0 = floor(sx), y0 = floor(sy), fx = sx - x0, fy = sy - y0;
            for (int ch = 0; ch < 3; ch++) {
                double v = 0;
                for (int k = 0; k < 4; k++) {
                    long xi = (long)x0 + (k & 1), yi = (long)y0 + (k >> 1);
                    double w = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy);
                    int inside = xi >= 0 && yi >= 0 && xi < src->width && yi < src->height;
                    v += w * (inside ? px(src, (int)xi, (int)yi)[ch] : fill[ch]);
                }
                px(dst, x, y)[ch] = (uint8_t)(v + 0.5);
            }
        }
}

static void test_warp_vs_oracle(void) {
    fk_image_t *p = pattern(64, 48), *d = NULL, *o = NULL;
    fk_image_create(112, 112, &d);
    fk_image_create(112, 112, &o);
    uint8_t fill[3] = {200, 100, 50};
    int worst = 0;
    for (int i = 0; i < 60; i++) {
        double ang = (double)(rnd() % 6283) / 1000.0, sc = 0.3 + (double)(rnd() % 3000) / 1000.0;
        float m[6] = {(float)(sc * cos(ang)), (float)(-sc * sin(ang)), (float)((int)(rnd() % 200) - 60),
                      (float)(sc * sin(ang)), (float)(sc * cos(ang)), (float)((int)(rnd() % 200) - 60)};
        FK_CHECK_INT(fk_image_warp_affine(p, m, fill, d), FK_OK);
        warp_oracle(p, m, fill, o);
        int md = max_diff(d, o);
        if (md > worst) worst = md;
    }
    FK_CHECK(worst <= 1); /* 1/2048-pixel weights: at most one level of rounding apart */
    if (worst > 1) fprintf(stderr, "  warp vs oracle: max difference %d\n", worst);
    fk_image_free(p);
    fk_image_free(d);
    fk_image_free(o);
}

/* The AVX2 warp (four pixels per step, gathers) against the plain C loop: bit-identical for rotations,
 * scales and shifts that put the output partly inside and partly outside the source, and for the aligner's
 * case (a face of a large frame to 112x112). */
static void test_warp_simd_vs_ref(void) {
    fk_image_t *srcs[2] = {pattern(157, 91), pattern(853, 480)};
    fk_image_t *d = NULL, *o = NULL;
    fk_image_create(112, 112, &d);
    fk_image_create(112, 112, &o);
    uint8_t fill[3] = {200, 100, 50};
    int mismatches = 0;
    for (int i = 0; i < 120; i++) {
        const fk_image_t *p = srcs[i % 2];
        double ang = (double)(rnd() % 6283) / 1000.0, sc = 0.2 + (double)(rnd() % 3000) / 1000.0;
        float m[6] = {(float)(sc * cos(ang)), (float)(-sc * sin(ang)), (float)((int)(rnd() % 300) - 150),
                      (float)(sc * sin(ang)), (float)(sc * cos(ang)), (float)((int)(rnd() % 300) - 150)};
        if (fk_image_warp_affine(p, m, fill, d) != FK_OK || fk__image_warp_affine_ref(p, m, fill, o) != FK_OK ||
            max_diff(d, o) != 0)
            mismatches++;
    }
    FK_CHECK_INT(mismatches, 0);
    fk_image_free(srcs[0]);
    fk_image_free(srcs[1]);
    fk_image_free(d);
    fk_image_free(o);
}

static void test_orient_crop_flip_gray_draw(void) {
    /* 3x2 image with unique pixels: check each EXIF orientation against its definition */
    fk_image_t *p = pattern(3, 2), *o = NULL;
    static const char *want[9] = {NULL,
                                  "abc/def", "cba/fed", "fed/cba", "def/abc",
                                  "ad/be/cf", "da/eb/fc", "fc/eb/da", "cf/be/ad"};
    for (int k = 1; k <= 8; k++) {
        FK_CHECK_INT(fk_image_orient(p, k, &o), FK_OK);
        if (!o) continue;
        char got[16];
        int n = 0;
        for (int y = 0; y < o->height; y++) {
            if (y) got[n++] = '/';
            for (int x = 0; x < o->width; x++) {
                uint8_t *q = px(o, x, y);
                for (int i = 0; i < 6; i++)
                    if (!memcmp(q, px(p, i % 3, i / 3), 3)) got[n++] = (char)('a' + i);
            }
        }
        got[n] = 0;
        FK_CHECK_STR(got, want[k]);
        fk_image_free(o);
        o = NULL;
    }
    /* rotations compose: 90 four times and 90 + 270 are the identity; flip twice too */
    fk_image_t *big = pattern(19, 7), *a = NULL, *b = NULL;
    fk_image_rotate(big, 90, &a);
    fk_image_rotate(a, 270, &b);
    FK_CHECK_INT(max_diff(b, big), 0);
    fk_image_free(a);
    fk_image_free(b);
    fk_image_flip_horizontal(big, &a);
    FK_CHECK(!memcmp(px(a, 0, 2), px(big, 18, 2), 3));
    fk_image_flip_horizontal(a, &b);
    FK_CHECK_INT(max_diff(b, big), 0);
    fk_image_free(a);
    fk_image_free(b);
    FK_CHECK_INT(fk_image_rotate(big, 45, &a), FK_EINVAL);
    FK_CHECK(a == NULL);
    FK_CHECK_INT(fk_image_orient(big, 9, &a), FK_EINVAL);
    /* crop with clamping */
    FK_CHECK_INT(fk_image_crop(big, -5, -5, 10, 10, &a), FK_OK);
    if (a) {
        FK_CHECK_INT(a->width, 5);
        FK_CHECK_INT(a->height, 5);
        FK_CHECK(!memcmp(px(a, 4, 4), px(big, 4, 4), 3));
    }
    fk_image_free(a);
    FK_CHECK_INT(fk_image_crop(big, 15, 3, 100, 100, &a), FK_OK);
    if (a) {
        FK_CHECK_INT(a->width, 4);
        FK_CHECK_INT(a->height, 4);
        FK_CHECK(!memcmp(px(a, 0, 0), px(big, 15, 3), 3));
    }
    fk_image_free(a);
    FK_CHECK_INT(fk_image_crop(big, 30, 0, 5, 5, &a), FK_EINVAL);
    FK_CHECK_INT(fk_image_crop(big, 2147483600, 0, 2147483000, 5, &a), FK_EINVAL);
    /* gray */
    fk_image_t *g = constant(4, 1, 0, 0, 0);
    px(g, 0, 0)[0] = 255;
    px(g, 1, 0)[1] = 255;
    px(g, 2, 0)[2] = 255;
    memset(px(g, 3, 0), 255, 3);
    uint8_t gray[8] = {0};
    FK_CHECK_INT(fk_image_to_gray(g, gray, 8), FK_OK);
    FK_CHECK_INT(gray[0], 76);
    FK_CHECK_INT(gray[1], 150);
    FK_CHECK_INT(gray[2], 29);
    FK_CHECK_INT(gray[3], 255);
    FK_CHECK_INT(fk_image_to_gray(g, gray, 3), FK_EINVAL);
    fk_image_free(g);
    /* drawing: outline inside the rectangle, interior untouched, clipping */
    fk_image_t *cv = constant(20, 20, 0, 0, 0);
    uint8_t red[3] = {255, 0, 0};
    FK_CHECK_INT(fk_image_draw_rect(cv, 2, 3, 10, 8, 2, red), FK_OK);
    FK_CHECK(px(cv, 2, 3)[0] == 255 && px(cv, 11, 10)[0] == 255 && px(cv, 3, 4)[0] == 255);
    FK_CHECK(px(cv, 4, 5)[0] == 0 && px(cv, 12, 3)[0] == 0 && px(cv, 2, 11)[0] == 0);
    FK_CHECK_INT(fk_image_draw_rect(cv, -50, -50, 200, 200, 3, red), FK_OK);
    FK_CHECK_INT(fk_image_draw_rect(cv, 2147483000, 5, 2147483000, 5, 3, red), FK_OK);
    FK_CHECK_INT(fk_image_draw_point(cv, 10, 10, 2, red), FK_OK);
    FK_CHECK(px(cv, 10, 12)[0] == 255 && px(cv, 12, 10)[0] == 255 && px(cv, 12, 12)[0] == 0);
    FK_CHECK_INT(fk_image_draw_point(cv, -1, 19, 1, red), FK_OK);
    FK_CHECK(px(cv, 0, 19)[0] == 255);
    FK_CHECK_INT(fk_image_draw_point(NULL, 1, 1, 1, red), FK_EINVAL);
    fk_image_free(cv);
    fk_image_free(big);
    fk_image_free(p);
    fk_image_free(NULL);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fk_test_image.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    size_t base = fk_mem_in_use();
    test_real_jpegs();
    test_exif_orientation_pair();
    test_rotations_on_real_files();
    test_dct_scaling();
    test_png_flavours();
    test_webp();
    test_bmp();
    test_jpeg_colour_spaces();
    test_exif();
    test_truncation_and_corruption();
    test_limits();
    test_alloc_failures();
    test_encode_roundtrip();
    test_resize();
    test_resample_simd_vs_ref();
    test_tensor();
    test_warp();
    test_warp_vs_oracle();
    test_warp_simd_vs_ref();
    test_orient_crop_flip_gray_draw();
    FK_CHECK_INT(fk_mem_in_use(), base);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return fk_t_finish();
}
