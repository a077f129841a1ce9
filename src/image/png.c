/*
 * png.c — PNG decoding and encoding with libpng. Layer: image (called from image.c's dispatch).
 * Every PNG flavour becomes 8-bit RGB: palette and low-bit gray are expanded, 16-bit samples are scaled
 * (rounded, not truncated), gray is replicated, and transparency (alpha channel or tRNS) is composited on
 * white. libpng's error callback longjmps back here, so a truncated or corrupt file is FK_EFORMAT with
 * libpng's message; its allocations go through fk__malloc so they are counted and failure-injectable.
 * As in jpeg.c, the setjmp sits in a function of its own and the clean-up path only reads a context that
 * its caller owns.
 */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

typedef struct png_ctx {
    char msg[200];
    int status;
    int oom; /* an allocation failed: whatever libpng then reports is FK_ENOMEM */
    const uint8_t *bytes;
    size_t n, pos;
    const fk__decode_limits_t *lim;
    fk_image_info_t *info;
    fk_image_t *img;
    uint8_t *rgba;     /* decoding with alpha: RGBA rows before compositing */
    png_bytep *rows;   /* row pointers */
    /* encoding */
    uint8_t *buf;
    size_t buf_cap, buf_len;
} png_ctx_t;

static void on_error(png_structp p, png_const_charp m) {
    png_ctx_t *ctx = png_get_error_ptr(p);
    if (!ctx->status) {
        snprintf(ctx->msg, sizeof ctx->msg, "png: %s", m);
        ctx->status = ctx->oom ? FK_ENOMEM : FK_EFORMAT;
    }
    png_longjmp(p, 1);
}

/* Warnings concern ancillary data (colour profiles, text chunks): the pixels are intact. */
static void on_warning(png_structp p, png_const_charp m) {
    (void)p;
    (void)m;
}

static png_voidp on_malloc(png_structp p, png_alloc_size_t n) {
    void *q = fk__malloc(n);
    if (!q) ((png_ctx_t *)png_get_mem_ptr(p))->oom = 1;
    return q;
}

static void on_free(png_structp p, png_voidp q) {
    (void)p;
    fk__free(q);
}

static void on_read(png_structp p, png_bytep data, png_size_t len) {
    png_ctx_t *ctx = png_get_io_ptr(p);
    if (len > ctx->n - ctx->pos) {
        snprintf(ctx->msg, sizeof ctx->msg, "png: file truncated (%zu bytes)", ctx->n);
        ctx->status = FK_EFORMAT;
        png_longjmp(p, 1);
    }
    memcpy(data, ctx->bytes + ctx->pos, len);
    ctx->pos += len;
}

static void nomem(png_structp p, png_ctx_t *ctx, const char *what) {
    snprintf(ctx->msg, sizeof ctx->msg, "png: out of memory (%s)", what);
    ctx->status = FK_ENOMEM;
    png_longjmp(p, 1);
}

static void decode_impl(png_ctx_t *ctx, png_structp p, png_infop info, char *err, size_t errsize) {
    if (setjmp(png_jmpbuf(p))) return;
    png_set_read_fn(p, ctx, on_read);
    /* sides and pixel count are checked by us after the header (FK_ELIMIT); libpng's own side limit is
     * opened to the format's maximum so that it does not preempt that check with a format error. Cap the
     * memory one ancillary chunk may take. */
    png_set_user_limits(p, 0x7fffffffu, 0x7fffffffu);
    png_set_chunk_malloc_max(p, 8u << 20);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int color = png_get_color_type(p, info), depth = png_get_bit_depth(p, info);
    int alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(p, info, PNG_INFO_tRNS);
    if (ctx->info) {
        ctx->info->stored_width = (int)w;
        ctx->info->stored_height = (int)h;
        ctx->info->has_alpha = alpha != 0;
        return;
    }
    int rc = fk__image_check_size(w, h, ctx->lim, "png", err, errsize);
    if (rc != FK_OK) {
        ctx->status = rc;
        return;
    }
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (png_get_valid(p, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(p);
    if (depth == 16) png_set_scale_16(p);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    int channels = png_get_channels(p, info);
    if (png_get_bit_depth(p, info) != 8 || channels != (alpha ? 4 : 3)) {
        snprintf(ctx->msg, sizeof ctx->msg, "png: unexpected layout after conversion (%d channels)", channels);
        ctx->status = FK_EFORMAT;
        return;
    }
    ctx->img = fk__image_new((int)w, (int)h);
    if (!ctx->img) nomem(p, ctx, "image");
    ctx->rows = fk__malloc(sizeof(png_bytep) * h);
    if (!ctx->rows) nomem(p, ctx, "rows");
    size_t stride = (size_t)w * 4;
    if (alpha) {
        ctx->rgba = fk__malloc(stride * h);
        if (!ctx->rgba) nomem(p, ctx, "alpha rows");
        for (png_uint_32 y = 0; y < h; y++) ctx->rows[y] = ctx->rgba + (size_t)y * stride;
    } else {
        for (png_uint_32 y = 0; y < h; y++) ctx->rows[y] = ctx->img->rgb + (size_t)y * ctx->img->stride;
    }
    png_read_image(p, ctx->rows);
    png_read_end(p, NULL); /* checks the trailing chunks too: a file cut after its pixels is still cut */
    if (alpha) fk__rgba_over_white(ctx->rgba, stride, ctx->img);
}

static int run(png_ctx_t *ctx, char *err, size_t errsize) {
    png_structp p = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning, ctx, on_malloc,
                                             on_free);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!info) {
        png_destroy_read_struct(p ? &p : NULL, NULL, NULL);
        fk__seterr(err, errsize, "png: out of memory");
        return FK_ENOMEM;
    }
    decode_impl(ctx, p, info, err, errsize);
    png_destroy_read_struct(&p, &info, NULL);
    fk__free(ctx->rows);
    fk__free(ctx->rgba);
    if (ctx->status != FK_OK) {
        if (ctx->msg[0]) fk__seterr(err, errsize, "%s", ctx->msg);
        fk__free(ctx->img);
        ctx->img = NULL;
        return ctx->status;
    }
    return FK_OK;
}

int fk__png_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out, char *err,
                   size_t errsize) {
    png_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.bytes = bytes;
    ctx.n = n;
    ctx.lim = lim;
    int rc = run(&ctx, err, errsize);
    if (rc == FK_OK) *out = ctx.img;
    return rc;
}

int fk__png_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize) {
    png_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.bytes = bytes;
    ctx.n = n;
    ctx.info = info;
    return run(&ctx, err, errsize);
}

/* ---- encoding -------------------------------------------------------------------------------------- */

static void on_write(png_structp p, png_bytep data, png_size_t len) {
    png_ctx_t *ctx = png_get_io_ptr(p);
    if (len > ctx->buf_cap - ctx->buf_len) {
        size_t ncap = ctx->buf_cap * 2;
        while (ncap - ctx->buf_len < len) ncap *= 2;
        uint8_t *nb = fk__realloc(ctx->buf, ncap);
        if (!nb) nomem(p, ctx, "encoded bytes");
        ctx->buf = nb;
        ctx->buf_cap = ncap;
    }
    memcpy(ctx->buf + ctx->buf_len, data, len);
    ctx->buf_len += len;
}

static void on_flush(png_structp p) { (void)p; }

static void encode_impl(png_ctx_t *ctx, png_structp p, png_infop info, const fk_image_t *img) {
    if (setjmp(png_jmpbuf(p))) return;
    png_set_write_fn(p, ctx, on_write, on_flush);
    /* level 6 with the default adaptive filters: the usual size/speed balance for photos */
    png_set_compression_level(p, 6);
    png_set_IHDR(p, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < img->height; y++) png_write_row(p, (png_const_bytep)(img->rgb + (size_t)y * img->stride));
    png_write_end(p, NULL);
}

int fk__png_encode(const fk_image_t *img, void **out, size_t *n, char *err, size_t errsize) {
    png_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.buf_cap = 4096 + (size_t)img->width * (size_t)img->height;
    ctx.buf = fk__malloc(ctx.buf_cap);
    if (!ctx.buf) {
        fk__seterr(err, errsize, "png: out of memory");
        return FK_ENOMEM;
    }
    png_structp p = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning, &ctx, on_malloc,
                                              on_free);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!info) {
        png_destroy_write_struct(p ? &p : NULL, NULL);
        fk__free(ctx.buf);
        fk__seterr(err, errsize, "png: out of memory");
        return FK_ENOMEM;
    }
    encode_impl(&ctx, p, info, img);
    png_destroy_write_struct(&p, &info);
    if (ctx.status != FK_OK) {
        fk__free(ctx.buf);
        fk__seterr(err, errsize, "%s", ctx.msg);
        return ctx.status;
    }
    *out = ctx.buf;
    *n = ctx.buf_len;
    return FK_OK;
}
