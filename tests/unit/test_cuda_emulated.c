/* The CUDA backend's kernels (trainer/cuda/nn_kernels.inc) compiled as C and run by the CPU
 * emulator (sl_cuda_emu_*), against the independent CPU reference of sluice/nn.h: every layer's
 * forward and backward, on shapes with partial last blocks and several blocks per launch. The
 * kernels call the same per-value bodies as the reference, so results must match bit for bit;
 * only the loss, summed by a shared-memory tree instead of a loop, is compared to rounding.
 *
 * Also here: the emulator itself (barriers as phases, shared memory per block, launch errors),
 * the check that every layer and every body has its CUDA twin, the bf16/fp16 rounding kernels
 * against the core's independent conversions (sluice/half.h), and dynamic loss scaling.
 *
 * In the emulator "device memory" is host memory from sl_malloc, so tests pass host arrays. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_compat.h"
#include "emu.h"
#include "sluice/half.h"
#include "sluice/loss_scale.h"
#include "sluice/nn.h"
#include "sluice/nn_cuda.h"
#include "sluice/rng.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static float *fvec(size_t n)
{
    float *v = sl_calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

static float *rvec(size_t n, uint64_t seed, float lo, float hi)
{
    float *v = fvec(n);
    sl_rng r;
    sl_rng_init(&r, seed, 9, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)sl_rng_uniform(&r);
    return v;
}

static float *copy(const float *v, size_t n)
{
    float *c = fvec(n);
    memcpy(c, v, n * sizeof(float));
    return c;
}

/* Bit-for-bit equal (NaN equal to NaN of the same bits), naming the first difference. */
static void assert_same(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu: emulated %.9g, reference %.9g", what, i, got[i], want[i]);
}

static sl_cuda_emu *emu_open(void)
{
    sl_cuda_emu *e;
    assert_int_equal(sl_cuda_emu_open(&e), 0);
    return e;
}

/* ---- linear --------------------------------------------------------------------------------- */

enum { LN = 19, LIN = 37, LOUT = 11 }; /* n * out = 209, in * out = 407: partial blocks */

static void test_linear_fwd_matches_reference(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(LN * LIN, 1, -1, 1), *w = rvec(LOUT * LIN, 2, -1, 1), *b = rvec(LOUT, 3, -1, 1);
    float *y = fvec(LN * LOUT), *ref = fvec(LN * LOUT);
    sl_nn_linear_fwd(SL_NN_REFERENCE, x, w, b, ref, LN, LIN, LOUT);
    assert_int_equal(sl_cuda_emu_linear_fwd(e, x, w, b, y, LN, LIN, LOUT), 0);
    assert_same("linear_fwd", y, ref, LN * LOUT);
    sl_nn_linear_fwd(SL_NN_REFERENCE, x, w, NULL, ref, LN, LIN, LOUT);
    assert_int_equal(sl_cuda_emu_linear_fwd(e, x, w, NULL, y, LN, LIN, LOUT), 0);
    assert_same("linear_fwd without bias", y, ref, LN * LOUT);
    sl_free(x), sl_free(w), sl_free(b), sl_free(y), sl_free(ref);
    sl_cuda_emu_close(e);
}

static void test_linear_bwd_matches_reference_and_accumulates(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(LN * LIN, 1, -1, 1), *w = rvec(LOUT * LIN, 2, -1, 1);
    float *dy = rvec(LN * LOUT, 4, -1, 1);
    float *dw = rvec(LOUT * LIN, 5, -1, 1), *db = rvec(LOUT, 6, -1, 1), *dx = fvec(LN * LIN);
    float *dw_ref = copy(dw, LOUT * LIN), *db_ref = copy(db, LOUT), *dx_ref = fvec(LN * LIN);
    sl_nn_linear_bwd(SL_NN_REFERENCE, x, w, dy, dx_ref, dw_ref, db_ref, LN, LIN, LOUT);
    assert_int_equal(sl_cuda_emu_linear_bwd(e, x, w, dy, dx, dw, db, LN, LIN, LOUT), 0);
    assert_same("linear_bwd dx", dx, dx_ref, LN * LIN);
    assert_same("linear_bwd dw", dw, dw_ref, LOUT * LIN);
    assert_same("linear_bwd db", db, db_ref, LOUT);
    sl_free(x), sl_free(w), sl_free(dy), sl_free(dw), sl_free(db), sl_free(dx);
    sl_free(dw_ref), sl_free(db_ref), sl_free(dx_ref);
    sl_cuda_emu_close(e);
}

/* ---- convolution ---------------------------------------------------------------------------- */

static sl_nn_conv_shape conv_shape(int ks, int stride)
{
    const sl_nn_conv_shape s = {
        .n = 3, .c = 4, .h = 11, .w = 9, .k = 5, .ksize = ks, .stride = stride};
    return s;
}

static size_t conv_out_count(const sl_nn_conv_shape *s)
{
    return (size_t)s->n * s->k * sl_nn_conv_out_h(s) * sl_nn_conv_out_w(s);
}

static void check_conv_fwd(int ks, int stride)
{
    sl_cuda_emu *e = emu_open();
    const sl_nn_conv_shape s = conv_shape(ks, stride);
    const size_t xs = (size_t)s.n * s.c * s.h * s.w, ws = (size_t)s.k * s.c * ks * ks;
    const size_t ys = conv_out_count(&s);
    float *x = rvec(xs, 11, -1, 1), *w = rvec(ws, 12, -1, 1), *b = rvec(s.k, 13, -1, 1);
    float *y = fvec(ys), *ref = fvec(ys);
    sl_nn_conv_fwd(SL_NN_REFERENCE, &s, x, w, b, ref, NULL);
    assert_int_equal(sl_cuda_emu_conv_fwd(e, &s, x, w, b, y), 0);
    assert_same("conv_fwd", y, ref, ys);
    sl_free(x), sl_free(w), sl_free(b), sl_free(y), sl_free(ref);
    sl_cuda_emu_close(e);
}

static void check_conv_bwd(int ks, int stride)
{
    sl_cuda_emu *e = emu_open();
    const sl_nn_conv_shape s = conv_shape(ks, stride);
    const size_t xs = (size_t)s.n * s.c * s.h * s.w, ws = (size_t)s.k * s.c * ks * ks;
    const size_t ys = conv_out_count(&s);
    float *x = rvec(xs, 11, -1, 1), *w = rvec(ws, 12, -1, 1), *dy = rvec(ys, 14, -1, 1);
    float *dw = rvec(ws, 15, -1, 1), *db = rvec(s.k, 16, -1, 1), *dx = fvec(xs);
    float *dw_ref = copy(dw, ws), *db_ref = copy(db, s.k), *dx_ref = fvec(xs);
    sl_nn_conv_bwd(SL_NN_REFERENCE, &s, x, w, dy, dx_ref, dw_ref, db_ref, NULL);
    assert_int_equal(sl_cuda_emu_conv_bwd(e, &s, x, w, dy, dx, dw, db), 0);
    assert_same("conv_bwd dx", dx, dx_ref, xs);
    assert_same("conv_bwd dw", dw, dw_ref, ws);
    assert_same("conv_bwd db", db, db_ref, s.k);
    sl_free(x), sl_free(w), sl_free(dy), sl_free(dw), sl_free(db), sl_free(dx);
    sl_free(dw_ref), sl_free(db_ref), sl_free(dx_ref);
    sl_cuda_emu_close(e);
}

static void test_conv3x3_stride1_fwd(void **state)
{
    check_conv_fwd(3, 1);
}
static void test_conv3x3_stride2_fwd(void **state)
{
    check_conv_fwd(3, 2);
}
static void test_conv1x1_stride1_fwd(void **state)
{
    check_conv_fwd(1, 1);
}
static void test_conv1x1_stride2_fwd(void **state)
{
    check_conv_fwd(1, 2);
}
static void test_conv3x3_stride1_bwd(void **state)
{
    check_conv_bwd(3, 1);
}
static void test_conv3x3_stride2_bwd(void **state)
{
    check_conv_bwd(3, 2);
}
static void test_conv1x1_stride1_bwd(void **state)
{
    check_conv_bwd(1, 1);
}
static void test_conv1x1_stride2_bwd(void **state)
{
    check_conv_bwd(1, 2);
}

/* im2col then the reference GEMM is the reference convolution (no bias), image by image; and
 * col2im of W^T dy is the reference's dx: the GEMM-based convolution's pieces. Compared to
 * rounding: the GEMM sums in another order than the direct convolution. */
static void test_im2col_and_col2im_make_the_convolution(void **state)
{
    sl_cuda_emu *e = emu_open();
    const sl_nn_conv_shape s = conv_shape(3, 2);
    const int oh = sl_nn_conv_out_h(&s), ow = sl_nn_conv_out_w(&s), rows = s.c * 9;
    const size_t xs = (size_t)s.n * s.c * s.h * s.w, ws = (size_t)s.k * rows;
    const size_t ys = conv_out_count(&s), plane = (size_t)s.k * oh * ow;
    float *x = rvec(xs, 21, -1, 1), *w = rvec(ws, 22, -1, 1), *dy = rvec(ys, 23, -1, 1);
    float *y_ref = fvec(ys), *dx_ref = fvec(xs), *dw = fvec(ws);
    float *col = fvec((size_t)rows * oh * ow), *y = fvec(plane), *dx = fvec(xs);
    sl_nn_conv_fwd(SL_NN_REFERENCE, &s, x, w, NULL, y_ref, NULL);
    sl_nn_conv_bwd(SL_NN_REFERENCE, &s, x, w, dy, dx_ref, dw, NULL, NULL);
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(sl_cuda_emu_im2col(e, &s, x, i, col), 0);
        sl_nn_gemm(SL_NN_REFERENCE, 0, 0, s.k, oh * ow, rows, 1.0f, w, rows, col, oh * ow, 0.0f, y,
                   oh * ow);
        for (size_t q = 0; q < plane; q++)
            assert_float_equal(y[q], y_ref[i * plane + q], 1e-5);
        sl_nn_gemm(SL_NN_REFERENCE, 1, 0, rows, oh * ow, s.k, 1.0f, w, rows, dy + i * plane,
                   oh * ow, 0.0f, col, oh * ow);
        assert_int_equal(sl_cuda_emu_col2im(e, &s, col, i, dx), 0);
    }
    for (size_t q = 0; q < xs; q++)
        assert_float_equal(dx[q], dx_ref[q], 1e-5);
    sl_free(x), sl_free(w), sl_free(dy), sl_free(y_ref), sl_free(dx_ref), sl_free(dw);
    sl_free(col), sl_free(y), sl_free(dx);
    sl_cuda_emu_close(e);
}

/* ---- elementwise and pooling ------------------------------------------------------------------
 */

enum { EN = 3, EC = 5, EH = 9, EW = 7, ECOUNT = EN * EC * EH * EW }; /* odd h, w: dropped edge */

static void test_relu_fwd_and_bwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(ECOUNT, 31, -1, 1), *dy = rvec(ECOUNT, 32, -1, 1);
    x[0] = NAN; /* passes through, as in the reference */
    float *y = fvec(ECOUNT), *ref = fvec(ECOUNT);
    sl_nn_relu_fwd(x, ref, ECOUNT);
    assert_int_equal(sl_cuda_emu_relu_fwd(e, x, y, ECOUNT), 0);
    assert_same("relu_fwd", y, ref, ECOUNT);
    sl_nn_relu_bwd(x, dy, ref, ECOUNT);
    assert_int_equal(sl_cuda_emu_relu_bwd(e, x, dy, y, ECOUNT), 0);
    assert_same("relu_bwd", y, ref, ECOUNT);
    sl_free(x), sl_free(dy), sl_free(y), sl_free(ref);
    sl_cuda_emu_close(e);
}

static void test_add_fwd_and_add_into(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *a = rvec(ECOUNT, 33, -1, 1), *b = rvec(ECOUNT, 34, -1, 1);
    float *y = fvec(ECOUNT), *ref = fvec(ECOUNT);
    sl_nn_add_fwd(a, b, ref, ECOUNT);
    assert_int_equal(sl_cuda_emu_add_fwd(e, a, b, y, ECOUNT), 0);
    assert_same("add_fwd", y, ref, ECOUNT);
    sl_nn_add_into(ref, a, ECOUNT);
    assert_int_equal(sl_cuda_emu_add_into(e, y, a, ECOUNT), 0);
    assert_same("add_into", y, ref, ECOUNT);
    sl_free(a), sl_free(b), sl_free(y), sl_free(ref);
    sl_cuda_emu_close(e);
}

static void test_maxpool2_fwd_and_bwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    const size_t ps = (size_t)EN * EC * (EH / 2) * (EW / 2);
    float *x = rvec(ECOUNT, 35, -1, 1), *dy = rvec(ps, 36, -1, 1);
    x[1] = x[0]; /* a tie: the first wins in both */
    float *y = fvec(ps), *yref = fvec(ps), *dx = fvec(ECOUNT), *dxref = fvec(ECOUNT);
    sl_nn_maxpool2_fwd(x, yref, EN, EC, EH, EW);
    assert_int_equal(sl_cuda_emu_maxpool2_fwd(e, x, y, EN, EC, EH, EW), 0);
    assert_same("maxpool2_fwd", y, yref, ps);
    sl_nn_maxpool2_bwd(x, dy, dxref, EN, EC, EH, EW);
    memset(dx, 0x7f, ECOUNT * sizeof(float)); /* the dropped edge must be written too */
    assert_int_equal(sl_cuda_emu_maxpool2_bwd(e, x, dy, dx, EN, EC, EH, EW), 0);
    assert_same("maxpool2_bwd", dx, dxref, ECOUNT);
    sl_free(x), sl_free(dy), sl_free(y), sl_free(yref), sl_free(dx), sl_free(dxref);
    sl_cuda_emu_close(e);
}

static void test_gap_fwd_and_bwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(ECOUNT, 37, -1, 1), *dy = rvec(EN * EC, 38, -1, 1);
    float *y = fvec(EN * EC), *yref = fvec(EN * EC), *dx = fvec(ECOUNT), *dxref = fvec(ECOUNT);
    sl_nn_gap_fwd(x, yref, EN, EC, EH, EW);
    assert_int_equal(sl_cuda_emu_gap_fwd(e, x, y, EN, EC, EH, EW), 0);
    assert_same("gap_fwd", y, yref, EN * EC);
    sl_nn_gap_bwd(dy, dxref, EN, EC, EH, EW);
    assert_int_equal(sl_cuda_emu_gap_bwd(e, dy, dx, EN, EC, EH, EW), 0);
    assert_same("gap_bwd", dx, dxref, ECOUNT);
    sl_free(x), sl_free(dy), sl_free(y), sl_free(yref), sl_free(dx), sl_free(dxref);
    sl_cuda_emu_close(e);
}

/* ---- batch norm ----------------------------------------------------------------------------- */

enum { BN_N = 6, BN_C = 5, BN_HW = 23, BN_COUNT = BN_N * BN_C * BN_HW };

static void test_bn_fwd_train_and_running_averages(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(BN_COUNT, 41, -2, 3), *g = rvec(BN_C, 42, 0.5f, 1.5f);
    float *be = rvec(BN_C, 43, -1, 1), *rm = rvec(BN_C, 44, -1, 1), *rv = rvec(BN_C, 45, 0.5f, 2);
    float *rm_ref = copy(rm, BN_C), *rv_ref = copy(rv, BN_C);
    float *y = fvec(BN_COUNT), *yref = fvec(BN_COUNT), *sm = fvec(BN_C), *si = fvec(BN_C);
    float *sm_ref = fvec(BN_C), *si_ref = fvec(BN_C);
    sl_nn_bn_fwd_train(x, yref, BN_N, BN_C, BN_HW, g, be, rm_ref, rv_ref, 0.1f, 1e-5f, sm_ref,
                       si_ref);
    assert_int_equal(
        sl_cuda_emu_bn_fwd_train(e, x, y, BN_N, BN_C, BN_HW, g, be, rm, rv, 0.1f, 1e-5f, sm, si),
        0);
    assert_same("bn_fwd_train y", y, yref, BN_COUNT);
    assert_same("bn_fwd_train save_mean", sm, sm_ref, BN_C);
    assert_same("bn_fwd_train save_invstd", si, si_ref, BN_C);
    assert_same("bn_fwd_train running_mean", rm, rm_ref, BN_C);
    assert_same("bn_fwd_train running_var", rv, rv_ref, BN_C);
    sl_free(x), sl_free(g), sl_free(be), sl_free(rm), sl_free(rv), sl_free(rm_ref);
    sl_free(rv_ref), sl_free(y), sl_free(yref), sl_free(sm), sl_free(si), sl_free(sm_ref);
    sl_free(si_ref);
    sl_cuda_emu_close(e);
}

static void test_bn_fwd_eval(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(BN_COUNT, 41, -2, 3), *g = rvec(BN_C, 42, 0.5f, 1.5f);
    float *be = rvec(BN_C, 43, -1, 1), *rm = rvec(BN_C, 44, -1, 1), *rv = rvec(BN_C, 45, 0.5f, 2);
    float *y = fvec(BN_COUNT), *yref = fvec(BN_COUNT);
    sl_nn_bn_fwd_eval(x, yref, BN_N, BN_C, BN_HW, g, be, rm, rv, 1e-5f);
    assert_int_equal(sl_cuda_emu_bn_fwd_eval(e, x, y, BN_N, BN_C, BN_HW, g, be, rm, rv, 1e-5f), 0);
    assert_same("bn_fwd_eval", y, yref, BN_COUNT);
    sl_free(x), sl_free(g), sl_free(be), sl_free(rm), sl_free(rv), sl_free(y), sl_free(yref);
    sl_cuda_emu_close(e);
}

static void test_bn_bwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *x = rvec(BN_COUNT, 51, -2, 3), *dy = rvec(BN_COUNT, 52, -1, 1);
    float *g = rvec(BN_C, 53, 0.5f, 1.5f), *be = rvec(BN_C, 54, -1, 1);
    float *rm = fvec(BN_C), *rv = fvec(BN_C), *sm = fvec(BN_C), *si = fvec(BN_C);
    float *y = fvec(BN_COUNT), *dx = fvec(BN_COUNT), *dxref = fvec(BN_COUNT);
    float *dg = rvec(BN_C, 55, -1, 1), *db = rvec(BN_C, 56, -1, 1);
    float *dg_ref = copy(dg, BN_C), *db_ref = copy(db, BN_C);
    sl_nn_bn_fwd_train(x, y, BN_N, BN_C, BN_HW, g, be, rm, rv, 0.1f, 1e-5f, sm, si);
    sl_nn_bn_bwd(x, dy, dxref, BN_N, BN_C, BN_HW, g, sm, si, dg_ref, db_ref);
    assert_int_equal(sl_cuda_emu_bn_bwd(e, x, dy, dx, BN_N, BN_C, BN_HW, g, sm, si, dg, db), 0);
    assert_same("bn_bwd dx", dx, dxref, BN_COUNT);
    assert_same("bn_bwd dgamma", dg, dg_ref, BN_C);
    assert_same("bn_bwd dbeta", db, db_ref, BN_C);
    sl_free(x), sl_free(dy), sl_free(g), sl_free(be), sl_free(rm), sl_free(rv), sl_free(sm);
    sl_free(si), sl_free(y), sl_free(dx), sl_free(dxref), sl_free(dg), sl_free(db);
    sl_free(dg_ref), sl_free(db_ref);
    sl_cuda_emu_close(e);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

enum { SN = 600, SC = 10 }; /* more rows than threads in the reduction's block */

static int32_t *labels_for(int n, int classes)
{
    int32_t *l = sl_calloc((size_t)n, sizeof(int32_t));
    assert_non_null(l);
    for (int i = 0; i < n; i++)
        l[i] = (i * 7 + 3) % classes;
    return l;
}

static void test_softmax_xent_fwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *logits = rvec(SN * SC, 61, -6, 6), *p = fvec(SN * SC), *pref = fvec(SN * SC);
    logits[5] = 1e30f; /* huge logit: stable in both */
    int32_t *labels = labels_for(SN, SC);
    int right_ref, right = -1;
    double loss = -1;
    const double ref = sl_nn_softmax_xent_fwd(logits, labels, pref, SN, SC, &right_ref);
    assert_int_equal(sl_cuda_emu_softmax_xent_fwd(e, logits, labels, p, SN, SC, &loss, &right), 0);
    assert_same("softmax_xent_fwd probs", p, pref, SN * SC);
    assert_int_equal(right, right_ref);
    assert_true(isfinite(ref) && fabs(loss - ref) <= 1e-12 * fabs(ref));
    sl_free(logits), sl_free(p), sl_free(pref), sl_free(labels);
    sl_cuda_emu_close(e);
}

static void test_softmax_xent_bwd(void **state)
{
    sl_cuda_emu *e = emu_open();
    float *logits = rvec(SN * SC, 62, -6, 6), *p = fvec(SN * SC);
    float *d = fvec(SN * SC), *dref = fvec(SN * SC);
    int32_t *labels = labels_for(SN, SC);
    sl_nn_softmax_xent_fwd(logits, labels, p, SN, SC, NULL);
    sl_nn_softmax_xent_bwd(p, labels, dref, SN, SC, 128.0f);
    assert_int_equal(sl_cuda_emu_softmax_xent_bwd(e, p, labels, d, SN, SC, 128.0f), 0);
    assert_same("softmax_xent_bwd", d, dref, SN * SC);
    sl_free(logits), sl_free(p), sl_free(d), sl_free(dref), sl_free(labels);
    sl_cuda_emu_close(e);
}

/* The layer pairs as linked symbols, CPU reference beside emulated CUDA: the table must name
 * every layer of sluice/nn.h (checked below), so a layer added there without its CUDA twin fails
 * to compile or link here, or fails that check. */
static const struct {
    const char *name;
    const void *cpu, *cuda_emu;
} layer_pairs[] = {
#define PAIR(n)                                                    \
    {                                                              \
#n, (const void *)sl_nn_##n, (const void *)sl_cuda_emu_##n \
    }
    PAIR(linear_fwd),       PAIR(linear_bwd),   PAIR(conv_fwd), PAIR(conv_bwd),
    PAIR(relu_fwd),         PAIR(relu_bwd),     PAIR(add_fwd),  PAIR(add_into),
    PAIR(maxpool2_fwd),     PAIR(maxpool2_bwd), PAIR(gap_fwd),  PAIR(gap_bwd),
    PAIR(bn_fwd_train),     PAIR(bn_fwd_eval),  PAIR(bn_bwd),   PAIR(softmax_xent_fwd),
    PAIR(softmax_xent_bwd),
#undef PAIR
};

static void expect_in_pair_table(const char *name, size_t len, void *arg)
{
    int *missing = arg;
    static const char *excluded[] = {"gemm",           "gemm_name",  "set_gemm_threads",
                                     "conv_out_h",     "conv_out_w", "conv_work_floats",
                                     "find_nonfinite", NULL};
    for (const char **x = excluded; *x; x++)
        if (strlen(*x) == len && memcmp(*x, name, len) == 0)
            return;
    for (size_t i = 0; i < sizeof(layer_pairs) / sizeof(layer_pairs[0]); i++)
        if (strlen(layer_pairs[i].name) == len && memcmp(layer_pairs[i].name, name, len) == 0)
            return;
    fprintf(stderr, "layer sl_nn_%.*s is missing from the pair table\n", (int)len, name);
    (*missing)++;
}

/* ---- every layer has both versions ---------------------------------------------------------- */

static char *read_source(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", sl_test_source_dir(), rel);
    uint8_t *data;
    size_t len;
    assert_int_equal(sl_test_read_file(path, &data, &len), 0);
    char *text = sl_malloc(len + 1);
    assert_non_null(text);
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    return text;
}

/* Calls fn(name, name_len) for every identifier in `text` that starts at a word boundary with
 * `prefix` and ends, before `(`, with `suffix`. Returns how many it found. */
static int each_name(const char *text, const char *prefix, const char *suffix,
                     void (*fn)(const char *, size_t, void *), void *arg)
{
    int found = 0;
    const size_t pl = strlen(prefix), sl = strlen(suffix);
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        const char *q = p + pl;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')
            q++;
        if (*q != '(' || (size_t)(q - p) < pl + sl || memcmp(q - sl, suffix, sl) != 0)
            continue;
        fn(p + pl, (size_t)(q - p) - pl - sl, arg);
        found++;
    }
    return found;
}

typedef struct twin_check {
    const char *other;     /* the text that must hold the twin */
    const char *fmt;       /* printf format of the twin's spelling, %.*s for the name */
    const char **excluded; /* names without a twin, NULL-terminated */
    int missing;
} twin_check;

static void expect_twin(const char *name, size_t len, void *arg)
{
    twin_check *c = arg;
    for (const char **x = c->excluded; *x; x++)
        if (strlen(*x) == len && memcmp(*x, name, len) == 0)
            return;
    char want[128];
    snprintf(want, sizeof(want), c->fmt, (int)len, name);
    if (!strstr(c->other, want)) {
        fprintf(stderr, "no CUDA twin: %s\n", want);
        c->missing++;
    }
}

/* Every per-value body (nn_bodies.h, mp_bodies.h, feed_bodies.h) has its kernel, <body>_kernel, in
 * the kernel source: the name-for-name mirror DESIGN §7 asks for, read from the sources so that a
 * body added without a kernel fails here. */
static void test_every_body_has_a_kernel(void **state)
{
    char *bodies = read_source("trainer/src/nn_bodies.h");
    char *mp = read_source("trainer/cuda/mp_bodies.h");
    char *feed = read_source("trainer/cuda/feed_bodies.h");
    char *kernels = read_source("trainer/cuda/nn_kernels.inc");
    /* The window's winner is a helper inside maxpool2_fwd_at and maxpool2_bwd_at. */
    const char *excluded[] = {"maxpool2_argmax", NULL};
    twin_check c = {kernels, "SL_GLOBAL void %.*s_kernel(", excluded, 0};
    const int n = each_name(bodies, "inline float ", "_at", expect_twin, &c) +
                  each_name(bodies, "inline double ", "_at", expect_twin, &c) +
                  each_name(bodies, "inline void ", "_at", expect_twin, &c) +
                  each_name(bodies, "inline int ", "_at", expect_twin, &c) +
                  each_name(mp, "inline float ", "_at", expect_twin, &c) +
                  each_name(feed, "inline float ", "_at", expect_twin, &c);
    assert_true(n >= 26); /* the parse found the bodies at all (with the optimizer and feed) */
    assert_int_equal(c.missing, 0);
    sl_free(bodies), sl_free(mp), sl_free(feed), sl_free(kernels);
}

/* Every layer function of sluice/nn.h has its twin in the CUDA API (sluice/nn_cuda_api.h, the
 * one list both backends are declared from) and its row in layer_pairs. */
static void test_every_layer_function_has_a_cuda_twin(void **state)
{
    char *nn = read_source("trainer/include/sluice/nn.h");
    char *api = read_source("trainer/cuda/include/sluice/nn_cuda_api.h");
    /* GEMM plumbing and host-side helpers: not layers. */
    const char *excluded[] = {"gemm",       "gemm_name",        "set_gemm_threads", "conv_out_h",
                              "conv_out_w", "conv_work_floats", "find_nonfinite",   NULL};
    twin_check c = {api, "SL_CUDA_FN(%.*s)(", excluded, 0};
    const int n = each_name(nn, " sl_nn_", "", expect_twin, &c);
    assert_true(n >= 20);
    assert_int_equal(c.missing, 0);
    int missing = 0;
    each_name(nn, " sl_nn_", "", expect_in_pair_table, &missing);
    assert_int_equal(missing, 0);
    sl_free(nn), sl_free(api);
}

/* ---- the emulator itself -------------------------------------------------------------------- */

/* Reverses each block's slice through shared memory: thread t reads what thread B-1-t wrote, so
 * it is only right if every thread's write (phase 0) precedes every read (phase 1). */
SL_GLOBAL void reverse_kernel(const float *in, float *out)
{
    SL_SHARED_DYN(float, s);
    const unsigned t = threadIdx.x;
    const int64_t g = SL_GID();
    SL_PHASES(2)
    {
        if (sl_phase == 0)
            s[t] = in[g];
        else
            out[g] = s[blockDim.x - 1 - t];
    }
}

static int launch_reverse(const float *in, float *out, unsigned grid, unsigned block)
{
    sl_emu_launch l;
    const int rc = sl_emu_begin(&l, grid, block, block * sizeof(float));
    if (rc < 0)
        return rc;
    while (sl_emu_next(&l))
        reverse_kernel(in, out);
    sl_emu_end(&l);
    return 0;
}

static void test_emulator_barrier_and_shared_memory_per_block(void **state)
{
    enum { GRID = 3, BLOCK = 64 };
    float in[GRID * BLOCK], out[GRID * BLOCK];
    for (int i = 0; i < GRID * BLOCK; i++)
        in[i] = (float)i;
    const uint64_t before = sl_emu_launch_count();
    assert_int_equal(launch_reverse(in, out, GRID, BLOCK), 0);
    assert_int_equal(sl_emu_launch_count(), before + 1);
    for (int b = 0; b < GRID; b++)
        for (int t = 0; t < BLOCK; t++)
            assert_float_equal(out[b * BLOCK + t], (float)(b * BLOCK + BLOCK - 1 - t), 0);
}

static void test_emulator_rejects_empty_and_oversized_launches(void **state)
{
    float in[1] = {0}, out[1];
    assert_int_equal(launch_reverse(in, out, 0, 1), SL_ERR_INVAL);
    assert_int_equal(launch_reverse(in, out, 1, 0), SL_ERR_INVAL);
    assert_int_equal(launch_reverse(in, out, 1, 1025), SL_ERR_INVAL);
}

/* ---- mixed precision ------------------------------------------------------------------------ */

/* Values that probe rounding: random floats over the whole exponent range, ties, the fp16
 * subnormal range, the overflow boundary, signed zeros, infinities and NaN. */
static float *probe_values(size_t *count)
{
    enum { RANDOM = 20000 };
    static const float edges[] = {
        0.0f,       -0.0f,      1.0f,           -1.0f,          65504.0f,   65519.99f,
        65520.0f,   -65520.0f,  1e-8f,          -3e-8f,         5.96e-8f,   2.98e-8f,
        6.1035e-5f, 6.0975e-5f, 1.00048828125f, 1.00146484375f, 1.0078125f, 1.00390625f,
        3.4e38f,    -3.4e38f,   INFINITY,       -INFINITY,      NAN};
    const size_t ne = sizeof(edges) / sizeof(edges[0]);
    float *v = fvec(RANDOM + ne);
    sl_rng r;
    sl_rng_init(&r, 71, 0, 0);
    for (size_t i = 0; i < RANDOM; i++) {
        uint32_t u = sl_rng_u32(&r);
        if (i % 2) /* half of them near fp16's range, where its rounding is interesting */
            u = (u & 0x807fffffu) | ((uint32_t)(100 + (u >> 23) % 50) << 23);
        memcpy(&v[i], &u, 4);
    }
    memcpy(v + RANDOM, edges, sizeof(edges));
    *count = RANDOM + ne;
    return v;
}

static void test_round_bf16_matches_half_h(void **state)
{
    sl_cuda_emu *e = emu_open();
    size_t n;
    float *v = probe_values(&n), *r = copy(v, n);
    assert_int_equal(sl_cuda_emu_round_bf16(e, r, n), 0);
    for (size_t i = 0; i < n; i++) {
        const float want = sl_bf16_to_f32(sl_f32_to_bf16(v[i]));
        if (isnan(want))
            assert_true(isnan(r[i]));
        else if (memcmp(&r[i], &want, 4) != 0)
            fail_msg("bf16(%a) = %a, half.h says %a", v[i], r[i], want);
    }
    sl_free(v), sl_free(r);
    sl_cuda_emu_close(e);
}

static void test_round_f16_matches_half_h(void **state)
{
    sl_cuda_emu *e = emu_open();
    size_t n;
    float *v = probe_values(&n), *r = copy(v, n);
    assert_int_equal(sl_cuda_emu_round_f16(e, r, n), 0);
    for (size_t i = 0; i < n; i++) {
        const float want = sl_f16_to_f32(sl_f32_to_f16(v[i]));
        if (isnan(want))
            assert_true(isnan(r[i]));
        else if (memcmp(&r[i], &want, 4) != 0)
            fail_msg("f16(%a) = %a, half.h says %a", v[i], r[i], want);
    }
    sl_free(v), sl_free(r);
    sl_cuda_emu_close(e);
}

static void test_unscale_divides_and_flags_nonfinite(void **state)
{
    sl_cuda_emu *e = emu_open();
    float g[300];
    for (int i = 0; i < 300; i++)
        g[i] = (float)i * 1024.0f;
    int found = -1;
    assert_int_equal(sl_cuda_emu_unscale(e, g, 300, 1.0f / 1024.0f, &found), 0);
    assert_int_equal(found, 0);
    for (int i = 0; i < 300; i++)
        assert_float_equal(g[i], (float)i, 0);
    g[257] = INFINITY; /* in the second block */
    assert_int_equal(sl_cuda_emu_unscale(e, g, 300, 0.5f, &found), 0);
    assert_int_equal(found, 1);
    g[257] = NAN;
    assert_int_equal(sl_cuda_emu_unscale(e, g, 300, 0.5f, &found), 0);
    assert_int_equal(found, 1);
    sl_cuda_emu_close(e);
}

/* A scaled fp16 gradient survives where the unscaled one flushes to zero: the reason for loss
 * scaling, shown with the rounding kernel. */
static void test_loss_scale_keeps_small_fp16_gradients(void **state)
{
    sl_cuda_emu *e = emu_open();
    sl_loss_scale ls;
    sl_loss_scale_init(&ls);
    float plain[1] = {1e-8f}, scaled[1] = {1e-8f * ls.scale};
    int found;
    assert_int_equal(sl_cuda_emu_round_f16(e, plain, 1), 0);
    assert_int_equal(sl_cuda_emu_round_f16(e, scaled, 1), 0);
    assert_int_equal(sl_cuda_emu_unscale(e, scaled, 1, 1.0f / ls.scale, &found), 0);
    assert_float_equal(plain[0], 0.0f, 0);
    assert_float_equal(scaled[0], 1e-8f, 1e-8f * 1e-3f);
    sl_cuda_emu_close(e);
}

static void test_loss_scale_backs_off_and_skips_on_overflow(void **state)
{
    sl_loss_scale s;
    sl_loss_scale_init(&s);
    assert_float_equal(s.scale, 65536.0f, 0);
    assert_int_equal(sl_loss_scale_update(&s, 0), 1);
    assert_int_equal(sl_loss_scale_update(&s, 1), 0);
    assert_float_equal(s.scale, 32768.0f, 0);
    assert_int_equal(s.clean, 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(sl_loss_scale_update(&s, 1), 0);
    assert_true(s.scale == FLT_MIN); /* never reaches zero */
}

static void test_loss_scale_grows_after_interval_clean_steps(void **state)
{
    sl_loss_scale s;
    sl_loss_scale_init(&s);
    s.interval = 3;
    assert_int_equal(sl_loss_scale_update(&s, 0), 1);
    assert_int_equal(sl_loss_scale_update(&s, 0), 1);
    assert_float_equal(s.scale, 65536.0f, 0);
    assert_int_equal(sl_loss_scale_update(&s, 0), 1);
    assert_float_equal(s.scale, 131072.0f, 0);
    s.scale = FLT_MAX; /* growth never reaches infinity */
    for (int i = 0; i < 3; i++)
        sl_loss_scale_update(&s, 0);
    assert_true(s.scale == FLT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_fwd_matches_reference),
        cmocka_unit_test(test_linear_bwd_matches_reference_and_accumulates),
        cmocka_unit_test(test_conv3x3_stride1_fwd),
        cmocka_unit_test(test_conv3x3_stride2_fwd),
        cmocka_unit_test(test_conv1x1_stride1_fwd),
        cmocka_unit_test(test_conv1x1_stride2_fwd),
        cmocka_unit_test(test_conv3x3_stride1_bwd),
        cmocka_unit_test(test_conv3x3_stride2_bwd),
        cmocka_unit_test(test_conv1x1_stride1_bwd),
        cmocka_unit_test(test_conv1x1_stride2_bwd),
        cmocka_unit_test(test_im2col_and_col2im_make_the_convolution),
        cmocka_unit_test(test_relu_fwd_and_bwd),
        cmocka_unit_test(test_add_fwd_and_add_into),
        cmocka_unit_test(test_maxpool2_fwd_and_bwd),
        cmocka_unit_test(test_gap_fwd_and_bwd),
        cmocka_unit_test(test_bn_fwd_train_and_running_averages),
        cmocka_unit_test(test_bn_fwd_eval),
        cmocka_unit_test(test_bn_bwd),
        cmocka_unit_test(test_softmax_xent_fwd),
        cmocka_unit_test(test_softmax_xent_bwd),
        cmocka_unit_test(test_every_body_has_a_kernel),
        cmocka_unit_test(test_every_layer_function_has_a_cuda_twin),
        cmocka_unit_test(test_emulator_barrier_and_shared_memory_per_block),
        cmocka_unit_test(test_emulator_rejects_empty_and_oversized_launches),
        cmocka_unit_test(test_round_bf16_matches_half_h),
        cmocka_unit_test(test_round_f16_matches_half_h),
        cmocka_unit_test(test_unscale_divides_and_flags_nonfinite),
        cmocka_unit_test(test_loss_scale_keeps_small_fp16_gradients),
        cmocka_unit_test(test_loss_scale_backs_off_and_skips_on_overflow),
        cmocka_unit_test(test_loss_scale_grows_after_interval_clean_steps),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
