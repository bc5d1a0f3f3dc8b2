// sae/loss/workspace.hpp: reusable buffers for loss-and-gradient evaluations.
#pragma once

#include "../core/types.hpp"

namespace sae {

/// The intermediate B x F and B x D matrices of one loss-and-gradient
/// evaluation. Keep one alive across training steps: after the first batch of
/// a given size, evaluations allocate nothing outside Eigen's GEMM.
/// Not thread-safe: one workspace per concurrent evaluation.
template <typename Scalar>
struct LossWorkspace {
  Batch<Scalar> codes;          ///< B x F: pre-activations, then codes f
  Batch<Scalar> error;          ///< B x D: x̂ − x, then the gradient wrt x̂
  Batch<Scalar> code_gradient;  ///< B x F: gradient wrt the codes, then wrt the pre-activations
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> decoder_norms;  ///< F: ‖W_dec,f‖ (norm-weighted penalties)
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> code_sums;      ///< F: Σ_b f_bf (norm-weighted penalties)
};

}  // namespace sae
