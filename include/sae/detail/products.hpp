// sae/detail/products.hpp: the dense products of sae's steps, on sae's own
// AVX-512 kernel (gemm.hpp) when it applies, else on Eigen's GEMM (or the
// BLAS's).
#pragma once

#include <algorithm>
#include <type_traits>

#include "../config.hpp"
#include "gemm.hpp"
#include "gemm_screened.hpp"
#include "gemm_screened_topk.hpp"
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

/// Runs C = A B on the kernel, with the epilogue's rows and ReLU (or
/// JumpReLU's thresholds) applied as each tile is stored, and returns true;
/// or returns false when the kernel does not apply to these types, or C has
/// fewer than 16 rows or columns (a GEMV's shape, where Eigen's is faster),
/// or there is no depth. C must be sized already. A column-major C is
/// computed as its transpose, Bᵀ Aᵀ, without rows to add or thresholds.
template <typename DerivedA, typename DerivedB, typename Out>
bool gemm_kernel_product(const DerivedA& A, const DerivedB& B, Out& C, bool relu = false, const float* start = nullptr,
                         const float* bias = nullptr, const float* threshold = nullptr) {
  if constexpr (gemm_kernel_operand<DerivedA>() && gemm_kernel_operand<DerivedB>() && gemm_kernel_operand<Out>()) {
#if defined(SAE_GEMM_KERNEL)
    const Index rows = A.rows(), depth = A.cols(), cols = B.cols();
    if (std::min(rows, cols) < gemm::min_side || depth == 0) return false;
    if constexpr (bool(Out::IsRowMajor)) {
      const gemm::Epilogue epilogue{start, bias, relu, threshold};
#if defined(SAE_SCREENED_RELU)
      // (The screen returns false where it does not apply: without ReLU or thresholds.)
      if (gemm::screened_relu_product(strided_matrix(A), strided_matrix(B), C.data(), C.outerStride(), rows, depth,
                                      cols, epilogue))
        return true;
#endif
      gemm::product(strided_matrix(A), strided_matrix(B), C.data(), C.outerStride(), rows, depth, cols, epilogue);
      return true;
    } else {
      if (start || bias || threshold) return false;
      gemm::product(strided_matrix(B).transposed(), strided_matrix(A).transposed(), C.data(), C.outerStride(), cols,
                    depth, rows, {nullptr, nullptr, relu});
      return true;
    }
#endif
  }
  (void)A, (void)B, (void)C, (void)relu, (void)start, (void)bias, (void)threshold;
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
  if constexpr (gemm_kernel_operand<Start>()) {
    if (gemm_kernel_product(X.derived(), W.derived(), H, false, start.derived().data())) return;
  }
  SAE_OMP(parallel for schedule(static) if (worth_parallel(H.size())))
  for (Index b = 0; b < H.rows(); ++b) H.row(b) = start;
  H.noalias() += X.derived() * W.derived();
}

/// ReLU's codes in one pass over H on the kernel: H = max(0, (1 startᵀ + X W)
/// + 1 b_encᵀ), with the roundings of start_rows_then_add_product followed
/// by ReLU's own pass (ReLU::encode_in_place), so the same bits. Returns
/// false, with H sized, when the kernel does not apply: then make H those two
/// ways.
template <typename Start, typename Bias, typename DerivedX, typename DerivedW, typename Out>
bool kernel_relu_codes(const Start& start, const Bias& b_enc, const Eigen::MatrixBase<DerivedX>& X,
                       const Eigen::MatrixBase<DerivedW>& W, Out& H) {
  H.resize(X.rows(), W.cols());
  if constexpr (gemm_kernel_operand<Start>() && gemm_kernel_operand<Bias>() && bool(Out::IsRowMajor))
    return gemm_kernel_product(X.derived(), W.derived(), H, true, start.derived().data(), b_enc.derived().data());
  (void)start, (void)b_enc;
  return false;
}

/// JumpReLU's codes in one pass over H on the kernel: H = P · 1[P > θ], P =
/// (1 startᵀ + X W) + 1 b_encᵀ, with the roundings of
/// start_rows_then_add_product followed by JumpReLU::encode_in_place, so the
/// same bits. Returns false, with H sized, when the kernel does not apply.
template <typename Start, typename Bias, typename Threshold, typename DerivedX, typename DerivedW, typename Out>
bool kernel_jumprelu_codes(const Start& start, const Bias& b_enc, const Threshold& threshold,
                           const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedW>& W, Out& H) {
  H.resize(X.rows(), W.cols());
  if constexpr (gemm_kernel_operand<Start>() && gemm_kernel_operand<Bias>() && gemm_kernel_operand<Threshold>() &&
                bool(Out::IsRowMajor))
    return gemm_kernel_product(X.derived(), W.derived(), H, false, start.derived().data(), b_enc.derived().data(),
                               threshold.derived().data());
  (void)start, (void)b_enc, (void)threshold;
  return false;
}

/// TopK's candidates (gemm_screened_topk.hpp) on the screen: H (B x F)
/// holds P = (1 startᵀ + X W) + 1 biasᵀ (bias may be null) with the roundings
/// of start_rows_then_add_product and then a pass adding the bias, at each of
/// them. Returns false, with H sized, when the kernel or the screen does not
/// apply: then make P those ways.
template <typename Start, typename DerivedX, typename DerivedW, typename Out>
bool screened_top_k_candidates(const Start& start, const typename Out::Scalar* bias,
                               const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedW>& W, Out& H,
                               const TopKSelection& selection, TopKCandidates& candidates) {
  H.resize(X.rows(), W.cols());
#if defined(SAE_SCREENED_RELU)
  if constexpr (gemm_kernel_operand<Start>() && gemm_kernel_operand<DerivedX>() && gemm_kernel_operand<DerivedW>() &&
                gemm_kernel_operand<Out>() && bool(Out::IsRowMajor)) {
    const Index rows = X.rows(), depth = X.cols(), cols = W.cols();
    if (std::min(rows, cols) < gemm::min_side || depth == 0) return false;
    return gemm::screened_top_k(strided_matrix(X.derived()), strided_matrix(W.derived()), H.data(), H.outerStride(),
                                rows, depth, cols, {start.derived().data(), bias}, selection, candidates);
  }
#endif
  (void)start, (void)bias, (void)selection, (void)candidates;
  return false;
}

/// TopK's codes on the screen: H = each token's k largest entries of P =
/// (1 startᵀ + X W) + 1 b_encᵀ through a ReLU, zeros elsewhere, with the bits
/// of start_rows_then_add_product followed by TopK::encode_in_place. Returns
/// false, with H sized, when the screen does not apply.
template <typename Start, typename Bias, typename DerivedX, typename DerivedW, typename Out>
bool kernel_topk_codes(const Start& start, const Bias& b_enc, Index k, const Eigen::MatrixBase<DerivedX>& X,
                       const Eigen::MatrixBase<DerivedW>& W, Out& H) {
#if defined(SAE_SCREENED_RELU)
  if constexpr (std::is_same_v<typename Out::Scalar, float> && bool(Out::IsRowMajor)) {
    thread_local TopKCandidates candidates;
    TopKCandidates& listed = candidates;  // the calling thread's, in the threads below too
    if (!screened_top_k_candidates(start, b_enc.derived().data(), X, W, H, {k}, listed)) return false;
    // Codes beyond the caches are written around them (the entries were read once already).
    const bool stream = Index(sizeof(float)) * H.size() >= gemm::screened::streamed_output_bytes;
    SAE_OMP(parallel if (worth_parallel(H.size())))
    {
      thread_local std::vector<float> values;
      thread_local std::vector<Index> chosen;
      SAE_OMP(for schedule(static))
      for (Index b = 0; b < H.rows(); ++b) {
        float* const row = H.row(b).data();
        const Index first = listed.row_start[static_cast<std::size_t>(b)];
        select_top_k_of_candidates(row, listed.latent.data() + first,
                                   listed.row_start[static_cast<std::size_t>(b) + 1] - first, k, values, chosen);
        for (std::size_t j = 0; j < chosen.size(); ++j) values[j] = std::max(row[chosen[j]], 0.0f);
        gemm::screened::write_sparse_row(row, H.cols(), chosen.data(), values.data(),
                                         static_cast<Index>(chosen.size()), stream);
      }
      if (stream) _mm_sfence();  // the streamed codes are in memory before the threads join
    }
    return true;
  }
#endif
  H.resize(X.rows(), W.cols());
  (void)start, (void)b_enc, (void)k;
  return false;
}

/// C = A B, resizing C: each dense product of a training step (decode, the
/// decoder and encoder gradients, the code gradient) and of decoding.
template <typename DerivedA, typename DerivedB, typename Out>
void product_into(const Eigen::MatrixBase<DerivedA>& A, const Eigen::MatrixBase<DerivedB>& B, Out& C) {
  C.resize(A.rows(), B.cols());
  if (gemm_kernel_product(A.derived(), B.derived(), C)) return;
  C.noalias() = A.derived() * B.derived();
}

}  // namespace detail
}  // namespace sae
