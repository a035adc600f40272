/*
 * batch and unbatch.
 *
 * batch(n) stacks n consecutive elements into one: tensor k of the output has shape
 * (count, shape of tensor k) and every input must agree on names, dtypes and shapes (a
 * mismatch names the element and the tensor; differently sized byte strings need
 * padded_batch). The last, short batch is kept unless drop_remainder.
 *
 * padded_batch(n) is batch for tensors whose dimensions differ: each output dimension is the
 * largest in the batch and the rest is filled with the padding value (byte strings must be
 * decoded first: their lengths would be lost).
 *
 * unbatch splits every tensor along its first dimension, all of which must be equal; the
 * slices are views into the input's buffers (no copy).
 *
 * Both run on the calling thread.
 *
 * Fusion with a map (engine_internal.h, tf.data's map_and_batch): a plain batch whose input is
 * an ordered map gives the map a destination, a small table of the batches being filled (one
 * tensor of shape (n, ...) per batch and field, created by the first element that asks, rows
 * handed out once). The map's workers write or copy each output into its predicted row; when
 * every element of a batch sits in its own row of that field's tensor, the batch hands the
 * tensor out as it is; otherwise (after a skip, a layout change, a full table) it stacks by
 * copying exactly as unfused. Layout checks and their messages run on the elements either way.
 * The table's mutex guards offset, done and the arenas; it is taken by the map's workers and
 * by this stage's `next`, for lookups only.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/half.h"

typedef struct batch_params {
    int64_t size;
    int drop_remainder;
    int padded;     /* padded_batch: dims may differ and are padded to the batch's largest */
    double padding; /* padded_batch's fill value, converted to each tensor's dtype */
} batch_params;

enum { DEST_ARENAS = 32, DEST_NAME = 64 };

/* One field of one batch being filled by the map's workers. */
typedef struct dest_arena {
    int used;
    uint64_t batch; /* stream position / size */
    char name[DEST_NAME];
    sl_dtype dtype; /* one element's layout: the first to ask fixes it */
    int rank;
    int64_t shape[SL_TENSOR_MAX_RANK];
    size_t each;    /* bytes per row */
    sl_buffer *buf; /* one reference: (size) rows */
    uint8_t *taken; /* (size) 1: row handed out; kept across reuse of the entry */
} dest_arena;

struct sl__batch_dest {
    pthread_mutex_t mu;
    int64_t size;
    int64_t offset; /* guarded by mu: map index i lands at stream position i + offset */
    uint64_t done;  /* guarded by mu: batches before this one are assembled (or dropped) */
    dest_arena arenas[DEST_ARENAS]; /* guarded by mu */
};

_Atomic int sl__map_batch_fusion = 1;

typedef struct batch_stage {
    sl__stage base;
    sl__batch_dest *dest; /* fused with the map below (NULL: not fused) */
    sl__stage *input;
    sl_element *pending; /* (size) elements collected for the batch being built */
    uint64_t index;      /* input elements consumed, for messages */
    int ended;           /* the input returned SL_EOF */
    /* unbatch: the element being split and the next row */
    sl_element cur;
    int64_t row, rows;
    int have_cur;            /* cur came from the input (rows may still be 0) */
    int snapshots;           /* the input chain is checkpointable */
    sl__state_writer before; /* the input's state before cur was pulled */
} batch_stage;

static void batch_cancel(sl__stage *s)
{
    sl__stage_cancel(((batch_stage *)s)->input);
}

static void batch_close(sl__stage *s)
{
    batch_stage *b = (batch_stage *)s;
    sl__stage_close(b->input); /* joins the map's workers: nobody writes into dest after */
    if (b->dest) {
        for (int i = 0; i < DEST_ARENAS; i++) {
            sl_buffer_release(b->dest->arenas[i].buf);
            sl_free(b->dest->arenas[i].taken);
        }
        pthread_mutex_destroy(&b->dest->mu);
        sl_free(b->dest);
    }
    sl_element_release(&b->cur);
    sl__state_writer_free(&b->before);
    sl_free(b->pending);
    sl_free(b);
}

/* ---- the map's destination ---------------------------------------------------------------- */

static int same_type(const dest_arena *a, sl_dtype dtype, int rank, const int64_t *shape)
{
    return a->dtype == dtype && a->rank == rank &&
           !memcmp(a->shape, shape, (size_t)rank * sizeof *shape);
}

static dest_arena *find_arena(sl__batch_dest *d, uint64_t batch, const char *name)
{
    for (int i = 0; i < DEST_ARENAS; i++)
        if (d->arenas[i].used && d->arenas[i].batch == batch && !strcmp(d->arenas[i].name, name))
            return &d->arenas[i];
    return NULL;
}

/* A new arena for (batch, name) with this layout, or NULL (table full, out of memory). The
 * buffer is allocated under mu: it comes from the allocator's reuse of large blocks in steady
 * state, and the pages are first touched by the workers writing rows, outside the lock. */
static dest_arena *new_arena(sl__batch_dest *d, uint64_t batch, const char *name, sl_dtype dtype,
                             int rank, const int64_t *shape)
{
    dest_arena *a = NULL;
    for (int i = 0; i < DEST_ARENAS && !a; i++)
        if (!d->arenas[i].used)
            a = &d->arenas[i];
    if (!a)
        return NULL;
    size_t each = sl_dtype_size(dtype);
    for (int k = 0; k < rank; k++)
        each *= (size_t)shape[k];
    if (!a->taken && !(a->taken = sl_calloc((size_t)d->size, 1)))
        return NULL;
    if (each == 0 || sl_buffer_create(&a->buf, each * (size_t)d->size))
        return NULL;
    memset(a->taken, 0, (size_t)d->size);
    a->used = 1;
    a->batch = batch;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->dtype = dtype;
    a->rank = rank;
    memcpy(a->shape, shape, (size_t)rank * sizeof *shape);
    a->each = each;
    return a;
}

int sl__batch_dest_alloc(void *user, uint64_t index, const char *name, sl_dtype dtype, int rank,
                         const int64_t *shape, sl_tensor *out)
{
    sl__batch_dest *d = user;
    if (!name || strlen(name) >= DEST_NAME || rank < 0 || rank + 1 > SL_TENSOR_MAX_RANK ||
        sl_dtype_size(dtype) == 0)
        return 1;
    pthread_mutex_lock(&d->mu);
    const int64_t pos = (int64_t)index + d->offset;
    int rc = 1;
    if (pos >= 0 && (uint64_t)(pos / d->size) >= d->done) {
        const uint64_t batch = (uint64_t)(pos / d->size);
        const int64_t row = pos % d->size;
        dest_arena *a = find_arena(d, batch, name);
        if (!a)
            a = new_arena(d, batch, name, dtype, rank, shape);
        if (a && same_type(a, dtype, rank, shape) && !a->taken[row] &&
            sl_tensor_view(out, dtype, rank, shape, a->buf, (size_t)row * a->each) == 0) {
            a->taken[row] = 1;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void sl__batch_dest_place(sl__batch_dest *d, uint64_t index, sl_element *e)
{
    for (int k = 0; k < e->count; k++) {
        sl_tensor *t = &e->tensors[k], v;
        /* Small tensors stay where they are: a lookup under the lock costs more than batch's
         * copy of them (range | map(identity) | batch(256): 665 -> 1,042 instructions per
         * element when its 8-byte values were placed). A tensor already in its row finds the
         * row taken and stays too. */
        if (!t->data || sl_tensor_nbytes(t) < SL__DEST_PLACE_MIN ||
            sl__batch_dest_alloc(d, index, e->names[k], t->dtype, t->rank, t->shape, &v) != 0)
            continue;
        memcpy(v.data, t->data, sl_tensor_nbytes(t));
        sl_tensor_release(t);
        *t = v;
    }
}

void sl__batch_dest_skipped(sl__batch_dest *d)
{
    pthread_mutex_lock(&d->mu);
    d->offset--;
    pthread_mutex_unlock(&d->mu);
}

/* Field k of the batch at stream position `start` as the arena's tensor, when every one of the
 * n elements sits in its own row (1), else 0 (stack by copying). Either way the arenas of this
 * batch and earlier ones are dropped once the last field is done (last = 1). */
static int take_arena(sl__batch_dest *d, uint64_t start, const sl_element *pending, int64_t n,
                      int k, int last, sl_tensor *out)
{
    const sl_tensor *t0 = &pending[0].tensors[k];
    const uint64_t batch = start / (uint64_t)d->size;
    int ok = 0;
    pthread_mutex_lock(&d->mu);
    const dest_arena *a =
        start % (uint64_t)d->size == 0 ? find_arena(d, batch, pending[0].names[k]) : NULL;
    if (a && same_type(a, t0->dtype, t0->rank, t0->shape)) {
        const uint8_t *base = sl_buffer_data(a->buf);
        ok = 1;
        for (int64_t i = 0; ok && i < n; i++)
            ok = pending[i].tensors[k].buffer == a->buf &&
                 pending[i].tensors[k].data == base + (size_t)i * a->each;
        int64_t shape[SL_TENSOR_MAX_RANK];
        shape[0] = n;
        memcpy(shape + 1, t0->shape, (size_t)t0->rank * sizeof *shape);
        if (ok && sl_tensor_view(out, t0->dtype, t0->rank + 1, shape, a->buf, 0) != 0)
            ok = 0;
    }
    if (last) {
        if (batch + 1 > d->done)
            d->done = batch + 1;
        for (int i = 0; i < DEST_ARENAS; i++) {
            dest_arena *e = &d->arenas[i];
            if (e->used && e->batch < d->done) {
                sl_buffer_release(e->buf);
                e->buf = NULL;
                e->used = 0;
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    return ok;
}

/* Checks that e matches the first element of the batch (names, dtypes, shapes). */
static int same_layout(batch_stage *b, const sl_element *first, const sl_element *e)
{
    if (e->count != first->count)
        return sl__stage_fail(&b->base, SL_ERR_SCHEMA,
                              "element %llu has %d tensors, the batch's first has %d",
                              (unsigned long long)b->index, e->count, first->count);
    for (int k = 0; k < e->count; k++) {
        const sl_tensor *a = &first->tensors[k], *t = &e->tensors[k];
        /* Names are usually the same static string: compare pointers before bytes. */
        int same = (first->names[k] == e->names[k] || strcmp(first->names[k], e->names[k]) == 0) &&
                   a->dtype == t->dtype && a->rank == t->rank;
        const int padded = ((const batch_params *)b->base.ds->params)->padded;
        for (int d = 0; same && !padded && d < a->rank; d++)
            same = a->shape[d] == t->shape[d];
        if (!same) {
            char ta[96], tb[96];
            sl_tensor_format_type(a, ta, sizeof ta);
            sl_tensor_format_type(t, tb, sizeof tb);
            return sl__stage_fail(&b->base, SL_ERR_SCHEMA,
                                  "element %llu: tensor \"%s\" is %s, the batch's first is "
                                  "\"%s\" %s%s",
                                  (unsigned long long)b->index, e->names[k], tb, first->names[k],
                                  ta, t->dtype == SL_DTYPE_BYTES ? " (use padded_batch)" : "");
        }
    }
    return 0;
}

/* start: the stream position of pending[0] (for the fused map's destination). */
static int stack(batch_stage *b, sl_element *pending, int64_t n, uint64_t start, sl_element *out)
{
    const sl_element *first = &pending[0];
    for (int k = 0; k < first->count; k++) {
        const sl_tensor *t0 = &first->tensors[k];
        if (t0->rank + 1 > SL_TENSOR_MAX_RANK)
            return sl__stage_fail(&b->base, SL_ERR_UNSUPPORTED,
                                  "tensor \"%s\" has rank %d: batching exceeds the maximum rank",
                                  first->names[k], t0->rank);
        sl_tensor whole;
        if (b->dest && take_arena(b->dest, start, pending, n, k, k + 1 == first->count, &whole)) {
            sl_element_push(out, first->names[k], &whole);
            continue;
        }
        int64_t shape[SL_TENSOR_MAX_RANK];
        shape[0] = n;
        memcpy(shape + 1, t0->shape, (size_t)t0->rank * sizeof *shape);
        sl_tensor t;
        if (sl_tensor_alloc(&t, t0->dtype, t0->rank + 1, shape))
            return sl__stage_fail(&b->base, SL_ERR_NOMEM, "batch of %lld", (long long)n);
        const size_t each = sl_tensor_nbytes(t0);
        for (int64_t i = 0; i < n; i++)
            memcpy((uint8_t *)t.data + (size_t)i * each, pending[i].tensors[k].data, each);
        sl_element_push(out, first->names[k], &t);
    }
    return 0;
}

/* Writes value v as one element of dtype dt at p. */
static void store_value(uint8_t *p, sl_dtype dt, double v)
{
    switch (dt) {
    case SL_DTYPE_U8: {
        const uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case SL_DTYPE_I8: {
        const int8_t x = (int8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case SL_DTYPE_U16: {
        const uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case SL_DTYPE_I16: {
        const int16_t x = (int16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case SL_DTYPE_U32: {
        const uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    case SL_DTYPE_I32: {
        const int32_t x = (int32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    case SL_DTYPE_U64: {
        const uint64_t x = (uint64_t)v;
        memcpy(p, &x, 8);
        break;
    }
    case SL_DTYPE_I64: {
        const int64_t x = (int64_t)v;
        memcpy(p, &x, 8);
        break;
    }
    case SL_DTYPE_F16: {
        const uint16_t x = sl_f32_to_f16((float)v);
        memcpy(p, &x, 2);
        break;
    }
    case SL_DTYPE_BF16: {
        const uint16_t x = sl_f32_to_bf16((float)v);
        memcpy(p, &x, 2);
        break;
    }
    case SL_DTYPE_F32: {
        const float x = (float)v;
        memcpy(p, &x, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
        break;
    }
}

/* Copies tensor t (shape s) into the top-left corner of dst (shape m, m[d] >= s[d]). */
static void copy_padded(uint8_t *dst, const int64_t *m, const sl_tensor *t)
{
    const size_t es = sl_dtype_size(t->dtype);
    if (t->rank == 0) {
        memcpy(dst, t->data, es);
        return;
    }
    const int r = t->rank;
    const size_t run = (size_t)t->shape[r - 1] * es;
    int64_t rows = 1;
    for (int d = 0; d < r - 1; d++)
        rows *= t->shape[d];
    int64_t idx[SL_TENSOR_MAX_RANK] = {0};
    for (int64_t row = 0; row < rows; row++) {
        size_t off = 0; /* destination row offset, row-major in m */
        for (int d = 0; d < r - 1; d++)
            off = off * (size_t)m[d] + (size_t)idx[d];
        off *= (size_t)m[r - 1];
        memcpy(dst + off * es, (const uint8_t *)t->data + (size_t)row * run, run);
        for (int d = r - 2; d >= 0 && ++idx[d] == t->shape[d]; d--)
            idx[d] = 0;
    }
}

static int stack_padded(batch_stage *b, sl_element *pending, int64_t n, sl_element *out)
{
    const batch_params *p = b->base.ds->params;
    const sl_element *first = &pending[0];
    for (int k = 0; k < first->count; k++) {
        const sl_tensor *t0 = &first->tensors[k];
        if (t0->dtype == SL_DTYPE_BYTES)
            return sl__stage_fail(&b->base, SL_ERR_UNSUPPORTED,
                                  "tensor \"%s\" holds byte strings: decode them with a map "
                                  "before padded_batch",
                                  first->names[k]);
        if (t0->rank + 1 > SL_TENSOR_MAX_RANK)
            return sl__stage_fail(&b->base, SL_ERR_UNSUPPORTED,
                                  "tensor \"%s\" has rank %d: batching exceeds the maximum rank",
                                  first->names[k], t0->rank);
        int64_t shape[SL_TENSOR_MAX_RANK] = {n};
        for (int64_t i = 0; i < n; i++)
            for (int d = 0; d < t0->rank; d++)
                shape[d + 1] = SL_MAX(shape[d + 1], pending[i].tensors[k].shape[d]);
        sl_tensor t;
        if (sl_tensor_alloc(&t, t0->dtype, t0->rank + 1, shape))
            return sl__stage_fail(&b->base, SL_ERR_NOMEM, "padded batch of %lld", (long long)n);
        const size_t es = sl_dtype_size(t0->dtype), total = sl_tensor_nbytes(&t);
        if (p->padding == 0)
            memset(t.data, 0, total);
        else
            for (size_t off = 0; off < total; off += es)
                store_value((uint8_t *)t.data + off, t0->dtype, p->padding);
        const size_t each = total / (size_t)n;
        for (int64_t i = 0; i < n; i++)
            copy_padded((uint8_t *)t.data + (size_t)i * each, shape + 1, &pending[i].tensors[k]);
        sl_element_push(out, first->names[k], &t);
    }
    return 0;
}

static int batch_next(sl__stage *s, sl_element *out)
{
    batch_stage *b = (batch_stage *)s;
    const batch_params *p = s->ds->params;
    if (b->ended)
        return SL_EOF;
    int64_t n = 0;
    int rc = 0;
    const uint64_t start = b->index;
    while (n < p->size) {
        rc = sl__stage_next(b->input, &b->pending[n]);
        if (rc)
            break;
        if (n > 0 && (rc = same_layout(b, &b->pending[0], &b->pending[n])) != 0) {
            n++;
            break;
        }
        b->index++;
        n++;
    }
    if (rc == SL_EOF)
        b->ended = 1;
    if (rc == 0 || (rc == SL_EOF && n > 0 && !p->drop_remainder))
        rc = p->padded ? stack_padded(b, b->pending, n, out) : stack(b, b->pending, n, start, out);
    for (int64_t i = 0; i < n; i++)
        sl_element_release(&b->pending[i]);
    if (rc && rc != SL_EOF)
        sl_element_release(out);
    return rc;
}

/* batch runs synchronously: its counter, then the input's state. */
static int batch_save(sl__stage *s, sl__state_writer *w)
{
    batch_stage *b = (batch_stage *)s;
    sl__state_put(w, b->index);
    return sl__stage_save(b->input, w);
}

static const sl__stage_ops batch_stage_ops = {batch_next, batch_cancel, batch_close, NULL,
                                              batch_save};

/* Gives the input map a destination when it is one that can take it; a failure here only
 * leaves the pair unfused. */
static void fuse_with_map(batch_stage *b, int64_t size)
{
    sl__batch_dest *d = sl_calloc(1, sizeof *d);
    if (!d)
        return;
    pthread_mutex_init(&d->mu, NULL);
    d->size = size;
    uint64_t index;
    if (sl__map_attach_dest(b->input, d, &index) != 0) {
        pthread_mutex_destroy(&d->mu);
        sl_free(d);
        return;
    }
    /* b->index counts the elements consumed, so the next batch starts there; the map has not
     * started yet, so nothing reads offset before this store. */
    d->offset = (int64_t)b->index - (int64_t)index;
    d->done = b->index / (uint64_t)size;
    b->dest = d;
}

static int batch_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    const batch_params *p = ds->params;
    batch_stage *b = sl_calloc(1, sizeof *b);
    if (!b || !(b->pending = sl_calloc((size_t)p->size, sizeof *b->pending))) {
        sl_free(b);
        return SL_ERR_NOMEM;
    }
    b->base = (sl__stage){&batch_stage_ops, ctx, ds, epoch};
    if (st)
        b->index = sl__state_get(st);
    const int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &b->input);
    if (rc) {
        batch_close(&b->base);
        return rc;
    }
    if (!p->padded && atomic_load_explicit(&sl__map_batch_fusion, memory_order_relaxed))
        fuse_with_map(b, p->size);
    *out = &b->base;
    return 0;
}

static int64_t batch_cardinality(const sl_dataset *ds)
{
    const batch_params *p = ds->params;
    const int64_t n = sl_dataset_cardinality(ds->inputs[0]);
    if (n < 0)
        return n;
    return p->drop_remainder ? n / p->size : (n + p->size - 1) / p->size;
}

/* The elements being collected plus the stacked output. */
static int64_t batch_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    const int64_t size = ((const batch_params *)ds->params)->size;
    /* One stacked tensor per name: the per-element overhead is paid once. */
    *elem = in[0] < SL__ELEMENT_OVERHEAD
                ? sl__memory_scaled(size, in[0])
                : sl__memory_scaled(size, in[0] - SL__ELEMENT_OVERHEAD) + SL__ELEMENT_OVERHEAD;
    return sl__memory_scaled(2, *elem);
}

static const sl__dataset_ops batch_ops = {"batch", batch_open, batch_cardinality, NULL, NULL,
                                          0,       NULL,       batch_memory};

/* Largest batch the engine accepts: its pending array is allocated at open. */
enum { MAX_BATCH = 1 << 24 };

int sl_dataset_batch(sl_dataset **out, sl_dataset *in, int64_t batch_size, int drop_remainder)
{
    *out = NULL;
    if (!in || batch_size < 1 || batch_size > MAX_BATCH)
        return SL_ERR_INVAL;
    batch_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (batch_params){batch_size, drop_remainder != 0, 0, 0};
    if (drop_remainder)
        return sl__dataset_create(out, &batch_ops, &in, 1, p, "batch(%lld, drop_remainder=true)",
                                  (long long)batch_size);
    return sl__dataset_create(out, &batch_ops, &in, 1, p, "batch(%lld)", (long long)batch_size);
}

int sl_dataset_padded_batch(sl_dataset **out, sl_dataset *in, int64_t batch_size,
                            double padding_value, int drop_remainder)
{
    *out = NULL;
    if (!in || batch_size < 1 || batch_size > MAX_BATCH)
        return SL_ERR_INVAL;
    batch_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (batch_params){batch_size, drop_remainder != 0, 1, padding_value};
    char extra[96] = "";
    int at = 0;
    if (padding_value != 0)
        at += snprintf(extra, sizeof extra, ", padding_value=%.17g", padding_value);
    if (drop_remainder)
        snprintf(extra + at, sizeof extra - (size_t)at, ", drop_remainder=true");
    return sl__dataset_create(out, &batch_ops, &in, 1, p, "padded_batch(%lld%s)",
                              (long long)batch_size, extra);
}

/* ---- unbatch ------------------------------------------------------------------------------ */

/* Pulls the next element to split into cur (checking that it can be split), remembering the
 * input's state before it for checkpoints. */
static int pull_batch(batch_stage *b)
{
    sl__stage *s = &b->base;
    sl_element_release(&b->cur);
    b->have_cur = 0;
    b->row = b->rows = 0;
    if (b->snapshots) {
        sl__state_writer_reset(&b->before);
        SL_TRY(sl__stage_save(b->input, &b->before));
    }
    const int rc = sl__stage_next(b->input, &b->cur);
    if (rc)
        return rc;
    b->have_cur = 1;
    b->index++;
    b->rows = -1;
    for (int k = 0; k < b->cur.count; k++) {
        const sl_tensor *t = &b->cur.tensors[k];
        if (t->rank < 1 || t->dtype == SL_DTYPE_BYTES)
            return sl__stage_fail(s, SL_ERR_SCHEMA,
                                  "element %llu: tensor \"%s\" has no dimension to split",
                                  (unsigned long long)(b->index - 1), b->cur.names[k]);
        if (b->rows >= 0 && t->shape[0] != b->rows)
            return sl__stage_fail(s, SL_ERR_SCHEMA,
                                  "element %llu: tensors disagree on the first dimension "
                                  "(%lld vs %lld)",
                                  (unsigned long long)(b->index - 1), (long long)b->rows,
                                  (long long)t->shape[0]);
        b->rows = t->shape[0];
    }
    if (b->rows < 0)
        b->rows = 0;
    return 0;
}

static int unbatch_next(sl__stage *s, sl_element *out)
{
    batch_stage *b = (batch_stage *)s;
    while (b->row >= b->rows) {
        const int rc = pull_batch(b);
        if (rc)
            return rc;
    }
    for (int k = 0; k < b->cur.count; k++) {
        const sl_tensor *t = &b->cur.tensors[k];
        const size_t row_bytes = sl_tensor_nbytes(t) / (size_t)t->shape[0];
        sl_tensor v;
        int rc;
        if (t->buffer) {
            const size_t off =
                (size_t)((const uint8_t *)t->data - (const uint8_t *)sl_buffer_data(t->buffer));
            rc = sl_tensor_view(&v, t->dtype, t->rank - 1, t->shape + 1, t->buffer,
                                off + (size_t)b->row * row_bytes);
        } else {
            sl_tensor tmp;
            rc = sl_tensor_borrow(&tmp, t->dtype, t->rank - 1, t->shape + 1,
                                  (uint8_t *)t->data + (size_t)b->row * row_bytes);
            if (rc == 0)
                rc = sl_tensor_copy(&v, &tmp);
        }
        if (rc) {
            sl_element_release(out);
            return sl__stage_fail(s, rc, "element %llu", (unsigned long long)(b->index - 1));
        }
        sl_element_push(out, b->cur.names[k], &v);
    }
    b->row++;
    return 0;
}

/* unbatch's state: the row to hand out next within the current element, and the input's
 * state *before* that element, so a restore pulls the element again and resumes at the row
 * (the one element is re-read; every other stays unread). */
static int unbatch_save(sl__stage *s, sl__state_writer *w)
{
    batch_stage *b = (batch_stage *)s;
    if (!b->snapshots)
        return sl__stage_save(b->input, w); /* names the input stage that cannot */
    sl__state_put(w, b->index - (uint64_t)b->have_cur);
    sl__state_put(w, (uint64_t)b->have_cur);
    sl__state_put(w, (uint64_t)b->row);
    if (!b->have_cur)
        return sl__stage_save(b->input, w);
    sl__state_put_bytes(w, b->before.buf, b->before.len);
    return b->before.err;
}

static const sl__stage_ops unbatch_stage_ops = {unbatch_next, batch_cancel, batch_close, NULL,
                                                unbatch_save};

static int unbatch_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                        sl__stage **out)
{
    batch_stage *b = sl_calloc(1, sizeof *b);
    if (!b)
        return SL_ERR_NOMEM;
    b->base = (sl__stage){&unbatch_stage_ops, ctx, ds, epoch};
    b->snapshots = sl__dataset_checkpointable(ds->inputs[0]);
    int have_cur = 0;
    int64_t row = 0;
    if (st) {
        b->index = sl__state_get(st);
        have_cur = sl__state_get(st) != 0;
        row = (int64_t)sl__state_get(st);
    }
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &b->input);
    if (rc == 0 && have_cur) {
        rc = pull_batch(b);
        if (rc == 0 && (row < 0 || row > b->rows))
            rc = sl__stage_fail(&b->base, SL_ERR_CORRUPT, "checkpoint: row %lld of %lld",
                                (long long)row, (long long)b->rows);
        else if (rc == SL_EOF)
            rc = sl__stage_fail(&b->base, SL_ERR_CORRUPT, "checkpoint: the input ended early");
        b->row = row;
    }
    if (rc) {
        batch_close(&b->base);
        return rc;
    }
    *out = &b->base;
    return 0;
}

static const sl__dataset_ops unbatch_ops = {"unbatch", unbatch_open, NULL, NULL};

int sl_dataset_unbatch(sl_dataset **out, sl_dataset *in)
{
    *out = NULL;
    if (!in)
        return SL_ERR_INVAL;
    return sl__dataset_create(out, &unbatch_ops, &in, 1, NULL, "unbatch");
}
