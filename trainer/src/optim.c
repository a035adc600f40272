/*
 * SGD with momentum and AdamW over one parameter blob, the warmup + cosine schedule,
 * reduce-on-plateau, and global-norm gradient clipping (formulas in sluice/optim.h).
 *
 * Invariants: `state` holds `slots * count` floats (SGD with momentum: the momentum buffer;
 * AdamW: first then second moments), allocated at create and zeroed; steps counts completed
 * updates, so AdamW's bias correction for update t uses t = steps + 1. The per-value arithmetic
 * is sgd_step_at / adamw_step_at in nn_bodies.h, which the CUDA backend's kernels call too.
 *
 * Threading: one thread at a time per optimizer.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nn_bodies.h"
#include "optim_internal.h"
#include "sluice/alloc.h"
#include "sluice/status.h"

sl_optim_config sl_optim_defaults(sl_optim_kind kind)
{
    if (kind == SL_OPTIM_ADAMW)
        return (sl_optim_config){.kind = SL_OPTIM_ADAMW,
                                 .weight_decay = 0.01f,
                                 .beta1 = 0.9f,
                                 .beta2 = 0.999f,
                                 .eps = 1e-8f};
    return (sl_optim_config){.kind = SL_OPTIM_SGD, .momentum = 0.9f, .weight_decay = 5e-4f};
}

int sl_optim_create(sl_optim **out, const sl_optim_config *cfg, size_t count, size_t decay_count)
{
    *out = NULL;
    if (decay_count > count || count == 0 || count > ((size_t)1 << 40))
        return SL_ERR_INVAL;
    if (cfg->weight_decay < 0 || !isfinite(cfg->weight_decay))
        return SL_ERR_INVAL;
    size_t slots;
    if (cfg->kind == SL_OPTIM_SGD) {
        if (cfg->momentum < 0 || cfg->momentum >= 1)
            return SL_ERR_INVAL;
        slots = cfg->momentum > 0 ? 1 : 0;
    } else if (cfg->kind == SL_OPTIM_ADAMW) {
        if (cfg->beta1 < 0 || cfg->beta1 >= 1 || cfg->beta2 < 0 || cfg->beta2 >= 1 ||
            !(cfg->eps > 0))
            return SL_ERR_INVAL;
        slots = 2;
    } else {
        return SL_ERR_INVAL;
    }
    sl_optim *o = sl_calloc(1, sizeof *o);
    if (!o)
        return SL_ERR_NOMEM;
    o->cfg = *cfg;
    o->count = count;
    o->decay_count = decay_count;
    o->slots = slots;
    if (slots && !(o->state = sl_calloc(slots * count, sizeof(float)))) {
        sl_free(o);
        return SL_ERR_NOMEM;
    }
    *out = o;
    return 0;
}

void sl_optim_free(sl_optim *o)
{
    if (!o)
        return;
    sl_free(o->state);
    sl_free(o);
}

int64_t sl_optim_step_count(const sl_optim *o)
{
    return o->steps;
}

const sl_optim_config *sl_optim_get_config(const sl_optim *o)
{
    return &o->cfg;
}

static void sgd_step(sl_optim *o, float *p, const float *g, float lr)
{
    const float mu = o->cfg.momentum, wd = o->cfg.weight_decay;
    const int first = o->steps == 0;
    for (size_t i = 0; i < o->count; i++)
        sgd_step_at(p, g, o->state, (int64_t)i, i < o->decay_count, mu, wd, lr, first);
}

static void adamw_step(sl_optim *o, float *p, const float *g, float lr)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    const double t = (double)(o->steps + 1);
    const float bc1 = (float)(1.0 - pow(b1, t)), bc2 = (float)(1.0 - pow(b2, t));
    const float decay = 1.0f - lr * o->cfg.weight_decay;
    float *m = o->state, *v = o->state + o->count;
    for (size_t i = 0; i < o->count; i++)
        adamw_step_at(p, g, m, v, (int64_t)i, i < o->decay_count, decay, b1, b2, bc1, bc2, lr, eps);
}

void sl_optim_step(sl_optim *o, float *params, const float *grads, float lr)
{
    if (o->cfg.kind == SL_OPTIM_SGD)
        sgd_step(o, params, grads, lr);
    else
        adamw_step(o, params, grads, lr);
    o->steps++;
}

/* ---- schedules ------------------------------------------------------------------------------ */

float sl_lr_at(const sl_lr_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps)
        return (float)((double)s->base_lr * (double)(step + 1) / (double)s->warmup_steps);
    const int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0 || step >= s->total_steps)
        return span <= 0 && step < s->total_steps ? s->base_lr : s->min_lr;
    const double progress = (double)(step - s->warmup_steps) / (double)span;
    return (float)(s->min_lr +
                   0.5 * ((double)s->base_lr - s->min_lr) * (1.0 + cos(M_PI * progress)));
}

void sl_plateau_init(sl_plateau *p, float factor, int patience, float threshold, float min_scale)
{
    *p = (sl_plateau){.factor = factor,
                      .threshold = threshold,
                      .min_scale = min_scale,
                      .patience = patience,
                      .best = INFINITY,
                      .bad = 0,
                      .scale = 1.0f};
}

int sl_plateau_update(sl_plateau *p, double metric)
{
    if (metric < p->best * (1.0 - p->threshold) || (isinf(p->best) && isfinite(metric))) {
        p->best = metric;
        p->bad = 0;
        return 0;
    }
    if (++p->bad <= p->patience)
        return 0;
    p->bad = 0;
    const float next = p->scale * p->factor < p->min_scale ? p->min_scale : p->scale * p->factor;
    const int reduced = next < p->scale;
    p->scale = next;
    return reduced;
}

/* ---- clipping ------------------------------------------------------------------------------- */

double sl_grad_clip_norm(float *g, size_t count, float max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < count; i++)
        ss += (double)g[i] * g[i];
    const double norm = sqrt(ss);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        const float k = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < count; i++)
            g[i] *= k;
    }
    return norm;
}
