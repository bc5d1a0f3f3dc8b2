// examples/sae_train.cpp: train an SAE from the command line.
//
//   sae_train --data A.npy[,B.npy...] [--heldout H.npy]
//             --arch relu|topk|batchtopk|jumprelu|gated [--k K] [--target-l0 L]
//             --recipe NAME --dict-size F [--l1 λ] [--steps N]
//             [--batch B] [--lr LR] [--seed S] [--out DIR] [--metrics M.jsonl]
//             [--resume DIR] [--checkpoint-every N] [--tokens N]
//
// With no --data it trains on the synthetic ground-truth data of the
// quickstart (D = 256, 512 true features, ~5 active) and also reports MMCS.
// The last line of standard output is one JSON object with heldout_fvu,
// heldout_l0, alive_fraction, train_seconds, tokens_per_second (and mmcs).
//
// --out DIR receives the trained model for raw activations (input scaling
// folded in) in SAELens' layout (sae_weights.safetensors and cfg.json, which
// sae::load_pretrained, SAELens and compare_pytorch.py --model read; built
// with sae::io, and for BatchTopK once its threshold is learned) and as
// W_enc.npy, b_enc.npy, W_dec.npy, b_dec.npy, and the trainer's checkpoint
// (checkpoint.sae, rewritten atomically every --checkpoint-every steps and at
// the end) that --resume DIR continues from.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <sae/train.hpp>
#ifdef SAE_TRAIN_SAELENS_LAYOUT
#include <sae/io/pretrained.hpp>  // --out's SAELens layout; needs nlohmann_json (sae::io)
#endif

#include "command_line.hpp"

namespace {

const char* kUsage = R"(usage: sae_train [options]
  --data A.npy[,B.npy...]  [N, D] activations (float16/32/64, C order); default: synthetic data
  --heldout H.npy          held-out activations for the final evaluation (default: a
                           separately drawn synthetic set, or 8192 rows sampled from --data)
  --arch NAME              relu | topk | batchtopk | jumprelu | gated (default relu)
  --k K                    codes per token for topk and batchtopk (default 32)
  --target-l0 L            jumprelu: the L0 its penalty aims at (default 32; 0 penalises L0 itself)
  --recipe NAME            seed | standard | april for relu (default standard); the other
                           architectures default to their own recipe (topk, batchtopk,
                           jumprelu, gated)
  --dict-size F            number of latents (default 8 x D; 1024 on the synthetic data)
  --l1 LAMBDA              sparsity coefficient: L1 for relu and gated, L0 for jumprelu
                           (default: the recipe's)
  --steps N                training steps (default 3000)
  --tokens N               token budget instead of --steps: ceil(N / batch) steps
  --batch B                rows per step (default 1024; 64 on the synthetic data)
  --lr RATE                learning rate (default: the recipe's; 3e-3 on the synthetic data,
                           where the standard recipe then recovers MMCS >= 0.99 in about 30 s)
  --seed S                 seed for initialisation and shuffling (default 0)
  --out DIR                write the model (SAELens' layout and .npy files) and the checkpoint here
  --metrics M.jsonl        JSON-lines training log
  --resume DIR             continue from DIR/checkpoint.sae (same flags as the first run)
  --checkpoint-every N     steps between checkpoints (default 1000; needs --out)
  --help
)";

struct Options {
  std::vector<std::string> data;
  std::string heldout, arch = "relu", recipe, out, metrics, resume;
  long long k = 32;
  double target_l0 = -1;  // < 0: the recipe's
  long long dict_size = 0, steps = 0, batch = 0, checkpoint_every = 1000;  // 0: default for the data
  double tokens = 0;  // a token budget: steps = ceil(tokens / batch) when --steps is not given
  double l1 = -1, lr = -1;
  std::uint64_t seed = 0;
};

using command_line::parse_integer;
using command_line::parse_real;

Options parse(int argc, char** argv) {
  Options o;
  command_line::for_each_flag(argc, argv, kUsage, [&](const std::string& flag, const std::string& value) {
    if (flag == "--data") o.data = command_line::split_commas(value);
    else if (flag == "--heldout") o.heldout = value;
    else if (flag == "--arch") o.arch = value;
    else if (flag == "--recipe") o.recipe = value;
    else if (flag == "--k") o.k = parse_integer(flag, value);
    else if (flag == "--target-l0") o.target_l0 = parse_real(flag, value);
    else if (flag == "--dict-size") o.dict_size = parse_integer(flag, value);
    else if (flag == "--l1") o.l1 = parse_real(flag, value);
    else if (flag == "--steps") o.steps = parse_integer(flag, value);
    else if (flag == "--tokens") o.tokens = parse_real(flag, value);
    else if (flag == "--batch") o.batch = parse_integer(flag, value);
    else if (flag == "--lr") o.lr = parse_real(flag, value);
    else if (flag == "--seed") {
      const long long seed = parse_integer(flag, value);
      if (seed < 0) throw std::invalid_argument("--seed must be >= 0, got " + value);
      o.seed = static_cast<std::uint64_t>(seed);
    } else if (flag == "--out") o.out = value;
    else if (flag == "--metrics") o.metrics = value;
    else if (flag == "--resume") o.resume = value;
    else if (flag == "--checkpoint-every") o.checkpoint_every = parse_integer(flag, value);
    else return false;
    return true;
  });
  if (o.arch != "relu" && o.arch != "topk" && o.arch != "batchtopk" && o.arch != "jumprelu" && o.arch != "gated")
    throw std::invalid_argument("unknown --arch " + o.arch + " (expected relu, topk, batchtopk, jumprelu or gated)");
  if (o.recipe.empty()) o.recipe = o.arch == "relu" ? "standard" : o.arch;
  if (o.k <= 0) throw std::invalid_argument("--k must be positive");
  if (o.steps < 0 || o.batch < 0 || o.dict_size < 0)
    throw std::invalid_argument("--steps, --batch and --dict-size must be positive");
  // Defaults that give a good SAE with no other flags (see kUsage).
  const bool synthetic = o.data.empty();
  if (o.batch == 0) o.batch = synthetic ? 64 : 1024;
  if (o.tokens < 0) throw std::invalid_argument("--tokens must be positive");
  if (o.steps == 0 && o.tokens > 0) o.steps = static_cast<long long>(std::ceil(o.tokens / static_cast<double>(o.batch)));
  if (o.steps == 0) o.steps = 3000;
  if (o.lr <= 0 && synthetic) o.lr = 3e-3;
  return o;
}

// The held-out evaluation: reconstruction and sparsity of the final model on raw activations.
struct Evaluation {
  double fvu = 0, l0 = 0, alive_fraction = 0, mse = 0;
};

template <typename Model>
Evaluation evaluate(const Model& model, const sae::Batch<float>& X) {
  Evaluation e;
  const auto [recon, codes] = model.forward(X);
  e.fvu = sae::fraction_of_variance_unexplained(X, recon);
  e.mse = sae::mean_squared_error(X, recon);
  e.l0 = sae::mean_l0(codes);
  e.alive_fraction = static_cast<double>((codes.array() > 0.0f).colwise().any().count()) /
                     static_cast<double>(codes.cols());
  return e;
}

struct Data {
  std::unique_ptr<sae::ActivationSource<float>> train;
  std::unique_ptr<sae::SyntheticSuperposition<float>> synthetic;
  sae::Batch<float> heldout;
};

Data load_data(const Options& o) {
  Data data;
  auto& train_data = data.train;
  auto& synthetic = data.synthetic;
  auto& heldout = data.heldout;
  if (o.data.empty()) {
    synthetic = std::make_unique<sae::SyntheticSuperposition<float>>(256, 512, 5.0, o.seed + 1);
    // Fresh samples would never repeat; a fixed pool of 2^18 rows keeps the run
    // reproducible from a checkpoint with a small, in-memory data source.
    train_data = std::make_unique<sae::InMemorySource<float>>(synthetic->sample(1 << 18), o.seed);
    heldout = synthetic->sample(8192);
  } else {
    sae::NpyFileSourceOptions options;
    options.seed = o.seed;
    train_data = std::make_unique<sae::NpyFileSource<float>>(o.data, options);
    if (!o.heldout.empty()) {
      heldout = sae::load_npy<float>(o.heldout);
    } else {
      sae::NpyFileSourceOptions options;
      options.seed = o.seed + 7;
      options.read_ahead = false;  // one buffer is all this source serves
      sae::NpyFileSource<float> sample(o.data, options);
      sample.next_batch(heldout, std::min<sae::Index>(8192, sample.num_rows()));
    }
  }
  return data;
}

// The model in SAELens' layout, where this program has sae::io: not for a
// BatchTopK model whose threshold is still unlearned (the layout holds it as
// the JumpReLU it is at inference).
template <typename Model>
void save_saelens_layout(const Model& model, const std::string& dir) {
#ifdef SAE_TRAIN_SAELENS_LAYOUT
  if constexpr (std::is_same<typename Model::Activation, sae::BatchTopK>::value) {
    if (!(model.activation().threshold >= 0.0)) {
      // An earlier run's files would not be this model: they go.
      for (const char* name : {"sae_weights.safetensors", "cfg.json"}) std::filesystem::remove(dir + "/" + name);
      std::cerr << "sae_train: no sae_weights.safetensors in " << dir
                << ": the BatchTopK threshold is not learned yet (train longer)\n";
      return;
    }
  }
  sae::save_pretrained(model, dir);
#else
  (void)model;
  (void)dir;
#endif
}

// The model of the architecture asked for, sized D x F.
template <typename Activation>
Activation make_activation(const Options& o) {
  if constexpr (std::is_same<Activation, sae::TopK>::value || std::is_same<Activation, sae::BatchTopK>::value) {
    Activation a;
    a.k = o.k;
    return a;
  } else {
    return Activation{};
  }
}

template <typename Activation>
int train(const Options& o, Data& data) {
  const bool synthetic_data = o.data.empty();
  auto& train_data = data.train;
  auto& synthetic = data.synthetic;
  const auto& heldout = data.heldout;
  const sae::Index D = train_data->input_dim();
  const sae::Index F = o.dict_size > 0 ? o.dict_size : (synthetic_data ? 1024 : 8 * D);

  // ---- configuration -------------------------------------------------------
  sae::TrainingConfig config = sae::make_recipe(sae::parse_recipe(o.recipe), o.steps, F);
  config.batch_size = o.batch;
  if (o.l1 >= 0) config.l1_coefficient = o.l1;
  if (o.lr > 0) config.learning_rate = o.lr;
  if (o.target_l0 >= 0) config.target_l0 = o.target_l0;
  // AuxK's "dead": no firing for 10M tokens, or a fifth of a shorter run.
  const double run_tokens = static_cast<double>(config.steps) * static_cast<double>(config.batch_size);
  config.dead_window_tokens = static_cast<std::uint64_t>(std::min(1e7, std::max(run_tokens / 5, 1.0)));

  using Model = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, Activation>;
  Model model(D, F, make_activation<Activation>(o));
  sae::Trainer<float, sae::Dynamic, sae::Dynamic, Activation> trainer(model, *train_data, config, o.seed);
  if (!o.resume.empty()) {
    trainer.load_checkpoint(o.resume + "/checkpoint.sae");
    std::cerr << "sae_train: resumed from " << o.resume << "/checkpoint.sae at step " << trainer.steps_done() << "\n";
  }
  if (!o.out.empty()) std::filesystem::create_directories(o.out);

  std::unique_ptr<sae::MetricsLog> log;
  if (!o.metrics.empty())
    log = std::make_unique<sae::MetricsLog>(o.metrics, o.resume.empty() ? sae::MetricsLog::Mode::truncate
                                                                        : sae::MetricsLog::Mode::append);

  std::cerr << "sae_train: D = " << D << ", F = " << F << ", arch " << o.arch << ", recipe " << config.recipe_name << ", "
            << config.steps << " steps of " << config.batch_size << " rows\n";

  // ---- training ------------------------------------------------------------
  sae::ProgressOptions progress_options;
  progress_options.is_terminal = sae::is_terminal(std::cerr);
  sae::ProgressReporter progress(std::cerr, config.steps, progress_options);
  // Dead = no firing over the last tenth of the run (at most 1000 steps), read
  // from the trainer's own tokens-since-fired counts.
  const long long window_steps = std::max<long long>(1, std::min<long long>(config.steps / 10, 1000));
  const auto window_tokens = static_cast<std::uint64_t>(window_steps * config.batch_size);
  const auto start = std::chrono::steady_clock::now();
  const long long steps_at_start = trainer.steps_done();
  trainer.run([&](const sae::StepReport& r) {
    if (!o.out.empty() && o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0)
      trainer.save_checkpoint(o.out + "/checkpoint.sae");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool logged = log && (r.step % 10 == 0 || r.step == config.steps);
    // FVU and the dead fraction take a pass over the batch and the latents
    // (about 2 ms a step at D = 768, B = 1024): only for a step that shows them.
    if (!logged && !progress.due(r.step, seconds)) return;
    const double dead_fraction = trainer.dead_latents().dead_fraction(window_tokens);
    // FVU on this step's batch: l2 is the batch's mean ‖x̂ − x‖² (before the
    // step), divided by its mean squared distance from its own mean.
    const auto& batch = trainer.last_batch();
    const double batch_variance =
        (batch.template cast<double>().rowwise() - batch.template cast<double>().colwise().mean()).squaredNorm() /
        static_cast<double>(batch.rows());
    const double fvu = batch_variance > 0 ? r.loss.l2 / batch_variance : 0.0;
    progress.update(r.step, static_cast<std::int64_t>(r.tokens), seconds,
                    {{"loss", r.loss.loss}, {"L0", r.loss.l0}, {"FVU", fvu}, {"dead", dead_fraction}});
    if (logged)
      log->write({{"step", r.step}, {"tokens", r.tokens}, {"loss", r.loss.loss}, {"l2", r.loss.l2},
                  {"l1", r.loss.l1}, {"l0", r.loss.l0}, {"fvu", fvu}, {"lr", r.learning_rate},
                  {"l1_coefficient", r.l1_coefficient}, {"grad_norm", r.gradient_norm},
                  {"dead_fraction", dead_fraction}});
  });
  progress.finish();
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double tokens = static_cast<double>(trainer.steps_done() - steps_at_start) * static_cast<double>(o.batch);

  // ---- results -------------------------------------------------------------
  const Model trained = trainer.exported_model();
  if (!o.out.empty()) {
    trainer.save_checkpoint(o.out + "/checkpoint.sae");
    sae::save_npy(o.out + "/W_enc.npy", trained.params().W_enc);
    sae::save_npy(o.out + "/b_enc.npy", trained.params().b_enc);
    sae::save_npy(o.out + "/W_dec.npy", trained.params().W_dec);
    sae::save_npy(o.out + "/b_dec.npy", trained.params().b_dec);
    save_saelens_layout(trained, o.out);
  }
  const Evaluation e = evaluate(trained, heldout);
  std::vector<sae::JsonField> result = {
      {"heldout_fvu", e.fvu},
      {"heldout_l0", e.l0},
      {"heldout_mse", e.mse},
      {"alive_fraction", e.alive_fraction},
      {"train_seconds", train_seconds},
      {"tokens_per_second", tokens / std::max(train_seconds, 1e-9)},
      {"steps", config.steps},
      {"input_dim", static_cast<long long>(D)},
      {"dict_size", static_cast<long long>(F)},
      {"recipe", config.recipe_name},
      {"arch", o.arch},
  };
  if constexpr (std::is_same<Activation, sae::TopK>::value || std::is_same<Activation, sae::BatchTopK>::value)
    result.emplace_back("k", static_cast<long long>(o.k));
  if constexpr (std::is_same<Activation, sae::BatchTopK>::value)
    result.emplace_back("threshold", trained.activation().threshold);
  if (synthetic)
    result.emplace_back("mmcs", sae::mean_max_cosine_similarity(synthetic->features(), trained.params().W_dec));
  std::cout << sae::to_json_object(result.data(), result.data() + result.size()) << std::endl;
  return 0;
}

int run(const Options& o) {
  Data data = load_data(o);
  if (o.arch == "topk") return train<sae::TopK>(o, data);
  if (o.arch == "batchtopk") return train<sae::BatchTopK>(o, data);
  if (o.arch == "jumprelu") return train<sae::JumpReLU>(o, data);
  if (o.arch == "gated") return train<sae::Gated>(o, data);
  return train<sae::ReLU>(o, data);
}

}  // namespace

int main(int argc, char** argv) { return command_line::run_program("sae_train", argc, argv, parse, run); }
