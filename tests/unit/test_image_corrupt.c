/* The corrupt-image corpus (tests/data/images/corrupt/, made by tests/tools/make_test_images.py):
 * every file has one defined outcome, the same from sl_image_decode, from a region decode and
 * from the fused path, with the exact error code and message, or the decoded size. Nothing
 * prints, nothing leaks. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/image.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct expect {
    const char *name;
    int rc;          /* decode (strict = 0) */
    int strict_rc;   /* decode with strict = 1 */
    int probe_rc;    /* header only */
    int w, h;        /* when rc == 0 */
    const char *msg; /* the error message when rc < 0 */
} expect;

static const expect cases[] = {
    {"empty.jpg", SL_ERR_FORMAT, SL_ERR_FORMAT, SL_ERR_FORMAT, 0, 0, "not an image: empty input"},
    {"random.jpg", SL_ERR_FORMAT, SL_ERR_FORMAT, SL_ERR_FORMAT, 0, 0,
     "not an image: no JPEG or PNG signature (starts with a8 e5 b8 ab)"},
    {"text.jpg", SL_ERR_FORMAT, SL_ERR_FORMAT, SL_ERR_FORMAT, 0, 0,
     "not an image: no JPEG or PNG signature (starts with 54 68 69 73)"},
    {"gif.jpg", SL_ERR_UNSUPPORTED, SL_ERR_UNSUPPORTED, SL_ERR_UNSUPPORTED, 0, 0,
     "gif image: only JPEG and PNG are decoded"},
    {"truncated.jpg", SL_ERR_TRUNCATED, SL_ERR_TRUNCATED, 0, 0, 0,
     "jpeg: premature end of JPEG data"},
    {"truncated_header.jpg", SL_ERR_TRUNCATED, SL_ERR_TRUNCATED, SL_ERR_TRUNCATED, 0, 0,
     "jpeg: premature end of JPEG data: JPEG datastream contains no image"},
    {"truncated_progressive.jpg", SL_ERR_TRUNCATED, SL_ERR_TRUNCATED, 0, 0, 0,
     "jpeg: premature end of JPEG data"},
    {"no_eoi.jpg", 0, 0, 0, 241, 167, NULL},
    {"bad_huffman_table.jpg", SL_ERR_CORRUPT, SL_ERR_CORRUPT, SL_ERR_CORRUPT, 0, 0,
     "jpeg: Bogus Huffman table definition"},
    {"bad_scan_data.jpg", 0, SL_ERR_CORRUPT, 0, 241, 167, NULL},
    {"cmyk.jpg", 0, 0, 0, 64, 48, NULL},
    {"png_named.jpg", 0, 0, 0, 37, 23, NULL},
    {"rgb16.png", 0, 0, 0, 37, 23, NULL},
    {"gray8.png", 0, 0, 0, 37, 23, NULL},
    {"truncated.png", SL_ERR_TRUNCATED, SL_ERR_TRUNCATED, 0, 0, 0, "png: premature end of data"},
    {"bad_crc.png", SL_ERR_CORRUPT, SL_ERR_CORRUPT, 0, 0, 0, "png: IHDR: CRC error"},
};

static uint8_t *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/corrupt/%s", sl_test_data_dir(), name);
    uint8_t *data;
    assert_int_equal(sl_test_read_file(path, &data, len), 0);
    return data;
}

static void test_every_file_in_the_corpus_has_an_expected_outcome(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/images/corrupt", sl_test_data_dir());
    assert_int_equal(sl_test_dir_entries(dir), N_OF(cases));
}

static void test_decode_outcomes(void **state)
{
    for (size_t i = 0; i < N_OF(cases); i++) {
        const expect *c = &cases[i];
        size_t len;
        uint8_t *data = load(c->name, &len);
        sl_tensor t;
        char err[256] = "unchanged";
        const int rc = sl_image_decode(data, len, NULL, &t, NULL, err, sizeof err);
        if (rc != c->rc)
            fail_msg("%s: got %s (%s), want %s", c->name, sl_err_name(rc), err, sl_err_name(c->rc));
        if (rc == 0) {
            assert_int_equal(t.shape[1], c->w);
            assert_int_equal(t.shape[0], c->h);
            assert_int_equal(t.shape[2], 3);
            assert_string_equal(err, "");
            sl_tensor_release(&t);
        } else {
            assert_null(t.data);
            if (strcmp(err, c->msg) != 0)
                fail_msg("%s: message \"%s\", want \"%s\"", c->name, err, c->msg);
        }
        free(data);
    }
}

static void test_strict_decode_outcomes(void **state)
{
    const sl_image_decode_opts o = {.strict = 1};
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t len;
        uint8_t *data = load(cases[i].name, &len);
        sl_tensor t;
        const int rc = sl_image_decode(data, len, &o, &t, NULL, NULL, 0);
        if (rc != cases[i].strict_rc)
            fail_msg("%s: strict got %s", cases[i].name, sl_err_name(rc));
        sl_tensor_release(&t);
        free(data);
    }
}

static void test_probe_outcomes(void **state)
{
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t len;
        uint8_t *data = load(cases[i].name, &len);
        sl_image_info info;
        const int rc = sl_image_probe(data, len, &info, NULL, 0);
        if (rc != cases[i].probe_rc)
            fail_msg("%s: probe got %s", cases[i].name, sl_err_name(rc));
        if (rc == 0 && cases[i].rc == 0) {
            assert_int_equal(info.width, cases[i].w);
            assert_int_equal(info.height, cases[i].h);
        }
        free(data);
    }
}

/* The fused path, asked for the whole image, reports the same code as a plain decode. */
static void test_fused_outcomes(void **state)
{
    sl_image_fused_opts o = {.out_w = 16, .out_h = 16, .crop_mode = SL_IMAGE_CROP_FIXED};
    assert_int_equal(sl_image_normalize_preset("imagenet", &o.norm), 0);
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t len;
        uint8_t *data = load(cases[i].name, &len);
        sl_rng rng;
        sl_rng_init(&rng, 1, 0, i);
        sl_tensor t;
        char err[256];
        const int rc = sl_image_decode_fused(data, len, &o, &rng, &t, NULL, NULL, err, sizeof err);
        if (rc != cases[i].rc)
            fail_msg("%s: fused got %s (%s)", cases[i].name, sl_err_name(rc), err);
        if (rc == 0) {
            assert_int_equal(t.dtype, SL_DTYPE_F32);
            assert_int_equal(t.shape[0], 3);
            assert_int_equal(t.shape[1], 16);
        }
        sl_tensor_release(&t);
        free(data);
    }
}

static void test_missing_eoi_decodes_every_pixel(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/rgb420.jpg", sl_test_data_dir());
    uint8_t *whole;
    size_t wlen, len;
    assert_int_equal(sl_test_read_file(path, &whole, &wlen), 0);
    uint8_t *cut = load("no_eoi.jpg", &len);
    assert_int_equal(len, wlen - 2);
    sl_tensor a, b;
    assert_int_equal(sl_image_decode(whole, wlen, NULL, &a, NULL, NULL, 0), 0);
    assert_int_equal(sl_image_decode(cut, len, NULL, &b, NULL, NULL, 0), 0);
    assert_memory_equal(a.data, b.data, sl_tensor_nbytes(&a));
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    free(cut);
    free(whole);
}

/* A region above the damage of a truncated baseline file decodes: only the rows asked for are
 * read. One that reaches into the damage is truncated. */
static void test_roi_above_truncation_decodes(void **state)
{
    size_t len;
    uint8_t *data = load("truncated.jpg", &len);
    const sl_image_decode_opts top = {.crop = {0, 0, 100, 16}};
    const sl_image_decode_opts bottom = {.crop = {0, 150, 100, 16}};
    sl_tensor t;
    assert_int_equal(sl_image_decode(data, len, &top, &t, NULL, NULL, 0), 0);
    sl_tensor_release(&t);
    assert_int_equal(sl_image_decode(data, len, &bottom, &t, NULL, NULL, 0), SL_ERR_TRUNCATED);
    free(data);
}

/* Every prefix of a valid JPEG and PNG fails cleanly or decodes; none crashes or leaks. */
static void test_every_prefix_fails_cleanly(void **state)
{
    static const char *const names[] = {"progressive.jpg", "rgb422.jpg", "interlaced.png"};
    for (size_t k = 0; k < N_OF(names); k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/images/%s", sl_test_data_dir(), names[k]);
        uint8_t *data;
        size_t len;
        assert_int_equal(sl_test_read_file(path, &data, &len), 0);
        for (size_t n = 0; n < len; n += 1 + n / 16) {
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, data, n);
            sl_tensor t;
            const int rc = sl_image_decode(copy, n, NULL, &t, NULL, NULL, 0);
            if (rc == 0)
                sl_tensor_release(&t);
            else if (rc != SL_ERR_TRUNCATED && rc != SL_ERR_FORMAT && rc != SL_ERR_CORRUPT)
                fail_msg("%s cut at %zu: %s", names[k], n, sl_err_name(rc));
            free(copy);
        }
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_in_the_corpus_has_an_expected_outcome),
        cmocka_unit_test(test_decode_outcomes),
        cmocka_unit_test(test_strict_decode_outcomes),
        cmocka_unit_test(test_probe_outcomes),
        cmocka_unit_test(test_fused_outcomes),
        cmocka_unit_test(test_missing_eoi_decodes_every_pixel),
        cmocka_unit_test(test_roi_above_truncation_decodes),
        cmocka_unit_test(test_every_prefix_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
