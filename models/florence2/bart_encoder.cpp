#include <cmath>

#include "bart.h"
#include "bart_attention.h"
#include "vlm/error.h"

namespace vlm::florence2 {

BartEncoder::BartEncoder(const TextConfig& config, const Weights& weights, AttentionBackend attention)
    : config_(config),
      shared_(weights.get("model.language_model.shared.weight")),
      positions_(weights.get("model.language_model.encoder.embed_positions.weight")),
      embedding_norm_(LayerNorm::load(weights, "model.language_model.encoder.layernorm_embedding")),
      attention_(bart_attention_options(config.d_model, config.encoder_attention_heads, /*causal=*/false, attention)) {
  for (int i = 0; i < config.encoder_layers; ++i) {
    const auto scope = "model.language_model.encoder.layers." + std::to_string(i);
    layers_.push_back({Linear::fused(weights, scope + ".self_attn", {"q_proj", "k_proj", "v_proj"}),
                       Linear::load(weights, scope + ".self_attn.out_proj"),
                       LayerNorm::load(weights, scope + ".self_attn_layer_norm"), Linear::load(weights, scope + ".fc1"),
                       Linear::load(weights, scope + ".fc2"), LayerNorm::load(weights, scope + ".final_layer_norm")});
  }
}

at::Tensor BartEncoder::embed_tokens(const at::Tensor& input_ids) const {
  at::Tensor embeds = at::embedding(shared_, input_ids);
  if (config_.scale_embedding) embeds = embeds * std::sqrt(static_cast<double>(config_.d_model));
  return embeds;
}

at::Tensor BartEncoder::forward(const at::Tensor& inputs_embeds) const {
  const auto length = inputs_embeds.size(1);
  if (length > config_.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument, "encoder input of " + std::to_string(length) +
                                                 " tokens exceeds max_position_embeddings " +
                                                 std::to_string(config_.max_position_embeddings));
  }
  // Learned positions start at offset 2 (a fairseq leftover kept by BART).
  at::Tensor h = embedding_norm_(inputs_embeds + positions_.slice(0, 2, 2 + length));
  const int heads = config_.encoder_attention_heads;
  const std::int64_t d = config_.d_model;
  for (const auto& layer : layers_) {
    const at::Tensor qkv = layer.qkv(h);
    const at::Tensor q = split_heads(qkv.narrow(-1, 0, d), heads);
    const at::Tensor k = split_heads(qkv.narrow(-1, d, d), heads);
    const at::Tensor v = split_heads(qkv.narrow(-1, 2 * d, d), heads);
    at::Tensor a = layer.out(merge_heads(attention(q, k, v, attention_)));
    h = layer.self_norm.residual(h, a);
    a = layer.fc2(layer.fc1.gelu(h));
    h = clamp_fp16(layer.final_norm.residual(h, a));
  }
  return h;
}

}  // namespace vlm::florence2
