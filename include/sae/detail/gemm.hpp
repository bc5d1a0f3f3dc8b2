// sae/detail/gemm.hpp: sae's own float GEMM for AVX-512 or AVX2 with FMA,
// C = 1 startᵀ + X W, which float builds for such CPUs use for every dense
// product of a step.
//
// A dense training step is five GEMMs (encode, decode, and the decoder, code
// and encoder gradients), a sparse one keeps only the encoder's, and
// inference is that one too. Eigen 3.4's own GEMM reaches about half of the
// cores' FMA peak on them (AVX-512 on Zen 5, AVX2 on Zen 3); this kernel runs
// at OpenBLAS's speed (80-87% of the peak on both; README, "Speed against
// PyTorch") and does not depend on which kernels OpenBLAS picks. The two
// instruction sets share every line but the few in Simd below: register
// width (16 or 8 floats), and so the tile, 12 x 32 or 6 x 16. (On CPUs with
// AVX-512 BF16, ReLU's and JumpReLU's codes first try gemm_screened.hpp, and
// TopK's gemm_screened_topk.hpp, which give the same bits while skipping the
// entries they prove silent.)
// It is the textbook blocked GEMM
// (Goto and van de Geijn, "Anatomy of high-performance matrix
// multiplication", 2008), in the words of the encoder: C (B x F, row-major:
// tokens by latents) from X (B x D) and W (D x F), each of X and W either
// row- or column-major, so that the gradients' products (Xᵀ G and the like)
// need no transposed copies.
//   - The depth (D) is cut into blocks of at most 1024. Per block, the
//     smaller side is packed once and shared: X into panels of 12 tokens, or
//     W into panels of 32 latents (6 and 16 on AVX2), k-major, so the
//     micro-kernel broadcasts one token's value per FMA pair and loads W's
//     two vectors.
//   - Threads split the larger side: each packs its block of the other
//     operand (W's latents into a share of L3, or X's tokens into half of L2)
//     and sweeps the shared panels over it.
//   - The micro-kernel keeps a 12 x 32 tile of C in 24 zmm registers (6 x 16
//     in 12 ymm on AVX2) over the depth block, so every element of C is
//     written once per block, with its start value (and for ReLU's codes
//     b_enc and the clamp at zero, for JumpReLU's b_enc and the thresholds)
//     after the last.
// Each element of C is one chain of FMAs over k in order, then + start: the
// same bits for any thread count and any blocking of tokens and latents (the
// depth blocking depends on D alone, and a block reloads the running sum).
// Warm calls allocate nothing: the calling thread keeps the shared panels
// (the smaller side times a depth block, at most 16 MiB: beyond that the
// product runs in chunks) and each OpenMP thread its block (at most about
// 3 MiB).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "../config.hpp"
#include "buffers.hpp"
#include "parallel.hpp"

/// SAE_GEMM_KERNEL is defined when float products have sae's own kernel, for
/// AVX-512 or for AVX2 with FMA (SAE_GEMM_KERNEL_AVX512 or _AVX2 says which).
/// Define SAE_NO_GEMM_KERNEL (or its older name, SAE_NO_ENCODER_KERNEL) to
/// use Eigen's (or the BLAS's) GEMM instead.
#if !defined(SAE_NO_GEMM_KERNEL) && !defined(SAE_NO_ENCODER_KERNEL)
#if defined(__AVX512F__)
#define SAE_GEMM_KERNEL 1
#define SAE_GEMM_KERNEL_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#define SAE_GEMM_KERNEL 1
#define SAE_GEMM_KERNEL_AVX2 1
#endif
#endif

#if defined(SAE_GEMM_KERNEL)
#include <immintrin.h>
#endif

namespace sae {
namespace detail {

#if defined(SAE_GEMM_KERNEL)

namespace gemm {

#if defined(SAE_GEMM_KERNEL_AVX512)
/// One register of floats and what the kernel does with it: AVX-512.
struct Simd {
  using Vec = __m512;
  using Mask = __mmask16;  ///< which lanes a partial load or store touches
  static constexpr int width = 16;

  /// The first n lanes (none for n <= 0, all for n >= width).
  static Mask first(int n) { return static_cast<Mask>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(float x) { return _mm512_set1_ps(x); }
  static Vec load_aligned(const float* p) { return _mm512_load_ps(p); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  /// The masked lanes from p, zeros elsewhere; lanes outside the mask are not read.
  static Vec load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_aligned(float* p, Vec v) { _mm512_store_ps(p, v); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  /// max(0, c) with c second: a NaN passes through, as in Eigen's cwiseMax.
  static Vec relu(Vec c) { return _mm512_max_ps(_mm512_setzero_ps(), c); }
  /// JumpReLU: c > theta ? c : 0 (a NaN gives 0, as the comparison in C++).
  static Vec jump(Vec c, Vec theta) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, theta, _CMP_GT_OQ), c); }

  /// r[i] = column i of the 16 x 16 block whose rows were r[0..15]: four rounds
  /// of shuffles, each pairing registers at twice the distance of the last.
  static void transpose(Vec r[16]) {
    Vec t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
      for (int j = 0; j < 2; ++j) {
        const __m512d a = _mm512_castps_pd(t[i + j]), b = _mm512_castps_pd(t[i + j + 2]);
        r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
      }
    for (int i = 0; i < 16; i += 8)
      for (int j = 0; j < 4; ++j) {
        t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
        t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
      }
    for (int j = 0; j < 8; ++j) {
      r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
      r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
  }
};

inline constexpr int tile_tokens = 12;   ///< rows of C per micro-kernel call (broadcasts)
#else
/// One register of floats and what the kernel does with it: AVX2 with FMA.
/// Partial loads and stores use vmaskmovps, which, like AVX-512's masks,
/// neither reads nor writes the lanes outside the mask.
struct Simd {
  using Vec = __m256;
  using Mask = __m256i;  ///< which lanes a partial load or store touches (all bits set)
  static constexpr int width = 8;

  /// The first n lanes (none for n <= 0, all for n >= width).
  static Mask first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(float x) { return _mm256_set1_ps(x); }
  static Vec load_aligned(const float* p) { return _mm256_load_ps(p); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  static void store_aligned(float* p, Vec v) { _mm256_store_ps(p, v); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec relu(Vec c) { return _mm256_max_ps(_mm256_setzero_ps(), c); }
  static Vec jump(Vec c, Vec theta) { return _mm256_and_ps(_mm256_cmp_ps(c, theta, _CMP_GT_OQ), c); }

  /// r[i] = column i of the 8 x 8 block whose rows were r[0..7]: pairs of
  /// floats, then of doubles, then the 128-bit halves.
  static void transpose(Vec r[8]) {
    Vec t[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4)
      for (int j = 0; j < 2; ++j) {
        const __m256d a = _mm256_castps_pd(t[i + j]), b = _mm256_castps_pd(t[i + j + 2]);
        r[i + 2 * j] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, b));
        r[i + 2 * j + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, b));
      }
    for (int j = 0; j < 4; ++j) {
      t[j] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x20);
      t[j + 4] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x31);
    }
    for (int j = 0; j < 8; ++j) r[j] = t[j];
  }
};

inline constexpr int tile_tokens = 6;  ///< rows of C per micro-kernel call (broadcasts)
#endif
using Vec = Simd::Vec;
using Mask = Simd::Mask;
inline constexpr int lanes = Simd::width;
inline constexpr int tile_latents = 2 * lanes;  ///< columns of C per call (two registers)
static_assert(tile_tokens <= lanes, "a token panel's k-step is one partial register");

inline constexpr Index max_depth_block = 1024;  ///< inputs per pass over a tile
inline constexpr Index latent_block_bytes = Index(3) << 20;  ///< packed W per thread: a share of L3
inline constexpr Index token_group_bytes = Index(512) << 10;  ///< packed X per sweep: half of L2
inline constexpr Index max_shared_bytes = Index(16) << 20;  ///< the shared side's panels, at most

/// Below this many rows or columns of C Eigen's GEMM (a GEMV for one token)
/// is kept: the kernel packs all of the other operand, which costs it 2 ms for
/// one token at D = 768, F = 8192 against Eigen's 0.4, and ties at 8
/// (sae_bench, Zen 5).
inline constexpr Index min_side = 16;

/// A float matrix in memory: element (i, k) at data[i * row_stride + k *
/// col_stride], with one of the two strides 1 (row- or column-major).
struct StridedMatrix {
  const float* data;
  Index row_stride;
  Index col_stride;
  bool row_major() const { return col_stride == 1; }
  const float* at(Index i, Index k) const { return data + i * row_stride + k * col_stride; }
  StridedMatrix transposed() const { return {data, col_stride, row_stride}; }
};

/// What the last depth block does to each element of C after the products:
/// + start, then + bias, then max(0, ·) when `relu`, or JumpReLU's rule
/// p > θ ? p : 0 against a row of thresholds, in that order (the order of the
/// separate passes it replaces, so the same roundings). Null rows are skipped.
struct Epilogue {
  const float* start = nullptr;
  const float* bias = nullptr;
  bool relu = false;
  const float* threshold = nullptr;
  Epilogue at_column(Index f0) const {
    const auto column = [f0](const float* row) { return row ? row + f0 : nullptr; };
    return {column(start), column(bias), relu, column(threshold)};
  }
};

/// A reusable buffer of n 4-byte elements (floats, or the bfloat16 pairs of
/// gemm_screened.hpp) aligned to 64 bytes, growing with headroom so that warm
/// calls do not allocate.
template <typename T>
T* aligned_buffer(std::vector<T>& storage, Index n) {
  static_assert(sizeof(T) == 4, "16 elements of headroom are the 64 bytes of alignment");
  resize_with_headroom(storage, static_cast<std::size_t>(n) + 16);
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  return reinterpret_cast<T*>((address + 63) & ~std::uintptr_t(63));
}

/// C tile (rows x cols of at most tile_tokens x tile_latents, row stride ldc) = (accumulate ? C : 0)
/// + Σ_k x_k w_kᵀ over `depth` packed steps, then the epilogue (at this
/// tile's first column) after the last depth block.
inline void micro_kernel(Index depth, const float* x_panel, const float* w_panel, bool accumulate,
                         const Epilogue& epilogue, float* c_tile, Index ldc, int rows, int cols) {
  const bool full = rows == tile_tokens && cols == tile_latents;
  const Mask mask0 = Simd::first(cols), mask1 = Simd::first(cols - lanes);
  Vec c[tile_tokens][2];
#pragma GCC unroll 12
  for (int i = 0; i < tile_tokens; ++i) {
    if (accumulate && full) {
      c[i][0] = Simd::load(c_tile + i * ldc);
      c[i][1] = Simd::load(c_tile + i * ldc + lanes);
    } else if (accumulate && i < rows) {
      c[i][0] = Simd::load(mask0, c_tile + i * ldc);
      c[i][1] = Simd::load(mask1, c_tile + i * ldc + lanes);
    } else {
      c[i][0] = Simd::zero();
      c[i][1] = Simd::zero();
    }
  }
#pragma GCC unroll 2
  for (Index k = 0; k < depth; ++k) {
    const Vec w0 = Simd::load_aligned(w_panel + k * tile_latents);
    const Vec w1 = Simd::load_aligned(w_panel + k * tile_latents + lanes);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      const Vec x = Simd::broadcast(x_panel[k * tile_tokens + i]);
      c[i][0] = Simd::fmadd(x, w0, c[i][0]);
      c[i][1] = Simd::fmadd(x, w1, c[i][1]);
    }
  }
  for (const float* row : {epilogue.start, epilogue.bias}) {
    if (!row) continue;
    const Vec s0 = Simd::load(mask0, row), s1 = Simd::load(mask1, row + lanes);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      c[i][0] = Simd::add(c[i][0], s0);
      c[i][1] = Simd::add(c[i][1], s1);
    }
  }
  if (epilogue.relu) {
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      c[i][0] = Simd::relu(c[i][0]);
      c[i][1] = Simd::relu(c[i][1]);
    }
  }
  if (epilogue.threshold) {
    const Vec t0 = Simd::load(mask0, epilogue.threshold), t1 = Simd::load(mask1, epilogue.threshold + lanes);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      c[i][0] = Simd::jump(c[i][0], t0);
      c[i][1] = Simd::jump(c[i][1], t1);
    }
  }
  if (full) {
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      Simd::store(c_tile + i * ldc, c[i][0]);
      Simd::store(c_tile + i * ldc + lanes, c[i][1]);
    }
  } else {
    for (int i = 0; i < rows; ++i) {
      Simd::store(c_tile + i * ldc, mask0, c[i][0]);
      Simd::store(c_tile + i * ldc + lanes, mask1, c[i][1]);
    }
  }
}

/// Tokens [t0, t0 + tile_tokens) of X, inputs [k0, k0 + depth), k-major
/// (tile_tokens floats per input) into `panel`; tokens past B are zeros.
/// Column-major X has each input's tokens side by side (a copy); row-major X
/// moves steps of `lanes` inputs of the tile's rows through a register
/// transpose.
inline void pack_token_panel(StridedMatrix X, Index B, Index t0, Index k0, Index depth, float* panel) {
  const int valid = static_cast<int>(std::min<Index>(tile_tokens, B - t0));
  const Mask panel_lanes = Simd::first(tile_tokens);
  // A k-step is tile_tokens floats, less than a register. Each but the
  // panel's last is stored as a whole register, whose extra lanes the next
  // step's store overwrites: AVX2's masked store (vmaskmovps) is slow, many
  // cycles each on AMD's cores. The last stays inside the panel.
  const auto put = [&](Index k, Vec v) {
    if (k + 1 < depth)
      Simd::store(panel + k * tile_tokens, v);
    else
      Simd::store(panel + k * tile_tokens, panel_lanes, v);
  };
  if (!X.row_major()) {
    // Whole registers where the column has a register's tokens from t0.
    const bool whole = t0 + lanes <= B;
    const Mask mask = Simd::first(valid);
    for (Index k = 0; k < depth; ++k) put(k, whole ? Simd::load(X.at(t0, k0 + k)) : Simd::load(mask, X.at(t0, k0 + k)));
    return;
  }
  const float* rows[tile_tokens];
  for (int i = 0; i < valid; ++i) rows[i] = X.at(t0 + i, k0);
  Index k = 0;
  if (valid == tile_tokens) {
    for (; k + lanes <= depth; k += lanes) {
      Vec block[lanes];
      for (int i = 0; i < tile_tokens; ++i) block[i] = Simd::load(rows[i] + k);
      for (int i = tile_tokens; i < lanes; ++i) block[i] = Simd::zero();
      Simd::transpose(block);
      for (int i = 0; i < lanes; ++i) put(k + i, block[i]);
    }
  }
  for (; k < depth; ++k) {
    float* out = panel + k * tile_tokens;
    for (int i = 0; i < valid; ++i) out[i] = rows[i][k];
    for (int i = valid; i < tile_tokens; ++i) out[i] = 0.0f;
  }
}

/// Latents [f0, f0 + tile_latents) of W, inputs [k0, k0 + depth), k-major
/// (tile_latents floats per input) into the 64-byte aligned `panel`; latents
/// past F are zeros. Row-major W has each input's latents side by side (a
/// copy); column-major W (W_enc; W_decᵀ) moves lanes x lanes blocks through
/// registers, and the last inputs of a whole panel, or any of a partial one,
/// go one float at a time.
inline void pack_latent_panel(StridedMatrix W, Index F, Index f0, Index k0, Index depth, float* panel) {
  const int valid = static_cast<int>(std::min<Index>(tile_latents, F - f0));
  if (W.row_major()) {
    const Mask mask0 = Simd::first(valid), mask1 = Simd::first(valid - lanes);
    const bool whole = valid == tile_latents;
    for (Index k = 0; k < depth; ++k) {
      const float* in = W.at(k0 + k, f0);
      float* out = panel + k * tile_latents;
      Simd::store_aligned(out, whole ? Simd::load(in) : Simd::load(mask0, in));
      Simd::store_aligned(out + lanes, whole ? Simd::load(in + lanes) : Simd::load(mask1, in + lanes));
    }
    return;
  }
  const float* columns[tile_latents];
  for (int j = 0; j < valid; ++j) columns[j] = W.at(k0, f0 + j);
  Index k = 0;
  if (valid == tile_latents) {
    for (; k + lanes <= depth; k += lanes)
      for (int half = 0; half < 2; ++half) {
        Vec block[lanes];
        for (int j = 0; j < lanes; ++j) block[j] = Simd::load(columns[lanes * half + j] + k);
        Simd::transpose(block);
        for (int i = 0; i < lanes; ++i) Simd::store_aligned(panel + (k + i) * tile_latents + lanes * half, block[i]);
      }
  }
  for (; k < depth; ++k) {
    float* out = panel + k * tile_latents;
    for (int j = 0; j < valid; ++j) out[j] = columns[j][k];
    for (int j = valid; j < tile_latents; ++j) out[j] = 0.0f;
  }
}

/// Panels per block when `panels` are split into blocks of at most `most`
/// for `threads` threads: at least two blocks per thread while there are
/// panels enough, and a multiple of the threads, so that they end together.
inline Index panels_per_block(Index panels, Index most, int threads) {
  Index blocks = std::max((panels + most - 1) / most, std::min(panels, 2 * Index(threads)));
  blocks = (blocks + threads - 1) / threads * threads;
  blocks = std::max<Index>(1, std::min(blocks, panels));
  return (panels + blocks - 1) / blocks;
}

/// C (B x F, row-major, row stride ldc) = X W with X B x D and W D x F, and
/// the epilogue's rows (F floats each) and ReLU applied to each tile as it is
/// stored. B, D and F are at least 1.
inline void product(StridedMatrix X, StridedMatrix W, float* C, Index ldc, Index B, Index D, Index F,
                    const Epilogue& epilogue = {}, Index shared_bytes_limit = max_shared_bytes) {
  const Index token_panels = (B + tile_tokens - 1) / tile_tokens;
  const Index latent_panels = (F + tile_latents - 1) / tile_latents;
  const Index depth_blocks = (D + max_depth_block - 1) / max_depth_block;
  const Index depth_block = (D + depth_blocks - 1) / depth_blocks;
  int threads = 1;
#if defined(_OPENMP)
  threads = omp_get_max_threads();
#endif

  // The smaller side is packed whole per depth block and shared; the larger
  // is split into blocks, one thread's at a time: W's latents sized to a
  // share of L3 (and swept by groups of shared token panels sized to half of
  // L2), or X's tokens sized to half of L2.
  const bool share_tokens = B <= F;

  // When both sides are large (a batch of 65536 tokens into F = 16384), the
  // shared side is cut into chunks of at most shared_bytes_limit, each a
  // product of its own: the other side is packed once per chunk, and the
  // buffer, which the calling thread keeps, stays small. Same bits.
  const Index unit = share_tokens ? tile_tokens : tile_latents;
  const Index chunk =
      std::max(unit, shared_bytes_limit / (Index(sizeof(float)) * depth_block) / unit * unit);
  if ((share_tokens ? B : F) > chunk) {
    for (Index s0 = 0; s0 < (share_tokens ? B : F); s0 += chunk) {
      if (share_tokens)
        product({X.at(s0, 0), X.row_stride, X.col_stride}, W, C + s0 * ldc, ldc, std::min(chunk, B - s0), D, F,
                epilogue, shared_bytes_limit);
      else
        product(X, {W.at(0, s0), W.row_stride, W.col_stride}, C + s0, ldc, B, D, std::min(chunk, F - s0),
                epilogue.at_column(s0), shared_bytes_limit);
    }
    return;
  }
  const Index shared_panels = share_tokens ? token_panels : latent_panels;
  const Index shared_panel_width = share_tokens ? tile_tokens : tile_latents;
  const Index split_panels = share_tokens ? latent_panels : token_panels;
  const Index split_panel_width = share_tokens ? tile_latents : tile_tokens;
  const Index split_panel_bytes = Index(sizeof(float)) * split_panel_width * depth_block;
  const Index split_block = panels_per_block(
      split_panels, std::max<Index>(1, (share_tokens ? latent_block_bytes : token_group_bytes) / split_panel_bytes),
      threads);
  const Index split_blocks = (split_panels + split_block - 1) / split_block;
  const Index group_panels =
      std::max<Index>(1, token_group_bytes / (Index(sizeof(float)) * tile_tokens * depth_block));

  thread_local std::vector<float> shared_storage;
  float* const shared = aligned_buffer(shared_storage, shared_panels * shared_panel_width * depth_block);

  for (Index k0 = 0; k0 < D; k0 += depth_block) {
    const Index depth = std::min(depth_block, D - k0);
    const bool accumulate = k0 > 0;
    const bool last_block = k0 + depth == D;
    // Each micro-kernel call: token panel t from x, latent panel p from w.
    const auto tile = [&](Index t, const float* x, Index p, const float* w) {
      const Index t0 = t * tile_tokens, f0 = p * tile_latents;
      micro_kernel(depth, x, w, accumulate, last_block ? epilogue.at_column(f0) : Epilogue{}, C + t0 * ldc + f0, ldc,
                   static_cast<int>(std::min<Index>(tile_tokens, B - t0)),
                   static_cast<int>(std::min<Index>(tile_latents, F - f0)));
    };
    const Index shared_floats = shared_panel_width * depth, split_floats = split_panel_width * depth;

    SAE_OMP(parallel for schedule(static) if (worth_parallel(shared_panels * shared_floats)))
    for (Index s = 0; s < shared_panels; ++s) {
      if (share_tokens)
        pack_token_panel(X, B, s * tile_tokens, k0, depth, shared + s * shared_floats);
      else
        pack_latent_panel(W, F, s * tile_latents, k0, depth, shared + s * shared_floats);
    }

    SAE_OMP(parallel if (worth_parallel(B * depth * F / 64)))
    {
      thread_local std::vector<float> split_storage;
      float* const own = aligned_buffer(split_storage, split_block * split_panel_width * depth_block);
      SAE_OMP(for schedule(dynamic))
      for (Index block = 0; block < split_blocks; ++block) {
        const Index q0 = block * split_block, q1 = std::min(split_panels, q0 + split_block);
        for (Index q = q0; q < q1; ++q) {
          if (share_tokens)
            pack_latent_panel(W, F, q * tile_latents, k0, depth, own + (q - q0) * split_floats);
          else
            pack_token_panel(X, B, q * tile_tokens, k0, depth, own + (q - q0) * split_floats);
        }
        if (share_tokens) {
          // This block of latents, from L3, against groups of tokens in L2.
          for (Index g0 = 0; g0 < token_panels; g0 += group_panels) {
            const Index g1 = std::min(token_panels, g0 + group_panels);
            for (Index p = q0; p < q1; ++p)
              for (Index t = g0; t < g1; ++t) tile(t, shared + t * shared_floats, p, own + (p - q0) * split_floats);
          }
        } else {
          // This group of tokens, in L2, against every latent panel.
          for (Index p = 0; p < latent_panels; ++p)
            for (Index t = q0; t < q1; ++t) tile(t, own + (t - q0) * split_floats, p, shared + p * shared_floats);
        }
      }
    }
  }
}

}  // namespace gemm

#endif  // SAE_GEMM_KERNEL

}  // namespace detail
}  // namespace sae
