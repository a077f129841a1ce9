/*
 * draw.c — minimal drawing on RGB images for visual outputs (`facekit detect --draw`, debug snapshots):
 * rectangle outlines and filled dots, clipped to the image. Layer: image. No anti-aliasing: the marks are
 * for people looking at results, not for further processing.
 */
#include "image/image.h"

static int image_ok(const fk_image_t *img) {
    return img && img->rgb && img->width >= 1 && img->height >= 1 && img->stride >= 3 * img->width;
}

/* Fills [x0, x1) x [y0, y1), clipped. */
static void fill_box(fk_image_t *img, int64_t x0, int64_t y0, int64_t x1, int64_t y1, const uint8_t c[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->width) x1 = img->width;
    if (y1 > img->height) y1 = img->height;
    for (int64_t y = y0; y < y1; y++) {
        uint8_t *d = img->rgb + (size_t)y * img->stride;
        for (int64_t x = x0; x < x1; x++) {
            d[3 * x] = c[0];
            d[3 * x + 1] = c[1];
            d[3 * x + 2] = c[2];
        }
    }
}

int fk_image_draw_rect(fk_image_t *img, int x, int y, int w, int h, int thickness, const uint8_t rgb[3]) {
    if (!image_ok(img) || !rgb) return FK_EINVAL;
    if (w <= 0 || h <= 0) return FK_OK;
    int64_t t = thickness < 1 ? 1 : thickness;
    int64_t x0 = x, y0 = y, x1 = (int64_t)x + w, y1 = (int64_t)y + h;
    fill_box(img, x0, y0, x1, y0 + t, rgb); /* top */
    fill_box(img, x0, y1 - t, x1, y1, rgb); /* bottom */
    fill_box(img, x0, y0, x0 + t, y1, rgb); /* left */
    fill_box(img, x1 - t, y0, x1, y1, rgb); /* right */
    return FK_OK;
}

int fk_image_draw_point(fk_image_t *img, int x, int y, int radius, const uint8_t rgb[3]) {
    if (!image_ok(img) || !rgb) return FK_EINVAL;
    int64_t r = radius < 0 ? 0 : radius > 4096 ? 4096 : radius;
    for (int64_t dy = -r; dy <= r; dy++) {
        int64_t yy = (int64_t)y + dy;
        if (yy < 0 || yy >= img->height) continue;
        /* widest dx with dx^2 + dy^2 <= r^2 + r (the +r rounds the disc's outline) */
        int64_t dx = 0;
        while ((dx + 1) * (dx + 1) + dy * dy <= r * r + r) dx++;
        fill_box(img, (int64_t)x - dx, yy, (int64_t)x + dx + 1, yy + 1, rgb);
    }
    return FK_OK;
}
