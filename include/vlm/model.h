#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vlm/task_result.h"

namespace vlm {

struct Image;  // vlm/image.h: callers of run() include it; users of results and options need not

struct Detection {
  std::string label;
  int class_id = -1;
  float score = 0.0F;
  std::array<float, 4> box{};  // x1, y1, x2, y2 in original-image pixels
};

struct Timings {
  double preprocess_ms = 0.0;
  double inference_ms = 0.0;
  double postprocess_ms = 0.0;
};

// What a generative model read and wrote for one image (POST /v1/chat/completions reports it as
// `usage`); zeros for models that read and write no tokens (YOLO).
struct TokenUsage {
  int prompt_tokens = 0;        // the text prompt's tokens, <s> and </s> included; image tokens are not counted
  int completion_tokens = 0;    // ids generated after the decoder's start token, the end token included
  bool hit_max_length = false;  // generation used its whole token budget (stopped at its length limit)
};

// One image's answer, the record shape shared by `vlmserve detect` and POST /detect.
struct ImageResult {
  int width = 0;
  int height = 0;
  std::vector<Detection> detections;
  std::optional<TaskAnswer> answer;  // generative models only (Florence-2): the task's answer
  Timings timings;
  TokenUsage usage;
};

// When beam search stops, as transformers' early_stopping: kTrue once num_beams candidates are
// finished, kFalse once no running beam can still beat the finished ones (judged at the current
// length), kNever only when none can at the longest length left.
enum class EarlyStopping { kFalse, kTrue, kNever };

// Per-call parameters. Families refuse what does not apply to them (task, text and the generation
// settings for YOLO). Requests are batched together only when their options compare equal, so
// every field takes part.
struct DetectOptions {
  // Keep detections scoring above this, in [0, 1]. Unset: kYoloDefaultConf for YOLO; no filtering
  // for Florence-2, whose scores (token probabilities) run far lower than a detector's.
  std::optional<float> conf;
  float iou = 0.7F;
  int max_det = 300;
  std::vector<int> classes;  // empty: all classes
  bool agnostic_nms = false;
  std::string task;  // Florence-2 task token, e.g. "<OD>"
  std::string text;  // Florence-2 task input
  // Florence-2 generation, as transformers' generate() arguments of the same names; unset: the
  // checkpoint's generation_config.json.
  std::optional<int> num_beams;
  std::optional<int> max_new_tokens;  // also bounded by the model's ModelOptions::max_new_tokens_limit
  std::optional<int> no_repeat_ngram_size;
  std::optional<double> length_penalty;
  std::optional<EarlyStopping> early_stopping;

  bool has_generation_settings() const {
    return num_beams || max_new_tokens || no_repeat_ngram_size || length_penalty || early_stopping;
  }
  bool operator==(const DetectOptions&) const = default;
};
// YOLO's threshold when DetectOptions::conf is unset (Ultralytics' predict default).
inline constexpr float kYoloDefaultConf = 0.25F;
// The ranges validate() enforces; the option table declares the same for flags and requests.
inline constexpr int kMaxDetLimit = 10'000;
inline constexpr int kMaxClassId = 1'000'000;
// Beams multiply a request's decoder work and cache memory; wider searches gain nothing on Florence-2.
inline constexpr int kMaxNumBeams = 32;
// no_repeat_ngram_size beyond the decoder's positions bans nothing.
inline constexpr int kMaxNoRepeatNgramSize = 1024;
// |length_penalty| beyond this only overflows the length normalisation.
inline constexpr double kMaxLengthPenalty = 100.0;
// --max-new-tokens-limit's own bound (the decoder's positions cap generation far below it).
inline constexpr int kMaxNewTokensCeiling = 1'000'000;
// Throws kInvalidArgument naming the first out-of-range field.
void validate(const DetectOptions& options);
// Throws kInvalidArgument naming the model's range when a class id is not one of `class_names`'
// indices; an empty list (an open-vocabulary model) takes any id.
void check_class_ids(const DetectOptions& options, const std::vector<std::string>& class_names);

// Load-time choices.
struct ModelOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N"
  bool half = false;           // fp16 weights and activations (CUDA only)
  std::string attention = "auto";
  bool flash_autotune = true;  // process-wide (set_flash_autotune); time the flash tiles per shape bucket
  // On CUDA, capture the repeated work (YOLO's forward pass per batch size, Florence-2's decode step
  // per decode state) as CUDA graphs and replay them; false runs everything eagerly.
  bool cuda_graphs = true;
  // Longest generation a request may ask for (DetectOptions::max_new_tokens; refused beyond), and the
  // cap on the checkpoint's own default: it bounds the decoder cache a request can make us allocate.
  int max_new_tokens_limit = 1024;
};

struct ModelInfo {
  std::string family;  // "yolo" or "florence2"
  std::string source;  // path it was loaded from
  std::vector<std::string> tasks;
  std::vector<std::string> text_tasks;  // the tasks that need a `text` (a subset of `tasks`)
  std::vector<std::string> classes;     // index = class id; empty for open-vocabulary models
  std::string device;
  std::string dtype;
  std::string attention;  // attention backend in use ("none" for models without attention)
  // "on" (captured where it can be; a failed capture runs eagerly and is logged), "off"
  // (--cuda-graphs=false), "none" (not on CUDA), or "failed: <reason>" once capture has failed for
  // the whole model.
  std::string cuda_graphs;
  int image_size = 0;  // square input side the model expects
  int max_batch = 0;   // 0: any batch size
  double load_ms = 0.0;
};

// A loaded model. run() is not required to be thread-safe: callers serialise calls per model.
class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // Throws kInvalidArgument when `options` ask for what this model cannot do (a task it does not
  // know, text it does not take or needs, a prompt too long for it). run() checks the same; the
  // edges call it first so that a bad request fails before it is decoded, queued or batched.
  // Safe to call from any thread while run() is in progress.
  virtual void check_options(const DetectOptions& options) const = 0;
  // One forward pass over all images (the model may split them into its own batch size).
  virtual std::vector<ImageResult> run(std::span<const Image> images, const DetectOptions& options) = 0;
  // True when run() takes images already on this model's device (Image::device, on ModelInfo::device)
  // as well as host ones, in the same batch: the server then decodes JPEGs there (nvJPEG). Every other
  // model only ever receives host images.
  virtual bool accepts_device_images() const { return false; }
  // Forward passes over blank batches, so that no real batch of 1..batch_max pays a one-time cost
  // (allocator growth, per-shape kernel setup or graph compilation). Families whose cost does not
  // depend on the batch shape keep this no-op.
  virtual void warm_up(int batch_max) { (void)batch_max; }
};

// The batch sizes worth a warm-up pass when batches of 1..batch_max will run: the powers of two
// below batch_max, and batch_max itself.
std::vector<int> warm_up_batch_sizes(int batch_max);

// Chooses the family from the files at `path` (a TorchScript export or a Hugging Face folder).
std::unique_ptr<Model> load_model(const std::filesystem::path& path, const ModelOptions& options);

}  // namespace vlm
