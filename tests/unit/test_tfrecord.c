/*
 * TFRecord reader and writer: the framing vectors of TFRECORD-VECTORS.md, round trips in all
 * three compressions, interoperability with the independent Python implementation
 * (tests/tools/tfrecord_py.py), the golden corrupt files of tests/data/tfrecord/README.md,
 * byte flips, truncation at every offset, skip_corrupt, bounded memory on lying lengths,
 * allocation behaviour, and the writer's atomic publish.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sluice/alloc.h"
#include "sluice/crc32c.h"
#include "sluice/status.h"
#include "sluice/tfrecord.h"

enum { PATH_CAP = 1024 };
/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct payloads {
    size_t n, cap;
    uint8_t **data;
    size_t *size;
} payloads;

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Appends a payload of `size` deterministic bytes (content depends on seed). */
static void payloads_add(payloads *p, size_t size, uint32_t seed)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->data = realloc(p->data, p->cap * sizeof *p->data);
        p->size = realloc(p->size, p->cap * sizeof *p->size);
    }
    uint8_t *d = malloc(size ? size : 1);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++)
        d[i] = (uint8_t)xorshift(&s);
    p->data[p->n] = d;
    p->size[p->n] = size;
    p->n++;
}

/* `count` payloads of 0..max_size bytes. */
static void payloads_add_small(payloads *p, size_t count, size_t max_size, uint32_t seed)
{
    uint32_t s = seed + 77;
    for (size_t k = 0; k < count; k++)
        payloads_add(p, xorshift(&s) % (max_size + 1), seed * 100003u + (uint32_t)k);
}

static void payloads_free(payloads *p)
{
    for (size_t k = 0; k < p->n; k++)
        free(p->data[k]);
    free(p->data);
    free(p->size);
    memset(p, 0, sizeof *p);
}

/* snprintf into a PATH_CAP buffer, failing the test on truncation. */
static void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, PATH_CAP, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_CAP)
        fail_msg("path too long: %s", buf);
}

static void path_in(char *buf, const char *name)
{
    pathf(buf, "%s/%s", sl_test_dir, name);
}

static void write_sluice(const char *path, sl_tfrecord_compression c, const payloads *p)
{
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, c), 0);
    for (size_t k = 0; k < p->n; k++)
        assert_int_equal(sl_tfrecord_writer_write(w, p->data[k], p->size[k]), 0);
    assert_int_equal(sl_tfrecord_writer_finish(w), 0);
    sl_tfrecord_writer_close(w);
}

/* Reads every record and checks it equals p, in order, then SL_EOF. */
static void expect_records_as(const char *path, const sl_tfrecord_reader_options *opts,
                              const payloads *p)
{
    sl_tfrecord_reader *r;
    const int rc = sl_tfrecord_reader_open(&r, path, opts);
    if (rc)
        fail_msg("open %s: %s", path, sl_tfrecord_reader_errmsg(r));
    uint64_t offset = 0;
    for (size_t k = 0; k < p->n; k++) {
        sl_tfrecord_record rec;
        const int n = sl_tfrecord_reader_next(r, &rec);
        if (n)
            fail_msg("record %zu: %s", k, sl_tfrecord_reader_errmsg(r));
        assert_int_equal(rec.size, p->size[k]);
        assert_int_equal(rec.index, k);
        assert_int_equal(rec.offset, offset);
        if (rec.size)
            assert_memory_equal(rec.data, p->data[k], rec.size);
        offset += rec.size + 16;
    }
    sl_tfrecord_record rec;
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_EOF);
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_EOF);
    sl_tfrecord_reader_close(r);
}

/* Options with `map` set: the same file read from a mapping instead of read() into a window. */
static sl_tfrecord_reader_options mapped_options(const sl_tfrecord_reader_options *opts)
{
    sl_tfrecord_reader_options m = {0};
    if (opts)
        m = *opts;
    m.map = 1;
    return m;
}

/* expect_records through read() and again through a mapping (plain files; `map` is ignored
 * for compressed ones). */
static void expect_records(const char *path, const sl_tfrecord_reader_options *opts,
                           const payloads *p)
{
    const sl_tfrecord_reader_options m = mapped_options(opts);
    expect_records_as(path, opts, p);
    expect_records_as(path, &m, p);
}

static int python_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int python_tool(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return sl_test_system("%s '%s/tests/tools/tfrecord_py.py' %s", sl_test_python(),
                          sl_test_source_dir(), args);
}

/* Writes payload k to dir/<k as 8 digits>, the layout tfrecord_py.py reads and dumps. */
static void dump_payloads(const char *dir, const payloads *p)
{
    assert_int_equal(mkdir(dir, 0777), 0);
    for (size_t k = 0; k < p->n; k++) {
        char path[PATH_CAP];
        pathf(path, "%s/%08zu", dir, k);
        assert_int_equal(sl_test_write_file(path, p->data[k], p->size[k]), 0);
    }
}

/* Checks dir holds exactly p's payloads as dumped by tfrecord_py.py read --dump-dir. */
static void expect_dumped(const char *dir, const payloads *p)
{
    for (size_t k = 0; k <= p->n; k++) {
        char path[PATH_CAP];
        pathf(path, "%s/%08zu", dir, k);
        uint8_t *data;
        size_t len;
        const int rc = sl_test_read_file(path, &data, &len);
        if (k == p->n) {
            assert_int_equal(rc, -ENOENT); /* no extra record */
            break;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(len, p->size[k]);
        if (len)
            assert_memory_equal(data, p->data[k], len);
        free(data);
    }
}

static void golden_path(char *buf, const char *name)
{
    pathf(buf, "%s/tfrecord/%s", sl_test_data_dir(), name);
}

static void two_payloads(payloads *p)
{
    payloads_add(p, 0, 0);
    p->data[0][0] = 0;
    payloads_add(p, 3, 0);
    memcpy(p->data[1], "abc", 3);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    uint8_t *data;
    assert_int_equal(sl_test_read_file(path, &data, len), 0);
    return data;
}

/* The first `n` framed bytes of three records (5, 0 and 7 payload bytes), built by hand. */
static size_t three_records(uint8_t *out)
{
    static const char *const payload[3] = {"hello", "", "goodbye"};
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        const size_t len = strlen(payload[k]);
        sl_tfrecord_frame_header(out + n, len);
        memcpy(out + n + 12, payload[k], len);
        sl_tfrecord_frame_footer(out + n + 12 + len, payload[k], len);
        n += len + 16;
    }
    return n; /* 21 + 16 + 23 = 60 */
}

/* Opens path and reads until an error; returns the code and the number of good records. */
static int read_until_error_as(const char *path, const sl_tfrecord_reader_options *opts,
                               size_t *good, char *msg, size_t msgcap)
{
    sl_tfrecord_reader *r;
    int rc = sl_tfrecord_reader_open(&r, path, opts);
    *good = 0;
    while (rc == 0) {
        sl_tfrecord_record rec;
        rc = sl_tfrecord_reader_next(r, &rec);
        if (rc == 0)
            (*good)++;
    }
    if (msg)
        snprintf(msg, msgcap, "%s", sl_tfrecord_reader_errmsg(r));
    sl_tfrecord_reader_close(r);
    return rc;
}

/* read_until_error, checking that a mapped reader stops at the same record with the same code
 * and message. */
static int read_until_error(const char *path, const sl_tfrecord_reader_options *opts, size_t *good,
                            char *msg, size_t msgcap)
{
    const sl_tfrecord_reader_options m = mapped_options(opts);
    char mapped_msg[512];
    size_t mapped_good = 0;
    const int mapped_rc =
        read_until_error_as(path, &m, &mapped_good, mapped_msg, sizeof mapped_msg);
    const int rc = read_until_error_as(path, opts, good, msg, msgcap);
    assert_int_equal(mapped_rc, rc);
    assert_int_equal(mapped_good, *good);
    if (msg)
        assert_string_equal(mapped_msg, msg);
    return rc;
}

/* ---- vectors ------------------------------------------------------------------------------ */

static void test_frame_empty_payload_vector(void **state)
{
    uint8_t h[12], f[4];
    sl_tfrecord_frame_header(h, 0);
    sl_tfrecord_frame_footer(f, "", 0);
    static const uint8_t want_h[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x03, 0x98, 0x07};
    static const uint8_t want_f[4] = {0xd8, 0xea, 0x82, 0xa2};
    assert_memory_equal(h, want_h, 12);
    assert_memory_equal(f, want_f, 4);
}

static void test_frame_abc_vector(void **state)
{
    uint8_t h[12], f[4];
    sl_tfrecord_frame_header(h, 3);
    sl_tfrecord_frame_footer(f, "abc", 3);
    static const uint8_t want_h[12] = {3, 0, 0, 0, 0, 0, 0, 0, 0xb0, 0x99, 0x49, 0x0e};
    static const uint8_t want_f[4] = {0x6e, 0x57, 0xf1, 0x21};
    assert_memory_equal(h, want_h, 12);
    assert_memory_equal(f, want_f, 4);
}

static void test_mask_known_values(void **state)
{
    /* mask(0) is the delta alone; crc32c("123456789") = e3069283 rotated right by 15. */
    assert_int_equal(sl_tfrecord_mask_crc(0), 0xa282ead8u);
    const uint32_t c = 0xe3069283u;
    assert_int_equal(sl_tfrecord_mask_crc(c), (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u));
    assert_int_equal(sl_tfrecord_unmask_crc(0x07980329u), sl_crc32c(0, "\0\0\0\0\0\0\0\0", 8));
}

static void test_unmask_inverts_mask(void **state)
{
    uint32_t s = 12345;
    for (int k = 0; k < 100000; k++) {
        const uint32_t v = xorshift(&s);
        assert_int_equal(sl_tfrecord_unmask_crc(sl_tfrecord_mask_crc(v)), v);
    }
    assert_int_equal(sl_tfrecord_unmask_crc(sl_tfrecord_mask_crc(0xffffffffu)), 0xffffffffu);
}

static void test_writer_output_is_vector_bytes(void **state)
{
    payloads p = {0};
    two_payloads(&p);
    char path[PATH_CAP];
    path_in(path, "vec.tfrecord");
    write_sluice(path, SL_TFRECORD_NONE, &p);
    size_t len;
    uint8_t *got = read_whole(path, &len);
    static const uint8_t want[35] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29,
                                     0x03, 0x98, 0x07, 0xd8, 0xea, 0x82, 0xa2, 0x03, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x99, 0x49,
                                     0x0e, 0x61, 0x62, 0x63, 0x6e, 0x57, 0xf1, 0x21};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    free(got);
    payloads_free(&p);
}

/* ---- golden valid files ------------------------------------------------------------------- */

static void expect_golden_two(const char *name, sl_tfrecord_compression opt,
                              sl_tfrecord_compression detected)
{
    char path[PATH_CAP];
    golden_path(path, name);
    payloads p = {0};
    two_payloads(&p);
    const sl_tfrecord_reader_options o = {.compression = opt};
    expect_records(path, &o, &p);
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, &o), 0);
    assert_int_equal(sl_tfrecord_reader_compression(r), detected);
    sl_tfrecord_reader_close(r);
    payloads_free(&p);
}

static void test_golden_plain_auto(void **state)
{
    expect_golden_two("two.tfrecord", SL_TFRECORD_AUTO, SL_TFRECORD_NONE);
}

static void test_golden_gzip_auto(void **state)
{
    expect_golden_two("two.tfrecord.gz", SL_TFRECORD_AUTO, SL_TFRECORD_GZIP);
}

static void test_golden_zlib_auto(void **state)
{
    expect_golden_two("two.tfrecord.zlib", SL_TFRECORD_AUTO, SL_TFRECORD_ZLIB);
}

static void test_golden_gzip_explicit(void **state)
{
    expect_golden_two("two.tfrecord.gz", SL_TFRECORD_GZIP, SL_TFRECORD_GZIP);
}

static void test_golden_zlib_explicit(void **state)
{
    expect_golden_two("two.tfrecord.zlib", SL_TFRECORD_ZLIB, SL_TFRECORD_ZLIB);
}

static void test_golden_multimember_gzip(void **state)
{
    expect_golden_two("two_members.tfrecord.gz", SL_TFRECORD_AUTO, SL_TFRECORD_GZIP);
}

static void test_empty_file_is_eof(void **state)
{
    char path[PATH_CAP];
    golden_path(path, "no_records.tfrecord");
    const payloads none = {0};
    const sl_tfrecord_compression modes[] = {SL_TFRECORD_AUTO, SL_TFRECORD_NONE, SL_TFRECORD_GZIP,
                                             SL_TFRECORD_ZLIB};
    for (size_t k = 0; k < 4; k++) {
        const sl_tfrecord_reader_options o = {.compression = modes[k]};
        expect_records(path, &o, &none);
    }
}

static void test_auto_trusts_crc_over_zlib_lookalike(void **state)
{
    char path[PATH_CAP];
    golden_path(path, "zlib_lookalike.tfrecord");
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, NULL), 0);
    assert_int_equal(sl_tfrecord_reader_compression(r), SL_TFRECORD_NONE);
    sl_tfrecord_record rec;
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
    assert_int_equal(rec.size, 7432);
    assert_int_equal(rec.data[255], 255);
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
    assert_int_equal(rec.size, 3);
    assert_memory_equal(rec.data, "abc", 3);
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_EOF);
    sl_tfrecord_reader_close(r);
}

static void test_gzip_opened_as_plain_fails_framing(void **state)
{
    char path[PATH_CAP], msg[512];
    golden_path(path, "two.tfrecord.gz");
    const sl_tfrecord_reader_options o = {.compression = SL_TFRECORD_NONE};
    size_t good;
    assert_int_equal(read_until_error(path, &o, &good, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_int_equal(good, 0);
    assert_non_null(strstr(msg, "record 0 at offset 0: length crc mismatch"));
}

static void test_plain_opened_as_gzip_is_corrupt(void **state)
{
    char path[PATH_CAP], msg[512];
    golden_path(path, "two.tfrecord");
    const sl_tfrecord_reader_options o = {.compression = SL_TFRECORD_GZIP};
    size_t good;
    assert_int_equal(read_until_error(path, &o, &good, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_non_null(strstr(msg, "(decompressed gzip stream): gzip data invalid"));
}

/* ---- golden corrupt files (README.md's table) --------------------------------------------- */

static void expect_golden_error(const char *name, size_t want_good, int want_rc,
                                const char *want_msg)
{
    char path[PATH_CAP], msg[512];
    golden_path(path, name);
    size_t good;
    const int rc = read_until_error(path, NULL, &good, msg, sizeof msg);
    if (rc != want_rc || good != want_good || !strstr(msg, want_msg))
        fail_msg("%s: got %s after %zu records (%s); want %s after %zu with \"%s\"", name,
                 sl_err_name(rc), good, msg, sl_err_name(want_rc), want_good, want_msg);
    /* The message names the file first. */
    assert_int_equal(strncmp(msg, path, strlen(path)), 0);
}

#define GOLDEN(fn, file, good, code, text)           \
    static void fn(void **state)                     \
    {                                                \
        expect_golden_error(file, good, code, text); \
    }
GOLDEN(test_golden_bad_length_crc, "bad_length_crc.tfrecord", 1, SL_ERR_CORRUPT,
       "record 1 at offset 16: length crc mismatch")
GOLDEN(test_golden_bad_length, "bad_length.tfrecord", 1, SL_ERR_CORRUPT,
       "record 1 at offset 16: length crc mismatch")
GOLDEN(test_golden_bad_data_crc, "bad_data_crc.tfrecord", 1, SL_ERR_CORRUPT,
       "record 1 at offset 16: data crc mismatch")
GOLDEN(test_golden_bad_data_crc_field, "bad_data_crc_field.tfrecord", 1, SL_ERR_CORRUPT,
       "record 1 at offset 16: data crc mismatch")
GOLDEN(test_golden_truncated_header, "truncated_header.tfrecord", 1, SL_ERR_TRUNCATED,
       "record 1 at offset 16: file ends inside the record header (5 of 12 bytes)")
GOLDEN(test_golden_truncated_data, "truncated_data.tfrecord", 1, SL_ERR_TRUNCATED,
       "record 1 at offset 16: length field says 3 data bytes but only 14 bytes remain")
GOLDEN(test_golden_truncated_footer, "truncated_footer.tfrecord", 1, SL_ERR_TRUNCATED,
       "record 1 at offset 16: length field says 3 data bytes but only 17 bytes remain")
GOLDEN(test_golden_huge_length, "huge_length.tfrecord", 1, SL_ERR_TRUNCATED,
       "record 1 at offset 16: length field says 4611686018427387904 data bytes")
GOLDEN(test_golden_truncated_gzip_trailer, "truncated_trailer.tfrecord.gz", 2, SL_ERR_TRUNCATED,
       "record 2 at offset 35 (decompressed gzip stream): compressed file ends before the end "
       "of its gzip stream")
GOLDEN(test_golden_bad_gzip_crc, "bad_gzip_crc.tfrecord.gz", 2, SL_ERR_CORRUPT,
       "gzip data invalid near compressed byte")
GOLDEN(test_golden_zlib_trailing_garbage, "trailing_garbage.tfrecord.zlib", 2, SL_ERR_CORRUPT,
       "data follows the end of the zlib stream")
GOLDEN(test_golden_not_deflate, "not_deflate.tfrecord.gz", 0, SL_ERR_CORRUPT,
       "record 0 at offset 0 (decompressed gzip stream): gzip data invalid")

/* ---- round trips -------------------------------------------------------------------------- */

/* Empty records at both ends, a 1.5 MB record (bigger than the writer's staging block and
 * the reader's first window) and 10k small ones. */
static void mixed_payloads(payloads *p)
{
    payloads_add(p, 0, 1);
    payloads_add_small(p, 5000, 200, 2);
    payloads_add(p, 1536 * 1024 + 7, 3);
    payloads_add(p, 0, 4);
    payloads_add_small(p, 5000, 200, 5);
    payloads_add(p, 0, 6);
}

static void roundtrip(sl_tfrecord_compression c, const char *name)
{
    payloads p = {0};
    mixed_payloads(&p);
    char path[PATH_CAP];
    path_in(path, name);
    write_sluice(path, c, &p);
    expect_records(path, NULL, &p);
    const sl_tfrecord_reader_options o = {.compression = c};
    expect_records(path, &o, &p);
    payloads_free(&p);
}

static void test_roundtrip_none(void **state)
{
    roundtrip(SL_TFRECORD_NONE, "rt.tfrecord");
}

static void test_roundtrip_gzip(void **state)
{
    roundtrip(SL_TFRECORD_GZIP, "rt.tfrecord.gz");
}

static void test_roundtrip_zlib(void **state)
{
    roundtrip(SL_TFRECORD_ZLIB, "rt.tfrecord.zlib");
}

static void test_roundtrip_zero_records(void **state)
{
    const payloads none = {0};
    const sl_tfrecord_compression modes[] = {SL_TFRECORD_NONE, SL_TFRECORD_GZIP, SL_TFRECORD_ZLIB};
    for (size_t k = 0; k < 3; k++) {
        char path[PATH_CAP];
        path_in(path, "zero.tfrecord");
        write_sluice(path, modes[k], &none);
        const sl_tfrecord_reader_options o = {.compression = modes[k]};
        expect_records(path, &o, &none);
    }
}

static void test_record_larger_than_4_windows(void **state)
{
    payloads p = {0};
    payloads_add(&p, 9 * 1024 * 1024 + 3, 9);
    payloads_add(&p, 5, 10);
    char path[PATH_CAP];
    path_in(path, "big.tfrecord.gz");
    write_sluice(path, SL_TFRECORD_GZIP, &p);
    expect_records(path, NULL, &p);
    path_in(path, "big.tfrecord");
    write_sluice(path, SL_TFRECORD_NONE, &p);
    expect_records(path, NULL, &p);
    payloads_free(&p);
}

/* ---- interoperability with tests/tools/tfrecord_py.py ------------------------------------- */

static void interop_payloads(payloads *p)
{
    payloads_add(p, 0, 11);
    payloads_add_small(p, 300, 3000, 12);
    payloads_add(p, 1200 * 1024, 13);
    payloads_add(p, 0, 14);
    payloads_add(p, 1, 15);
}

static void python_writes_sluice_reads(const char *comp, const char *name)
{
    payloads p = {0};
    interop_payloads(&p);
    char dir[PATH_CAP], path[PATH_CAP];
    path_in(dir, name);
    sl_test_rmtree(dir);
    dump_payloads(dir, &p);
    pathf(path, "%s.tfrecord", dir);
    assert_int_equal(
        python_tool("write '%s' --compression %s --payloads-from '%s'", path, comp, dir), 0);
    expect_records(path, NULL, &p);
    payloads_free(&p);
}

static void test_python_plain_read_by_sluice(void **state)
{
    python_writes_sluice_reads("none", "py_none");
}

static void test_python_gzip_read_by_sluice(void **state)
{
    python_writes_sluice_reads("gzip", "py_gzip");
}

static void test_python_zlib_read_by_sluice(void **state)
{
    python_writes_sluice_reads("zlib", "py_zlib");
}

static void test_python_multimember_gzip_read_by_sluice(void **state)
{
    payloads p = {0};
    interop_payloads(&p);
    char dir[PATH_CAP], path[PATH_CAP];
    path_in(dir, "py_members");
    sl_test_rmtree(dir);
    dump_payloads(dir, &p);
    pathf(path, "%s.tfrecord.gz", dir);
    assert_int_equal(
        python_tool("write '%s' --compression gzip --members 5 --payloads-from '%s'", path, dir),
        0);
    /* Sanity: the file really holds several members (each starts with the gzip magic). */
    size_t len;
    uint8_t *raw = read_whole(path, &len);
    size_t magics = 0;
    for (size_t i = 0; i + 3 < len; i++)
        magics += raw[i] == 0x1f && raw[i + 1] == 0x8b && raw[i + 2] == 8 && raw[i + 3] == 0;
    free(raw);
    assert_true(magics >= 5);
    expect_records(path, NULL, &p);
    payloads_free(&p);
}

static void sluice_writes_python_reads(sl_tfrecord_compression c, const char *name)
{
    payloads p = {0};
    interop_payloads(&p);
    char path[PATH_CAP], dump[PATH_CAP];
    path_in(path, name);
    pathf(dump, "%s.dump", path);
    sl_test_rmtree(dump);
    write_sluice(path, c, &p);
    assert_int_equal(python_tool("read '%s' --dump-dir '%s' >/dev/null", path, dump), 0);
    expect_dumped(dump, &p);
    payloads_free(&p);
}

static void test_sluice_plain_read_by_python(void **state)
{
    sluice_writes_python_reads(SL_TFRECORD_NONE, "sl_none.tfrecord");
}

static void test_sluice_gzip_read_by_python(void **state)
{
    sluice_writes_python_reads(SL_TFRECORD_GZIP, "sl_gzip.tfrecord.gz");
}

static void test_sluice_zlib_read_by_python(void **state)
{
    sluice_writes_python_reads(SL_TFRECORD_ZLIB, "sl_zlib.tfrecord.zlib");
}

static void test_sluice_plain_bytes_equal_python(void **state)
{
    payloads p = {0};
    interop_payloads(&p);
    char dir[PATH_CAP], mine[PATH_CAP], theirs[PATH_CAP];
    path_in(dir, "bytes_eq");
    sl_test_rmtree(dir);
    dump_payloads(dir, &p);
    path_in(mine, "bytes_eq.sluice.tfrecord");
    path_in(theirs, "bytes_eq.py.tfrecord");
    write_sluice(mine, SL_TFRECORD_NONE, &p);
    assert_int_equal(python_tool("write '%s' --payloads-from '%s'", theirs, dir), 0);
    size_t a_len, b_len;
    uint8_t *a = read_whole(mine, &a_len), *b = read_whole(theirs, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
    payloads_free(&p);
}

static void compressed_decompresses_to_plain(sl_tfrecord_compression c, const char *comp)
{
    payloads p = {0};
    interop_payloads(&p);
    char plain[PATH_CAP], packed[PATH_CAP], unpacked[PATH_CAP];
    path_in(plain, "dec.tfrecord");
    path_in(packed, "dec.tfrecord.packed");
    path_in(unpacked, "dec.tfrecord.unpacked");
    write_sluice(plain, SL_TFRECORD_NONE, &p);
    write_sluice(packed, c, &p);
    assert_int_equal(python_tool("decompress '%s' '%s' --compression %s", packed, unpacked, comp),
                     0);
    size_t a_len, b_len;
    uint8_t *a = read_whole(plain, &a_len), *b = read_whole(unpacked, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
    payloads_free(&p);
}

static void test_sluice_gzip_decompresses_to_plain_bytes(void **state)
{
    compressed_decompresses_to_plain(SL_TFRECORD_GZIP, "gzip");
}

static void test_sluice_zlib_decompresses_to_plain_bytes(void **state)
{
    compressed_decompresses_to_plain(SL_TFRECORD_ZLIB, "zlib");
}

static void test_sluice_gzip_has_gzip_header(void **state)
{
    payloads p = {0};
    two_payloads(&p);
    char path[PATH_CAP];
    path_in(path, "hdr.tfrecord.gz");
    write_sluice(path, SL_TFRECORD_GZIP, &p);
    size_t len;
    uint8_t *b = read_whole(path, &len);
    assert_true(len > 18);
    /* magic, CM = deflate, mtime 0 (reproducible output) */
    static const uint8_t want[8] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0};
    assert_memory_equal(b, want, 8);
    free(b);
    payloads_free(&p);
}

/* ---- byte flips on a generated file ------------------------------------------------------- */

/* Flips byte `at` of the three-record file and reads it; record 1 spans offsets 21..36. */
static void expect_flip_error(size_t at, const char *what)
{
    uint8_t buf[64];
    const size_t n = three_records(buf);
    buf[at] ^= 0x40;
    char path[PATH_CAP], msg[512], want[128];
    path_in(path, "flip.tfrecord");
    assert_int_equal(sl_test_write_file(path, buf, n), 0);
    size_t good;
    assert_int_equal(read_until_error(path, NULL, &good, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_int_equal(good, 1);
    snprintf(want, sizeof want, "flip.tfrecord: record 1 at offset 21: %s", what);
    if (!strstr(msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", msg, want);
}

static void test_flip_in_length_field(void **state)
{
    expect_flip_error(21 + 0, "length crc mismatch");
}

static void test_flip_in_length_crc(void **state)
{
    expect_flip_error(21 + 10, "length crc mismatch");
}

static void test_flip_in_data_crc(void **state)
{
    /* record 1 has an empty payload: its data crc starts right after the header */
    expect_flip_error(21 + 12, "data crc mismatch");
}

static void test_flip_in_data(void **state)
{
    uint8_t buf[64];
    const size_t n = three_records(buf);
    buf[37 + 12 + 4] ^= 1; /* record 2's payload */
    char path[PATH_CAP], msg[512];
    path_in(path, "flip_data.tfrecord");
    assert_int_equal(sl_test_write_file(path, buf, n), 0);
    size_t good;
    assert_int_equal(read_until_error(path, NULL, &good, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_int_equal(good, 2);
    assert_non_null(strstr(msg, "record 2 at offset 37: data crc mismatch"));
}

static void test_skip_verify_returns_damaged_data(void **state)
{
    uint8_t buf[64];
    const size_t n = three_records(buf);
    buf[12] ^= 0x20; /* "hello" -> "Hello" */
    char path[PATH_CAP];
    path_in(path, "noverify.tfrecord");
    assert_int_equal(sl_test_write_file(path, buf, n), 0);
    const sl_tfrecord_reader_options o = {.skip_verify = 1};
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, &o), 0);
    sl_tfrecord_record rec;
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
    assert_memory_equal(rec.data, "Hello", 5);
    sl_tfrecord_reader_close(r);
}

static void test_errors_are_sticky(void **state)
{
    char path[PATH_CAP], msg[512];
    golden_path(path, "truncated_header.tfrecord");
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, NULL), 0);
    sl_tfrecord_record rec;
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_ERR_TRUNCATED);
    snprintf(msg, sizeof msg, "%s", sl_tfrecord_reader_errmsg(r));
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_ERR_TRUNCATED);
    assert_string_equal(sl_tfrecord_reader_errmsg(r), msg);
    sl_tfrecord_reader_close(r);
}

/* ---- skip_corrupt ------------------------------------------------------------------------- */

/* Ten records, payload k = 10 + k bytes; data crcs of `bad` records broken. */
static void write_ten_with_bad(const char *path, const size_t *bad, size_t nbad, payloads *p)
{
    for (size_t k = 0; k < 10; k++)
        payloads_add(p, 10 + k, 20 + (uint32_t)k);
    write_sluice(path, SL_TFRECORD_NONE, p);
    size_t len;
    uint8_t *b = read_whole(path, &len);
    for (size_t j = 0; j < nbad; j++) {
        size_t off = 0;
        for (size_t k = 0; k < bad[j]; k++)
            off += p->size[k] + 16;
        b[off + 12 + 3] ^= 0x01;
    }
    assert_int_equal(sl_test_write_file(path, b, len), 0);
    free(b);
}

static void test_skip_corrupt_skips_and_counts_bad_data(void **state)
{
    char path[PATH_CAP];
    path_in(path, "skip.tfrecord");
    static const size_t bad[] = {0, 4, 5, 9};
    payloads p = {0};
    write_ten_with_bad(path, bad, 4, &p);
    const sl_tfrecord_reader_options o = {.skip_corrupt = 1};
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, &o), 0);
    static const uint64_t want[] = {1, 2, 3, 6, 7, 8};
    sl_tfrecord_record rec;
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
        assert_int_equal(rec.index, want[k]);
        assert_int_equal(rec.size, p.size[want[k]]);
        assert_memory_equal(rec.data, p.data[want[k]], rec.size);
    }
    assert_int_equal(sl_tfrecord_reader_next(r, &rec), SL_EOF);
    assert_int_equal(sl_tfrecord_reader_skipped(r), 4);
    sl_tfrecord_reader_close(r);
    payloads_free(&p);
}

static void test_skip_corrupt_gzip(void **state)
{
    /* Same damage, but in the decompressed stream of a gzip file. */
    char path[PATH_CAP], gz[PATH_CAP];
    path_in(path, "skipz.tfrecord");
    path_in(gz, "skipz.tfrecord.gz");
    static const size_t bad[] = {3};
    payloads p = {0};
    write_ten_with_bad(path, bad, 1, &p);
    size_t len;
    uint8_t *b = read_whole(path, &len);
    gzFile f = gzopen(gz, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, b, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
    free(b);
    const sl_tfrecord_reader_options o = {.skip_corrupt = 1};
    size_t good;
    assert_int_equal(read_until_error(gz, &o, &good, NULL, 0), SL_EOF);
    assert_int_equal(good, 9);
    payloads_free(&p);
}

static void test_skip_corrupt_does_not_skip_length_crc(void **state)
{
    char path[PATH_CAP], msg[512];
    golden_path(path, "bad_length_crc.tfrecord");
    const sl_tfrecord_reader_options o = {.skip_corrupt = 1};
    size_t good;
    assert_int_equal(read_until_error(path, &o, &good, msg, sizeof msg), SL_ERR_CORRUPT);
    assert_int_equal(good, 1);
    assert_non_null(strstr(msg, "length crc mismatch"));
}

/* ---- truncation --------------------------------------------------------------------------- */

static void test_truncate_plain_at_every_offset(void **state)
{
    uint8_t buf[64];
    const size_t n = three_records(buf);
    static const size_t ends[3] = {21, 37, 60};
    char path[PATH_CAP];
    path_in(path, "cut.tfrecord");
    for (size_t cut = 0; cut <= n; cut++) {
        assert_int_equal(sl_test_write_file(path, buf, cut), 0);
        size_t whole = 0;
        int boundary = cut == 0;
        for (size_t k = 0; k < 3; k++) {
            whole += ends[k] <= cut;
            boundary |= ends[k] == cut;
        }
        char msg[512], want[64];
        size_t good;
        const int rc = read_until_error(path, NULL, &good, msg, sizeof msg);
        assert_int_equal(good, whole);
        assert_int_equal(rc, boundary ? SL_EOF : SL_ERR_TRUNCATED);
        if (!boundary) {
            snprintf(want, sizeof want, "record %zu at offset %zu: ", whole,
                     whole ? ends[whole - 1] : 0);
            if (!strstr(msg, want))
                fail_msg("cut %zu: \"%s\" lacks \"%s\"", cut, msg, want);
        }
    }
}

static void test_truncate_gzip_at_every_offset(void **state)
{
    uint8_t buf[64];
    const size_t n = three_records(buf);
    uint8_t z[256];
    uLongf zlen = sizeof z;
    /* gzip wrapper via deflateInit2 so the test shares no code with the writer. */
    z_stream s = {0};
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = buf;
    s.avail_in = (uInt)n;
    s.next_out = z;
    s.avail_out = (uInt)zlen;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    zlen = s.total_out;
    deflateEnd(&s);
    char path[PATH_CAP];
    path_in(path, "cut.tfrecord.gz");
    const sl_tfrecord_reader_options o = {.compression = SL_TFRECORD_GZIP};
    for (size_t cut = 0; cut <= zlen; cut++) {
        assert_int_equal(sl_test_write_file(path, z, cut), 0);
        sl_tfrecord_reader *r;
        assert_int_equal(sl_tfrecord_reader_open(&r, path, &o), 0);
        int rc;
        size_t good = 0;
        sl_tfrecord_record rec;
        uint8_t want[64];
        three_records(want);
        static const size_t starts[3] = {0, 21, 37};
        while ((rc = sl_tfrecord_reader_next(r, &rec)) == 0) {
            /* whatever comes back is exactly the original record */
            assert_true(good < 3);
            assert_memory_equal(rec.data, want + starts[good] + 12, rec.size);
            good++;
        }
        if (cut == 0 || cut == zlen)
            assert_int_equal(rc, SL_EOF);
        else
            assert_int_equal(rc, SL_ERR_TRUNCATED);
        if (cut == zlen)
            assert_int_equal(good, 3);
        sl_tfrecord_reader_close(r);
    }
}

/* ---- memory bounds ------------------------------------------------------------------------ */

/* A gzip stream holding one record header whose (CRC-valid) length is `len`, and 100 bytes. */
static void write_lying_gzip(const char *path, uint64_t len)
{
    uint8_t plain[112] = {0};
    sl_tfrecord_frame_header(plain, (size_t)len);
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, plain, sizeof plain), (int)sizeof plain);
    assert_int_equal(gzclose(f), Z_OK);
}

static void test_lying_length_in_gzip_allocates_little(void **state)
{
    char path[PATH_CAP], msg[512];
    path_in(path, "lying.tfrecord.gz");
    write_lying_gzip(path, (uint64_t)3 << 30);
    sl_alloc_reset_peak();
    const int64_t base = sl_alloc_live_bytes();
    size_t good;
    assert_int_equal(read_until_error(path, NULL, &good, msg, sizeof msg), SL_ERR_TRUNCATED);
    assert_int_equal(good, 0);
    assert_true(sl_alloc_peak_bytes() - base < 8 * 1024 * 1024);
    assert_non_null(strstr(msg, "record 0 at offset 0 (decompressed gzip stream)"));
}

static void test_length_above_4gib_in_gzip_is_too_large(void **state)
{
    char path[PATH_CAP], msg[512];
    path_in(path, "toolarge.tfrecord.gz");
    write_lying_gzip(path, ((uint64_t)4 << 30) + 1);
    size_t good;
    assert_int_equal(read_until_error(path, NULL, &good, msg, sizeof msg), SL_ERR_TOO_LARGE);
    assert_non_null(strstr(msg, "length field says 4294967297 bytes"));
}

static void test_lying_length_in_plain_allocates_nothing(void **state)
{
    char path[PATH_CAP];
    golden_path(path, "huge_length.tfrecord");
    sl_alloc_reset_peak();
    const int64_t base = sl_alloc_live_bytes();
    size_t good;
    assert_int_equal(read_until_error(path, NULL, &good, NULL, 0), SL_ERR_TRUNCATED);
    /* the 2 MiB window and nothing sized by the length field */
    assert_true(sl_alloc_peak_bytes() - base < 3 * 1024 * 1024);
}

static void steady_state_no_alloc(sl_tfrecord_compression c, const char *name)
{
    payloads p = {0};
    payloads_add_small(&p, 40000, 120, 30); /* ~2.6 MB: several window refills */
    char path[PATH_CAP];
    path_in(path, name);
    write_sluice(path, c, &p);
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, NULL), 0);
    sl_tfrecord_record rec;
    for (size_t k = 0; k < 100; k++)
        assert_int_equal(sl_tfrecord_reader_next(r, &rec), 0);
    const int64_t blocks = sl_alloc_live_blocks();
    sl_alloc_fail_at(0); /* any allocation from here on fails the read */
    int rc = 0;
    size_t k = 100;
    while ((rc = sl_tfrecord_reader_next(r, &rec)) == 0)
        k++;
    sl_alloc_fail_at(-1);
    if (rc != SL_EOF)
        fail_msg("record %zu: %s", k, sl_tfrecord_reader_errmsg(r));
    assert_int_equal(k, p.n);
    assert_int_equal(sl_alloc_live_blocks(), blocks);
    sl_tfrecord_reader_close(r);
    payloads_free(&p);
}

static void test_steady_state_plain_allocates_nothing(void **state)
{
    steady_state_no_alloc(SL_TFRECORD_NONE, "steady.tfrecord");
}

static void test_steady_state_gzip_allocates_nothing(void **state)
{
    steady_state_no_alloc(SL_TFRECORD_GZIP, "steady.tfrecord.gz");
}

/* Every allocation of open + read + close failing in turn: a clean SL_ERR_NOMEM and no leak. */
static void test_reader_allocation_failures(void **state)
{
    char path[PATH_CAP];
    golden_path(path, "two.tfrecord.gz");
    for (int64_t n = 0;; n++) {
        const int64_t live = sl_alloc_live_bytes();
        sl_alloc_fail_at(n);
        sl_tfrecord_reader *r = NULL;
        int rc = sl_tfrecord_reader_open(&r, path, NULL);
        size_t good = 0;
        while (rc == 0) {
            sl_tfrecord_record rec;
            rc = sl_tfrecord_reader_next(r, &rec);
            good += rc == 0;
        }
        sl_tfrecord_reader_close(r);
        sl_alloc_fail_at(-1);
        assert_int_equal(sl_alloc_live_bytes(), live);
        if (rc == SL_EOF) {
            assert_int_equal(good, 2);
            assert_true(n > 2); /* the loop really exercised failures */
            break;
        }
        assert_int_equal(rc, SL_ERR_NOMEM);
    }
}

static void test_writer_allocation_failures(void **state)
{
    char path[PATH_CAP];
    path_in(path, "nomem.tfrecord.gz");
    for (int64_t n = 0;; n++) {
        const int64_t live = sl_alloc_live_bytes();
        sl_alloc_fail_at(n);
        sl_tfrecord_writer *w = NULL;
        int rc = sl_tfrecord_writer_open(&w, path, SL_TFRECORD_GZIP);
        if (rc == 0)
            rc = sl_tfrecord_writer_write(w, "abc", 3);
        if (rc == 0)
            rc = sl_tfrecord_writer_finish(w);
        sl_tfrecord_writer_close(w);
        sl_alloc_fail_at(-1);
        assert_int_equal(sl_alloc_live_bytes(), live);
        if (rc == 0)
            break;
        assert_int_equal(rc, SL_ERR_NOMEM);
        assert_int_equal(access(path, F_OK), -1); /* nothing published */
    }
    payloads p = {0};
    payloads_add(&p, 3, 0);
    memcpy(p.data[0], "abc", 3);
    expect_records(path, NULL, &p);
    payloads_free(&p);
}

/* ---- writer publish ----------------------------------------------------------------------- */

static void test_writer_publishes_only_on_finish(void **state)
{
    char dir[PATH_CAP], path[PATH_CAP];
    sl_test_fresh_subdir(dir, sizeof dir, "pub");
    pathf(path, "%s/out.tfrecord", dir);
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_NONE), 0);
    assert_int_equal(sl_tfrecord_writer_write(w, "abc", 3), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(sl_test_dir_entries(dir), 1); /* the temporary file */
    assert_int_equal(sl_tfrecord_writer_finish(w), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(sl_test_dir_entries(dir), 1); /* only the final file */
    sl_tfrecord_writer_close(w);
    assert_int_equal(sl_test_dir_entries(dir), 1);
}

static void test_writer_close_without_finish_leaves_nothing(void **state)
{
    char dir[PATH_CAP], path[PATH_CAP];
    sl_test_fresh_subdir(dir, sizeof dir, "abandon");
    pathf(path, "%s/out.tfrecord.gz", dir);
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_GZIP), 0);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(sl_tfrecord_writer_write(w, "some payload bytes", 18), 0);
    sl_tfrecord_writer_close(w);
    assert_int_equal(sl_test_dir_entries(dir), 0);
}

static void test_writer_finish_replaces_existing_file(void **state)
{
    char path[PATH_CAP];
    path_in(path, "replace.tfrecord");
    assert_int_equal(sl_test_write_file(path, "old contents", 12), 0);
    payloads p = {0};
    two_payloads(&p);
    write_sluice(path, SL_TFRECORD_NONE, &p);
    expect_records(path, NULL, &p);
    payloads_free(&p);
}

static void test_writer_write_after_finish_is_inval(void **state)
{
    char path[PATH_CAP];
    path_in(path, "after.tfrecord");
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_NONE), 0);
    assert_int_equal(sl_tfrecord_writer_finish(w), 0);
    assert_int_equal(sl_tfrecord_writer_write(w, "x", 1), SL_ERR_INVAL);
    assert_int_equal(sl_tfrecord_writer_finish(w), SL_ERR_INVAL);
    assert_non_null(strstr(sl_tfrecord_writer_errmsg(w), "after.tfrecord"));
    sl_tfrecord_writer_close(w);
}

static void test_writer_rejects_auto(void **state)
{
    char path[PATH_CAP];
    path_in(path, "auto.tfrecord");
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_AUTO), SL_ERR_INVAL);
    assert_non_null(strstr(sl_tfrecord_writer_errmsg(w), "NONE, GZIP or ZLIB"));
    sl_tfrecord_writer_close(w);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_writer_missing_directory_is_enoent(void **state)
{
    char path[PATH_CAP];
    path_in(path, "no/such/dir/out.tfrecord");
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_NONE), -ENOENT);
    assert_non_null(strstr(sl_tfrecord_writer_errmsg(w), "out.tfrecord"));
    sl_tfrecord_writer_close(w);
}

/* ---- open errors -------------------------------------------------------------------------- */

static void test_open_missing_file_is_enoent(void **state)
{
    char path[PATH_CAP];
    path_in(path, "missing.tfrecord");
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, path, NULL), -ENOENT);
    assert_non_null(r);
    assert_non_null(strstr(sl_tfrecord_reader_errmsg(r), "missing.tfrecord: cannot open"));
    sl_tfrecord_reader_close(r);
}

static void test_open_directory_is_eisdir(void **state)
{
    sl_tfrecord_reader *r;
    assert_int_equal(sl_tfrecord_reader_open(&r, sl_test_dir, NULL), -EISDIR);
    sl_tfrecord_reader_close(r);
}

static void test_reads_from_a_pipe(void **state)
{
    /* Not a regular file: no size to check lengths against, detection from the stream. */
    char fifo[PATH_CAP], src[PATH_CAP];
    path_in(fifo, "pipe.fifo");
    golden_path(src, "two.tfrecord.gz");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* timeout: a writer left blocked on the fifo (if the reader never opened it) must not
     * outlive the test and hold ctest's output pipe. */
    assert_int_equal(sl_test_system("timeout 30 sh -c \"cat '%s' > '%s'\" </dev/null >/dev/null "
                                    "2>&1 &",
                                    src, fifo),
                     0);
    payloads p = {0};
    two_payloads(&p);
    expect_records_as(fifo, NULL, &p); /* a fifo can be read once */
    payloads_free(&p);
    unlink(fifo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_empty_payload_vector),
        cmocka_unit_test(test_frame_abc_vector),
        cmocka_unit_test(test_mask_known_values),
        cmocka_unit_test(test_unmask_inverts_mask),
        cmocka_unit_test(test_writer_output_is_vector_bytes),
        cmocka_unit_test(test_golden_plain_auto),
        cmocka_unit_test(test_golden_gzip_auto),
        cmocka_unit_test(test_golden_zlib_auto),
        cmocka_unit_test(test_golden_gzip_explicit),
        cmocka_unit_test(test_golden_zlib_explicit),
        cmocka_unit_test(test_golden_multimember_gzip),
        cmocka_unit_test(test_empty_file_is_eof),
        cmocka_unit_test(test_auto_trusts_crc_over_zlib_lookalike),
        cmocka_unit_test(test_gzip_opened_as_plain_fails_framing),
        cmocka_unit_test(test_plain_opened_as_gzip_is_corrupt),
        cmocka_unit_test(test_golden_bad_length_crc),
        cmocka_unit_test(test_golden_bad_length),
        cmocka_unit_test(test_golden_bad_data_crc),
        cmocka_unit_test(test_golden_bad_data_crc_field),
        cmocka_unit_test(test_golden_truncated_header),
        cmocka_unit_test(test_golden_truncated_data),
        cmocka_unit_test(test_golden_truncated_footer),
        cmocka_unit_test(test_golden_huge_length),
        cmocka_unit_test(test_golden_truncated_gzip_trailer),
        cmocka_unit_test(test_golden_bad_gzip_crc),
        cmocka_unit_test(test_golden_zlib_trailing_garbage),
        cmocka_unit_test(test_golden_not_deflate),
        cmocka_unit_test(test_roundtrip_none),
        cmocka_unit_test(test_roundtrip_gzip),
        cmocka_unit_test(test_roundtrip_zlib),
        cmocka_unit_test(test_roundtrip_zero_records),
        cmocka_unit_test(test_record_larger_than_4_windows),
        cmocka_unit_test(test_python_plain_read_by_sluice),
        cmocka_unit_test(test_python_gzip_read_by_sluice),
        cmocka_unit_test(test_python_zlib_read_by_sluice),
        cmocka_unit_test(test_python_multimember_gzip_read_by_sluice),
        cmocka_unit_test(test_sluice_plain_read_by_python),
        cmocka_unit_test(test_sluice_gzip_read_by_python),
        cmocka_unit_test(test_sluice_zlib_read_by_python),
        cmocka_unit_test(test_sluice_plain_bytes_equal_python),
        cmocka_unit_test(test_sluice_gzip_decompresses_to_plain_bytes),
        cmocka_unit_test(test_sluice_zlib_decompresses_to_plain_bytes),
        cmocka_unit_test(test_sluice_gzip_has_gzip_header),
        cmocka_unit_test(test_flip_in_length_field),
        cmocka_unit_test(test_flip_in_length_crc),
        cmocka_unit_test(test_flip_in_data_crc),
        cmocka_unit_test(test_flip_in_data),
        cmocka_unit_test(test_skip_verify_returns_damaged_data),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_skip_corrupt_skips_and_counts_bad_data),
        cmocka_unit_test(test_skip_corrupt_gzip),
        cmocka_unit_test(test_skip_corrupt_does_not_skip_length_crc),
        cmocka_unit_test(test_truncate_plain_at_every_offset),
        cmocka_unit_test(test_truncate_gzip_at_every_offset),
        cmocka_unit_test(test_lying_length_in_gzip_allocates_little),
        cmocka_unit_test(test_length_above_4gib_in_gzip_is_too_large),
        cmocka_unit_test(test_lying_length_in_plain_allocates_nothing),
        cmocka_unit_test(test_steady_state_plain_allocates_nothing),
        cmocka_unit_test(test_steady_state_gzip_allocates_nothing),
        cmocka_unit_test(test_reader_allocation_failures),
        cmocka_unit_test(test_writer_allocation_failures),
        cmocka_unit_test(test_writer_publishes_only_on_finish),
        cmocka_unit_test(test_writer_close_without_finish_leaves_nothing),
        cmocka_unit_test(test_writer_finish_replaces_existing_file),
        cmocka_unit_test(test_writer_write_after_finish_is_inval),
        cmocka_unit_test(test_writer_rejects_auto),
        cmocka_unit_test(test_writer_missing_directory_is_enoent),
        cmocka_unit_test(test_open_missing_file_is_enoent),
        cmocka_unit_test(test_open_directory_is_eisdir),
        cmocka_unit_test(test_reads_from_a_pipe),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
