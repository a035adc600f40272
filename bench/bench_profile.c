/*
 * How well the profiler's model predicts: the rate it says a pipeline runs at as configured,
 * and the rate it predicts for the change it proposes first, against the rates measured.
 *
 * Three pipeline shapes on an iterator whose CPU budget is the machine's cores, built from text
 * with one map function, work(US), that burns US microseconds of arithmetic per element
 * (bench_work.h):
 *   map-bound       range(N) | map(work(40), parallel=1) | prefetch(8)
 *                   (the parallel map has one worker: the proposal is more parallelism)
 *   source-bound    range(N) | map(work(30)) | map(work(5), parallel=2) | prefetch(8)
 *                   (the sequential map before the parallel one limits)
 *   prefetch-bound  range(N) | map(work(15)) | map(work(15))
 *                   (everything on the consumer's thread: the proposal splits it with a prefetch)
 * Each is run --rounds times; each run is profiled at its end (sl_iter_profile,
 * sl_profile_analyze for the machine's cores). Then the best prediction's pipeline text (the
 * text the profiler prints for the user to paste; cache points left out, they pay only from a
 * second epoch) is built and run --rounds times. Reported,
 * medians over rounds: measured rate, the model's rate as configured and its ratio to the
 * measured one, the proposal, its predicted rate and the ratio to its measured rate.
 *
 * usage: bench_profile [--us-scale X] [--seconds S] [--rounds R] [--verbose]
 *   --us-scale multiplies every work(US) (default 1); --seconds sizes N so that each run takes
 *   about S seconds (default 1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_work.h"
#include "sluice/pipeline_build.h"
#include "sluice/profile.h"

enum { MAX_ROUNDS = 9 };

static int verbose; /* --verbose: each run's bottleneck and proposals */

static void free_work(void *user)
{
    free(user);
}

/* work(US): a map burning US microseconds per element. */
static int work_factory(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                        size_t errcap)
{
    (void)user;
    const sl_ast_value *v;
    double us = 0;
    int rc = sl_ast_call_check(call, 1, NULL, 0, err, errcap);
    if (rc == 0)
        rc = sl_ast_call_arg(call, 0, "us", true, &v, err, errcap);
    if (rc == 0)
        rc = sl_ast_value_get_double(v, "work: us", &us, err, errcap);
    if (rc)
        return rc;
    work *w = calloc(1, sizeof *w);
    if (!w)
        return SL_ERR_NOMEM;
    w->us = us;
    out->fn = work_map;
    out->user = w;
    out->free_user = free_work;
    return 0;
}

typedef struct run_result {
    double rate;       /* measured output elements/s */
    double model_rate; /* the model's rate as configured */
    double predicted;  /* the best prediction's rate, 0 when none */
    char proposal[SL_PROFILE_TEXT_CAP];
    char what[128];
} run_result;

/* Runs text to the end (n elements out) and analyses its counters. */
static run_result run(const sl_registry *reg, const char *text, int64_t n, int threads)
{
    char err[512];
    sl_dataset *ds;
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        bench_die("bench_profile", text, err);
    sl_iter *it;
    if (sl_iter_open(&it, ds, &(sl_iter_options){.threads = threads}))
        bench_die("bench_profile", "open", sl_iter_errmsg(it));
    const uint64_t t0 = sl_clock_ns();
    sl_element e;
    int rc;
    int64_t got = 0, sum = 0;
    while ((rc = sl_iter_next(it, &e)) == 0) {
        sum += *(const int64_t *)e.tensors[0].data;
        sl_element_release(&e);
        got++;
    }
    const uint64_t t1 = sl_clock_ns();
    if (rc != SL_EOF)
        bench_die("bench_profile", "next", sl_iter_errmsg(it));
    if (got != n || sum != n * (n - 1) / 2)
        bench_die("bench_profile", text, "wrong output");
    static sl_profile_snapshot snap;
    static sl_profile_analysis a;
    sl_iter_profile(it, &snap);
    if (sl_profile_analyze(&snap, threads, &a))
        bench_die("bench_profile", text, "nothing to analyse");
    run_result r = {.rate = (double)n * 1e9 / (double)(t1 - t0), .model_rate = a.model_rate};
    if (verbose) {
        printf("    bottleneck %s; model %.0f/s; proposals:",
               a.stages[a.bottleneck].rate > 0 ? snap.stages[a.bottleneck].stage : "?",
               a.model_rate);
        for (int k = 0; k < a.npredictions; k++)
            printf(" [%s %.0f/s]", a.predictions[k].what, a.predictions[k].rate);
        printf("\n");
        for (int i = 0; i < a.nstages; i++)
            printf("      %-40s own %8.0f ns  thread %d  capacity %8.0f/s  busy %.2f wait %.2f\n",
                   snap.stages[i].stage, a.stages[i].own_ns, a.stages[i].thread,
                   a.stages[i].capacity, a.stages[i].busy_share, a.stages[i].wait_share);
    }
    /* The best proposal that pays in this single pass: a cache point pays from the second
     * epoch on, which these pipelines (no repeat) never reach. */
    for (int k = 0; k < a.npredictions; k++) {
        const sl_profile_prediction *p = &a.predictions[k];
        if (p->change == SL_PROFILE_CACHE)
            continue;
        r.predicted = p->rate;
        snprintf(r.proposal, sizeof r.proposal, "%s", p->text);
        snprintf(r.what, sizeof r.what, "%s", p->what);
        break;
    }
    sl_iter_close(it);
    sl_dataset_release(ds);
    return r;
}

/* Runs one shape: text (with n elements) as configured, then the profiler's first proposal. */
static void shape(const sl_registry *reg, const char *name, const char *text, int64_t n,
                  int threads, int rounds)
{
    double rate[MAX_ROUNDS], model[MAX_ROUNDS], pred[MAX_ROUNDS], after[MAX_ROUNDS];
    run_result first = {0};
    for (int k = 0; k < rounds; k++) {
        const run_result r = run(reg, text, n, threads);
        if (k == 0)
            first = r;
        rate[k] = r.rate;
        model[k] = r.model_rate / r.rate;
        pred[k] = r.predicted;
    }
    printf("%s\n  %s\n", name, text);
    const double measured = bench_median(rate, rounds), model_ratio = bench_median(model, rounds);
    printf("  measured %.0f/s; the model's rate as configured / measured: %.2f\n", measured,
           model_ratio);
    if (first.predicted <= 0) {
        printf("  no change proposed\n");
        return;
    }
    /* the first round's proposal, measured; its predicted rate is the median over rounds */
    for (int k = 0; k < rounds; k++)
        after[k] = run(reg, first.proposal, n, threads).rate;
    const double predicted = bench_median(pred, rounds), got = bench_median(after, rounds);
    printf("  proposal: %s\n    %s\n", first.what, first.proposal);
    printf("  predicted %.0f/s (%.2fx), measured %.0f/s (%.2fx): predicted / measured %.2f\n",
           predicted, predicted / measured, got, got / measured, predicted / got);
}

int main(int argc, char **argv)
{
    double scale = 1, seconds = 1;
    int rounds = 3;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
            i--;
        } else if (i + 1 >= argc)
            bench_die("bench_profile", "missing value for", argv[i]);
        else if (strcmp(argv[i], "--us-scale") == 0)
            scale = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else
            bench_die("bench_profile", "unknown option", argv[i]);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || !(scale > 0) || !(seconds > 0))
        bench_die("bench_profile", "options", "--rounds 1..9, --us-scale and --seconds > 0");
    const int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    calibrate();
    printf("$ bench_profile --us-scale %g --seconds %g --rounds %d   # %d cores, %llu burn steps "
           "per us, medians of %d\n",
           scale, seconds, rounds, threads, (unsigned long long)iters_per_us, rounds);
    sl_registry *reg;
    if (sl_registry_create(&reg) ||
        sl_registry_add(reg, "work", work_factory, NULL, "work(us): burns us microseconds"))
        bench_die("bench_profile", "registry", "failed");
    /* N such that each run's work, spread over the cores it may use, takes about `seconds` */
    char text[1024];
    int64_t n = (int64_t)(seconds * 1e6 * threads / (40 * scale));
    snprintf(text, sizeof text, "range(%lld) | map(work(%g), parallel=1) | prefetch(8)",
             (long long)n, 40 * scale);
    shape(reg, "map-bound", text, n, threads, rounds);
    n = (int64_t)(seconds * 1e6 / (30 * scale));
    snprintf(text, sizeof text,
             "range(%lld) | map(work(%g)) | map(work(%g), parallel=2) | prefetch(8)", (long long)n,
             30 * scale, 5 * scale);
    shape(reg, "source-bound", text, n, threads, rounds);
    n = (int64_t)(seconds * 1e6 / (30 * scale));
    snprintf(text, sizeof text, "range(%lld) | map(work(%g)) | map(work(%g))", (long long)n,
             15 * scale, 15 * scale);
    shape(reg, "prefetch-bound", text, n, threads, rounds);
    sl_registry_free(reg);
    return 0;
}
