#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

// The CUDA half of GreedySelector: one kernel for everything a greedy step does after the LM head.
namespace vlm::florence2 {

inline constexpr int kGreedyKernelMaxEos = 8;

// Device pointers and the config's constants; the front (greedy_select.cpp) checks dtypes, devices
// and layout.
struct GreedyKernelParams {
  std::int64_t batch = 0;
  std::int64_t vocab = 0;
  std::int64_t logits_stride = 0;  // elements between rows of the logits; columns are contiguous
  std::int64_t* ids = nullptr;     // [batch, ids_stride]
  std::int64_t ids_stride = 0;
  float* token_log_probs = nullptr;  // [batch, log_probs_stride]
  std::int64_t log_probs_stride = 0;
  bool* unfinished = nullptr;  // [batch]
  std::int64_t* position = nullptr;
  std::int64_t* length = nullptr;
  const std::int64_t* max_length = nullptr;
  const std::int64_t* ngram_size = nullptr;
  unsigned* rows_done = nullptr;  // 0 between steps: the last row's block advances the position
  int ngram_window = 0;
  int min_new_tokens = 0;
  int forced_bos = -1;  // -1: none
  int forced_eos = -1;
  int eos[kGreedyKernelMaxEos] = {};
  int eos_count = 0;
  int pad = 0;
};

#ifdef VLM_WITH_CUDA
// logits: [batch, vocab] float32, float16 or bfloat16 on CUDA, banned positions overwritten in place.
void greedy_select_cuda(const at::Tensor& logits, const GreedyKernelParams& params);
#endif

}  // namespace vlm::florence2
