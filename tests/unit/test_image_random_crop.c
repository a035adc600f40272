/* random_resized_crop and the fused path: the sampled (scale, ratio) distribution matches
 * torchvision's (two-sample Kolmogorov-Smirnov test against samples committed in
 * tests/data/images/rrc/, made once by tests/tools/make_rrc_samples.py); the fallback window
 * and the number of random draws; output shapes; the same seed gives the same pixels, on one
 * thread or two; fused equals the unfused chain exactly at full scale and within 2 levels with
 * DCT scaling. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/image.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const double scale_default[2] = {0.08, 1.0}, ratio_default[2] = {3.0 / 4.0, 4.0 / 3.0};

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sup |F_a - F_b| of two samples (sorted in place). */
static double ks_statistic(double *a, size_t n, double *b, size_t m)
{
    qsort(a, n, sizeof *a, cmp_double);
    qsort(b, m, sizeof *b, cmp_double);
    size_t i = 0, j = 0;
    double d = 0;
    while (i < n && j < m) {
        const double v = a[i] < b[j] ? a[i] : b[j];
        while (i < n && a[i] == v)
            i++;
        while (j < m && b[j] == v)
            j++;
        d = fmax(d, fabs((double)i / n - (double)j / m));
    }
    return d;
}

/* Reads "h w" lines after the comment line; returns the count. */
static size_t read_torch_samples(const char *file, int *hs, int *ws, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/rrc/%s", sl_test_data_dir(), file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_true(line[0] == '#');
    size_t n = 0;
    while (n < cap && fscanf(f, "%d %d", &hs[n], &ws[n]) == 2)
        n++;
    fclose(f);
    return n;
}

static void ks_against_torchvision(const char *file, int W, int H)
{
    enum { CAP = 4000 };
    static int th[CAP], tw[CAP];
    static double ts[CAP], tr[CAP], ss[CAP], sr[CAP];
    const size_t n = read_torch_samples(file, th, tw, CAP);
    assert_int_equal(n, 3000);
    for (size_t i = 0; i < n; i++) {
        ts[i] = (double)th[i] * tw[i] / ((double)W * H);
        tr[i] = (double)tw[i] / th[i];
    }
    const size_t m = 3000;
    for (size_t i = 0; i < m; i++) {
        sl_rng r;
        sl_rng_init(&r, 42, 0, i);
        sl_image_rect c;
        assert_int_equal(
            sl_image_random_resized_crop_params(W, H, scale_default, ratio_default, &r, &c), 0);
        assert_true(c.x >= 0 && c.y >= 0 && c.x + c.w <= W && c.y + c.h <= H);
        ss[i] = (double)c.w * c.h / ((double)W * H);
        sr[i] = (double)c.w / c.h;
    }
    /* Critical value at alpha = 0.001: 1.949 * sqrt((n + m) / (n m)) = 0.050 for 3000 + 3000.
     * A uniform instead of log-uniform ratio gives D = 0.07; skipping the fallback far more. */
    const double crit = 1.949 * sqrt((double)(n + m) / ((double)n * m));
    const double d_scale = ks_statistic(ss, m, ts, n), d_ratio = ks_statistic(sr, m, tr, n);
    if (d_scale >= crit || d_ratio >= crit)
        fail_msg("%s: KS D(scale) = %.4f, D(ratio) = %.4f, critical %.4f", file, d_scale, d_ratio,
                 crit);
}

static void test_distribution_matches_torchvision_500x375(void **state)
{
    ks_against_torchvision("rrc_500x375.txt", 500, 375);
}

/* 640x120: about a quarter of the draws take the fallback. */
static void test_distribution_matches_torchvision_640x120(void **state)
{
    ks_against_torchvision("rrc_640x120.txt", 640, 120);
}

static void test_fallback_clamps_the_ratio_and_centres(void **state)
{
    /* Every try fails (h >= 61 > 10), so the window is the centred 13x10 (4/3 clamp). */
    const double scale[2] = {0.5, 1.0};
    sl_rng r, ref;
    sl_rng_init(&r, 1, 2, 3);
    ref = r;
    sl_image_rect c;
    assert_int_equal(sl_image_random_resized_crop_params(1000, 10, scale, ratio_default, &r, &c),
                     0);
    assert_int_equal(c.w, 13);
    assert_int_equal(c.h, 10);
    assert_int_equal(c.x, 493);
    assert_int_equal(c.y, 0);
    /* Exactly 10 tries x 2 uniforms were drawn. */
    for (int i = 0; i < 20; i++)
        (void)sl_rng_uniform(&ref);
    assert_int_equal(sl_rng_u32(&r), sl_rng_u32(&ref));
    assert_int_equal(sl_image_random_resized_crop_params(10, 1000, scale, ratio_default, &r, &c),
                     0);
    assert_int_equal(c.w, 10);
    assert_int_equal(c.h, 13);
    assert_int_equal(c.x, 0);
    assert_int_equal(c.y, 493);
}

static void test_bad_ranges_are_invalid(void **state)
{
    sl_rng r;
    sl_rng_init(&r, 1, 0, 0);
    sl_image_rect c;
    const double backwards[2] = {1.0, 0.5};
    assert_int_equal(sl_image_random_resized_crop_params(10, 10, backwards, NULL, &r, &c),
                     SL_ERR_INVAL);
    assert_int_equal(sl_image_random_resized_crop_params(0, 10, NULL, NULL, &r, &c), SL_ERR_INVAL);
}

static uint8_t *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/%s", sl_test_data_dir(), name);
    uint8_t *data;
    assert_int_equal(sl_test_read_file(path, &data, len), 0);
    return data;
}

static sl_image_fused_opts fused_opts(int size, sl_dtype dt, sl_image_layout layout)
{
    sl_image_fused_opts o = {.out_w = size, .out_h = size, .flip_p = 0.5};
    assert_int_equal(sl_image_normalize_preset("imagenet", &o.norm), 0);
    o.norm.dtype = dt;
    o.norm.layout = layout;
    return o;
}

static void test_fused_output_shapes(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb420.jpg", &len);
    const struct {
        sl_dtype dt;
        sl_image_layout layout;
        int64_t s0, s2;
    } cases[] = {{SL_DTYPE_F32, SL_IMAGE_CHW, 3, 56},
                 {SL_DTYPE_F16, SL_IMAGE_HWC, 56, 3},
                 {SL_DTYPE_U8, SL_IMAGE_HWC, 56, 3}};
    for (size_t i = 0; i < N_OF(cases); i++) {
        const sl_image_fused_opts o = fused_opts(56, cases[i].dt, cases[i].layout);
        sl_rng r;
        sl_rng_init(&r, 1, 0, i);
        sl_tensor t;
        assert_int_equal(sl_image_decode_fused(jpg, len, &o, &r, &t, NULL, NULL, NULL, 0), 0);
        assert_int_equal(t.dtype, cases[i].dt);
        assert_int_equal(t.rank, 3);
        assert_int_equal(t.shape[0], cases[i].s0);
        assert_int_equal(t.shape[1], 56);
        assert_int_equal(t.shape[2], cases[i].s2);
        sl_tensor_release(&t);
    }
    free(jpg);
}

/* The unfused chain as the glue runs it: decode, crop window, resized_crop, flip, normalize. */
static void unfused(const uint8_t *data, size_t len, const sl_image_fused_opts *o, sl_rng *r,
                    sl_tensor *out, sl_image_rect *crop)
{
    sl_tensor img, cropped, flipped;
    assert_int_equal(sl_image_decode(data, len, NULL, &img, NULL, NULL, 0), 0);
    assert_int_equal(sl_image_random_resized_crop_params((int)img.shape[1], (int)img.shape[0],
                                                         scale_default, ratio_default, r, crop),
                     0);
    assert_int_equal(sl_image_resized_crop(&img, crop, o->out_w, o->out_h, &cropped), 0);
    sl_tensor_release(&img);
    if (sl_image_flip_draw(r, o->flip_p)) {
        assert_int_equal(sl_image_flip(&cropped, &flipped), 0);
        sl_tensor_release(&cropped);
        cropped = flipped;
    }
    assert_int_equal(sl_image_normalize(&cropped, &o->norm, out), 0);
    sl_tensor_release(&cropped);
}

static void test_fused_at_full_scale_equals_unfused_chain(void **state)
{
    static const char *const names[] = {"rgb420.jpg", "progressive.jpg", "gray.jpg", "rgb8.png"};
    for (size_t k = 0; k < N_OF(names); k++) {
        size_t len;
        uint8_t *data = load(names[k], &len);
        for (uint64_t e = 0; e < 8; e++) {
            sl_image_fused_opts o = fused_opts(24, SL_DTYPE_F32, SL_IMAGE_CHW);
            o.scales = 0x80; /* full scale only */
            sl_rng r1, r2;
            sl_rng_init(&r1, 9, 0, e);
            r2 = r1;
            sl_tensor a, b;
            sl_image_rect ca, cb;
            assert_int_equal(sl_image_decode_fused(data, len, &o, &r1, &a, &ca, NULL, NULL, 0), 0);
            unfused(data, len, &o, &r2, &b, &cb);
            assert_memory_equal(&ca, &cb, sizeof ca);
            assert_memory_equal(a.data, b.data, sl_tensor_nbytes(&a));
            assert_int_equal(sl_rng_u32(&r1), sl_rng_u32(&r2)); /* same number of draws */
            sl_tensor_release(&a);
            sl_tensor_release(&b);
        }
        free(data);
    }
}

static void test_fused_with_dct_scaling_is_close_to_unfused(void **state)
{
    static const char *const names[] = {"rgb444.jpg", "rgb420.jpg", "rgb422.jpg", "gray.jpg",
                                        "progressive.jpg"};
    for (size_t k = 0; k < N_OF(names); k++) {
        size_t len;
        uint8_t *data = load(names[k], &len);
        double sum = 0;
        size_t count = 0;
        for (uint64_t e = 0; e < 16; e++) {
            /* A small output, so most windows decode at 1/2 or 1/4. */
            const sl_image_fused_opts o = fused_opts(40, SL_DTYPE_U8, SL_IMAGE_HWC);
            sl_rng r1, r2;
            sl_rng_init(&r1, 5, 1, e);
            r2 = r1;
            sl_tensor a, b;
            sl_image_rect ca, cb;
            assert_int_equal(sl_image_decode_fused(data, len, &o, &r1, &a, &ca, NULL, NULL, 0), 0);
            unfused(data, len, &o, &r2, &b, &cb);
            assert_memory_equal(&ca, &cb, sizeof ca);
            const uint8_t *pa = a.data, *pb = b.data;
            for (size_t i = 0; i < sl_tensor_nbytes(&a); i++)
                sum += abs((int)pa[i] - (int)pb[i]);
            count += sl_tensor_nbytes(&a);
            sl_tensor_release(&a);
            sl_tensor_release(&b);
        }
        if (sum / count > 2)
            fail_msg("%s: mean abs diff %.3f levels", names[k], sum / count);
        free(data);
    }
}

static void test_same_seed_same_pixels_other_seed_other_pixels(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb420.jpg", &len);
    const sl_image_fused_opts o = fused_opts(32, SL_DTYPE_F32, SL_IMAGE_CHW);
    sl_tensor t[3];
    const uint64_t seeds[3] = {3, 3, 4};
    for (int i = 0; i < 3; i++) {
        sl_rng r;
        sl_rng_init(&r, seeds[i], 0, 17);
        assert_int_equal(sl_image_decode_fused(jpg, len, &o, &r, &t[i], NULL, NULL, NULL, 0), 0);
    }
    assert_memory_equal(t[0].data, t[1].data, sl_tensor_nbytes(&t[0]));
    assert_memory_not_equal(t[0].data, t[2].data, sl_tensor_nbytes(&t[0]));
    for (int i = 0; i < 3; i++)
        sl_tensor_release(&t[i]);
    free(jpg);
}

/* Elements 0..N-1, each with its own stream (seed, epoch 0, index): one thread does them all,
 * then two threads split them; the pixels must be the same. */
enum { N_ELEMS = 24 };
typedef struct job {
    const uint8_t *data;
    size_t len;
    int first, step;
    sl_tensor *out;
} job;

static void *run_job(void *arg)
{
    const job *j = arg;
    const sl_image_fused_opts o = fused_opts(32, SL_DTYPE_F16, SL_IMAGE_CHW);
    for (int i = j->first; i < N_ELEMS; i += j->step) {
        sl_rng r;
        sl_rng_init(&r, 11, 0, (uint64_t)i);
        if (sl_image_decode_fused(j->data, j->len, &o, &r, &j->out[i], NULL, NULL, NULL, 0))
            return (void *)1;
    }
    return NULL;
}

static void test_one_and_two_threads_give_the_same_pixels(void **state)
{
    size_t len;
    uint8_t *jpg = load("progressive.jpg", &len);
    static sl_tensor one[N_ELEMS], two[N_ELEMS];
    job solo = {jpg, len, 0, 1, one};
    assert_null(run_job(&solo));
    job a = {jpg, len, 0, 2, two}, b = {jpg, len, 1, 2, two};
    pthread_t ta, tb;
    void *ra, *rb;
    assert_int_equal(pthread_create(&ta, NULL, run_job, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_job, &b), 0);
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    assert_null(ra);
    assert_null(rb);
    for (int i = 0; i < N_ELEMS; i++) {
        assert_memory_equal(one[i].data, two[i].data, sl_tensor_nbytes(&one[i]));
        sl_tensor_release(&one[i]);
        sl_tensor_release(&two[i]);
    }
    free(jpg);
}

static void test_fused_flip_probability_extremes(void **state)
{
    size_t len;
    uint8_t *jpg = load("rgb444.jpg", &len);
    for (int p = 0; p <= 1; p++) {
        sl_image_fused_opts o = fused_opts(16, SL_DTYPE_U8, SL_IMAGE_HWC);
        o.flip_p = p;
        for (uint64_t e = 0; e < 8; e++) {
            sl_rng r;
            sl_rng_init(&r, 2, 0, e);
            sl_tensor t;
            int flipped = -1;
            assert_int_equal(sl_image_decode_fused(jpg, len, &o, &r, &t, NULL, &flipped, NULL, 0),
                             0);
            assert_int_equal(flipped, p);
            sl_tensor_release(&t);
        }
    }
    free(jpg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution_matches_torchvision_500x375),
        cmocka_unit_test(test_distribution_matches_torchvision_640x120),
        cmocka_unit_test(test_fallback_clamps_the_ratio_and_centres),
        cmocka_unit_test(test_bad_ranges_are_invalid),
        cmocka_unit_test(test_fused_output_shapes),
        cmocka_unit_test(test_fused_at_full_scale_equals_unfused_chain),
        cmocka_unit_test(test_fused_with_dct_scaling_is_close_to_unfused),
        cmocka_unit_test(test_same_seed_same_pixels_other_seed_other_pixels),
        cmocka_unit_test(test_one_and_two_threads_give_the_same_pixels),
        cmocka_unit_test(test_fused_flip_probability_extremes),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
