// A user's program: include the umbrella header, use a few things, exit 0.
#include <sae/sae.hpp>

#include <cstdio>

int main() {
  static_assert(sae::version.major == SAE_VERSION_MAJOR, "version macros and constant disagree");
  sae::Rng rng(42);
  sae::Batch<float> x(4, 8);
  for (sae::Index i = 0; i < x.rows(); ++i)
    for (sae::Index j = 0; j < x.cols(); ++j) x(i, j) = static_cast<float>(rng.normal());
  if (!x.allFinite()) return 1;
  std::printf("sae %s consumer: ok\n", SAE_VERSION_STRING);
  return 0;
}
