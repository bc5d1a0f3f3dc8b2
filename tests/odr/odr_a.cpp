// One of two identical translation units of the ODR test (see odr.hpp).
#include <sae/sae.hpp>

#include "odr.hpp"

OdrReport odr_a(std::uint64_t seed) {
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
  return report;
}
