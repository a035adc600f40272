/*
 * Fuzz target for ops/ image decoding. Every input goes through:
 *   probe; full decode; a region decode at a DCT scale (region and minimum size taken from the
 *   first input bytes); and the fused path (random resized crop to 24x24, float16 CHW).
 * Properties: no crash, no sanitizer report, no leaked sluice allocation; every failure is a
 * sluice error code with a non-empty message; a successful decode has the probed size, and a
 * region decode the region's size at full scale.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/image.h"

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

/* 4 MP: enough for every real seed, small enough that a hostile header cannot make a run slow. */
static const uint64_t max_pixels = 1u << 22;

static void check_error(int rc, const char *err)
{
    CHECK(rc <= -1000);
    CHECK(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t live = sl_alloc_live_bytes();
    char err[256];
    sl_image_info info;
    const int prc = sl_image_probe(data, size, &info, err, sizeof err);
    if (prc < 0)
        check_error(prc, err);

    sl_tensor t;
    const sl_image_decode_opts full = {.max_pixels = max_pixels};
    int rc = sl_image_decode(data, size, &full, &t, NULL, err, sizeof err);
    if (rc == 0) {
        CHECK(prc == 0);
        CHECK(t.shape[0] == info.height && t.shape[1] == info.width && t.shape[2] == 3);
        sl_tensor_release(&t);
    } else {
        check_error(rc, err);
    }

    if (prc == 0 && info.width > 0 && info.height > 0) {
        /* A region and a minimum size from the input's last bytes. */
        const uint8_t a = size > 0 ? data[size - 1] : 0, b = size > 1 ? data[size - 2] : 0;
        sl_image_decode_opts o = {.max_pixels = max_pixels, .scales = SL_IMAGE_SCALES_ALL};
        o.crop.x = a % info.width;
        o.crop.y = b % info.height;
        o.crop.w = 1 + (a * 7 + b) % (info.width - o.crop.x);
        o.crop.h = 1 + (b * 5 + a) % (info.height - o.crop.y);
        o.min_w = o.crop.w * (1 + a % 8) / 8;
        o.min_h = o.crop.h * (1 + b % 8) / 8;
        sl_image_decoded d;
        rc = sl_image_decode(data, size, &o, &t, &d, err, sizeof err);
        if (rc == 0) {
            CHECK(d.scale_num >= 1 && d.scale_num <= 8);
            if (d.scale_num == 8)
                CHECK(t.shape[0] == o.crop.h && t.shape[1] == o.crop.w);
            sl_tensor_release(&t);
        } else {
            check_error(rc, err);
        }
    }

    sl_image_fused_opts f = {.out_w = 24, .out_h = 24, .flip_p = 0.5, .max_pixels = max_pixels};
    CHECK(sl_image_normalize_preset("imagenet", &f.norm) == 0);
    f.norm.dtype = SL_DTYPE_F16;
    sl_rng r;
    sl_rng_init(&r, size, 0, 0);
    rc = sl_image_decode_fused(data, size, &f, &r, &t, NULL, NULL, err, sizeof err);
    if (rc == 0) {
        CHECK(t.dtype == SL_DTYPE_F16 && t.shape[0] == 3 && t.shape[1] == 24 && t.shape[2] == 24);
        sl_tensor_release(&t);
    } else {
        check_error(rc, err);
    }
    CHECK(sl_alloc_live_bytes() == live);
    return 0;
}
