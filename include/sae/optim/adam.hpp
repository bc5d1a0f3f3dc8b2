// sae/optim/adam.hpp: Adam with torch.optim.Adam's semantics (Kingma & Ba,
// as PyTorch implements it, with weight_decay = 0 and amsgrad off):
//
//     t ← t + 1
//     m ← β1 m + (1 − β1) g
//     v ← β2 v + (1 − β2) g²
//     θ ← θ − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
//
// Note ε is added outside the square root and after the bias correction of v,
// as in PyTorch (not to √v̂ of the paper's final line, which differs when v is tiny).
// The moments are created on the first step, sized from the parameters, so
// one optimizer object serves models of any size; they hold one entry per
// parameter element, in the parameters' own storage order.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/parameters.hpp"
#include "../detail/parallel.hpp"

namespace sae {

template <typename Scalar>
class Adam {
 public:
  using Moments = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  explicit Adam(Scalar learning_rate = Scalar(1e-3), Scalar beta1 = Scalar(0.9), Scalar beta2 = Scalar(0.999),
                Scalar epsilon = Scalar(1e-8))
      : learning_rate_(learning_rate), beta1_(beta1), beta2_(beta2), epsilon_(epsilon) {
    check_hyperparameters();
  }

  /// One update of `params` along `grads` (same type and shapes). The first
  /// call sizes the moments; later calls must pass parameters of the same sizes.
  template <int D, int F>
  void step(Parameters<Scalar, D, F>& params, const Parameters<Scalar, D, F>& grads) {
    check_hyperparameters();
    if (first_moments_.empty()) size_state(params);
    check_state_matches(params);

    ++steps_;
    const double t = static_cast<double>(steps_);
    const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1_), t);
    const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2_), t);
    const Scalar step_size = static_cast<Scalar>(static_cast<double>(learning_rate_) / bias_correction1);
    const Scalar sqrt_bias_correction2 = static_cast<Scalar>(std::sqrt(bias_correction2));
    const Scalar b1 = beta1_, b2 = beta2_, eps = epsilon_;

    std::size_t i = 0;
    for_each_pair(params, grads, "sae::Adam::step", [&](const char*, auto& theta_tensor, const auto& g_tensor) {
      Scalar* theta = theta_tensor.data();
      const Scalar* g = g_tensor.data();
      Scalar* m = first_moments_[i].data();
      Scalar* v = second_moments_[i].data();
      ++i;
      // One pass over memory: the three updates run chunk by chunk while the
      // chunk is in cache, a chunk per thread (element-wise, so the result is
      // the same for any chunking or thread count).
      const Index n = theta_tensor.size();
      SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(n)))
      for (Index start = 0; start < n; start += update_chunk) {
        const Index len = std::min<Index>(update_chunk, n - start);
        Eigen::Map<Moments> theta_c(theta + start, len), m_c(m + start, len), v_c(v + start, len);
        Eigen::Map<const Moments> g_c(g + start, len);
        m_c = b1 * m_c + (Scalar(1) - b1) * g_c;
        v_c = b2 * v_c + (Scalar(1) - b2) * g_c.square();
        theta_c -= step_size * m_c / (v_c.sqrt() / sqrt_bias_correction2 + eps);
      }
    });
  }

  /// Forgets the moments and the step count (the next step starts afresh).
  void reset() {
    first_moments_.clear();
    second_moments_.clear();
    steps_ = 0;
  }

  // Hyper-parameters, readable and settable (schedules change the learning rate).
  Scalar learning_rate() const { return learning_rate_; }
  Scalar& learning_rate() { return learning_rate_; }
  Scalar beta1() const { return beta1_; }
  Scalar& beta1() { return beta1_; }
  Scalar beta2() const { return beta2_; }
  Scalar& beta2() { return beta2_; }
  Scalar epsilon() const { return epsilon_; }
  Scalar& epsilon() { return epsilon_; }

  /// Steps taken since construction or reset(): t in the update above.
  long long steps_taken() const { return steps_; }
  /// Restores t along with the moments (for checkpoints).
  void set_steps_taken(long long t) {
    if (t < 0) throw std::invalid_argument("sae::Adam: step count must be >= 0, got " + std::to_string(t));
    steps_ = t;
  }

  /// The moments, one array per tensor in the order W_enc, b_enc, W_dec,
  /// b_dec (empty before the first step). For checkpoints and for resetting
  /// the state of individual latents.
  std::vector<Moments>& first_moments() { return first_moments_; }
  const std::vector<Moments>& first_moments() const { return first_moments_; }
  std::vector<Moments>& second_moments() { return second_moments_; }
  const std::vector<Moments>& second_moments() const { return second_moments_; }

 private:
  // Elements per chunk of the fused update: 4 arrays of it fit in L1/L2.
  static constexpr Index update_chunk = 2048;

  void check_hyperparameters() const {
    auto fail = [](const std::string& what) { throw std::invalid_argument("sae::Adam: " + what); };
    if (!(learning_rate_ >= Scalar(0)) || !std::isfinite(learning_rate_))
      fail("learning rate must be finite and >= 0, got " + std::to_string(learning_rate_));
    if (!(beta1_ >= Scalar(0) && beta1_ < Scalar(1)))
      fail("beta1 must be in [0, 1), got " + std::to_string(beta1_));
    if (!(beta2_ >= Scalar(0) && beta2_ < Scalar(1)))
      fail("beta2 must be in [0, 1), got " + std::to_string(beta2_));
    if (!(epsilon_ >= Scalar(0)) || !std::isfinite(epsilon_))
      fail("epsilon must be finite and >= 0, got " + std::to_string(epsilon_));
  }

  template <typename Params>
  void size_state(const Params& params) {
    params.for_each([&](const char*, const auto& tensor) {
      first_moments_.push_back(Moments::Zero(tensor.size()));
      second_moments_.push_back(Moments::Zero(tensor.size()));
    });
  }

  template <typename Params>
  void check_state_matches(const Params& params) const {
    std::size_t i = 0;
    params.for_each([&](const char* name, const auto& tensor) {
      if (i >= first_moments_.size() || first_moments_[i].size() != tensor.size() ||
          second_moments_[i].size() != tensor.size())
        throw std::invalid_argument(std::string("sae::Adam::step: ") + name + " has " +
                                    std::to_string(tensor.size()) +
                                    " elements but the optimizer state was sized for " +
                                    (i < first_moments_.size() ? std::to_string(first_moments_[i].size())
                                                               : std::string("no such tensor")) +
                                    "; call reset() to use this optimizer with another model");
      ++i;
    });
  }

  Scalar learning_rate_, beta1_, beta2_, epsilon_;
  long long steps_ = 0;
  std::vector<Moments> first_moments_, second_moments_;
};

}  // namespace sae
