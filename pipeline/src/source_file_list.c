/*
 * files(patterns...): the file names matching glob patterns, as elements {"path": bytes}, opening
 * none of them. It is the outer input of interleave (`files("a-*.sluice") | shuffle(16) |
 * interleave(records($path), cycle_length=4)`), so the list of files can be shuffled and sharded
 * before any file is read.
 *
 * Patterns are expanded once, when the dataset is built: each pattern's matches sorted, in
 * pattern order, a pattern that matches nothing an error naming it (a job pointed at an empty
 * directory should stop, not train on nothing). The list is fixed from then on, so the source
 * has a cardinality and random access, and a checkpoint is one position.
 *
 * Runs on the calling thread; the dataset is immutable after building.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct list_params {
    size_t n;
    char **paths; /* (n) */
} list_params;

typedef struct list_stage {
    sl__stage base;
    uint64_t next;
} list_stage;

static const list_params *lp(const sl__stage *s)
{
    return s->ds->params;
}

static int list_get(sl__stage *s, uint64_t i, sl_element *out)
{
    const list_params *p = lp(s);
    if (i >= p->n)
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu of %zu", (unsigned long long)i, p->n);
    const int64_t len = (int64_t)strlen(p->paths[i]);
    sl_tensor t;
    if (sl_tensor_alloc(&t, SL_DTYPE_BYTES, 1, &len))
        return sl__stage_fail(s, SL_ERR_NOMEM, "%s", p->paths[i]);
    memcpy(t.data, p->paths[i], (size_t)len);
    return sl_element_push(out, "path", &t);
}

static int list_next(sl__stage *s, sl_element *out)
{
    list_stage *l = (list_stage *)s;
    if (l->next >= lp(s)->n)
        return SL_EOF;
    SL_TRY(list_get(s, l->next, out));
    l->next++;
    return 0;
}

static void list_close(sl__stage *s)
{
    sl_free(s);
}

static int list_save(sl__stage *s, sl__state_writer *w)
{
    sl__state_put(w, ((list_stage *)s)->next);
    return 0;
}

static int list_seek(sl__stage *s, uint64_t pos)
{
    if (pos > lp(s)->n)
        return sl__stage_fail(s, SL_ERR_RANGE, "seeking to element %llu of %zu",
                              (unsigned long long)pos, lp(s)->n);
    ((list_stage *)s)->next = pos;
    return 0;
}

static const sl__stage_ops list_stage_ops = {list_next, NULL,      list_close,
                                             list_get,  list_save, list_seek};

static int list_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                     sl__stage **out)
{
    list_stage *l = sl_calloc(1, sizeof *l);
    if (!l)
        return SL_ERR_NOMEM;
    l->base = (sl__stage){&list_stage_ops, ctx, ds, epoch};
    int rc = 0;
    if (st) {
        const uint64_t pos = sl__state_get(st);
        rc = st->err ? st->err : list_seek(&l->base, pos);
    }
    if (rc) {
        sl_free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static int64_t list_cardinality(const sl_dataset *ds)
{
    return (int64_t)((const list_params *)ds->params)->n;
}

static int always(const sl_dataset *ds)
{
    return 1;
}

static void list_free(void *params)
{
    list_params *p = params;
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        sl_free(p->paths[i]);
    sl_free(p->paths);
    sl_free(p);
}

static const sl__dataset_ops list_ops = {"file_list", list_open, list_cardinality, list_free,
                                         always};

static int fail(char *err, size_t errcap, int code, const char *what, const char *pattern)
{
    if (err && errcap)
        snprintf(err, errcap, "%s: %s", pattern, what);
    return code;
}

static int expand(list_params *p, const char *pattern, size_t *cap, char *err, size_t errcap)
{
    glob_t g;
    const int grc = glob(pattern, GLOB_ERR, NULL, &g);
    /* GLOB_ABORTED: a directory on the way cannot be read (usually: it does not exist). */
    if (grc == GLOB_NOMATCH || grc == GLOB_ABORTED || (grc == 0 && g.gl_pathc == 0)) {
        if (grc != GLOB_NOMATCH)
            globfree(&g);
        return fail(err, errcap, -ENOENT, "no file matches", pattern);
    }
    if (grc)
        return fail(err, errcap, SL_ERR_INVAL, "cannot expand the pattern", pattern);
    int rc = 0;
    for (size_t k = 0; k < g.gl_pathc && rc == 0; k++) { /* glob sorts its matches */
        if (p->n == *cap) {
            const size_t ncap = *cap ? 2 * *cap : 16;
            char **np = sl_realloc(p->paths, ncap * sizeof *np);
            if (!np) {
                rc = SL_ERR_NOMEM;
                break;
            }
            p->paths = np;
            *cap = ncap;
        }
        if (!(p->paths[p->n] = sl_strdup(g.gl_pathv[k])))
            rc = SL_ERR_NOMEM;
        else
            p->n++;
    }
    globfree(&g);
    return rc;
}

int sl_dataset_file_list(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                         size_t errcap)
{
    *out = NULL;
    if (err && errcap)
        err[0] = '\0';
    if (!patterns || n == 0) {
        if (err && errcap)
            snprintf(err, errcap, "no pattern given");
        return SL_ERR_INVAL;
    }
    list_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = patterns[i] ? expand(p, patterns[i], &cap, err, errcap) : SL_ERR_INVAL;
    if (rc) {
        list_free(p);
        return rc;
    }
    /* Canonical text: the patterns as given, quoted. */
    char text[SL__TEXT_CAP];
    size_t at = (size_t)snprintf(text, sizeof text, "files(");
    for (size_t i = 0; i < n && at < sizeof text; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%s\"%s\"", i ? ", " : "", patterns[i]);
    if (at < sizeof text)
        snprintf(text + at, sizeof text - at, ")");
    return sl__dataset_create(out, &list_ops, NULL, 0, p, "%s", text);
}
