// tests/report/planted_data.hpp: a tiny SAE and data set with a planted
// feature, for the report tests (tests/test_report*.cpp) and the fixture the
// sae_report ctests run on (tests/report/make_report_fixture.cpp).
//
// D = 8 inputs, F = 16 ReLU latents, 200 rows in 10 sequences of 20 tokens.
//   - latent 3 reads input 3 with bias -0.5; the background keeps input 3
//     below 0.3, so latent 3 fires ONLY on the five planted rows, where input 3
//     is 1.5 .. 4 (codes 1 .. 3.5, all different: the order is known);
//   - latent 7's decoder row is latent 3's plus a little noise: its nearest
//     neighbour by decoder cosine;
//   - latent 14 has zero weights and bias +1: it fires on every row (dense);
//   - latent 15 has zero weights and bias -1: it never fires (dead);
//   - the others read one input each (sign alternating) with bias -0.2.
// The planted rows include a sequence's first row (20) and the file's last
// row (199), so contexts are cut at sequence and file boundaries.
//
// The vocabulary (50 pieces) is full of what breaks pages: markup, entities,
// quotes, control characters, "]]>", "</script>", a URL, url(, @import, C1
// controls, U+FFFE, SentencePiece's ▁. Token ids (row * 7 + 3) % 50 use them all.
#pragma once

#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sae/sae.hpp>
#include <sae/io/npy.hpp>

namespace sae_test {
namespace planted {

constexpr sae::Index kRows = 200, kDim = 8, kLatents = 16, kSequenceLength = 20, kVocab = 50;
constexpr sae::Index kPlantedLatent = 3, kTwinLatent = 7, kDenseLatent = 14, kDeadLatent = 15;

/// The planted rows, strongest first, and the latent's code on each.
inline std::vector<sae::Index> planted_rows() { return {78, 20, 199, 5, 77}; }
inline std::vector<double> planted_codes() { return {3.5, 2.5, 2.0, 1.5, 1.0}; }

inline sae::SparseAutoEncoder<float> model() {
  sae::Parameters<float> p(kDim, kLatents);
  p.W_enc.setZero();
  p.b_enc.setConstant(-0.2f);
  for (sae::Index f = 0; f < kLatents; ++f) p.W_enc(f % kDim, f) = f % 2 == 0 ? 1.0f : -1.0f;
  p.W_enc.col(kPlantedLatent).setZero();
  p.W_enc(kPlantedLatent, kPlantedLatent) = 1.0f;
  p.b_enc(kPlantedLatent) = -0.5f;
  p.W_enc.col(kDenseLatent).setZero();
  p.b_enc(kDenseLatent) = 1.0f;
  p.W_enc.col(kDeadLatent).setZero();
  p.b_enc(kDeadLatent) = -1.0f;
  p.W_enc.col(11).setZero();  // 11 would read input 3 negated: keep input 3 to latent 3 alone
  p.W_enc(2, 11) = -1.0f;

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (sae::Index f = 0; f < kLatents; ++f)
    for (sae::Index d = 0; d < kDim; ++d) p.W_dec(f, d) = normal(rng);
  for (sae::Index d = 0; d < kDim; ++d) p.W_dec(kTwinLatent, d) = p.W_dec(kPlantedLatent, d) + 0.05f * normal(rng);
  p.b_dec.setZero();
  return sae::SparseAutoEncoder<float>(std::move(p));
}

inline sae::Batch<float> activations() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> background(-0.5f, 0.5f);
  sae::Batch<float> X(kRows, kDim);
  for (sae::Index r = 0; r < kRows; ++r)
    for (sae::Index d = 0; d < kDim; ++d) X(r, d) = background(rng);
  for (sae::Index r = 0; r < kRows; ++r) X(r, kPlantedLatent) = std::min(X(r, kPlantedLatent), 0.3f);
  const auto rows = planted_rows();
  const auto codes = planted_codes();
  for (std::size_t i = 0; i < rows.size(); ++i) X(rows[i], kPlantedLatent) = static_cast<float>(codes[i] + 0.5);
  return X;
}

inline std::vector<std::string> pieces() {
  std::vector<std::string> p = {
      "<unk>", "<b>bold</b>", "&amp;", "\"q'", std::string("\x01") + "ctrl", "\xE2\x96\x81word", "]]>", "</script>",
      "\n", "", "a\tb", "\x7f", "\xC2\x85", "\xEF\xBF\xBE", "http://x.test/a", "url(evil)", "@import", "<script src=\"x\">",
      "&#0;", "\xE2\x96\x81the", "https://y.test", "--><!--", "\r"};
  while (static_cast<sae::Index>(p.size()) < kVocab) p.push_back("\xE2\x96\x81w" + std::to_string(p.size()));
  return p;
}

inline std::int32_t token_id(sae::Index row) { return static_cast<std::int32_t>((row * 7 + 3) % kVocab); }

/// An int32 .npy file of shape [rows, cols] (C order).
inline void write_int32_npy(const std::string& path, sae::Index rows, sae::Index cols,
                            const std::vector<std::int32_t>& values) {
  if (static_cast<sae::Index>(values.size()) != rows * cols) throw std::logic_error("write_int32_npy: wrong size");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string preamble = sae::detail::npy_preamble(
      "<i4", false, {static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(cols)});
  out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
  for (const std::int32_t v : values) {
    const auto u = static_cast<std::uint32_t>(v);
    const char bytes[4] = {static_cast<char>(u & 0xFF), static_cast<char>((u >> 8) & 0xFF),
                           static_cast<char>((u >> 16) & 0xFF), static_cast<char>((u >> 24) & 0xFF)};
    out.write(bytes, 4);
  }
  if (!out) throw std::runtime_error("write_int32_npy: could not write " + path);
}

/// The token table [rows, 3] = (token id, sequence, position) for the first `rows` rows.
inline std::vector<std::int32_t> token_table(sae::Index rows = kRows) {
  std::vector<std::int32_t> t;
  for (sae::Index r = 0; r < rows; ++r) {
    t.push_back(token_id(r));
    t.push_back(static_cast<std::int32_t>(r / kSequenceLength));
    t.push_back(static_cast<std::int32_t>(r % kSequenceLength));
  }
  return t;
}

struct Files {
  std::string acts, tokens, vocab;
};

/// Writes acts.npy, tokens.npy and vocab.json ([piece, score] pairs, as
/// SentencePiece's) into `dir`.
inline Files write_files(const std::string& dir) {
  Files files{dir + "/acts.npy", dir + "/tokens.npy", dir + "/vocab.json"};
  sae::save_npy(files.acts, activations());
  write_int32_npy(files.tokens, kRows, 3, token_table());
  nlohmann::json vocab = nlohmann::json::array();
  double score = 0;
  for (const std::string& piece : pieces()) vocab.push_back({piece, score -= 0.5});
  std::ofstream(files.vocab, std::ios::binary) << vocab.dump();
  return files;
}

}  // namespace planted
}  // namespace sae_test
