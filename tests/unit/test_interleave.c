/* interleave and files(): output order equal to tf.data's deterministic interleave (expected
 * orders written from its documented algorithm, the documentation's own example first), the
 * same output for any parallelism and thread count, checkpoints at every cut point (sequential
 * and parallel, under repeat and shuffle, nested), restores that read no inner record before
 * its saved position, the `$name` placeholder in the pipeline text, errors, the skip policy,
 * ordered=false, and early close. */
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "sluice/pipeline_build.h"
#include "sluice/record.h"

/* ---- map functions for the registry ------------------------------------------------------ */

/* slow: identity that first sleeps 0-100 µs drawn from the element's RNG, so parallel readers
 * finish in an order unrelated to the output order. */
static int run_slow(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                    size_t errcap)
{
    sl_rng r = c->rng;
    const struct timespec ts = {0, (long)sl_rng_below(&r, 100) * 1000};
    nanosleep(&ts, NULL);
    sl_element_share(out, in);
    sl_element_release(in);
    return 0;
}

/* reads: identity that records every record it sees ({"record": "fF-rRRR"}), so a test can
 * tell which records a restored iterator read. */
static _Atomic int reads_n;
static char reads_seen[512][16];

static int run_reads(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    const sl_tensor *t = sl_element_get(in, "record");
    const int i = atomic_fetch_add(&reads_n, 1);
    if (t && i < 512)
        snprintf(reads_seen[i], sizeof reads_seen[i], "%.*s", (int)sl_tensor_nbytes(t),
                 (const char *)t->data);
    sl_element_share(out, in);
    sl_element_release(in);
    return 0;
}

static sl_registry *new_registry(void)
{
    sl_registry *r;
    assert_int_equal(sl_registry_create(&r), 0);
    assert_int_equal(sl_registry_add(r, "slow", sl_test_map_factory, (void *)run_slow, "slow"), 0);
    assert_int_equal(sl_registry_add(r, "reads", sl_test_map_factory, (void *)run_reads, "reads"),
                     0);
    return r;
}

static sl_dataset *build(const sl_registry *reg, const char *text)
{
    return sl_test_build(reg, text);
}

/* ---- streams as text ---------------------------------------------------------------------- */

typedef sl_test_stream stream;
enum { SEED = 11 };

static stream *new_stream(void)
{
    return sl_test_stream_new();
}

static int drain(sl_iter *it, stream *s, int limit)
{
    return sl_test_drain(it, s, limit);
}

static sl_iter *open_at(sl_dataset *ds, int threads, const uint8_t *blob, size_t len)
{
    return sl_test_iter_open(ds, threads, SEED, blob, len);
}

/* The whole stream joined by spaces. */
static void run_all(sl_dataset *ds, int threads, char *out, size_t cap)
{
    stream *s = new_stream();
    sl_iter *it = open_at(ds, threads, NULL, 0);
    const int rc = drain(it, s, -1);
    if (rc != SL_EOF)
        fail_msg("%s", sl_iter_errmsg(it));
    sl_iter_close(it);
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < s->n && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "", s->line[i]);
    sl_free(s);
}

/* ---- the C API ----------------------------------------------------------------------------- */

/* tf.data's documented example: Dataset.range(1, 6).interleave(lambda x:
 * Dataset.from_tensors(x).repeat(6), cycle_length=2, block_length=4). */
static int make_repeated(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                         size_t errcap)
{
    const int64_t x = *(const int64_t *)sl_element_get(outer, "value")->data;
    sl_dataset *one;
    SL_TRY(sl_dataset_range(&one, x, x + 1, 1));
    const int rc = sl_dataset_repeat(inner, one, 6);
    sl_dataset_release(one);
    return rc;
}

static void test_order_of_the_tf_data_example(void **state)
{
    sl_dataset *r, *il;
    assert_int_equal(sl_dataset_range(&r, 1, 6, 1), 0);
    const sl_interleave_options o = {.cycle_length = 2, .block_length = 4};
    assert_int_equal(sl_dataset_interleave(&il, r, make_repeated, NULL, "repeated", &o), 0);
    sl_dataset_release(r);
    char got[512];
    run_all(il, 2, got, sizeof got);
    assert_string_equal(got, "1 1 1 1 2 2 2 2 1 1 2 2 3 3 3 3 4 4 4 4 3 3 4 4 5 5 5 5 5 5");
    sl_dataset_release(il);
}

/* range(100x, 100x + x + 1): inner streams of different lengths, told apart by their values. */
static int make_ladder(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                       size_t errcap)
{
    const int64_t x = *(const int64_t *)sl_element_get(outer, "value")->data;
    return sl_dataset_range(inner, 100 * x, 100 * x + x + 1, 1);
}

static void test_order_with_uneven_inner_streams(void **state)
{
    sl_dataset *r, *il;
    assert_int_equal(sl_dataset_range(&r, 0, 4, 1), 0);
    const sl_interleave_options o = {.cycle_length = 3, .block_length = 2};
    assert_int_equal(sl_dataset_interleave(&il, r, make_ladder, NULL, "ladder", &o), 0);
    sl_dataset_release(r);
    char text[256];
    sl_dataset_print(il, text, sizeof text);
    assert_string_equal(text, "range(0, 4) | interleave(ladder, cycle_length=3, block_length=2)");
    assert_int_equal(sl_dataset_cardinality(il), SL_CARDINALITY_UNKNOWN);
    char got[512];
    run_all(il, 1, got, sizeof got);
    assert_string_equal(got, "0 100 101 200 201 300 301 202 302 303");
    sl_dataset_release(il);
}

static int freed;

static void count_free(void *user)
{
    freed++;
}

static void test_bad_options_are_refused_and_free_the_user_pointer(void **state)
{
    sl_dataset *r, *il;
    assert_int_equal(sl_dataset_range(&r, 0, 4, 1), 0);
    freed = 0;
    sl_interleave_options o = {.cycle_length = -1, .free_user = count_free};
    assert_int_equal(sl_dataset_interleave(&il, r, make_ladder, NULL, "x", &o), SL_ERR_INVAL);
    assert_null(il);
    o = (sl_interleave_options){.cycle_length = 1025, .free_user = count_free};
    assert_int_equal(sl_dataset_interleave(&il, r, make_ladder, NULL, "x", &o), SL_ERR_INVAL);
    o = (sl_interleave_options){.parallel = -5, .free_user = count_free};
    assert_int_equal(sl_dataset_interleave(&il, r, make_ladder, NULL, "x", &o), SL_ERR_INVAL);
    assert_int_equal(freed, 3);
    o = (sl_interleave_options){.free_user = count_free}; /* zeros: cycle 1, block 1 */
    assert_int_equal(sl_dataset_interleave(&il, r, make_ladder, NULL, "x", &o), 0);
    assert_int_equal(freed, 3);
    sl_dataset_release(r);
    char got[128];
    run_all(il, 1, got, sizeof got);
    assert_string_equal(got, "0 100 101 200 201 202 300 301 302 303");
    sl_dataset_release(il);
    assert_int_equal(freed, 4);
}

/* ---- expected orders from the pipeline text ------------------------------------------------- */

static const struct {
    const char *text, *expect;
} order_cases[] = {
    /* cycle_length=1 is flat_map */
    {"range(3) | interleave(range($value, 30, 10))", "0 10 20 1 11 21 2 12 22"},
    {"range(3) | interleave(range($value, 30, 10), cycle_length=2)", "0 1 10 11 20 21 2 12 22"},
    /* a block longer than the inner stream: the stream's end ends the block */
    {"range(3) | interleave(range($value, 30, 10), 2, 5)", "0 10 20 1 11 21 2 12 22"},
    {"range(1, 5) | interleave(range($value), cycle_length=2, block_length=2)",
     "0 0 1 0 1 2 0 1 2 3"},
    /* empty inner streams (range(0)) are passed over */
    {"range(4) | interleave(range($value), cycle_length=3)", "0 0 0 1 1 2"},
    {"range(0) | interleave(range($value), cycle_length=2)", ""},
    /* more slots than outer elements */
    {"range(2) | interleave(range($value, 40, 10), cycle_length=8)", "0 1 10 11 20 21 30 31"},
    /* transforms inside the inner pipeline, and after */
    {"range(3) | interleave(range($value, 100, 10) | take(3) | batch(2), cycle_length=2)",
     "0,10 1,11 20 21 2,12 22"},
    {"range(3) | interleave(range(start=$value, stop=6, step=3), cycle_length=3) | batch(4)",
     "0,1,2,3 4,5"},
    /* the outer stream transformed first; an inner pipeline with its own repeat */
    {"range(5) | skip(3) | interleave(range($value, 5) | repeat(2), cycle_length=2)",
     "3 4 4 4 3 4"},
};

static void check_order(const sl_registry *reg, const char *text, const char *expect, int threads)
{
    sl_dataset *ds = build(reg, text);
    char got[1024];
    run_all(ds, threads, got, sizeof got);
    if (strcmp(got, expect))
        fail_msg("%s (threads %d): got \"%s\", expected \"%s\"", text, threads, got, expect);
    sl_dataset_release(ds);
}

static void test_orders_from_text(void **state)
{
    sl_registry *reg = new_registry();
    for (size_t i = 0; i < SL_ARRAY_LEN(order_cases); i++)
        check_order(reg, order_cases[i].text, order_cases[i].expect, 2);
    sl_registry_free(reg);
}

/* The same table with parallel readers that finish in random order: the output is unchanged
 * for any parallelism and any thread count. */
static void test_parallel_output_is_identical(void **state)
{
    sl_registry *reg = new_registry();
    static const char *const par[] = {"parallel=2", "parallel=auto", "parallel=8"};
    static const int threads[] = {1, 2, 8};
    for (size_t i = 0; i < SL_ARRAY_LEN(order_cases); i++) {
        /* interleave(INNER, ARGS) -> interleave(INNER | map(slow), ARGS, parallel=P) */
        const char *text = order_cases[i].text;
        const char *at = strstr(text, "interleave(");
        assert_non_null(at);
        int depth = 0;
        const char *close = at + strlen("interleave");
        for (; *close; close++) {
            depth += *close == '(';
            depth -= *close == ')';
            if (depth == 0)
                break;
        }
        /* the map goes at the end of the inner pipeline: before the first ',' at the
         * interleave call's own depth, or before its ')' when it has no other argument */
        const char *end = at + strlen("interleave(");
        for (int d = 0; end < close; end++) {
            d += *end == '(';
            d -= *end == ')';
            if (d == 0 && *end == ',')
                break;
        }
        for (size_t p = 0; p < SL_ARRAY_LEN(par); p++) {
            char with[512];
            snprintf(with, sizeof with, "%.*s | map(slow)%.*s, %s%s", (int)(end - text), text,
                     (int)(close - end), end, par[p], close);
            for (size_t t = 0; t < SL_ARRAY_LEN(threads); t++)
                check_order(reg, with, order_cases[i].expect, threads[t]);
        }
    }
    sl_registry_free(reg);
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

static void check_every_cut(const sl_registry *reg, const char *text)
{
    sl_dataset *ds = build(reg, text);
    sl_test_check_every_cut(ds, text, SEED);
    sl_dataset_release(ds);
}

static void test_every_cut_equals_uninterrupted(void **state)
{
    static const char *const cases[] = {
        "range(1, 6) | interleave(range($value) | repeat(2), cycle_length=2, block_length=3)",
        "range(6) | interleave(range($value, 60, 10), cycle_length=3) | repeat(2)",
        "range(6) | interleave(range($value, 60, 10), cycle_length=3, parallel=2) | repeat(2)",
        "range(8) | shuffle(4, seed=5) | interleave(range($value), cycle_length=2, "
        "block_length=2, parallel=auto)",
        "range(4) | interleave(range($value, 50, 10) | map(slow, parallel=2), cycle_length=2) | "
        "prefetch(2)",
        "range(5) | interleave(range($value) | shuffle(3, seed=1), cycle_length=4, parallel=4) | "
        "batch(3)",
        "range(3) | interleave(range($value, 4) | interleave(range($value, 9, 3), "
        "cycle_length=2), cycle_length=2)",
        "range(7) | interleave(range($value), cycle_length=3, block_length=2) | enumerate",
    };
    sl_registry *reg = new_registry();
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++)
        check_every_cut(reg, cases[i]);
    sl_registry_free(reg);
}

/* Three sluice files of 40 records "fF-rRRR"; the pattern is written into glob. */
static void write_files(char *glob, size_t cap)
{
    for (int f = 0; f < 3; f++) {
        char path[300];
        snprintf(path, sizeof path, "%s/part-%d.sluice", sl_test_dir, f);
        const sl_record_writer_options wo = {.compression_level = 3, .chunk_bytes = 64};
        sl_record_writer *w;
        assert_int_equal(sl_record_writer_open(&w, path, &wo), 0);
        for (int r = 0; r < 40; r++) {
            char rec[16];
            const int n = snprintf(rec, sizeof rec, "f%d-r%03d", f, r);
            assert_int_equal(sl_record_writer_write(w, rec, (size_t)n), 0);
        }
        assert_int_equal(sl_record_writer_finish(w), 0);
        sl_record_writer_close(w);
    }
    snprintf(glob, cap, "%s/part-*.sluice", sl_test_dir);
}

/* After a restore, the inner sources seek: the map right above each one sees exactly the records
 * that are still to come, each once, and none handed out before the cut. */
static void test_restore_reads_no_record_before_the_position(void **state)
{
    char glob[256];
    write_files(glob, sizeof glob);
    sl_registry *reg = new_registry();
    static const char *const shapes[] = {
        "files(\"%s\") | interleave(records($path) | map(reads), cycle_length=2, "
        "block_length=3)",
        "files(\"%s\") | interleave(records($path) | map(reads), cycle_length=2, block_length=3, "
        "parallel=2)",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(shapes); i++) {
        char text[512];
        snprintf(text, sizeof text, shapes[i], glob);
        sl_dataset *ds = build(reg, text);
        static const int cuts[] = {1, 50, 95, 119};
        for (size_t c = 0; c < SL_ARRAY_LEN(cuts); c++) {
            stream *before = new_stream(), *after = new_stream();
            sl_iter *it = open_at(ds, 2, NULL, 0);
            assert_int_equal(drain(it, before, cuts[c]), 0);
            uint8_t *blob;
            size_t len;
            assert_int_equal(sl_iter_save(it, &blob, &len), 0);
            sl_iter_close(it);
            atomic_store(&reads_n, 0);
            it = open_at(ds, 2, blob, len);
            assert_int_equal(drain(it, after, -1), SL_EOF);
            sl_iter_close(it);
            sl_free(blob);
            assert_int_equal(before->n + after->n, 120);
            assert_int_equal(atomic_load(&reads_n), after->n);
            for (int r = 0; r < after->n; r++)
                for (int b = 0; b < before->n; b++)
                    if (!strcmp(reads_seen[r], before->line[b]))
                        fail_msg("%s: cut %d: %s read again", text, cuts[c], reads_seen[r]);
            sl_free(before);
            sl_free(after);
        }
        check_every_cut(reg, text);
        sl_dataset_release(ds);
    }
    sl_registry_free(reg);
}

/* ---- files() --------------------------------------------------------------------------------- */

static void test_files_lists_sorted_paths(void **state)
{
    char glob[256];
    write_files(glob, sizeof glob);
    const char *patterns[] = {glob};
    sl_dataset *ds;
    char err[256];
    assert_int_equal(sl_dataset_file_list(&ds, patterns, 1, err, sizeof err), 0);
    assert_int_equal(sl_dataset_cardinality(ds), 3);
    char got[1024], expect[1024];
    run_all(ds, 1, got, sizeof got);
    snprintf(expect, sizeof expect, "%s/part-0.sluice %s/part-1.sluice %s/part-2.sluice",
             sl_test_dir, sl_test_dir, sl_test_dir);
    assert_string_equal(got, expect);
    sl_iter *it = open_at(ds, 1, NULL, 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), 0);
    assert_int_equal(e.count, 1);
    assert_string_equal(e.names[0], "path");
    assert_int_equal(e.tensors[0].dtype, SL_DTYPE_BYTES);
    sl_element_release(&e);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

static void test_files_pattern_without_match_fails_naming_it(void **state)
{
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nothing-*.sluice", sl_test_dir);
    const char *patterns[] = {missing};
    sl_dataset *ds;
    char err[512];
    assert_int_equal(sl_dataset_file_list(&ds, patterns, 1, err, sizeof err), -ENOENT);
    assert_null(ds);
    assert_non_null(strstr(err, missing));
    char text[512];
    snprintf(text, sizeof text, "files(\"%s\") | interleave(records($path))", missing);
    assert_int_equal(sl_pipeline_build(&ds, text, NULL, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "no file matches"));
}

/* The motivating pipeline: files shuffled, four files read at once, one record from each in
 * turn; every record appears exactly once and the text prints back as written. */
static void test_files_shuffle_interleave_records(void **state)
{
    char glob[256];
    write_files(glob, sizeof glob);
    sl_registry *reg = new_registry();
    char text[512], printed[512];
    snprintf(text, sizeof text,
             "files(\"%s\") | shuffle(16, seed=3) | interleave(records($path), cycle_length=4)",
             glob);
    sl_dataset *ds = build(reg, text);
    sl_dataset_print(ds, printed, sizeof printed);
    assert_string_equal(printed, text);
    stream *s = new_stream();
    sl_iter *it = open_at(ds, 2, NULL, 0);
    assert_int_equal(drain(it, s, -1), SL_EOF);
    sl_iter_close(it);
    assert_int_equal(s->n, 120);
    int seen[3][40] = {{0}};
    for (int i = 0; i < s->n; i++) {
        int f, r;
        assert_int_equal(sscanf(s->line[i], "f%d-r%d", &f, &r), 2);
        seen[f][r]++;
        /* three files in the cycle, one record each in turn: record i / 3 of some file */
        assert_int_equal(r, i / 3);
    }
    for (int f = 0; f < 3; f++)
        for (int r = 0; r < 40; r++)
            assert_int_equal(seen[f][r], 1);
    sl_free(s);
    sl_dataset_release(ds);
    sl_registry_free(reg);
}

/* ---- the placeholder in the text ------------------------------------------------------------ */

static void test_placeholder_parses_and_prints(void **state)
{
    const char *text = "files(\"a*\") | interleave(tfrecord($path) | map(f), cycle_length=2)";
    sl_ast *ast;
    char err[256];
    assert_int_equal(sl_pipeline_text_parse(text, strlen(text), &ast, err, sizeof err), 0);
    const sl_ast_pipeline *p = sl_ast_root(ast);
    const sl_ast_value *inner = &p->stages[1].args[0];
    assert_int_equal(inner->kind, SL_AST_PIPELINE);
    const sl_ast_value *ph = &inner->as.pipeline.stages[0].args[0];
    assert_int_equal(ph->kind, SL_AST_PLACEHOLDER);
    assert_string_equal(ph->as.placeholder, "path");
    assert_int_equal(ph->span.offset, 34);
    assert_int_equal(ph->span.length, 5);
    char printed[256];
    assert_int_equal(sl_ast_print(ast, printed, sizeof printed), (int)strlen(text));
    assert_string_equal(printed, text);
    sl_ast *again;
    assert_int_equal(sl_pipeline_text_parse(printed, strlen(printed), &again, err, sizeof err), 0);
    assert_true(sl_ast_equal(ast, again));
    sl_ast_free(again);
    /* a different name is a different tree */
    const char *other = "files(\"a*\") | interleave(tfrecord($pat) | map(f), cycle_length=2)";
    assert_int_equal(sl_pipeline_text_parse(other, strlen(other), &again, err, sizeof err), 0);
    assert_false(sl_ast_equal(ast, again));
    sl_ast_free(again);
    sl_ast_free(ast);
}

static void test_placeholder_syntax_errors(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"f($true)", "pipeline: position 4: keyword 'true' cannot name a placeholder"},
        {"f($ x)", "pipeline: position 3: expected a value, found '$'"},
        {"f($1)", "pipeline: position 3: expected a value, found '$'"},
        {"f($x | g)", "pipeline: position 3: expected a stage before '|', found a placeholder"},
        {"f(1 $x)", "pipeline: position 5: expected ',' or ')' after an argument of f, found "
                    "placeholder '$x'"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sl_ast *ast;
        char err[256];
        assert_int_equal(
            sl_pipeline_text_parse(cases[i].text, strlen(cases[i].text), &ast, err, sizeof err),
            SL_ERR_SYNTAX);
        assert_null(ast);
        assert_string_equal(err, cases[i].msg);
    }
}

static void test_placeholder_outside_interleave_is_a_type_error(void **state)
{
    sl_dataset *ds;
    char err[256];
    assert_int_equal(sl_pipeline_build(&ds, "range($value)", NULL, err, sizeof err), SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 7: range: stop: expected an integer, found "
                             "placeholder $value");
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void test_interleave_arguments_are_checked_when_building(void **state)
{
    static const struct {
        const char *text;
        int rc;
        const char *msg;
    } cases[] = {
        {"range(3) | interleave(batch(2))", SL_ERR_SYNTAX,
         "pipeline: position 23: interleave: the inner pipeline must start with a source"},
        {"range(3) | interleave(range($value) | nope)", SL_ERR_NOT_FOUND,
         "pipeline: position 39: interleave: no stage called \"nope\""},
        {"range(3) | interleave(range($value), cycle_length=0)", SL_ERR_INVAL,
         "pipeline: position 12: interleave: need cycle_length 1 to 1024, block_length >= 1 "
         "and parallel auto or 1 to 1024"},
        {"range(3) | interleave(3)", SL_ERR_TYPE,
         "pipeline: position 23: interleave: inner: expected a pipeline, found integer 3"},
        {"interleave(range($value))", SL_ERR_SYNTAX, NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sl_dataset *ds;
        char err[256];
        assert_int_equal(sl_pipeline_build(&ds, cases[i].text, NULL, err, sizeof err), cases[i].rc);
        assert_null(ds);
        if (cases[i].msg)
            assert_string_equal(err, cases[i].msg);
    }
}

static void test_missing_tensor_fails_naming_the_outer_element(void **state)
{
    sl_registry *reg = new_registry();
    sl_dataset *ds = build(reg, "range(3) | interleave(range($count), cycle_length=2)");
    sl_iter *it = open_at(ds, 1, NULL, 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_NOT_FOUND);
    assert_string_equal(sl_iter_errmsg(it),
                        "interleave(range($count), cycle_length=2): outer element 0: pipeline: "
                        "position 29: $count: the outer element has no tensor \"count\" (it has "
                        "value): not found");
    sl_iter_close(it);
    sl_dataset_release(ds);
    sl_registry_free(reg);
}

/* Under SL_ON_ERROR_SKIP an outer element whose inner dataset cannot be built is dropped and
 * counted; the others interleave as if it were not there. */
static int make_odd_only(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                         size_t errcap)
{
    const int64_t x = *(const int64_t *)sl_element_get(outer, "value")->data;
    if (x % 2 == 0) {
        snprintf(err, errcap, "%lld is even", (long long)x);
        return SL_ERR_INVAL;
    }
    return sl_dataset_range(inner, 10 * x, 10 * x + 2, 1);
}

static void test_skip_policy_drops_unbuildable_outer_elements(void **state)
{
    sl_dataset *r, *il;
    assert_int_equal(sl_dataset_range(&r, 0, 6, 1), 0);
    const sl_interleave_options o = {.cycle_length = 2};
    assert_int_equal(sl_dataset_interleave(&il, r, make_odd_only, NULL, "odd", &o), 0);
    sl_dataset_release(r);
    const sl_iter_options io = {.threads = 1, .on_error = SL_ON_ERROR_SKIP};
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, il, &io), 0);
    stream *s = new_stream();
    assert_int_equal(drain(it, s, -1), SL_EOF);
    assert_int_equal(sl_iter_skipped(it), 3);
    const char *expect[] = {"10", "30", "11", "31", "50", "51"};
    assert_int_equal(s->n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(s->line[i], expect[i]);
    sl_iter_close(it);
    /* the default policy stops at the first with the function's reason */
    it = open_at(il, 1, NULL, 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_INVAL);
    assert_non_null(strstr(sl_iter_errmsg(it), "outer element 0: 0 is even"));
    sl_iter_close(it);
    sl_free(s);
    sl_dataset_release(il);
}

/* ---- ordered=false, what cannot be saved, early close --------------------------------------- */

static void test_unordered_gives_the_same_elements_and_cannot_be_saved(void **state)
{
    sl_registry *reg = new_registry();
    sl_dataset *ds = build(reg, "range(6) | interleave(range($value, 60, 10) | map(slow), "
                                "cycle_length=3, parallel=3, ordered=false)");
    stream *s = new_stream();
    sl_iter *it = open_at(ds, 2, NULL, 0);
    assert_int_equal(drain(it, s, 1), 0);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_iter_save(it, &blob, &len), SL_ERR_NOT_CHECKPOINTABLE);
    assert_non_null(strstr(sl_iter_errmsg(it), "ordered=false"));
    assert_int_equal(drain(it, s, -1), SL_EOF);
    sl_iter_close(it);
    int seen[60] = {0};
    for (int i = 0; i < s->n; i++)
        seen[atoi(s->line[i])]++;
    for (int v = 0; v < 60; v++) /* inner(x) = x, x+10, ..., < 60: every value once */
        assert_int_equal(seen[v], v % 10 < 6);
    assert_int_equal(s->n, 36);
    sl_free(s);
    sl_dataset_release(ds);
    sl_registry_free(reg);
}

static int gen_three(void *user, uint64_t index, sl_element *out)
{
    if (index >= 3)
        return SL_EOF;
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = (int64_t)index;
    return sl_element_push(out, "value", &t);
}

static int make_generator(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                          size_t errcap)
{
    return sl_dataset_generator(inner, gen_three, NULL, "three");
}

/* An inner pipeline that cannot be checkpointed fails save, naming the generator when the
 * inner streams run on the caller's thread and the inner pipeline when readers own them. */
static void test_save_names_an_inner_pipeline_that_cannot(void **state)
{
    static const struct {
        int parallel;
        const char *names;
    } cases[] = {{1, "generator(three)"}, {2, "the inner pipeline of outer element 0"}};
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        sl_dataset *r, *il;
        assert_int_equal(sl_dataset_range(&r, 0, 4, 1), 0);
        const sl_interleave_options o = {.cycle_length = 2, .parallel = cases[i].parallel};
        assert_int_equal(sl_dataset_interleave(&il, r, make_generator, NULL, "gen", &o), 0);
        sl_dataset_release(r);
        sl_iter *it = open_at(il, 2, NULL, 0);
        stream *s = new_stream();
        assert_int_equal(drain(it, s, 1), 0);
        uint8_t *blob;
        size_t len;
        assert_int_equal(sl_iter_save(it, &blob, &len), SL_ERR_NOT_CHECKPOINTABLE);
        if (!strstr(sl_iter_errmsg(it), cases[i].names))
            fail_msg("\"%s\" does not name %s", sl_iter_errmsg(it), cases[i].names);
        assert_int_equal(drain(it, s, -1), SL_EOF); /* the failed save is not the stream's */
        assert_int_equal(s->n, 12);
        sl_iter_close(it);
        sl_free(s);
        sl_dataset_release(il);
    }
}

/* Closing at any point, with readers blocked on full rings or inside their streams, joins and
 * frees everything (the group's leak check and the sanitizers see the rest). */
static void test_close_mid_stream(void **state)
{
    sl_registry *reg = new_registry();
    sl_dataset *ds =
        build(reg, "range(20) | interleave(range($value, 400, 20) | map(slow), cycle_length=4, "
                   "block_length=3, parallel=4) | prefetch(2)");
    for (int k = 0; k < 40; k += 3) {
        sl_iter *it = open_at(ds, 1 + k % 3, NULL, 0);
        stream *s = new_stream();
        assert_int_equal(drain(it, s, k), 0);
        sl_iter_close(it);
        sl_free(s);
    }
    sl_dataset_release(ds);
    sl_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_of_the_tf_data_example),
        cmocka_unit_test(test_order_with_uneven_inner_streams),
        cmocka_unit_test(test_bad_options_are_refused_and_free_the_user_pointer),
        cmocka_unit_test(test_orders_from_text),
        cmocka_unit_test(test_parallel_output_is_identical),
        cmocka_unit_test(test_every_cut_equals_uninterrupted),
        cmocka_unit_test_setup_teardown(test_restore_reads_no_record_before_the_position,
                                        sl_test_dir_setup, sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_files_lists_sorted_paths, sl_test_dir_setup,
                                        sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_files_pattern_without_match_fails_naming_it,
                                        sl_test_dir_setup, sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_files_shuffle_interleave_records, sl_test_dir_setup,
                                        sl_test_dir_teardown),
        cmocka_unit_test(test_placeholder_parses_and_prints),
        cmocka_unit_test(test_placeholder_syntax_errors),
        cmocka_unit_test(test_placeholder_outside_interleave_is_a_type_error),
        cmocka_unit_test(test_interleave_arguments_are_checked_when_building),
        cmocka_unit_test(test_missing_tensor_fails_naming_the_outer_element),
        cmocka_unit_test(test_skip_policy_drops_unbuildable_outer_elements),
        cmocka_unit_test(test_unordered_gives_the_same_elements_and_cannot_be_saved),
        cmocka_unit_test(test_save_names_an_inner_pipeline_that_cannot),
        cmocka_unit_test(test_close_mid_stream),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
