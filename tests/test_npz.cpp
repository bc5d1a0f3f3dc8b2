// tests/test_npz.cpp: the .npz reader (sae/io/npz.hpp).
//
// Archives come from numpy (the Gemma Scope fixture, and numpy.savez /
// savez_compressed run here when /usr/bin/python3 has numpy) or are assembled
// byte by byte below from the zip specification (APPNOTE.TXT), with a CRC-32
// computed bit by bit, independently of the library's table-driven one.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef SAE_WITH_ZLIB
#include <zlib.h>
#endif

#include <catch2/catch.hpp>

#include <sae/io.hpp>

#include "support.hpp"
#include "temp_dir.hpp"

using sae::NpzFile;
using sae_test::read_bytes;
using sae_test::TempDir;
using sae_test::to_vector;

namespace {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void put(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

void patch(std::string& bytes, std::size_t offset, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[offset + static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint32_t bitwise_crc32(const std::string& data) {
  std::uint32_t crc = 0xffffffffu;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string floats_le(std::initializer_list<float> values) {
  std::string out;
  for (const float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    put(out, bits, 4);
  }
  return out;
}

/// A version 1.0 .npy file: `dict` padded with spaces and '\n' to 64 bytes, then `data`.
std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  put(out, header.size(), 2);
  return out + header + data;
}

struct Member {
  Member(std::string name_, std::string data_, std::string stored_ = "", int method_ = 0)
      : name(std::move(name_)), data(std::move(data_)), stored(std::move(stored_)), method(method_) {}
  std::string name;
  std::string data;             ///< the member's bytes (uncompressed)
  std::string stored;           ///< what goes in the archive; empty: `data` itself
  int method = 0;
  std::uint16_t flags = 0;
};

struct Zip {
  std::string bytes;
  std::vector<std::size_t> local;     ///< offset of each local header
  std::vector<std::size_t> central;   ///< offset of each central directory entry
  std::size_t directory = 0;          ///< offset of the central directory
  std::size_t end = 0;                ///< offset of the end-of-central-directory record
};

/// A zip archive as Python's zipfile writes it. With `zip64`, every 32-bit
/// size and offset in the directory is 0xffffffff with the value in a ZIP64
/// extra field, and a ZIP64 end record and locator precede the end record.
Zip build_zip(const std::vector<Member>& members, bool zip64 = false, const std::string& comment = "") {
  Zip zip;
  std::string& out = zip.bytes;
  for (const Member& m : members) {
    const std::string& stored = m.stored.empty() && m.method == 0 ? m.data : m.stored;
    zip.local.push_back(out.size());
    put(out, 0x04034b50, 4);
    put(out, zip64 ? 45 : 20, 2);  // version needed
    put(out, m.flags, 2);
    put(out, static_cast<std::uint64_t>(m.method), 2);
    put(out, 0, 4);  // time, date
    put(out, bitwise_crc32(m.data), 4);
    put(out, zip64 ? 0xffffffffu : stored.size(), 4);
    put(out, zip64 ? 0xffffffffu : m.data.size(), 4);
    put(out, m.name.size(), 2);
    put(out, zip64 ? 20 : 0, 2);
    out += m.name;
    if (zip64) {  // numpy's force_zip64 local headers
      put(out, 1, 2);
      put(out, 16, 2);
      put(out, m.data.size(), 8);
      put(out, stored.size(), 8);
    }
    out += stored;
  }
  zip.directory = out.size();
  for (std::size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    const std::string& stored = m.stored.empty() && m.method == 0 ? m.data : m.stored;
    zip.central.push_back(out.size());
    put(out, 0x02014b50, 4);
    put(out, 0x0314, 2);  // made by: unix, 2.0
    put(out, zip64 ? 45 : 20, 2);
    put(out, m.flags, 2);
    put(out, static_cast<std::uint64_t>(m.method), 2);
    put(out, 0, 4);
    put(out, bitwise_crc32(m.data), 4);
    put(out, zip64 ? 0xffffffffu : stored.size(), 4);
    put(out, zip64 ? 0xffffffffu : m.data.size(), 4);
    put(out, m.name.size(), 2);
    put(out, zip64 ? 28 : 0, 2);
    put(out, 0, 2);  // comment
    put(out, 0, 2);  // disk
    put(out, 0, 2);  // internal attributes
    put(out, 0, 4);  // external attributes
    put(out, zip64 ? 0xffffffffu : zip.local[i], 4);
    out += m.name;
    if (zip64) {
      put(out, 1, 2);
      put(out, 24, 2);
      put(out, m.data.size(), 8);
      put(out, stored.size(), 8);
      put(out, zip.local[i], 8);
    }
  }
  const std::size_t directory_size = out.size() - zip.directory;
  if (zip64) {
    const std::size_t zip64_end = out.size();
    put(out, 0x06064b50, 4);
    put(out, 44, 8);  // size of the rest of the record
    put(out, 45, 2);
    put(out, 45, 2);
    put(out, 0, 4);
    put(out, 0, 4);
    put(out, members.size(), 8);
    put(out, members.size(), 8);
    put(out, directory_size, 8);
    put(out, zip.directory, 8);
    put(out, 0x07064b50, 4);  // locator
    put(out, 0, 4);
    put(out, zip64_end, 8);
    put(out, 1, 4);
  }
  zip.end = out.size();
  put(out, 0x06054b50, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, zip64 ? 0xffff : members.size(), 2);
  put(out, zip64 ? 0xffff : members.size(), 2);
  put(out, zip64 ? 0xffffffffu : directory_size, 4);
  put(out, zip64 ? 0xffffffffu : zip.directory, 4);
  put(out, comment.size(), 2);
  out += comment;
  return zip;
}

/// Two small arrays: "a", float32 (2, 2) = [[1, 2], [3, 4]]; "b", float32 (3,) = [0.5, -1, 8].
std::vector<Member> two_members() {
  return {{"a.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", floats_le({1, 2, 3, 4}))},
          {"b.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floats_le({0.5f, -1, 8}))}};
}

void check_two_members(const NpzFile& f) {
  CHECK(f.names() == std::vector<std::string>{"a", "b"});
  const sae::Batch<float> a = f.read<float>("a");
  REQUIRE((a.rows() == 2 && a.cols() == 2));
  CHECK(a(1, 0) == 3.0f);
  const sae::Batch<double> b = f.read<double>("b.npy");
  REQUIRE((b.rows() == 3 && b.cols() == 1));
  CHECK(b(2, 0) == 8.0);
}

/// Opening `bytes` from a file and from memory must fail with a message that
/// starts with the path (or name) and contains `phrase`.
void check_refused(const std::string& bytes, const std::string& phrase) {
  CAPTURE(phrase);
  const TempDir dir("sae_test_npz");
  const std::string path = dir.write("bad.npz", bytes);
  SAE_CHECK_THROWS(NpzFile{path}, std::runtime_error, Catch::StartsWith(path + ": ") && Catch::Contains(phrase));
  SAE_CHECK_THROWS(NpzFile::from_bytes(to_vector(bytes), "in memory"), std::runtime_error,
                   Catch::StartsWith("in memory: ") && Catch::Contains(phrase));
}

/// The archive opens, but reading array `name` fails so.
void check_read_refused(const std::string& bytes, const std::string& name, const std::string& phrase) {
  CAPTURE(phrase);
  const NpzFile f = NpzFile::from_bytes(to_vector(bytes), "archive.npz");
  SAE_CHECK_THROWS(f.read<float>(name), std::runtime_error,
                   Catch::StartsWith("archive.npz: ") && Catch::Contains(phrase));
}

bool python_has_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

#ifdef SAE_WITH_ZLIB
/// Raw deflate (no zlib header), as zip stores it.
std::string raw_deflate(const std::string& data) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(&out[0]);
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}
#endif

}  // namespace

// ---------------------------------------------------------------------------
// numpy's archives

TEST_CASE("npz: the Gemma Scope fixture reproduces PyTorch's JumpReLU codes", "[npz]") {
  const NpzFile f(sae_test::data_path("interop/gemmascope-jumprelu-npz/params.npz"));
  CHECK(f.names() == std::vector<std::string>{"W_enc", "W_dec", "b_enc", "b_dec", "threshold"});
  CHECK(f.has("W_enc"));
  CHECK(f.has("W_enc.npy"));
  CHECK_FALSE(f.has("W"));
  CHECK(f.header("W_enc").fortran_order);  // numpy saved it as a transposed view
  CHECK(f.members().at(0).method == 0);

  const MatrixD W_enc = f.read<double>("W_enc");
  const MatrixD W_dec = f.read<double>("W_dec");
  const Eigen::VectorXd b_enc = f.read<double>("b_enc");
  const Eigen::VectorXd b_dec = f.read<double>("b_dec");
  const Eigen::VectorXd threshold = f.read<double>("threshold");
  REQUIRE((W_enc.rows() == 16 && W_enc.cols() == 64));
  REQUIRE((W_dec.rows() == 64 && W_dec.cols() == 16));

  const MatrixD x = sae::load_npy<double>(sae_test::data_path("interop/gemmascope-jumprelu-npz/x.npy"));
  MatrixD pre = x * W_enc;
  pre.rowwise() += b_enc.transpose();
  MatrixD codes = pre;
  for (Eigen::Index r = 0; r < pre.rows(); ++r)
    for (Eigen::Index c = 0; c < pre.cols(); ++c) codes(r, c) = pre(r, c) > threshold(c) ? pre(r, c) : 0.0;
  MatrixD recon = codes * W_dec;
  recon.rowwise() += b_dec.transpose();
  CHECK(codes.cwiseAbs().maxCoeff() > 0);
  CHECK(sae_test::relative_error(
            codes, sae::load_npy<double>(sae_test::data_path("interop/gemmascope-jumprelu-npz/expected_codes.npy"))) <
        1e-12);
  CHECK(sae_test::relative_error(
            recon, sae::load_npy<double>(sae_test::data_path("interop/gemmascope-jumprelu-npz/expected_recon.npy"))) <
        1e-12);
}

TEST_CASE("npz: archives from numpy.savez and numpy.savez_compressed", "[npz]") {
  if (!python_has_numpy()) {
    WARN("skipped: /usr/bin/python3 has no numpy");
    return;
  }
  const TempDir dir("sae_test_npz");
  const std::string plain = dir.file("plain.npz"), compressed = dir.file("compressed.npz");
  const std::string script = R"PY(
import sys
import numpy as np
def f(r, c): return np.fromfunction(lambda i, j: ((i * 7) % 13) - 6 + 0.25 * j, (r, c))
arrays = dict(
    f4=f(3, 4).astype(np.float32),
    f8_fortran=np.asfortranarray(f(5, 2)),
    f2=f(7, 1)[:, 0].astype(np.float16),
    i4=f(2, 2).astype(np.int32),
    big_endian=f(2, 3).astype('>f8'),
    scalar=np.float64(2.5),
    large=f(300, 200),
)
np.savez(sys.argv[1], **arrays)
np.savez_compressed(sys.argv[2], **arrays)
)PY";
  const std::string script_path = dir.write("write.py", script);
  REQUIRE(std::system(("/usr/bin/python3 '" + script_path + "' '" + plain + "' '" + compressed + "'").c_str()) == 0);
  const auto formula = [](Eigen::Index i, Eigen::Index j) { return static_cast<double>((i * 7) % 13) - 6 + 0.25 * j; };
  const auto check_matrix = [&](const MatrixD& m, Eigen::Index rows, Eigen::Index cols, bool truncate) {
    REQUIRE((m.rows() == rows && m.cols() == cols));
    for (Eigen::Index i = 0; i < rows; ++i)
      for (Eigen::Index j = 0; j < cols; ++j) CHECK(m(i, j) == (truncate ? std::trunc(formula(i, j)) : formula(i, j)));
  };

  const NpzFile plain_file(plain);
  CHECK(plain_file.names() == std::vector<std::string>{"f4", "f8_fortran", "f2", "i4", "big_endian", "scalar", "large"});
  const NpzFile compressed_file(compressed);
  CHECK(compressed_file.members().at(0).method == 8);
#ifndef SAE_WITH_ZLIB
  SAE_CHECK_THROWS(compressed_file.read<float>("f4"), std::runtime_error,
                   Catch::StartsWith(compressed + ": ") && Catch::Contains("is deflated (numpy.savez_compressed)"));
  const std::vector<const NpzFile*> files{&plain_file};
#else
  const std::vector<const NpzFile*> files{&plain_file, &compressed_file};
#endif
  for (const NpzFile* file : files) {
    CAPTURE(file->path());
    check_matrix(file->read<double>("f4"), 3, 4, false);
    check_matrix(file->read<double>("f8_fortran"), 5, 2, false);
    check_matrix(file->read<double>("f2"), 7, 1, false);
    check_matrix(file->read<double>("i4"), 2, 2, true);
    check_matrix(file->read<double>("big_endian"), 2, 3, false);
    check_matrix(file->read<double>("large"), 300, 200, false);
    CHECK(file->read<float>("scalar")(0, 0) == 2.5f);
    CHECK(file->header("large").shape == std::vector<std::uint64_t>{300, 200});
    CHECK(file->member_bytes("f4") == to_vector(read_bytes(plain).substr(
                                          static_cast<std::size_t>(plain_file.members()[0].data_offset),
                                          static_cast<std::size_t>(plain_file.members()[0].uncompressed_size))));
  }
}

// ---------------------------------------------------------------------------
// Hand-built archives

TEST_CASE("npz: hand-built stored archives, plain, ZIP64 and with a comment", "[npz]") {
  const TempDir dir("sae_test_npz");
  check_two_members(NpzFile(dir.write("plain.npz", build_zip(two_members()).bytes)));
  check_two_members(NpzFile(dir.write("zip64.npz", build_zip(two_members(), true).bytes)));
  check_two_members(NpzFile::from_bytes(to_vector(build_zip(two_members(), false, "a comment").bytes), "comment"));
  check_two_members(NpzFile::from_bytes(to_vector(build_zip(two_members(), true, "PK\x05\x06" + std::string(30, 'x')).bytes), "c"));
  CHECK(NpzFile::from_bytes(to_vector(build_zip({}).bytes), "empty").names().empty());

  // Members need not end in .npy; their names are kept as they are.
  const auto odd = build_zip({{"raw", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                                          std::string("\0\0\0\0\0\0\xf0\x3f", 8))}});
  const NpzFile f = NpzFile::from_bytes(to_vector(odd.bytes), "odd");
  CHECK(f.names() == std::vector<std::string>{"raw"});
  CHECK(f.read<double>("raw")(0, 0) == 1.0);
}

TEST_CASE("npz: malformed archives are refused with the problem named", "[npz]") {
  const Zip good = build_zip(two_members());
  const std::size_t entry = good.central[0];
  const std::size_t local = good.local[0];

  check_refused("", "shorter than a zip end record");
  check_refused(std::string(100, 'x'), "no end-of-central-directory record");
  check_refused(good.bytes.substr(0, good.bytes.size() - 1), "no end-of-central-directory record");
  check_refused(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", floats_le({1, 2})),
                "this is a single .npy file");

  std::string bytes = good.bytes;
  patch(bytes, good.end + 16, good.directory + 1, 4);
  check_refused(bytes, "does not end where the end record starts");
  bytes = good.bytes;
  patch(bytes, good.end + 16, 0xfffffff0u, 4);
  check_refused(bytes, "does not end where the end record starts");
  bytes = good.bytes;
  patch(bytes, good.end + 8, 5, 2);
  patch(bytes, good.end + 10, 5, 2);
  check_refused(bytes, "claims 5 members, more than a");
  bytes = good.bytes;
  patch(bytes, good.end + 8, 1, 2);
  patch(bytes, good.end + 10, 1, 2);
  check_refused(bytes, "bytes after its 1 entries");
  bytes = good.bytes;
  patch(bytes, good.end + 4, 1, 2);
  check_refused(bytes, "spans several disks");
  bytes = good.bytes;
  patch(bytes, good.end + 8, 1, 2);
  check_refused(bytes, "spans several disks");

  bytes = good.bytes;
  patch(bytes, entry, 0x02014b51, 4);
  check_refused(bytes, "central directory entry 0 (at offset " + std::to_string(entry) + ") has a bad signature");
  bytes = good.bytes;
  patch(bytes, entry + 28, 200, 2);  // name length past the directory
  check_refused(bytes, "central directory entry 0 runs past the directory's end");
  bytes = good.bytes;
  patch(bytes, entry + 8, 1, 2);
  check_refused(bytes, "member 'a.npy' is encrypted");
  bytes = good.bytes;
  patch(bytes, entry + 10, 12, 2);
  check_refused(bytes, "member 'a.npy' uses compression method 12");
  bytes = good.bytes;
  patch(bytes, entry + 20, 10, 4);
  check_refused(bytes, "member 'a.npy' is stored, but its sizes differ");
  bytes = good.bytes;
  patch(bytes, entry + 34, 2, 2);
  check_refused(bytes, "member 'a.npy' is on another disk");
  bytes = good.bytes;
  patch(bytes, entry + 42, good.directory, 4);
  check_refused(bytes, "its local header offset " + std::to_string(good.directory) + " is not before the directory");
  bytes = good.bytes;
  patch(bytes, entry + 42, 1, 4);
  check_refused(bytes, "member 'a.npy': no local header at offset 1");
  bytes = good.bytes;
  patch(bytes, local + 30, 'A', 1);
  check_refused(bytes, "member 'a.npy': the local header names it 'A.npy'");
  bytes = good.bytes;
  patch(bytes, local + 28, 0xffff, 2);
  check_refused(bytes, "its local header runs into the directory");
  bytes = good.bytes;
  patch(bytes, good.central[1] + 20, 0x10000, 4);  // b.npy's sizes, past the directory
  patch(bytes, good.central[1] + 24, 0x10000, 4);
  check_refused(bytes, "member 'b.npy': its 65536 bytes at offset");

  // Two members of one name.
  std::vector<Member> twice = two_members();
  twice[1].name = "a.npy";
  check_refused(build_zip(twice).bytes, "the archive has two members named 'a.npy'");

  // Deflate's expansion is bounded: a directory claiming more is refused before any allocation.
  std::vector<Member> bomb = {{"a.npy", "x", "y", 8}};
  Zip bomb_zip = build_zip(bomb);
  patch(bomb_zip.bytes, bomb_zip.central[0] + 24, 0x7fffffff, 4);
  check_refused(bomb_zip.bytes, "claims to inflate 1 bytes to 2147483647, more than deflate can expand");

  // ZIP64 structures.
  const Zip good64 = build_zip(two_members(), true);
  bytes = good64.bytes;
  patch(bytes, good64.end - 20 + 8, good64.end, 8);  // the locator points past its own position
  check_refused(bytes, "the ZIP64 end record's offset");
  bytes = good64.bytes;
  patch(bytes, good64.end - 20 - 56, 0x06064b51, 4);
  check_refused(bytes, "no ZIP64 end record at offset");
  bytes = good64.bytes;
  patch(bytes, good64.central[0] + 46 + 5 + 2, 40, 2);  // longer than the whole extra area
  check_refused(bytes, "member 'a.npy': an extra field runs past the entry");
  bytes = good64.bytes;
  patch(bytes, good64.central[0] + 46 + 5 + 2, 16, 2);  // room for two of its three values
  check_refused(bytes, "member 'a.npy': its ZIP64 extra field is too short");
}

TEST_CASE("npz: damaged members are refused when read", "[npz]") {
  const Zip good = build_zip(two_members());
  std::string bytes = good.bytes;
  bytes[good.local[0] + 30 + 5 + 70] ^= 0x01;  // a bit of a's data
  check_read_refused(bytes, "a", "member 'a.npy' fails its CRC-32 check (the directory says 0x");
  // b still reads.
  CHECK(NpzFile::from_bytes(to_vector(bytes), "x").read<float>("b")(1, 0) == -1.0f);

  // A member that is not an .npy: the message names the archive and the member.
  const Zip junk = build_zip({{"junk.npy", "not numpy"}});
  check_read_refused(junk.bytes, "junk", "member 'junk.npy': not a NumPy file (bad magic)");
  const Zip short_data = build_zip({{"s.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                                                  floats_le({1, 2}))}});
  check_read_refused(short_data.bytes, "s", "member 's.npy': data is 8 bytes, expected 12");
  check_read_refused(good.bytes, "c", "no array named 'c' (the archive has 'a', 'b')");
  check_read_refused(build_zip({}).bytes, "c", "no array named 'c' (the archive is empty)");
}

TEST_CASE("npz: deflated members", "[npz]") {
  const std::string a = two_members()[0].data;
#ifndef SAE_WITH_ZLIB
  check_read_refused(build_zip({{"a.npy", a, "\x03\x00", 8}}).bytes, "a", "is deflated (numpy.savez_compressed)");
#else
  const std::string deflated = raw_deflate(a);
  const sae::Batch<float> m = NpzFile::from_bytes(to_vector(build_zip({{"a.npy", a, deflated, 8}}).bytes), "d")
                                  .read<float>("a");
  CHECK(m(1, 1) == 4.0f);
  CHECK(NpzFile::from_bytes(to_vector(build_zip({{"a.npy", a, deflated, 8}}, true).bytes), "d64").read<float>("a") == m);

  // The directory's size must be the inflated size exactly.
  Zip zip = build_zip({{"a.npy", a, deflated, 8}});
  patch(zip.bytes, zip.central[0] + 24, a.size() + 1, 4);
  check_read_refused(zip.bytes, "a", "inflates to " + std::to_string(a.size()) + " bytes, but the directory says " +
                                         std::to_string(a.size() + 1));
  zip = build_zip({{"a.npy", a, deflated, 8}});
  patch(zip.bytes, zip.central[0] + 24, a.size() - 1, 4);
  check_read_refused(zip.bytes, "a", "inflates to more than the " + std::to_string(a.size() - 1) + " bytes");
  // Cut short, or corrupt.
  check_read_refused(build_zip({{"a.npy", a, deflated.substr(0, deflated.size() / 2), 8}}).bytes, "a",
                     "deflate data ends early");
  check_read_refused(build_zip({{"a.npy", a, std::string("\xff\xff\xff\xff", 4), 8}}).bytes, "a",
                     "has corrupt deflate data");
  // Inflates fine, but to other bytes than the CRC-32 says.
  std::vector<Member> wrong = {{"a.npy", a, raw_deflate(two_members()[1].data), 8}};
  Zip wrong_zip = build_zip(wrong);
  patch(wrong_zip.bytes, wrong_zip.central[0] + 24, two_members()[1].data.size(), 4);
  check_read_refused(wrong_zip.bytes, "a", "fails its CRC-32 check");
#endif
}
