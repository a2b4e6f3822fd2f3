#include "vision_encoder.h"

#include <cmath>

#include "layers.h"
#include "vlm/ops/attention.h"

namespace vlm::florence2 {
namespace {

at::Tensor channels_last_norm(const Weights& w, const std::string& scope, const at::Tensor& x) {
  return layer_norm(w, scope, x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
}

at::Tensor depthwise_conv(const Weights& w, const std::string& scope, const at::Tensor& x) {
  return at::conv2d(x, w.get(scope + ".weight"), w.get(scope + ".bias"), 1, 1, 1, x.size(1));
}

}  // namespace

at::Tensor VisionEncoder::conv_embed(int stage, const at::Tensor& input) const {
  const auto scope = "model.vision_tower.convs." + std::to_string(stage);
  at::Tensor x = input;
  const bool pre_norm = config_.patch_prenorm[stage];
  if (pre_norm) x = channels_last_norm(weights_, scope + ".norm", x);
  x = at::conv2d(x, weights_.get(scope + ".conv.weight"), weights_.get(scope + ".conv.bias"),
                 config_.patch_stride[stage], config_.patch_padding[stage]);
  if (!pre_norm) x = channels_last_norm(weights_, scope + ".norm", x);
  return x;
}

at::Tensor VisionEncoder::window_attention(int stage, const std::string& scope, const at::Tensor& input) const {
  const auto batch = input.size(0);
  const auto height = input.size(1);
  const auto width = input.size(2);
  const auto dim = input.size(3);
  const int ws = config_.window_size;
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
  const int heads = config_.num_heads[stage];
  const at::Tensor qkv = linear(weights_, scope + ".qkv", x, config_.qkv_bias)
                             .reshape({windows, tokens, 3, heads, dim / heads})
                             .permute({2, 0, 3, 1, 4});
  AttentionOptions options;
  options.backend = attention_;
  options.scale = 1.0 / std::sqrt(static_cast<double>(dim / heads));
  at::Tensor out = attention(qkv[0], qkv[1], qkv[2], options);  // [windows, heads, tokens, head_dim]
  out = out.transpose(1, 2).reshape({windows, tokens, dim});
  out = linear(weights_, scope + ".proj", out);
  out = out.view({-1, padded_h / ws, padded_w / ws, ws, ws, dim})
            .permute({0, 1, 3, 2, 4, 5})
            .contiguous()
            .view({-1, padded_h, padded_w, dim});
  out = out.slice(1, 0, height).slice(2, 0, width).contiguous();
  return out.view({batch, height * width, dim});
}

at::Tensor VisionEncoder::channel_attention(int stage, const std::string& scope, const at::Tensor& x) const {
  const auto batch = x.size(0);
  const auto tokens = x.size(1);
  const auto dim = x.size(2);
  const int groups = config_.num_groups[stage];
  // Attention across channels: each group's channels are the "sequence", the tokens the "head dim".
  const at::Tensor qkv = linear(weights_, scope + ".qkv", x, config_.qkv_bias)
                             .reshape({batch, tokens, 3, groups, dim / groups})
                             .permute({2, 0, 3, 4, 1});
  AttentionOptions options;
  options.backend = attention_;
  options.scale = 1.0 / std::sqrt(static_cast<double>(tokens));
  at::Tensor out = attention(qkv[0], qkv[1], qkv[2], options);  // [batch, groups, dim/groups, tokens]
  out = out.permute({0, 3, 1, 2}).reshape({batch, tokens, dim});
  return linear(weights_, scope + ".proj", out);
}

at::Tensor VisionEncoder::spatial_block(int stage, const std::string& scope, const at::Tensor& input) const {
  const auto batch = input.size(0);
  const auto dim = input.size(1);
  const auto height = input.size(2);
  const auto width = input.size(3);
  at::Tensor x = depthwise_conv(weights_, scope + ".conv1", input) + input;
  x = x.flatten(2).transpose(1, 2);
  at::Tensor h = layer_norm(weights_, scope + ".norm1", x).view({batch, height, width, dim});
  x = x + window_attention(stage, scope + ".window_attn", h);
  x = x.transpose(1, 2).view({batch, dim, height, width});
  x = depthwise_conv(weights_, scope + ".conv2", x) + x;
  x = x.flatten(2).transpose(1, 2);
  h = layer_norm(weights_, scope + ".norm2", x);
  h = linear(weights_, scope + ".ffn.fc2", gelu_exact(linear(weights_, scope + ".ffn.fc1", h)));
  x = x + h;
  return x.transpose(1, 2).view({batch, dim, height, width});
}

at::Tensor VisionEncoder::channel_block(int stage, const std::string& scope, const at::Tensor& input) const {
  const auto batch = input.size(0);
  const auto dim = input.size(1);
  const auto height = input.size(2);
  const auto width = input.size(3);
  at::Tensor x = depthwise_conv(weights_, scope + ".conv1", input) + input;
  x = x.flatten(2).transpose(1, 2);
  x = x + channel_attention(stage, scope + ".channel_attn", layer_norm(weights_, scope + ".norm1", x));
  x = x.transpose(1, 2).view({batch, dim, height, width});
  x = depthwise_conv(weights_, scope + ".conv2", x) + x;
  x = x.flatten(2).transpose(1, 2);
  at::Tensor h = layer_norm(weights_, scope + ".norm2", x);
  h = linear(weights_, scope + ".ffn.fc2", gelu_exact(linear(weights_, scope + ".ffn.fc1", h)));
  x = x + h;
  return x.transpose(1, 2).view({batch, dim, height, width});
}

at::Tensor VisionEncoder::forward(const at::Tensor& pixel_values) const {
  at::Tensor x = pixel_values.to(weights_.get("model.vision_tower.convs.0.conv.weight").scalar_type());
  for (int stage = 0; stage < config_.num_stages(); ++stage) {
    x = conv_embed(stage, x);
    for (int block = 0; block < config_.depths[stage]; ++block) {
      const auto scope = "model.vision_tower.blocks." + std::to_string(stage) + "." + std::to_string(block);
      x = spatial_block(stage, scope + ".spatial_block", x);
      x = channel_block(stage, scope + ".channel_block", x);
    }
  }
  return x;
}

}  // namespace vlm::florence2
