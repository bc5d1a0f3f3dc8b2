// sae/optim/sgd.hpp: plain stochastic gradient descent, as torch.optim.SGD
// with no momentum, dampening or weight decay: θ ← θ − lr · g.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "../core/parameters.hpp"

namespace sae {

template <typename Scalar>
class SGD {
 public:
  explicit SGD(Scalar learning_rate) : learning_rate_(learning_rate) { check(); }

  /// One update of `params` along `grads` (same type and shapes).
  template <int D, int F>
  void step(Parameters<Scalar, D, F>& params, const Parameters<Scalar, D, F>& grads) const {
    check();
    for_each_pair(params, grads, "sae::SGD::step",
                  [&](const char*, auto& theta, const auto& g) { theta.noalias() -= learning_rate_ * g; });
  }

  Scalar learning_rate() const { return learning_rate_; }
  /// Settable, for schedules: `sgd.learning_rate() = 1e-4f;`.
  Scalar& learning_rate() { return learning_rate_; }

 private:
  void check() const {
    if (!(learning_rate_ >= Scalar(0)) || !std::isfinite(learning_rate_))
      throw std::invalid_argument("sae::SGD: learning rate must be finite and >= 0, got " +
                                  std::to_string(learning_rate_));
  }

  Scalar learning_rate_;
};

}  // namespace sae
