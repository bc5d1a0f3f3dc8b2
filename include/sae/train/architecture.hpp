// sae/train/architecture.hpp: what the trainer does differently per architecture.
//
// The trainer is one loop for every architecture; these overloads, chosen by
// the model's activation policy, supply the parts that differ:
//
//   make_objective(activation, config, coefficient, dead)  the objective for one step
//   update_after_step(model, workspace, config, step)      state that is not a
//                                                          parameter (BatchTopK's θ)
#pragma once

#include <type_traits>
#include <vector>

#include "../core/sparse_autoencoder.hpp"
#include "../loss/gated_objective.hpp"
#include "../loss/jumprelu_objective.hpp"
#include "../loss/l1_objective.hpp"
#include "../loss/topk_objective.hpp"
#include "../loss/workspace.hpp"
#include "recipes.hpp"

namespace sae {

/// Architectures trained with AuxK, which need the dead latents every step.
template <typename Activation>
inline constexpr bool uses_auxk = std::is_same<Activation, TopK>::value || std::is_same<Activation, BatchTopK>::value;

/// ReLU: λ·L1, reduced and weighted as the config says.
template <typename Scalar>
L1Objective<Scalar> make_objective(const ReLU&, const TrainingConfig& c, double coefficient,
                                   const std::vector<Index>&) {
  return L1Objective<Scalar>{static_cast<Scalar>(coefficient), c.l1_reduction, c.l1_weighting};
}

/// TopK and BatchTopK: reconstruction + AuxK on the latents dead right now.
template <typename Scalar, typename Activation, typename = std::enable_if_t<uses_auxk<Activation>>>
TopKObjective<Scalar> make_objective(const Activation&, const TrainingConfig& c, double,
                                     const std::vector<Index>& dead) {
  TopKObjective<Scalar> objective;
  objective.aux_k_coefficient = c.aux_k_coefficient;
  objective.aux_k = c.aux_k;
  objective.dead_latents = dead;
  return objective;
}

/// JumpReLU: λ·L0, or λ·(L0/target − 1)² when config.target_l0 > 0.
template <typename Scalar>
JumpReLUObjective<Scalar> make_objective(const JumpReLU&, const TrainingConfig& c, double coefficient,
                                         const std::vector<Index>&) {
  JumpReLUObjective<Scalar> objective;
  objective.l0_coefficient = static_cast<Scalar>(coefficient);
  objective.bandwidth = static_cast<Scalar>(c.jumprelu_bandwidth);
  objective.target_l0 = c.target_l0;
  return objective;
}

/// Gated: λ·L1 of the gate activations plus the auxiliary reconstruction.
template <typename Scalar>
GatedObjective<Scalar> make_objective(const Gated&, const TrainingConfig& c, double coefficient,
                                      const std::vector<Index>&) {
  GatedObjective<Scalar> objective;
  objective.l1_coefficient = static_cast<Scalar>(coefficient);
  objective.weighting = c.l1_weighting;
  return objective;
}

/// Nothing to do for most architectures.
template <typename Model, typename Scalar>
void update_after_step(Model&, const LossWorkspace<Scalar>&, const TrainingConfig&, long long) {}

/// BatchTopK: θ follows the smallest code the batch rule kept (an exponential
/// moving average, dictionary_learning's rule), from threshold_start_step on;
/// the first value is taken as is.
template <typename Scalar, int D, int F>
void update_after_step(SparseAutoEncoder<Scalar, D, F, BatchTopK>& model, const LossWorkspace<Scalar>& ws,
                       const TrainingConfig& c, long long steps_done) {
  if (steps_done < c.threshold_start_step || ws.active.nonzeros() == 0) return;
  double& theta = model.activation().threshold;
  theta = theta < 0.0 ? ws.smallest_kept_code
                      : c.threshold_momentum * theta + (1.0 - c.threshold_momentum) * ws.smallest_kept_code;
}

}  // namespace sae
