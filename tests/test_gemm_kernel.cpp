// tests/test_gemm_kernel.cpp: the dense products of sae's steps, which float
// builds with AVX-512 or AVX2 and FMA run on sae's own kernel (detail/gemm.hpp) when the result
// has 16 rows and columns or more: the encoder product H = 1 startᵀ + X W_enc
// (detail::start_rows_then_add_product, and with b_enc and ReLU's clamp,
// kernel_relu_codes and the L1 objective's relu_of_pre_activations), and decode, the code gradient and
// the decoder and encoder gradients (detail::product_into), with operands and
// results row- or column-major. Built into sae_tests (Eigen's GEMM
// underneath) and into sae.gemm_kernel (-mavx512f -mfma) and
// sae.gemm_kernel.avx2 (-mavx2 -mfma), where they go
// through the kernel: bit for bit against a chain of std::fma per element,
// against double on edge tiles, depth blocks and both ways of sharing the
// packed panels, strided inputs, reused outputs, 1 and 2 threads, and ReLU,
// TopK, JumpReLU and Gated models against the same models in double.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <sae/sae.hpp>

#include "support.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using sae::Dynamic;
using sae::Index;

namespace {

using RowBatch = sae::Batch<float>;
using EncoderWeights = Eigen::Matrix<float, Dynamic, Dynamic, Eigen::ColMajor>;
using StartRow = Eigen::Matrix<float, 1, Dynamic>;

struct Operands {
  RowBatch X;
  EncoderWeights W;
  StartRow start;
};

Operands random_operands(Index B, Index D, Index F, std::uint64_t seed) {
  Operands o;
  o.X = sae_test::normal_batch<float>(B, D, seed);
  o.W = sae_test::normal_batch<float>(D, F, seed + 1) / std::sqrt(float(D));
  o.start = sae_test::normal_batch<float>(1, F, seed + 2);
  return o;
}

// The product in double, and the bound on float's rounding: each element is
// a sum of D products, so its error is at most about D·eps·Σ_k |x_k w_k| + eps·|h|.
void check_against_double(const RowBatch& H, const Operands& o) {
  const Eigen::MatrixXd X = o.X.cast<double>(), W = o.W.cast<double>();
  const Eigen::MatrixXd exact = (X * W).rowwise() + o.start.cast<double>();
  const Eigen::MatrixXd magnitude = X.cwiseAbs() * W.cwiseAbs();
  const double eps = std::numeric_limits<float>::epsilon();
  REQUIRE(H.rows() == exact.rows());
  REQUIRE(H.cols() == exact.cols());
  Index bad = 0;
  for (Index b = 0; b < H.rows(); ++b)
    for (Index f = 0; f < H.cols(); ++f) {
      const double bound = (double(o.X.cols()) + 1) * eps * magnitude(b, f) + 2 * eps * std::abs(exact(b, f));
      if (!(std::abs(double(H(b, f)) - exact(b, f)) <= bound)) ++bad;
    }
  CHECK(bad == 0);
}

// A float ReLU model, D = 40, F = 70, with small random b_enc and b_dec
// (seeds seed .. seed + 2), centring its input or not.
sae::SparseAutoEncoder<float> relu_model_with_biases(bool centred, std::uint64_t seed) {
  sae::SparseAutoEncoder<float> model(40, 70, sae::ReLU{}, sae::Init::LinearDefault, seed);
  model.apply_b_dec_to_input() = centred;
  model.params().b_enc = sae_test::normal_batch<float>(70, 1, seed + 1) * 0.1f;
  model.params().b_dec = sae_test::normal_batch<float>(40, 1, seed + 2) * 0.1f;
  return model;
}

// A model's codes the two-pass way: its encoder product, then its
// activation's pass over it (b_enc and the clamp, or the thresholds).
template <typename Model>
RowBatch product_then_activation_pass(const Model& model, const RowBatch& X) {
  RowBatch codes;
  model.encoder_product(X, codes);
  model.activation().encode_in_place(model.params(), codes);
  return codes;
}

#if defined(SAE_GEMM_KERNEL)
// What the kernel computes, element by element: one FMA chain over k
// in order from zero, then + start. Its depth blocks store and reload the
// running float, so blocking does not change the chain.
RowBatch fma_chain_reference(const Operands& o) {
  RowBatch H(o.X.rows(), o.W.cols());
  for (Index b = 0; b < H.rows(); ++b)
    for (Index f = 0; f < H.cols(); ++f) {
      float sum = 0.0f;
      for (Index k = 0; k < o.X.cols(); ++k) sum = std::fma(o.X(b, k), o.W(k, f), sum);
      H(b, f) = sum + o.start(f);
    }
  return H;
}
#endif

}  // namespace

TEST_CASE("The encoder product matches double precision on edge tiles and depth blocks", "[gemm-kernel]") {
  // Tokens around the kernel's minimum (16) and its 12-token tiles (6 on
  // AVX2); latents around its 32-latent tiles (16); depths of one input, odd
  // sizes, and beyond the 1024-input block (1030 = two blocks of 515).
#if defined(SAE_GEMM_KERNEL)
  static_assert(sae::detail::gemm::min_side == 16, "update the batch sizes below");
#endif
  const Index B = GENERATE(1, 15, 16, 24, 25, 101);
  const Index F = GENERATE(1, 17, 32, 33, 95);
  const Index D = GENERATE(1, 7, 64, 1030);
  CAPTURE(B, D, F);
  const Operands o = random_operands(B, D, F, 100 + B + 7 * D + 13 * F);
  RowBatch H;
  sae::detail::start_rows_then_add_product(o.start, o.X, o.W, H);
  check_against_double(H, o);
#if defined(SAE_GEMM_KERNEL)
  if (std::min(B, F) >= sae::detail::gemm::min_side) CHECK(H == fma_chain_reference(o));
#endif
  // ReLU's codes on the kernel: + b_enc and the clamp as each tile is
  // stored, after the last depth block only; exactly the separate passes.
  const StartRow b_enc = sae_test::normal_batch<float>(1, F, 5);
  RowBatch codes;
  const bool fused = sae::detail::kernel_relu_codes(o.start, b_enc, o.X, o.W, codes);
  if (fused) {
    RowBatch expected = H;
    for (Index b = 0; b < B; ++b) expected.row(b) = (expected.row(b) + b_enc).cwiseMax(0.0f);
    CHECK(codes == expected);
  }
  // JumpReLU's likewise: + b_enc, then p > θ ? p : 0, with thresholds of
  // both signs.
  const StartRow threshold = sae_test::normal_batch<float>(1, F, 6) * 0.5f;
  const bool fused_jump = sae::detail::kernel_jumprelu_codes(o.start, b_enc, threshold, o.X, o.W, codes);
  CHECK(fused_jump == fused);
  if (fused_jump) {
    RowBatch expected(B, F);
    for (Index b = 0; b < B; ++b)
      for (Index f = 0; f < F; ++f) {
        const float pre = H(b, f) + b_enc(f);
        expected(b, f) = pre > threshold(f) ? pre : 0.0f;
      }
    CHECK(codes == expected);
  }
#if defined(SAE_GEMM_KERNEL)
  CHECK(fused == (std::min(B, F) >= sae::detail::gemm::min_side));
#else
  CHECK_FALSE(fused);
#endif
}

TEST_CASE("A float ReLU model's codes are its encoder product then ReLU's pass, bit for bit", "[gemm-kernel]") {
  // On the kernel, encode runs the two in one pass over the codes.
  const sae::SparseAutoEncoder<float> model = relu_model_with_biases(GENERATE(false, true), 17);
  const RowBatch X = sae_test::normal_batch<float>(50, 40, 20);
  const RowBatch codes = model.encode(X);
  REQUIRE((codes.array() > 0).any());
  REQUIRE((codes.array() == 0).any());
  CHECK(codes == product_then_activation_pass(model, X));
}

TEST_CASE("A float JumpReLU model's codes are its encoder product then JumpReLU's pass, bit for bit",
          "[gemm-kernel]") {
  // On the kernel, encode applies b_enc and the thresholds as each tile is stored.
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::JumpReLU> model(40, 70, sae::JumpReLU{}, sae::Init::Tied, 25);
  model.apply_b_dec_to_input() = GENERATE(false, true);
  model.params().b_enc = sae_test::normal_batch<float>(70, 1, 26) * 0.1f;
  model.params().b_dec = sae_test::normal_batch<float>(40, 1, 27) * 0.1f;
  model.params().threshold = (sae_test::normal_batch<float>(70, 1, 28) * 0.3f).array() + 0.2f;
  const RowBatch X = sae_test::normal_batch<float>(50, 40, 29);
  const RowBatch codes = model.encode(X);
  REQUIRE((codes.array() > 0).any());
  REQUIRE((codes.array() < 0).any());  // some thresholds are negative
  REQUIRE((codes.array() == 0).any());
  CHECK(codes == product_then_activation_pass(model, X));
}

TEST_CASE("The L1 objective's codes are its pre-activations then a pass of cwiseMax, bit for bit", "[gemm-kernel]") {
  // On the kernel the clamp runs in the product's epilogue, and the row pass
  // after it only sums and counts the codes.
  const sae::SparseAutoEncoder<float> model = relu_model_with_biases(GENERATE(false, true), 21);
  const RowBatch X = sae_test::normal_batch<float>(50, 40, 24);
  sae::LossWorkspace<float> expected;
  sae::detail::pre_activations(model, X, expected);
  const RowBatch clamped = expected.codes.cwiseMax(0.0f);
  REQUIRE((clamped.array() > 0).any());
  REQUIRE((clamped.array() == 0).any());
  sae::LossWorkspace<float> ws;
  const auto report = sae::L1Objective<float>{1e-3f}.evaluate(model, X, ws);
  CHECK(ws.codes == clamped);
  CHECK(report.l0 == double((clamped.array() > 0).count()) / 50);
}

TEST_CASE("The encoder product reads strided rows and reuses its output", "[gemm-kernel]") {
  const Index B = 77, D = 40, F = 70, stride = D + 5;
  const Operands o = random_operands(B, D, F, 7);
  // X's rows `stride` floats apart, inside a wider buffer.
  std::vector<float> buffer(static_cast<std::size_t>(B * stride), std::nanf(""));
  Eigen::Map<RowBatch, 0, Eigen::OuterStride<>> X(buffer.data(), B, D, Eigen::OuterStride<>(stride));
  X = o.X;
  RowBatch H = RowBatch::Constant(B + 30, F + 50, std::nanf(""));  // an earlier, larger result
  sae::detail::start_rows_then_add_product(o.start, X, o.W, H);
  check_against_double(H, o);
  // The start row as the objectives pass it: a transposed column.
  const Eigen::VectorXf start_column = o.start.transpose();
  RowBatch H2;
  sae::detail::start_rows_then_add_product(start_column.transpose(), o.X, o.W, H2);
  CHECK(H2 == H);
}

TEST_CASE("The product without a start row takes a transposed row-major W, as W_dec's", "[gemm-kernel]") {
  const Index B = GENERATE(10, 100);
  const Operands o = random_operands(B, 50, 90, 21);
  // W_dec is F x D row-major; the code gradient multiplies by its transpose.
  const Eigen::Matrix<float, Dynamic, Dynamic, Eigen::RowMajor> W_dec = o.W.transpose();
  RowBatch H;
  sae::detail::product_into(o.X, W_dec.transpose(), H);
  Operands zero_start = o;
  zero_start.start.setZero();
  check_against_double(H, zero_start);
#if defined(SAE_GEMM_KERNEL)
  if (B >= sae::detail::gemm::min_side) CHECK(H == fma_chain_reference(zero_start));  // F = 90
#endif
}

namespace {

template <int Layout>
using FloatMatrix = Eigen::Matrix<float, Dynamic, Dynamic, Layout>;

// C = A B for one choice of layouts: within float's rounding bound of double,
// and, on the kernel, bit for bit a chain of std::fma over k per element.
template <int LayoutA, int LayoutB, int LayoutC>
void check_product(Index M, Index K, Index N, std::uint64_t seed) {
  CAPTURE(LayoutA, LayoutB, LayoutC);
  const FloatMatrix<LayoutA> A = sae_test::normal_batch<float>(M, K, seed);
  const FloatMatrix<LayoutB> B = sae_test::normal_batch<float>(K, N, seed + 1) / std::sqrt(float(K));
  FloatMatrix<LayoutC> C = FloatMatrix<LayoutC>::Constant(3, 2, std::nanf(""));  // resized by product_into
  sae::detail::product_into(A, B, C);
  REQUIRE(C.rows() == M);
  REQUIRE(C.cols() == N);
  const Eigen::MatrixXd exact = A.template cast<double>() * B.template cast<double>();
  const Eigen::MatrixXd magnitude = A.template cast<double>().cwiseAbs() * B.template cast<double>().cwiseAbs();
  const double eps = std::numeric_limits<float>::epsilon();
  Index bad = 0, unlike_chain = 0;
  for (Index i = 0; i < M; ++i)
    for (Index j = 0; j < N; ++j) {
      if (!(std::abs(double(C(i, j)) - exact(i, j)) <= double(K + 1) * eps * magnitude(i, j))) ++bad;
      float chain = 0.0f;
      for (Index k = 0; k < K; ++k) chain = std::fma(A(i, k), B(k, j), chain);
      if (!(C(i, j) == chain)) ++unlike_chain;
    }
  CHECK(bad == 0);
#if defined(SAE_GEMM_KERNEL)
  if (std::min(M, N) >= sae::detail::gemm::min_side) CHECK(unlike_chain == 0);
#endif
}

}  // namespace

TEST_CASE("Every product matches double precision for each layout of its operands and result", "[gemm-kernel]") {
  // C = A B, M x K times K x N, as the steps' products: decode (codes times
  // W_dec, both row-major), the code gradient (times W_decᵀ, column-major),
  // the decoder gradient (codesᵀ, column-major, times the error) and the
  // encoder gradient (into column-major W_enc). The sizes take both sides of
  // the kernel's choice of which operand to pack whole (the side with fewer
  // rows or columns of C), edge tiles of 12 and 32, one input, and three
  // depth blocks (2100 inputs).
  const auto [M, K, N] = GENERATE(table<Index, Index, Index>({{16, 1, 16},
                                                              {25, 7, 95},
                                                              {101, 64, 33},
                                                              {95, 40, 200},
                                                              {200, 40, 95},
                                                              {37, 2100, 70},
                                                              {70, 2100, 37}}));
  CAPTURE(M, K, N);
  const std::uint64_t seed = 300 + M + 7 * K + 13 * N;
  check_product<Eigen::RowMajor, Eigen::RowMajor, Eigen::RowMajor>(M, K, N, seed);
  check_product<Eigen::RowMajor, Eigen::ColMajor, Eigen::RowMajor>(M, K, N, seed);
  check_product<Eigen::ColMajor, Eigen::RowMajor, Eigen::RowMajor>(M, K, N, seed);
  check_product<Eigen::ColMajor, Eigen::ColMajor, Eigen::RowMajor>(M, K, N, seed);
  check_product<Eigen::RowMajor, Eigen::RowMajor, Eigen::ColMajor>(M, K, N, seed);
  check_product<Eigen::RowMajor, Eigen::ColMajor, Eigen::ColMajor>(M, K, N, seed);
  check_product<Eigen::ColMajor, Eigen::RowMajor, Eigen::ColMajor>(M, K, N, seed);
  check_product<Eigen::ColMajor, Eigen::ColMajor, Eigen::ColMajor>(M, K, N, seed);
}

#if defined(SAE_GEMM_KERNEL)
TEST_CASE("The kernel cuts a large shared side into chunks with the same bits", "[gemm-kernel]") {
  // The limit on the shared panels set low: chunks of 12 tokens, or of 32
  // latents (16 on AVX2), where the start and bias rows must follow the chunk.
  namespace gemm = sae::detail::gemm;
  const auto [B, F] = GENERATE(table<Index, Index>({{70, 100}, {100, 70}}));
  CAPTURE(B, F);
  const Index D = 50;
  const Operands o = random_operands(B, D, F, 41);
  const StartRow bias = sae_test::normal_batch<float>(1, F, 44);
  const gemm::StridedMatrix X{o.X.data(), o.X.outerStride(), 1}, W{o.W.data(), 1, o.W.outerStride()};
  const gemm::Epilogue epilogue{o.start.data(), bias.data(), true};
  RowBatch whole(B, F), chunked(B, F);
  gemm::product(X, W, whole.data(), F, B, D, F, epilogue);
  gemm::product(X, W, chunked.data(), F, B, D, F, epilogue, Index(sizeof(float)) * D * 12);
  CHECK(chunked == whole);
  RowBatch expected = fma_chain_reference(o);
  for (Index b = 0; b < B; ++b) expected.row(b) = (expected.row(b) + bias).cwiseMax(0.0f);
  CHECK(whole == expected);
}
#endif

TEST_CASE("The gradient products read transposed, strided operands", "[gemm-kernel]") {
  // ∇W_enc = Xᵀ G into column-major W_enc, with X's rows inside a wider
  // buffer (a block of a larger batch), and ∇W_dec = Hᵀ E.
  const Index B = 60, D = 40, F = 70, stride = D + 3;
  const RowBatch G = sae_test::normal_batch<float>(B, F, 31), E = sae_test::normal_batch<float>(B, D, 32);
  std::vector<float> buffer(static_cast<std::size_t>(B * stride), std::nanf(""));
  Eigen::Map<RowBatch, 0, Eigen::OuterStride<>> X(buffer.data(), B, D, Eigen::OuterStride<>(stride));
  X = sae_test::normal_batch<float>(B, D, 33);
  EncoderWeights grad_W_enc;
  sae::detail::product_into(X.transpose(), G, grad_W_enc);
  const Eigen::MatrixXd expected_W_enc = X.cast<double>().transpose() * G.cast<double>();
  CHECK(sae_test::relative_error(grad_W_enc.cast<double>().eval(), expected_W_enc) < 1e-5);
  Eigen::Matrix<float, Dynamic, Dynamic, Eigen::RowMajor> grad_W_dec;
  sae::detail::product_into(G.transpose(), E, grad_W_dec);
  const Eigen::MatrixXd expected_W_dec = G.cast<double>().transpose() * E.cast<double>();
  CHECK(sae_test::relative_error(grad_W_dec.cast<double>().eval(), expected_W_dec) < 1e-5);
}

// The same model in float and in double (float's weights, exactly), on the
// same inputs: the float model's encoder product and dense code gradient run
// on the kernel, the double model's on Eigen's GEMM.
template <typename Activation, typename FloatObjective, typename DoubleObjective>
void check_float_against_double(const sae::SparseAutoEncoder<double, Dynamic, Dynamic, Activation>& reference,
                                const FloatObjective& objective, const DoubleObjective& objective_double) {
  const Index B = 130;
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, Activation> model(reference.input_dim(), reference.dict_size(),
                                                                    reference.activation());
  model.apply_b_dec_to_input() = reference.apply_b_dec_to_input();
  sae_test::cast_parameters(reference.params(), model.params());
  sae::SparseAutoEncoder<double, Dynamic, Dynamic, Activation> same = reference;
  sae_test::cast_parameters(model.params(), same.params());
  const sae::Batch<float> X = sae_test::normal_batch<float>(B, model.input_dim(), 8);
  const sae::Batch<double> X_double = X.cast<double>();

  CHECK(sae_test::relative_error(model.encode(X), same.encode(X_double)) < 1e-5);

  auto grads = sae::zeros_like(model.params());
  auto grads_double = sae::zeros_like(same.params());
  const auto result = sae::loss_and_gradient(model, X, objective, grads);
  const auto result_double = sae::loss_and_gradient(same, X_double, objective_double, grads_double);
  CHECK(result.l0 == result_double.l0);
  CHECK(result.loss == Approx(result_double.loss).epsilon(1e-5));
  CHECK(sae_test::relative_error(grads.W_enc, grads_double.W_enc) < 1e-4);
  CHECK(sae_test::relative_error(grads.b_enc, grads_double.b_enc) < 1e-4);
  CHECK(sae_test::relative_error(grads.W_dec, grads_double.W_dec) < 1e-4);
  CHECK(sae_test::relative_error(grads.b_dec, grads_double.b_dec) < 1e-4);
  if (grads.r_mag.size() > 0) CHECK(sae_test::relative_error(grads.r_mag, grads_double.r_mag) < 1e-4);
  if (grads.b_mag.size() > 0) CHECK(sae_test::relative_error(grads.b_mag, grads_double.b_mag) < 1e-4);
}

TEST_CASE("A float ReLU model's encode and L1 gradients match the same model in double", "[gemm-kernel]") {
  const bool centred = GENERATE(false, true);
  const auto kernels = GENERATE(sae::Kernels::Dense, sae::Kernels::Sparse);
  sae::SparseAutoEncoder<double> reference(48, 200, sae::ReLU{}, sae::Init::LinearDefault, 5);
  reference.apply_b_dec_to_input() = centred;
  reference.params().b_enc.setConstant(-0.05);
  reference.params().b_dec = sae_test::normal_batch<double>(48, 1, 6) * 0.1;
  sae::L1Objective<float> objective{0.01f};
  objective.kernels = kernels;
  sae::L1Objective<double> objective_double{0.01};
  objective_double.kernels = kernels;
  check_float_against_double(reference, objective, objective_double);
}

TEST_CASE("A float TopK model's gradients match the same model in double", "[gemm-kernel]") {
  const auto kernels = GENERATE(sae::Kernels::Dense, sae::Kernels::Sparse);
  sae::SparseAutoEncoder<double, Dynamic, Dynamic, sae::TopK> reference(48, 200, sae::TopK{8},
                                                                        sae::Init::LinearDefault, 9);
  reference.apply_b_dec_to_input() = true;
  reference.params().b_dec = sae_test::normal_batch<double>(48, 1, 10) * 0.1;
  sae::TopKObjective<float> objective;
  objective.kernels = kernels;
  sae::TopKObjective<double> objective_double;
  objective_double.kernels = kernels;
  check_float_against_double(reference, objective, objective_double);
}

// A fresh model of the architecture, with a nonzero b_dec, in float against
// double.
template <typename Activation, typename FloatObjective, typename DoubleObjective>
void check_fresh_model(Activation activation, std::uint64_t seed, const FloatObjective& objective,
                       const DoubleObjective& objective_double) {
  sae::SparseAutoEncoder<double, Dynamic, Dynamic, Activation> reference(48, 200, activation,
                                                                         sae::Init::LinearDefault, seed);
  reference.params().b_dec = sae_test::normal_batch<double>(48, 1, seed + 1) * 0.1;
  check_float_against_double(reference, objective, objective_double);
}

TEST_CASE("A float Gated model's gradients match the same model in double", "[gemm-kernel]") {
  // Gated's backward pass runs both of its code gradients through the kernel.
  check_fresh_model(sae::Gated{}, 12, sae::GatedObjective<float>{0.01f}, sae::GatedObjective<double>{0.01});
}

TEST_CASE("A float JumpReLU model's gradients match the same model in double", "[gemm-kernel]") {
  check_fresh_model(sae::JumpReLU{}, 14, sae::JumpReLUObjective<float>{0.01f},
                    sae::JumpReLUObjective<double>{0.01});
}

#if defined(_OPENMP)
TEST_CASE("The encoder product gives the same bits on 1 and 2 threads", "[gemm-kernel][openmp]") {
  const Operands o = random_operands(150, 96, 300, 11);
  const int saved = omp_get_max_threads();
  RowBatch one, two;
  omp_set_num_threads(1);
  sae::detail::start_rows_then_add_product(o.start, o.X, o.W, one);
  omp_set_num_threads(2);
  sae::detail::start_rows_then_add_product(o.start, o.X, o.W, two);
  omp_set_num_threads(saved);
  CHECK(one == two);
  check_against_double(one, o);
}

TEST_CASE("The gradient products give the same bits on 1 and 2 threads", "[gemm-kernel][openmp]") {
  // More rows of C than columns: the kernel shares W's panels and splits the
  // rows; a column-major result is computed as its transpose.
  const RowBatch G = sae_test::normal_batch<float>(150, 300, 12), X = sae_test::normal_batch<float>(150, 96, 13);
  const int saved = omp_get_max_threads();
  EncoderWeights one, two;
  omp_set_num_threads(1);
  sae::detail::product_into(X.transpose(), G, one);
  omp_set_num_threads(2);
  sae::detail::product_into(X.transpose(), G, two);
  omp_set_num_threads(saved);
  CHECK(one == two);
  const Eigen::MatrixXd expected = X.cast<double>().transpose() * G.cast<double>();
  CHECK(sae_test::relative_error(one.cast<double>().eval(), expected) < 1e-5);
}
#endif
