/*
 * The training loop (sluice/train.h): exact resume, atomic checkpoints, CSV and TensorBoard
 * logs (read back by an independent Python reader), the input-bound verdict.
 *
 * Data: in-memory batches of 8 examples (3 x 8 x 8 float32 images, the class's channel
 * brighter, plus noise; int64 labels in [0, 3)), globally shuffled each epoch, so a resumed
 * run must restore the shuffle's position as well as the model and optimizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "sluice/rng.h"
#include "sluice/train.h"
#include "testutil.h"

enum { NB = 6, B = 8, C = 3, H = 8, W = 8, CLASSES = 3, MAX_STEPS = 64 };

/* Six batches, then a global shuffle of their order each epoch. */
static sl_dataset *make_data_shifted(uint64_t seed, int shift)
{
    sl_element el[NB];
    sl_rng rng;
    sl_rng_init(&rng, seed, 0, 0);
    for (int b = 0; b < NB; b++) {
        memset(&el[b], 0, sizeof el[b]);
        sl_tensor x, y;
        const int64_t xs[4] = {B, C, H, W}, ys[1] = {B};
        assert_int_equal(sl_tensor_alloc(&x, SL_DTYPE_F32, 4, xs), 0);
        assert_int_equal(sl_tensor_alloc(&y, SL_DTYPE_I64, 1, ys), 0);
        float *px = x.data;
        int64_t *py = y.data;
        for (int i = 0; i < B; i++) {
            const int k = (int)sl_rng_below(&rng, CLASSES);
            py[i] = (k + shift) % CLASSES;
            for (int c = 0; c < C; c++)
                for (int p = 0; p < H * W; p++)
                    px[((i * C) + c) * H * W + p] =
                        (c == k ? 0.8f : 0.2f) + 0.3f * (float)(sl_rng_uniform(&rng) - 0.5);
        }
        assert_int_equal(sl_element_push(&el[b], "image", &x), 0);
        assert_int_equal(sl_element_push(&el[b], "label", &y), 0);
    }
    sl_dataset *mem, *shuf;
    assert_int_equal(sl_dataset_from_elements(&mem, el, NB), 0);
    for (int b = 0; b < NB; b++)
        sl_element_release(&el[b]);
    assert_int_equal(sl_dataset_global_shuffle(&shuf, mem, 5, 1), 0);
    sl_dataset_release(mem);
    return shuf;
}

static sl_dataset *make_data(uint64_t seed)
{
    return make_data_shifted(seed, 0);
}

typedef struct losses {
    int n;
    int64_t steps[MAX_STEPS];
    double loss[MAX_STEPS];
    int crash_after; /* write_hook: stop a checkpoint write once this many bytes are written */
    int hook_calls;
    int crash_at; /* nth_write_crash: stop the crash_at-th checkpoint write (0: none) */
} losses;

static void record_step(void *user, int64_t step, double loss, int correct, int n)
{
    losses *l = user;
    (void)correct, (void)n;
    if (l->n < MAX_STEPS) {
        l->steps[l->n] = step;
        l->loss[l->n++] = loss;
    }
}

static int crash_hook(void *user, size_t written)
{
    losses *l = user;
    l->hook_calls++;
    return l->crash_after >= 0 && written >= (size_t)l->crash_after;
}

static sl_train_config base_config(losses *l)
{
    sl_train_config c = sl_train_defaults();
    c.model = "cnn";
    c.classes = CLASSES;
    c.width = 4;
    c.blocks = 2;
    c.lr = 5e-3f;
    c.iter.threads = 2;
    c.seed = 11;
    c.on_step = record_step;
    c.user = l;
    c.gemm_threads = 1;
    return c;
}

/* Runs a trainer over fresh datasets; returns the run's code. */
static int run(const sl_train_config *c, int with_val, sl_train_report *rep, char *err, size_t cap)
{
    sl_dataset *train = make_data(3), *val = with_val ? make_data(4) : NULL;
    sl_trainer *t;
    char cerr[256] = "";
    assert_int_equal(sl_trainer_open(&t, c, train, val, cerr, sizeof cerr), 0);
    sl_dataset_release(train);
    sl_dataset_release(val);
    const int rc = sl_trainer_run(t, rep);
    if (err)
        snprintf(err, cap, "%s", sl_trainer_errmsg(t));
    sl_trainer_close(t);
    return rc;
}

static void test_resume_continues_the_loss_sequence(void **state)
{
    (void)state;
    char dir[256];
    sl_test_fresh_subdir(dir, sizeof dir, "resume");
    losses whole = {0}, first = {0}, second = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&whole);
    c.steps = 16; /* crosses two epoch boundaries (6 batches each) */
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    assert_int_equal(whole.n, 16);

    c = base_config(&first);
    c.steps = 8;
    c.checkpoint_dir = dir;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    assert_int_equal(first.n, 8);

    c = base_config(&second);
    c.steps = 16;
    c.checkpoint_dir = dir;
    c.resume = 1;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    assert_int_equal(rep.start_step, 8);
    assert_int_equal(rep.steps, 16);
    assert_int_equal(second.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(first.steps[i], i);
        assert_int_equal(second.steps[i], 8 + i);
        /* bit for bit: same model, optimizer moments, BN statistics and batch order */
        assert_memory_equal(&first.loss[i], &whole.loss[i], sizeof(double));
        assert_memory_equal(&second.loss[i], &whole.loss[8 + i], sizeof(double));
    }
    /* and training moved: the sequence is not constant */
    assert_true(whole.loss[15] < whole.loss[0]);
}

static void test_crash_mid_checkpoint_keeps_the_previous_one(void **state)
{
    (void)state;
    char dir[256], path[300], tmp[300];
    sl_test_fresh_subdir(dir, sizeof dir, "crash");
    snprintf(path, sizeof path, "%s/checkpoint.sltc", dir);
    snprintf(tmp, sizeof tmp, "%s/.checkpoint.sltc.tmp", dir);
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 4;
    c.checkpoint_dir = dir;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    uint8_t *before, *after;
    size_t nbefore, nafter;
    assert_int_equal(sl_test_read_file(path, &before, &nbefore), 0);
    assert_true(nbefore > 3 * 4096); /* so the write below stops in its middle */

    /* the next checkpoint dies after its first 8 KiB */
    losses crash = {.crash_after = 8192};
    c = base_config(&crash);
    c.steps = 8;
    c.checkpoint_dir = dir;
    c.resume = 1;
    c.write_hook = crash_hook;
    char err[512];
    assert_int_equal(run(&c, 0, &rep, err, sizeof err), SL_ERR_CANCELLED);
    assert_non_null(strstr(err, "stopped by the hook at byte 8192"));
    assert_true(crash.hook_calls >= 2);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0); /* the half-written temporary, as a crash leaves it */
    assert_int_equal(st.st_size, 8192);
    assert_int_equal(sl_test_read_file(path, &after, &nafter), 0);
    assert_int_equal(nafter, nbefore);
    assert_memory_equal(after, before, nbefore);
    free(after);

    /* resuming uses the intact checkpoint: step 4 */
    losses again = {0};
    c = base_config(&again);
    c.steps = 8;
    c.checkpoint_dir = dir;
    c.resume = 1;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    assert_int_equal(rep.start_step, 4);
    assert_int_equal(again.steps[0], 4);
    free(before);
}

static void test_corrupt_checkpoint_is_refused(void **state)
{
    (void)state;
    char dir[256], path[300];
    sl_test_fresh_subdir(dir, sizeof dir, "corrupt");
    snprintf(path, sizeof path, "%s/checkpoint.sltc", dir);
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 2;
    c.checkpoint_dir = dir;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    uint8_t *bytes;
    size_t n;
    assert_int_equal(sl_test_read_file(path, &bytes, &n), 0);
    bytes[n / 2] ^= 0x10;
    assert_int_equal(sl_test_write_file(path, bytes, n), 0);
    free(bytes);
    c.steps = 4;
    c.resume = 1;
    char err[512];
    assert_int_equal(run(&c, 0, &rep, err, sizeof err), SL_ERR_CORRUPT);
    assert_non_null(strstr(err, "checkpoint.sltc: crc32c"));
}

static void test_event_file_parses_with_an_independent_reader(void **state)
{
    (void)state;
    char dir[256];
    sl_test_fresh_subdir(dir, sizeof dir, "events");
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 6;
    c.log_every = 2;
    c.eval_every = 3;
    c.logdir = dir;
    assert_int_equal(run(&c, 1, &rep, NULL, 0), 0);
    assert_non_null(strstr(rep.events_path, "/events.out.tfevents."));
    char out[300], cmd[1200];
    snprintf(out, sizeof out, "%s/read.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/tools/tfevents_read.py' '%s' > '%s'",
             sl_test_python(), sl_test_source_dir(), rep.events_path, out);
    assert_int_equal(sl_test_system("%s", cmd), 0);
    uint8_t *text;
    size_t n;
    assert_int_equal(sl_test_read_file(out, &text, &n), 0);
    text = realloc(text, n + 1);
    text[n] = '\0';
    char *save = NULL, *line = strtok_r((char *)text, "\n", &save);
    assert_string_equal(line, "version brain.Event:2");
    /* rows at steps 2 (log), 3 (eval), 4 (log), 6 (log + eval); each train/loss is the mean
     * over the steps since the previous row */
    int64_t last_step = 0, prev_loss_step = 0;
    int losses_seen = 0, val_seen = 0, lr_seen = 0, ips_seen = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        long long step;
        char tag[64];
        double v;
        assert_int_equal(sscanf(line, "scalar %lld %63s %lf", &step, tag, &v), 3);
        assert_true(step >= last_step);
        last_step = step;
        if (!strcmp(tag, "train/loss")) {
            /* the mean of the steps since the last row, as a float */
            const int64_t from = prev_loss_step;
            double mean = 0;
            const int64_t to = step;
            for (int64_t s = from; s < to; s++)
                mean += l.loss[s];
            mean /= (double)(to - from);
            assert_true(v == (double)(float)mean);
            prev_loss_step = step;
            losses_seen++;
        } else if (!strcmp(tag, "val/loss") || !strcmp(tag, "val/accuracy")) {
            assert_true(step == 3 || step == 6);
            val_seen++;
        } else if (!strcmp(tag, "learning_rate")) {
            assert_true(v == (double)5e-3f);
            lr_seen++;
        } else if (!strcmp(tag, "images_per_s")) {
            assert_true(v > 0);
            ips_seen++;
        } else {
            assert_string_equal(tag, "train/accuracy");
        }
    }
    free(text);
    assert_int_equal(last_step, 6);
    assert_int_equal(val_seen, 4);
    assert_int_equal(lr_seen, 4);
    assert_int_equal(ips_seen, 4);
    assert_int_equal(losses_seen, 4);
}

static void test_csv_has_a_row_per_log(void **state)
{
    (void)state;
    char dir[256], path[300];
    sl_test_fresh_subdir(dir, sizeof dir, "csv");
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 6;
    c.log_every = 3;
    c.logdir = dir;
    assert_int_equal(run(&c, 0, &rep, NULL, 0), 0);
    snprintf(path, sizeof path, "%s/train.csv", dir);
    uint8_t *text;
    size_t n;
    assert_int_equal(sl_test_read_file(path, &text, &n), 0);
    text = realloc(text, n + 1);
    text[n] = '\0';
    char *save = NULL, *line = strtok_r((char *)text, "\n", &save);
    assert_string_equal(line, "step,loss,accuracy,lr,images_per_s,val_loss,val_accuracy");
    for (int row = 1; row <= 2; row++) {
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        long long step;
        double loss;
        assert_int_equal(sscanf(line, "%lld,%lf,", &step, &loss), 2);
        assert_int_equal(step, 3 * row);
        const double mean = (l.loss[3 * row - 3] + l.loss[3 * row - 2] + l.loss[3 * row - 1]) / 3;
        assert_true(loss > mean - 1e-6 && loss < mean + 1e-6);
        assert_non_null(strstr(line, ",,")); /* no evaluation */
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
}

static void test_report_splits_wait_and_compute(void **state)
{
    (void)state;
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 5;
    assert_int_equal(run(&c, 1, &rep, NULL, 0), 0);
    assert_int_equal(rep.examples, 5 * B);
    assert_true(rep.compute_s > 0 && rep.data_wait_s >= 0);
    assert_true(rep.seconds == rep.data_wait_s + rep.compute_s);
    assert_true(rep.images_per_s == (double)rep.examples / rep.seconds);
    assert_string_equal(rep.verdict, sl_train_verdict(rep.wait_share));
    assert_int_equal(rep.evaluated, 1); /* the end-of-run evaluation */
    assert_true(rep.val_accuracy >= 0 && rep.val_accuracy <= 1);
}

static void test_early_stop_on_rising_validation_loss(void **state)
{
    (void)state;
    /* the held-out labels are the training classes shifted by one, so learning the training
     * task makes the validation loss rise from the first evaluations on */
    losses l = {0};
    sl_train_config c = base_config(&l);
    c.steps = 40;
    c.eval_every = 2;
    c.patience = 2;
    sl_dataset *train = make_data(3), *val = make_data_shifted(4, 1);
    sl_trainer *t;
    char cerr[256] = "";
    assert_int_equal(sl_trainer_open(&t, &c, train, val, cerr, sizeof cerr), 0);
    sl_dataset_release(train);
    sl_dataset_release(val);
    sl_train_report rep;
    assert_int_equal(sl_trainer_run(t, &rep), 0);
    sl_trainer_close(t);
    assert_int_equal(rep.stopped_early, 1);
    assert_true(rep.steps < 40);
    assert_int_equal(rep.steps % 2, 0); /* it stops right after an evaluation */
    assert_int_equal(l.n, rep.steps);
    assert_int_equal(rep.evaluated, 1);
}

static void test_verdict_thresholds(void **state)
{
    (void)state;
    assert_string_equal(sl_train_verdict(0.20), "highly input-bound");
    assert_string_equal(sl_train_verdict(0.1999), "moderately input-bound");
    assert_string_equal(sl_train_verdict(0.05), "moderately input-bound");
    assert_string_equal(sl_train_verdict(0.0499), "not input-bound");
}

static void test_missing_tensor_is_named(void **state)
{
    (void)state;
    losses l = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&l);
    c.steps = 2;
    c.x_name = "pixels";
    char err[512];
    assert_int_equal(run(&c, 0, &rep, err, sizeof err), SL_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "train: the batch has no tensor \"pixels\""));
}

static int no_elements(void *user, uint64_t index, sl_element *out)
{
    (void)user, (void)index, (void)out;
    return SL_EOF;
}

static void test_epochs_need_a_known_length(void **state)
{
    (void)state;
    sl_dataset *g;
    assert_int_equal(sl_dataset_generator(&g, no_elements, NULL, "gen"), 0);
    assert_int_equal(sl_dataset_cardinality(g), SL_CARDINALITY_UNKNOWN);
    sl_train_config c = sl_train_defaults();
    c.epochs = 1;
    sl_trainer *t = NULL;
    char err[256] = "";
    assert_int_equal(sl_trainer_open(&t, &c, g, NULL, err, sizeof err), SL_ERR_INVAL);
    assert_null(t);
    assert_string_equal(
        err, "epochs: the training dataset's length is not known without a pass; give steps");
    sl_dataset_release(g);
}

/* ---- the backend interface (sl_train_backend), with a fake backend over the CPU model -------- */

/* The same batches as make_data, as uint8 (B, H, W, C) images: what a backend's feed carries. */
static sl_dataset *make_data_u8(uint64_t seed)
{
    sl_element el[NB];
    sl_rng rng;
    sl_rng_init(&rng, seed, 0, 0);
    for (int b = 0; b < NB; b++) {
        memset(&el[b], 0, sizeof el[b]);
        sl_tensor x, y;
        const int64_t xs[4] = {B, H, W, C}, ys[1] = {B};
        assert_int_equal(sl_tensor_alloc(&x, SL_DTYPE_U8, 4, xs), 0);
        assert_int_equal(sl_tensor_alloc(&y, SL_DTYPE_I64, 1, ys), 0);
        uint8_t *px = x.data;
        int64_t *py = y.data;
        for (int i = 0; i < B; i++) {
            const int k = (int)sl_rng_below(&rng, CLASSES);
            py[i] = k;
            for (int p = 0; p < H * W; p++)
                for (int c = 0; c < C; c++)
                    px[(i * H * W + p) * C + c] =
                        (uint8_t)((c == k ? 180 : 60) + (int)sl_rng_below(&rng, 60));
        }
        assert_int_equal(sl_element_push(&el[b], "image", &x), 0);
        assert_int_equal(sl_element_push(&el[b], "label", &y), 0);
    }
    sl_dataset *mem, *shuf;
    assert_int_equal(sl_dataset_from_elements(&mem, el, NB), 0);
    for (int b = 0; b < NB; b++)
        sl_element_release(&el[b]);
    assert_int_equal(sl_dataset_global_shuffle(&shuf, mem, 5, 1), 0);
    sl_dataset_release(mem);
    return shuf;
}

/* A backend that keeps the CPU model behind the table, with a two-slot feed in host memory that
 * refuses what the CUDA feed refuses (a third slot, taking from an empty feed), so the loop's
 * use of the interface is checked without the CUDA libraries (which link sl_trainer). */
typedef struct fake_backend {
    sl_model *m;
    sl_optim *o;
    float clip;
    size_t per;
    uint8_t *pix[2];
    int32_t *lab[2];
    int n[2];
    int head, count; /* submitted batches waiting: slots head, head + 1 */
    float *x;        /* the taken batch */
    int32_t *y;
    int submits, takes, creates;
    int steps_read_ahead; /* steps that computed with the next batch already submitted */
} fake_backend;

static int fb_create(void *user, const sl_model_config *mc, const sl_optim_config *oc,
                     float clip_norm, int u8)
{
    fake_backend *f = user;
    assert_int_equal(u8, 1);
    f->creates++;
    char err[128];
    assert_int_equal(sl_model_create(&f->m, mc, err, sizeof err), 0);
    assert_int_equal(
        sl_optim_create(&f->o, oc, sl_model_param_count(f->m), sl_model_decay_count(f->m)), 0);
    f->clip = clip_norm;
    f->per = (size_t)mc->in_c * (size_t)mc->in_h * (size_t)mc->in_w;
    for (int s = 0; s < 2; s++) {
        f->pix[s] = sl_malloc(f->per * (size_t)mc->max_batch);
        f->lab[s] = sl_malloc(sizeof(int32_t) * (size_t)mc->max_batch);
    }
    f->x = sl_malloc(sizeof(float) * f->per * (size_t)mc->max_batch);
    f->y = sl_malloc(sizeof(int32_t) * (size_t)mc->max_batch);
    return 0;
}

static int fb_feed_slot(void *user, uint8_t **pixels, int32_t **labels)
{
    fake_backend *f = user;
    if (f->count == 2)
        return SL_ERR_INVAL;
    const int s = (f->head + f->count) % 2;
    *pixels = f->pix[s], *labels = f->lab[s];
    return 0;
}

static int fb_feed_submit(void *user, int n)
{
    fake_backend *f = user;
    assert_true(f->count < 2);
    f->n[(f->head + f->count) % 2] = n;
    f->count++;
    f->submits++;
    return 0;
}

static int fb_feed_next(void *user, const float **x, const int32_t **y, int *n)
{
    fake_backend *f = user;
    if (f->count == 0)
        return SL_EOF;
    const int s = f->head, nb = f->n[s];
    const size_t hw = (size_t)H * W;
    for (int i = 0; i < nb; i++)
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < C; c++)
                f->x[((size_t)i * C + (size_t)c) * hw + p] =
                    (float)f->pix[s][((size_t)i * hw + p) * C + (size_t)c] * (1.0f / 255.0f);
    memcpy(f->y, f->lab[s], sizeof(int32_t) * (size_t)nb);
    f->head = (f->head + 1) % 2;
    f->count--;
    f->takes++;
    *x = f->x, *y = f->y, *n = nb;
    return 0;
}

static double fb_feed_wait_seconds(void *user)
{
    (void)user;
    return 0;
}

static int fb_upload(void *user, const float *x, const int32_t *y, int n, const float **dx,
                     const int32_t **dy)
{
    (void)user, (void)x, (void)y, (void)n, (void)dx, (void)dy;
    fail_msg("uint8 batches must go through the feed");
    return SL_ERR_INVAL;
}

static int fb_step(void *user, const float *x, const int32_t *y, int n, float lr, int64_t step,
                   double *loss, int *correct)
{
    fake_backend *f = user;
    assert_true(f->count <= 1);
    f->steps_read_ahead += f->count;
    sl_model_zero_grad(f->m);
    int rc = sl_model_forward(f->m, x, y, n, 1, loss, correct);
    if (rc == 0)
        rc = sl_model_backward(f->m, 1.0f);
    if (rc == 0)
        rc = sl_model_check_finite(f->m, step, *loss);
    if (rc < 0)
        return rc;
    if (f->clip > 0)
        sl_grad_clip_norm(sl_model_grads(f->m), sl_model_param_count(f->m), f->clip);
    sl_optim_step(f->o, sl_model_params(f->m), sl_model_grads(f->m), lr);
    return 0;
}

static int fb_eval(void *user, const float *x, const int32_t *y, int n, double *loss, int *correct)
{
    fake_backend *f = user;
    return sl_model_forward(f->m, x, y, n, 0, loss, correct);
}

static int fb_save(void *user, uint8_t **out, size_t *len)
{
    fake_backend *f = user;
    return sl_train_state_save(f->m, f->o, out, len);
}

static int fb_load(void *user, const uint8_t *data, size_t len)
{
    fake_backend *f = user;
    return sl_train_state_load(f->m, f->o, data, len);
}

static const char *fb_errmsg(void *user)
{
    fake_backend *f = user;
    return f->m ? sl_model_errmsg(f->m) : "";
}

static void fb_close(void *user)
{
    fake_backend *f = user;
    sl_model_free(f->m);
    sl_optim_free(f->o);
    for (int s = 0; s < 2; s++) {
        sl_free(f->pix[s]);
        sl_free(f->lab[s]);
    }
    sl_free(f->x);
    sl_free(f->y);
}

static sl_train_backend fake_table(fake_backend *f)
{
    memset(f, 0, sizeof *f);
    const sl_train_backend be = {.device = "fake",
                                 .user = f,
                                 .create = fb_create,
                                 .feed_slot = fb_feed_slot,
                                 .feed_submit = fb_feed_submit,
                                 .feed_next = fb_feed_next,
                                 .feed_wait_seconds = fb_feed_wait_seconds,
                                 .upload = fb_upload,
                                 .step = fb_step,
                                 .eval = fb_eval,
                                 .save = fb_save,
                                 .load = fb_load,
                                 .errmsg = fb_errmsg,
                                 .close = fb_close};
    return be;
}

/* Runs a trainer over uint8 data, on the CPU model or on be. */
static int run_u8(const sl_train_config *c, int with_val, sl_train_report *rep)
{
    sl_dataset *train = make_data_u8(3), *val = with_val ? make_data_u8(4) : NULL;
    sl_trainer *t;
    char cerr[256] = "";
    assert_int_equal(sl_trainer_open(&t, c, train, val, cerr, sizeof cerr), 0);
    sl_dataset_release(train);
    sl_dataset_release(val);
    const int rc = sl_trainer_run(t, rep);
    sl_trainer_close(t);
    return rc;
}

/* Through the table, with the feed read one batch ahead between checkpoints and evaluations:
 * the same batches in the same order, so the CPU model behind it gives the CPU loop's losses
 * bit for bit, and the report names the device. */
static void test_backend_trains_like_the_cpu_loop(void **state)
{
    (void)state;
    losses cpu = {0}, dev = {0};
    sl_train_report rep;
    sl_train_config c = base_config(&cpu);
    c.steps = 14;
    c.eval_every = 5;
    assert_int_equal(run_u8(&c, 1, &rep), 0);
    assert_string_equal(rep.device, "cpu");
    const double cpu_val = rep.val_loss;

    fake_backend f;
    const sl_train_backend be = fake_table(&f);
    c = base_config(&dev);
    c.steps = 14;
    c.eval_every = 5;
    c.backend = &be;
    assert_int_equal(run_u8(&c, 1, &rep), 0);
    assert_string_equal(rep.device, "fake");
    assert_int_equal(dev.n, 14);
    for (int i = 0; i < 14; i++)
        assert_memory_equal(&dev.loss[i], &cpu.loss[i], sizeof(double));
    assert_memory_equal(&rep.val_loss, &cpu_val, sizeof(double));
    assert_int_equal(f.creates, 1);
    /* 14 training batches and 3 evaluations of 6 batches, each taken once */
    assert_int_equal(f.submits, 14 + 3 * NB);
    assert_int_equal(f.takes, 14 + 3 * NB);
    /* batch k + 1 was submitted before step k, for k = 0..12 except before the evaluations
     * after steps 5 and 10 */
    assert_int_equal(f.steps_read_ahead, 11);
    fb_close(&f);
}

/* Counts checkpoint writes (a write starts at byte 0) and stops the `crash_at`-th. */
static int nth_write_crash(void *user, size_t written)
{
    losses *l = user;
    if (written == 0)
        l->hook_calls++;
    return l->hook_calls == l->crash_at;
}

/* A run through the table that dies writing its checkpoint at step 12 resumes from the one at
 * step 8 and continues exactly as an uninterrupted run: no batch read ahead is in a checkpoint. */
static void test_backend_resumes_from_a_mid_run_checkpoint(void **state)
{
    (void)state;
    char dir[256];
    sl_test_fresh_subdir(dir, sizeof dir, "backend-resume");
    losses whole = {0}, first = {0}, second = {0};
    sl_train_report rep;
    fake_backend f;
    sl_train_backend be = fake_table(&f);
    sl_train_config c = base_config(&whole);
    c.steps = 16;
    c.backend = &be;
    assert_int_equal(run_u8(&c, 0, &rep), 0);
    fb_close(&f);

    be = fake_table(&f);
    c = base_config(&first);
    c.steps = 16;
    c.backend = &be;
    c.checkpoint_dir = dir;
    c.checkpoint_every = 4;
    c.write_hook = nth_write_crash;
    first.crash_at = 3; /* the writes at steps 4 and 8 complete; the one at 12 does not */
    assert_int_equal(run_u8(&c, 0, &rep), SL_ERR_CANCELLED);
    assert_int_equal(first.n, 12);
    fb_close(&f);

    be = fake_table(&f);
    c = base_config(&second);
    c.steps = 16;
    c.backend = &be;
    c.checkpoint_dir = dir;
    c.checkpoint_every = 4;
    c.resume = 1;
    assert_int_equal(run_u8(&c, 0, &rep), 0);
    assert_int_equal(rep.start_step, 8);
    assert_int_equal(second.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(second.steps[i], 8 + i);
        assert_memory_equal(&second.loss[i], &whole.loss[8 + i], sizeof(double));
    }
    assert_int_equal(f.steps_read_ahead, 6); /* steps 8..15 but those before 12 and 16 */
    fb_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_continues_the_loss_sequence),
        cmocka_unit_test(test_crash_mid_checkpoint_keeps_the_previous_one),
        cmocka_unit_test(test_corrupt_checkpoint_is_refused),
        cmocka_unit_test(test_event_file_parses_with_an_independent_reader),
        cmocka_unit_test(test_csv_has_a_row_per_log),
        cmocka_unit_test(test_report_splits_wait_and_compute),
        cmocka_unit_test(test_early_stop_on_rising_validation_loss),
        cmocka_unit_test(test_verdict_thresholds),
        cmocka_unit_test(test_missing_tensor_is_named),
        cmocka_unit_test(test_epochs_need_a_known_length),
        cmocka_unit_test(test_backend_trains_like_the_cpu_loop),
        cmocka_unit_test(test_backend_resumes_from_a_mid_run_checkpoint),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}
