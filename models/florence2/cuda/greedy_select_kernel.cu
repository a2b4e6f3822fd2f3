// A greedy decode step after the LM head, in one launch: transformers' logits processors
// (no_repeat_ngram_size, min_new_tokens, forced BOS/EOS), the arg-max, the chosen token's
// log-softmax, and the search's bookkeeping (ids, token log-probs, finished rows, returned length,
// position). Done with ATen ops it was ~70 small kernels, the largest part of a batch-1 step.
//
// One block per row. Banned tokens are written as -inf into the row's logits before it is read, so
// the reads are plain (coherent) loads: a read-only-cache load could miss the block's own stores.
#include <cmath>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../greedy_select_kernel.h"

namespace vlm::florence2 {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// torch's arg-max order: NaN above everything, then the larger value, then the lower index.
__device__ inline bool better(float a, int ia, float b, int ib) {
  if (isnan(a)) return !isnan(b) || ia < ib;
  if (isnan(b)) return false;
  return a > b || (a == b && ia < ib);
}

template <typename T>
__device__ inline float to_float(T v) {
  return static_cast<float>(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) greedy_select_kernel(T* logits, GreedyKernelParams p) {
  __shared__ float warp_value[kWarps];
  __shared__ int warp_index[kWarps];
  __shared__ float warp_sum[kWarps];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const std::int64_t row = blockIdx.x;
  const std::int64_t cur_len = *p.position + 1;
  const std::int64_t max_length = *p.max_length;
  T* scores = logits + row * p.logits_stride;
  std::int64_t* ids = p.ids + row * p.ids_stride;
  const int vocab = static_cast<int>(p.vocab);

  // Forced EOS comes after forced BOS in transformers' list, so it wins where both apply. A forced
  // row is -inf but at the forced token: chosen with log-probability 0.
  int forced = -2;
  if (p.forced_eos >= 0 && cur_len == max_length - 1) {
    forced = p.forced_eos;
  } else if (p.forced_bos >= 0 && cur_len == 1) {
    forced = p.forced_bos;
  }
  float best_value = -INFINITY;
  int best_index = 0;
  float log_sum = 0.0F;
  if (forced >= 0) {
    best_value = forced < vocab ? 0.0F : -INFINITY;
    best_index = forced < vocab ? forced : 0;
    log_sum = best_value;
  } else {
    // no_repeat_ngram_size n: every start s with s + n <= cur_len whose next n - 1 tokens equal the
    // prefix's last n - 1 bans the token after them (compared over at most the window's n - 1).
    const std::int64_t n = *p.ngram_size;
    if (p.ngram_window > 0 && n > 0) {
      const std::int64_t compared = n - 1 < p.ngram_window - 1 ? n - 1 : p.ngram_window - 1;
      const std::int64_t* tail = ids + cur_len - (n - 1);
      for (std::int64_t s = threadIdx.x; s + n <= cur_len; s += kThreads) {
        bool match = true;
        for (std::int64_t j = 0; j < compared && match; ++j) match = ids[s + j] == tail[j];
        const std::int64_t token = ids[s + n - 1];
        if (match && token >= 0 && token < vocab) scores[token] = static_cast<T>(-INFINITY);
      }
    }
    // min_new_tokens: EOS banned while the tokens after the start token are fewer.
    if (cur_len - 1 < p.min_new_tokens && threadIdx.x < p.eos_count) {
      const int eos = p.eos[threadIdx.x];
      if (eos >= 0 && eos < vocab) scores[eos] = static_cast<T>(-INFINITY);
    }
    __syncthreads();

    for (int v = threadIdx.x; v < vocab; v += kThreads) {
      const float x = to_float(scores[v]);
      if (better(x, v, best_value, best_index)) {
        best_value = x;
        best_index = v;
      }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other_value = __shfl_xor_sync(0xffffffffU, best_value, offset);
      const int other_index = __shfl_xor_sync(0xffffffffU, best_index, offset);
      if (better(other_value, other_index, best_value, best_index)) {
        best_value = other_value;
        best_index = other_index;
      }
    }
    if (lane == 0) {
      warp_value[warp] = best_value;
      warp_index[warp] = best_index;
    }
    __syncthreads();
    best_value = warp_value[0];
    best_index = warp_index[0];
    for (int w = 1; w < kWarps; ++w) {
      if (better(warp_value[w], warp_index[w], best_value, best_index)) {
        best_value = warp_value[w];
        best_index = warp_index[w];
      }
    }

    // logsumexp as torch computes it: the maximum taken out unless it is infinite.
    const float shift = isinf(best_value) ? 0.0F : best_value;
    float sum = 0.0F;
    for (int v = threadIdx.x; v < vocab; v += kThreads) sum += expf(to_float(scores[v]) - shift);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffU, sum, offset);
    if (lane == 0) warp_sum[warp] = sum;
    __syncthreads();
    sum = 0.0F;
    for (int w = 0; w < kWarps; ++w) sum += warp_sum[w];
    log_sum = logf(sum) + shift;
  }
  if (threadIdx.x != 0) return;

  const bool was_unfinished = p.unfinished[row];
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

  // Every block has read the position by the time the last one counts itself in.
  __threadfence();
  if (atomicAdd(p.rows_done, 1U) == gridDim.x - 1) {
    *p.position += 1;
    *p.rows_done = 0;
  }
}

template <typename T>
void launch(const at::Tensor& logits, const GreedyKernelParams& params) {
  auto stream = c10::cuda::getCurrentCUDAStream(logits.device().index());
  greedy_select_kernel<T>
      <<<static_cast<unsigned>(params.batch), kThreads, 0, stream>>>(logits.mutable_data_ptr<T>(), params);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

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
