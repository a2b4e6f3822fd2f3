#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config.h"
#include "florence2.h"
#include "pipeline.h"
#include "post_processor.h"
#include "region_scores.h"
#include "request_generation.h"
#include "task_prompts.h"
#include "vlm/device.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/logging.h"
#include "vlm/ops/attention.h"
#include "vlm/tokenizer.h"

namespace vlm::florence2 {
namespace {

// When neither max_new_tokens nor max_length is in the checkpoint: the budget Microsoft's model
// card passes to generate() (transformers' own default of 20 total tokens truncates every task).
constexpr int kDefaultMaxNewTokens = 1024;

PipelineOptions pipeline_options(at::Device device, const ModelOptions& options) {
  PipelineOptions pipeline;
  pipeline.device = device;
  pipeline.dtype = options.half ? at::kHalf : at::kFloat;
  pipeline.attention = parse_attention_backend(options.attention);
  pipeline.max_new_tokens_limit = options.max_new_tokens_limit;
  pipeline.cuda_graphs = options.cuda_graphs;
  return pipeline;
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

// In a batch, generation pads answers shorter than the longest with pad tokens after their end of
// sequence. transformers keeps them, and pure-text post-processing returns them ("a dog<pad><pad>"),
// so an image's answer would depend on what else shared its batch; dropping them gives every image
// the answer transformers gives it alone, whatever the CLI's --batch or the server's batching.
void drop_batch_padding(std::vector<std::int32_t>& tokens, const GenerationConfig& generation) {
  std::size_t end = tokens.size();
  while (end > 0 && tokens[end - 1] == generation.pad_token_id) --end;
  if (end == tokens.size() || end == 0) return;
  const auto& eos = generation.eos_token_ids;
  if (std::find(eos.begin(), eos.end(), tokens[end - 1]) != eos.end()) tokens.resize(end);
}

class Florence2Model final : public Model {
 public:
  Florence2Model(const std::filesystem::path& dir, const ModelOptions& options,
                 std::chrono::steady_clock::time_point load_start)
      : device_(parse_device(options.device)),
        pipeline_(dir, pipeline_options(device_, options)),
        tokenizer_(Tokenizer::from_directory(dir)),
        max_new_tokens_limit_(options.max_new_tokens_limit) {
    // Microsoft's remote-code processor adds these at runtime; tokenizer.json files that already
    // carry them (onnx-community, florence-community) keep their ids.
    tokenizer_.add_special_tokens(processor_added_tokens());
    scorer_ = std::make_unique<RegionScorer>(tokenizer_);
    info_.family = "florence2";
    info_.source = dir.string();
    for (const auto& task : tasks()) {
      info_.tasks.emplace_back(task.token);
      if (task.takes_input) info_.text_tasks.emplace_back(task.token);
    }
    info_.device = device_.str();
    info_.dtype = options.half ? "float16" : "float32";
    info_.attention = std::string(attention_backend_name(pipeline_.attention_backend()));
    info_.cuda_graphs = device_.is_cuda() ? (options.cuda_graphs ? "on" : "off") : "none";
    info_.image_size = pipeline_.config().preprocessor.height;
    info_.load_ms = elapsed_ms(load_start);
  }

  const ModelInfo& info() const override { return info_; }

  void check_options(const DetectOptions& options) const override {
    prompt_ids(options);
    check_generation_options(options, max_new_tokens_limit_);
  }

  std::vector<ImageResult> run(std::span<const Image> images, const DetectOptions& options) override {
    const std::string task = task_of(options);
    const std::vector<std::int64_t> ids = prompt_ids(options);
    check_generation_options(options, max_new_tokens_limit_);
    const GenerationConfig generation = request_generation(pipeline_.config().generation, options);
    std::vector<ImageResult> results(images.size());
    if (images.empty()) return results;
    const auto start = std::chrono::steady_clock::now();

    const auto batch = static_cast<std::int64_t>(images.size());
    const at::Tensor prompt_ids =
        at::tensor(ids, at::kLong).unsqueeze(0).expand({batch, static_cast<std::int64_t>(ids.size())});
    const at::Tensor pixel_values = pipeline_.image_processor()(images);
    const double preprocess_ms = elapsed_ms(start);

    const auto infer_start = std::chrono::steady_clock::now();
    const at::Tensor encoder_hidden = pipeline_.encode(pipeline_.image_features(pixel_values), prompt_ids);
    const int max_length = request_max_length(generation, kDefaultMaxNewTokens, max_new_tokens_limit_);
    const Generated generated = pipeline_.generate(encoder_hidden, generation, max_length);
    const double inference_ms = elapsed_ms(infer_start);

    const auto post_start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < images.size(); ++i) {
      const auto r = static_cast<std::int64_t>(i);
      const at::Tensor row = generated.ids[r].to(at::kInt).contiguous();
      std::vector<std::int32_t> tokens(row.data_ptr<std::int32_t>(), row.data_ptr<std::int32_t>() + row.numel());
      drop_batch_padding(tokens, generation);
      const at::Tensor log_prob_row = generated.token_log_probs[r].contiguous();
      const std::span<const float> log_probs(log_prob_row.data_ptr<float>(), tokens.size());
      const std::string text = tokenizer_.decode(tokens, /*skip_special_tokens=*/false);
      ImageResult& result = results[i];
      result.usage = usage_of(ids, tokens, max_length);
      result.width = images[i].width();
      result.height = images[i].height();
      ParsedAnswer parsed = post_process_generation(text, task, ImageSize{result.width, result.height},
                                                    pipeline_.config().post_processor);
      // Scores exist when the tokens line up with the parsed text (RegionScorer::score).
      if (const auto scores = scorer_->score(tokens, log_probs, text, parsed.sources)) {
        assign_region_scores(*scores, parsed);
        if (options.conf) drop_regions_below(*options.conf, parsed);
      }
      result.detections = std::move(parsed.boxes);
      result.answer = std::move(parsed.answer);
      result.answer->generated_ids = std::move(tokens);
    }
    const double post_ms = elapsed_ms(post_start);
    for (auto& result : results) {
      result.timings = {preprocess_ms / batch, inference_ms / batch, post_ms / batch};
    }
    return results;
  }

 private:
  static std::string task_of(const DetectOptions& options) { return options.task.empty() ? "<OD>" : options.task; }

  // <s> prompt </s>. The encoder reads the image tokens and these through learned positions, so a
  // longer prompt has no position to take (transformers fails there with an IndexError).
  std::vector<std::int64_t> prompt_ids(const DetectOptions& options) const {
    validate(options);
    const std::string task = task_of(options);
    std::vector<std::int64_t> ids{tokenizer_.bos_id().value_or(0)};
    for (const auto id : tokenizer_.encode(request_prompt(task, options.text), /*add_special_tokens=*/false)) {
      ids.push_back(id);
    }
    ids.push_back(tokenizer_.eos_id().value_or(2));
    const int positions = pipeline_.config().text.max_position_embeddings;
    const int image_tokens = pipeline_.config().preprocessor.image_seq_length;
    if (static_cast<int>(ids.size()) > positions - image_tokens) {
      throw Error(ErrorCode::kInvalidArgument, "text is too long for task " + task + ": its prompt takes " +
                                                   std::to_string(ids.size()) + " tokens, at most " +
                                                   std::to_string(positions - image_tokens) + " fit (the encoder has " +
                                                   std::to_string(positions) + " positions, " +
                                                   std::to_string(image_tokens) + " of them for the image)");
    }
    return ids;
  }

  // The decoder's start token is given, not generated; the end token is generated. An answer that
  // used its whole budget stopped at the length limit, even though its last token is the end token
  // (forced_eos_token_id puts one there).
  static TokenUsage usage_of(const std::vector<std::int64_t>& prompt, const std::vector<std::int32_t>& generated,
                             int max_length) {
    const int completion = std::max(0, static_cast<int>(generated.size()) - 1);
    return {static_cast<int>(prompt.size()), completion, completion + 1 >= max_length};
  }

  c10::Device device_;
  Pipeline pipeline_;
  Tokenizer tokenizer_;
  std::unique_ptr<RegionScorer> scorer_;  // refers to tokenizer_, so built once it stands still
  int max_new_tokens_limit_;
  ModelInfo info_;
};

}  // namespace

bool is_florence2_model_folder(const std::filesystem::path& dir) { return is_florence2_folder(dir); }

std::unique_ptr<Model> load_florence2_model(const std::filesystem::path& dir, const ModelOptions& options) {
  auto model = std::make_unique<Florence2Model>(dir, options, std::chrono::steady_clock::now());
  log::info("loaded Florence-2 from {} in {:.0f} ms", dir.string(), model->info().load_ms);
  return model;
}

}  // namespace vlm::florence2
