// EXPECT-ERROR: compile-time column count differs from the model's input_dim D
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<double, 8, 32> model;
  auto grads = sae::zeros_like(model.params());
  sae::Batch<double, 9> X = sae::Batch<double, 9>::Zero(2, 9);
  return static_cast<int>(sae::loss_and_gradient(model, X, sae::L1Objective<double>{1e-3}, grads).l0);
}
