// sae/detail/products.hpp: a GEMM whose result starts from a bias row.
#pragma once

#include "../config.hpp"
#include "parallel.hpp"

namespace sae {
namespace detail {

/// H = 1 startᵀ + X W (H is B x F, `start` a row of F). The rows are filled
/// with `start` in parallel and the GEMM adds into them: with `=` Eigen would
/// first zero the B x F result on one thread, and adding a bias would be
/// another pass over it.
template <typename Start, typename DerivedX, typename Weights, typename Out>
void start_rows_then_add_product(const Start& start, const Eigen::MatrixBase<DerivedX>& X, const Weights& W, Out& H) {
  H.resize(X.rows(), W.cols());
  SAE_OMP(parallel for schedule(static) if (worth_parallel(H.size())))
  for (Index b = 0; b < H.rows(); ++b) H.row(b) = start;
  H.noalias() += X.derived() * W;
}

}  // namespace detail
}  // namespace sae
