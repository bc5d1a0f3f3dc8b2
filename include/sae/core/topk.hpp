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
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../detail/parallel.hpp"
#include "activation.hpp"

namespace sae {
namespace detail {

/// Writes to `chosen` the positions of the k largest of values[0..n) in
/// increasing order (ties broken towards lower positions), without sorting
/// the row. NaN is never chosen. Requires 0 <= k <= n.
///
/// The row is cut into blocks of 32 and each block's maximum taken (a
/// vectorised pass). The k-th largest block maximum T is a lower bound on the
/// k-th largest entry (k blocks each hold an entry >= T), so the k largest
/// are among the entries >= T, which lie in the few blocks whose maximum is
/// >= T: those few dozen candidates are all that is compared and sorted.
template <typename Scalar>
void select_top_k(const Scalar* values, Index n, Index k, std::vector<Index>& chosen) {
  constexpr Index block = 32;
  chosen.clear();
  if (k <= 0) return;
  const Index blocks = n / block;  // whole blocks; the tail is always scanned
  thread_local std::vector<Scalar> maxima, ranked;
  maxima.resize(static_cast<std::size_t>(blocks));
  ranked.clear();
  for (Index j = 0; j < blocks; ++j) {
    // NaN-propagating, so a NaN block is flagged rather than reporting a
    // maximum below that of its other entries.
    const Scalar m = Eigen::Map<const Eigen::Array<Scalar, block, 1>>(values + j * block)
                         .template maxCoeff<Eigen::PropagateNaN>();
    maxima[static_cast<std::size_t>(j)] = m;
    if (!std::isnan(m)) ranked.push_back(m);
  }
  Scalar threshold = -std::numeric_limits<Scalar>::infinity();
  if (static_cast<Index>(ranked.size()) >= k) {
    std::nth_element(ranked.begin(), ranked.begin() + (k - 1), ranked.end(), std::greater<Scalar>());
    threshold = ranked[static_cast<std::size_t>(k - 1)];
  }
  const auto scan = [&](Index begin, Index end) {
    for (Index i = begin; i < end; ++i)
      if (values[i] >= threshold) chosen.push_back(i);
  };
  for (Index j = 0; j < blocks; ++j) {
    const Scalar m = maxima[static_cast<std::size_t>(j)];
    if (m >= threshold || std::isnan(m)) scan(j * block, (j + 1) * block);
  }
  scan(blocks * block, n);
  if (static_cast<Index>(chosen.size()) > k) {
    // a beats b: a larger value, or the same value at a lower position.
    const auto beats = [values](Index a, Index b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
    std::nth_element(chosen.begin(), chosen.begin() + (k - 1), chosen.end(), beats);
    chosen.resize(static_cast<std::size_t>(k));
    std::sort(chosen.begin(), chosen.end());
  }
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
