/*
 * The resampler behind resize, resized_crop and the fused path: a separable triangle
 * (bilinear) filter whose radius grows with the downscale factor, as PIL's and torchvision's
 * antialiased bilinear do, followed in the same pass by the horizontal flip and the output
 * conversion (uint8 rounding, or (x/255 - mean)/std to float32/float16, HWC or CHW).
 *
 * Order of work per output row: the vertical pass first, reading the few source rows the row's
 * taps need and accumulating them (contiguous, vectorisable) into one float row that spans
 * only the columns the horizontal taps touch; then the horizontal taps over that row; then the
 * store. Vertical-first keeps the gather-shaped horizontal work proportional to the output,
 * not to the source, which is what matters when the source is a large crop.
 *
 * Coefficients: every output index i has a source centre c = r0 + (i + 0.5) * s (s = source
 * length / output length) and taps at source pixels j with |j + 0.5 - c| < max(1, s), weight
 * 1 - |j + 0.5 - c| / max(1, s), restricted to the whole pixels covering the region and
 * normalised to sum 1. Each output gets the same number of taps k (zero weights pad it), placed
 * so they never leave the region: no tap ever reads outside the source.
 *
 * Threading: none; scratch is allocated per call.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "image_internal.h"
#include "sluice/alloc.h"
#include "sluice/half.h"

typedef struct axis {
    int k;     /* taps per output */
    int lo_px; /* first source pixel any tap reads */
    int hi_px; /* one past the last */
    int *lo;   /* (out) first tap's source index */
    float *w;  /* (out, k) */
} axis;

/* Taps for one axis. lo and w must hold out and out * axis_taps() entries. */
static int axis_taps(double rlen, int out, int clip)
{
    const double s = rlen / out, fs = s > 1 ? s : 1;
    const int kmax = 2 * (int)ceil(fs) + 1;
    return SL_MIN(kmax, clip);
}

static void axis_init(axis *a, double r0, double rlen, int in_size, int out, int *lo, float *w)
{
    const double s = rlen / out, fs = s > 1 ? s : 1;
    /* The whole pixels covering the region; the small slack keeps an integer edge computed in
     * floating point (x * M / 8) from pulling in a neighbour. */
    const int clip_lo = SL_MAX(0, (int)floor(r0 + 1e-9));
    const int clip_hi = SL_MIN(in_size, (int)ceil(r0 + rlen - 1e-9));
    const int k = axis_taps(rlen, out, clip_hi - clip_lo);
    a->k = k;
    a->lo = lo;
    a->w = w;
    a->lo_px = clip_hi;
    a->hi_px = clip_lo;
    for (int i = 0; i < out; i++) {
        const double c = r0 + (i + 0.5) * s;
        const int xmin = SL_MAX(clip_lo, (int)floor(c - fs + 0.5));
        const int xmax = SL_MIN(clip_hi, (int)floor(c + fs + 0.5));
        const int first = SL_MIN(xmin, clip_hi - k);
        float *wi = w + (size_t)i * k;
        double sum = 0;
        for (int t = 0; t < k; t++) {
            const int j = first + t;
            double v = 0;
            if (j >= xmin && j < xmax) {
                v = 1 - fabs(j + 0.5 - c) / fs;
                if (v < 0)
                    v = 0;
            }
            wi[t] = (float)v;
            sum += v;
        }
        if (sum > 0) {
            for (int t = 0; t < k; t++)
                wi[t] = (float)(wi[t] / sum);
        } else {
            /* Only when the region is thinner than a pixel: take the nearest. */
            const int j = SL_MIN(SL_MAX((int)floor(c), first), first + k - 1);
            wi[j - first] = 1;
        }
        lo[i] = first;
        a->lo_px = SL_MIN(a->lo_px, first);
        a->hi_px = SL_MAX(a->hi_px, first + k);
    }
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *in, uint16_t *out,
                                                                int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(out + i), h);
    }
    for (; i < n; i++)
        out[i] = sl_f32_to_f16(in[i]);
}

/* Whether the CPU converts float32 to float16 itself (F16C, with AVX for the 256-bit form). Asked
 * once per resample call: cpuid is slow, but a call does thousands of rows. */
static int have_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_AVX);
}

static void f32_to_f16(const float *in, uint16_t *out, int n, int f16c)
{
    if (f16c) {
        f32_to_f16_f16c(in, out, n);
        return;
    }
    for (int i = 0; i < n; i++)
        out[i] = sl_f32_to_f16(in[i]);
}

/* The uint8 level a filtered value rounds to (half up), as a float. Clamp first, then
 * truncate (= floor for non-negative values): min, max and cvtt vectorise, floorf does not on
 * baseline x86-64. */
static inline float quantize(float v)
{
    v += 0.5f;
    v = v > 0 ? v : 0;
    v = v < 255.5f ? v : 255.5f;
    return (float)(int)v;
}

/* One output row (c planes of ow values, already flipped) into the destination, each value
 * first rounded to the uint8 level the unfused chain would have stored (so fused and unfused
 * agree exactly at full scale). tmp holds ow * c floats. */
static inline __attribute__((always_inline)) void
store_row(const sl__resample_out *o, const float *row, int ow, int oh, int c, int y, float *tmp)
{
    const size_t n = (size_t)ow * c;
    if (o->dtype == SL_DTYPE_U8) {
        uint8_t *d = (uint8_t *)o->data;
        for (int ch = 0; ch < c; ch++) {
            const float *pl = row + (size_t)ch * ow;
            if (o->layout == SL_IMAGE_HWC) {
                uint8_t *p = d + (size_t)y * n + ch;
                for (int x = 0; x < ow; x++)
                    p[(size_t)x * c] = (uint8_t)quantize(pl[x]);
            } else {
                uint8_t *p = d + ((size_t)ch * oh + y) * ow;
                for (int x = 0; x < ow; x++)
                    p[x] = (uint8_t)quantize(pl[x]);
            }
        }
        return;
    }
    if (o->layout == SL_IMAGE_HWC) {
        float *dst = o->dtype == SL_DTYPE_F32 ? (float *)o->data + (size_t)y * n : tmp;
        for (int ch = 0; ch < c; ch++) {
            const float *pl = row + (size_t)ch * ow;
            const float a = o->a[ch], b = o->b[ch];
            for (int x = 0; x < ow; x++)
                dst[(size_t)x * c + ch] = quantize(pl[x]) * a + b;
        }
        if (o->dtype == SL_DTYPE_F16)
            f32_to_f16(tmp, (uint16_t *)o->data + (size_t)y * n, (int)n, o->f16c);
        return;
    }
    for (int ch = 0; ch < c; ch++) {
        const size_t at = ((size_t)ch * oh + y) * ow;
        const float *restrict pl = row + (size_t)ch * ow;
        float *restrict dst = o->dtype == SL_DTYPE_F32 ? (float *)o->data + at : tmp;
        const float a = o->a[ch], b = o->b[ch];
        for (int x = 0; x < ow; x++)
            dst[x] = quantize(pl[x]) * a + b;
        if (o->dtype == SL_DTYPE_F16)
            f32_to_f16(tmp, (uint16_t *)o->data + at, ow, o->f16c);
    }
}

/* Vertical taps over the columns [x0, x1) of k rows starting at `first`. */
static void vertical(const uint8_t *restrict src, size_t stride, int c, int first, int k,
                     const float *restrict w, int x0, int x1, float *restrict acc)
{
    const size_t n = (size_t)(x1 - x0) * c;
    const uint8_t *p = src + (size_t)first * stride + (size_t)x0 * c;
    const float w0 = w[0];
    for (size_t i = 0; i < n; i++)
        acc[i] = w0 * p[i];
    for (int t = 1; t < k; t++) {
        const uint8_t *q = p + (size_t)t * stride;
        const float wt = w[t];
        if (wt == 0)
            continue;
        for (size_t i = 0; i < n; i++)
            acc[i] += wt * q[i];
    }
}

/* Horizontal taps for every output of the row, mirrored when flip, into `row` as c planes of
 * ow values (planar, so the stores that follow run over contiguous floats). acc starts at
 * column x0. */
static void horizontal(const float *acc, int c, const axis *h, int x0, int ow, int flip, float *row)
{
    const int k = h->k;
    for (int i = 0; i < ow; i++) {
        const float *w = h->w + (size_t)i * k;
        const float *p = acc + (size_t)(h->lo[i] - x0) * c;
        float *d = row + (flip ? ow - 1 - i : i);
        if (c == 3) {
            float s0 = 0, s1 = 0, s2 = 0;
            for (int t = 0; t < k; t++) {
                s0 += w[t] * p[3 * t];
                s1 += w[t] * p[3 * t + 1];
                s2 += w[t] * p[3 * t + 2];
            }
            d[0] = s0;
            d[ow] = s1;
            d[2 * ow] = s2;
            continue;
        }
        for (int ch = 0; ch < c; ch++) {
            float s = 0;
            for (int t = 0; t < k; t++)
                s += w[t] * p[t * c + ch];
            d[(size_t)ch * ow] = s;
        }
    }
}

int sl__resample(const uint8_t *src, int sw, int sh, size_t stride, int c, double rx, double ry,
                 double rw, double rh, int ow, int oh, int flip, const sl__resample_out *o)
{
    if (ow <= 0 || oh <= 0 || c < 1 || c > 4 || !(rw > 0) || !(rh > 0) || rx < 0 || ry < 0 ||
        rx + rw > sw + 1e-6 || ry + rh > sh + 1e-6)
        return SL_ERR_INVAL;
    /* Bounds of the taps before the allocation that holds them. */
    const int kx = axis_taps(rw, ow, sw), ky = axis_taps(rh, oh, sh);
    const size_t acc_n = (size_t)sw * c, row_n = (size_t)ow * c;
    const size_t bytes = sizeof(int) * ((size_t)ow + oh) +
                         sizeof(float) * ((size_t)ow * kx + (size_t)oh * ky + acc_n + 2 * row_n);
    char *mem = sl_malloc(bytes);
    if (!mem)
        return SL_ERR_NOMEM;
    int *lo_x = (int *)mem;             /* (ow) */
    int *lo_y = lo_x + ow;              /* (oh) */
    float *w_x = (float *)(lo_y + oh);  /* (ow, kx) */
    float *w_y = w_x + (size_t)ow * kx; /* (oh, ky) */
    float *acc = w_y + (size_t)oh * ky; /* (sw * c) one vertically filtered row */
    float *row = acc + acc_n;           /* (c, ow) one output row, planar */
    float *tmp = row + row_n;           /* (ow * c) staging for float16 */
    sl__resample_out out = *o;
    out.f16c = o->dtype == SL_DTYPE_F16 && have_f16c();
    o = &out;
    axis h, v;
    axis_init(&h, rx, rw, sw, ow, lo_x, w_x);
    axis_init(&v, ry, rh, sh, oh, lo_y, w_y);
    for (int y = 0; y < oh; y++) {
        vertical(src, stride, c, v.lo[y], v.k, v.w + (size_t)y * v.k, h.lo_px, h.hi_px, acc);
        horizontal(acc, c, &h, h.lo_px, ow, flip, row);
        if (c == 3) /* a constant channel count lets the store loops unroll and vectorise */
            store_row(o, row, ow, oh, 3, y, tmp);
        else
            store_row(o, row, ow, oh, c, y, tmp);
    }
    sl_free(mem);
    return 0;
}

void sl__resample_out_from_norm(sl__resample_out *o, const sl_image_normalize_opts *n, int c,
                                void *data)
{
    memset(o, 0, sizeof *o);
    o->dtype = n->dtype;
    o->layout = n->layout;
    o->data = data;
    for (int ch = 0; ch < 4; ch++) {
        if (n->dtype == SL_DTYPE_U8 || ch >= c) {
            o->a[ch] = 1;
            o->b[ch] = 0;
            continue;
        }
        o->a[ch] = 1.0f / (255.0f * n->std[ch]);
        o->b[ch] = -n->mean[ch] / n->std[ch];
    }
}
