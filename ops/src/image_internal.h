/*
 * Internals shared by the image ops: the decoders' common entry (header first, then a hook
 * that picks the region, then pixels), and the resampler every resize, crop-resize and the
 * fused path run through. Not part of the public API; tests may include it.
 *
 * Threading: nothing here has state beyond its arguments.
 */
#ifndef SLUICE_IMAGE_INTERNAL_H
#define SLUICE_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core_internal.h"
#include "sluice/image.h"

/* Called by a decoder once the header is read, before any pixel is decoded: fills *opts
 * (crop window, minimum size) from what the header says. Returns 0 or an error (message set). */
typedef int (*sl__region_fn)(void *user, const sl_image_info *info, sl_image_decode_opts *opts,
                             sl_errmsg *em);

/* What a decoder hands back: uint8 (h, w, 3) in `out`, and where the requested region lies in
 * it (d->rx.. in out's pixel coordinates). JPEG decodes only the whole pixels covering the
 * region, and with a region callback (the fused path, whose resampler clips its taps to the
 * region itself) hands back libjpeg's whole column window, decoded straight into `out` with no
 * row copy; PNG decodes the whole image (d->rx = crop.x and so on). */
int sl__jpeg_decode(const void *data, size_t len, const sl_image_decode_opts *opts,
                    sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                    sl_errmsg *em);
int sl__png_decode(const void *data, size_t len, const sl_image_decode_opts *opts,
                   sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                   sl_errmsg *em);
int sl__jpeg_probe(const void *data, size_t len, sl_image_info *info, sl_errmsg *em);
int sl__png_probe(const void *data, size_t len, sl_image_info *info, sl_errmsg *em);

/* Dispatch on the magic bytes to the decoders above; unknown and unsupported formats get their
 * error here. */
int sl__image_decode_any(const void *data, size_t len, const sl_image_decode_opts *opts,
                         sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                         sl_errmsg *em);

/* Checks a decode region against the image and returns 0 or SL_ERR_RANGE. */
int sl__image_check_rect(const sl_image_rect *r, int width, int height, sl_errmsg *em);

/* How the resampler writes each output value v (a pixel level, 0..255 scale): first
 * q = round(v) clamped to 0..255 (the uint8 image torchvision's PIL path would hold), then
 *   u8: q;  f32/f16: q * a[c] + b[c]. */
typedef struct sl__resample_out {
    sl_dtype dtype; /* U8, F32 or F16 */
    sl_image_layout layout;
    float a[4], b[4];
    void *data; /* (oh, ow, c) or (c, oh, ow) elements of dtype */
    int f16c;   /* set by sl__resample: the CPU has F16C */
} sl__resample_out;

/* Resample the region (rx, ry, rw, rh) of a uint8 (sh, sw, c) image with row stride `stride`
 * bytes to ow x oh, mirrored when flip, into o. The filter is the antialiased bilinear
 * described at sl_image_resized_crop; taps are limited to the whole pixels covering the region.
 * Allocates its tap tables and one row of scratch. */
int sl__resample(const uint8_t *src, int sw, int sh, size_t stride, int c, double rx, double ry,
                 double rw, double rh, int ow, int oh, int flip, const sl__resample_out *o);

/* Which code sl__resample_impl runs: every implementation computes the same floats in the same
 * order, so they agree bit for bit (tests hold them to it). */
enum {
    SL__RESAMPLE_BEST = -1, /* the fastest this CPU runs (what sl__resample uses) */
    SL__RESAMPLE_C = 0,     /* portable C */
    SL__RESAMPLE_AVX2 = 1,  /* x86-64 with AVX2; SL_ERR_UNSUPPORTED where the CPU lacks it */
};
int sl__resample_impl(int impl, const uint8_t *src, int sw, int sh, size_t stride, int c, double rx,
                      double ry, double rw, double rh, int ow, int oh, int flip,
                      const sl__resample_out *o);

/* The writer for a normalize option set (a = 1/(255 std), b = -mean/std). */
void sl__resample_out_from_norm(sl__resample_out *o, const sl_image_normalize_opts *n, int c,
                                void *data);

/* 0 or SL_ERR_INVAL: a dtype and layout the writers support, and nonzero std. */
int sl__image_check_norm(const sl_image_normalize_opts *n, int c);

/* Copies em's text into err[errcap] (when err is not NULL) and returns rc. */
int sl__image_err_out(int rc, const sl_errmsg *em, char *err, size_t errcap);

#endif
