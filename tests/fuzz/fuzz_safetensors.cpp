// libFuzzer harness: SafetensorsFile on arbitrary bytes. Whatever it accepts
// must read without error, and must survive SafetensorsWriter and a re-read
// unchanged (names, metadata, shapes, every F32/F64 bit).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <sae/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<unsigned char> bytes(data, data + size);
  try {
    const sae::SafetensorsFile file = sae::SafetensorsFile::from_bytes(std::move(bytes), "fuzz.safetensors");
    sae::SafetensorsWriter writer;
    for (const auto& [key, value] : file.metadata()) writer.set_metadata(key, value);
    for (const std::string& name : file.names()) {
      const sae::SafetensorsTensorInfo& info = file.info(name);
      if (info.dtype != sae::SafetensorsDtype::F32 && info.dtype != sae::SafetensorsDtype::F64) {
        try {
          (void)file.read_flat<double>(name);  // other dtypes: converted, or refused with runtime_error
        } catch (const std::runtime_error&) {
        }
        continue;
      }
      const sae::Vector<double> values = file.read_flat<double>(name);
      if (info.shape.size() <= 2) (void)file.read<float>(name);
      writer.add(name, values, info.shape, info.dtype);
    }
    const sae::SafetensorsFile again = sae::SafetensorsFile::from_bytes(writer.to_bytes(), "rewritten");
    if (again.metadata() != file.metadata()) std::abort();
    for (const std::string& name : again.names()) {
      if (again.info(name).shape != file.info(name).shape || again.info(name).dtype != file.info(name).dtype) std::abort();
      const sae::Vector<double> a = again.read_flat<double>(name), b = file.read_flat<double>(name);
      if (a.size() != b.size() || (a.size() > 0 && std::memcmp(a.data(), b.data(), sizeof(double) * a.size()) != 0)) {
        std::abort();
      }
    }
  } catch (const std::runtime_error&) {
    // Refused, with a message: the expected outcome for most inputs. Anything
    // else (another exception type, a crash, a sanitizer report) is a bug.
  }
  return 0;
}
