// A user's program: write a safetensors file, read it back, exit 0.
#include <sae/io.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

int main(int, char** argv) {
  sae::Batch<float> W(4, 8);
  for (sae::Index i = 0; i < W.size(); ++i) W.data()[i] = static_cast<float>(i) / 8.0f;
  const sae::Vector<float> b = sae::Vector<float>::Constant(4, 0.5f);
  const std::string path = std::string(argv[0]) + ".safetensors";  // next to this build's app
  sae::SafetensorsWriter().add("W_enc", W).add("b_dec", b).set_metadata("producer", "sae consumer test").write(path);
  const sae::SafetensorsFile file(path);
  if (file.read<float>("W_enc") != W) return 1;
  if (file.info("b_dec").shape != std::vector<std::uint64_t>{4}) return 1;
  if (file.metadata().at("producer") != "sae consumer test") return 1;
  std::remove(path.c_str());
  std::printf("sae %s io consumer: ok\n", SAE_VERSION_STRING);
  return 0;
}
