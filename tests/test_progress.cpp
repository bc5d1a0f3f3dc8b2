// Tests for sae/train/progress.hpp. Time is passed explicitly, so nothing
// sleeps; expected lines are written out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <sae/train/progress.hpp>

#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace {

std::size_t count_of(const std::string& text, char c) {
  std::size_t n = 0;
  for (char x : text) n += x == c;
  return n;
}

}  // namespace

TEST_CASE("format_duration writes h:mm:ss", "[progress]") {
  CHECK(sae::format_duration(0.0) == "0:00:00");
  CHECK(sae::format_duration(59.4) == "0:00:59");
  CHECK(sae::format_duration(59.6) == "0:01:00");  // rounded to the nearest second
  CHECK(sae::format_duration(3661.0) == "1:01:01");
  CHECK(sae::format_duration(86399.0) == "23:59:59");
  CHECK(sae::format_duration(360000.0) == "100:00:00");  // hours are not capped
  CHECK(sae::format_duration(-1.0) == "-:--:--");
  CHECK(sae::format_duration(std::nan("")) == "-:--:--");
  CHECK(sae::format_duration(INFINITY) == "-:--:--");
  CHECK(sae::format_duration(1e300) == "-:--:--");
}

TEST_CASE("format_rate keeps 3 significant digits with a suffix", "[progress]") {
  CHECK(sae::format_rate(0.0) == "0");
  CHECK(sae::format_rate(5.5) == "5.5");
  CHECK(sae::format_rate(999.0) == "999");
  CHECK(sae::format_rate(999.7) == "1k");  // not "1e+03"
  CHECK(sae::format_rate(1234.0) == "1.23k");
  CHECK(sae::format_rate(409600.0) == "410k");
  CHECK(sae::format_rate(1.5e6) == "1.5M");
  CHECK(sae::format_rate(2.5e9) == "2.5G");
  CHECK(sae::format_rate(7e12) == "7T");
  CHECK(sae::format_rate(-1.0) == "-");
  CHECK(sae::format_rate(std::nan("")) == "-");
}

TEST_CASE("ProgressReporter line: rate, elapsed, ETA and values", "[progress]") {
  std::ostringstream out;
  const sae::ProgressReporter progress(out, 1000);
  // Step 100 of 1000 after 1 s, 4096 tokens a step: 409600 tok/s; 900 steps
  // left at 0.01 s each: 9 s.
  CHECK(progress.line(100, 409600, 1.0, {{"loss", 0.0123}, {"L0", 35.25}, {"FVU", 0.1234}, {"dead", 0.02}}) ==
        "step 100/1000 (10.0%)  410k tok/s  elapsed 0:00:01  ETA 0:00:09  loss 0.0123  L0 35.25  FVU 0.1234  dead 0.02");
  // Values have 4 significant digits; NaN shows as nan.
  CHECK(progress.line(500, 1000, 4.0, {{"loss", 1.0 / 3.0}, {"x", std::nan("")}}) ==
        "step 500/1000 (50.0%)  250 tok/s  elapsed 0:00:04  ETA 0:00:04  loss 0.3333  x nan");
  // No time elapsed: no rate. Step 0: no ETA.
  CHECK(progress.line(0, 0, 0.0) == "step 0/1000 (0.0%)  - tok/s  elapsed 0:00:00  ETA -:--:--");

  // A long run: step 100 of 100000 after 3.7 s. ETA 99900 * 3.7 / 100 = 3696.3 s = 1:01:36;
  // rate 409600 / 3.7 = 110702.7 tok/s.
  const sae::ProgressReporter long_run(out, 100000);
  CHECK(long_run.line(100, 409600, 3.7) ==
        "step 100/100000 (0.1%)  111k tok/s  elapsed 0:00:04  ETA 1:01:36");

  // Unknown total: no percentage, no ETA.
  const sae::ProgressReporter unknown(out, 0);
  CHECK(unknown.line(5, 500, 2.0, {{"loss", 2.0}}) == "step 5  250 tok/s  elapsed 0:00:02  loss 2");
  CHECK(out.str().empty());  // line() prints nothing
}

TEST_CASE("ProgressReporter, not a terminal: a plain line every every_steps steps", "[progress]") {
  std::ostringstream out;
  {
    sae::ProgressReporter progress(out, 1000, {/*is_terminal=*/false, /*every_steps=*/100, /*interval_ms=*/100});
    int printed = 0;
    for (std::int64_t step = 1; step <= 1000; ++step) {
      const double seconds = static_cast<double>(step) / 100.0;
      const bool due = progress.due(step, seconds);
      const bool did = progress.update(step, step * 4096, seconds,
                                       {{"loss", 0.0123}, {"L0", 35.25}, {"FVU", 0.1234}, {"dead", 0.02}});
      CHECK(due == did);
      CHECK(did == (step % 100 == 0));
      printed += did;
    }
    CHECK(printed == 10);
  }
  const std::string text = out.str();
  CHECK(count_of(text, '\n') == 10);
  CHECK(count_of(text, '\r') == 0);
  const std::string first = text.substr(0, text.find('\n') + 1);
  CHECK(first ==
        "step 100/1000 (10.0%)  410k tok/s  elapsed 0:00:01  ETA 0:00:09  loss 0.0123  L0 35.25  FVU 0.1234  dead 0.02\n");
  const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  CHECK(last ==
        "step 1000/1000 (100.0%)  410k tok/s  elapsed 0:00:10  ETA 0:00:00  loss 0.0123  L0 35.25  FVU 0.1234  dead 0.02\n");
}

TEST_CASE("ProgressReporter, not a terminal: the last step always prints, each step once", "[progress]") {
  std::ostringstream out;
  sae::ProgressReporter progress(out, 250, {false, 100, 100});
  for (std::int64_t step : {99, 100, 100, 101, 200, 249, 250, 250}) progress.update(step, step, 1.0);
  // 100 (once), 200 and the last step 250 (once).
  const std::string text = out.str();
  CHECK(count_of(text, '\n') == 3);
  CHECK(text.find("step 100/250") == 0);
  CHECK(text.find("step 200/250") != std::string::npos);
  CHECK(text.find("step 250/250") != std::string::npos);
  progress.finish();  // nothing to end in plain mode
  CHECK(out.str() == text);
}

TEST_CASE("ProgressReporter on a terminal: one line rewritten in place, throttled", "[progress]") {
  std::ostringstream out;
  sae::ProgressReporter progress(out, 10, {/*is_terminal=*/true, /*every_steps=*/100, /*interval_ms=*/100});
  // Printed: the first update, then only once 100 ms have passed since the last print,
  // and the last step whatever the time.
  struct Call {
    std::int64_t step;
    double seconds;
    bool prints;
  };
  const Call calls[] = {{1, 0.00, true},  {2, 0.05, false}, {3, 0.10, true},  {4, 0.15, false},
                        {5, 0.199, false}, {6, 0.20, true},  {7, 0.30, true},  {8, 0.35, false},
                        {9, 0.36, false}, {10, 0.37, true}};
  std::string expected;
  std::size_t open = 0;  // length of the line on screen
  for (const Call& call : calls) {
    INFO("step " << call.step);
    CHECK(progress.due(call.step, call.seconds) == call.prints);
    // Steps 6 and later show no values: a shorter line, padded over the longer one.
    const std::int64_t tokens = call.step * 100;
    const std::string text = call.step < 6 ? progress.line(call.step, tokens, call.seconds, {{"loss", 2.5}})
                                           : progress.line(call.step, tokens, call.seconds);
    const bool printed = call.step < 6 ? progress.update(call.step, tokens, call.seconds, {{"loss", 2.5}})
                                       : progress.update(call.step, tokens, call.seconds);
    CHECK(printed == call.prints);
    if (printed) {
      expected += '\r' + text;
      if (text.size() < open) expected.append(open - text.size(), ' ');
      open = text.size();
    }
  }
  expected += '\n';  // the last step ends the line
  CHECK(out.str() == expected);

  // Hand-checked pieces: the first line (no time elapsed yet), and the padding.
  CHECK(out.str().rfind("\rstep 1/10 (10.0%)  - tok/s  elapsed 0:00:00  ETA 0:00:00  loss 2.5\r", 0) == 0);
  const std::string line6 = "step 6/10 (60.0%)  3k tok/s  elapsed 0:00:00  ETA 0:00:00";
  const std::string line3 = "step 3/10 (30.0%)  3k tok/s  elapsed 0:00:00  ETA 0:00:00  loss 2.5";
  CHECK(out.str().find('\r' + line3 + '\r' + line6 + std::string(line3.size() - line6.size(), ' ') + '\r') !=
        std::string::npos);
  CHECK(count_of(out.str(), '\n') == 1);

  progress.finish();  // the last step already ended the line
  CHECK(out.str() == expected);
}

TEST_CASE("ProgressReporter on a terminal: finish and the destructor end an open line", "[progress]") {
  std::ostringstream out;
  {
    sae::ProgressReporter progress(out, 100, {true, 100, 0});  // interval 0: every step prints
    progress.update(1, 10, 0.5);
    progress.update(2, 20, 0.5);
    CHECK(out.str().back() != '\n');
    progress.finish();
    CHECK(out.str().back() == '\n');
    progress.finish();  // once only
    CHECK(count_of(out.str(), '\n') == 1);
    CHECK(count_of(out.str(), '\r') == 2);
    const std::size_t before = out.str().size();
    progress.update(3, 3, 1.0);  // reopens the line, not padded to the closed one
    CHECK(out.str().substr(before) == "\rstep 3/100 (3.0%)  3 tok/s  elapsed 0:00:01  ETA 0:00:32");
  }  // the destructor ends it
  CHECK(out.str().back() == '\n');
  CHECK(count_of(out.str(), '\n') == 2);

  // Unknown total on a terminal: the line stays open until finish.
  std::ostringstream unknown_out;
  sae::ProgressReporter unknown(unknown_out, 0, {true, 100, 100});
  CHECK(unknown.update(1, 1, 0.0));
  CHECK_FALSE(unknown.update(2, 2, 0.05));
  CHECK(unknown.update(3, 3, 0.1));
  unknown.finish();
  CHECK(unknown_out.str() == "\rstep 1  - tok/s  elapsed 0:00:00\rstep 3  30 tok/s  elapsed 0:00:00\n");
}

TEST_CASE("ProgressReporter rejects bad arguments", "[progress]") {
  std::ostringstream out;
  CHECK_THROWS_AS(sae::ProgressReporter(out, -1), std::invalid_argument);
  CHECK_THROWS_AS(sae::ProgressReporter(out, 10, {false, 0, 100}), std::invalid_argument);
  CHECK_THROWS_AS(sae::ProgressReporter(out, 10, {true, 1, -5}), std::invalid_argument);
  sae::ProgressReporter progress(out, 10);
  CHECK_THROWS_AS(progress.update(1, 1, -0.5), std::invalid_argument);
  CHECK_THROWS_AS(progress.update(1, 1, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(progress.update(-1, 1, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(progress.update(1, -1, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(progress.due(1, INFINITY), std::invalid_argument);
  CHECK(out.str().empty());
}

TEST_CASE("is_terminal asks isatty for the standard streams only", "[progress]") {
  std::ostringstream out;
  CHECK_FALSE(sae::is_terminal(out));
#if !defined(_WIN32)
  CHECK(sae::is_terminal(std::cout) == (::isatty(1) != 0));
  CHECK(sae::is_terminal(std::cerr) == (::isatty(2) != 0));
  CHECK(sae::is_terminal(std::clog) == (::isatty(2) != 0));
#endif
}
