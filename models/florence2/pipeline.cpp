#include "pipeline.h"

#include <algorithm>

#include <ATen/core/grad_mode.h>

#include "generation.h"
#include "vlm/error.h"
#include "vlm/logging.h"
#include "vlm/runtime.h"

namespace vlm::florence2 {

Pipeline::Pipeline(const std::filesystem::path& dir, const PipelineOptions& options)
    : config_(load_config(dir)),
      options_(options),
      // The last token is generated from position max_position_embeddings - 1 and never fed back, so
      // one more than the positions fit, as in transformers.
      max_generation_length_(std::min(config_.text.max_position_embeddings, options.max_new_tokens_limit) + 1),
      processor_(config_.preprocessor) {
  if (!at::isFloatingType(options.dtype)) throw Error(ErrorCode::kInvalidArgument, "dtype must be floating point");
  // Here, not in the caller: every way of loading (server, CLI, benchmark, tests) gets fp32 that
  // agrees with fp32 references, not TF32 convolutions in the vision encoder.
  if (options.device.is_cuda() && options.dtype == at::kFloat) require_exact_float32();
  const int heads = config_.text.decoder_attention_heads;
  attention_ = check_attention_backend(options.attention, options.device, options.dtype,
                                       heads > 0 ? config_.text.d_model / heads : 0);
  if (!attention_.fallback_reason.empty()) {
    log::info("florence2: attention {} ({})", attention_backend_name(attention_.backend), attention_.fallback_reason);
  }
  weights_ = std::make_unique<LoadedWeights>(load_weights(dir, config_, options.dtype, options.device));
  // The resolved backend, not kAuto: the process-wide default is not consulted per call.
  vision_ = std::make_unique<VisionEncoder>(config_.vision, weights_->weights, attention_.backend);
  projector_ = std::make_unique<ImageProjector>(weights_->weights);
  encoder_ = std::make_unique<BartEncoder>(config_.text, weights_->weights, attention_.backend);
  decoder_ = std::make_unique<BartDecoder>(config_.text, weights_->weights, attention_.backend);
  const std::size_t kept = options.kept_decode_states != 0
                               ? options.kept_decode_states
                               : (options.device.is_cuda() ? std::size_t{4} : std::size_t{1});
  generator_ = std::make_unique<Generator>(*decoder_, max_generation_length_, kept, options.cuda_graphs);
}

at::Tensor Pipeline::vision_features(const at::Tensor& pixel_values) const {
  at::NoGradGuard no_grad;
  return vision_->forward(pixel_values.to(options_.device));
}

at::Tensor Pipeline::image_features(const at::Tensor& pixel_values) const {
  at::NoGradGuard no_grad;
  return project(vision_features(pixel_values));
}

at::Tensor Pipeline::project(const at::Tensor& vision_features) const {
  at::NoGradGuard no_grad;
  return (*projector_)(vision_features);
}

at::Tensor Pipeline::encode(const at::Tensor& image_features, const at::Tensor& prompt_ids) const {
  at::NoGradGuard no_grad;
  if (prompt_ids.size(0) != image_features.size(0)) {
    throw Error(ErrorCode::kInvalidArgument, "prompt batch " + std::to_string(prompt_ids.size(0)) +
                                                 " differs from image batch " + std::to_string(image_features.size(0)));
  }
  const at::Tensor prompt = encoder_->embed_tokens(prompt_ids.to(options_.device, at::kLong));
  return encoder_->forward(at::cat({image_features.to(prompt.scalar_type()), prompt}, 1));
}

at::Tensor Pipeline::first_step_logits(const at::Tensor& encoder_hidden) const {
  at::NoGradGuard no_grad;
  KvCache cache = decoder_->start(encoder_hidden, /*beams=*/1, /*max_length=*/1);
  const at::Tensor start = at::full({encoder_hidden.size(0), 1}, config_.generation.decoder_start_token_id,
                                    at::TensorOptions().dtype(at::kLong).device(options_.device));
  return decoder_->forward(start, cache).select(1, 0).to(at::kCPU, at::kFloat);
}

Generated Pipeline::generate(const at::Tensor& encoder_hidden, const GenerationConfig& generation, int max_length,
                             BeamTrace* trace) const {
  at::NoGradGuard no_grad;
  // The last token is generated from position max_position_embeddings - 1 and never fed back.
  const int limit = config_.text.max_position_embeddings + 1;
  return generator_->generate(encoder_hidden, generation, std::min(max_length, limit), trace);
}

}  // namespace vlm::florence2
