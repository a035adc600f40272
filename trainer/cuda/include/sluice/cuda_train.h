/*
 * Training on the CUDA backend (DESIGN §7, trainer/TRAINER.md "The CUDA backend"): the model of
 * sluice/model.h with its parameters, gradients, batch-norm and optimizer state in device
 * memory, one training step (forward, backward, optimizer update, optional fp16/bf16 mixed
 * precision with dynamic loss scaling), checkpoints in the CPU model's byte layout, and the GPU
 * feed (uint8 batches in page-locked buffers, copied on a second stream while the previous batch
 * computes, normalized on the device). Declared twice from sluice/cuda_train_api.h: sl_cuda_*
 * (device, libsl_cuda) and sl_cuda_emu_* (the same code over the CPU emulator, libsl_cuda_cpu).
 *
 * How a training loop drives it (per step k, with batch k+1 read from the pipeline meanwhile):
 *     feed_slot -> fill pixels/labels of batch k+1 -> feed_submit   (copy k+1 starts)
 *     feed_next -> x, labels of batch k -> model_train_step(x, labels, n, lr, step, &res)
 * Checkpoints: model_save / model_load in place of sl_train_state_save / _load.
 */
#ifndef SLUICE_CUDA_TRAIN_H
#define SLUICE_CUDA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/loss_scale.h"
#include "sluice/model.h"
#include "sluice/nn_cuda.h"
#include "sluice/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What 16-bit storage a step emulates; master weights and optimizer state stay float32. */
typedef enum sl_cuda_precision {
    SL_CUDA_FP32 = 0,
    SL_CUDA_BF16 = 1, /* no loss scaling (bf16 has float32's range) */
    SL_CUDA_FP16 = 2, /* dynamic loss scaling */
} sl_cuda_precision;

typedef struct sl_cuda_model_config {
    sl_model_config model; /* as for sl_model_create (impl is ignored) */
    sl_optim_config optim; /* as for sl_optim_create */
    sl_cuda_precision precision;
    float clip_norm; /* 0: no clipping; else sl_grad_clip_norm's rule */
} sl_cuda_model_config;

typedef struct sl_cuda_step_result {
    double loss;      /* mean loss of the batch (unscaled) */
    int correct;      /* right predictions */
    int applied;      /* 1: parameters updated; 0: skipped (fp16 overflow) */
    float loss_scale; /* after this step's update (1 without fp16) */
    double grad_norm; /* before clipping (0 when clip_norm is 0) */
} sl_cuda_step_result;

/* Precision by name: "fp32", "bf16", "fp16"; SL_ERR_INVAL otherwise. */
int sl_cuda_precision_parse(const char *name, sl_cuda_precision *out);

#define SL_CUDA_FN(name) sl_cuda_##name
#define SL_CUDA_CTX      sl_cuda
#include "sluice/cuda_train_api.h"
#undef SL_CUDA_FN
#undef SL_CUDA_CTX

#define SL_CUDA_FN(name) sl_cuda_emu_##name
#define SL_CUDA_CTX      sl_cuda_emu
#include "sluice/cuda_train_api.h"
#undef SL_CUDA_FN
#undef SL_CUDA_CTX

#ifdef __cplusplus
}
#endif
#endif
