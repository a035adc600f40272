/*
 * The few CUDA constructs the kernel source (nn_kernels.inc) uses, spelled so that one source
 * compiles two ways:
 *   - under nvcc (__CUDACC__): the real thing, kernels launched with <<<grid, block, smem,
 * stream>>>;
 *   - as plain C11 for the CPU emulator (emu.h): `blockIdx`, `threadIdx`, `blockDim`, `gridDim`
 *     are thread-local variables the emulator's loop sets before it calls the kernel as an
 *     ordinary function, once per thread of every block.
 *
 * Kernels stick to a subset both compilers accept: 1-D grids, no C++ features, no designated
 * initialisers, no dynamic allocation, shared memory only through SL_SHARED_DYN and barriers
 * only through SL_PHASES. SL_PHASES(np) { if (sl_phase == 0) ...; else ... } runs the body np
 * times with a __syncthreads() between runs on the device; the emulator instead runs phase 0 for
 * every thread of the block, then phase 1 for every thread, and so on, which is the same
 * ordering guarantee a barrier gives. Locals do not survive from one phase to the next in the
 * emulator, so anything a later phase needs goes through shared memory (on the device this is
 * merely redundant).
 */
#ifndef SL_CUDA_COMPAT_H
#define SL_CUDA_COMPAT_H

#include <stdint.h>

#ifdef __CUDACC__

#define SL_GLOBAL __global__
#define SL_SHARED_DYN(type, name)                       \
    extern __shared__ unsigned long long sl_smem_raw[]; \
    type *name = (type *)sl_smem_raw
#define SL_PHASES(np) for (int sl_phase = 0; sl_phase < (np); __syncthreads(), sl_phase++)

#else /* the CPU emulator */

#include "emu.h"

#define SL_GLOBAL                 static
#define blockIdx                  sl_emu_blockIdx
#define threadIdx                 sl_emu_threadIdx
#define blockDim                  sl_emu_blockDim
#define gridDim                   sl_emu_gridDim
#define SL_SHARED_DYN(type, name) type *name = (type *)sl_emu_shared
/* Runs the body once, for the phase the emulator is in, and tells it how many there are. */
#define SL_PHASES(np)                                                                            \
    for (int sl_phase = (sl_emu_nphases = (np), sl_emu_phase), sl_phase_once = 1; sl_phase_once; \
         sl_phase_once = 0)

#endif

/* The global index of this thread in a 1-D launch. */
#define SL_GID() ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)

#endif
