/*
 * `sluice profile`: runs a pipeline for a while and says which stage limits it, by how much,
 * and what to change: a per-stage table from the engine's counters, the bottleneck, the bound
 * for the CPU budget, and predictions written as pipeline text (sluice/profile.h). Optionally
 * a Chrome trace of the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "record_print.h"
#include "sluice/clock.h"
#include "sluice/profile.h"
#include "sluice/progress.h"

static const char usage_text[] =
    "usage: sluice profile PIPELINE [--seconds S] [--json] [--trace FILE] [engine flags]\n"
    "\n"
    "Iterates PIPELINE for S seconds (default 10) or to its end and reports, per stage, its\n"
    "rate (elements/s), its rate on one core, the shares of time it was busy, its consumer\n"
    "waited for it and its producer was blocked on it, how full its buffer was, the memory\n"
    "its buffers can hold and, for file sources, the I/O backend (io_uring or pread); then the\n"
    "bottleneck (the stage whose capacity sets the output rate), the bound on the output rate\n"
    "with the CPU budget's cores, and predicted rates for concrete changes, each with the\n"
    "pipeline text to paste. Times are sampled (one `next` call in 64, map workers per batch).\n"
    "\n"
    "      --seconds S       how long to run (default 10)\n"
    "      --json            one JSON object on stdout (\"bottleneck\": the stage's text)\n"
    "      --trace FILE      write a Chrome trace (Perfetto, chrome://tracing) of the run\n";

static const char *change_name(sl_profile_change c)
{
    return c == SL_PROFILE_PARALLEL ? "parallel" : c == SL_PROFILE_PREFETCH ? "prefetch" : "cache";
}

static void print_share(double v)
{
    if (v < 0)
        printf(" %6s", "-");
    else
        printf(" %5.1f%%", 100 * v);
}

/* Bytes in 8 columns: "-" for none, else B, KiB, MiB or GiB with one decimal. */
static void print_memory(uint64_t bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    if (bytes == 0)
        printf(" %8s", "-");
    else
        printf(" %5.1f%-3s", v, unit[u]);
}

static void print_table(const sl_profile_snapshot *s, const sl_profile_analysis *a)
{
    printf("%-44s %12s %12s %7s %7s %7s %7s %9s %8s\n", "stage", "elements/s", "per-core/s", "busy",
           "wait", "blocked", "fill", "MB/s", "memory");
    for (int i = 0; i < a->nstages; i++) {
        const sl_profile_stage *st = &s->stages[i];
        const sl_profile_stage_result *r = &a->stages[i];
        const int indent = st->depth < 10 ? 2 * st->depth : 20;
        printf("%*s%-*.*s %12.1f ", indent, "", 44 - indent, 44 - indent, st->stage, r->rate);
        if (r->per_core_rate > 0)
            printf("%12.1f", r->per_core_rate);
        else
            printf("%12s", "-");
        print_share(r->busy_share);
        print_share(st->work_ahead ? r->wait_share : -1);
        print_share(st->work_ahead ? r->blocked_share : -1);
        print_share(r->fill);
        printf(" %9.2f", r->bytes_per_s / 1e6);
        print_memory(st->memory_bytes);
        if (st->io)
            printf("  io: %s", st->io);
        printf("%s\n", i == a->bottleneck ? "  <- bottleneck" : "");
    }
}

static void print_text(const sl_profile_snapshot *s, const sl_profile_analysis *a, double secs,
                       uint64_t elements, int complete)
{
    printf("pipeline:    %s\n", a->pipeline);
    printf("ran:         %.2f s%s, %" PRIu64 " elements (%.1f/s)\n\n", secs,
           complete ? " (to the end)" : "", elements, elements / secs);
    print_table(s, a);
    printf("\n");
    if (a->bottleneck >= 0) {
        const sl_profile_stage_result *r = &a->stages[a->bottleneck];
        printf("bottleneck:  %s (%.1f%% of the output's cost; allows %.1f elements/s)\n",
               s->stages[a->bottleneck].stage,
               a->model_rate > 0 ? 100 * r->cost_ns * a->model_rate / 1e9 : 0, a->model_rate);
    } else {
        printf("bottleneck:  none found (too few elements)\n");
    }
    printf("bound:       %.1f elements/s with %d cores (every map as parallel as useful)\n",
           a->bound, a->cores);
    if (a->npredictions == 0)
        printf("predictions: no change predicted to gain 5%% or more\n");
    for (int i = 0; i < a->npredictions; i++) {
        const sl_profile_prediction *p = &a->predictions[i];
        printf("%s %.2fx (%.1f/s) %s%s:\n    %s\n", i ? "            " : "predictions:", p->speedup,
               p->rate, p->change == SL_PROFILE_CACHE ? "from the second epoch, " : "",
               change_name(p->change), p->text);
    }
}

static void json_str(const char *s)
{
    json_print_string(stdout, s, strlen(s));
}

static void print_json(const sl_profile_snapshot *s, const sl_profile_analysis *a, double secs,
                       uint64_t elements, int complete, double cpu)
{
    printf("{\"pipeline\": ");
    json_str(a->pipeline);
    printf(", \"seconds\": %.3f, \"elements\": %" PRIu64 ", \"elements_per_s\": %.1f, "
           "\"cpu_seconds\": %.3f, \"complete\": %s, \"cores\": %d, \"model_rate\": %.1f, "
           "\"bound\": %.1f, \"bottleneck\": ",
           secs, elements, elements / secs, cpu, complete ? "true" : "false", a->cores,
           a->model_rate, a->bound);
    if (a->bottleneck >= 0)
        json_str(s->stages[a->bottleneck].stage);
    else
        printf("null");
    printf(", \"stages\": [");
    for (int i = 0; i < a->nstages; i++) {
        const sl_profile_stage *st = &s->stages[i];
        const sl_profile_stage_result *r = &a->stages[i];
        printf("%s{\"stage\": ", i ? ", " : "");
        json_str(st->stage);
        printf(", \"depth\": %d, \"thread\": %d, \"elements\": %" PRIu64 ", \"rate\": %.1f, "
               "\"per_core_rate\": %.1f, \"own_ns\": %.1f, \"capacity\": %.1f, "
               "\"busy_share\": %.4f, \"wait_share\": %.4f, \"blocked_share\": %.4f, "
               "\"fill\": %.4f, \"bytes_per_s\": %.1f, \"work_ahead\": %s, \"parallel\": %d, "
               "\"memory_bytes\": %" PRIu64 ", \"io\": ",
               st->depth, r->thread, st->elements, r->rate, r->per_core_rate, r->own_ns,
               r->capacity, r->busy_share, r->wait_share, r->blocked_share, r->fill, r->bytes_per_s,
               st->work_ahead ? "true" : "false", st->parallel, st->memory_bytes);
        if (st->io)
            json_str(st->io);
        else
            printf("null");
        printf("}");
    }
    printf("], \"predictions\": [");
    for (int i = 0; i < a->npredictions; i++) {
        const sl_profile_prediction *p = &a->predictions[i];
        printf("%s{\"change\": \"%s\", \"stage\": ", i ? ", " : "", change_name(p->change));
        json_str(s->stages[p->stage].stage);
        printf(", \"what\": ");
        json_str(p->what);
        printf(", \"rate\": %.1f, \"speedup\": %.3f, \"pipeline\": ", p->rate, p->speedup);
        json_str(p->text);
        printf("}");
    }
    printf("]}\n");
}

int cmd_profile(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        fputs(cli_engine_flags_help, stdout);
        fputs("  -h, --help            this text\n", stdout);
        return CLI_OK;
    }
    cli_engine_flags f = {0};
    const char *text = NULL, *trace = NULL;
    double seconds = 10;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const int e = cli_engine_flag("profile", argc, argv, &i, &f);
        if (e < 0)
            return CLI_USAGE;
        if (e)
            continue;
        const int t = cli_timed_flag("profile", argc, argv, &i, &seconds, &json);
        if (t < 0)
            return CLI_USAGE;
        if (t)
            continue;
        if (!strcmp(argv[i], "--trace")) {
            if (i + 1 >= argc)
                return cli_usage_error("profile", "--trace needs a FILE");
            trace = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("profile", "unknown option '%s'", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_usage_error("profile", "expected one PIPELINE (quote it)");
        }
    }
    if (!text)
        return cli_usage_error("profile", "expected a PIPELINE");
    sl_dataset *ds;
    sl_iter *it;
    const uint64_t t0 = sl_clock_ns(), cpu0 = sl_clock_process_cpu_ns();
    int ret = cli_open_pipeline("profile", text, &f, &ds, &it);
    int rc = 0;
    if (ret == CLI_OK && trace && (rc = sl_iter_trace_start(it, 0)) != 0)
        ret = cli_fail("profile", "starting the trace: %s", sl_strerror(rc));
    cli_run r = {0};
    if (ret == CLI_OK)
        ret = cli_run_pipeline("profile", ds, it, seconds, json, t0, cpu0, &r);
    if (ret == CLI_OK) {
        sl_profile_snapshot *snap = malloc(sizeof *snap);
        sl_profile_analysis *a = malloc(sizeof *a);
        if (!snap || !a) {
            ret = cli_fail("profile", "out of memory");
        } else {
            sl_iter_profile(it, snap);
            sl_profile_analyze(snap, 0, a);
            if (a->pipeline[0] == '\0') /* nothing ran: still name the pipeline */
                sl_dataset_print(ds, a->pipeline, sizeof a->pipeline);
            if (json)
                print_json(snap, a, r.seconds, r.elements, r.rc == SL_EOF, r.cpu_seconds);
            else
                print_text(snap, a, r.seconds, r.elements, r.rc == SL_EOF);
        }
        free(snap);
        free(a);
    }
    if (ret == CLI_OK && trace && (rc = sl_iter_trace_write(it, trace)) != 0)
        ret = cli_fail("profile", "writing the trace to %s: %s", trace, sl_strerror(rc));
    sl_iter_close(it);
    sl_dataset_release(ds);
    return ret;
}
