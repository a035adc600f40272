/*
 * cache("path"): like cache(), but the first complete pass is written to a sluice file at
 * `path`, and every later pass (a later epoch, another iterator, another run) reads that file
 * instead of the input, as tf.data's Dataset.cache(filename) does. The file is published
 * atomically when the pass completes (the record writer's temp file + rename), so a pass that
 * stops early leaves no file and a reader never sees a partial one.
 *
 * Each element is one record: a count, then per tensor its name, dtype, rank, shape, byte
 * count and bytes (little-endian). Reading copies the bytes into new tensors (the file's
 * records carry no alignment promise); names are interned in the node so they live as long as
 * the dataset, as element names must. A record that does not parse is an error naming the file
 * and the record.
 *
 * Checkpoints: replaying, the state is the record position (restore seeks: no record before it
 * is read; without the file, the input is read again from that position). Filling, it is the
 * position and the input's state; a restore continues the input without writing (the file would
 * miss its start), and the next pass fills it. Every pass reads the input at the epoch of the first
 * (sl__ctx_cache_epoch), so the order is the cached one.
 *
 * Locking: the node's name table is guarded by its own mutex (iterators over the same dataset
 * may run on several threads); a stage is used by one thread at a time.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/record.h"

enum { NAME_CAP = 64 };

typedef struct cache_file_params {
    char path[4096];
    pthread_mutex_t mu;
    int nnames;
    char names[SL_ELEMENT_MAX * 4][NAME_CAP]; /* interned tensor names; guarded by mu */
} cache_file_params;

typedef struct cache_file_stage {
    sl__stage base;
    sl__stage *input;        /* filling or passing through; NULL when replaying */
    sl_record_reader *file;  /* replaying */
    sl_record_writer *out;   /* filling; NULL when passing through */
    sl__state_writer record; /* the element being encoded */
    uint64_t pos;            /* elements handed out this pass */
} cache_file_stage;

static cache_file_params *cfp(const sl__stage *s)
{
    return s->ds->params;
}

/* ---- one element per record ------------------------------------------------------------- */

static void put_u8(sl__state_writer *w, unsigned v)
{
    const uint8_t b = (uint8_t)v;
    sl__state_put_bytes(w, &b, 1);
}

static int encode(const sl_element *e, sl__state_writer *w)
{
    sl__state_writer_reset(w);
    put_u8(w, (unsigned)e->count);
    for (int k = 0; k < e->count; k++) {
        const sl_tensor *t = &e->tensors[k];
        const size_t n = strlen(e->names[k]);
        if (n >= NAME_CAP)
            return SL_ERR_TOO_LARGE;
        put_u8(w, (unsigned)n);
        sl__state_put_bytes(w, e->names[k], n);
        put_u8(w, (unsigned)t->dtype);
        put_u8(w, (unsigned)t->rank);
        for (int d = 0; d < t->rank; d++)
            sl__state_put(w, (uint64_t)t->shape[d]);
        const size_t bytes = sl_tensor_nbytes(t);
        sl__state_put(w, bytes);
        sl__state_put_bytes(w, t->data, bytes);
    }
    return w->err;
}

/* A stable copy of name for this node (names must outlive the elements that carry them). */
static const char *intern(cache_file_params *p, const char *name, size_t n)
{
    const char *found = NULL;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nnames && !found; i++)
        if (strlen(p->names[i]) == n && memcmp(p->names[i], name, n) == 0)
            found = p->names[i];
    if (!found && p->nnames < (int)SL_ARRAY_LEN(p->names)) {
        memcpy(p->names[p->nnames], name, n);
        p->names[p->nnames][n] = '\0';
        found = p->names[p->nnames++];
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

static int decode(cache_file_stage *c, const sl_record *rec, sl_element *out)
{
    const uint8_t *p = rec->data, *end = rec->data + rec->size;
#define NEED(n)                              \
    do {                                     \
        if ((size_t)(end - p) < (size_t)(n)) \
            goto corrupt;                    \
    } while (0)
    NEED(1);
    const int count = *p++;
    if (count > SL_ELEMENT_MAX)
        goto corrupt;
    for (int k = 0; k < count; k++) {
        NEED(1);
        const size_t n = *p++;
        NEED(n + 2);
        const char *name = intern(cfp(&c->base), (const char *)p, n);
        p += n;
        const sl_dtype dt = (sl_dtype)*p++;
        const int rank = *p++;
        if (!name || rank > SL_TENSOR_MAX_RANK || sl_dtype_size(dt) == 0)
            goto corrupt;
        int64_t shape[SL_TENSOR_MAX_RANK];
        NEED(8 * (size_t)rank + 8);
        for (int d = 0; d < rank; d++, p += 8)
            shape[d] = (int64_t)sl__load_u64le(p);
        const uint64_t bytes = sl__load_u64le(p);
        p += 8;
        NEED(bytes);
        sl_tensor t;
        if (sl_tensor_alloc(&t, dt, rank, shape))
            goto corrupt; /* an impossible shape */
        if (sl_tensor_nbytes(&t) != bytes) {
            sl_tensor_release(&t);
            goto corrupt;
        }
        memcpy(t.data, p, bytes);
        p += bytes;
        sl_element_push(out, name, &t);
    }
    if (p != end)
        goto corrupt;
    return 0;
#undef NEED
corrupt:
    sl_element_release(out);
    return sl__stage_fail(&c->base, SL_ERR_CORRUPT, "%s: record %llu is not a cached element",
                          cfp(&c->base)->path, (unsigned long long)rec->index);
}

/* ---- the stage -------------------------------------------------------------------------- */

static int cache_file_next(sl__stage *s, sl_element *out)
{
    cache_file_stage *c = (cache_file_stage *)s;
    if (c->file) {
        sl_record rec;
        const int rc = sl_record_reader_next(c->file, &rec);
        if (rc)
            return rc == SL_EOF ? rc : sl__stage_fail_raw(s, rc, sl_record_reader_errmsg(c->file));
        SL_TRY(decode(c, &rec, out));
        c->pos++;
        return 0;
    }
    const int rc = sl__stage_next(c->input, out);
    if (rc == 0)
        c->pos++;
    if (!c->out)
        return rc;
    int wrc = 0;
    if (rc == 0) {
        wrc = encode(out, &c->record);
        if (wrc == 0)
            wrc = sl_record_writer_write(c->out, c->record.buf, c->record.len);
    } else if (rc == SL_EOF) {
        wrc = sl_record_writer_finish(c->out);
    }
    if (wrc == 0 && rc == 0)
        return 0;
    if (wrc) /* the cache is lost, the stream is not: report and stop */
        sl__stage_fail(s, wrc, "writing the cache %s: %s", cfp(s)->path,
                       sl_record_writer_errmsg(c->out));
    sl_record_writer_close(c->out); /* not finished: the temp file goes */
    c->out = NULL;
    if (wrc) {
        sl_element_release(out);
        return wrc;
    }
    return rc;
}

static void cache_file_cancel(sl__stage *s)
{
    sl__stage_cancel(((cache_file_stage *)s)->input);
}

static void cache_file_close(sl__stage *s)
{
    cache_file_stage *c = (cache_file_stage *)s;
    sl_record_writer_close(c->out);
    sl_record_reader_close(c->file);
    sl__stage_close(c->input);
    sl__state_writer_free(&c->record);
    sl_free(c);
}

/* (replaying, position), then the input's state when reading it. */
static int cache_file_save(sl__stage *s, sl__state_writer *w)
{
    cache_file_stage *c = (cache_file_stage *)s;
    uint64_t fill_epoch = 0;
    SL_TRY(sl__ctx_cache_epoch(s->ctx, s->ds, s->epoch, 0, &fill_epoch));
    sl__state_put(w, c->file != NULL);
    sl__state_put(w, fill_epoch);
    sl__state_put(w, c->pos);
    return c->file ? 0 : sl__stage_save(c->input, w);
}

static const sl__stage_ops cache_file_stage_ops = {cache_file_next, cache_file_cancel,
                                                   cache_file_close, NULL, cache_file_save};

static int open_replay(cache_file_stage *c, uint64_t pos)
{
    int rc = sl_record_reader_open(&c->file, cfp(&c->base)->path, NULL);
    if (rc == 0 && pos > 0)
        rc = sl_record_reader_seek(c->file, pos);
    if (rc)
        return sl__stage_fail_raw(&c->base, rc,
                                  c->file ? sl_record_reader_errmsg(c->file) : cfp(&c->base)->path);
    c->pos = pos;
    return 0;
}

static int cache_file_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                           sl__stage **out)
{
    cache_file_stage *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ERR_NOMEM;
    c->base = (sl__stage){&cache_file_stage_ops, ctx, ds, epoch};
    const cache_file_params *p = ds->params;
    int replaying = -1; /* unknown until the state or the file system says */
    uint64_t pos = 0, fill_epoch = epoch;
    int rc = 0;
    if (st) {
        replaying = sl__state_get(st) != 0;
        fill_epoch = sl__state_get(st);
        pos = sl__state_get(st);
        rc = st->err;
    }
    if (rc == 0)
        rc = sl__ctx_cache_epoch(ctx, ds, fill_epoch, st != NULL, &fill_epoch);
    struct stat sb;
    if (rc == 0 && replaying < 0)
        replaying = stat(p->path, &sb) == 0;
    if (rc == 0 && replaying && stat(p->path, &sb) != 0) {
        /* restored mid-replay without the file (another machine, a cleaned disk): read the
         * input again from the position, at the epoch the file was filled in */
        c->pos = pos;
        rc = sl__stage_open_at(ds->inputs[0], ctx, fill_epoch, pos, &c->input);
    } else if (rc == 0 && replaying) {
        rc = open_replay(c, pos);
    } else if (rc == 0) {
        c->pos = pos;
        rc = sl__stage_open(ds->inputs[0], ctx, fill_epoch, st, &c->input);
        if (rc == 0 && !st && (rc = sl_record_writer_open(&c->out, p->path, NULL)) != 0)
            rc = sl__stage_fail(&c->base, rc, "creating the cache %s: %s", p->path,
                                c->out ? sl_record_writer_errmsg(c->out) : "");
    }
    if (rc) {
        cache_file_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int64_t cache_file_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static void cache_file_free(void *params)
{
    cache_file_params *p = params;
    if (p)
        pthread_mutex_destroy(&p->mu);
    sl_free(p);
}

static const sl__dataset_ops cache_file_ops = {"cache_file", cache_file_open,
                                               cache_file_cardinality, cache_file_free};

int sl_dataset_cache_file(sl_dataset **out, sl_dataset *in, const char *path)
{
    *out = NULL;
    if (!in || !path || !path[0] || strlen(path) >= sizeof((cache_file_params *)0)->path)
        return SL_ERR_INVAL;
    cache_file_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    snprintf(p->path, sizeof p->path, "%s", path);
    pthread_mutex_init(&p->mu, NULL);
    return sl__dataset_create(out, &cache_file_ops, &in, 1, p, "cache(\"%s\")", path);
}
