/*
 * What the three files of the pipeline-string language share (pipeline_parse.c: lexer and
 * parser; pipeline_print.c: canonical printer; pipeline_ast.c: the tree's arena, equality
 * and argument readers). Not part of the public API.
 *
 * The tree lives in an arena: a chain of blocks, each carved front to back, freed together
 * by sl_ast_free. Nodes are written once while parsing and never move, so the pointers
 * between them stay valid for the tree's life.
 *
 * Threading: nothing here has shared state but the C locale handle, created once under
 * pthread_once and then only read.
 */
#ifndef SLUICE_PIPELINE_TEXT_INTERNAL_H
#define SLUICE_PIPELINE_TEXT_INTERNAL_H

#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "sluice/pipeline_text.h"

typedef struct sl__ast_block sl__ast_block;

struct sl_ast {
    sl_ast_pipeline root;
    sl__ast_block *blocks; /* newest first; the front one is carved from */
    size_t next_block;     /* size of the next block to allocate: doubles each time */
};

/* size bytes aligned for any node type, or NULL when out of memory. */
void *sl__ast_alloc(sl_ast *ast, size_t size);

typedef enum sl__keyword {
    SL__KW_NONE = 0,
    SL__KW_TRUE,
    SL__KW_FALSE,
    SL__KW_AUTO,
    SL__KW_INF,
    SL__KW_NAN
} sl__keyword;

static inline bool sl__ast_name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static inline bool sl__ast_name_char(unsigned char c)
{
    return sl__ast_name_start(c) || (c >= '0' && c <= '9');
}

/* Which keyword the n bytes at s spell, or SL__KW_NONE. */
sl__keyword sl__ast_keyword(const char *s, size_t n);
/* True when s (NUL-terminated, may be NULL) is a name: [A-Za-z_][A-Za-z0-9_]*, not a keyword. */
bool sl__ast_name_ok(const char *s);

/* Looks for a key that repeats an earlier one in named[0..n). Returns 1 and sets *dup to the
 * index of the earliest such repeat (in written order) and *first to the index of its first
 * occurrence; 0 when every key is unique; SL_ERR_NOMEM when a long list cannot get the
 * scratch memory it sorts in. O(n log n), so a text of many keys cannot stall the parser. */
int sl__ast_find_duplicate_key(const sl_ast_arg *named, size_t n, size_t *dup, size_t *first);

/* The "C" locale, so number text is read with '.' as the decimal point whatever locale the
 * host program set; (locale_t)0 when it could not be created (then the global one is used). */
locale_t sl__ast_c_locale(void);
/* strtod in the C locale. */
double sl__ast_strtod(const char *s, char **end);

/* Fills in one placeholder: *out becomes the value it stands for (its strings may point into
 * the caller's memory; they are copied). Returns 0 or a negative code. */
typedef int (*sl__ast_bind_fn)(void *user, const sl_ast_value *placeholder, sl_ast_value *out);
/* A deep copy of src as a new tree (free with sl_ast_free), every placeholder replaced by what
 * bind gives for it (bind NULL: none), except inside the first argument of a call named
 * `scope` (may be NULL): a nested interleave binds those to its own elements. Spans are kept.
 * interleave builds each inner pipeline from one. */
int sl__ast_bind(const sl_ast_pipeline *src, sl__ast_bind_fn bind, void *user, const char *scope,
                 sl_ast **out);

/* Writes `pipeline: position <offset+1>: <fmt...>` into err (may be NULL); returns code. */
int sl__ast_verror(char *err, size_t errcap, int code, size_t offset, const char *fmt, va_list ap);

#endif
