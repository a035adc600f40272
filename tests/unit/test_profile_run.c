/* Profiling running iterators: stages that sleep (not spin) with costs 20x apart, on one
 * thread or on both sides of a prefetch, and the analysis names the slow one (20x, and 640
 * elements so each stage has 10 timed calls, because on a loaded machine a 100 us sleep can
 * take milliseconds); the snapshot's
 * structure (parents, main chain, work-ahead stages); the trace file of a run with a parallel
 * map validated by Debian's Python json module. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sluice/pipeline_build.h"
#include "sluice/profile.h"

/* nap_short sleeps 100 us, nap_long 2000 us: 20x apart, beyond a loaded machine's jitter. */
static int run_nap(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                   size_t errcap)
{
    const long us = (long)(intptr_t)user;
    const struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < in->count; i++)
        sl_element_push(out, in->names[i], &in->tensors[i]);
    sl_element_release(in);
    return 0;
}

static int make_nap(void *user, const sl_ast_call *call, sl_map_def *out, char *err, size_t errcap)
{
    out->fn = run_nap;
    out->user = user;
    return 0;
}

static sl_dataset *build(const char *text)
{
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_registry_add(reg, "nap_short", make_nap, (void *)100, "100 us"), 0);
    assert_int_equal(sl_registry_add(reg, "nap_long", make_nap, (void *)2000, "2000 us"), 0);
    assert_int_equal(sl_registry_add(reg, "nap_tiny", make_nap, (void *)20, "20 us"), 0);
    sl_dataset *ds;
    char err[256];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        fail_msg("%s: %s", text, err);
    sl_registry_free(reg);
    return ds;
}

/* Runs text to its end and returns the analysis' bottleneck's text. */
static void bottleneck_of(const char *text, char *out, size_t cap)
{
    sl_dataset *ds = build(text);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0)
        sl_element_release(&e);
    assert_int_equal(rc, SL_EOF);
    sl_profile_snapshot *s = sl_malloc(sizeof *s);
    sl_profile_analysis *a = sl_malloc(sizeof *a);
    assert_non_null(s);
    assert_non_null(a);
    sl_iter_profile(it, s);
    assert_int_equal(sl_profile_analyze(s, 2, a), 0);
    assert_true(a->bottleneck >= 0);
    snprintf(out, cap, "%s", s->stages[a->bottleneck].stage);
    sl_free(s);
    sl_free(a);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_slow_map_on_one_thread_is_the_bottleneck(void **state)
{
    char b[256];
    bottleneck_of("range(640) | map(nap_short) | map(nap_long)", b, sizeof b);
    assert_string_equal(b, "map(nap_long)");
    bottleneck_of("range(640) | map(nap_long) | map(nap_short)", b, sizeof b);
    assert_string_equal(b, "map(nap_long)");
}

/* The slow map on the prefetch's thread, then on the consumer's: both times it is named,
 * although the stage above a prefetch only waits. */
static void test_slow_map_across_a_prefetch_is_the_bottleneck(void **state)
{
    char b[256];
    bottleneck_of("range(640) | map(nap_long) | prefetch(2) | map(nap_short)", b, sizeof b);
    assert_string_equal(b, "map(nap_long)");
    bottleneck_of("range(640) | map(nap_short) | prefetch(2) | map(nap_long)", b, sizeof b);
    assert_string_equal(b, "map(nap_long)");
}

/* Parents, the main chain and work-ahead flags as the analysis needs them; the map's
 * function time counted on its workers. */
static void test_snapshot_describes_the_pipeline(void **state)
{
    sl_dataset *ds = build("range(640) | map(nap_tiny, parallel=2) | batch(8) | prefetch(2)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
    sl_element e;
    int n = 0;
    while (sl_iter_next(it, &e) == 0) {
        sl_element_release(&e);
        n++;
    }
    assert_int_equal(n, 80);
    sl_profile_snapshot *s = sl_malloc(sizeof *s);
    assert_non_null(s);
    sl_iter_profile(it, s);
    assert_int_equal(s->nstages, 4);
    assert_int_equal(s->threads, 2);
    assert_string_equal(s->stages[0].kind, "prefetch");
    assert_int_equal(s->stages[0].parent, -1);
    assert_int_equal(s->stages[0].work_ahead, 1);
    assert_int_equal(s->stages[0].slots, 2);
    assert_string_equal(s->stages[2].stage, "map(nap_tiny, parallel=2)");
    assert_int_equal(s->stages[2].parent, 1);
    assert_int_equal(s->stages[2].work_ahead, 1);
    assert_int_equal(s->stages[2].parallel, 2);
    assert_int_equal(s->stages[1].work_ahead, 0);
    assert_int_equal(s->stages[3].parent, 2);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s->stages[i].chain, 1);
    assert_int_equal(s->stages[2].elements, 640);
    assert_int_equal(s->stages[2].busy_elements, 640);
    /* 640 naps of at least 20 us each */
    assert_true(s->stages[2].busy_ns >= 640 * 20000ull);
    /* batches of 8 int64: 64 bytes each, counted from the sampled calls */
    sl_stage_stats st[4];
    assert_int_equal(sl_iter_stats(it, st, 4), 4);
    assert_int_equal(st[1].bytes, 80 * 64);
    assert_int_equal(st[2].busy_ns, s->stages[2].busy_ns);
    sl_free(s);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* Checks a Chrome trace: JSON parses; every event has ph/ts/pid/tid/name; X events have
 * dur >= 0; B/E events pair up per thread; every thread with events has a thread_name track;
 * there are tracks for the consumer, the prefetch, the map's coordinator and at least one
 * pool worker that ran the map's function. Exit 0 when all hold, else prints why. */
static const char check_trace_py[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "ev = d['traceEvents']\n"
    "assert isinstance(ev, list) and ev, 'no events'\n"
    "names, stacks, used = {}, {}, set()\n"
    "for e in ev:\n"
    "    for k in ('ph', 'ts', 'pid', 'tid', 'name'):\n"
    "        assert k in e, ('missing', k, e)\n"
    "    if e['ph'] == 'M':\n"
    "        if e['name'] == 'thread_name':\n"
    "            names[e['tid']] = e['args']['name']\n"
    "        continue\n"
    "    used.add(e['tid'])\n"
    "    if e['ph'] == 'X':\n"
    "        assert e['dur'] >= 0 and e['ts'] >= 0, e\n"
    "    elif e['ph'] == 'B':\n"
    "        stacks.setdefault(e['tid'], []).append(e['name'])\n"
    "    elif e['ph'] == 'E':\n"
    "        assert stacks.get(e['tid']) and stacks[e['tid']].pop() == e['name'], e\n"
    "    else:\n"
    "        raise AssertionError(('unexpected phase', e))\n"
    "assert all(not s for s in stacks.values()), ('unclosed', stacks)\n"
    "assert used <= set(names), ('threads without a track', used - set(names))\n"
    "work = {e['tid'] for e in ev if e.get('cat') == 'work'}\n"
    "workers = [t for t in work if names[t].startswith('sl-work')]\n"
    "assert workers, ('no worker track ran the map', names)\n"
    "tracks = set(names[t] for t in used)\n"
    "for want in ('sl-prefetch', 'sl-map'):\n"
    "    assert want in tracks, (want, tracks)\n"
    "assert len(tracks) >= 4, tracks\n";

static void test_trace_file_validates(void **state)
{
    sl_dataset *ds = build("range(2000) | map(nap_tiny, parallel=2) | prefetch(2)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &(sl_iter_options){.threads = 2}), 0);
    assert_int_equal(sl_iter_trace_start(it, 0), 0);
    assert_int_equal(sl_iter_trace_start(it, 0), SL_ERR_EXISTS);
    sl_element e;
    while (sl_iter_next(it, &e) == 0)
        sl_element_release(&e);
    char trace[300], script[300];
    snprintf(trace, sizeof trace, "%s/trace.json", sl_test_dir);
    snprintf(script, sizeof script, "%s/check_trace.py", sl_test_dir);
    assert_int_equal(sl_iter_trace_write(it, trace), 0);
    assert_int_equal(sl_test_write_file(script, check_trace_py, strlen(check_trace_py)), 0);
    assert_int_equal(sl_test_system("%s %s %s", sl_test_python(), script, trace), 0);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_trace_write_needs_a_started_trace(void **state)
{
    sl_dataset *ds = build("range(10)");
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    char trace[300];
    snprintf(trace, sizeof trace, "%s/none.json", sl_test_dir);
    assert_int_equal(sl_iter_trace_write(it, trace), SL_ERR_INVAL);
    assert_int_equal(sl_iter_trace_start(it, 0), 0);
    snprintf(trace, sizeof trace, "%s/no-such-dir/t.json", sl_test_dir);
    assert_int_equal(sl_iter_trace_write(it, trace), -ENOENT);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_map_on_one_thread_is_the_bottleneck),
        cmocka_unit_test(test_slow_map_across_a_prefetch_is_the_bottleneck),
        cmocka_unit_test(test_snapshot_describes_the_pipeline),
        cmocka_unit_test(test_trace_file_validates),
        cmocka_unit_test(test_trace_write_needs_a_started_trace),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
