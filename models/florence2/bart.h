#pragma once

#include <ATen/ATen.h>

#include "config.h"
#include "kv_cache.h"
#include "weights.h"

namespace vlm::florence2 {

// BART encoder (post-norm, learned positions offset by 2, embedding LayerNorm) over the
// concatenated image and prompt embeddings.
class BartEncoder {
 public:
  BartEncoder(const TextConfig& config, const Weights& weights) : config_(config), weights_(weights) {}
  // Token embeddings of `input_ids` [B, L] (scaled when scale_embedding), without positions.
  at::Tensor embed_tokens(const at::Tensor& input_ids) const;
  // inputs_embeds [B, S, D] -> last hidden state [B, S, D].
  at::Tensor forward(const at::Tensor& inputs_embeds) const;

 private:
  const TextConfig& config_;
  const Weights& weights_;
};

// BART decoder with KV cache and the tied LM head.
class BartDecoder {
 public:
  BartDecoder(const TextConfig& config, const Weights& weights) : config_(config), weights_(weights) {}
  // Cross-attention keys/values for every layer, and empty self-attention buffers for
  // `max_length` positions. `encoder_hidden` [rows, S, D] is already expanded to one row per beam.
  KvCache start(const at::Tensor& encoder_hidden, std::int64_t max_length) const;
  // Next-token logits [rows, T, vocab] for `input_ids` [rows, T] at positions cache.length..+T.
  at::Tensor forward(const at::Tensor& input_ids, KvCache& cache) const;

 private:
  const TextConfig& config_;
  const Weights& weights_;
};

}  // namespace vlm::florence2
