#include <cmath>

#include <ATen/record_function.h>

#include "bart.h"
#include "bart_attention.h"
#include "vlm/error.h"

namespace vlm::florence2 {

BartDecoder::BartDecoder(const TextConfig& config, const Weights& weights, AttentionBackend attention)
    : config_(config),
      shared_(weights.get("model.language_model.shared.weight")),
      positions_(weights.get("model.language_model.decoder.embed_positions.weight")),
      embedding_norm_(LayerNorm::load(weights, "model.language_model.decoder.layernorm_embedding")),
      self_attention_(bart_attention_options(config.d_model, config.decoder_attention_heads, true, attention)),
      cross_attention_(bart_attention_options(config.d_model, config.decoder_attention_heads, false, attention)) {
  for (int i = 0; i < config.decoder_layers; ++i) {
    const auto scope = "model.language_model.decoder.layers." + std::to_string(i);
    layers_.push_back({Linear::fused(weights, scope + ".self_attn", {"q_proj", "k_proj", "v_proj"}),
                       Linear::load(weights, scope + ".self_attn.out_proj"),
                       LayerNorm::load(weights, scope + ".self_attn_layer_norm"),
                       Linear::load(weights, scope + ".encoder_attn.q_proj"),
                       Linear::fused(weights, scope + ".encoder_attn", {"k_proj", "v_proj"}),
                       Linear::load(weights, scope + ".encoder_attn.out_proj"),
                       LayerNorm::load(weights, scope + ".encoder_attn_layer_norm"),
                       Linear::load(weights, scope + ".fc1"), Linear::load(weights, scope + ".fc2"),
                       LayerNorm::load(weights, scope + ".final_layer_norm")});
  }
}

KvCache BartDecoder::start(const at::Tensor& encoder_hidden, std::int64_t beams, std::int64_t max_length) const {
  const int heads = config_.decoder_attention_heads;
  const auto head_dim = config_.d_model / heads;
  const auto batch = encoder_hidden.size(0);
  const auto length = encoder_hidden.size(1);
  KvCache cache;
  cache.beams = beams;
  cache.layers.reserve(layers_.size());
  // Zeroed (restart() too): a masked position still multiplies its (zero) probability by the value there.
  cache.self = at::zeros({static_cast<std::int64_t>(layers_.size()), 2, batch * beams, heads, max_length, head_dim},
                         encoder_hidden.options());
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    KvCache::Layer entry;
    entry.cross = at::empty({batch, length, 2 * config_.d_model}, encoder_hidden.options());
    entry.cross_key = split_heads(entry.cross.narrow(-1, 0, config_.d_model), heads);
    entry.cross_value = split_heads(entry.cross.narrow(-1, config_.d_model, config_.d_model), heads);
    entry.self_kv = cache.self[static_cast<std::int64_t>(i)];
    entry.self_key = entry.self_kv[0];
    entry.self_value = entry.self_kv[1];
    cache.layers.push_back(std::move(entry));
  }
  restart(encoder_hidden, cache);
  return cache;
}

void BartDecoder::restart(const at::Tensor& encoder_hidden, KvCache& cache) const {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    auto& entry = cache.layers[i];
    if (encoder_hidden.sizes().slice(0, 2) != entry.cross.sizes().slice(0, 2)) {
      throw Error(ErrorCode::kInternal, "decoder cache built for encoder output " + c10::str(entry.cross.sizes()) +
                                            ", given " + c10::str(encoder_hidden.sizes()));
    }
    entry.cross.copy_(layers_[i].cross_kv(encoder_hidden));
  }
  cache.self.zero_();
  cache.length = 0;
}

at::Tensor BartDecoder::cross_attention(const BartDecoderLayer& layer, const at::Tensor& h, const KvCache::Layer& entry,
                                        std::int64_t beams) const {
  const int heads = config_.decoder_attention_heads;
  // The keys and values were written from the encoder output before the first step.
  AttentionOptions options = cross_attention_;
  options.kv_ready = true;
  at::Tensor q = split_heads(layer.cross_q(h), heads);  // [rows, heads, T, head_dim]
  if (beams == 1) return merge_heads(attention(q, entry.cross_key, entry.cross_value, options));
  // The beams of an image are extra query rows against its one copy of the keys and values.
  const auto rows = q.size(0);
  const auto steps = q.size(2);
  const auto head_dim = q.size(3);
  const auto batch = rows / beams;
  q = q.reshape({batch, beams, heads, steps, head_dim}).permute({0, 2, 1, 3, 4}).reshape({batch, heads, -1, head_dim});
  const at::Tensor a = attention(q, entry.cross_key, entry.cross_value, options)
                           .reshape({batch, heads, beams, steps, head_dim})
                           .permute({0, 2, 1, 3, 4})
                           .reshape({rows, heads, steps, head_dim});
  return merge_heads(a);
}

// The RECORD_USER_SCOPE ranges name the decoder's parts for bench_florence2 --profile. With no
// profiler running each costs the thread-local callback check every aten op makes anyway, and a
// replayed CUDA graph runs no host code at all.
at::Tensor BartDecoder::layers_forward(at::Tensor h, KvCache& cache, const SelfWindow& window) const {
  const int heads = config_.decoder_attention_heads;
  const std::int64_t d = config_.d_model;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const auto& layer = layers_[i];
    auto& entry = cache.layers[i];
    {
      RECORD_USER_SCOPE("florence2.decoder.self_attention");
      const at::Tensor qkv = layer.self_qkv(h);
      const at::Tensor q = split_heads(qkv.narrow(-1, 0, d), heads);
      at::Tensor a;
      if (window.position.defined()) {
        // This step's keys and values as [2, rows, heads, 1, head_dim], a view of qkv: the attention
        // writes them into the cache at the position and attends keys [0, position] (on the flash
        // backend in the same kernel).
        const at::Tensor kv =
            qkv.narrow(-1, d, 2 * d).view({h.size(0), h.size(1), 2, heads, d / heads}).permute({2, 0, 3, 1, 4});
        AttentionOptions options = cross_attention_;
        options.append = AttentionOptions::CacheAppend{kv[0], kv[1], window.position};
        a = attention(q, entry.self_key, entry.self_value, options);
      } else {
        const auto end = window.past + window.steps;
        entry.self_key.narrow(2, window.past, window.steps).copy_(split_heads(qkv.narrow(-1, d, d), heads));
        entry.self_value.narrow(2, window.past, window.steps).copy_(split_heads(qkv.narrow(-1, 2 * d, d), heads));
        a = attention(q, entry.self_key.narrow(2, 0, end), entry.self_value.narrow(2, 0, end), self_attention_);
      }
      h = layer.self_norm.residual(h, layer.self_out(merge_heads(a)));
    }
    {
      RECORD_USER_SCOPE("florence2.decoder.cross_attention");
      h = layer.cross_norm.residual(h, layer.cross_out(cross_attention(layer, h, entry, cache.beams)));
    }
    {
      RECORD_USER_SCOPE("florence2.decoder.feed_forward");
      h = layer.final_norm.residual(h, layer.fc2(layer.fc1.gelu(h)));
    }
  }
  RECORD_USER_SCOPE("florence2.decoder.lm_head");
  // The LM head is tied to the shared embedding (tie_word_embeddings), without bias.
  return ops::linear(h, shared_, at::Tensor());
}

at::Tensor BartDecoder::forward(const at::Tensor& input_ids, KvCache& cache) const {
  const auto steps = input_ids.size(1);
  const auto past = cache.length;
  const auto capacity = cache.layers.empty() ? 0 : cache.layers[0].self_key.size(2);
  if (past + steps > capacity || past + steps > config_.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument, "decoder position " + std::to_string(past + steps) +
                                                 " exceeds the cache (" + std::to_string(capacity) +
                                                 ") or max_position_embeddings");
  }
  at::Tensor h = at::embedding(shared_, input_ids);
  if (config_.scale_embedding) h = h * std::sqrt(static_cast<double>(config_.d_model));
  h = embedding_norm_(h + positions_.slice(0, 2 + past, 2 + past + steps));
  at::Tensor logits = layers_forward(h, cache, SelfWindow{past, steps, {}});
  cache.length = past + steps;
  return logits;
}

at::Tensor BartDecoder::step(const at::Tensor& ids, const at::Tensor& position, KvCache& cache) const {
  at::Tensor h;
  SelfWindow window;
  {
    RECORD_USER_SCOPE("florence2.decoder.embed");
    // BART's learned positions start at offset 2. One kernel on CUDA for the token's gather and the
    // five ops after it.
    const at::Tensor index = position.reshape({1});
    h = ops::embedding_layer_norm(shared_, ids,
                                  config_.scale_embedding ? std::sqrt(static_cast<double>(config_.d_model)) : 1.0,
                                  positions_, index, 2, embedding_norm_.weight, embedding_norm_.bias, kLayerNormEps)
            .unsqueeze(1);
    window.position = index;
  }
  return layers_forward(h, cache, window).select(1, 0);
}

}  // namespace vlm::florence2
