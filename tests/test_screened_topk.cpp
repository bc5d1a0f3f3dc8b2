// tests/test_screened_topk.cpp: TopK through the bfloat16 screen
// (detail/gemm_screened_topk.hpp), built into sae.gemm_kernel.bf16, where
// every TopK encode and TopKObjective step takes it. The screen may skip only
// entries it proves outside a token's k largest (or not positive), so: every
// candidate's entry has the plain kernel's bits; the positive entries of the
// k largest of the plain kernel's row (select_top_k, ties to the lower
// latent) are all candidates and are what selecting among the candidates
// gives; likewise AuxK's among a subset. Checked on a fresh model's
// pre-activations and a trained-like one's, edge shapes, column-major inputs,
// batches cut into chunks, rows full of exact ties, non-finite inputs, and
// through SparseAutoEncoder::encode and TopKObjective against the plain
// product followed by the selection.
#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>

#include "screened_support.hpp"

#if defined(SAE_SCREENED_RELU)

namespace {

using sae::Index;
namespace gemm = sae::detail::gemm;

using screened_support::Problem;

/// Pre-activations about N(shift, 1), with a start row (screened_support).
Problem make_problem(Index B, Index D, Index F, float shift, unsigned seed) {
  return screened_support::make_problem(B, D, F, shift, /*with_start=*/true, seed);
}

std::vector<float> plain_product(const Problem& p) {
  std::vector<float> C(p.B * p.F);
  gemm::product(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, p.pre_activation_epilogue());
  return C;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// The positive entries of the k largest of `values` (select_top_k's choice).
std::vector<Index> positive_top_k(const float* values, Index n, Index k) {
  std::vector<Index> chosen, positive;
  sae::detail::select_top_k(values, n, std::min(k, n), chosen);
  for (Index i : chosen)
    if (values[i] > 0.0f) positive.push_back(i);
  return positive;
}

std::vector<Index> positives_of(const float* row, const std::vector<Index>& latents) {
  std::vector<Index> positive;
  for (Index f : latents)
    if (row[f] > 0.0f) positive.push_back(f);
  return positive;
}

/// Runs the screen and checks it against the plain product: candidates' bits,
/// the k largest (and the subset's subset_k largest) chosen among them.
/// Returns the candidates per token. (dense_share 1: the screen runs however
/// many groups it sums again.)
double check_screen(const Problem& p, sae::detail::TopKSelection selection,
                    Index shared_bytes_limit = gemm::max_shared_bytes) {
  const std::vector<float> plain = plain_product(p);
  std::vector<float> C(p.B * p.F, -7.0f);
  sae::detail::TopKCandidates candidates;
  gemm::ScreenedCounts counts;
  REQUIRE(gemm::screened_top_k(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, p.pre_activation_epilogue(), selection, candidates,
                               &counts, shared_bytes_limit, /*dense_share=*/1.0));

  REQUIRE(static_cast<Index>(candidates.row_start.size()) == p.B + 1);
  std::vector<float> values, subset_row;
  std::vector<Index> chosen;
  Index mismatches = 0;
  for (Index b = 0; b < p.B; ++b) {
    const float* row = C.data() + b * p.F;
    const float* exact = plain.data() + b * p.F;
    const Index first = candidates.row_start[b], count = candidates.row_start[b + 1] - first;
    const Index* latent = candidates.latent.data() + first;
    for (Index j = 0; j < count; ++j) {
      if (j > 0) REQUIRE(latent[j] > latent[j - 1]);
      mismatches += !same_bits(row[latent[j]], exact[latent[j]]);
    }
    sae::detail::select_top_k_of_candidates(row, latent, count, selection.k, values, chosen);
    REQUIRE(positives_of(row, chosen) == positive_top_k(exact, p.F, selection.k));
    if (selection.subset_k > 0) {
      // AuxK's rule: the subset's values in its order, their k largest.
      subset_row.clear();
      for (Index j = 0; j < selection.subset_size; ++j) subset_row.push_back(exact[selection.subset[j]]);
      std::vector<Index> expected;
      for (Index j : positive_top_k(subset_row.data(), selection.subset_size, selection.subset_k))
        expected.push_back(selection.subset[j]);
      std::vector<Index> in_subset;
      for (Index j = 0; j < count; ++j)
        if (std::binary_search(selection.subset, selection.subset + selection.subset_size, latent[j]))
          in_subset.push_back(latent[j]);
      sae::detail::select_top_k_of_candidates(row, in_subset.data(), static_cast<Index>(in_subset.size()),
                                              selection.subset_k, values, chosen);
      REQUIRE(positives_of(row, chosen) == expected);
    }
  }
  CHECK(mismatches == 0);
  CHECK(counts.groups == p.B * ((p.F + 15) / 16));
  return static_cast<double>(candidates.latent.size()) / static_cast<double>(p.B);
}

}  // namespace

TEST_CASE("The TopK screen keeps the plain kernel's k largest and their bits, summing few groups again",
          "[screened][topk]") {
  // The bound is tight: at the seed's depth a token's candidates are its k
  // largest and about as many again (51.5 for k = 32 when written).
  SECTION("a fresh model's pre-activations (about half positive)") {
    CHECK(check_screen(make_problem(100, 768, 4096, 0.0f, 1), {32}) < 2 * 32);
  }
  SECTION("trained-like, most pre-activations negative") {
    CHECK(check_screen(make_problem(60, 512, 2048, -2.5f, 2), {16}) < 2 * 16);
  }
  SECTION("edge shapes: odd depth, partial panels and tiles") {
    check_screen(make_problem(37, 301, 1000, 0.0f, 3), {8});
    check_screen(make_problem(13, 33, 47, 0.0f, 4), {5});
  }
  SECTION("column-major inputs") {
    Problem p = make_problem(29, 200, 600, 0.0f, 5);
    p.x_col_major = true;
    check_screen(p, {10});
  }
  SECTION("no bias row") {
    Problem p = make_problem(40, 128, 512, 0.0f, 6);
    p.bias.clear();
    check_screen(p, {12});
  }
  SECTION("depth past the kernel's 1024-input block") {
    check_screen(make_problem(24, 1300, 512, 0.0f, 7), {16});
  }
  SECTION("a batch cut into chunks of tokens") {
    check_screen(make_problem(100, 256, 512, 0.0f, 8), {16}, /*shared_bytes_limit=*/24 * 256 * 4);
  }
}

TEST_CASE("The TopK screen keeps AuxK's largest among a subset of the latents", "[screened][topk]") {
  const Problem p = make_problem(50, 256, 1024, 0.0f, 9);
  std::vector<Index> dead;
  for (Index f = 3; f < p.F; f += 7) dead.push_back(f);
  check_screen(p, {16, dead.data(), static_cast<Index>(dead.size()), 40});
  check_screen(p, {16, dead.data(), static_cast<Index>(dead.size()), 500});  // more than the subset holds
}

TEST_CASE("The bounds from bfloat16 approximations contain the float values, at the rounding's extremes",
          "[screened][topk]") {
  // row_bounds alone, with no distance (zero norms): what is left is v's own
  // rounding to bfloat16 (and flushing), the most at values just short of a
  // midpoint between bfloat16 neighbours, which round to the lower one.
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> exponent(-140, 100);
  std::uniform_int_distribution<std::uint32_t> significand(0, 127);
  std::vector<float> v;
  for (int i = 0; i < 4000; ++i) {
    // A bfloat16 value g, then g + (half its ulp)(1 − 2⁻¹⁶) or a random neighbour.
    const float g = std::ldexp(1.0f + static_cast<float>(significand(rng)) / 128.0f, exponent(rng));
    const float half_ulp = std::ldexp(std::ldexp(1.0f, std::ilogb(g)), -8);
    const float sign = i % 2 ? 1.0f : -1.0f;
    v.push_back(sign * (i % 3 ? g + half_ulp * (1.0f - std::ldexp(1.0f, -16)) : g * (1.0f + 0.001f * (i % 7))));
  }
  const Index F = static_cast<Index>(v.size());
  std::vector<std::uint16_t> approximations(static_cast<std::size_t>(F + 16));
  for (Index f = 0; f < F; f += 16) {
    alignas(64) float block[16] = {};
    for (Index j = 0; j < 16 && f + j < F; ++j) block[j] = v[f + j];
    const __m256i rounded = (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(block));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(approximations.data() + f), rounded);
  }
  gemm::screened::LatentBounds latents;
  latents.resize(F);
  std::fill(latents.magnitude.begin(), latents.magnitude.end(), 0.0f);
  std::fill(latents.norm.begin(), latents.norm.end(), 0.0f);
  std::fill(latents.error_norm.begin(), latents.error_norm.end(), 0.0f);
  std::vector<float> lower(static_cast<std::size_t>(F)), upper(static_cast<std::size_t>(F));
  gemm::screened::row_bounds(approximations.data(), F, {0.0f, 0.0f}, latents, 1.0f, lower.data(), upper.data());
  Index outside = 0, subnormal = 0;
  for (Index f = 0; f < F; ++f) {
    outside += !(lower[f] <= v[f] && v[f] <= upper[f]);
    subnormal += std::fpclassify(v[f]) == FP_SUBNORMAL;
  }
  CHECK(outside == 0);
  CHECK(subnormal > 0);
}

TEST_CASE("A top entry whose bfloat16 sum misses by nearly the whole bound is still chosen", "[screened][topk]") {
  // As in the ReLU screen's test: latent 0 points along the token's rounding
  // errors (or the roles swap), so the bfloat16 sum misses by ≈ ‖x − x̂‖ ‖w‖
  // (Cauchy–Schwarz nearly attained). Its bias puts its exact value E at 0.5
  // of that miss, with a rival latent with no weights (exact: its bias) at
  // E − 0.4 of it; or, with no rival, E must beat only 0, at 0.3 or 0.05 of
  // the miss. The rest are far below. k = 1: latent 0 is the one to choose,
  // and a bound half the size would rule it out in favour of the rival (or
  // of nothing).
  const Index D = 300, F = 64, rival = 40;
  for (int trial = 0; trial < 12; ++trial) {
    const bool token_rounds = trial % 2 == 0, with_rival = trial % 6 < 2;
    CAPTURE(trial, token_rounds, with_rival);
    Problem p = make_problem(1, D, F, -100.0f, static_cast<unsigned>(70 + trial));
    std::fill(p.start.begin(), p.start.end(), 0.0f);
    // Latent 0 is the first D weights.
    const auto attained = screened_support::point_along_rounding_errors(p.X.data(), p.W.data(), D, token_rounds);
    const double rounded_dot = attained.rounded_dot, missed = attained.missed;
    REQUIRE(missed > 0.9 * attained.bound);  // Cauchy–Schwarz nearly attained
    const double exact_at = with_rival ? 0.5 : trial % 6 < 4 ? 0.3 : 0.05;
    p.bias[0] = static_cast<float>(-rounded_dot + (exact_at - 1.0) * missed);  // bfloat16 sum at (E − miss)
    if (with_rival) {
      std::fill(p.W.begin() + rival * D, p.W.begin() + (rival + 1) * D, 0.0f);
      p.bias[rival] = static_cast<float>((exact_at - 0.4) * missed);
    }
    const std::vector<float> plain = plain_product(p);
    REQUIRE(plain[0] > 0.0f);
    REQUIRE(plain[0] > plain[rival]);
    check_screen(p, {1});
  }
}

TEST_CASE("Rows of exact ties keep select_top_k's choice of the lower latents", "[screened][topk]") {
  // 16 distinct columns, each repeated 24 times, and no rows to add: every
  // value of a row appears 24 times, and k = 30 cuts through a tie.
  Problem p = make_problem(30, 96, 384, 0.0f, 10);
  for (Index f = 16; f < p.F; ++f)
    std::copy(p.W.begin() + (f % 16) * p.D, p.W.begin() + (f % 16 + 1) * p.D, p.W.begin() + f * p.D);
  std::fill(p.start.begin(), p.start.end(), 0.0f);
  p.bias.clear();
  check_screen(p, {30});
}

TEST_CASE("Non-finite inputs make a token's entries all candidates, with the plain kernel's choice",
          "[screened][topk]") {
  Problem p = make_problem(24, 64, 256, 0.0f, 11);
  p.X[3 * p.D + 5] = std::numeric_limits<float>::quiet_NaN();
  p.X[7 * p.D + 1] = std::numeric_limits<float>::infinity();
  p.X[9 * p.D + 2] = 3e38f;
  check_screen(p, {8});
}

TEST_CASE("The TopK screen gives way where nearly every group would be summed again", "[screened][topk]") {
  // Every latent the same column: all entries of a row tie, all are candidates.
  Problem p = make_problem(24, 64, 512, 0.5f, 12);
  for (Index f = 1; f < p.F; ++f) std::copy(p.W.begin(), p.W.begin() + p.D, p.W.begin() + f * p.D);
  std::fill(p.start.begin(), p.start.end(), 0.0f);
  std::fill(p.bias.begin(), p.bias.end(), 0.5f);
  std::vector<float> C(p.B * p.F);
  sae::detail::TopKCandidates candidates;
  CHECK_FALSE(gemm::screened_top_k(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, p.pre_activation_epilogue(), {8}, candidates));
  // Nor where the selections alone would fill the share: AuxK's 300 largest
  // of 2048 dead latents, among 512 groups, before any work.
  const Problem wide = make_problem(24, 64, 8192, 0.0f, 13);
  std::vector<float> wide_C(wide.B * wide.F, -7.0f);
  std::vector<Index> dead;
  for (Index f = 0; f < wide.F; f += 4) dead.push_back(f);
  CHECK(gemm::screened_top_k(wide.x(), wide.w(), wide_C.data(), wide.F, wide.B, wide.D, wide.F,
                             wide.pre_activation_epilogue(), {8}, candidates));
  CHECK_FALSE(gemm::screened_top_k(wide.x(), wide.w(), wide_C.data(), wide.F, wide.B, wide.D, wide.F,
                                   wide.pre_activation_epilogue(), {8, dead.data(), 2048, 300}, candidates));
  // Nor does it apply to an epilogue with ReLU or thresholds.
  gemm::Epilogue relu = p.pre_activation_epilogue();
  relu.relu = true;
  CHECK_FALSE(gemm::screened_top_k(p.x(), p.w(), C.data(), p.F, p.B, p.D, p.F, relu, {8}, candidates));
}

TEST_CASE("SparseAutoEncoder<TopK>::encode on the screen gives the plain product's codes bit for bit",
          "[screened][topk]") {
  using Model = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK>;
  Model model(192, 8192, sae::TopK{24}, sae::Init::LinearDefault, 21);
  model.apply_b_dec_to_input() = true;
  std::mt19937 rng(22);
  std::normal_distribution<float> normal;
  for (Index i = 0; i < model.params().b_dec.size(); ++i) model.params().b_dec(i) = 0.2f * normal(rng);
  for (Index f = 0; f < model.dict_size(); ++f) model.params().b_enc(f) = 0.1f * normal(rng);
  sae::Batch<float> X(120, 192);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);

  const auto codes = model.encode(X);
  {  // The screen applies here (so encode took it).
    sae::Batch<float> screened;
    sae::detail::TopKCandidates candidates;
    const Eigen::Matrix<float, 1, Eigen::Dynamic> start = -(model.params().b_dec.transpose() * model.params().W_enc);
    REQUIRE(sae::detail::screened_top_k_candidates(start, model.params().b_enc.data(), X, model.params().W_enc,
                                                   screened, {24}, candidates));
  }
  // The plain way: the centred product, then TopK's own pass.
  sae::Batch<float> plain;
  const Eigen::Matrix<float, 1, Eigen::Dynamic> start = -(model.params().b_dec.transpose() * model.params().W_enc);
  sae::detail::start_rows_then_add_product(start, X, model.params().W_enc, plain);
  sae::TopK{24}.encode_in_place(model.params(), plain);
  REQUIRE(codes.rows() == plain.rows());
  Index mismatches = 0, nonzero = 0;
  for (Index i = 0; i < codes.size(); ++i) {
    mismatches += !same_bits(codes.data()[i], plain.data()[i]);
    nonzero += codes.data()[i] != 0.0f;
  }
  CHECK(mismatches == 0);
  CHECK(nonzero > 120 * 20);
}

TEST_CASE("SparseAutoEncoder<BatchTopK>::encode on the screens gives encode_in_place's codes bit for bit",
          "[screened][topk]") {
  // θ unset: TopK's rule (the TopK screen); θ set: JumpReLU's with one θ
  // (the JumpReLU screen, through a row of θ).
  using Model = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::BatchTopK>;
  std::mt19937 rng(41);
  std::normal_distribution<float> normal;
  sae::Batch<float> X(100, 160);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
  const auto make_model = [&](double threshold) {
    Model model(160, 8192, sae::BatchTopK{20, threshold}, sae::Init::LinearDefault, 42);
    model.apply_b_dec_to_input() = true;
    std::mt19937 bias_rng(43);
    for (Index i = 0; i < model.params().b_dec.size(); ++i) model.params().b_dec(i) = 0.1f * normal(bias_rng);
    for (Index f = 0; f < model.dict_size(); ++f) model.params().b_enc(f) = 0.02f * normal(bias_rng);
    return model;
  };
  const auto plain_codes = [&](const Model& model) {
    sae::Batch<float> plain;
    const Eigen::Matrix<float, 1, Eigen::Dynamic> start = -(model.params().b_dec.transpose() * model.params().W_enc);
    sae::detail::start_rows_then_add_product(start, X, model.params().W_enc, plain);
    model.activation().encode_in_place(model.params(), plain);
    return plain;
  };
  // A θ that about 1% of the codes pass: the 99th percentile of the ReLU'd
  // pre-activations (θ 0's codes).
  const sae::Batch<float> relu_codes = plain_codes(make_model(0.0));
  std::vector<float> sorted(relu_codes.data(), relu_codes.data() + relu_codes.size());
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 100, sorted.end(), std::greater<float>());
  const double sparse_threshold = sorted[sorted.size() / 100];
  for (double threshold : {-1.0, 0.0, sparse_threshold}) {
    INFO("threshold " << threshold);
    const Model model = make_model(threshold);
    const auto codes = model.encode(X);
    const sae::Batch<float> plain = plain_codes(model);
    Index mismatches = 0, nonzero = 0;
    for (Index i = 0; i < codes.size(); ++i) {
      mismatches += !same_bits(codes.data()[i], plain.data()[i]);
      nonzero += codes.data()[i] != 0.0f;
    }
    CHECK(mismatches == 0);
    CHECK(nonzero > 0);
    if (threshold != 0.0) CHECK(nonzero < codes.size() / 20);
  }
}

// A TopK or BatchTopK model (D 128, F 8192, k 16, centring) and a batch of
// 64 standard-normal tokens (token 7 three times larger with `outlier`); a
// TopKObjective with AuxK (every fifth latent dead, k_aux 20) evaluated on it
// into ws, and the plain product's pre-activations in plain.codes.
template <typename Activation>
struct ObjectiveCase {
  using Model = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, Activation>;
  Model model;
  sae::Batch<float> X;
  sae::TopKObjective<float> objective;
  sae::LossWorkspace<float> ws, plain;

  ObjectiveCase(unsigned seed, bool outlier)
      : model(128, 8192, Activation{16}, sae::Init::LinearDefault, seed), X(64, 128) {
    model.apply_b_dec_to_input() = true;
    std::mt19937 rng(seed + 1);
    std::normal_distribution<float> normal;
    for (Index i = 0; i < model.params().b_dec.size(); ++i) model.params().b_dec(i) = 0.2f * normal(rng);
    for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
    if (outlier)
      for (Index i = 0; i < X.cols(); ++i) X(7, i) *= 3.0f;
    for (Index f = seed % 5; f < model.dict_size(); f += 5) objective.dead_latents.push_back(f);
    objective.aux_k = 20;
    objective.evaluate(model, X, ws);
    sae::detail::pre_activations(model, X, plain);
    // The screen applies here (so the objective took it).
    sae::Batch<float> screened;
    sae::detail::TopKCandidates candidates;
    const sae::detail::TopKSelection selection{16, objective.dead_latents.data(),
                                               static_cast<Index>(objective.dead_latents.size()), 20,
                                               std::is_same<Activation, sae::BatchTopK>::value};
    REQUIRE(sae::detail::screened_top_k_candidates(plain.encoder_bias.transpose(), nullptr, X, model.params().W_enc,
                                                   screened, selection, candidates));
  }

  /// AuxK's codes against positive_top_k over each token's dead latents, and
  /// the dense codes: the kept values, zeros elsewhere.
  void check_auxiliary_and_dense_codes() const {
    const auto& P = plain.codes;
    for (Index b = 0; b < P.rows(); ++b) {
      std::vector<float> dead_values;
      for (Index f : objective.dead_latents) dead_values.push_back(P(b, f));
      std::vector<Index> aux;
      for (Index j : positive_top_k(dead_values.data(), static_cast<Index>(dead_values.size()), 20))
        aux.push_back(objective.dead_latents[j]);
      REQUIRE(ws.auxiliary.row_start[b + 1] - ws.auxiliary.row_start[b] == static_cast<Index>(aux.size()));
      for (std::size_t j = 0; j < aux.size(); ++j)
        REQUIRE(ws.auxiliary.latent[ws.auxiliary.row_start[b] + static_cast<Index>(j)] == aux[j]);
      Index nonzero = 0;
      for (Index f = 0; f < P.cols(); ++f) nonzero += ws.codes(b, f) != 0.0f;
      REQUIRE(nonzero == ws.active.row_start[b + 1] - ws.active.row_start[b]);
      for (Index j = ws.active.row_start[b]; j < ws.active.row_start[b + 1]; ++j)
        REQUIRE(same_bits(ws.codes(b, ws.active.latent[j]), P(b, ws.active.latent[j])));
    }
  }
};

TEST_CASE("TopKObjective on the screen selects the plain product's codes, with AuxK", "[screened][topk]") {
  const ObjectiveCase<sae::TopK> c(31, false);
  const auto& P = c.plain.codes;
  for (Index b = 0; b < P.rows(); ++b) {  // select_top_k per row of the plain product
    const std::vector<Index> kept = positive_top_k(P.row(b).data(), P.cols(), 16);
    REQUIRE(c.ws.active.row_start[b + 1] - c.ws.active.row_start[b] == static_cast<Index>(kept.size()));
    for (std::size_t j = 0; j < kept.size(); ++j) {
      const Index at = c.ws.active.row_start[b] + static_cast<Index>(j);
      REQUIRE(c.ws.active.latent[at] == kept[j]);
      REQUIRE(same_bits(c.ws.active.value[at], P(b, kept[j])));
    }
  }
  c.check_auxiliary_and_dense_codes();
}

// BatchTopK's selection against a reference: every positive entry of the
// plain product, by value (ties in row-major order), the first k·B kept.
static void check_batch_top_k(bool outlier) {
  const ObjectiveCase<sae::BatchTopK> c(52, outlier);
  const auto& P = c.plain.codes;
  std::vector<Index> order;  // row-major positions of the positive entries
  for (Index i = 0; i < P.size(); ++i)
    if (P.data()[i] > 0.0f) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return P.data()[a] > P.data()[b]; });
  order.resize(std::min<std::size_t>(order.size(), 16 * 64));
  std::sort(order.begin(), order.end());
  REQUIRE(c.ws.active.nonzeros() == static_cast<Index>(order.size()));
  std::size_t next = 0;
  Index token_7 = 0;
  for (Index b = 0; b < P.rows(); ++b)
    for (Index j = c.ws.active.row_start[b]; j < c.ws.active.row_start[b + 1]; ++j, ++next) {
      REQUIRE(b * P.cols() + c.ws.active.latent[j] == order[next]);
      REQUIRE(same_bits(c.ws.active.value[j], P.data()[order[next]]));
      token_7 += b == 7;
    }
  if (outlier) CHECK(token_7 > 4 * 16);
  float smallest = std::numeric_limits<float>::infinity();
  for (Index i : order) smallest = std::min(smallest, P.data()[i]);
  CHECK(c.ws.smallest_kept_code == static_cast<double>(smallest));
  c.check_auxiliary_and_dense_codes();
}

TEST_CASE("TopKObjective on the screen selects BatchTopK's k·B largest of the plain product, with AuxK",
          "[screened][topk]") {
  check_batch_top_k(false);
  // A token far above the rest, which takes more than its k (and more than
  // the screen's pool holds of it).
  check_batch_top_k(true);
}

#endif  // SAE_SCREENED_RELU
