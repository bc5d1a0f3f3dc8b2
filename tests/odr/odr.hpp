// The ODR test: the same headers in two translation units, linked together.
// A non-inline function, variable or full specialisation in a header gives a
// "multiple definition" link error here; differing inline definitions are
// caught by comparing what each translation unit computes.
#pragma once

#include <cstdint>

struct OdrReport {
  const void* version_address;  // an inline variable: one object in the program
  double normal_sum;            // non-template inline code (sae::Rng)
  double batch_sum;             // templates (sae::Batch, sae::Vector)
  std::uint64_t below;
  double model_loss;           // the model, objective and optimizers
  std::uint64_t npy_elements;  // the .npy header parser
};

OdrReport odr_a(std::uint64_t seed);
OdrReport odr_b(std::uint64_t seed);
