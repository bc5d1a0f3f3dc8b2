// sae/report/vocabulary.hpp: token id -> the text of its piece.
//
//   sae::Vocabulary vocab = sae::Vocabulary::load("vocab.json");
//   vocab.size();          // number of ids
//   vocab.piece(9);        // "▁the": as the tokenizer spells it
//   vocab.display(9);      // " the": as text reads (SentencePiece's ▁ and GPT-2's Ġ are spaces)
//
// Accepted JSON layouts, the ones tokenizers ship:
//   ["<s>", "the", ...]                    a list of pieces, id = position
//   [["<s>", 0], ["▁the", -3.56], ...]     SentencePiece [piece, score] pairs (the
//                                          realdata model's vocab.json), id = position
//   {"<s>": 0, "the": 1, ...}              piece -> id (GPT-2 / Hugging Face vocab.json);
//                                          ids must be distinct and cover 0..N-1
// Anything else is a std::runtime_error naming the file and the first entry
// that does not fit. Pieces are kept as the bytes the file holds (UTF-8);
// escaping them for a page is the renderer's job.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../config.hpp"

namespace sae {

class Vocabulary {
 public:
  Vocabulary() = default;
  explicit Vocabulary(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}

  /// Reads a vocabulary file in one of the layouts above.
  static Vocabulary load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the vocabulary file");
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) throw std::runtime_error(path + ": the vocabulary is not valid JSON");
    return from_json(json, path);
  }

  /// The same from parsed JSON; `name` starts every error message.
  static Vocabulary from_json(const nlohmann::json& json, const std::string& name) {
    const auto fail = [&](const std::string& what) -> void { throw std::runtime_error(name + ": " + what); };
    std::vector<std::string> pieces;
    if (json.is_array()) {
      pieces.reserve(json.size());
      for (std::size_t id = 0; id < json.size(); ++id) {
        const nlohmann::json& entry = json[id];
        if (entry.is_string()) {
          pieces.push_back(entry.get<std::string>());
        } else if (entry.is_array() && !entry.empty() && entry[0].is_string()) {
          pieces.push_back(entry[0].get<std::string>());  // [piece, score]: the score is not needed
        } else {
          fail("vocabulary entry " + std::to_string(id) + " is " + entry.dump().substr(0, 80) +
               "; expected a string or a [piece, score] pair");
        }
      }
    } else if (json.is_object()) {
      pieces.assign(json.size(), std::string());
      std::vector<bool> seen(json.size(), false);
      for (auto it = json.begin(); it != json.end(); ++it) {
        if (!it.value().is_number_integer())
          fail("the id of piece " + nlohmann::json(it.key()).dump() + " is " + it.value().dump() +
               "; expected an integer");
        const auto id = it.value().get<long long>();
        if (id < 0 || id >= static_cast<long long>(json.size()))
          fail("piece " + nlohmann::json(it.key()).dump() + " has id " + std::to_string(id) + ", outside [0, " +
               std::to_string(json.size()) + "): the ids of a {piece: id} vocabulary must be 0..N-1");
        if (seen[static_cast<std::size_t>(id)]) fail("id " + std::to_string(id) + " is given to two pieces");
        seen[static_cast<std::size_t>(id)] = true;
        pieces[static_cast<std::size_t>(id)] = it.key();
      }
    } else {
      fail("expected a JSON list of pieces, of [piece, score] pairs, or an object {piece: id}");
    }
    if (pieces.empty()) fail("the vocabulary is empty");
    return Vocabulary(std::move(pieces));
  }

  Index size() const { return static_cast<Index>(pieces_.size()); }
  bool empty() const { return pieces_.empty(); }

  /// The piece of token `id` as the tokenizer spells it.
  /// requires: 0 <= id < size() (std::out_of_range otherwise).
  const std::string& piece(std::int64_t id) const {
    if (id < 0 || id >= static_cast<std::int64_t>(pieces_.size()))
      throw std::out_of_range("sae::Vocabulary::piece: token id " + std::to_string(id) + " is outside [0, " +
                              std::to_string(pieces_.size()) + ")");
    return pieces_[static_cast<std::size_t>(id)];
  }

  /// The piece as running text shows it: SentencePiece's word-start mark ▁
  /// (U+2581) and GPT-2's byte-level space Ġ (U+0120) become spaces, GPT-2's
  /// newline Ċ (U+010A) becomes ↵. Everything else is left as it is.
  std::string display(std::int64_t id) const { return display_text(piece(id)); }

  static std::string display_text(const std::string& piece) {
    std::string out;
    out.reserve(piece.size());
    for (std::size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {  // ▁
        out += ' ';
        i += 3;
      } else if (piece.compare(i, 2, "\xC4\xA0") == 0) {  // Ġ
        out += ' ';
        i += 2;
      } else if (piece.compare(i, 2, "\xC4\x8A") == 0) {  // Ċ
        out += "\xE2\x86\xB5";                            // ↵
        i += 2;
      } else {
        out += piece[i++];
      }
    }
    return out;
  }

 private:
  std::vector<std::string> pieces_;
};

}  // namespace sae
