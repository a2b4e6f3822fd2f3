#pragma once

#include <filesystem>
#include <memory>

#include <ATen/ATen.h>

#include "bart.h"
#include "config.h"
#include "generation.h"
#include "image_processor.h"
#include "image_projector.h"
#include "vision_encoder.h"
#include "vlm/ops/attention.h"
#include "weights.h"

namespace vlm::florence2 {

struct PipelineOptions {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  // Checked at load against device and dtype; kAuto takes flash where it runs, else eager.
  AttentionBackend attention = AttentionBackend::kAuto;
  // The most new tokens a request may ask for (the server's --max-new-tokens-limit): with the
  // decoder's positions, the size of the largest decode state (generation.h length_bucket).
  int max_new_tokens_limit = 1024;
  // Decode states kept between calls (Generator); 0: 4 on CUDA, where building one includes a graph
  // capture, and 1 on the CPU, where each costs memory (about 0.9 GB for base in fp32 at batch 8, 3
  // beams and 1,025 positions) and building it is small beside a CPU generation.
  std::size_t kept_decode_states = 0;
  // On CUDA, capture each decode state's step as a CUDA graph (false: every step runs eagerly).
  bool cuda_graphs = true;
};

// The numeric model: image -> pixel values -> DaViT -> projector -> BART encoder -> decoder and
// generation. Token ids in and out; prompts and post-processing live in Florence2Model.
class Pipeline {
 public:
  Pipeline(const std::filesystem::path& dir, const PipelineOptions& options);

  const Config& config() const { return config_; }
  const LoadedWeights& weights() const { return *weights_; }
  const ImageProcessor& image_processor() const { return processor_; }
  const PipelineOptions& options() const { return options_; }
  // The attention backend the decoder's calls run (the setting resolved for this device and dtype).
  AttentionBackend attention_backend() const { return attention_.backend; }
  // The decoder alone, for timing one step against a cache (bench/florence2).
  const BartDecoder& decoder() const { return *decoder_; }

  // pixel_values [B, 3, H, W] (any device/dtype) -> DaViT output [B, C, H', W'].
  at::Tensor vision_features(const at::Tensor& pixel_values) const;
  // pixel_values -> projected image tokens [B, 1 + H'W', d_model].
  at::Tensor image_features(const at::Tensor& pixel_values) const;
  // DaViT output -> projected image tokens.
  at::Tensor project(const at::Tensor& vision_features) const;
  // Encoder over [image tokens, prompt embeddings]; prompt_ids [B, L] int64.
  at::Tensor encode(const at::Tensor& image_features, const at::Tensor& prompt_ids) const;
  // Logits of the first decoder step (decoder_start_token_id) [B, vocab], float32 CPU.
  at::Tensor first_step_logits(const at::Tensor& encoder_hidden) const;
  Generated generate(const at::Tensor& encoder_hidden, const GenerationConfig& generation, int max_length,
                     BeamTrace* trace = nullptr) const;
  // Whether the last generate() replayed its decode step as a CUDA graph.
  bool last_generation_graphed() const { return generator_->last_graphed(); }
  // The top length bucket: the longest max_length a request can reach (1 + max_new_tokens_limit, at
  // most the decoder's positions + 1).
  int max_generation_length() const { return max_generation_length_; }
  // Decode states generate() has built (Generator::states_created).
  std::size_t decode_states_created() const { return generator_->states_created(); }

 private:
  Config config_;
  PipelineOptions options_;
  int max_generation_length_;
  AttentionChoice attention_;
  std::unique_ptr<LoadedWeights> weights_;
  ImageProcessor processor_;
  std::unique_ptr<VisionEncoder> vision_;
  std::unique_ptr<ImageProjector> projector_;
  std::unique_ptr<BartEncoder> encoder_;
  std::unique_ptr<BartDecoder> decoder_;
  std::unique_ptr<Generator> generator_;  // keeps decode states across calls (hence not const)
};

}  // namespace vlm::florence2
