// sae/report/report_json.hpp: a FeatureReport as JSON, for other tools.
//
//   nlohmann::json j = sae::report_to_json(report, &vocab, &training_log);
//   std::ofstream("report.json") << sae::report_json_text(j);
//
// The same numbers as the page:
//   format          "sae.report.v1"
//   summary         rows, input_dim, dict_size, architecture, k, apply_b_dec_to_input,
//                   fvu, mse, l0, alive_fraction, dead_fraction, dense_fraction,
//                   dense_threshold, activations, tokens (path or null)
//   density         log10 firing-frequency histogram: min_log10, bin_width,
//                   counts (bin i = [min_log10 + i w, min_log10 + (i + 1) w)), never_fired
//   latents         one array per statistic, indexed by latent: firing_count,
//                   frequency, mean_activation (over the rows it fires on), max_activation
//   cards           per card: latent, firing_count, frequency, mean_activation,
//                   max_activation, histogram {bin_width, counts}, neighbours
//                   [{latent, cosine}], contexts [{row, activation, sequence,
//                   position, focus, tokens [{row, token_id, piece, activation}]}]
//                   (token_id / sequence / position null without a token table,
//                   piece null without a vocabulary)
//   training        (with a metrics log) path and {label: {key, step: [...], value: [...]}}
// NaN (FVU of constant data) is written as null.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "feature_report.hpp"
#include "training_log.hpp"
#include "vocabulary.hpp"

namespace sae {

inline nlohmann::json report_to_json(const FeatureReport& report, const Vocabulary* vocab = nullptr,
                                     const TrainingLog* training = nullptr) {
  using nlohmann::json;
  const auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  const ReportSummary& s = report.summary;
  json out;
  out["format"] = "sae.report.v1";
  out["summary"] = {{"activations", s.activations_path},
                    {"tokens", s.tokens_path.empty() ? json(nullptr) : json(s.tokens_path)},
                    {"rows", s.rows},
                    {"input_dim", s.input_dim},
                    {"dict_size", s.dict_size},
                    {"architecture", s.architecture},
                    {"k", s.k > 0 ? json(s.k) : json(nullptr)},
                    {"apply_b_dec_to_input", s.apply_b_dec_to_input},
                    {"fvu", number(s.fvu)},
                    {"mse", number(s.mse)},
                    {"l0", number(s.l0)},
                    {"alive_fraction", s.alive_fraction},
                    {"dead_fraction", s.dead_fraction},
                    {"dense_fraction", s.dense_fraction},
                    {"dense_threshold", s.dense_threshold}};
  out["density"] = {{"min_log10", report.density.min_log10},
                    {"bin_width", report.density.bins() > 0 ? report.density.bin_width() : 0.0},
                    {"counts", report.density.counts},
                    {"never_fired", report.density.never_fired}};

  json frequency = json::array();
  for (const std::int64_t count : report.firing_counts)
    frequency.push_back(s.rows > 0 ? static_cast<double>(count) / static_cast<double>(s.rows) : 0.0);
  out["latents"] = {{"firing_count", report.firing_counts},
                    {"frequency", frequency},
                    {"mean_activation", report.mean_activation},
                    {"max_activation", report.max_activation}};

  json cards = json::array();
  for (const LatentCard& card : report.cards) {
    json neighbours = json::array();
    for (const LatentNeighbour& n : card.neighbours) neighbours.push_back({{"latent", n.latent}, {"cosine", n.cosine}});
    json contexts = json::array();
    for (const LatentContext& context : card.contexts) {
      json tokens = json::array();
      for (const ContextToken& token : context.tokens) {
        const bool has_id = token.token_id >= 0;
        tokens.push_back({{"row", token.row},
                          {"token_id", has_id ? json(token.token_id) : json(nullptr)},
                          {"piece", has_id && vocab != nullptr ? json(vocab->piece(token.token_id)) : json(nullptr)},
                          {"activation", token.activation}});
      }
      contexts.push_back({{"row", context.row},
                          {"activation", context.activation},
                          {"sequence", context.sequence >= 0 ? json(context.sequence) : json(nullptr)},
                          {"position", context.position >= 0 ? json(context.position) : json(nullptr)},
                          {"focus", context.focus},
                          {"tokens", tokens}});
    }
    cards.push_back({{"latent", card.latent},
                     {"firing_count", card.firing_count},
                     {"frequency", card.frequency},
                     {"mean_activation", card.mean_activation},
                     {"max_activation", card.max_activation},
                     {"histogram", {{"bin_width", card.histogram.bin_width}, {"counts", card.histogram.counts}}},
                     {"neighbours", neighbours},
                     {"contexts", contexts}});
  }
  out["cards"] = cards;

  if (training != nullptr) {
    json curves = json::object();
    for (const TrainingCurve& c : training->curves)
      curves[c.label] = {{"key", c.key}, {"step", c.step}, {"value", c.value}};
    out["training"] = {{"path", training->path}, {"curves", curves}, {"absent", training->absent}};
  }
  return out;
}

/// The JSON as compact text (one line; `python3 -m json.tool` pretty-prints it). Bytes that are not UTF-8
/// (a piece of a hand-built Vocabulary, say) become U+FFFD instead of
/// failing the dump.
inline std::string report_json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace sae
