/* The resampler's implementations against each other: on random images, regions (fractional
 * ones too, as DCT-scaled decodes produce), output sizes from 1 pixel to 3x upscales and 20x
 * downscales, flip on and off, every dtype and layout and 1 to 4 channels, the AVX2 path's
 * output is byte-identical to the portable C path's. Also, for whichever path the CPU runs:
 * pixels outside the region never reach the output, flip mirrors the output exactly, and
 * float16 output is float32 output rounded to nearest even. AVX2 comparisons are skipped on
 * CPUs without AVX2. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"
#include "sluice/half.h"

typedef struct out_kind {
    sl_dtype dtype;
    sl_image_layout layout;
} out_kind;

static const out_kind KINDS[] = {{SL_DTYPE_F32, SL_IMAGE_CHW}, {SL_DTYPE_F32, SL_IMAGE_HWC},
                                 {SL_DTYPE_F16, SL_IMAGE_CHW}, {SL_DTYPE_F16, SL_IMAGE_HWC},
                                 {SL_DTYPE_U8, SL_IMAGE_CHW},  {SL_DTYPE_U8, SL_IMAGE_HWC}};

static uint8_t *random_pixels(sl_rng *r, size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)sl_rng_u32(r);
    return p;
}

/* An output writer for kind k with ImageNet-like constants for c channels. */
static sl__resample_out writer(out_kind k, int c, void *data)
{
    sl_image_normalize_opts n = {.dtype = k.dtype, .layout = k.layout};
    for (int ch = 0; ch < 4; ch++) {
        n.mean[ch] = 0.4f + 0.02f * ch;
        n.std[ch] = 0.22f + 0.005f * ch;
    }
    sl__resample_out o;
    sl__resample_out_from_norm(&o, &n, c, data);
    return o;
}

static int have_avx2(void)
{
    const uint8_t px[3] = {0};
    uint8_t out[3];
    const sl__resample_out o = {.dtype = SL_DTYPE_U8, .layout = SL_IMAGE_HWC, .data = out};
    return sl__resample_impl(SL__RESAMPLE_AVX2, px, 1, 1, 3, 3, 0, 0, 1, 1, 1, 1, 0, &o) == 0;
}

typedef struct rcase {
    int sw, sh, c, ow, oh, flip;
    double rx, ry, rw, rh;
} rcase;

/* A random region (fractional edges half the time) of a random image and a random output
 * size: mostly within 3x either way, sometimes a large downscale (many taps per output). */
static rcase random_case(sl_rng *r, int c)
{
    rcase k = {.c = c};
    k.sw = 1 + (int)sl_rng_below(r, 120);
    k.sh = 1 + (int)sl_rng_below(r, 90);
    k.rw = k.sw * (0.05 + 0.95 * sl_rng_uniform(r));
    k.rh = k.sh * (0.05 + 0.95 * sl_rng_uniform(r));
    if (sl_rng_below(r, 2)) {
        k.rw = ceil(k.rw);
        k.rh = ceil(k.rh);
        k.rx = (double)sl_rng_below(r, (uint64_t)(k.sw - k.rw) + 1);
        k.ry = (double)sl_rng_below(r, (uint64_t)(k.sh - k.rh) + 1);
    } else {
        k.rx = (k.sw - k.rw) * sl_rng_uniform(r);
        k.ry = (k.sh - k.rh) * sl_rng_uniform(r);
    }
    const double f = sl_rng_below(r, 8) == 0 ? 0.05 : 0.3 + 2.7 * sl_rng_uniform(r);
    k.ow = SL_MAX(1, (int)(k.rw * f + 0.5));
    const double fy = sl_rng_below(r, 8) == 0 ? 0.05 : f;
    k.oh = SL_MAX(1, (int)(k.rh * fy + 0.5));
    k.flip = (int)sl_rng_below(r, 2);
    return k;
}

/* Runs case k through implementation impl into a fresh buffer (malloc'd, caller frees). */
static void *run(int impl, const rcase *k, const uint8_t *src, size_t stride, out_kind kind,
                 size_t *bytes)
{
    *bytes = (size_t)k->ow * k->oh * k->c * sl_dtype_size(kind.dtype);
    void *data = malloc(*bytes);
    assert_non_null(data);
    memset(data, 0xA5, *bytes);
    const sl__resample_out o = writer(kind, k->c, data);
    const int rc = sl__resample_impl(impl, src, k->sw, k->sh, stride, k->c, k->rx, k->ry, k->rw,
                                     k->rh, k->ow, k->oh, k->flip, &o);
    if (rc != 0)
        fail_msg("%s on %dx%dx%d region (%.17g,%.17g %.17gx%.17g) -> %dx%d", sl_err_name(rc), k->sw,
                 k->sh, k->c, k->rx, k->ry, k->rw, k->rh, k->ow, k->oh);
    return data;
}

static void compare_paths(int c, int cases, uint64_t seed)
{
    if (!have_avx2())
        skip();
    sl_rng r;
    sl_rng_init(&r, seed, 0, 0);
    for (int i = 0; i < cases; i++) {
        const rcase k = random_case(&r, c);
        /* A row stride larger than the row, as a decoder's padded rows would have. */
        const size_t stride = (size_t)k.sw * c + sl_rng_below(&r, 5);
        uint8_t *src = random_pixels(&r, stride * k.sh);
        const out_kind kind = KINDS[i % SL_ARRAY_LEN(KINDS)];
        size_t na, nb;
        void *a = run(SL__RESAMPLE_C, &k, src, stride, kind, &na);
        void *b = run(SL__RESAMPLE_AVX2, &k, src, stride, kind, &nb);
        if (memcmp(a, b, na) != 0)
            fail_msg("case %d: %dx%dx%d region (%.3f,%.3f %.3fx%.3f) -> %dx%d flip %d dtype %d "
                     "layout %d: AVX2 differs from C",
                     i, k.sw, k.sh, c, k.rx, k.ry, k.rw, k.rh, k.ow, k.oh, k.flip, kind.dtype,
                     kind.layout);
        free(a);
        free(b);
        free(src);
    }
}

static void test_avx2_equals_c_rgb(void **state)
{
    compare_paths(3, 600, 11);
}

static void test_avx2_equals_c_gray_two_and_four_channels(void **state)
{
    compare_paths(1, 150, 12);
    compare_paths(2, 150, 13);
    compare_paths(4, 150, 14);
}

/* 224x224 crops of a 500x375 image, the fused path's everyday case, every size of crop that
 * random_resized_crop gives (taps from 2 to 6 per axis). */
static void test_avx2_equals_c_on_imagenet_sized_crops(void **state)
{
    if (!have_avx2())
        skip();
    sl_rng r;
    sl_rng_init(&r, 15, 0, 0);
    const int sw = 500, sh = 375;
    uint8_t *src = random_pixels(&r, (size_t)sw * sh * 3);
    const double scale[2] = {0.08, 1.0}, ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
    for (int i = 0; i < 12; i++) {
        sl_image_rect w;
        assert_int_equal(sl_image_random_resized_crop_params(sw, sh, scale, ratio, &r, &w), 0);
        const rcase k = {sw, sh, 3, 224, 224, i & 1, w.x, w.y, w.w, w.h};
        size_t na, nb;
        void *a = run(SL__RESAMPLE_C, &k, src, (size_t)sw * 3, KINDS[0], &na);
        void *b = run(SL__RESAMPLE_AVX2, &k, src, (size_t)sw * 3, KINDS[0], &nb);
        if (memcmp(a, b, na) != 0)
            fail_msg("crop %dx%d at (%d,%d): AVX2 differs from C", w.w, w.h, w.x, w.y);
        free(a);
        free(b);
    }
    free(src);
}

/* A region inside a frame of 255s: only zeros may reach the output, at every size. */
static void test_taps_stay_inside_the_region(void **state)
{
    const int sw = 64, sh = 48, c = 3;
    uint8_t *src = malloc((size_t)sw * sh * c);
    assert_non_null(src);
    memset(src, 255, (size_t)sw * sh * c);
    const int x0 = 9, y0 = 7, w = 21, h = 17;
    for (int y = y0; y < y0 + h; y++)
        memset(src + ((size_t)y * sw + x0) * c, 0, (size_t)w * c);
    static const int sizes[][2] = {{1, 1}, {5, 3}, {21, 17}, {40, 33}, {63, 50}, {8, 30}};
    for (int impl = SL__RESAMPLE_C; impl <= SL__RESAMPLE_AVX2; impl++) {
        if (impl == SL__RESAMPLE_AVX2 && !have_avx2())
            continue;
        for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
            const rcase k = {sw, sh, c, sizes[i][0], sizes[i][1], (int)i & 1, x0, y0, w, h};
            size_t n;
            uint8_t *out = run(impl, &k, src, (size_t)sw * c, KINDS[5], &n);
            for (size_t j = 0; j < n; j++)
                if (out[j] != 0)
                    fail_msg("impl %d, %dx%d: byte %zu is %d", impl, k.ow, k.oh, j, out[j]);
            free(out);
        }
    }
    free(src);
}

/* flip = 1 gives the flip = 0 output mirrored column for column, bit for bit. */
static void test_flip_mirrors_the_output(void **state)
{
    sl_rng r;
    sl_rng_init(&r, 16, 0, 0);
    for (int i = 0; i < 40; i++) {
        rcase k = random_case(&r, 3);
        uint8_t *src = random_pixels(&r, (size_t)k.sw * k.sh * 3);
        size_t n;
        k.flip = 0;
        float *plain = run(SL__RESAMPLE_BEST, &k, src, (size_t)k.sw * 3, KINDS[0], &n);
        k.flip = 1;
        float *mirrored = run(SL__RESAMPLE_BEST, &k, src, (size_t)k.sw * 3, KINDS[0], &n);
        for (int p = 0; p < 3 * k.oh; p++) /* CHW: plane rows one after another */
            for (int x = 0; x < k.ow; x++)
                if (memcmp(&plain[(size_t)p * k.ow + x], &mirrored[(size_t)p * k.ow + k.ow - 1 - x],
                           sizeof(float)) != 0)
                    fail_msg("case %d row %d column %d differs", i, p, x);
        free(plain);
        free(mirrored);
        free(src);
    }
}

/* float16 output = sl_f32_to_f16 of the float32 output (F16C where present, software else). */
static void test_float16_is_rounded_float32(void **state)
{
    sl_rng r;
    sl_rng_init(&r, 17, 0, 0);
    for (int i = 0; i < 40; i++) {
        const rcase k = random_case(&r, 3);
        uint8_t *src = random_pixels(&r, (size_t)k.sw * k.sh * 3);
        for (int layout = 0; layout < 2; layout++) {
            const out_kind f32 = {SL_DTYPE_F32, layout}, f16 = {SL_DTYPE_F16, layout};
            size_t n32, n16;
            const float *a = run(SL__RESAMPLE_BEST, &k, src, (size_t)k.sw * 3, f32, &n32);
            const uint16_t *h = run(SL__RESAMPLE_BEST, &k, src, (size_t)k.sw * 3, f16, &n16);
            for (size_t j = 0; j < n16 / 2; j++)
                if (h[j] != sl_f32_to_f16(a[j]))
                    fail_msg("case %d value %zu: %04x, want %04x", i, j, h[j], sl_f32_to_f16(a[j]));
            free((void *)a);
            free((void *)h);
        }
        free(src);
    }
}

static void test_unknown_implementation_is_refused(void **state)
{
    const uint8_t px[3] = {0};
    uint8_t out[3];
    const sl__resample_out o = {.dtype = SL_DTYPE_U8, .layout = SL_IMAGE_HWC, .data = out};
    assert_int_equal(sl__resample_impl(7, px, 1, 1, 3, 3, 0, 0, 1, 1, 1, 1, 0, &o), SL_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx2_equals_c_rgb),
        cmocka_unit_test(test_avx2_equals_c_gray_two_and_four_channels),
        cmocka_unit_test(test_avx2_equals_c_on_imagenet_sized_crops),
        cmocka_unit_test(test_taps_stay_inside_the_region),
        cmocka_unit_test(test_flip_mirrors_the_output),
        cmocka_unit_test(test_float16_is_rounded_float32),
        cmocka_unit_test(test_unknown_implementation_is_refused),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
