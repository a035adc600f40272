/* Counted allocation: live byte/block counts, peak, alignment, the failure hook, and the reuse
 * of freed blocks (large-block cache, small-block pools). */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "sluice/alloc.h"

static void test_counts_follow_malloc_and_free(void **state)
{
    const int64_t bytes0 = sl_alloc_live_bytes(), blocks0 = sl_alloc_live_blocks();
    void *a = sl_malloc(100);
    void *b = sl_calloc(10, 30);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(sl_alloc_live_bytes() - bytes0, 400);
    assert_int_equal(sl_alloc_live_blocks() - blocks0, 2);
    a = sl_realloc(a, 1000);
    assert_int_equal(sl_alloc_live_bytes() - bytes0, 1300);
    sl_free(a);
    sl_free(b);
    sl_free(NULL);
    assert_int_equal(sl_alloc_live_bytes(), bytes0);
    assert_int_equal(sl_alloc_live_blocks(), blocks0);
}

static void test_calloc_zeroes_and_checks_overflow(void **state)
{
    uint8_t *p = sl_calloc(64, 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    sl_free(p);
    assert_null(sl_calloc(SIZE_MAX / 2, 4));
}

static void test_aligned_blocks(void **state)
{
    for (size_t align = 16; align <= 4096; align *= 2) {
        void *p = sl_malloc_aligned(align, 33);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xab, 33);
        p = sl_realloc(p, 5000); /* keeps alignment and contents */
        assert_int_equal((uintptr_t)p % align, 0);
        assert_int_equal(((uint8_t *)p)[32], 0xab);
        sl_free(p);
    }
    assert_null(sl_malloc_aligned(48, 10)); /* not a power of two */
}

static void test_peak_tracks_highest_point(void **state)
{
    sl_alloc_reset_peak();
    const int64_t base = sl_alloc_peak_bytes();
    void *p = sl_malloc(1 << 20);
    sl_free(p);
    assert_true(sl_alloc_peak_bytes() >= base + (1 << 20));
    sl_alloc_reset_peak();
    assert_int_equal(sl_alloc_peak_bytes(), sl_alloc_live_bytes());
}

static void test_fail_at_fails_exactly_one_allocation(void **state)
{
    sl_alloc_fail_at(2);
    void *a = sl_malloc(8), *b = sl_malloc(8), *c = sl_malloc(8), *d = sl_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    sl_free(a);
    sl_free(b);
    sl_free(d);
    sl_alloc_fail_at(0);
    assert_null(sl_realloc(NULL, 4));
    sl_alloc_fail_at(-1);
    void *e = sl_malloc(8);
    assert_non_null(e);
    sl_free(e);
}

/* Large blocks (256 KiB and up) come back from a cache of freed ones: counted exactly like
 * others, zeroed by calloc even when reused, aligned as asked, and (outside sanitizer builds,
 * which keep no cache so that use-after-free stays visible) the same block for the same size. */
static void test_large_blocks_are_reused(void **state)
{
    const int64_t live = sl_alloc_live_bytes();
    enum { BIG = 3 << 20 };
    unsigned char *a = sl_malloc_aligned(64, BIG);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal(sl_alloc_live_bytes(), live + BIG);
    memset(a, 0xAB, BIG);
    sl_free(a);
    assert_int_equal(sl_alloc_live_bytes(), live);
    unsigned char *b = sl_calloc(1, BIG);
    assert_non_null(b);
    for (size_t i = 0; i < BIG; i += 4093)
        assert_int_equal(b[i], 0);
    assert_int_equal(b[BIG - 1], 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    assert_ptr_equal(a, b);
#endif
    void *c = sl_realloc(b, BIG + 100); /* grows through a copy, still large */
    assert_non_null(c);
    assert_int_equal(sl_alloc_live_bytes(), live + BIG + 100);
    sl_free(c);
    assert_int_equal(sl_alloc_live_bytes(), live);
}

/* A freed small 64-aligned block waits in the freeing thread's pool and is the next block of
 * its size class handed out; it counts as cached, not live. */
static void test_small_aligned_blocks_are_pooled(void **state)
{
    const int64_t live = sl_alloc_live_bytes(), cached = sl_alloc_cached_bytes();
    unsigned char *a = sl_malloc_aligned(64, 1000);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal(sl_alloc_live_bytes(), live + 1000);
    memset(a, 0x5A, 1000);
    sl_free(a);
    assert_int_equal(sl_alloc_live_bytes(), live);
    unsigned char *b = sl_malloc_aligned(64, 900); /* same class: 1 KiB */
    assert_non_null(b);
    assert_int_equal(sl_alloc_live_bytes(), live + 900);
#if defined(__SANITIZE_ADDRESS__)
    (void)cached;
    assert_int_equal(sl_alloc_cached_bytes(), 0); /* nothing reused under ASan */
#else
    assert_ptr_equal(a, b);
    assert_int_equal(sl_alloc_cached_bytes(), cached);
#endif
    void *c = sl_realloc(b, 5000); /* a pooled block grows through a copy */
    assert_non_null(c);
    assert_int_equal((uintptr_t)c % 64, 0);
    assert_int_equal(sl_alloc_live_bytes(), live + 5000);
    sl_free(c);
    assert_int_equal(sl_alloc_live_bytes(), live);
}

static void test_fail_at_fails_a_pooled_allocation(void **state)
{
    void *a = sl_malloc_aligned(64, 256);
    sl_free(a); /* now pooled (outside ASan): the failure must still win */
    sl_alloc_fail_at(0);
    assert_null(sl_malloc_aligned(64, 256));
    void *b = sl_malloc_aligned(64, 256);
    assert_non_null(b);
    sl_free(b);
}

enum { HANDOFF_BLOCKS = 2000, HANDOFF_ROUNDS = 20 };

typedef struct handoff {
    unsigned char *blocks[HANDOFF_BLOCKS];
} handoff;

/* Checks and frees blocks another thread made: the pattern a pipeline's consumer follows. */
static void *free_handoff(void *arg)
{
    handoff *h = arg;
    for (int i = 0; i < HANDOFF_BLOCKS; i++) {
        const size_t size = 64 + (size_t)(i % 97) * 601;
        for (size_t j = 0; j < size; j += 61)
            if (h->blocks[i][j] != (unsigned char)(i + j))
                return h; /* corrupted: reported by the caller */
        sl_free(h->blocks[i]);
    }
    return NULL;
}

/* Blocks made on one thread and freed on another, over and over, across every size class: no
 * block is handed out twice while live (its pattern would be overwritten), the count returns
 * to where it started, and what the exited threads pooled stays bounded. */
static void test_pooled_blocks_move_between_threads(void **state)
{
    const int64_t live = sl_alloc_live_bytes();
    static handoff h;
    for (int round = 0; round < HANDOFF_ROUNDS; round++) {
        for (int i = 0; i < HANDOFF_BLOCKS; i++) {
            const size_t size = 64 + (size_t)(i % 97) * 601; /* 64 B .. 57.8 KiB */
            h.blocks[i] = sl_malloc_aligned(64, size);
            assert_non_null(h.blocks[i]);
            assert_int_equal((uintptr_t)h.blocks[i] % 64, 0);
            for (size_t j = 0; j < size; j += 61)
                h.blocks[i][j] = (unsigned char)(i + j);
        }
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_handoff, &h), 0);
        void *bad = &h;
        assert_int_equal(pthread_join(t, &bad), 0);
        assert_null(bad);
    }
    assert_int_equal(sl_alloc_live_bytes(), live);
    /* 10 classes x 2 MiB of depots + this thread's magazines (32 blocks of each class) */
    assert_true(sl_alloc_cached_bytes() <= (256 << 20) + 10 * (2 << 20) + 32 * (128 << 10));
}

static void test_strdup(void **state)
{
    char *s = sl_strdup("sluice");
    assert_string_equal(s, "sluice");
    sl_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_follow_malloc_and_free),
        cmocka_unit_test(test_calloc_zeroes_and_checks_overflow),
        cmocka_unit_test(test_aligned_blocks),
        cmocka_unit_test(test_peak_tracks_highest_point),
        cmocka_unit_test(test_fail_at_fails_exactly_one_allocation),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_large_blocks_are_reused),
        cmocka_unit_test(test_small_aligned_blocks_are_pooled),
        cmocka_unit_test(test_fail_at_fails_a_pooled_allocation),
        cmocka_unit_test(test_pooled_blocks_move_between_threads),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
