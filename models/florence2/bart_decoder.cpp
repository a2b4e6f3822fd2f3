#include <cmath>

#include "bart.h"
#include "bart_attention.h"
#include "vlm/error.h"

namespace vlm::florence2 {

KvCache BartDecoder::start(const at::Tensor& encoder_hidden, std::int64_t max_length) const {
  const std::string scope = "model.language_model.decoder";
  const int heads = config_.decoder_attention_heads;
  const auto rows = encoder_hidden.size(0);
  const auto head_dim = config_.d_model / heads;
  KvCache cache;
  cache.layers.reserve(config_.decoder_layers);
  for (int i = 0; i < config_.decoder_layers; ++i) {
    const auto layer = scope + ".layers." + std::to_string(i);
    KvCache::Layer entry;
    entry.cross_key = split_heads(linear(weights_, layer + ".encoder_attn.k_proj", encoder_hidden), heads);
    entry.cross_value = split_heads(linear(weights_, layer + ".encoder_attn.v_proj", encoder_hidden), heads);
    entry.self_key = at::empty({rows, heads, max_length, head_dim}, encoder_hidden.options());
    entry.self_value = at::empty_like(entry.self_key);
    cache.layers.push_back(std::move(entry));
  }
  return cache;
}

at::Tensor BartDecoder::forward(const at::Tensor& input_ids, KvCache& cache) const {
  const std::string scope = "model.language_model.decoder";
  const auto steps = input_ids.size(1);
  const auto past = cache.length;
  const auto capacity = cache.layers.empty() ? 0 : cache.layers[0].self_key.size(2);
  if (past + steps > capacity || past + steps > config_.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument, "decoder position " + std::to_string(past + steps) +
                                                 " exceeds the cache (" + std::to_string(capacity) +
                                                 ") or max_position_embeddings");
  }
  const at::Tensor& shared = weights_.get("model.language_model.shared.weight");
  at::Tensor h = at::embedding(shared, input_ids);
  if (config_.scale_embedding) h = h * std::sqrt(static_cast<double>(config_.d_model));
  const at::Tensor positions = weights_.get(scope + ".embed_positions.weight").slice(0, 2 + past, 2 + past + steps);
  h = layer_norm(weights_, scope + ".layernorm_embedding", h + positions);
  const int heads = config_.decoder_attention_heads;
  const auto self_options = bart_attention_options(config_.d_model, heads, /*causal=*/true);
  const auto cross_options = bart_attention_options(config_.d_model, heads, /*causal=*/false);
  for (int i = 0; i < config_.decoder_layers; ++i) {
    const auto layer = scope + ".layers." + std::to_string(i);
    auto& entry = cache.layers[i];
    const at::Tensor q = split_heads(linear(weights_, layer + ".self_attn.q_proj", h), heads);
    entry.self_key.narrow(2, past, steps).copy_(split_heads(linear(weights_, layer + ".self_attn.k_proj", h), heads));
    entry.self_value.narrow(2, past, steps).copy_(split_heads(linear(weights_, layer + ".self_attn.v_proj", h), heads));
    at::Tensor a = attention(q, entry.self_key.narrow(2, 0, past + steps), entry.self_value.narrow(2, 0, past + steps),
                             self_options);
    a = linear(weights_, layer + ".self_attn.out_proj", merge_heads(a));
    h = layer_norm(weights_, layer + ".self_attn_layer_norm", h + a);

    const at::Tensor cq = split_heads(linear(weights_, layer + ".encoder_attn.q_proj", h), heads);
    a = linear(weights_, layer + ".encoder_attn.out_proj",
               merge_heads(attention(cq, entry.cross_key, entry.cross_value, cross_options)));
    h = layer_norm(weights_, layer + ".encoder_attn_layer_norm", h + a);

    a = linear(weights_, layer + ".fc2", gelu_exact(linear(weights_, layer + ".fc1", h)));
    h = layer_norm(weights_, layer + ".final_layer_norm", h + a);
  }
  cache.length = past + steps;
  // The LM head is tied to the shared embedding (tie_word_embeddings), without bias.
  return at::linear(h, shared);
}

}  // namespace vlm::florence2
