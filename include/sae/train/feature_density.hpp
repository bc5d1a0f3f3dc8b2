// sae/train/feature_density.hpp: how often each latent fires, accumulated
// over a window of many batches (SAE-REFERENCE.md §5).
//
//   FeatureDensity density;               // sized by the first batch (or FeatureDensity(F))
//   density.update(codes);                // codes B x F, once per batch
//   density.alive_fraction();             // fired at least once in the window
//   density.dense_fraction(0.01);         // fire on more than 1% of tokens
//   density.log10_histogram(40);          // the feature-density plot
//   density.reset();                      // start a new window
//
// A latent "fires" on a token when its code is nonzero (the same test as
// sae::mean_l0, so NaN counts as firing and -0.0 does not). Counts are exact
// 64-bit integers; frequencies are count / tokens in double.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../detail/shape_check.hpp"

namespace sae {

/// Histogram of log10(firing frequency) over the latents that fired, with the
/// latents that never fired counted apart (log10 0 is -infinity).
///
/// Bin i covers [edge(i), edge(i + 1)), the last bin also its right edge 0
/// (a latent firing on every token). The bins span [min_log10, 0] in equal
/// widths; a latent that fired, but less often than 10^min_log10, is counted
/// in bin 0 (so the fired latents sum to counts' total).
struct DensityHistogram {
  double min_log10 = -8.0;           ///< left edge of bin 0; the right edge of the last bin is 0
  std::vector<std::int64_t> counts;  ///< latents per bin
  std::int64_t never_fired = 0;      ///< latents with no firing in the window

  Index bins() const { return static_cast<Index>(counts.size()); }
  double bin_width() const { return -min_log10 / static_cast<double>(counts.size()); }
  /// Left edge of bin i; edge(bins()) is 0.
  double edge(Index i) const {
    return i == bins() ? 0.0 : min_log10 + static_cast<double>(i) * bin_width();
  }
};

/// Per-latent firing counts over a window of tokens.
///
/// requires (update): every batch has the same number of columns F (set by
///           the constructor or by the first batch).
/// requires (queries other than tokens() and firing_counts()): at least one
///           token since construction or reset(); otherwise std::logic_error.
class FeatureDensity {
 public:
  using Counts = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

  /// Sized by the first update().
  FeatureDensity() = default;

  /// Sized for `num_latents` latents (F >= 1).
  explicit FeatureDensity(Index num_latents) {
    if (num_latents < 1)
      throw std::invalid_argument("sae::FeatureDensity: num_latents is " + std::to_string(num_latents) +
                                  ", expected at least 1");
    counts_ = Counts::Zero(num_latents);
  }

  /// Adds a batch of codes, B x F, one row per token. B may be 0.
  template <typename Derived>
  void update(const Eigen::MatrixBase<Derived>& codes) {
    if (counts_.size() == 0) {
      if (codes.cols() < 1)
        throw std::invalid_argument("sae::FeatureDensity::update: codes are " +
                                    detail::shape_string(codes.rows(), codes.cols()) +
                                    ", expected at least one column (one per latent)");
      counts_ = Counts::Zero(codes.cols());
    }
    if (codes.cols() != counts_.size())
      throw std::invalid_argument("sae::FeatureDensity::update: codes are " +
                                  detail::shape_string(codes.rows(), codes.cols()) + ", expected " +
                                  std::to_string(counts_.size()) + " columns (one per latent)");
    using Scalar = typename Derived::Scalar;
    if (Derived::IsRowMajor) {
      for (Index b = 0; b < codes.rows(); ++b)  // contiguous rows
        counts_.array() += (codes.row(b).transpose().array() != Scalar(0)).template cast<std::int64_t>();
    } else {
      for (Index f = 0; f < codes.cols(); ++f)  // contiguous columns
        counts_(f) += static_cast<std::int64_t>((codes.col(f).array() != Scalar(0)).count());
    }
    tokens_ += static_cast<std::int64_t>(codes.rows());
  }

  /// Forgets the counts and tokens (a new window); keeps the number of latents.
  void reset() {
    counts_.setZero();
    tokens_ = 0;
  }

  /// F, or 0 before the first update of a default-constructed object.
  Index num_latents() const { return counts_.size(); }
  /// Tokens (rows) seen since construction or reset().
  std::int64_t tokens() const { return tokens_; }
  /// Per latent, the number of tokens it fired on.
  const Counts& firing_counts() const { return counts_; }

  /// Per latent, the fraction of tokens it fired on: F values in [0, 1].
  Eigen::VectorXd firing_frequency() const {
    require_tokens("firing_frequency");
    return counts_.cast<double>() / static_cast<double>(tokens_);
  }

  /// Fraction of latents that fired on at least one token in the window.
  double alive_fraction() const {
    require_tokens("alive_fraction");
    return static_cast<double>((counts_.array() > 0).count()) / static_cast<double>(counts_.size());
  }

  /// Fraction of latents that fired on no token in the window (1 - alive_fraction()).
  double dead_fraction() const {
    require_tokens("dead_fraction");
    return static_cast<double>((counts_.array() == 0).count()) / static_cast<double>(counts_.size());
  }

  /// Fraction of latents firing on MORE than `threshold` of the tokens
  /// (threshold in [0, 1]; 0.01 and 0.1 are the usual "dense" cut-offs).
  /// Compared exactly in integers: count > threshold * tokens.
  double dense_fraction(double threshold) const {
    require_tokens("dense_fraction");
    if (!(threshold >= 0.0 && threshold <= 1.0))
      throw std::invalid_argument("sae::FeatureDensity::dense_fraction: threshold is " + std::to_string(threshold) +
                                  ", expected a fraction in [0, 1]");
    const double limit = threshold * static_cast<double>(tokens_);
    Index dense = 0;
    for (Index f = 0; f < counts_.size(); ++f)
      if (static_cast<double>(counts_(f)) > limit) ++dense;
    return static_cast<double>(dense) / static_cast<double>(counts_.size());
  }

  /// Histogram of log10(firing frequency) in `bins` equal bins over
  /// [min_log10, 0], latents that never fired counted in never_fired
  /// (see DensityHistogram). requires: bins >= 1, min_log10 finite and < 0.
  DensityHistogram log10_histogram(Index bins, double min_log10 = -8.0) const {
    require_tokens("log10_histogram");
    if (bins < 1)
      throw std::invalid_argument("sae::FeatureDensity::log10_histogram: bins is " + std::to_string(bins) +
                                  ", expected at least 1");
    if (!(std::isfinite(min_log10) && min_log10 < 0.0))
      throw std::invalid_argument("sae::FeatureDensity::log10_histogram: min_log10 is " +
                                  std::to_string(min_log10) + ", expected a finite negative number");
    DensityHistogram histogram;
    histogram.min_log10 = min_log10;
    histogram.counts.assign(static_cast<std::size_t>(bins), 0);
    const double total = static_cast<double>(tokens_);
    for (Index f = 0; f < counts_.size(); ++f) {
      if (counts_(f) == 0) {
        ++histogram.never_fired;
        continue;
      }
      const double log10_frequency = std::log10(static_cast<double>(counts_(f)) / total);
      // Position in units of bins: (l - min) * bins / (0 - min), floored, clamped to the range.
      const double position = std::floor((log10_frequency - min_log10) * static_cast<double>(bins) / -min_log10);
      const Index bin = position < 0.0                          ? 0
                        : position >= static_cast<double>(bins) ? bins - 1
                                                                : static_cast<Index>(position);
      ++histogram.counts[static_cast<std::size_t>(bin)];
    }
    return histogram;
  }

 private:
  void require_tokens(const char* function) const {
    if (tokens_ == 0)
      throw std::logic_error(std::string("sae::FeatureDensity::") + function +
                             ": no tokens seen since construction or reset(), the density is undefined");
  }

  Counts counts_;
  std::int64_t tokens_ = 0;
};

}  // namespace sae
