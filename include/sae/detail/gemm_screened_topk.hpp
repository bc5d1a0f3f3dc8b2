// sae/detail/gemm_screened_topk.hpp: for TopK, the latents of each token
// that could be among its k largest pre-activations P = X W + start + bias,
// with product's bits at each of them; every other entry is ruled out by the
// bfloat16 bound of gemm_screened.hpp without its exact sum.
//
// A token's k largest entries are a few dozen of F. The screen first sums
// every tile in bfloat16, v = a + start + bias, and keeps v̂, v rounded to
// bfloat16 (half the bytes of a float to write and read back), which lies
// within
//   r = ‖w‖ P_x + ‖w − ŵ‖ Q_x + 2⁻²⁰ (|v̂| + 2 (|start| + |bias|))
//       + u_b (1 + 2⁻⁷) |v̂| + 2⁻¹²⁰
// of the kernel's float P: the distance of gemm_screened.hpp, a margin for
// the roundings of v, of P's own adds and of v̂ ± r, v̂'s own rounding (to
// nearest: at most u_b |v̂|) and its flushing of subnormals. With T the k-th
// largest lower bound v̂ − r of the token, k entries have P ≥ T; an entry
// whose upper bound v̂ + r is below T is below all k of them, so it is not
// among the k largest, whatever the ties. Nor, when its upper bound is at
// most 0, is it among the positive ones, the only ones TopK keeps. Every
// other entry, the candidates (upper bound ≥ T and > 0), is summed again
// exactly, 16 latents at a time in the kernel's order, as the ReLU screen
// does; selecting the k largest among the candidates then gives the
// positive entries of the k largest of the whole row, ties and all (see
// the tests). AuxK's k_aux largest among the dead latents are screened the
// same way, with their own T, when a subset is given; and BatchTopK's k·B
// largest of the whole batch with one T for all its tokens, the k·B-th
// largest of a pool of each token's lower bounds.
//
// The bound needs the whole row before it can rule anything out, so this is
// two passes: the bfloat16 sums of all tiles, then the exact groups, panel
// by panel. A fresh model's top k stand out of its row as a trained one's
// do, so this pays at initialisation too (unlike the ReLU screen): at D =
// 768 and k = 32 a token has about 58 candidates, 11% of the 16-latent
// groups of F = 8192 and 6% of 16384, and the screened product takes 0.63–
// 0.85 of the plain one's time (README, "Speed against PyTorch").
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "../core/topk.hpp"
#include "buffers.hpp"
#include "gemm_screened.hpp"

namespace sae {
namespace detail {

/// What the TopK screen must keep: each token's k largest entries (or, over
/// the batch, BatchTopK's k·B largest of them all), and, with a subset of
/// the latents (AuxK's dead latents, strictly increasing), each token's
/// subset_k largest among them.
struct TopKSelection {
  Index k = 0;
  const Index* subset = nullptr;
  Index subset_size = 0;
  Index subset_k = 0;
  bool over_batch = false;
};

/// Per token (row of C), the candidates: latents in increasing order, at
/// each of which C holds product's bits.
struct TopKCandidates {
  std::vector<Index> row_start;  ///< B + 1 offsets into latent
  std::vector<Index> latent;
};

/// The k largest of `count` candidates (latents, increasing) of a row whose
/// entries at them are exact: their latents, increasing, into `chosen`, as
/// select_top_k over the whole row would choose them wherever they are
/// positive (see the top of this file; `values` is scratch).
template <typename Scalar>
void select_top_k_of_candidates(const Scalar* row, const Index* latent, Index count, Index k,
                                std::vector<Scalar>& values, std::vector<Index>& chosen) {
  resize_with_headroom(values, static_cast<std::size_t>(count));
  for (Index j = 0; j < count; ++j) values[static_cast<std::size_t>(j)] = row[latent[j]];
  select_top_k(values.data(), count, std::min(k, count), chosen);
  for (Index& c : chosen) c = latent[c];
}

#if defined(SAE_SCREENED_RELU)

namespace gemm {

namespace screened {

/// Past this share of (token, 16-latent) groups summed again the screen
/// gives up and the caller runs the plain product (the bfloat16 pass is then
/// lost: at most 0.6 of a product).
inline constexpr double top_k_dense_share = 0.3;

/// The bound's margin per |v| + 2 (|start| + |bias|): 16 unit roundoffs.
inline constexpr float top_k_margin = 1.0f / (1 << 20);

/// Per latent, what its entries' radius needs (from LatentTerms).
struct LatentBounds {
  std::vector<float> magnitude, norm, error_norm;
  void resize(Index F) {
    for (auto* v : {&magnitude, &norm, &error_norm}) resize_with_headroom(*v, static_cast<std::size_t>(F) + 32);
  }
};

/// The calling thread's buffers for one call of screened_top_k, reused.
struct TopKScratch {
  LatentBounds latents;
  std::vector<std::uint16_t> subset_mask;  ///< per 16-latent group: its latents in the selection's subset
  std::vector<std::uint16_t> masks;        ///< per token and group: its candidates
  std::vector<std::uint16_t> approximations;  ///< v in bfloat16, per token of a chunk
  std::vector<float> levels, subset_levels;  ///< per token: its k-th (or over the batch, k·B-th) largest lower bound, its subset's
  std::vector<float> pool;                 ///< over the batch: each token's largest lower bounds
  std::vector<Index> counted;              ///< per token, then per group
  std::vector<Index> group_start;          ///< per group, into group_tokens
  std::vector<Index> group_tokens;         ///< the tokens each group is summed again for
};

/// One tile's bfloat16 sums plus start + bias, v, rounded to bfloat16 into
/// `approximations` (row stride lda, a multiple of 16 with room for whole
/// groups; streamed when `stream`): half the bytes of floats to write and to
/// read back, for a little more width in the bound (row_bounds).
inline void approximate_tile(Index depth, const std::uint32_t* xb_panel, const std::uint32_t* wb_panel,
                             const LatentTerms& terms, std::uint16_t* approximations, Index lda, int rows, int cols,
                             bool stream) {
  __m512 a[tile_tokens][2];
  bf16_tile(depth, xb_panel, wb_panel, a);
  for (int i = 0; i < rows; ++i)
    for (int h = 0; h < 2 && h * lanes < cols; ++h) {
      const __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_add_ps(a[i][h], terms.sum[h]));
      auto* at = reinterpret_cast<__m256i*>(approximations + i * lda + lanes * h);
      if (stream)
        _mm256_stream_si256(at, v);
      else
        _mm256_store_si256(at, v);
    }
}

/// row[0..n) = value[j] at latent[j] (count of them, increasing), 0
/// elsewhere, in one pass of whole groups, streamed when `stream` (see
/// store_group).
inline void write_sparse_row(float* row, Index n, const Index* latent, const float* value, Index count,
                             bool stream) {
  Index j = 0;
  for (Index f = 0; f < n; f += lanes) {
    const Index end = std::min<Index>(n, f + lanes);
    __m512 v = _mm512_setzero_ps();
    if (j < count && latent[j] < end) {
      alignas(64) float group[lanes] = {};
      for (; j < count && latent[j] < end; ++j) group[latent[j] - f] = value[j];
      v = _mm512_load_ps(group);
    }
    store_group(row + f, v, Simd::first(static_cast<int>(end - f)), stream);
  }
}

/// The lower and upper bounds of a token's F entries from its row of v
/// rounded to bfloat16 (v̂, within u_b |v̂| of v, rounded to nearest, or
/// 2⁻¹²⁶ where it was flushed to 0): v̂ ∓ (r + u_b (1 + 2⁻⁷) |v̂| + 2⁻¹²⁰);
/// ±infinity where the bound does not hold (a distance past the ceiling, or
/// v̂ not finite).
inline void row_bounds(const std::uint16_t* approximations, Index F, const TokenTerms& token,
                       const LatentBounds& latents, float ceiling, float* lower, float* upper) {
  const __m512 p = _mm512_set1_ps(token.p), q = _mm512_set1_ps(token.q);
  const __m512 margin = _mm512_set1_ps(top_k_margin), two = _mm512_set1_ps(2.0f);
  const __m512 rounding = _mm512_set1_ps(static_cast<float>(bf16_unit * (1 + 1.0 / 128)));
  const __m512 flushed = _mm512_set1_ps(std::ldexp(1.0f, -120));
  const __m512 infinity = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  for (Index f = 0; f < F; f += lanes) {
    const Mask m = Simd::first(static_cast<int>(std::min<Index>(lanes, F - f)));
    const __m512 value = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(approximations + f))), 16));
    const __m512 distance = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m, latents.norm.data() + f),
                                            _mm512_mul_ps(q, _mm512_maskz_loadu_ps(m, latents.error_norm.data() + f)));
    const __m512 size = _mm512_fmadd_ps(two, _mm512_maskz_loadu_ps(m, latents.magnitude.data() + f), _mm512_abs_ps(value));
    const __m512 radius = _mm512_add_ps(_mm512_fmadd_ps(size, margin, distance),
                                        _mm512_fmadd_ps(_mm512_abs_ps(value), rounding, flushed));
    // Held: a distance below the ceiling, and v̂ finite (|v̂| < ∞; NaN fails).
    const __mmask16 held = _mm512_cmp_ps_mask(distance, _mm512_set1_ps(ceiling), _CMP_LT_OQ) &
                           _mm512_cmp_ps_mask(_mm512_abs_ps(value), infinity, _CMP_LT_OQ);
    Simd::store(lower + f, m, _mm512_mask_blend_ps(held, _mm512_sub_ps(_mm512_setzero_ps(), infinity),
                                                   _mm512_sub_ps(value, radius)));
    Simd::store(upper + f, m, _mm512_mask_blend_ps(held, infinity, _mm512_add_ps(value, radius)));
  }
}

/// A token's candidates (upper bound > 0, and ≥ level or, for the subset's
/// latents, ≥ subset_level) as a mask per 16-latent group into masks;
/// returns how many candidates and how many groups hold one.
inline std::pair<Index, Index> candidate_masks(const float* upper, Index F, float level, float subset_level,
                                               const std::uint16_t* subset_mask, std::uint16_t* masks) {
  const __m512 zero = _mm512_setzero_ps(), main_level = _mm512_set1_ps(level);
  const __m512 subset_level_v = _mm512_set1_ps(subset_level);
  Index count = 0, groups = 0;
  for (Index g = 0; g * lanes < F; ++g) {
    const Mask m = Simd::first(static_cast<int>(std::min<Index>(lanes, F - g * lanes)));
    const __m512 u = _mm512_maskz_loadu_ps(m, upper + g * lanes);
    __mmask16 c = _mm512_mask_cmp_ps_mask(m, u, main_level, _CMP_GE_OQ);
    if (subset_mask) c |= _mm512_mask_cmp_ps_mask(m & subset_mask[g], u, subset_level_v, _CMP_GE_OQ);
    c &= _mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ);
    masks[g] = c;
    count += __builtin_popcount(c);
    groups += c != 0;
  }
  return {count, groups};
}

/// The k-th largest of values[0..n) (NaN skipped), or -infinity when there
/// are fewer than k.
inline float kth_largest_or_lowest(const float* values, Index n, Index k, std::vector<Index>& chosen) {
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  if (k <= 0 || k > n) return lowest;
  select_top_k(values, n, k, chosen);
  if (static_cast<Index>(chosen.size()) < k) return lowest;
  float smallest = std::numeric_limits<float>::infinity();
  for (Index i : chosen) smallest = std::min(smallest, values[i]);
  return smallest;
}

}  // namespace screened

/// Per token of X (B x D) the candidates of TopK (see the top of this file)
/// in `out`, and C (B x F, row-major, row stride ldc) holding product's bits
/// of P = X W + start + bias at each of them (and at the rest of their
/// 16-latent groups; every other entry is left as it was: read C only at
/// the candidates). False, with C and `out` anything, where the screen does
/// not apply (ReLU or thresholds in the epilogue, past max_depth inputs, or
/// BatchTopK's batch past one chunk) or would not pay (past dense_share of
/// the groups summed again): then run the plain product.
inline bool screened_top_k(StridedMatrix X, StridedMatrix W, float* C, Index ldc, Index B, Index D, Index F,
                           const Epilogue& epilogue, const TopKSelection& selection, TopKCandidates& out,
                           ScreenedCounts* counts = nullptr, Index shared_bytes_limit = max_shared_bytes,
                           double dense_share = screened::top_k_dense_share) {
  if (epilogue.relu || epilogue.threshold || D > screened::max_depth || selection.k <= 0) return false;
  out.row_start.assign(1, 0);
  out.latent.clear();
  const Index chunk = screened::token_chunk(D, F, shared_bytes_limit);
  if (selection.over_batch && B > chunk) return false;  // its level needs the whole batch at once
  const Index depth = D, pairs = (D + 1) / 2;
  const Index w_floats = tile_latents * depth, wb_words = tile_latents * pairs;
  const Index latent_panels = (F + tile_latents - 1) / tile_latents, groups_per_row = (F + lanes - 1) / lanes;
  int threads = 1;
#if defined(_OPENMP)
  threads = omp_get_max_threads();
#endif
  const Index split_block =
      panels_per_block(latent_panels, std::max<Index>(1, latent_block_bytes / (Index(sizeof(float)) * w_floats)),
                       threads);
  const Index split_blocks = (latent_panels + split_block - 1) / split_block;
  // Each candidate takes a group of its own while they are few: past the
  // share, before any work, when the selections alone would fill it (AuxK's
  // k_aux largest of many dead latents).
  const Index selected = std::min(selection.k, F) + std::min(selection.subset_k, selection.subset_size);
  if (static_cast<double>(std::min(selected, groups_per_row)) > dense_share * static_cast<double>(groups_per_row))
    return false;
  const float ceiling = screened::distance_ceiling(depth);
  const Index lda = groups_per_row * lanes, chunk_rows = std::min(B, chunk);
  // Approximations beyond the caches are written around them (read once, later).
  const bool stream = Index(sizeof(std::uint16_t)) * chunk_rows * lda >= screened::streamed_output_bytes;

  // (References, not thread_local names, inside the parallel regions: there
  // each thread would see its own.)
  thread_local screened::TopKScratch scratch_storage;
  screened::TopKScratch& scratch = scratch_storage;
  screened::LatentBounds& latents = scratch.latents;
  std::vector<std::uint16_t>&subset_mask = scratch.subset_mask, &masks = scratch.masks;
  std::vector<float>&levels = scratch.levels, &subset_levels = scratch.subset_levels, &pool = scratch.pool;
  std::vector<Index>&counted = scratch.counted, &group_start = scratch.group_start, &group_tokens = scratch.group_tokens;
  latents.resize(F);
  resize_with_headroom(scratch.approximations, static_cast<std::size_t>(chunk_rows * lda) + 32);
  const auto address = reinterpret_cast<std::uintptr_t>(scratch.approximations.data());
  std::uint16_t* const approximations = reinterpret_cast<std::uint16_t*>((address + 63) & ~std::uintptr_t(63));
  subset_mask.assign(static_cast<std::size_t>(groups_per_row), 0);
  for (Index j = 0; j < selection.subset_size; ++j)
    subset_mask[static_cast<std::size_t>(selection.subset[j] / lanes)] |=
        static_cast<std::uint16_t>(1u << (selection.subset[j] % lanes));

  for (Index s0 = 0; s0 < B; s0 += chunk) {
    const Index rows = std::min(chunk, B - s0);
    const StridedMatrix Xs{X.at(s0, 0), X.row_stride, X.col_stride};
    float* const Cs = C + s0 * ldc;
    const Index token_panels = (rows + tile_tokens - 1) / tile_tokens;
    const screened::TokenSide tokens = screened::pack_token_side(Xs, rows, depth);
    const Index group_panels = std::max<Index>(1, token_group_bytes / (Index(sizeof(float)) * tokens.x_floats));

    // Pass 1: every tile's bfloat16 sums, and each latent's terms of the bound.
    SAE_OMP(parallel if (worth_parallel(rows * depth * F / 64)))
    {
      thread_local std::vector<float> w_storage;
      thread_local std::vector<std::uint32_t> wb_storage;
      thread_local std::vector<screened::LatentTerms> terms_storage;
      float* const panel = aligned_buffer(w_storage, w_floats);
      std::uint32_t* const own_bf16 = aligned_buffer(wb_storage, split_block * wb_words);
      resize_with_headroom(terms_storage, static_cast<std::size_t>(split_block));
      SAE_OMP(for schedule(dynamic))
      for (Index block = 0; block < split_blocks; ++block) {
        const Index q0 = block * split_block, q1 = std::min(latent_panels, q0 + split_block);
        for (Index q = q0; q < q1; ++q) {
          const Index f0 = q * tile_latents;
          pack_latent_panel(W, F, f0, 0, depth, panel);
          screened::to_bf16_pairs(panel, tile_latents, depth, own_bf16 + (q - q0) * wb_words);
          screened::LatentTerms& terms = terms_storage[static_cast<std::size_t>(q - q0)];
          terms = screened::latent_terms(panel, F, f0, depth, epilogue);
          for (int h = 0; h < 2; ++h) {
            _mm512_storeu_ps(latents.magnitude.data() + f0 + lanes * h, terms.magnitude[h]);
            _mm512_storeu_ps(latents.norm.data() + f0 + lanes * h, terms.norm[h]);
            _mm512_storeu_ps(latents.error_norm.data() + f0 + lanes * h, terms.error_norm[h]);
          }
        }
        for (Index g0 = 0; g0 < token_panels; g0 += group_panels)
          for (Index q = q0; q < q1; ++q)
            for (Index t = g0; t < std::min(token_panels, g0 + group_panels); ++t) {
              const Index t0 = t * tile_tokens, f0 = q * tile_latents;
              screened::approximate_tile(depth, tokens.xb + t * tokens.xb_words, own_bf16 + (q - q0) * wb_words,
                                         terms_storage[static_cast<std::size_t>(q - q0)],
                                         approximations + t0 * lda + f0, lda,
                                         static_cast<int>(std::min<Index>(tile_tokens, rows - t0)),
                                         static_cast<int>(std::min<Index>(tile_latents, F - f0)), stream);
            }
      }
      if (stream) _mm_sfence();  // the streamed approximations are in memory before the threads join
    }

    // Each token's candidates, as a mask per 16-latent group, counted. Its
    // levels come from its own bounds; over the batch (BatchTopK) the main
    // level is the k·B-th largest of a pool of pool_width lower bounds from
    // each token (no more than the k·B-th largest of them all, so it rules
    // out no less safely), and the masks wait for it.
    masks.resize(static_cast<std::size_t>(rows * groups_per_row));
    counted.resize(static_cast<std::size_t>(rows));
    levels.resize(static_cast<std::size_t>(rows));
    subset_levels.resize(static_cast<std::size_t>(rows));
    const Index pool_width = std::min(F, std::max<Index>(4 * selection.k, F / 32));
    if (selection.over_batch) resize_with_headroom(pool, static_cast<std::size_t>(rows * pool_width));
    const std::uint16_t* const subset_groups = selection.subset_k > 0 ? subset_mask.data() : nullptr;
    Index needed_groups = 0;
    for (int pass = selection.over_batch ? 0 : 1; pass < 2; ++pass) {
      SAE_OMP(parallel for schedule(static) reduction(+ : needed_groups) if (worth_parallel(rows * F)))
      for (Index b = 0; b < rows; ++b) {
        thread_local std::vector<float> lower, upper, subset_lower;
        thread_local std::vector<Index> chosen;
        resize_with_headroom(lower, static_cast<std::size_t>(F));
        resize_with_headroom(upper, static_cast<std::size_t>(F));
        screened::row_bounds(approximations + b * lda, F, tokens.terms[b], latents, ceiling, lower.data(),
                             upper.data());
        if (pass == 0 || !selection.over_batch) {
          if (selection.over_batch) {
            // The maxima of pool_width groups (entry f to group f mod pool_width):
            // each a lower bound of its own entry, so the pool is a subset of them.
            float* const mine = pool.data() + b * pool_width;
            std::copy(lower.data(), lower.data() + pool_width, mine);
            for (Index f = pool_width; f < F; f += pool_width)
              for (Index g = 0; g < std::min(pool_width, F - f); ++g) mine[g] = std::max(mine[g], lower[f + g]);
          } else {
            levels[static_cast<std::size_t>(b)] =
                screened::kth_largest_or_lowest(lower.data(), F, std::min(selection.k, F), chosen);
          }
          float subset_level = std::numeric_limits<float>::infinity();
          if (subset_groups) {
            resize_with_headroom(subset_lower, static_cast<std::size_t>(selection.subset_size));
            for (Index j = 0; j < selection.subset_size; ++j) subset_lower[j] = lower[selection.subset[j]];
            subset_level = screened::kth_largest_or_lowest(subset_lower.data(), selection.subset_size,
                                                           std::min(selection.subset_k, selection.subset_size), chosen);
          }
          subset_levels[static_cast<std::size_t>(b)] = subset_level;
          if (pass == 0) continue;
        }
        const std::pair<Index, Index> found = screened::candidate_masks(
            upper.data(), F, levels[static_cast<std::size_t>(b)], subset_levels[static_cast<std::size_t>(b)],
            subset_groups, masks.data() + b * groups_per_row);
        counted[static_cast<std::size_t>(b)] = found.first;
        needed_groups += found.second;
      }
      if (pass == 0) {
        // The k·B-th largest of the pool (its -infinity pads included), for every token.
        const Index kept = std::min(selection.k * rows, rows * pool_width);
        std::nth_element(pool.begin(), pool.begin() + (kept - 1), pool.begin() + rows * pool_width,
                         std::greater<float>());
        std::fill(levels.begin(), levels.end(), pool[static_cast<std::size_t>(kept - 1)]);
      }
    }
    if (static_cast<double>(needed_groups) > dense_share * static_cast<double>(rows * groups_per_row)) return false;

    // The candidates listed; and which tokens each group is summed again for.
    const std::size_t first = out.row_start.size() - 1;
    out.row_start.resize(first + static_cast<std::size_t>(rows) + 1);
    group_start.assign(static_cast<std::size_t>(groups_per_row) + 1, 0);
    for (Index b = 0; b < rows; ++b) {
      out.row_start[first + static_cast<std::size_t>(b) + 1] =
          out.row_start[first + static_cast<std::size_t>(b)] + counted[static_cast<std::size_t>(b)];
      for (Index g = 0; g < groups_per_row; ++g) group_start[g + 1] += masks[b * groups_per_row + g] != 0;
    }
    for (Index g = 0; g < groups_per_row; ++g) group_start[g + 1] += group_start[g];
    resize_with_headroom(out.latent, static_cast<std::size_t>(out.row_start.back()));
    resize_with_headroom(group_tokens, static_cast<std::size_t>(group_start.back()));
    counted.assign(static_cast<std::size_t>(groups_per_row), 0);
    for (Index b = 0; b < rows; ++b) {
      Index* listed = out.latent.data() + out.row_start[first + static_cast<std::size_t>(b)];
      for (Index g = 0; g < groups_per_row; ++g) {
        unsigned mask = masks[b * groups_per_row + g];
        if (mask == 0) continue;
        group_tokens[group_start[g] + counted[g]++] = b;
        for (; mask != 0; mask &= mask - 1) *listed++ = g * lanes + __builtin_ctz(mask);
      }
    }

    // Pass 2: the exact sums, panel by panel, eight chains at a time.
    SAE_OMP(parallel if (worth_parallel(group_start.back() * depth)))
    {
      thread_local std::vector<float> w_storage;
      float* const panel = aligned_buffer(w_storage, w_floats);
      screened::PendingGroups pending[2];
      SAE_OMP(for schedule(dynamic, 4))
      for (Index q = 0; q < latent_panels; ++q) {
        const Index f0 = q * tile_latents, g0 = f0 / lanes;
        if (group_start[std::min(g0 + 2, groups_per_row)] == group_start[g0]) continue;
        pack_latent_panel(W, F, f0, 0, depth, panel);
        for (int h = 0; h < 2 && g0 + h < groups_per_row; ++h) {
          const Index g = g0 + h;
          const Mask mask = Simd::first(static_cast<int>(std::min<Index>(lanes, F - g * lanes)));
          for (Index j = group_start[g]; j < group_start[g + 1]; ++j) {
            const Index b = group_tokens[static_cast<std::size_t>(j)];
            screened::add_pending(depth, pending[h], panel + lanes * h, epilogue.at_column(g * lanes), mask,
                                  screened::token_inputs(Xs, tokens, b / tile_tokens * tile_tokens,
                                                         static_cast<int>(b % tile_tokens)),
                                  Xs.row_major() ? 1 : tile_tokens, Cs + b * ldc + g * lanes);
          }
        }
        for (auto& list : pending) screened::run_pending(depth, list);  // before the panel is packed over
      }
    }
    if (counts) {
      counts->groups += rows * groups_per_row;
      counts->recomputed += group_start.back();
    }
  }
  return true;
}

}  // namespace gemm

#endif  // SAE_SCREENED_RELU

}  // namespace detail
}  // namespace sae
