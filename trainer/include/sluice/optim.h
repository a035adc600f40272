/*
 * Optimizers, learning-rate schedules, gradient clipping, and the training-state checkpoint.
 *
 * An optimizer updates one float blob (a model's parameters, sluice/model.h) from the gradient
 * blob of the same layout; the weight decay applies to the first decay_count values only (the
 * model puts its weights there). Its state (momentum, Adam moments, step count) is one
 * allocation made at create; a step allocates nothing.
 *
 *   SGD (PyTorch semantics, dampening 0): g = grad + wd * p (decayed part only);
 *       buf = momentum * buf + g (buf = g on the first step); p -= lr * buf.
 *   AdamW (Loshchilov & Hutter, decoupled decay): t += 1; p -= lr * wd * p (decayed part);
 *       m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *       p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 *
 * Gradient accumulation needs nothing here: sl_model_backward adds into the gradient blob, so
 * k micro-batches backpropagated with scale 1/k and then one step equal one step on the whole
 * batch (tests/unit/test_trainer_optim.c shows it).
 *
 * Threading: an optimizer belongs to one thread at a time; the schedule functions are pure.
 */
#ifndef SLUICE_OPTIM_H
#define SLUICE_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_optim_kind { SL_OPTIM_SGD = 1, SL_OPTIM_ADAMW = 2 } sl_optim_kind;

typedef struct sl_optim_config {
    sl_optim_kind kind;
    float momentum;     /* SGD; 0 for plain SGD */
    float weight_decay; /* SGD: L2 added to the gradient; AdamW: decoupled */
    float beta1, beta2; /* AdamW */
    float eps;          /* AdamW */
} sl_optim_config;

/* Usual values: SGD momentum 0.9, wd 5e-4; AdamW betas (0.9, 0.999), eps 1e-8, wd 0.01. */
sl_optim_config sl_optim_defaults(sl_optim_kind kind);

typedef struct sl_optim sl_optim;

/* count: values in the blob; decay_count <= count. SL_ERR_INVAL for a bad config. */
int sl_optim_create(sl_optim **out, const sl_optim_config *cfg, size_t count, size_t decay_count);
void sl_optim_free(sl_optim *o); /* NULL does nothing */
/* One update of params from grads at learning rate lr. */
void sl_optim_step(sl_optim *o, float *params, const float *grads, float lr);
/* Steps taken so far (restored by sl_train_state_load). */
int64_t sl_optim_step_count(const sl_optim *o);
const sl_optim_config *sl_optim_get_config(const sl_optim *o);

/* ---- learning-rate schedules ---------------------------------------------------------------- */

/* Linear warmup to base_lr over warmup_steps (step s gets base_lr * (s + 1) / warmup_steps),
 * then a half cosine from base_lr down to min_lr at total_steps, and min_lr after that. */
typedef struct sl_lr_schedule {
    float base_lr, min_lr;
    int64_t warmup_steps, total_steps;
} sl_lr_schedule;

float sl_lr_at(const sl_lr_schedule *s, int64_t step);

/* Reduce-on-plateau (PyTorch's ReduceLROnPlateau, mode "min", relative threshold, no
 * cooldown): a metric better than best * (1 - threshold) resets the count of bad evaluations;
 * more than `patience` bad ones in a row multiply `scale` by `factor` (not below min_scale)
 * and start counting again. Multiply the scheduled learning rate by `scale`. A value type, so
 * a checkpoint can copy it. */
typedef struct sl_plateau {
    float factor, threshold, min_scale;
    int patience;
    /* state */
    double best; /* +inf before the first update */
    int bad;
    float scale; /* starts at 1 */
} sl_plateau;

void sl_plateau_init(sl_plateau *p, float factor, int patience, float threshold, float min_scale);
/* Feeds one evaluation; returns 1 when this one reduced the scale, else 0. */
int sl_plateau_update(sl_plateau *p, double metric);

/* ---- gradient clipping ---------------------------------------------------------------------- */

/* Returns the global L2 norm of g[0..count) (accumulated in double) and, when it is above
 * max_norm > 0, scales g by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does. A
 * non-finite norm leaves g unchanged (sl_model_check_finite reports it). */
double sl_grad_clip_norm(float *g, size_t count, float max_norm);

/* ---- training-state checkpoint -------------------------------------------------------------- */

/* The model's parameters and batch-norm state and the optimizer's state (o may be NULL) as one
 * little-endian, crc32c-checked byte string (layout in trainer/TRAINER.md) in *out, allocated
 * with sl_malloc (free with sl_free). The training loop writes it beside the iterator's
 * sl_iter_save blob, atomically. SL_ERR_NOMEM. */
int sl_train_state_save(const sl_model *m, const sl_optim *o, uint8_t **out, size_t *len);
/* Restores what sl_train_state_save wrote into a model (and optimizer, may be NULL) created
 * with the same config. Nothing changes unless everything checks: SL_ERR_FORMAT (not a
 * checkpoint), SL_ERR_VERSION, SL_ERR_TRUNCATED, SL_ERR_CORRUPT (crc32c), SL_ERR_SCHEMA (a
 * different model or optimizer); sl_model_errmsg says which. */
int sl_train_state_load(sl_model *m, sl_optim *o, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
