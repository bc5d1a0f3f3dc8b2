// tests/test_sparse_kernels.cpp: the sparse path of a training step (codes as
// their nonzero entries) against the dense GEMM path, for the ReLU
// architecture's L1 objective; the automatic choice between them; and, under
// OpenMP, results that do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>

#include "support.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using sae::Dynamic;
using sae::Index;
using ReLUModel = sae::SparseAutoEncoder<double>;
using TopKModel = sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::TopK>;

namespace {

// A ReLU model whose codes on standard-normal inputs are about `density`
// nonzero: b_enc_f = ‖W_enc,f‖ Φ⁻¹(density), estimated here by a quantile of
// the pre-activations of a calibration batch.
ReLUModel model_with_density(Index D, Index F, double density, std::uint64_t seed) {
  ReLUModel m(D, F, sae::ReLU{}, sae::Init::LinearDefault, seed);
  const sae::Batch<double> calibration = sae_test::normal_batch(256, D, seed + 1);
  sae::Batch<double> P = calibration * m.params().W_enc;
  for (Index f = 0; f < F; ++f) {
    std::vector<double> column(P.rows());
    for (Index b = 0; b < P.rows(); ++b) column[b] = P(b, f);
    const auto q = column.begin() + static_cast<std::ptrdiff_t>((1.0 - density) * (column.size() - 1));
    std::nth_element(column.begin(), q, column.end());
    m.params().b_enc(f) = -*q;
  }
  return m;
}

void check_same_gradients(const sae::Parameters<double, Dynamic, Dynamic>& a,
                          const sae::Parameters<double, Dynamic, Dynamic>& b, double tolerance) {
  CHECK(sae_test::relative_error(a.W_enc, b.W_enc) < tolerance);
  CHECK(sae_test::relative_error(a.b_enc, b.b_enc) < tolerance);
  CHECK(sae_test::relative_error(a.W_dec, b.W_dec) < tolerance);
  CHECK(sae_test::relative_error(a.b_dec, b.b_dec) < tolerance);
}

}  // namespace

TEST_CASE("ReLU sparse kernels give the dense path's loss and gradients", "[sparse-kernels][gradcheck]") {
  const auto weighting = GENERATE(sae::L1Weighting::Uniform, sae::L1Weighting::DecoderNorm);
  const auto reduction = GENERATE(sae::L1Reduction::SumOverBatch, sae::L1Reduction::MeanOverBatch);
  const bool centred = GENERATE(false, true);
  const double density = GENERATE(0.05, 0.5);
  ReLUModel m = model_with_density(12, 80, density, 31);
  m.apply_b_dec_to_input() = centred;
  const auto X = sae_test::normal_batch(40, 12, 32);

  sae::L1Objective<double> sparse{0.02, reduction, weighting};
  sparse.kernels = sae::Kernels::Sparse;
  sae::L1Objective<double> dense = sparse;
  dense.kernels = sae::Kernels::Dense;
  auto g_sparse = sae::zeros_like(m.params());
  auto g_dense = sae::zeros_like(m.params());
  sae::LossWorkspace<double> ws_sparse, ws_dense;
  const auto rs = sae::loss_and_gradient(m, X, sparse, g_sparse, ws_sparse);
  const auto rd = sae::loss_and_gradient(m, X, dense, g_dense, ws_dense);
  CHECK(ws_sparse.sparse_step);
  CHECK_FALSE(ws_dense.sparse_step);
  CHECK(rs.l0 == rd.l0);
  CHECK(rs.l0 > 0);
  CHECK(rs.l0 == Approx(density * 80).epsilon(0.5));
  CHECK(rs.loss == Approx(rd.loss).epsilon(1e-12));
  CHECK(rs.l1 == Approx(rd.l1).epsilon(1e-12));
  CHECK(rs.l2 == Approx(rd.l2).epsilon(1e-12));
  check_same_gradients(g_sparse, g_dense, 1e-12);
  // The codes the trainer reads are the same dense codes either way.
  CHECK(ws_sparse.codes == ws_dense.codes);
}

TEST_CASE("The ReLU sparse path's gradient matches finite differences", "[sparse-kernels][gradcheck]") {
  const bool centred = GENERATE(false, true);
  ReLUModel m = model_with_density(6, 30, 0.1, 41);
  m.apply_b_dec_to_input() = centred;
  // Seeds chosen so that no pre-activation lies within h of the ReLU's kink.
  const auto X = sae_test::normal_batch(20, 6, 44);
  sae::L1Objective<double> objective{0.05, sae::L1Reduction::MeanOverBatch, sae::L1Weighting::DecoderNorm};
  objective.kernels = sae::Kernels::Sparse;
  auto grads = sae::zeros_like(m.params());
  sae::loss_and_gradient(m, X, objective, grads);
  const auto loss = [&] { return sae::loss(m, X, objective).loss; };
  const double h = 1e-6;
  auto& p = m.params();
  CHECK(sae_test::relative_error(grads.W_enc, sae_test::central_differences(p.W_enc, loss, h)) < 1e-6);
  CHECK(sae_test::relative_error(grads.b_enc, sae_test::central_differences(p.b_enc, loss, h)) < 1e-6);
  CHECK(sae_test::relative_error(grads.W_dec, sae_test::central_differences(p.W_dec, loss, h)) < 1e-6);
  CHECK(sae_test::relative_error(grads.b_dec, sae_test::central_differences(p.b_dec, loss, h)) < 1e-6);
}

TEST_CASE("Kernels::Automatic takes the sparse path only for sparse codes", "[sparse-kernels]") {
  const auto X = sae_test::normal_batch(64, 16, 51);
  sae::L1Objective<double> objective{1e-3};
  sae::LossWorkspace<double> ws;
  auto grads = sae::zeros_like(ReLUModel(16, 200).params());

  const ReLUModel sparse_model = model_with_density(16, 200, 0.02, 52);
  const auto r_sparse = sae::loss_and_gradient(sparse_model, X, objective, grads, ws);
  CHECK(r_sparse.l0 / 200 <= sae::automatic_sparse_density);
  CHECK(ws.sparse_step);

  const ReLUModel dense_model = model_with_density(16, 200, 0.5, 53);
  const auto r_dense = sae::loss_and_gradient(dense_model, X, objective, grads, ws);
  CHECK(r_dense.l0 / 200 > sae::automatic_sparse_density);
  CHECK_FALSE(ws.sparse_step);
}

TEST_CASE("SparseCodes: counting, filling and the by-latent index agree with the dense codes",
          "[sparse-kernels]") {
  sae::Batch<double> codes = sae_test::normal_batch(9, 13, 61).cwiseMax(0.0);
  codes.row(4).setZero();  // an empty row
  sae::SparseCodes<double> s;
  CHECK(s.count_from_dense(codes) == (codes.array() > 0).count());
  s.fill_from_dense(codes);
  s.index_by_latent();
  sae::Batch<double> rebuilt = sae::Batch<double>::Zero(9, 13);
  for (Index b = 0; b < 9; ++b)
    for (Index j = s.row_start[b]; j < s.row_start[b + 1]; ++j) rebuilt(b, s.latent[j]) = s.value[j];
  CHECK(rebuilt == codes);
  sae::Batch<double> by_latent = sae::Batch<double>::Zero(9, 13);
  for (Index f = 0; f < 13; ++f)
    for (Index p = s.latent_start[f]; p < s.latent_start[f + 1]; ++p) {
      if (p > s.latent_start[f]) CHECK(s.by_latent_row[p] > s.by_latent_row[p - 1]);  // row order
      CHECK(s.latent[s.by_latent_entry[p]] == f);
      by_latent(s.by_latent_row[p], f) = s.value[s.by_latent_entry[p]];
    }
  CHECK(by_latent == codes);
  CHECK(s.density() == Approx(static_cast<double>(s.nonzeros()) / (9 * 13)));
}

TEST_CASE("decode gathers the decoder rows of sparse codes' nonzero entries, and multiplies dense codes",
          "[sparse-kernels]") {
  using Model = sae::SparseAutoEncoder<float>;
  using Keep = sae::SparseCodes<float>::Keep;
  Model model(24, 400, sae::Init::LinearDefault, 71);
  sae::Rng rng(72);
  for (Index i = 0; i < 24; ++i) model.params().b_dec(i) = static_cast<float>(rng.normal());
  const auto& W_dec = model.params().W_dec;
  const auto& b_dec = model.params().b_dec;
  const auto product = [&](const sae::Batch<float>& codes) {  // the dense path
    sae::Batch<float> out;
    sae::detail::start_rows_then_add_product(b_dec.transpose(), codes, W_dec, out);
    return out;
  };

  // About 3% nonzero, of either sign: decode takes any codes, not only an SAE's.
  sae::Batch<float> codes = sae::Batch<float>::Zero(80, 400);
  for (Index b = 0; b < 80; ++b)
    for (int j = 0; j < 12; ++j) codes(b, static_cast<Index>(rng.below(400))) = static_cast<float>(rng.normal());
  codes.row(5).setZero();
  sae::Batch<float> recon;
  model.decode(codes, recon);
  const sae::Batch<double> exact =
      (codes.cast<double>() * W_dec.cast<double>()).rowwise() + b_dec.cast<double>().transpose();
  CHECK(sae_test::relative_error(recon, exact) < 1e-6);
  // It is the gather: sparse_decode's sums, bit for bit, which round
  // differently from the dense product's (so the check tells the paths apart).
  sae::SparseCodes<float> sparse;
  sparse.count_from_dense<Keep::Nonzero>(codes);
  sparse.fill_from_dense<Keep::Nonzero>(codes);
  CHECK(sparse.nonzeros() == (codes.array() != 0.0f).count());
  sae::Batch<float> gathered;
  sae::detail::sparse_decode(sparse, W_dec, gathered);
  gathered.rowwise() += b_dec.transpose();
  CHECK(recon == gathered);
  REQUIRE(product(codes) != gathered);
  CHECK(model.decode(codes) == recon);

  // The decoder row of a latent no token uses is not read (in the dense
  // product its 0 · inf would be NaN).
  Index unused = 0;
  while ((codes.col(unused).array() != 0.0f).any()) ++unused;
  Model with_inf = model;
  with_inf.params().W_dec.row(unused).setConstant(INFINITY);
  CHECK(with_inf.decode(codes) == recon);

  // Codes as dense as a fresh model's take the product, with its bits.
  const sae::Batch<float> fresh = model.encode(sae_test::normal_batch(80, 24, 73).cast<float>());
  REQUIRE((fresh.array() > 0.0f).count() > fresh.size() / 4);
  CHECK(model.decode(fresh) == product(fresh));
  // And codes past decode_sparse_density (7% nonzero here), though sparse
  // enough for a training step's sparse kernels.
  sae::Batch<float> moderate = sae::Batch<float>::Zero(80, 400);
  for (Index b = 0; b < 80; ++b)
    for (Index f = b % 14; f < 400; f += 14) moderate(b, f) = static_cast<float>(rng.normal());
  REQUIRE((moderate.array() != 0.0f).count() > sae::decode_sparse_density * moderate.size());
  REQUIRE((moderate.array() != 0.0f).count() < sae::automatic_sparse_density * moderate.size());
  CHECK(model.decode(moderate) == product(moderate));
  // As do codes whose sampled rows are empty but whose others are dense: the
  // full count decides.
  sae::Batch<float> mixed = fresh;
  for (Index b = 0; b < mixed.rows(); b += mixed.rows() / 16) mixed.row(b).setZero();
  CHECK(model.decode(mixed) == product(mixed));
}

TEST_CASE("select_top_k is exact when every entry enters the heap, or none does", "[sparse-kernels][topk]") {
  std::vector<double> ascending(300), descending(300), equal(300, 1.5);
  for (int i = 0; i < 300; ++i) ascending[i] = i, descending[i] = 300 - i;
  std::vector<Index> chosen;
  sae::detail::select_top_k(ascending.data(), 300, 7, chosen);
  CHECK(chosen == std::vector<Index>{293, 294, 295, 296, 297, 298, 299});
  sae::detail::select_top_k(descending.data(), 300, 3, chosen);
  CHECK(chosen == std::vector<Index>{0, 1, 2});
  sae::detail::select_top_k(equal.data(), 300, 4, chosen);
  CHECK(chosen == std::vector<Index>{0, 1, 2, 3});  // ties go to the lowest positions
  sae::detail::select_top_k(ascending.data(), 300, 299, chosen);
  CHECK(chosen.size() == 299);
  CHECK(chosen.front() == 1);
}

#if defined(_OPENMP)
TEST_CASE("A training step gives the same numbers on 1 and 2 threads", "[sparse-kernels][openmp]") {
  const auto X = sae_test::normal_batch(256, 32, 71);
  const auto step = [&](int threads, auto model, const auto& objective) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto grads = sae::zeros_like(model.params());
    sae::LossWorkspace<double> ws;
    const auto report = sae::loss_and_gradient(model, X, objective, grads, ws);
    sae::Adam<double> adam(1e-3);
    adam.step(model.params(), grads);
    omp_set_num_threads(saved);
    return std::make_pair(report.loss, model.params());
  };
  // The largest difference between two steps' loss and updated parameters.
  const auto difference = [](const auto& x, const auto& y) {
    double d = std::abs(x.first - y.first);
    d = std::max(d, (x.second.W_enc - y.second.W_enc).cwiseAbs().maxCoeff());
    d = std::max(d, (x.second.W_dec - y.second.W_dec).cwiseAbs().maxCoeff());
    d = std::max(d, (x.second.b_enc - y.second.b_enc).cwiseAbs().maxCoeff());
    return std::max(d, (x.second.b_dec - y.second.b_dec).cwiseAbs().maxCoeff());
  };
  sae::L1Objective<double> relu_sparse{1e-3};
  relu_sparse.kernels = sae::Kernels::Sparse;
  const ReLUModel relu = model_with_density(32, 2048, 0.02, 72);
  CHECK(difference(step(1, relu, relu_sparse), step(2, relu, relu_sparse)) == 0);

  // The dense path's GEMMs are Eigen's, whose blocking depends on the thread
  // count, so its step agrees to rounding only; sae's own column-slice loops
  // (the ReLU mask with b_enc's gradient, the penalty's column sums) are
  // exact, checked through column_sums below.
  sae::L1Objective<double> relu_dense{1e-3, sae::L1Reduction::MeanOverBatch, sae::L1Weighting::DecoderNorm};
  relu_dense.kernels = sae::Kernels::Dense;
  ReLUModel centred = model_with_density(32, 2048, 0.3, 74);
  centred.apply_b_dec_to_input() = true;
  centred.params().b_dec.setConstant(0.25);
  CHECK(difference(step(1, centred, relu_dense), step(2, centred, relu_dense)) < 1e-10);  // the loss is ~35
  const auto codes = sae_test::normal_batch(300, 4000, 75);
  const auto sums = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Eigen::VectorXd out;
    sae::detail::column_sums(codes, out);
    omp_set_num_threads(saved);
    return out;
  };
  const Eigen::VectorXd one = sums(1), two = sums(2);
  CHECK(one == two);
  CHECK((one - codes.colwise().sum().transpose()).cwiseAbs().maxCoeff() < 1e-9);

  // A third of the latents dead: AuxK's per-token selection runs in parallel too.
  const TopKModel topk(32, 2048, sae::TopK{8}, sae::Init::Tied, 73);
  sae::TopKObjective<double> topk_objective;
  for (Index latent = 0; latent < 2048; latent += 3) topk_objective.dead_latents.push_back(latent);
  CHECK(difference(step(1, topk, topk_objective), step(2, topk, topk_objective)) == 0);

  // JumpReLU's θ gradient and Gated's gate and magnitude sums run in column
  // slices over the latents. Their inputs come from Eigen's products, so the
  // gradients agree to rounding (compared before Adam, which would keep only
  // their signs on a first step).
  const auto gradients = [&](int threads, const auto& model, const auto& objective) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto grads = sae::zeros_like(model.params());
    sae::LossWorkspace<double> ws;
    sae::loss_and_gradient(model, X, objective, grads, ws);
    omp_set_num_threads(saved);
    return grads;
  };
  const auto largest_difference = [](const auto& x, const auto& y) {
    const auto apart = [](const auto& a, const auto& b) { return a.size() > 0 ? (a - b).cwiseAbs().maxCoeff() : 0.0; };
    return std::max({apart(x.W_enc, y.W_enc), apart(x.W_dec, y.W_dec), apart(x.b_enc, y.b_enc),
                     apart(x.b_dec, y.b_dec), apart(x.threshold, y.threshold), apart(x.r_mag, y.r_mag),
                     apart(x.b_mag, y.b_mag)});
  };
  const sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::JumpReLU> jump(32, 2048, sae::Init::LinearDefault, 76);
  const sae::JumpReLUObjective<double> jump_objective{0.1, 0.5};  // a wide band: most θ_f get a gradient
  const auto jump_one = gradients(1, jump, jump_objective);
  CHECK(jump_one.threshold.cwiseAbs().maxCoeff() > 0.01);
  CHECK(largest_difference(jump_one, gradients(2, jump, jump_objective)) < 1e-10);
  const sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::Gated> gated(32, 2048, sae::Init::LinearDefault, 77);
  const sae::GatedObjective<double> gated_objective{0.1};
  const auto gated_one = gradients(1, gated, gated_objective);
  CHECK(gated_one.r_mag.cwiseAbs().maxCoeff() > 0.001);
  CHECK(largest_difference(gated_one, gradients(2, gated, gated_objective)) < 1e-10);
}
#endif
