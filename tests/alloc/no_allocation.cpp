// The hot-path contract of API.md: once buffers are warm, a training step
// (loss_and_gradient with a reused workspace, then an optimizer step) and the
// buffer-taking encode/decode allocate nothing.
//
// This program is linked with -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc,
// so every allocation Eigen makes from code inlined here goes through the
// counters below. The sizes are small enough that Eigen's GEMM keeps its
// blocking buffers on the stack, so any count above zero is ours.
#include <sae/sae.hpp>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

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

template <typename Model, typename Optimizer>
void check_training_step(Model& model, Optimizer& optimizer, const char* what) {
  using Scalar = typename Model::Scalar;
  sae::Batch<Scalar> X(48, model.input_dim());
  sae::Rng rng(3);
  for (sae::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<Scalar>(rng.normal());
  const sae::L1Objective<Scalar> objective{Scalar(1e-3), sae::L1Reduction::MeanOverBatch};
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

}  // namespace

int main() {
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

  sae::SparseAutoEncoder<float> model(32, 96, sae::Init::Tied, 1);
  sae::Adam<float> adam;
  check_training_step(model, adam, "a float Adam training step");

  sae::SparseAutoEncoder<double, 16, 64> fixed(sae::Init::LinearDefault, 2);
  sae::SGD<double> sgd{1e-3};
  check_training_step(fixed, sgd, "a fixed-size double SGD training step");

  sae::Batch<float> X = sae::Batch<float>::Ones(20, 32), codes, recon;
  model.encode(X, codes);
  model.decode(codes, recon);
  const long before = allocations;
  model.encode(X, codes);
  model.decode(codes, recon);
  expect_no_allocation(before, "encode/decode into reused buffers");

  return failures == 0 ? 0 : 1;
}
