// sae/train/constraints.hpp: unit-norm decoder rows, the constraint of
// dictionary_learning's standard SAE (and of TopK and JumpReLU training).
//
// An L1 penalty on the codes can be lowered for free by shrinking the codes
// and growing the decoder rows; fixing every row's norm at 1 removes that
// escape. The constraint is kept in two halves around the optimizer step:
//
//   before the step  project_decoder_gradient: remove from the gradient of
//                    each decoder row w_f its component along w_f, so the step
//                    is tangent to the sphere ‖w_f‖ = 1 (to first order the
//                    norm does not move: ‖w − η g⊥‖² = ‖w‖² + η²‖g⊥‖²);
//   after the step   normalize_decoder_rows: divide each row by its norm,
//                    taking away the second-order drift (and Adam's, whose
//                    per-element scaling does not keep the step tangent).
//
// Only W_dec is constrained; the encoder and both biases are free.
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/parameters.hpp"
#include "../detail/double_sums.hpp"
#include "../detail/parallel.hpp"
#include "../detail/shape_check.hpp"

namespace sae {

/// Removes from each row of grads.W_dec its component along the matching row
/// of params.W_dec: g_f ← g_f − (⟨g_f, w_f⟩ / ‖w_f‖²) w_f.
///
/// Dividing by ‖w_f‖² (not assuming ‖w_f‖ = 1) makes the result orthogonal to
/// w_f even when the rows are not exactly unit, e.g. before the first
/// normalisation. The sums are taken in double so that the result is
/// orthogonal to rounding also in float.
///
/// requires: grads.W_dec has the shape of params.W_dec (std::invalid_argument otherwise).
/// ensures:  ⟨grads.W_dec.row(f), params.W_dec.row(f)⟩ ≈ 0 for every f;
///           a row with w_f = 0 has no direction to remove: its gradient is unchanged;
///           grads.W_enc, grads.b_enc and grads.b_dec are unchanged.
template <typename Scalar, int D, int F>
void project_decoder_gradient(const Parameters<Scalar, D, F>& params, Parameters<Scalar, D, F>& grads) {
  detail::require_shape(grads.W_dec, params.W_dec.rows(), params.W_dec.cols(), "sae::project_decoder_gradient",
                        "grads.W_dec");
  // Rows are independent: one pass over each pair of rows, on OpenMP's threads.
  const Index rows = params.W_dec.rows(), width = params.W_dec.cols();
  SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(params.W_dec.size())))
  for (Index f = 0; f < rows; ++f) {
    const Scalar* w = params.W_dec.row(f).data();  // W_dec is row-major (or one column)
    Scalar* g = grads.W_dec.row(f).data();
    const double norm_squared = detail::dot_in_double(w, w, width);
    if (!(norm_squared > 0.0)) continue;  // zero row (or non-finite): nothing to project out
    const double along = detail::dot_in_double(g, w, width) / norm_squared;
    for (Index d = 0; d < width; ++d) g[d] -= static_cast<Scalar>(along * static_cast<double>(w[d]));
  }
}

/// Divides each row of params.W_dec by its Euclidean norm.
///
/// ensures: every row of nonzero finite norm has norm 1 (to rounding);
///          a zero row is left as it is (zero): it has no direction to keep,
///          and dividing would put NaN into the model (SAELens divides
///          unguarded, dictionary_learning by norm + eps; both leave a zero row
///          zero or NaN, we leave it zero). A row whose norm is not finite is
///          also left as it is, for the trainer's non-finite check to report.
///          Nothing but W_dec changes.
template <typename Scalar, int D, int F>
void normalize_decoder_rows(Parameters<Scalar, D, F>& params) {
  const Index rows = params.W_dec.rows(), width = params.W_dec.cols();
  SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(params.W_dec.size())))
  for (Index f = 0; f < rows; ++f) {
    const double norm = std::sqrt(detail::dot_in_double(params.W_dec.row(f).data(), params.W_dec.row(f).data(), width));
    if (norm > 0.0 && std::isfinite(norm)) params.W_dec.row(f) /= static_cast<Scalar>(norm);
  }
}

/// The unit-norm decoder constraint as the trainer's two hooks:
///
///     constraint.before_step(params, grads);   // after the gradient, before optimizer.step
///     optimizer.step(params, grads);
///     constraint.after_step(params);
///
/// Stateless. Call after_step once before training as well, so that the rows
/// start on the sphere (the tied initialisation gives them norm 0.1).
struct UnitNormDecoder {
  template <typename Scalar, int D, int F>
  void before_step(const Parameters<Scalar, D, F>& params, Parameters<Scalar, D, F>& grads) const {
    project_decoder_gradient(params, grads);
  }
  template <typename Scalar, int D, int F>
  void after_step(Parameters<Scalar, D, F>& params) const {
    normalize_decoder_rows(params);
  }
};

/// No constraint (the April 2024 recipe): the same hooks, doing nothing, so a
/// trainer can take the constraint as a template parameter.
struct NoConstraint {
  template <typename Scalar, int D, int F>
  void before_step(const Parameters<Scalar, D, F>&, Parameters<Scalar, D, F>&) const {}
  template <typename Scalar, int D, int F>
  void after_step(Parameters<Scalar, D, F>&) const {}
};

}  // namespace sae
