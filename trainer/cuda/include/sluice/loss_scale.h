/*
 * Dynamic loss scaling for fp16/bf16 training: the loss is multiplied by `scale` before the
 * backward so small gradients survive 16-bit storage, and the gradients are divided by it before
 * the optimizer step. A step whose gradients hold a NaN or infinity is skipped and the scale
 * multiplied by `backoff` (0.5); after `interval` clean steps in a row it is multiplied by
 * `growth` (2). These are the rules (and defaults) of PyTorch's GradScaler. A plain value type,
 * so the training loop can save it in a checkpoint byte for byte.
 */
#ifndef SLUICE_LOSS_SCALE_H
#define SLUICE_LOSS_SCALE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_loss_scale {
    float scale;      /* current multiplier */
    float growth;     /* > 1 */
    float backoff;    /* in (0, 1) */
    int32_t interval; /* clean steps before growing, > 0 */
    int32_t clean;    /* clean steps since the last change */
} sl_loss_scale;

/* scale 65536, growth 2, backoff 0.5, interval 2000. */
void sl_loss_scale_init(sl_loss_scale *s);
/* After a backward: 1 when the step should be applied, 0 when it must be skipped (found_nonfinite
 * set). The scale never drops below the smallest normal float, so it cannot reach zero. */
int sl_loss_scale_update(sl_loss_scale *s, int found_nonfinite);

#ifdef __cplusplus
}
#endif
#endif
