// sae/top_activations.hpp: where a latent fires hardest, over a .npy file.
//
//   auto top = sae::top_activating_rows(model, "acts.npy", /*latent=*/1234, /*count=*/20);
//   for (auto& r : top) std::cout << r.row << " " << r.activation << "\n";
//
// The file is memory-mapped and encoded a chunk at a time, keeping a heap of
// the best `count` rows, so a file larger than RAM is read once with memory
// for one chunk of codes (chunk_rows x F).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sparse_autoencoder.hpp"
#include "train/data_source.hpp"

namespace sae {

struct ActivatingRow {
  Index row = 0;          ///< row of the file (0-based)
  double activation = 0;  ///< the latent's code on that row
};

/// The `count` rows of the [N, D] .npy file `path` on which `latent` is
/// largest, largest first (ties: lower row first). Rows where the latent is
/// 0 are never listed, so fewer than `count` may come back.
template <typename Scalar, int D, int F, typename Activation>
std::vector<ActivatingRow> top_activating_rows(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                                               const std::string& path, Index latent, Index count,
                                               Index chunk_rows = 4096) {
  if (latent < 0 || latent >= model.dict_size())
    throw std::invalid_argument("sae::top_activating_rows: latent " + std::to_string(latent) + " is out of range [0, " +
                                std::to_string(model.dict_size()) + ")");
  if (count <= 0 || chunk_rows <= 0)
    throw std::invalid_argument("sae::top_activating_rows: count and chunk_rows must be positive");
  NpyFileSourceOptions options;
  options.shuffle = false;
  options.buffer_rows = chunk_rows;
  NpyFileSource<Scalar> source({path}, options);
  if (source.input_dim() != model.input_dim())
    throw std::runtime_error(path + ": has " + std::to_string(source.input_dim()) + " columns, the model's input_dim is " +
                             std::to_string(model.input_dim()));
  // A min-heap on (activation, -row): its top is the weakest row kept.
  const auto weaker = [](const ActivatingRow& a, const ActivatingRow& b) {
    return a.activation > b.activation || (a.activation == b.activation && a.row < b.row);
  };
  std::vector<ActivatingRow> heap;
  Batch<Scalar> chunk;
  typename SparseAutoEncoder<Scalar, D, F, Activation>::CodeBatch codes;
  for (Index start = 0; start < source.num_rows(); start += chunk_rows) {
    const Index rows = std::min(chunk_rows, source.num_rows() - start);
    source.next_batch(chunk, rows);
    model.encode(chunk, codes);
    for (Index b = 0; b < rows; ++b) {
      const double a = static_cast<double>(codes(b, latent));
      if (a == 0) continue;
      const ActivatingRow candidate{start + b, a};
      if (static_cast<Index>(heap.size()) < count) {
        heap.push_back(candidate);
        std::push_heap(heap.begin(), heap.end(), weaker);
      } else if (weaker(candidate, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), weaker);
        heap.back() = candidate;
        std::push_heap(heap.begin(), heap.end(), weaker);
      }
    }
  }
  std::sort(heap.begin(), heap.end(), weaker);
  return heap;
}

}  // namespace sae
