// A greedy decode step after the LM head, in one launch: transformers' logits processors
// (no_repeat_ngram_size, min_new_tokens, forced BOS/EOS), the arg-max, the chosen token's
// log-softmax, and the search's bookkeeping (ids, token log-probs, finished rows, returned length,
// position). Done with ATen ops it was ~70 small kernels, the largest part of a batch-1 step.
//
// Each row is split over several blocks (GreedySplit): one block per row read a batch-1 row of
// 51,289 logits on one SM, twice, in 25.6 us of a 360 us step on an H100. A block bans the tokens
// of its own chunk (writing -inf into the logits, so its reads are plain coherent loads: a
// read-only-cache load could miss the block's own stores), reads the chunk once for its best token
// and its log-sum-exp, and leaves them in the workspace. The row's last block to count
// itself in merges them and does the row's bookkeeping; the last row's advances the position. The
// kernel leaves every counter at 0, so it replays in a CUDA graph as it is.
#include <algorithm>
#include <climits>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../greedy_select_kernel.h"
#include "common/programmatic_launch.cuh"

namespace vlm::florence2 {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// The fewest vocabulary entries a block takes (8 a thread): below that its fixed work (the n-gram
// scan of the ids, two reductions, the counter) outweighs its share of the reads. At batch 1 a
// 51,289-entry row is then 26 blocks.
constexpr int kMinChunk = 2048;
// Blocks per SM a step aims for when rows are many: half of what 256-thread blocks can keep
// resident on an H100 SM, so one wave at any batch with room for the kernels around it.
constexpr int kBlocksPerSm = 4;
// Bounds the workspace and stays far under the grid's 65,535 limit in y.
constexpr int kMaxBlocksPerRow = 1024;
// Entries a thread loads before it uses any (a round): at batch 1 a chunk is one round, so a block
// waits on memory once, not once per entry.
constexpr int kUnroll = 8;

constexpr unsigned kAllLanes = 0xffffffffU;

// torch's arg-max order: NaN above everything, then the larger value, then the lower index.
__device__ inline bool better(float a, int ia, float b, int ib) {
  if (isnan(a)) return !isnan(b) || ia < ib;
  if (isnan(b)) return false;
  return a > b || (a == b && ia < ib);
}

// torch's logsumexp takes the maximum out of the sum unless it is infinite.
__device__ inline float lse_shift(float max) { return isinf(max) ? 0.0F : max; }

// A sum of exp(x - lse_shift(max)) taken against `shift` instead. An empty sum (max -inf) stays 0
// rather than meet exp(inf).
__device__ inline float rescale(float sum, float max, float shift) {
  return sum == 0.0F ? 0.0F : sum * expf(lse_shift(max) - shift);
}

// Nothing seen: any token, even -inf, beats index INT_MAX.
__device__ inline GreedyPartial empty_partial() { return {-INFINITY, INT_MAX, -INFINITY, 0.0F}; }

// Adds a sum of exp(x - lse_shift(max)) to a's, both against their joint maximum.
__device__ inline void add_sum(GreedyPartial& a, float max, float sum) {
  const float joint = fmaxf(a.max, max);
  const float shift = lse_shift(joint);
  a.sum = rescale(a.sum, a.max, shift) + rescale(sum, max, shift);
  a.max = joint;
}

__device__ inline void merge(GreedyPartial& a, const GreedyPartial& b) {
  if (better(b.value, b.index, a.value, a.index)) {
    a.value = b.value;
    a.index = b.index;
  }
  add_sum(a, b.max, b.sum);
}

// Every lane's partial reduced into every lane's: the arg-max and the maximum by shuffles (the
// arg-max is order-free: better() is a total order), then each lane's sum moved to that maximum
// once and added up (differing from torch's sum only in rounding).
__device__ inline GreedyPartial warp_reduce(GreedyPartial p) {
  float top = p.max;
  for (int offset = 16; offset > 0; offset /= 2) {
    const float value = __shfl_xor_sync(kAllLanes, p.value, offset);
    const int index = __shfl_xor_sync(kAllLanes, p.index, offset);
    if (better(value, index, p.value, p.index)) {
      p.value = value;
      p.index = index;
    }
    top = fmaxf(top, __shfl_xor_sync(kAllLanes, top, offset));
  }
  float sum = rescale(p.sum, p.max, lse_shift(top));
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(kAllLanes, sum, offset);
  return {p.value, p.index, top, sum};
}

// The workspace's partials go through L2 (st.cg / ld.cg): the block that reads them wrote none but
// its own, and its L1 must not serve a stale line.
__device__ inline void store_partial(GreedyPartial* at, const GreedyPartial& p) {
  __stcg(reinterpret_cast<float4*>(at), make_float4(p.value, __int_as_float(p.index), p.max, p.sum));
}

__device__ inline GreedyPartial load_partial(const GreedyPartial* at) {
  const float4 v = __ldcg(reinterpret_cast<const float4*>(at));
  return {v.x, __float_as_int(v.y), v.z, v.w};
}

template <typename T>
__device__ inline float to_float(T v) {
  return static_cast<float>(v);
}

// A thread's round of loads: entries base, base + kThreads, ... below `end`; -inf past it, which
// adds nothing to a sum.
template <typename T>
__device__ inline void load_round(const T* scores, int base, int end, float (&x)[kUnroll]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int v = base + u * kThreads;
    x[u] = v < end ? to_float(scores[v]) : -INFINITY;
  }
}

// Takes a round into a thread's partial: the arg-max, and the round's sum against its own maximum
// merged into the thread's.
__device__ inline void take_round(GreedyPartial& mine, const float (&x)[kUnroll], int base, int end) {
  float top = -INFINITY;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int v = base + u * kThreads;
    if (v < end && better(x[u], v, mine.value, mine.index)) {
      mine.value = x[u];
      mine.index = v;
    }
    top = fmaxf(top, x[u]);
  }
  const float round_shift = lse_shift(top);
  float sum = 0.0F;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) sum += expf(x[u] - round_shift);
  add_sum(mine, top, sum);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) greedy_select_kernel(T* logits, GreedyKernelParams p) {
  __shared__ GreedyPartial warp_partials[kWarps];
  // Launched programmatically dependent (kernels/common/programmatic_launch.cuh). Everything it reads
  // (logits, ids, position) is the step's, so the wait comes first; the next step's first kernel may
  // then start while this one finishes.
  kernels::grid_dependency_wait();
  kernels::allow_dependent_launch();
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const std::int64_t row = blockIdx.x;
  const int part = static_cast<int>(blockIdx.y);
  const int blocks = p.split.blocks;
  T* scores = logits + row * p.logits_stride;
  std::int64_t* ids = p.ids + row * p.ids_stride;
  const int vocab = static_cast<int>(p.vocab);
  const int begin = part * p.split.chunk;
  const int end = begin + min(p.split.chunk, vocab - begin);
  // The chunk's first round of loads goes out with the reads the bans wait on; a ban in the chunk
  // has it read again.
  const int first = begin + static_cast<int>(threadIdx.x);
  float x[kUnroll];
  load_round(scores, first, end, x);
  const std::int64_t cur_len = *p.position + 1;
  const std::int64_t max_length = *p.max_length;
  const std::int64_t n = *p.ngram_size;
  // Written by this row's last block alone, after every block of the row has counted itself in.
  const bool was_unfinished = p.unfinished[row];

  // Forced EOS comes after forced BOS in transformers' list, so it wins where both apply. A forced
  // row is -inf but at the forced token: chosen with log-probability 0, whatever the logits. Every
  // block still counts itself in below: the position may only advance once all have read it.
  int forced = -2;
  if (p.forced_eos >= 0 && cur_len == max_length - 1) {
    forced = p.forced_eos;
  } else if (p.forced_bos >= 0 && cur_len == 1) {
    forced = p.forced_bos;
  }
  GreedyPartial mine = empty_partial();
  if (forced < 0) {
    bool banned = false;
    // no_repeat_ngram_size n: every start s with s + n <= cur_len whose next n - 1 tokens equal the
    // prefix's last n - 1 bans the token after them (compared over at most the window's n - 1).
    // Every block scans all starts and bans only in its chunk.
    if (p.ngram_window > 0 && n > 0) {
      const std::int64_t compared = n - 1 < p.ngram_window - 1 ? n - 1 : p.ngram_window - 1;
      const std::int64_t* tail = ids + cur_len - (n - 1);
      for (std::int64_t s = threadIdx.x; s + n <= cur_len; s += kThreads) {
        const std::int64_t token = ids[s + n - 1];
        if (token < begin || token >= end) continue;
        bool match = true;
        for (std::int64_t j = 0; j < compared && match; ++j) match = ids[s + j] == tail[j];
        if (match) {
          scores[token] = static_cast<T>(-INFINITY);
          banned = true;
        }
      }
    }
    // min_new_tokens: EOS banned while the tokens after the start token are fewer.
    if (cur_len - 1 < p.min_new_tokens && threadIdx.x < p.eos_count) {
      const int eos = p.eos[threadIdx.x];
      if (eos >= begin && eos < end) {
        scores[eos] = static_cast<T>(-INFINITY);
        banned = true;
      }
    }
    if (__syncthreads_or(banned)) load_round(scores, first, end, x);

    // One pass over the chunk.
    take_round(mine, x, first, end);
    for (int base = first + kThreads * kUnroll; base < end; base += kThreads * kUnroll) {
      load_round(scores, base, end, x);
      take_round(mine, x, base, end);
    }
  }
  mine = warp_reduce(mine);
  if (lane == 0) warp_partials[warp] = mine;
  __syncthreads();
  if (warp != 0) return;
  GreedyPartial total = warp_reduce(lane < kWarps ? warp_partials[lane] : empty_partial());

  if (blocks > 1) {
    int last = 0;
    if (lane == 0) {
      store_partial(p.partials + row * blocks + part, total);
      __threadfence();
      last = atomicAdd(p.blocks_done + row, 1U) == static_cast<unsigned>(blocks - 1);
    }
    if (!__shfl_sync(kAllLanes, last, 0)) return;
    __threadfence();
    total = empty_partial();
    for (int b = lane; b < blocks; b += 32) merge(total, load_partial(p.partials + row * blocks + b));
    total = warp_reduce(total);
    if (lane == 0) p.blocks_done[row] = 0;
  }
  if (lane != 0) return;

  float best_value = total.value;
  int best_index = total.index;
  float log_sum = logf(total.sum) + lse_shift(total.max);
  if (forced >= 0) {
    best_value = forced < vocab ? 0.0F : -INFINITY;
    best_index = forced < vocab ? forced : 0;
    log_sum = best_value;
  }
  p.token_log_probs[row * p.log_probs_stride + cur_len] = was_unfinished ? best_value - log_sum : 0.0F;
  std::int64_t next = best_index;
  if (p.eos_count > 0 && !was_unfinished) next = p.pad;
  ids[cur_len] = next;
  // Every row that was running writes the same length.
  if (was_unfinished) {
    atomicExch(reinterpret_cast<unsigned long long*>(p.length), static_cast<unsigned long long>(cur_len + 1));
  }
  bool done = cur_len + 1 >= max_length;
  for (int e = 0; e < p.eos_count; ++e) done = done || next == p.eos[e];
  p.unfinished[row] = was_unfinished && !done;

  // Every block has read the position once the last row's last block counts itself in; with one
  // row, this block is that one.
  if (gridDim.x > 1) {
    __threadfence();
    if (atomicAdd(p.rows_done, 1U) != gridDim.x - 1) return;
    *p.rows_done = 0;
  }
  *p.position = cur_len;
}

template <typename T>
void launch(const at::Tensor& logits, const GreedyKernelParams& params) {
  const int device = logits.device().index();
  auto stream = c10::cuda::getCurrentCUDAStream(device);
  const dim3 grid(static_cast<unsigned>(params.batch), static_cast<unsigned>(params.split.blocks));
  C10_CUDA_CHECK(kernels::launch_kernel(device, greedy_select_kernel<T>, grid, dim3(kThreads), 0, stream,
                                        logits.mutable_data_ptr<T>(), params));
}

}  // namespace

GreedySplit greedy_select_split(std::int64_t rows, std::int64_t vocab, c10::DeviceIndex device) {
  if (device < 0) device = c10::cuda::current_device();
  const std::int64_t sms = at::cuda::getDeviceProperties(device)->multiProcessorCount;
  const std::int64_t by_vocab = (vocab + kMinChunk - 1) / kMinChunk;
  const std::int64_t by_grid =
      (kBlocksPerSm * sms + std::max<std::int64_t>(rows, 1) - 1) / std::max<std::int64_t>(rows, 1);
  const std::int64_t blocks = std::max<std::int64_t>(1, std::min({by_vocab, by_grid, std::int64_t{kMaxBlocksPerRow}}));
  // Even chunks, then no empty block.
  GreedySplit split;
  split.chunk = static_cast<int>(std::max<std::int64_t>(1, (vocab + blocks - 1) / blocks));
  split.blocks = static_cast<int>(std::max<std::int64_t>(1, (vocab + split.chunk - 1) / split.chunk));
  return split;
}

void greedy_select_cuda(const at::Tensor& logits, const GreedyKernelParams& params) {
  const c10::cuda::CUDAGuard guard(logits.device());
  if (params.batch == 0) return;
  switch (logits.scalar_type()) {
    case at::kHalf: launch<at::Half>(logits, params); break;
    case at::kBFloat16: launch<at::BFloat16>(logits, params); break;
    default: launch<float>(logits, params); break;
  }
}

}  // namespace vlm::florence2
