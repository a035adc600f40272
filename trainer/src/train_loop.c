/*
 * The training loop (sluice/train.h): batches from a pipeline -> model -> optimizer, with
 * evaluation, early stopping, atomic checkpoints, exact resume, CSV and TensorBoard logs, and
 * the data-wait vs compute split that decides the input-bound verdict.
 *
 * Owns the trainer's datasets (references), the training iterator, the model and optimizer
 * (created on the first batch, whose shape they need), the float/int32 staging buffers for
 * inputs that are not already float32 NCHW, and the log writers. With cfg.backend (the CUDA
 * device or its emulator, sluice/cuda_loop.h) the model, optimizer and input buffers live in the
 * backend instead, reached only through its table of functions: sl_trainer sits below the CUDA
 * libraries, which link it. uint8 batches are copied into the backend feed's pinned slot and
 * normalized there, float32 batches uploaded as they are. With uint8 inputs the loop submits
 * batch k+1 to the feed before step k computes (read_ahead), except before a checkpoint, an
 * evaluation or the last step, so the invariant below still holds wherever a checkpoint is
 * taken.
 *
 * Invariants: `step` counts optimizer steps done and the iterator has returned exactly `step`
 * batches since the run began (repeat() makes epochs one stream), so a checkpoint taken between
 * steps pairs the model and optimizer after step s with the iterator position after batch s.
 * Evaluation runs the model with train = 0 (running statistics untouched) on its own iterator,
 * so it changes nothing a checkpoint holds except the early-stopping counters, which are saved.
 *
 * Checkpoint file (little-endian), DIR/checkpoint.sltc:
 *   "SLCKPT1\0" | version u32 = 1 | loss scale f32 | step i64 | best val loss f64 |
 *   bad evaluations i32 | loss scale clean steps i32 | loop RNG 11 x u32 | state length u64 |
 *   iterator length
 *   u64 | sl_train_state_save bytes | sl_iter_save bytes | crc32c of everything before, u32.
 *
 * Threading: one thread drives a trainer; the pipelines have their own workers.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/crc32c.h"
#include "sluice/profile.h"
#include "sluice/rng.h"
#include "sluice/train.h"

enum { CKPT_VERSION = 1, CKPT_HEADER = 8 + 4 + 4 + 8 + 8 + 4 + 4 + 11 * 4 + 8 + 8 };
static const char ckpt_magic[8] = "SLCKPT1";
static const char ckpt_name[] = "checkpoint.sltc";

struct sl_trainer {
    sl_train_config cfg;
    sl_dataset *train; /* repeat(train) unless it was infinite */
    sl_dataset *val;
    int64_t batches_per_epoch; /* -1 unknown */
    int64_t total_steps;
    sl_iter *it;
    sl_model *model; /* the CPU model, or NULL with a backend */
    sl_optim *optim;
    const sl_train_backend *be; /* NULL: the CPU model */
    int created;                /* the model exists (on the CPU or in the backend) */
    int u8_input;               /* the first batch's x was uint8: a backend's feed carries x */
    uint64_t feed_compute_ns;   /* feed_next's host time that was not waiting for a copy */
    int ahead;                  /* 1: the next step's batch is in the feed (or ahead_rc says why
                                 * not): read_ahead */
    int ahead_rc;               /* 0, SL_EOF, or the error (message in err) */
    int max_batch, in_c, in_h, in_w;
    float *xbuf;   /* staging for uint8 / non-float inputs: max_batch x C x H x W */
    int32_t *ybuf; /* labels as int32 */
    sl_rng rng;    /* the loop's own stream (saved; nothing in the CPU loop draws from it yet) */
    int64_t step;
    double best_val;
    int bad_evals;
    uint8_t *pending_state; /* a checkpoint's model/optimizer bytes, loaded on the first batch */
    float pending_scale;    /* and its loss scale (0: none), given to a backend then */
    int32_t pending_clean;
    size_t pending_len;
    FILE *csv;
    sl_tfevents *events;
    sl_errmsg err;
};

sl_train_config sl_train_defaults(void)
{
    sl_train_config c;
    memset(&c, 0, sizeof c);
    c.model = "cnn";
    c.classes = 10;
    c.optim = sl_optim_defaults(SL_OPTIM_ADAMW);
    c.lr = 1e-3f;
    c.log_every = 10;
    c.seed = 1;
    return c;
}

const char *sl_train_verdict(double wait_share)
{
    if (wait_share >= 0.20)
        return "highly input-bound";
    if (wait_share >= 0.05)
        return "moderately input-bound";
    return "not input-bound";
}

const char *sl_trainer_errmsg(const sl_trainer *t)
{
    return t ? t->err.text : "";
}
sl_model *sl_trainer_model(sl_trainer *t)
{
    return t->model;
}

static int mkdir_one(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int sl_trainer_open(sl_trainer **out, const sl_train_config *cfg, sl_dataset *train,
                    sl_dataset *val, char *errbuf, size_t errcap)
{
    *out = NULL;
#define BAD(...)                                   \
    do {                                           \
        if (errbuf && errcap)                      \
            snprintf(errbuf, errcap, __VA_ARGS__); \
        return SL_ERR_INVAL;                       \
    } while (0)
    if (!train)
        BAD("train: a training dataset is required");
    if (!cfg->model || (strcmp(cfg->model, "mlp") && strcmp(cfg->model, "cnn")))
        BAD("model: expected \"mlp\" or \"cnn\"");
    if (cfg->classes < 2)
        BAD("classes: must be at least 2 (got %d)", cfg->classes);
    if (cfg->steps < 0 || cfg->epochs < 0 || (cfg->steps == 0 && cfg->epochs == 0))
        BAD("steps/epochs: one of them must be positive");
    if (!(cfg->lr > 0) || cfg->min_lr < 0)
        BAD("lr: must be positive (min_lr >= 0)");
    if (cfg->batch < 0 || cfg->eval_every < 0 || cfg->eval_batches < 0 || cfg->patience < 0 ||
        cfg->checkpoint_every < 0 || cfg->log_every < 0 || cfg->warmup_steps < 0 ||
        cfg->decay_steps < 0 || cfg->clip_norm < 0)
        BAD("batch, eval_every, eval_batches, patience, checkpoint_every, log_every, "
            "warmup_steps, decay_steps and clip_norm must not be negative");
    if (cfg->resume && !cfg->checkpoint_dir)
        BAD("resume: needs a checkpoint directory");
    if (cfg->backend && cfg->cpu_reference)
        BAD("cpu_reference: only for the CPU model (a backend is set)");
    const int64_t card = sl_dataset_cardinality(train);
    int64_t total = cfg->steps;
    if (total == 0) {
        if (card < 0)
            BAD("epochs: the training dataset's length is not known without a pass; give steps");
        if (card == 0)
            BAD("train: the training dataset is empty");
        total = cfg->epochs * card;
    }
#undef BAD
    sl_trainer *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ERR_NOMEM;
    t->cfg = *cfg;
    if (!t->cfg.x_name)
        t->cfg.x_name = "image";
    if (!t->cfg.y_name)
        t->cfg.y_name = "label";
    if (!t->cfg.log_every)
        t->cfg.log_every = 10;
    t->batches_per_epoch = card >= 0 ? card : -1;
    t->total_steps = total;
    if (card == SL_CARDINALITY_INFINITE) {
        sl_dataset_retain(train);
        t->train = train;
    } else {
        const int rc = sl_dataset_repeat(&t->train, train, -1);
        if (rc < 0) {
            sl_free(t);
            return rc;
        }
    }
    if (val) {
        sl_dataset_retain(val);
        t->val = val;
    }
    sl_rng_init(&t->rng, cfg->seed, 0x747261696eULL /* "train" */, 0);
    t->best_val = INFINITY;
    t->be = cfg->backend;
    *out = t;
    return 0;
}

void sl_trainer_close(sl_trainer *t)
{
    if (!t)
        return;
    sl_iter_close(t->it);
    sl_dataset_release(t->train);
    sl_dataset_release(t->val);
    sl_model_free(t->model);
    sl_optim_free(t->optim);
    sl_free(t->xbuf);
    sl_free(t->ybuf);
    sl_free(t->pending_state);
    if (t->csv)
        fclose(t->csv);
    sl_tfevents_close(t->events);
    sl_free(t);
}

/* ---- batches -> model inputs --------------------------------------------------------------- */

/* Creates the model and optimizer from the first batch's x shape, then applies a pending
 * checkpoint's bytes. */
static int create_model(sl_trainer *t, const sl_tensor *x)
{
    int c, h, w;
    if (x->rank == 4 && x->dtype == SL_DTYPE_U8) {
        h = (int)x->shape[1], w = (int)x->shape[2], c = (int)x->shape[3];
    } else if (x->rank == 4) {
        c = (int)x->shape[1], h = (int)x->shape[2], w = (int)x->shape[3];
    } else {
        c = (int)x->shape[1], h = 1, w = 1;
    }
    t->in_c = c, t->in_h = h, t->in_w = w;
    t->max_batch = t->cfg.batch ? t->cfg.batch : (int)x->shape[0];
    sl_model_config mc = {0};
    mc.name = t->cfg.model;
    mc.in_c = c, mc.in_h = h, mc.in_w = w;
    mc.classes = t->cfg.classes;
    mc.max_batch = t->max_batch;
    mc.seed = t->cfg.seed;
    mc.impl = t->cfg.cpu_reference ? SL_NN_REFERENCE : SL_NN_FAST;
    mc.hidden = t->cfg.hidden, mc.width = t->cfg.width, mc.blocks = t->cfg.blocks;
    mc.pool = t->cfg.pool;
    mc.avg_pool = t->cfg.avg_pool;
    t->u8_input = x->dtype == SL_DTYPE_U8;
    t->ybuf = sl_malloc(sizeof(int32_t) * (size_t)t->max_batch);
    if (!t->ybuf)
        return sl__errmsg_set(&t->err, SL_ERR_NOMEM, "staging buffers");
    int rc;
    if (t->be) {
        rc = t->be->create(t->be->user, &mc, &t->cfg.optim, t->cfg.clip_norm, t->u8_input);
        if (rc < 0)
            return sl__errmsg_raw(&t->err, rc, "model on %s: %s", t->be->device,
                                  t->be->errmsg(t->be->user));
    } else {
        char ebuf[256] = "";
        rc = sl_model_create(&t->model, &mc, ebuf, sizeof ebuf);
        if (rc < 0)
            return sl__errmsg_raw(&t->err, rc, "model: %s", ebuf);
        rc = sl_optim_create(&t->optim, &t->cfg.optim, sl_model_param_count(t->model),
                             sl_model_decay_count(t->model));
        if (rc < 0)
            return sl__errmsg_set(&t->err, rc, "optimizer");
        const size_t per = (size_t)c * (size_t)h * (size_t)w;
        t->xbuf = sl_malloc(sizeof(float) * per * (size_t)t->max_batch);
        if (!t->xbuf)
            return sl__errmsg_set(&t->err, SL_ERR_NOMEM, "staging buffers");
    }
    t->created = 1;
    if (t->pending_state) {
        if (t->be) {
            rc = t->be->load(t->be->user, t->pending_state, t->pending_len);
            if (rc < 0)
                return sl__errmsg_raw(&t->err, rc, "checkpoint %s/%s: %s", t->cfg.checkpoint_dir,
                                      ckpt_name, t->be->errmsg(t->be->user));
            if (t->pending_scale > 0 && t->be->loss_scale)
                t->be->loss_scale(t->be->user, &t->pending_scale, &t->pending_clean, 1);
        } else {
            rc = sl_train_state_load(t->model, t->optim, t->pending_state, t->pending_len);
            if (rc < 0)
                return sl__errmsg_raw(&t->err, rc, "checkpoint %s/%s: %s", t->cfg.checkpoint_dir,
                                      ckpt_name, sl_model_errmsg(t->model));
        }
        sl_free(t->pending_state);
        t->pending_state = NULL;
    }
    return 0;
}

/* Copies labels of type ty into dst as int32, each checked to lie in [0, classes). */
static int convert_labels(sl_trainer *t, const sl_tensor *ty, int32_t *dst, const char *what)
{
    for (int64_t i = 0; i < ty->shape[0]; i++) {
        int64_t v;
        if (ty->dtype == SL_DTYPE_I64)
            v = ((const int64_t *)ty->data)[i];
        else if (ty->dtype == SL_DTYPE_I32)
            v = ((const int32_t *)ty->data)[i];
        else
            v = ((const uint8_t *)ty->data)[i];
        if (v < 0 || v >= t->cfg.classes)
            return sl__errmsg_set(&t->err, SL_ERR_RANGE,
                                  "%s: label %lld of example %lld is not in [0, %d)", what,
                                  (long long)v, (long long)i, t->cfg.classes);
        dst[i] = (int32_t)v;
    }
    return 0;
}

/* Takes the oldest batch submitted to the backend's feed: normalized device input and labels.
 * feed_next's host time other than its wait for the copy goes to t->feed_compute_ns, which the
 * loop moves from data wait to compute. */
static int backend_take(sl_trainer *t, const float **x, const int32_t **y, int *n, const char *what)
{
    const sl_train_backend *be = t->be;
    const double w0 = be->feed_wait_seconds(be->user);
    const uint64_t c0 = sl_clock_ns();
    const int rc = be->feed_next(be->user, x, y, n);
    const uint64_t c1 = sl_clock_ns();
    const double waited_ns = (be->feed_wait_seconds(be->user) - w0) * 1e9;
    if ((double)(c1 - c0) > waited_ns)
        t->feed_compute_ns += c1 - c0 - (uint64_t)waited_ns;
    if (rc < 0)
        return sl__errmsg_raw(&t->err, rc, "%s: feed: %s", what, be->errmsg(be->user));
    return 0;
}

/* A backend's inputs: uint8 copied into the feed's pinned slot and submitted (then, with take,
 * taken back normalized), float uploaded as it is. */
static int backend_batch(sl_trainer *t, const sl_tensor *tx, const sl_tensor *ty, int n,
                         const float **x, const int32_t **y, int take, const char *what)
{
    const sl_train_backend *be = t->be;
    int rc;
    if ((tx->dtype == SL_DTYPE_U8) != t->u8_input)
        return sl__errmsg_set(&t->err, SL_ERR_TYPE,
                              "%s: x \"%s\" is %s but the first batch's was %s (the %s backend "
                              "takes one input type per run)",
                              what, t->cfg.x_name, t->u8_input ? "float32" : "uint8",
                              t->u8_input ? "uint8" : "float32", be->device);
    if (!t->u8_input) {
        assert(take);
        SL_TRY(convert_labels(t, ty, t->ybuf, what));
        rc = be->upload(be->user, tx->data, t->ybuf, n, x, y);
        if (rc < 0)
            return sl__errmsg_raw(&t->err, rc, "%s: upload: %s", what, be->errmsg(be->user));
        return 0;
    }
    uint8_t *pixels;
    int32_t *labels;
    rc = be->feed_slot(be->user, &pixels, &labels);
    if (rc < 0)
        return sl__errmsg_raw(&t->err, rc, "%s: feed: %s", what, be->errmsg(be->user));
    SL_TRY(convert_labels(t, ty, labels, what));
    memcpy(pixels, tx->data, (size_t)n * (size_t)t->in_c * (size_t)t->in_h * (size_t)t->in_w);
    rc = be->feed_submit(be->user, n);
    if (rc < 0)
        return sl__errmsg_raw(&t->err, rc, "%s: feed: %s", what, be->errmsg(be->user));
    if (!take)
        return 0;
    int got = 0;
    SL_TRY(backend_take(t, x, y, &got, what));
    assert(got == n);
    return 0;
}

/* Points *x and *y at one batch's inputs (converting into the staging buffers when needed) and
 * sets *n; creates the model on the first batch. take = 0 (uint8 inputs to a backend only): the
 * batch is submitted to the feed and left there, for a later backend_take. */
static int prepare_batch_ex(sl_trainer *t, const sl_element *e, const float **x, const int32_t **y,
                            int *n, int take, const char *what)
{
    const sl_tensor *tx = sl_element_get(e, t->cfg.x_name), *ty = sl_element_get(e, t->cfg.y_name);
    if (!tx || !ty)
        return sl__errmsg_set(&t->err, SL_ERR_NOT_FOUND, "%s: the batch has no tensor \"%s\"", what,
                              tx ? t->cfg.y_name : t->cfg.x_name);
    const int xok = (tx->dtype == SL_DTYPE_F32 && (tx->rank == 4 || tx->rank == 2)) ||
                    (tx->dtype == SL_DTYPE_U8 && tx->rank == 4);
    if (!xok)
        return sl__errmsg_set(&t->err, SL_ERR_TYPE,
                              "%s: x \"%s\" must be float32 (N, C, H, W) or (N, D), or uint8 (N, "
                              "H, W, C)",
                              what, t->cfg.x_name);
    if (ty->rank != 1 || ty->shape[0] != tx->shape[0] ||
        (ty->dtype != SL_DTYPE_I64 && ty->dtype != SL_DTYPE_I32 && ty->dtype != SL_DTYPE_U8))
        return sl__errmsg_set(&t->err, SL_ERR_TYPE,
                              "%s: y \"%s\" must be int64, int32 or uint8 (N) with N matching x",
                              what, t->cfg.y_name);
    if (!t->created)
        SL_TRY(create_model(t, tx));
    const int64_t nb = tx->shape[0];
    int c, h, w;
    if (tx->rank == 4 && tx->dtype == SL_DTYPE_U8)
        h = (int)tx->shape[1], w = (int)tx->shape[2], c = (int)tx->shape[3];
    else if (tx->rank == 4)
        c = (int)tx->shape[1], h = (int)tx->shape[2], w = (int)tx->shape[3];
    else
        c = (int)tx->shape[1], h = 1, w = 1;
    if (c != t->in_c || h != t->in_h || w != t->in_w)
        return sl__errmsg_set(&t->err, SL_ERR_SCHEMA,
                              "%s: example shape %dx%dx%d differs from the model's %dx%dx%d", what,
                              c, h, w, t->in_c, t->in_h, t->in_w);
    if (nb < 1 || nb > t->max_batch)
        return sl__errmsg_set(&t->err, SL_ERR_RANGE, "%s: batch of %lld examples (at most %d)",
                              what, (long long)nb, t->max_batch);
    *n = (int)nb;
    if (t->be)
        return backend_batch(t, tx, ty, *n, x, y, take, what);
    if (tx->dtype == SL_DTYPE_F32) {
        *x = tx->data;
    } else {
        /* uint8 HWC -> float CHW in [0, 1] */
        const uint8_t *src = tx->data;
        const size_t hw = (size_t)h * (size_t)w;
        for (int64_t i = 0; i < nb; i++)
            for (size_t p = 0; p < hw; p++)
                for (int k = 0; k < c; k++)
                    t->xbuf[((size_t)i * (size_t)c + (size_t)k) * hw + p] =
                        (float)src[((size_t)i * hw + p) * (size_t)c + (size_t)k] * (1.0f / 255.0f);
        *x = t->xbuf;
    }
    SL_TRY(convert_labels(t, ty, t->ybuf, what));
    *y = t->ybuf;
    return 0;
}

static int prepare_batch(sl_trainer *t, const sl_element *e, const float **x, const int32_t **y,
                         int *n, const char *what)
{
    return prepare_batch_ex(t, e, x, y, n, 1, what);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int write_all(sl_trainer *t, int fd, const uint8_t *p, size_t len, const char *path)
{
    size_t done = 0;
    while (done < len) {
        size_t chunk = SL_MIN(len - done, (size_t)4096); /* the hook's granularity */
        if (t->cfg.write_hook && t->cfg.write_hook(t->cfg.user, done))
            return sl__errmsg_raw(&t->err, SL_ERR_CANCELLED,
                                  "%s: write stopped by the hook at byte %zu of %zu", path, done,
                                  len);
        const ssize_t w = write(fd, p + done, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return sl__errmsg_set(&t->err, -errno, "%s: write", path);
        }
        done += (size_t)w;
    }
    return 0;
}

static int save_checkpoint(sl_trainer *t)
{
    uint8_t *state = NULL, *iblob = NULL, *buf = NULL;
    size_t slen = 0, ilen = 0;
    int rc = t->be ? t->be->save(t->be->user, &state, &slen)
                   : sl_train_state_save(t->model, t->optim, &state, &slen);
    if (rc < 0) {
        if (t->be)
            sl__errmsg_raw(&t->err, rc, "checkpoint: model state on %s: %s", t->be->device,
                           t->be->errmsg(t->be->user));
        else
            sl__errmsg_set(&t->err, rc, "checkpoint: model state");
        goto out;
    }
    rc = sl_iter_save(t->it, &iblob, &ilen);
    if (rc < 0) {
        sl__errmsg_raw(&t->err, rc, "checkpoint: %s", sl_iter_errmsg(t->it));
        goto out;
    }
    const size_t total = CKPT_HEADER + slen + ilen + 4;
    buf = sl_malloc(total);
    if (!buf) {
        rc = sl__errmsg_set(&t->err, SL_ERR_NOMEM, "checkpoint");
        goto out;
    }
    uint8_t *p = buf;
    memcpy(p, ckpt_magic, 8), p += 8;
    /* a backend's fp16 loss scale (0 and 0: none, as every checkpoint before it wrote in these
     * two once-reserved fields) */
    float ls_scale = 0;
    int32_t ls_clean = 0;
    if (t->be && t->be->loss_scale)
        t->be->loss_scale(t->be->user, &ls_scale, &ls_clean, 0);
    uint32_t ls_bits;
    memcpy(&ls_bits, &ls_scale, 4);
    sl__store_u32le(p, CKPT_VERSION), p += 4;
    sl__store_u32le(p, ls_bits), p += 4;
    sl__store_u64le(p, (uint64_t)t->step), p += 8;
    uint64_t bits;
    memcpy(&bits, &t->best_val, 8);
    sl__store_u64le(p, bits), p += 8;
    sl__store_u32le(p, (uint32_t)t->bad_evals), p += 4;
    sl__store_u32le(p, (uint32_t)ls_clean), p += 4;
    const uint32_t rngw[11] = {t->rng.key[0], t->rng.key[1], t->rng.ctr[0], t->rng.ctr[1],
                               t->rng.ctr[2], t->rng.ctr[3], t->rng.out[0], t->rng.out[1],
                               t->rng.out[2], t->rng.out[3], t->rng.used};
    for (int i = 0; i < 11; i++)
        sl__store_u32le(p, rngw[i]), p += 4;
    sl__store_u64le(p, slen), p += 8;
    sl__store_u64le(p, ilen), p += 8;
    memcpy(p, state, slen), p += slen;
    memcpy(p, iblob, ilen), p += ilen;
    sl__store_u32le(p, sl_crc32c(0, buf, (size_t)(p - buf)));

    /* Temporary file in the same directory (same filesystem), fsync, rename over the old one,
     * fsync the directory: the name always points at one complete checkpoint. */
    char tmp[1100], path[1100];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", t->cfg.checkpoint_dir, ckpt_name);
    snprintf(path, sizeof path, "%s/%s", t->cfg.checkpoint_dir, ckpt_name);
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = sl__errmsg_set(&t->err, -errno, "checkpoint: %s", tmp);
        goto out;
    }
    rc = write_all(t, fd, buf, total, tmp);
    if (rc == 0 && fsync(fd) != 0)
        rc = sl__errmsg_set(&t->err, -errno, "checkpoint: fsync %s", tmp);
    if (close(fd) != 0 && rc == 0)
        rc = sl__errmsg_set(&t->err, -errno, "checkpoint: close %s", tmp);
    if (rc < 0)
        goto out; /* the temporary stays, as after a crash; the next save truncates it */
    if (rename(tmp, path) != 0) {
        rc = sl__errmsg_set(&t->err, -errno, "checkpoint: rename %s to %s", tmp, path);
        goto out;
    }
    const int dfd = open(t->cfg.checkpoint_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    sl_free(state);
    sl_free(iblob);
    sl_free(buf);
    return rc;
}

/* Reads DIR/checkpoint.sltc into the loop's counters, opens the iterator at its position and
 * keeps the model bytes for create_model. 1 when there was one, 0 when none. */
static int load_checkpoint(sl_trainer *t, const sl_iter_options *opts)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", t->cfg.checkpoint_dir, ckpt_name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return sl__errmsg_set(&t->err, -errno, "checkpoint: %s", path);
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = sl_realloc(buf, cap);
            if (!nb) {
                rc = sl__errmsg_set(&t->err, SL_ERR_NOMEM, "checkpoint: %s", path);
                break;
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = sl__errmsg_set(&t->err, -EIO, "checkpoint: %s: read", path);
            break;
        }
    }
    fclose(f);
    if (rc < 0)
        goto out;
    if (len < 8 || memcmp(buf, ckpt_magic, 8) != 0) {
        rc = sl__errmsg_set(&t->err, SL_ERR_FORMAT, "checkpoint: %s", path);
        goto out;
    }
    if (len < CKPT_HEADER + 4) {
        rc = sl__errmsg_set(&t->err, SL_ERR_TRUNCATED, "checkpoint: %s: %zu bytes", path, len);
        goto out;
    }
    if (sl__load_u32le(buf + 8) != CKPT_VERSION) {
        rc = sl__errmsg_set(&t->err, SL_ERR_VERSION, "checkpoint: %s: version %u", path,
                            (unsigned)sl__load_u32le(buf + 8));
        goto out;
    }
    const uint8_t *p = buf + 16;
    const int64_t step = (int64_t)sl__load_u64le(p);
    p += 8;
    uint64_t bits = sl__load_u64le(p);
    double best;
    memcpy(&best, &bits, 8);
    p += 8;
    const int bad = (int)sl__load_u32le(p);
    const int32_t ls_clean = (int32_t)sl__load_u32le(p + 4);
    const uint32_t ls_bits = sl__load_u32le(buf + 12);
    p += 8;
    uint32_t rngw[11];
    for (int i = 0; i < 11; i++)
        rngw[i] = sl__load_u32le(p), p += 4;
    const uint64_t slen = sl__load_u64le(p), ilen = sl__load_u64le(p + 8);
    p += 16;
    if (slen > len || ilen > len || CKPT_HEADER + slen + ilen + 4 != len) {
        rc = sl__errmsg_set(&t->err,
                            CKPT_HEADER + slen + ilen + 4 > len ? SL_ERR_TRUNCATED : SL_ERR_CORRUPT,
                            "checkpoint: %s: sections do not add up to its %zu bytes", path, len);
        goto out;
    }
    if (sl_crc32c(0, buf, len - 4) != sl__load_u32le(buf + len - 4)) {
        rc = sl__errmsg_set(&t->err, SL_ERR_CORRUPT, "checkpoint: %s: crc32c", path);
        goto out;
    }
    rc = sl_iter_restore(&t->it, t->train, opts, p + slen, ilen);
    if (rc < 0) {
        sl__errmsg_raw(&t->err, rc, "checkpoint: %s: iterator: %s", path, sl_iter_errmsg(t->it));
        sl_iter_close(t->it);
        t->it = NULL;
        goto out;
    }
    t->pending_state = sl_malloc(slen ? slen : 1);
    if (!t->pending_state) {
        rc = sl__errmsg_set(&t->err, SL_ERR_NOMEM, "checkpoint");
        goto out;
    }
    memcpy(t->pending_state, p, slen);
    t->pending_len = slen;
    t->step = step;
    t->best_val = best;
    t->bad_evals = bad;
    memcpy(&t->pending_scale, &ls_bits, 4);
    t->pending_clean = ls_clean;
    t->rng.key[0] = rngw[0], t->rng.key[1] = rngw[1];
    for (int i = 0; i < 4; i++)
        t->rng.ctr[i] = rngw[2 + i], t->rng.out[i] = rngw[6 + i];
    t->rng.used = rngw[10];
    rc = 1;
out:
    sl_free(buf);
    return rc;
}

/* ---- evaluation and logs ----------------------------------------------------------------- */

static int evaluate(sl_trainer *t, const sl_iter_options *opts, double *loss, double *acc)
{
    sl_iter *vi = NULL;
    int rc = sl_iter_open(&vi, t->val, opts);
    if (rc < 0) {
        sl__errmsg_raw(&t->err, rc, "validation: %s", sl_iter_errmsg(vi));
        sl_iter_close(vi);
        return rc;
    }
    double sum = 0;
    int64_t right = 0, count = 0, batches = 0;
    sl_element e;
    while (!t->cfg.eval_batches || batches < t->cfg.eval_batches) {
        rc = sl_iter_next(vi, &e);
        if (rc == SL_EOF) {
            rc = 0;
            break;
        }
        if (rc < 0) {
            sl__errmsg_raw(&t->err, rc, "validation: %s", sl_iter_errmsg(vi));
            break;
        }
        const float *x;
        const int32_t *y;
        int n, correct = 0;
        double l = 0;
        rc = prepare_batch(t, &e, &x, &y, &n, "validation");
        if (rc == 0 && t->be) {
            rc = t->be->eval(t->be->user, x, y, n, &l, &correct);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "validation: %s", t->be->errmsg(t->be->user));
        } else if (rc == 0) {
            rc = sl_model_forward(t->model, x, y, n, 0, &l, &correct);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "validation: %s", sl_model_errmsg(t->model));
        }
        sl_element_release(&e);
        if (rc < 0)
            break;
        sum += l * n;
        right += correct;
        count += n;
        batches++;
    }
    sl_iter_close(vi);
    if (rc < 0)
        return rc;
    if (!count)
        return sl__errmsg_set(&t->err, SL_ERR_INVAL, "validation: the dataset gave no batch");
    *loss = sum / (double)count;
    *acc = (double)right / (double)count;
    return 0;
}

static int open_logs(sl_trainer *t, int resumed, sl_train_report *rep)
{
    char path[1100];
    SL_TRY(mkdir_one(t->cfg.logdir) < 0
               ? sl__errmsg_set(&t->err, -errno, "logdir: %s", t->cfg.logdir)
               : 0);
    snprintf(path, sizeof path, "%s/train.csv", t->cfg.logdir);
    struct stat st;
    const int append = resumed && stat(path, &st) == 0 && st.st_size > 0;
    t->csv = fopen(path, append ? "a" : "w");
    if (!t->csv)
        return sl__errmsg_set(&t->err, -errno, "log: %s", path);
    if (!append)
        fprintf(t->csv, "step,loss,accuracy,lr,images_per_s,val_loss,val_accuracy\n");
    const int rc = sl_tfevents_open(&t->events, t->cfg.logdir);
    if (rc < 0)
        return sl__errmsg_set(&t->err, rc, "log: event file in %s", t->cfg.logdir);
    snprintf(rep->events_path, sizeof rep->events_path, "%s", sl_tfevents_path(t->events));
    return 0;
}

static int log_row(sl_trainer *t, int64_t step, double loss, double acc, float lr, double ips,
                   int have_val, double vloss, double vacc)
{
    if (!t->csv)
        return 0;
    if (have_val)
        fprintf(t->csv, "%lld,%.6f,%.6f,%.6g,%.1f,%.6f,%.6f\n", (long long)step, loss, acc, lr, ips,
                vloss, vacc);
    else
        fprintf(t->csv, "%lld,%.6f,%.6f,%.6g,%.1f,,\n", (long long)step, loss, acc, lr, ips);
    fflush(t->csv);
    const char *tags[6] = {"train/loss",   "train/accuracy", "learning_rate",
                           "images_per_s", "val/loss",       "val/accuracy"};
    const float vals[6] = {(float)loss, (float)acc, lr, (float)ips, (float)vloss, (float)vacc};
    const int rc = sl_tfevents_scalars(t->events, step, tags, vals, have_val ? 6 : 4);
    if (rc < 0)
        return sl__errmsg_set(&t->err, rc, "log: %s", sl_tfevents_path(t->events));
    return 0;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Submits batch step + 1 to the backend's feed while batch `step` is about to compute, so its
 * copy to the device overlaps that step (the feed's two slots: one computing, one filling). Only
 * for uint8 inputs to a backend, and only where nothing between the two steps needs the
 * iterator at batch step + 1 or the feed empty: not before a checkpoint, an evaluation or the
 * last step, which keeps the invariant at every checkpoint. A failure (or the end of the data)
 * waits in ahead_rc for the step that batch belongs to. */
static void read_ahead(sl_trainer *t)
{
    const int64_t next = t->step + 1; /* steps done once this one is */
    if (!t->be || !t->u8_input || next >= t->total_steps)
        return;
    if (t->cfg.checkpoint_dir && t->cfg.checkpoint_every && next % t->cfg.checkpoint_every == 0)
        return;
    if (t->val && t->cfg.eval_every && next % t->cfg.eval_every == 0)
        return;
    sl_element e;
    int rc = sl_iter_next(t->it, &e);
    if (rc < 0)
        sl__errmsg_raw(&t->err, rc, "train: step %lld: %s", (long long)next, sl_iter_errmsg(t->it));
    if (rc == 0) {
        const float *x;
        const int32_t *y;
        int n;
        rc = prepare_batch_ex(t, &e, &x, &y, &n, 0, "train");
        sl_element_release(&e);
    }
    t->ahead = 1;
    t->ahead_rc = rc;
}

static void find_bottleneck(sl_trainer *t, sl_train_report *rep)
{
    sl_iter_bottleneck(t->it, rep->bottleneck, sizeof rep->bottleneck);
}

int sl_trainer_run(sl_trainer *t, sl_train_report *rep_out)
{
    sl_train_report rep;
    memset(&rep, 0, sizeof rep);
    sl__errmsg_clear(&t->err);
    if (t->it)
        return sl__errmsg_set(&t->err, SL_ERR_INVAL, "run: a trainer runs once");
    if (t->cfg.gemm_threads > 0)
        sl_nn_set_gemm_threads(t->cfg.gemm_threads);
    sl_iter_options opts = t->cfg.iter;
    opts.seed = t->cfg.seed;
    int rc, resumed = 0;
    if (t->cfg.checkpoint_dir) {
        if (mkdir_one(t->cfg.checkpoint_dir) < 0)
            return sl__errmsg_set(&t->err, -errno, "checkpoint directory %s",
                                  t->cfg.checkpoint_dir);
        if (t->cfg.resume) {
            rc = load_checkpoint(t, &opts);
            if (rc < 0)
                return rc;
            resumed = rc;
        }
    }
    if (!t->it) {
        rc = sl_iter_open(&t->it, t->train, &opts);
        if (rc < 0)
            return sl__errmsg_raw(&t->err, rc, "train: %s", sl_iter_errmsg(t->it));
    }
    if (t->cfg.trace_path && (rc = sl_iter_trace_start(t->it, 0)) < 0)
        return sl__errmsg_set(&t->err, rc, "trace");
    if (t->cfg.logdir)
        SL_TRY(open_logs(t, resumed, &rep));
    rep.start_step = t->step;
    rep.device = t->be ? t->be->device : "cpu";
    const sl_lr_schedule sched = {t->cfg.lr, t->cfg.min_lr, t->cfg.warmup_steps,
                                  t->cfg.decay_steps ? t->cfg.decay_steps : INT64_MAX};
    uint64_t wait_ns = 0, compute_ns = 0, win_ns = 0;
    double win_loss = 0;
    int64_t win_right = 0, win_n = 0, win_steps = 0;
    int saved_at_end = 0, evaluated_at_end = 0;
    float lr = 0;
    rc = 0;
    while (t->step < t->total_steps) {
        const uint64_t t0 = sl_clock_ns();
        sl_element e;
        int have_e = 0;
        const float *x = NULL;
        const int32_t *y = NULL;
        int n = 0, correct = 0;
        double loss = 0;
        const uint64_t fc0 = t->feed_compute_ns;
        if (t->ahead) { /* this step's batch went into the feed during the previous step */
            t->ahead = 0;
            rc = t->ahead_rc;
            if (rc == 0)
                rc = backend_take(t, &x, &y, &n, "train");
        } else {
            rc = sl_iter_next(t->it, &e);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "train: step %lld: %s", (long long)t->step,
                               sl_iter_errmsg(t->it));
            if (rc == 0) {
                have_e = 1;
                rc = prepare_batch(t, &e, &x, &y, &n, "train");
            }
        }
        if (rc == SL_EOF) {
            rc = 0;
            break;
        }
        if (rc == 0)
            read_ahead(t);
        const uint64_t t1 = sl_clock_ns();
        const uint64_t feed_ns = t->feed_compute_ns - fc0;
        if (rc == 0 && t->be) {
            lr = sl_lr_at(&sched, t->step);
            rc = t->be->step(t->be->user, x, y, n, lr, t->step, &loss, &correct);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "train: %s", t->be->errmsg(t->be->user));
        } else if (rc == 0) {
            sl_model_zero_grad(t->model);
            rc = sl_model_forward(t->model, x, y, n, 1, &loss, &correct);
            if (rc == 0)
                rc = sl_model_backward(t->model, 1.0f);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "train: step %lld: %s", (long long)t->step,
                               sl_model_errmsg(t->model));
        }
        if (rc == 0 && !t->be) {
            rc = sl_model_check_finite(t->model, t->step, loss);
            if (rc < 0)
                sl__errmsg_raw(&t->err, rc, "train: %s", sl_model_errmsg(t->model));
        }
        if (rc == 0 && !t->be) {
            if (t->cfg.clip_norm > 0)
                sl_grad_clip_norm(sl_model_grads(t->model), sl_model_param_count(t->model),
                                  t->cfg.clip_norm);
            lr = sl_lr_at(&sched, t->step);
            sl_optim_step(t->optim, sl_model_params(t->model), sl_model_grads(t->model), lr);
        }
        if (have_e)
            sl_element_release(&e); /* x pointed into it until the backward */
        if (rc < 0)
            break;
        const uint64_t t2 = sl_clock_ns();
        wait_ns += t1 - t0 - feed_ns;
        compute_ns += t2 - t1 + feed_ns;
        win_ns += t2 - t0;
        win_loss += loss;
        win_right += correct;
        win_n += n;
        win_steps++;
        rep.examples += n;
        if (t->cfg.on_step)
            t->cfg.on_step(t->cfg.user, t->step, loss, correct, n);
        t->step++;
        saved_at_end = evaluated_at_end = 0;

        int have_val = 0;
        double vloss = 0, vacc = 0;
        /* evaluations every eval_every steps and after the last one (logged on its row) */
        if (t->val && ((t->cfg.eval_every && t->step % t->cfg.eval_every == 0) ||
                       t->step == t->total_steps)) {
            rc = evaluate(t, &opts, &vloss, &vacc);
            if (rc < 0)
                break;
            have_val = evaluated_at_end = 1;
            rep.evaluated = 1, rep.val_loss = vloss, rep.val_accuracy = vacc;
            if (vloss < t->best_val)
                t->best_val = vloss, t->bad_evals = 0;
            else
                t->bad_evals++;
        }
        const int last = t->step == t->total_steps ||
                         (have_val && t->cfg.patience && t->bad_evals >= t->cfg.patience);
        if (t->step % t->cfg.log_every == 0 || have_val || last) {
            rep.train_loss = win_loss / (double)win_steps;
            rep.train_accuracy = (double)win_right / (double)win_n;
            rc = log_row(t, t->step, rep.train_loss, rep.train_accuracy, lr,
                         (double)win_n / ((double)win_ns / 1e9), have_val, vloss, vacc);
            if (rc < 0)
                break;
            win_loss = 0, win_right = win_n = win_steps = 0, win_ns = 0;
        }
        if (t->cfg.checkpoint_dir && t->cfg.checkpoint_every &&
            t->step % t->cfg.checkpoint_every == 0) {
            rc = save_checkpoint(t);
            if (rc < 0)
                break;
            saved_at_end = 1;
        }
        if (have_val && t->cfg.patience && t->bad_evals >= t->cfg.patience) {
            rep.stopped_early = 1;
            break;
        }
    }
    rep.steps = t->step;
    rep.data_wait_s = (double)wait_ns / 1e9;
    rep.compute_s = (double)compute_ns / 1e9;
    rep.seconds = rep.data_wait_s + rep.compute_s;
    rep.images_per_s = rep.seconds > 0 ? (double)rep.examples / rep.seconds : 0;
    rep.wait_share = rep.seconds > 0 ? rep.data_wait_s / rep.seconds : 0;
    rep.verdict = sl_train_verdict(rep.wait_share);
    rep.epochs = t->batches_per_epoch > 0 ? (double)t->step / (double)t->batches_per_epoch : 0;
    if (rc == 0 && t->created && t->val && !evaluated_at_end) {
        rc = evaluate(t, &opts, &rep.val_loss, &rep.val_accuracy);
        if (rc == 0) {
            rep.evaluated = 1;
            rc = log_row(t, t->step, rep.train_loss, rep.train_accuracy, lr, rep.images_per_s, 1,
                         rep.val_loss, rep.val_accuracy);
        }
    }
    if (rc == 0 && t->created && t->cfg.checkpoint_dir && !saved_at_end && t->step > rep.start_step)
        rc = save_checkpoint(t);
    if (rc == 0 && !t->created)
        rc = sl__errmsg_set(&t->err, SL_ERR_INVAL, "train: the pipeline gave no batch");
    if (t->it)
        find_bottleneck(t, &rep);
    if (t->it && t->cfg.trace_path) {
        const int trc = sl_iter_trace_write(t->it, t->cfg.trace_path);
        if (rc == 0 && trc < 0)
            rc = sl__errmsg_set(&t->err, trc, "trace: %s", t->cfg.trace_path);
    }
    if (t->events) {
        const int erc = sl_tfevents_close(t->events);
        t->events = NULL;
        if (rc == 0 && erc < 0)
            rc = sl__errmsg_set(&t->err, erc, "log: event file");
    }
    if (t->csv) {
        if (fclose(t->csv) != 0 && rc == 0)
            rc = sl__errmsg_set(&t->err, -errno, "log: train.csv");
        t->csv = NULL;
    }
    if (rep_out)
        *rep_out = rep;
    return rc;
}
