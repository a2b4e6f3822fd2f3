#pragma once

#include <vector>

#include <ATen/ATen.h>

namespace vlm::florence2 {

// Decoder state across generation steps. Self-attention keys/values live in buffers sized for the
// whole generation (written in place, no per-step concatenation), one row per beam; cross-attention
// keys/values are computed once per image from the encoder output and read by all of its beams.
struct KvCache {
  struct Layer {
    at::Tensor self_kv;      // [2, batch * beams, heads, max_length, head_dim]: keys, values (a view of `self`)
    at::Tensor self_key;     // self_kv[0]
    at::Tensor self_value;   // self_kv[1]
    at::Tensor cross;        // [batch, encoder_length, 2 * d_model]: the fused K/V projection
    at::Tensor cross_key;    // [batch, heads, encoder_length, head_dim], a view of `cross`
    at::Tensor cross_value;  // likewise
  };
  std::vector<Layer> layers;
  // [layers, 2, batch * beams, heads, max_length, head_dim]: every layer's self-attention keys and
  // values in one buffer, so that a step writes a layer's with one copy and a beam reorder (or a
  // reset) is one operation for the whole cache.
  at::Tensor self;
  std::int64_t beams = 1;   // self-attention rows per image
  std::int64_t length = 0;  // positions written by BartDecoder::forward (the host-indexed path)

  // Beam search: row i of the next step continues row `rows[i]` (int64, on the cache's device) of this
  // one, for the first `positions` positions; all of them when `positions` is negative, which gives the
  // call the same shapes at every step (a captured step) at the cost of moving the whole buffers.
  void reorder(const at::Tensor& rows, std::int64_t positions = -1);
};

}  // namespace vlm::florence2
