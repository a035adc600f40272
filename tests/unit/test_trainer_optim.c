/* Optimizers and schedules (sluice/optim.h) against steps worked out by hand: SGD with momentum
 * and coupled weight decay, AdamW with bias correction and decoupled decay (the decay touching
 * only the decayed prefix of the blob), warmup + cosine values at known steps, reduce-on-plateau
 * through a sequence of metrics, global-norm clipping, and gradient accumulation equal to one
 * large batch. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "sluice/model.h"
#include "sluice/optim.h"
#include "sluice/rng.h"

static void test_sgd_momentum_hand_computed(void **state)
{
    sl_optim *o;
    const sl_optim_config c = {.kind = SL_OPTIM_SGD, .momentum = 0.9f, .weight_decay = 0.1f};
    assert_int_equal(sl_optim_create(&o, &c, 3, 2), 0);
    float p[3] = {1.0f, -2.0f, 0.5f};
    const float g1[3] = {0.5f, 0.25f, -1.0f}, g2[3] = {0.1f, -0.3f, 0.2f};
    /* step 1: g + wd p = (0.6, 0.05, -1) [no decay on the last]; buf = that; p -= 0.1 buf */
    sl_optim_step(o, p, g1, 0.1f);
    assert_float_equal(p[0], 0.94, 1e-6);
    assert_float_equal(p[1], -2.005, 1e-6);
    assert_float_equal(p[2], 0.6, 1e-6);
    /* step 2: g + wd p = (0.194, -0.5005, 0.2); buf = 0.9 buf + that = (0.734, -0.4555, -0.7) */
    sl_optim_step(o, p, g2, 0.1f);
    assert_float_equal(p[0], 0.8666, 1e-6);
    assert_float_equal(p[1], -1.95945, 1e-6);
    assert_float_equal(p[2], 0.67, 1e-6);
    assert_int_equal(sl_optim_step_count(o), 2);
    sl_optim_free(o);
}

static void test_sgd_without_momentum_is_plain(void **state)
{
    sl_optim *o;
    const sl_optim_config c = {.kind = SL_OPTIM_SGD};
    assert_int_equal(sl_optim_create(&o, &c, 2, 2), 0);
    float p[2] = {1, 1};
    const float g[2] = {2, -4};
    sl_optim_step(o, p, g, 0.25f);
    sl_optim_step(o, p, g, 0.25f);
    assert_float_equal(p[0], 0.0f, 0);
    assert_float_equal(p[1], 3.0f, 0);
    sl_optim_free(o);
}

static void test_adamw_hand_computed(void **state)
{
    sl_optim *o;
    sl_optim_config c = sl_optim_defaults(SL_OPTIM_ADAMW);
    c.weight_decay = 0.1f;
    assert_int_equal(sl_optim_create(&o, &c, 3, 2), 0);
    float p[3] = {1.0f, -2.0f, 0.5f};
    const float g1[3] = {0.5f, 0.25f, -1.0f}, g2[3] = {0.1f, -0.3f, 0.2f};
    /* step 1: p *= 1 - lr wd on the first two; the bias-corrected moments are g and g^2, so
     * every value moves by lr * sign(g) */
    sl_optim_step(o, p, g1, 0.01f);
    assert_float_equal(p[0], 0.999 - 0.01, 1e-6);
    assert_float_equal(p[1], -1.998 - 0.01, 1e-6);
    assert_float_equal(p[2], 0.5 + 0.01, 1e-6);
    /* step 2, first value: p = 0.989 * 0.999 = 0.988011; m = 0.9 * 0.05 + 0.1 * 0.1 = 0.055;
     * v = 0.999 * 0.00025 + 0.001 * 0.01 = 0.00025975; m / (1 - 0.81) = 0.2894737;
     * v / (1 - 0.998001) = 0.1299400; p -= 0.01 * 0.2894737 / sqrt(0.1299400) */
    sl_optim_step(o, p, g2, 0.01f);
    assert_float_equal(p[0], 0.9799805906, 1e-6);
    assert_float_equal(p[1], -2.0045625523, 1e-6);
    assert_float_equal(p[2], 0.5151102606, 1e-6);
    sl_optim_free(o);
}

static void test_optim_rejects_bad_config(void **state)
{
    sl_optim *o = (sl_optim *)1;
    sl_optim_config c = {.kind = SL_OPTIM_SGD, .momentum = 1.0f};
    assert_int_equal(sl_optim_create(&o, &c, 4, 4), SL_ERR_INVAL);
    assert_null(o);
    c = sl_optim_defaults(SL_OPTIM_ADAMW);
    c.eps = 0;
    assert_int_equal(sl_optim_create(&o, &c, 4, 4), SL_ERR_INVAL);
    c = sl_optim_defaults(SL_OPTIM_ADAMW);
    assert_int_equal(sl_optim_create(&o, &c, 4, 5), SL_ERR_INVAL);
    c.kind = (sl_optim_kind)7;
    assert_int_equal(sl_optim_create(&o, &c, 4, 4), SL_ERR_INVAL);
}

static void test_warmup_cosine_values(void **state)
{
    const sl_lr_schedule s = {
        .base_lr = 0.1f, .min_lr = 0.001f, .warmup_steps = 10, .total_steps = 110};
    assert_float_equal(sl_lr_at(&s, 0), 0.01, 1e-8);
    assert_float_equal(sl_lr_at(&s, 4), 0.05, 1e-8);
    assert_float_equal(sl_lr_at(&s, 9), 0.1, 1e-8);
    assert_float_equal(sl_lr_at(&s, 10), 0.1, 1e-8);
    /* a quarter of the way down: min + (base - min) / 2 * (1 + cos(pi / 4)) */
    assert_float_equal(sl_lr_at(&s, 35), 0.001 + 0.0495 * (1 + sqrt(0.5)), 1e-7);
    assert_float_equal(sl_lr_at(&s, 60), 0.0505, 1e-7);
    assert_float_equal(sl_lr_at(&s, 110), 0.001, 1e-8);
    assert_float_equal(sl_lr_at(&s, 1000), 0.001, 1e-8);
}

static void test_cosine_without_warmup_starts_at_base(void **state)
{
    const sl_lr_schedule s = {.base_lr = 1.0f, .min_lr = 0.0f, .total_steps = 4};
    const float want[5] = {1.0f, 0.8535534f, 0.5f, 0.1464466f, 0.0f};
    for (int i = 0; i < 5; i++)
        assert_float_equal(sl_lr_at(&s, i), want[i], 1e-6);
}

static void test_plateau_reduces_after_patience(void **state)
{
    sl_plateau p;
    sl_plateau_init(&p, 0.5f, 2, 0.01f, 0.1f);
    /* improvements must beat best by 1%: 0.995 and the 0.98s after 0.98 are bad */
    const double metrics[] = {1.0, 0.995, 0.98, 0.98, 0.975, 0.975};
    const int reduced[] = {0, 0, 0, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        assert_int_equal(sl_plateau_update(&p, metrics[i]), reduced[i]);
    assert_float_equal(p.scale, 0.5f, 0);
    /* three more bad evaluations per cut: 0.25, 0.125, then the floor 0.1, then no change */
    const float scales[] = {0.25f, 0.125f, 0.1f, 0.1f};
    for (int cut = 0; cut < 4; cut++) {
        assert_int_equal(sl_plateau_update(&p, 0.99), 0);
        assert_int_equal(sl_plateau_update(&p, 0.99), 0);
        assert_int_equal(sl_plateau_update(&p, 0.99), cut < 3);
        assert_float_equal(p.scale, scales[cut], 0);
    }
}

static void test_clip_scales_to_max_norm(void **state)
{
    float g[2] = {3, 4};
    assert_float_equal(sl_grad_clip_norm(g, 2, 1.0f), 5.0, 1e-12);
    assert_float_equal(g[0], 0.6, 1e-6);
    assert_float_equal(g[1], 0.8, 1e-6);
    assert_float_equal(sqrt(g[0] * g[0] + g[1] * g[1]), 1.0, 1e-6);
}

static void test_clip_leaves_small_and_nonfinite_alone(void **state)
{
    float g[2] = {3, 4};
    assert_float_equal(sl_grad_clip_norm(g, 2, 10.0f), 5.0, 1e-12);
    assert_float_equal(g[0], 3, 0);
    float h[2] = {NAN, 4};
    assert_true(isnan(sl_grad_clip_norm(h, 2, 1.0f)));
    assert_float_equal(h[1], 4, 0);
}

static void test_accumulation_equals_one_large_batch(void **state)
{
    const sl_model_config c = {.name = "mlp",
                               .in_c = 3,
                               .in_h = 8,
                               .in_w = 8,
                               .classes = 5,
                               .max_batch = 32,
                               .seed = 11,
                               .hidden = 32};
    sl_model *big, *acc;
    assert_int_equal(sl_model_create(&big, &c, NULL, 0), 0);
    assert_int_equal(sl_model_create(&acc, &c, NULL, 0), 0);
    enum { N = 32, K = 4, IN = 3 * 8 * 8 };
    float *x = sl_malloc(sizeof(float) * N * IN);
    int32_t y[N];
    sl_rng r;
    sl_rng_init(&r, 5, 0, 0);
    for (int i = 0; i < N * IN; i++)
        x[i] = (float)sl_rng_uniform(&r);
    for (int i = 0; i < N; i++)
        y[i] = (int32_t)sl_rng_below(&r, 5);

    sl_model_zero_grad(big);
    assert_int_equal(sl_model_forward(big, x, y, N, 1, NULL, NULL), 0);
    assert_int_equal(sl_model_backward(big, 1.0f), 0);
    sl_model_zero_grad(acc);
    for (int k = 0; k < K; k++) {
        const int m = N / K;
        assert_int_equal(sl_model_forward(acc, x + k * m * IN, y + k * m, m, 1, NULL, NULL), 0);
        assert_int_equal(sl_model_backward(acc, 1.0f / K), 0);
    }
    const size_t np = sl_model_param_count(big);
    double scale = 0;
    for (size_t i = 0; i < np; i++)
        scale = fmax(scale, fabs(sl_model_grads(big)[i]));
    for (size_t i = 0; i < np; i++)
        assert_float_equal(sl_model_grads(acc)[i], sl_model_grads(big)[i], 1e-5 * scale);

    sl_optim *o1, *o2;
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD);
    assert_int_equal(sl_optim_create(&o1, &oc, np, sl_model_decay_count(big)), 0);
    assert_int_equal(sl_optim_create(&o2, &oc, np, sl_model_decay_count(acc)), 0);
    sl_optim_step(o1, sl_model_params(big), sl_model_grads(big), 0.1f);
    sl_optim_step(o2, sl_model_params(acc), sl_model_grads(acc), 0.1f);
    for (size_t i = 0; i < np; i++)
        assert_float_equal(sl_model_params(acc)[i], sl_model_params(big)[i], 1e-6);
    sl_optim_free(o1);
    sl_optim_free(o2);
    sl_free(x);
    sl_model_free(big);
    sl_model_free(acc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum_hand_computed),
        cmocka_unit_test(test_sgd_without_momentum_is_plain),
        cmocka_unit_test(test_adamw_hand_computed),
        cmocka_unit_test(test_optim_rejects_bad_config),
        cmocka_unit_test(test_warmup_cosine_values),
        cmocka_unit_test(test_cosine_without_warmup_starts_at_base),
        cmocka_unit_test(test_plateau_reduces_after_patience),
        cmocka_unit_test(test_clip_scales_to_max_norm),
        cmocka_unit_test(test_clip_leaves_small_and_nonfinite_alone),
        cmocka_unit_test(test_accumulation_equals_one_large_batch),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
