// sae/train/schedules.hpp: multipliers that change with the training step.
//
//   LinearWarmupDecay  the learning rate: linear warm-up, constant, linear
//                      decay over the last steps (SAELens decays over the last 20%)
//   L1Warmup           the sparsity coefficient λ: linear from 0 to 1, then 1
//
// A schedule is a pure function of the step, so a checkpoint needs only the
// step to resume it. Steps count from 0: value(t) is the multiplier for the
// t-th optimizer step, and the trainer sets, before that step,
//
//     adam.learning_rate() = base_lr * lr_schedule.value(t);
//     objective.l1_coefficient = base_l1 * l1_schedule.value(t);
//
// The ramps follow dictionary_learning (value(t) = t / warmup_steps during
// warm-up, so step 0 has multiplier start_fraction, 0 by default). SAELens's
// λ warm-up uses (t + 1) / warmup_steps, one step ahead; its lr warm-up
// starts at 1 / warmup_steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace sae {

/// Learning-rate multiplier: linear warm-up, constant 1, linear decay.
///
/// With W = warmup_steps, K = decay_steps, T = total_steps, s = start_fraction,
/// e = end_fraction and t the step:
///
///     warm-up   t < W:        s + (1 − s) · t / W
///     decay     t ≥ T − K:    e + (1 − e) · (T − t) / K
///     otherwise               1
///
/// and the smaller of the two ramps where they overlap (W + K > T, a short
/// run). The decay reaches e at t = T, one past the last step, as in
/// dictionary_learning: the last step (t = T − 1) has e + (1 − e) / K.
/// Steps at or after T give e. W = 0 or K = 0 turns that ramp off.
///
/// requires: T > 0, 0 ≤ W ≤ T, 0 ≤ K ≤ T, s and e in [0, 1]
///           (std::invalid_argument otherwise); value(t) needs t ≥ 0.
/// ensures:  value(t) is in [min(s, e), 1].
class LinearWarmupDecay {
 public:
  LinearWarmupDecay(std::int64_t total_steps, std::int64_t warmup_steps, std::int64_t decay_steps,
                    double start_fraction = 0.0, double end_fraction = 0.0)
      : total_(total_steps), warmup_(warmup_steps), decay_(decay_steps), start_(start_fraction), end_(end_fraction) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("sae::LinearWarmupDecay: " + what); };
    if (total_ <= 0) fail("total_steps must be positive, got " + std::to_string(total_));
    if (warmup_ < 0 || warmup_ > total_)
      fail("warmup_steps must be in [0, total_steps = " + std::to_string(total_) + "], got " +
           std::to_string(warmup_));
    if (decay_ < 0 || decay_ > total_)
      fail("decay_steps must be in [0, total_steps = " + std::to_string(total_) + "], got " +
           std::to_string(decay_));
    if (!(start_ >= 0.0 && start_ <= 1.0)) fail("start_fraction must be in [0, 1], got " + std::to_string(start_));
    if (!(end_ >= 0.0 && end_ <= 1.0)) fail("end_fraction must be in [0, 1], got " + std::to_string(end_));
  }

  /// SAELens's April 2024 set-up: decay over the last `decay_fraction` of the
  /// steps (0.2), rounded down to whole steps.
  static LinearWarmupDecay with_decay_fraction(std::int64_t total_steps, std::int64_t warmup_steps,
                                               double decay_fraction = 0.2) {
    if (!(decay_fraction >= 0.0 && decay_fraction <= 1.0))
      throw std::invalid_argument("sae::LinearWarmupDecay: decay_fraction must be in [0, 1], got " +
                                  std::to_string(decay_fraction));
    const auto decay = static_cast<std::int64_t>(std::floor(decay_fraction * static_cast<double>(total_steps)));
    return LinearWarmupDecay(total_steps, warmup_steps, decay);
  }

  /// The multiplier for step t (0-based).
  double value(std::int64_t step) const {
    if (step < 0) throw std::invalid_argument("sae::LinearWarmupDecay::value: step must be >= 0, got " +
                                              std::to_string(step));
    double v = 1.0;
    if (step < warmup_)
      v = start_ + (1.0 - start_) * static_cast<double>(step) / static_cast<double>(warmup_);
    if (decay_ > 0 && step >= total_ - decay_) {
      const double remaining = static_cast<double>(std::max<std::int64_t>(total_ - step, 0));
      v = std::min(v, end_ + (1.0 - end_) * remaining / static_cast<double>(decay_));
    }
    return v;
  }

  std::int64_t total_steps() const { return total_; }
  std::int64_t warmup_steps() const { return warmup_; }
  std::int64_t decay_steps() const { return decay_; }
  double start_fraction() const { return start_; }
  double end_fraction() const { return end_; }

 private:
  std::int64_t total_, warmup_, decay_;
  double start_, end_;
};

/// λ multiplier: min(t / warmup_steps, 1); warmup_steps = 0 gives 1 throughout.
///
/// requires: warmup_steps ≥ 0 (std::invalid_argument otherwise); value(t) needs t ≥ 0.
/// ensures:  value(0) = 0 when warmup_steps > 0; value(t) = 1 for t ≥ warmup_steps.
class L1Warmup {
 public:
  explicit L1Warmup(std::int64_t warmup_steps = 0) : warmup_(warmup_steps) {
    if (warmup_ < 0)
      throw std::invalid_argument("sae::L1Warmup: warmup_steps must be >= 0, got " + std::to_string(warmup_));
  }

  double value(std::int64_t step) const {
    if (step < 0)
      throw std::invalid_argument("sae::L1Warmup::value: step must be >= 0, got " + std::to_string(step));
    if (step >= warmup_) return 1.0;
    return static_cast<double>(step) / static_cast<double>(warmup_);
  }

  std::int64_t warmup_steps() const { return warmup_; }

 private:
  std::int64_t warmup_;
};

}  // namespace sae
