/*
 * The CPU emulator of CUDA launches: runs a kernel (compiled as C, see cuda_compat.h) for every
 * thread of every block of a 1-D grid, sequentially, with per-block shared memory and barriers
 * emulated by phases (all threads finish phase p before any thread starts phase p + 1).
 *
 * State is thread-local, so two CPU threads may emulate launches at the same time; a launch
 * itself runs on the calling thread. Shared memory is filled with 0xff bytes (NaN for floats and
 * doubles) at every block start, so a kernel that reads shared memory it did not write shows up
 * as NaN in the results instead of passing by luck.
 */
#ifndef SL_CUDA_EMU_H
#define SL_CUDA_EMU_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_emu_dim3 {
    unsigned x, y, z;
} sl_emu_dim3;

extern _Thread_local sl_emu_dim3 sl_emu_blockIdx, sl_emu_threadIdx, sl_emu_blockDim, sl_emu_gridDim;
extern _Thread_local void *sl_emu_shared;
/* The phase being run and the number of phases the kernel declared (SL_PHASES); a kernel
 * without SL_PHASES has one. */
extern _Thread_local int sl_emu_phase, sl_emu_nphases;

/* One launch in progress: the loop `while (sl_emu_next(&l)) kernel(args);` visits every
 * (block, phase, thread) in that order. */
typedef struct sl_emu_launch {
    unsigned grid, block;
    size_t smem;
    void *shared;
    unsigned b, t; /* the next block and thread */
    int started;
} sl_emu_launch;

/* 0, SL_ERR_INVAL for an empty grid or block (as cudaErrorInvalidConfiguration), or
 * SL_ERR_NOMEM for the shared memory. */
int sl_emu_begin(sl_emu_launch *l, unsigned grid, unsigned block, size_t smem);
/* Sets the index variables for the next thread to run; 0 when the launch is done. */
int sl_emu_next(sl_emu_launch *l);
void sl_emu_end(sl_emu_launch *l);

/* Launches counted on this thread since it started (tests check kernels really ran). */
uint64_t sl_emu_launch_count(void);

#endif
