// sae/train.hpp: the umbrella header for training (POSIX: the .npy data source
// memory-maps its files). Includes the core (sae.hpp) too.
//
//   data source → batch → loss and gradient → constraint → clipping →
//   optimizer step → constraint → dead-latent bookkeeping → metrics
#pragma once

#include "sae.hpp"
#include "io/checkpoint.hpp"
#include "train/architecture.hpp"
#include "train/constraints.hpp"
#include "train/data_source.hpp"
#include "train/dead_latents.hpp"
#include "train/decoder_bias_init.hpp"
#include "train/feature_density.hpp"
#include "train/gradient_clipping.hpp"
#include "train/input_scaling.hpp"
#include "train/metrics_log.hpp"
#include "train/progress.hpp"
#include "train/recipes.hpp"
#include "train/schedules.hpp"
#include "train/trainer.hpp"
