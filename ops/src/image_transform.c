/*
 * The pixel ops as separate steps on uint8 (H, W, C) tensors: crop (zero padding outside, as
 * torchvision's center_crop pads), resize and resized_crop (through image_resample.c), flip,
 * and normalize. Each returns a fresh tensor; the input is never modified, so a tensor shared
 * by several elements stays valid.
 *
 * Threading: none.
 */
#include <string.h>

#include "image_internal.h"
#include "sluice/alloc.h"
#include "sluice/half.h"

/* A uint8 (H, W, C) image with C in 1..4. */
static int check_image(const sl_tensor *t)
{
    if (!t || t->dtype != SL_DTYPE_U8 || t->rank != 3 || t->shape[0] <= 0 || t->shape[1] <= 0 ||
        t->shape[0] > INT32_MAX || t->shape[1] > INT32_MAX || t->shape[2] < 1 || t->shape[2] > 4 ||
        !t->data)
        return SL_ERR_TYPE;
    return 0;
}

static int alloc_image(sl_tensor *out, sl_dtype dt, sl_image_layout layout, int h, int w, int c)
{
    const int64_t hwc[3] = {h, w, c}, chw[3] = {c, h, w};
    return sl_tensor_alloc(out, dt, 3, layout == SL_IMAGE_CHW ? chw : hwc);
}

int sl_image_crop(const sl_tensor *src, const sl_image_rect *r, sl_tensor *out)
{
    memset(out, 0, sizeof *out);
    SL_TRY(check_image(src));
    if (!r || r->w <= 0 || r->h <= 0)
        return SL_ERR_INVAL;
    const int h = (int)src->shape[0], w = (int)src->shape[1], c = (int)src->shape[2];
    SL_TRY(alloc_image(out, SL_DTYPE_U8, SL_IMAGE_HWC, r->h, r->w, c));
    uint8_t *d = out->data;
    const uint8_t *s = src->data;
    const size_t orow = (size_t)r->w * c;
    /* The part of the window inside the image; the rest stays zero. */
    const int x0 = SL_MAX(r->x, 0), x1 = SL_MIN(r->x + r->w, w);
    const int y0 = SL_MAX(r->y, 0), y1 = SL_MIN(r->y + r->h, h);
    if (x0 >= x1 || y0 >= y1 || r->x < 0 || r->y < 0 || x1 - x0 < r->w || y1 - y0 < r->h)
        memset(d, 0, orow * (size_t)r->h);
    for (int y = y0; y < y1; y++)
        if (x0 < x1)
            memcpy(d + (size_t)(y - r->y) * orow + (size_t)(x0 - r->x) * c,
                   s + ((size_t)y * w + x0) * c, (size_t)(x1 - x0) * c);
    return 0;
}

int sl_image_resized_crop(const sl_tensor *src, const sl_image_rect *r, int out_w, int out_h,
                          sl_tensor *out)
{
    memset(out, 0, sizeof *out);
    SL_TRY(check_image(src));
    const int h = (int)src->shape[0], w = (int)src->shape[1], c = (int)src->shape[2];
    if (!r || out_w <= 0 || out_h <= 0 || r->x < 0 || r->y < 0 || r->w <= 0 || r->h <= 0 ||
        r->x > w - r->w || r->y > h - r->h)
        return SL_ERR_INVAL;
    SL_TRY(alloc_image(out, SL_DTYPE_U8, SL_IMAGE_HWC, out_h, out_w, c));
    sl__resample_out o = {.dtype = SL_DTYPE_U8, .layout = SL_IMAGE_HWC, .data = out->data};
    const int rc = sl__resample(src->data, w, h, (size_t)w * c, c, r->x, r->y, r->w, r->h, out_w,
                                out_h, 0, &o);
    if (rc < 0)
        sl_tensor_release(out);
    return rc;
}

int sl_image_resize(const sl_tensor *src, int out_w, int out_h, sl_tensor *out)
{
    SL_TRY(check_image(src));
    const sl_image_rect all = {0, 0, (int)src->shape[1], (int)src->shape[0]};
    return sl_image_resized_crop(src, &all, out_w, out_h, out);
}

int sl_image_flip(const sl_tensor *src, sl_tensor *out)
{
    memset(out, 0, sizeof *out);
    SL_TRY(check_image(src));
    const int h = (int)src->shape[0], w = (int)src->shape[1], c = (int)src->shape[2];
    SL_TRY(alloc_image(out, SL_DTYPE_U8, SL_IMAGE_HWC, h, w, c));
    const uint8_t *s = src->data;
    uint8_t *d = out->data;
    for (int y = 0; y < h; y++) {
        const uint8_t *sr = s + (size_t)y * w * c;
        uint8_t *dr = d + (size_t)y * w * c;
        for (int x = 0; x < w; x++)
            memcpy(dr + (size_t)(w - 1 - x) * c, sr + (size_t)x * c, (size_t)c);
    }
    return 0;
}

int sl_image_normalize_preset(const char *name, sl_image_normalize_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->dtype = SL_DTYPE_F32;
    opts->layout = SL_IMAGE_CHW;
    for (int c = 0; c < 4; c++)
        opts->std[c] = 1;
    if (name && !strcmp(name, "imagenet")) {
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(opts->mean, mean, sizeof mean);
        memcpy(opts->std, std, sizeof std);
        return 0;
    }
    if (name && !strcmp(name, "none"))
        return 0;
    return SL_ERR_NOT_FOUND;
}

static int check_norm(const sl_image_normalize_opts *n, int c)
{
    if (!n || (n->dtype != SL_DTYPE_F32 && n->dtype != SL_DTYPE_F16 && n->dtype != SL_DTYPE_U8) ||
        (n->layout != SL_IMAGE_HWC && n->layout != SL_IMAGE_CHW))
        return SL_ERR_INVAL;
    if (n->dtype != SL_DTYPE_U8)
        for (int ch = 0; ch < c; ch++)
            if (!(n->std[ch] != 0))
                return SL_ERR_INVAL;
    return 0;
}

int sl_image_normalize(const sl_tensor *src, const sl_image_normalize_opts *opts, sl_tensor *out)
{
    memset(out, 0, sizeof *out);
    SL_TRY(check_image(src));
    const int h = (int)src->shape[0], w = (int)src->shape[1], c = (int)src->shape[2];
    SL_TRY(check_norm(opts, c));
    SL_TRY(alloc_image(out, opts->dtype, opts->layout, h, w, c));
    const uint8_t *s = src->data;
    const size_t plane = (size_t)h * w;
    if (opts->dtype == SL_DTYPE_U8) {
        uint8_t *d = out->data;
        if (opts->layout == SL_IMAGE_HWC)
            memcpy(d, s, plane * c);
        else
            for (size_t i = 0; i < plane; i++)
                for (int ch = 0; ch < c; ch++)
                    d[ch * plane + i] = s[i * c + ch];
        return 0;
    }
    sl__resample_out o;
    sl__resample_out_from_norm(&o, opts, c, out->data);
    for (size_t i = 0; i < plane; i++) {
        for (int ch = 0; ch < c; ch++) {
            const float v = s[i * c + ch] * o.a[ch] + o.b[ch];
            const size_t at = opts->layout == SL_IMAGE_HWC ? i * c + ch : ch * plane + i;
            if (opts->dtype == SL_DTYPE_F32)
                ((float *)out->data)[at] = v;
            else
                ((uint16_t *)out->data)[at] = sl_f32_to_f16(v);
        }
    }
    return 0;
}

int sl__image_check_norm(const sl_image_normalize_opts *n, int c)
{
    return check_norm(n, c);
}
