/*
 * The image operations as map functions of the pipeline language: the glue between ops/ (which
 * knows pixels, not pipelines) and the engine's registry (which knows no op by name), DESIGN §2.
 *
 *     sl_registry *reg;
 *     sl_registry_create(&reg);
 *     sl_ops_register(reg);
 *     sl_pipeline_build(&ds, "records(\"train-*.sluice\") | map(decode_jpeg, "
 *                       "random_resized_crop(224), flip, normalize(imagenet)) | batch(64)",
 *                       reg, err, sizeof err);
 *
 * Functions registered (ops/OPS.md has the semantics, which are torchvision's):
 *   decode_jpeg(strict=false, dct_scaling=true, max_pixels=N)
 *       JPEG or PNG bytes (the format sniffed, never the name) in the tensor "image", else
 *       "record" -> "image" uint8 (H, W, 3)
 *   random_resized_crop(size, scale=[0.08, 1.0], ratio=[0.75, 1.3333])
 *   center_crop(size)            size: an int (square) or [h, w]
 *   resize(size)                 an int: the shorter side; [h, w]: exactly
 *   flip, flip(p=0.5)            horizontal
 *   normalize(imagenet|none, dtype=float32|float16|uint8, layout=chw|hwc, mean=[..], std=[..])
 * Every function works on the tensor "image" and passes the element's other tensors (label,
 * path, ...) through unchanged and in place. Random draws come from the element's counter-based
 * stream (sl_map_ctx.rng), taken in turn by each function of one map(...), so augmentation is
 * the same for every thread count and after a checkpoint restore. Errors are one line with the
 * cause and, when the element has a "path" tensor (records written by `sluice convert DIR`), the
 * file; the engine adds the stage and the element index.
 *
 * Fusion: the run decode_jpeg, random_resized_crop(...), [flip], [normalize(...)] as one map
 * function decodes only the crop window at a reduced DCT scale (sl_image_decode_fused).
 * sl_ops_fuse builds that function from the calls; sl_ops_register adds it to the registry as a
 * fuser, and the builder then asks it about every map. A run it does not claim runs function by
 * function, with the same random draws and full-scale results equal to the fused path's.
 *
 * Threading: registering is done by the thread that fills the registry; the functions it makes
 * are thread-safe for distinct elements.
 */
#ifndef SLUICE_OPS_REGISTRY_H
#define SLUICE_OPS_REGISTRY_H

#include <stddef.h>

#include "sluice/pipeline_build.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Adds decode_jpeg, random_resized_crop, center_crop, resize, flip and normalize to r.
 * SL_ERR_EXISTS when r already holds one of the names (nothing is rolled back), SL_ERR_NOMEM. */
int sl_ops_register(sl_registry *r);

/* Looks at the function calls calls[0..n) of one map(...) (each an SL_AST_CALL or SL_AST_IDENT
 * value, in the map's order) and, when they start with decode_jpeg, random_resized_crop, builds
 * one function for the longest fusable run: those two, then flip if it comes next, then
 * normalize if it comes next. *used receives the number of calls covered (0: nothing to fuse
 * here; out untouched) and out the function (out->name is left to the caller, as with a
 * factory). A run without flip is fused only when it ends the map, because the fused call always
 * takes flip's draw. Argument errors are reported as the single functions' factories report
 * them. With decode_jpeg(dct_scaling=false) the fused function's output equals the unfused
 * functions' byte for byte.
 * Its signature is the registry's sl_map_fuser (asked before call i of a map is built alone,
 * with calls[i..n)); user is unused. */
int sl_ops_fuse(void *user, const sl_ast_value *calls, size_t n, size_t *used, sl_map_def *out,
                char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
