/*
 * The trainer's CUDA backend (DESIGN §7): the layers of sluice/nn.h as CUDA kernels over device
 * memory, declared twice from one list (sluice/nn_cuda_api.h):
 *   sl_cuda_*      the real device: libsl_cuda, built when CMake finds a CUDA compiler;
 *                  linear layers use cuBLAS sgemm, everything else the kernels.
 *   sl_cuda_emu_*  the same kernel source compiled as C and run on the CPU by a small emulator
 *                  (every block, every thread, shared memory, barriers as phases):
 *                  libsl_cuda_cpu, always built, so the kernels are tested on machines without
 *                  a GPU against the CPU reference of sluice/nn.h.
 * The kernels are nn_bodies.h's per-value functions called one thread per output value, named
 * after them (conv_fwd_at -> conv_fwd_kernel).
 */
#ifndef SLUICE_NN_CUDA_H
#define SLUICE_NN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/nn.h"
#include "sluice/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_cuda sl_cuda;
typedef struct sl_cuda_emu sl_cuda_emu;

#define SL_CUDA_FN(name) sl_cuda_##name
#define SL_CUDA_CTX      sl_cuda
#include "sluice/nn_cuda_api.h"
#undef SL_CUDA_FN
#undef SL_CUDA_CTX

#define SL_CUDA_FN(name) sl_cuda_emu_##name
#define SL_CUDA_CTX      sl_cuda_emu
#include "sluice/nn_cuda_api.h"
#undef SL_CUDA_FN
#undef SL_CUDA_CTX

#ifdef __cplusplus
}
#endif
#endif
