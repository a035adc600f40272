/*
 * The `sluice` command: a table of subcommands, each in its own cmd_*.c file with its own
 * --help. Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"convert", cmd_convert, "convert TFRecord or sluice files into sluice or TFRecord files"},
    {"index", cmd_index, "write the DALI-compatible .idx of a TFRecord file"},
    {"inspect", cmd_inspect, "describe a file: format, records, chunks, codec, schema, record 0"},
    {"verify", cmd_verify, "check every checksum of sluice and TFRecord files"},
    {"cat", cmd_cat, "print one record by random access"},
    {"repair", cmd_repair, "copy every intact record of a damaged sluice file to a clean one"},
    {"head", cmd_head, "print the first elements of a pipeline"},
    {"bench", cmd_bench, "measure how fast a pipeline delivers elements"},
    {"profile", cmd_profile, "find the stage that limits a pipeline and what to change"},
    {"train", cmd_train, "train an mlp or cnn on a pipeline's batches, with logs and checkpoints"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice COMMAND [ARGS...]\n\n"
               "sluice feeds training jobs: indexed, compressed, checksummed record files,\n"
               "TFRecord interop, and tools to convert, inspect and check them.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'sluice COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("sluice 0.1.0\n");
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s' (try 'sluice --help')\n", argv[1]);
    return CLI_USAGE;
}
