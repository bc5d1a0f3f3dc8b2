// sae/detail/double_sums.hpp: dot products and sums of squares of float (or
// double) data, accumulated in double, for the training step's bookkeeping
// (the decoder constraint, gradient clipping).
//
// Eigen's a.cast<double>().dot(b.cast<double>()) converts and adds one
// element at a time here: about 3x slower than these loops (g++ 12, Zen 5),
// which keep `lanes` partial sums that the compiler turns into vector
// registers, and add them in a fixed order at the end. A result depends on
// the data and n alone, not on the thread count or the caller's alignment.
#pragma once

#include <algorithm>
#include <array>

#include "../config.hpp"
#include "parallel.hpp"

namespace sae {
namespace detail {

/// Σ a_i b_i over i < n, accumulated in double.
template <typename Scalar>
double dot_in_double(const Scalar* a, const Scalar* b, Index n) {
  constexpr int lanes = 16;
  std::array<double, lanes> partial{};
  const Index whole = n - n % lanes;
  for (Index i = 0; i < whole; i += lanes)
    for (int j = 0; j < lanes; ++j) partial[j] += static_cast<double>(a[i + j]) * static_cast<double>(b[i + j]);
  double sum = 0.0;
  for (Index i = whole; i < n; ++i) sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  for (int j = 0; j < lanes; ++j) sum += partial[j];
  return sum;
}

/// Σ a_i² over i < n, accumulated in double: on OpenMP's threads for large
/// n, as 64 fixed blocks whose sums are added in block order, so the result
/// is the same for any thread count.
template <typename Scalar>
double sum_of_squares_in_double(const Scalar* a, Index n) {
  constexpr Index blocks = 64;
  if (!worth_parallel(n)) return dot_in_double(a, a, n);
  std::array<double, blocks> block_sums{};
  const Index block = (n + blocks - 1) / blocks;
  SAE_OMP(parallel for schedule(static))
  for (Index k = 0; k < blocks; ++k) {
    const Index begin = std::min(n, k * block), end = std::min(n, begin + block);
    block_sums[static_cast<std::size_t>(k)] = dot_in_double(a + begin, a + begin, end - begin);
  }
  double sum = 0.0;
  for (const double s : block_sums) sum += s;
  return sum;
}

}  // namespace detail
}  // namespace sae
