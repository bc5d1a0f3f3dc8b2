// sae/train/gradient_clipping.hpp: gradient-norm clipping, as
// torch.nn.utils.clip_grad_norm_ does it (the April 2024 recipe and TopK
// training clip at 1.0).
//
// The norm is one L2 norm over all four tensors together, not one per tensor,
// so clipping shrinks the whole gradient and keeps its direction.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "../core/parameters.hpp"
#include "../detail/double_sums.hpp"
#include "../detail/parallel.hpp"

namespace sae {

/// The global L2 norm of a parameter set: sqrt of the sum of squares of every
/// entry of W_enc, b_enc, W_dec and b_dec (and of an architecture's own
/// parameters), accumulated in double; the same for any thread count.
template <typename Scalar, int D, int F>
double gradient_norm(const Parameters<Scalar, D, F>& grads) {
  double sum_of_squares = 0.0;
  grads.for_each(
      [&](const char*, const auto& t) { sum_of_squares += detail::sum_of_squares_in_double(t.data(), t.size()); });
  return std::sqrt(sum_of_squares);
}

/// Scales `grads` so that their global norm is at most about `max_norm`, and
/// returns the norm before clipping.
///
/// torch's rule exactly: coefficient = max_norm / (norm + 1e-6); if it is < 1
/// every entry is multiplied by it (so the clipped norm is a hair under
/// max_norm, and clipping starts when norm + 1e-6 > max_norm); otherwise the
/// gradients are left unchanged.
///
/// requires: max_norm > 0 (+infinity turns clipping off); std::invalid_argument otherwise.
/// ensures:  returns the norm before clipping. If that norm is not finite the
///           gradients are left unchanged (torch would fill them with NaN):
///           the caller should check the result and stop, naming the step.
template <typename Scalar, int D, int F>
double clip_gradient_norm(Parameters<Scalar, D, F>& grads, double max_norm) {
  if (!(max_norm > 0.0))
    throw std::invalid_argument("sae::clip_gradient_norm: max_norm must be positive, got " +
                                std::to_string(max_norm));
  const double norm = gradient_norm(grads);
  if (!std::isfinite(norm)) return norm;
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1.0) {
    const auto c = static_cast<Scalar>(coefficient);
    grads.for_each([&](const char*, auto& t) {
      Scalar* entries = t.data();
      const Index n = t.size();
      SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(n)))
      for (Index i = 0; i < n; ++i) entries[i] *= c;
    });
  }
  return norm;
}

}  // namespace sae
