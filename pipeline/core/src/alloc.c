/*
 * Counted allocation. Each block carries a 16-byte prefix {size, offset-to-raw-pointer, magic}
 * just below the pointer handed out, so sl_free knows how much to uncount and where the
 * underlying malloc block starts (aligned blocks sit past some padding). The counters are
 * relaxed atomics: they are statistics, not synchronisation.
 *
 * Large blocks (256 KiB and up: decoded images, batches) are kept in a small cache when freed
 * and handed out again for a request of about the same size. glibc maps blocks this large
 * with mmap and unmaps them on free, so a pipeline that builds a 38 MB batch per step would
 * otherwise fault in and zero every page of every batch (measured: 42% of the CPU in the
 * kernel), and blocks freed on another thread than the one that made them churn glibc's
 * per-thread heaps. The cache holds at most CACHE_BYTES; a large block's raw capacity is kept
 * in its first bytes, below the prefix. The cache's mutex is taken only for large blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/alloc.h"

enum { PREFIX = 16, MAX_ALIGN = 4096 };
static const uint32_t BLOCK_MAGIC = 0x534c4d41; /* "SLMA" */
static const uint32_t LARGE_MAGIC = 0x534c4d4c; /* "SLML": a large block, see below */

enum {
    LARGE_MIN = 256 << 10, /* blocks this large go through the cache */
    LARGE_OFFSET = 64,     /* user pointer - raw pointer: 64-aligned, capacity at raw[0] */
    CACHE_SLOTS = 512,
};
static const size_t CACHE_BYTES = (size_t)256 << 20;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *raw;
    size_t cap;
} cache[CACHE_SLOTS];       /* guarded by cache_mu */
static int ncached;         /* guarded by cache_mu */
static size_t cached_bytes; /* guarded by cache_mu */

typedef struct block_prefix {
    uint64_t size;
    uint32_t offset; /* user pointer - raw pointer */
    uint32_t magic;
} block_prefix;

static _Atomic int64_t live_bytes;
static _Atomic int64_t live_blocks;
static _Atomic int64_t peak_bytes;
static _Atomic int64_t fail_countdown = -1;

static int should_fail(void)
{
    int64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (n >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
            return n == 0;
    }
    return 0;
}

static void count(int64_t bytes, int64_t blocks)
{
    const int64_t now = atomic_fetch_add_explicit(&live_bytes, bytes, memory_order_relaxed) + bytes;
    atomic_fetch_add_explicit(&live_blocks, blocks, memory_order_relaxed);
    int64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
}

static block_prefix *prefix_of(void *p)
{
    block_prefix *h = (block_prefix *)((char *)p - PREFIX);
    if (h->magic != BLOCK_MAGIC && h->magic != LARGE_MAGIC)
        abort(); /* not from sl_malloc, or freed twice: fail loudly rather than corrupt */
    return h;
}

static void *finish(void *raw, size_t offset, size_t size, uint32_t magic)
{
    char *user = (char *)raw + offset;
    block_prefix *h = (block_prefix *)(user - PREFIX);
    h->size = size;
    h->offset = (uint32_t)offset;
    h->magic = magic;
    count((int64_t)size, 1);
    return user;
}

/* A cached block of capacity in [need, need + need/4] (the smallest), or a new one. */
static void *large_alloc(size_t size)
{
    const size_t need = size + LARGE_OFFSET;
    void *raw = NULL;
    pthread_mutex_lock(&cache_mu);
    int best = -1;
    for (int i = 0; i < ncached; i++)
        if (cache[i].cap >= need && cache[i].cap - need <= need / 4 &&
            (best < 0 || cache[i].cap < cache[best].cap))
            best = i;
    if (best >= 0) {
        raw = cache[best].raw;
        cached_bytes -= cache[best].cap;
        cache[best] = cache[--ncached];
    }
    pthread_mutex_unlock(&cache_mu);
    if (!raw) {
        if (posix_memalign(&raw, LARGE_OFFSET, need) != 0)
            return NULL;
        *(size_t *)raw = need;
    }
    return finish(raw, LARGE_OFFSET, size, LARGE_MAGIC);
}

/* Sanitizer builds keep no cache, so a use after free of a large block is still caught. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SL_LARGE_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SL_LARGE_CACHE 0
#endif
#endif
#ifndef SL_LARGE_CACHE
#define SL_LARGE_CACHE 1
#endif

static void large_free(void *raw)
{
    const size_t cap = *(size_t *)raw;
    pthread_mutex_lock(&cache_mu);
    if (SL_LARGE_CACHE && cap <= CACHE_BYTES - cached_bytes && ncached < CACHE_SLOTS) {
        cache[ncached].raw = raw;
        cache[ncached++].cap = cap;
        cached_bytes += cap;
        raw = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    free(raw);
}

void *sl_malloc_aligned(size_t align, size_t size)
{
    if (align < PREFIX)
        align = PREFIX;
    if ((align & (align - 1)) || align > MAX_ALIGN || size > SIZE_MAX - 2 * MAX_ALIGN)
        return NULL;
    if (should_fail())
        return NULL;
    if (size >= LARGE_MIN && align <= LARGE_OFFSET)
        return large_alloc(size);
    /* The prefix must fit below the aligned pointer: reserve `align` bytes in front. */
    void *raw = NULL;
    if (align == PREFIX) {
        raw = malloc(size + PREFIX);
    } else if (posix_memalign(&raw, align, size + align) != 0) {
        raw = NULL;
    }
    if (!raw)
        return NULL;
    return finish(raw, align == PREFIX ? PREFIX : align, size, BLOCK_MAGIC);
}

void *sl_malloc(size_t size)
{
    return sl_malloc_aligned(PREFIX, size);
}

void *sl_calloc(size_t count_, size_t size)
{
    if (size && count_ > SIZE_MAX / size)
        return NULL;
    void *p = sl_malloc(count_ * size);
    if (p)
        memset(p, 0, count_ * size);
    return p;
}

void sl_free(void *ptr)
{
    if (!ptr)
        return;
    block_prefix *h = prefix_of(ptr);
    count(-(int64_t)h->size, -1);
    const int large = h->magic == LARGE_MAGIC;
    h->magic = 0;
    if (large)
        large_free((char *)ptr - h->offset);
    else
        free((char *)ptr - h->offset);
}

void *sl_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return sl_malloc(size);
    block_prefix *h = prefix_of(ptr);
    if (h->offset != PREFIX || h->magic == LARGE_MAGIC) { /* keep its alignment: copy */
        void *n = sl_malloc_aligned(h->offset, size);
        if (!n)
            return NULL;
        memcpy(n, ptr, SL_MIN(size, h->size));
        sl_free(ptr);
        return n;
    }
    if (size > SIZE_MAX - PREFIX || should_fail())
        return NULL;
    const uint64_t old = h->size;
    char *raw = realloc((char *)ptr - PREFIX, size + PREFIX);
    if (!raw)
        return NULL;
    h = (block_prefix *)raw;
    h->size = size;
    count((int64_t)size - (int64_t)old, 0);
    return raw + PREFIX;
}

char *sl_strdup(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = sl_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int64_t sl_alloc_live_bytes(void)
{
    return atomic_load(&live_bytes);
}

int64_t sl_alloc_live_blocks(void)
{
    return atomic_load(&live_blocks);
}

int64_t sl_alloc_peak_bytes(void)
{
    return atomic_load(&peak_bytes);
}

void sl_alloc_reset_peak(void)
{
    atomic_store(&peak_bytes, atomic_load(&live_bytes));
}

void sl_alloc_fail_at(int64_t n)
{
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}
