// tests/test_mapped_file.cpp: the read-only whole-file view shared by the
// readers (sae/io/mapped_file.hpp) and FileBytes built on it (sae/io/file_bytes.hpp).
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <sae/io/file_bytes.hpp>
#include <sae/io/mapped_file.hpp>

#include "temp_dir.hpp"

using sae_test::TempDir;

TEST_CASE("detail::MappedFile maps a file read-only and moves ownership of the map", "[mapped_file]") {
  const TempDir dir("sae_test_mapped_file");
  const std::string path = dir.file("bytes.bin");
  std::ofstream(path, std::ios::binary) << "0123456789";

  sae::detail::MappedFile a(path);
  REQUIRE(a.size() == 10);
  CHECK(std::string(reinterpret_cast<const char*>(a.data()), a.size()) == "0123456789");
  a.will_need(3, 4);
  a.dont_need(0, 10);  // dropped pages read again from the file
  CHECK(a.data()[9] == '9');

  sae::detail::MappedFile b(std::move(a));
  CHECK(a.data() == nullptr);
  CHECK(b.size() == 10);
  CHECK(b.path() == path);
  sae::detail::MappedFile c;
  c = std::move(b);
  CHECK(c.data()[0] == '0');
  c = sae::detail::MappedFile(path);  // replaces (and unmaps) the old map
  CHECK(c.data()[5] == '5');

  const std::string empty = dir.file("empty.bin");
  std::ofstream(empty).flush();
  CHECK(sae::detail::MappedFile(empty).size() == 0);

  CHECK_THROWS_WITH(sae::detail::MappedFile(dir.file("nope")),
                    Catch::StartsWith(dir.file("nope")) && Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(sae::detail::MappedFile(dir.path().string()),
                    Catch::StartsWith(dir.path().string()) && Catch::Contains("is a directory"));
}

TEST_CASE("detail::FileBytes holds a mapped file or bytes handed to it", "[mapped_file]") {
  const TempDir dir("sae_test_mapped_file");
  const std::string path = dir.file("bytes.bin");
  std::ofstream(path, std::ios::binary) << "abc";

  sae::detail::FileBytes mapped = sae::detail::FileBytes::map(path);
  const sae::detail::FileBytes moved = std::move(mapped);
  CHECK(std::string(reinterpret_cast<const char*>(moved.data()), moved.size()) == "abc");
  CHECK(moved.path() == path);

  const sae::detail::FileBytes owned = sae::detail::FileBytes::own({'x', 'y'}, "in memory");
  CHECK(std::string(reinterpret_cast<const char*>(owned.data()), owned.size()) == "xy");
  CHECK(owned.path() == "in memory");
}
