/*
 * The CUDA backend's host API, written once and declared twice by sluice/nn_cuda.h: as
 * sl_cuda_* (the real device, built when CMake finds nvcc) and as sl_cuda_emu_* (the same kernel
 * source compiled as C and run by the CPU emulator, always built). SL_CUDA_FN(name) names a
 * function and SL_CUDA_CTX the handle type; this file has no include guard on purpose.
 *
 * Every layer mirrors its sluice/nn.h twin name for name, with the same shapes and conventions
 * (outputs and input gradients overwritten, dx may be NULL, parameter gradients ADDED to), but
 * every array is device memory from SL_CUDA_FN(malloc). Functions return 0 or a negative
 * SL_ERR_* code, with the text in SL_CUDA_FN(errmsg); kernels run asynchronously on the handle's
 * stream, so a fault inside a kernel surfaces at the next call that synchronises (download,
 * sync, or a layer that returns a value to the host).
 *
 * Threading: one handle per thread; handles are independent.
 */

int SL_CUDA_FN(open)(SL_CUDA_CTX **out);
void SL_CUDA_FN(close)(SL_CUDA_CTX *ctx);
/* The last error's text ("" when none). */
const char *SL_CUDA_FN(errmsg)(const SL_CUDA_CTX *ctx);
/* Devices this process can use: 0 without a GPU or a driver (never an error); the emulator
 * reports its one CPU device. */
int SL_CUDA_FN(device_count)(void);
/* "cublas" or "kernels": how linear layers run. */
const char *SL_CUDA_FN(gemm_name)(void);

/* ---- device memory -------------------------------------------------------------------------- */
int SL_CUDA_FN(malloc)(SL_CUDA_CTX *ctx, size_t bytes, void **out);
void SL_CUDA_FN(free)(SL_CUDA_CTX *ctx, void *dev);
int SL_CUDA_FN(upload)(SL_CUDA_CTX *ctx, void *dev, const void *host, size_t bytes);
int SL_CUDA_FN(download)(SL_CUDA_CTX *ctx, void *host, const void *dev, size_t bytes);
int SL_CUDA_FN(zero)(SL_CUDA_CTX *ctx, void *dev, size_t bytes);
/* Device to device, ordered on the handle's stream (does not synchronise). */
int SL_CUDA_FN(copy)(SL_CUDA_CTX *ctx, void *dst, const void *src, size_t bytes);
/* Page-locked host memory (cudaHostAlloc; the emulator: sl_malloc), which the device can copy
 * from asynchronously; free with SL_CUDA_FN(host_free). */
int SL_CUDA_FN(host_alloc)(SL_CUDA_CTX *ctx, size_t bytes, void **out);
void SL_CUDA_FN(host_free)(SL_CUDA_CTX *ctx, void *host);
int SL_CUDA_FN(sync)(SL_CUDA_CTX *ctx);

/* ---- layers (sluice/nn.h) ------------------------------------------------------------------- */
int SL_CUDA_FN(linear_fwd)(SL_CUDA_CTX *ctx, const float *x, const float *w, const float *b,
                           float *y, int n, int in, int out);
int SL_CUDA_FN(linear_bwd)(SL_CUDA_CTX *ctx, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db, int n, int in, int out);
int SL_CUDA_FN(conv_fwd)(SL_CUDA_CTX *ctx, const sl_nn_conv_shape *s, const float *x,
                         const float *w, const float *b, float *y);
int SL_CUDA_FN(conv_bwd)(SL_CUDA_CTX *ctx, const sl_nn_conv_shape *s, const float *x,
                         const float *w, const float *dy, float *dx, float *dw, float *db);
/* Image `image` of x as its im2col matrix (rows c*ks*ks, columns oh*ow), and back: dx of that
 * image from a column-gradient matrix (the pieces of a GEMM-based convolution). */
int SL_CUDA_FN(im2col)(SL_CUDA_CTX *ctx, const sl_nn_conv_shape *s, const float *x, int image,
                       float *col);
int SL_CUDA_FN(col2im)(SL_CUDA_CTX *ctx, const sl_nn_conv_shape *s, const float *dcol, int image,
                       float *dx);
int SL_CUDA_FN(relu_fwd)(SL_CUDA_CTX *ctx, const float *x, float *y, size_t count);
int SL_CUDA_FN(relu_bwd)(SL_CUDA_CTX *ctx, const float *y, const float *dy, float *dx,
                         size_t count);
int SL_CUDA_FN(add_fwd)(SL_CUDA_CTX *ctx, const float *a, const float *b, float *y, size_t count);
int SL_CUDA_FN(add_into)(SL_CUDA_CTX *ctx, float *dst, const float *src, size_t count);
int SL_CUDA_FN(maxpool2_fwd)(SL_CUDA_CTX *ctx, const float *x, float *y, int n, int c, int h,
                             int w);
int SL_CUDA_FN(maxpool2_bwd)(SL_CUDA_CTX *ctx, const float *x, const float *dy, float *dx, int n,
                             int c, int h, int w);
int SL_CUDA_FN(gap_fwd)(SL_CUDA_CTX *ctx, const float *x, float *y, int n, int c, int h, int w);
int SL_CUDA_FN(gap_bwd)(SL_CUDA_CTX *ctx, const float *dy, float *dx, int n, int c, int h, int w);
int SL_CUDA_FN(bn_fwd_train)(SL_CUDA_CTX *ctx, const float *x, float *y, int n, int c, int hw,
                             const float *gamma, const float *beta, float *running_mean,
                             float *running_var, float momentum, float eps, float *save_mean,
                             float *save_invstd);
int SL_CUDA_FN(bn_fwd_eval)(SL_CUDA_CTX *ctx, const float *x, float *y, int n, int c, int hw,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var, float eps);
int SL_CUDA_FN(bn_bwd)(SL_CUDA_CTX *ctx, const float *x, const float *dy, float *dx, int n, int c,
                       int hw, const float *gamma, const float *save_mean, const float *save_invstd,
                       float *dgamma, float *dbeta);
/* Unlike sl_nn_softmax_xent_fwd the mean loss comes back through *loss (the return value is the
 * status); this call synchronises. labels are int32 in device memory. */
int SL_CUDA_FN(softmax_xent_fwd)(SL_CUDA_CTX *ctx, const float *logits, const int32_t *labels,
                                 float *probs, int n, int classes, double *loss, int *correct);
int SL_CUDA_FN(softmax_xent_bwd)(SL_CUDA_CTX *ctx, const float *probs, const int32_t *labels,
                                 float *dlogits, int n, int classes, float scale);

/* ---- mixed precision ------------------------------------------------------------------------ */
/* Round every value in place to the nearest bf16 / fp16 value (nearest even; fp16 overflows to
 * infinity): what storing the tensor in 16 bits and reading it back does. */
int SL_CUDA_FN(round_bf16)(SL_CUDA_CTX *ctx, float *v, size_t count);
int SL_CUDA_FN(round_f16)(SL_CUDA_CTX *ctx, float *v, size_t count);
/* g *= inv_scale for a scaled gradient; *found_nonfinite = 1 when any value is NaN or infinite
 * (the step must then be skipped, see sluice/loss_scale.h). Synchronises. */
int SL_CUDA_FN(unscale)(SL_CUDA_CTX *ctx, float *g, size_t count, float inv_scale,
                        int *found_nonfinite);

/* ---- optimizer, clipping, input ------------------------------------------------------------- */
/* One update of sl_optim_step's arithmetic (sluice/optim.h) on device blobs: state holds the
 * momentum buffer (SGD with momentum) or the first then second moments (AdamW), count floats
 * each; steps_done is the number of updates before this one. */
int SL_CUDA_FN(optim_step)(SL_CUDA_CTX *ctx, const sl_optim_config *cfg, float *params,
                           const float *grads, float *state, size_t count, size_t decay_count,
                           int64_t steps_done, float lr);
/* The L2 norm of g (squares summed in double), as sl_grad_clip_norm measures it. Synchronises. */
int SL_CUDA_FN(grad_norm)(SL_CUDA_CTX *ctx, const float *g, size_t count, double *norm);
/* v *= k. */
int SL_CUDA_FN(scale)(SL_CUDA_CTX *ctx, float *v, size_t count, float k);
/* uint8 (n, h, w, c) -> float (n, c, h, w), (x / 255 - mean[c]) / std[c] with
 * sl_image_normalize's arithmetic; mean/std NULL: 0 and 1. c in 1..4. */
int SL_CUDA_FN(normalize_u8)(SL_CUDA_CTX *ctx, const uint8_t *src, float *dst, int n, int h, int w,
                             int c, const float *mean, const float *std);
