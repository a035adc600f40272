/*
 * Per-value body of the GPU feed's input conversion, shared by the CUDA kernel, the emulator and
 * the tests like nn_bodies.h: one uint8 pixel of an (N, H, W, C) batch becomes one float of the
 * (N, C, H, W) model input, x * a[c] + b[c] with a = 1 / (255 std[c]) and b = -mean[c] / std[c]
 * -- the arithmetic of sl_image_normalize (ops/), so the device feed and the CPU op agree bit for
 * bit, and with mean 0, std 1 the training loop's x / 255 conversion too.
 */
#ifndef SL_CUDA_FEED_BODIES_H
#define SL_CUDA_FEED_BODIES_H

#include <stdint.h>

#include "nn_bodies.h" /* SL_NN_HD */

/* Per channel (at most 4): the affine map of a pixel value. */
typedef struct feed_norm {
    float a[4], b[4];
} feed_norm;

/* Output value (i, ch, p) (p = y * w + x) of an NHWC uint8 batch with c channels and hw pixels. */
SL_NN_HD static inline float normalize_u8_at(const uint8_t *src, const feed_norm *f, int c,
                                             int64_t hw, int64_t i, int ch, int64_t p)
{
    return src[(i * hw + p) * c + ch] * f->a[ch] + f->b[ch];
}

#endif
