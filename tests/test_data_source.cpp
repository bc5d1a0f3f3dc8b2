// tests/test_data_source.cpp: the trainer's data sources (sae/train/data_source.hpp).
//
// The data encode their own row ids: global row i is [i, i + 0.25, i + 0.5, ...],
// so every check below reads which rows were served from the batch itself and
// compares with what the contract says (each row once per epoch, file order
// when unshuffled, ...), never with a stream recorded from our own code.
// Files are written by sae::save_npy, assembled byte by byte here (f2,
// big-endian, Fortran order, 3-D), or written by NumPy when it is installed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <sae/io/npy.hpp>
#include <sae/train/data_source.hpp>

#include "temp_dir.hpp"

using sae_test::TempDir;

namespace {

namespace fs = std::filesystem;
using sae::Index;

// ---------------------------------------------------------------------------
// Rows that say who they are

/// Rows first .. first + n - 1 of the id-encoded data: row i = [i, i + 0.25, i + 0.5, ...].
template <typename Scalar>
sae::Batch<Scalar> id_rows(Index first, Index n, Index d) {
  sae::Batch<Scalar> rows(n, d);
  for (Index r = 0; r < n; ++r)
    for (Index c = 0; c < d; ++c) rows(r, c) = static_cast<Scalar>(static_cast<double>(first + r) + 0.25 * c);
  return rows;
}

/// The id of row r of `batch`, or -1 if the row is not an intact id row.
template <typename Scalar>
Index row_id(const sae::Batch<Scalar>& batch, Index r) {
  const double id = static_cast<double>(batch(r, 0));
  if (id < 0 || id != std::floor(id)) return -1;
  for (Index c = 1; c < batch.cols(); ++c)
    if (static_cast<double>(batch(r, c)) != id + 0.25 * c) return -1;
  return static_cast<Index>(id);
}

/// The ids of the rows of `batches` batches of `batch_rows` rows, in order.
template <typename Scalar>
std::vector<Index> pull_ids(sae::ActivationSource<Scalar>& source, Index batches, Index batch_rows) {
  std::vector<Index> ids;
  sae::Batch<Scalar> batch;
  for (Index b = 0; b < batches; ++b) {
    source.next_batch(batch, batch_rows);
    REQUIRE(batch.rows() == batch_rows);
    REQUIRE(batch.cols() == source.input_dim());
    for (Index r = 0; r < batch_rows; ++r) ids.push_back(row_id(batch, r));
  }
  return ids;
}

/// ids[begin, begin + n) holds each of 0 .. n-1 exactly once.
bool is_epoch(const std::vector<Index>& ids, std::size_t begin, Index n) {
  if (begin + static_cast<std::size_t>(n) > ids.size()) return false;
  std::vector<Index> epoch(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                           ids.begin() + static_cast<std::ptrdiff_t>(begin) + n);
  std::sort(epoch.begin(), epoch.end());
  for (Index i = 0; i < n; ++i)
    if (epoch[static_cast<std::size_t>(i)] != i) return false;
  return true;
}

std::vector<Index> slice(const std::vector<Index>& ids, std::size_t begin, std::size_t n) {
  return {ids.begin() + static_cast<std::ptrdiff_t>(begin), ids.begin() + static_cast<std::ptrdiff_t>(begin + n)};
}

std::vector<Index> iota_ids(Index first, Index n) {
  std::vector<Index> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

/// The next `batches` batches, for bit-for-bit comparisons.
template <typename Scalar>
std::vector<sae::Batch<Scalar>> pull_batches(sae::ActivationSource<Scalar>& source, int batches, Index rows) {
  std::vector<sae::Batch<Scalar>> out(static_cast<std::size_t>(batches));
  for (auto& batch : out) source.next_batch(batch, rows);
  return out;
}

template <typename Scalar>
bool same_bits(const std::vector<sae::Batch<Scalar>>& a, const std::vector<sae::Batch<Scalar>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].rows() != b[i].rows() || a[i].cols() != b[i].cols()) return false;
    if (std::memcmp(a[i].data(), b[i].data(), sizeof(Scalar) * static_cast<std::size_t>(a[i].size())) != 0)
      return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Files


template <typename UInt>
void put_bytes(std::string& out, UInt bits, bool big_endian) {
  for (std::size_t k = 0; k < sizeof(UInt); ++k) {
    const std::size_t i = big_endian ? sizeof(UInt) - 1 - k : k;
    out += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
}

/// A .npy file (format 1.0) assembled by hand: the dict padded with spaces and
/// '\n' so the data starts at a multiple of 64, then `data` as given.
void write_raw_npy(const std::string& path, const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  put_bytes(out, static_cast<std::uint16_t>(header.size()), false);
  out += header;
  out += data;
  std::ofstream file(path, std::ios::binary);
  file.write(out.data(), static_cast<std::streamsize>(out.size()));
  REQUIRE(file.good());
}

std::string dict(const std::string& descr, bool fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

/// IEEE binary16 bits of a non-negative value that half represents exactly as a normal number (or 0).
std::uint16_t half_bits(double value) {
  if (value == 0) return 0;
  int exponent = 0;
  const double fraction = std::frexp(value, &exponent);  // value = fraction * 2^exponent, fraction in [0.5, 1)
  const double mantissa = (fraction * 2 - 1) * 1024;       // value = (1 + mantissa / 1024) * 2^(exponent - 1)
  REQUIRE(mantissa == std::floor(mantissa));
  REQUIRE(exponent - 1 + 15 > 0);
  return static_cast<std::uint16_t>(((exponent - 1 + 15) << 10) | static_cast<int>(mantissa));
}

std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

/// Id rows first .. first + n - 1 of width d, as '<f2' bytes.
std::string half_id_data(Index first, Index n, Index d) {
  std::string data;
  for (Index r = 0; r < n; ++r)
    for (Index c = 0; c < d; ++c) put_bytes(data, half_bits(static_cast<double>(first + r) + 0.25 * c), false);
  return data;
}

/// Id rows as '>f4' bytes.
std::string big_endian_float_id_data(Index first, Index n, Index d) {
  std::string data;
  for (Index r = 0; r < n; ++r)
    for (Index c = 0; c < d; ++c)
      put_bytes(data, float_bits(static_cast<float>(static_cast<double>(first + r) + 0.25 * c)), true);
  return data;
}

/// Files of the given row counts holding consecutive id rows, alternately float32 and float64.
std::vector<std::string> write_id_files(const TempDir& dir, const std::vector<Index>& rows, Index d,
                                        const std::string& stem = "part") {
  std::vector<std::string> paths;
  Index first = 0;
  for (std::size_t f = 0; f < rows.size(); ++f) {
    paths.push_back(dir.file(stem + std::to_string(f) + ".npy"));
    if (f % 2 == 0) sae::save_npy(paths.back(), id_rows<float>(first, rows[f], d));
    else sae::save_npy(paths.back(), id_rows<double>(first, rows[f], d));
    first += rows[f];
  }
  return paths;
}

sae::NpyFileSourceOptions options(Index buffer_rows, Index block_rows, std::uint64_t seed = 0, bool shuffle = true) {
  sae::NpyFileSourceOptions o;
  o.seed = seed;
  o.shuffle = shuffle;
  o.buffer_rows = buffer_rows;
  o.block_rows = block_rows;
  return o;
}

}  // namespace

// ===========================================================================
// InMemorySource

TEMPLATE_TEST_CASE("InMemorySource serves every row once per epoch, reshuffled each epoch", "[data]", float,
                   double) {
  const Index n = 1000;
  sae::InMemorySource<TestType> source(id_rows<TestType>(0, n, 4), 3);
  CHECK(source.num_rows() == n);
  CHECK(source.input_dim() == 4);
  CHECK(source.rows_served() == 0);

  const std::vector<Index> ids = pull_ids(source, 47, 64);  // 3008 rows: 64 does not divide 1000
  CHECK(source.rows_served() == 3008);
  CHECK(source.epoch() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CAPTURE(e);
    CHECK(is_epoch(ids, e * n, n));
  }
  const auto epoch0 = slice(ids, 0, n), epoch1 = slice(ids, n, n), epoch2 = slice(ids, 2 * n, n);
  CHECK(epoch0 != iota_ids(0, n));  // shuffled at all
  CHECK(epoch0 != epoch1);          // and a new shuffle each epoch
  CHECK(epoch1 != epoch2);
  CHECK(epoch0 != epoch2);
}

TEST_CASE("InMemorySource without shuffling serves rows in order, across epoch boundaries", "[data]") {
  sae::InMemorySource<float> source(id_rows<float>(0, 10, 3), 0, false);
  const std::vector<Index> ids = pull_ids(source, 3, 7);
  CHECK(ids == std::vector<Index>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0});
  CHECK(source.rows_served() == 21);
}

TEST_CASE("InMemorySource: a batch spanning an epoch boundary ends one epoch and starts the next", "[data]") {
  sae::InMemorySource<double> source(id_rows<double>(0, 10, 2), 11);
  const std::vector<Index> ids = pull_ids(source, 3, 7);  // rows 0-6 | 7-9 of epoch 0, 0-3 of epoch 1 | 4-10
  CHECK(is_epoch(ids, 0, 10));
  CHECK(is_epoch(ids, 10, 10));
  CHECK(ids[20] >= 0);
  CHECK(source.rows_served() == 21);
  CHECK(source.epoch() == 2);
}

TEST_CASE("InMemorySource: the same seed gives the same stream, another seed another", "[data]") {
  const auto data = id_rows<float>(0, 100, 5);
  sae::InMemorySource<float> a(data, 42), b(data, 42), c(data, 43);
  const auto batches_a = pull_batches(a, 9, 32);
  CHECK(same_bits(batches_a, pull_batches(b, 9, 32)));
  CHECK_FALSE(same_bits(batches_a, pull_batches(c, 9, 32)));
}

TEST_CASE("InMemorySource reuses a batch of the right shape and resizes one of another", "[data]") {
  sae::InMemorySource<float> source(id_rows<float>(0, 50, 4), 1);
  sae::Batch<float> batch(3, 9);
  source.next_batch(batch, 16);
  CHECK(batch.rows() == 16);
  CHECK(batch.cols() == 4);
  const float* storage = batch.data();
  for (int i = 0; i < 10; ++i) source.next_batch(batch, 16);  // crosses several epochs
  CHECK(batch.data() == storage);

  source.next_batch(batch, 0);
  CHECK(batch.rows() == 0);
  CHECK(batch.cols() == 4);
  CHECK_THROWS_AS(source.next_batch(batch, -1), std::invalid_argument);
}

TEST_CASE("InMemorySource takes any Eigen matrix of its Scalar and refuses empty data", "[data]") {
  Eigen::MatrixXd column_major = id_rows<double>(0, 6, 3);
  sae::InMemorySource<double> source(column_major, 0, false);
  CHECK(pull_ids(source, 1, 6) == iota_ids(0, 6));
  CHECK_THROWS_AS(sae::InMemorySource<float>(sae::Batch<float>(0, 4)), std::invalid_argument);
  CHECK_THROWS_AS(sae::InMemorySource<float>(sae::Batch<float>(4, 0)), std::invalid_argument);
}

TEMPLATE_TEST_CASE("InMemorySource state() restored into a fresh source continues the stream bit for bit", "[data]",
                   float, double) {
  const auto data = id_rows<TestType>(0, 50, 3);
  const bool shuffle = GENERATE(true, false);
  // Rows pulled before saving: none, mid-epoch, exactly one epoch, mid second epoch.
  const Index before = GENERATE(0, 13, 50, 65, 100);
  CAPTURE(shuffle, before);

  sae::InMemorySource<TestType> original(data, 7, shuffle);
  sae::Batch<TestType> scratch;
  original.next_batch(scratch, before);
  const sae::SourceState saved = original.state();
  CHECK(original.state() == saved);  // state() does not move the stream
  const auto expected = pull_batches(original, 10, 13);

  sae::InMemorySource<TestType> fresh(data, 7, shuffle);
  fresh.restore(saved);
  CHECK(fresh.rows_served() == static_cast<std::uint64_t>(before));
  CHECK(same_bits(pull_batches(fresh, 10, 13), expected));
  CHECK(fresh.rows_served() == original.rows_served());

  // The generator state travels with the state: the seed of the receiver does not matter.
  sae::InMemorySource<TestType> other_seed(data, 12345, shuffle);
  other_seed.restore(saved);
  CHECK(same_bits(pull_batches(other_seed, 10, 13), expected));
}

TEST_CASE("InMemorySource::restore refuses states that do not fit, and then changes nothing", "[data]") {
  const auto data = id_rows<float>(0, 20, 2);
  sae::InMemorySource<float> source(data, 5), twin(data, 5);
  sae::Batch<float> scratch;
  source.next_batch(scratch, 7);
  twin.next_batch(scratch, 7);
  const sae::SourceState good = source.state();

  const auto refused = [&](const sae::SourceState& state) {
    CHECK_THROWS_AS(source.restore(state), std::invalid_argument);
  };
  refused(sae::SourceState{});
  sae::SourceState shorter = good;
  shorter.words.pop_back();
  refused(shorter);
  sae::SourceState longer = good;
  longer.words.push_back(0);
  refused(longer);
  sae::SourceState wrong_kind = good;
  wrong_kind.words[0] ^= 1;
  refused(wrong_kind);
  refused(sae::InMemorySource<float>(id_rows<float>(0, 21, 2), 5).state());       // other N
  refused(sae::InMemorySource<float>(id_rows<float>(0, 20, 3), 5).state());       // other D
  refused(sae::InMemorySource<float>(data, 5, false).state());                    // other shuffle
  sae::SourceState past_end = good;
  past_end.words[5] = 21;  // position in an epoch of 20 rows
  refused(past_end);
  sae::SourceState zero_generator = good;
  std::fill(zero_generator.words.end() - 4, zero_generator.words.end(), 0);
  refused(zero_generator);
  CHECK_THROWS_WITH(source.restore(past_end), Catch::Contains("sae::InMemorySource::restore"));

  CHECK(same_bits(pull_batches(source, 5, 6), pull_batches(twin, 5, 6)));
  CHECK(source.rows_served() == twin.rows_served());
}

// ===========================================================================
// NpyFileSource

TEMPLATE_TEST_CASE("NpyFileSource serves several files as one stream, each row once per epoch", "[data]", float,
                   double) {
  const TempDir dir("sae_test_data_source");
  const std::vector<Index> file_rows{300, 1, 457};  // 758 rows; a 1-row file in the middle
  const Index n = 758;
  const auto paths = write_id_files(dir, file_rows, 4);

  struct Setting {
    Index buffer_rows, block_rows;
  };
  for (const Setting setting : {Setting{64, 8}, Setting{10, 0}, Setting{1, 1}, Setting{100000, 0},
                                Setting{100, 100}, Setting{300, 7}, Setting{758, 758}}) {
    CAPTURE(setting.buffer_rows, setting.block_rows);
    sae::NpyFileSource<TestType> source(paths, options(setting.buffer_rows, setting.block_rows, 9));
    CHECK(source.num_rows() == n);
    CHECK(source.input_dim() == 4);
    CHECK(source.num_files() == 3);
    CHECK(source.file_rows(1) == 1);
    CHECK(source.buffer_capacity() <= std::min(setting.buffer_rows, n));

    const std::vector<Index> ids = pull_ids(source, 46, 50);  // 2300 rows: 3 epochs and a bit
    CHECK(source.rows_served() == 2300);
    CHECK(source.epoch() == 3);
    CHECK(is_epoch(ids, 0, n));
    CHECK(is_epoch(ids, n, n));
    CHECK(is_epoch(ids, 2 * n, n));
    CHECK(slice(ids, 0, n) != iota_ids(0, n));
    CHECK(slice(ids, 0, n) != slice(ids, n, n));
    CHECK(slice(ids, n, n) != slice(ids, 2 * n, n));
  }
}

TEST_CASE("NpyFileSource without shuffling serves the files in order, epoch after epoch", "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {30, 1, 17}, 3);
  for (const Index buffer_rows : {Index{1}, Index{5}, Index{16}, Index{48}, Index{1000}}) {
    CAPTURE(buffer_rows);
    sae::NpyFileSource<float> source(paths, options(buffer_rows, 0, 0, false));
    std::vector<Index> expected;  // 0 .. 47, 0 .. 47, 0 .. 3
    for (Index k = 0; k < 100; ++k) expected.push_back(k % 48);
    CHECK(pull_ids(source, 4, 25) == expected);
  }
}

TEST_CASE("NpyFileSource mixes whole blocks in each buffer, from random places", "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {640}, 2);

  SECTION("four blocks of 32 rows per buffer of 128") {
    sae::NpyFileSource<float> source(paths, options(128, 32, 4));
    CHECK(source.buffer_capacity() == 128);
    const std::vector<Index> ids = pull_ids(source, 10, 64);  // one epoch: 5 buffers
    REQUIRE(is_epoch(ids, 0, 640));
    std::set<Index> all_blocks;
    for (std::size_t window = 0; window < 5; ++window) {
      CAPTURE(window);
      std::vector<int> per_block(20, 0);
      for (std::size_t k = window * 128; k < (window + 1) * 128; ++k) ++per_block[static_cast<std::size_t>(ids[k] / 32)];
      std::set<Index> blocks;
      for (Index b = 0; b < 20; ++b) {
        const int count = per_block[static_cast<std::size_t>(b)];
        CHECK((count == 0 || count == 32));  // whole blocks only
        if (count == 32) blocks.insert(b);
      }
      CHECK(blocks.size() == 4);
      if (window == 0) CHECK(blocks != std::set<Index>{0, 1, 2, 3});  // blocks come in a shuffled order
      all_blocks.insert(blocks.begin(), blocks.end());
    }
    CHECK(all_blocks.size() == 20);
  }
  SECTION("block_rows == buffer_rows shuffles one contiguous chunk at a time") {
    sae::NpyFileSource<float> source(paths, options(128, 128, 4));
    const std::vector<Index> ids = pull_ids(source, 5, 128);
    REQUIRE(is_epoch(ids, 0, 640));
    for (std::size_t window = 0; window < 5; ++window) {
      auto chunk = slice(ids, window * 128, 128);
      CHECK(chunk != iota_ids(chunk[0], 128));  // permuted within the chunk
      std::sort(chunk.begin(), chunk.end());
      CHECK(chunk[0] % 128 == 0);
      CHECK(chunk == iota_ids(chunk[0], 128));
    }
  }
}

TEST_CASE("NpyFileSource: the same seed gives the same stream, another seed another", "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {90, 61}, 3);
  sae::NpyFileSource<float> a(paths, options(40, 8, 21)), b(paths, options(40, 8, 21)), c(paths, options(40, 8, 22));
  const auto batches_a = pull_batches(a, 12, 32);
  CHECK(same_bits(batches_a, pull_batches(b, 12, 32)));
  CHECK_FALSE(same_bits(batches_a, pull_batches(c, 12, 32)));

  sae::Batch<float> batch;
  a.next_batch(batch, 32);
  const float* storage = batch.data();
  for (int i = 0; i < 12; ++i) a.next_batch(batch, 32);  // refills and epochs: no reallocation
  CHECK(batch.data() == storage);
  CHECK_THROWS_AS(a.next_batch(batch, -1), std::invalid_argument);
}

TEMPLATE_TEST_CASE("NpyFileSource state() restored into a fresh source continues the stream bit for bit", "[data]",
                   float, double) {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {100, 3, 57}, 2);  // 160 rows
  const bool shuffle = GENERATE(true, false);
  const Index buffer_rows = GENERATE(40, 7, 500);
  // Rows pulled before saving: none, mid-buffer, a whole buffer, an epoch's end,
  // mid second epoch, several epochs in.
  const Index before = GENERATE(0, 1, 17, 40, 159, 160, 161, 333, 480);
  CAPTURE(shuffle, buffer_rows, before);
  const auto settings = options(buffer_rows, buffer_rows > 8 ? buffer_rows / 4 : 0, 77, shuffle);

  sae::NpyFileSource<TestType> original(paths, settings);
  sae::Batch<TestType> scratch;
  original.next_batch(scratch, before);
  const sae::SourceState saved = original.state();
  CHECK(saved.words.size() == 19);
  CHECK(original.state() == saved);
  const auto expected = pull_batches(original, 8, 29);  // 232 rows: crosses buffers and an epoch

  sae::NpyFileSource<TestType> fresh(paths, settings);
  fresh.restore(saved);
  CHECK(fresh.rows_served() == static_cast<std::uint64_t>(before));
  CHECK(fresh.state() == saved);
  CHECK(same_bits(pull_batches(fresh, 8, 29), expected));
  CHECK(fresh.rows_served() == original.rows_served());

  auto other_settings = settings;
  other_settings.seed = 1;  // the generator state travels with the state
  sae::NpyFileSource<TestType> other_seed(paths, other_settings);
  other_seed.restore(saved);
  CHECK(same_bits(pull_batches(other_seed, 8, 29), expected));
}

TEST_CASE("NpyFileSource reads ahead exactly the blocks its next refill serves, and the stream does not change",
          "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {100, 3, 57}, 2);  // 160 rows; blocks span the files
  const Index n = 160;
  struct Setting {
    Index buffer_rows, block_rows;
    bool shuffle;
  };
  // Block sizes that divide 160 (or one buffer per epoch), so every buffer but
  // an epoch's last holds buffer_capacity() rows.
  for (const Setting setting : {Setting{40, 10, true}, Setting{40, 10, false}, Setting{64, 8, true},
                                Setting{7, 1, true}, Setting{500, 0, true}}) {
    CAPTURE(setting.buffer_rows, setting.block_rows, setting.shuffle);
    const auto settings = options(setting.buffer_rows, setting.block_rows, 31, setting.shuffle);
    sae::NpyFileSource<float> source(paths, settings);
    CHECK(source.read_ahead_enabled());
    CHECK(source.next_buffer_row_ranges().empty());  // nothing loaded yet
    const Index capacity = source.buffer_capacity();
    const Index buffers_per_epoch = (n + capacity - 1) / capacity;

    std::set<Index> planned;  // the rows the buffer being served was announced to hold
    bool have_plan = false;
    for (Index buffer = 0; buffer < 3 * buffers_per_epoch + 1; ++buffer) {  // three epochs and a buffer
      CAPTURE(buffer);
      const Index fill = buffer % buffers_per_epoch == buffers_per_epoch - 1 ? n - (buffers_per_epoch - 1) * capacity
                                                                             : capacity;
      std::vector<Index> ids = pull_ids(source, 1, 1);  // loads this buffer
      // The plan for the next buffer: whole blocks, disjoint, in range.
      std::set<Index> next;
      Index next_rows = 0;
      for (const auto& range : source.next_buffer_row_ranges()) {
        CHECK(0 <= range.first);
        CHECK(range.first < range.second);
        CHECK(range.second <= n);
        for (Index r = range.first; r < range.second; ++r) next.insert(r);
        next_rows += range.second - range.first;
      }
      CHECK(static_cast<Index>(next.size()) == next_rows);
      CHECK(source.read_ahead_rows() > 0);  // one block ahead from the first row
      CHECK(source.read_ahead_rows() <= next_rows);

      const std::vector<Index> first_half = pull_ids(source, 1, fill / 2 - 1 > 0 ? fill / 2 - 1 : 0);
      ids.insert(ids.end(), first_half.begin(), first_half.end());
      if (fill >= 2) CHECK(source.read_ahead_rows() == next_rows);  // all asked for by half-way
      const std::vector<Index> rest = pull_ids(source, 1, fill - static_cast<Index>(ids.size()));
      ids.insert(ids.end(), rest.begin(), rest.end());
      const std::set<Index> served(ids.begin(), ids.end());
      CHECK(served.size() == ids.size());
      if (have_plan) CHECK(served == planned);
      planned = next;
      have_plan = true;
    }
  }
}

TEST_CASE("NpyFileSource: read_ahead off serves the same bits; a restored source reads ahead the same blocks",
          "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {100, 3, 57}, 2);  // 160 rows: 4 buffers of 4 blocks per epoch
  auto settings = options(40, 10, 5);
  sae::NpyFileSource<float> ahead(paths, settings);
  settings.read_ahead = false;
  sae::NpyFileSource<float> not_ahead(paths, settings);
  CHECK_FALSE(not_ahead.read_ahead_enabled());
  CHECK(same_bits(pull_batches(ahead, 9, 23), pull_batches(not_ahead, 9, 23)));  // 207 rows: past an epoch
  CHECK(not_ahead.read_ahead_rows() == 0);
  CHECK(ahead.next_buffer_row_ranges() == not_ahead.next_buffer_row_ranges());
  CHECK(ahead.next_buffer_row_ranges().size() == 4);

  // Saved mid-buffer, with a buffer just used up (nothing loaded on restore),
  // in an epoch's last buffer (the next comes from the next epoch), and later.
  for (const Index before : {Index{7}, Index{40}, Index{150}, Index{207}}) {
    CAPTURE(before);
    sae::NpyFileSource<float> original(paths, options(40, 10, 5));
    sae::Batch<float> scratch;
    original.next_batch(scratch, before);
    sae::NpyFileSource<float> restored(paths, options(40, 10, 99));
    restored.next_batch(scratch, 50);  // a plan of its own, which restore must replace
    restored.restore(original.state());
    if (before == 40)
      CHECK(restored.next_buffer_row_ranges().empty());  // no buffer loaded: the refill plans
    else
      CHECK(restored.next_buffer_row_ranges() == original.next_buffer_row_ranges());
    for (int k = 0; k < 6; ++k) {
      CHECK(same_bits(pull_batches(restored, 1, 17), pull_batches(original, 1, 17)));
      CHECK(restored.next_buffer_row_ranges() == original.next_buffer_row_ranges());
    }
  }
}

TEST_CASE("NpyFileSource::restore refuses states that do not fit, and then changes nothing", "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto paths = write_id_files(dir, {50, 30}, 2);
  const auto settings = options(32, 8, 3);
  sae::NpyFileSource<float> source(paths, settings), twin(paths, settings);
  sae::Batch<float> scratch;
  source.next_batch(scratch, 45);  // mid second buffer
  twin.next_batch(scratch, 45);
  const sae::SourceState good = source.state();
  REQUIRE(good.words.size() == 19);

  const auto refused = [&](const sae::SourceState& state) {
    CHECK_THROWS_AS(source.restore(state), std::invalid_argument);
  };
  refused(sae::SourceState{});
  sae::SourceState shorter = good;
  shorter.words.pop_back();
  refused(shorter);
  refused(sae::InMemorySource<float>(id_rows<float>(0, 80, 2)).state());  // another kind of source
  refused(sae::NpyFileSource<float>(paths, options(64, 8, 3)).state());   // other buffer size
  refused(sae::NpyFileSource<float>(paths, options(32, 4, 3)).state());   // other block size
  refused(sae::NpyFileSource<float>(paths, options(32, 8, 3, false)).state());
  const auto swapped = write_id_files(dir, {30, 50}, 2, "swapped");  // same N and D, other files
  refused(sae::NpyFileSource<float>(swapped, settings).state());

  // Words 8, 9, 10: the buffer's first block, its block count, the position in it.
  // 80 rows in blocks of 8: 10 blocks, 4 per buffer.
  sae::SourceState tampered = good;
  tampered.words[10] = 33;  // past the buffer's 32 rows
  refused(tampered);
  tampered = good;
  tampered.words[9] = 3;  // a buffer at block 4 holds 4 blocks
  refused(tampered);
  tampered = good;
  tampered.words[8] = 11;  // past the 10 blocks
  refused(tampered);
  tampered = good;
  tampered.words[9] = 0;  // "no buffer", but a position in it
  refused(tampered);
  tampered = good;
  std::fill(tampered.words.end() - 4, tampered.words.end(), 0);
  refused(tampered);
  CHECK_THROWS_WITH(source.restore(sae::NpyFileSource<float>(paths, options(64, 8, 3)).state()),
                    Catch::Contains("sae::NpyFileSource::restore") && Catch::Contains("blocks per buffer"));

  CHECK(same_bits(pull_batches(source, 6, 19), pull_batches(twin, 6, 19)));
  CHECK(source.rows_served() == twin.rows_served());
}

TEST_CASE("NpyFileSource converts f2 and big-endian files", "[data]") {
  const TempDir dir("sae_test_data_source");
  const std::string half = dir.file("half.npy");
  const std::string big = dir.file("big.npy");
  write_raw_npy(half, dict("<f2", false, "(300, 3)"), half_id_data(0, 300, 3));
  write_raw_npy(big, dict(">f4", false, "(20, 3)"), big_endian_float_id_data(300, 20, 3));

  sae::NpyFileSource<float> as_float({half, big}, options(64, 16, 1));
  CHECK(as_float.num_rows() == 320);
  const std::vector<Index> ids = pull_ids(as_float, 10, 64);
  CHECK(is_epoch(ids, 0, 320));
  CHECK(is_epoch(ids, 320, 320));

  sae::NpyFileSource<double> as_double({half, big}, options(1000, 0, 0, false));
  CHECK(pull_ids(as_double, 2, 160) == iota_ids(0, 320));
}

TEST_CASE("NpyFileSource reads files written by NumPy", "[data]") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    WARN("skipped: /usr/bin/python3 has no numpy");
    return;
  }
  const TempDir dir("sae_test_data_source");
  const std::string f32 = dir.file("np32.npy"), f16 = dir.file("np16.npy"), f64 = dir.file("np64.npy");
  const std::string fortran = dir.file("npF.npy");
  // Row i = i + 0.25 * [0, 1, 2, 3]; ids continue from one file to the next.
  const std::string script =
      "import numpy as np, sys\n"
      "def ids(first, n): return np.arange(first, first + n)[:, None] + 0.25 * np.arange(4)[None, :]\n"
      "np.save(sys.argv[1], ids(0, 200).astype(np.float32))\n"
      "np.save(sys.argv[2], ids(200, 100).astype(np.float16))\n"
      "np.save(sys.argv[3], ids(300, 50).astype('>f8'))\n"
      "np.save(sys.argv[4], np.asfortranarray(ids(0, 5)))\n";
  const std::string script_path = dir.file("write.py");
  std::ofstream(script_path) << script;
  const std::string command =
      "/usr/bin/python3 '" + script_path + "' '" + f32 + "' '" + f16 + "' '" + f64 + "' '" + fortran + "'";
  REQUIRE(std::system(command.c_str()) == 0);

  sae::NpyFileSource<float> source({f32, f16, f64}, options(96, 12, 8));
  const std::vector<Index> ids = pull_ids(source, 14, 50);  // 700 rows: two epochs of 350
  CHECK(is_epoch(ids, 0, 350));
  CHECK(is_epoch(ids, 350, 350));
  CHECK_THROWS_WITH(sae::NpyFileSource<float>({f32, fortran}),
                    Catch::Contains(fortran) && Catch::Contains("Fortran"));
}

TEST_CASE("NpyFileSource refuses bad files and settings with messages naming the file", "[data]") {
  const TempDir dir("sae_test_data_source");
  const auto good = write_id_files(dir, {10}, 3, "good");
  const std::string& ok = good[0];

  const auto refused = [&](const std::vector<std::string>& paths, const std::string& culprit,
                           const std::string& problem) {
    CAPTURE(culprit, problem);
    CHECK_THROWS_AS(sae::NpyFileSource<float>(paths), std::runtime_error);
    CHECK_THROWS_WITH(sae::NpyFileSource<float>(paths), Catch::StartsWith(culprit) && Catch::Contains(problem));
  };

  const std::string missing = dir.file("missing.npy");
  refused({ok, missing}, missing, "cannot open");

  const std::string cube = dir.file("cube.npy");
  write_raw_npy(cube, dict("<f4", false, "(2, 2, 2)"), std::string(32, '\0'));
  refused({cube}, cube, "3 dimensions");

  const std::string vector = dir.file("vector.npy");
  write_raw_npy(vector, dict("<f4", false, "(4,)"), std::string(16, '\0'));
  refused({ok, vector}, vector, "1 dimensions");

  const std::string fortran = dir.file("fortran.npy");
  write_raw_npy(fortran, dict("<f4", true, "(2, 3)"), std::string(24, '\0'));
  refused({fortran}, fortran, "Fortran");
  CHECK_THROWS_WITH(sae::NpyFileSource<float>({fortran}), Catch::Contains("np.ascontiguousarray"));

  const auto wide = write_id_files(dir, {5}, 4, "wide");
  refused({ok, wide[0]}, wide[0], "4 columns");
  CHECK_THROWS_WITH(sae::NpyFileSource<float>({ok, wide[0]}), Catch::Contains(ok));  // the other file, too

  const std::string no_rows = dir.file("no_rows.npy");
  write_raw_npy(no_rows, dict("<f4", false, "(0, 3)"), "");
  refused({ok, no_rows}, no_rows, "zero rows");

  const std::string no_columns = dir.file("no_columns.npy");
  write_raw_npy(no_columns, dict("<f4", false, "(3, 0)"), "");
  refused({no_columns}, no_columns, "zero columns");

  const std::string garbage = dir.file("garbage.npy");
  std::ofstream(garbage) << "not a numpy file";
  refused({garbage}, garbage, "not a NumPy file");

  const std::string truncated = dir.file("truncated.npy");
  write_raw_npy(truncated, dict("<f4", false, "(4, 3)"), std::string(40, '\0'));  // 48 bytes expected
  refused({truncated}, truncated, "data is 40 bytes");

  const std::string empty = dir.file("empty.npy");
  std::ofstream(empty).flush();
  refused({empty}, empty, "empty");

  refused({ok, dir.file("")}, dir.file(""), "directory");

  CHECK_THROWS_AS(sae::NpyFileSource<float>(std::vector<std::string>{}), std::invalid_argument);
  CHECK_THROWS_AS(sae::NpyFileSource<float>(good, options(0, 0)), std::invalid_argument);
  CHECK_THROWS_AS(sae::NpyFileSource<float>(good, options(8, 9)), std::invalid_argument);
  CHECK_THROWS_AS(sae::NpyFileSource<float>(good, options(8, -1)), std::invalid_argument);
}
