/*
 * The pipeline-string language (pipeline/src/pipeline_{parse,print,ast}.c, pipeline/GRAMMAR.md):
 * valid texts and their canonical form, invalid texts and the exact position and message of
 * their error, the tree the parser builds (kinds, values, spans), the printer's float and
 * string forms, the round-trip properties on every table entry and on thousands of random
 * trees (printed canonically and also written with random spacing, comments and spellings by
 * an independent writer in this file), the argument readers, the limits, and allocation
 * failures.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/pipeline_text.h"
#include "sluice/status.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static sl_ast *parse_ok(const char *text, size_t len)
{
    sl_ast *ast = NULL;
    char err[256];
    const int rc = sl_pipeline_text_parse(text, len, &ast, err, sizeof err);
    if (rc != 0)
        fail_msg("parse \"%s\": %s (%s)", text, sl_err_name(rc), err);
    return ast;
}

static sl_ast *parse_str(const char *text)
{
    return parse_ok(text, strlen(text));
}

/* Canonical text of a pipeline in a malloc'd string, checking the snprintf contract. */
static char *print_new(const sl_ast_pipeline *p)
{
    const int n = sl_ast_pipeline_print(p, NULL, 0);
    if (n < 0)
        fail_msg("print: %s", sl_err_name(n));
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(sl_ast_pipeline_print(p, buf, (size_t)n + 1), n);
    assert_int_equal(strlen(buf), n);
    return buf;
}

static char *value_text(const sl_ast_value *v)
{
    const int n = sl_ast_value_print(v, NULL, 0);
    if (n < 0)
        fail_msg("print value: %s", sl_err_name(n));
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(sl_ast_value_print(v, buf, (size_t)n + 1), n);
    return buf;
}

/* parse(print(t)) == t and print(parse(print(t))) == print(t), for a tree t. */
static void assert_round_trip(const sl_ast_pipeline *p)
{
    char *canon = print_new(p);
    sl_ast *again = parse_str(canon);
    if (!sl_ast_pipeline_equal(p, sl_ast_root(again)))
        fail_msg("parse(print(t)) != t for %s", canon);
    char *canon2 = print_new(sl_ast_root(again));
    assert_string_equal(canon, canon2);
    free(canon2);
    free(canon);
    sl_ast_free(again);
}

/* The first positional argument of the only stage of `text`, as a tree to inspect. */
static const sl_ast_value *first_arg(const sl_ast *ast)
{
    const sl_ast_pipeline *p = sl_ast_root(ast);
    assert_true(p->nstages >= 1 && p->stages[0].nargs >= 1);
    return &p->stages[0].args[0];
}

/* ---- valid texts -------------------------------------------------------------------------- */

static const struct {
    const char *text;
    const char *canonical;
} valid[] = {
    /* The examples of the issue. */
    {"records(\"train-*.sluice\") | shuffle(8192) | map(decode_jpeg, random_resized_crop(224), "
     "flip, normalize) | batch(256) | prefetch(auto)",
     "records(\"train-*.sluice\") | shuffle(8192) | map(decode_jpeg, random_resized_crop(224), "
     "flip, normalize) | batch(256) | prefetch(auto)"},
    {"records(\"train-*.sluice\") | global_shuffle(seed=7) | batch(64) | prefetch(auto)",
     "records(\"train-*.sluice\") | global_shuffle(seed=7) | batch(64) | prefetch(auto)"},
    {"range(1000) | shuffle(100, seed=1) | batch(10, drop_remainder=true)",
     "range(1000) | shuffle(100, seed=1) | batch(10, drop_remainder=true)"},
    {"interleave(files(\"shards/*.tfrecord\") , tfrecord(_) | map(parse_example), cycle_length=4, "
     "block_length=1, parallel=auto)",
     "interleave(files(\"shards/*.tfrecord\"), tfrecord(_) | map(parse_example), cycle_length=4, "
     "block_length=1, parallel=auto)"},
    /* Spacing, line breaks and comments. */
    {"  records( \"a\" )|batch( 2 )  ", "records(\"a\") | batch(2)"},
    {"\trange(3)\r\n|\ttake(1)\n", "range(3) | take(1)"},
    {"records(\"x\")  # the source\n| batch(2) # done", "records(\"x\") | batch(2)"},
    {"# a pipeline file\nrange(1)\n# trailing comment", "range(1)"},
    {"f(\"#not a comment\")", "f(\"#not a comment\")"},
    /* Bare names and empty argument lists. */
    {"flip", "flip"},
    {"flip()", "flip"},
    {"range(4) | unbatch | unbatch()", "range(4) | unbatch | unbatch"},
    {"f(g(), h)", "f(g(), h)"},
    {"f(_, x1, _a_b, True, autox, inf_, nan2)", "f(_, x1, _a_b, True, autox, inf_, nan2)"},
    /* Integers. */
    {"f(0, -0, +5, -12, 007)", "f(0, 0, 5, -12, 7)"},
    {"f(1_000_000, -2_5)", "f(1000000, -25)"},
    {"f(9223372036854775807, -9223372036854775808)",
     "f(9223372036854775807, -9223372036854775808)"},
    /* Floats: shortest round-trip form. */
    {"f(1., .5, -.25, 1e3, 1E-7, 2.50, 0.1)", "f(1.0, 0.5, -0.25, 1000.0, 1e-7, 2.5, 0.1)"},
    {"f(-0.0, 0e0, inf, -inf, +inf, nan)", "f(-0.0, 0.0, inf, -inf, inf, nan)"},
    {"f(1e16, 1e15, 123456789012345678.0, 0.0001, 0.00001)",
     "f(1e16, 1000000000000000.0, 1.2345678901234568e17, 0.0001, 1e-5)"},
    {"f(1_0.2_5e1_0, 1.7976931348623157e308, 4.9e-324)",
     "f(102500000000.0, 1.7976931348623157e308, 5e-324)"},
    {"normalize(mean=[0.485,0.456,0.406], std=[0.229, 0.224, 0.225])",
     "normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])"},
    /* Strings and escapes. */
    {"f(\"tab\\there\", \"q\\\"b\\\\s\", \"cr\\rlf\\n\")",
     "f(\"tab\\there\", \"q\\\"b\\\\s\", \"cr\\rlf\\n\")"},
    {"f(\"\\u00e9\\U0001F600\", \"\xc3\xa9\", \"\\u65e5\\u672c\")",
     "f(\"\xc3\xa9\xf0\x9f\x98\x80\", \"\xc3\xa9\", \"\xe6\x97\xa5\xe6\x9c\xac\")"},
    {"f(\"\\x41\\x00z\", \"\\x7f\\x1b\", \"\\u0000\")",
     "f(\"A\\x00z\", \"\\x7f\\x1b\", \"\\x00\")"},
    {"f(\"\\xff\\xc3\", \"\xff\", \"\xed\xa0\x80\", \"\xc0\xaf\")",
     "f(\"\\xff\\xc3\", \"\\xff\", \"\\xed\\xa0\\x80\", \"\\xc0\\xaf\")"},
    {"f(\"\\xC3\\xA9\", \"\\x2F\")", "f(\"\xc3\xa9\", \"/\")"},
    {"f(\"\", \"a b\")", "f(\"\", \"a b\")"},
    /* Booleans, auto, lists. */
    {"f(true, false, auto)", "f(true, false, auto)"},
    {"f(x=[[1, 2], [3]], y=[], z=[[]])", "f(x=[[1, 2], [3]], y=[], z=[[]])"},
    {"pad(shape=[224,224,3], value=[1, 2.5, \"s\", [true], g(1)])",
     "pad(shape=[224, 224, 3], value=[1, 2.5, \"s\", [true], g(1)])"},
    /* Nested calls and pipelines. */
    {"map(random_resized_crop(224, scale=[0.08, 1.0]), flip)",
     "map(random_resized_crop(224, scale=[0.08, 1.0]), flip)"},
    {"zip(a | b, c(1) | d() | e, datasets=[x | y(), z])",
     "zip(a | b, c(1) | d | e, datasets=[x | y, z])"},
    {"interleave(files(\"a\"), interleave(files(\"b\"), tfrecord(_) | take(1)) | batch(2))",
     "interleave(files(\"a\"), interleave(files(\"b\"), tfrecord(_) | take(1)) | batch(2))"},
    {"f(a=1,b=2)", "f(a=1, b=2)"},
    {"f(b=2, a=1)", "f(b=2, a=1)"},
};

static void valid_texts_print_canonically(void **state)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        sl_ast *ast = parse_str(valid[i].text);
        char *canon = print_new(sl_ast_root(ast));
        if (strcmp(canon, valid[i].canonical))
            fail_msg("entry %zu: %s\n   printed %s\n  expected %s", i, valid[i].text, canon,
                     valid[i].canonical);
        free(canon);
        sl_ast_free(ast);
    }
}

static void valid_texts_round_trip(void **state)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        sl_ast *ast = parse_str(valid[i].text);
        assert_round_trip(sl_ast_root(ast));
        /* The canonical text parses to the same tree as the text it came from. */
        sl_ast *canon = parse_str(valid[i].canonical);
        assert_true(sl_ast_equal(ast, canon));
        sl_ast_free(canon);
        sl_ast_free(ast);
    }
}

/* ---- invalid texts ------------------------------------------------------------------------ */

static const struct {
    const char *text;
    size_t len; /* 0: strlen */
    int code;
    size_t position;
    const char *message; /* what follows "pipeline: position N: " */
} invalid[] = {
    {"", 0, SL_ERR_SYNTAX, 1, "empty pipeline: expected a stage name"},
    {"   ", 0, SL_ERR_SYNTAX, 4, "empty pipeline: expected a stage name"},
    {"# only a comment", 0, SL_ERR_SYNTAX, 17, "empty pipeline: expected a stage name"},
    {"records(\"x", 0, SL_ERR_SYNTAX, 9, "unterminated string: no closing '\"'"},
    {"f(\"abc\\", 0, SL_ERR_SYNTAX, 3, "unterminated string: no closing '\"'"},
    {"f(\"a\\qb\")", 0, SL_ERR_SYNTAX, 5, "unknown escape '\\q' in string"},
    {"f(\"\\x4\")", 0, SL_ERR_SYNTAX, 4, "escape '\\x' needs 2 hex digits"},
    {"f(\"\\u12\")", 0, SL_ERR_SYNTAX, 4, "escape '\\u' needs 4 hex digits"},
    {"f(\"\\ud800\")", 0, SL_ERR_SYNTAX, 4, "escape '\\u' names U+D800, a surrogate"},
    {"f(\"\\U00110000\")", 0, SL_ERR_SYNTAX, 4, "escape '\\U' names U+110000, past U+10FFFF"},
    {"f(\"a\nb\")", 0, SL_ERR_SYNTAX, 5, "line break in string (opened at position 3): write \\n"},
    {"f(\"a\x01\")", 0, SL_ERR_SYNTAX, 5, "control byte 0x01 in string: write \\x01"},
    {"f(\"\\\x01\")", 0, SL_ERR_SYNTAX, 4, "unknown escape: '\\' followed by byte 0x01 in string"},
    {"f(1, 2", 0, SL_ERR_SYNTAX, 7,
     "expected ',' or ')' after an argument of f, found end of text"},
    {"f(1 2)", 0, SL_ERR_SYNTAX, 5, "expected ',' or ')' after an argument of f, found number 2"},
    {"f(a=1 b=2)", 0, SL_ERR_SYNTAX, 7,
     "expected ',' or ')' after an argument of f, found name 'b'"},
    {"f([1, 2)", 0, SL_ERR_SYNTAX, 8, "expected ',' or ']' after a list item, found ')'"},
    {"records(\"x\") |", 0, SL_ERR_SYNTAX, 15,
     "expected a stage name after '|', found end of text"},
    {"records(\"x\") | ", 0, SL_ERR_SYNTAX, 16,
     "expected a stage name after '|', found end of text"},
    {"a || b", 0, SL_ERR_SYNTAX, 4, "expected a stage name after '|', found '|'"},
    {"| a", 0, SL_ERR_SYNTAX, 1, "expected a stage name, found '|'"},
    {"[1]", 0, SL_ERR_SYNTAX, 1, "expected a stage name, found '['"},
    {"true | f", 0, SL_ERR_SYNTAX, 1, "expected a stage name, found keyword 'true'"},
    {"a | auto", 0, SL_ERR_SYNTAX, 5, "expected a stage name after '|', found keyword 'auto'"},
    {"a b", 0, SL_ERR_SYNTAX, 3, "expected '|' or end of text after a stage, found name 'b'"},
    {"f(x) )", 0, SL_ERR_SYNTAX, 6, "expected '|' or end of text after a stage, found ')'"},
    {"f(a=1, 2)", 0, SL_ERR_SYNTAX, 8,
     "positional argument after named arguments in the arguments of f"},
    {"f(seed=1, seed=2)", 0, SL_ERR_SYNTAX, 11,
     "duplicate argument 'seed' in f (first given at position 3)"},
    {"f(a=1, b=2, a=3, b=4)", 0, SL_ERR_SYNTAX, 13,
     "duplicate argument 'a' in f (first given at position 3)"},
    {"f(g(k=1, k=2))", 0, SL_ERR_SYNTAX, 10,
     "duplicate argument 'k' in g (first given at position 5)"},
    {"f(true=1)", 0, SL_ERR_SYNTAX, 3, "keyword 'true' cannot name an argument"},
    {"f(9223372036854775808)", 0, SL_ERR_SYNTAX, 3,
     "integer 9223372036854775808 does not fit in 64 bits"},
    {"f(-9223372036854775809)", 0, SL_ERR_SYNTAX, 3,
     "integer -9223372036854775809 does not fit in 64 bits"},
    {"f(99999999999999999999999)", 0, SL_ERR_SYNTAX, 3,
     "integer 99999999999999999999999 does not fit in 64 bits"},
    {"f(1e999)", 0, SL_ERR_SYNTAX, 3, "float 1e999 is out of range"},
    {"f(-1e309)", 0, SL_ERR_SYNTAX, 3, "float -1e309 is out of range"},
    {"f(1.2.3)", 0, SL_ERR_SYNTAX, 3, "malformed number '1.2.3'"},
    {"f(12abc)", 0, SL_ERR_SYNTAX, 3, "malformed number '12abc'"},
    {"f(1_)", 0, SL_ERR_SYNTAX, 3, "malformed number '1_'"},
    {"f(1__0)", 0, SL_ERR_SYNTAX, 3, "malformed number '1__0'"},
    {"f(1e)", 0, SL_ERR_SYNTAX, 3, "malformed number '1e': exponent without digits"},
    {"f(1e+)", 0, SL_ERR_SYNTAX, 3, "malformed number '1e+': exponent without digits"},
    {"f(-x)", 0, SL_ERR_SYNTAX, 3, "malformed number '-x'"},
    {"f(-infinity)", 0, SL_ERR_SYNTAX, 3, "malformed number '-infinity'"},
    {"f(- 1)", 0, SL_ERR_SYNTAX, 3, "expected a value, found '-'"},
    {"f(-nan)", 0, SL_ERR_SYNTAX, 3, "malformed number '-nan'"},
    {"f(.)", 0, SL_ERR_SYNTAX, 3, "expected a value, found '.'"},
    {"f(,)", 0, SL_ERR_SYNTAX, 3, "expected a value, found ','"},
    {"f(1,)", 0, SL_ERR_SYNTAX, 5, "expected a value after ',', found ')'"},
    {"f([1,])", 0, SL_ERR_SYNTAX, 6, "expected a value after ',', found ']'"},
    {"f(x=)", 0, SL_ERR_SYNTAX, 5, "expected a value, found ')'"},
    {"f(@)", 0, SL_ERR_SYNTAX, 3, "expected a value, found '@'"},
    {"f('a')", 0, SL_ERR_SYNTAX, 3, "expected a value, found '''"},
    {"f(1 | g)", 0, SL_ERR_SYNTAX, 3, "expected a stage before '|', found an integer"},
    {"f([a] | g)", 0, SL_ERR_SYNTAX, 3, "expected a stage before '|', found a list"},
    {"f(a | 1)", 0, SL_ERR_SYNTAX, 7, "expected a stage name after '|', found number 1"},
    {"\xc3\xa9", 0, SL_ERR_SYNTAX, 1, "expected a stage name, found byte 0xc3"},
    {"a\0", 2, SL_ERR_SYNTAX, 2, "expected '|' or end of text after a stage, found byte 0x00"},
    {"f(\"a\0\")", 7, SL_ERR_SYNTAX, 5, "control byte 0x00 in string: write \\x00"},
    {"f\v", 0, SL_ERR_SYNTAX, 2, "expected '|' or end of text after a stage, found byte 0x0b"},
};

static void invalid_texts_fail_at_position(void **state)
{
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const char *text = invalid[i].text;
        const size_t len = invalid[i].len ? invalid[i].len : strlen(text);
        sl_ast *ast = (sl_ast *)&ast; /* must be reset to NULL */
        char err[256], expect[300];
        const int rc = sl_pipeline_text_parse(text, len, &ast, err, sizeof err);
        snprintf(expect, sizeof expect, "pipeline: position %zu: %s", invalid[i].position,
                 invalid[i].message);
        /* The table gives the whole message or, for long ones, how it starts. */
        if (rc != invalid[i].code || strncmp(err, expect, strlen(expect)))
            fail_msg("entry %zu (%s): got %s \"%s\"\n expected %s \"%s...\"", i, text,
                     sl_err_name(rc), err, sl_err_name(invalid[i].code), expect);
        assert_null(ast);
        assert_null(strchr(err, '\n'));
    }
}

static char *nested_calls(int depth)
{
    /* f(f(f(...f()...))): `depth` brackets open at the innermost point. */
    char *text = malloc((size_t)depth * 3 + 1);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        text[n++] = 'f';
        text[n++] = '(';
    }
    for (int i = 0; i < depth; i++)
        text[n++] = ')';
    text[n] = '\0';
    return text;
}

static void nesting_of_64_brackets_parses(void **state)
{
    char *text = nested_calls(SL_PIPELINE_MAX_DEPTH);
    sl_ast *ast = parse_str(text);
    assert_round_trip(sl_ast_root(ast));
    sl_ast_free(ast);
    free(text);
}

static void nesting_of_65_brackets_fails_at_the_65th(void **state)
{
    char *text = nested_calls(SL_PIPELINE_MAX_DEPTH + 1);
    sl_ast *ast;
    char err[256];
    assert_int_equal(sl_pipeline_text_parse(text, strlen(text), &ast, err, sizeof err),
                     SL_ERR_SYNTAX);
    /* The 65th '(' is byte 130 (1-based). */
    assert_string_equal(err, "pipeline: position 130: nesting deeper than 64 brackets");
    assert_null(ast);
    free(text);
}

static void nesting_counts_list_brackets(void **state)
{
    /* f( then 64 '[': the last '[' is the 65th bracket, at byte 2 + 64. */
    char text[200] = "f(";
    memset(text + 2, '[', 64);
    memset(text + 66, ']', 64);
    strcpy(text + 130, ")");
    sl_ast *ast;
    char err[256];
    assert_int_equal(sl_pipeline_text_parse(text, strlen(text), &ast, err, sizeof err),
                     SL_ERR_SYNTAX);
    assert_string_equal(err, "pipeline: position 66: nesting deeper than 64 brackets");
}

static void very_deep_nesting_fails_without_crashing(void **state)
{
    /* A million '(' would overflow the stack of an unbounded recursive parser. */
    const size_t n = 1000000;
    char *text = malloc(n + 1);
    text[0] = 'f';
    for (size_t i = 1; i < n; i += 2) {
        text[i] = '(';
        text[i + 1] = 'g';
    }
    text[n] = '\0';
    sl_ast *ast;
    char err[256];
    assert_int_equal(sl_pipeline_text_parse(text, n, &ast, err, sizeof err), SL_ERR_SYNTAX);
    assert_string_equal(err, "pipeline: position 130: nesting deeper than 64 brackets");
    free(text);
}

static void text_over_one_mib_is_too_large(void **state)
{
    const size_t n = SL_PIPELINE_TEXT_MAX + 1;
    char *text = malloc(n);
    memset(text, ' ', n);
    text[0] = 'f';
    sl_ast *ast;
    char err[256];
    assert_int_equal(sl_pipeline_text_parse(text, n, &ast, err, sizeof err), SL_ERR_TOO_LARGE);
    assert_string_equal(err, "pipeline: position 1048577: text longer than 1048576 bytes");
    assert_null(ast);
    free(text);
}

static void text_of_one_mib_parses(void **state)
{
    /* f("aaa...a") filling the limit exactly. */
    const size_t n = SL_PIPELINE_TEXT_MAX;
    char *text = malloc(n);
    memcpy(text, "f(\"", 3);
    memset(text + 3, 'a', n - 5);
    memcpy(text + n - 2, "\")", 2);
    sl_ast *ast = parse_ok(text, n);
    const sl_ast_value *v = first_arg(ast);
    assert_int_equal(v->kind, SL_AST_STRING);
    assert_int_equal(v->as.str.len, n - 5);
    sl_ast_free(ast);
    free(text);
}

static void error_message_is_truncated_to_errcap(void **state)
{
    sl_ast *ast;
    char err[16];
    memset(err, 'z', sizeof err);
    assert_int_equal(sl_pipeline_text_parse("f(", 2, &ast, err, sizeof err), SL_ERR_SYNTAX);
    assert_string_equal(err, "pipeline: posit");
    assert_int_equal(sl_pipeline_text_parse("f(", 2, &ast, NULL, 0), SL_ERR_SYNTAX);
    assert_null(ast);
}

static void successful_parse_clears_err(void **state)
{
    char err[64] = "stale";
    sl_ast *ast;
    assert_int_equal(sl_pipeline_text_parse("f", 1, &ast, err, sizeof err), 0);
    assert_string_equal(err, "");
    sl_ast_free(ast);
}

static void null_text_or_out_is_inval(void **state)
{
    sl_ast *ast;
    assert_int_equal(sl_pipeline_text_parse(NULL, 0, &ast, NULL, 0), SL_ERR_INVAL);
    assert_null(ast);
    assert_int_equal(sl_pipeline_text_parse("f", 1, NULL, NULL, 0), SL_ERR_INVAL);
}

static void text_need_not_be_nul_terminated(void **state)
{
    /* Only the first len bytes count: "f(1)" out of "f(1)garbage". */
    sl_ast *ast = parse_ok("f(1)garbage", 4);
    char *canon = print_new(sl_ast_root(ast));
    assert_string_equal(canon, "f(1)");
    free(canon);
    sl_ast_free(ast);
}

static void many_keys_with_one_repeat_fail_at_the_repeat(void **state)
{
    /* 2000 distinct keys, then k1000 again: the duplicate check sorts at this size. */
    const int nkeys = 2000;
    char *text = malloc((size_t)nkeys * 12 + 64);
    size_t n = (size_t)sprintf(text, "f(");
    size_t k1000_at = 0, repeat_at = 0;
    for (int i = 0; i < nkeys; i++) {
        if (i == 1000)
            k1000_at = n + 1;
        n += (size_t)sprintf(text + n, "k%d=%d, ", i, i);
    }
    repeat_at = n + 1;
    n += (size_t)sprintf(text + n, "k1000=0, k5=0)");
    sl_ast *ast;
    char err[256], expect[256];
    assert_int_equal(sl_pipeline_text_parse(text, n, &ast, err, sizeof err), SL_ERR_SYNTAX);
    snprintf(expect, sizeof expect,
             "pipeline: position %zu: duplicate argument 'k1000' in f (first given at position "
             "%zu)",
             repeat_at, k1000_at);
    assert_string_equal(err, expect);
    free(text);
}

static void many_distinct_keys_parse(void **state)
{
    const int nkeys = 2000;
    char *text = malloc((size_t)nkeys * 12 + 64);
    size_t n = (size_t)sprintf(text, "f(");
    for (int i = 0; i < nkeys; i++)
        n += (size_t)sprintf(text + n, "%sk%d=%d", i ? ", " : "", i, i);
    n += (size_t)sprintf(text + n, ")");
    sl_ast *ast = parse_ok(text, n);
    const sl_ast_call *c = &sl_ast_root(ast)->stages[0];
    assert_int_equal(c->nnamed, nkeys);
    assert_int_equal(sl_ast_call_named(c, "k1234")->as.i, 1234);
    char *canon = print_new(sl_ast_root(ast));
    assert_memory_equal(canon, text, n);
    free(canon);
    sl_ast_free(ast);
    free(text);
}

/* ---- the tree ----------------------------------------------------------------------------- */

static void tree_holds_stages_and_arguments(void **state)
{
    sl_ast *ast = parse_str("range(1000) | shuffle(100, seed=1) | batch(10, drop_remainder=true)");
    const sl_ast_pipeline *p = sl_ast_root(ast);
    assert_int_equal(p->nstages, 3);
    assert_string_equal(p->stages[0].name, "range");
    assert_int_equal(p->stages[0].nargs, 1);
    assert_int_equal(p->stages[0].nnamed, 0);
    assert_int_equal(p->stages[0].args[0].kind, SL_AST_INT);
    assert_int_equal(p->stages[0].args[0].as.i, 1000);
    const sl_ast_stage *shuffle = &p->stages[1];
    assert_string_equal(shuffle->name, "shuffle");
    assert_int_equal(shuffle->nargs, 1);
    assert_int_equal(shuffle->nnamed, 1);
    assert_string_equal(shuffle->named[0].key, "seed");
    assert_int_equal(shuffle->named[0].value.kind, SL_AST_INT);
    assert_int_equal(shuffle->named[0].value.as.i, 1);
    assert_int_equal(p->stages[2].named[0].value.kind, SL_AST_BOOL);
    assert_true(p->stages[2].named[0].value.as.b);
    sl_ast_free(ast);
}

static void spans_point_at_the_source(void **state)
{
    const char *text = "range(1000) | shuffle(100, seed=1) | map(f(2), [1,  2])";
    sl_ast *ast = parse_str(text);
    const sl_ast_pipeline *p = sl_ast_root(ast);
    assert_int_equal(p->span.offset, 0);
    assert_int_equal(p->span.length, strlen(text));
    const sl_ast_stage *shuffle = &p->stages[1];
    assert_int_equal(shuffle->span.offset, 14);
    assert_int_equal(shuffle->span.length, strlen("shuffle(100, seed=1)"));
    assert_int_equal(shuffle->args[0].span.offset, 22);
    assert_int_equal(shuffle->args[0].span.length, 3);
    assert_int_equal(shuffle->named[0].span.offset, 27);
    assert_int_equal(shuffle->named[0].span.length, 6);
    assert_int_equal(shuffle->named[0].value.span.offset, 32);
    assert_int_equal(shuffle->named[0].value.span.length, 1);
    const sl_ast_stage *map = &p->stages[2];
    assert_int_equal(map->args[0].span.offset, 41);
    assert_int_equal(map->args[0].span.length, 4);
    assert_int_equal(map->args[1].span.offset, 47);
    assert_int_equal(map->args[1].span.length, 7);
    sl_ast_free(ast);
}

static void nested_pipeline_binds_inside_one_argument(void **state)
{
    sl_ast *ast = parse_str("interleave(files(\"x/*\"), tfrecord(_) | map(parse), cycle_length=4)");
    const sl_ast_stage *s = &sl_ast_root(ast)->stages[0];
    assert_int_equal(s->nargs, 2);
    assert_int_equal(s->nnamed, 1);
    assert_int_equal(s->args[0].kind, SL_AST_CALL);
    const sl_ast_value *inner = &s->args[1];
    assert_int_equal(inner->kind, SL_AST_PIPELINE);
    assert_int_equal(inner->as.pipeline.nstages, 2);
    assert_string_equal(inner->as.pipeline.stages[0].name, "tfrecord");
    assert_int_equal(inner->as.pipeline.stages[0].args[0].kind, SL_AST_IDENT);
    assert_string_equal(inner->as.pipeline.stages[0].args[0].as.call.name, "_");
    assert_string_equal(inner->as.pipeline.stages[1].name, "map");
    assert_int_equal(inner->span.offset, 25);
    assert_int_equal(inner->span.length, strlen("tfrecord(_) | map(parse)"));
    sl_ast_free(ast);
}

static void name_and_call_values_differ(void **state)
{
    sl_ast *ast = parse_str("map(flip, flip(), crop(224))");
    const sl_ast_stage *s = &sl_ast_root(ast)->stages[0];
    assert_int_equal(s->args[0].kind, SL_AST_IDENT);
    assert_int_equal(s->args[1].kind, SL_AST_CALL);
    assert_int_equal(s->args[2].kind, SL_AST_CALL);
    /* An IDENT reads as a call with no arguments. */
    assert_string_equal(s->args[0].as.call.name, "flip");
    assert_int_equal(s->args[0].as.call.nargs, 0);
    assert_false(sl_ast_value_equal(&s->args[0], &s->args[1]));
    sl_ast_free(ast);
}

static void strings_decode_escapes_and_keep_nul(void **state)
{
    sl_ast *ast = parse_str("f(\"a\\x00b\\n\\u00e9\\U0001F600\\\"\\\\\")");
    const sl_ast_value *v = first_arg(ast);
    assert_int_equal(v->kind, SL_AST_STRING);
    static const char expect[] = "a\0b\n\xc3\xa9\xf0\x9f\x98\x80\"\\";
    assert_int_equal(v->as.str.len, sizeof expect - 1);
    assert_memory_equal(v->as.str.data, expect, sizeof expect);
    assert_int_equal(v->as.str.data[v->as.str.len], '\0');
    sl_ast_free(ast);
}

static void keywords_become_values(void **state)
{
    sl_ast *ast = parse_str("f(true, false, auto, inf, -inf, nan)");
    const sl_ast_stage *s = &sl_ast_root(ast)->stages[0];
    assert_int_equal(s->args[0].kind, SL_AST_BOOL);
    assert_true(s->args[0].as.b);
    assert_int_equal(s->args[1].kind, SL_AST_BOOL);
    assert_false(s->args[1].as.b);
    assert_int_equal(s->args[2].kind, SL_AST_AUTO);
    assert_true(s->args[3].kind == SL_AST_FLOAT && isinf(s->args[3].as.f) && s->args[3].as.f > 0);
    assert_true(s->args[4].kind == SL_AST_FLOAT && isinf(s->args[4].as.f) && s->args[4].as.f < 0);
    assert_true(s->args[5].kind == SL_AST_FLOAT && isnan(s->args[5].as.f));
    sl_ast_free(ast);
}

static void integer_limits_are_exact(void **state)
{
    sl_ast *ast = parse_str("f(9223372036854775807, -9223372036854775808, -1_2)");
    const sl_ast_stage *s = &sl_ast_root(ast)->stages[0];
    assert_true(s->args[0].as.i == INT64_MAX);
    assert_true(s->args[1].as.i == INT64_MIN);
    assert_true(s->args[2].as.i == -12);
    sl_ast_free(ast);
}

static void floats_are_correctly_rounded(void **state)
{
    sl_ast *ast = parse_str("f(0.1, 2.2250738585072014e-308, 1e-400, 9007199254740993.0, 1e23)");
    const sl_ast_stage *s = &sl_ast_root(ast)->stages[0];
    assert_true(s->args[0].as.f == 0.1);
    assert_true(s->args[1].as.f == DBL_MIN);
    assert_true(s->args[2].as.f == 0.0); /* underflow rounds to zero, not an error */
    assert_true(s->args[3].as.f == 9007199254740992.0);
    assert_true(s->args[4].as.f == 1e23);
    sl_ast_free(ast);
}

/* ---- printing ----------------------------------------------------------------------------- */

static void floats_print_shortest_round_trip_form(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1.0, "1.0"},
        {100.0, "100.0"},
        {-2.5, "-2.5"},
        {1e15, "1000000000000000.0"},
        {1e16, "1e16"},
        {1.5e16, "1.5e16"},
        {123456789.0, "123456789.0"},
        {0.0001, "0.0001"},
        {0.00012, "0.00012"},
        {1e-5, "1e-5"},
        {1.25e-7, "1.25e-7"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {9007199254740993.0, "9007199254740992.0"},
        {DBL_MAX, "1.7976931348623157e308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {5e-324, "5e-324"},
        {1e23, "1e23"},
        {0.0, "0.0"},
        {-0.0, "-0.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sl_ast_value v = {.kind = SL_AST_FLOAT, .as.f = cases[i].v};
        char *text = value_text(&v);
        if (strcmp(text, cases[i].text))
            fail_msg("%.17g printed %s, expected %s", cases[i].v, text, cases[i].text);
        free(text);
    }
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Significant digits of a printed float: its digits before any exponent, less the leading and
 * trailing zeros. */
static int significant_digits(const char *text)
{
    char digits[64];
    int n = 0;
    for (const char *p = text; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && (n || *p != '0'))
            digits[n++] = *p;
    while (n && digits[n - 1] == '0')
        n--;
    return n;
}

static void random_doubles_round_trip_bit_exactly(void **state)
{
    uint64_t seed = 42;
    for (int i = 0; i < 20000; i++) {
        const uint64_t bits = splitmix(&seed);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isnan(d))
            continue;
        const sl_ast_value v = {.kind = SL_AST_FLOAT, .as.f = d};
        char *text = value_text(&v);
        char stage[64];
        snprintf(stage, sizeof stage, "f(%s)", text);
        sl_ast *ast = parse_str(stage);
        const double back = first_arg(ast)->as.f;
        if (memcmp(&back, &d, sizeof d))
            fail_msg("%.17g printed %s read back %.17g", d, text, back);
        /* Shortest: no decimal with one significant digit fewer reads back. */
        const int digits = significant_digits(text);
        if (digits > 1) {
            char shorter[64];
            snprintf(shorter, sizeof shorter, "%.*e", digits - 2, d);
            if (strtod(shorter, NULL) == d)
                fail_msg("%.17g printed %s but %s is shorter", d, text, shorter);
        }
        sl_ast_free(ast);
        free(text);
    }
}

static void strings_print_canonical_escapes(void **state)
{
    static const char bytes[] = "\"\\\n\t\r\x01\x7f\x80\xc3\xa9\xe2\x82\xac\xf4\x90\x80\x80 ~\0z";
    const sl_ast_value v = {.kind = SL_AST_STRING,
                            .as.str = {.data = bytes, .len = sizeof bytes - 1}};
    char *text = value_text(&v);
    assert_string_equal(text, "\"\\\"\\\\\\n\\t\\r\\x01\\x7f\\x80\xc3\xa9\xe2\x82\xac"
                              "\\xf4\\x90\\x80\\x80 ~\\x00z\"");
    free(text);
}

static void stage_and_value_print_alone(void **state)
{
    sl_ast *ast = parse_str("records(\"a\") | map( decode_jpeg ,random_resized_crop( 224 , "
                            "scale = [ 0.08 , 1. ] ) ) | batch");
    const sl_ast_pipeline *p = sl_ast_root(ast);
    char buf[128];
    assert_int_equal(sl_ast_stage_print(&p->stages[1], buf, sizeof buf),
                     strlen("map(decode_jpeg, random_resized_crop(224, scale=[0.08, 1.0]))"));
    assert_string_equal(buf, "map(decode_jpeg, random_resized_crop(224, scale=[0.08, 1.0]))");
    assert_int_equal(sl_ast_stage_print(&p->stages[2], buf, sizeof buf), 5);
    assert_string_equal(buf, "batch");
    assert_int_equal(
        sl_ast_value_print(&p->stages[1].args[1].as.call.named[0].value, buf, sizeof buf), 11);
    assert_string_equal(buf, "[0.08, 1.0]");
    assert_int_equal(sl_ast_print(ast, buf, sizeof buf),
                     strlen("records(\"a\") | map(decode_jpeg, random_resized_crop(224, "
                            "scale=[0.08, 1.0])) | batch"));
    sl_ast_free(ast);
}

static void print_truncates_like_snprintf(void **state)
{
    sl_ast *ast = parse_str("range(10) | batch(2)");
    char buf[8];
    memset(buf, 'z', sizeof buf);
    assert_int_equal(sl_ast_print(ast, buf, sizeof buf), 20);
    assert_string_equal(buf, "range(1");
    assert_int_equal(sl_ast_print(ast, NULL, 0), 20);
    char one[1] = {'z'};
    assert_int_equal(sl_ast_print(ast, one, 1), 20);
    assert_int_equal(one[0], '\0');
    sl_ast_free(ast);
}

/* Hand-built trees that the text cannot express are refused. */
static void print_refuses_trees_the_text_cannot_express(void **state)
{
    const sl_ast_value one = {.kind = SL_AST_INT, .as.i = 1};
    const sl_ast_arg dup[2] = {{.key = "k", .value = one}, {.key = "k", .value = one}};
    const sl_ast_stage bad_stages[] = {
        {.name = "1abc"},
        {.name = "true"},
        {.name = ""},
        {.name = NULL},
        {.name = "a-b"},
        {.name = "f", .named = dup, .nnamed = 2},
        {.name = "f", .args = NULL, .nargs = 1},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof bad_stages / sizeof bad_stages[0]; i++) {
        memset(buf, 'z', sizeof buf);
        assert_int_equal(sl_ast_stage_print(&bad_stages[i], buf, sizeof buf), SL_ERR_INVAL);
        assert_string_equal(buf, "");
    }
    const sl_ast_stage f = {.name = "f"};
    const sl_ast_value bad_values[] = {
        {.kind = SL_AST_IDENT, .as.call = {.name = "f", .args = &one, .nargs = 1}},
        {.kind = SL_AST_IDENT, .as.call = {.name = "nan"}},
        {.kind = SL_AST_PIPELINE, .as.pipeline = {.stages = &f, .nstages = 1}},
        {.kind = SL_AST_PIPELINE, .as.pipeline = {.stages = NULL, .nstages = 0}},
        {.kind = SL_AST_STRING, .as.str = {.data = NULL, .len = 3}},
        {.kind = SL_AST_LIST, .as.list = {.items = NULL, .count = 2}},
        {.kind = (sl_ast_kind)99},
        {.kind = (sl_ast_kind)0},
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++)
        assert_int_equal(sl_ast_value_print(&bad_values[i], buf, sizeof buf), SL_ERR_INVAL);
    const sl_ast_pipeline empty = {.stages = NULL, .nstages = 0};
    assert_int_equal(sl_ast_pipeline_print(&empty, buf, sizeof buf), SL_ERR_INVAL);
}

static void print_refuses_trees_deeper_than_the_limit(void **state)
{
    /* [[[...]]] with 65 brackets; 64 print. */
    sl_ast_value lists[SL_PIPELINE_MAX_DEPTH + 1];
    for (int i = 0; i <= SL_PIPELINE_MAX_DEPTH; i++) {
        lists[i].kind = SL_AST_LIST;
        lists[i].as.list.items = i < SL_PIPELINE_MAX_DEPTH ? &lists[i + 1] : NULL;
        lists[i].as.list.count = i < SL_PIPELINE_MAX_DEPTH;
    }
    assert_int_equal(sl_ast_value_print(&lists[0], NULL, 0), SL_ERR_INVAL);
    assert_int_equal(sl_ast_value_print(&lists[1], NULL, 0), 2 * SL_PIPELINE_MAX_DEPTH);
    /* A stage's parentheses count as one level. */
    const sl_ast_stage s = {.name = "f", .args = &lists[1], .nargs = 1};
    assert_int_equal(sl_ast_stage_print(&s, NULL, 0), SL_ERR_INVAL);
    const sl_ast_stage s2 = {.name = "f", .args = &lists[2], .nargs = 1};
    assert_int_equal(sl_ast_stage_print(&s2, NULL, 0), 2 + 2 * (SL_PIPELINE_MAX_DEPTH - 1) + 1);
}

/* ---- equality ----------------------------------------------------------------------------- */

static void equality_ignores_spans_and_spelling(void **state)
{
    sl_ast *a = parse_str("f(1, x=[2.5, \"s\"]) | g");
    sl_ast *b = parse_str("  f( +1 ,x = [ 25e-1,\"\\x73\" ] )|g()  # same");
    assert_true(sl_ast_equal(a, b));
    sl_ast_free(b);
    sl_ast_free(a);
}

static void equality_tells_differences(void **state)
{
    static const char *const pairs[][2] = {
        {"f(1)", "f(2)"},
        {"f(1)", "f(1.0)"},
        {"f(0.0)", "f(-0.0)"},
        {"f(a=1, b=2)", "f(b=2, a=1)"},
        {"f(x)", "f(x())"},
        {"f(\"a\")", "f(a)"},
        {"f(\"a\\x00\")", "f(\"a\")"},
        {"f([1])", "f([1, 1])"},
        {"f(a | b)", "f(a | c)"},
        {"f | g", "f"},
        {"f(true)", "f(false)"},
        {"f(auto)", "f(true)"},
        {"f(x=1)", "f(y=1)"},
        {"f(1)", "f(x=1)"},
        {"f", "g"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        sl_ast *a = parse_str(pairs[i][0]);
        sl_ast *b = parse_str(pairs[i][1]);
        if (sl_ast_equal(a, b))
            fail_msg("%s == %s", pairs[i][0], pairs[i][1]);
        sl_ast_free(b);
        sl_ast_free(a);
    }
}

static void equality_treats_every_nan_alike(void **state)
{
    sl_ast *a = parse_str("f(nan)");
    sl_ast_value v = {.kind = SL_AST_FLOAT, .as.f = -NAN};
    assert_true(sl_ast_value_equal(first_arg(a), &v));
    assert_true(sl_ast_value_equal(first_arg(a), first_arg(a)));
    sl_ast_free(a);
}

/* ---- reading arguments -------------------------------------------------------------------- */

static const char *const shuffle_keys[] = {"buffer_size", "seed", "reshuffle"};

static void positional_and_named_lookup(void **state)
{
    sl_ast *ast = parse_str("shuffle(100, seed=7)");
    const sl_ast_call *c = &sl_ast_root(ast)->stages[0];
    assert_int_equal(sl_ast_call_positional(c, 0)->as.i, 100);
    assert_null(sl_ast_call_positional(c, 1));
    assert_int_equal(sl_ast_call_named(c, "seed")->as.i, 7);
    assert_null(sl_ast_call_named(c, "buffer_size"));
    assert_null(sl_ast_call_named(c, NULL));
    sl_ast_free(ast);
}

static void call_arg_binds_by_position_or_name(void **state)
{
    sl_ast *ast = parse_str("shuffle(100) | shuffle(buffer_size=200, seed=3)");
    const sl_ast_pipeline *p = sl_ast_root(ast);
    const sl_ast_value *v;
    char err[128];
    assert_int_equal(sl_ast_call_arg(&p->stages[0], 0, "buffer_size", true, &v, err, sizeof err),
                     0);
    assert_int_equal(v->as.i, 100);
    assert_int_equal(sl_ast_call_arg(&p->stages[1], 0, "buffer_size", true, &v, err, sizeof err),
                     0);
    assert_int_equal(v->as.i, 200);
    assert_int_equal(sl_ast_call_arg(&p->stages[0], 1, "seed", false, &v, err, sizeof err), 0);
    assert_null(v);
    assert_int_equal(
        sl_ast_call_arg(&p->stages[1], SL_AST_NO_INDEX, "seed", false, &v, err, sizeof err), 0);
    assert_int_equal(v->as.i, 3);
    sl_ast_free(ast);
}

static void call_arg_given_twice_is_inval(void **state)
{
    sl_ast *ast = parse_str("shuffle(100, buffer_size=200)");
    const sl_ast_value *v;
    char err[160];
    assert_int_equal(
        sl_ast_call_arg(&sl_ast_root(ast)->stages[0], 0, "buffer_size", true, &v, err, sizeof err),
        SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 14: shuffle: argument 'buffer_size' given twice, "
                             "by position (argument 1) and by name");
    sl_ast_free(ast);
}

static void call_arg_missing_required_is_inval(void **state)
{
    sl_ast *ast = parse_str("range(3) | shuffle(seed=1)");
    const sl_ast_call *c = &sl_ast_root(ast)->stages[1];
    const sl_ast_value *v;
    char err[128];
    assert_int_equal(sl_ast_call_arg(c, 0, "buffer_size", true, &v, err, sizeof err), SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 12: shuffle: missing argument 'buffer_size'");
    assert_int_equal(sl_ast_call_arg(c, 1, NULL, true, &v, err, sizeof err), SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 12: shuffle: missing positional argument 2");
    sl_ast_free(ast);
}

static void call_check_rejects_unknown_key(void **state)
{
    sl_ast *ast = parse_str("shuffle(100, sed=1)");
    char err[128];
    assert_int_equal(
        sl_ast_call_check(&sl_ast_root(ast)->stages[0], 1, shuffle_keys, 3, err, sizeof err),
        SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 14: shuffle: unknown argument 'sed'");
    sl_ast_free(ast);
}

static void call_check_rejects_extra_positionals(void **state)
{
    sl_ast *ast = parse_str("shuffle(100, 7, true, 9) | prefetch(2)");
    const sl_ast_pipeline *p = sl_ast_root(ast);
    char err[128];
    assert_int_equal(sl_ast_call_check(&p->stages[0], 3, shuffle_keys, 3, err, sizeof err),
                     SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 23: shuffle: takes at most 3 positional "
                             "arguments, found 4");
    assert_int_equal(sl_ast_call_check(&p->stages[1], 0, NULL, 0, err, sizeof err), SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 37: prefetch: takes no positional arguments");
    assert_int_equal(sl_ast_call_check(&p->stages[0], 4, shuffle_keys, 3, err, sizeof err), 0);
    sl_ast_free(ast);
}

static void typed_getters_read_their_kind(void **state)
{
    sl_ast *ast = parse_str("f(7, 2.5, true, \"s\\x00t\", flip, crop(3), a | b, [1])");
    const sl_ast_call *c = &sl_ast_root(ast)->stages[0];
    char err[128];
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t len;
    const sl_ast_call *call;
    sl_ast_pipeline pipe;
    assert_int_equal(sl_ast_value_get_int(&c->args[0], "f", &i, err, sizeof err), 0);
    assert_int_equal(i, 7);
    assert_int_equal(sl_ast_value_get_double(&c->args[1], "f", &d, err, sizeof err), 0);
    assert_true(d == 2.5);
    assert_int_equal(sl_ast_value_get_bool(&c->args[2], "f", &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(sl_ast_value_get_string(&c->args[3], "f", &s, &len, err, sizeof err), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "s\0t", 4);
    assert_int_equal(sl_ast_value_get_name(&c->args[4], "f", &s, err, sizeof err), 0);
    assert_string_equal(s, "flip");
    assert_int_equal(sl_ast_value_get_call(&c->args[4], "f", &call, err, sizeof err), 0);
    assert_true(call->name == s && call->nargs == 0);
    assert_int_equal(sl_ast_value_get_call(&c->args[5], "f", &call, err, sizeof err), 0);
    assert_int_equal(call->args[0].as.i, 3);
    assert_int_equal(sl_ast_value_get_pipeline(&c->args[6], "f", &pipe, err, sizeof err), 0);
    assert_int_equal(pipe.nstages, 2);
    assert_string_equal(pipe.stages[1].name, "b");
    sl_ast_free(ast);
}

static void get_double_converts_integers(void **state)
{
    sl_ast *ast = parse_str("f(3, -9007199254740993)");
    const sl_ast_call *c = &sl_ast_root(ast)->stages[0];
    double d;
    assert_int_equal(sl_ast_value_get_double(&c->args[0], NULL, &d, NULL, 0), 0);
    assert_true(d == 3.0);
    assert_int_equal(sl_ast_value_get_double(&c->args[1], NULL, &d, NULL, 0), 0);
    assert_true(d == -9007199254740992.0);
    sl_ast_free(ast);
}

static void get_pipeline_views_a_call_as_one_stage(void **state)
{
    sl_ast *ast = parse_str("interleave(files(\"x\"), tfrecord(_))");
    const sl_ast_value *v = &sl_ast_root(ast)->stages[0].args[1];
    sl_ast_pipeline pipe;
    assert_int_equal(sl_ast_value_get_pipeline(v, NULL, &pipe, NULL, 0), 0);
    assert_int_equal(pipe.nstages, 1);
    assert_ptr_equal(&pipe.stages[0], &v->as.call);
    assert_int_equal(pipe.span.offset, v->span.offset);
    sl_ast_free(ast);
}

static void getters_leave_default_when_absent(void **state)
{
    int64_t i = 5;
    double d = 1.5;
    bool b = true;
    const char *s = "keep";
    size_t len = 4;
    assert_int_equal(sl_ast_value_get_int(NULL, "x", &i, NULL, 0), 0);
    assert_int_equal(sl_ast_value_get_double(NULL, "x", &d, NULL, 0), 0);
    assert_int_equal(sl_ast_value_get_bool(NULL, "x", &b, NULL, 0), 0);
    assert_int_equal(sl_ast_value_get_string(NULL, "x", &s, &len, NULL, 0), 0);
    assert_int_equal(sl_ast_value_get_name(NULL, "x", &s, NULL, 0), 0);
    assert_true(i == 5 && d == 1.5 && b && !strcmp(s, "keep") && len == 4);
}

static void getters_reject_other_kinds_with_position(void **state)
{
    sl_ast *ast = parse_str("shuffle(\"100\", seed=2.5, flag=auto, xs=[1, 2], g=3)");
    const sl_ast_call *c = &sl_ast_root(ast)->stages[0];
    char err[160];
    int64_t i = 0;
    double d;
    bool b;
    const char *s;
    const sl_ast_call *call;
    assert_int_equal(sl_ast_value_get_int(&c->args[0], "shuffle: buffer_size", &i, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 9: shuffle: buffer_size: expected an integer, "
                             "found string \"100\"");
    assert_int_equal(i, 0);
    assert_int_equal(sl_ast_value_get_int(&c->named[0].value, "shuffle: seed", &i, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 21: shuffle: seed: expected an integer, found "
                             "float 2.5");
    assert_int_equal(sl_ast_value_get_bool(&c->named[1].value, NULL, &b, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 31: expected a boolean, found auto");
    assert_int_equal(sl_ast_value_get_double(&c->named[2].value, "x", &d, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 40: x: expected a number, found list [1, 2]");
    assert_int_equal(sl_ast_value_get_string(&c->named[3].value, "x", &s, NULL, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 50: x: expected a string, found integer 3");
    assert_int_equal(sl_ast_value_get_call(&c->args[0], "map", &call, err, sizeof err),
                     SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 9: map: expected a name or a call, found "
                             "string \"100\"");
    sl_ast_free(ast);
}

static void kind_error_shortens_long_values(void **state)
{
    sl_ast *ast = parse_str("f(\"0123456789012345678901234567890123456789xyz\")");
    int64_t i;
    char err[160];
    assert_int_equal(sl_ast_value_get_int(first_arg(ast), NULL, &i, err, sizeof err), SL_ERR_TYPE);
    assert_string_equal(err, "pipeline: position 3: expected an integer, found string "
                             "\"012345678901234567890123456789012345678...");
    sl_ast_free(ast);
}

static void ast_error_formats_like_the_parser(void **state)
{
    char err[128];
    const sl_ast_span at = {30, 4};
    assert_int_equal(sl_ast_error(err, sizeof err, SL_ERR_INVAL, at,
                                  "%s: buffer size must be "
                                  "positive",
                                  "shuffle"),
                     SL_ERR_INVAL);
    assert_string_equal(err, "pipeline: position 31: shuffle: buffer size must be positive");
    assert_int_equal(sl_ast_error(NULL, 0, SL_ERR_TYPE, at, "x"), SL_ERR_TYPE);
}

static void kind_names(void **state)
{
    assert_string_equal(sl_ast_kind_name(SL_AST_INT), "integer");
    assert_string_equal(sl_ast_kind_name(SL_AST_IDENT), "name");
    assert_string_equal(sl_ast_kind_name(SL_AST_PIPELINE), "pipeline");
    assert_string_equal(sl_ast_kind_name((sl_ast_kind)0), "invalid");
}

/* ---- allocation failures ------------------------------------------------------------------ */

static void allocation_failures_return_nomem_and_leak_nothing(void **state)
{
    const char *text = "interleave(files(\"a/*\"), tfrecord(_) | map(parse, crop(224, "
                       "scale=[0.08, 1.0])), cycle_length=4) | batch(2) | prefetch(auto)";
    const int64_t live = sl_alloc_live_bytes();
    int failures = 0;
    for (int64_t n = 0;; n++) {
        sl_alloc_fail_at(n);
        sl_ast *ast;
        char err[128];
        const int rc = sl_pipeline_text_parse(text, strlen(text), &ast, err, sizeof err);
        sl_alloc_fail_at(-1);
        if (rc == 0) {
            assert_round_trip(sl_ast_root(ast));
            sl_ast_free(ast);
            break;
        }
        assert_int_equal(rc, SL_ERR_NOMEM);
        assert_string_equal(err, "pipeline: out of memory");
        assert_null(ast);
        assert_int_equal(sl_alloc_live_bytes(), live);
        failures++;
    }
    assert_true(failures >= 3); /* the tree, its arena, the scratch stacks */
}

static void print_of_many_keys_survives_allocation_failure(void **state)
{
    /* Over 32 keys the duplicate check needs scratch memory. */
    char text[1024];
    size_t n = (size_t)sprintf(text, "f(");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(text + n, "%sk%d=1", i ? ", " : "", i);
    sprintf(text + n, ")");
    sl_ast *ast = parse_str(text);
    sl_alloc_fail_at(0);
    assert_int_equal(sl_ast_print(ast, NULL, 0), SL_ERR_NOMEM);
    sl_alloc_fail_at(-1);
    assert_int_equal(sl_ast_print(ast, NULL, 0), strlen(text));
    sl_ast_free(ast);
}

/* ---- random trees ------------------------------------------------------------------------- *
 * A seeded generator builds trees straight from the public node structs (in a bump arena of
 * this file), so the round trip is checked on trees the parser never produced: every int64,
 * every double bit pattern, strings of arbitrary bytes, any nesting within the limits. */

typedef struct gen {
    uint64_t seed;
    unsigned char *mem;
    size_t used, cap;
} gen;

static uint64_t gen_u64(gen *g)
{
    return splitmix(&g->seed);
}

static size_t gen_below(gen *g, size_t n)
{
    return (size_t)(gen_u64(g) % n);
}

static void *gen_alloc(gen *g, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (g->used + size > g->cap)
        fail_msg("generator arena full");
    void *p = g->mem + g->used;
    g->used += size;
    return p;
}

static const char *gen_name(gen *g)
{
    static const char *const pool[] = {"_",     "a",   "f",     "map",   "decode_jpeg", "x1",
                                       "True",  "NaN", "inf_",  "autox", "falsey",      "_0",
                                       "Batch", "b_2", "tfrec", "zip"};
    if (gen_below(g, 3))
        return pool[gen_below(g, sizeof pool / sizeof pool[0])];
    static const char start[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    static const char rest[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
    for (;;) {
        const size_t n = 1 + gen_below(g, 8);
        char *s = gen_alloc(g, n + 1);
        s[0] = start[gen_below(g, sizeof start - 1)];
        for (size_t i = 1; i < n; i++)
            s[i] = rest[gen_below(g, sizeof rest - 1)];
        s[n] = '\0';
        if (strcmp(s, "true") && strcmp(s, "false") && strcmp(s, "auto") && strcmp(s, "inf") &&
            strcmp(s, "nan"))
            return s;
    }
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

static void gen_string(gen *g, sl_ast_value *v)
{
    const size_t max = gen_below(g, 14);
    unsigned char *s = gen_alloc(g, max * 4 + 1);
    size_t n = 0;
    for (size_t i = 0; i < max; i++) {
        switch (gen_below(g, 6)) {
        case 0: /* any byte at all */
            s[n++] = (unsigned char)gen_u64(g);
            break;
        case 1: {
            static const char special[] = "\"\\\n\t\r\x7f\x01";
            s[n++] = (unsigned char)special[gen_below(g, sizeof special)]; /* NUL included */
            break;
        }
        case 2: { /* a character outside ASCII, never a surrogate */
            uint32_t cp = 0x80 + (uint32_t)gen_below(g, 0x10ffff - 0x80);
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp -= 0x800;
            n += utf8_encode(cp, s + n);
            break;
        }
        default:
            s[n++] = (unsigned char)(0x20 + gen_below(g, 0x5f));
        }
    }
    s[n] = '\0';
    v->kind = SL_AST_STRING;
    v->as.str.data = (const char *)s;
    v->as.str.len = n;
}

static void gen_call(gen *g, sl_ast_call *c, int depth);
static void gen_stages(gen *g, sl_ast_pipeline *p, size_t min, int depth);

/* depth = brackets open around the value. */
static void gen_value(gen *g, sl_ast_value *v, int depth)
{
    memset(v, 0, sizeof *v);
    const bool can_nest = depth + 1 <= 6;
    switch (gen_below(g, can_nest ? 10 : 7)) {
    case 0: {
        static const int64_t edges[] = {0, 1, -1, INT64_MAX, INT64_MIN, INT64_MIN + 1, 10};
        v->kind = SL_AST_INT;
        v->as.i = gen_below(g, 2) ? edges[gen_below(g, 7)] : (int64_t)gen_u64(g);
        if (gen_below(g, 2))
            v->as.i %= 100000;
        break;
    }
    case 1: {
        static const double edges[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, DBL_MAX, 5e-324, 0.1};
        v->kind = SL_AST_FLOAT;
        if (gen_below(g, 3)) {
            const uint64_t bits = gen_u64(g);
            memcpy(&v->as.f, &bits, sizeof v->as.f);
        } else {
            v->as.f = edges[gen_below(g, 8)];
        }
        break;
    }
    case 2:
        gen_string(g, v);
        break;
    case 3:
        v->kind = SL_AST_BOOL;
        v->as.b = gen_below(g, 2);
        break;
    case 4:
        v->kind = SL_AST_AUTO;
        break;
    case 5:
    case 6:
        v->kind = SL_AST_IDENT;
        v->as.call.name = gen_name(g);
        break;
    case 7: {
        v->kind = SL_AST_LIST;
        const size_t n = gen_below(g, 4);
        sl_ast_value *items = n ? gen_alloc(g, n * sizeof *items) : NULL;
        for (size_t i = 0; i < n; i++)
            gen_value(g, &items[i], depth + 1);
        v->as.list.items = items;
        v->as.list.count = n;
        break;
    }
    case 8:
        v->kind = SL_AST_CALL;
        gen_call(g, &v->as.call, depth);
        /* A call value always prints its parentheses, so it needs a level for them. */
        break;
    default:
        v->kind = SL_AST_PIPELINE;
        gen_stages(g, &v->as.pipeline, 2, depth);
        break;
    }
}

static void gen_call(gen *g, sl_ast_call *c, int depth)
{
    memset(c, 0, sizeof *c);
    c->name = gen_name(g);
    const size_t nargs = gen_below(g, 4), nnamed = gen_below(g, 4);
    sl_ast_value *args = nargs ? gen_alloc(g, nargs * sizeof *args) : NULL;
    sl_ast_arg *named = nnamed ? gen_alloc(g, nnamed * sizeof *named) : NULL;
    for (size_t i = 0; i < nargs; i++)
        gen_value(g, &args[i], depth + 1);
    for (size_t i = 0; i < nnamed; i++) {
        memset(&named[i], 0, sizeof named[i]);
        bool unique;
        do {
            named[i].key = gen_name(g);
            unique = true;
            for (size_t j = 0; j < i; j++)
                unique = unique && strcmp(named[j].key, named[i].key);
        } while (!unique);
        gen_value(g, &named[i].value, depth + 1);
    }
    c->args = args;
    c->nargs = nargs;
    c->named = named;
    c->nnamed = nnamed;
}

static void gen_stages(gen *g, sl_ast_pipeline *p, size_t min, int depth)
{
    const size_t n = min + gen_below(g, 3);
    sl_ast_stage *stages = gen_alloc(g, n * sizeof *stages);
    for (size_t i = 0; i < n; i++)
        gen_call(g, &stages[i], depth);
    p->stages = stages;
    p->nstages = n;
    p->span = (sl_ast_span){0, 0};
}

/* An independent writer of the same trees in non-canonical text: random blanks and comments
 * between tokens, '+' signs, leading zeros and '_' in numbers, other float spellings, escapes
 * where none are needed, `f()` for argument-less stages. Parsing it must give the tree. */
typedef struct out {
    char *buf;
    size_t len, cap;
} out;

static void out_put(out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

static void noise(gen *g, out *o)
{
    static const char *const blanks[] = {"", "", "", " ", "  ", "\t", "\n", "\r\n", " # c|(\"\n"};
    out_str(o, blanks[gen_below(g, sizeof blanks / sizeof blanks[0])]);
}

static void noisy_int(gen *g, out *o, int64_t v)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%" PRIu64, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        out_str(o, "-");
    else if (gen_below(g, 4) == 0)
        out_str(o, "+");
    if (gen_below(g, 5) == 0)
        out_str(o, "00");
    for (size_t i = 0; digits[i]; i++) {
        if (i && gen_below(g, 5) == 0)
            out_str(o, "_");
        out_put(o, &digits[i], 1);
    }
}

static void noisy_float(gen *g, out *o, double v)
{
    char text[64];
    if (isnan(v)) {
        out_str(o, "nan");
        return;
    }
    if (isinf(v)) {
        out_str(o, v < 0 ? "-inf" : gen_below(g, 2) ? "+inf" : "inf");
        return;
    }
    switch (gen_below(g, 3)) {
    case 0:
        snprintf(text, sizeof text, "%.17e", v);
        break;
    case 1:
        snprintf(text, sizeof text, "%.17g", v);
        if (!strpbrk(text, ".e"))
            strcat(text, gen_below(g, 2) ? "." : "e0");
        break;
    default:
        snprintf(text, sizeof text, "%.25E", v);
        break;
    }
    if (v > 0 && gen_below(g, 3) == 0)
        out_str(o, "+");
    out_str(o, text);
}

static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] >= 0xc2 && s[0] <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] >= 0xe0 && s[0] <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return *cp >= 0x800 && !(*cp >= 0xd800 && *cp <= 0xdfff) ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4 && n >= 4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
        (s[3] & 0xc0) == 0x80) {
        *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
              (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        return *cp >= 0x10000 && *cp <= 0x10ffff ? 4 : 0;
    }
    return 0;
}

static void noisy_string(gen *g, out *o, const unsigned char *s, size_t n)
{
    char esc[16];
    out_str(o, "\"");
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        uint32_t cp;
        const size_t u = c >= 0x80 ? utf8_decode(s + i, n - i, &cp) : 0;
        if (u && gen_below(g, 2)) {
            snprintf(esc, sizeof esc, cp < 0x10000 ? "\\u%04X" : "\\U%08x", cp);
            out_str(o, esc);
            i += u;
            continue;
        }
        const bool must = c < 0x20 || c == 0x7f || c == '"' || c == '\\';
        if (must || gen_below(g, 8) == 0) {
            if (c < 0x80 && gen_below(g, 2))
                snprintf(esc, sizeof esc, "\\u%04x", c);
            else
                snprintf(esc, sizeof esc, gen_below(g, 2) ? "\\x%02x" : "\\x%02X", c);
            out_str(o, esc);
        } else {
            out_put(o, (const char *)&s[i], 1); /* raw, high bytes included */
        }
        i++;
    }
    out_str(o, "\"");
}

static void noisy_call(gen *g, out *o, const sl_ast_call *c, bool is_stage);

static void noisy_stages(gen *g, out *o, const sl_ast_pipeline *p)
{
    for (size_t i = 0; i < p->nstages; i++) {
        if (i) {
            noise(g, o);
            out_str(o, "|");
        }
        noise(g, o);
        noisy_call(g, o, &p->stages[i], true);
    }
}

static void noisy_value(gen *g, out *o, const sl_ast_value *v)
{
    switch (v->kind) {
    case SL_AST_INT:
        noisy_int(g, o, v->as.i);
        break;
    case SL_AST_FLOAT:
        noisy_float(g, o, v->as.f);
        break;
    case SL_AST_STRING:
        noisy_string(g, o, (const unsigned char *)v->as.str.data, v->as.str.len);
        break;
    case SL_AST_BOOL:
        out_str(o, v->as.b ? "true" : "false");
        break;
    case SL_AST_AUTO:
        out_str(o, "auto");
        break;
    case SL_AST_IDENT:
        out_str(o, v->as.call.name);
        break;
    case SL_AST_LIST:
        out_str(o, "[");
        for (size_t i = 0; i < v->as.list.count; i++) {
            noise(g, o);
            if (i) {
                out_str(o, ",");
                noise(g, o);
            }
            noisy_value(g, o, &v->as.list.items[i]);
        }
        noise(g, o);
        out_str(o, "]");
        break;
    case SL_AST_CALL:
        noisy_call(g, o, &v->as.call, false);
        break;
    case SL_AST_PIPELINE:
        noisy_stages(g, o, &v->as.pipeline);
        break;
    case SL_AST_PLACEHOLDER:
        out_str(o, "$");
        out_str(o, v->as.placeholder);
        break;
    }
}

static void noisy_call(gen *g, out *o, const sl_ast_call *c, bool is_stage)
{
    out_str(o, c->name);
    if (is_stage && !c->nargs && !c->nnamed && gen_below(g, 2))
        return;
    noise(g, o);
    out_str(o, "(");
    for (size_t i = 0; i < c->nargs + c->nnamed; i++) {
        noise(g, o);
        if (i) {
            out_str(o, ",");
            noise(g, o);
        }
        if (i < c->nargs) {
            noisy_value(g, o, &c->args[i]);
        } else {
            out_str(o, c->named[i - c->nargs].key);
            noise(g, o);
            out_str(o, "=");
            noise(g, o);
            noisy_value(g, o, &c->named[i - c->nargs].value);
        }
    }
    noise(g, o);
    out_str(o, ")");
}

enum { RANDOM_TREES = 3000 };

static void random_trees_round_trip_through_canonical_text(void **state)
{
    gen g = {.seed = 20240611, .cap = 1 << 20};
    g.mem = malloc(g.cap);
    for (int t = 0; t < RANDOM_TREES; t++) {
        g.used = 0;
        sl_ast_pipeline p;
        gen_stages(&g, &p, 1, 0);
        char *canon = print_new(&p);
        sl_ast *ast = parse_str(canon);
        if (!sl_ast_pipeline_equal(&p, sl_ast_root(ast)))
            fail_msg("tree %d: parse(print(t)) != t; text %s", t, canon);
        char *again = print_new(sl_ast_root(ast));
        assert_string_equal(canon, again);
        free(again);
        free(canon);
        sl_ast_free(ast);
    }
    free(g.mem);
}

static void random_trees_parse_from_noisy_text(void **state)
{
    gen g = {.seed = 7, .cap = 1 << 20};
    g.mem = malloc(g.cap);
    out o = {0};
    for (int t = 0; t < RANDOM_TREES; t++) {
        g.used = 0;
        sl_ast_pipeline p;
        gen_stages(&g, &p, 1, 0);
        o.len = 0;
        noise(&g, &o);
        noisy_stages(&g, &o, &p);
        noise(&g, &o);
        sl_ast *ast = parse_ok(o.buf, o.len);
        if (!sl_ast_pipeline_equal(&p, sl_ast_root(ast))) {
            char *canon = print_new(&p);
            fail_msg("tree %d: noisy text parsed to another tree\n text %s\n tree %s", t, o.buf,
                     canon);
        }
        sl_ast_free(ast);
    }
    free(o.buf);
    free(g.mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_texts_print_canonically),
        cmocka_unit_test(valid_texts_round_trip),
        cmocka_unit_test(invalid_texts_fail_at_position),
        cmocka_unit_test(nesting_of_64_brackets_parses),
        cmocka_unit_test(nesting_of_65_brackets_fails_at_the_65th),
        cmocka_unit_test(nesting_counts_list_brackets),
        cmocka_unit_test(very_deep_nesting_fails_without_crashing),
        cmocka_unit_test(text_over_one_mib_is_too_large),
        cmocka_unit_test(text_of_one_mib_parses),
        cmocka_unit_test(error_message_is_truncated_to_errcap),
        cmocka_unit_test(successful_parse_clears_err),
        cmocka_unit_test(null_text_or_out_is_inval),
        cmocka_unit_test(text_need_not_be_nul_terminated),
        cmocka_unit_test(many_keys_with_one_repeat_fail_at_the_repeat),
        cmocka_unit_test(many_distinct_keys_parse),
        cmocka_unit_test(tree_holds_stages_and_arguments),
        cmocka_unit_test(spans_point_at_the_source),
        cmocka_unit_test(nested_pipeline_binds_inside_one_argument),
        cmocka_unit_test(name_and_call_values_differ),
        cmocka_unit_test(strings_decode_escapes_and_keep_nul),
        cmocka_unit_test(keywords_become_values),
        cmocka_unit_test(integer_limits_are_exact),
        cmocka_unit_test(floats_are_correctly_rounded),
        cmocka_unit_test(floats_print_shortest_round_trip_form),
        cmocka_unit_test(random_doubles_round_trip_bit_exactly),
        cmocka_unit_test(strings_print_canonical_escapes),
        cmocka_unit_test(stage_and_value_print_alone),
        cmocka_unit_test(print_truncates_like_snprintf),
        cmocka_unit_test(print_refuses_trees_the_text_cannot_express),
        cmocka_unit_test(print_refuses_trees_deeper_than_the_limit),
        cmocka_unit_test(equality_ignores_spans_and_spelling),
        cmocka_unit_test(equality_tells_differences),
        cmocka_unit_test(equality_treats_every_nan_alike),
        cmocka_unit_test(positional_and_named_lookup),
        cmocka_unit_test(call_arg_binds_by_position_or_name),
        cmocka_unit_test(call_arg_given_twice_is_inval),
        cmocka_unit_test(call_arg_missing_required_is_inval),
        cmocka_unit_test(call_check_rejects_unknown_key),
        cmocka_unit_test(call_check_rejects_extra_positionals),
        cmocka_unit_test(typed_getters_read_their_kind),
        cmocka_unit_test(get_double_converts_integers),
        cmocka_unit_test(get_pipeline_views_a_call_as_one_stage),
        cmocka_unit_test(getters_leave_default_when_absent),
        cmocka_unit_test(getters_reject_other_kinds_with_position),
        cmocka_unit_test(kind_error_shortens_long_values),
        cmocka_unit_test(ast_error_formats_like_the_parser),
        cmocka_unit_test(kind_names),
        cmocka_unit_test(allocation_failures_return_nomem_and_leak_nothing),
        cmocka_unit_test(print_of_many_keys_survives_allocation_failure),
        cmocka_unit_test(random_trees_round_trip_through_canonical_text),
        cmocka_unit_test(random_trees_parse_from_noisy_text),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
