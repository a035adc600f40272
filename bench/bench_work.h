/* A map function of known cost for the engine benchmarks (bench_autotune, bench_profile): it
 * burns a calibrated number of arithmetic steps per element (no sleeping, so it really takes a
 * core) and passes the element's int64 value through as "value", so outputs can be checked.
 * calibrate() must run once before any work_map call; every program includes this once. */
#ifndef SLUICE_BENCH_WORK_H
#define SLUICE_BENCH_WORK_H

#include <stdint.h>

#include "sluice/clock.h"
#include "sluice/pipeline.h"

static uint64_t iters_per_us; /* set by calibrate(), read-only afterwards */

static inline uint64_t burn(uint64_t x, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        x = x * 0x9E3779B97F4A7C15ull + i;
        x ^= x >> 29;
    }
    return x;
}

/* A map's cost: microseconds of arithmetic per element, 8x from element switch_at on. */
typedef struct work {
    double us;         /* cost per element */
    int64_t switch_at; /* > 0: elements >= switch_at cost 8x us */
} work;

static inline int work_map(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                           size_t errcap)
{
    (void)c, (void)err, (void)errcap;
    const work *w = user;
    const int64_t v = *(const int64_t *)in->tensors[0].data;
    sl_element_release(in);
    double us = w->us;
    if (w->switch_at > 0 && v >= w->switch_at)
        us *= 8;
    sl_tensor t;
    int rc = sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL);
    if (rc)
        return rc;
    /* the value stays v (checked), the burn result only feeds a branch that never fires */
    const uint64_t b = us > 0 ? burn((uint64_t)v, (uint64_t)(us * (double)iters_per_us)) : 0;
    *(int64_t *)t.data = b == 1 ? -1 : v;
    return sl_element_push(out, "value", &t);
}

/* Steps per microsecond on this core: doubles the run until it takes over 20 ms. */
static inline void calibrate(void)
{
    uint64_t n = 1 << 16;
    for (;;) {
        const uint64_t t0 = sl_clock_ns();
        volatile uint64_t sink = burn(1, n);
        (void)sink;
        const uint64_t dt = sl_clock_ns() - t0;
        if (dt > 20000000) {
            iters_per_us = n * 1000 / dt;
            return;
        }
        n *= 2;
    }
}

#endif
