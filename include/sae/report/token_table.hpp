// sae/report/token_table.hpp: which token each activation row is.
//
//   sae::TokenTable tokens("heldout_acts_tokens.npy", /*expected_rows=*/acts.rows(), /*vocab_size=*/vocab.size());
//   tokens.token_id(row);                 // the tokenizer's id of the row's token
//   tokens.sequence(row);                 // which sequence (text window) it belongs to
//   tokens.position(row);                 // its position in that sequence
//   auto [first, last] = tokens.context(row, 8, 3);   // up to 8 rows before, 3 after, same sequence
//
// The table is an integer .npy array [N, 3] with one row per activation row:
// (token id, sequence index, position), as ../shared/realdata writes it
// (int32). Any integer dtype is accepted. It is memory-mapped, and validated
// in one pass when opened (N must equal the activations' row count, ids must
// be in [0, vocab_size) when a vocabulary is given, sequence and position
// must be non-negative), so a bad table fails before the long statistics
// pass, with a std::runtime_error naming the file, the row and the value.
//
// Contexts: the rows of one sequence are contiguous and in position order in
// realdata's files (extract_acts.js writes each window's tokens one after the
// other). context() does not rely on it blindly: it walks from the row
// outwards only while the neighbour has the same sequence index and the next
// position, so a table in another order gives shorter contexts, never wrong ones.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "../core/types.hpp"
#include "npy_rows.hpp"

namespace sae {

class TokenTable {
 public:
  /// Opens and validates `path`. expected_rows: the activations' row count
  /// (< 0: not checked); vocab_size: ids must be below it (< 0: not checked).
  TokenTable(const std::string& path, Index expected_rows, Index vocab_size = -1) : rows_(path) {
    const NpyHeader& header = rows_.header();
    if (header.kind != NpyHeader::Kind::SignedInt && header.kind != NpyHeader::Kind::UnsignedInt)
      fail("has dtype '" + header.descr + "'; a token table holds integers (token id, sequence index, position)");
    if (rows_.cols() != 3)
      fail("has shape " + detail::format_shape(header.shape) +
           "; a token table is [N, 3]: token id, sequence index, position");
    if (expected_rows >= 0 && rows_.rows() != expected_rows)
      fail("has " + std::to_string(rows_.rows()) + " rows but the activations have " +
           std::to_string(expected_rows) + "; the table needs one row per activation row");
    validate(vocab_size);
  }

  Index rows() const { return rows_.rows(); }
  const std::string& path() const { return rows_.path(); }

  std::int64_t token_id(Index row) const { return entry(row, 0); }
  std::int64_t sequence(Index row) const { return entry(row, 1); }
  std::int64_t position(Index row) const { return entry(row, 2); }

  /// The first and last row of the context of `row`: up to `before` rows
  /// before it and `after` rows after it that continue its sequence.
  std::pair<Index, Index> context(Index row, Index before, Index after) const {
    const Index lo = std::max<Index>(0, row - before), hi = std::min(rows() - 1, row + after);
    const Batch<std::int64_t> block = read_block(lo, hi - lo + 1);
    const Index at = row - lo;
    const auto same_sequence = [&](Index a, Index b) {  // b continues a's sequence right after it
      return block(b, 1) == block(a, 1) && block(b, 2) == block(a, 2) + 1;
    };
    Index first = at, last = at;
    while (first > 0 && same_sequence(first - 1, first)) --first;
    while (last + 1 < block.rows() && same_sequence(last, last + 1)) ++last;
    return {lo + first, lo + last};
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(path() + ": " + what); }

  Batch<std::int64_t> read_block(Index begin, Index count) const {
    Batch<std::int64_t> block;
    rows_.read(begin, count, block);
    return block;
  }

  std::int64_t entry(Index row, Index column) const {
    if (row < 0 || row >= rows())
      throw std::out_of_range(path() + ": row " + std::to_string(row) + " is outside the table's " +
                              std::to_string(rows()) + " rows");
    return read_block(row, 1)(0, column);
  }

  // One pass over the table, a block at a time (memory stays one block).
  void validate(Index vocab_size) const {
    constexpr Index block_rows = 1 << 16;
    Batch<std::int64_t> block;
    for (Index begin = 0; begin < rows(); begin += block_rows) {
      const Index count = std::min(block_rows, rows() - begin);
      rows_.read(begin, count, block);
      for (Index r = 0; r < count; ++r) {
        const std::int64_t id = block(r, 0), sequence = block(r, 1), position = block(r, 2);
        if (id < 0 || (vocab_size >= 0 && id >= vocab_size))
          fail("row " + std::to_string(begin + r) + " has token id " + std::to_string(id) +
               (vocab_size >= 0 ? ", outside the vocabulary's ids [0, " + std::to_string(vocab_size) + ")"
                                : ", a negative id"));
        if (sequence < 0 || position < 0)
          fail("row " + std::to_string(begin + r) + " has sequence index " + std::to_string(sequence) +
               " and position " + std::to_string(position) + "; both must be non-negative");
      }
    }
  }

  NpyRows rows_;
};

}  // namespace sae
