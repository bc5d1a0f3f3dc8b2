// benchmarks/sae_bench.cpp: end-to-end training (or inference) steps at a given size.
//
//   sae_bench --d 768 --f 8192 --batch 1024 --arch relu|topk|batchtopk|jumprelu|gated [--k 32]
//             --mode train|trainer|encode|forward [--steps 10] [--warmup 3] [--target-l0 L]
//             [--l1 1e-3] [--lr 1e-3] [--threads T] [--kernels auto|dense|sparse] [--seed 0]
//   sae_bench --mode encode|forward --model SAE_DIR [--data acts.npy] [--batch 4096] [--codes-out codes.npy]
//
// A training step is exactly the work PyTorch does per step, and nothing else
// (no trainer bookkeeping): loss and gradient of the objective on a batch of
// standard normals (a new one each step, drawn outside the timing), then one
// Adam step. benchmarks/compare_pytorch.py runs
// the same steps in PyTorch and compares; it reads the last line of standard
// output, one JSON object with the configuration, the timings, the memory and
// how this binary was built. --mode trainer times sae::Trainer's whole step
// instead, what sae_train runs (run_trainer, below). --mode encode times
// inference's codes alone, --mode forward the codes and the reconstruction
// (encode, then decode: what evaluating an SAE, or splicing it into a model,
// runs), each into a reused buffer.
//
//   relu  the seed: ReLU SAE, nn.Linear's initialisation, L1Objective with the
//         L1 term summed over the batch, L = (1/B) Σ‖x̂ − x‖² + λ Σ f.
//         --target-l0 L sets b_enc so that L of F latents fire per token, as in
//         a trained SAE (a fresh model fires about half of them).
//   topk  TopK SAE (k codes per token), tied initialisation, b_dec subtracted
//         from the input, TopKObjective with AuxK inactive (no dead latents at
//         a fresh initialisation).
//   batchtopk  the same with BatchTopK: k·B codes over the batch in training
//         (the TopKObjective), TopK's rule at encode (θ not yet learned).
//   jumprelu  JumpReLU SAE (θ 0.001), tied initialisation, JumpReLUObjective
//         (λ = --l1 on L0, the straight-through θ gradient); always dense.
//         With --mode encode or forward, --target-l0 L sets the thresholds
//         (b_enc 0) so that L fire, as in Gemma Scope's SAEs.
//   gated  Gated SAE (gate and magnitude paths sharing W_enc), tied
//         initialisation, GatedObjective (λ = --l1) with its auxiliary decode
//         of the gate path; always the dense products.
//
// --model times the encode (or forward) of an SAE as users load it,
// sae::load_pretrained (SAELens, sparsify or Gemma Scope files; the run-time
// architecture type, AnyActivation, as loaded), so D, F and the architecture
// are the file's.
// --data replaces the standard normals with real activations: step i encodes
// rows iB .. iB + B − 1 of the file, modulo its row count (wrapping around, and
// tiling a file shorter than a batch), copied into the batch outside the timing.
// --codes-out writes the codes of step 0's batch, which compare_pytorch.py
// checks against PyTorch's before it times anything.
//
// Effective GFLOP/s count the dense work, 10·B·D·F per training step (five
// B x D x F products: encode, decode, and the decoder, code and encoder
// gradients; Gated 14·B·D·F, with the auxiliary decode and its code
// gradient), 2·B·D·F per encode and 4·B·D·F per forward, whatever the
// kernels really did: the sparse kernels do less, so their effective rate can
// exceed the machine's peak.
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <sae/sae.hpp>
#include <sae/train.hpp>
#ifdef SAE_BENCH_PRETRAINED
#include <sae/io/pretrained.hpp>  // --model; needs nlohmann_json (sae::io)
#endif

#include "command_line.hpp"  // examples/, shared with sae_train and sae_report
#include "support.hpp"

// Compiler flags and build type, written by benchmarks/CMakeLists.txt.
#if __has_include("sae_bench_build_info.hpp")
#include "sae_bench_build_info.hpp"
#endif
#ifndef SAE_BENCH_CXX_FLAGS
#define SAE_BENCH_CXX_FLAGS "unknown"
#endif
#ifndef SAE_BENCH_BUILD_TYPE
#define SAE_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

const char* kUsage = R"(usage: sae_bench [options]
  --d D                input dimension (default 768)
  --f F                number of latents (default 8192)
  --batch B            rows per step (default 1024)
  --arch NAME          relu (the seed) | topk | batchtopk | jumprelu | gated (default relu)
  --k K                topk, batchtopk: codes per token (default 32)
  --mode NAME          train: loss, gradient and Adam step | trainer: sae::Trainer's step with
                       the architecture's recipe (relu: standard; topk, batchtopk, jumprelu,
                       gated: their own), which adds the batch's copy, the decoder constraint, clipping and
                       dead-latent counts;
                       --lr, --l1 and --kernels do not apply | encode: inference codes only |
                       forward: codes, then the reconstruction from them (default train)
  --steps N            timed steps (default 10)
  --warmup W           untimed steps before them (default 3)
  --target-l0 L        relu: set b_enc so that about L latents fire per token, as in a trained
                       SAE (default: off, a fresh model fires about half); jumprelu with
                       --mode encode or forward: set the thresholds instead
  --l1 LAMBDA          relu: L1 coefficient, the L1 term summed over the batch (default 1e-3)
  --lr RATE            Adam learning rate (default 1e-3; with --target-l0, 1e-5, at which
                       the codes stay about as sparse as asked, as benchmarks/compare_pytorch.py
                       runs it: at 1e-3 L0 falls from 64 to about 15 in 20 steps)
  --threads T          threads for Eigen (and OpenMP); 0 keeps the default (default 0)
  --kernels NAME       auto | dense | sparse: the objective's kernels (default auto)
  --seed S             seed of the initialisation and of the batch (default 0)
  --model PATH         --mode encode or forward: time an SAE read by sae::load_pretrained
                       (SAELens, sparsify or Gemma Scope folder or weights file), as loaded;
                       D, F and the architecture are the file's (no --d, --f, --arch, --k,
                       --target-l0)
  --data FILE.npy      --mode encode or forward: encode these activations [N, D] instead of
                       standard normals: step i takes rows iB .. iB + B - 1 modulo N (wrapping
                       around; a file of fewer than B rows is tiled)
  --codes-out FILE.npy --mode encode or forward: write the codes of the first batch (untimed)
  --help
The last line of standard output is one JSON object with the configuration and results.
)";

struct Options {
  long long d = 768, f = 8192, batch = 1024, k = 32;
  std::string arch = "relu", mode = "train";
  sae::Kernels kernels = sae::Kernels::Automatic;
  long long steps = 10, warmup = 3, threads = 0;
  std::optional<double> target_l0;  // relu: b_enc set for this L0
  double l1 = 1e-3;
  std::optional<double> lr;  // unset: the default above
  long long seed = 0;
  std::string model, data, codes_out;  // --model, --data, --codes-out ("" when not given)
  std::vector<std::string> model_fixes;  // flags given that a --model file fixes instead
};

// --mode encode or forward: the model's inference, no training.
bool inference(const Options& o) { return o.mode == "encode" || o.mode == "forward"; }

using command_line::parse_integer;
using command_line::parse_real;

Options parse(int argc, char** argv) {
  Options o;
  command_line::for_each_flag(argc, argv, kUsage, [&](const std::string& flag, const std::string& value) {
    if (flag == "--d" || flag == "--f" || flag == "--arch" || flag == "--k" || flag == "--target-l0")
      o.model_fixes.push_back(flag);
    if (flag == "--d") o.d = parse_integer(flag, value);
    else if (flag == "--f") o.f = parse_integer(flag, value);
    else if (flag == "--batch") o.batch = parse_integer(flag, value);
    else if (flag == "--arch") o.arch = value;
    else if (flag == "--k") o.k = parse_integer(flag, value);
    else if (flag == "--mode") o.mode = value;
    else if (flag == "--steps") o.steps = parse_integer(flag, value);
    else if (flag == "--warmup") o.warmup = parse_integer(flag, value);
    else if (flag == "--target-l0") o.target_l0 = parse_real(flag, value);
    else if (flag == "--l1") o.l1 = parse_real(flag, value);
    else if (flag == "--lr") o.lr = parse_real(flag, value);
    else if (flag == "--threads") o.threads = parse_integer(flag, value);
    else if (flag == "--kernels") o.kernels = sae_bench::parse_kernels(value);
    else if (flag == "--seed") o.seed = parse_integer(flag, value);
    else if (flag == "--model") o.model = value;
    else if (flag == "--data") o.data = value;
    else if (flag == "--codes-out") o.codes_out = value;
    else return false;
    return true;
  });
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
  };
  require(o.d > 0 && o.f > 0 && o.batch > 0, "--d, --f and --batch must be positive");
  const bool top_k = o.arch == "topk" || o.arch == "batchtopk";
  require(o.arch == "relu" || top_k || o.arch == "jumprelu" || o.arch == "gated",
          "--arch must be relu, topk, batchtopk, jumprelu or gated, got '" + o.arch + "'");
  require(o.mode == "train" || o.mode == "trainer" || inference(o),
          "--mode must be train, trainer, encode or forward, got '" + o.mode + "'");
  require(o.steps >= 1, "--steps must be at least 1");
  require(o.warmup >= 0, "--warmup must be >= 0");
  require(o.threads >= 0, "--threads must be >= 0 (0 keeps the default)");
  require(o.l1 >= 0, "--l1 must be >= 0");
  if (!o.lr) o.lr = o.target_l0 ? 1e-5 : 1e-3;
  require(*o.lr > 0, "--lr must be positive");
  require(o.seed >= 0, "--seed must be >= 0");
  if (top_k) require(o.k >= 1 && o.k <= o.f, "--k must be in [1, F = " + std::to_string(o.f) + "]");
  require(!o.target_l0 || o.arch == "relu" || (o.arch == "jumprelu" && inference(o)),
          "--target-l0 is for --arch relu, and for jumprelu with --mode encode or forward");
  require(o.arch == "relu" || top_k || o.kernels == sae::Kernels::Automatic,
          "--kernels is for --arch relu, topk and batchtopk (JumpReLU's and Gated's steps are always dense)");
  if (o.target_l0)
    require(*o.target_l0 > 0 && *o.target_l0 < static_cast<double>(o.f),
            "--target-l0 must be in (0, F = " + std::to_string(o.f) + ")");
  for (const auto& [flag, given] : {std::pair<const char*, bool>{"--model", !o.model.empty()},
                                    {"--data", !o.data.empty()}, {"--codes-out", !o.codes_out.empty()}})
    require(!given || inference(o), std::string(flag) + " is for --mode encode or forward, not " + o.mode);
  require(o.model.empty() || o.model_fixes.empty(),
          "--model takes D, F and the architecture from the file: drop " +
              (o.model_fixes.empty() ? std::string() : o.model_fixes.front()));
  return o;
}

// ---- what is measured ------------------------------------------------------

// Peak resident memory of this process, in MiB. Linux's VmHWM first: getrusage's
// ru_maxrss also counts the parent's memory at fork when the program was started
// by exec from a large process (compare_pytorch.py, with PyTorch loaded).
double peak_rss_mib() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status) {
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof line, status))
      if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    std::fclose(status);
    if (kib >= 0) return static_cast<double>(kib) / 1024.0;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

// Minor page faults of this process so far: the first touch of freshly mapped
// memory. A step that reuses its buffers has none; one that allocates and frees
// large blocks (returned to the system each time) pays one per 4 KiB page.
long long minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

constexpr double kMiB = 1024.0 * 1024.0;

struct StepTimes {
  std::vector<double> ms;  // the timed steps, in order

  double median() const {
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  }
  double mean() const { return std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size()); }
  double min() const { return *std::min_element(ms.begin(), ms.end()); }
};

struct RunResult {
  StepTimes times;
  double loss = 0;         // of the last timed step (train)
  double l0_mean = 0;      // mean over the timed steps
  double l0_first = 0;     // first timed step
  double l0_last = 0;      // last timed step
  double peak_rss_mib = 0;
  double page_faults_per_step = 0;  // minor faults over the timed steps, per step
};

using sae_bench::Clock;
using sae_bench::milliseconds_since;

void print_step(const Options& o, long long i, double ms, const sae::LossReport* report) {
  const bool warm_up = i < o.warmup;
  const long long number = warm_up ? i + 1 : i - o.warmup + 1;
  const long long of = warm_up ? o.warmup : o.steps;
  std::printf("%s %3lld/%-3lld %10.2f ms  %12.0f tokens/s", warm_up ? "warm-up" : "step   ", number, of, ms,
              static_cast<double>(o.batch) / (ms / 1000.0));
  if (report) std::printf("  loss %.6g  L0 %.1f", report->loss, report->l0);
  std::printf("\n");
  std::fflush(stdout);
}

// Warm-up then timed training steps: loss and gradient, then Adam. Each step
// gets a fresh batch, drawn outside the timing: with one batch repeated, Adam
// would quickly push that batch's few active pre-activations below zero and a
// sparse model's L0 would collapse (64 to about 10 in three steps at lr 1e-3).
template <typename Model, typename Objective>
RunResult run_training(Model& model, const Objective& objective, sae::Batch<float>& X, sae::Rng& data_rng,
                       const Options& o) {
  auto grads = sae::zeros_like(model.params());
  sae::LossWorkspace<float> workspace;  // kept across steps: no allocation once warm
  sae::Adam<float> adam(static_cast<float>(*o.lr));
  RunResult result;
  double l0_sum = 0;
  long long faults_before = 0;
  for (long long i = 0; i < o.warmup + o.steps; ++i) {
    if (i > 0) sae_bench::fill_standard_normal(X, data_rng);
    if (i == o.warmup) faults_before = minor_page_faults();
    const Clock::time_point start = Clock::now();
    const sae::LossReport report = sae::loss_and_gradient(model, X, objective, grads, workspace);
    adam.step(model.params(), grads);
    const double ms = milliseconds_since(start);
    print_step(o, i, ms, &report);
    if (i < o.warmup) continue;
    result.times.ms.push_back(ms);
    if (result.times.ms.size() == 1) result.l0_first = report.l0;
    result.l0_last = report.l0;
    result.loss = report.loss;
    l0_sum += report.l0;
  }
  result.l0_mean = l0_sum / static_cast<double>(o.steps);
  result.page_faults_per_step = static_cast<double>(minor_page_faults() - faults_before) / static_cast<double>(o.steps);
  result.peak_rss_mib = peak_rss_mib();
  return result;
}

// Warm-up then timed steps of sae::Trainer, the step sae_train runs: on top of
// the train mode's loss, gradient and Adam step, the batch's copy from an
// in-memory source (8 batches of standard normals, shuffled), the input
// check, the recipe's decoder constraint and gradient clipping, its schedules
// and the dead-latent counts. The recipe is the architecture's (relu:
// standard, with resampling off so that every step does the same work; topk:
// topk; jumprelu and gated: their own). The first warm-up step also prepares
// (b_dec, input scale).
template <typename Activation>
RunResult run_trainer(const Activation& activation, sae::Recipe recipe, sae::Rng& data_rng, const Options& o) {
  sae::Batch<float> rows(8 * o.batch, o.d);
  sae_bench::fill_standard_normal(rows, data_rng);
  sae::InMemorySource<float> source(std::move(rows), static_cast<std::uint64_t>(o.seed));
  sae::TrainingConfig config = sae::make_recipe(recipe, o.warmup + o.steps, o.f);
  config.batch_size = o.batch;
  config.resample_every_steps = 0;
  sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, Activation> model(o.d, o.f, activation);
  sae::Trainer<float, sae::Dynamic, sae::Dynamic, Activation> trainer(model, source, config,
                                                                      static_cast<std::uint64_t>(o.seed));
  RunResult result;
  double l0_sum = 0;
  long long faults_before = 0;
  for (long long i = 0; i < o.warmup + o.steps; ++i) {
    if (i == o.warmup) faults_before = minor_page_faults();
    const Clock::time_point start = Clock::now();
    const sae::StepReport report = trainer.step();
    const double ms = milliseconds_since(start);
    print_step(o, i, ms, &report.loss);
    if (i < o.warmup) continue;
    result.times.ms.push_back(ms);
    if (result.times.ms.size() == 1) result.l0_first = report.loss.l0;
    result.l0_last = report.loss.l0;
    result.loss = report.loss.loss;
    l0_sum += report.loss.l0;
  }
  result.l0_mean = l0_sum / static_cast<double>(o.steps);
  result.page_faults_per_step = static_cast<double>(minor_page_faults() - faults_before) / static_cast<double>(o.steps);
  result.peak_rss_mib = peak_rss_mib();
  return result;
}

// Rows iB .. iB + B − 1 of `data`, modulo its row count, into X: step i's
// batch of --data (consecutive batches wrap around the file; a file shorter
// than a batch is tiled).
void load_rows(const sae::Batch<float>& data, long long i, sae::Batch<float>& X) {
  const long long n = data.rows();
  for (long long r = 0; r < X.rows(); ++r) X.row(r) = data.row((i * X.rows() + r) % n);
}

// Warm-up then timed encodes (--mode forward: each followed by the decode of
// its codes) into reused buffers: of the batch X every step, or with `data`
// (--data) of step i's rows, copied into X outside the timing.
template <typename Model>
RunResult run_encoding(const Model& model, sae::Batch<float>& X, const sae::Batch<float>* data, const Options& o) {
  typename Model::CodeBatch codes;
  typename Model::InputBatch recon;
  const bool forward = o.mode == "forward";
  RunResult result;
  double l0_sum = 0;
  long long faults_before = 0;
  for (long long i = 0; i < o.warmup + o.steps; ++i) {
    if (data) load_rows(*data, i, X);
    if (i == o.warmup) faults_before = minor_page_faults();
    const Clock::time_point start = Clock::now();
    model.encode(X, codes);
    if (forward) model.decode(codes, recon);
    const double ms = milliseconds_since(start);
    print_step(o, i, ms, nullptr);
    if (i == 0 && !o.codes_out.empty()) sae::save_npy(o.codes_out, codes);  // step 0's batch, for a check
    if (i < o.warmup) continue;
    result.times.ms.push_back(ms);
    // The codes' L0 (nonzeros per row), counted outside the timing; with
    // --data each step's batch differs.
    const double l0 = static_cast<double>((codes.array() != 0.0f).count()) / static_cast<double>(o.batch);
    if (result.times.ms.size() == 1) result.l0_first = l0;
    result.l0_last = l0;
    l0_sum += l0;
  }
  result.l0_mean = l0_sum / static_cast<double>(o.steps);
  result.page_faults_per_step = static_cast<double>(minor_page_faults() - faults_before) / static_cast<double>(o.steps);
  result.peak_rss_mib = peak_rss_mib();
  return result;
}

// TopK or BatchTopK: tied initialisation, b_dec subtracted from the input.
template <typename Activation>
RunResult run_top_k(Activation activation, sae::Batch<float>& X, const sae::Batch<float>* data, sae::Rng& data_rng,
                    const Options& o) {
  using Model = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, Activation>;
  Model model(o.d, o.f, activation, sae::Init::Tied, static_cast<std::uint64_t>(o.seed));
  model.apply_b_dec_to_input() = true;  // as the TopK recipe and dictionary_learning
  if (inference(o)) return run_encoding(model, X, data, o);
  sae::TopKObjective<float> objective;  // no dead latents: AuxK inactive, as at a fresh initialisation
  objective.kernels = o.kernels;
  return run_training(model, objective, X, data_rng, o);
}

RunResult run(const Options& o, sae::Batch<float>& X, const sae::Batch<float>* data, sae::Rng& data_rng) {
  if (o.mode == "trainer") {
    if (o.arch == "gated") return run_trainer(sae::Gated{}, sae::Recipe::Gated, data_rng, o);
    if (o.arch == "jumprelu") return run_trainer(sae::JumpReLU{}, sae::Recipe::JumpReLU, data_rng, o);
    if (o.arch == "batchtopk") return run_trainer(sae::BatchTopK{o.k}, sae::Recipe::BatchTopK, data_rng, o);
    return o.arch == "relu" ? run_trainer(sae::ReLU{}, sae::Recipe::Standard, data_rng, o)
                            : run_trainer(sae::TopK{o.k}, sae::Recipe::TopK, data_rng, o);
  }
  if (o.arch == "jumprelu") {
    using JumpReLUModel = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::JumpReLU>;
    JumpReLUModel model(o.d, o.f, sae::JumpReLU{}, sae::Init::Tied, static_cast<std::uint64_t>(o.seed));
    if (o.target_l0) sae_bench::make_codes_sparse(model, *o.target_l0);
    if (inference(o)) return run_encoding(model, X, data, o);
    return run_training(model, sae::JumpReLUObjective<float>{static_cast<float>(o.l1)}, X, data_rng, o);
  }
  if (o.arch == "gated") {
    using GatedModel = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::Gated>;
    GatedModel model(o.d, o.f, sae::Gated{}, sae::Init::Tied, static_cast<std::uint64_t>(o.seed));
    if (inference(o)) return run_encoding(model, X, data, o);
    return run_training(model, sae::GatedObjective<float>{static_cast<float>(o.l1)}, X, data_rng, o);
  }
  if (o.arch == "relu") {
    sae::SparseAutoEncoder<float> model(o.d, o.f, sae::Init::LinearDefault, static_cast<std::uint64_t>(o.seed));
    if (o.target_l0) sae_bench::make_codes_sparse(model, *o.target_l0);
    if (inference(o)) return run_encoding(model, X, data, o);
    // The seed's objective: the L1 term summed over the batch.
    sae::L1Objective<float> objective{static_cast<float>(o.l1), sae::L1Reduction::SumOverBatch};
    objective.kernels = o.kernels;
    return run_training(model, objective, X, data_rng, o);
  }
  return o.arch == "topk" ? run_top_k(sae::TopK{o.k}, X, data, data_rng, o)
                          : run_top_k(sae::BatchTopK{o.k}, X, data, data_rng, o);
}

// ---- how this binary was built ---------------------------------------------

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

bool built_with_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

bool eigen_uses_blas() {
#ifdef EIGEN_USE_BLAS
  return true;
#else
  return false;
#endif
}

// The instruction set of sae's GEMM kernel (include/sae/detail/gemm.hpp), on
// which float products run, or null when they run on Eigen's or the BLAS's.
const char* gemm_kernel() {
#if defined(SAE_GEMM_KERNEL_AVX512)
  return "AVX-512";
#elif defined(SAE_GEMM_KERNEL_AVX2)
  return "AVX2";
#else
  return nullptr;
#endif
}

// Whether ReLU's codes go through the bfloat16 screen (detail/gemm_screened.hpp).
bool screened_relu() {
#if defined(SAE_SCREENED_RELU)
  return true;
#else
  return false;
#endif
}

// The instruction sets the compiler targeted (Eigen's own list stops at "AVX").
std::string target_features() {
  std::string features;
  [[maybe_unused]] auto add = [&](const char* name) { features += (features.empty() ? "" : " ") + std::string(name); };
#ifdef __AVX512F__
  add("AVX512F");
#endif
#ifdef __AVX512BF16__
  add("AVX512BF16");
#endif
#ifdef __AVX2__
  add("AVX2");
#endif
#ifdef __FMA__
  add("FMA");
#endif
#ifdef __AVX__
  add("AVX");
#endif
#ifdef __SSE4_2__
  add("SSE4.2");
#endif
#ifdef __ARM_NEON
  add("NEON");
#endif
  return features.empty() ? "baseline" : features;
}

// The BLAS behind Eigen's products. OpenBLAS describes itself through two
// functions of its own, declared weak so that under another BLAS (or none)
// they are null instead of a link error.
#if defined(__GNUC__) && defined(__ELF__)
extern "C" {
char* openblas_get_config() __attribute__((weak));
char* openblas_get_corename() __attribute__((weak));
int openblas_get_parallel() __attribute__((weak));
}
#endif

std::string blas_description() {
  if (!eigen_uses_blas())
    return gemm_kernel() ? "none (sae's GEMM kernel, Eigen's for the rest)" : "none (Eigen's GEMM)";
#if defined(__GNUC__) && defined(__ELF__)
  if (openblas_get_config && openblas_get_parallel) {
    const int parallel = openblas_get_parallel();  // 0 sequential, 1 its own pthreads, 2 OpenMP
    return std::string(openblas_get_config()) + ", threads: " +
           (parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "none");
  }
#endif
  return "not OpenBLAS";
}

// The kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...), or "".
std::string blas_kernels() {
#if defined(__GNUC__) && defined(__ELF__)
  if (eigen_uses_blas() && openblas_get_corename) return openblas_get_corename();
#endif
  return "";
}

// A warning when OpenBLAS runs narrower kernels than the CPU has. Its
// DYNAMIC_ARCH build picks kernels by CPU model when it loads, unless
// OPENBLAS_CORETYPE names them: set to Haswell (as on one of our machines), it
// runs AVX2 kernels on an AVX-512 CPU at half the speed of its own choice; and
// a CPU newer than the OpenBLAS may get an older family's. Empty when there
// is nothing to say.
std::string blas_kernel_warning() {
#if defined(__GNUC__) && defined(__ELF__) && (defined(__x86_64__) || defined(__i386__))
  const std::string kernels = blas_kernels();
  if (kernels.empty() || !__builtin_cpu_supports("avx512f")) return "";
  std::string lower = kernels;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* wide : {"skylakex", "cooperlake", "sapphirerapids"})
    if (lower == wide) return "";
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  return "OpenBLAS runs its " + kernels + " kernels on a CPU with AVX-512" +
         (forced ? std::string(" because OPENBLAS_CORETYPE=") + forced + " is set: unset it, or set SkylakeX"
                 : std::string(": if this OpenBLAS predates the CPU, OPENBLAS_CORETYPE=SkylakeX selects its "
                               "AVX-512 kernels"));
#else
  return "";
#endif
}

std::string eigen_version() {
  return std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
         std::to_string(EIGEN_MINOR_VERSION);
}

// ---- output ----------------------------------------------------------------

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else out += c;
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// ---- a loaded model and real activations ------------------------------------

using LoadedModel = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::AnyActivation>;

// sae::load_pretrained, which needs sae::io (benchmarks/CMakeLists.txt
// defines SAE_BENCH_PRETRAINED when it links it).
LoadedModel load_model(const std::string& path) {
#ifdef SAE_BENCH_PRETRAINED
  return sae::load_pretrained<float>(path);
#else
  throw std::runtime_error("--model needs sae::io (nlohmann_json), which this sae_bench was built without; " + path +
                           " not read");
#endif
}

// Runs the configured steps and prints their report.
int benchmark(const Options& given) {
  const double baseline_rss_mib = peak_rss_mib();
  // With --model, D, F and the architecture are the file's.
  Options o = given;
  std::optional<LoadedModel> loaded;
  if (!o.model.empty()) {
    loaded = load_model(o.model);
    o.d = loaded->input_dim();
    o.f = loaded->dict_size();
    o.arch = loaded->activation().architecture();
    if (loaded->activation().holds<sae::TopK>()) o.k = loaded->activation().get<sae::TopK>().k;
    if (loaded->activation().holds<sae::BatchTopK>()) o.k = loaded->activation().get<sae::BatchTopK>().k;
  }
  std::optional<sae::Batch<float>> data;
  if (!o.data.empty()) {
    data = sae::load_npy<float>(o.data);
    if (data->rows() == 0 || data->cols() != o.d)
      throw std::runtime_error(o.data + ": the activations are " + std::to_string(data->rows()) + " x " +
                               std::to_string(data->cols()) + ", expected rows of D = " + std::to_string(o.d) +
                               (loaded ? " (the model's)" : ""));
  }
  const double data_mib = data ? static_cast<double>(data->size()) * sizeof(float) / kMiB : 0.0;
  if (o.threads > 0) {
#ifdef _OPENMP
    omp_set_num_threads(static_cast<int>(o.threads));
#else
    if (o.threads > 1)
      std::fprintf(stderr, "sae_bench: warning: built without OpenMP, so Eigen runs on one thread\n");
#endif
    Eigen::setNbThreads(static_cast<int>(o.threads));
  }
  const int threads = Eigen::nbThreads();

  const double B = static_cast<double>(o.batch), D = static_cast<double>(o.d), F = static_cast<double>(o.f);
  const bool training = !inference(o);
  const double flop_per_bdf = training ? (o.arch == "gated" ? 14.0 : 10.0) : o.mode == "forward" ? 4.0 : 2.0;
  const double nominal_flop = flop_per_bdf * B * D * F;
  const double param_count = 2.0 * D * F + F + D;
  const double param_mib = param_count * sizeof(float) / kMiB;
  // Training holds weights, gradients and Adam's two moments; inference only the weights.
  const double model_state_mib = (training ? 4.0 : 1.0) * param_mib;
  // The batch's activations a dense step needs: input and error (B x D),
  // codes and their gradient (B x F); inference, the input and the codes
  // (and forward's reconstruction, B x D).
  const double activation_mib =
      (training ? 2.0 * B * (D + F) : B * (D + F) + (o.mode == "forward" ? B * D : 0.0)) * sizeof(float) / kMiB;

  std::printf("sae_bench: %s %s, D=%lld F=%lld B=%lld", o.arch.c_str(), o.mode.c_str(), o.d, o.f, o.batch);
  if (o.arch == "topk" || o.arch == "batchtopk") std::printf(" k=%lld", o.k);
  if (o.target_l0) std::printf(" target L0=%g", *o.target_l0);
  std::printf(", kernels %s, %d thread%s\n", sae_bench::kernels_name(o.kernels), threads, threads == 1 ? "" : "s");
  if (loaded)
    std::printf("model: %s, loaded as %s (run-time architecture), b_dec %ssubtracted from the input\n",
                o.model.c_str(), o.arch.c_str(), loaded->apply_b_dec_to_input() ? "" : "not ");
  if (data)
    std::printf("data: %s, %lld rows (step i encodes rows iB .. iB + B - 1, modulo %lld)\n", o.data.c_str(),
                static_cast<long long>(data->rows()), static_cast<long long>(data->rows()));
  std::printf("build: %s, flags '%s' (%s), Eigen %s, OpenMP %s, EIGEN_USE_BLAS %s, GEMM kernel %s, target %s\n",
              compiler().c_str(), SAE_BENCH_CXX_FLAGS, SAE_BENCH_BUILD_TYPE, eigen_version().c_str(),
              built_with_openmp() ? "on" : "off", eigen_uses_blas() ? "on" : "off",
              gemm_kernel() ? gemm_kernel() : "off", target_features().c_str());
  std::printf("BLAS: %s\n", blas_description().c_str());
  if (const std::string warning = blas_kernel_warning(); !warning.empty())
    std::fprintf(stderr, "sae_bench: warning: %s\n", warning.c_str());
  std::fflush(stdout);

  // The input: standard normals (encode: one batch; train: a new one each
  // step), or with --data the file's rows, copied in by run_encoding.
  sae::Rng data_rng(static_cast<std::uint64_t>(o.seed) + 1);
  sae::Batch<float> X(o.batch, o.d);
  if (!data) sae_bench::fill_standard_normal(X, data_rng);
  const sae::Batch<float>* rows = data ? &*data : nullptr;
  const RunResult r = loaded ? run_encoding(*loaded, X, rows, o) : run(o, X, rows, data_rng);

  const double median_ms = r.times.median();
  const double tokens_per_second = B / (median_ms / 1000.0);
  const double effective_gflops = nominal_flop / (median_ms / 1000.0) / 1e9;
  std::printf("median %.2f ms/step, mean %.2f, min %.2f; %.0f tokens/s; %.1f effective GFLOP/s "
              "(dense count %.3g GFLOP/step; the sparse kernels do less)\n",
              median_ms, r.times.mean(), r.times.min(), tokens_per_second, effective_gflops, nominal_flop / 1e9);
  std::printf("L0 %.1f (first timed step %.1f, last %.1f)%s\n", r.l0_mean, r.l0_first, r.l0_last,
              training ? "" : " of the encoded codes");
  std::printf("memory: peak RSS %.1f MiB; parameters %.1f MiB x %d = %.1f MiB, batch activations %.1f MiB, "
              "--data %.1f MiB, sum %.1f MiB; process before allocating %.1f MiB\n",
              r.peak_rss_mib, param_mib, training ? 4 : 1, model_state_mib, activation_mib, data_mib,
              model_state_mib + activation_mib + data_mib, baseline_rss_mib);
  std::printf("page faults: %.1f per timed step\n", r.page_faults_per_step);

  // The last line: everything above, as one JSON object.
  const bool recipe_owned = o.mode == "trainer";  // the recipe's λ and learning rate, not --l1 and --lr
  std::ostringstream json;
  json << "{\"config\": {\"arch\": " << json_string(o.arch) << ", \"mode\": " << json_string(o.mode)
       << ", \"d\": " << o.d << ", \"f\": " << o.f << ", \"batch\": " << o.batch
       << ", \"k\": " << (o.arch == "topk" || o.arch == "batchtopk" ? std::to_string(o.k) : "null")
       << ", \"target_l0\": " << (o.target_l0 ? json_number(*o.target_l0) : "null")
       << ", \"l1\": " << (recipe_owned ? "null" : json_number(o.l1))
       << ", \"lr\": " << (recipe_owned ? "null" : json_number(*o.lr)) << ", \"steps\": " << o.steps
       << ", \"warmup\": " << o.warmup << ", \"seed\": " << o.seed
       << ", \"model\": " << (loaded ? json_string(o.model) : "null")
       << ", \"data\": " << (data ? json_string(o.data) : "null")
       << ", \"data_rows\": " << (data ? std::to_string(data->rows()) : "null") << "}"
       << ", \"median_ms\": " << json_number(median_ms) << ", \"mean_ms\": " << json_number(r.times.mean())
       << ", \"min_ms\": " << json_number(r.times.min())
       << ", \"tokens_per_second\": " << json_number(tokens_per_second)
       << ", \"effective_gflops\": " << json_number(effective_gflops)
       << ", \"nominal_gflop_per_step\": " << json_number(nominal_flop / 1e9)
       << ", \"peak_rss_mib\": " << json_number(r.peak_rss_mib)
       << ", \"baseline_rss_mib\": " << json_number(baseline_rss_mib)
       << ", \"page_faults_per_step\": " << json_number(r.page_faults_per_step)
       << ", \"param_count\": " << json_number(param_count) << ", \"param_mib\": " << json_number(param_mib)
       << ", \"model_state_mib\": " << json_number(model_state_mib)
       << ", \"activation_mib\": " << json_number(activation_mib) << ", \"data_mib\": " << json_number(data_mib)
       << ", \"l0\": " << json_number(r.l0_mean)
       << ", \"l0_first\": " << json_number(r.l0_first) << ", \"l0_last\": " << json_number(r.l0_last)
       << ", \"loss\": " << (training ? json_number(r.loss) : "null") << ", \"threads\": " << threads
       << ", \"kernels\": " << json_string(sae_bench::kernels_name(o.kernels)) << ", \"step_ms\": [";
  for (std::size_t i = 0; i < r.times.ms.size(); ++i) json << (i ? ", " : "") << json_number(r.times.ms[i]);
  json << "], \"build\": {\"compiler\": " << json_string(compiler())
       << ", \"cxx_flags\": " << json_string(SAE_BENCH_CXX_FLAGS)
       << ", \"build_type\": " << json_string(SAE_BENCH_BUILD_TYPE)
       << ", \"openmp\": " << (built_with_openmp() ? "true" : "false")
       << ", \"eigen_version\": " << json_string(eigen_version())
       << ", \"eigen_use_blas\": " << (eigen_uses_blas() ? "true" : "false")
       << ", \"gemm_kernel\": " << (gemm_kernel() ? "true" : "false")
       << ", \"gemm_kernel_isa\": " << (gemm_kernel() ? json_string(gemm_kernel()) : std::string("null"))
       << ", \"screened_relu\": " << (screened_relu() ? "true" : "false")
       << ", \"blas\": " << json_string(blas_description())
       << ", \"blas_kernels\": " << (blas_kernels().empty() ? std::string("null") : json_string(blas_kernels()))
       << ", \"target_features\": " << json_string(target_features())
       << ", \"eigen_simd\": " << json_string(Eigen::SimdInstructionSetsInUse()) << "}}";
  std::printf("%s\n", json.str().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return command_line::run_program("sae_bench", argc, argv, parse, benchmark); }
