// EXPECT-ERROR: construct it as SparseAutoEncoder<Scalar>\(input_dim, dict_size\)
// A model with run-time sizes cannot be default-constructed: its sizes would be unknown.
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<float> model;
  return static_cast<int>(model.input_dim());
}
