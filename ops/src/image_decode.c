/*
 * The format-neutral face of decoding: magic-byte sniffing (the file name never decides: a PNG
 * called .jpg decodes as PNG), the header probe, and sl_image_decode, which dispatches to
 * jpeg_decode.c or png_decode.c and, for PNG (always decoded whole), copies the requested
 * region out.
 *
 * Threading: none; pure functions of their arguments.
 */
#include <stdio.h>
#include <string.h>

#include "image_internal.h"
#include "sluice/alloc.h"

const char *sl_image_format_name(sl_image_format f)
{
    switch (f) {
    case SL_IMAGE_JPEG:
        return "jpeg";
    case SL_IMAGE_PNG:
        return "png";
    case SL_IMAGE_GIF:
        return "gif";
    case SL_IMAGE_BMP:
        return "bmp";
    case SL_IMAGE_WEBP:
        return "webp";
    case SL_IMAGE_TIFF:
        return "tiff";
    default:
        return "unknown";
    }
}

sl_image_format sl_image_sniff(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return SL_IMAGE_JPEG;
    if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return SL_IMAGE_PNG;
    if (len >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return SL_IMAGE_GIF;
    if (len >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
        return SL_IMAGE_WEBP;
    if (len >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4)))
        return SL_IMAGE_TIFF;
    if (len >= 14 && p[0] == 'B' && p[1] == 'M')
        return SL_IMAGE_BMP;
    return SL_IMAGE_UNKNOWN;
}

int sl__image_err_out(int rc, const sl_errmsg *em, char *err, size_t errcap)
{
    if (err && errcap)
        snprintf(err, errcap, "%s", rc < 0 ? em->text : "");
    return rc;
}

int sl__image_check_rect(const sl_image_rect *r, int width, int height, sl_errmsg *em)
{
    if (r->x < 0 || r->y < 0 || r->w <= 0 || r->h <= 0 || r->x > width - r->w ||
        r->y > height - r->h)
        return sl__errmsg_raw(em, SL_ERR_RANGE,
                              "region %dx%d at (%d, %d) is not inside the %dx%d image", r->w, r->h,
                              r->x, r->y, width, height);
    return 0;
}

/* SL_ERR_FORMAT or SL_ERR_UNSUPPORTED for anything that is not JPEG or PNG. */
static int not_decodable(const void *data, size_t len, sl_image_format f, sl_errmsg *em)
{
    if (len == 0)
        return sl__errmsg_raw(em, SL_ERR_FORMAT, "not an image: empty input");
    if (f != SL_IMAGE_UNKNOWN)
        return sl__errmsg_raw(em, SL_ERR_UNSUPPORTED, "%s image: only JPEG and PNG are decoded",
                              sl_image_format_name(f));
    const uint8_t *p = data;
    return sl__errmsg_raw(
        em, SL_ERR_FORMAT,
        "not an image: no JPEG or PNG signature (starts with %02x %02x %02x %02x)", p[0],
        len > 1 ? p[1] : 0, len > 2 ? p[2] : 0, len > 3 ? p[3] : 0);
}

int sl__image_decode_any(const void *data, size_t len, const sl_image_decode_opts *opts,
                         sl__region_fn region, void *user, sl_tensor *out, sl_image_decoded *d,
                         sl_errmsg *em)
{
    const sl_image_format f = sl_image_sniff(data, len);
    if (f == SL_IMAGE_JPEG)
        return sl__jpeg_decode(data, len, opts, region, user, out, d, em);
    if (f == SL_IMAGE_PNG)
        return sl__png_decode(data, len, opts, region, user, out, d, em);
    return not_decodable(data, len, f, em);
}

int sl_image_probe(const void *data, size_t len, sl_image_info *info, char *err, size_t errcap)
{
    sl_errmsg em = {{0}};
    int rc;
    if (!data && len)
        rc = sl__errmsg_raw(&em, SL_ERR_INVAL, "image probe: NULL data");
    else {
        const sl_image_format f = sl_image_sniff(data, len);
        if (f == SL_IMAGE_JPEG)
            rc = sl__jpeg_probe(data, len, info, &em);
        else if (f == SL_IMAGE_PNG)
            rc = sl__png_probe(data, len, info, &em);
        else
            rc = not_decodable(data, len, f, &em);
    }
    return sl__image_err_out(rc, &em, err, errcap);
}

int sl_image_decode(const void *data, size_t len, const sl_image_decode_opts *opts, sl_tensor *out,
                    sl_image_decoded *decoded, char *err, size_t errcap)
{
    sl_errmsg em = {{0}};
    sl_image_decoded local;
    sl_image_decoded *d = decoded ? decoded : &local;
    memset(out, 0, sizeof *out);
    if (!data && len)
        return sl__image_err_out(sl__errmsg_raw(&em, SL_ERR_INVAL, "image decode: NULL data"), &em,
                                 err, errcap);
    sl_tensor full;
    int rc = sl__image_decode_any(data, len, opts, NULL, NULL, &full, d, &em);
    if (rc < 0)
        return sl__image_err_out(rc, &em, err, errcap);
    /* PNG decodes whole: cut the region out so both formats return the same thing. */
    if (d->info.format == SL_IMAGE_PNG && opts && opts->crop.w != 0) {
        rc = sl_image_crop(&full, &opts->crop, out);
        sl_tensor_release(&full);
        if (rc < 0)
            return sl__image_err_out(sl__errmsg_raw(&em, rc, "png: out of memory"), &em, err,
                                     errcap);
        d->rx = d->ry = 0;
    } else {
        *out = full;
    }
    return sl__image_err_out(0, &em, err, errcap);
}
