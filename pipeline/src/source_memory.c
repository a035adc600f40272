/*
 * In-process sources: range(start, stop, step) producing {"value": int64}, a fixed list of
 * elements, and a user generator. All three run on the calling thread.
 */
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

/* ---- range -------------------------------------------------------------------------------- */

typedef struct range_params {
    int64_t start, stop, step;
} range_params;

/* range hands out views into chunks of RANGE_CHUNK values: one buffer allocation per chunk
 * instead of one per element (an aligned malloc and free cost about 900 instructions, more than
 * the rest of the per-element path). An element pins its chunk (576 bytes) until released. */
enum { RANGE_CHUNK = 64 };

typedef struct range_stage {
    sl__stage base;
    int64_t next;
    sl_buffer *chunk; /* values next, next + step, ... still to hand out; NULL when used up */
    int used, filled; /* values of chunk handed out / written */
} range_stage;

static int64_t range_count(const range_params *p)
{
    if (p->step > 0 && p->start < p->stop)
        return (int64_t)(((__int128)p->stop - p->start + p->step - 1) / p->step);
    if (p->step < 0 && p->start > p->stop)
        return (int64_t)(((__int128)p->start - p->stop - p->step - 1) / -p->step);
    return 0;
}

static int range_next(sl__stage *s, sl_element *out)
{
    range_stage *r = (range_stage *)s;
    const range_params *p = s->ds->params;
    if (p->step > 0 ? r->next >= p->stop : r->next <= p->stop)
        return SL_EOF;
    if (r->used == r->filled) {
        sl_buffer_release(r->chunk);
        r->chunk = NULL;
        r->used = r->filled = 0;
        const range_params rest = {r->next, p->stop, p->step};
        const int64_t left = range_count(&rest);
        const int n = left < RANGE_CHUNK ? (int)left : RANGE_CHUNK;
        if (sl_buffer_create(&r->chunk, (size_t)n * sizeof(int64_t)))
            return sl__stage_fail(s, SL_ERR_NOMEM, "element %lld", (long long)r->next);
        int64_t *v = sl_buffer_data(r->chunk);
        for (int k = 0; k < n; k++) /* in range by construction: no overflow */
            v[k] = (int64_t)((uint64_t)r->next + (uint64_t)k * (uint64_t)p->step);
        r->filled = n;
    }
    sl_tensor t;
    const int rc =
        sl_tensor_view(&t, SL_DTYPE_I64, 0, NULL, r->chunk, (size_t)r->used * sizeof(int64_t));
    if (rc)
        return sl__stage_fail(s, rc, "element %lld", (long long)r->next);
    r->used++;
    sl_element_push(out, "value", &t);
    /* Saturate instead of overflowing past INT64_MAX: the bound check above ends the stream. */
    r->next = __builtin_add_overflow(r->next, p->step, &r->next)
                  ? (p->step > 0 ? INT64_MAX : INT64_MIN)
                  : r->next;
    return 0;
}

static void plain_close(sl__stage *s)
{
    sl_free(s);
}

static void range_close(sl__stage *s)
{
    sl_buffer_release(((range_stage *)s)->chunk);
    sl_free(s);
}

static int range_get(sl__stage *s, uint64_t i, sl_element *out)
{
    const range_params *p = s->ds->params;
    if (i >= (uint64_t)range_count(p))
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu", (unsigned long long)i);
    sl_tensor t;
    if (sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL))
        return sl__stage_fail(s, SL_ERR_NOMEM, "element %llu", (unsigned long long)i);
    *(int64_t *)t.data = (int64_t)((uint64_t)p->start + i * (uint64_t)p->step);
    return sl_element_push(out, "value", &t);
}

static int always(const sl_dataset *ds)
{
    return 1;
}

static int range_save(sl__stage *s, sl__state_writer *w)
{
    sl__state_put(w, (uint64_t)((range_stage *)s)->next);
    return 0;
}

static int range_seek(sl__stage *s, uint64_t pos)
{
    const range_params *p = s->ds->params;
    if (pos > (uint64_t)range_count(p))
        return sl__stage_fail(s, SL_ERR_RANGE, "seeking to element %llu", (unsigned long long)pos);
    range_stage *r = (range_stage *)s;
    r->next = (int64_t)((uint64_t)p->start + pos * (uint64_t)p->step);
    r->used = r->filled; /* the chunk held other values: refill at the next `next` */
    return 0;
}

static const sl__stage_ops range_stage_ops = {range_next, NULL,       range_close,
                                              range_get,  range_save, range_seek};

static int range_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    range_stage *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->base = (sl__stage){&range_stage_ops, ctx, ds, epoch};
    r->next = st ? (int64_t)sl__state_get(st) : ((const range_params *)ds->params)->start;
    *out = &r->base;
    return 0;
}

static int64_t range_cardinality(const sl_dataset *ds)
{
    return range_count(ds->params);
}

static int64_t range_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = (int64_t)sizeof(int64_t) + SL__ELEMENT_OVERHEAD;
    return 0;
}

static const sl__dataset_ops range_ops = {"range", range_open, range_cardinality, NULL, always,
                                          0,       NULL,       range_memory};

int sl_dataset_range(sl_dataset **out, int64_t start, int64_t stop, int64_t step)
{
    *out = NULL;
    if (step == 0)
        return SL_ERR_INVAL;
    range_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (range_params){start, stop, step};
    if (step == 1)
        return sl__dataset_create(out, &range_ops, NULL, 0, p, "range(%lld, %lld)",
                                  (long long)start, (long long)stop);
    return sl__dataset_create(out, &range_ops, NULL, 0, p, "range(%lld, %lld, %lld)",
                              (long long)start, (long long)stop, (long long)step);
}

/* ---- a list of elements ------------------------------------------------------------------- */

typedef struct elements_params {
    sl_element *items; /* shares the caller's buffers */
    size_t count;
} elements_params;

typedef struct elements_stage {
    sl__stage base;
    size_t next;
} elements_stage;

static int elements_next(sl__stage *s, sl_element *out)
{
    elements_stage *e = (elements_stage *)s;
    const elements_params *p = s->ds->params;
    if (e->next >= p->count)
        return SL_EOF;
    sl_element_share(out, &p->items[e->next++]);
    return 0;
}

static int elements_get(sl__stage *s, uint64_t i, sl_element *out)
{
    const elements_params *p = s->ds->params;
    if (i >= p->count)
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu", (unsigned long long)i);
    sl_element_share(out, &p->items[i]);
    return 0;
}

static int elements_save(sl__stage *s, sl__state_writer *w)
{
    sl__state_put(w, ((elements_stage *)s)->next);
    return 0;
}

static int elements_seek(sl__stage *s, uint64_t pos)
{
    if (pos > ((const elements_params *)s->ds->params)->count)
        return sl__stage_fail(s, SL_ERR_RANGE, "seeking to element %llu", (unsigned long long)pos);
    ((elements_stage *)s)->next = pos;
    return 0;
}

static const sl__stage_ops elements_stage_ops = {elements_next, NULL,          plain_close,
                                                 elements_get,  elements_save, elements_seek};

static int elements_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                         sl__stage **out)
{
    elements_stage *e = sl_calloc(1, sizeof *e);
    if (!e)
        return SL_ERR_NOMEM;
    e->base = (sl__stage){&elements_stage_ops, ctx, ds, epoch};
    if (st)
        e->next = sl__state_get(st);
    *out = &e->base;
    return 0;
}

static int64_t elements_cardinality(const sl_dataset *ds)
{
    return (int64_t)((const elements_params *)ds->params)->count;
}

static void elements_free(void *params)
{
    elements_params *p = params;
    for (size_t i = 0; i < p->count; i++)
        sl_element_release(&p->items[i]);
    sl_free(p->items);
    sl_free(p);
}

/* The dataset owns the elements (the iterator holds nothing more); an element is as large
 * as the largest given. */
static int64_t elements_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    const elements_params *p = ds->params;
    int64_t most = 0;
    for (size_t i = 0; i < p->count; i++) {
        int64_t bytes = SL__ELEMENT_OVERHEAD;
        for (int k = 0; k < p->items[i].count; k++)
            bytes += (int64_t)sl_tensor_nbytes(&p->items[i].tensors[k]);
        most = SL_MAX(most, bytes);
    }
    *elem = most;
    return 0;
}

static const sl__dataset_ops elements_ops = {"elements",    elements_open,  elements_cardinality,
                                             elements_free, always,         0,
                                             NULL,          elements_memory};

int sl_dataset_from_elements(sl_dataset **out, const sl_element *elements, size_t count)
{
    *out = NULL;
    elements_params *p = sl_calloc(1, sizeof *p);
    if (!p || !(p->items = sl_calloc(count ? count : 1, sizeof *p->items))) {
        sl_free(p);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++)
        sl_element_share(&p->items[i], &elements[i]);
    p->count = count;
    return sl__dataset_create(out, &elements_ops, NULL, 0, p, "elements(%zu)", count);
}

/* ---- generator ---------------------------------------------------------------------------- */

typedef struct generator_params {
    sl_generator_fn fn;
    void *user;
} generator_params;

typedef struct generator_stage {
    sl__stage base;
    uint64_t next;
} generator_stage;

static int generator_next(sl__stage *s, sl_element *out)
{
    generator_stage *g = (generator_stage *)s;
    const generator_params *p = s->ds->params;
    const int rc = p->fn(p->user, g->next, out);
    if (rc == 0)
        g->next++;
    else if (rc < 0)
        return sl__stage_fail(s, rc, "element %llu", (unsigned long long)g->next);
    return rc;
}

static const sl__stage_ops generator_stage_ops = {generator_next, NULL, plain_close};

static int generator_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                          sl__stage **out)
{
    generator_stage *g = sl_calloc(1, sizeof *g);
    if (!g)
        return SL_ERR_NOMEM;
    g->base = (sl__stage){&generator_stage_ops, ctx, ds, epoch};
    *out = &g->base;
    return 0;
}

static int never(const sl_dataset *ds)
{
    return 0;
}

/* A generator's position cannot be restored without calling it again: not checkpointable. */
static const sl__dataset_ops generator_ops = {"generator", generator_open, NULL, NULL, NULL,
                                              0,           never};

int sl_dataset_generator(sl_dataset **out, sl_generator_fn fn, void *user, const char *name)
{
    *out = NULL;
    generator_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (generator_params){fn, user};
    return sl__dataset_create(out, &generator_ops, NULL, 0, p, "generator(%s)", name ? name : "fn");
}
