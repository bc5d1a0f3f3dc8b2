// sae/report/model_loading.hpp: the trained SAE a report is about, from
// whatever folder the user has.
//
//   sae::ReportModel m = sae::load_report_model("run/");       // sae_train --out run/
//   sae::ReportModel m = sae::load_report_model("gemma-scope/layer_12/...");   // any load_pretrained layout
//   m.model.encode(X);  m.source;  m.description;
//
// Two kinds of folder (or file):
//   - anything sae::load_pretrained reads (SAELens, sparsify, Gemma Scope, and
//     this library's save_pretrained): the layout says the architecture;
//   - the output of sae_train --out DIR (DIR or DIR/checkpoint.sae). Its
//     W_enc.npy ... b_dec.npy hold only the four shared tensors, not the
//     architecture nor JumpReLU's thresholds or Gated's magnitude path, and
//     its SAELens files hold a BatchTopK model as the JumpReLU it is at
//     inference, so the model is read from the trainer's checkpoint instead
//     (whenever the folder has one): every parameter, the
//     architecture, apply_b_dec_to_input and BatchTopK's threshold, with the
//     input scale folded in exactly as Trainer::exported_model() does (so the
//     model takes raw activations, like the saved .npy files). TopK's k is in the
//     checkpoint; for checkpoints written before it was recorded it comes from
//     `topk_k` (sae_train's --k; its default, 32, when not given).
// Problems are std::runtime_error naming the path and what is wrong.
#pragma once

#include <filesystem>
#include <string>

#include "../core/any_activation.hpp"
#include "../io/checkpoint.hpp"
#include "../io/pretrained.hpp"
#include "../train/input_scaling.hpp"

namespace sae {

struct ReportModel {
  PretrainedSAE<float> model;
  std::string source;       ///< the path it was read from
  std::string layout;       ///< "sae_train checkpoint" or "SAELens / sparsify / Gemma Scope layout"
  bool k_from_caller = false;  ///< TopK's k was not in the files: it is the caller's topk_k
};

/// True when `path` is a trainer checkpoint or a folder with one (sae_train's
/// --out, whose SAELens files beside it are read from the checkpoint instead).
inline bool is_trainer_output(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_regular_file(p, ec)) return p.extension() == ".sae";
  return fs::is_directory(p, ec) && fs::exists(p / "checkpoint.sae", ec);
}

/// The exported model of a sae_train run, from its checkpoint (see the top of this file).
inline ReportModel load_trainer_checkpoint(const std::string& path, Index topk_k = 32) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string file = fs::is_directory(path, ec) ? (fs::path(path) / "checkpoint.sae").string() : path;
  const CheckpointReader r(file);
  if (r.string("format") != "sae.trainer.v2")
    throw std::runtime_error(file + ": not a sae_train checkpoint this version reads (format '" + r.string("format") +
                             "', expected 'sae.trainer.v2')");
  const std::string architecture = r.string("architecture");

  Parameters<float> p;
  p.for_each([&](const char* name, auto& tensor) {
    const std::string key = name;
    if (key == "W_enc" || key == "b_enc" || key == "W_dec" || key == "b_dec") r.read_into(key, tensor);
  });
  const Index F = p.W_enc.cols();
  const auto latent_vector = [&](const char* name) {
    Eigen::VectorXf v;
    r.read_into(name, v);
    if (v.size() != F)
      throw std::runtime_error(file + ": '" + name + "' has " + std::to_string(v.size()) + " entries, expected " +
                               std::to_string(F) + " (one per latent)");
    return v;
  };

  AnyActivation activation;
  bool k_from_caller = false;
  if (architecture == "relu") {
    activation = ReLU{};
  } else if (architecture == "topk" || architecture == "batchtopk") {
    const bool recorded = r.has("topk_k");  // checkpoints from before k was recorded have none
    if (recorded) {
      const auto k = r.u64s("topk_k");
      if (k.size() != 1) throw std::runtime_error(file + ": malformed 'topk_k' entry");
      topk_k = static_cast<Index>(k[0]);
    }
    if (topk_k < 1 || topk_k > F)
      throw std::runtime_error(file + ": a " + architecture + " SAE needs k in [1, " + std::to_string(F) + "], got " +
                               std::to_string(topk_k));
    k_from_caller = !recorded;
    if (architecture == "topk") {
      activation = TopK{topk_k};
    } else {
      BatchTopK batch_topk;
      batch_topk.k = topk_k;
      batch_topk.threshold = r.scalar("batchtopk_threshold");
      activation = batch_topk;
    }
  } else if (architecture == "jumprelu") {
    p.threshold = latent_vector("threshold");
    activation = JumpReLU{};
  } else if (architecture == "gated") {
    p.r_mag = latent_vector("r_mag");
    p.b_mag = latent_vector("b_mag");
    activation = Gated{};
  } else {
    throw std::runtime_error(file + ": unknown architecture '" + architecture + "'");
  }
  const auto apply_b_dec = r.u64s("apply_b_dec_to_input");
  if (apply_b_dec.size() != 1) throw std::runtime_error(file + ": malformed 'apply_b_dec_to_input' entry");
  const double input_scale = r.scalar("input_scale");
  if (input_scale != 1.0) fold_input_scale(p, input_scale);
  try {
    return ReportModel{PretrainedSAE<float>(std::move(p), activation, apply_b_dec[0] != 0), file,
                       "sae_train checkpoint", k_from_caller};
  } catch (const std::invalid_argument& e) {  // tensors that do not fit together
    throw std::runtime_error(file + ": " + e.what());
  }
}

/// A trainer's output or any layout load_pretrained reads (see the top of this file).
inline ReportModel load_report_model(const std::string& path, Index topk_k = 32) {
  namespace fs = std::filesystem;
  if (is_trainer_output(path)) return load_trainer_checkpoint(path, topk_k);
  std::error_code ec;
  if (fs::is_directory(path, ec) && fs::exists(fs::path(path) / "W_enc.npy", ec) &&
      !fs::exists(fs::path(path) / "sae_weights.safetensors", ec))
    throw std::runtime_error(path + ": has sae_train's W_enc.npy but no checkpoint.sae; the .npy files do not say "
                                    "the architecture (nor hold JumpReLU or Gated parameters), the checkpoint does");
  return ReportModel{load_pretrained<float>(path), path, "SAELens / sparsify / Gemma Scope layout", false};
}

}  // namespace sae
