/* The GPU feed of sluice/cuda_train.h through the CPU emulator (sl_cuda_emu_feed_*): its
 * normalize kernel against the CPU's sl_image_normalize (ops/) bit for bit, with the imagenet
 * constants and with none (then also the training loop's x / 255), the double-buffer rotation
 * (every batch delivered once, in order, whatever the interleaving of fills and takes, and a
 * third fill refused while two batches wait), and the checks at submit. */
#include "testutil.h"

#include <string.h>

#include "sluice/cuda_train.h"
#include "sluice/image.h"
#include "sluice/rng.h"
#include "sluice/tensor.h"

enum { H = 7, W = 5, C = 3, B = 4, CLASSES = 10 };

static void fill_random(uint8_t *px, size_t n, uint64_t seed)
{
    sl_rng r;
    sl_rng_init(&r, seed, 1, 0);
    for (size_t i = 0; i < n; i++)
        px[i] = (uint8_t)(sl_rng_u32(&r) >> 24);
    px[0] = 0, px[1] = 255; /* the ends of the range */
}

/* Each image of a batch through sl_image_normalize (HWC uint8 -> CHW float32) against the feed's
 * output for that image. */
static void check_against_image_normalize(const char *preset)
{
    sl_image_normalize_opts o;
    assert_int_equal(sl_image_normalize_preset(preset, &o), 0);
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_cuda_emu_feed *f;
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, C, CLASSES, o.mean, o.std), 0);
    uint8_t *px;
    int32_t *lb;
    assert_int_equal(sl_cuda_emu_feed_slot(f, &px, &lb), 0);
    fill_random(px, (size_t)B * H * W * C, 5);
    for (int i = 0; i < B; i++)
        lb[i] = i;
    assert_int_equal(sl_cuda_emu_feed_submit(f, B), 0);
    const float *x;
    const int32_t *y;
    int n;
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), 0);
    assert_int_equal(n, B);
    for (int i = 0; i < B; i++) {
        sl_tensor img, out;
        const int64_t shape[3] = {H, W, C};
        assert_int_equal(sl_tensor_borrow(&img, SL_DTYPE_U8, 3, shape, px + (size_t)i * H * W * C),
                         0);
        assert_int_equal(sl_image_normalize(&img, &o, &out), 0);
        assert_memory_equal(x + (size_t)i * C * H * W, out.data, sizeof(float) * C * H * W);
        sl_tensor_release(&out);
        sl_tensor_release(&img);
        assert_int_equal(y[i], i);
    }
    /* With no mean/std the conversion is also the training loop's (float)v * (1 / 255). */
    if (!strcmp(preset, "none"))
        for (int i = 0; i < B; i++)
            for (int p = 0; p < H * W; p++)
                for (int c = 0; c < C; c++) {
                    const float want = (float)px[((size_t)i * H * W + p) * C + c] * (1.0f / 255.0f);
                    assert_memory_equal(&x[((size_t)i * C + c) * H * W + p], &want, sizeof want);
                }
    sl_cuda_emu_feed_close(f);
    sl_cuda_emu_close(ctx);
}

static void test_normalize_equals_image_normalize_imagenet(void **state)
{
    check_against_image_normalize("imagenet");
}

static void test_normalize_equals_image_normalize_none_and_loop(void **state)
{
    check_against_image_normalize("none");
}

/* Batch k: every pixel k, labels k % CLASSES, k % 3 + 1 examples. */
static void submit_batch(sl_cuda_emu_feed *f, int k)
{
    uint8_t *px;
    int32_t *lb;
    assert_int_equal(sl_cuda_emu_feed_slot(f, &px, &lb), 0);
    const int n = k % 3 + 1;
    memset(px, k, (size_t)n * H * W * C);
    for (int i = 0; i < n; i++)
        lb[i] = k % CLASSES;
    assert_int_equal(sl_cuda_emu_feed_submit(f, n), 0);
}

static void expect_batch(sl_cuda_emu_feed *f, int k)
{
    const float *x;
    const int32_t *y;
    int n;
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), 0);
    assert_int_equal(n, k % 3 + 1);
    const float want = (float)k * (1.0f / 255.0f);
    for (int i = 0; i < n * C * H * W; i++)
        if (x[i] != want)
            fail_msg("batch %d: value %d is %g, expected %g", k, i, x[i], want);
    for (int i = 0; i < n; i++)
        assert_int_equal(y[i], k % CLASSES);
}

/* Steady state of a loop (fill k+1, take k), a burst (two fills, two takes) and a drain, with a
 * third fill refused while two batches wait and SL_EOF when none does. */
static void test_rotation_delivers_every_batch_once_in_order(void **state)
{
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_cuda_emu_feed *f;
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, C, CLASSES, NULL, NULL), 0);
    const float *x;
    const int32_t *y;
    int n, next = 0, taken = 0;
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), SL_EOF);
    submit_batch(f, next++);
    for (int k = 0; k < 5; k++) { /* the loop's pattern: batch k+1 copies while k computes */
        submit_batch(f, next++);
        expect_batch(f, taken++);
    }
    submit_batch(f, next++); /* two waiting */
    uint8_t *px;
    int32_t *lb;
    assert_int_equal(sl_cuda_emu_feed_slot(f, &px, &lb), SL_ERR_INVAL);
    expect_batch(f, taken++);
    expect_batch(f, taken++);
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), SL_EOF);
    submit_batch(f, next++);
    expect_batch(f, taken++);
    assert_int_equal(taken, next);
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), SL_EOF);
    assert_true(sl_cuda_emu_feed_wait_seconds(f) >= 0);
    sl_cuda_emu_feed_close(f);
    sl_cuda_emu_close(ctx);
}

static void test_submit_checks_labels_and_batch_size(void **state)
{
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_cuda_emu_feed *f;
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, C, CLASSES, NULL, NULL), 0);
    assert_int_equal(sl_cuda_emu_feed_submit(f, 1), SL_ERR_INVAL); /* no slot taken */
    uint8_t *px;
    int32_t *lb;
    assert_int_equal(sl_cuda_emu_feed_slot(f, &px, &lb), 0);
    memset(px, 0, (size_t)B * H * W * C);
    for (int i = 0; i < B; i++)
        lb[i] = 0;
    lb[2] = CLASSES;
    assert_int_equal(sl_cuda_emu_feed_submit(f, B), SL_ERR_RANGE);
    assert_string_equal(sl_cuda_emu_feed_errmsg(f),
                        "feed: label 10 of example 2 is outside [0, 10): index out of range");
    lb[2] = 1;
    assert_int_equal(sl_cuda_emu_feed_submit(f, B + 1), SL_ERR_INVAL);
    assert_int_equal(sl_cuda_emu_feed_submit(f, 0), SL_ERR_INVAL);
    assert_int_equal(sl_cuda_emu_feed_submit(f, B), 0); /* the slot survived the refusals */
    const float *x;
    const int32_t *y;
    int n;
    assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), 0);
    assert_int_equal(n, B);
    assert_int_equal(y[2], 1);
    sl_cuda_emu_feed_close(f);
    const float bad_std[3] = {1, 0, 1};
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, C, CLASSES, NULL, bad_std),
                     SL_ERR_INVAL);
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, 5, CLASSES, NULL, NULL), SL_ERR_INVAL);
    sl_cuda_emu_close(ctx);
}

/* The feed's output goes straight into a training step. */
static void test_feed_output_trains_the_model(void **state)
{
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_cuda_model_config cfg = {0};
    cfg.model.name = "mlp";
    cfg.model.in_c = C, cfg.model.in_h = H, cfg.model.in_w = W;
    cfg.model.classes = CLASSES;
    cfg.model.max_batch = B;
    cfg.model.seed = 3;
    cfg.model.hidden = 16;
    cfg.optim = sl_optim_defaults(SL_OPTIM_ADAMW);
    sl_cuda_emu_model *m;
    assert_int_equal(sl_cuda_emu_model_create(ctx, &m, &cfg, NULL, 0), 0);
    sl_cuda_emu_feed *f;
    assert_int_equal(sl_cuda_emu_feed_open(ctx, &f, B, H, W, C, CLASSES, NULL, NULL), 0);
    double first = 0, last = 0;
    for (int s = 0; s < 6; s++) {
        uint8_t *px;
        int32_t *lb;
        assert_int_equal(sl_cuda_emu_feed_slot(f, &px, &lb), 0);
        fill_random(px, (size_t)B * H * W * C, 9); /* the same batch: its loss must fall */
        for (int i = 0; i < B; i++)
            lb[i] = i;
        assert_int_equal(sl_cuda_emu_feed_submit(f, B), 0);
        const float *x;
        const int32_t *y;
        int n;
        assert_int_equal(sl_cuda_emu_feed_next(f, &x, &y, &n), 0);
        sl_cuda_step_result r;
        assert_int_equal(sl_cuda_emu_model_train_step(m, x, y, n, 0.01f, s, &r), 0);
        first = s == 0 ? r.loss : first;
        last = r.loss;
    }
    assert_true(last < first);
    sl_cuda_emu_feed_close(f);
    sl_cuda_emu_model_free(m);
    sl_cuda_emu_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_equals_image_normalize_imagenet),
        cmocka_unit_test(test_normalize_equals_image_normalize_none_and_loop),
        cmocka_unit_test(test_rotation_delivers_every_batch_once_in_order),
        cmocka_unit_test(test_submit_checks_labels_and_batch_size),
        cmocka_unit_test(test_feed_output_trains_the_model),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
