/* Shared by the pipeline commands (head, bench): engine flags, the registry, opening. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sluice/clock.h"
#include "sluice/ops_registry.h"
#include "sluice/profile.h"
#include "sluice/progress.h"

const char cli_engine_flags_help[] =
    "      --threads T       worker threads (the CPU budget; default: number of CPUs)\n"
    "      --memory BYTES    memory budget for buffers (K, M, G suffixes; default 1G)\n"
    "      --on-error P      fail (default): stop at the first bad element; skip: drop and\n"
    "                        count it\n"
    "      --seed S          pipeline seed: stages without their own seed derive theirs\n";

static int parse_bytes(const char *s, int64_t *out)
{
    char *end;
    const double v = strtod(s, &end);
    double mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024.0, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024.0 * 1024 * 1024, end++;
    if (end == s || *end || v <= 0 || v * mul > 9e18)
        return -1;
    *out = (int64_t)(v * mul);
    return 0;
}

int cli_engine_flag(const char *cmd, int argc, char **argv, int *i, cli_engine_flags *f)
{
    const char *a = argv[*i];
    static const char *const names[] = {"--threads", "--memory", "--on-error", "--seed"};
    size_t k = 0;
    while (k < 4 && strcmp(a, names[k]))
        k++;
    if (k == 4)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    uint64_t n;
    switch (k) {
    case 0:
        if (cli_parse_u64(v, &n) || n < 1 || n > 4096) {
            cli_usage_error(cmd, "--threads takes 1 to 4096, not '%s'", v);
            return -1;
        }
        f->threads = (int)n;
        return 1;
    case 1:
        if (parse_bytes(v, &f->memory)) {
            cli_usage_error(cmd, "--memory takes a size like 512M or 4G, not '%s'", v);
            return -1;
        }
        return 1;
    case 2:
        if (strcmp(v, "fail") && strcmp(v, "skip")) {
            cli_usage_error(cmd, "--on-error takes fail or skip, not '%s'", v);
            return -1;
        }
        f->skip_errors = !strcmp(v, "skip");
        return 1;
    default:
        if (cli_parse_u64(v, &f->seed)) {
            cli_usage_error(cmd, "--seed takes a non-negative integer, not '%s'", v);
            return -1;
        }
        return 1;
    }
}

int cli_registry(sl_registry **out)
{
    /* Map functions register here: the image operations (decode_jpeg & co., ops/glue). */
    int rc = sl_registry_create(out);
    if (rc)
        return rc;
    rc = sl_ops_register(*out);
    if (rc) {
        sl_registry_free(*out);
        *out = NULL;
    }
    return rc;
}

void cli_registry_print(FILE *f)
{
    sl_registry *reg;
    if (cli_registry(&reg))
        return;
    fputs("\nMap functions (map(f, g(...), ...)):\n", f);
    for (size_t i = 0; i < sl_registry_count(reg); i++)
        fprintf(f, "  %s\n", sl_registry_summary(reg, i));
    sl_registry_free(reg);
}

int cli_open_pipeline(const char *cmd, const char *text, const cli_engine_flags *f, sl_dataset **ds,
                      sl_iter **it)
{
    *ds = NULL;
    *it = NULL;
    sl_registry *reg;
    if (cli_registry(&reg))
        return cli_fail(cmd, "out of memory");
    char err[1024];
    int rc = sl_pipeline_build(ds, text, reg, err, sizeof err);
    sl_registry_free(reg);
    if (rc)
        return cli_fail(cmd, "%s", err);
    const sl_iter_options o = {.threads = f->threads,
                               .memory_bytes = f->memory,
                               .seed = f->seed,
                               .on_error = f->skip_errors ? SL_ON_ERROR_SKIP : SL_ON_ERROR_FAIL};
    rc = sl_iter_open(it, *ds, &o);
    if (rc)
        return cli_fail(cmd, "%s", *it ? sl_iter_errmsg(*it) : sl_strerror(rc));
    return CLI_OK;
}

int cli_timed_flag(const char *cmd, int argc, char **argv, int *i, double *seconds, int *json)
{
    if (!strcmp(argv[*i], "--json")) {
        *json = 1;
        return 1;
    }
    if (strcmp(argv[*i], "--seconds"))
        return 0;
    char *end = NULL;
    if (*i + 1 < argc)
        *seconds = strtod(argv[++*i], &end);
    if (!end || *end || *seconds <= 0) {
        cli_usage_error(cmd, "--seconds takes a positive number");
        return -1;
    }
    return 1;
}

/* How often the live line's bottleneck is recomputed (a profile snapshot and its analysis). */
#define NOTE_INTERVAL_NS 500000000ull

/* The live line names the current bottleneck. */
static void note_bottleneck(sl_progress *p, const sl_iter *it)
{
    char stage[SL_PROFILE_TEXT_CAP], note[SL_PROFILE_TEXT_CAP + 16];
    if (sl_iter_bottleneck(it, stage, sizeof stage) == 0) {
        snprintf(note, sizeof note, "bottleneck: %s", stage);
        sl_progress_set_note(p, note);
    }
}

int cli_run_pipeline(const char *cmd, sl_dataset *ds, sl_iter *it, double seconds, int quiet,
                     uint64_t t0, uint64_t cpu0, cli_run *out)
{
    memset(out, 0, sizeof *out);
    const int64_t card = sl_dataset_cardinality(ds);
    sl_progress *p = NULL;
    if (!quiet)
        sl_progress_open(&p, stderr, cmd, card > 0 ? (uint64_t)card : 0, "elements", 0);
    const uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
    uint64_t next_note = t0 + NOTE_INTERVAL_NS;
    sl_element e;
    while ((out->rc = sl_iter_next(it, &e)) == 0) {
        if (!out->elements)
            out->first_ns = sl_clock_ns() - t0;
        uint64_t b = 0;
        for (int k = 0; k < e.count; k++)
            b += sl_tensor_nbytes(&e.tensors[k]);
        out->examples += e.count && e.tensors[0].rank > 0 && e.tensors[0].dtype != SL_DTYPE_BYTES
                             ? (uint64_t)e.tensors[0].shape[0]
                             : 1;
        out->bytes += b;
        out->elements++;
        sl_element_release(&e);
        sl_progress_add(p, 1, b);
        if (p && sl_clock_ns() >= next_note) {
            note_bottleneck(p, it);
            next_note = sl_clock_ns() + NOTE_INTERVAL_NS;
        }
        if ((out->elements & 63) == 0 && sl_clock_ns() >= deadline)
            break;
    }
    out->seconds = (double)(sl_clock_ns() - t0) / 1e9;
    out->cpu_seconds = (double)(sl_clock_process_cpu_ns() - cpu0) / 1e9;
    if (p)
        note_bottleneck(p, it);
    sl_progress_close(p);
    return out->rc < 0 ? cli_fail(cmd, "%s", sl_iter_errmsg(it)) : CLI_OK;
}
