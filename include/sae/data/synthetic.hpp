// sae/data/synthetic.hpp: the toy "features in superposition" data set.
//
// Sharkey, Braun & Millidge (2022), "Taking features out of superposition with
// sparse autoencoders": num_features random unit-norm directions ("true
// features") in R^input_dim, more features than dimensions, and samples that
// are sparse non-negative combinations of them:
//
//     x = sum_i c_i * feature_i,   c_i = 0 with probability 1 - p,
//                                  c_i ~ U(0, 1) with probability p,
//     p = mean_active / num_features, independently per feature and sample.
//
// Their set-up, and our defaults: input_dim 256, num_features 512, about 5
// active features per sample. Because the ground truth is known, an SAE
// trained on this data can be scored by how well its decoder rows recover the
// true features (sae::mean_max_cosine_similarity in <sae/metrics.hpp>).
//
// Everything is drawn from one sae::Rng seeded at construction: first the
// features, then every sample in order, so the same seed and the same
// sequence of calls give bit-identical data on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"

namespace sae {

/// The toy data set of Sharkey et al. 2022: sparse non-negative mixtures of
/// random unit-norm directions.
///
/// requires: input_dim > 0, num_features > 0, 0 <= mean_active <= num_features
///           (std::invalid_argument otherwise).
/// ensures:  features() is [num_features, input_dim] with unit-norm rows;
///           each sample row has each feature active independently with
///           probability mean_active / num_features, active coefficients
///           uniform in the open interval (0, 1).
template <typename Scalar>
class SyntheticSuperposition {
 public:
  static_assert(std::is_floating_point<Scalar>::value,
                "sae::SyntheticSuperposition<Scalar>: Scalar must be float, double or long double");

  explicit SyntheticSuperposition(Index input_dim = 256, Index num_features = 512, double mean_active = 5.0,
                                  std::uint64_t seed = 0)
      : input_dim_(input_dim), num_features_(num_features), mean_active_(mean_active), seed_(seed), rng_(seed) {
    if (input_dim <= 0 || num_features <= 0)
      throw std::invalid_argument("sae::SyntheticSuperposition: input_dim and num_features must be positive, got " +
                                  std::to_string(input_dim) + " and " + std::to_string(num_features));
    if (!(mean_active >= 0.0 && mean_active <= static_cast<double>(num_features)))
      throw std::invalid_argument("sae::SyntheticSuperposition: mean_active must be in [0, num_features = " +
                                  std::to_string(num_features) + "], got " + std::to_string(mean_active));

    // Normalised Gaussian vectors are uniformly distributed on the sphere.
    features_.resize(num_features, input_dim);
    for (Index i = 0; i < num_features; ++i) {
      double norm2 = 0.0;
      do {
        for (Index d = 0; d < input_dim; ++d) features_(i, d) = static_cast<Scalar>(rng_.normal());
        norm2 = features_.row(i).template cast<double>().squaredNorm();
      } while (norm2 == 0.0);  // impossible in practice; keeps the contract exact
      features_.row(i) /= static_cast<Scalar>(std::sqrt(norm2));
    }
  }

  Index input_dim() const { return input_dim_; }
  Index num_features() const { return num_features_; }
  double mean_active() const { return mean_active_; }
  std::uint64_t seed() const { return seed_; }

  /// Probability that a given feature is active in a given sample.
  double activation_probability() const { return mean_active_ / static_cast<double>(num_features_); }

  /// The ground-truth directions, [num_features, input_dim], row i = feature i, unit norm.
  const Batch<Scalar>& features() const { return features_; }

  /// Draws `rows` samples into `out` (resized to [rows, input_dim]).
  void sample(Batch<Scalar>& out, Index rows) { draw(out, nullptr, rows); }

  /// Draws `rows` samples, [rows, input_dim].
  Batch<Scalar> sample(Index rows) {
    Batch<Scalar> out;
    draw(out, nullptr, rows);
    return out;
  }

  /// Draws `rows` samples into `out` and their true coefficients into `codes`
  /// ([rows, num_features], so that out == codes * features() up to rounding).
  /// Consumes the random stream exactly as sample() does.
  void sample_with_codes(Batch<Scalar>& out, Batch<Scalar>& codes, Index rows) { draw(out, &codes, rows); }

 private:
  void draw(Batch<Scalar>& out, Batch<Scalar>* codes, Index rows) {
    if (rows < 0)
      throw std::invalid_argument("sae::SyntheticSuperposition::sample: rows must be >= 0, got " +
                                  std::to_string(rows));
    out.setZero(rows, input_dim_);
    if (codes) codes->setZero(rows, num_features_);

    const double p = activation_probability();
    if (p <= 0.0) return;
    // Geometric skipping: the gap before the next active feature is
    // floor(log U / log(1 - p)) with U uniform in (0, 1], so each row costs
    // about (active features + 1) draws instead of num_features.
    const bool dense = p >= 1.0;
    const double inv_log_q = dense ? 0.0 : 1.0 / std::log1p(-p);
    for (Index r = 0; r < rows; ++r) {
      Index f = -1;
      for (;;) {
        if (dense) {
          ++f;
        } else {
          const double u = 1.0 - rng_.uniform();  // (0, 1]
          const double gap = std::floor(std::log(u) * inv_log_q);
          if (gap >= static_cast<double>(num_features_ - 1 - f)) break;  // also stops on +inf
          f += 1 + static_cast<Index>(gap);
        }
        if (f >= num_features_) break;
        const Scalar c = coefficient();
        out.row(r) += c * features_.row(f);
        if (codes) (*codes)(r, f) = c;
      }
    }
  }

  /// Uniform in the open interval (0, 1) after rounding to Scalar, so an
  /// active feature always has a nonzero code (float rounds values near 1 up).
  Scalar coefficient() {
    for (;;) {
      const Scalar c = static_cast<Scalar>(rng_.uniform());
      if (c > Scalar(0) && c < Scalar(1)) return c;
    }
  }

  Index input_dim_;
  Index num_features_;
  double mean_active_;
  std::uint64_t seed_;
  Rng rng_;
  Batch<Scalar> features_;
};

}  // namespace sae
