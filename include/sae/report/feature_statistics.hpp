// sae/report/feature_statistics.hpp: everything a feature dashboard shows,
// accumulated over the activations one chunk at a time.
//
//   sae::FeatureStatistics stats(F, /*top_rows=*/10, /*histogram_bins=*/32);
//   for each chunk (rows first_row ..):            // the chunks in row order
//     model.encode(X, codes); model.decode(codes, recon);
//     stats.update(first_row, X, codes, recon);
//   stats.fvu(); stats.l0(); stats.density().dead_fraction();
//   stats.top_rows(f);        // latent f's strongest rows, strongest first
//   stats.histogram(f);       // latent f's activation histogram
//
// Per latent it keeps: the firing count (sae::FeatureDensity, the training
// code's own), the sum and max of its nonzero codes, an activation histogram
// (LatentHistograms) and a min-heap of its `top_rows` largest codes. Heaps are
// kept for EVERY latent, not only for a list chosen beforehand, so that the
// latents to show ("the N that fire most often") can be picked after the
// pass, with no second pass. Memory: O(F x (top_rows + histogram_bins)),
// whatever the number of rows.
//
// Reconstruction: the summed squared error and, for FVU's denominator, the
// total variance about the mean of ALL rows, combined chunk by chunk with
// Chan et al.'s pairwise update (exact, and stable far from zero: no
// sum-of-squares cancellation). fvu() equals
// sae::fraction_of_variance_unexplained over the whole file (to rounding),
// which needs the whole file in memory.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../metrics.hpp"
#include "../top_activations.hpp"  // ActivatingRow
#include "../train/feature_density.hpp"
#include "activation_histogram.hpp"

namespace sae {

class FeatureStatistics {
 public:
  /// requires: latents >= 1, top_rows >= 1, histogram_bins even and >= 2.
  FeatureStatistics(Index latents, Index top_rows, Index histogram_bins)
      : density_(latents), histograms_(latents, histogram_bins), top_rows_(top_rows) {
    if (top_rows < 1) throw std::invalid_argument("sae::FeatureStatistics: top_rows must be at least 1");
    sums_.assign(static_cast<std::size_t>(latents), 0.0);
    maxima_.assign(static_cast<std::size_t>(latents), 0.0);
    heaps_.resize(static_cast<std::size_t>(latents * top_rows));
    heap_sizes_.assign(static_cast<std::size_t>(latents), 0);
  }

  /// Adds rows first_row, first_row + 1, ... : their activations X (B x D),
  /// codes (B x F) and reconstructions (B x D). Chunks must come in row order
  /// without overlap (the rows name the top rows; the order is not checked).
  /// Throws std::runtime_error, naming the row, on a non-finite activation or code.
  template <typename DerivedX, typename DerivedCodes, typename DerivedRecon>
  void update(Index first_row, const Eigen::MatrixBase<DerivedX>& X, const Eigen::MatrixBase<DerivedCodes>& codes,
              const Eigen::MatrixBase<DerivedRecon>& recon) {
    const Index B = X.rows();
    if (codes.rows() != B || codes.cols() != latents() || recon.rows() != B || recon.cols() != X.cols())
      throw std::invalid_argument("sae::FeatureStatistics::update: X is " + detail::shape_string(B, X.cols()) +
                                  ", codes " + detail::shape_string(codes.rows(), codes.cols()) + ", recon " +
                                  detail::shape_string(recon.rows(), recon.cols()) + "; expected B x D, B x " +
                                  std::to_string(latents()) + ", B x D");
    if (B == 0) return;
    if (!X.allFinite()) {  // name the first bad value: a NaN would otherwise surface as "FVU nan"
      for (Index b = 0; b < B; ++b)
        for (Index d = 0; d < X.cols(); ++d)
          if (!std::isfinite(static_cast<double>(X(b, d))))
            throw std::runtime_error("row " + std::to_string(first_row + b) + " has a non-finite activation (" +
                                     std::to_string(static_cast<double>(X(b, d))) + " in column " + std::to_string(d) +
                                     ")");
    }
    if (rows_ > 0 && X.cols() != mean_.size())
      throw std::invalid_argument("sae::FeatureStatistics::update: X has " + std::to_string(X.cols()) +
                                  " columns, earlier chunks had " + std::to_string(mean_.size()));

    for (Index b = 0; b < B; ++b) {
      for (Index f = 0; f < latents(); ++f) {
        const double value = static_cast<double>(codes(b, f));
        if (value == 0.0) continue;
        if (!std::isfinite(value))
          throw std::runtime_error("row " + std::to_string(first_row + b) + ": latent " + std::to_string(f) +
                                   " has a non-finite code (" + std::to_string(value) +
                                   "); is the activation finite?");
        const auto i = static_cast<std::size_t>(f);
        sums_[i] += value;
        maxima_[i] = std::max(maxima_[i], value);
        histograms_.add(f, value);
        push_top(f, ActivatingRow{first_row + b, value});
      }
    }
    density_.update(codes);

    // Reconstruction: sums weighted by the chunk's rows, so the chunking does not matter.
    squared_error_ += mean_squared_error(X, recon) * static_cast<double>(B);
    l0_sum_ += mean_l0(codes) * static_cast<double>(B);
    const Eigen::MatrixXd Xd = X.template cast<double>();
    const Eigen::RowVectorXd chunk_mean = Xd.colwise().mean();
    const double chunk_m2 = (Xd.rowwise() - chunk_mean).squaredNorm();
    if (rows_ == 0) {
      mean_ = chunk_mean;
      m2_ = chunk_m2;
    } else {
      const double n_a = static_cast<double>(rows_), n_b = static_cast<double>(B), n = n_a + n_b;
      const Eigen::RowVectorXd delta = chunk_mean - mean_;
      mean_ += delta * (n_b / n);
      m2_ += chunk_m2 + delta.squaredNorm() * (n_a * n_b / n);
    }
    rows_ += B;
  }

  Index latents() const { return static_cast<Index>(sums_.size()); }
  Index rows() const { return rows_; }
  Index top_rows_kept() const { return top_rows_; }

  /// Firing counts, frequencies, alive / dead / dense fractions, density histogram.
  const FeatureDensity& density() const { return density_; }

  /// Mean over rows of the squared error summed over dimensions (sae::mean_squared_error).
  double mse() const { return squared_error_ / static_cast<double>(require_rows("mse")); }
  /// sae::fraction_of_variance_unexplained over all rows. requires 2 rows and nonzero variance.
  double fvu() const {
    if (require_rows("fvu") < 2 || !(m2_ > 0.0))
      throw std::invalid_argument("sae::FeatureStatistics::fvu: needs at least 2 rows with nonzero total variance");
    return squared_error_ / m2_;
  }
  /// Mean number of nonzero codes per row (sae::mean_l0).
  double l0() const { return l0_sum_ / static_cast<double>(require_rows("l0")); }

  std::int64_t firing_count(Index f) const { return density_.firing_counts()(f); }
  /// Mean of latent f's NONZERO codes (0 if it never fired).
  double mean_activation(Index f) const {
    const std::int64_t count = firing_count(f);
    return count > 0 ? sums_.at(static_cast<std::size_t>(f)) / static_cast<double>(count) : 0.0;
  }
  double max_activation(Index f) const { return maxima_.at(static_cast<std::size_t>(f)); }
  ActivationHistogram histogram(Index f) const { return histograms_.histogram(f); }

  /// Latent f's largest codes (at most top_rows_kept()), largest first; ties:
  /// lower row first (the order of sae::top_activating_rows).
  std::vector<ActivatingRow> top_rows(Index f) const {
    const auto begin = heaps_.begin() + f * top_rows_;
    std::vector<ActivatingRow> rows(begin, begin + heap_sizes_.at(static_cast<std::size_t>(f)));
    std::sort(rows.begin(), rows.end(), stronger);
    return rows;
  }

 private:
  // Heap order: the front is the weakest row kept (smallest code; among equal
  // codes the highest row), which a stronger candidate replaces.
  static bool stronger(const ActivatingRow& a, const ActivatingRow& b) {
    return a.activation > b.activation || (a.activation == b.activation && a.row < b.row);
  }

  void push_top(Index f, const ActivatingRow& candidate) {
    const auto heap = heaps_.begin() + f * top_rows_;
    Index& size = heap_sizes_[static_cast<std::size_t>(f)];
    if (size < top_rows_) {
      heap[size] = candidate;
      ++size;
      std::push_heap(heap, heap + size, stronger);
    } else if (stronger(candidate, heap[0])) {
      std::pop_heap(heap, heap + size, stronger);
      heap[size - 1] = candidate;
      std::push_heap(heap, heap + size, stronger);
    }
  }

  Index require_rows(const char* what) const {
    if (rows_ == 0)
      throw std::logic_error(std::string("sae::FeatureStatistics::") + what + ": no rows added yet");
    return rows_;
  }

  FeatureDensity density_;
  LatentHistograms histograms_;
  Index top_rows_;
  std::vector<double> sums_, maxima_;
  std::vector<ActivatingRow> heaps_;  // latents x top_rows_, each a heap of heap_sizes_[f] rows
  std::vector<Index> heap_sizes_;

  Index rows_ = 0;
  double squared_error_ = 0, l0_sum_ = 0;
  Eigen::RowVectorXd mean_;  // of all rows so far, per dimension
  double m2_ = 0;            // sum over rows and dimensions of (x - mean)^2
};

}  // namespace sae
