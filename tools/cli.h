/*
 * Shared pieces of the `sluice` subcommands: error reporting in one line, number parsing,
 * and the subcommand entry points. Every subcommand returns its exit status: 0 success,
 * 1 failure (data problem, I/O error), 2 usage error.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "sluice CMD: <message>\n" to stderr and returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "sluice CMD: <message>\n(try 'sluice CMD --help')\n" and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Strict unsigned decimal parse; 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* "none" -> 0, "zstd" -> 3, "zstd:N" -> N (1..22). Prints a usage error and returns -1 on
 * anything else. */
int cli_parse_compress(const char *cmd, const char *s, int *level);
/* Default worker threads: the number of online CPUs. */
int cli_default_threads(void);

/* ---- pipelines (head, bench, profile) ---- */

#include "sluice/pipeline_build.h"

/* The engine flags every pipeline command takes. */
typedef struct cli_engine_flags {
    int threads;
    int64_t memory;
    int skip_errors;
    uint64_t seed;
} cli_engine_flags;

/* Parses --threads/--memory/--on-error/--seed at argv[*i] (advancing *i past its value).
 * 1 when the flag was one of those, 0 when not, -1 after printing a usage error. */
int cli_engine_flag(const char *cmd, int argc, char **argv, int *i, cli_engine_flags *f);
extern const char cli_engine_flags_help[];
/* The registry of map functions the command line knows (ops register here). */
int cli_registry(sl_registry **out);
/* Lists the registry's functions with their summaries (for a pipeline command's --help). */
void cli_registry_print(FILE *f);
/* Builds the pipeline text and opens an iterator; prints the error and returns CLI_FAIL or
 * CLI_USAGE on failure. */
int cli_open_pipeline(const char *cmd, const char *text, const cli_engine_flags *f, sl_dataset **ds,
                      sl_iter **it);
/* --seconds S and --json for the commands that run a pipeline for a while (bench, profile):
 * 1 when argv[*i] was one of them, 0 when not, -1 after printing a usage error. */
int cli_timed_flag(const char *cmd, int argc, char **argv, int *i, double *seconds, int *json);

/* What a timed run saw. */
typedef struct cli_run {
    uint64_t elements, examples, bytes; /* examples: the first tensor's first dimension summed */
    uint64_t first_ns;                  /* from t0 to the first element */
    double seconds, cpu_seconds;        /* since t0 / cpu0 */
    int rc;                             /* SL_EOF when the stream ended, 0 at the deadline */
} cli_run;
/* Pulls elements until the end or `seconds` after t0 (a progress line on a terminal unless
 * quiet). CLI_OK, or CLI_FAIL after printing the iterator's error. */
int cli_run_pipeline(const char *cmd, sl_dataset *ds, sl_iter *it, double seconds, int quiet,
                     uint64_t t0, uint64_t cpu0, cli_run *out);

int cmd_head(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* `sluice convert DIR`: an image folder into typed records (cmd_convert_images.c). cmd_convert
 * hands over when cli_convert_images_wanted: one of the inputs is a directory. */
int cmd_convert_images(int argc, char **argv);
int cli_convert_images_wanted(int argc, char **argv);
extern const char cli_convert_images_help[];
int cmd_index(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_repair(int argc, char **argv);
/* `sluice train` (cmd_train.c): the training loop of sluice/train.h on the CPU. */
int cmd_train(int argc, char **argv);

#endif
