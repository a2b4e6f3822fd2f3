#pragma once

#include <ATen/ATen.h>

#include "config.h"
#include "greedy_select_kernel.h"
#include "logits_processor.h"

namespace vlm::florence2 {

// `position` (an int64 scalar tensor) as an index of `shape` ([d0, 1] or [d0, d1, 1]) for
// gather/scatter on the last dimension.
at::Tensor index_at(const at::Tensor& position, at::IntArrayRef shape);

// The config's EOS ids as an int64 tensor on `options`' device.
at::Tensor eos_tensor(const GenerationConfig& config, const at::TensorOptions& options);

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
  // For logits of at most `rows` rows.
  GreedySelector(const GenerationConfig& config, std::int64_t vocab, std::int64_t rows,
                 const at::TensorOptions& options);

  // logits: [batch, vocab] in the model's dtype, batch at most the rows built for, the rows of
  // `state`; overwritten.
  void select(const at::Tensor& logits, GreedyState& state) const;
  // The ATen version on any device: what select() does off CUDA, and the kernel's reference.
  void select_with_ops(const at::Tensor& logits, GreedyState& state) const;
  // Whether select() runs the kernel for logits on `options`' device.
  bool fused() const { return fused_; }
  // How the kernel splits a row: blocks per row and vocabulary entries per block.
  const GreedySplit& split() const { return constants_.split; }

 private:
  GenerationConfig config_;
  std::int64_t vocab_;
  std::int64_t rows_;
  LogitsProcessor processor_;
  at::Tensor eos_;  // [eos ids] int64
  // int32, zeroed once (greedy_workspace_words): the kernel's per-block partials, its count of
  // blocks done per row and of rows done this step, each left at 0 by the kernel.
  at::Tensor workspace_;
  GreedyKernelParams constants_;
  bool fused_ = false;
};

}  // namespace vlm::florence2
