/*
 * JPEG encode on libjpeg-turbo's libjpeg API, for `sluice convert DIR --max-side` (images larger
 * than the limit are stored re-encoded at a smaller size).
 *
 * The encoder is libjpeg's baseline defaults with the quality asked: the standard tables scaled
 * by jpeg_set_quality, 4:2:0 chroma for RGB, JDCT_ISLOW, no Huffman optimisation; this is what
 * PIL's save(quality=q) writes, and it depends on nothing but the pixels and the quality, so a
 * conversion's output bytes do not depend on the machine's thread count.
 *
 * Output goes to a destination manager that grows one sl_malloc'd block (jpeg_mem_dest would
 * use plain malloc, which the allocation counters do not see); the block becomes the output
 * tensor's buffer without a copy. Error discipline as in jpeg_decode.c: error_exit longjmps back
 * here, the compressor is destroyed, nothing prints; every variable the error path needs lives
 * in a struct reached through a pointer.
 *
 * Threading: none; every call has its own compressor.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
/* jpeglib.h first: jerror.h needs its types. */
#include <jerror.h>

#include "image_internal.h"
#include "sluice/alloc.h"

typedef struct encoder {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_destination_mgr dest;
    jmp_buf jump;
    char text[JMSG_LENGTH_MAX];
    int created;  /* jpeg_create_compress ran */
    int code;     /* sluice code for the failure that jumped */
    uint8_t *buf; /* (cap) bytes, sl_malloc'd; the encoded file so far */
    size_t cap;
    const sl_tensor *src;
    int quality;
} encoder;

/* The first guess at the output size: about a bit per pixel, which most photos at quality 90
 * stay under; the buffer doubles when it is not enough. */
static size_t first_capacity(const sl_tensor *src)
{
    const size_t px = (size_t)src->shape[0] * (size_t)src->shape[1];
    return px / 8 + 4096;
}

static void on_error_exit(j_common_ptr cinfo)
{
    encoder *e = (encoder *)((char *)cinfo - offsetof(encoder, cinfo));
    (*cinfo->err->format_message)(cinfo, e->text);
    e->code = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? SL_ERR_NOMEM : SL_ERR_INVAL;
    longjmp(e->jump, 1);
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

static void dest_init(j_compress_ptr cinfo)
{
    encoder *e = (encoder *)((char *)cinfo - offsetof(encoder, cinfo));
    e->dest.next_output_byte = e->buf;
    e->dest.free_in_buffer = e->cap;
}

/* libjpeg calls this when the buffer is full (free_in_buffer == 0): the whole buffer is data. */
static boolean dest_grow(j_compress_ptr cinfo)
{
    encoder *e = (encoder *)((char *)cinfo - offsetof(encoder, cinfo));
    const size_t used = e->cap;
    uint8_t *n = sl_realloc(e->buf, 2 * e->cap);
    if (!n) {
        snprintf(e->text, sizeof e->text, "out of memory");
        e->code = SL_ERR_NOMEM;
        longjmp(e->jump, 1);
    }
    e->buf = n;
    e->cap *= 2;
    e->dest.next_output_byte = e->buf + used;
    e->dest.free_in_buffer = e->cap - used;
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo)
{
    (void)cinfo; /* the length is cap - free_in_buffer, read after jpeg_finish_compress */
}

/* The setjmp lives here, with nothing but e live across it. */
static int encode_protected(encoder *e)
{
    if (setjmp(e->jump))
        return e->code;
    j_compress_ptr ci = &e->cinfo;
    jpeg_create_compress(ci);
    e->created = 1;
    ci->dest = &e->dest;
    ci->image_height = (JDIMENSION)e->src->shape[0];
    ci->image_width = (JDIMENSION)e->src->shape[1];
    ci->input_components = (int)e->src->shape[2];
    ci->in_color_space = ci->input_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, e->quality, TRUE);
    ci->dct_method = JDCT_ISLOW;
    jpeg_start_compress(ci, TRUE);
    const size_t stride = (size_t)ci->image_width * (size_t)ci->input_components;
    const uint8_t *px = e->src->data;
    while (ci->next_scanline < ci->image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci->next_scanline * stride);
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    return 0;
}

static void release_block(void *user, void *data)
{
    (void)user;
    sl_free(data);
}

int sl_image_encode_jpeg(const sl_tensor *src, int quality, sl_tensor *out, char *err,
                         size_t errcap)
{
    sl_errmsg em = {{0}};
    memset(out, 0, sizeof *out);
    if (!src || src->dtype != SL_DTYPE_U8 || src->rank != 3 || src->shape[0] < 1 ||
        src->shape[1] < 1 || (src->shape[2] != 1 && src->shape[2] != 3) ||
        src->shape[0] > JPEG_MAX_DIMENSION || src->shape[1] > JPEG_MAX_DIMENSION || !src->data)
        return sl__image_err_out(
            sl__errmsg_raw(&em, SL_ERR_INVAL,
                           "jpeg encode: expected a uint8 (H, W, 1 or 3) image of at most "
                           "%d pixels a side",
                           (int)JPEG_MAX_DIMENSION),
            &em, err, errcap);
    if (quality < 1 || quality > 100)
        return sl__image_err_out(
            sl__errmsg_raw(&em, SL_ERR_INVAL, "jpeg encode: quality %d is not in 1..100", quality),
            &em, err, errcap);
    encoder *e = sl_calloc(1, sizeof *e);
    if (e)
        e->buf = sl_malloc(e->cap = first_capacity(src));
    if (!e || !e->buf) {
        if (e)
            sl_free(e);
        return sl__image_err_out(sl__errmsg_raw(&em, SL_ERR_NOMEM, "jpeg encode: out of memory"),
                                 &em, err, errcap);
    }
    e->src = src;
    e->quality = quality;
    e->cinfo.err = jpeg_std_error(&e->jerr);
    e->jerr.error_exit = on_error_exit;
    e->jerr.output_message = on_output_message;
    e->dest.init_destination = dest_init;
    e->dest.empty_output_buffer = dest_grow;
    e->dest.term_destination = dest_term;
    int rc = encode_protected(e);
    if (e->created)
        jpeg_destroy_compress(&e->cinfo);
    if (rc < 0) {
        sl__errmsg_raw(&em, rc, "jpeg encode: %s", e->text);
    } else {
        const size_t len = e->cap - e->dest.free_in_buffer;
        sl_buffer *b;
        rc = sl_buffer_wrap(&b, e->buf, e->cap, release_block, NULL);
        if (rc == 0) {
            e->buf = NULL; /* the buffer owns it now */
            const int64_t shape[1] = {(int64_t)len};
            rc = sl_tensor_view(out, SL_DTYPE_BYTES, 1, shape, b, 0);
            sl_buffer_release(b); /* the view holds its own reference */
        }
        if (rc < 0)
            sl__errmsg_raw(&em, rc, "jpeg encode: out of memory");
    }
    sl_free(e->buf);
    sl_free(e);
    return sl__image_err_out(rc, &em, err, errcap);
}
