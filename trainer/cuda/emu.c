/*
 * The CPU emulator's launch loop (emu.h). Owns the thread-local index variables the emulated
 * kernels read and the shared memory of the block being run. Order of a launch: block 0 phase 0
 * threads 0..B-1, block 0 phase 1 threads 0..B-1, ..., then block 1. The number of phases is
 * what the kernel declared while running phase 0 of the block (SL_PHASES evaluates it in every
 * thread; it must not depend on the thread, as on the device where a barrier in divergent code
 * is undefined).
 *
 * Threading: all state is _Thread_local; launches on different threads are independent.
 */
#include "emu.h"

#include <string.h>

#include "sluice/alloc.h"
#include "sluice/status.h"

_Thread_local sl_emu_dim3 sl_emu_blockIdx, sl_emu_threadIdx, sl_emu_blockDim, sl_emu_gridDim;
_Thread_local void *sl_emu_shared;
_Thread_local int sl_emu_phase, sl_emu_nphases;
static _Thread_local uint64_t launches;

int sl_emu_begin(sl_emu_launch *l, unsigned grid, unsigned block, size_t smem)
{
    memset(l, 0, sizeof(*l));
    if (grid == 0 || block == 0 || block > 1024)
        return SL_ERR_INVAL;
    l->grid = grid;
    l->block = block;
    l->smem = smem;
    if (smem) {
        l->shared = sl_malloc(smem);
        if (!l->shared)
            return SL_ERR_NOMEM;
    }
    launches++;
    return 0;
}

static void block_start(sl_emu_launch *l)
{
    if (l->shared)
        memset(l->shared, 0xff, l->smem);
    sl_emu_phase = 0;
    sl_emu_nphases = 1;
}

int sl_emu_next(sl_emu_launch *l)
{
    if (!l->started) {
        l->started = 1;
        block_start(l);
    } else if (++l->t == l->block) {
        l->t = 0;
        if (++sl_emu_phase >= sl_emu_nphases) {
            if (++l->b == l->grid)
                return 0;
            block_start(l);
        }
    }
    sl_emu_gridDim = (sl_emu_dim3){l->grid, 1, 1};
    sl_emu_blockDim = (sl_emu_dim3){l->block, 1, 1};
    sl_emu_blockIdx = (sl_emu_dim3){l->b, 0, 0};
    sl_emu_threadIdx = (sl_emu_dim3){l->t, 0, 0};
    sl_emu_shared = l->shared;
    return 1;
}

void sl_emu_end(sl_emu_launch *l)
{
    sl_free(l->shared);
    l->shared = NULL;
    sl_emu_shared = NULL;
}

uint64_t sl_emu_launch_count(void)
{
    return launches;
}
