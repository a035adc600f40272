/* The engine's transforms on range sources, table-driven: each case builds a pipeline and
 * compares the whole element stream, rendered as text, with the expected text. Then the
 * properties that matter beyond a table: determinism across thread counts with functions that
 * sleep random times, the error policies, cardinality, and closing mid-stream without leaks. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

#include "sluice/clock.h"
#include "sluice/pipeline.h"

/* ---- rendering a stream as text -------------------------------------------------------- */

/* Nested brackets by shape: a (2, 2) tensor prints [[0,1],[2,3]]. */
static void render_dims(const sl_tensor *t, int dim, int64_t *flat, char *buf, size_t cap,
                        size_t *n)
{
    if (dim == t->rank) {
        *n += (size_t)snprintf(
            buf + *n, cap - *n, "%lld",
            (long long)sl_dtype_load_i64(t->dtype, (const uint8_t *)t->data +
                                                       (size_t)*flat * sl_dtype_size(t->dtype)));
        (*flat)++;
        return;
    }
    *n += (size_t)snprintf(buf + *n, cap - *n, "[");
    for (int64_t i = 0; i < t->shape[dim] && *n < cap; i++) {
        if (i)
            *n += (size_t)snprintf(buf + *n, cap - *n, ",");
        render_dims(t, dim + 1, flat, buf, cap, n);
    }
    if (*n < cap)
        *n += (size_t)snprintf(buf + *n, cap - *n, "]");
}

static void render_tensor(const sl_tensor *t, char *buf, size_t cap, size_t *n)
{
    int64_t flat = 0;
    render_dims(t, 0, &flat, buf, cap, n);
}

/* Elements separated by spaces; a one-tensor element prints its values, a tuple "(a,b)". */
static int render(sl_dataset *ds, const sl_iter_options *o, char *buf, size_t cap)
{
    sl_iter *it;
    int rc = sl_iter_open(&it, ds, o);
    size_t n = 0;
    buf[0] = '\0';
    sl_element e;
    while (rc == 0 && (rc = sl_iter_next(it, &e)) == 0) {
        if (n && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, " ");
        if (e.count > 1 && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "(");
        for (int k = 0; k < e.count && n < cap; k++) {
            if (k)
                n += (size_t)snprintf(buf + n, cap - n, ",");
            render_tensor(&e.tensors[k], buf, cap, &n);
        }
        if (e.count > 1 && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, ")");
        sl_element_release(&e);
    }
    sl_iter_close(it);
    return rc == SL_EOF ? 0 : rc;
}

/* ---- map and filter functions ------------------------------------------------------------ */

static int64_t value_of(const sl_element *e)
{
    return *(const int64_t *)sl_element_get(e, "value")->data;
}

static int set_value(sl_element *out, int64_t v)
{
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = v;
    return sl_element_push(out, "value", &t);
}

static int times_ten(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    const int64_t v = value_of(in);
    sl_element_release(in);
    return set_value(out, v * 10);
}

/* Sleeps 0-2 ms drawn from the element's RNG, so completion order differs run to run, then
 * returns value * 1000 + a draw from the RNG (which must be the same for every thread count). */
static int sleepy(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                  size_t errcap)
{
    sl_rng r = c->rng;
    sl_clock_sleep_ns(sl_rng_below(&r, 2000000));
    const int64_t v = value_of(in);
    sl_element_release(in);
    return set_value(out, v * 1000 + (int64_t)sl_rng_below(&r, 1000));
}

static int fail_on_3(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    const int64_t v = value_of(in);
    sl_element_release(in);
    if (v == 3) {
        snprintf(err, errcap, "value 3 is not welcome");
        return SL_ERR_INVAL;
    }
    return set_value(out, v);
}

static int is_even(void *user, sl_map_ctx *c, const sl_element *e, char *err, size_t cap)
{
    return value_of(e) % 2 == 0;
}

static int never(void *user, sl_map_ctx *c, const sl_element *e, char *err, size_t cap)
{
    return 0;
}

static const sl_map_def TIMES_TEN = {"times_ten", times_ten, NULL, NULL};
static const sl_map_def SLEEPY = {"sleepy", sleepy, NULL, NULL};
static const sl_map_def FAIL_ON_3 = {"fail_on_3", fail_on_3, NULL, NULL};

/* ---- the table ---------------------------------------------------------------------------- */

/* Each builder turns a fresh range into a pipeline; `ds` is consumed (released). */
typedef sl_dataset *(*builder)(sl_dataset *ds);

#define STEP(call)                 \
    do {                           \
        sl_dataset *next_;         \
        assert_int_equal(call, 0); \
        sl_dataset_release(ds);    \
        ds = next_;                \
    } while (0)

static sl_dataset *b_identity(sl_dataset *ds)
{
    return ds;
}
static sl_dataset *b_batch2(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 2, 0));
    return ds;
}
static sl_dataset *b_batch2_drop(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 2, 1));
    return ds;
}
static sl_dataset *b_batch10(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 10, 0));
    return ds;
}
static sl_dataset *b_batch10_drop(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 10, 1));
    return ds;
}
static sl_dataset *b_take0(sl_dataset *ds)
{
    STEP(sl_dataset_take(&next_, ds, 0));
    return ds;
}
static sl_dataset *b_take3(sl_dataset *ds)
{
    STEP(sl_dataset_take(&next_, ds, 3));
    return ds;
}
static sl_dataset *b_take99(sl_dataset *ds)
{
    STEP(sl_dataset_take(&next_, ds, 99));
    return ds;
}
static sl_dataset *b_skip2(sl_dataset *ds)
{
    STEP(sl_dataset_skip(&next_, ds, 2));
    return ds;
}
static sl_dataset *b_skip99(sl_dataset *ds)
{
    STEP(sl_dataset_skip(&next_, ds, 99));
    return ds;
}
static sl_dataset *b_repeat0(sl_dataset *ds)
{
    STEP(sl_dataset_repeat(&next_, ds, 0));
    return ds;
}
static sl_dataset *b_repeat2(sl_dataset *ds)
{
    STEP(sl_dataset_repeat(&next_, ds, 2));
    return ds;
}
static sl_dataset *b_repeat_forever_take7(sl_dataset *ds)
{
    STEP(sl_dataset_repeat(&next_, ds, -1));
    STEP(sl_dataset_take(&next_, ds, 7));
    return ds;
}
static sl_dataset *b_shard3_1(sl_dataset *ds)
{
    STEP(sl_dataset_shard(&next_, ds, 3, 1));
    return ds;
}
static sl_dataset *b_shard8_6(sl_dataset *ds)
{
    STEP(sl_dataset_shard(&next_, ds, 8, 6));
    return ds;
}
static sl_dataset *b_filter_even(sl_dataset *ds)
{
    STEP(sl_dataset_filter(&next_, ds, is_even, NULL, "is_even"));
    return ds;
}
static sl_dataset *b_filter_never(sl_dataset *ds)
{
    STEP(sl_dataset_filter(&next_, ds, never, NULL, "never"));
    return ds;
}
static sl_dataset *b_map(sl_dataset *ds)
{
    STEP(sl_dataset_map(&next_, ds, &TIMES_TEN, NULL));
    return ds;
}
static sl_dataset *b_map_parallel(sl_dataset *ds)
{
    const sl_map_options o = {.parallel = 4};
    STEP(sl_dataset_map(&next_, ds, &TIMES_TEN, &o));
    return ds;
}
static sl_dataset *b_batch3_unbatch(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 3, 0));
    STEP(sl_dataset_unbatch(&next_, ds));
    return ds;
}
static sl_dataset *b_enumerate(sl_dataset *ds)
{
    STEP(sl_dataset_enumerate(&next_, ds, 100));
    return ds;
}
static sl_dataset *b_prefetch(sl_dataset *ds)
{
    STEP(sl_dataset_prefetch(&next_, ds, 2));
    return ds;
}
static sl_dataset *b_skip1_take2_repeat2(sl_dataset *ds)
{
    STEP(sl_dataset_skip(&next_, ds, 1));
    STEP(sl_dataset_take(&next_, ds, 2));
    STEP(sl_dataset_repeat(&next_, ds, 2));
    return ds;
}
static sl_dataset *b_batch2_batch2(sl_dataset *ds)
{
    STEP(sl_dataset_batch(&next_, ds, 2, 1));
    STEP(sl_dataset_batch(&next_, ds, 2, 0));
    return ds;
}

typedef struct row {
    const char *name;
    int64_t start, stop, step;
    builder build;
    const char *want;
    int64_t cardinality;
} row;

static const row table[] = {
    {"range", 0, 5, 1, b_identity, "0 1 2 3 4", 5},
    {"range step -2", 5, 0, -2, b_identity, "5 3 1", 3},
    {"empty range", 3, 3, 1, b_identity, "", 0},
    {"batch", 0, 5, 1, b_batch2, "[0,1] [2,3] [4]", 3},
    {"batch drop_remainder", 0, 5, 1, b_batch2_drop, "[0,1] [2,3]", 2},
    {"batch larger than input", 0, 5, 1, b_batch10, "[0,1,2,3,4]", 1},
    {"batch larger than input, drop", 0, 5, 1, b_batch10_drop, "", 0},
    {"batch of empty input", 0, 0, 1, b_batch2, "", 0},
    {"batch of batches", 0, 9, 1, b_batch2_batch2, "[[0,1],[2,3]] [[4,5],[6,7]]", 2},
    {"take(0)", 0, 5, 1, b_take0, "", 0},
    {"take(3)", 0, 5, 1, b_take3, "0 1 2", 3},
    {"take more than input", 0, 5, 1, b_take99, "0 1 2 3 4", 5},
    {"skip(2)", 0, 5, 1, b_skip2, "2 3 4", 3},
    {"skip everything", 0, 5, 1, b_skip99, "", 0},
    {"repeat(0)", 0, 3, 1, b_repeat0, "", 0},
    {"repeat(2)", 0, 3, 1, b_repeat2, "0 1 2 0 1 2", 6},
    {"repeat forever, take(7)", 0, 3, 1, b_repeat_forever_take7, "0 1 2 0 1 2 0", 7},
    {"repeat of an empty input", 0, 0, 1, b_repeat_forever_take7, "", 0},
    {"shard(3, 1)", 0, 10, 1, b_shard3_1, "1 4 7", 3},
    {"more shards than elements", 0, 3, 1, b_shard8_6, "", 0},
    {"filter", 0, 6, 1, b_filter_even, "0 2 4", SL_CARDINALITY_UNKNOWN},
    {"filter dropping everything", 0, 6, 1, b_filter_never, "", SL_CARDINALITY_UNKNOWN},
    {"map", 0, 4, 1, b_map, "0 10 20 30", 4},
    {"parallel map", 0, 40, 1, b_map_parallel,
     "0 10 20 30 40 50 60 70 80 90 100 110 120 130 140 150 160 170 180 190 200 210 220 230 240 "
     "250 260 270 280 290 300 310 320 330 340 350 360 370 380 390",
     40},
    {"parallel map of empty input", 0, 0, 1, b_map_parallel, "", 0},
    {"batch then unbatch", 0, 7, 1, b_batch3_unbatch, "0 1 2 3 4 5 6", SL_CARDINALITY_UNKNOWN},
    {"enumerate", 7, 10, 1, b_enumerate, "(100,7) (101,8) (102,9)", 3},
    {"prefetch", 0, 5, 1, b_prefetch, "0 1 2 3 4", 5},
    {"prefetch of empty input", 0, 0, 1, b_prefetch, "", 0},
    {"skip, take, repeat", 0, 5, 1, b_skip1_take2_repeat2, "1 2 1 2", 4},
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const row *r = &table[i];
        sl_dataset *ds;
        assert_int_equal(sl_dataset_range(&ds, r->start, r->stop, r->step), 0);
        ds = r->build(ds);
        char got[2048];
        for (int threads = 1; threads <= 3; threads += 2) {
            const sl_iter_options o = {.threads = threads};
            const int rc = render(ds, &o, got, sizeof got);
            if (rc || strcmp(got, r->want)) {
                char text[512];
                sl_dataset_print(ds, text, sizeof text);
                fail_msg("%s (%s, %d threads): rc %d, got \"%s\", want \"%s\"", r->name, text,
                         threads, rc, got, r->want);
            }
        }
        assert_int_equal(sl_dataset_cardinality(ds), r->cardinality);
        sl_dataset_release(ds);
    }
}

static void test_canonical_text(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 1000, 1), 0);
    STEP(sl_dataset_shuffle(&next_, ds, 100, 1, 1));
    STEP(sl_dataset_batch(&next_, ds, 10, 1));
    STEP(sl_dataset_prefetch(&next_, ds, SL_PARALLEL_AUTO));
    char text[256];
    sl_dataset_print(ds, text, sizeof text);
    assert_string_equal(text, "range(0, 1000) | shuffle(100, seed=1) | batch(10, "
                              "drop_remainder=true) | prefetch(auto)");
    sl_dataset_release(ds);
}

/* ---- shuffle ------------------------------------------------------------------------------- */

static sl_dataset *shuffled(int64_t n, int64_t buffer, uint64_t seed, int64_t epochs)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, n, 1), 0);
    STEP(sl_dataset_shuffle(&next_, ds, buffer, seed, 1));
    if (epochs > 1)
        STEP(sl_dataset_repeat(&next_, ds, epochs));
    return ds;
}

static void test_shuffle_is_a_permutation_and_deterministic(void **state)
{
    char a[8192], b[8192], c[8192];
    sl_dataset *ds = shuffled(500, 64, 7, 1);
    assert_int_equal(render(ds, NULL, a, sizeof a), 0);
    assert_int_equal(render(ds, NULL, b, sizeof b), 0);
    assert_string_equal(a, b);
    sl_dataset_release(ds);
    ds = shuffled(500, 64, 8, 1);
    assert_int_equal(render(ds, NULL, c, sizeof c), 0);
    assert_string_not_equal(a, c);
    sl_dataset_release(ds);
    /* every value exactly once */
    int seen[500] = {0};
    for (char *p = a; *p;) {
        char *end;
        const long v = strtol(p, &end, 10);
        assert_true(v >= 0 && v < 500);
        seen[v]++;
        p = *end ? end + 1 : end;
    }
    for (int i = 0; i < 500; i++)
        assert_int_equal(seen[i], 1);
}

static void test_shuffle_reshuffles_each_epoch(void **state)
{
    char a[4096];
    sl_dataset *ds = shuffled(100, 100, 3, 2);
    assert_int_equal(render(ds, NULL, a, sizeof a), 0);
    sl_dataset_release(ds);
    /* The two halves are different orders of the same 100 values. */
    char *mid = a;
    for (int spaces = 0; spaces < 100; mid++)
        spaces += *mid == ' ';
    mid[-1] = '\0';
    assert_string_not_equal(a, mid);
}

static void test_shuffle_buffer_one_keeps_order(void **state)
{
    char a[256];
    sl_dataset *ds = shuffled(6, 1, 5, 1);
    assert_int_equal(render(ds, NULL, a, sizeof a), 0);
    assert_string_equal(a, "0 1 2 3 4 5");
    sl_dataset_release(ds);
}

/* ---- global_shuffle -------------------------------------------------------------------------- */

static void test_global_shuffle_huge_range_small_memory(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, INT64_C(1) << 40, 1), 0);
    STEP(sl_dataset_global_shuffle(&next_, ds, 3, 1));
    const int64_t before = sl_alloc_live_bytes();
    sl_alloc_reset_peak();
    sl_iter *it;
    const sl_iter_options o = {.threads = 1};
    assert_int_equal(sl_iter_open(&it, ds, &o), 0);
    sl_element e;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_true(value_of(&e) >= 0 && value_of(&e) < (INT64_C(1) << 40));
        sl_element_release(&e);
    }
    const int64_t used = sl_alloc_peak_bytes() - before;
    sl_iter_close(it);
    sl_dataset_release(ds);
    if (used >= 4096)
        fail_msg("global_shuffle over range(2^40) allocated %lld bytes", (long long)used);
}

static void test_global_shuffle_every_index_once_per_epoch(void **state)
{
    const int64_t sizes[] = {1, 2, 3, 1000003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int64_t n = sizes[k];
        sl_dataset *ds;
        assert_int_equal(sl_dataset_range(&ds, 0, n, 1), 0);
        STEP(sl_dataset_global_shuffle(&next_, ds, 5, 1));
        STEP(sl_dataset_repeat(&next_, ds, 2));
        assert_int_equal(sl_dataset_cardinality(ds), 2 * n);
        sl_iter *it;
        assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
        uint8_t *seen = calloc((size_t)n, 1);
        int64_t *first = malloc((size_t)n * sizeof *first);
        int64_t differ = 0;
        for (int epoch = 0; epoch < 2; epoch++) {
            memset(seen, 0, (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                sl_element e;
                assert_int_equal(sl_iter_next(it, &e), 0);
                const int64_t v = value_of(&e);
                sl_element_release(&e);
                assert_true(v >= 0 && v < n);
                assert_int_equal(seen[v], 0);
                seen[v] = 1;
                if (epoch == 0)
                    first[i] = v;
                else
                    differ += first[i] != v;
            }
        }
        sl_element e;
        assert_int_equal(sl_iter_next(it, &e), SL_EOF);
        if (n > 100)
            assert_true(differ > n / 2); /* the second epoch is another order */
        free(seen);
        free(first);
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
}

static void test_global_shuffle_needs_random_access(void **state)
{
    sl_dataset *ds, *g;
    assert_int_equal(sl_dataset_range(&ds, 0, 10, 1), 0);
    STEP(sl_dataset_filter(&next_, ds, is_even, NULL, "is_even"));
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 1, 1), SL_ERR_UNSUPPORTED);
    sl_dataset_release(ds);
}

static void test_global_shuffle_seeds_and_threads(void **state)
{
    char a[4096], b[4096];
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 300, 1), 0);
    STEP(sl_dataset_global_shuffle(&next_, ds, 0, 1)); /* seed from the pipeline */
    const sl_map_options mo = {.parallel = 3};
    STEP(sl_dataset_map(&next_, ds, &TIMES_TEN, &mo));
    const sl_iter_options o1 = {.threads = 1, .seed = 4}, o8 = {.threads = 8, .seed = 4},
                          o5 = {.threads = 2, .seed = 5};
    assert_int_equal(render(ds, &o1, a, sizeof a), 0);
    assert_int_equal(render(ds, &o8, b, sizeof b), 0);
    assert_string_equal(a, b);
    assert_int_equal(render(ds, &o5, b, sizeof b), 0);
    assert_string_not_equal(a, b);
    char text[256];
    sl_dataset_print(ds, text, sizeof text);
    assert_string_equal(text, "range(0, 300) | global_shuffle | map(times_ten, parallel=3)");
    sl_dataset_release(ds);
}

/* ---- determinism across thread counts ----------------------------------------------------- */

static void test_same_output_for_1_2_8_threads(void **state)
{
    char want[16384], got[16384];
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 200, 1), 0);
    STEP(sl_dataset_shuffle(&next_, ds, 50, 11, 1));
    const sl_map_options o = {.parallel = SL_PARALLEL_AUTO};
    STEP(sl_dataset_map(&next_, ds, &SLEEPY, &o));
    STEP(sl_dataset_batch(&next_, ds, 7, 0));
    STEP(sl_dataset_prefetch(&next_, ds, 3));
    const int threads[] = {1, 2, 8};
    for (int i = 0; i < 3; i++) {
        const sl_iter_options io = {.threads = threads[i], .seed = 99};
        assert_int_equal(render(ds, &io, i ? got : want, sizeof want), 0);
        if (i)
            assert_string_equal(got, want);
    }
    /* A different pipeline seed changes the map's draws. */
    const sl_iter_options other = {.threads = 2, .seed = 100};
    assert_int_equal(render(ds, &other, got, sizeof got), 0);
    assert_string_not_equal(got, want);
    sl_dataset_release(ds);
}

static void test_unordered_map_yields_every_element(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 64, 1), 0);
    const sl_map_options o = {.parallel = 8, .unordered = 1};
    STEP(sl_dataset_map(&next_, ds, &SLEEPY, &o));
    sl_iter *it;
    const sl_iter_options io = {.threads = 8};
    assert_int_equal(sl_iter_open(&it, ds, &io), 0);
    int seen[64] = {0};
    sl_element e;
    int n = 0;
    while (sl_iter_next(it, &e) == 0) {
        seen[value_of(&e) / 1000]++;
        sl_element_release(&e);
        n++;
    }
    assert_int_equal(n, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(seen[i], 1);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_error_fails_with_stage_and_element(void **state)
{
    for (int parallel = 1; parallel <= 4; parallel += 3) {
        sl_dataset *ds;
        assert_int_equal(sl_dataset_range(&ds, 0, 10, 1), 0);
        const sl_map_options o = {.parallel = parallel};
        STEP(sl_dataset_map(&next_, ds, &FAIL_ON_3, &o));
        sl_iter *it;
        assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
        sl_element e;
        for (int i = 0; i < 3; i++) {
            assert_int_equal(sl_iter_next(it, &e), 0);
            assert_int_equal(value_of(&e), i);
            sl_element_release(&e);
        }
        assert_int_equal(sl_iter_next(it, &e), SL_ERR_INVAL);
        assert_non_null(strstr(sl_iter_errmsg(it), "map(fail_on_3"));
        assert_non_null(strstr(sl_iter_errmsg(it), "element 3: value 3 is not welcome"));
        assert_int_equal(sl_iter_next(it, &e), SL_ERR_INVAL); /* sticky */
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
}

static void test_error_skip_counts(void **state)
{
    for (int parallel = 1; parallel <= 4; parallel += 3) {
        sl_dataset *ds;
        assert_int_equal(sl_dataset_range(&ds, 0, 6, 1), 0);
        const sl_map_options o = {.parallel = parallel};
        STEP(sl_dataset_map(&next_, ds, &FAIL_ON_3, &o));
        sl_iter *it;
        const sl_iter_options io = {.on_error = SL_ON_ERROR_SKIP};
        char got[128];
        assert_int_equal(render(ds, &io, got, sizeof got), 0);
        assert_string_equal(got, "0 1 2 4 5");
        assert_int_equal(sl_iter_open(&it, ds, &io), 0);
        sl_element e;
        while (sl_iter_next(it, &e) == 0)
            sl_element_release(&e);
        assert_int_equal(sl_iter_skipped(it), 1);
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
}

static void test_bad_arguments_rejected(void **state)
{
    sl_dataset *r, *d;
    assert_int_equal(sl_dataset_range(&r, 0, 5, 0), SL_ERR_INVAL);
    assert_int_equal(sl_dataset_range(&r, 0, 5, 1), 0);
    assert_int_equal(sl_dataset_batch(&d, r, 0, 0), SL_ERR_INVAL);
    assert_int_equal(sl_dataset_shard(&d, r, 2, 2), SL_ERR_INVAL);
    assert_int_equal(sl_dataset_take(&d, r, -1), SL_ERR_INVAL);
    assert_int_equal(sl_dataset_shuffle(&d, r, 0, 1, 1), SL_ERR_INVAL);
    assert_int_equal(sl_dataset_prefetch(&d, r, 0), SL_ERR_INVAL);
    sl_dataset_release(r);
}

/* ---- padded_batch, zip ------------------------------------------------------------------- */

/* Elements {"v": int32[len]} with len = 1, 3, 2 and values 1..len. */
static sl_dataset *ragged(void)
{
    sl_element items[3];
    const int64_t lens[3] = {1, 3, 2};
    memset(items, 0, sizeof items);
    for (int i = 0; i < 3; i++) {
        sl_tensor t;
        assert_int_equal(sl_tensor_alloc(&t, SL_DTYPE_I32, 1, &lens[i]), 0);
        for (int k = 0; k < lens[i]; k++)
            ((int32_t *)t.data)[k] = k + 1;
        sl_element_push(&items[i], "v", &t);
    }
    sl_dataset *ds;
    assert_int_equal(sl_dataset_from_elements(&ds, items, 3), 0);
    for (int i = 0; i < 3; i++)
        sl_element_release(&items[i]);
    return ds;
}

static void test_padded_batch_pads_to_the_largest(void **state)
{
    sl_dataset *ds = ragged();
    STEP(sl_dataset_padded_batch(&next_, ds, 3, -1, 0));
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    const sl_tensor *t = sl_element_get(&e, "v");
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->shape[0], 3);
    assert_int_equal(t->shape[1], 3);
    const int32_t want[9] = {1, -1, -1, 1, 2, 3, 1, 2, -1};
    assert_memory_equal(t->data, want, sizeof want);
    sl_element_release(&e);
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);

    /* plain batch refuses the same input, naming the tensor */
    ds = ragged();
    STEP(sl_dataset_batch(&next_, ds, 3, 0));
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_SCHEMA);
    assert_non_null(strstr(sl_iter_errmsg(it), "tensor \"v\" is int32[3]"));
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_zip_pairs_and_refuses_shared_names(void **state)
{
    sl_dataset *a, *b, *z;
    assert_int_equal(sl_dataset_range(&a, 0, 10, 1), 0);
    b = ragged();
    assert_int_equal(sl_dataset_zip(&z, a, b), 0);
    assert_int_equal(sl_dataset_cardinality(z), 3);
    char got[256];
    assert_int_equal(render(z, NULL, got, sizeof got), 0);
    assert_string_equal(got, "(0,[1]) (1,[1,2,3]) (2,[1,2])");
    sl_dataset_release(z);
    assert_int_equal(sl_dataset_zip(&z, a, a), 0);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, z, NULL), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_EXISTS);
    assert_non_null(strstr(sl_iter_errmsg(it), "both inputs have a tensor \"value\""));
    sl_iter_close(it);
    sl_dataset_release(z);
    sl_dataset_release(a);
    sl_dataset_release(b);
}

/* ---- sample_from_datasets, choose_from_datasets ---------------------------------------- */

static void test_sample_from_mixes_by_weight_and_seed(void **state)
{
    sl_dataset *a, *b, *m;
    assert_int_equal(sl_dataset_range(&a, 0, 1000, 1), 0);
    assert_int_equal(sl_dataset_range(&b, 1000, 2000, 1), 0);
    sl_dataset *const in[2] = {a, b};
    const double w[2] = {3, 1};
    assert_int_equal(sl_dataset_sample_from(&m, in, 2, w, 5, 0), 0);
    assert_int_equal(sl_dataset_cardinality(m), 2000);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, m, NULL), 0);
    int from_a = 0, n = 0;
    int64_t last_a = -1, last_b = 999;
    sl_element e;
    while (sl_iter_next(it, &e) == 0) {
        const int64_t v = value_of(&e);
        if (n < 400)
            from_a += v < 1000;
        /* each input keeps its own order */
        if (v < 1000) {
            assert_int_equal(v, last_a + 1);
            last_a = v;
        } else {
            assert_int_equal(v, last_b + 1);
            last_b = v;
        }
        n++;
        sl_element_release(&e);
    }
    assert_int_equal(n, 2000); /* inputs that end leave the draw; all elements come out */
    assert_true(from_a > 260 && from_a < 340); /* 3:1 of the first 400, 300 expected */
    sl_iter_close(it);
    char x[16384], y[16384];
    assert_int_equal(render(m, NULL, x, sizeof x), 0);
    const sl_iter_options o8 = {.threads = 8};
    assert_int_equal(render(m, &o8, y, sizeof y), 0);
    assert_string_equal(x, y);
    sl_dataset_release(m);

    /* stop_on_empty_dataset: the first input to end ends the stream */
    assert_int_equal(sl_dataset_sample_from(&m, in, 2, NULL, 5, 1), 0);
    assert_int_equal(render(m, NULL, x, sizeof x), 0);
    int count = 1;
    for (const char *p = x; *p; p++)
        count += *p == ' ';
    assert_true(count >= 1000 && count < 2000);
    sl_dataset_release(m);
    const double bad[2] = {0, 0};
    assert_int_equal(sl_dataset_sample_from(&m, in, 2, bad, 5, 0), SL_ERR_INVAL);
    sl_dataset_release(a);
    sl_dataset_release(b);
}

static void test_choose_from_follows_the_choices(void **state)
{
    sl_dataset *a, *b, *c, *m;
    assert_int_equal(sl_dataset_range(&a, 0, 3, 1), 0);
    assert_int_equal(sl_dataset_range(&b, 10, 13, 1), 0);
    const int64_t picks[5] = {1, 0, 0, 1, 1};
    sl_element items[5];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 5; i++) {
        sl_tensor t;
        assert_int_equal(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL), 0);
        *(int64_t *)t.data = picks[i];
        sl_element_push(&items[i], "value", &t);
    }
    assert_int_equal(sl_dataset_from_elements(&c, items, 5), 0);
    for (int i = 0; i < 5; i++)
        sl_element_release(&items[i]);
    sl_dataset *const in[2] = {a, b};
    assert_int_equal(sl_dataset_choose_from(&m, in, 2, c), 0);
    char x[256];
    assert_int_equal(render(m, NULL, x, sizeof x), 0);
    assert_string_equal(x, "10 0 1 11 12");
    sl_dataset_release(m);
    sl_dataset_release(a);
    sl_dataset_release(b);
    sl_dataset_release(c);
}

/* ---- cache ------------------------------------------------------------------------------ */

static int counted_calls;

/* Yields 0..4 then SL_EOF, counting every call: the source-reads counter for cache tests. */
static int counting_source(void *user, uint64_t index, sl_element *out)
{
    counted_calls++;
    if (index >= 5)
        return SL_EOF;
    return set_value(out, (int64_t)index);
}

static void test_cache_replays_without_reading_again(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_generator(&ds, counting_source, NULL, "counting"), 0);
    STEP(sl_dataset_cache(&next_, ds));
    STEP(sl_dataset_repeat(&next_, ds, 3));
    counted_calls = 0;
    char got[256];
    assert_int_equal(render(ds, NULL, got, sizeof got), 0);
    assert_string_equal(got, "0 1 2 3 4 0 1 2 3 4 0 1 2 3 4");
    assert_int_equal(counted_calls, 6); /* one pass: 5 elements and the end */
    sl_dataset_release(ds);

    /* A pass cut short by take keeps nothing: the next epoch reads the source again. */
    assert_int_equal(sl_dataset_generator(&ds, counting_source, NULL, "counting"), 0);
    STEP(sl_dataset_cache(&next_, ds));
    STEP(sl_dataset_take(&next_, ds, 2));
    STEP(sl_dataset_repeat(&next_, ds, 2));
    counted_calls = 0;
    assert_int_equal(render(ds, NULL, got, sizeof got), 0);
    assert_string_equal(got, "0 1 0 1");
    assert_int_equal(counted_calls, 4);
    sl_dataset_release(ds);
}

/* ---- closing mid-stream ------------------------------------------------------------------ */

static void test_close_mid_stream_frees_everything(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 100000, 1), 0);
    const sl_map_options o = {.parallel = 4};
    STEP(sl_dataset_map(&next_, ds, &SLEEPY, &o));
    STEP(sl_dataset_shuffle(&next_, ds, 16, 1, 1));
    STEP(sl_dataset_prefetch(&next_, ds, 4));
    STEP(sl_dataset_batch(&next_, ds, 3, 0));
    STEP(sl_dataset_prefetch(&next_, ds, 2));
    sl_rng r;
    sl_rng_init(&r, 1, 0, 0);
    const int64_t before = sl_alloc_live_bytes();
    for (int round = 0; round < 12; round++) {
        sl_iter *it;
        const sl_iter_options io = {.threads = 1 + round % 4};
        assert_int_equal(sl_iter_open(&it, ds, &io), 0);
        const int n = (int)sl_rng_below(&r, 6);
        sl_element e;
        for (int i = 0; i < n; i++) {
            assert_int_equal(sl_iter_next(it, &e), 0);
            sl_element_release(&e);
        }
        sl_iter_close(it);
        assert_int_equal(sl_alloc_live_bytes(), before);
    }
    sl_dataset_release(ds);
}

static void test_element_outlives_iterator(void **state)
{
    sl_dataset *ds;
    assert_int_equal(sl_dataset_range(&ds, 0, 8, 1), 0);
    STEP(sl_dataset_batch(&next_, ds, 4, 0));
    STEP(sl_dataset_prefetch(&next_, ds, 2));
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    sl_iter_close(it);
    sl_dataset_release(ds);
    assert_int_equal(((int64_t *)e.tensors[0].data)[3], 3);
    sl_element_release(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_shuffle_is_a_permutation_and_deterministic),
        cmocka_unit_test(test_shuffle_reshuffles_each_epoch),
        cmocka_unit_test(test_shuffle_buffer_one_keeps_order),
        cmocka_unit_test(test_global_shuffle_huge_range_small_memory),
        cmocka_unit_test(test_global_shuffle_every_index_once_per_epoch),
        cmocka_unit_test(test_global_shuffle_needs_random_access),
        cmocka_unit_test(test_global_shuffle_seeds_and_threads),
        cmocka_unit_test(test_same_output_for_1_2_8_threads),
        cmocka_unit_test(test_unordered_map_yields_every_element),
        cmocka_unit_test(test_error_fails_with_stage_and_element),
        cmocka_unit_test(test_error_skip_counts),
        cmocka_unit_test(test_bad_arguments_rejected),
        cmocka_unit_test(test_padded_batch_pads_to_the_largest),
        cmocka_unit_test(test_zip_pairs_and_refuses_shared_names),
        cmocka_unit_test(test_sample_from_mixes_by_weight_and_seed),
        cmocka_unit_test(test_choose_from_follows_the_choices),
        cmocka_unit_test(test_cache_replays_without_reading_again),
        cmocka_unit_test(test_close_mid_stream_frees_everything),
        cmocka_unit_test(test_element_outlives_iterator),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
