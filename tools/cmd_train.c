/*
 * `sluice train`: trains an mlp or cnn on a pipeline's batches (sluice/train.h) and prints the
 * end-of-run report: accuracy, images/s, step time split into data wait and compute, the
 * input-bound verdict and the pipeline stage that limits it. `--device` picks where the model
 * lives: the CPU model, or a backend of sluice/cuda_loop.h (the CUDA device when this build has
 * it; the hidden `cuda-emu`, its CPU emulator, is how tests run the device wiring without a GPU).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sluice/alloc.h"
#include "sluice/cuda_loop.h"
#include "sluice/train.h"

static const char usage_text[] =
    "usage: sluice train --data PIPELINE [--val PIPELINE] --model cnn|mlp\n"
    "                    [--device cpu|cuda [--precision fp32|bf16|fp16]]\n"
    "                    --steps N | --epochs E [--batch B] [--lr X] [--optimizer sgd|adamw]\n"
    "                    [--checkpoint DIR [--resume]] [--logdir DIR] [options] [engine flags]\n"
    "\n"
    "Trains a model on the batches of PIPELINE (elements holding float32 (N,C,H,W) or uint8\n"
    "(N,H,W,C) images and int64 labels), evaluates it on the --val pipeline, writes atomic\n"
    "checkpoints, train.csv and TensorBoard event files, and reports whether the job waited\n"
    "for its input. With --batch B, ' | batch(B)' is appended to both pipelines (the training one\n"
    "drops its last partial batch) and ' | prefetch(auto)' to the training one.\n"
    "\n"
    "      --data PIPELINE    the training pipeline (repeated for as many epochs as needed)\n"
    "      --val PIPELINE     held-out pipeline for evaluation (loss, accuracy)\n"
    "      --model M          cnn (default) or mlp\n"
    "      --device D         cpu (default) or cuda (the GPU: uint8 images are copied through\n"
    "                         pinned double buffers and normalized on the device)\n"
    "      --precision P      cuda only: fp32 (default), bf16, or fp16 (dynamic loss scaling)\n"
    "      --steps N          optimizer steps in all (a resumed run continues to N)\n"
    "      --epochs E         passes over the training pipeline (its length must be known)\n"
    "      --batch B          batch size to append to the pipelines\n"
    "      --classes K        number of classes (default 10; labels must be in [0, K))\n"
    "      --lr X             base learning rate (default 0.001 adamw, 0.05 sgd)\n"
    "      --min-lr X         final learning rate of the cosine decay (default 0)\n"
    "      --warmup N         linear warmup steps (default 0)\n"
    "      --cosine           decay the learning rate along a half cosine to the last step\n"
    "      --optimizer O      adamw (default) or sgd (momentum 0.9)\n"
    "      --weight-decay X   weight decay (default: adamw 0.01, sgd 5e-4)\n"
    "      --clip X           clip the global gradient norm to X\n"
    "      --eval-every N     evaluate every N steps (default: at the end only)\n"
    "      --patience P       stop after P evaluations without a lower validation loss\n"
    "      --checkpoint DIR   write DIR/checkpoint.sltc (atomically) at the end and every\n"
    "                         --checkpoint-every N steps\n"
    "      --resume           continue from DIR's checkpoint when there is one\n"
    "      --logdir DIR       train.csv and events.out.tfevents.* (TensorBoard)\n"
    "      --log-every N      steps per CSV row and scalar summary (default 10)\n"
    "      --trace FILE       write a Chrome trace (Perfetto, chrome://tracing) of the\n"
    "                         training pipeline's run\n"
    "      --x NAME, --y NAME the input and label tensors (default image, label)\n"
    "      --width W          cnn stem channels (default 16); --hidden H: mlp width (256)\n"
    "      --pool             cnn: max-pool after the stem (for 64x64 inputs and larger)\n"
    "      --avg-pool         cnn: global average pool head instead of the global max\n"
    "      --gemm-threads T   threads for the matrix products (default 1: the pipeline has the\n"
    "                         other cores)\n";

static int parse_pos_double(const char *s, double *out)
{
    char *end = NULL;
    const double v = strtod(s, &end);
    if (!end || *end || end == s || !(v >= 0))
        return -1;
    *out = v;
    return 0;
}

/* A decimal integer in [min, INT32_MAX]; 0 or -1. */
static int parse_int(const char *s, int min, uint64_t *out)
{
    uint64_t v;
    if (cli_parse_u64(s, &v) || v > INT32_MAX || (int64_t)v < (int64_t)min)
        return -1;
    *out = v;
    return 0;
}

/* Builds "TEXT[ | batch(B)...]" into a fresh string; NULL on out of memory. */
static char *with_batch(const char *text, uint64_t batch, int train)
{
    if (!batch)
        return sl_strdup(text);
    const size_t cap = strlen(text) + 96;
    char *s = sl_malloc(cap);
    if (s)
        snprintf(s, cap, "%s | batch(%" PRIu64 "%s)%s", text, batch,
                 train ? ", drop_remainder=true" : "", train ? " | prefetch(auto)" : "");
    return s;
}

static int build(const char *text, sl_dataset **ds)
{
    sl_registry *reg;
    if (cli_registry(&reg))
        return cli_fail("train", "out of memory");
    char err[1024];
    const int rc = sl_pipeline_build(ds, text, reg, err, sizeof err);
    sl_registry_free(reg);
    if (rc)
        return cli_fail("train", "%s", err);
    return CLI_OK;
}

int cmd_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        fputs(cli_engine_flags_help, stdout);
        fputs("  -h, --help             this text\n", stdout);
        cli_registry_print(stdout);
        return CLI_OK;
    }
    cli_engine_flags f = {0};
    sl_train_config cfg = sl_train_defaults();
    const char *data = NULL, *val = NULL, *device = "cpu", *optimizer = "adamw";
    const char *precision = NULL;
    uint64_t u = 0, batch = 0, gemm_threads = 1;
    double lr = -1, wd = -1, d = 0;
    int cosine = 0;
    for (int i = 1; i < argc; i++) {
        const int e = cli_engine_flag("train", argc, argv, &i, &f);
        if (e < 0)
            return CLI_USAGE;
        if (e)
            continue;
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                \
    do {                                                            \
        if (!v)                                                     \
            return cli_usage_error("train", "%s needs a value", a); \
        i++;                                                        \
    } while (0)
#define NEED_U64(dst, min)                                                               \
    do {                                                                                 \
        NEED_VALUE();                                                                    \
        if (parse_int(v, (min), &u))                                                     \
            return cli_usage_error("train", "%s takes an integer >= %d", a, (int)(min)); \
        dst = u;                                                                         \
    } while (0)
#define NEED_DOUBLE(dst)                                                          \
    do {                                                                          \
        NEED_VALUE();                                                             \
        if (parse_pos_double(v, &d))                                              \
            return cli_usage_error("train", "%s takes a non-negative number", a); \
        dst = d;                                                                  \
    } while (0)
        if (!strcmp(a, "--data")) {
            NEED_VALUE();
            data = v;
        } else if (!strcmp(a, "--val")) {
            NEED_VALUE();
            val = v;
        } else if (!strcmp(a, "--model")) {
            NEED_VALUE();
            if (strcmp(v, "cnn") && strcmp(v, "mlp"))
                return cli_usage_error("train", "--model takes cnn or mlp");
            cfg.model = v;
        } else if (!strcmp(a, "--device")) {
            NEED_VALUE();
            device = v;
        } else if (!strcmp(a, "--precision")) {
            NEED_VALUE();
            precision = v;
        } else if (!strcmp(a, "--cpu-reference")) {
            /* hidden, for tests: the CPU model's reference loops, which --device cuda-emu
             * matches (the fast path's OpenBLAS sums in another order) */
            cfg.cpu_reference = 1;
        } else if (!strcmp(a, "--optimizer")) {
            NEED_VALUE();
            if (strcmp(v, "sgd") && strcmp(v, "adamw"))
                return cli_usage_error("train", "--optimizer takes sgd or adamw");
            optimizer = v;
        } else if (!strcmp(a, "--steps")) {
            NEED_U64(cfg.steps, 1);
        } else if (!strcmp(a, "--epochs")) {
            NEED_U64(cfg.epochs, 1);
        } else if (!strcmp(a, "--batch")) {
            NEED_U64(batch, 1);
        } else if (!strcmp(a, "--classes")) {
            NEED_U64(cfg.classes, 2);
        } else if (!strcmp(a, "--warmup")) {
            NEED_U64(cfg.warmup_steps, 0);
        } else if (!strcmp(a, "--eval-every")) {
            NEED_U64(cfg.eval_every, 1);
        } else if (!strcmp(a, "--patience")) {
            NEED_U64(cfg.patience, 1);
        } else if (!strcmp(a, "--checkpoint-every")) {
            NEED_U64(cfg.checkpoint_every, 1);
        } else if (!strcmp(a, "--log-every")) {
            NEED_U64(cfg.log_every, 1);
        } else if (!strcmp(a, "--width")) {
            NEED_U64(cfg.width, 1);
        } else if (!strcmp(a, "--hidden")) {
            NEED_U64(cfg.hidden, 1);
        } else if (!strcmp(a, "--gemm-threads")) {
            NEED_U64(gemm_threads, 1);
        } else if (!strcmp(a, "--lr")) {
            NEED_DOUBLE(lr);
        } else if (!strcmp(a, "--min-lr")) {
            NEED_DOUBLE(cfg.min_lr);
        } else if (!strcmp(a, "--weight-decay")) {
            NEED_DOUBLE(wd);
        } else if (!strcmp(a, "--clip")) {
            NEED_DOUBLE(cfg.clip_norm);
        } else if (!strcmp(a, "--checkpoint")) {
            NEED_VALUE();
            cfg.checkpoint_dir = v;
        } else if (!strcmp(a, "--logdir")) {
            NEED_VALUE();
            cfg.logdir = v;
        } else if (!strcmp(a, "--trace")) {
            NEED_VALUE();
            cfg.trace_path = v;
        } else if (!strcmp(a, "--x")) {
            NEED_VALUE();
            cfg.x_name = v;
        } else if (!strcmp(a, "--y")) {
            NEED_VALUE();
            cfg.y_name = v;
        } else if (!strcmp(a, "--resume")) {
            cfg.resume = 1;
        } else if (!strcmp(a, "--cosine")) {
            cosine = 1;
        } else if (!strcmp(a, "--pool")) {
            cfg.pool = 1;
        } else if (!strcmp(a, "--avg-pool")) {
            cfg.avg_pool = 1;
        } else {
            return cli_usage_error("train", "unknown argument '%s'", a);
        }
#undef NEED_VALUE
#undef NEED_U64
#undef NEED_DOUBLE
    }
    const int cuda = !strcmp(device, "cuda"), emu = !strcmp(device, "cuda-emu");
    if (!cuda && !emu && strcmp(device, "cpu"))
        return cli_usage_error("train", "--device takes cpu or cuda");
    sl_cuda_precision prec = SL_CUDA_FP32;
    if (precision && !cuda && !emu)
        return cli_usage_error("train", "--precision is for --device cuda (the CPU model trains "
                                        "in fp32)");
    if (precision && sl_cuda_precision_parse(precision, &prec) < 0)
        return cli_usage_error("train", "--precision takes fp32, bf16 or fp16");
    if (cfg.cpu_reference && (cuda || emu))
        return cli_usage_error("train", "--cpu-reference is for --device cpu");
    if (!data)
        return cli_usage_error("train", "expected --data PIPELINE");
    if (!cfg.steps && !cfg.epochs)
        return cli_usage_error("train", "expected --steps N or --epochs E");
    if (cfg.steps && cfg.epochs)
        return cli_usage_error("train", "give --steps or --epochs, not both");
    if (cfg.resume && !cfg.checkpoint_dir)
        return cli_usage_error("train", "--resume needs --checkpoint DIR");
    const int sgd = !strcmp(optimizer, "sgd");
    cfg.optim = sl_optim_defaults(sgd ? SL_OPTIM_SGD : SL_OPTIM_ADAMW);
    if (wd >= 0)
        cfg.optim.weight_decay = (float)wd;
    cfg.lr = lr > 0 ? (float)lr : sgd ? 0.05f : 1e-3f;
    cfg.seed = f.seed;
    cfg.iter.threads = f.threads;
    cfg.iter.memory_bytes = f.memory;
    cfg.iter.on_error = f.skip_errors ? SL_ON_ERROR_SKIP : SL_ON_ERROR_FAIL;
    cfg.gemm_threads = (int)gemm_threads;

    int ret = CLI_OK;
    sl_dataset *tds = NULL, *vds = NULL;
    sl_trainer *t = NULL;
    sl_train_backend be = {0};
    if (cuda || emu) {
        char berr[512] = "";
        int brc = SL_ERR_UNSUPPORTED;
#ifdef SL_HAVE_CUDA
        brc = emu ? sl_cuda_emu_train_backend_open(&be, prec, berr, sizeof berr)
                  : sl_cuda_train_backend_open(&be, prec, berr, sizeof berr);
#else
        if (emu)
            brc = sl_cuda_emu_train_backend_open(&be, prec, berr, sizeof berr);
        else
            snprintf(berr, sizeof berr,
                     "this sluice was built without the CUDA backend (CMake "
                     "found no nvcc, or -DSL_CUDA=OFF)");
#endif
        if (brc < 0)
            return cli_fail("train", "--device %s: %s", device, berr[0] ? berr : sl_strerror(brc));
        cfg.backend = &be;
    }
    char *ttext = with_batch(data, batch, 1), *vtext = val ? with_batch(val, batch, 0) : NULL;
    if (!ttext || (val && !vtext)) {
        ret = cli_fail("train", "out of memory");
        goto out;
    }
    if ((ret = build(ttext, &tds)) != CLI_OK || (vtext && (ret = build(vtext, &vds)) != CLI_OK))
        goto out;
    if (cosine) {
        const int64_t card = sl_dataset_cardinality(tds);
        cfg.decay_steps = cfg.steps ? cfg.steps : card > 0 ? cfg.epochs * card : 0;
    }
    char err[512] = "";
    int rc = sl_trainer_open(&t, &cfg, tds, vds, err, sizeof err);
    if (rc) {
        ret = rc == SL_ERR_INVAL ? cli_usage_error("train", "%s", err)
                                 : cli_fail("train", "%s", sl_strerror(rc));
        goto out;
    }
    sl_train_report r;
    rc = sl_trainer_run(t, &r);
    if (rc) {
        ret = cli_fail("train", "%s", sl_trainer_errmsg(t));
        goto out;
    }
    printf("trained:      %s on %s", cfg.model, r.device);
    if (cuda || emu)
        printf(" (%s)", precision ? precision : "fp32");
    printf(", %" PRId64 " steps", r.steps);
    if (r.start_step)
        printf(" (resumed at step %" PRId64 ")", r.start_step);
    if (r.epochs > 0)
        printf(", %.2f epochs", r.epochs);
    printf("%s\n", r.stopped_early ? ", stopped early (validation loss)" : "");
    printf("train:        loss %.4f, accuracy %.2f%% (the steps since the last log row)\n",
           r.train_loss, 100 * r.train_accuracy);
    if (r.evaluated)
        printf("validation:   loss %.4f, accuracy %.2f%%\n", r.val_loss, 100 * r.val_accuracy);
    printf("throughput:   %.1f images/s (%" PRId64 " images in %.2f s)\n", r.images_per_s,
           r.examples, r.seconds);
    const double steps_run = (double)(r.steps - r.start_step);
    if (steps_run > 0)
        printf("step time:    %.2f ms = data wait %.2f ms (%.1f%%) + compute %.2f ms\n",
               1e3 * r.seconds / steps_run, 1e3 * r.data_wait_s / steps_run, 100 * r.wait_share,
               1e3 * r.compute_s / steps_run);
    printf("input:        %s\n", r.verdict);
    /* The pipeline always has a slowest stage; say whether it matters to this run. */
    printf("bottleneck:   %s%s\n", r.bottleneck[0] ? r.bottleneck : "(not measured)",
           r.bottleneck[0] && strncmp(r.verdict, "not", 3) == 0
               ? " (the input's slowest stage; it keeps up, training does not wait for it)"
               : "");
    if (cfg.checkpoint_dir)
        printf("checkpoint:   %s/checkpoint.sltc\n", cfg.checkpoint_dir);
    if (cfg.logdir)
        printf("logs:         %s/train.csv, %s\n", cfg.logdir, r.events_path);
    if (cfg.trace_path)
        printf("trace:        %s\n", cfg.trace_path);
out:
    sl_trainer_close(t);
    if (be.close)
        be.close(be.user);
    sl_dataset_release(tds);
    sl_dataset_release(vds);
    sl_free(ttext);
    sl_free(vtext);
    return ret;
}
