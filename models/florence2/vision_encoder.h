#pragma once

#include <ATen/ATen.h>

#include "config.h"
#include "vlm/ops/attention.h"
#include "weights.h"

namespace vlm::florence2 {

// DaViT (Florence2VisionBackbone): per stage a conv patch embedding, then blocks of a spatial
// (window attention) and a channel (group channel attention) half, each with depth-wise conv
// positional encodings and an MLP.
class VisionEncoder {
 public:
  VisionEncoder(const VisionConfig& config, const Weights& weights, AttentionBackend attention)
      : config_(config), weights_(weights), attention_(attention) {}
  // pixel_values [B, 3, H, W] -> last hidden state [B, C, H', W'].
  at::Tensor forward(const at::Tensor& pixel_values) const;

 private:
  at::Tensor conv_embed(int stage, const at::Tensor& x) const;
  at::Tensor spatial_block(int stage, const std::string& scope, const at::Tensor& x) const;
  at::Tensor channel_block(int stage, const std::string& scope, const at::Tensor& x) const;
  at::Tensor window_attention(int stage, const std::string& scope, const at::Tensor& x) const;
  at::Tensor channel_attention(int stage, const std::string& scope, const at::Tensor& x) const;

  const VisionConfig& config_;
  const Weights& weights_;
  AttentionBackend attention_;
};

}  // namespace vlm::florence2
