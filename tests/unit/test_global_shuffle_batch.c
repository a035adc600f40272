/* global_shuffle over records(...) fetches a window of elements with one batched get: the
 * file source submits all the window's reads before waiting. What a user relies on: the
 * stream is exactly the permutation (sl_permute) for raw and zstd files of odd sizes, under
 * SLUICE_IO=pread and =io_uring; a damaged record read inside a batch fails with the message
 * the one-at-a-time read gives; checkpoints taken mid-window continue exactly; stopping
 * mid-window frees everything; map and rename above the source pass the batch on. */
#include "testutil.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/alloc.h"
#include "sluice/io.h"
#include "sluice/pipeline.h"
#include "sluice/record.h"
#include "sluice/rng.h"

/* Test hook of pipeline/src/source_files.c: the most reads one batch had in flight. */
extern _Atomic uint64_t sl__files_batch_peak;

enum { MAX_RECORDS = 1200 };

/* Record i: its number, then a run of one letter of a length that varies (odd sizes, and
 * compressible so that zstd chunks stay compressed). */
static size_t payload(int i, char *buf, size_t cap)
{
    const int pad = (i * 37) % 301;
    int n = snprintf(buf, cap, "r%06d-", i);
    memset(buf + n, 'a' + i % 26, (size_t)pad);
    return (size_t)n + (size_t)pad;
}

/* Files name-0.sluice .. name-(nfiles-1).sluice holding counts[f] records each, numbered
 * across files. */
static void write_files(const char *name, int nfiles, const int *counts, int level)
{
    int i = 0;
    for (int f = 0; f < nfiles; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s-%d.sluice", sl_test_dir, name, f);
        const sl_record_writer_options o = {.compression_level = level, .chunk_bytes = 2048};
        sl_record_writer *w;
        assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
        for (int k = 0; k < counts[f]; k++, i++) {
            char buf[512];
            assert_int_equal(sl_record_writer_write(w, buf, payload(i, buf, sizeof buf)), 0);
        }
        assert_int_equal(sl_record_writer_finish(w), 0);
        sl_record_writer_close(w);
    }
}

static sl_dataset *shuffled(const char *name, uint64_t seed)
{
    char pattern[512], err[512];
    snprintf(pattern, sizeof pattern, "%s/%s-*.sluice", sl_test_dir, name);
    const char *patterns[] = {pattern};
    sl_dataset *ds, *g;
    if (sl_dataset_records(&ds, patterns, 1, err, sizeof err))
        fail_msg("records(%s): %s", name, err);
    /* Without reshuffling, the permutation key is the seed itself. */
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, seed, 0), 0);
    sl_dataset_release(ds);
    return g;
}

static int record_number(const sl_element *e)
{
    const sl_tensor *t = sl_element_get(e, "record");
    assert_non_null(t);
    int i = -1;
    assert_int_equal(sscanf((const char *)t->data, "r%06d-", &i), 1);
    char want[512];
    const size_t len = payload(i, want, sizeof want);
    assert_int_equal(t->shape[0], (int64_t)len);
    assert_memory_equal(t->data, want, len);
    return i;
}

static sl_iter *open_iter(sl_dataset *ds)
{
    sl_iter *it;
    const sl_iter_options o = {.threads = 1};
    if (sl_iter_open(&it, ds, &o))
        fail_msg("open: %s", sl_iter_errmsg(it));
    return it;
}

/* The whole stream equals element sl_permute(p, n, seed) at every position p. */
static void assert_permutation(const char *name, int n, uint64_t seed)
{
    sl_dataset *g = shuffled(name, seed);
    sl_iter *it = open_iter(g);
    sl_element e;
    for (int p = 0; p < n; p++) {
        if (sl_iter_next(it, &e))
            fail_msg("%s: element %d: %s", name, p, sl_iter_errmsg(it));
        assert_int_equal(record_number(&e), (int)sl_permute((uint64_t)p, (uint64_t)n, seed));
        sl_element_release(&e);
    }
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(g);
}

static void check_sizes_under_every_backend(int level, const char *prefix)
{
    static const int one[] = {1}, two[] = {2}, three[] = {1, 0, 2}, many[] = {333, 1, 700, 17};
    const struct {
        const int *counts;
        int nfiles;
    } sets[] = {{one, 1}, {two, 1}, {three, 3}, {many, 4}};
    const char *names[2];
    const int nb = sl_test_io_backends(names);
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        char name[64];
        snprintf(name, sizeof name, "%s%zu", prefix, s);
        write_files(name, sets[s].nfiles, sets[s].counts, level);
        int n = 0;
        for (int f = 0; f < sets[s].nfiles; f++)
            n += sets[s].counts[f];
        for (int b = 0; b < nb; b++) {
            setenv("SLUICE_IO", names[b], 1);
            assert_permutation(name, n, 7 + s);
            assert_permutation(name, n, 1234567);
        }
        unsetenv("SLUICE_IO");
    }
}

/* Raw chunks: 1, 2, 3 records (window larger than the dataset, an empty file among three)
 * and 1051 over four files. */
static void test_raw_stream_is_the_permutation(void **state)
{
    check_sizes_under_every_backend(0, "raw");
}

static void test_zstd_stream_is_the_permutation(void **state)
{
    check_sizes_under_every_backend(3, "zst");
    /* The zstd files really hold compressed chunks. */
    char path[512];
    snprintf(path, sizeof path, "%s/zst3-0.sluice", sl_test_dir);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    sl_record_file_info info;
    sl_record_reader_info(r, &info);
    assert_true(info.chunks_zstd > 0);
    sl_record_reader_close(r);
}

/* A window's reads all go to the sl_io before the first wait: with pread too (its reads run
 * inside the wait), the batch had at least a window's worth submitted together. */
static void test_batch_submits_all_reads_before_waiting(void **state)
{
    static const int counts[] = {100};
    write_files("peak", 1, counts, 0);
    setenv("SLUICE_IO", "pread", 1);
    atomic_store(&sl__files_batch_peak, 0);
    assert_permutation("peak", 100, 3);
    unsetenv("SLUICE_IO");
    assert_true(atomic_load(&sl__files_batch_peak) >= 32);
}

/* Flips one byte at `offset` of the file. */
static void flip_byte(const char *path, uint64_t offset)
{
    const int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)offset), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)offset), 1);
    close(fd);
}

/* Drains the stream to its failure and returns the iterator's message. */
static int fail_message(sl_dataset *ds, char *msg, size_t cap)
{
    sl_iter *it = open_iter(ds);
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0)
        sl_element_release(&e);
    snprintf(msg, cap, "%s", sl_iter_errmsg(it));
    sl_iter_close(it);
    return rc;
}

/* Damages record `victim` of name-0.sluice (a payload byte: of the record itself for raw
 * chunks, of its chunk's stored bytes for zstd) and checks that the batched stream fails
 * with the one-at-a-time stream's message, which holds the reader's own. */
static void check_damage(const char *name, int level, const char *what)
{
    static const int counts[] = {90};
    write_files(name, 1, counts, level);
    char path[512];
    snprintf(path, sizeof path, "%s/%s-0.sluice", sl_test_dir, name);
    const uint64_t victim = 41;
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    sl_record_span sp;
    assert_int_equal(sl_record_reader_record_span(r, victim, &sp), 0);
    assert_int_equal(sp.whole_chunk, level > 0);
    sl_record_reader_close(r);
    flip_byte(path, sp.offset + (level > 0 ? 60 : 3));

    /* The first record of the damaged chunk the shuffle asks for is the one named. */
    const uint64_t seed = 11;
    uint64_t first = victim;
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    for (uint64_t p = 0; p < 90; p++) {
        sl_record_span q;
        const uint64_t i = sl_permute(p, 90, seed);
        assert_int_equal(sl_record_reader_record_span(r, i, &q), 0);
        if (i == victim || (level > 0 && q.chunk == sp.chunk)) {
            first = i;
            break;
        }
    }
    sl_record rec;
    assert_int_equal(sl_record_reader_read(r, first, &rec), SL_ERR_CORRUPT);
    char reader_msg[1024];
    snprintf(reader_msg, sizeof reader_msg, "%s", sl_record_reader_errmsg(r));
    sl_record_reader_close(r);
    assert_non_null(strstr(reader_msg, what));

    const char *names[2];
    const int nb = sl_test_io_backends(names);
    sl_dataset *g = shuffled(name, seed);
    for (int b = 0; b < nb; b++) {
        setenv("SLUICE_IO", names[b], 1);
        char one[1024], batched[1024];
        setenv("SLUICE_SHUFFLE_WINDOW", "1", 1);
        assert_int_equal(fail_message(g, one, sizeof one), SL_ERR_CORRUPT);
        unsetenv("SLUICE_SHUFFLE_WINDOW");
        assert_int_equal(fail_message(g, batched, sizeof batched), SL_ERR_CORRUPT);
        assert_string_equal(batched, one);
        assert_non_null(strstr(batched, reader_msg));
    }
    unsetenv("SLUICE_IO");
    sl_dataset_release(g);
}

static void test_damaged_raw_record_reported_like_a_single_read(void **state)
{
    check_damage("badraw", 0, "record crc32c mismatch");
}

static void test_damaged_zstd_chunk_reported_like_a_single_read(void **state)
{
    check_damage("badzst", 3, "chunk payload crc32c mismatch");
}

/* Checkpoints after every element (most of them inside a window) restore to the
 * uninterrupted stream. */
static void test_checkpoints_mid_window_continue_exactly(void **state)
{
    static const int counts[] = {40, 35};
    write_files("ckpt", 2, counts, 0);
    sl_dataset *g = shuffled("ckpt", 5);
    sl_test_check_every_cut(g, "records | global_shuffle", 5);
    sl_dataset_release(g);
}

/* Closing with a window half handed out frees its elements (the group fails on leaks). */
static void test_close_mid_window_frees_the_window(void **state)
{
    static const int counts[] = {50};
    write_files("close", 1, counts, 3);
    sl_dataset *g = shuffled("close", 9);
    sl_iter *it = open_iter(g);
    sl_element e;
    for (int k = 0; k < 5; k++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(record_number(&e), (int)sl_permute((uint64_t)k, 50, 9));
        sl_element_release(&e);
    }
    sl_iter_close(it);
    sl_dataset_release(g);
}

/* Map function: renames "x" back to "record", checking that it runs on the element its index
 * says (the record's number is its index in the dataset); fails on record 7. */
static int back_to_record(void *user, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                          size_t errcap)
{
    const int i = sl_element_find(in, "x");
    assert_true(i >= 0);
    int k = -1;
    assert_int_equal(sscanf((const char *)in->tensors[i].data, "r%06d-", &k), 1);
    assert_int_equal((uint64_t)k, ctx->index);
    if (k == 7) {
        snprintf(err, errcap, "seven");
        return SL_ERR_INVAL;
    }
    *out = *in;
    memset(in, 0, sizeof *in);
    out->names[i] = "record";
    return 0;
}

static sl_dataset *mapped_shuffled(const char *name, uint64_t seed)
{
    char pattern[512], err[512];
    snprintf(pattern, sizeof pattern, "%s/%s-*.sluice", sl_test_dir, name);
    const char *patterns[] = {pattern}, *from[] = {"record"}, *to[] = {"x"};
    sl_dataset *ds, *ren, *m, *g;
    if (sl_dataset_records(&ds, patterns, 1, err, sizeof err))
        fail_msg("records(%s): %s", name, err);
    assert_int_equal(sl_dataset_rename(&ren, ds, from, to, 1), 0);
    const sl_map_def def = {"back_to_record", back_to_record, NULL, NULL};
    assert_int_equal(sl_dataset_map(&m, ren, &def, NULL), 0);
    assert_int_equal(sl_dataset_global_shuffle(&g, m, seed, 0), 0);
    sl_dataset_release(ds);
    sl_dataset_release(ren);
    sl_dataset_release(m);
    return g;
}

/* rename and map pass the batch on and apply themselves per element, with each element's own
 * index: the stream is the permutation until the element the function fails on, and the
 * failure reads as with one element at a time. */
static void test_map_and_rename_pass_the_batch_on(void **state)
{
    static const int counts[] = {60, 45};
    write_files("mapped", 2, counts, 0);
    const uint64_t seed = 21;
    sl_dataset *g = mapped_shuffled("mapped", seed);
    sl_iter *it = open_iter(g);
    sl_element e;
    int p = 0, rc;
    for (; (rc = sl_iter_next(it, &e)) == 0; p++) {
        assert_int_equal(record_number(&e), (int)sl_permute((uint64_t)p, 105, seed));
        sl_element_release(&e);
    }
    assert_int_equal(rc, SL_ERR_INVAL);
    /* A whole window fails together: what came out is every window before the one holding 7. */
    uint64_t at7 = 0;
    while (sl_permute(at7, 105, seed) != 7)
        at7++;
    assert_int_equal(p, (int)(at7 - at7 % 32));
    char batched[1024], one[1024];
    snprintf(batched, sizeof batched, "%s", sl_iter_errmsg(it));
    sl_iter_close(it);
    assert_non_null(strstr(batched, "element 7: seven"));
    setenv("SLUICE_SHUFFLE_WINDOW", "1", 1);
    assert_int_equal(fail_message(g, one, sizeof one), SL_ERR_INVAL);
    unsetenv("SLUICE_SHUFFLE_WINDOW");
    assert_string_equal(batched, one);
    sl_dataset_release(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_stream_is_the_permutation),
        cmocka_unit_test(test_zstd_stream_is_the_permutation),
        cmocka_unit_test(test_batch_submits_all_reads_before_waiting),
        cmocka_unit_test(test_damaged_raw_record_reported_like_a_single_read),
        cmocka_unit_test(test_damaged_zstd_chunk_reported_like_a_single_read),
        cmocka_unit_test(test_checkpoints_mid_window_continue_exactly),
        cmocka_unit_test(test_close_mid_window_frees_the_window),
        cmocka_unit_test(test_map_and_rename_pass_the_batch_on),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
