// sae/train/input_scaling.hpp: one scalar that brings activations to a
// standard size, and folding it back into the weights.
//
// Activation norms differ by orders of magnitude between models and layers,
// so hyper-parameters (λ, lr) tuned at one scale do not transfer. Training on
// s·x with s chosen from the data makes them transfer:
//
//   InputScaling::MeanNormSqrtD        SAELens (normalize_activations =
//                                      "expected_average_only_in"):
//                                      s = sqrt(D) / mean_i ‖x_i‖, so E‖s x‖ = sqrt(D)
//   InputScaling::UnitMeanSquaredNorm  dictionary_learning (normalize_activations):
//                                      s = 1 / sqrt(mean_i ‖x_i‖²), so E‖s x‖² = 1
//
// The trainer multiplies every input by s. Before saving, fold_input_scale
// changes the weights so that the saved model takes RAW activations and
// reconstructs them in raw units (SAELens's fold_activation_norm_scaling_factor).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "../config.hpp"
#include "../core/parameters.hpp"

namespace sae {

/// How the input scale is chosen (see the file comment).
enum class InputScaling {
  None,                 ///< s = 1
  MeanNormSqrtD,        ///< SAELens: mean norm sqrt(D) after scaling
  UnitMeanSquaredNorm,  ///< dictionary_learning: mean squared norm 1 after scaling
};

/// The scale s by which the trainer multiplies the rows of X (N x D), as
/// `mode` defines it; norms accumulated in double.
///
/// requires: X has at least one row, all entries finite, and not every row
///           zero (std::invalid_argument otherwise; s would be infinite).
/// ensures:  s > 0 and finite; MeanNormSqrtD: mean_i ‖s x_i‖ = sqrt(D);
///           UnitMeanSquaredNorm: mean_i ‖s x_i‖² = 1; None: s = 1.
template <typename Derived>
double estimate_input_scale(const Eigen::MatrixBase<Derived>& X, InputScaling mode) {
  constexpr const char* where = "sae::estimate_input_scale";
  if (mode == InputScaling::None) return 1.0;
  if (X.rows() < 1 || X.cols() < 1)
    throw std::invalid_argument(std::string(where) + ": the data is " + std::to_string(X.rows()) + " x " +
                                std::to_string(X.cols()) + ", expected at least one row and one column");
  double sum_norm = 0.0, sum_squared_norm = 0.0;
  for (Index r = 0; r < X.rows(); ++r) {
    const double squared = X.row(r).template cast<double>().squaredNorm();
    if (!std::isfinite(squared))
      throw std::invalid_argument(std::string(where) + ": row " + std::to_string(r) +
                                  " of the data has a non-finite value (or a norm too large for double)");
    sum_norm += std::sqrt(squared);
    sum_squared_norm += squared;
  }
  const double n = static_cast<double>(X.rows());
  if (!(sum_squared_norm > 0.0))
    throw std::invalid_argument(std::string(where) + ": every row of the data is zero; no scale makes its norm 1");
  double scale = 1.0;
  switch (mode) {
    case InputScaling::MeanNormSqrtD: scale = std::sqrt(static_cast<double>(X.cols())) / (sum_norm / n); break;
    case InputScaling::UnitMeanSquaredNorm: scale = 1.0 / std::sqrt(sum_squared_norm / n); break;
    case InputScaling::None: break;
  }
  if (!std::isfinite(scale))
    throw std::invalid_argument(std::string(where) + ": the data's norms are too small for a finite scale");
  return scale;
}

/// Folds the input scale s into the weights: a model trained on s·x becomes
/// one that takes raw x and gives the same codes, and reconstructions in raw
/// units.
///
/// Derivation (the model: f = ReLU(x W_enc + b_enc), x̂ = f W_dec + b_dec).
/// Trained on x_s = s x, the codes are f = ReLU((s x) W_enc + b_enc)
/// = ReLU(x (s W_enc) + b_enc), so W_enc' = s W_enc, b_enc' = b_enc. Its
/// reconstruction x̂_s ≈ s x, so in raw units x̂ = x̂_s / s = f (W_dec / s) + b_dec / s,
/// so W_dec' = W_dec / s, b_dec' = b_dec / s.
///
/// When b_dec is subtracted from the input before encoding (SAELens
/// apply_b_dec_to_input, dictionary_learning's standard SAE; the current model
/// does not do this), the same fold still holds: (s x − b_dec) W_enc =
/// (x − b_dec / s)(s W_enc), which is the folded model's pre-activation with
/// b_dec' = b_dec / s. Thresholds (JumpReLU) act on the pre-activation, which
/// is unchanged, so they are not scaled.
///
/// The folded decoder rows have norm 1/s times the trained ones: a unit-norm
/// constraint no longer holds on the saved model. To train on, unfold with
/// fold_input_scale(params, 1 / s).
///
/// requires: scale > 0, finite, and so in Scalar (std::invalid_argument otherwise).
/// ensures:  for any batch X, folded.encode(X) = original.encode(s X) and
///           folded.decode(f) = original.decode(f) / s (to rounding; exactly
///           when s is a power of two).
template <typename Scalar, int D, int F>
void fold_input_scale(Parameters<Scalar, D, F>& params, double scale) {
  if (!(scale > 0.0) || !std::isfinite(scale))
    throw std::invalid_argument("sae::fold_input_scale: scale must be positive and finite, got " +
                                std::to_string(scale));
  const auto s = static_cast<Scalar>(scale);
  if (!(s > Scalar(0)) || !std::isfinite(s))
    throw std::invalid_argument("sae::fold_input_scale: scale " + std::to_string(scale) +
                                " is out of range for the model's scalar type");
  params.W_enc *= s;
  params.W_dec /= s;  // divide, not multiply by 1/s: one rounding, not two
  params.b_dec /= s;
}

}  // namespace sae
