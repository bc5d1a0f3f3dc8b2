// EXPECT-ERROR: TopKObjective trains the TopK and BatchTopK architectures
// Each objective names the architectures it trains; pairing it with another is
// a compile-time error with that message.
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<float> relu(4, 8);
  sae::Batch<float> X = sae::Batch<float>::Zero(2, 4);
  auto grads = sae::zeros_like(relu.params());
  sae::loss_and_gradient(relu, X, sae::TopKObjective<float>{}, grads);
}
