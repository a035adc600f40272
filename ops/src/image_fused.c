/*
 * The fused path: decode_jpeg, random_resized_crop (or a fixed crop), flip and normalize as one
 * call. The crop window is drawn as soon as the header gives the image size, so the decoder
 * only produces the iMCU rows and columns under the window, at the smallest DCT scale that
 * still gives at least the output resolution; one resampling pass then resizes, mirrors and
 * normalizes straight into the output tensor.
 *
 * Random draws happen in the unfused chain's order (crop window, then one flip draw), so the
 * same rng gives the same window and the same flip decision fused or not; with full-scale
 * decode (opts->scales == 0x80) the pixels are identical too.
 *
 * Threading: none.
 */
#include <string.h>

#include "image_internal.h"
#include "sluice/alloc.h"

typedef struct fused_ctx {
    const sl_image_fused_opts *o;
    sl_rng *rng;
    sl_image_rect crop; /* chosen window, full-resolution pixels */
} fused_ctx;

static int choose_region(void *user, const sl_image_info *info, sl_image_decode_opts *opts,
                         sl_errmsg *em)
{
    fused_ctx *f = user;
    const sl_image_fused_opts *o = f->o;
    if (o->crop_mode == SL_IMAGE_CROP_RANDOM_RESIZED) {
        const double scale[2] = {o->scale[0] > 0 ? o->scale[0] : 0.08,
                                 o->scale[1] > 0 ? o->scale[1] : 1.0};
        const double ratio[2] = {o->ratio[0] > 0 ? o->ratio[0] : 3.0 / 4.0,
                                 o->ratio[1] > 0 ? o->ratio[1] : 4.0 / 3.0};
        const int rc = sl_image_random_resized_crop_params(info->width, info->height, scale, ratio,
                                                           f->rng, &f->crop);
        if (rc < 0)
            return sl__errmsg_raw(em, rc, "random_resized_crop: bad scale or ratio range");
    } else if (o->crop.w == 0) {
        f->crop = (sl_image_rect){0, 0, info->width, info->height};
    } else {
        f->crop = o->crop;
    }
    opts->crop = f->crop;
    opts->min_w = o->out_w;
    opts->min_h = o->out_h;
    return 0;
}

static int opts_ok(const sl_image_fused_opts *opts, sl_rng *rng, const void *data, size_t len)
{
    return opts && rng && (data || !len) && opts->out_w > 0 && opts->out_h > 0 &&
           (opts->crop_mode == SL_IMAGE_CROP_RANDOM_RESIZED ||
            opts->crop_mode == SL_IMAGE_CROP_FIXED) &&
           sl__image_check_norm(&opts->norm, 3) == 0;
}

int sl_image_fused_out_type(const sl_image_fused_opts *opts, sl_dtype *dtype, int64_t shape[3])
{
    if (!opts || opts->out_w <= 0 || opts->out_h <= 0)
        return SL_ERR_INVAL;
    const int chw = opts->norm.layout == SL_IMAGE_CHW;
    *dtype = opts->norm.dtype;
    shape[0] = chw ? 3 : opts->out_h;
    shape[1] = chw ? opts->out_h : opts->out_w;
    shape[2] = chw ? opts->out_w : 3;
    return 0;
}

/* Both entry points: decode, then one resampling pass into *out, which is allocated here
 * (after the decode, so a bad image costs no output buffer) when alloc, else the caller's. */
static int run(const void *data, size_t len, const sl_image_fused_opts *opts, sl_rng *rng,
               sl_tensor *out, int alloc, sl_image_rect *crop_out, int *flipped_out, char *err,
               size_t errcap)
{
    sl_errmsg em = {{0}};
    fused_ctx f = {.o = opts, .rng = rng};
    const sl_image_decode_opts dopts = {
        .scales = opts->scales, .max_pixels = opts->max_pixels, .strict = opts->strict};
    sl_tensor img;
    sl_image_decoded d;
    int rc = sl__image_decode_any(data, len, &dopts, choose_region, &f, &img, &d, &em);
    if (rc < 0)
        return sl__image_err_out(rc, &em, err, errcap);
    const int flip = sl_image_flip_draw(rng, opts->flip_p);
    if (alloc) {
        sl_dtype dt = SL_DTYPE_INVALID;
        int64_t shape[3] = {0};
        rc = sl_image_fused_out_type(opts, &dt, shape);
        if (rc == 0)
            rc = sl_tensor_alloc(out, dt, 3, shape);
    }
    if (rc == 0) {
        sl__resample_out w;
        sl__resample_out_from_norm(&w, &opts->norm, 3, out->data);
        const int iw = (int)img.shape[1], ih = (int)img.shape[0];
        rc = sl__resample(img.data, iw, ih, (size_t)iw * 3, 3, d.rx, d.ry, d.rw, d.rh, opts->out_w,
                          opts->out_h, flip, &w);
        if (rc < 0 && alloc)
            sl_tensor_release(out);
    }
    sl_tensor_release(&img);
    if (rc < 0)
        return sl__image_err_out(sl__errmsg_raw(&em, rc, "fused image op: out of memory"), &em, err,
                                 errcap);
    if (crop_out)
        *crop_out = f.crop;
    if (flipped_out)
        *flipped_out = flip;
    return sl__image_err_out(0, &em, err, errcap);
}

static int bad_options(char *err, size_t errcap)
{
    sl_errmsg em = {{0}};
    return sl__image_err_out(sl__errmsg_raw(&em, SL_ERR_INVAL, "fused image op: bad options"), &em,
                             err, errcap);
}

int sl_image_decode_fused(const void *data, size_t len, const sl_image_fused_opts *opts,
                          sl_rng *rng, sl_tensor *out, sl_image_rect *crop_out, int *flipped_out,
                          char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (!opts_ok(opts, rng, data, len))
        return bad_options(err, errcap);
    return run(data, len, opts, rng, out, 1, crop_out, flipped_out, err, errcap);
}

int sl_image_decode_fused_into(const void *data, size_t len, const sl_image_fused_opts *opts,
                               sl_rng *rng, const sl_tensor *dst, sl_image_rect *crop_out,
                               int *flipped_out, char *err, size_t errcap)
{
    sl_dtype dt;
    int64_t shape[3];
    if (!opts_ok(opts, rng, data, len) || !dst || !dst->data ||
        sl_image_fused_out_type(opts, &dt, shape) < 0 || dst->dtype != dt || dst->rank != 3 ||
        memcmp(dst->shape, shape, sizeof shape) != 0)
        return bad_options(err, errcap);
    sl_tensor view = *dst; /* the resampler writes through data; dst itself is not touched */
    return run(data, len, opts, rng, &view, 0, crop_out, flipped_out, err, errcap);
}
