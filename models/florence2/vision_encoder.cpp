#include "vision_encoder.h"

#include <cmath>

#include "layers.h"
#include "vlm/ops/attention.h"

namespace vlm::florence2 {
namespace {

at::Tensor channels_last_norm(const LayerNorm& norm, const at::Tensor& x) {
  return norm(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
}

DavitHalf load_half(const Weights& w, const std::string& scope, const std::string& attention, bool qkv_bias) {
  return {Conv2d::depthwise(w, scope + ".conv1"),
          LayerNorm::load(w, scope + ".norm1"),
          Linear::load(w, scope + "." + attention + ".qkv", qkv_bias),
          Linear::load(w, scope + "." + attention + ".proj"),
          Conv2d::depthwise(w, scope + ".conv2"),
          LayerNorm::load(w, scope + ".norm2"),
          Linear::load(w, scope + ".ffn.fc1"),
          Linear::load(w, scope + ".ffn.fc2")};
}

}  // namespace

VisionEncoder::VisionEncoder(const VisionConfig& config, const Weights& weights, AttentionBackend attention)
    : window_size_(config.window_size),
      dtype_(weights.get("model.vision_tower.convs.0.conv.weight").scalar_type()),
      attention_(attention) {
  for (int stage = 0; stage < config.num_stages(); ++stage) {
    const auto embed = "model.vision_tower.convs." + std::to_string(stage);
    DavitStage s{Conv2d::load(weights, embed + ".conv", config.patch_stride[stage], config.patch_padding[stage]),
                 LayerNorm::load(weights, embed + ".norm"),
                 config.patch_prenorm[stage],
                 config.num_heads[stage],
                 config.num_groups[stage],
                 {}};
    for (int block = 0; block < config.depths[stage]; ++block) {
      const auto scope = "model.vision_tower.blocks." + std::to_string(stage) + "." + std::to_string(block);
      s.blocks.push_back({load_half(weights, scope + ".spatial_block", "window_attn", config.qkv_bias),
                          load_half(weights, scope + ".channel_block", "channel_attn", config.qkv_bias)});
    }
    stages_.push_back(std::move(s));
  }
}

at::Tensor VisionEncoder::conv_embed(const DavitStage& stage, const at::Tensor& input) const {
  at::Tensor x = input;
  if (stage.pre_norm) x = channels_last_norm(stage.embed_norm, x);
  x = stage.embed(x);
  if (!stage.pre_norm) x = channels_last_norm(stage.embed_norm, x);
  return x;
}

at::Tensor VisionEncoder::window_attention(const DavitStage& stage, const DavitHalf& half,
                                           const at::Tensor& input) const {
  const auto batch = input.size(0);
  const auto height = input.size(1);
  const auto width = input.size(2);
  const auto dim = input.size(3);
  const int ws = window_size_;
  const auto pad_right = (ws - width % ws) % ws;
  const auto pad_bottom = (ws - height % ws) % ws;
  at::Tensor x = at::constant_pad_nd(input, {0, 0, 0, pad_right, 0, pad_bottom});
  const auto padded_h = x.size(1);
  const auto padded_w = x.size(2);
  x = x.view({batch, padded_h / ws, ws, padded_w / ws, ws, dim})
          .permute({0, 1, 3, 2, 4, 5})
          .contiguous()
          .view({-1, ws * ws, dim});
  const auto windows = x.size(0);
  const auto tokens = x.size(1);
  const int heads = stage.heads;
  const at::Tensor qkv = half.qkv(x).reshape({windows, tokens, 3, heads, dim / heads}).permute({2, 0, 3, 1, 4});
  AttentionOptions options;
  options.backend = attention_;
  options.scale = 1.0 / std::sqrt(static_cast<double>(dim / heads));
  at::Tensor out = attention(qkv[0], qkv[1], qkv[2], options);  // [windows, heads, tokens, head_dim]
  out = out.transpose(1, 2).reshape({windows, tokens, dim});
  out = half.proj(out);
  out = out.view({-1, padded_h / ws, padded_w / ws, ws, ws, dim})
            .permute({0, 1, 3, 2, 4, 5})
            .contiguous()
            .view({-1, padded_h, padded_w, dim});
  out = out.slice(1, 0, height).slice(2, 0, width).contiguous();
  return out.view({batch, height * width, dim});
}

at::Tensor VisionEncoder::channel_attention(const DavitStage& stage, const DavitHalf& half, const at::Tensor& x) const {
  const auto batch = x.size(0);
  const auto tokens = x.size(1);
  const auto dim = x.size(2);
  const int groups = stage.groups;
  // Attention across channels: each group's channels are the "sequence", the tokens the "head dim".
  const at::Tensor qkv = half.qkv(x).reshape({batch, tokens, 3, groups, dim / groups}).permute({2, 0, 3, 4, 1});
  AttentionOptions options;
  options.backend = attention_;
  options.scale = 1.0 / std::sqrt(static_cast<double>(tokens));
  at::Tensor out = attention(qkv[0], qkv[1], qkv[2], options);  // [batch, groups, dim/groups, tokens]
  out = out.permute({0, 3, 1, 2}).reshape({batch, tokens, dim});
  return half.proj(out);
}

at::Tensor VisionEncoder::half_block(const DavitStage& stage, const DavitHalf& half, HalfKind kind,
                                     const at::Tensor& input) const {
  const auto batch = input.size(0);
  const auto dim = input.size(1);
  const auto height = input.size(2);
  const auto width = input.size(3);
  at::Tensor x = half.conv1(input) + input;
  x = x.flatten(2).transpose(1, 2);
  const at::Tensor normed = half.norm1(x);
  x = x + (kind == HalfKind::kSpatial ? window_attention(stage, half, normed.view({batch, height, width, dim}))
                                      : channel_attention(stage, half, normed));
  x = x.transpose(1, 2).view({batch, dim, height, width});
  x = half.conv2(x) + x;
  x = x.flatten(2).transpose(1, 2);
  x = x + half.fc2(half.fc1.gelu(half.norm2(x)));
  return x.transpose(1, 2).view({batch, dim, height, width});
}

at::Tensor VisionEncoder::forward(const at::Tensor& pixel_values) const {
  at::Tensor x = pixel_values.to(dtype_);
  for (const auto& stage : stages_) {
    x = conv_embed(stage, x);
    for (const auto& block : stage.blocks) {
      x = half_block(stage, block.spatial, HalfKind::kSpatial, x);
      x = half_block(stage, block.channel, HalfKind::kChannel, x);
    }
  }
  return x;
}

}  // namespace vlm::florence2
