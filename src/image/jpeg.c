/*
 * jpeg.c — JPEG decoding and encoding with libjpeg-turbo's libjpeg API, plus the EXIF orientation reader.
 * Layer: image (called from image.c's dispatch). libjpeg reports errors by calling error_exit, which must
 * not return: ours longjmps back to the decode function, so a corrupt file becomes FK_EFORMAT with libjpeg's
 * message. Warnings that mean lost or damaged data (premature end of file, bad Huffman code, ...) are
 * turned into the same error, so a truncated photo is never reported as a good image.
 * The setjmp lives in a function of its own whose state sits in a caller-owned context, so nothing the
 * clean-up path reads is a local modified between setjmp and longjmp.
 */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* A progressive file may contain thousands of tiny scans that each cost a full pass: cap them
 * (libjpeg-turbo's own tools use the same guard against this denial of service). */
#define FK__JPEG_MAX_SCANS 1000

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us &pub */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 32];
    int status; /* status to report after the longjmp */
    /* decoding */
    const uint8_t *bytes;
    size_t n;
    const fk__decode_limits_t *lim;
    fk_image_t *img;
    int orientation;
    fk_image_info_t *info;
    /* encoding */
    const fk_image_t *src;
    int quality;
    uint8_t *buf;
    size_t buf_cap, buf_len;
} jpeg_ctx_t;

static void on_error_exit(j_common_ptr c) {
    jpeg_ctx_t *ctx = (jpeg_ctx_t *)c->err;
    char m[JMSG_LENGTH_MAX];
    c->err->format_message(c, m);
    snprintf(ctx->msg, sizeof ctx->msg, "jpeg: %s", m);
    if (!ctx->status) ctx->status = c->err->msg_code == JERR_OUT_OF_MEMORY ? FK_ENOMEM : FK_EFORMAT;
    longjmp(ctx->jb, 1);
}

/* Warnings (level -1) that only describe metadata are counted and ignored; every other warning means the
 * pixels are damaged or missing and becomes an error. Trace messages (level >= 0) are dropped. */
static void on_emit_message(j_common_ptr c, int level) {
    if (level >= 0) return;
    switch (c->err->msg_code) {
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
        c->err->num_warnings++;
        return;
    case JWRN_EXTRANEOUS_DATA:
        /* padding some cameras leave between the last scan and EOI is harmless: every scan ended at its
         * marker. Anywhere else it means the entropy data ran into garbage. */
        if (c->err->msg_parm.i[1] == JPEG_EOI) {
            c->err->num_warnings++;
            return;
        }
        c->err->error_exit(c);
        return;
    default:
        c->err->error_exit(c);
    }
}

static void on_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > FK__JPEG_MAX_SCANS) {
        jpeg_ctx_t *ctx = (jpeg_ctx_t *)c->err;
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: more than %d progressive scans (corrupt or hostile file)",
                 FK__JPEG_MAX_SCANS);
        ctx->status = FK_EFORMAT;
        longjmp(ctx->jb, 1);
    }
}

static void init_errors(jpeg_ctx_t *ctx) {
    jpeg_std_error(&ctx->pub);
    ctx->pub.error_exit = on_error_exit;
    ctx->pub.emit_message = on_emit_message;
    ctx->progress.progress_monitor = on_progress;
}

/* ---- EXIF ------------------------------------------------------------------------------------------ */

static unsigned rd16(const uint8_t *p, int big) { return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0]; }
static uint32_t rd32(const uint8_t *p, int big) {
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int fk__exif_orientation(const uint8_t *app1, size_t n) {
    if (!app1 || n < 6 + 8 || memcmp(app1, "Exif\0\0", 6) != 0) return 0;
    const uint8_t *t = app1 + 6; /* TIFF header: byte order, 42, offset of IFD0 (from the TIFF start) */
    size_t tn = n - 6;
    int big;
    if (t[0] == 'I' && t[1] == 'I') big = 0;
    else if (t[0] == 'M' && t[1] == 'M') big = 1;
    else return 0;
    if (rd16(t + 2, big) != 42) return 0;
    uint64_t ifd = rd32(t + 4, big);
    if (ifd < 8 || ifd + 2 > tn) return 0;
    unsigned count = rd16(t + ifd, big);
    for (unsigned i = 0; i < count; i++) {
        uint64_t e = ifd + 2 + 12 * (uint64_t)i;
        if (e + 12 > tn) return 0;
        if (rd16(t + e, big) != 0x0112) continue;
        unsigned type = rd16(t + e + 2, big);
        uint32_t cnt = rd32(t + e + 4, big);
        if (cnt < 1) return 0;
        uint32_t v;
        if (type == 3) v = rd16(t + e + 8, big);       /* SHORT, as the standard says */
        else if (type == 4) v = rd32(t + e + 8, big);  /* LONG: seen from some writers */
        else return 0;
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}

static int find_orientation(j_decompress_ptr d) {
    for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1) continue;
        int o = fk__exif_orientation(m->data, m->data_length);
        if (o) return o;
    }
    return 1;
}

/* ---- decoding -------------------------------------------------------------------------------------- */

/* The largest of 1/8, 1/4, 1/2 that keeps the requested sides; 1 when there is no hint. */
static int choose_denom(unsigned w, unsigned h, const fk__decode_limits_t *lim) {
    if (!lim->max_side && !lim->min_side) return 1;
    for (int d = 8; d >= 2; d /= 2) {
        unsigned sw = (w + d - 1) / d, sh = (h + d - 1) / d;
        unsigned lo = sw < sh ? sw : sh, hi = sw < sh ? sh : sw;
        if ((!lim->max_side || hi >= (unsigned)lim->max_side) && (!lim->min_side || lo >= (unsigned)lim->min_side))
            return d;
    }
    return 1;
}

/* CMYK as libjpeg returns it. Adobe applications store it inverted (0 = full ink); others do not. */
static void cmyk_row_to_rgb(const uint8_t *s, uint8_t *d, int w, int inverted) {
    for (int x = 0; x < w; x++) {
        unsigned c = s[4 * x], m = s[4 * x + 1], y = s[4 * x + 2], k = s[4 * x + 3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        /* now 255 = no ink: R = (1 - C)(1 - K) */
        unsigned r = c * k + 128, g = m * k + 128, b = y * k + 128;
        d[3 * x] = (uint8_t)((r + (r >> 8)) >> 8);
        d[3 * x + 1] = (uint8_t)((g + (g >> 8)) >> 8);
        d[3 * x + 2] = (uint8_t)((b + (b >> 8)) >> 8);
    }
}

static void decode_impl(jpeg_ctx_t *ctx, j_decompress_ptr d, char *err, size_t errsize) {
    if (setjmp(ctx->jb)) return;
    jpeg_create_decompress(d);
    d->progress = &ctx->progress;
    jpeg_mem_src(d, ctx->bytes, (unsigned long)ctx->n);
    jpeg_save_markers(d, JPEG_APP0 + 1, 0xFFFF);
    if (jpeg_read_header(d, TRUE) != JPEG_HEADER_OK) {
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: no image in the file (tables only)");
        ctx->status = FK_EFORMAT;
        return;
    }
    if (ctx->info) { /* probe: the header is all we wanted */
        ctx->info->stored_width = (int)d->image_width;
        ctx->info->stored_height = (int)d->image_height;
        ctx->info->orientation = find_orientation(d);
        return;
    }
    int rc = fk__image_check_size(d->image_width, d->image_height, ctx->lim, "jpeg", err, errsize);
    if (rc != FK_OK) {
        ctx->status = rc;
        ctx->msg[0] = 0; /* the message is already in ERR */
        return;
    }
    ctx->orientation = ctx->lim->ignore_orientation ? 1 : find_orientation(d);

    int cmyk = d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK;
    if (cmyk) {
        d->out_color_space = JCS_CMYK;
    } else if (d->num_components == 1 || d->num_components == 3) {
        d->out_color_space = JCS_RGB; /* libjpeg-turbo expands gray to RGB itself */
    } else {
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: %d colour components are not supported", d->num_components);
        ctx->status = FK_EFORMAT;
        return;
    }
    d->scale_num = 1;
    d->scale_denom = (unsigned)choose_denom(d->image_width, d->image_height, ctx->lim);
    jpeg_start_decompress(d);
    if (d->output_width < 1 || d->output_height < 1 || d->output_components != (cmyk ? 4 : 3)) {
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: unexpected output layout");
        ctx->status = FK_EFORMAT;
        return;
    }
    ctx->img = fk__image_new((int)d->output_width, (int)d->output_height);
    if (!ctx->img) {
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: out of memory for %ux%u pixels", d->output_width,
                 d->output_height);
        ctx->status = FK_ENOMEM;
        return;
    }
    fk_image_t *img = ctx->img;
    if (cmyk) {
        /* pool memory: released by jpeg_destroy even when an error longjmps out */
        JSAMPARRAY row = d->mem->alloc_sarray((j_common_ptr)d, JPOOL_IMAGE, d->output_width * 4, 1);
        int inverted = d->saw_Adobe_marker;
        while (d->output_scanline < d->output_height) {
            unsigned y = d->output_scanline;
            if (jpeg_read_scanlines(d, row, 1) != 1) break;
            cmyk_row_to_rgb(row[0], img->rgb + (size_t)y * img->stride, img->width, inverted);
        }
    } else {
        JSAMPROW rows[8];
        while (d->output_scanline < d->output_height) {
            unsigned y = d->output_scanline, k = 0;
            for (; k < 8 && y + k < d->output_height; k++) rows[k] = img->rgb + (size_t)(y + k) * img->stride;
            if (jpeg_read_scanlines(d, rows, k) == 0) break;
        }
    }
    if (d->output_scanline != d->output_height) {
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: image data ended early");
        ctx->status = FK_EFORMAT;
        return;
    }
    jpeg_finish_decompress(d);
}

/* One pass of decode_impl over BYTES: the header only when INFO is given (a probe), else the pixels into
 * CTX->img. Returns the status with the message in ERR. */
static int run_decompress(jpeg_ctx_t *ctx, const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim,
                          fk_image_info_t *info, char *err, size_t errsize) {
    struct jpeg_decompress_struct d;
    memset(ctx, 0, sizeof *ctx);
    memset(&d, 0, sizeof d);
    init_errors(ctx);
    d.err = &ctx->pub;
    ctx->bytes = bytes;
    ctx->n = n;
    ctx->lim = lim;
    ctx->info = info;
    ctx->orientation = 1;
    decode_impl(ctx, &d, err, errsize);
    jpeg_destroy_decompress(&d);
    if (ctx->status != FK_OK && ctx->msg[0]) fk__seterr(err, errsize, "%s", ctx->msg);
    return ctx->status;
}

int fk__jpeg_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out, char *err,
                    size_t errsize) {
    jpeg_ctx_t ctx;
    if (run_decompress(&ctx, bytes, n, lim, NULL, err, errsize) != FK_OK) {
        fk__free(ctx.img);
        return ctx.status;
    }
    if (ctx.orientation != 1) {
        fk_image_t *upright;
        int rc = fk_image_orient(ctx.img, ctx.orientation, &upright);
        fk__free(ctx.img);
        if (rc != FK_OK) {
            fk__seterr(err, errsize, "jpeg: out of memory applying the EXIF orientation");
            return rc;
        }
        ctx.img = upright;
    }
    *out = ctx.img;
    return FK_OK;
}

int fk__jpeg_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize) {
    jpeg_ctx_t ctx;
    return run_decompress(&ctx, bytes, n, NULL, info, err, errsize);
}

/* ---- encoding -------------------------------------------------------------------------------------- */

/* Destination manager writing into a growing fk__ buffer (libjpeg's own jpeg_mem_dest uses malloc, which
 * would escape the allocator's accounting and fault injection). */
static void dest_init(j_compress_ptr c) {
    jpeg_ctx_t *ctx = (jpeg_ctx_t *)c->err;
    c->dest->next_output_byte = ctx->buf;
    c->dest->free_in_buffer = ctx->buf_cap;
}

static boolean dest_grow(j_compress_ptr c) {
    jpeg_ctx_t *ctx = (jpeg_ctx_t *)c->err;
    size_t ncap = ctx->buf_cap * 2;
    uint8_t *nb = fk__realloc(ctx->buf, ncap);
    if (!nb) {
        ctx->status = FK_ENOMEM;
        snprintf(ctx->msg, sizeof ctx->msg, "jpeg: out of memory for the encoded bytes");
        longjmp(ctx->jb, 1);
    }
    ctx->buf = nb;
    c->dest->next_output_byte = nb + ctx->buf_cap; /* the whole old buffer is full when this is called */
    c->dest->free_in_buffer = ncap - ctx->buf_cap;
    ctx->buf_cap = ncap;
    return TRUE;
}

static void dest_term(j_compress_ptr c) {
    jpeg_ctx_t *ctx = (jpeg_ctx_t *)c->err;
    ctx->buf_len = ctx->buf_cap - c->dest->free_in_buffer;
}

static void encode_impl(jpeg_ctx_t *ctx, j_compress_ptr c, struct jpeg_destination_mgr *dest) {
    if (setjmp(ctx->jb)) return;
    jpeg_create_compress(c);
    dest->init_destination = dest_init;
    dest->empty_output_buffer = dest_grow;
    dest->term_destination = dest_term;
    c->dest = dest;
    const fk_image_t *img = ctx->src;
    c->image_width = (JDIMENSION)img->width;
    c->image_height = (JDIMENSION)img->height;
    c->input_components = 3;
    c->in_color_space = JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, ctx->quality, TRUE);
    c->optimize_coding = TRUE;
    if (ctx->quality >= 90) { /* full-resolution chroma: snapshots and ID photos keep colour edges */
        c->comp_info[0].h_samp_factor = 1;
        c->comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(c, TRUE);
    while (c->next_scanline < c->image_height) {
        JSAMPROW row = (JSAMPROW)(img->rgb + (size_t)c->next_scanline * img->stride);
        jpeg_write_scanlines(c, &row, 1);
    }
    jpeg_finish_compress(c);
}

int fk__jpeg_encode(const fk_image_t *img, int quality, void **out, size_t *n, char *err, size_t errsize) {
    jpeg_ctx_t ctx;
    struct jpeg_compress_struct c;
    struct jpeg_destination_mgr dest;
    memset(&ctx, 0, sizeof ctx);
    memset(&c, 0, sizeof c);
    memset(&dest, 0, sizeof dest);
    init_errors(&ctx);
    c.err = &ctx.pub;
    ctx.src = img;
    ctx.quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    ctx.buf_cap = 4096 + (size_t)img->width * (size_t)img->height / 4;
    ctx.buf = fk__malloc(ctx.buf_cap);
    if (!ctx.buf) {
        fk__seterr(err, errsize, "jpeg: out of memory");
        return FK_ENOMEM;
    }
    encode_impl(&ctx, &c, &dest);
    jpeg_destroy_compress(&c);
    if (ctx.status != FK_OK) {
        fk__free(ctx.buf);
        fk__seterr(err, errsize, "%s", ctx.msg);
        return ctx.status;
    }
    *out = ctx.buf;
    *n = ctx.buf_len;
    return FK_OK;
}
