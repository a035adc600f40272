/* Stream typed sluice records into a training loop: records -> shuffle -> map -> batch ->
 * prefetch, then iterate. Usage: stream_records 'demo-out/train-*.sluice' */
#include <stdio.h>

#include "sluice/pipeline.h"

/* Keeps the label and replaces the encoded image by its size (a stand-in for decoding). */
static int to_example(void *user, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                      size_t errcap)
{
    sl_tensor size;
    int rc = sl_tensor_alloc(&size, SL_DTYPE_I64, 0, NULL);
    if (rc == 0) {
        *(int64_t *)size.data = sl_element_get(in, "image")->shape[0];
        const int k = sl_element_find(in, "label");
        rc = sl_element_push(out, "label", &in->tensors[k]);
        if (rc == 0)
            rc = sl_element_push(out, "image_bytes", &size);
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *files[] = {argc > 1 ? argv[1] : "demo-out/train-*.sluice"};
    char err[512];
    sl_dataset *src, *shuffled, *mapped, *batched, *ds;
    if (sl_dataset_records(&src, files, 1, err, sizeof err)) {
        fprintf(stderr, "stream_records: %s\n", err);
        return 1;
    }
    const sl_map_def fn = {"to_example", to_example, NULL, NULL};
    const sl_map_options parallel = {.parallel = SL_PARALLEL_AUTO};
    sl_dataset_shuffle(&shuffled, src, 1024, 7, 1);
    sl_dataset_map(&mapped, shuffled, &fn, &parallel);
    sl_dataset_batch(&batched, mapped, 64, 0);
    sl_dataset_prefetch(&ds, batched, SL_PARALLEL_AUTO);

    sl_iter *it;
    int rc = sl_iter_open(&it, ds, NULL);
    long batches = 0, examples = 0;
    sl_element batch;
    while (rc == 0 && (rc = sl_iter_next(it, &batch)) == 0) { /* one training step per batch */
        examples += sl_element_get(&batch, "label")->shape[0];
        batches++;
        sl_element_release(&batch);
    }
    if (rc != SL_EOF)
        fprintf(stderr, "stream_records: %s\n", sl_iter_errmsg(it));
    else
        printf("stream_records: %ld batches, %ld examples\n", batches, examples);
    sl_iter_close(it);
    sl_dataset *all[] = {src, shuffled, mapped, batched, ds};
    for (int i = 0; i < 5; i++)
        sl_dataset_release(all[i]);
    return rc == SL_EOF ? 0 : 1;
}
