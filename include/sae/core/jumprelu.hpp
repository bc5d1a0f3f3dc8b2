// sae/core/jumprelu.hpp: the JumpReLU architecture (Gemma Scope).
//
//   P = A W_enc + b_enc;   f = P · 1[P > θ]      (θ = params.threshold, one per latent)
//
// A latent is silent until its pre-activation clears its own threshold, then
// passes the pre-activation unchanged (no shrinkage, unlike ReLU + L1). The
// threshold is a trained parameter; its gradient goes through a
// straight-through estimator (sae/loss/jumprelu_objective.hpp).
#pragma once

#include <stdexcept>
#include <string>

#include "../config.hpp"
#include "../detail/parallel.hpp"

namespace sae {

struct JumpReLU {
  static constexpr const char* name = "jumprelu";
  /// θ given to latents when a model of this architecture is created
  /// (dictionary_learning's 0.001).
  double initial_threshold = 0.001;

  /// Gives the model its threshold vector (initial_threshold everywhere) if it has none.
  template <typename Params>
  void add_parameters(Params& p) const {
    if (p.threshold.size() == 0)
      p.threshold.setConstant(p.dict_size(), static_cast<typename Params::Scalar>(initial_threshold));
  }

  template <typename Params>
  void check(const Params& p, const char* where) const {
    if (p.threshold.size() != p.dict_size())
      throw std::invalid_argument(std::string(where) + ": a JumpReLU model needs a threshold per latent (" +
                                  std::to_string(p.dict_size()) + "), it has " +
                                  std::to_string(p.threshold.size()));
  }

  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    using Scalar = typename Derived::Scalar;
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(H.size())))
    for (Index b = 0; b < H.rows(); ++b)
      for (Index f = 0; f < H.cols(); ++f) {
        const Scalar pre = H(b, f) + p.b_enc(f);
        H(b, f) = pre > p.threshold(f) ? pre : Scalar(0);
      }
  }
};

}  // namespace sae
