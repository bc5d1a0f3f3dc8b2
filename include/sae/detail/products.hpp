// sae/detail/products.hpp: the dense products of sae's steps, on sae's own
// AVX-512 kernel (gemm.hpp) when it applies, else on Eigen's GEMM (or the
// BLAS's).
#pragma once

#include <algorithm>
#include <type_traits>

#include "../config.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace sae {
namespace detail {

/// Whether the kernel can read or write M: float, in memory with contiguous
/// rows (row-major) or columns (column-major). Transposed matrices are too.
template <typename M>
constexpr bool gemm_kernel_operand() {
#if defined(SAE_GEMM_KERNEL)
  return std::is_same_v<typename M::Scalar, float> && bool(M::Flags & Eigen::DirectAccessBit) &&
         M::InnerStrideAtCompileTime == 1;
#else
  return false;
#endif
}

#if defined(SAE_GEMM_KERNEL)
template <typename M>
gemm::StridedMatrix strided_matrix(const M& m) {
  if constexpr (bool(M::IsRowMajor))
    return {m.data(), m.outerStride(), 1};
  else
    return {m.data(), 1, m.outerStride()};
}
#endif

/// Runs C = 1 startᵀ + A B on the kernel (start may be null: no start row)
/// and returns true, or returns false when the kernel does not apply to these
/// types, or C has fewer than 16 rows or columns (a GEMV's shape, where
/// Eigen's is faster), or there is no depth. C must be sized already. A
/// column-major C is computed as its transpose, Bᵀ Aᵀ, without a start row.
template <typename DerivedA, typename DerivedB, typename Out>
bool gemm_kernel_product(const float* start, const DerivedA& A, const DerivedB& B, Out& C) {
  if constexpr (gemm_kernel_operand<DerivedA>() && gemm_kernel_operand<DerivedB>() && gemm_kernel_operand<Out>()) {
#if defined(SAE_GEMM_KERNEL)
    const Index rows = A.rows(), depth = A.cols(), cols = B.cols();
    if (std::min(rows, cols) < gemm::min_side || depth == 0) return false;
    if constexpr (bool(Out::IsRowMajor)) {
      gemm::product(start, strided_matrix(A), strided_matrix(B), C.data(), C.outerStride(), rows, depth, cols);
      return true;
    } else {
      if (start) return false;
      gemm::product(nullptr, strided_matrix(B).transposed(), strided_matrix(A).transposed(), C.data(),
                    C.outerStride(), cols, depth, rows);
      return true;
    }
#endif
  }
  (void)start, (void)A, (void)B, (void)C;
  return false;
}

/// H = 1 startᵀ + X W (H is B x F, `start` a row of F). On the kernel each
/// element of H is written once. Otherwise the rows are filled with `start`
/// in parallel and Eigen's GEMM (or the BLAS's) adds into them: with `=`
/// Eigen would first zero the B x F result on one thread, and adding a bias
/// would be another pass over it.
template <typename Start, typename DerivedX, typename DerivedW, typename Out>
void start_rows_then_add_product(const Start& start, const Eigen::MatrixBase<DerivedX>& X,
                                 const Eigen::MatrixBase<DerivedW>& W, Out& H) {
  H.resize(X.rows(), W.cols());
  if constexpr (std::is_same_v<typename Start::Scalar, float> && bool(Start::Flags & Eigen::DirectAccessBit) &&
                Start::InnerStrideAtCompileTime == 1 && bool(Out::IsRowMajor)) {
    if (gemm_kernel_product(start.derived().data(), X.derived(), W.derived(), H)) return;
  }
  SAE_OMP(parallel for schedule(static) if (worth_parallel(H.size())))
  for (Index b = 0; b < H.rows(); ++b) H.row(b) = start;
  H.noalias() += X.derived() * W.derived();
}

/// C = A B, resizing C: each dense product of a training step (decode, the
/// decoder and encoder gradients, the code gradient) and of decoding.
template <typename DerivedA, typename DerivedB, typename Out>
void product_into(const Eigen::MatrixBase<DerivedA>& A, const Eigen::MatrixBase<DerivedB>& B, Out& C) {
  C.resize(A.rows(), B.cols());
  if (gemm_kernel_product(nullptr, A.derived(), B.derived(), C)) return;
  C.noalias() = A.derived() * B.derived();
}

}  // namespace detail
}  // namespace sae
