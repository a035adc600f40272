/*
 * The map-function registry and the builder from pipeline text (an AST, pipeline_text.h) to a
 * chain of datasets. Each stage name has one builder function here that reads its arguments
 * with the AST's typed getters (so argument errors carry the text position) and calls the
 * public sl_dataset_* constructor.
 *
 * map(f, g(...), ...) fuses its functions: one composite map function runs them in order on one
 * worker, passing each output on as the next input, with one RNG stream (each function draws
 * from the element's stream in turn).
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "pipeline_text_internal.h"
#include "sluice/alloc.h"
#include "sluice/pipeline_build.h"

/* ---- registry ----------------------------------------------------------------------------- */

typedef struct entry {
    char *name;
    char *summary;
    sl_map_factory factory;
    void *user;
} entry;

typedef struct fuser_entry {
    sl_map_fuser fn;
    void *user;
} fuser_entry;

struct sl_registry {
    entry *items;
    size_t count, cap;
    fuser_entry fusers[4];
    size_t nfusers;
};

int sl_registry_create(sl_registry **out)
{
    *out = sl_calloc(1, sizeof **out);
    return *out ? 0 : SL_ERR_NOMEM;
}

void sl_registry_free(sl_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++) {
        sl_free(r->items[i].name);
        sl_free(r->items[i].summary);
    }
    sl_free(r->items);
    sl_free(r);
}

static const entry *find(const sl_registry *r, const char *name)
{
    for (size_t i = 0; r && i < r->count; i++)
        if (!strcmp(r->items[i].name, name))
            return &r->items[i];
    return NULL;
}

int sl_registry_add(sl_registry *r, const char *name, sl_map_factory factory, void *user,
                    const char *summary)
{
    if (!r || !name || !factory)
        return SL_ERR_INVAL;
    if (find(r, name))
        return SL_ERR_EXISTS;
    if (r->count == r->cap) {
        const size_t cap = r->cap ? 2 * r->cap : 16;
        entry *n = sl_realloc(r->items, cap * sizeof *n);
        if (!n)
            return SL_ERR_NOMEM;
        r->items = n;
        r->cap = cap;
    }
    entry *e = &r->items[r->count];
    e->name = sl_strdup(name);
    e->summary = sl_strdup(summary ? summary : name);
    if (!e->name || !e->summary) {
        sl_free(e->name);
        sl_free(e->summary);
        return SL_ERR_NOMEM;
    }
    e->factory = factory;
    e->user = user;
    r->count++;
    return 0;
}

int sl_registry_add_fuser(sl_registry *r, sl_map_fuser fuser, void *user)
{
    if (!r || !fuser)
        return SL_ERR_INVAL;
    if (r->nfusers == sizeof r->fusers / sizeof r->fusers[0])
        return SL_ERR_RANGE;
    r->fusers[r->nfusers++] = (fuser_entry){fuser, user};
    return 0;
}

size_t sl_registry_count(const sl_registry *r)
{
    return r ? r->count : 0;
}

const char *sl_registry_name(const sl_registry *r, size_t i)
{
    return i < r->count ? r->items[i].name : NULL;
}

const char *sl_registry_summary(const sl_registry *r, size_t i)
{
    return i < r->count ? r->items[i].summary : NULL;
}

/* ---- fused map functions ------------------------------------------------------------------ */

typedef struct fused {
    size_t n;
    sl_map_def defs[]; /* (n) */
} fused;

static int fused_run(void *user, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    const fused *f = user;
    sl_map_ctx c = *ctx; /* one RNG stream, drawn from by each function in turn */
    sl_element cur = *in;
    memset(in, 0, sizeof *in);
    for (size_t i = 0; i < f->n; i++) {
        sl_element next;
        memset(&next, 0, sizeof next);
        /* Only the last function's output is the map's: earlier ones feed the next function. */
        c.alloc = i + 1 == f->n ? ctx->alloc : NULL;
        const int rc = f->defs[i].fn(f->defs[i].user, &c, &cur, &next, err, errcap);
        sl_element_release(&cur);
        if (rc) {
            sl_element_release(&next);
            if (f->n > 1 && err && errcap) {
                char inner[SL_ERRMSG_CAP];
                snprintf(inner, sizeof inner, "%s", err);
                snprintf(err, errcap, "%s%s%s", f->defs[i].name, inner[0] ? ": " : "", inner);
            }
            return rc;
        }
        cur = next;
    }
    *out = cur;
    return 0;
}

static void fused_free(void *user)
{
    fused *f = user;
    for (size_t i = 0; i < f->n; i++) {
        if (f->defs[i].free_user)
            f->defs[i].free_user(f->defs[i].user);
        sl_free((char *)f->defs[i].name);
    }
    sl_free(f);
}

/* ---- stage builders ------------------------------------------------------------------------ */

typedef struct build_ctx {
    const sl_registry *reg;
    char *err;
    size_t errcap;
} build_ctx;

typedef int (*stage_builder)(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out);

/* A constructor's failure (usually a bad value) reported at the stage. */
static int stage_error(build_ctx *b, const sl_ast_call *c, int rc, const char *what)
{
    return sl_ast_error(b->err, b->errcap, rc, c->span, "%s: %s: %s", c->name, what,
                        sl_strerror(rc));
}

static int get_int(build_ctx *b, const sl_ast_call *c, size_t index, const char *key, bool required,
                   int64_t *v)
{
    const sl_ast_value *x;
    char what[64];
    snprintf(what, sizeof what, "%s: %s", c->name, key);
    SL_TRY(sl_ast_call_arg(c, index, key, required, &x, b->err, b->errcap));
    return sl_ast_value_get_int(x, what, v, b->err, b->errcap);
}

static int get_bool(build_ctx *b, const sl_ast_call *c, size_t index, const char *key, int *v)
{
    const sl_ast_value *x;
    char what[64];
    snprintf(what, sizeof what, "%s: %s", c->name, key);
    SL_TRY(sl_ast_call_arg(c, index, key, false, &x, b->err, b->errcap));
    bool t = *v != 0;
    SL_TRY(sl_ast_value_get_bool(x, what, &t, b->err, b->errcap));
    *v = t;
    return 0;
}

/* An int, or `auto` (-> SL_PARALLEL_AUTO). */
static int get_int_or_auto(build_ctx *b, const sl_ast_call *c, size_t index, const char *key,
                           bool required, int64_t *v)
{
    const sl_ast_value *x;
    SL_TRY(sl_ast_call_arg(c, index, key, required, &x, b->err, b->errcap));
    if (x && x->kind == SL_AST_AUTO) {
        *v = SL_PARALLEL_AUTO;
        return 0;
    }
    char what[64];
    snprintf(what, sizeof what, "%s: %s", c->name, key);
    return sl_ast_value_get_int(x, what, v, b->err, b->errcap);
}

static int check(build_ctx *b, const sl_ast_call *c, size_t positional, const char *const *keys,
                 size_t nkeys)
{
    return sl_ast_call_check(c, positional, keys, nkeys, b->err, b->errcap);
}

static int no_input(build_ctx *b, const sl_ast_call *c, sl_dataset *in)
{
    if (in)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "%s: a source must come first in the pipeline", c->name);
    return 0;
}

static int b_range(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"start", "stop", "step"};
    SL_TRY(no_input(b, c, in));
    SL_TRY(check(b, c, 3, keys, 3));
    int64_t start = 0, stop = 0, step = 1;
    if (c->nargs <= 1 && !sl_ast_call_named(c, "start")) {
        SL_TRY(get_int(b, c, 0, "stop", true, &stop));
    } else {
        SL_TRY(get_int(b, c, 0, "start", true, &start));
        SL_TRY(get_int(b, c, 1, "stop", true, &stop));
    }
    SL_TRY(get_int(b, c, 2, "step", false, &step));
    const int rc = sl_dataset_range(out, start, stop, step);
    return rc ? stage_error(b, c, rc, "step must not be 0") : 0;
}

static int b_files(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    SL_TRY(no_input(b, c, in));
    SL_TRY(check(b, c, SIZE_MAX, NULL, 0));
    if (c->nargs == 0)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "%s: expected file names or glob patterns", c->name);
    const char **patterns = sl_calloc(c->nargs, sizeof *patterns);
    if (!patterns)
        return SL_ERR_NOMEM;
    int rc = 0;
    for (size_t i = 0; i < c->nargs && rc == 0; i++) {
        size_t len;
        rc = sl_ast_value_get_string(&c->args[i], c->name, &patterns[i], &len, b->err, b->errcap);
    }
    if (rc == 0) {
        char why[SL_ERRMSG_CAP] = "";
        rc = !strcmp(c->name, "records")
                 ? sl_dataset_records(out, patterns, c->nargs, why, sizeof why)
                 : sl_dataset_tfrecord(out, patterns, c->nargs, why, sizeof why);
        if (rc)
            sl_ast_error(b->err, b->errcap, rc, c->span, "%s: %s", c->name,
                         why[0] ? why : sl_strerror(rc));
    }
    sl_free(patterns);
    return rc;
}

static int b_map(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"parallel", "ordered", "seed"};
    SL_TRY(check(b, c, SIZE_MAX, keys, 3));
    if (c->nargs == 0)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "map: expected at least one function");
    int64_t parallel = 1, seed = 0;
    int ordered = 1;
    SL_TRY(get_int_or_auto(b, c, SL_AST_NO_INDEX, "parallel", false, &parallel));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "ordered", &ordered));
    SL_TRY(get_int(b, c, SL_AST_NO_INDEX, "seed", false, &seed));
    if (parallel != SL_PARALLEL_AUTO && (parallel < 1 || parallel > 4096))
        return sl_ast_error(b->err, b->errcap, SL_ERR_INVAL, c->span,
                            "map: parallel must be auto or 1 to 4096, not %lld",
                            (long long)parallel);
    fused *f = sl_calloc(1, sizeof *f + c->nargs * sizeof f->defs[0]);
    if (!f)
        return SL_ERR_NOMEM;
    char names[SL__TEXT_CAP] = "";
    size_t at = 0;
    int rc = 0;
    size_t nd = 0; /* functions built; call i is c->args[i] */
    for (size_t i = 0; i < c->nargs && rc == 0;) {
        const sl_ast_call *fc;
        rc = sl_ast_value_get_call(&c->args[i], "map: function", &fc, b->err, b->errcap);
        if (rc)
            break;
        sl_map_def *d = &f->defs[nd];
        size_t used = 0;
        for (size_t k = 0; b->reg && k < b->reg->nfusers && used == 0 && rc == 0; k++) {
            rc = b->reg->fusers[k].fn(b->reg->fusers[k].user, &c->args[i], c->nargs - i, &used, d,
                                      b->err, b->errcap);
            if (rc == 0 && used > c->nargs - i) /* a fuser that claims calls it was not given */
                rc = sl_ast_error(b->err, b->errcap, SL_ERR_INVAL, fc->span,
                                  "map: a fuser claimed %zu functions of %zu", used, c->nargs - i);
            else if (rc == 0 && used == 1) /* one call is the factory's business */
                rc = sl_ast_error(b->err, b->errcap, SL_ERR_INVAL, fc->span,
                                  "map: a fuser took a single function");
        }
        if (rc)
            break;
        if (used == 0) {
            const entry *e = find(b->reg, fc->name);
            if (!e) {
                rc = sl_ast_error(b->err, b->errcap, SL_ERR_NOT_FOUND, fc->span,
                                  "map: no function called \"%s\"%s", fc->name,
                                  sl_registry_count(b->reg) ? " (see the list in --help)"
                                                            : " (no functions are registered)");
                break;
            }
            rc = e->factory(e->user, fc, d, b->err, b->errcap);
            if (rc)
                break;
            used = 1;
        }
        f->n = ++nd; /* fused_free releases what was built so far */
        /* The function's name: its calls' canonical texts, joined as map(...) writes them. */
        char text[SL__TEXT_CAP];
        size_t tl = 0;
        for (size_t k = i; k < i + used && tl < sizeof text; k++) {
            if (k > i)
                tl += (size_t)snprintf(text + tl, sizeof text - tl, ", ");
            if (tl < sizeof text) {
                const int pl = sl_ast_value_print(&c->args[k], text + tl, sizeof text - tl);
                tl += pl > 0 ? (size_t)pl : 0;
            }
        }
        d->name = sl_strdup(text);
        if (!d->name) {
            rc = SL_ERR_NOMEM;
            break;
        }
        if (at < sizeof names)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "", text);
        i += used;
    }
    if (rc) {
        fused_free(f);
        return rc;
    }
    sl_map_def def;
    if (f->n == 1) { /* one function: no indirection */
        def = f->defs[0];
        def.name = names;
        sl_free((char *)f->defs[0].name);
        sl_free(f);
    } else {
        def = (sl_map_def){names, fused_run, f, fused_free};
    }
    const sl_map_options o = {(int)parallel, !ordered, (uint64_t)seed};
    rc = sl_dataset_map(out, in, &def, &o);
    return rc ? stage_error(b, c, rc, "cannot build") : 0;
}

static int b_batch(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"batch_size", "drop_remainder"};
    SL_TRY(check(b, c, 2, keys, 2));
    int64_t n = 0;
    int drop = 0;
    SL_TRY(get_int(b, c, 0, "batch_size", true, &n));
    SL_TRY(get_bool(b, c, 1, "drop_remainder", &drop));
    const int rc = sl_dataset_batch(out, in, n, drop);
    return rc ? stage_error(b, c, rc, "batch_size must be 1 to 16777216") : 0;
}

static int b_padded_batch(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"batch_size", "padding_value", "drop_remainder"};
    SL_TRY(check(b, c, 1, keys, 3));
    int64_t n = 0;
    int drop = 0;
    double pad = 0;
    const sl_ast_value *v;
    SL_TRY(get_int(b, c, 0, "batch_size", true, &n));
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "padding_value", false, &v, b->err, b->errcap));
    SL_TRY(sl_ast_value_get_double(v, "padded_batch: padding_value", &pad, b->err, b->errcap));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "drop_remainder", &drop));
    const int rc = sl_dataset_padded_batch(out, in, n, pad, drop);
    return rc ? stage_error(b, c, rc, "batch_size must be 1 to 16777216") : 0;
}

/* cache (in memory) or cache("path") (a file, kept across runs) */
static int b_cache(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"filename"};
    SL_TRY(check(b, c, 1, keys, 1));
    const sl_ast_value *v;
    SL_TRY(sl_ast_call_arg(c, 0, "filename", false, &v, b->err, b->errcap));
    if (!v)
        return sl_dataset_cache(out, in);
    const char *path;
    size_t len;
    SL_TRY(sl_ast_value_get_string(v, "cache: filename", &path, &len, b->err, b->errcap));
    const int rc = strlen(path) == len ? sl_dataset_cache_file(out, in, path) : SL_ERR_INVAL;
    return rc ? stage_error(b, c, rc, "filename must be a non-empty path without NUL bytes") : 0;
}

static int b_unbatch(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    SL_TRY(check(b, c, 0, NULL, 0));
    return sl_dataset_unbatch(out, in);
}

static int b_prefetch(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"buffer_size"};
    SL_TRY(check(b, c, 1, keys, 1));
    int64_t n = SL_PARALLEL_AUTO;
    SL_TRY(get_int_or_auto(b, c, 0, "buffer_size", false, &n));
    const int rc = sl_dataset_prefetch(out, in, n);
    return rc ? stage_error(b, c, rc, "buffer_size must be auto or 1 to 1048576") : 0;
}

static int b_count_stage(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"count"};
    SL_TRY(check(b, c, 1, keys, 1));
    const int is_repeat = !strcmp(c->name, "repeat");
    int64_t n = -1;
    SL_TRY(get_int(b, c, 0, "count", !is_repeat, &n));
    int rc;
    if (is_repeat)
        rc = sl_dataset_repeat(out, in, n);
    else if (!strcmp(c->name, "take"))
        rc = sl_dataset_take(out, in, n);
    else
        rc = sl_dataset_skip(out, in, n);
    return rc ? stage_error(b, c, rc, "count must not be negative") : 0;
}

static int b_shard(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"num_shards", "index"};
    SL_TRY(check(b, c, 2, keys, 2));
    int64_t n = 0, i = 0;
    SL_TRY(get_int(b, c, 0, "num_shards", true, &n));
    SL_TRY(get_int(b, c, 1, "index", true, &i));
    const int rc = sl_dataset_shard(out, in, n, i);
    return rc ? stage_error(b, c, rc, "need num_shards >= 1 and 0 <= index < num_shards") : 0;
}

static int b_enumerate(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"start"};
    SL_TRY(check(b, c, 1, keys, 1));
    int64_t start = 0;
    SL_TRY(get_int(b, c, 0, "start", false, &start));
    return sl_dataset_enumerate(out, in, start);
}

static int b_shuffle(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"buffer_size", "seed", "reshuffle_each_iteration"};
    SL_TRY(check(b, c, 2, keys, 3));
    int64_t n = 0, seed = 0;
    int reshuffle = 1;
    SL_TRY(get_int(b, c, 0, "buffer_size", true, &n));
    SL_TRY(get_int(b, c, 1, "seed", false, &seed));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "reshuffle_each_iteration", &reshuffle));
    const int rc = sl_dataset_shuffle(out, in, n, (uint64_t)seed, reshuffle);
    return rc ? stage_error(b, c, rc, "buffer_size must be 1 to 67108864") : 0;
}

static int b_global_shuffle(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"seed", "reshuffle_each_iteration"};
    SL_TRY(check(b, c, 1, keys, 2));
    int64_t seed = 0;
    int reshuffle = 1;
    SL_TRY(get_int(b, c, 0, "seed", false, &seed));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "reshuffle_each_iteration", &reshuffle));
    const int rc = sl_dataset_global_shuffle(out, in, (uint64_t)seed, reshuffle);
    return rc ? stage_error(b, c, rc,
                            "needs a random-access input of known size: records(...), "
                            "range(...), tfrecord(...) with .idx files, or a map/take/skip/"
                            "shard over one")
              : 0;
}

static int build_stages(build_ctx *b, const sl_ast_stage *st, size_t n, sl_dataset **out);

/* rename(old="new", ...): named arguments only, each value a string. */
static int b_rename(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    if (c->nargs > 0 || c->nnamed == 0 || c->nnamed > SL_ELEMENT_MAX)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "rename: expected old=\"new\" pairs (1 to %d)", SL_ELEMENT_MAX);
    const char *from[SL_ELEMENT_MAX], *to[SL_ELEMENT_MAX];
    for (size_t k = 0; k < c->nnamed; k++) {
        size_t len;
        from[k] = c->named[k].key;
        SL_TRY(
            sl_ast_value_get_string(&c->named[k].value, "rename", &to[k], &len, b->err, b->errcap));
    }
    const int rc = sl_dataset_rename(out, in, from, to, (int)c->nnamed);
    return rc ? stage_error(b, c, rc, "cannot build") : 0;
}

/* select("name", ...) */
static int b_select(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    if (c->nnamed > 0 || c->nargs == 0 || c->nargs > SL_ELEMENT_MAX)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "select: expected 1 to %d tensor names", SL_ELEMENT_MAX);
    const char *names[SL_ELEMENT_MAX];
    for (size_t k = 0; k < c->nargs; k++) {
        size_t len;
        SL_TRY(sl_ast_value_get_string(&c->args[k], "select", &names[k], &len, b->err, b->errcap));
    }
    const int rc = sl_dataset_select(out, in, names, (int)c->nargs);
    return rc ? stage_error(b, c, rc, "names must be distinct") : 0;
}

/* parse_example("SCHEMA") */
static int b_parse_example(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"schema"};
    SL_TRY(check(b, c, 1, keys, 1));
    const sl_ast_value *v;
    const char *text;
    size_t len;
    SL_TRY(sl_ast_call_arg(c, 0, "schema", true, &v, b->err, b->errcap));
    SL_TRY(sl_ast_value_get_string(v, "parse_example: schema", &text, &len, b->err, b->errcap));
    char why[SL_ERRMSG_CAP] = "";
    const int rc = sl_dataset_parse_example(out, in, text, why, sizeof why);
    if (rc)
        return sl_ast_error(b->err, b->errcap, rc, v->span, "%s", why[0] ? why : sl_strerror(rc));
    return 0;
}

/* One value that is a pipeline (`a | b`) or a single source call (`range(3)`). */
static int build_value_pipeline(build_ctx *b, const sl_ast_value *v, const char *what,
                                sl_dataset **out)
{
    if (v->kind == SL_AST_PIPELINE)
        return build_stages(b, v->as.pipeline.stages, v->as.pipeline.nstages, out);
    if (v->kind == SL_AST_CALL || v->kind == SL_AST_IDENT)
        return build_stages(b, &v->as.call, 1, out);
    return sl_ast_error(b->err, b->errcap, SL_ERR_TYPE, v->span,
                        "%s: expected a pipeline, found %s", what, sl_ast_kind_name(v->kind));
}

/* A list of pipelines: [a | b, range(3), ...]. *n gets the count; release with release_all. */
static int build_pipeline_list(build_ctx *b, const sl_ast_call *c, const sl_ast_value *v,
                               sl_dataset **out, int cap, int *n)
{
    *n = 0;
    if (!v || v->kind != SL_AST_LIST || v->as.list.count == 0 || v->as.list.count > (size_t)cap)
        return sl_ast_error(b->err, b->errcap, SL_ERR_TYPE, v ? v->span : c->span,
                            "%s: expected a list of 1 to %d pipelines", c->name, cap);
    for (size_t k = 0; k < v->as.list.count; k++) {
        SL_TRY(build_value_pipeline(b, &v->as.list.items[k], c->name, &out[k]));
        *n = (int)k + 1;
    }
    return 0;
}

static void release_all(sl_dataset **ds, int n)
{
    for (int k = 0; k < n; k++)
        sl_dataset_release(ds[k]);
}

static int b_sample_from(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"datasets", "weights", "seed", "stop_on_empty_dataset"};
    SL_TRY(no_input(b, c, in));
    SL_TRY(check(b, c, 1, keys, 4));
    const sl_ast_value *v, *w;
    SL_TRY(sl_ast_call_arg(c, 0, "datasets", true, &v, b->err, b->errcap));
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "weights", false, &w, b->err, b->errcap));
    int64_t seed = 0;
    int stop = 0;
    SL_TRY(get_int(b, c, SL_AST_NO_INDEX, "seed", false, &seed));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "stop_on_empty_dataset", &stop));
    sl_dataset *inputs[SL__MAX_INPUTS];
    double weights[SL__MAX_INPUTS];
    int n = 0;
    int rc = build_pipeline_list(b, c, v, inputs, SL__MAX_INPUTS, &n);
    if (rc == 0 && w) {
        if (w->kind != SL_AST_LIST || w->as.list.count != (size_t)n)
            rc = sl_ast_error(b->err, b->errcap, SL_ERR_TYPE, w->span,
                              "%s: weights must be a list of %d numbers", c->name, n);
        for (int k = 0; rc == 0 && k < n; k++)
            rc = sl_ast_value_get_double(&w->as.list.items[k], "sample_from_datasets: weights",
                                         &weights[k], b->err, b->errcap);
    }
    if (rc == 0) {
        rc = sl_dataset_sample_from(out, inputs, n, w ? weights : NULL, (uint64_t)seed, stop);
        if (rc)
            rc = stage_error(b, c, rc, "weights must be non-negative with a positive sum");
    }
    release_all(inputs, n);
    return rc;
}

static int b_choose_from(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"datasets", "choice_dataset"};
    SL_TRY(no_input(b, c, in));
    SL_TRY(check(b, c, 2, keys, 2));
    const sl_ast_value *v, *cv;
    SL_TRY(sl_ast_call_arg(c, 0, "datasets", true, &v, b->err, b->errcap));
    SL_TRY(sl_ast_call_arg(c, 1, "choice_dataset", true, &cv, b->err, b->errcap));
    sl_dataset *inputs[SL__MAX_INPUTS], *choices = NULL;
    int n = 0;
    int rc = build_pipeline_list(b, c, v, inputs, SL__MAX_INPUTS - 1, &n);
    if (rc == 0)
        rc = build_value_pipeline(b, cv, c->name, &choices);
    if (rc == 0 && (rc = sl_dataset_choose_from(out, inputs, n, choices)) != 0)
        rc = stage_error(b, c, rc, "cannot build");
    sl_dataset_release(choices);
    release_all(inputs, n);
    return rc;
}

/* zip(PIPELINE): the argument is a whole pipeline (`range(3) | map(f)`) or one source call. */
static int b_zip(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    SL_TRY(check(b, c, 1, NULL, 0));
    const sl_ast_value *v = sl_ast_call_positional(c, 0);
    if (!v)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "zip: expected the pipeline to zip with");
    sl_dataset *other = NULL;
    int rc;
    if (v->kind == SL_AST_PIPELINE)
        rc = build_stages(b, v->as.pipeline.stages, v->as.pipeline.nstages, &other);
    else if (v->kind == SL_AST_CALL || v->kind == SL_AST_IDENT)
        rc = build_stages(b, &v->as.call, 1, &other);
    else
        rc = sl_ast_error(b->err, b->errcap, SL_ERR_TYPE, v->span,
                          "zip: expected a pipeline, found %s", sl_ast_kind_name(v->kind));
    if (rc)
        return rc;
    rc = sl_dataset_zip(out, in, other);
    sl_dataset_release(other);
    return rc ? stage_error(b, c, rc, "cannot build") : 0;
}

/* files("pattern", ...): the matching file names as {"path": bytes}. */
static int b_file_list(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    SL_TRY(no_input(b, c, in));
    SL_TRY(check(b, c, SIZE_MAX, NULL, 0));
    if (c->nargs == 0)
        return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, c->span,
                            "files: expected file names or glob patterns");
    const char **patterns = sl_calloc(c->nargs, sizeof *patterns);
    if (!patterns)
        return SL_ERR_NOMEM;
    int rc = 0;
    for (size_t i = 0; i < c->nargs && rc == 0; i++) {
        size_t len;
        rc = sl_ast_value_get_string(&c->args[i], "files", &patterns[i], &len, b->err, b->errcap);
    }
    if (rc == 0) {
        char why[SL_ERRMSG_CAP] = "";
        if ((rc = sl_dataset_file_list(out, patterns, c->nargs, why, sizeof why)) != 0)
            sl_ast_error(b->err, b->errcap, rc, c->span, "files: %s",
                         why[0] ? why : sl_strerror(rc));
    }
    sl_free(patterns);
    return rc;
}

/* interleave(INNER, cycle_length=N, block_length=M, parallel=P|auto, ordered=B): INNER is a
 * pipeline whose placeholders ($path) stand for tensors of the outer element. It is built anew
 * for every outer element, from the interleave node's own copy of the inner tree and of the
 * registry (the caller's may be gone by then). */
typedef struct inner_recipe {
    sl_ast *ast;      /* the inner pipeline, placeholders unbound */
    sl_registry *reg; /* a copy of the builder's registry, or NULL */
} inner_recipe;

static void inner_recipe_free(void *user)
{
    inner_recipe *r = user;
    if (!r)
        return;
    sl_ast_free(r->ast);
    sl_registry_free(r->reg);
    sl_free(r);
}

static int registry_copy(const sl_registry *r, sl_registry **out)
{
    *out = NULL;
    if (!r)
        return 0;
    SL_TRY(sl_registry_create(out));
    for (size_t i = 0; i < r->count; i++) {
        const entry *e = &r->items[i];
        const int rc = sl_registry_add(*out, e->name, e->factory, e->user, e->summary);
        if (rc) {
            sl_registry_free(*out);
            *out = NULL;
            return rc;
        }
    }
    for (size_t k = 0; k < r->nfusers; k++)
        (*out)->fusers[(*out)->nfusers++] = r->fusers[k];
    return 0;
}

typedef struct binding {
    const sl_element *outer;
    char *err;
    size_t errcap;
} binding;

/* $name: the outer element's tensor `name` as a literal: a byte string as a string, an integer
 * scalar as an integer, a float scalar as a float. */
static int bind_tensor(void *user, const sl_ast_value *ph, sl_ast_value *out)
{
    const binding *bd = user;
    const char *name = ph->as.placeholder;
    const sl_tensor *t = sl_element_get(bd->outer, name);
    if (!t) {
        char have[SL_ERRMSG_CAP / 2] = "";
        size_t at = 0;
        for (int k = 0; k < bd->outer->count && at < sizeof have; k++)
            at += (size_t)snprintf(have + at, sizeof have - at, "%s%s", k ? ", " : "",
                                   bd->outer->names[k]);
        return sl_ast_error(bd->err, bd->errcap, SL_ERR_NOT_FOUND, ph->span,
                            "$%s: the outer element has no tensor \"%s\" (it has %s)", name, name,
                            have[0] ? have : "none");
    }
    if (t->dtype == SL_DTYPE_BYTES && t->rank == 1) {
        out->kind = SL_AST_STRING;
        out->as.str.data = t->data;
        out->as.str.len = sl_tensor_nbytes(t);
    } else if (t->rank == 0 && sl_dtype_is_float(t->dtype)) {
        out->kind = SL_AST_FLOAT;
        out->as.f = sl_dtype_load_f64(t->dtype, t->data);
    } else if (t->rank == 0 && t->dtype != SL_DTYPE_BYTES && t->dtype != SL_DTYPE_INVALID) {
        out->kind = SL_AST_INT;
        out->as.i = sl_dtype_load_i64(t->dtype, t->data);
    } else {
        char type[64];
        sl_tensor_format_type(t, type, sizeof type);
        return sl_ast_error(bd->err, bd->errcap, SL_ERR_TYPE, ph->span,
                            "$%s: tensor \"%s\" is %s; only scalars and byte strings can stand "
                            "in the text",
                            name, name, type);
    }
    return 0;
}

static int build_stages(build_ctx *b, const sl_ast_stage *st, size_t n, sl_dataset **out);

static int make_inner(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                      size_t errcap)
{
    const inner_recipe *r = user;
    binding bd = {outer, err, errcap};
    sl_ast *bound;
    SL_TRY(sl__ast_bind(sl_ast_root(r->ast), bind_tensor, &bd, "interleave", &bound));
    build_ctx b = {r->reg, err, errcap};
    const sl_ast_pipeline *p = sl_ast_root(bound);
    const int rc = build_stages(&b, p->stages, p->nstages, inner);
    sl_ast_free(bound);
    return rc;
}

static int stage_known(const char *name, int *source);

static int b_interleave(build_ctx *b, const sl_ast_call *c, sl_dataset *in, sl_dataset **out)
{
    static const char *const keys[] = {"inner", "cycle_length", "block_length", "parallel",
                                       "ordered"};
    SL_TRY(check(b, c, 3, keys, 5));
    const sl_ast_value *v;
    sl_ast_pipeline inner;
    SL_TRY(sl_ast_call_arg(c, 0, "inner", true, &v, b->err, b->errcap));
    SL_TRY(sl_ast_value_get_pipeline(v, "interleave: inner", &inner, b->err, b->errcap));
    int64_t cycle = 1, block = 1, parallel = 1;
    int ordered = 1;
    SL_TRY(get_int(b, c, 1, "cycle_length", false, &cycle));
    SL_TRY(get_int(b, c, 2, "block_length", false, &block));
    SL_TRY(get_int_or_auto(b, c, SL_AST_NO_INDEX, "parallel", false, &parallel));
    SL_TRY(get_bool(b, c, SL_AST_NO_INDEX, "ordered", &ordered));
    if (cycle < 1 || cycle > 1024 || block < 1 ||
        (parallel != SL_PARALLEL_AUTO && (parallel < 1 || parallel > 1024)))
        return sl_ast_error(b->err, b->errcap, SL_ERR_INVAL, c->span,
                            "interleave: need cycle_length 1 to 1024, block_length >= 1 and "
                            "parallel auto or 1 to 1024");
    /* What can be checked before any outer element exists: the inner stages' names. */
    for (size_t i = 0; i < inner.nstages; i++) {
        int source;
        if (!stage_known(inner.stages[i].name, &source))
            return sl_ast_error(b->err, b->errcap, SL_ERR_NOT_FOUND, inner.stages[i].span,
                                "interleave: no stage called \"%s\"", inner.stages[i].name);
        if (i == 0 && !source)
            return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, inner.stages[i].span,
                                "interleave: the inner pipeline must start with a source");
        if (i > 0 && source)
            return sl_ast_error(b->err, b->errcap, SL_ERR_SYNTAX, inner.stages[i].span,
                                "interleave: %s: a source must come first", inner.stages[i].name);
    }
    inner_recipe *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    int rc = sl__ast_bind(&inner, NULL, NULL, NULL, &r->ast);
    if (rc == 0)
        rc = registry_copy(b->reg, &r->reg);
    if (rc) {
        inner_recipe_free(r);
        return rc;
    }
    char name[SL__TEXT_CAP];
    sl_ast_pipeline_print(&inner, name, sizeof name);
    const sl_interleave_options o = {cycle, block, (int)parallel, !ordered, inner_recipe_free};
    rc = sl_dataset_interleave(out, in, make_inner, r, name, &o);
    return rc ? stage_error(b, c, rc, "cannot build") : 0;
}

static const struct {
    const char *name;
    int source;
    stage_builder build;
} stages[] = {
    {"range", 1, b_range},
    {"records", 1, b_files},
    {"tfrecord", 1, b_files},
    {"files", 1, b_file_list},
    {"sample_from_datasets", 1, b_sample_from},
    {"choose_from_datasets", 1, b_choose_from},
    {"map", 0, b_map},
    {"batch", 0, b_batch},
    {"padded_batch", 0, b_padded_batch},
    {"unbatch", 0, b_unbatch},
    {"cache", 0, b_cache},
    {"prefetch", 0, b_prefetch},
    {"take", 0, b_count_stage},
    {"skip", 0, b_count_stage},
    {"repeat", 0, b_count_stage},
    {"shard", 0, b_shard},
    {"enumerate", 0, b_enumerate},
    {"shuffle", 0, b_shuffle},
    {"global_shuffle", 0, b_global_shuffle},
    {"zip", 0, b_zip},
    {"rename", 0, b_rename},
    {"select", 0, b_select},
    {"parse_example", 0, b_parse_example},
    {"interleave", 0, b_interleave},
};

static int stage_known(const char *name, int *source)
{
    for (size_t k = 0; k < SL_ARRAY_LEN(stages); k++)
        if (!strcmp(stages[k].name, name)) {
            *source = stages[k].source;
            return 1;
        }
    return 0;
}

static int build_stages(build_ctx *b, const sl_ast_stage *st, size_t n, sl_dataset **out)
{
    *out = NULL;
    sl_dataset *ds = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = 0;
        while (k < SL_ARRAY_LEN(stages) && strcmp(stages[k].name, st[i].name))
            k++;
        if (k == SL_ARRAY_LEN(stages)) {
            rc = sl_ast_error(b->err, b->errcap, SL_ERR_NOT_FOUND, st[i].span,
                              "no stage called \"%s\"%s", st[i].name,
                              find(b->reg, st[i].name) ? " (it is a map function: write map(...))"
                                                       : "");
            break;
        }
        if (i == 0 && !stages[k].source) {
            rc = sl_ast_error(
                b->err, b->errcap, SL_ERR_SYNTAX, st[i].span,
                "%s: a pipeline starts with a source (range, records, tfrecord, files, "
                "sample_from_datasets, choose_from_datasets)",
                st[i].name);
            break;
        }
        sl_dataset *next = NULL;
        rc = stages[k].build(b, &st[i], ds, &next);
        sl_dataset_release(ds);
        ds = next;
        /* The stage's name everywhere (errors, profiles) is its canonical text as written. */
        if (rc == 0 &&
            sl_ast_stage_print(&st[i], ds->text, sizeof ds->text) >= (int)sizeof ds->text)
            rc = sl_ast_error(b->err, b->errcap, SL_ERR_TOO_LARGE, st[i].span,
                              "%s: the stage's text is longer than %d bytes", st[i].name,
                              SL__TEXT_CAP - 1);
    }
    if (rc) {
        sl_dataset_release(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int sl_pipeline_build(sl_dataset **out, const char *text, const sl_registry *reg, char *err,
                      size_t errcap)
{
    *out = NULL;
    sl_ast *ast;
    SL_TRY(sl_pipeline_text_parse(text, strlen(text), &ast, err, errcap));
    const sl_ast_pipeline *p = sl_ast_root(ast);
    build_ctx b = {reg, err, errcap};
    const int rc = build_stages(&b, p->stages, p->nstages, out);
    sl_ast_free(ast);
    return rc;
}
