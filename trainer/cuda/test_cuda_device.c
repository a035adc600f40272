/*
 * The CUDA kernels on a real GPU against the CPU reference (sluice/nn.h): every layer's forward
 * and backward on small random shapes, the linear layers through cuBLAS. Then the training step
 * (sluice/cuda_train.h): N steps of the mlp and the cnn against the CPU model and optimizer
 * (losses and parameters, to tolerances that allow for cuBLAS's and FMA's rounding), the fp16
 * overflow skip, bf16/fp16 losses near float32's, checkpoint bytes read by the CPU model, and the
 * feed's copy stream, rotation and normalize kernel. Exits 77 (skipped, as ctest's
 * SKIP_RETURN_CODE) when no device can be used, 0 when every check passes, 1 otherwise with one
 * line per failing check. Plain C without cmocka so `make cuda-check` needs nothing beyond the CUDA
 * toolkit on a GPU machine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/cuda_train.h"
#include "sluice/model.h"
#include "sluice/nn.h"
#include "sluice/nn_cuda.h"
#include "sluice/optim.h"
#include "sluice/rng.h"

static int failures;
static sl_cuda *ctx;

#define CHECK_RC(expr)                                                               \
    do {                                                                             \
        const int rc_ = (expr);                                                      \
        if (rc_ < 0) {                                                               \
            fprintf(stderr, "%s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #expr, rc_, \
                    sl_cuda_errmsg(ctx));                                            \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static float *hvec(size_t n, uint64_t seed, float lo, float hi)
{
    float *v = sl_calloc(n ? n : 1, sizeof(float));
    if (!v)
        exit(1);
    if (seed) {
        sl_rng r;
        sl_rng_init(&r, seed, 5, 0);
        for (size_t i = 0; i < n; i++)
            v[i] = lo + (hi - lo) * (float)sl_rng_uniform(&r);
    }
    return v;
}

static void *dup_dev(const void *h, size_t bytes)
{
    void *d;
    CHECK_RC(sl_cuda_malloc(ctx, bytes, &d));
    CHECK_RC(sl_cuda_upload(ctx, d, h, bytes));
    return d;
}

/* Device array d (n floats) against host reference ref: |a - b| <= tol * (1 + |b|). */
static void expect_close(const char *what, const float *d, const float *ref, size_t n, float tol)
{
    float *h = hvec(n, 0, 0, 0);
    CHECK_RC(sl_cuda_download(ctx, h, d, n * sizeof(float)));
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(h[i] - ref[i]) <= tol * (1.0f + fabsf(ref[i])))) {
            fprintf(stderr, "FAIL %s: element %zu: device %.9g, reference %.9g\n", what, i, h[i],
                    ref[i]);
            failures++;
            break;
        }
    sl_free(h);
}

static void check_linear(void)
{
    const int n = 7, in = 33, out = 10;
    float *x = hvec((size_t)n * in, 1, -1, 1), *w = hvec((size_t)out * in, 2, -1, 1);
    float *b = hvec(out, 3, -1, 1), *dy = hvec((size_t)n * out, 4, -1, 1);
    float *y = hvec((size_t)n * out, 0, 0, 0), *dx = hvec((size_t)n * in, 0, 0, 0);
    float *dw = hvec((size_t)out * in, 6, -1, 1), *db = hvec(out, 7, -1, 1);
    float *dx_d = dup_dev(dx, (size_t)n * in * 4), *y_d = dup_dev(y, (size_t)n * out * 4);
    float *x_d = dup_dev(x, (size_t)n * in * 4), *w_d = dup_dev(w, (size_t)out * in * 4);
    float *b_d = dup_dev(b, out * 4), *dy_d = dup_dev(dy, (size_t)n * out * 4);
    float *dw_d = dup_dev(dw, (size_t)out * in * 4), *db_d = dup_dev(db, out * 4);
    sl_nn_linear_fwd(SL_NN_REFERENCE, x, w, b, y, n, in, out);
    sl_nn_linear_bwd(SL_NN_REFERENCE, x, w, dy, dx, dw, db, n, in, out);
    CHECK_RC(sl_cuda_linear_fwd(ctx, x_d, w_d, b_d, y_d, n, in, out));
    CHECK_RC(sl_cuda_linear_bwd(ctx, x_d, w_d, dy_d, dx_d, dw_d, db_d, n, in, out));
    expect_close("linear_fwd", y_d, y, (size_t)n * out, 1e-5f);
    expect_close("linear_bwd dx", dx_d, dx, (size_t)n * in, 1e-5f);
    expect_close("linear_bwd dw (accumulated)", dw_d, dw, (size_t)out * in, 1e-5f);
    expect_close("linear_bwd db (accumulated)", db_d, db, out, 1e-5f);
    float *all_h[] = {x, w, b, dy, y, dx, dw, db},
          *all_d[] = {x_d, w_d, b_d, dy_d, y_d, dx_d, dw_d, db_d};
    for (int i = 0; i < 8; i++) {
        sl_free(all_h[i]);
        sl_cuda_free(ctx, all_d[i]);
    }
}

static void check_conv(int ks, int stride)
{
    const sl_nn_conv_shape s = {
        .n = 2, .c = 3, .h = 9, .w = 8, .k = 4, .ksize = ks, .stride = stride};
    const size_t xs = 2 * 3 * 9 * 8, ws = (size_t)4 * 3 * ks * ks;
    const size_t ys = (size_t)2 * 4 * sl_nn_conv_out_h(&s) * sl_nn_conv_out_w(&s);
    float *x = hvec(xs, 11, -1, 1), *w = hvec(ws, 12, -1, 1), *b = hvec(4, 13, -1, 1);
    float *dy = hvec(ys, 14, -1, 1), *y = hvec(ys, 0, 0, 0), *dx = hvec(xs, 0, 0, 0);
    float *dw = hvec(ws, 15, -1, 1), *db = hvec(4, 16, -1, 1);
    float *x_d = dup_dev(x, xs * 4), *w_d = dup_dev(w, ws * 4), *b_d = dup_dev(b, 16);
    float *dy_d = dup_dev(dy, ys * 4), *y_d = dup_dev(y, ys * 4), *dx_d = dup_dev(dx, xs * 4);
    float *dw_d = dup_dev(dw, ws * 4), *db_d = dup_dev(db, 16);
    sl_nn_conv_fwd(SL_NN_REFERENCE, &s, x, w, b, y, NULL);
    sl_nn_conv_bwd(SL_NN_REFERENCE, &s, x, w, dy, dx, dw, db, NULL);
    CHECK_RC(sl_cuda_conv_fwd(ctx, &s, x_d, w_d, b_d, y_d));
    CHECK_RC(sl_cuda_conv_bwd(ctx, &s, x_d, w_d, dy_d, dx_d, dw_d, db_d));
    expect_close("conv_fwd", y_d, y, ys, 1e-5f);
    expect_close("conv_bwd dx", dx_d, dx, xs, 1e-5f);
    expect_close("conv_bwd dw", dw_d, dw, ws, 1e-5f);
    expect_close("conv_bwd db", db_d, db, 4, 1e-5f);
    float *all_h[] = {x, w, b, dy, y, dx, dw, db},
          *all_d[] = {x_d, w_d, b_d, dy_d, y_d, dx_d, dw_d, db_d};
    for (int i = 0; i < 8; i++) {
        sl_free(all_h[i]);
        sl_cuda_free(ctx, all_d[i]);
    }
}

static void check_pool_relu_add(void)
{
    const int n = 2, c = 3, h = 7, w = 6;
    const size_t xs = (size_t)n * c * h * w, ps = (size_t)n * c * (h / 2) * (w / 2),
                 gs = (size_t)n * c;
    float *x = hvec(xs, 21, -1, 1), *x2 = hvec(xs, 22, -1, 1), *dyp = hvec(ps, 23, -1, 1);
    float *dyg = hvec(gs, 24, -1, 1), *r = hvec(xs, 0, 0, 0), *p = hvec(ps, 0, 0, 0);
    float *x_d = dup_dev(x, xs * 4), *x2_d = dup_dev(x2, xs * 4), *dyp_d = dup_dev(dyp, ps * 4);
    float *dyg_d = dup_dev(dyg, gs * 4), *out_d = dup_dev(r, xs * 4);
    sl_nn_relu_fwd(x, r, xs);
    CHECK_RC(sl_cuda_relu_fwd(ctx, x_d, out_d, xs));
    expect_close("relu_fwd", out_d, r, xs, 0);
    sl_nn_relu_bwd(x, x2, r, xs);
    CHECK_RC(sl_cuda_relu_bwd(ctx, x_d, x2_d, out_d, xs));
    expect_close("relu_bwd", out_d, r, xs, 0);
    sl_nn_add_fwd(x, x2, r, xs);
    CHECK_RC(sl_cuda_add_fwd(ctx, x_d, x2_d, out_d, xs));
    expect_close("add_fwd", out_d, r, xs, 0);
    sl_nn_add_into(r, x, xs);
    CHECK_RC(sl_cuda_add_into(ctx, out_d, x_d, xs));
    expect_close("add_into", out_d, r, xs, 0);
    sl_nn_maxpool2_fwd(x, p, n, c, h, w);
    CHECK_RC(sl_cuda_maxpool2_fwd(ctx, x_d, out_d, n, c, h, w));
    expect_close("maxpool2_fwd", out_d, p, ps, 0);
    sl_nn_maxpool2_bwd(x, dyp, r, n, c, h, w);
    CHECK_RC(sl_cuda_maxpool2_bwd(ctx, x_d, dyp_d, out_d, n, c, h, w));
    expect_close("maxpool2_bwd", out_d, r, xs, 0);
    sl_nn_gap_fwd(x, p, n, c, h, w);
    CHECK_RC(sl_cuda_gap_fwd(ctx, x_d, out_d, n, c, h, w));
    expect_close("gap_fwd", out_d, p, gs, 1e-6f);
    sl_nn_gap_bwd(dyg, r, n, c, h, w);
    CHECK_RC(sl_cuda_gap_bwd(ctx, dyg_d, out_d, n, c, h, w));
    expect_close("gap_bwd", out_d, r, xs, 0);
    float *all_h[] = {x, x2, dyp, dyg, r, p}, *all_d[] = {x_d, x2_d, dyp_d, dyg_d, out_d};
    for (int i = 0; i < 6; i++)
        sl_free(all_h[i]);
    for (int i = 0; i < 5; i++)
        sl_cuda_free(ctx, all_d[i]);
}

static void check_bn(void)
{
    const int n = 4, c = 3, hw = 10;
    const size_t xs = (size_t)n * c * hw;
    float *x = hvec(xs, 31, -2, 3), *dy = hvec(xs, 32, -1, 1), *g = hvec(c, 33, 0.5f, 1.5f);
    float *be = hvec(c, 34, -1, 1), *rm = hvec(c, 35, -1, 1), *rv = hvec(c, 36, 0.5f, 2);
    float *sm = hvec(c, 0, 0, 0), *si = hvec(c, 0, 0, 0), *y = hvec(xs, 0, 0, 0);
    float *dx = hvec(xs, 0, 0, 0), *dg = hvec(c, 37, -1, 1), *db = hvec(c, 38, -1, 1);
    float *x_d = dup_dev(x, xs * 4), *dy_d = dup_dev(dy, xs * 4), *g_d = dup_dev(g, c * 4);
    float *be_d = dup_dev(be, c * 4), *rm_d = dup_dev(rm, c * 4), *rv_d = dup_dev(rv, c * 4);
    float *sm_d = dup_dev(sm, c * 4), *si_d = dup_dev(si, c * 4), *y_d = dup_dev(y, xs * 4);
    float *dx_d = dup_dev(dx, xs * 4), *dg_d = dup_dev(dg, c * 4), *db_d = dup_dev(db, c * 4);
    sl_nn_bn_fwd_train(x, y, n, c, hw, g, be, rm, rv, 0.1f, 1e-5f, sm, si);
    CHECK_RC(sl_cuda_bn_fwd_train(ctx, x_d, y_d, n, c, hw, g_d, be_d, rm_d, rv_d, 0.1f, 1e-5f, sm_d,
                                  si_d));
    expect_close("bn_fwd_train y", y_d, y, xs, 1e-5f);
    expect_close("bn_fwd_train running_mean", rm_d, rm, c, 1e-6f);
    expect_close("bn_fwd_train running_var", rv_d, rv, c, 1e-6f);
    sl_nn_bn_bwd(x, dy, dx, n, c, hw, g, sm, si, dg, db);
    CHECK_RC(sl_cuda_bn_bwd(ctx, x_d, dy_d, dx_d, n, c, hw, g_d, sm_d, si_d, dg_d, db_d));
    expect_close("bn_bwd dx", dx_d, dx, xs, 1e-5f);
    expect_close("bn_bwd dgamma", dg_d, dg, c, 1e-5f);
    expect_close("bn_bwd dbeta", db_d, db, c, 1e-5f);
    sl_nn_bn_fwd_eval(x, y, n, c, hw, g, be, rm, rv, 1e-5f);
    CHECK_RC(sl_cuda_bn_fwd_eval(ctx, x_d, y_d, n, c, hw, g_d, be_d, rm_d, rv_d, 1e-5f));
    expect_close("bn_fwd_eval", y_d, y, xs, 1e-5f);
    float *all_h[] = {x, dy, g, be, rm, rv, sm, si, y, dx, dg, db};
    float *all_d[] = {x_d, dy_d, g_d, be_d, rm_d, rv_d, sm_d, si_d, y_d, dx_d, dg_d, db_d};
    for (int i = 0; i < 12; i++) {
        sl_free(all_h[i]);
        sl_cuda_free(ctx, all_d[i]);
    }
}

static void check_softmax_xent(void)
{
    const int n = 300, classes = 7; /* more rows than one block: the reduction's strided part */
    const size_t ls = (size_t)n * classes;
    float *logits = hvec(ls, 41, -5, 5), *probs = hvec(ls, 0, 0, 0), *dl = hvec(ls, 0, 0, 0);
    int32_t *labels = sl_calloc(n, sizeof(int32_t));
    for (int i = 0; i < n; i++)
        labels[i] = (i * 5 + 3) % classes;
    float *l_d = dup_dev(logits, ls * 4), *p_d = dup_dev(probs, ls * 4),
          *dl_d = dup_dev(dl, ls * 4);
    int32_t *lab_d = dup_dev(labels, (size_t)n * 4);
    int right_ref, right;
    double loss;
    const double loss_ref = sl_nn_softmax_xent_fwd(logits, labels, probs, n, classes, &right_ref);
    CHECK_RC(sl_cuda_softmax_xent_fwd(ctx, l_d, lab_d, p_d, n, classes, &loss, &right));
    if (fabs(loss - loss_ref) > 1e-9 * fabs(loss_ref) || right != right_ref) {
        fprintf(stderr, "FAIL softmax_xent_fwd: loss %.12g correct %d, reference %.12g %d\n", loss,
                right, loss_ref, right_ref);
        failures++;
    }
    expect_close("softmax_xent_fwd probs", p_d, probs, ls, 1e-6f);
    sl_nn_softmax_xent_bwd(probs, labels, dl, n, classes, 3.0f);
    CHECK_RC(sl_cuda_softmax_xent_bwd(ctx, p_d, lab_d, dl_d, n, classes, 3.0f));
    expect_close("softmax_xent_bwd", dl_d, dl, ls, 1e-6f);
    sl_free(logits);
    sl_free(probs);
    sl_free(dl);
    sl_free(labels);
    sl_cuda_free(ctx, l_d);
    sl_cuda_free(ctx, p_d);
    sl_cuda_free(ctx, dl_d);
    sl_cuda_free(ctx, lab_d);
}

/* ---- the training step against the CPU model ------------------------------------------------ */

static sl_model_config small_model(const char *name)
{
    sl_model_config c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.in_c = 3, c.in_h = 8, c.in_w = 8;
    c.classes = 5;
    c.max_batch = 8;
    c.seed = 21;
    c.hidden = 32;
    c.width = 8;
    c.blocks = 2;
    c.impl = SL_NN_REFERENCE;
    return c;
}

static sl_cuda_model *device_model(const sl_model_config *mc, const sl_optim_config *oc,
                                   sl_cuda_precision prec)
{
    sl_cuda_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = *mc;
    cfg.optim = *oc;
    cfg.precision = prec;
    sl_cuda_model *m;
    char err[256] = "";
    if (sl_cuda_model_create(ctx, &m, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "sl_cuda_model_create: %s\n", err);
        exit(1);
    }
    return m;
}

/* steps on both sides; losses within ltol relative, parameters within ptol * (1 + |p|) (ptol 0:
 * not compared, for AdamW, whose sign-like updates of near-zero gradients amplify rounding). */
static void check_train_steps(const char *name, sl_optim_kind kind, int steps, double ltol,
                              float ptol)
{
    const sl_model_config mc = small_model(name);
    const sl_optim_config oc = sl_optim_defaults(kind);
    sl_model *cm;
    sl_optim *co;
    CHECK_RC(sl_model_create(&cm, &mc, NULL, 0));
    CHECK_RC(sl_optim_create(&co, &oc, sl_model_param_count(cm), sl_model_decay_count(cm)));
    sl_cuda_model *dm = device_model(&mc, &oc, SL_CUDA_FP32);
    const int n = mc.max_batch;
    const size_t in = (size_t)mc.in_c * mc.in_h * mc.in_w;
    float *x_d = NULL;
    int32_t *y_d = NULL;
    CHECK_RC(sl_cuda_malloc(ctx, (size_t)n * in * sizeof(float), (void **)&x_d));
    CHECK_RC(sl_cuda_malloc(ctx, (size_t)n * sizeof(int32_t), (void **)&y_d));
    for (int s = 0; s < steps; s++) {
        float *x = hvec((size_t)n * in, 50 + (uint64_t)s, -1, 1);
        int32_t y[64];
        for (int i = 0; i < n; i++)
            y[i] = (i * 7 + s) % mc.classes;
        CHECK_RC(sl_cuda_upload(ctx, x_d, x, (size_t)n * in * sizeof(float)));
        CHECK_RC(sl_cuda_upload(ctx, y_d, y, (size_t)n * sizeof(int32_t)));
        double lc;
        sl_model_zero_grad(cm);
        CHECK_RC(sl_model_forward(cm, x, y, n, 1, &lc, NULL));
        CHECK_RC(sl_model_backward(cm, 1.0f));
        sl_optim_step(co, sl_model_params(cm), sl_model_grads(cm), 0.02f);
        sl_cuda_step_result r;
        if (sl_cuda_model_train_step(dm, x_d, y_d, n, 0.02f, s, &r) < 0) {
            fprintf(stderr, "FAIL %s step %d: %s\n", name, s, sl_cuda_model_errmsg(dm));
            failures++;
            break;
        }
        if (!(fabs(r.loss - lc) <= ltol * fabs(lc))) {
            fprintf(stderr, "FAIL %s step %d: loss device %.9g, CPU %.9g\n", name, s, r.loss, lc);
            failures++;
        }
        sl_free(x);
    }
    if (ptol > 0) {
        char what[64];
        snprintf(what, sizeof what, "%s params after %d steps", name, steps);
        expect_close(what, sl_cuda_model_params(dm), sl_model_params(cm), sl_model_param_count(cm),
                     ptol);
    }
    /* The device checkpoint is a CPU checkpoint: the CPU model reads it. */
    uint8_t *blob;
    size_t len;
    CHECK_RC(sl_cuda_model_save(dm, &blob, &len));
    sl_model *back;
    sl_model_config other = mc;
    other.seed = 5;
    CHECK_RC(sl_model_create(&back, &other, NULL, 0));
    sl_optim *bo;
    CHECK_RC(sl_optim_create(&bo, &oc, sl_model_param_count(back), sl_model_decay_count(back)));
    if (sl_train_state_load(back, bo, blob, len) != 0 || sl_optim_step_count(bo) != steps) {
        fprintf(stderr, "FAIL %s: the CPU model refused the device checkpoint: %s\n", name,
                sl_model_errmsg(back));
        failures++;
    }
    sl_free(blob);
    sl_optim_free(bo);
    sl_model_free(back);
    sl_cuda_free(ctx, x_d);
    sl_cuda_free(ctx, y_d);
    sl_cuda_model_free(dm);
    sl_optim_free(co);
    sl_model_free(cm);
}

static void check_fp16_overflow_skips(void)
{
    const sl_model_config mc = small_model("mlp");
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    sl_cuda_model *dm = device_model(&mc, &oc, SL_CUDA_FP16);
    const size_t in = (size_t)mc.in_c * mc.in_h * mc.in_w;
    const size_t np = sl_model_param_count(sl_cuda_model_host(dm));
    float *x = hvec(8 * in, 3, -1, 1), *before = hvec(np, 0, 0, 0);
    int32_t y[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    float *x_d = dup_dev(x, 8 * in * sizeof(float));
    int32_t *y_d = (int32_t *)dup_dev(y, sizeof y);
    CHECK_RC(sl_cuda_download(ctx, before, sl_cuda_model_params(dm), np * sizeof(float)));
    sl_cuda_model_loss_scale(dm)->scale = 1e30f;
    sl_cuda_step_result r;
    CHECK_RC(sl_cuda_model_train_step(dm, x_d, y_d, 8, 0.01f, 0, &r));
    if (r.applied || r.loss_scale != 5e29f || sl_cuda_model_optim_steps(dm) != 0) {
        fprintf(stderr, "FAIL fp16 overflow: applied %d, scale %g\n", r.applied, r.loss_scale);
        failures++;
    }
    expect_close("params after a skipped fp16 step", sl_cuda_model_params(dm), before, np, 0);
    sl_free(x), sl_free(before);
    sl_cuda_free(ctx, x_d);
    sl_cuda_free(ctx, y_d);
    sl_cuda_model_free(dm);
}

/* bf16 and fp16 steps on the device track float32 (the emulator's figures: within 0.5% over 4-8
 * steps; 3% allowed here). fp16 steps that overflow are retried as GradScaler does. */
static void check_mixed_precision(sl_cuda_precision prec)
{
    const sl_model_config mc = small_model("cnn");
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_ADAMW);
    sl_cuda_model *a = device_model(&mc, &oc, SL_CUDA_FP32), *b = device_model(&mc, &oc, prec);
    const size_t in = (size_t)mc.in_c * mc.in_h * mc.in_w;
    float *x = hvec(8 * in, 61, -1, 1);
    int32_t y[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    float *x_d = dup_dev(x, 8 * in * sizeof(float));
    int32_t *y_d = (int32_t *)dup_dev(y, sizeof y);
    for (int s = 0; s < 5; s++) {
        sl_cuda_step_result ra, rb;
        CHECK_RC(sl_cuda_model_train_step(a, x_d, y_d, 8, 0.002f, s, &ra));
        int tries = 0;
        do
            CHECK_RC(sl_cuda_model_train_step(b, x_d, y_d, 8, 0.002f, s, &rb));
        while (!rb.applied && ++tries < 20);
        if (!rb.applied || !(fabs(rb.loss - ra.loss) <= 0.03 * ra.loss)) {
            fprintf(stderr, "FAIL precision %d step %d: loss %.6f, float32 %.6f (applied %d)\n",
                    (int)prec, s, rb.loss, ra.loss, rb.applied);
            failures++;
            break;
        }
    }
    sl_free(x);
    sl_cuda_free(ctx, x_d);
    sl_cuda_free(ctx, y_d);
    sl_cuda_model_free(b);
    sl_cuda_model_free(a);
}

/* Batches through the real copy stream and events: each comes out once, in order, normalized as
 * sl_image_normalize computes it (FMA may round the device's x * a + b once: 1e-6). */
static void check_feed(void)
{
    enum { B = 16, H = 32, W = 32, C = 3, BATCHES = 9 };
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    sl_cuda_feed *f;
    CHECK_RC(sl_cuda_feed_open(ctx, &f, B, H, W, C, 10, mean, sd));
    const size_t px = (size_t)B * H * W * C;
    float *want = hvec(px, 0, 0, 0);
    int next = 0, taken = 0;
    for (int k = 0; k < BATCHES + 1; k++) {
        if (next < BATCHES) {
            uint8_t *p;
            int32_t *l;
            CHECK_RC(sl_cuda_feed_slot(f, &p, &l));
            for (size_t i = 0; i < px; i++)
                p[i] = (uint8_t)(i * 31 + (size_t)next * 17);
            for (int i = 0; i < B; i++)
                l[i] = next % 10;
            CHECK_RC(sl_cuda_feed_submit(f, B));
            next++;
        }
        if (k == 0)
            continue;
        const float *x;
        const int32_t *y;
        int n;
        CHECK_RC(sl_cuda_feed_next(f, &x, &y, &n));
        for (int i = 0; i < B; i++)
            for (int c = 0; c < C; c++)
                for (int q = 0; q < H * W; q++) {
                    const uint8_t v =
                        (uint8_t)(((size_t)i * H * W + q) * C * 31 + c * 31 + (size_t)taken * 17);
                    want[((size_t)i * C + c) * H * W + q] =
                        v * (1.0f / (255.0f * sd[c])) + -mean[c] / sd[c];
                }
        char what[64];
        snprintf(what, sizeof what, "feed batch %d", taken);
        expect_close(what, x, want, px, 1e-6f);
        int32_t yh[B];
        CHECK_RC(sl_cuda_download(ctx, yh, y, sizeof yh));
        if (n != B || yh[0] != taken % 10 || yh[B - 1] != taken % 10) {
            fprintf(stderr, "FAIL feed batch %d: n %d, label %d\n", taken, n, yh[0]);
            failures++;
        }
        taken++;
    }
    printf("test_cuda_device: feed waited %.6f s for %d copies\n", sl_cuda_feed_wait_seconds(f),
           BATCHES);
    sl_free(want);
    sl_cuda_feed_close(f);
}

int main(void)
{
    const int devices = sl_cuda_device_count();
    if (devices <= 0) {
        printf("test_cuda_device: no CUDA device, skipped\n");
        return 77;
    }
    const int rc = sl_cuda_open(&ctx);
    if (rc < 0) {
        printf("test_cuda_device: cannot open the device (%d), skipped\n", rc);
        return 77;
    }
    check_linear();
    check_conv(3, 1);
    check_conv(3, 2);
    check_conv(1, 1);
    check_conv(1, 2);
    check_pool_relu_add();
    check_bn();
    check_softmax_xent();
    check_train_steps("mlp", SL_OPTIM_SGD, 5, 1e-5, 1e-4f);
    check_train_steps("cnn", SL_OPTIM_SGD, 5, 1e-4, 1e-3f);
    check_train_steps("cnn", SL_OPTIM_ADAMW, 5, 1e-3, 0);
    check_fp16_overflow_skips();
    check_mixed_precision(SL_CUDA_BF16);
    check_mixed_precision(SL_CUDA_FP16);
    check_feed();
    sl_cuda_close(ctx);
    if (failures) {
        fprintf(stderr, "test_cuda_device: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_cuda_device: all checks passed on %d device(s), linear via %s\n", devices,
           sl_cuda_gemm_name());
    return 0;
}
