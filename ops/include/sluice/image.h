/*
 * Image operations: JPEG/PNG decode, crop, resize, flip and normalize, with torchvision's
 * semantics, and a fused path that decodes only the pixels a crop needs.
 *
 * Every function is a plain function of its arguments: no handles, no global state, safe to
 * call from any number of threads at once on distinct outputs. Images are sl_tensors of dtype
 * uint8 and shape (height, width, channels), channels interleaved (HWC), rows packed. Outputs
 * are fresh tensors (sl_tensor_alloc) the caller releases. Randomness comes only from the
 * sl_rng the caller passes, so an element's augmentation is a pure function of its rng stream.
 *
 * Errors: 0 on success or a negative sluice code; a one-line reason (without file or record:
 * the caller knows those and prefixes them) is written into err[errcap] when err is not NULL.
 * Decode errors:
 *   SL_ERR_FORMAT       not a JPEG or PNG (empty input, text, random bytes)
 *   SL_ERR_UNSUPPORTED  an image format sluice does not decode (GIF, BMP, WebP, TIFF), or a
 *                       JPEG kind libjpeg cannot decode (e.g. arithmetic-coded, 12-bit)
 *   SL_ERR_TRUNCATED    the data ends before the image does
 *   SL_ERR_CORRUPT      damaged data: bad markers, tables or entropy-coded data
 *   SL_ERR_TOO_LARGE    more pixels than the decode options allow
 *   SL_ERR_NOMEM        allocation failed
 *
 * How each op maps to an element transform of the engine (sl_map_fn: in -> out, random draws
 * from ctx->rng, in the order listed, so a fused and an unfused chain draw alike):
 *   decode_jpeg              bytes tensor -> sl_image_decode (no opts) -> uint8 (H, W, 3)
 *   random_resized_crop(S)   sl_image_random_resized_crop_params(rng) then
 *                            sl_image_resized_crop(S, S)            uint8 -> uint8 (S, S, 3)
 *   center_crop(S)           sl_image_center_crop_params then sl_image_crop
 *   resize(S)                sl_image_resize (shorter side to S, as torchvision's int size)
 *   flip(p)                  sl_image_flip_draw(rng, p) then sl_image_flip when it says so
 *   normalize(imagenet)      sl_image_normalize_preset + sl_image_normalize -> float (C,H,W)
 * and the chain decode_jpeg, random_resized_crop, [flip], [normalize] as ONE call to
 * sl_image_decode_fused, which draws the same numbers in the same order (see ops/OPS.md).
 */
#ifndef SLUICE_IMAGE_H
#define SLUICE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/rng.h"
#include "sluice/status.h"
#include "sluice/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- formats and probing ------------------------------------------------------------------ */

typedef enum sl_image_format {
    SL_IMAGE_UNKNOWN = 0, /* not an image sluice recognises */
    SL_IMAGE_JPEG = 1,
    SL_IMAGE_PNG = 2,
    SL_IMAGE_GIF = 3, /* recognised so the error can say what it is; never decoded */
    SL_IMAGE_BMP = 4,
    SL_IMAGE_WEBP = 5,
    SL_IMAGE_TIFF = 6,
} sl_image_format;

/* "jpeg", "png", "gif", ...; "unknown" otherwise. */
const char *sl_image_format_name(sl_image_format f);

/* The format the magic bytes say, whatever the file is called. */
sl_image_format sl_image_sniff(const void *data, size_t len);

/* Colour model stored in the file. */
typedef enum sl_image_color {
    SL_IMAGE_COLOR_GRAY = 1,
    SL_IMAGE_COLOR_RGB = 3,  /* also YCbCr JPEGs and palette PNGs */
    SL_IMAGE_COLOR_CMYK = 4, /* JPEG CMYK or YCCK */
} sl_image_color;

typedef struct sl_image_info {
    sl_image_format format;
    int width, height;
    sl_image_color color;
    int has_alpha;   /* PNG with an alpha channel or tRNS (decode drops it) */
    int bit_depth;   /* 8 for JPEG; 1..16 for PNG */
    int progressive; /* progressive JPEG or interlaced PNG */
} sl_image_info;

/* Reads only the header (for JPEG: the markers up to the first scan). Decoding can still fail
 * later on damaged entropy-coded data. */
int sl_image_probe(const void *data, size_t len, sl_image_info *info, char *err, size_t errcap);

/* ---- decode ------------------------------------------------------------------------------- */

/* A pixel rectangle. */
typedef struct sl_image_rect {
    int x, y, w, h;
} sl_image_rect;

enum {
    /* Default limit on width * height (a 16k x 16k image), so a hostile 20-byte header cannot
     * make the decoder allocate gigabytes. */
    SL_IMAGE_DEFAULT_MAX_PIXELS = 1 << 28,
};

typedef struct sl_image_decode_opts {
    /* Region of interest in full-resolution pixels; w == 0 (the zeroed default) means the
     * whole image. Must lie inside the image. JPEG decodes only the rows and the iMCU columns
     * it covers; PNG decodes everything and copies the region out. */
    sl_image_rect crop;
    /* Smallest output wanted for the region: JPEG picks the smallest DCT scale M/8 (M one of
     * the allowed numerators) at which the region is still at least min_w x min_h. 0 = full
     * scale. PNG ignores it (always full scale). */
    int min_w, min_h;
    /* Bit i set: scale (i+1)/8 may be used. 0 means SL_IMAGE_SCALES_FAST. */
    unsigned scales;
    /* Limit on width * height of the full image; 0 means SL_IMAGE_DEFAULT_MAX_PIXELS. */
    uint64_t max_pixels;
    /* 0: JPEG corruption libjpeg recovers from (a bad Huffman code, extraneous bytes, a lost
     * restart marker) still decodes, as in PIL and tf.data; 1: it is SL_ERR_CORRUPT. A file
     * that ends early is SL_ERR_TRUNCATED either way. */
    int strict;
} sl_image_decode_opts;

/* Scales whose inverse DCT libjpeg-turbo has SIMD code for (1/8, 1/4, 1/2, 1): the other
 * eighths use plain C and are slower than decoding at the next larger SIMD scale. */
#define SL_IMAGE_SCALES_FAST 0x8bu
#define SL_IMAGE_SCALES_ALL  0xffu

/* Where the requested region landed in the decoded tensor. */
typedef struct sl_image_decoded {
    sl_image_info info; /* of the full image */
    int scale_num;      /* the image was decoded at scale_num / 8 */
    /* The requested region in the output tensor's pixel coordinates (fractional when scaled:
     * the tensor holds the whole pixels that cover it). At full scale: (0, 0, w, h). */
    double rx, ry, rw, rh;
} sl_image_decoded;

/* Decodes to RGB uint8 (H, W, 3): grayscale replicated, CMYK/YCCK converted (Adobe-inverted
 * data handled), PNG alpha dropped, 16-bit PNG samples cut to their high byte. opts may be
 * NULL (whole image, full scale). decoded may be NULL. */
int sl_image_decode(const void *data, size_t len, const sl_image_decode_opts *opts, sl_tensor *out,
                    sl_image_decoded *decoded, char *err, size_t errcap);

/* ---- crop parameters (torchvision's samplers) --------------------------------------------- */

/* torchvision.transforms.RandomResizedCrop.get_params on a width x height image: up to 10
 * tries of (area fraction uniform in scale, log-uniform aspect ratio in ratio, w and h rounded
 * half to even, offsets uniform), then the centre-crop fallback with the ratio clamped.
 * Draws: 2 uniforms per try, then 2 integers on success. */
int sl_image_random_resized_crop_params(int width, int height, const double scale[2],
                                        const double ratio[2], sl_rng *rng, sl_image_rect *out);

/* torchvision.transforms.functional.center_crop's window: top = round((H - h) / 2) with
 * Python's rounding (half to even), likewise left. A side the crop is larger than is padded by
 * floor(excess / 2) before it, so the window starts at -floor(excess / 2) there (sl_image_crop
 * fills the outside with zeros, as torchvision does). */
void sl_image_center_crop_params(int width, int height, int crop_w, int crop_h, sl_image_rect *out);

/* torchvision's resize(int size): the shorter side becomes size, the other keeps the aspect
 * (int(size * long / short), truncated). */
void sl_image_resize_size(int width, int height, int size, int *out_w, int *out_h);

/* 1 with probability p: one uniform draw, flip when it is < p (torch.rand(1) < p). */
int sl_image_flip_draw(sl_rng *rng, double p);

/* ---- pixel ops on uint8 (H, W, C) tensors, C in 1..4 -------------------------------------- */

/* Copies the window; parts outside the image become 0. */
int sl_image_crop(const sl_tensor *src, const sl_image_rect *r, sl_tensor *out);

/* Resize to out_w x out_h (bilinear, see below). */
int sl_image_resize(const sl_tensor *src, int out_w, int out_h, sl_tensor *out);

/* Crop the window r (inside the image), then resize it to out_w x out_h: torchvision's
 * resized_crop. Resampling is PIL's and torchvision's antialiased bilinear: a separable
 * triangle filter centred on (i + 0.5) * scale in source pixels, of radius max(1, scale), so
 * it is plain bilinear with half-pixel centres when upscaling and averages over the whole
 * footprint (antialias) when downscaling; taps outside the window are dropped and the weights
 * renormalised. Float arithmetic, rounded half up to uint8 (PIL rounds its fixed-point sums
 * between passes: results differ from PIL by at most 1 level). */
int sl_image_resized_crop(const sl_tensor *src, const sl_image_rect *r, int out_w, int out_h,
                          sl_tensor *out);

/* Mirror left-right. */
int sl_image_flip(const sl_tensor *src, sl_tensor *out);

typedef enum sl_image_layout {
    SL_IMAGE_HWC = 0,
    SL_IMAGE_CHW = 1,
} sl_image_layout;

typedef struct sl_image_normalize_opts {
    /* out = (x / 255 - mean[c]) / std[c]; channels beyond the image's are unused. */
    float mean[4], std[4];
    sl_dtype dtype; /* SL_DTYPE_F32 or SL_DTYPE_F16; SL_DTYPE_U8: pixels unchanged (only the
                       layout), mean and std unused */
    sl_image_layout layout;
} sl_image_normalize_opts;

/* "imagenet": mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); "none": mean 0 std 1
 * (x / 255, torchvision's ToTensor). Sets float32, CHW. SL_ERR_NOT_FOUND for other names. */
int sl_image_normalize_preset(const char *name, sl_image_normalize_opts *opts);

/* uint8 (H, W, C) -> dtype in the layout asked. */
int sl_image_normalize(const sl_tensor *src, const sl_image_normalize_opts *opts, sl_tensor *out);

/* ---- the fused path ----------------------------------------------------------------------- */

typedef enum sl_image_crop_mode {
    SL_IMAGE_CROP_RANDOM_RESIZED = 0, /* torchvision RandomResizedCrop(scale, ratio) */
    SL_IMAGE_CROP_FIXED = 1,          /* the rectangle `crop` (w == 0: the whole image) */
} sl_image_crop_mode;

typedef struct sl_image_fused_opts {
    int out_w, out_h;
    sl_image_crop_mode crop_mode;
    double scale[2], ratio[2]; /* RANDOM_RESIZED; zeros mean (0.08, 1) and (3/4, 4/3) */
    sl_image_rect crop;        /* FIXED */
    double flip_p;             /* probability of a horizontal flip; one draw even when 0 */
    sl_image_normalize_opts norm;
    /* DCT scales the JPEG decode may use (see sl_image_decode_opts.scales); 0 means
     * SL_IMAGE_SCALES_FAST. 0x80 (8/8 only) decodes at full scale: the result then equals
     * the unfused chain's (decode, sl_image_resized_crop, flip, normalize) exactly. */
    unsigned scales;
    int strict;          /* as in sl_image_decode_opts */
    uint64_t max_pixels; /* 0: SL_IMAGE_DEFAULT_MAX_PIXELS */
} sl_image_fused_opts;

/* The fused chain: header -> crop window (drawing from rng as the crop op does) -> decode of
 * only that window at the smallest allowed DCT scale that keeps >= out_w x out_h -> resize,
 * flip (one draw) and normalize in one pass into out, of shape (out_h, out_w, 3) or
 * (3, out_h, out_w). PNG input takes the same path with a full decode. decoded may be NULL;
 * crop_out (may be NULL) receives the window chosen, in full-resolution pixels, and
 * flipped_out (may be NULL) whether it flipped. */
int sl_image_decode_fused(const void *data, size_t len, const sl_image_fused_opts *opts,
                          sl_rng *rng, sl_tensor *out, sl_image_rect *crop_out, int *flipped_out,
                          char *err, size_t errcap);
/* The dtype and shape sl_image_decode_fused gives for opts (rank 3); SL_ERR_INVAL for bad
 * opts. */
int sl_image_fused_out_type(const sl_image_fused_opts *opts, sl_dtype *dtype, int64_t shape[3]);
/* sl_image_decode_fused into a tensor the caller provides (e.g. a row of a batch being
 * assembled, so the pixels are written once and never copied): dst must have the dtype and
 * shape sl_image_fused_out_type gives (else SL_ERR_INVAL) and stays the caller's; on success
 * every byte of it is written, and the pixels equal sl_image_decode_fused's for the same rng. */
int sl_image_decode_fused_into(const void *data, size_t len, const sl_image_fused_opts *opts,
                               sl_rng *rng, const sl_tensor *dst, sl_image_rect *crop_out,
                               int *flipped_out, char *err, size_t errcap);

/* ---- encode ------------------------------------------------------------------------------- */

/* A uint8 (H, W, 1 or 3) image as a baseline JPEG at quality 1..100: libjpeg's standard tables
 * scaled by the quality, 4:2:0 chroma for RGB, what PIL's save(quality=q) writes. out becomes a
 * rank-1 BYTES tensor holding the file (its own buffer). The bytes depend only on the pixels
 * and the quality. SL_ERR_INVAL for another dtype, shape or quality; SL_ERR_NOMEM. */
int sl_image_encode_jpeg(const sl_tensor *src, int quality, sl_tensor *out, char *err,
                         size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
