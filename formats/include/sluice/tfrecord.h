/*
 * TFRecord files: reader (plain, GZIP, ZLIB), byte-exact writer, and DALI-compatible `.idx`
 * indexes for random access and sharding of plain files.
 *
 * Framing of one record (TensorFlow's record_writer.cc):
 *   u64 length (LE) | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
 * with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
 *
 * An index line is "<offset> <size>\n" with size = payload length + 16 (DALI's tfrecord2idx).
 * An index cannot carry a fingerprint, so the reader checks what it can: the last entry ends
 * exactly at end of file, entries are contiguous, and every read's length field equals the
 * entry's size - 16 (plus the CRCs). A mismatch is SL_ERR_STALE_INDEX.
 *
 * Handles follow sluice/record.h's rules (failed _open still returns a handle for _errmsg).
 */
#ifndef SLUICE_TFRECORD_H
#define SLUICE_TFRECORD_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/record.h" /* sl_record_read_fn */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_tfrecord_compression {
    /* Reader only: detect from the first bytes. A valid first record header (its length CRC
     * matches) means plain, checked first because some plain lengths (e.g. 7432) begin with
     * bytes that pass the zlib header check; then gzip magic 1f 8b; then a zlib header (CM 8,
     * CINFO <= 7, (CMF*256+FLG) % 31 == 0, no preset dictionary); otherwise plain. */
    SL_TFRECORD_AUTO = 0,
    SL_TFRECORD_NONE = 1,
    SL_TFRECORD_GZIP = 2,
    SL_TFRECORD_ZLIB = 3,
} sl_tfrecord_compression;

uint32_t sl_tfrecord_mask_crc(uint32_t crc);
uint32_t sl_tfrecord_unmask_crc(uint32_t masked);

/* ---- reading ----------------------------------------------------------------------------
 *
 * Sequential reads use >= 1 MiB read() calls into one window buffer and hand out pointers into
 * it: no per-record syscall or allocation in steady state. GZIP input may hold several
 * concatenated members (read as one stream); an empty file is an empty stream in every mode.
 * Nothing in a file sizes an allocation up front: a plain regular file's length fields are
 * checked against the bytes left in it (too long: SL_ERR_TRUNCATED), and in compressed or
 * non-seekable input the buffer grows only as bytes arrive and a length above 4 GiB is
 * SL_ERR_TOO_LARGE.
 *
 * Errors name the file, record number and offset: "FILE: record N at offset O: what: cause"
 * (offsets count bytes of the decompressed stream for GZIP/ZLIB, and the message says so).
 * Errors from next() are sticky: every later call returns the same code. */

typedef struct sl_tfrecord_reader_options {
    sl_tfrecord_compression compression; /* default AUTO */
    int skip_verify;                     /* 0: verify both CRCs of every record */
    int skip_corrupt; /* 1: skip records whose data CRC fails and count them (a bad length
                         CRC cannot be skipped: framing is lost) */
    /* Optional, with skip_corrupt: told about each skipped record (its number and the offset
     * of its length field in the uncompressed stream), e.g. to list them in a report. */
    void (*on_skip)(uint64_t record, uint64_t offset, void *user);
    void *on_skip_user;
    /* Optional .idx enabling sl_tfrecord_reader_read and _count; loaded and checked against
     * the file at open (SL_ERR_STALE_INDEX). A compressed or non-regular file with an index is
     * SL_ERR_UNSUPPORTED. */
    const char *index_path;
    /* 1: a plain regular file is read sequentially from a read-only mapping of the whole file
     * (no copy into a window; faster than read() from the page cache). Ignored for compressed
     * files and pipes. As with sl_record_reader_options.map: another process truncating the
     * file while it is mapped raises SIGBUS in whoever touches a record past the new end. */
    int map;
    /* Optional, for regular files: every read of the file (open's first bytes, sequential
     * blocks, random reads through the index) is one positional read of exactly n bytes at
     * `offset` through read_fn(read_user, ...), as for sl_record_reader_options (the engine
     * routes them through io_uring this way). NULL: read(2)/pread(2). Not with `map`. */
    sl_record_read_fn read_fn;
    void *read_user;
} sl_tfrecord_reader_options;

typedef struct sl_tfrecord_reader sl_tfrecord_reader;

typedef struct sl_tfrecord_record {
    const uint8_t *data; /* valid until the next call on the reader */
    size_t size;
    uint64_t index;  /* record number */
    uint64_t offset; /* byte offset of the record's length field in the uncompressed stream */
} sl_tfrecord_record;

int sl_tfrecord_reader_open(sl_tfrecord_reader **out, const char *path,
                            const sl_tfrecord_reader_options *opts);
void sl_tfrecord_reader_close(sl_tfrecord_reader *r);
const char *sl_tfrecord_reader_errmsg(const sl_tfrecord_reader *r);
sl_tfrecord_compression sl_tfrecord_reader_compression(const sl_tfrecord_reader *r);
/* Sequential; SL_EOF at a clean end; SL_ERR_TRUNCATED for a partial last record (or a
 * compressed stream cut before its end marker); SL_ERR_CORRUPT for a CRC mismatch or a damaged
 * compressed stream. */
int sl_tfrecord_reader_next(sl_tfrecord_reader *r, sl_tfrecord_record *rec);
/* Random access through the index with one pread: SL_ERR_RANGE past the end,
 * SL_ERR_STALE_INDEX when the record's length field disagrees with the entry, SL_ERR_CORRUPT
 * on a CRC mismatch (skip_corrupt does not apply). Does not move the sequential position; its
 * errors are not sticky. */
int sl_tfrecord_reader_read(sl_tfrecord_reader *r, uint64_t i, sl_tfrecord_record *rec);
/* Record count from the index; SL_ERR_UNSUPPORTED without one. */
int sl_tfrecord_reader_count(const sl_tfrecord_reader *r, uint64_t *count);
uint64_t sl_tfrecord_reader_skipped(const sl_tfrecord_reader *r);

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct sl_tfrecord_writer sl_tfrecord_writer;

/* Writes to a temporary name (".NAME.tmp-PID-RANDOM" in the same directory) and publishes
 * atomically on finish: fsync, rename, fsync of the directory (like sl_record_writer); close
 * without a successful finish removes the temporary file. NONE output is byte-exact TFRecord;
 * GZIP (gzip wrapper, mtime 0) and ZLIB output decompresses to exactly that stream.
 * compression must be NONE, GZIP or ZLIB (SL_ERR_INVAL otherwise). */
int sl_tfrecord_writer_open(sl_tfrecord_writer **out, const char *path,
                            sl_tfrecord_compression compression);
int sl_tfrecord_writer_write(sl_tfrecord_writer *w, const void *data, size_t size);
int sl_tfrecord_writer_finish(sl_tfrecord_writer *w);
void sl_tfrecord_writer_close(sl_tfrecord_writer *w);
const char *sl_tfrecord_writer_errmsg(const sl_tfrecord_writer *w);

/* The 12 bytes before a record's data (length, masked crc of the length) and the 4 after it
 * (masked crc of the data). */
void sl_tfrecord_frame_header(uint8_t header[12], size_t size);
void sl_tfrecord_frame_footer(uint8_t footer[4], const void *data, size_t size);

/* ---- DALI-compatible index -------------------------------------------------------------- */

typedef struct sl_tfrecord_index_entry {
    uint64_t offset;
    uint64_t size; /* payload + 16 */
} sl_tfrecord_index_entry;

/* Scans a plain TFRecord file, verifying both CRCs of every record, and writes its index to
 * idx_path atomically. A truncated or corrupt record is an error naming the record and
 * offset (errmsg may be NULL), and no index is written. *count (may be NULL) gets the number
 * of records. */
int sl_tfrecord_index_build(const char *path, const char *idx_path, uint64_t *count, char *errmsg,
                            size_t errcap);
/* Parses an index (strict: decimal "<offset> <size>" per line) and checks it against the
 * data file's size: contiguous entries from offset 0, last one ending at EOF
 * (SL_ERR_STALE_INDEX otherwise). Caller frees *entries with sl_free (NULL for an empty
 * index, which is valid for an empty file). */
int sl_tfrecord_index_load(const char *idx_path, const char *data_path,
                           sl_tfrecord_index_entry **entries, uint64_t *count, char *errmsg,
                           size_t errcap);
/* Parses index text from memory (no file checks); used by the loader and the fuzz target.
 * Each line is "<offset> <size>\n": decimal, no sign, no leading zeros, one space, '\n' line
 * ends (a missing newline after the last entry is accepted; CR, empty lines and extra fields
 * are not). Lexical errors are SL_ERR_SYNTAX, impossible values (size < 16, offset + size
 * above 2^64-1) SL_ERR_CORRUPT; the message names the 1-based line. */
int sl_tfrecord_index_parse(const char *text, size_t len, sl_tfrecord_index_entry **entries,
                            uint64_t *count, char *errmsg, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
