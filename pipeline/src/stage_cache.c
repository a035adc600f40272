/*
 * cache(): the first complete pass over the input is kept in memory (the elements share their
 * buffers: no copy), and every later epoch replays it without touching the input, like
 * tf.data's Dataset.cache(). A pass that stops early (take, an error, closing) leaves nothing
 * cached: the next epoch reads the input again. The store belongs to the iterator (it outlives
 * the stage that repeat() reopens each epoch); if the same node is being filled by another
 * stage instance at the time (a node used twice), the second simply reads its input.
 *
 * The input is always opened at the epoch of the pass that filled (or first tried to fill) the
 * store, so a pass read again after a failed fill, or after a restore, yields the order the
 * cached pass had even when the input reshuffles every epoch.
 *
 * Checkpoints: the contents are not saved (they can be large). A restore mid-replay reads the
 * input again from the saved position for the rest of that epoch (seeking, when the input has
 * random access); a later epoch fills the store anew. A restore mid-fill continues the input
 * from its state and leaves the store unfilled until the next epoch.
 *
 * Locking: ctx->mu guards the list of stores and each store's `filling`/`complete` flags; the
 * element array is written by the one filling stage and read only once `complete`.
 */
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

/* One cached element, sized to its tensors (an sl_element is 1.5 KB whatever it holds, and a
 * cache holds millions): the tensors share the element's buffers. */
typedef struct cached {
    int count;
    const char **names; /* (count), in the same allocation */
    sl_tensor tensors[];
} cached;

static cached *cached_new(const sl_element *e)
{
    const size_t n = (size_t)e->count;
    cached *c = sl_malloc(sizeof *c + n * (sizeof c->tensors[0] + sizeof c->names[0]));
    if (!c)
        return NULL;
    c->count = e->count;
    c->names = (const char **)(void *)(c->tensors + n);
    for (size_t k = 0; k < n; k++) {
        c->names[k] = e->names[k];
        c->tensors[k] = e->tensors[k];
        sl_buffer_retain(e->tensors[k].buffer);
    }
    return c;
}

static void cached_free(cached *c)
{
    for (int k = 0; k < c->count; k++)
        sl_tensor_release(&c->tensors[k]);
    sl_free(c);
}

static void cached_share(sl_element *out, const cached *c)
{
    for (int k = 0; k < c->count; k++) {
        out->names[k] = c->names[k];
        out->tensors[k] = c->tensors[k];
        sl_buffer_retain(c->tensors[k].buffer);
    }
    out->count = c->count;
}

struct sl__cache_store {
    struct sl__cache_store *next;
    const sl_dataset *ds;
    cached **items;
    size_t n, cap;
    int filling;         /* a stage is writing it now */
    int complete;        /* a full pass was stored */
    uint64_t fill_epoch; /* the epoch the input is opened at */
};

typedef struct cache_stage {
    sl__stage base;
    sl__stage *input; /* NULL while replaying */
    sl__cache_store *store;
    int writing; /* this stage fills store */
    size_t pos;  /* elements handed out this epoch */
} cache_stage;

static void store_clear(sl__cache_store *c)
{
    for (size_t i = 0; i < c->n; i++)
        cached_free(c->items[i]);
    c->n = 0;
}

void sl__ctx_free_caches(sl__ctx *ctx)
{
    for (sl__cache_store *c = ctx->caches, *next; c; c = next) {
        next = c->next;
        store_clear(c);
        sl_free(c->items);
        sl_free(c);
    }
    ctx->caches = NULL;
}

/* The store of node ds, created with fill epoch `epoch` if there is none; ctx->mu held. */
static sl__cache_store *store_of(sl__ctx *ctx, const sl_dataset *ds, uint64_t epoch)
{
    sl__cache_store *store = ctx->caches;
    while (store && store->ds != ds)
        store = store->next;
    if (!store && (store = sl_calloc(1, sizeof *store)) != NULL) {
        store->ds = ds;
        store->fill_epoch = epoch;
        store->next = ctx->caches;
        ctx->caches = store;
    }
    return store;
}

int sl__ctx_cache_epoch(sl__ctx *ctx, const sl_dataset *ds, uint64_t epoch, int set,
                        uint64_t *fill_epoch)
{
    pthread_mutex_lock(&ctx->mu);
    sl__cache_store *store = store_of(ctx, ds, epoch);
    if (store && set)
        store->fill_epoch = epoch;
    if (store)
        *fill_epoch = store->fill_epoch;
    pthread_mutex_unlock(&ctx->mu);
    return store ? 0 : SL_ERR_NOMEM;
}

static int cache_next(sl__stage *s, sl_element *out)
{
    cache_stage *c = (cache_stage *)s;
    if (!c->input) { /* replay */
        if (c->pos >= c->store->n)
            return SL_EOF;
        cached_share(out, c->store->items[c->pos++]);
        return 0;
    }
    const int rc = sl__stage_next(c->input, out);
    if (rc == 0)
        c->pos++;
    if (!c->writing)
        return rc;
    sl__cache_store *st = c->store;
    if (rc == 0) {
        if (st->n == st->cap) {
            const size_t cap = st->cap ? 2 * st->cap : 256;
            cached **items = sl_realloc(st->items, cap * sizeof *items);
            if (!items) {
                sl_element_release(out);
                return sl__stage_fail(s, SL_ERR_NOMEM, "caching element %zu", st->n);
            }
            st->items = items;
            st->cap = cap;
        }
        if (!(st->items[st->n] = cached_new(out))) {
            sl_element_release(out);
            return sl__stage_fail(s, SL_ERR_NOMEM, "caching element %zu", st->n);
        }
        st->n++;
        return 0;
    }
    pthread_mutex_lock(&s->ctx->mu);
    if (rc == SL_EOF)
        st->complete = 1;
    else
        store_clear(st);
    st->filling = 0;
    pthread_mutex_unlock(&s->ctx->mu);
    c->writing = 0;
    return rc;
}

static void cache_cancel(sl__stage *s)
{
    sl__stage_cancel(((cache_stage *)s)->input);
}

static void cache_close(sl__stage *s)
{
    cache_stage *c = (cache_stage *)s;
    if (c->writing) { /* stopped before the end: keep nothing */
        pthread_mutex_lock(&s->ctx->mu);
        store_clear(c->store);
        c->store->filling = 0;
        pthread_mutex_unlock(&s->ctx->mu);
    }
    sl__stage_close(c->input);
    sl_free(c);
}

/* (replaying, fill epoch, position), then the input's state when reading it. */
static int cache_save(sl__stage *s, sl__state_writer *w)
{
    cache_stage *c = (cache_stage *)s;
    sl__state_put(w, c->input == NULL);
    sl__state_put(w, c->store->fill_epoch);
    sl__state_put(w, c->pos);
    return c->input ? sl__stage_save(c->input, w) : 0;
}

static const sl__stage_ops cache_stage_ops = {cache_next, cache_cancel, cache_close, NULL,
                                              cache_save};

/* Opens the input as the checkpoint says: mid-replay at the saved position of the cached
 * pass (by seeking or, without random access, by reading past it), or mid-fill from the
 * input's own state. The store stays unfilled either way. */
static int cache_restore(cache_stage *c, sl__state_reader *st)
{
    const sl_dataset *ds = c->base.ds;
    const int replaying = sl__state_get(st) != 0;
    c->store->fill_epoch = sl__state_get(st);
    c->pos = (size_t)sl__state_get(st);
    if (st->err)
        return st->err;
    if (!replaying)
        return sl__stage_open(ds->inputs[0], c->base.ctx, c->store->fill_epoch, st, &c->input);
    return sl__stage_open_at(ds->inputs[0], c->base.ctx, c->store->fill_epoch, c->pos, &c->input);
}

static int cache_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    cache_stage *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ERR_NOMEM;
    c->base = (sl__stage){&cache_stage_ops, ctx, ds, epoch};
    pthread_mutex_lock(&ctx->mu);
    sl__cache_store *store = store_of(ctx, ds, epoch);
    int replay = 0;
    if (store && !st) {
        replay = store->complete;
        if (!store->complete && !store->filling)
            store->filling = c->writing = 1;
    }
    pthread_mutex_unlock(&ctx->mu);
    if (!store) {
        sl_free(c);
        return SL_ERR_NOMEM;
    }
    c->store = store;
    int rc = 0;
    if (st)
        rc = cache_restore(c, st);
    else if (!replay)
        rc = sl__stage_open(ds->inputs[0], ctx, store->fill_epoch, NULL, &c->input);
    if (rc) {
        cache_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int64_t cache_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

/* A whole pass, when its length is known: each element's data plus its compact entry. */
static int64_t cache_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = in[0];
    const int64_t entry = (int64_t)(sizeof(cached *) + sizeof(cached) + 16 /* malloc */ +
                                    2 * (sizeof(sl_tensor) + sizeof(char *)));
    return sl__memory_scaled(sl_dataset_cardinality(ds->inputs[0]), in[0] < 0 ? -1 : in[0] + entry);
}

static const sl__dataset_ops cache_ops = {"cache", cache_open, cache_cardinality, NULL, NULL,
                                          0,       NULL,       cache_memory};

int sl_dataset_cache(sl_dataset **out, sl_dataset *in)
{
    *out = NULL;
    if (!in)
        return SL_ERR_INVAL;
    return sl__dataset_create(out, &cache_ops, &in, 1, NULL, "cache");
}
