/* `sluice bench`: how fast a pipeline delivers: elements/s, examples/s, MB/s. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "record_print.h"
#include "sluice/clock.h"
#include "sluice/progress.h"

static const char usage_text[] =
    "usage: sluice bench PIPELINE [--seconds S] [--json] [engine flags]\n"
    "\n"
    "Iterates PIPELINE for S seconds (default 10) or to its end, whichever comes first, and\n"
    "reports elements/s, examples/s (rows of the first tensor when elements are batches),\n"
    "MB/s of tensor bytes delivered, and the time to the first element. The first element's\n"
    "wait counts in the totals, as a training job would see it.\n"
    "\n"
    "      --seconds S       how long to run (default 10)\n"
    "      --json            one JSON object on stdout\n"
    "\n"
    "'sluice profile' runs the same and names the stage that limits the pipeline.\n";

/* The per-stage counters (sampled), last stage first, inputs indented below it. */
static void print_stages(const sl_iter *it)
{
    sl_stage_stats st[64];
    const int n = sl_iter_stats(it, st, 64);
    printf("per stage:   elements, time per element (inputs included; above a prefetch: the "
           "wait)\n");
    for (int i = 0; i < n && i < 64; i++)
        printf("  %*s%-*s %12" PRIu64 " %10.0f ns\n", 2 * st[i].depth, "",
               st[i].depth < 20 ? 40 - 2 * st[i].depth : 0, st[i].stage, st[i].elements,
               st[i].ns_per_element);
}

static void print_stages_json(const sl_iter *it)
{
    sl_stage_stats st[64];
    const int n = sl_iter_stats(it, st, 64);
    printf("[");
    for (int i = 0; i < n && i < 64; i++) {
        printf("%s{\"stage\": ", i ? ", " : "");
        json_print_string(stdout, st[i].stage, strlen(st[i].stage));
        printf(", \"depth\": %d, \"elements\": %" PRIu64
               ", \"ns_per_element\": %.1f, \"bytes\": %" PRIu64 ", \"wait_ns\": %" PRIu64
               ", \"blocked_ns\": %" PRIu64 ", \"busy_ns\": %" PRIu64 "}",
               st[i].depth, st[i].elements, st[i].ns_per_element, st[i].bytes, st[i].wait_ns,
               st[i].blocked_ns, st[i].busy_ns);
    }
    printf("]");
}

int cmd_bench(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        fputs(cli_engine_flags_help, stdout);
        fputs("  -h, --help            this text\n", stdout);
        return CLI_OK;
    }
    cli_engine_flags f = {0};
    const char *text = NULL;
    double seconds = 10;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const int e = cli_engine_flag("bench", argc, argv, &i, &f);
        if (e < 0)
            return CLI_USAGE;
        if (e)
            continue;
        const int t = cli_timed_flag("bench", argc, argv, &i, &seconds, &json);
        if (t < 0)
            return CLI_USAGE;
        if (t)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("bench", "unknown option '%s'", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_usage_error("bench", "expected one PIPELINE (quote it)");
        }
    }
    if (!text)
        return cli_usage_error("bench", "expected a PIPELINE");
    sl_dataset *ds;
    sl_iter *it;
    const uint64_t t0 = sl_clock_ns(), cpu0 = sl_clock_process_cpu_ns();
    int ret = cli_open_pipeline("bench", text, &f, &ds, &it);
    cli_run r;
    if (ret == CLI_OK)
        ret = cli_run_pipeline("bench", ds, it, seconds, json, t0, cpu0, &r);
    if (ret == CLI_OK) {
        char canon[2048];
        sl_dataset_print(ds, canon, sizeof canon);
        if (json) {
            printf("{\"pipeline\": ");
            json_print_string(stdout, canon, strlen(canon));
            printf(", \"stages\": ");
            print_stages_json(it);
            printf(", \"seconds\": %.3f, \"elements\": %" PRIu64 ", \"examples\": %" PRIu64
                   ", \"bytes\": %" PRIu64 ", \"elements_per_s\": %.1f, \"examples_per_s\": "
                   "%.1f, \"mb_per_s\": %.2f, \"first_element_ms\": %.2f, \"cpu_seconds\": "
                   "%.3f, \"complete\": %s}\n",
                   r.seconds, r.elements, r.examples, r.bytes, r.elements / r.seconds,
                   r.examples / r.seconds, r.bytes / r.seconds / 1e6, r.first_ns / 1e6,
                   r.cpu_seconds, r.rc == SL_EOF ? "true" : "false");
        } else {
            printf("pipeline:    %s\n", canon);
            printf("ran:         %.2f s%s, %.2f CPU-seconds\n", r.seconds,
                   r.rc == SL_EOF ? " (to the end)" : "", r.cpu_seconds);
            printf("elements:    %" PRIu64 " (%.1f/s)\n", r.elements, r.elements / r.seconds);
            printf("examples:    %" PRIu64 " (%.1f/s)\n", r.examples, r.examples / r.seconds);
            printf("bytes:       %.1f MB (%.1f MB/s)\n", r.bytes / 1e6, r.bytes / r.seconds / 1e6);
            printf("first:       %.2f ms to the first element\n", r.first_ns / 1e6);
            print_stages(it);
        }
    }
    sl_iter_close(it);
    sl_dataset_release(ds);
    return ret;
}
