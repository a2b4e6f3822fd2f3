#pragma once

// FlashAttention-2-style forward pass for sm_80+ tensor cores: mma.sync m16n8k16, ldmatrix,
// cp.async into XOR-swizzled shared memory, online softmax in fp32 with exp2.
//
// Work split: one block owns block_m query rows of one (batch, head); each warp owns
// 16 * m_tiles rows and walks every key tile of the block. Key tiles are visited from the last to
// the first, so the tiles that need masking (key-length edge, causal diagonal) come first and the
// rest run the unmasked path. K and V tiles are double-buffered: tile n-1 is in flight while tile n
// is multiplied.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "flash_attention/flash_config.h"
#include "flash_attention/flash_params.h"
#include "vlm/error.h"

namespace vlm::flash {

template <int kConfig, typename Element_>
struct FlashTraits {
  static constexpr FlashConfig kCfg = kFlashConfigs[kConfig];
  using Element = Element_;
  static constexpr int kHeadDim = kCfg.head_dim;
  static constexpr int kBlockM = kCfg.block_m;
  static constexpr int kBlockN = kCfg.block_n;
  static constexpr int kWarps = kCfg.warps;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMTiles = kBlockM / (16 * kWarps);  // 16-row MMA tiles per warp
  // With one row tile per warp the Q fragments stay in registers for the whole kernel; with two
  // they are re-read from shared memory each key tile to leave registers for the accumulators.
  static constexpr bool kQInRegs = kCfg.q_in_regs;
  static_assert(!kQInRegs || kMTiles == 1, "Q fragments in registers only with one row tile per warp");
  static constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  static constexpr int kRowBytes = kHeadDim * 2;
  static constexpr int kQBytes = kBlockM * kRowBytes;
  static constexpr int kKVBytes = kBlockN * kRowBytes;
  static constexpr int kSmemBytes = kQBytes + 4 * kKVBytes;  // Q, K x2 stages, V x2 stages
  static constexpr bool kIsDecode = kCfg.role == ConfigRole::kDecode;
  // Register cap: 65536 / (threads * min_blocks) per thread; the compiler otherwise hoists every
  // fragment load and takes 255 registers, leaving one block per SM.
  static constexpr int kMinBlocks = kCfg.min_blocks;

  static_assert(kBlockM == 16 * kMTiles * kWarps && (kMTiles == 1 || kMTiles == 2), "bad block_m");
  static_assert(kBlockN % 16 == 0, "block_n must be a multiple of 16");
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "unsupported head dim");
};

namespace detail {

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16-byte chunk index after swizzling. Eight consecutive rows read by one ldmatrix (same logical
// chunk) land in eight different bank groups. Rows of 4 chunks (head dim 32) share a 128-byte line
// in pairs, so the XOR uses row / 2.
template <int kChunks>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  if constexpr (kChunks >= 8) {
    return chunk ^ (row & 7);
  } else {
    static_assert(kChunks == 4, "head dim 32 has 4 chunks per row");
    return chunk ^ ((row >> 1) & 3);
  }
}

__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  // src-size 0 zero-fills: rows past the sequence end become zeros, never garbage (0 * NaN).
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <typename Element>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<Element, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

template <typename Element>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t out;
  if constexpr (std::is_same_v<Element, __half>) {
    __half2 h = __floats2half2_rn(lo, hi);
    out = *reinterpret_cast<uint32_t*>(&h);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    out = *reinterpret_cast<uint32_t*>(&h);
  }
  return out;
}

// Returns x through an asm the compiler cannot see into. Used at the top of the key loop so the
// per-lane swizzled ldmatrix offsets are recomputed each tile (a few integer ops) instead of being
// hoisted out of the loop into dozens of long-lived registers, which spilled the 128-row configs.
__device__ __forceinline__ int opaque(int x) {
  int y;
  asm volatile("mov.b32 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Copies kRows x head_dim elements from global (row stride in elements) into a swizzled tile.
// The source pointer advances by a running sum through an opaque step: otherwise the compiler hoists
// one 64-bit offset per unrolled iteration out of the key loop and runs out of registers (seen: 255
// registers and spills for the one-warp decode config).
template <typename T, int kRows>
__device__ __forceinline__ void load_tile(uint32_t smem_base, const typename T::Element* gmem, int64_t row_stride,
                                          int valid_rows, int tid) {
  constexpr int kRowsPerIter = T::kThreads / T::kChunks;
  static_assert(T::kThreads % T::kChunks == 0 && kRows % kRowsPerIter == 0, "tile does not split evenly");
  const int row0 = tid / T::kChunks;
  const int chunk = tid % T::kChunks;
  const auto* src = gmem + row0 * row_stride + chunk * 8;
  const int64_t step = kRowsPerIter * row_stride;
  uint32_t dst = smem_base + row0 * T::kRowBytes;
#pragma unroll
  for (int i = 0; i < kRows / kRowsPerIter; ++i) {
    const int row = row0 + i * kRowsPerIter;
    const bool valid = row < valid_rows;
    cp_async_16(dst + swizzle<T::kChunks>(row, chunk) * 16, valid ? src : gmem, valid);
    int64_t opaque_step;
    asm volatile("mov.b64 %0, %1;\n" : "=l"(opaque_step) : "l"(step));
    src += opaque_step;
    dst += kRowsPerIter * T::kRowBytes;
  }
}

}  // namespace detail

template <typename T, bool kSplit>
__global__ void __launch_bounds__(T::kThreads, T::kMinBlocks)
    flash_fwd_kernel(const __grid_constant__ FlashFwdParams p) {
  using Element = typename T::Element;
  using namespace detail;
  constexpr int kBlockM = T::kBlockM;
  constexpr int kBlockN = T::kBlockN;
  constexpr int kHeadDim = T::kHeadDim;
  constexpr int kMTiles = T::kMTiles;
  constexpr int kNTiles = kBlockN / 8;   // n8 tiles of S
  constexpr int kDTiles = kHeadDim / 8;  // n8 tiles of O
  constexpr int kRowBytes = T::kRowBytes;

  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t q_smem = smem_u32(smem);
  const uint32_t k_smem = q_smem + T::kQBytes;
  const uint32_t v_smem = k_smem + 2 * T::kKVBytes;

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;

  const int m_blocks = (p.seqlen_q + kBlockM - 1) / kBlockM;
  const int m_block = static_cast<int>(blockIdx.x % m_blocks);
  const int bh = static_cast<int>(blockIdx.x / m_blocks);
  const int b = bh / p.heads;
  const int h = bh % p.heads;
  const int m_start = m_block * kBlockM;
  const int rows_q = min(kBlockM, p.seqlen_q - m_start);

  int key_len = p.seqlen_k;
  if (p.key_lengths != nullptr) key_len = max(0, min(p.key_lengths[b], key_len));
  const int causal_offset = p.seqlen_k - p.seqlen_q;
  int key_end = key_len;
  if (p.causal) key_end = min(key_end, m_start + rows_q + causal_offset);
  int n_block_min = 0;
  int n_block_max = key_end > 0 ? (key_end + kBlockN - 1) / kBlockN : 0;
  if constexpr (kSplit) {
    const int total_blocks = (p.seqlen_k + kBlockN - 1) / kBlockN;
    const int per_split = (total_blocks + p.num_splits - 1) / p.num_splits;
    n_block_min = static_cast<int>(blockIdx.y) * per_split;
    n_block_max = min(n_block_max, n_block_min + per_split);
  }

  const auto* q_ptr =
      static_cast<const Element*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + m_start * p.q_row_stride;
  const auto* k_ptr = static_cast<const Element*>(p.k) + b * p.k_batch_stride + h * p.k_head_stride;
  const auto* v_ptr = static_cast<const Element*>(p.v) + b * p.v_batch_stride + h * p.v_head_stride;
  // Split partials are laid out [split, batch, heads, seqlen_q, head_dim] (and without head_dim for lse).
  const int64_t partial_row0 = ((static_cast<int64_t>(blockIdx.y) * p.batch + b) * p.heads + h) * p.seqlen_q + m_start;

  if (n_block_max <= n_block_min) {
    // No key is visible: the rows attend to nothing, as eager's nan_to_num makes them (zeros).
    if constexpr (kSplit) {
      for (int i = tid; i < rows_q * kHeadDim; i += T::kThreads) {
        p.o_partial[(partial_row0 + i / kHeadDim) * kHeadDim + i % kHeadDim] = 0.0f;
      }
      for (int i = tid; i < rows_q; i += T::kThreads) p.lse_partial[partial_row0 + i] = -INFINITY;
    } else {
      auto* o_ptr = static_cast<Element*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + m_start * p.o_row_stride;
      for (int i = tid; i < rows_q * kHeadDim; i += T::kThreads) {
        o_ptr[(i / kHeadDim) * p.o_row_stride + i % kHeadDim] = Element(0.0f);
      }
    }
    return;
  }

  load_tile<T, kBlockM>(q_smem, q_ptr, p.q_row_stride, rows_q, tid);
  {
    const int n = n_block_max - 1;
    load_tile<T, kBlockN>(k_smem, k_ptr + n * kBlockN * p.k_row_stride, p.k_row_stride, key_len - n * kBlockN, tid);
    load_tile<T, kBlockN>(v_smem, v_ptr + n * kBlockN * p.v_row_stride, p.v_row_stride, key_len - n * kBlockN, tid);
  }
  cp_async_commit();

  // Per-lane ldmatrix offsets (bytes within a tile, before the compile-time tile/step offsets).
  // Every ldmatrix row is (multiple of 8) + (lane & 7), so the swizzle key is lane & 7 throughout.
  const int warp_row0 = warp * kMTiles * 16;
  const uint32_t q_lane = q_smem + (warp_row0 + (lane & 15)) * kRowBytes;
  const int q_chunk_lo = lane >> 4;
  const uint32_t k_lane_row = ((lane & 7) + ((lane >> 4) << 3)) * kRowBytes;
  const int k_chunk_lo = (lane >> 3) & 1;
  const uint32_t v_lane_row = ((lane & 7) + (((lane >> 3) & 1) << 3)) * kRowBytes;
  const int v_chunk_lo = lane >> 4;

  float acc_o[kMTiles][kDTiles][4];
  float row_max[kMTiles][2];
  float row_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_o[mt][dt][e] = 0.0f;
    }
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.0f;
  }

  constexpr int kQRegTiles = T::kQInRegs ? kMTiles : 1;
  constexpr int kQRegSteps = T::kQInRegs ? kHeadDim / 16 : 1;
  uint32_t q_frag[kQRegTiles][kQRegSteps][4];

  const float scale_log2 = p.scale_log2;
  int stage = 0;
  for (int n_block = n_block_max - 1; n_block >= n_block_min; --n_block, stage ^= 1) {
    cp_async_wait_all();
    __syncthreads();
    if (n_block > n_block_min) {
      const int n = n_block - 1;
      const uint32_t next = (stage ^ 1) * T::kKVBytes;
      load_tile<T, kBlockN>(k_smem + next, k_ptr + n * kBlockN * p.k_row_stride, p.k_row_stride, key_len - n * kBlockN,
                            tid);
      load_tile<T, kBlockN>(v_smem + next, v_ptr + n * kBlockN * p.v_row_stride, p.v_row_stride, key_len - n * kBlockN,
                            tid);
    }
    cp_async_commit();
    const int swz_row = opaque(lane & 7);
    if constexpr (T::kQInRegs) {
      if (n_block == n_block_max - 1) {
#pragma unroll
        for (int ks = 0; ks < kHeadDim / 16; ++ks) {
          ldmatrix_x4(q_frag[0][ks], q_lane + swizzle<T::kChunks>(swz_row, 2 * ks + q_chunk_lo) * 16);
        }
      }
    }

    const uint32_t k_tile = k_smem + stage * T::kKVBytes + k_lane_row;
    const uint32_t v_tile = v_smem + stage * T::kKVBytes + v_lane_row;

    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;
      }
    }
#pragma unroll
    for (int ks = 0; ks < kHeadDim / 16; ++ks) {
      uint32_t qa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if constexpr (T::kQInRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) qa[mt][e] = q_frag[0][ks][e];
        } else {
          ldmatrix_x4(qa[mt], q_lane + mt * 16 * kRowBytes + swizzle<T::kChunks>(swz_row, 2 * ks + q_chunk_lo) * 16);
        }
      }
      const uint32_t k_col = swizzle<T::kChunks>(swz_row, 2 * ks + k_chunk_lo) * 16;
#pragma unroll
      for (int j = 0; j < kBlockN / 16; ++j) {
        uint32_t kb[4];
        ldmatrix_x4(kb, k_tile + j * 16 * kRowBytes + k_col);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<Element>(s[mt][2 * j], qa[mt], kb[0], kb[1]);
          mma_16816<Element>(s[mt][2 * j + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }

    const int n_start = n_block * kBlockN;
    const bool need_mask = n_start + kBlockN > key_len || (p.causal && n_start + kBlockN - 1 > m_start + causal_offset);
    if (need_mask) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = m_start + warp_row0 + mt * 16 + (lane >> 2) + (e >= 2 ? 8 : 0);
            const int col = n_start + nt * 8 + (lane & 3) * 2 + (e & 1);
            if (col >= key_len || (p.causal && col > row + causal_offset)) s[mt][nt][e] = -INFINITY;
          }
        }
      }
    }

    // Online softmax; each row lives in a quad of 4 lanes (2 rows per lane: lane/4 and lane/4 + 8).
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = row_max[mt][half];
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          mx = fmaxf(mx, fmaxf(s[mt][nt][2 * half], s[mt][nt][2 * half + 1]));
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // A row with nothing visible yet keeps max -inf; subtracting 0 keeps exp2(-inf) = 0, not NaN.
        const float max_scaled = mx == -INFINITY ? 0.0f : mx * scale_log2;
        const float alpha = fast_exp2(row_max[mt][half] * scale_log2 - max_scaled);
        row_max[mt][half] = mx;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pe = fast_exp2(fmaf(s[mt][nt][2 * half + e], scale_log2, -max_scaled));
            s[mt][nt][2 * half + e] = pe;
            sum += pe;
          }
        }
        row_sum[mt][half] = row_sum[mt][half] * alpha + sum;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          acc_o[mt][dt][2 * half] *= alpha;
          acc_o[mt][dt][2 * half + 1] *= alpha;
        }
      }
    }

    // O += P V; the S accumulator layout of two n8 tiles is exactly the A-operand layout of a k16 step.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t pa[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        pa[mt][0] = pack2<Element>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack2<Element>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack2<Element>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack2<Element>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kHeadDim / 16; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, v_tile + kk * 16 * kRowBytes + swizzle<T::kChunks>(swz_row, 2 * dp + v_chunk_lo) * 16);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma_16816<Element>(acc_o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          mma_16816<Element>(acc_o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }

  // Epilogue: finish the row sums across the quad and normalise.
  float inv_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = row_sum[mt][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      row_sum[mt][half] = sum;
      inv_sum[mt][half] = sum > 0.0f ? 1.0f / sum : 0.0f;
    }
  }

  if constexpr (kSplit) {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = warp_row0 + mt * 16 + (lane >> 2) + half * 8;
        if (row < rows_q) {
          float* dst = p.o_partial + (partial_row0 + row) * kHeadDim + (lane & 3) * 2;
#pragma unroll
          for (int dt = 0; dt < kDTiles; ++dt) {
            *reinterpret_cast<float2*>(dst + dt * 8) = make_float2(acc_o[mt][dt][2 * half] * inv_sum[mt][half],
                                                                   acc_o[mt][dt][2 * half + 1] * inv_sum[mt][half]);
          }
          if ((lane & 3) == 0) {
            const float sum = row_sum[mt][half];
            p.lse_partial[partial_row0 + row] = sum > 0.0f ? row_max[mt][half] * scale_log2 + __log2f(sum) : -INFINITY;
          }
        }
      }
    }
  } else {
    // Stage O through the (now idle) Q tile so the global stores are 16-byte and coalesced.
    cp_async_wait_all();
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = warp_row0 + mt * 16 + (lane >> 2) + half * 8;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          const uint32_t addr = q_smem + row * kRowBytes + swizzle<T::kChunks>(row, dt) * 16 + (lane & 3) * 4;
          const uint32_t packed = pack2<Element>(acc_o[mt][dt][2 * half] * inv_sum[mt][half],
                                                 acc_o[mt][dt][2 * half + 1] * inv_sum[mt][half]);
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(packed));
        }
      }
    }
    __syncthreads();
    auto* o_ptr = static_cast<Element*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + m_start * p.o_row_stride;
    constexpr int kTotal = kBlockM * T::kChunks;
#pragma unroll
    for (int i = 0; i < (kTotal + T::kThreads - 1) / T::kThreads; ++i) {
      const int idx = tid + i * T::kThreads;
      const int row = idx / T::kChunks;
      const int chunk = idx % T::kChunks;
      if ((kTotal % T::kThreads == 0 || idx < kTotal) && row < rows_q) {
        uint4 val;
        const uint32_t addr = q_smem + row * kRowBytes + swizzle<T::kChunks>(row, chunk) * 16;
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(val.x), "=r"(val.y), "=r"(val.z), "=r"(val.w)
                     : "r"(addr));
        *reinterpret_cast<uint4*>(o_ptr + row * p.o_row_stride + chunk * 8) = val;
      }
    }
  }
}

// Merges the split partials: out = sum_s 2^(lse_s - lse) * o_s with lse = log2 sum_s 2^lse_s.
// Each thread owns 4 consecutive head-dim elements of one query row.
template <int kHeadDim, typename Element>
__global__ void __launch_bounds__(128) flash_combine_kernel(const __grid_constant__ FlashFwdParams p) {
  constexpr int kThreadsPerRow = kHeadDim / 4;
  constexpr int kRowsPerBlock = 128 / kThreadsPerRow;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.heads * p.seqlen_q;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kThreadsPerRow;
  if (row >= rows) return;
  const int d = (threadIdx.x % kThreadsPerRow) * 4;
  float lse_max = -INFINITY;
  for (int s = 0; s < p.num_splits; ++s) lse_max = fmaxf(lse_max, p.lse_partial[s * rows + row]);
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float weight_sum = 0.0f;
  if (lse_max != -INFINITY) {
    for (int s = 0; s < p.num_splits; ++s) {
      const float w = exp2f(p.lse_partial[s * rows + row] - lse_max);
      const float4 o = *reinterpret_cast<const float4*>(p.o_partial + (s * rows + row) * kHeadDim + d);
      acc.x += w * o.x;
      acc.y += w * o.y;
      acc.z += w * o.z;
      acc.w += w * o.w;
      weight_sum += w;
    }
  }
  const float inv = weight_sum > 0.0f ? 1.0f / weight_sum : 0.0f;
  const int q = static_cast<int>(row % p.seqlen_q);
  const int bh = static_cast<int>(row / p.seqlen_q);
  auto* out = static_cast<Element*>(p.o) + (bh / p.heads) * p.o_batch_stride + (bh % p.heads) * p.o_head_stride +
              q * p.o_row_stride + d;
  const uint32_t lo = detail::pack2<Element>(acc.x * inv, acc.y * inv);
  const uint32_t hi = detail::pack2<Element>(acc.z * inv, acc.w * inv);
  *reinterpret_cast<uint2*>(out) = make_uint2(lo, hi);
}

inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw Error(ErrorCode::kInternal,
                std::string("flash attention: launching ") + what + " failed: " + cudaGetErrorString(err));
  }
}

// Launches config kConfig for one dtype; num_splits > 1 only for decode configs.
template <int kConfig, typename Element>
void run_flash_config(const FlashFwdParams& params, int num_splits, cudaStream_t stream) {
  using T = FlashTraits<kConfig, Element>;
  const int m_blocks = (params.seqlen_q + T::kBlockM - 1) / T::kBlockM;
  const dim3 grid(static_cast<unsigned>(m_blocks * params.batch * params.heads), static_cast<unsigned>(num_splits));
  if (num_splits > 1) {
    if constexpr (T::kIsDecode) {
      auto* kernel = &flash_fwd_kernel<T, true>;
      if (T::kSmemBytes > 48 * 1024) {
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes);
      }
      kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(params);
      check_launch(T::kCfg.name);
      constexpr int kRowsPerBlock = 128 / (T::kHeadDim / 4);
      const int64_t rows = static_cast<int64_t>(params.batch) * params.heads * params.seqlen_q;
      const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
      flash_combine_kernel<T::kHeadDim, Element><<<blocks, 128, 0, stream>>>(params);
      check_launch("flash split combine");
      return;
    } else {
      throw Error(ErrorCode::kInternal,
                  std::string("flash attention: config ") + T::kCfg.name + " has no split-KV kernel");
    }
  }
  auto* kernel = &flash_fwd_kernel<T, false>;
  if (T::kSmemBytes > 48 * 1024) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes);
  }
  kernel<<<grid, T::kThreads, T::kSmemBytes, stream>>>(params);
  check_launch(T::kCfg.name);
}

}  // namespace vlm::flash
