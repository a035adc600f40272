/* Image decoding: full-scale JPEG decode is byte-identical to TurboJPEG's tjDecompress2 for
 * every kind of JPEG in tests/data/images; region-of-interest and DCT-scaled decodes stay
 * within 2 levels (mean absolute difference) of decode-then-crop/resize; the probe reads the
 * header; PNG in every colour type and depth decodes to the expected RGB; CMYK matches PIL. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "sluice/image.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const jpeg_kinds[] = {"rgb444",      "rgb422",  "rgb420",    "gray",
                                         "progressive", "restart", "arithmetic"};

static uint8_t *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/%s", sl_test_data_dir(), name);
    uint8_t *data;
    assert_int_equal(sl_test_read_file(path, &data, len), 0);
    return data;
}

/* TurboJPEG's own RGB decode (flags 0: accurate DCT, fancy upsampling). */
static uint8_t *tj_decode(const uint8_t *jpg, size_t len, int *w, int *h)
{
    tjhandle tj = tjInitDecompress();
    assert_non_null(tj);
    int sub, cs;
    assert_int_equal(tjDecompressHeader3(tj, jpg, (unsigned long)len, w, h, &sub, &cs), 0);
    uint8_t *rgb = malloc((size_t)*w * *h * 3);
    assert_int_equal(tjDecompress2(tj, jpg, (unsigned long)len, rgb, *w, 0, *h, TJPF_RGB, 0), 0);
    tjDestroy(tj);
    return rgb;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

static void test_full_decode_matches_tjdecompress2(void **state)
{
    for (size_t k = 0; k < N_OF(jpeg_kinds); k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.jpg", jpeg_kinds[k]);
        size_t len;
        uint8_t *jpg = load(name, &len);
        int w, h;
        uint8_t *ref = tj_decode(jpg, len, &w, &h);
        sl_tensor t;
        sl_image_decoded d;
        char err[256];
        assert_int_equal(sl_image_decode(jpg, len, NULL, &t, &d, err, sizeof err), 0);
        assert_int_equal(t.dtype, SL_DTYPE_U8);
        assert_int_equal(t.rank, 3);
        assert_int_equal(t.shape[0], h);
        assert_int_equal(t.shape[1], w);
        assert_int_equal(t.shape[2], 3);
        assert_int_equal(d.scale_num, 8);
        if (memcmp(t.data, ref, (size_t)w * h * 3) != 0)
            fail_msg("%s: decode differs from tjDecompress2", name);
        sl_tensor_release(&t);
        free(ref);
        free(jpg);
    }
}

/* rows [y, y+h) and columns [x, x+w) of an (H, W, 3) image. */
static uint8_t *cut(const uint8_t *img, int W, int x, int y, int w, int h)
{
    uint8_t *out = malloc((size_t)w * h * 3);
    for (int r = 0; r < h; r++)
        memcpy(out + (size_t)r * w * 3, img + ((size_t)(y + r) * W + x) * 3, (size_t)w * 3);
    return out;
}

static void test_roi_decode_equals_crop_of_full_decode(void **state)
{
    for (size_t k = 0; k < N_OF(jpeg_kinds); k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.jpg", jpeg_kinds[k]);
        size_t len;
        uint8_t *jpg = load(name, &len);
        int W, H;
        uint8_t *ref = tj_decode(jpg, len, &W, &H);
        const sl_image_rect rects[] = {
            {17, 9, 100, 77}, {64, 32, 96, 64},     {W - 50, H - 41, 50, 41},
            {0, 0, W, 1},     {1, H - 1, W - 1, 1}, {W - 1, 0, 1, H},
            {0, 0, W, H}};
        for (size_t i = 0; i < N_OF(rects); i++) {
            const sl_image_rect r = rects[i];
            const sl_image_decode_opts o = {.crop = r};
            sl_tensor t;
            sl_image_decoded d;
            assert_int_equal(sl_image_decode(jpg, len, &o, &t, &d, NULL, 0), 0);
            assert_int_equal(t.shape[0], r.h);
            assert_int_equal(t.shape[1], r.w);
            assert_true(d.rx == 0 && d.ry == 0 && d.rw == r.w && d.rh == r.h);
            uint8_t *want = cut(ref, W, r.x, r.y, r.w, r.h);
            const double mad = mean_abs_diff(t.data, want, (size_t)r.w * r.h * 3);
            if (mad > 2)
                fail_msg("%s rect %d: mean abs diff %.3f", name, (int)i, mad);
            free(want);
            sl_tensor_release(&t);
        }
        free(ref);
        free(jpg);
    }
}

/* Area resize (each output pixel the overlap-weighted mean of the source pixels under its
 * footprint): what a DCT-domain downscale approximates. */
static uint8_t *area_resize(const uint8_t *img, int W, sl_image_rect r, int ow, int oh)
{
    uint8_t *out = malloc((size_t)ow * oh * 3);
    const double sx = (double)r.w / ow, sy = (double)r.h / oh;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int c = 0; c < 3; c++) {
                double sum = 0, wsum = 0;
                const double y0 = oy * sy, y1 = y0 + sy, x0 = ox * sx, x1 = x0 + sx;
                for (int y = (int)floor(y0); y < (int)ceil(y1); y++)
                    for (int x = (int)floor(x0); x < (int)ceil(x1); x++) {
                        const double wy = fmin(y + 1, y1) - fmax(y, y0);
                        const double wx = fmin(x + 1, x1) - fmax(x, x0);
                        sum += wx * wy * img[((size_t)(r.y + y) * W + r.x + x) * 3 + c];
                        wsum += wx * wy;
                    }
                out[((size_t)oy * ow + ox) * 3 + c] = (uint8_t)floor(sum / wsum + 0.5);
            }
    return out;
}

static void test_scaled_decode_close_to_decode_then_resize(void **state)
{
    for (size_t k = 0; k < N_OF(jpeg_kinds); k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.jpg", jpeg_kinds[k]);
        size_t len;
        uint8_t *jpg = load(name, &len);
        sl_tensor full;
        assert_int_equal(sl_image_decode(jpg, len, NULL, &full, NULL, NULL, 0), 0);
        /* A window at multiples of 8 so every scale maps it to whole pixels. */
        const sl_image_rect r = {16, 8, 160, 120};
        for (int m = 1; m <= 7; m++) {
            const sl_image_decode_opts o = {.crop = r,
                                            .min_w = r.w * m / 8,
                                            .min_h = r.h * m / 8,
                                            .scales = SL_IMAGE_SCALES_ALL};
            sl_tensor t;
            sl_image_decoded d;
            assert_int_equal(sl_image_decode(jpg, len, &o, &t, &d, NULL, 0), 0);
            if (!strcmp(jpeg_kinds[k], "rgb422") && m < 4) {
                /* 4:2:2 never decodes below 1/2 (see pick_scale in jpeg_decode.c). */
                assert_int_equal(d.scale_num, 4);
                sl_tensor_release(&t);
                continue;
            }
            assert_int_equal(d.scale_num, m);
            assert_int_equal(t.shape[1], r.w * m / 8);
            assert_int_equal(t.shape[0], r.h * m / 8);
            uint8_t *want = area_resize(full.data, (int)full.shape[1], r, r.w * m / 8, r.h * m / 8);
            const double mad = mean_abs_diff(t.data, want, sl_tensor_nbytes(&t));
            if (getenv("SL_TEST_VERBOSE"))
                print_message("%s scale %d/8: mean abs diff %.3f\n", name, m, mad);
            /* The SIMD scales (1/8, 1/4, 1/2: what sluice uses by default) stay within 2 levels
             * of an area resize. The others are a different low-pass filter than an area mean
             * over a non-integer footprint (measured 2.3 to 2.9 on this photo), so they get a
             * looser bound. */
            const double bound = (SL_IMAGE_SCALES_FAST >> (m - 1)) & 1 ? 2.0 : 3.2;
            if (mad > bound)
                fail_msg("%s scale %d/8: mean abs diff %.3f", name, m, mad);
            free(want);
            sl_tensor_release(&t);
        }
        sl_tensor_release(&full);
        free(jpg);
    }
}

static void test_scale_is_smallest_fast_one_keeping_the_size(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb420.jpg", &len);
    /* (min_w, min_h) -> expected numerator over the default SIMD scales 1, 2, 4, 8. */
    const struct {
        int min_w, min_h, m;
    } cases[] = {{30, 20, 1},  {31, 20, 2},   {60, 40, 2},   {61, 40, 4}, {120, 80, 4},
                 {121, 80, 8}, {241, 167, 8}, {400, 400, 8}, {0, 0, 8}};
    const sl_image_rect r = {0, 0, 240, 160};
    for (size_t i = 0; i < N_OF(cases); i++) {
        const sl_image_decode_opts o = {
            .crop = r, .min_w = cases[i].min_w, .min_h = cases[i].min_h};
        sl_tensor t;
        sl_image_decoded d;
        assert_int_equal(sl_image_decode(jpg, len, &o, &t, &d, NULL, 0), 0);
        assert_int_equal(d.scale_num, cases[i].m);
        assert_int_equal(t.shape[1], 240 * cases[i].m / 8);
        sl_tensor_release(&t);
    }
    free(jpg);
}

static void test_probe_reads_the_header(void **state)
{
    const struct {
        const char *name;
        sl_image_format f;
        int w, h;
        sl_image_color color;
        int progressive, alpha, depth;
    } cases[] = {
        {"rgb420.jpg", SL_IMAGE_JPEG, 241, 167, SL_IMAGE_COLOR_RGB, 0, 0, 8},
        {"gray.jpg", SL_IMAGE_JPEG, 241, 167, SL_IMAGE_COLOR_GRAY, 0, 0, 8},
        {"progressive.jpg", SL_IMAGE_JPEG, 241, 167, SL_IMAGE_COLOR_RGB, 1, 0, 8},
        {"corrupt/cmyk.jpg", SL_IMAGE_JPEG, 64, 48, SL_IMAGE_COLOR_CMYK, 0, 0, 8},
        {"rgba8.png", SL_IMAGE_PNG, 37, 23, SL_IMAGE_COLOR_RGB, 0, 1, 8},
        {"gray16.png", SL_IMAGE_PNG, 37, 23, SL_IMAGE_COLOR_GRAY, 0, 0, 16},
        {"palette4.png", SL_IMAGE_PNG, 37, 23, SL_IMAGE_COLOR_RGB, 0, 1, 4},
        {"interlaced.png", SL_IMAGE_PNG, 37, 23, SL_IMAGE_COLOR_RGB, 1, 0, 8},
        {"corrupt/png_named.jpg", SL_IMAGE_PNG, 37, 23, SL_IMAGE_COLOR_RGB, 0, 0, 8},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t len;
        uint8_t *data = load(cases[i].name, &len);
        sl_image_info info;
        char err[256];
        assert_int_equal(sl_image_probe(data, len, &info, err, sizeof err), 0);
        assert_int_equal(info.format, cases[i].f);
        assert_int_equal(info.width, cases[i].w);
        assert_int_equal(info.height, cases[i].h);
        assert_int_equal(info.color, cases[i].color);
        assert_int_equal(info.progressive, cases[i].progressive);
        assert_int_equal(info.has_alpha, cases[i].alpha);
        assert_int_equal(info.bit_depth, cases[i].depth);
        free(data);
    }
}

static void test_png_kinds_decode_to_expected_rgb(void **state)
{
    static const char *const kinds[] = {"rgb8",        "rgba8", "rgb16",    "gray8",     "gray16",
                                        "gray_alpha8", "gray1", "palette4", "interlaced"};
    for (size_t i = 0; i < N_OF(kinds); i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.png", kinds[i]);
        size_t len, elen;
        uint8_t *png = load(name, &len);
        snprintf(name, sizeof name, "%s.rgb", kinds[i]);
        uint8_t *expect = load(name, &elen);
        sl_tensor t;
        char err[256];
        assert_int_equal(sl_image_decode(png, len, NULL, &t, NULL, err, sizeof err), 0);
        assert_int_equal(t.shape[0], 23);
        assert_int_equal(t.shape[1], 37);
        assert_int_equal(t.shape[2], 3);
        assert_int_equal(sl_tensor_nbytes(&t), elen);
        if (memcmp(t.data, expect, elen) != 0)
            fail_msg("%s.png decodes to other pixels", kinds[i]);
        sl_tensor_release(&t);
        free(expect);
        free(png);
    }
}

static void test_png_crop_returns_the_region(void **state)
{
    size_t len, elen;
    uint8_t *png = load("rgb8.png", &len);
    uint8_t *expect = load("rgb8.rgb", &elen);
    const sl_image_decode_opts o = {.crop = {5, 3, 20, 11}};
    sl_tensor t;
    assert_int_equal(sl_image_decode(png, len, &o, &t, NULL, NULL, 0), 0);
    assert_int_equal(t.shape[0], 11);
    assert_int_equal(t.shape[1], 20);
    uint8_t *want = cut(expect, 37, 5, 3, 20, 11);
    assert_memory_equal(t.data, want, 20 * 11 * 3);
    free(want);
    sl_tensor_release(&t);
    free(expect);
    free(png);
}

static void test_cmyk_jpeg_matches_pil(void **state)
{
    size_t len, rlen;
    uint8_t *jpg = load("corrupt/cmyk.jpg", &len);
    uint8_t *refpng = load("cmyk_pil_reference.png", &rlen);
    sl_tensor t, ref;
    assert_int_equal(sl_image_decode(jpg, len, NULL, &t, NULL, NULL, 0), 0);
    assert_int_equal(sl_image_decode(refpng, rlen, NULL, &ref, NULL, NULL, 0), 0);
    assert_int_equal(t.shape[0], 48);
    assert_int_equal(t.shape[1], 64);
    /* PIL rounds its CMYK -> RGB product a little differently: within one level. */
    const uint8_t *a = t.data, *b = ref.data;
    for (size_t i = 0; i < sl_tensor_nbytes(&t); i++)
        assert_true(abs((int)a[i] - (int)b[i]) <= 1);
    sl_tensor_release(&t);
    sl_tensor_release(&ref);
    free(refpng);
    free(jpg);
}

static void test_cmyk_roi_decode_equals_crop(void **state)
{
    size_t len;
    uint8_t *jpg = load("corrupt/cmyk.jpg", &len);
    sl_tensor full, part;
    assert_int_equal(sl_image_decode(jpg, len, NULL, &full, NULL, NULL, 0), 0);
    const sl_image_decode_opts o = {.crop = {13, 7, 30, 20}};
    assert_int_equal(sl_image_decode(jpg, len, &o, &part, NULL, NULL, 0), 0);
    uint8_t *want = cut(full.data, 64, 13, 7, 30, 20);
    assert_true(mean_abs_diff(part.data, want, 30 * 20 * 3) <= 2);
    free(want);
    sl_tensor_release(&full);
    sl_tensor_release(&part);
    free(jpg);
}

static void test_region_outside_image_is_range_error(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb420.jpg", &len);
    const sl_image_rect bad[] = {
        {-1, 0, 10, 10}, {0, 0, 242, 10}, {200, 160, 41, 8}, {0, 0, 5, -1}};
    for (size_t i = 0; i < N_OF(bad); i++) {
        const sl_image_decode_opts o = {.crop = bad[i]};
        sl_tensor t;
        char err[256];
        assert_int_equal(sl_image_decode(jpg, len, &o, &t, NULL, err, sizeof err), SL_ERR_RANGE);
        assert_non_null(strstr(err, "not inside the 241x167 image"));
        assert_null(t.data);
    }
    free(jpg);
}

static void test_pixel_limit_is_too_large(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb420.jpg", &len);
    const sl_image_decode_opts o = {.max_pixels = 241 * 167 - 1};
    sl_tensor t;
    char err[256];
    assert_int_equal(sl_image_decode(jpg, len, &o, &t, NULL, err, sizeof err), SL_ERR_TOO_LARGE);
    assert_string_equal(err, "jpeg: 241x167 is more than 40246 pixels");
    free(jpg);
}

static void test_sniff_uses_magic_bytes(void **state)
{
    assert_int_equal(sl_image_sniff("\xff\xd8\xff\xe0", 4), SL_IMAGE_JPEG);
    assert_int_equal(sl_image_sniff("\x89PNG\r\n\x1a\n", 8), SL_IMAGE_PNG);
    assert_int_equal(sl_image_sniff("\x89PNG\r\n\x1a", 7), SL_IMAGE_UNKNOWN);
    assert_int_equal(sl_image_sniff("GIF89a", 6), SL_IMAGE_GIF);
    assert_int_equal(sl_image_sniff("RIFF\0\0\0\0WEBP", 12), SL_IMAGE_WEBP);
    assert_int_equal(sl_image_sniff("II*\0", 4), SL_IMAGE_TIFF);
    assert_int_equal(sl_image_sniff("BM\0\0\0\0\0\0\0\0\0\0\0\0", 14), SL_IMAGE_BMP);
    assert_int_equal(sl_image_sniff("", 0), SL_IMAGE_UNKNOWN);
    assert_string_equal(sl_image_format_name(SL_IMAGE_PNG), "png");
}

static void test_failed_allocations_return_nomem_and_leak_nothing(void **state)
{
    size_t len, plen;
    uint8_t *jpg = load("progressive.jpg", &len);
    uint8_t *png = load("interlaced.png", &plen);
    const int64_t live = sl_alloc_live_bytes();
    const sl_image_decode_opts o = {.crop = {10, 10, 100, 100}, .min_w = 40, .min_h = 40};
    int saw_nomem = 0;
    for (int n = 0; n < 40; n++) {
        sl_tensor t;
        sl_alloc_fail_at(n);
        int rc = sl_image_decode(jpg, len, &o, &t, NULL, NULL, 0);
        if (rc == 0)
            sl_tensor_release(&t);
        else {
            assert_int_equal(rc, SL_ERR_NOMEM);
            saw_nomem = 1;
        }
        const sl_image_decode_opts po = {.crop = {3, 2, 30, 20}};
        sl_alloc_fail_at(n);
        rc = sl_image_decode(png, plen, &po, &t, NULL, NULL, 0);
        if (rc == 0)
            sl_tensor_release(&t);
        else
            assert_int_equal(rc, SL_ERR_NOMEM);
        sl_alloc_fail_at(-1);
        assert_int_equal(sl_alloc_live_bytes(), live);
    }
    assert_true(saw_nomem);
    free(png);
    free(jpg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_decode_matches_tjdecompress2),
        cmocka_unit_test(test_roi_decode_equals_crop_of_full_decode),
        cmocka_unit_test(test_scaled_decode_close_to_decode_then_resize),
        cmocka_unit_test(test_scale_is_smallest_fast_one_keeping_the_size),
        cmocka_unit_test(test_probe_reads_the_header),
        cmocka_unit_test(test_png_kinds_decode_to_expected_rgb),
        cmocka_unit_test(test_png_crop_returns_the_region),
        cmocka_unit_test(test_cmyk_jpeg_matches_pil),
        cmocka_unit_test(test_cmyk_roi_decode_equals_crop),
        cmocka_unit_test(test_region_outside_image_is_range_error),
        cmocka_unit_test(test_pixel_limit_is_too_large),
        cmocka_unit_test(test_sniff_uses_magic_bytes),
        cmocka_unit_test(test_failed_allocations_return_nomem_and_leak_nothing),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
