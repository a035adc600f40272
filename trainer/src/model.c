/*
 * Models as a straight list of layer ops over numbered activations, built once at create by
 * code (model_build_mlp, model_build_cnn), run forward in order and backward in reverse.
 *
 * Invariants: activation 0 is the input (no gradient kept); the last activation is the logits.
 * An activation read by two ops (a residual block's input) gets its gradient from the first op
 * that backpropagates into it written directly and from the second added through `scratch`,
 * so every layer function keeps its overwrite-dx contract. The parameter blob holds decayed
 * tensors first (sluice/model.h); offsets are assigned after the build so the order of
 * declaration inside a layer does not matter.
 *
 * Memory: params, grads and state are three allocations (handed out as blobs); activations,
 * their gradients, the batch-norm saves, probabilities, labels, im2col and fan-out scratch are
 * one arena sized from max_batch at create.
 *
 * Threading: one thread at a time per model.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "sluice/alloc.h"
#include "sluice/rng.h"
#include "sluice/status.h"

/* ---- messages ------------------------------------------------------------------------------- */

int sl__model_err(sl_model *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < sizeof m->err)
        snprintf(m->err + k, sizeof m->err - (size_t)k, ": %s", sl_strerror(code));
    return code;
}

const char *sl_model_errmsg(const sl_model *m)
{
    return m->err;
}

/* ---- building ------------------------------------------------------------------------------- */

static int add_act(sl_model *m, int c, int h, int w)
{
    assert(m->nacts < MODEL_MAX_ACTS);
    m->acts[m->nacts] = (model_act){.c = c, .h = h, .w = w};
    return m->nacts++;
}

static int add_tensor(sl_model *m, const char *prefix, const char *leaf, int decay, model_init init,
                      int fan_in, int rank, int d0, int d1, int d2, int d3)
{
    assert(m->ntensors < MODEL_MAX_TENSORS);
    const int t = (int)m->ntensors++;
    snprintf(m->names[t], sizeof m->names[t], "%s.%s", prefix, leaf);
    sl_model_tensor *T = &m->tensors[t];
    *T = (sl_model_tensor){.name = m->names[t], .rank = rank, .decay = decay};
    const int dims[4] = {d0, d1, d2, d3};
    T->count = 1;
    for (int i = 0; i < rank; i++) {
        T->shape[i] = dims[i];
        T->count *= (size_t)dims[i];
    }
    m->init[t] = init;
    m->fan_in[t] = fan_in;
    return t;
}

static model_op *add_op(sl_model *m, model_op_kind kind, int in, int out)
{
    assert(m->nops < MODEL_MAX_OPS);
    model_op *op = &m->ops[m->nops++];
    *op = (model_op){.kind = kind, .in = in, .in2 = -1, .out = out, .p0 = -1, .p1 = -1};
    return op;
}

static int build_conv(sl_model *m, const char *prefix, int in, int k, int ksize, int stride)
{
    const model_act a = m->acts[in];
    const sl_nn_conv_shape s = {
        .n = 1, .c = a.c, .h = a.h, .w = a.w, .k = k, .ksize = ksize, .stride = stride};
    const int out = add_act(m, k, sl_nn_conv_out_h(&s), sl_nn_conv_out_w(&s));
    model_op *op = add_op(m, OP_CONV, in, out);
    /* No bias: batch norm follows every convolution and would cancel it. */
    op->p0 = add_tensor(m, prefix, "w", 1, INIT_HE, a.c * ksize * ksize, 4, k, a.c, ksize, ksize);
    op->ksize = ksize;
    op->stride = stride;
    const size_t work = sl_nn_conv_work_floats(&s);
    m->work_floats = work > m->work_floats ? work : m->work_floats;
    m->macs += (double)k * a.c * ksize * ksize * m->acts[out].h * m->acts[out].w;
    return out;
}

static int build_bn(sl_model *m, const char *prefix, int in)
{
    const model_act a = m->acts[in];
    const int out = add_act(m, a.c, a.h, a.w);
    model_op *op = add_op(m, OP_BN, in, out);
    op->p0 = add_tensor(m, prefix, "gamma", 0, INIT_ONE, 0, 1, a.c, 0, 0, 0);
    op->p1 = add_tensor(m, prefix, "beta", 0, INIT_ZERO, 0, 1, a.c, 0, 0, 0);
    op->state_off = m->nstate;
    m->nstate += 2 * (size_t)a.c; /* running mean (c), then running variance (c) */
    op->save_off = m->nbn_save;
    m->nbn_save += 2 * (size_t)a.c; /* batch mean (c), then 1/sqrt(var + eps) (c) */
    return out;
}

static int build_simple(sl_model *m, model_op_kind kind, int in, int c, int h, int w)
{
    const int out = add_act(m, c, h, w);
    add_op(m, kind, in, out);
    return out;
}

static int build_linear(sl_model *m, const char *prefix, int in, int out_features, model_init init)
{
    const model_act a = m->acts[in];
    const int features = a.c * a.h * a.w;
    const int out = add_act(m, out_features, 1, 1);
    model_op *op = add_op(m, OP_LINEAR, in, out);
    op->p0 = add_tensor(m, prefix, "w", 1, init, features, 2, out_features, features, 0, 0);
    op->p1 = add_tensor(m, prefix, "b", 0, INIT_ZERO, 0, 1, out_features, 0, 0, 0);
    m->macs += (double)features * out_features;
    return out;
}

static void build_mlp(sl_model *m)
{
    int x = add_act(m, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    x = build_linear(m, "fc1", x, m->cfg.hidden, INIT_HE);
    x = build_simple(m, OP_RELU, x, m->cfg.hidden, 1, 1);
    build_linear(m, "fc2", x, m->cfg.classes, INIT_FANIN_UNIFORM);
}

static int build_block(sl_model *m, int b, int in, int cout, int stride)
{
    char p[32], q[40];
    snprintf(p, sizeof p, "block%d", b);
    const model_act a = m->acts[in];
    snprintf(q, sizeof q, "%s.conv1", p);
    int x = build_conv(m, q, in, cout, 3, stride);
    snprintf(q, sizeof q, "%s.bn1", p);
    x = build_bn(m, q, x);
    x = build_simple(m, OP_RELU, x, cout, m->acts[x].h, m->acts[x].w);
    snprintf(q, sizeof q, "%s.conv2", p);
    x = build_conv(m, q, x, cout, 3, 1);
    snprintf(q, sizeof q, "%s.bn2", p);
    x = build_bn(m, q, x);
    int sc = in;
    if (stride != 1 || a.c != cout) {
        snprintf(q, sizeof q, "%s.sc.conv", p);
        sc = build_conv(m, q, in, cout, 1, stride);
        snprintf(q, sizeof q, "%s.sc.bn", p);
        sc = build_bn(m, q, sc);
    }
    const model_act o = m->acts[x];
    const int sum = add_act(m, o.c, o.h, o.w);
    model_op *op = add_op(m, OP_ADD, x, sum);
    op->in2 = sc;
    return build_simple(m, OP_RELU, sum, o.c, o.h, o.w);
}

static void build_cnn(sl_model *m)
{
    const int w = m->cfg.width;
    int x = add_act(m, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w);
    x = build_conv(m, "stem.conv", x, w, 3, 1);
    x = build_bn(m, "stem.bn", x);
    x = build_simple(m, OP_RELU, x, w, m->acts[x].h, m->acts[x].w);
    if (m->cfg.pool)
        x = build_simple(m, OP_MAXPOOL, x, w, m->acts[x].h / 2, m->acts[x].w / 2);
    for (int b = 1; b <= m->cfg.blocks; b++)
        x = build_block(m, b, x, b >= 2 ? 2 * w : w, b == 2 ? 2 : 1);
    /* The head pools each channel to one value. Default: its maximum, built from 2x2 max pools
     * while both sides are even (a global max when they are powers of two) and an average over
     * what remains. A shape's class shows in a few places (corners, a crossing) on a map that
     * is mostly background; averaging dilutes that evidence so much at initialisation that the
     * loss sits near ln(classes) for hundreds of steps (TRAINER.md, "The cnn's head"), while a
     * max passes the strongest local response straight to the classifier. Built from existing
     * layers, so every backend already has it. avg_pool = 1 keeps ResNet's average. */
    if (!m->cfg.avg_pool)
        while (m->acts[x].h >= 2 && m->acts[x].w >= 2 && m->acts[x].h % 2 == 0 &&
               m->acts[x].w % 2 == 0)
            x = build_simple(m, OP_MAXPOOL, x, m->acts[x].c, m->acts[x].h / 2, m->acts[x].w / 2);
    x = build_simple(m, OP_GAP, x, m->acts[x].c, 1, 1);
    build_linear(m, "fc", x, m->cfg.classes, INIT_FANIN_UNIFORM);
}

/* Decayed tensors first, each group in declaration order. */
static void assign_offsets(sl_model *m)
{
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t t = 0; t < m->ntensors; t++)
            if (m->tensors[t].decay == pass) {
                m->tensors[t].offset = off;
                off += m->tensors[t].count;
            }
    m->nparams = off;
    m->ndecay = 0;
    for (size_t t = 0; t < m->ntensors; t++)
        m->ndecay += m->tensors[t].decay ? m->tensors[t].count : 0;
}

/* A standard normal from two uniforms (Box-Muller); 1 - u keeps the log's argument in (0, 1]. */
static double normal(sl_rng *r)
{
    const double u1 = 1.0 - sl_rng_uniform(r), u2 = sl_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void init_params(sl_model *m)
{
    for (size_t t = 0; t < m->ntensors; t++) {
        const sl_model_tensor *T = &m->tensors[t];
        float *p = m->params + T->offset;
        sl_rng r;
        sl_rng_init(&r, m->cfg.seed, t, 0);
        for (size_t i = 0; i < T->count; i++) {
            switch (m->init[t]) {
            case INIT_HE: /* Kaiming normal for layers followed by ReLU */
                p[i] = (float)(normal(&r) * sqrt(2.0 / m->fan_in[t]));
                break;
            case INIT_FANIN_UNIFORM: /* the classifier: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
                p[i] = (float)((2.0 * sl_rng_uniform(&r) - 1.0) / sqrt((double)m->fan_in[t]));
                break;
            case INIT_ONE:
                p[i] = 1.0f;
                break;
            case INIT_ZERO:
                p[i] = 0.0f;
                break;
            }
        }
    }
    for (int o = 0; o < m->nops; o++)
        if (m->ops[o].kind == OP_BN) {
            const int c = m->acts[m->ops[o].in].c;
            for (int i = 0; i < c; i++) {
                m->state[m->ops[o].state_off + i] = 0.0f;
                m->state[m->ops[o].state_off + c + i] = 1.0f;
            }
        }
}

static int check_config(sl_model_config *c, char *err, size_t cap)
{
#define BAD(...) return (snprintf(err, cap, __VA_ARGS__), SL_ERR_INVAL)
    if (!c->name || (strcmp(c->name, "mlp") && strcmp(c->name, "cnn")))
        BAD("model name \"%s\": expected \"mlp\" or \"cnn\"", c->name ? c->name : "(null)");
    if (c->in_c < 1 || c->in_h < 1 || c->in_w < 1 || c->in_c > 4096 || c->in_h > 8192 ||
        c->in_w > 8192)
        BAD("%s: input shape (%d, %d, %d) is out of range", c->name, c->in_c, c->in_h, c->in_w);
    if (c->classes < 2 || c->classes > 1000000)
        BAD("%s: classes = %d, expected at least 2", c->name, c->classes);
    if (c->max_batch < 1 || c->max_batch > 65536)
        BAD("%s: max_batch = %d, expected 1..65536", c->name, c->max_batch);
    if (c->impl != SL_NN_REFERENCE && c->impl != SL_NN_FAST)
        BAD("%s: unknown impl %d", c->name, (int)c->impl);
    c->hidden = c->hidden ? c->hidden : 256;
    c->width = c->width ? c->width : 16;
    c->blocks = c->blocks ? c->blocks : 3;
    c->bn_momentum = c->bn_momentum > 0 ? c->bn_momentum : 0.1f;
    c->bn_eps = c->bn_eps > 0 ? c->bn_eps : 1e-5f;
    if (c->hidden < 1 || c->hidden > 1 << 20)
        BAD("%s: hidden = %d is out of range", c->name, c->hidden);
    if (!strcmp(c->name, "cnn")) {
        if (c->width < 1 || c->width > 2048)
            BAD("cnn: width = %d is out of range", c->width);
        if (c->blocks < 2 || c->blocks > 8)
            BAD("cnn: blocks = %d, expected 2..8 (the second block is the stride-2 stage)",
                c->blocks);
        if (c->pool && (c->in_h < 4 || c->in_w < 4))
            BAD("cnn: pool needs inputs of at least 4x4, not %dx%d", c->in_h, c->in_w);
        if (c->in_h < 2 || c->in_w < 2)
            BAD("cnn: input %dx%d is too small for the stride-2 stage", c->in_h, c->in_w);
    }
    const double elems = (double)c->in_c * c->in_h * c->in_w * c->max_batch;
    if (elems > (double)(1u << 31))
        BAD("%s: max_batch x input = %.0f values, more than 2^31", c->name, elems);
    return 0;
#undef BAD
}

int sl_model_create(sl_model **out, const sl_model_config *cfg, char *errbuf, size_t errcap)
{
    char local[256];
    if (!errbuf) {
        errbuf = local;
        errcap = sizeof local;
    }
    *out = NULL;
    sl_model_config c = *cfg;
    int rc = check_config(&c, errbuf, errcap);
    if (rc < 0)
        return rc;
    sl_model *m = sl_calloc(1, sizeof *m);
    if (!m)
        return (snprintf(errbuf, errcap, "%s: model struct", c.name), SL_ERR_NOMEM);
    m->cfg = c;
    snprintf(m->name, sizeof m->name, "%s", c.name);
    m->cfg.name = m->name;
    if (!strcmp(c.name, "mlp"))
        build_mlp(m);
    else
        build_cnn(m);
    assign_offsets(m);

    /* The arena: per-example activation sizes times max_batch, for values and gradients. */
    const size_t B = (size_t)c.max_batch;
    size_t per_example = 0, largest = 0;
    for (int a = 0; a < m->nacts; a++) {
        const size_t sz = (size_t)m->acts[a].c * m->acts[a].h * m->acts[a].w;
        per_example += a == 0 ? 0 : 2 * sz; /* the input is the caller's, without gradient */
        largest = sz > largest ? sz : largest;
    }
    const size_t floats = per_example * B + largest * B /* fan-out scratch */ +
                          2 * B * (size_t)c.classes /* probs, dlogits spare */ + m->nbn_save +
                          m->work_floats + B /* labels (int32, same size as float) */;
    m->params = sl_calloc(m->nparams, sizeof(float));
    m->grads = sl_calloc(m->nparams, sizeof(float));
    m->state = sl_calloc(m->nstate ? m->nstate : 1, sizeof(float));
    m->arena = sl_malloc_aligned(64, floats * sizeof(float));
    if (!m->params || !m->grads || !m->state || !m->arena) {
        snprintf(errbuf, errcap, "%s: %zu parameters and %zu arena floats", c.name, m->nparams,
                 floats);
        sl_model_free(m);
        return SL_ERR_NOMEM;
    }
    float *p = m->arena;
    for (int a = 1; a < m->nacts; a++) {
        const size_t sz = (size_t)m->acts[a].c * m->acts[a].h * m->acts[a].w * B;
        m->acts[a].data = p;
        m->acts[a].grad = p + sz;
        p += 2 * sz;
    }
    m->scratch = p;
    p += largest * B;
    m->probs = p;
    p += B * (size_t)c.classes;
    p += B * (size_t)c.classes;
    m->bn_save = p;
    p += m->nbn_save;
    m->work = m->work_floats ? p : NULL;
    p += m->work_floats;
    m->labels = (int32_t *)p;
    init_params(m);
    *out = m;
    return 0;
}

void sl_model_free(sl_model *m)
{
    if (!m)
        return;
    sl_free(m->params);
    sl_free(m->grads);
    sl_free(m->state);
    sl_free(m->arena);
    sl_free(m);
}

/* ---- accessors ------------------------------------------------------------------------------ */

const sl_model_config *sl_model_get_config(const sl_model *m)
{
    return &m->cfg;
}

void sl_model_set_impl(sl_model *m, sl_nn_impl impl)
{
    m->cfg.impl = impl;
}

size_t sl_model_param_count(const sl_model *m)
{
    return m->nparams;
}

size_t sl_model_decay_count(const sl_model *m)
{
    return m->ndecay;
}

float *sl_model_params(sl_model *m)
{
    return m->params;
}

float *sl_model_grads(sl_model *m)
{
    return m->grads;
}

size_t sl_model_state_count(const sl_model *m)
{
    return m->nstate;
}

float *sl_model_state(sl_model *m)
{
    return m->state;
}

size_t sl_model_tensor_count(const sl_model *m)
{
    return m->ntensors;
}

const sl_model_tensor *sl_model_tensor_at(const sl_model *m, size_t i)
{
    return i < m->ntensors ? &m->tensors[i] : NULL;
}

double sl_model_forward_macs(const sl_model *m)
{
    return m->macs;
}

const float *sl_model_logits(const sl_model *m)
{
    return m->acts[m->nacts - 1].data;
}

void sl_model_zero_grad(sl_model *m)
{
    memset(m->grads, 0, m->nparams * sizeof(float));
}

/* ---- forward -------------------------------------------------------------------------------- */

static const float *act_data(const sl_model *m, int a, const float *x)
{
    return a == 0 ? x : m->acts[a].data;
}

static size_t act_numel(const sl_model *m, int a, int n)
{
    return (size_t)n * m->acts[a].c * m->acts[a].h * m->acts[a].w;
}

static sl_nn_conv_shape conv_shape(const sl_model *m, const model_op *op, int n)
{
    const model_act a = m->acts[op->in];
    return (sl_nn_conv_shape){.n = n,
                              .c = a.c,
                              .h = a.h,
                              .w = a.w,
                              .k = m->acts[op->out].c,
                              .ksize = op->ksize,
                              .stride = op->stride};
}

static const float *param(const sl_model *m, int t)
{
    return t < 0 ? NULL : m->params + m->tensors[t].offset;
}

static float *grad(sl_model *m, int t)
{
    return t < 0 ? NULL : m->grads + m->tensors[t].offset;
}

int sl_model_forward(sl_model *m, const float *x, const int32_t *labels, int n, int train,
                     double *loss, int *correct)
{
    m->err[0] = '\0';
    m->last_n = 0;
    if (n < 1 || n > m->cfg.max_batch)
        return sl__model_err(m, SL_ERR_INVAL, "%s forward: batch of %d, expected 1..%d", m->name, n,
                             m->cfg.max_batch);
    if (labels)
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= m->cfg.classes)
                return sl__model_err(m, SL_ERR_RANGE,
                                     "%s forward: label %d of example %d is outside [0, %d)",
                                     m->name, labels[i], i, m->cfg.classes);
    const sl_nn_impl impl = m->cfg.impl;
    for (int o = 0; o < m->nops; o++) {
        const model_op *op = &m->ops[o];
        const model_act *ai = &m->acts[op->in];
        const float *in = act_data(m, op->in, x);
        float *y = m->acts[op->out].data;
        switch (op->kind) {
        case OP_CONV: {
            const sl_nn_conv_shape s = conv_shape(m, op, n);
            sl_nn_conv_fwd(impl, &s, in, param(m, op->p0), NULL, y, m->work);
            break;
        }
        case OP_BN: {
            float *rs = m->state + op->state_off, *save = m->bn_save + op->save_off;
            if (train)
                sl_nn_bn_fwd_train(in, y, n, ai->c, ai->h * ai->w, param(m, op->p0),
                                   param(m, op->p1), rs, rs + ai->c, m->cfg.bn_momentum,
                                   m->cfg.bn_eps, save, save + ai->c);
            else
                sl_nn_bn_fwd_eval(in, y, n, ai->c, ai->h * ai->w, param(m, op->p0),
                                  param(m, op->p1), rs, rs + ai->c, m->cfg.bn_eps);
            break;
        }
        case OP_RELU:
            sl_nn_relu_fwd(in, y, act_numel(m, op->in, n));
            break;
        case OP_MAXPOOL:
            sl_nn_maxpool2_fwd(in, y, n, ai->c, ai->h, ai->w);
            break;
        case OP_ADD:
            sl_nn_add_fwd(in, act_data(m, op->in2, x), y, act_numel(m, op->in, n));
            break;
        case OP_GAP:
            sl_nn_gap_fwd(in, y, n, ai->c, ai->h, ai->w);
            break;
        case OP_LINEAR:
            sl_nn_linear_fwd(impl, in, param(m, op->p0), param(m, op->p1), y, n,
                             ai->c * ai->h * ai->w, m->acts[op->out].c);
            break;
        }
    }
    m->last_n = n;
    m->last_input = x;
    m->last_train = train;
    m->have_labels = labels != NULL;
    if (labels) {
        memcpy(m->labels, labels, sizeof(int32_t) * (size_t)n);
        int right;
        const double l =
            sl_nn_softmax_xent_fwd(sl_model_logits(m), labels, m->probs, n, m->cfg.classes, &right);
        if (loss)
            *loss = l;
        if (correct)
            *correct = right;
    }
    return 0;
}

/* ---- backward ------------------------------------------------------------------------------- */

/* Where an op writes the gradient of activation a: directly the first time, else the scratch
 * (added afterwards by join_grad). NULL for the input, whose gradient nobody needs. */
static float *grad_target(sl_model *m, int a)
{
    if (a == 0)
        return NULL;
    if (!m->grad_set[a]) {
        m->grad_set[a] = 1;
        return m->acts[a].grad;
    }
    return m->scratch;
}

static void join_grad(sl_model *m, int a, const float *written, int n)
{
    if (written && written == m->scratch)
        sl_nn_add_into(m->acts[a].grad, m->scratch, act_numel(m, a, n));
}

int sl_model_backward(sl_model *m, float scale)
{
    if (!m->last_n || !m->last_train || !m->have_labels)
        return sl__model_err(m, SL_ERR_INVAL,
                             "%s backward: needs a training forward with labels first", m->name);
    const int n = m->last_n;
    const sl_nn_impl impl = m->cfg.impl;
    memset(m->grad_set, 0, sizeof m->grad_set);
    const int logits = m->nacts - 1;
    m->grad_set[logits] = 1;
    sl_nn_softmax_xent_bwd(m->probs, m->labels, m->acts[logits].grad, n, m->cfg.classes, scale);
    for (int o = m->nops - 1; o >= 0; o--) {
        const model_op *op = &m->ops[o];
        const model_act *ai = &m->acts[op->in];
        const float *in = act_data(m, op->in, m->last_input);
        const float *dy = m->acts[op->out].grad;
        float *dx = grad_target(m, op->in);
        switch (op->kind) {
        case OP_CONV: {
            const sl_nn_conv_shape s = conv_shape(m, op, n);
            sl_nn_conv_bwd(impl, &s, in, param(m, op->p0), dy, dx, grad(m, op->p0), NULL, m->work);
            break;
        }
        case OP_BN: {
            const float *save = m->bn_save + op->save_off;
            sl_nn_bn_bwd(in, dy, dx, n, ai->c, ai->h * ai->w, param(m, op->p0), save, save + ai->c,
                         grad(m, op->p0), grad(m, op->p1));
            break;
        }
        case OP_RELU:
            if (dx)
                sl_nn_relu_bwd(m->acts[op->out].data, dy, dx, act_numel(m, op->in, n));
            break;
        case OP_MAXPOOL:
            if (dx)
                sl_nn_maxpool2_bwd(in, dy, dx, n, ai->c, ai->h, ai->w);
            break;
        case OP_ADD: {
            const size_t cnt = act_numel(m, op->in, n);
            if (dx)
                memcpy(dx, dy, cnt * sizeof(float));
            join_grad(m, op->in, dx, n);
            float *dx2 = grad_target(m, op->in2);
            if (dx2)
                memcpy(dx2, dy, cnt * sizeof(float));
            join_grad(m, op->in2, dx2, n);
            continue;
        }
        case OP_GAP:
            if (dx)
                sl_nn_gap_bwd(dy, dx, n, ai->c, ai->h, ai->w);
            break;
        case OP_LINEAR:
            sl_nn_linear_bwd(impl, in, param(m, op->p0), dy, dx, grad(m, op->p0), grad(m, op->p1),
                             n, ai->c * ai->h * ai->w, m->acts[op->out].c);
            break;
        }
        join_grad(m, op->in, dx, n);
    }
    return 0;
}

/* ---- finiteness ----------------------------------------------------------------------------- */

int sl_model_check_finite(sl_model *m, int64_t step, double loss)
{
    if (!isfinite(loss)) {
        snprintf(m->err, sizeof m->err, "step %lld: loss is %s", (long long)step,
                 isnan(loss) ? "nan" : "inf");
        return SL_ERR_NONFINITE;
    }
    static const char *const what[2] = {"gradient", "parameter"};
    for (int kind = 0; kind < 2; kind++) {
        const float *blob = kind == 0 ? m->grads : m->params;
        for (size_t t = 0; t < m->ntensors; t++) {
            const sl_model_tensor *T = &m->tensors[t];
            const int64_t bad = sl_nn_find_nonfinite(blob + T->offset, T->count);
            if (bad >= 0) {
                const float v = blob[T->offset + (size_t)bad];
                snprintf(m->err, sizeof m->err, "step %lld: %s of %s is %s at element %lld",
                         (long long)step, what[kind], T->name, isnan(v) ? "nan" : "inf",
                         (long long)bad);
                return SL_ERR_NONFINITE;
            }
        }
    }
    return 0;
}
