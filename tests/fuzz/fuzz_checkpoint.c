/*
 * Fuzz target for checkpoint restore (pipeline/src/checkpoint.c and every stage's restore).
 * Byte 0 picks one of a few pipelines covering every checkpointable stage; the rest is the
 * stage-state part of a blob. The target wraps it in a valid header and crc32c (which a
 * fuzzer could not forge) so the inputs reach the stages' state readers. A restore must fail
 * cleanly or yield a stream that ends (bounded here) without crashing, leaking or hanging; a
 * restored iterator must save again, and that blob must restore.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/crc32c.h"
#include "sluice/pipeline_build.h"

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

static const char *const pipelines[] = {
    "range(50) | shuffle(7, seed=1) | batch(3)",
    "range(40) | map(id, parallel=2) | prefetch(2) | repeat(3)",
    "range(30) | global_shuffle(seed=2) | shard(3, 1) | batch(2) | unbatch",
    "range(20) | cache | repeat(2) | skip(3) | take(30)",
    "sample_from_datasets([range(10), range(100, 105)], seed=3) | enumerate",
    "range(9) | zip(range(5) | rename(value=\"w\")) | padded_batch(2)",
    "range(12) | prefetch(2) | cache | repeat(2) | shard(2, 0)",
};
enum { SEED = 5, MAX_ELEMENTS = 400 };

static int run_id(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                  size_t errcap)
{
    sl_element_share(out, in);
    sl_element_release(in);
    return 0;
}

static int make_id(void *user, const sl_ast_call *call, sl_map_def *out, char *err, size_t errcap)
{
    out->fn = run_id;
    return 0;
}

static void drain(sl_iter *it)
{
    sl_element e;
    for (int i = 0; i < MAX_ELEMENTS && sl_iter_next(it, &e) == 0; i++)
        sl_element_release(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sl_registry *reg;
    CHECK(sl_registry_create(&reg) == 0);
    CHECK(sl_registry_add(reg, "id", make_id, NULL, "id") == 0);
    sl_dataset *ds;
    char err[256];
    CHECK(sl_pipeline_build(&ds, pipelines[data[0] % SL_ARRAY_LEN(pipelines)], reg, err,
                            sizeof err) == 0);
    const size_t body = size - 1, len = 24 + body + 4;
    uint8_t *blob = malloc(len);
    memcpy(blob, "SLCK", 4);
    sl__store_u32le(blob + 4, 1);
    sl__store_u64le(blob + 8, sl__dataset_fingerprint(ds));
    sl__store_u64le(blob + 16, SEED);
    if (body)
        memcpy(blob + 24, data + 1, body);
    sl__store_u32le(blob + 24 + body, sl_crc32c(0, blob, 24 + body));

    const sl_iter_options o = {.threads = 2, .seed = SEED};
    sl_iter *it;
    if (sl_iter_restore(&it, ds, &o, blob, len) == 0) {
        uint8_t *again;
        size_t again_len;
        CHECK(sl_iter_save(it, &again, &again_len) == 0);
        sl_iter *it2;
        CHECK(sl_iter_restore(&it2, ds, &o, again, again_len) == 0);
        drain(it2);
        sl_iter_close(it2);
        sl_free(again);
        drain(it);
    }
    sl_iter_close(it);
    free(blob);
    sl_dataset_release(ds);
    sl_registry_free(reg);
    return 0;
}
