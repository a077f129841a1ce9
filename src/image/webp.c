/*
 * webp.c — WebP decoding and encoding with libwebp. Layer: image (called from image.c's dispatch).
 * Still images only, lossy or lossless; alpha is composited on white like PNG's. libwebp decodes straight
 * into our pixel buffer (external memory), so only its internal scratch escapes the fk__ allocator.
 */
#include "image/image.h"

#include <string.h>

#include <webp/decode.h>
#include <webp/encode.h>

static const char *status_text(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file (not enough data)";
    default: return "error";
    }
}

static int features(const uint8_t *bytes, size_t n, WebPBitstreamFeatures *f, char *err, size_t errsize) {
    VP8StatusCode s = WebPGetFeatures(bytes, n, f);
    if (s != VP8_STATUS_OK) {
        fk__seterr(err, errsize, "webp: %s", status_text(s));
        return s == VP8_STATUS_OUT_OF_MEMORY ? FK_ENOMEM : FK_EFORMAT;
    }
    if (f->has_animation) {
        fk__seterr(err, errsize, "webp: animated WebP is not supported");
        return FK_EFORMAT;
    }
    return FK_OK;
}

int fk__webp_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize) {
    WebPBitstreamFeatures f;
    int rc = features(bytes, n, &f, err, errsize);
    if (rc != FK_OK) return rc;
    info->stored_width = f.width;
    info->stored_height = f.height;
    info->has_alpha = f.has_alpha != 0;
    return FK_OK;
}

int fk__webp_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out, char *err,
                    size_t errsize) {
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        fk__seterr(err, errsize, "webp: library version mismatch");
        return FK_EINTERNAL;
    }
    int rc = features(bytes, n, &cfg.input, err, errsize);
    if (rc != FK_OK) return rc;
    int w = cfg.input.width, h = cfg.input.height;
    rc = fk__image_check_size(w > 0 ? (uint64_t)w : 0, h > 0 ? (uint64_t)h : 0, lim, "webp", err, errsize);
    if (rc != FK_OK) return rc;
    fk_image_t *img = fk__image_new(w, h);
    uint8_t *rgba = NULL;
    int alpha = cfg.input.has_alpha != 0;
    if (img && alpha) rgba = fk__malloc((size_t)w * 4 * (size_t)h);
    if (!img || (alpha && !rgba)) {
        fk__free(img);
        fk__seterr(err, errsize, "webp: out of memory for %dx%d pixels", w, h);
        return FK_ENOMEM;
    }
    cfg.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = alpha ? rgba : img->rgb;
    cfg.output.u.RGBA.stride = alpha ? w * 4 : img->stride;
    cfg.output.u.RGBA.size = alpha ? (size_t)w * 4 * (size_t)h : (size_t)img->stride * (size_t)h;
    VP8StatusCode s = WebPDecode(bytes, n, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* frees nothing of ours (external memory), only bookkeeping */
    if (s != VP8_STATUS_OK) {
        fk__free(rgba);
        fk__free(img);
        fk__seterr(err, errsize, "webp: %s", status_text(s));
        return s == VP8_STATUS_OUT_OF_MEMORY ? FK_ENOMEM : FK_EFORMAT;
    }
    if (alpha) {
        fk__rgba_over_white(rgba, (size_t)w * 4, img);
        fk__free(rgba);
    }
    *out = img;
    return FK_OK;
}

int fk__webp_encode(const fk_image_t *img, int quality, void **out, size_t *n, char *err, size_t errsize) {
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION) {
        fk__seterr(err, errsize, "webp: %dx%d exceeds WebP's maximum side of %d", img->width, img->height,
                   WEBP_MAX_DIMENSION);
        return FK_EINVAL;
    }
    uint8_t *data = NULL;
    size_t len = quality > 100 ? WebPEncodeLosslessRGB(img->rgb, img->width, img->height, img->stride, &data)
                               : WebPEncodeRGB(img->rgb, img->width, img->height, img->stride, (float)quality, &data);
    if (!len || !data) {
        WebPFree(data);
        fk__seterr(err, errsize, "webp: encoding failed");
        return FK_ENOMEM;
    }
    /* copy into our allocator so the caller frees with fk_free like every other library buffer */
    uint8_t *copy = fk__malloc(len);
    if (!copy) {
        WebPFree(data);
        fk__seterr(err, errsize, "webp: out of memory");
        return FK_ENOMEM;
    }
    memcpy(copy, data, len);
    WebPFree(data);
    *out = copy;
    *n = len;
    return FK_OK;
}
