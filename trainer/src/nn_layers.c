/*
 * The CPU layers: the reference loops over the per-value bodies of nn_bodies.h, and the fast
 * path that turns linear and convolution layers into GEMMs (im2col per image; a 1x1 stride-1
 * convolution needs no im2col, its input already is the column matrix).
 *
 * Invariants: outputs and input gradients are overwritten, parameter gradients accumulated
 * (sluice/nn.h). The fast path and the reference compute the same sums in different orders, so
 * they agree to float rounding, not bit for bit.
 *
 * Threading: stateless.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nn_bodies.h"
#include "sluice/nn.h"

/* ---- linear --------------------------------------------------------------------------------- */

void sl_nn_linear_fwd(sl_nn_impl impl, const float *x, const float *w, const float *b, float *y,
                      int n, int in, int out)
{
    assert(x && w && y && n > 0 && in > 0 && out > 0);
    if (impl == SL_NN_REFERENCE) {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                y[(int64_t)i * out + o] = linear_fwd_at(x, w, b, in, i, o);
        return;
    }
    if (b)
        for (int i = 0; i < n; i++)
            memcpy(y + (int64_t)i * out, b, sizeof(float) * (size_t)out);
    sl_nn_gemm(impl, 0, 1, n, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

void sl_nn_linear_bwd(sl_nn_impl impl, const float *x, const float *w, const float *dy, float *dx,
                      float *dw, float *db, int n, int in, int out)
{
    assert(x && w && dy && dw && n > 0 && in > 0 && out > 0);
    if (db)
        for (int o = 0; o < out; o++)
            db[o] += linear_bwd_b_at(dy, n, out, o);
    if (impl == SL_NN_REFERENCE) {
        for (int o = 0; o < out; o++)
            for (int j = 0; j < in; j++)
                dw[(int64_t)o * in + j] += linear_bwd_w_at(x, dy, n, out, in, o, j);
        if (dx)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < in; j++)
                    dx[(int64_t)i * in + j] = linear_bwd_x_at(w, dy, out, in, i, j);
        return;
    }
    sl_nn_gemm(impl, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (dx)
        sl_nn_gemm(impl, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

/* ---- convolution ---------------------------------------------------------------------------- */

static conv_dims dims_of(const sl_nn_conv_shape *s)
{
    assert(s->n > 0 && s->c > 0 && s->h > 0 && s->w > 0 && s->k > 0);
    assert((s->ksize == 1 || s->ksize == 3) && (s->stride == 1 || s->stride == 2));
    conv_dims d = {.n = s->n,
                   .c = s->c,
                   .h = s->h,
                   .w = s->w,
                   .k = s->k,
                   .ks = s->ksize,
                   .stride = s->stride,
                   .pad = s->ksize / 2};
    d.oh = (d.h + 2 * d.pad - d.ks) / d.stride + 1;
    d.ow = (d.w + 2 * d.pad - d.ks) / d.stride + 1;
    return d;
}

int sl_nn_conv_out_h(const sl_nn_conv_shape *s)
{
    return dims_of(s).oh;
}

int sl_nn_conv_out_w(const sl_nn_conv_shape *s)
{
    return dims_of(s).ow;
}

size_t sl_nn_conv_work_floats(const sl_nn_conv_shape *s)
{
    const conv_dims d = dims_of(s);
    return (size_t)d.c * d.ks * d.ks * d.oh * d.ow;
}

/* A 1x1 stride-1 convolution reads its input directly as the (c, h*w) column matrix. */
static int direct_cols(const conv_dims *d)
{
    return d->ks == 1 && d->stride == 1;
}

/* The range [lo, hi) of output columns whose input column ox * stride + off is inside [0, w). */
static void valid_cols(const conv_dims *d, int off, int *lo, int *hi)
{
    int a = 0, b = d->ow;
    while (a < b && a * d->stride + off < 0)
        a++;
    while (b > a && (b - 1) * d->stride + off >= d->w)
        b--;
    *lo = a;
    *hi = b;
}

/* Image i's column matrix (c*ks*ks, oh*ow), in `work` unless the input already is one. The
 * fast path copies whole output rows (the inner loop a strided or contiguous copy with the
 * padding cut off at both ends) rather than calling im2col_at per value, the device's form. */
static const float *im2col(const conv_dims *d, const float *x, int i, float *work)
{
    if (direct_cols(d))
        return x + (int64_t)i * d->c * d->h * d->w;
    float *col = work;
    for (int c = 0; c < d->c; c++) {
        const float *xc = x + ((int64_t)i * d->c + c) * d->h * d->w;
        for (int ky = 0; ky < d->ks; ky++)
            for (int kx = 0; kx < d->ks; kx++) {
                /* ox in [lo, hi) reads inside the row: 0 <= ox * stride + kx - pad < w */
                const int off = kx - d->pad;
                int lo, hi;
                valid_cols(d, off, &lo, &hi);
                for (int oy = 0; oy < d->oh; oy++, col += d->ow) {
                    const int iy = oy * d->stride + ky - d->pad;
                    if (iy < 0 || iy >= d->h) {
                        memset(col, 0, sizeof(float) * (size_t)d->ow);
                        continue;
                    }
                    const float *row = xc + (int64_t)iy * d->w + off;
                    for (int ox = 0; ox < lo; ox++)
                        col[ox] = 0.0f;
                    if (d->stride == 1)
                        memcpy(col + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            col[ox] = row[ox * d->stride];
                    for (int ox = hi; ox < d->ow; ox++)
                        col[ox] = 0.0f;
                }
            }
    }
    return work;
}

/* dx of image i from its column gradient: zero, then add every column value back where
 * im2col took it from (a scatter; col2im_at is the gather form for the device). */
static void col2im(const conv_dims *d, const float *dcol, float *dxi)
{
    memset(dxi, 0, sizeof(float) * (size_t)d->c * d->h * d->w);
    for (int c = 0; c < d->c; c++) {
        float *dxc = dxi + (int64_t)c * d->h * d->w;
        for (int ky = 0; ky < d->ks; ky++)
            for (int kx = 0; kx < d->ks; kx++) {
                const int off = kx - d->pad;
                int lo, hi;
                valid_cols(d, off, &lo, &hi);
                for (int oy = 0; oy < d->oh; oy++, dcol += d->ow) {
                    const int iy = oy * d->stride + ky - d->pad;
                    if (iy < 0 || iy >= d->h)
                        continue;
                    float *row = dxc + (int64_t)iy * d->w + off;
                    if (d->stride == 1)
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] += dcol[ox];
                    else
                        for (int ox = lo; ox < hi; ox++)
                            row[ox * d->stride] += dcol[ox];
                }
            }
    }
}

void sl_nn_conv_fwd(sl_nn_impl impl, const sl_nn_conv_shape *s, const float *x, const float *w,
                    const float *b, float *y, float *work)
{
    const conv_dims d = dims_of(s);
    assert(x && w && y);
    const int64_t plane = (int64_t)d.oh * d.ow;
    if (impl == SL_NN_REFERENCE) {
        for (int i = 0; i < d.n; i++)
            for (int ko = 0; ko < d.k; ko++) {
                float *yk = y + ((int64_t)i * d.k + ko) * plane;
                for (int oy = 0; oy < d.oh; oy++)
                    for (int ox = 0; ox < d.ow; ox++)
                        yk[(int64_t)oy * d.ow + ox] = conv_fwd_at(&d, x, w, b, i, ko, oy, ox);
            }
        return;
    }
    assert(work || direct_cols(&d));
    const int rows = d.c * d.ks * d.ks;
    for (int i = 0; i < d.n; i++) {
        float *yi = y + (int64_t)i * d.k * plane;
        if (b)
            for (int ko = 0; ko < d.k; ko++)
                for (int64_t p = 0; p < plane; p++)
                    yi[ko * plane + p] = b[ko];
        const float *col = im2col(&d, x, i, work);
        sl_nn_gemm(impl, 0, 0, d.k, (int)plane, rows, 1.0f, w, rows, col, (int)plane,
                   b ? 1.0f : 0.0f, yi, (int)plane);
    }
}

void sl_nn_conv_bwd(sl_nn_impl impl, const sl_nn_conv_shape *s, const float *x, const float *w,
                    const float *dy, float *dx, float *dw, float *db, float *work)
{
    const conv_dims d = dims_of(s);
    assert(x && w && dy && dw);
    if (db)
        for (int ko = 0; ko < d.k; ko++)
            db[ko] += conv_bwd_b_at(&d, dy, ko);
    if (impl == SL_NN_REFERENCE) {
        for (int ko = 0; ko < d.k; ko++)
            for (int c = 0; c < d.c; c++)
                for (int ky = 0; ky < d.ks; ky++)
                    for (int kx = 0; kx < d.ks; kx++)
                        dw[(((int64_t)ko * d.c + c) * d.ks + ky) * d.ks + kx] +=
                            conv_bwd_w_at(&d, x, dy, ko, c, ky, kx);
        if (dx)
            for (int i = 0; i < d.n; i++)
                for (int c = 0; c < d.c; c++)
                    for (int iy = 0; iy < d.h; iy++)
                        for (int ix = 0; ix < d.w; ix++)
                            dx[(((int64_t)i * d.c + c) * d.h + iy) * d.w + ix] =
                                conv_bwd_x_at(&d, w, dy, i, c, iy, ix);
        return;
    }
    assert(work || direct_cols(&d));
    const int rows = d.c * d.ks * d.ks;
    const int plane = d.oh * d.ow;
    for (int i = 0; i < d.n; i++) {
        const float *dyi = dy + (int64_t)i * d.k * plane;
        const float *col = im2col(&d, x, i, work);
        /* dw (k, rows) += dy_i (k, plane) * col^T (plane, rows) */
        sl_nn_gemm(impl, 0, 1, d.k, rows, plane, 1.0f, dyi, plane, col, plane, 1.0f, dw, rows);
        if (!dx)
            continue;
        float *dxi = dx + (int64_t)i * d.c * d.h * d.w;
        /* dcol (rows, plane) = w^T (rows, k) * dy_i (k, plane); col is dead by now, so the
         * column gradient reuses its scratch. */
        float *dcol = direct_cols(&d) ? dxi : work;
        sl_nn_gemm(impl, 1, 0, rows, plane, d.k, 1.0f, w, rows, dyi, plane, 0.0f, dcol, plane);
        if (!direct_cols(&d))
            col2im(&d, dcol, dxi);
    }
}

/* ---- elementwise ---------------------------------------------------------------------------- */

void sl_nn_relu_fwd(const float *x, float *y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] = relu_fwd_at(x[i]);
}

void sl_nn_relu_bwd(const float *y, const float *dy, float *dx, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = relu_bwd_at(y[i], dy[i]);
}

void sl_nn_add_fwd(const float *a, const float *b, float *y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] + b[i];
}

void sl_nn_add_into(float *dst, const float *src, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] += src[i];
}

/* ---- pooling -------------------------------------------------------------------------------- */

void sl_nn_maxpool2_fwd(const float *x, float *y, int n, int c, int h, int w)
{
    assert(h >= 2 && w >= 2);
    const int oh = h / 2, ow = w / 2;
    for (int64_t p = 0; p < (int64_t)n * c; p++) {
        const float *xc = x + p * h * w;
        float *yc = y + p * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                yc[(int64_t)oy * ow + ox] = maxpool2_fwd_at(xc, w, oy, ox);
    }
}

void sl_nn_maxpool2_bwd(const float *x, const float *dy, float *dx, int n, int c, int h, int w)
{
    assert(h >= 2 && w >= 2);
    const int oh = h / 2, ow = w / 2;
    for (int64_t p = 0; p < (int64_t)n * c; p++) {
        const float *xc = x + p * h * w, *dyc = dy + p * oh * ow;
        float *dxc = dx + p * h * w;
        for (int iy = 0; iy < h; iy++)
            for (int ix = 0; ix < w; ix++)
                dxc[(int64_t)iy * w + ix] = maxpool2_bwd_at(xc, dyc, h, w, iy, ix);
    }
}

void sl_nn_gap_fwd(const float *x, float *y, int n, int c, int h, int w)
{
    const int64_t hw = (int64_t)h * w;
    for (int64_t p = 0; p < (int64_t)n * c; p++)
        y[p] = gap_fwd_at(x + p * hw, hw);
}

void sl_nn_gap_bwd(const float *dy, float *dx, int n, int c, int h, int w)
{
    const int64_t hw = (int64_t)h * w;
    for (int64_t p = 0; p < (int64_t)n * c; p++)
        for (int64_t q = 0; q < hw; q++)
            dx[p * hw + q] = dy[p] / (float)hw;
}

/* ---- batch norm ----------------------------------------------------------------------------- */

void sl_nn_bn_fwd_train(const float *x, float *y, int n, int c, int hw, const float *gamma,
                        const float *beta, float *running_mean, float *running_var, float momentum,
                        float eps, float *save_mean, float *save_invstd)
{
    const double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double mean, var;
        bn_stats_at(x, n, c, hw, ch, &mean, &var);
        const float m = (float)mean, inv = (float)(1.0 / sqrt(var + eps));
        save_mean[ch] = m;
        save_invstd[ch] = inv;
        const double unbiased = count > 1 ? var * count / (count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
        for (int i = 0; i < n; i++) {
            const int64_t base = ((int64_t)i * c + ch) * hw;
            for (int p = 0; p < hw; p++)
                y[base + p] = bn_norm_at(x[base + p], m, inv, gamma[ch], beta[ch]);
        }
    }
}

void sl_nn_bn_fwd_eval(const float *x, float *y, int n, int c, int hw, const float *gamma,
                       const float *beta, const float *running_mean, const float *running_var,
                       float eps)
{
    for (int ch = 0; ch < c; ch++) {
        const float inv = (float)(1.0 / sqrt((double)running_var[ch] + eps));
        for (int i = 0; i < n; i++) {
            const int64_t base = ((int64_t)i * c + ch) * hw;
            for (int p = 0; p < hw; p++)
                y[base + p] = bn_norm_at(x[base + p], running_mean[ch], inv, gamma[ch], beta[ch]);
        }
    }
}

void sl_nn_bn_bwd(const float *x, const float *dy, float *dx, int n, int c, int hw,
                  const float *gamma, const float *save_mean, const float *save_invstd,
                  float *dgamma, float *dbeta)
{
    const double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sum_dy, sum_dy_xhat;
        bn_bwd_sums_at(x, dy, n, c, hw, ch, save_mean[ch], save_invstd[ch], &sum_dy, &sum_dy_xhat);
        dgamma[ch] += (float)sum_dy_xhat;
        dbeta[ch] += (float)sum_dy;
        if (!dx)
            continue;
        const float mdy = (float)(sum_dy / count), mdyx = (float)(sum_dy_xhat / count);
        for (int i = 0; i < n; i++) {
            const int64_t base = ((int64_t)i * c + ch) * hw;
            for (int p = 0; p < hw; p++)
                dx[base + p] = bn_bwd_x_at(x[base + p], dy[base + p], save_mean[ch],
                                           save_invstd[ch], gamma[ch], mdy, mdyx);
        }
    }
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

double sl_nn_softmax_xent_fwd(const float *logits, const int32_t *labels, float *probs, int n,
                              int classes, int *correct)
{
    assert(n > 0 && classes > 0);
    double total = 0.0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *li = logits + (int64_t)i * classes;
        assert(labels[i] >= 0 && labels[i] < classes);
        total += softmax_xent_row_at(li, classes, labels[i], probs + (int64_t)i * classes);
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (li[j] > li[best])
                best = j;
        right += best == labels[i];
    }
    if (correct)
        *correct = right;
    return total / n;
}

void sl_nn_softmax_xent_bwd(const float *probs, const int32_t *labels, float *dlogits, int n,
                            int classes, float scale)
{
    const float s = scale / (float)n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < classes; j++) {
            const int64_t q = (int64_t)i * classes + j;
            dlogits[q] = softmax_xent_bwd_at(probs[q], j == labels[i], s);
        }
}

int64_t sl_nn_find_nonfinite(const float *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite(v[i]))
            return (int64_t)i;
    return -1;
}
