#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "config.h"
#include "layers.h"
#include "vlm/ops/attention.h"
#include "weights.h"

namespace vlm::florence2 {

// One half of a DaViT block (spatial: window attention; channel: group channel attention), each
// with depth-wise conv positional encodings before its attention and its MLP.
struct DavitHalf {
  Conv2d conv1;
  LayerNorm norm1;
  Linear qkv;
  Linear proj;
  Conv2d conv2;
  LayerNorm norm2;
  Linear fc1;
  Linear fc2;
};

struct DavitBlock {
  DavitHalf spatial;
  DavitHalf channel;
};

struct DavitStage {
  Conv2d embed;  // the stage's patch embedding
  LayerNorm embed_norm;
  bool pre_norm = false;  // embed_norm before the convolution, else after
  int heads = 1;          // window attention
  int groups = 1;         // channel attention
  std::vector<DavitBlock> blocks;
};

// DaViT (Florence2VisionBackbone): per stage a conv patch embedding, then blocks of a spatial
// (window attention) and a channel (group channel attention) half, each with depth-wise conv
// positional encodings and an MLP. Layers are resolved from `weights` at construction.
class VisionEncoder {
 public:
  VisionEncoder(const VisionConfig& config, const Weights& weights, AttentionBackend attention);
  // pixel_values [B, 3, H, W] -> last hidden state [B, C, H', W'].
  at::Tensor forward(const at::Tensor& pixel_values) const;

 private:
  at::Tensor conv_embed(const DavitStage& stage, const at::Tensor& x) const;
  // The spatial half attends within windows, the channel half across channel groups; the rest of
  // the two halves is the same.
  enum class HalfKind { kSpatial, kChannel };
  at::Tensor half_block(const DavitStage& stage, const DavitHalf& half, HalfKind kind, const at::Tensor& x) const;
  at::Tensor window_attention(const DavitStage& stage, const DavitHalf& half, const at::Tensor& x) const;
  at::Tensor channel_attention(const DavitStage& stage, const DavitHalf& half, const at::Tensor& x) const;

  int window_size_;
  at::ScalarType dtype_;  // the weights', which pixel values are cast to
  std::vector<DavitStage> stages_;
  AttentionBackend attention_;
};

}  // namespace vlm::florence2
