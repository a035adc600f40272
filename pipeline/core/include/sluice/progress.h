/*
 * A one-line progress display for long commands: done/total, rate, ETA, rewritten in place
 * with a carriage return at most five times a second. Silent when the stream is not a
 * terminal (logs and CI stay clean) unless SL_PROGRESS_ALWAYS is given.
 *
 * Threading: sl_progress_add may be called from any number of threads (atomic counters; one
 * thread at a time wins the right to redraw).
 */
#ifndef SLUICE_PROGRESS_H
#define SLUICE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "sluice/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_progress sl_progress;

enum { SL_PROGRESS_ALWAYS = 1 };

/* total 0 = unknown (no ETA). unit names what is counted ("records", "files"). */
int sl_progress_open(sl_progress **out, FILE *stream, const char *label, uint64_t total,
                     const char *unit, int flags);
void sl_progress_add(sl_progress *p, uint64_t items, uint64_t bytes);
void sl_progress_set_total(sl_progress *p, uint64_t total);
/* Text shown after the counts on every later draw (e.g. "bottleneck: map(...)"); "" clears
 * it; longer than 95 characters is cut with "...". Any thread. */
void sl_progress_set_note(sl_progress *p, const char *note);
/* Draws the final state and ends the line. NULL does nothing. */
void sl_progress_close(sl_progress *p);

/* The line itself, as a pure function (tested without a clock): writes e.g.
 * "convert  1200/5000 records  24%  3051 records/s  148.2 MB/s  ETA 1s". */
int sl_progress_format(char *buf, size_t cap, const char *label, uint64_t done, uint64_t total,
                       uint64_t bytes, uint64_t elapsed_ns, const char *unit);

#ifdef __cplusplus
}
#endif
#endif
