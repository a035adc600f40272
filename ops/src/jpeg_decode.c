/*
 * JPEG decode on libjpeg-turbo's libjpeg API: header probe, DCT-domain downscaling,
 * region-of-interest decode (jpeg_crop_scanline for columns, jpeg_skip_scanlines for rows), and
 * conversion of every colour space libjpeg knows (gray, YCbCr, RGB, CMYK, YCCK) to RGB.
 *
 * Error discipline: libjpeg reports errors by calling error_exit, which must not return. Ours
 * longjmps back into the function that called setjmp, which destroys the decompressor and
 * returns a code, so no libjpeg error ever leaves this file and nothing is ever printed
 * (output_message and emit_message are replaced too). Data that ends before the pixels do is
 * an error (SL_ERR_TRUNCATED), because libjpeg would otherwise fill the missing rows with gray;
 * a baseline file missing only its trailing EOI marker decodes (see on_emit_message). Other
 * warnings (extraneous bytes before a marker, a bad Huffman code or restart marker it resyncs
 * past) are tolerated, as PIL, torchvision and tf.data do, unless opts->strict asks for
 * SL_ERR_CORRUPT.
 *
 * Every variable the error path needs lives in a struct reached through a pointer, never in a
 * local that changes between setjmp and longjmp (C11 7.13.2.1).
 *
 * libjpeg allocates through its own memory manager (plain malloc underneath: jmemnobs.c); its
 * pools are released by jpeg_destroy_decompress on every path. Our own buffers go through
 * sl_malloc.
 *
 * Threading: none; every call has its own decompressor.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
/* jpeglib.h first: jerror.h needs its types. */
#include <jerror.h>

#include "image_internal.h"
#include "sluice/alloc.h"

/* A progressive file may hold any number of scans, each a full pass over the coefficients; a
 * small hostile file can make decode take minutes. Real encoders emit about ten. */
enum { MAX_SCANS = 1000 };

typedef struct jerr {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    int code; /* sluice code for the failure that jumped */
    int strict;
    int eof_seen; /* the source reported the end of the data */
    char text[JMSG_LENGTH_MAX];
} jerr;

static int code_for_message(int msg_code)
{
    switch (msg_code) {
    case JWRN_JPEG_EOF:
    case JERR_INPUT_EOF:
    case JERR_INPUT_EMPTY:
        return SL_ERR_TRUNCATED;
    case JERR_NO_SOI:
        return SL_ERR_FORMAT;
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL:
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        return SL_ERR_UNSUPPORTED;
    case JERR_OUT_OF_MEMORY:
        return SL_ERR_NOMEM;
    default:
        return SL_ERR_CORRUPT;
    }
}

static void on_error_exit(j_common_ptr cinfo)
{
    jerr *e = (jerr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    /* Any failure after the data ran out (e.g. no image before the fake EOI) is truncation. */
    e->code = e->eof_seen ? SL_ERR_TRUNCATED : code_for_message(cinfo->err->msg_code);
    snprintf(e->text, sizeof e->text, "%s%s", e->eof_seen ? "premature end of JPEG data: " : "",
             text);
    longjmp(e->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    jerr *e = (jerr *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    cinfo->err->num_warnings++;
    const int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF) {
        /* The source ran dry. libjpeg reads ahead, so this alone does not mean pixels are
         * missing: a baseline file that lacks only its EOI marker still has every bit. Pixels
         * are missing when the entropy decoder then needs bits it cannot have (HIT_MARKER
         * below), or in a progressive file, whose scans are all read up front and where a cut
         * between two scans leaves no other trace. */
        e->eof_seen = 1;
        if (!((j_decompress_ptr)cinfo)->progressive_mode)
            return;
    } else if (code == JWRN_HIT_MARKER && e->eof_seen) {
        /* fall through to the truncation error */
    } else if (!e->strict) {
        return;
    }
    if (e->eof_seen) {
        snprintf(e->text, sizeof e->text, "premature end of JPEG data");
        e->code = SL_ERR_TRUNCATED;
    } else {
        (*cinfo->err->format_message)(cinfo, e->text);
        e->code = SL_ERR_CORRUPT;
    }
    longjmp(e->jump, 1);
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

static void on_progress(j_common_ptr cinfo)
{
    const j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && d->input_scan_number > MAX_SCANS) {
        jerr *e = (jerr *)cinfo->err;
        snprintf(e->text, sizeof e->text, "more than %d progressive scans", MAX_SCANS);
        e->code = SL_ERR_UNSUPPORTED;
        longjmp(e->jump, 1);
    }
}

/* Set up before setjmp; libjpeg never touches these fields on its own. */
static void jerr_init(jerr *e, struct jpeg_decompress_struct *cinfo, int strict)
{
    cinfo->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->pub.output_message = on_output_message;
    e->code = 0;
    e->strict = strict;
    e->eof_seen = 0;
    e->text[0] = '\0';
}

static sl_image_color color_of(J_COLOR_SPACE cs)
{
    switch (cs) {
    case JCS_GRAYSCALE:
        return SL_IMAGE_COLOR_GRAY;
    case JCS_CMYK:
    case JCS_YCCK:
        return SL_IMAGE_COLOR_CMYK;
    default:
        return SL_IMAGE_COLOR_RGB;
    }
}

static void info_from_header(const struct jpeg_decompress_struct *cinfo, sl_image_info *info)
{
    memset(info, 0, sizeof *info);
    info->format = SL_IMAGE_JPEG;
    info->width = (int)cinfo->image_width;
    info->height = (int)cinfo->image_height;
    info->color = color_of(cinfo->jpeg_color_space);
    info->bit_depth = cinfo->data_precision;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
}

/* State the error path reads: in memory the callee writes through, not in registers. */
typedef struct jstate {
    struct jpeg_decompress_struct cinfo;
    jerr err;
    uint8_t *row;  /* sl_malloc'd row buffer when the output cannot take rows directly */
    int created;   /* jpeg_create_decompress ran */
    sl_tensor out; /* released on failure */
    struct {
        const void *data;
        size_t len;
        const sl_image_decode_opts *opts;
        sl__region_fn region;
        void *user;
        sl_tensor *out;
        sl_image_decoded *d;
    } a; /* the call's arguments, kept out of registers across setjmp */
} jstate;

static void jstate_cleanup(jstate *s)
{
    if (s->created)
        jpeg_destroy_decompress(&s->cinfo);
    s->created = 0;
    sl_free(s->row);
    s->row = NULL;
}

static int fail_from_jump(jstate *s, sl_errmsg *em)
{
    const int code = s->err.code ? s->err.code : SL_ERR_CORRUPT;
    return sl__errmsg_raw(em, code, "jpeg: %s", s->err.text);
}

static int probe_protected(jstate *s, sl_image_info *info, sl_errmsg *em)
{
    if (setjmp(s->err.jump))
        return fail_from_jump(s, em);
    jpeg_create_decompress(&s->cinfo);
    s->created = 1;
    jpeg_mem_src(&s->cinfo, (const unsigned char *)s->a.data, (unsigned long)s->a.len);
    jpeg_read_header(&s->cinfo, TRUE);
    info_from_header(&s->cinfo, info);
    return 0;
}

int sl__jpeg_probe(const void *data, size_t len, sl_image_info *info, sl_errmsg *em)
{
    jstate *s = sl_calloc(1, sizeof *s);
    if (!s)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "jpeg: out of memory");
    s->a.data = data;
    s->a.len = len;
    jerr_init(&s->err, &s->cinfo, 0);
    const int rc = probe_protected(s, info, em);
    jstate_cleanup(s);
    sl_free(s);
    return rc;
}

/* Smallest allowed M in 1..8 with region * M/8 >= (min_w, min_h); 8 when none is. */
static int pick_scale(const struct jpeg_decompress_struct *ci, const sl_image_decode_opts *o,
                      int rw, int rh)
{
    if (o->min_w <= 0 && o->min_h <= 0)
        return 8;
    unsigned allowed = (o->scales ? o->scales : SL_IMAGE_SCALES_FAST) | 0x80u;
    /* With chroma subsampled in one direction only (4:2:2, 4:4:0), libjpeg-turbo cannot
     * enlarge the chroma IDCT to match below 1/2 and falls back to coarse chroma upsampling:
     * measured 2.8 (1/4) and 4.6 (1/8) levels mean error against decode-then-area-resize on a
     * photo, against under 1 for 4:2:0 and 4:4:4. Those images stop at 1/2. */
    if (ci->num_components >= 3 && ci->max_h_samp_factor != ci->max_v_samp_factor)
        allowed &= ~0x07u;
    for (int m = 1; m < 8; m++) {
        if (!(allowed & (1u << (m - 1))))
            continue;
        if ((int64_t)rw * m >= (int64_t)o->min_w * 8 && (int64_t)rh * m >= (int64_t)o->min_h * 8)
            return m;
    }
    return 8;
}

/* CMYK as libjpeg returns it -> RGB. With an Adobe marker the samples are stored inverted
 * (Photoshop's convention): 255 means no ink, so R = C*K/255; without one, R = (255-C)(255-K)/255.
 */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int n, int inverted)
{
    for (int i = 0; i < n; i++, in += 4, out += 3) {
        unsigned c = in[0], m = in[1], y = in[2], k = in[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        out[0] = (uint8_t)((c * k + 127) / 255);
        out[1] = (uint8_t)((m * k + 127) / 255);
        out[2] = (uint8_t)((y * k + 127) / 255);
    }
}

static int decode_body(jstate *s, const void *data, size_t len, const sl_image_decode_opts *opts,
                       sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                       sl_errmsg *em)
{
    struct jpeg_decompress_struct *ci = &s->cinfo;
    jpeg_create_decompress(ci);
    s->created = 1;
    s->err.progress.progress_monitor = on_progress;
    ci->progress = &s->err.progress;
    jpeg_mem_src(ci, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(ci, TRUE);

    memset(d, 0, sizeof *d);
    info_from_header(ci, &d->info);
    const sl_image_info *info = &d->info;
    const uint64_t max_px = opts->max_pixels ? opts->max_pixels : SL_IMAGE_DEFAULT_MAX_PIXELS;
    if ((uint64_t)info->width * (uint64_t)info->height > max_px)
        return sl__errmsg_raw(em, SL_ERR_TOO_LARGE, "jpeg: %dx%d is more than %llu pixels",
                              info->width, info->height, (unsigned long long)max_px);
    sl_image_decode_opts o = *opts;
    if (region)
        SL_TRY(region(user, info, &o, em));
    sl_image_rect r = o.crop;
    if (r.w == 0)
        r = (sl_image_rect){0, 0, info->width, info->height};
    SL_TRY(sl__image_check_rect(&r, info->width, info->height, em));

    const int m = pick_scale(ci, &o, r.w, r.h);
    const int cmyk = info->color == SL_IMAGE_COLOR_CMYK;
    ci->scale_num = (unsigned)m;
    ci->scale_denom = 8;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
    /* TurboJPEG's defaults, spelled out: tjDecompress2 with flags 0 uses exactly these, and the
     * tests hold full-scale output to be byte-identical with it. */
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(ci);

    /* The region in output (scaled) pixels, and the whole pixels covering it. */
    const double f = m / 8.0;
    const double sx0 = r.x * f, sy0 = r.y * f, sx1 = (r.x + r.w) * f, sy1 = (r.y + r.h) * f;
    const int ox = (int)floor(sx0), oy = (int)floor(sy0);
    const int ow = SL_MIN((int)ceil(sx1), (int)ci->output_width) - ox;
    const int oh = SL_MIN((int)ceil(sy1), (int)ci->output_height) - oy;
    d->scale_num = m;
    d->rx = sx0 - ox;
    d->ry = sy0 - oy;
    d->rw = sx1 - sx0;
    d->rh = sy1 - sy0;

    /* Columns: libjpeg moves the window's left edge down to an iMCU boundary; we drop the
     * extra columns on copy. Its chroma upsampler treats the window's edges as the image's
     * (replicating the edge sample), so the window asked for is wider than the region by a
     * margin on each side: then every column we keep is upsampled from its real neighbours and
     * matches a full decode. One column on the left pushes a region that starts exactly on an
     * iMCU boundary into the previous iMCU; three on the right cover the next chroma sample
     * of 2x-subsampled chroma. */
    enum { LEFT_MARGIN = 1, RIGHT_MARGIN = 3 };
    JDIMENSION xoff = (JDIMENSION)SL_MAX(0, ox - LEFT_MARGIN);
    JDIMENSION cw = (JDIMENSION)(SL_MIN((int)ci->output_width, ox + ow + RIGHT_MARGIN) - (int)xoff);
    if (cw < ci->output_width)
        jpeg_crop_scanline(ci, &xoff, &cw);
    else
        xoff = 0;
    int skip_cols = ox - (int)xoff;
    /* A region callback's caller (the fused path) resamples only inside d->rx.., so it takes
     * the whole window: rows go straight into the tensor, the region moves right by the extra
     * columns, and the per-row copy (about a tenth of a fused decode's time) is gone. */
    int out_w = ow;
    if (region && !cmyk) {
        out_w = (int)cw;
        d->rx += skip_cols;
        skip_cols = 0;
    }
    const int direct = !cmyk && skip_cols == 0 && (int)cw == out_w;

    const int64_t shape[3] = {oh, out_w, 3};
    SL_TRY(sl_tensor_alloc(&s->out, SL_DTYPE_U8, 3, shape));
    if (!direct) {
        s->row = sl_malloc((size_t)cw * (size_t)ci->output_components);
        if (!s->row)
            return sl__errmsg_raw(em, SL_ERR_NOMEM, "jpeg: out of memory");
    }
    if (oy > 0 && jpeg_skip_scanlines(ci, (JDIMENSION)oy) != (JDIMENSION)oy)
        return sl__errmsg_raw(em, SL_ERR_TRUNCATED, "jpeg: rows end early");

    uint8_t *dst = s->out.data;
    const size_t out_stride = (size_t)out_w * 3;
    for (int y = 0; y < oh;) {
        if (direct) {
            JSAMPROW rows[16];
            const int n = SL_MIN(16, oh - y);
            for (int i = 0; i < n; i++)
                rows[i] = dst + (size_t)(y + i) * out_stride;
            const JDIMENSION got = jpeg_read_scanlines(ci, rows, (JDIMENSION)n);
            if (got == 0)
                return sl__errmsg_raw(em, SL_ERR_TRUNCATED, "jpeg: rows end early");
            y += (int)got;
            continue;
        }
        JSAMPROW row = s->row;
        if (jpeg_read_scanlines(ci, &row, 1) != 1)
            return sl__errmsg_raw(em, SL_ERR_TRUNCATED, "jpeg: rows end early");
        uint8_t *drow = dst + (size_t)y * out_stride;
        if (cmyk)
            cmyk_to_rgb(s->row + (size_t)skip_cols * 4, drow, ow, ci->saw_Adobe_marker);
        else
            memcpy(drow, s->row + (size_t)skip_cols * 3, out_stride);
        y++;
    }
    /* Rows below the region are never decoded; jpeg_destroy_decompress abandons them. The
     * trailer (EOI) is not required either: a file whose pixels are all present decodes. */
    *out = s->out;
    memset(&s->out, 0, sizeof s->out);
    return 0;
}

/* The setjmp lives here, with nothing but s live across it. */
static int decode_protected(jstate *s, sl_errmsg *em)
{
    if (setjmp(s->err.jump))
        return fail_from_jump(s, em);
    return decode_body(s, s->a.data, s->a.len, s->a.opts, s->a.region, s->a.user, s->a.out, s->a.d,
                       em);
}

int sl__jpeg_decode(const void *data, size_t len, const sl_image_decode_opts *opts,
                    sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                    sl_errmsg *em)
{
    static const sl_image_decode_opts defaults;
    jstate *s = sl_calloc(1, sizeof *s);
    if (!s)
        return sl__errmsg_raw(em, SL_ERR_NOMEM, "jpeg: out of memory");
    s->a.data = data;
    s->a.len = len;
    s->a.opts = opts ? opts : &defaults;
    s->a.region = region;
    s->a.user = user;
    s->a.out = out;
    s->a.d = d;
    jerr_init(&s->err, &s->cinfo, s->a.opts->strict);
    const int rc = decode_protected(s, em);
    sl_tensor_release(&s->out);
    jstate_cleanup(s);
    sl_free(s);
    return rc;
}
