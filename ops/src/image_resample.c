/*
 * The resampler behind resize, resized_crop and the fused path: a separable triangle
 * (bilinear) filter whose radius grows with the downscale factor, as PIL's and torchvision's
 * antialiased bilinear do, followed in the same pass by the horizontal flip and the output
 * conversion (uint8 rounding, or (x/255 - mean)/std to float32/float16, HWC or CHW).
 *
 * Order of work per output row: the vertical pass first, reading the few source rows the row's
 * taps need and accumulating them (contiguous, vectorisable) into one float row that spans
 * only the columns the horizontal taps touch; then the horizontal taps over that row, with the
 * mirror folded into the tap table, each value rounded to its uint8 level and, for float32 CHW
 * (the fused path's output), normalized and written straight into the tensor; other layouts
 * and dtypes go through one planar row of levels and a store loop. Vertical-first keeps the
 * gather-shaped horizontal work proportional to the output, not to the source, which is what
 * matters when the source is a large crop.
 *
 * Coefficients: every output index i has a source centre c = r0 + (i + 0.5) * s (s = source
 * length / output length) and taps at source pixels j with |j + 0.5 - c| < max(1, s), weight
 * 1 - |j + 0.5 - c| / max(1, s), restricted to the whole pixels covering the region and
 * normalised to sum 1. Each output gets the same number of taps k, the widest nonzero
 * footprint of the axis (zero weights pad the narrower ones), placed so they never leave the
 * region: no tap ever reads outside the source.
 *
 * Two implementations of the same arithmetic: portable C (which the compiler vectorises for
 * the vertical pass at the baseline ISA) and AVX2, picked at run time. The AVX2 horizontal
 * pass computes one pixel's three channels as one 4-lane sum (two pixels per 256-bit register)
 * and transposes groups of eight pixels into planes. Both do, per value, the same float
 * multiplications and additions in the same order, never a fused multiply-add (the AVX2 code
 * is not compiled for FMA; gcc in ISO C mode does not contract; clang is told below), so they
 * agree bit for bit (tested), and the normalize store is q * a + b rounded as
 * sl_image_normalize rounds it, so the fused chain equals the unfused one.
 *
 * Threading: none; scratch is allocated per call. The CPU feature flags are read once and
 * cached in an atomic.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#include "image_internal.h"
#include "sluice/alloc.h"
#include "sluice/half.h"

#if defined(__clang__)
/* clang contracts a * b + c into an FMA where the target has one (its default is
 * -ffp-contract=on); the two paths and sl_image_normalize must round every product, so no. */
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct axis {
    int k;     /* taps per output: the widest nonzero footprint on this axis */
    int lo_px; /* first source pixel any tap reads */
    int hi_px; /* one past the last */
    int *lo;   /* (out) first tap's source index */
    float *w;  /* (out, k) */
} axis;

/* An upper bound on the taps per output, for sizing the scratch before axis_init runs. */
static int axis_taps(double rlen, int out, int clip)
{
    const double s = rlen / out, fs = s > 1 ? s : 1;
    const int kmax = 2 * (int)ceil(fs) + 1;
    return SL_MIN(kmax, clip);
}

/* floor() to int without a libm call (baseline x86-64 has no rounding instruction). */
static inline int ifloor(double x)
{
    const int i = (int)x;
    return i - (x < i);
}

/* Source pixels [*j0, *j1) whose centres lie within fs of c (|j + 0.5 - c| < fs), inside
 * [clip_lo, clip_hi). */
static inline void axis_span(double c, double fs, int clip_lo, int clip_hi, int *j0, int *j1)
{
    int a = SL_MAX(clip_lo, ifloor(c - fs - 0.5) + 1);
    int b = SL_MIN(clip_hi, -ifloor(-(c + fs - 0.5))); /* ceil */
    if (b <= a) {
        /* Only when the region is thinner than a pixel: the nearest. */
        a = SL_MIN(SL_MAX(ifloor(c), clip_lo), clip_hi - 1);
        b = a + 1;
    }
    *j0 = a;
    *j1 = b;
}

/* Taps for one axis. lo and w must hold out and out * axis_taps() entries. When mirror is set,
 * output i gets the taps of output out - 1 - i. */
static void axis_init(axis *a, double r0, double rlen, int in_size, int out, int mirror, int *lo,
                      float *w)
{
    const double s = rlen / out, fs = s > 1 ? s : 1, inv = 1 / fs;
    /* The whole pixels covering the region; the small slack keeps an integer edge computed in
     * floating point (x * M / 8) from pulling in a neighbour. */
    const int clip_lo = SL_MAX(0, ifloor(r0 + 1e-9));
    const int clip_hi = SL_MIN(in_size, -ifloor(-(r0 + rlen - 1e-9)));
    /* k: the widest footprint; lo[] holds each output's first pixel until the second pass. */
    int k = 1;
    for (int i = 0; i < out; i++) {
        int j0, j1;
        axis_span(r0 + (i + 0.5) * s, fs, clip_lo, clip_hi, &j0, &j1);
        k = SL_MAX(k, j1 - j0);
        lo[i] = j0;
    }
    a->k = k;
    a->lo = lo;
    a->w = w;
    a->lo_px = clip_hi;
    a->hi_px = clip_lo;
    for (int i = 0; i < out; i++) {
        const double c = r0 + (i + 0.5) * s;
        const int first = SL_MIN(lo[i], clip_hi - k);
        float *wi = w + (size_t)i * k;
        /* Every tap lies inside [clip_lo, clip_hi) and the taps outside the footprint get
         * max(0, 1 - d / fs) = 0, so no tap needs a test. */
        double sum = 0;
        for (int t = 0; t < k; t++) {
            const double v = 1 - fabs(first + t + 0.5 - c) * inv;
            sum += v > 0 ? v : 0;
        }
        const double norm = 1 / sum;
        for (int t = 0; t < k; t++) {
            const double v = 1 - fabs(first + t + 0.5 - c) * inv;
            wi[t] = (float)((v > 0 ? v : 0) * norm);
        }
        if (!(sum > 0)) { /* a region thinner than a pixel: the nearest (lo[i]) alone */
            memset(wi, 0, sizeof(float) * k);
            wi[lo[i] - first] = 1;
        }
        lo[i] = first;
        a->lo_px = SL_MIN(a->lo_px, first);
        a->hi_px = SL_MAX(a->hi_px, first + k);
    }
    if (mirror) /* output i takes output out-1-i's taps */
        for (int i = 0, j = out - 1; i < j; i++, j--) {
            const int t = lo[i];
            lo[i] = lo[j];
            lo[j] = t;
            float *wi = w + (size_t)i * k, *wj = w + (size_t)j * k;
            for (int q = 0; q < k; q++) {
                const float x = wi[q];
                wi[q] = wj[q];
                wj[q] = x;
            }
        }
}

/* The uint8 level a filtered value rounds to (half up), as a float. Clamp first, then
 * truncate (= floor for non-negative values): the same steps as the SIMD version. */
static inline float quantize(float v)
{
    v += 0.5f;
    v = v > 0 ? v : 0;
    v = v < 255.5f ? v : 255.5f;
    return (float)(int)v;
}

/* Where the horizontal pass writes: plane ch of the current output row gets q * a[ch] + b[ch]
 * for each rounded level q. a = 1, b = 0 leaves the levels themselves (exact in float). */
typedef struct planes {
    float *dst[4];
    float a[4], b[4];
} planes;

/* ---- portable C ---------------------------------------------------------------------------- */

/* Vertical taps over n values of k rows, the first at p: acc[i] = sum_t w[t] * p[t][i]. */
static void vertical_c(const uint8_t *restrict p, size_t stride, int k, const float *restrict w,
                       size_t n, float *restrict acc)
{
    const float w0 = w[0];
    for (size_t i = 0; i < n; i++)
        acc[i] = w0 * p[i];
    for (int t = 1; t < k; t++) {
        const uint8_t *q = p + (size_t)t * stride;
        const float wt = w[t];
        if (wt == 0) /* adds nothing: the sum is the same with or without it */
            continue;
        for (size_t i = 0; i < n; i++)
            acc[i] += wt * q[i];
    }
}

/* Horizontal taps for outputs [x_from, ow) into the planes. off[x] is where output x's first
 * tap starts in acc (in floats). */
static void horizontal_c(const float *acc, int c, int k, const int *off, const float *wx,
                         int x_from, int ow, const planes *pl)
{
    for (int x = x_from; x < ow; x++) {
        const float *w = wx + (size_t)x * k;
        const float *p = acc + off[x];
        for (int ch = 0; ch < c; ch++) {
            float s = 0;
            for (int t = 0; t < k; t++)
                s += w[t] * p[t * c + ch];
            pl->dst[ch][x] = quantize(s) * pl->a[ch] + pl->b[ch];
        }
    }
}

/* ---- AVX2 ---------------------------------------------------------------------------------- */

enum {
    CPU_HAS_AVX2 = 1,
    CPU_HAS_F16C = 2,
    CPU_KNOWN = 4,
};

#if HAVE_X86
/* The bodies below take k as an argument and are inlined into copies for the common small k
 * (the taps of a downscale by at most 2.5), where the tap loops unroll and the sums stay in
 * registers. */
#define DISPATCH_K(call_k) \
    switch (k) {           \
    case 2:                \
        call_k(2);         \
        break;             \
    case 3:                \
        call_k(3);         \
        break;             \
    case 4:                \
        call_k(4);         \
        break;             \
    case 5:                \
        call_k(5);         \
        break;             \
    default:               \
        call_k(k);         \
    }

static inline __attribute__((always_inline, target("avx2"))) __m256 widen8(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* acc[i] = sum_t w[t] * p[t * stride + i]. Widening each byte for every output row that reads
 * it measured faster than widening each source row once into a ring of float rows (4x the
 * bytes to keep in cache). */
static inline __attribute__((always_inline, target("avx2"))) void
vertical_avx2_k(const uint8_t *p, size_t stride, int k, const float *w, size_t n, float *acc)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (int t = 0; t < k; t++) {
            const __m256 wt = _mm256_broadcast_ss(w + t);
            const uint8_t *q = p + (size_t)t * stride + i;
            s0 = _mm256_add_ps(s0, _mm256_mul_ps(wt, widen8(q)));
            s1 = _mm256_add_ps(s1, _mm256_mul_ps(wt, widen8(q + 8)));
        }
        _mm256_storeu_ps(acc + i, s0);
        _mm256_storeu_ps(acc + i + 8, s1);
    }
    for (; i < n; i++) {
        float s = 0;
        for (int t = 0; t < k; t++)
            s += w[t] * p[(size_t)t * stride + i];
        acc[i] = s;
    }
}

__attribute__((target("avx2"))) static void vertical_avx2(const uint8_t *p, size_t stride, int k,
                                                          const float *w, size_t n, float *acc)
{
#define CALL(kk) vertical_avx2_k(p, stride, kk, w, n, acc)
    DISPATCH_K(CALL)
#undef CALL
}

/* Round to levels, then q * a + b. */
static inline __attribute__((always_inline, target("avx2"))) __m256 finish8(__m256 v, __m256 a,
                                                                            __m256 b)
{
    v = _mm256_add_ps(v, _mm256_set1_ps(0.5f));
    v = _mm256_max_ps(v, _mm256_setzero_ps());
    v = _mm256_min_ps(v, _mm256_set1_ps(255.5f));
    v = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(v));
    return _mm256_add_ps(_mm256_mul_ps(v, a), b);
}

/* Three channels: pixel x's sum is the 4-lane vector sum_t w[t] * acc[off[x] + 3t ..+4) (the
 * fourth lane is the next pixel's red, ignored). Eight outputs per step: register j holds
 * pixel x+j in its low half and x+4+j in its high half, and a 4x4 transpose per half turns the
 * four registers into red, green and blue runs of eight. wv holds, per step, per j, per tap,
 * eight floats: w[x+j][t] four times, then w[x+4+j][t] four times. acc must be readable one
 * float past the last tap. Returns the first output it left for horizontal_c. */
static inline __attribute__((always_inline, target("avx2"))) int
horizontal3_avx2_k(const float *acc, int k, const int *off, const float *wv, int ow,
                   const planes *pl)
{
    const __m256 a0 = _mm256_set1_ps(pl->a[0]), a1 = _mm256_set1_ps(pl->a[1]),
                 a2 = _mm256_set1_ps(pl->a[2]);
    const __m256 b0 = _mm256_set1_ps(pl->b[0]), b1 = _mm256_set1_ps(pl->b[1]),
                 b2 = _mm256_set1_ps(pl->b[2]);
    float *d0 = pl->dst[0], *d1 = pl->dst[1], *d2 = pl->dst[2];
    int x = 0;
    for (; x + 8 <= ow; x += 8) {
        __m256 v[4];
        for (int j = 0; j < 4; j++) {
            const float *pa = acc + off[x + j], *pb = acc + off[x + 4 + j];
            const float *wj = wv + ((size_t)x * 4 + (size_t)j * 8) * k;
            __m256 s = _mm256_setzero_ps();
            for (int t = 0; t < k; t++) {
                const __m256 px = _mm256_insertf128_ps(
                    _mm256_castps128_ps256(_mm_loadu_ps(pa + 3 * t)), _mm_loadu_ps(pb + 3 * t), 1);
                s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_loadu_ps(wj + 8 * t), px));
            }
            v[j] = s;
        }
        const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]); /* r0 r1 g0 g1 | r4 r5 g4 g5 */
        const __m256 t1 = _mm256_unpackhi_ps(v[0], v[1]); /* b0 b1 .. .. | b4 b5 .. .. */
        const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]); /* r2 r3 g2 g3 | r6 r7 g6 g7 */
        const __m256 t3 = _mm256_unpackhi_ps(v[2], v[3]); /* b2 b3 .. .. | b6 b7 .. .. */
        _mm256_storeu_ps(d0 + x, finish8(_mm256_shuffle_ps(t0, t2, 0x44), a0, b0));
        _mm256_storeu_ps(d1 + x, finish8(_mm256_shuffle_ps(t0, t2, 0xee), a1, b1));
        _mm256_storeu_ps(d2 + x, finish8(_mm256_shuffle_ps(t1, t3, 0x44), a2, b2));
    }
    return x;
}

__attribute__((target("avx2"))) static int
horizontal3_avx2(const float *acc, int k, const int *off, const float *wv, int ow, const planes *pl)
{
    int x = 0;
#define CALL(kk) x = horizontal3_avx2_k(acc, kk, off, wv, ow, pl)
    DISPATCH_K(CALL)
#undef CALL
    return x;
}

/* The weight layout horizontal3_avx2 reads, for the whole groups of eight outputs. */
static void expand_weights(const float *wx, int k, int ow, float *wv)
{
    for (int x = 0; x + 8 <= ow; x += 8)
        for (int j = 0; j < 4; j++) {
            float *d = wv + ((size_t)x * 4 + (size_t)j * 8) * k;
            const float *wa = wx + (size_t)(x + j) * k, *wb = wx + (size_t)(x + 4 + j) * k;
            for (int t = 0; t < k; t++)
                for (int l = 0; l < 4; l++) {
                    d[8 * t + l] = wa[t];
                    d[8 * t + 4 + l] = wb[t];
                }
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

/* What this CPU can run. cpuid traps to the hypervisor in a VM (microseconds), so it is asked
 * once and the answer kept. */
static int cpu_features(void)
{
    static atomic_int cached;
    int f = atomic_load_explicit(&cached, memory_order_relaxed);
    if (f)
        return f;
    f = CPU_KNOWN;
    /* __builtin_cpu_supports also checks that the OS saves the 256-bit registers. clang 14
     * knows no "f16c" there, hence cpuid for that one. */
    if (__builtin_cpu_supports("avx2"))
        f |= CPU_HAS_AVX2;
    unsigned a, b, c, d;
    if (__builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C))
        f |= CPU_HAS_F16C;
    atomic_store_explicit(&cached, f, memory_order_relaxed);
    return f;
}
#else
static int cpu_features(void)
{
    return CPU_KNOWN;
}
#endif

static void f32_to_f16(const float *in, uint16_t *out, int n, int f16c)
{
#if HAVE_X86
    if (f16c) {
        f32_to_f16_f16c(in, out, n);
        return;
    }
#endif
    for (int i = 0; i < n; i++)
        out[i] = sl_f32_to_f16(in[i]);
}

/* ---- output -------------------------------------------------------------------------------- */

/* How a row reaches the destination. */
typedef enum store_mode {
    STORE_DIRECT,    /* float32 CHW: the horizontal pass writes q * a + b into the tensor */
    STORE_F16_PLANE, /* float16 CHW: it writes q * a + b into `row`, converted plane by plane */
    STORE_LEVELS,    /* otherwise: it writes levels into `row`, store_row lays them out */
} store_mode;

/* One output row of levels (c planes of ow, already flipped and rounded) into a uint8 tensor
 * or an HWC float one. tmp holds ow * c floats. */
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
                    p[(size_t)x * c] = (uint8_t)pl[x];
            } else {
                uint8_t *p = d + ((size_t)ch * oh + y) * ow;
                for (int x = 0; x < ow; x++)
                    p[x] = (uint8_t)pl[x];
            }
        }
        return;
    }
    /* HWC float */
    float *dst = o->dtype == SL_DTYPE_F32 ? (float *)o->data + (size_t)y * n : tmp;
    for (int ch = 0; ch < c; ch++) {
        const float *pl = row + (size_t)ch * ow;
        const float a = o->a[ch], b = o->b[ch];
        for (int x = 0; x < ow; x++)
            dst[(size_t)x * c + ch] = pl[x] * a + b;
    }
    if (o->dtype == SL_DTYPE_F16)
        f32_to_f16(tmp, (uint16_t *)o->data + (size_t)y * n, (int)n, o->f16c);
}

/* ---- the pass ------------------------------------------------------------------------------ */

int sl__resample_impl(int impl, const uint8_t *src, int sw, int sh, size_t stride, int c, double rx,
                      double ry, double rw, double rh, int ow, int oh, int flip,
                      const sl__resample_out *o)
{
    if (ow <= 0 || oh <= 0 || c < 1 || c > 4 || !(rw > 0) || !(rh > 0) || rx < 0 || ry < 0 ||
        rx + rw > sw + 1e-6 || ry + rh > sh + 1e-6)
        return SL_ERR_INVAL;
    const int cpu = cpu_features();
    if (impl == SL__RESAMPLE_BEST)
        impl = cpu & CPU_HAS_AVX2 ? SL__RESAMPLE_AVX2 : SL__RESAMPLE_C;
    if (impl == SL__RESAMPLE_AVX2 && !(cpu & CPU_HAS_AVX2))
        return SL_ERR_UNSUPPORTED;
    if (impl != SL__RESAMPLE_C && impl != SL__RESAMPLE_AVX2)
        return SL_ERR_INVAL;
    const int avx2 = HAVE_X86 && impl == SL__RESAMPLE_AVX2;
    /* Bounds of the taps before the allocation that holds them. */
    const int kx = axis_taps(rw, ow, sw), ky = axis_taps(rh, oh, sh);
    /* acc has 8 floats of slack: the AVX2 horizontal reads 4 floats per tap, one past the last
     * value it uses. */
    const size_t acc_n = (size_t)sw * c + 8, row_n = (size_t)ow * c;
    const size_t wv_n = avx2 && c == 3 ? (size_t)ow * kx * 4 : 0;
    const size_t bytes =
        sizeof(int) * (2 * (size_t)ow + oh) +
        sizeof(float) * ((size_t)ow * kx + (size_t)oh * ky + wv_n + acc_n + 2 * row_n);
    char *mem = sl_malloc(bytes);
    if (!mem)
        return SL_ERR_NOMEM;
    int *lo_x = (int *)mem;             /* (ow) */
    int *off = lo_x + ow;               /* (ow) horizontal taps' start in acc, in floats */
    int *lo_y = off + ow;               /* (oh) */
    float *w_x = (float *)(lo_y + oh);  /* (ow, kx) */
    float *w_y = w_x + (size_t)ow * kx; /* (oh, ky) */
    float *wv = w_y + (size_t)oh * ky;  /* (ow / 8, 4, kx, 8) AVX2 weights, c == 3 only */
    float *acc = wv + wv_n;             /* (acc_n) one vertically filtered row */
    float *row = acc + acc_n;           /* (c, ow) one output row, planar */
    float *tmp = row + row_n;           /* (ow * c) staging for float16 HWC */
    sl__resample_out out = *o;
    out.f16c = o->dtype == SL_DTYPE_F16 && (cpu & CPU_HAS_F16C);
    o = &out;
    axis h, v;
    axis_init(&h, rx, rw, sw, ow, flip, lo_x, w_x);
    axis_init(&v, ry, rh, sh, oh, 0, lo_y, w_y);
    for (int x = 0; x < ow; x++)
        off[x] = (lo_x[x] - h.lo_px) * c;
    const size_t span = (size_t)(h.hi_px - h.lo_px) * c;
    memset(acc + span, 0, (acc_n - span) * sizeof(float));
    const store_mode mode = o->layout == SL_IMAGE_HWC || o->dtype == SL_DTYPE_U8 ? STORE_LEVELS
                            : o->dtype == SL_DTYPE_F32                           ? STORE_DIRECT
                                                                                 : STORE_F16_PLANE;
    planes pl;
    for (int ch = 0; ch < c; ch++) {
        pl.a[ch] = mode == STORE_LEVELS ? 1 : o->a[ch];
        pl.b[ch] = mode == STORE_LEVELS ? 0 : o->b[ch];
        pl.dst[ch] = row + (size_t)ch * ow;
    }
#if HAVE_X86
    if (wv_n)
        expand_weights(w_x, h.k, ow, wv);
#endif
    for (int y = 0; y < oh; y++) {
        const uint8_t *p = src + (size_t)v.lo[y] * stride + (size_t)h.lo_px * c;
        const float *wy = v.w + (size_t)y * v.k;
        if (mode == STORE_DIRECT)
            for (int ch = 0; ch < c; ch++)
                pl.dst[ch] = (float *)o->data + ((size_t)ch * oh + y) * ow;
        int x = 0;
#if HAVE_X86
        if (avx2) {
            vertical_avx2(p, stride, v.k, wy, span, acc);
            if (c == 3)
                x = horizontal3_avx2(acc, h.k, off, wv, ow, &pl);
        } else
#endif
        {
            vertical_c(p, stride, v.k, wy, span, acc);
        }
        if (c == 3) /* a constant channel count lets the loops unroll */
            horizontal_c(acc, 3, h.k, off, w_x, x, ow, &pl);
        else
            horizontal_c(acc, c, h.k, off, w_x, x, ow, &pl);
        if (mode == STORE_F16_PLANE) {
            for (int ch = 0; ch < c; ch++)
                f32_to_f16(row + (size_t)ch * ow, (uint16_t *)o->data + ((size_t)ch * oh + y) * ow,
                           ow, o->f16c);
        } else if (mode == STORE_LEVELS) {
            if (c == 3)
                store_row(o, row, ow, oh, 3, y, tmp);
            else
                store_row(o, row, ow, oh, c, y, tmp);
        }
    }
    sl_free(mem);
    return 0;
}

int sl__resample(const uint8_t *src, int sw, int sh, size_t stride, int c, double rx, double ry,
                 double rw, double rh, int ow, int oh, int flip, const sl__resample_out *o)
{
    return sl__resample_impl(SL__RESAMPLE_BEST, src, sw, sh, stride, c, rx, ry, rw, rh, ow, oh,
                             flip, o);
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
