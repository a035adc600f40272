/*
 * zip(a, b): elements of a and b side by side, one output per pair, ending with the shorter
 * input. The output holds a's tensors then b's; a name present in both is an error naming it
 * (rename one side with a map first). Random access when both inputs have it.
 *
 * Runs on the calling thread: a's element, then b's.
 */
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct zip_stage {
    sl__stage base;
    sl__stage *a, *b;
    uint64_t index;
} zip_stage;

static int combine(sl__stage *s, uint64_t index, sl_element *ea, sl_element *eb, sl_element *out)
{
    int rc = 0;
    if (ea->count + eb->count > SL_ELEMENT_MAX)
        rc = sl__stage_fail(s, SL_ERR_RANGE, "element %llu: %d + %d tensors exceed %d",
                            (unsigned long long)index, ea->count, eb->count, SL_ELEMENT_MAX);
    for (int i = 0; rc == 0 && i < eb->count; i++)
        if (sl_element_find(ea, eb->names[i]) >= 0)
            rc = sl__stage_fail(s, SL_ERR_EXISTS,
                                "element %llu: both inputs have a tensor \"%s\" (rename one "
                                "with a map)",
                                (unsigned long long)index, eb->names[i]);
    if (rc) {
        sl_element_release(ea);
        sl_element_release(eb);
        return rc;
    }
    *out = *ea;
    for (int i = 0; i < eb->count; i++)
        sl_element_push(out, eb->names[i], &eb->tensors[i]);
    memset(ea, 0, sizeof *ea);
    memset(eb, 0, sizeof *eb);
    return 0;
}

static int zip_next(sl__stage *s, sl_element *out)
{
    zip_stage *z = (zip_stage *)s;
    sl_element ea, eb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    int rc = sl__stage_next(z->a, &ea);
    if (rc)
        return rc;
    rc = sl__stage_next(z->b, &eb);
    if (rc) {
        sl_element_release(&ea);
        return rc;
    }
    return combine(s, z->index++, &ea, &eb, out);
}

static int zip_get(sl__stage *s, uint64_t i, sl_element *out)
{
    zip_stage *z = (zip_stage *)s;
    sl_element ea, eb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    SL_TRY(sl__stage_get(z->a, i, &ea));
    const int rc = sl__stage_get(z->b, i, &eb);
    if (rc) {
        sl_element_release(&ea);
        return rc;
    }
    return combine(s, i, &ea, &eb, out);
}

static void zip_cancel(sl__stage *s)
{
    zip_stage *z = (zip_stage *)s;
    sl__stage_cancel(z->a);
    sl__stage_cancel(z->b);
}

static void zip_close(sl__stage *s)
{
    zip_stage *z = (zip_stage *)s;
    sl__stage_close(z->a);
    sl__stage_close(z->b);
    sl_free(z);
}

static int zip_save(sl__stage *s, sl__state_writer *w)
{
    zip_stage *z = (zip_stage *)s;
    sl__state_put(w, z->index);
    SL_TRY(sl__stage_save(z->a, w));
    return sl__stage_save(z->b, w);
}

static int zip_seek(sl__stage *s, uint64_t pos)
{
    zip_stage *z = (zip_stage *)s;
    z->index = pos;
    SL_TRY(sl__stage_seek(z->a, pos));
    return sl__stage_seek(z->b, pos);
}

static const sl__stage_ops zip_stage_ops = {zip_next, zip_cancel, zip_close,
                                            zip_get,  zip_save,   zip_seek};

static int zip_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                    sl__stage **out)
{
    zip_stage *z = sl_calloc(1, sizeof *z);
    if (!z)
        return SL_ERR_NOMEM;
    z->base = (sl__stage){&zip_stage_ops, ctx, ds, epoch};
    if (st)
        z->index = sl__state_get(st);
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, st, &z->a);
    if (rc == 0)
        rc = sl__stage_open(ds->inputs[1], ctx, epoch, st, &z->b);
    if (rc) {
        zip_close(&z->base);
        return rc;
    }
    *out = &z->base;
    return 0;
}

static int64_t zip_cardinality(const sl_dataset *ds)
{
    const int64_t a = sl_dataset_cardinality(ds->inputs[0]);
    const int64_t b = sl_dataset_cardinality(ds->inputs[1]);
    if (a == 0 || b == 0)
        return 0;
    if (a == SL_CARDINALITY_INFINITE)
        return b;
    if (b == SL_CARDINALITY_INFINITE)
        return a;
    if (a < 0 || b < 0)
        return SL_CARDINALITY_UNKNOWN;
    return a < b ? a : b;
}

static int zip_random_access(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]) && sl__dataset_random_access(ds->inputs[1]);
}

static int64_t zip_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = in[0] < 0 || in[1] < 0 ? -1 : in[0] + in[1];
    return 0;
}

static const sl__dataset_ops zip_ops = {"zip", zip_open, zip_cardinality, NULL, zip_random_access,
                                        0,     NULL,     zip_memory};

int sl_dataset_zip(sl_dataset **out, sl_dataset *a, sl_dataset *b)
{
    *out = NULL;
    if (!a || !b)
        return SL_ERR_INVAL;
    char text[SL__TEXT_CAP * 2];
    sl_dataset_print(b, text, sizeof text);
    sl_dataset *const inputs[2] = {a, b};
    /* b's pipeline prints inside zip's own text; a is the chain zip continues. */
    return sl__dataset_create(out, &zip_ops, inputs, 2, NULL, "zip(%s)", text);
}
