// sae/report/npy_rows.hpp: random access to the rows of a 2-D .npy file.
//
//   sae::NpyRows acts("acts.npy");                 // memory-mapped, nothing read yet
//   sae::Batch<float> chunk;
//   acts.read(4096, 1024, chunk);                  // rows [4096, 5120) as float
//   acts.read_rows({17, 9000, 3}, chunk);          // any rows, in the order given
//
// The report reads its activations twice: once from start to end in chunks
// (the statistics pass) and then a few hundred scattered rows (the contexts
// around each card's top rows, re-encoded to shade every token). Both go
// through this one reader. It maps the file read-only and drops the pages it
// has copied out (MADV_DONTNEED), so resident memory stays one chunk however
// large the file is. (Where there is no mmap, MappedFile reads the whole file
// into memory instead: the same results, without that bound.) Integer tables
// (the token table) read through it too: read into a Batch<std::int64_t>.
//
// requires: a valid .npy file holding a 2-D, C-order array with at least one
//           row and one column, not modified while the reader exists
//           (std::runtime_error naming the file otherwise).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/types.hpp"
#include "../io/mapped_file.hpp"
#include "../io/npy.hpp"

namespace sae {

class NpyRows {
 public:
  explicit NpyRows(const std::string& path) : file_(path) {
    header_ = parse_npy_header(file_.data(), file_.size(), path);
    if (header_.shape.size() != 2)
      detail::npy_fail(path, "array has " + std::to_string(header_.shape.size()) + " dimensions, shape " +
                                 detail::format_shape(header_.shape) + "; expected a 2-D array");
    if (header_.fortran_order)
      detail::npy_fail(path, "is stored in Fortran (column-major) order; its rows must be contiguous. Convert it "
                             "once to C order, e.g. np.save(new_path, np.ascontiguousarray(np.load(path)))");
    rows_ = static_cast<Index>(header_.shape[0]);  // the parser keeps dimensions within Index
    cols_ = static_cast<Index>(header_.shape[1]);
    if (rows_ == 0 || cols_ == 0)
      detail::npy_fail(path, "is empty, shape " + detail::format_shape(header_.shape));
  }

  const std::string& path() const { return file_.path(); }
  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  const NpyHeader& header() const { return header_; }

  /// Rows [begin, begin + count) into `out` (resized to count x cols() only
  /// when its shape differs). requires: 0 <= begin, begin + count <= rows().
  template <typename Scalar>
  void read(Index begin, Index count, Batch<Scalar>& out) const {
    if (begin < 0 || count < 0 || begin > rows_ - count)
      throw std::out_of_range(path() + ": rows [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                              ") are outside the file's " + std::to_string(rows_) + " rows");
    if (out.rows() != count || out.cols() != cols_) out.resize(count, cols_);
    copy_rows(begin, count, out.data());
  }

  /// The rows listed, in that order (repeats allowed), into `out`.
  template <typename Scalar>
  void read_rows(const std::vector<Index>& which, Batch<Scalar>& out) const {
    for (const Index r : which)
      if (r < 0 || r >= rows_)
        throw std::out_of_range(path() + ": row " + std::to_string(r) + " is outside the file's " +
                                std::to_string(rows_) + " rows");
    if (out.rows() != static_cast<Index>(which.size()) || out.cols() != cols_)
      out.resize(static_cast<Index>(which.size()), cols_);
    for (std::size_t i = 0; i < which.size(); ++i) copy_rows(which[i], 1, out.data() + static_cast<Index>(i) * cols_);
  }

 private:
  template <typename Scalar>
  void copy_rows(Index begin, Index count, Scalar* to) const {
    if (count == 0) return;
    const auto row_bytes = static_cast<std::size_t>(cols_) * static_cast<std::size_t>(header_.item_size);
    const std::size_t offset = static_cast<std::size_t>(header_.data_offset) + static_cast<std::size_t>(begin) * row_bytes;
    const std::size_t length = static_cast<std::size_t>(count) * row_bytes;
    file_.will_need(offset, length);
    detail::decode_npy_data(header_, file_.data() + offset, count, cols_, to, path());
    file_.dont_need(offset, length);
  }

  detail::MappedFile file_;
  NpyHeader header_;
  Index rows_ = 0;
  Index cols_ = 0;
};

}  // namespace sae
