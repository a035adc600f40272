/* The profile analysis on made-up counter snapshots (no clock, no threads): for map-bound,
 * source-bound, batch-bound and prefetch-stalled pipelines, the bottleneck it names, the bound
 * for N cores and the changes it predicts, with their pipeline text. Expected numbers are
 * worked out by hand from the model in sluice/profile.h (costs per output element; a thread's
 * stages add up; a parallel map's function divides by its parallelism; everything fits in the
 * cores; a new parallel map or prefetch costs a 500 ns handoff per element it hands over). */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "sluice/profile.h"

/* Stage i: text, kind, consumer, depth, elements returned and inclusive ns per `next` call
 * (every call measured, so the means are exact). */
static void stage(sl_profile_snapshot *s, int i, const char *text, const char *kind, int parent,
                  uint64_t elements, double incl_ns)
{
    sl_profile_stage *st = &s->stages[i];
    *st = (sl_profile_stage){.stage = text,
                             .kind = kind,
                             .parent = parent,
                             .depth = parent < 0 ? 0 : s->stages[parent].depth + 1,
                             .chain = 1,
                             .elements = elements,
                             .timed = elements,
                             .timed_ns = (uint64_t)(incl_ns * (double)elements)};
    if (i + 1 > s->nstages)
        s->nstages = i + 1;
}

static void assert_near(double got, double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want))
        fail_msg("got %.3f, expected %.3f (within %.1f%%)", got, want, rel * 100);
}

static const sl_profile_prediction *find(const sl_profile_analysis *a, sl_profile_change c)
{
    for (int i = 0; i < a->npredictions; i++)
        if (a->predictions[i].change == c)
            return &a->predictions[i];
    return NULL;
}

/* range | map(decode) | batch(32): a sequential 10 us map under a 2 us batch; 100 batches. */
static void map_bound(sl_profile_snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->threads = 4;
    stage(s, 0, "batch(32)", "batch", -1, 100, 32 * 10050.0 + 2000);
    stage(s, 1, "map(decode)", "map", 0, 3200, 10050);
    stage(s, 2, "range(0, 100000)", "range", 1, 3200, 50);
    s->elapsed_ns = 100 * (uint64_t)(32 * 10050 + 2000);
}

static void test_map_bound_names_the_map(void **state)
{
    sl_profile_snapshot s;
    map_bound(&s);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 0, &a), 0);
    assert_int_equal(a.bottleneck, 1);
    assert_int_equal(a.cores, 4);
    /* one thread runs all three: 1e9 / 323600 ns per batch */
    assert_near(a.model_rate, 1e9 / 323600, 1e-6);
    assert_near(a.rate, 1e9 / 323600, 1e-6);
    assert_near(a.stages[1].own_ns, 10000, 1e-6);
    assert_near(a.stages[1].per_core_rate, 1e5, 1e-6);
    assert_near(a.stages[0].own_ns, 2000, 1e-6);
    assert_near(a.stages[1].ratio, 32, 1e-9);
    assert_string_equal(a.pipeline, "range(0, 100000) | map(decode) | batch(32)");
}

/* Bound for 4 cores: the map parallel on the pool; the consumer keeps batch (2000) and the
 * handoff (32 * 500); in all 2000 + 16000 + 32 * 50 + 32 * 10000 = 339600 ns of CPU per
 * batch, so 4 cores allow 4e9 / 339600 batches/s. */
static void test_map_bound_bound_for_four_cores(void **state)
{
    sl_profile_snapshot s;
    map_bound(&s);
    assert_near(sl_profile_bound(&s, 4), 4e9 / 339600, 1e-6);
    /* one core: the map stays sequential, the bound is the current rate */
    assert_near(sl_profile_bound(&s, 1), 1e9 / 323600, 1e-6);
}

static void test_map_bound_predicts_parallel_map_text(void **state)
{
    sl_profile_snapshot s;
    map_bound(&s);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 4, &a), 0);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_PARALLEL);
    assert_non_null(p);
    assert_int_equal(p->stage, 1);
    /* 3 workers: 3e9 / 320000 = 9375/s; 4: the cores' 11779/s: the best needs all four */
    assert_string_equal(p->what, "map(decode, parallel=4)");
    assert_string_equal(p->text, "range(0, 100000) | map(decode, parallel=4) | batch(32)");
    assert_near(p->rate, 4e9 / 339600, 1e-6);
    assert_near(p->speedup, (4e9 / 339600) / (1e9 / 323600), 1e-6);
}

/* Everything below batch is deterministic: a cache after batch replays batches (100 ns each)
 * from the second epoch on. */
static void test_map_bound_predicts_cache_point(void **state)
{
    sl_profile_snapshot s;
    map_bound(&s);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 4, &a), 0);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_CACHE);
    assert_non_null(p);
    assert_string_equal(p->text, "range(0, 100000) | map(decode) | batch(32) | cache");
    assert_near(p->rate, 1e7, 1e-6);
    /* best first */
    assert_ptr_equal(p, &a.predictions[0]);
}

/* A random augmentation is not cached: the cache point stops below it. */
static void test_cache_point_stays_below_random_maps(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 2;
    stage(&s, 0, "map(random_resized_crop(224))", "map", -1, 1000, 10000 + 1000);
    stage(&s, 1, "map(decode_jpeg)", "map", 0, 1000, 10000);
    stage(&s, 2, "records(\"a.sluice\")", "records", 1, 1000, 100);
    s.elapsed_ns = 1000ull * 11000;
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 1);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_CACHE);
    assert_non_null(p);
    assert_string_equal(p->text, "records(\"a.sluice\") | map(decode_jpeg) | cache | "
                                 "map(random_resized_crop(224))");
}

/* records (5 us per record) read by a parallel map's coordinator; the map's function costs
 * 1 us on 4 workers; batch(32) and prefetch(2) above. The coordinator thread is the limit:
 * 32 * 5000 ns per batch. */
static void source_bound(sl_profile_snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->threads = 4;
    const uint64_t batches = 100, n = 3200;
    s->elapsed_ns = batches * 160000;
    stage(s, 0, "prefetch(2)", "prefetch", -1, batches, 160100);
    s->stages[0].work_ahead = 1;
    s->stages[0].slots = 2;
    s->stages[0].wait_ns = batches * 160000; /* all of it waiting but a 100 ns handoff */
    stage(s, 1, "batch(32)", "batch", 0, batches, 32 * 5100.0 + 500);
    stage(s, 2, "map(f, parallel=4)", "map", 1, n, 5100);
    s->stages[2].work_ahead = 1;
    s->stages[2].parallel = 4;
    s->stages[2].slots = 16;
    s->stages[2].wait_ns = n * 5000; /* the handoff: 100 ns */
    s->stages[2].busy_ns = n * 1000;
    s->stages[2].busy_elements = n;
    s->stages[2].fill_sum = 10;
    s->stages[2].workers_sum = 20;
    s->stages[2].fill_samples = 10;
    stage(s, 3, "records(\"train-*.sluice\")", "records", 2, n, 5000);
}

static void test_source_bound_names_the_source(void **state)
{
    sl_profile_snapshot s;
    source_bound(&s);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 0, &a), 0);
    assert_int_equal(a.bottleneck, 3);
    assert_near(a.model_rate, 1e9 / 160000, 1e-6);
    /* three threads: the consumer's, the prefetch's and the map's coordinator */
    assert_int_equal(a.stages[0].thread, 0);
    assert_int_equal(a.stages[1].thread, 1);
    assert_int_equal(a.stages[2].thread, 1);
    assert_int_equal(a.stages[3].thread, 3);
    assert_near(a.stages[2].own_ns, 1000, 1e-6);
    assert_near(a.stages[2].per_core_rate, 1e6, 1e-6);
    assert_near(a.stages[2].fill, 1.0 / 16, 1e-6);
    assert_near(a.stages[2].workers, 2, 1e-6);
    assert_near(a.stages[0].wait_share, 1.0, 1e-6);
    assert_near(a.stages[3].rate, 3200 / 0.016, 1e-6);
}

/* More cores do not help a sequential source: the bound is its thread's rate, and no map
 * parallelism is proposed. */
static void test_source_bound_bound_is_the_source(void **state)
{
    sl_profile_snapshot s;
    source_bound(&s);
    assert_near(sl_profile_bound(&s, 4), 1e9 / 160000, 1e-6);
    assert_near(sl_profile_bound(&s, 64), 1e9 / 160000, 1e-6);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 64, &a), 0);
    assert_null(find(&a, SL_PROFILE_PARALLEL));
    assert_null(find(&a, SL_PROFILE_PREFETCH));
}

/* range | batch(256) with a 50 us batch: the batch is the bottleneck; a prefetch between range
 * and batch would add a handoff per range element (256 * 500 ns) and is not proposed. */
static void test_batch_bound_names_the_batch(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 2;
    stage(&s, 0, "batch(256)", "batch", -1, 1000, 256 * 20.0 + 50000);
    stage(&s, 1, "range(0, 256000)", "range", 0, 256000, 20);
    s.elapsed_ns = 1000ull * (256 * 20 + 50000);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 0);
    assert_near(a.stages[0].own_ns, 50000, 1e-6);
    assert_near(a.bound, 1e9 / 55120, 1e-6);
    assert_null(find(&a, SL_PROFILE_PARALLEL));
    assert_null(find(&a, SL_PROFILE_PREFETCH));
}

/* Two costly stages on one thread (parse 4 us, a sequential map 4 us, one core): a prefetch
 * between them runs them on two threads; the consumer keeps the map and a 500 ns handoff. */
static void test_prefetch_splits_the_limiting_thread(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 1;
    stage(&s, 0, "map(decode)", "map", -1, 1000, 8100);
    stage(&s, 1, "parse_example(\"x:int64\")", "parse_example", 0, 1000, 4100);
    stage(&s, 2, "range(0, 1000)", "range", 1, 1000, 100);
    s.elapsed_ns = 1000ull * 8100;
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 0);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_PREFETCH);
    assert_non_null(p);
    assert_int_equal(p->stage, 1);
    assert_string_equal(p->text,
                        "range(0, 1000) | parse_example(\"x:int64\") | prefetch(2) | map(decode)");
    /* the consumer: 4000 + 500; the prefetch's thread: 4000 + 100 */
    assert_near(p->rate, 1e9 / 4500, 1e-6);
}

/* prefetch(4) whose consumer waits 30% of the time while its producer is blocked 30%: the
 * flow is bursty; a prefetch twice as big reaches the model's rate (the producer thread's
 * 1e9 / 5000). */
static void test_stalled_prefetch_predicts_a_bigger_one(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 2;
    const uint64_t n = 1000, elapsed = n * 8000; /* measured: 125k/s */
    s.elapsed_ns = elapsed;
    stage(&s, 0, "prefetch(4)", "prefetch", -1, n, 2500);
    s.stages[0].work_ahead = 1;
    s.stages[0].slots = 4;
    s.stages[0].wait_ns = n * 2400;
    s.stages[0].blocked_ns = n * 2400;
    s.stages[0].fill_sum = 30;
    s.stages[0].fill_samples = 15;
    stage(&s, 1, "map(f)", "map", 0, n, 5000);
    stage(&s, 2, "range(0, 1000)", "range", 1, n, 100);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 1);
    assert_near(a.model_rate, 1e9 / 5000, 1e-6);
    assert_near(a.rate, 125000, 1e-6);
    assert_near(a.stages[0].wait_share, 0.3, 1e-6);
    assert_near(a.stages[0].blocked_share, 0.3, 1e-6);
    assert_near(a.stages[0].fill, 0.5, 1e-6);
    const sl_profile_prediction *p = NULL;
    for (int i = 0; i < a.npredictions; i++)
        if (a.predictions[i].change == SL_PROFILE_PREFETCH && a.predictions[i].stage == 0)
            p = &a.predictions[i];
    assert_non_null(p);
    assert_string_equal(p->what, "prefetch(8)");
    assert_string_equal(p->text, "range(0, 1000) | map(f) | prefetch(8)");
    assert_near(p->rate, 1e9 / 5000, 1e-6);
    assert_near(p->speedup, 200000.0 / 125000, 1e-6);
}

/* An existing parallel argument is replaced, the others kept in order. */
static void test_parallel_text_replaces_the_argument(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 8;
    s.elapsed_ns = 1000ull * 5000;
    stage(&s, 0, "map(f, g(1, 2), parallel=2, ordered=false)", "map", -1, 1000, 5000);
    s.stages[0].work_ahead = 1;
    s.stages[0].parallel = 2;
    s.stages[0].slots = 16;
    s.stages[0].wait_ns = 1000ull * 4900;
    s.stages[0].busy_ns = 1000ull * 10000;
    s.stages[0].busy_elements = 1000;
    stage(&s, 1, "range(0, 1000)", "range", 0, 1000, 100);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 8, &a), 0);
    assert_int_equal(a.bottleneck, 0);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_PARALLEL);
    assert_non_null(p);
    /* 10 us on k workers against the coordinator's 100 ns and 8 cores: 8 is the best */
    assert_string_equal(p->what, "map(f, g(1, 2), ordered=false, parallel=8)");
    assert_string_equal(p->text, "range(0, 1000) | map(f, g(1, 2), ordered=false, parallel=8)");
}

/* range | map(g) | map(f, parallel=2) | map(h) on 2 cores: the sequential g (20 us) shares the
 * parallel map's coordinator thread with the coordinator's own 15 us, so that thread allows
 * 1e9 / 35050 /s. Moving g onto the pool with one worker would already reach the cores' limit
 * (2e9 / 40250: h 4500, f's handoff and function 100 + 100, the coordinator 15000, g's new
 * handoff 500, g 20000, range 50), but parallel=1 is the sequential map, which is what g is now:
 * the proposal must be parallel=2. */
static void test_sequential_map_is_proposed_parallel_two(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 2;
    const uint64_t n = 1000;
    s.elapsed_ns = n * 39650;
    stage(&s, 0, "map(h)", "map", -1, n, 39650);
    stage(&s, 1, "map(f, parallel=2)", "map", 0, n, 35150);
    s.stages[1].work_ahead = 1;
    s.stages[1].parallel = 2;
    s.stages[1].slots = 8;
    s.stages[1].wait_ns = n * 35050;
    s.stages[1].busy_ns = n * 100;
    s.stages[1].busy_elements = n;
    s.stages[1].producer_ns = n * (15000 + 20050);
    s.stages[1].producer_elements = n;
    stage(&s, 2, "map(g)", "map", 1, n, 20050);
    stage(&s, 3, "range(0, 1000)", "range", 2, n, 50);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 2);
    assert_near(a.model_rate, 1e9 / 35050, 1e-6);
    const sl_profile_prediction *p = find(&a, SL_PROFILE_PARALLEL);
    assert_non_null(p);
    assert_string_equal(p->what, "map(g, parallel=2)");
    assert_string_equal(p->text,
                        "range(0, 1000) | map(g, parallel=2) | map(f, parallel=2) | map(h)");
    assert_near(p->rate, 2e9 / 40250, 1e-6);
}

/* A prefetch whose coordinator spends 10 us per element beyond its input's `next` (wakeups,
 * snapshots): its thread is the limit and the prefetch itself is named. */
static void test_prefetch_coordinator_overhead_is_counted(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 2;
    const uint64_t n = 6400;
    s.elapsed_ns = n * 10100;
    stage(&s, 0, "prefetch(2)", "prefetch", -1, n, 10000);
    s.stages[0].work_ahead = 1;
    s.stages[0].slots = 2;
    s.stages[0].wait_ns = n * 9900;
    s.stages[0].producer_ns = n * 10100;
    s.stages[0].producer_elements = n;
    stage(&s, 1, "range(0, 6400)", "range", 0, n, 100);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), 0);
    assert_int_equal(a.bottleneck, 0);
    /* its thread: range 100 + the coordinator's 10000 */
    assert_near(a.model_rate, 1e9 / 10100, 1e-6);
    assert_near(a.stages[0].own_ns, 100 + 10000, 1e-6);
    assert_int_equal(a.stages[1].thread, 1);
}

/* Every measured call carries one clock read (30 ns here): range's 40 ns is 10 ns of work, so
 * batch(64)'s own cost is 1170 - 30 - 64 * 10 = 500 ns, not 1170 - 64 * 40 (< 0). */
static void test_clock_cost_is_taken_out(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    s.threads = 1;
    s.clock_ns = 30;
    s.elapsed_ns = 1000ull * 1170;
    stage(&s, 0, "batch(64)", "batch", -1, 1000, 1170);
    stage(&s, 1, "range(0, 64000)", "range", 0, 64000, 40);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 1, &a), 0);
    assert_near(a.stages[0].own_ns, 500, 1e-6);
    assert_near(a.stages[1].own_ns, 10, 1e-6);
    assert_int_equal(a.bottleneck, 1); /* 64 * 10 ns > 500 ns */
}

static void test_nothing_returned_is_refused(void **state)
{
    sl_profile_snapshot s;
    memset(&s, 0, sizeof s);
    sl_profile_analysis a;
    assert_int_equal(sl_profile_analyze(&s, 2, &a), SL_ERR_INVAL);
    assert_int_equal(a.bottleneck, -1);
    stage(&s, 0, "range(0, 0)", "range", -1, 0, 0);
    assert_int_equal(sl_profile_analyze(&s, 2, &a), SL_ERR_INVAL);
    assert_true(sl_profile_bound(&s, 2) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_bound_names_the_map),
        cmocka_unit_test(test_map_bound_bound_for_four_cores),
        cmocka_unit_test(test_map_bound_predicts_parallel_map_text),
        cmocka_unit_test(test_map_bound_predicts_cache_point),
        cmocka_unit_test(test_cache_point_stays_below_random_maps),
        cmocka_unit_test(test_source_bound_names_the_source),
        cmocka_unit_test(test_source_bound_bound_is_the_source),
        cmocka_unit_test(test_batch_bound_names_the_batch),
        cmocka_unit_test(test_prefetch_splits_the_limiting_thread),
        cmocka_unit_test(test_stalled_prefetch_predicts_a_bigger_one),
        cmocka_unit_test(test_parallel_text_replaces_the_argument),
        cmocka_unit_test(test_prefetch_coordinator_overhead_is_counted),
        cmocka_unit_test(test_sequential_map_is_proposed_parallel_two),
        cmocka_unit_test(test_clock_cost_is_taken_out),
        cmocka_unit_test(test_nothing_returned_is_refused),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
