/*
 * The per-output-value bodies of the trainer's layers: each function computes ONE value of a
 * layer's output (or of one of its gradients) from the inputs, with no side effects. The CPU
 * reference (nn_layers.c) runs them in plain loops; the CUDA backend (planned, DESIGN §7) will
 * run the same functions from its kernels, one thread per output value, and the CPU emulator
 * will run those kernels again on the CPU. Keeping the arithmetic here, in one place, is what
 * lets the backends be compared name for name: a kernel differs from the reference only in how
 * it enumerates the outputs.
 *
 * Rules for code in this file: static inline, no allocation, no libc beyond <math.h>, no
 * globals, indices in int64_t where a product of sizes can pass 2^31, and every function marked
 * SL_NN_HD (host + device under nvcc, nothing otherwise).
 */
#ifndef SLUICE_NN_BODIES_H
#define SLUICE_NN_BODIES_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SL_NN_HD __host__ __device__
#else
#define SL_NN_HD
#endif

/* ---- linear --------------------------------------------------------------------------------- */

/* y[i][o] = b[o] + sum_j x[i][j] * w[o][j] */
SL_NN_HD static inline float linear_fwd_at(const float *x, const float *w, const float *b, int in,
                                           int i, int o)
{
    const float *xi = x + (int64_t)i * in, *wo = w + (int64_t)o * in;
    float acc = b ? b[o] : 0.0f;
    for (int j = 0; j < in; j++)
        acc += xi[j] * wo[j];
    return acc;
}

/* dx[i][j] = sum_o dy[i][o] * w[o][j] */
SL_NN_HD static inline float linear_bwd_x_at(const float *w, const float *dy, int n_out, int in,
                                             int i, int j)
{
    float acc = 0.0f;
    for (int o = 0; o < n_out; o++)
        acc += dy[(int64_t)i * n_out + o] * w[(int64_t)o * in + j];
    return acc;
}

/* dw[o][j] contribution: sum_i dy[i][o] * x[i][j] */
SL_NN_HD static inline float linear_bwd_w_at(const float *x, const float *dy, int n, int n_out,
                                             int in, int o, int j)
{
    float acc = 0.0f;
    for (int i = 0; i < n; i++)
        acc += dy[(int64_t)i * n_out + o] * x[(int64_t)i * in + j];
    return acc;
}

/* db[o] contribution: sum_i dy[i][o] */
SL_NN_HD static inline float linear_bwd_b_at(const float *dy, int n, int n_out, int o)
{
    float acc = 0.0f;
    for (int i = 0; i < n; i++)
        acc += dy[(int64_t)i * n_out + o];
    return acc;
}

/* ---- convolution (ksize 1 or 3, pad ksize / 2, stride 1 or 2) -------------------------------- */

typedef struct conv_dims {
    int n, c, h, w, k, ks, stride, pad, oh, ow;
} conv_dims;

/* y[i][ko][oy][ox] = b[ko] + sum_{c,ky,kx} w[ko][c][ky][kx] * x[i][c][oy*s+ky-pad][ox*s+kx-pad] */
SL_NN_HD static inline float conv_fwd_at(const conv_dims *d, const float *x, const float *w,
                                         const float *b, int i, int ko, int oy, int ox)
{
    float acc = b ? b[ko] : 0.0f;
    for (int c = 0; c < d->c; c++) {
        const float *xc = x + ((int64_t)i * d->c + c) * d->h * d->w;
        const float *wc = w + ((int64_t)ko * d->c + c) * d->ks * d->ks;
        for (int ky = 0; ky < d->ks; ky++) {
            const int iy = oy * d->stride + ky - d->pad;
            if (iy < 0 || iy >= d->h)
                continue;
            for (int kx = 0; kx < d->ks; kx++) {
                const int ix = ox * d->stride + kx - d->pad;
                if (ix < 0 || ix >= d->w)
                    continue;
                acc += wc[ky * d->ks + kx] * xc[(int64_t)iy * d->w + ix];
            }
        }
    }
    return acc;
}

/* dx[i][c][iy][ix] = sum over the outputs that read it: gathered per input value so that no two
 * threads write one value (no atomics on the device). */
SL_NN_HD static inline float conv_bwd_x_at(const conv_dims *d, const float *w, const float *dy,
                                           int i, int c, int iy, int ix)
{
    float acc = 0.0f;
    for (int ko = 0; ko < d->k; ko++) {
        const float *dyk = dy + ((int64_t)i * d->k + ko) * d->oh * d->ow;
        const float *wk = w + ((int64_t)ko * d->c + c) * d->ks * d->ks;
        for (int ky = 0; ky < d->ks; ky++) {
            const int ty = iy + d->pad - ky; /* = oy * stride */
            if (ty < 0 || ty % d->stride)
                continue;
            const int oy = ty / d->stride;
            if (oy >= d->oh)
                continue;
            for (int kx = 0; kx < d->ks; kx++) {
                const int tx = ix + d->pad - kx;
                if (tx < 0 || tx % d->stride)
                    continue;
                const int ox = tx / d->stride;
                if (ox >= d->ow)
                    continue;
                acc += wk[ky * d->ks + kx] * dyk[(int64_t)oy * d->ow + ox];
            }
        }
    }
    return acc;
}

/* dw[ko][c][ky][kx] contribution: sum_{i,oy,ox} dy[i][ko][oy][ox] * x[i][c][iy][ix] */
SL_NN_HD static inline float conv_bwd_w_at(const conv_dims *d, const float *x, const float *dy,
                                           int ko, int c, int ky, int kx)
{
    float acc = 0.0f;
    for (int i = 0; i < d->n; i++) {
        const float *xc = x + ((int64_t)i * d->c + c) * d->h * d->w;
        const float *dyk = dy + ((int64_t)i * d->k + ko) * d->oh * d->ow;
        for (int oy = 0; oy < d->oh; oy++) {
            const int iy = oy * d->stride + ky - d->pad;
            if (iy < 0 || iy >= d->h)
                continue;
            for (int ox = 0; ox < d->ow; ox++) {
                const int ix = ox * d->stride + kx - d->pad;
                if (ix < 0 || ix >= d->w)
                    continue;
                acc += dyk[(int64_t)oy * d->ow + ox] * xc[(int64_t)iy * d->w + ix];
            }
        }
    }
    return acc;
}

/* db[ko] contribution: sum_{i,oy,ox} dy[i][ko][oy][ox] */
SL_NN_HD static inline float conv_bwd_b_at(const conv_dims *d, const float *dy, int ko)
{
    float acc = 0.0f;
    const int64_t plane = (int64_t)d->oh * d->ow;
    for (int i = 0; i < d->n; i++) {
        const float *dyk = dy + ((int64_t)i * d->k + ko) * plane;
        for (int64_t p = 0; p < plane; p++)
            acc += dyk[p];
    }
    return acc;
}

/* One value of the im2col matrix of image i: row (c, ky, kx), column (oy, ox); zero in the
 * padding. */
SL_NN_HD static inline float im2col_at(const conv_dims *d, const float *x, int i, int c, int ky,
                                       int kx, int oy, int ox)
{
    const int iy = oy * d->stride + ky - d->pad, ix = ox * d->stride + kx - d->pad;
    if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
        return 0.0f;
    return x[(((int64_t)i * d->c + c) * d->h + iy) * d->w + ix];
}

/* One value of dx of image i from its column-gradient matrix (rows c*ks*ks + ky*ks + kx,
 * columns oy*ow + ox): the gathered inverse of im2col. */
SL_NN_HD static inline float col2im_at(const conv_dims *d, const float *dcol, int c, int iy, int ix)
{
    float acc = 0.0f;
    const int64_t cols = (int64_t)d->oh * d->ow;
    for (int ky = 0; ky < d->ks; ky++) {
        const int ty = iy + d->pad - ky;
        if (ty < 0 || ty % d->stride || ty / d->stride >= d->oh)
            continue;
        for (int kx = 0; kx < d->ks; kx++) {
            const int tx = ix + d->pad - kx;
            if (tx < 0 || tx % d->stride || tx / d->stride >= d->ow)
                continue;
            const int64_t row = ((int64_t)c * d->ks + ky) * d->ks + kx;
            acc += dcol[row * cols + (int64_t)(ty / d->stride) * d->ow + tx / d->stride];
        }
    }
    return acc;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

/* Written so that NaN passes through (NaN < 0 is false): a NaN must reach the loss, where the
 * trainer's finiteness check names the step, not vanish into a zero. */
SL_NN_HD static inline float relu_fwd_at(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* The gradient passes where the output is positive (so the forward may run in place). */
SL_NN_HD static inline float relu_bwd_at(float y, float dy)
{
    return y > 0.0f ? dy : 0.0f;
}

/* ---- pooling -------------------------------------------------------------------------------- */

/* Which of the 2x2 window's values (0..3, row-major) is the maximum; the first on ties. */
SL_NN_HD static inline int maxpool2_argmax_at(const float *xc, int w, int oy, int ox)
{
    const float *r0 = xc + (int64_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    const float v[4] = {r0[0], r0[1], r1[0], r1[1]};
    int best = 0;
    for (int q = 1; q < 4; q++)
        if (v[q] > v[best])
            best = q;
    return best;
}

SL_NN_HD static inline float maxpool2_fwd_at(const float *xc, int w, int oy, int ox)
{
    const int q = maxpool2_argmax_at(xc, w, oy, ox);
    return xc[(int64_t)(2 * oy + q / 2) * w + 2 * ox + q % 2];
}

/* dx at (iy, ix) of one plane: dy of its window when it won the window, else zero. */
SL_NN_HD static inline float maxpool2_bwd_at(const float *xc, const float *dyc, int h, int w,
                                             int iy, int ix)
{
    const int oy = iy / 2, ox = ix / 2;
    if (oy >= h / 2 || ox >= w / 2)
        return 0.0f;
    const int q = maxpool2_argmax_at(xc, w, oy, ox);
    return q == (iy % 2) * 2 + ix % 2 ? dyc[(int64_t)oy * (w / 2) + ox] : 0.0f;
}

SL_NN_HD static inline float gap_fwd_at(const float *xc, int64_t hw)
{
    float acc = 0.0f;
    for (int64_t p = 0; p < hw; p++)
        acc += xc[p];
    return acc / (float)hw;
}

/* ---- batch norm ----------------------------------------------------------------------------- */

/* Mean and biased variance of channel ch over (n, hw), in double: the sums run over up to
 * millions of values, where float accumulation would lose digits the gradient check sees. */
SL_NN_HD static inline void bn_stats_at(const float *x, int n, int c, int64_t hw, int ch,
                                        double *mean, double *var)
{
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) {
        const float *xc = x + ((int64_t)i * c + ch) * hw;
        for (int64_t p = 0; p < hw; p++)
            s += xc[p];
    }
    const double count = (double)n * (double)hw, m = s / count;
    for (int i = 0; i < n; i++) {
        const float *xc = x + ((int64_t)i * c + ch) * hw;
        for (int64_t p = 0; p < hw; p++) {
            const double t = xc[p] - m;
            ss += t * t;
        }
    }
    *mean = m;
    *var = ss / count;
}

SL_NN_HD static inline float bn_norm_at(float x, float mean, float invstd, float gamma, float beta)
{
    return gamma * ((x - mean) * invstd) + beta;
}

/* Per channel: sum dy and sum dy * xhat (dbeta and dgamma), in double like the statistics. */
SL_NN_HD static inline void bn_bwd_sums_at(const float *x, const float *dy, int n, int c,
                                           int64_t hw, int ch, float mean, float invstd,
                                           double *sum_dy, double *sum_dy_xhat)
{
    double a = 0.0, b = 0.0;
    for (int i = 0; i < n; i++) {
        const int64_t base = ((int64_t)i * c + ch) * hw;
        for (int64_t p = 0; p < hw; p++) {
            a += dy[base + p];
            b += (double)dy[base + p] * (double)((x[base + p] - mean) * invstd);
        }
    }
    *sum_dy = a;
    *sum_dy_xhat = b;
}

/* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
SL_NN_HD static inline float bn_bwd_x_at(float x, float dy, float mean, float invstd, float gamma,
                                         float mean_dy, float mean_dy_xhat)
{
    const float xhat = (x - mean) * invstd;
    return gamma * invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

/* Row i: writes softmax into p, returns -log softmax[label], via the log-sum-exp around the
 * row's maximum. */
SL_NN_HD static inline double softmax_xent_row_at(const float *logits, int classes, int label,
                                                  float *p)
{
    float mx = logits[0];
    for (int j = 1; j < classes; j++)
        mx = logits[j] > mx ? logits[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < classes; j++)
        sum += exp((double)logits[j] - mx);
    const double lse = mx + log(sum);
    for (int j = 0; j < classes; j++)
        p[j] = (float)exp((double)logits[j] - lse);
    return lse - logits[label];
}

SL_NN_HD static inline float softmax_xent_bwd_at(float p, int is_label, float scale_over_n)
{
    return scale_over_n * (p - (is_label ? 1.0f : 0.0f));
}

/* ---- optimizer updates (sluice/optim.h) ---------------------------------------------------- */

/* Value i of an SGD step: L2 decay added to the gradient when `decayed`, then the momentum
 * buffer (buf NULL: plain SGD; `first`: the buffer starts at the gradient, as PyTorch's does). */
SL_NN_HD static inline void sgd_step_at(float *p, const float *g, float *buf, int64_t i,
                                        int decayed, float mu, float wd, float lr, int first)
{
    const float gi = decayed ? g[i] + wd * p[i] : g[i];
    if (buf) {
        buf[i] = first ? gi : mu * buf[i] + gi;
        p[i] -= lr * buf[i];
    } else {
        p[i] -= lr * gi;
    }
}

/* Value i of an AdamW step: decoupled decay (decay = 1 - lr * wd) when `decayed`, the moments,
 * and the bias-corrected update (bc1 = 1 - b1^t, bc2 = 1 - b2^t, worked out once per step). */
SL_NN_HD static inline void adamw_step_at(float *p, const float *g, float *m, float *v, int64_t i,
                                          int decayed, float decay, float b1, float b2, float bc1,
                                          float bc2, float lr, float eps)
{
    if (decayed)
        p[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
}

#endif
