/*
 * Small tensor buffers made on one thread and released on another (a map worker builds an
 * element, the consumer drops it), through the size-class pools of sl_buffer_create against
 * the same handoff with glibc's posix_memalign/free (what sl_buffer_create did before the
 * pools), interleaved rounds, medians.
 *
 * A producer thread fills a ring of RING pointers; a consumer thread writes one byte of each
 * buffer and releases it. Both spin on the ring (no sleeping), so what is timed is the
 * allocator. Sizes: 8 bytes (a label), 600 bytes (a parsed feature), 24 KiB (a small batch).
 *
 * usage: bench_alloc [--n N] [--rounds R]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/tensor.h"

enum { RING = 256, MAX_ROUNDS = 9 };

typedef struct handoff {
    void *ring[RING];
    _Atomic uint64_t head, tail; /* head: produced, tail: consumed */
    uint64_t n;
    size_t size;
    int pooled; /* 1: sl_buffer_create/release; 0: posix_memalign/free */
} handoff;

static void *consume(void *arg)
{
    handoff *h = arg;
    for (uint64_t i = 0; i < h->n; i++) {
        while (atomic_load_explicit(&h->head, memory_order_acquire) <= i) {
        }
        void *p = h->ring[i % RING];
        if (h->pooled) {
            ((char *)sl_buffer_data(p))[0] = 1;
            sl_buffer_release(p);
        } else {
            ((char *)p)[0] = 1;
            free(p);
        }
        atomic_store_explicit(&h->tail, i + 1, memory_order_release);
    }
    return NULL;
}

/* ns per buffer for n buffers of `size` bytes. */
static double run(uint64_t n, size_t size, int pooled)
{
    static handoff h;
    memset(&h, 0, sizeof h);
    h.n = n;
    h.size = size;
    h.pooled = pooled;
    pthread_t t;
    if (pthread_create(&t, NULL, consume, &h))
        bench_die("bench_alloc", "thread", "cannot start");
    const uint64_t t0 = sl_clock_ns();
    for (uint64_t i = 0; i < n; i++) {
        while (i - atomic_load_explicit(&h.tail, memory_order_acquire) >= RING) {
        }
        void *p = NULL;
        if (pooled) {
            sl_buffer *b;
            if (sl_buffer_create(&b, size))
                bench_die("bench_alloc", "sl_buffer_create", "failed");
            ((char *)sl_buffer_data(b))[size - 1] = 2;
            p = b;
        } else {
            /* sl_buffer_create's layout before the pools: a 64-byte header, 64-aligned */
            if (posix_memalign(&p, 64, 64 + size))
                bench_die("bench_alloc", "posix_memalign", "failed");
            ((char *)p)[64 + size - 1] = 2;
        }
        h.ring[i % RING] = p;
        atomic_store_explicit(&h.head, i + 1, memory_order_release);
    }
    pthread_join(t, NULL);
    return (double)(sl_clock_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    uint64_t n = 2000000;
    int rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--n") == 0)
            n = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else
            bench_die("bench_alloc", "unknown option", argv[i]);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || n == 0)
        bench_die("bench_alloc", "options", "--rounds 1..9, --n > 0");
    printf("$ bench_alloc --n %llu --rounds %d   # buffers made on one thread, released on "
           "another; ns per buffer, median [min-max]\n",
           (unsigned long long)n, rounds);
    static const size_t sizes[] = {8, 600, 24 << 10};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        double pool[MAX_ROUNDS], glibc[MAX_ROUNDS], ratio[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            pool[r] = run(n, sizes[s], 1);
            glibc[r] = run(n, sizes[s], 0);
            ratio[r] = glibc[r] / pool[r];
        }
        const double pm = bench_median(pool, rounds), gm = bench_median(glibc, rounds);
        printf("  %6zu B: pools %6.1f ns [%.1f-%.1f]  glibc %6.1f ns [%.1f-%.1f]  glibc/pools "
               "%.2fx\n",
               sizes[s], pm, pool[0], pool[rounds - 1], gm, glibc[0], glibc[rounds - 1],
               bench_median(ratio, rounds));
    }
    printf("  (pools keep %lld bytes for reuse at the end)\n", (long long)sl_alloc_cached_bytes());
    return 0;
}
