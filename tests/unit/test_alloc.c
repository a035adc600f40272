/* Counted allocation: live byte/block counts, peak, alignment, and the failure hook. */
#include "testutil.h"

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
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
