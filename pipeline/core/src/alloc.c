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
 *
 * Small 64-aligned blocks (up to 64 KiB: the tensor buffers of labels, shapes, parsed
 * features, small batches) come from size-class pools, one class per power of two from 128
 * bytes. A block is often made on one thread and freed on another (a worker builds an
 * element, the consumer releases it), which glibc answers by returning the block to the
 * maker's arena under its lock, and an aligned request costs glibc a split and a later merge.
 * Each thread keeps a magazine of up to MAG_BLOCKS free blocks per class, touched without a
 * lock; a full or empty magazine trades half of its blocks with the class's depot (a mutex
 * and a bounded stack, DEPOT_BYTES per class); blocks beyond that go back to glibc. A
 * thread's magazines go to the depots when it exits. Pooled free blocks are not counted as
 * live: sl_alloc_live_bytes() still reaches zero when everything is released.
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
static const uint32_t POOL_MAGIC = 0x534c4d50;  /* "SLMP": a pooled small block */

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
    if (h->magic != BLOCK_MAGIC && h->magic != LARGE_MAGIC && h->magic != POOL_MAGIC)
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

/* ---- small-block pools ------------------------------------------------------------------ */

/* AddressSanitizer builds keep no pool, so a use after free of a small buffer is still caught
 * (ThreadSanitizer builds keep it: the pool's locking is what they check). */
#if defined(__SANITIZE_ADDRESS__)
#define SL_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL_POOL 0
#endif
#endif
#ifndef SL_POOL
#define SL_POOL 1
#endif

enum {
    POOL_ALIGN = 64,    /* the alignment pooled blocks have (sl_buffer's) */
    POOL_MIN_SHIFT = 7, /* smallest class: 128 bytes */
    POOL_CLASSES = 10,  /* up to 64 KiB */
    MAG_BLOCKS = 32,    /* per thread and class */
    DEPOT_SLOTS = 512,  /* per class, further bounded by DEPOT_BYTES */
};
static const size_t DEPOT_BYTES = (size_t)2 << 20;
static const size_t POOL_MAX = (size_t)1 << (POOL_MIN_SHIFT + POOL_CLASSES - 1);

typedef struct magazine {
    int n;
    void *raw[MAG_BLOCKS];
} magazine;

static struct depot {
    pthread_mutex_t mu;
    int n;
    void *raw[DEPOT_SLOTS];
} depots[POOL_CLASSES];
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_key;       /* set once a thread has magazines: its exit flushes them */
static _Atomic int64_t pooled_bytes; /* capacity of the free blocks in magazines and depots */
static _Thread_local magazine mags[POOL_CLASSES];
static _Thread_local int mags_registered;

static size_t class_bytes(int k)
{
    return (size_t)1 << (POOL_MIN_SHIFT + k);
}

static int class_of(size_t size)
{
    int k = 0;
    while (class_bytes(k) < size)
        k++;
    return k;
}

static int depot_cap(int k)
{
    const size_t n = DEPOT_BYTES / class_bytes(k);
    return n > DEPOT_SLOTS ? DEPOT_SLOTS : (int)n;
}

/* Moves up to n blocks of magazine m (class k) to the depot; what does not fit is freed. */
static void magazine_spill(magazine *m, int k, int n)
{
    struct depot *d = &depots[k];
    pthread_mutex_lock(&d->mu);
    while (n > 0 && d->n < depot_cap(k)) {
        d->raw[d->n++] = m->raw[--m->n];
        n--;
    }
    pthread_mutex_unlock(&d->mu);
    if (n > 0)
        atomic_fetch_sub_explicit(&pooled_bytes, (int64_t)(n * class_bytes(k)),
                                  memory_order_relaxed);
    while (n-- > 0)
        free(m->raw[--m->n]);
}

static void magazines_flush(void *unused)
{
    (void)unused;
    for (int k = 0; k < POOL_CLASSES; k++)
        magazine_spill(&mags[k], k, mags[k].n);
    mags_registered = 0; /* a block freed by a later destructor registers the thread again */
}

static void pool_init(void)
{
    for (int k = 0; k < POOL_CLASSES; k++)
        pthread_mutex_init(&depots[k].mu, NULL);
    pthread_key_create(&pool_key, magazines_flush);
}

static void *pool_alloc(size_t size)
{
    const int k = class_of(size);
    magazine *m = &mags[k];
    if (!mags_registered) {
        pthread_once(&pool_once, pool_init);
        pthread_setspecific(pool_key, mags);
        mags_registered = 1;
    }
    if (m->n == 0) { /* refill half a magazine from the depot */
        struct depot *d = &depots[k];
        pthread_mutex_lock(&d->mu);
        while (d->n > 0 && m->n < MAG_BLOCKS / 2)
            m->raw[m->n++] = d->raw[--d->n];
        pthread_mutex_unlock(&d->mu);
    }
    void *raw = NULL;
    if (m->n > 0) {
        raw = m->raw[--m->n];
        atomic_fetch_sub_explicit(&pooled_bytes, (int64_t)class_bytes(k), memory_order_relaxed);
    } else if (posix_memalign(&raw, POOL_ALIGN, class_bytes(k) + POOL_ALIGN) != 0)
        return NULL;
    return finish(raw, POOL_ALIGN, size, POOL_MAGIC);
}

static void pool_free(void *raw, size_t size)
{
    const int k = class_of(size);
    magazine *m = &mags[k];
    if (!mags_registered) { /* a thread that frees but never allocated: no magazine to keep */
        pthread_once(&pool_once, pool_init);
        pthread_setspecific(pool_key, mags);
        mags_registered = 1;
    }
    if (m->n == MAG_BLOCKS)
        magazine_spill(m, k, MAG_BLOCKS / 2);
    m->raw[m->n++] = raw;
    atomic_fetch_add_explicit(&pooled_bytes, (int64_t)class_bytes(k), memory_order_relaxed);
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
    if (SL_POOL && align == POOL_ALIGN && size <= POOL_MAX)
        return pool_alloc(size);
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
    const uint32_t magic = h->magic;
    h->magic = 0;
    if (magic == LARGE_MAGIC)
        large_free((char *)ptr - h->offset);
    else if (magic == POOL_MAGIC)
        pool_free((char *)ptr - h->offset, h->size);
    else
        free((char *)ptr - h->offset);
}

void *sl_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return sl_malloc(size);
    block_prefix *h = prefix_of(ptr);
    if (h->offset != PREFIX || h->magic != BLOCK_MAGIC) { /* keep its alignment: copy */
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

int64_t sl_alloc_cached_bytes(void)
{
    pthread_mutex_lock(&cache_mu);
    const int64_t large = (int64_t)cached_bytes;
    pthread_mutex_unlock(&cache_mu);
    return large + atomic_load(&pooled_bytes);
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
