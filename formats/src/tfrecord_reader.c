/*
 * TFRecord reader: sequential reading of plain, GZIP and ZLIB files with both masked CRCs
 * verified, and random access to plain files through a DALI-style index.
 *
 * Sequential path: one window buffer (see tfrecord_internal.h) filled by read() calls of at
 * least SL_TFR_BLOCK bytes, or by inflate from SL_TFR_BLOCK compressed reads; records are
 * handed out as pointers into the window, so steady state makes no allocation and one
 * syscall per block, not per record. Concatenated gzip members are read as one stream.
 * With options.map a plain regular file is mapped whole at open and the window is the
 * mapping: the same framing checks run over it, with no read() and no copy.
 *
 * Trust: nothing in the file sizes an allocation up front. In a regular plain file a length
 * field is checked against the bytes left in the file before anything grows; in a compressed
 * or non-seekable stream the window grows only as decompressed bytes really arrive, and a
 * length above SL_TFR_MAX_STREAM_RECORD (4 GiB) is refused.
 *
 * Errors: a hard error (lost framing, truncation, I/O, codec, or a data CRC mismatch without
 * skip_corrupt) is sticky: every later next() returns it again with the same message.
 * Random access (read) does not touch the sequential position and its errors are not sticky.
 *
 * Threading: one reader per thread at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record_format_internal.h"
#include "sluice/alloc.h"
#include "sluice/crc32c.h"
#include "tfrecord_internal.h"

static const char *stream_name(const sl_tfrecord_reader *r)
{
    switch (r->compression) {
    case SL_TFRECORD_GZIP:
        return " (decompressed gzip stream)";
    case SL_TFRECORD_ZLIB:
        return " (decompressed zlib stream)";
    default:
        return "";
    }
}

/* "FILE: record N at offset O[ (decompressed ... stream)]: <what>: <cause>" */
static int rec_fail(sl_tfrecord_reader *r, uint64_t index, uint64_t offset, int code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rec_fail(sl_tfrecord_reader *r, uint64_t index, uint64_t offset, int code,
                    const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sl__errmsg_set(&r->err, code, "%s: record %llu at offset %llu%s: %s", r->path,
                          (unsigned long long)index, (unsigned long long)offset, stream_name(r),
                          what);
}

static int seq_fail(sl_tfrecord_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seq_fail(sl_tfrecord_reader *r, int code, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rec_fail(r, r->next_index, r->next_offset, code, "%s", what);
}

/* Up to n bytes of the file from where the last call stopped: one read(), or with read_fn one
 * positional read of what is left of n in the file. 0 at end of file, else the bytes read,
 * or a negative code (no message). */
static ssize_t read_next(sl_tfrecord_reader *r, uint8_t *dst, size_t n)
{
    if (r->read_fn) {
        const uint64_t left = r->file_size - r->read_pos;
        if (n > left)
            n = (size_t)left;
        if (n == 0)
            return 0;
        const int rc = r->read_fn(r->read_user, r->fd, dst, n, r->read_pos);
        if (rc < 0)
            return rc;
        r->read_pos += n;
        return (ssize_t)n;
    }
    for (;;) {
        const ssize_t k = read(r->fd, dst, n);
        if (k >= 0 || errno != EINTR)
            return k >= 0 ? k : -errno;
    }
}

/* read_next for the sequential reader: a failure is reported at the current record. */
static ssize_t read_some(sl_tfrecord_reader *r, uint8_t *dst, size_t n)
{
    const ssize_t k = read_next(r, dst, n);
    return k >= 0 ? k : seq_fail(r, (int)k, "read");
}

/* ---- window management ---------------------------------------------------------------- */

/* Makes room for at least one block after `end`, compacting first, growing only when the
 * bytes already in the window leave less than a block free. `need` is the record's full size
 * from pos; growth stops at need + one block. */
static int window_make_room(sl_tfrecord_reader *r, size_t need)
{
    if (r->cap - r->end >= SL_TFR_BLOCK)
        return 0;
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
        if (r->cap - r->end >= SL_TFR_BLOCK)
            return 0;
    }
    /* The window is nearly full of real bytes of one unfinished record: double it (bounded
     * by what the record needs), so memory tracks what actually arrived. */
    size_t want = r->end + SL_TFR_BLOCK;
    const size_t doubled = r->cap * 2;
    const size_t limit = need > SIZE_MAX - SL_TFR_BLOCK ? SIZE_MAX : need + SL_TFR_BLOCK;
    if (doubled > want)
        want = SL_MIN(doubled, SL_MAX(limit, want));
    uint8_t *nb = sl_realloc(r->buf, want);
    if (!nb)
        return seq_fail(r, SL_ERR_NOMEM, "growing the read buffer to %zu bytes", want);
    r->buf = nb;
    r->cap = want;
    return 0;
}

static int fill_plain(sl_tfrecord_reader *r)
{
    const ssize_t k = read_some(r, r->buf + r->end, r->cap - r->end);
    if (k < 0)
        return (int)k;
    if (k == 0)
        r->stream_eof = 1;
    r->end += (size_t)k;
    return 0;
}

static int report_bad_stream(sl_tfrecord_reader *r)
{
    return seq_fail(r, SL_ERR_CORRUPT, "%s data invalid near compressed byte %llu: %s",
                    r->compression == SL_TFRECORD_GZIP ? "gzip" : "zlib",
                    (unsigned long long)r->z_bad_at,
                    r->z_bad_msg ? r->z_bad_msg : "inflate failed");
}

/* Inflates until at least one byte lands in the window or the stream ends. */
static int fill_compressed(sl_tfrecord_reader *r)
{
    const int gzip = r->compression == SL_TFRECORD_GZIP;
    if (r->z_bad)
        return report_bad_stream(r);
    for (;;) {
        if (r->z.avail_in == 0 && !r->raw_eof) {
            const ssize_t k = read_some(r, r->in, SL_TFR_BLOCK);
            if (k < 0)
                return (int)k;
            if (k == 0)
                r->raw_eof = 1;
            r->z.next_in = r->in;
            r->z.avail_in = (uInt)k;
            r->raw_total += (uint64_t)k;
        }
        if (r->member_done) {
            if (r->z.avail_in == 0) {
                if (r->raw_eof) {
                    r->stream_eof = 1;
                    return 0;
                }
                continue;
            }
            if (!gzip)
                return seq_fail(r, SL_ERR_CORRUPT,
                                "data follows the end of the zlib stream at compressed byte "
                                "%llu",
                                (unsigned long long)(r->raw_total - r->z.avail_in));
            /* Another gzip member: `cat a.gz b.gz` is a valid gzip file of both. */
            if (inflateReset(&r->z) != Z_OK)
                return seq_fail(r, SL_ERR_CODEC, "inflateReset");
            r->member_done = 0;
        }
        if (r->z.avail_in == 0 && r->raw_eof) {
            if (r->raw_total == 0) { /* an empty file is an empty stream */
                r->stream_eof = 1;
                return 0;
            }
            return seq_fail(r, SL_ERR_TRUNCATED,
                            "compressed file ends before the end of its %s stream after %llu "
                            "bytes",
                            gzip ? "gzip" : "zlib", (unsigned long long)r->raw_total);
        }
        uint8_t *const out = r->buf + r->end;
        const uInt room = (uInt)SL_MIN(r->cap - r->end, (size_t)UINT_MAX);
        const uInt in_before = r->z.avail_in;
        r->z.next_out = out;
        r->z.avail_out = room;
        const int zrc = inflate(&r->z, Z_NO_FLUSH);
        const size_t produced = room - r->z.avail_out;
        r->end += produced;
        switch (zrc) {
        case Z_STREAM_END:
            r->member_done = 1;
            break;
        case Z_OK:
            break;
        case Z_BUF_ERROR: /* no progress possible: needs input, checked above */
            if (r->z.avail_in && in_before == r->z.avail_in && !produced)
                return seq_fail(r, SL_ERR_CODEC, "inflate made no progress");
            break;
        case Z_MEM_ERROR:
            return seq_fail(r, SL_ERR_NOMEM, "inflate");
        case Z_NEED_DICT:
            return seq_fail(r, SL_ERR_CORRUPT, "%s stream asks for a preset dictionary",
                            gzip ? "gzip" : "zlib");
        case Z_DATA_ERROR:
            /* Hand out what inflate produced before it failed (those records still carry
             * their own CRCs); report the damage when the stream is needed again. That keeps
             * the records returned before an error independent of read sizes. */
            r->z_bad = 1;
            r->z_bad_at = r->raw_total - r->z.avail_in;
            r->z_bad_msg = r->z.msg;
            if (produced)
                return 0;
            return report_bad_stream(r);
        default:
            return seq_fail(r, SL_ERR_CODEC, "inflate returned %d", zrc);
        }
        if (produced)
            return 0;
    }
}

/* Ensures buf[pos, pos + n) holds stream bytes unless the stream ends first (then fewer). */
static int ensure(sl_tfrecord_reader *r, size_t n)
{
    if (!r->buf) {
        /* Allocated on first use: a reader opened only for random access never needs it. */
        r->buf = sl_malloc(2 * SL_TFR_BLOCK);
        if (!r->buf)
            return seq_fail(r, SL_ERR_NOMEM, "read buffer");
        r->cap = 2 * SL_TFR_BLOCK;
        if (r->compression == SL_TFRECORD_NONE) {
            memcpy(r->buf, r->head, r->head_len);
            r->end = r->head_len;
            r->stream_eof = r->head_eof;
        }
    }
    while (r->end - r->pos < n && !r->stream_eof) {
        SL_TRY(window_make_room(r, n));
        SL_TRY(r->compression == SL_TFRECORD_NONE ? fill_plain(r) : fill_compressed(r));
    }
    return 0;
}

/* ---- open / close ------------------------------------------------------------------------ */

/* Decides what the first bytes are. A plain file is recognised first by its own header CRC:
 * a TFRecord whose first length happens to form a valid zlib header (1 in 31 lengths with the
 * right low nibble, e.g. 7432 bytes) must not be mistaken for zlib. */
static sl_tfrecord_compression detect(const uint8_t *h, size_t n)
{
    if (n >= SL_TFR_HEADER && sl__load_u32le(h + 8) == sl_tfrecord_mask_crc(sl_crc32c(0, h, 8)))
        return SL_TFRECORD_NONE;
    if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
        return SL_TFRECORD_GZIP;
    /* zlib (RFC 1950): CM = 8 (deflate), CINFO <= 7, FCHECK makes CMF*256+FLG a multiple of
     * 31, and no preset dictionary (FDICT) since TensorFlow never writes one. */
    if (n >= 2 && (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && (h[0] * 256 + h[1]) % 31 == 0 &&
        !(h[1] & 0x20))
        return SL_TFRECORD_ZLIB;
    return SL_TFRECORD_NONE;
}

static int open_fail(sl_tfrecord_reader *r, int code, const char *what)
{
    return sl__errmsg_set(&r->err, code, "%s: %s", r->path, what);
}

int sl_tfrecord_reader_open(sl_tfrecord_reader **out, const char *path,
                            const sl_tfrecord_reader_options *opts)
{
    static const sl_tfrecord_reader_options defaults = {0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    sl_tfrecord_reader *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->fd = -1;
    *out = r;
    r->path = sl_strdup(path);
    if (!r->path)
        return sl__errmsg_set(&r->err, SL_ERR_NOMEM, "%s", path);
    r->verify = !opts->skip_verify;
    r->skip_corrupt = opts->skip_corrupt;
    r->on_skip = opts->on_skip;
    r->on_skip_user = opts->on_skip_user;
    if ((unsigned)opts->compression > SL_TFRECORD_ZLIB)
        return open_fail(r, SL_ERR_INVAL, "unknown compression mode");

    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return open_fail(r, -errno, "cannot open");
    struct stat st;
    if (fstat(r->fd, &st))
        return open_fail(r, -errno, "fstat");
    if (S_ISDIR(st.st_mode))
        return open_fail(r, -EISDIR, "cannot read");
    if (S_ISREG(st.st_mode)) {
        r->size_known = 1;
        r->file_size = (uint64_t)st.st_size;
        posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if (opts->read_fn && opts->map)
            return open_fail(r, SL_ERR_INVAL, "a mapped reader cannot also use read_fn");
        r->read_fn = opts->read_fn;
        r->read_user = opts->read_user;
    }

    /* The first bytes decide the format; they stay in `head` and are handed to whichever
     * path consumes them, so a pipe works as well as a file. */
    while (r->head_len < sizeof r->head) {
        const ssize_t k = read_next(r, r->head + r->head_len, sizeof r->head - r->head_len);
        if (k < 0)
            return open_fail(r, (int)k, "read");
        if (k == 0) {
            r->head_eof = 1;
            break;
        }
        r->head_len += (size_t)k;
    }
    r->compression =
        opts->compression == SL_TFRECORD_AUTO ? detect(r->head, r->head_len) : opts->compression;

    if (opts->index_path) {
        if (r->compression != SL_TFRECORD_NONE || !r->size_known)
            return sl__errmsg_set(&r->err, SL_ERR_UNSUPPORTED,
                                  "%s: random access through an index needs a plain "
                                  "(uncompressed) regular file; this one is %s",
                                  path,
                                  r->compression == SL_TFRECORD_GZIP   ? "gzip-compressed"
                                  : r->compression == SL_TFRECORD_ZLIB ? "zlib-compressed"
                                                                       : "not a regular file");
        const int rc = sl_tfrecord_index_load(opts->index_path, path, &r->entries, &r->count,
                                              r->err.text, sizeof r->err.text);
        if (rc < 0)
            return rc;
        r->has_index = 1;
    }

    if (r->compression == SL_TFRECORD_NONE) {
        if (opts->map && r->size_known && r->file_size > 0) {
            if (r->file_size > SIZE_MAX)
                return open_fail(r, SL_ERR_TOO_LARGE, "too large to map");
            void *m = mmap(NULL, (size_t)r->file_size, PROT_READ, MAP_SHARED, r->fd, 0);
            if (m == MAP_FAILED)
                return open_fail(r, -errno, "mmap");
            r->buf = m;
            r->cap = r->end = (size_t)r->file_size;
            r->stream_eof = 1;
            r->mapped = 1;
        }
        return 0; /* otherwise the window is allocated by the first next() */
    }
    r->in = sl_malloc(SL_TFR_BLOCK);
    if (!r->in)
        return open_fail(r, SL_ERR_NOMEM, "compressed input buffer");
    memcpy(r->in, r->head, r->head_len);
    r->z.zalloc = sl__tfr_zalloc;
    r->z.zfree = sl__tfr_zfree;
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)r->head_len;
    r->raw_total = r->head_len;
    r->raw_eof = r->head_eof;
    /* 16 + MAX_WBITS: gzip wrapper only (not auto-detect), so a zlib file opened as GZIP is
     * an error rather than silently accepted. */
    const int zrc =
        inflateInit2(&r->z, r->compression == SL_TFRECORD_GZIP ? 16 + MAX_WBITS : MAX_WBITS);
    if (zrc != Z_OK)
        return open_fail(r, zrc == Z_MEM_ERROR ? SL_ERR_NOMEM : SL_ERR_CODEC, "inflateInit2");
    r->z_ready = 1;
    return 0;
}

void sl_tfrecord_reader_close(sl_tfrecord_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->z_ready)
        inflateEnd(&r->z);
    if (r->mapped)
        munmap(r->buf, r->cap);
    else
        sl_free(r->buf);
    sl_free(r->in);
    sl_free(r->rbuf);
    sl_free(r->entries);
    sl_free(r->path);
    sl_free(r);
}

const char *sl_tfrecord_reader_errmsg(const sl_tfrecord_reader *r)
{
    return r ? r->err.text : "out of memory";
}

sl_tfrecord_compression sl_tfrecord_reader_compression(const sl_tfrecord_reader *r)
{
    return r->compression;
}

uint64_t sl_tfrecord_reader_skipped(const sl_tfrecord_reader *r)
{
    return r->skipped;
}

int sl_tfrecord_reader_count(const sl_tfrecord_reader *r, uint64_t *count)
{
    if (!r->has_index)
        return SL_ERR_UNSUPPORTED;
    *count = r->count;
    return 0;
}

/* ---- sequential reading ------------------------------------------------------------------ */

static int stick(sl_tfrecord_reader *r, int rc)
{
    r->sticky = rc;
    return rc;
}

int sl_tfrecord_reader_next(sl_tfrecord_reader *r, sl_tfrecord_record *rec)
{
    if (r->sticky)
        return r->sticky;
    const char *what = r->compression == SL_TFRECORD_NONE ? "file" : "stream";
    for (;;) {
        int rc = ensure(r, SL_TFR_HEADER);
        if (rc < 0)
            return stick(r, rc);
        size_t avail = r->end - r->pos;
        if (avail == 0)
            return stick(r, SL_EOF);
        if (avail < SL_TFR_HEADER)
            return stick(r, seq_fail(r, SL_ERR_TRUNCATED,
                                     "%s ends inside the record header (%zu of 12 bytes)", what,
                                     avail));
        const uint8_t *h = r->buf + r->pos;
        const uint64_t len = sl__load_u64le(h);
        if (r->verify) {
            const uint32_t stored = sl__load_u32le(h + 8);
            const uint32_t computed = sl_tfrecord_mask_crc(sl_crc32c(0, h, 8));
            if (stored != computed)
                return stick(r, seq_fail(r, SL_ERR_CORRUPT,
                                         "length crc mismatch (stored 0x%08x, computed 0x%08x; "
                                         "length field reads %llu), record framing lost",
                                         stored, computed, (unsigned long long)len));
        }
        if (r->compression == SL_TFRECORD_NONE && r->size_known) {
            const uint64_t left = r->file_size > r->next_offset ? r->file_size - r->next_offset : 0;
            if (len > left || left - len < SL_TFR_FRAME)
                return stick(r, seq_fail(r, SL_ERR_TRUNCATED,
                                         "length field says %llu data bytes but only %llu "
                                         "bytes remain in the file for data and 16 of framing",
                                         (unsigned long long)len, (unsigned long long)left));
        } else if (len > SL_TFR_MAX_STREAM_RECORD) {
            return stick(r, seq_fail(r, SL_ERR_TOO_LARGE,
                                     "length field says %llu bytes, above the reader's %llu-byte "
                                     "limit for streamed records",
                                     (unsigned long long)len,
                                     (unsigned long long)SL_TFR_MAX_STREAM_RECORD));
        }
        const size_t total = (size_t)len + SL_TFR_FRAME;
        rc = ensure(r, total);
        if (rc < 0)
            return stick(r, rc);
        avail = r->end - r->pos;
        if (avail < total)
            return stick(
                r,
                seq_fail(r, SL_ERR_TRUNCATED,
                         avail < SL_TFR_HEADER + len
                             ? "%s ends inside the record data (%llu of %llu bytes)"
                             : "%s ends inside the record footer (%llu of %llu "
                               "bytes)",
                         what,
                         (unsigned long long)(avail < SL_TFR_HEADER + len
                                                  ? avail - SL_TFR_HEADER
                                                  : avail - SL_TFR_HEADER - len),
                         (unsigned long long)(avail < SL_TFR_HEADER + len ? len : SL_TFR_FOOTER)));
        const uint8_t *data = r->buf + r->pos + SL_TFR_HEADER;
        const uint64_t index = r->next_index, offset = r->next_offset;
        r->pos += total;
        r->next_offset += total;
        r->next_index++;
        if (r->verify) {
            const uint32_t stored = sl__load_u32le(data + len);
            const uint32_t computed = sl_tfrecord_mask_crc(sl_crc32c(0, data, (size_t)len));
            if (stored != computed) {
                if (r->skip_corrupt) {
                    r->skipped++;
                    if (r->on_skip)
                        r->on_skip(index, offset, r->on_skip_user);
                    continue;
                }
                return stick(r, rec_fail(r, index, offset, SL_ERR_CORRUPT,
                                         "data crc mismatch (stored 0x%08x, computed 0x%08x, "
                                         "%llu data bytes)",
                                         stored, computed, (unsigned long long)len));
            }
        }
        rec->data = data;
        rec->size = (size_t)len;
        rec->index = index;
        rec->offset = offset;
        return 0;
    }
}

/* ---- random access ----------------------------------------------------------------------- */

int sl_tfrecord_reader_read(sl_tfrecord_reader *r, uint64_t i, sl_tfrecord_record *rec)
{
    if (!r->has_index)
        return sl__errmsg_set(&r->err, SL_ERR_UNSUPPORTED,
                              "%s: record %llu: random access needs an index (index_path)", r->path,
                              (unsigned long long)i);
    if (i >= r->count)
        return sl__errmsg_set(&r->err, SL_ERR_RANGE, "%s: record %llu of %llu", r->path,
                              (unsigned long long)i, (unsigned long long)r->count);
    const sl_tfrecord_index_entry e = r->entries[i];
    /* Index load proved offset + size <= file size, so size fits in memory we can map. */
    if (e.size > SIZE_MAX)
        return rec_fail(r, i, e.offset, SL_ERR_TOO_LARGE, "record of %llu bytes",
                        (unsigned long long)e.size);
    const size_t size = (size_t)e.size;
    if (size > r->rcap) {
        uint8_t *nb = sl_realloc(r->rbuf, size);
        if (!nb)
            return rec_fail(r, i, e.offset, SL_ERR_NOMEM, "buffer of %zu bytes", size);
        r->rbuf = nb;
        r->rcap = size;
    }
    const int rc = r->read_fn ? r->read_fn(r->read_user, r->fd, r->rbuf, size, e.offset)
                              : sl__pread_full(r->fd, r->rbuf, size, e.offset);
    if (rc == SL_ERR_TRUNCATED)
        return rec_fail(r, i, e.offset, rc,
                        "file ends inside this %zu-byte record (it shrank after open)", size);
    if (rc < 0)
        return rec_fail(r, i, e.offset, rc, "pread");
    const uint64_t len = sl__load_u64le(r->rbuf);
    /* The index said where a record starts and how long it is; a length field that
     * disagrees means the index describes some other file (or an older version of it). */
    if (len != e.size - SL_TFR_FRAME)
        return rec_fail(r, i, e.offset, SL_ERR_STALE_INDEX,
                        "length field reads %llu but the index says %llu", (unsigned long long)len,
                        (unsigned long long)(e.size - SL_TFR_FRAME));
    const uint8_t *data = r->rbuf + SL_TFR_HEADER;
    if (r->verify) {
        uint32_t stored = sl__load_u32le(r->rbuf + 8);
        uint32_t computed = sl_tfrecord_mask_crc(sl_crc32c(0, r->rbuf, 8));
        if (stored != computed)
            return rec_fail(r, i, e.offset, SL_ERR_CORRUPT,
                            "length crc mismatch (stored 0x%08x, computed 0x%08x)", stored,
                            computed);
        stored = sl__load_u32le(data + len);
        computed = sl_tfrecord_mask_crc(sl_crc32c(0, data, (size_t)len));
        if (stored != computed)
            return rec_fail(r, i, e.offset, SL_ERR_CORRUPT,
                            "data crc mismatch (stored 0x%08x, computed 0x%08x, %llu data bytes)",
                            stored, computed, (unsigned long long)len);
    }
    rec->data = data;
    rec->size = (size_t)len;
    rec->index = i;
    rec->offset = e.offset;
    return 0;
}
