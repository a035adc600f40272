/* The trainer: layers (nn.h), models (model.h), optimizers, schedules and checkpoints
 * (optim.h), one include. */
#ifndef SLUICE_TRAINER_H
#define SLUICE_TRAINER_H
#include "sluice/model.h"
#include "sluice/nn.h"
#include "sluice/optim.h"
#endif
