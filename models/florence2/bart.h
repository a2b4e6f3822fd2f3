#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "config.h"
#include "kv_cache.h"
#include "layers.h"
#include "vlm/ops/attention.h"
#include "weights.h"

namespace vlm::florence2 {

struct BartEncoderLayer {
  Linear qkv;  // q_proj, k_proj and v_proj in one GEMM
  Linear out;
  LayerNorm self_norm;
  Linear fc1;
  Linear fc2;
  LayerNorm final_norm;
};

struct BartDecoderLayer {
  Linear self_qkv;
  Linear self_out;
  LayerNorm self_norm;
  Linear cross_q;
  Linear cross_kv;  // k_proj and v_proj of the encoder attention, applied once per image
  Linear cross_out;
  LayerNorm cross_norm;
  Linear fc1;
  Linear fc2;
  LayerNorm final_norm;
};

// BART encoder (post-norm, learned positions offset by 2, embedding LayerNorm) over the
// concatenated image and prompt embeddings. Layers are resolved from `weights` at construction.
class BartEncoder {
 public:
  BartEncoder(const TextConfig& config, const Weights& weights, AttentionBackend attention);
  // Token embeddings of `input_ids` [B, L] (scaled when scale_embedding), without positions.
  at::Tensor embed_tokens(const at::Tensor& input_ids) const;
  // inputs_embeds [B, S, D] -> last hidden state [B, S, D].
  at::Tensor forward(const at::Tensor& inputs_embeds) const;

 private:
  const TextConfig& config_;
  at::Tensor shared_;
  at::Tensor positions_;
  LayerNorm embedding_norm_;
  std::vector<BartEncoderLayer> layers_;
  AttentionOptions attention_;
};

// BART decoder with KV cache and the tied LM head.
class BartDecoder {
 public:
  BartDecoder(const TextConfig& config, const Weights& weights, AttentionBackend attention);
  const TextConfig& config() const { return config_; }
  // Cross-attention keys/values of every layer from `encoder_hidden` [batch, S, D] (one row per
  // image), and zeroed self-attention buffers for batch * beams rows and `max_length` positions.
  KvCache start(const at::Tensor& encoder_hidden, std::int64_t beams, std::int64_t max_length) const;
  // Recomputes the cross-attention keys/values of `cache` in place for new images of the same shape,
  // and zeroes the self-attention buffers (static decode state reused across requests).
  void restart(const at::Tensor& encoder_hidden, KvCache& cache) const;
  // Next-token logits [rows, T, vocab] for `input_ids` [rows, T] at positions cache.length..+T.
  at::Tensor forward(const at::Tensor& input_ids, KvCache& cache) const;
  // Decoding: logits [rows, vocab] for one token per row, each row's token of `ids` [rows, length]
  // (the sequences so far) at the position held by the int64 scalar tensor `position`. Every shape is
  // fixed by the cache and `ids`, none by the position, so the call can be captured in a CUDA graph
  // and replayed at any position.
  at::Tensor step(const at::Tensor& ids, const at::Tensor& position, KvCache& cache) const;

 private:
  // Where the self-attention keys of a call go and which cached keys its queries see.
  struct SelfWindow {
    std::int64_t past = 0;  // host-indexed: positions past..past+T-1, causal
    std::int64_t steps = 0;
    at::Tensor position;  // device-indexed (one token): [1] int64 index into the cache
  };
  at::Tensor layers_forward(at::Tensor h, KvCache& cache, const SelfWindow& window) const;
  at::Tensor cross_attention(const BartDecoderLayer& layer, const at::Tensor& h, const KvCache::Layer& entry,
                             std::int64_t beams) const;

  const TextConfig& config_;
  at::Tensor shared_;
  at::Tensor positions_;
  LayerNorm embedding_norm_;
  std::vector<BartDecoderLayer> layers_;
  AttentionOptions self_attention_;   // causal, for the host-indexed path
  AttentionOptions cross_attention_;  // also the step's self-attention, masked by key lengths
};

}  // namespace vlm::florence2
