/*
 * The layout of sl_optim (sluice/optim.h), shared by optim.c and train_checkpoint.c.
 */
#ifndef SLUICE_OPTIM_INTERNAL_H
#define SLUICE_OPTIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/optim.h"

struct sl_optim {
    sl_optim_config cfg;
    size_t count;       /* values in the parameter blob */
    size_t decay_count; /* [0, decay_count) take weight decay */
    size_t slots;       /* state arrays of `count` floats: 0 (plain SGD), 1 (momentum), 2 (Adam) */
    float *state;       /* (slots, count), or NULL */
    int64_t steps;      /* updates done */
};

#endif
