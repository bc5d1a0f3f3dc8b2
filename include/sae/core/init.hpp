// sae/core/init.hpp: how a new model's parameters are filled.
//
// Both schemes draw from sae::Rng, so a seed gives the same model on every
// platform. The draw order is part of the contract (it is what makes a seed
// reproducible): tensors in the order W_enc, b_enc, W_dec, b_dec, each in
// row-major order of its SAELens shape.
#pragma once

#include <cmath>
#include <stdexcept>

#include "parameters.hpp"
#include "random.hpp"

namespace sae {

/// How SparseAutoEncoder fills its parameters when it is constructed.
enum class Init {
  /// PyTorch's nn.Linear default, as the seed's encoder and decoder layers
  /// have it: every weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with
  /// fan_in = D for the encoder and F for the decoder.
  LinearDefault,
  /// The tied initialisation of dictionary_learning and SAELens: decoder rows
  /// in uniformly random directions with norm 0.1, W_enc = W_dec^T, biases 0.
  Tied,
};

namespace detail {

template <typename Tensor>
void fill_uniform_row_major(Tensor& t, Rng& rng, double bound) {
  for (Index r = 0; r < t.rows(); ++r)
    for (Index c = 0; c < t.cols(); ++c)
      t(r, c) = static_cast<typename Tensor::Scalar>(rng.uniform(-bound, bound));
}

}  // namespace detail

/// nn.Linear's default initialisation (see Init::LinearDefault).
template <typename Scalar, int D, int F>
void init_linear_default(Parameters<Scalar, D, F>& p, Rng& rng) {
  const double encoder_bound = 1.0 / std::sqrt(static_cast<double>(p.input_dim()));
  const double decoder_bound = 1.0 / std::sqrt(static_cast<double>(p.dict_size()));
  detail::fill_uniform_row_major(p.W_enc, rng, encoder_bound);
  detail::fill_uniform_row_major(p.b_enc, rng, encoder_bound);
  detail::fill_uniform_row_major(p.W_dec, rng, decoder_bound);
  detail::fill_uniform_row_major(p.b_dec, rng, decoder_bound);
}

/// Tied initialisation (see Init::Tied); `decoder_norm` is each decoder row's norm.
template <typename Scalar, int D, int F>
void init_tied(Parameters<Scalar, D, F>& p, Rng& rng, double decoder_norm = 0.1) {
  if (!(decoder_norm > 0.0) || !std::isfinite(decoder_norm))
    throw std::invalid_argument("sae::init_tied: decoder_norm must be positive and finite, got " +
                                std::to_string(decoder_norm));
  Eigen::Matrix<double, Eigen::Dynamic, 1> direction(p.input_dim());
  for (Index f = 0; f < p.dict_size(); ++f) {
    double norm = 0.0;
    while (norm == 0.0) {  // a zero Gaussian vector has probability 0, but never divide by it
      for (Index d = 0; d < direction.size(); ++d) direction[d] = rng.normal();
      norm = direction.norm();
    }
    p.W_dec.row(f) = (direction * (decoder_norm / norm)).template cast<Scalar>().transpose();
  }
  p.W_enc = p.W_dec.transpose();
  p.b_enc.setZero();
  p.b_dec.setZero();
}

/// Fills `p` by the given scheme from a generator seeded with `seed`;
/// `tied_decoder_norm` is the decoder row norm of Init::Tied.
template <typename Scalar, int D, int F>
void initialize(Parameters<Scalar, D, F>& p, Init init, std::uint64_t seed, double tied_decoder_norm = 0.1) {
  Rng rng(seed);
  switch (init) {
    case Init::LinearDefault: init_linear_default(p, rng); return;
    case Init::Tied: init_tied(p, rng, tied_decoder_norm); return;
  }
  throw std::invalid_argument("sae::initialize: unknown Init value");
}

}  // namespace sae
