/* The trainer's layers (sluice/nn.h): every backward against central finite differences of its
 * forward (input and parameter gradients), the fast GEMM path against the reference loops for
 * every layer with a matrix product, and the exact values users rely on (softmax cross-entropy
 * on huge logits, batch-norm running averages, parameter gradients accumulating).
 *
 * Finite differences: the objective is L = sum(r * y) for a fixed random r, summed in double,
 * so dL/dy = r is the dy handed to the backward. Each value is moved by +-eps and the
 * difference divided by the float step actually taken. Linear layers (linear, conv, pooling,
 * add) are exactly linear in each input, so a large eps leaves only rounding; ReLU and max pool
 * get inputs placed further than eps from their kinks; batch norm and softmax are smooth and
 * checked with a small eps and a looser bound. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn_bodies.h"
#include "sluice/nn.h"
#include "sluice/rng.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static float *fvec(size_t n)
{
    float *v = sl_calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

static void fill_uniform(float *v, size_t n, uint64_t seed, float lo, float hi)
{
    sl_rng r;
    sl_rng_init(&r, seed, 77, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)sl_rng_uniform(&r);
}

/* Values at least `gap` away from zero, either sign. */
static void fill_away_from_zero(float *v, size_t n, uint64_t seed, float gap)
{
    fill_uniform(v, n, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        v[i] = v[i] < 0 ? v[i] - gap : v[i] + gap;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

typedef double (*objective_fn)(void *ctx);

/* Compares analytic[i] with the central difference of f in v[i], for every i (or `limit` of
 * them spread over the array). */
static void check_grad(const char *what, objective_fn f, void *ctx, float *v, const float *analytic,
                       size_t count, size_t limit, float eps, double rtol, double atol)
{
    const size_t stride = count > limit ? count / limit : 1;
    size_t checked = 0;
    for (size_t i = 0; i < count; i += stride, checked++) {
        const float save = v[i];
        v[i] = save + eps;
        const double xp = v[i], lp = f(ctx);
        v[i] = save - eps;
        const double xm = v[i], lm = f(ctx);
        v[i] = save;
        const double num = (lp - lm) / (xp - xm), a = analytic[i];
        if (fabs(a - num) > atol + rtol * fmax(fabs(a), fabs(num)))
            fail_msg("%s[%zu]: analytic %.9g, finite difference %.9g", what, i, a, num);
    }
    assert_true(checked > 0);
}

/* Largest |a - b| must be within tol of the reference's scale. */
static void assert_close(const char *what, const float *ref, const float *got, size_t n, double rel)
{
    double scale = 1e-3, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(ref[i]));
        if (fabs((double)ref[i] - got[i]) > worst) {
            worst = fabs((double)ref[i] - got[i]);
            at = i;
        }
    }
    if (worst > rel * scale)
        fail_msg("%s: |ref - fast| = %.3g at %zu (ref %.9g, fast %.9g), bound %.3g", what, worst,
                 at, ref[at], got[at], rel * scale);
}

/* ---- linear --------------------------------------------------------------------------------- */

typedef struct lin_ctx {
    int n, in, out;
    float *x, *w, *b, *y, *r;
} lin_ctx;

static double lin_obj(void *p)
{
    lin_ctx *c = p;
    sl_nn_linear_fwd(SL_NN_REFERENCE, c->x, c->w, c->b, c->y, c->n, c->in, c->out);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void test_linear_gradients(void **state)
{
    lin_ctx c = {.n = 3, .in = 7, .out = 5};
    c.x = fvec(21);
    c.w = fvec(35);
    c.b = fvec(5);
    c.y = fvec(15);
    c.r = fvec(15);
    float *dx = fvec(21), *dw = fvec(35), *db = fvec(5);
    fill_uniform(c.x, 21, 1, -1, 1);
    fill_uniform(c.w, 35, 2, -1, 1);
    fill_uniform(c.b, 5, 3, -1, 1);
    fill_uniform(c.r, 15, 4, -1, 1);
    sl_nn_linear_bwd(SL_NN_REFERENCE, c.x, c.w, c.r, dx, dw, db, c.n, c.in, c.out);
    check_grad("linear dx", lin_obj, &c, c.x, dx, 21, 1000, 0.25f, 1e-4, 1e-5);
    check_grad("linear dw", lin_obj, &c, c.w, dw, 35, 1000, 0.25f, 1e-4, 1e-5);
    check_grad("linear db", lin_obj, &c, c.b, db, 5, 1000, 0.25f, 1e-4, 1e-5);
    sl_free(c.x), sl_free(c.w), sl_free(c.b), sl_free(c.y), sl_free(c.r);
    sl_free(dx), sl_free(dw), sl_free(db);
}

static void test_linear_fast_matches_reference(void **state)
{
    const int n = 9, in = 37, out = 13;
    float *x = fvec(n * in), *w = fvec(out * in), *b = fvec(out), *dy = fvec(n * out);
    float *y[2], *dx[2], *dw[2], *db[2];
    fill_uniform(x, n * in, 5, -1, 1);
    fill_uniform(w, out * in, 6, -1, 1);
    fill_uniform(b, out, 7, -1, 1);
    fill_uniform(dy, n * out, 8, -1, 1);
    for (int k = 0; k < 2; k++) {
        y[k] = fvec(n * out), dx[k] = fvec(n * in), dw[k] = fvec(out * in), db[k] = fvec(out);
        /* non-zero starting gradients: both paths must add to them */
        fill_uniform(dw[k], out * in, 9, -1, 1);
        fill_uniform(db[k], out, 10, -1, 1);
        const sl_nn_impl impl = k ? SL_NN_FAST : SL_NN_REFERENCE;
        sl_nn_linear_fwd(impl, x, w, b, y[k], n, in, out);
        sl_nn_linear_bwd(impl, x, w, dy, dx[k], dw[k], db[k], n, in, out);
    }
    assert_close("linear y", y[0], y[1], n * out, 1e-5);
    assert_close("linear dx", dx[0], dx[1], n * in, 1e-5);
    assert_close("linear dw", dw[0], dw[1], out * in, 1e-5);
    assert_close("linear db", db[0], db[1], out, 1e-5);
    sl_free(x), sl_free(w), sl_free(b), sl_free(dy);
    for (int k = 0; k < 2; k++)
        sl_free(y[k]), sl_free(dx[k]), sl_free(dw[k]), sl_free(db[k]);
}

static void test_parameter_gradients_accumulate(void **state)
{
    const int n = 2, in = 3, out = 2;
    const float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, dy[4] = {1, -1, 0.5f, 2};
    float dx1[6], dx2[6], dw[6] = {0}, db[2] = {0};
    sl_nn_linear_bwd(SL_NN_REFERENCE, x, w, dy, dx1, dw, db, n, in, out);
    sl_nn_linear_bwd(SL_NN_REFERENCE, x, w, dy, dx2, dw, db, n, in, out);
    /* dw = 2 * dy^T x, db = 2 * column sums of dy; dx the same both times */
    const float want_dw[6] = {2 * (1 + 0.5f * 4), 2 * (2 + 0.5f * 5), 2 * (3 + 0.5f * 6),
                              2 * (-1 + 2 * 4),   2 * (-2 + 2 * 5),   2 * (-3 + 2 * 6)};
    for (int i = 0; i < 6; i++) {
        assert_float_equal(dw[i], want_dw[i], 1e-6);
        assert_float_equal(dx1[i], dx2[i], 0);
    }
    assert_float_equal(db[0], 3.0f, 1e-6);
    assert_float_equal(db[1], 2.0f, 1e-6);
}

/* ---- convolution ---------------------------------------------------------------------------- */

typedef struct conv_ctx {
    sl_nn_conv_shape s;
    float *x, *w, *b, *y, *r;
    size_t nx, nw, ny;
} conv_ctx;

static double conv_obj(void *p)
{
    conv_ctx *c = p;
    sl_nn_conv_fwd(SL_NN_REFERENCE, &c->s, c->x, c->w, c->b, c->y, NULL);
    return dot(c->y, c->r, c->ny);
}

static void conv_setup(conv_ctx *c, int ksize, int stride)
{
    c->s = (sl_nn_conv_shape){
        .n = 2, .c = 3, .h = 7, .w = 6, .k = 4, .ksize = ksize, .stride = stride};
    c->nx = 2 * 3 * 7 * 6;
    c->nw = (size_t)4 * 3 * ksize * ksize;
    c->ny = (size_t)2 * 4 * sl_nn_conv_out_h(&c->s) * sl_nn_conv_out_w(&c->s);
    c->x = fvec(c->nx), c->w = fvec(c->nw), c->b = fvec(4), c->y = fvec(c->ny), c->r = fvec(c->ny);
    fill_uniform(c->x, c->nx, 11, -1, 1);
    fill_uniform(c->w, c->nw, 12, -1, 1);
    fill_uniform(c->b, 4, 13, -1, 1);
    fill_uniform(c->r, c->ny, 14, -1, 1);
}

static void conv_teardown(conv_ctx *c)
{
    sl_free(c->x), sl_free(c->w), sl_free(c->b), sl_free(c->y), sl_free(c->r);
}

static void conv_gradients(int ksize, int stride)
{
    conv_ctx c;
    conv_setup(&c, ksize, stride);
    float *dx = fvec(c.nx), *dw = fvec(c.nw), *db = fvec(4);
    sl_nn_conv_bwd(SL_NN_REFERENCE, &c.s, c.x, c.w, c.r, dx, dw, db, NULL);
    char what[64];
    snprintf(what, sizeof what, "conv%dx%d/s%d dx", ksize, ksize, stride);
    check_grad(what, conv_obj, &c, c.x, dx, c.nx, 1000, 0.25f, 1e-4, 1e-5);
    snprintf(what, sizeof what, "conv%dx%d/s%d dw", ksize, ksize, stride);
    check_grad(what, conv_obj, &c, c.w, dw, c.nw, 1000, 0.25f, 1e-4, 1e-5);
    snprintf(what, sizeof what, "conv%dx%d/s%d db", ksize, ksize, stride);
    check_grad(what, conv_obj, &c, c.b, db, 4, 1000, 0.25f, 1e-4, 1e-5);
    sl_free(dx), sl_free(dw), sl_free(db);
    conv_teardown(&c);
}

static void test_conv3x3_stride1_gradients(void **state)
{
    conv_gradients(3, 1);
}

static void test_conv3x3_stride2_gradients(void **state)
{
    conv_gradients(3, 2);
}

static void test_conv1x1_stride1_gradients(void **state)
{
    conv_gradients(1, 1);
}

static void test_conv1x1_stride2_gradients(void **state)
{
    conv_gradients(1, 2);
}

static void test_conv_output_shapes(void **state)
{
    /* pad 1 keeps 7x6 at stride 1 and gives ceil(7/2) x ceil(6/2) at stride 2 */
    const sl_nn_conv_shape a = {.n = 1, .c = 1, .h = 7, .w = 6, .k = 1, .ksize = 3, .stride = 1};
    const sl_nn_conv_shape b = {.n = 1, .c = 1, .h = 7, .w = 6, .k = 1, .ksize = 3, .stride = 2};
    const sl_nn_conv_shape c = {.n = 1, .c = 1, .h = 7, .w = 6, .k = 1, .ksize = 1, .stride = 2};
    assert_int_equal(sl_nn_conv_out_h(&a), 7);
    assert_int_equal(sl_nn_conv_out_w(&a), 6);
    assert_int_equal(sl_nn_conv_out_h(&b), 4);
    assert_int_equal(sl_nn_conv_out_w(&b), 3);
    assert_int_equal(sl_nn_conv_out_h(&c), 4);
    assert_int_equal(sl_nn_conv_out_w(&c), 3);
}

static void test_conv3x3_known_values(void **state)
{
    /* one 3x3 channel, all-ones kernel: each output is the sum of its zero-padded window */
    const sl_nn_conv_shape s = {.n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .ksize = 3, .stride = 1};
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const float b[1] = {0.5f};
    const float want[9] = {12.5f, 21.5f, 16.5f, 27.5f, 45.5f, 33.5f, 24.5f, 39.5f, 28.5f};
    float y[9], work[81];
    for (int k = 0; k < 2; k++) {
        sl_nn_conv_fwd(k ? SL_NN_FAST : SL_NN_REFERENCE, &s, x, w, b, y, work);
        for (int i = 0; i < 9; i++)
            assert_float_equal(y[i], want[i], 1e-6);
    }
}

static void conv_fast_matches(int ksize, int stride)
{
    conv_ctx c;
    conv_setup(&c, ksize, stride);
    /* a wider layer than the gradient check, so the GEMMs have real shapes */
    c.s.c = 5, c.s.k = 6, c.s.h = 9, c.s.w = 10;
    conv_teardown(&c);
    const size_t nx = (size_t)c.s.n * c.s.c * c.s.h * c.s.w;
    const size_t nw = (size_t)c.s.k * c.s.c * ksize * ksize;
    const size_t ny = (size_t)c.s.n * c.s.k * sl_nn_conv_out_h(&c.s) * sl_nn_conv_out_w(&c.s);
    float *x = fvec(nx), *w = fvec(nw), *b = fvec(c.s.k), *dy = fvec(ny);
    float *work = fvec(sl_nn_conv_work_floats(&c.s));
    fill_uniform(x, nx, 21, -1, 1);
    fill_uniform(w, nw, 22, -1, 1);
    fill_uniform(b, c.s.k, 23, -1, 1);
    fill_uniform(dy, ny, 24, -1, 1);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int k = 0; k < 2; k++) {
        y[k] = fvec(ny), dx[k] = fvec(nx), dw[k] = fvec(nw), db[k] = fvec(c.s.k);
        fill_uniform(dw[k], nw, 25, -1, 1);
        const sl_nn_impl impl = k ? SL_NN_FAST : SL_NN_REFERENCE;
        sl_nn_conv_fwd(impl, &c.s, x, w, b, y[k], work);
        sl_nn_conv_bwd(impl, &c.s, x, w, dy, dx[k], dw[k], db[k], work);
    }
    assert_close("conv y", y[0], y[1], ny, 1e-5);
    assert_close("conv dx", dx[0], dx[1], nx, 1e-5);
    assert_close("conv dw", dw[0], dw[1], nw, 1e-5);
    assert_close("conv db", db[0], db[1], c.s.k, 1e-5);
    sl_free(x), sl_free(w), sl_free(b), sl_free(dy), sl_free(work);
    for (int k = 0; k < 2; k++)
        sl_free(y[k]), sl_free(dx[k]), sl_free(dw[k]), sl_free(db[k]);
}

static void test_conv3x3_stride1_fast_matches_reference(void **state)
{
    conv_fast_matches(3, 1);
}

static void test_conv3x3_stride2_fast_matches_reference(void **state)
{
    conv_fast_matches(3, 2);
}

static void test_conv1x1_stride1_fast_matches_reference(void **state)
{
    conv_fast_matches(1, 1);
}

static void test_conv1x1_stride2_fast_matches_reference(void **state)
{
    conv_fast_matches(1, 2);
}

/* im2col_at and col2im_at are the device's forms of the fast path's copies (the CPU fast path
 * copies whole rows instead): a GEMM over im2col_at values must give conv_fwd_at, and col2im_at
 * over W^T dy must give conv_bwd_x_at, for every kernel size and stride. */
static void test_im2col_bodies_match_direct_bodies(void **state)
{
    for (int v = 0; v < 4; v++) {
        const int ks = v < 2 ? 3 : 1, st = v % 2 ? 2 : 1;
        conv_dims d = {
            .n = 1, .c = 3, .h = 7, .w = 6, .k = 4, .ks = ks, .stride = st, .pad = ks / 2};
        d.oh = (d.h + 2 * d.pad - ks) / st + 1;
        d.ow = (d.w + 2 * d.pad - ks) / st + 1;
        const int rows = d.c * ks * ks, plane = d.oh * d.ow;
        float *x = fvec(3 * 7 * 6), *w = fvec(4 * rows), *dy = fvec(4 * plane);
        float *dcol = fvec((size_t)rows * plane);
        fill_uniform(x, 3 * 7 * 6, 71, -1, 1);
        fill_uniform(w, 4 * rows, 72, -1, 1);
        fill_uniform(dy, 4 * plane, 73, -1, 1);
        for (int k = 0; k < 4; k++)
            for (int p = 0; p < plane; p++) {
                double acc = 0;
                for (int r = 0; r < rows; r++)
                    acc += w[k * rows + r] * im2col_at(&d, x, 0, r / (ks * ks), r / ks % ks, r % ks,
                                                       p / d.ow, p % d.ow);
                assert_float_equal(acc, conv_fwd_at(&d, x, w, NULL, 0, k, p / d.ow, p % d.ow),
                                   1e-5);
            }
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < plane; p++) {
                float acc = 0;
                for (int k = 0; k < 4; k++)
                    acc += w[k * rows + r] * dy[k * plane + p];
                dcol[r * plane + p] = acc;
            }
        for (int c = 0; c < 3; c++)
            for (int iy = 0; iy < 7; iy++)
                for (int ix = 0; ix < 6; ix++)
                    assert_float_equal(col2im_at(&d, dcol, c, iy, ix),
                                       conv_bwd_x_at(&d, w, dy, 0, c, iy, ix), 1e-5);
        sl_free(x), sl_free(w), sl_free(dy), sl_free(dcol);
    }
}

static void test_gemm_fast_matches_reference(void **state)
{
    /* every transpose combination, with alpha and beta, on odd shapes */
    const int m = 17, n = 23, k = 31;
    float *a = fvec(m * k), *b = fvec(k * n), *c0 = fvec(m * n), *c1 = fvec(m * n);
    fill_uniform(a, m * k, 31, -1, 1);
    fill_uniform(b, k * n, 32, -1, 1);
    for (int t = 0; t < 4; t++) {
        const int ta = t & 1, tb = t >> 1;
        fill_uniform(c0, m * n, 33, -1, 1);
        memcpy(c1, c0, sizeof(float) * m * n);
        sl_nn_gemm(SL_NN_REFERENCE, ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 2.0f, c0,
                   n);
        sl_nn_gemm(SL_NN_FAST, ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 2.0f, c1, n);
        assert_close("gemm", c0, c1, m * n, 1e-5);
    }
    sl_free(a), sl_free(b), sl_free(c0), sl_free(c1);
}

/* ---- relu, add, pooling --------------------------------------------------------------------- */

typedef struct ew_ctx {
    int n, c, h, w;
    float *x, *y, *r;
    size_t nx, ny;
    int kind; /* 0 relu, 1 maxpool, 2 gap */
} ew_ctx;

static double ew_obj(void *p)
{
    ew_ctx *c = p;
    if (c->kind == 0)
        sl_nn_relu_fwd(c->x, c->y, c->nx);
    else if (c->kind == 1)
        sl_nn_maxpool2_fwd(c->x, c->y, c->n, c->c, c->h, c->w);
    else
        sl_nn_gap_fwd(c->x, c->y, c->n, c->c, c->h, c->w);
    return dot(c->y, c->r, c->ny);
}

static void test_relu_gradients(void **state)
{
    ew_ctx c = {.n = 1, .c = 1, .h = 1, .w = 40, .nx = 40, .ny = 40, .kind = 0};
    c.x = fvec(40), c.y = fvec(40), c.r = fvec(40);
    float *dx = fvec(40);
    fill_away_from_zero(c.x, 40, 41, 0.05f);
    fill_uniform(c.r, 40, 42, -1, 1);
    sl_nn_relu_fwd(c.x, c.y, 40);
    sl_nn_relu_bwd(c.y, c.r, dx, 40);
    check_grad("relu dx", ew_obj, &c, c.x, dx, 40, 1000, 0.01f, 1e-4, 1e-6);
    sl_free(c.x), sl_free(c.y), sl_free(c.r), sl_free(dx);
}

static void test_maxpool_gradients(void **state)
{
    /* odd height and width: the last row and column belong to no window */
    ew_ctx c = {.n = 2, .c = 2, .h = 5, .w = 7, .kind = 1};
    c.nx = 2 * 2 * 5 * 7;
    c.ny = 2 * 2 * 2 * 3;
    c.x = fvec(c.nx), c.y = fvec(c.ny), c.r = fvec(c.ny);
    float *dx = fvec(c.nx);
    /* distinct values 0.1 apart in a scrambled order, so eps = 0.01 never changes a winner */
    for (size_t i = 0; i < c.nx; i++)
        c.x[i] = 0.1f * (float)((i * 37) % c.nx);
    fill_uniform(c.r, c.ny, 43, -1, 1);
    sl_nn_maxpool2_bwd(c.x, c.r, dx, c.n, c.c, c.h, c.w);
    check_grad("maxpool dx", ew_obj, &c, c.x, dx, c.nx, 1000, 0.01f, 1e-3, 1e-6);
    for (int p = 0; p < 4; p++) {
        for (int x = 0; x < 7; x++)
            assert_float_equal(dx[p * 35 + 4 * 7 + x], 0.0f, 0);
        for (int y = 0; y < 5; y++)
            assert_float_equal(dx[p * 35 + y * 7 + 6], 0.0f, 0);
    }
    sl_free(c.x), sl_free(c.y), sl_free(c.r), sl_free(dx);
}

static void test_maxpool_tie_goes_to_first(void **state)
{
    const float x[4] = {2, 2, 2, 2}, dy[1] = {1};
    float y[1], dx[4];
    sl_nn_maxpool2_fwd(x, y, 1, 1, 2, 2);
    sl_nn_maxpool2_bwd(x, dy, dx, 1, 1, 2, 2);
    assert_float_equal(y[0], 2, 0);
    assert_float_equal(dx[0], 1, 0);
    assert_float_equal(dx[1] + dx[2] + dx[3], 0, 0);
}

static void test_gap_gradients(void **state)
{
    ew_ctx c = {.n = 2, .c = 3, .h = 4, .w = 5, .kind = 2};
    c.nx = 120;
    c.ny = 6;
    c.x = fvec(c.nx), c.y = fvec(c.ny), c.r = fvec(c.ny);
    float *dx = fvec(c.nx);
    fill_uniform(c.x, c.nx, 44, -1, 1);
    fill_uniform(c.r, c.ny, 45, -1, 1);
    sl_nn_gap_bwd(c.r, dx, c.n, c.c, c.h, c.w);
    check_grad("gap dx", ew_obj, &c, c.x, dx, c.nx, 1000, 0.25f, 1e-4, 1e-6);
    sl_free(c.x), sl_free(c.y), sl_free(c.r), sl_free(dx);
}

static void test_add_forward_and_gradient_join(void **state)
{
    const float a[3] = {1, 2, 3}, b[3] = {0.5f, -2, 10};
    float y[3], acc[3] = {1, 1, 1};
    sl_nn_add_fwd(a, b, y, 3);
    sl_nn_add_into(acc, b, 3);
    const float want_y[3] = {1.5f, 0, 13}, want_acc[3] = {1.5f, -1, 11};
    for (int i = 0; i < 3; i++) {
        assert_float_equal(y[i], want_y[i], 0);
        assert_float_equal(acc[i], want_acc[i], 0);
    }
}

/* ---- batch norm ----------------------------------------------------------------------------- */

typedef struct bn_ctx {
    int n, c, hw;
    float *x, *y, *r, *gamma, *beta, *rm, *rv, *sm, *si;
    size_t nx;
} bn_ctx;

static double bn_obj(void *p)
{
    bn_ctx *c = p;
    sl_nn_bn_fwd_train(c->x, c->y, c->n, c->c, c->hw, c->gamma, c->beta, c->rm, c->rv, 0.1f, 1e-5f,
                       c->sm, c->si);
    return dot(c->y, c->r, c->nx);
}

static void bn_setup(bn_ctx *c, int n, int ch, int hw)
{
    *c = (bn_ctx){.n = n, .c = ch, .hw = hw, .nx = (size_t)n * ch * hw};
    c->x = fvec(c->nx), c->y = fvec(c->nx), c->r = fvec(c->nx);
    c->gamma = fvec(ch), c->beta = fvec(ch), c->rm = fvec(ch), c->rv = fvec(ch);
    c->sm = fvec(ch), c->si = fvec(ch);
    fill_uniform(c->x, c->nx, 51, -2, 2);
    fill_uniform(c->r, c->nx, 52, -1, 1);
    fill_uniform(c->gamma, ch, 53, 0.5f, 1.5f);
    fill_uniform(c->beta, ch, 54, -1, 1);
}

static void bn_teardown(bn_ctx *c)
{
    sl_free(c->x), sl_free(c->y), sl_free(c->r), sl_free(c->gamma), sl_free(c->beta);
    sl_free(c->rm), sl_free(c->rv), sl_free(c->sm), sl_free(c->si);
}

static void bn_gradients(int n, int ch, int hw)
{
    bn_ctx c;
    bn_setup(&c, n, ch, hw);
    float *dx = fvec(c.nx), *dg = fvec(ch), *dbeta = fvec(ch);
    bn_obj(&c);
    sl_nn_bn_bwd(c.x, c.r, dx, n, ch, hw, c.gamma, c.sm, c.si, dg, dbeta);
    check_grad("bn dx", bn_obj, &c, c.x, dx, c.nx, 1000, 1e-2f, 1e-2, 1e-4);
    check_grad("bn dgamma", bn_obj, &c, c.gamma, dg, ch, 1000, 1e-2f, 1e-3, 1e-4);
    check_grad("bn dbeta", bn_obj, &c, c.beta, dbeta, ch, 1000, 1e-2f, 1e-3, 1e-4);
    sl_free(dx), sl_free(dg), sl_free(dbeta);
    bn_teardown(&c);
}

static void test_batchnorm_image_gradients(void **state)
{
    bn_gradients(3, 2, 10);
}

static void test_batchnorm_vector_gradients(void **state)
{
    bn_gradients(6, 4, 1);
}

static void test_batchnorm_running_averages_and_eval(void **state)
{
    /* one channel, values 1..4: mean 2.5, biased variance 1.25, unbiased 5/3 */
    const float x[4] = {1, 2, 3, 4}, gamma[1] = {2}, beta[1] = {1};
    float y[4], rm[1] = {0}, rv[1] = {1}, sm[1], si[1];
    sl_nn_bn_fwd_train(x, y, 4, 1, 1, gamma, beta, rm, rv, 0.1f, 0.0f, sm, si);
    assert_float_equal(sm[0], 2.5f, 1e-7);
    assert_float_equal(si[0], 1.0 / sqrt(1.25), 1e-6);
    assert_float_equal(rm[0], 0.25f, 1e-7);
    assert_float_equal(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    assert_float_equal(y[0], 2 * (1 - 2.5) / sqrt(1.25) + 1, 1e-5);
    /* evaluation: (x - running mean) / sqrt(running var + eps) * gamma + beta */
    float ye[4];
    sl_nn_bn_fwd_eval(x, ye, 4, 1, 1, gamma, beta, rm, rv, 1e-5f);
    for (int i = 0; i < 4; i++)
        assert_float_equal(ye[i], 2 * (x[i] - rm[0]) / sqrt(rv[0] + 1e-5) + 1, 1e-5);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

typedef struct sm_ctx {
    int n, classes;
    float *logits, *probs;
    int32_t *labels;
} sm_ctx;

static double sm_obj(void *p)
{
    sm_ctx *c = p;
    return sl_nn_softmax_xent_fwd(c->logits, c->labels, c->probs, c->n, c->classes, NULL);
}

static void test_softmax_xent_gradients(void **state)
{
    int32_t labels[4] = {0, 4, 2, 2};
    sm_ctx c = {.n = 4, .classes = 5, .labels = labels};
    c.logits = fvec(20), c.probs = fvec(20);
    float *dl = fvec(20);
    fill_uniform(c.logits, 20, 61, -3, 3);
    sm_obj(&c);
    sl_nn_softmax_xent_bwd(c.probs, labels, dl, 4, 5, 1.0f);
    check_grad("softmax dlogits", sm_obj, &c, c.logits, dl, 20, 1000, 1e-3f, 1e-3, 1e-6);
    sl_free(c.logits), sl_free(c.probs), sl_free(dl);
}

static void test_softmax_xent_huge_logits_are_stable(void **state)
{
    /* exp(1001) overflows a double; the log-sum-exp around the maximum does not care */
    const float logits[6] = {1000, 1001, 999, -1000, -1001, -999};
    const int32_t labels[2] = {0, 2};
    float probs[6];
    int correct = -1;
    const double loss = sl_nn_softmax_xent_fwd(logits, labels, probs, 2, 3, &correct);
    /* row 0: lse = 1001 + log(1 + e^-1 + e^-2), minus logit 1000; row 1: the label holds the
     * maximum, -999, so only the log term is left */
    const double tail = log(1.0 + exp(-1.0) + exp(-2.0));
    assert_float_equal(loss, ((1.0 + tail) + tail) / 2, 1e-5);
    assert_int_equal(correct, 1);
    assert_float_equal(probs[1], 1.0 / (1.0 + exp(-1.0) + exp(-2.0)), 1e-6);
}

static void test_softmax_xent_backward_scales(void **state)
{
    const float probs[4] = {0.25f, 0.75f, 0.5f, 0.5f};
    const int32_t labels[2] = {1, 0};
    float d[4];
    sl_nn_softmax_xent_bwd(probs, labels, d, 2, 2, 0.5f);
    /* 0.5 / 2 * (p - onehot) */
    assert_float_equal(d[0], 0.0625f, 1e-7);
    assert_float_equal(d[1], -0.0625f, 1e-7);
    assert_float_equal(d[2], -0.125f, 1e-7);
    assert_float_equal(d[3], 0.125f, 1e-7);
}

static void test_find_nonfinite(void **state)
{
    float v[5] = {1, 2, 3, 4, 5};
    assert_int_equal(sl_nn_find_nonfinite(v, 5), -1);
    v[3] = INFINITY;
    v[4] = NAN;
    assert_int_equal(sl_nn_find_nonfinite(v, 5), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_gradients),
        cmocka_unit_test(test_linear_fast_matches_reference),
        cmocka_unit_test(test_parameter_gradients_accumulate),
        cmocka_unit_test(test_conv3x3_stride1_gradients),
        cmocka_unit_test(test_conv3x3_stride2_gradients),
        cmocka_unit_test(test_conv1x1_stride1_gradients),
        cmocka_unit_test(test_conv1x1_stride2_gradients),
        cmocka_unit_test(test_conv_output_shapes),
        cmocka_unit_test(test_conv3x3_known_values),
        cmocka_unit_test(test_conv3x3_stride1_fast_matches_reference),
        cmocka_unit_test(test_conv3x3_stride2_fast_matches_reference),
        cmocka_unit_test(test_conv1x1_stride1_fast_matches_reference),
        cmocka_unit_test(test_conv1x1_stride2_fast_matches_reference),
        cmocka_unit_test(test_im2col_bodies_match_direct_bodies),
        cmocka_unit_test(test_gemm_fast_matches_reference),
        cmocka_unit_test(test_relu_gradients),
        cmocka_unit_test(test_maxpool_gradients),
        cmocka_unit_test(test_maxpool_tie_goes_to_first),
        cmocka_unit_test(test_gap_gradients),
        cmocka_unit_test(test_add_forward_and_gradient_join),
        cmocka_unit_test(test_batchnorm_image_gradients),
        cmocka_unit_test(test_batchnorm_vector_gradients),
        cmocka_unit_test(test_batchnorm_running_averages_and_eval),
        cmocka_unit_test(test_softmax_xent_gradients),
        cmocka_unit_test(test_softmax_xent_huge_logits_are_stable),
        cmocka_unit_test(test_softmax_xent_backward_scales),
        cmocka_unit_test(test_find_nonfinite),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
