// EXPECT-ERROR: Scalar must be float or double
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<int> model(4, 8);
  return static_cast<int>(model.input_dim());
}
