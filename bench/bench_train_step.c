/*
 * Training steps per second of the CPU trainer, two ways, interleaved round by round:
 *
 *   in-memory  the training step (zero_grad, forward, backward, the NaN/Inf check, optimizer
 *              step: the sequence sl_trainer_run runs) called directly on one preallocated
 *              float32 batch of random values and labels: the compute alone;
 *   fed        sl_trainer_run itself over a real pipeline, built as `sluice train --batch B`
 *              builds it: PIPELINE | batch(B, drop_remainder=true) | prefetch(auto), timed by
 *              the loop's on_step hook, so each timed step includes sl_iter_next and the
 *              loop's input handling. The pipeline's workers share the cores with the step.
 *
 * input overhead = 1 - fed / in-memory. Each round times --steps steps after --warmup steps
 * (the fed round's warmup also covers opening the pipeline and creating the model); rounds
 * alternate in-memory, fed, so load on a shared machine touches both alike. Medians of
 * --rounds. The last line, "RESULT key=value ...", is for bench/peers/run_train.sh.
 *
 * Same model, optimizer and learning rate as `sluice train --optimizer sgd` (momentum 0.9,
 * weight decay 5e-4 on the conv/linear weights, lr 0.05), seed 1.
 *
 * usage: bench_train_step [--model cnn|mlp] [--batch B] [--size S] [--classes K]
 *          [--threads T] [--gemm-threads G] [--steps N] [--warmup W] [--rounds R]
 *          [--optimizer sgd|adamw] [--data PIPELINE]
 *   --threads: the pipeline's worker budget (sl_iter_options.threads); --gemm-threads (default:
 *   --threads) bounds OpenBLAS's threads in both variants. Without --data only the in-memory
 *   variant runs. PIPELINE must give elements with "image" float32 (C, S, S) and "label", e.g.
 *   records("DIR/train32-*.sluice") | global_shuffle(seed=1) | map(decode_jpeg, flip,
 *   normalize(imagenet), parallel=auto) | select("image", "label")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/model.h"
#include "sluice/nn.h"
#include "sluice/ops_registry.h"
#include "sluice/optim.h"
#include "sluice/pipeline_build.h"
#include "sluice/rng.h"
#include "sluice/train.h"

enum { MAX_ROUNDS = 15 };

static const char *prog = "bench_train_step";

typedef struct bench_cfg {
    const char *model, *optimizer, *data;
    int batch, size, classes, threads, gemm_threads, steps, warmup, rounds;
} bench_cfg;

static sl_optim_config optim_config(const bench_cfg *b, float *lr)
{
    const int sgd = !strcmp(b->optimizer, "sgd");
    *lr = sgd ? 0.05f : 1e-3f; /* sluice train's defaults */
    return sl_optim_defaults(sgd ? SL_OPTIM_SGD : SL_OPTIM_ADAMW);
}

/* The model as the loop's create_model makes it from the first batch. */
static sl_model_config model_config(const bench_cfg *b)
{
    return (sl_model_config){.name = b->model,
                             .in_c = 3,
                             .in_h = b->size,
                             .in_w = b->size,
                             .classes = b->classes,
                             .max_batch = b->batch,
                             .seed = 1,
                             .impl = SL_NN_FAST};
}

/* ---- in-memory ------------------------------------------------------------------------------ */

typedef struct inmem {
    sl_model *m;
    sl_optim *o;
    float *x; /* (batch, 3, size, size) */
    int32_t *y;
    float lr;
    int64_t step;
} inmem;

static void inmem_open(inmem *s, const bench_cfg *b)
{
    char err[256];
    const sl_model_config mc = model_config(b);
    if (sl_model_create(&s->m, &mc, err, sizeof err))
        bench_die(prog, "model", err);
    const sl_optim_config oc = optim_config(b, &s->lr);
    if (sl_optim_create(&s->o, &oc, sl_model_param_count(s->m), sl_model_decay_count(s->m)))
        bench_die(prog, "optimizer", "sl_optim_create failed");
    const size_t nx = (size_t)b->batch * 3 * (size_t)b->size * (size_t)b->size;
    s->x = sl_malloc_aligned(64, nx * sizeof(float));
    s->y = sl_malloc((size_t)b->batch * sizeof(int32_t));
    if (!s->x || !s->y)
        bench_die(prog, "alloc", "out of memory");
    sl_rng r;
    sl_rng_init(&r, 7, 0, 0);
    /* roughly what normalize(imagenet) gives: values in about [-2, 2] */
    for (size_t i = 0; i < nx; i++)
        s->x[i] = (float)(4.0 * sl_rng_uniform(&r) - 2.0);
    for (int i = 0; i < b->batch; i++)
        s->y[i] = (int32_t)(sl_rng_uniform(&r) * b->classes) % b->classes;
    s->step = 0;
}

static void inmem_close(inmem *s)
{
    sl_model_free(s->m);
    sl_optim_free(s->o);
    sl_free(s->x);
    sl_free(s->y);
}

/* One training step in the loop's order (trainer/src/train_loop.c, sl_trainer_run). */
static void inmem_step(inmem *s, int n)
{
    double loss = 0;
    int correct = 0;
    sl_model_zero_grad(s->m);
    if (sl_model_forward(s->m, s->x, s->y, n, 1, &loss, &correct) ||
        sl_model_backward(s->m, 1.0f) || sl_model_check_finite(s->m, s->step, loss))
        bench_die(prog, "step", sl_model_errmsg(s->m));
    sl_optim_step(s->o, sl_model_params(s->m), sl_model_grads(s->m), s->lr);
    s->step++;
}

/* Steps per second over b->steps steps after b->warmup. */
static double inmem_round(inmem *s, const bench_cfg *b)
{
    for (int i = 0; i < b->warmup; i++)
        inmem_step(s, b->batch);
    const uint64_t t0 = sl_clock_ns();
    for (int i = 0; i < b->steps; i++)
        inmem_step(s, b->batch);
    return b->steps / ((double)(sl_clock_ns() - t0) / 1e9);
}

/* ---- pipeline-fed --------------------------------------------------------------------------- */

typedef struct fed_clock {
    int warmup;
    uint64_t start_ns, end_ns;
} fed_clock;

/* Called by the loop after each step: the timed window is from the end of the last warmup step
 * to the end of the last step. */
static void on_step(void *user, int64_t step, double loss, int correct, int n)
{
    (void)loss, (void)correct, (void)n;
    fed_clock *c = user;
    const uint64_t now = sl_clock_ns();
    if (step == c->warmup - 1)
        c->start_ns = now;
    c->end_ns = now;
}

static double fed_round(const bench_cfg *b, const sl_registry *reg, double *wait_share)
{
    const size_t cap = strlen(b->data) + 96;
    char *text = sl_malloc(cap);
    if (!text)
        bench_die(prog, "alloc", "out of memory");
    /* what `sluice train --batch B` appends (tools/cmd_train.c) */
    snprintf(text, cap, "%s | batch(%d, drop_remainder=true) | prefetch(auto)", b->data, b->batch);
    sl_dataset *ds;
    char err[1024];
    if (sl_pipeline_build(&ds, text, reg, err, sizeof err))
        bench_die(prog, "pipeline", err);
    sl_free(text);

    sl_train_config tc = sl_train_defaults();
    tc.model = b->model;
    tc.classes = b->classes;
    tc.batch = b->batch;
    tc.steps = b->warmup + b->steps;
    tc.optim = optim_config(b, &tc.lr);
    tc.log_every = 1 << 30; /* no logdir: rows are not written anyway */
    tc.iter.threads = b->threads;
    tc.gemm_threads = b->gemm_threads;
    fed_clock clk = {.warmup = b->warmup};
    tc.on_step = on_step;
    tc.user = &clk;
    sl_trainer *t;
    if (sl_trainer_open(&t, &tc, ds, NULL, err, sizeof err))
        bench_die(prog, "trainer", err);
    sl_train_report rep;
    if (sl_trainer_run(t, &rep))
        bench_die(prog, "train", sl_trainer_errmsg(t));
    if (rep.steps != tc.steps)
        bench_die(prog, "train", "the pipeline ended before the last step (more data needed)");
    sl_trainer_close(t);
    sl_dataset_release(ds);
    *wait_share = rep.wait_share;
    return b->steps / ((double)(clk.end_ns - clk.start_ns) / 1e9);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void minmax(const double *v, int n, double *lo, double *hi)
{
    *lo = *hi = v[0];
    for (int i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

int main(int argc, char **argv)
{
    bench_cfg b = {.model = "cnn",
                   .optimizer = "sgd",
                   .batch = 32,
                   .size = 32,
                   .classes = 4,
                   .threads = 2,
                   .gemm_threads = -1,
                   .steps = 20,
                   .warmup = 5,
                   .rounds = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *num = !strcmp(a, "--batch")          ? &b.batch
                   : !strcmp(a, "--size")         ? &b.size
                   : !strcmp(a, "--classes")      ? &b.classes
                   : !strcmp(a, "--threads")      ? &b.threads
                   : !strcmp(a, "--gemm-threads") ? &b.gemm_threads
                   : !strcmp(a, "--steps")        ? &b.steps
                   : !strcmp(a, "--warmup")       ? &b.warmup
                   : !strcmp(a, "--rounds")       ? &b.rounds
                                                  : NULL;
        if (num && v) {
            *num = atoi(v), i++;
        } else if (!strcmp(a, "--model") && v) {
            b.model = v, i++;
        } else if (!strcmp(a, "--optimizer") && v) {
            b.optimizer = v, i++;
        } else if (!strcmp(a, "--data") && v) {
            b.data = v, i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--model cnn|mlp] [--batch B] [--size S] [--classes K] "
                    "[--threads T] [--gemm-threads G] [--steps N] [--warmup W] [--rounds R] "
                    "[--optimizer sgd|adamw] [--data PIPELINE]\n",
                    prog);
            return 2;
        }
    }
    if (b.gemm_threads < 0)
        b.gemm_threads = b.threads;
    if (b.rounds < 1 || b.rounds > MAX_ROUNDS || b.batch < 1 || b.size < 4 || b.steps < 1 ||
        b.warmup < 1 || b.classes < 2 || b.threads < 1 ||
        (strcmp(b.optimizer, "sgd") && strcmp(b.optimizer, "adamw")))
        bench_die(prog, "arguments",
                  "rounds 1..15, batch >= 1, size >= 4, steps >= 1, warmup >= 1, classes >= 2, "
                  "threads >= 1, optimizer sgd or adamw");
    if (b.gemm_threads > 0)
        sl_nn_set_gemm_threads(b.gemm_threads);

    printf("%s: reproduce with: build/release/bench/%s --model %s --batch %d --size %d "
           "--classes %d --threads %d --gemm-threads %d --steps %d --warmup %d --rounds %d "
           "--optimizer %s%s%s%s\n",
           prog, prog, b.model, b.batch, b.size, b.classes, b.threads, b.gemm_threads, b.steps,
           b.warmup, b.rounds, b.optimizer, b.data ? " --data '" : "", b.data ? b.data : "",
           b.data ? "'" : "");

    inmem s;
    inmem_open(&s, &b);
    printf("model %s: input 3x%dx%d, %d classes, %zu parameters, batch %d, %s (lr %g), GEMM %s "
           "with %d threads, pipeline threads %d\n",
           b.model, b.size, b.size, b.classes, sl_model_param_count(s.m), b.batch, b.optimizer,
           (double)s.lr, sl_nn_gemm_name(), b.gemm_threads, b.threads);
    sl_registry *reg = NULL;
    if (b.data && (sl_registry_create(&reg) || sl_ops_register(reg)))
        bench_die(prog, "registry", "out of memory");

    double in_v[MAX_ROUNDS], fed_v[MAX_ROUNDS], wait_v[MAX_ROUNDS];
    for (int r = 0; r < b.rounds; r++) {
        in_v[r] = inmem_round(&s, &b);
        printf("round %d: in-memory %.2f steps/s", r + 1, in_v[r]);
        if (b.data) {
            fed_v[r] = fed_round(&b, reg, &wait_v[r]);
            printf(", pipeline-fed %.2f steps/s (the loop's data wait %.1f%% of its run)", fed_v[r],
                   100 * wait_v[r]);
        }
        printf("\n");
        fflush(stdout);
    }
    double lo, hi;
    minmax(in_v, b.rounds, &lo, &hi);
    const double in_med = bench_median(in_v, b.rounds);
    printf("in-memory:    %.2f steps/s [%.2f-%.2f], %.0f images/s\n", in_med, lo, hi,
           in_med * b.batch);
    double fed_med = 0;
    if (b.data) {
        minmax(fed_v, b.rounds, &lo, &hi);
        fed_med = bench_median(fed_v, b.rounds);
        printf("pipeline-fed: %.2f steps/s [%.2f-%.2f], %.0f images/s\n", fed_med, lo, hi,
               fed_med * b.batch);
        printf("input overhead: %.1f%% (1 - fed / in-memory, medians)\n",
               100 * (1 - fed_med / in_med));
    }
    printf("RESULT model=%s params=%zu inmem=%.4f fed=%.4f\n", b.model, sl_model_param_count(s.m),
           in_med, fed_med);
    sl_registry_free(reg);
    inmem_close(&s);
    return 0;
}
