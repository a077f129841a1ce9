/*
 * bmp.c — a small, strict BMP reader (no library). Layer: image (called from image.c's dispatch).
 * Accepted: BITMAPINFOHEADER and its V2..V5 extensions (header sizes 40, 52, 56, 108, 124), one plane,
 * uncompressed (BI_RGB) 24- and 32-bit, 32-bit BI_BITFIELDS with the standard X8R8G8B8 masks, and 8-bit
 * palette images; bottom-up or top-down rows. Everything else (RLE, 1/4/16-bit, OS/2 headers, JPEG/PNG
 * inside BMP) is refused with a message naming what was found. The fourth byte of 32-bit pixels is ignored
 * (in BI_RGB it is "reserved" and often 0, so treating it as alpha would blank the picture).
 * Every offset is computed in 64 bits and checked against the input length before it is read.
 */
#include "image/image.h"

#include <string.h>

static uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned u16le(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

typedef struct bmp_header {
    int64_t width, height; /* height > 0 */
    int top_down;
    unsigned bpp;
    uint64_t pixels_at, stride, palette_at;
    unsigned colors; /* palette entries (8-bit only) */
} bmp_header_t;

static int parse(const uint8_t *b, size_t n, bmp_header_t *h, char *err, size_t errsize) {
    memset(h, 0, sizeof *h);
    if (n < 14 + 40) {
        fk__seterr(err, errsize, "bmp: file truncated in its header (%zu bytes)", n);
        return FK_EFORMAT;
    }
    uint32_t off = u32le(b + 10), hsize = u32le(b + 14);
    if (hsize == 12 || hsize == 16 || hsize == 64) {
        fk__seterr(err, errsize, "bmp: OS/2 bitmap headers (size %u) are not supported", hsize);
        return FK_EFORMAT;
    }
    if (hsize != 40 && hsize != 52 && hsize != 56 && hsize != 108 && hsize != 124) {
        fk__seterr(err, errsize, "bmp: unknown info header size %u", hsize);
        return FK_EFORMAT;
    }
    if ((uint64_t)14 + hsize > n) {
        fk__seterr(err, errsize, "bmp: file truncated in its info header");
        return FK_EFORMAT;
    }
    int32_t w = (int32_t)u32le(b + 18), hh = (int32_t)u32le(b + 22);
    unsigned planes = u16le(b + 26), bpp = u16le(b + 28);
    uint32_t comp = u32le(b + 30), used = u32le(b + 46);
    if (w <= 0 || hh == 0 || hh == INT32_MIN) {
        fk__seterr(err, errsize, "bmp: invalid size %dx%d", (int)w, (int)hh);
        return FK_EFORMAT;
    }
    if (planes != 1) {
        fk__seterr(err, errsize, "bmp: %u planes (must be 1)", planes);
        return FK_EFORMAT;
    }
    h->width = w;
    h->height = hh < 0 ? -(int64_t)hh : hh;
    h->top_down = hh < 0;
    h->bpp = bpp;
    int ok = 0;
    if (bpp == 24 && comp == 0) ok = 1;
    else if (bpp == 8 && comp == 0) ok = 1;
    else if (bpp == 32 && comp == 0) ok = 1;
    else if (bpp == 32 && comp == 3) {
        /* masks follow a 40-byte header or sit inside a V2+ header: at offset 54 either way */
        if (n < 66) {
            fk__seterr(err, errsize, "bmp: file truncated in its colour masks");
            return FK_EFORMAT;
        }
        uint32_t rm = u32le(b + 54), gm = u32le(b + 58), bm = u32le(b + 62);
        if (rm != 0x00FF0000u || gm != 0x0000FF00u || bm != 0x000000FFu) {
            fk__seterr(err, errsize, "bmp: 32-bit bitfields with masks %08x/%08x/%08x are not supported", rm, gm,
                       bm);
            return FK_EFORMAT;
        }
        ok = 1;
    }
    if (!ok) {
        static const char *names[] = {"BI_RGB", "BI_RLE8", "BI_RLE4", "BI_BITFIELDS", "BI_JPEG", "BI_PNG",
                                      "BI_ALPHABITFIELDS"};
        fk__seterr(err, errsize,
                   "bmp: %u bits per pixel with %s compression is not supported (uncompressed 24/32-bit and "
                   "8-bit palette only)",
                   bpp, comp < FK__ARRAY_LEN(names) ? names[comp] : "unknown");
        return FK_EFORMAT;
    }
    h->palette_at = 14 + (uint64_t)hsize + (hsize == 40 && comp == 3 ? 12 : 0);
    if (bpp == 8) {
        if (used > 256) {
            fk__seterr(err, errsize, "bmp: palette of %u colours (at most 256)", used);
            return FK_EFORMAT;
        }
        h->colors = used ? used : 256;
        if (h->palette_at + 4 * (uint64_t)h->colors > off) {
            fk__seterr(err, errsize, "bmp: palette overlaps the pixel data");
            return FK_EFORMAT;
        }
    }
    if (off < h->palette_at) {
        fk__seterr(err, errsize, "bmp: pixel data offset %u lies inside the headers", off);
        return FK_EFORMAT;
    }
    h->pixels_at = off;
    h->stride = ((uint64_t)h->width * bpp + 31) / 32 * 4;
    return FK_OK;
}

int fk__bmp_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize) {
    bmp_header_t h;
    int rc = parse(bytes, n, &h, err, errsize);
    if (rc != FK_OK) return rc;
    if (h.width > FK_IMAGE_MAX_DIMENSION || h.height > FK_IMAGE_MAX_DIMENSION) {
        fk__seterr(err, errsize, "bmp: %lldx%lld exceeds the maximum side %d", (long long)h.width,
                   (long long)h.height, FK_IMAGE_MAX_DIMENSION);
        return FK_ELIMIT;
    }
    info->stored_width = (int)h.width;
    info->stored_height = (int)h.height;
    return FK_OK;
}

int fk__bmp_decode(const uint8_t *b, size_t n, const fk__decode_limits_t *lim, fk_image_t **out, char *err,
                   size_t errsize) {
    bmp_header_t h;
    int rc = parse(b, n, &h, err, errsize);
    if (rc != FK_OK) return rc;
    rc = fk__image_check_size((uint64_t)h.width, (uint64_t)h.height, lim, "bmp", err, errsize);
    if (rc != FK_OK) return rc;
    /* sides are now <= 65535, so none of this can overflow 64 bits */
    if (h.pixels_at + h.stride * (uint64_t)h.height > n) {
        fk__seterr(err, errsize, "bmp: file truncated: %dx%d pixels need %llu bytes from offset %llu, have %zu",
                   (int)h.width, (int)h.height, (unsigned long long)(h.stride * (uint64_t)h.height),
                   (unsigned long long)h.pixels_at, n);
        return FK_EFORMAT;
    }
    int w = (int)h.width, ht = (int)h.height;
    fk_image_t *img = fk__image_new(w, ht);
    if (!img) {
        fk__seterr(err, errsize, "bmp: out of memory for %dx%d pixels", w, ht);
        return FK_ENOMEM;
    }
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    for (unsigned i = 0; i < h.colors; i++) {
        const uint8_t *e = b + h.palette_at + 4 * i; /* B, G, R, reserved */
        pal[i][0] = e[2];
        pal[i][1] = e[1];
        pal[i][2] = e[0];
    }
    for (int y = 0; y < ht; y++) {
        const uint8_t *s = b + h.pixels_at + h.stride * (uint64_t)(h.top_down ? y : ht - 1 - y);
        uint8_t *d = img->rgb + (size_t)y * img->stride;
        if (h.bpp == 8) {
            for (int x = 0; x < w; x++) {
                unsigned i = s[x];
                if (i >= h.colors) {
                    fk__free(img);
                    fk__seterr(err, errsize, "bmp: pixel (%d,%d) uses colour %u of a %u-colour palette", x, y, i,
                               h.colors);
                    return FK_EFORMAT;
                }
                d[3 * x] = pal[i][0];
                d[3 * x + 1] = pal[i][1];
                d[3 * x + 2] = pal[i][2];
            }
        } else {
            unsigned step = h.bpp / 8;
            for (int x = 0; x < w; x++) {
                d[3 * x] = s[step * x + 2];
                d[3 * x + 1] = s[step * x + 1];
                d[3 * x + 2] = s[step * x];
            }
        }
    }
    *out = img;
    return FK_OK;
}
