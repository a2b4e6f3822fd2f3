#pragma once

#include <ATen/ATen.h>

#include "config.h"
#include "greedy_select_kernel.h"
#include "logits_processor.h"

namespace vlm::florence2 {

// What a greedy search carries from step to step besides the decoder cache, on the decoder's device.
struct GreedyState {
  at::Tensor ids;              // [batch, capacity] int64: the start token, the tokens chosen, padding
  at::Tensor position;         // int64 scalar: the position the next step feeds (cur_len - 1)
  ProcessorValues values;      // the request's max_length and no_repeat_ngram_size
  at::Tensor length;           // int64 scalar: columns of ids to return
  at::Tensor unfinished;       // [batch] bool
  at::Tensor token_log_probs;  // [batch, capacity] float32, aligned with ids
};

// A greedy step after the LM head: transformers' logits processors, the arg-max, the chosen token's
// log-softmax, and the state advanced one position (finished rows get padding). On CUDA it is one
// kernel (cuda/greedy_select_kernel.cu); elsewhere, and wherever the kernel does not take the
// config, the same with ATen ops.
class GreedySelector {
 public:
  GreedySelector(const GenerationConfig& config, std::int64_t vocab, const at::TensorOptions& options);

  // logits: [batch, vocab] in the model's dtype, the rows of `state`; overwritten.
  void select(const at::Tensor& logits, GreedyState& state) const;
  // The ATen version on any device: what select() does off CUDA, and the kernel's reference.
  void select_with_ops(const at::Tensor& logits, GreedyState& state) const;
  // Whether select() runs the kernel for logits on `options`' device.
  bool fused() const { return fused_; }

 private:
  GenerationConfig config_;
  std::int64_t vocab_;
  LogitsProcessor processor_;
  at::Tensor eos_;        // [eos ids] int64
  at::Tensor rows_done_;  // [1] int32: the kernel's count of rows done this step
  GreedyKernelParams constants_;
  bool fused_ = false;
};

}  // namespace vlm::florence2
