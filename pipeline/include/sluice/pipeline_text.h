/*
 * The pipeline-string language: one line of text that describes a pipeline, e.g.
 *
 *     records("train-*.sluice") | shuffle(8192) | map(decode_jpeg, flip) | batch(256)
 *
 * parsed into a tree the engine walks without looking at text again, and printed back in one
 * canonical form. pipeline/GRAMMAR.md has the grammar, the lexical rules, the canonical form
 * and the error-message format; this header is the C side of it.
 *
 * The language knows no stage, op or map function by name: `shuffle`, `decode_jpeg` and
 * `records` are all just names, so the one grammar serves sources, transforms and map
 * functions, and the engine decides what each name means.
 *
 * The tree. sl_ast owns the parse result (one arena, one free). The nodes it holds are plain
 * read-only structs (this header's layouts, not opaque handles) because a tagged union is
 * what a tree walker wants to switch on; the same structs, built by hand, can be printed and
 * compared, which is how the tests check print/parse round trips on random trees. Nodes are
 * never modified after the parse; every pointer in them points into the owning sl_ast and
 * stays valid until sl_ast_free.
 *
 * A tree the parser returns always holds these rules, and the printer refuses (SL_ERR_INVAL)
 * a hand-built tree that breaks one, so print -> parse gives back an equal tree (whenever the
 * canonical text fits in SL_PIPELINE_TEXT_MAX):
 *   - names (stage, call, identifier value, argument key) match [A-Za-z_][A-Za-z0-9_]* and are
 *     not one of the keywords true, false, auto, inf, nan;
 *   - a pipeline has at least one stage; a SL_AST_PIPELINE value has at least two (a
 *     one-stage pipeline inside arguments is written, and parsed, as a call or a name);
 *   - keys are unique within one call; an SL_AST_IDENT has no arguments;
 *   - at most SL_PIPELINE_MAX_DEPTH brackets ( ( and [ ) are open at any point.
 *
 * Spans: every node records the bytes of source it came from (0-based offset, length), so
 * the engine can point at a stage or an argument in its own messages; sl_ast_error formats
 * them the way the parser does ("pipeline: position N: ...", N = offset + 1).
 *
 * Threading: parsing and printing are reentrant; a tree is immutable and may be read by any
 * number of threads at once.
 */
#ifndef SLUICE_PIPELINE_TEXT_H
#define SLUICE_PIPELINE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* Longest text sl_pipeline_text_parse accepts (SL_ERR_TOO_LARGE beyond). */
    SL_PIPELINE_TEXT_MAX = 1 << 20,
    /* Most brackets open at once; one more is SL_ERR_SYNTAX. Bounds the parser's recursion. */
    SL_PIPELINE_MAX_DEPTH = 64,
};

typedef enum sl_ast_kind {
    SL_AST_INT = 1,    /* as.i */
    SL_AST_FLOAT,      /* as.f */
    SL_AST_STRING,     /* as.str */
    SL_AST_BOOL,       /* as.b */
    SL_AST_AUTO,       /* the word `auto`; no payload */
    SL_AST_IDENT,      /* as.call: a bare name, with no arguments (see sl_ast_value) */
    SL_AST_LIST,       /* as.list */
    SL_AST_CALL,       /* as.call: name(args) */
    SL_AST_PIPELINE,   /* as.pipeline: stage | stage ..., at least two stages */
    SL_AST_PLACEHOLDER /* as.placeholder: `$name`, a value interleave fills in (GRAMMAR.md) */
} sl_ast_kind;

/* Bytes [offset, offset + length) of the parsed text. Zero in hand-built trees. */
typedef struct sl_ast_span {
    size_t offset;
    size_t length;
} sl_ast_span;

typedef struct sl_ast_value sl_ast_value;
typedef struct sl_ast_arg sl_ast_arg;

/* A stage, or a call used as a value: name(args). Positional arguments come before named
 * ones in the text; both keep their written order. A stage written without parentheses
 * (`flip`) and one with empty parentheses (`flip()`) are the same stage. */
typedef struct sl_ast_call {
    const char *name;         /* NUL-terminated */
    const sl_ast_value *args; /* (nargs) positional arguments */
    size_t nargs;
    const sl_ast_arg *named; /* (nnamed) key=value arguments, keys unique */
    size_t nnamed;
    sl_ast_span span; /* name through ')' (just the name when there are no parens) */
} sl_ast_call;

typedef sl_ast_call sl_ast_stage;

typedef struct sl_ast_pipeline {
    const sl_ast_stage *stages; /* (nstages) in data-flow order */
    size_t nstages;
    sl_ast_span span;
} sl_ast_pipeline;

struct sl_ast_value {
    sl_ast_kind kind;
    sl_ast_span span;
    union {
        int64_t i;
        double f; /* any double: inf, nan and -0.0 included */
        bool b;
        struct {
            const char *data; /* (len) bytes, may hold NUL; a NUL follows them */
            size_t len;
        } str;
        struct {
            const sl_ast_value *items; /* (count) */
            size_t count;
        } list;
        /* SL_AST_CALL, and SL_AST_IDENT as a call with no arguments: code that takes a map
         * function either by name (`flip`) or by call (`crop(224)`) reads as.call for both. */
        sl_ast_call call;
        sl_ast_pipeline pipeline;
        const char *placeholder; /* the name after '$' (NUL-terminated, a valid name) */
    } as;
};

struct sl_ast_arg {
    const char *key; /* NUL-terminated */
    sl_ast_value value;
    sl_ast_span span; /* key through the end of the value */
};

/* ---- parse ------------------------------------------------------------------------------ */

typedef struct sl_ast sl_ast;

/* Parses len bytes of text (no NUL needed; a NUL byte in the text is a syntax error).
 * On success *out is a new tree (free with sl_ast_free). On failure *out is NULL and err (may
 * be NULL) receives one line, `pipeline: position N: <what was expected, what was found>`,
 * N the 1-based byte position of the problem; the code is SL_ERR_SYNTAX for text that breaks
 * the grammar (nesting deeper than SL_PIPELINE_MAX_DEPTH included), SL_ERR_TOO_LARGE for text
 * longer than SL_PIPELINE_TEXT_MAX, SL_ERR_NOMEM, or SL_ERR_INVAL for a NULL text or out. */
int sl_pipeline_text_parse(const char *text, size_t len, sl_ast **out, char *err, size_t errcap);
void sl_ast_free(sl_ast *ast); /* NULL does nothing */
/* The whole pipeline. Valid as long as the tree. */
const sl_ast_pipeline *sl_ast_root(const sl_ast *ast);

/* ---- print and compare ------------------------------------------------------------------ */

/* Canonical text (GRAMMAR.md "Canonical form"), snprintf-style: writes at most cap bytes
 * including a terminating NUL (buf may be NULL when cap is 0) and returns the length the
 * whole text needs, not counting the NUL. SL_ERR_INVAL for a tree that breaks a rule of this
 * header's opening comment (nothing useful is written then), SL_ERR_TOO_LARGE when the text
 * would pass INT_MAX bytes, SL_ERR_NOMEM when checking many keys for duplicates cannot get
 * its scratch memory. A stage's canonical text is its name in messages and profiles. */
int sl_ast_print(const sl_ast *ast, char *buf, size_t cap);
int sl_ast_pipeline_print(const sl_ast_pipeline *p, char *buf, size_t cap);
int sl_ast_stage_print(const sl_ast_stage *s, char *buf, size_t cap);
int sl_ast_value_print(const sl_ast_value *v, char *buf, size_t cap);

/* 1 when the trees are equal, else 0. Spans are ignored; named arguments compare in order;
 * floats compare by value with -0.0 != 0.0 and every NaN equal to every NaN (the text form
 * has one nan); strings compare as bytes. */
int sl_ast_equal(const sl_ast *a, const sl_ast *b);
int sl_ast_pipeline_equal(const sl_ast_pipeline *a, const sl_ast_pipeline *b);
int sl_ast_stage_equal(const sl_ast_stage *a, const sl_ast_stage *b);
int sl_ast_value_equal(const sl_ast_value *a, const sl_ast_value *b);

/* ---- reading arguments ------------------------------------------------------------------ *
 * Every function below that can fail writes `pipeline: position N: <context>: <problem>` into
 * err (may be NULL), N pointing at the offending node, and returns a negative code:
 * SL_ERR_INVAL when arguments do not fit what the stage takes, SL_ERR_TYPE for a value of the
 * wrong kind. A typical stage reads its arguments so:
 *
 *     static const char *const keys[] = {"buffer_size", "seed"};
 *     SL_TRY(sl_ast_call_check(c, 2, keys, 2, err, cap));
 *     const sl_ast_value *v;
 *     int64_t size, seed = 0;
 *     SL_TRY(sl_ast_call_arg(c, 0, "buffer_size", true, &v, err, cap));
 *     SL_TRY(sl_ast_value_get_int(v, "shuffle: buffer_size", &size, err, cap));
 *     SL_TRY(sl_ast_call_arg(c, 1, "seed", false, &v, err, cap));
 *     SL_TRY(sl_ast_value_get_int(v, "shuffle: seed", &seed, err, cap)); // v NULL: keeps 0
 */

/* Positional argument i, or NULL when there are fewer. */
const sl_ast_value *sl_ast_call_positional(const sl_ast_call *c, size_t i);
/* The named argument with this key, or NULL. A linear scan over the call's keys. */
const sl_ast_value *sl_ast_call_named(const sl_ast_call *c, const char *key);

/* For index or key arguments that mean "none". */
#define SL_AST_NO_INDEX ((size_t)-1)

/* Checks the call's shape: at most max_positional positional arguments, and every key one of
 * keys[0..nkeys). SL_ERR_INVAL naming the first extra positional or unknown key otherwise. */
int sl_ast_call_check(const sl_ast_call *c, size_t max_positional, const char *const *keys,
                      size_t nkeys, char *err, size_t errcap);
/* Binds one parameter the way Python binds arguments: positional argument `index` when the
 * call has one (SL_AST_NO_INDEX: keyword-only), else the named argument `key` (NULL:
 * positional-only). *out is the value, or NULL when it is absent and not required.
 * SL_ERR_INVAL when it is given both ways, or is required and absent. */
int sl_ast_call_arg(const sl_ast_call *c, size_t index, const char *key, bool required,
                    const sl_ast_value **out, char *err, size_t errcap);

/* Typed reads of one value. `what` (may be NULL) leads the message, e.g. "shuffle: seed".
 * When v is NULL (an absent optional argument) they return 0 and leave *out as it was, so
 * the caller's default stands. SL_ERR_TYPE when the kind does not fit. */
int sl_ast_value_get_int(const sl_ast_value *v, const char *what, int64_t *out, char *err,
                         size_t errcap);
/* FLOAT, or INT converted (exact up to 2^53 in magnitude, rounded to nearest beyond). */
int sl_ast_value_get_double(const sl_ast_value *v, const char *what, double *out, char *err,
                            size_t errcap);
int sl_ast_value_get_bool(const sl_ast_value *v, const char *what, bool *out, char *err,
                          size_t errcap);
/* STRING: *data points into the tree (NUL-terminated, may hold NULs before len). */
int sl_ast_value_get_string(const sl_ast_value *v, const char *what, const char **data, size_t *len,
                            char *err, size_t errcap);
/* IDENT: the bare name. */
int sl_ast_value_get_name(const sl_ast_value *v, const char *what, const char **name, char *err,
                          size_t errcap);
/* IDENT or CALL: the call (an IDENT is a call with no arguments). */
int sl_ast_value_get_call(const sl_ast_value *v, const char *what, const sl_ast_call **call,
                          char *err, size_t errcap);
/* PIPELINE, or IDENT / CALL seen as a one-stage pipeline: *out is a view whose stages point
 * into the tree (into v itself for the one-stage case, so v must outlive the view). */
int sl_ast_value_get_pipeline(const sl_ast_value *v, const char *what, sl_ast_pipeline *out,
                              char *err, size_t errcap);

/* "integer", "float", "string", "boolean", "auto", "name", "list", "call", "pipeline",
 * "placeholder"; "invalid" for anything else. */
const char *sl_ast_kind_name(sl_ast_kind kind);

/* Writes `pipeline: position N: <formatted>` (N = at.offset + 1) into err (may be NULL) and
 * returns code, so engine code reports its own problems in the parser's format:
 *     return sl_ast_error(err, cap, SL_ERR_INVAL, v->span, "shuffle: buffer size must be
 * positive");
 */
int sl_ast_error(char *err, size_t errcap, int code, sl_ast_span at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#ifdef __cplusplus
}
#endif
#endif
