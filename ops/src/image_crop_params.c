/*
 * Where crops go: torchvision's samplers for RandomResizedCrop, center_crop and resize(int),
 * rewritten from their documented behaviour, drawing only from the caller's sl_rng so that an
 * element's crop is a pure function of its random stream. Python's round() (half to even) is
 * rint() under the default rounding mode, which sluice never changes.
 *
 * Threading: none.
 */
#include <math.h>

#include "image_internal.h"

int sl_image_random_resized_crop_params(int width, int height, const double scale[2],
                                        const double ratio[2], sl_rng *rng, sl_image_rect *out)
{
    const double s0 = scale ? scale[0] : 0.08, s1 = scale ? scale[1] : 1.0;
    const double r0 = ratio ? ratio[0] : 3.0 / 4.0, r1 = ratio ? ratio[1] : 4.0 / 3.0;
    if (width <= 0 || height <= 0 || !(s0 > 0 && s0 <= s1) || !(r0 > 0 && r0 <= r1))
        return SL_ERR_INVAL;
    const double area = (double)width * height;
    const double lr0 = log(r0), lr1 = log(r1);
    for (int attempt = 0; attempt < 10; attempt++) {
        const double target = area * (s0 + (s1 - s0) * sl_rng_uniform(rng));
        const double aspect = exp(lr0 + (lr1 - lr0) * sl_rng_uniform(rng));
        const double wf = rint(sqrt(target * aspect)), hf = rint(sqrt(target / aspect));
        if (wf > 0 && wf <= width && hf > 0 && hf <= height) {
            const int w = (int)wf, h = (int)hf;
            /* torchvision draws the top offset first, then the left. */
            const int y = (int)sl_rng_below(rng, (uint64_t)(height - h + 1));
            const int x = (int)sl_rng_below(rng, (uint64_t)(width - w + 1));
            *out = (sl_image_rect){x, y, w, h};
            return 0;
        }
    }
    /* Fallback: the largest centred window whose aspect is clamped into [r0, r1]. */
    const double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < r0)
        h = (int)rint(w / r0);
    else if (in_ratio > r1)
        w = (int)rint(h * r1);
    h = SL_MAX(1, SL_MIN(h, height));
    w = SL_MAX(1, SL_MIN(w, width));
    *out = (sl_image_rect){(width - w) / 2, (height - h) / 2, w, h};
    return 0;
}

void sl_image_center_crop_params(int width, int height, int crop_w, int crop_h, sl_image_rect *out)
{
    /* A side the crop is larger than gets padded by floor(excess / 2) before, the rest after
     * (torchvision pads, then crops at offset 0): a negative offset here. */
    out->x = crop_w > width ? -((crop_w - width) / 2) : (int)rint((width - crop_w) / 2.0);
    out->y = crop_h > height ? -((crop_h - height) / 2) : (int)rint((height - crop_h) / 2.0);
    out->w = crop_w;
    out->h = crop_h;
}

void sl_image_resize_size(int width, int height, int size, int *out_w, int *out_h)
{
    if (width <= height) {
        *out_w = size;
        *out_h = (int)((int64_t)size * height / width);
    } else {
        *out_h = size;
        *out_w = (int)((int64_t)size * width / height);
    }
}

int sl_image_flip_draw(sl_rng *rng, double p)
{
    return sl_rng_uniform(rng) < p;
}
