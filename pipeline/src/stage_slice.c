/*
 * Stages that select or relabel elements without touching their bytes: take, skip, shard,
 * enumerate, and repeat (which reopens its input for every epoch, handing the new epoch to
 * the stages below so shuffles reshuffle and map RNG streams change).
 *
 * All run on the calling thread. repeat's `mu` guards its input pointer, because cancel may
 * come from another thread while `next` swaps inputs between epochs.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct slice_params {
    int64_t a, b; /* take: count; skip: count; shard: (n, index); enumerate: start; repeat: count */
} slice_params;

typedef struct slice_stage {
    sl__stage base;
    sl__stage *input;
    int64_t pos;    /* elements seen (take/skip/shard/enumerate) */
    int64_t row0;   /* shard: input position its rows start from (0, or a restored prefix) */
    uint64_t epoch; /* repeat: current epoch of the input */
    pthread_mutex_t mu;
    int have_mu;
} slice_stage;

static const slice_params *sp(const sl__stage *s)
{
    return s->ds->params;
}

static void slice_cancel(sl__stage *s)
{
    slice_stage *x = (slice_stage *)s;
    if (x->have_mu)
        pthread_mutex_lock(&x->mu);
    sl__stage_cancel(x->input);
    if (x->have_mu)
        pthread_mutex_unlock(&x->mu);
}

static void slice_close(sl__stage *s)
{
    slice_stage *x = (slice_stage *)s;
    sl__stage_close(x->input);
    if (x->have_mu)
        pthread_mutex_destroy(&x->mu);
    sl_free(x);
}

static int take_next(sl__stage *s, sl_element *out)
{
    slice_stage *x = (slice_stage *)s;
    if (x->pos >= sp(s)->a)
        return SL_EOF;
    const int rc = sl__stage_next(x->input, out);
    if (rc == 0)
        x->pos++;
    return rc;
}

static int skip_next(sl__stage *s, sl_element *out)
{
    slice_stage *x = (slice_stage *)s;
    while (x->pos < sp(s)->a) {
        const int rc = sl__stage_next(x->input, out);
        if (rc)
            return rc;
        sl_element_release(out);
        x->pos++;
    }
    return sl__stage_next(x->input, out);
}

static int shard_next(sl__stage *s, sl_element *out)
{
    slice_stage *x = (slice_stage *)s;
    const slice_params *p = sp(s);
    for (;;) {
        const int rc = sl__stage_next(x->input, out);
        if (rc)
            return rc;
        if ((x->pos++ - x->row0) % p->a == p->b)
            return 0;
        sl_element_release(out);
    }
}

static int enumerate_next(sl__stage *s, sl_element *out)
{
    slice_stage *x = (slice_stage *)s;
    sl_element in;
    memset(&in, 0, sizeof in);
    int rc = sl__stage_next(x->input, &in);
    if (rc)
        return rc;
    if (in.count >= SL_ELEMENT_MAX) {
        sl_element_release(&in);
        return sl__stage_fail(s, SL_ERR_RANGE, "element %lld already has %d tensors",
                              (long long)x->pos, in.count);
    }
    sl_tensor t;
    if ((rc = sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL))) {
        sl_element_release(&in);
        return sl__stage_fail(s, rc, "element %lld", (long long)x->pos);
    }
    *(int64_t *)t.data = sp(s)->a + x->pos++;
    sl_element_push(out, "index", &t);
    for (int i = 0; i < in.count; i++)
        sl_element_push(out, in.names[i], &in.tensors[i]);
    return 0;
}

static int repeat_next(sl__stage *s, sl_element *out)
{
    slice_stage *x = (slice_stage *)s;
    const int64_t count = sp(s)->a;
    if (!x->input) /* repeat(0) */
        return SL_EOF;
    for (;;) {
        const int rc = sl__stage_next(x->input, out);
        if (rc != SL_EOF)
            return rc;
        const uint64_t next_epoch = x->epoch + 1;
        if (count >= 0 && next_epoch >= (uint64_t)count)
            return SL_EOF;
        sl__stage *fresh = NULL;
        const int orc =
            sl__stage_open(s->ds->inputs[0], s->ctx, s->epoch + next_epoch, NULL, &fresh);
        if (orc)
            return orc == SL_ERR_CANCELLED
                       ? orc
                       : sl__stage_fail(s, orc, "epoch %llu", (unsigned long long)next_epoch);
        pthread_mutex_lock(&x->mu);
        sl__stage *old = x->input;
        x->input = fresh;
        x->epoch = next_epoch;
        pthread_mutex_unlock(&x->mu);
        sl__stage_close(old);
        /* An input that is empty in this epoch would loop forever under repeat(): stop. */
        const int first = sl__stage_next(x->input, out);
        if (first != SL_EOF)
            return first;
        return SL_EOF;
    }
}

/* Random access maps the index onto the input's; the input checks the range. */
static int take_get(sl__stage *s, uint64_t i, sl_element *out)
{
    if (i >= (uint64_t)sp(s)->a)
        return sl__stage_fail(s, SL_ERR_RANGE, "element %llu", (unsigned long long)i);
    return sl__stage_get(((slice_stage *)s)->input, i, out);
}

static int skip_get(sl__stage *s, uint64_t i, sl_element *out)
{
    return sl__stage_get(((slice_stage *)s)->input, i + (uint64_t)sp(s)->a, out);
}

static int shard_get(sl__stage *s, uint64_t i, sl_element *out)
{
    const slice_params *p = sp(s);
    return sl__stage_get(((slice_stage *)s)->input, i * (uint64_t)p->a + (uint64_t)p->b, out);
}

static int enumerate_get(sl__stage *s, uint64_t i, sl_element *out)
{
    sl_element in;
    memset(&in, 0, sizeof in);
    SL_TRY(sl__stage_get(((slice_stage *)s)->input, i, &in));
    sl_tensor t;
    const int rc = sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL);
    if (rc || in.count >= SL_ELEMENT_MAX) {
        sl_element_release(&in);
        sl_tensor_release(&t);
        return sl__stage_fail(s, rc ? rc : SL_ERR_RANGE, "element %llu", (unsigned long long)i);
    }
    *(int64_t *)t.data = sp(s)->a + (int64_t)i;
    sl_element_push(out, "index", &t);
    for (int k = 0; k < in.count; k++)
        sl_element_push(out, in.names[k], &in.tensors[k]);
    return 0;
}

typedef enum { K_TAKE, K_SKIP, K_SHARD, K_ENUMERATE, K_REPEAT } kind;

/* ---- checkpoints -------------------------------------------------------------------------- */

/* take, skip, enumerate: their count, then the input's state. */
static int count_save(sl__stage *s, sl__state_writer *w)
{
    slice_stage *x = (slice_stage *)s;
    sl__state_put(w, (uint64_t)x->pos);
    return sl__stage_save(x->input, w);
}

/* shard(n, i) saves the global prefix its rows have covered: after k elements, every shard
 * of a lockstep job has consumed input rows [0, base + k * n). Over a random-access input the
 * restore seeks there and starts new rows, so a blob saved as shard i of N restores as shard
 * i' of M (the fingerprint leaves shard's arguments out). Over other inputs the prefix cannot
 * be re-cut: the input's own state follows, and a different (n, i) is refused at restore. */
static int shard_save(sl__stage *s, sl__state_writer *w)
{
    slice_stage *x = (slice_stage *)s;
    const slice_params *p = sp(s);
    const int64_t seen = x->pos - x->row0; /* input elements since base */
    const int64_t rows = seen / p->a + (seen % p->a > p->b);
    sl__state_put(w, (uint64_t)(x->row0 + rows * p->a));
    if (sl__dataset_random_access(s->ds->inputs[0]))
        return 0;
    sl__state_put(w, (uint64_t)p->a);
    sl__state_put(w, (uint64_t)p->b);
    sl__state_put(w, (uint64_t)x->pos);
    sl__state_put(w, (uint64_t)x->row0);
    return sl__stage_save(x->input, w);
}

static int repeat_save(sl__stage *s, sl__state_writer *w)
{
    slice_stage *x = (slice_stage *)s;
    sl__state_put(w, x->epoch);
    return x->input ? sl__stage_save(x->input, w) : 0;
}

static int take_seek(sl__stage *s, uint64_t pos)
{
    slice_stage *x = (slice_stage *)s;
    x->pos = (int64_t)SL_MIN(pos, (uint64_t)sp(s)->a);
    return sl__stage_seek(x->input, (uint64_t)x->pos);
}

static int skip_seek(sl__stage *s, uint64_t pos)
{
    slice_stage *x = (slice_stage *)s;
    x->pos = sp(s)->a;
    return sl__stage_seek(x->input, pos + (uint64_t)sp(s)->a);
}

static int shard_seek(sl__stage *s, uint64_t pos)
{
    slice_stage *x = (slice_stage *)s;
    x->row0 = 0;
    x->pos = (int64_t)(pos * (uint64_t)sp(s)->a);
    return sl__stage_seek(x->input, (uint64_t)x->pos);
}

static int enumerate_seek(sl__stage *s, uint64_t pos)
{
    slice_stage *x = (slice_stage *)s;
    x->pos = (int64_t)pos;
    return sl__stage_seek(x->input, pos);
}

static const sl__stage_ops take_stage_ops = {take_next, slice_cancel, slice_close,
                                             take_get,  count_save,   take_seek};
static const sl__stage_ops skip_stage_ops = {skip_next, slice_cancel, slice_close,
                                             skip_get,  count_save,   skip_seek};
static const sl__stage_ops shard_stage_ops = {shard_next, slice_cancel, slice_close,
                                              shard_get,  shard_save,   shard_seek};
static const sl__stage_ops enumerate_stage_ops = {enumerate_next, slice_cancel, slice_close,
                                                  enumerate_get,  count_save,   enumerate_seek};
static const sl__stage_ops repeat_stage_ops = {repeat_next, slice_cancel, slice_close, NULL,
                                               repeat_save};

/* Reads the node's own values from a checkpoint; returns the state to open the input with
 * (NULL: open it fresh, then seek) or sets *rc. */
static sl__state_reader *restore_own(slice_stage *x, kind k, sl__state_reader *st, int *rc)
{
    const slice_params *p = sp(&x->base);
    *rc = 0;
    if (!st)
        return NULL;
    if (k == K_REPEAT) {
        x->epoch = sl__state_get(st);
        if (p->a >= 0 && x->epoch >= (uint64_t)p->a && !st->err)
            *rc = sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: epoch %llu",
                                 (unsigned long long)x->epoch);
        return st;
    }
    if (k != K_SHARD) {
        x->pos = (int64_t)sl__state_get(st);
        /* take and skip count up to their argument; a count outside [0, a] is not a state they
         * can be in (and skip would loop over it) */
        if ((k == K_TAKE || k == K_SKIP) && (x->pos < 0 || x->pos > p->a) && !st->err)
            *rc = sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: position %lld",
                                 (long long)x->pos);
        return st;
    }
    const int64_t prefix = (int64_t)sl__state_get(st);
    if (sl__dataset_random_access(x->base.ds->inputs[0])) {
        x->pos = x->row0 = prefix;
        if (prefix < 0 && !st->err)
            *rc = sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: position %lld",
                                 (long long)prefix);
        return NULL;
    }
    const int64_t n = (int64_t)sl__state_get(st), i = (int64_t)sl__state_get(st);
    if ((n != p->a || i != p->b) && !st->err) {
        *rc = sl__stage_fail(&x->base, SL_ERR_UNSUPPORTED,
                             "checkpoint saved as shard(%lld, %lld) over an input without random "
                             "access cannot restore as another shard",
                             (long long)n, (long long)i);
        return NULL;
    }
    x->pos = (int64_t)sl__state_get(st);
    x->row0 = (int64_t)sl__state_get(st);
    if ((x->row0 < 0 || x->pos < x->row0 || prefix < x->row0) && !st->err)
        *rc = sl__stage_fail(&x->base, SL_ERR_CORRUPT, "checkpoint: position %lld from %lld",
                             (long long)x->pos, (long long)x->row0);
    return st;
}

static const sl__stage_ops *const stage_ops_of[] = {
    [K_TAKE] = &take_stage_ops,     [K_SKIP] = &skip_stage_ops,
    [K_SHARD] = &shard_stage_ops,   [K_ENUMERATE] = &enumerate_stage_ops,
    [K_REPEAT] = &repeat_stage_ops,
};

static int slice_open_kind(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                           sl__stage **out, kind k)
{
    slice_stage *x = sl_calloc(1, sizeof *x);
    if (!x)
        return SL_ERR_NOMEM;
    x->base = (sl__stage){stage_ops_of[k], ctx, ds, epoch};
    if (k == K_REPEAT) {
        pthread_mutex_init(&x->mu, NULL);
        x->have_mu = 1;
        if (sp(&x->base)->a == 0) { /* repeat(0): nothing, the input is never opened */
            *out = &x->base;
            return 0;
        }
    }
    int rc;
    sl__state_reader *input_st = restore_own(x, k, st, &rc);
    if (rc == 0)
        rc = sl__stage_open(ds->inputs[0], ctx, epoch + x->epoch, input_st, &x->input);
    if (rc == 0 && st && !input_st && x->pos > 0) /* shard restored by position */
        rc = sl__stage_seek(x->input, (uint64_t)x->pos);
    if (rc) {
        slice_close(&x->base);
        return rc;
    }
    *out = &x->base;
    return 0;
}

static int take_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                     sl__stage **out)
{
    return slice_open_kind(ds, ctx, epoch, st, out, K_TAKE);
}
static int skip_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                     sl__stage **out)
{
    return slice_open_kind(ds, ctx, epoch, st, out, K_SKIP);
}
static int shard_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                      sl__stage **out)
{
    return slice_open_kind(ds, ctx, epoch, st, out, K_SHARD);
}
static int enumerate_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                          sl__stage **out)
{
    return slice_open_kind(ds, ctx, epoch, st, out, K_ENUMERATE);
}
static int repeat_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                       sl__stage **out)
{
    return slice_open_kind(ds, ctx, epoch, st, out, K_REPEAT);
}

static int64_t input_card(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int64_t take_card(const sl_dataset *ds)
{
    const int64_t n = input_card(ds), t = ((const slice_params *)ds->params)->a;
    if (n == SL_CARDINALITY_INFINITE)
        return t;
    return n < 0 ? n : (n < t ? n : t);
}

static int64_t skip_card(const sl_dataset *ds)
{
    const int64_t n = input_card(ds), k = ((const slice_params *)ds->params)->a;
    return n < 0 ? n : (n > k ? n - k : 0);
}

static int64_t shard_card(const sl_dataset *ds)
{
    const slice_params *p = ds->params;
    const int64_t n = input_card(ds);
    return n < 0 ? n : n / p->a + (n % p->a > p->b);
}

static int64_t repeat_card(const sl_dataset *ds)
{
    const int64_t n = input_card(ds), c = ((const slice_params *)ds->params)->a;
    if (c == 0 || n == 0)
        return 0;
    if (c < 0)
        return SL_CARDINALITY_INFINITE;
    if (n < 0)
        return n;
    return n > INT64_MAX / c ? SL_CARDINALITY_UNKNOWN : n * c;
}

static int input_random_access(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]);
}

static const sl__dataset_ops take_ops = {"take", take_open, take_card, NULL, input_random_access};
static const sl__dataset_ops skip_ops = {"skip", skip_open, skip_card, NULL, input_random_access};
static const sl__dataset_ops shard_ops = {"shard", shard_open, shard_card, NULL,
                                          input_random_access};
static const sl__dataset_ops enumerate_ops = {"enumerate", enumerate_open, input_card, NULL,
                                              input_random_access};
static const sl__dataset_ops repeat_ops = {"repeat", repeat_open, repeat_card, NULL};

static int make(sl_dataset **out, const sl__dataset_ops *ops, sl_dataset *in, int64_t a, int64_t b,
                const char *text)
{
    *out = NULL;
    if (!in)
        return SL_ERR_INVAL;
    slice_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (slice_params){a, b};
    return sl__dataset_create(out, ops, &in, 1, p, "%s", text);
}

int sl_dataset_take(sl_dataset **out, sl_dataset *in, int64_t count)
{
    char t[64];
    snprintf(t, sizeof t, "take(%lld)", (long long)count);
    return count < 0 ? (*out = NULL, SL_ERR_INVAL) : make(out, &take_ops, in, count, 0, t);
}

int sl_dataset_skip(sl_dataset **out, sl_dataset *in, int64_t count)
{
    char t[64];
    snprintf(t, sizeof t, "skip(%lld)", (long long)count);
    return count < 0 ? (*out = NULL, SL_ERR_INVAL) : make(out, &skip_ops, in, count, 0, t);
}

int sl_dataset_shard(sl_dataset **out, sl_dataset *in, int64_t num_shards, int64_t index)
{
    char t[64];
    snprintf(t, sizeof t, "shard(%lld, %lld)", (long long)num_shards, (long long)index);
    if (num_shards < 1 || index < 0 || index >= num_shards) {
        *out = NULL;
        return SL_ERR_INVAL;
    }
    return make(out, &shard_ops, in, num_shards, index, t);
}

int sl_dataset_enumerate(sl_dataset **out, sl_dataset *in, int64_t start)
{
    char t[64];
    if (start)
        snprintf(t, sizeof t, "enumerate(start=%lld)", (long long)start);
    else
        snprintf(t, sizeof t, "enumerate");
    return make(out, &enumerate_ops, in, start, 0, t);
}

int sl_dataset_repeat(sl_dataset **out, sl_dataset *in, int64_t count)
{
    char t[64];
    if (count < 0)
        snprintf(t, sizeof t, "repeat");
    else
        snprintf(t, sizeof t, "repeat(%lld)", (long long)count);
    return make(out, &repeat_ops, in, count < 0 ? -1 : count, 0, t);
}
