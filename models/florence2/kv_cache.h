#pragma once

#include <vector>

#include <ATen/ATen.h>

namespace vlm::florence2 {

// Decoder state across generation steps. Self-attention keys/values live in buffers sized for the
// whole generation (written in place, no per-step concatenation); cross-attention keys/values are
// computed once from the encoder output and reused by every step.
struct KvCache {
  struct Layer {
    at::Tensor self_key;  // [rows, heads, max_length, head_dim]
    at::Tensor self_value;
    at::Tensor cross_key;  // [rows, heads, encoder_length, head_dim]
    at::Tensor cross_value;
  };
  std::vector<Layer> layers;
  std::int64_t length = 0;  // decoder positions already written

  // Beam search: row i of the next step continues row `rows[i]` of this one.
  void reorder(const at::Tensor& rows);
};

}  // namespace vlm::florence2
