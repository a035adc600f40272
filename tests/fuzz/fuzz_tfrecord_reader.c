/*
 * Fuzz target for the TFRecord reader (formats/src/tfrecord_reader.c) and index builder.
 *
 * Input: one control byte, then the file's bytes (held in a memfd and opened through
 * /proc/self/fd, so no disk I/O for the common case).
 *   bits 0-1  compression option: AUTO, NONE, GZIP, ZLIB
 *   bit 2     skip_corrupt
 *   bit 3     skip_verify
 *   bit 4     also build an index (in /dev/shm) and, when that succeeds, read every record
 *             through it: each must equal what the sequential pass returned
 *   bit 5     map: a plain file is read from a mapping instead of read() into a window
 *   bit 6     read_fn: every read is a positional read through a callback (as the engine's
 *             io_uring reads are), unless bit 5 asked for a mapping
 *
 * Whatever the bytes, the reader must end with SL_EOF or a negative code, never crash, and
 * leave no sluice allocation behind; any broken property aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sluice/alloc.h"
#include "sluice/status.h"
#include "sluice/tfrecord.h"

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

typedef struct seen {
    uint64_t offset;
    size_t size;
    uint32_t sum; /* cheap fingerprint of the payload */
} seen;

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void check_via_index(const char *path, const seen *recs, size_t nrecs, int sequential_rc)
{
    char idx[128];
    snprintf(idx, sizeof idx, "/dev/shm/sl-fuzz-tfrecord-%ld.idx", (long)getpid());
    uint64_t count = 0;
    char msg[256];
    const int rc = sl_tfrecord_index_build(path, idx, &count, msg, sizeof msg);
    if (rc != 0) {
        CHECK(rc < 0);
        CHECK(access(idx, F_OK) != 0); /* a failed build publishes nothing */
        return;
    }
    /* A successful build verified every record, so a verifying sequential pass agrees. */
    CHECK(sequential_rc == SL_EOF && count == nrecs);
    const sl_tfrecord_reader_options o = {.compression = SL_TFRECORD_NONE, .index_path = idx};
    sl_tfrecord_reader *r;
    CHECK(sl_tfrecord_reader_open(&r, path, &o) == 0);
    uint64_t n = 0;
    CHECK(sl_tfrecord_reader_count(r, &n) == 0 && n == nrecs);
    for (uint64_t i = nrecs; i-- > 0;) {
        sl_tfrecord_record rec;
        CHECK(sl_tfrecord_reader_read(r, i, &rec) == 0);
        CHECK(rec.offset == recs[i].offset && rec.size == recs[i].size);
        CHECK(checksum(rec.data, rec.size) == recs[i].sum);
    }
    sl_tfrecord_record rec;
    CHECK(sl_tfrecord_reader_read(r, nrecs, &rec) == SL_ERR_RANGE);
    sl_tfrecord_reader_close(r);
    unlink(idx);
}

/* The read_fn of bit 6: pread of exactly n bytes, SL_ERR_TRUNCATED when the file ends first. */
static int pread_exact(void *user, int fd, void *buf, size_t n, uint64_t offset)
{
    (void)user;
    uint8_t *p = buf;
    while (n) {
        const ssize_t k = pread(fd, p, n, (off_t)offset);
        if (k <= 0)
            return k < 0 ? SL_ERR_INVAL : SL_ERR_TRUNCATED;
        p += k;
        n -= (size_t)k;
        offset += (uint64_t)k;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t ctl = data[0];
    data++;
    size--;
    const int fd = memfd_create("sl-fuzz-tfrecord", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    const int64_t live = sl_alloc_live_bytes();
    const sl_tfrecord_reader_options o = {
        .compression = (sl_tfrecord_compression)(ctl & 3),
        .skip_corrupt = (ctl >> 2) & 1,
        .skip_verify = (ctl >> 3) & 1,
        .map = (ctl >> 5) & 1,
        .read_fn = (ctl >> 6) & 1 && !((ctl >> 5) & 1) ? pread_exact : NULL,
    };
    const int want_index =
        (ctl >> 4) & 1 && !o.skip_verify && !o.skip_corrupt && o.compression <= SL_TFRECORD_NONE;
    seen *recs = NULL;
    size_t nrecs = 0, cap = 0;
    sl_tfrecord_reader *r = NULL;
    int rc = sl_tfrecord_reader_open(&r, path, &o);
    CHECK(r != NULL);
    CHECK(sl_tfrecord_reader_errmsg(r) != NULL);
    const int plain = rc == 0 && sl_tfrecord_reader_compression(r) == SL_TFRECORD_NONE;
    uint64_t prev_end = 0;
    while (rc == 0) {
        sl_tfrecord_record rec;
        rc = sl_tfrecord_reader_next(r, &rec);
        if (rc != 0)
            break;
        CHECK(rec.offset >= prev_end);
        CHECK(o.skip_corrupt || rec.offset == prev_end);
        prev_end = rec.offset + rec.size + 16;
        if (plain)
            CHECK(prev_end <= size);
        if (nrecs == cap) {
            cap = cap ? 2 * cap : 64;
            recs = realloc(recs, cap * sizeof *recs);
        }
        recs[nrecs++] = (seen){rec.offset, rec.size, checksum(rec.data, rec.size)};
    }
    CHECK(rc == SL_EOF || rc < 0);
    if (rc < 0) {
        /* errors are sticky and come with a message naming the file */
        sl_tfrecord_record rec;
        CHECK(sl_tfrecord_reader_next(r, &rec) == rc);
        CHECK(strstr(sl_tfrecord_reader_errmsg(r), path) != NULL);
    }
    sl_tfrecord_reader_close(r);
    if (want_index && plain)
        check_via_index(path, recs, nrecs, rc);
    free(recs);
    close(fd);
    CHECK(sl_alloc_live_bytes() == live);
    return 0;
}
