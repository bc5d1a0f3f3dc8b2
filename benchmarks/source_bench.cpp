// sae_source_bench: how long a training loop waits for NpyFileSource's
// batches, with the next buffer read ahead and without.
//
//   sae_source_bench --data A.npy[,B.npy...] [--steps N] [--batch B] [--work-ms M]
//                    [--rounds R] [--drop-caches 1] [--write N [--dim D]]
//
// Each round runs the two settings one after the other (read_ahead on, then
// off, alternating which goes first), each pulling N batches of B rows and
// spinning M milliseconds after each as a stand-in for the training step
// (on this thread only: a real step keeps every core busy). What it reports
// is the time spent inside next_batch: the refills, every buffer_rows / B
// steps, and the read-ahead's advice in between. A file that is in the page
// cache already shows only the copy; with --drop-caches (root on Linux) the
// page cache is emptied before each run, so every refill starts from the disk,
// as for data larger than RAM. --write N first writes N rows of normal noise
// (width --dim, default 768) to the one --data file, so that the benchmark
// needs no activations of its own. The last line of standard output is one
// JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <sae/io/npy.hpp>
#include <sae/train/data_source.hpp>

#include "command_line.hpp"
#include "support.hpp"

namespace {

using sae_bench::Clock;
using sae_bench::milliseconds_since;

/// Empties the page cache (Linux, root); false when that is not allowed.
bool drop_page_cache() {
  ::sync();
  std::ofstream control("/proc/sys/vm/drop_caches");
  if (!control) return false;
  control << "3\n";
  control.flush();
  return control.good();
}

struct RunResult {
  double wait_ms = 0;     // inside next_batch, all steps
  double longest_ms = 0;  // the longest single call (a refill)
};

RunResult run(const std::vector<std::string>& paths, bool read_ahead, long long steps, sae::Index batch,
              double work_ms) {
  sae::NpyFileSourceOptions options;
  options.seed = 1;
  options.read_ahead = read_ahead;
  sae::NpyFileSource<float> source(paths, options);
  sae::Batch<float> rows;
  RunResult result;
  float sink = 0;
  for (long long step = 0; step < steps; ++step) {
    const auto start = Clock::now();
    source.next_batch(rows, batch);
    const double ms = milliseconds_since(start);
    result.wait_ms += ms;
    result.longest_ms = std::max(result.longest_ms, ms);
    sink += rows(0, 0);
    const auto work = Clock::now();
    while (milliseconds_since(work) < work_ms) {
    }
  }
  volatile float keep = sink;
  (void)keep;
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: sae_source_bench --data A.npy[,B.npy...] [options]\n"
      "  --data FILES    [N, D] activations, as sae_train reads them\n"
      "  --steps N       batches per run (default 256: four refills of the default buffer at B = 1024)\n"
      "  --batch B       rows per batch (default 1024)\n"
      "  --work-ms M     milliseconds of spinning after each batch, the step's stand-in (default 30)\n"
      "  --rounds R      rounds of both settings (default 2)\n"
      "  --drop-caches 1 empty the page cache before each run (Linux, root)\n"
      "  --write N       first write N rows of normal noise to the (one) --data file\n"
      "  --dim D         width of the rows --write writes (default 768)\n";
  try {
    std::vector<std::string> paths;
    long long steps = 256, batch = 1024, rounds = 2, write_rows = 0, dim = 768;
    double work_ms = 30;
    bool drop_caches = false;
    command_line::for_each_flag(argc, argv, usage, [&](const std::string& flag, const std::string& value) {
      if (flag == "--data") paths = command_line::split_commas(value);
      else if (flag == "--steps") steps = command_line::parse_integer(flag, value);
      else if (flag == "--batch") batch = command_line::parse_integer(flag, value);
      else if (flag == "--work-ms") work_ms = command_line::parse_real(flag, value);
      else if (flag == "--rounds") rounds = command_line::parse_integer(flag, value);
      else if (flag == "--drop-caches") drop_caches = command_line::parse_integer(flag, value) != 0;
      else if (flag == "--write") write_rows = command_line::parse_integer(flag, value);
      else if (flag == "--dim") dim = command_line::parse_integer(flag, value);
      else return false;
      return true;
    });
    if (paths.empty()) throw std::invalid_argument("--data is required");
    if (steps < 1 || batch < 1 || rounds < 1) throw std::invalid_argument("--steps, --batch and --rounds must be >= 1");
    if (!(work_ms >= 0 && work_ms <= 10000)) throw std::invalid_argument("--work-ms must be in [0, 10000]");
    if (write_rows < 0 || dim < 1) throw std::invalid_argument("--write must be >= 0 and --dim >= 1");
    if (write_rows > 0) {
      if (paths.size() != 1) throw std::invalid_argument("--write writes one --data file, not " +
                                                        std::to_string(paths.size()));
      sae::save_npy(paths[0], sae_bench::standard_normal_batch(static_cast<sae::Index>(write_rows),
                                                               static_cast<sae::Index>(dim), 7));
    }
    if (drop_caches && !drop_page_cache())
      throw std::runtime_error("--drop-caches: cannot write /proc/sys/vm/drop_caches (Linux, as root)");

    std::vector<double> wait[2];  // [read_ahead]
    for (long long round = 0; round < rounds; ++round) {
      for (int i = 0; i < 2; ++i) {
        const bool read_ahead = (i + round) % 2 == 0;
        if (drop_caches) drop_page_cache();
        const RunResult r = run(paths, read_ahead, steps, static_cast<sae::Index>(batch), work_ms);
        wait[read_ahead].push_back(r.wait_ms);
        std::printf("round %lld, read_ahead %-3s: %8.1f ms waiting in next_batch over %lld steps (%.2f ms/step), "
                    "longest call %.1f ms\n",
                    round + 1, read_ahead ? "on" : "off", r.wait_ms, steps, r.wait_ms / static_cast<double>(steps),
                    r.longest_ms);
        std::fflush(stdout);
      }
    }
    const auto list = [](const std::vector<double>& v) {
      std::string s = "[";
      for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    };
    std::printf("{\"steps\": %lld, \"batch\": %lld, \"work_ms\": %g, \"drop_caches\": %s, "
                "\"wait_ms_read_ahead\": %s, \"wait_ms_no_read_ahead\": %s}\n",
                steps, batch, work_ms, drop_caches ? "true" : "false", list(wait[1]).c_str(), list(wait[0]).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sae_source_bench: error: %s\n", e.what());
    return 2;
  }
}
