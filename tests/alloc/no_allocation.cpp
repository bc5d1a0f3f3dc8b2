// The hot-path contract of API.md: once buffers are warm, a training step
// (loss_and_gradient with a reused workspace, then an optimizer step) and the
// buffer-taking encode/decode allocate nothing.
//
// This program is linked with -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc,
// so every allocation Eigen makes from code inlined here goes through the
// counters below; the standard containers allocate through operator new, which
// calls malloc from inside libstdc++ where the wrapping does not reach, so the
// program replaces operator new (and its aligned form) with counting ones too.
// The sizes are small enough that Eigen's GEMM keeps its blocking buffers on
// the stack, so any count above zero is ours.
#include <sae/sae.hpp>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "../cpu_skip.hpp"

extern "C" {
void* __real_malloc(std::size_t size);
void* __real_realloc(void* p, std::size_t size);
void* __real_calloc(std::size_t n, std::size_t size);

static long allocations = 0;

void* __wrap_malloc(std::size_t size) {
  ++allocations;
  return __real_malloc(size);
}
void* __wrap_realloc(void* p, std::size_t size) {
  ++allocations;
  return __real_realloc(p, size);
}
void* __wrap_calloc(std::size_t n, std::size_t size) {
  ++allocations;
  return __real_calloc(n, size);
}
}

// operator new[] and the nothrow forms call these; delete frees what they return.
void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = __real_malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  ++allocations;
  const std::size_t a = static_cast<std::size_t>(alignment);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
// GCC 12 inlines these into callers and then reports free() of a pointer from
// operator new (-Wmismatched-new-delete), depending on how main() inlines: here
// the two are malloc and free by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

int failures = 0;

void expect_no_allocation(long before, const char* what) {
  const long made = allocations - before;
  if (made != 0) {
    std::fprintf(stderr, "FAILED: %s allocated %ld times once warm\n", what, made);
    ++failures;
  } else {
    std::printf("ok: %s allocates nothing once warm\n", what);
  }
}

template <typename Model, typename Optimizer, typename Objective>
void check_training_step(Model& model, Optimizer& optimizer, const Objective& objective, const char* what) {
  using Scalar = typename Model::Scalar;
  sae::Batch<Scalar> X(48, model.input_dim());
  sae::Rng rng(3);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<Scalar>(rng.normal());
  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<Scalar> workspace;

  sae::loss_and_gradient(model, X, objective, grads, workspace);  // warm up: sizes buffers and state
  optimizer.step(model.params(), grads);
  // Counting only starts after the first allocation check above: if the
  // wrapper were not in place, this would catch it.
  const long before = allocations;
  for (int step = 0; step < 3; ++step) {
    sae::loss_and_gradient(model, X, objective, grads, workspace);
    optimizer.step(model.params(), grads);
  }
  expect_no_allocation(before, what);
}

// A batch with more active codes than any before it (but within a quarter
// more) must not reallocate the sparse kernels' buffers: they grow with
// headroom, since the count of active codes changes from batch to batch.
void check_more_active_codes_than_before() {
  sae::L1Objective<float> objective{1e-3f, sae::L1Reduction::MeanOverBatch};
  objective.kernels = sae::Kernels::Sparse;
  sae::SparseAutoEncoder<float> model(32, 96, sae::Init::Tied, 4);
  sae::Batch<float> X(48, model.input_dim());
  sae::Rng rng(5);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.normal());
  // X_more: X with its sparsest row replaced by its densest.
  sae::Batch<float> codes;
  model.encode(X, codes);
  const Eigen::VectorXi active = (codes.array() > 0.0f).rowwise().count().cast<int>();
  sae::Index densest = 0, sparsest = 0;
  active.maxCoeff(&densest);
  active.minCoeff(&sparsest);
  const int total = active.sum(), more = total + active(densest) - active(sparsest);
  if (!(more > total && 4 * more <= 5 * total)) {
    std::fprintf(stderr, "FAILED: the test batch's copy has %d active codes against %d, not up to a quarter more\n",
                 more, total);
    ++failures;
    return;
  }
  sae::Batch<float> X_more = X;
  X_more.row(sparsest) = X.row(densest);
  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<float> workspace;
  sae::loss_and_gradient(model, X, objective, grads, workspace);  // sizes the buffers for X's codes
  const long before = allocations;
  sae::loss_and_gradient(model, X_more, objective, grads, workspace);
  expect_no_allocation(before, "a sparse-kernel step on more active codes than any before");
}

}  // namespace

int main() {
  // Built with -mavx512f -mfma or -mavx2 -mfma for the GEMM kernel
  // (sae.no_allocation.avx512, .avx2): not on a CPU without them.
  if (sae_test::cpu_lacks_build_target()) return sae_test::ctest_skip_code;
#if defined(_OPENMP)
  // Under OpenMP Eigen's GEMM allocates its packing buffers on every
  // parallel call: inside the GEMM, where the allocation budget allows it.
  // It runs on one thread here; sae's own loops keep all of OpenMP's.
  Eigen::setNbThreads(1);
#endif
  // The counter must see Eigen's allocations, or this test proves nothing.
  const long start = allocations;
  {
    sae::Batch<float> probe(100, 100);
    probe.setZero();
    asm volatile("" : : "r"(probe.data()) : "memory");  // keep the compiler from eliding the allocation
  }
  if (allocations == start) {
    std::fprintf(stderr, "FAILED: the malloc wrapper does not see Eigen's allocations\n");
    return 1;
  }
  const long before_vector = allocations;
  {
    std::vector<int> probe(1000);
    asm volatile("" : : "r"(probe.data()) : "memory");
  }
  if (allocations == before_vector) {
    std::fprintf(stderr, "FAILED: the counting operator new does not see std::vector's allocations\n");
    return 1;
  }

  const sae::L1Objective<float> l1{1e-3f, sae::L1Reduction::MeanOverBatch};
  sae::SparseAutoEncoder<float> model(32, 96, sae::Init::Tied, 1);
  sae::Adam<float> adam;
  check_training_step(model, adam, l1, "a float Adam training step");

  // The sparse kernels' buffers keep their capacity; they grow only when a
  // batch has a quarter more active codes than any before it.
  sae::L1Objective<float> l1_sparse{1e-3f, sae::L1Reduction::MeanOverBatch};
  l1_sparse.kernels = sae::Kernels::Sparse;
  sae::SparseAutoEncoder<float> sparse_model(32, 96, sae::Init::Tied, 1);
  sae::Adam<float> adam_sparse;
  check_training_step(sparse_model, adam_sparse, l1_sparse, "a float Adam training step on the sparse kernels");
  check_more_active_codes_than_before();

  sae::SparseAutoEncoder<double, 16, 64> fixed(sae::Init::LinearDefault, 2);
  sae::SGD<double> sgd{1e-3};
  check_training_step(fixed, sgd, sae::L1Objective<double>{1e-3}, "a fixed-size double SGD training step");

  // The other architectures, centred inputs, AuxK busy.
  sae::TopKObjective<float> topk_objective;
  for (sae::Index f = 0; f < 96; f += 3) topk_objective.dead_latents.push_back(f);
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK> topk(32, 96, sae::TopK{4});
  topk.apply_b_dec_to_input() = true;
  sae::Adam<float> adam_topk;
  check_training_step(topk, adam_topk, topk_objective, "a TopK step with AuxK (sparse kernels)");
  sae::TopKObjective<float> topk_dense_objective = topk_objective;
  topk_dense_objective.kernels = sae::Kernels::Dense;
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK> topk_dense = topk;
  sae::Adam<float> adam_topk_dense;
  check_training_step(topk_dense, adam_topk_dense, topk_dense_objective, "a TopK step with AuxK (dense products)");
  // Wide enough for the TopK screen (detail/gemm_screened_topk.hpp), where
  // it is built: its candidates vary from step to step.
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK> topk_wide(32, 4096, sae::TopK{4});
  topk_wide.apply_b_dec_to_input() = true;
  sae::TopKObjective<float> topk_wide_objective;
  for (sae::Index f = 0; f < 4096; f += 5) topk_wide_objective.dead_latents.push_back(f);
  topk_wide_objective.aux_k = 8;
  sae::Adam<float> adam_topk_wide;
  check_training_step(topk_wide, adam_topk_wide, topk_wide_objective, "a wide TopK step with AuxK");
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::BatchTopK> batch_topk(32, 96, sae::BatchTopK{4});
  sae::Adam<float> adam_batch_topk;
  check_training_step(batch_topk, adam_batch_topk, topk_objective, "a BatchTopK step");
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::JumpReLU> jumprelu(32, 96, sae::JumpReLU{});
  sae::Adam<float> adam_jumprelu;
  sae::JumpReLUObjective<float> jumprelu_objective;
  jumprelu_objective.l0_coefficient = 1e-3f;
  jumprelu_objective.target_l0 = 8;
  check_training_step(jumprelu, adam_jumprelu, jumprelu_objective, "a JumpReLU step");
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::Gated> gated(32, 96, sae::Gated{});
  gated.apply_b_dec_to_input() = true;
  sae::Adam<float> adam_gated;
  sae::GatedObjective<float> gated_objective;
  gated_objective.l1_coefficient = 1e-2f;
  check_training_step(gated, adam_gated, gated_objective, "a Gated step");

  sae::Batch<float> X = sae::Batch<float>::Ones(20, 32), codes, recon;
  model.encode(X, codes);
  model.decode(codes, recon);
  const long before = allocations;
  model.encode(X, codes);
  model.decode(codes, recon);
  expect_no_allocation(before, "encode/decode into reused buffers");
  topk.encode(X, codes);  // warms the selection buffers
  gated.encode(X, codes);  // and the magnitude scale
  sae::Batch<float> wide_codes;
  topk_wide.encode(X, wide_codes);
  const long before_topk = allocations;
  topk.encode(X, codes);
  gated.encode(X, codes);
  topk_wide.encode(X, wide_codes);
  expect_no_allocation(before_topk, "TopK and Gated encode into reused buffers");

  // TopK's codes (4 of 96 per token) are sparse enough for decode's gather,
  // whose nonzero entries are kept per thread.
  topk.decode(codes, recon);
  const long before_sparse_decode = allocations;
  topk.decode(codes, recon);
  expect_no_allocation(before_sparse_decode, "decode of sparse codes into a reused buffer");

  // 100 tokens, more than the steps above: built with AVX-512 or AVX2, the encoder
  // GEMM kernel (detail/gemm.hpp) keeps its packing buffers per thread,
  // sized by the largest batch so far.
  sae::Batch<float> X_wide(100, 32);
  X_wide.setConstant(0.5f);
  model.encode(X_wide, codes);
  const long before_wide = allocations;
  model.encode(X_wide, codes);
  expect_no_allocation(before_wide, "encode of 100 tokens into a reused buffer");

  return failures == 0 ? 0 : 1;
}
