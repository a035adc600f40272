/*
 * Iterators: the context shared by one traversal's stages (worker pool, seed, error policy,
 * first error), open/next/close, checkpoints (save, restore), and stage error reporting. An
 * iterator whose pipeline has `auto` knobs also runs the AUTOTUNE thread (autotune.c), started
 * once the stages are open and joined first thing at close.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/profile.h"

struct sl_iter {
    sl__ctx ctx;
    sl_dataset *root; /* one reference */
    sl__stage *top;
    int done;             /* SL_EOF or an error code once the stream ended; sticky */
    sl__autotuner *tuner; /* NULL unless the pipeline has an `auto` knob */
};

extern _Thread_local char *sl__quiet_refusal;
extern _Thread_local size_t sl__quiet_refusal_cap;

static int fail_msg(sl__ctx *ctx, int code, const char *text)
{
    if (sl__quiet_refusal && code == SL_ERR_NOT_CHECKPOINTABLE) {
        snprintf(sl__quiet_refusal, sl__quiet_refusal_cap, "%s", text);
        return code;
    }
    pthread_mutex_lock(&ctx->mu);
    if (!ctx->err_code) {
        ctx->err_code = code;
        snprintf(ctx->err.text, sizeof ctx->err.text, "%s", text);
    }
    pthread_mutex_unlock(&ctx->mu);
    return code;
}

int sl__stage_fail_raw(sl__stage *s, int code, const char *text)
{
    return fail_msg(s->ctx, code, text);
}

int sl__stage_fail(sl__stage *s, int code, const char *fmt, ...)
{
    char what[SL_ERRMSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char text[SL_ERRMSG_CAP];
    snprintf(text, sizeof text, "%s: %s%s%s", s->ds->text, what, what[0] ? ": " : "",
             sl_strerror(code));
    return fail_msg(s->ctx, code, text);
}

/* One counters entry per distinct node, top first (depth-first, inputs in order). */
static int count_nodes(const sl_dataset *ds)
{
    int n = 1;
    for (int i = 0; i < ds->ninputs; i++)
        n += count_nodes(ds->inputs[i]);
    return n;
}

/* parent: the consuming node's entry (-1 for the top); chain: on the text's main chain, which
 * continues through input 0 of nodes that do not start a chain of their own. */
static void list_nodes(sl__ctx *ctx, const sl_dataset *ds, int depth, int parent, int chain)
{
    for (int i = 0; i < ctx->nstats; i++)
        if (ctx->stats[i].ds == ds)
            return;
    const int me = ctx->nstats++;
    ctx->stats[me] = (sl__node_stats){.ds = ds,
                                      .depth = depth,
                                      .parent = parent,
                                      .chain = chain,
                                      .reserved_bytes = sl__memory_reserved(ds, ctx->threads)};
    for (int i = 0; i < ds->ninputs; i++)
        list_nodes(ctx, ds->inputs[i], depth + 1, me, chain && i == 0 && !ds->ops->starts_chain);
}

static int iter_open(sl_iter **out, sl_dataset *ds, const sl_iter_options *opts,
                     const uint8_t *blob, size_t len)
{
    *out = NULL;
    sl_iter *it = sl_calloc(1, sizeof *it);
    if (!it)
        return SL_ERR_NOMEM;
    const sl_iter_options defaults = {0};
    if (!opts)
        opts = &defaults;
    pthread_mutex_init(&it->ctx.mu, NULL);
    it->ctx.threads = opts->threads > 0 ? opts->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (it->ctx.threads < 1)
        it->ctx.threads = 1;
    it->ctx.seed = opts->seed;
    it->ctx.on_error = opts->on_error;
    it->root = ds;
    sl_dataset_retain(ds);
    *out = it;
    if (!(it->ctx.stats = sl_calloc((size_t)count_nodes(ds), sizeof *it->ctx.stats)))
        return sl__errmsg_set(&it->ctx.err, SL_ERR_NOMEM, "allocating stage counters");
    list_nodes(&it->ctx, ds, 0, -1, 1);
    /* The cost of one clock read, which every measured interval carries: the least of a few
     * back-to-back pairs. */
    it->ctx.clock_ns = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        const uint64_t a = sl_clock_ns(), b = sl_clock_ns();
        it->ctx.clock_ns = SL_MIN(it->ctx.clock_ns, b - a);
    }
    it->ctx.opened_ns = sl_clock_ns();
    int rc = sl__memory_check(ds, it->ctx.threads, opts->memory_bytes, &it->ctx.err);
    if (rc) {
        it->ctx.err_code = rc;
        return rc;
    }
    rc = sl_thread_pool_open(&it->ctx.pool, it->ctx.threads, "sl-work");
    if (rc)
        return sl__errmsg_set(&it->ctx.err, rc, "starting %d worker threads", it->ctx.threads);
    sl__state_reader st;
    if (blob && (rc = sl__checkpoint_decode(ds, it->ctx.seed, blob, len, &st, &it->ctx.err)) != 0) {
        it->ctx.err_code = rc;
        return rc;
    }
    rc = sl__stage_open(ds, &it->ctx, 0, blob ? &st : NULL, &it->top);
    if (rc == 0 && blob && st.pos != st.len) {
        rc = SL_ERR_CORRUPT;
        sl__stage_close(it->top);
        it->top = NULL;
    }
    if (rc) {
        pthread_mutex_lock(&it->ctx.mu);
        if (!it->ctx.err_code) {
            it->ctx.err_code = rc;
            char text[SL__TEXT_CAP * 2];
            sl_dataset_print(ds, text, sizeof text);
            sl__errmsg_set(&it->ctx.err, rc, "%s %s", blob ? "restoring" : "opening", text);
        }
        pthread_mutex_unlock(&it->ctx.mu);
    }
    if (rc == 0 && (rc = sl__autotune_start(it, opts->memory_bytes, &it->tuner)) != 0) {
        it->ctx.err_code = rc;
        sl__errmsg_set(&it->ctx.err, rc, "starting the autotune thread");
    }
    return rc;
}

int sl_iter_open(sl_iter **out, sl_dataset *ds, const sl_iter_options *opts)
{
    return iter_open(out, ds, opts, NULL, 0);
}

int sl_iter_restore(sl_iter **out, sl_dataset *ds, const sl_iter_options *opts, const uint8_t *blob,
                    size_t len)
{
    if (!blob) {
        *out = NULL;
        return SL_ERR_INVAL;
    }
    return iter_open(out, ds, opts, blob, len);
}

int sl_iter_save(sl_iter *it, uint8_t **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    if (!it->top || (it->done && it->done != SL_EOF))
        return it->done ? it->done : SL_ERR_INVAL;
    pthread_mutex_lock(&it->ctx.mu);
    const int had_error = it->ctx.err_code;
    pthread_mutex_unlock(&it->ctx.mu);
    const int rc = sl__checkpoint_encode(it->top, it->root, it->ctx.seed, blob, len);
    if (rc && !had_error) {
        /* The reason stays readable in sl_iter_errmsg, but a save that failed is not the
         * stream's error: the first real one must still win. */
        pthread_mutex_lock(&it->ctx.mu);
        it->ctx.err_code = 0;
        pthread_mutex_unlock(&it->ctx.mu);
    }
    return rc;
}

int sl_iter_next(sl_iter *it, sl_element *e)
{
    memset(e, 0, sizeof *e);
    if (it->done)
        return it->done;
    if (!it->top)
        return it->done = it->ctx.err_code ? it->ctx.err_code : SL_ERR_INVAL;
    const int rc = sl__stage_next(it->top, e);
    if (rc != 0) {
        sl_element_release(e);
        it->done = rc;
    }
    return rc;
}

const char *sl_iter_errmsg(const sl_iter *it)
{
    return it->ctx.err.text;
}

uint64_t sl_iter_skipped(const sl_iter *it)
{
    return atomic_load(&it->ctx.skipped);
}

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

int sl_iter_stats(const sl_iter *it, sl_stage_stats *out, int cap)
{
    for (int i = 0; i < it->ctx.nstats && i < cap; i++) {
        const sl__node_stats *st = &it->ctx.stats[i];
        const uint64_t timed = load(&st->timed), calls = load(&st->calls);
        out[i] = (sl_stage_stats){
            .stage = st->ds->text,
            .depth = st->depth,
            .elements = calls,
            .ns_per_element = timed ? (double)load(&st->timed_ns) / (double)timed : 0,
            .bytes =
                timed ? (uint64_t)((double)load(&st->timed_bytes) * (double)calls / (double)timed)
                      : 0,
            .wait_ns = load(&st->wait_ns),
            .blocked_ns = load(&st->blocked_ns),
            .busy_ns = load(&st->busy_ns),
        };
    }
    return it->ctx.nstats;
}

void sl_iter_profile(const sl_iter *it, sl_profile_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->elapsed_ns = sl_clock_ns() - it->ctx.opened_ns;
    out->threads = it->ctx.threads;
    out->clock_ns = it->ctx.clock_ns;
    out->truncated = it->ctx.nstats > SL_PROFILE_MAX_STAGES;
    out->nstages = SL_MIN(it->ctx.nstats, SL_PROFILE_MAX_STAGES);
    for (int i = 0; i < out->nstages; i++) {
        const sl__node_stats *st = &it->ctx.stats[i];
        const int parallel = atomic_load_explicit(&st->parallel, memory_order_relaxed);
        out->stages[i] = (sl_profile_stage){
            .stage = st->ds->text,
            .kind = st->ds->ops->kind,
            .depth = st->depth,
            .parent = st->parent < SL_PROFILE_MAX_STAGES ? st->parent : -1,
            .chain = st->chain,
            .work_ahead = atomic_load_explicit(&st->work_ahead, memory_order_relaxed),
            .parallel = parallel,
            .slots = atomic_load_explicit(&st->slots, memory_order_relaxed),
            .elements = load(&st->calls),
            .timed = load(&st->timed),
            .timed_ns = load(&st->timed_ns),
            .timed_bytes = load(&st->timed_bytes),
            .busy_ns = load(&st->busy_ns),
            .busy_elements = load(&st->busy_elements),
            .helped_ns = load(&st->helped_ns),
            .wait_ns = load(&st->wait_ns),
            .blocked_ns = load(&st->blocked_ns),
            .producer_ns = load(&st->producer_ns),
            .producer_elements = load(&st->producer_elements),
            .fill_sum = load(&st->fill_sum),
            .workers_sum = load(&st->workers_sum),
            .fill_samples = load(&st->fill_samples),
            .io = atomic_load_explicit(&st->io, memory_order_relaxed),
        };
        sl_profile_stage *g = &out->stages[i];
        if (g->work_ahead && g->timed > 0)
            g->memory_bytes =
                (uint64_t)g->slots * (g->timed_bytes / g->timed + (uint64_t)sizeof(sl_element));
        else
            g->memory_bytes = (uint64_t)st->reserved_bytes;
    }
}

int sl_iter_bottleneck(const sl_iter *it, char *buf, size_t cap)
{
    if (cap)
        buf[0] = 0;
    sl_profile_snapshot *snap = sl_malloc(sizeof *snap);
    sl_profile_analysis *an = sl_malloc(sizeof *an);
    int rc = snap && an ? 0 : SL_ERR_NOMEM;
    if (rc == 0) {
        sl_iter_profile(it, snap);
        rc = sl_profile_analyze(snap, 0, an);
    }
    if (rc == 0 && an->bottleneck >= 0 && an->bottleneck < snap->nstages &&
        snap->stages[an->bottleneck].stage)
        snprintf(buf, cap, "%s", snap->stages[an->bottleneck].stage);
    else if (rc == 0)
        rc = SL_ERR_INVAL;
    sl_free(snap);
    sl_free(an);
    return rc;
}

sl__ctx *sl__iter_ctx(sl_iter *it)
{
    return &it->ctx;
}

void sl_iter_close(sl_iter *it)
{
    if (!it)
        return;
    sl__autotune_stop(it->tuner); /* first: it reaches into the stages */
    atomic_store(&it->ctx.cancelled, 1);
    sl__stage_cancel(it->top);
    sl__stage_close(it->top);
    sl_thread_pool_close(it->ctx.pool);
    sl__ctx_free_caches(&it->ctx);
    sl__trace_free(&it->ctx);
    sl_free(it->ctx.stats);
    sl_dataset_release(it->root);
    pthread_mutex_destroy(&it->ctx.mu);
    sl_free(it);
}
