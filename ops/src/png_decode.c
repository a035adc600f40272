/*
 * PNG decode through libpng: every bit depth and colour type to RGB uint8. Palette entries
 * expand to their colours, gray replicates, alpha (an alpha channel or tRNS) is dropped as
 * PIL's convert("RGB") drops it, 16-bit samples keep their high byte (PIL's "RGB;16B"), and
 * interlaced files are de-interlaced by libpng.
 *
 * Error discipline as in jpeg_decode.c: libpng's error callback longjmps to the setjmp in this
 * file (it must: libpng prints to stderr when a handler returns), warnings are dropped, and
 * the state the error path frees lives behind a pointer. libpng allocates through sl_malloc
 * (png_create_read_struct_2), so its memory is counted like ours.
 *
 * The probe reads the IHDR fields directly (the first chunk, at a fixed offset) and walks the
 * chunk headers up to the first IDAT to see whether a tRNS chunk adds transparency.
 *
 * Threading: none; every call has its own png_struct.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "image_internal.h"
#include "sluice/alloc.h"

typedef struct pstate {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t len, pos;
    int truncated;
    int oom;
    png_bytep *rows; /* sl_malloc'd row pointers */
    sl_tensor out;
    char text[200];
} pstate;

static void on_error(png_structp png, png_const_charp msg)
{
    pstate *s = png_get_error_ptr(png);
    snprintf(s->text, sizeof s->text, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* never print */
}

static png_voidp on_malloc(png_structp png, png_alloc_size_t size)
{
    void *p = sl_malloc(size);
    if (!p) {
        pstate *s = png_get_mem_ptr(png);
        if (s)
            s->oom = 1;
    }
    return p;
}

static void on_free(png_structp png, png_voidp p)
{
    (void)png;
    sl_free(p);
}

static void on_read(png_structp png, png_bytep buf, size_t n)
{
    pstate *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        s->truncated = 1;
        png_error(png, "premature end of data");
    }
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int sl__png_probe(const void *data, size_t len, sl_image_info *info, sl_errmsg *em)
{
    const uint8_t *p = data;
    if (len < 33)
        return sl__errmsg_raw(em, SL_ERR_TRUNCATED, "png: file ends inside the header");
    if (load_be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
        return sl__errmsg_raw(em, SL_ERR_CORRUPT, "png: first chunk is not a valid IHDR");
    const uint32_t w = load_be32(p + 16), h = load_be32(p + 20);
    const int depth = p[24], type = p[25], interlace = p[28];
    static const int ok_depths[7][17] = {
        [0] = {[1] = 1, [2] = 1, [4] = 1, [8] = 1, [16] = 1},
        [2] = {[8] = 1, [16] = 1},
        [3] = {[1] = 1, [2] = 1, [4] = 1, [8] = 1},
        [4] = {[8] = 1, [16] = 1},
        [6] = {[8] = 1, [16] = 1},
    };
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX || type > 6 || depth > 16 ||
        !ok_depths[type][depth] || interlace > 1)
        return sl__errmsg_raw(em, SL_ERR_CORRUPT,
                              "png: impossible header (%ux%u, depth %d, colour type %d)", w, h,
                              depth, type);
    memset(info, 0, sizeof *info);
    info->format = SL_IMAGE_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->color = (type & 2) ? SL_IMAGE_COLOR_RGB : SL_IMAGE_COLOR_GRAY;
    info->has_alpha = (type & 4) ? 1 : 0;
    info->bit_depth = depth;
    info->progressive = interlace;
    /* Chunk headers after IHDR, up to the pixels: tRNS makes it transparent. */
    for (size_t at = 33; at + 8 <= len;) {
        const uint32_t n = load_be32(p + at);
        if (!memcmp(p + at + 4, "IDAT", 4) || n > len)
            break;
        if (!memcmp(p + at + 4, "tRNS", 4))
            info->has_alpha = 1;
        at += (size_t)n + 12;
    }
    return 0;
}

static int decode_body(pstate *s, const sl_image_decode_opts *opts, sl__region_fn region,
                       void *user, sl_tensor *out, sl_image_decoded *d, sl_errmsg *em)
{
    s->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, s, on_error, on_warning, s, on_malloc,
                                      on_free);
    if (!s->png)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "png: out of memory");
    s->info = png_create_info_struct(s->png);
    if (!s->info)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "png: out of memory");
    if (setjmp(png_jmpbuf(s->png))) {
        if (s->oom)
            return sl__errmsg_raw(em, SL_ERR_NOMEM, "png: out of memory");
        if (s->truncated)
            return sl__errmsg_raw(em, SL_ERR_TRUNCATED, "png: %s", s->text);
        return sl__errmsg_raw(em, SL_ERR_CORRUPT, "png: %s", s->text);
    }
    /* Our own pixel limit below is the one that applies. */
    png_set_user_limits(s->png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(s->png, s, on_read);
    png_read_info(s->png, s->info);

    memset(d, 0, sizeof *d);
    SL_TRY(sl__png_probe(s->data, s->len, &d->info, em));
    const sl_image_info *info = &d->info;
    const uint64_t max_px = opts->max_pixels ? opts->max_pixels : SL_IMAGE_DEFAULT_MAX_PIXELS;
    if ((uint64_t)info->width * (uint64_t)info->height > max_px)
        return sl__errmsg_raw(em, SL_ERR_TOO_LARGE, "png: %dx%d is more than %llu pixels",
                              info->width, info->height, (unsigned long long)max_px);
    sl_image_decode_opts o = *opts;
    if (region)
        SL_TRY(region(user, info, &o, em));
    sl_image_rect r = o.crop;
    if (r.w == 0)
        r = (sl_image_rect){0, 0, info->width, info->height};
    SL_TRY(sl__image_check_rect(&r, info->width, info->height, em));

    const int type = png_get_color_type(s->png, s->info);
    if (png_get_bit_depth(s->png, s->info) == 16)
        png_set_strip_16(s->png);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(s->png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(s->png);
        png_set_gray_to_rgb(s->png);
    }
    /* Palette expansion turns tRNS into an alpha channel too: drop it like a real one. */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(s->png, s->info, PNG_INFO_tRNS))
        png_set_strip_alpha(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    const size_t stride = (size_t)info->width * 3;
    if (png_get_rowbytes(s->png, s->info) != stride)
        return sl__errmsg_raw(em, SL_ERR_CORRUPT, "png: unexpected row size after conversion");

    const int64_t shape[3] = {info->height, info->width, 3};
    SL_TRY(sl_tensor_alloc(&s->out, SL_DTYPE_U8, 3, shape));
    s->rows = sl_malloc((size_t)info->height * sizeof *s->rows);
    if (!s->rows)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "png: out of memory");
    for (int y = 0; y < info->height; y++)
        s->rows[y] = (png_bytep)s->out.data + (size_t)y * stride;
    png_read_image(s->png, s->rows);
    /* The chunks after the pixels (and IEND) are not needed and not required. */
    d->scale_num = 8;
    d->rx = r.x;
    d->ry = r.y;
    d->rw = r.w;
    d->rh = r.h;
    *out = s->out;
    memset(&s->out, 0, sizeof s->out);
    return 0;
}

int sl__png_decode(const void *data, size_t len, const sl_image_decode_opts *opts,
                   sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                   sl_errmsg *em)
{
    static const sl_image_decode_opts defaults;
    if (!opts)
        opts = &defaults;
    pstate *const s = sl_calloc(1, sizeof *s);
    if (!s)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "png: out of memory");
    s->data = data;
    s->len = len;
    const int rc = decode_body(s, opts, region, user, out, d, em);
    sl_tensor_release(&s->out);
    if (s->png)
        png_destroy_read_struct(&s->png, s->info ? &s->info : NULL, NULL);
    sl_free(s->rows);
    sl_free(s);
    return rc;
}
