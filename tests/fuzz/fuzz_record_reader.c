/*
 * Fuzz target for the .sluice reader, verify and scan: whatever the bytes, opening, reading
 * every record (sequentially and at random, with and without verification, copied into the
 * reader's buffers and from a mapping of the file, and at random through the caller-read span
 * API: record_span, pread here, record_from), verifying and scanning must return codes,
 * never crash, never read out of bounds, never leak; and reading with zstd chunks
 * decompressed ahead on two threads must give what reading on one thread gives, message
 * included.
 *
 * The input becomes a memfd read through /proc/self/fd/N, so no file system is touched. Seed
 * corpus (tests/fuzz/corpus/fuzz_record_reader/): small files written by sl_record_writer (raw,
 * zstd, zstd with a dictionary, empty, typed, one record per chunk), the golden files of
 * tests/data/record (valid and damaged), and damaged copies (bytes flipped in a chunk, the
 * index or the footer; truncated).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sluice/alloc.h"
#include "sluice/record.h"

static void ignore_problem(const sl_record_problem *p, void *user)
{
    (void)p;
    ++*(uint64_t *)user;
}

static int count_record(const sl_record *rec, void *user)
{
    /* touch every byte handed out so an out-of-bounds pointer is caught */
    uint8_t x = 0;
    for (size_t i = 0; i < rec->size; i++)
        x ^= rec->data[i];
    *(uint64_t *)user += x;
    return 0;
}

/* Record i the way a batching caller reads it: its span read here with pread, then handed
 * back to the reader to check and serve. */
static uint64_t read_by_span(sl_record_reader *r, uint64_t i, size_t file_size)
{
    sl_record_span sp;
    if (sl_record_reader_record_span(r, i, &sp) != 0 || sp.length > file_size + 64)
        return 0;
    uint8_t header[64];
    int64_t header_got = 0;
    const int fd = sl_record_reader_fd(r);
    if (sp.header_length)
        header_got = pread(fd, header, sp.header_length, (off_t)sp.header_offset);
    sl_buffer *buf = NULL;
    int64_t got = 0;
    if (sp.length) {
        if (sl_buffer_create(&buf, sp.length + 8) != 0)
            return 0;
        got = pread(fd, (uint8_t *)sl_buffer_data(buf) + 8, sp.length, (off_t)sp.offset);
    }
    sl_record rec;
    uint64_t sum = 0;
    if (sl_record_reader_record_from(r, i, sp.header_length ? header : NULL, header_got, buf, 8,
                                     got, &rec) == 0)
        sum = rec.size ? rec.data[0] + rec.data[rec.size - 1] : 0;
    sl_buffer_release(buf);
    return sum;
}

static void read_all(const char *path, int skip_verify, int map, const uint8_t *data, size_t size)
{
    const sl_record_reader_options o = {.skip_verify = skip_verify, .map = map};
    sl_record_reader *r = NULL;
    if (sl_record_reader_open(&r, path, &o) == 0) {
        sl_record rec;
        uint64_t sum = 0;
        for (int n = 0; n < 100000 && sl_record_reader_next(r, &rec) == 0; n++)
            sum += rec.size ? rec.data[rec.size - 1] : 0;
        const uint64_t count = sl_record_reader_count(r);
        for (size_t k = 0; k < 64 && count; k++) {
            const uint64_t i = (k < size ? data[k] * 2654435761u : k) % count;
            if (sl_record_reader_read(r, i, &rec) == 0)
                sum += rec.size ? rec.data[0] : 0;
        }
        for (size_t k = 0; k < 16 && count; k++) /* the batch API, spans read by us */
            sum += read_by_span(r, (k < size ? data[size - 1 - k] * 40503u : k) % count, size);
        sl_record_reader_seek(r, count / 2);
        sl_record_reader_next(r, &rec);
        sl_record_file_info info;
        sl_record_reader_info(r, &info);
        (void)sum;
    }
    sl_record_reader_close(r);
}

/* Sequential reads on the caller's thread and with zstd chunks decompressed ahead on two
 * threads: the same records, then the same outcome with the same message. */
static void same_with_threads(const char *path)
{
    static const sl_record_reader_options one = {0}, two = {.threads = 2};
    sl_record_reader *a = NULL, *b = NULL;
    const int ra = sl_record_reader_open(&a, path, &one), rb = sl_record_reader_open(&b, path, &two);
    if ((ra == 0) != (rb == 0))
        __builtin_trap();
    if (ra == 0) {
        sl_record x, y;
        int rx, ry;
        for (int n = 0; n < 100000; n++) {
            rx = sl_record_reader_next(a, &x);
            ry = sl_record_reader_next(b, &y);
            if (rx != ry || (rx == 0 && (x.size != y.size || memcmp(x.data, y.data, x.size))))
                __builtin_trap();
            if (rx != 0)
                break;
        }
        if (rx < 0 && strcmp(sl_record_reader_errmsg(a), sl_record_reader_errmsg(b)) != 0)
            __builtin_trap();
    }
    sl_record_reader_close(a);
    sl_record_reader_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int fd = memfd_create("sluice-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const int64_t live = sl_alloc_live_bytes();
    read_all(path, 0, 0, data, size);
    read_all(path, 1, 0, data, size);
    read_all(path, 0, 1, data, size);
    same_with_threads(path);
    uint64_t problems = 0, sum = 0;
    sl_record_verify(path, ignore_problem, &problems);
    sl_schema *schema = NULL;
    sl_record_scan(path, count_record, ignore_problem, &sum, &schema);
    sl_schema_free(schema);
    close(fd);
    if (sl_alloc_live_bytes() != live) {
        fprintf(stderr, "fuzz_record_reader: leaked %lld bytes\n",
                (long long)(sl_alloc_live_bytes() - live));
        __builtin_trap();
    }
    return 0;
}
