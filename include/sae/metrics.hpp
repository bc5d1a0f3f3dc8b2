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
//   mean_max_cosine_similarity(true, learned) MMCS (Sharkey et al. 2022)
#pragma once

#include <algorithm>
#include <cmath>
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

}  // namespace sae
