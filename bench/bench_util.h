/* Helpers shared by the bench_*.c programs: medians of repeated timings, a fatal error, and
 * the record count of a file kept from an earlier run. */
#ifndef SLUICE_BENCH_UTIL_H
#define SLUICE_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/record.h"

/* Sorts v (n small) and returns its median. */
static inline double bench_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* Prints "PROGRAM: what: detail" and exits 1. */
static inline void bench_die(const char *program, const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s: %s\n", program, what, detail);
    exit(1);
}

/* The number of records in a sluice file, or -1 when it is missing or unreadable (benchmarks
 * that write large inputs keep them with --keep and reuse them when the count matches). */
static inline int64_t bench_count_records(const char *path)
{
    sl_record_reader *r;
    if (sl_record_reader_open(&r, path, NULL)) {
        sl_record_reader_close(r);
        return -1;
    }
    const int64_t n = (int64_t)sl_record_reader_count(r);
    sl_record_reader_close(r);
    return n;
}

#endif
