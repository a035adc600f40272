/*
 * The .sluice reader: open-time validation of header, footer and index, sequential reads in
 * large spans of whole chunks, and O(1) random access. Also holds the layout decoders that
 * writer and checker share (record_format_internal.h).
 *
 * Invariants: after a successful open, the index's chunk entries are contiguous from the end
 * of the header to the index, their record counts add up to the footer's, every size is
 * bounded by the file size (and, for zstd bodies, by the densest possible zstd expansion), and
 * the fingerprint matches; record entries are bounds-checked against their chunk when used.
 * Records are handed out as pointers into an sl_buffer the reader owns; a buffer a caller has
 * retained (refcount > 1) is never written again: the reader allocates a fresh one instead.
 * With verification on, a chunk's header is compared with the index's copy and its payload
 * crc32c checked once each time the chunk is entered by `next`; a random read of a raw record
 * checks that record's own crc32c (and, the first time its chunk is touched, the chunk header
 * against the index).
 *
 * Buffers, sized from the file and reused while no caller retains them: `span` holds up to
 * SPAN_TARGET bytes of consecutive chunks read with one pread (more when one chunk is bigger);
 * `zbody` holds the last decompressed zstd chunk (a cache for random reads into the same
 * chunk); `rbuf` holds one raw record read at random; `cbuf` is scratch for compressed bytes
 * read at random and is never handed out. `loaned` is a caller's buffer handed over with
 * sl_record_reader_load_chunk (one reference, held while the cursor serves a raw chunk from
 * it): a caller with its own read-ahead reads chunks and the reader only checks them, through
 * the same serve_chunk() that checks its own spans, so both paths fail with the same message.
 * Likewise for random reads the caller issues (sl_record_reader_record_span/_record_from, a
 * batch in flight at once): the bytes go through the same check_raw_header(),
 * check_raw_record() and load_zstd_chunk() as sl_record_reader_read's own; a raw record is
 * then handed out from the caller's buffer, which the caller's element retains.
 * Every read goes through reader_pread (pread(2), or the caller's read_fn), except in mapped
 * mode (options.map): there the whole file is mapped read-only once at open, as `map`, an
 * sl_buffer whose last release unmaps it, and chunks and raw records are checked and handed
 * out in place, and `span` is not used.
 *
 * Decompress-ahead (options.threads > 1, files with zstd chunks, `next` only): a ring of
 * 2 x threads slots, each holding one zstd chunk's stored bytes, its decompressed body and a
 * decompression context, covers the window [cursor chunk, cursor chunk + slots). Entering a
 * zstd chunk frees the slots outside the window, gets the chunk's slot done and queues the
 * window's other zstd chunks on a pool of threads - 1 threads. A slot's state (free, queued,
 * running, done) is the only thing shared, under ahead_mu: a queued slot runs on whichever
 * thread claims it first, pool thread or cursor, and a cursor whose chunk is running elsewhere
 * runs the next queued one itself instead of waiting. A slot's work reads only what open made
 * read-only (fd, index, dictionary, mapping) and reports through a chunk_fault, filled by the
 * same checks as the cursor's own path, so errors and messages do not depend on threads. Raw
 * chunks of such a file go through the span path as before.
 *
 * Threading: one thread at a time per reader (its decompress-ahead threads are its own);
 * readers share nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record_format_internal.h"
#include "sluice/alloc.h"
#include "sluice/crc32c.h"
#include "sluice/record.h"
#include "sluice/thread_pool.h"

/* Sequential read size: large enough that per-read overhead vanishes against the copy out of
 * the page cache (reads of 1 MiB and up reach the read() ceiling), small enough that a caller
 * holding one record does not pin much. Measured (bench_records, 3 alternating runs each):
 * 2 MiB spans 79-95% of the read() ceiling, 4 MiB 70-73%, 1 MiB 68-78%; a bare read() + crc32c
 * loop, the most a copying, checking reader can do, sits at 74-75%. */
enum { SPAN_TARGET = 2 << 20 };
#define NO_CHUNK UINT64_MAX

/* ---- shared layout helpers -------------------------------------------------------------- */

int sl__header_decode(const uint8_t *p, uint64_t file_size, sl__file_header *h, const char **why)
{
    memset(h, 0, sizeof *h);
    *why = NULL;
    if (memcmp(p, SL__FILE_MAGIC, 8) != 0) {
        *why = "bad magic (not a .sluice file)";
        return SL_ERR_FORMAT;
    }
    h->major = sl__load_u16le(p + 8);
    h->minor = sl__load_u16le(p + 10);
    h->flags = sl__load_u32le(p + 12);
    h->size = sl__load_u32le(p + 16);
    h->schema_size = sl__load_u32le(p + 20);
    h->dict_size = sl__load_u32le(p + 24);
    if (h->major != SL__VERSION_MAJOR)
        return SL_ERR_VERSION;
    const uint64_t need =
        (uint64_t)SL__HEADER_FIXED + h->schema_size + h->dict_size + SL__HEADER_TRAILER;
    if (h->size % SL__ALIGN || h->size < need || h->size > SL__HEADER_MAX) {
        *why = "header size field inconsistent";
        return SL_ERR_CORRUPT;
    }
    if ((uint64_t)h->size > file_size) {
        *why = "header extends past the end of the file";
        return SL_ERR_TRUNCATED;
    }
    if (!(h->flags & SL__HEADER_HAS_SCHEMA) != !h->schema_size ||
        !(h->flags & SL__HEADER_HAS_DICT) != !h->dict_size) {
        *why = "header flags disagree with the schema/dictionary sizes";
        return SL_ERR_CORRUPT;
    }
    return 0;
}

int sl__header_check_crc(const uint8_t *p, sl__file_header *h, const char **why)
{
    const uint32_t want = sl__load_u32le(p + h->size - SL__HEADER_TRAILER);
    h->crc = want;
    if (sl_crc32c(0, p, h->size - SL__HEADER_TRAILER) != want) {
        *why = "header crc32c mismatch";
        return SL_ERR_CORRUPT;
    }
    return 0;
}

void sl__chunk_header_encode(uint8_t *p, sl__chunk_header *c)
{
    memset(p, 0, SL__CHUNK_HEADER);
    sl__store_u32le(p + 0, SL__CHUNK_MAGIC);
    p[4] = c->codec;
    p[5] = c->flags;
    sl__store_u32le(p + 8, c->count);
    sl__store_u64le(p + 16, c->first_record);
    sl__store_u64le(p + 24, c->raw_size);
    sl__store_u64le(p + 32, c->stored_size);
    sl__store_u32le(p + 40, c->payload_crc);
    c->header_crc = sl_crc32c(0, p, 44);
    sl__store_u32le(p + 44, c->header_crc);
}

int sl__chunk_header_decode(const uint8_t *p, sl__chunk_header *c, const char **why)
{
    memset(c, 0, sizeof *c);
    if (sl__load_u32le(p) != SL__CHUNK_MAGIC) {
        *why = "bad chunk magic";
        return SL_ERR_CORRUPT;
    }
    c->header_crc = sl__load_u32le(p + 44);
    if (sl_crc32c(0, p, 44) != c->header_crc) {
        *why = "chunk header crc32c mismatch";
        return SL_ERR_CORRUPT;
    }
    c->codec = p[4];
    c->flags = p[5];
    c->count = sl__load_u32le(p + 8);
    c->first_record = sl__load_u64le(p + 16);
    c->raw_size = sl__load_u64le(p + 24);
    c->stored_size = sl__load_u64le(p + 32);
    c->payload_crc = sl__load_u32le(p + 40);
    const uint64_t min_body = (uint64_t)c->count * (SL__ALIGN + 4);
    if (c->codec > SL__CODEC_ZSTD) {
        *why = "unknown chunk codec";
        return SL_ERR_UNSUPPORTED;
    }
    if (c->count == 0 || c->raw_size % SL__ALIGN || c->raw_size < min_body ||
        c->raw_size > SL__CHUNK_BODY_MAX || c->stored_size == 0 ||
        (c->codec == SL__CODEC_RAW && (c->stored_size != c->raw_size || c->flags)) ||
        (c->codec == SL__CODEC_ZSTD && c->raw_size / SL__ZSTD_MAX_RATIO > c->stored_size)) {
        *why = "chunk header sizes inconsistent";
        return SL_ERR_CORRUPT;
    }
    return 0;
}

void sl__footer_encode(uint8_t *p, const sl__footer *f)
{
    memset(p, 0, SL__FOOTER);
    sl__store_u64le(p + 0, f->index_offset);
    sl__store_u64le(p + 8, f->index_size);
    sl__store_u64le(p + 16, f->records);
    sl__store_u64le(p + 24, f->chunks);
    sl__store_u64le(p + 32, f->fingerprint);
    sl__store_u32le(p + 40, f->index_crc);
    sl__store_u32le(p + 44, f->header_crc);
    sl__store_u32le(p + 52, sl_crc32c(0, p, SL__FOOTER_CRC_COVERS));
    memcpy(p + 56, SL__FOOTER_MAGIC, 8);
}

int sl__footer_decode(const uint8_t *p, uint64_t file_size, sl__footer *f, const char **why)
{
    memset(f, 0, sizeof *f);
    if (memcmp(p + 56, SL__FOOTER_MAGIC, 8) != 0) {
        *why = "footer magic missing (file truncated, unfinished, or has trailing bytes)";
        return SL_ERR_TRUNCATED;
    }
    if (sl_crc32c(0, p, SL__FOOTER_CRC_COVERS) != sl__load_u32le(p + 52)) {
        *why = "footer crc32c mismatch";
        return SL_ERR_CORRUPT;
    }
    f->index_offset = sl__load_u64le(p + 0);
    f->index_size = sl__load_u64le(p + 8);
    f->records = sl__load_u64le(p + 16);
    f->chunks = sl__load_u64le(p + 24);
    f->fingerprint = sl__load_u64le(p + 32);
    f->index_crc = sl__load_u32le(p + 40);
    f->header_crc = sl__load_u32le(p + 44);
    if (file_size < SL__FOOTER || f->index_offset > file_size - SL__FOOTER ||
        f->index_size != file_size - SL__FOOTER - f->index_offset) {
        *why = "footer's index position does not match the file size";
        return SL_ERR_STALE_INDEX;
    }
    if (f->index_offset % SL__ALIGN || f->index_size < SL__INDEX_HEADER ||
        f->chunks > f->index_size / SL__CHUNK_ENTRY ||
        f->records > f->index_size / SL__RECORD_ENTRY) {
        *why = "footer counts inconsistent with the index size";
        return SL_ERR_CORRUPT;
    }
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t sl__fingerprint(uint32_t header_crc, uint64_t data_end, uint64_t records,
                         const sl__chunk_entry *chunks, uint64_t nchunks)
{
    uint8_t b[28];
    sl__store_u32le(b, header_crc);
    sl__store_u64le(b + 4, data_end);
    sl__store_u64le(b + 12, records);
    sl__store_u64le(b + 20, nchunks);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, b, sizeof b);
    for (uint64_t k = 0; k < nchunks; k++) {
        sl__store_u32le(b, chunks[k].header_crc);
        h = fnv1a(h, b, 4);
    }
    return h;
}

int sl__body_walk(const uint8_t *body, uint64_t raw_size, uint32_t count, int check_crcs,
                  sl__body_record_fn fn, void *user, uint32_t *bad_record, const char **why)
{
    *bad_record = 0;
    if (raw_size < sl__align8((uint64_t)count * 4)) {
        *why = "chunk body too small for its record table";
        return SL_ERR_CORRUPT;
    }
    const uint64_t table = sl__body_table_offset(raw_size, count);
    uint64_t off = 0;
    for (uint32_t k = 0; k < count; k++) {
        const uint32_t len = sl__load_u32le(body + table + 4 * (uint64_t)k);
        if ((uint64_t)len + SL__RECORD_CRC > table - off) {
            *bad_record = k;
            *why = "record length table points past the record region";
            return SL_ERR_CORRUPT;
        }
        if (check_crcs && sl__record_crc(body + off, len) != sl__load_u32le(body + off + len)) {
            *bad_record = k;
            *why = "record crc32c mismatch";
            return SL_ERR_CORRUPT;
        }
        if (fn) {
            const int rc = fn(user, k, off, len);
            if (rc)
                return rc;
        }
        off = sl__align8(off + len + SL__RECORD_CRC);
        if (off > table) {
            *bad_record = k;
            *why = "record padding runs into the length table";
            return SL_ERR_CORRUPT;
        }
    }
    if (off != table) {
        *bad_record = count ? count - 1 : 0;
        *why = "record region size disagrees with the length table";
        return SL_ERR_CORRUPT;
    }
    return 0;
}

static void *zstd_alloc(void *opaque, size_t size)
{
    void *p = sl_malloc(size);
    if (!p && opaque)
        ((sl__zstd_alloc *)opaque)->failed = 1;
    return p;
}

static void zstd_free(void *opaque, void *p)
{
    sl_free(p);
}

ZSTD_customMem sl__zstd_mem(sl__zstd_alloc *state)
{
    return (ZSTD_customMem){zstd_alloc, zstd_free, state};
}

int sl__pread_full(int fd, void *buf, size_t n, uint64_t offset)
{
    uint8_t *p = buf;
    while (n) {
        const ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (got == 0)
            return SL_ERR_TRUNCATED;
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

int sl__write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        const ssize_t put = write(fd, p, n);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

/* ---- the reader ------------------------------------------------------------------------- */

/* What is wrong with a chunk's bytes, as fail_at will report it: the checks below fill one so
 * that a decompress-ahead task (another thread) and the cursor's own path fail with the same
 * message, the cursor reporting the task's finding when it reaches the chunk. */
typedef struct chunk_fault {
    int code; /* 0: none */
    uint64_t offset;
    char what[160];
} chunk_fault;

enum { AHEAD_FREE, AHEAD_QUEUED, AHEAD_RUNNING, AHEAD_DONE };

/* One zstd chunk being decompressed ahead of the cursor (or the cursor's own chunk). `state`
 * is guarded by the reader's ahead_mu; the rest belongs to whoever set it RUNNING until it is
 * DONE, then to the cursor. */
typedef struct ahead_slot {
    struct sl_record_reader *r;
    uint64_t chunk;
    int state;
    uint8_t *in; /* the chunk's stored bytes as read (not in mapped mode) */
    size_t in_cap;
    sl_buffer *body; /* its decompressed body; handed out like zbody */
    ZSTD_DCtx *dctx;
    sl__zstd_alloc zalloc;
    chunk_fault fault; /* code < 0: the chunk failed a check */
} ahead_slot;

struct sl_record_reader {
    int fd;
    char *path;
    int verify;
    sl_record_read_fn read_fn; /* NULL: pread(2) */
    void *read_user;
    sl_errmsg err;
    uint64_t file_size;
    sl__file_header hdr;
    sl__footer foot;
    sl_schema *schema;

    sl__zstd_alloc zalloc;
    ZSTD_DDict *ddict; /* NULL when the header has no dictionary */
    ZSTD_DCtx *dctx;   /* created at the first zstd chunk */

    uint8_t *index; /* the whole index as read; chunks and records point into it */
    const sl__chunk_entry *chunks;
    const sl__record_entry *records;
    uint64_t nchunks, nrecords;
    uint8_t *header_checked; /* bit per chunk: header compared with the index (random reads) */

    /* Sequential cursor: the next record, and the chunk it is being served from. */
    uint64_t pos;
    uint64_t cur_chunk; /* NO_CHUNK when none is loaded */
    const uint8_t *cur_body;
    sl_buffer *cur_owner; /* span or zbody; not an extra reference */

    sl_buffer *loaned; /* a caller's chunk bytes (load_chunk); one reference, or NULL */
    sl_buffer *span;   /* raw bytes of chunks [span_first, span_first + span_count) */
    uint64_t span_first, span_count, span_offset;

    sl_buffer *zbody; /* decompressed body of chunk zchunk */
    uint64_t zchunk;

    sl_buffer *rbuf; /* one raw record (+ crc) read at random */
    uint8_t *cbuf;   /* scratch for compressed chunks read at random */
    size_t cbuf_cap;

    sl_buffer *map; /* mapped mode: the whole file, read-only; NULL otherwise */

    /* Decompress-ahead: NULL pool when off. */
    sl_thread_pool *pool;
    ahead_slot *ahead;
    int nahead;
    int ahead_sync; /* ahead_mu and ahead_cv were initialised */
    pthread_mutex_t ahead_mu;
    pthread_cond_t ahead_cv; /* a slot became done */
};

static int ahead_open(sl_record_reader *r, int threads);
static void ahead_close(sl_record_reader *r);

/* Ensures *b is a buffer of at least `size` bytes that nobody else references. */
static int own_buffer(sl_buffer **b, size_t size)
{
    if (*b && sl_buffer_refcount(*b) == 1 && sl_buffer_size(*b) >= size)
        return 0;
    sl_buffer_release(*b);
    *b = NULL;
    return sl_buffer_create(b, size ? size : 1);
}

static int reader_pread(sl_record_reader *r, void *buf, size_t n, uint64_t offset)
{
    return r->read_fn ? r->read_fn(r->read_user, r->fd, buf, n, offset)
                      : sl__pread_full(r->fd, buf, n, offset);
}

static int fail_open(sl_record_reader *r, int code, uint64_t offset, const char *what)
{
    return sl__errmsg_set(&r->err, code, "%s: %s at offset %" PRIu64, r->path, what, offset);
}

static int load_header(sl_record_reader *r)
{
    uint8_t fixed[SL__HEADER_FIXED];
    const char *why = NULL;
    if (r->file_size < SL__HEADER_FIXED) {
        /* Too short for a header: a cut-off sluice file if what is there matches the magic. */
        const size_t n = (size_t)SL_MIN(r->file_size, 8);
        int rc = reader_pread(r, fixed, n, 0);
        if (rc < 0)
            return fail_open(r, rc, 0, "reading the header");
        rc = n && !memcmp(fixed, SL__FILE_MAGIC, n) ? SL_ERR_TRUNCATED : SL_ERR_FORMAT;
        return sl__errmsg_set(&r->err, rc,
                              "%s: file is %" PRIu64 " bytes, shorter than a header at offset 0",
                              r->path, r->file_size);
    }
    int rc = reader_pread(r, fixed, sizeof fixed, 0);
    if (rc < 0)
        return fail_open(r, rc, 0, "reading the header");
    rc = sl__header_decode(fixed, r->file_size, &r->hdr, &why);
    if (rc == SL_ERR_VERSION)
        return sl__errmsg_set(&r->err, rc,
                              "%s: file has format version %u.%u, this reader supports major "
                              "version %d (up to %d.%d)",
                              r->path, r->hdr.major, r->hdr.minor, SL__VERSION_MAJOR,
                              SL__VERSION_MAJOR, SL__VERSION_MINOR);
    if (rc < 0)
        return fail_open(r, rc, 0, why);
    uint8_t *h = sl_malloc(r->hdr.size);
    if (!h)
        return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s: header", r->path);
    rc = reader_pread(r, h, r->hdr.size, 0);
    if (rc < 0) {
        sl_free(h);
        return fail_open(r, rc, 0, "reading the header");
    }
    rc = sl__header_check_crc(h, &r->hdr, &why);
    if (rc < 0) {
        sl_free(h);
        return fail_open(r, rc, r->hdr.size - SL__HEADER_TRAILER, why);
    }
    if (r->hdr.schema_size) {
        rc = sl_schema_deserialize(&r->schema, h + SL__HEADER_FIXED, r->hdr.schema_size);
        if (rc < 0) {
            sl_free(h);
            if (rc != SL_ERR_NOMEM)
                rc = SL_ERR_CORRUPT;
            return fail_open(r, rc, SL__HEADER_FIXED, "schema in the header is not valid");
        }
    }
    if (r->hdr.dict_size) {
        r->ddict =
            ZSTD_createDDict_advanced(h + SL__HEADER_FIXED + r->hdr.schema_size, r->hdr.dict_size,
                                      ZSTD_dlm_byCopy, ZSTD_dct_auto, sl__zstd_mem(&r->zalloc));
        if (!r->ddict) {
            sl_free(h);
            if (r->zalloc.failed)
                return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s: zstd dictionary", r->path);
            return fail_open(r, SL_ERR_CORRUPT, SL__HEADER_FIXED + r->hdr.schema_size,
                             "zstd dictionary in the header is not valid");
        }
    }
    sl_free(h);
    return 0;
}

static int load_index(sl_record_reader *r)
{
    const char *why = NULL;
    uint8_t fb[SL__FOOTER];
    if (r->file_size < (uint64_t)r->hdr.size + SL__FOOTER)
        return fail_open(r, SL_ERR_TRUNCATED, r->file_size,
                         "file ends before the footer (truncated or unfinished)");
    const uint64_t foot_off = r->file_size - SL__FOOTER;
    int rc = reader_pread(r, fb, sizeof fb, foot_off);
    if (rc < 0)
        return fail_open(r, rc, foot_off, "reading the footer");
    rc = sl__footer_decode(fb, r->file_size, &r->foot, &why);
    if (rc < 0)
        return fail_open(r, rc, foot_off, why);
    if (r->foot.header_crc != r->hdr.crc)
        return fail_open(r, SL_ERR_STALE_INDEX, foot_off,
                         "footer belongs to a different header (header crc32c differs)");
    if (r->foot.index_offset < r->hdr.size)
        return fail_open(r, SL_ERR_STALE_INDEX, foot_off, "index offset inside the header");

    /* The index is bounded by the file size (footer check), so this allocation is too. */
    r->index = sl_malloc(r->foot.index_size);
    if (!r->index)
        return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s: index of %" PRIu64 " bytes", r->path,
                              r->foot.index_size);
    rc = reader_pread(r, r->index, r->foot.index_size, r->foot.index_offset);
    if (rc < 0)
        return fail_open(r, rc, r->foot.index_offset, "reading the index");
    if (r->verify && sl_crc32c(0, r->index, r->foot.index_size) != r->foot.index_crc)
        return fail_open(r, SL_ERR_CORRUPT, r->foot.index_offset, "index crc32c mismatch");
    const uint8_t *ih = r->index;
    const uint16_t cesz = sl__load_u16le(ih + 4), resz = sl__load_u16le(ih + 6);
    r->nchunks = sl__load_u64le(ih + 8);
    r->nrecords = sl__load_u64le(ih + 16);
    if (sl__load_u32le(ih) != SL__INDEX_MAGIC)
        return fail_open(r, SL_ERR_CORRUPT, r->foot.index_offset, "bad index magic");
    /* Entry sizes are recorded so that a later major version can change them; this reader
     * maps entries onto structs, so it accepts exactly the version-1 sizes (FORMAT.md). */
    if (cesz != SL__CHUNK_ENTRY || resz != SL__RECORD_ENTRY)
        return fail_open(r, SL_ERR_UNSUPPORTED, r->foot.index_offset,
                         "index entry sizes not supported by this reader");
    if (r->nchunks != r->foot.chunks || r->nrecords != r->foot.records)
        return fail_open(r, SL_ERR_STALE_INDEX, r->foot.index_offset,
                         "index counts differ from the footer's");
    if (SL__INDEX_HEADER + r->nchunks * SL__CHUNK_ENTRY + r->nrecords * SL__RECORD_ENTRY !=
        r->foot.index_size)
        return fail_open(r, SL_ERR_CORRUPT, r->foot.index_offset,
                         "index size disagrees with its counts");
    r->chunks = (const sl__chunk_entry *)(r->index + SL__INDEX_HEADER);
    r->records =
        (const sl__record_entry *)(r->index + SL__INDEX_HEADER + r->nchunks * SL__CHUNK_ENTRY);

    /* Chunk entries tile [header end, index offset) in order and their counts add up. */
    uint64_t at = r->hdr.size, first = 0;
    for (uint64_t k = 0; k < r->nchunks; k++) {
        const sl__chunk_entry *c = &r->chunks[k];
        const uint64_t where = r->foot.index_offset + SL__INDEX_HEADER + k * SL__CHUNK_ENTRY;
        char what[128];
        if (c->offset != at || c->stored_size > r->foot.index_offset - at ||
            sl__chunk_span(c->stored_size) > r->foot.index_offset - at) {
            snprintf(what, sizeof what,
                     "index entry of chunk %" PRIu64 " does not match the chunk layout", k);
            return fail_open(r, SL_ERR_STALE_INDEX, where, what);
        }
        if (c->first_record != first || c->count == 0 || c->count > r->nrecords - first ||
            c->codec > SL__CODEC_ZSTD || c->raw_size % SL__ALIGN ||
            c->raw_size < (uint64_t)c->count * (SL__ALIGN + 4) ||
            c->raw_size > SL__CHUNK_BODY_MAX ||
            (c->codec == SL__CODEC_RAW && (c->raw_size != c->stored_size || c->flags)) ||
            (c->codec == SL__CODEC_ZSTD && c->raw_size / SL__ZSTD_MAX_RATIO > c->stored_size) ||
            ((c->flags & SL__CHUNK_USES_DICT) && !r->ddict)) {
            snprintf(what, sizeof what, "index entry of chunk %" PRIu64 " is inconsistent", k);
            return fail_open(r, SL_ERR_CORRUPT, where, what);
        }
        at += sl__chunk_span(c->stored_size);
        first += c->count;
    }
    if (at != r->foot.index_offset)
        return fail_open(r, SL_ERR_STALE_INDEX, r->foot.index_offset,
                         "chunks described by the index do not end where the index starts");
    if (first != r->nrecords)
        return fail_open(r, SL_ERR_CORRUPT, r->foot.index_offset,
                         "chunk record counts do not add up to the record count");
    if (sl__fingerprint(r->hdr.crc, r->foot.index_offset, r->nrecords, r->chunks, r->nchunks) !=
        r->foot.fingerprint)
        return fail_open(r, SL_ERR_STALE_INDEX, foot_off,
                         "fingerprint does not match the index and header");
    r->header_checked = sl_calloc(r->nchunks / 8 + 1, 1);
    if (!r->header_checked)
        return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s: index", r->path);
    return 0;
}

static void unmap_file(void *user, void *data)
{
    munmap(data, (size_t)(uintptr_t)user);
}

/* Mapped mode: the whole file, read-only, owned by r->map (records handed out retain it). */
static int map_file(sl_record_reader *r)
{
    if (r->file_size > SIZE_MAX)
        return sl__errmsg_set(&r->err, SL_ERR_TOO_LARGE, "%s: too large to map", r->path);
    const size_t n = (size_t)r->file_size;
    void *p = mmap(NULL, n, PROT_READ, MAP_SHARED, r->fd, 0);
    if (p == MAP_FAILED)
        return sl__errmsg_set(&r->err, -errno, "%s: mmap of %zu bytes", r->path, n);
    const int rc = sl_buffer_wrap(&r->map, p, n, unmap_file, (void *)(uintptr_t)n);
    if (rc < 0) {
        munmap(p, n);
        return sl__errmsg_set(&r->err, rc, "%s: mapping", r->path);
    }
    return 0;
}

int sl_record_reader_open(sl_record_reader **out, const char *path,
                          const sl_record_reader_options *opts)
{
    *out = NULL;
    sl_record_reader *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->fd = -1;
    r->cur_chunk = NO_CHUNK;
    r->zchunk = NO_CHUNK;
    r->verify = !(opts && opts->skip_verify);
    r->read_fn = opts ? opts->read_fn : NULL;
    r->read_user = opts ? opts->read_user : NULL;
    r->path = sl_strdup(path ? path : "");
    if (!r->path) {
        sl_free(r);
        return SL_ERR_NOMEM;
    }
    *out = r;
    if (!path)
        return sl__errmsg_set(&r->err, SL_ERR_INVAL, "record reader: no path");
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return sl__errmsg_set(&r->err, -errno, "%s: open", path);
    struct stat st;
    if (fstat(r->fd, &st) < 0)
        return sl__errmsg_set(&r->err, -errno, "%s: stat", path);
    if (!S_ISREG(st.st_mode))
        return sl__errmsg_set(&r->err, SL_ERR_FORMAT, "%s: not a regular file", path);
    r->file_size = (uint64_t)st.st_size;
    if (opts && opts->map && r->read_fn)
        return sl__errmsg_set(&r->err, SL_ERR_INVAL,
                              "%s: a mapped reader cannot also route reads through read_fn", path);
    if (opts && (opts->threads < 0 || opts->threads > 256))
        return sl__errmsg_set(&r->err, SL_ERR_INVAL, "%s: threads %d outside 0..256", path,
                              opts->threads);
    if (opts && opts->threads > 1 && r->read_fn)
        return sl__errmsg_set(&r->err, SL_ERR_INVAL,
                              "%s: decompression threads cannot route reads through read_fn",
                              path);
    SL_TRY(load_header(r));
    SL_TRY(load_index(r));
    /* Tell the kernel the file is read front to back: a larger read-ahead window. */
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (opts && opts->map)
        SL_TRY(map_file(r));
    if (opts)
        SL_TRY(ahead_open(r, opts->threads));
    return 0;
}

void sl_record_reader_close(sl_record_reader *r)
{
    if (!r)
        return;
    ahead_close(r); /* first: its threads read fd, index and mapping */
    if (r->fd >= 0)
        close(r->fd);
    sl_schema_free(r->schema);
    ZSTD_freeDDict(r->ddict);
    ZSTD_freeDCtx(r->dctx);
    sl_free(r->index);
    sl_free(r->header_checked);
    sl_buffer_release(r->loaned);
    sl_buffer_release(r->span);
    sl_buffer_release(r->zbody);
    sl_buffer_release(r->rbuf);
    sl_buffer_release(r->map);
    sl_free(r->cbuf);
    sl_free(r->path);
    sl_free(r);
}

const char *sl_record_reader_errmsg(const sl_record_reader *r)
{
    return r ? r->err.text : "out of memory";
}

uint64_t sl_record_reader_count(const sl_record_reader *r)
{
    return r->nrecords;
}

const sl_schema *sl_record_reader_schema(const sl_record_reader *r)
{
    return r->schema;
}

void sl_record_reader_info(const sl_record_reader *r, sl_record_file_info *info)
{
    memset(info, 0, sizeof *info);
    info->version_major = r->hdr.major;
    info->version_minor = r->hdr.minor;
    info->records = r->nrecords;
    info->chunks = r->nchunks;
    info->file_bytes = r->file_size;
    info->fingerprint = r->foot.fingerprint;
    info->has_dict = r->hdr.dict_size != 0;
    for (uint64_t k = 0; k < r->nchunks; k++) {
        info->chunks_zstd += r->chunks[k].codec == SL__CODEC_ZSTD;
        info->stored_bytes += r->chunks[k].stored_size;
    }
    for (uint64_t i = 0; i < r->nrecords; i++)
        info->payload_bytes += r->records[i].length;
}

/* ---- chunk loading ---------------------------------------------------------------------- */

static int fail_at(sl_record_reader *r, int code, uint64_t record, uint64_t chunk, uint64_t offset,
                   const char *what)
{
    return sl__errmsg_set(&r->err, code,
                          "%s: record %" PRIu64 " (chunk %" PRIu64 ") at offset %" PRIu64 ": %s",
                          r->path, record, chunk, offset, what);
}

static int set_fault(chunk_fault *f, int code, uint64_t offset, const char *what)
{
    f->code = code;
    f->offset = offset;
    snprintf(f->what, sizeof f->what, "%s", what);
    return code;
}

static int report_fault(sl_record_reader *r, const chunk_fault *f, uint64_t record, uint64_t k)
{
    return fail_at(r, f->code, record, k, f->offset, f->what);
}

/* Compares a chunk header read from the file with the index's entry for it. */
static int chunk_header_fault(const sl_record_reader *r, uint64_t k, const uint8_t *p,
                              chunk_fault *f)
{
    const sl__chunk_entry *e = &r->chunks[k];
    sl__chunk_header c;
    const char *why = NULL;
    const int rc = sl__chunk_header_decode(p, &c, &why);
    if (rc < 0)
        return set_fault(f, rc, e->offset, why);
    if (c.header_crc != e->header_crc || c.payload_crc != e->payload_crc || c.codec != e->codec ||
        c.flags != e->flags || c.count != e->count || c.first_record != e->first_record ||
        c.raw_size != e->raw_size || c.stored_size != e->stored_size)
        return set_fault(f, SL_ERR_STALE_INDEX, e->offset,
                         "chunk header differs from the index's copy");
    return 0;
}

static int check_chunk_header(sl_record_reader *r, uint64_t k, const uint8_t *p, uint64_t record)
{
    chunk_fault f;
    return chunk_header_fault(r, k, p, &f) < 0 ? report_fault(r, &f, record, k) : 0;
}

/* Chunk k's stored bytes at p (header, then payload) as they came from the file: with
 * verification on, the header against the index and the payload's crc32c. */
static int stored_chunk_fault(const sl_record_reader *r, uint64_t k, const uint8_t *p,
                              chunk_fault *f)
{
    const sl__chunk_entry *e = &r->chunks[k];
    if (!r->verify)
        return 0;
    SL_TRY(chunk_header_fault(r, k, p, f));
    if (sl_crc32c(0, p + SL__CHUNK_HEADER, e->stored_size) != e->payload_crc)
        return set_fault(f, SL_ERR_CORRUPT, e->offset + SL__CHUNK_HEADER,
                         "chunk payload crc32c mismatch");
    return 0;
}

/* Decompresses chunk k's stored payload at src into dst (raw_size bytes) with dctx. */
static int zstd_body_fault(const sl_record_reader *r, uint64_t k, const uint8_t *src,
                           ZSTD_DCtx *dctx, void *dst, chunk_fault *f)
{
    const sl__chunk_entry *e = &r->chunks[k];
    const uint64_t payload_off = e->offset + SL__CHUNK_HEADER;
    const size_t got =
        (e->flags & SL__CHUNK_USES_DICT)
            ? ZSTD_decompress_usingDDict(dctx, dst, e->raw_size, src, e->stored_size, r->ddict)
            : ZSTD_decompressDCtx(dctx, dst, e->raw_size, src, e->stored_size);
    if (ZSTD_isError(got)) {
        if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation)
            return set_fault(f, SL_ERR_NOMEM, payload_off, "zstd");
        char what[160];
        snprintf(what, sizeof what, "zstd: %s", ZSTD_getErrorName(got));
        return set_fault(f, SL_ERR_CORRUPT, payload_off, what);
    }
    if (got != e->raw_size)
        return set_fault(f, SL_ERR_CORRUPT, payload_off,
                         "decompressed size differs from the chunk header's");
    return 0;
}

/* Whether chunk k's frame can hold its body at all (before any buffer is sized for it). */
static int zstd_bound_fault(const sl_record_reader *r, uint64_t k, const uint8_t *src,
                            chunk_fault *f)
{
    const sl__chunk_entry *e = &r->chunks[k];
    const unsigned long long bound = ZSTD_decompressBound(src, e->stored_size);
    if (bound == ZSTD_CONTENTSIZE_ERROR || bound < e->raw_size)
        return set_fault(f, SL_ERR_CORRUPT, e->offset + SL__CHUNK_HEADER,
                         "zstd frame cannot hold the chunk's body");
    return 0;
}

/* Decompresses the stored payload of chunk k into zbody (a fresh buffer when a caller still
 * holds the old one). */
static int decompress_chunk(sl_record_reader *r, uint64_t k, const uint8_t *src, uint64_t record)
{
    const sl__chunk_entry *e = &r->chunks[k];
    const uint64_t payload_off = e->offset + SL__CHUNK_HEADER;
    chunk_fault f;
    if (zstd_bound_fault(r, k, src, &f) < 0)
        return report_fault(r, &f, record, k);
    if (!r->dctx) {
        r->dctx = ZSTD_createDCtx_advanced(sl__zstd_mem(&r->zalloc));
        if (!r->dctx)
            return fail_at(r, SL_ERR_NOMEM, record, k, payload_off, "zstd context");
    }
    r->zchunk = NO_CHUNK;
    if (r->cur_owner == r->zbody) { /* the sequential cursor loses its body */
        r->cur_chunk = NO_CHUNK;
        r->cur_owner = NULL;
    }
    int rc = own_buffer(&r->zbody, e->raw_size);
    if (rc < 0)
        return fail_at(r, rc, record, k, payload_off, "chunk body buffer");
    if (zstd_body_fault(r, k, src, r->dctx, sl_buffer_data(r->zbody), &f) < 0)
        return report_fault(r, &f, record, k);
    r->zchunk = k;
    return 0;
}

static void mark_header_checked(sl_record_reader *r, uint64_t k)
{
    r->header_checked[k / 8] |= (uint8_t)(1u << (k % 8));
}

/* Checks chunk k's bytes at p (its header, then its payload) as they came from the file and
 * makes k the sequential cursor's chunk; `owner` holds p. Decompresses zstd chunks. */
static int serve_chunk(sl_record_reader *r, uint64_t k, const uint8_t *p, sl_buffer *owner,
                       uint64_t record)
{
    const sl__chunk_entry *e = &r->chunks[k];
    chunk_fault f;
    if (stored_chunk_fault(r, k, p, &f) < 0)
        return report_fault(r, &f, record, k);
    if (r->verify)
        mark_header_checked(r, k);
    if (e->codec == SL__CODEC_ZSTD) {
        if (r->zchunk != k)
            SL_TRY(decompress_chunk(r, k, p + SL__CHUNK_HEADER, record));
        r->cur_body = sl_buffer_data(r->zbody);
        r->cur_owner = r->zbody;
    } else {
        r->cur_body = p + SL__CHUNK_HEADER;
        r->cur_owner = owner;
    }
    r->cur_chunk = k;
    return 0;
}

/* ---- decompress-ahead (options.threads > 1) ---------------------------------------------- */

/* Runs slot s's chunk: reads its stored bytes (or finds them in the mapping), checks them as
 * serve_chunk does and decompresses the body. Touches only the slot and the reader's
 * read-only parts (fd, index, dictionary, mapping), so it runs on any thread. */
static void ahead_run(ahead_slot *s)
{
    const sl_record_reader *r = s->r;
    const uint64_t k = s->chunk;
    const sl__chunk_entry *e = &r->chunks[k];
    chunk_fault *f = &s->fault;
    f->code = 0;
    const uint8_t *p;
    if (r->map) {
        p = (const uint8_t *)sl_buffer_data(r->map) + e->offset;
    } else {
        const uint64_t bytes = sl__chunk_span(e->stored_size);
        if (bytes > s->in_cap) {
            uint8_t *nb = sl_malloc(bytes);
            if (!nb) {
                set_fault(f, SL_ERR_NOMEM, e->offset, "read buffer");
                return;
            }
            sl_free(s->in);
            s->in = nb;
            s->in_cap = bytes;
        }
        const int rc = sl__pread_full(r->fd, s->in, bytes, e->offset);
        if (rc < 0) {
            set_fault(f, rc, e->offset, "reading chunks");
            return;
        }
        p = s->in;
    }
    if (stored_chunk_fault(r, k, p, f) < 0 || zstd_bound_fault(r, k, p + SL__CHUNK_HEADER, f) < 0)
        return;
    const uint64_t payload_off = e->offset + SL__CHUNK_HEADER;
    if (!s->dctx) {
        s->dctx = ZSTD_createDCtx_advanced(sl__zstd_mem(&s->zalloc));
        if (!s->dctx) {
            set_fault(f, SL_ERR_NOMEM, payload_off, "zstd context");
            return;
        }
    }
    const int rc = own_buffer(&s->body, e->raw_size);
    if (rc < 0) {
        set_fault(f, rc, payload_off, "chunk body buffer");
        return;
    }
    zstd_body_fault(r, k, p + SL__CHUNK_HEADER, s->dctx, sl_buffer_data(s->body), f);
}

/* Runs a queued slot on the calling thread (a pool thread or the cursor's), with ahead_mu held
 * on entry and on return. */
static void ahead_run_here(sl_record_reader *r, ahead_slot *s)
{
    s->state = AHEAD_RUNNING;
    pthread_mutex_unlock(&r->ahead_mu);
    ahead_run(s);
    pthread_mutex_lock(&r->ahead_mu);
    s->state = AHEAD_DONE;
}

/* A pool task: runs its slot unless the cursor claimed it first (or released it). Which chunk
 * runs is the slot's at the moment of the claim, so a task left over from a released slot
 * that was reused does the new job, and the new job's own task finds nothing to do. */
static void ahead_task(void *arg)
{
    ahead_slot *s = arg;
    sl_record_reader *r = s->r;
    pthread_mutex_lock(&r->ahead_mu);
    if (s->state == AHEAD_QUEUED) {
        ahead_run_here(r, s);
        pthread_cond_broadcast(&r->ahead_cv);
    }
    pthread_mutex_unlock(&r->ahead_mu);
}

static ahead_slot *ahead_find(sl_record_reader *r, uint64_t k)
{
    for (int j = 0; j < r->nahead; j++)
        if (r->ahead[j].state != AHEAD_FREE && r->ahead[j].chunk == k)
            return &r->ahead[j];
    return NULL;
}

/* A free slot; the caller knows one exists (the window holds at most nahead chunks). */
static ahead_slot *ahead_free_slot(sl_record_reader *r)
{
    for (int j = 0;; j++)
        if (r->ahead[j].state == AHEAD_FREE)
            return &r->ahead[j];
}

/* The queued slot of the lowest chunk, or NULL. */
static ahead_slot *ahead_first_queued(sl_record_reader *r)
{
    ahead_slot *best = NULL;
    for (int j = 0; j < r->nahead; j++)
        if (r->ahead[j].state == AHEAD_QUEUED && (!best || r->ahead[j].chunk < best->chunk))
            best = &r->ahead[j];
    return best;
}

/* Makes zstd chunk k the cursor's chunk through the slots: frees the slots outside the window
 * [k, k + nahead) (waiting for running ones), gets k done (running it here when no pool
 * thread has started it; while a pool thread runs it, running the next queued chunk here
 * instead of waiting idle), then queues the window's other zstd chunks. */
static int ahead_enter(sl_record_reader *r, uint64_t k, uint64_t record)
{
    pthread_mutex_lock(&r->ahead_mu);
    for (int j = 0; j < r->nahead; j++) {
        ahead_slot *s = &r->ahead[j];
        if (s->state == AHEAD_FREE || (s->chunk >= k && s->chunk - k < (uint64_t)r->nahead))
            continue;
        while (s->state == AHEAD_RUNNING)
            pthread_cond_wait(&r->ahead_cv, &r->ahead_mu);
        s->state = AHEAD_FREE;
    }
    ahead_slot *mine = ahead_find(r, k);
    if (!mine) {
        mine = ahead_free_slot(r);
        mine->chunk = k;
        mine->state = AHEAD_QUEUED;
    }
    while (mine->state != AHEAD_DONE) {
        ahead_slot *s = mine->state == AHEAD_QUEUED ? mine : ahead_first_queued(r);
        if (s)
            ahead_run_here(r, s);
        else
            pthread_cond_wait(&r->ahead_cv, &r->ahead_mu);
    }
    for (uint64_t j = k + 1; j < r->nchunks && j - k < (uint64_t)r->nahead; j++) {
        if (r->chunks[j].codec != SL__CODEC_ZSTD || ahead_find(r, j))
            continue;
        ahead_slot *s = ahead_free_slot(r);
        s->chunk = j;
        s->state = AHEAD_QUEUED;
        if (sl_thread_pool_submit(r->pool, ahead_task, s) < 0)
            break; /* never after open; the slot stays queued and the cursor runs it */
    }
    pthread_mutex_unlock(&r->ahead_mu);
    if (mine->fault.code < 0)
        return report_fault(r, &mine->fault, record, k);
    if (r->verify)
        mark_header_checked(r, k);
    r->cur_body = sl_buffer_data(mine->body);
    r->cur_owner = mine->body;
    r->cur_chunk = k;
    return 0;
}

/* Starts the pool and slots when the options ask for threads and the file has zstd chunks. */
static int ahead_open(sl_record_reader *r, int threads)
{
    uint64_t zstd = 0;
    for (uint64_t k = 0; k < r->nchunks; k++)
        zstd += r->chunks[k].codec == SL__CODEC_ZSTD;
    if (threads < 2 || zstd < 2)
        return 0;
    r->ahead = sl_calloc((size_t)(2 * threads), sizeof *r->ahead);
    if (!r->ahead)
        return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s: decompress-ahead slots", r->path);
    r->nahead = 2 * threads;
    for (int j = 0; j < r->nahead; j++)
        r->ahead[j].r = r;
    pthread_mutex_init(&r->ahead_mu, NULL);
    pthread_cond_init(&r->ahead_cv, NULL);
    r->ahead_sync = 1;
    const int rc = sl_thread_pool_open(&r->pool, threads - 1, "sl-unzstd");
    if (rc < 0)
        return sl__errmsg_set(&r->err, rc, "%s: decompression threads", r->path);
    return 0;
}

static void ahead_close(sl_record_reader *r)
{
    sl_thread_pool_close(r->pool); /* waits for running tasks; queued ones are dropped */
    for (int j = 0; j < r->nahead; j++) {
        sl_free(r->ahead[j].in);
        sl_buffer_release(r->ahead[j].body);
        ZSTD_freeDCtx(r->ahead[j].dctx);
    }
    sl_free(r->ahead);
    if (r->ahead_sync) {
        pthread_mutex_destroy(&r->ahead_mu);
        pthread_cond_destroy(&r->ahead_cv);
    }
}

static void drop_loan(sl_record_reader *r)
{
    sl_buffer_release(r->loaned);
    r->loaned = NULL;
}

/* Makes chunk k the sequential cursor's chunk: reads a span starting there unless the current
 * span holds it, then serves it. */
static int enter_chunk(sl_record_reader *r, uint64_t k, uint64_t record)
{
    const sl__chunk_entry *e = &r->chunks[k];
    r->cur_chunk = NO_CHUNK;
    r->cur_owner = NULL;
    drop_loan(r);
    if (r->pool && e->codec == SL__CODEC_ZSTD)
        return ahead_enter(r, k, record);
    if (r->map) /* in place: the kernel's read-around on faults reads a cold file ahead */
        return serve_chunk(r, k, (const uint8_t *)sl_buffer_data(r->map) + e->offset, r->map,
                           record);
    if (!r->span || k < r->span_first || k >= r->span_first + r->span_count) {
        /* Consecutive chunks up to SPAN_TARGET bytes (at least chunk k), one pread. */
        uint64_t n = 1, bytes = sl__chunk_span(e->stored_size);
        while (k + n < r->nchunks &&
               bytes + sl__chunk_span(r->chunks[k + n].stored_size) <= SPAN_TARGET) {
            bytes += sl__chunk_span(r->chunks[k + n].stored_size);
            n++;
        }
        r->span_count = 0;
        int rc = own_buffer(&r->span, bytes);
        if (rc < 0)
            return fail_at(r, rc, record, k, e->offset, "read buffer");
        rc = reader_pread(r, sl_buffer_data(r->span), bytes, e->offset);
        if (rc < 0)
            return fail_at(r, rc, record, k, e->offset, "reading chunks");
        r->span_first = k;
        r->span_count = n;
        r->span_offset = e->offset;
    }
    const uint8_t *p = (const uint8_t *)sl_buffer_data(r->span) + (e->offset - r->span_offset);
    return serve_chunk(r, k, p, r->span, record);
}

/* The index entry of record i, checked against its chunk so that it can be dereferenced. */
static int record_entry(sl_record_reader *r, uint64_t i, const sl__record_entry **out)
{
    const sl__record_entry *e = &r->records[i];
    const uint64_t where = r->foot.index_offset + SL__INDEX_HEADER + r->nchunks * SL__CHUNK_ENTRY +
                           i * SL__RECORD_ENTRY;
    if (e->chunk >= r->nchunks)
        return fail_at(r, SL_ERR_CORRUPT, i, e->chunk, where, "index entry names no chunk");
    const sl__chunk_entry *c = &r->chunks[e->chunk];
    const uint64_t table = sl__body_table_offset(c->raw_size, c->count);
    if (i < c->first_record || i - c->first_record >= c->count || e->body_offset % SL__ALIGN ||
        e->body_offset > table || (uint64_t)e->length + SL__RECORD_CRC > table - e->body_offset)
        return fail_at(r, SL_ERR_CORRUPT, i, e->chunk, where, "index entry does not fit its chunk");
    *out = e;
    return 0;
}

static void hand_out(sl_record *rec, const uint8_t *data, const sl__record_entry *e, uint64_t i,
                     sl_buffer *owner)
{
    rec->data = data;
    rec->size = e->length;
    rec->index = i;
    rec->buffer = owner;
}

int sl_record_reader_next(sl_record_reader *r, sl_record *rec)
{
    if (r->pos >= r->nrecords)
        return SL_EOF;
    const uint64_t i = r->pos;
    const sl__record_entry *e = NULL;
    SL_TRY(record_entry(r, i, &e));
    if (r->cur_chunk != e->chunk)
        SL_TRY(enter_chunk(r, e->chunk, i));
    hand_out(rec, r->cur_body + e->body_offset, e, i, r->cur_owner);
    r->pos = i + 1;
    return 0;
}

int sl_record_reader_seek(sl_record_reader *r, uint64_t i)
{
    if (i > r->nrecords)
        return sl__errmsg_set(&r->err, SL_ERR_RANGE, "%s: seek to record %" PRIu64 " of %" PRIu64,
                              r->path, i, r->nrecords);
    r->pos = i;
    return 0;
}

/* A read's outcome as the reader's own reads report it: 0 when all `want` bytes came. */
static int read_outcome(int64_t got, uint64_t want)
{
    if (got < 0)
        return got < INT32_MIN ? -EIO : (int)got;
    return (uint64_t)got < want ? SL_ERR_TRUNCATED : 0;
}

static int header_checked(const sl_record_reader *r, uint64_t k)
{
    return (r->header_checked[k / 8] >> (k % 8)) & 1u;
}

/* Raw chunk of record i: binds the chunk to the index once before its records are trusted.
 * `h` is the chunk header as the caller read it (h_got: what that read returned), or NULL to
 * read it here. */
static int check_raw_header(sl_record_reader *r, uint64_t i, uint64_t k, const uint8_t *h,
                            int64_t h_got)
{
    if (!r->verify || header_checked(r, k))
        return 0;
    const sl__chunk_entry *c = &r->chunks[k];
    uint8_t own[SL__CHUNK_HEADER];
    int rc = 0;
    if (r->map) {
        h = (const uint8_t *)sl_buffer_data(r->map) + c->offset;
    } else if (!h) {
        rc = reader_pread(r, own, sizeof own, c->offset);
        h = own;
    } else {
        rc = read_outcome(h_got, SL__CHUNK_HEADER);
    }
    if (rc < 0)
        return fail_at(r, rc, i, k, c->offset, "reading chunk header");
    SL_TRY(check_chunk_header(r, k, h, i));
    mark_header_checked(r, k);
    return 0;
}

/* Record i's stored bytes (the record, then its crc32c) at p, as read from offset off. */
static int check_raw_record(sl_record_reader *r, uint64_t i, const sl__record_entry *e,
                            const uint8_t *p, uint64_t off)
{
    if (r->verify && sl__record_crc(p, e->length) != sl__load_u32le(p + e->length))
        return fail_at(r, SL_ERR_CORRUPT, i, e->chunk, off, "record crc32c mismatch");
    return 0;
}

/* Zstd chunk k's stored bytes (header, payload) at src, read for record i: checked like
 * `next` checks them, then decompressed into zbody. */
static int load_zstd_chunk(sl_record_reader *r, uint64_t i, uint64_t k, const uint8_t *src)
{
    chunk_fault f;
    if (stored_chunk_fault(r, k, src, &f) < 0)
        return report_fault(r, &f, i, k);
    return decompress_chunk(r, k, src + SL__CHUNK_HEADER, i);
}

static uint64_t raw_record_offset(const sl_record_reader *r, const sl__record_entry *e)
{
    return r->chunks[e->chunk].offset + SL__CHUNK_HEADER + e->body_offset;
}

static int read_raw_record(sl_record_reader *r, uint64_t i, const sl__record_entry *e,
                           sl_record *rec)
{
    const uint64_t off = raw_record_offset(r, e);
    SL_TRY(check_raw_header(r, i, e->chunk, NULL, 0));
    const uint8_t *p = r->map ? (const uint8_t *)sl_buffer_data(r->map) + off : NULL;
    sl_buffer *owner = r->map;
    if (!r->map) {
        const size_t n = (size_t)e->length + SL__RECORD_CRC;
        int rc = own_buffer(&r->rbuf, n);
        if (rc < 0)
            return fail_at(r, rc, i, e->chunk, off, "record buffer");
        rc = reader_pread(r, sl_buffer_data(r->rbuf), n, off);
        if (rc < 0)
            return fail_at(r, rc, i, e->chunk, off, "reading record");
        p = sl_buffer_data(r->rbuf);
        owner = r->rbuf;
    }
    SL_TRY(check_raw_record(r, i, e, p, off));
    hand_out(rec, p, e, i, owner);
    return 0;
}

static int read_zstd_record(sl_record_reader *r, uint64_t i, const sl__record_entry *e,
                            sl_record *rec)
{
    const uint64_t k = e->chunk;
    const sl__chunk_entry *c = &r->chunks[k];
    if (r->zchunk != k) {
        const uint64_t bytes = sl__chunk_span(c->stored_size);
        const uint8_t *src = r->map ? (const uint8_t *)sl_buffer_data(r->map) + c->offset : NULL;
        if (!src) {
            if (bytes > r->cbuf_cap) {
                uint8_t *nb = sl_malloc(bytes);
                if (!nb)
                    return fail_at(r, SL_ERR_NOMEM, i, k, c->offset, "chunk buffer");
                sl_free(r->cbuf);
                r->cbuf = nb;
                r->cbuf_cap = bytes;
            }
            int rc = reader_pread(r, r->cbuf, bytes, c->offset);
            if (rc < 0)
                return fail_at(r, rc, i, k, c->offset, "reading chunk");
            src = r->cbuf;
        }
        SL_TRY(load_zstd_chunk(r, i, k, src));
    }
    hand_out(rec, (const uint8_t *)sl_buffer_data(r->zbody) + e->body_offset, e, i, r->zbody);
    return 0;
}

int sl_record_reader_read(sl_record_reader *r, uint64_t i, sl_record *rec)
{
    if (i >= r->nrecords)
        return sl__errmsg_set(&r->err, SL_ERR_RANGE,
                              "%s: record %" PRIu64 " requested, file has %" PRIu64, r->path, i,
                              r->nrecords);
    const sl__record_entry *e = NULL;
    SL_TRY(record_entry(r, i, &e));
    if (r->cur_chunk == e->chunk) { /* already verified and in memory */
        hand_out(rec, r->cur_body + e->body_offset, e, i, r->cur_owner);
        return 0;
    }
    if (r->chunks[e->chunk].codec == SL__CODEC_ZSTD)
        return read_zstd_record(r, i, e, rec);
    return read_raw_record(r, i, e, rec);
}

/* ---- reads the caller issues ------------------------------------------------------------ */

uint64_t sl_record_reader_chunk_count(const sl_record_reader *r)
{
    return r->nchunks;
}

int sl_record_reader_chunk_of(const sl_record_reader *r, uint64_t i, uint64_t *chunk)
{
    if (i >= r->nrecords)
        return SL_ERR_RANGE;
    /* Open checked that the chunk entries tile the records in order, but a record entry's
     * chunk number is only checked when used: take the chunk from the chunk table. */
    uint64_t lo = 0, hi = r->nchunks; /* the last chunk whose first record is <= i */
    while (hi - lo > 1) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (r->chunks[mid].first_record <= i)
            lo = mid;
        else
            hi = mid;
    }
    *chunk = lo;
    return 0;
}

int sl_record_reader_chunk_records(const sl_record_reader *r, uint64_t k, uint64_t *first,
                                   uint64_t *count)
{
    if (k >= r->nchunks)
        return SL_ERR_RANGE;
    *first = r->chunks[k].first_record;
    *count = r->chunks[k].count;
    return 0;
}

int sl_record_reader_chunk_span(const sl_record_reader *r, uint64_t k, uint64_t *offset,
                                uint64_t *length)
{
    if (k >= r->nchunks)
        return SL_ERR_RANGE;
    *offset = r->chunks[k].offset;
    *length = sl__chunk_span(r->chunks[k].stored_size);
    return 0;
}

int sl_record_reader_fd(const sl_record_reader *r)
{
    return r->fd;
}

int sl_record_reader_load_chunk(sl_record_reader *r, uint64_t k, sl_buffer *buf, size_t at,
                                int64_t got)
{
    if (k >= r->nchunks)
        return sl__errmsg_set(&r->err, SL_ERR_RANGE,
                              "%s: chunk %" PRIu64 " handed over, file has %" PRIu64, r->path, k,
                              r->nchunks);
    const sl__chunk_entry *e = &r->chunks[k];
    /* The record `next` would have been reading when it met this failure itself. */
    const uint64_t record =
        r->pos >= e->first_record && r->pos - e->first_record < e->count ? r->pos : e->first_record;
    const uint64_t length = sl__chunk_span(e->stored_size);
    r->cur_chunk = NO_CHUNK;
    r->cur_owner = NULL;
    drop_loan(r);
    if (got < 0)
        return fail_at(r, got < INT32_MIN ? -EIO : (int)got, record, k, e->offset,
                       "reading chunks");
    if ((uint64_t)got < length)
        return fail_at(r, SL_ERR_TRUNCATED, record, k, e->offset, "reading chunks");
    if (!buf || at > sl_buffer_size(buf) || length > sl_buffer_size(buf) - at)
        return fail_at(r, SL_ERR_INVAL, record, k, e->offset,
                       "chunk bytes handed over lie outside their buffer");
    r->loaned = sl_buffer_retain(buf);
    const int rc = serve_chunk(r, k, (const uint8_t *)sl_buffer_data(buf) + at, buf, record);
    if (rc < 0 || e->codec != SL__CODEC_RAW)
        drop_loan(r); /* a zstd chunk is served from zbody: the stored bytes are done with */
    return rc;
}

/* ---- random reads the caller issues ------------------------------------------------------ */

static int check_record_index(sl_record_reader *r, uint64_t i, const sl__record_entry **e)
{
    if (i >= r->nrecords)
        return sl__errmsg_set(&r->err, SL_ERR_RANGE,
                              "%s: record %" PRIu64 " requested, file has %" PRIu64, r->path, i,
                              r->nrecords);
    return record_entry(r, i, e);
}

int sl_record_reader_record_span(sl_record_reader *r, uint64_t i, sl_record_span *span)
{
    const sl__record_entry *e = NULL;
    SL_TRY(check_record_index(r, i, &e));
    const sl__chunk_entry *c = &r->chunks[e->chunk];
    memset(span, 0, sizeof *span);
    span->chunk = e->chunk;
    /* In memory already (the sequential chunk, the cached zstd body, or a mapped file). */
    if (r->cur_chunk == e->chunk || r->map || (c->codec == SL__CODEC_ZSTD && r->zchunk == e->chunk))
        return 0;
    if (c->codec == SL__CODEC_ZSTD) {
        span->offset = c->offset;
        span->length = sl__chunk_span(c->stored_size);
        span->whole_chunk = 1;
        return 0;
    }
    span->offset = raw_record_offset(r, e);
    span->length = (uint64_t)e->length + SL__RECORD_CRC;
    if (r->verify && !header_checked(r, e->chunk)) {
        span->header_offset = c->offset;
        span->header_length = SL__CHUNK_HEADER;
    }
    return 0;
}

int sl_record_reader_record_from(sl_record_reader *r, uint64_t i, const uint8_t *header,
                                 int64_t header_got, sl_buffer *buf, size_t at, int64_t got,
                                 sl_record *rec)
{
    const sl__record_entry *e = NULL;
    SL_TRY(check_record_index(r, i, &e));
    const uint64_t k = e->chunk;
    const sl__chunk_entry *c = &r->chunks[k];
    const int zstd = c->codec == SL__CODEC_ZSTD;
    if (!buf) /* the span was empty: served from memory (or read here if that moved on) */
        return sl_record_reader_read(r, i, rec);
    if (zstd && r->zchunk == k) { /* an earlier record of the batch loaded this chunk */
        hand_out(rec, (const uint8_t *)sl_buffer_data(r->zbody) + e->body_offset, e, i, r->zbody);
        return 0;
    }
    const uint64_t off = zstd ? c->offset : raw_record_offset(r, e);
    const uint64_t length =
        zstd ? sl__chunk_span(c->stored_size) : (uint64_t)e->length + SL__RECORD_CRC;
    const char *what = zstd ? "reading chunk" : "reading record";
    if (!zstd)
        SL_TRY(check_raw_header(r, i, k, header, header_got));
    const int rc = read_outcome(got, length);
    if (rc < 0)
        return fail_at(r, rc, i, k, off, what);
    if (at > sl_buffer_size(buf) || length > sl_buffer_size(buf) - at)
        return fail_at(r, SL_ERR_INVAL, i, k, off,
                       "record bytes handed over lie outside their buffer");
    const uint8_t *p = (const uint8_t *)sl_buffer_data(buf) + at;
    if (zstd) {
        SL_TRY(load_zstd_chunk(r, i, k, p));
        hand_out(rec, (const uint8_t *)sl_buffer_data(r->zbody) + e->body_offset, e, i, r->zbody);
        return 0;
    }
    SL_TRY(check_raw_record(r, i, e, p, off));
    hand_out(rec, p, e, i, buf);
    return 0;
}
