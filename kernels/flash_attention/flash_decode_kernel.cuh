#pragma once

// Single-pass attention for decoding: 1-4 query rows per (batch, head) against any number of keys.
// One block per (batch, head) and no split over blocks, so no combine kernel and no workspace; it can
// append the step's key and value to the cache first (FlashFwdParams::position).
//
// At these sizes the time is memory latency, not bandwidth or math. A key row of D elements is read
// by a group of D/8 lanes, 16 bytes each; a warp holds 32/(D/8) groups, the block kGroups. Group g
// takes keys g, g + kGroups, g + 2 kGroups, ..., so one load instruction of the block reads kGroups
// consecutive rows. Each pass a group issues the K and V loads of kKeysInFlight keys before it uses
// any, dots q.k in fp32 (shuffle-reduced within the group), updates an online softmax per query row
// (exp2 with scale * log2(e), as the flash kernel) and accumulates V in fp32. Then the groups of a
// warp merge through shuffles, the warps through shared memory, and the output is written
// normalised, rounded to the element type.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "common/programmatic_launch.cuh"
#include "flash_attention/flash_params.h"
#include "vlm/error.h"

namespace vlm::flash {

template <typename Element_, int kHeadDim_, int kRows_>
struct DecodeTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kRows = kRows_;  // query rows per (batch, head)
  // 16 warps: at batch 1 the grid is one block per head (12 for Florence-2), so a block alone must
  // keep hundreds of keys in flight to hide the memory latency.
  static constexpr int kWarps = 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kGroupLanes = kHeadDim / 8;  // lanes reading one key row, 16 bytes each
  static constexpr int kGroupsPerWarp = 32 / kGroupLanes;
  static constexpr int kGroups = kWarps * kGroupsPerWarp;
  // The K and V of 8 keys take 64 registers a thread; each more query row adds 8 for q, 8 for the
  // accumulator and one score per key in flight, so fewer keys keep a thread within the 128
  // registers of one 512-thread block per SM with no spills (ptxas, sm_80 and sm_90, every head dim).
  static constexpr int kKeysInFlight = kRows == 1 ? 8 : kRows == 2 ? 6 : kRows == 3 ? 3 : 2;
  static constexpr int kKeysPerPass = kGroups * kKeysInFlight;
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "unsupported head dim");
  static_assert(kRows >= 1 && kRows <= 4, "the decode kernel takes 1-4 query rows");
};

namespace decode {

__device__ __forceinline__ uint4 load16(const void* ptr) { return *static_cast<const uint4*>(ptr); }

// 16 bytes (8 elements) to fp32.
template <typename Element>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&out)[8]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 pair;
    if constexpr (std::is_same_v<Element, __half>) {
      __half2 h;
      memcpy(&h, &words[i], sizeof(h));
      pair = __half22float2(h);
    } else {
      __nv_bfloat162 h;
      memcpy(&h, &words[i], sizeof(h));
      pair = __bfloat1622float2(h);
    }
    out[2 * i] = pair.x;
    out[2 * i + 1] = pair.y;
  }
}

// 8 fp32 values rounded to the element type, as 16 bytes.
template <typename Element>
__device__ __forceinline__ uint4 pack8(const float (&in)[8]) {
  uint32_t words[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<Element, __half>) {
      const __half2 h = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
      memcpy(&words[i], &h, sizeof(h));
    } else {
      const __nv_bfloat162 h = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
      memcpy(&words[i], &h, sizeof(h));
    }
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

constexpr unsigned kFullMask = 0xffffffffU;

}  // namespace decode

template <typename T>
__global__ void __launch_bounds__(T::kThreads, 1) flash_decode_kernel(const __grid_constant__ FlashFwdParams p) {
  using Element = typename T::Element;
  constexpr int kRows = T::kRows;
  constexpr int kLanes = T::kGroupLanes;
  constexpr int kFlight = T::kKeysInFlight;
  __shared__ float merge_acc[T::kWarps][kRows][T::kHeadDim];
  __shared__ float merge_max[T::kWarps][kRows];
  __shared__ float merge_sum[T::kWarps][kRows];

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int chunk = lane % kLanes;  // this lane's 8 head-dim elements of every row it reads
  const int group = warp * T::kGroupsPerWarp + lane / kLanes;
  const int b = static_cast<int>(blockIdx.x) / p.heads;
  const int h = static_cast<int>(blockIdx.x) % p.heads;
  const auto* k_rows = static_cast<const Element*>(p.k) + b * p.k_batch_stride + h * p.k_head_stride + chunk * 8;
  const auto* v_rows = static_cast<const Element*>(p.v) + b * p.v_batch_stride + h * p.v_head_stride + chunk * 8;
  const bool append = p.position != nullptr;
  const Element* new_k = nullptr;
  const Element* new_v = nullptr;
  if (append) {
    new_k = static_cast<const Element*>(p.new_k) + b * p.new_k_batch_stride + h * p.new_k_head_stride + chunk * 8;
    new_v = static_cast<const Element*>(p.new_v) + b * p.new_v_batch_stride + h * p.new_v_head_stride + chunk * 8;
  }

  // K and V of this group's keys of one pass: zeros at and past `end`; the key at `append_at` (-1:
  // none) comes from new_k/new_v, not from the cache row being written.
  uint4 k_regs[kFlight];
  uint4 v_regs[kFlight];
  const auto load_pass = [&](int pass, int end, int append_at) {
#pragma unroll
    for (int i = 0; i < kFlight; ++i) {
      const int key = pass * T::kKeysPerPass + i * T::kGroups + group;
      if (key < end) {
        const bool fresh = key == append_at;
        k_regs[i] = decode::load16(fresh ? new_k : k_rows + key * p.k_row_stride);
        v_regs[i] = decode::load16(fresh ? new_v : v_rows + key * p.v_row_stride);
      } else {
        k_regs[i] = make_uint4(0, 0, 0, 0);
        v_regs[i] = make_uint4(0, 0, 0, 0);
      }
    }
  };

  // Programmatic dependent launch (common/programmatic_launch.cuh): before the wait only keys and
  // values the caller vouches were not written by the previous kernel (kv_ready: cross-attention),
  // the first pass bounded by the tensor's length since key_lengths may be that kernel's output. An
  // append call reads everything after the wait: position, q and new_k/new_v are the step's.
  const bool early = p.kv_ready && !append;
  if (early) load_pass(0, p.seqlen_k, -1);
  kernels::grid_dependency_wait();
  kernels::allow_dependent_launch();

  int length = p.seqlen_k;
  int append_at = -1;
  if (append) {
    const int64_t position = *p.position;
    if (position >= 0 && position < p.seqlen_k) {
      append_at = static_cast<int>(position);
      length = append_at + 1;
    } else {
      length = 0;
    }
  } else if (p.key_lengths != nullptr) {
    length = max(0, min(p.key_lengths[b], p.seqlen_k));
  }
  if (append_at >= 0 && tid < kLanes) {  // lanes 0..kLanes-1 of warp 0: chunk == tid
    const int64_t k_offset = b * p.k_batch_stride + h * p.k_head_stride + append_at * p.k_row_stride + chunk * 8;
    const int64_t v_offset = b * p.v_batch_stride + h * p.v_head_stride + append_at * p.v_row_stride + chunk * 8;
    // k and v are the caches themselves (the launcher takes an append only for layouts it need not copy).
    *reinterpret_cast<uint4*>(const_cast<Element*>(static_cast<const Element*>(p.k)) + k_offset) =
        decode::load16(new_k);
    *reinterpret_cast<uint4*>(const_cast<Element*>(static_cast<const Element*>(p.v)) + v_offset) =
        decode::load16(new_v);
  }

  // This lane's slice of every query row, pre-scaled so that scores are in log2 units.
  float q[kRows][8];
  const auto* q_rows = static_cast<const Element*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + chunk * 8;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    decode::unpack8<Element>(decode::load16(q_rows + r * p.q_row_stride), q[r]);
#pragma unroll
    for (int e = 0; e < 8; ++e) q[r][e] *= p.scale_log2;
  }

  // Online softmax state of this group's keys, the same in every lane of the group.
  float row_max[kRows];
  float row_sum[kRows];
  float acc[kRows][8];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[r][e] = 0.0f;
  }

  const int passes = (length + T::kKeysPerPass - 1) / T::kKeysPerPass;
  for (int pass = 0; pass < passes; ++pass) {
    if (pass > 0 || !early) load_pass(pass, length, append_at);
    float s[kRows][kFlight];
#pragma unroll
    for (int i = 0; i < kFlight; ++i) {
      float kf[8];
      decode::unpack8<Element>(k_regs[i], kf);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot = fmaf(q[r][e], kf[e], dot);
        s[r][i] = dot;
      }
    }
#pragma unroll
    for (int offset = kLanes / 2; offset > 0; offset /= 2) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int i = 0; i < kFlight; ++i) s[r][i] += __shfl_xor_sync(decode::kFullMask, s[r][i], offset);
      }
    }
    // Keys past the length (only the early first pass loads them) count for nothing; their values are
    // zeroed too, as 0 * NaN would be NaN.
#pragma unroll
    for (int i = 0; i < kFlight; ++i) {
      if (pass * T::kKeysPerPass + i * T::kGroups + group >= length) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) s[r][i] = -INFINITY;
        v_regs[i] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int i = 0; i < kFlight; ++i) mx = fmaxf(mx, s[r][i]);
      const float base = mx == -INFINITY ? 0.0f : mx;  // no -inf - -inf while nothing is visible
      const float rescale = exp2f(row_max[r] - base);
      row_sum[r] *= rescale;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] *= rescale;
#pragma unroll
      for (int i = 0; i < kFlight; ++i) {
        s[r][i] = exp2f(s[r][i] - base);
        row_sum[r] += s[r][i];
      }
      row_max[r] = mx;
    }
#pragma unroll
    for (int i = 0; i < kFlight; ++i) {
      float vf[8];
      decode::unpack8<Element>(v_regs[i], vf);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r][e] = fmaf(s[r][i], vf[e], acc[r][e]);
      }
    }
  }

  // Merge the groups of the warp: lanes kLanes, 2 kLanes, ... apart hold the same head-dim slice.
#pragma unroll
  for (int offset = kLanes; offset < 32; offset *= 2) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float other_max = __shfl_xor_sync(decode::kFullMask, row_max[r], offset);
      const float other_sum = __shfl_xor_sync(decode::kFullMask, row_sum[r], offset);
      const float mx = fmaxf(row_max[r], other_max);
      const float base = mx == -INFINITY ? 0.0f : mx;
      const float mine = exp2f(row_max[r] - base);
      const float theirs = exp2f(other_max - base);
      row_sum[r] = row_sum[r] * mine + other_sum * theirs;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        acc[r][e] = acc[r][e] * mine + __shfl_xor_sync(decode::kFullMask, acc[r][e], offset) * theirs;
      }
      row_max[r] = mx;
    }
  }
  if (lane < kLanes) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int e = 0; e < 8; ++e) merge_acc[warp][r][chunk * 8 + e] = acc[r][e];
      if (lane == 0) {
        merge_max[warp][r] = row_max[r];
        merge_sum[warp][r] = row_sum[r];
      }
    }
  }
  __syncthreads();

  // Merge the warps: thread (row, chunk) writes 8 output elements. A row with nothing visible (key
  // length 0) gets zeros, as the eager path's nan_to_num gives.
  if (tid < kRows * kLanes) {
    const int r = tid / kLanes;
    const int c = tid % kLanes;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < T::kWarps; ++w) mx = fmaxf(mx, merge_max[w][r]);
    float out[8] = {};
    float total = 0.0f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < T::kWarps; ++w) {
        const float weight = exp2f(merge_max[w][r] - mx);
        total += merge_sum[w][r] * weight;
#pragma unroll
        for (int e = 0; e < 8; ++e) out[e] = fmaf(merge_acc[w][r][c * 8 + e], weight, out[e]);
      }
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] *= inv;
    auto* o = static_cast<Element*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + r * p.o_row_stride + c * 8;
    *reinterpret_cast<uint4*>(o) = decode::pack8<Element>(out);
  }
}

template <typename Element, int kHeadDim, int kRows>
void launch_flash_decode(const FlashFwdParams& params, int device, cudaStream_t stream) {
  using T = DecodeTraits<Element, kHeadDim, kRows>;
  const dim3 grid(static_cast<unsigned>(static_cast<int64_t>(params.batch) * params.heads));
  const cudaError_t err =
      kernels::launch_kernel(device, &flash_decode_kernel<T>, grid, dim3(T::kThreads), 0, stream, params);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::kInternal, "flash attention: launching the decode kernel (d" + std::to_string(kHeadDim) +
                                          ", " + std::to_string(kRows) + " rows) failed: " + cudaGetErrorString(err));
  }
}

// One (element type, head dim) per file in instantiations/flash_decode_*.cu; the launcher
// (flash_launch.cu) picks it.
template <typename Element, int kHeadDim>
void run_flash_decode_dim(const FlashFwdParams& params, int device, cudaStream_t stream) {
  switch (params.seqlen_q) {
    case 1: launch_flash_decode<Element, kHeadDim, 1>(params, device, stream); return;
    case 2: launch_flash_decode<Element, kHeadDim, 2>(params, device, stream); return;
    case 3: launch_flash_decode<Element, kHeadDim, 3>(params, device, stream); return;
    case 4: launch_flash_decode<Element, kHeadDim, 4>(params, device, stream); return;
    default: break;
  }
  throw Error(ErrorCode::kInternal,
              "flash attention: the decode kernel takes 1 to 4 query rows, got " + std::to_string(params.seqlen_q));
}

}  // namespace vlm::flash
