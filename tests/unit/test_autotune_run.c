/* AUTOTUNE on a running iterator: a map that sleeps (300 us per element, far costlier than its
 * range source and the consumer) written parallel=auto starts at 1 and is raised by the tuning
 * thread, and the output is exactly the deterministic one, in order; likewise the runners of an
 * interleave(parallel=auto) whose inner streams nap. Sleeping, not spinning,
 * keeps the test meaningful on a loaded 2-core machine. */
#include "testutil.h"

#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "sluice/pipeline_build.h"
#include "sluice/profile.h"

enum { N = 3000 };

static int run_nap(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                   size_t errcap)
{
    const struct timespec ts = {0, 300000};
    nanosleep(&ts, NULL);
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = *(const int64_t *)sl_element_get(in, "value")->data * 7 + 1;
    return sl_element_push(out, "value", &t);
}

static int make_nap(void *user, const sl_ast_call *call, sl_map_def *out, char *err, size_t errcap)
{
    out->fn = run_nap;
    return 0;
}

static sl_dataset *build(const char *text)
{
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_registry_add(reg, "nap", make_nap, NULL, "nap"), 0);
    sl_dataset *ds;
    char err[256];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        fail_msg("%s: %s", text, err);
    sl_registry_free(reg);
    return ds;
}

static void test_auto_map_parallelism_rises_and_keeps_the_order(void **state)
{
    sl_dataset *ds = build("range(3000) | map(nap, parallel=auto)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 4}), 0);
    int chosen = 0;
    for (int i = 0; i < N; i++) {
        sl_element e;
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(*(const int64_t *)e.tensors[0].data, (int64_t)i * 7 + 1);
        sl_element_release(&e);
        if (i % 100 == 99) {
            sl_profile_snapshot s;
            sl_iter_profile(it, &s);
            assert_string_equal(s.stages[0].stage, "map(nap, parallel=auto)");
            /* the highest seen: near the end, with the source spent, the tuner may already
             * have lowered an idle map again */
            chosen = SL_MAX(chosen, s.stages[0].parallel);
            assert_true(s.stages[0].parallel <= 4); /* the CPU budget */
        }
    }
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    if (chosen <= 1)
        fail_msg("the tuner never raised the map above parallel=%d", chosen);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* interleave(parallel=auto) over four streams of napping elements: it opens with one runner
 * in use, the tuner raises it, and the round-robin order stays exact. */
static void test_auto_interleave_runners_rise_and_keep_the_order(void **state)
{
    sl_dataset *ds =
        build("range(4) | interleave(range($value, 3000, 4) | map(nap), cycle_length=4, "
              "parallel=auto)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 4}), 0);
    int chosen = 0;
    for (int i = 0; i < N; i++) {
        sl_element e;
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(*(const int64_t *)e.tensors[0].data, (int64_t)i * 7 + 1);
        sl_element_release(&e);
        if (i % 100 == 99) {
            sl_profile_snapshot s;
            sl_iter_profile(it, &s);
            assert_string_equal(s.stages[0].kind, "interleave");
            chosen = SL_MAX(chosen, s.stages[0].parallel);
            assert_true(s.stages[0].parallel <= 4);
        }
    }
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    if (chosen <= 1)
        fail_msg("the tuner never raised the interleave above %d runner(s)", chosen);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_map_parallelism_rises_and_keeps_the_order),
        cmocka_unit_test(test_auto_interleave_runners_rise_and_keep_the_order),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
