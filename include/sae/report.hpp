// sae/report.hpp: the umbrella header for feature reports: what each latent
// of a trained SAE fires on, as an HTML dashboard and as JSON (the library
// behind examples/sae_report.cpp). Needs nlohmann/json and POSIX mmap: link
// sae::io.
//
//   sae::ReportModel m = sae::load_report_model("run/");          // sae_train --out, or any load_pretrained layout
//   sae::NpyRows acts("heldout_acts.npy");                        // streamed, larger than RAM is fine
//   sae::Vocabulary vocab = sae::Vocabulary::load("vocab.json");
//   sae::TokenTable tokens("heldout_acts_tokens.npy", acts.rows(), vocab.size());
//   sae::FeatureReport report = sae::build_feature_report(m.model, acts, {}, &tokens);
//   std::string page = sae::render_report_html(report, {"My SAE", m.source, &vocab, nullptr});
//   std::string json = sae::report_json_text(sae::report_to_json(report, &vocab));
//
// Pieces, one job per file (include/sae/report/):
//   npy_rows.hpp              memory-mapped random access to the rows of a .npy file
//   token_table.hpp           [N, 3] token table: id, sequence, position; contexts
//   vocabulary.hpp            vocab.json (list, [piece, score] pairs, {piece: id})
//   model_loading.hpp         sae_train output folders and published layouts
//   activation_histogram.hpp  per-latent activation histograms in one pass
//   feature_statistics.hpp    the streaming accumulator (counts, top rows, FVU, ...)
//   feature_report.hpp        the pass, the cards, contexts and neighbours
//   training_log.hpp          training curves from a sae_train --metrics file
//   html_text.hpp             escaping data for HTML that is also strict XML
//   svg_plot.hpp              inline SVG bar and line charts
//   html_page.hpp             the self-contained page
//   report_json.hpp           the same statistics as JSON
#pragma once

#include "report/npy_rows.hpp"
#include "report/token_table.hpp"
#include "report/vocabulary.hpp"
#include "report/model_loading.hpp"
#include "report/activation_histogram.hpp"
#include "report/feature_statistics.hpp"
#include "report/feature_report.hpp"
#include "report/training_log.hpp"
#include "report/html_text.hpp"
#include "report/svg_plot.hpp"
#include "report/html_page.hpp"
#include "report/report_json.hpp"
