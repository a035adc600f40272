/*
 * From pipeline text to a dataset: the map-function registry and the builder.
 *
 * The engine knows its sources and transforms by name (records, range, shuffle, batch, ...) but
 * no map function: those come from a registry the caller fills and hands to the builder, so
 * ops/ (image operations) can register decode_jpeg and friends through a glue target without
 * the engine depending on them (DESIGN §2).
 *
 *     sl_registry *reg;
 *     sl_registry_create(&reg);
 *     sl_registry_add(reg, "normalize", make_normalize, NULL, "normalize(mean, std)");
 *     sl_dataset *ds;
 *     sl_pipeline_build(&ds, "records(\"train-*.sluice\") | map(normalize) | batch(64)", reg,
 *                       err, sizeof err);
 *
 * Grammar: pipeline/GRAMMAR.md. Stage reference: pipeline/ENGINE.md.
 * A registry is filled by one thread, then may be shared read-only by any number of builds.
 */
#ifndef SLUICE_PIPELINE_BUILD_H
#define SLUICE_PIPELINE_BUILD_H

#include <stddef.h>

#include "sluice/pipeline.h"
#include "sluice/pipeline_text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_registry sl_registry;

/* Builds a map function from its call in the text (`flip`, `random_resized_crop(224)`): fills
 * out->fn / out->user / out->free_user (out->name is set by the builder to the call's
 * canonical text). Errors go to err, ideally through sl_ast_error so they carry a position. */
typedef int (*sl_map_factory)(void *user, const sl_ast_call *call, sl_map_def *out, char *err,
                              size_t errcap);

/* Builds one function for several consecutive calls of one map(...) (e.g. decode_jpeg,
 * random_resized_crop(224), flip -> one fused decode). Asked with the map's calls from position
 * i on (calls[0..n), each an SL_AST_CALL or SL_AST_IDENT value) before call i is built alone:
 * sets *used to the number of calls its function covers (at least 2) and fills out as a factory
 * does, or sets *used = 0 to decline. A negative return is an argument error (in err). */
typedef int (*sl_map_fuser)(void *user, const sl_ast_value *calls, size_t n, size_t *used,
                            sl_map_def *out, char *err, size_t errcap);

int sl_registry_create(sl_registry **out);
void sl_registry_free(sl_registry *r); /* NULL does nothing */
/* name unique (SL_ERR_EXISTS otherwise); summary is one line for help listings. */
int sl_registry_add(sl_registry *r, const char *name, sl_map_factory factory, void *user,
                    const char *summary);
/* Fusers are asked in the order added; the first that accepts wins. At most 4. */
int sl_registry_add_fuser(sl_registry *r, sl_map_fuser fuser, void *user);
size_t sl_registry_count(const sl_registry *r);
/* Entry i's name and summary (for `--help` listings), in the order added. */
const char *sl_registry_name(const sl_registry *r, size_t i);
const char *sl_registry_summary(const sl_registry *r, size_t i);

/* Parses `text` and builds its dataset. map(...) takes one or more function calls, fused into
 * one function applied in order on one worker. reg may be NULL (no map functions). On failure
 * err gets one line: `pipeline: position N: <stage>: <what>`. */
int sl_pipeline_build(sl_dataset **out, const char *text, const sl_registry *reg, char *err,
                      size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
