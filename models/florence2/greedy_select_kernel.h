#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

// The CUDA half of GreedySelector: one kernel for everything a greedy step does after the LM head.
namespace vlm::florence2 {

inline constexpr int kGreedyKernelMaxEos = 8;

// One block's share of a row, left in the workspace for the row's last block: the best (value,
// index) of its chunk in torch's arg-max order, and the chunk's log-sum-exp as its maximum and the
// sum of exp(x - maximum) (the maximum taken out only where finite, as torch's logsumexp does).
struct alignas(16) GreedyPartial {
  float value;
  int index;
  float max;
  float sum;
};

// How the kernel splits a row of the vocabulary: `blocks` blocks of `chunk` entries (the last one
// shorter), so that a batch-1 step reads its row on many SMs.
struct GreedySplit {
  int blocks = 1;
  int chunk = 0;
};

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
  // The workspace, zeroed once; the kernel leaves its counters at 0, so a step needs no memset and
  // replays in a CUDA graph.
  GreedyPartial* partials = nullptr;  // [batch, split.blocks]
  unsigned* blocks_done = nullptr;    // [batch]: the row's last block reduces the partials
  unsigned* rows_done = nullptr;      // the last row's last block advances the position
  GreedySplit split;
  int ngram_window = 0;
  int min_new_tokens = 0;
  int forced_bos = -1;  // -1: none
  int forced_eos = -1;
  int eos[kGreedyKernelMaxEos] = {};
  int eos_count = 0;
  int pad = 0;
};

inline constexpr std::int64_t kGreedyPartialWords = sizeof(GreedyPartial) / sizeof(std::int32_t);

// 32-bit words of workspace the kernel needs for `rows` rows split as `split`: the partials, then a
// counter per row, then rows_done.
inline std::int64_t greedy_workspace_words(std::int64_t rows, const GreedySplit& split) {
  return rows * split.blocks * kGreedyPartialWords + rows + 1;
}

// Points `params`' partials and counters into `words`, a workspace of greedy_workspace_words(rows,
// params.split).
inline void point_greedy_workspace(GreedyKernelParams& params, std::int32_t* words, std::int64_t rows) {
  params.partials = reinterpret_cast<GreedyPartial*>(words);
  params.blocks_done = reinterpret_cast<unsigned*>(words + rows * params.split.blocks * kGreedyPartialWords);
  params.rows_done = params.blocks_done + rows;
}

#ifdef VLM_WITH_CUDA
// The split for up to `rows` rows of `vocab` entries on CUDA device `device` (its SM count is
// queried once and cached by ATen).
GreedySplit greedy_select_split(std::int64_t rows, std::int64_t vocab, c10::DeviceIndex device);

// logits: [batch, vocab] float32, float16 or bfloat16 on CUDA, banned positions overwritten in place.
void greedy_select_cuda(const at::Tensor& logits, const GreedyKernelParams& params);
#endif

}  // namespace vlm::florence2
