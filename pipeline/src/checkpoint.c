/*
 * Checkpoints: the state streams stages write and read, and the blob an iterator saves.
 *
 * Blob layout (all integers little-endian):
 *
 *     "SLCK"  u32 version  u64 fingerprint  u64 seed   stage states...   u32 crc32c
 *
 * The fingerprint hashes the pipeline's canonical text with shard()'s arguments left out, so a
 * blob saved by one of N processes restores in one of M. A stage's state is one marker byte
 * (a hash of its kind: a blob saved by another pipeline shape fails at once) followed by
 * what its `save` wrote, its own values first and then its inputs', so `open` reads it in the
 * order it opens its inputs. The crc32c covers everything before it.
 *
 * Nothing here is shared between threads: a writer or reader belongs to one stage call.
 */
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/crc32c.h"

enum { BLOB_VERSION = 1, HEADER_BYTES = 24, TRAILER_BYTES = 4 };
static const char BLOB_MAGIC[4] = {'S', 'L', 'C', 'K'};

static void grow(sl__state_writer *w, size_t need)
{
    if (w->err || w->len + need <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + need)
        cap *= 2;
    uint8_t *buf = sl_realloc(w->buf, cap);
    if (!buf) {
        w->err = SL_ERR_NOMEM;
        return;
    }
    w->buf = buf;
    w->cap = cap;
}

void sl__state_put_bytes(sl__state_writer *w, const void *p, size_t n)
{
    grow(w, n);
    if (w->err || n == 0)
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void sl__state_put(sl__state_writer *w, uint64_t v)
{
    uint8_t b[8];
    sl__store_u64le(b, v);
    sl__state_put_bytes(w, b, sizeof b);
}

uint64_t sl__state_get(sl__state_reader *r)
{
    if (r->err || r->len - r->pos < 8) {
        r->err = SL_ERR_CORRUPT;
        return 0;
    }
    const uint64_t v = sl__load_u64le(r->buf + r->pos);
    r->pos += 8;
    return v;
}

void sl__state_writer_reset(sl__state_writer *w)
{
    w->len = 0;
    w->err = 0;
}

void sl__state_writer_free(sl__state_writer *w)
{
    sl_free(w->buf);
    memset(w, 0, sizeof *w);
}

void sl__state_writer_swap(sl__state_writer *a, sl__state_writer *b)
{
    const sl__state_writer t = *a;
    *a = *b;
    *b = t;
}

static uint8_t kind_marker(const sl_dataset *ds)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = ds->ops->kind; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return (uint8_t)(h ^ h >> 8 ^ h >> 16 ^ h >> 24);
}

int sl__stage_save(sl__stage *s, sl__state_writer *w)
{
    if (!s->ops->save)
        return sl__stage_fail(s, SL_ERR_NOT_CHECKPOINTABLE, "%s", "");
    const uint8_t m = kind_marker(s->ds);
    sl__state_put_bytes(w, &m, 1);
    const int rc = s->ops->save(s, w);
    return rc ? rc : w->err;
}

/* Set while a work-ahead stage snapshots its input on this thread: refusals are returned, not
 * recorded as the iterator's error (sl__stage_fail checks it). */
_Thread_local char *sl__quiet_refusal;
_Thread_local size_t sl__quiet_refusal_cap;

int sl__stage_snapshot(sl__stage *s, sl__state_writer *w, char *why, size_t whycap)
{
    why[0] = '\0';
    sl__quiet_refusal = why;
    sl__quiet_refusal_cap = whycap;
    const int rc = sl__stage_save(s, w);
    sl__quiet_refusal = NULL;
    return rc;
}

int sl__state_check_marker(const sl_dataset *ds, sl__state_reader *st)
{
    if (st->err || st->pos >= st->len || st->buf[st->pos] != kind_marker(ds)) {
        st->err = SL_ERR_CORRUPT;
        return SL_ERR_CORRUPT;
    }
    st->pos++;
    return 0;
}

int sl__dataset_checkpointable(const sl_dataset *ds)
{
    if (ds->ops->checkpointable && !ds->ops->checkpointable(ds))
        return 0;
    for (int i = 0; i < ds->ninputs; i++)
        if (!sl__dataset_checkpointable(ds->inputs[i]))
            return 0;
    return 1;
}

static uint64_t fingerprint_node(const sl_dataset *ds, uint64_t h)
{
    /* shard(n, i) counts as "shard": the blob stays valid when the process count changes. */
    const char *text = strcmp(ds->ops->kind, "shard") == 0 ? "shard" : ds->text;
    for (const char *p = text; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull; /* FNV-1a 64 */
    h = (h ^ (uint64_t)ds->ninputs) * 1099511628211ull;
    for (int i = 0; i < ds->ninputs; i++)
        h = fingerprint_node(ds->inputs[i], h);
    return h;
}

uint64_t sl__dataset_fingerprint(const sl_dataset *ds)
{
    return fingerprint_node(ds, 14695981039346656037ull);
}

int sl__checkpoint_encode(sl__stage *top, const sl_dataset *ds, uint64_t seed, uint8_t **blob,
                          size_t *len)
{
    *blob = NULL;
    *len = 0;
    sl__state_writer w = {0};
    uint8_t head[HEADER_BYTES];
    memcpy(head, BLOB_MAGIC, 4);
    sl__store_u32le(head + 4, BLOB_VERSION);
    sl__store_u64le(head + 8, sl__dataset_fingerprint(ds));
    sl__store_u64le(head + 16, seed);
    sl__state_put_bytes(&w, head, sizeof head);
    int rc = sl__stage_save(top, &w);
    if (rc == 0) {
        uint8_t crc[TRAILER_BYTES];
        sl__store_u32le(crc, sl_crc32c(0, w.buf, w.len));
        sl__state_put_bytes(&w, crc, sizeof crc);
        rc = w.err;
    }
    if (rc) {
        sl__state_writer_free(&w);
        return rc;
    }
    *blob = w.buf;
    *len = w.len;
    return 0;
}

int sl__checkpoint_decode(const sl_dataset *ds, uint64_t seed, const uint8_t *blob, size_t len,
                          sl__state_reader *st, sl_errmsg *err)
{
    if (!blob || len < HEADER_BYTES + TRAILER_BYTES || memcmp(blob, BLOB_MAGIC, 4) != 0)
        return sl__errmsg_set(err, SL_ERR_FORMAT, "checkpoint: not a sluice checkpoint blob");
    if (sl__load_u32le(blob + len - TRAILER_BYTES) != sl_crc32c(0, blob, len - TRAILER_BYTES))
        return sl__errmsg_set(err, SL_ERR_CORRUPT, "checkpoint: crc32c mismatch over %zu bytes",
                              len);
    if (sl__load_u32le(blob + 4) != BLOB_VERSION)
        return sl__errmsg_set(err, SL_ERR_VERSION, "checkpoint: version %u (this build reads %u)",
                              sl__load_u32le(blob + 4), BLOB_VERSION);
    if (sl__load_u64le(blob + 8) != sl__dataset_fingerprint(ds))
        return sl__errmsg_set(err, SL_ERR_INVAL,
                              "checkpoint: saved from a different pipeline than this one");
    if (sl__load_u64le(blob + 16) != seed)
        return sl__errmsg_set(
            err, SL_ERR_INVAL, "checkpoint: saved with seed %llu, the iterator has seed %llu",
            (unsigned long long)sl__load_u64le(blob + 16), (unsigned long long)seed);
    *st = (sl__state_reader){blob + HEADER_BYTES, len - HEADER_BYTES - TRAILER_BYTES, 0, 0};
    return 0;
}
