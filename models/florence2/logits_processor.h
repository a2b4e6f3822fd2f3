#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "config.h"

namespace vlm::florence2 {

// A request's settings that the processors read on the device: int64 scalar tensors, so that one
// processor (and a captured step) serves requests that differ in them.
struct ProcessorValues {
  at::Tensor max_length;            // decoder tokens to stop at: forced_eos_token_id applies at max_length - 1
  at::Tensor no_repeat_ngram_size;  // 0 (off) up to the processor's n-gram window
};

// transformers' logits processors for Florence-2, in its order: no_repeat_ngram_size,
// min_new_tokens, forced_bos_token_id, forced_eos_token_id. They run as tensor operations on the
// scores' device against decoder prefixes in a fixed-width buffer and a current length held in a
// tensor, so a decode step has the same shapes, and no host read, at every position.
class LogitsProcessor {
 public:
  // `options`: the device of the scores (float32 is used whatever their dtype). The n-gram window is
  // config.no_repeat_ngram_size: the largest n-gram size a request may ask of this processor.
  LogitsProcessor(const GenerationConfig& config, std::int64_t vocab, const at::TensorOptions& options);
  // scores [rows, vocab] float32, updated in place, for the prefixes ids[:, :cur_len]; ids [rows, W]
  // int64 with W >= cur_len (positions from cur_len on are ignored); cur_len an int64 scalar tensor.
  void apply(const at::Tensor& ids, const at::Tensor& cur_len, const ProcessorValues& values, at::Tensor& scores) const;

 private:
  void ban_repeated_ngrams(const at::Tensor& ids, const at::Tensor& cur_len, const at::Tensor& ngram_size,
                           at::Tensor& scores) const;

  int ngram_window_;
  int min_new_tokens_;
  std::int64_t vocab_;
  bool has_forced_bos_;
  bool has_forced_eos_;
  at::Tensor eos_ids_;     // [1, eos ids within the vocabulary] int64
  at::Tensor forced_bos_;  // [vocab] float32: 0 at the forced token, -inf elsewhere
  at::Tensor forced_eos_;
};

}  // namespace vlm::florence2
