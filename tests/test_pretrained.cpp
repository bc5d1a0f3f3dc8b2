// tests/test_pretrained.cpp: loading the SAEs others publish, saving ours in
// SAELens' layout, steering and top activating rows.
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <catch2/catch.hpp>
#include <sae/io.hpp>
#include <sae/sae.hpp>

#include "support.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using sae::Dynamic;
using sae::Index;

namespace {

std::string fixture(const std::string& name) { return sae_test::data_path("interop/" + name); }

// Copies a fixture folder into `dir` so a test can damage it.
std::string copy_fixture(const sae_test::TempDir& dir, const std::string& name) {
  const fs::path target = dir.path() / name;
  fs::copy(fixture(name), target, fs::copy_options::recursive);
  return target.string();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = read_text(path);
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  write_text(path, text);
}

}  // namespace

TEST_CASE("published SAEs load and encode by their producer's rule", "[pretrained][interop]") {
  struct Case {
    const char* folder;
    const char* weights;  // the weights file, also accepted as the path
    const char* architecture;
    bool apply_b_dec;
  };
  const Case cases[] = {
      {"saelens-standard-f32", "sae_weights.safetensors", "relu", true},
      {"saelens-jumprelu-f32", "sae_weights.safetensors", "jumprelu", false},
      {"sparsify-topk-f16", "sae.safetensors", "topk", true},
      {"gemmascope-jumprelu-npz", "params.npz", "jumprelu", false},
  };
  for (const Case& c : cases) {
    for (const std::string& path : {fixture(c.folder), fixture(std::string(c.folder) + "/" + c.weights)}) {
      CAPTURE(path);
      const auto model = sae::load_pretrained<double>(path);
      CHECK(std::string(model.activation().architecture()) == c.architecture);
      CHECK(model.apply_b_dec_to_input() == c.apply_b_dec);
      CHECK(model.input_dim() == 16);
      CHECK(model.dict_size() == 64);
      const sae::Batch<double> x = sae::load_npy<double>(fixture(std::string(c.folder) + "/x.npy"));
      const sae::Batch<double> codes = model.encode(x);
      const sae::Batch<double> recon = model.decode(codes);
      // The expected values are PyTorch's, in float64 from the stored weights.
      CHECK(sae_test::relative_error(codes, sae::load_npy<double>(fixture(std::string(c.folder) + "/expected_codes.npy"))) < 1e-6);
      CHECK(sae_test::relative_error(recon, sae::load_npy<double>(fixture(std::string(c.folder) + "/expected_recon.npy"))) < 1e-6);
      // And in float.
      const auto as_float = sae::load_pretrained<float>(path);
      CHECK(sae_test::relative_error(as_float.encode(x.cast<float>()), codes) < 1e-4);
    }
  }
  CHECK(sae::load_pretrained<float>(fixture("sparsify-topk-f16")).activation().get<sae::TopK>().k == 8);
}

TEST_CASE("save_pretrained writes SAELens' layout that loads back identically", "[pretrained][interop]") {
  sae_test::TempDir dir;
  sae::Rng rng(3);
  const sae::Batch<float> X = sae::Batch<float>::NullaryExpr(9, 12, [&] { return static_cast<float>(rng.normal()); });
  auto round_trip = [&](const auto& model, const std::string& name, const char* expected_architecture) {
    CAPTURE(name);
    sae::save_pretrained(model, dir.file(name));
    CHECK(fs::exists(dir.file(name + "/sae_weights.safetensors")));
    const auto loaded = sae::load_pretrained<float>(dir.file(name));
    CHECK(std::string(loaded.activation().architecture()) == expected_architecture);
    CHECK(loaded.apply_b_dec_to_input() == model.apply_b_dec_to_input());
    CHECK(loaded.params().W_enc == model.params().W_enc);
    CHECK(loaded.params().W_dec == model.params().W_dec);
    CHECK(loaded.params().b_dec == model.params().b_dec);
    CHECK(loaded.encode(X) == model.encode(X));
    CHECK(loaded.decode(loaded.encode(X)) == model.decode(model.encode(X)));
    const auto cfg = nlohmann::json::parse(read_text(dir.file(name + "/cfg.json")));
    CHECK(cfg["d_in"] == 12);
    CHECK(cfg["d_sae"] == 40);
    CHECK(cfg["dtype"] == "float32");
  };
  sae::SparseAutoEncoder<float> relu(12, 40, sae::Init::Tied, 1);
  relu.params().b_dec.setRandom();
  relu.apply_b_dec_to_input() = true;
  round_trip(relu, "relu", "relu");
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::TopK> topk(12, 40, sae::TopK{5}, sae::Init::Tied, 2);
  round_trip(topk, "topk", "topk");
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::JumpReLU> jumprelu(12, 40, sae::JumpReLU{0.05}, sae::Init::Tied, 3);
  round_trip(jumprelu, "jumprelu", "jumprelu");
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::Gated> gated(12, 40, sae::Gated{}, sae::Init::Tied, 4);
  gated.params().r_mag.setConstant(0.3f);
  gated.params().b_mag.setConstant(-0.01f);
  round_trip(gated, "gated", "gated");
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> batch_topk(12, 40, sae::BatchTopK{5}, sae::Init::Tied, 5);
  batch_topk.activation().threshold = 0.02;
  round_trip(batch_topk, "batchtopk", "jumprelu");  // SAELens' form of a BatchTopK SAE
  CHECK(sae::load_pretrained<float>(dir.file("gated")).params().r_mag == gated.params().r_mag);
}

TEST_CASE("a loaded SAE encodes with its architecture's bits at the kernels' sizes", "[pretrained][interop]") {
  // A loaded model holds its architecture at run time (AnyActivation); its
  // encode takes the fixed architecture's one-pass kernel path (with AVX-512
  // BF16, the screens), which must give the bits of the product followed by
  // encode_in_place. Trained-like settings, so that the screens have entries
  // to skip: a few percent of the codes fire.
  sae_test::TempDir dir;
  sae::Rng rng(8);
  const Index d = 96, f = 2048;
  const sae::Batch<float> X = sae::Batch<float>::NullaryExpr(70, d, [&] { return static_cast<float>(rng.normal()); });
  auto check = [&](auto model, const std::string& name, bool saved) {
    CAPTURE(name);
    model.apply_b_dec_to_input() = true;
    model.params().b_dec = sae::Vector<float>::NullaryExpr(d, [&] { return 0.1f * static_cast<float>(rng.normal()); });
    sae::Batch<float> plain;
    const Eigen::Matrix<float, 1, Eigen::Dynamic> start = -(model.params().b_dec.transpose() * model.params().W_enc);
    sae::detail::start_rows_then_add_product(start, X, model.params().W_enc, plain);
    model.activation().encode_in_place(model.params(), plain);
    const Index fired = (plain.array() != 0.0f).count();
    CHECK(fired >= X.rows());
    CHECK(fired < plain.size() / 10);
    const auto any = sae::with_any_activation(model);
    CHECK(any.encode(X) == plain);
    sae::Batch<float> reused(3, 5);  // the overload into a buffer, here resized
    any.encode(X, reused);
    CHECK(reused == plain);
    if (saved) {
      sae::save_pretrained(model, dir.file(name));
      CHECK(sae::load_pretrained<float>(dir.file(name)).encode(X) == plain);
    }
  };
  sae::SparseAutoEncoder<float> relu(d, f, sae::Init::Tied, 1);
  relu.params().b_enc.setConstant(-0.25f);
  check(relu, "relu", true);
  check(sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::TopK>(d, f, sae::TopK{24}, sae::Init::Tied, 2), "topk",
        true);
  check(sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::JumpReLU>(d, f, sae::JumpReLU{0.25}, sae::Init::Tied, 3),
        "jumprelu", true);
  // BatchTopK before θ is learned (TopK's rule; it cannot be saved) and after.
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::BatchTopK> batch_topk(d, f, sae::BatchTopK{24}, sae::Init::Tied,
                                                                            5);
  check(batch_topk, "batchtopk-unset", false);
  batch_topk.activation().threshold = 0.25;
  check(batch_topk, "batchtopk", true);
  sae::SparseAutoEncoder<float, Dynamic, Dynamic, sae::Gated> gated(d, f, sae::Gated{}, sae::Init::Tied, 4);
  gated.params().b_enc.setConstant(-0.25f);
  check(gated, "gated", true);
}

TEST_CASE("malformed SAE folders are refused with the file and the problem", "[pretrained][errors]") {
  sae_test::TempDir dir;
  SAE_CHECK_THROWS(sae::load_pretrained<float>(dir.file("missing")), std::runtime_error, Catch::Contains("no such file"));
  SAE_CHECK_THROWS(sae::load_pretrained<float>(dir.path().string()), std::runtime_error, Catch::Contains("no SAE found"));

  const std::string standard = copy_fixture(dir, "saelens-standard-f32");
  replace_in_file(standard + "/cfg.json", "\"d_sae\": 64", "\"d_sae\": 65");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(standard), std::runtime_error,
                   Catch::Contains("cfg.json: 'd_sae' is 65 but the weights have 64"));
  replace_in_file(standard + "/cfg.json", "\"d_sae\": 65", "\"d_sae\": 64");
  replace_in_file(standard + "/cfg.json", "\"standard\"", "\"transcoder\"");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(standard), std::runtime_error,
                   Catch::Contains("architecture 'transcoder' is not supported"));
  replace_in_file(standard + "/cfg.json", "\"transcoder\"", "\"standard\"");
  replace_in_file(standard + "/cfg.json", "\"normalize_activations\": \"none\"", "\"normalize_activations\": \"expected_average_only_in\"");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(standard), std::runtime_error, Catch::Contains("normalize_activations"));
  write_text(standard + "/cfg.json", "{\"architecture\": ");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(standard), std::runtime_error, Catch::Contains("cfg.json: not valid JSON"));
  write_text(standard + "/cfg.json", "{\"architecture\": \"standard\", \"apply_b_dec_to_input\": \"yes\"}");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(standard), std::runtime_error,
                   Catch::Contains("'apply_b_dec_to_input' must be true or false"));

  // A JumpReLU folder without thresholds, a topk cfg without k, a tensor of the wrong shape.
  const std::string jumprelu = copy_fixture(dir, "saelens-jumprelu-f32");
  {
    const sae::SafetensorsFile original(jumprelu + "/sae_weights.safetensors");
    sae::SafetensorsWriter w;
    for (const char* name : {"W_enc", "b_enc", "W_dec"}) w.add(name, original.read<float>(name));
    w.add("b_dec", sae::Batch<float>(original.read<float>("b_dec").topRows(15)));
    w.write(jumprelu + "/sae_weights.safetensors");
  }
  SAE_CHECK_THROWS(sae::load_pretrained<float>(jumprelu), std::runtime_error,
                   Catch::Contains("tensor 'b_dec' is 15 x 1, expected a vector of 16"));
  const std::string sparsify = copy_fixture(dir, "sparsify-topk-f16");
  replace_in_file(sparsify + "/cfg.json", "\"k\": 8", "\"k\": 0");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(sparsify), std::runtime_error, Catch::Contains("'k' must be in [1, num_latents = 64], got 0"));
  fs::remove(sparsify + "/cfg.json");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(sparsify), std::runtime_error, Catch::Contains("cfg.json: cannot open"));
  const std::string gemma = copy_fixture(dir, "gemmascope-jumprelu-npz");
  write_text(gemma + "/params.npz", "not a zip");
  SAE_CHECK_THROWS(sae::load_pretrained<float>(gemma), std::runtime_error, Catch::Contains("params.npz"));
}

TEST_CASE("steer clamps one latent and keeps the reconstruction error", "[pretrained][steering]") {
  const auto model = sae::load_pretrained<double>(fixture("saelens-standard-f32"));
  const sae::Batch<double> x = sae::load_npy<double>(fixture("saelens-standard-f32/x.npy"));
  const sae::Batch<double> codes = model.encode(x);
  const Index latent = 7;
  const sae::Batch<double> edited = sae::steer(model, x, latent, 5.0);
  for (Index b = 0; b < x.rows(); ++b) {
    // The edit is along the latent's decoder row, by (value − code).
    const Eigen::RowVectorXd expected = x.row(b) + (5.0 - codes(b, latent)) * model.params().W_dec.row(latent);
    CHECK((edited.row(b) - expected).cwiseAbs().maxCoeff() < 1e-12);
  }
  // Clamping to the current value changes nothing; a steered activation's
  // reconstruction error is the original's.
  const sae::Batch<double> unchanged = sae::steer(model, x.topRows(1), latent, codes(0, latent));
  CHECK((unchanged - x.topRows(1)).cwiseAbs().maxCoeff() < 1e-12);
  SAE_CHECK_THROWS(sae::steer(model, x, 64, 1.0), std::invalid_argument, Catch::Contains("latent 64 is out of range"));
}

TEST_CASE("top_activating_rows finds the rows a latent fires on hardest", "[pretrained][top-activations]") {
  sae_test::TempDir dir;
  const auto model = sae::load_pretrained<float>(fixture("saelens-standard-f32"));
  // 1000 random rows, and the latent's own direction planted at three rows with growing strength.
  sae::Rng rng(9);
  sae::Batch<float> X = sae::Batch<float>::NullaryExpr(1000, 16, [&] { return static_cast<float>(0.1 * rng.normal()); });
  const Index latent = 11;
  const Eigen::RowVectorXf direction = model.params().W_enc.col(latent).transpose().normalized();
  const Index planted[] = {123, 777, 500};
  for (int i = 0; i < 3; ++i) X.row(planted[i]) += (20.0f + 10.0f * i) * direction + model.params().b_dec.transpose();
  sae::save_npy(dir.file("acts.npy"), X);

  const auto top = sae::top_activating_rows(model, dir.file("acts.npy"), latent, 5, /*chunk_rows=*/64);
  REQUIRE(top.size() == 5);
  CHECK(top[0].row == 500);
  CHECK(top[1].row == 777);
  CHECK(top[2].row == 123);
  // Against encoding the whole file at once.
  const sae::Batch<float> codes = model.encode(X);
  for (const auto& r : top) CHECK(r.activation == Approx(codes(r.row, latent)));
  const Eigen::VectorXf latent_codes = codes.col(latent);  // codes are row-major: copy the column
  std::vector<float> column(latent_codes.data(), latent_codes.data() + latent_codes.size());
  std::sort(column.begin(), column.end(), std::greater<float>());
  CHECK(top[4].activation == Approx(column[4]));
  SAE_CHECK_THROWS(sae::top_activating_rows(model, dir.file("acts.npy"), -1, 5), std::invalid_argument,
                   Catch::Contains("out of range"));
}
