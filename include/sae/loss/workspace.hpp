// sae/loss/workspace.hpp: reusable buffers for loss-and-gradient evaluations.
#pragma once

#include <vector>

#include "../core/types.hpp"
#include "../detail/sparse_codes.hpp"

namespace sae {

/// The intermediate matrices of one loss-and-gradient evaluation. Keep one
/// alive across training steps: after the first batch of a given size,
/// evaluations allocate nothing outside Eigen's GEMM (the sparse kernels'
/// entry lists keep their capacity and grow only for a batch with more active
/// codes than any before it). Objectives use the
/// buffers their architecture needs and leave the others alone.
/// Not thread-safe: one workspace per concurrent evaluation.
template <typename Scalar>
struct LossWorkspace {
  using LatentVector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  Batch<Scalar> codes;           ///< B x F: the codes f (after the objective, always dense)
  Batch<Scalar> error;           ///< B x D: x̂ − x, then the gradient wrt x̂
  Batch<Scalar> code_gradient;   ///< B x F: gradient wrt the codes, then wrt the pre-activations
  Batch<Scalar> pre_activations; ///< B x F: pre-activations the backward pass needs (JumpReLU, Gated)
  LatentVector decoder_norms;    ///< F: ‖W_dec,f‖ (norm-weighted penalties)
  LatentVector code_sums;        ///< F: Σ_b f_bf (norm-weighted penalties)
  LatentVector row_sums;         ///< B: Σ_f f_bf (the L1 term)
  LatentVector latent_sums;      ///< F: Σ_b of the gradient wrt the encoder product
  LatentVector encoder_bias;     ///< F: b_enc − W_encᵀ b_dec, the pre-activations' bias as a map of X (TopK)
  LatentVector magnitude_scale;  ///< F: exp(r_mag) (Gated)

  // Sparse kernels (ReLU, TopK, BatchTopK): the active codes, the auxiliary (AuxK)
  // codes, the gradient at their entries, and the auxiliary reconstruction.
  SparseCodes<Scalar> active;
  SparseCodes<Scalar> auxiliary;
  std::vector<Scalar> active_gradient;
  std::vector<Scalar> auxiliary_gradient;
  Batch<Scalar> auxiliary_error;  ///< B x D: ê − (x − x̂), then its gradient
  std::vector<Scalar> selection_scratch;
  /// Whether the last forward pass took the sparse kernels (the backward
  /// pass takes the same path).
  bool sparse_step = false;
  /// BatchTopK: the smallest code kept in the last batch (its threshold's target).
  double smallest_kept_code = 0;
};

}  // namespace sae
