// sae/report/feature_report.hpp: what a feature dashboard shows about a
// trained SAE on a file of activations, computed in one streaming pass.
//
//   sae::NpyRows acts("heldout_acts.npy");
//   sae::TokenTable tokens("heldout_acts_tokens.npy", acts.rows(), vocab.size());   // optional
//   sae::FeatureReportOptions options;               // 50 cards, 10 contexts each, ...
//   sae::FeatureReport report = sae::build_feature_report(model, acts, options, &tokens);
//   report.summary.fvu;  report.density;  report.cards[0].contexts[0].tokens;
//
// Steps:
//   1. the pass: the activations are read in chunks of chunk_rows rows, in
//      file order; each chunk is encoded and decoded and fed to
//      FeatureStatistics (counts, sums, maxima, histograms, top rows of every
//      latent, reconstruction error). Memory: one chunk of activations, codes
//      and reconstructions, plus O(F x (top_rows + histogram_bins)).
//   2. the cards: the latents asked for (options.latents, in that order), or
//      else the options.cards latents that fire on the most rows.
//   3. contexts: each card's top rows, widened to the tokens around them in
//      the same sequence (TokenTable::context; without a token table, the row
//      alone). Those few rows are read again at random from the mapped file and
//      re-encoded a chunk at a time, keeping only the card latents' codes, so
//      every token of a context is shaded by the latent's code on it.
//   4. neighbours: per card, the latents whose decoder rows have the largest
//      cosine similarity with its own.
//
// Bad input is an exception naming the problem: activations whose width is
// not the model's input_dim or a token table with another row count
// (std::runtime_error naming the file), a card latent outside [0, F)
// (std::invalid_argument naming the latent).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../core/any_activation.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../core/topk.hpp"
#include "feature_statistics.hpp"
#include "npy_rows.hpp"
#include "token_table.hpp"

namespace sae {

struct FeatureReportOptions {
  /// Rows encoded at once (memory: about chunk_rows x (2 D + F) scalars); 0:
  /// automatic, see report_chunk_rows.
  Index chunk_rows = 0;
  Index top_rows = 10;              ///< contexts per card (a heap of this size is kept for every latent)
  Index cards = 50;                 ///< how many of the most often firing latents get a card ...
  std::vector<Index> latents;       ///< ... unless these are given: exactly these, in this order
  Index context_before = 8;         ///< tokens shown before each top token (same sequence)
  Index context_after = 3;          ///< and after it
  Index neighbours = 5;             ///< nearest latents by decoder cosine similarity, per card
  Index histogram_bins = 32;        ///< bins of each latent's activation histogram (even)
  Index density_bins_per_decade = 10;
  double dense_threshold = 0.1;     ///< "dense": firing on more than this fraction of rows
  /// Called after each chunk of the pass with (rows done, rows in all).
  std::function<void(Index, Index)> progress;
};

/// One token of a context, with the card latent's code on it.
struct ContextToken {
  Index row = 0;
  std::int64_t token_id = -1;  ///< -1 without a token table
  double activation = 0;
};

/// A top-activating row in its surrounding tokens.
struct LatentContext {
  Index row = 0;
  double activation = 0;        ///< the latent's code on `row` (from the pass)
  std::int64_t sequence = -1;   ///< from the token table, else -1
  std::int64_t position = -1;
  Index focus = 0;              ///< index of `row` in `tokens`
  std::vector<ContextToken> tokens;
};

struct LatentNeighbour {
  Index latent = 0;
  double cosine = 0;  ///< of the two decoder rows
};

struct LatentCard {
  Index latent = 0;
  std::int64_t firing_count = 0;
  double frequency = 0;        ///< firing_count / rows
  double mean_activation = 0;  ///< over the rows it fires on
  double max_activation = 0;
  ActivationHistogram histogram;
  std::vector<LatentContext> contexts;  ///< strongest first
  std::vector<LatentNeighbour> neighbours;  ///< most similar first
};

struct ReportSummary {
  std::string activations_path, tokens_path;  ///< tokens_path empty without a token table
  Index rows = 0, input_dim = 0, dict_size = 0;
  std::string architecture;   ///< "relu", "topk", ...
  Index k = 0;                ///< TopK / BatchTopK's k, else 0
  bool apply_b_dec_to_input = false;
  double fvu = 0, mse = 0, l0 = 0;  ///< fvu is NaN when the data has no variance
  double alive_fraction = 0, dead_fraction = 0, dense_fraction = 0, dense_threshold = 0.1;
};

struct FeatureReport {
  ReportSummary summary;
  DensityHistogram density;                  ///< log10 firing frequency, over all latents
  std::vector<std::int64_t> firing_counts;   ///< per latent
  std::vector<double> mean_activation;       ///< per latent, over the rows it fires on
  std::vector<double> max_activation;        ///< per latent
  std::vector<LatentCard> cards;
};

/// The chunk size the pass uses: options.chunk_rows, or when that is 0, 4096
/// rows or fewer so that a chunk of codes stays near 2^26 scalars (256 MiB of
/// floats) however wide the SAE (64 rows at the least).
inline Index report_chunk_rows(const FeatureReportOptions& options, Index dict_size) {
  if (options.chunk_rows > 0) return options.chunk_rows;
  const Index budget = Index{1} << 26;
  return std::clamp<Index>(budget / std::max<Index>(dict_size, 1), 64, 4096);
}

namespace detail {

template <typename Activation>
std::string architecture_name(const Activation& activation) {
  if constexpr (std::is_same<Activation, AnyActivation>::value) return activation.architecture();
  else return Activation::name;
}

template <typename Activation>
Index architecture_k(const Activation& activation) {
  if constexpr (std::is_same<Activation, AnyActivation>::value) {
    if (activation.template holds<TopK>()) return activation.template get<TopK>().k;
    if (activation.template holds<BatchTopK>()) return activation.template get<BatchTopK>().k;
    return 0;
  } else if constexpr (std::is_same<Activation, TopK>::value || std::is_same<Activation, BatchTopK>::value) {
    return activation.k;
  } else {
    return 0;
  }
}

inline void check_report_options(const FeatureReportOptions& o, Index dict_size) {
  const auto positive = [](Index value, const char* name, Index minimum) {
    if (value < minimum)
      throw std::invalid_argument(std::string("sae::build_feature_report: ") + name + " is " + std::to_string(value) +
                                  ", expected at least " + std::to_string(minimum));
  };
  positive(o.chunk_rows, "chunk_rows", 0);
  positive(o.top_rows, "top_rows", 1);
  positive(o.cards, "cards", 0);
  positive(o.context_before, "context_before", 0);
  positive(o.context_after, "context_after", 0);
  positive(o.neighbours, "neighbours", 0);
  positive(o.density_bins_per_decade, "density_bins_per_decade", 1);
  if (o.histogram_bins < 2 || o.histogram_bins % 2 != 0)
    throw std::invalid_argument("sae::build_feature_report: histogram_bins is " + std::to_string(o.histogram_bins) +
                                ", expected an even number >= 2");
  if (!(o.dense_threshold >= 0.0 && o.dense_threshold <= 1.0))
    throw std::invalid_argument("sae::build_feature_report: dense_threshold must be in [0, 1]");
  for (const Index latent : o.latents)
    if (latent < 0 || latent >= dict_size)
      throw std::invalid_argument("sae::build_feature_report: latent " + std::to_string(latent) +
                                  " is out of range: the SAE has latents 0.." + std::to_string(dict_size - 1));
}

/// The card latents: the ones asked for (first occurrence of each), or the
/// `count` that fire most often (ties: lower index), never-firing ones left out.
inline std::vector<Index> choose_card_latents(const FeatureReportOptions& o, const FeatureStatistics& stats) {
  std::vector<Index> chosen;
  if (!o.latents.empty()) {
    for (const Index latent : o.latents)
      if (std::find(chosen.begin(), chosen.end(), latent) == chosen.end()) chosen.push_back(latent);
    return chosen;
  }
  for (Index f = 0; f < stats.latents(); ++f)
    if (stats.firing_count(f) > 0) chosen.push_back(f);
  const auto more_often = [&](Index a, Index b) {
    return stats.firing_count(a) > stats.firing_count(b) || (stats.firing_count(a) == stats.firing_count(b) && a < b);
  };
  const auto keep = std::min<std::size_t>(chosen.size(), static_cast<std::size_t>(o.cards));
  std::partial_sort(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(keep), chosen.end(), more_often);
  chosen.resize(keep);
  return chosen;
}

/// The `count` rows of W_dec most similar (cosine) to row `latent`, most similar first.
template <typename Normalised>
std::vector<LatentNeighbour> nearest_decoder_rows(const Normalised& unit_rows, Index latent, Index count) {
  const Eigen::VectorXd cosines = (unit_rows * unit_rows.row(latent).transpose()).template cast<double>();
  std::vector<Index> order;
  order.reserve(static_cast<std::size_t>(cosines.size()));
  for (Index f = 0; f < cosines.size(); ++f)
    if (f != latent) order.push_back(f);
  const auto closer = [&](Index a, Index b) { return cosines(a) > cosines(b) || (cosines(a) == cosines(b) && a < b); };
  const auto keep = std::min<std::size_t>(order.size(), static_cast<std::size_t>(count));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), closer);
  std::vector<LatentNeighbour> out;
  for (std::size_t i = 0; i < keep; ++i)
    out.push_back({order[i], std::clamp(cosines(order[i]), -1.0, 1.0)});
  return out;
}

}  // namespace detail

/// Builds the report (see the top of this file). `tokens` may be null.
template <typename Scalar, int D, int F, typename Activation>
FeatureReport build_feature_report(const SparseAutoEncoder<Scalar, D, F, Activation>& model, const NpyRows& acts,
                                   const FeatureReportOptions& options, const TokenTable* tokens = nullptr) {
  const Index dict_size = model.dict_size();
  detail::check_report_options(options, dict_size);
  if (acts.cols() != model.input_dim())
    throw std::runtime_error(acts.path() + ": has " + std::to_string(acts.cols()) +
                             " columns (activation width) but the SAE's input_dim is " +
                             std::to_string(model.input_dim()));
  if (tokens != nullptr && tokens->rows() != acts.rows())
    throw std::runtime_error(tokens->path() + ": has " + std::to_string(tokens->rows()) + " rows but " + acts.path() +
                             " has " + std::to_string(acts.rows()) + "; the token table needs one row per activation");

  // ---- 1. the pass ------------------------------------------------------------
  using Model = SparseAutoEncoder<Scalar, D, F, Activation>;
  const Index chunk_rows = report_chunk_rows(options, dict_size);
  FeatureStatistics stats(dict_size, options.top_rows, options.histogram_bins);
  Batch<Scalar, D> chunk;
  typename Model::CodeBatch codes;
  typename Model::InputBatch recon;
  Batch<Scalar> raw;
  for (Index start = 0; start < acts.rows(); start += chunk_rows) {
    const Index rows = std::min(chunk_rows, acts.rows() - start);
    acts.read(start, rows, raw);
    chunk = raw;
    model.encode(chunk, codes);
    model.decode(codes, recon);
    stats.update(start, chunk, codes, recon);
    if (options.progress) options.progress(start + rows, acts.rows());
  }

  FeatureReport report;
  ReportSummary& s = report.summary;
  s.activations_path = acts.path();
  s.tokens_path = tokens != nullptr ? tokens->path() : std::string();
  s.rows = acts.rows();
  s.input_dim = model.input_dim();
  s.dict_size = dict_size;
  s.architecture = detail::architecture_name(model.activation());
  s.k = detail::architecture_k(model.activation());
  s.apply_b_dec_to_input = model.apply_b_dec_to_input();
  try {
    s.fvu = stats.fvu();
  } catch (const std::invalid_argument&) {  // one row, or constant data: FVU is undefined, the rest is not
    s.fvu = std::numeric_limits<double>::quiet_NaN();
  }
  s.mse = stats.mse();
  s.l0 = stats.l0();
  const FeatureDensity& density = stats.density();
  s.alive_fraction = density.alive_fraction();
  s.dead_fraction = density.dead_fraction();
  s.dense_threshold = options.dense_threshold;
  s.dense_fraction = density.dense_fraction(options.dense_threshold);
  // Bins down to the rarest possible firing (once in all rows), whole decades.
  const double min_log10 = std::min(-1.0, std::floor(std::log10(1.0 / static_cast<double>(acts.rows()))));
  report.density = density.log10_histogram(static_cast<Index>(-min_log10) * options.density_bins_per_decade, min_log10);
  for (Index f = 0; f < dict_size; ++f) {
    report.firing_counts.push_back(stats.firing_count(f));
    report.mean_activation.push_back(stats.mean_activation(f));
    report.max_activation.push_back(stats.max_activation(f));
  }

  // ---- 2. the cards -------------------------------------------------------------
  const std::vector<Index> card_latents = detail::choose_card_latents(options, stats);
  for (const Index f : card_latents) {
    LatentCard card;
    card.latent = f;
    card.firing_count = stats.firing_count(f);
    card.frequency = static_cast<double>(card.firing_count) / static_cast<double>(acts.rows());
    card.mean_activation = stats.mean_activation(f);
    card.max_activation = stats.max_activation(f);
    card.histogram = stats.histogram(f);
    for (const ActivatingRow& top : stats.top_rows(f)) {
      LatentContext context;
      context.row = top.row;
      context.activation = top.activation;
      Index first = top.row, last = top.row;
      if (tokens != nullptr) {
        context.sequence = tokens->sequence(top.row);
        context.position = tokens->position(top.row);
        std::tie(first, last) = tokens->context(top.row, options.context_before, options.context_after);
      }
      context.focus = top.row - first;
      for (Index r = first; r <= last; ++r)
        context.tokens.push_back({r, tokens != nullptr ? tokens->token_id(r) : std::int64_t{-1}, 0.0});
      card.contexts.push_back(std::move(context));
    }
    report.cards.push_back(std::move(card));
  }

  // ---- 3. every context token's code, re-encoded --------------------------------
  std::vector<Index> context_rows;
  for (const LatentCard& card : report.cards)
    for (const LatentContext& context : card.contexts)
      for (const ContextToken& token : context.tokens) context_rows.push_back(token.row);
  std::sort(context_rows.begin(), context_rows.end());
  context_rows.erase(std::unique(context_rows.begin(), context_rows.end()), context_rows.end());
  // card_codes(i, c): card c's latent on context_rows[i]; only the card columns are kept.
  Eigen::MatrixXd card_codes(static_cast<Index>(context_rows.size()), static_cast<Index>(report.cards.size()));
  for (std::size_t start = 0; start < context_rows.size(); start += static_cast<std::size_t>(chunk_rows)) {
    const std::size_t end = std::min(context_rows.size(), start + static_cast<std::size_t>(chunk_rows));
    acts.read_rows(std::vector<Index>(context_rows.begin() + static_cast<std::ptrdiff_t>(start),
                                      context_rows.begin() + static_cast<std::ptrdiff_t>(end)),
                   raw);
    chunk = raw;
    model.encode(chunk, codes);
    for (std::size_t c = 0; c < report.cards.size(); ++c)
      card_codes.block(static_cast<Index>(start), static_cast<Index>(c), static_cast<Index>(end - start), 1) =
          codes.col(report.cards[c].latent).template cast<double>();
  }
  for (std::size_t c = 0; c < report.cards.size(); ++c)
    for (LatentContext& context : report.cards[c].contexts)
      for (ContextToken& token : context.tokens) {
        const auto at = std::lower_bound(context_rows.begin(), context_rows.end(), token.row) - context_rows.begin();
        token.activation = card_codes(static_cast<Index>(at), static_cast<Index>(c));
      }

  // ---- 4. neighbours by decoder cosine --------------------------------------------
  if (options.neighbours > 0 && dict_size > 1 && !report.cards.empty()) {
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> unit_rows = model.params().W_dec;
    for (Index f = 0; f < dict_size; ++f) {
      const Scalar norm = unit_rows.row(f).norm();
      if (norm > Scalar(0)) unit_rows.row(f) /= norm;  // a zero row keeps cosine 0 with everything
    }
    for (LatentCard& card : report.cards)
      card.neighbours = detail::nearest_decoder_rows(unit_rows, card.latent, options.neighbours);
  }
  return report;
}

}  // namespace sae
