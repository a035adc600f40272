/*
 * The training-state byte string: model parameters, batch-norm running statistics and optimizer
 * state, with signatures that refuse a blob from another architecture or optimizer, and a
 * crc32c over everything. Layout (little-endian, trainer/TRAINER.md has the diagram):
 *
 *   0  magic "SLTRAIN\0"        8   u32 version (1)      12  u32 model signature
 *   16 u64 parameter count      24  u64 state count      32  u32 optimizer kind (0: none)
 *   36 u32 optimizer slots      40  u64 optimizer steps  48  f32 params, f32 state,
 *   f32 optimizer state (slots x parameter count), then u32 crc32c of all the bytes before it.
 *
 * The model signature is the crc32c of a text naming the model, its input shape, classes and
 * every tensor with its shape, so any architectural difference is caught without listing the
 * config fields that matter (the seed, max_batch and impl do not).
 *
 * Threading: touches only the handles passed in.
 */
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "optim_internal.h"
#include "sluice/alloc.h"
#include "sluice/crc32c.h"
#include "sluice/optim.h"
#include "sluice/status.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "train_checkpoint.c writes host floats as little-endian; add byte swaps to port"
#endif

enum { CK_VERSION = 1, CK_HEADER = 48, CK_TRAILER = 4 };
static const char ck_magic[8] = {'S', 'L', 'T', 'R', 'A', 'I', 'N', '\0'};

static uint32_t model_signature(const sl_model *m)
{
    char buf[128];
    const sl_model_config *c = &m->cfg;
    int k =
        snprintf(buf, sizeof buf, "%s %d %d %d %d", c->name, c->in_c, c->in_h, c->in_w, c->classes);
    uint32_t crc = sl_crc32c(0, buf, (size_t)k);
    for (size_t t = 0; t < m->ntensors; t++) {
        const sl_model_tensor *T = &m->tensors[t];
        k = snprintf(buf, sizeof buf, ";%s %d %d %d %d", T->name, T->shape[0], T->shape[1],
                     T->shape[2], T->shape[3]);
        crc = sl_crc32c(crc, buf, (size_t)k);
    }
    /* The op list too: the cnn's two heads have the same tensors but are different models. */
    for (int o = 0; o < m->nops; o++) {
        k = snprintf(buf, sizeof buf, ",%d", (int)m->ops[o].kind);
        crc = sl_crc32c(crc, buf, (size_t)k);
    }
    return crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int sl_train_state_save(const sl_model *m, const sl_optim *o, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    const size_t opt_floats = o ? o->slots * o->count : 0;
    const size_t floats = m->nparams + m->nstate + opt_floats;
    const size_t total = CK_HEADER + floats * sizeof(float) + CK_TRAILER;
    uint8_t *b = sl_malloc(total);
    if (!b)
        return SL_ERR_NOMEM;
    memcpy(b, ck_magic, 8);
    put32(b + 8, CK_VERSION);
    put32(b + 12, model_signature(m));
    put64(b + 16, m->nparams);
    put64(b + 24, m->nstate);
    put32(b + 32, o ? (uint32_t)o->cfg.kind : 0);
    put32(b + 36, o ? (uint32_t)o->slots : 0);
    put64(b + 40, o ? (uint64_t)o->steps : 0);
    uint8_t *p = b + CK_HEADER;
    memcpy(p, m->params, m->nparams * sizeof(float));
    p += m->nparams * sizeof(float);
    if (m->nstate)
        memcpy(p, m->state, m->nstate * sizeof(float));
    p += m->nstate * sizeof(float);
    if (opt_floats)
        memcpy(p, o->state, opt_floats * sizeof(float));
    p += opt_floats * sizeof(float);
    put32(p, sl_crc32c(0, b, (size_t)(p - b)));
    *out = b;
    *len = total;
    return 0;
}

int sl_train_state_load(sl_model *m, sl_optim *o, const uint8_t *data, size_t len)
{
    m->err[0] = '\0';
    if (len < 8 || memcmp(data, ck_magic, 8))
        return sl__model_err(m, SL_ERR_FORMAT, "training state: no SLTRAIN magic");
    if (len < CK_HEADER + CK_TRAILER)
        return sl__model_err(m, SL_ERR_TRUNCATED, "training state: %zu bytes, header needs %d", len,
                             CK_HEADER + CK_TRAILER);
    const uint32_t version = get32(data + 8);
    if (version != CK_VERSION)
        return sl__model_err(m, SL_ERR_VERSION, "training state: version %u, this build reads %d",
                             version, CK_VERSION);
    const uint64_t np = get64(data + 16), ns = get64(data + 24), slots = get32(data + 36);
    /* Sizes are checked against this model before any product can overflow. */
    if (np != m->nparams || ns != m->nstate || slots > 2)
        return sl__model_err(m, SL_ERR_SCHEMA,
                             "training state: %llu parameters and %llu state values, this %s "
                             "has %zu and %zu",
                             (unsigned long long)np, (unsigned long long)ns, m->name, m->nparams,
                             m->nstate);
    const size_t floats = (size_t)(np + ns + slots * np);
    const size_t want = CK_HEADER + floats * sizeof(float) + CK_TRAILER;
    if (len < want)
        return sl__model_err(m, SL_ERR_TRUNCATED, "training state: %zu bytes, expected %zu", len,
                             want);
    if (len > want)
        return sl__model_err(m, SL_ERR_CORRUPT, "training state: %zu bytes, expected %zu", len,
                             want);
    const uint32_t stored = get32(data + want - CK_TRAILER);
    const uint32_t actual = sl_crc32c(0, data, want - CK_TRAILER);
    if (stored != actual)
        return sl__model_err(m, SL_ERR_CORRUPT, "training state: crc32c %08x, the bytes give %08x",
                             stored, actual);
    if (get32(data + 12) != model_signature(m))
        return sl__model_err(m, SL_ERR_SCHEMA,
                             "training state: saved from another architecture than this %s",
                             m->name);
    const uint32_t kind = get32(data + 32);
    if (o && (kind != (uint32_t)o->cfg.kind || slots != o->slots || o->count != np))
        return sl__model_err(m, SL_ERR_SCHEMA,
                             "training state: optimizer kind %u with %llu slots, this one is "
                             "kind %d with %zu",
                             kind, (unsigned long long)slots, (int)o->cfg.kind, o->slots);
    const uint8_t *p = data + CK_HEADER;
    memcpy(m->params, p, m->nparams * sizeof(float));
    p += m->nparams * sizeof(float);
    if (m->nstate)
        memcpy(m->state, p, m->nstate * sizeof(float));
    p += m->nstate * sizeof(float);
    if (o) {
        if (o->slots)
            memcpy(o->state, p, o->slots * o->count * sizeof(float));
        o->steps = (int64_t)get64(data + 40);
    }
    return 0;
}
