// tests/screened_support.hpp: what the tests of the bfloat16 screens
// (test_screened_relu.cpp, test_screened_topk.cpp) share.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <sae/sae.hpp>

namespace screened_support {

/// v rounded to bfloat16, to nearest even (finite v), as a float.
inline float round_to_bfloat16(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&v, &bits, 4);
  return v;
}

/// A token x and a latent's weights w (D each) where the bound's Cauchy–
/// Schwarz step is nearly attained: one side (w if token_rounds, else x) is
/// made to point along the other's bfloat16 rounding errors, and to be exact
/// in bfloat16 itself, so that the bfloat16 product misses x·w by ≈ ‖x − x̂‖
/// ‖w‖ (or ‖x̂‖ ‖w − ŵ‖). The made side's norm is about 1 (w) or √D (x).
struct NearlyAttained {
  double rounded_dot = 0;  ///< x̂·ŵ
  double missed = 0;       ///< x·w − x̂·ŵ
  double bound = 0;        ///< the Cauchy–Schwarz term it nearly attains
};

inline NearlyAttained point_along_rounding_errors(float* x, float* w, sae::Index D, bool token_rounds) {
  float* exact_side = token_rounds ? w : x;
  const float* rounded_side = token_rounds ? x : w;
  double error_norm = 0;
  for (sae::Index k = 0; k < D; ++k) error_norm += std::pow(rounded_side[k] - round_to_bfloat16(rounded_side[k]), 2.0);
  error_norm = std::sqrt(error_norm);
  const double scale = token_rounds ? 1.0 : std::sqrt(static_cast<double>(D));
  for (sae::Index k = 0; k < D; ++k)
    exact_side[k] = round_to_bfloat16(
        static_cast<float>((rounded_side[k] - round_to_bfloat16(rounded_side[k])) / error_norm * scale));
  NearlyAttained result;
  double exact_norm = 0;
  for (sae::Index k = 0; k < D; ++k) {
    const double x_hat = round_to_bfloat16(x[k]), w_hat = round_to_bfloat16(w[k]);
    result.rounded_dot += x_hat * w_hat;
    result.missed += static_cast<double>(x[k]) * w[k] - x_hat * w_hat;
    exact_norm += static_cast<double>(exact_side[k]) * exact_side[k];
  }
  result.bound = error_norm * std::sqrt(exact_norm);
  return result;
}

#if defined(SAE_SCREENED_RELU)

/// A product to screen: X W + start + bias, through ReLU or thresholds.
struct Problem {
  sae::Index B, D, F;
  std::vector<float> X;  // B x D, row-major (or column-major with x_col_major)
  std::vector<float> W;  // D x F, column-major (W_enc's layout)
  std::vector<float> start, bias;  // either may be empty
  std::vector<float> threshold;    // JumpReLU's θ per latent; empty for ReLU
  bool x_col_major = false;

  sae::detail::gemm::StridedMatrix x() const {
    return x_col_major ? sae::detail::gemm::StridedMatrix{X.data(), 1, B}
                       : sae::detail::gemm::StridedMatrix{X.data(), D, 1};
  }
  sae::detail::gemm::StridedMatrix w() const { return {W.data(), 1, D}; }
  /// The codes' epilogue: ReLU, or the thresholds.
  sae::detail::gemm::Epilogue epilogue() const {
    sae::detail::gemm::Epilogue e = pre_activation_epilogue();
    e.relu = threshold.empty();
    e.threshold = threshold.empty() ? nullptr : threshold.data();
    return e;
  }
  /// The pre-activations' (TopK's): the rows only.
  sae::detail::gemm::Epilogue pre_activation_epilogue() const {
    return {start.empty() ? nullptr : start.data(), bias.empty() ? nullptr : bias.data()};
  }
  float x_at(sae::Index b, sae::Index k) const { return x_col_major ? X[k * B + b] : X[b * D + k]; }
};

/// Inputs standard normal, weights N(0, 1/D), bias `shift` + N(0, 0.01): a
/// pre-activation is about N(shift, 1), so shift -2.66 fires about 0.4% of
/// the latents (64 of 16384), shift 0 half. With a start row of N(0, 0.09).
inline Problem make_problem(sae::Index B, sae::Index D, sae::Index F, float shift, bool with_start, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Problem p;
  p.B = B, p.D = D, p.F = F;
  p.X.resize(B * D);
  p.W.resize(D * F);
  p.bias.resize(F);
  for (auto& v : p.X) v = normal(rng);
  for (auto& v : p.W) v = normal(rng) / std::sqrt(static_cast<float>(D));
  for (auto& v : p.bias) v = shift + 0.1f * normal(rng);
  if (with_start) {
    p.start.resize(F);
    for (auto& v : p.start) v = 0.3f * normal(rng);
  }
  return p;
}

#endif  // SAE_SCREENED_RELU

}  // namespace screened_support
