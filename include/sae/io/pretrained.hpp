// sae/io/pretrained.hpp: SAEs as the Python ecosystem publishes them.
//
//   auto sae = sae::load_pretrained<float>("gemma-scope/layer_12/width_16k/average_l0_71");
//   sae::Batch<float> codes = sae.encode(acts);       // [B, F], by the producer's rule
//   sae::Batch<float> recon = sae.decode(codes);      // [B, D]
//   sae::save_pretrained(my_trained_model, "out/");   // SAELens layout: SAELens loads it
//
// The layout is detected from the files (SAE-REFERENCE.md §6):
//
//   SAELens     sae_weights.safetensors + cfg.json: W_enc [D,F], b_enc [F],
//               W_dec [F,D], b_dec [D]; jumprelu adds threshold [F]; gated has
//               b_gate (our b_enc), r_mag, b_mag. cfg: architecture (standard,
//               jumprelu, topk, gated; older files: activation_fn_str relu/topk
//               with activation_fn_kwargs.k), d_in, d_sae, apply_b_dec_to_input,
//               normalize_activations, k.
//   sparsify    sae.safetensors + cfg.json: encoder.weight [F,D], encoder.bias
//               [F], W_dec [F,D], b_dec [D]; cfg: activation "topk", k,
//               num_latents, d_in. sparsify subtracts b_dec from the input.
//   Gemma Scope params.npz: W_enc, W_dec, b_enc, b_dec, threshold; JumpReLU,
//               b_dec not subtracted.
//
// `path` may be the folder or its weights file. The returned model has a
// run-time architecture (AnyActivation); with_activation<TopK>(model) gives
// the compile-time one for training on. Every problem (missing file or
// tensor, a shape that disagrees with the cfg or with another tensor, an
// unknown architecture, a setting we cannot honour) is a std::runtime_error
// naming the file and what is wrong.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/any_activation.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../version.hpp"
#include "npz.hpp"
#include "safetensors.hpp"

namespace sae {

/// A model loaded from a file: any architecture, run-time sizes.
template <typename Scalar>
using PretrainedSAE = SparseAutoEncoder<Scalar, Dynamic, Dynamic, AnyActivation>;

namespace detail {

namespace fs = std::filesystem;

[[noreturn]] inline void pretrained_error(const fs::path& where, const std::string& what) {
  throw std::runtime_error(where.string() + ": " + what);
}

inline nlohmann::json read_cfg(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) pretrained_error(path, "cannot open the config file");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json cfg = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded()) pretrained_error(path, "not valid JSON");
  if (!cfg.is_object()) pretrained_error(path, "expected a JSON object");
  return cfg;
}

// cfg[key] as an integer, or `fallback` when absent; anything else is an error.
inline long long cfg_integer(const nlohmann::json& cfg, const char* key, const fs::path& path, long long fallback = -1) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<long long>() < 0)
    pretrained_error(path, std::string("'") + key + "' must be a non-negative integer, got " + it->dump());
  return it->get<long long>();
}

inline bool cfg_bool(const nlohmann::json& cfg, const char* key, const fs::path& path, bool fallback) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) pretrained_error(path, std::string("'") + key + "' must be true or false, got " + it->dump());
  return it->get<bool>();
}

inline std::string cfg_string(const nlohmann::json& cfg, const char* key, const fs::path& path,
                              const std::string& fallback = "") {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return fallback;
  if (!it->is_string()) pretrained_error(path, std::string("'") + key + "' must be a string, got " + it->dump());
  return it->get<std::string>();
}

// A cfg size must agree with the tensors when it is given.
inline void check_cfg_size(long long cfg_value, Index actual, const char* key, const fs::path& cfg_path) {
  if (cfg_value > 0 && cfg_value != actual)
    pretrained_error(cfg_path, std::string("'") + key + "' is " + std::to_string(cfg_value) +
                                   " but the weights have " + std::to_string(actual));
}

// Reads name as an R x C matrix of the given shape (or a vector of length R when C == 0).
template <typename Scalar, typename Reader>
Batch<Scalar> read_tensor(const Reader& file, const std::string& name, Index rows, Index cols, const fs::path& path) {
  if (!file.has(name)) pretrained_error(path, "has no tensor '" + name + "'");
  Batch<Scalar> t = file.template read<Scalar>(name);
  const Index want_cols = cols == 0 ? 1 : cols;
  if (t.rows() != rows || t.cols() != want_cols)
    pretrained_error(path, "tensor '" + name + "' is " + std::to_string(t.rows()) + " x " + std::to_string(t.cols()) +
                               ", expected " + (cols == 0 ? "a vector of " + std::to_string(rows)
                                                          : std::to_string(rows) + " x " + std::to_string(cols)));
  return t;
}

template <typename Scalar, typename Reader>
Index tensor_rows(const Reader& file, const std::string& name, const fs::path& path) {
  if (!file.has(name)) pretrained_error(path, "has no tensor '" + name + "'");
  return file.template read<Scalar>(name).rows();
}

template <typename Scalar>
PretrainedSAE<Scalar> load_saelens(const fs::path& dir) {
  const fs::path weights = dir / "sae_weights.safetensors", cfg_path = dir / "cfg.json";
  const nlohmann::json cfg = read_cfg(cfg_path);
  const SafetensorsFile file(weights.string());
  std::string architecture = cfg_string(cfg, "architecture", cfg_path);
  long long k = cfg_integer(cfg, "k", cfg_path);
  if (architecture.empty()) {  // SAELens before 6: activation_fn_str and its kwargs
    const std::string fn = cfg_string(cfg, "activation_fn_str", cfg_path, "relu");
    architecture = fn == "relu" ? "standard" : fn;
    const auto kwargs = cfg.find("activation_fn_kwargs");
    if (kwargs != cfg.end() && kwargs->is_object()) k = cfg_integer(*kwargs, "k", cfg_path, k);
  }
  const std::string normalize = cfg_string(cfg, "normalize_activations", cfg_path, "none");
  if (normalize != "none")
    pretrained_error(cfg_path, "normalize_activations is '" + normalize +
                                   "': the weights expect activations rescaled by a factor not stored with them; "
                                   "rescale your activations and set it to 'none'");

  const bool gated = architecture == "gated";
  const Index D = tensor_rows<Scalar>(file, "W_enc", weights);
  Parameters<Scalar> p;
  p.W_enc = file.template read<Scalar>("W_enc");
  const Index F = p.W_enc.cols();
  p.b_enc = read_tensor<Scalar>(file, gated ? "b_gate" : "b_enc", F, 0, weights);
  p.W_dec = read_tensor<Scalar>(file, "W_dec", F, D, weights);
  p.b_dec = read_tensor<Scalar>(file, "b_dec", D, 0, weights);
  check_cfg_size(cfg_integer(cfg, "d_in", cfg_path), D, "d_in", cfg_path);
  check_cfg_size(cfg_integer(cfg, "d_sae", cfg_path), F, "d_sae", cfg_path);

  AnyActivation activation;
  if (architecture == "standard") {
    activation = ReLU{};
  } else if (architecture == "jumprelu") {
    p.threshold = read_tensor<Scalar>(file, "threshold", F, 0, weights);
    activation = JumpReLU{};
  } else if (architecture == "topk") {
    if (k <= 0 || k > F) pretrained_error(cfg_path, "a topk SAE needs 'k' in [1, d_sae = " + std::to_string(F) + "], got " + std::to_string(k));
    activation = TopK{static_cast<Index>(k)};
  } else if (gated) {
    p.r_mag = read_tensor<Scalar>(file, "r_mag", F, 0, weights);
    p.b_mag = read_tensor<Scalar>(file, "b_mag", F, 0, weights);
    activation = Gated{};
  } else {
    pretrained_error(cfg_path, "architecture '" + architecture + "' is not supported (standard, jumprelu, topk, gated)");
  }
  // SAELens' default for the flag: on, except for JumpReLU (Gemma Scope's convention).
  const bool apply_b_dec = cfg_bool(cfg, "apply_b_dec_to_input", cfg_path, architecture != "jumprelu");
  return PretrainedSAE<Scalar>(std::move(p), activation, apply_b_dec);
}

template <typename Scalar>
PretrainedSAE<Scalar> load_sparsify(const fs::path& dir) {
  const fs::path weights = dir / "sae.safetensors", cfg_path = dir / "cfg.json";
  const nlohmann::json cfg = read_cfg(cfg_path);
  const SafetensorsFile file(weights.string());
  const std::string activation_name = cfg_string(cfg, "activation", cfg_path, "topk");
  if (activation_name != "topk")
    pretrained_error(cfg_path, "activation '" + activation_name + "' is not supported (topk)");
  for (const char* unsupported : {"skip_connection", "transcode"})
    if (cfg_bool(cfg, unsupported, cfg_path, false))
      pretrained_error(cfg_path, std::string("'") + unsupported + "' SAEs are not supported");
  if (file.has("W_skip")) pretrained_error(weights, "has a skip connection (W_skip), which is not supported");

  const Index F = tensor_rows<Scalar>(file, "encoder.weight", weights);
  const Batch<Scalar> encoder = file.template read<Scalar>("encoder.weight");
  const Index D = encoder.cols();
  Parameters<Scalar> p;
  p.W_enc = encoder.transpose();
  p.b_enc = read_tensor<Scalar>(file, "encoder.bias", F, 0, weights);
  p.W_dec = read_tensor<Scalar>(file, "W_dec", F, D, weights);
  p.b_dec = read_tensor<Scalar>(file, "b_dec", D, 0, weights);
  check_cfg_size(cfg_integer(cfg, "d_in", cfg_path), D, "d_in", cfg_path);
  check_cfg_size(cfg_integer(cfg, "num_latents", cfg_path), F, "num_latents", cfg_path);
  const long long k = cfg_integer(cfg, "k", cfg_path);
  if (k <= 0 || k > F) pretrained_error(cfg_path, "'k' must be in [1, num_latents = " + std::to_string(F) + "], got " + std::to_string(k));
  return PretrainedSAE<Scalar>(std::move(p), TopK{static_cast<Index>(k)}, /*apply_b_dec_to_input=*/true);
}

template <typename Scalar>
PretrainedSAE<Scalar> load_gemma_scope(const fs::path& npz) {
  const NpzFile file(npz.string());
  const Index D = tensor_rows<Scalar>(file, "W_enc", npz);
  Parameters<Scalar> p;
  p.W_enc = file.template read<Scalar>("W_enc");
  const Index F = p.W_enc.cols();
  p.b_enc = read_tensor<Scalar>(file, "b_enc", F, 0, npz);
  p.W_dec = read_tensor<Scalar>(file, "W_dec", F, D, npz);
  p.b_dec = read_tensor<Scalar>(file, "b_dec", D, 0, npz);
  p.threshold = read_tensor<Scalar>(file, "threshold", F, 0, npz);
  return PretrainedSAE<Scalar>(std::move(p), JumpReLU{}, /*apply_b_dec_to_input=*/false);
}

}  // namespace detail

/// Loads an SAE in SAELens, sparsify or Gemma Scope layout from a folder or
/// its weights file (see the top of this header).
template <typename Scalar>
PretrainedSAE<Scalar> load_pretrained(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path given(path);
  std::error_code ec;
  if (!fs::exists(given, ec)) detail::pretrained_error(given, "no such file or folder");
  fs::path dir = given;
  if (fs::is_regular_file(given, ec)) {
    if (given.extension() == ".npz") return detail::load_gemma_scope<Scalar>(given);
    dir = given.parent_path().empty() ? fs::path(".") : given.parent_path();
    if (given.filename() == "sae_weights.safetensors") return detail::load_saelens<Scalar>(dir);
    if (given.filename() == "sae.safetensors") return detail::load_sparsify<Scalar>(dir);
    detail::pretrained_error(given, "not a weights file of a known layout (sae_weights.safetensors, "
                                    "sae.safetensors or a Gemma Scope .npz)");
  }
  if (fs::exists(dir / "sae_weights.safetensors", ec)) return detail::load_saelens<Scalar>(dir);
  if (fs::exists(dir / "sae.safetensors", ec)) return detail::load_sparsify<Scalar>(dir);
  if (fs::exists(dir / "params.npz", ec)) return detail::load_gemma_scope<Scalar>(dir / "params.npz");
  detail::pretrained_error(dir, "no SAE found: expected sae_weights.safetensors + cfg.json (SAELens), "
                                "sae.safetensors + cfg.json (sparsify) or params.npz (Gemma Scope)");
}

/// Writes `model` in SAELens' layout: dir/sae_weights.safetensors (F32 for a
/// float model, F64 for double) and dir/cfg.json. A BatchTopK model is saved
/// as the JumpReLU it is at inference (as SAELens does). The folder is created
/// if needed; each file is written atomically.
template <typename Scalar, int D, int F, typename Activation>
void save_pretrained(const SparseAutoEncoder<Scalar, D, F, Activation>& model, const std::string& dir) {
  namespace fs = std::filesystem;
  const auto any = [&] {
    if constexpr (std::is_same<Activation, AnyActivation>::value) return model;
    else return with_any_activation(model);
  }();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create the folder (" + ec.message() + ")");
  const AnyActivation& activation = any.activation();
  const auto& p = any.params();
  nlohmann::json cfg;
  std::string architecture;
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> threshold;
  if (activation.holds<ReLU>()) {
    architecture = "standard";
  } else if (activation.holds<TopK>()) {
    architecture = "topk";
    cfg["k"] = activation.get<TopK>().k;
  } else if (activation.holds<BatchTopK>()) {
    architecture = "jumprelu";
    const double theta = activation.get<BatchTopK>().threshold;
    if (!(theta >= 0.0))
      throw std::invalid_argument("sae::save_pretrained: the BatchTopK threshold has not been learned yet");
    threshold.setConstant(any.dict_size(), static_cast<Scalar>(theta));
  } else if (activation.holds<JumpReLU>()) {
    architecture = "jumprelu";
    threshold = p.threshold;
  } else {
    architecture = "gated";
  }
  SafetensorsWriter w;
  w.add("W_enc", p.W_enc);
  w.add(architecture == "gated" ? "b_gate" : "b_enc", p.b_enc);
  w.add("W_dec", p.W_dec);
  w.add("b_dec", p.b_dec);
  if (architecture == "jumprelu") w.add("threshold", threshold);
  if (architecture == "gated") {
    w.add("r_mag", p.r_mag);
    w.add("b_mag", p.b_mag);
  }
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / "sae_weights.safetensors").string());

  cfg["architecture"] = architecture;
  cfg["d_in"] = any.input_dim();
  cfg["d_sae"] = any.dict_size();
  cfg["dtype"] = std::is_same<Scalar, float>::value ? "float32" : "float64";
  cfg["device"] = "cpu";
  cfg["apply_b_dec_to_input"] = any.apply_b_dec_to_input();
  cfg["normalize_activations"] = "none";
  cfg["reshape_activations"] = "none";
  cfg["metadata"] = {{"written_by", std::string("sae (C++) ") + SAE_VERSION_STRING}};
  const std::string text = cfg.dump(2) + "\n";
  detail::write_file_atomically((fs::path(dir) / "cfg.json").string(),
                                [&](std::ostream& out) { out.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

}  // namespace sae
