// sae/steering.hpp: editing activations through one latent.
//
// The Golden Gate demonstration: clamp one latent to a value and put the
// edited activation back into the model. The SAE does not reconstruct x
// exactly, so the edit keeps its error term:
//
//     x' = x̂(f with f_l = value) + (x − x̂(f)) = x + (value − f_l) · W_dec,l
//
// which changes x only along latent l's decoder direction (Templeton et al.
// 2024). Works for every architecture: f is the model's own encode.
#pragma once

#include <stdexcept>
#include <string>

#include "core/sparse_autoencoder.hpp"

namespace sae {

/// The rows of X (B x D) with latent `latent` clamped to `value`.
/// requires: 0 <= latent < F and X of width D (std::invalid_argument otherwise).
template <typename Scalar, int D, int F, typename Activation, typename Derived>
Batch<Scalar, D> steer(const SparseAutoEncoder<Scalar, D, F, Activation>& model, const Eigen::MatrixBase<Derived>& X,
                       Index latent, Scalar value) {
  if (latent < 0 || latent >= model.dict_size())
    throw std::invalid_argument("sae::steer: latent " + std::to_string(latent) + " is out of range [0, " +
                                std::to_string(model.dict_size()) + ")");
  typename SparseAutoEncoder<Scalar, D, F, Activation>::CodeBatch codes;
  model.encode(X, codes);  // checks X's width
  Batch<Scalar, D> edited = X;
  const auto direction = model.params().W_dec.row(latent);
  for (Index b = 0; b < edited.rows(); ++b) edited.row(b) += (value - codes(b, latent)) * direction;
  return edited;
}

}  // namespace sae
