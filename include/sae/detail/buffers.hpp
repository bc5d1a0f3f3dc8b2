// sae/detail/buffers.hpp: growing reusable buffers without reallocating at
// every new maximum.
#pragma once

#include <cstddef>
#include <vector>

namespace sae {
namespace detail {

/// v.resize(n), and when that must grow the capacity, room for a quarter and
/// 64 more: sizes that change from batch to batch (the number of active
/// codes, the batch itself) would otherwise reallocate at every new maximum
/// (at B = 4096, L0 = 64, 8 MB of fresh pages, ~2000 page faults, a tenth of
/// a step's time), and small ones (a token's TopK candidates, a dozen or two)
/// vary by more than a quarter.
template <typename T>
void resize_with_headroom(std::vector<T>& v, std::size_t n) {
  if (n > v.capacity()) v.reserve(n + n / 4 + 64);
  v.resize(n);
}

}  // namespace detail
}  // namespace sae
