/* Shared unit-test helpers; see testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sluice/io.h"

void sl_test_mkdtemp(char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, cap, "%s/sluice-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf))
        fail_msg("mkdtemp %s: %s", buf, strerror(errno));
}

void sl_test_rmtree(const char *path)
{
    if (strlen(path) < 6)
        return; /* refuse anything that could be / or similar */
    sl_test_system("rm -rf '%s'", path);
}

int sl_test_read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

int sl_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    const int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

int sl_test_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

const char *sl_test_python(void)
{
    const char *p = getenv("SL_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

const char *sl_test_data_dir(void)
{
    const char *p = getenv("SL_TEST_DATA");
    if (!p || !*p)
        fail_msg("SL_TEST_DATA is not set: run the tests through ctest");
    return p;
}

const char *sl_test_source_dir(void)
{
    const char *p = getenv("SL_TEST_SOURCE");
    if (!p || !*p)
        fail_msg("SL_TEST_SOURCE is not set: run the tests through ctest");
    return p;
}

static int64_t leak_baseline;

int sl_test_leak_setup(void **state)
{
    leak_baseline = sl_alloc_live_bytes();
    return 0;
}

int sl_test_leak_teardown(void **state)
{
    const int64_t now = sl_alloc_live_bytes();
    if (now != leak_baseline) {
        fprintf(stderr, "leak: %lld bytes still allocated (%lld blocks live)\n",
                (long long)(now - leak_baseline), (long long)sl_alloc_live_blocks());
        return -1;
    }
    return 0;
}

char sl_test_dir[200];

int sl_test_dir_setup(void **state)
{
    sl_test_mkdtemp(sl_test_dir, sizeof sl_test_dir);
    return sl_test_leak_setup(state);
}

int sl_test_dir_teardown(void **state)
{
    sl_test_rmtree(sl_test_dir);
    return sl_test_leak_teardown(state);
}

size_t sl_test_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

void sl_test_fresh_subdir(char *buf, size_t cap, const char *name)
{
    const int n = snprintf(buf, cap, "%s/%s", sl_test_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
    sl_test_rmtree(buf);
    assert_int_equal(mkdir(buf, 0777), 0);
}

/* ---- streams as text ---------------------------------------------------------------------- */

sl_test_stream *sl_test_stream_new(void)
{
    sl_test_stream *s = sl_calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

void sl_test_render_element(const sl_element *e, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < e->count && n < cap; k++) {
        const sl_tensor *t = &e->tensors[k];
        if (k)
            n += (size_t)snprintf(buf + n, cap - n, ";");
        if (t->dtype == SL_DTYPE_BYTES) {
            n += (size_t)snprintf(buf + n, cap - n, "%.*s", (int)sl_tensor_nbytes(t),
                                  (const char *)t->data);
            continue;
        }
        for (int64_t i = 0; i < sl_tensor_numel(t) && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "",
                                  (long long)((const int64_t *)t->data)[i]);
    }
}

int sl_test_drain(sl_iter *it, sl_test_stream *s, int limit)
{
    for (int taken = 0; limit < 0 || taken < limit; taken++) {
        sl_element e;
        const int rc = sl_iter_next(it, &e);
        if (rc)
            return rc;
        assert_true(s->n < SL_TEST_STREAM_MAX);
        sl_test_render_element(&e, s->line[s->n++], SL_TEST_STREAM_LINE);
        sl_element_release(&e);
    }
    return 0;
}

int sl_test_map_factory(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                        size_t errcap)
{
    const int rc = sl_ast_call_check(call, 0, NULL, 0, err, errcap);
    if (rc == 0)
        out->fn = (sl_map_fn)user;
    return rc;
}

sl_dataset *sl_test_build(const sl_registry *reg, const char *text)
{
    sl_dataset *ds;
    char err[512];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        fail_msg("%s: %s", text, err);
    return ds;
}

sl_iter *sl_test_iter_open(sl_dataset *ds, int threads, uint64_t seed, const uint8_t *blob,
                           size_t len)
{
    const sl_iter_options o = {.threads = threads, .seed = seed};
    sl_iter *it;
    const int rc = blob ? sl_iter_restore(&it, ds, &o, blob, len) : sl_iter_open(&it, ds, &o);
    if (rc)
        fail_msg("%s: %s", blob ? "restore" : "open", sl_iter_errmsg(it));
    return it;
}

void sl_test_check_every_cut(sl_dataset *ds, const char *label, uint64_t seed)
{
    sl_test_stream *whole = sl_test_stream_new(), *cut = sl_test_stream_new();
    sl_iter *it = sl_test_iter_open(ds, 2, seed, NULL, 0);
    assert_int_equal(sl_test_drain(it, whole, -1), SL_EOF);
    sl_iter_close(it);
    static const int threads[] = {1, 2, 8};
    for (int k = 0; k <= whole->n; k++) {
        cut->n = 0;
        it = sl_test_iter_open(ds, threads[k % 3], seed, NULL, 0);
        assert_int_equal(sl_test_drain(it, cut, k), 0);
        uint8_t *blob;
        size_t len;
        if (sl_iter_save(it, &blob, &len))
            fail_msg("%s: save after %d: %s", label, k, sl_iter_errmsg(it));
        sl_iter_close(it);
        it = sl_test_iter_open(ds, threads[(k + 1) % 3], seed, blob, len);
        const int rc = sl_test_drain(it, cut, -1);
        if (rc != SL_EOF)
            fail_msg("%s: after a restore at %d: %s", label, k, sl_iter_errmsg(it));
        sl_iter_close(it);
        sl_free(blob);
        if (cut->n != whole->n)
            fail_msg("%s: cut after %d: %d elements, uninterrupted %d", label, k, cut->n, whole->n);
        for (int i = 0; i < whole->n; i++)
            if (strcmp(cut->line[i], whole->line[i]))
                fail_msg("%s: cut after %d: element %d is \"%s\", uninterrupted \"%s\"", label, k,
                         i, cut->line[i], whole->line[i]);
    }
    sl_free(whole);
    sl_free(cut);
}

int sl_test_io_backends(const char **names)
{
    int n = 0;
    names[n++] = "pread";
    sl_io *io;
    const sl_io_options o = {.backend = SL_IO_URING};
    if (sl_io_open(&io, &o) == 0)
        names[n++] = "io_uring";
    else
        print_message("io_uring unavailable here (%s): pread only\n", sl_io_errmsg(io));
    sl_io_close(io);
    return n;
}
