/* A training loop's input: records -> shuffle -> decode + augment -> batch -> prefetch.
 * Usage: stream_records 'shapes-train-*.sluice' (typed records with image and label fields) */
#include <stdio.h>

#include "sluice/ops_registry.h"
#include "sluice/pipeline_build.h"

int main(int argc, char **argv)
{
    char text[512], err[512] = "";
    snprintf(text, sizeof text,
             "records(\"%s\") | shuffle(1024, seed=7) | map(decode_jpeg, random_resized_crop(56), "
             "flip, normalize(imagenet), parallel=auto) | select(\"image\", \"label\") | "
             "batch(64) | prefetch(auto)",
             argc > 1 ? argv[1] : "shapes-train-*.sluice");
    sl_registry *reg;
    sl_dataset *ds = NULL;
    sl_iter *it = NULL;
    int rc = sl_registry_create(&reg);
    if (rc == 0 && (rc = sl_ops_register(reg)) == 0 &&
        (rc = sl_pipeline_build(&ds, text, reg, err, sizeof err)) == 0)
        rc = sl_iter_open(&it, ds, NULL);
    long batches = 0, images = 0;
    sl_element batch;
    while (rc == 0 && (rc = sl_iter_next(it, &batch)) == 0) { /* one training step per batch */
        images += sl_element_get(&batch, "label")->shape[0];
        batches++;
        sl_element_release(&batch);
    }
    if (rc == SL_EOF)
        printf("stream_records: %ld batches, %ld images\n", batches, images);
    else
        fprintf(stderr, "stream_records: %s\n", it ? sl_iter_errmsg(it) : err);
    sl_iter_close(it);
    sl_dataset_release(ds);
    sl_registry_free(reg);
    return rc == SL_EOF ? 0 : 1;
}
