// sae/core/activation.hpp: activation policies, and the seed's ReLU.
//
// A SparseAutoEncoder's architecture is a policy object (ensmallen's
// update-policy pattern): the model computes H = A W_enc, with A the input
// (minus b_dec when the model applies b_dec to its input), and the policy
// turns H into codes. Decoding, the parameters, the trainer, the metrics and
// the file formats are shared. A policy provides:
//
//   static constexpr const char* name;      "relu", "topk", ... (SAELens' spelling)
//   void add_parameters(Params& p) const;   sizes the architecture's own
//                                           per-latent vectors (threshold, r_mag, b_mag)
//   void check(const Params& p, const char* where) const;
//                                           throws std::invalid_argument unless p
//                                           has what the architecture needs
//   void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const;
//                                           H (B x F) = A W_enc on entry, the codes on exit
//
// The policies are ReLU (here), TopK and BatchTopK (topk.hpp), JumpReLU
// (jumprelu.hpp) and Gated (gated.hpp). Their training objectives, with the
// hand-derived gradients, are in sae/loss.
#pragma once

#include "../config.hpp"
#include "../detail/parallel.hpp"

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

/// The seed's architecture: f = ReLU(A W_enc + b_enc). Trained with an L1
/// penalty (L1Objective).
struct ReLU {
  static constexpr const char* name = "relu";

  template <typename Params>
  void add_parameters(Params&) const {}

  template <typename Params>
  void check(const Params&, const char*) const {}

  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    using Scalar = typename Derived::Scalar;
    // Bias and ReLU in one pass over H, a row per thread.
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(H.size())))
    for (Index b = 0; b < H.rows(); ++b) H.row(b) = (H.row(b) + p.b_enc.transpose()).cwiseMax(Scalar(0));
  }
};

}  // namespace sae
