// sae/loss/l1_objective.hpp: the seed's objective, L2 reconstruction + λ·L1.
//
//     L  = (1/B) Σ_b Σ_d (x̂ − x)²  +  λ · L1
//     L1 = Σ_b Σ_f f              (L1Reduction::SumOverBatch: the seed's code, exactly)
//     L1 = (1/B) Σ_b Σ_f f        (L1Reduction::MeanOverBatch: dictionary_learning, SAELens)
//
// With the seed's sum the sparsity term grows with the batch size while the L2
// term does not, so a λ tuned at one batch size means something else at another.
//
// L1Weighting::DecoderNorm weights each latent's codes by its decoder row norm,
// L1 = Σ_b Σ_f f_bf ‖W_dec,f‖ (reduced as above): Anthropic's April 2024 update,
// SAELens' standard SAE. It stops the model from dodging the penalty by
// shrinking codes and growing decoder rows when the decoder is unconstrained.
//
// This is the objective of the ReLU architecture (SparseAutoEncoder's default).
//
// Gradients, derived by hand (X the B x D batch, A = X − a·b_dec the encoder's
// input, P = A W_enc + 1 b_encᵀ, Fc = ReLU(P), E = X̂ − X; λ' = λ for the
// sum, λ/B for the mean):
//
//     G_X̂    = (2/B) E
//     ∇W_dec = Fcᵀ G_X̂               ∇b_dec = Σ_b G_X̂  (− a W_enc Σ_b G_P)
//     G_P    = (G_X̂ W_decᵀ + λ') ⊙ 1[P > 0]
//     ∇W_enc = Aᵀ G_P                 ∇b_enc = Σ_b G_P
//
// and with DecoderNorm weighting (n_f = ‖W_dec,f‖):
//
//     G_P    = (G_X̂ W_decᵀ + λ' n_f) ⊙ 1[P > 0]
//     ∇W_dec,f += λ' (Σ_b f_bf) W_dec,f / n_f      (0 for a zero row)
//
// They are checked against central finite differences and PyTorch autograd in
// tests/test_loss.cpp.
//
// Every term after the encoder product involves the codes, so once they are
// sparse (a trained SAE fires a few dozen of F latents per token) the decode
// and the whole backward pass touch only the active (token, latent) pairs
// (sae/detail/sparse_codes.hpp); Kernels::Automatic chooses per batch from
// the measured density, and both paths give the same loss and gradients
// (tests/test_sparse_kernels.cpp).
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../detail/shape_check.hpp"
#include "../detail/parallel.hpp"
#include "../detail/sparse_codes.hpp"
#include "loss_report.hpp"
#include "objective.hpp"
#include "reconstruction.hpp"
#include "workspace.hpp"

namespace sae {

/// How the L1 term is reduced over the batch.
enum class L1Reduction {
  SumOverBatch,   ///< Σ over batch and latents (the seed's calculate_loss)
  MeanOverBatch,  ///< mean over the batch of Σ over latents
};

/// What each latent's codes are multiplied by inside the L1 term.
enum class L1Weighting {
  Uniform,      ///< L1 = Σ f (the seed, dictionary_learning)
  DecoderNorm,  ///< L1 = Σ f ‖W_dec,f‖ (Anthropic April 2024, SAELens)
};

/// The seed's objective: `L1Objective<float>{1e-3f, L1Reduction::SumOverBatch}`.
template <typename Scalar>
struct L1Objective {
  Scalar l1_coefficient = Scalar(0);  ///< λ
  L1Reduction reduction = L1Reduction::SumOverBatch;
  L1Weighting weighting = L1Weighting::Uniform;
  Kernels kernels = Kernels::Automatic;

  /// The loss of `model` on the batch X (B x D), without gradients. Leaves
  /// the codes in ws.codes and x̂ − x in ws.error (the backward pass uses them).
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                      const Eigen::MatrixBase<Derived>& X, LossWorkspace<Scalar>& ws) const {
    static_assert(std::is_same<Activation, ReLU>::value,
                  "sae: L1Objective trains the ReLU architecture; TopK and BatchTopK use TopKObjective, "
                  "JumpReLU JumpReLUObjective, Gated GatedObjective");
    detail::check_objective_input(model, X, "sae::L1Objective");

    const auto& p = model.params();
    const Index batch = X.rows(), dict = model.dict_size();
    // The codes (the ReLU in the GEMM's epilogue, or in the pass below
    // without the kernel; ReLU::encode_in_place's rule: output > 0 is the
    // mask), then one pass per row sums and counts them while the row is in
    // cache.
    const bool clamped = detail::relu_of_pre_activations(model, X, ws);
    ws.row_sums.resize(batch);
    const Index nonzeros = ws.active.count_rows(batch, dict, [&](Index b) {
      auto row = ws.codes.row(b);
      if (!clamped) row = row.cwiseMax(Scalar(0));
      ws.row_sums(b) = row.sum();
      return static_cast<Index>((row.array() > Scalar(0)).count());
    });
    const double code_total = static_cast<double>(ws.row_sums.sum());

    ws.sparse_step = detail::use_sparse_kernels(kernels, ws.active.density());
    if (ws.sparse_step) {
      ws.active.fill_from_dense(ws.codes);
      detail::sparse_decode(ws.active, p.W_dec, ws.error);
    } else {
      ws.active.reset(batch, dict);  // not filled: the dense path reads ws.codes
      detail::product_into(ws.codes, p.W_dec, ws.error);
    }

    const double b = static_cast<double>(batch);
    LossReport r;
    r.l2 = detail::reconstruction_error(model, X, ws.error);
    double l1_sum;
    if (weighting == L1Weighting::DecoderNorm) {
      ws.decoder_norms.resize(model.dict_size());
      ws.decoder_norms.noalias() = p.W_dec.rowwise().norm();
      ws.code_sums.resize(model.dict_size());
      if (ws.sparse_step) {
        ws.code_sums.setZero();
        for (std::size_t j = 0; j < ws.active.value.size(); ++j) ws.code_sums(ws.active.latent[j]) += ws.active.value[j];
      } else {
        detail::column_sums(ws.codes, ws.code_sums);
      }
      l1_sum = static_cast<double>(ws.code_sums.dot(ws.decoder_norms));
    } else {
      l1_sum = code_total;
    }
    r.l1 = reduction == L1Reduction::SumOverBatch ? l1_sum : l1_sum / b;
    r.l0 = static_cast<double>(nonzeros) / b;
    r.loss = r.l2 + static_cast<double>(l1_coefficient) * r.l1;
    return r;
  }

  /// The loss of `model` on X and its gradient with respect to every
  /// parameter, written into `grads` (resized if its sizes differ).
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate_with_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                                    const Eigen::MatrixBase<Derived>& X, Parameters<Scalar, D, F>& grads,
                                    LossWorkspace<Scalar>& ws) const {
    const LossReport report = evaluate(model, X, ws);
    const auto& p = model.params();
    detail::size_gradients(model, grads);
    const Index batch = X.rows();
    const Scalar inv_batch = Scalar(1) / static_cast<Scalar>(batch);
    const Scalar l1_slope = reduction == L1Reduction::SumOverBatch ? l1_coefficient : l1_coefficient * inv_batch;

    // Decoder side: G_X̂ = (2/B) E, in place of E.
    ws.error *= Scalar(2) * inv_batch;
    grads.b_dec.noalias() = ws.error.colwise().sum().transpose();
    if (ws.sparse_step) {
      sparse_gradient(model, X, l1_slope, grads, ws);
      detail::add_decoder_bias_centering_gradient(model, ws.latent_sums, grads);
    } else {
      dense_gradient(model, X, l1_slope, grads, ws);
      detail::add_input_centering_gradient(model, ws.latent_sums, grads);
    }
    // The penalty's own pull on each decoder row: λ' (Σ_b f_bf) W_dec,f / n_f.
    if (weighting == L1Weighting::DecoderNorm)
      for (Index f = 0; f < model.dict_size(); ++f) {
        const Scalar norm = ws.decoder_norms(f);
        if (norm > Scalar(0)) grads.W_dec.row(f) += (l1_slope * ws.code_sums(f) / norm) * p.W_dec.row(f);
      }
    grads.b_enc = ws.latent_sums;
    return report;
  }

 private:
  // The l1_slope λ' added to the gradient wrt a code of latent f.
  Scalar code_slope(Scalar l1_slope, const LossWorkspace<Scalar>& ws, Index f) const {
    return weighting == L1Weighting::DecoderNorm ? l1_slope * ws.decoder_norms(f) : l1_slope;
  }

  // G_P = (G_X̂ W_decᵀ + λ'[n_f]) ⊙ 1[f > 0] with GEMMs over the whole batch.
  template <typename Model, typename Derived, typename Grads>
  void dense_gradient(const Model& model, const Eigen::MatrixBase<Derived>& X, Scalar l1_slope, Grads& grads,
                      LossWorkspace<Scalar>& ws) const {
    const auto& p = model.params();
    detail::product_into(ws.codes.transpose(), ws.error, grads.W_dec);
    detail::product_into(ws.error, p.W_dec.transpose(), ws.code_gradient);
    // Penalty slope, ReLU mask and Σ_b G_P (b_enc's gradient) in one pass.
    ws.latent_sums.setZero(model.dict_size());
    if (weighting == L1Weighting::DecoderNorm)
      mask_code_gradient(ws, [&](Index f) { return l1_slope * ws.decoder_norms(f); });
    else
      mask_code_gradient(ws, [&](Index) { return l1_slope; });
    detail::product_into(X.derived().transpose(), ws.code_gradient, grads.W_enc);
  }

  // G_P = (G_P + slope(f)) ⊙ 1[f > 0] in place, and its column sums into
  // ws.latent_sums. Each thread owns a slice of the latents, so the sums keep
  // their row order for any thread count. A plain loop the compiler
  // vectorises: Eigen 3.4's select() is not, and at a fresh model's ~50%
  // density its mispredicted branches cost ten times the pass.
  template <typename Slope>
  static void mask_code_gradient(LossWorkspace<Scalar>& ws, Slope slope) {
    const Index rows = ws.codes.rows(), cols = ws.codes.cols();
    Scalar* sums = ws.latent_sums.data();
    detail::for_column_slices(cols, rows * cols, [&](Index begin, Index end) {
      const Scalar* const slopes = detail::slice_values<Scalar>(begin, end, slope);
      for (Index b = 0; b < rows; ++b) {
        const Scalar* code = ws.codes.row(b).data();
        Scalar* gradient = ws.code_gradient.row(b).data();
        for (Index f = begin; f < end; ++f) {
          const Scalar on = code[f] > Scalar(0);  // 1 or 0 (a multiply: g++ keeps a ?: as a branch)
          const Scalar g = on * (gradient[f] + slopes[f - begin]);
          gradient[f] = g;
          sums[f] += g;
        }
      }
    });
  }

  // The same at the active entries of ws.active only.
  template <typename Model, typename Derived, typename Grads>
  void sparse_gradient(const Model& model, const Eigen::MatrixBase<Derived>& X, Scalar l1_slope, Grads& grads,
                       LossWorkspace<Scalar>& ws) const {
    const auto& p = model.params();
    ws.latent_sums.resize(model.dict_size());
    ws.active.index_by_latent();  // the two kernels below run latent by latent
    detail::sparse_decoder_backward(ws.active, ws.error, p.W_dec, grads.W_dec, ws.active_gradient, /*accumulate=*/false);
    for (std::size_t j = 0; j < ws.active_gradient.size(); ++j)
      ws.active_gradient[j] += code_slope(l1_slope, ws, ws.active.latent[j]);
    detail::sparse_encoder_gradient(ws.active, ws.active_gradient, X, detail::encoder_input_shift(model), grads.W_enc,
                                    ws.latent_sums, false);
  }
};

}  // namespace sae
