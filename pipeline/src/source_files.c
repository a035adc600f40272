/*
 * File sources: records(...) over sluice files and tfrecord(...) over TFRecord files.
 *
 * Patterns are expanded when the dataset is built (glob(3), each pattern sorted, a pattern that
 * matches nothing is an error naming it), and every file is opened once then to learn its
 * record count (sluice: from its footer; TFRecord: from its DALI index when every file has
 * one) and its schema (all sluice files must agree). So cardinality is known without a pass,
 * and the stream's element i is a (file, record) pair found by binary search over the prefix
 * counts: these sources are random access, which global_shuffle builds on.
 *
 * Elements: an opaque record is {"record": bytes}; a typed record has one tensor per schema
 * field, named as the field. Tensors view the reader's buffer (no copy) for sluice files; a
 * TFRecord payload is copied once, out of the reader's window.
 *
 * Checkpoints: a counted source saves its position (element index over all files) and a
 * restore seeks straight to it (sluice: the reader's seek; TFRecord: reads by the index for
 * the rest of that file), reading nothing before it. A TFRecord source without indexes saves
 * (file, records read in it) and a restore reads past those records of that one file.
 *
 * A stage keeps the file being read sequentially open, plus one reader per file touched by
 * random access (opened on first use; a dataset of very many files touched at random holds
 * that many descriptors: a bounded cache is future work).
 *
 * I/O (sluice files; pipeline/IO.md): every read goes through sl_io, so io_uring serves it
 * where the kernel allows and SLUICE_IO=pread selects pread(2) for all of them. The
 * sequential cursor reads ahead: a ring of up to RA_DEPTH spans (consecutive chunks, about
 * RA_SPAN_TARGET bytes each, whole chunks) is kept in flight in file order, through the end
 * of the current file into the first chunks of the next one, whose reader is opened early for
 * that. A span's bytes go to the record reader with sl_record_reader_load_chunk, which checks
 * them as its own reads (so errors name file, record, chunk and offset the same way) and
 * serves the records from the span's buffer without a copy. Memory: spans x span bytes, at
 * most max(RA_BYTES, 2 spans), reported to the memory budget. Ring invariant: spans
 * [head, head + live) cover consecutive chunks in file order starting at or before the chunk
 * `next` reads; a span's buffer is rewritten only after its read finished and only when no
 * element or reader holds it (refcount 1), else a fresh buffer replaces it. Random access of
 * one element (`get`) reads through a second sl_io, one read at a time, on pread unless
 * SLUICE_IO=io_uring (random_backend). A batch (`get_batch`, global_shuffle's window) finds
 * every record's span with sl_record_reader_record_span, submits all the reads at once to a
 * third sl_io (SL_IO_AUTO: io_uring unless SLUICE_IO=pread, which runs them in a loop) and
 * builds each element as its reads complete with sl_record_reader_record_from (the checks and
 * messages of sl_record_reader_read); all or nothing, and every read has finished before it
 * returns, so the batch buffer is never written after. The random readers' own reads (header,
 * index) go through the second sl_io as synchronous single reads (read_fn), as the sequential
 * readers' own reads (header, index, a chunk not read ahead) go through the first.
 * TFRecord readers get the same read_fns: their sequential 1 MiB blocks go through the
 * sequential sl_io one at a time (no ring: the kernel's read-ahead works ahead of them) and
 * their random reads through the random one.
 */
#include <assert.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/io.h"
#include "sluice/record.h"
#include "sluice/schema.h"
#include "sluice/tfrecord.h"

typedef enum { KIND_SLUICE, KIND_TFRECORD } file_kind;

/* Read-ahead sizing. One span is one read: whole consecutive chunks up to RA_SPAN_TARGET bytes
 * (a single bigger chunk makes a bigger span), large enough that a read's fixed cost vanishes
 * and that io_uring's queue holds device-sized requests. RA_BYTES bounds the memory of the
 * spans in flight (8 x 1 MiB: enough reads outstanding to keep a disk busy, the cold-cache
 * gain of bench_io is reached at depth 8); at least two spans, so the next read is in flight
 * while the current span is consumed. */
enum {
    RA_DEPTH = 8,
    RA_SPAN_TARGET = 1 << 20,
    RA_BYTES = 8 << 20,
    RA_IO_DEPTH = RA_DEPTH + 1, /* + one synchronous read of a reader's own */
    RANDOM_IO_DEPTH = 1,        /* `get` reads one record (or chunk) at a time */
    /* get_batch: a batch's reads all go to the sl_io at once; this many are in the kernel
     * together (global_shuffle's window of 32 records, plus chunk headers read beside them).
     * Beyond it they wait in the sl_io's FIFO. */
    BATCH_IO_DEPTH = 64,
};

typedef struct files_params {
    file_kind kind;
    size_t nfiles;
    char **paths;       /* (nfiles) */
    char **indexes;     /* (nfiles) TFRecord .idx paths, or NULL when not all files have one */
    uint64_t *starts;   /* (nfiles + 1) prefix counts: file f holds [starts[f], starts[f+1]) */
    int counted;        /* counts known (always for sluice; with indexes for TFRecord) */
    sl_schema *schema;  /* sluice files' common schema, or NULL */
    const char **names; /* (fields) element names: the schema's field names or "record" */
    int nfields;
    uint64_t data_bytes; /* record payload bytes (sluice) or file bytes (TFRecord) in all */
    uint64_t span_bytes; /* sluice: a read-ahead buffer's size (the largest span) */
    unsigned nspans;     /* sluice: read-ahead spans in flight at most */
} files_params;

/* One read-ahead read: chunks [first, first + count) of file `file`, at `offset`. */
typedef struct ra_span {
    sl_io_request req; /* req.user points back here */
    sl_buffer *buf;    /* span_bytes; one reference, the stage's */
    size_t file;
    uint64_t first, count, offset;
    int done; /* req finished (result set) */
} ra_span;

typedef struct files_stage {
    sl__stage base;
    size_t cur;     /* file read by `next` */
    int opened;     /* cur is open */
    uint64_t pos;   /* elements returned by `next` (all files) */
    uint64_t local; /* records returned from file cur */
    int by_index;   /* TFRecord file entered mid-way: `next` reads record `local` by the index */
    sl_record_reader *seq;
    sl_tfrecord_reader *tseq;
    sl_record_reader **ra;    /* (nfiles) random-access readers, opened lazily */
    sl_tfrecord_reader **tra; /* (nfiles) */

    /* Sluice files' I/O (see the top of the file). */
    sl_io *io;           /* sequential reads; opened by the first `next` */
    sl_io *rio;          /* random access; opened by the first `get` */
    sl_io *bio;          /* batched random access; opened by the first get_batch */
    ra_span *spans;      /* (nspans) ring; [head, head + live) issued, in file order */
    unsigned head, live; /* ring position of the oldest span, spans issued */
    size_t plan_file;    /* the next span starts at chunk plan_chunk of plan_file */
    uint64_t plan_chunk;
    sl_record_reader *ahead; /* file cur + 1, opened when read-ahead reaches it, or NULL */
    int ahead_failed;        /* opening it failed: left to `next` to open and report */
    uint64_t loaded_first, loaded_end; /* records of the chunk handed over last (file cur) */
    int sync_done;                     /* the synchronous read of seq_read finished */
} files_stage;

static const files_params *fp(const sl__stage *s)
{
    return s->ds->params;
}

static void free_params(void *params)
{
    files_params *p = params;
    if (!p)
        return;
    for (size_t i = 0; i < p->nfiles; i++) {
        sl_free(p->paths ? p->paths[i] : NULL);
        sl_free(p->indexes ? p->indexes[i] : NULL);
    }
    sl_free(p->paths);
    sl_free(p->indexes);
    sl_free(p->starts);
    sl_free(p->names);
    sl_schema_free(p->schema);
    sl_free(p);
}

/* ---- elements from records ----------------------------------------------------------------- */

static int element_from_sluice(sl__stage *s, const sl_record *rec, const char *path,
                               sl_element *out)
{
    const files_params *p = fp(s);
    if (!p->schema) {
        sl_tensor t;
        const int64_t len = (int64_t)rec->size;
        const size_t off = (size_t)(rec->data - (const uint8_t *)sl_buffer_data(rec->buffer));
        const int rc = sl_tensor_view(&t, SL_DTYPE_BYTES, 1, &len, rec->buffer, off);
        if (rc)
            return sl__stage_fail(s, rc, "%s: record %llu", path, (unsigned long long)rec->index);
        return sl_element_push(out, "record", &t);
    }
    for (int k = 0; k < p->nfields; k++) {
        sl_tensor t;
        const int rc = sl_record_field(p->schema, rec->data, rec->size, k, rec->buffer, &t);
        if (rc) {
            sl_element_release(out);
            return sl__stage_fail(s, rc, "%s: record %llu: field \"%s\"", path,
                                  (unsigned long long)rec->index, p->names[k]);
        }
        sl_element_push(out, p->names[k], &t);
    }
    return 0;
}

static int element_from_bytes(sl__stage *s, const uint8_t *data, size_t size, sl_element *out)
{
    sl_tensor t;
    const int64_t len = (int64_t)size;
    if (sl_tensor_alloc(&t, SL_DTYPE_BYTES, 1, &len))
        return sl__stage_fail(s, SL_ERR_NOMEM, "record of %zu bytes", size);
    memcpy(t.data, data, size);
    return sl_element_push(out, "record", &t);
}

/* ---- sl_io plumbing (sluice files) ---------------------------------------------------------- */

static int open_io(sl__stage *s, sl_io **io, sl_io_backend backend, unsigned depth)
{
    if (*io)
        return 0;
    const sl_io_options o = {.backend = backend, .queue_depth = depth};
    const int rc = sl_io_open(io, &o);
    if (rc == 0)
        return 0;
    const int out = sl__stage_fail(s, rc, "opening the file reader's I/O: %s", sl_io_errmsg(*io));
    sl_io_close(*io);
    *io = NULL;
    return out;
}

/* Takes back finished reads from the sequential sl_io (at least min_complete) and marks their
 * spans done, or the synchronous read (user NULL). Returns 0 or the ring's failure. */
static int take_done(files_stage *f, size_t min_complete)
{
    sl_io_request *done[RA_IO_DEPTH];
    size_t n;
    const int rc = sl_io_wait(f->io, min_complete, done, RA_IO_DEPTH, &n);
    if (rc < 0)
        return rc;
    /* Waiting for a read that is not outstanding would be a bug of this file. */
    assert(rc != SL_EOF || min_complete == 0);
    for (size_t k = 0; k < n; k++) {
        if (done[k]->user)
            ((ra_span *)done[k]->user)->done = 1;
        else
            f->sync_done = 1;
    }
    return 0;
}

/* take_done for the stage's own waits: a ring failure fails the stage. */
static int reap(files_stage *f, size_t min_complete)
{
    const int rc = take_done(f, min_complete);
    return rc < 0 ? sl__stage_fail(&f->base, rc, "%s", sl_io_errmsg(f->io)) : 0;
}

static int read_result(const sl_io_request *q)
{
    if (q->result < 0)
        return (int)q->result;
    return (uint64_t)q->result < q->length ? SL_ERR_TRUNCATED : 0;
}

/* read_fn of the sequential readers: one read through the sequential sl_io, while the
 * read-ahead reads stay in flight beside it. Errors go back to the reader, which names them. */
static int seq_read(void *user, int fd, void *buf, size_t n, uint64_t offset)
{
    files_stage *f = user;
    sl_io_request q = {.fd = fd, .offset = offset, .length = n, .buf = buf};
    f->sync_done = 0;
    int rc = sl_io_submit(f->io, &q, 1);
    while (rc == 0 && !f->sync_done)
        rc = take_done(f, 1);
    /* After a ring failure q's result means nothing; the failure is sticky (IO.md). */
    return rc < 0 ? rc : read_result(&q);
}

/* read_fn of the random-access readers. */
static int random_read(void *user, int fd, void *buf, size_t n, uint64_t offset)
{
    files_stage *f = user;
    sl_io_request q = {.fd = fd, .offset = offset, .length = n, .buf = buf};
    const int rc = sl_io_read_all(f->rio, &q, 1);
    return rc < 0 ? rc : read_result(&q);
}

/* The backend of random access. One read at a time leaves io_uring nothing to overlap, and
 * per read it costs more than pread (bench_io, warm cache, depth 1: 0.71-0.94x of pread), so
 * `get` takes pread unless SLUICE_IO names io_uring; an invalid SLUICE_IO still fails, through
 * sl_io_open. */
static sl_io_backend random_backend(void)
{
    const char *v = getenv("SLUICE_IO");
    const int plain = !v || !*v || strcmp(v, "auto") == 0 || strcmp(v, "pread") == 0;
    return plain ? SL_IO_PREAD : SL_IO_AUTO;
}

static int open_sluice(files_stage *f, size_t file, sl_record_reader **out)
{
    const sl_record_reader_options o = {.read_fn = seq_read, .read_user = f};
    return sl_record_reader_open(out, fp(&f->base)->paths[file], &o);
}

/* ---- read-ahead ------------------------------------------------------------------------------ */

static ra_span *span_at(files_stage *f, unsigned i)
{
    return &f->spans[(f->head + i) % fp(&f->base)->nspans];
}

/* Waits until every issued read finished, then forgets the ring (a seek, or a file the
 * cursor leaves early): the buffers stay for reuse. */
static int ra_drain(files_stage *f)
{
    int rc = 0;
    while (f->io && sl_io_outstanding(f->io) > 0 && rc == 0)
        rc = reap(f, sl_io_outstanding(f->io));
    f->head = 0;
    f->live = 0;
    return rc;
}

/* The reader of file `file` for planning: the sequential one or the next file's. */
static sl_record_reader *plan_reader(files_stage *f, size_t file)
{
    if (file == f->cur)
        return f->seq;
    if (file != f->cur + 1 || f->ahead_failed)
        return NULL;
    if (!f->ahead && open_sluice(f, file, &f->ahead) != 0) {
        /* `next` opens it again when it gets there and reports the failure then. */
        sl_record_reader_close(f->ahead);
        f->ahead = NULL;
        f->ahead_failed = 1;
    }
    return f->ahead;
}

/* Issues reads for the chunks after the last span while the ring has room. */
static int ra_fill(files_stage *f)
{
    const files_params *p = fp(&f->base);
    int queued = 0;
    while (f->live < p->nspans && f->plan_file < p->nfiles) {
        sl_record_reader *r = plan_reader(f, f->plan_file);
        if (!r)
            break;
        const uint64_t nchunks = sl_record_reader_chunk_count(r);
        if (f->plan_chunk >= nchunks) {
            f->plan_file++;
            f->plan_chunk = 0;
            continue;
        }
        /* Whole chunks, contiguous in the file, up to the target (at least one). */
        uint64_t off, len, n = 1, at, clen;
        sl_record_reader_chunk_span(r, f->plan_chunk, &off, &len);
        while (f->plan_chunk + n < nchunks &&
               sl_record_reader_chunk_span(r, f->plan_chunk + n, &at, &clen) == 0 &&
               at == off + len && len + clen <= RA_SPAN_TARGET) {
            len += clen;
            n++;
        }
        ra_span *sp = span_at(f, f->live);
        if (!sp->buf || sl_buffer_refcount(sp->buf) != 1 || sl_buffer_size(sp->buf) < len) {
            /* An element or a reader still holds the old bytes: they stay theirs. */
            sl_buffer_release(sp->buf);
            sp->buf = NULL;
            if (sl_buffer_create(&sp->buf, SL_MAX(p->span_bytes, len)) != 0)
                return sl__stage_fail(&f->base, SL_ERR_NOMEM, "%s: read-ahead buffer",
                                      p->paths[f->plan_file]);
        }
        sp->file = f->plan_file;
        sp->first = f->plan_chunk;
        sp->count = n;
        sp->offset = off;
        sp->done = 0;
        sp->req = (sl_io_request){.fd = sl_record_reader_fd(r),
                                  .offset = off,
                                  .length = (size_t)len,
                                  .buf = sl_buffer_data(sp->buf),
                                  .user = sp};
        sl_io_queue(f->io, &sp->req);
        queued = 1;
        f->live++;
        f->plan_chunk += n;
    }
    if (!queued)
        return 0;
    const int rc = sl_io_submit(f->io, NULL, 0);
    return rc < 0 ? sl__stage_fail(&f->base, rc, "%s", sl_io_errmsg(f->io)) : 0;
}

static int span_holds(const ra_span *sp, size_t file, uint64_t k)
{
    return sp->file == file && k >= sp->first && k - sp->first < sp->count;
}

/* Hands chunk k of the current file to the sequential reader from the read-ahead ring,
 * issuing reads first when the ring does not hold it (the first chunk, or after a seek). */
static int ra_load(files_stage *f, uint64_t k)
{
    unsigned at = 0;
    while (at < f->live && !span_holds(span_at(f, at), f->cur, k))
        at++;
    if (at == f->live) {
        SL_TRY(ra_drain(f));
        f->plan_file = f->cur;
        f->plan_chunk = k;
        SL_TRY(ra_fill(f));
        at = 0;
        if (f->live == 0 || !span_holds(span_at(f, 0), f->cur, k))
            return sl__stage_fail(&f->base, SL_ERR_INVAL, "%s: chunk %llu not read ahead",
                                  fp(&f->base)->paths[f->cur], (unsigned long long)k);
    }
    ra_span *sp = span_at(f, at);
    while (!sp->done)
        SL_TRY(reap(f, 1));
    uint64_t off, len;
    sl_record_reader_chunk_span(f->seq, k, &off, &len);
    const uint64_t within = off - sp->offset;
    int64_t got = sp->req.result;
    if (got >= 0) /* bytes of chunk k among those read */
        got = (uint64_t)got <= within ? 0 : (int64_t)SL_MIN((uint64_t)got - within, len);
    const int rc = sl_record_reader_load_chunk(f->seq, k, sp->buf, (size_t)within, got);
    if (rc)
        return sl__stage_fail_raw(&f->base, rc, sl_record_reader_errmsg(f->seq));
    uint64_t count;
    sl_record_reader_chunk_records(f->seq, k, &f->loaded_first, &count);
    f->loaded_end = f->loaded_first + count;
    /* Spans before this one are consumed (the reader let go of them in load_chunk): their
     * slots take the next reads. */
    if (at > 0) {
        f->head = (f->head + at) % fp(&f->base)->nspans;
        f->live -= at;
    }
    return ra_fill(f);
}

/* ---- sequential ---------------------------------------------------------------------------- */

static void close_seq(files_stage *f)
{
    sl_record_reader_close(f->seq);
    sl_tfrecord_reader_close(f->tseq);
    f->seq = NULL;
    f->tseq = NULL;
    f->opened = 0;
    f->local = 0;
    f->by_index = 0;
    f->loaded_first = f->loaded_end = 0;
}

/* Stops reading ahead: waits for the reads in flight and closes the next file's reader. */
static int ra_stop(files_stage *f)
{
    const int rc = ra_drain(f);
    sl_record_reader_close(f->ahead);
    f->ahead = NULL;
    f->ahead_failed = 0;
    return rc;
}

static int open_seq(files_stage *f)
{
    const files_params *p = fp(&f->base);
    const char *path = p->paths[f->cur];
    int rc;
    if (p->kind == KIND_SLUICE) {
        SL_TRY(open_io(&f->base, &f->io, SL_IO_AUTO, RA_IO_DEPTH));
        sl__stage_note_io(&f->base, sl_io_backend_name(f->io)); /* the profile's io */
        if (!f->spans && !(f->spans = sl_calloc(p->nspans, sizeof *f->spans)))
            return sl__stage_fail(&f->base, SL_ERR_NOMEM, "%s: read-ahead", path);
        /* Read-ahead opened this file already, when it reached it. */
        f->seq = f->ahead;
        f->ahead = NULL;
        f->ahead_failed = 0;
        rc = f->seq ? 0 : open_sluice(f, f->cur, &f->seq);
        if (rc)
            return sl__stage_fail_raw(&f->base, rc,
                                      f->seq ? sl_record_reader_errmsg(f->seq) : path);
    } else {
        /* TFRecord: no read-ahead ring (a record's extent is known only once its length field
         * is read); the reader's 1 MiB blocks go through the same sl_io one at a time. */
        SL_TRY(open_io(&f->base, &f->io, SL_IO_AUTO, RA_IO_DEPTH));
        sl__stage_note_io(&f->base, sl_io_backend_name(f->io)); /* the profile's io */
        const sl_tfrecord_reader_options o = {
            .index_path = f->by_index ? p->indexes[f->cur] : NULL,
            .read_fn = seq_read,
            .read_user = f,
        };
        rc = sl_tfrecord_reader_open(&f->tseq, path, &o);
        if (rc)
            return sl__stage_fail_raw(&f->base, rc,
                                      f->tseq ? sl_tfrecord_reader_errmsg(f->tseq) : path);
    }
    f->opened = 1;
    return 0;
}

static int files_next(sl__stage *s, sl_element *out)
{
    files_stage *f = (files_stage *)s;
    const files_params *p = fp(s);
    while (f->cur < p->nfiles) {
        if (!f->opened)
            SL_TRY(open_seq(f));
        int rc;
        if (p->kind == KIND_SLUICE) {
            uint64_t k; /* a new chunk: hand it over from the read-ahead */
            if ((f->local < f->loaded_first || f->local >= f->loaded_end) &&
                sl_record_reader_chunk_of(f->seq, f->local, &k) == 0)
                SL_TRY(ra_load(f, k));
            sl_record rec;
            rc = sl_record_reader_next(f->seq, &rec);
            if (rc == 0)
                rc = element_from_sluice(s, &rec, p->paths[f->cur], out);
            else if (rc != SL_EOF)
                return sl__stage_fail_raw(s, rc, sl_record_reader_errmsg(f->seq));
        } else {
            sl_tfrecord_record rec;
            if (f->by_index)
                rc = f->local < p->starts[f->cur + 1] - p->starts[f->cur]
                         ? sl_tfrecord_reader_read(f->tseq, f->local, &rec)
                         : SL_EOF;
            else
                rc = sl_tfrecord_reader_next(f->tseq, &rec);
            if (rc == 0)
                rc = element_from_bytes(s, rec.data, rec.size, out);
            else if (rc != SL_EOF)
                return sl__stage_fail_raw(s, rc, sl_tfrecord_reader_errmsg(f->tseq));
        }
        if (rc == 0) {
            f->pos++;
            f->local++;
            return 0;
        }
        if (rc != SL_EOF)
            return rc;
        close_seq(f);
        f->cur++;
    }
    return SL_EOF;
}

/* ---- random access ------------------------------------------------------------------------- */

static size_t file_of(const files_params *p, uint64_t i)
{
    size_t lo = 0, hi = p->nfiles; /* find the last f with starts[f] <= i */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (p->starts[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The random-access reader of sluice file k, opened on first use (its own reads: rio). */
static int random_reader(files_stage *f, size_t k, sl_record_reader **out)
{
    const files_params *p = fp(&f->base);
    int rc;
    SL_TRY(open_io(&f->base, &f->rio, random_backend(), RANDOM_IO_DEPTH));
    const sl_record_reader_options o = {.read_fn = random_read, .read_user = f};
    if (!f->ra[k] && (rc = sl_record_reader_open(&f->ra[k], p->paths[k], &o)) != 0) {
        rc = sl__stage_fail_raw(&f->base, rc,
                                f->ra[k] ? sl_record_reader_errmsg(f->ra[k]) : p->paths[k]);
        sl_record_reader_close(f->ra[k]);
        f->ra[k] = NULL;
        return rc;
    }
    *out = f->ra[k];
    return 0;
}

static int files_get(sl__stage *s, uint64_t i, sl_element *out)
{
    files_stage *f = (files_stage *)s;
    const files_params *p = fp(s);
    if (i >= p->starts[p->nfiles])
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu of %llu", (unsigned long long)i,
                              (unsigned long long)p->starts[p->nfiles]);
    const size_t k = file_of(p, i);
    const uint64_t local = i - p->starts[k];
    int rc;
    if (p->kind == KIND_SLUICE) {
        sl_record_reader *r;
        SL_TRY(random_reader(f, k, &r));
        sl__stage_note_io(s, sl_io_backend_name(f->rio)); /* the profile's io */
        sl_record rec;
        if ((rc = sl_record_reader_read(f->ra[k], local, &rec)) != 0)
            return sl__stage_fail_raw(s, rc, sl_record_reader_errmsg(f->ra[k]));
        return element_from_sluice(s, &rec, p->paths[k], out);
    }
    if (!f->tra[k]) {
        SL_TRY(open_io(s, &f->rio, random_backend(), RANDOM_IO_DEPTH));
        sl__stage_note_io(s, sl_io_backend_name(f->rio)); /* the profile's io */
        const sl_tfrecord_reader_options o = {
            .index_path = p->indexes[k], .read_fn = random_read, .read_user = f};
        if ((rc = sl_tfrecord_reader_open(&f->tra[k], p->paths[k], &o)) != 0) {
            rc = sl__stage_fail_raw(s, rc,
                                    f->tra[k] ? sl_tfrecord_reader_errmsg(f->tra[k]) : p->paths[k]);
            sl_tfrecord_reader_close(f->tra[k]);
            f->tra[k] = NULL;
            return rc;
        }
    }
    sl_tfrecord_record rec;
    if ((rc = sl_tfrecord_reader_read(f->tra[k], local, &rec)) != 0)
        return sl__stage_fail_raw(s, rc, sl_tfrecord_reader_errmsg(f->tra[k]));
    return element_from_bytes(s, rec.data, rec.size, out);
}

/* Test hook (tests/unit/test_global_shuffle_batch.c): the most reads one get_batch had
 * submitted and not yet waited for, i.e. in flight together. Not part of any API. */
extern _Atomic uint64_t sl__files_batch_peak;
_Atomic uint64_t sl__files_batch_peak;

/* One element of a batch: where its bytes are read. */
typedef struct batch_item {
    size_t file;
    uint64_t local;
    sl_record_span span;
    long data, header; /* indices into the requests, or -1 */
    int built;
} batch_item;

/* Waits for every read of the batch still outstanding (the kernel writes into the buffer until
 * then), keeping the first failure. */
static int batch_drain(files_stage *f, int rc)
{
    sl_io_request *done[BATCH_IO_DEPTH];
    size_t nd;
    while (sl_io_outstanding(f->bio) > 0) {
        const int w = sl_io_wait(f->bio, sl_io_outstanding(f->bio), done, BATCH_IO_DEPTH, &nd);
        if (w < 0) {
            if (rc == 0)
                rc = sl__stage_fail(&f->base, w, "%s", sl_io_errmsg(f->bio));
            /* A sticky ring failure: closing waits for the reads the kernel still holds, before
             * the caller frees their buffer; the next batch opens a fresh sl_io. */
            sl_io_close(f->bio);
            f->bio = NULL;
            break;
        }
    }
    return rc;
}

/* Builds element j from its completed reads, and then every later element sharing its read
 * (records of one zstd chunk: decompressed once). */
static int batch_build(files_stage *f, batch_item *it, size_t n, size_t j, sl_io_request *req,
                       sl_buffer *buf, sl_element *out)
{
    const files_params *p = fp(&f->base);
    for (size_t m = j; m < n; m++) {
        if (it[m].built ||
            (m != j && (it[m].data < 0 || it[m].data != it[j].data || it[m].file != it[j].file)))
            continue;
        sl_record_reader *r = f->ra[it[m].file];
        const sl_io_request *d = it[m].data >= 0 ? &req[it[m].data] : NULL;
        const sl_io_request *h = it[m].header >= 0 ? &req[it[m].header] : NULL;
        const uint8_t *base = sl_buffer_data(buf);
        sl_record rec;
        const int rc = sl_record_reader_record_from(
            r, it[m].local, h ? (const uint8_t *)h->buf : NULL, h ? h->result : 0, d ? buf : NULL,
            d ? (size_t)((const uint8_t *)d->buf - base) : 0, d ? d->result : 0, &rec);
        if (rc)
            return sl__stage_fail_raw(&f->base, rc, sl_record_reader_errmsg(r));
        SL_TRY(element_from_sluice(&f->base, &rec, p->paths[it[m].file], &out[m]));
        it[m].built = 1;
    }
    return 0;
}

/* Native batch for sluice files: every record's span found first, then all reads submitted to
 * the batch sl_io at once (io_uring overlaps them; SLUICE_IO=pread runs them in a loop), and
 * each element built as its reads complete. One buffer holds the batch's bytes; raw records'
 * tensors view it. TFRecord files take the element-by-element loop. */
static int files_get_batch(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out)
{
    files_stage *f = (files_stage *)s;
    const files_params *p = fp(s);
    if (p->kind != KIND_SLUICE) {
        for (size_t j = 0; j < n; j++) {
            const int rc = files_get(s, idx[j], &out[j]);
            if (rc) {
                for (size_t k = 0; k < j; k++)
                    sl_element_release(&out[k]);
                return rc;
            }
        }
        return 0;
    }
    if (n == 0)
        return 0;
    SL_TRY(open_io(s, &f->bio, SL_IO_AUTO, BATCH_IO_DEPTH));
    sl__stage_note_io(s, sl_io_backend_name(f->bio)); /* the profile's io: the data's reads */
    batch_item *it = sl_calloc(n, sizeof *it);
    sl_io_request *req = sl_calloc(2 * n, sizeof *req);
    sl_buffer *buf = NULL;
    int rc = it && req ? 0 : sl__stage_fail(s, SL_ERR_NOMEM, "a batch of %zu elements", n);
    /* Spans, and the buffer's layout: reads of one zstd chunk or one chunk header shared. */
    uint64_t bytes = 0;
    size_t nreq = 0;
    for (size_t j = 0; rc == 0 && j < n; j++) {
        if (idx[j] >= p->starts[p->nfiles]) {
            rc = sl__stage_fail(s, SL_ERR_RANGE, "element %llu of %llu", (unsigned long long)idx[j],
                                (unsigned long long)p->starts[p->nfiles]);
            break;
        }
        batch_item *b = &it[j];
        b->file = file_of(p, idx[j]);
        b->local = idx[j] - p->starts[b->file];
        b->data = b->header = -1;
        sl_record_reader *r;
        if ((rc = random_reader(f, b->file, &r)) != 0)
            break;
        if ((rc = sl_record_reader_record_span(r, b->local, &b->span)) != 0) {
            rc = sl__stage_fail_raw(s, rc, sl_record_reader_errmsg(r));
            break;
        }
        for (size_t m = 0; m < j; m++) {
            if (it[m].file != b->file || it[m].span.chunk != b->span.chunk)
                continue;
            if (b->span.whole_chunk && it[m].span.whole_chunk)
                b->data = it[m].data;
            if (b->span.header_length && it[m].header >= 0)
                b->header = it[m].header;
        }
        const int fd = sl_record_reader_fd(r);
        if (b->span.length && b->data < 0) {
            req[nreq] = (sl_io_request){.fd = fd,
                                        .offset = b->span.offset,
                                        .length = b->span.length,
                                        .buf = (void *)(uintptr_t)bytes};
            b->data = (long)nreq++;
            bytes += ((b->span.length + 63) & ~(uint64_t)63);
        }
        if (b->span.header_length && b->header < 0) {
            req[nreq] = (sl_io_request){.fd = fd,
                                        .offset = b->span.header_offset,
                                        .length = b->span.header_length,
                                        .buf = (void *)(uintptr_t)bytes};
            b->header = (long)nreq++;
            bytes += (uint64_t)64;
        }
    }
    if (rc == 0 && sl_buffer_create(&buf, bytes ? bytes : 1) != 0)
        rc = sl__stage_fail(s, SL_ERR_NOMEM, "%llu bytes for a batch of %zu elements",
                            (unsigned long long)bytes, n);
    for (size_t q = 0; rc == 0 && q < nreq; q++) { /* offsets into the buffer become pointers */
        req[q].buf = (uint8_t *)sl_buffer_data(buf) + (uintptr_t)req[q].buf;
        req[q].user = &req[q];
    }
    if (rc == 0 && nreq && (rc = sl_io_submit(f->bio, req, nreq)) != 0)
        rc = sl__stage_fail(s, rc, "%s", sl_io_errmsg(f->bio));
    if (rc == 0) {
        const uint64_t now = sl_io_outstanding(f->bio);
        if (now > atomic_load_explicit(&sl__files_batch_peak, memory_order_relaxed))
            atomic_store_explicit(&sl__files_batch_peak, now, memory_order_relaxed);
    }
    /* Elements in index order of completion: after each wait, build those whose reads are in. */
    char *finished = rc == 0 ? sl_calloc(nreq ? nreq : 1, 1) : NULL;
    if (rc == 0 && !finished)
        rc = sl__stage_fail(s, SL_ERR_NOMEM, "a batch of %zu elements", n);
    size_t built = 0;
    while (rc == 0 && built < n) {
        for (size_t j = 0; rc == 0 && j < n; j++) {
            if (it[j].built || (it[j].data >= 0 && !finished[it[j].data]) ||
                (it[j].header >= 0 && !finished[it[j].header]))
                continue;
            rc = batch_build(f, it, n, j, req, buf, out);
        }
        built = 0;
        for (size_t j = 0; j < n; j++)
            built += (size_t)it[j].built;
        if (rc || built == n)
            break;
        sl_io_request *done[BATCH_IO_DEPTH];
        size_t nd = 0;
        const int w = sl_io_wait(f->bio, 1, done, BATCH_IO_DEPTH, &nd);
        if (w < 0)
            rc = sl__stage_fail(s, w, "%s", sl_io_errmsg(f->bio));
        else if (w == SL_EOF) /* every read in, yet an element unbuilt: a bug of this file */
            rc = sl__stage_fail(s, SL_ERR_INVAL, "batch reads missing");
        for (size_t k = 0; k < nd; k++)
            finished[(sl_io_request *)done[k]->user - req] = 1;
    }
    if (f->bio)
        rc = batch_drain(f, rc);
    if (rc)
        for (size_t j = 0; j < n; j++)
            sl_element_release(&out[j]);
    sl_buffer_release(buf); /* raw elements hold their own references */
    sl_free(finished);
    sl_free(req);
    sl_free(it);
    return rc;
}

static void files_close(sl__stage *s)
{
    files_stage *f = (files_stage *)s;
    const files_params *p = fp(s);
    /* The kernel writes into the spans until their reads complete: sl_io_close waits for
     * them before the buffers go. */
    sl_io_close(f->io);
    sl_io_close(f->rio);
    sl_io_close(f->bio);
    close_seq(f);
    sl_record_reader_close(f->ahead);
    for (size_t i = 0; i < p->nfiles; i++) {
        if (f->ra)
            sl_record_reader_close(f->ra[i]);
        if (f->tra)
            sl_tfrecord_reader_close(f->tra[i]);
    }
    for (unsigned i = 0; f->spans && i < p->nspans; i++)
        sl_buffer_release(f->spans[i].buf);
    sl_free(f->spans);
    sl_free(f->ra);
    sl_free(f->tra);
    sl_free(f);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static int files_save(sl__stage *s, sl__state_writer *w)
{
    files_stage *f = (files_stage *)s;
    if (fp(s)->counted) {
        sl__state_put(w, f->pos);
    } else {
        sl__state_put(w, f->cur);
        sl__state_put(w, f->local);
    }
    return 0;
}

/* Counted sources: `next` continues at element pos without reading what comes before. */
static int files_seek(sl__stage *s, uint64_t pos)
{
    files_stage *f = (files_stage *)s;
    const files_params *p = fp(s);
    if (!p->counted)
        return SL_ERR_UNSUPPORTED;
    if (pos > p->starts[p->nfiles])
        return sl__stage_fail(s, SL_ERR_RANGE, "seeking to element %llu of %llu",
                              (unsigned long long)pos, (unsigned long long)p->starts[p->nfiles]);
    SL_TRY(ra_stop(f));
    close_seq(f);
    f->pos = pos;
    f->cur = pos == p->starts[p->nfiles] ? p->nfiles : file_of(p, pos);
    if (f->cur == p->nfiles || pos == p->starts[f->cur])
        return 0; /* the file opens as usual on the next `next` */
    const uint64_t local = pos - p->starts[f->cur];
    f->by_index = p->kind == KIND_TFRECORD;
    SL_TRY(open_seq(f));
    f->local = local;
    if (p->kind == KIND_SLUICE) {
        const int rc = sl_record_reader_seek(f->seq, local);
        if (rc)
            return sl__stage_fail_raw(s, rc, sl_record_reader_errmsg(f->seq));
    }
    return 0;
}

/* An uncounted TFRecord source resumes in file `cur` by reading past `local` records. */
static int files_restore_uncounted(files_stage *f, uint64_t cur, uint64_t local)
{
    const files_params *p = fp(&f->base);
    if (cur > p->nfiles || (cur == p->nfiles && local > 0))
        return sl__stage_fail(&f->base, SL_ERR_CORRUPT, "checkpoint: file %llu of %zu",
                              (unsigned long long)cur, p->nfiles);
    f->cur = (size_t)cur;
    for (uint64_t i = 0; i < local; i++) {
        if (!f->opened)
            SL_TRY(open_seq(f));
        sl_tfrecord_record rec;
        const int rc = sl_tfrecord_reader_next(f->tseq, &rec);
        if (rc == SL_EOF)
            return sl__stage_fail(&f->base, SL_ERR_CORRUPT,
                                  "checkpoint: %s has fewer than %llu records", p->paths[cur],
                                  (unsigned long long)local);
        if (rc)
            return sl__stage_fail_raw(&f->base, rc, sl_tfrecord_reader_errmsg(f->tseq));
    }
    f->local = local;
    return 0;
}

static const sl__stage_ops files_stage_ops = {files_next, NULL,       files_close,    files_get,
                                              files_save, files_seek, files_get_batch};

static int files_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    const files_params *p = ds->params;
    files_stage *f = sl_calloc(1, sizeof *f);
    if (!f)
        return SL_ERR_NOMEM;
    f->base = (sl__stage){&files_stage_ops, ctx, ds, epoch};
    if (p->counted) {
        f->ra = sl_calloc(p->nfiles ? p->nfiles : 1, sizeof *f->ra);
        f->tra = sl_calloc(p->nfiles ? p->nfiles : 1, sizeof *f->tra);
        if (!f->ra || !f->tra) {
            files_close(&f->base);
            return SL_ERR_NOMEM;
        }
    }
    int rc = 0;
    if (st && p->counted) {
        rc = files_seek(&f->base, sl__state_get(st));
    } else if (st) {
        const uint64_t cur = sl__state_get(st), local = sl__state_get(st);
        rc = st->err ? st->err : files_restore_uncounted(f, cur, local);
    }
    if (rc) {
        files_close(&f->base);
        return rc;
    }
    *out = &f->base;
    return 0;
}

static int64_t files_cardinality(const sl_dataset *ds)
{
    const files_params *p = ds->params;
    return p->counted ? (int64_t)p->starts[p->nfiles] : SL_CARDINALITY_UNKNOWN;
}

static int files_random_access(const sl_dataset *ds)
{
    return ((const files_params *)ds->params)->counted;
}

/* An element is a record of the mean size (unknown for TFRecord files without indexes). */
static int64_t files_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    const files_params *p = ds->params;
    const uint64_t n = p->starts[p->nfiles];
    *elem = p->counted ? (int64_t)(n ? p->data_bytes / n : 0) + SL__ELEMENT_OVERHEAD : -1;
    /* Sluice files: the read-ahead buffers. */
    return p->kind == KIND_SLUICE ? sl__memory_scaled(p->nspans, (int64_t)p->span_bytes) : 0;
}

static const sl__dataset_ops files_ops = {"files",     files_open,          files_cardinality,
                                          free_params, files_random_access, 0,
                                          NULL,        files_memory};

/* ---- building ------------------------------------------------------------------------------ */

static int fail(char *err, size_t errcap, int code, const char *fmt, const char *a, const char *b)
{
    if (err && errcap)
        snprintf(err, errcap, fmt, a, b);
    return code;
}

/* Expands every pattern into p->paths (sorted within a pattern, in pattern order). */
static int expand(files_params *p, const char *const *patterns, size_t npatterns, char *err,
                  size_t errcap)
{
    size_t cap = 0;
    for (size_t i = 0; i < npatterns; i++) {
        glob_t g;
        const int grc = glob(patterns[i], GLOB_ERR, NULL, &g);
        /* GLOB_ABORTED: a directory in the pattern cannot be read (often: does not exist). */
        if (grc == GLOB_NOMATCH || grc == GLOB_ABORTED || (grc == 0 && g.gl_pathc == 0)) {
            if (grc != GLOB_NOMATCH)
                globfree(&g);
            return fail(err, errcap, -ENOENT, "%s: no file matches%s", patterns[i], "");
        }
        if (grc)
            return fail(err, errcap, SL_ERR_INVAL, "%s: cannot expand the pattern%s", patterns[i],
                        "");
        for (size_t k = 0; k < g.gl_pathc; k++) {
            if (p->nfiles == cap) {
                cap = cap ? 2 * cap : 16;
                char **np = sl_realloc(p->paths, cap * sizeof *np);
                if (!np) {
                    globfree(&g);
                    return SL_ERR_NOMEM;
                }
                p->paths = np;
            }
            if (!(p->paths[p->nfiles] = sl_strdup(g.gl_pathv[k]))) {
                globfree(&g);
                return SL_ERR_NOMEM;
            }
            p->nfiles++;
        }
        globfree(&g);
    }
    return 0;
}

static int scan_sluice(files_params *p, char *err, size_t errcap)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        sl_record_reader *r;
        int rc = sl_record_reader_open(&r, p->paths[i], NULL);
        if (rc) {
            fail(err, errcap, rc, "%s%s", r ? sl_record_reader_errmsg(r) : p->paths[i], "");
            sl_record_reader_close(r);
            return rc;
        }
        p->starts[i + 1] = p->starts[i] + sl_record_reader_count(r);
        for (uint64_t k = 0; k < sl_record_reader_chunk_count(r); k++) {
            uint64_t off, len;
            sl_record_reader_chunk_span(r, k, &off, &len);
            p->span_bytes = SL_MAX(p->span_bytes, len);
        }
        sl_record_file_info info;
        sl_record_reader_info(r, &info);
        p->data_bytes += info.payload_bytes;
        const sl_schema *s = sl_record_reader_schema(r);
        if (i == 0 && s) {
            uint8_t buf[1 << 16];
            size_t len;
            rc = sl_schema_serialize(s, buf, sizeof buf, &len);
            if (rc == 0)
                rc = sl_schema_deserialize(&p->schema, buf, len);
        } else if ((s == NULL) != (p->schema == NULL) || (s && !sl_schema_equal(s, p->schema))) {
            rc = fail(err, errcap, SL_ERR_SCHEMA, "%s: its schema differs from %s's", p->paths[i],
                      p->paths[0]);
        }
        sl_record_reader_close(r);
        if (rc)
            return rc;
    }
    /* A span is at most RA_SPAN_TARGET bytes unless one chunk is bigger. */
    p->span_bytes = SL_MAX(p->span_bytes, (uint64_t)RA_SPAN_TARGET);
    p->nspans = (unsigned)SL_MAX(2, SL_MIN((uint64_t)RA_DEPTH, RA_BYTES / p->span_bytes));
    p->counted = 1;
    return 0;
}

/* TFRecord files are counted from their indexes when every file has FILE.idx. */
static int scan_tfrecord(files_params *p, char *err, size_t errcap)
{
    p->indexes = sl_calloc(p->nfiles ? p->nfiles : 1, sizeof *p->indexes);
    if (!p->indexes)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < p->nfiles; i++) {
        char idx[4096];
        snprintf(idx, sizeof idx, "%s.idx", p->paths[i]);
        sl_tfrecord_index_entry *entries;
        uint64_t n;
        char why[512];
        const int rc = sl_tfrecord_index_load(idx, p->paths[i], &entries, &n, why, sizeof why);
        if (rc == -ENOENT) { /* no index: sequential only */
            for (size_t k = 0; k < i; k++) {
                sl_free(p->indexes[k]);
                p->indexes[k] = NULL;
            }
            sl_free(p->indexes);
            p->indexes = NULL;
            return 0;
        }
        if (rc)
            return fail(err, errcap, rc, "%s%s", why, "");
        sl_free(entries);
        if (!(p->indexes[i] = sl_strdup(idx)))
            return SL_ERR_NOMEM;
        p->starts[i + 1] = p->starts[i] + n;
        struct stat sb;
        if (stat(p->paths[i], &sb) == 0)
            p->data_bytes += (uint64_t)sb.st_size;
    }
    p->counted = 1;
    return 0;
}

static int build(sl_dataset **out, file_kind kind, const char *const *patterns, size_t n, char *err,
                 size_t errcap)
{
    *out = NULL;
    if (err && errcap)
        err[0] = '\0';
    if (!patterns || n == 0)
        return fail(err, errcap, SL_ERR_INVAL, "no file given%s%s", "", "");
    files_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->kind = kind;
    int rc = expand(p, patterns, n, err, errcap);
    if (rc == 0 && !(p->starts = sl_calloc(p->nfiles + 1, sizeof *p->starts)))
        rc = SL_ERR_NOMEM;
    if (rc == 0)
        rc = kind == KIND_SLUICE ? scan_sluice(p, err, errcap) : scan_tfrecord(p, err, errcap);
    if (rc == 0) {
        p->nfields = p->schema ? sl_schema_field_count(p->schema) : 1;
        if (!(p->names = sl_calloc((size_t)p->nfields, sizeof *p->names)))
            rc = SL_ERR_NOMEM;
        else
            for (int k = 0; k < p->nfields; k++)
                p->names[k] = p->schema ? sl_schema_field_at(p->schema, k)->name : "record";
    }
    if (rc == 0 && p->nfields > SL_ELEMENT_MAX)
        rc = fail(err, errcap, SL_ERR_UNSUPPORTED,
                  "%s: the schema has more fields than an element holds%s", p->paths[0], "");
    if (rc) {
        free_params(p);
        return rc;
    }
    /* Canonical text: the patterns as given, quoted. */
    char text[SL__TEXT_CAP];
    size_t at =
        (size_t)snprintf(text, sizeof text, "%s(", kind == KIND_SLUICE ? "records" : "tfrecord");
    for (size_t i = 0; i < n && at < sizeof text; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%s\"%s\"", i ? ", " : "", patterns[i]);
    if (at < sizeof text)
        snprintf(text + at, sizeof text - at, ")");
    return sl__dataset_create(out, &files_ops, NULL, 0, p, "%s", text);
}

int sl_dataset_records(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                       size_t errcap)
{
    return build(out, KIND_SLUICE, patterns, n, err, errcap);
}

int sl_dataset_tfrecord(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                        size_t errcap)
{
    return build(out, KIND_TFRECORD, patterns, n, err, errcap);
}
