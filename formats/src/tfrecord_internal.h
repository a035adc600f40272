/*
 * TFRecord internals shared by tfrecord_reader.c, tfrecord_writer.c and tfrecord_index.c:
 * the reader and writer layouts, the framing constants, and the atomic-publish helper that
 * both the writer and the index builder use so no half-written file ever sits at a final
 * name.
 *
 * Buffer invariants (reader): buf[pos, end) holds stream bytes not yet handed out, and
 * buf[pos] is the byte at stream offset `next_offset`; cap >= end >= pos. The buffer only
 * grows when the bytes of one record do not fit, and it grows at most to twice the bytes
 * that really arrived plus one read block, so a lying length field cannot make it allocate
 * memory the input does not back.
 *
 * Threading: a reader or writer is used by one thread at a time; nothing here is shared.
 */
#ifndef SLUICE_TFRECORD_INTERNAL_H
#define SLUICE_TFRECORD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "core_internal.h"
#include "sluice/tfrecord.h"

enum {
    SL_TFR_HEADER = 12, /* u64 length + u32 masked crc of it */
    SL_TFR_FOOTER = 4,  /* u32 masked crc of the data */
    SL_TFR_FRAME = SL_TFR_HEADER + SL_TFR_FOOTER,
};

/* Size of one read() (plain input) or of one compressed read, and of the writer's staging
 * and output buffers: large enough that syscall cost vanishes next to copying and CRC work,
 * small enough that a reader per file stays cheap. */
#define SL_TFR_BLOCK ((size_t)1 << 20)

/* Largest record the reader accepts from a compressed or non-seekable stream, where the
 * length field cannot be checked against a file size. TensorFlow's own limit is far lower in
 * practice (a tf.Example is a protobuf, which tops out at 2 GiB). */
#define SL_TFR_MAX_STREAM_RECORD ((uint64_t)4 << 30)

struct sl_tfrecord_reader {
    sl_errmsg err;
    char *path;
    int fd;
    sl_tfrecord_compression compression; /* what the stream is (never AUTO after open) */
    int verify;                          /* check both CRCs */
    int skip_corrupt;
    void (*on_skip)(uint64_t record, uint64_t offset, void *user);
    void *on_skip_user;

    /* The first bytes, read at open to detect the format; handed to the window (plain) or
     * to inflate (compressed). */
    uint8_t head[SL_TFR_HEADER];
    size_t head_len;
    int head_eof;

    uint64_t file_size; /* valid when size_known */
    int size_known;     /* a regular file: lengths are checked against file_size */
    /* The caller's positional reads (regular files only; NULL: read/pread), and the file
     * offset the next sequential read starts at when they are used. */
    sl_record_read_fn read_fn;
    void *read_user;
    uint64_t read_pos;

    /* Decompressed (or plain) stream window; see the invariants above. */
    uint8_t *buf;
    size_t cap, pos, end;
    int mapped;     /* buf is a read-only mapping of the whole plain file (cap = end = size) */
    int stream_eof; /* no more stream bytes will arrive */

    /* Compressed input (GZIP/ZLIB only). */
    z_stream z;
    int z_ready;     /* inflateInit2 done */
    uint8_t *in;     /* SL_TFR_BLOCK bytes of compressed input */
    int raw_eof;     /* read() returned 0 */
    int member_done; /* inflate reached the end of a gzip member / zlib stream */
    uint64_t raw_total;
    int z_bad;             /* inflate reported damage; raised once the window drains */
    uint64_t z_bad_at;     /* compressed byte where it was noticed */
    const char *z_bad_msg; /* zlib's static description */

    /* Sequential position. */
    uint64_t next_index;  /* record number of the next framed record */
    uint64_t next_offset; /* its stream offset */
    uint64_t skipped;
    int sticky; /* a hard error (or SL_EOF) that every later next() repeats */

    /* Random access (plain files with an index). */
    int has_index;
    sl_tfrecord_index_entry *entries; /* NULL for an empty index */
    uint64_t count;
    uint8_t *rbuf;
    size_t rcap;
};

/* A file written under a temporary name beside its final path, published by rename. */
typedef struct sl__tfr_publish {
    int fd; /* -1 when not open */
    char *tmp_path;
    char *final_path;
} sl__tfr_publish;

/* Creates ".<name>.tmp-<pid>-<random>" in the final path's directory (O_EXCL, mode 0666
 * before umask). Messages go to err; on failure nothing is left on disk. */
int sl__tfr_publish_open(sl__tfr_publish *p, const char *final_path, sl_errmsg *err);
/* Writes all n bytes (retrying short writes and EINTR); -errno on failure. */
int sl__tfr_publish_write(sl__tfr_publish *p, const void *data, size_t n, sl_errmsg *err);
/* fsync, close, rename onto the final path, fsync the directory. On failure the temporary
 * file is removed. Always leaves p closed. */
int sl__tfr_publish_commit(sl__tfr_publish *p, sl_errmsg *err);
/* Closes and removes the temporary file if still open; frees the names. Idempotent. */
void sl__tfr_publish_abort(sl__tfr_publish *p);

struct sl_tfrecord_writer {
    sl_errmsg err;
    char *path; /* final path, for messages */
    sl__tfr_publish out;
    sl_tfrecord_compression compression;
    z_stream z;
    int z_ready;
    uint8_t *stage; /* framed plain bytes waiting to be written or deflated */
    size_t staged;
    uint8_t *zout; /* deflate output, SL_TFR_BLOCK bytes (compressed modes only) */
    uint64_t count;
    int state; /* 0 open, 1 finished, negative: the error that broke it */
};

/* zlib allocation through sluice's counted allocator, so leak checks cover zlib state. */
void *sl__tfr_zalloc(void *opaque, unsigned items, unsigned size);
void sl__tfr_zfree(void *opaque, void *ptr);

/* Copies a handle message into a caller's (errmsg, errcap) buffer; either may be 0/NULL. */
void sl__tfr_errmsg_copy(char *errmsg, size_t errcap, const char *text);

#endif
