/*
 * The pipeline tree once parsed: its arena and lifetime, deep equality, and the helpers the
 * engine reads stage arguments with (binding by position or name, typed reads, messages in
 * the parser's format).
 *
 * Owns: struct sl_ast's arena (see pipeline_text_internal.h), the shared name and keyword
 * rules, the duplicate-key finder the parser and printer both use, and the C locale handle.
 *
 * Threading: everything but sl__ast_alloc (called only by the parse that owns the tree) reads
 * immutable trees and is reentrant.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "pipeline_text_internal.h"
#include "sluice/alloc.h"

/* ---- arena ------------------------------------------------------------------------------ */

/* Node alignment: the strictest member of any node is 8 bytes (int64_t, double, pointers). */
enum { ARENA_ALIGN = 16, ARENA_FIRST_BLOCK = 4096 };

struct sl__ast_block {
    sl__ast_block *next;
    size_t cap;  /* bytes of data */
    size_t used; /* bytes of data handed out */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void *sl__ast_alloc(sl_ast *ast, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    sl__ast_block *b = ast->blocks;
    if (!b || b->cap - b->used < size) {
        if (ast->next_block < ARENA_FIRST_BLOCK)
            ast->next_block = ARENA_FIRST_BLOCK;
        /* Doubling keeps the block count logarithmic in the tree size; a request larger than
         * the next block gets a block of its own size. */
        const size_t cap = SL_MAX(size, ast->next_block);
        b = sl_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = ast->blocks;
        b->cap = cap;
        b->used = 0;
        ast->blocks = b;
        ast->next_block = cap * 2;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void sl_ast_free(sl_ast *ast)
{
    if (!ast)
        return;
    for (sl__ast_block *b = ast->blocks, *next; b; b = next) {
        next = b->next;
        sl_free(b);
    }
    sl_free(ast);
}

const sl_ast_pipeline *sl_ast_root(const sl_ast *ast)
{
    return ast ? &ast->root : NULL;
}

/* ---- copying with placeholders bound --------------------------------------------------- */

typedef struct binder {
    sl_ast *ast;
    sl__ast_bind_fn bind; /* NULL: placeholders are copied as they are */
    void *user;
    const char *scope; /* a call whose first argument binds its own placeholders, or NULL */
} binder;

static int copy_value(binder *b, const sl_ast_value *src, sl_ast_value *dst);

static int copy_bytes(binder *b, const char *src, size_t len, const char **out)
{
    char *s = sl__ast_alloc(b->ast, len + 1);
    if (!s)
        return SL_ERR_NOMEM;
    if (len)
        memcpy(s, src, len);
    s[len] = '\0';
    *out = s;
    return 0;
}

static int copy_call(binder *b, const sl_ast_call *src, sl_ast_call *dst)
{
    *dst = *src;
    SL_TRY(copy_bytes(b, src->name, strlen(src->name), &dst->name));
    sl_ast_value *args = src->nargs ? sl__ast_alloc(b->ast, src->nargs * sizeof *args) : NULL;
    sl_ast_arg *named = src->nnamed ? sl__ast_alloc(b->ast, src->nnamed * sizeof *named) : NULL;
    if ((src->nargs && !args) || (src->nnamed && !named))
        return SL_ERR_NOMEM;
    /* A nested scope (interleave inside an inner pipeline) keeps its placeholders for its own
     * elements: its first argument, given by position or as inner=, is copied unbound. */
    const bool scoped = b->bind && b->scope && !strcmp(src->name, b->scope);
    binder plain = {b->ast, NULL, NULL, NULL};
    for (size_t i = 0; i < src->nargs; i++)
        SL_TRY(copy_value(scoped && i == 0 ? &plain : b, &src->args[i], &args[i]));
    for (size_t i = 0; i < src->nnamed; i++) {
        named[i] = src->named[i];
        SL_TRY(copy_bytes(b, src->named[i].key, strlen(src->named[i].key), &named[i].key));
        const bool inner = scoped && src->nargs == 0 && !strcmp(src->named[i].key, "inner");
        SL_TRY(copy_value(inner ? &plain : b, &src->named[i].value, &named[i].value));
    }
    dst->args = args;
    dst->named = named;
    return 0;
}

static int copy_pipeline(binder *b, const sl_ast_pipeline *src, sl_ast_pipeline *dst)
{
    *dst = *src;
    sl_ast_stage *stages = sl__ast_alloc(b->ast, SL_MAX(src->nstages, 1) * sizeof *stages);
    if (!stages)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < src->nstages; i++)
        SL_TRY(copy_call(b, &src->stages[i], &stages[i]));
    dst->stages = stages;
    return 0;
}

static int copy_value(binder *b, const sl_ast_value *src, sl_ast_value *dst)
{
    *dst = *src;
    switch (src->kind) {
    case SL_AST_STRING:
        return copy_bytes(b, src->as.str.data, src->as.str.len, &dst->as.str.data);
    case SL_AST_IDENT:
    case SL_AST_CALL:
        return copy_call(b, &src->as.call, &dst->as.call);
    case SL_AST_LIST: {
        sl_ast_value *items =
            src->as.list.count ? sl__ast_alloc(b->ast, src->as.list.count * sizeof *items) : NULL;
        if (src->as.list.count && !items)
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < src->as.list.count; i++)
            SL_TRY(copy_value(b, &src->as.list.items[i], &items[i]));
        dst->as.list.items = items;
        return 0;
    }
    case SL_AST_PIPELINE:
        return copy_pipeline(b, &src->as.pipeline, &dst->as.pipeline);
    case SL_AST_PLACEHOLDER: {
        if (!b->bind)
            return copy_bytes(b, src->as.placeholder, strlen(src->as.placeholder),
                              &dst->as.placeholder);
        sl_ast_value bound;
        memset(&bound, 0, sizeof bound);
        SL_TRY(b->bind(b->user, src, &bound));
        bound.span = src->span;
        /* The bound value may point into the caller's memory: copy it, binding nothing more. */
        binder plain = {b->ast, NULL, NULL, NULL};
        return copy_value(&plain, &bound, dst);
    }
    default:
        return 0;
    }
}

int sl__ast_bind(const sl_ast_pipeline *src, sl__ast_bind_fn bind, void *user, const char *scope,
                 sl_ast **out)
{
    *out = NULL;
    sl_ast *ast = sl_calloc(1, sizeof *ast);
    if (!ast)
        return SL_ERR_NOMEM;
    binder b = {ast, bind, user, scope};
    const int rc = copy_pipeline(&b, src, &ast->root);
    if (rc) {
        sl_ast_free(ast);
        return rc;
    }
    *out = ast;
    return 0;
}

/* ---- names, keywords, keys ---------------------------------------------------------------- */

sl__keyword sl__ast_keyword(const char *s, size_t n)
{
    static const struct {
        const char *word;
        sl__keyword kw;
    } words[] = {{"true", SL__KW_TRUE},
                 {"false", SL__KW_FALSE},
                 {"auto", SL__KW_AUTO},
                 {"inf", SL__KW_INF},
                 {"nan", SL__KW_NAN}};
    for (size_t i = 0; i < SL_ARRAY_LEN(words); i++)
        if (strlen(words[i].word) == n && !memcmp(words[i].word, s, n))
            return words[i].kw;
    return SL__KW_NONE;
}

bool sl__ast_name_ok(const char *s)
{
    if (!s || !sl__ast_name_start((unsigned char)s[0]))
        return false;
    size_t n = 1;
    while (sl__ast_name_char((unsigned char)s[n]))
        n++;
    return s[n] == '\0' && sl__ast_keyword(s, n) == SL__KW_NONE;
}

typedef struct key_ref {
    const char *key;
    size_t index;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    const int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (x->index > y->index) - (x->index < y->index);
}

/* Below this many keys a quadratic scan is cheaper than sorting and needs no memory. */
enum { DUP_SCAN_MAX = 32 };

int sl__ast_find_duplicate_key(const sl_ast_arg *named, size_t n, size_t *dup, size_t *first)
{
    if (n <= DUP_SCAN_MAX) {
        for (size_t j = 1; j < n; j++)
            for (size_t i = 0; i < j; i++)
                if (!strcmp(named[i].key, named[j].key)) {
                    *dup = j;
                    *first = i;
                    return 1;
                }
        return 0;
    }
    key_ref *refs = sl_malloc(n * sizeof *refs);
    if (!refs)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        refs[i] = (key_ref){named[i].key, i};
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    /* Sorted by (key, index): in each run of one key, the run's second entry is that key's
     * first repeat; the earliest of those is what the quadratic scan would find. */
    int found = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(refs[i].key, refs[i - 1].key))
            continue;
        if (i >= 2 && !strcmp(refs[i - 2].key, refs[i].key))
            continue; /* a third or later occurrence */
        if (!found || refs[i].index < *dup) {
            *dup = refs[i].index;
            *first = refs[i - 1].index;
            found = 1;
        }
    }
    sl_free(refs);
    return found;
}

/* ---- locale ------------------------------------------------------------------------------- */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
    /* Held for the life of the process, like the locale data glibc itself keeps. */
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

locale_t sl__ast_c_locale(void)
{
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

double sl__ast_strtod(const char *s, char **end)
{
    const locale_t c = sl__ast_c_locale();
    return c ? strtod_l(s, end, c) : strtod(s, end);
}

/* ---- messages ----------------------------------------------------------------------------- */

int sl__ast_verror(char *err, size_t errcap, int code, size_t offset, const char *fmt, va_list ap)
{
    if (err && errcap) {
        const int n = snprintf(err, errcap, "pipeline: position %zu: ", offset + 1);
        if (n >= 0 && (size_t)n < errcap)
            vsnprintf(err + n, errcap - (size_t)n, fmt, ap);
    }
    return code;
}

int sl_ast_error(char *err, size_t errcap, int code, sl_ast_span at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__ast_verror(err, errcap, code, at.offset, fmt, ap);
    va_end(ap);
    return code;
}

const char *sl_ast_kind_name(sl_ast_kind kind)
{
    switch (kind) {
    case SL_AST_INT:
        return "integer";
    case SL_AST_FLOAT:
        return "float";
    case SL_AST_STRING:
        return "string";
    case SL_AST_BOOL:
        return "boolean";
    case SL_AST_AUTO:
        return "auto";
    case SL_AST_IDENT:
        return "name";
    case SL_AST_LIST:
        return "list";
    case SL_AST_CALL:
        return "call";
    case SL_AST_PIPELINE:
        return "pipeline";
    case SL_AST_PLACEHOLDER:
        return "placeholder";
    }
    return "invalid";
}

/* ---- equality ----------------------------------------------------------------------------- */

static int names_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return !strcmp(a, b);
}

int sl_ast_stage_equal(const sl_ast_stage *a, const sl_ast_stage *b)
{
    if (!names_equal(a->name, b->name) || a->nargs != b->nargs || a->nnamed != b->nnamed)
        return 0;
    for (size_t i = 0; i < a->nargs; i++)
        if (!sl_ast_value_equal(&a->args[i], &b->args[i]))
            return 0;
    for (size_t i = 0; i < a->nnamed; i++)
        if (!names_equal(a->named[i].key, b->named[i].key) ||
            !sl_ast_value_equal(&a->named[i].value, &b->named[i].value))
            return 0;
    return 1;
}

int sl_ast_pipeline_equal(const sl_ast_pipeline *a, const sl_ast_pipeline *b)
{
    if (a->nstages != b->nstages)
        return 0;
    for (size_t i = 0; i < a->nstages; i++)
        if (!sl_ast_stage_equal(&a->stages[i], &b->stages[i]))
            return 0;
    return 1;
}

int sl_ast_value_equal(const sl_ast_value *a, const sl_ast_value *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case SL_AST_INT:
        return a->as.i == b->as.i;
    case SL_AST_FLOAT:
        /* The text has one nan and tells -0.0 from 0.0, so equality does the same. */
        if (isnan(a->as.f) || isnan(b->as.f))
            return isnan(a->as.f) && isnan(b->as.f);
        return a->as.f == b->as.f && !signbit(a->as.f) == !signbit(b->as.f);
    case SL_AST_STRING:
        return a->as.str.len == b->as.str.len &&
               (a->as.str.len == 0 || !memcmp(a->as.str.data, b->as.str.data, a->as.str.len));
    case SL_AST_BOOL:
        return !a->as.b == !b->as.b;
    case SL_AST_AUTO:
        return 1;
    case SL_AST_IDENT:
    case SL_AST_CALL:
        return sl_ast_stage_equal(&a->as.call, &b->as.call);
    case SL_AST_LIST:
        if (a->as.list.count != b->as.list.count)
            return 0;
        for (size_t i = 0; i < a->as.list.count; i++)
            if (!sl_ast_value_equal(&a->as.list.items[i], &b->as.list.items[i]))
                return 0;
        return 1;
    case SL_AST_PIPELINE:
        return sl_ast_pipeline_equal(&a->as.pipeline, &b->as.pipeline);
    case SL_AST_PLACEHOLDER:
        return names_equal(a->as.placeholder, b->as.placeholder);
    }
    return 0;
}

int sl_ast_equal(const sl_ast *a, const sl_ast *b)
{
    if (!a || !b)
        return a == b;
    return sl_ast_pipeline_equal(&a->root, &b->root);
}

/* ---- reading arguments -------------------------------------------------------------------- */

const sl_ast_value *sl_ast_call_positional(const sl_ast_call *c, size_t i)
{
    return i < c->nargs ? &c->args[i] : NULL;
}

static const sl_ast_arg *find_named(const sl_ast_call *c, const char *key)
{
    if (!key)
        return NULL;
    for (size_t i = 0; i < c->nnamed; i++)
        if (!strcmp(c->named[i].key, key))
            return &c->named[i];
    return NULL;
}

const sl_ast_value *sl_ast_call_named(const sl_ast_call *c, const char *key)
{
    const sl_ast_arg *arg = find_named(c, key);
    return arg ? &arg->value : NULL;
}

int sl_ast_call_check(const sl_ast_call *c, size_t max_positional, const char *const *keys,
                      size_t nkeys, char *err, size_t errcap)
{
    if (c->nargs > max_positional) {
        if (max_positional == 0)
            return sl_ast_error(err, errcap, SL_ERR_INVAL, c->args[0].span,
                                "%s: takes no positional arguments", c->name);
        return sl_ast_error(err, errcap, SL_ERR_INVAL, c->args[max_positional].span,
                            "%s: takes at most %zu positional argument%s, found %zu", c->name,
                            max_positional, max_positional == 1 ? "" : "s", c->nargs);
    }
    for (size_t i = 0; i < c->nnamed; i++) {
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k], c->named[i].key))
            k++;
        if (k == nkeys)
            return sl_ast_error(err, errcap, SL_ERR_INVAL, c->named[i].span,
                                "%s: unknown argument '%s'", c->name, c->named[i].key);
    }
    return 0;
}

int sl_ast_call_arg(const sl_ast_call *c, size_t index, const char *key, bool required,
                    const sl_ast_value **out, char *err, size_t errcap)
{
    const sl_ast_value *by_pos = index == SL_AST_NO_INDEX ? NULL : sl_ast_call_positional(c, index);
    const sl_ast_arg *by_key = find_named(c, key);
    *out = by_pos ? by_pos : by_key ? &by_key->value : NULL;
    if (by_pos && by_key) {
        return sl_ast_error(err, errcap, SL_ERR_INVAL, by_key->span,
                            "%s: argument '%s' given twice, by position (argument %zu) and by "
                            "name",
                            c->name, key, index + 1);
    }
    if (!*out && required) {
        if (key)
            return sl_ast_error(err, errcap, SL_ERR_INVAL, c->span, "%s: missing argument '%s'",
                                c->name, key);
        return sl_ast_error(err, errcap, SL_ERR_INVAL, c->span,
                            "%s: missing positional argument %zu", c->name, index + 1);
    }
    return 0;
}

/* "an integer", "a list", ...: the kind with its article, for "expected ..." messages. */
static const char *with_article(sl_ast_kind kind)
{
    switch (kind) {
    case SL_AST_INT:
        return "an integer";
    case SL_AST_AUTO:
        return "auto";
    default:
        break;
    }
    static const char *const a[] = {"",       "",       "a float", "a string",   "a boolean",    "",
                                    "a name", "a list", "a call",  "a pipeline", "a placeholder"};
    return kind >= SL_AST_FLOAT && kind <= SL_AST_PLACEHOLDER ? a[kind] : "a value";
}

enum { SNIPPET_MAX = 40 };

/* The kind error: "<what>: expected <expected>, found <kind> <canonical text, shortened>". */
static int kind_error(const sl_ast_value *v, const char *what, const char *expected, char *err,
                      size_t errcap)
{
    char text[SNIPPET_MAX + 4];
    const int n = sl_ast_value_print(v, text, SNIPPET_MAX + 1);
    if (n < 0)
        text[0] = '\0';
    else if (n > SNIPPET_MAX)
        memcpy(text + SNIPPET_MAX, "...", 4);
    const bool show = v->kind != SL_AST_AUTO && text[0];
    return sl_ast_error(err, errcap, SL_ERR_TYPE, v->span, "%s%sexpected %s, found %s%s%s",
                        what ? what : "", what ? ": " : "", expected, sl_ast_kind_name(v->kind),
                        show ? " " : "", show ? text : "");
}

int sl_ast_value_get_int(const sl_ast_value *v, const char *what, int64_t *out, char *err,
                         size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind != SL_AST_INT)
        return kind_error(v, what, with_article(SL_AST_INT), err, errcap);
    *out = v->as.i;
    return 0;
}

int sl_ast_value_get_double(const sl_ast_value *v, const char *what, double *out, char *err,
                            size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind == SL_AST_INT)
        *out = (double)v->as.i;
    else if (v->kind == SL_AST_FLOAT)
        *out = v->as.f;
    else
        return kind_error(v, what, "a number", err, errcap);
    return 0;
}

int sl_ast_value_get_bool(const sl_ast_value *v, const char *what, bool *out, char *err,
                          size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind != SL_AST_BOOL)
        return kind_error(v, what, with_article(SL_AST_BOOL), err, errcap);
    *out = v->as.b;
    return 0;
}

int sl_ast_value_get_string(const sl_ast_value *v, const char *what, const char **data, size_t *len,
                            char *err, size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind != SL_AST_STRING)
        return kind_error(v, what, with_article(SL_AST_STRING), err, errcap);
    *data = v->as.str.data;
    *len = v->as.str.len;
    return 0;
}

int sl_ast_value_get_name(const sl_ast_value *v, const char *what, const char **name, char *err,
                          size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind != SL_AST_IDENT)
        return kind_error(v, what, with_article(SL_AST_IDENT), err, errcap);
    *name = v->as.call.name;
    return 0;
}

int sl_ast_value_get_call(const sl_ast_value *v, const char *what, const sl_ast_call **call,
                          char *err, size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind != SL_AST_IDENT && v->kind != SL_AST_CALL)
        return kind_error(v, what, "a name or a call", err, errcap);
    *call = &v->as.call;
    return 0;
}

int sl_ast_value_get_pipeline(const sl_ast_value *v, const char *what, sl_ast_pipeline *out,
                              char *err, size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind == SL_AST_PIPELINE) {
        *out = v->as.pipeline;
    } else if (v->kind == SL_AST_IDENT || v->kind == SL_AST_CALL) {
        out->stages = &v->as.call;
        out->nstages = 1;
        out->span = v->span;
    } else {
        return kind_error(v, what, "a pipeline", err, errcap);
    }
    return 0;
}
