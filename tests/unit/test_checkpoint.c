/* Checkpoints: for every checkpointable transform, saving after k elements (every k from the
 * start to the end, across epoch boundaries) and restoring with another thread count gives
 * exactly the rest of an uninterrupted run; restored sources read nothing before the saved
 * position; stages that cannot be checkpointed fail save naming themselves; global_shuffle's
 * blob is a few dozen bytes and restores under a different number of shards; damaged and
 * foreign blobs fail cleanly. */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "sluice/pipeline_build.h"
#include "sluice/record.h"

/* ---- map functions ---------------------------------------------------------------------- */

static int64_t value_of(const sl_element *e)
{
    return *(const int64_t *)sl_element_get(e, "value")->data;
}

/* jitter: sleeps a seeded random 0-150 µs (so completion order differs from input order
 * under parallel maps) and returns value * 1000 + a draw from the element's RNG, so outputs
 * also prove the RNG is keyed by the element, not by the thread or the run. */
static int run_jitter(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                      size_t errcap)
{
    sl_rng r = c->rng;
    const uint64_t draw = sl_rng_below(&r, 1000);
    const struct timespec ts = {0, (long)(sl_rng_below(&r, 150) * 1000)};
    nanosleep(&ts, NULL);
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = value_of(in) * 1000 + (int64_t)draw;
    return sl_element_push(out, "value", &t);
}

/* count: identity that counts its calls and the smallest value it saw (a source's reads). */
static _Atomic int64_t count_calls, count_min;

static int run_count(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    const int64_t v = value_of(in);
    atomic_fetch_add(&count_calls, 1);
    int64_t m = atomic_load(&count_min);
    while (v < m && !atomic_compare_exchange_weak(&count_min, &m, v)) {
    }
    sl_element_share(out, in);
    sl_element_release(in);
    return 0;
}

static void count_reset(void)
{
    atomic_store(&count_calls, 0);
    atomic_store(&count_min, INT64_MAX);
}

static sl_registry *registry(void)
{
    sl_registry *r;
    assert_int_equal(sl_registry_create(&r), 0);
    assert_int_equal(
        sl_registry_add(r, "jitter", sl_test_map_factory, (void *)run_jitter, "jitter"), 0);
    assert_int_equal(sl_registry_add(r, "count", sl_test_map_factory, (void *)run_count, "count"),
                     0);
    return r;
}

static sl_dataset *build(const sl_registry *reg, const char *text)
{
    return sl_test_build(reg, text);
}

typedef sl_test_stream stream;
enum { SEED = 42 };

static sl_iter *open_iter(sl_dataset *ds, int threads, const uint8_t *blob, size_t len)
{
    return sl_test_iter_open(ds, threads, SEED, blob, len);
}

static int drain(sl_iter *it, stream *s, int limit)
{
    return sl_test_drain(it, s, limit);
}

static void check_every_cut(const sl_registry *reg, const char *text)
{
    sl_dataset *ds = build(reg, text);
    sl_test_check_every_cut(ds, text, SEED);
    sl_dataset_release(ds);
}

/* Every checkpointable transform, with epoch boundaries (repeat) where the state crosses them. */
static const char *const cut_cases[] = {
    "range(20)",
    "range(3, 40, 4) | repeat(3)",
    "range(20) | map(jitter)",
    "range(30) | map(jitter, parallel=4) | repeat(2)",
    "range(30) | shuffle(8, seed=3) | repeat(3)",
    "range(30) | shuffle(8, seed=3, reshuffle_each_iteration=false) | repeat(2)",
    "range(25) | map(jitter) | shuffle(40) | batch(4)",
    "range(25) | global_shuffle(seed=5) | repeat(2) | batch(4)",
    "range(40) | shard(3, 1) | enumerate | take(10)",
    "range(10) | skip(3) | batch(3) | unbatch | repeat(2)",
    "range(17) | map(jitter, parallel=3) | batch(4) | prefetch(2) | repeat(2)",
    "range(17) | prefetch(3) | map(jitter, parallel=2) | prefetch(1)",
    "range(12) | cache | repeat(3)",
    "range(12) | shuffle(5) | cache | repeat(3)",
    "range(12) | prefetch(2) | cache | repeat(3)",
    "range(9) | zip(range(100, 120) | rename(value=\"w\"))",
    "sample_from_datasets([range(10), range(100, 105) | repeat(2)], weights=[1, 3], seed=2)",
    "choose_from_datasets([range(10), range(100, 110)], range(12) | shard(2, 0) | "
    "map(jitter) | shard(1, 0) | take(0) | repeat(1))",
    "range(20) | padded_batch(3) | prefetch(auto) | unbatch",
    "range(20) | enumerate(start=7) | skip(2) | take(15) | repeat(2)",
};

static void test_every_cut_equals_uninterrupted(void **state)
{
    sl_registry *reg = registry();
    for (size_t i = 0; i < SL_ARRAY_LEN(cut_cases); i++)
        check_every_cut(reg, cut_cases[i]);
    sl_registry_free(reg);
}

/* ---- no replay -------------------------------------------------------------------------- */

/* After a restore at k, the source is read from k on only: a counting map right above it
 * sees exactly the elements from k to the end, even under shuffle and prefetch. */
static void test_restore_reads_nothing_before_the_position(void **state)
{
    sl_registry *reg = registry();
    static const struct {
        const char *text;
        int cut, first_read, reads;
    } cases[] = {
        {"range(100) | map(count) | batch(7) | prefetch(3)", 5, 35, 65},
        {"range(100) | map(count, parallel=2) | map(jitter, parallel=3)", 40, 40, 60},
        /* shuffle(10): after 30 outputs the buffer holds 10 elements pulled before; they are
         * fetched by index (read once more), and nothing else before position 40 is. */
        {"range(100) | map(count) | shuffle(10, seed=9)", 30, 0, 10 + 60},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sl_dataset *ds = build(reg, cases[i].text);
        sl_iter *it = open_iter(ds, 2, NULL, 0);
        stream *s = sl_test_stream_new();
        assert_int_equal(drain(it, s, cases[i].cut), 0);
        uint8_t *blob;
        size_t len;
        assert_int_equal(sl_iter_save(it, &blob, &len), 0);
        sl_iter_close(it);
        count_reset();
        it = open_iter(ds, 2, blob, len);
        assert_int_equal(drain(it, s, -1), SL_EOF);
        sl_iter_close(it);
        if (cases[i].first_read)
            assert_int_equal(atomic_load(&count_min), cases[i].first_read);
        assert_int_equal(atomic_load(&count_calls), cases[i].reads);
        sl_free(blob);
        sl_free(s);
        sl_dataset_release(ds);
    }
    sl_registry_free(reg);
}

/* A sluice file source: the restored iterator seeks, reading no record before the position
 * (the map right above the source sees only records at or after it). */
static void test_records_source_seeks(void **state)
{
    char path[300];
    snprintf(path, sizeof path, "%s/seek.sluice", sl_test_dir);
    const sl_record_writer_options wo = {.compression_level = 3, .chunk_bytes = 200};
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, path, &wo), 0);
    for (int i = 0; i < 300; i++) {
        char rec[32];
        const int n = snprintf(rec, sizeof rec, "record %03d", i);
        assert_int_equal(sl_record_writer_write(w, rec, (size_t)n), 0);
    }
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);

    sl_registry *reg = registry();
    char text[512];
    snprintf(text, sizeof text, "records(\"%s\") | global_shuffle(seed=4) | batch(10)", path);
    check_every_cut(reg, text);
    snprintf(text, sizeof text, "records(\"%s\") | skip(5) | batch(32)", path);
    check_every_cut(reg, text);
    sl_registry_free(reg);
}

/* ---- what cannot be checkpointed -------------------------------------------------------- */

static void expect_not_checkpointable(const sl_registry *reg, sl_dataset *ds, const char *stage)
{
    sl_iter *it = open_iter(ds, 2, NULL, 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    sl_element_release(&e);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_iter_save(it, &blob, &len), SL_ERR_NOT_CHECKPOINTABLE);
    assert_null(blob);
    if (!strstr(sl_iter_errmsg(it), stage))
        fail_msg("message \"%s\" does not name %s", sl_iter_errmsg(it), stage);
    /* The failed save is not the stream's error: iteration goes on. */
    assert_int_equal(sl_iter_next(it, &e), 0);
    sl_element_release(&e);
    sl_iter_close(it);
}

static int gen_fn(void *user, uint64_t index, sl_element *out)
{
    if (index >= 5)
        return SL_EOF;
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = (int64_t)index;
    return sl_element_push(out, "value", &t);
}

static int gen_inner(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                     size_t errcap)
{
    return sl_dataset_generator(inner, gen_fn, NULL, "inner");
}

/* A stage the dataset-level check cannot see (a generator made inside an interleave) under a
 * prefetch and a parallel map: the stream runs to its end, and save names the generator. */
static void test_hidden_refusal_does_not_stop_the_stream(void **state)
{
    sl_registry *reg = registry();
    sl_dataset *outer = build(reg, "range(3)"), *il, *pf, *ds;
    assert_int_equal(sl_dataset_interleave(&il, outer, gen_inner, NULL, "gen", NULL), 0);
    assert_int_equal(sl_dataset_prefetch(&pf, il, 2), 0);
    const sl_map_def id = {"count", run_count, NULL, NULL};
    const sl_map_options par = {.parallel = 2};
    assert_int_equal(sl_dataset_map(&ds, pf, &id, &par), 0);
    expect_not_checkpointable(reg, ds, "generator(inner)");
    sl_iter *it = open_iter(ds, 2, NULL, 0);
    stream *s = sl_test_stream_new();
    assert_int_equal(drain(it, s, -1), SL_EOF);
    assert_int_equal(s->n, 15);
    sl_iter_close(it);
    sl_free(s);
    sl_dataset_release(ds);
    sl_dataset_release(pf);
    sl_dataset_release(il);
    sl_dataset_release(outer);
    sl_registry_free(reg);
}

static void test_save_names_the_stage_that_cannot(void **state)
{
    sl_registry *reg = registry();
    sl_dataset *ds = build(reg, "range(10) | map(jitter, parallel=2, ordered=false) | batch(2)");
    expect_not_checkpointable(reg, ds, "map(jitter, parallel=2, ordered=false)");
    sl_dataset_release(ds);
    ds = build(reg, "range(10) | prefetch(2) | shuffle(3)");
    expect_not_checkpointable(reg, ds, "shuffle(3)");
    sl_dataset_release(ds);
    sl_dataset *g, *p;
    assert_int_equal(sl_dataset_generator(&g, gen_fn, NULL, "five"), 0);
    assert_int_equal(sl_dataset_prefetch(&p, g, 2), 0);
    expect_not_checkpointable(reg, p, "generator(five)");
    sl_dataset_release(p);
    sl_dataset_release(g);
    sl_registry_free(reg);
}

/* ---- global_shuffle: small blobs, any number of shards ---------------------------------- */

static void test_global_shuffle_blob_is_small(void **state)
{
    sl_registry *reg = registry();
    sl_dataset *ds = build(reg, "range(1099511627776) | global_shuffle(seed=7)");
    sl_iter *it = open_iter(ds, 1, NULL, 0);
    stream *s = sl_test_stream_new();
    assert_int_equal(drain(it, s, 3), 0);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_iter_save(it, &blob, &len), 0);
    assert_true(len <= 64);
    sl_iter_close(it);
    sl_free(blob);
    sl_free(s);
    sl_dataset_release(ds);
    sl_registry_free(reg);
}

/* Four shards each take 6 elements and save; the job restarts as three shards restored from
 * shard 0's blob. Together the two phases hand out every element exactly once. */
static void test_restore_with_a_different_shard_count(void **state)
{
    enum { N = 101, BEFORE = 4, AFTER = 3 };
    sl_registry *reg = registry();
    int seen[N] = {0};
    uint8_t *blob = NULL;
    size_t len = 0;
    for (int i = 0; i < BEFORE; i++) {
        char text[160];
        snprintf(text, sizeof text, "range(%d) | global_shuffle(seed=3) | shard(%d, %d) | batch(2)",
                 N, BEFORE, i);
        sl_dataset *ds = build(reg, text);
        sl_iter *it = open_iter(ds, 1, NULL, 0);
        for (int b = 0; b < 3; b++) {
            sl_element e;
            assert_int_equal(sl_iter_next(it, &e), 0);
            const sl_tensor *t = sl_element_get(&e, "value");
            for (int64_t k = 0; k < sl_tensor_numel(t); k++)
                seen[((const int64_t *)t->data)[k]]++;
            sl_element_release(&e);
        }
        uint8_t *mine;
        size_t mine_len;
        assert_int_equal(sl_iter_save(it, &mine, &mine_len), 0);
        if (i == 0) {
            blob = mine;
            len = mine_len;
        } else { /* lockstep shards save the same position */
            assert_int_equal(mine_len, len);
            assert_memory_equal(mine, blob, len);
            sl_free(mine);
        }
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
    for (int i = 0; i < AFTER; i++) {
        char text[160];
        snprintf(text, sizeof text, "range(%d) | global_shuffle(seed=3) | shard(%d, %d) | batch(2)",
                 N, AFTER, i);
        sl_dataset *ds = build(reg, text);
        sl_iter *it = open_iter(ds, 2, blob, len);
        sl_element e;
        int rc;
        while ((rc = sl_iter_next(it, &e)) == 0) {
            const sl_tensor *t = sl_element_get(&e, "value");
            for (int64_t k = 0; k < sl_tensor_numel(t); k++)
                seen[((const int64_t *)t->data)[k]]++;
            sl_element_release(&e);
        }
        assert_int_equal(rc, SL_EOF);
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
    for (int v = 0; v < N; v++)
        if (seen[v] != 1)
            fail_msg("element %d handed out %d times", v, seen[v]);
    sl_free(blob);
    sl_registry_free(reg);
}

/* ---- blobs that do not belong ----------------------------------------------------------- */

static void save_blob(sl_dataset *ds, int k, uint8_t **blob, size_t *len)
{
    sl_iter *it = open_iter(ds, 2, NULL, 0);
    stream *s = sl_test_stream_new();
    assert_int_equal(drain(it, s, k), 0);
    assert_int_equal(sl_iter_save(it, blob, len), 0);
    sl_iter_close(it);
    sl_free(s);
}

static int restore_rc(sl_dataset *ds, uint64_t seed, const uint8_t *blob, size_t len, char *msg,
                      size_t cap)
{
    const sl_iter_options o = {.threads = 2, .seed = seed};
    sl_iter *it;
    int rc = sl_iter_restore(&it, ds, &o, blob, len);
    if (rc == 0) { /* a damaged state may still decode: iterating must then be safe */
        sl_element e;
        while ((rc = sl_iter_next(it, &e)) == 0)
            sl_element_release(&e);
        rc = rc == SL_EOF ? 0 : rc;
    }
    snprintf(msg, cap, "%s", it ? sl_iter_errmsg(it) : "");
    sl_iter_close(it);
    return rc;
}

static void test_foreign_and_damaged_blobs_fail(void **state)
{
    sl_registry *reg = registry();
    sl_dataset *ds = build(reg, "range(50) | shuffle(7) | map(jitter, parallel=2) | batch(3)");
    sl_dataset *other = build(reg, "range(50) | shuffle(8) | map(jitter, parallel=2) | batch(3)");
    uint8_t *blob;
    size_t len;
    save_blob(ds, 4, &blob, &len);
    char msg[512];
    assert_int_equal(restore_rc(other, 42, blob, len, msg, sizeof msg), SL_ERR_INVAL);
    assert_non_null(strstr(msg, "different pipeline"));
    assert_int_equal(restore_rc(ds, 43, blob, len, msg, sizeof msg), SL_ERR_INVAL);
    assert_non_null(strstr(msg, "seed 42"));
    assert_int_equal(restore_rc(ds, 42, blob, len - 1, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_int_equal(restore_rc(ds, 42, blob, 3, msg, sizeof msg), SL_ERR_FORMAT);
    for (size_t i = 0; i < len; i++) { /* every flipped byte is caught by the crc or header */
        blob[i] ^= 0x40;
        const int rc = restore_rc(ds, 42, blob, len, msg, sizeof msg);
        assert_true(rc == SL_ERR_CORRUPT || rc == SL_ERR_FORMAT || rc == SL_ERR_VERSION ||
                    rc == SL_ERR_INVAL);
        blob[i] ^= 0x40;
    }
    sl_free(blob);
    sl_dataset_release(ds);
    sl_dataset_release(other);
    sl_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cut_equals_uninterrupted),
        cmocka_unit_test(test_restore_reads_nothing_before_the_position),
        cmocka_unit_test_setup_teardown(test_records_source_seeks, sl_test_dir_setup,
                                        sl_test_dir_teardown),
        cmocka_unit_test(test_save_names_the_stage_that_cannot),
        cmocka_unit_test(test_hidden_refusal_does_not_stop_the_stream),
        cmocka_unit_test(test_global_shuffle_blob_is_small),
        cmocka_unit_test(test_restore_with_a_different_shard_count),
        cmocka_unit_test(test_foreign_and_damaged_blobs_fail),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
