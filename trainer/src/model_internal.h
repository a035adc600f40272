/*
 * The layout of sl_model (sluice/model.h): the op list, the activations, and the blobs. Shared
 * by model.c and train_checkpoint.c; the CUDA backend will build its device mirror from the
 * same op list.
 */
#ifndef SLUICE_MODEL_INTERNAL_H
#define SLUICE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/model.h"

enum { MODEL_MAX_TENSORS = 96, MODEL_MAX_OPS = 128, MODEL_MAX_ACTS = 128 };

typedef enum model_op_kind {
    OP_CONV,    /* p0: weights (k, c, ks, ks); no bias */
    OP_BN,      /* p0: gamma, p1: beta; state_off: running mean, var; save_off: mean, invstd */
    OP_RELU,    /* */
    OP_MAXPOOL, /* 2x2, stride 2 */
    OP_ADD,     /* out = in + in2 */
    OP_GAP,     /* (n, c, h, w) -> (n, c, 1, 1) */
    OP_LINEAR,  /* p0: weights (out, in), p1: bias (out); the input is flattened */
} model_op_kind;

typedef struct model_op {
    model_op_kind kind;
    int in, in2, out; /* activation indices; in2 only for OP_ADD */
    int p0, p1;       /* tensor indices or -1 */
    int ksize, stride;
    size_t state_off, save_off;
} model_op;

typedef struct model_act {
    int c, h, w;        /* one example */
    float *data, *grad; /* (max_batch, c, h, w) in the arena; NULL for activation 0 */
} model_act;

typedef enum model_init { INIT_HE, INIT_FANIN_UNIFORM, INIT_ONE, INIT_ZERO } model_init;

struct sl_model {
    sl_model_config cfg; /* defaults filled; cfg.name points at name */
    char name[8];
    char err[512];

    sl_model_tensor tensors[MODEL_MAX_TENSORS];
    char names[MODEL_MAX_TENSORS][40];
    model_init init[MODEL_MAX_TENSORS];
    int fan_in[MODEL_MAX_TENSORS];
    size_t ntensors, nparams, ndecay, nstate, nbn_save, work_floats;
    double macs;

    model_op ops[MODEL_MAX_OPS];
    int nops;
    model_act acts[MODEL_MAX_ACTS];
    int nacts;
    unsigned char grad_set[MODEL_MAX_ACTS]; /* backward: activation gradient written yet */

    float *params;  /* (nparams) */
    float *grads;   /* (nparams) */
    float *state;   /* (nstate) running means and variances */
    float *arena;   /* everything below points into it */
    float *scratch; /* fan-out gradient, largest activation */
    float *probs;   /* (max_batch, classes) */
    float *bn_save; /* (nbn_save) */
    float *work;    /* (work_floats) im2col, or NULL */
    int32_t *labels;

    /* The last forward, for the backward. */
    const float *last_input;
    int last_n, last_train, have_labels;
};

/* Writes "<context>: <sl_strerror(code)>" into m->err and returns code. */
int sl__model_err(sl_model *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
