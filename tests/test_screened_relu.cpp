// tests/test_screened_relu.cpp: ReLU and JumpReLU codes through the bfloat16
// screen (detail/gemm_screened.hpp), built into sae.gemm_kernel.bf16
// (-mavx512f -mfma -mavx512bf16), where every ReLU or JumpReLU encoder
// product of the library takes it. The screen may only skip entries it
// proves below zero (or below their threshold), so its codes must be the
// plain kernel's bit for bit: against gemm::product and against a chain of
// std::fma per entry, at trained-like sparsity (where it prunes) and at a
// fresh model's (where it gives way to the plain kernel), on edge shapes,
// column-major inputs, depths past the kernel's 1024-input block, batches cut
// into chunks, entries at zero's (or the threshold's) rounding distance, and
// non-finite, huge and subnormal inputs.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>

#include "screened_support.hpp"

#if defined(SAE_SCREENED_RELU)

namespace {

using sae::Index;
namespace gemm = sae::detail::gemm;

using screened_support::make_problem;
using screened_support::Problem;

std::vector<float> plain_codes(const Problem& p) {
  std::vector<float> C(p.B * p.F, -7.0f);
  gemm::product(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, p.epilogue());
  return C;
}

std::vector<float> screened_codes(const Problem& p, gemm::ScreenedCounts* counts = nullptr,
                                  Index shared_bytes_limit = gemm::max_shared_bytes) {
  std::vector<float> C(p.B * p.F, -7.0f);
  REQUIRE(gemm::screened_relu_product(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, p.epilogue(), counts,
                                      shared_bytes_limit));
  return C;
}

/// (chain of std::fma over k) + start + bias, the kernel's order.
float fma_chain_pre_activation(const Problem& p, Index b, Index f) {
  float sum = 0;
  for (Index k = 0; k < p.D; ++k) sum = std::fma(p.x_at(b, k), p.W[f * p.D + k], sum);
  if (!p.start.empty()) sum += p.start[f];
  return sum + p.bias[f];
}

/// The code from fma_chain_pre_activation: max(0, ·), or p > θ ? p : 0.
float fma_chain_code(const Problem& p, Index b, Index f) {
  const float pre = fma_chain_pre_activation(p, b, f);
  if (p.threshold.empty()) return std::max(0.0f, pre);
  return pre > p.threshold[f] ? pre : 0.0f;
}

/// Entries of `codes` whose bits differ from fma_chain_code, over the tokens b0, b0 + step, ...
Index differing_from_chains(const Problem& p, const std::vector<float>& codes, Index step = 1) {
  Index wrong = 0;
  for (Index b = 0; b < p.B; b += step)
    for (Index f = 0; f < p.F; ++f) {
      const float expected = fma_chain_code(p, b, f);
      wrong += std::memcmp(&expected, &codes[b * p.F + f], sizeof(float)) != 0;
    }
  return wrong;
}

/// Entries whose bits differ (NaNs compare by their bits too).
Index differing(const std::vector<float>& a, const std::vector<float>& b) {
  Index n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

}  // namespace

TEST_CASE("Screened ReLU codes are the plain kernel's bit for bit, pruning at trained-like sparsity",
          "[screened]") {
  struct Shape {
    Index B, D, F;
    float shift;
    bool start;
  };
  const Shape shapes[] = {{64, 48, 512, -3.0f, false},  {37, 53, 290, -2.5f, true},   {100, 768, 1024, -2.66f, false},
                          {50, 767, 700, -4.0f, true},  {16, 1, 64, -0.5f, false},    {200, 100, 3000, -1.0f, true},
                          {24, 1024, 640, -2.0f, true}, {300, 33, 1001, -2.66f, false}};
  for (const Shape& s : shapes) {
    CAPTURE(s.B, s.D, s.F, s.shift, s.start);
    Problem p = make_problem(s.B, s.D, s.F, s.shift, s.start, static_cast<unsigned>(s.B + s.D));
    for (bool col_major : {false, true}) {
      CAPTURE(col_major);
      if (col_major) {
        std::vector<float> X(p.X.size());
        for (Index b = 0; b < p.B; ++b)
          for (Index k = 0; k < p.D; ++k) X[k * p.B + b] = p.X[b * p.D + k];
        p.X = X;
        p.x_col_major = true;
      }
      const std::vector<float> plain = plain_codes(p);
      gemm::ScreenedCounts counts;
      const std::vector<float> screened = screened_codes(p, &counts);
      CHECK(differing(plain, screened) == 0);
      // The screen engaged: at these shifts most groups were settled by the bound.
      CHECK(counts.groups > 0);
      if (s.shift <= -2.5f) CHECK(counts.recomputed < counts.groups / 2);
    }
  }
}

TEST_CASE("Screened ReLU codes match a chain of std::fma per entry", "[screened]") {
  const Problem p = make_problem(40, 97, 300, -2.0f, true, 11);
  CHECK(differing_from_chains(p, screened_codes(p)) == 0);
}

TEST_CASE("Screened JumpReLU codes are the plain kernel's and the chains' bit for bit", "[screened]") {
  // As Gemma Scope's: b_enc near 0, the thresholds doing the pruning (about
  // 0.4% of pre-activations N(0, 1) pass θ ≈ 2.66), and a few thresholds
  // negative. Some thresholds sit exactly on a token's pre-activation (that
  // entry is 0) or one float below it (it passes): the comparison is the
  // float chain's to decide.
  Problem p = make_problem(90, 200, 1000, 0.0f, true, 41);
  std::mt19937 rng(42);
  std::normal_distribution<float> normal;
  p.threshold.resize(p.F);
  for (Index f = 0; f < p.F; ++f) p.threshold[f] = f % 97 == 0 ? -0.5f : 2.66f + 0.2f * normal(rng);
  for (Index f = 5; f < p.F; f += 50) {
    const float pre = fma_chain_pre_activation(p, f % p.B, f);
    p.threshold[f] = f % 100 == 5 ? pre : std::nextafter(pre, -1e30f);
  }
  gemm::ScreenedCounts counts;
  const std::vector<float> screened = screened_codes(p, &counts);
  CHECK(differing(plain_codes(p), screened) == 0);
  CHECK(differing_from_chains(p, screened) == 0);
  CHECK(counts.recomputed < counts.groups / 2);
  Index passed_at_threshold = 0, negative = 0;
  for (Index f = 5; f < p.F; f += 50) passed_at_threshold += screened[(f % p.B) * p.F + f] != 0;
  for (float v : screened) negative += v < 0;
  CHECK(passed_at_threshold == 10);  // the ten one float below; the ten on it are 0
  CHECK(negative > 0);               // from the negative thresholds
}

TEST_CASE("Screened codes past the kernel's 1024-input depth block keep its bits", "[screened]") {
  // gemm::product sums 2304 inputs as three blocks of 768, storing and
  // reloading each running float; the screen's exact sums are one chain.
  for (const Index D : {1025, 2304}) {
    CAPTURE(D);
    const Problem p = make_problem(30, D, 320, -2.66f, D > 2000, static_cast<unsigned>(D));
    gemm::ScreenedCounts counts;
    const std::vector<float> screened = screened_codes(p, &counts);
    CHECK(differing(plain_codes(p), screened) == 0);
    CHECK(differing_from_chains(p, screened, 7) == 0);
    CHECK(counts.recomputed < counts.groups / 2);
  }
}

TEST_CASE("The screen cuts a batch into chunks of tokens with the same bits", "[screened]") {
  // Chunks of 24 tokens by the limit on the shared panels, and chunks as
  // many as the latents (64) when tokens outnumber them.
  struct Case {
    Index B, F, limit;
  };
  const Index D = 100;
  for (const Case c : {Case{100, 512, Index(sizeof(float)) * D * 24}, Case{400, 64, gemm::max_shared_bytes}}) {
    CAPTURE(c.B, c.F, c.limit);
    const Problem p = make_problem(c.B, D, c.F, -2.0f, true, static_cast<unsigned>(c.B));
    gemm::ScreenedCounts counts;
    CHECK(differing(plain_codes(p), screened_codes(p, &counts, c.limit)) == 0);
    CHECK(counts.groups > 0);
  }
}

TEST_CASE("A fresh model's codes, half positive, give way to the plain kernel with the same bits", "[screened]") {
  const Problem p = make_problem(600, 128, 2048, 0.0f, false, 5);
  gemm::ScreenedCounts counts;
  const std::vector<float> screened = screened_codes(p, &counts);
  CHECK(differing(plain_codes(p), screened) == 0);
  // Each thread judges after its trial tiles; far fewer groups were screened than exist.
  const Index all_groups = p.B * (p.F / 16);
  CHECK(counts.groups > 0);
  CHECK(counts.groups < all_groups / 4);
  CHECK(counts.recomputed > counts.groups / 3);
}

TEST_CASE("Entries within rounding distance of zero are never pruned", "[screened]") {
  // Each bias cancels a token's exact dot product (in double), so every
  // pre-activation of that token is zero up to rounding: the sign is the
  // float chain's to decide, and the screen must leave it to it.
  Problem p = make_problem(48, 300, 256, 0.0f, false, 21);
  for (Index f = 0; f < p.F; ++f) {
    const Index b = f % p.B;
    double dot = 0;
    for (Index k = 0; k < p.D; ++k) dot += static_cast<double>(p.x_at(b, k)) * p.W[f * p.D + k];
    p.bias[f] = static_cast<float>(-dot);
  }
  const std::vector<float> plain = plain_codes(p);
  Index positive_at_zero = 0;
  for (Index f = 0; f < p.F; ++f) positive_at_zero += plain[(f % p.B) * p.F + f] > 0;
  CHECK(positive_at_zero > 0);  // rounding put some above zero
  CHECK(differing(plain, screened_codes(p)) == 0);
}

TEST_CASE("Codes beyond the caches, whose zeros are streamed, keep the bits", "[screened]") {
  // 1024 x 16384 codes are 64 MiB (streamed_output_bytes): settled groups
  // are written with streaming stores where their line is 64-byte aligned,
  // with ordinary masked stores where it is not (C one float off).
  static_assert(gemm::screened::streamed_output_bytes == Index(64) << 20, "update the sizes below");
  const Problem p = make_problem(1024, 24, 16384, -2.66f, true, 71);
  const std::vector<float> plain = plain_codes(p);
  for (const Index offset : {0, 1}) {
    CAPTURE(offset);
    std::vector<float> storage(p.B * p.F + 32, -7.0f);
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    float* const C = storage.data() + ((64 - address % 64) % 64) / sizeof(float) + offset;
    gemm::ScreenedCounts counts;
    REQUIRE(gemm::screened_relu_product(p.x(), p.w(), C, p.F, p.B, p.D, p.F, p.epilogue(), &counts));
    CHECK(differing(plain, std::vector<float>(C, C + p.B * p.F)) == 0);
    CHECK(counts.recomputed < counts.groups / 2);
  }
}

TEST_CASE("Entries where the bound is nearly attained are never pruned", "[screened]") {
  // The bound's main terms are ‖x − x̂‖ ‖w‖ and ‖x̂‖ ‖w − ŵ‖ (x̂, ŵ in
  // bfloat16), from Cauchy–Schwarz on x·w − x̂·ŵ = (x − x̂)·w + x̂·(w − ŵ).
  // Here one or the other is attained: latent 0 points along the token's
  // rounding errors (and is itself exact in bfloat16), so the bfloat16 sum
  // misses ≈ ‖x − x̂‖ ‖w‖; or the roles swap. Its bias puts the bfloat16 sum
  // 0.6 of that below zero and the exact sum 0.4 above it; the other latents
  // of its group are far below zero. A bound half the size would prune the
  // group and lose the positive code. Half the trials are JumpReLU's, with
  // the same distances from a threshold of 0.7 or −0.3. (One token per call:
  // other tokens' codes at latent 0 would be half positive, and their groups
  // not screened.)
  const Index D = 300;
  for (int trial = 0; trial < 16; ++trial) {
    const bool token_rounds = trial % 2 == 0;
    const float theta = trial % 4 < 2 ? 0.0f : trial % 8 < 4 ? 0.7f : -0.3f;
    CAPTURE(trial, token_rounds, theta);
    Problem p = make_problem(1, D, 64, -100.0f, false, static_cast<unsigned>(60 + trial));
    if (trial % 4 >= 2) p.threshold.assign(64, theta);
    // Latent 0 is the first D weights.
    const auto attained = screened_support::point_along_rounding_errors(p.X.data(), p.W.data(), D, token_rounds);
    const double rounded_dot = attained.rounded_dot, missed = attained.missed;
    REQUIRE(missed > 0.9 * attained.bound);  // Cauchy–Schwarz nearly attained
    p.bias[0] = static_cast<float>(theta - rounded_dot - 0.6 * missed);
    const std::vector<float> plain = plain_codes(p);
    REQUIRE(plain[0] > theta);
    gemm::ScreenedCounts counts;
    const std::vector<float> screened = screened_codes(p, &counts);
    CHECK(counts.groups == 4);  // every group screened (too few tiles for the fallback to judge)
    CHECK(counts.recomputed == 1);
    CHECK(differing(plain, screened) == 0);
  }
}

TEST_CASE("Non-finite, huge and subnormal inputs take the exact path", "[screened]") {
  Problem p = make_problem(64, 80, 512, -2.66f, true, 31);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  p.X[0 * p.D + 3] = nan;
  p.X[1 * p.D + 5] = inf;
  p.X[2 * p.D + 7] = -inf;
  for (Index k = 0; k < p.D; ++k) p.X[3 * p.D + k] = 3e38f * (k % 2 ? 1.0f : -1.0f);  // sums overflow
  for (Index k = 0; k < p.D; ++k) p.X[4 * p.D + k] = 1e-40f * static_cast<float>(k % 7);  // subnormal
  for (Index k = 0; k < p.D; ++k) p.X[5 * p.D + k] = 1e19f;  // squares overflow, sums do not
  for (Index k = 0; k < p.D; ++k) p.W[9 * p.D + k] = 1e-39f;  // a subnormal latent
  for (Index k = 0; k < p.D; ++k) p.W[10 * p.D + k] = -2e30f;  // a huge one
  p.bias[11] = -inf;
  p.start[12] = nan;
  CHECK(differing(plain_codes(p), screened_codes(p)) == 0);
}

TEST_CASE("SparseAutoEncoder::encode of a centring model with sparse codes goes through the screen unchanged",
          "[screened]") {
  // b_dec folded into the start row, b_enc as the bias: the model's codes
  // against the same product on the plain kernel.
  sae::SparseAutoEncoder<float> model(96, 1024);
  model.apply_b_dec_to_input() = true;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (Index d = 0; d < 96; ++d) model.params().b_dec(d) = 0.5f * normal(rng);
  model.params().b_enc.setConstant(-1.5f);  // pre-activations are about N(0, 0.6²)
  sae::Batch<float> X(200, 96);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
  const sae::Batch<float> codes = model.encode(X);

  Problem p;
  p.B = 200, p.D = 96, p.F = 1024;
  p.X.assign(X.data(), X.data() + X.size());
  const auto& W = model.params().W_enc;
  p.W.assign(W.data(), W.data() + W.size());
  Eigen::Matrix<float, 1, Eigen::Dynamic> start = Eigen::Matrix<float, 1, Eigen::Dynamic>::Zero(1024);
  start.noalias() -= model.params().b_dec.transpose() * W;  // as encoder_start_row() makes it
  p.start.assign(start.data(), start.data() + start.size());
  p.bias.assign(model.params().b_enc.data(), model.params().b_enc.data() + 1024);
  const std::vector<float> plain = plain_codes(p);
  CHECK(differing(plain, std::vector<float>(codes.data(), codes.data() + codes.size())) == 0);
  Index positive = 0;
  for (float v : plain) positive += v > 0;
  CHECK(positive > 0);
  CHECK(positive < static_cast<Index>(plain.size()) / 4);
}

#endif  // SAE_SCREENED_RELU
