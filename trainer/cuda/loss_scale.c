/*
 * Dynamic loss scaling (sluice/loss_scale.h): a value type and two functions, no allocation.
 * Host-side on both backends; the device's part is the unscale kernel that finds NaN/Inf.
 */
#include "sluice/loss_scale.h"

#include <float.h>

void sl_loss_scale_init(sl_loss_scale *s)
{
    s->scale = 65536.0f;
    s->growth = 2.0f;
    s->backoff = 0.5f;
    s->interval = 2000;
    s->clean = 0;
}

int sl_loss_scale_update(sl_loss_scale *s, int found_nonfinite)
{
    if (found_nonfinite) {
        const float next = s->scale * s->backoff;
        s->scale = next < FLT_MIN ? FLT_MIN : next;
        s->clean = 0;
        return 0;
    }
    if (++s->clean >= s->interval) {
        const float next = s->scale * s->growth;
        /* Growing into infinity would make every later step overflow: stay at the largest
         * finite scale instead. */
        if (next <= FLT_MAX)
            s->scale = next;
        s->clean = 0;
    }
    return 1;
}
