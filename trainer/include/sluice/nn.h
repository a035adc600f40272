/*
 * The trainer's layers: each one a forward and a backward function over float32 arrays with
 * explicit shapes (NCHW for images, NC for vectors), no hidden state and no allocation.
 *
 * Conventions every layer follows, so a model, a CUDA backend and the tests can rely on them:
 *   - Outputs and input gradients (y, dx) are overwritten. dx may be NULL where the caller does
 *     not need it (a model's first layer).
 *   - Parameter gradients (dw, db, dgamma, dbeta) are ADDED to, never overwritten, so several
 *     micro-batches accumulate into one gradient; the caller zeroes them before the first.
 *   - `impl` picks how matrix products run: SL_NN_REFERENCE is the plain loops (one small
 *     function per output value, the bodies the CUDA kernels mirror); SL_NN_FAST runs them as
 *     GEMMs (OpenBLAS cblas_sgemm when the build found it, else a plain blocked GEMM) with
 *     im2col for convolutions. Layers without a matrix product have one implementation.
 *   - Preconditions (positive sizes, non-NULL arrays, labels in range) are asserted, not
 *     checked: the model validates what it receives once, at its boundary.
 *
 * Threading: the functions are pure apart from their outputs; call them from any thread. The
 * fast path may use OpenBLAS's own threads inside a call.
 */
#ifndef SLUICE_NN_H
#define SLUICE_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_nn_impl {
    SL_NN_REFERENCE = 0, /* plain loops, the reference every other backend is tested against */
    SL_NN_FAST = 1,      /* GEMM-based: OpenBLAS when built with it, else a plain GEMM */
} sl_nn_impl;

/* "openblas" or "plain": which GEMM SL_NN_FAST runs in this build. */
const char *sl_nn_gemm_name(void);
/* Threads OpenBLAS may use inside one GEMM (process-wide: OpenBLAS has one pool); no effect in
 * a build without OpenBLAS. A training loop whose input pipeline already keeps the other cores
 * busy may want 1, so OpenBLAS's spinning workers do not compete with the pipeline's; measure
 * with bench_trainer --gemm-threads. */
void sl_nn_set_gemm_threads(int threads);

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T by trans_*; A is M x K
 * after op, B is K x N after op, leading dimensions as in BLAS (row-major). `impl` chooses the
 * reference loops or the fast GEMM. */
void sl_nn_gemm(sl_nn_impl impl, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* ---- linear: y (n, out) = x (n, in) * w^T + b; w (out, in), b (out) or NULL -------------- */
void sl_nn_linear_fwd(sl_nn_impl impl, const float *x, const float *w, const float *b, float *y,
                      int n, int in, int out);
void sl_nn_linear_bwd(sl_nn_impl impl, const float *x, const float *w, const float *dy, float *dx,
                      float *dw, float *db, int n, int in, int out);

/* ---- convolution: ksize 3 (pad 1) or 1 (pad 0), stride 1 or 2 ------------------------------ */
typedef struct sl_nn_conv_shape {
    int n, c, h, w; /* input (n, c, h, w) */
    int k;          /* output channels; weights (k, c, ksize, ksize), bias (k) or NULL */
    int ksize;      /* 1 or 3; padding is ksize / 2 */
    int stride;     /* 1 or 2 */
} sl_nn_conv_shape;

/* Output height and width: (h + 2 * pad - ksize) / stride + 1. */
int sl_nn_conv_out_h(const sl_nn_conv_shape *s);
int sl_nn_conv_out_w(const sl_nn_conv_shape *s);
/* Floats of scratch the fast path needs (one image's im2col matrix); the reference needs none
 * and accepts work == NULL. */
size_t sl_nn_conv_work_floats(const sl_nn_conv_shape *s);
void sl_nn_conv_fwd(sl_nn_impl impl, const sl_nn_conv_shape *s, const float *x, const float *w,
                    const float *b, float *y, float *work);
void sl_nn_conv_bwd(sl_nn_impl impl, const sl_nn_conv_shape *s, const float *x, const float *w,
                    const float *dy, float *dx, float *dw, float *db, float *work);

/* ---- ReLU over `count` values; y may equal x. The backward reads the output y. ------------ */
void sl_nn_relu_fwd(const float *x, float *y, size_t count);
void sl_nn_relu_bwd(const float *y, const float *dy, float *dx, size_t count);

/* ---- elementwise sum y = a + b (the residual join); its backward is dy to both inputs ----- */
void sl_nn_add_fwd(const float *a, const float *b, float *y, size_t count);
/* dst += src: the fan-out join of gradients where one activation feeds two layers. */
void sl_nn_add_into(float *dst, const float *src, size_t count);

/* ---- max pool 2x2, stride 2: x (n, c, h, w) -> y (n, c, h / 2, w / 2) ---------------------
 * A trailing odd row or column is dropped (its gradient is zero). Ties go to the first of the
 * window in row-major order; the backward recomputes the winner from x. */
void sl_nn_maxpool2_fwd(const float *x, float *y, int n, int c, int h, int w);
void sl_nn_maxpool2_bwd(const float *x, const float *dy, float *dx, int n, int c, int h, int w);

/* ---- global average pool: x (n, c, h, w) -> y (n, c) --------------------------------------- */
void sl_nn_gap_fwd(const float *x, float *y, int n, int c, int h, int w);
void sl_nn_gap_bwd(const float *dy, float *dx, int n, int c, int h, int w);

/* ---- batch norm over (n, c, hw) per channel (hw = 1 for (n, c) vectors) ---------------------
 * Training: normalises with the batch mean and biased variance, saves mean and 1/sqrt(var+eps)
 * per channel for the backward, and moves the running averages by `momentum` (the unbiased
 * variance, as PyTorch does): running = (1 - momentum) * running + momentum * batch.
 * Evaluation: normalises with the running averages and changes nothing. */
void sl_nn_bn_fwd_train(const float *x, float *y, int n, int c, int hw, const float *gamma,
                        const float *beta, float *running_mean, float *running_var, float momentum,
                        float eps, float *save_mean, float *save_invstd);
void sl_nn_bn_fwd_eval(const float *x, float *y, int n, int c, int hw, const float *gamma,
                       const float *beta, const float *running_mean, const float *running_var,
                       float eps);
/* Backward of the training-mode forward (batch statistics are functions of x). */
void sl_nn_bn_bwd(const float *x, const float *dy, float *dx, int n, int c, int hw,
                  const float *gamma, const float *save_mean, const float *save_invstd,
                  float *dgamma, float *dbeta);

/* ---- softmax cross-entropy, mean over the batch -------------------------------------------
 * logits (n, classes), labels in [0, classes). Writes the softmax into probs (n, classes) for
 * the backward and returns the mean loss, each row's log-sum-exp taken around its maximum so
 * large logits neither overflow nor lose the answer. *correct (may be NULL) gets the number of
 * rows whose first maximal logit is the label. */
double sl_nn_softmax_xent_fwd(const float *logits, const int32_t *labels, float *probs, int n,
                              int classes, int *correct);
/* dlogits = scale * (probs - onehot(labels)) / n: the gradient of scale * mean loss. */
void sl_nn_softmax_xent_bwd(const float *probs, const int32_t *labels, float *dlogits, int n,
                            int classes, float scale);

/* Index of the first NaN or infinity in v[0..count), or -1 when all are finite. */
int64_t sl_nn_find_nonfinite(const float *v, size_t count);

#ifdef __cplusplus
}
#endif
#endif
