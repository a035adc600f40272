/* The CUDA training step (sluice/cuda_train.h) run through the CPU emulator (sl_cuda_emu_*)
 * against the independent CPU model and optimizer (sluice/model.h, sluice/optim.h with
 * SL_NN_REFERENCE), never against itself:
 *   - float32: N steps of the mlp (SGD, momentum, weight decay) and of the cnn (AdamW) give the
 *     CPU's parameters and batch-norm state bit for bit (the kernels call the same per-value
 *     bodies) and its losses to 1e-12 relative (the device sums the loss by a tree), and so
 *     does an evaluation forward afterwards; with clipping, whose norm is also summed by a tree,
 *     parameters agree to 1e-6 relative;
 *   - the optimizer kernels equal sl_optim_step bit for bit, the norm sl_grad_clip_norm's;
 *   - checkpoints: the emulated model's sl_train_state bytes equal the CPU model's, and a CPU
 *     blob loaded into the emulated model continues exactly as the CPU does;
 *   - mixed precision: fp16 with a loss scale that overflows skips the step (parameters
 *     untouched) and halves the scale; fp16 and bf16 steps track the float32 losses;
 *   - a NaN input gives SL_ERR_NONFINITE with the CPU check's message. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sluice/cuda_train.h"
#include "sluice/model.h"
#include "sluice/optim.h"
#include "sluice/rng.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static float *rvec(size_t n, uint64_t seed, float lo, float hi)
{
    float *v = sl_malloc((n ? n : 1) * sizeof(float));
    assert_non_null(v);
    sl_rng r;
    sl_rng_init(&r, seed, 5, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)sl_rng_uniform(&r);
    return v;
}

static int32_t *rlabels(int n, int classes, uint64_t seed)
{
    int32_t *y = sl_malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(y);
    sl_rng r;
    sl_rng_init(&r, seed, 6, 0);
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)(sl_rng_u32(&r) % (uint32_t)classes);
    return y;
}

static sl_model_config mlp_config(void)
{
    sl_model_config c = {0};
    c.name = "mlp";
    c.in_c = 1, c.in_h = 4, c.in_w = 5;
    c.classes = 3;
    c.max_batch = 6;
    c.seed = 11;
    c.hidden = 9;
    c.impl = SL_NN_REFERENCE;
    return c;
}

static sl_model_config cnn_config(void)
{
    sl_model_config c = {0};
    c.name = "cnn";
    c.in_c = 3, c.in_h = 8, c.in_w = 8;
    c.classes = 4;
    c.max_batch = 4;
    c.seed = 12;
    c.width = 4;
    c.blocks = 2;
    c.pool = 1;
    c.impl = SL_NN_REFERENCE;
    return c;
}

/* The CPU side of a comparison: model + optimizer, stepped as train_loop.c steps. */
typedef struct cpu_side {
    sl_model *m;
    sl_optim *o;
    float clip;
} cpu_side;

static void cpu_open(cpu_side *c, const sl_model_config *mc, const sl_optim_config *oc, float clip)
{
    assert_int_equal(sl_model_create(&c->m, mc, NULL, 0), 0);
    assert_int_equal(
        sl_optim_create(&c->o, oc, sl_model_param_count(c->m), sl_model_decay_count(c->m)), 0);
    c->clip = clip;
}

static double cpu_step(cpu_side *c, const float *x, const int32_t *y, int n, float lr)
{
    double loss;
    sl_model_zero_grad(c->m);
    assert_int_equal(sl_model_forward(c->m, x, y, n, 1, &loss, NULL), 0);
    assert_int_equal(sl_model_backward(c->m, 1.0f), 0);
    if (c->clip > 0)
        sl_grad_clip_norm(sl_model_grads(c->m), sl_model_param_count(c->m), c->clip);
    sl_optim_step(c->o, sl_model_params(c->m), sl_model_grads(c->m), lr);
    return loss;
}

static void cpu_close(cpu_side *c)
{
    sl_optim_free(c->o);
    sl_model_free(c->m);
}

/* The emulated side. */
typedef struct emu_side {
    sl_cuda_emu *ctx;
    sl_cuda_emu_model *m;
} emu_side;

static void emu_open(emu_side *e, const sl_model_config *mc, const sl_optim_config *oc,
                     sl_cuda_precision prec, float clip)
{
    assert_int_equal(sl_cuda_emu_open(&e->ctx), 0);
    sl_cuda_model_config cfg = {0};
    cfg.model = *mc;
    cfg.optim = *oc;
    cfg.precision = prec;
    cfg.clip_norm = clip;
    char err[256] = "";
    const int rc = sl_cuda_emu_model_create(e->ctx, &e->m, &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("model_create: %s", err);
}

static double emu_step(emu_side *e, const float *x, const int32_t *y, int n, float lr,
                       sl_cuda_step_result *res)
{
    sl_cuda_step_result local;
    res = res ? res : &local;
    const int rc = sl_cuda_emu_model_train_step(e->m, x, y, n, lr, 0, res);
    if (rc != 0)
        fail_msg("train_step: %s", sl_cuda_emu_model_errmsg(e->m));
    return res->loss;
}

static void emu_close(emu_side *e)
{
    sl_cuda_emu_model_free(e->m);
    sl_cuda_emu_close(e->ctx);
}

/* The emulated model's device blobs, fetched through the host mirror. */
static sl_model *emu_host(emu_side *e)
{
    assert_int_equal(sl_cuda_emu_model_sync_host(e->m), 0);
    return sl_cuda_emu_model_host(e->m);
}

static void assert_blob_same(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s[%zu]: emulated %.9g, CPU %.9g", what, i, got[i], want[i]);
}

static void assert_blob_close(const char *what, const float *got, const float *want, size_t n,
                              double rtol, double atol)
{
    for (size_t i = 0; i < n; i++)
        if (fabs((double)got[i] - want[i]) > atol + rtol * fabs((double)want[i]))
            fail_msg("%s[%zu]: emulated %.9g, CPU %.9g", what, i, got[i], want[i]);
}

/* N steps on both sides, one fixed random batch per step; losses to 1e-12 relative, then the
 * parameters and batch-norm state bit for bit. */
static void compare_steps(const sl_model_config *mc, const sl_optim_config *oc, int steps, int n)
{
    cpu_side c;
    emu_side e;
    cpu_open(&c, mc, oc, 0);
    emu_open(&e, mc, oc, SL_CUDA_FP32, 0);
    const size_t in = (size_t)mc->in_c * mc->in_h * mc->in_w;
    for (int s = 0; s < steps; s++) {
        float *x = rvec((size_t)n * in, 100 + (uint64_t)s, -1, 1);
        int32_t *y = rlabels(n, mc->classes, 200 + (uint64_t)s);
        const double lc = cpu_step(&c, x, y, n, 0.05f);
        const double le = emu_step(&e, x, y, n, 0.05f, NULL);
        if (fabs(le - lc) > 1e-12 * fabs(lc))
            fail_msg("step %d: loss emulated %.17g, CPU %.17g", s, le, lc);
        sl_free(x), sl_free(y);
    }
    sl_model *h = emu_host(&e);
    assert_int_equal(sl_model_param_count(h), sl_model_param_count(c.m));
    assert_blob_same("params", sl_model_params(h), sl_model_params(c.m), sl_model_param_count(h));
    assert_blob_same("bn state", sl_model_state(h), sl_model_state(c.m), sl_model_state_count(h));
    assert_int_equal(sl_cuda_emu_model_optim_steps(e.m), steps);
    /* Evaluation (running statistics) agrees too. */
    float *x = rvec((size_t)n * in, 999, -1, 1);
    int32_t *y = rlabels(n, mc->classes, 998);
    double lc, le;
    int rc_c, rc_e;
    assert_int_equal(sl_model_forward(c.m, x, y, n, 0, &lc, &rc_c), 0);
    assert_int_equal(sl_cuda_emu_model_forward(e.m, x, y, n, 0, &le, &rc_e), 0);
    assert_true(fabs(le - lc) <= 1e-12 * fabs(lc));
    assert_int_equal(rc_e, rc_c);
    sl_free(x), sl_free(y);
    emu_close(&e);
    cpu_close(&c);
}

/* ---- float32 steps against the CPU ---------------------------------------------------------- */

static void test_mlp_sgd_steps_equal_cpu(void **state)
{
    const sl_model_config mc = mlp_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD); /* momentum 0.9, wd 5e-4 */
    compare_steps(&mc, &oc, 5, 6);
}

static void test_mlp_adamw_partial_batch_steps_equal_cpu(void **state)
{
    const sl_model_config mc = mlp_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    compare_steps(&mc, &oc, 4, 5); /* n < max_batch */
}

static void test_cnn_adamw_steps_equal_cpu(void **state)
{
    const sl_model_config mc = cnn_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    compare_steps(&mc, &oc, 3, 4);
}

static void test_cnn_sgd_steps_equal_cpu(void **state)
{
    sl_model_config mc = cnn_config();
    mc.pool = 0;
    mc.blocks = 3; /* an identity-shortcut block after the stride-2 one */
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD);
    compare_steps(&mc, &oc, 3, 3);
}

/* Clipping: the norm is summed by a tree on the device and by a loop on the CPU, so the clip
 * factor may differ in its last bit. */
static void test_clipped_steps_track_cpu(void **state)
{
    const sl_model_config mc = mlp_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD);
    cpu_side c;
    emu_side e;
    cpu_open(&c, &mc, &oc, 0.05f);
    emu_open(&e, &mc, &oc, SL_CUDA_FP32, 0.05f);
    const size_t in = (size_t)mc.in_c * mc.in_h * mc.in_w;
    for (int s = 0; s < 4; s++) {
        float *x = rvec(6 * in, 300 + (uint64_t)s, -1, 1);
        int32_t *y = rlabels(6, mc.classes, 400 + (uint64_t)s);
        cpu_step(&c, x, y, 6, 0.1f);
        sl_cuda_step_result r;
        emu_step(&e, x, y, 6, 0.1f, &r);
        assert_true(r.grad_norm > 0.05); /* the clip did act */
        sl_free(x), sl_free(y);
    }
    sl_model *h = emu_host(&e);
    assert_blob_close("params", sl_model_params(h), sl_model_params(c.m), sl_model_param_count(h),
                      1e-6, 1e-9);
    emu_close(&e);
    cpu_close(&c);
}

/* ---- the kernels the step adds -------------------------------------------------------------- */

static void check_optim_kernel(sl_optim_config oc)
{
    enum { COUNT = 700, DECAY = 300, STEPS = 3 };
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_optim *o;
    assert_int_equal(sl_optim_create(&o, &oc, COUNT, DECAY), 0);
    float *p = rvec(COUNT, 1, -1, 1), *q = rvec(COUNT, 1, -1, 1);
    float *st = sl_calloc(2 * COUNT, sizeof(float));
    assert_non_null(st);
    for (int s = 0; s < STEPS; s++) {
        float *g = rvec(COUNT, 10 + (uint64_t)s, -2, 2);
        sl_optim_step(o, p, g, 0.01f);
        assert_int_equal(sl_cuda_emu_optim_step(ctx, &oc, q, g, st, COUNT, DECAY, s, 0.01f), 0);
        sl_free(g);
    }
    assert_blob_same("optimizer params", q, p, COUNT);
    sl_free(p), sl_free(q), sl_free(st);
    sl_optim_free(o);
    sl_cuda_emu_close(ctx);
}

static void test_optim_kernels_equal_sl_optim_step(void **state)
{
    sl_optim_config plain = sl_optim_defaults(SL_OPTIM_SGD);
    plain.momentum = 0;
    check_optim_kernel(plain);
    check_optim_kernel(sl_optim_defaults(SL_OPTIM_SGD));
    check_optim_kernel(sl_optim_defaults(SL_OPTIM_ADAMW));
}

static void test_grad_norm_equals_clip_norm(void **state)
{
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    float *g = rvec(1001, 3, -3, 3);
    double norm = 0;
    assert_int_equal(sl_cuda_emu_grad_norm(ctx, g, 1001, &norm), 0);
    const double want = sl_grad_clip_norm(g, 1001, 0);
    assert_true(fabs(norm - want) <= 1e-12 * want);
    sl_free(g);
    sl_cuda_emu_close(ctx);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static void test_checkpoint_bytes_equal_cpu_and_load_continues(void **state)
{
    const sl_model_config mc = cnn_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    cpu_side c;
    emu_side e;
    cpu_open(&c, &mc, &oc, 0);
    emu_open(&e, &mc, &oc, SL_CUDA_FP32, 0);
    const size_t in = (size_t)mc.in_c * mc.in_h * mc.in_w;
    float *x = rvec(4 * in, 7, -1, 1);
    int32_t *y = rlabels(4, mc.classes, 8);
    for (int s = 0; s < 2; s++) {
        cpu_step(&c, x, y, 4, 0.01f);
        emu_step(&e, x, y, 4, 0.01f, NULL);
    }
    uint8_t *bc, *be;
    size_t lc, le;
    assert_int_equal(sl_train_state_save(c.m, c.o, &bc, &lc), 0);
    assert_int_equal(sl_cuda_emu_model_save(e.m, &be, &le), 0);
    assert_int_equal(le, lc);
    assert_memory_equal(be, bc, lc);
    sl_free(be);

    /* A fresh emulated model (another seed) takes the CPU blob and continues as the CPU. */
    sl_model_config other = mc;
    other.seed = 99;
    emu_side f;
    emu_open(&f, &other, &oc, SL_CUDA_FP32, 0);
    assert_int_equal(sl_cuda_emu_model_load(f.m, bc, lc), 0);
    assert_int_equal(sl_cuda_emu_model_optim_steps(f.m), 2);
    const double l1 = cpu_step(&c, x, y, 4, 0.01f);
    const double l2 = emu_step(&f, x, y, 4, 0.01f, NULL);
    assert_true(fabs(l1 - l2) <= 1e-12 * fabs(l1));
    sl_model *h = emu_host(&f);
    assert_blob_same("params after load + step", sl_model_params(h), sl_model_params(c.m),
                     sl_model_param_count(h));
    /* A flipped byte is refused and changes nothing. */
    bc[lc / 2] ^= 1;
    assert_int_equal(sl_cuda_emu_model_load(f.m, bc, lc), SL_ERR_CORRUPT);
    assert_int_equal(sl_cuda_emu_model_optim_steps(f.m), 3);
    sl_free(bc), sl_free(x), sl_free(y);
    emu_close(&f);
    emu_close(&e);
    cpu_close(&c);
}

/* ---- mixed precision ------------------------------------------------------------------------ */

static void test_fp16_overflow_skips_step_and_halves_scale(void **state)
{
    const sl_model_config mc = mlp_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    emu_side e;
    emu_open(&e, &mc, &oc, SL_CUDA_FP16, 0);
    sl_loss_scale *ls = sl_cuda_emu_model_loss_scale(e.m);
    assert_true(ls->scale == 65536.0f);
    ls->scale = 1e30f; /* the logit gradients times this overflow fp16 (max 65504) */
    const size_t np = sl_model_param_count(sl_cuda_emu_model_host(e.m));
    float *before = sl_malloc(np * sizeof(float));
    assert_non_null(before);
    memcpy(before, sl_model_params(emu_host(&e)), np * sizeof(float));
    float *x = rvec(6 * 20, 21, -1, 1);
    int32_t *y = rlabels(6, 3, 22);
    sl_cuda_step_result r;
    assert_int_equal(sl_cuda_emu_model_train_step(e.m, x, y, 6, 0.01f, 0, &r), 0);
    assert_int_equal(r.applied, 0);
    assert_true(r.loss_scale == 5e29f);
    assert_true(ls->scale == 5e29f);
    assert_true(isfinite(r.loss));
    assert_int_equal(sl_cuda_emu_model_optim_steps(e.m), 0);
    assert_blob_same("params after a skipped step", sl_model_params(emu_host(&e)), before, np);
    /* Back at a sane scale the next step applies and keeps the scale. */
    ls->scale = 1024.0f;
    assert_int_equal(sl_cuda_emu_model_train_step(e.m, x, y, 6, 0.01f, 1, &r), 0);
    assert_int_equal(r.applied, 1);
    assert_true(r.loss_scale == 1024.0f);
    assert_int_equal(sl_cuda_emu_model_optim_steps(e.m), 1);
    sl_free(before), sl_free(x), sl_free(y);
    emu_close(&e);
}

/* 16-bit steps follow the float32 run: losses within `tol` relative over `steps` applied steps.
 * fp16 starts at scale 65536, which overflows the backward of a batch-normalized net at first:
 * such a step is skipped (the scale halves) and retried on the same batch, as GradScaler does. */
static void check_precision_tracks_fp32(const sl_model_config *mc, sl_cuda_precision prec,
                                        int steps, double tol)
{
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    emu_side a, b;
    emu_open(&a, mc, &oc, SL_CUDA_FP32, 0);
    emu_open(&b, mc, &oc, prec, 0);
    const size_t in = (size_t)mc->in_c * mc->in_h * mc->in_w;
    const int n = mc->max_batch;
    float *x = rvec((size_t)n * in, 31, -1, 1);
    int32_t *y = rlabels(n, mc->classes, 32);
    double first = 0, last32 = 0, last16 = 0;
    int skipped = 0;
    for (int s = 0; s < steps; s++) {
        sl_cuda_step_result r;
        const double l32 = emu_step(&a, x, y, n, 0.002f, NULL);
        float scale = sl_cuda_emu_model_loss_scale(b.m)->scale;
        double l16 = emu_step(&b, x, y, n, 0.002f, &r);
        while (!r.applied) {
            assert_true(prec == SL_CUDA_FP16 && r.loss_scale == scale / 2);
            assert_true(++skipped < 20);
            scale = r.loss_scale;
            l16 = emu_step(&b, x, y, n, 0.002f, &r);
        }
        if (fabs(l16 - l32) > tol * l32)
            fail_msg("step %d: 16-bit loss %.6f, float32 %.6f", s, l16, l32);
        first = s == 0 ? l32 : first;
        last32 = l32, last16 = l16;
    }
    assert_true(last32 < first);   /* it did learn the batch */
    assert_true(last16 != last32); /* and the 16-bit run is not the float32 one */
    assert_int_equal(sl_cuda_emu_model_optim_steps(b.m), steps);
    sl_free(x), sl_free(y);
    emu_close(&b);
    emu_close(&a);
}

static void test_bf16_mlp_tracks_fp32(void **state)
{
    const sl_model_config mc = mlp_config();
    check_precision_tracks_fp32(&mc, SL_CUDA_BF16, 8, 0.03);
}

static void test_bf16_cnn_tracks_fp32(void **state)
{
    const sl_model_config mc = cnn_config();
    check_precision_tracks_fp32(&mc, SL_CUDA_BF16, 4, 0.03);
}

static void test_fp16_cnn_tracks_fp32(void **state)
{
    const sl_model_config mc = cnn_config();
    check_precision_tracks_fp32(&mc, SL_CUDA_FP16, 4, 0.005);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_nan_input_is_nonfinite_with_cpu_message(void **state)
{
    const sl_model_config mc = mlp_config();
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD);
    emu_side e;
    emu_open(&e, &mc, &oc, SL_CUDA_FP32, 0);
    float *x = rvec(6 * 20, 41, -1, 1);
    int32_t *y = rlabels(6, 3, 42);
    x[3] = NAN;
    sl_cuda_step_result r;
    assert_int_equal(sl_cuda_emu_model_train_step(e.m, x, y, 6, 0.01f, 7, &r), SL_ERR_NONFINITE);
    assert_string_equal(sl_cuda_emu_model_errmsg(e.m), "step 7: loss is nan");
    assert_int_equal(sl_cuda_emu_model_train_step(e.m, x, y, 7, 0.01f, 7, &r), SL_ERR_INVAL);
    assert_non_null(strstr(sl_cuda_emu_model_errmsg(e.m), "batch of 7, expected 1..6"));
    sl_free(x), sl_free(y);
    emu_close(&e);
}

static void test_create_rejects_bad_configs(void **state)
{
    sl_cuda_emu *ctx;
    assert_int_equal(sl_cuda_emu_open(&ctx), 0);
    sl_cuda_model_config cfg = {0};
    cfg.model = mlp_config();
    cfg.optim = sl_optim_defaults(SL_OPTIM_SGD);
    sl_cuda_emu_model *m;
    char err[256];
    cfg.model.name = "rnn";
    assert_int_equal(sl_cuda_emu_model_create(ctx, &m, &cfg, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "expected \"mlp\" or \"cnn\""));
    assert_null(m);
    cfg.model = mlp_config();
    cfg.precision = (sl_cuda_precision)7;
    assert_int_equal(sl_cuda_emu_model_create(ctx, &m, &cfg, err, sizeof err), SL_ERR_INVAL);
    cfg.precision = SL_CUDA_FP32;
    cfg.optim.momentum = 1.5f;
    assert_int_equal(sl_cuda_emu_model_create(ctx, &m, &cfg, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "optimizer"));
    sl_cuda_precision p;
    assert_int_equal(sl_cuda_precision_parse("bf16", &p), 0);
    assert_int_equal(p, SL_CUDA_BF16);
    assert_int_equal(sl_cuda_precision_parse("fp8", &p), SL_ERR_INVAL);
    sl_cuda_emu_close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_sgd_steps_equal_cpu),
        cmocka_unit_test(test_mlp_adamw_partial_batch_steps_equal_cpu),
        cmocka_unit_test(test_cnn_adamw_steps_equal_cpu),
        cmocka_unit_test(test_cnn_sgd_steps_equal_cpu),
        cmocka_unit_test(test_clipped_steps_track_cpu),
        cmocka_unit_test(test_optim_kernels_equal_sl_optim_step),
        cmocka_unit_test(test_grad_norm_equals_clip_norm),
        cmocka_unit_test(test_checkpoint_bytes_equal_cpu_and_load_continues),
        cmocka_unit_test(test_fp16_overflow_skips_step_and_halves_scale),
        cmocka_unit_test(test_bf16_mlp_tracks_fp32),
        cmocka_unit_test(test_bf16_cnn_tracks_fp32),
        cmocka_unit_test(test_fp16_cnn_tracks_fp32),
        cmocka_unit_test(test_nan_input_is_nonfinite_with_cpu_message),
        cmocka_unit_test(test_create_rejects_bad_configs),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
