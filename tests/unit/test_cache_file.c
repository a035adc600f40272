/* cache("path"): the first complete pass is written to a file and every later pass, in this
 * iterator or another, reads the file instead of the input; a pass that stops early leaves no
 * file; checkpoints restore both while filling and while replaying; a damaged cache file is an
 * error naming the file and the record. */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "sluice/pipeline_build.h"
#include "sluice/record.h"

static _Atomic int64_t reads;

/* count: identity that counts the elements read from the input. */
static int run_count(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    atomic_fetch_add(&reads, 1);
    sl_element_share(out, in);
    sl_element_release(in);
    return 0;
}

static int make_count(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                      size_t errcap)
{
    out->fn = run_count;
    return 0;
}

static sl_dataset *build(const char *fmt, const char *path)
{
    char text[600];
    snprintf(text, sizeof text, fmt, path);
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_registry_add(reg, "count", make_count, NULL, "count"), 0);
    sl_dataset *ds;
    char err[256];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        fail_msg("%s: %s", text, err);
    sl_registry_free(reg);
    return ds;
}

/* Reads the "value" of up to `limit` elements (all when < 0) into v; returns the count. */
static int drain(sl_iter *it, int64_t *v, int limit, int *end)
{
    int n = 0;
    sl_element e;
    while (limit < 0 || n < limit) {
        const int rc = sl_iter_next(it, &e);
        if (rc) {
            *end = rc;
            return n;
        }
        v[n++] = *(const int64_t *)sl_element_get(&e, "value")->data;
        sl_element_release(&e);
    }
    *end = 0;
    return n;
}

static void cache_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/cache.sluice", sl_test_dir);
}

static void test_first_pass_fills_later_passes_read_the_file(void **state)
{
    char path[300];
    cache_path(path, sizeof path);
    sl_dataset *ds =
        build("range(50) | shuffle(7, seed=2) | map(count) | cache(\"%s\") | repeat(3)", path);
    atomic_store(&reads, 0);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    int64_t v[200];
    int end;
    assert_int_equal(drain(it, v, -1, &end), 150);
    assert_int_equal(end, SL_EOF);
    sl_iter_close(it);
    assert_int_equal(atomic_load(&reads), 50); /* the input was read once */
    for (int i = 0; i < 50; i++)               /* later epochs repeat the cached order */
        assert_true(v[i] == v[50 + i] && v[i] == v[100 + i]);
    assert_int_equal(access(path, R_OK), 0);

    /* another iterator (another run) reads the file, never the input */
    atomic_store(&reads, 0);
    int64_t w[200];
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    assert_int_equal(drain(it, w, -1, &end), 150);
    sl_iter_close(it);
    assert_int_equal(atomic_load(&reads), 0);
    assert_memory_equal(v, w, sizeof(int64_t) * 150);
    sl_dataset_release(ds);
}

static void test_an_early_stop_leaves_no_file(void **state)
{
    char path[300];
    cache_path(path, sizeof path);
    sl_dataset *ds = build("range(50) | cache(\"%s\") | take(10)", path);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    int64_t v[20];
    int end;
    assert_int_equal(drain(it, v, -1, &end), 10);
    sl_iter_close(it);
    assert_int_equal(sl_test_dir_entries(sl_test_dir), 0); /* no file, no temp file */
    sl_dataset_release(ds);
}

/* Save after every k while filling (the file is removed first, so the run fills it) and while
 * replaying (the file exists): each restore continues the uninterrupted stream. */
static void test_checkpoints_while_filling_and_replaying(void **state)
{
    char path[300];
    cache_path(path, sizeof path);
    sl_dataset *ds = build("range(12) | shuffle(5, seed=1) | cache(\"%s\") | repeat(3)", path);
    sl_iter *it;
    int64_t whole[64], got[64];
    int end;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    const int n = drain(it, whole, -1, &end);
    assert_int_equal(n, 36);
    sl_iter_close(it);
    for (int replaying = 0; replaying < 2; replaying++) {
        for (int k = 0; k <= n; k++) {
            if (!replaying)
                unlink(path);
            assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
            int m = drain(it, got, k, &end);
            uint8_t *blob;
            size_t len;
            assert_int_equal(sl_iter_save(it, &blob, &len), 0);
            sl_iter_close(it);
            if (!replaying)
                unlink(path); /* a restarted job may find no file: it must not need one */
            assert_int_equal(sl_iter_restore(&it, ds, NULL, blob, len), 0);
            m += drain(it, got + m, -1, &end);
            assert_int_equal(end, SL_EOF);
            sl_iter_close(it);
            sl_free(blob);
            if (m != n || memcmp(got, whole, sizeof(int64_t) * (size_t)n))
                fail_msg("%s, cut after %d: stream differs", replaying ? "replaying" : "filling",
                         k);
        }
    }
    sl_dataset_release(ds);
}

static void test_a_damaged_cache_names_file_and_record(void **state)
{
    char path[300];
    cache_path(path, sizeof path);
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, path, NULL), 0);
    assert_int_equal(sl_record_writer_write(w, "\x01\x05value", 7), 0); /* cut short */
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
    sl_dataset *ds = build("range(5) | cache(\"%s\")", path);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_CORRUPT);
    char want[400];
    snprintf(want, sizeof want, "cache(\"%s\"): %s: record 0 is not a cached element", path, path);
    if (!strstr(sl_iter_errmsg(it), want))
        fail_msg("message: %s", sl_iter_errmsg(it));
    sl_iter_close(it);
    sl_dataset_release(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_pass_fills_later_passes_read_the_file,
                                        sl_test_dir_setup, sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_an_early_stop_leaves_no_file, sl_test_dir_setup,
                                        sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_while_filling_and_replaying,
                                        sl_test_dir_setup, sl_test_dir_teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_cache_names_file_and_record,
                                        sl_test_dir_setup, sl_test_dir_teardown),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
