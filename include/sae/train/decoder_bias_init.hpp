// sae/train/decoder_bias_init.hpp: the decoder bias b_dec started from data.
//
// Activations of real models sit far from the origin, often with a few
// dimensions of huge mean. Starting b_dec at the centre of the data lets the
// latents model the variation rather than the offset, which prevents mass
// latent death early in training (SAE-REFERENCE.md §3). Two centres:
//
//   data_mean         the per-dimension mean (dictionary_learning, SAELens "mean")
//   geometric_median  the point minimising the sum of Euclidean distances
//                     (OpenAI, SAELens "geometric_median"): robust to the
//                     outliers that real activations have (e.g. the first
//                     token's huge norm), where the mean is dragged away.
//
// Both accumulate in double whatever the data's scalar, and return the
// data's scalar, ready for `params.b_dec = ...`.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/parameters.hpp"
#include "../core/types.hpp"

namespace sae {
namespace detail {

template <typename Derived>
void check_centre_data(const Eigen::MatrixBase<Derived>& X, const char* where) {
  if (X.rows() < 1 || X.cols() < 1)
    throw std::invalid_argument(std::string(where) + ": the data is " + std::to_string(X.rows()) + " x " +
                                std::to_string(X.cols()) + ", expected at least one row and one column");
  for (Index r = 0; r < X.rows(); ++r)
    if (!X.row(r).allFinite())
      throw std::invalid_argument(std::string(where) + ": row " + std::to_string(r) +
                                  " of the data has a non-finite value");
}

}  // namespace detail

/// The per-dimension mean of the rows of X (N x D): a length-D vector.
///
/// requires: X has at least one row, and every entry is finite
///           (std::invalid_argument naming the first bad row otherwise).
template <typename Derived>
Vector<typename Derived::Scalar, Derived::ColsAtCompileTime> data_mean(const Eigen::MatrixBase<Derived>& X) {
  detail::check_centre_data(X, "sae::data_mean");
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(X.cols());
  for (Index r = 0; r < X.rows(); ++r) sum += X.row(r).transpose().template cast<double>();
  sum /= static_cast<double>(X.rows());
  return sum.template cast<typename Derived::Scalar>();
}

/// The geometric median of the rows of X (N x D): argmin_y Σ_i ‖x_i − y‖,
/// by Weiszfeld's algorithm started from the mean,
///
///     y ← Σ_i w_i x_i / Σ_i w_i,   w_i = 1 / ‖x_i − y‖,
///
/// with Vardi & Zhang's (2000) modification for when y lands on data points,
/// where plain Weiszfeld divides by zero (and which happens in practice: the
/// mean of symmetric data is often itself a data point, and a median that is
/// a data point is approached quadratically and then hit). With η the number
/// of points at y (closer than 1e-12 × the mean distance), T the Weiszfeld
/// step over the other points and R = Σ_{x_i ≠ y} (x_i − y) / ‖x_i − y‖:
///
///     ‖R‖ ≤ η:  y is the median (the pull of the others cannot move it); stop.
///     else:     y ← (1 − η/‖R‖) T + (η/‖R‖) y.
///
/// This converges to the true median from any start (Vardi & Zhang), unlike
/// clamping the distances at an epsilon (SAELens's geom_median), which only
/// avoids the NaN.
///
/// Stops after `max_iterations` steps, or when a step moves y by at most
/// `tolerance` × the mean distance of the points from y (a relative
/// tolerance, so the same value serves data of any scale).
///
/// Cost: two passes over X per iteration, and N doubles of memory.
///
/// requires: X has at least one row and all entries finite; max_iterations ≥ 0;
///           tolerance ≥ 0 (std::invalid_argument otherwise).
/// ensures:  a finite length-D vector; for points symmetric about c, c; for
///           collinear points, their 1-D median (for an even count, a point
///           between the middle two).
template <typename Derived>
Vector<typename Derived::Scalar, Derived::ColsAtCompileTime> geometric_median(const Eigen::MatrixBase<Derived>& X,
                                                                              int max_iterations = 100,
                                                                              double tolerance = 1e-5) {
  constexpr const char* where = "sae::geometric_median";
  if (max_iterations < 0)
    throw std::invalid_argument(std::string(where) + ": max_iterations must be >= 0, got " +
                                std::to_string(max_iterations));
  if (!(tolerance >= 0.0))
    throw std::invalid_argument(std::string(where) + ": tolerance must be >= 0, got " + std::to_string(tolerance));
  detail::check_centre_data(X, where);

  const Index n = X.rows();
  Eigen::VectorXd y = data_mean(X).template cast<double>();
  Eigen::VectorXd weighted_sum(X.cols()), next(X.cols());
  std::vector<double> distance(static_cast<std::size_t>(n));

  for (int iteration = 0; iteration < max_iterations; ++iteration) {
    double total_distance = 0.0;
    for (Index i = 0; i < n; ++i) {
      const double d = (X.row(i).transpose().template cast<double>() - y).norm();
      distance[static_cast<std::size_t>(i)] = d;
      total_distance += d;
    }
    const double mean_distance = total_distance / static_cast<double>(n);
    if (!(mean_distance > 0.0)) break;  // every point is at y: y is the median
    const double coincident_below = 1e-12 * mean_distance;

    double weight_sum = 0.0;
    Index coincident = 0;
    weighted_sum.setZero();
    for (Index i = 0; i < n; ++i) {
      const double d = distance[static_cast<std::size_t>(i)];
      if (d <= coincident_below) {
        ++coincident;
        continue;
      }
      const double w = 1.0 / d;
      weight_sum += w;
      weighted_sum += w * X.row(i).transpose().template cast<double>();
    }
    // weight_sum > 0: some point is at least the mean distance away.

    if (coincident == 0) {
      next = weighted_sum / weight_sum;
    } else {
      const double pull = (weighted_sum - weight_sum * y).norm();  // ‖R‖
      const double eta = static_cast<double>(coincident);
      if (pull <= eta) break;  // y is the median
      const double gamma = eta / pull;
      next = (1.0 - gamma) * (weighted_sum / weight_sum) + gamma * y;
    }
    const double step = (next - y).norm();
    y.swap(next);
    if (step <= tolerance * mean_distance) break;
  }
  return y.template cast<typename Derived::Scalar>();
}

/// Where b_dec starts.
enum class DecoderBiasInit {
  Zero,             ///< b_dec = 0 (the seed, the April 2024 recipe)
  DataMean,         ///< b_dec = data_mean(X)
  GeometricMedian,  ///< b_dec = geometric_median(X)
};

/// Sets params.b_dec from the rows of X (N x D) as `how` says.
///
/// requires: X has params.input_dim() columns (std::invalid_argument
///           otherwise), and what data_mean / geometric_median require.
/// ensures:  only b_dec changes.
template <typename Scalar, int D, int F, typename Derived>
void initialize_decoder_bias(Parameters<Scalar, D, F>& params, const Eigen::MatrixBase<Derived>& X,
                             DecoderBiasInit how) {
  if (X.cols() != params.input_dim())
    throw std::invalid_argument("sae::initialize_decoder_bias: the data has " + std::to_string(X.cols()) +
                                " columns, expected " + std::to_string(params.input_dim()) + " (input_dim)");
  switch (how) {
    case DecoderBiasInit::Zero: params.b_dec.setZero(); return;
    case DecoderBiasInit::DataMean: params.b_dec = data_mean(X).template cast<Scalar>(); return;
    case DecoderBiasInit::GeometricMedian: params.b_dec = geometric_median(X).template cast<Scalar>(); return;
  }
  throw std::invalid_argument("sae::initialize_decoder_bias: unknown DecoderBiasInit value");
}

}  // namespace sae
