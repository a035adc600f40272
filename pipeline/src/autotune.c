/*
 * The AUTOTUNE driver: one low-rate thread per iterator whose pipeline has an `auto` knob.
 *
 * Every SL_AUTOTUNE_INTERVAL_MS it snapshots the counters (sl_iter_profile), asks the policy
 * (autotune_policy.c) for new values and applies every knob's value through the stages' tuning
 * hooks. All values are applied each time, not only the changed ones, because repeat() reopens
 * stages each epoch at their opened defaults. The live-stage pointers are read under ctx->mu
 * (sl__stage_close clears them under it), and the hooks take only their stage's own lock, so
 * the lock order is ctx->mu, then a stage's mu, as in the stages' own error paths.
 *
 * Threading: the thread ("sl-autotune") is the only user of the tuner's state; `mu` guards
 * `stop` and paces the thread's sleeps. Stop (sl__autotune_stop, at the start of
 * sl_iter_close, before any stage closes): set stop, wake, join.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/profile.h"

struct sl__autotuner {
    sl_iter *it;
    sl__ctx *ctx;
    sl_autotune_limits limits;
    sl_autotune_state state;
    sl_profile_snapshot prev, now; /* 2 x ~10 KB: kept here, off the thread's stack */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* guarded by mu */
};

/* Applies every knob's value to its live stage (a stage between epochs is skipped). */
static void apply_all(sl__autotuner *t)
{
    sl__ctx *ctx = t->ctx;
    pthread_mutex_lock(&ctx->mu);
    for (int i = 0; i < t->state.nknobs; i++) {
        const sl_autotune_knob *k = &t->state.knobs[i];
        sl__stage *s = k->stage < ctx->nstats ? ctx->stats[k->stage].live : NULL;
        if (!s)
            continue;
        /* Failures change nothing: the stage keeps its setting (a map that opened
         * sequential, a ring that could not grow). */
        if (k->kind == SL_AUTOTUNE_MAP_PARALLEL)
            (void)sl__map_set_parallel(s, (int)k->value);
        else if (k->kind == SL_AUTOTUNE_INTERLEAVE_PARALLEL)
            (void)sl__interleave_set_parallel(s, (int)k->value);
        else
            (void)sl__prefetch_set_capacity(s, k->value);
    }
    pthread_mutex_unlock(&ctx->mu);
}

/* Sleeps one interval; 1 when stopped. */
static int pause_interval(sl__autotuner *t)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)SL_AUTOTUNE_INTERVAL_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&t->mu);
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) != ETIMEDOUT) {
    }
    const int stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

static void *tuner_main(void *arg)
{
    sl__autotuner *t = arg;
    apply_all(t);
    sl_iter_profile(t->it, &t->prev);
    while (!pause_interval(t)) {
        sl_iter_profile(t->it, &t->now);
        sl_autotune_decision d;
        if (sl_autotune_step(&t->state, &t->prev, &t->now, &t->limits, &d) != 0 || d.skipped)
            continue; /* judged later over a longer interval */
        apply_all(t);
        t->prev = t->now;
    }
    return NULL;
}

int sl__autotune_start(sl_iter *it, int64_t memory_bytes, sl__autotuner **out)
{
    *out = NULL;
    /* Most pipelines have no auto knob: look before allocating anything (tests measure the
     * bytes an iterator holds). The policy makes the exact choice below. */
    const sl__ctx *ctx = sl__iter_ctx(it);
    int any = 0;
    for (int i = 0; i < ctx->nstats && !any; i++)
        any = strstr(ctx->stats[i].ds->text, "auto") != NULL;
    if (!any)
        return 0;
    sl__autotuner *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ERR_NOMEM;
    t->it = it;
    t->ctx = sl__iter_ctx(it);
    sl_iter_profile(it, &t->prev);
    sl_autotune_decision first;
    if (sl_autotune_init(&t->state, &t->prev, &first) == 0) {
        sl_free(t);
        return 0; /* nothing is auto: no thread */
    }
    /* Auto prefetch rings may grow into half of the budget; the other half is what the
     * open-time estimate checked for the pipeline's fixed buffers. */
    t->limits = (sl_autotune_limits){.threads = t->ctx->threads,
                                     .memory_bytes =
                                         (memory_bytes > 0 ? memory_bytes : (int64_t)1 << 30) / 2};
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    const int rc = -pthread_create(&t->thread, NULL, tuner_main, t);
    if (rc) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        sl_free(t);
        return rc;
    }
    pthread_setname_np(t->thread, "sl-autotune");
    *out = t;
    return 0;
}

void sl__autotune_stop(sl__autotuner *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    sl_free(t);
}
