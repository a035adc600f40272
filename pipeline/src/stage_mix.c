/*
 * Mixing datasets: sample_from_datasets (each output drawn from input k with probability
 * proportional to weight k) and choose_from_datasets (a dataset of int64 indices says which
 * input supplies each output).
 *
 * sample_from_datasets draws from a Philox stream keyed by (seed, epoch, output index), so the
 * mix is the same for every thread count. When an input runs out it leaves the draw (the
 * remaining weights are renormalised) unless stop_on_empty_dataset, which ends the stream there;
 * the stream ends when every input has ended.
 *
 * Runs on the calling thread; inputs are opened together at open and each keeps its position.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "sluice/alloc.h"

typedef struct mix_params {
    int n;      /* data inputs (the choice dataset, if any, is input n) */
    int choose; /* choose_from_datasets */
    double weights[SL__MAX_INPUTS];
    uint64_t seed;
    int stop_on_empty;
} mix_params;

typedef struct mix_stage {
    sl__stage base;
    sl__stage *in[SL__MAX_INPUTS]; /* data inputs, then the choice input */
    int ended[SL__MAX_INPUTS];
    int live;
    uint64_t seed, index;
} mix_stage;

static const mix_params *mp(const sl__stage *s)
{
    return s->ds->params;
}

/* Input k for output `index`, drawn over the inputs still live. */
static int draw(mix_stage *m)
{
    const mix_params *p = mp(&m->base);
    double total = 0;
    for (int k = 0; k < p->n; k++)
        if (!m->ended[k])
            total += p->weights[k];
    sl_rng r;
    sl_rng_init(&r, m->seed, m->base.epoch, m->index);
    double u = sl_rng_uniform(&r) * total;
    int last = -1;
    for (int k = 0; k < p->n; k++) {
        if (m->ended[k])
            continue;
        last = k;
        if (u < p->weights[k])
            return k;
        u -= p->weights[k];
    }
    return last; /* rounding at the top end */
}

static int mix_next(sl__stage *s, sl_element *out)
{
    mix_stage *m = (mix_stage *)s;
    const mix_params *p = mp(s);
    for (;;) {
        if (m->live == 0)
            return SL_EOF;
        int k;
        if (p->choose) {
            sl_element c;
            memset(&c, 0, sizeof c);
            const int rc = sl__stage_next(m->in[p->n], &c);
            if (rc)
                return rc;
            const sl_tensor *t = c.count ? &c.tensors[0] : NULL;
            const int64_t v =
                t && t->rank == 0 && !sl_dtype_is_float(t->dtype) && t->dtype != SL_DTYPE_BYTES
                    ? sl_dtype_load_i64(t->dtype, t->data)
                    : -1;
            sl_element_release(&c);
            if (v < 0 || v >= p->n)
                return sl__stage_fail(s, SL_ERR_RANGE,
                                      "choice %llu is not an integer index below %d",
                                      (unsigned long long)m->index, p->n);
            k = (int)v;
            if (m->ended[k])
                return sl__stage_fail(s, SL_ERR_RANGE,
                                      "choice %llu picks input %d, which has ended",
                                      (unsigned long long)m->index, k);
        } else {
            k = draw(m);
        }
        const int rc = sl__stage_next(m->in[k], out);
        if (rc != SL_EOF) {
            if (rc == 0)
                m->index++;
            return rc;
        }
        if (p->choose)
            return sl__stage_fail(s, SL_ERR_RANGE, "choice %llu picks input %d, which has ended",
                                  (unsigned long long)m->index, k);
        if (p->stop_on_empty)
            return SL_EOF;
        m->ended[k] = 1;
        m->live--;
    }
}

static void mix_cancel(sl__stage *s)
{
    mix_stage *m = (mix_stage *)s;
    for (int k = 0; k < SL__MAX_INPUTS; k++)
        sl__stage_cancel(m->in[k]);
}

static void mix_close(sl__stage *s)
{
    mix_stage *m = (mix_stage *)s;
    for (int k = 0; k < SL__MAX_INPUTS; k++)
        sl__stage_close(m->in[k]);
    sl_free(m);
}

/* The output index and which inputs have ended, then every input's state in input order. */
static int mix_save(sl__stage *s, sl__state_writer *w)
{
    mix_stage *m = (mix_stage *)s;
    uint64_t ended = 0;
    for (int k = 0; k < mp(s)->n; k++)
        ended |= (uint64_t)(m->ended[k] != 0) << k;
    sl__state_put(w, m->index);
    sl__state_put(w, ended);
    for (int k = 0; k < s->ds->ninputs; k++)
        SL_TRY(sl__stage_save(m->in[k], w));
    return 0;
}

static const sl__stage_ops mix_stage_ops = {mix_next, mix_cancel, mix_close, NULL, mix_save};

static int mix_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                    sl__stage **out)
{
    const mix_params *p = ds->params;
    mix_stage *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ERR_NOMEM;
    m->base = (sl__stage){&mix_stage_ops, ctx, ds, epoch};
    m->seed = sl__stage_seed(ctx, p->seed, "sample_from_datasets");
    m->live = p->n;
    if (st) {
        m->index = sl__state_get(st);
        const uint64_t ended = sl__state_get(st);
        for (int k = 0; k < p->n; k++)
            if ((m->ended[k] = (int)(ended >> k & 1)) != 0)
                m->live--;
    }
    for (int k = 0; k < ds->ninputs; k++) {
        const int rc = sl__stage_open(ds->inputs[k], ctx, epoch, st, &m->in[k]);
        if (rc) {
            mix_close(&m->base);
            return rc;
        }
    }
    *out = &m->base;
    return 0;
}

static int64_t mix_cardinality(const sl_dataset *ds)
{
    const mix_params *p = ds->params;
    if (p->choose)
        return sl_dataset_cardinality(ds->inputs[p->n]);
    int64_t total = 0;
    for (int k = 0; k < p->n; k++) {
        const int64_t c = sl_dataset_cardinality(ds->inputs[k]);
        if (c == SL_CARDINALITY_INFINITE && !p->stop_on_empty)
            return SL_CARDINALITY_INFINITE;
        if (c < 0 || p->stop_on_empty)
            return SL_CARDINALITY_UNKNOWN; /* depends on the draws */
        total += c;
    }
    return total;
}

static int64_t mix_memory(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem)
{
    *elem = 0;
    for (int k = 0; k < ((const mix_params *)ds->params)->n; k++)
        *elem = in[k] < 0 || *elem < 0 ? -1 : SL_MAX(*elem, in[k]);
    return 0;
}

static const sl__dataset_ops mix_ops = {"mix", mix_open, mix_cardinality, NULL, NULL,
                                        1,     NULL,     mix_memory};

/* "[<pipeline>, <pipeline>]" of the inputs, for the canonical text. */
static void print_inputs(sl_dataset *const *inputs, int n, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < n && at < cap; k++) {
        if (k)
            at += (size_t)snprintf(buf + at, cap - at, ", ");
        if (at < cap)
            at += (size_t)sl_dataset_print(inputs[k], buf + at, cap - at);
    }
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

int sl_dataset_sample_from(sl_dataset **out, sl_dataset *const *inputs, int n,
                           const double *weights, uint64_t seed, int stop_on_empty_dataset)
{
    *out = NULL;
    if (!inputs || n < 1 || n > SL__MAX_INPUTS)
        return SL_ERR_INVAL;
    mix_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->n = n;
    p->seed = seed;
    p->stop_on_empty = stop_on_empty_dataset != 0;
    double total = 0;
    for (int k = 0; k < n; k++) {
        p->weights[k] = weights ? weights[k] : 1.0;
        if (!inputs[k] || !(p->weights[k] >= 0) || !isfinite(p->weights[k])) {
            sl_free(p);
            return SL_ERR_INVAL;
        }
        total += p->weights[k];
    }
    if (!(total > 0)) {
        sl_free(p);
        return SL_ERR_INVAL;
    }
    char list[SL__TEXT_CAP], extra[SL__TEXT_CAP / 2] = "";
    print_inputs(inputs, n, list, sizeof list);
    size_t at = 0;
    if (weights) {
        at += (size_t)snprintf(extra, sizeof extra, ", weights=[");
        for (int k = 0; k < n && at < sizeof extra; k++)
            at += (size_t)snprintf(extra + at, sizeof extra - at, "%s%.17g", k ? ", " : "",
                                   weights[k]);
        if (at < sizeof extra)
            at += (size_t)snprintf(extra + at, sizeof extra - at, "]");
    }
    if (seed && at < sizeof extra)
        at += (size_t)snprintf(extra + at, sizeof extra - at, ", seed=%llu",
                               (unsigned long long)seed);
    if (stop_on_empty_dataset && at < sizeof extra)
        snprintf(extra + at, sizeof extra - at, ", stop_on_empty_dataset=true");
    return sl__dataset_create(out, &mix_ops, inputs, n, p, "sample_from_datasets(%s%s)", list,
                              extra);
}

int sl_dataset_choose_from(sl_dataset **out, sl_dataset *const *inputs, int n, sl_dataset *choices)
{
    *out = NULL;
    if (!inputs || !choices || n < 1 || n > SL__MAX_INPUTS - 1)
        return SL_ERR_INVAL;
    sl_dataset *all[SL__MAX_INPUTS];
    for (int k = 0; k < n; k++) {
        if (!inputs[k])
            return SL_ERR_INVAL;
        all[k] = inputs[k];
    }
    all[n] = choices;
    mix_params *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->n = n;
    p->choose = 1;
    char list[SL__TEXT_CAP], choice[SL__TEXT_CAP];
    print_inputs(inputs, n, list, sizeof list);
    sl_dataset_print(choices, choice, sizeof choice);
    return sl__dataset_create(out, &mix_ops, all, n + 1, p, "choose_from_datasets(%s, %s)", list,
                              choice);
}
