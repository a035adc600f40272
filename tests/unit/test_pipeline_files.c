/* File sources: records(...) over sluice shards (opaque and typed) and tfrecord(...) with and
 * without indexes: order across files, cardinality, random access under global_shuffle, typed
 * fields by name without copies, and the errors a user meets (no match, mixed schemas). The
 * sluice sources read through sl_io: the same streams, checkpoints and error messages under
 * SLUICE_IO=pread and SLUICE_IO=io_uring, read-ahead across files (raw, empty, zstd) while
 * elements hold views of the read-ahead buffers. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/example.h"
#include "sluice/io.h"
#include "sluice/pipeline.h"
#include "sluice/record.h"
#include "sluice/tfrecord.h"

enum { FILES = 3, PER_FILE = 40 };

static void payload(int i, char *buf, size_t cap, size_t *len)
{
    *len = (size_t)snprintf(buf, cap, "record-%04d-%.*s", i, i % 17, "abcdefghijklmnopq");
}

static void write_shards(const char *pattern_fmt, int typed)
{
    sl_schema *schema = NULL;
    if (typed)
        assert_int_equal(sl_schema_parse(&schema, "id:int64,name:bytes", NULL, 0), 0);
    for (int f = 0; f < FILES; f++) {
        char path[512];
        snprintf(path, sizeof path, pattern_fmt, sl_test_dir, f);
        const sl_record_writer_options o = {.schema = schema, .chunk_bytes = 256};
        sl_record_writer *w;
        assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
        for (int k = 0; k < PER_FILE; k++) {
            const int i = f * PER_FILE + k;
            char buf[64];
            size_t len;
            payload(i, buf, sizeof buf, &len);
            if (!typed) {
                assert_int_equal(sl_record_writer_write(w, buf, len), 0);
                continue;
            }
            int64_t id = i;
            const int64_t n = (int64_t)len;
            sl_tensor t[2];
            sl_tensor_borrow(&t[0], SL_DTYPE_I64, 0, NULL, &id);
            sl_tensor_borrow(&t[1], SL_DTYPE_BYTES, 1, &n, buf);
            assert_int_equal(sl_record_writer_write_fields(w, t), 0);
        }
        assert_int_equal(sl_record_writer_finish(w), 0);
        sl_record_writer_close(w);
    }
    sl_schema_free(schema);
}

static int record_number(const sl_element *e)
{
    const sl_tensor *t = sl_element_get(e, "record");
    assert_non_null(t);
    assert_int_equal(t->dtype, SL_DTYPE_BYTES);
    int i;
    assert_int_equal(sscanf((const char *)t->data, "record-%4d", &i), 1);
    char want[64];
    size_t len;
    payload(i, want, sizeof want, &len);
    assert_int_equal(t->shape[0], (int64_t)len);
    assert_memory_equal(t->data, want, len);
    return i;
}

static void test_records_in_file_order(void **state)
{
    write_shards("%s/plain-%d.sluice", 0);
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/plain-*.sluice", sl_test_dir);
    const char *patterns[] = {pattern};
    sl_dataset *ds;
    char err[512];
    assert_int_equal(sl_dataset_records(&ds, patterns, 1, err, sizeof err), 0);
    assert_int_equal(sl_dataset_cardinality(ds), FILES * PER_FILE);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    for (int i = 0; i < FILES * PER_FILE; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(record_number(&e), i);
        assert_non_null(e.tensors[0].buffer); /* a view of the reader's buffer */
        sl_element_release(&e);
    }
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_records_under_global_shuffle(void **state)
{
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/plain-*.sluice", sl_test_dir);
    const char *patterns[] = {pattern};
    sl_dataset *ds, *g;
    assert_int_equal(sl_dataset_records(&ds, patterns, 1, NULL, 0), 0);
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 9, 1), 0);
    sl_dataset_release(ds);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, g, NULL), 0);
    int seen[FILES * PER_FILE] = {0}, in_order = 0;
    sl_element e;
    for (int i = 0; i < FILES * PER_FILE; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        const int k = record_number(&e);
        seen[k]++;
        in_order += k == i;
        sl_element_release(&e);
    }
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    for (int i = 0; i < FILES * PER_FILE; i++)
        assert_int_equal(seen[i], 1);
    assert_true(in_order < 10);
    sl_iter_close(it);
    sl_dataset_release(g);
}

static void test_typed_records_give_named_fields(void **state)
{
    write_shards("%s/typed-%d.sluice", 1);
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/typed-*.sluice", sl_test_dir);
    const char *patterns[] = {pattern};
    sl_dataset *ds, *b;
    assert_int_equal(sl_dataset_records(&ds, patterns, 1, NULL, 0), 0);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    for (int i = 0; i < FILES * PER_FILE; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(e.count, 2);
        assert_int_equal(*(const int64_t *)sl_element_get(&e, "id")->data, i);
        const sl_tensor *name = sl_element_get(&e, "name");
        char want[64];
        size_t len;
        payload(i, want, sizeof want, &len);
        assert_int_equal(name->shape[0], (int64_t)len);
        assert_memory_equal(name->data, want, len);
        sl_element_release(&e);
    }
    sl_iter_close(it);
    /* Names of different lengths cannot be stacked: batch says so and points at padded_batch. */
    assert_int_equal(sl_dataset_batch(&b, ds, 4, 0), 0);
    sl_dataset_release(ds);
    assert_int_equal(sl_iter_open(&it, b, NULL), 0);
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_SCHEMA);
    assert_non_null(strstr(sl_iter_errmsg(it), "batch(4): element 1: tensor \"name\""));
    assert_non_null(strstr(sl_iter_errmsg(it), "use padded_batch"));
    sl_iter_close(it);
    sl_dataset_release(b);
}

static void test_tfrecord_with_and_without_index(void **state)
{
    char path[2][512];
    for (int f = 0; f < 2; f++) {
        snprintf(path[f], sizeof path[f], "%s/part-%d.tfrecord", sl_test_dir, f);
        sl_tfrecord_writer *w;
        assert_int_equal(sl_tfrecord_writer_open(&w, path[f], SL_TFRECORD_NONE), 0);
        for (int k = 0; k < PER_FILE; k++) {
            char buf[64];
            size_t len;
            payload(f * PER_FILE + k, buf, sizeof buf, &len);
            assert_int_equal(sl_tfrecord_writer_write(w, buf, len), 0);
        }
        assert_int_equal(sl_tfrecord_writer_finish(w), 0);
        sl_tfrecord_writer_close(w);
    }
    char pattern[512];
    snprintf(pattern, sizeof pattern, "%s/part-*.tfrecord", sl_test_dir);
    const char *patterns[] = {pattern};
    sl_dataset *ds;
    assert_int_equal(sl_dataset_tfrecord(&ds, patterns, 1, NULL, 0), 0);
    assert_int_equal(sl_dataset_cardinality(ds), SL_CARDINALITY_UNKNOWN);
    sl_dataset *g;
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 1, 1), SL_ERR_UNSUPPORTED);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    for (int i = 0; i < 2 * PER_FILE; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(record_number(&e), i);
        sl_element_release(&e);
    }
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);

    for (int f = 0; f < 2; f++) {
        char idx[600];
        snprintf(idx, sizeof idx, "%s.idx", path[f]);
        assert_int_equal(sl_tfrecord_index_build(path[f], idx, NULL, NULL, 0), 0);
    }
    assert_int_equal(sl_dataset_tfrecord(&ds, patterns, 1, NULL, 0), 0);
    assert_int_equal(sl_dataset_cardinality(ds), 2 * PER_FILE);
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 1, 1), 0);
    assert_int_equal(sl_iter_open(&it, g, NULL), 0);
    int seen[2 * PER_FILE] = {0};
    while (sl_iter_next(it, &e) == 0) {
        seen[record_number(&e)]++;
        sl_element_release(&e);
    }
    for (int i = 0; i < 2 * PER_FILE; i++)
        assert_int_equal(seen[i], 1);
    sl_iter_close(it);
    sl_dataset_release(g);
    sl_dataset_release(ds);
}

/* tfrecord(...) | parse_example(...): values, shapes, VarLen counts, and a missing feature. */
static void test_parse_example_from_tfrecord(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples.tfrecord", sl_test_dir);
    sl_tfrecord_writer *w;
    assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_NONE), 0);
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    for (int i = 0; i < 10; i++) {
        const int64_t label = i * 7;
        const float emb[2] = {(float)i, -0.5f};
        const int64_t ids[3] = {i, i + 1, i + 2};
        char name[16];
        const sl_example_bytes nb = {(const uint8_t *)name,
                                     (size_t)snprintf(name, sizeof name, "img%d", i)};
        const sl_example_feature f[] = {
            {"label", 0, SL_EXAMPLE_INT64, 1, &label},
            {"emb", 0, SL_EXAMPLE_FLOAT, 2, emb},
            {"ids", 0, SL_EXAMPLE_INT64, (size_t)(i % 4), ids},
            {"name", 0, SL_EXAMPLE_BYTES, 1, &nb},
        };
        assert_int_equal(sl_example_serialize_grow(f, 4, &buf, &cap, &len, NULL, 0), 0);
        assert_int_equal(sl_tfrecord_writer_write(w, buf, len), 0);
    }
    sl_free(buf);
    assert_int_equal(sl_tfrecord_writer_finish(w), 0);
    sl_tfrecord_writer_close(w);

    const char *patterns[] = {path};
    sl_dataset *src, *ds;
    char err[512];
    assert_int_equal(sl_dataset_tfrecord(&src, patterns, 1, NULL, 0), 0);
    assert_int_equal(sl_dataset_parse_example(&ds, src,
                                              "label:int64,emb:float32[2],ids:int64[-1],"
                                              "name:bytes",
                                              err, sizeof err),
                     0);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sl_iter_next(it, &e), 0);
        assert_int_equal(*(const int64_t *)sl_element_get(&e, "label")->data, i * 7);
        const sl_tensor *emb = sl_element_get(&e, "emb");
        assert_int_equal(emb->rank, 1);
        assert_int_equal(emb->shape[0], 2);
        assert_true(((const float *)emb->data)[0] == (float)i);
        const sl_tensor *ids = sl_element_get(&e, "ids");
        assert_int_equal(ids->shape[0], i % 4);
        if (i % 4)
            assert_int_equal(((const int64_t *)ids->data)[0], i);
        const sl_tensor *name = sl_element_get(&e, "name");
        char want[16];
        const int n = snprintf(want, sizeof want, "img%d", i);
        assert_int_equal(name->shape[0], n);
        assert_memory_equal(name->data, want, (size_t)n);
        sl_element_release(&e);
    }
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    sl_iter_close(it);
    sl_dataset_release(ds);

    /* A feature the records lack fails the element, naming the feature; skip drops them all. */
    assert_int_equal(sl_dataset_parse_example(&ds, src, "missing:int64", err, sizeof err), 0);
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_NOT_FOUND);
    assert_non_null(strstr(sl_iter_errmsg(it), "element 0: tf.Example feature 'missing'"));
    sl_iter_close(it);
    const sl_iter_options skip = {.on_error = SL_ON_ERROR_SKIP};
    assert_int_equal(sl_iter_open(&it, ds, &skip), 0);
    assert_int_equal(sl_iter_next(it, &e), SL_EOF);
    assert_int_equal(sl_iter_skipped(it), 10);
    sl_iter_close(it);
    sl_dataset_release(ds);
    assert_int_equal(sl_dataset_parse_example(&ds, src, "x:uint8", err, sizeof err),
                     SL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "field \"x\""));
    sl_dataset_release(src);
}

static void test_source_errors_name_the_file(void **state)
{
    char pattern[512], err[512];
    snprintf(pattern, sizeof pattern, "%s/nothing-*.sluice", sl_test_dir);
    const char *patterns[] = {pattern};
    sl_dataset *ds;
    assert_int_equal(sl_dataset_records(&ds, patterns, 1, err, sizeof err), -ENOENT);
    assert_null(ds);
    assert_non_null(strstr(err, "nothing-*.sluice: no file matches"));

    char mixed[2][512];
    snprintf(mixed[0], sizeof mixed[0], "%s/plain-0.sluice", sl_test_dir);
    snprintf(mixed[1], sizeof mixed[1], "%s/typed-0.sluice", sl_test_dir);
    const char *both[] = {mixed[0], mixed[1]};
    assert_int_equal(sl_dataset_records(&ds, both, 2, err, sizeof err), SL_ERR_SCHEMA);
    assert_non_null(strstr(err, "typed-0.sluice: its schema differs"));

    /* Damage a record's bytes after the dataset was built: the read fails naming the file. */
    char path[512];
    snprintf(path, sizeof path, "%s/plain-1.sluice", sl_test_dir);
    const char *one[] = {path};
    assert_int_equal(sl_dataset_records(&ds, one, 1, err, sizeof err), 0);
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    fputc('#', f);
    fclose(f);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0)
        sl_element_release(&e);
    assert_int_equal(rc, SL_ERR_CORRUPT);
    assert_non_null(strstr(sl_iter_errmsg(it), "plain-1.sluice"));
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* ---- I/O backends -------------------------------------------------------------------------- */

/* SLUICE_IO for the iterators opened until the next call; NULL unsets it. */
static void use_backend(const char *name)
{
    if (name)
        setenv("SLUICE_IO", name, 1);
    else
        unsetenv("SLUICE_IO");
}

static sl_dataset *records_of(const char *glob)
{
    char pattern[512], err[512];
    snprintf(pattern, sizeof pattern, "%s/%s", sl_test_dir, glob);
    const char *patterns[] = {pattern};
    sl_dataset *ds;
    if (sl_dataset_records(&ds, patterns, 1, err, sizeof err))
        fail_msg("records(%s): %s", glob, err);
    return ds;
}

static sl_test_stream *stream_of(sl_dataset *ds, int threads, uint64_t seed)
{
    sl_test_stream *st = sl_test_stream_new();
    sl_iter *it = sl_test_iter_open(ds, threads, seed, NULL, 0);
    const int rc = sl_test_drain(it, st, -1);
    if (rc != SL_EOF)
        fail_msg("drain: %s", sl_iter_errmsg(it));
    sl_iter_close(it);
    return st;
}

static void assert_streams_equal(const sl_test_stream *a, const sl_test_stream *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++)
        assert_string_equal(a->line[i], b->line[i]);
}

/* records(...) in file order and under global_shuffle: the same elements under every backend,
 * and the sequential one in record order. */
static void test_records_same_stream_under_every_backend(void **state)
{
    write_shards("%s/plain-%d.sluice", 0);
    const char *names[2];
    const int nb = sl_test_io_backends(names);
    sl_dataset *ds = records_of("plain-*.sluice"), *g;
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 5, 1), 0);
    sl_test_stream *want_seq = NULL, *want_shuf = NULL;
    for (int b = 0; b < nb; b++) {
        use_backend(names[b]);
        sl_test_stream *seq = stream_of(ds, 2, 1), *shuf = stream_of(g, 2, 1);
        assert_int_equal(seq->n, FILES * PER_FILE);
        for (int i = 0; i < seq->n; i++) {
            char want[64];
            size_t len;
            payload(i, want, sizeof want, &len);
            want[len] = '\0';
            assert_string_equal(seq->line[i], want);
        }
        if (!want_seq) {
            want_seq = seq;
            want_shuf = shuf;
            continue;
        }
        assert_streams_equal(seq, want_seq);
        assert_streams_equal(shuf, want_shuf);
        sl_free(seq);
        sl_free(shuf);
    }
    use_backend(NULL);
    sl_free(want_seq);
    sl_free(want_shuf);
    sl_dataset_release(g);
    sl_dataset_release(ds);
}

/* Save after every element and restore (a seek into the middle of a file and of a chunk, with
 * read-ahead in flight): the uninterrupted stream, under every backend. */
static void test_records_checkpoints_under_every_backend(void **state)
{
    const char *names[2];
    const int nb = sl_test_io_backends(names);
    sl_dataset *ds = records_of("plain-*.sluice"), *g;
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 5, 1), 0);
    for (int b = 0; b < nb; b++) {
        use_backend(names[b]);
        sl_test_check_every_cut(ds, names[b], 3);
        sl_test_check_every_cut(g, names[b], 3);
    }
    use_backend(NULL);
    sl_dataset_release(g);
    sl_dataset_release(ds);
}

/* Big records for the read-ahead test: record i of file f, `BIG_RECORD` bytes, compressible. */
enum { BIG_RECORD = 16 << 10, BIG_PER_FILE = 700 };

static void big_fill(int i, uint8_t *b)
{
    for (size_t j = 0; j < BIG_RECORD; j++)
        b[j] = (uint8_t)('a' + (i * 7 + (int)(j / 100)) % 26);
    snprintf((char *)b, 16, "%08d", i); /* names the record for failure messages */
}

static void write_big(const char *name, int first, int count, int level)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", sl_test_dir, name);
    const sl_record_writer_options o = {.compression_level = level, .chunk_bytes = 256 << 10};
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
    uint8_t *b = sl_malloc(BIG_RECORD);
    for (int i = first; i < first + count; i++) {
        big_fill(i, b);
        assert_int_equal(sl_record_writer_write(w, b, BIG_RECORD), 0);
    }
    sl_free(b);
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
}

static void assert_big(const sl_element *e, int i, uint8_t *want)
{
    const sl_tensor *t = sl_element_get(e, "record");
    assert_non_null(t);
    assert_int_equal(t->shape[0], BIG_RECORD);
    big_fill(i, want);
    if (memcmp(t->data, want, BIG_RECORD) != 0)
        fail_msg("element %d differs from record %d (starts \"%.8s\")", i, i,
                 (const char *)t->data);
}

/* Files of about 11 MB (more spans than the read-ahead ring holds, so it wraps), an empty file
 * between a raw and a zstd one: every element intact under every backend, both when each is
 * released at once (buffers reused) and when all are held (each span pinned by its elements,
 * so the read-ahead must take fresh buffers instead of overwriting them). */
static void test_read_ahead_across_files_keeps_held_elements_intact(void **state)
{
    write_big("big-0.sluice", 0, BIG_PER_FILE, 0);
    write_big("big-1.sluice", 0, 0, 0);
    write_big("big-2.sluice", BIG_PER_FILE, BIG_PER_FILE, 1);
    const int n = 2 * BIG_PER_FILE;
    const char *names[2];
    const int nb = sl_test_io_backends(names);
    sl_dataset *ds = records_of("big-*.sluice");
    assert_int_equal(sl_dataset_cardinality(ds), n);
    uint8_t *want = sl_malloc(BIG_RECORD);
    sl_element *held = sl_calloc((size_t)n, sizeof *held);
    for (int b = 0; b < nb; b++) {
        use_backend(names[b]);
        sl_iter *it = sl_test_iter_open(ds, 1, 0, NULL, 0);
        sl_element e;
        for (int i = 0; i < n; i++) {
            assert_int_equal(sl_iter_next(it, &e), 0);
            assert_big(&e, i, want);
            sl_element_release(&e);
        }
        assert_int_equal(sl_iter_next(it, &e), SL_EOF);
        sl_iter_close(it);

        it = sl_test_iter_open(ds, 1, 0, NULL, 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(sl_iter_next(it, &held[i]), 0);
        assert_int_equal(sl_iter_next(it, &e), SL_EOF);
        sl_iter_close(it);
        for (int i = 0; i < n; i++) {
            assert_big(&held[i], i, want);
            sl_element_release(&held[i]);
        }
    }
    use_backend(NULL);
    sl_free(held);
    sl_free(want);
    sl_dataset_release(ds);
}

/* The message of the first error when reading `ds` to the end. */
static int fail_message(sl_dataset *ds, char *msg, size_t cap)
{
    sl_iter *it = sl_test_iter_open(ds, 1, 0, NULL, 0);
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0)
        sl_element_release(&e);
    snprintf(msg, cap, "%s", sl_iter_errmsg(it));
    sl_iter_close(it);
    return rc;
}

/* A damaged chunk met by read-ahead fails with the record reader's own message (file, record,
 * chunk, offset), the same one under every backend. */
static void test_damage_reported_like_the_reader_under_every_backend(void **state)
{
    write_big("dmg-0.sluice", 0, 40, 0);
    write_big("dmg-1.sluice", 40, 40, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/dmg-1.sluice", sl_test_dir);
    sl_dataset *ds = records_of("dmg-*.sluice");
    /* Damage a payload byte of chunk 1 of the second file, after the dataset was built. */
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    uint64_t off, len;
    assert_int_equal(sl_record_reader_chunk_span(r, 1, &off, &len), 0);
    sl_record_reader_close(r);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, (long)off + 48 + 1000, SEEK_SET);
    fputc('#', f);
    fclose(f);
    /* What the reader itself says. */
    assert_int_equal(sl_record_reader_open(&r, path, NULL), 0);
    sl_record rec;
    int rc;
    while ((rc = sl_record_reader_next(r, &rec)) == 0) {
    }
    assert_int_equal(rc, SL_ERR_CORRUPT);
    char want[1024];
    snprintf(want, sizeof want, "%s", sl_record_reader_errmsg(r));
    sl_record_reader_close(r);
    assert_non_null(strstr(want, "(chunk 1) at offset"));

    const char *names[2];
    const int nb = sl_test_io_backends(names);
    for (int b = 0; b < nb; b++) {
        use_backend(names[b]);
        char got[1024];
        assert_int_equal(fail_message(ds, got, sizeof got), SL_ERR_CORRUPT);
        assert_string_equal(got, want);
    }
    use_backend(NULL);
    sl_dataset_release(ds);
}

/* tfrecord(...) reads through the same sl_io: without indexes (sequential blocks, a record
 * of 1.5 MiB crossing them) and with them (global_shuffle's random reads, restores that seek),
 * the same elements and the same checkpoints under every backend. */
static void test_tfrecord_same_stream_under_every_backend(void **state)
{
    enum { N = 40, BIG = 1536 << 10 };
    char path[512], idx[600], pattern[512];
    uint8_t *big = sl_malloc(BIG);
    memset(big, 'b', BIG);
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/io-%d.tfrecord", sl_test_dir, f);
        sl_tfrecord_writer *w;
        assert_int_equal(sl_tfrecord_writer_open(&w, path, SL_TFRECORD_NONE), 0);
        for (int k = 0; k < N; k++) {
            char buf[64];
            size_t len;
            payload(f * N + k, buf, sizeof buf, &len);
            assert_int_equal(k == N / 2 ? sl_tfrecord_writer_write(w, big, BIG)
                                        : sl_tfrecord_writer_write(w, buf, len),
                             0);
        }
        assert_int_equal(sl_tfrecord_writer_finish(w), 0);
        sl_tfrecord_writer_close(w);
    }
    sl_free(big);
    snprintf(pattern, sizeof pattern, "%s/io-*.tfrecord", sl_test_dir);
    const char *patterns[] = {pattern};
    const char *names[2];
    const int nb = sl_test_io_backends(names);
    for (int indexed = 0; indexed < 2; indexed++) {
        for (int f = 0; indexed && f < 2; f++) {
            snprintf(path, sizeof path, "%s/io-%d.tfrecord", sl_test_dir, f);
            snprintf(idx, sizeof idx, "%s.idx", path);
            assert_int_equal(sl_tfrecord_index_build(path, idx, NULL, NULL, 0), 0);
        }
        sl_dataset *ds, *g = NULL;
        assert_int_equal(sl_dataset_tfrecord(&ds, patterns, 1, NULL, 0), 0);
        if (indexed)
            assert_int_equal(sl_dataset_global_shuffle(&g, ds, 5, 1), 0);
        sl_test_stream *want = NULL, *want_shuf = NULL;
        for (int b = 0; b < nb; b++) {
            use_backend(names[b]);
            sl_test_stream *seq = stream_of(ds, 2, 1), *shuf = g ? stream_of(g, 2, 1) : NULL;
            assert_int_equal(seq->n, 2 * N);
            if (!want) {
                want = seq;
                want_shuf = shuf;
            } else {
                assert_streams_equal(seq, want);
                sl_free(seq);
                if (shuf)
                    assert_streams_equal(shuf, want_shuf);
                sl_free(shuf);
            }
            sl_test_check_every_cut(indexed ? g : ds, names[b], 3);
        }
        /* The reads really go through sl_io: a SLUICE_IO naming no backend fails them. */
        use_backend("uring");
        char msg[1024];
        assert_int_equal(fail_message(indexed ? g : ds, msg, sizeof msg), SL_ERR_INVAL);
        assert_non_null(strstr(msg, "SLUICE_IO=uring: expected pread, io_uring or auto"));
        use_backend(NULL);
        sl_free(want);
        sl_free(want_shuf);
        sl_dataset_release(g);
        sl_dataset_release(ds);
    }
}

/* A SLUICE_IO value that names no backend fails the stream, sequential or random access. */
static void test_unknown_sluice_io_fails_naming_it(void **state)
{
    sl_dataset *ds = records_of("plain-*.sluice"), *g;
    assert_int_equal(sl_dataset_global_shuffle(&g, ds, 5, 1), 0);
    use_backend("uring");
    char msg[1024];
    assert_int_equal(fail_message(ds, msg, sizeof msg), SL_ERR_INVAL);
    assert_non_null(strstr(msg, "SLUICE_IO=uring: expected pread, io_uring or auto"));
    assert_int_equal(fail_message(g, msg, sizeof msg), SL_ERR_INVAL);
    assert_non_null(strstr(msg, "SLUICE_IO=uring: expected pread, io_uring or auto"));
    use_backend(NULL);
    sl_dataset_release(g);
    sl_dataset_release(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_in_file_order),
        cmocka_unit_test(test_records_under_global_shuffle),
        cmocka_unit_test(test_typed_records_give_named_fields),
        cmocka_unit_test(test_tfrecord_with_and_without_index),
        cmocka_unit_test(test_parse_example_from_tfrecord),
        cmocka_unit_test(test_source_errors_name_the_file),
        cmocka_unit_test(test_records_same_stream_under_every_backend),
        cmocka_unit_test(test_records_checkpoints_under_every_backend),
        cmocka_unit_test(test_tfrecord_same_stream_under_every_backend),
        cmocka_unit_test(test_read_ahead_across_files_keeps_held_elements_intact),
        cmocka_unit_test(test_damage_reported_like_the_reader_under_every_backend),
        cmocka_unit_test(test_unknown_sluice_io_fails_naming_it),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
