/*
 * The training loop's CUDA backends (sluice/train.h's sl_train_backend over sluice/cuda_train.h):
 * sl_cuda_train_backend_open gives the device (libsl_cuda, built when CMake finds nvcc),
 * sl_cuda_emu_train_backend_open the same code over the CPU emulator (libsl_cuda_cpu, always
 * built; slow, for tests). Both come from one source, loop_backend.inc, written over SL_CUDA_FN.
 *
 * The backend creates the device model and optimizer when the loop's first batch fixes the input
 * shape; uint8 (N, H, W, C) batches go through the double-buffered pinned feed and are normalized
 * to x / 255 on the device (the CPU loop's conversion, bit for bit in the emulator), float32
 * batches are uploaded as they are; checkpoints hold the CPU model's training-state bytes.
 *
 * Threading: a backend belongs to the thread that runs its trainer.
 */
#ifndef SLUICE_CUDA_LOOP_H
#define SLUICE_CUDA_LOOP_H

#include <stddef.h>

#include "sluice/cuda_train.h"
#include "sluice/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills *out (device name "cuda" or "cuda-emu") with a handle on a fresh sl_cuda / sl_cuda_emu
 * context; the model comes later, from the first batch. Close with out->close(out->user) after
 * sl_trainer_close. SL_ERR_UNSUPPORTED when the CUDA runtime sees no device (errbuf says so and
 * why), SL_ERR_NOMEM, or the context's error. */
int sl_cuda_train_backend_open(sl_train_backend *out, sl_cuda_precision precision, char *errbuf,
                               size_t errcap);
int sl_cuda_emu_train_backend_open(sl_train_backend *out, sl_cuda_precision precision, char *errbuf,
                                   size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
