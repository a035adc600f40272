/* `sluice head`: the first N elements of a pipeline, one line each: tf.data's take(1)-and-print
 * habit as a command. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "record_print.h"

static const char usage_text[] =
    "usage: sluice head PIPELINE [-n N] [engine flags]\n"
    "\n"
    "Prints the first N elements (default 10; -n 0: all) of PIPELINE, one line per element:\n"
    "every tensor's name, dtype, shape and values (byte strings as their size, crc32c and a\n"
    "prefix), so the same element always prints the same line. Example:\n"
    "  sluice head 'records(\"train-*.sluice\") | shuffle(1024, seed=1) | batch(4)' -n 2\n"
    "\n"
    "  -n N                  elements to print (0: all)\n";

int cmd_head(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        fputs(cli_engine_flags_help, stdout);
        fputs("  -h, --help            this text\n\nPipeline grammar: pipeline/GRAMMAR.md\n",
              stdout);
        cli_registry_print(stdout);
        return CLI_OK;
    }
    cli_engine_flags f = {0};
    const char *text = NULL;
    uint64_t limit = 10;
    for (int i = 1; i < argc; i++) {
        const int e = cli_engine_flag("head", argc, argv, &i, &f);
        if (e < 0)
            return CLI_USAGE;
        if (e)
            continue;
        if (!strcmp(argv[i], "-n")) {
            if (i + 1 >= argc || cli_parse_u64(argv[++i], &limit))
                return cli_usage_error("head", "-n takes a number of elements");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("head", "unknown option '%s'", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_usage_error("head", "expected one PIPELINE (quote it)");
        }
    }
    if (!text)
        return cli_usage_error("head", "expected a PIPELINE");
    sl_dataset *ds;
    sl_iter *it;
    int ret = cli_open_pipeline("head", text, &f, &ds, &it);
    sl_element e;
    uint64_t n = 0;
    int rc = 0;
    while (ret == CLI_OK && (limit == 0 || n < limit) && (rc = sl_iter_next(it, &e)) == 0) {
        printf("%" PRIu64 ":", n++);
        for (int k = 0; k < e.count; k++) {
            char type[128];
            sl_tensor_format_type(&e.tensors[k], type, sizeof type);
            printf("%s %s=%s ", k ? "," : "", e.names[k], type);
            tensor_print_values(stdout, &e.tensors[k], 0);
        }
        putchar('\n');
        sl_element_release(&e);
    }
    if (ret == CLI_OK && rc < 0)
        ret = cli_fail("head", "%s", sl_iter_errmsg(it));
    if (ret == CLI_OK && f.skip_errors && sl_iter_skipped(it))
        fprintf(stderr, "sluice head: skipped %" PRIu64 " bad elements (--on-error skip)\n",
                sl_iter_skipped(it));
    sl_iter_close(it);
    sl_dataset_release(ds);
    return ret;
}
