// sae/detail/products.hpp: the products with the encoder's shape, B x D times
// D x F into B x F, on sae's AVX-512 kernel when it applies.
#pragma once

#include <type_traits>

#include "../config.hpp"
#include "encoder_gemm.hpp"
#include "parallel.hpp"

namespace sae {
namespace detail {

/// Whether the AVX-512 encoder kernel can take H = X W: float, X row-major and
/// W column-major with contiguous rows and columns, H row-major. (W_enc is
/// column-major, and W_decᵀ is too, since W_dec is row-major.)
template <typename DerivedX, typename Weights, typename Out>
constexpr bool encoder_kernel_applies() {
#if defined(SAE_ENCODER_KERNEL)
  return std::is_same_v<typename DerivedX::Scalar, float> && std::is_same_v<typename Weights::Scalar, float> &&
         std::is_same_v<typename Out::Scalar, float> && bool(DerivedX::Flags & Eigen::DirectAccessBit) &&
         bool(DerivedX::IsRowMajor) && DerivedX::InnerStrideAtCompileTime == 1 &&
         bool(Weights::Flags & Eigen::DirectAccessBit) && !bool(Weights::IsRowMajor) &&
         Weights::InnerStrideAtCompileTime == 1 && bool(Out::IsRowMajor);
#else
  return false;
#endif
}

/// Runs H = 1 startᵀ + X W (start may be null: no start row) on the encoder
/// kernel and returns true, or returns false when the kernel does not apply
/// to these types or is not worth it for so few rows.
template <typename DerivedX, typename Weights, typename Out>
bool encoder_kernel_product(const float* start, const Eigen::MatrixBase<DerivedX>& X, const Weights& W, Out& H) {
  if constexpr (encoder_kernel_applies<DerivedX, Weights, Out>()) {
#if defined(SAE_ENCODER_KERNEL)
    if (X.rows() < encoder_gemm::min_tokens || W.rows() == 0 || W.cols() == 0) return false;
    encoder_gemm::product(start, X.derived().data(), X.derived().outerStride(), W.data(), W.outerStride(), H.data(),
                          H.outerStride(), X.rows(), W.rows(), W.cols());
    return true;
#endif
  }
  (void)start, (void)X, (void)W, (void)H;
  return false;
}

/// H = 1 startᵀ + X W (H is B x F, `start` a row of F). On the encoder kernel
/// each element of H is written once. Otherwise the rows are filled with
/// `start` in parallel and Eigen's GEMM (or the BLAS's) adds into them: with
/// `=` Eigen would first zero the B x F result on one thread, and adding a
/// bias would be another pass over it.
template <typename Start, typename DerivedX, typename Weights, typename Out>
void start_rows_then_add_product(const Start& start, const Eigen::MatrixBase<DerivedX>& X, const Weights& W, Out& H) {
  H.resize(X.rows(), W.cols());
  if constexpr (std::is_same_v<typename Start::Scalar, float> && bool(Start::Flags & Eigen::DirectAccessBit) &&
                Start::InnerStrideAtCompileTime == 1) {
    if (encoder_kernel_product(start.derived().data(), X, W, H)) return;
  }
  SAE_OMP(parallel for schedule(static) if (worth_parallel(H.size())))
  for (Index b = 0; b < H.rows(); ++b) H.row(b) = start;
  H.noalias() += X.derived() * W;
}

/// H = X W, for the dense code gradient G_X̂ W_decᵀ, which has the encoder
/// product's shapes.
template <typename DerivedX, typename Weights, typename Out>
void product_into(const Eigen::MatrixBase<DerivedX>& X, const Weights& W, Out& H) {
  H.resize(X.rows(), W.cols());
  if (encoder_kernel_product(nullptr, X, W, H)) return;
  H.noalias() = X.derived() * W;
}

}  // namespace detail
}  // namespace sae
