/* Running iterators: per-stage counters count exactly what each stage returned; a map's
 * parallelism (inline mode included) and a prefetch's capacity changed mid-stream leave the
 * output unchanged, and checkpoints taken in inline mode restore exactly. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "engine_internal.h"
#include "sluice/pipeline_build.h"

static int run_jitter(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                      size_t errcap)
{
    sl_rng r = c->rng;
    const struct timespec ts = {0, (long)(sl_rng_below(&r, 100) * 1000)};
    nanosleep(&ts, NULL);
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = *(const int64_t *)sl_element_get(in, "value")->data * 7 + 1;
    return sl_element_push(out, "value", &t);
}

static int make_jitter(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                       size_t errcap)
{
    out->fn = run_jitter;
    return 0;
}

static sl_dataset *build(const char *text)
{
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_registry_add(reg, "jitter", make_jitter, NULL, "jitter"), 0);
    sl_dataset *ds;
    char err[256];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        fail_msg("%s: %s", text, err);
    sl_registry_free(reg);
    return ds;
}

static int64_t next_value(sl_iter *it)
{
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    const int64_t v = *(const int64_t *)e.tensors[0].data;
    sl_element_release(&e);
    return v;
}

static void test_counters_count_each_stage(void **state)
{
    sl_dataset *ds = build("range(1000) | map(jitter, parallel=2) | batch(10) | take(50)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
    for (int i = 0; i < 50; i++)
        next_value(it);
    sl_stage_stats st[8];
    assert_int_equal(sl_iter_stats(it, st, 8), 4);
    assert_string_equal(st[0].stage, "take(50)");
    assert_int_equal(st[0].elements, 50);
    assert_int_equal(st[0].depth, 0);
    assert_string_equal(st[1].stage, "batch(10)");
    assert_int_equal(st[1].elements, 50);
    assert_string_equal(st[2].stage, "map(jitter, parallel=2)");
    assert_int_equal(st[2].elements, 500);
    assert_int_equal(st[3].depth, 3);
    /* the map ran ahead of the consumer, but never past the end of its slots */
    assert_true(st[3].elements >= 500 && st[3].elements <= 500 + 64);
    assert_true(st[1].ns_per_element > 0);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_retuning_mid_stream_keeps_the_output(void **state)
{
    enum { N = 3000 };
    sl_dataset *ds = build("range(3000) | map(jitter, parallel=4) | prefetch(4)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 4}), 0);
    sl__ctx *ctx = sl__iter_ctx(it);
    for (int i = 0; i < N; i++) {
        if (i == 100 || i == 1200 || i == 2000) {
            pthread_mutex_lock(&ctx->mu);
            sl__stage *map = sl__ctx_live_stage(ctx, "map");
            sl__stage *pf = sl__ctx_live_stage(ctx, "prefetch");
            assert_non_null(map);
            assert_non_null(pf);
            const int parallel = i == 100 ? 1 : i == 1200 ? 16 : 3;
            const int64_t cap = i == 100 ? 1 : i == 1200 ? 64 : 2;
            assert_int_equal(sl__map_set_parallel(map, parallel), 0);
            assert_int_equal(sl__prefetch_set_capacity(pf, cap), 0);
            assert_int_equal(sl__map_set_parallel(pf, 2), SL_ERR_INVAL);
            pthread_mutex_unlock(&ctx->mu);
        }
        assert_int_equal(next_value(it), (int64_t)i * 7 + 1);
    }
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* Sets the live map's parallelism (0: inline mode) from the test thread, as AUTOTUNE does. */
static void set_map_parallel(sl_iter *it, int parallel)
{
    sl__ctx *ctx = sl__iter_ctx(it);
    pthread_mutex_lock(&ctx->mu);
    sl__stage *map = sl__ctx_live_stage(ctx, "map");
    assert_non_null(map);
    assert_int_equal(sl__map_set_parallel(map, parallel), 0);
    pthread_mutex_unlock(&ctx->mu);
}

/* Inline mode switched on and off mid-stream, behind a prefetch (whose thread is the map's
 * consumer) and fused into a batch: the elements are exactly those of the sequential map. */
static void test_inline_mode_mid_stream_keeps_the_output(void **state)
{
    const char *texts[] = {"range(3000) | map(jitter, parallel=2) | prefetch(4)",
                           "range(3000) | map(jitter, parallel=2) | batch(1) | prefetch(2)"};
    for (int t = 0; t < 2; t++) {
        sl_dataset *ds = build(texts[t]);
        sl_iter *it;
        assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
        for (int i = 0; i < 3000; i++) {
            if (i == 100 || i == 700 || i == 1500 || i == 2500)
                set_map_parallel(it, i == 100 || i == 1500 ? 0 : i == 700 ? 2 : 1);
            assert_int_equal(next_value(it), (int64_t)i * 7 + 1);
        }
        sl_element e;
        assert_int_equal(sl_iter_next(it, &e), SL_EOF);
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
}

/* A save taken while the map runs inline, and one taken after it went back to workers,
 * restore to exactly the rest of the stream; closing mid-stream in inline mode leaks nothing
 * (the test's leak check). */
static void test_inline_mode_saves_and_restores(void **state)
{
    sl_dataset *ds = build("range(600) | map(jitter, parallel=2) | batch(3)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
    int64_t want[200];
    uint8_t *blob[2];
    size_t len[2];
    for (int b = 0; b < 200; b++) {
        if (b == 10)
            set_map_parallel(it, 0);
        if (b == 120)
            set_map_parallel(it, 2);
        if (b == 60 || b == 150)
            assert_int_equal(sl_iter_save(it, &blob[b == 150], &len[b == 150]), 0);
        want[b] = next_value(it);
        assert_int_equal(want[b], (int64_t)b * 3 * 7 + 1);
    }
    sl_iter_close(it);
    for (int k = 0; k < 2; k++) {
        const int from = k ? 150 : 60;
        assert_int_equal(
            sl_iter_restore(&it, ds, &(sl_iter_options){.threads = 2}, blob[k], len[k]), 0);
        if (k == 0)
            set_map_parallel(it, 0); /* restored and inline at once */
        for (int b = from; b < from + 30; b++)
            assert_int_equal(next_value(it), want[b]);
        sl_iter_close(it); /* mid-stream */
        sl_free(blob[k]);
    }
    sl_dataset_release(ds);
}

/* An interleave's runners in use changed mid-stream (down to one, up to all, back to two): the
 * round-robin order is exactly the sequential one. */
static void test_interleave_runners_retuned_keep_the_output(void **state)
{
    enum { N = 2000 };
    sl_dataset *ds = build("range(4) | interleave(range($value, 2000, 4) | map(jitter), "
                           "cycle_length=4, parallel=4)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 4}), 0);
    sl__ctx *ctx = sl__iter_ctx(it);
    for (int i = 0; i < N; i++) {
        if (i == 50 || i == 700 || i == 1400) {
            pthread_mutex_lock(&ctx->mu);
            sl__stage *x = sl__ctx_live_stage(ctx, "interleave");
            assert_non_null(x);
            assert_int_equal(sl__interleave_set_parallel(x, i == 50 ? 1 : i == 700 ? 9 : 2), 0);
            assert_int_equal(sl__interleave_set_parallel(x, 0), SL_ERR_INVAL);
            assert_int_equal(sl__map_set_parallel(x, 2), SL_ERR_INVAL);
            pthread_mutex_unlock(&ctx->mu);
        }
        assert_int_equal(next_value(it), (int64_t)i * 7 + 1);
    }
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* Buffers beyond the budget fail at open, naming the largest holder and its bytes; the same
 * pipeline opens under a larger budget. */
static void test_memory_budget_is_checked_at_open(void **state)
{
    /* a batch of 1000 int64 is 8000 + 64 bytes, held in a 1544-byte element slot: 10000 of
     * them in the shuffle are 96.1 MB */
    sl_dataset *ds = build("range(100000000) | batch(1000) | shuffle(10000) | prefetch(2)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.memory_bytes = 50000000}),
                     SL_ERR_BUDGET);
    const char *msg = sl_iter_errmsg(it);
    if (!strstr(msg, "shuffle(10000) needs 96.1 MB"))
        fail_msg("unexpected message: %s", msg);
    sl_iter_close(it);
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.memory_bytes = 100000000}), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    sl_element_release(&e);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_count_each_stage),
        cmocka_unit_test(test_retuning_mid_stream_keeps_the_output),
        cmocka_unit_test(test_inline_mode_mid_stream_keeps_the_output),
        cmocka_unit_test(test_inline_mode_saves_and_restores),
        cmocka_unit_test(test_interleave_runners_retuned_keep_the_output),
        cmocka_unit_test(test_memory_budget_is_checked_at_open),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
