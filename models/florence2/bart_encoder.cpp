#include <cmath>

#include "bart.h"
#include "bart_attention.h"
#include "vlm/error.h"

namespace vlm::florence2 {

at::Tensor BartEncoder::embed_tokens(const at::Tensor& input_ids) const {
  at::Tensor embeds = at::embedding(weights_.get("model.language_model.shared.weight"), input_ids);
  if (config_.scale_embedding) embeds = embeds * std::sqrt(static_cast<double>(config_.d_model));
  return embeds;
}

at::Tensor BartEncoder::forward(const at::Tensor& inputs_embeds) const {
  const std::string scope = "model.language_model.encoder";
  const auto length = inputs_embeds.size(1);
  if (length > config_.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument, "encoder input of " + std::to_string(length) +
                                                 " tokens exceeds max_position_embeddings " +
                                                 std::to_string(config_.max_position_embeddings));
  }
  // Learned positions start at offset 2 (a fairseq leftover kept by BART).
  const at::Tensor positions = weights_.get(scope + ".embed_positions.weight").slice(0, 2, 2 + length);
  at::Tensor h = layer_norm(weights_, scope + ".layernorm_embedding", inputs_embeds + positions);
  const int heads = config_.encoder_attention_heads;
  const auto options = bart_attention_options(config_.d_model, heads, /*causal=*/false);
  for (int i = 0; i < config_.encoder_layers; ++i) {
    const auto layer = scope + ".layers." + std::to_string(i);
    const at::Tensor q = split_heads(linear(weights_, layer + ".self_attn.q_proj", h), heads);
    const at::Tensor k = split_heads(linear(weights_, layer + ".self_attn.k_proj", h), heads);
    const at::Tensor v = split_heads(linear(weights_, layer + ".self_attn.v_proj", h), heads);
    at::Tensor a = linear(weights_, layer + ".self_attn.out_proj", merge_heads(attention(q, k, v, options)));
    h = layer_norm(weights_, layer + ".self_attn_layer_norm", h + a);
    a = linear(weights_, layer + ".fc2", gelu_exact(linear(weights_, layer + ".fc1", h)));
    h = clamp_fp16(layer_norm(weights_, layer + ".final_layer_norm", h + a));
  }
  return h;
}

}  // namespace vlm::florence2
