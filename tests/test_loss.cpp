// The seed's objective: values and gradients against PyTorch autograd
// (tests/data/seed-torch) and against central finite differences.
#include <catch2/catch.hpp>

#include <vector>

#include "support.hpp"

using sae::Dynamic;
using sae_test::fixture_tolerance;
using sae_test::relative_error;
using sae_test::seed_fixture;
using sae_test::seed_parameters;

namespace {

// The PyTorch losses from tests/data/seed-torch/reference.json.
struct ReferenceLoss {
  sae::L1Reduction reduction;
  const char* grad_prefix;
  double loss, l2, l1;
};
const ReferenceLoss kReferenceLosses[] = {
    {sae::L1Reduction::SumOverBatch, "grad_l1sum", 74.46275988090352, 73.42715542944057, 1035.604451462943},
    {sae::L1Reduction::MeanOverBatch, "grad_l1mean", 73.45951806854879, 73.42715542944057, 32.36263910821697},
};
constexpr double kReferenceL0 = 33.71875;
constexpr double kLambda = 1e-3;

template <typename Model>
Model seed_model() {
  using Scalar = typename Model::Scalar;
  return Model(seed_parameters<Scalar, Model::InputDim, Model::DictSize>("init"));
}

}  // namespace

TEMPLATE_TEST_CASE("encode and decode match PyTorch on the seed fixture", "[loss][fixture]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<double, 16, 64>),
                   (sae::SparseAutoEncoder<double, 16, Dynamic>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<float, 16, 64>)) {
  using Scalar = typename TestType::Scalar;
  const TestType model = seed_model<TestType>();
  const sae::Batch<Scalar> X = seed_fixture<Scalar>("x");
  const auto codes = model.encode(X);
  CHECK(relative_error(codes, seed_fixture<double>("codes")) <= fixture_tolerance<Scalar>());
  CHECK(relative_error(model.decode(codes), seed_fixture<double>("recon")) <= fixture_tolerance<Scalar>());
}

TEMPLATE_TEST_CASE("loss and gradients match PyTorch autograd for both L1 reductions", "[loss][fixture]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<double, 16, 64>),
                   (sae::SparseAutoEncoder<double, Dynamic, 64>), (sae::SparseAutoEncoder<float>),
                   (sae::SparseAutoEncoder<float, 16, 64>)) {
  using Scalar = typename TestType::Scalar;
  const double tol = fixture_tolerance<Scalar>();
  const TestType model = seed_model<TestType>();
  const sae::Batch<Scalar, TestType::InputDim> X = seed_fixture<Scalar>("x");

  for (const ReferenceLoss& ref : kReferenceLosses) {
    CAPTURE(ref.grad_prefix);
    const sae::L1Objective<Scalar> objective{Scalar(kLambda), ref.reduction};
    auto grads = sae::zeros_like(model.params());
    const sae::LossReport r = sae::loss_and_gradient(model, X, objective, grads);

    CHECK(r.loss == Approx(ref.loss).epsilon(tol));
    CHECK(r.l2 == Approx(ref.l2).epsilon(tol));
    CHECK(r.l1 == Approx(ref.l1).epsilon(tol));
    CHECK(r.l0 == kReferenceL0);  // a count: exact in any precision

    const std::string prefix = ref.grad_prefix;
    CHECK(relative_error(grads.W_enc, seed_fixture<double>(prefix + "_W_enc")) <= tol);
    CHECK(relative_error(grads.b_enc, seed_fixture<double>(prefix + "_b_enc")) <= tol);
    CHECK(relative_error(grads.W_dec, seed_fixture<double>(prefix + "_W_dec")) <= tol);
    CHECK(relative_error(grads.b_dec, seed_fixture<double>(prefix + "_b_dec")) <= tol);

    // The value-only path reports the same numbers.
    const sae::LossReport value_only = sae::loss(model, X, objective);
    CHECK(value_only.loss == r.loss);
    CHECK(value_only.l0 == r.l0);
  }
}

namespace {

// A random model and batch in double with no pre-activation within `margin`
// of the ReLU kink, so finite differences see a smooth function.
template <typename Model>
void make_smooth_problem(Model& model, sae::Batch<double>& X, std::uint64_t seed, double margin) {
  sae::Rng rng(seed);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    sae::init_linear_default(model.params(), rng);
    for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    sae::Batch<double> A = X;
    if (model.apply_b_dec_to_input()) A.rowwise() -= model.params().b_dec.transpose();
    const sae::Batch<double> pre = (A * model.params().W_enc).rowwise() + model.params().b_enc.transpose();
    if (pre.cwiseAbs().minCoeff() > margin && (pre.array() > 0).any()) return;
  }
  FAIL("could not draw a problem away from the ReLU kinks");
}

}  // namespace

TEMPLATE_TEST_CASE("gradients match central finite differences", "[loss][gradcheck]",
                   (sae::SparseAutoEncoder<double>), (sae::SparseAutoEncoder<double, 5, 12>),
                   (sae::SparseAutoEncoder<double, 5, Dynamic>), (sae::SparseAutoEncoder<double, Dynamic, 12>)) {
  const sae::Index D = 5, F = 12, B = 7;
  TestType model(D, F);
  model.apply_b_dec_to_input() = GENERATE(false, true);  // b_dec's second path, through the encoder's input
  sae::Batch<double> X(B, D);
  make_smooth_problem(model, X, 2024, 1e-3);

  const auto reduction = GENERATE(sae::L1Reduction::SumOverBatch, sae::L1Reduction::MeanOverBatch);
  const auto weighting = GENERATE(sae::L1Weighting::Uniform, sae::L1Weighting::DecoderNorm);
  const sae::L1Objective<double> objective{0.05, reduction, weighting};
  auto grads = sae::zeros_like(model.params());
  sae::loss_and_gradient(model, X, objective, grads);

  // Perturb every element of every parameter tensor by ±h.
  const double h = 1e-6;
  auto& params = model.params();
  std::vector<Eigen::MatrixXd> numeric;
  params.for_each([&](const char*, auto& tensor) {
    Eigen::MatrixXd g(tensor.rows(), tensor.cols());
    for (sae::Index r = 0; r < tensor.rows(); ++r)
      for (sae::Index c = 0; c < tensor.cols(); ++c) {
        const double saved = tensor(r, c);
        tensor(r, c) = saved + h;
        const double up = sae::loss(model, X, objective).loss;
        tensor(r, c) = saved - h;
        const double down = sae::loss(model, X, objective).loss;
        tensor(r, c) = saved;
        g(r, c) = (up - down) / (2 * h);
      }
    numeric.push_back(g);
  });

  std::size_t i = 0;
  grads.for_each([&](const char* name, const auto& analytic) {
    CAPTURE(name);
    if (analytic.size() == 0) {  // an architecture's vector this model does not have
      ++i;
      return;
    }
    const double scale = std::max(1.0, analytic.cwiseAbs().maxCoeff());
    const double worst = (analytic - numeric[i++]).cwiseAbs().maxCoeff();
    CHECK(worst <= 1e-7 * scale);
    CHECK(analytic.cwiseAbs().maxCoeff() > 0.0);  // every parameter really receives a gradient
  });
}

TEST_CASE("the two L1 reductions differ by exactly the batch size", "[loss]") {
  sae::SparseAutoEncoder<double> model(6, 20, sae::Init::LinearDefault, 3);
  sae::Rng rng(4);
  sae::Batch<double> X(9, 6);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
  const auto sum = sae::loss(model, X, sae::L1Objective<double>{0.1, sae::L1Reduction::SumOverBatch});
  const auto mean = sae::loss(model, X, sae::L1Objective<double>{0.1, sae::L1Reduction::MeanOverBatch});
  CHECK(sum.l2 == mean.l2);
  CHECK(sum.l1 == Approx(9 * mean.l1).epsilon(1e-14));
  CHECK(sum.loss == Approx(sum.l2 + 0.1 * sum.l1).epsilon(1e-14));
}

namespace {

// D = 1, F = 2, for hand-worked cases with the input x = 1:
// W_enc = [1, -1], b_enc = [0.5, 0], W_dec = [2; 3], b_dec = 0.
sae::SparseAutoEncoder<double, 1, 2> one_token_model() {
  sae::Parameters<double, 1, 2> p;
  p.W_enc << 1, -1;
  p.b_enc << 0.5, 0;
  p.W_dec << 2, 3;
  p.b_dec << 0;
  return sae::SparseAutoEncoder<double, 1, 2>(p);
}

}  // namespace

TEST_CASE("decoder-norm weighting: a hand-worked loss and gradient", "[loss]") {
  // one_token_model(), whose W_dec rows have norm 2 and 3 (D = 1):
  // f = [1.5, 0] → L1 = 1.5 * 2 = 3; the live latent's code gradient gains λ * 2,
  // and its decoder row gains λ * f * W_dec / ‖W_dec‖ = 0.1 * 1.5 * 1 = 0.15.
  const auto model = one_token_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  const sae::L1Objective<double> objective{0.1, sae::L1Reduction::MeanOverBatch, sae::L1Weighting::DecoderNorm};
  const auto r = sae::loss_and_gradient(model, X, objective, grads);
  CHECK(r.l1 == 3.0);
  CHECK(r.loss == Approx(4.3).epsilon(1e-15));
  CHECK(grads.W_dec(0, 0) == Approx(6.15).epsilon(1e-15));
  CHECK(grads.W_dec(1, 0) == 0.0);  // a latent that never fired feels no penalty
  CHECK(grads.W_enc(0, 0) == Approx(8.2).epsilon(1e-15));
  CHECK(grads.b_enc(0) == Approx(8.2).epsilon(1e-15));
}

TEST_CASE("a hand-worked loss and gradient", "[loss]") {
  // one_token_model() at x = 1:
  // P = [1.5, -1] → f = [1.5, 0] → x̂ = 3 → e = 2 → l2 = 4, l1 = 1.5.
  const auto model = one_token_model();
  const sae::Batch<double, 1> X = sae::Batch<double, 1>::Ones(1, 1);
  auto grads = sae::zeros_like(model.params());
  const auto r = sae::loss_and_gradient(model, X, sae::L1Objective<double>{0.1}, grads);
  CHECK(r.l2 == 4.0);
  CHECK(r.l1 == 1.5);
  CHECK(r.loss == Approx(4.15).epsilon(1e-15));
  CHECK(r.l0 == 1.0);
  // G_x̂ = 2e = 4; ∇W_dec = f ⊗ 4 = [6; 0]; ∇b_dec = 4.
  CHECK(grads.W_dec(0, 0) == 6.0);
  CHECK(grads.W_dec(1, 0) == 0.0);
  CHECK(grads.b_dec(0) == 4.0);
  // G_P = (4 * W_dec^T + 0.1) on the live latent = 8.1, dead latent 0; ∇W_enc = x ⊗ G_P.
  CHECK(grads.W_enc(0, 0) == Approx(8.1).epsilon(1e-15));
  CHECK(grads.W_enc(0, 1) == 0.0);
  CHECK(grads.b_enc(0) == Approx(8.1).epsilon(1e-15));
  CHECK(grads.b_enc(1) == 0.0);
}

TEST_CASE("a reused workspace gives the same results across batch sizes", "[loss]") {
  const sae::SparseAutoEncoder<float> model(8, 32, sae::Init::Tied, 1);
  sae::L1Objective<float> objective{1e-2f, sae::L1Reduction::MeanOverBatch};
  for (const sae::Kernels kernels : {sae::Kernels::Dense, sae::Kernels::Sparse}) {
    INFO((kernels == sae::Kernels::Dense ? "dense" : "sparse") << " kernels");
    objective.kernels = kernels;
    sae_test::check_reused_workspace(model, objective);
  }
}

TEST_CASE("the objective rejects batches of the wrong shape", "[loss][errors]") {
  sae::SparseAutoEncoder<double> model(4, 8);
  auto grads = sae::zeros_like(model.params());
  const sae::L1Objective<double> objective{1e-3};
  SAE_CHECK_THROWS(sae::loss_and_gradient(model, Eigen::MatrixXd::Ones(3, 5), objective, grads),
                       std::invalid_argument,
                       Catch::Matchers::Contains("5 columns") && Catch::Matchers::Contains("expected 4"));
  SAE_CHECK_THROWS(sae::loss_and_gradient(model, Eigen::MatrixXd(0, 4), objective, grads),
                       std::invalid_argument, Catch::Matchers::Contains("no rows"));
}

TEST_CASE("gradients are resized to the model when given the wrong size", "[loss]") {
  sae::SparseAutoEncoder<double> model(4, 8);
  sae::Parameters<double> grads(2, 3);
  sae::loss_and_gradient(model, Eigen::MatrixXd::Ones(3, 4), sae::L1Objective<double>{1e-3}, grads);
  CHECK(grads.input_dim() == 4);
  CHECK(grads.dict_size() == 8);
  CHECK_NOTHROW(grads.check_consistent());
}
