// sae/train/trainer.hpp: the training loop.
//
// One step reads one way, for every architecture:
//
//   data source → batch (× input scale) → the architecture's objective: loss
//   and gradient → constraint
//   (project) → gradient clipping → optimizer step at the scheduled lr →
//   constraint (renormalise) → architecture state (BatchTopK's θ) →
//   dead-latent bookkeeping → resampling
//
// The trainer owns the optimizer, the schedules and the bookkeeping; the model
// and the data source are the caller's. Everything that decides the next step
// is in a checkpoint (save_checkpoint), so a resumed run repeats the
// uninterrupted one bit for bit (with the same number of threads).
//
// requires: model sizes fixed for the trainer's lifetime; the data source's
//           input_dim equals the model's.
// ensures:  step() throws std::runtime_error naming the step (and the row, for
//           input) on a non-finite input or loss, before touching the model.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/random.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../io/checkpoint.hpp"
#include "../loss/l1_objective.hpp"
#include "../optim/adam.hpp"
#include "architecture.hpp"
#include "constraints.hpp"
#include "data_source.hpp"
#include "dead_latents.hpp"
#include "decoder_bias_init.hpp"
#include "gradient_clipping.hpp"
#include "input_scaling.hpp"
#include "recipes.hpp"
#include "schedules.hpp"

namespace sae {

/// What one training step did.
struct StepReport {
  long long step = 0;             ///< steps completed, this one included
  LossReport loss;                ///< on the (scaled) training batch
  double learning_rate = 0;       ///< used for this step
  double l1_coefficient = 0;      ///< λ used for this step
  double gradient_norm = 0;       ///< before clipping
  std::uint64_t tokens = 0;       ///< rows trained on so far (steps × batch size; not the data samples)
  Index resampled_latents = 0;    ///< latents resampled after this step
};

template <typename Scalar, int D = Dynamic, int F = Dynamic, typename Activation = ReLU>
class Trainer {
 public:
  using Model = SparseAutoEncoder<Scalar, D, F, Activation>;
  using Params = typename Model::Params;

  /// The model is initialised by config.init from `seed` (and its
  /// architecture's own parameters as the architecture initialises them)
  /// unless `keep_model_init` is true (a model loaded or initialised by the
  /// caller). Its apply_b_dec_to_input() is set from the config either way.
  Trainer(Model& model, ActivationSource<Scalar>& data, TrainingConfig config, std::uint64_t seed = 0,
          bool keep_model_init = false)
      : model_(model),
        data_(data),
        config_(std::move(config)),
        rng_(seed ^ 0x5ae5ae5ae5ae5aeULL),
        lr_schedule_(LinearWarmupDecay::with_decay_fraction(config_.steps, config_.lr_warmup_steps,
                                                            config_.lr_decay_fraction)),
        l1_warmup_(config_.l1_warmup_steps),
        adam_(static_cast<Scalar>(config_.learning_rate), static_cast<Scalar>(config_.adam_beta1),
              static_cast<Scalar>(config_.adam_beta2), static_cast<Scalar>(config_.adam_epsilon)),
        dead_(model.dict_size()) {
    if (data_.input_dim() != model_.input_dim())
      throw std::invalid_argument("sae::Trainer: the data has " + std::to_string(data_.input_dim()) +
                                  " columns but the model's input_dim is " + std::to_string(model_.input_dim()));
    if (config_.batch_size <= 0) throw std::invalid_argument("sae::Trainer: batch_size must be positive");
    if (!keep_model_init) {
      auto& p = model_.params();
      initialize(p, config_.init, seed, config_.init_decoder_norm);
      p.threshold.resize(0);
      p.r_mag.resize(0);
      p.b_mag.resize(0);
      model_.activation().add_parameters(p);
    }
    model_.apply_b_dec_to_input() = config_.apply_b_dec_to_input;
    model_.check("sae::Trainer");
    // The gradient projection assumes unit rows from the first step on.
    if (config_.unit_norm_decoder) normalize_decoder_rows(model_.params());
    grads_ = zeros_like(model_.params());
  }

  /// Sets b_dec and the input scale from a sample of the data (config's
  /// decoder_bias_init and input_scaling). Called by the first step() if not
  /// called before; not called again after a resume.
  void prepare() {
    if (prepared_) return;
    prepared_ = true;
    if (!config_.decoder_bias_init && config_.input_scaling == InputScaling::None) return;
    Batch<Scalar> sample;
    data_.next_batch(sample, std::min<Index>(config_.data_sample_rows, data_.num_rows()));
    check_finite_input(sample, [] { return std::string("while preparing (data sample)"); });
    input_scale_ = estimate_input_scale(sample, config_.input_scaling);
    if (input_scale_ != 1.0) sample *= static_cast<Scalar>(input_scale_);
    if (config_.decoder_bias_init) initialize_decoder_bias(model_.params(), sample, *config_.decoder_bias_init);
  }

  /// One training step.
  StepReport step() {
    prepare();
    const long long step_index = steps_;  // 0-based index of this step
    data_.next_batch(batch_, config_.batch_size);
    check_finite_input(batch_, [&] { return "at step " + std::to_string(step_index + 1); });
    if (input_scale_ != 1.0) batch_ *= static_cast<Scalar>(input_scale_);

    StepReport report;
    report.l1_coefficient = config_.l1_coefficient * l1_warmup_.value(step_index);
    if constexpr (uses_auxk<Activation>) dead_list_ = dead_.dead_latents(config_.dead_window_tokens);
    const auto objective = make_objective<Scalar>(model_.activation(), config_, report.l1_coefficient, dead_list_);
    report.loss = loss_and_gradient(model_, batch_, objective, grads_, workspace_);
    if (!std::isfinite(report.loss.loss))
      throw std::runtime_error("sae::Trainer: the loss is not finite at step " + std::to_string(step_index + 1) +
                               " (" + std::to_string(report.loss.loss) + "); the model was not updated");

    if (config_.unit_norm_decoder) project_decoder_gradient(model_.params(), grads_);
    report.gradient_norm = config_.max_grad_norm > 0 ? clip_gradient_norm(grads_, config_.max_grad_norm)
                                                     : gradient_norm(grads_);
    report.learning_rate = config_.learning_rate * lr_schedule_.value(step_index);
    adam_.learning_rate() = static_cast<Scalar>(report.learning_rate);
    adam_.step(model_.params(), grads_);
    if (config_.unit_norm_decoder) normalize_decoder_rows(model_.params());
    update_after_step(model_, workspace_, config_, steps_ + 1);

    dead_.update(workspace_.codes);
    ++steps_;
    if (config_.resample_every_steps > 0 && steps_ % config_.resample_every_steps == 0 && steps_ < config_.steps)
      report.resampled_latents = resample();

    report.step = steps_;
    report.tokens = static_cast<std::uint64_t>(steps_) * static_cast<std::uint64_t>(config_.batch_size);
    return report;
  }

  /// Steps until config.steps, calling `on_step` after each.
  void run(const std::function<void(const StepReport&)>& on_step = {}) {
    while (steps_ < config_.steps) {
      const StepReport r = step();
      if (on_step) on_step(r);
    }
  }

  long long steps_done() const { return steps_; }
  const TrainingConfig& config() const { return config_; }
  double input_scale() const { return input_scale_; }
  const DeadLatentTracker& dead_latents() const { return dead_; }
  const Adam<Scalar>& optimizer() const { return adam_; }
  /// The most recent (scaled) training batch and its codes.
  const Batch<Scalar>& last_batch() const { return batch_; }
  const Batch<Scalar>& last_codes() const { return workspace_.codes; }

  /// The trained model for raw (unscaled) activations: the input scale folded into the weights.
  Model exported_model() const {
    Model out = model_;
    if (input_scale_ != 1.0) fold_input_scale(out.params(), input_scale_);
    return out;
  }

  // ---- checkpoints ----------------------------------------------------------

  /// Writes everything the next step depends on, atomically.
  void save_checkpoint(const std::string& path) const {
    CheckpointWriter w;
    w.put_string("format", "sae.trainer.v2");
    w.put_string("recipe", config_.recipe_name);
    w.put_string("architecture", Activation::name);
    model_.params().for_each([&](const char* name, const auto& tensor) {
      if (tensor.size() > 0) w.put(name, tensor);
    });
    w.put_u64s("apply_b_dec_to_input", {model_.apply_b_dec_to_input() ? 1u : 0u});
    if constexpr (std::is_same<Activation, BatchTopK>::value)
      w.put_double("batchtopk_threshold", model_.activation().threshold);
    if constexpr (std::is_same<Activation, TopK>::value || std::is_same<Activation, BatchTopK>::value)
      w.put_u64s("topk_k", {static_cast<std::uint64_t>(model_.activation().k)});
    w.put_u64s("trainer", {static_cast<std::uint64_t>(steps_), prepared_ ? 1u : 0u,
                           static_cast<std::uint64_t>(model_.input_dim()),
                           static_cast<std::uint64_t>(model_.dict_size())});
    w.put_double("input_scale", input_scale_);
    w.put_u64s("adam_steps", {static_cast<std::uint64_t>(adam_.steps_taken())});
    for (std::size_t i = 0; i < adam_.first_moments().size(); ++i) {
      w.put("adam_m" + std::to_string(i), adam_.first_moments()[i]);
      w.put("adam_v" + std::to_string(i), adam_.second_moments()[i]);
    }
    w.put_u64s("data", data_.state().words);
    w.put_u64s("rng", rng_words(rng_));
    w.put_u64s("dead_latents", dead_.tokens_since_fired());
    w.write(path);
  }

  /// Restores a checkpoint written by save_checkpoint for the same sizes and data.
  void load_checkpoint(const std::string& path) {
    CheckpointReader r(path);
    if (r.string("format") != "sae.trainer.v2")
      throw std::runtime_error(path + ": not a trainer checkpoint of this version (format '" + r.string("format") +
                               "', expected 'sae.trainer.v2')");
    if (r.string("architecture") != Activation::name)
      throw std::runtime_error(path + ": checkpoint is of a '" + r.string("architecture") + "' SAE, this trainer's is '" +
                               Activation::name + "'");
    const auto trainer = r.u64s("trainer");
    if (trainer.size() != 4) throw std::runtime_error(path + ": malformed 'trainer' entry");
    if (trainer[2] != static_cast<std::uint64_t>(model_.input_dim()) ||
        trainer[3] != static_cast<std::uint64_t>(model_.dict_size()))
      throw std::runtime_error(path + ": checkpoint is for a " + std::to_string(trainer[2]) + " x " +
                               std::to_string(trainer[3]) + " model, this one is " +
                               std::to_string(model_.input_dim()) + " x " + std::to_string(model_.dict_size()));
    model_.params().for_each([&](const char* name, auto& tensor) {
      if (tensor.size() > 0) r.read_into(name, tensor);
    });
    const auto apply_b_dec = r.u64s("apply_b_dec_to_input");
    if (apply_b_dec.size() != 1) throw std::runtime_error(path + ": malformed 'apply_b_dec_to_input' entry");
    model_.apply_b_dec_to_input() = apply_b_dec[0] != 0;
    if constexpr (std::is_same<Activation, BatchTopK>::value)
      model_.activation().threshold = r.scalar("batchtopk_threshold");
    if constexpr (std::is_same<Activation, TopK>::value || std::is_same<Activation, BatchTopK>::value) {
      // Checkpoints written before k was recorded have no entry.
      if (r.has("topk_k")) {
        const auto k = r.u64s("topk_k");
        if (k.size() != 1) throw std::runtime_error(path + ": malformed 'topk_k' entry");
        if (k[0] != static_cast<std::uint64_t>(model_.activation().k))
          throw std::runtime_error(path + ": checkpoint was trained with k = " + std::to_string(k[0]) +
                                   ", this model has k = " + std::to_string(model_.activation().k));
      }
    }
    steps_ = static_cast<long long>(trainer[0]);
    prepared_ = trainer[1] != 0;
    input_scale_ = r.scalar("input_scale");

    adam_.reset();
    const auto adam_steps = r.u64s("adam_steps");
    if (adam_steps.size() != 1) throw std::runtime_error(path + ": malformed 'adam_steps' entry");
    if (adam_steps[0] > 0) {
      adam_.first_moments().clear();
      adam_.second_moments().clear();
      for (int i = 0; i < Params::tensor_count; ++i) {
        adam_.first_moments().push_back(r.template matrix<Scalar>("adam_m" + std::to_string(i)).reshaped());
        adam_.second_moments().push_back(r.template matrix<Scalar>("adam_v" + std::to_string(i)).reshaped());
      }
      adam_.set_steps_taken(static_cast<long long>(adam_steps[0]));
    }
    data_.restore(SourceState{r.u64s("data")});
    set_rng_words(rng_, r.u64s("rng"));
    auto dead_counts = r.u64s("dead_latents");
    if (dead_counts.size() != static_cast<std::size_t>(model_.dict_size()))
      throw std::runtime_error(path + ": 'dead_latents' has " + std::to_string(dead_counts.size()) +
                               " entries, expected " + std::to_string(model_.dict_size()));
    dead_.set_tokens_since_fired(std::move(dead_counts));
  }

 private:
  Index resample() {
    const auto dead = dead_.dead_latents(config_.dead_window_tokens);
    if (dead.empty()) return 0;
    Batch<Scalar> inputs;
    data_.next_batch(inputs, std::min<Index>(config_.data_sample_rows, std::max<Index>(config_.batch_size * 4, 1024)));
    check_finite_input(inputs, [&] { return "while resampling after step " + std::to_string(steps_); });
    if (input_scale_ != 1.0) inputs *= static_cast<Scalar>(input_scale_);
    // Fewer usable inputs than dead latents resamples only the first ones.
    const ResampleResult result = resample_dead_latents(model_, adam_, dead, inputs, rng_);
    dead_.revive(result.latents);
    return static_cast<Index>(result.latents.size());
  }

  // `when` describes the batch for the message; it is only called on failure,
  // so the check costs no string building per step.
  template <typename Describe>
  static void check_finite_input(const Batch<Scalar>& X, Describe&& when) {
    if (X.allFinite()) return;
    for (Index r = 0; r < X.rows(); ++r)
      if (!X.row(r).allFinite())
        throw std::runtime_error("sae::Trainer: non-finite value in input row " + std::to_string(r) +
                                 " of the batch " + when() + "; the model was not updated");
  }

  static std::vector<std::uint64_t> rng_words(const Rng& rng) {
    const Rng::State s = rng.state();
    std::uint64_t spare_bits;
    std::memcpy(&spare_bits, &s.spare_normal, sizeof spare_bits);
    return {s.words[0], s.words[1], s.words[2], s.words[3], s.has_spare_normal ? 1u : 0u, spare_bits};
  }
  static void set_rng_words(Rng& rng, const std::vector<std::uint64_t>& w) {
    if (w.size() != 6) throw std::runtime_error("sae::Trainer: malformed RNG state in checkpoint");
    Rng::State s;
    for (int i = 0; i < 4; ++i) s.words[i] = w[i];
    s.has_spare_normal = w[4] != 0;
    std::memcpy(&s.spare_normal, &w[5], sizeof s.spare_normal);
    rng.set_state(s);
  }

  Model& model_;
  ActivationSource<Scalar>& data_;
  TrainingConfig config_;
  Rng rng_;
  LinearWarmupDecay lr_schedule_;
  L1Warmup l1_warmup_;
  Adam<Scalar> adam_;
  DeadLatentTracker dead_;
  std::vector<Index> dead_list_;  // latents dead before this step (AuxK)
  Params grads_;
  LossWorkspace<Scalar> workspace_;
  Batch<Scalar> batch_;
  long long steps_ = 0;
  bool prepared_ = false;
  double input_scale_ = 1.0;
};

}  // namespace sae
