// sae/metrics.hpp: the numbers an SAE is judged by (SAE-REFERENCE.md §5).
//
// Free functions on any Eigen matrix expression; batches are one row per
// activation (B x D), codes one row per activation (B x F), directions one row
// per direction. Every result is accumulated and returned in double whatever
// the input scalar. Shapes are checked at run time: a mismatch throws
// std::invalid_argument naming the expected and the actual sizes.
//
//   mean_squared_error(X, X_hat)              mean_b sum_d (x̂ - x)^2
//   fraction_of_variance_unexplained(X, X_hat) sum ||x̂ - x||^2 / sum ||x - x̄||^2
//   explained_variance(X, X_hat)              1 - FVU
//   mean_l0(codes)                            mean_b #{f : code_bf != 0}
//   mean_l1(codes)                            mean_b sum_f |code_bf|
//   mean_cosine_similarity(X, X_hat)          mean_b cos(x_b, x̂_b)
//   mean_norm_ratio(X, X_hat)                 mean_b ||x̂_b|| / ||x_b||  (rows with x_b = 0 skipped)
//   relative_reconstruction_bias(X, X_hat)    E||x̂||^2 / E<x, x̂>
//   mean_max_cosine_similarity(true, learned) MMCS (Sharkey et al. 2022)
//   max_cosine_to_other_rows(W_dec)           per row, the largest cosine to any other row
//   max_pairwise_cosine(W_dec)                the largest cosine between two distinct rows
//
// What is undefined because of the data (X constant, X all zero) throws;
// what is undefined because of the model (relative_reconstruction_bias with
// x̂ orthogonal to x on average, e.g. x̂ = 0) is NaN, so that a training log
// can record it (sae/train/metrics_log.hpp writes NaN as null).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "detail/shape_check.hpp"

namespace sae {
namespace detail {
namespace metrics {

template <typename A, typename B>
void check_same_shape(const char* function, const Eigen::MatrixBase<A>& X, const Eigen::MatrixBase<B>& X_hat) {
  if (X_hat.rows() != X.rows() || X_hat.cols() != X.cols())
    throw std::invalid_argument(std::string("sae::") + function + ": X_hat is " +
                                detail::shape_string(X_hat.rows(), X_hat.cols()) + ", expected " +
                                detail::shape_string(X.rows(), X.cols()) + " (the shape of X)");
}

inline void check_min_rows(const char* function, const char* name, Index rows, Index minimum) {
  if (rows < minimum)
    throw std::invalid_argument(std::string("sae::") + function + ": " + name + " has " + std::to_string(rows) +
                                " rows, expected at least " + std::to_string(minimum));
}

}  // namespace metrics
}  // namespace detail

/// Reconstruction error as SAE papers report it: the squared error summed over
/// the D dimensions of each row, averaged over the B rows (mean_b sum_d e^2).
/// This is the L2 term of the seed's loss, not a per-element mean.
///
/// requires: X and X_hat have the same shape, at least one row.
template <typename DerivedX, typename DerivedXHat>
double mean_squared_error(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  detail::metrics::check_same_shape("mean_squared_error", X, X_hat);
  detail::metrics::check_min_rows("mean_squared_error", "X", X.rows(), 1);
  const double sse = (X_hat.template cast<double>() - X.template cast<double>()).squaredNorm();
  return sse / static_cast<double>(X.rows());
}

/// Fraction of variance unexplained:
///
///     FVU = sum_b ||x̂_b - x_b||^2 / sum_b ||x_b - x̄||^2,
///
/// x̄ the per-dimension (column) mean of X over its rows. Predicting x̄ for
/// every row gives exactly 1, a perfect reconstruction 0, and a constant
/// offset added to the reconstruction always raises it (SAE-REFERENCE.md §4:
/// variance taken about zero, or a residual centred before squaring, would
/// hide that offset).
///
/// requires: X and X_hat have the same shape, at least 2 rows, and X is not
///           constant down every column (its total variance is nonzero).
template <typename DerivedX, typename DerivedXHat>
double fraction_of_variance_unexplained(const Eigen::MatrixBase<DerivedX>& X,
                                        const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  constexpr const char* name = "fraction_of_variance_unexplained";
  detail::metrics::check_same_shape(name, X, X_hat);
  detail::metrics::check_min_rows(name, "X", X.rows(), 2);
  const auto Xd = X.template cast<double>();
  const Eigen::RowVectorXd mean = Xd.colwise().mean();
  const double total = (Xd.rowwise() - mean).squaredNorm();  // two passes: exact even far from zero
  if (!(total > 0.0))
    throw std::invalid_argument(std::string("sae::") + name +
                                ": X has zero total variance (every column is constant), FVU is undefined");
  const double sse = (X_hat.template cast<double>() - Xd).squaredNorm();
  return sse / total;
}

/// Explained variance, 1 - fraction_of_variance_unexplained(X, X_hat): 1 for a
/// perfect reconstruction, 0 for predicting the mean, negative when worse.
template <typename DerivedX, typename DerivedXHat>
double explained_variance(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  return 1.0 - fraction_of_variance_unexplained(X, X_hat);
}

/// L0: the number of nonzero entries per row, averaged over the rows.
///
/// requires: at least one row.
template <typename DerivedCodes>
double mean_l0(const Eigen::MatrixBase<DerivedCodes>& codes) {
  detail::metrics::check_min_rows("mean_l0", "codes", codes.rows(), 1);
  using Scalar = typename DerivedCodes::Scalar;
  const Index nonzero = (codes.array() != Scalar(0)).count();
  return static_cast<double>(nonzero) / static_cast<double>(codes.rows());
}

/// L1: the sum of absolute codes per row, averaged over the rows
/// (mean_b sum_f |code_bf|, the "mean over the batch" L1 of dictionary_learning
/// and SAELens, without λ or decoder-norm weighting).
///
/// requires: at least one row.
template <typename DerivedCodes>
double mean_l1(const Eigen::MatrixBase<DerivedCodes>& codes) {
  detail::metrics::check_min_rows("mean_l1", "codes", codes.rows(), 1);
  const double total = codes.template cast<double>().cwiseAbs().sum();
  return total / static_cast<double>(codes.rows());
}

/// Cosine similarity between each row x and its reconstruction x̂,
/// <x, x̂> / (||x|| ||x̂||), averaged over the rows. A row where exactly one
/// of x, x̂ is zero scores 0 (as a zero direction does in MMCS); a row where
/// both are zero scores 1 (the reconstruction is exact). torch's
/// F.cosine_similarity (SAEBench) scores both cases 0; real activations are
/// never exactly zero, so the two agree on real data. Each row's cosine is
/// clamped to [-1, 1] against rounding.
///
/// requires: X and X_hat have the same shape, at least one row.
template <typename DerivedX, typename DerivedXHat>
double mean_cosine_similarity(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  constexpr const char* name = "mean_cosine_similarity";
  detail::metrics::check_same_shape(name, X, X_hat);
  detail::metrics::check_min_rows(name, "X", X.rows(), 1);
  double total = 0.0;
  for (Index b = 0; b < X.rows(); ++b) {
    const auto x = X.row(b).template cast<double>();
    const auto x_hat = X_hat.row(b).template cast<double>();
    const double x_norm = x.norm(), x_hat_norm = x_hat.norm();
    if (x_norm == 0.0 || x_hat_norm == 0.0) {
      total += (x_norm == 0.0 && x_hat_norm == 0.0) ? 1.0 : 0.0;
      continue;
    }
    total += std::clamp(x.dot(x_hat) / (x_norm * x_hat_norm), -1.0, 1.0);
  }
  return total / static_cast<double>(X.rows());
}

/// ||x̂|| / ||x|| per row, averaged over the rows where ||x|| > 0 (a zero
/// activation has no scale to compare with; those rows are skipped, not
/// counted as 0 or infinity). 1 means the reconstruction keeps the input's
/// norm; below 1, shrinkage (the usual effect of an L1 penalty).
///
/// requires: X and X_hat have the same shape, at least one row of X nonzero.
template <typename DerivedX, typename DerivedXHat>
double mean_norm_ratio(const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  constexpr const char* name = "mean_norm_ratio";
  detail::metrics::check_same_shape(name, X, X_hat);
  detail::metrics::check_min_rows(name, "X", X.rows(), 1);
  double total = 0.0;
  Index counted = 0;
  for (Index b = 0; b < X.rows(); ++b) {
    const double x_norm = X.row(b).template cast<double>().norm();
    if (x_norm == 0.0) continue;
    total += X_hat.row(b).template cast<double>().norm() / x_norm;
    ++counted;
  }
  if (counted == 0)
    throw std::invalid_argument(std::string("sae::") + name + ": every one of the " + std::to_string(X.rows()) +
                                " rows of X is zero, the norm ratio is undefined");
  return total / static_cast<double>(counted);
}

/// Relative reconstruction bias (SAEBench core; Wright & Sharkey 2024):
///
///     E ||x̂||^2 / E <x, x̂>   =   sum_b ||x̂_b||^2 / sum_b <x_b, x̂_b>,
///
/// the inverse of the scale γ that minimises E||γ x̂ - x||^2. 1 means no
/// systematic scale bias; below 1, the reconstructions are shrunk. NaN when
/// sum_b <x_b, x̂_b> = 0 (for instance x̂ = 0): undefined because of the
/// model, not the data, so it is not an error. Negative when the
/// reconstructions point away from the inputs on average.
///
/// requires: X and X_hat have the same shape, at least one row.
template <typename DerivedX, typename DerivedXHat>
double relative_reconstruction_bias(const Eigen::MatrixBase<DerivedX>& X,
                                    const Eigen::MatrixBase<DerivedXHat>& X_hat) {
  constexpr const char* name = "relative_reconstruction_bias";
  detail::metrics::check_same_shape(name, X, X_hat);
  detail::metrics::check_min_rows(name, "X", X.rows(), 1);
  const auto X_hat_d = X_hat.template cast<double>();
  const double numerator = X_hat_d.squaredNorm();
  const double denominator = X.template cast<double>().cwiseProduct(X_hat_d).sum();
  if (denominator == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return numerator / denominator;
}

/// Mean max cosine similarity (MMCS, Sharkey et al. 2022): for each true
/// feature (a row of `true_features`), the largest cosine similarity to any
/// row of `learned` (e.g. the decoder W_dec, [F, D]), averaged over the true
/// features. Signed: a learned row pointing the opposite way scores -1. A
/// learned row of zero norm has cosine 0 with everything. 1 means every true
/// feature is recovered exactly, up to a positive scale.
///
/// Cost: one (num_true x D) * (D x num_learned) product, taken in blocks of
/// true features so the memory stays O((num_true + num_learned) * D).
///
/// requires: both have the same number of columns and at least one row;
///           every true feature has nonzero norm.
template <typename DerivedTrue, typename DerivedLearned>
double mean_max_cosine_similarity(const Eigen::MatrixBase<DerivedTrue>& true_features,
                                  const Eigen::MatrixBase<DerivedLearned>& learned) {
  constexpr const char* name = "mean_max_cosine_similarity";
  if (learned.cols() != true_features.cols())
    throw std::invalid_argument(std::string("sae::") + name + ": learned directions are " +
                                detail::shape_string(learned.rows(), learned.cols()) + ", expected " +
                                std::to_string(true_features.cols()) +
                                " columns (the width of true_features, " +
                                detail::shape_string(true_features.rows(), true_features.cols()) + ")");
  detail::metrics::check_min_rows(name, "true_features", true_features.rows(), 1);
  detail::metrics::check_min_rows(name, "learned", learned.rows(), 1);

  // Work in the wider of the two scalars (float with float stays float: the
  // product is the whole cost when F is in the thousands).
  using Scalar = std::common_type_t<typename DerivedTrue::Scalar, typename DerivedLearned::Scalar>;
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  Rows L = learned.template cast<Scalar>();
  for (Index j = 0; j < L.rows(); ++j) {
    const Scalar norm = L.row(j).norm();
    if (norm > Scalar(0)) L.row(j) /= norm;  // zero rows stay zero: cosine 0
  }

  constexpr Index block = 256;
  Rows T, S;
  double total = 0.0;
  for (Index start = 0; start < true_features.rows(); start += block) {
    const Index n = std::min(block, true_features.rows() - start);
    T = true_features.middleRows(start, n).template cast<Scalar>();
    for (Index i = 0; i < n; ++i) {
      const Scalar norm = T.row(i).norm();
      if (!(norm > Scalar(0)))
        throw std::invalid_argument(std::string("sae::") + name + ": true feature " + std::to_string(start + i) +
                                    " has zero (or non-finite) norm");
      T.row(i) /= norm;
    }
    S.noalias() = T * L.transpose();
    for (Index i = 0; i < n; ++i) total += std::min(1.0, static_cast<double>(S.row(i).maxCoeff()));
  }
  return total / static_cast<double>(true_features.rows());
}

/// For each row of `directions` (e.g. the decoder W_dec, [F, D]), the
/// largest cosine similarity to any OTHER row: F values, in row order. Near 1
/// for a latent that duplicates another one. Signed (an antipodal pair scores
/// -1, not 1); a zero row has cosine 0 with everything, and so do the rows
/// compared with it.
///
/// Cost: an F x D by D x F product (2 F^2 D flops: about 4e11 for 16384 x 768,
/// seconds, not a per-step metric), taken in blocks of rows so the memory
/// stays O(F * D). Computed in the scalar of `directions`.
///
/// requires: at least two rows.
template <typename Derived>
Eigen::VectorXd max_cosine_to_other_rows(const Eigen::MatrixBase<Derived>& directions) {
  constexpr const char* name = "max_cosine_to_other_rows";
  detail::metrics::check_min_rows(name, "directions", directions.rows(), 2);
  using Scalar = typename Derived::Scalar;
  static_assert(!Eigen::NumTraits<Scalar>::IsInteger, "sae::max_cosine_to_other_rows: needs a floating-point matrix");
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  Rows L = directions;
  for (Index j = 0; j < L.rows(); ++j) {
    const Scalar norm = L.row(j).norm();
    if (norm > Scalar(0)) L.row(j) /= norm;
  }

  const Index n = L.rows();
  Eigen::VectorXd result(n);
  constexpr Index block = 256;
  Rows S;
  for (Index start = 0; start < n; start += block) {
    const Index m = std::min(block, n - start);
    S.noalias() = L.middleRows(start, m) * L.transpose();
    for (Index i = 0; i < m; ++i) {
      S(i, start + i) = -std::numeric_limits<Scalar>::infinity();  // not compared with itself
      result(start + i) = std::clamp(static_cast<double>(S.row(i).maxCoeff()), -1.0, 1.0);
    }
  }
  return result;
}

/// The largest cosine similarity between two distinct rows of `directions`
/// (the maximum of max_cosine_to_other_rows): 1 when the decoder holds two
/// copies of one direction. Same conventions and cost as that function.
///
/// requires: at least two rows.
template <typename Derived>
double max_pairwise_cosine(const Eigen::MatrixBase<Derived>& directions) {
  detail::metrics::check_min_rows("max_pairwise_cosine", "directions", directions.rows(), 2);
  return max_cosine_to_other_rows(directions).maxCoeff();
}

}  // namespace sae
