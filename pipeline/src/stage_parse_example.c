/*
 * parse_example(SCHEMA): tf.train.Example payloads ({"record": bytes}, as tfrecord(...) and
 * opaque records(...) produce) into named tensors, like tf.io.parse_single_example. The schema
 * text (formats/FORMAT.md) names the features: int64 and float32 fields of fixed shape are
 * FixedLen, a field with one variable dimension (`ids:int64[-1]`) is VarLen, a `bytes` field is
 * one byte string. Floats and byte strings are views of the record (no copy); int64 values are
 * decoded into a new tensor. A missing or mistyped feature is an element error naming it.
 *
 * Runs on the calling thread (put it in a parallel map's place by following it with prefetch,
 * or parse inside a map function when the parse itself is the heavy part).
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/example.h"
#include "sluice/schema.h"

typedef struct parse_params {
    sl_schema *schema; /* field names live here: element names point at them */
    sl_example_spec *spec;
    int n;
} parse_params;

typedef struct parse_stage {
    sl__stage base;
    sl__stage *input;
    uint64_t index;
    sl_example_view views[SL_ELEMENT_MAX];
} parse_stage;

static int parse_one(sl__stage *s, uint64_t index, sl_element *in, sl_element *out)
{
    parse_stage *x = (parse_stage *)s;
    const parse_params *p = s->ds->params;
    const sl_tensor *rec = sl_element_get(in, "record");
    int rc;
    char err[SL_ERRMSG_CAP] = "";
    if (!rec || rec->dtype != SL_DTYPE_BYTES) {
        rc = sl__stage_fail(s, SL_ERR_SCHEMA, "element %llu has no \"record\" byte string",
                            (unsigned long long)index);
        goto done;
    }
    rc = sl_example_parse(p->spec, rec->data, sl_tensor_nbytes(rec), x->views, err, sizeof err);
    if (rc) { /* err already ends with the cause */
        char text[SL_ERRMSG_CAP];
        snprintf(text, sizeof text, "%s: element %llu: %s", s->ds->text, (unsigned long long)index,
                 err);
        rc = sl__stage_fail_raw(s, rc, text);
        goto done;
    }
    for (int k = 0; k < p->n && rc == 0; k++) {
        sl_tensor t;
        rc = sl_example_view_tensor(p->spec, k, &x->views[k], rec->buffer, &t);
        if (rc)
            rc = sl__stage_fail(s, rc, "element %llu: feature \"%s\"", (unsigned long long)index,
                                sl_schema_field_at(p->schema, k)->name);
        else
            sl_element_push(out, sl_schema_field_at(p->schema, k)->name, &t);
    }
done:
    if (rc)
        sl_element_release(out);
    sl_element_release(in); /* views into it hold their own references */
    return rc;
}

static int parse_next(sl__stage *s, sl_element *out)
{
    parse_stage *x = (parse_stage *)s;
    for (;;) {
        sl_element in;
        memset(&in, 0, sizeof in);
        const int got = sl__stage_next(x->input, &in);
        if (got) /* SL_EOF or an error */
            return got;
        const uint64_t index = x->index++;
        const int rc = parse_one(s, index, &in, out);
        if (rc == 0 || s->ctx->on_error != SL_ON_ERROR_SKIP || rc == SL_ERR_NOMEM)
            return rc;
        sl__ctx_count_skip(s->ctx); /* SKIP: the message stays as the last cause seen */
    }
}

static int parse_get(sl__stage *s, uint64_t i, sl_element *out)
{
    sl_element in;
    memset(&in, 0, sizeof in);
    SL_TRY(sl__stage_get(((parse_stage *)s)->input, i, &in));
    return parse_one(s, i, &in, out);
}

static void parse_cancel(sl__stage *s)
{
    sl__stage_cancel(((parse_stage *)s)->input);
}

static void parse_close(sl__stage *s)
{
    sl__stage_close(((parse_stage *)s)->input);
    sl_free(s);
}

static int parse_save(sl__stage *s, sl__state_writer *w)
{
    parse_stage *x = (parse_stage *)s;
    sl__state_put(w, x->index);
    return sl__stage_save(x->input, w);
}

static int parse_seek(sl__stage *s, uint64_t pos)
{
    parse_stage *x = (parse_stage *)s;
    x->index = pos;
    return sl__stage_seek(x->input, pos);
}

static const sl__stage_ops parse_stage_ops = {parse_next, parse_cancel, parse_close,
                                              parse_get,  parse_save,   parse_seek};

static int parse_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    parse_stage *x = sl_calloc(1, sizeof *x);
    if (!x)
        return SL_ERR_NOMEM;
    x->base = (sl__stage){&parse_stage_ops, ctx, ds, epoch};
    if (st)
        x->index = sl__state_get(st);
    const int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &x->input);
    if (rc) {
        sl_free(x);
        return rc;
    }
    *out = &x->base;
    return 0;
}

static int64_t parse_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int parse_random_access(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]);
}

static void parse_free(void *params)
{
    parse_params *p = params;
    if (!p)
        return;
    sl_example_spec_free(p->spec);
    sl_schema_free(p->schema);
    sl_free(p);
}

static const sl__dataset_ops parse_ops = {"parse_example", parse_open, parse_cardinality,
                                          parse_free, parse_random_access};

int sl_dataset_parse_example(sl_dataset **out, sl_dataset *in, const char *schema_text, char *err,
                             size_t errcap)
{
    *out = NULL;
    if (!in || !schema_text)
        return SL_ERR_INVAL;
    parse_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    int rc = sl_schema_parse(&p->schema, schema_text, err, errcap);
    if (rc) {
        parse_free(p);
        return rc;
    }
    p->n = sl_schema_field_count(p->schema);
    sl_example_spec_entry entries[SL_ELEMENT_MAX];
    memset(entries, 0, sizeof entries);
    if (p->n > SL_ELEMENT_MAX)
        rc = SL_ERR_TOO_LARGE;
    for (int k = 0; k < p->n && rc == 0; k++) {
        const sl_schema_field *f = sl_schema_field_at(p->schema, k);
        sl_example_spec_entry *e = &entries[k];
        e->key = f->name;
        int variable = 0;
        for (int d = 0; d < f->rank; d++)
            variable += f->shape[d] < 0;
        if (f->dtype == SL_DTYPE_BYTES) {
            e->type = SL_EXAMPLE_BYTES; /* one byte string */
            e->length = SL_EXAMPLE_FIXED_LEN;
            continue;
        }
        if ((f->dtype != SL_DTYPE_I64 && f->dtype != SL_DTYPE_F32) ||
            (variable && (f->rank != 1 || variable > 1))) {
            if (err && errcap)
                snprintf(err, errcap,
                         "parse_example: field \"%s\": tf.Example holds int64, float32 and bytes; "
                         "a variable field must be rank 1 (name:int64[-1])",
                         f->name);
            rc = SL_ERR_UNSUPPORTED;
            break;
        }
        e->type = f->dtype == SL_DTYPE_I64 ? SL_EXAMPLE_INT64 : SL_EXAMPLE_FLOAT;
        e->length = variable ? SL_EXAMPLE_VAR_LEN : SL_EXAMPLE_FIXED_LEN;
        e->rank = f->rank;
        memcpy(e->shape, f->shape, sizeof e->shape);
    }
    if (rc == 0)
        rc = sl_example_spec_create(&p->spec, entries, p->n, err, errcap);
    if (rc) {
        parse_free(p);
        return rc;
    }
    char canon[SL__TEXT_CAP - 32];
    sl_schema_format(p->schema, canon, sizeof canon);
    return sl__dataset_create(out, &parse_ops, &in, 1, p, "parse_example(\"%s\")", canon);
}
