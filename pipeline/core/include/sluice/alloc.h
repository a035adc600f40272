/*
 * Counted allocation. Every byte sluice allocates goes through these functions, so tests can
 * assert that a closed object returned everything (sl_alloc_live_bytes() back to its start)
 * and can make the Nth allocation fail to exercise error paths.
 *
 * The counters are process-wide atomics (the one piece of global state in sluice: it describes
 * the process, not any one object). sl_free(NULL) does nothing.
 */
#ifndef SLUICE_ALLOC_H
#define SLUICE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

#ifdef __cplusplus
extern "C" {
#endif

void *sl_malloc(size_t size);
void *sl_calloc(size_t count, size_t size);
void *sl_realloc(void *ptr, size_t size);
/* align: a power of two, at most 4096. Freed with sl_free like any other block. */
void *sl_malloc_aligned(size_t align, size_t size);
void sl_free(void *ptr);
char *sl_strdup(const char *s);

/* Bytes currently allocated and not freed, and the number of live blocks. */
int64_t sl_alloc_live_bytes(void);
int64_t sl_alloc_live_blocks(void);
/* Capacity of freed blocks kept for reuse (the large-block cache and the small-block pools
 * of 64-aligned blocks, see alloc.c); not part of sl_alloc_live_bytes(). Bounded: at most
 * 256 MiB of large blocks, 2 MiB per small size class in the shared depots, and 32 blocks
 * per size class per thread. Always 0 in AddressSanitizer builds (nothing is reused, so a use
 * after free is caught). */
int64_t sl_alloc_cached_bytes(void);
/* Highest value sl_alloc_live_bytes() has reached since the last reset. */
int64_t sl_alloc_peak_bytes(void);
void sl_alloc_reset_peak(void);

/* Test hook: the allocation `n` calls from now (0 = the next one) fails, and only that one.
 * n < 0 disarms. */
void sl_alloc_fail_at(int64_t n);

#ifdef __cplusplus
}
#endif
#endif
