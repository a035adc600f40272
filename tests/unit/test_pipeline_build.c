/* Pipeline text -> datasets: streams built from text equal the expected ones; the dataset's
 * canonical text equals the parser's canonical print of the same text (so a stage's name in
 * errors is its canonical text); functions come only from the registry; errors carry the
 * position and the stage. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/pipeline_build.h"

static int64_t value_of(const sl_element *e)
{
    return *(const int64_t *)sl_element_get(e, "value")->data;
}

typedef struct affine {
    int64_t mul, add;
} affine;

static int run_affine(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                      size_t errcap)
{
    const affine *a = user;
    const int64_t v = value_of(in);
    sl_tensor t;
    SL_TRY(sl_tensor_alloc(&t, SL_DTYPE_I64, 0, NULL));
    *(int64_t *)t.data = v * a->mul + a->add;
    return sl_element_push(out, "value", &t);
}

/* times(k) and plus(k): factories reading one integer argument. */
static int make_affine(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                       size_t errcap)
{
    static const char *const keys[] = {"k"};
    SL_TRY(sl_ast_call_check(call, 1, keys, 1, err, errcap));
    const sl_ast_value *v;
    int64_t k = 0;
    SL_TRY(sl_ast_call_arg(call, 0, "k", true, &v, err, errcap));
    SL_TRY(sl_ast_value_get_int(v, call->name, &k, err, errcap));
    affine *a = sl_malloc(sizeof *a);
    if (!a)
        return SL_ERR_NOMEM;
    const int is_times = !strcmp(call->name, "times");
    *a = (affine){is_times ? k : 1, is_times ? 0 : k};
    out->fn = run_affine;
    out->user = a;
    out->free_user = sl_free;
    return 0;
}

static sl_registry *registry(void)
{
    sl_registry *r;
    assert_int_equal(sl_registry_create(&r), 0);
    assert_int_equal(sl_registry_add(r, "times", make_affine, NULL, "times(k): value * k"), 0);
    assert_int_equal(sl_registry_add(r, "plus", make_affine, NULL, "plus(k): value + k"), 0);
    assert_int_equal(sl_registry_add(r, "plus", make_affine, NULL, "again"), SL_ERR_EXISTS);
    return r;
}

static void render(sl_dataset *ds, char *buf, size_t cap)
{
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    size_t n = 0;
    buf[0] = '\0';
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0) {
        const sl_tensor *t = &e.tensors[e.count - 1];
        const int64_t numel = sl_tensor_numel(t);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", t->rank ? "[" : "");
        for (int64_t i = 0; i < numel; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "",
                                  (long long)((const int64_t *)t->data)[i]);
        n += (size_t)snprintf(buf + n, cap - n, "%s", t->rank ? "]" : "");
        sl_element_release(&e);
    }
    assert_int_equal(rc, SL_EOF);
    sl_iter_close(it);
}

static const struct {
    const char *text;
    const char *want;
} cases[] = {
    {"range(5)", "0 1 2 3 4"},
    {"range(2, 8, 3)", "2 5"},
    {"range(10) | map(times(3))", "0 3 6 9 12 15 18 21 24 27"},
    {"range(4) | map(times(10), plus(1))", "1 11 21 31"},
    {"range(4) | map(plus(k=1), times(10), parallel=3)", "10 20 30 40"},
    {"range(5) | batch(2)", "[0,1] [2,3] [4]"},
    {"range(5) | batch(2, drop_remainder=true)", "[0,1] [2,3]"},
    {"range(1000) | shuffle(100, seed=1) | batch(10, drop_remainder=true) | take(0)", ""},
    {"range(3) | repeat(2) | enumerate(start=5)", "0 1 2 0 1 2"},
    {"range(10) | shard(3, 1) | prefetch(auto)", "1 4 7"},
    {"range(10) | skip(8) | prefetch(2)", "8 9"},
    {"range(6) | batch(3) | unbatch", "0 1 2 3 4 5"},
    {"range(3) | zip(range(10, 20) | rename(value=\"other\"))", "10 11 12"},
    {"range(10) | rename(value=\"v\") | zip(range(4))", "0 1 2 3"},
    {"range(3) | rename(value=\"v\")", "0 1 2"},
    {"range(3) | enumerate(start=5) | select(\"value\", \"index\")", "5 6 7"},
    {"range(3) | enumerate(start=5) | select(\"value\")", "0 1 2"},
    {"range(3) | cache | repeat(2)", "0 1 2 0 1 2"},
    {"range(5) | padded_batch(2)", "[0,1] [2,3] [4]"},
};

static void test_streams_from_text(void **state)
{
    sl_registry *reg = registry();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_dataset *ds;
        char err[512], got[1024];
        const int rc = sl_pipeline_build(&ds, cases[i].text, reg, err, sizeof err);
        if (rc)
            fail_msg("%s: %s", cases[i].text, err);
        render(ds, got, sizeof got);
        if (strcmp(got, cases[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].text, got, cases[i].want);
        sl_dataset_release(ds);
    }
    sl_registry_free(reg);
}

static void test_dataset_text_is_the_canonical_text(void **state)
{
    static const char *const texts[] = {
        "range(0,1000)|shuffle(100,seed=1)|batch(10,drop_remainder=true)|prefetch(auto)",
        "range(10) | map(times(3), plus(1), parallel=auto) | take(3)",
        "range(10) | map(plus(2), parallel=2, ordered=false, seed=9)",
        "range(5) | global_shuffle(seed=7) | repeat | take(4)",
        "range(5) | enumerate | skip(1) | repeat(3) | unbatch",
        "range(1, 9, 2) | shuffle(4, reshuffle_each_iteration=false)",
        "range(3) | zip(range(9) | rename(value=\"w\") | skip(2)) | padded_batch(2, "
        "padding_value=-1)",
        "sample_from_datasets([range(3), range(5) | skip(1)], weights=[0.25, 0.75], seed=2) | "
        "batch(2)",
    };
    sl_registry *reg = registry();
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sl_dataset *ds;
        char err[512], printed[1024], canonical[1024];
        assert_int_equal(sl_pipeline_build(&ds, texts[i], reg, err, sizeof err), 0);
        sl_dataset_print(ds, printed, sizeof printed);
        sl_ast *ast;
        assert_int_equal(sl_pipeline_text_parse(texts[i], strlen(texts[i]), &ast, err, sizeof err),
                         0);
        sl_ast_print(ast, canonical, sizeof canonical);
        sl_ast_free(ast);
        if (strcmp(printed, canonical))
            fail_msg("dataset prints \"%s\", canonical text is \"%s\"", printed, canonical);
        /* and the printed text builds the same pipeline again */
        sl_dataset *again;
        assert_int_equal(sl_pipeline_build(&again, printed, reg, err, sizeof err), 0);
        char printed2[1024];
        sl_dataset_print(again, printed2, sizeof printed2);
        assert_string_equal(printed, printed2);
        sl_dataset_release(again);
        sl_dataset_release(ds);
    }
    sl_registry_free(reg);
}

static void test_errors_name_position_and_stage(void **state)
{
    static const struct {
        const char *text;
        int code;
        const char *has;
    } bad[] = {
        {"range(5) | frobnicate", SL_ERR_NOT_FOUND, "position 12: no stage called \"frobnicate\""},
        {"range(5) | map(square)", SL_ERR_NOT_FOUND, "no function called \"square\""},
        {"range(5) | plus(1)", SL_ERR_NOT_FOUND, "it is a map function: write map(...)"},
        {"batch(2)", SL_ERR_SYNTAX, "a pipeline starts with a source"},
        {"range(5) | range(3)", SL_ERR_SYNTAX, "a source must come first"},
        {"range(5) | batch(0)", SL_ERR_INVAL, "batch"},
        {"range(5) | batch(\"two\")", SL_ERR_TYPE, "batch: batch_size"},
        {"range(5) | shuffle()", SL_ERR_INVAL, "buffer_size"},
        {"range(5) | map(times(2), parallel=0)", SL_ERR_INVAL, "parallel must be auto or 1"},
        {"range(5) | map(times(\"x\"))", SL_ERR_TYPE, "times"},
        {"range(5) | filter(x) |", SL_ERR_SYNTAX, "position"},
        {"records(\"/nonexistent/*.sluice\")", -2, "no file matches"},
        {"range(5) | take(2) | global_shuffle", 0, NULL},
        {"range(5) | batch(2) | global_shuffle", SL_ERR_UNSUPPORTED, "random-access"},
        {"range(5) | zip(3)", SL_ERR_TYPE, "zip: expected a pipeline"},
        {"range(5) | rename(value=3)", SL_ERR_TYPE, "rename"},
    };
    sl_registry *reg = registry();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_dataset *ds;
        char err[512] = "";
        const int rc = sl_pipeline_build(&ds, bad[i].text, reg, err, sizeof err);
        if (rc != bad[i].code || (bad[i].has && !strstr(err, bad[i].has)))
            fail_msg("%s: rc %d (want %d), message \"%s\" (want \"%s\")", bad[i].text, rc,
                     bad[i].code, err, bad[i].has ? bad[i].has : "");
        sl_dataset_release(ds);
    }
    sl_registry_free(reg);
}

static void test_without_registry_no_functions(void **state)
{
    sl_dataset *ds;
    char err[256];
    assert_int_equal(sl_pipeline_build(&ds, "range(3) | map(times(2))", NULL, err, sizeof err),
                     SL_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no functions are registered"));
    assert_int_equal(sl_pipeline_build(&ds, "range(3) | batch(2)", NULL, err, sizeof err), 0);
    sl_dataset_release(ds);
}

static void test_select_names_a_missing_tensor(void **state)
{
    sl_dataset *ds;
    char err[256];
    assert_int_equal(
        sl_pipeline_build(&ds, "range(3) | select(\"value\", \"nope\")", NULL, err, sizeof err), 0);
    sl_iter *it;
    assert_int_equal(sl_iter_open(&it, ds, NULL), 0);
    sl_element e;
    assert_int_equal(sl_iter_next(it, &e), SL_ERR_NOT_FOUND);
    assert_string_equal(sl_iter_errmsg(it),
                        "select(\"value\", \"nope\"): element 0 has no tensor \"nope\": not found");
    sl_iter_close(it);
    sl_dataset_release(ds);
    assert_int_equal(
        sl_pipeline_build(&ds, "range(3) | select(\"value\", \"value\")", NULL, err, sizeof err),
        SL_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_from_text),
        cmocka_unit_test(test_dataset_text_is_the_canonical_text),
        cmocka_unit_test(test_errors_name_position_and_stage),
        cmocka_unit_test(test_without_registry_no_functions),
        cmocka_unit_test(test_select_names_a_missing_tensor),
    };
    return cmocka_run_group_tests(tests, sl_test_leak_setup, sl_test_leak_teardown);
}
