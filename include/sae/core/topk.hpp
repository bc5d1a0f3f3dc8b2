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
/// the row: one pass keeps a min-heap of the k best seen so far. Once the heap
/// holds large values almost every entry fails one comparison with its
/// weakest, so the cost is about n comparisons plus O(k log k · log(n/k)).
/// Requires 0 <= k <= n.
template <typename Scalar>
void select_top_k(const Scalar* values, Index n, Index k, std::vector<Index>& chosen) {
  chosen.clear();
  if (k <= 0) return;
  if (k >= n) {
    for (Index i = 0; i < n; ++i) chosen.push_back(i);
    return;
  }
  // a beats b: a larger value, or the same value at a lower position. As the
  // heap's order this puts the weakest kept entry at the front.
  const auto beats = [values](Index a, Index b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
  for (Index i = 0; i < k; ++i) chosen.push_back(i);
  std::make_heap(chosen.begin(), chosen.end(), beats);
  Scalar weakest = values[chosen.front()];
  for (Index i = k; i < n; ++i) {
    // Later positions lose ties, so only a strictly larger value gets in.
    if (!(values[i] > weakest)) continue;
    std::pop_heap(chosen.begin(), chosen.end(), beats);
    chosen.back() = i;
    std::push_heap(chosen.begin(), chosen.end(), beats);
    weakest = values[chosen.front()];
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
