/*
 * The trainer's CPU layers against raw sgemm: for every layer of the cnn (and the mlp's linear
 * layers) at a training batch, forward + backward on the fast path, timed, against the same
 * GEMM calls the layer makes (same M, N, K, transposes and count) issued bare through
 * sl_nn_gemm. Both do the same floating-point work, so the ratio of times is the ratio of
 * GFLOP/s: what im2col, bias, col2im and the bias/BN reductions cost on top of the matrix
 * products. Layers without a matrix product (batch norm, ReLU, add, pooling) are listed with
 * their time and share of the step. Medians of --rounds interleaved rounds.
 *
 * usage: bench_trainer [--batch B] [--size S] [--width W] [--rounds R] [--gemm-threads T]
 *   --gemm-threads: OpenBLAS threads per GEMM (sl_nn_set_gemm_threads; 0 keeps OpenBLAS's
 *   default, one per core).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "model_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/model.h"
#include "sluice/nn.h"
#include "sluice/rng.h"

enum { MAX_ROUNDS = 15 };

static const char *prog = "bench_trainer";

static float *falloc(size_t n)
{
    float *p = sl_malloc_aligned(64, (n ? n : 1) * sizeof(float));
    if (!p)
        bench_die(prog, "alloc", "out of memory");
    sl_rng r;
    sl_rng_init(&r, n, 1, 0);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)sl_rng_uniform(&r) - 0.5f;
    return p;
}

typedef struct layer_bench {
    char name[48];
    const model_op *op;
    double flops; /* forward + backward, multiply-add = 2 */
    double layer_ns[MAX_ROUNDS], gemm_ns[MAX_ROUNDS];
    int has_gemm;
} layer_bench;

/* Buffers big enough for any layer of the model at this batch. */
typedef struct arena {
    float *x, *y, *dx, *dy, *w, *dw, *b, *db, *work, *s1, *s2;
} arena;

static double time_layer(const sl_model *m, const model_op *op, int n, arena *a)
{
    const model_act *ai = &m->acts[op->in], *ao = &m->acts[op->out];
    const int need_dx = op->in != 0;
    const uint64_t t0 = sl_clock_ns();
    switch (op->kind) {
    case OP_CONV: {
        const sl_nn_conv_shape s = {.n = n,
                                    .c = ai->c,
                                    .h = ai->h,
                                    .w = ai->w,
                                    .k = ao->c,
                                    .ksize = op->ksize,
                                    .stride = op->stride};
        sl_nn_conv_fwd(SL_NN_FAST, &s, a->x, a->w, NULL, a->y, a->work);
        sl_nn_conv_bwd(SL_NN_FAST, &s, a->x, a->w, a->dy, need_dx ? a->dx : NULL, a->dw, NULL,
                       a->work);
        break;
    }
    case OP_LINEAR: {
        const int in = ai->c * ai->h * ai->w;
        sl_nn_linear_fwd(SL_NN_FAST, a->x, a->w, a->b, a->y, n, in, ao->c);
        sl_nn_linear_bwd(SL_NN_FAST, a->x, a->w, a->dy, need_dx ? a->dx : NULL, a->dw, a->db, n, in,
                         ao->c);
        break;
    }
    case OP_BN:
        sl_nn_bn_fwd_train(a->x, a->y, n, ai->c, ai->h * ai->w, a->w, a->b, a->s1, a->s2, 0.1f,
                           1e-5f, a->s1 + ai->c, a->s2 + ai->c);
        sl_nn_bn_bwd(a->x, a->dy, a->dx, n, ai->c, ai->h * ai->w, a->w, a->s1 + ai->c,
                     a->s2 + ai->c, a->dw, a->db);
        break;
    case OP_RELU: {
        const size_t cnt = (size_t)n * ai->c * ai->h * ai->w;
        sl_nn_relu_fwd(a->x, a->y, cnt);
        sl_nn_relu_bwd(a->y, a->dy, a->dx, cnt);
        break;
    }
    case OP_MAXPOOL:
        sl_nn_maxpool2_fwd(a->x, a->y, n, ai->c, ai->h, ai->w);
        sl_nn_maxpool2_bwd(a->x, a->dy, a->dx, n, ai->c, ai->h, ai->w);
        break;
    case OP_ADD: {
        const size_t cnt = (size_t)n * ai->c * ai->h * ai->w;
        sl_nn_add_fwd(a->x, a->dx, a->y, cnt);
        memcpy(a->dx, a->dy, cnt * sizeof(float));
        break;
    }
    case OP_GAP:
        sl_nn_gap_fwd(a->x, a->y, n, ai->c, ai->h, ai->w);
        sl_nn_gap_bwd(a->dy, a->dx, n, ai->c, ai->h, ai->w);
        break;
    }
    return (double)(sl_clock_ns() - t0);
}

/* The GEMMs the fast path issues for this layer, bare. */
static double time_gemms(const sl_model *m, const model_op *op, int n, arena *a)
{
    const model_act *ai = &m->acts[op->in], *ao = &m->acts[op->out];
    const int need_dx = op->in != 0;
    const uint64_t t0 = sl_clock_ns();
    if (op->kind == OP_CONV) {
        const int rows = ai->c * op->ksize * op->ksize, plane = ao->h * ao->w, k = ao->c;
        for (int i = 0; i < n; i++) {
            sl_nn_gemm(SL_NN_FAST, 0, 0, k, plane, rows, 1.0f, a->w, rows, a->work, plane, 0.0f,
                       a->y + (size_t)i * k * plane, plane);
            sl_nn_gemm(SL_NN_FAST, 0, 1, k, rows, plane, 1.0f, a->dy + (size_t)i * k * plane, plane,
                       a->work, plane, 1.0f, a->dw, rows);
            if (need_dx)
                sl_nn_gemm(SL_NN_FAST, 1, 0, rows, plane, k, 1.0f, a->w, rows,
                           a->dy + (size_t)i * k * plane, plane, 0.0f, a->work, plane);
        }
    } else if (op->kind == OP_LINEAR) {
        const int in = ai->c * ai->h * ai->w, out = ao->c;
        sl_nn_gemm(SL_NN_FAST, 0, 1, n, out, in, 1.0f, a->x, in, a->w, in, 0.0f, a->y, out);
        sl_nn_gemm(SL_NN_FAST, 1, 0, out, in, n, 1.0f, a->dy, out, a->x, in, 1.0f, a->dw, in);
        if (need_dx)
            sl_nn_gemm(SL_NN_FAST, 0, 0, n, in, out, 1.0f, a->dy, out, a->w, in, 0.0f, a->dx, in);
    }
    return (double)(sl_clock_ns() - t0);
}

static void run_model(const char *name, int batch, int size, int width, int rounds)
{
    sl_model_config cfg = {.name = name,
                           .in_c = 3,
                           .in_h = size,
                           .in_w = size,
                           .classes = 10,
                           .max_batch = batch,
                           .seed = 1,
                           .impl = SL_NN_FAST,
                           .width = width};
    sl_model *m;
    char err[256];
    if (sl_model_create(&m, &cfg, err, sizeof err))
        bench_die(prog, "model", err);

    size_t act_max = 0, w_max = 0, work_max = m->work_floats;
    for (int i = 0; i < m->nacts; i++) {
        const size_t s = (size_t)batch * m->acts[i].c * m->acts[i].h * m->acts[i].w;
        act_max = s > act_max ? s : act_max;
    }
    for (size_t t = 0; t < m->ntensors; t++)
        w_max = m->tensors[t].count > w_max ? m->tensors[t].count : w_max;
    arena a = {falloc(act_max),  falloc(act_max), falloc(act_max), falloc(act_max),
               falloc(w_max),    falloc(w_max),   falloc(w_max),   falloc(w_max),
               falloc(work_max), falloc(4096),    falloc(4096)};
    for (int i = 0; i < 2048; i++)
        a.s2[i] = 1.0f; /* running variances */

    layer_bench lb[MODEL_MAX_OPS];
    for (int o = 0; o < m->nops; o++) {
        const model_op *op = &m->ops[o];
        layer_bench *L = &lb[o];
        memset(L, 0, sizeof *L);
        L->op = op;
        static const char *kinds[] = {"conv", "bn", "relu", "maxpool", "add", "gap", "linear"};
        const model_act *ai = &m->acts[op->in], *ao = &m->acts[op->out];
        if (op->kind == OP_CONV)
            snprintf(L->name, sizeof L->name, "conv%dx%d/%d %dx%dx%d>%d", op->ksize, op->ksize,
                     op->stride, ai->c, ai->h, ai->w, ao->c);
        else if (op->kind == OP_LINEAR)
            snprintf(L->name, sizeof L->name, "linear %d>%d", ai->c * ai->h * ai->w, ao->c);
        else
            snprintf(L->name, sizeof L->name, "%s %dx%dx%d", kinds[op->kind], ai->c, ai->h, ai->w);
        double macs = 0;
        if (op->kind == OP_CONV)
            macs = (double)ao->c * ai->c * op->ksize * op->ksize * ao->h * ao->w;
        else if (op->kind == OP_LINEAR)
            macs = (double)ai->c * ai->h * ai->w * ao->c;
        L->has_gemm = macs > 0;
        L->flops = 2.0 * macs * batch * (op->in != 0 ? 3 : 2);
    }
    /* warm-up: OpenBLAS threads, page faults */
    for (int o = 0; o < m->nops; o++) {
        time_layer(m, &m->ops[o], batch, &a);
        time_gemms(m, &m->ops[o], batch, &a);
    }
    double step_ns[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        step_ns[r] = 0;
        for (int o = 0; o < m->nops; o++) {
            lb[o].layer_ns[r] = time_layer(m, &m->ops[o], batch, &a);
            step_ns[r] += lb[o].layer_ns[r];
            if (lb[o].has_gemm)
                lb[o].gemm_ns[r] = time_gemms(m, &m->ops[o], batch, &a);
        }
    }
    const double step = bench_median(step_ns, rounds);
    printf("\n%s, input 3x%dx%d, batch %d: layers forward+backward, fast path (%s)\n", name, size,
           size, batch, sl_nn_gemm_name());
    (void)prog;
    printf("%-30s %9s %8s %10s %10s %8s\n", "layer", "ms", "share", "GFLOP/s", "sgemm", "ratio");
    double gemm_layers_ns = 0, gemm_bare_ns = 0, flops_total = 0;
    for (int o = 0; o < m->nops; o++) {
        layer_bench *L = &lb[o];
        const double t = bench_median(L->layer_ns, rounds);
        if (L->has_gemm) {
            const double g = bench_median(L->gemm_ns, rounds);
            gemm_layers_ns += t;
            gemm_bare_ns += g;
            flops_total += L->flops;
            printf("%-30s %9.3f %7.1f%% %10.2f %10.2f %7.2fx\n", L->name, t / 1e6, 100 * t / step,
                   L->flops / t, L->flops / g, g / t);
        } else {
            printf("%-30s %9.3f %7.1f%% %10s %10s %8s\n", L->name, t / 1e6, 100 * t / step, "-",
                   "-", "-");
        }
    }
    printf("%-30s %9.3f %7.1f%% %10.2f %10.2f %7.2fx\n", "all conv+linear layers",
           gemm_layers_ns / 1e6, 100 * gemm_layers_ns / step, flops_total / gemm_layers_ns,
           flops_total / gemm_bare_ns, gemm_bare_ns / gemm_layers_ns);
    printf("%-30s %9.3f %7.1f%%   (%.0f images/s through the layers alone)\n", "step (sum)",
           step / 1e6, 100.0, batch / (step / 1e9));

    sl_free(a.x), sl_free(a.y), sl_free(a.dx), sl_free(a.dy), sl_free(a.w), sl_free(a.dw);
    sl_free(a.b), sl_free(a.db), sl_free(a.work), sl_free(a.s1), sl_free(a.s2);
    sl_model_free(m);
}

int main(int argc, char **argv)
{
    int batch = 64, size = 32, width = 16, rounds = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--batch") && v)
            batch = atoi(v), i++;
        else if (!strcmp(argv[i], "--size") && v)
            size = atoi(v), i++;
        else if (!strcmp(argv[i], "--width") && v)
            width = atoi(v), i++;
        else if (!strcmp(argv[i], "--rounds") && v)
            rounds = atoi(v), i++;
        else if (!strcmp(argv[i], "--gemm-threads") && v)
            threads = atoi(v), i++;
        else {
            fprintf(stderr,
                    "usage: %s [--batch B] [--size S] [--width W] [--rounds R] "
                    "[--gemm-threads T]\n",
                    prog);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || batch < 1 || size < 4 || width < 1)
        bench_die(prog, "arguments", "rounds 1..15, batch >= 1, size >= 4, width >= 1");
    if (threads > 0)
        sl_nn_set_gemm_threads(threads);
    printf("bench_trainer: reproduce with: build/release/bench/bench_trainer --batch %d --size %d "
           "--width %d --rounds %d --gemm-threads %d\n",
           batch, size, width, rounds, threads);
    printf("ratio = bare sgemm time / layer time for the same GEMM calls (1.00x: the layer costs "
           "nothing beyond its matrix products); medians of %d rounds\n",
           rounds);
    run_model("cnn", batch, size, width, rounds);
    run_model("mlp", batch, size, width, rounds);
    return 0;
}
