// sae/loss/topk_objective.hpp: training TopK and BatchTopK SAEs, with AuxK.
//
// There is no sparsity penalty: the architecture keeps k codes per token
// (TopK) or k·B per batch (BatchTopK). The loss is the reconstruction error
// plus the AuxK term that gives dead latents a gradient (Gao et al. 2024):
//
//     L   = (1/B) Σ_b ‖x̂_b − x_b‖²  +  α · s · (1/B) Σ_b ‖ê_b − r_b‖²
//     r   = x − x̂, detached (a constant: no gradient reaches the live latents
//           or b_dec through it)
//     ê   = Σ over the k_aux largest ReLU pre-activations among the dead
//           latents of a_bj W_dec,j — with NO decoder bias (sparsify #132)
//     α   = aux_k_coefficient (1/32), k_aux = aux_k (default D/2),
//     s   = min(dead / k_aux, 1)  (less weight while few latents are dead)
//
// so the dead latents learn to predict what the live ones miss. The sign is
// reconstruction − residual (sparsify PR #47). sparsify divides both terms by
// the batch's total variance; the common factor only rescales the gradient.
//
// Gradients (P = A W_enc + b_enc, S the kept entries, G_X̂ = (2/B)(x̂ − x),
// G_ê = (2αs/B)(ê − r)):
//
//     ∇W_dec,f = Σ_{b: (b,f)∈S} f_bf G_X̂,b + Σ_{b: (b,f)∈aux} a_bf G_ê,b
//     ∇b_dec   = Σ_b G_X̂,b        (then the centring term, sae/loss/reconstruction.hpp)
//     G_P,bf   = G_X̂,b · W_dec,f  on S (where f_bf > 0),   G_ê,b · W_dec,f on aux
//     ∇W_enc   = Aᵀ G_P            ∇b_enc = Σ_b G_P
//
// The top-k mask is piecewise constant, so these are the exact gradients
// wherever no two pre-activations tie at the cut. With the sparse kernels
// (what Kernels::Automatic picks unless k is a large part of F) every term
// touches only the kept (token, latent) pairs: decoding is a gather of k
// decoder rows per token and the only dense work is the encoder product
// A W_enc; with Kernels::Dense the same quantities come from dense GEMMs (the
// reference the tests compare against), except AuxK's, whose few codes per
// token take the sparse kernel on both paths.
//
// The encoder product itself goes through the bfloat16 screen where it is
// built (AVX-512 BF16; detail/gemm_screened_topk.hpp): only the entries that
// could be among a token's k largest (BatchTopK: the batch's k·B largest), or
// its k_aux largest dead latents, are summed exactly, and the selections,
// codes and gradients are the same bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/sparse_autoencoder.hpp"
#include "../core/topk.hpp"
#include "../detail/buffers.hpp"
#include "../detail/parallel.hpp"
#include "../detail/sparse_codes.hpp"
#include "loss_report.hpp"
#include "objective.hpp"
#include "reconstruction.hpp"
#include "workspace.hpp"

namespace sae {

template <typename Scalar>
struct TopKObjective {
  double aux_k_coefficient = 1.0 / 32.0;  ///< α; 0 turns AuxK off
  Index aux_k = 0;                        ///< k_aux; 0 means D/2
  /// Latents counted as dead (the trainer fills it from tokens since each
  /// last fired); AuxK only acts when there are some.
  std::vector<Index> dead_latents;
  Kernels kernels = Kernels::Automatic;

  /// The loss of `model` on the batch X (B x D), without gradients. Leaves
  /// the kept codes in ws.active (and dense in ws.codes), the AuxK codes in
  /// ws.auxiliary and x̂ − x in ws.error.
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                      const Eigen::MatrixBase<Derived>& X, LossWorkspace<Scalar>& ws) const {
    static_assert(std::is_same<Activation, TopK>::value || std::is_same<Activation, BatchTopK>::value,
                  "sae: TopKObjective trains the TopK and BatchTopK architectures");
    constexpr const char* where = "sae::TopKObjective";
    detail::check_objective_input(model, X, where);
    model.activation().check(model.params(), where);
    if (!(aux_k_coefficient >= 0.0) || !std::isfinite(aux_k_coefficient))
      throw std::invalid_argument(std::string(where) + ": aux_k_coefficient must be finite and >= 0");
    const auto& p = model.params();
    const Index batch = X.rows();

    // The pre-activations; then the kept entries (through the ReLU) and
    // AuxK's into ws.active and ws.auxiliary, and the dense codes (for metrics
    // and dead-latent bookkeeping) in place of the pre-activations.
    const Index aux_k = auxiliary_k(model);
    if constexpr (std::is_same<Activation, TopK>::value) {
      if (!screened_select_per_token(model, X, model.activation().k, aux_k, ws)) {
        detail::pre_activations(model, X, ws);
        select_per_token(model.activation().k, aux_k, ws);
      }
    } else if (!screened_select_over_batch(model, X, model.activation().k, aux_k, ws)) {
      detail::pre_activations(model, X, ws);
      select_over_batch(ws.codes, model.activation().k * batch, ws);
      select_auxiliary(aux_k, ws);
      write_dense_codes(ws);
    }

    // x̂ − x.
    ws.sparse_step = detail::use_sparse_kernels(kernels, ws.active.density());
    if (ws.sparse_step) {
      detail::sparse_decode(ws.active, p.W_dec, ws.error);
    } else {
      detail::product_into(ws.codes, p.W_dec, ws.error);
    }

    const double b = static_cast<double>(batch);
    LossReport r;
    r.l2 = detail::reconstruction_error(model, X, ws.error);
    r.l0 = static_cast<double>(ws.active.nonzeros()) / b;
    double l1 = 0;
    for (Scalar v : ws.active.value) l1 += static_cast<double>(v);
    r.l1 = l1 / b;

    // AuxK: ê − r = ê + (x̂ − x).
    if (ws.auxiliary.nonzeros() > 0) {
      detail::sparse_decode(ws.auxiliary, p.W_dec, ws.auxiliary_error);
      ws.auxiliary_error += ws.error;
      r.auxiliary = static_cast<double>(ws.auxiliary_error.squaredNorm()) / b;
    }
    r.loss = r.l2 + aux_weight(model) * r.auxiliary;
    return r;
  }

  /// The loss of `model` on X and its gradient with respect to every
  /// parameter, written into `grads` (resized if its sizes differ).
  template <int D, int F, typename Activation, typename Derived>
  LossReport evaluate_with_gradient(const SparseAutoEncoder<Scalar, D, F, Activation>& model,
                                    const Eigen::MatrixBase<Derived>& X, Parameters<Scalar, D, F>& grads,
                                    LossWorkspace<Scalar>& ws) const {
    const LossReport report = evaluate(model, X, ws);
    const auto& p = model.params();
    detail::size_gradients(model, grads);
    const Index batch = X.rows();
    const Scalar inv_batch = Scalar(1) / static_cast<Scalar>(batch);

    // G_X̂ = (2/B) E and G_ê = (2αs/B)(ê − r), in place.
    ws.error *= Scalar(2) * inv_batch;
    const bool with_aux = ws.auxiliary.nonzeros() > 0;
    if (with_aux) ws.auxiliary_error *= static_cast<Scalar>(2.0 * aux_weight(model) / static_cast<double>(batch));
    grads.b_dec.noalias() = ws.error.colwise().sum().transpose();
    grads.b_enc.setZero();

    if (ws.sparse_step) {
      ws.latent_sums.resize(model.dict_size());
      ws.active.index_by_latent();  // the two kernels below run latent by latent
      detail::sparse_decoder_backward(ws.active, ws.error, p.W_dec, grads.W_dec, ws.active_gradient, /*accumulate=*/false);
      const Scalar* shift = detail::encoder_input_shift(model);
      detail::sparse_encoder_gradient(ws.active, ws.active_gradient, X, shift, grads.W_enc, ws.latent_sums, false);
      if (with_aux) {
        ws.auxiliary.index_by_latent();
        detail::sparse_decoder_backward(ws.auxiliary, ws.auxiliary_error, p.W_dec, grads.W_dec, ws.auxiliary_gradient,
                                        /*accumulate=*/true);
        detail::sparse_encoder_gradient(ws.auxiliary, ws.auxiliary_gradient, X, shift, grads.W_enc, ws.latent_sums,
                                        true);
      }
      detail::add_decoder_bias_centering_gradient(model, ws.latent_sums, grads);
    } else {
      detail::product_into(ws.codes.transpose(), ws.error, grads.W_dec);
      detail::product_into(ws.error, p.W_dec.transpose(), ws.code_gradient);
      ws.code_gradient = (ws.codes.array() > Scalar(0)).select(ws.code_gradient, Scalar(0));
      if (with_aux) {
        // AuxK's codes are a few per token, each positive (select_auxiliary_row
        // keeps no other), so its terms come from the sparse kernel even here:
        // ∇W_dec += auxᵀ G_ê, and G_ê W_decᵀ at its entries, added into the
        // code gradient (a token's dead latents are distinct: one add each).
        ws.auxiliary.index_by_latent();
        detail::sparse_decoder_backward(ws.auxiliary, ws.auxiliary_error, p.W_dec, grads.W_dec, ws.auxiliary_gradient,
                                        /*accumulate=*/true);
        for (Index b = 0; b < batch; ++b)
          for (Index j = ws.auxiliary.row_start[b]; j < ws.auxiliary.row_start[b + 1]; ++j)
            ws.code_gradient(b, ws.auxiliary.latent[j]) += ws.auxiliary_gradient[static_cast<std::size_t>(j)];
      }
      detail::dense_encoder_gradient(model, X, ws.code_gradient, grads, ws);
    }
    grads.b_enc = ws.latent_sums;
    return report;
  }

 private:
  template <typename Model>
  Index effective_aux_k(const Model& model) const {
    return aux_k > 0 ? aux_k : std::max<Index>(model.input_dim() / 2, 1);
  }

  // α · min(dead / k_aux, 1)
  template <typename Model>
  double aux_weight(const Model& model) const {
    const double dead = static_cast<double>(dead_latents.size());
    return aux_k_coefficient * std::min(dead / static_cast<double>(effective_aux_k(model)), 1.0);
  }

  // k_aux for this batch, 0 without AuxK (no dead latents or α = 0); checks
  // the dead latents first (before any parallel loop, which must not throw).
  template <typename Model>
  Index auxiliary_k(const Model& model) const {
    const Index dead = static_cast<Index>(dead_latents.size());
    if (dead == 0 || aux_k_coefficient == 0.0) return 0;
    for (Index f : dead_latents)
      if (f < 0 || f >= model.dict_size())
        throw std::invalid_argument("sae::TopKObjective: dead latent " + std::to_string(f) + " is out of range [0, " +
                                    std::to_string(model.dict_size()) + ")");
    return std::min(effective_aux_k(model), dead);
  }

  // TopK, in one pass over the rows of P = ws.codes: each row's k largest
  // entries (kept where positive) into ws.active and its AuxK entries into
  // ws.auxiliary, then the row becomes its dense codes while it is in cache.
  void select_per_token(Index k, Index aux_k, LossWorkspace<Scalar>& ws) const {
    const Index cols = ws.codes.cols();
    k = std::min(k, cols);
    select_rows(k, aux_k, ws, [&](Index b, const Scalar* row, Index* latent, Scalar* value) {
      const Index kept = select_top_k_row(row, cols, k, latent, value);
      if (aux_k > 0) select_auxiliary_row(row, b, aux_k, ws.auxiliary);
      return kept;
    });
  }

  // The frame of a per-token selection: for each row b of P = ws.codes (in
  // parallel), select(b, row, latent, value) writes the kept entries (at
  // most k) to latent and value and returns how many, and AuxK's into row
  // b's slot of ws.auxiliary (see start_slots); then the row becomes its
  // dense codes.
  template <typename Select>
  void select_rows(Index k, Index aux_k, LossWorkspace<Scalar>& ws, Select&& select) const {
    Batch<Scalar>& P = ws.codes;
    const Index rows = P.rows(), cols = P.cols();
    start_slots(ws.active, rows, cols, k);
    start_slots(ws.auxiliary, rows, cols, aux_k);
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(P.size())))
    for (Index b = 0; b < rows; ++b) {
      Scalar* row = P.row(b).data();
      Index* latent = ws.active.latent.data() + b * k;
      Scalar* value = ws.active.value.data() + b * k;
      const Index kept = select(b, row, latent, value);
      ws.active.row_start[static_cast<std::size_t>(b) + 1] = kept;
      std::fill(row, row + cols, Scalar(0));
      for (Index j = 0; j < kept; ++j) row[latent[j]] = value[j];
    }
    pack_slots(ws.active, k);
    pack_slots(ws.auxiliary, aux_k);
  }

  // The k largest entries of row[0 .. cols), those that are positive, into
  // latent and value; returns how many.
  static Index select_top_k_row(const Scalar* row, Index cols, Index k, Index* latent, Scalar* value) {
    thread_local std::vector<Index> chosen;
    detail::select_top_k(row, cols, k, chosen);
    return keep_positive(row, chosen, latent, value);
  }

  // The chosen latents whose entries of `row` are positive, into latent and
  // value; returns how many.
  static Index keep_positive(const Scalar* row, const std::vector<Index>& chosen, Index* latent, Scalar* value) {
    Index kept = 0;
    for (Index f : chosen)
      if (row[f] > Scalar(0)) {
        latent[kept] = f;
        value[kept] = row[f];
        ++kept;
      }
    return kept;
  }

  // The TopK screen's candidates (detail/gemm_screened_topk.hpp) for this
  // batch, with ws.codes holding the exact pre-activations at them: only the
  // entries that could be among a token's k largest (over the batch, the k·B
  // largest of all), or among its aux_k largest dead latents, are summed
  // exactly. Null where the screen does not apply (then pre_activations);
  // also when the dead latents are not in increasing order, where the
  // screen's order of ties would not be select_auxiliary_row's.
  template <typename Model, typename Derived>
  const detail::TopKCandidates* screened_candidates(const Model& model, const Eigen::MatrixBase<Derived>& X, Index k,
                                                    Index aux_k, bool over_batch, LossWorkspace<Scalar>& ws) const {
    const Index dead = aux_k > 0 ? static_cast<Index>(dead_latents.size()) : 0;
    if (std::adjacent_find(dead_latents.begin(), dead_latents.begin() + dead, std::greater_equal<Index>()) !=
        dead_latents.begin() + dead)
      return nullptr;
    detail::fold_encoder_bias(model, ws);
    thread_local detail::TopKCandidates candidates;
    if (!detail::screened_top_k_candidates(ws.encoder_bias.transpose(), nullptr, X, model.params().W_enc, ws.codes,
                                           {k, dead_latents.data(), dead, aux_k, over_batch}, candidates))
      return nullptr;
    return &candidates;
  }

  // select_per_token's selections and codes, on the screen: each among the
  // token's candidates. False, with nothing selected, where the screen does
  // not apply.
  template <typename Model, typename Derived>
  bool screened_select_per_token(const Model& model, const Eigen::MatrixBase<Derived>& X, Index k, Index aux_k,
                                 LossWorkspace<Scalar>& ws) const {
    const detail::TopKCandidates* const listed = screened_candidates(model, X, k, aux_k, false, ws);
    if (!listed) return false;
    const detail::TopKCandidates& candidates = *listed;
    k = std::min(k, ws.codes.cols());
    select_rows(k, aux_k, ws, [&](Index b, const Scalar* row, Index* kept_latent, Scalar* kept_value) {
      thread_local std::vector<Scalar> values;
      thread_local std::vector<Index> chosen;
      const Index first = candidates.row_start[static_cast<std::size_t>(b)];
      const Index count = candidates.row_start[static_cast<std::size_t>(b) + 1] - first;
      const Index* latent = candidates.latent.data() + first;
      detail::select_top_k_of_candidates(row, latent, count, k, values, chosen);
      const Index kept = keep_positive(row, chosen, kept_latent, kept_value);
      if (aux_k > 0) select_auxiliary_of_candidates(row, b, latent, count, aux_k, ws.auxiliary);
      return kept;
    });
    return true;
  }

  // select_over_batch's selection, select_auxiliary's and the dense codes, on
  // the screen: every entry that could be kept is a candidate, in row-major
  // order, so the cut, the count above it and the ties are the same.
  template <typename Model, typename Derived>
  bool screened_select_over_batch(const Model& model, const Eigen::MatrixBase<Derived>& X, Index k, Index aux_k,
                                  LossWorkspace<Scalar>& ws) const {
    const detail::TopKCandidates* const listed = screened_candidates(model, X, k, aux_k, true, ws);
    if (!listed) return false;
    const detail::TopKCandidates& candidates = *listed;
    const Batch<Scalar>& P = ws.codes;
    thread_local std::vector<Scalar> values;
    detail::resize_with_headroom(values, candidates.latent.size());
    for (Index b = 0; b < P.rows(); ++b)
      for (Index j = candidates.row_start[b]; j < candidates.row_start[b + 1]; ++j)
        values[static_cast<std::size_t>(j)] = P(b, candidates.latent[static_cast<std::size_t>(j)]);
    select_over_batch_from(values.data(), static_cast<Index>(candidates.latent.size()), k * P.rows(), P.rows(),
                           P.cols(), ws, [&](Index b, auto&& visit) {
                             for (Index j = candidates.row_start[b]; j < candidates.row_start[b + 1]; ++j)
                               visit(candidates.latent[static_cast<std::size_t>(j)], values[static_cast<std::size_t>(j)]);
                           });
    start_slots(ws.auxiliary, P.rows(), P.cols(), aux_k);
    if (aux_k > 0) {
      SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(P.size())))
      for (Index b = 0; b < P.rows(); ++b) {
        const Index first = candidates.row_start[static_cast<std::size_t>(b)];
        select_auxiliary_of_candidates(P.row(b).data(), b, candidates.latent.data() + first,
                                       candidates.row_start[static_cast<std::size_t>(b) + 1] - first, aux_k,
                                       ws.auxiliary);
      }
    }
    pack_slots(ws.auxiliary, aux_k);
    write_dense_codes(ws);
    return true;
  }

  // AuxK's selection among a row's candidates (latents, increasing): the
  // dead ones, in the dead list's order (increasing too), their aux_k
  // largest where positive, into row b's slot of `auxiliary`.
  void select_auxiliary_of_candidates(const Scalar* row, Index b, const Index* latent, Index count, Index aux_k,
                                      SparseCodes<Scalar>& auxiliary) const {
    thread_local std::vector<Scalar> values;
    thread_local std::vector<Index> dead_candidates, chosen;
    detail::resize_with_headroom(dead_candidates, static_cast<std::size_t>(count));
    Index dead_count = 0;
    for (Index j = 0; j < count; ++j)
      if (std::binary_search(dead_latents.begin(), dead_latents.end(), latent[j]))
        dead_candidates[static_cast<std::size_t>(dead_count++)] = latent[j];
    detail::select_top_k_of_candidates(row, dead_candidates.data(), dead_count, aux_k, values, chosen);
    auxiliary.row_start[static_cast<std::size_t>(b) + 1] =
        keep_positive(row, chosen, auxiliary.latent.data() + b * aux_k, auxiliary.value.data() + b * aux_k);
  }

  // The same among the dead latents only (AuxK), k of them at most, into
  // row b's slot of `auxiliary` (see start_slots).
  void select_auxiliary_row(const Scalar* row, Index b, Index k, SparseCodes<Scalar>& auxiliary) const {
    Index* latent = auxiliary.latent.data() + b * k;
    Scalar* value = auxiliary.value.data() + b * k;
    thread_local std::vector<Scalar> dead_values;
    thread_local std::vector<Index> chosen;
    const Index dead = static_cast<Index>(dead_latents.size());
    dead_values.resize(static_cast<std::size_t>(dead));
    for (Index j = 0; j < dead; ++j) dead_values[static_cast<std::size_t>(j)] = row[dead_latents[j]];
    detail::select_top_k(dead_values.data(), dead, k, chosen);
    Index kept = 0;
    for (Index j : chosen) {
      const Scalar v = dead_values[static_cast<std::size_t>(j)];
      if (v > Scalar(0)) {
        latent[kept] = dead_latents[j];
        value[kept] = v;
        ++kept;
      }
    }
    auxiliary.row_start[static_cast<std::size_t>(b) + 1] = kept;
  }

  // Rows selected in parallel write into `width` slots each (row b's at
  // b·width, its count at row_start[b + 1]); pack_slots then moves them
  // together in row order, so the result is the same for any thread count.
  static void start_slots(SparseCodes<Scalar>& codes, Index rows, Index cols, Index width) {
    codes.rows = rows;
    codes.cols = cols;
    codes.row_start.assign(static_cast<std::size_t>(rows) + 1, 0);
    codes.latent.resize(static_cast<std::size_t>(rows * width));
    codes.value.resize(static_cast<std::size_t>(rows * width));
  }

  static void pack_slots(SparseCodes<Scalar>& codes, Index width) {
    for (Index b = 0; b < codes.rows; ++b) {
      const Index from = b * width, to = codes.row_start[static_cast<std::size_t>(b)];
      const Index count = codes.row_start[static_cast<std::size_t>(b) + 1];
      for (Index j = 0; j < count && from != to; ++j) {
        codes.latent[static_cast<std::size_t>(to + j)] = codes.latent[static_cast<std::size_t>(from + j)];
        codes.value[static_cast<std::size_t>(to + j)] = codes.value[static_cast<std::size_t>(from + j)];
      }
      codes.row_start[static_cast<std::size_t>(b) + 1] = to + count;
    }
    codes.latent.resize(static_cast<std::size_t>(codes.row_start.back()));
    codes.value.resize(static_cast<std::size_t>(codes.row_start.back()));
  }

  // The `kept` largest positive entries of the whole batch (BatchTopK).
  static void select_over_batch(const Batch<Scalar>& P, Index kept, LossWorkspace<Scalar>& ws) {
    select_over_batch_from(P.data(), P.size(), kept, P.rows(), P.cols(), ws, [&P](Index b, auto&& visit) {
      for (Index f = 0; f < P.cols(); ++f) visit(f, P(b, f));
    });
  }

  // The same from `values`, n entries that include every one that could be
  // kept, visited row by row in increasing latent order by visit_row(b,
  // visit), which calls visit(f, v) for each (rows x cols in all).
  template <typename VisitRow>
  static void select_over_batch_from(const Scalar* values, Index n, Index kept, Index rows, Index cols,
                                     LossWorkspace<Scalar>& ws, VisitRow&& visit_row) {
    kept = std::min(kept, rows * cols);
    Scalar cut = Scalar(0);
    Index ties_wanted = 0;
    if (kept > 0) {
      // The kept-th largest entry when it is positive, else 0 (only positive entries are kept).
      cut = detail::kth_largest_positive(values, n, kept, ws.selection_scratch);
      Index above = 0;
      for (Index i = 0; i < n; ++i) above += values[i] > cut;
      ties_wanted = cut > Scalar(0) ? kept - above : 0;  // a zero cut keeps only positive entries
    }
    ws.active.reset(rows, cols);
    double smallest = std::numeric_limits<double>::infinity();
    for (Index b = 0; b < rows; ++b) {
      visit_row(b, [&](Index f, Scalar v) {
        const bool keep = kept > 0 && (v > cut || (v == cut && ties_wanted > 0 && v > Scalar(0)));
        if (!keep) return;
        if (v == cut && !(v > cut)) --ties_wanted;
        ws.active.push(f, v);
        smallest = std::min(smallest, static_cast<double>(v));
      });
      ws.active.end_row();
    }
    ws.smallest_kept_code = std::isfinite(smallest) ? smallest : 0.0;
  }

  // BatchTopK's AuxK: per token, the aux_k largest ReLU'd pre-activations
  // among the dead latents.
  void select_auxiliary(Index aux_k, LossWorkspace<Scalar>& ws) const {
    const Batch<Scalar>& P = ws.codes;
    start_slots(ws.auxiliary, P.rows(), P.cols(), aux_k);
    if (aux_k > 0) {
      [[maybe_unused]] const Index work = P.rows() * static_cast<Index>(dead_latents.size());
      SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(work)))
      for (Index b = 0; b < P.rows(); ++b) select_auxiliary_row(P.row(b).data(), b, aux_k, ws.auxiliary);
    }
    pack_slots(ws.auxiliary, aux_k);
  }

  // BatchTopK: ws.codes from the pre-activations to the dense codes of ws.active.
  static void write_dense_codes(LossWorkspace<Scalar>& ws) {
    SAE_OMP(parallel for schedule(static) if (detail::worth_parallel(ws.codes.size())))
    for (Index b = 0; b < ws.codes.rows(); ++b) {
      ws.codes.row(b).setZero();
      for (Index j = ws.active.row_start[b]; j < ws.active.row_start[b + 1]; ++j)
        ws.codes(b, ws.active.latent[j]) = ws.active.value[j];
    }
  }
};

}  // namespace sae
