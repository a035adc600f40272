/*
 * shuffle(buffer, seed): tf.data's buffered shuffle. The buffer fills with the first `buffer`
 * input elements; each output is a uniformly drawn buffer element, replaced by the next input.
 * The draws come from a Philox stream keyed by the stage seed and (when reshuffling each
 * iteration, the default) the epoch, so the order is a pure function of seed, epoch and input
 * order: the same for every thread count.
 *
 * Runs on the calling thread. The buffer holds up to `buffer` elements (the memory budget's
 * largest client; see sl_iter_options.memory_bytes).
 *
 * Checkpoints (over a random-access input only): the state is the number of elements handed
 * out. Because the draws depend on nothing but the seed, the epoch and the buffer's fill, a
 * restore replays the draws over element *indices* without touching data, then fetches the
 * buffered elements with the input's `get` and seeks the input to where it was: no element is
 * read twice, and none is read that the uninterrupted run would not have read.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct shuffle_params {
    int64_t buffer;
    uint64_t seed;
    int reshuffle;
} shuffle_params;

typedef struct shuffle_stage {
    sl__stage base;
    sl__stage *input;
    sl_element *buf; /* (buffer) */
    int64_t filled;
    int input_ended;
    sl_rng rng;
    uint64_t delivered; /* elements handed out this epoch */
} shuffle_stage;

static int shuffle_next(sl__stage *s, sl_element *out)
{
    shuffle_stage *x = (shuffle_stage *)s;
    const shuffle_params *p = s->ds->params;
    while (!x->input_ended && x->filled < p->buffer) {
        const int rc = sl__stage_next(x->input, &x->buf[x->filled]);
        if (rc == SL_EOF) {
            x->input_ended = 1;
            break;
        }
        if (rc)
            return rc;
        x->filled++;
    }
    if (x->filled == 0)
        return SL_EOF;
    const int64_t j = (int64_t)sl_rng_below(&x->rng, (uint64_t)x->filled);
    *out = x->buf[j];
    memset(&x->buf[j], 0, sizeof x->buf[j]);
    x->delivered++;
    /* Refill slot j from the input, or close the gap with the last element. */
    if (!x->input_ended) {
        const int rc = sl__stage_next(x->input, &x->buf[j]);
        if (rc == 0)
            return 0;
        if (rc != SL_EOF) {
            x->buf[j] = x->buf[--x->filled];
            memset(&x->buf[x->filled], 0, sizeof x->buf[0]);
            sl_element_release(out);
            x->delivered--;
            return rc;
        }
        x->input_ended = 1;
    }
    x->buf[j] = x->buf[--x->filled];
    memset(&x->buf[x->filled], 0, sizeof x->buf[0]);
    return 0;
}

static void shuffle_cancel(sl__stage *s)
{
    sl__stage_cancel(((shuffle_stage *)s)->input);
}

static void shuffle_close(sl__stage *s)
{
    shuffle_stage *x = (shuffle_stage *)s;
    sl__stage_close(x->input);
    for (int64_t i = 0; i < x->filled; i++)
        sl_element_release(&x->buf[i]);
    sl_free(x->buf);
    sl_free(x);
}

static int shuffle_save(sl__stage *s, sl__state_writer *w)
{
    if (!sl__dataset_checkpointable(s->ds))
        return sl__stage_fail(s, SL_ERR_NOT_CHECKPOINTABLE,
                              "its input has no random access (put shuffle right after the "
                              "source, or use global_shuffle)");
    sl__state_put(w, ((shuffle_stage *)s)->delivered);
    return 0;
}

static const sl__stage_ops shuffle_stage_ops = {shuffle_next, shuffle_cancel, shuffle_close, NULL,
                                                shuffle_save};

/* Replays `delivered` outputs' draws over input indices (the input holds n elements), then
 * fills the buffer by `get` and seeks the input past what was pulled. */
static int shuffle_restore(shuffle_stage *x, uint64_t delivered)
{
    const shuffle_params *p = x->base.ds->params;
    const uint64_t n = (uint64_t)sl_dataset_cardinality(x->base.ds->inputs[0]);
    uint64_t *idx = sl_malloc((size_t)p->buffer * sizeof *idx);
    if (!idx)
        return SL_ERR_NOMEM;
    uint64_t pulled = 0;
    int64_t filled = 0;
    int ended = 0;
    for (uint64_t d = 0; d < delivered; d++) {
        while (!ended && filled < p->buffer) {
            if (pulled >= n) {
                ended = 1;
                break;
            }
            idx[filled++] = pulled++;
        }
        if (filled == 0) {
            sl_free(idx);
            return sl__stage_fail(&x->base, SL_ERR_CORRUPT,
                                  "checkpoint: %llu elements handed out of %llu",
                                  (unsigned long long)delivered, (unsigned long long)n);
        }
        const int64_t j = (int64_t)sl_rng_below(&x->rng, (uint64_t)filled);
        if (!ended && pulled < n)
            idx[j] = pulled++;
        else {
            ended = 1;
            idx[j] = idx[--filled];
        }
    }
    int rc = 0;
    for (int64_t k = 0; k < filled && rc == 0; k++)
        rc = sl__stage_get(x->input, idx[k], &x->buf[x->filled++]);
    sl_free(idx);
    if (rc == 0)
        rc = sl__stage_seek(x->input, pulled);
    x->input_ended = ended;
    x->delivered = delivered;
    return rc;
}

static int shuffle_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                        sl__stage **out)
{
    const shuffle_params *p = ds->params;
    shuffle_stage *x = sl_calloc(1, sizeof *x);
    if (!x || !(x->buf = sl_calloc((size_t)p->buffer, sizeof *x->buf))) {
        sl_free(x);
        return SL_ERR_NOMEM;
    }
    x->base = (sl__stage){&shuffle_stage_ops, ctx, ds, epoch};
    sl_rng_init(&x->rng, sl__stage_seed(ctx, p->seed, "shuffle"), p->reshuffle ? epoch : 0, 0);
    const uint64_t delivered = st ? sl__state_get(st) : 0;
    int rc = sl__stage_open(ds->inputs[0], ctx, epoch, NULL, &x->input);
    if (rc == 0 && st && !st->err)
        rc = shuffle_restore(x, delivered);
    if (rc) {
        shuffle_close(&x->base);
        return rc;
    }
    *out = &x->base;
    return 0;
}

static int64_t shuffle_cardinality(const sl_dataset *ds)
{
    return sl_dataset_cardinality(ds->inputs[0]);
}

static int shuffle_checkpointable(const sl_dataset *ds)
{
    return sl__dataset_random_access(ds->inputs[0]) && sl_dataset_cardinality(ds->inputs[0]) >= 0;
}

static int64_t shuffle_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = in[0];
    /* the buffer is an array of sl_element slots, allocated at open */
    return sl__memory_scaled(((const shuffle_params *)ds->params)->buffer,
                             in[0] < 0 ? -1 : in[0] + (int64_t)sizeof(sl_element));
}

static const sl__dataset_ops shuffle_ops = {
    "shuffle", shuffle_open,           shuffle_cardinality, NULL, NULL,
    0,         shuffle_checkpointable, shuffle_memory};

/* The buffer array is allocated at open; larger buffers belong in global_shuffle. */
enum { MAX_SHUFFLE_BUFFER = 1 << 26 };

int sl_dataset_shuffle(sl_dataset **out, sl_dataset *in, int64_t buffer, uint64_t seed,
                       int reshuffle_each_iteration)
{
    *out = NULL;
    if (!in || buffer < 1 || buffer > MAX_SHUFFLE_BUFFER)
        return SL_ERR_INVAL;
    shuffle_params *p = sl_malloc(sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    *p = (shuffle_params){buffer, seed, reshuffle_each_iteration != 0};
    char extra[80] = "";
    int n = 0;
    if (seed)
        n += snprintf(extra, sizeof extra, ", seed=%llu", (unsigned long long)seed);
    if (!reshuffle_each_iteration)
        snprintf(extra + n, sizeof extra - (size_t)n, ", reshuffle_each_iteration=false");
    return sl__dataset_create(out, &shuffle_ops, &in, 1, p, "shuffle(%lld%s)", (long long)buffer,
                              extra);
}
