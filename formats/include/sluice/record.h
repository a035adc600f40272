/*
 * sluice record files (.sluice): writer, reader, verification, resync scan.
 * The byte layout is specified in formats/FORMAT.md.
 *
 * A file holds records (opaque byte strings, or typed records under a file-level schema, see
 * sluice/schema.h) grouped into chunks, each stored raw or zstd-compressed, followed by an
 * index that locates record i in O(1) and a fixed-size footer. Every chunk, the header and the
 * index carry a crc32c; records in raw chunks carry their own, so one random read is verified
 * without touching its neighbours.
 *
 * Handles: an `_open` that fails still returns a handle (unless memory ran out, then *out is
 * NULL) so the caller can read `_errmsg`; every handle is freed with `_close`.
 * Threading: a handle is used by one thread at a time. Distinct readers of one file may run
 * on distinct threads.
 */
#ifndef SLUICE_RECORD_H
#define SLUICE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/schema.h"
#include "sluice/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writing ---------------------------------------------------------------------------- */

/* Planned points in the publish sequence, reported to a test hook (crash-safety tests kill
 * the process there and check that the final name never holds a partial file). */
typedef enum sl_publish_point {
    SL_PUBLISH_AFTER_WRITE = 1, /* all bytes written to the temporary file */
    SL_PUBLISH_AFTER_FSYNC = 2, /* temporary file fsync'ed */
    SL_PUBLISH_BEFORE_RENAME = 3,
    SL_PUBLISH_AFTER_RENAME = 4, /* renamed and directory fsync'ed */
} sl_publish_point;

typedef void (*sl_publish_hook)(sl_publish_point point, const char *final_path, void *user);

typedef struct sl_record_writer_options {
    /* zstd level 1..22; 0 stores every chunk raw. A compressed chunk is kept only when it
     * saves at least 1/32 of its size; otherwise the chunk is stored raw. */
    int compression_level;
    /* Target uncompressed payload bytes per chunk (a larger record gets a chunk of its own).
     * 0 = default (1 MiB). */
    size_t chunk_bytes;
    /* Compression threads; 0 or 1 = compress on the calling thread. */
    int threads;
    /* Typed records: every record must be written with sl_record_writer_write_fields. */
    const sl_schema *schema;
    /* Optional zstd dictionary (e.g. trained with ZDICT_trainFromBuffer on sample records);
     * stored in the header so the file stays self-describing. */
    const void *dict;
    size_t dict_size;
    /* Test hook for crash-safety tests; NULL in production. */
    sl_publish_hook publish_hook;
    void *publish_hook_user;
} sl_record_writer_options;

typedef struct sl_record_writer sl_record_writer;

/* Starts writing to a temporary file beside `path` (".NAME.tmp-PID", held under flock);
 * nothing appears at `path` until sl_record_writer_finish succeeds. Temporary files of this
 * path that no live writer holds (left by a crashed writer) are removed first; a second
 * writer of the same path in the same process gets SL_ERR_EXISTS. opts may be NULL
 * (defaults: raw, 1 MiB chunks). Output bytes depend only on the records and on level,
 * chunk_bytes, schema and dict: never on threads, time or chance. */
int sl_record_writer_open(sl_record_writer **out, const char *path,
                          const sl_record_writer_options *opts);
/* One record of `size` bytes (size < 4 GiB; SL_ERR_TOO_LARGE otherwise, before any byte is
 * read). When the file has a schema the bytes must already be a valid typed-record encoding
 * of it (sl_record_validate; SL_ERR_SCHEMA otherwise): this copies typed records between
 * files without decoding them. */
int sl_record_writer_write(sl_record_writer *w, const void *data, size_t size);
/* One typed record: fields[k] is the value of the schema's field k. */
int sl_record_writer_write_fields(sl_record_writer *w, const sl_tensor *fields);
/* Flushes, writes index and footer, fsyncs, renames onto the final path, fsyncs the directory.
 * After success the writer only accepts _close. */
int sl_record_writer_finish(sl_record_writer *w);
/* Closes; when finish did not succeed, removes the temporary file. */
void sl_record_writer_close(sl_record_writer *w);
const char *sl_record_writer_errmsg(const sl_record_writer *w);
uint64_t sl_record_writer_count(const sl_record_writer *w);

/* "<base>-00003-of-00008.sluice": writes the name of shard i of n into buf (base may already
 * end in .sluice, which is moved after the shard suffix). Returns snprintf's length. */
int sl_shard_path(char *buf, size_t cap, const char *base, unsigned shard, unsigned nshards);

/* ---- reading ---------------------------------------------------------------------------- */

/* A positional read of exactly n bytes at `offset` of `fd` (the reader's own descriptor):
 * returns 0 when all n bytes were read, SL_ERR_TRUNCATED when the file ended first, or -errno.
 * A caller passes one in the reader options to route the reader's reads through its own I/O
 * (the engine's file sources use io_uring this way; formats/ knows nothing of it). */
typedef int (*sl_record_read_fn)(void *user, int fd, void *buf, size_t n, uint64_t offset);

typedef struct sl_record_reader_options {
    int skip_verify; /* 0 (default): verify every crc32c read */
    /* Every read the reader makes (open included) goes through read_fn(read_user, ...) when it
     * is set; NULL: pread(2). Errors it returns are reported like the reader's own, naming
     * the file, record, chunk and offset. */
    sl_record_read_fn read_fn;
    void *read_user;
    /* 1: serve chunks and records straight from a read-only mapping of the whole file instead
     * of copying them into the reader's buffers (open's own reads still use pread): from the
     * page cache this reads faster than read() itself, checksums included (bench/README.md).
     * The contract mmap brings: if another process truncates the file while it is mapped,
     * touching a record past the new end raises SIGBUS in whichever thread touches it, so
     * only map files that nobody shrinks while they are read. Cannot be combined with
     * read_fn (SL_ERR_INVAL). */
    int map;
    /* Threads that decompress zstd chunks for `next`, the caller's included: at 2 or more the
     * reader keeps 2 x threads chunks read, checked and decompressed ahead of its cursor on
     * threads - 1 threads of its own (and on the caller's, which runs the next one itself
     * rather than wait). 0 or 1: each chunk on the caller's thread when `next` reaches it.
     * Records, errors and messages are the same either way; a raw file starts no thread.
     * Cannot be combined with read_fn (SL_ERR_INVAL). */
    int threads;
} sl_record_reader_options;

/* One record. `data` stays valid until the next call on the same reader; a caller that keeps
 * it longer retains `buffer` (which owns the bytes) with sl_buffer_retain. */
typedef struct sl_record {
    const uint8_t *data;
    size_t size;
    uint64_t index;    /* record number within the file */
    sl_buffer *buffer; /* owns `data`; borrowed from the reader */
} sl_record;

typedef struct sl_record_reader sl_record_reader;

/* Validates header, footer and index (and the index fingerprint) at open. */
int sl_record_reader_open(sl_record_reader **out, const char *path,
                          const sl_record_reader_options *opts);
void sl_record_reader_close(sl_record_reader *r);
const char *sl_record_reader_errmsg(const sl_record_reader *r);

uint64_t sl_record_reader_count(const sl_record_reader *r);
/* NULL when the file has no schema (opaque records). */
const sl_schema *sl_record_reader_schema(const sl_record_reader *r);

/* Record i by random access: reads only that record and its crc32c (raw chunk; the first
 * access to a chunk also reads its 48-byte header once, to check it against the index) or its
 * chunk (compressed; the last decompressed chunk is cached). SL_ERR_RANGE when i >= count. */
int sl_record_reader_read(sl_record_reader *r, uint64_t i, sl_record *rec);
/* Sequential read from the current position with large reads; SL_EOF at the end. */
int sl_record_reader_next(sl_record_reader *r, sl_record *rec);
/* Moves the sequential position to record i (i == count is the end). */
int sl_record_reader_seek(sl_record_reader *r, uint64_t i);

/* ---- reads the caller issues (read-ahead) ---------------------------------------------
 *
 * A caller that wants several chunks in flight at once (e.g. io_uring read-ahead) reads the
 * bytes itself and hands them to the reader, which checks them exactly as `next` checks what
 * it reads (chunk header against the index, payload crc32c unless skip_verify), decompresses
 * zstd chunks, and serves the chunk's records to `next` from them without reading the file:
 *
 *     sl_record_reader_chunk_of(r, position, &k);           // the chunk `next` needs
 *     sl_record_reader_chunk_span(r, k, &offset, &length);  // read those bytes, then:
 *     sl_record_reader_load_chunk(r, k, buf, at, got);      // got = bytes read or -errno
 *     sl_record_reader_next(r, &rec);                       // no read: served from buf
 *
 * Chunks are contiguous in the file (chunk k+1 starts at chunk k's offset + length), so one
 * read may cover several chunks, each handed over with its own load_chunk. When the chunk
 * `next` needs was not loaded, `next` reads it itself as usual. */

uint64_t sl_record_reader_chunk_count(const sl_record_reader *r);
/* The chunk holding record i (SL_ERR_RANGE when i >= count). */
int sl_record_reader_chunk_of(const sl_record_reader *r, uint64_t i, uint64_t *chunk);
/* Chunk k holds records [*first, *first + *count) (SL_ERR_RANGE when k >= chunk count). */
int sl_record_reader_chunk_records(const sl_record_reader *r, uint64_t k, uint64_t *first,
                                   uint64_t *count);
/* Chunk k occupies file bytes [*offset, *offset + *length): its 48-byte header, payload and
 * padding (SL_ERR_RANGE when k >= chunk count). */
int sl_record_reader_chunk_span(const sl_record_reader *r, uint64_t k, uint64_t *offset,
                                uint64_t *length);
/* The reader's descriptor, for the caller's own reads of chunk spans; owned by the reader. */
int sl_record_reader_fd(const sl_record_reader *r);
/* Hands over chunk k as read by the caller: `buf` holds chunk_span's `length` bytes starting
 * at byte `at` of the buffer, and `got` is what the read returned: the bytes read (fewer than
 * length when the file ended first: SL_ERR_TRUNCATED) or a -errno (returned as is). On success
 * chunk k becomes the chunk `next` serves from; records of a raw chunk point into buf, which
 * the reader retains while it serves from it (callers must not rewrite a buffer whose
 * refcount is above 1). A failure reads as the same failure met by `next` would: it names the
 * file, the record `next` is at (or the chunk's first record when it is elsewhere), the chunk
 * and the byte offset. The bytes are checked even when chunk k is the one already loaded. */
int sl_record_reader_load_chunk(sl_record_reader *r, uint64_t k, sl_buffer *buf, size_t at,
                                int64_t got);

/* ---- random reads the caller issues (batches) -------------------------------------------
 *
 * A caller that wants many random reads in flight at once (e.g. a shuffle window through
 * io_uring) asks for each record's span, reads the bytes itself, and hands them back; the
 * reader checks them exactly as sl_record_reader_read checks its own reads (same errors,
 * naming file, record, chunk and offset):
 *
 *     sl_record_reader_record_span(r, i, &sp);   // read sp.length bytes at sp.offset (and the
 *                                                // chunk header when sp.header_length > 0)
 *     sl_record_reader_record_from(r, i, hdr, hdr_got, buf, at, got, &rec);
 *
 * A raw record's span is the record and its crc32c; a zstd record's is its whole chunk
 * (records of one chunk may share one read: the first record_from decompresses it, the others
 * are served from the decompressed body). */
typedef struct sl_record_span {
    uint64_t offset, length; /* bytes to read; length 0: nothing (the record is in memory) */
    uint64_t header_offset;  /* raw chunks whose header was not yet checked against the */
    uint32_t header_length;  /* index: read these bytes too (0: not needed) */
    int whole_chunk;         /* 1: the span is chunk `chunk` (zstd), shareable */
    uint64_t chunk;          /* the chunk holding the record */
} sl_record_span;

/* Record i's span (SL_ERR_RANGE when i >= count). */
int sl_record_reader_record_span(sl_record_reader *r, uint64_t i, sl_record_span *span);
/* Record i from the caller's read of its span: `buf` holds the span's bytes at byte `at`, and
 * `got` is what the read returned (bytes read, or -errno); `header`/`header_got` the same for
 * the chunk header when the span asked for one, else NULL (the reader then reads it itself if
 * it still needs it). buf NULL: the span was empty; the record is served as
 * sl_record_reader_read serves it. A raw record points into buf (rec->buffer is buf, not
 * retained); a zstd record into the reader's body, valid as sl_record_reader_read's. */
int sl_record_reader_record_from(sl_record_reader *r, uint64_t i, const uint8_t *header,
                                 int64_t header_got, sl_buffer *buf, size_t at, int64_t got,
                                 sl_record *rec);

typedef struct sl_record_file_info {
    uint32_t version_major, version_minor;
    uint64_t records;
    uint64_t chunks;
    uint64_t chunks_zstd;   /* chunks stored compressed */
    uint64_t payload_bytes; /* sum of record sizes */
    uint64_t stored_bytes;  /* bytes of chunk payloads on disk */
    uint64_t file_bytes;
    uint64_t fingerprint; /* the index fingerprint (see FORMAT.md) */
    int has_dict;
} sl_record_file_info;

void sl_record_reader_info(const sl_record_reader *r, sl_record_file_info *info);

/* ---- checking and recovery -------------------------------------------------------------- */

/* One problem found by verify or scan: `record` is the first record index affected (or
 * UINT64_MAX when unknown), `offset` the byte offset in the file where it was detected. */
typedef struct sl_record_problem {
    int code; /* SL_ERR_CORRUPT, SL_ERR_TRUNCATED, ... */
    uint64_t record;
    uint64_t offset;
    const char *what; /* e.g. "chunk 3 payload crc32c mismatch" */
} sl_record_problem;

typedef void (*sl_record_problem_fn)(const sl_record_problem *p, void *user);

/* Reads the whole file and checks every checksum and every structural invariant. Returns 0
 * when intact, else the first problem's code after reporting each problem to fn. */
int sl_record_verify(const char *path, sl_record_problem_fn fn, void *user);

/* Resync scan for damaged files: walks the file looking for chunk headers whose own crc and
 * payload crc check out, independent of index and footer, and hands every record of every
 * intact chunk to record_fn in file order. Problems (damaged regions) go to problem_fn.
 * *schema_out (optional) receives the header's schema when the header is intact (caller frees
 * with sl_schema_free). Returns 0 once the whole file was walked (damage goes to problem_fn,
 * not to the return value) or record_fn stopped it; negative on I/O or memory failure. */
typedef int (*sl_record_scan_fn)(const sl_record *rec, void *user); /* non-zero stops */
int sl_record_scan(const char *path, sl_record_scan_fn record_fn, sl_record_problem_fn problem_fn,
                   void *user, sl_schema **schema_out);

/* Repair: every record sl_record_scan recovers from `in` written to a clean file `out`
 * (same schema, raw chunks unless level > 0). *recovered and *lost (may be NULL) report
 * counts; lost is known when the damaged file's index or chunk headers say how many records
 * it held, else UINT64_MAX. errmsg (may be NULL) gets a one-line reason on failure. */
int sl_record_repair(const char *in, const char *out, int compression_level, uint64_t *recovered,
                     uint64_t *lost, char *errmsg, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
