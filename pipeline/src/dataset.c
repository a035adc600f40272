/*
 * Dataset nodes: creation, reference counting, canonical text and cardinality. A node's text
 * is its own stage ("batch(4)"); the pipeline's text joins the chain with " | ", inputs first
 * (a node with two inputs, like zip, prints its second input inside its own text).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/rng.h"

int sl__dataset_create(sl_dataset **out, const sl__dataset_ops *ops, sl_dataset *const *inputs,
                       int ninputs, void *params, const char *fmt, ...)
{
    *out = NULL;
    sl_dataset *ds = ninputs <= SL__MAX_INPUTS ? sl_calloc(1, sizeof *ds) : NULL;
    if (!ds) {
        if (ops->free_params)
            ops->free_params(params);
        else
            sl_free(params);
        return ninputs <= SL__MAX_INPUTS ? SL_ERR_NOMEM : SL_ERR_INVAL;
    }
    atomic_init(&ds->refs, 1);
    ds->ops = ops;
    ds->params = params;
    for (int i = 0; i < ninputs; i++) {
        ds->inputs[i] = inputs[i];
        sl_dataset_retain(inputs[i]);
    }
    ds->ninputs = ninputs;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ds->text, sizeof ds->text, fmt, ap);
    va_end(ap);
    *out = ds;
    return 0;
}

void sl_dataset_retain(sl_dataset *ds)
{
    if (ds)
        atomic_fetch_add_explicit(&ds->refs, 1, memory_order_relaxed);
}

void sl_dataset_release(sl_dataset *ds)
{
    if (!ds || atomic_fetch_sub_explicit(&ds->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < ds->ninputs; i++)
        sl_dataset_release(ds->inputs[i]);
    if (ds->ops->free_params)
        ds->ops->free_params(ds->params);
    else
        sl_free(ds->params);
    sl_free(ds);
}

int64_t sl_dataset_cardinality(const sl_dataset *ds)
{
    return ds->ops->cardinality ? ds->ops->cardinality(ds) : SL_CARDINALITY_UNKNOWN;
}

int sl_dataset_print(const sl_dataset *ds, char *buf, size_t cap)
{
    int n = 0;
    if (ds->ninputs > 0 && !ds->ops->starts_chain) {
        n = sl_dataset_print(ds->inputs[0], buf, cap);
        const size_t at = (size_t)n < cap ? (size_t)n : cap;
        n += snprintf(buf + at, cap - at, " | ");
    }
    const size_t at = (size_t)n < cap ? (size_t)n : cap;
    return n + snprintf(buf + at, cap - at, "%s", ds->text);
}

/* Built with -DSL_COUNTERS=0 (CMake: -DSL_COUNTERS=OFF) no stage gets counters: every counting
 * path of the engine is behind `stats != NULL`, so that build measures what the counters cost
 * (bench/README.md). Profiles then read zeros and AUTOTUNE has nothing to go on. */
#ifndef SL_COUNTERS
#define SL_COUNTERS 1
#endif

/* The iterator's record of node ds, or NULL when ds is not one of its nodes. */
static sl__node_stats *node_of(sl__ctx *ctx, const sl_dataset *ds)
{
    for (int i = 0; i < ctx->nstats; i++)
        if (ctx->stats[i].ds == ds)
            return &ctx->stats[i];
    return NULL;
}

int sl__stage_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                   sl__stage **out)
{
    *out = NULL;
    if (sl__ctx_cancelled(ctx))
        return SL_ERR_CANCELLED;
    if (st)
        SL_TRY(sl__state_check_marker(ds, st));
    const int rc = ds->ops->open(ds, ctx, epoch, st, out);
    if (rc == 0 && st && st->err) { /* the state ran short: a blob from another pipeline */
        sl__stage_close(*out);
        *out = NULL;
        return st->err;
    }
    sl__node_stats *ns = rc == 0 ? node_of(ctx, ds) : NULL;
    if (ns) {
        if (SL_COUNTERS)
            (*out)->stats = ns;
        pthread_mutex_lock(&ctx->mu);
        ns->live = *out;
        pthread_mutex_unlock(&ctx->mu);
    }
    return rc;
}

int sl__stage_open_at(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, uint64_t pos,
                      sl__stage **out)
{
    SL_TRY(sl__stage_open(ds, ctx, epoch, NULL, out));
    int rc = 0;
    if (pos > 0 && sl__dataset_random_access(ds)) {
        rc = sl__stage_seek(*out, pos);
    } else {
        for (uint64_t i = 0; i < pos && rc == 0; i++) {
            sl_element e;
            memset(&e, 0, sizeof e);
            rc = sl__stage_next(*out, &e);
            sl_element_release(&e);
        }
        if (rc == SL_EOF)
            rc = SL_ERR_CORRUPT; /* a checkpoint's position past the input's end */
    }
    if (rc) {
        sl__stage_close(*out);
        *out = NULL;
    }
    return rc;
}

/* The sampled call: its time (inputs included) and its element's bytes, which on the other
 * SL__SAMPLE_EVERY - 1 calls are not looked at. */
int sl__stage_next_timed(sl__stage *s, sl_element *out)
{
    sl__node_stats *st = s->stats;
    const uint64_t t0 = sl_clock_ns();
    const int rc = s->ops->next(s, out);
    const uint64_t t1 = sl_clock_ns();
    if (rc == 0) {
        uint64_t bytes = 0;
        for (int k = 0; k < out->count; k++)
            bytes += sl_tensor_nbytes(&out->tensors[k]);
        atomic_store_explicit(&st->calls,
                              atomic_load_explicit(&st->calls, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        atomic_store_explicit(&st->timed,
                              atomic_load_explicit(&st->timed, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        atomic_store_explicit(&st->timed_ns,
                              atomic_load_explicit(&st->timed_ns, memory_order_relaxed) + (t1 - t0),
                              memory_order_relaxed);
        atomic_store_explicit(&st->timed_bytes,
                              atomic_load_explicit(&st->timed_bytes, memory_order_relaxed) + bytes,
                              memory_order_relaxed);
        if (sl__tracing(s->ctx))
            sl__trace_span(s->ctx, s->ds->text, "next", t0, t1, 1);
    }
    return rc;
}

void sl__producer_start(sl__producer_clock *pc, const sl__node_stats *ns)
{
    *pc = (sl__producer_clock){ns ? sl_clock_ns() : 0, 0, 0};
}

void sl__producer_report(sl__producer_clock *pc, sl__node_stats *ns)
{
    const uint64_t now = sl_clock_ns(), wall = now - pc->last;
    sl__stat_add(&ns->producer_ns, wall > pc->blocked ? wall - pc->blocked : 0);
    sl__stat_add(&ns->producer_elements, pc->produced);
    *pc = (sl__producer_clock){now, 0, 0};
}

void sl__stage_note_io(sl__stage *s, const char *backend)
{
    if (s->stats)
        atomic_store_explicit(&s->stats->io, backend, memory_order_relaxed);
}

sl__node_stats *sl__ctx_node_stats(sl__ctx *ctx, const sl_dataset *ds)
{
    return SL_COUNTERS ? node_of(ctx, ds) : NULL;
}

void sl__stage_close(sl__stage *s)
{
    if (!s)
        return;
    /* Without counters the node still records its live instance (the tuning knobs use it). */
    sl__node_stats *ns = SL_COUNTERS ? s->stats : s->ctx ? node_of(s->ctx, s->ds) : NULL;
    if (ns) {
        pthread_mutex_lock(&s->ctx->mu);
        if (ns->live == s)
            ns->live = NULL;
        pthread_mutex_unlock(&s->ctx->mu);
    }
    s->ops->close(s);
}

int sl__stage_get_batch(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out)
{
    if (s->ops->get_batch)
        return s->ops->get_batch(s, idx, n, out);
    for (size_t j = 0; j < n; j++) {
        const int rc = s->ops->get(s, idx[j], &out[j]);
        if (rc) { /* all or nothing */
            for (size_t k = 0; k < j; k++)
                sl_element_release(&out[k]);
            return rc;
        }
    }
    return 0;
}

sl__stage *sl__ctx_live_stage(sl__ctx *ctx, const char *kind)
{
    for (int i = 0; i < ctx->nstats; i++)
        if (strcmp(ctx->stats[i].ds->ops->kind, kind) == 0 && ctx->stats[i].live)
            return ctx->stats[i].live;
    return NULL;
}

uint64_t sl__stage_seed(const sl__ctx *ctx, uint64_t own, const char *salt)
{
    if (own)
        return own;
    uint64_t h = ctx->seed;
    for (const char *p = salt; *p; p++)
        h = sl_mix64(h ^ (uint8_t)*p);
    return h;
}
