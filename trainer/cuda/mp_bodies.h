/*
 * Per-value bodies of the mixed-precision helpers, shared by the CUDA kernels and the emulator
 * like nn_bodies.h: rounding a float to the nearest bf16 or fp16 value (round to nearest even),
 * computed in float bits so no half type is needed on either side. The core's sluice/half.h
 * converts the same way by a different route; the tests hold these against it.
 */
#ifndef SL_CUDA_MP_BODIES_H
#define SL_CUDA_MP_BODIES_H

#include <math.h>
#include <stdint.h>

#include "nn_bodies.h" /* SL_NN_HD */

SL_NN_HD static inline uint32_t mp_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.f = f;
    return v.u;
}

SL_NN_HD static inline float mp_float(uint32_t u)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.u = u;
    return v.f;
}

/* Keep the top 16 bits, rounding the 16 dropped to nearest even; a carry into the exponent is
 * the right answer (up to infinity). NaN stays NaN (quiet bit set so it cannot round to inf). */
SL_NN_HD static inline float round_bf16_at(float f)
{
    const uint32_t u = mp_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return mp_float((u | 0x00400000u) & 0xffff0000u);
    return mp_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

/* fp16: 10 mantissa bits for normals (|f| >= 2^-14), a fixed quantum of 2^-24 below. */
SL_NN_HD static inline float round_f16_at(float f)
{
    const uint32_t u = mp_bits(f), a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return f;
    if (a < 0x38800000u) /* below 2^-14: multiples of 2^-24, both scalings exact */
        return rintf(f * 16777216.0f) * (1.0f / 16777216.0f);
    const float r = mp_float((u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u);
    return fabsf(r) > 65504.0f ? copysignf(INFINITY, f) : r;
}

#endif
