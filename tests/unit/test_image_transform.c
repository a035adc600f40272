/* Pixel ops on uint8 (H, W, C) tensors: crop with zero padding, center_crop's and resize's
 * window arithmetic (torchvision's rounding), the antialiased bilinear resampler (hand-computed
 * values and a plain double-precision reference of the documented filter), flip, and
 * normalize to float32/float16 in HWC and CHW. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/half.h"
#include "sluice/image.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static sl_tensor image_of(int h, int w, int c, const uint8_t *px)
{
    sl_tensor t;
    const int64_t shape[3] = {h, w, c};
    assert_int_equal(sl_tensor_alloc(&t, SL_DTYPE_U8, 3, shape), 0);
    memcpy(t.data, px, (size_t)h * w * c);
    return t;
}

static sl_tensor random_image(int h, int w, int c, uint64_t seed)
{
    sl_tensor t;
    const int64_t shape[3] = {h, w, c};
    assert_int_equal(sl_tensor_alloc(&t, SL_DTYPE_U8, 3, shape), 0);
    sl_rng r;
    sl_rng_init(&r, seed, 0, 0);
    uint8_t *p = t.data;
    for (size_t i = 0; i < sl_tensor_nbytes(&t); i++)
        p[i] = (uint8_t)sl_rng_u32(&r);
    return t;
}

static void test_crop_copies_the_window(void **state)
{
    const uint8_t px[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* 3 rows x 4, gray */
    sl_tensor src = image_of(3, 4, 1, px), out;
    const sl_image_rect r = {1, 1, 2, 2};
    assert_int_equal(sl_image_crop(&src, &r, &out), 0);
    assert_int_equal(out.shape[0], 2);
    assert_int_equal(out.shape[1], 2);
    const uint8_t want[] = {6, 7, 10, 11};
    assert_memory_equal(out.data, want, 4);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_crop_pads_outside_with_zeros(void **state)
{
    const uint8_t px[] = {1, 2, 3, 4}; /* 2 x 2 */
    sl_tensor src = image_of(2, 2, 1, px), out;
    sl_image_rect r;
    sl_image_center_crop_params(2, 2, 5, 4, &r); /* torchvision pads 1 left, 2 right, 1, 1 */
    assert_int_equal(r.x, -1);
    assert_int_equal(r.y, -1);
    assert_int_equal(sl_image_crop(&src, &r, &out), 0);
    const uint8_t want[] = {0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out.data, want, sizeof want);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_center_crop_rounds_half_to_even(void **state)
{
    /* (W, H, w, h) -> (x, y): round((W - w) / 2) as Python rounds. */
    const int cases[][6] = {{10, 10, 7, 7, 2, 2},
                            {9, 9, 4, 4, 2, 2},
                            {11, 9, 4, 4, 4, 2},
                            {8, 6, 8, 6, 0, 0},
                            {256, 341, 224, 224, 16, 58}};
    for (size_t i = 0; i < N_OF(cases); i++) {
        sl_image_rect r;
        sl_image_center_crop_params(cases[i][0], cases[i][1], cases[i][2], cases[i][3], &r);
        assert_int_equal(r.x, cases[i][4]);
        assert_int_equal(r.y, cases[i][5]);
        assert_int_equal(r.w, cases[i][2]);
        assert_int_equal(r.h, cases[i][3]);
    }
}

static void test_resize_size_matches_shorter_side(void **state)
{
    int w, h;
    sl_image_resize_size(500, 375, 256, &w, &h);
    assert_int_equal(w, 341);
    assert_int_equal(h, 256);
    sl_image_resize_size(375, 500, 224, &w, &h);
    assert_int_equal(w, 224);
    assert_int_equal(h, 298);
    sl_image_resize_size(300, 300, 224, &w, &h);
    assert_int_equal(w, 224);
    assert_int_equal(h, 224);
}

static void test_upscale_is_bilinear_with_half_pixel_centres(void **state)
{
    const uint8_t px[] = {0, 100};
    sl_tensor src = image_of(1, 2, 1, px), out;
    assert_int_equal(sl_image_resize(&src, 4, 1, &out), 0);
    const uint8_t want[] = {0, 25, 75, 100};
    assert_memory_equal(out.data, want, 4);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_downscale_averages_the_footprint(void **state)
{
    /* Factor 2: a triangle of radius 2 source pixels, cut at the image edge and renormalised:
     * (0*.75 + 0*.75 + 100*.25) / 1.75 = 14.3 and (0*.25 + 100*.75 + 100*.75) / 1.75 = 85.7. */
    const uint8_t px[] = {0, 0, 100, 100};
    sl_tensor src = image_of(1, 4, 1, px), out;
    assert_int_equal(sl_image_resize(&src, 2, 1, &out), 0);
    const uint8_t want[] = {14, 86};
    assert_memory_equal(out.data, want, 2);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_same_size_resize_is_identity(void **state)
{
    sl_tensor src = random_image(13, 17, 3, 1), out;
    assert_int_equal(sl_image_resize(&src, 17, 13, &out), 0);
    assert_memory_equal(out.data, src.data, sl_tensor_nbytes(&src));
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

/* The filter as documented, in doubles, one axis at a time (horizontal, then vertical). */
static double tap_weights(double r0, double len, int n_in, int out, int i, int j)
{
    const double s = len / out, fs = s > 1 ? s : 1, c = r0 + (i + 0.5) * s;
    const int lo = (int)floor(r0), hi = (int)ceil(r0 + len);
    double sum = 0;
    for (int k = lo; k < hi && k < n_in; k++)
        sum += fmax(0, 1 - fabs(k + 0.5 - c) / fs) * (fabs(k + 0.5 - c) < fs);
    if (j < lo || j >= hi)
        return 0;
    return fmax(0, 1 - fabs(j + 0.5 - c) / fs) * (fabs(j + 0.5 - c) < fs) / sum;
}

static void test_resized_crop_matches_reference_filter(void **state)
{
    const int W = 53, H = 41, C = 3;
    sl_tensor src = random_image(H, W, C, 7);
    const uint8_t *p = src.data;
    const struct {
        sl_image_rect r;
        int ow, oh;
    } cases[] = {{{0, 0, 53, 41}, 29, 67},
                 {{5, 3, 40, 30}, 17, 11},
                 {{10, 7, 9, 5}, 31, 23},
                 {{0, 0, 53, 41}, 7, 5}};
    for (size_t k = 0; k < N_OF(cases); k++) {
        const sl_image_rect r = cases[k].r;
        const int ow = cases[k].ow, oh = cases[k].oh;
        sl_tensor out;
        assert_int_equal(sl_image_resized_crop(&src, &r, ow, oh, &out), 0);
        assert_int_equal(out.shape[0], oh);
        assert_int_equal(out.shape[1], ow);
        const uint8_t *o = out.data;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int c = 0; c < C; c++) {
                    double v = 0;
                    for (int sy = 0; sy < H; sy++) {
                        const double wy = tap_weights(r.y, r.h, H, oh, y, sy);
                        if (wy == 0)
                            continue;
                        for (int sx = 0; sx < W; sx++)
                            v += wy * tap_weights(r.x, r.w, W, ow, x, sx) *
                                 p[((size_t)sy * W + sx) * C + c];
                    }
                    const int want = (int)floor(v + 0.5);
                    const int got = o[((size_t)y * ow + x) * C + c];
                    if (abs(got - want) > 1 || (fabs(v - floor(v) - 0.5) > 0.01 && got != want))
                        fail_msg("case %zu (%d,%d,%d): got %d want %.3f", k, x, y, c, got, v);
                }
        sl_tensor_release(&out);
    }
    sl_tensor_release(&src);
}

static void test_flip_mirrors_columns(void **state)
{
    const uint8_t px[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* 2 rows x 2 px x RGB */
    sl_tensor src = image_of(2, 2, 3, px), out;
    assert_int_equal(sl_image_flip(&src, &out), 0);
    const uint8_t want[] = {4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9};
    assert_memory_equal(out.data, want, sizeof want);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_normalize_imagenet_chw_float32(void **state)
{
    const uint8_t px[] = {0, 128, 255, 10, 20, 30}; /* 1 row x 2 px */
    sl_tensor src = image_of(1, 2, 3, px), out;
    sl_image_normalize_opts o;
    assert_int_equal(sl_image_normalize_preset("imagenet", &o), 0);
    assert_int_equal(sl_image_normalize(&src, &o, &out), 0);
    assert_int_equal(out.dtype, SL_DTYPE_F32);
    assert_int_equal(out.shape[0], 3);
    assert_int_equal(out.shape[1], 1);
    assert_int_equal(out.shape[2], 2);
    const double mean[3] = {0.485, 0.456, 0.406}, sd[3] = {0.229, 0.224, 0.225};
    const float *f = out.data;
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 2; x++)
            assert_true(fabs(f[c * 2 + x] - (px[x * 3 + c] / 255.0 - mean[c]) / sd[c]) < 1e-5);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_normalize_float16_hwc(void **state)
{
    sl_tensor src = random_image(5, 7, 3, 3), f32, f16;
    sl_image_normalize_opts o;
    assert_int_equal(sl_image_normalize_preset("imagenet", &o), 0);
    o.layout = SL_IMAGE_HWC;
    assert_int_equal(sl_image_normalize(&src, &o, &f32), 0);
    o.dtype = SL_DTYPE_F16;
    assert_int_equal(sl_image_normalize(&src, &o, &f16), 0);
    assert_int_equal(f16.dtype, SL_DTYPE_F16);
    assert_int_equal(f16.shape[2], 3);
    const float *a = f32.data;
    const uint16_t *h = f16.data;
    for (int i = 0; i < 5 * 7 * 3; i++)
        assert_int_equal(h[i], sl_f32_to_f16(a[i]));
    sl_tensor_release(&f16);
    sl_tensor_release(&f32);
    sl_tensor_release(&src);
}

static void test_normalize_uint8_passes_pixels_through(void **state)
{
    const uint8_t px[] = {1, 2, 3, 4, 5, 6};
    sl_tensor src = image_of(1, 2, 3, px), out;
    sl_image_normalize_opts o;
    assert_int_equal(sl_image_normalize_preset("none", &o), 0);
    o.dtype = SL_DTYPE_U8;
    assert_int_equal(sl_image_normalize(&src, &o, &out), 0);
    const uint8_t want[] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(out.data, want, 6);
    sl_tensor_release(&out);
    sl_tensor_release(&src);
}

static void test_bad_arguments(void **state)
{
    sl_image_normalize_opts o;
    assert_int_equal(sl_image_normalize_preset("cifar", &o), SL_ERR_NOT_FOUND);
    sl_tensor f, out;
    const int64_t shape[3] = {2, 2, 3};
    assert_int_equal(sl_tensor_alloc(&f, SL_DTYPE_F32, 3, shape), 0);
    assert_int_equal(sl_image_flip(&f, &out), SL_ERR_TYPE);
    assert_int_equal(sl_image_resize(&f, 4, 4, &out), SL_ERR_TYPE);
    sl_tensor_release(&f);
    sl_tensor src = random_image(4, 4, 3, 1);
    const sl_image_rect outside = {2, 2, 3, 3};
    assert_int_equal(sl_image_resized_crop(&src, &outside, 2, 2, &out), SL_ERR_INVAL);
    assert_int_equal(sl_image_resize(&src, 0, 2, &out), SL_ERR_INVAL);
    sl_tensor_release(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_copies_the_window),
        cmocka_unit_test(test_crop_pads_outside_with_zeros),
        cmocka_unit_test(test_center_crop_rounds_half_to_even),
        cmocka_unit_test(test_resize_size_matches_shorter_side),
        cmocka_unit_test(test_upscale_is_bilinear_with_half_pixel_centres),
        cmocka_unit_test(test_downscale_averages_the_footprint),
        cmocka_unit_test(test_same_size_resize_is_identity),
        cmocka_unit_test(test_resized_crop_matches_reference_filter),
        cmocka_unit_test(test_flip_mirrors_columns),
        cmocka_unit_test(test_normalize_imagenet_chw_float32),
        cmocka_unit_test(test_normalize_float16_hwc),
        cmocka_unit_test(test_normalize_uint8_passes_pixels_through),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
