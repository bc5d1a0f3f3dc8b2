// sae/core/topk.hpp: the TopK and BatchTopK architectures, and top-k selection.
//
//   TopK       f = ReLU(keep the k largest of A W_enc + b_enc in each row, zero the rest)
//              (OpenAI, sparsify, dictionary_learning; k fixed per token)
//   BatchTopK  training: keep the k·B largest of ReLU(A W_enc + b_enc) over the
//              whole batch (Bussmann et al. 2024), so a token may use more or
//              fewer than k latents; inference: f = P · 1[P > θ] with one
//              threshold θ learned during training (an average of the smallest
//              kept activation). SAELens and dictionary_learning export it as a
//              JumpReLU whose thresholds are all θ.
//
// Their training objective (reconstruction + AuxK) is in sae/loss/topk_objective.hpp.
// SparseAutoEncoder::encode and the objective take the bfloat16 screen of
// sae/detail/gemm_screened_topk.hpp where it is built (AVX-512 BF16), with the
// same codes: only the entries that could be among a token's k largest are
// summed exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../detail/parallel.hpp"
#include "activation.hpp"

namespace sae {
namespace detail {

/// The k-th largest of x[0..n), none of them NaN, 1 <= k <= n: a bisection
/// on the bit patterns, which order like the values once negative ones have
/// their bits flipped and positive ones their sign bit set. One counting pass
/// per bit (vectorised, no branches to mispredict) beats std::nth_element on
/// the few hundred group maxima of a row.
template <typename Scalar>
Scalar kth_largest(const Scalar* x, Index n, Index k) {
  static_assert(std::numeric_limits<Scalar>::is_iec559, "kth_largest needs IEEE floating point");
  using Key = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(Key) == sizeof(Scalar), "kth_largest takes float or double");
  constexpr int bits = 8 * sizeof(Key);
  constexpr Key sign = Key(1) << (bits - 1);
  thread_local std::vector<Key> keys;
  keys.resize(static_cast<std::size_t>(n));
  Key* const key = keys.data();
  for (Index i = 0; i < n; ++i) {
    Key u;
    std::memcpy(&u, x + i, sizeof u);
    key[i] = (u & sign) ? ~u : (u | sign);
  }
  // The largest t with at least k keys >= t is the k-th largest key.
  Key t = 0;
  for (int b = bits - 1; b >= 0; --b) {
    const Key candidate = t | (Key(1) << b);
    Index count = 0;
    for (Index i = 0; i < n; ++i) count += key[i] >= candidate;
    if (count >= k) t = candidate;
  }
  const Key u = (t & sign) ? (t & ~sign) : ~t;
  Scalar value;
  std::memcpy(&value, &u, sizeof u);
  return value;
}

/// The k-th largest of the positive entries of x[0..n) (NaN is not
/// positive), or 0 when fewer than k of them are positive; k >= 1.
/// BatchTopK's cut over a whole batch (k·B of B·F entries), where
/// std::nth_element on a copy of all of them was most of a step's selection.
///
/// A bound from a sample: every 64th positive entry, and the one at twice
/// the k-th's expected rank among them. One pass gathers every entry >= that
/// bound into `scratch`; if there are at least k of them, the k-th largest
/// positive entry is among them (k entries are >= the bound, so it is too,
/// and so is everything above it), found by std::nth_element on these few.
/// If the sample misled (fewer than k gathered), the bound is lowered to a
/// rank four times further down, and at last to "any positive entry". Exact
/// either way; the sample only decides how much is ranked.
template <typename Scalar>
Scalar kth_largest_positive(const Scalar* x, Index n, Index k, std::vector<Scalar>& scratch) {
  constexpr Index stride = 64;
  thread_local std::vector<Scalar> sample;
  sample.clear();
  for (Index i = 0; i < n; i += stride)
    if (x[i] > Scalar(0)) sample.push_back(x[i]);
  const auto ranks = static_cast<Index>(sample.size());
  for (Index rank = 2 * (k / stride) + 8;; rank *= 4) {
    // Past the sample, the smallest positive value: every positive entry is
    // >= it, and nothing else (NaN compares false).
    Scalar bound = std::numeric_limits<Scalar>::denorm_min();
    if (rank < ranks) {
      std::nth_element(sample.begin(), sample.begin() + rank, sample.end(), std::greater<Scalar>());
      bound = sample[static_cast<std::size_t>(rank)];
    }
    scratch.clear();
    for (Index i = 0; i < n; ++i)
      if (x[i] >= bound) scratch.push_back(x[i]);
    if (static_cast<Index>(scratch.size()) >= k) {
      const auto kth = scratch.begin() + (k - 1);
      std::nth_element(scratch.begin(), kth, scratch.end(), std::greater<Scalar>());
      return *kth;
    }
    if (rank >= ranks) return Scalar(0);  // fewer than k positive entries
  }
}

/// Writes to `chosen` the positions of the k largest of values[0..n) in
/// increasing order (ties broken towards lower positions), without sorting
/// the row. NaN is never chosen. Requires 0 <= k <= n.
///
/// The row is dealt into G groups of about 32, entry i to group i mod G, and
/// each group's maximum taken (NaN skipped): G side by side maxima are one
/// vectorised pass over the row. The k-th largest group maximum T is a lower
/// bound on the k-th largest entry (k groups each hold an entry >= T), so the
/// k largest are among the entries >= T, which lie in the few groups whose
/// maximum is >= T: those few dozen candidates are all that is compared and
/// sorted. (With fewer than k groups T is -inf, as it is when fewer than k
/// groups hold an entry that is not NaN: every entry but NaN is a candidate.)
template <typename Scalar>
void select_top_k(const Scalar* values, Index n, Index k, std::vector<Index>& chosen) {
  chosen.clear();
  if (k <= 0) return;
  constexpr Scalar lowest = -std::numeric_limits<Scalar>::infinity();
  Index groups = std::max<Index>(1, n / 32);
  if (groups >= 16) groups -= groups % 16;  // whole vectors of maxima
  thread_local std::vector<Scalar> maxima;
  maxima.assign(static_cast<std::size_t>(groups), lowest);
  Scalar* const maximum = maxima.data();
  // v > m ? v : m keeps m when v is NaN. Every pass but a last partial one
  // covers all the groups.
  for (Index i = 0; i < n; i += groups) {
    const Index width = std::min(groups, n - i);
    for (Index g = 0; g < width; ++g) maximum[g] = values[i + g] > maximum[g] ? values[i + g] : maximum[g];
  }

  const Scalar threshold = groups >= k ? kth_largest(maximum, groups, k) : lowest;
  // Room for the usual count of candidates (k and a few), so that warm calls
  // do not allocate as it varies from row to row.
  if (chosen.capacity() < static_cast<std::size_t>(4 * k + 64)) chosen.reserve(static_cast<std::size_t>(4 * k + 64));
  for (Index g = 0; g < groups; ++g)
    if (maximum[g] >= threshold)
      for (Index j = g; j < n; j += groups)
        if (values[j] >= threshold) chosen.push_back(j);
  if (static_cast<Index>(chosen.size()) > k) {
    // a beats b: a larger value, or the same value at a lower position.
    const auto beats = [values](Index a, Index b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
    std::nth_element(chosen.begin(), chosen.begin() + (k - 1), chosen.end(), beats);
    chosen.resize(static_cast<std::size_t>(k));
  }
  std::sort(chosen.begin(), chosen.end());
}

inline void check_k(Index k, Index dict_size, const char* where) {
  if (k <= 0 || k > dict_size)
    throw std::invalid_argument(std::string(where) + ": k must be in [1, dict_size = " + std::to_string(dict_size) +
                                "], got " + std::to_string(k));
}

}  // namespace detail

/// TopK: the k largest pre-activations of each token, through a ReLU.
struct TopK {
  static constexpr const char* name = "topk";
  Index k = 32;

  template <typename Params>
  void add_parameters(Params&) const {}

  template <typename Params>
  void check(const Params& p, const char* where) const {
    detail::check_k(k, p.dict_size(), where);
  }

  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    using Scalar = typename Derived::Scalar;
    const Index n = H.cols();
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(H.size())))
    for (Index b = 0; b < H.rows(); ++b) {
      // One thread per row; the row is copied out because H may store it strided.
      thread_local std::vector<Index> chosen;
      thread_local std::vector<Scalar> kept;
      auto row = H.row(b);
      kept.resize(static_cast<std::size_t>(n));
      for (Index i = 0; i < n; ++i) kept[static_cast<std::size_t>(i)] = row(i) + p.b_enc(i);
      detail::select_top_k(kept.data(), n, k, chosen);
      row.setZero();
      for (Index i : chosen) row(i) = std::max(kept[static_cast<std::size_t>(i)], Scalar(0));
    }
  }
};

/// BatchTopK: top k·B over the batch in training; a learned threshold at inference.
struct BatchTopK {
  static constexpr const char* name = "batchtopk";
  Index k = 32;
  /// Inference threshold θ: codes are P · 1[P > θ]. Negative until training
  /// has set it (dictionary_learning starts it at −1), in which case encoding
  /// falls back to the per-token TopK rule.
  double threshold = -1.0;

  template <typename Params>
  void add_parameters(Params&) const {}

  template <typename Params>
  void check(const Params& p, const char* where) const {
    detail::check_k(k, p.dict_size(), where);
    if (!std::isfinite(threshold))
      throw std::invalid_argument(std::string(where) + ": the BatchTopK threshold is not finite");
  }

  template <typename Params, typename Derived>
  void encode_in_place(const Params& p, Eigen::MatrixBase<Derived>& H) const {
    using Scalar = typename Derived::Scalar;
    if (threshold < 0.0) {
      TopK{k}.encode_in_place(p, H);
      return;
    }
    H.derived().rowwise() += p.b_enc.transpose();
    const Scalar theta = static_cast<Scalar>(threshold);
    H.derived() = (H.derived().array() > theta).select(H.derived(), Scalar(0));
  }
};

}  // namespace sae
