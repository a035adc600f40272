/* The image ops as map functions of the pipeline language (ops/glue): pipelines over a typed
 * sluice file of the committed test images give the shapes and dtypes asked, other tensors pass
 * through, every random draw comes from the element's stream in the documented order (so the
 * same seed gives the same pixels on 1 and 2 threads), the fused function equals the op-by-op
 * chain at full DCT scale, and corrupt images fail naming the element and the file. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/half.h"
#include "sluice/image.h"
#include "sluice/ops_registry.h"
#include "sluice/pipeline_build.h"
#include "sluice/record.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Images of good.sluice, in record order (all decodable; sizes vary, gray/CMYK/PNG included). */
static const char *const good_files[] = {
    "rgb420.jpg", "rgb422.jpg",       "rgb444.jpg",
    "gray.jpg",   "progressive.jpg",  "restart.jpg",
    "rgb8.png",   "corrupt/cmyk.jpg", "corrupt/png_named.jpg",
};
/* bad.sluice: element 1 is cut short, element 2 is text. */
static const char *const bad_files[] = {"rgb420.jpg", "corrupt/truncated.jpg", "corrupt/text.jpg"};

static char good_path[300], bad_path[300], opaque_path[300];

static uint8_t *load_image(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/images/%s", sl_test_data_dir(), name);
    uint8_t *data;
    assert_int_equal(sl_test_read_file(path, &data, len), 0);
    return data;
}

enum { OPAQUE, TYPED, TYPED_WITH_PATH };

/* Typed records image:bytes,label:int64 (label = 100 + i) and, with TYPED_WITH_PATH, path:bytes
 * (the image's name), or opaque records. */
static void write_images(const char *path, const char *const *names, size_t n, int kind)
{
    sl_schema *schema = NULL;
    if (kind != OPAQUE)
        assert_int_equal(sl_schema_parse(&schema,
                                         kind == TYPED ? "image:bytes,label:int64"
                                                       : "image:bytes,label:int64,path:bytes",
                                         NULL, 0),
                         0);
    const sl_record_writer_options o = {.schema = schema};
    sl_record_writer *w;
    assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *data = load_image(names[i], &len);
        if (kind != OPAQUE) {
            int64_t label = 100 + (int64_t)i;
            const int64_t nb = (int64_t)len, np = (int64_t)strlen(names[i]);
            sl_tensor t[3];
            sl_tensor_borrow(&t[0], SL_DTYPE_BYTES, 1, &nb, data);
            sl_tensor_borrow(&t[1], SL_DTYPE_I64, 0, NULL, &label);
            sl_tensor_borrow(&t[2], SL_DTYPE_BYTES, 1, &np, (void *)names[i]);
            assert_int_equal(sl_record_writer_write_fields(w, t), 0);
        } else {
            assert_int_equal(sl_record_writer_write(w, data, len), 0);
        }
        free(data);
    }
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
    sl_schema_free(schema);
}

static int group_setup(void **state)
{
    if (sl_test_dir_setup(state))
        return -1;
    snprintf(good_path, sizeof good_path, "%s/good.sluice", sl_test_dir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.sluice", sl_test_dir);
    snprintf(opaque_path, sizeof opaque_path, "%s/opaque.sluice", sl_test_dir);
    write_images(good_path, good_files, N_OF(good_files), TYPED);
    write_images(bad_path, bad_files, N_OF(bad_files), TYPED_WITH_PATH);
    write_images(opaque_path, good_files, 2, OPAQUE);
    return 0;
}

/* ---- running pipelines -------------------------------------------------------------------- */

typedef struct run {
    sl_dataset *ds;
    sl_iter *it;
    char err[1024];
} run;

/* Builds "records(FILE) | REST" (FILE: good, bad or opaque) with the ops registered. Returns the
 * build's code (err has the message). */
static int build(run *r, const char *file, const char *rest)
{
    memset(r, 0, sizeof *r);
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_ops_register(reg), 0);
    char text[2048];
    snprintf(text, sizeof text, "records(\"%s\") | %s", file, rest);
    const int rc = sl_pipeline_build(&r->ds, text, reg, r->err, sizeof r->err);
    sl_registry_free(reg);
    return rc;
}

static void open_run(run *r, const char *file, const char *rest, int threads,
                     sl_error_policy policy)
{
    const int rc = build(r, file, rest);
    if (rc)
        fail_msg("build failed: %s", r->err);
    const sl_iter_options o = {.threads = threads, .seed = 1, .on_error = policy};
    assert_int_equal(sl_iter_open(&r->it, r->ds, &o), 0);
}

static void close_run(run *r)
{
    sl_iter_close(r->it);
    sl_dataset_release(r->ds);
}

/* Every element's tensors, concatenated as bytes (type text, then data), for equality checks. */
static char *stream_bytes(const char *file, const char *rest, int threads, size_t *len)
{
    run r;
    open_run(&r, file, rest, threads, SL_ON_ERROR_FAIL);
    char *buf = NULL;
    size_t n = 0;
    sl_element e;
    int rc;
    while ((rc = sl_iter_next(r.it, &e)) == 0) {
        for (int k = 0; k < e.count; k++) {
            char type[128];
            const int tl = sl_tensor_format_type(&e.tensors[k], type, sizeof type);
            const size_t nb = sl_tensor_nbytes(&e.tensors[k]);
            buf = realloc(buf, n + (size_t)tl + nb + strlen(e.names[k]));
            memcpy(buf + n, e.names[k], strlen(e.names[k]));
            n += strlen(e.names[k]);
            memcpy(buf + n, type, (size_t)tl);
            n += (size_t)tl;
            memcpy(buf + n, e.tensors[k].data, nb);
            n += nb;
        }
        sl_element_release(&e);
    }
    if (rc != SL_EOF)
        fail_msg("pipeline failed: %s", sl_iter_errmsg(r.it));
    close_run(&r);
    *len = n;
    return buf;
}

static void assert_same_stream(const char *file, const char *a, int ta, const char *b, int tb)
{
    size_t la, lb;
    char *x = stream_bytes(file, a, ta, &la), *y = stream_bytes(file, b, tb, &lb);
    assert_true(la > 0);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

static void assert_shape(const sl_tensor *t, sl_dtype dt, int rank, const int64_t *shape)
{
    assert_non_null(t);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->shape[i], shape[i]);
}

/* ---- registry ----------------------------------------------------------------------------- */

static void test_register_adds_every_op_once(void **state)
{
    sl_registry *reg;
    assert_int_equal(sl_registry_create(&reg), 0);
    assert_int_equal(sl_ops_register(reg), 0);
    static const char *const names[] = {
        "decode_jpeg", "random_resized_crop", "center_crop", "resize", "flip", "normalize"};
    assert_int_equal(sl_registry_count(reg), N_OF(names));
    for (size_t i = 0; i < N_OF(names); i++) {
        assert_string_equal(sl_registry_name(reg, i), names[i]);
        assert_non_null(strstr(sl_registry_summary(reg, i), names[i]));
    }
    assert_int_equal(sl_ops_register(reg), SL_ERR_EXISTS);
    sl_registry_free(reg);
}

/* ---- single ops --------------------------------------------------------------------------- */

static void test_decode_replaces_image_and_keeps_the_rest(void **state)
{
    run r;
    open_run(&r, good_path, "map(decode_jpeg)", 1, SL_ON_ERROR_FAIL);
    for (size_t i = 0; i < N_OF(good_files); i++) {
        sl_element e;
        assert_int_equal(sl_iter_next(r.it, &e), 0);
        assert_int_equal(e.count, 2);
        assert_string_equal(e.names[0], "image");
        assert_string_equal(e.names[1], "label");
        size_t len;
        uint8_t *data = load_image(good_files[i], &len);
        sl_tensor want;
        assert_int_equal(sl_image_decode(data, len, NULL, &want, NULL, NULL, 0), 0);
        assert_shape(&e.tensors[0], SL_DTYPE_U8, 3, want.shape);
        assert_memory_equal(e.tensors[0].data, want.data, sl_tensor_nbytes(&want));
        assert_int_equal(*(const int64_t *)e.tensors[1].data, 100 + (int64_t)i);
        sl_tensor_release(&want);
        free(data);
        sl_element_release(&e);
    }
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), SL_EOF);
    close_run(&r);
}

static void test_decode_reads_opaque_records(void **state)
{
    run r;
    open_run(&r, opaque_path, "map(decode_jpeg)", 1, SL_ON_ERROR_FAIL);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), 0);
    assert_int_equal(e.count, 1);
    assert_string_equal(e.names[0], "image"); /* "record" became "image" */
    const int64_t want[3] = {167, 241, 3};
    assert_shape(&e.tensors[0], SL_DTYPE_U8, 3, want);
    sl_element_release(&e);
    close_run(&r);
}

static void test_training_chain_batches_float_chw(void **state)
{
    run r;
    open_run(&r, good_path,
             "map(decode_jpeg, random_resized_crop(224), flip, normalize(imagenet)) | batch(4)", 2,
             SL_ON_ERROR_FAIL);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), 0);
    const int64_t img[4] = {4, 3, 224, 224}, lab[1] = {4};
    assert_shape(sl_element_get(&e, "image"), SL_DTYPE_F32, 4, img);
    assert_shape(sl_element_get(&e, "label"), SL_DTYPE_I64, 1, lab);
    const int64_t *labels = sl_element_get(&e, "label")->data;
    for (int i = 0; i < 4; i++)
        assert_int_equal(labels[i], 100 + i);
    /* ImageNet-normalized pixels lie in [-0.485/0.229, (1-0.406)/0.225]. */
    const float *px = sl_element_get(&e, "image")->data;
    for (size_t i = 0; i < 4 * 3 * 224 * 224; i++)
        assert_true(px[i] >= -2.12f && px[i] <= 2.65f);
    sl_element_release(&e);
    close_run(&r);
}

static void test_normalize_float16_hwc(void **state)
{
    run r;
    open_run(&r, good_path,
             "map(decode_jpeg, center_crop(32), normalize(none, dtype=float16, "
             "layout=hwc))",
             1, SL_ON_ERROR_FAIL);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), 0);
    const int64_t want[3] = {32, 32, 3};
    assert_shape(sl_element_get(&e, "image"), SL_DTYPE_F16, 3, want);
    /* none: x / 255; the first pixel against the decode's own centre crop */
    size_t len;
    uint8_t *data = load_image(good_files[0], &len);
    sl_tensor full, crop;
    assert_int_equal(sl_image_decode(data, len, NULL, &full, NULL, NULL, 0), 0);
    sl_image_rect rc;
    sl_image_center_crop_params((int)full.shape[1], (int)full.shape[0], 32, 32, &rc);
    assert_int_equal(sl_image_crop(&full, &rc, &crop), 0);
    const uint16_t *h = sl_element_get(&e, "image")->data;
    for (int i = 0; i < 32 * 32 * 3; i++)
        assert_true(fabsf(sl_f16_to_f32(h[i]) - ((const uint8_t *)crop.data)[i] / 255.0f) < 1e-3f);
    sl_tensor_release(&crop);
    sl_tensor_release(&full);
    free(data);
    sl_element_release(&e);
    close_run(&r);
}

static void test_center_crop_and_resize_sizes(void **state)
{
    /* rgb420.jpg is 241 x 167: center_crop pads what it lacks; resize(int) sets the shorter
     * side (torchvision: 64 x int(64 * 241 / 167) = 92); resize([h, w]) sets both. */
    static const struct {
        const char *map;
        int64_t shape[3];
    } cases[] = {
        {"map(decode_jpeg, center_crop(224))", {224, 224, 3}},
        {"map(decode_jpeg, center_crop([100, 50]))", {100, 50, 3}},
        {"map(decode_jpeg, resize(64))", {64, 92, 3}},
        {"map(decode_jpeg, resize([20, 30]))", {20, 30, 3}},
        {"map(decode_jpeg, random_resized_crop([48, 64], scale=[0.5, 1.0]))", {48, 64, 3}},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        run r;
        open_run(&r, good_path, cases[i].map, 1, SL_ON_ERROR_FAIL);
        sl_element e;
        assert_int_equal(sl_iter_next(r.it, &e), 0);
        assert_shape(sl_element_get(&e, "image"), SL_DTYPE_U8, 3, cases[i].shape);
        sl_element_release(&e);
        close_run(&r);
    }
}

static void test_flip_p1_mirrors_and_p0_keeps(void **state)
{
    run a, b;
    open_run(&a, good_path, "map(decode_jpeg, flip(p=1))", 1, SL_ON_ERROR_FAIL);
    open_run(&b, good_path, "map(decode_jpeg, flip(0))", 1, SL_ON_ERROR_FAIL);
    sl_element ea, eb;
    assert_int_equal(sl_iter_next(a.it, &ea), 0);
    assert_int_equal(sl_iter_next(b.it, &eb), 0);
    const sl_tensor *fa = sl_element_get(&ea, "image"), *fb = sl_element_get(&eb, "image");
    const int64_t h = fa->shape[0], w = fa->shape[1];
    const uint8_t *pa = fa->data, *pb = fb->data;
    for (int64_t y = 0; y < h; y += 7)
        for (int64_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(pa[(y * w + x) * 3 + c], pb[(y * w + (w - 1 - x)) * 3 + c]);
    sl_element_release(&ea);
    sl_element_release(&eb);
    close_run(&a);
    close_run(&b);
}

/* ---- random draws ------------------------------------------------------------------------- */

/* The chain by hand: one stream per element keyed by (map seed, epoch 0, index), drawn by the
 * crop and then by flip, as OPS.md documents. */
static void test_draws_follow_the_element_stream_in_order(void **state)
{
    run r;
    open_run(
        &r, good_path,
        "map(decode_jpeg(dct_scaling=false), random_resized_crop(56), flip, normalize(imagenet), "
        "seed=7)",
        1, SL_ON_ERROR_FAIL);
    int flipped = 0;
    for (size_t i = 0; i < N_OF(good_files); i++) {
        sl_element e;
        assert_int_equal(sl_iter_next(r.it, &e), 0);
        size_t len;
        uint8_t *data = load_image(good_files[i], &len);
        sl_tensor full, crop, fl, want;
        assert_int_equal(sl_image_decode(data, len, NULL, &full, NULL, NULL, 0), 0);
        sl_rng rng;
        sl_rng_init(&rng, 7, 0, i);
        sl_image_rect rect;
        assert_int_equal(sl_image_random_resized_crop_params((int)full.shape[1], (int)full.shape[0],
                                                             NULL, NULL, &rng, &rect),
                         0);
        assert_int_equal(sl_image_resized_crop(&full, &rect, 56, 56, &crop), 0);
        const int flip = sl_image_flip_draw(&rng, 0.5);
        flipped += flip;
        if (flip)
            assert_int_equal(sl_image_flip(&crop, &fl), 0);
        else
            assert_int_equal(sl_tensor_copy(&fl, &crop), 0);
        sl_image_normalize_opts n;
        assert_int_equal(sl_image_normalize_preset("imagenet", &n), 0);
        assert_int_equal(sl_image_normalize(&fl, &n, &want), 0);
        const sl_tensor *got = sl_element_get(&e, "image");
        assert_int_equal(sl_tensor_nbytes(got), sl_tensor_nbytes(&want));
        assert_memory_equal(got->data, want.data, sl_tensor_nbytes(&want));
        sl_tensor_release(&want);
        sl_tensor_release(&fl);
        sl_tensor_release(&crop);
        sl_tensor_release(&full);
        free(data);
        sl_element_release(&e);
    }
    /* Both outcomes occur, so the comparison covered flipped and unflipped elements. */
    assert_true(flipped > 0 && flipped < (int)N_OF(good_files));
    close_run(&r);
}

static void test_same_seed_same_pixels_on_1_and_2_threads(void **state)
{
    assert_same_stream(good_path,
                       "map(decode_jpeg, random_resized_crop(64), flip, normalize(imagenet))", 1,
                       "map(decode_jpeg, random_resized_crop(64), flip, normalize(imagenet), "
                       "parallel=2)",
                       2);
}

/* ---- fusion ------------------------------------------------------------------------------- */

/* Parses "map(...)" and returns the tree (the map's calls are its first stage's arguments). */
static sl_ast *parse_map(const char *text, const sl_ast_call **map)
{
    sl_ast *ast;
    assert_int_equal(sl_pipeline_text_parse(text, strlen(text), &ast, NULL, 0), 0);
    *map = &sl_ast_root(ast)->stages[0];
    return ast;
}

static void test_fuse_covers_the_decode_crop_run(void **state)
{
    static const struct {
        const char *text;
        size_t used;
    } cases[] = {
        {"map(decode_jpeg, random_resized_crop(224), flip, normalize(imagenet))", 4},
        {"map(decode_jpeg, random_resized_crop(224), flip, resize(10))", 3},
        {"map(decode_jpeg, random_resized_crop(224), normalize)", 3},
        {"map(decode_jpeg, random_resized_crop(224))", 2},
        /* no flip and something after: the fused flip draw would move the next one's numbers */
        {"map(decode_jpeg, random_resized_crop(224), resize(10))", 0},
        {"map(decode_jpeg, center_crop(224))", 0},
        {"map(random_resized_crop(224), flip)", 0},
        {"map(decode_jpeg)", 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        const sl_ast_call *m;
        sl_ast *ast = parse_map(cases[i].text, &m);
        sl_map_def def = {0};
        size_t used = 99;
        char err[256] = "";
        assert_int_equal(sl_ops_fuse(NULL, m->args, m->nargs, &used, &def, err, sizeof err), 0);
        assert_int_equal(used, cases[i].used);
        assert_true((def.fn != NULL) == (used > 0));
        if (def.free_user)
            def.free_user(def.user);
        sl_ast_free(ast);
    }
}

static void test_fuse_reports_argument_errors(void **state)
{
    const sl_ast_call *m;
    sl_ast *ast = parse_map("map(decode_jpeg, random_resized_crop(224, scale=[0.9, 0.1]))", &m);
    sl_map_def def = {0};
    size_t used;
    char err[256] = "";
    assert_int_equal(sl_ops_fuse(NULL, m->args, m->nargs, &used, &def, err, sizeof err),
                     SL_ERR_INVAL);
    assert_non_null(strstr(err, "scale must satisfy 0 < low <= high"));
    assert_null(def.fn);
    sl_ast_free(ast);
}

/* Runs the fused function of `calls` (one map's text) over good.sluice through the engine. */
static char *fused_stream(const char *calls, size_t *len)
{
    const sl_ast_call *m;
    sl_ast *ast = parse_map(calls, &m);
    sl_map_def def = {0};
    size_t used;
    char err[256] = "";
    assert_int_equal(sl_ops_fuse(NULL, m->args, m->nargs, &used, &def, err, sizeof err), 0);
    assert_int_equal(used, m->nargs);
    sl_ast_free(ast);
    def.name = "fused";
    const char *patterns[] = {good_path};
    sl_dataset *src, *ds;
    assert_int_equal(sl_dataset_records(&src, patterns, 1, err, sizeof err), 0);
    const sl_map_options mo = {.parallel = 1, .seed = 7};
    assert_int_equal(sl_dataset_map(&ds, src, &def, &mo), 0);
    sl_dataset_release(src);
    sl_iter *it;
    const sl_iter_options o = {.threads = 1, .seed = 1};
    assert_int_equal(sl_iter_open(&it, ds, &o), 0);
    char *buf = NULL;
    size_t n = 0;
    sl_element e;
    while (sl_iter_next(it, &e) == 0) {
        const sl_tensor *t = sl_element_get(&e, "image");
        buf = realloc(buf, n + sl_tensor_nbytes(t));
        memcpy(buf + n, t->data, sl_tensor_nbytes(t));
        n += sl_tensor_nbytes(t);
        sl_element_release(&e);
    }
    sl_iter_close(it);
    sl_dataset_release(ds);
    *len = n;
    return buf;
}

/* The "image" tensors of a pipeline over good.sluice, concatenated. */
static char *image_stream(const char *text, size_t *len)
{
    run r;
    open_run(&r, good_path, text, 1, SL_ON_ERROR_FAIL);
    char *buf = NULL;
    size_t n = 0;
    sl_element e;
    while (sl_iter_next(r.it, &e) == 0) {
        const sl_tensor *t = sl_element_get(&e, "image");
        buf = realloc(buf, n + sl_tensor_nbytes(t));
        memcpy(buf + n, t->data, sl_tensor_nbytes(t));
        n += sl_tensor_nbytes(t);
        sl_element_release(&e);
    }
    close_run(&r);
    *len = n;
    return buf;
}

/* The same chain op by op through the pipeline text; decode in a map of its own, so nothing can
 * fuse it, with the same map seed (so the same element streams). */
static char *unfused_stream(const char *decode, const char *rest, size_t *len)
{
    char text[512];
    snprintf(text, sizeof text, "map(%s, seed=7) | map(%s, seed=7)", decode, rest);
    return image_stream(text, len);
}

static void test_fused_equals_op_by_op_at_full_scale(void **state)
{
    static const char *const tails[] = {
        "random_resized_crop(224), flip, normalize(imagenet)",
        ("random_resized_crop(96, scale=[0.2, 0.6]), flip(p=0.7), normalize(none, "
         "dtype=float16, layout=hwc)"),
        "random_resized_crop(64)",
    };
    for (size_t i = 0; i < N_OF(tails); i++) {
        char calls[512];
        snprintf(calls, sizeof calls, "map(decode_jpeg(dct_scaling=false), %s)", tails[i]);
        size_t la, lb;
        char *a = fused_stream(calls, &la);
        char *b = unfused_stream("decode_jpeg", tails[i], &lb);
        assert_true(la > 0);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        free(a);
        free(b);
    }
}

static void test_fused_with_dct_scaling_stays_close(void **state)
{
    /* Reduced-scale decode differs by at most 2 levels on average (OPS.md); uint8 output. */
    size_t la, lb;
    char *a =
        fused_stream("map(decode_jpeg, random_resized_crop(32, scale=[0.5, 1.0]), flip)", &la);
    char *b = unfused_stream("decode_jpeg", "random_resized_crop(32, scale=[0.5, 1.0]), flip", &lb);
    assert_int_equal(la, lb);
    double sum = 0;
    for (size_t i = 0; i < la; i++)
        sum += abs((int)(uint8_t)a[i] - (int)(uint8_t)b[i]);
    assert_true(sum / (double)la <= 2.0);
    free(a);
    free(b);
}

static void test_text_chain_equals_split_maps(void **state)
{
    /* At full scale the one-map chain (fused by the builder) and the split maps give the same
     * elements, every tensor included. */
    assert_same_stream(good_path,
                       "map(decode_jpeg(dct_scaling=false), random_resized_crop(64), flip, "
                       "normalize(imagenet), seed=3)",
                       1,
                       "map(decode_jpeg, seed=3) | map(random_resized_crop(64), flip, "
                       "normalize(imagenet), seed=3)",
                       1);
}

static void test_text_chain_runs_the_fused_function(void **state)
{
    /* With DCT scaling on, the pipeline text's chain gives exactly what sl_ops_fuse's function
     * gives (op by op it would differ): the builder ran the fused function. */
    static const char chain[] = "decode_jpeg, random_resized_crop(24, scale=[0.5, 1.0]), flip";
    char text[256];
    snprintf(text, sizeof text, "map(%s, seed=7)", chain);
    size_t la, lb;
    char *got = image_stream(text, &la);
    snprintf(text, sizeof text, "map(%s)", chain);
    char *want = fused_stream(text, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(got, want, la);
    free(got);
    free(want);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void expect_element_error(const char *rest, int code, const char *const *parts, size_t n)
{
    run r;
    open_run(&r, bad_path, rest, 1, SL_ON_ERROR_FAIL);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), 0);
    sl_element_release(&e);
    assert_int_equal(sl_iter_next(r.it, &e), code);
    const char *msg = sl_iter_errmsg(r.it);
    for (size_t i = 0; i < n; i++)
        if (!strstr(msg, parts[i]))
            fail_msg("message \"%s\" lacks \"%s\"", msg, parts[i]);
    close_run(&r);
}

static void test_truncated_image_names_element_and_file(void **state)
{
    static const char *const parts[] = {"element 1", "corrupt/truncated.jpg",
                                        "premature end of JPEG data"};
    expect_element_error("map(decode_jpeg)", SL_ERR_TRUNCATED, parts, N_OF(parts));
}

static void test_truncated_image_fails_a_decode_crop_chain(void **state)
{
    static const char *const parts[] = {"element 1", "corrupt/truncated.jpg", "premature end"};
    expect_element_error("map(decode_jpeg, random_resized_crop(32), flip)", SL_ERR_TRUNCATED, parts,
                         N_OF(parts));
}

static void test_fused_function_reports_the_decode_error(void **state)
{
    const sl_ast_call *m;
    sl_ast *ast = parse_map("map(decode_jpeg, random_resized_crop(32), flip)", &m);
    sl_map_def def = {0};
    size_t used;
    char err[256] = "";
    assert_int_equal(sl_ops_fuse(NULL, m->args, m->nargs, &used, &def, err, sizeof err), 0);
    sl_ast_free(ast);
    size_t len;
    uint8_t *data = load_image("corrupt/truncated.jpg", &len);
    static const char path[] = "cats/1.jpg";
    const int64_t nb = (int64_t)len, np = sizeof path - 1;
    sl_element in = {0}, out = {0};
    sl_tensor t;
    sl_tensor_borrow(&t, SL_DTYPE_BYTES, 1, &nb, data);
    assert_int_equal(sl_element_push(&in, "image", &t), 0);
    sl_tensor_borrow(&t, SL_DTYPE_BYTES, 1, &np, (void *)path);
    assert_int_equal(sl_element_push(&in, "path", &t), 0);
    sl_map_ctx ctx = {.index = 5};
    sl_rng_init(&ctx.rng, 1, 0, 5);
    assert_int_equal(def.fn(def.user, &ctx, &in, &out, err, sizeof err), SL_ERR_TRUNCATED);
    assert_string_equal(err, "cats/1.jpg: jpeg: premature end of JPEG data");
    assert_int_equal(out.count, 0);
    sl_element_release(&in);
    def.free_user(def.user);
    free(data);
}

static void test_skip_policy_drops_undecodable_images(void **state)
{
    run r;
    open_run(&r, bad_path, "map(decode_jpeg, center_crop(16))", 1, SL_ON_ERROR_SKIP);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), 0);
    assert_int_equal(*(const int64_t *)sl_element_get(&e, "label")->data, 100);
    const sl_tensor *path = sl_element_get(&e, "path"); /* passed through untouched */
    assert_int_equal(path->shape[0], 10);
    assert_memory_equal(path->data, "rgb420.jpg", 10);
    const int64_t img[3] = {16, 16, 3};
    assert_shape(sl_element_get(&e, "image"), SL_DTYPE_U8, 3, img);
    sl_element_release(&e);
    assert_int_equal(sl_iter_next(r.it, &e), SL_EOF);
    assert_int_equal(sl_iter_skipped(r.it), 2);
    close_run(&r);
}

static void test_ops_in_the_wrong_order_say_so(void **state)
{
    static const char *const undecoded[] = {"element 0", "flip", "decode it first"};
    run r;
    open_run(&r, good_path, "map(flip)", 1, SL_ON_ERROR_FAIL);
    sl_element e;
    assert_int_equal(sl_iter_next(r.it, &e), SL_ERR_TYPE);
    for (size_t i = 0; i < N_OF(undecoded); i++)
        assert_non_null(strstr(sl_iter_errmsg(r.it), undecoded[i]));
    close_run(&r);
    open_run(&r, good_path, "map(decode_jpeg, normalize, flip)", 1, SL_ON_ERROR_FAIL);
    assert_int_equal(sl_iter_next(r.it, &e), SL_ERR_TYPE);
    assert_non_null(strstr(sl_iter_errmsg(r.it), "normalize comes last"));
    close_run(&r);
}

static void test_bad_arguments_fail_the_build(void **state)
{
    static const struct {
        const char *map;
        int code;
        const char *msg;
    } cases[] = {
        {"map(random_resized_crop)", SL_ERR_INVAL, "size"},
        {"map(random_resized_crop(0))", SL_ERR_INVAL, "size must be 1 to"},
        {"map(random_resized_crop(224, ratio=[2, 1]))", SL_ERR_INVAL, "ratio must satisfy"},
        {"map(flip(p=2))", SL_ERR_INVAL, "p must be in [0, 1]"},
        {"map(normalize(foo))", SL_ERR_INVAL, "unknown preset \"foo\""},
        {"map(normalize(dtype=int8))", SL_ERR_INVAL, "float32, float16 or uint8"},
        {"map(normalize(layout=nhwc))", SL_ERR_INVAL, "chw or hwc"},
        {"map(center_crop([1, 2, 3]))", SL_ERR_INVAL, "int or [height, width]"},
        {"map(decode_jpeg(strict=1))", SL_ERR_TYPE, "strict"},
        {"map(decode_jpeg(quality=3))", SL_ERR_INVAL, "quality"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        run r;
        const int rc = build(&r, good_path, cases[i].map);
        if (rc != cases[i].code || !strstr(r.err, cases[i].msg))
            fail_msg("%s: got %d \"%s\"", cases[i].map, rc, r.err);
        assert_null(r.ds);
    }
}

/* ---- JPEG encode (sluice convert DIR --max-side) ------------------------------------------ */

static void test_encode_jpeg_round_trips(void **state)
{
    size_t len;
    uint8_t *data = load_image("rgb444.jpg", &len);
    sl_tensor img, enc, back;
    assert_int_equal(sl_image_decode(data, len, NULL, &img, NULL, NULL, 0), 0);
    assert_int_equal(sl_image_encode_jpeg(&img, 90, &enc, NULL, 0), 0);
    assert_int_equal(enc.dtype, SL_DTYPE_BYTES);
    assert_int_equal(sl_image_sniff(enc.data, (size_t)enc.shape[0]), SL_IMAGE_JPEG);
    assert_int_equal(sl_image_decode(enc.data, (size_t)enc.shape[0], NULL, &back, NULL, NULL, 0),
                     0);
    assert_int_equal(back.shape[0], img.shape[0]);
    assert_int_equal(back.shape[1], img.shape[1]);
    double sum = 0;
    for (size_t i = 0; i < sl_tensor_nbytes(&img); i++)
        sum += abs((int)((uint8_t *)img.data)[i] - (int)((uint8_t *)back.data)[i]);
    assert_true(sum / (double)sl_tensor_nbytes(&img) < 3.0); /* quality 90 */
    /* The same pixels give the same bytes. */
    sl_tensor again;
    assert_int_equal(sl_image_encode_jpeg(&img, 90, &again, NULL, 0), 0);
    assert_int_equal(again.shape[0], enc.shape[0]);
    assert_memory_equal(again.data, enc.data, (size_t)enc.shape[0]);
    sl_tensor_release(&again);
    sl_tensor_release(&back);
    sl_tensor_release(&enc);
    sl_tensor_release(&img);
    free(data);
}

static void test_encode_jpeg_keeps_gray_gray(void **state)
{
    sl_tensor gray, enc, back;
    const int64_t shape[3] = {9, 13, 1};
    assert_int_equal(sl_tensor_alloc(&gray, SL_DTYPE_U8, 3, shape), 0);
    memset(gray.data, 77, sl_tensor_nbytes(&gray));
    assert_int_equal(sl_image_encode_jpeg(&gray, 75, &enc, NULL, 0), 0);
    sl_image_info info;
    assert_int_equal(sl_image_probe(enc.data, (size_t)enc.shape[0], &info, NULL, 0), 0);
    assert_int_equal(info.color, SL_IMAGE_COLOR_GRAY);
    assert_int_equal(info.width, 13);
    assert_int_equal(info.height, 9);
    assert_int_equal(sl_image_decode(enc.data, (size_t)enc.shape[0], NULL, &back, NULL, NULL, 0),
                     0);
    assert_int_equal(((uint8_t *)back.data)[0], 77);
    sl_tensor_release(&back);
    sl_tensor_release(&enc);
    sl_tensor_release(&gray);
}

static void test_encode_jpeg_refuses_bad_input(void **state)
{
    sl_tensor img, enc;
    const int64_t shape[3] = {4, 4, 3};
    assert_int_equal(sl_tensor_alloc(&img, SL_DTYPE_U8, 3, shape), 0);
    memset(img.data, 0, sl_tensor_nbytes(&img));
    char err[128];
    assert_int_equal(sl_image_encode_jpeg(&img, 0, &enc, err, sizeof err), SL_ERR_INVAL);
    assert_string_equal(err, "jpeg encode: quality 0 is not in 1..100");
    assert_null(enc.buffer);
    img.shape[2] = 4; /* RGBA */
    img.shape[1] = 3;
    assert_int_equal(sl_image_encode_jpeg(&img, 90, &enc, NULL, 0), SL_ERR_INVAL);
    img.shape[2] = 3;
    img.shape[1] = 4;
    img.dtype = SL_DTYPE_I8;
    assert_int_equal(sl_image_encode_jpeg(&img, 90, &enc, NULL, 0), SL_ERR_INVAL);
    img.dtype = SL_DTYPE_U8;
    sl_tensor_release(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_adds_every_op_once),
        cmocka_unit_test(test_decode_replaces_image_and_keeps_the_rest),
        cmocka_unit_test(test_decode_reads_opaque_records),
        cmocka_unit_test(test_training_chain_batches_float_chw),
        cmocka_unit_test(test_normalize_float16_hwc),
        cmocka_unit_test(test_center_crop_and_resize_sizes),
        cmocka_unit_test(test_flip_p1_mirrors_and_p0_keeps),
        cmocka_unit_test(test_draws_follow_the_element_stream_in_order),
        cmocka_unit_test(test_same_seed_same_pixels_on_1_and_2_threads),
        cmocka_unit_test(test_fuse_covers_the_decode_crop_run),
        cmocka_unit_test(test_fuse_reports_argument_errors),
        cmocka_unit_test(test_fused_equals_op_by_op_at_full_scale),
        cmocka_unit_test(test_fused_with_dct_scaling_stays_close),
        cmocka_unit_test(test_text_chain_equals_split_maps),
        cmocka_unit_test(test_text_chain_runs_the_fused_function),
        cmocka_unit_test(test_truncated_image_names_element_and_file),
        cmocka_unit_test(test_truncated_image_fails_a_decode_crop_chain),
        cmocka_unit_test(test_fused_function_reports_the_decode_error),
        cmocka_unit_test(test_skip_policy_drops_undecodable_images),
        cmocka_unit_test(test_ops_in_the_wrong_order_say_so),
        cmocka_unit_test(test_bad_arguments_fail_the_build),
        cmocka_unit_test(test_encode_jpeg_round_trips),
        cmocka_unit_test(test_encode_jpeg_keeps_gray_gray),
        cmocka_unit_test(test_encode_jpeg_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, group_setup, sl_test_dir_teardown);
}
