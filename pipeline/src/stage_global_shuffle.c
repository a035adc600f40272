/*
 * global_shuffle(seed): a seeded permutation of a random-access input's whole index range, in
 * O(1) memory. Output p of epoch e is input element sl_permute(p, n, seed_e), fetched with the
 * input's `get`; seed_e is new each epoch unless reshuffle_each_iteration is false. Because
 * output p is computed on its own, the stage also supports `get`, and its position is one
 * integer: the resumable state the checkpointing issue asks for.
 *
 * Runs on the calling thread; a parallel map above it keeps reads and work in flight.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct gshuffle_params {
    uint64_t seed;
    int reshuffle;
} gshuffle_params;

typedef struct gshuffle_stage {
    sl__stage base;
    sl__stage *input;
    uint64_t n;    /* input cardinality */
    uint64_t seed; /* this epoch's permutation key */
    uint64_t pos;
} gshuffle_stage;

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
    const int rc = gshuffle_get(s, g->pos, out);
    if (rc == 0)
        g->pos++;
    return rc;
}

static void gshuffle_cancel(sl__stage *s)
{
    sl__stage_cancel(((gshuffle_stage *)s)->input);
}

static void gshuffle_close(sl__stage *s)
{
    sl__stage_close(((gshuffle_stage *)s)->input);
    sl_free(s);
}

/* The state is the position alone: the input is only ever read by `get`. */
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

static const sl__dataset_ops gshuffle_ops = {"global_shuffle", gshuffle_open, gshuffle_cardinality,
                                             NULL, gshuffle_random_access};

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
