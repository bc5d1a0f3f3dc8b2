// sae/detail/encoder_gemm.hpp: products with the encoder's shapes,
// H = 1 startᵀ + X W (B x D times D x F into B x F), in float with AVX-512.
//
// The encoder GEMM is the one dense product left in a sparse training step and
// all of inference; the dense step's code gradient G_X̂ W_decᵀ has the same
// shapes. Eigen 3.4's own GEMM reaches about half of an AVX-512 core's FMA
// peak on them; this kernel, written for the layouts sae has (X row-major, W
// column-major as W_enc and W_decᵀ are, H row-major), runs at OpenBLAS's speed
// (80-84% of the peak on Zen 5; README, "Speed against PyTorch"), and does not
// depend on which kernels OpenBLAS picks. It is the textbook blocked GEMM
// (Goto and van de Geijn, "Anatomy of high-performance matrix
// multiplication", 2008):
//   - X is packed once into panels of 12 tokens, k-major, so the micro-kernel
//     broadcasts one token's value per FMA pair;
//   - each thread packs a block of W's columns (latents) into panels of 32,
//     k-major, sized to stay in a share of the L3 cache, and sweeps all tokens
//     over it in groups that stay in L2;
//   - the micro-kernel keeps a 12 x 32 tile of H in 24 zmm registers over the
//     whole depth (up to 1024 inputs, in blocks beyond that), so every element
//     of H is written once, already with its start value.
// Each element of H is one chain of FMAs over k in order, then + start: the
// same bits for any thread count and any blocking of tokens and latents (the
// depth blocking depends on D alone, and a block reloads the running sum).
// Warm calls allocate nothing: the calling thread keeps its packed X (as large
// as the largest batch so far, B x D floats) and each OpenMP thread its block
// of W (at most about 3 MiB).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "buffers.hpp"
#include "parallel.hpp"

#if defined(__AVX512F__) && !defined(SAE_NO_ENCODER_KERNEL)
#include <immintrin.h>
/// Defined when the encoder product has its own AVX-512 kernel (float only).
/// Define SAE_NO_ENCODER_KERNEL to use Eigen's (or the BLAS's) GEMM instead.
#define SAE_ENCODER_KERNEL 1
#endif

namespace sae {
namespace detail {

#if defined(SAE_ENCODER_KERNEL)

namespace encoder_gemm {

inline constexpr int tile_tokens = 12;   ///< rows of H per micro-kernel call (broadcasts)
inline constexpr int tile_latents = 32;  ///< columns of H per call (two zmm registers)
inline constexpr Index max_depth_block = 1024;  ///< inputs per pass over a tile
inline constexpr Index latent_block_bytes = Index(3) << 20;  ///< packed W per thread: a share of L3
inline constexpr Index token_group_bytes = Index(512) << 10;  ///< packed X per sweep: half of L2

/// Below this many tokens Eigen's GEMM (a GEMV for one token) is kept: the
/// kernel packs all of W for any batch, which costs it 2 ms for one token at
/// D = 768, F = 8192 against Eigen's 0.4, and ties at 8 (sae_bench, Zen 5).
inline constexpr Index min_tokens = 16;

/// A reusable buffer of n floats aligned to 64 bytes, growing with headroom
/// so that warm calls do not allocate.
inline float* aligned_buffer(std::vector<float>& storage, Index n) {
  resize_with_headroom(storage, static_cast<std::size_t>(n) + 16);
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  return reinterpret_cast<float*>((address + 63) & ~std::uintptr_t(63));
}

/// H tile (rows x cols of at most 12 x 32, row stride ldh) = (accumulate ? H : 0)
/// + Σ_k x_k w_kᵀ over `depth` packed steps, + start when `start` is given.
inline void micro_kernel(Index depth, const float* x_panel, const float* w_panel, bool accumulate, const float* start,
                         float* h, Index ldh, int rows, int cols) {
  const bool full = rows == tile_tokens && cols == tile_latents;
  const __mmask16 mask0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
  const __mmask16 mask1 = static_cast<__mmask16>(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
  __m512 c[tile_tokens][2];
#pragma GCC unroll 12
  for (int i = 0; i < tile_tokens; ++i) {
    if (accumulate && i < rows) {
      c[i][0] = _mm512_maskz_loadu_ps(mask0, h + i * ldh);
      c[i][1] = _mm512_maskz_loadu_ps(mask1, h + i * ldh + 16);
    } else {
      c[i][0] = _mm512_setzero_ps();
      c[i][1] = _mm512_setzero_ps();
    }
  }
#pragma GCC unroll 2
  for (Index k = 0; k < depth; ++k) {
    const __m512 w0 = _mm512_load_ps(w_panel + k * tile_latents);
    const __m512 w1 = _mm512_load_ps(w_panel + k * tile_latents + 16);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      const __m512 x = _mm512_set1_ps(x_panel[k * tile_tokens + i]);
      c[i][0] = _mm512_fmadd_ps(x, w0, c[i][0]);
      c[i][1] = _mm512_fmadd_ps(x, w1, c[i][1]);
    }
  }
  if (start) {
    const __m512 s0 = _mm512_maskz_loadu_ps(mask0, start), s1 = _mm512_maskz_loadu_ps(mask1, start + 16);
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      c[i][0] = _mm512_add_ps(c[i][0], s0);
      c[i][1] = _mm512_add_ps(c[i][1], s1);
    }
  }
  if (full) {
#pragma GCC unroll 12
    for (int i = 0; i < tile_tokens; ++i) {
      _mm512_storeu_ps(h + i * ldh, c[i][0]);
      _mm512_storeu_ps(h + i * ldh + 16, c[i][1]);
    }
  } else {
    for (int i = 0; i < rows; ++i) {
      _mm512_mask_storeu_ps(h + i * ldh, mask0, c[i][0]);
      _mm512_mask_storeu_ps(h + i * ldh + 16, mask1, c[i][1]);
    }
  }
}

/// Tokens [t·12, t·12 + 12) of X (row-major, row stride ldx), k-major, into
/// `panel`; rows past the batch are zeros. The loop runs along k so that the
/// panel is written in order, reading 12 rows side by side.
inline void pack_token_panel(const float* X, Index ldx, Index B, Index D, Index t, float* panel) {
  const float* rows[tile_tokens];
  const int valid = static_cast<int>(std::min<Index>(tile_tokens, B - t * tile_tokens));
  for (int i = 0; i < valid; ++i) rows[i] = X + (t * tile_tokens + i) * ldx;
  for (Index k = 0; k < D; ++k) {
    float* out = panel + k * tile_tokens;
    for (int i = 0; i < valid; ++i) out[i] = rows[i][k];
    for (int i = valid; i < tile_tokens; ++i) out[i] = 0.0f;
  }
}

/// r[i] = column i of the 16 x 16 block whose rows were r[0..15]: four rounds
/// of shuffles, each pairing registers at twice the distance of the last.
inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16];
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

/// Inputs [k0, k0 + depth) of latents [f0, f0 + 32) of W (column-major,
/// column stride ldw: W_enc, or W_decᵀ), k-major, into `panel`; latents past
/// `F` are zeros.
/// Whole panels move 16 x 16 blocks through registers; the rest, and the
/// last inputs, go one float at a time.
inline void pack_latent_panel(const float* W, Index ldw, Index F, Index f0, Index k0, Index depth, float* panel) {
  const float* columns[tile_latents];
  const int valid = static_cast<int>(std::min<Index>(tile_latents, F - f0));
  for (int j = 0; j < valid; ++j) columns[j] = W + (f0 + j) * ldw + k0;
  Index k = 0;
  if (valid == tile_latents) {
    for (; k + 16 <= depth; k += 16)
      for (int half = 0; half < 2; ++half) {
        __m512 block[16];
        for (int j = 0; j < 16; ++j) block[j] = _mm512_loadu_ps(columns[16 * half + j] + k);
        transpose_16x16(block);
        for (int i = 0; i < 16; ++i) _mm512_store_ps(panel + (k + i) * tile_latents + 16 * half, block[i]);
      }
  }
  for (; k < depth; ++k) {
    float* out = panel + k * tile_latents;
    for (int j = 0; j < valid; ++j) out[j] = columns[j][k];
    for (int j = valid; j < tile_latents; ++j) out[j] = 0.0f;
  }
}

/// H (B x F, row-major, row stride ldh) = 1 startᵀ + X W, with X B x D
/// (row-major, row stride ldx) and W D x F (column-major, column stride ldw);
/// H = X W when `start` is null.
inline void product(const float* start, const float* X, Index ldx, const float* W, Index ldw, float* H, Index ldh,
                    Index B, Index D, Index F) {
  const Index token_panels = (B + tile_tokens - 1) / tile_tokens;
  const Index depth_blocks = std::max<Index>(1, (D + max_depth_block - 1) / max_depth_block);
  const Index depth_block = (D + depth_blocks - 1) / depth_blocks;

  thread_local std::vector<float> packed_x_storage;
  float* const packed_x = aligned_buffer(packed_x_storage, token_panels * tile_tokens * D);
  SAE_OMP(parallel for schedule(static) if (worth_parallel(B * D)))
  for (Index t = 0; t < token_panels; ++t) pack_token_panel(X, ldx, B, D, t, packed_x + t * tile_tokens * D);

  // Latent blocks: a share of L3 each, and at least two per thread for balance.
  int threads = 1;
#if defined(_OPENMP)
  threads = omp_get_max_threads();
#endif
  const Index panel_bytes = Index(sizeof(float)) * tile_latents * depth_block;
  const Index panels_by_cache = std::max<Index>(1, latent_block_bytes / panel_bytes);
  const Index panels_total = (F + tile_latents - 1) / tile_latents;
  const Index panels_by_balance = std::max<Index>(1, panels_total / (2 * Index(threads)));
  const Index block_panels = std::min(panels_by_cache, panels_by_balance);
  const Index latent_blocks = (panels_total + block_panels - 1) / block_panels;
  const Index group_panels =
      std::max<Index>(1, token_group_bytes / (Index(sizeof(float)) * tile_tokens * depth_block));

  SAE_OMP(parallel if (worth_parallel(B * D * F / 64)))
  {
    thread_local std::vector<float> packed_w_storage;
    float* const packed_w = aligned_buffer(packed_w_storage, block_panels * tile_latents * depth_block);
    SAE_OMP(for schedule(dynamic))
    for (Index block = 0; block < latent_blocks; ++block) {
      const Index p0 = block * block_panels, p1 = std::min(panels_total, p0 + block_panels);
      for (Index k0 = 0; k0 < D; k0 += depth_block) {
        const Index depth = std::min(depth_block, D - k0);
        const bool first = k0 == 0, last = k0 + depth == D;
        for (Index p = p0; p < p1; ++p)
          pack_latent_panel(W, ldw, F, p * tile_latents, k0, depth, packed_w + (p - p0) * tile_latents * depth);
        for (Index g0 = 0; g0 < token_panels; g0 += group_panels) {
          const Index g1 = std::min(token_panels, g0 + group_panels);
          for (Index p = p0; p < p1; ++p) {
            const Index f0 = p * tile_latents;
            const int cols = static_cast<int>(std::min<Index>(tile_latents, F - f0));
            for (Index t = g0; t < g1; ++t) {
              const int rows = static_cast<int>(std::min<Index>(tile_tokens, B - t * tile_tokens));
              micro_kernel(depth, packed_x + t * tile_tokens * D + k0 * tile_tokens,
                           packed_w + (p - p0) * tile_latents * depth, !first, last && start ? start + f0 : nullptr,
                           H + t * tile_tokens * ldh + f0, ldh, rows, cols);
            }
          }
        }
      }
    }
  }
}

}  // namespace encoder_gemm

#endif  // SAE_ENCODER_KERNEL

}  // namespace detail
}  // namespace sae
