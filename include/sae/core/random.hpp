// sae/core/random.hpp: a small seeded generator the library owns.
//
// Why not Eigen::Random or <random> distributions: their streams differ
// between standard libraries and versions, and we want the same seed to give
// the same model everywhere. The engine is xoshiro256** (Blackman & Vigna),
// seeded through splitmix64; the distributions are written out below.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace sae {

class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  /// Restarts the stream: the same seed always gives the same sequence.
  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : state_) word = splitmix64(x);
    has_spare_normal_ = false;
  }

  /// The next 64 random bits (xoshiro256**).
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // UniformRandomBitGenerator, so std::shuffle and friends accept it.
  static constexpr std::uint64_t min() { return 0; }
  static constexpr std::uint64_t max() { return std::numeric_limits<std::uint64_t>::max(); }
  std::uint64_t operator()() { return next_u64(); }

  /// Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  /// Uniform integer in [0, n), without modulo bias. n > 0.
  std::uint64_t below(std::uint64_t n) {
    // 2^64 mod n values at the bottom are rejected so the rest is a whole
    // number of copies of [0, n); the loop repeats with probability < n / 2^64.
    const std::uint64_t rejected = (0 - n) % n;
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= rejected) return r % n;
    }
  }

  /// Standard normal (Marsaglia's polar method; the second value is kept).
  double normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * std::log(s) / s);
    spare_normal_ = v * factor;
    has_spare_normal_ = true;
    return u * factor;
  }

  /// Normal with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// The full state, for checkpoints: restoring it resumes the exact stream.
  struct State {
    std::array<std::uint64_t, 4> words;
    bool has_spare_normal;
    double spare_normal;
  };
  State state() const { return {state_, has_spare_normal_, spare_normal_}; }
  void set_state(const State& s) {
    state_ = s.words;
    has_spare_normal_ = s.has_spare_normal;
    spare_normal_ = s.spare_normal;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::array<std::uint64_t, 4> state_{};
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

}  // namespace sae
