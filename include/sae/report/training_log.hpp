// sae/report/training_log.hpp: the training curves of a sae_train --metrics file.
//
//   sae::TrainingLog log = sae::read_training_log("run/metrics.jsonl");
//   for (const auto& c : log.curves) plot(c.label, c.step, c.value);
//   log.absent;   // labels asked for that no line has (e.g. "FVU")
//
// The file is JSON lines, one object per logged step (sae::MetricsLog, see
// sae/train/metrics_log.hpp): sae_train writes step, tokens, loss, l2, l1, l0,
// lr, l1_coefficient, grad_norm and dead_fraction. A curve is read for each
// wanted series under any of its keys; null values (NaN, as MetricsLog writes
// it) and missing keys are gaps, not errors. The x value is "step", or the
// line number for lines without one. Blank lines are skipped; a line that is
// not a JSON object is a std::runtime_error naming the file and the line.
#pragma once

#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sae {

/// A series to read: its label on the page and the keys it may be logged under.
struct TrainingSeries {
  std::string label;
  std::vector<std::string> keys;
};

/// The series a report plots: loss, L0, FVU, dead fraction.
inline std::vector<TrainingSeries> default_training_series() {
  return {{"loss", {"loss"}},
          {"L0", {"l0", "L0"}},
          {"FVU", {"fvu", "FVU"}},
          {"dead fraction", {"dead_fraction", "dead"}}};
}

struct TrainingCurve {
  std::string label;
  std::string key;            ///< the key it was read under
  std::vector<double> step;   ///< x values
  std::vector<double> value;  ///< y values, finite
};

struct TrainingLog {
  std::string path;
  long long lines = 0;               ///< JSON objects read
  std::vector<TrainingCurve> curves;  ///< in the order asked for, only those with a value
  std::vector<std::string> absent;    ///< labels asked for that no line has
};

inline TrainingLog read_training_log(const std::string& path,
                                     const std::vector<TrainingSeries>& wanted = default_training_series()) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the metrics file");
  TrainingLog log;
  log.path = path;
  std::vector<TrainingCurve> curves(wanted.size());
  for (std::size_t i = 0; i < wanted.size(); ++i) curves[i].label = wanted[i].label;

  std::string line;
  long long line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object())
      throw std::runtime_error(path + ":" + std::to_string(line_number) +
                               ": not a JSON object (a metrics file has one JSON object per line)");
    ++log.lines;
    const auto step_it = object.find("step");
    const double step = step_it != object.end() && step_it->is_number() ? step_it->get<double>()
                                                                        : static_cast<double>(line_number);
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      for (const std::string& key : wanted[i].keys) {
        const auto it = object.find(key);
        if (it == object.end() || !it->is_number()) continue;
        const double value = it->get<double>();
        if (!std::isfinite(value)) break;
        if (curves[i].key.empty()) curves[i].key = key;
        curves[i].step.push_back(step);
        curves[i].value.push_back(value);
        break;
      }
    }
  }
  if (in.bad()) throw std::runtime_error(path + ": read error");
  for (TrainingCurve& c : curves) {
    if (c.value.empty()) log.absent.push_back(c.label);
    else log.curves.push_back(std::move(c));
  }
  return log;
}

}  // namespace sae
