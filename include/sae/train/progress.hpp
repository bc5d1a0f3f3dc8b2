// sae/train/progress.hpp: the progress line of a training loop.
//
//   sae::ProgressReporter progress(std::cerr, total_steps,
//                                  {sae::is_terminal(std::cerr), /*every_steps=*/100, /*interval_ms=*/100});
//   for (step = 1; step <= total_steps; ++step) {
//     ... train ...
//     if (progress.due(step, seconds))       // optional: skip computing values nobody sees
//       progress.update(step, tokens, seconds, {{"loss", loss}, {"L0", l0}, {"FVU", fvu}, {"dead", dead}});
//   }
//   progress.finish();                       // also done by the destructor
//
// On a terminal, one line rewritten in place with '\r' (padded with spaces
// over the rest of a longer previous line), at most once every interval_ms of
// the caller's elapsed time, and always at the last step, which ends the line
// with '\n'. Otherwise plain lines, one every every_steps steps and one at the
// last step. Either way a line reads
//
//   step 1200/10000 (12.0%)  410k tok/s  elapsed 0:00:12  ETA 0:01:28  loss 0.0123  L0 35.25
//
// The rate is the average since the start (tokens / elapsed seconds); the ETA
// assumes the remaining steps take as long as the average step so far. Time
// is whatever the caller passes (seconds since the start, e.g. from
// std::chrono::steady_clock): the reporter reads no clock, so it is
// deterministic under test.
//
// Keep lines shorter than the terminal is wide: '\r' returns to the start of
// the last screen row only, so a wrapped line is not rewritten in place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iostream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace sae {

/// True when `out` is std::cout, std::cerr or std::clog and its file
/// descriptor is a terminal (isatty). Any other stream, including a
/// std::ofstream on /dev/tty, is reported as not a terminal. A stream whose
/// rdbuf was replaced is judged by its original descriptor.
inline bool is_terminal(const std::ostream& out) {
  int fd = -1;
  if (&out == &std::cout) fd = 1;
  else if (&out == &std::cerr || &out == &std::clog) fd = 2;
  if (fd < 0) return false;
#if defined(_WIN32)
  return _isatty(fd) != 0;
#else
  return ::isatty(fd) != 0;
#endif
}

/// Seconds as h:mm:ss, rounded to the nearest second; hours are not capped
/// ("100:00:00"). Negative, non-finite or absurd (>= 1e12 s) values give "-:--:--".
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0.0 && seconds < 1e12)) return "-:--:--";
  const long long total = std::llround(seconds);
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  return buffer;
}

/// A rate with 3 significant digits and a k/M/G/T suffix: "5.5", "999", "1.23k", "410k", "1.5M".
/// Negative or non-finite values give "-".
inline std::string format_rate(double per_second) {
  if (!(per_second >= 0.0 && std::isfinite(per_second))) return "-";
  static constexpr const char* suffixes[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (i < 4 && per_second >= 999.5) {  // 999.5 would print as "1e+03" without the next suffix
    per_second /= 1000.0;
    ++i;
  }
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.3g%s", per_second, suffixes[i]);
  return buffer;
}

/// A named value shown on the progress line, printed with 4 significant digits.
struct ProgressValue {
  std::string_view name;
  double value;
};

struct ProgressOptions {
  bool is_terminal = false;       ///< rewrite one line in place (pass sae::is_terminal(stream))
  std::int64_t every_steps = 100; ///< not a terminal: a line every this many steps (>= 1)
  std::int64_t interval_ms = 100; ///< a terminal: at most one update per this many ms (>= 0)
};

/// Progress of a loop of `total_steps` steps (0 if unknown: no percentage or
/// ETA), written to `out`, which must outlive the reporter.
///
/// requires: step >= 0 and never decreasing, tokens >= 0, elapsed_seconds
///           finite and >= 0 (std::invalid_argument otherwise).
/// ensures:  each step is printed at most once.
class ProgressReporter {
 public:
  ProgressReporter(std::ostream& out, std::int64_t total_steps, ProgressOptions options = {})
      : out_(&out), total_steps_(total_steps), options_(options) {
    if (total_steps < 0)
      throw std::invalid_argument("sae::ProgressReporter: total_steps is " + std::to_string(total_steps) +
                                  ", expected >= 0 (0: unknown)");
    if (options.every_steps < 1)
      throw std::invalid_argument("sae::ProgressReporter: every_steps is " + std::to_string(options.every_steps) +
                                  ", expected >= 1");
    if (options.interval_ms < 0)
      throw std::invalid_argument("sae::ProgressReporter: interval_ms is " + std::to_string(options.interval_ms) +
                                  ", expected >= 0");
  }

  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  /// Ends an open terminal line (see finish()).
  ~ProgressReporter() {
    try {
      finish();
    } catch (...) {  // a stream with exceptions enabled must not throw out of a destructor
    }
  }

  /// Whether update(step, ..., elapsed_seconds, ...) would print.
  bool due(std::int64_t step, double elapsed_seconds) const {
    check_arguments(step, 0, elapsed_seconds);
    if (printed_any_ && step <= last_printed_step_) return false;
    if (total_steps_ > 0 && step >= total_steps_) return true;  // the last step always shows
    if (!options_.is_terminal) return step % options_.every_steps == 0;
    return !printed_any_ || milliseconds(elapsed_seconds) - last_printed_ms_ >= options_.interval_ms;
  }

  /// Prints the line for `step` if it is due; returns whether it printed.
  bool update(std::int64_t step, std::int64_t tokens, double elapsed_seconds,
              std::initializer_list<ProgressValue> values = {}) {
    return update(step, tokens, elapsed_seconds, values.begin(), values.end());
  }
  bool update(std::int64_t step, std::int64_t tokens, double elapsed_seconds,
              const std::vector<ProgressValue>& values) {
    return update(step, tokens, elapsed_seconds, values.data(), values.data() + values.size());
  }

  /// Ends the in-place terminal line with '\n' if one is open (after an early
  /// stop, say), so that later output starts on a line of its own. Nothing
  /// otherwise; safe to call more than once.
  void finish() {
    if (line_open_) {
      *out_ << '\n' << std::flush;
      line_open_ = false;
      open_length_ = 0;
    }
  }

  /// The text of the line for these arguments, without '\r' or '\n'.
  std::string line(std::int64_t step, std::int64_t tokens, double elapsed_seconds,
                   std::initializer_list<ProgressValue> values = {}) const {
    return line(step, tokens, elapsed_seconds, values.begin(), values.end());
  }

  std::int64_t total_steps() const { return total_steps_; }
  const ProgressOptions& options() const { return options_; }

 private:
  bool update(std::int64_t step, std::int64_t tokens, double elapsed_seconds, const ProgressValue* begin,
              const ProgressValue* end) {
    check_arguments(step, tokens, elapsed_seconds);
    if (!due(step, elapsed_seconds)) return false;
    const std::string text = line(step, tokens, elapsed_seconds, begin, end);
    const bool last = total_steps_ > 0 && step >= total_steps_;
    if (options_.is_terminal) {
      std::string padded = '\r' + text;
      if (text.size() < open_length_) padded.append(open_length_ - text.size(), ' ');
      if (last) padded += '\n';
      *out_ << padded << std::flush;
      line_open_ = !last;
      open_length_ = last ? 0 : text.size();
    } else {
      *out_ << text << '\n' << std::flush;
    }
    printed_any_ = true;
    last_printed_step_ = step;
    last_printed_ms_ = milliseconds(elapsed_seconds);
    return true;
  }

  std::string line(std::int64_t step, std::int64_t tokens, double elapsed_seconds, const ProgressValue* begin,
                   const ProgressValue* end) const {
    check_arguments(step, tokens, elapsed_seconds);
    char buffer[64];
    std::string text = "step " + std::to_string(step);
    if (total_steps_ > 0) {
      std::snprintf(buffer, sizeof buffer, "/%lld (%.1f%%)", static_cast<long long>(total_steps_),
                    100.0 * static_cast<double>(step) / static_cast<double>(total_steps_));
      text += buffer;
    }
    text += "  ";
    text += elapsed_seconds > 0.0 ? format_rate(static_cast<double>(tokens) / elapsed_seconds) : std::string("-");
    text += " tok/s  elapsed " + format_duration(elapsed_seconds);
    if (total_steps_ > 0) {
      const double remaining = step > 0 ? static_cast<double>(std::max<std::int64_t>(total_steps_ - step, 0)) *
                                              elapsed_seconds / static_cast<double>(step)
                                        : -1.0;
      text += "  ETA " + format_duration(remaining);
    }
    for (const ProgressValue* v = begin; v != end; ++v) {
      std::snprintf(buffer, sizeof buffer, "%.4g", v->value);
      text += "  ";
      text += v->name;
      text += ' ';
      text += buffer;
    }
    return text;
  }

  static void check_arguments(std::int64_t step, std::int64_t tokens, double elapsed_seconds) {
    if (step < 0 || tokens < 0 || !(elapsed_seconds >= 0.0 && std::isfinite(elapsed_seconds)))
      throw std::invalid_argument("sae::ProgressReporter: step " + std::to_string(step) + ", tokens " +
                                  std::to_string(tokens) + ", elapsed_seconds " + std::to_string(elapsed_seconds) +
                                  ": expected non-negative values and a finite time");
  }

  // Whole milliseconds, so that decimal times compare as written (0.3 s - 0.2 s is 100 ms, not 99.99...).
  static std::int64_t milliseconds(double seconds) {
    const double ms = seconds * 1000.0;
    return ms < 9e18 ? static_cast<std::int64_t>(std::llround(ms)) : INT64_MAX;  // (280 million years)
  }

  std::ostream* out_;
  std::int64_t total_steps_;
  ProgressOptions options_;
  bool printed_any_ = false;
  bool line_open_ = false;
  std::size_t open_length_ = 0;
  std::int64_t last_printed_step_ = 0;
  std::int64_t last_printed_ms_ = 0;
};

}  // namespace sae
