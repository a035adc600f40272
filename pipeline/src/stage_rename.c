/*
 * rename(old="new", ...): relabels tensors of every element (for zip, whose inputs must not
 * share a name, and for the names a trainer expects). select("a", "b", ...): keeps only the
 * named tensors, in that order (e.g. to drop a file's ragged `path` before batch). An element
 * without a named tensor is an error naming it. Random access when the input has it. Runs on
 * the calling thread.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

enum { MAX_RENAMES = SL_ELEMENT_MAX };

typedef struct rename_params {
    int n;
    int select; /* select(from...): keep these, in this order; to[] unused */
    char *from[MAX_RENAMES];
    char *to[MAX_RENAMES]; /* element names point here: they live as long as the dataset */
} rename_params;

typedef struct rename_stage {
    sl__stage base;
    sl__stage *input;
    uint64_t index;
} rename_stage;

static int missing(sl__stage *s, uint64_t index, sl_element *e, const char *name)
{
    sl_element_release(e);
    return sl__stage_fail(s, SL_ERR_NOT_FOUND, "element %llu has no tensor \"%s\"",
                          (unsigned long long)index, name);
}

static int keep_selected(sl__stage *s, uint64_t index, sl_element *e)
{
    const rename_params *p = s->ds->params;
    sl_element kept;
    memset(&kept, 0, sizeof kept);
    for (int k = 0; k < p->n; k++) {
        const int i = sl_element_find(e, p->from[k]);
        if (i < 0) {
            sl_element_release(&kept);
            return missing(s, index, e, p->from[k]);
        }
        kept.names[k] = p->from[k];
        kept.tensors[k] = e->tensors[i];
        sl_buffer_retain(e->tensors[i].buffer);
        kept.count = k + 1;
    }
    sl_element_release(e);
    *e = kept;
    return 0;
}

static int relabel(sl__stage *s, uint64_t index, sl_element *e)
{
    const rename_params *p = s->ds->params;
    if (p->select)
        return keep_selected(s, index, e);
    for (int k = 0; k < p->n; k++) {
        const int i = sl_element_find(e, p->from[k]);
        if (i < 0)
            return missing(s, index, e, p->from[k]);
        e->names[i] = p->to[k];
    }
    return 0;
}

static int rename_next(sl__stage *s, sl_element *out)
{
    rename_stage *r = (rename_stage *)s;
    const int rc = sl__stage_next(r->input, out);
    return rc ? rc : relabel(s, r->index++, out); /* SL_EOF passes through as is */
}

static int rename_get(sl__stage *s, uint64_t i, sl_element *out)
{
    SL_TRY(sl__stage_get(((rename_stage *)s)->input, i, out));
    return relabel(s, i, out);
}

/* The input's batch (reads in flight together), then each element relabelled. */
static int rename_get_batch(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out)
{
    SL_TRY(sl__stage_get_batch(((rename_stage *)s)->input, idx, n, out));
    for (size_t j = 0; j < n; j++) {
        const int rc = relabel(s, idx[j], &out[j]);
        if (rc) { /* relabel released out[j] */
            for (size_t k = 0; k < n; k++)
                if (k != j)
                    sl_element_release(&out[k]);
            return rc;
        }
    }
    return 0;
}

static void rename_cancel(sl__stage *s)
{
    sl__stage_cancel(((rename_stage *)s)->input);
}

static void rename_close(sl__stage *s)
{
    sl__stage_close(((rename_stage *)s)->input);
    sl_free(s);
}

/* Index-only stages: their counter, then the input's state. */
static int rename_save(sl__stage *s, sl__state_writer *w)
{
    rename_stage *r = (rename_stage *)s;
    sl__state_put(w, r->index);
    return sl__stage_save(r->input, w);
}

static int rename_seek(sl__stage *s, uint64_t pos)
{
    rename_stage *r = (rename_stage *)s;
    r->index = pos;
    return sl__stage_seek(r->input, pos);
}

static const sl__stage_ops rename_stage_ops = {rename_next,     rename_cancel, rename_close,
                                               rename_get,      rename_save,   rename_seek,
                                               rename_get_batch};

static int rename_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                       sl__stage **out)
{
    rename_stage *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ERR_NOMEM;
    r->base = (sl__stage){&rename_stage_ops, ctx, ds, epoch};
    if (st)
        r->index = sl__state_get(st);
    const int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &r->input);
    if (rc) {
        sl_free(r);
        return rc;
    }
    *out = &r->base;
    return 0;
}

static int64_t rename_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int rename_random_access(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]);
}

static void rename_free(void *params)
{
    rename_params *p = params;
    for (int k = 0; p && k < p->n; k++) {
        sl_free(p->from[k]);
        sl_free(p->to[k]);
    }
    sl_free(p);
}

static const sl__dataset_ops rename_ops = {"rename", rename_open, rename_cardinality, rename_free,
                                           rename_random_access};
static const sl__dataset_ops select_ops = {"select", rename_open, rename_cardinality, rename_free,
                                           rename_random_access};

int sl_dataset_rename(sl_dataset **out, sl_dataset *in, const char *const *from,
                      const char *const *to, int n)
{
    *out = NULL;
    if (!in || n < 1 || n > MAX_RENAMES)
        return SL_ERR_INVAL;
    rename_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    char text[SL__TEXT_CAP];
    size_t at = (size_t)snprintf(text, sizeof text, "rename(");
    for (int k = 0; k < n; k++) {
        p->from[k] = sl_strdup(from[k]);
        p->to[k] = sl_strdup(to[k]);
        p->n = k + 1;
        if (!p->from[k] || !p->to[k]) {
            rename_free(p);
            return SL_ERR_NOMEM;
        }
        if (at < sizeof text)
            at += (size_t)snprintf(text + at, sizeof text - at, "%s%s=\"%s\"", k ? ", " : "",
                                   from[k], to[k]);
    }
    if (at < sizeof text)
        snprintf(text + at, sizeof text - at, ")");
    return sl__dataset_create(out, &rename_ops, &in, 1, p, "%s", text);
}

int sl_dataset_select(sl_dataset **out, sl_dataset *in, const char *const *names, int n)
{
    *out = NULL;
    if (!in || n < 1 || n > MAX_RENAMES)
        return SL_ERR_INVAL;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < a; b++)
            if (!strcmp(names[a], names[b]))
                return SL_ERR_INVAL; /* a name twice would share one buffer reference twice */
    rename_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->select = 1;
    char text[SL__TEXT_CAP];
    size_t at = (size_t)snprintf(text, sizeof text, "select(");
    for (int k = 0; k < n; k++) {
        if (!(p->from[k] = sl_strdup(names[k]))) {
            rename_free(p);
            return SL_ERR_NOMEM;
        }
        p->n = k + 1;
        if (at < sizeof text)
            at +=
                (size_t)snprintf(text + at, sizeof text - at, "%s\"%s\"", k ? ", " : "", names[k]);
    }
    if (at < sizeof text)
        snprintf(text + at, sizeof text - at, ")");
    return sl__dataset_create(out, &select_ops, &in, 1, p, "%s", text);
}
