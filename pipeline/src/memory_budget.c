/*
 * The iterator's memory budget, checked at open: every stage that holds elements in buffers
 * (shuffle, prefetch, parallel map slots, batch, cache) reports the bytes it will hold from
 * the estimated size of its input's elements, and a pipeline whose total exceeds
 * sl_iter_options.memory_bytes fails before any thread starts or any file is read, naming
 * the largest holder and what it needs.
 *
 * Element sizes are estimates propagated from the sources (range: one int64; in-memory
 * elements: the largest; sluice files: the mean record size from their footers; indexed
 * TFRecord: file bytes per record) through the stages (batch multiplies, zip adds, a map keeps
 * its input's size unless its definition says otherwise). A stage whose input size is unknown
 * (a TFRecord file without an index) holds an unknown amount and is left out of the check.
 */
#include <stdio.h>

#include "engine_internal.h"

enum { DEFAULT_BUDGET = 1 << 30 };

typedef struct budget_walk {
    int threads;
    int64_t total;
    const sl_dataset *largest;
    int64_t largest_bytes, largest_elem;
} budget_walk;

/* Returns the estimated bytes of one element of ds (-1 unknown), adding ds's buffers to w. */
static int64_t walk(budget_walk *w, const sl_dataset *ds)
{
    int64_t in[SL__MAX_INPUTS];
    for (int i = 0; i < ds->ninputs; i++)
        in[i] = walk(w, ds->inputs[i]);
    if (!ds->ops->memory)
        return ds->ninputs ? in[0] : -1;
    int64_t elem = -1;
    const int64_t held = ds->ops->memory(ds, in, w->threads, &elem);
    if (held > 0) {
        w->total = held > INT64_MAX - w->total ? INT64_MAX : w->total + held;
        if (held > w->largest_bytes) {
            w->largest = ds;
            w->largest_bytes = held;
            w->largest_elem = ds->ninputs ? in[0] : elem;
        }
    }
    return elem;
}

int64_t sl__memory_scaled(int64_t count, int64_t each)
{
    if (count < 0 || each < 0)
        return -1;
    return each && count > INT64_MAX / each ? INT64_MAX : count * each;
}

int sl__memory_check(const sl_dataset *ds, int threads, int64_t budget, sl_errmsg *err)
{
    budget_walk w = {.threads = threads};
    walk(&w, ds);
    if (budget <= 0)
        budget = DEFAULT_BUDGET;
    if (w.total <= budget)
        return 0;
    return sl__errmsg_set(err, SL_ERR_BUDGET,
                          "memory budget: %s needs %.1f MB for its buffers (elements of about "
                          "%lld bytes); the pipeline's buffers need %.1f MB in all, over the "
                          "budget of %.1f MB (raise it: sl_iter_options.memory_bytes, --memory)",
                          w.largest->text, (double)w.largest_bytes / 1e6, (long long)w.largest_elem,
                          (double)w.total / 1e6, (double)budget / 1e6);
}

int64_t sl__memory_reserved(const sl_dataset *ds, int threads)
{
    if (!ds->ops->memory)
        return 0;
    budget_walk w = {.threads = threads};
    int64_t in[SL__MAX_INPUTS];
    for (int i = 0; i < ds->ninputs; i++)
        in[i] = walk(&w, ds->inputs[i]);
    int64_t elem = -1;
    const int64_t held = ds->ops->memory(ds, in, threads, &elem);
    return held > 0 ? held : 0;
}
