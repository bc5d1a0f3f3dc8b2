// One of two identical translation units of the ODR test (see odr.hpp).
#include <sae/train.hpp>  // includes sae.hpp: every header of the library

#include <string>

#include "odr.hpp"

OdrReport odr_b(std::uint64_t seed) {
  OdrReport report{};
  report.version_address = &sae::version;

  sae::Rng rng(seed);
  for (int i = 0; i < 100; ++i) report.normal_sum += rng.normal(0.0, 2.0);
  report.below = rng.below(1000);

  sae::Batch<float> x(3, 5);
  for (sae::Index i = 0; i < x.rows(); ++i)
    for (sae::Index j = 0; j < x.cols(); ++j) x(i, j) = static_cast<float>(rng.uniform(-1.0, 1.0));
  sae::Batch<double, 4> y = sae::Batch<double, 4>::Constant(2, 4, 0.5);
  sae::Vector<double, 4> v = sae::Vector<double, 4>::Ones();
  report.batch_sum = static_cast<double>(x.sum()) + (y * v).sum();

  // The model, objective and optimizers, fixed and run-time sized.
  sae::SparseAutoEncoder<float> model(5, 12, sae::Init::Tied, seed);
  sae::SparseAutoEncoder<double, 4, 8> tiny(sae::Init::LinearDefault, seed);
  auto grads = sae::zeros_like(model.params());
  sae::Adam<float> adam{1e-2f, 0.9f, 0.999f, 1e-8f};
  sae::LossWorkspace<float> workspace;
  const sae::L1Objective<float> objective{1e-3f, sae::L1Reduction::MeanOverBatch};
  for (int step = 0; step < 3; ++step) {
    sae::loss_and_gradient(model, x, objective, grads, workspace);
    adam.step(model.params(), grads);
  }
  auto tiny_grads = sae::zeros_like(tiny.params());
  sae::loss_and_gradient(tiny, y, sae::L1Objective<double>{1e-3}, tiny_grads);
  sae::SGD<double>{0.1}.step(tiny.params(), tiny_grads);
  report.model_loss = sae::loss(model, x, objective).loss + tiny.encode(y).sum();

  // The .npy header parser (non-template inline code).
  const char header[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string bytes(header, sizeof(header) - 1);
  bytes.resize(10 + 0x76, ' ');
  bytes.back() = '\n';
  bytes.append(24, '\0');
  report.npy_elements = sae::parse_npy_header(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                                              "odr.npy").element_count;
  return report;
}
