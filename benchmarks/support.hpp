// benchmarks/support.hpp: what sae_bench and the Catch2 benchmarks share.
//
//   - batches of standard normals (the stand-in for real activations);
//   - milliseconds on the steady clock;
//   - making a fresh ReLU model's codes as sparse as a trained SAE's;
//   - the names of the objectives' kernel choices (sae::Kernels).
#pragma once

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <sae/sae.hpp>

namespace sae_bench {

using Clock = std::chrono::steady_clock;

/// Milliseconds from `start` to now.
inline double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Fills X with independent standard normals from `rng`.
inline void fill_standard_normal(sae::Batch<float>& X, sae::Rng& rng) {
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.normal());
}

/// A B x D batch of independent standard normals, reproducible from `seed`.
inline sae::Batch<float> standard_normal_batch(sae::Index rows, sae::Index cols, std::uint64_t seed) {
  sae::Rng rng(seed);
  sae::Batch<float> X(rows, cols);
  fill_standard_normal(X, rng);
  return X;
}

/// Φ⁻¹(p), the standard normal quantile, for 0 < p < 1: bisection on
/// Φ(z) = erfc(−z/√2)/2 (60 halvings of [−40, 40] reach double precision;
/// it runs once per model, so speed does not matter).
inline double normal_quantile(double p) {
  if (!(p > 0.0 && p < 1.0)) throw std::invalid_argument("normal_quantile: p must be in (0, 1)");
  double low = -40.0, high = 40.0;
  for (int i = 0; i < 100 && high - low > 1e-15; ++i) {
    const double mid = 0.5 * (low + high);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) low = mid;
    else high = mid;
  }
  return 0.5 * (low + high);
}

/// Sets b_enc so that each latent of a ReLU model fires for a fraction
/// target_l0 / F of standard-normal inputs, as in a trained SAE (where a few
/// dozen of thousands fire). With x ~ N(0, I) the pre-activation of latent f
/// is N(b_f, ‖W_enc[:, f]‖²), so b_f = ‖W_enc[:, f]‖ · Φ⁻¹(L / F) gives
/// P(fire) = L / F. compare_pytorch.py does the identical thing. A JumpReLU
/// model, as Gemma Scope's, keeps b_enc at 0 and gets thresholds θ_f =
/// −‖W_enc[:, f]‖ · Φ⁻¹(L / F) instead (the same P(fire)).
template <typename Model>
void make_codes_sparse(Model& model, double target_l0) {
  const double F = static_cast<double>(model.dict_size());
  if (!(target_l0 > 0.0 && target_l0 < F))
    throw std::invalid_argument("target L0 must be in (0, F), got " + std::to_string(target_l0));
  const double z = normal_quantile(target_l0 / F);
  auto& p = model.params();
  for (sae::Index f = 0; f < model.dict_size(); ++f) {
    const double shift = static_cast<double>(p.W_enc.col(f).norm()) * z;
    if constexpr (std::is_same_v<typename Model::Activation, sae::JumpReLU>) {
      p.b_enc(f) = 0.0f;
      p.threshold(f) = static_cast<float>(-shift);
    } else {
      p.b_enc(f) = static_cast<float>(shift);
    }
  }
}

// ---- kernels ---------------------------------------------------------------

/// The --kernels spelling of each sae::Kernels value.
inline const char* kernels_name(sae::Kernels k) {
  switch (k) {
    case sae::Kernels::Automatic: return "auto";
    case sae::Kernels::Dense: return "dense";
    case sae::Kernels::Sparse: return "sparse";
  }
  return "?";
}

/// sae::Kernels from its --kernels spelling: auto, dense or sparse.
inline sae::Kernels parse_kernels(const std::string& name) {
  for (auto k : {sae::Kernels::Automatic, sae::Kernels::Dense, sae::Kernels::Sparse})
    if (name == kernels_name(k)) return k;
  throw std::invalid_argument("--kernels must be auto, dense or sparse, got '" + name + "'");
}

}  // namespace sae_bench
