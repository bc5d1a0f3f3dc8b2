// The ODR test's main: both translation units must agree on everything.
#include <sae/sae.hpp>

#include <cstdio>

#include "odr.hpp"

int main() {
  const OdrReport a = odr_a(7);
  const OdrReport b = odr_b(7);
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "ODR test: %s differs between translation units\n", what);
      ++failures;
    }
  };
  check(a.version_address == b.version_address && a.version_address == &sae::version,
        "the address of sae::version");
  check(a.normal_sum == b.normal_sum, "sae::Rng::normal");
  check(a.below == b.below, "sae::Rng::below");
  check(a.batch_sum == b.batch_sum, "the Batch/Vector computation");
  check(a.model_loss == b.model_loss, "the model/objective/optimizer computation");
  check(a.npy_elements == b.npy_elements && a.npy_elements == 6, "the .npy header parser");
  if (failures == 0) std::puts("ODR test: ok");
  return failures == 0 ? 0 : 1;
}
