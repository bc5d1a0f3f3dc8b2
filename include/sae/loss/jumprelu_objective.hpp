// sae/loss/jumprelu_objective.hpp: training JumpReLU SAEs, L2 + λ·(an L0 penalty).
//
//     P  = A W_enc + 1 b_encᵀ          f = P ⊙ 1[P > θ]        (θ = params.threshold)
//     L  = (1/B) Σ_b Σ_d (x̂ − x)²  +  λ · S
//     L0 = (1/B) Σ_b Σ_f 1[P_bf > θ_f]
//     S  = L0                     (target_l0 == 0: Gemma Scope, SAELens)
//     S  = (L0 / t − 1)²          (target_l0 == t > 0: dictionary_learning's JumpReluTrainer)
//
// L0 counts the latents above their thresholds: it is piecewise constant, so
// its true gradient is 0 almost everywhere, and the reconstruction's
// dependence on θ is a jump. θ learns through the straight-through estimator
// of Rajamanoharan et al. 2024 ("Jumping Ahead"), as dictionary_learning
// implements it: a rectangle kernel of bandwidth ε,
//
//     K(u) = 1[|u| < 1/2]
//     ∂f/∂P = 1[P > θ]             ∂f/∂θ       ≈ −(θ/ε) · K((P − θ)/ε)
//     ∂1[P > θ]/∂P = 0             ∂1[P > θ]/∂θ ≈ −(1/ε) · K((P − θ)/ε)
//
// θ itself is the trained parameter, not log θ (SAELens #494/#718: log θ
// barely moves under Adam).
//
// Gradients, derived by hand (X the B x D batch, A = X − a·b_dec the
// encoder's input, M = 1[P > θ], E = X̂ − X):
//
//     G_X̂    = (2/B) E
//     ∇W_dec = Fcᵀ G_X̂               ∇b_dec = Σ_b G_X̂  (− a W_enc Σ_b G_P)
//     G_Fc   = G_X̂ W_decᵀ            (the sparsity term adds nothing: ∂1[P > θ]/∂P = 0)
//     G_P    = G_Fc ⊙ M
//     ∇W_enc = Aᵀ G_P                 ∇b_enc = Σ_b G_P
//     ∇θ_f   = Σ_b G_Fc,bf · (−θ_f/ε) K((P_bf − θ_f)/ε)     the output's jump (all b, firing or not)
//            + σ · Σ_b (−1/ε) K((P_bf − θ_f)/ε)               the penalty's step
//     σ      = dλS/dL0 · dL0/d1[P_bf > θ_f] = λ/B                       (S = L0)
//                                           = λ · 2(L0/t − 1) / (t·B)   (S = (L0/t − 1)²)
//
// All but ∇θ are exact gradients of L wherever no pre-activation equals its
// threshold, and tests/test_jumprelu.cpp checks them against central finite
// differences there. ∇θ is an estimate: the true derivative of L with respect
// to θ is 0 away from the thresholds (and undefined on them), so finite
// differences cannot check it; the tests check the formula above on
// hand-worked cases instead (and that it is exactly 0 when no P is within
// ε/2 of its threshold).
//
// dictionary_learning applies its step function to the codes f instead of P
// (`StepFunction.apply(f, threshold, bandwidth)`): the same L0, but a latent
// just below its threshold (f = 0) adds nothing to the penalty's θ-gradient
// there. We follow the paper and SAELens, which apply it to P.
//
// Reported: r.l2, r.l0 = L0, r.auxiliary = S (before λ), r.l1 = (1/B) Σ |f|
// (not part of the loss), r.loss = r.l2 + λ · r.auxiliary.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/jumprelu.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../detail/parallel.hpp"
#include "loss_report.hpp"
#include "objective.hpp"
#include "reconstruction.hpp"
#include "workspace.hpp"

namespace sae {

/// Gemma Scope's objective: `JumpReLUObjective<float>{λ}`; dictionary_learning's:
/// `JumpReLUObjective<float>{λ, 0.001f, target_l0}`.
template <typename Scalar>
struct JumpReLUObjective {
  Scalar l0_coefficient = Scalar(0);  ///< λ
  Scalar bandwidth = Scalar(0.001);   ///< ε of the rectangle kernel (dictionary_learning's default)
  /// t: when > 0 the penalty is (L0/t − 1)² instead of L0; 0 turns it off.
  double target_l0 = 0;

  /// The loss of `model` on the batch X (B x D), without gradients. Leaves
  /// P in ws.pre_activations, the codes in ws.codes and x̂ − x in ws.error.
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                      const Eigen::MatrixBase<Derived>& X, LossWorkspace<Scalar>& ws) const {
    static_assert(std::is_same<Activation, JumpReLU>::value,
                  "sae: JumpReLUObjective trains the JumpReLU architecture; ReLU uses L1Objective, TopK and "
                  "BatchTopK TopKObjective, Gated GatedObjective");
    constexpr const char* where = "sae::JumpReLUObjective";
    detail::check_objective_input(model, X, where);
    model.activation().check(model.params(), where);
    check_settings(where);

    const auto& p = model.params();
    const Index batch = X.rows(), dict = model.dict_size();
    model.encoder_product(X, ws.pre_activations);
    ws.codes.resize(batch, dict);
    ws.row_sums.resize(batch);
    // P += b_enc and the codes in one pass per row, rows on OpenMP's threads,
    // with the row's Σ|f| while it is in cache (summed over rows in order
    // below, so the same for any thread count).
    Index firing = 0;  // Σ 1[P > θ], a count: the same for any thread count
    const Scalar *const b_enc = p.b_enc.data(), *const threshold = p.threshold.data();
    SAE_OMP(parallel for schedule(static) reduction(+ : firing) if (detail::worth_parallel(batch * dict)))
    for (Index b = 0; b < batch; ++b) {
      firing += forward_row(dict, b_enc, threshold, ws.pre_activations.row(b).data(), ws.codes.row(b).data());
      ws.row_sums(b) = ws.codes.row(b).cwiseAbs().sum();
    }

    detail::product_into(ws.codes, p.W_dec, ws.error);

    const double b = static_cast<double>(batch);
    LossReport r;
    r.l2 = detail::reconstruction_error(model, X, ws.error);
    r.l0 = static_cast<double>(firing) / b;
    r.l1 = static_cast<double>(ws.row_sums.sum()) / b;
    if (target_l0 > 0.0) {
      const double off = r.l0 / target_l0 - 1.0;
      r.auxiliary = off * off;
    } else {
      r.auxiliary = r.l0;
    }
    r.loss = r.l2 + static_cast<double>(l0_coefficient) * r.auxiliary;
    return r;
  }

  /// The loss of `model` on X and its gradient with respect to every
  /// parameter (θ's a straight-through estimate), written into `grads`
  /// (resized if its sizes differ).
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate_with_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                                    const Eigen::MatrixBase<Derived>& X, Parameters<Scalar, D, F>& grads,
                                    LossWorkspace<Scalar>& ws) const {
    const LossReport report = evaluate(model, X, ws);
    const auto& p = model.params();
    detail::size_gradients(model, grads);

    const Index batch = X.rows(), dict = model.dict_size();
    const Scalar inv_batch = Scalar(1) / static_cast<Scalar>(batch);

    // Decoder side: G_X̂ = (2/B) E, in place of E.
    ws.error *= Scalar(2) * inv_batch;
    detail::product_into(ws.codes.transpose(), ws.error, grads.W_dec);
    grads.b_dec.noalias() = ws.error.colwise().sum().transpose();

    // G_Fc = G_X̂ W_decᵀ; θ's estimate from it and from the penalty's step,
    // then G_P = G_Fc where P > θ, in place.
    detail::product_into(ws.error, p.W_dec.transpose(), ws.code_gradient);
    const Scalar step_slope = static_cast<Scalar>(penalty_slope(report.l0) / static_cast<double>(batch));
    const Scalar eps = bandwidth;
    grads.threshold.setZero();
    // Each thread takes a slice of the latents down every row, so each θ_f
    // sums its rows in order whatever the thread count; through locals, not
    // the lambda's captures (see for_column_slices).
    detail::for_column_slices(dict, batch * dict, [&](Index begin, Index end) {
      const Scalar band = eps, slope = step_slope;
      const Scalar* const threshold = p.threshold.data();
      Scalar* const threshold_gradient = grads.threshold.data();
      for (Index b = 0; b < batch; ++b) {
        const Scalar* const pre = ws.pre_activations.row(b).data();
        Scalar* const g = ws.code_gradient.row(b).data();
        for (Index f = begin; f < end; ++f) {
          const Scalar theta = threshold[f];
          if (std::abs((pre[f] - theta) / band) < Scalar(0.5))
            threshold_gradient[f] += g[f] * (-theta / band) + slope * (Scalar(-1) / band);
          if (!(pre[f] > theta)) g[f] = Scalar(0);
        }
      }
    });

    // Encoder side.
    detail::dense_encoder_gradient(model, X, ws.code_gradient, grads, ws);
    grads.b_enc = ws.latent_sums;
    grads.r_mag.setZero();  // other architectures' vectors (empty in a JumpReLU model)
    grads.b_mag.setZero();
    return report;
  }

 private:
  // One row of the forward pass over its n latents: P += b_enc in place, the
  // codes P · 1[P > θ]; returns how many fire. A function of its own with
  // __restrict pointers and a select, so that g++ 12 vectorises it (it did
  // not as a loop over the matrices' elements).
  static Index forward_row(Index n, const Scalar* __restrict b_enc, const Scalar* __restrict threshold,
                           Scalar* __restrict pre_row, Scalar* __restrict code_row) {
    Index firing = 0;
    for (Index f = 0; f < n; ++f) {
      const Scalar pre = pre_row[f] + b_enc[f];
      const bool fires = pre > threshold[f];
      pre_row[f] = pre;
      code_row[f] = fires ? pre : Scalar(0);
      firing += fires;
    }
    return firing;
  }

  // dS/dL0 times λ: λ for S = L0, λ · 2(L0/t − 1)/t for S = (L0/t − 1)².
  double penalty_slope(double l0) const {
    const double lambda = static_cast<double>(l0_coefficient);
    if (target_l0 > 0.0) return lambda * 2.0 * (l0 / target_l0 - 1.0) / target_l0;
    return lambda;
  }

  void check_settings(const char* where) const {
    const double lambda = static_cast<double>(l0_coefficient), eps = static_cast<double>(bandwidth);
    if (!(lambda >= 0.0) || !std::isfinite(lambda))
      throw std::invalid_argument(std::string(where) + ": l0_coefficient must be finite and >= 0, got " +
                                  std::to_string(lambda));
    if (!(eps > 0.0) || !std::isfinite(eps))
      throw std::invalid_argument(std::string(where) + ": bandwidth must be finite and > 0, got " +
                                  std::to_string(eps));
    if (!(target_l0 >= 0.0) || !std::isfinite(target_l0))
      throw std::invalid_argument(std::string(where) + ": target_l0 must be finite and >= 0 (0: no target), got " +
                                  std::to_string(target_l0));
  }
};

}  // namespace sae
