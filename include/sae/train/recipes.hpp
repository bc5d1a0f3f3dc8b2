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
//             norm 0.1 with W_enc = W_decᵀ, b_enc 0 and b_dec at the data mean
//             (SAELens' option; real activations have huge-mean dimensions),
//             inputs scaled to mean norm √D, λ = 5 warmed up over the first 5%,
//             lr 3e-4 (the top of SAELens' 5e-5..3e-4: the bottom barely moves
//             in a run of thousands of steps) decaying over the last 20%,
//             gradient-norm clipping at 1.
//   topk      TopK (OpenAI, sparsify, dictionary_learning's TopKTrainer): k = 32
//             per token, AuxK (α = 1/32, k_aux = D/2), unit-norm decoder rows,
//             tied init, b_dec at the geometric median and subtracted from the
//             input, inputs at unit mean squared norm, Adam eps 6.25e-10 and
//             lr 2e-4 / √(F / 2^14) (OpenAI's scaling law), lr warm-up and decay
//             over the last 20%, gradient-norm clipping at 1.
//   batchtopk as topk, with k·B codes kept per batch and the inference
//             threshold following the smallest kept code (momentum 0.999, or
//             less in runs shorter than 20 000 steps).
//   jumprelu  dictionary_learning's JumpReluTrainer: θ starts at 0.001, STE
//             bandwidth 0.001, the target-L0 penalty λ (L0/32 − 1)² with λ = 1
//             warmed up over the first fifth, Adam β = (0, 0.999), lr 7e-5
//             with warm-up and decay over the last 20%, unit-norm decoder rows,
//             b_dec at the geometric median (not subtracted from the input).
//   gated     dictionary_learning's GatedSAETrainer: L1 on the gate (λ = 0.1,
//             mean over the batch) plus the auxiliary reconstruction, unit-norm
//             decoder rows, b_dec subtracted from the input, Adam β = (0, 0.999),
//             lr 5e-5 with warm-up.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "../core/init.hpp"
#include "../loss/l1_objective.hpp"
#include "decoder_bias_init.hpp"
#include "input_scaling.hpp"

namespace sae {

enum class Recipe { Seed, Standard, April, TopK, BatchTopK, JumpReLU, Gated };

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

  // Architecture settings; each is read only by the architectures named.
  // l1_coefficient above is the sparsity coefficient of every penalised
  // architecture: the L1 weight for relu and gated, the L0 weight for jumprelu.
  // The architecture's own settings (TopK's k, JumpReLU's initial θ) are the
  // model's: SparseAutoEncoder<float, Dynamic, Dynamic, TopK> m(D, F, TopK{64}).
  bool apply_b_dec_to_input = false;      ///< all: subtract b_dec from the input before encoding
  double aux_k_coefficient = 1.0 / 32.0;  ///< topk, batchtopk: AuxK's α (0: no AuxK)
  Index aux_k = 0;                        ///< topk, batchtopk: AuxK's k_aux (0: D/2)
  double threshold_momentum = 0.999;      ///< batchtopk: θ ← m θ + (1 − m) · smallest kept code
  long long threshold_start_step = 1000;  ///< batchtopk: steps before θ starts to follow the batches
  double jumprelu_bandwidth = 0.001;      ///< jumprelu: ε of the straight-through estimator
  double target_l0 = 0;                   ///< jumprelu: > 0 penalises (L0 / target − 1)² instead of L0
};

/// The recipe's configuration. `steps` is needed for the schedules given as
/// fractions of the run (λ warm-up of `april`, lr decay); `dict_size` for the
/// learning rate of `topk` and `batchtopk`, which scales as 1/√F.
inline TrainingConfig make_recipe(Recipe recipe, long long steps, Index dict_size = 16384) {
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
      c.decoder_bias_init = DecoderBiasInit::DataMean;
      c.learning_rate = 3e-4;
      c.lr_decay_fraction = 0.2;
      c.max_grad_norm = 1.0;
      return c;
    case Recipe::TopK:
    case Recipe::BatchTopK:
      c.recipe_name = recipe == Recipe::TopK ? "topk" : "batchtopk";
      c.l1_coefficient = 0.0;
      c.init = Init::Tied;
      c.init_decoder_norm = 1.0;
      c.decoder_bias_init = DecoderBiasInit::GeometricMedian;
      c.input_scaling = InputScaling::UnitMeanSquaredNorm;
      c.apply_b_dec_to_input = true;
      c.learning_rate = 2e-4 / std::sqrt(static_cast<double>(std::max<Index>(dict_size, 1)) / 16384.0);
      c.adam_epsilon = 6.25e-10;
      c.lr_warmup_steps = std::min<long long>(1000, steps / 10);
      c.lr_decay_fraction = 0.2;
      c.max_grad_norm = 1.0;
      c.unit_norm_decoder = true;
      c.threshold_start_step = std::min<long long>(1000, steps / 10);
      // dictionary_learning's 0.999 averages over ~1000 steps: right for its
      // 100k-step runs, stale in a short one. A time constant of a twentieth
      // of the run, at most 1000 steps.
      c.threshold_momentum = std::min(0.999, std::max(0.9, 1.0 - 20.0 / static_cast<double>(steps)));
      return c;
    case Recipe::JumpReLU:
      c.recipe_name = "jumprelu";
      c.l1_coefficient = 1.0;
      c.target_l0 = 32.0;
      c.l1_warmup_steps = steps / 5;
      c.init = Init::Tied;
      c.init_decoder_norm = 1.0;
      c.decoder_bias_init = DecoderBiasInit::GeometricMedian;
      c.input_scaling = InputScaling::UnitMeanSquaredNorm;
      c.learning_rate = 7e-5;
      c.adam_beta1 = 0.0;
      c.lr_warmup_steps = std::min<long long>(1000, steps / 10);
      c.lr_decay_fraction = 0.2;
      c.unit_norm_decoder = true;
      return c;
    case Recipe::Gated:
      c.recipe_name = "gated";
      c.l1_coefficient = 0.1;
      c.l1_reduction = L1Reduction::MeanOverBatch;
      c.l1_warmup_steps = std::min<long long>(2000, steps / 5);
      c.init = Init::Tied;
      c.init_decoder_norm = 1.0;
      c.decoder_bias_init = DecoderBiasInit::GeometricMedian;
      c.input_scaling = InputScaling::UnitMeanSquaredNorm;
      c.apply_b_dec_to_input = true;
      c.learning_rate = 5e-5;
      c.adam_beta1 = 0.0;
      c.lr_warmup_steps = std::min<long long>(1000, steps / 10);
      c.unit_norm_decoder = true;
      return c;
  }
  throw std::invalid_argument("sae::make_recipe: unknown recipe");
}

/// "seed", "standard" or "april" (as the command line spells them).
inline Recipe parse_recipe(const std::string& name) {
  if (name == "seed") return Recipe::Seed;
  if (name == "standard") return Recipe::Standard;
  if (name == "april") return Recipe::April;
  if (name == "topk") return Recipe::TopK;
  if (name == "batchtopk") return Recipe::BatchTopK;
  if (name == "jumprelu") return Recipe::JumpReLU;
  if (name == "gated") return Recipe::Gated;
  throw std::invalid_argument("unknown recipe '" + name +
                              "' (expected seed, standard, april, topk, batchtopk, jumprelu or gated)");
}

}  // namespace sae
