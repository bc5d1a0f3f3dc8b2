// sae/train/dead_latents.hpp: finding latents that never fire, and
// resampling them (Towards Monosemanticity; dictionary_learning's standard
// trainer; SAE-REFERENCE.md §3).
//
// A latent whose pre-activation is negative on every input gets no gradient
// through its code, so nothing brings it back: it is dead, and its share of
// the dictionary is wasted. DeadLatentTracker counts, per latent, the tokens
// seen since it last fired; resample_dead_latents gives dead latents a new
// direction taken from an input the model reconstructs badly.
//
// Use in a trainer:
//
//     tracker.update(codes);                                   // every step
//     if (step % resample_every == 0) {
//       const auto dead = tracker.dead_latents(window_tokens);
//       const auto r = resample_dead_latents(model, adam, dead, sample_X, rng);
//       tracker.revive(r.latents);                             // a fresh window for them
//     }
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/parameters.hpp"
#include "../core/random.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../detail/parallel.hpp"
#include "../detail/shape_check.hpp"
#include "../optim/adam.hpp"

namespace sae {

// ---------------------------------------------------------------------------
// Tracking

/// Tokens seen since each latent last fired (had a nonzero code).
///
/// A new tracker counts 0 for every latent, so no latent is dead before it
/// has had a whole window to fire. Counts saturate at 2^64 − 1.
///
/// Dead means "has not fired in the last `window_tokens` tokens", i.e.
/// tokens_since_fired ≥ window_tokens. SAELens and sparsify test > instead;
/// the two differ only when the count equals the window exactly.
class DeadLatentTracker {
 public:
  DeadLatentTracker() = default;
  explicit DeadLatentTracker(Index dict_size) { reset(dict_size); }

  /// Forgets everything: dict_size latents, each with a count of 0.
  void reset(Index dict_size) {
    if (dict_size < 0)
      throw std::invalid_argument("sae::DeadLatentTracker: dict_size must be >= 0, got " +
                                  std::to_string(dict_size));
    counts_.assign(static_cast<std::size_t>(dict_size), 0);
  }

  Index dict_size() const { return static_cast<Index>(counts_.size()); }

  /// Records a batch of codes (B x F, one row per token): a latent with any
  /// nonzero code in the batch goes back to 0, every other one adds B.
  ///
  /// requires: codes has dict_size() columns (std::invalid_argument otherwise).
  template <typename Derived>
  void update(const Eigen::MatrixBase<Derived>& codes) {
    detail::require_size(codes.cols(), dict_size(), "sae::DeadLatentTracker::update", "code batch", "columns");
    const auto& c = codes.derived().eval();  // a plain matrix is used in place, an expression evaluated once
    using Scalar = typename Derived::Scalar;
    fired_.assign(counts_.size(), 0);
    // Walk in storage order: for row-major codes, across each row.
    if constexpr (std::decay_t<decltype(c)>::IsRowMajor) {
      // Branch-free, so the compiler vectorises it: at a fresh ReLU model's
      // ~50% density a branch here mispredicts on every other code. Each
      // thread takes a slice of the latents down every row, through a local
      // pointer (see for_column_slices: a byte store through fired_[f] may
      // alias fired_'s own pointer).
      detail::for_column_slices(c.cols(), c.size(), [&](Index begin, Index end) {
        unsigned char* const fired = fired_.data();
        for (Index b = 0; b < c.rows(); ++b) {
          const Scalar* row = c.row(b).data();
          for (Index f = begin; f < end; ++f) fired[f] |= row[f] != Scalar(0);
        }
      });
    } else {
      for (Index f = 0; f < c.cols(); ++f)
        for (Index b = 0; b < c.rows(); ++b)
          if (c(b, f) != Scalar(0)) {
            fired_[static_cast<std::size_t>(f)] = 1;
            break;
          }
    }
    const auto batch = static_cast<std::uint64_t>(c.rows());
    constexpr std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
    for (std::size_t f = 0; f < counts_.size(); ++f)
      counts_[f] = fired_[f] ? 0 : (counts_[f] > most - batch ? most : counts_[f] + batch);
  }

  /// mask[f] is true when latent f has not fired in the last window_tokens tokens.
  ///
  /// requires: window_tokens > 0 (std::invalid_argument otherwise).
  std::vector<bool> dead_mask(std::uint64_t window_tokens) const {
    check_window(window_tokens, "dead_mask");
    std::vector<bool> mask(counts_.size());
    for (std::size_t f = 0; f < counts_.size(); ++f) mask[f] = counts_[f] >= window_tokens;
    return mask;
  }

  /// The dead latents' indices, increasing.
  std::vector<Index> dead_latents(std::uint64_t window_tokens) const {
    check_window(window_tokens, "dead_latents");
    std::vector<Index> dead;
    for (std::size_t f = 0; f < counts_.size(); ++f)
      if (counts_[f] >= window_tokens) dead.push_back(static_cast<Index>(f));
    return dead;
  }

  /// The fraction of latents that are dead (0 for an empty tracker).
  double dead_fraction(std::uint64_t window_tokens) const {
    check_window(window_tokens, "dead_fraction");
    if (counts_.empty()) return 0.0;
    const auto dead = std::count_if(counts_.begin(), counts_.end(),
                                    [&](std::uint64_t n) { return n >= window_tokens; });
    return static_cast<double>(dead) / static_cast<double>(counts_.size());
  }

  /// Sets the given latents' counts to 0 (after resampling them, so they get a
  /// whole window to fire before they can count as dead again).
  ///
  /// requires: every index in [0, dict_size()) (std::invalid_argument otherwise).
  void revive(const std::vector<Index>& latents) {
    for (Index f : latents) {
      if (f < 0 || f >= dict_size())
        throw std::invalid_argument("sae::DeadLatentTracker::revive: latent " + std::to_string(f) +
                                    " is out of range [0, " + std::to_string(dict_size()) + ")");
      counts_[static_cast<std::size_t>(f)] = 0;
    }
  }

  /// The state, for checkpoints: one count per latent.
  const std::vector<std::uint64_t>& tokens_since_fired() const { return counts_; }

  /// Restores a state saved from tokens_since_fired(); dict_size() becomes its size.
  void set_tokens_since_fired(std::vector<std::uint64_t> counts) { counts_ = std::move(counts); }

 private:
  static void check_window(std::uint64_t window_tokens, const char* what) {
    if (window_tokens == 0)
      throw std::invalid_argument(std::string("sae::DeadLatentTracker::") + what +
                                  ": window_tokens must be positive (with 0 every latent would be dead)");
  }

  std::vector<std::uint64_t> counts_;
  std::vector<unsigned char> fired_;  // scratch for update(), kept to avoid allocating per batch
};

// ---------------------------------------------------------------------------
// Resampling

/// What resample_dead_latents did.
struct ResampleResult {
  std::vector<Index> latents;  ///< the latents resampled, in the order given
  std::vector<Index> rows;     ///< rows[j]: the row of X that latents[j] was set from
  double live_encoder_norm = 0;  ///< mean encoder-column norm of the live latents (1 if none, or if it is 0)
};

/// Draws up to `count` distinct indices i with probability proportional to
/// weights[i], as successive draws without replacement would (Efraimidis &
/// Spirakis 2006: the `count` largest keys log(u_i) / w_i, u_i uniform in (0, 1]).
/// Indices of weight 0 are never drawn, so fewer than `count` come back when
/// fewer weights are positive. The result is in draw order.
///
/// One rng.uniform() per positive weight, in index order: the same generator
/// state gives the same draws.
///
/// requires: every weight finite and ≥ 0 (std::invalid_argument otherwise).
inline std::vector<Index> weighted_sample_without_replacement(const std::vector<double>& weights, Index count,
                                                              Rng& rng) {
  std::vector<std::pair<double, Index>> keyed;  // (key, index)
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    if (!(w >= 0.0) || !std::isfinite(w))
      throw std::invalid_argument("sae::weighted_sample_without_replacement: weight " + std::to_string(i) +
                                  " is " + std::to_string(w) + ", expected finite and >= 0");
    if (w == 0.0) continue;
    const double u = 1.0 - rng.uniform();  // in (0, 1]: log is finite
    keyed.emplace_back(std::log(u) / w, static_cast<Index>(i));
  }
  const auto k = static_cast<std::size_t>(std::clamp<Index>(count, 0, static_cast<Index>(keyed.size())));
  // Largest key first; equal keys (vanishingly rare) by index, so the order is total.
  const auto before = [](const std::pair<double, Index>& a, const std::pair<double, Index>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(k), keyed.end(), before);
  std::vector<Index> drawn(k);
  for (std::size_t j = 0; j < k; ++j) drawn[j] = keyed[j].second;
  return drawn;
}

/// Zeroes both Adam moments of the given latents' own parameters: column f of
/// W_enc, entry f of b_enc, row f of W_dec and entry f of the architecture's
/// per-latent vectors (not b_dec, which all latents share). The moments are stored in each tensor's own order: W_enc is
/// column-major D x F, so column f is the D entries from f·D; W_dec is
/// row-major F x D, so row f is the D entries from f·D. The offsets are taken
/// from the tensors' strides, so this stays right whatever the storage.
/// Does nothing if the optimizer has not taken a step yet (no moments).
///
/// requires: the moments, if any, sized for `params` (std::invalid_argument
///           otherwise); latents in [0, F).
template <typename Scalar, int D, int F>
void reset_adam_moments(Adam<Scalar>& adam, const Parameters<Scalar, D, F>& params, const std::vector<Index>& latents) {
  auto& m = adam.first_moments();
  auto& v = adam.second_moments();
  if (m.empty() && v.empty()) return;
  std::vector<Index> sizes;
  params.for_each([&](const char*, const auto& t) { sizes.push_back(t.size()); });
  bool matches = m.size() == sizes.size() && v.size() == sizes.size();
  for (std::size_t t = 0; matches && t < sizes.size(); ++t) matches = m[t].size() == sizes[t] && v[t].size() == sizes[t];
  if (!matches)
    throw std::invalid_argument(
        "sae::reset_adam_moments: the optimizer's moments are not sized for these parameters "
        "(it has stepped a model of another size)");
  const Index d_count = params.input_dim();
  for (Index f : latents) {
    if (f < 0 || f >= params.dict_size())
      throw std::invalid_argument("sae::reset_adam_moments: latent " + std::to_string(f) + " is out of range [0, " +
                                  std::to_string(params.dict_size()) + ")");
    for (Index d = 0; d < d_count; ++d) {
      const Index enc = d * params.W_enc.rowStride() + f * params.W_enc.colStride();
      const Index dec = f * params.W_dec.rowStride() + d * params.W_dec.colStride();
      m[0][enc] = v[0][enc] = Scalar(0);
      m[2][dec] = v[2][dec] = Scalar(0);
    }
    m[1][f] = v[1][f] = Scalar(0);
    // The architecture's per-latent vectors (threshold, r_mag, b_mag), where present.
    for (std::size_t t = 4; t < sizes.size(); ++t)
      if (sizes[t] > 0) m[t][f] = v[t][f] = Scalar(0);
  }
}

/// Resamples dead latents from inputs chosen with probability proportional
/// to `sampling_weights` (Towards Monosemanticity):
///
///   - draw one distinct row x of X per dead latent, P ∝ sampling_weights
///     (rows of zero weight, zero norm or non-finite entries are never drawn);
///   - decoder row f  ← x / ‖x‖;
///   - encoder column f ← encoder_norm_factor (0.2) × (mean ‖W_enc column‖
///     over the live latents, i.e. those not in dead_latents; 1 if there are
///     none or that mean is 0) × x / ‖x‖;
///   - encoder bias f ← 0;
///   - both Adam moments of those entries ← 0 (reset_adam_moments).
///
/// The encoder column follows the normalised input, as Towards Monosemanticity
/// specifies; dictionary_learning multiplies the raw input instead (the same
/// thing when inputs are scaled to unit mean squared norm). With b_dec not
/// subtracted from the input (this model), the new latent's pre-activation on
/// x is encoder_norm_factor × live norm × ‖x‖ > 0: it fires on the input it
/// was set from.
///
/// When fewer rows can be drawn than there are dead latents, the first ones
/// (in the order given) are resampled and the rest left as they are. Adam's
/// step count is kept, so the next updates of the resampled entries are
/// larger than usual for a few steps (m and v restart from 0 with bias
/// corrections near 1), as in dictionary_learning.
///
/// requires: X is N x D with params' D and the same scalar; sampling_weights
///           has N entries, finite and ≥ 0; dead_latents distinct and in
///           [0, F); encoder_norm_factor > 0; the Adam state (if any) sized
///           for params. std::invalid_argument otherwise, before anything changes.
/// ensures:  only the resampled latents' W_enc columns, b_enc entries, W_dec
///           rows and those entries' moments change.
template <typename Scalar, int D, int F, typename DerivedX, typename DerivedW>
ResampleResult resample_dead_latents(Parameters<Scalar, D, F>& params, Adam<Scalar>& adam,
                                     const std::vector<Index>& dead_latents, const Eigen::MatrixBase<DerivedX>& X,
                                     const Eigen::MatrixBase<DerivedW>& sampling_weights, Rng& rng,
                                     double encoder_norm_factor = 0.2) {
  constexpr const char* where = "sae::resample_dead_latents";
  detail::static_check_scalar<DerivedX, Scalar>();
  params.check_consistent(where);
  detail::require_size(X.cols(), params.input_dim(), where, "X", "columns");
  if (sampling_weights.size() != X.rows() || (sampling_weights.rows() != 1 && sampling_weights.cols() != 1))
    throw std::invalid_argument(std::string(where) + ": sampling_weights is " +
                                detail::shape_string(sampling_weights.rows(), sampling_weights.cols()) +
                                ", expected a vector of " + std::to_string(X.rows()) + " entries (one per row of X)");
  if (!(encoder_norm_factor > 0.0) || !std::isfinite(encoder_norm_factor))
    throw std::invalid_argument(std::string(where) + ": encoder_norm_factor must be positive and finite, got " +
                                std::to_string(encoder_norm_factor));
  const Index dict = params.dict_size();
  std::vector<unsigned char> is_dead(static_cast<std::size_t>(dict), 0);
  for (Index f : dead_latents) {
    if (f < 0 || f >= dict)
      throw std::invalid_argument(std::string(where) + ": dead latent " + std::to_string(f) + " is out of range [0, " +
                                  std::to_string(dict) + ")");
    if (is_dead[static_cast<std::size_t>(f)])
      throw std::invalid_argument(std::string(where) + ": dead latent " + std::to_string(f) + " is listed twice");
    is_dead[static_cast<std::size_t>(f)] = 1;
  }
  reset_adam_moments(adam, params, {});  // checks the optimizer state before anything changes

  // Sampling weights; a zero (or non-finite) row has no direction to give, so it is never drawn.
  std::vector<double> weights(static_cast<std::size_t>(X.rows()));
  for (Index i = 0; i < X.rows(); ++i) {
    const double w = static_cast<double>(sampling_weights(i));
    if (!(w >= 0.0) || !std::isfinite(w))
      throw std::invalid_argument(std::string(where) + ": sampling weight of row " + std::to_string(i) + " is " +
                                  std::to_string(w) + ", expected finite and >= 0");
    const double squared_norm = X.row(i).template cast<double>().squaredNorm();
    weights[static_cast<std::size_t>(i)] = squared_norm > 0.0 && std::isfinite(squared_norm) ? w : 0.0;
  }

  ResampleResult result;
  double live_norm_sum = 0.0;
  Index live = 0;
  for (Index f = 0; f < dict; ++f)
    if (!is_dead[static_cast<std::size_t>(f)]) {
      live_norm_sum += params.W_enc.col(f).template cast<double>().norm();
      ++live;
    }
  // With no live latents (or live ones of zero norm) the recipe would give a
  // zero encoder column, which never fires: use 1 instead.
  result.live_encoder_norm = live > 0 ? live_norm_sum / static_cast<double>(live) : 0.0;
  if (!(result.live_encoder_norm > 0.0)) result.live_encoder_norm = 1.0;
  if (dead_latents.empty()) return result;

  result.rows = weighted_sample_without_replacement(weights, static_cast<Index>(dead_latents.size()), rng);
  result.latents.assign(dead_latents.begin(), dead_latents.begin() + static_cast<std::ptrdiff_t>(result.rows.size()));

  const double encoder_norm = encoder_norm_factor * result.live_encoder_norm;
  for (std::size_t j = 0; j < result.rows.size(); ++j) {
    const Index f = result.latents[j];
    const Eigen::RowVectorXd x = X.row(result.rows[j]).template cast<double>();
    const Eigen::RowVectorXd direction = x / x.norm();
    params.W_dec.row(f) = direction.template cast<Scalar>();
    params.W_enc.col(f) = (encoder_norm * direction).transpose().template cast<Scalar>();
    params.b_enc(f) = Scalar(0);
  }
  reset_adam_moments(adam, params, result.latents);
  return result;
}

/// As above, with each row's sampling weight its squared reconstruction
/// error under `model`, ‖x̂ − x‖² (the per-row L2 term of the loss). X is
/// encoded in chunks of 4096 rows, so a large sample needs no N x F buffer.
///
/// Other weightings: dictionary_learning draws ∝ ‖x̂ − x‖; Towards
/// Monosemanticity ∝ the square of each input's whole loss. Compute those and
/// pass them to the overload above.
template <typename Scalar, int D, int F, typename Activation, typename DerivedX>
ResampleResult resample_dead_latents(SparseAutoEncoder<Scalar, D, F, Activation>& model, Adam<Scalar>& adam,
                                     const std::vector<Index>& dead_latents, const Eigen::MatrixBase<DerivedX>& X,
                                     Rng& rng, double encoder_norm_factor = 0.2) {
  detail::static_check_scalar<DerivedX, Scalar>();
  detail::require_size(X.cols(), model.input_dim(), "sae::resample_dead_latents", "X", "columns");
  Eigen::VectorXd weights(X.rows());
  if (!dead_latents.empty()) {
    constexpr Index chunk = 4096;
    typename SparseAutoEncoder<Scalar, D, F, Activation>::CodeBatch codes;
    typename SparseAutoEncoder<Scalar, D, F, Activation>::InputBatch recon;
    for (Index start = 0; start < X.rows(); start += chunk) {
      const Index n = std::min(chunk, X.rows() - start);
      model.encode(X.middleRows(start, n), codes);
      model.decode(codes, recon);
      weights.segment(start, n) =
          (recon - X.middleRows(start, n)).template cast<double>().rowwise().squaredNorm();
    }
  } else {
    weights.setZero();
  }
  return resample_dead_latents(model.params(), adam, dead_latents, X, weights, rng, encoder_norm_factor);
}

}  // namespace sae
