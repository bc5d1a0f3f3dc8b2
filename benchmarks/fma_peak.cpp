// sae_fma_peak: the machine's FP32 multiply-add throughput, measured.
//
//   sae_fma_peak [--threads T] [--seconds S]
//
// Each thread runs 12 independent chains of packet multiply-adds (Eigen's
// pmadd: one FMA instruction per packet where the build has FMA) and nothing
// else, which is the most floating-point work per second the cores can do at
// the SIMD width this build uses. Printed for 1 .. T threads: GFLOP/s (2 per
// multiply-add per lane). A GEMM, or a step made of GEMMs, cannot beat it,
// so it tells how much room a measured GEMM rate leaves; it is measured rather
// than computed from the nominal clock because these cores run above it.
// The last line of standard output is one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <Eigen/Core>

#include "command_line.hpp"

namespace {

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int kLanes = Eigen::internal::packet_traits<float>::size;
constexpr int kChains = 12;  // enough independent chains to cover FMA latency × pipes (4 × 2 on Zen 3)

// Runs `iterations` rounds of kChains multiply-adds and returns a value that
// depends on all of them, so none can be optimised away.
float multiply_add_chains(long long iterations, float seed) {
  using namespace Eigen::internal;
  Packet chain[kChains];
  for (int i = 0; i < kChains; ++i) chain[i] = pset1<Packet>(seed + static_cast<float>(i));  // distinct, not merged
  const Packet factor = pset1<Packet>(0.9999999f), addend = pset1<Packet>(1e-7f);
  for (long long n = 0; n < iterations; ++n)
    for (int i = 0; i < kChains; ++i) chain[i] = pmadd(chain[i], factor, addend);
  Packet sum = chain[0];
  for (int i = 1; i < kChains; ++i) sum = padd(sum, chain[i]);
  return predux(sum);
}

// GFLOP/s of `threads` threads each running the chains for about `seconds`.
double measure(int threads, double seconds, long long iterations_per_second) {
  const long long iterations = std::max<long long>(1, static_cast<long long>(seconds * iterations_per_second));
  std::vector<float> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] { results[static_cast<std::size_t>(t)] = multiply_add_chains(iterations, 1.0f + t); });
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile float sink = results[0];
  (void)sink;
  return 2.0 * kLanes * kChains * static_cast<double>(iterations) * threads / elapsed / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: sae_fma_peak [--threads T] [--seconds S]\n"
      "  --threads T   measure 1 .. T threads (default: every core)\n"
      "  --seconds S   about how long each measurement runs (default 1)\n";
  try {
    long long max_threads = std::max(1u, std::thread::hardware_concurrency());
    double seconds = 1.0;
    command_line::for_each_flag(argc, argv, usage, [&](const std::string& flag, const std::string& value) {
      if (flag == "--threads") max_threads = command_line::parse_integer(flag, value);
      else if (flag == "--seconds") seconds = command_line::parse_real(flag, value);
      else return false;
      return true;
    });
    if (max_threads < 1 || max_threads > 1024) throw std::invalid_argument("--threads must be in [1, 1024]");
    if (!(seconds > 0 && seconds <= 60)) throw std::invalid_argument("--seconds must be in (0, 60]");

    // Calibrate the iteration count on one thread, then measure each thread count.
    const long long probe = 1 << 20;
    const auto start = std::chrono::steady_clock::now();
    volatile float sink = multiply_add_chains(probe, 1.0f);
    (void)sink;
    const double probe_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto per_second = static_cast<long long>(static_cast<double>(probe) / std::max(probe_seconds, 1e-6));

    std::string json = "{\"lanes\": " + std::to_string(kLanes) + ", \"simd\": \"" +
                       Eigen::SimdInstructionSetsInUse() + "\", \"gflops\": {";
    for (int threads = 1; threads <= max_threads; ++threads) {
      const double gflops = measure(threads, seconds, per_second);
      std::printf("threads %d: %.1f GFLOP/s FP32 multiply-add peak (%.1f per thread, %d lanes)\n", threads, gflops,
                  gflops / threads, kLanes);
      char entry[64];
      std::snprintf(entry, sizeof entry, "%s\"%d\": %.2f", threads > 1 ? ", " : "", threads, gflops);
      json += entry;
    }
    std::printf("%s}}\n", json.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sae_fma_peak: error: %s\n", e.what());
    return 2;
  }
}
