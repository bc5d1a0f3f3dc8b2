// sae/core/batchtopk_export.hpp: a trained BatchTopK SAE as the JumpReLU SAE
// it is at inference.
//
// BatchTopK's inference rule, f = P · 1[P > θ] with one learned θ, is a
// JumpReLU whose thresholds are all θ; SAELens and dictionary_learning publish
// BatchTopK SAEs that way, and every JumpReLU reader can then use them.
#pragma once

#include <stdexcept>

#include "sparse_autoencoder.hpp"

namespace sae {

/// The JumpReLU model with the same weights, apply_b_dec_to_input and every
/// threshold equal to the BatchTopK threshold; its encode gives the same
/// codes as the BatchTopK model's.
///
/// requires: the threshold has been learned (≥ 0), else std::invalid_argument
///           (an untrained BatchTopK model encodes by per-token TopK, which no
///           threshold reproduces).
template <typename Scalar, int D, int F>
SparseAutoEncoder<Scalar, D, F, JumpReLU> to_jumprelu(const SparseAutoEncoder<Scalar, D, F, BatchTopK>& model) {
  const double theta = model.activation().threshold;
  if (!(theta >= 0.0))
    throw std::invalid_argument(
        "sae::to_jumprelu: the BatchTopK threshold has not been learned yet (it is " + std::to_string(theta) +
        "); train the model first");
  auto params = model.params();
  params.threshold.setConstant(model.dict_size(), static_cast<Scalar>(theta));
  return SparseAutoEncoder<Scalar, D, F, JumpReLU>(std::move(params), JumpReLU{}, model.apply_b_dec_to_input());
}

}  // namespace sae
