/*
 * The canonical printer: one text per tree, defined in pipeline/GRAMMAR.md "Canonical form".
 * Parsing the printed text gives a tree equal to the one printed, and printing that gives the
 * same text again; tests/unit/test_pipeline_text.c checks both on every table entry and on
 * thousands of random trees, and the fuzz target on whatever it finds.
 *
 * The printer also checks the rules the parser guarantees (names, stage counts, unique keys,
 * depth), so a hand-built tree that the text form cannot express is refused rather than
 * printed as text that would parse differently.
 *
 * Threading: reentrant; reads the tree only.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "pipeline_text_internal.h"

/* snprintf-style output: counts every byte, stores those that fit, leaving room for a NUL. */
typedef struct writer {
    char *buf;
    size_t cap;
    size_t len;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        const size_t room = w->cap - 1 - SL_MIN(w->len, w->cap - 1);
        memcpy(w->buf + w->len, s, SL_MIN(n, room));
    }
    w->len += n;
}

static void puts_(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static int finish(writer *w)
{
    if (w->cap)
        w->buf[SL_MIN(w->len, w->cap - 1)] = '\0';
    return w->len > INT_MAX ? SL_ERR_TOO_LARGE : (int)w->len;
}

/* ---- numbers ------------------------------------------------------------------------------ */

/* The decimal of v (> 0, finite) correctly rounded to prec significant digits, as digits
 * (not NUL-terminated) and a decimal exponent; true when it reads back as v exactly. */
static bool shortest_candidate(double v, int prec, char *digits, int *ndigits, int *exp10)
{
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    int n = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
    *ndigits = n;
    *exp10 = atoi(p + 1);
    char check[48];
    snprintf(check, sizeof check, "%c.%.*se%d", digits[0], n - 1, digits + 1, *exp10);
    return sl__ast_strtod(check, NULL) == v;
}

/* The shortest decimal that reads back as v, in the form GRAMMAR.md fixes: plain digits with
 * a '.' when the decimal exponent E is in [-4, 16), else d[.ddd]e<E>; always recognisable as
 * a float (never bare digits). out holds at least 32 bytes. */
static void format_double(double v, char *out)
{
    if (isnan(v)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == 0) {
        strcpy(out, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    /* %.*e gives the correctly rounded decimal of each length, and if one length reads back
     * exactly so does every longer one (it is at least as near), so a binary search over
     * 1..17 digits (17 always read back) finds the shortest in at most five tries. The radix
     * character of %e follows the host's locale, so the digits are picked out of its output
     * and the candidate is rebuilt with '.' before strtod (C locale) checks it. */
    char digits[24];
    int ndigits = 0, exp10 = 0;
    int lo = 1, hi = 17;
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (shortest_candidate(fabs(v), mid, digits, &ndigits, &exp10))
            hi = mid;
        else
            lo = mid + 1;
    }
    shortest_candidate(fabs(v), lo, digits, &ndigits, &exp10);
    while (ndigits > 1 && digits[ndigits - 1] == '0')
        ndigits--;

    char *o = out;
    if (v < 0)
        *o++ = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = -1; i > exp10; i--)
                *o++ = '0';
            memcpy(o, digits, (size_t)ndigits);
            o += ndigits;
        } else {
            /* exp10 + 1 digits before the point (zero-padded), the rest (or "0") after. */
            for (int i = 0; i <= exp10; i++)
                *o++ = i < ndigits ? digits[i] : '0';
            *o++ = '.';
            if (ndigits > exp10 + 1) {
                memcpy(o, digits + exp10 + 1, (size_t)(ndigits - exp10 - 1));
                o += ndigits - exp10 - 1;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
    } else {
        *o++ = digits[0];
        if (ndigits > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(ndigits - 1));
            o += ndigits - 1;
        }
        sprintf(o, "e%d", exp10);
    }
}

/* ---- strings ------------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) of two or more bytes starting at s, or 0 when s does not start one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    const unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* below: overlong */
        else if (c == 0xed)
            hi = 0x9f; /* above: surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* below: overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above: past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Double-quoted; \" \\ \n \t \r by name; other control bytes, DEL and bytes that are not
 * part of well-formed UTF-8 as \xHH (lowercase); everything else as itself. */
static void put_string(writer *w, const char *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)data;
    put(w, "\"", 1);
    size_t i = 0;
    while (i < len) {
        /* The longest run that needs no escaping goes out in one put. */
        size_t j = i;
        for (;;) {
            if (j == len)
                break;
            const unsigned char c = s[j];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                j++;
                continue;
            }
            const size_t u = c >= 0x80 ? utf8_sequence(s + j, len - j) : 0;
            if (!u)
                break;
            j += u;
        }
        put(w, data + i, j - i);
        if (j == len)
            break;
        const unsigned char c = s[j];
        char esc[4] = {'\\', 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        default:
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            n = 4;
        }
        put(w, esc, n);
        i = j + 1;
    }
    put(w, "\"", 1);
}

/* ---- tree --------------------------------------------------------------------------------- */

static int print_value(writer *w, const sl_ast_value *v, int depth);

static int print_name(writer *w, const char *name)
{
    if (!sl__ast_name_ok(name))
        return SL_ERR_INVAL;
    puts_(w, name);
    return 0;
}

/* A stage prints without parentheses when it has no arguments; a call value always has them
 * (`f()` and `f` are different values). depth = brackets already open around c. */
static int print_call(writer *w, const sl_ast_call *c, int depth, bool is_stage)
{
    SL_TRY(print_name(w, c->name));
    if ((c->nargs && !c->args) || (c->nnamed && !c->named))
        return SL_ERR_INVAL;
    if (is_stage && c->nargs == 0 && c->nnamed == 0)
        return 0;
    if (depth + 1 > SL_PIPELINE_MAX_DEPTH)
        return SL_ERR_INVAL;
    size_t dup, first;
    const int rc = sl__ast_find_duplicate_key(c->named, c->nnamed, &dup, &first);
    if (rc != 0)
        return rc < 0 ? rc : SL_ERR_INVAL;
    put(w, "(", 1);
    for (size_t i = 0; i < c->nargs; i++) {
        if (i)
            put(w, ", ", 2);
        SL_TRY(print_value(w, &c->args[i], depth + 1));
    }
    for (size_t i = 0; i < c->nnamed; i++) {
        if (i || c->nargs)
            put(w, ", ", 2);
        SL_TRY(print_name(w, c->named[i].key));
        put(w, "=", 1);
        SL_TRY(print_value(w, &c->named[i].value, depth + 1));
    }
    put(w, ")", 1);
    return 0;
}

static int print_stages(writer *w, const sl_ast_pipeline *p, int depth, size_t min_stages)
{
    if (p->nstages < min_stages || !p->stages)
        return SL_ERR_INVAL;
    for (size_t i = 0; i < p->nstages; i++) {
        if (i)
            put(w, " | ", 3);
        SL_TRY(print_call(w, &p->stages[i], depth, true));
    }
    return 0;
}

static int print_value(writer *w, const sl_ast_value *v, int depth)
{
    char num[40];
    switch (v->kind) {
    case SL_AST_INT:
        snprintf(num, sizeof num, "%" PRId64, v->as.i);
        puts_(w, num);
        return 0;
    case SL_AST_FLOAT:
        format_double(v->as.f, num);
        puts_(w, num);
        return 0;
    case SL_AST_STRING:
        if (v->as.str.len && !v->as.str.data)
            return SL_ERR_INVAL;
        put_string(w, v->as.str.data, v->as.str.len);
        return 0;
    case SL_AST_BOOL:
        puts_(w, v->as.b ? "true" : "false");
        return 0;
    case SL_AST_AUTO:
        puts_(w, "auto");
        return 0;
    case SL_AST_IDENT:
        if (v->as.call.nargs || v->as.call.nnamed)
            return SL_ERR_INVAL;
        return print_name(w, v->as.call.name);
    case SL_AST_LIST:
        if (depth + 1 > SL_PIPELINE_MAX_DEPTH || (v->as.list.count && !v->as.list.items))
            return SL_ERR_INVAL;
        put(w, "[", 1);
        for (size_t i = 0; i < v->as.list.count; i++) {
            if (i)
                put(w, ", ", 2);
            SL_TRY(print_value(w, &v->as.list.items[i], depth + 1));
        }
        put(w, "]", 1);
        return 0;
    case SL_AST_CALL:
        return print_call(w, &v->as.call, depth, false);
    case SL_AST_PIPELINE:
        /* One stage would read back as a call or a name, not a pipeline. */
        return print_stages(w, &v->as.pipeline, depth, 2);
    case SL_AST_PLACEHOLDER:
        if (!sl__ast_name_ok(v->as.placeholder))
            return SL_ERR_INVAL;
        put(w, "$", 1);
        puts_(w, v->as.placeholder);
        return 0;
    }
    return SL_ERR_INVAL;
}

/* Runs one printer; on a refused tree the buffer holds an empty string. */
static int run(writer *w, int rc)
{
    if (rc < 0) {
        if (w->cap)
            w->buf[0] = '\0';
        return rc;
    }
    return finish(w);
}

int sl_ast_pipeline_print(const sl_ast_pipeline *p, char *buf, size_t cap)
{
    writer w = {buf, cap, 0};
    return run(&w, print_stages(&w, p, 0, 1));
}

int sl_ast_stage_print(const sl_ast_stage *s, char *buf, size_t cap)
{
    writer w = {buf, cap, 0};
    return run(&w, print_call(&w, s, 0, true));
}

int sl_ast_value_print(const sl_ast_value *v, char *buf, size_t cap)
{
    writer w = {buf, cap, 0};
    return run(&w, print_value(&w, v, 0));
}

int sl_ast_print(const sl_ast *ast, char *buf, size_t cap)
{
    if (!ast)
        return SL_ERR_INVAL;
    return sl_ast_pipeline_print(sl_ast_root(ast), buf, cap);
}
