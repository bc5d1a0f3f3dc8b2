// examples/sae_report.cpp: what the latents of a trained SAE fire on, as one
// self-contained HTML page (and the same statistics as JSON).
//
//   sae_report --model run/ --acts heldout_acts.npy --tokens heldout_acts_tokens.npy
//              --vocab vocab.json --metrics run/metrics.jsonl --out report.html --json report.json
//
// --model is a sae_train --out folder (or its checkpoint.sae) or any layout
// sae::load_pretrained reads. The activations are streamed once, a chunk at a
// time (memory: one chunk plus O(F x top) for the per-latent heaps), with a
// progress line on stderr; then the few context rows around each card's top
// rows are re-read from the mapped file and re-encoded. The last line of
// standard output is one JSON object summarising the run.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <sae/report.hpp>
#include <sae/train/progress.hpp>

#include "command_line.hpp"

namespace {

const char* kUsage = R"(usage: sae_report --model PATH --acts ACTS.npy [options]
  --model PATH          the trained SAE: a sae_train --out folder (or its checkpoint.sae), or any
                        layout load_pretrained reads (SAELens, sparsify, Gemma Scope, save_pretrained)
  --acts A.npy          activations [N, D] (float16/32/64, C order), streamed in one pass
  --tokens T.npy        token table [N, 3] of integers: token id, sequence index, position
                        (as ../shared/realdata writes *_tokens.npy); without it contexts are row numbers
  --vocab V.json        vocabulary: a JSON list of pieces, of [piece, score] pairs, or {piece: id};
                        without it tokens show as ids
  --metrics M.jsonl     sae_train --metrics log: adds the training curves
  --out FILE.html       the page (default report.html)
  --json FILE.json      also write the statistics as JSON
  --cards N             cards for the N latents that fire on the most rows (default 50)
  --latents A,B,...     cards for exactly these latents instead
  --top N               top-activating contexts per card (default 10)
  --context B,A         tokens shown before and after each top token (default 8,3)
  --neighbours N        nearest latents by decoder cosine per card (default 5)
  --chunk N             rows encoded at once (default: 4096, fewer for very wide SAEs)
  --k K                 k of a topk / batchtopk sae_train folder whose checkpoint is too old to
                        record it (default 32, sae_train's default)
  --title TEXT          the page title
  --help
)";

struct Options {
  std::string model, acts, tokens, vocab, metrics, out = "report.html", json, title = "SAE feature report";
  sae::FeatureReportOptions report;
  long long k = -1;  // < 0: not given
};

using command_line::parse_integer;
using command_line::split_commas;

Options parse(int argc, char** argv) {
  Options o;
  command_line::for_each_flag(argc, argv, kUsage, [&](const std::string& flag, const std::string& value) {
    if (flag == "--model") o.model = value;
    else if (flag == "--acts") o.acts = value;
    else if (flag == "--tokens") o.tokens = value;
    else if (flag == "--vocab") o.vocab = value;
    else if (flag == "--metrics") o.metrics = value;
    else if (flag == "--out") o.out = value;
    else if (flag == "--json") o.json = value;
    else if (flag == "--title") o.title = value;
    else if (flag == "--cards") o.report.cards = parse_integer(flag, value);
    else if (flag == "--top") o.report.top_rows = parse_integer(flag, value);
    else if (flag == "--neighbours") o.report.neighbours = parse_integer(flag, value);
    else if (flag == "--chunk") o.report.chunk_rows = parse_integer(flag, value);
    else if (flag == "--k") o.k = parse_integer(flag, value);
    else if (flag == "--latents") {
      for (const std::string& part : split_commas(value)) o.report.latents.push_back(parse_integer(flag, part));
      if (o.report.latents.empty()) throw std::invalid_argument("--latents needs at least one latent number");
    } else if (flag == "--context") {
      const auto parts = split_commas(value);
      if (parts.size() != 2) throw std::invalid_argument("--context takes BEFORE,AFTER, e.g. 8,3; got '" + value + "'");
      o.report.context_before = parse_integer(flag, parts[0]);
      o.report.context_after = parse_integer(flag, parts[1]);
    } else {
      return false;
    }
    return true;
  });
  if (o.model.empty() || o.acts.empty()) throw std::invalid_argument("--model and --acts are required (see --help)");
  return o;
}

void write_text(const std::string& path, const std::string& text) {
  sae::detail::write_file_atomically(path, [&](std::ostream& out) {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  });
}

int run(const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  // ---- inputs: everything is opened and checked before the long pass ----------
  if (o.k >= 0 && !sae::is_trainer_output(o.model))
    throw std::invalid_argument("--k is only for sae_train output folders; " + o.model + " records its own k");
  const sae::ReportModel model = sae::load_report_model(o.model, o.k >= 0 ? o.k : 32);
  if (model.k_from_caller && o.k < 0)
    std::cerr << "sae_report: " << model.source << " does not record k; using k = 32 (sae_train's default). "
              << "Pass --k if the SAE was trained with another.\n";
  const sae::NpyRows acts(o.acts);
  std::unique_ptr<sae::Vocabulary> vocab;
  if (!o.vocab.empty()) vocab = std::make_unique<sae::Vocabulary>(sae::Vocabulary::load(o.vocab));
  std::unique_ptr<sae::TokenTable> tokens;
  if (!o.tokens.empty())
    tokens = std::make_unique<sae::TokenTable>(o.tokens, acts.rows(), vocab ? vocab->size() : sae::Index{-1});
  else if (vocab)
    std::cerr << "sae_report: --vocab without --tokens: no token ids to look up, contexts show row numbers\n";
  std::unique_ptr<sae::TrainingLog> training;
  if (!o.metrics.empty()) training = std::make_unique<sae::TrainingLog>(sae::read_training_log(o.metrics));

  const sae::Index D = model.model.input_dim(), F = model.model.dict_size();
  std::cerr << "sae_report: " << model.source << " (" << model.model.activation().architecture() << ", D = " << D
            << ", F = " << F << ") on " << acts.path() << " (" << acts.rows() << " rows)\n";

  // ---- the pass ---------------------------------------------------------------------
  sae::FeatureReportOptions report_options = o.report;
  const sae::Index chunk_rows = sae::report_chunk_rows(report_options, F);
  const std::int64_t chunks = (acts.rows() + chunk_rows - 1) / chunk_rows;
  sae::ProgressOptions progress_options;
  progress_options.is_terminal = sae::is_terminal(std::cerr);
  progress_options.every_steps = std::max<std::int64_t>(1, chunks / 10);
  progress_options.interval_ms = 200;
  sae::ProgressReporter progress(std::cerr, chunks, progress_options);
  report_options.progress = [&](sae::Index rows_done, sae::Index) {
    const std::int64_t chunk = (rows_done + chunk_rows - 1) / chunk_rows;
    progress.update(chunk, rows_done, seconds());
  };
  const sae::FeatureReport report = sae::build_feature_report(model.model, acts, report_options, tokens.get());
  progress.finish();

  // ---- outputs ------------------------------------------------------------------------
  sae::HtmlReportOptions html;
  html.title = o.title;
  html.model_description = model.source + " (" + model.layout + ")";
  html.vocabulary = vocab.get();
  html.training = training.get();
  write_text(o.out, sae::render_report_html(report, html));
  if (!o.json.empty()) write_text(o.json, sae::report_json_text(sae::report_to_json(report, vocab.get(), training.get())));

  const sae::ReportSummary& s = report.summary;
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  const nlohmann::json result = {{"html", o.out},
                                 {"json", o.json.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.json)},
                                 {"rows", s.rows},
                                 {"input_dim", s.input_dim},
                                 {"dict_size", s.dict_size},
                                 {"architecture", s.architecture},
                                 {"cards", report.cards.size()},
                                 {"fvu", number(s.fvu)},
                                 {"l0", number(s.l0)},
                                 {"alive_fraction", s.alive_fraction},
                                 {"dead_fraction", s.dead_fraction},
                                 {"dense_fraction", s.dense_fraction},
                                 {"seconds", seconds()}};
  std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return command_line::run_program("sae_report", argc, argv, parse, run); }
