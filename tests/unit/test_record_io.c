/* .sluice round trips: edge record sizes, empty files, many records, raw / zstd / dictionary,
 * random access, seek, alignment, determinism (threads, rewrites), retained buffers, and
 * clean failure at every allocation. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_internal.h"
#include "sluice/record.h"
#include "sluice/rng.h"
#include "sluice/status.h"

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", sl_test_dir, name);
}

/* Record i of a test set: its size comes from `sizes` (cycled) and its bytes from (i, j);
 * `noisy` makes the bytes incompressible. */
typedef struct recset {
    const size_t *sizes;
    size_t nsizes;
    uint64_t count;
    int noisy;
} recset;

static size_t rec_size(const recset *s, uint64_t i)
{
    return s->sizes[i % s->nsizes];
}

static void rec_fill(const recset *s, uint64_t i, uint8_t *buf)
{
    const size_t n = rec_size(s, i);
    if (s->noisy) {
        sl_rng r;
        sl_rng_init(&r, 99, i, 0);
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)sl_rng_u32(&r);
    } else {
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)("record text "[(i + j) % 12] + (j / 64) % 3);
    }
}

static size_t rec_max(const recset *s)
{
    size_t m = 1;
    for (size_t k = 0; k < s->nsizes; k++)
        m = s->sizes[k] > m ? s->sizes[k] : m;
    return m;
}

static int write_set(const char *path, const sl_record_writer_options *o, const recset *s)
{
    sl_record_writer *w;
    int rc = sl_record_writer_open(&w, path, o);
    uint8_t *buf = malloc(rec_max(s));
    for (uint64_t i = 0; rc == 0 && i < s->count; i++) {
        rec_fill(s, i, buf);
        rc = sl_record_writer_write(w, buf, rec_size(s, i));
    }
    if (rc == 0)
        rc = sl_record_writer_finish(w);
    if (rc < 0 && rc != SL_ERR_NOMEM)
        print_error("writer: %s\n", sl_record_writer_errmsg(w));
    sl_record_writer_close(w);
    free(buf);
    return rc;
}

static void assert_record(const recset *s, const sl_record *rec, uint64_t i, uint8_t *scratch)
{
    assert_int_equal(rec->index, i);
    assert_int_equal(rec->size, rec_size(s, i));
    rec_fill(s, i, scratch);
    assert_memory_equal(rec->data, scratch, rec->size);
    assert_int_equal((uintptr_t)rec->data % 8, 0);
}

/* Reads the whole file sequentially and compares every record. */
static void read_back_as(const char *path, const recset *s, const sl_record_reader_options *o)
{
    sl_record_reader *r;
    int rc = sl_record_reader_open(&r, path, o);
    if (rc)
        fail_msg("open: %s", sl_record_reader_errmsg(r));
    assert_int_equal(sl_record_reader_count(r), s->count);
    uint8_t *scratch = malloc(rec_max(s));
    sl_record rec;
    for (uint64_t i = 0; i < s->count; i++) {
        rc = sl_record_reader_next(r, &rec);
        if (rc)
            fail_msg("next %llu: %s", (unsigned long long)i, sl_record_reader_errmsg(r));
        assert_record(s, &rec, i, scratch);
    }
    assert_int_equal(sl_record_reader_next(r, &rec), SL_EOF);
    free(scratch);
    sl_record_reader_close(r);
}

/* read_back with copies into the reader's buffers and again from a mapping of the file, each
 * with zstd chunks decompressed on the caller's thread and ahead on more threads. */
static void read_back(const char *path, const recset *s)
{
    static const sl_record_reader_options modes[] = {
        {0}, {.map = 1}, {.threads = 2}, {.map = 1, .threads = 3}};
    for (size_t m = 0; m < SL_ARRAY_LEN(modes); m++)
        read_back_as(path, s, &modes[m]);
}

static void info_of(const char *path, sl_record_file_info *info)
{
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    sl_record_reader_info(r, info);
    sl_record_reader_close(r);
}

static int files_equal(const char *a, const char *b)
{
    uint8_t *da, *db;
    size_t na, nb;
    assert_int_equal(sl_test_read_file(a, &da, &na), 0);
    assert_int_equal(sl_test_read_file(b, &db, &nb), 0);
    const int eq = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

static const size_t edge_sizes[] = {0, 1, 7, 8, 9, 4096, 0, 5000, 3, 1536 * 1024, 0, 2};

static void test_edge_sizes_round_trip_raw(void **state)
{
    char p[512];
    path_of(p, sizeof p, "edge_raw.sluice");
    const recset s = {edge_sizes, SL_ARRAY_LEN(edge_sizes), 36, 0};
    const sl_record_writer_options o = {.chunk_bytes = 4096};
    assert_int_equal(write_set(p, &o, &s), 0);
    read_back(p, &s);
}

static void test_edge_sizes_round_trip_zstd(void **state)
{
    char p[512];
    path_of(p, sizeof p, "edge_zstd.sluice");
    const recset s = {edge_sizes, SL_ARRAY_LEN(edge_sizes), 36, 0};
    const sl_record_writer_options o = {.chunk_bytes = 4096, .compression_level = 3};
    assert_int_equal(write_set(p, &o, &s), 0);
    read_back(p, &s);
    sl_record_file_info info;
    info_of(p, &info);
    assert_true(info.chunks_zstd > 0);
}

static void test_record_of_exactly_chunk_size_gets_own_chunk(void **state)
{
    char p[512];
    path_of(p, sizeof p, "exact.sluice");
    static const size_t sizes[] = {10, 4096, 10};
    const recset s = {sizes, 3, 3, 0};
    const sl_record_writer_options o = {.chunk_bytes = 4096};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_file_info info;
    info_of(p, &info);
    assert_int_equal(info.chunks, 3);
    read_back(p, &s);
}

static void test_empty_file(void **state)
{
    char p[512];
    path_of(p, sizeof p, "empty.sluice");
    const size_t none[] = {1};
    const recset s = {none, 1, 0, 0};
    assert_int_equal(write_set(p, NULL, &s), 0);
    read_back(p, &s);
    sl_record_file_info info;
    info_of(p, &info);
    assert_int_equal(info.records, 0);
    assert_int_equal(info.chunks, 0);
}

static void test_many_small_records_zstd(void **state)
{
    char p[512];
    path_of(p, sizeof p, "many.sluice");
    static const size_t sizes[] = {0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
    const recset s = {sizes, SL_ARRAY_LEN(sizes), 100000, 0};
    const sl_record_writer_options o = {.compression_level = 3};
    assert_int_equal(write_set(p, &o, &s), 0);
    read_back(p, &s);
}

static void test_dictionary_round_trip_and_smaller(void **state)
{
    char p1[512], p2[512];
    path_of(p1, sizeof p1, "nodict.sluice");
    path_of(p2, sizeof p2, "dict.sluice");
    static const size_t sizes[] = {300, 310, 320};
    const recset s = {sizes, 3, 2000, 0};
    /* A raw-content dictionary: bytes like the records'. */
    uint8_t dict[4096];
    for (size_t k = 0; k < 3; k++)
        rec_fill(&s, k, dict + 1000 * k);
    memset(dict + 3000, 'x', sizeof dict - 3000);
    sl_record_writer_options o = {.compression_level = 3, .chunk_bytes = 512};
    assert_int_equal(write_set(p1, &o, &s), 0);
    o.dict = dict;
    o.dict_size = sizeof dict;
    assert_int_equal(write_set(p2, &o, &s), 0);
    read_back(p2, &s);
    sl_record_file_info a, b;
    info_of(p1, &a);
    info_of(p2, &b);
    assert_true(b.has_dict);
    assert_false(a.has_dict);
    assert_true(b.chunks_zstd > 0);
    assert_true(b.stored_bytes < a.stored_bytes);
}

static void random_access_as(const char *path, const recset *s, const sl_record_reader_options *o)
{
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, o), 0);
    uint8_t *scratch = malloc(rec_max(s));
    sl_rng g;
    sl_rng_init(&g, 5, 0, 0);
    sl_record rec;
    for (int k = 0; k < 3000; k++) {
        const uint64_t i = sl_rng_below(&g, s->count);
        const int rc = sl_record_reader_read(r, i, &rec);
        if (rc)
            fail_msg("read %llu: %s", (unsigned long long)i, sl_record_reader_errmsg(r));
        assert_record(s, &rec, i, scratch);
    }
    free(scratch);
    sl_record_reader_close(r);
}

static void random_access(const char *path, const recset *s)
{
    const sl_record_reader_options mapped = {.map = 1};
    random_access_as(path, s, NULL);
    random_access_as(path, s, &mapped);
}

static void test_random_access_raw(void **state)
{
    char p[512];
    path_of(p, sizeof p, "ra_raw.sluice");
    static const size_t sizes[] = {0, 17, 100, 999, 64};
    const recset s = {sizes, 5, 5000, 0};
    const sl_record_writer_options o = {.chunk_bytes = 2048};
    assert_int_equal(write_set(p, &o, &s), 0);
    random_access(p, &s);
}

static void test_random_access_zstd(void **state)
{
    char p[512];
    path_of(p, sizeof p, "ra_zstd.sluice");
    static const size_t sizes[] = {0, 17, 100, 999, 64};
    const recset s = {sizes, 5, 5000, 0};
    const sl_record_writer_options o = {.chunk_bytes = 2048, .compression_level = 3};
    assert_int_equal(write_set(p, &o, &s), 0);
    random_access(p, &s);
}

static void next_after_seek_as(const char *path, const recset *s,
                               const sl_record_reader_options *o)
{
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, o), 0);
    uint8_t scratch[64];
    sl_record rec;
    /* Far ahead, back to the start, to the last chunk, into the window just read ahead. */
    static const uint64_t targets[] = {500, 3, 999, 0, 777, 790, 120};
    for (size_t t = 0; t < SL_ARRAY_LEN(targets); t++) {
        assert_int_equal(sl_record_reader_seek(r, targets[t]), 0);
        for (uint64_t i = targets[t]; i < targets[t] + 60 && i < s->count; i++) {
            assert_int_equal(sl_record_reader_next(r, &rec), 0);
            assert_record(s, &rec, i, scratch);
        }
    }
    assert_int_equal(sl_record_reader_seek(r, 1000), 0);
    assert_int_equal(sl_record_reader_next(r, &rec), SL_EOF);
    assert_int_equal(sl_record_reader_seek(r, 1001), SL_ERR_RANGE);
    sl_record_reader_close(r);
}

static void test_next_after_seek(void **state)
{
    char p[512];
    path_of(p, sizeof p, "seek.sluice");
    static const size_t sizes[] = {40, 41, 42};
    const recset s = {sizes, 3, 1000, 0};
    const sl_record_writer_options o = {.chunk_bytes = 1024, .compression_level = 1};
    assert_int_equal(write_set(p, &o, &s), 0);
    static const sl_record_reader_options modes[] = {{0}, {.threads = 2}, {.threads = 4}};
    for (size_t m = 0; m < SL_ARRAY_LEN(modes); m++)
        next_after_seek_as(p, &s, &modes[m]);
}

static void test_count_known_at_open(void **state)
{
    char p[512];
    path_of(p, sizeof p, "count.sluice");
    static const size_t sizes[] = {5};
    const recset s = {sizes, 1, 12345, 0};
    const sl_record_writer_options o = {.chunk_bytes = 1000};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    assert_int_equal(sl_record_reader_count(r), 12345);
    assert_null(sl_record_reader_schema(r));
    sl_record_reader_close(r);
}

static void test_info_describes_file(void **state)
{
    char p[512];
    path_of(p, sizeof p, "info.sluice");
    static const size_t sizes[] = {100, 0, 3};
    const recset s = {sizes, 3, 300, 1};
    const sl_record_writer_options o = {.chunk_bytes = 4096};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_file_info info;
    info_of(p, &info);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(info.version_major, 1);
    assert_int_equal(info.version_minor, 0);
    assert_int_equal(info.records, 300);
    assert_int_equal(info.payload_bytes, 100 * 103);
    assert_int_equal(info.file_bytes, (uint64_t)st.st_size);
    /* In a body a 100-byte record takes 104 bytes (data, crc, padding), a 3-byte or empty one
     * 8, and each adds 4 to the length table: 93 records fill 4096 bytes exactly (31 x 120 +
     * 376), so 300 records make chunks of 93, 93, 93 and 21. */
    assert_int_equal(info.chunks, 4);
    assert_int_equal(info.chunks_zstd, 0);
    assert_true(info.stored_bytes > info.payload_bytes && info.stored_bytes < info.file_bytes);
    assert_int_equal(info.has_dict, 0);
}

static void test_parallel_compression_is_byte_identical(void **state)
{
    char p1[512], p2[512];
    path_of(p1, sizeof p1, "t1.sluice");
    path_of(p2, sizeof p2, "t2.sluice");
    static const size_t sizes[] = {10, 200, 3000, 1};
    const recset s = {sizes, 4, 20000, 0};
    sl_record_writer_options o = {.compression_level = 3, .chunk_bytes = 16384, .threads = 1};
    assert_int_equal(write_set(p1, &o, &s), 0);
    o.threads = 2;
    assert_int_equal(write_set(p2, &o, &s), 0);
    assert_true(files_equal(p1, p2));
    read_back(p2, &s);
}

static void test_rewrite_is_byte_identical(void **state)
{
    char p1[512], p2[512];
    path_of(p1, sizeof p1, "w1.sluice");
    path_of(p2, sizeof p2, "w2.sluice");
    static const size_t sizes[] = {10, 200, 3000, 1};
    const recset s = {sizes, 4, 2000, 0};
    const sl_record_writer_options o = {.compression_level = 5, .chunk_bytes = 8192};
    assert_int_equal(write_set(p1, &o, &s), 0);
    assert_int_equal(write_set(p2, &o, &s), 0);
    assert_true(files_equal(p1, p2));
}

static void test_read_past_end_is_range_error(void **state)
{
    char p[512];
    path_of(p, sizeof p, "range.sluice");
    static const size_t sizes[] = {5};
    const recset s = {sizes, 1, 10, 0};
    assert_int_equal(write_set(p, NULL, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    sl_record rec;
    assert_int_equal(sl_record_reader_read(r, 9, &rec), 0);
    assert_int_equal(sl_record_reader_read(r, 10, &rec), SL_ERR_RANGE);
    assert_non_null(strstr(sl_record_reader_errmsg(r), "record 10"));
    assert_int_equal(sl_record_reader_read(r, UINT64_MAX, &rec), SL_ERR_RANGE);
    sl_record_reader_close(r);
}

static void test_incompressible_chunks_stored_raw(void **state)
{
    char p[512];
    path_of(p, sizeof p, "noise.sluice");
    static const size_t sizes[] = {1000, 333};
    const recset s = {sizes, 2, 500, 1};
    const sl_record_writer_options o = {.compression_level = 19, .chunk_bytes = 8192};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_file_info info;
    info_of(p, &info);
    assert_true(info.chunks > 1);
    assert_int_equal(info.chunks_zstd, 0);
    read_back(p, &s);
}

static void test_too_large_record_refused(void **state)
{
    char p[512];
    path_of(p, sizeof p, "big.sluice");
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, p, NULL), 0);
    const uint8_t tiny[1] = {0};
    /* The size is refused before a byte is read. */
    assert_int_equal(sl_record_writer_write(w, tiny, (size_t)1 << 32), SL_ERR_TOO_LARGE);
    assert_int_equal(sl_record_writer_write(w, tiny, 1), 0);
    assert_int_equal(sl_record_writer_finish(w), 0);
    assert_int_equal(sl_record_writer_count(w), 1);
    sl_record_writer_close(w);
}

/* A caller that retains a record's buffer keeps the bytes, while the reader moves on. */
static void retained_survives_as(const char *name, int level, int random,
                                 const sl_record_reader_options *ro)
{
    char p[512];
    path_of(p, sizeof p, name);
    static const size_t sizes[] = {500, 700};
    const recset s = {sizes, 2, 400, 0};
    const sl_record_writer_options o = {.compression_level = level, .chunk_bytes = 2048};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, ro), 0);
    sl_record rec, held;
    assert_int_equal(random ? sl_record_reader_read(r, 7, &held) : sl_record_reader_next(r, &held),
                     0);
    sl_buffer_retain(held.buffer);
    uint8_t scratch[700];
    for (uint64_t i = 0; i < s.count; i++) {
        const uint64_t j = random ? (i * 37) % s.count : i + 1;
        if (j >= s.count)
            break;
        assert_int_equal(
            random ? sl_record_reader_read(r, j, &rec) : sl_record_reader_next(r, &rec), 0);
        assert_record(&s, &rec, j, scratch);
    }
    assert_record(&s, &held, random ? 7 : 0, scratch);
    sl_buffer_release(held.buffer);
    sl_record_reader_close(r);
}

static void retained_survives(const char *name, int level, int random)
{
    retained_survives_as(name, level, random, NULL);
}

/* With decompress-ahead the held chunk's slot is reused while the caller still holds it. */
static void test_retained_buffer_sequential_zstd_threads(void **state)
{
    const sl_record_reader_options ro = {.threads = 2};
    retained_survives_as("keep_zstd_threads.sluice", 3, 0, &ro);
}

static void test_retained_buffer_sequential_raw(void **state)
{
    retained_survives("keep_raw.sluice", 0, 0);
}

static void test_retained_buffer_sequential_zstd(void **state)
{
    retained_survives("keep_zstd.sluice", 3, 0);
}

static void test_retained_buffer_random_raw(void **state)
{
    retained_survives("keep_rraw.sluice", 0, 1);
}

static void test_retained_buffer_random_zstd(void **state)
{
    retained_survives("keep_rzstd.sluice", 3, 1);
}

/* In mapped mode records point into the mapping, which a retained buffer keeps alive after the
 * reader is closed. */
static void test_mapped_record_outlives_reader(void **state)
{
    char p[512];
    path_of(p, sizeof p, "mapped_keep.sluice");
    static const size_t sizes[] = {300, 5000};
    const recset s = {sizes, 2, 200, 0};
    const sl_record_writer_options o = {.chunk_bytes = 4096};
    assert_int_equal(write_set(p, &o, &s), 0);
    const sl_record_reader_options mapped = {.map = 1};
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, &mapped), 0);
    sl_record a, b;
    assert_int_equal(sl_record_reader_next(r, &a), 0);
    assert_int_equal(sl_record_reader_read(r, 151, &b), 0);
    sl_buffer_retain(a.buffer);
    sl_buffer_retain(b.buffer);
    sl_record_reader_close(r);
    uint8_t scratch[5000];
    assert_record(&s, &a, 0, scratch);
    assert_record(&s, &b, 151, scratch);
    sl_buffer_release(a.buffer);
    sl_buffer_release(b.buffer);
}

static int never_read(void *user, int fd, void *buf, size_t n, uint64_t offset)
{
    (void)user, (void)fd, (void)buf, (void)n, (void)offset;
    return SL_ERR_INVAL;
}

static void test_mapped_with_read_fn_refused(void **state)
{
    char p[512];
    path_of(p, sizeof p, "mapped_fn.sluice");
    static const size_t sizes[] = {10};
    const recset s = {sizes, 1, 3, 0};
    assert_int_equal(write_set(p, NULL, &s), 0);
    const sl_record_reader_options o = {.map = 1, .read_fn = never_read};
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, &o), SL_ERR_INVAL);
    assert_non_null(strstr(sl_record_reader_errmsg(r), "mapped"));
    sl_record_reader_close(r);
}

static void test_threads_with_read_fn_or_out_of_range_refused(void **state)
{
    char p[512];
    path_of(p, sizeof p, "threads_fn.sluice");
    static const size_t sizes[] = {10};
    const recset s = {sizes, 1, 3, 0};
    assert_int_equal(write_set(p, NULL, &s), 0);
    static const sl_record_reader_options bad[] = {
        {.threads = 2, .read_fn = never_read}, {.threads = -1}, {.threads = 257}};
    static const char *const says[] = {"read_fn", "threads -1", "threads 257"};
    for (size_t k = 0; k < SL_ARRAY_LEN(bad); k++) {
        sl_record_reader *r;
        assert_int_equal(sl_record_reader_open(&r, p, &bad[k]), SL_ERR_INVAL);
        assert_non_null(strstr(sl_record_reader_errmsg(r), says[k]));
        sl_record_reader_close(r);
    }
}

static void test_skip_verify_reads_same_records(void **state)
{
    char p[512];
    path_of(p, sizeof p, "skip.sluice");
    static const size_t sizes[] = {33, 0, 64};
    const recset s = {sizes, 3, 600, 0};
    const sl_record_writer_options o = {.chunk_bytes = 1024, .compression_level = 2};
    assert_int_equal(write_set(p, &o, &s), 0);
    const sl_record_reader_options ro = {.skip_verify = 1};
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, &ro), 0);
    uint8_t scratch[64];
    sl_record rec;
    for (uint64_t i = 0; i < s.count; i++) {
        assert_int_equal(sl_record_reader_next(r, &rec), 0);
        assert_record(&s, &rec, i, scratch);
    }
    sl_record_reader_close(r);
}

static void test_typed_records_round_trip(void **state)
{
    char p[512];
    path_of(p, sizeof p, "typed.sluice");
    sl_schema *schema;
    assert_int_equal(sl_schema_parse(&schema, "label:int64,emb:float32[4],name:bytes", NULL, 0), 0);
    const sl_record_writer_options o = {.schema = schema, .chunk_bytes = 256};
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, p, &o), 0);
    assert_int_equal(sl_record_writer_write(w, "x", 1), SL_ERR_SCHEMA);
    for (int64_t i = 0; i < 50; i++) {
        int64_t label = i * 3;
        float emb[4] = {(float)i, 1.5f, -2.0f, 0.25f};
        char name[16];
        const int n = snprintf(name, sizeof name, "rec-%d", (int)i);
        sl_tensor f[3];
        const int64_t four = 4, len = n;
        assert_int_equal(sl_tensor_borrow(&f[0], SL_DTYPE_I64, 0, NULL, &label), 0);
        assert_int_equal(sl_tensor_borrow(&f[1], SL_DTYPE_F32, 1, &four, emb), 0);
        assert_int_equal(sl_tensor_borrow(&f[2], SL_DTYPE_BYTES, 1, &len, name), 0);
        assert_int_equal(sl_record_writer_write_fields(w, f), 0);
    }
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);

    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    assert_non_null(sl_record_reader_schema(r));
    assert_true(sl_schema_equal(sl_record_reader_schema(r), schema));
    sl_record rec;
    for (int64_t i = 0; i < 50; i++) {
        assert_int_equal(sl_record_reader_read(r, (uint64_t)(49 - i), &rec), 0);
        sl_tensor t;
        assert_int_equal(
            sl_record_field(sl_record_reader_schema(r), rec.data, rec.size, 0, NULL, &t), 0);
        assert_int_equal(*(const int64_t *)t.data, (49 - i) * 3);
        assert_int_equal((uintptr_t)t.data % 8, 0);
    }
    sl_record_reader_close(r);
    sl_schema_free(schema);
}

static void test_typed_records_copied_verbatim(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "typed.sluice"); /* written by test_typed_records_round_trip */
    path_of(q, sizeof q, "typed_copy.sluice");
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    const sl_record_writer_options o = {.schema = sl_record_reader_schema(r), .chunk_bytes = 256};
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, q, &o), 0);
    sl_record rec;
    while (sl_record_reader_next(r, &rec) == 0)
        assert_int_equal(sl_record_writer_write(w, rec.data, rec.size), 0);
    /* a truncated encoding is not a record of this schema */
    assert_int_equal(sl_record_reader_read(r, 0, &rec), 0);
    assert_int_equal(sl_record_writer_write(w, rec.data, rec.size - 1), SL_ERR_SCHEMA);
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
    sl_record_reader_close(r);
    assert_true(files_equal(p, q));
}

/* Fails allocation n, n = 0, 1, 2, ... until a run completes without reaching it: each run
 * either succeeds or reports SL_ERR_NOMEM, and nothing leaks either way. */
static void test_alloc_failure_while_writing(void **state)
{
    char p[512];
    path_of(p, sizeof p, "oom_w.sluice");
    static const size_t sizes[] = {100, 3000, 5};
    const recset s = {sizes, 3, 40, 0};
    uint8_t dict[256];
    memset(dict, 'r', sizeof dict);
    const sl_record_writer_options o = {
        .compression_level = 3, .chunk_bytes = 2048, .dict = dict, .dict_size = sizeof dict};
    for (int64_t n = 0;; n++) {
        const int64_t before = sl_alloc_live_bytes();
        sl_alloc_fail_at(n);
        const int rc = write_set(p, &o, &s);
        sl_alloc_fail_at(-1);
        assert_int_equal(sl_alloc_live_bytes(), before);
        if (rc == 0)
            break;
        assert_int_equal(rc, SL_ERR_NOMEM);
        assert_true(n < 100000);
    }
    read_back(p, &s);
}

/* Every allocation failing in turn: NOMEM or the right records, never a leak. With threads the
 * failing allocation may fall on a decompress-ahead thread: its chunk reports it when reached. */
static void alloc_failure_while_reading_as(const sl_record_reader_options *ro)
{
    char p[512];
    path_of(p, sizeof p, ro ? "oom_r_threads.sluice" : "oom_r.sluice");
    static const size_t sizes[] = {100, 3000, 5};
    const recset s = {sizes, 3, 40, 0};
    uint8_t dict[256];
    memset(dict, 'r', sizeof dict);
    const sl_record_writer_options o = {
        .compression_level = 3, .chunk_bytes = 2048, .dict = dict, .dict_size = sizeof dict};
    assert_int_equal(write_set(p, &o, &s), 0);
    uint8_t scratch[3000];
    for (int64_t n = 0;; n++) {
        const int64_t before = sl_alloc_live_bytes();
        sl_alloc_fail_at(n);
        sl_record_reader *r = NULL;
        int rc = sl_record_reader_open(&r, p, ro);
        sl_record rec;
        for (uint64_t i = 0; rc == 0 && i < s.count; i++) {
            rc = sl_record_reader_next(r, &rec);
            if (rc == 0)
                assert_record(&s, &rec, i, scratch);
        }
        for (uint64_t i = 0; rc == 0 && i < s.count; i += 7) {
            rc = sl_record_reader_read(r, s.count - 1 - i, &rec);
            if (rc == 0)
                assert_record(&s, &rec, s.count - 1 - i, scratch);
        }
        sl_record_reader_close(r);
        sl_alloc_fail_at(-1);
        assert_int_equal(sl_alloc_live_bytes(), before);
        if (rc == 0)
            break;
        assert_int_equal(rc, SL_ERR_NOMEM);
        assert_true(n < 100000);
    }
}

static void test_alloc_failure_while_reading(void **state)
{
    const sl_record_reader_options threads = {.threads = 2};
    alloc_failure_while_reading_as(NULL);
    alloc_failure_while_reading_as(&threads);
}

/* ---- reads the caller issues: chunk spans and load_chunk ----------------------------------- */

/* A read_fn that counts its calls and fails with `fail_with` once `fail_after` calls went by
 * (never when fail_after < 0). */
typedef struct counting_read {
    int calls, fail_after, fail_with;
} counting_read;

static int count_read(void *user, int fd, void *buf, size_t n, uint64_t offset)
{
    counting_read *c = user;
    const int call = c->calls++;
    if (c->fail_after >= 0 && call >= c->fail_after)
        return c->fail_with;
    const ssize_t got = pread(fd, buf, n, (off_t)offset);
    if (got < 0)
        return -errno;
    return (size_t)got < n ? SL_ERR_TRUNCATED : 0;
}

/* Reads chunk k the way a caller with its own I/O would: its span into a fresh buffer. */
static sl_buffer *read_chunk(sl_record_reader *r, uint64_t k, size_t at, int64_t *got)
{
    uint64_t off, len;
    assert_int_equal(sl_record_reader_chunk_span(r, k, &off, &len), 0);
    sl_buffer *b;
    assert_int_equal(sl_buffer_create(&b, at + len), 0);
    const ssize_t n =
        pread(sl_record_reader_fd(r), (uint8_t *)sl_buffer_data(b) + at, len, (off_t)off);
    *got = n < 0 ? -errno : n;
    return b;
}

static void test_chunk_spans_tile_the_chunk_region(void **state)
{
    char p[512];
    path_of(p, sizeof p, "spans.sluice");
    static const size_t sizes[] = {10, 300, 77, 1200};
    const recset s = {sizes, 4, 600, 0};
    const sl_record_writer_options o = {.chunk_bytes = 4096};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    const uint64_t nchunks = sl_record_reader_chunk_count(r);
    assert_true(nchunks > 10);
    uint64_t off, len, end = 0, first, count, records = 0;
    for (uint64_t k = 0; k < nchunks; k++) {
        assert_int_equal(sl_record_reader_chunk_span(r, k, &off, &len), 0);
        if (k > 0)
            assert_int_equal(off, end); /* contiguous */
        end = off + len;
        assert_int_equal(sl_record_reader_chunk_records(r, k, &first, &count), 0);
        assert_int_equal(first, records); /* records in order, none left out */
        records += count;
    }
    assert_int_equal(records, s.count);
    /* Record i's chunk: consecutive, non-decreasing, every chunk used. */
    uint64_t prev = 0, k;
    for (uint64_t i = 0; i < s.count; i++) {
        assert_int_equal(sl_record_reader_chunk_of(r, i, &k), 0);
        assert_true(k == prev || k == prev + 1);
        prev = k;
    }
    assert_int_equal(prev, nchunks - 1);
    assert_int_equal(sl_record_reader_chunk_of(r, s.count, &k), SL_ERR_RANGE);
    assert_int_equal(sl_record_reader_chunk_span(r, nchunks, &off, &len), SL_ERR_RANGE);
    sl_record_reader_close(r);
}

/* Every chunk handed over with load_chunk: `next` returns every record and reads nothing. */
static void load_every_chunk(const char *path, const recset *s)
{
    counting_read c = {.fail_after = -1};
    const sl_record_reader_options o = {.read_fn = count_read, .read_user = &c};
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, &o), 0);
    const int reads_at_open = c.calls;
    assert_true(reads_at_open > 0); /* open's own reads went through read_fn too */
    uint8_t *scratch = malloc(rec_max(s));
    sl_record rec;
    uint64_t loaded = UINT64_MAX;
    for (uint64_t i = 0; i < s->count; i++) {
        uint64_t k;
        assert_int_equal(sl_record_reader_chunk_of(r, i, &k), 0);
        if (k != loaded) {
            int64_t got;
            sl_buffer *b = read_chunk(r, k, 24, &got); /* not at the buffer's start */
            const int rc = sl_record_reader_load_chunk(r, k, b, 24, got);
            if (rc)
                fail_msg("load_chunk %llu: %s", (unsigned long long)k, sl_record_reader_errmsg(r));
            sl_buffer_release(b); /* the reader keeps what it still needs */
            loaded = k;
        }
        assert_int_equal(sl_record_reader_next(r, &rec), 0);
        assert_record(s, &rec, i, scratch);
    }
    assert_int_equal(sl_record_reader_next(r, &rec), SL_EOF);
    assert_int_equal(c.calls, reads_at_open);
    free(scratch);
    sl_record_reader_close(r);
}

static void test_load_chunk_serves_next_raw(void **state)
{
    char p[512];
    path_of(p, sizeof p, "load_raw.sluice");
    static const size_t sizes[] = {0, 33, 500, 4100, 8};
    const recset s = {sizes, 5, 700, 1};
    const sl_record_writer_options o = {.chunk_bytes = 8192};
    assert_int_equal(write_set(p, &o, &s), 0);
    load_every_chunk(p, &s);
}

static void test_load_chunk_serves_next_zstd(void **state)
{
    char p[512];
    path_of(p, sizeof p, "load_zstd.sluice");
    static const size_t sizes[] = {0, 33, 500, 4100, 8};
    const recset s = {sizes, 5, 700, 0};
    const sl_record_writer_options o = {.chunk_bytes = 8192, .compression_level = 3};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_file_info info;
    info_of(p, &info);
    assert_int_equal(info.chunks_zstd, info.chunks);
    load_every_chunk(p, &s);
}

/* A raw chunk's records point into the caller's buffer, which the record keeps alive. */
static void test_load_chunk_records_view_callers_buffer(void **state)
{
    char p[512];
    path_of(p, sizeof p, "load_view.sluice");
    static const size_t sizes[] = {100};
    const recset s = {sizes, 1, 50, 1};
    assert_int_equal(write_set(p, NULL, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    int64_t got;
    sl_buffer *b = read_chunk(r, 0, 0, &got);
    assert_int_equal(sl_record_reader_load_chunk(r, 0, b, 0, got), 0);
    sl_record rec;
    assert_int_equal(sl_record_reader_next(r, &rec), 0);
    assert_ptr_equal(rec.buffer, b);
    assert_true(rec.data >= (const uint8_t *)sl_buffer_data(b) &&
                rec.data + rec.size <= (const uint8_t *)sl_buffer_data(b) + sl_buffer_size(b));
    assert_int_equal(sl_buffer_refcount(b), 2); /* ours and the reader's */
    sl_record_reader_close(r);
    assert_int_equal(sl_buffer_refcount(b), 1);
    sl_buffer_release(b);
}

/* Flips one payload byte of chunk `k` of a copy of `src`. */
static void damage_chunk(const char *src, const char *dst, uint64_t k)
{
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, src, NULL), 0);
    uint64_t off, len;
    assert_int_equal(sl_record_reader_chunk_span(r, k, &off, &len), 0);
    sl_record_reader_close(r);
    uint8_t *d;
    size_t n;
    assert_int_equal(sl_test_read_file(src, &d, &n), 0);
    d[off + 48 + 5] ^= 0x40;
    assert_int_equal(sl_test_write_file(dst, d, n), 0);
    free(d);
}

/* Reads every record the way a caller with its own read-ahead does (load_chunk before the
 * first record of each chunk); returns what ended it. */
static int next_with_loads(sl_record_reader *r)
{
    uint64_t loaded = UINT64_MAX, k;
    sl_record rec;
    for (uint64_t i = 0; sl_record_reader_chunk_of(r, i, &k) == 0; i++) {
        if (k != loaded) {
            int64_t got;
            sl_buffer *buf = read_chunk(r, k, 0, &got);
            const int rc = sl_record_reader_load_chunk(r, k, buf, 0, got);
            sl_buffer_release(buf);
            if (rc)
                return rc;
            loaded = k;
        }
        const int rc = sl_record_reader_next(r, &rec);
        if (rc)
            return rc;
    }
    return sl_record_reader_next(r, &rec);
}

/* Damage found in bytes the caller read is reported exactly as `next` reports it. */
static void test_load_chunk_damage_reads_like_next(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "load_ok.sluice");
    path_of(q, sizeof q, "load_bad.sluice");
    static const size_t sizes[] = {200};
    const recset s = {sizes, 1, 100, 1};
    const sl_record_writer_options o = {.chunk_bytes = 2048};
    assert_int_equal(write_set(p, &o, &s), 0);
    damage_chunk(p, q, 3);

    sl_record_reader *a, *b;
    assert_int_equal(sl_record_reader_open(&a, q, NULL), 0);
    assert_int_equal(sl_record_reader_open(&b, q, NULL), 0);
    sl_record rec;
    int rc;
    while ((rc = sl_record_reader_next(a, &rec)) == 0) {
    }
    assert_int_equal(rc, SL_ERR_CORRUPT);
    assert_non_null(strstr(sl_record_reader_errmsg(a), "(chunk 3)"));
    assert_non_null(strstr(sl_record_reader_errmsg(a), "chunk payload crc32c mismatch"));
    assert_int_equal(next_with_loads(b), SL_ERR_CORRUPT);
    assert_string_equal(sl_record_reader_errmsg(b), sl_record_reader_errmsg(a));
    sl_record_reader_close(a);
    sl_record_reader_close(b);
}

/* A file of 40 raw records in several chunks, open, with chunk 2's bytes read into *b. */
static sl_record_reader *open_with_chunk2(const char *name, sl_buffer **b, int64_t *got)
{
    char p[512];
    path_of(p, sizeof p, name);
    static const size_t sizes[] = {300};
    const recset s = {sizes, 1, 40, 1};
    const sl_record_writer_options o = {.chunk_bytes = 2048};
    assert_int_equal(write_set(p, &o, &s), 0);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    *b = read_chunk(r, 2, 0, got);
    return r;
}

/* A read that came back short is truncation, a failed read's -errno comes back as is; both
 * name the chunk's first record (the cursor is elsewhere), the chunk and its offset. */
static void test_load_chunk_short_or_failed_read(void **state)
{
    sl_buffer *b;
    int64_t got;
    sl_record_reader *r = open_with_chunk2("load_short.sluice", &b, &got);
    uint64_t off, len, first, count;
    assert_int_equal(sl_record_reader_chunk_span(r, 2, &off, &len), 0);
    assert_int_equal(got, (int64_t)len);
    assert_int_equal(sl_record_reader_chunk_records(r, 2, &first, &count), 0);
    char p[512], want[1024];
    path_of(p, sizeof p, "load_short.sluice");
    snprintf(want, sizeof want, "%s: record %llu (chunk 2) at offset %llu: reading chunks", p,
             (unsigned long long)first, (unsigned long long)off);
    assert_int_equal(sl_record_reader_load_chunk(r, 2, b, 0, got - 1), SL_ERR_TRUNCATED);
    assert_non_null(strstr(sl_record_reader_errmsg(r), want));
    assert_int_equal(sl_record_reader_load_chunk(r, 2, b, 0, -EIO), -EIO);
    assert_non_null(strstr(sl_record_reader_errmsg(r), want));
    /* After a failed hand-over `next` reads the chunk itself. */
    assert_int_equal(sl_record_reader_seek(r, first), 0);
    sl_record rec;
    assert_int_equal(sl_record_reader_next(r, &rec), 0);
    assert_int_equal(rec.index, first);
    sl_buffer_release(b);
    sl_record_reader_close(r);
}

/* Bytes said to lie outside the buffer, or a chunk the file does not have, are refused. */
static void test_load_chunk_refuses_bad_arguments(void **state)
{
    sl_buffer *b;
    int64_t got;
    sl_record_reader *r = open_with_chunk2("load_args.sluice", &b, &got);
    assert_int_equal(sl_record_reader_load_chunk(r, 2, b, 8, got), SL_ERR_INVAL);
    assert_int_equal(sl_record_reader_load_chunk(r, 2, NULL, 0, got), SL_ERR_INVAL);
    const uint64_t n = sl_record_reader_chunk_count(r);
    assert_int_equal(sl_record_reader_load_chunk(r, n, b, 0, got), SL_ERR_RANGE);
    uint64_t first, count;
    assert_int_equal(sl_record_reader_chunk_records(r, n, &first, &count), SL_ERR_RANGE);
    sl_buffer_release(b);
    sl_record_reader_close(r);
}

/* A read_fn's failure is reported with file, record and offset, like a failed pread. */
static void test_read_fn_failure_names_record(void **state)
{
    char p[512];
    path_of(p, sizeof p, "readfn.sluice");
    static const size_t sizes[] = {64};
    const recset s = {sizes, 1, 30, 1};
    assert_int_equal(write_set(p, NULL, &s), 0);
    counting_read c = {.fail_after = -1};
    const sl_record_reader_options o = {.read_fn = count_read, .read_user = &c};
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, &o), 0);
    c.fail_after = c.calls; /* every read from now on fails */
    c.fail_with = -EIO;
    sl_record rec;
    assert_int_equal(sl_record_reader_read(r, 7, &rec), -EIO);
    char want[600];
    snprintf(want, sizeof want, "%s: record 7 (chunk 0) at offset ", p);
    assert_non_null(strstr(sl_record_reader_errmsg(r), want));
    assert_int_equal(sl_record_reader_next(r, &rec), -EIO);
    assert_non_null(strstr(sl_record_reader_errmsg(r), "reading chunks"));
    sl_record_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_sizes_round_trip_raw),
        cmocka_unit_test(test_retained_buffer_sequential_zstd_threads),
        cmocka_unit_test(test_threads_with_read_fn_or_out_of_range_refused),
        cmocka_unit_test(test_edge_sizes_round_trip_zstd),
        cmocka_unit_test(test_record_of_exactly_chunk_size_gets_own_chunk),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_many_small_records_zstd),
        cmocka_unit_test(test_dictionary_round_trip_and_smaller),
        cmocka_unit_test(test_random_access_raw),
        cmocka_unit_test(test_random_access_zstd),
        cmocka_unit_test(test_next_after_seek),
        cmocka_unit_test(test_count_known_at_open),
        cmocka_unit_test(test_info_describes_file),
        cmocka_unit_test(test_parallel_compression_is_byte_identical),
        cmocka_unit_test(test_rewrite_is_byte_identical),
        cmocka_unit_test(test_read_past_end_is_range_error),
        cmocka_unit_test(test_incompressible_chunks_stored_raw),
        cmocka_unit_test(test_too_large_record_refused),
        cmocka_unit_test(test_retained_buffer_sequential_raw),
        cmocka_unit_test(test_retained_buffer_sequential_zstd),
        cmocka_unit_test(test_retained_buffer_random_raw),
        cmocka_unit_test(test_retained_buffer_random_zstd),
        cmocka_unit_test(test_mapped_record_outlives_reader),
        cmocka_unit_test(test_mapped_with_read_fn_refused),
        cmocka_unit_test(test_skip_verify_reads_same_records),
        cmocka_unit_test(test_typed_records_round_trip),
        cmocka_unit_test(test_typed_records_copied_verbatim),
        cmocka_unit_test(test_alloc_failure_while_writing),
        cmocka_unit_test(test_alloc_failure_while_reading),
        cmocka_unit_test(test_chunk_spans_tile_the_chunk_region),
        cmocka_unit_test(test_load_chunk_serves_next_raw),
        cmocka_unit_test(test_load_chunk_serves_next_zstd),
        cmocka_unit_test(test_load_chunk_records_view_callers_buffer),
        cmocka_unit_test(test_load_chunk_damage_reads_like_next),
        cmocka_unit_test(test_load_chunk_short_or_failed_read),
        cmocka_unit_test(test_load_chunk_refuses_bad_arguments),
        cmocka_unit_test(test_read_fn_failure_names_record),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
