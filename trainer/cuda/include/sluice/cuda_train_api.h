/*
 * The CUDA training step and GPU feed, written once and declared twice by sluice/cuda_train.h:
 * as sl_cuda_* (the device) and sl_cuda_emu_* (the emulator). SL_CUDA_FN(name) names a function
 * or type and SL_CUDA_CTX the handle type (sluice/nn_cuda_api.h); no include guard on purpose.
 *
 * Threading: a model and a feed belong to their handle's thread.
 */

/* ---- the model: sluice/model.h on the device ------------------------------------------------ */

typedef struct SL_CUDA_FN(model) SL_CUDA_FN(model);

/* Builds the model cfg->model describes (the same op list, tensors, layout and initial values as
 * sl_model_create, which it calls for a host mirror), its parameters, gradients, batch-norm
 * state, activations and optimizer state in device memory, for batches up to
 * cfg->model.max_batch. SL_ERR_INVAL (errbuf says which field), SL_ERR_NOMEM. */
int SL_CUDA_FN(model_create)(SL_CUDA_CTX *ctx, SL_CUDA_FN(model) * *out,
                             const sl_cuda_model_config *cfg, char *errbuf, size_t errcap);
void SL_CUDA_FN(model_free)(SL_CUDA_FN(model) * m); /* NULL does nothing */
const char *SL_CUDA_FN(model_errmsg)(const SL_CUDA_FN(model) * m);

/* sl_model_forward on device arrays: x (n, in_c, in_h, in_w) float, labels (n) int32 in
 * [0, classes) (the feed checks them) or NULL; x must stay valid until the backward. Mixed
 * precision rounds the weights, the input and every activation to 16 bits as it goes. */
int SL_CUDA_FN(model_forward)(SL_CUDA_FN(model) * m, const float *x, const int32_t *labels, int n,
                              int train, double *loss, int *correct);
/* sl_model_backward: ADDS the gradient of scale * loss to the device gradient blob (under fp16
 * model_train_step passes the loss scale here and divides it out afterwards). */
int SL_CUDA_FN(model_backward)(SL_CUDA_FN(model) * m, float scale);
int SL_CUDA_FN(model_zero_grad)(SL_CUDA_FN(model) * m);
/* Device blobs in sl_model's layout (sl_model_tensor_at of the host mirror gives offsets). */
float *SL_CUDA_FN(model_params)(SL_CUDA_FN(model) * m);
float *SL_CUDA_FN(model_grads)(SL_CUDA_FN(model) * m);

/* One training step, the CPU loop's sequence on the device: zero_grad, forward (train), backward
 * (scaled by the loss scale under fp16), unscale with NaN/Inf detection, clipping (clip_norm >
 * 0), optimizer update at lr. fp16: a non-finite gradient skips the update and halves the scale
 * (sluice/loss_scale.h), *res says so, and the call returns 0. fp32/bf16: a non-finite loss or
 * gradient is SL_ERR_NONFINITE with sl_model_check_finite's message ("step 12: gradient of fc.b
 * is inf at element 2"). `step` only names the step in messages. */
int SL_CUDA_FN(model_train_step)(SL_CUDA_FN(model) * m, const float *x, const int32_t *labels,
                                 int n, float lr, int64_t step, sl_cuda_step_result *res);

/* The host mirror (config, tensors, signature). Its params/state hold the device values only
 * after model_sync_host. */
sl_model *SL_CUDA_FN(model_host)(SL_CUDA_FN(model) * m);
/* Downloads parameters, batch-norm state and optimizer state into the host mirror. */
int SL_CUDA_FN(model_sync_host)(SL_CUDA_FN(model) * m);
/* sl_train_state_save / sl_train_state_load of the device model and optimizer: the same bytes
 * as the CPU model's, so a checkpoint moves between backends. load: nothing changes unless the
 * blob checks (the codes of sl_train_state_load). */
int SL_CUDA_FN(model_save)(SL_CUDA_FN(model) * m, uint8_t **out, size_t *len);
int SL_CUDA_FN(model_load)(SL_CUDA_FN(model) * m, const uint8_t *data, size_t len);
/* The dynamic loss scale (fp16; its value stays 1 otherwise), a value the loop may save. */
sl_loss_scale *SL_CUDA_FN(model_loss_scale)(SL_CUDA_FN(model) * m);
int64_t SL_CUDA_FN(model_optim_steps)(const SL_CUDA_FN(model) * m);

/* ---- the feed: uint8 batches to normalized device input ------------------------------------- */

typedef struct SL_CUDA_FN(feed) SL_CUDA_FN(feed);

/* Two slots of page-locked host memory for uint8 (max_batch, h, w, c) batches and int32
 * labels, their device copies, a copy stream, and one float (max_batch, c, h, w) input on the
 * device. mean/std per channel (NULL: 0 and 1, i.e. x / 255). c in 1..4. */
int SL_CUDA_FN(feed_open)(SL_CUDA_CTX *ctx, SL_CUDA_FN(feed) * *out, int max_batch, int h, int w,
                          int c, int classes, const float *mean, const float *std);
void SL_CUDA_FN(feed_close)(SL_CUDA_FN(feed) * f); /* NULL does nothing */
const char *SL_CUDA_FN(feed_errmsg)(const SL_CUDA_FN(feed) * f);
/* The next free slot's host buffers to fill: pixels (max_batch * h * w * c bytes) and labels
 * (max_batch int32); asking again before feed_submit gives the same slot. Waits while the
 * slot's previous copy is still reading it. SL_ERR_INVAL when both slots are submitted and not
 * yet taken by feed_next. */
int SL_CUDA_FN(feed_slot)(SL_CUDA_FN(feed) * f, uint8_t **pixels, int32_t **labels);
/* Starts the asynchronous copy of the filled slot (n examples) on the copy stream. SL_ERR_RANGE
 * for a label outside [0, classes) (nothing is submitted), SL_ERR_INVAL for n outside
 * [1, max_batch] or no slot taken. */
int SL_CUDA_FN(feed_submit)(SL_CUDA_FN(feed) * f, int n);
/* The oldest submitted batch, normalized on the compute stream after its copy: device input
 * (n, c, h, w) and labels, valid until the next feed_next. SL_EOF when nothing is submitted.
 * The host time spent waiting for the copy is added to feed_wait_seconds. */
int SL_CUDA_FN(feed_next)(SL_CUDA_FN(feed) * f, const float **x, const int32_t **labels, int *n);
double SL_CUDA_FN(feed_wait_seconds)(const SL_CUDA_FN(feed) * f);
