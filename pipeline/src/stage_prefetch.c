/*
 * prefetch(n): a coordinator thread ("sl-prefetch") pulls elements from the input ahead of the
 * consumer into a ring of n slots, so input work overlaps whatever the consumer does. The
 * input's end or error is stored after the last element and handed out in order.
 *
 * Locking: `mu` guards the ring (head, count, capacity), `ended`/`end_rc` and `stop`. The
 * runner holds no lock while calling the input's `next`. The capacity may change while running
 * (sl__prefetch_set_capacity; AUTOTUNE will drive it): growing reallocates the ring under the
 * lock, shrinking only lowers the limit.
 *
 * Checkpoints: when the input chain is checkpointable, the runner saves the input's state
 * right after pulling each element and the snapshot travels with the element through the ring;
 * `save` writes the snapshot of the last element handed out (the input itself has run ahead).
 *
 * Counters (engine_internal.h): the consumer's time blocked in `next` and the runner's time
 * blocked on a full ring, clock reads only around a wait; the runner's own time (one clock read
 * per SL__SAMPLE_EVERY elements it stores); the ring's fill sampled once per SL__SAMPLE_EVERY
 * elements handed out.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"

enum { AUTO_MIN = 2 };

typedef struct prefetch_stage {
    sl__stage base;
    sl__stage *input;
    pthread_t runner;
    int runner_started;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    sl_element *ring;            /* (slots) */
    int snapshots;               /* the input chain is checkpointable (fixed at open) */
    char refusal[SL_ERRMSG_CAP]; /* guarded by mu: why a snapshot was refused (then none) */
    sl__state_writer *snaps;     /* (slots) the input's state after each ring element, or NULL */
    sl__state_writer last_snap;  /* the input's state as of the last element handed out */
    int64_t slots;               /* allocated */
    int64_t capacity;            /* current limit, <= slots */
    int64_t head, count;         /* guarded by mu */
    int ended, end_rc;           /* guarded by mu */
    int stop;                    /* guarded by mu */
    uint64_t handed;             /* guarded by mu: elements handed out (fill sampling) */
    sl__node_stats *ns;          /* the node's counters (NULL outside an iterator) */
} prefetch_stage;

/* Waits on cv (mu held), adds the time asleep to *counter and, when tracing, a span; returns
 * the time asleep. */
static uint64_t timed_wait(prefetch_stage *p, pthread_cond_t *cv, _Atomic uint64_t *counter,
                           const char *cat)
{
    if (!p->ns) {
        pthread_cond_wait(cv, &p->mu);
        return 0;
    }
    const uint64_t t0 = sl_clock_ns();
    pthread_cond_wait(cv, &p->mu);
    const uint64_t t1 = sl_clock_ns();
    sl__stat_add(counter, t1 - t0);
    if (sl__tracing(p->base.ctx))
        sl__trace_span(p->base.ctx, p->base.ds->text, cat, t0, t1, 0);
    return t1 - t0;
}

static void *runner_main(void *arg)
{
    prefetch_stage *p = arg;
    sl_element e;
    sl__state_writer snap = {0};
    int snapshots = p->snapshots && !p->refusal[0]; /* written before the runner started */
    char why[SL_ERRMSG_CAP];
    sl__producer_clock pc;
    sl__producer_start(&pc, p->ns);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->count >= p->capacity) {
            pc.blocked += timed_wait(p, &p->not_full, p->ns ? &p->ns->blocked_ns : NULL, "blocked");
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        memset(&e, 0, sizeof e);
        int rc = sl__stage_next(p->input, &e);
        int refused = 0;
        if (rc == 0 && snapshots) {
            sl__state_writer_reset(&snap);
            if ((rc = sl__stage_snapshot(p->input, &snap, why, sizeof why)) ==
                SL_ERR_NOT_CHECKPOINTABLE) {
                refused = 1; /* the stream goes on; `save` will say why it cannot */
                snapshots = 0;
                rc = 0;
            } else if (rc) {
                sl_element_release(&e);
            }
        }
        pthread_mutex_lock(&p->mu);
        if (refused)
            snprintf(p->refusal, sizeof p->refusal, "%s", why);
        if (rc) {
            p->ended = 1;
            p->end_rc = rc;
            pthread_cond_broadcast(&p->not_empty);
            break;
        }
        if (p->stop) {
            sl_element_release(&e);
            break;
        }
        const int64_t at = (p->head + p->count) % p->slots;
        p->ring[at] = e;
        if (p->snaps && snapshots)
            sl__state_writer_swap(&p->snaps[at], &snap);
        p->count++;
        pthread_cond_signal(&p->not_empty);
        sl__producer_tick(&pc, p->ns);
    }
    pthread_mutex_unlock(&p->mu);
    sl__state_writer_free(&snap);
    return NULL;
}

static int prefetch_next(sl__stage *s, sl_element *out)
{
    prefetch_stage *p = (prefetch_stage *)s;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->count > 0) {
            if (p->ns && ++p->handed % SL__SAMPLE_EVERY == 0) {
                sl__stat_add(&p->ns->fill_sum, (uint64_t)p->count);
                sl__stat_add(&p->ns->fill_samples, 1);
            }
            *out = p->ring[p->head];
            memset(&p->ring[p->head], 0, sizeof *out);
            if (p->snaps)
                sl__state_writer_swap(&p->last_snap, &p->snaps[p->head]);
            p->head = (p->head + 1) % p->slots;
            p->count--;
            pthread_cond_signal(&p->not_full);
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        if (p->ended || p->stop) {
            const int rc = p->ended ? p->end_rc : SL_ERR_CANCELLED;
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
        timed_wait(p, &p->not_empty, p->ns ? &p->ns->wait_ns : NULL, "wait");
    }
}

static void prefetch_cancel(sl__stage *s)
{
    prefetch_stage *p = (prefetch_stage *)s;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->not_full);
    pthread_cond_broadcast(&p->not_empty);
    pthread_mutex_unlock(&p->mu);
    sl__stage_cancel(p->input);
}

static void prefetch_close(sl__stage *s)
{
    prefetch_stage *p = (prefetch_stage *)s;
    prefetch_cancel(s);
    if (p->runner_started)
        pthread_join(p->runner, NULL);
    for (int64_t i = 0; i < p->count; i++)
        sl_element_release(&p->ring[(p->head + i) % p->slots]);
    sl__stage_close(p->input);
    for (int64_t i = 0; p->snaps && i < p->slots; i++)
        sl__state_writer_free(&p->snaps[i]);
    sl_free(p->snaps);
    sl__state_writer_free(&p->last_snap);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->not_empty);
    pthread_cond_destroy(&p->not_full);
    sl_free(p->ring);
    sl_free(p);
}

static int prefetch_save(sl__stage *s, sl__state_writer *w)
{
    prefetch_stage *p = (prefetch_stage *)s;
    if (!p->snapshots)
        return sl__stage_save(p->input, w); /* names the input stage that cannot */
    pthread_mutex_lock(&p->mu);
    const int refused = p->refusal[0] != '\0';
    pthread_mutex_unlock(&p->mu);
    if (refused)
        return sl__stage_fail_raw(s, SL_ERR_NOT_CHECKPOINTABLE, p->refusal);
    sl__state_put_bytes(w, p->last_snap.buf, p->last_snap.len);
    return p->last_snap.err;
}

static const sl__stage_ops prefetch_stage_ops = {prefetch_next, prefetch_cancel, prefetch_close,
                                                 NULL, prefetch_save};

int sl__prefetch_set_capacity(sl__stage *s, int64_t capacity)
{
    prefetch_stage *p = (prefetch_stage *)s;
    if (s->ops != &prefetch_stage_ops || capacity < 1)
        return SL_ERR_INVAL;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (capacity > p->slots) {
        sl_element *ring = sl_calloc((size_t)capacity, sizeof *ring);
        sl__state_writer *snaps = p->snaps ? sl_calloc((size_t)capacity, sizeof *snaps) : NULL;
        if (!ring || (p->snaps && !snaps)) {
            sl_free(ring);
            sl_free(snaps);
            rc = SL_ERR_NOMEM;
        } else {
            for (int64_t i = 0; i < p->count; i++)
                ring[i] = p->ring[(p->head + i) % p->slots];
            if (snaps) { /* every old slot's writer moves over, so no buffer is lost */
                for (int64_t i = 0; i < p->slots; i++)
                    snaps[i] = p->snaps[(p->head + i) % p->slots];
                sl_free(p->snaps);
                p->snaps = snaps;
            }
            sl_free(p->ring);
            p->ring = ring;
            p->slots = capacity;
            p->head = 0;
        }
    }
    if (rc == 0) {
        p->capacity = capacity;
        if (p->ns)
            atomic_store_explicit(&p->ns->slots, capacity, memory_order_relaxed);
        pthread_cond_broadcast(&p->not_full);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static int prefetch_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                         sl__stage **out)
{
    const int64_t want = *(const int64_t *)ds->params;
    const int64_t cap =
        want == SL_PARALLEL_AUTO ? (ctx->threads > AUTO_MIN ? ctx->threads : AUTO_MIN) : want;
    prefetch_stage *p = sl_calloc(1, sizeof *p);
    if (!p || !(p->ring = sl_calloc((size_t)cap, sizeof *p->ring))) {
        sl_free(p);
        return SL_ERR_NOMEM;
    }
    p->base = (sl__stage){&prefetch_stage_ops, ctx, ds, epoch};
    p->slots = p->capacity = cap;
    if ((p->ns = sl__ctx_node_stats(ctx, ds)) != NULL) {
        atomic_store_explicit(&p->ns->work_ahead, 1, memory_order_relaxed);
        atomic_store_explicit(&p->ns->slots, cap, memory_order_relaxed);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->not_empty, NULL);
    pthread_cond_init(&p->not_full, NULL);
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &p->input);
    if (rc == 0 && sl__dataset_checkpointable(ds->inputs[0])) {
        p->snapshots = 1;
        if (!(p->snaps = sl_calloc((size_t)cap, sizeof *p->snaps)))
            rc = SL_ERR_NOMEM;
        else
            rc = sl__stage_snapshot(p->input, &p->last_snap, p->refusal, sizeof p->refusal);
        if (rc == SL_ERR_NOT_CHECKPOINTABLE)
            rc = 0; /* the stream goes on; `save` reports p->refusal */
    }
    if (rc == 0) {
        rc = -pthread_create(&p->runner, NULL, runner_main, p);
        if (rc == 0) {
            pthread_setname_np(p->runner, "sl-prefetch");
            p->runner_started = 1;
        }
    }
    if (rc) {
        prefetch_close(&p->base);
        return rc;
    }
    *out = &p->base;
    return 0;
}

static int64_t prefetch_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int64_t prefetch_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    const int64_t want = *(const int64_t *)ds->params;
    *elem = in[0];
    return sl__memory_scaled(want == SL_PARALLEL_AUTO ? SL_MAX(threads, AUTO_MIN) : want,
                             in[0] < 0 ? -1 : in[0] + (int64_t)sizeof(sl_element));
}

static const sl__dataset_ops prefetch_ops = {
    "prefetch", prefetch_open, prefetch_cardinality, NULL, NULL, 0, NULL, prefetch_memory};

enum { MAX_PREFETCH = 1 << 20 };

int sl_dataset_prefetch(sl_dataset **out, sl_dataset *in, int64_t buffer)
{
    *out = NULL;
    if (!in || (buffer < 1 && buffer != SL_PARALLEL_AUTO) || buffer > MAX_PREFETCH)
        return SL_ERR_INVAL;
    int64_t *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = buffer;
    if (buffer == SL_PARALLEL_AUTO)
        return sl__dataset_create(out, &prefetch_ops, &in, 1, p, "prefetch(auto)");
    return sl__dataset_create(out, &prefetch_ops, &in, 1, p, "prefetch(%lld)", (long long)buffer);
}
