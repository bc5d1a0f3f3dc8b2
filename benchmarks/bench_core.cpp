// Benchmarks of the core training step's parts, for the seed's ReLU SAE:
// encode, decode (of fresh codes, and of codes as sparse as a trained SAE's
// beside the dense product of the same codes), the L1 objective's loss and
// gradient (fresh codes, about half the latents firing, and codes as sparse
// as a trained SAE's), and one Adam step.
//   sae_benchmarks "[core]"              D = 64, F = 512, B = 256 (also run by the smoke test)
//   sae_benchmarks "[core-realistic]"    D = 768, F = 8192, B = 1024, hidden: a loss and
//                                        gradient takes seconds on two cores, so
//                                        pass e.g. --benchmark-samples 10
// The end-to-end step against PyTorch is sae_bench / compare_pytorch.py.
#define CATCH_CONFIG_ENABLE_BENCHMARKING
#include <catch2/catch.hpp>

#include <sae/sae.hpp>

#include "support.hpp"

namespace {

using ReLUModel = sae::SparseAutoEncoder<float>;

std::string size_label(sae::Index D, sae::Index F, sae::Index B) {
  return "D=" + std::to_string(D) + " F=" + std::to_string(F) + " B=" + std::to_string(B);
}

void benchmark_encode_decode(sae::Index D, sae::Index F, sae::Index B, double sparse_l0) {
  const ReLUModel model(D, F, sae::Init::LinearDefault, 1);
  const sae::Batch<float> X = sae_bench::standard_normal_batch(B, D, 2);
  const std::string size = size_label(D, F, B);
  ReLUModel::CodeBatch codes;
  ReLUModel::InputBatch recon;
  model.encode(X, codes);  // sizes the buffers, and gives decode its (about half nonzero) codes

  BENCHMARK("encode X -> codes, " + size) {
    model.encode(X, codes);
    return codes(0, 0);
  };
  BENCHMARK("decode codes -> X^, " + size) {
    model.decode(codes, recon);
    return recon(0, 0);
  };

  // A trained SAE's codes: decode gathers the active decoder rows; the dense
  // product of the same codes (what decode did before) is the baseline.
  ReLUModel sparse = model;
  sae_bench::make_codes_sparse(sparse, sparse_l0);
  ReLUModel::CodeBatch sparse_codes;
  sparse.encode(X, sparse_codes);
  const std::string sparse_label = "sparse codes (L0 ~" + std::to_string(static_cast<int>(sparse_l0)) + "), ";
  BENCHMARK("decode " + sparse_label + size) {
    sparse.decode(sparse_codes, recon);
    return recon(0, 0);
  };
  BENCHMARK("dense product of the same " + sparse_label + size) {
    sae::detail::start_rows_then_add_product(sparse.params().b_dec.transpose(), sparse_codes, sparse.params().W_dec,
                                             recon);
    return recon(0, 0);
  };
}

// Loss and gradient with fresh codes and with about `sparse_l0` latents per
// token (the library's kernel choice, then each kernel forced).
void benchmark_l1_loss_and_gradient(sae::Index D, sae::Index F, sae::Index B, double sparse_l0) {
  const sae::Batch<float> X = sae_bench::standard_normal_batch(B, D, 2);
  const std::string size = size_label(D, F, B);
  sae::LossWorkspace<float> ws;

  ReLUModel fresh(D, F, sae::Init::LinearDefault, 1);
  auto grads = sae::zeros_like(fresh.params());
  const sae::L1Objective<float> automatic{1e-3f, sae::L1Reduction::SumOverBatch};
  BENCHMARK("ReLU L1 loss+gradient, fresh codes (~F/2 fire), " + size) {
    return sae::loss_and_gradient(fresh, X, automatic, grads, ws).loss;
  };

  ReLUModel sparse = fresh;
  sae_bench::make_codes_sparse(sparse, sparse_l0);
  const std::string sparse_label = "sparse codes (L0 ~" + std::to_string(static_cast<int>(sparse_l0)) + "), ";
  BENCHMARK("ReLU L1 loss+gradient, " + sparse_label + size) {
    return sae::loss_and_gradient(sparse, X, automatic, grads, ws).loss;
  };

  for (const auto kernels : {sae::Kernels::Dense, sae::Kernels::Sparse}) {
    sae::L1Objective<float> objective = automatic;
    objective.kernels = kernels;
    BENCHMARK("ReLU L1 loss+gradient, " + std::string(sae_bench::kernels_name(kernels)) + " kernels, " +
              sparse_label + size) {
      return sae::loss_and_gradient(sparse, X, objective, grads, ws).loss;
    };
  }
}

void benchmark_adam_step(sae::Index D, sae::Index F) {
  ReLUModel model(D, F, sae::Init::LinearDefault, 1);
  auto grads = sae::zeros_like(model.params());
  grads.for_each([](const char*, auto& g) { g.setConstant(1e-3f); });
  sae::Adam<float> adam(1e-3f);
  adam.step(model.params(), grads);  // sizes the moments outside the timing
  BENCHMARK("Adam step, " + std::to_string(2 * D * F + D + F) + " parameters (D=" + std::to_string(D) +
            " F=" + std::to_string(F) + ")") {
    adam.step(model.params(), grads);
    return model.params().b_dec(0);
  };
}

}  // namespace

TEST_CASE("Core step parts: encode, decode, L1 loss+gradient, Adam", "[core][benchmark]") {
  benchmark_encode_decode(64, 512, 256, 4);
  benchmark_l1_loss_and_gradient(64, 512, 256, 4);
  benchmark_adam_step(64, 512);
}

TEST_CASE("Core step parts at a realistic size", "[.][core-realistic][benchmark]") {
  benchmark_encode_decode(768, 8192, 1024, 64);
  benchmark_l1_loss_and_gradient(768, 8192, 1024, 64);
  benchmark_adam_step(768, 8192);
}
