// sae/core/types.hpp: the matrix types the library passes around.
//
// A batch is B x D, one activation per row, row-major: the same bytes as a
// C-order NumPy array of shape [B, D]. Parameter storage is chosen so that
// compile-time sizes of any magnitude work: small fixed-size tensors live
// inline (Eigen fixed-size), large ones on the heap (Eigen refuses fixed-size
// objects over EIGEN_STACK_ALLOCATION_LIMIT, 128 KiB by default).
#pragma once

#include <type_traits>

#include "../config.hpp"

namespace sae {
namespace detail {

/// Eigen insists that a compile-time column vector is column-major and a
/// compile-time row vector is row-major; every other shape takes `Preferred`.
template <int Rows, int Cols, int Preferred>
inline constexpr int storage_order =
    (Cols == 1 && Rows != 1)   ? Eigen::ColMajor
    : (Rows == 1 && Cols != 1) ? Eigen::RowMajor
                               : Preferred;

/// Largest fixed-size tensor kept inline, in bytes. Above it the tensor is
/// heap-allocated even when both sizes are compile-time constants, so a model
/// object stays small enough to live on the stack.
inline constexpr long long max_inline_bytes = 16 * 1024;

template <typename Scalar, int Rows, int Cols>
inline constexpr bool store_inline =
    Rows != Eigen::Dynamic && Cols != Eigen::Dynamic &&
    static_cast<long long>(Rows) * Cols * static_cast<long long>(sizeof(Scalar)) <= max_inline_bytes;

/// The Eigen matrix that stores a Rows x Cols parameter tensor: fixed-size
/// inline when small, otherwise heap storage (a column vector stays a vector).
template <typename Scalar, int Rows, int Cols, int Preferred = Eigen::ColMajor>
using Storage = std::conditional_t<
    store_inline<Scalar, Rows, Cols>,
    Eigen::Matrix<Scalar, Rows, Cols, storage_order<Rows, Cols, Preferred>>,
    std::conditional_t<Cols == 1, Eigen::Matrix<Scalar, Eigen::Dynamic, 1>,
                       Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Preferred>>>;

}  // namespace detail

/// B x Cols activations (or codes), one row per token, row-major.
/// `Batch<float>` is a run-time sized [B, D] batch; `Batch<float, 768>` fixes D.
template <typename Scalar, int Cols = Dynamic>
using Batch = Eigen::Matrix<Scalar, Dynamic, Cols, detail::storage_order<Dynamic, Cols, Eigen::RowMajor>>;

/// A single activation, code or bias: a column vector of length N.
template <typename Scalar, int N = Dynamic>
using Vector = detail::Storage<Scalar, N, 1>;

}  // namespace sae
