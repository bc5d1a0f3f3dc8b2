// tests/test_topk.cpp: the TopK and BatchTopK architectures, their sparse
// kernels and AuxK.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>
#include <sae/train.hpp>

#include "support.hpp"
#include "temp_dir.hpp"

using sae::Dynamic;
using sae::Index;
using TopKModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::TopK>;
using BatchTopKModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::BatchTopK>;

namespace {

// Pre-activations A W_enc + b_enc, computed here from the definition.
template <typename Model>
sae::Batch<double> pre_activations(const Model& m, const sae::Batch<double>& X) {
  const auto& p = m.params();
  sae::Batch<double> A = X;
  if (m.apply_b_dec_to_input()) A.rowwise() -= p.b_dec.transpose();
  sae::Batch<double> P = A * p.W_enc;
  P.rowwise() += p.b_enc.transpose();
  return P;
}

// Positions of the k largest entries of v, by a full sort (the reference).
std::vector<Index> top_k_by_sorting(const std::vector<double>& v, Index k) {
  std::vector<Index> order(v.size());
  std::iota(order.begin(), order.end(), Index(0));
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return v[a] > v[b]; });
  order.resize(static_cast<std::size_t>(k));
  std::sort(order.begin(), order.end());
  return order;
}

// The smallest gap between consecutive sorted values of each row around
// position k, and the smallest |P| among the kept: how far from a kink.
double margin_around_cut(const sae::Batch<double>& P, Index k) {
  double margin = INFINITY;
  for (Index b = 0; b < P.rows(); ++b) {
    std::vector<double> row(P.row(b).data(), P.row(b).data() + P.cols());
    std::sort(row.begin(), row.end(), std::greater<double>());
    margin = std::min(margin, row[k - 1] - row[k]);
    for (Index j = 0; j < k; ++j) margin = std::min(margin, std::abs(row[j]));
  }
  return margin;
}

}  // namespace

TEST_CASE("select_top_k picks the k largest, ties to the left, without sorting", "[topk]") {
  std::vector<Index> chosen;
  const std::vector<double> v = {0.5, 3.0, -1.0, 3.0, 2.0, 3.0};
  sae::detail::select_top_k(v.data(), 6, 2, chosen);
  CHECK(chosen == std::vector<Index>{1, 3});  // three 3.0s tie for two places: the first two
  sae::detail::select_top_k(v.data(), 6, 4, chosen);
  CHECK(chosen == std::vector<Index>{1, 3, 4, 5});
  sae::detail::select_top_k(v.data(), 6, 0, chosen);
  CHECK(chosen.empty());
  sae::detail::select_top_k(v.data(), 6, 6, chosen);
  CHECK(chosen.size() == 6);

  sae::Rng rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> values(97);
    for (auto& x : values) x = std::round(rng.normal() * 4) / 4;  // many ties
    const Index k = 1 + static_cast<Index>(rng.uniform(0, 96));
    sae::detail::select_top_k(values.data(), 97, k, chosen);
    CHECK(chosen == top_k_by_sorting(values, k));
  }
}

TEST_CASE("select_top_k is exact on long rows, where it skips groups below the threshold", "[topk]") {
  // Rows of 4096 hold 128 groups of 32, so for k up to 64 the group-maximum
  // threshold prunes; values rounded to quarters tie often, across groups too.
  sae::Rng rng(11);
  std::vector<Index> chosen;
  for (int trial = 0; trial < 40; ++trial) {
    const Index n = 4096 + static_cast<Index>(rng.uniform(0, 40));  // a tail past the last whole pass of groups
    std::vector<double> values(static_cast<std::size_t>(n));
    const double scale = trial % 2 == 0 ? 4 : 1000;  // many ties, or almost none
    for (auto& x : values) x = std::round(rng.normal() * scale) / 4;
    if (trial % 5 == 0) std::sort(values.begin(), values.end());  // every block beats the last
    for (Index k : {Index(1), Index(7), Index(32), Index(64), Index(500)}) {
      sae::detail::select_top_k(values.data(), n, k, chosen);
      CHECK(chosen == top_k_by_sorting(values, k));
    }
  }
}

TEST_CASE("kth_largest finds the k-th largest by bisection on the bits, for float and double", "[topk]") {
  const auto check_type = [](auto zero) {
    using T = decltype(zero);
    const T inf = std::numeric_limits<T>::infinity();
    const T tiny = std::numeric_limits<T>::denorm_min() * 3;  // a subnormal
    // In decreasing order: inf, 2, tiny, then 0 and -0 (equal), -tiny, -1.5, -inf.
    const std::vector<T> x = {T(-0.0), T(-1.5), tiny, -inf, T(0.0), inf, -tiny, T(2.0)};
    const std::vector<T> expected = {inf, T(2.0), tiny, T(0.0), T(0.0), -tiny, T(-1.5), -inf};
    for (Index k = 1; k <= 8; ++k)
      CHECK(sae::detail::kth_largest(x.data(), Index(8), k) == expected[static_cast<std::size_t>(k - 1)]);

    sae::Rng rng(21);
    for (int trial = 0; trial < 30; ++trial) {
      const Index n = 1 + static_cast<Index>(rng.uniform(0, 700));
      std::vector<T> values(static_cast<std::size_t>(n));
      for (auto& v : values) v = static_cast<T>(std::round(rng.normal() * 8) / 4);  // ties and both signs
      const Index k = 1 + static_cast<Index>(rng.uniform(0, static_cast<double>(n - 1)));
      std::vector<T> sorted = values;
      std::sort(sorted.begin(), sorted.end(), std::greater<T>());
      CHECK(sae::detail::kth_largest(values.data(), n, k) == sorted[static_cast<std::size_t>(k - 1)]);
    }
  };
  check_type(0.0f);
  check_type(0.0);
}

TEST_CASE("kth_largest_positive ranks the positive entries only, for float and double", "[topk]") {
  const auto check_type = [](auto zero) {
    using T = decltype(zero);
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const T tiny = std::numeric_limits<T>::denorm_min() * 3;  // a subnormal: positive
    // Positive, in decreasing order: inf, 5, 3, 2, 2, tiny. Not positive: 0, -0, -1, -inf, NaN.
    const std::vector<T> x = {T(3), T(-1), T(0), T(2), nan, T(5), T(-0.0), T(2), -inf, tiny, inf};
    const std::vector<T> expected = {inf, T(5), T(3), T(2), T(2), tiny};
    std::vector<T> scratch;
    const Index n = static_cast<Index>(x.size());
    for (Index k = 1; k <= 6; ++k)
      CHECK(sae::detail::kth_largest_positive(x.data(), n, k, scratch) == expected[static_cast<std::size_t>(k - 1)]);
    CHECK(sae::detail::kth_largest_positive(x.data(), n, 7, scratch) == T(0));  // only six are positive
    CHECK(sae::detail::kth_largest_positive(x.data(), Index(0), 1, scratch) == T(0));

    // A BatchTopK-sized batch, with ties: against sorting the positive
    // entries, for ranks the sampled bound serves and ranks beyond the sample.
    sae::Rng rng(23);
    const Index big = 70001;
    std::vector<T> values(static_cast<std::size_t>(big));
    for (auto& v : values) v = static_cast<T>(std::round(rng.normal() * 64) / 16);
    std::vector<T> positive;
    for (const T v : values)
      if (v > T(0)) positive.push_back(v);
    std::sort(positive.begin(), positive.end(), std::greater<T>());
    const Index count = static_cast<Index>(positive.size());
    for (const Index k : {Index(1), Index(2), Index(100), Index(2048), count / 2, count - 1, count})
      CHECK(sae::detail::kth_largest_positive(values.data(), big, k, scratch) ==
            positive[static_cast<std::size_t>(k - 1)]);
    CHECK(sae::detail::kth_largest_positive(values.data(), big, count + 1, scratch) == T(0));

    // A sample that misleads: every 64th entry (those sampled) is large and
    // the rest small, so the first bounds gather too few and must be lowered.
    std::vector<T> skewed(static_cast<std::size_t>(big));
    for (Index i = 0; i < big; ++i)
      skewed[static_cast<std::size_t>(i)] = i % 64 == 0 ? T(10) + T(i % 7) : T(1) + T(i % 5) / T(8);
    std::vector<T> skewed_sorted = skewed;
    std::sort(skewed_sorted.begin(), skewed_sorted.end(), std::greater<T>());
    for (const Index k : {Index(2000), Index(5000), big})
      CHECK(sae::detail::kth_largest_positive(skewed.data(), big, k, scratch) ==
            skewed_sorted[static_cast<std::size_t>(k - 1)]);
  };
  check_type(0.0f);
  check_type(0.0);
}

TEST_CASE("select_top_k is exact on float rows of a TopK SAE's width", "[topk]") {
  // The training path's case: float pre-activations, F = 8192 (256 groups of
  // 32) or an F that leaves a tail, k from 1 to beyond the groups.
  sae::Rng rng(22);
  std::vector<Index> chosen;
  for (const Index n : {Index(8192), Index(8192 + 37), Index(1000)}) {
    std::vector<float> values(static_cast<std::size_t>(n));
    for (auto& v : values) v = static_cast<float>(rng.normal());
    // A three-way tie at the 32nd largest value, so that k = 32 and 33 cut through it.
    std::vector<float> sorted = values;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    values[5] = values[static_cast<std::size_t>(6000 % n)] = values[static_cast<std::size_t>(n - 1)] = sorted[31];
    const std::vector<double> reference(values.begin(), values.end());
    for (Index k : {Index(1), Index(2), Index(32), Index(33), Index(64), Index(300)}) {
      sae::detail::select_top_k(values.data(), n, k, chosen);
      CHECK(chosen == top_k_by_sorting(reference, k));
    }
  }
}

TEST_CASE("select_top_k never chooses NaN, and takes the k largest of the other entries", "[topk]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> values(2048);
  sae::Rng rng(12);
  for (auto& x : values) x = rng.normal();
  std::vector<double> clean = values;
  for (Index i : {Index(3), Index(40), Index(41), Index(700), Index(2047)}) {
    values[static_cast<std::size_t>(i)] = nan;
    clean[static_cast<std::size_t>(i)] = -inf;  // the reference ranks NaN below everything
  }
  values[100] = clean[100] = 50;  // the largest sits in a block with a NaN too
  values[101] = nan, clean[101] = -inf;
  std::vector<Index> chosen;
  for (Index k : {Index(1), Index(16), Index(60)}) {
    sae::detail::select_top_k(values.data(), 2048, k, chosen);
    CHECK(chosen == top_k_by_sorting(clean, k));
  }
  const std::vector<double> mostly_nan = {nan, 2.0, nan, nan, -inf, nan};
  sae::detail::select_top_k(mostly_nan.data(), 6, 3, chosen);
  CHECK(chosen == std::vector<Index>{1, 4});  // fewer than k entries are not NaN
}

TEST_CASE("TopK encode keeps the k largest pre-activations of each token, through a ReLU", "[topk]") {
  const bool centred = GENERATE(false, true);
  TopKModel m(6, 40, sae::TopK{5}, sae::Init::LinearDefault, 7);
  m.apply_b_dec_to_input() = centred;
  const auto X = sae_test::normal_batch(9, 6, 8);
  const auto codes = m.encode(X);
  const auto P = pre_activations(m, X);
  for (Index b = 0; b < X.rows(); ++b) {
    std::vector<double> row(P.row(b).data(), P.row(b).data() + P.cols());
    const auto kept = top_k_by_sorting(row, 5);
    for (Index f = 0; f < 40; ++f) {
      const bool is_kept = std::find(kept.begin(), kept.end(), f) != kept.end();
      CHECK(codes(b, f) == Approx(is_kept ? std::max(P(b, f), 0.0) : 0.0).margin(1e-12));
    }
  }
  // One activation at a time gives the same codes.
  const Eigen::VectorXd single = m.encode(Eigen::VectorXd(X.row(3).transpose()));
  CHECK((single.transpose() - codes.row(3)).cwiseAbs().maxCoeff() < 1e-12);
  // k out of range is refused with the reason.
  SAE_CHECK_THROWS(TopKModel(6, 40, sae::TopK{41}), std::invalid_argument, Catch::Contains("k must be in [1, dict_size = 40]"));
  SAE_CHECK_THROWS(TopKModel(6, 40, sae::TopK{0}), std::invalid_argument, Catch::Contains("got 0"));
}

TEST_CASE("TopKObjective leaves each token's k codes dense in the workspace and AuxK's among the dead latents",
          "[topk][auxk]") {
  TopKModel m(6, 40, sae::TopK{4}, sae::Init::LinearDefault, 13);
  m.params().b_enc.array() += 0.2;  // most entries positive, so the ReLU rarely trims the k
  const auto X = sae_test::normal_batch(9, 6, 14);
  const auto P = pre_activations(m, X);
  sae::TopKObjective<double> objective;
  objective.dead_latents = {0, 3, 7, 12, 18, 25, 33, 39};
  objective.aux_k = 3;
  sae::LossWorkspace<double> ws;
  objective.evaluate(m, X, ws);

  REQUIRE(ws.auxiliary.rows == 9);
  Index aux_entries = 0;
  for (Index b = 0; b < P.rows(); ++b) {
    // Codes: the row's 4 largest pre-activations where positive, by a full sort.
    const std::vector<double> row(P.row(b).data(), P.row(b).data() + P.cols());
    const auto kept = top_k_by_sorting(row, 4);
    for (Index f = 0; f < P.cols(); ++f) {
      const bool chosen = std::find(kept.begin(), kept.end(), f) != kept.end();
      CHECK(ws.codes(b, f) == (chosen && P(b, f) > 0 ? P(b, f) : 0.0));
    }
    // AuxK: the 3 largest positive pre-activations among the dead latents.
    std::vector<double> dead_values;
    for (Index f : objective.dead_latents) dead_values.push_back(P(b, f));
    std::vector<std::pair<Index, double>> expected;
    for (Index j : top_k_by_sorting(dead_values, 3))
      if (dead_values[j] > 0) expected.emplace_back(objective.dead_latents[j], dead_values[j]);
    std::vector<std::pair<Index, double>> got;
    for (Index j = ws.auxiliary.row_start[b]; j < ws.auxiliary.row_start[b + 1]; ++j)
      got.emplace_back(ws.auxiliary.latent[j], ws.auxiliary.value[j]);
    std::sort(got.begin(), got.end());
    CHECK(got == expected);
    aux_entries += static_cast<Index>(got.size());
  }
  CHECK(aux_entries > 9);  // the check above saw real AuxK entries
}

TEST_CASE("TopK and BatchTopK objectives: a reused workspace gives the same results across batch sizes",
          "[topk][auxk]") {
  sae::TopKObjective<float> objective;
  objective.dead_latents = {1, 4, 9, 16, 25};  // AuxK on: its codes and error are workspace buffers too
  SECTION("TopK") {
    const sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::TopK> model(8, 32, sae::TopK{3}, sae::Init::Tied, 1);
    sae_test::check_reused_workspace(model, objective);
  }
  SECTION("BatchTopK") {
    const sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> model(8, 32, sae::BatchTopK{3},
                                                                               sae::Init::Tied, 1);
    sae_test::check_reused_workspace(model, objective);
  }
  SECTION("TopK, dense kernels") {
    objective.kernels = sae::Kernels::Dense;
    const sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::TopK> model(8, 32, sae::TopK{3}, sae::Init::Tied, 1);
    sae_test::check_reused_workspace(model, objective);
  }
}

TEST_CASE("BatchTopK keeps k·B codes over the batch in training and uses its threshold at inference", "[topk]") {
  BatchTopKModel m(6, 40, sae::BatchTopK{4}, sae::Init::LinearDefault, 11);
  const auto X = sae_test::normal_batch(10, 6, 12);
  const auto P = pre_activations(m, X);
  sae::LossWorkspace<double> ws;
  sae::TopKObjective<double> objective;
  objective.evaluate(m, X, ws);

  // The reference: the 40 largest positive entries of the whole batch.
  std::vector<double> all(P.data(), P.data() + P.size());
  std::vector<double> sorted = all;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const double cut = sorted[4 * 10 - 1];
  REQUIRE(cut > 0);
  Index kept = 0;
  for (Index b = 0; b < P.rows(); ++b)
    for (Index f = 0; f < P.cols(); ++f) {
      const double expected = P(b, f) >= cut ? P(b, f) : 0.0;
      CHECK(ws.codes(b, f) == Approx(expected).margin(1e-12));
      kept += ws.codes(b, f) != 0;
    }
  CHECK(kept == 40);
  CHECK(ws.smallest_kept_code == Approx(cut));
  // Rows differ in how many codes they use (the point of BatchTopK).
  const auto per_row = (ws.codes.array() != 0).rowwise().count();
  CHECK(per_row.maxCoeff() > per_row.minCoeff());

  // Before training sets θ, inference falls back to per-token TopK; after, it is P · 1[P > θ].
  CHECK((m.encode(X).array() != 0).rowwise().count().maxCoeff() == 4);
  m.activation().threshold = cut;
  const auto codes = m.encode(X);
  for (Index i = 0; i < P.size(); ++i) CHECK(codes.data()[i] == Approx(P.data()[i] > cut ? P.data()[i] : 0.0).margin(1e-12));
}

TEST_CASE("TopK sparse kernels give the dense path's loss and gradients", "[topk][gradcheck]") {
  const bool centred = GENERATE(false, true);
  const bool batch_rule = GENERATE(false, true);
  const auto X = sae_test::normal_batch(12, 8, 21);
  sae::TopKObjective<double> sparse;
  sparse.kernels = sae::Kernels::Sparse;
  sparse.dead_latents = {1, 4, 9, 16, 25, 36, 49};  // AuxK active
  sparse.aux_k = 3;
  sae::TopKObjective<double> dense = sparse;
  dense.kernels = sae::Kernels::Dense;

  auto compare = [&](const auto& model) {
    auto g_sparse = sae::zeros_like(model.params());
    auto g_dense = sae::zeros_like(model.params());
    const auto rs = sae::loss_and_gradient(model, X, sparse, g_sparse);
    const auto rd = sae::loss_and_gradient(model, X, dense, g_dense);
    CHECK(rs.loss == Approx(rd.loss).epsilon(1e-12));
    CHECK(rs.auxiliary == Approx(rd.auxiliary).epsilon(1e-12));
    CHECK(rs.auxiliary > 0);
    CHECK(sae_test::relative_error(g_sparse.W_enc, g_dense.W_enc) < 1e-12);
    CHECK(sae_test::relative_error(g_sparse.b_enc, g_dense.b_enc) < 1e-12);
    CHECK(sae_test::relative_error(g_sparse.W_dec, g_dense.W_dec) < 1e-12);
    CHECK(sae_test::relative_error(g_sparse.b_dec, g_dense.b_dec) < 1e-12);
  };
  if (batch_rule) {
    BatchTopKModel m(8, 64, sae::BatchTopK{5}, sae::Init::LinearDefault, 22);
    m.apply_b_dec_to_input() = centred;
    compare(m);
  } else {
    TopKModel m(8, 64, sae::TopK{5}, sae::Init::LinearDefault, 22);
    m.apply_b_dec_to_input() = centred;
    compare(m);
  }
}

TEST_CASE("TopK gradients match finite differences, AuxK with the residual held fixed", "[topk][gradcheck]") {
  const bool centred = GENERATE(false, true);
  const Index D = 5, F = 24, B = 6, k = 4, k_aux = 3;
  TopKModel m(D, F, sae::TopK{k}, sae::Init::LinearDefault, 0);
  m.apply_b_dec_to_input() = centred;
  sae::Batch<double> X;
  // A problem with no two pre-activations near the cut and none near 0.
  for (std::uint64_t seed = 1;; ++seed) {
    sae::Rng rng(seed);
    sae::init_linear_default(m.params(), rng);
    m.params().b_enc.array() += 0.6;  // most pre-activations positive, so the dead ones reach AuxK
    X = sae_test::normal_batch(B, D, seed + 1000);
    if (margin_around_cut(pre_activations(m, X), k) > 1e-3) break;
    REQUIRE(seed < 5000);
  }
  const std::vector<Index> dead = {0, 3, 7, 11, 19};
  sae::TopKObjective<double> objective;
  objective.dead_latents = dead;
  objective.aux_k = k_aux;
  auto grads = sae::zeros_like(m.params());
  const auto report = sae::loss_and_gradient(m, X, objective, grads);
  REQUIRE(report.auxiliary > 0);

  // The loss computed here from the definitions by sorting, with the residual r0 of the
  // starting point frozen (AuxK's target is detached).
  const double alpha_s = (1.0 / 32.0) * std::min(5.0 / k_aux, 1.0);
  auto reference_loss = [&](const TopKModel& model, const sae::Batch<double>* frozen_residual,
                            sae::Batch<double>* residual_out) {
    const auto& p = model.params();
    const auto P = pre_activations(model, X);
    sae::Batch<double> codes = sae::Batch<double>::Zero(B, F), aux = sae::Batch<double>::Zero(B, F);
    for (Index b = 0; b < B; ++b) {
      std::vector<double> row(P.row(b).data(), P.row(b).data() + F);
      for (Index f : top_k_by_sorting(row, k)) codes(b, f) = std::max(row[f], 0.0);
      std::vector<double> dead_values;
      for (Index f : dead) dead_values.push_back(row[f]);
      for (Index j : top_k_by_sorting(dead_values, k_aux)) aux(b, dead[j]) = std::max(dead_values[j], 0.0);
    }
    sae::Batch<double> recon = codes * p.W_dec;
    recon.rowwise() += p.b_dec.transpose();
    const sae::Batch<double> residual = X - recon;
    if (residual_out) *residual_out = residual;
    const sae::Batch<double>& r = frozen_residual ? *frozen_residual : residual;
    const sae::Batch<double> aux_recon = aux * p.W_dec;  // no b_dec
    return (recon - X).squaredNorm() / B + alpha_s * (aux_recon - r).squaredNorm() / B;
  };
  sae::Batch<double> r0;
  CHECK(reference_loss(m, nullptr, &r0) == Approx(report.loss).epsilon(1e-12));

  const double h = 1e-6;
  std::size_t tensor = 0;
  std::vector<Eigen::MatrixXd> numeric;
  m.params().for_each([&](const char*, auto& t) {
    Eigen::MatrixXd g(t.rows(), t.cols());
    for (Index r = 0; r < t.rows(); ++r)
      for (Index c = 0; c < t.cols(); ++c) {
        const double saved = t(r, c);
        t(r, c) = saved + h;
        const double up = reference_loss(m, &r0, nullptr);
        t(r, c) = saved - h;
        const double down = reference_loss(m, &r0, nullptr);
        t(r, c) = saved;
        g(r, c) = (up - down) / (2 * h);
      }
    numeric.push_back(g);
  });
  grads.for_each([&](const char* name, const auto& analytic) {
    CAPTURE(name);
    const Eigen::MatrixXd expected = numeric[tensor++];
    if (analytic.size() == 0) return;
    const double scale = std::max(1.0, analytic.cwiseAbs().maxCoeff());
    CHECK((Eigen::MatrixXd(analytic) - expected).cwiseAbs().maxCoeff() <= 1e-7 * scale);
  });
}

TEST_CASE("AuxK trains only dead latents and never b_dec", "[topk][auxk]") {
  TopKModel m(8, 48, sae::TopK{4}, sae::Init::LinearDefault, 5);
  m.params().b_enc.array() += 0.5;
  const auto X = sae_test::normal_batch(16, 8, 6);
  const std::vector<Index> dead = {2, 5, 8, 13, 21, 34};
  sae::TopKObjective<double> with_aux, without_aux;
  with_aux.dead_latents = dead;
  with_aux.aux_k = 4;
  without_aux.aux_k_coefficient = 0;
  auto g_with = sae::zeros_like(m.params()), g_without = sae::zeros_like(m.params());
  REQUIRE(sae::loss_and_gradient(m, X, with_aux, g_with).auxiliary > 0);
  sae::loss_and_gradient(m, X, without_aux, g_without);

  // The difference is AuxK's gradient: zero everywhere but the dead latents' own
  // encoder columns, encoder biases and decoder rows.
  CHECK((g_with.b_dec - g_without.b_dec).cwiseAbs().maxCoeff() == 0.0);
  double dead_change = 0;
  for (Index f = 0; f < 48; ++f) {
    const bool is_dead = std::find(dead.begin(), dead.end(), f) != dead.end();
    const double change = (g_with.W_enc.col(f) - g_without.W_enc.col(f)).cwiseAbs().maxCoeff() +
                          std::abs(g_with.b_enc(f) - g_without.b_enc(f)) +
                          (g_with.W_dec.row(f) - g_without.W_dec.row(f)).cwiseAbs().maxCoeff();
    if (is_dead) dead_change += change;
    else CHECK(change == 0.0);
  }
  CHECK(dead_change > 0);

  // With no dead latents AuxK is off: the same as without it.
  sae::TopKObjective<double> none_dead;
  auto g_none = sae::zeros_like(m.params());
  CHECK(sae::loss_and_gradient(m, X, none_dead, g_none).auxiliary == 0.0);
  CHECK(g_none.W_dec == g_without.W_dec);
}

TEST_CASE("AuxK is unchanged when b_dec and the inputs shift together (no decoder bias in it)", "[topk][auxk]") {
  // With b_dec subtracted from the input, moving b_dec and every input by the same δ
  // leaves the codes and the residual unchanged, so a correct AuxK loss is unchanged.
  // Adding b_dec to the auxiliary reconstruction (sparsify #132) would change it.
  TopKModel m(8, 48, sae::TopK{4}, sae::Init::LinearDefault, 9);
  m.apply_b_dec_to_input() = true;
  m.params().b_enc.array() += 0.5;
  auto X = sae_test::normal_batch(16, 8, 10);
  sae::TopKObjective<double> objective;
  objective.dead_latents = {1, 2, 3, 5, 8, 13, 21, 34};
  const auto before = sae::loss(m, X, objective);
  REQUIRE(before.auxiliary > 0);
  const Eigen::VectorXd delta = 3.0 * sae_test::normal_batch(8, 1, 11);
  m.params().b_dec += delta;
  X.rowwise() += delta.transpose();
  const auto after = sae::loss(m, X, objective);
  CHECK(after.auxiliary == Approx(before.auxiliary).epsilon(1e-10));
  CHECK(after.l2 == Approx(before.l2).epsilon(1e-10));
}

TEST_CASE("AuxK revives latents that a TopK SAE left dead", "[topk][auxk][trainer]") {
  // Latents 0..15 start with a negative bias: out of every token's top k but
  // with some positive pre-activations, which AuxK (on ReLU'd pre-activations,
  // as OpenAI's and sparsify's) can train. Without AuxK nothing moves them.
  sae::SyntheticSuperposition<double> data(16, 48, 3.0, 1);
  sae::InMemorySource<double> source(data.sample(4096), 2);
  auto run = [&](double aux_coefficient, double bias) {
    TopKModel m(16, 64, sae::TopK{4});
    auto config = sae::make_recipe(sae::Recipe::TopK, 400, 64);
    config.batch_size = 64;
    config.learning_rate = 3e-3;
    config.aux_k_coefficient = aux_coefficient;
    config.dead_window_tokens = 640;
    config.decoder_bias_init.reset();
    config.input_scaling = sae::InputScaling::None;
    sae::Trainer<double, Dynamic, Dynamic, sae::TopK> trainer(m, source, config, 3);
    m.params().b_enc.head(16).setConstant(bias);
    trainer.run();
    const auto codes = m.encode(data.sample(2048));
    return (codes.leftCols(16).array() > 0).colwise().any().count();
  };
  const auto revived_without = run(0.0, -1.0);
  const auto revived_with = run(1.0 / 32.0, -1.0);
  CAPTURE(revived_without, revived_with);
  CHECK(revived_without == 0);
  CHECK(revived_with >= 3);  // 5 of 16 here, in 400 steps
}

TEST_CASE("a resumed TopK run with AuxK repeats the uninterrupted run bit for bit", "[topk][trainer][checkpoint]") {
  sae_test::TempDir dir;
  sae::SyntheticSuperposition<float> data(16, 48, 3.0, 4);
  const sae::Batch<float> rows = data.sample(2048);
  auto config = sae::make_recipe(sae::Recipe::BatchTopK, 60, 64);
  config.batch_size = 32;
  config.dead_window_tokens = 64;  // AuxK busy from the start
  config.threshold_start_step = 5;
  auto make = [&](sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK>& m, sae::InMemorySource<float>& s) {
    return sae::Trainer<float, Dynamic, Dynamic, sae::BatchTopK>(m, s, config, 8);
  };
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> straight(16, 64, sae::BatchTopK{3});
  sae::InMemorySource<float> s1(rows, 1);
  auto t1 = make(straight, s1);
  t1.run();

  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> first(16, 64, sae::BatchTopK{3});
  sae::InMemorySource<float> s2(rows, 1);
  auto t2 = make(first, s2);
  for (int i = 0; i < 25; ++i) t2.step();
  t2.save_checkpoint(dir.file("ck.sae"));
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> resumed(16, 64, sae::BatchTopK{3});
  sae::InMemorySource<float> s3(rows, 1);
  auto t3 = make(resumed, s3);
  t3.load_checkpoint(dir.file("ck.sae"));
  t3.run();
  CHECK(resumed.params().W_enc == straight.params().W_enc);
  CHECK(resumed.params().W_dec == straight.params().W_dec);
  CHECK(resumed.params().b_dec == straight.params().b_dec);
  CHECK(resumed.activation().threshold == straight.activation().threshold);
  CHECK(straight.activation().threshold > 0);

  // A TopK trainer refuses a BatchTopK checkpoint.
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::TopK> other(16, 64, sae::TopK{3});
  sae::InMemorySource<float> s4(rows, 1);
  sae::Trainer<float, Dynamic, Dynamic, sae::TopK> t4(other, s4, config, 8);
  SAE_CHECK_THROWS(t4.load_checkpoint(dir.file("ck.sae")), std::runtime_error, Catch::Contains("'batchtopk' SAE"));
  // ... and a BatchTopK trainer one trained with another k.
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> other_k(16, 64, sae::BatchTopK{4});
  sae::InMemorySource<float> s5(rows, 1);
  auto t5 = make(other_k, s5);
  SAE_CHECK_THROWS(t5.load_checkpoint(dir.file("ck.sae")), std::runtime_error,
                   Catch::Contains("trained with k = 3, this model has k = 4"));
}

TEST_CASE("the learned BatchTopK threshold reproduces the batch rule on held-out data", "[topk][trainer]") {
  sae::SyntheticSuperposition<double> data(32, 96, 4.0, 5);
  sae::InMemorySource<double> source(data.sample(8192), 6);
  BatchTopKModel m(32, 128, sae::BatchTopK{6});
  auto config = sae::make_recipe(sae::Recipe::BatchTopK, 600, 128);
  config.batch_size = 128;
  config.learning_rate = 2e-3;
  config.threshold_start_step = 50;
  sae::Trainer<double, Dynamic, Dynamic, sae::BatchTopK> trainer(m, source, config, 7);
  trainer.run();
  const auto exported = trainer.exported_model();
  REQUIRE(exported.activation().threshold > 0);

  // Batch rule on held-out batches of the training size vs the threshold rule.
  const sae::Batch<double> heldout = data.sample(2048);
  sae::LossWorkspace<double> ws;
  sae::TopKObjective<double> objective;
  double agree = 0, total = 0, l0_batch = 0, l0_threshold = 0;
  for (Index start = 0; start < heldout.rows(); start += 128) {
    const sae::Batch<double> X = heldout.middleRows(start, 128);
    objective.evaluate(exported, X, ws);
    const auto codes = exported.encode(X);
    agree += ((ws.codes.array() > 0) == (codes.array() > 0)).count();
    total += static_cast<double>(codes.size());
    l0_batch += (ws.codes.array() > 0).count();
    l0_threshold += (codes.array() > 0).count();
  }
  CHECK(agree / total > 0.99);
  CHECK(l0_threshold == Approx(l0_batch).epsilon(0.1));

  // Exported as a JumpReLU SAE, it encodes exactly as the BatchTopK model does.
  const auto as_jumprelu = sae::to_jumprelu(exported);
  CHECK(as_jumprelu.apply_b_dec_to_input() == exported.apply_b_dec_to_input());
  CHECK(as_jumprelu.encode(heldout) == exported.encode(heldout));
  CHECK(as_jumprelu.params().threshold.minCoeff() == as_jumprelu.params().threshold.maxCoeff());
  // An untrained model has no threshold to export.
  SAE_CHECK_THROWS(sae::to_jumprelu(BatchTopKModel(4, 8, sae::BatchTopK{2})), std::invalid_argument,
                   Catch::Contains("has not been learned yet"));
}
