/* map -> batch fusion: a batch reading straight from an ordered map has the map's outputs
 * written into the rows of the batch being assembled. Checked against the same pipeline with
 * fusion switched off (sl__map_batch_fusion = 0; same text, so the same checkpoints): identical
 * streams for 1, 2 and 8 threads, sequential, parallel and auto maps, with and without
 * drop_remainder, with skipped elements (no hole), the same error for a batch whose layouts
 * differ, blobs that restore at every cut (also with skips) and across fused/unfused, and the
 * same pixels from the fused image op. The outputs really are written in place: the row a
 * function got from sl_map_ctx_alloc is its row in the batch handed out, and in map(f, g) only
 * g, the last function, gets one. */
#include "testutil.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_internal.h"
#include "engine_internal.h"
#include "sluice/ops_registry.h"
#include "sluice/pipeline_build.h"
#include "sluice/record.h"

enum { SEED = 7, MAX_VALUE = 1024 };

/* Where rows() wrote element v's "x" (its pointer from sl_map_ctx_alloc). */
static void *written_at[MAX_VALUE];

static int64_t value_of(const sl_element *e)
{
    return *(const int64_t *)sl_element_get(e, "value")->data;
}

/* rows: sleeps a seeded random 0-100 us (completion order differs from input order), then
 * outputs "x" int64[3] = {v, 2v, draw} through sl_map_ctx_alloc, "label" int64 = v (small:
 * batch copies it), and "pad" int64[PAD] = v + j, allocated plainly and large enough that the
 * worker copies it into its row. Fails for v % 9 == 4 when opts_now.fail; v == 10 gives
 * int64[4] when opts_now.odd_shape. */
enum { PAD = SL__DEST_PLACE_MIN / 8 };
typedef struct rows_opts {
    int fail, odd_shape;
} rows_opts;
static rows_opts opts_now;

static int run_rows(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                    size_t errcap)
{
    sl_rng r = c->rng;
    const uint64_t draw = sl_rng_below(&r, 1000);
    const struct timespec ts = {0, (long)(sl_rng_below(&r, 100) * 1000)};
    nanosleep(&ts, NULL);
    const int64_t v = value_of(in);
    if (opts_now.fail && v % 9 == 4) {
        snprintf(err, errcap, "value %lld refused", (long long)v);
        return SL_ERR_INVAL;
    }
    const int64_t n = opts_now.odd_shape && v == 10 ? 4 : 3;
    sl_tensor x, label;
    SL_TRY(sl_map_ctx_alloc(c, "x", SL_DTYPE_I64, 1, &n, &x));
    int64_t *p = x.data;
    for (int64_t i = 0; i < n; i++)
        p[i] = i == 0 ? v : i == 1 ? 2 * v : (int64_t)draw;
    if (v >= 0 && v < MAX_VALUE)
        written_at[v] = x.data;
    SL_TRY(sl_tensor_alloc(&label, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)label.data = v;
    sl_tensor pad;
    const int64_t npad = PAD;
    SL_TRY(sl_tensor_alloc(&pad, SL_DTYPE_I64, 1, &npad));
    for (int64_t j = 0; j < npad; j++)
        ((int64_t *)pad.data)[j] = v + j;
    sl_element_push(out, "x", &x);
    sl_element_push(out, "label", &label);
    return sl_element_push(out, "pad", &pad);
}

/* bump: "x" + 1 into a tensor from sl_map_ctx_alloc (recorded in bumped_at), every other
 * tensor moved through: the second function of map(rows, bump). */
static void *bumped_at[MAX_VALUE];

static int run_bump(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                    size_t errcap)
{
    const int k = sl_element_find(in, "x");
    const int64_t v = *(const int64_t *)sl_element_get(in, "label")->data;
    sl_tensor x;
    SL_TRY(sl_map_ctx_alloc(c, "x", SL_DTYPE_I64, 1, in->tensors[k].shape, &x));
    for (int64_t i = 0; i < x.shape[0]; i++)
        ((int64_t *)x.data)[i] = ((const int64_t *)in->tensors[k].data)[i] + 1;
    if (v >= 0 && v < MAX_VALUE)
        bumped_at[v] = x.data;
    *out = *in;
    memset(in, 0, sizeof *in);
    sl_tensor_release(&out->tensors[k]);
    out->tensors[k] = x;
    return 0;
}

static sl_dataset *build(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static sl_dataset *build(const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sl_registry *r;
    assert_int_equal(sl_registry_create(&r), 0);
    assert_int_equal(sl_registry_add(r, "rows", sl_test_map_factory, (void *)run_rows, "rows"), 0);
    assert_int_equal(sl_registry_add(r, "bump", sl_test_map_factory, (void *)run_bump, "bump"), 0);
    sl_dataset *ds = sl_test_build(r, text);
    sl_registry_free(r);
    return ds;
}

static void set_fusion(int on)
{
    atomic_store(&sl__map_batch_fusion, on);
}

/* The whole stream (every element's names, shapes and bytes, and its labels), the code that
 * ended it, its message and the skip count. */
typedef struct outcome {
    char *bytes;
    size_t len;
    int n;
    int64_t labels[MAX_VALUE];
    int nlabels;
    int rc;
    char msg[512];
    uint64_t skipped;
} outcome;

/* Appends up to `limit` elements of it (all when < 0) to o; o->rc gets what ended it (0: the
 * limit). */
static void drain(sl_iter *it, outcome *o, int limit)
{
    sl_element e;
    for (int taken = 0; limit < 0 || taken < limit; taken++) {
        if ((o->rc = sl_iter_next(it, &e)) != 0)
            return;
        for (int k = 0; k < e.count; k++) {
            const sl_tensor *t = &e.tensors[k];
            const size_t nb = sl_tensor_nbytes(t), nl = strlen(e.names[k]) + 1;
            o->bytes = realloc(o->bytes, o->len + nl + sizeof t->shape + nb);
            memcpy(o->bytes + o->len, e.names[k], nl);
            memcpy(o->bytes + o->len + nl, t->shape, sizeof t->shape);
            memcpy(o->bytes + o->len + nl + sizeof t->shape, t->data, nb);
            o->len += nl + sizeof t->shape + nb;
        }
        const sl_tensor *label = sl_element_get(&e, "label");
        for (int64_t i = 0; i < label->shape[0] && o->nlabels < MAX_VALUE; i++)
            o->labels[o->nlabels++] = ((const int64_t *)label->data)[i];
        o->n++;
        sl_element_release(&e);
    }
    o->rc = 0;
}

static outcome run(sl_dataset *ds, int threads, sl_error_policy policy, int fused)
{
    set_fusion(fused);
    outcome o = {0};
    const sl_iter_options io = {.threads = threads, .seed = SEED, .on_error = policy};
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, &io), 0);
    drain(it, &o, -1);
    snprintf(o.msg, sizeof o.msg, "%s", o.rc == SL_EOF ? "" : sl_iter_errmsg(it));
    o.skipped = sl_iter_skipped(it);
    sl_iter_close(it);
    set_fusion(1);
    return o;
}

static void assert_same(const outcome *a, const outcome *b, const char *label)
{
    if (a->rc != b->rc || strcmp(a->msg, b->msg))
        fail_msg("%s: fused ended %d \"%s\", unfused %d \"%s\"", label, a->rc, a->msg, b->rc,
                 b->msg);
    assert_int_equal(a->skipped, b->skipped);
    if (a->n != b->n || a->len != b->len)
        fail_msg("%s: fused gave %d elements (%zu bytes), unfused %d (%zu)", label, a->n, a->len,
                 b->n, b->len);
    if (a->len && memcmp(a->bytes, b->bytes, a->len))
        fail_msg("%s: the streams' bytes differ", label);
}

static void compare_fused_unfused(const char *text, sl_error_policy policy)
{
    static const int threads[] = {1, 2, 8};
    sl_dataset *ds = build("%s", text);
    for (size_t t = 0; t < 3; t++) {
        outcome *f = calloc(1, sizeof *f), *u = calloc(1, sizeof *u);
        *f = run(ds, threads[t], policy, 1);
        *u = run(ds, threads[t], policy, 0);
        char label[600];
        snprintf(label, sizeof label, "%s on %d threads", text, threads[t]);
        assert_same(f, u, label);
        free(f->bytes);
        free(u->bytes);
        free(f);
        free(u);
    }
    sl_dataset_release(ds);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_fused_stream_equals_unfused(void **state)
{
    (void)state;
    opts_now = (rows_opts){0};
    static const char *const maps[] = {"rows", "rows, parallel=3", "rows, parallel=8",
                                       "rows, parallel=auto"};
    static const char *const batches[] = {"batch(7)", "batch(7, drop_remainder=true)", "batch(1)",
                                          "batch(100)"};
    for (size_t m = 0; m < 4; m++)
        for (size_t b = 0; b < 4; b++) {
            char text[256];
            snprintf(text, sizeof text, "range(0, 61) | map(%s) | %s", maps[m], batches[b]);
            compare_fused_unfused(text, SL_ON_ERROR_FAIL);
        }
}

/* Every element's "x" sits, in the batch handed out, where the function wrote it. */
static void test_outputs_are_written_in_their_batch_row(void **state)
{
    (void)state;
    opts_now = (rows_opts){0};
    static const char *const texts[] = {"range(0, 60) | map(rows, parallel=4) | batch(8)",
                                        "range(0, 60) | map(rows) | batch(8)"};
    for (size_t k = 0; k < 2; k++) {
        sl_dataset *ds = build("%s", texts[k]);
        memset(written_at, 0, sizeof written_at);
        sl_iter *it = sl_test_iter_open(ds, 2, SEED, NULL, 0);
        sl_element e;
        int64_t seen = 0;
        while (sl_iter_next(it, &e) == 0) {
            const sl_tensor *x = sl_element_get(&e, "x"), *label = sl_element_get(&e, "label");
            assert_int_equal(x->rank, 2);
            for (int64_t row = 0; row < x->shape[0]; row++) {
                const int64_t v = ((const int64_t *)label->data)[row];
                assert_int_equal(v, seen + row);
                assert_ptr_equal((const int64_t *)x->data + row * 3, written_at[v]);
            }
            seen += x->shape[0];
            sl_element_release(&e);
        }
        assert_int_equal(seen, 60); /* the short last batch (4 rows) included */
        sl_iter_close(it);
        sl_dataset_release(ds);
    }
}

/* In map(rows, bump) only bump, the last function, writes into the batch: rows' output is its
 * input, not the map's. */
static void test_only_the_last_function_gets_the_row(void **state)
{
    (void)state;
    opts_now = (rows_opts){0};
    compare_fused_unfused("range(0, 60) | map(rows, bump, parallel=4) | batch(8)",
                          SL_ON_ERROR_FAIL);
    sl_dataset *ds = build("range(0, 60) | map(rows, bump, parallel=4) | batch(8)");
    sl_iter *it = sl_test_iter_open(ds, 2, SEED, NULL, 0);
    sl_element e;
    int64_t seen = 0;
    while (sl_iter_next(it, &e) == 0) {
        const sl_tensor *x = sl_element_get(&e, "x");
        for (int64_t row = 0; row < x->shape[0]; row++) {
            const int64_t *p = (const int64_t *)x->data + row * 3;
            assert_int_equal(p[0], seen + row + 1);
            assert_ptr_equal(p, bumped_at[seen + row]);
            assert_ptr_not_equal(p, written_at[seen + row]);
        }
        seen += x->shape[0];
        sl_element_release(&e);
    }
    assert_int_equal(seen, 60);
    sl_iter_close(it);
    sl_dataset_release(ds);
}

/* Skipped elements leave no hole: batches are the surviving elements, consecutive. */
static void test_skipped_elements_leave_no_hole(void **state)
{
    (void)state;
    opts_now = (rows_opts){.fail = 1};
    compare_fused_unfused("range(0, 80) | map(rows, parallel=4) | batch(6)", SL_ON_ERROR_SKIP);
    compare_fused_unfused("range(0, 80) | map(rows) | batch(6, drop_remainder=true)",
                          SL_ON_ERROR_SKIP);
    sl_dataset *ds = build("range(0, 80) | map(rows, parallel=4) | batch(6)");
    outcome *f = calloc(1, sizeof *f);
    *f = run(ds, 2, SL_ON_ERROR_SKIP, 1);
    assert_int_equal(f->rc, SL_EOF);
    assert_int_equal(f->skipped, 9); /* 4, 13, ..., 76 */
    assert_int_equal(f->nlabels, 71);
    assert_int_equal(f->n, 12); /* 11 full batches and one of 5 */
    int64_t want = 0;
    for (int i = 0; i < f->nlabels; i++, want++) {
        if (want % 9 == 4)
            want++;
        assert_int_equal(f->labels[i], want);
    }
    free(f->bytes);
    free(f);
    opts_now = (rows_opts){0};
    sl_dataset_release(ds);
}

/* A batch whose elements disagree fails exactly as the unfused batch does. */
static void test_layout_mismatch_fails_as_unfused(void **state)
{
    (void)state;
    opts_now = (rows_opts){.odd_shape = 1};
    compare_fused_unfused("range(0, 30) | map(rows, parallel=4) | batch(8)", SL_ON_ERROR_FAIL);
    sl_dataset *ds = build("range(0, 30) | map(rows, parallel=4) | batch(8)");
    outcome *f = calloc(1, sizeof *f);
    *f = run(ds, 2, SL_ON_ERROR_FAIL, 1);
    assert_int_equal(f->rc, SL_ERR_SCHEMA);
    assert_non_null(strstr(f->msg, "element 10: tensor \"x\" is int64[4]"));
    assert_int_equal(f->n, 1);
    free(f->bytes);
    free(f);
    opts_now = (rows_opts){0};
    sl_dataset_release(ds);
}

static void test_every_cut_restores(void **state)
{
    (void)state;
    opts_now = (rows_opts){0};
    static const char *const texts[] = {
        "range(0, 40) | map(rows, parallel=4) | batch(6)",
        "range(0, 40) | map(rows) | batch(6, drop_remainder=true)",
        "range(0, 20) | map(rows, parallel=2) | batch(4) | repeat(2)",
    };
    for (size_t k = 0; k < 3; k++) {
        sl_dataset *ds = build("%s", texts[k]);
        sl_test_check_every_cut(ds, texts[k], SEED);
        sl_dataset_release(ds);
    }
}

/* With skipped elements too, a save after any number of batches restores (on another thread
 * count) to exactly the rest of the uninterrupted stream. */
static void test_every_cut_restores_with_skips(void **state)
{
    (void)state;
    opts_now = (rows_opts){.fail = 1};
    static const int threads[] = {1, 2, 8};
    sl_dataset *ds = build("range(0, 70) | map(rows, parallel=4) | batch(6)");
    outcome *whole = calloc(1, sizeof *whole), *cut = calloc(1, sizeof *cut);
    *whole = run(ds, 2, SL_ON_ERROR_SKIP, 1);
    assert_int_equal(whole->rc, SL_EOF);
    for (int k = 0; k <= whole->n; k++) {
        free(cut->bytes);
        memset(cut, 0, sizeof *cut);
        sl_iter_options io = {
            .threads = threads[k % 3], .seed = SEED, .on_error = SL_ON_ERROR_SKIP};
        sl_iter *it;
        assert_int_equal(sl_iter_open(&it, ds, &io), 0);
        drain(it, cut, k);
        assert_int_equal(cut->rc, 0);
        uint8_t *blob;
        size_t len;
        assert_int_equal(sl_iter_save(it, &blob, &len), 0);
        sl_iter_close(it);
        io.threads = threads[(k + 1) % 3];
        assert_int_equal(sl_iter_restore(&it, ds, &io, blob, len), 0);
        drain(it, cut, -1);
        assert_int_equal(cut->rc, SL_EOF);
        sl_iter_close(it);
        sl_free(blob);
        if (cut->len != whole->len || memcmp(cut->bytes, whole->bytes, whole->len))
            fail_msg("cut after %d batches: the rest differs from the uninterrupted stream", k);
    }
    free(cut->bytes);
    free(whole->bytes);
    free(cut);
    free(whole);
    opts_now = (rows_opts){0};
    sl_dataset_release(ds);
}

/* A blob saved fused restores unfused and the other way round, with the same rest. */
static void test_blobs_restore_across_fusion(void **state)
{
    (void)state;
    opts_now = (rows_opts){0};
    sl_dataset *ds = build("range(0, 50) | map(rows, parallel=4) | batch(6)");
    sl_test_stream *whole = sl_test_stream_new();
    sl_iter *it0 = sl_test_iter_open(ds, 2, SEED, NULL, 0);
    assert_int_equal(sl_test_drain(it0, whole, -1), SL_EOF);
    sl_iter_close(it0);
    for (int save_fused = 0; save_fused < 2; save_fused++)
        for (int cut = 0; cut <= whole->n; cut++) {
            sl_test_stream *s = sl_test_stream_new();
            set_fusion(save_fused);
            sl_iter *it = sl_test_iter_open(ds, 2, SEED, NULL, 0);
            assert_int_equal(sl_test_drain(it, s, cut), 0);
            uint8_t *blob;
            size_t len;
            assert_int_equal(sl_iter_save(it, &blob, &len), 0);
            sl_iter_close(it);
            set_fusion(!save_fused);
            it = sl_test_iter_open(ds, 8, SEED, blob, len);
            assert_int_equal(sl_test_drain(it, s, -1), SL_EOF);
            sl_iter_close(it);
            set_fusion(1);
            sl_free(blob);
            assert_int_equal(s->n, whole->n);
            for (int i = 0; i < s->n; i++)
                assert_string_equal(s->line[i], whole->line[i]);
            sl_free(s);
        }
    sl_free(whole);
    sl_dataset_release(ds);
}

/* ---- the fused image op ---------------------------------------------------------------------- */

static const char *const image_files[] = {"rgb420.jpg", "rgb444.jpg",      "gray.jpg",
                                          "rgb8.png",   "progressive.jpg", "corrupt/cmyk.jpg"};

/* Every tensor of every element, as bytes, for equality. */
static char *image_stream(const char *text, int threads, int fused, size_t *len)
{
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_ops_register(reg), 0);
    sl_dataset *ds = sl_test_build(reg, text);
    sl_registry_free(reg);
    set_fusion(fused);
    sl_iter *it = sl_test_iter_open(ds, threads, SEED, NULL, 0);
    char *buf = NULL;
    size_t n = 0;
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0) {
        for (int k = 0; k < e.count; k++) {
            const size_t nb = sl_tensor_nbytes(&e.tensors[k]);
            buf = realloc(buf, n + sizeof e.tensors[k].shape + nb);
            memcpy(buf + n, e.tensors[k].shape, sizeof e.tensors[k].shape);
            memcpy(buf + n + sizeof e.tensors[k].shape, e.tensors[k].data, nb);
            n += sizeof e.tensors[k].shape + nb;
        }
        sl_element_release(&e);
    }
    if (rc != SL_EOF)
        fail_msg("%s: %s", text, sl_iter_errmsg(it));
    sl_iter_close(it);
    set_fusion(1);
    sl_dataset_release(ds);
    *len = n;
    return buf;
}

static void test_fused_image_op_same_pixels(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/images.sluice", sl_test_dir);
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, path, NULL), 0);
    for (size_t i = 0; i < sizeof image_files / sizeof image_files[0]; i++) {
        char file[512];
        snprintf(file, sizeof file, "%s/images/%s", sl_test_data_dir(), image_files[i]);
        uint8_t *data;
        size_t len;
        assert_int_equal(sl_test_read_file(file, &data, &len), 0);
        assert_int_equal(sl_record_writer_write(w, data, len), 0);
        free(data);
    }
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
    static const char *const maps[] = {
        "map(decode_jpeg, random_resized_crop(48), flip, normalize(imagenet), parallel=3)",
        "map(decode_jpeg, random_resized_crop([40, 56]), normalize(none, dtype=float16, "
        "layout=hwc))",
        "map(decode_jpeg(dct_scaling=false), random_resized_crop(32), flip, parallel=2)",
    };
    for (size_t m = 0; m < 3; m++)
        for (int threads = 1; threads <= 8; threads *= 2) {
            char text[1024];
            snprintf(text, sizeof text, "records(\"%s\") | repeat(3) | %s | batch(4)", path,
                     maps[m]);
            size_t la, lb;
            char *a = image_stream(text, threads, 1, &la), *b = image_stream(text, threads, 0, &lb);
            assert_true(la > 0);
            assert_int_equal(la, lb);
            if (memcmp(a, b, la))
                fail_msg("%s on %d threads: pixels differ fused vs unfused", text, threads);
            free(a);
            free(b);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_stream_equals_unfused),
        cmocka_unit_test(test_outputs_are_written_in_their_batch_row),
        cmocka_unit_test(test_only_the_last_function_gets_the_row),
        cmocka_unit_test(test_skipped_elements_leave_no_hole),
        cmocka_unit_test(test_layout_mismatch_fails_as_unfused),
        cmocka_unit_test(test_every_cut_restores),
        cmocka_unit_test(test_every_cut_restores_with_skips),
        cmocka_unit_test(test_blobs_restore_across_fusion),
        cmocka_unit_test_setup_teardown(test_fused_image_op_same_pixels, sl_test_dir_setup,
                                        sl_test_dir_teardown),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
