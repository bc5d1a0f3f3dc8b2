// Benchmarks of the TopK architecture: top-k selection, and a TopK training
// step's loss and gradient through the sparse kernels against the dense
// reference path (the same numbers, tested in tests/test_topk.cpp).
//   sae_benchmarks "[topk]"              small sizes (also run by the smoke test)
//   sae_benchmarks "[topk-realistic]"    D = 512, F = 4096, B = 1024, k = 32
#define CATCH_CONFIG_ENABLE_BENCHMARKING
#include <catch2/catch.hpp>

#include <sae/sae.hpp>

namespace {

using TopKModel = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK>;

void benchmark_topk(sae::Index D, sae::Index F, sae::Index B, sae::Index k) {
  TopKModel model(D, F, sae::TopK{k}, sae::Init::Tied, 1);
  model.apply_b_dec_to_input() = true;
  sae::Rng rng(2);
  sae::Batch<float> X(B, D);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.normal());
  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<float> ws;
  sae::TopKObjective<float> sparse;
  sparse.kernels = sae::Kernels::Sparse;
  sae::TopKObjective<float> dense;
  dense.kernels = sae::Kernels::Dense;
  const std::string size = "D=" + std::to_string(D) + " F=" + std::to_string(F) + " B=" + std::to_string(B) +
                           " k=" + std::to_string(k);

  sae::Batch<float> P = X * model.params().W_enc;
  std::vector<sae::Index> chosen;
  BENCHMARK("top-k selection, every row, " + size) {
    for (sae::Index b = 0; b < B; ++b) sae::detail::select_top_k(P.row(b).data(), F, k, chosen);
    return chosen.size();
  };
  BENCHMARK("encoder product A W_enc (the dense part), " + size) {
    model.encoder_product(X, ws.codes);
    return ws.codes(0, 0);
  };
  BENCHMARK("TopK loss+gradient, sparse kernels, " + size) {
    return sae::loss_and_gradient(model, X, sparse, grads, ws).loss;
  };
  BENCHMARK("TopK loss+gradient, dense GEMMs, " + size) {
    return sae::loss_and_gradient(model, X, dense, grads, ws).loss;
  };
}

}  // namespace

TEST_CASE("TopK step: sparse kernels vs dense", "[topk][benchmark]") { benchmark_topk(64, 512, 256, 16); }

TEST_CASE("TopK step at a realistic size: sparse kernels vs dense", "[.][topk-realistic][benchmark]") {
  benchmark_topk(512, 4096, 1024, 32);
}
