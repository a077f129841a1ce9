/*
 * image.h — internal interface of the image layer (src/image): the per-format decoders and encoders that
 * image.c dispatches to, and the allocation helper every image-producing function shares. Sits on core;
 * used by face/ and the front-ends only through facekit.h.
 */
#ifndef FK_IMAGE_INTERNAL_H
#define FK_IMAGE_INTERNAL_H

#include "core/core.h"

#include <stdint.h>

/* Decode options with the defaults filled in. */
typedef struct fk__decode_limits {
    size_t max_file_bytes;
    uint64_t max_pixels;
    int max_side, min_side;
    int ignore_orientation;
} fk__decode_limits_t;

/* A new tightly packed image (stride = 3 * width) with uninitialised pixels; NULL when out of memory.
 * The caller has checked the sides (1..FK_IMAGE_MAX_DIMENSION). One block: header then pixels. */
fk_image_t *fk__image_new(int width, int height);

/* FK_OK when WIDTHxHEIGHT is within the limits, else FK_ELIMIT/FK_EFORMAT with a message. */
int fk__image_check_size(uint64_t width, uint64_t height, const fk__decode_limits_t *lim, const char *what,
                         char *err, size_t errsize);

/* Per-format decoders: BYTES is the whole file; the format has been detected by magic. */
int fk__jpeg_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out,
                    char *err, size_t errsize);
int fk__png_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out,
                   char *err, size_t errsize);
int fk__webp_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out,
                    char *err, size_t errsize);
int fk__bmp_decode(const uint8_t *bytes, size_t n, const fk__decode_limits_t *lim, fk_image_t **out,
                   char *err, size_t errsize);

/* Header-only readers for fk_image_probe (format and orientation fields are filled by the caller too). */
int fk__jpeg_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize);
int fk__png_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize);
int fk__webp_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize);
int fk__bmp_probe(const uint8_t *bytes, size_t n, fk_image_info_t *info, char *err, size_t errsize);

/* EXIF orientation (1..8) from the payload of a JPEG APP1 segment ("Exif\0\0" + TIFF); 0 when the
 * segment is not EXIF, has no orientation tag or is malformed. Bounds-checked against N. */
int fk__exif_orientation(const uint8_t *app1, size_t n);

/* Encoders: *OUT (fk__malloc'd, *N bytes) on FK_OK. */
int fk__jpeg_encode(const fk_image_t *img, int quality, void **out, size_t *n, char *err, size_t errsize);
int fk__png_encode(const fk_image_t *img, void **out, size_t *n, char *err, size_t errsize);
int fk__webp_encode(const fk_image_t *img, int quality, void **out, size_t *n, char *err, size_t errsize);

/* fk_image_resample with the plain C horizontal pass (the reference for the SIMD one; bit-identical). */
int fk__image_resample_ref(const fk_image_t *src, const fk_rectf_t *rect, const uint8_t fill[3], fk_image_t *dst);
/* fk_image_warp_affine with the plain C inner loop only (the AVX2 one is checked against it). */
int fk__image_warp_affine_ref(const fk_image_t *src, const float m[6], const uint8_t fill[3], fk_image_t *dst);

/* Composites 8-bit RGBA (row stride SRC_STRIDE) on white into an RGB image of the same size. */
void fk__rgba_over_white(const uint8_t *rgba, size_t src_stride, fk_image_t *dst);

#endif
