// libFuzzer harness: the .npy parser and decoder on arbitrary bytes.
#include <cstdint>
#include <stdexcept>

#include <sae/io/npy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)sae::parse_npy_header(data, size, "fuzz.npy");
    (void)sae::load_npy_from_memory<double>(data, size, "fuzz.npy");
    (void)sae::load_npy_from_memory<float>(data, size, "fuzz.npy");
  } catch (const std::runtime_error&) {
    // Refused, with a message. Anything else is a bug.
  }
  return 0;
}
