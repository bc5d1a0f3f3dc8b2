// sae/train/recipes.hpp: named, documented training configurations.
//
// A TrainingConfig is every choice the trainer makes besides the data and the
// model's sizes. The recipes fill it the way the systems the field uses do
// (SAE-REFERENCE.md §3); change any field afterwards.
//
//   seed      the seed's own loop: L1 summed over the batch, nn.Linear init,
//             plain Adam, no constraint, no schedule.
//   standard  dictionary_learning's StandardTrainer: L1 averaged over the batch,
//             unit-norm decoder rows (gradient projected before the step,
//             rows renormalised after), tied init, b_dec at the geometric median,
//             inputs scaled to unit mean squared norm, lr warm-up, λ warm-up,
//             resampling of dead latents.
//   april     Anthropic's April 2024 update (SAELens' standard SAE): L1 weighted
//             by decoder row norms, no constraint, decoder rows initialised at
//             norm 0.1 with W_enc = W_decᵀ and zero biases, inputs scaled to
//             mean norm √D, λ warm-up over the first 5%, lr decay over the last
//             20%, gradient-norm clipping at 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "../core/init.hpp"
#include "../loss/l1_objective.hpp"
#include "decoder_bias_init.hpp"
#include "input_scaling.hpp"

namespace sae {

enum class Recipe { Seed, Standard, April };

struct TrainingConfig {
  std::string recipe_name = "seed";

  // Objective.
  double l1_coefficient = 1e-3;  ///< λ (after warm-up)
  L1Reduction l1_reduction = L1Reduction::SumOverBatch;
  L1Weighting l1_weighting = L1Weighting::Uniform;
  long long l1_warmup_steps = 0;  ///< λ grows linearly from 0 over these steps

  // Model initialisation.
  Init init = Init::LinearDefault;
  double init_decoder_norm = 0.1;  ///< row norm for Init::Tied
  /// How b_dec is set from a sample of the (scaled) data; empty: keep the initialisation's.
  std::optional<DecoderBiasInit> decoder_bias_init;
  InputScaling input_scaling = InputScaling::None;
  Index data_sample_rows = 16384;  ///< rows drawn to set b_dec and the input scale

  // Optimizer and schedule.
  double learning_rate = 1e-3;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  long long lr_warmup_steps = 0;
  double lr_decay_fraction = 0.0;  ///< linear decay to 0 over this final fraction of the steps
  double max_grad_norm = 0.0;      ///< 0: no clipping

  // Constraint.
  bool unit_norm_decoder = false;  ///< project gradients and renormalise decoder rows

  // Dead latents.
  std::uint64_t dead_window_tokens = 10'000'000;  ///< no firing for this many tokens = dead
  long long resample_every_steps = 0;             ///< 0: never resample

  // Loop.
  Index batch_size = 4096;
  long long steps = 10'000;
};

/// The recipe's configuration. `steps` is needed for the schedules given as
/// fractions of the run (λ warm-up of `april`, lr decay).
inline TrainingConfig make_recipe(Recipe recipe, long long steps) {
  if (steps <= 0) throw std::invalid_argument("sae::make_recipe: steps must be positive, got " + std::to_string(steps));
  TrainingConfig c;
  c.steps = steps;
  switch (recipe) {
    case Recipe::Seed:
      c.recipe_name = "seed";
      return c;
    case Recipe::Standard:
      c.recipe_name = "standard";
      c.l1_coefficient = 0.1;
      c.l1_reduction = L1Reduction::MeanOverBatch;
      c.l1_warmup_steps = std::min<long long>(2000, steps / 5);
      c.init = Init::Tied;
      c.init_decoder_norm = 1.0;
      c.decoder_bias_init = DecoderBiasInit::GeometricMedian;
      c.input_scaling = InputScaling::UnitMeanSquaredNorm;
      c.lr_warmup_steps = std::min<long long>(1000, steps / 10);
      c.unit_norm_decoder = true;
      c.resample_every_steps = std::max<long long>(steps / 8, 1);
      return c;
    case Recipe::April:
      c.recipe_name = "april";
      c.l1_coefficient = 5.0;
      c.l1_reduction = L1Reduction::MeanOverBatch;
      c.l1_weighting = L1Weighting::DecoderNorm;
      c.l1_warmup_steps = steps / 20;
      c.init = Init::Tied;
      c.init_decoder_norm = 0.1;
      c.input_scaling = InputScaling::MeanNormSqrtD;
      c.learning_rate = 5e-5;
      c.lr_decay_fraction = 0.2;
      c.max_grad_norm = 1.0;
      return c;
  }
  throw std::invalid_argument("sae::make_recipe: unknown recipe");
}

/// "seed", "standard" or "april" (as the command line spells them).
inline Recipe parse_recipe(const std::string& name) {
  if (name == "seed") return Recipe::Seed;
  if (name == "standard") return Recipe::Standard;
  if (name == "april") return Recipe::April;
  throw std::invalid_argument("unknown recipe '" + name + "' (expected seed, standard or april)");
}

}  // namespace sae
