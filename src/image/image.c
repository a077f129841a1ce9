/*
 * image.c — the image type and the front door of the image layer: allocation, format detection by magic
 * bytes, the decode/probe/encode dispatch to the per-format files (jpeg.c, png.c, webp.c, bmp.c), reading
 * and writing files, and the limits that stop decompression bombs before any pixel memory is allocated.
 * Layer: image, on top of core. The face pipeline and the front-ends use it through facekit.h.
 */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header sits in the first 64 bytes of the block so the pixels keep the allocator's 64-byte alignment. */
#define FK__IMAGE_HEADER 64

fk_image_t *fk__image_new(int width, int height) {
    size_t stride = (size_t)width * 3;
    fk_image_t *img = fk__malloc(FK__IMAGE_HEADER + stride * (size_t)height);
    if (!img) return NULL;
    img->width = width;
    img->height = height;
    img->stride = (int)stride;
    img->rgb = (uint8_t *)img + FK__IMAGE_HEADER;
    return img;
}

int fk_image_create(int width, int height, fk_image_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (width < 1 || height < 1 || width > FK_IMAGE_MAX_DIMENSION || height > FK_IMAGE_MAX_DIMENSION)
        return FK_EINVAL;
    fk_image_t *img = fk__image_new(width, height);
    if (!img) return FK_ENOMEM;
    memset(img->rgb, 0, (size_t)img->stride * (size_t)height);
    *out = img;
    return FK_OK;
}

static int image_valid(const fk_image_t *img) {
    return img && img->rgb && img->width >= 1 && img->height >= 1 && img->width <= FK_IMAGE_MAX_DIMENSION &&
           img->height <= FK_IMAGE_MAX_DIMENSION && img->stride >= 3 * img->width;
}

int fk_image_clone(const fk_image_t *img, fk_image_t **out) {
    if (!out) return FK_EINVAL;
    *out = NULL;
    if (!image_valid(img)) return FK_EINVAL;
    fk_image_t *c = fk__image_new(img->width, img->height);
    if (!c) return FK_ENOMEM;
    for (int y = 0; y < img->height; y++)
        memcpy(c->rgb + (size_t)y * c->stride, img->rgb + (size_t)y * img->stride, (size_t)c->stride);
    *out = c;
    return FK_OK;
}

void fk_image_free(fk_image_t *img) { fk__free(img); }

fk_image_format_t fk_image_detect_format(const void *bytes, size_t n) {
    const uint8_t *b = bytes;
    if (!b) return FK_IMAGE_FORMAT_UNKNOWN;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FK_IMAGE_FORMAT_JPEG;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return FK_IMAGE_FORMAT_PNG;
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return FK_IMAGE_FORMAT_WEBP;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FK_IMAGE_FORMAT_BMP;
    return FK_IMAGE_FORMAT_UNKNOWN;
}

const char *fk_image_format_name(fk_image_format_t format) {
    switch (format) {
    case FK_IMAGE_FORMAT_JPEG: return "jpeg";
    case FK_IMAGE_FORMAT_PNG: return "png";
    case FK_IMAGE_FORMAT_WEBP: return "webp";
    case FK_IMAGE_FORMAT_BMP: return "bmp";
    default: return "unknown";
    }
}

/* Names a few formats we do not read, so the message says what the file is rather than just "unknown". */
static void unknown_format_error(const uint8_t *b, size_t n, char *err, size_t errsize) {
    const char *what = NULL;
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) what = "GIF";
    else if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) what = "TIFF";
    else if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) what = "HEIF/AVIF/MP4";
    if (what)
        fk__seterr(err, errsize, "%s images are not supported (JPEG, PNG, WebP and BMP are)", what);
    else if (n == 0)
        fk__seterr(err, errsize, "empty input: not an image");
    else
        fk__seterr(err, errsize, "unrecognised image format (the first bytes are not JPEG, PNG, WebP or BMP)");
}

static void resolve_limits(const fk_image_decode_options_t *opt, fk__decode_limits_t *lim) {
    memset(lim, 0, sizeof *lim);
    lim->max_file_bytes = FK_IMAGE_DEFAULT_MAX_FILE_BYTES;
    lim->max_pixels = FK_IMAGE_DEFAULT_MAX_PIXELS;
    if (!opt) return;
    if (opt->max_file_bytes) lim->max_file_bytes = opt->max_file_bytes;
    if (opt->max_pixels) lim->max_pixels = opt->max_pixels;
    lim->max_side = opt->max_side > 0 ? opt->max_side : 0;
    lim->min_side = opt->min_side > 0 ? opt->min_side : 0;
    lim->ignore_orientation = opt->ignore_orientation != 0;
}

int fk__image_check_size(uint64_t width, uint64_t height, const fk__decode_limits_t *lim, const char *what,
                         char *err, size_t errsize) {
    if (width == 0 || height == 0) {
        fk__seterr(err, errsize, "%s: header gives an empty image (%llux%llu)", what,
                   (unsigned long long)width, (unsigned long long)height);
        return FK_EFORMAT;
    }
    if (width > FK_IMAGE_MAX_DIMENSION || height > FK_IMAGE_MAX_DIMENSION) {
        fk__seterr(err, errsize, "%s: %llux%llu pixels: a side exceeds %d", what, (unsigned long long)width,
                   (unsigned long long)height, FK_IMAGE_MAX_DIMENSION);
        return FK_ELIMIT;
    }
    if (width * height > lim->max_pixels) {
        fk__seterr(err, errsize, "%s: %llux%llu = %llu pixels exceeds the limit of %llu", what,
                   (unsigned long long)width, (unsigned long long)height,
                   (unsigned long long)(width * height), (unsigned long long)lim->max_pixels);
        return FK_ELIMIT;
    }
    return FK_OK;
}

int fk_image_decode(const void *bytes, size_t n, const fk_image_decode_options_t *opt, fk_image_t **out,
                    char *err, size_t errsize) {
    if (out) *out = NULL;
    if (!out || (!bytes && n)) {
        fk__seterr(err, errsize, "fk_image_decode: NULL argument");
        return FK_EINVAL;
    }
    fk__decode_limits_t lim;
    resolve_limits(opt, &lim);
    if (n > lim.max_file_bytes) {
        fk__seterr(err, errsize, "image of %zu bytes exceeds the limit of %zu bytes", n, lim.max_file_bytes);
        return FK_ELIMIT;
    }
    const uint8_t *b = bytes;
    switch (fk_image_detect_format(b, n)) {
    case FK_IMAGE_FORMAT_JPEG: return fk__jpeg_decode(b, n, &lim, out, err, errsize);
    case FK_IMAGE_FORMAT_PNG: return fk__png_decode(b, n, &lim, out, err, errsize);
    case FK_IMAGE_FORMAT_WEBP: return fk__webp_decode(b, n, &lim, out, err, errsize);
    case FK_IMAGE_FORMAT_BMP: return fk__bmp_decode(b, n, &lim, out, err, errsize);
    default: unknown_format_error(b, n, err, errsize); return FK_EFORMAT;
    }
}

int fk_image_probe(const void *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize) {
    if (!info || (!bytes && n)) {
        fk__seterr(err, errsize, "fk_image_probe: NULL argument");
        return FK_EINVAL;
    }
    memset(info, 0, sizeof *info);
    const uint8_t *b = bytes;
    fk_image_format_t f = fk_image_detect_format(b, n);
    info->format = f;
    info->orientation = 1;
    int rc;
    switch (f) {
    case FK_IMAGE_FORMAT_JPEG: rc = fk__jpeg_probe(b, n, info, err, errsize); break;
    case FK_IMAGE_FORMAT_PNG: rc = fk__png_probe(b, n, info, err, errsize); break;
    case FK_IMAGE_FORMAT_WEBP: rc = fk__webp_probe(b, n, info, err, errsize); break;
    case FK_IMAGE_FORMAT_BMP: rc = fk__bmp_probe(b, n, info, err, errsize); break;
    default: unknown_format_error(b, n, err, errsize); return FK_EFORMAT;
    }
    if (rc != FK_OK) return rc;
    if (info->orientation < 1 || info->orientation > 8) info->orientation = 1;
    int swap = info->orientation >= 5;
    info->width = swap ? info->stored_height : info->stored_width;
    info->height = swap ? info->stored_width : info->stored_height;
    return FK_OK;
}

/* Reads a whole file into an fk__malloc'd buffer, refusing files larger than LIMIT before reading them. */
static int read_file(const char *path, size_t limit, uint8_t **out, size_t *n, char *err, size_t errsize) {
    *out = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fk__seterr(err, errsize, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? FK_ENOTFOUND : FK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fk__seterr(err, errsize, "%s: %s", path, strerror(errno));
        close(fd);
        return FK_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        fk__seterr(err, errsize, "%s: is a directory", path);
        close(fd);
        return FK_EIO;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > limit) {
        fk__seterr(err, errsize, "%s: %llu bytes exceeds the image size limit of %zu bytes", path,
                   (unsigned long long)st.st_size, limit);
        close(fd);
        return FK_ELIMIT;
    }
    /* Regular files are read in one go; pipes and devices grow the buffer up to LIMIT + 1 bytes. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536, len = 0;
    uint8_t *buf = fk__malloc(cap);
    if (!buf) {
        close(fd);
        fk__seterr(err, errsize, "%s: out of memory", path);
        return FK_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > limit) break;
            size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            uint8_t *nb = fk__realloc(buf, ncap);
            if (!nb) {
                fk__free(buf);
                close(fd);
                fk__seterr(err, errsize, "%s: out of memory", path);
                return FK_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            fk__seterr(err, errsize, "%s: %s", path, strerror(errno));
            fk__free(buf);
            close(fd);
            return FK_EIO;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (len > limit) {
        fk__seterr(err, errsize, "%s: more than %zu bytes: exceeds the image size limit", path, limit);
        fk__free(buf);
        return FK_ELIMIT;
    }
    *out = buf;
    *n = len;
    return FK_OK;
}

int fk_image_load(const char *path, const fk_image_decode_options_t *opt, fk_image_t **out, char *err,
                  size_t errsize) {
    if (out) *out = NULL;
    if (!path || !out) {
        fk__seterr(err, errsize, "fk_image_load: NULL argument");
        return FK_EINVAL;
    }
    fk__decode_limits_t lim;
    resolve_limits(opt, &lim);
    uint8_t *buf;
    size_t n;
    int rc = read_file(path, lim.max_file_bytes, &buf, &n, err, errsize);
    if (rc != FK_OK) return rc;
    char sub[256] = "";
    rc = fk_image_decode(buf, n, opt, out, sub, sizeof sub);
    fk__free(buf);
    if (rc != FK_OK) fk__seterr(err, errsize, "%s: %s", path, sub);
    return rc;
}

int fk_image_encode(const fk_image_t *img, fk_image_format_t format, int quality, void **out, size_t *n,
                    char *err, size_t errsize) {
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!image_valid(img) || !out || !n) {
        fk__seterr(err, errsize, "fk_image_encode: invalid image or NULL argument");
        return FK_EINVAL;
    }
    if (quality < 0 || quality > 101 || (quality == 101 && format != FK_IMAGE_FORMAT_WEBP)) {
        fk__seterr(err, errsize, "quality %d out of range (1..100, 0 = default)", quality);
        return FK_EINVAL;
    }
    if (quality == 0) quality = 90;
    switch (format) {
    case FK_IMAGE_FORMAT_JPEG: return fk__jpeg_encode(img, quality, out, n, err, errsize);
    case FK_IMAGE_FORMAT_PNG: return fk__png_encode(img, out, n, err, errsize);
    case FK_IMAGE_FORMAT_WEBP: return fk__webp_encode(img, quality, out, n, err, errsize);
    default:
        fk__seterr(err, errsize, "cannot encode %s (JPEG, PNG and WebP can be written)",
                   fk_image_format_name(format));
        return FK_EUNSUPPORTED;
    }
}

static fk_image_format_t format_from_path(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return FK_IMAGE_FORMAT_UNKNOWN;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")) return FK_IMAGE_FORMAT_JPEG;
    if (!strcasecmp(dot, ".png")) return FK_IMAGE_FORMAT_PNG;
    if (!strcasecmp(dot, ".webp")) return FK_IMAGE_FORMAT_WEBP;
    return FK_IMAGE_FORMAT_UNKNOWN;
}

int fk_image_save(const fk_image_t *img, const char *path, int quality, char *err, size_t errsize) {
    if (!path) {
        fk__seterr(err, errsize, "fk_image_save: NULL path");
        return FK_EINVAL;
    }
    fk_image_format_t f = format_from_path(path);
    if (f == FK_IMAGE_FORMAT_UNKNOWN) {
        fk__seterr(err, errsize, "%s: cannot tell the format from the extension (.jpg, .jpeg, .png, .webp)",
                   path);
        return FK_EINVAL;
    }
    void *data;
    size_t n;
    int rc = fk_image_encode(img, f, quality, &data, &n, err, errsize);
    if (rc != FK_OK) return rc;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        fk__seterr(err, errsize, "%s: %s", path, strerror(errno));
        fk__free(data);
        return FK_EIO;
    }
    size_t w = fwrite(data, 1, n, fp);
    int close_rc = fclose(fp);
    fk__free(data);
    if (w != n || close_rc != 0) {
        fk__seterr(err, errsize, "%s: write failed: %s", path, strerror(errno));
        return FK_EIO;
    }
    return FK_OK;
}

void fk__rgba_over_white(const uint8_t *rgba, size_t src_stride, fk_image_t *dst) {
    for (int y = 0; y < dst->height; y++) {
        const uint8_t *s = rgba + (size_t)y * src_stride;
        uint8_t *d = dst->rgb + (size_t)y * dst->stride;
        for (int x = 0; x < dst->width; x++) {
            /* c*a/255 + 255 - a, rounded: exact for a = 0 (white) and a = 255 (the colour). */
            unsigned a = s[4 * x + 3], inv = 255 - a;
            for (int c = 0; c < 3; c++) {
                unsigned t = s[4 * x + c] * a + 255 * inv + 128;
                d[3 * x + c] = (uint8_t)((t + (t >> 8)) >> 8);
            }
        }
    }
}
