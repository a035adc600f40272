/*
 * The training loop's CUDA backend over the CPU emulator (sl_cuda_emu_train_backend_open,
 * sluice/cuda_loop.h): loop_backend.inc compiled with SL_CUDA_FN = sl_cuda_emu_. It is how tests
 * and CI, which have no GPU, run the loop's device wiring (`sluice train --device cuda-emu`).
 *
 * Threading: one thread per backend (the emulator's state is thread-local).
 */
#include <stdio.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/cuda_loop.h"
#include "sluice/status.h"

#define SL_CUDA_FN(name) sl_cuda_emu_##name
#define SL_CUDA_CTX      sl_cuda_emu
#define LB_DEVICE        "cuda-emu"
#include "loop_backend.inc"
