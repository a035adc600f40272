/*
 * interleave(inner, cycle_length, block_length): for each element of the input (the "outer"
 * stream) a user function builds an inner dataset; up to cycle_length inner streams are open at
 * once, in cycle slots, and the output takes block_length elements from each in turn.
 *
 * Order (tf.data's deterministic interleave): slots start empty and are filled lazily, when the
 * round robin reaches them; an empty slot pulls the next outer element and opens its inner
 * stream in place, then is read at once. A block ends after block_length elements or when the
 * slot's stream ends; either way the round robin moves to the next slot, and a slot whose stream
 * ended is refilled only when the round robin comes back to it. The stream ends when the outer
 * input has ended and no slot is open.
 *
 * Threads. The outer input is read, and inner streams are built and opened, on the thread that
 * calls `next` (the consumer). With parallel = 1 the consumer also reads the inner streams. With
 * parallel = P > 1 (auto: min(cycle_length, CPU budget)) P coordinator threads ("sl-interleave")
 * read ahead: runner t serves the slots k with k % A == t, pulling each open slot's stream into
 * that slot's ring of `ring_cap` elements. A (`active`) is P for a fixed parallel; with
 * parallel=auto all P threads start but A starts at 1 and AUTOTUNE moves it within 1..P
 * (sl__interleave_set_parallel): runners t >= A sleep, and slot ownership follows A. The consumer
 * still walks the slots in the order above, so the output is the same for any P and any timing;
 * ordered=false lets the consumer take an element from any slot that has one ready when the current
 * slot has none (not checkpointable).
 *
 * Locking: `mu` guards every slot's `inner` pointer (cancel reads it from any thread), the rings
 * (head, count), busy/ended/end_rc, and stop. A runner takes a slot under mu (busy = 1) and calls
 * its `next` without mu; the consumer swaps a slot's stream only when the slot has ended and no
 * runner is inside it. Lock order: mu, then a stage's own locks (cancel forwards under mu).
 *
 * Checkpoints. State, own values first: cycle_length, the round-robin slot, the count within the
 * current block, whether the outer input has ended, outer elements pulled; then for every slot
 * whether it is open and, if so, the index of its outer element, the outer input's state from
 * just before that element was pulled, and the inner stream's state as of its last element
 * handed out; then the outer input's own state. A restore rebuilds each open slot by opening the
 * outer input at the saved earlier state and pulling that one element (an outer element is a
 * file name or a small value: no inner record is read), builds the inner dataset from it and
 * opens it at its saved state (inner sources over indexed files seek). The runners snapshot a
 * slot's inner state with every element they pull, like prefetch, so `save` never touches a
 * stream a runner is reading.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"

enum { MAX_CYCLE = 1024, MAX_RING = 64, ERR_CAP = 256 };

typedef struct interleave_params {
    sl_interleave_fn make;
    void *user;
    void (*free_user)(void *user);
    int64_t cycle_length, block_length;
    int parallel; /* 1, N > 1, or SL_PARALLEL_AUTO */
    int unordered;
} interleave_params;

typedef struct slot {
    /* Consumer-only fields */
    int open;                    /* holds an inner stream the consumer has not seen end */
    uint64_t outer_index;        /* which outer element built it */
    sl_dataset *inner_ds;        /* one reference */
    sl__state_writer outer_snap; /* the outer input's state before that element was pulled */
    int snapshots;               /* runner mode: the inner chain is checkpointable */
    sl__state_writer last_snap;  /* runner mode: inner state as of the last element handed out */

    sl__stage *inner; /* guarded by mu (cancel reads it); written by the consumer only */
    /* Runner mode, guarded by mu */
    sl_element *ring;        /* (ring_cap) */
    sl__state_writer *snaps; /* (ring_cap) inner state after each ring element */
    int head, count;
    int busy;  /* a runner is inside inner's `next` */
    int ended; /* the runner saw the stream end (end_rc: SL_EOF or an error) */
    int end_rc;
} slot;

typedef struct interleave_stage {
    sl__stage base;
    sl__stage *outer; /* consumer-only after open; cancel reads it (never swapped) */
    slot *slots;      /* (cycle_length) */
    int64_t ncycle, block_length;
    int64_t cycle;        /* round-robin slot */
    int64_t block;        /* elements taken from it in the current block */
    int64_t nopen;        /* open slots */
    int outer_ended;      /* the outer input has returned SL_EOF */
    uint64_t outer_count; /* outer elements pulled */
    int outer_snapshots;  /* the outer chain is checkpointable: snapshot it before each pull */

    int nrunners; /* 0: sequential */
    int active;   /* guarded by mu: runners serving slots, 1..nrunners */
    int ring_cap;
    sl__node_stats *ns; /* counters (parallelism, waits, runners busy), or NULL */
    uint64_t handed;    /* consumer-only: elements handed out, for sampling */
    pthread_t *runners; /* (nrunners) */
    int started;        /* runners started */
    pthread_mutex_t mu;
    pthread_cond_t consumer_cv; /* a ring got an element or a slot ended */
    pthread_cond_t runner_cv;   /* a ring has room, a slot opened, or stop */
    int stop;                   /* guarded by mu */
} interleave_stage;

typedef struct runner_arg {
    interleave_stage *x;
    int index;
} runner_arg;

static const interleave_params *ip(const sl__stage *s)
{
    return s->ds->params;
}

/* ---- runners ------------------------------------------------------------------------------ */

/* Runner t's next slot to fill: open, not ended, nobody inside it, room in its ring; the one
 * with the fewest buffered elements first, so the slots it serves advance together. */
static slot *pick_slot(interleave_stage *x, int t)
{
    slot *best = NULL;
    if (t >= x->active)
        return NULL;
    for (int64_t k = t; k < x->ncycle; k += x->active) {
        slot *sl = &x->slots[k];
        if (sl->inner && !sl->ended && !sl->busy && sl->count < x->ring_cap &&
            (!best || sl->count < best->count))
            best = sl;
    }
    return best;
}

static void *runner_main(void *arg)
{
    interleave_stage *x = ((runner_arg *)arg)->x;
    const int t = ((runner_arg *)arg)->index;
    sl_free(arg);
    sl__state_writer snap = {0};
    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        slot *sl = pick_slot(x, t);
        if (!sl) {
            pthread_cond_wait(&x->runner_cv, &x->mu);
            continue;
        }
        sl->busy = 1;
        sl__stage *inner = sl->inner;
        const int snapshots = sl->snapshots;
        pthread_mutex_unlock(&x->mu);

        sl_element e;
        memset(&e, 0, sizeof e);
        int rc = sl__stage_next(inner, &e);
        if (rc == 0 && snapshots) {
            sl__state_writer_reset(&snap);
            if ((rc = sl__stage_save(inner, &snap)) != 0)
                sl_element_release(&e);
        }

        pthread_mutex_lock(&x->mu);
        sl->busy = 0;
        if (rc) {
            sl->ended = 1;
            sl->end_rc = rc;
        } else if (x->stop) {
            sl_element_release(&e);
        } else {
            const int at = (sl->head + sl->count) % x->ring_cap;
            sl->ring[at] = e;
            if (snapshots)
                sl__state_writer_swap(&sl->snaps[at], &snap);
            sl->count++;
        }
        pthread_cond_broadcast(&x->consumer_cv);
    }
    pthread_mutex_unlock(&x->mu);
    sl__state_writer_free(&snap);
    return NULL;
}

static int start_runners(interleave_stage *x)
{
    for (int t = 0; t < x->nrunners; t++) {
        runner_arg *a = sl_malloc(sizeof *a);
        if (!a)
            return sl__stage_fail(&x->base, SL_ERR_NOMEM, "starting its threads");
        *a = (runner_arg){x, t};
        const int rc = pthread_create(&x->runners[t], NULL, runner_main, a);
        if (rc) {
            sl_free(a);
            return sl__stage_fail(&x->base, -rc, "starting its threads");
        }
        pthread_setname_np(x->runners[t], "sl-interleave");
        x->started = t + 1;
    }
    return 0;
}

/* Pops slot k's oldest buffered element. Called with mu held and count > 0. Every
 * SL__SAMPLE_EVERY elements it samples how many runners are inside a stream. */
static void pop(interleave_stage *x, slot *sl, sl_element *out)
{
    if (x->ns && ++x->handed % SL__SAMPLE_EVERY == 0) {
        uint64_t busy = 0;
        for (int64_t k = 0; k < x->ncycle; k++)
            busy += (uint64_t)x->slots[k].busy;
        sl__stat_add(&x->ns->workers_sum, busy);
        sl__stat_add(&x->ns->fill_samples, 1);
    }
    *out = sl->ring[sl->head];
    memset(&sl->ring[sl->head], 0, sizeof *out);
    if (sl->snapshots)
        sl__state_writer_swap(&sl->last_snap, &sl->snaps[sl->head]);
    sl->head = (sl->head + 1) % x->ring_cap;
    sl->count--;
    pthread_cond_broadcast(&x->runner_cv);
}

/* The next element of slot k's stream: 0, SL_EOF, or an error. In unordered mode, while slot k
 * has nothing ready, an element any other slot has ready is taken instead (*from says which). */
static int take(interleave_stage *x, int64_t k, sl_element *out, int64_t *from)
{
    slot *sl = &x->slots[k];
    *from = k;
    if (!x->nrunners)
        return sl__stage_next(sl->inner, out);
    const int unordered = ip(&x->base)->unordered;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        if (sl->count > 0) {
            pop(x, sl, out);
            pthread_mutex_unlock(&x->mu);
            return 0;
        }
        if (sl->ended) {
            const int rc = sl->end_rc;
            pthread_mutex_unlock(&x->mu);
            return rc;
        }
        if (x->stop) {
            pthread_mutex_unlock(&x->mu);
            return SL_ERR_CANCELLED;
        }
        for (int64_t j = 0; unordered && j < x->ncycle; j++) {
            if (x->slots[j].count > 0) {
                pop(x, &x->slots[j], out);
                pthread_mutex_unlock(&x->mu);
                *from = j;
                return 0;
            }
        }
        /* clock reads only around a wait that sleeps anyway */
        const uint64_t t0 = x->ns ? sl_clock_ns() : 0;
        pthread_cond_wait(&x->consumer_cv, &x->mu);
        if (x->ns)
            sl__stat_add(&x->ns->wait_ns, sl_clock_ns() - t0);
    }
}

/* ---- slots -------------------------------------------------------------------------------- */

static void advance(interleave_stage *x)
{
    x->block = 0;
    x->cycle = (x->cycle + 1) % x->ncycle;
}

/* Closes slot k's stream (it ended, or the stage is closing). No runner is inside it: it has
 * ended, or the runners are joined. */
static void close_slot(interleave_stage *x, slot *sl)
{
    pthread_mutex_lock(&x->mu);
    sl__stage *inner = sl->inner;
    sl->inner = NULL;
    for (int i = 0; i < sl->count; i++)
        sl_element_release(&sl->ring[(sl->head + i) % x->ring_cap]);
    sl->head = sl->count = 0;
    sl->ended = 0;
    sl->end_rc = 0;
    pthread_mutex_unlock(&x->mu);
    sl__stage_close(inner);
    sl_dataset_release(sl->inner_ds);
    sl->inner_ds = NULL;
    if (sl->open)
        x->nopen--;
    sl->open = 0;
}

/* Builds the inner dataset of one outer element. With skip (SL_ON_ERROR_SKIP while filling a
 * slot) a failure is counted and returns 1 with *out NULL, recording no message. */
static int build_inner(interleave_stage *x, const sl_element *e, uint64_t index, int skip,
                       sl_dataset **out)
{
    const interleave_params *p = ip(&x->base);
    char err[ERR_CAP] = "";
    *out = NULL;
    int rc = p->make(p->user, e, out, err, sizeof err);
    if (rc == 0 && *out)
        return 0;
    sl_dataset_release(*out);
    *out = NULL;
    rc = rc < 0 ? rc : SL_ERR_INVAL;
    if (skip) {
        sl__ctx_count_skip(x->base.ctx);
        return 1;
    }
    return sl__stage_fail(&x->base, rc, "outer element %llu%s%s", (unsigned long long)index,
                          err[0] ? ": " : "", err[0] ? err : "no inner dataset");
}

/* Makes slot k hold the stream of dataset ds (taken over), opened at st (NULL: fresh). */
static int install(interleave_stage *x, slot *sl, sl_dataset *ds, uint64_t index,
                   sl__state_reader *st)
{
    sl__stage *inner = NULL;
    const int rc = sl__stage_open(ds, x->base.ctx, x->base.epoch, st, &inner);
    if (rc) {
        sl_dataset_release(ds);
        return rc;
    }
    sl->inner_ds = ds;
    sl->outer_index = index;
    sl->open = 1;
    x->nopen++;
    int src = 0;
    if (x->nrunners && (sl->snapshots = sl__dataset_checkpointable(ds)) != 0) {
        sl__state_writer_reset(&sl->last_snap);
        src = sl__stage_save(inner, &sl->last_snap);
    }
    pthread_mutex_lock(&x->mu);
    sl->inner = inner;
    if (x->stop) /* cancel ran while the stream was opening: it must not block now */
        sl__stage_cancel(inner);
    pthread_cond_broadcast(&x->runner_cv);
    pthread_mutex_unlock(&x->mu);
    return src;
}

/* Fills the empty slot k from the next outer element (or notes that the outer input ended). An
 * outer element whose inner dataset cannot be built is dropped under SL_ON_ERROR_SKIP: the slot
 * stays empty and the next call pulls another. */
static int fill_slot(interleave_stage *x, slot *sl)
{
    if (x->outer_snapshots) {
        sl__state_writer_reset(&sl->outer_snap);
        SL_TRY(sl__stage_save(x->outer, &sl->outer_snap));
    }
    sl_element e;
    memset(&e, 0, sizeof e);
    int rc = sl__stage_next(x->outer, &e);
    if (rc == SL_EOF) {
        x->outer_ended = 1;
        return 0;
    }
    if (rc)
        return rc;
    const uint64_t index = x->outer_count++;
    sl_dataset *ds;
    rc = build_inner(x, &e, index, x->base.ctx->on_error == SL_ON_ERROR_SKIP, &ds);
    sl_element_release(&e);
    if (rc == 0)
        rc = install(x, sl, ds, index, NULL);
    return rc < 0 ? rc : 0;
}

static int interleave_next(sl__stage *s, sl_element *out)
{
    interleave_stage *x = (interleave_stage *)s;
    if (x->nrunners && !x->started)
        SL_TRY(start_runners(x));
    for (;;) {
        if (sl__ctx_cancelled(s->ctx))
            return SL_ERR_CANCELLED;
        slot *sl = &x->slots[x->cycle];
        if (sl->open) {
            int64_t from;
            const int rc = take(x, x->cycle, out, &from);
            if (rc == 0) {
                if (from == x->cycle && ++x->block == x->block_length)
                    advance(x);
                return 0;
            }
            if (rc != SL_EOF)
                return rc;
            close_slot(x, sl);
            advance(x);
        } else if (!x->outer_ended) {
            SL_TRY(fill_slot(x, sl));
        } else if (x->nopen == 0) {
            return SL_EOF;
        } else {
            advance(x);
        }
    }
}

static void interleave_cancel(sl__stage *s)
{
    interleave_stage *x = (interleave_stage *)s;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    pthread_cond_broadcast(&x->runner_cv);
    pthread_cond_broadcast(&x->consumer_cv);
    for (int64_t k = 0; k < x->ncycle; k++)
        sl__stage_cancel(x->slots[k].inner);
    sl__stage_cancel(x->outer);
    pthread_mutex_unlock(&x->mu);
}

static void interleave_close(sl__stage *s)
{
    interleave_stage *x = (interleave_stage *)s;
    if (x->started) {
        interleave_cancel(s);
        for (int t = 0; t < x->started; t++)
            pthread_join(x->runners[t], NULL);
    }
    for (int64_t k = 0; x->slots && k < x->ncycle; k++) {
        slot *sl = &x->slots[k];
        close_slot(x, sl);
        for (int i = 0; sl->snaps && i < x->ring_cap; i++)
            sl__state_writer_free(&sl->snaps[i]);
        sl_free(sl->snaps);
        sl_free(sl->ring);
        sl__state_writer_free(&sl->outer_snap);
        sl__state_writer_free(&sl->last_snap);
    }
    sl__stage_close(x->outer);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->consumer_cv);
    pthread_cond_destroy(&x->runner_cv);
    sl_free(x->runners);
    sl_free(x->slots);
    sl_free(x);
}

/* ---- checkpoints -------------------------------------------------------------------------- */

static int interleave_save(sl__stage *s, sl__state_writer *w)
{
    interleave_stage *x = (interleave_stage *)s;
    if (ip(s)->unordered)
        return sl__stage_fail(s, SL_ERR_NOT_CHECKPOINTABLE,
                              "its output order depends on timing (ordered=false)");
    if (!x->outer_snapshots)
        return sl__stage_save(x->outer, w); /* names the outer stage that cannot */
    sl__state_put(w, (uint64_t)x->ncycle);
    sl__state_put(w, (uint64_t)x->cycle);
    sl__state_put(w, (uint64_t)x->block);
    sl__state_put(w, (uint64_t)x->outer_ended);
    sl__state_put(w, x->outer_count);
    for (int64_t k = 0; k < x->ncycle; k++) {
        slot *sl = &x->slots[k];
        sl__state_put(w, (uint64_t)sl->open);
        if (!sl->open)
            continue;
        sl__state_put(w, sl->outer_index);
        sl__state_put_bytes(w, sl->outer_snap.buf, sl->outer_snap.len);
        if (!x->nrunners) {
            SL_TRY(sl__stage_save(sl->inner, w));
        } else if (!sl->snapshots) {
            /* The runner is inside the stream: its stages cannot be asked, only named. */
            return sl__stage_fail(s, SL_ERR_NOT_CHECKPOINTABLE,
                                  "the inner pipeline of outer element %llu (%s)",
                                  (unsigned long long)sl->outer_index, sl->inner_ds->text);
        } else {
            sl__state_put_bytes(w, sl->last_snap.buf, sl->last_snap.len);
        }
    }
    return sl__stage_save(x->outer, w);
}

/* Reopens slot k as saved: the outer input at its earlier state gives the element again, and
 * the inner stream opens at its own state. */
static int restore_slot(interleave_stage *x, slot *sl, sl__state_reader *st)
{
    const sl_dataset *outer_ds = x->base.ds->inputs[0];
    const uint64_t index = sl__state_get(st);
    const size_t at = st->pos;
    sl__stage *then = NULL;
    SL_TRY(sl__stage_open(outer_ds, x->base.ctx, x->base.epoch, st, &then));
    sl__state_writer_reset(&sl->outer_snap);
    sl__state_put_bytes(&sl->outer_snap, st->buf + at, st->pos - at);
    sl_element e;
    memset(&e, 0, sizeof e);
    int rc = sl->outer_snap.err ? sl->outer_snap.err : sl__stage_next(then, &e);
    sl__stage_close(then);
    if (rc == SL_EOF)
        rc = sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: outer element %llu is gone",
                            (unsigned long long)index);
    sl_dataset *ds = NULL;
    if (rc == 0)
        rc = build_inner(x, &e, index, 0, &ds);
    sl_element_release(&e);
    return rc ? rc : install(x, sl, ds, index, st);
}

static int restore(interleave_stage *x, sl__state_reader *st)
{
    const uint64_t ncycle = sl__state_get(st), cycle = sl__state_get(st), block = sl__state_get(st),
                   ended = sl__state_get(st);
    x->outer_count = sl__state_get(st);
    if (st->err || ncycle != (uint64_t)x->ncycle || cycle >= ncycle ||
        block >= (uint64_t)x->block_length || ended > 1)
        return sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: slot %llu, block %llu",
                              (unsigned long long)cycle, (unsigned long long)block);
    x->cycle = (int64_t)cycle;
    x->block = (int64_t)block;
    x->outer_ended = (int)ended;
    for (int64_t k = 0; k < x->ncycle; k++) {
        const uint64_t open = sl__state_get(st);
        if (st->err || open > 1)
            return SL_ERR_CORRUPT;
        if (open)
            SL_TRY(restore_slot(x, &x->slots[k], st));
    }
    return 0;
}

int sl__interleave_set_parallel(sl__stage *s, int parallel)
{
    if (s->ops->next != interleave_next || parallel < 1)
        return SL_ERR_INVAL;
    interleave_stage *x = (interleave_stage *)s;
    if (!x->nrunners)
        return SL_ERR_INVAL; /* opened sequential: no runner threads */
    pthread_mutex_lock(&x->mu);
    x->active = SL_MIN(parallel, x->nrunners);
    if (x->ns)
        atomic_store_explicit(&x->ns->parallel, x->active, memory_order_relaxed);
    pthread_cond_broadcast(&x->runner_cv);
    pthread_mutex_unlock(&x->mu);
    return 0;
}

static const sl__stage_ops interleave_stage_ops = {interleave_next, interleave_cancel,
                                                   interleave_close, NULL, interleave_save};

static int interleave_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                           sl__stage **out)
{
    const interleave_params *p = ds->params;
    interleave_stage *x = sl_calloc(1, sizeof *x);
    if (!x)
        return SL_ERR_NOMEM;
    x->base = (sl__stage){&interleave_stage_ops, ctx, ds, epoch};
    x->ncycle = p->cycle_length;
    x->block_length = p->block_length;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->consumer_cv, NULL);
    pthread_cond_init(&x->runner_cv, NULL);
    const int64_t want = p->parallel == SL_PARALLEL_AUTO ? ctx->threads : p->parallel;
    x->nrunners = want > 1 || p->unordered ? (int)SL_MIN(SL_MAX(want, 1), x->ncycle) : 0;
    x->active = p->parallel == SL_PARALLEL_AUTO ? SL_MIN(1, x->nrunners) : x->nrunners;
    if ((x->ns = sl__ctx_node_stats(ctx, ds)) != NULL)
        atomic_store_explicit(&x->ns->parallel, x->active, memory_order_relaxed);
    /* A block's worth ahead per slot (at least two, so a runner works while one is taken),
     * bounded so a long block_length does not hold a file's worth of elements. */
    x->ring_cap = (int)SL_MIN(SL_MAX(x->block_length, 2), MAX_RING);
    x->outer_snapshots = sl__dataset_checkpointable(ds->inputs[0]) && !p->unordered;
    int rc = 0;
    if (!(x->slots = sl_calloc((size_t)x->ncycle, sizeof *x->slots)) ||
        (x->nrunners && !(x->runners = sl_calloc((size_t)x->nrunners, sizeof *x->runners))))
        rc = SL_ERR_NOMEM;
    for (int64_t k = 0; rc == 0 && x->nrunners && k < x->ncycle; k++) {
        slot *sl = &x->slots[k];
        if (!(sl->ring = sl_calloc((size_t)x->ring_cap, sizeof *sl->ring)) ||
            !(sl->snaps = sl_calloc((size_t)x->ring_cap, sizeof *sl->snaps)))
            rc = SL_ERR_NOMEM;
    }
    if (rc == 0 && st)
        rc = restore(x, st);
    /* The outer input is opened last: its state follows the slots' in the checkpoint. */
    if (rc == 0)
        rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &x->outer);
    if (rc) {
        interleave_close(&x->base);
        return rc;
    }
    *out = &x->base;
    return 0;
}

static int64_t interleave_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]) == 0 ? 0 : SL_CARDINALITY_UNKNOWN;
}

static void interleave_free(void *params)
{
    interleave_params *p = params;
    if (p && p->free_user)
        p->free_user(p->user);
    sl_free(p);
}

static int interleave_checkpointable(const sl_dataset *ds)
{
    return !((const interleave_params *)ds->params)->unordered;
}

static const sl__dataset_ops interleave_ops = {"interleave",
                                               interleave_open,
                                               interleave_cardinality,
                                               interleave_free,
                                               NULL,
                                               0,
                                               interleave_checkpointable};

int sl_dataset_interleave(sl_dataset **out, sl_dataset *in, sl_interleave_fn make_inner, void *user,
                          const char *name, const sl_interleave_options *opts)
{
    *out = NULL;
    const sl_interleave_options o = opts ? *opts : (sl_interleave_options){0};
    const int64_t cycle = o.cycle_length ? o.cycle_length : 1;
    const int64_t block = o.block_length ? o.block_length : 1;
    const int parallel = o.parallel ? o.parallel : 1;
    if (!in || !make_inner || cycle < 1 || cycle > MAX_CYCLE || block < 1 ||
        (parallel < 1 && parallel != SL_PARALLEL_AUTO)) {
        if (o.free_user)
            o.free_user(user);
        return SL_ERR_INVAL;
    }
    interleave_params *p = sl_malloc(sizeof *p);
    if (!p) {
        if (o.free_user)
            o.free_user(user);
        return SL_ERR_NOMEM;
    }
    *p = (interleave_params){make_inner, user, o.free_user, cycle, block, parallel, o.unordered};
    char extra[96] = "";
    int n = 0;
    if (parallel == SL_PARALLEL_AUTO)
        n += snprintf(extra, sizeof extra, ", parallel=auto");
    else if (parallel > 1)
        n += snprintf(extra, sizeof extra, ", parallel=%d", parallel);
    if (o.unordered)
        snprintf(extra + n, sizeof extra - (size_t)n, ", ordered=false");
    return sl__dataset_create(out, &interleave_ops, &in, 1, p,
                              "interleave(%s, cycle_length=%lld, block_length=%lld%s)",
                              name ? name : "fn", (long long)cycle, (long long)block, extra);
}
