/*
 * Models by name over the layers of sluice/nn.h: "mlp" (flatten -> linear hidden -> ReLU ->
 * linear classes) and "cnn" (a small ResNet: conv3x3-BN-ReLU stem, residual blocks of two
 * conv3x3-BN with an identity or conv1x1-BN shortcut, one stride-2 stage that doubles the
 * channels, a global max pool (or average, avg_pool), linear).
 *
 * Memory: every trainable parameter lives in ONE float array and every gradient in a second of
 * the same layout, so an optimizer, a gradient clip, an all-reduce or a checkpoint handles one
 * blob. Tensors that decay (conv and linear weights) come first, [0, decay_count); biases and
 * batch-norm scales and shifts follow. Running statistics of batch norm are a third array (the
 * "state": saved in checkpoints, never trained). Activations and scratch are allocated once at
 * create for up to max_batch examples: forward and backward allocate nothing.
 *
 * Initialisation is a pure function of (seed, tensor index): tensor t draws from the Philox
 * stream (seed, t), so a model is reproducible on any backend and adding a tensor at the end
 * does not change the others.
 *
 * Threading: a model belongs to one thread at a time.
 */
#ifndef SLUICE_MODEL_H
#define SLUICE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_model sl_model;

typedef struct sl_model_config {
    const char *name;     /* "mlp" or "cnn" */
    int in_c, in_h, in_w; /* one example's shape (the mlp flattens it) */
    int classes;          /* >= 2 */
    int max_batch;        /* activations are sized for batches up to this */
    uint64_t seed;        /* parameter initialisation */
    sl_nn_impl impl;      /* reference loops or the GEMM path; sl_model_set_impl changes it */
    int hidden;           /* mlp: hidden width (0: 256) */
    int width;            /* cnn: stem channels (0: 16); the stride-2 stage has twice as many */
    int blocks;           /* cnn: residual blocks, 2..8 (0: 3); the second one has stride 2 */
    int pool;             /* cnn: 1 to max-pool 2x2 after the stem (inputs of 64x64 and up) */
    int avg_pool;         /* cnn: 1 for a global average pool head; 0: global max (TRAINER.md) */
    float bn_momentum;    /* 0: 0.1 */
    float bn_eps;         /* 0: 1e-5 */
} sl_model_config;

/* One named tensor inside the parameter blob. */
typedef struct sl_model_tensor {
    const char *name; /* "stem.conv.w", "block2.bn1.gamma", "fc.b", ... */
    size_t offset;    /* in floats, into sl_model_params / sl_model_grads */
    size_t count;
    int rank;
    int shape[4];
    int decay; /* 1 for weights (offset < decay_count), 0 for biases and BN parameters */
} sl_model_tensor;

/* SL_ERR_INVAL (with a message saying which field) for a bad config, SL_ERR_NOMEM. On error
 * *out is NULL and, when errbuf is not NULL, the reason is written there. */
int sl_model_create(sl_model **out, const sl_model_config *cfg, char *errbuf, size_t errcap);
void sl_model_free(sl_model *m); /* NULL does nothing */

/* The last error's text, with its context; "" when none. */
const char *sl_model_errmsg(const sl_model *m);
/* The config as created, defaults filled in. */
const sl_model_config *sl_model_get_config(const sl_model *m);
void sl_model_set_impl(sl_model *m, sl_nn_impl impl);

size_t sl_model_param_count(const sl_model *m);
size_t sl_model_decay_count(const sl_model *m);
float *sl_model_params(sl_model *m);
float *sl_model_grads(sl_model *m);
/* Batch-norm running means and variances (empty for the mlp). */
size_t sl_model_state_count(const sl_model *m);
float *sl_model_state(sl_model *m);
size_t sl_model_tensor_count(const sl_model *m);
const sl_model_tensor *sl_model_tensor_at(const sl_model *m, size_t i);
/* Multiply-adds of one example's forward pass (for FLOP figures). */
double sl_model_forward_macs(const sl_model *m);

/* Runs the model on n examples x (n, in_c, in_h, in_w); x must stay valid until the backward
 * that follows (it reads x for the first layer's weight gradient). train = 1 uses batch statistics
 * and moves the running averages; 0 uses the running averages. With labels (may be NULL), *loss
 * gets the mean softmax cross-entropy and *correct the number of right predictions (either
 * pointer may be NULL). SL_ERR_INVAL when n is outside [1, max_batch], SL_ERR_RANGE when a label
 * is outside [0, classes) (the message names the example). */
int sl_model_forward(sl_model *m, const float *x, const int32_t *labels, int n, int train,
                     double *loss, int *correct);
/* The last forward's logits, (n, classes). */
const float *sl_model_logits(const sl_model *m);
/* Backpropagates the last forward (which must have had train = 1 and labels) and ADDS the
 * gradient of scale * loss to the gradient blob. With k micro-batches accumulated into one
 * step, scale = 1/k gives the gradient of the mean over all of them (exactly so for the mlp;
 * batch norm's statistics are per micro-batch, as in every framework). SL_ERR_INVAL otherwise. */
int sl_model_backward(sl_model *m, float scale);
void sl_model_zero_grad(sl_model *m);

/* 0 when the loss and every gradient are finite. Otherwise SL_ERR_NONFINITE and the message
 * names the step and what went bad: "step 12: loss is nan" or
 * "step 12: gradient of block2.conv1.w is inf at element 37 (block2.conv1.w[37])". */
int sl_model_check_finite(sl_model *m, int64_t step, double loss);

#ifdef __cplusplus
}
#endif
#endif
