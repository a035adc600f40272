/* Progress line: the formatted text for known and unknown totals, ETA and final summary, and
 * silence when the stream is not a terminal. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "sluice/progress.h"

static void test_format_with_total_shows_eta(void **state)
{
    char buf[160];
    sl_progress_format(buf, sizeof buf, "convert", 1000, 5000, 50000000, 2000000000ull, "records");
    assert_string_equal(buf, "convert  1000/5000 records   20%  500 records/s  25.0 MB/s  ETA 8s");
}

static void test_format_unknown_total(void **state)
{
    char buf[160];
    sl_progress_format(buf, sizeof buf, "scan", 42, 0, 0, 4000000000ull, "files");
    assert_string_equal(buf, "scan  42 files  10.5 files/s");
}

static void test_format_finished_shows_elapsed(void **state)
{
    char buf[160];
    sl_progress_format(buf, sizeof buf, "index", 300, 300, 0, 125000000000ull, "records");
    assert_string_equal(buf, "index  300/300 records  100%  2.4 records/s  in 2m05s");
}

static void test_format_truncates_safely(void **state)
{
    char buf[8];
    const int n = sl_progress_format(buf, sizeof buf, "convert", 1, 2, 3, 1000000000ull, "x");
    assert_true(n > 8);
    assert_int_equal(strlen(buf), 7);
}

static void test_silent_when_not_a_terminal(void **state)
{
    FILE *f = tmpfile();
    sl_progress *p;
    assert_int_equal(sl_progress_open(&p, f, "x", 10, "items", 0), 0);
    sl_progress_add(p, 10, 0);
    sl_progress_close(p);
    assert_int_equal(ftell(f), 0);
    assert_int_equal(sl_progress_open(&p, f, "x", 10, "items", SL_PROGRESS_ALWAYS), 0);
    sl_progress_add(p, 10, 0);
    sl_progress_close(p);
    assert_true(ftell(f) > 0);
    fclose(f);
}

/* What the drawn lines say, read back from the stream. */
static char *drawn(FILE *f)
{
    static char buf[2048];
    const long n = ftell(f);
    rewind(f);
    const size_t got = fread(buf, 1, n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0, f);
    buf[got] = 0;
    return buf;
}

static void test_note_follows_the_counts_and_is_cut(void **state)
{
    FILE *f = tmpfile();
    sl_progress *p;
    assert_int_equal(sl_progress_open(&p, f, "profile", 0, "elements", SL_PROGRESS_ALWAYS), 0);
    sl_progress_set_note(p, "bottleneck: map(decode_jpeg, parallel=2)");
    sl_progress_add(p, 5, 0);
    sl_progress_close(p);
    const char *line = drawn(f);
    assert_non_null(strstr(line, "elements/s  bottleneck: map(decode_jpeg, parallel=2)\n"));
    fclose(f);

    f = tmpfile();
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    assert_int_equal(sl_progress_open(&p, f, "profile", 0, "elements", SL_PROGRESS_ALWAYS), 0);
    sl_progress_set_note(p, longer);
    sl_progress_add(p, 5, 0);
    sl_progress_close(p);
    line = drawn(f);
    const char *note = strstr(line, "  xxx");
    assert_non_null(note);
    assert_int_equal(strlen(note), 2 + 92 + 3 + 1); /* 92 x's, "...", the final newline */
    assert_non_null(strstr(note, "x...\n"));
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_with_total_shows_eta),
        cmocka_unit_test(test_note_follows_the_counts_and_is_cut),
        cmocka_unit_test(test_format_unknown_total),
        cmocka_unit_test(test_format_finished_shows_elapsed),
        cmocka_unit_test(test_format_truncates_safely),
        cmocka_unit_test(test_silent_when_not_a_terminal),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
