/* Whole models (sluice/model.h): the mlp's and the cnn's parameter gradients against central
 * finite differences of the loss, the fast path against the reference, reproducible
 * initialisation and layout, the cnn learning a trivially separable task, a deterministic loss
 * sequence, the training-state checkpoint (exact resume, and every way a blob is refused), and
 * the errors a caller sees. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sluice/model.h"
#include "sluice/optim.h"
#include "sluice/rng.h"

static float *fvec(size_t n)
{
    float *v = sl_calloc(n ? n : 1, sizeof(float));
    assert_non_null(v);
    return v;
}

static void fill_uniform(float *v, size_t n, uint64_t seed, float lo, float hi)
{
    sl_rng r;
    sl_rng_init(&r, seed, 5, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)sl_rng_uniform(&r);
}

static sl_model *make(const sl_model_config *cfg)
{
    sl_model *m = NULL;
    char err[256];
    const int rc = sl_model_create(&m, cfg, err, sizeof err);
    if (rc)
        fail_msg("sl_model_create: %s", err);
    return m;
}

static const sl_model_config tiny_mlp = {.name = "mlp",
                                         .in_c = 1,
                                         .in_h = 4,
                                         .in_w = 4,
                                         .classes = 3,
                                         .max_batch = 32,
                                         .seed = 7,
                                         .hidden = 8};

static const sl_model_config tiny_cnn = {.name = "cnn",
                                         .in_c = 2,
                                         .in_h = 6,
                                         .in_w = 6,
                                         .classes = 3,
                                         .max_batch = 8,
                                         .seed = 7,
                                         .width = 4,
                                         .blocks = 2};

/* ---- gradient checks ------------------------------------------------------------------------ */

static double loss_of(sl_model *m, const float *x, const int32_t *y, int n)
{
    double loss;
    assert_int_equal(sl_model_forward(m, x, y, n, 1, &loss, NULL), 0);
    return loss;
}

/* Every parameter's analytic gradient against (L(p + eps) - L(p - eps)) / (2 eps), each one
 * within atol + rtol * max(|analytic|, |numeric|). */
static void model_gradcheck(const sl_model_config *cfg, int n, float eps, double rtol, double atol)
{
    sl_model *m = make(cfg);
    const size_t in = (size_t)cfg->in_c * cfg->in_h * cfg->in_w;
    float *x = fvec(in * n);
    fill_uniform(x, in * n, 3, -1, 1);
    int32_t y[16];
    for (int i = 0; i < n; i++)
        y[i] = i % cfg->classes;
    sl_model_zero_grad(m);
    loss_of(m, x, y, n);
    assert_int_equal(sl_model_backward(m, 1.0f), 0);
    const size_t np = sl_model_param_count(m);
    float *g = fvec(np);
    memcpy(g, sl_model_grads(m), np * sizeof(float));
    float *p = sl_model_params(m);
    size_t bad = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        const float save = p[i];
        p[i] = save + eps;
        const double xp = p[i], lp = loss_of(m, x, y, n);
        p[i] = save - eps;
        const double xm = p[i], lm = loss_of(m, x, y, n);
        p[i] = save;
        const double num = (lp - lm) / (xp - xm);
        const double err = fabs(num - g[i]) / (atol + rtol * fmax(fabs(num), fabs(g[i])));
        if (err > worst)
            worst = err, worst_i = i;
        bad += err > 1;
    }
    if (bad)
        fail_msg("%s: %zu of %zu parameters off; worst at %zu (analytic %.6g), %.1fx the bound",
                 cfg->name, bad, np, worst_i, g[worst_i], worst);
    sl_free(g);
    sl_free(x);
    sl_model_free(m);
}

static void test_mlp_gradients(void **state)
{
    model_gradcheck(&tiny_mlp, 5, 1e-2f, 1e-3, 1e-5);
}

static void test_cnn_gradients(void **state)
{
    /* Batch norm spreads a weight's change over every value of its channel, so eps = 1e-2 moves
     * a few ReLU inputs across zero (numeric error ~30%); below ~5e-5 the float forward's
     * rounding (~1e-7 of the loss) dominates. 2e-4 sits between: the worst parameter uses 0.6
     * of this bound. */
    model_gradcheck(&tiny_cnn, 4, 2e-4f, 2e-2, 2e-4);
}

/* 8x8 inputs leave a 4x4 map after the stride-2 stage, so the default head is two 2x2 max pools
 * (a global max), which the 6x6 tiny_cnn (3x3 map: odd, averaged) does not reach. The max sends
 * each channel's gradient through one position, so rounding weighs more than in the average:
 * at eps 1e-4 (atol 2e-4) 49 small gradients fail, at 1e-3 a few maxima change places (8 fail);
 * eps 3e-4 and 5e-4 pass with atol 5e-4. Routing the head's gradient as an average instead makes
 * 1313 of 1355 parameters fail. */
static void test_cnn_max_head_gradients(void **state)
{
    sl_model_config c = tiny_cnn;
    c.in_h = c.in_w = 8;
    model_gradcheck(&c, 4, 5e-4f, 2e-2, 5e-4);
}

/* ---- fast == reference ---------------------------------------------------------------------- */

static void assert_close(const char *what, const float *ref, const float *got, size_t n, double rel)
{
    double scale = 1e-3, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(ref[i]));
        if (fabs((double)ref[i] - got[i]) > worst)
            worst = fabs((double)ref[i] - got[i]), at = i;
    }
    if (worst > rel * scale)
        fail_msg("%s: |ref - fast| = %.3g at %zu (ref %.9g, fast %.9g), bound %.3g", what, worst,
                 at, ref[at], got[at], rel * scale);
}

static void model_fast_matches(sl_model_config cfg, int n)
{
    sl_model *m[2];
    cfg.impl = SL_NN_REFERENCE;
    m[0] = make(&cfg);
    cfg.impl = SL_NN_FAST;
    m[1] = make(&cfg);
    const size_t in = (size_t)cfg.in_c * cfg.in_h * cfg.in_w;
    float *x = fvec(in * n);
    fill_uniform(x, in * n, 9, 0, 1);
    int32_t y[64];
    for (int i = 0; i < n; i++)
        y[i] = (i * 7) % cfg.classes;
    double loss[2];
    for (int k = 0; k < 2; k++) {
        sl_model_zero_grad(m[k]);
        assert_int_equal(sl_model_forward(m[k], x, y, n, 1, &loss[k], NULL), 0);
        assert_int_equal(sl_model_backward(m[k], 1.0f), 0);
    }
    assert_float_equal(loss[0], loss[1], 1e-5 * fabs(loss[0]));
    assert_close("logits", sl_model_logits(m[0]), sl_model_logits(m[1]), (size_t)n * cfg.classes,
                 1e-4);
    assert_close("grads", sl_model_grads(m[0]), sl_model_grads(m[1]), sl_model_param_count(m[0]),
                 1e-4);
    /* per tensor too: a small tensor's error must not hide under a large one's scale */
    for (size_t t = 0; t < sl_model_tensor_count(m[0]); t++) {
        const sl_model_tensor *T = sl_model_tensor_at(m[0], t);
        assert_close(T->name, sl_model_grads(m[0]) + T->offset, sl_model_grads(m[1]) + T->offset,
                     T->count, 1e-3);
    }
    assert_close("bn state", sl_model_state(m[0]), sl_model_state(m[1]), sl_model_state_count(m[0]),
                 1e-5);
    sl_free(x);
    sl_model_free(m[0]);
    sl_model_free(m[1]);
}

static void test_mlp_fast_matches_reference(void **state)
{
    sl_model_config c = {
        .name = "mlp", .in_c = 3, .in_h = 8, .in_w = 8, .classes = 10, .max_batch = 16, .seed = 3};
    model_fast_matches(c, 16);
}

static void test_cnn_fast_matches_reference(void **state)
{
    sl_model_config c = {.name = "cnn",
                         .in_c = 3,
                         .in_h = 12,
                         .in_w = 12,
                         .classes = 5,
                         .max_batch = 6,
                         .seed = 3,
                         .width = 8,
                         .blocks = 3,
                         .pool = 1};
    model_fast_matches(c, 6);
}

/* ---- initialisation and layout -------------------------------------------------------------- */

static void test_init_is_reproducible_per_seed(void **state)
{
    sl_model_config c = tiny_cnn;
    sl_model *a = make(&c), *b = make(&c);
    c.seed = 8;
    sl_model *d = make(&c);
    const size_t np = sl_model_param_count(a);
    assert_memory_equal(sl_model_params(a), sl_model_params(b), np * sizeof(float));
    assert_memory_not_equal(sl_model_params(a), sl_model_params(d),
                            sl_model_decay_count(a) * sizeof(float));
    sl_model_free(a);
    sl_model_free(b);
    sl_model_free(d);
}

static void test_cnn_tensor_layout(void **state)
{
    sl_model *m = make(&tiny_cnn);
    /* decayed weights first, contiguous, then the rest; offsets tile the blob exactly */
    size_t next = 0, decayed = 0;
    const char *first_nodecay = NULL;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t t = 0; t < sl_model_tensor_count(m); t++) {
            const sl_model_tensor *T = sl_model_tensor_at(m, t);
            if (T->decay != pass)
                continue;
            assert_int_equal(T->offset, next);
            next += T->count;
            decayed += pass ? T->count : 0;
            if (!pass && !first_nodecay)
                first_nodecay = T->name;
        }
    assert_int_equal(next, sl_model_param_count(m));
    assert_int_equal(decayed, sl_model_decay_count(m));
    assert_string_equal(first_nodecay, "stem.bn.gamma");
    /* the stride-2 stage has a projection shortcut, the first block none */
    int sc1 = 0, sc2 = 0;
    for (size_t t = 0; t < sl_model_tensor_count(m); t++) {
        const sl_model_tensor *T = sl_model_tensor_at(m, t);
        sc1 += !strncmp(T->name, "block1.sc.", 10);
        if (!strcmp(T->name, "block2.sc.conv.w")) {
            sc2 = 1;
            assert_int_equal(T->shape[0], 8);
            assert_int_equal(T->shape[1], 4);
            assert_int_equal(T->shape[2], 1);
        }
    }
    assert_int_equal(sc1, 0);
    assert_int_equal(sc2, 1);
    /* state: running mean and variance per BN channel, starting at 0 and 1 */
    assert_true(sl_model_state_count(m) > 0);
    assert_float_equal(sl_model_state(m)[0], 0.0f, 0);
    assert_float_equal(sl_model_state(m)[4], 1.0f, 0); /* stem.bn has 4 channels */
    sl_model_free(m);
}

/* ---- training ------------------------------------------------------------------------------- */

/* Two classes of constant-colour 3x8x8 images with a little noise: class 0 reddish, class 1
 * bluish. Batch b of a run is drawn from stream (seed, b). */
static void colour_batch(float *x, int32_t *y, int n, uint64_t seed, uint64_t b)
{
    sl_rng r;
    sl_rng_init(&r, seed, b, 0);
    for (int i = 0; i < n; i++) {
        const int cls = (int)sl_rng_below(&r, 2);
        y[i] = cls;
        const float rgb[2][3] = {{0.8f, 0.3f, 0.2f}, {0.2f, 0.3f, 0.8f}};
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 64; p++)
                x[((size_t)i * 3 + ch) * 64 + p] =
                    rgb[cls][ch] + 0.1f * (float)(sl_rng_uniform(&r) - 0.5);
    }
}

static const sl_model_config colour_cnn = {.name = "cnn",
                                           .in_c = 3,
                                           .in_h = 8,
                                           .in_w = 8,
                                           .classes = 2,
                                           .max_batch = 64,
                                           .seed = 1,
                                           .impl = SL_NN_FAST,
                                           .width = 8,
                                           .blocks = 2};

/* Trains `steps` SGD steps of batch 16; losses[s] is step s's loss. */
static void train_colours(sl_model *m, sl_optim *o, int first, int steps, double *losses)
{
    float x[16 * 3 * 64];
    int32_t y[16];
    for (int s = first; s < first + steps; s++) {
        colour_batch(x, y, 16, 42, (uint64_t)s);
        sl_model_zero_grad(m);
        assert_int_equal(sl_model_forward(m, x, y, 16, 1, &losses[s], NULL), 0);
        assert_int_equal(sl_model_backward(m, 1.0f), 0);
        assert_int_equal(sl_model_check_finite(m, s, losses[s]), 0);
        sl_optim_step(o, sl_model_params(m), sl_model_grads(m), 0.05f);
    }
}

static sl_optim *make_sgd(sl_model *m)
{
    sl_optim *o;
    const sl_optim_config oc = sl_optim_defaults(SL_OPTIM_SGD);
    assert_int_equal(sl_optim_create(&o, &oc, sl_model_param_count(m), sl_model_decay_count(m)), 0);
    return o;
}

static void test_cnn_learns_colours(void **state)
{
    sl_model *m = make(&colour_cnn);
    sl_optim *o = make_sgd(m);
    double losses[30];
    train_colours(m, o, 0, 30, losses);
    assert_true(losses[29] < 0.25 * losses[0]);
    /* held-out batch, evaluation mode (running statistics) */
    float x[64 * 3 * 64];
    int32_t y[64];
    colour_batch(x, y, 64, 1234, 0);
    int correct = 0;
    double loss;
    assert_int_equal(sl_model_forward(m, x, y, 64, 0, &loss, &correct), 0);
    assert_int_equal(correct, 64);
    sl_optim_free(o);
    sl_model_free(m);
}

static void test_loss_sequence_is_deterministic(void **state)
{
    double a[12], b[12], c[12];
    for (int run = 0; run < 3; run++) {
        sl_model_config cfg = colour_cnn;
        cfg.seed = run == 2 ? 2 : 1;
        sl_model *m = make(&cfg);
        sl_optim *o = make_sgd(m);
        train_colours(m, o, 0, 12, run == 0 ? a : run == 1 ? b : c);
        sl_optim_free(o);
        sl_model_free(m);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a); /* the seed matters: the test can tell */
}

/* ---- checkpoint ----------------------------------------------------------------------------- */

static void test_checkpoint_resumes_exactly(void **state)
{
    double straight[10], resumed[10];
    sl_model *m = make(&colour_cnn);
    sl_optim *o = make_sgd(m);
    train_colours(m, o, 0, 10, straight);
    sl_optim_free(o);
    sl_model_free(m);

    m = make(&colour_cnn);
    o = make_sgd(m);
    train_colours(m, o, 0, 5, resumed);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_train_state_save(m, o, &blob, &len), 0);
    sl_optim_free(o);
    sl_model_free(m);

    sl_model_config other_seed = colour_cnn;
    other_seed.seed = 99; /* the blob overrides the initialisation */
    m = make(&other_seed);
    o = make_sgd(m);
    assert_int_equal(sl_train_state_load(m, o, blob, len), 0);
    assert_int_equal(sl_optim_step_count(o), 5);
    train_colours(m, o, 5, 5, resumed);
    assert_memory_equal(straight, resumed, sizeof straight);
    sl_free(blob);
    sl_optim_free(o);
    sl_model_free(m);
}

static void test_checkpoint_refuses_damage_and_mismatch(void **state)
{
    sl_model *m = make(&tiny_cnn);
    sl_optim *o = make_sgd(m);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_train_state_save(m, o, &blob, &len), 0);
    assert_int_equal(len, 48 + 4 * (2 * sl_model_param_count(m) + sl_model_state_count(m)) + 4);
    const float before = sl_model_params(m)[0];
    sl_model_params(m)[0] = before + 1; /* a refused load must change nothing */

    blob[100] ^= 1;
    assert_int_equal(sl_train_state_load(m, o, blob, len), SL_ERR_CORRUPT);
    assert_non_null(strstr(sl_model_errmsg(m), "crc32c"));
    blob[100] ^= 1;
    assert_int_equal(sl_train_state_load(m, o, blob, len - 1), SL_ERR_TRUNCATED);
    blob[0] = 'X';
    assert_int_equal(sl_train_state_load(m, o, blob, len), SL_ERR_FORMAT);
    blob[0] = 'S';
    blob[8] = 2;
    assert_int_equal(sl_train_state_load(m, o, blob, len), SL_ERR_VERSION);
    blob[8] = 1;
    assert_float_equal(sl_model_params(m)[0], before + 1, 0);

    /* an optimizer of another kind, and a model of another shape */
    sl_optim *adam;
    const sl_optim_config ac = sl_optim_defaults(SL_OPTIM_ADAMW);
    assert_int_equal(sl_optim_create(&adam, &ac, sl_model_param_count(m), sl_model_decay_count(m)),
                     0);
    assert_int_equal(sl_train_state_load(m, adam, blob, len), SL_ERR_SCHEMA);
    sl_model_config wider = tiny_cnn;
    wider.width = 5;
    sl_model *w = make(&wider);
    assert_int_equal(sl_train_state_load(w, NULL, blob, len), SL_ERR_SCHEMA);
    assert_int_equal(sl_train_state_load(m, o, blob, len), 0);
    assert_float_equal(sl_model_params(m)[0], before, 0);
    sl_free(blob);
    sl_optim_free(adam);
    sl_optim_free(o);
    sl_model_free(w);
    sl_model_free(m);
}

/* The two heads have the same tensors; a blob saved with one is still another model's. */
static void test_checkpoint_refuses_the_other_head(void **state)
{
    sl_model_config c = tiny_cnn;
    c.in_h = c.in_w = 8;
    sl_model *max_head = make(&c);
    c.avg_pool = 1;
    sl_model *avg_head = make(&c);
    assert_int_equal(sl_model_param_count(max_head), sl_model_param_count(avg_head));
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_train_state_save(max_head, NULL, &blob, &len), 0);
    assert_int_equal(sl_train_state_load(avg_head, NULL, blob, len), SL_ERR_SCHEMA);
    assert_int_equal(sl_train_state_load(max_head, NULL, blob, len), 0);
    sl_free(blob);
    sl_model_free(avg_head);
    sl_model_free(max_head);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_bad_config_is_refused_with_reason(void **state)
{
    sl_model *m = (sl_model *)1;
    char err[256];
    sl_model_config c = tiny_cnn;
    c.name = "resnet50";
    assert_int_equal(sl_model_create(&m, &c, err, sizeof err), SL_ERR_INVAL);
    assert_null(m);
    assert_string_equal(err, "model name \"resnet50\": expected \"mlp\" or \"cnn\"");
    c = tiny_cnn;
    c.blocks = 1;
    assert_int_equal(sl_model_create(&m, &c, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "blocks = 1"));
}

static void test_label_out_of_range_names_the_example(void **state)
{
    sl_model *m = make(&tiny_mlp);
    float x[2 * 16] = {0};
    const int32_t y[2] = {1, 3};
    assert_int_equal(sl_model_forward(m, x, y, 2, 1, NULL, NULL), SL_ERR_RANGE);
    assert_string_equal(sl_model_errmsg(m),
                        "mlp forward: label 3 of example 1 is outside [0, 3): index out of range");
    assert_int_equal(sl_model_forward(m, x, y, 33, 1, NULL, NULL), SL_ERR_INVAL);
    /* no backward without a training forward */
    assert_int_equal(sl_model_backward(m, 1.0f), SL_ERR_INVAL);
    sl_model_free(m);
}

static void test_nonfinite_loss_names_the_step(void **state)
{
    sl_model *m = make(&tiny_mlp);
    float x[16] = {0};
    x[3] = NAN;
    const int32_t y[1] = {0};
    double loss;
    assert_int_equal(sl_model_forward(m, x, y, 1, 1, &loss, NULL), 0);
    assert_int_equal(sl_model_check_finite(m, 12, loss), SL_ERR_NONFINITE);
    assert_string_equal(sl_model_errmsg(m), "step 12: loss is nan");
    sl_model_free(m);
}

static void test_nonfinite_gradient_names_the_tensor(void **state)
{
    sl_model *m = make(&tiny_mlp);
    sl_model_zero_grad(m);
    const sl_model_tensor *fc2b = NULL;
    for (size_t t = 0; t < sl_model_tensor_count(m); t++)
        if (!strcmp(sl_model_tensor_at(m, t)->name, "fc2.b"))
            fc2b = sl_model_tensor_at(m, t);
    assert_non_null(fc2b);
    sl_model_grads(m)[fc2b->offset + 2] = INFINITY;
    assert_int_equal(sl_model_check_finite(m, 3, 0.5), SL_ERR_NONFINITE);
    assert_string_equal(sl_model_errmsg(m), "step 3: gradient of fc2.b is inf at element 2");
    sl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_gradients),
        cmocka_unit_test(test_cnn_gradients),
        cmocka_unit_test(test_cnn_max_head_gradients),
        cmocka_unit_test(test_mlp_fast_matches_reference),
        cmocka_unit_test(test_cnn_fast_matches_reference),
        cmocka_unit_test(test_init_is_reproducible_per_seed),
        cmocka_unit_test(test_cnn_tensor_layout),
        cmocka_unit_test(test_cnn_learns_colours),
        cmocka_unit_test(test_loss_sequence_is_deterministic),
        cmocka_unit_test(test_checkpoint_resumes_exactly),
        cmocka_unit_test(test_checkpoint_refuses_damage_and_mismatch),
        cmocka_unit_test(test_checkpoint_refuses_the_other_head),
        cmocka_unit_test(test_bad_config_is_refused_with_reason),
        cmocka_unit_test(test_label_out_of_range_names_the_example),
        cmocka_unit_test(test_nonfinite_loss_names_the_step),
        cmocka_unit_test(test_nonfinite_gradient_names_the_tensor),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
