/*
 * The training loop's CUDA backend on the device (sl_cuda_train_backend_open, sluice/cuda_loop.h):
 * loop_backend.inc compiled as C with SL_CUDA_FN = sl_cuda_, calling libsl_cuda's host API
 * (nothing here is device code). `sluice train --device cuda` uses it.
 *
 * Threading: one thread per backend (the CUDA context's streams belong to its handle).
 */
#include <stdio.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/cuda_loop.h"
#include "sluice/status.h"

#define SL_CUDA_FN(name) sl_cuda_##name
#define SL_CUDA_CTX      sl_cuda
#define LB_DEVICE        "cuda"
#include "loop_backend.inc"
