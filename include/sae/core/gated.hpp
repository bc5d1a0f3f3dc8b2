// sae/core/gated.hpp: the Gated architecture (Rajamanoharan et al. 2024).
//
// Two paths share the encoder directions W_enc:
//
//   H      = A W_enc
//   π_gate = H + b_enc                    which latents fire:  1[π_gate > 0]
//   π_mag  = H ⊙ exp(r_mag) + b_mag       how strongly:        ReLU(π_mag)
//   f      = 1[π_gate > 0] ⊙ ReLU(π_mag)
//
// b_enc is the gate bias (SAELens calls it b_gate). Separating "whether" from
// "how much" lets the sparsity penalty act on the gate without shrinking the
// magnitudes. The objective (with its auxiliary loss) is in
// sae/loss/gated_objective.hpp.
#pragma once

#include <stdexcept>
#include <string>

#include "../config.hpp"

namespace sae {

struct Gated {
  static constexpr const char* name = "gated";

  /// Gives the model r_mag = 0 and b_mag = 0 if it has none (so the magnitude
  /// path starts as H, the gate path's pre-activation without its bias).
  template <typename Params>
  void add_parameters(Params& p) const {
    if (p.r_mag.size() == 0) p.r_mag.setZero(p.dict_size());
    if (p.b_mag.size() == 0) p.b_mag.setZero(p.dict_size());
  }

  template <typename Params>
  void check(const Params& p, const char* where) const {
    if (p.r_mag.size() != p.dict_size() || p.b_mag.size() != p.dict_size())
      throw std::invalid_argument(std::string(where) + ": a Gated model needs r_mag and b_mag per latent (" +
                                  std::to_string(p.dict_size()) + "), it has " + std::to_string(p.r_mag.size()) +
                                  " and " + std::to_string(p.b_mag.size()));
  }

  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    using Scalar = typename Derived::Scalar;
    thread_local Eigen::Matrix<Scalar, 1, Eigen::Dynamic> magnitude_scale;
    magnitude_scale = p.r_mag.transpose().array().exp();
    for (Index b = 0; b < H.rows(); ++b)
      for (Index f = 0; f < H.cols(); ++f) {
        const Scalar h = H(b, f);
        const Scalar magnitude = h * magnitude_scale(f) + p.b_mag(f);
        H(b, f) = h + p.b_enc(f) > Scalar(0) && magnitude > Scalar(0) ? magnitude : Scalar(0);
      }
  }
};

}  // namespace sae
