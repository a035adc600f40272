/* The AUTOTUNE policy on made-up counter snapshots with a fake clock (no threads): a small
 * simulator turns the knob values the policy chose into the counters an interval would show
 * (output rate the smallest of the map's p / cost, the source's rate and the prefetch's
 * capacity), and the tests check where the knobs go: a map-bound pipeline climbs to the CPU
 * budget, a source-bound one stays or backs off, a prefetch never exceeds its memory share, a
 * settled map is re-chosen after its cost per element changes, and a map cheaper than its
 * handoff goes inline (and back to workers when it gets costly). */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/profile.h"

enum { STEP_NS = 100000000 }; /* 100 ms intervals */

/* The pipeline `range | map(f, parallel=auto)` or `... | prefetch(auto)` and its costs. */
typedef struct sim {
    sl_profile_snapshot s;
    int map, src, pf;   /* stage indexes (pf -1: no prefetch) */
    double map_ns;      /* the map's cost per element on one worker */
    double src_ns;      /* the source's cost per element */
    double pf_rate;     /* prefetch: output elements/s per ring slot (bursty input); 0: none */
    double handoff_ns;  /* a parallel map's handing over of one element (serial); 0: free */
    double map_blocked; /* share of each interval the map's coordinator waits for ring room */
    double elem_bytes;  /* tensor bytes per element */
    int64_t parallel;   /* what the policy set */
    int64_t capacity;   /* prefetch: what the policy set */
} sim;

static void set_stage(sl_profile_snapshot *s, int i, const char *text, const char *kind, int parent,
                      int work_ahead)
{
    s->stages[i] = (sl_profile_stage){.stage = text,
                                      .kind = kind,
                                      .parent = parent,
                                      .depth = parent < 0 ? 0 : s->stages[parent].depth + 1,
                                      .chain = 1,
                                      .work_ahead = work_ahead};
    s->nstages = SL_MAX(s->nstages, i + 1);
}

static void sim_init(sim *m, int threads, int with_prefetch, double map_ns, double src_ns)
{
    memset(m, 0, sizeof *m);
    m->s.threads = threads;
    m->map_ns = map_ns;
    m->src_ns = src_ns;
    m->parallel = threads;
    m->pf = -1;
    int i = 0;
    if (with_prefetch) {
        m->pf = i;
        set_stage(&m->s, i++, "prefetch(auto)", "prefetch", -1, 1);
        m->s.stages[m->pf].slots = m->capacity = 4;
    }
    m->map = i;
    set_stage(&m->s, i, "map(f, parallel=auto)", "map", i - 1, 1);
    i++;
    m->src = i;
    set_stage(&m->s, i, "range(1000000000)", "range", i - 1, 0);
}

/* One interval of STEP_NS under the current settings. Parallelism 0 is inline mode: the
 * consumer pulls from the source and runs the map itself, with no handoff. */
static void sim_advance(sim *m)
{
    double rate = m->parallel == 0 ? 1e9 / (m->map_ns + m->src_ns)
                                   : SL_MIN((double)m->parallel * 1e9 / m->map_ns, 1e9 / m->src_ns);
    if (m->parallel > 0 && m->handoff_ns > 0)
        rate = SL_MIN(rate, 1e9 / m->handoff_ns);
    if (m->pf >= 0 && m->pf_rate > 0)
        rate = SL_MIN(rate, m->pf_rate * (double)m->capacity);
    const double dt = STEP_NS;
    const uint64_t n = (uint64_t)(rate * dt / 1e9);
    const uint64_t samples = SL_MAX((uint64_t)2, n / 64);
    /* Little's law; inline, the consumer's sampled time in the function instead */
    const double workers = m->parallel == 0 ? 0 : rate * m->map_ns / 1e9;
    m->s.elapsed_ns += STEP_NS;
    for (int i = 0; i < m->s.nstages; i++)
        m->s.stages[i].elements += n;
    sl_profile_stage *mp = &m->s.stages[m->map];
    mp->parallel = (int)m->parallel;
    mp->blocked_ns += (uint64_t)(m->map_blocked * STEP_NS);
    mp->fill_samples += samples;
    mp->workers_sum += (uint64_t)llround(workers * (double)samples);
    if (m->parallel == 0)
        mp->helped_ns += (uint64_t)((double)n * m->map_ns);
    /* the consumer is fast: it waits for the map whenever the map is the limit */
    else if (m->pf < 0)
        mp->wait_ns += STEP_NS / 2;
    if (m->pf >= 0) {
        sl_profile_stage *p = &m->s.stages[m->pf];
        p->slots = m->capacity;
        p->timed += n / 64 + 1;
        p->timed_bytes += (uint64_t)(m->elem_bytes * (double)(n / 64 + 1));
        /* bursty: both sides stall */
        p->wait_ns += STEP_NS / 5;
        p->blocked_ns += STEP_NS / 10;
        p->producer_ns += (uint64_t)(m->src_ns * (double)n);
        p->producer_elements += n;
    }
}

static void apply(sim *m, const sl_autotune_decision *d)
{
    for (int i = 0; i < d->n; i++) {
        if (d->set[i].kind == SL_AUTOTUNE_MAP_PARALLEL ||
            d->set[i].kind == SL_AUTOTUNE_INTERLEAVE_PARALLEL) {
            assert_int_equal(d->set[i].stage, m->map);
            m->parallel = d->set[i].value;
        } else {
            assert_int_equal(d->set[i].stage, m->pf);
            m->capacity = d->set[i].value;
        }
    }
}

/* Runs `steps` intervals through the policy; max_parallel: the largest parallelism seen. */
static void run(sim *m, sl_autotune_state *st, const sl_autotune_limits *lim, int steps,
                int64_t *max_parallel)
{
    for (int i = 0; i < steps; i++) {
        const sl_profile_snapshot prev = m->s;
        sim_advance(m);
        sl_autotune_decision d;
        assert_int_equal(sl_autotune_step(st, &prev, &m->s, lim, &d), 0);
        assert_false(d.skipped);
        apply(m, &d);
        if (max_parallel)
            *max_parallel = SL_MAX(*max_parallel, m->parallel);
    }
}

static void start(sim *m, sl_autotune_state *st, int knobs)
{
    sl_autotune_decision d;
    assert_int_equal(sl_autotune_init(st, &m->s, &d), knobs);
    apply(m, &d);
}

/* As start, then the map knob at one worker, as if an earlier workload had brought it there:
 * where climbing and inline trials begin. */
static void start_at_one(sim *m, sl_autotune_state *st)
{
    start(m, st, 1);
    st->knobs[0].value = m->parallel = 1;
}

static void test_init_finds_only_auto_knobs(void **state)
{
    sl_profile_snapshot s = {.threads = 4};
    set_stage(&s, 0, "prefetch(auto)", "prefetch", -1, 1);
    s.stages[0].slots = 4;
    set_stage(&s, 1, "map(g, parallel=3)", "map", 0, 1);
    set_stage(&s, 2, "prefetch(2)", "prefetch", 1, 1);
    set_stage(&s, 3, "map(f, parallel=auto)", "map", 2, 1);
    set_stage(&s, 4, "range(10)", "range", 3, 0);
    sl_autotune_state st;
    sl_autotune_decision d;
    assert_int_equal(sl_autotune_init(&st, &s, &d), 2);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.set[0].stage, 0);
    assert_int_equal(d.set[0].kind, SL_AUTOTUNE_PREFETCH);
    assert_int_equal(d.set[0].value, 4); /* kept as opened */
    assert_int_equal(d.set[1].stage, 3);
    assert_int_equal(d.set[1].kind, SL_AUTOTUNE_MAP_PARALLEL);
    assert_int_equal(d.set[1].value, 4); /* maps start with the CPU budget shared out */
}

/* Two auto maps share the budget at the start; one map of an odd budget takes it all. */
static void test_maps_start_with_the_budget_shared(void **state)
{
    sl_profile_snapshot s = {.threads = 5};
    set_stage(&s, 0, "map(g, parallel=auto)", "map", -1, 1);
    set_stage(&s, 1, "map(f, parallel=auto)", "map", 0, 1);
    set_stage(&s, 2, "range(10)", "range", 1, 0);
    sl_autotune_state st;
    sl_autotune_decision d;
    assert_int_equal(sl_autotune_init(&st, &s, &d), 2);
    assert_int_equal(d.set[0].value, 2);
    assert_int_equal(d.set[1].value, 2);
    s.nstages = 0;
    set_stage(&s, 0, "map(f, parallel=auto)", "map", -1, 1);
    set_stage(&s, 1, "range(10)", "range", 0, 0);
    assert_int_equal(sl_autotune_init(&st, &s, &d), 1);
    assert_int_equal(d.set[0].value, 5);
}

static void test_map_bound_climbs_to_the_cpu_budget(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e6, 1e3); /* 1 ms per element vs 1 us at the source */
    sl_autotune_state st;
    start_at_one(&m, &st);
    const sl_autotune_limits lim = {.threads = 8};
    int64_t max_parallel = 0;
    run(&m, &st, &lim, 12, &max_parallel);
    assert_int_equal(m.parallel, 8);
    assert_int_equal(max_parallel, 8); /* never past the budget */
}

/* An interleave's runners are its workers: only its own parallel=auto makes it a knob (not an
 * auto map inside its inner pipeline), and it starts at one runner. */
static void test_init_finds_auto_interleave(void **state)
{
    sl_profile_snapshot s = {.threads = 4};
    set_stage(&s, 0,
              "interleave(range($value) | map(f, parallel=auto), cycle_length=4, parallel=2)",
              "interleave", -1, 0);
    s.stages[0].parallel = 2;
    set_stage(&s, 1, "interleave(records($path), cycle_length=4, parallel=auto, ordered=true)",
              "interleave", 0, 0);
    s.stages[1].parallel = 4;
    set_stage(&s, 2, "files(\"*.sluice\")", "files", 1, 0);
    sl_autotune_state st;
    sl_autotune_decision d;
    assert_int_equal(sl_autotune_init(&st, &s, &d), 1);
    assert_int_equal(d.set[0].stage, 1);
    assert_int_equal(d.set[0].kind, SL_AUTOTUNE_INTERLEAVE_PARALLEL);
    assert_int_equal(d.set[0].value, 1);
}

/* Slow inner streams (1 ms an element on one runner) and a consumer waiting on them: the
 * runners in use climb to the CPU budget as a map's workers would. */
static void test_interleave_bound_climbs_to_the_cpu_budget(void **state)
{
    sim m;
    sim_init(&m, 4, 0, 1e6, 1e3);
    set_stage(&m.s, m.map, "interleave(records($path), cycle_length=8, parallel=auto)",
              "interleave", -1, 0);
    m.s.stages[m.map].parallel = 4;
    sl_autotune_state st;
    start(&m, &st, 1);
    assert_int_equal(st.knobs[0].kind, SL_AUTOTUNE_INTERLEAVE_PARALLEL);
    assert_int_equal(m.parallel, 1);
    const sl_autotune_limits lim = {.threads = 4};
    int64_t max_parallel = 0;
    run(&m, &st, &lim, 12, &max_parallel);
    assert_int_equal(m.parallel, 4);
    assert_int_equal(max_parallel, 4);
}

static void test_source_bound_map_stays_at_one(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e4, 1e5); /* the source is 10x slower than the map */
    sl_autotune_state st;
    start(&m, &st, 1);
    const sl_autotune_limits lim = {.threads = 8};
    int64_t max_parallel = 0;
    run(&m, &st, &lim, 12, &max_parallel);
    assert_int_equal(max_parallel, 1);
}

static void test_source_bound_map_backs_off(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e4, 1e5);
    sl_autotune_state st;
    start(&m, &st, 1);
    st.knobs[0].value = m.parallel = 8; /* as if chosen for an earlier, costlier workload */
    const sl_autotune_limits lim = {.threads = 8};
    run(&m, &st, &lim, 3, NULL);
    assert_int_equal(m.parallel, 1);
}

/* The same idle map, but idle because its consumer is slow (its coordinator waits for ring
 * room most of the time): it keeps its workers for when the consumer speeds up. */
static void test_map_held_back_by_its_consumer_keeps_its_workers(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e4, 1e5);
    m.map_blocked = 0.8;
    sl_autotune_state st;
    start(&m, &st, 1);
    assert_int_equal(m.parallel, 8);
    const sl_autotune_limits lim = {.threads = 8};
    run(&m, &st, &lim, 5, NULL);
    assert_int_equal(m.parallel, 8);
}

/* Past what the source allows, a doubling gains nothing: reverted, and the knob settles. */
static void test_climb_stops_where_the_rate_stops_rising(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e6, 2.5e5); /* the source allows 4 workers' worth */
    sl_autotune_state st;
    start_at_one(&m, &st);
    const sl_autotune_limits lim = {.threads = 8};
    run(&m, &st, &lim, 20, NULL);
    assert_int_equal(m.parallel, 4);
    assert_int_equal(st.knobs[0].settled, 1);
}

static void test_cost_change_reopens_the_choice(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e6, 2.5e5);
    sl_autotune_state st;
    start_at_one(&m, &st);
    const sl_autotune_limits lim = {.threads = 8};
    run(&m, &st, &lim, 20, NULL);
    assert_int_equal(m.parallel, 4);
    m.map_ns = 4e6; /* the map became 4x costlier: 4 workers now give 1000/s */
    run(&m, &st, &lim, 10, NULL);
    assert_int_equal(m.parallel, 8);
}

/* A map cheaper than its handoff (0.1 us against 1 us): one worker gains nothing from a
 * second, so the knob settles at 1, tries inline once, and keeps it (5x the rate). */
static void test_cheap_map_goes_inline(void **state)
{
    sim m;
    sim_init(&m, 2, 0, 100, 100);
    m.handoff_ns = 1000;
    sl_autotune_state st;
    start_at_one(&m, &st);
    const sl_autotune_limits lim = {.threads = 2};
    run(&m, &st, &lim, 12, NULL);
    assert_int_equal(m.parallel, 0);
    assert_int_equal(st.knobs[0].settled, 1);
    assert_int_equal(st.knobs[0].before, 0);
}

/* An inline map whose cost rises 1000x goes back to workers and climbs to the budget. */
static void test_inline_map_returns_to_workers_when_its_cost_rises(void **state)
{
    sim m;
    sim_init(&m, 4, 0, 100, 100);
    m.handoff_ns = 1000;
    sl_autotune_state st;
    start_at_one(&m, &st);
    const sl_autotune_limits lim = {.threads = 4};
    run(&m, &st, &lim, 12, NULL);
    assert_int_equal(m.parallel, 0);
    m.map_ns = 1e5;
    run(&m, &st, &lim, 12, NULL);
    assert_int_equal(m.parallel, 4);
}

/* Intervals (of 20) a map spent inline, its source and map costing these per element. */
static int inline_intervals(double map_ns, double src_ns, sl_autotune_state *st, sim *m)
{
    sim_init(m, 8, 0, map_ns, src_ns);
    start_at_one(m, st);
    const sl_autotune_limits lim = {.threads = 8};
    int n = 0;
    for (int i = 0; i < 20; i++) {
        run(m, st, &lim, 1, NULL);
        n += m->parallel == 0;
    }
    return n;
}

/* A 2 us map settled at one worker (the source allows no more) tries inline once, loses half
 * its rate (the consumer would run source and map in turn), reverts, and never retries. */
static void test_inline_trial_that_loses_is_reverted_once(void **state)
{
    sim m;
    sl_autotune_state st;
    assert_int_equal(inline_intervals(2e3, 2e3, &st, &m), 1);
    assert_int_equal(m.parallel, 1);
    assert_int_equal(st.knobs[0].inline_tried, 1);
}

/* The same at 100 us an element: too costly for a handoff to matter, inline is never tried. */
static void test_costly_map_never_tries_inline(void **state)
{
    sim m;
    sl_autotune_state st;
    assert_int_equal(inline_intervals(1e5, 1e5, &st, &m), 0);
    assert_int_equal(m.parallel, 1);
    assert_int_equal(st.knobs[0].inline_tried, 0);
}

static void test_prefetch_grows_within_its_memory_budget(void **state)
{
    sim m;
    sim_init(&m, 2, 1, 1e3, 1e3);
    m.pf_rate = 100; /* each slot adds 100 elements/s: the ring keeps paying off */
    m.elem_bytes = 1e6;
    sl_autotune_state st;
    start(&m, &st, 2);
    assert_int_equal(m.capacity, 4);
    const sl_autotune_limits lim = {.threads = 2, .memory_bytes = 20000000};
    const int64_t fits = (int64_t)(20000000 / (1e6 + (double)sizeof(sl_element)));
    for (int i = 0; i < 15; i++) {
        run(&m, &st, &lim, 1, NULL);
        assert_true(m.capacity <= fits);
    }
    assert_int_equal(m.capacity, fits);
}

static void test_prefetch_shrinks_when_elements_grow(void **state)
{
    sim m;
    sim_init(&m, 2, 1, 1e3, 1e3);
    m.pf_rate = 100;
    m.elem_bytes = 1e6;
    sl_autotune_state st;
    start(&m, &st, 2);
    const sl_autotune_limits lim = {.threads = 2, .memory_bytes = 20000000};
    run(&m, &st, &lim, 15, NULL);
    m.elem_bytes = 4e6; /* only 4 fit now */
    m.s.stages[m.pf].timed = m.s.stages[m.pf].timed_bytes = 0;
    run(&m, &st, &lim, 1, NULL);
    assert_int_equal(m.capacity, 4);
}

static void test_short_interval_is_skipped(void **state)
{
    sim m;
    sim_init(&m, 8, 0, 1e6, 1e3);
    sl_autotune_state st;
    start(&m, &st, 1);
    sl_profile_snapshot now = m.s;
    now.elapsed_ns += 1000000;
    now.stages[0].elements += 3;
    now.stages[1].elements += 3;
    sl_autotune_decision d;
    const sl_autotune_limits lim = {0};
    assert_int_equal(sl_autotune_step(&st, &m.s, &now, &lim, &d), 0);
    assert_int_equal(d.skipped, 1);
    assert_int_equal(d.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_finds_only_auto_knobs),
        cmocka_unit_test(test_maps_start_with_the_budget_shared),
        cmocka_unit_test(test_map_bound_climbs_to_the_cpu_budget),
        cmocka_unit_test(test_init_finds_auto_interleave),
        cmocka_unit_test(test_interleave_bound_climbs_to_the_cpu_budget),
        cmocka_unit_test(test_source_bound_map_stays_at_one),
        cmocka_unit_test(test_source_bound_map_backs_off),
        cmocka_unit_test(test_map_held_back_by_its_consumer_keeps_its_workers),
        cmocka_unit_test(test_climb_stops_where_the_rate_stops_rising),
        cmocka_unit_test(test_cost_change_reopens_the_choice),
        cmocka_unit_test(test_cheap_map_goes_inline),
        cmocka_unit_test(test_inline_map_returns_to_workers_when_its_cost_rises),
        cmocka_unit_test(test_inline_trial_that_loses_is_reverted_once),
        cmocka_unit_test(test_costly_map_never_tries_inline),
        cmocka_unit_test(test_prefetch_grows_within_its_memory_budget),
        cmocka_unit_test(test_prefetch_shrinks_when_elements_grow),
        cmocka_unit_test(test_short_interval_is_skipped),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
