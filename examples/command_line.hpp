// examples/command_line.hpp: the `--flag value` parsing and the main() that
// quickstart, sae_train, sae_report and benchmarks/sae_bench share. Part of the
// programs, not of the library: it is not installed.
#pragma once

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace command_line {

/// Each program's main: options = parse(argc, argv), then return run(options).
/// What parse throws is a bad command line: "<program>: <message>" on stderr and
/// exit status 2, as getopt and argparse programs do. What run throws is a
/// failure (a missing file, a bad checkpoint): the same message and status 1.
template <typename Parse, typename Run>
int run_program(const char* program, int argc, char** argv, Parse&& parse, Run&& run) {
  decltype(parse(argc, argv)) options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

/// Walks argv as `--flag value` pairs, calling handle(flag, value) on each;
/// handle returns false for a flag it does not know. --help or -h prints
/// `usage` and exits 0. Throws std::invalid_argument on an argument that is not
/// a flag, a flag with no value after it, or a flag handle does not know.
template <typename Handler>
void for_each_flag(int argc, char** argv, const char* usage, Handler&& handle) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (flag.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument '" + flag + "'");
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + flag);
    const std::string value = argv[++i];
    if (!handle(flag, value)) throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
}

/// `text` as a whole integer; throws std::invalid_argument naming `flag` otherwise.
inline long long parse_integer(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {  // not a number, or out of range
    used = 0;
  }
  if (used == 0 || used != text.size()) throw std::invalid_argument(flag + " needs an integer, got '" + text + "'");
  return value;
}

/// `text` as a whole finite number; throws std::invalid_argument naming `flag` otherwise.
inline double parse_real(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {  // not a number, or out of range
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(value))
    throw std::invalid_argument(flag + " needs a finite number, got '" + text + "'");
  return value;
}

/// The non-empty parts of "a,b,,c": {"a", "b", "c"}.
inline std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

}  // namespace command_line
