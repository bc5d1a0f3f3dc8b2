// sae/core/activation.hpp: the seed's activation function.
#pragma once

#include "../config.hpp"

namespace sae {

/// ReLU in place. Its derivative, as PyTorch takes it, is 1 where the output
/// is > 0 and 0 elsewhere (also at exactly 0), so "output > 0" is the mask the
/// backward pass uses.
template <typename Derived>
void relu_in_place(Eigen::MatrixBase<Derived>& m) {
  m.derived() = m.derived().cwiseMax(typename Derived::Scalar(0));
}

template <typename Derived>
void relu_in_place(Eigen::MatrixBase<Derived>&& m) {
  m.derived() = m.derived().cwiseMax(typename Derived::Scalar(0));
}

}  // namespace sae
