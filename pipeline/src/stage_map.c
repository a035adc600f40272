/*
 * map and filter.
 *
 * Sequential map (parallel = 1) and filter call the function on the thread that calls `next`.
 * Parallel map keeps a ring of `slots` elements in flight: a coordinator thread (the runner,
 * "sl-map") pulls inputs, numbers them and queues their slots as pending; up to `parallel`
 * worker tasks on the iterator's pool drain the pending queue (running the function, marking
 * each slot done) and return when it is empty, so a busy map submits nothing per element and
 * a pool task never waits. Ordered mode hands slots out strictly by index, so the output is
 * the same for any number of threads and any completion order; unordered mode hands out
 * whichever slot finished first.
 *
 * Locking: `mu` guards the slots' states, the pending queue, head/issued, workers, the waiting
 * flags, input_done/input_rc and stop. The runner never holds `mu` while calling the input's
 * `next`; workers hold it only to take a slot and to publish its result. Close: cancel
 * (stop = 1, wake everyone, cancel the input), join the runner, wait for workers == 0 (a worker
 * sees stop and returns after its current element), release leftover elements.
 *
 * The RNG handed to a function is keyed by (stage seed, epoch, input index): the same draws for
 * an element whatever thread runs it.
 *
 * Inline mode (a parallel map told parallelism 0, which AUTOTUNE does when the function is
 * cheaper than a handoff): the runner parks at the top of its loop, the consumer hands out
 * what was already issued, and from then on pulls and maps each element on its own thread,
 * exactly as the sequential map does, with no lock per element. Indices go on from where the
 * slots left off, so the output is the same; leaving inline snapshots the input (the runner
 * resumes from there) and wakes the runner.
 *
 * Fused with a batch (engine_internal.h, `dest`): the function is offered its output's row of
 * the batch being assembled (sl_map_ctx.alloc), and whatever output it allocated itself is
 * copied into its row right after it returns, on the same worker; a skip tells the destination
 * that later elements move up one row. Random access (`get`) never writes into a batch.
 *
 * Counters (parallel mode, engine_internal.h): a worker reads the clock once at the start and
 * once at the end of its drain, however many elements it runs; the consumer times the elements
 * it runs itself (only when it would otherwise sleep) and its waits; the runner times its waits
 * for a free slot and reads the clock once per SL__SAMPLE_EVERY inputs it queues. Fill and
 * workers in flight are sampled once per SL__SAMPLE_EVERY elements handed out.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"

/* Slots in flight: enough that workers, runner and consumer rarely wait for each other (each
 * wait is a futex round trip, microseconds, against map functions that may take nanoseconds);
 * wakeups are sent only to a thread that is actually waiting, and the runner is woken only
 * once a quarter of the ring is free, so a saturated pipeline runs without handoffs. */
enum { ERR_CAP = 256, SLOTS_PER_THREAD = 4, MIN_SLOTS = 16 };

typedef struct map_params {
    sl_map_def def; /* def.name points at name_buf */
    char name_buf[SL__TEXT_CAP];
    sl_map_options opts;
    sl_filter_fn filter; /* filter stages: the predicate (def.fn unused) */
} map_params;

typedef enum { SLOT_FREE, SLOT_RUNNING, SLOT_DONE } slot_state;

typedef struct map_slot {
    struct map_stage *stage;
    sl_element in, out;
    sl__state_writer snap; /* the input's state right after `in` was pulled */
    uint64_t index;
    slot_state state;
    int rc;
    char err[ERR_CAP];
} map_slot;

typedef struct map_stage {
    sl__stage base;
    sl__stage *input;
    uint64_t seed;
    uint64_t next_index;   /* sequential mode and filter */
    sl_element in;         /* sequential mode: the input element; empty between calls */
    int snapshots;         /* parallel: the input chain is checkpointable, so slots carry snaps */
    char refusal[ERR_CAP]; /* guarded by mu: why a snapshot was refused (snapshots stop) */
    sl__state_writer last_snap; /* parallel: the input's state as of the last element handed out */

    /* parallel mode */
    int nslots;
    map_slot *slots;
    pthread_t runner;
    int runner_started;
    pthread_mutex_t mu;
    pthread_cond_t consumer_cv; /* a slot finished, or the input ended */
    pthread_cond_t runner_cv;   /* a slot became free, or stop */
    uint64_t head;              /* ordered: next index to hand out; guarded by mu */
    uint64_t issued;            /* inputs pulled so far; guarded by mu */
    int input_done, input_rc;   /* guarded by mu */
    int parallel;               /* workers allowed */
    int chunk;                  /* pending slots per worker before one is started */
    int workers;                /* worker tasks submitted and not yet returned; guarded by mu */
    map_slot **pending;         /* (nslots) ring of slots waiting for a worker; guarded by mu */
    int pending_head, npending; /* guarded by mu */
    int stop;                   /* guarded by mu */
    /* inline mode: wanted by the tuner (written under mu, read by the consumer without it);
     * on: the consumer maps inline now (written by the consumer under mu); parked: the
     * runner waits for inline mode to end */
    _Atomic int inline_want;
    int inline_on;        /* written under mu by the consumer only, which reads it lock-free */
    int runner_parked;    /* guarded by mu */
    int consumer_waiting; /* guarded by mu */
    int runner_waiting;   /* guarded by mu */
    int nfree;            /* FREE slots; guarded by mu */
    int ndone;            /* DONE slots; guarded by mu */
    uint64_t handed;      /* results handed out; guarded by mu */
    int wake_batch;       /* results to collect before the consumer is woken */
    sl__node_stats *ns;   /* parallel: the node's counters (NULL outside an iterator) */
    /* map -> batch fusion (engine_internal.h): the batch reading this map owns it; set before
     * the first `next` (so before the runner and any worker start), read-only after. */
    sl__batch_dest *dest;
} map_stage;

static const map_params *params_of(const sl__stage *s)
{
    return s->ds->params;
}

static void make_ctx(const map_stage *m, uint64_t index, sl_map_ctx *c)
{
    c->index = index;
    c->epoch = m->base.epoch;
    sl_rng_init(&c->rng, m->seed, m->base.epoch, index);
    c->alloc = NULL; /* apply() offers the batch's rows when there is one */
    c->alloc_user = NULL;
}

/* Runs the function on one element; on error, err holds the reason. dest: the batch
 * destination when the element goes on to the fused batch (not for random access). */
static int apply(map_stage *m, uint64_t index, sl_element *in, sl_element *out, char *err,
                 sl__batch_dest *dest)
{
    const map_params *p = params_of(&m->base);
    sl_map_ctx c;
    make_ctx(m, index, &c);
    if (dest) {
        c.alloc = sl__batch_dest_alloc;
        c.alloc_user = dest;
    }
    err[0] = '\0';
    /* out is empty (all zero) by the stage contract: no 1.5 KB memset per element here. */
    const int rc = p->def.fn(p->def.user, &c, in, out, err, ERR_CAP);
    sl_element_release(in); /* whatever the function left behind */
    if (rc)
        sl_element_release(out);
    else if (dest && sl__element_may_place(out))
        sl__batch_dest_place(dest, index, out);
    return rc < 0 ? rc : 0;
}

/* Error policy for element `index`: SKIP counts it and returns 1 (try the next element); FAIL
 * records the message and returns the code. */
static int element_error(map_stage *m, uint64_t index, int rc, const char *err)
{
    if (m->base.ctx->on_error == SL_ON_ERROR_SKIP && rc != SL_ERR_CANCELLED) {
        sl__ctx_count_skip(m->base.ctx);
        if (m->dest)
            sl__batch_dest_skipped(m->dest);
        return 1;
    }
    return sl__stage_fail(&m->base, rc, "element %llu%s%s", (unsigned long long)index,
                          err[0] ? ": " : "", err);
}

/* ---- sequential map and filter ------------------------------------------------------------ */

static int map_next_sequential(sl__stage *s, sl_element *out)
{
    map_stage *m = (map_stage *)s;
    for (;;) {
        /* m->in is all zero between calls (apply releases it), so it needs no memset. */
        sl_element *in = &m->in;
        const int rc = sl__stage_next(m->input, in);
        if (rc)
            return rc;
        char err[ERR_CAP];
        const uint64_t index = m->next_index++;
        const int frc = apply(m, index, in, out, err, m->dest);
        if (frc == 0)
            return 0;
        const int e = element_error(m, index, frc, err);
        if (e != 1)
            return e;
    }
}

static int filter_next(sl__stage *s, sl_element *out)
{
    map_stage *m = (map_stage *)s;
    const map_params *p = params_of(s);
    for (;;) {
        const int rc = sl__stage_next(m->input, out);
        if (rc)
            return rc;
        sl_map_ctx c;
        const uint64_t index = m->next_index++;
        make_ctx(m, index, &c);
        char err[ERR_CAP] = "";
        const int keep = p->filter(p->def.user, &c, out, err, sizeof err);
        if (keep > 0)
            return 0;
        sl_element_release(out);
        if (keep < 0) {
            const int e = element_error(m, index, keep, err);
            if (e != 1)
                return e;
        }
    }
}

/* ---- parallel map ------------------------------------------------------------------------- */

/* Whether a waiting consumer should be woken now: once wake_batch results are ready to hand
 * out (for ordered mode: consecutive from head), or every issued element is done (the input is
 * slow or has ended, so nothing more is coming soon). Each wakeup costs the consumer a futex
 * round trip and a context switch (5-20 us in a VM: an IPI is a VM exit); collecting a few
 * results per wakeup divides that cost. Called with mu held. */
static int consumer_should_wake(const map_stage *m, int unordered)
{
    const uint64_t outstanding = m->issued - m->handed;
    if (unordered)
        return m->ndone >= m->wake_batch || (uint64_t)m->ndone == outstanding;
    uint64_t run = 0;
    while (run < (uint64_t)m->wake_batch && run < outstanding &&
           m->slots[(m->head + run) % (uint64_t)m->nslots].state == SLOT_DONE)
        run++;
    return run >= (uint64_t)m->wake_batch || (run > 0 && run == outstanding);
}

/* A worker: runs pending slots until none is left (or the stage stops), then returns, so a
 * saturated map keeps `parallel` long-lived tasks and submits nothing per element. */
/* Takes the oldest pending slot and runs the function on it. Called with mu held; drops it
 * while the function runs. */
static void run_pending(map_stage *m, int unordered)
{
    map_slot *slot = m->pending[m->pending_head];
    m->pending_head = (m->pending_head + 1) % m->nslots;
    m->npending--;
    pthread_mutex_unlock(&m->mu);

    const int rc = sl__ctx_cancelled(m->base.ctx)
                       ? SL_ERR_CANCELLED
                       : apply(m, slot->index, &slot->in, &slot->out, slot->err, m->dest);

    pthread_mutex_lock(&m->mu);
    slot->rc = rc;
    slot->state = SLOT_DONE;
    m->ndone++;
    if (m->consumer_waiting && consumer_should_wake(m, unordered))
        pthread_cond_broadcast(&m->consumer_cv);
}

/* Adds a span of function work (n elements) to the counters; helped: run by the consumer. */
static void count_work(map_stage *m, uint64_t t0, uint64_t t1, uint64_t n, int helped)
{
    sl__stat_add(&m->ns->busy_ns, t1 - t0);
    sl__stat_add(&m->ns->busy_elements, n);
    if (helped)
        sl__stat_add(&m->ns->helped_ns, t1 - t0);
    if (sl__tracing(m->base.ctx))
        sl__trace_span(m->base.ctx, m->base.ds->text, "work", t0, t1, n);
}

/* Waits on cv (mu held), adding the time asleep to *counter and, when tracing, a span;
 * returns the time asleep. */
static uint64_t timed_wait(map_stage *m, pthread_cond_t *cv, _Atomic uint64_t *counter,
                           const char *cat)
{
    if (!m->ns) {
        pthread_cond_wait(cv, &m->mu);
        return 0;
    }
    const uint64_t t0 = sl_clock_ns();
    pthread_cond_wait(cv, &m->mu);
    const uint64_t t1 = sl_clock_ns();
    sl__stat_add(counter, t1 - t0);
    if (sl__tracing(m->base.ctx))
        sl__trace_span(m->base.ctx, m->base.ds->text, cat, t0, t1, 0);
    return t1 - t0;
}

static void worker_main(void *arg)
{
    map_stage *m = arg;
    const int unordered = params_of(&m->base)->opts.unordered;
    uint64_t t0 = m->ns ? sl_clock_ns() : 0;
    uint64_t ran = 0;
    pthread_mutex_lock(&m->mu);
    for (; m->npending > 0 && !m->stop; ran++) {
        run_pending(m, unordered);
        /* A saturated map's drain may never end: report its time every 64 elements too, so
         * the profiler and AUTOTUNE see busy workers while they are busy. */
        if (m->ns && ran == SL__SAMPLE_EVERY - 1) {
            const uint64_t now = sl_clock_ns();
            count_work(m, t0, now, ran + 1, 0);
            t0 = now;
            ran = (uint64_t)-1; /* becomes 0 with the loop's increment */
        }
    }
    if (m->ns && ran)
        count_work(m, t0, sl_clock_ns(), ran, 0);
    m->workers--;
    if (m->stop && m->workers == 0)
        pthread_cond_broadcast(&m->consumer_cv); /* close waits for the last worker */
    pthread_mutex_unlock(&m->mu);
}

static map_slot *free_slot(map_stage *m)
{
    const map_params *p = params_of(&m->base);
    if (!p->opts.unordered) {
        if (m->issued - m->head >= (uint64_t)m->nslots)
            return NULL;
        map_slot *s = &m->slots[m->issued % (uint64_t)m->nslots];
        return s->state == SLOT_FREE ? s : NULL;
    }
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].state == SLOT_FREE)
            return &m->slots[i];
    return NULL;
}

/* Starts workers for the pending slots, up to `parallel` at once: all of them when `flush`,
 * else only once a batch of `chunk` slots is waiting, so that cheap functions are run many
 * per wakeup rather than one (a pool wakeup costs microseconds). Called with mu held; it drops
 * mu while submitting, so callers must re-check the state before waiting when it started any.
 * Returns the number started, or a negative code when the pool refused (teardown). */
static int start_workers(map_stage *m, int flush)
{
    int started = 0;
    while (m->workers < m->parallel && m->npending > 0 &&
           (flush || m->npending >= m->chunk * (m->workers + 1))) {
        m->workers++;
        pthread_mutex_unlock(&m->mu);
        const int rc = sl_thread_pool_submit(m->base.ctx->pool, worker_main, m);
        pthread_mutex_lock(&m->mu);
        if (rc) {
            m->workers--;
            return rc;
        }
        started++;
    }
    return started;
}

static void *runner_main(void *arg)
{
    map_stage *m = arg;
    int snapshots = m->snapshots && !m->refusal[0]; /* written before the runner started */
    char why[ERR_CAP];
    sl__producer_clock pc;
    sl__producer_start(&pc, m->ns);
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        if (atomic_load_explicit(&m->inline_want, memory_order_relaxed) || m->inline_on) {
            /* Inline mode: the consumer pulls from the input itself, so the runner must not. */
            m->runner_parked = 1;
            if (m->consumer_waiting)
                pthread_cond_broadcast(&m->consumer_cv);
            pthread_cond_wait(&m->runner_cv, &m->mu);
            m->runner_parked = 0;
            continue;
        }
        map_slot *slot = free_slot(m);
        if (!slot) {
            /* Everything queued must be running before the runner sleeps. */
            const int started = start_workers(m, 1);
            if (started < 0)
                break;
            if (started > 0)
                continue; /* mu was dropped: look again before sleeping */
            m->runner_waiting = 1;
            pc.blocked +=
                timed_wait(m, &m->runner_cv, m->ns ? &m->ns->blocked_ns : NULL, "blocked");
            m->runner_waiting = 0;
            continue;
        }
        slot->state = SLOT_RUNNING; /* reserved: nobody else touches it until DONE */
        m->nfree--;
        pthread_mutex_unlock(&m->mu);

        memset(&slot->in, 0, sizeof slot->in);
        int rc = sl__stage_next(m->input, &slot->in);
        int refused = 0;
        if (rc == 0 && snapshots) {
            sl__state_writer_reset(&slot->snap);
            rc = sl__stage_snapshot(m->input, &slot->snap, why, sizeof why);
            if (rc == SL_ERR_NOT_CHECKPOINTABLE) { /* the stream goes on; save will say why */
                refused = 1;
                snapshots = 0;
                rc = 0;
            }
        }

        pthread_mutex_lock(&m->mu);
        if (refused)
            snprintf(m->refusal, sizeof m->refusal, "%s", why);
        if (rc != 0 || m->stop) {
            sl_element_release(&slot->in);
            slot->state = SLOT_FREE;
            m->nfree++;
            m->input_done = 1;
            m->input_rc = rc != 0 ? rc : SL_ERR_CANCELLED;
            pthread_cond_broadcast(&m->consumer_cv);
            break;
        }
        slot->index = m->issued++;
        m->pending[(m->pending_head + m->npending) % m->nslots] = slot;
        m->npending++;
        if (start_workers(m, 0) < 0)
            break;
        sl__producer_tick(&pc, m->ns);
    }
    /* Whatever is queued still runs; a refusal means teardown, which drains it. */
    if (!m->stop)
        start_workers(m, 1);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* The slot to hand out next, or NULL (caller waits); *end set when the stream is over. */
static map_slot *ready_slot(map_stage *m, int *end)
{
    const map_params *p = params_of(&m->base);
    *end = 0;
    if (!p->opts.unordered) {
        if (m->issued != m->head) { /* modular: indices may wrap past 2^64 */
            map_slot *s = &m->slots[m->head % (uint64_t)m->nslots];
            return s->state == SLOT_DONE ? s : NULL;
        }
        *end = m->input_done;
        return NULL;
    }
    int busy = 0;
    map_slot *best = NULL;
    for (int i = 0; i < m->nslots; i++) {
        map_slot *s = &m->slots[i];
        if (s->state == SLOT_DONE && (!best || s->index < best->index))
            best = s;
        busy |= s->state != SLOT_FREE;
    }
    *end = !best && !busy && m->input_done;
    return best;
}

/* The runner starts with the first `next`, so that a restore or seek right after open
 * positions the input before anything is pulled. */
static int start_runner(map_stage *m)
{
    const int rc = pthread_create(&m->runner, NULL, runner_main, m);
    if (rc)
        return sl__stage_fail(&m->base, -rc, "starting the map's coordinator thread");
    pthread_setname_np(m->runner, "sl-map");
    m->runner_started = 1;
    return 0;
}

/* ---- inline mode -------------------------------------------------------------------------- */

/* One sampled inline element's function time, counted as SL__SAMPLE_EVERY elements' worth of
 * work run by the consumer itself (helped), plus a fill sample with no worker in flight, so
 * that AUTOTUNE keeps judging intervals and sees the function's cost. */
static void count_inline(map_stage *m, uint64_t t0, uint64_t t1)
{
    const uint64_t d = (t1 - t0) * SL__SAMPLE_EVERY;
    sl__stat_add(&m->ns->busy_ns, d);
    sl__stat_add(&m->ns->busy_elements, SL__SAMPLE_EVERY);
    sl__stat_add(&m->ns->helped_ns, d);
    sl__stat_add(&m->ns->fill_samples, 1);
    if (sl__tracing(m->base.ctx))
        sl__trace_span(m->base.ctx, m->base.ds->text, "work", t0, t1, 1);
}

/* The sequential map's loop, numbering elements on from the slots. While the runner is parked
 * only this thread touches issued/head/handed; entering and leaving inline mode under mu
 * orders these writes with the runner's and the workers' accesses. */
static int map_next_inline(map_stage *m, sl_element *out)
{
    const int unordered = params_of(&m->base)->opts.unordered;
    for (;;) {
        sl_element *in = &m->in;
        const int rc = sl__stage_next(m->input, in);
        if (rc)
            return rc;
        const uint64_t index = m->issued++;
        m->head += !unordered;
        const int sample = ++m->handed % SL__SAMPLE_EVERY == 0 && m->ns;
        const uint64_t t0 = sample ? sl_clock_ns() : 0;
        char err[ERR_CAP];
        const int frc = apply(m, index, in, out, err, m->dest);
        if (sample)
            count_inline(m, t0, sl_clock_ns());
        if (frc == 0)
            return 0;
        const int e = element_error(m, index, frc, err);
        if (e != 1)
            return e;
    }
}

static int snapshot_input(map_stage *m);

/* Back to parallel mode: the runner goes on from the input's position now, which is also what
 * a save must record until the next element is handed out. */
static int leave_inline(map_stage *m)
{
    const int rc = snapshot_input(m);
    pthread_mutex_lock(&m->mu);
    m->inline_on = 0;
    pthread_cond_broadcast(&m->runner_cv);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int map_next_parallel(sl__stage *s, sl_element *out)
{
    map_stage *m = (map_stage *)s;
    if (m->inline_on) {
        if (atomic_load_explicit(&m->inline_want, memory_order_relaxed))
            return map_next_inline(m, out);
        SL_TRY(leave_inline(m));
    }
    if (!m->runner_started)
        SL_TRY(start_runner(m));
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (atomic_load_explicit(&m->inline_want, memory_order_relaxed) && m->runner_parked &&
            m->issued == m->handed && !m->stop) {
            /* Everything issued is handed out and the runner waits: map inline from here. */
            m->inline_on = 1;
            pthread_mutex_unlock(&m->mu);
            return map_next_inline(m, out);
        }
        int end;
        map_slot *slot = ready_slot(m, &end);
        if (end) {
            const int rc = m->input_rc;
            pthread_mutex_unlock(&m->mu);
            return rc;
        }
        if (m->stop) {
            pthread_mutex_unlock(&m->mu);
            return SL_ERR_CANCELLED;
        }
        if (!slot && m->npending > 0) {
            /* The consumer would only sleep: it runs a pending element itself (the oldest,
             * usually the one it waits for), which saves a wakeup and keeps every core busy
             * when the map is the bottleneck. */
            const uint64_t t0 = m->ns ? sl_clock_ns() : 0;
            run_pending(m, params_of(s)->opts.unordered);
            if (m->ns)
                count_work(m, t0, sl_clock_ns(), 1, 1);
            continue;
        }
        if (!slot) {
            /* Slots queued for a worker must run now that someone waits for them (the runner
             * may be blocked in its input with a batch not yet full). */
            const int started = start_workers(m, 1);
            if (started < 0) {
                pthread_mutex_unlock(&m->mu);
                return sl__stage_fail(s, SL_ERR_CANCELLED, "starting workers");
            }
            if (started > 0)
                continue; /* mu was dropped: look again before sleeping */
            m->consumer_waiting = 1;
            timed_wait(m, &m->consumer_cv, m->ns ? &m->ns->wait_ns : NULL, "wait");
            m->consumer_waiting = 0;
            continue;
        }
        const int rc = slot->rc;
        const uint64_t index = slot->index;
        char err[ERR_CAP];
        memcpy(err, slot->err, sizeof err);
        sl__element_move(out, &slot->out);
        if (rc == 0 && m->snapshots)
            sl__state_writer_swap(&m->last_snap, &slot->snap);
        slot->state = SLOT_FREE;
        m->nfree++;
        m->ndone--;
        if (++m->handed % SL__SAMPLE_EVERY == 0 && m->ns) {
            sl__stat_add(&m->ns->fill_sum, (uint64_t)m->ndone);
            sl__stat_add(&m->ns->workers_sum, (uint64_t)m->workers);
            sl__stat_add(&m->ns->fill_samples, 1);
        }
        if (!params_of(s)->opts.unordered)
            m->head++;
        if (m->runner_waiting && m->nfree >= (m->nslots + 3) / 4)
            pthread_cond_signal(&m->runner_cv);
        if (rc == 0) {
            pthread_mutex_unlock(&m->mu);
            return 0;
        }
        pthread_mutex_unlock(&m->mu);
        const int e = element_error(m, index, rc, err);
        if (e != 1)
            return e;
        pthread_mutex_lock(&m->mu);
    }
}

static void map_cancel(sl__stage *s)
{
    map_stage *m = (map_stage *)s;
    if (m->slots) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_broadcast(&m->runner_cv);
        pthread_cond_broadcast(&m->consumer_cv);
        pthread_mutex_unlock(&m->mu);
    }
    sl__stage_cancel(m->input);
}

static void map_close(sl__stage *s)
{
    map_stage *m = (map_stage *)s;
    if (m->slots) {
        map_cancel(s);
        if (m->runner_started)
            pthread_join(m->runner, NULL);
        pthread_mutex_lock(&m->mu);
        while (m->workers > 0)
            pthread_cond_wait(&m->consumer_cv, &m->mu);
        pthread_mutex_unlock(&m->mu);
        for (int i = 0; i < m->nslots; i++) {
            sl_element_release(&m->slots[i].in);
            sl_element_release(&m->slots[i].out);
            sl__state_writer_free(&m->slots[i].snap);
        }
        sl__state_writer_free(&m->last_snap);
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->consumer_cv);
        pthread_cond_destroy(&m->runner_cv);
        sl_free(m->slots);
        sl_free(m->pending);
    }
    sl_element_release(&m->in);
    sl__stage_close(m->input);
    sl_free(m);
}

/* Random access: the function applied to the input's element i, on the calling thread. */
static int map_get(sl__stage *s, uint64_t i, sl_element *out)
{
    map_stage *m = (map_stage *)s;
    sl_element in;
    memset(&in, 0, sizeof in);
    SL_TRY(sl__stage_get(m->input, i, &in));
    memset(out, 0, sizeof *out); /* get's callers do not promise an empty element */
    char err[ERR_CAP];
    const int rc = apply(m, i, &in, out, err, NULL);
    return rc ? sl__stage_fail(s, rc, "element %llu%s%s", (unsigned long long)i, err[0] ? ": " : "",
                               err)
              : 0;
}

/* Batched random access: the input's batch (its reads in flight together), then the function
 * on each element in order, as map_get applies it. All or nothing. */
static int map_get_batch(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out)
{
    map_stage *m = (map_stage *)s;
    sl_element *in = sl_calloc(n ? n : 1, sizeof *in);
    if (!in)
        return sl__stage_fail(s, SL_ERR_NOMEM, "%zu elements", n);
    int rc = sl__stage_get_batch(m->input, idx, n, in);
    char err[ERR_CAP];
    for (size_t j = 0; rc == 0 && j < n; j++) {
        rc = apply(m, idx[j], &in[j], &out[j], err, NULL); /* consumes in[j] */
        if (rc) {
            rc = sl__stage_fail(s, rc, "element %llu%s%s", (unsigned long long)idx[j],
                                err[0] ? ": " : "", err);
            for (size_t k = 0; k < j; k++)
                sl_element_release(&out[k]);
            for (size_t k = j + 1; k < n; k++)
                sl_element_release(&in[k]);
        }
    }
    sl_free(in);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

/* Sequential map and filter run synchronously: their counter, then the input's state. */
static int sequential_save(sl__stage *s, sl__state_writer *w)
{
    map_stage *m = (map_stage *)s;
    sl__state_put(w, m->next_index);
    return sl__stage_save(m->input, w);
}

/* Parallel map: the next index, then the snapshot taken when the last element handed out was
 * pulled (the input itself has run ahead). */
static int parallel_save(sl__stage *s, sl__state_writer *w)
{
    map_stage *m = (map_stage *)s;
    if (params_of(s)->opts.unordered)
        return sl__stage_fail(s, SL_ERR_NOT_CHECKPOINTABLE,
                              "its output order depends on timing (ordered=false)");
    if (!m->snapshots)
        return sl__stage_save(m->input, w); /* names the input stage that cannot */
    pthread_mutex_lock(&m->mu);
    const int refused = m->refusal[0] != '\0';
    pthread_mutex_unlock(&m->mu);
    if (refused)
        return sl__stage_fail_raw(s, SL_ERR_NOT_CHECKPOINTABLE, m->refusal);
    if (m->inline_on) { /* the input stands right after the last element handed out */
        sl__state_put(w, m->head);
        return sl__stage_save(m->input, w);
    }
    sl__state_put(w, m->head);
    sl__state_put_bytes(w, m->last_snap.buf, m->last_snap.len);
    return m->last_snap.err;
}

/* The input's state as it stands (before anything is pulled, or when inline mode ends): what
 * a save gives until the next element is handed out. Called while the runner is not pulling. */
static int snapshot_input(map_stage *m)
{
    if (!m->snapshots)
        return 0;
    sl__state_writer_reset(&m->last_snap);
    char why[ERR_CAP];
    const int rc = sl__stage_snapshot(m->input, &m->last_snap, why, sizeof why);
    if (rc == SL_ERR_NOT_CHECKPOINTABLE) {
        pthread_mutex_lock(&m->mu);
        snprintf(m->refusal, sizeof m->refusal, "%s", why);
        pthread_mutex_unlock(&m->mu);
        return 0;
    }
    return rc;
}

static int sequential_seek(sl__stage *s, uint64_t pos)
{
    map_stage *m = (map_stage *)s;
    m->next_index = pos;
    return sl__stage_seek(m->input, pos);
}

static int parallel_seek(sl__stage *s, uint64_t pos)
{
    map_stage *m = (map_stage *)s;
    if (m->runner_started)
        return sl__stage_fail(s, SL_ERR_UNSUPPORTED, "seeking after the first element");
    m->head = m->issued = m->handed = pos;
    SL_TRY(sl__stage_seek(m->input, pos));
    return snapshot_input(m);
}

static const sl__stage_ops map_sequential_ops = {
    map_next_sequential, map_cancel,      map_close,    map_get,
    sequential_save,     sequential_seek, map_get_batch};
static const sl__stage_ops map_parallel_ops = {
    map_next_parallel, map_cancel, map_close, map_get, parallel_save, parallel_seek, map_get_batch};
static const sl__stage_ops filter_stage_ops = {filter_next, map_cancel, map_close, NULL,
                                               sequential_save};

int sl__map_attach_dest(sl__stage *s, sl__batch_dest *d, uint64_t *index)
{
    map_stage *m = (map_stage *)s;
    if ((s->ops != &map_parallel_ops && s->ops != &map_sequential_ops) ||
        params_of(s)->opts.unordered || m->runner_started)
        return SL_ERR_INVAL;
    m->dest = d;
    *index = s->ops == &map_parallel_ops ? m->head : m->next_index;
    return 0;
}

int sl__map_set_parallel(sl__stage *s, int parallel)
{
    map_stage *m = (map_stage *)s;
    if (s->ops != &map_parallel_ops || parallel < 0)
        return SL_ERR_INVAL;
    pthread_mutex_lock(&m->mu);
    atomic_store_explicit(&m->inline_want, parallel == 0, memory_order_relaxed);
    if (parallel > 0) {
        m->parallel = SL_MIN(parallel, m->nslots);
        m->chunk = SL_MAX(1, m->nslots / (4 * m->parallel));
    }
    /* A runner waiting for a free slot parks now; a parked one resumes if inline is off. */
    if (m->runner_waiting || m->runner_parked)
        pthread_cond_broadcast(&m->runner_cv);
    if (m->ns)
        atomic_store_explicit(&m->ns->parallel, parallel ? m->parallel : 0, memory_order_relaxed);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int map_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                    sl__stage **out)
{
    const map_params *p = ds->params;
    map_stage *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ERR_NOMEM;
    int parallel = p->opts.parallel == SL_PARALLEL_AUTO ? ctx->threads : p->opts.parallel;
    if (parallel < 1)
        parallel = 1;
    const sl__stage_ops *ops = p->filter                           ? &filter_stage_ops
                               : parallel > 1 || p->opts.unordered ? &map_parallel_ops
                                                                   : &map_sequential_ops;
    m->base = (sl__stage){ops, ctx, ds, epoch};
    m->seed = sl__stage_seed(ctx, p->opts.seed, p->def.name);
    if (st)
        m->next_index = sl__state_get(st);
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &m->input);
    if (rc) {
        sl_free(m);
        return rc;
    }
    if (ops == &map_parallel_ops) {
        /* Twice the parallelism in slots: workers stay busy while the consumer lags a little. */
        m->nslots = SL_MAX(parallel * SLOTS_PER_THREAD, MIN_SLOTS);
        m->nfree = m->nslots;
        m->parallel = parallel;
        m->chunk = SL_MAX(1, m->nslots / (4 * parallel));
        m->wake_batch = SL_MAX(1, m->nslots / 4);
        m->slots = sl_calloc((size_t)m->nslots, sizeof *m->slots);
        m->pending = sl_calloc((size_t)m->nslots, sizeof *m->pending);
        if (!m->slots || !m->pending) {
            map_close(&m->base);
            return SL_ERR_NOMEM;
        }
        for (int i = 0; i < m->nslots; i++)
            m->slots[i].stage = m;
        pthread_mutex_init(&m->mu, NULL);
        pthread_cond_init(&m->consumer_cv, NULL);
        pthread_cond_init(&m->runner_cv, NULL);
        m->head = m->issued = m->handed = m->next_index;
        m->snapshots = !p->opts.unordered && sl__dataset_checkpointable(ds->inputs[0]);
        if ((m->ns = sl__ctx_node_stats(ctx, ds)) != NULL) {
            atomic_store_explicit(&m->ns->work_ahead, 1, memory_order_relaxed);
            atomic_store_explicit(&m->ns->parallel, m->parallel, memory_order_relaxed);
            atomic_store_explicit(&m->ns->slots, m->nslots, memory_order_relaxed);
        }
        if ((rc = snapshot_input(m)) != 0) {
            map_close(&m->base);
            return rc;
        }
    }
    *out = &m->base;
    return 0;
}

static int64_t map_cardinality(const sl_dataset *ds)
{
    const map_params *p = ds->params;
    return p->filter ? SL_CARDINALITY_UNKNOWN : sl_dataset_cardinality(ds->inputs[0]);
}

static void map_free(void *params)
{
    map_params *p = params;
    if (p && p->def.free_user)
        p->def.free_user(p->def.user);
    sl_free(p);
}

static int map_random_access(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]);
}

static int map_checkpointable(const sl_dataset *ds)
{
    return !((const map_params *)ds->params)->opts.unordered;
}

/* Parallel maps hold an input and an output per slot; outputs are taken to be as large as
 * inputs (a decoding map is larger: its elements are counted where they are buffered). */
static int64_t map_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    const map_params *p = ds->params;
    *elem = in[0];
    const int parallel = p->opts.parallel == SL_PARALLEL_AUTO ? threads : p->opts.parallel;
    if (parallel <= 1 && !p->opts.unordered)
        return 0;
    return sl__memory_scaled(2 * SL_MAX(parallel * SLOTS_PER_THREAD, MIN_SLOTS),
                             in[0] < 0 ? -1 : in[0] + (int64_t)sizeof(sl_element));
}

static const sl__dataset_ops map_ops = {
    "map", map_open,           map_cardinality, map_free, map_random_access,
    0,     map_checkpointable, map_memory};

static void format_parallel(char *buf, size_t cap, const sl_map_options *o)
{
    int n = 0;
    buf[0] = '\0';
    if (o->parallel == SL_PARALLEL_AUTO)
        n += snprintf(buf + n, cap - (size_t)n, ", parallel=auto");
    else if (o->parallel > 1)
        n += snprintf(buf + n, cap - (size_t)n, ", parallel=%d", o->parallel);
    if (o->unordered && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ", ordered=false");
    if (o->seed && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, ", seed=%llu", (unsigned long long)o->seed);
}

int sl_dataset_map(sl_dataset **out, sl_dataset *in, const sl_map_def *fn,
                   const sl_map_options *opts)
{
    *out = NULL;
    if (!in || !fn || !fn->fn || (opts && opts->parallel < 1 && opts->parallel != SL_PARALLEL_AUTO))
        return SL_ERR_INVAL;
    map_params *p = sl_calloc(1, sizeof *p);
    if (!p) {
        if (fn->free_user)
            fn->free_user(fn->user);
        return SL_ERR_NOMEM;
    }
    p->def = *fn;
    snprintf(p->name_buf, sizeof p->name_buf, "%s", fn->name ? fn->name : "fn");
    p->def.name = p->name_buf;
    p->opts = opts ? *opts : (sl_map_options){.parallel = 1};
    if (p->opts.parallel == 0)
        p->opts.parallel = 1;
    char extra[96];
    format_parallel(extra, sizeof extra, &p->opts);
    return sl__dataset_create(out, &map_ops, &in, 1, p, "map(%s%s)", p->name_buf, extra);
}

static void filter_free(void *params)
{
    sl_free(params);
}

static const sl__dataset_ops filter_ops = {"filter", map_open, map_cardinality, filter_free};

int sl_dataset_filter(sl_dataset **out, sl_dataset *in, sl_filter_fn fn, void *user,
                      const char *name)
{
    *out = NULL;
    if (!in || !fn)
        return SL_ERR_INVAL;
    map_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    snprintf(p->name_buf, sizeof p->name_buf, "%s", name ? name : "fn");
    p->def.name = p->name_buf;
    p->def.user = user;
    p->filter = fn;
    p->opts.parallel = 1;
    return sl__dataset_create(out, &filter_ops, &in, 1, p, "filter(%s)", p->name_buf);
}
