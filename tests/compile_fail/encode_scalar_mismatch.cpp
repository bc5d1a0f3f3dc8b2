// EXPECT-ERROR: scalar type differs from the model's Scalar
// Mixing float and double is an error with a readable message, not a wall of Eigen templates.
#include <sae/sae.hpp>

int main() {
  sae::SparseAutoEncoder<float> model(16, 64);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(4, 16);
  return static_cast<int>(model.encode(X).rows());
}
