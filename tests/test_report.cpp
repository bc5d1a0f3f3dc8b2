// tests/test_report.cpp: the statistics behind sae_report (sae/report/): the
// streaming pass, the cards and their contexts, the inputs it reads, and the
// errors for bad ones. The page and the JSON are in test_report_page.cpp.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <sae/io.hpp>
#include <sae/report.hpp>
#include <sae/train.hpp>

#include "report/planted_data.hpp"
#include "temp_dir.hpp"

namespace {

namespace planted = sae_test::planted;
using sae::Index;

struct PlantedInputs {
  sae_test::TempDir dir{"sae_report"};
  planted::Files files = planted::write_files(dir.path().string());
  sae::SparseAutoEncoder<float> model = planted::model();
  sae::NpyRows acts{files.acts};
  sae::Vocabulary vocab = sae::Vocabulary::load(files.vocab);
  sae::TokenTable tokens{files.tokens, acts.rows(), vocab.size()};
};

sae::FeatureReportOptions small_chunks() {
  sae::FeatureReportOptions options;
  options.chunk_rows = 16;  // many chunks, one ending mid-sequence
  return options;
}

std::vector<Index> rows_of(const sae::LatentCard& card) {
  std::vector<Index> rows;
  for (const auto& context : card.contexts) rows.push_back(context.row);
  return rows;
}

}  // namespace

TEST_CASE("report: the planted latent's top contexts are exactly the planted rows", "[report]") {
  PlantedInputs in;
  auto options = small_chunks();
  options.latents = {planted::kPlantedLatent};
  const sae::FeatureReport report = sae::build_feature_report(in.model, in.acts, options, &in.tokens);

  REQUIRE(report.cards.size() == 1);
  const sae::LatentCard& card = report.cards[0];
  CHECK(card.latent == planted::kPlantedLatent);
  CHECK(rows_of(card) == planted::planted_rows());
  CHECK(card.firing_count == 5);
  const auto codes = planted::planted_codes();
  for (std::size_t i = 0; i < card.contexts.size(); ++i) CHECK(card.contexts[i].activation == Approx(codes[i]));
  CHECK(card.max_activation == Approx(3.5));
  CHECK(card.mean_activation == Approx((3.5 + 2.5 + 2.0 + 1.5 + 1.0) / 5));

  // The same rows as the library's one-latent search over the file.
  const auto top = sae::top_activating_rows(in.model, in.files.acts, planted::kPlantedLatent, 10);
  REQUIRE(top.size() == card.contexts.size());
  for (std::size_t i = 0; i < top.size(); ++i) CHECK(top[i].row == card.contexts[i].row);

  // Contexts: 8 tokens before and 3 after, cut at the sequence (rows 20k .. 20k + 19) and the file.
  const auto span = [](const sae::LatentContext& c) {
    return std::make_pair(c.tokens.front().row, c.tokens.back().row);
  };
  CHECK(span(card.contexts[0]) == std::make_pair(Index{70}, Index{79}));   // row 78: position 18 of 20
  CHECK(span(card.contexts[1]) == std::make_pair(Index{20}, Index{23}));   // row 20: first of its sequence
  CHECK(span(card.contexts[2]) == std::make_pair(Index{191}, Index{199}));  // row 199: the file's last
  CHECK(span(card.contexts[3]) == std::make_pair(Index{0}, Index{8}));     // row 5: the file's first sequence
  for (const auto& context : card.contexts) {
    const auto& focus = context.tokens.at(static_cast<std::size_t>(context.focus));
    CHECK(focus.row == context.row);
    CHECK(focus.activation == Approx(context.activation));  // re-encoded: the same code
    CHECK(focus.token_id == planted::token_id(context.row));
    CHECK(context.sequence == context.row / planted::kSequenceLength);
    CHECK(context.position == context.row % planted::kSequenceLength);
    for (const auto& token : context.tokens)
      if (token.row != 77 && token.row != 78) CHECK((token.row == context.row || token.activation == 0.0));
  }
  // Rows 77 and 78 are neighbours: each is shaded in the other's context.
  const auto& around_78 = card.contexts[0].tokens;
  CHECK(around_78.at(77 - 70).activation == Approx(1.0));

  // The twin latent's decoder row is the nearest.
  REQUIRE_FALSE(card.neighbours.empty());
  CHECK(card.neighbours[0].latent == planted::kTwinLatent);
  CHECK(card.neighbours[0].cosine > 0.99);
  CHECK(card.neighbours.size() == 5);
  for (std::size_t i = 1; i < card.neighbours.size(); ++i)
    CHECK(card.neighbours[i - 1].cosine >= card.neighbours[i].cosine);
}

TEST_CASE("report: the counts add up and the metrics match the in-memory ones", "[report]") {
  PlantedInputs in;
  auto options = small_chunks();
  options.cards = planted::kLatents;  // every latent that fires
  const sae::FeatureReport report = sae::build_feature_report(in.model, in.acts, options, &in.tokens);
  const sae::ReportSummary& s = report.summary;
  CHECK(s.rows == planted::kRows);
  CHECK(s.input_dim == planted::kDim);
  CHECK(s.dict_size == planted::kLatents);
  CHECK(s.architecture == "relu");

  // Each latent's histogram holds each of its firings once.
  REQUIRE(report.cards.size() == static_cast<std::size_t>(planted::kLatents - 1));  // all but the dead one
  for (const auto& card : report.cards) {
    INFO("latent " << card.latent);
    CHECK(card.histogram.total() == card.firing_count);
    CHECK(card.firing_count == report.firing_counts[static_cast<std::size_t>(card.latent)]);
    CHECK(card.histogram.counts.size() == 32);
    // The width fits the max: it lies in the top half of the bins (or the first bin).
    CHECK(card.max_activation < 32 * card.histogram.bin_width);
    CHECK((card.max_activation >= 16 * card.histogram.bin_width || card.histogram.counts[0] == card.firing_count));
  }
  // The density histogram counts every latent once.
  std::int64_t latents = report.density.never_fired;
  for (const auto c : report.density.counts) latents += c;
  CHECK(latents == planted::kLatents);
  CHECK(report.density.never_fired == 1);
  CHECK(report.density.min_log10 == -3.0);  // 1 / 200 rows = 10^-2.3

  // Alive / dead / dense, and the dense latent's single-value histogram.
  CHECK(report.firing_counts[planted::kDenseLatent] == planted::kRows);
  CHECK(report.firing_counts[planted::kDeadLatent] == 0);
  CHECK(s.dead_fraction == Approx(1.0 / 16));
  CHECK(s.alive_fraction == Approx(15.0 / 16));
  std::int64_t dense = 0;
  for (const auto c : report.firing_counts) dense += c > 20 ? 1 : 0;  // > 10% of 200 rows
  CHECK(s.dense_fraction == Approx(static_cast<double>(dense) / 16));
  const auto& dense_card = report.cards[0];  // fires on every row: the first card
  CHECK(dense_card.latent == planted::kDenseLatent);
  CHECK(*std::max_element(dense_card.histogram.counts.begin(), dense_card.histogram.counts.end()) == planted::kRows);

  // L0, FVU and MSE streamed in chunks equal the library's metrics on the whole file.
  const sae::Batch<float> X = planted::activations();
  const auto [recon, codes] = in.model.forward(X);
  CHECK(s.l0 == Approx(sae::mean_l0(codes)).epsilon(1e-12));
  CHECK(s.fvu == Approx(sae::fraction_of_variance_unexplained(X, recon)).epsilon(1e-9));
  CHECK(s.mse == Approx(sae::mean_squared_error(X, recon)).epsilon(1e-9));

  // The chunk size changes nothing.
  auto one_chunk = options;
  one_chunk.chunk_rows = 4096;
  const sae::FeatureReport whole = sae::build_feature_report(in.model, in.acts, one_chunk, &in.tokens);
  CHECK(whole.firing_counts == report.firing_counts);
  CHECK(whole.summary.fvu == Approx(s.fvu).epsilon(1e-9));
  REQUIRE(whole.cards.size() == report.cards.size());
  for (std::size_t c = 0; c < whole.cards.size(); ++c) {
    CHECK(whole.cards[c].latent == report.cards[c].latent);
    CHECK(rows_of(whole.cards[c]) == rows_of(report.cards[c]));
    CHECK(whole.cards[c].histogram.counts == report.cards[c].histogram.counts);
  }
}

TEST_CASE("report: cards go to the latents that fire most often, unless listed", "[report]") {
  PlantedInputs in;
  auto options = small_chunks();
  options.cards = 3;
  const sae::FeatureReport report = sae::build_feature_report(in.model, in.acts, options);
  REQUIRE(report.cards.size() == 3);
  CHECK(report.cards[0].latent == planted::kDenseLatent);
  for (std::size_t i = 1; i < report.cards.size(); ++i) {
    const auto& a = report.cards[i - 1];
    const auto& b = report.cards[i];
    CHECK((a.firing_count > b.firing_count || (a.firing_count == b.firing_count && a.latent < b.latent)));
  }
  // Without a token table a context is its row alone.
  for (const auto& context : report.cards[0].contexts) {
    REQUIRE(context.tokens.size() == 1);
    CHECK(context.tokens[0].row == context.row);
    CHECK(context.tokens[0].token_id == -1);
    CHECK(context.sequence == -1);
  }

  // Listed latents: in the order given, duplicates once, the dead one included (with no contexts).
  options.latents = {planted::kDeadLatent, 2, planted::kDeadLatent, 0};
  const sae::FeatureReport listed = sae::build_feature_report(in.model, in.acts, options);
  REQUIRE(listed.cards.size() == 3);
  CHECK(listed.cards[0].latent == planted::kDeadLatent);
  CHECK(listed.cards[0].contexts.empty());
  CHECK(listed.cards[0].histogram.total() == 0);
  CHECK(listed.cards[1].latent == 2);
  CHECK(listed.cards[2].latent == 0);
}

TEST_CASE("report: per-latent histograms stay exact while their width doubles", "[report]") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> exponent(-3.0, 2.5);
  std::vector<double> values;
  sae::LatentHistograms histograms(2, 16);
  for (int i = 0; i < 2000; ++i) {
    values.push_back(std::pow(10.0, exponent(rng)));  // growing range: many doublings
    histograms.add(1, values.back());
  }
  const sae::ActivationHistogram h = histograms.histogram(1);
  CHECK(h.total() == 2000);
  CHECK(histograms.histogram(0).total() == 0);
  CHECK(histograms.histogram(0).bin_width == 0.0);
  // The same counts as a histogram built directly at the final width.
  std::vector<std::int64_t> direct(16, 0);
  for (const double v : values) ++direct[static_cast<std::size_t>(std::min(15.0, std::floor(v / h.bin_width)))];
  CHECK(h.counts == direct);
  const double max = *std::max_element(values.begin(), values.end());
  CHECK(max < 16 * h.bin_width);
  CHECK(max >= 8 * h.bin_width);
  CHECK_THROWS_AS(sae::LatentHistograms(4, 7), std::invalid_argument);
}

TEST_CASE("report: token tables and contexts", "[report]") {
  sae_test::TempDir dir("sae_report_tokens");
  // Two sequences, the second stored out of position order after row 5: contexts stop there.
  const std::vector<std::int32_t> table = {10, 0, 0, 11, 0, 1, 12, 0, 2,  13, 1, 0, 14, 1, 1,
                                           15, 1, 2, 16, 1, 7, 17, 1, 8,  18, 1, 9};
  const std::string path = dir.file("t.npy");
  planted::write_int32_npy(path, 9, 3, table);
  const sae::TokenTable tokens(path, 9, 20);
  CHECK(tokens.token_id(4) == 14);
  CHECK(tokens.sequence(4) == 1);
  CHECK(tokens.position(4) == 1);
  CHECK(tokens.context(1, 8, 3) == std::make_pair(Index{0}, Index{2}));
  CHECK(tokens.context(4, 8, 3) == std::make_pair(Index{3}, Index{5}));  // position 7 does not follow 2
  CHECK(tokens.context(7, 1, 1) == std::make_pair(Index{6}, Index{8}));
  CHECK(tokens.context(0, 0, 0) == std::make_pair(Index{0}, Index{0}));
}

TEST_CASE("report: vocabularies in the layouts tokenizers ship", "[report]") {
  sae_test::TempDir dir("sae_report_vocab");
  const auto load = [&](const std::string& text) { return sae::Vocabulary::load(dir.write("v.json", text)); };
  CHECK(load(R"(["a", "b"])").piece(1) == "b");
  CHECK(load(R"([["<s>", 0], ["\u2581the", -3.5]])").piece(1) == "\xE2\x96\x81the");
  CHECK(load(R"({"b": 1, "a": 0})").piece(0) == "a");
  CHECK(sae::Vocabulary::display_text("\xE2\x96\x81the\xC4\xA0x\xC4\x8A") == " the x\xE2\x86\xB5");

  const auto fails_with = [&](const std::string& text, const std::string& needle) {
    INFO(text);
    CHECK_THROWS_WITH(load(text), Catch::Contains(needle) && Catch::Contains("v.json"));
  };
  fails_with("[1, 2]", "vocabulary entry 0");
  fails_with(R"({"a": "x"})", "expected an integer");
  fails_with(R"({"a": 0, "b": 0})", "given to two pieces");
  fails_with(R"({"a": 5})", "outside [0, 1)");
  fails_with("not json", "not valid JSON");
  fails_with("[]", "empty");
  fails_with("3", "expected a JSON list");
  CHECK_THROWS_WITH(sae::Vocabulary::load(dir.file("missing.json")), Catch::Contains("cannot open"));
  CHECK_THROWS_AS(load(R"(["a"])").piece(1), std::out_of_range);
}

TEST_CASE("report: bad inputs raise exceptions naming the problem", "[report][errors]") {
  PlantedInputs in;
  const std::string dir = in.dir.path().string();

  SECTION("a token table with the wrong row count") {
    planted::write_int32_npy(dir + "/short.npy", planted::kRows - 1, 3, planted::token_table(planted::kRows - 1));
    CHECK_THROWS_WITH(sae::TokenTable(dir + "/short.npy", in.acts.rows(), in.vocab.size()),
                      Catch::Contains("short.npy") && Catch::Contains("199 rows") && Catch::Contains("200"));
  }
  SECTION("a token table of the wrong shape or dtype") {
    planted::write_int32_npy(dir + "/two.npy", planted::kRows, 2, std::vector<std::int32_t>(2 * planted::kRows, 0));
    CHECK_THROWS_WITH(sae::TokenTable(dir + "/two.npy", in.acts.rows()),
                      Catch::Contains("two.npy") && Catch::Contains("(200, 2)") && Catch::Contains("[N, 3]"));
    sae::save_npy(dir + "/float.npy", sae::Batch<float>::Zero(planted::kRows, 3));
    CHECK_THROWS_WITH(sae::TokenTable(dir + "/float.npy", in.acts.rows()),
                      Catch::Contains("float.npy") && Catch::Contains("<f4") && Catch::Contains("integers"));
    sae::save_npy(dir + "/flat.npy", sae::Vector<float>::Zero(planted::kRows));
    CHECK_THROWS_WITH(sae::TokenTable(dir + "/flat.npy", in.acts.rows()), Catch::Contains("1 dimensions"));
  }
  SECTION("a token id outside the vocabulary, a negative position") {
    CHECK_THROWS_WITH(sae::TokenTable(in.files.tokens, in.acts.rows(), 10),
                      Catch::Contains("tokens.npy") && Catch::Contains("row 1 has token id 10") &&
                          Catch::Contains("[0, 10)"));
    auto table = planted::token_table();
    table[3 * 42 + 2] = -1;
    planted::write_int32_npy(dir + "/negative.npy", planted::kRows, 3, table);
    CHECK_THROWS_WITH(sae::TokenTable(dir + "/negative.npy", in.acts.rows()),
                      Catch::Contains("row 42") && Catch::Contains("non-negative"));
  }
  SECTION("a latent out of range") {
    sae::FeatureReportOptions options;
    options.latents = {2, planted::kLatents};
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, in.acts, options),
                      Catch::Contains("latent 16 is out of range") && Catch::Contains("0..15"));
    options.latents = {-1};
    CHECK_THROWS_AS(sae::build_feature_report(in.model, in.acts, options), std::invalid_argument);
  }
  SECTION("activations of another width than the SAE's input") {
    sae::save_npy(dir + "/narrow.npy", sae::Batch<float>::Ones(10, planted::kDim - 1));
    const sae::NpyRows narrow(dir + "/narrow.npy");
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, narrow, {}),
                      Catch::Contains("narrow.npy") && Catch::Contains("7 columns") && Catch::Contains("input_dim is 8"));
  }
  SECTION("a token table of another length than the activations") {
    sae::save_npy(dir + "/fewer.npy", sae::Batch<float>::Ones(10, planted::kDim));
    const sae::NpyRows fewer(dir + "/fewer.npy");
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, fewer, {}, &in.tokens),
                      Catch::Contains("tokens.npy") && Catch::Contains("fewer.npy"));
  }
  SECTION("non-finite activations") {
    sae::Batch<float> X = planted::activations();
    X(33, 0) = std::numeric_limits<float>::quiet_NaN();
    sae::save_npy(dir + "/nan.npy", X);
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, sae::NpyRows(dir + "/nan.npy"), {}),
                      Catch::Contains("row 33") && Catch::Contains("non-finite"));
  }
  SECTION("bad options and files") {
    sae::FeatureReportOptions options;
    options.histogram_bins = 5;
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, in.acts, options), Catch::Contains("histogram_bins"));
    options = {};
    options.chunk_rows = -1;
    CHECK_THROWS_WITH(sae::build_feature_report(in.model, in.acts, options), Catch::Contains("chunk_rows"));
    CHECK(sae::report_chunk_rows({}, 16) == 4096);
    CHECK(sae::report_chunk_rows({}, 1 << 16) == 1024);  // codes stay near 2^26 scalars
    CHECK(sae::report_chunk_rows({}, 1 << 24) == 64);
    CHECK_THROWS_WITH(sae::NpyRows(dir + "/missing.npy"), Catch::Contains("missing.npy"));
    CHECK_THROWS_WITH(sae::load_report_model(dir), Catch::Contains("no SAE found"));
    CHECK_THROWS_WITH(sae::load_report_model(dir + "/nothing-here"), Catch::Contains("no such file"));
  }
}

TEST_CASE("report: models from save_pretrained and from sae_train's checkpoint", "[report]") {
  sae_test::TempDir dir("sae_report_models");
  const sae::Batch<float> X = planted::activations();

  // save_pretrained: the layout names the architecture and k.
  using TopKModel = sae::SparseAutoEncoder<float, sae::Dynamic, sae::Dynamic, sae::TopK>;
  const TopKModel topk(planted::kDim, planted::kLatents, sae::TopK{3}, sae::Init::Tied, 5);
  sae::save_pretrained(topk, dir.file("pretrained"));
  CHECK_FALSE(sae::is_trainer_output(dir.file("pretrained")));
  const sae::ReportModel loaded = sae::load_report_model(dir.file("pretrained"));
  CHECK(std::string(loaded.model.activation().architecture()) == "topk");
  CHECK(loaded.model.activation().get<sae::TopK>().k == 3);
  CHECK_FALSE(loaded.k_from_caller);
  CHECK((loaded.model.encode(X) - topk.encode(X)).cwiseAbs().maxCoeff() == 0.0f);

  // A trainer checkpoint: the exported model (input scale folded in), with the k it records.
  sae::InMemorySource<float> data(X, 1);
  auto config = sae::make_recipe(sae::Recipe::TopK, 3, planted::kLatents);
  config.batch_size = 32;
  TopKModel model(planted::kDim, planted::kLatents, sae::TopK{4});
  sae::Trainer<float, sae::Dynamic, sae::Dynamic, sae::TopK> trainer(model, data, config, 2);
  trainer.run();
  std::filesystem::create_directories(dir.file("run"));
  trainer.save_checkpoint(dir.file("run") + "/checkpoint.sae");
  CHECK(sae::is_trainer_output(dir.file("run")));
  CHECK(sae::is_trainer_output(dir.file("run") + "/checkpoint.sae"));
  const sae::ReportModel from_run = sae::load_report_model(dir.file("run"), 9);  // 9: ignored, k is recorded
  CHECK_FALSE(from_run.k_from_caller);
  CHECK(std::string(from_run.model.activation().architecture()) == "topk");
  CHECK(from_run.model.activation().get<sae::TopK>().k == 4);
  const TopKModel exported = trainer.exported_model();
  CHECK((from_run.model.encode(X) - exported.encode(X)).cwiseAbs().maxCoeff() <= 1e-6f);
  CHECK((from_run.model.params().W_dec - exported.params().W_dec).cwiseAbs().maxCoeff() == 0.0f);
  // sae_train writes SAELens' layout beside its checkpoint: the checkpoint still speaks for the run.
  sae::save_pretrained(exported, dir.file("run"));
  CHECK(sae::is_trainer_output(dir.file("run")));
  CHECK(sae::load_report_model(dir.file("run")).layout == from_run.layout);
  // sae_train's .npy export alone does not say the architecture.
  std::filesystem::create_directories(dir.file("npy-only"));
  sae::save_npy(dir.file("npy-only") + "/W_enc.npy", exported.params().W_enc);
  CHECK_THROWS_WITH(sae::load_report_model(dir.file("npy-only")),
                    Catch::Contains("npy-only") && Catch::Contains("no checkpoint.sae"));
}
