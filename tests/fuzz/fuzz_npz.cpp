// libFuzzer harness: NpzFile on arbitrary bytes, then every member read.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <sae/io/npz.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const sae::NpzFile file = sae::NpzFile::from_bytes(std::vector<unsigned char>(data, data + size), "fuzz.npz");
    for (const std::string& name : file.names()) {
      try {
        (void)file.read<double>(name);
      } catch (const std::runtime_error&) {
      }
    }
  } catch (const std::runtime_error&) {
    // Refused, with a message. Anything else (another exception type, a
    // crash, a sanitizer report) is a bug.
  }
  return 0;
}
