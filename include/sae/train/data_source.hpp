// sae/train/data_source.hpp: where the trainer's batches of activations come from.
//
//   ActivationSource<Scalar>   the interface the trainer pulls batches from: an
//                              endless stream of shuffled rows, epoch after epoch,
//                              with a small state for checkpoints.
//   InMemorySource<Scalar>     rows of a matrix held in memory, reshuffled every epoch.
//   NpyFileSource<Scalar>      rows of one or more [N_i, D] .npy files, memory-mapped
//                              and shuffled through a buffer, so data larger than
//                              RAM streams.
//
// Every random choice is drawn from an sae::Rng owned by the source, so a seed
// gives the same stream on every platform, and a SourceState (positions and
// generator states, never data) resumes it bit for bit.
//
// NpyFileSource needs POSIX mmap (Linux, macOS, the BSDs).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "../io/mapped_file.hpp"
#include "../io/npy.hpp"

// Without mmap, MappedFile reads whole files, and data larger than RAM would not stream.
#ifndef SAE_DETAIL_HAVE_MMAP
#error "sae/train/data_source.hpp needs POSIX mmap (Linux, macOS, the BSDs)"
#endif

namespace sae {

/// Where a source is in its stream, as a flat list of integers that a
/// checkpoint can store as it likes. Opaque: only the source that wrote it
/// reads it. Holds positions, configuration checks and generator states, never
/// data, so it stays a few dozen words whatever the data size.
struct SourceState {
  std::vector<std::uint64_t> words;
};

inline bool operator==(const SourceState& a, const SourceState& b) { return a.words == b.words; }
inline bool operator!=(const SourceState& a, const SourceState& b) { return !(a == b); }

/// The stream of activations a trainer pulls its batches from.
///
/// The stream is endless: epoch after epoch over num_rows() rows, each epoch
/// a new shuffle (or the same order, for a source built without shuffling).
///
/// requires: rows >= 0 in next_batch (std::invalid_argument otherwise).
/// ensures:  - input_dim() > 0 and num_rows() > 0, fixed for the source's life.
///           - next_batch(out, rows) makes `out` rows x input_dim() (resizing it
///             only when its shape differs, so a warm batch is never reallocated)
///             and fills it with the next `rows` rows of the stream. Epochs join
///             seamlessly: one batch may end one epoch and begin the next.
///           - within each epoch, every row is served exactly once.
///           - rows_served() is the number of rows handed out so far.
///           - restore(s), with s = state() of a source built with the same
///             configuration, makes this source serve exactly the rows (bit for
///             bit) and report the rows_served() that the other would have from
///             that point on. A state that does not fit (wrong size, another
///             kind of source, another configuration, impossible values) throws
///             std::invalid_argument and leaves the source unchanged.
///           - not thread-safe: one thread pulls from a source at a time.
template <typename Scalar>
class ActivationSource {
 public:
  virtual ~ActivationSource() = default;

  /// Width D of every row.
  virtual Index input_dim() const = 0;
  /// Rows in one epoch.
  virtual Index num_rows() const = 0;
  /// The next `rows` rows of the stream into `out`, as rows x input_dim().
  virtual void next_batch(Batch<Scalar>& out, Index rows) = 0;
  /// Rows handed out since construction (or since the restored state's source was built).
  virtual std::uint64_t rows_served() const = 0;
  /// The position in the stream, for a checkpoint.
  virtual SourceState state() const = 0;
  /// Continues from a position saved by state().
  virtual void restore(const SourceState& state) = 0;

 protected:
  // Copying or moving only through a concrete source, never a sliced base.
  ActivationSource() = default;
  ActivationSource(const ActivationSource&) = default;
  ActivationSource(ActivationSource&&) noexcept = default;
  ActivationSource& operator=(const ActivationSource&) = default;
  ActivationSource& operator=(ActivationSource&&) noexcept = default;
};

namespace detail {

/// Eight characters packed into a word: the first word of a SourceState says
/// which kind of source (and which layout version) wrote it.
constexpr std::uint64_t pack_state_tag(const char (&text)[9]) {
  std::uint64_t tag = 0;
  for (int i = 0; i < 8; ++i) tag = (tag << 8) | static_cast<unsigned char>(text[i]);
  return tag;
}

inline constexpr std::uint64_t in_memory_state_tag = pack_state_tag("saeMem01");
inline constexpr std::uint64_t npy_file_state_tag = pack_state_tag("saeNpy01");
inline constexpr std::size_t rng_state_words = 4;

inline void check_batch_rows(Index rows, const char* who) {
  if (rows < 0) throw std::invalid_argument(std::string(who) + ": rows must be >= 0, got " + std::to_string(rows));
}

/// order[0, n) = 0, 1, ..., n-1, then shuffled by Fisher-Yates when `shuffle`.
/// Draws n - 1 numbers from `rng` when shuffling, none otherwise.
inline void make_order(std::vector<Index>& order, Index n, bool shuffle, Rng& rng) {
  std::iota(order.begin(), order.begin() + n, Index{0});
  if (!shuffle) return;
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(rng.below(static_cast<std::uint64_t>(i) + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
}

// The sources use only Rng::below, never normal(), so the four engine words
// are the whole generator state.
inline void append_rng_state(std::vector<std::uint64_t>& words, const Rng::State& state) {
  words.insert(words.end(), state.words.begin(), state.words.end());
}

inline Rng::State rng_state_from_words(const std::uint64_t* words) {
  Rng::State state{};
  std::copy(words, words + rng_state_words, state.words.begin());
  state.has_spare_normal = false;
  state.spare_normal = 0.0;
  return state;
}

/// Reads a SourceState as `expected_size` words starting with `tag`, or throws.
class StateReader {
 public:
  StateReader(const SourceState& state, std::uint64_t tag, std::size_t expected_size, const char* who)
      : words_(state.words), who_(who) {
    if (words_.empty() || words_[0] != tag) {
      fail("the state was not written by this kind of source (or by an incompatible version of it)");
    }
    if (words_.size() != expected_size) {
      fail("the state has " + std::to_string(words_.size()) + " words, expected " + std::to_string(expected_size));
    }
  }

  std::uint64_t next() { return words_[pos_++]; }

  /// The next word, which must equal this source's `value` of setting `name`.
  void expect(const char* name, std::uint64_t value) {
    const std::uint64_t saved = next();
    if (saved != value) {
      fail(std::string("the state is for a source with ") + name + " = " + std::to_string(saved) +
           ", this one has " + std::to_string(value) + " (restore needs the same configuration)");
    }
  }

  Rng::State next_rng_state() {
    const Rng::State state = rng_state_from_words(words_.data() + pos_);
    pos_ += rng_state_words;
    // xoshiro256** never reaches the all-zero state; from it, it would give only zeros.
    if (std::all_of(state.words.begin(), state.words.end(), [](std::uint64_t w) { return w == 0; })) {
      fail("the state holds an all-zero generator state, which no generator reaches");
    }
    return state;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument(std::string(who_) + ": " + what);
  }

 private:
  const std::vector<std::uint64_t>& words_;
  const char* who_;
  std::size_t pos_ = 1;  // after the tag
};

}  // namespace detail

// ---------------------------------------------------------------------------

/// Rows of a matrix held in memory, in a new random order every epoch
/// (Fisher-Yates with sae::Rng::below), or in row order when shuffle is false.
///
/// The source owns its rows: it takes the matrix by value, so pass
/// std::move(matrix) to hand it over without a copy. (Any Eigen expression of
/// Scalar converts, e.g. a column-major matrix.)
///
/// requires: data has at least one row and one column (std::invalid_argument).
/// ensures:  - the ActivationSource contract.
///           - epoch e's order is a uniformly random permutation drawn from
///             the generator as it stood when epoch e began; with the same seed,
///             the same data size and the same calls, the stream is the same
///             on every platform.
///           - shuffle == false: the stream is rows 0, 1, ..., N-1, 0, 1, ...
///           - next_batch allocates nothing once `out` has the right shape.
///           - state() is 10 words: restoring it regenerates the current epoch's
///             permutation from the saved generator state instead of storing it.
///             restore checks N, D and shuffle, not the values of the data; the
///             seed need not match (the state carries the generator).
template <typename Scalar>
class InMemorySource final : public ActivationSource<Scalar> {
 public:
  static_assert(std::is_floating_point<Scalar>::value,
                "sae::InMemorySource<Scalar>: Scalar must be float, double or long double");

  explicit InMemorySource(Batch<Scalar> data, std::uint64_t seed = 0, bool shuffle = true)
      : data_(std::move(data)), seed_(seed), shuffle_(shuffle), rng_(seed) {
    if (data_.rows() == 0 || data_.cols() == 0) {
      throw std::invalid_argument("sae::InMemorySource: the data must have at least one row and one column, got " +
                                  std::to_string(data_.rows()) + " x " + std::to_string(data_.cols()));
    }
    order_.resize(static_cast<std::size_t>(data_.rows()));
    start_epoch(0);
  }

  Index input_dim() const override { return data_.cols(); }
  Index num_rows() const override { return data_.rows(); }
  std::uint64_t rows_served() const override {
    return epoch_ * static_cast<std::uint64_t>(data_.rows()) + static_cast<std::uint64_t>(pos_);
  }

  void next_batch(Batch<Scalar>& out, Index rows) override {
    detail::check_batch_rows(rows, "sae::InMemorySource::next_batch");
    if (out.rows() != rows || out.cols() != data_.cols()) out.resize(rows, data_.cols());
    for (Index i = 0; i < rows; ++i) {
      if (pos_ == data_.rows()) start_epoch(epoch_ + 1);  // lazily, so a state at an epoch's end stays there
      out.row(i) = data_.row(order_[static_cast<std::size_t>(pos_++)]);
    }
  }

  /// Words: tag, N, D, shuffle, epoch, position in the epoch, the generator
  /// state when the epoch began (4 words).
  SourceState state() const override {
    SourceState state;
    state.words = {detail::in_memory_state_tag,
                   static_cast<std::uint64_t>(data_.rows()),
                   static_cast<std::uint64_t>(data_.cols()),
                   shuffle_ ? 1u : 0u,
                   epoch_,
                   static_cast<std::uint64_t>(pos_)};
    detail::append_rng_state(state.words, epoch_rng_);
    return state;
  }

  void restore(const SourceState& state) override {
    detail::StateReader in(state, detail::in_memory_state_tag, 6 + detail::rng_state_words,
                           "sae::InMemorySource::restore");
    const auto n = static_cast<std::uint64_t>(data_.rows());
    in.expect("rows", n);
    in.expect("columns", static_cast<std::uint64_t>(data_.cols()));
    in.expect("shuffle", shuffle_ ? 1u : 0u);
    const std::uint64_t epoch = in.next();
    const std::uint64_t pos = in.next();
    if (pos > n) in.fail("position " + std::to_string(pos) + " is past the epoch's " + std::to_string(n) + " rows");
    if (epoch > (std::numeric_limits<std::uint64_t>::max() - pos) / n) {
      in.fail("epoch " + std::to_string(epoch) + " is too large (the row count overflows 64 bits)");
    }
    const Rng::State epoch_rng = in.next_rng_state();

    rng_.set_state(epoch_rng);
    start_epoch(epoch);
    pos_ = static_cast<Index>(pos);
  }

  const Batch<Scalar>& data() const { return data_; }
  std::uint64_t seed() const { return seed_; }
  bool shuffle() const { return shuffle_; }
  /// The epoch the next row comes from (0-based), until a batch crosses into the next.
  std::uint64_t epoch() const { return epoch_; }

 private:
  void start_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    epoch_rng_ = rng_.state();
    detail::make_order(order_, data_.rows(), shuffle_, rng_);
    pos_ = 0;
  }

  Batch<Scalar> data_;
  std::uint64_t seed_;
  bool shuffle_;
  Rng rng_;
  Rng::State epoch_rng_{};
  std::vector<Index> order_;  // this epoch's row order
  Index pos_ = 0;             // rows of this epoch served, in [0, N]
  std::uint64_t epoch_ = 0;
};

// ---------------------------------------------------------------------------

/// Settings of an NpyFileSource.
struct NpyFileSourceOptions {
  std::uint64_t seed = 0;
  /// false: serve the rows in file order (the files one after the other), no shuffling.
  bool shuffle = true;
  /// Rows shuffled together: the buffer holds this many rows, i.e. buffer_rows x D
  /// Scalars of memory (65536 x 768 floats = 192 MiB). Clamped to the data's size.
  Index buffer_rows = 65536;
  /// Rows read in one contiguous piece; a buffer is buffer_rows / block_rows such
  /// blocks from random places in the data. 0 means buffer_rows / 16 (at least 1).
  /// block_rows == buffer_rows gives "shuffle a contiguous chunk at a time".
  Index block_rows = 0;
  /// While a buffer is served, ask the kernel to read the next buffer's blocks
  /// into the page cache (madvise WILLNEED), a block at a time, paced so that
  /// all are asked for by the time half the buffer is served: a refill from a
  /// file not yet in memory then copies instead of waiting on the disk. It
  /// changes no row served; false leaves the disk idle between refills.
  bool read_ahead = true;
};

/// Rows of one or more .npy files of shape [N_i, D], memory-mapped read-only,
/// served as one stream (the files one after the other) shuffled through a buffer.
///
/// How rows are mixed: the concatenated rows are cut into blocks of block_rows
/// rows (the last may be shorter; a block may span two files). Each epoch draws
/// a random order of all blocks; the buffer is refilled with the next
/// buffer_rows / block_rows blocks in that order, converted to Scalar, and
/// served in a random permutation. So each batch mixes rows from many places in
/// the data (as the buffers of SAELens and dictionary_learning mix many
/// sequences), reads stay sequential within a block, and memory is one buffer.
/// A buffer never spans two epochs; a batch may. Pages are dropped from the
/// process (MADV_DONTNEED) once copied, so resident memory stays bounded; the
/// next buffer's blocks are read ahead into the page cache (options.read_ahead),
/// which is the kernel's memory, reclaimed as it needs.
///
/// Files: any dtype load_npy reads (f2, f4, f8, integers, bool), either byte
/// order, converted on the fly; C order only (a Fortran-order file's rows are
/// not contiguous: convert it once, see the error message).
///
/// requires: - paths is not empty (std::invalid_argument).
///           - options.buffer_rows > 0 and 0 <= options.block_rows <= buffer_rows
///             (std::invalid_argument).
///           - every file is a readable, valid .npy file holding a 2-D C-order
///             array with at least one row, and all have the same number of
///             columns D >= 1 (std::runtime_error whose message starts with the
///             path and says what is wrong).
///           - the files are not modified while the source exists.
/// ensures:  - the ActivationSource contract, num_rows() = sum of N_i.
///           - a buffer refill depends only on (epoch, refill position, the
///             generator state at the refill), so state() stores those (19 words)
///             and restore() re-reads and re-permutes the same blocks. restore
///             checks N, D, the files' row counts, block_rows, blocks per buffer
///             and shuffle; the seed need not match (the state carries the generator).
///           - shuffle == false: rows in file order, epoch after epoch.
///           - next_batch allocates nothing once `out` has the right shape.
template <typename Scalar>
class NpyFileSource final : public ActivationSource<Scalar> {
 public:
  static_assert(std::is_floating_point<Scalar>::value,
                "sae::NpyFileSource<Scalar>: Scalar must be float, double or long double");

  static constexpr Index default_blocks_per_buffer = 16;

  explicit NpyFileSource(const std::vector<std::string>& paths, const NpyFileSourceOptions& options = {})
      : seed_(options.seed), shuffle_(options.shuffle), read_ahead_(options.read_ahead), rng_(options.seed) {
    if (paths.empty()) throw std::invalid_argument("sae::NpyFileSource: no .npy files given");
    if (options.buffer_rows <= 0) {
      throw std::invalid_argument("sae::NpyFileSource: buffer_rows must be positive, got " +
                                  std::to_string(options.buffer_rows));
    }
    if (options.block_rows < 0 || options.block_rows > options.buffer_rows) {
      throw std::invalid_argument("sae::NpyFileSource: block_rows must be in [0, buffer_rows = " +
                                  std::to_string(options.buffer_rows) + "] (0: automatic), got " +
                                  std::to_string(options.block_rows));
    }
    open_files(paths);

    block_rows_ = options.block_rows > 0 ? options.block_rows
                                         : std::max<Index>(1, options.buffer_rows / default_blocks_per_buffer);
    blocks_per_buffer_ = options.buffer_rows / block_rows_;
    num_blocks_ = rows_ / block_rows_ + (rows_ % block_rows_ != 0 ? 1 : 0);
    // A refill holds distinct blocks, so never more rows than the data has.
    // (blocks_per_buffer_ * block_rows_ <= buffer_rows: no overflow.)
    const Index capacity = std::min(blocks_per_buffer_ * block_rows_, rows_);
    buffer_.resize(capacity, dim_);
    buffer_order_.resize(static_cast<std::size_t>(capacity));
    block_order_.resize(static_cast<std::size_t>(num_blocks_));
    // Room for planning the read-ahead, so next_batch never allocates.
    next_epoch_order_.resize(static_cast<std::size_t>(num_blocks_));
    next_blocks_.reserve(static_cast<std::size_t>(std::min(blocks_per_buffer_, num_blocks_)));
    if (!shuffle_) {
      for (const auto& file : files_) file.sequential();
    }
    start_epoch(0);
  }

  Index input_dim() const override { return dim_; }
  Index num_rows() const override { return rows_; }
  std::uint64_t rows_served() const override {
    return epoch_ * static_cast<std::uint64_t>(rows_) + static_cast<std::uint64_t>(rows_before_buffer_ + buffer_pos_);
  }

  void next_batch(Batch<Scalar>& out, Index rows) override {
    detail::check_batch_rows(rows, "sae::NpyFileSource::next_batch");
    if (out.rows() != rows || out.cols() != dim_) out.resize(rows, dim_);
    for (Index i = 0; i < rows;) {
      if (buffer_pos_ == buffer_fill_) refill();
      const Index take = std::min(rows - i, buffer_fill_ - buffer_pos_);
      for (Index k = 0; k < take; ++k) {
        out.row(i + k) = buffer_.row(buffer_order_[static_cast<std::size_t>(buffer_pos_ + k)]);
      }
      i += take;
      buffer_pos_ += take;
    }
    if (read_ahead_) read_ahead();
  }

  /// Words: tag; the configuration it must be restored into (N, D, a hash of
  /// the files' row counts, block_rows, blocks per buffer, shuffle); epoch;
  /// the buffer's first block (index into the epoch's block order) and block
  /// count (0: no buffer loaded); the position in the buffer; the generator
  /// state when the epoch began and when the buffer was permuted (4 words each).
  SourceState state() const override {
    Index first = buffer_first_block_, count = buffer_block_count_, pos = buffer_pos_;
    Rng::State refill_rng = refill_rng_;
    if (count > 0 && buffer_pos_ == buffer_fill_) {
      // An exhausted buffer: say "nothing loaded" so restore reads nothing.
      first += count;
      count = 0;
      pos = 0;
    }
    if (count == 0) refill_rng = rng_.state();
    SourceState state;
    state.words = {detail::npy_file_state_tag,
                   static_cast<std::uint64_t>(rows_),
                   static_cast<std::uint64_t>(dim_),
                   files_fingerprint_,
                   static_cast<std::uint64_t>(block_rows_),
                   static_cast<std::uint64_t>(blocks_per_buffer_),
                   shuffle_ ? 1u : 0u,
                   epoch_,
                   static_cast<std::uint64_t>(first),
                   static_cast<std::uint64_t>(count),
                   static_cast<std::uint64_t>(pos)};
    detail::append_rng_state(state.words, epoch_rng_);
    detail::append_rng_state(state.words, refill_rng);
    return state;
  }

  void restore(const SourceState& state) override {
    detail::StateReader in(state, detail::npy_file_state_tag, 11 + 2 * detail::rng_state_words,
                           "sae::NpyFileSource::restore");
    in.expect("rows", static_cast<std::uint64_t>(rows_));
    in.expect("columns", static_cast<std::uint64_t>(dim_));
    in.expect("file row counts hash", files_fingerprint_);
    in.expect("block_rows", static_cast<std::uint64_t>(block_rows_));
    in.expect("blocks per buffer", static_cast<std::uint64_t>(blocks_per_buffer_));
    in.expect("shuffle", shuffle_ ? 1u : 0u);
    const std::uint64_t epoch = in.next();
    const std::uint64_t first = in.next();
    const std::uint64_t count = in.next();
    const std::uint64_t pos = in.next();
    const Rng::State epoch_rng = in.next_rng_state();
    const Rng::State refill_rng = in.next_rng_state();

    const auto num_blocks = static_cast<std::uint64_t>(num_blocks_);
    if (first > num_blocks) {
      in.fail("buffer start block " + std::to_string(first) + " is past the epoch's " + std::to_string(num_blocks) +
              " blocks");
    }
    const std::uint64_t full_count = std::min(static_cast<std::uint64_t>(blocks_per_buffer_), num_blocks - first);
    if (count != 0 && count != full_count) {
      in.fail("a buffer starting at block " + std::to_string(first) + " holds " + std::to_string(full_count) +
              " blocks, not " + std::to_string(count));
    }
    if (count == 0 && pos != 0) in.fail("position " + std::to_string(pos) + " in a buffer that is not loaded");

    // The epoch's block order, drawn again from the generator as it stood then.
    std::vector<Index> block_order(block_order_.size());
    Rng epoch_generator;
    epoch_generator.set_state(epoch_rng);
    detail::make_order(block_order, num_blocks_, shuffle_, epoch_generator);

    std::uint64_t rows_before = 0;
    for (std::uint64_t b = 0; b < first; ++b) rows_before += static_cast<std::uint64_t>(block_size(block_order[b]));
    std::uint64_t fill = 0;
    for (std::uint64_t b = first; b < first + count; ++b) fill += static_cast<std::uint64_t>(block_size(block_order[b]));
    if (pos > fill) {
      in.fail("position " + std::to_string(pos) + " is past the buffer's " + std::to_string(fill) + " rows");
    }
    const auto n = static_cast<std::uint64_t>(rows_);
    if (epoch > (std::numeric_limits<std::uint64_t>::max() - n) / n) {
      in.fail("epoch " + std::to_string(epoch) + " is too large (the row count overflows 64 bits)");
    }

    // Valid: commit. Nothing below throws.
    block_order_.swap(block_order);
    epoch_ = epoch;
    epoch_rng_ = epoch_rng;
    rows_before_buffer_ = static_cast<Index>(rows_before);
    rng_.set_state(refill_rng);
    buffer_first_block_ = static_cast<Index>(first);
    buffer_block_count_ = 0;
    buffer_fill_ = 0;
    buffer_pos_ = 0;
    forget_next_buffer();
    if (count > 0) load_and_permute(static_cast<Index>(first), static_cast<Index>(count));
    buffer_pos_ = static_cast<Index>(pos);
  }

  std::size_t num_files() const { return files_.size(); }
  const std::string& path(std::size_t file) const { return files_.at(file).path(); }
  /// Rows of file `file`.
  Index file_rows(std::size_t file) const {
    return file_start_.at(file + 1) - file_start_[file];
  }
  std::uint64_t seed() const { return seed_; }
  bool shuffle() const { return shuffle_; }
  Index block_rows() const { return block_rows_; }
  /// Rows the buffer holds at most (buffer_rows rounded down to whole blocks, clamped to N).
  Index buffer_capacity() const { return buffer_.rows(); }
  /// The epoch of the rows in the buffer (0-based).
  std::uint64_t epoch() const { return epoch_; }
  bool read_ahead_enabled() const { return read_ahead_; }
  /// The blocks the next refill will read, as ranges [first, last) of global
  /// rows (the files one after the other), in the order it reads them; empty
  /// while no buffer is loaded.
  std::vector<std::pair<Index, Index>> next_buffer_row_ranges() const {
    std::vector<std::pair<Index, Index>> ranges;
    for (const Index block : next_blocks_)
      ranges.emplace_back(block * block_rows_, block * block_rows_ + block_size(block));
    return ranges;
  }
  /// Rows of the next buffer asked of the kernel so far (0 when read_ahead is off).
  Index read_ahead_rows() const { return next_rows_advised_; }

 private:
  void open_files(const std::vector<std::string>& paths) {
    files_.reserve(paths.size());
    headers_.reserve(paths.size());
    file_start_.push_back(0);
    for (const std::string& path : paths) {
      detail::MappedFile file(path);
      NpyHeader header = parse_npy_header(file.data(), file.size(), path);
      if (header.shape.size() != 2) {
        detail::npy_fail(path, "array has " + std::to_string(header.shape.size()) + " dimensions, shape " +
                                   detail::format_shape(header.shape) + "; expected 2-D activations [N, D]");
      }
      if (header.fortran_order) {
        detail::npy_fail(path,
                         "is stored in Fortran (column-major) order; rows are streamed and must be contiguous. "
                         "Convert it once to C order, e.g. in Python: a = np.load(path, mmap_mode='r'); "
                         "np.save(new_path, np.ascontiguousarray(a))");
      }
      const auto rows = static_cast<Index>(header.shape[0]);  // the parser keeps dimensions within Index
      const auto cols = static_cast<Index>(header.shape[1]);
      if (rows == 0) detail::npy_fail(path, "has zero rows, shape " + detail::format_shape(header.shape));
      if (cols == 0) detail::npy_fail(path, "has zero columns, shape " + detail::format_shape(header.shape));
      if (files_.empty()) {
        dim_ = cols;
      } else if (cols != dim_) {
        detail::npy_fail(path, "has " + std::to_string(cols) + " columns, shape " +
                                   detail::format_shape(header.shape) + ", but " + files_.front().path() + " has " +
                                   std::to_string(dim_) + "; all files must have the same width D");
      }
      if (rows > std::numeric_limits<Index>::max() - file_start_.back()) {
        detail::npy_fail(path, "the files hold too many rows in total");
      }
      file_start_.push_back(file_start_.back() + rows);
      files_.push_back(std::move(file));
      headers_.push_back(std::move(header));
    }
    rows_ = file_start_.back();

    // FNV-1a over (file count, each file's rows): a restored state must come
    // from the same files in the same order, which positions alone cannot show.
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    const auto mix = [&hash](std::uint64_t word) {
      for (int i = 0; i < 8; ++i) {
        hash ^= (word >> (8 * i)) & 0xff;
        hash *= 0x100000001b3ULL;
      }
    };
    mix(files_.size());
    for (std::size_t f = 0; f < files_.size(); ++f) mix(static_cast<std::uint64_t>(file_rows(f)));
    files_fingerprint_ = hash;
  }

  Index block_size(Index block) const { return std::min(block_rows_, rows_ - block * block_rows_); }

  void start_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    epoch_rng_ = rng_.state();
    detail::make_order(block_order_, num_blocks_, shuffle_, rng_);
    buffer_first_block_ = 0;
    buffer_block_count_ = 0;
    buffer_fill_ = 0;
    buffer_pos_ = 0;
    rows_before_buffer_ = 0;
  }

  /// Replaces the exhausted buffer with the next blocks, starting a new epoch
  /// when this one has none left.
  void refill() {
    rows_before_buffer_ += buffer_fill_;
    Index first = buffer_first_block_ + buffer_block_count_;
    if (first == num_blocks_) {
      start_epoch(epoch_ + 1);
      first = 0;
    }
    load_and_permute(first, std::min(blocks_per_buffer_, num_blocks_ - first));
  }

  /// Reads blocks block_order_[first, first + count) into the buffer, then
  /// draws its serving order from the generator (saved first, for state()).
  void load_and_permute(Index first, Index count) {
    // The blocks of a refill the read-ahead planned and asked for all of need
    // no second advice (after a restore nothing was planned).
    const bool advised = !next_blocks_.empty() && next_blocks_advised_ == next_blocks_.size();
    Index fill = 0;
    for (Index b = first; b < first + count; ++b) {
      const Index block = block_order_[static_cast<std::size_t>(b)];
      const Index begin = block * block_rows_;
      const Index size = block_size(block);
      read_rows(begin, size, fill, !advised);
      fill += size;
    }
    buffer_first_block_ = first;
    buffer_block_count_ = count;
    buffer_fill_ = fill;
    buffer_pos_ = 0;
    refill_rng_ = rng_.state();
    detail::make_order(buffer_order_, fill, shuffle_, rng_);
    plan_next_buffer();
  }

  /// next_blocks_ = the blocks the refill after this one will read. At the end
  /// of an epoch they come from the next epoch's block order, drawn here from
  /// a copy of the generator exactly as start_epoch will draw it (nothing else
  /// draws in between).
  void plan_next_buffer() {
    forget_next_buffer();
    const std::vector<Index>* order = &block_order_;
    Index first = buffer_first_block_ + buffer_block_count_;
    if (first == num_blocks_) {
      Rng next_epoch;
      next_epoch.set_state(rng_.state());
      detail::make_order(next_epoch_order_, num_blocks_, shuffle_, next_epoch);
      order = &next_epoch_order_;
      first = 0;
    }
    const Index count = std::min(blocks_per_buffer_, num_blocks_ - first);
    for (Index b = first; b < first + count; ++b) {
      const Index block = (*order)[static_cast<std::size_t>(b)];
      next_blocks_.push_back(block);
      next_rows_ += block_size(block);
    }
  }

  void forget_next_buffer() {
    next_blocks_.clear();
    next_blocks_advised_ = 0;
    next_rows_advised_ = 0;
    next_rows_ = 0;
  }

  /// Advises the next buffer's blocks in order, keeping the rows advised ahead
  /// of twice the fraction of this buffer served (at least one block ahead).
  void read_ahead() {
    const double served = buffer_fill_ > 0 ? static_cast<double>(buffer_pos_) / static_cast<double>(buffer_fill_) : 0.0;
    const double target = 2.0 * served * static_cast<double>(next_rows_);
    while (next_blocks_advised_ < next_blocks_.size() && static_cast<double>(next_rows_advised_) <= target) {
      const Index block = next_blocks_[next_blocks_advised_++];
      for_each_file_piece(block * block_rows_, block_size(block),
                          [this](std::size_t file, std::size_t offset, std::size_t length, Index) {
                            files_[file].will_need(offset, length);
                          });
      next_rows_advised_ += block_size(block);
    }
  }

  /// Converts global rows [begin, begin + count) into buffer rows from `to`,
  /// first asking the kernel for them when `advise`.
  void read_rows(Index begin, Index count, Index to, bool advise) {
    for_each_file_piece(begin, count, [&](std::size_t file, std::size_t offset, std::size_t length, Index rows) {
      const detail::MappedFile& mapped = files_[file];
      if (advise) mapped.will_need(offset, length);
      detail::decode_npy_data(headers_[file], mapped.data() + offset, rows, dim_, buffer_.data() + to * dim_,
                              mapped.path());
      mapped.dont_need(offset, length);
      to += rows;
    });
  }

  /// Calls piece(file, offset, length, rows) for each file's share of global
  /// rows [begin, begin + count), in order: its byte range and row count.
  template <typename Piece>
  void for_each_file_piece(Index begin, Index count, Piece&& piece) const {
    const Index end = begin + count;
    auto file = static_cast<std::size_t>(std::upper_bound(file_start_.begin(), file_start_.end(), begin) -
                                         file_start_.begin() - 1);
    while (begin < end) {
      const Index file_end = std::min(end, file_start_[file + 1]);
      const Index rows = file_end - begin;
      const NpyHeader& header = headers_[file];
      const auto row_bytes = static_cast<std::size_t>(dim_) * static_cast<std::size_t>(header.item_size);
      const std::size_t offset =
          static_cast<std::size_t>(header.data_offset) + static_cast<std::size_t>(begin - file_start_[file]) * row_bytes;
      piece(file, offset, static_cast<std::size_t>(rows) * row_bytes, rows);
      begin = file_end;
      ++file;
    }
  }

  // Files, in stream order.
  std::vector<detail::MappedFile> files_;
  std::vector<NpyHeader> headers_;
  std::vector<Index> file_start_;  // file f holds global rows [file_start_[f], file_start_[f + 1])
  Index rows_ = 0;
  Index dim_ = 0;
  std::uint64_t files_fingerprint_ = 0;

  // Configuration.
  std::uint64_t seed_;
  bool shuffle_;
  bool read_ahead_;
  Index block_rows_ = 1;
  Index blocks_per_buffer_ = 1;
  Index num_blocks_ = 1;

  // Position: epoch_, then buffer_block_count_ blocks starting at index
  // buffer_first_block_ of block_order_ are in the buffer, served up to buffer_pos_.
  Rng rng_;
  Rng::State epoch_rng_{};   // when the epoch's block order was drawn
  Rng::State refill_rng_{};  // when the buffer's permutation was drawn
  std::uint64_t epoch_ = 0;
  std::vector<Index> block_order_;
  Index buffer_first_block_ = 0;
  Index buffer_block_count_ = 0;
  Index rows_before_buffer_ = 0;  // rows of this epoch in the blocks before the buffer
  Batch<Scalar> buffer_;
  std::vector<Index> buffer_order_;
  Index buffer_fill_ = 0;
  Index buffer_pos_ = 0;

  // Read-ahead: the next refill's blocks, and how many of them (and their
  // rows) have been advised. Sized at construction.
  std::vector<Index> next_epoch_order_;
  std::vector<Index> next_blocks_;
  std::size_t next_blocks_advised_ = 0;
  Index next_rows_advised_ = 0;
  Index next_rows_ = 0;
};

}  // namespace sae
