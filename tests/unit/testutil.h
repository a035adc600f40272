/*
 * Helpers shared by the unit tests: scratch directories, whole-file I/O, running Debian's
 * Python, and the allocation-leak check every test group ends with.
 */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "sluice/alloc.h"

/* A fresh directory under $TMPDIR (or /tmp); the path is written into buf. */
void sl_test_mkdtemp(char *buf, size_t cap);
/* rm -rf path. */
void sl_test_rmtree(const char *path);
/* Whole file into a malloc'd buffer (plain malloc, free with free()). Returns 0 or -errno. */
int sl_test_read_file(const char *path, uint8_t **data, size_t *len);
int sl_test_write_file(const char *path, const void *data, size_t len);
/* Runs `sh -c cmd` (printf-style); returns the exit status, or -1 when it did not exit. */
int sl_test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debian's interpreter for tests that use Debian's Python packages. */
const char *sl_test_python(void);
/* An input directory: $SL_TEST_DATA (tests/data in the source tree). */
const char *sl_test_data_dir(void);
/* The repository root: $SL_TEST_SOURCE. */
const char *sl_test_source_dir(void);

/* A scratch directory for a test group, made by sl_test_dir_setup and removed (with
 * everything in it) by sl_test_dir_teardown; the pair also does the leak check below. */
extern char sl_test_dir[200];
int sl_test_dir_setup(void **state);
int sl_test_dir_teardown(void **state);

/* Entries of a directory, "." and ".." not counted. */
size_t sl_test_dir_entries(const char *dir);
/* sl_test_dir/name, made empty (removed first if it exists); the path goes to buf. */
void sl_test_fresh_subdir(char *buf, size_t cap, const char *name);

/* cmocka group setup/teardown pair that fails the group when sluice allocations leak. */
int sl_test_leak_setup(void **state);
int sl_test_leak_teardown(void **state);

/* ---- streams as text (engine tests comparing runs) ---------------------------------------- */

#include "sluice/pipeline.h"
#include "sluice/pipeline_build.h"

enum { SL_TEST_STREAM_MAX = 600, SL_TEST_STREAM_LINE = 160 };

typedef struct sl_test_stream {
    int n;
    char line[SL_TEST_STREAM_MAX][SL_TEST_STREAM_LINE];
} sl_test_stream;

/* A zeroed stream (sl_free it). */
sl_test_stream *sl_test_stream_new(void);
/* One element as text: "v" for an int64 scalar, "v,v,v" for a tensor, the bytes of a byte
 * string; tensors joined by ';'. */
void sl_test_render_element(const sl_element *e, char *buf, size_t cap);
/* Appends up to `limit` elements (all when < 0); returns what ended it (0: the limit). */
int sl_test_drain(sl_iter *it, sl_test_stream *s, int limit);
/* A map-function factory for test registries: takes no arguments; its user pointer is the
 * sl_map_fn to run. */
int sl_test_map_factory(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                        size_t errcap);
/* Builds pipeline text with reg, failing the test with the parser's message otherwise. */
sl_dataset *sl_test_build(const sl_registry *reg, const char *text);
/* Opens (blob NULL) or restores an iterator with the given threads and seed; fails the test
 * with the iterator's message otherwise. */
sl_iter *sl_test_iter_open(sl_dataset *ds, int threads, uint64_t seed, const uint8_t *blob,
                           size_t len);
/* The sl_io backends this machine can run, by SLUICE_IO name, into names (room for 2): pread
 * always, io_uring where the kernel allows it (else a message says why). Returns how many. */
int sl_test_io_backends(const char **names);
/* Saves after k elements for every k from 0 to the end, restores each blob with another
 * thread count (1, 2, 8 in turn) and checks that the first k plus the rest equal the
 * uninterrupted stream. `label` names the pipeline in failures. */
void sl_test_check_every_cut(sl_dataset *ds, const char *label, uint64_t seed);

#endif
