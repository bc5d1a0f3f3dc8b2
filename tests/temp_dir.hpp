// tests/temp_dir.hpp: a scratch directory for tests that write files, and
// reading a file's bytes back.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace sae_test {

/// A fresh directory under the system's temp directory, removed with
/// everything in it when the object goes. Names are unique across processes
/// (pid, random) and within one (a counter), so ctest can run tests in parallel.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sae_test") {
    static std::atomic<unsigned> counter{0};
    std::random_device device;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(device()) + "_" +
             std::to_string(counter.fetch_add(1)));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  /// The names of the entries in the directory, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  /// Writes `bytes` to the file `name` and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string file_path = file(name);
    std::ofstream out(file_path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("TempDir: could not write " + file_path);
    return file_path;
  }

 private:
  std::filesystem::path path_;
};

/// The whole file's bytes; throws std::runtime_error if it cannot be read.
inline std::string read_bytes(const std::string& file_path) {
  std::ifstream in(file_path, std::ios::binary);
  if (!in) throw std::runtime_error("read_bytes: cannot open " + file_path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The same bytes as a vector (the in-memory readers' from_bytes take one).
inline std::vector<unsigned char> to_vector(const std::string& bytes) { return {bytes.begin(), bytes.end()}; }

}  // namespace sae_test
