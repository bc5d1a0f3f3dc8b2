// sae/detail/gemm_screened.hpp: ReLU codes max(0, X W + start + bias), or
// JumpReLU's p · 1[p > θ], with the same bits as gemm::product, which skips
// the exact products of the entries a cheap bound proves silent. Built for
// CPUs with AVX-512 BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids).
//
// A trained SAE fires a few dozen of its F latents per token: almost every
// pre-activation is below zero (or below its JumpReLU threshold), and the
// code there is 0 whatever its exact value. Each tile of C is first summed
// in bfloat16 (vdpbf16ps: two products per lane per instruction, twice the
// FMA's rate), which gives every entry within a proven distance of the exact
// float chain. For t the kernel's chain of FMAs over k and a the bfloat16
// sum of x̂ ŵ (inputs rounded to nearest, |x̂_k| ≤ (1 + u_b) |x_k| with u_b =
// 2⁻⁸; the products exact, at most D roundings of the float sums),
//   |t − a| ≤ |t − x·w| + |x·w − x̂·ŵ| + |x̂·ŵ − a|
//           ≤ γ_D ‖x‖ ‖w‖ + ‖x − x̂‖ ‖w‖ + ‖x̂‖ ‖w − ŵ‖ + γ_D ‖x̂‖ ‖ŵ‖
//           ≤ ‖w‖ (‖x − x̂‖ + g ‖x‖) + (1 + u_b) ‖x‖ ‖w − ŵ‖,
// g = γ_D ((1 + u_b)² + 1), γ_D = D u / (1 − D u), u = 2⁻²⁴ (Higham,
// "Accuracy and Stability of Numerical Algorithms", §3.1, and Cauchy–Schwarz,
// as x·w − x̂·ŵ = (x − x̂)·w + x̂·(w − ŵ)). The rounding errors' norms are
// measured, not bounded by u_b ‖x‖: rounding to nearest leaves them at about
// 0.4 u_b ‖x‖, so the distance is under half of the 2 u_b ‖x‖ ‖w‖ that u_b
// alone would give (and the screen settles more groups; run W in the README).
// Flushed subnormals add an absolute slack (norms taken
// + 2⁻⁵⁰), and the bound's own float arithmetic a factor 1 + 2⁻¹². An entry
// whose bound a + start + bias + margin is below zero (or θ) is certainly
// below it in the exact sum, so it is stored as the +0 the kernel writes;
// every other group of 16 latents of a token is summed again in float, FMA
// by FMA in the kernel's order (one chain over all D: the kernel's depth
// blocks store and reload the running float, which changes nothing), and
// goes through the kernel's epilogue: the same bits. NaN and infinities make
// the bound NaN or infinite, never "below", so they take the exact path too.
//
// At about half the latents firing (a freshly initialised model) nearly every
// group needs the exact sum, which would cost 1.5 times the plain kernel: each
// thread watches the share it recomputes and, past `dense_share`, runs its
// remaining tiles on the plain micro-kernel. The bits do not depend on which
// tiles were screened.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "gemm.hpp"

#if defined(SAE_GEMM_KERNEL_AVX512) && defined(__AVX512BF16__) && !defined(SAE_NO_SCREENED_RELU)
#define SAE_SCREENED_RELU 1
#endif

namespace sae {
namespace detail {

#if defined(SAE_SCREENED_RELU)

namespace gemm {
namespace screened {

/// Up to this many inputs: the absolute slack below covers D flushed subnormals.
inline constexpr Index max_depth = 16384;
/// Share of a thread's 16-latent groups summed again above which it stops screening.
inline constexpr double dense_share = 0.35;
/// Tiles a thread screens before it judges that share.
inline constexpr Index trial_tiles = 16;
/// Codes of at least this many bytes (beyond the caches) have their settled
/// zeros written with streaming stores, which skip reading each line first:
/// an encode of 4096 tokens into 16384 latents 10% faster (sae_bench, Zen 5).
inline constexpr Index streamed_output_bytes = Index(64) << 20;

/// u_b, the unit roundoff of bfloat16.
inline constexpr double bf16_unit = 1.0 / 256;
/// The bound's inflation for its own float arithmetic.
inline constexpr double bound_growth = 1.0 + 1.0 / 4096;

/// g = γ_D ((1 + u_b)² + 1), the two float sums' share of the distance per ‖x‖ ‖w‖.
inline double chain_factor(Index depth) {
  const double u = std::ldexp(1.0, -24);
  const double gamma = depth * u / (1.0 - depth * u);
  return gamma * ((1 + bf16_unit) * (1 + bf16_unit) + 1);
}

/// The distance's ceiling, g 2¹²⁰: below it (and the distance is at least
/// g ‖x‖ ‖w‖) no sum, float or bfloat16, can overflow; a NaN or infinite
/// input fails the test too.
inline float distance_ceiling(Index depth) { return static_cast<float>(std::ldexp(chain_factor(depth), 120)); }

/// Tokens per call of a screen: their panels within shared_bytes_limit, and
/// no more than the latents (so that the threads, which split the latents,
/// have enough to share); whole tiles.
inline Index token_chunk(Index depth, Index F, Index shared_bytes_limit) {
  return std::max<Index>(
      tile_tokens, std::min(shared_bytes_limit / (Index(sizeof(float)) * depth), F) / tile_tokens * tile_tokens);
}

/// v − v̂: what rounding to bfloat16 (as to_bf16_pairs does) takes off each lane (exact in float).
inline __m512 bf16_rounding_error(__m512 v) {
  const __m512i rounded = _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v)), 16);
  return _mm512_sub_ps(v, _mm512_castsi512_ps(rounded));
}

/// Per lane of a packed panel, over `depth` k-steps: float upper bounds of
/// the Euclidean norm and of the bfloat16 rounding errors' norm, each plus
/// 2⁻⁵⁰ (the subnormal slack), from one pass over the panel.
struct PanelNorms {
  __m512 norm;
  __m512 error_norm;
};
inline PanelNorms panel_norms(const float* panel, Index width, Index depth, int lane0) {
  __m512 sum = _mm512_setzero_ps(), error_sum = _mm512_setzero_ps();
  const Mask lanes16 = Simd::first(static_cast<int>(width - lane0));
  for (Index k = 0; k < depth; ++k) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes16, panel + k * width + lane0);
    const __m512 e = bf16_rounding_error(v);
    sum = _mm512_fmadd_ps(v, v, sum);
    error_sum = _mm512_fmadd_ps(e, e, error_sum);
  }
  // A float sum of D squares is within γ_D of the exact one; sqrt adds u.
  const float grow = static_cast<float>(1.0 + (static_cast<double>(depth) + 4) * std::ldexp(1.0, -23));
  const auto upper_norm = [grow](__m512 squares) {
    const __m512 norm = _mm512_mul_ps(_mm512_sqrt_ps(_mm512_mul_ps(squares, _mm512_set1_ps(grow))),
                                      _mm512_set1_ps(1.0f + std::ldexp(1.0f, -20)));
    return _mm512_add_ps(norm, _mm512_set1_ps(std::ldexp(1.0f, -50)));
  };
  return {upper_norm(sum), upper_norm(error_sum)};
}

/// Pairs (k even, k odd) of a float panel, `width` floats per k-step, as
/// bfloat16 pairs in one 32-bit lane each (k even in the low half):
/// `width` lanes per pair of k-steps; an odd depth pairs its last with 0.
inline void to_bf16_pairs(const float* panel, Index width, Index depth, std::uint32_t* out) {
  for (Index kp = 0; kp < (depth + 1) / 2; ++kp) {
    const float* even = panel + 2 * kp * width;
    const bool has_odd = 2 * kp + 1 < depth;
    for (Index j = 0; j < width; j += 16) {
      const Mask m = Simd::first(static_cast<int>(width - j));
      const __m512 e = _mm512_maskz_loadu_ps(m, even + j);
      const __m512 o = has_odd ? _mm512_maskz_loadu_ps(m, even + width + j) : _mm512_setzero_ps();
      const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(e));
      const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(o));
      _mm512_mask_storeu_epi32(out + kp * width + j, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
}

/// Per latent of a tile: the bias as the bound adds it, the level a code
/// must exceed, and the magnitudes the bound's own roundings scale with.
struct LatentTerms {
  __m512 sum[2];        ///< start + bias (float), or 0
  __m512 threshold[2];  ///< JumpReLU's θ, or ReLU's 0
  __m512 magnitude[2];  ///< |start| + |bias| + |θ|
  __m512 norm[2];        ///< ‖w‖
  __m512 error_norm[2];  ///< ‖w − ŵ‖
};

/// Per token, the factors of the distance P ‖w‖ + Q ‖w − ŵ‖ (above).
struct TokenTerms {
  float p;  ///< (‖x − x̂‖ + g ‖x‖) (1 + 2⁻¹²)
  float q;  ///< (1 + u_b) ‖x‖ (1 + 2⁻¹²)
};

/// The terms of the 32 latents of a packed panel from latent f0 (of F).
inline LatentTerms latent_terms(const float* panel, Index F, Index f0, Index depth, const Epilogue& epilogue) {
  LatentTerms terms;
  for (int h = 0; h < 2; ++h) {
    const Mask mask = Simd::first(static_cast<int>(F - f0) - lanes * h);
    __m512 sum = _mm512_setzero_ps(), magnitude = _mm512_setzero_ps(), threshold = _mm512_setzero_ps();
    for (const float* r : {epilogue.start, epilogue.bias}) {
      if (!r) continue;
      const __m512 v = _mm512_maskz_loadu_ps(mask, r + f0 + lanes * h);
      sum = _mm512_add_ps(sum, v);
      magnitude = _mm512_add_ps(magnitude, _mm512_abs_ps(v));
    }
    if (epilogue.threshold) {
      threshold = _mm512_maskz_loadu_ps(mask, epilogue.threshold + f0 + lanes * h);
      magnitude = _mm512_add_ps(magnitude, _mm512_abs_ps(threshold));
    }
    terms.sum[h] = sum;
    terms.threshold[h] = threshold;
    terms.magnitude[h] = magnitude;
    const PanelNorms half_terms = panel_norms(panel, tile_latents, depth, lanes * h);
    terms.norm[h] = half_terms.norm;
    terms.error_norm[h] = half_terms.error_norm;
  }
  return terms;
}

/// The shared side of a screened product: every token panel of X in float
/// (x_floats = tile_tokens·D apart) and in bfloat16 pairs (xb_words apart),
/// and each token's factors of the distance. The calling thread's buffers,
/// valid until its next call.
struct TokenSide {
  const float* x;
  const std::uint32_t* xb;
  const TokenTerms* terms;
  Index x_floats, xb_words;
};

inline TokenSide pack_token_side(StridedMatrix X, Index B, Index depth) {
  const Index token_panels = (B + tile_tokens - 1) / tile_tokens;
  const Index x_floats = tile_tokens * depth, xb_words = tile_tokens * ((depth + 1) / 2);
  const double chain = chain_factor(depth);
  thread_local std::vector<float> x_storage;
  thread_local std::vector<std::uint32_t> xb_storage;
  thread_local std::vector<TokenTerms> token_storage;
  float* const x_packed = aligned_buffer(x_storage, token_panels * x_floats);
  resize_with_headroom(xb_storage, static_cast<std::size_t>(token_panels * xb_words) + 16);
  resize_with_headroom(token_storage, static_cast<std::size_t>(token_panels * tile_tokens));
  std::uint32_t* const xb_packed = xb_storage.data();
  TokenTerms* const token_terms = token_storage.data();
  SAE_OMP(parallel for schedule(static) if (worth_parallel(token_panels * x_floats)))
  for (Index t = 0; t < token_panels; ++t) {
    float* panel = x_packed + t * x_floats;
    pack_token_panel(X, B, t * tile_tokens, 0, depth, panel);
    to_bf16_pairs(panel, tile_tokens, depth, xb_packed + t * xb_words);
    const PanelNorms panel_terms = panel_norms(panel, tile_tokens, depth, 0);
    alignas(64) float norms[16], errors[16];
    _mm512_store_ps(norms, panel_terms.norm);
    _mm512_store_ps(errors, panel_terms.error_norm);
    for (int i = 0; i < tile_tokens; ++i)
      token_terms[t * tile_tokens + i] = {static_cast<float>((errors[i] + chain * norms[i]) * bound_growth),
                                          static_cast<float>((1 + bf16_unit) * norms[i] * bound_growth)};
  }
  return {x_packed, xb_packed, token_terms, x_floats, xb_words};
}

/// Where an exact sum reads token i of the tile at t0: a row-major X's row
/// (x_step 1), else the packed panel's column (x_step tile_tokens).
inline const float* token_inputs(StridedMatrix X, const TokenSide& tokens, Index t0, int i) {
  return X.row_major() ? X.at(t0 + i, 0) : tokens.x + (t0 / tile_tokens) * tokens.x_floats + i;
}

/// What one thread counts to decide whether screening pays.
struct ScreenTally {
  Index tiles = 0;
  Index groups = 0;      ///< 16-latent groups of a token seen
  Index recomputed = 0;  ///< of them summed again exactly
  bool dense = false;    ///< past dense_share: plain micro-kernel from here on
  void judge() {
    if (tiles >= trial_tiles && static_cast<double>(recomputed) > dense_share * static_cast<double>(groups))
      dense = true;
  }
};

/// (token, 16 latents) groups the bound could not settle, all of the same
/// 16 latents, waiting for their exact sums: run eight at a time, so that
/// eight independent chains of FMAs fill the pipelines (one chain alone waits
/// out each FMA's latency).
struct PendingGroups {
  const float* w = nullptr;  ///< the latents' lanes in their packed panel (stride tile_latents)
  Epilogue epilogue;         ///< the epilogue at these latents
  Mask mask = 0;             ///< which of the 16 latents are inside C
  const float* x[8];             ///< each token's inputs, x_step floats apart
  Index x_step = 1;
  float* c[8];                   ///< where its 16 codes go
  int count = 0;
};

/// The exact sums of N groups side by side, each as micro_kernel sums it
/// (from 0, FMA by FMA over k), then the epilogue, stored.
template <int N>
inline void exact_groups(Index depth, const PendingGroups& g) {
  Vec c[N];
  const float* x[N];
  for (int n = 0; n < N; ++n) {
    c[n] = Simd::zero();
    x[n] = g.x[n];
  }
  // (x_step is 1 for a row-major X: each chain reads its token's row, a
  // cache line per 16 inputs; a token's column of a packed panel would cost
  // a line for every input or two.)
  for (Index k = 0; k < depth; ++k) {
    const Vec w = Simd::load_aligned(g.w + k * tile_latents);
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) c[n] = Simd::fmadd(Simd::broadcast(x[n][k * g.x_step]), w, c[n]);
  }
  const Vec theta = g.epilogue.threshold ? Simd::load(g.mask, g.epilogue.threshold) : Simd::zero();
  for (int n = 0; n < N; ++n) {
    for (const float* r : {g.epilogue.start, g.epilogue.bias})
      if (r) c[n] = Simd::add(c[n], Simd::load(g.mask, r));
    if (g.epilogue.relu) c[n] = Simd::relu(c[n]);
    if (g.epilogue.threshold) c[n] = Simd::jump(c[n], theta);
    Simd::store(g.c[n], g.mask, c[n]);
  }
}

/// Runs what is pending (any count up to 8).
inline void run_pending(Index depth, PendingGroups& pending) {
  switch (pending.count) {
    case 8: exact_groups<8>(depth, pending); break;
    case 7: exact_groups<7>(depth, pending); break;
    case 6: exact_groups<6>(depth, pending); break;
    case 5: exact_groups<5>(depth, pending); break;
    case 4: exact_groups<4>(depth, pending); break;
    case 3: exact_groups<3>(depth, pending); break;
    case 2: exact_groups<2>(depth, pending); break;
    case 1: exact_groups<1>(depth, pending); break;
    default: break;
  }
  pending.count = 0;
}

/// Adds a group of the latents at w (with their epilogue and mask),
/// first running what is pending for other latents or when eight wait.
inline void add_pending(Index depth, PendingGroups& pending, const float* w, const Epilogue& epilogue, Mask mask,
                        const float* x, Index x_step, float* c) {
  if (pending.count > 0 && pending.w != w) run_pending(depth, pending);
  if (pending.count == 0) {
    pending.w = w;
    pending.epilogue = epilogue;
    pending.mask = mask;
    pending.x_step = x_step;
  }
  pending.x[pending.count] = x;
  pending.c[pending.count] = c;
  if (++pending.count == 8) run_pending(depth, pending);
}

/// Stores v at c (16 floats, those of `valid`), with a streaming store when
/// `stream` and it can (a whole aligned group): for rows beyond the caches,
/// read again only after they have left them.
inline void store_group(float* c, __m512 v, Mask valid, bool stream) {
  if (stream && valid == 0xFFFF && (reinterpret_cast<std::uintptr_t>(c) & 63) == 0)
    _mm512_stream_ps(c, v);
  else
    Simd::store(c, valid, v);
}

/// A tile's bfloat16 sums a = x̂ ŵ (tile_tokens x tile_latents, as two
/// registers per token) from its token and latent panels in bfloat16 pairs.
inline void bf16_tile(Index depth, const std::uint32_t* xb_panel, const std::uint32_t* wb_panel,
                      __m512 a[tile_tokens][2]) {
  for (int i = 0; i < tile_tokens; ++i) a[i][0] = a[i][1] = _mm512_setzero_ps();
  const Index pairs = (depth + 1) / 2;
#pragma GCC unroll 2
  for (Index kp = 0; kp < pairs; ++kp) {
    const __m512bh w0 = (__m512bh)_mm512_load_si512(wb_panel + kp * tile_latents);
    const __m512bh w1 = (__m512bh)_mm512_load_si512(wb_panel + kp * tile_latents + lanes);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(xb_panel[kp * tile_tokens + i]));
      a[i][0] = _mm512_dpbf16_ps(a[i][0], x, w0);
      a[i][1] = _mm512_dpbf16_ps(a[i][1], x, w1);
    }
  }
}

/// One tile, screened: the bfloat16 sums, the bound, zeros where it proves the
/// entry negative; every other (token, 16 latents) group joins `pending`
/// (one list per half of the tile's latents) for its exact sum, whose panels
/// must stay packed until run_pending.
inline void screened_tile(Index depth, const float* const* x_rows, Index x_step, const std::uint32_t* xb_panel,
                          const TokenTerms* token_terms,
                          const float* w_panel, const std::uint32_t* wb_panel, const LatentTerms& terms,
                          float distance_ceiling, const Epilogue& epilogue, float* c_tile, Index ldc, int rows,
                          int cols, bool stream_zeros, PendingGroups pending[2], ScreenTally& tally) {
  __m512 a[tile_tokens][2];
  bf16_tile(depth, xb_panel, wb_panel, a);
  const __m512 margin = _mm512_set1_ps(std::ldexp(1.0f, -21));
  const __m512 ceiling = _mm512_set1_ps(distance_ceiling);
  Index recomputed = 0;
  for (int i = 0; i < rows; ++i) {
    const __m512 p = _mm512_set1_ps(token_terms[i].p), q = _mm512_set1_ps(token_terms[i].q);
    for (int h = 0; h < 2 && h * lanes < cols; ++h) {
      const __m512 value = _mm512_add_ps(a[i][h], terms.sum[h]);
      const __m512 size = _mm512_add_ps(_mm512_abs_ps(a[i][h]), terms.magnitude[h]);
      const __m512 distance = _mm512_fmadd_ps(p, terms.norm[h], _mm512_mul_ps(q, terms.error_norm[h]));
      const __m512 bound = _mm512_fmadd_ps(size, margin, distance);
      const __mmask16 valid = Simd::first(cols - lanes * h);
      const __mmask16 in_range = _mm512_mask_cmp_ps_mask(valid, distance, ceiling, _CMP_LT_OQ);
      const __mmask16 silent = _mm512_mask_cmp_ps_mask(in_range, _mm512_add_ps(value, bound), terms.threshold[h],
                                                       _CMP_LT_OQ);
      float* const c = c_tile + i * ldc + lanes * h;
      if (silent == valid) {
        store_group(c, Simd::zero(), valid, stream_zeros);
        continue;
      }
      add_pending(depth, pending[h], w_panel + lanes * h, epilogue.at_column(lanes * h), valid, x_rows[i], x_step, c);
      ++recomputed;
    }
  }
  tally.groups += rows * (cols > lanes ? 2 : 1);
  tally.recomputed += recomputed;
  ++tally.tiles;
}

}  // namespace screened

/// How many (token, 16 latents) groups a call screened and how many of them
/// it summed again exactly (tiles past a thread's switch to the plain kernel
/// are in neither).
struct ScreenedCounts {
  Index groups = 0;
  Index recomputed = 0;
};

/// C (B x F, row-major, row stride ldc) = max(0, P) or JumpReLU's P · 1[P >
/// θ], P = X W + start + bias, the epilogue as in product, with product's
/// bits; false (C untouched) where it does not apply: without ReLU or
/// thresholds, or past max_depth inputs. Like product, it runs in chunks of
/// tokens when their panels would pass shared_bytes_limit, and also when
/// they outnumber the latents (so that the threads, which split the
/// latents, have enough to share).
inline bool screened_relu_product(StridedMatrix X, StridedMatrix W, float* C, Index ldc, Index B, Index D, Index F,
                                  const Epilogue& epilogue, ScreenedCounts* counts = nullptr,
                                  Index shared_bytes_limit = max_shared_bytes) {
  if (!(epilogue.relu || epilogue.threshold) || D > screened::max_depth) return false;
  const Index chunk = screened::token_chunk(D, F, shared_bytes_limit);
  if (B > chunk) {
    for (Index s0 = 0; s0 < B; s0 += chunk)
      screened_relu_product({X.at(s0, 0), X.row_stride, X.col_stride}, W, C + s0 * ldc, ldc, std::min(chunk, B - s0),
                            D, F, epilogue, counts, shared_bytes_limit);
    return true;
  }
  const Index token_panels = (B + tile_tokens - 1) / tile_tokens;
  const Index latent_panels = (F + tile_latents - 1) / tile_latents;
  const Index depth = D;
  int threads = 1;
#if defined(_OPENMP)
  threads = omp_get_max_threads();
#endif
  const Index w_floats = tile_latents * depth, wb_words = tile_latents * ((depth + 1) / 2);
  const screened::TokenSide tokens = screened::pack_token_side(X, B, depth);

  const Index split_panel_bytes = Index(sizeof(float)) * w_floats;
  const Index split_block =
      panels_per_block(latent_panels, std::max<Index>(1, latent_block_bytes / split_panel_bytes), threads);
  const Index split_blocks = (latent_panels + split_block - 1) / split_block;
  const Index group_panels = std::max<Index>(1, token_group_bytes / (Index(sizeof(float)) * tokens.x_floats));
  const float distance_ceiling = screened::distance_ceiling(depth);
  const bool stream_zeros = Index(sizeof(float)) * B * ldc >= screened::streamed_output_bytes;

  SAE_OMP(parallel if (worth_parallel(B * depth * F / 64)))
  {
    thread_local std::vector<float> w_storage;
    thread_local std::vector<std::uint32_t> wb_storage;
    thread_local std::vector<screened::LatentTerms> terms_storage;
    float* const own = aligned_buffer(w_storage, split_block * w_floats);
    std::uint32_t* const own_bf16 = aligned_buffer(wb_storage, split_block * wb_words);  // aligned loads
    resize_with_headroom(terms_storage, static_cast<std::size_t>(split_block));
    screened::ScreenTally tally;
    screened::PendingGroups pending[2];
    SAE_OMP(for schedule(dynamic))
    for (Index block = 0; block < split_blocks; ++block) {
      const Index q0 = block * split_block, q1 = std::min(latent_panels, q0 + split_block);
      for (Index q = q0; q < q1; ++q) {
        float* panel = own + (q - q0) * w_floats;
        pack_latent_panel(W, F, q * tile_latents, 0, depth, panel);
        if (tally.dense) continue;
        screened::to_bf16_pairs(panel, tile_latents, depth, own_bf16 + (q - q0) * wb_words);
        terms_storage[static_cast<std::size_t>(q - q0)] =
            screened::latent_terms(panel, F, q * tile_latents, depth, epilogue);
      }
      for (Index g0 = 0; g0 < token_panels; g0 += group_panels) {
        const Index g1 = std::min(token_panels, g0 + group_panels);
        for (Index p = q0; p < q1; ++p)
          for (Index t = g0; t < g1; ++t) {
            const Index t0 = t * tile_tokens, f0 = p * tile_latents;
            const int rows = static_cast<int>(std::min<Index>(tile_tokens, B - t0));
            const int cols = static_cast<int>(std::min<Index>(tile_latents, F - f0));
            const float* x = tokens.x + t * tokens.x_floats;
            const float* w = own + (p - q0) * w_floats;
            if (tally.dense) {
              micro_kernel(depth, x, w, false, epilogue.at_column(f0), C + t0 * ldc + f0, ldc, rows, cols);
            } else {
              // The exact sums read a row-major X's rows, else the panel's columns.
              const float* x_rows[tile_tokens];
              for (int i = 0; i < rows; ++i) x_rows[i] = screened::token_inputs(X, tokens, t0, i);
              screened::screened_tile(depth, x_rows, X.row_major() ? 1 : tile_tokens, tokens.xb + t * tokens.xb_words,
                                      tokens.terms + t0, w, own_bf16 + (p - q0) * wb_words,
                                      terms_storage[static_cast<std::size_t>(p - q0)], distance_ceiling,
                                      epilogue.at_column(f0), C + t0 * ldc + f0, ldc, rows, cols, stream_zeros,
                                      pending, tally);
              tally.judge();
            }
          }
      }
      for (auto& list : pending) screened::run_pending(depth, list);  // before the panels are packed over
    }
    if (stream_zeros) _mm_sfence();  // the streamed zeros are in memory before the threads join
    if (counts) {
      SAE_OMP(critical)
      {
        counts->groups += tally.groups;
        counts->recomputed += tally.recomputed;
      }
    }
  }
  return true;
}

}  // namespace gemm

#endif  // SAE_SCREENED_RELU

}  // namespace detail
}  // namespace sae
