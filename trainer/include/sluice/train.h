/*
 * The training loop: a model (sluice/model.h) fed by a sluice pipeline of batches, evaluated on a
 * held-out pipeline, checkpointed atomically, resumed exactly, logged as CSV and TensorBoard
 * event files, and judged input-bound or not at the end.
 *
 * Data: every element of the training dataset is one batch holding a tensor `x_name` ("image")
 * and a tensor `y_name` ("label"). x is float32 (N, C, H, W), float32 (N, D) (taken as (N, D, 1,
 * 1)), or uint8 (N, H, W, C) (scaled by 1/255 and transposed to NCHW). y is int64, int32 or uint8
 * (N). The first batch fixes the model's input shape; no later batch may hold more examples than
 * `batch` (0: the first batch's size).
 *
 * Steps and epochs: the loop iterates repeat(train) (train itself when already infinite), so
 * one iterator and one checkpoint blob cover every epoch; `epochs` needs the training dataset's
 * cardinality (batches per epoch). Steps are counted from 0; `steps` is the total, so a resumed
 * run continues to the same end.
 *
 * Checkpoints: one file DIR/checkpoint.sltc holding the loop's counters and RNG, the model and
 * optimizer (sl_train_state_save) and the iterator (sl_iter_save), crc32c-checked; it is
 * written to a temporary file in DIR, fsync'd and renamed over the previous one, so a crash at
 * any point leaves either the old or the new checkpoint, never a mix. Resuming restores all of
 * it: the loss sequence continues exactly as an uninterrupted run's would.
 *
 * Logs (logdir): train.csv (appended to on resume) and a TensorBoard event file
 * events.out.tfevents.<seconds>.<host> per run (TFRecord-framed Event protos). With trace_path,
 * the training iterator records a Chrome trace (sluice/profile.h) written there at the end.
 *
 * Threading: a trainer belongs to one thread; its pipelines run their own worker threads.
 */
#ifndef SLUICE_TRAIN_H
#define SLUICE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/model.h"
#include "sluice/optim.h"
#include "sluice/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the model lives when it is not the CPU model of sluice/model.h: a table of functions over
 * a backend's own handle (`user`). trainer/cuda implements it once over SL_CUDA_FN, giving the
 * CUDA device (sl_cuda_train_backend_open) and its CPU emulator (sl_cuda_emu_train_backend_open,
 * sluice/cuda_loop.h); keeping the loop behind this table is what lets sl_trainer stay below
 * those libraries. Pointers named x and y below are the backend's (device) memory unless said.
 * Every function returns 0 or a negative SL_ERR_* code with the text in errmsg. */
typedef struct sl_train_backend {
    const char *device; /* what the report calls it: "cuda", "cuda-emu" */
    void *user;
    /* On the first batch: the model for mc (input shape, max_batch, seed) and its optimizer,
     * clipping at clip_norm (0: none). u8 = 1: inputs will come as uint8 (N, H, W, C) through
     * feed_*; 0: as float32 (N, C, H, W) through upload. */
    int (*create)(void *user, const sl_model_config *mc, const sl_optim_config *oc, float clip_norm,
                  int u8);
    /* uint8 inputs: host buffers for the next batch (pixels (max_batch, H, W, C), labels
     * (max_batch) int32), then submit n of them, then take the oldest submitted batch as
     * normalized (x / 255) float (n, C, H, W) input and int32 labels. */
    int (*feed_slot)(void *user, uint8_t **pixels, int32_t **labels);
    int (*feed_submit)(void *user, int n);
    int (*feed_next)(void *user, const float **x, const int32_t **y, int *n);
    /* Host seconds feed_next has spent waiting for copies, in all (the loop counts it as data
     * wait). */
    double (*feed_wait_seconds)(void *user);
    /* float inputs: host x (n, C, H, W) and labels to the backend's buffers. */
    int (*upload)(void *user, const float *x, const int32_t *y, int n, const float **dx,
                  const int32_t **dy);
    /* One training step (zero_grad, forward, backward, finite check, clipping, optimizer at lr);
     * `step` names the step in messages. */
    int (*step)(void *user, const float *x, const int32_t *y, int n, float lr, int64_t step,
                double *loss, int *correct);
    /* Evaluation: forward with train = 0. */
    int (*eval)(void *user, const float *x, const int32_t *y, int n, double *loss, int *correct);
    /* sl_train_state_save / _load bytes of the model and optimizer (save: sl_malloc'd). */
    int (*save)(void *user, uint8_t **out, size_t *len);
    int (*load)(void *user, const uint8_t *data, size_t len);
    /* May be NULL. The dynamic loss scale (sluice/loss_scale.h's scale and clean steps), which
     * the loop keeps in its checkpoint: set = 0 reads it (scale 0: none to keep, as without
     * fp16), set = 1 restores it after load. */
    void (*loss_scale)(void *user, float *scale, int32_t *clean, int set);
    const char *(*errmsg)(void *user);
    /* Frees the handle; the owner calls it after sl_trainer_close. */
    void (*close)(void *user);
} sl_train_backend;

typedef struct sl_train_config {
    /* model */
    const char *model;               /* "mlp" or "cnn" */
    int classes;                     /* >= 2 */
    int hidden, width, blocks, pool; /* as in sl_model_config (0: its defaults) */
    int avg_pool;                    /* as in sl_model_config (0: the global max head) */
    int batch;                       /* largest batch (0: the first batch's size) */
    const char *x_name, *y_name;     /* NULL: "image", "label" */
    /* length: steps > 0 wins; else epochs (needs the dataset's cardinality) */
    int64_t steps;
    int64_t epochs;
    /* optimization */
    sl_optim_config optim;
    float lr, min_lr;     /* base and final learning rate */
    int64_t warmup_steps; /* linear warmup */
    int64_t decay_steps;  /* cosine from lr to min_lr ending here; 0: constant after warmup */
    float clip_norm;      /* 0: no clipping */
    /* evaluation on the held-out dataset (when given) */
    int64_t eval_every;   /* steps between evaluations (0: only at the end) */
    int64_t eval_batches; /* at most this many batches per evaluation (0: the whole dataset) */
    int patience;         /* early stop after this many evaluations without a better loss
                           * (0: never) */
    /* checkpoints and logs (NULL: none) */
    const char *checkpoint_dir;
    int64_t checkpoint_every; /* steps between checkpoints (0: only at the end) */
    int resume;               /* 1: continue from checkpoint_dir's checkpoint when there is one */
    const char *logdir;
    int64_t log_every;      /* steps per CSV row / scalar summary (0: 10) */
    const char *trace_path; /* a Chrome trace of the training pipeline, written at the end
                             * (sl_iter_trace_write; NULL: none) */
    /* engine */
    uint64_t seed;        /* model init, loop RNG and the pipelines' seed */
    sl_iter_options iter; /* threads, memory, on_error; its seed is replaced by `seed` */
    int gemm_threads;     /* 0: leave OpenBLAS's setting */
    /* model placement: NULL trains the CPU model (SL_NN_FAST, or SL_NN_REFERENCE with
     * cpu_reference = 1, which tests compare other backends against); else this backend, which
     * must outlive the trainer */
    const sl_train_backend *backend;
    int cpu_reference;
    /* hooks (may be NULL) */
    void (*on_step)(void *user, int64_t step, double loss, int correct, int n);
    /* Called with the bytes written so far while a checkpoint is being written; a nonzero
     * return stops the write there as a crash would (tests use it). */
    int (*write_hook)(void *user, size_t written);
    void *user;
} sl_train_config;

/* Defaults: cnn, 10 classes, AdamW (sl_optim_defaults), lr 1e-3, min_lr 0, eval_every 0,
 * log_every 10, seed 1. Fields that have no default (steps) are 0. */
sl_train_config sl_train_defaults(void);

/* What a run did. Times are seconds. */
typedef struct sl_train_report {
    int64_t steps;                     /* total steps done (including those before a resume) */
    int64_t start_step;                /* the step this run started at (> 0 after a resume) */
    double epochs;                     /* steps / batches per epoch (0 when unknown) */
    int64_t examples;                  /* examples trained on by this run */
    double train_loss, train_accuracy; /* over the last log_every steps */
    int evaluated;                     /* 1: val_* hold the last evaluation */
    double val_loss, val_accuracy;
    int stopped_early;
    double seconds;         /* this run's training steps, evaluation excluded */
    double data_wait_s;     /* time waiting for the next batch and converting it; with a
                             * backend also filling its input buffers (the feed's pinned slot or
                             * the float upload) and the feed's wait for the copy */
    double compute_s;       /* forward, backward, optimizer step (the rest of the feed's
                             * feed_next: the normalize kernel's launch) */
    double images_per_s;    /* examples / seconds */
    double wait_share;      /* data_wait_s / seconds */
    const char *verdict;    /* sl_train_verdict(wait_share) */
    char bottleneck[256];   /* the training pipeline's limiting stage ("" when unknown) */
    char events_path[1024]; /* the event file written ("" without logdir) */
    const char *device;     /* "cpu" or the backend's device name */
} sl_train_report;

/* "highly input-bound" (>= 20% of step time waiting for data), "moderately input-bound"
 * (>= 5%), "not input-bound". */
const char *sl_train_verdict(double wait_share);

typedef struct sl_trainer sl_trainer;

/* Takes its own references to train and val (val may be NULL); starts nothing (the iterator,
 * its threads and the log files come with sl_trainer_run, and sl_trainer_close ends them).
 * SL_ERR_INVAL for a bad config (the message in errbuf names the field), SL_ERR_NOMEM. */
int sl_trainer_open(sl_trainer **out, const sl_train_config *cfg, sl_dataset *train,
                    sl_dataset *val, char *errbuf, size_t errcap);
/* Closes the iterator (cancelling and joining its threads) and the logs; frees everything.
 * NULL does nothing. */
void sl_trainer_close(sl_trainer *t);
/* Runs to the end (steps, epochs, early stop) and fills *rep (may be NULL). Errors: the
 * pipeline's, the model's (SL_ERR_NONFINITE naming the step and tensor), a checkpoint's, or
 * -errno; sl_trainer_errmsg says which. */
int sl_trainer_run(sl_trainer *t, sl_train_report *rep);
const char *sl_trainer_errmsg(const sl_trainer *t);
/* The CPU model (NULL until the first batch fixed its shape, and always with a backend). */
sl_model *sl_trainer_model(sl_trainer *t);

/* ---- TensorBoard event files (trainer/src/tfevents.c) ------------------------------------- */

typedef struct sl_tfevents sl_tfevents;

/* Creates DIR/events.out.tfevents.<seconds>.<host> (a suffix is added when that name exists)
 * and writes the first Event {wall_time, file_version "brain.Event:2"}. -errno, SL_ERR_NOMEM. */
int sl_tfevents_open(sl_tfevents **out, const char *dir);
/* The file's path. */
const char *sl_tfevents_path(const sl_tfevents *w);
/* One Event {wall_time, step, summary {value {tag, simple_value} x n}}. -errno. */
int sl_tfevents_scalars(sl_tfevents *w, int64_t step, const char *const *tags, const float *values,
                        int n);
/* Flushes and closes; the first write error seen, or 0. NULL gives 0. */
int sl_tfevents_close(sl_tfevents *w);

#ifdef __cplusplus
}
#endif
#endif
