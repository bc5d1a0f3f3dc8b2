// libFuzzer harness: CheckpointReader on arbitrary bytes, then every entry read.
//
// The size field and CRC-32 are patched to match first (when the input is long
// enough to have them), so the fuzzer explores the entry table rather than
// stopping at the checksum; those two checks are trivial and unit-tested.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <sae/io/checkpoint.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<unsigned char> bytes(data, data + size);
  if (bytes.size() >= sae::detail::checkpoint_header_size + sae::detail::checkpoint_trailer_size) {
    sae::detail::store_u64_le(bytes.data() + 16, bytes.size());
    const std::size_t body = bytes.size() - sae::detail::checkpoint_trailer_size;
    sae::detail::store_u32_le(bytes.data() + body, sae::detail::crc32(bytes.data(), body));
  }
  try {
    const sae::CheckpointReader reader = sae::CheckpointReader::from_bytes(std::move(bytes), "fuzz.sae");
    for (const sae::CheckpointEntryInfo& entry : reader.entries()) {
      switch (entry.kind) {
        case sae::CheckpointKind::Tensor: (void)reader.matrix<double>(entry.name); break;
        case sae::CheckpointKind::U64Array: (void)reader.u64s(entry.name); break;
        case sae::CheckpointKind::Double: (void)reader.scalar(entry.name); break;
        case sae::CheckpointKind::String: (void)reader.string(entry.name); break;
      }
    }
  } catch (const std::runtime_error&) {
    // Refused, with a message. Anything else is a bug.
  }
  return 0;
}
