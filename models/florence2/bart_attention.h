#pragma once

#include <cmath>
#include <string>

#include <ATen/ATen.h>

#include "vlm/ops/attention.h"

namespace vlm::florence2 {

// [B, S, D] -> [B, heads, S, D/heads] view.
inline at::Tensor split_heads(const at::Tensor& x, int heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

// [B, heads, S, hd] -> [B, S, heads*hd].
inline at::Tensor merge_heads(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

inline AttentionOptions bart_attention_options(std::int64_t d_model, int heads, bool causal, AttentionBackend backend) {
  AttentionOptions options;
  options.backend = backend;
  options.scale = 1.0 / std::sqrt(static_cast<double>(d_model / heads));
  options.causal = causal;
  return options;
}

// fp16 BART clamps activations that overflowed, as transformers does after each layer.
inline at::Tensor clamp_fp16(const at::Tensor& x) {
  if (x.scalar_type() != at::kHalf) return x;
  constexpr double kLimit = 65504.0 - 1000.0;
  return at::clamp(x, -kLimit, kLimit);
}

}  // namespace vlm::florence2
