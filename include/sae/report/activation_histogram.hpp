// sae/report/activation_histogram.hpp: one histogram of activation values per
// latent, filled in a single pass without knowing the range in advance.
//
//   sae::LatentHistograms h(/*latents=*/F, /*bins=*/32);
//   h.add(f, 1.7);                       // one firing of latent f
//   sae::ActivationHistogram one = h.histogram(f);   // bins [i w, (i + 1) w), i < 32
//
// A dashboard's activation histogram spans [0, the latent's max], which is
// only known at the end of the pass. Keeping every value would cost memory
// per firing; a second pass would double the reading. Instead each latent's
// bins have a width w that is a power of two, chosen from its first value so
// that the value fits, and doubled whenever a larger value arrives: doubling
// merges bins 2i and 2i + 1 into bin i, and because the edges of the wide
// bins are edges of the narrow ones, every count stays exactly where a
// histogram of width 2w built from scratch would put it. At the end the bins
// span [0, bins * w) with the max in the upper half (or the first bin), so
// the plot uses at least half its width. Memory: F x bins counts.
//
// Values are the latent's nonzero codes. Codes are never negative for the
// architectures of this library; a negative one (a hand-made JumpReLU with a
// negative threshold, say) is counted in bin 0.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../config.hpp"

namespace sae {

/// Counts of one latent's activations in `counts.size()` bins of equal width:
/// bin i covers [i * bin_width, (i + 1) * bin_width). bin_width is 0 when the
/// latent never fired (every count 0).
struct ActivationHistogram {
  double bin_width = 0;
  std::vector<std::int64_t> counts;

  std::int64_t total() const {
    std::int64_t sum = 0;
    for (const std::int64_t c : counts) sum += c;
    return sum;
  }
};

class LatentHistograms {
 public:
  LatentHistograms() = default;

  /// requires: latents >= 1; bins >= 2 and even (pairs merge when the width doubles).
  LatentHistograms(Index latents, Index bins) : bins_(bins) {
    if (latents < 1) throw std::invalid_argument("sae::LatentHistograms: latents must be at least 1");
    if (bins < 2 || bins % 2 != 0)
      throw std::invalid_argument("sae::LatentHistograms: bins is " + std::to_string(bins) +
                                  ", expected an even number >= 2");
    width_.assign(static_cast<std::size_t>(latents), 0.0);
    counts_.assign(static_cast<std::size_t>(latents * bins), 0);
  }

  Index latents() const { return static_cast<Index>(width_.size()); }
  Index bins() const { return bins_; }

  /// Counts one activation `value` of latent f. requires: value finite.
  void add(Index f, double value) {
    double& width = width_[static_cast<std::size_t>(f)];
    std::int64_t* counts = counts_.data() + f * bins_;
    const double span = static_cast<double>(bins_);
    if (width == 0.0) width = initial_width(value);
    while (value >= span * width) {  // merge bin pairs: [2i, 2i + 2) -> i
      for (Index i = 0; i < bins_ / 2; ++i) counts[i] = counts[2 * i] + counts[2 * i + 1];
      for (Index i = bins_ / 2; i < bins_; ++i) counts[i] = 0;
      width *= 2.0;
    }
    const double position = std::floor(value / width);
    const Index bin = position <= 0.0 ? 0 : position >= span ? bins_ - 1 : static_cast<Index>(position);
    ++counts[bin];
  }

  ActivationHistogram histogram(Index f) const {
    ActivationHistogram h;
    h.bin_width = width_.at(static_cast<std::size_t>(f));
    h.counts.assign(counts_.begin() + f * bins_, counts_.begin() + (f + 1) * bins_);
    return h;
  }

 private:
  // The smallest power of two w with value < bins * w (w = 1 for value <= 0).
  double initial_width(double value) const {
    if (!(value > 0.0)) return 1.0;
    int exponent = 0;
    std::frexp(value / static_cast<double>(bins_), &exponent);  // value / bins in [2^(e-1), 2^e)
    return std::ldexp(1.0, exponent);
  }

  Index bins_ = 0;
  std::vector<double> width_;          // per latent; 0 until its first value
  std::vector<std::int64_t> counts_;   // latents x bins, row-major
};

}  // namespace sae
