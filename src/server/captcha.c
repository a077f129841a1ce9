/*
 * captcha.c — the login captcha picture: five characters from a built-in 5x7 bitmap font, each scaled,
 * shifted and sheared at random, over random noise dots and lines, drawn with the image layer
 * (fk_image_create / fk_image_draw_point / fk_image_draw_rect) and encoded as PNG (fk_image_encode).
 * The answer lives only in the server's memory (auth.c), one-time and expiring.
 */
#include "server/server.h"

#include <openssl/rand.h>
#include <string.h>

/* 5x7 glyphs, one row per byte, bit 4 = leftmost column */
static const struct {
    char c;
    uint8_t rows[7];
} font[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}}, {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}}, {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
};

static unsigned rnd(unsigned n) {
    unsigned v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1) v = (unsigned)(uintptr_t)&v;
    return n ? v % n : v;
}

int fk__captcha_png(int w, int h, const char *text, void **png, size_t *n) {
    fk_image_t *img = NULL;
    if (fk_image_create(w, h, &img)) return -1;
    for (int y = 0; y < h; y++) /* light, uneven background */
        for (int x = 0; x < w; x++) {
            uint8_t *p = img->rgb + (size_t)y * img->stride + 3 * x;
            p[0] = (uint8_t)(225 + rnd(30));
            p[1] = (uint8_t)(225 + rnd(30));
            p[2] = (uint8_t)(225 + rnd(30));
        }
    for (int i = 0; i < 6; i++) { /* noise lines as chains of small rectangles */
        uint8_t col[3] = {(uint8_t)rnd(160), (uint8_t)rnd(160), (uint8_t)rnd(160)};
        int x0 = (int)rnd((unsigned)w), y0 = (int)rnd((unsigned)h), x1 = (int)rnd((unsigned)w), y1 = (int)rnd((unsigned)h);
        for (int t = 0; t <= 64; t++)
            fk_image_draw_rect(img, x0 + (x1 - x0) * t / 64, y0 + (y1 - y0) * t / 64, 2, 2, 0, col);
    }
    size_t len = strlen(text);
    int cell = w / (int)(len + 1);
    for (size_t k = 0; k < len; k++) {
        const uint8_t *rows = NULL;
        for (size_t f = 0; f < sizeof font / sizeof font[0]; f++)
            if (font[f].c == text[k]) rows = font[f].rows;
        if (!rows) continue;
        int scale = 4 + (int)rnd(2);
        int ox = cell / 2 + (int)k * cell + (int)rnd(6) - 3, oy = (h - 7 * scale) / 2 + (int)rnd(9) - 4;
        int shear = (int)rnd(5) - 2; /* pixels of horizontal shift per row */
        uint8_t col[3] = {(uint8_t)rnd(110), (uint8_t)rnd(110), (uint8_t)rnd(110)};
        for (int ry = 0; ry < 7; ry++)
            for (int rx = 0; rx < 5; rx++)
                if (rows[ry] & (0x10 >> rx))
                    for (int sy = 0; sy < scale; sy++)
                        for (int sx = 0; sx < scale; sx += 2)
                            fk_image_draw_point(img, ox + rx * scale + sx + shear * ry / 2 + (int)rnd(2),
                                                oy + ry * scale + sy, 1, col);
    }
    for (int i = 0; i < w * h / 25; i++) { /* speckles */
        uint8_t col[3] = {(uint8_t)rnd(256), (uint8_t)rnd(256), (uint8_t)rnd(256)};
        fk_image_draw_point(img, (int)rnd((unsigned)w), (int)rnd((unsigned)h), 0, col);
    }
    char err[128];
    int rc = fk_image_encode(img, FK_IMAGE_FORMAT_PNG, 0, png, n, err, sizeof err);
    fk_image_free(img);
    return rc ? -1 : 0;
}
