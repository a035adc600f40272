/*
 * The image ops as map functions (sluice/ops_registry.h): one factory per name that reads the
 * call's arguments into an `op` (immutable once built, freed with the dataset), and one sl_map_fn
 * per kind that finds the tensor "image" in the element, replaces it with the op's result and
 * moves every other tensor through untouched.
 *
 * Random draws: every function of one map(...) draws from the element's one stream, ctx->rng,
 * in turn (the engine passes the same writable context to each), so that
 * `random_resized_crop, flip` takes the crop's draws and then flip's, exactly as the fused call
 * does (OPS.md).
 *
 * Threading: ops are read-only after their factory returns; the functions keep no state.
 */
#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/alloc.h"
#include "sluice/image.h"
#include "sluice/ops_registry.h"

typedef enum op_kind {
    OP_DECODE,
    OP_RANDOM_RESIZED_CROP,
    OP_CENTER_CROP,
    OP_RESIZE,
    OP_FLIP,
    OP_NORMALIZE,
    OP_FUSED,
} op_kind;

typedef struct op {
    op_kind kind;
    /* decode (and the decode half of OP_FUSED) */
    int strict, dct_scaling;
    uint64_t max_pixels;
    /* output size: w x h; resize with short_side > 0 scales the shorter side to it instead */
    int w, h, short_side;
    double scale[2], ratio[2]; /* random_resized_crop */
    double p;                  /* flip */
    sl_image_normalize_opts norm;
    sl_image_fused_opts fused; /* OP_FUSED */
} op;

static const char image_name[] = "image";

/* ---- elements ------------------------------------------------------------------------------ */

/* The element's "path" tensor as text for messages ("" when there is none). */
static void path_prefix(const sl_element *e, char *buf, size_t cap)
{
    buf[0] = '\0';
    const sl_tensor *t = sl_element_get(e, "path");
    if (t && (t->dtype == SL_DTYPE_BYTES || t->dtype == SL_DTYPE_U8) && t->rank == 1 && t->data)
        snprintf(buf, cap, "%.*s: ", (int)SL_MIN(t->shape[0], 300), (const char *)t->data);
}

/* Writes "<path: >what" into err and returns code. */
static int fail(const sl_element *e, int code, char *err, size_t errcap, const char *what)
{
    if (err && errcap) {
        char path[320];
        path_prefix(e, path, sizeof path);
        snprintf(err, errcap, "%s%s", path, what);
    }
    return code;
}

/* The encoded image of an element: "image" when it holds bytes, else "record". */
static int find_encoded(const sl_element *e, int *k, char *err, size_t errcap)
{
    int i = sl_element_find(e, image_name);
    if (i < 0 || (e->tensors[i].dtype != SL_DTYPE_BYTES && e->tensors[i].dtype != SL_DTYPE_U8))
        i = sl_element_find(e, "record");
    if (i < 0)
        return fail(e, SL_ERR_NOT_FOUND, err, errcap,
                    "no encoded image: expected a bytes tensor \"image\" or \"record\"");
    const sl_tensor *t = &e->tensors[i];
    if ((t->dtype != SL_DTYPE_BYTES && t->dtype != SL_DTYPE_U8) || t->rank != 1)
        return fail(e, SL_ERR_TYPE, err, errcap, "the encoded image must be a byte string");
    *k = i;
    return 0;
}

/* The decoded image of an element: "image", uint8 (H, W, C). Messages leave out the op's name:
 * the engine's text for the map (or the fused runner's prefix) carries it. */
static int find_pixels(const sl_element *e, int *k, char *err, size_t errcap)
{
    const int i = sl_element_find(e, image_name);
    if (i < 0)
        return fail(e, SL_ERR_NOT_FOUND, err, errcap, "the element has no tensor \"image\"");
    const sl_tensor *t = &e->tensors[i];
    if (t->dtype != SL_DTYPE_U8 || t->rank != 3 || t->shape[2] < 1 || t->shape[2] > 4) {
        char type[64], why[200];
        sl_tensor_format_type(t, type, sizeof type);
        snprintf(why, sizeof why, "\"image\" is %s, expected uint8 (H, W, C)%s", type,
                 t->dtype == SL_DTYPE_BYTES ? " (decode it first: decode_jpeg)"
                 : t->dtype != SL_DTYPE_U8  ? " (normalize comes last)"
                                            : "");
        return fail(e, SL_ERR_TYPE, err, errcap, why);
    }
    *k = i;
    return 0;
}

/* out takes every tensor of in, with tensor k replaced by *t (named "image"); in is left empty
 * and t zeroed. */
static void replace(sl_element *in, int k, sl_tensor *t, sl_element *out)
{
    *out = *in;
    memset(in, 0, sizeof *in);
    sl_tensor_release(&out->tensors[k]);
    out->tensors[k] = *t;
    out->names[k] = image_name;
    memset(t, 0, sizeof *t);
}

/* The one stream of this element's map run (see the file comment). */
static sl_rng *stream_of(sl_map_ctx *ctx)
{
    return &ctx->rng;
}

/* ---- the map functions -------------------------------------------------------------------- */

static int run_decode(const op *o, sl_element *in, sl_element *out, char *err, size_t errcap)
{
    int k;
    SL_TRY(find_encoded(in, &k, err, errcap));
    const sl_tensor *src = &in->tensors[k];
    const sl_image_decode_opts d = {.max_pixels = o->max_pixels, .strict = o->strict};
    sl_tensor img;
    char why[SL_ERRMSG_CAP] = "";
    const int rc =
        sl_image_decode(src->data, (size_t)src->shape[0], &d, &img, NULL, why, sizeof why);
    if (rc < 0)
        return fail(in, rc, err, errcap, why[0] ? why : sl_strerror(rc));
    replace(in, k, &img, out);
    return 0;
}

static int run_fused(const op *o, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                     size_t errcap)
{
    int k;
    SL_TRY(find_encoded(in, &k, err, errcap));
    const sl_tensor *src = &in->tensors[k];
    /* The output where the engine wants it (a row of the batch a fused batch() assembles), so
     * the pixels are written once; a fresh tensor otherwise. */
    sl_dtype dt;
    int64_t shape[3];
    sl_tensor img;
    int rc = sl_image_fused_out_type(&o->fused, &dt, shape);
    if (rc == 0)
        rc = sl_map_ctx_alloc(ctx, image_name, dt, 3, shape, &img);
    if (rc < 0)
        return fail(in, rc, err, errcap, sl_strerror(rc));
    char why[SL_ERRMSG_CAP] = "";
    rc = sl_image_decode_fused_into(src->data, (size_t)src->shape[0], &o->fused, stream_of(ctx),
                                    &img, NULL, NULL, why, sizeof why);
    if (rc < 0) {
        sl_tensor_release(&img);
        return fail(in, rc, err, errcap, why[0] ? why : sl_strerror(rc));
    }
    replace(in, k, &img, out);
    return 0;
}

/* The pixel ops: uint8 "image" in, a new tensor out. */
static int run_pixels(const op *o, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                      size_t errcap)
{
    int k;
    SL_TRY(find_pixels(in, &k, err, errcap));
    const sl_tensor *src = &in->tensors[k];
    const int W = (int)src->shape[1], H = (int)src->shape[0];
    sl_tensor t;
    memset(&t, 0, sizeof t);
    int rc = 0;
    switch (o->kind) {
    case OP_RANDOM_RESIZED_CROP: {
        sl_image_rect r;
        rc = sl_image_random_resized_crop_params(W, H, o->scale, o->ratio, stream_of(ctx), &r);
        if (rc == 0)
            rc = sl_image_resized_crop(src, &r, o->w, o->h, &t);
        break;
    }
    case OP_CENTER_CROP: {
        sl_image_rect r;
        sl_image_center_crop_params(W, H, o->w, o->h, &r);
        rc = sl_image_crop(src, &r, &t);
        break;
    }
    case OP_RESIZE: {
        int ow = o->w, oh = o->h;
        if (o->short_side > 0)
            sl_image_resize_size(W, H, o->short_side, &ow, &oh);
        if (ow < 1 || oh < 1)
            return fail(in, SL_ERR_INVAL, err, errcap, "the output would be empty");
        rc = sl_image_resize(src, ow, oh, &t);
        break;
    }
    case OP_FLIP:
        if (!sl_image_flip_draw(stream_of(ctx), o->p)) {
            *out = *in; /* not flipped: everything moves through */
            memset(in, 0, sizeof *in);
            return 0;
        }
        rc = sl_image_flip(src, &t);
        break;
    default: /* OP_NORMALIZE */
        rc = sl_image_normalize(src, &o->norm, &t);
        break;
    }
    if (rc < 0)
        return fail(in, rc, err, errcap, sl_strerror(rc));
    replace(in, k, &t, out);
    return 0;
}

static int run_op(void *user, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                  size_t errcap)
{
    const op *o = user;
    switch (o->kind) {
    case OP_DECODE:
        return run_decode(o, in, out, err, errcap);
    case OP_FUSED:
        return run_fused(o, ctx, in, out, err, errcap);
    default:
        return run_pixels(o, ctx, in, out, err, errcap);
    }
}

static void free_op(void *user)
{
    sl_free(user);
}

/* ---- arguments ---------------------------------------------------------------------------- */

enum { MAX_SIDE = 1 << 16 };

/* size: an int (square) or [h, w]. */
static int get_size(const sl_ast_call *c, const char *what, int *w, int *h, char *err,
                    size_t errcap)
{
    const sl_ast_value *v;
    SL_TRY(sl_ast_call_arg(c, 0, "size", true, &v, err, errcap));
    int64_t hw[2];
    if (v->kind == SL_AST_LIST) {
        if (v->as.list.count != 2)
            return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                                "%s: size is an int or [height, width]", what);
        for (int i = 0; i < 2; i++)
            SL_TRY(sl_ast_value_get_int(&v->as.list.items[i], what, &hw[i], err, errcap));
    } else {
        SL_TRY(sl_ast_value_get_int(v, what, &hw[0], err, errcap));
        hw[1] = hw[0];
    }
    for (int i = 0; i < 2; i++)
        if (hw[i] < 1 || hw[i] > MAX_SIDE)
            return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                                "%s: size must be 1 to %d, not %lld", what, MAX_SIDE,
                                (long long)hw[i]);
    *h = (int)hw[0];
    *w = (int)hw[1];
    return 0;
}

/* key=[lo, hi] with 0 < lo <= hi (v NULL: keep the defaults in out). */
static int get_range(const sl_ast_call *c, const char *key, const char *what, double out[2],
                     char *err, size_t errcap)
{
    const sl_ast_value *v;
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, key, false, &v, err, errcap));
    if (!v)
        return 0;
    if (v->kind != SL_AST_LIST || v->as.list.count != 2)
        return sl_ast_error(err, errcap, SL_ERR_TYPE, v->span, "%s: %s is a list [low, high]", what,
                            key);
    double r[2];
    for (int i = 0; i < 2; i++)
        SL_TRY(sl_ast_value_get_double(&v->as.list.items[i], what, &r[i], err, errcap));
    if (!(r[0] > 0 && r[0] <= r[1] && r[1] < 1e9))
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                            "%s: %s must satisfy 0 < low <= high", what, key);
    out[0] = r[0];
    out[1] = r[1];
    return 0;
}

/* An identifier or a string, for enumerated options (imagenet, float16, chw). */
static int get_word(const sl_ast_value *v, const char *what, const char **out, char *err,
                    size_t errcap)
{
    if (!v)
        return 0;
    if (v->kind == SL_AST_STRING) {
        size_t len;
        return sl_ast_value_get_string(v, what, out, &len, err, errcap);
    }
    return sl_ast_value_get_name(v, what, out, err, errcap);
}

/* A list of 1 to 4 numbers, for mean= and std=. */
static int get_channels(const sl_ast_call *c, const char *key, float out[4], int *n, char *err,
                        size_t errcap)
{
    const sl_ast_value *v;
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, key, false, &v, err, errcap));
    *n = 0;
    if (!v)
        return 0;
    if (v->kind != SL_AST_LIST || v->as.list.count < 1 || v->as.list.count > 4)
        return sl_ast_error(err, errcap, SL_ERR_TYPE, v->span,
                            "normalize: %s is a list of 1 to 4 numbers (one per channel)", key);
    for (size_t i = 0; i < v->as.list.count; i++) {
        double d;
        SL_TRY(sl_ast_value_get_double(&v->as.list.items[i], "normalize", &d, err, errcap));
        out[i] = (float)d;
    }
    /* One value stands for every channel, as torchvision broadcasts a 1-element list. */
    for (size_t i = v->as.list.count; i < 4; i++)
        out[i] = v->as.list.count == 1 ? out[0] : out[i];
    *n = (int)v->as.list.count;
    return 0;
}

static int parse_decode(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"strict", "dct_scaling", "max_pixels"};
    SL_TRY(sl_ast_call_check(c, 0, keys, 3, err, errcap));
    const sl_ast_value *v;
    bool strict = false, dct = true;
    int64_t max_pixels = 0;
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "strict", false, &v, err, errcap));
    SL_TRY(sl_ast_value_get_bool(v, "decode_jpeg: strict", &strict, err, errcap));
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "dct_scaling", false, &v, err, errcap));
    SL_TRY(sl_ast_value_get_bool(v, "decode_jpeg: dct_scaling", &dct, err, errcap));
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "max_pixels", false, &v, err, errcap));
    SL_TRY(sl_ast_value_get_int(v, "decode_jpeg: max_pixels", &max_pixels, err, errcap));
    if (max_pixels < 0)
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                            "decode_jpeg: max_pixels must be positive");
    o->kind = OP_DECODE;
    o->strict = strict;
    o->dct_scaling = dct;
    o->max_pixels = (uint64_t)max_pixels;
    return 0;
}

static int parse_random_resized_crop(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"size", "scale", "ratio"};
    SL_TRY(sl_ast_call_check(c, 1, keys, 3, err, errcap));
    o->kind = OP_RANDOM_RESIZED_CROP;
    SL_TRY(get_size(c, "random_resized_crop: size", &o->w, &o->h, err, errcap));
    o->scale[0] = 0.08;
    o->scale[1] = 1.0;
    o->ratio[0] = 3.0 / 4.0;
    o->ratio[1] = 4.0 / 3.0;
    SL_TRY(get_range(c, "scale", "random_resized_crop", o->scale, err, errcap));
    SL_TRY(get_range(c, "ratio", "random_resized_crop", o->ratio, err, errcap));
    return 0;
}

static int parse_center_crop(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"size"};
    SL_TRY(sl_ast_call_check(c, 1, keys, 1, err, errcap));
    o->kind = OP_CENTER_CROP;
    return get_size(c, "center_crop: size", &o->w, &o->h, err, errcap);
}

static int parse_resize(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"size"};
    SL_TRY(sl_ast_call_check(c, 1, keys, 1, err, errcap));
    o->kind = OP_RESIZE;
    SL_TRY(get_size(c, "resize: size", &o->w, &o->h, err, errcap));
    const sl_ast_value *v = sl_ast_call_positional(c, 0);
    if (!v)
        v = sl_ast_call_named(c, "size");
    if (v->kind != SL_AST_LIST)
        o->short_side = o->w; /* torchvision's Resize(int): the shorter side */
    return 0;
}

static int parse_flip(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"p"};
    SL_TRY(sl_ast_call_check(c, 1, keys, 1, err, errcap));
    const sl_ast_value *v;
    o->kind = OP_FLIP;
    o->p = 0.5;
    SL_TRY(sl_ast_call_arg(c, 0, "p", false, &v, err, errcap));
    SL_TRY(sl_ast_value_get_double(v, "flip: p", &o->p, err, errcap));
    if (!(o->p >= 0 && o->p <= 1))
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span, "flip: p must be in [0, 1]");
    return 0;
}

static int parse_normalize(const sl_ast_call *c, op *o, char *err, size_t errcap)
{
    static const char *const keys[] = {"preset", "dtype", "layout", "mean", "std"};
    SL_TRY(sl_ast_call_check(c, 1, keys, 5, err, errcap));
    const sl_ast_value *v;
    const char *preset = "imagenet", *dtype = "float32", *layout = "chw";
    SL_TRY(sl_ast_call_arg(c, 0, "preset", false, &v, err, errcap));
    SL_TRY(get_word(v, "normalize: preset", &preset, err, errcap));
    if (sl_image_normalize_preset(preset, &o->norm) < 0)
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                            "normalize: unknown preset \"%s\" (imagenet or none)", preset);
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "dtype", false, &v, err, errcap));
    SL_TRY(get_word(v, "normalize: dtype", &dtype, err, errcap));
    if (!strcmp(dtype, "float32") || !strcmp(dtype, "f32"))
        o->norm.dtype = SL_DTYPE_F32;
    else if (!strcmp(dtype, "float16") || !strcmp(dtype, "f16"))
        o->norm.dtype = SL_DTYPE_F16;
    else if (!strcmp(dtype, "uint8") || !strcmp(dtype, "u8"))
        o->norm.dtype = SL_DTYPE_U8;
    else
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                            "normalize: dtype is float32, float16 or uint8, not \"%s\"", dtype);
    SL_TRY(sl_ast_call_arg(c, SL_AST_NO_INDEX, "layout", false, &v, err, errcap));
    SL_TRY(get_word(v, "normalize: layout", &layout, err, errcap));
    if (!strcmp(layout, "chw"))
        o->norm.layout = SL_IMAGE_CHW;
    else if (!strcmp(layout, "hwc"))
        o->norm.layout = SL_IMAGE_HWC;
    else
        return sl_ast_error(err, errcap, SL_ERR_INVAL, v->span,
                            "normalize: layout is chw or hwc, not \"%s\"", layout);
    int n;
    SL_TRY(get_channels(c, "mean", o->norm.mean, &n, err, errcap));
    SL_TRY(get_channels(c, "std", o->norm.std, &n, err, errcap));
    for (int i = 0; i < 4; i++)
        if (!(o->norm.std[i] != 0))
            return sl_ast_error(err, errcap, SL_ERR_INVAL, c->span,
                                "normalize: std must not be zero");
    o->kind = OP_NORMALIZE;
    return 0;
}

/* ---- factories ---------------------------------------------------------------------------- */

typedef int (*parse_fn)(const sl_ast_call *c, op *o, char *err, size_t errcap);

static int make(parse_fn parse, const sl_ast_call *c, sl_map_def *out, char *err, size_t errcap)
{
    op *o = sl_calloc(1, sizeof *o);
    if (!o)
        return SL_ERR_NOMEM;
    const int rc = parse(c, o, err, errcap);
    if (rc < 0) {
        sl_free(o);
        return rc;
    }
    out->fn = run_op;
    out->user = o;
    out->free_user = free_op;
    return 0;
}

#define FACTORY(name)                                                                    \
    static int make_##name(void *user, const sl_ast_call *c, sl_map_def *out, char *err, \
                           size_t errcap)                                                \
    {                                                                                    \
        (void)user;                                                                      \
        return make(parse_##name, c, out, err, errcap);                                  \
    }
FACTORY(decode)
FACTORY(random_resized_crop)
FACTORY(center_crop)
FACTORY(resize)
FACTORY(flip)
FACTORY(normalize)
#undef FACTORY

int sl_ops_register(sl_registry *r)
{
    static const struct {
        const char *name;
        sl_map_factory factory;
        const char *summary;
    } ops[] = {
        {"decode_jpeg", make_decode,
         "decode_jpeg(strict=false, dct_scaling=true): JPEG/PNG bytes (\"image\" or \"record\") "
         "-> uint8 image (H, W, 3)"},
        {"random_resized_crop", make_random_resized_crop,
         "random_resized_crop(size, scale=[0.08, 1.0], ratio=[0.75, 1.3333]): torchvision's "
         "RandomResizedCrop"},
        {"center_crop", make_center_crop, "center_crop(size): size an int or [h, w]"},
        {"resize", make_resize, "resize(size): an int sets the shorter side, [h, w] both"},
        {"flip", make_flip, "flip(p=0.5): horizontal flip with probability p"},
        {"normalize", make_normalize,
         "normalize(imagenet|none, dtype=float32|float16|uint8, layout=chw|hwc, mean=[..], "
         "std=[..]): (x/255 - mean)/std"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(ops); i++)
        SL_TRY(sl_registry_add(r, ops[i].name, ops[i].factory, NULL, ops[i].summary));
    /* The builder asks sl_ops_fuse about every map's calls, so the decode-crop run fuses. */
    SL_TRY(sl_registry_add_fuser(r, sl_ops_fuse, NULL));
    return 0;
}

/* ---- fusion ------------------------------------------------------------------------------- */

/* The call of calls[i] when it is named `name`, else NULL. */
static const sl_ast_call *call_named(const sl_ast_value *calls, size_t n, size_t i,
                                     const char *name)
{
    if (i >= n || (calls[i].kind != SL_AST_CALL && calls[i].kind != SL_AST_IDENT))
        return NULL;
    return strcmp(calls[i].as.call.name, name) ? NULL : &calls[i].as.call;
}

int sl_ops_fuse(void *user, const sl_ast_value *calls, size_t n, size_t *used, sl_map_def *out,
                char *err, size_t errcap)
{
    (void)user;
    *used = 0;
    const sl_ast_call *dc = call_named(calls, n, 0, "decode_jpeg");
    const sl_ast_call *cc = call_named(calls, n, 1, "random_resized_crop");
    if (!dc || !cc)
        return 0;
    const sl_ast_call *fc = call_named(calls, n, 2, "flip");
    const sl_ast_call *nc = call_named(calls, n, fc ? 3 : 2, "normalize");
    const size_t k = 2 + (fc != NULL) + (nc != NULL);
    if (!fc && k < n)
        return 0; /* the fused call's flip draw would shift the next function's numbers */
    op d = {0}, crop = {0}, flip = {.p = 0}, norm = {0};
    SL_TRY(parse_decode(dc, &d, err, errcap));
    SL_TRY(parse_random_resized_crop(cc, &crop, err, errcap));
    if (fc)
        SL_TRY(parse_flip(fc, &flip, err, errcap));
    if (nc) {
        SL_TRY(parse_normalize(nc, &norm, err, errcap));
    } else { /* uint8 (H, W, 3), as the crop alone gives */
        norm.norm = (sl_image_normalize_opts){.dtype = SL_DTYPE_U8, .layout = SL_IMAGE_HWC};
        for (int i = 0; i < 4; i++)
            norm.norm.std[i] = 1;
    }
    op *o = sl_calloc(1, sizeof *o);
    if (!o)
        return SL_ERR_NOMEM;
    o->kind = OP_FUSED;
    o->fused = (sl_image_fused_opts){
        .out_w = crop.w,
        .out_h = crop.h,
        .crop_mode = SL_IMAGE_CROP_RANDOM_RESIZED,
        .scale = {crop.scale[0], crop.scale[1]},
        .ratio = {crop.ratio[0], crop.ratio[1]},
        .flip_p = fc ? flip.p : 0.0,
        .norm = norm.norm,
        .scales = d.dct_scaling ? SL_IMAGE_SCALES_FAST : 0x80u,
        .strict = d.strict,
        .max_pixels = d.max_pixels,
    };
    out->fn = run_op;
    out->user = o;
    out->free_user = free_op;
    *used = k;
    return 0;
}
