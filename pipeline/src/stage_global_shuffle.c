/*
 * global_shuffle(seed): a seeded permutation of a random-access input's whole index range.
 * Output p of epoch e is input element sl_permute(p, n, seed_e); seed_e is new each epoch
 * unless reshuffle_each_iteration is false. Because output p is computed on its own, the stage
 * also supports `get` (one element through the input's `get`), and its position is one
 * integer: the resumable state the checkpointing issue asks for.
 *
 * `next` hands out a window of the next W permuted elements fetched with one
 * sl__stage_get_batch, so a file source below has W random reads in flight together
 * (pipeline/IO.md) instead of one at a time. Invariant: win[win_at, win_n) are outputs
 * pos .. pos + (win_n - win_at) - 1, owned by the stage until handed out; a seek or restore
 * releases them and the next `next` refills from the new position, so the state stays the
 * position alone. Memory: W elements, reported to the memory budget.
 *
 * Runs on the calling thread; a parallel map above it keeps work in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

/* Elements fetched per batch. 32 reads in flight is well past where bench_io's cold-cache gain
 * of io_uring over pread levels off (depth 8), while W elements of a typical 64 KiB record
 * stay a few MiB. SLUICE_SHUFFLE_WINDOW (bench only: bench_shuffle compares 1 with 32)
 * overrides it. */
enum { WINDOW = 32, WINDOW_MAX = 4096 };

typedef struct gshuffle_params {
    uint64_t seed;
    int reshuffle;
} gshuffle_params;

typedef struct gshuffle_stage {
    sl__stage base;
    sl__stage *input;
    uint64_t n;      /* input cardinality */
    uint64_t seed;   /* this epoch's permutation key */
    uint64_t pos;    /* elements handed out */
    sl_element *win; /* (window) fetched ahead, see the top of the file */
    size_t window, win_at, win_n;
    uint64_t *idx; /* (window) input indices of a batch */
} gshuffle_stage;

static size_t window_size(void)
{
    const char *v = getenv("SLUICE_SHUFFLE_WINDOW");
    const long w = v && *v ? strtol(v, NULL, 10) : 0;
    return w >= 1 && w <= WINDOW_MAX ? (size_t)w : WINDOW;
}

/* Releases the elements fetched and not handed out. */
static void window_drop(gshuffle_stage *g)
{
    for (size_t k = g->win_at; k < g->win_n; k++)
        sl_element_release(&g->win[k]);
    g->win_at = g->win_n = 0;
}

static int gshuffle_get(sl__stage *s, uint64_t p, sl_element *out)
{
    gshuffle_stage *g = (gshuffle_stage *)s;
    if (p >= g->n)
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu", (unsigned long long)p);
    return sl__stage_get(g->input, sl_permute(p, g->n, g->seed), out);
}

static int gshuffle_next(sl__stage *s, sl_element *out)
{
    gshuffle_stage *g = (gshuffle_stage *)s;
    if (g->pos >= g->n)
        return SL_EOF;
    if (g->win_at == g->win_n) {
        const size_t m = (size_t)SL_MIN((uint64_t)g->window, g->n - g->pos);
        for (size_t k = 0; k < m; k++)
            g->idx[k] = sl_permute(g->pos + k, g->n, g->seed);
        memset(g->win, 0, m * sizeof *g->win);
        g->win_at = g->win_n = 0;
        SL_TRY(sl__stage_get_batch(g->input, g->idx, m, g->win)); /* all or nothing */
        g->win_n = m;
    }
    *out = g->win[g->win_at];
    memset(&g->win[g->win_at++], 0, sizeof *g->win);
    g->pos++;
    return 0;
}

static void gshuffle_cancel(sl__stage *s)
{
    sl__stage_cancel(((gshuffle_stage *)s)->input);
}

static void gshuffle_close(sl__stage *s)
{
    gshuffle_stage *g = (gshuffle_stage *)s;
    if (g->win)
        window_drop(g);
    sl__stage_close(g->input);
    sl_free(g->win);
    sl_free(g->idx);
    sl_free(s);
}

/* The state is the position alone: the input is only ever read by `get`, and the window is
 * refetched from the position on restore. */
static int gshuffle_save(sl__stage *s, sl__state_writer *w)
{
    sl__state_put(w, ((gshuffle_stage *)s)->pos);
    return 0;
}

static int gshuffle_seek(sl__stage *s, uint64_t pos)
{
    gshuffle_stage *g = (gshuffle_stage *)s;
    if (pos > g->n)
        return sl__stage_fail(s, SL_ERR_RANGE, "seeking to element %llu of %llu",
                              (unsigned long long)pos, (unsigned long long)g->n);
    window_drop(g);
    g->pos = pos;
    return 0;
}

static const sl__stage_ops gshuffle_stage_ops = {gshuffle_next, gshuffle_cancel, gshuffle_close,
                                                 gshuffle_get,  gshuffle_save,   gshuffle_seek};

static int gshuffle_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                         sl__stage **out)
{
    const gshuffle_params *p = ds->params;
    gshuffle_stage *g = sl_calloc(1, sizeof *g);
    if (!g)
        return SL_ERR_NOMEM;
    g->base = (sl__stage){&gshuffle_stage_ops, ctx, ds, epoch};
    g->n = (uint64_t)sl_dataset_cardinality(ds->inputs[0]);
    const uint64_t base = sl__stage_seed(ctx, p->seed, "global_shuffle");
    g->seed = p->reshuffle ? sl_mix64(base ^ sl_mix64(epoch)) : base;
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, NULL, &g->input);
    if (rc == 0) {
        /* An input without a batch of its own would only loop `get`: one element at a time
         * keeps the stage's memory O(1) there (a range of 2^40 elements). */
        g->window = g->input->ops->get_batch ? window_size() : 1;
        g->win = sl_calloc(g->window, sizeof *g->win);
        g->idx = sl_calloc(g->window, sizeof *g->idx);
        if (!g->win || !g->idx)
            rc = SL_ERR_NOMEM;
    }
    if (rc == 0 && st)
        rc = gshuffle_seek(&g->base, sl__state_get(st));
    if (rc) {
        gshuffle_close(&g->base);
        return rc;
    }
    *out = &g->base;
    return 0;
}

static int64_t gshuffle_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int gshuffle_random_access(const sl_dataset *ds)
{
    return 1;
}

/* Elements like the input's; the window holds up to W of them (fewer over an input without a
 * batch op, which open only knows). */
static int64_t gshuffle_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = in[0];
    return in[0] > 0 ? sl__memory_scaled((int64_t)window_size(), in[0]) : 0;
}

static const sl__dataset_ops gshuffle_ops = {
    "global_shuffle", gshuffle_open, gshuffle_cardinality, NULL, gshuffle_random_access, 0, NULL,
    gshuffle_memory};

int sl_dataset_global_shuffle(sl_dataset **out, sl_dataset *in, uint64_t seed,
                              int reshuffle_each_iteration)
{
    *out = NULL;
    if (!in)
        return SL_ERR_INVAL;
    if (!sl__dataset_random_access(in) || sl_dataset_cardinality(in) < 0)
        return SL_ERR_UNSUPPORTED;
    gshuffle_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (gshuffle_params){seed, reshuffle_each_iteration != 0};
    char extra[80] = "";
    int n = 0;
    if (seed)
        n += snprintf(extra, sizeof extra, "seed=%llu", (unsigned long long)seed);
    if (!reshuffle_each_iteration)
        snprintf(extra + n, sizeof extra - (size_t)n, "%sreshuffle_each_iteration=false",
                 n ? ", " : "");
    if (!extra[0])
        return sl__dataset_create(out, &gshuffle_ops, &in, 1, p, "global_shuffle");
    return sl__dataset_create(out, &gshuffle_ops, &in, 1, p, "global_shuffle(%s)", extra);
}
