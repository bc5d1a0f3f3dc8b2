// sae/loss/gated_objective.hpp: training Gated SAEs (Rajamanoharan et al. 2024).
//
//     H      = A W_enc                       (A = X − a·1 b_decᵀ)
//     π_gate = H + 1 b_encᵀ                  π_mag = H ⊙ 1 exp(r_mag)ᵀ + 1 b_magᵀ
//     f      = 1[π_gate > 0] ⊙ ReLU(π_mag)   x̂ = f W_dec + b_dec
//
//     L        = (1/B) Σ_b ‖x̂_b − x_b‖²  +  λ · L_sparse  +  L_aux
//     L_sparse = (1/B) Σ_b Σ_f ReLU(π_gate)_bf            (L1Weighting::Uniform: the paper,
//                                                          dictionary_learning's GatedSAETrainer)
//     L_sparse = (1/B) Σ_b Σ_f ReLU(π_gate)_bf ‖W_dec,f‖  (L1Weighting::DecoderNorm: SAELens)
//     L_aux    = (1/B) Σ_b ‖ReLU(π_gate)_b W̄_dec + b̄_dec − x_b‖²
//
// The penalty acts on the gate path, which decides whether a latent fires, so
// it does not shrink the magnitudes. The gate's Heaviside passes no gradient,
// so without L_aux the gate would learn only from the penalty; L_aux makes the
// gate path reconstruct x on its own, through a frozen copy of the decoder:
// W̄_dec and b̄_dec are W_dec and b_dec detached (no gradient reaches W_dec or
// b_dec through L_aux; b_dec's path through A stays live).
//
// Gradients, derived by hand (E = X̂ − X, E_aux = X̂_aux − X, s = exp(r_mag),
// w_f = 1 or n_f = ‖W_dec,f‖):
//
//     G_X̂      = (2/B) E                       G_aux = (2/B) E_aux
//     ∇W_dec   = fᵀ G_X̂                        ∇b_dec = Σ_b G_X̂  (− a W_enc Σ_b G_H)
//     G_πmag   = (G_X̂ W_decᵀ) ⊙ 1[π_gate > 0] ⊙ 1[π_mag > 0]
//     G_πgate  = ((λ/B) w + G_aux W_decᵀ) ⊙ 1[π_gate > 0]
//     ∇r_mag   = s ⊙ Σ_b (G_πmag ⊙ H)           ∇b_mag = Σ_b G_πmag
//     ∇b_enc   = Σ_b G_πgate
//     G_H      = G_πgate + G_πmag ⊙ 1 sᵀ        ∇W_enc = Aᵀ G_H
//
// and with DecoderNorm weighting the penalty's own pull on each decoder row:
//
//     ∇W_dec,f += (λ/B) (Σ_b ReLU(π_gate)_bf) W_dec,f / n_f      (0 for a zero row)
//
// These are exact wherever no π_gate or π_mag is 0, except that ∇W_dec and
// ∇b_dec leave out L_aux's dependence on the detached copies (by design): they
// are the gradient of L with W̄_dec and b̄_dec held fixed. tests/test_gated.cpp
// checks the others against central finite differences of L, and these two
// against finite differences of L computed in the test with the copies fixed.
//
// Reported: r.l2, r.l1 = L_sparse (before λ), r.auxiliary = L_aux, r.l0 = mean
// count of f > 0, r.loss = r.l2 + λ · r.l1 + r.auxiliary.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/gated.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../detail/parallel.hpp"
#include "l1_objective.hpp"
#include "loss_report.hpp"
#include "objective.hpp"
#include "reconstruction.hpp"
#include "workspace.hpp"

namespace sae {

/// dictionary_learning's GatedSAETrainer: `GatedObjective<float>{0.1f}` (with
/// unit-norm decoder rows); SAELens: `GatedObjective<float>{λ, L1Weighting::DecoderNorm}`.
template <typename Scalar>
struct GatedObjective {
  Scalar l1_coefficient = Scalar(0);              ///< λ
  L1Weighting weighting = L1Weighting::Uniform;   ///< what the gate activations are weighted by in L_sparse

  /// The loss of `model` on the batch X (B x D), without gradients. Leaves
  /// H in ws.pre_activations, exp(r_mag) in ws.magnitude_scale, the codes in
  /// ws.codes, ReLU(π_gate) in ws.code_gradient, x̂ − x in ws.error and
  /// x̂_aux − x in ws.auxiliary_error.
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                      const Eigen::MatrixBase<Derived>& X, LossWorkspace<Scalar>& ws) const {
    static_assert(std::is_same<Activation, Gated>::value,
                  "sae: GatedObjective trains the Gated architecture; ReLU uses L1Objective, TopK and BatchTopK "
                  "TopKObjective, JumpReLU JumpReLUObjective");
    constexpr const char* where = "sae::GatedObjective";
    detail::check_objective_input(model, X, where);
    model.activation().check(model.params(), where);
    const double lambda = static_cast<double>(l1_coefficient);
    if (!(lambda >= 0.0) || !std::isfinite(lambda))
      throw std::invalid_argument(std::string(where) + ": l1_coefficient must be finite and >= 0, got " +
                                  std::to_string(lambda));

    const auto& p = model.params();
    const Index batch = X.rows(), dict = model.dict_size();
    model.encoder_product(X, ws.pre_activations);
    ws.magnitude_scale.resize(dict);
    ws.magnitude_scale.array() = p.r_mag.array().exp();
    const auto& H = ws.pre_activations;
    const auto& scale = ws.magnitude_scale;

    // The codes (as Gated::encode_in_place computes them) and the gate path's ReLU(π_gate).
    ws.codes.resize(batch, dict);
    ws.code_gradient.resize(batch, dict);
    Index firing = 0;  // a count: the same for any thread count
    const Scalar *const b_enc = p.b_enc.data(), *const b_mag = p.b_mag.data(), *const scales = scale.data();
    SAE_OMP(parallel for schedule(static) reduction(+ : firing) if (detail::worth_parallel(batch * dict)))
    for (Index b = 0; b < batch; ++b)
      firing += forward_row(dict, H.row(b).data(), b_enc, b_mag, scales, ws.codes.row(b).data(),
                            ws.code_gradient.row(b).data());

    detail::product_into(ws.codes, p.W_dec, ws.error);
    detail::product_into(ws.code_gradient, p.W_dec, ws.auxiliary_error);

    const double b = static_cast<double>(batch);
    LossReport r;
    r.l2 = detail::reconstruction_error(model, X, ws.error);
    r.auxiliary = detail::reconstruction_error(model, X, ws.auxiliary_error);
    r.l0 = static_cast<double>(firing) / b;
    if (weighting == L1Weighting::DecoderNorm) {
      ws.decoder_norms.resize(dict);
      ws.decoder_norms.noalias() = p.W_dec.rowwise().norm();
      ws.code_sums.resize(dict);
      detail::column_sums(ws.code_gradient, ws.code_sums);
      r.l1 = static_cast<double>(ws.code_sums.dot(ws.decoder_norms)) / b;
    } else {
      r.l1 = static_cast<double>(ws.code_gradient.sum()) / b;
    }
    r.loss = r.l2 + lambda * r.l1 + r.auxiliary;
    return r;
  }

  /// The loss of `model` on X and its gradient with respect to every
  /// parameter (L_aux's decoder detached), written into `grads` (resized if
  /// its sizes differ).
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate_with_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                                    const Eigen::MatrixBase<Derived>& X, Parameters<Scalar, D, F>& grads,
                                    LossWorkspace<Scalar>& ws) const {
    const LossReport report = evaluate(model, X, ws);
    const auto& p = model.params();
    detail::size_gradients(model, grads);

    const Index batch = X.rows(), dict = model.dict_size();
    const Scalar inv_batch = Scalar(1) / static_cast<Scalar>(batch);
    const Scalar l1_slope = l1_coefficient * inv_batch;  // λ/B
    const auto& H = ws.pre_activations;
    const auto& scale = ws.magnitude_scale;  // exp(r_mag), from evaluate

    // Decoder side: G_X̂ = (2/B) E and G_aux = (2/B) E_aux, in place.
    ws.error *= Scalar(2) * inv_batch;
    ws.auxiliary_error *= Scalar(2) * inv_batch;
    detail::product_into(ws.codes.transpose(), ws.error, grads.W_dec);
    grads.b_dec.noalias() = ws.error.colwise().sum().transpose();
    if (weighting == L1Weighting::DecoderNorm) {
      // The penalty's pull on each decoder row: (λ/B) (Σ_b ReLU(π_gate)_bf) W_dec,f / n_f.
      for (Index f = 0; f < dict; ++f) {
        const Scalar norm = ws.decoder_norms(f);
        if (norm > Scalar(0)) grads.W_dec.row(f) += (l1_slope * ws.code_sums(f) / norm) * p.W_dec.row(f);
      }
    }

    // The two code gradients, G_X̂ W_decᵀ (magnitude path) into
    // ws.code_gradient and G_aux W_decᵀ (gate path) into ws.codes, which is
    // free once ∇W_dec is done; the codes are rewritten below from H.
    detail::product_into(ws.error, p.W_dec.transpose(), ws.code_gradient);
    detail::product_into(ws.auxiliary_error, p.W_dec.transpose(), ws.codes);

    // One pass: G_πmag, G_πgate, their sums, G_H into ws.code_gradient, f back into ws.codes.
    grads.b_enc.setZero();
    grads.b_mag.setZero();
    grads.r_mag.setZero();
    // Each thread takes a slice of the latents down every row, so each
    // latent's sums keep their row order whatever the thread count; the rows
    // go through backward_row's parameters, not the lambda's captures (see
    // for_column_slices).
    detail::for_column_slices(dict, batch * dict, [&](Index begin, Index end) {
      // The penalty's slope per latent, gathered first.
      const Scalar* const slopes = detail::slice_values<Scalar>(begin, end, [&](Index f) {
        return weighting == L1Weighting::DecoderNorm ? l1_slope * ws.decoder_norms(f) : l1_slope;
      });
      const Scalar *const b_enc = p.b_enc.data() + begin, *const b_mag = p.b_mag.data() + begin,
                          *const scales = scale.data() + begin;
      Scalar *const g_b_mag = grads.b_mag.data() + begin, *const g_r_mag = grads.r_mag.data() + begin,
                    *const g_b_enc = grads.b_enc.data() + begin;
      for (Index b = 0; b < batch; ++b)
        backward_row(end - begin, H.row(b).data() + begin, b_enc, b_mag, scales, slopes,
                     ws.code_gradient.row(b).data() + begin, ws.codes.row(b).data() + begin, g_b_mag, g_r_mag,
                     g_b_enc);
    });
    grads.r_mag.array() *= scale.array();

    // Encoder side.
    detail::dense_encoder_gradient(model, X, ws.code_gradient, grads, ws);
    grads.threshold.setZero();  // another architecture's vector (empty in a Gated model)
    return report;
  }

 private:
  // One row of the forward pass over its n latents: the codes and ReLU(π_gate)
  // from the pre-activations h; returns how many codes fire. A function of
  // its own for the reason backward_row gives.
  static Index forward_row(Index n, const Scalar* __restrict h_row, const Scalar* __restrict b_enc,
                           const Scalar* __restrict b_mag, const Scalar* __restrict scales,
                           Scalar* __restrict code_row, Scalar* __restrict gate_row) {
    Index firing = 0;
    for (Index f = 0; f < n; ++f) {
      const Scalar h = h_row[f];
      const Scalar gate = h + b_enc[f];
      const Scalar magnitude = h * scales[f] + b_mag[f];
      const bool fires = (gate > Scalar(0)) & (magnitude > Scalar(0));
      code_row[f] = fires ? magnitude : Scalar(0);
      gate_row[f] = gate > Scalar(0) ? gate : Scalar(0);
      firing += fires;
    }
    return firing;
  }

  // One row's stretch of n latents of the backward pass: from the row's
  // pre-activations h and the two code gradients (magnitude path in g, gate
  // path in code), G_H into g and the codes back into code, and the latents'
  // sums of G_πmag, G_πmag h and G_πgate. Its own function so that the
  // pointers can be __restrict and every choice a select: so g++ 12
  // vectorises it, which it did not as a lambda's loop with a branch (about
  // 9% of a step at D = 768, F = 8192, B = 1024 then).
  static void backward_row(Index n, const Scalar* __restrict h_row, const Scalar* __restrict b_enc,
                           const Scalar* __restrict b_mag, const Scalar* __restrict scales,
                           const Scalar* __restrict slopes, Scalar* __restrict g_row, Scalar* __restrict code_row,
                           Scalar* __restrict g_b_mag, Scalar* __restrict g_r_mag, Scalar* __restrict g_b_enc) {
    for (Index f = 0; f < n; ++f) {
      const Scalar h = h_row[f];
      const bool gate_open = h + b_enc[f] > Scalar(0);
      const Scalar magnitude = h * scales[f] + b_mag[f];
      const bool fires = gate_open & (magnitude > Scalar(0));
      const Scalar g_mag = fires ? g_row[f] : Scalar(0);
      const Scalar g_gate = gate_open ? code_row[f] + slopes[f] : Scalar(0);
      g_b_mag[f] += g_mag;
      g_r_mag[f] += g_mag * h;
      g_b_enc[f] += g_gate;
      g_row[f] = g_gate + g_mag * scales[f];
      code_row[f] = fires ? magnitude : Scalar(0);
    }
  }
};

}  // namespace sae
