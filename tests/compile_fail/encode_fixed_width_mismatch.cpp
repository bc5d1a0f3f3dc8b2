// EXPECT-ERROR: compile-time column count differs from the model's size
// A batch whose width is fixed at compile time must match the model's D.
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<float, 16, 64> model;
  sae::Batch<float, 17> X(4, 17);
  X.setZero();
  return static_cast<int>(model.encode(X).rows());
}
