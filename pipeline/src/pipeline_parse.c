/*
 * Lexer and recursive-descent parser of the pipeline-string language (pipeline/GRAMMAR.md).
 *
 * Owns: text -> tree. The lexer is pulled one token at a time (peek, then consume by moving
 * the cursor), so the parser needs at most two tokens of lookahead (`name =` starts a named
 * argument). Errors stop the parse at the first problem met left to right; the one exception
 * is a repeated key, reported when its argument list closes (the check sorts the keys, so a
 * call with thousands of them stays O(n log n)).
 *
 * Building: a call's arguments and a pipeline's stages are unknown in number until their
 * closing token, so they are collected on three scratch stacks (values, named arguments,
 * stages) and copied into the tree's arena when complete. Nested constructs push above their
 * parent's entries and pop back before the parent continues, so one stack of each serves the
 * whole parse. Strings are decoded straight into the arena (never longer than their source).
 *
 * Limits: text at most SL_PIPELINE_TEXT_MAX bytes; at most SL_PIPELINE_MAX_DEPTH brackets
 * open at once, which also bounds the recursion (every recursive step opens a bracket). Every
 * allocation goes through sl_malloc; any failure frees everything and returns SL_ERR_NOMEM.
 *
 * Threading: reentrant; a parse touches only its own parser state.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include "pipeline_text_internal.h"
#include "sluice/alloc.h"

/* ---- tokens ------------------------------------------------------------------------------- */

typedef enum tok_type {
    T_END,
    T_NAME, /* keywords included: kw says which */
    T_INT,
    T_FLOAT,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_PIPE,
    T_EQUALS,
    T_PLACEHOLDER, /* '$' name */
    T_OTHER        /* a byte that starts no token */
} tok_type;

typedef struct token {
    tok_type type;
    size_t start, end; /* source bytes [start, end) */
    sl__keyword kw;    /* T_NAME */
    size_t str_len;    /* T_STRING: decoded length */
    union {
        int64_t i; /* T_INT */
        double f;  /* T_FLOAT */
    } num;
} token;

/* A growable array of one element type, used as a stack. */
typedef struct stack {
    unsigned char *data;
    size_t n, cap, elem;
} stack;

typedef struct parser {
    const char *text;
    size_t len;
    size_t pos; /* cursor: everything before it is consumed */
    int depth;  /* brackets open */
    sl_ast *ast;
    stack values; /* sl_ast_value */
    stack named;  /* sl_ast_arg */
    stack stages; /* sl_ast_stage */
    char *err;
    size_t errcap;
} parser;

static int fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__ast_verror(p->err, p->errcap, SL_ERR_SYNTAX, at, fmt, ap);
    va_end(ap);
    return SL_ERR_SYNTAX;
}

static int out_of_memory(parser *p)
{
    if (p->err && p->errcap)
        snprintf(p->err, p->errcap, "pipeline: out of memory");
    return SL_ERR_NOMEM;
}

static unsigned char at(const parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->text[i] : 0;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Most source bytes quoted in a message, so it stays one short line. */
enum { QUOTE_MAX = 32 };

/* Source bytes [start, end) for a message: at most QUOTE_MAX of them, then "...". Only called
 * on names and numbers, which are ASCII. */
static const char *quote(const parser *p, size_t start, size_t end, char *buf, size_t cap)
{
    const size_t n = end - start;
    snprintf(buf, cap, "%.*s%s", (int)SL_MIN(n, (size_t)QUOTE_MAX), p->text + start,
             n > QUOTE_MAX ? "..." : "");
    return buf;
}

/* What a token is, for "found ..." in messages. */
static const char *describe(const parser *p, const token *t, char *buf, size_t cap)
{
    static const char *const punct[] = {
        [T_LPAREN] = "'('", [T_RPAREN] = "')'", [T_LBRACKET] = "'['", [T_RBRACKET] = "']'",
        [T_COMMA] = "','",  [T_PIPE] = "'|'",   [T_EQUALS] = "'='"};
    char q[QUOTE_MAX + 4];
    switch (t->type) {
    case T_END:
        return "end of text";
    case T_NAME:
        quote(p, t->start, t->end, q, sizeof q);
        snprintf(buf, cap, t->kw ? "keyword '%s'" : "name '%s'", q);
        return buf;
    case T_INT:
    case T_FLOAT:
        snprintf(buf, cap, "number %s", quote(p, t->start, t->end, q, sizeof q));
        return buf;
    case T_STRING:
        return "a string";
    case T_PLACEHOLDER:
        snprintf(buf, cap, "placeholder '%s'", quote(p, t->start, t->end, q, sizeof q));
        return buf;
    case T_OTHER: {
        const unsigned char c = at(p, t->start);
        if (c >= 0x20 && c < 0x7f)
            snprintf(buf, cap, "'%c'", c);
        else
            snprintf(buf, cap, "byte 0x%02x", c);
        return buf;
    }
    default:
        return punct[t->type];
    }
}

/* ---- lexer -------------------------------------------------------------------------------- */

/* Whitespace (space, tab, CR, LF) and comments ('#' to the end of the line). */
static size_t skip_blank(const parser *p, size_t i)
{
    for (;;) {
        const unsigned char c = at(p, i);
        if (i < p->len && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            i++;
        } else if (i < p->len && c == '#') {
            while (i < p->len && p->text[i] != '\n')
                i++;
        } else {
            return i;
        }
    }
}

/* digit ( '_'? digit )*: returns the index after the run (i itself when there is none). */
static size_t digit_run(const parser *p, size_t i)
{
    if (!is_digit(at(p, i)))
        return i;
    i++;
    for (;;) {
        if (is_digit(at(p, i)))
            i++;
        else if (at(p, i) == '_' && is_digit(at(p, i + 1)))
            i += 2;
        else
            return i;
    }
}

static int lex_number(parser *p, size_t start, token *t)
{
    char q[QUOTE_MAX + 4];
    size_t i = start;
    const bool negative = at(p, i) == '-';
    if (at(p, i) == '-' || at(p, i) == '+')
        i++;
    bool is_float = false;
    if (at(p, i) == 'i' && at(p, i + 1) == 'n' && at(p, i + 2) == 'f' &&
        !sl__ast_name_char(at(p, i + 3))) {
        /* Signed infinity; bare `inf` is a keyword, read as a name. */
        t->type = T_FLOAT;
        t->end = i + 3;
        t->num.f = negative ? -INFINITY : INFINITY;
        return 0;
    }
    const size_t int_end = digit_run(p, i);
    size_t j = int_end;
    if (at(p, j) == '.' && (j > i || is_digit(at(p, j + 1)))) {
        is_float = true;
        j = digit_run(p, j + 1);
    }
    if (j > i && (at(p, j) == 'e' || at(p, j) == 'E')) {
        size_t k = j + 1;
        if (at(p, k) == '+' || at(p, k) == '-')
            k++;
        const size_t exp_end = digit_run(p, k);
        if (exp_end == k) {
            size_t end = k;
            while (sl__ast_name_char(at(p, end)) || at(p, end) == '.')
                end++;
            return fail(p, start, "malformed number '%s': exponent without digits",
                        quote(p, start, end, q, sizeof q));
        }
        is_float = true;
        j = exp_end;
    }
    /* A number glued to a name character or a second '.' (1.2.3, 12abc, 1_) is one malformed
     * word, not two tokens. */
    if (sl__ast_name_char(at(p, j)) || at(p, j) == '.') {
        size_t end = j;
        while (sl__ast_name_char(at(p, end)) || at(p, end) == '.')
            end++;
        return fail(p, start, "malformed number '%s'", quote(p, start, end, q, sizeof q));
    }
    t->end = j;
    if (!is_float) {
        /* Magnitude in uint64 so INT64_MIN, whose magnitude int64 cannot hold, is exact. */
        uint64_t mag = 0;
        for (size_t k = i; k < j; k++) {
            if (at(p, k) == '_')
                continue;
            const unsigned d = at(p, k) - '0';
            if (mag > (UINT64_MAX - d) / 10) {
                mag = UINT64_MAX;
                break;
            }
            mag = mag * 10 + d;
        }
        const uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (mag > limit)
            return fail(p, start, "integer %s does not fit in 64 bits",
                        quote(p, start, j, q, sizeof q));
        t->type = T_INT;
        t->num.i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                   : negative                     ? -(int64_t)mag
                                                  : (int64_t)mag;
        return 0;
    }
    /* strtod reads no '_': copy the literal without them. */
    char small[128];
    char *buf = j - start < sizeof small ? small : sl_malloc(j - start + 1);
    if (!buf)
        return out_of_memory(p);
    size_t n = 0;
    for (size_t k = start; k < j; k++)
        if (at(p, k) != '_')
            buf[n++] = (char)at(p, k);
    buf[n] = '\0';
    errno = 0;
    char *end;
    const double f = sl__ast_strtod(buf, &end);
    const bool overflow = errno == ERANGE && isinf(f);
    const bool whole = end == buf + n;
    if (buf != small)
        sl_free(buf);
    if (overflow)
        return fail(p, start, "float %s is out of range (larger than 1.7976931348623157e308)",
                    quote(p, start, j, q, sizeof q));
    if (!whole) /* the lexer's grammar is a subset of strtod's; this cannot happen */
        return fail(p, start, "malformed number '%s'", quote(p, start, j, q, sizeof q));
    t->type = T_FLOAT;
    t->num.f = f; /* underflow rounds to a subnormal or zero, as strtod does */
    return 0;
}

static size_t utf8_length(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    const size_t n = utf8_length(cp);
    static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
    for (size_t k = n - 1; k > 0; k--) {
        out[k] = (char)(0x80 | (cp & 0x3f));
        cp >>= 6;
    }
    out[0] = (char)(lead[n] | cp);
    return n;
}

/* Reads the escape whose backslash is at i; on success *next is the index after it and *cp
 * the code point (`\xHH` gives a raw byte: *is_byte). */
static int lex_escape(parser *p, size_t i, size_t *next, uint32_t *cp, bool *is_byte)
{
    const unsigned char e = at(p, i + 1);
    *is_byte = false;
    int digits = 0;
    switch (e) {
    case '"':
    case '\\':
        *cp = e;
        break;
    case 'n':
        *cp = '\n';
        break;
    case 't':
        *cp = '\t';
        break;
    case 'r':
        *cp = '\r';
        break;
    case 'x':
        digits = 2;
        *is_byte = true;
        break;
    case 'u':
        digits = 4;
        break;
    case 'U':
        digits = 8;
        break;
    default:
        if (e >= 0x20 && e < 0x7f)
            return fail(p, i,
                        "unknown escape '\\%c' in string (known: \\\" \\\\ \\n \\t \\r "
                        "\\xHH \\uHHHH \\UHHHHHHHH)",
                        e);
        return fail(p, i, "unknown escape: '\\' followed by byte 0x%02x in string", e);
    }
    if (!digits) {
        *next = i + 2;
        return 0;
    }
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        const int h = hex_value(at(p, i + 2 + (size_t)k));
        if (h < 0)
            return fail(p, i, "escape '\\%c' needs %d hex digits", e, digits);
        v = v << 4 | (uint32_t)h;
    }
    if (!*is_byte && v >= 0xd800 && v <= 0xdfff)
        return fail(p, i, "escape '\\%c' names U+%04" PRIX32 ", a surrogate, not a character", e,
                    v);
    if (!*is_byte && v > 0x10ffff)
        return fail(p, i, "escape '\\%c' names U+%" PRIX32 ", past U+10FFFF", e, v);
    *cp = v;
    *next = i + 2 + (size_t)digits;
    return 0;
}

/* Checks the string literal starting at the quote `start` and measures its decoded bytes. */
static int lex_string(parser *p, size_t start, token *t)
{
    size_t i = start + 1, n = 0;
    for (;;) {
        if (i >= p->len)
            return fail(p, start, "unterminated string: no closing '\"'");
        const unsigned char c = at(p, i);
        if (c == '"')
            break;
        if (c == '\\') {
            if (i + 1 >= p->len)
                return fail(p, start, "unterminated string: no closing '\"'");
            uint32_t cp;
            bool is_byte;
            SL_TRY(lex_escape(p, i, &i, &cp, &is_byte));
            n += is_byte ? 1 : utf8_length(cp);
        } else if (c == '\n') {
            return fail(p, i, "line break in string (opened at position %zu): write \\n",
                        start + 1);
        } else if (c < 0x20 || c == 0x7f) {
            return fail(p, i, "control byte 0x%02x in string: write \\x%02x", c, c);
        } else {
            n++;
            i++;
        }
    }
    t->type = T_STRING;
    t->end = i + 1;
    t->str_len = n;
    return 0;
}

/* The token at or after cursor i. Malformed numbers and strings fail here. */
static int lex(parser *p, size_t i, token *t)
{
    i = skip_blank(p, i);
    memset(t, 0, sizeof *t);
    t->start = i;
    t->end = i + 1;
    if (i >= p->len) {
        t->type = T_END;
        t->end = i;
        return 0;
    }
    const unsigned char c = at(p, i);
    switch (c) {
    case '(':
        t->type = T_LPAREN;
        return 0;
    case ')':
        t->type = T_RPAREN;
        return 0;
    case '[':
        t->type = T_LBRACKET;
        return 0;
    case ']':
        t->type = T_RBRACKET;
        return 0;
    case ',':
        t->type = T_COMMA;
        return 0;
    case '|':
        t->type = T_PIPE;
        return 0;
    case '=':
        t->type = T_EQUALS;
        return 0;
    case '"':
        return lex_string(p, i, t);
    case '$': {
        /* A placeholder is '$' and a name with nothing between; '$' alone starts no token. */
        if (!sl__ast_name_start(at(p, i + 1)))
            break;
        size_t j = i + 2;
        while (sl__ast_name_char(at(p, j)))
            j++;
        if (sl__ast_keyword(p->text + i + 1, j - i - 1) != SL__KW_NONE)
            return fail(p, i + 1, "keyword '%.*s' cannot name a placeholder", (int)(j - i - 1),
                        p->text + i + 1);
        t->type = T_PLACEHOLDER;
        t->end = j;
        return 0;
    }
    default:
        break;
    }
    if (sl__ast_name_start(c)) {
        size_t j = i + 1;
        while (sl__ast_name_char(at(p, j)))
            j++;
        t->type = T_NAME;
        t->end = j;
        t->kw = sl__ast_keyword(p->text + i, j - i);
        return 0;
    }
    const unsigned char d = at(p, i + 1);
    if (is_digit(c) || (c == '.' && is_digit(d)) ||
        ((c == '-' || c == '+') &&
         (is_digit(d) || (d == '.' && is_digit(at(p, i + 2))) || sl__ast_name_start(d))))
        return lex_number(p, i, t);
    t->type = T_OTHER;
    return 0;
}

static int peek(parser *p, token *t)
{
    return lex(p, p->pos, t);
}

/* ---- scratch stacks and the arena ----------------------------------------------------------- */

static int push(parser *p, stack *s, const void *elem)
{
    if (s->n == s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 16;
        void *grown = sl_realloc(s->data, cap * s->elem);
        if (!grown)
            return out_of_memory(p);
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->n * s->elem, elem, s->elem);
    s->n++;
    return 0;
}

/* Moves entries [base, n) of s into the arena: *out gets the copy (NULL when there are
 * none), *count their number, and the stack drops back to base. */
static int pop_into_arena(parser *p, stack *s, size_t base, const void **out, size_t *count)
{
    *count = s->n - base;
    *out = NULL;
    if (*count) {
        void *dst = sl__ast_alloc(p->ast, *count * s->elem);
        if (!dst)
            return out_of_memory(p);
        memcpy(dst, s->data + base * s->elem, *count * s->elem);
        *out = dst;
    }
    s->n = base;
    return 0;
}

static int copy_name(parser *p, const token *t, const char **out)
{
    const size_t n = t->end - t->start;
    char *s = sl__ast_alloc(p->ast, n + 1);
    if (!s)
        return out_of_memory(p);
    memcpy(s, p->text + t->start, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* Decodes a string token lex_string already checked, into the arena. */
static int copy_string(parser *p, const token *t, sl_ast_value *v)
{
    char *s = sl__ast_alloc(p->ast, t->str_len + 1);
    if (!s)
        return out_of_memory(p);
    size_t n = 0;
    for (size_t i = t->start + 1; i < t->end - 1;) {
        if (at(p, i) != '\\') {
            s[n++] = (char)at(p, i++);
            continue;
        }
        uint32_t cp;
        bool is_byte;
        const int rc = lex_escape(p, i, &i, &cp, &is_byte);
        assert(rc == 0);
        (void)rc;
        if (is_byte)
            s[n++] = (char)cp;
        else
            n += utf8_put(cp, s + n);
    }
    assert(n == t->str_len);
    s[n] = '\0';
    v->kind = SL_AST_STRING;
    v->as.str.data = s;
    v->as.str.len = n;
    return 0;
}

/* ---- parser ------------------------------------------------------------------------------- */

static int parse_element(parser *p, sl_ast_value *v);

static int open_bracket(parser *p, const token *t)
{
    if (p->depth == SL_PIPELINE_MAX_DEPTH)
        return fail(p, t->start, "nesting deeper than %d brackets", SL_PIPELINE_MAX_DEPTH);
    p->depth++;
    p->pos = t->end;
    return 0;
}

/* After an argument or list item: ',' continues (and must be followed by another), the
 * closing token ends. Sets *done when it ended. `where` names the construct in messages. */
static int after_item(parser *p, tok_type close, const char *where, bool *done)
{
    char what[64];
    token t;
    SL_TRY(peek(p, &t));
    if (t.type == close) {
        p->pos = t.end;
        *done = true;
        return 0;
    }
    if (t.type != T_COMMA)
        return fail(p, t.start, "expected ',' or '%c' after %s, found %s",
                    close == T_RPAREN ? ')' : ']', where, describe(p, &t, what, sizeof what));
    p->pos = t.end;
    SL_TRY(peek(p, &t));
    if (t.type == close)
        return fail(p, t.start, "expected a value after ',', found %s",
                    describe(p, &t, what, sizeof what));
    *done = false;
    return 0;
}

/* '(' args ')' after a name; the cursor is on the '('. Fills c's arguments and span end. */
static int parse_args(parser *p, sl_ast_call *c)
{
    char what[64], where[QUOTE_MAX + 40];
    token t;
    SL_TRY(peek(p, &t));
    SL_TRY(open_bracket(p, &t));
    snprintf(where, sizeof where, "an argument of %.*s", QUOTE_MAX, c->name);
    const size_t values_base = p->values.n, named_base = p->named.n;

    SL_TRY(peek(p, &t));
    bool done = t.type == T_RPAREN;
    if (done)
        p->pos = t.end;
    while (!done) {
        SL_TRY(peek(p, &t));
        token eq = {0};
        if (t.type == T_NAME)
            SL_TRY(lex(p, t.end, &eq));
        if (t.type == T_NAME && eq.type == T_EQUALS) {
            if (t.kw)
                return fail(p, t.start, "keyword '%s' cannot name an argument",
                            quote(p, t.start, t.end, what, sizeof what));
            sl_ast_arg arg = {0};
            SL_TRY(copy_name(p, &t, &arg.key));
            p->pos = eq.end;
            SL_TRY(parse_element(p, &arg.value));
            arg.span =
                (sl_ast_span){t.start, arg.value.span.offset + arg.value.span.length - t.start};
            SL_TRY(push(p, &p->named, &arg));
        } else {
            if (p->named.n > named_base)
                return fail(p, t.start,
                            "positional argument after named arguments in the arguments of %.*s",
                            QUOTE_MAX, c->name);
            sl_ast_value v;
            SL_TRY(parse_element(p, &v));
            SL_TRY(push(p, &p->values, &v));
        }
        SL_TRY(after_item(p, T_RPAREN, where, &done));
    }
    p->depth--;
    c->span.length = p->pos - c->span.offset;

    const void *args, *named;
    SL_TRY(pop_into_arena(p, &p->values, values_base, &args, &c->nargs));
    SL_TRY(pop_into_arena(p, &p->named, named_base, &named, &c->nnamed));
    c->args = args;
    c->named = named;
    size_t dup, first;
    const int rc = sl__ast_find_duplicate_key(c->named, c->nnamed, &dup, &first);
    if (rc < 0)
        return out_of_memory(p);
    if (rc)
        return fail(p, c->named[dup].span.offset,
                    "duplicate argument '%.*s' in %.*s (first given at position %zu)", QUOTE_MAX,
                    c->named[dup].key, QUOTE_MAX, c->name, c->named[first].span.offset + 1);
    return 0;
}

/* name [ '(' args ')' ] where the name token t is already peeked and known to be a name. */
static int parse_call(parser *p, const token *t, sl_ast_call *c)
{
    memset(c, 0, sizeof *c);
    SL_TRY(copy_name(p, t, &c->name));
    c->span = (sl_ast_span){t->start, t->end - t->start};
    p->pos = t->end;
    token next;
    SL_TRY(peek(p, &next));
    if (next.type == T_LPAREN)
        SL_TRY(parse_args(p, c));
    return 0;
}

/* A stage of a pipeline: a name that is not a keyword, with or without arguments. */
static int parse_stage(parser *p, sl_ast_stage *s, bool after_pipe)
{
    char what[64];
    token t;
    SL_TRY(peek(p, &t));
    if (t.type != T_NAME || t.kw)
        return fail(p, t.start, "expected a stage name%s, found %s", after_pipe ? " after '|'" : "",
                    describe(p, &t, what, sizeof what));
    return parse_call(p, &t, s);
}

/* stage ( '|' stage )*, with `first` already parsed; stages are collected on the stack. */
static int parse_stages(parser *p, const sl_ast_stage *first, sl_ast_pipeline *out)
{
    const size_t base = p->stages.n;
    SL_TRY(push(p, &p->stages, first));
    for (;;) {
        token t;
        SL_TRY(peek(p, &t));
        if (t.type != T_PIPE)
            break;
        p->pos = t.end;
        sl_ast_stage s;
        SL_TRY(parse_stage(p, &s, true));
        SL_TRY(push(p, &p->stages, &s));
    }
    const sl_ast_stage *last = (const sl_ast_stage *)p->stages.data + p->stages.n - 1;
    out->span = (sl_ast_span){first->span.offset,
                              last->span.offset + last->span.length - first->span.offset};
    const void *stages;
    SL_TRY(pop_into_arena(p, &p->stages, base, &stages, &out->nstages));
    out->stages = stages;
    return 0;
}

static int parse_list(parser *p, const token *open, sl_ast_value *v)
{
    SL_TRY(open_bracket(p, open));
    const size_t base = p->values.n;
    token t;
    SL_TRY(peek(p, &t));
    bool done = t.type == T_RBRACKET;
    if (done)
        p->pos = t.end;
    while (!done) {
        sl_ast_value item;
        SL_TRY(parse_element(p, &item));
        SL_TRY(push(p, &p->values, &item));
        SL_TRY(after_item(p, T_RBRACKET, "a list item", &done));
    }
    p->depth--;
    v->kind = SL_AST_LIST;
    const void *items;
    SL_TRY(pop_into_arena(p, &p->values, base, &items, &v->as.list.count));
    v->as.list.items = items;
    return 0;
}

/* One value: number, string, keyword, name, call or list. */
static int parse_value(parser *p, sl_ast_value *v)
{
    char what[64];
    token t;
    SL_TRY(peek(p, &t));
    memset(v, 0, sizeof *v);
    switch (t.type) {
    case T_INT:
        v->kind = SL_AST_INT;
        v->as.i = t.num.i;
        p->pos = t.end;
        break;
    case T_FLOAT:
        v->kind = SL_AST_FLOAT;
        v->as.f = t.num.f;
        p->pos = t.end;
        break;
    case T_STRING:
        SL_TRY(copy_string(p, &t, v));
        p->pos = t.end;
        break;
    case T_PLACEHOLDER: {
        const token name = {.type = T_NAME, .start = t.start + 1, .end = t.end};
        SL_TRY(copy_name(p, &name, &v->as.placeholder));
        v->kind = SL_AST_PLACEHOLDER;
        p->pos = t.end;
        break;
    }
    case T_NAME:
        switch (t.kw) {
        case SL__KW_TRUE:
        case SL__KW_FALSE:
            v->kind = SL_AST_BOOL;
            v->as.b = t.kw == SL__KW_TRUE;
            break;
        case SL__KW_AUTO:
            v->kind = SL_AST_AUTO;
            break;
        case SL__KW_INF:
            v->kind = SL_AST_FLOAT;
            v->as.f = INFINITY;
            break;
        case SL__KW_NAN:
            v->kind = SL_AST_FLOAT;
            v->as.f = NAN;
            break;
        case SL__KW_NONE:
            SL_TRY(parse_call(p, &t, &v->as.call));
            v->kind = p->pos > t.end ? SL_AST_CALL : SL_AST_IDENT;
            v->span = v->as.call.span;
            return 0;
        }
        p->pos = t.end;
        break;
    case T_LBRACKET:
        SL_TRY(parse_list(p, &t, v));
        break;
    default:
        return fail(p, t.start, "expected a value, found %s", describe(p, &t, what, sizeof what));
    }
    v->span = (sl_ast_span){t.start, p->pos - t.start};
    return 0;
}

/* A value where arguments and list items stand: a value, or a pipeline when '|' follows a
 * name or call. '|' binds tighter than ',' there, so `f(a | b, c)` has two arguments. */
static int parse_element(parser *p, sl_ast_value *v)
{
    SL_TRY(parse_value(p, v));
    token t;
    SL_TRY(peek(p, &t));
    if (t.type != T_PIPE)
        return 0;
    if (v->kind != SL_AST_IDENT && v->kind != SL_AST_CALL)
        return fail(p, v->span.offset, "expected a stage before '|', found %s %s",
                    v->kind == SL_AST_INT ? "an" : "a", sl_ast_kind_name(v->kind));
    const sl_ast_stage first = v->as.call;
    sl_ast_pipeline pipeline;
    SL_TRY(parse_stages(p, &first, &pipeline));
    v->kind = SL_AST_PIPELINE;
    v->as.pipeline = pipeline;
    v->span = pipeline.span;
    return 0;
}

static int parse_text(parser *p)
{
    char what[64];
    token t;
    SL_TRY(peek(p, &t));
    if (t.type == T_END)
        return fail(p, t.start, "empty pipeline: expected a stage name");
    sl_ast_stage first;
    SL_TRY(parse_stage(p, &first, false));
    SL_TRY(parse_stages(p, &first, &p->ast->root));
    SL_TRY(peek(p, &t));
    if (t.type != T_END)
        return fail(p, t.start, "expected '|' or end of text after a stage, found %s",
                    describe(p, &t, what, sizeof what));
    return 0;
}

int sl_pipeline_text_parse(const char *text, size_t len, sl_ast **out, char *err, size_t errcap)
{
    if (err && errcap)
        err[0] = '\0';
    if (!out)
        return SL_ERR_INVAL;
    *out = NULL;
    if (!text)
        return SL_ERR_INVAL;
    if (len > SL_PIPELINE_TEXT_MAX)
        return sl_ast_error(err, errcap, SL_ERR_TOO_LARGE, (sl_ast_span){SL_PIPELINE_TEXT_MAX, 0},
                            "text longer than %d bytes", SL_PIPELINE_TEXT_MAX);
    parser p = {
        .text = text,
        .len = len,
        .values = {.elem = sizeof(sl_ast_value)},
        .named = {.elem = sizeof(sl_ast_arg)},
        .stages = {.elem = sizeof(sl_ast_stage)},
        .err = err,
        .errcap = errcap,
    };
    p.ast = sl_calloc(1, sizeof *p.ast);
    if (!p.ast)
        return out_of_memory(&p);
    /* Roughly what a tree of this text needs, so most parses use one block. */
    p.ast->next_block = len * 8;
    const int rc = parse_text(&p);
    sl_free(p.values.data);
    sl_free(p.named.data);
    sl_free(p.stages.data);
    if (rc < 0) {
        sl_ast_free(p.ast);
        return rc;
    }
    *out = p.ast;
    return 0;
}
