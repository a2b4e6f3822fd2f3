#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "post_processor.h"
#include "vlm/model.h"

namespace vlm::florence2 {

// Which parameter names a checkpoint uses: transformers-native (`florence-community/*`,
// model_type florence2 with `embed_dim`) or Microsoft's remote-code release (`dim_embed`).
enum class CheckpointLayout { kNative, kOriginal };

struct VisionConfig {
  int in_channels = 3;
  std::vector<int> depths;
  std::vector<int> patch_size;
  std::vector<int> patch_stride;
  std::vector<int> patch_padding;
  std::vector<bool> patch_prenorm;
  std::vector<int> embed_dim;
  std::vector<int> num_heads;
  std::vector<int> num_groups;
  int window_size = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int projection_dim = 1024;
  int max_temporal_embeddings = 100;
  int max_position_embeddings = 50;
  int num_stages() const { return static_cast<int>(embed_dim.size()); }
};

struct TextConfig {
  int vocab_size = 51289;
  int d_model = 768;
  int encoder_layers = 6;
  int decoder_layers = 6;
  int encoder_attention_heads = 12;
  int decoder_attention_heads = 12;
  int encoder_ffn_dim = 3072;
  int decoder_ffn_dim = 3072;
  int max_position_embeddings = 1024;
  bool scale_embedding = false;
  std::string activation_function = "gelu";
  int pad_token_id = 1;
  int bos_token_id = 0;
  int eos_token_id = 2;
  int decoder_start_token_id = 2;
};

// The generation_config.json fields that change what transformers generates for Florence-2.
struct GenerationConfig {
  int num_beams = 1;
  // Total decoder length cap, decoder start token included (transformers' max_length).
  std::optional<int> max_length;
  std::optional<int> max_new_tokens;
  // EOS is banned until this many tokens follow the start token (transformers' min_new_tokens).
  int min_new_tokens = 0;
  using EarlyStopping = vlm::EarlyStopping;
  EarlyStopping early_stopping = EarlyStopping::kFalse;
  double length_penalty = 1.0;
  int no_repeat_ngram_size = 0;
  int decoder_start_token_id = 2;
  std::optional<int> forced_bos_token_id;
  std::optional<int> forced_eos_token_id;
  std::vector<int> eos_token_ids{2};
  int pad_token_id = 1;
  // Decoder length to stop at, from max_new_tokens or max_length; `default_new_tokens` applies when
  // the checkpoint names neither.
  int resolved_max_length(int default_new_tokens) const;
  bool operator==(const GenerationConfig&) const = default;
};

struct PreprocessorConfig {
  int height = 768;
  int width = 768;
  bool do_resize = true;
  int resample = 3;  // PIL code; 3 = bicubic, the only one Florence-2 checkpoints use
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean{0.485, 0.456, 0.406};
  std::array<double, 3> image_std{0.229, 0.224, 0.225};
  int image_seq_length = 577;
};

struct Config {
  CheckpointLayout layout = CheckpointLayout::kNative;
  VisionConfig vision;
  TextConfig text;
  GenerationConfig generation;
  PreprocessorConfig preprocessor;
  // processor_config.json's "post_processor_config" when the folder has one (transformers-native
  // checkpoints save their processor's settings there; transformers then reads missing entries as
  // 0 / no banned phrases); otherwise the original checkpoints' settings, which Microsoft's remote
  // code hard-codes.
  PostProcessorConfig post_processor;
};

// Reads config.json (either layout), generation_config.json, preprocessor_config.json and
// processor_config.json from a
// Hugging Face folder. Missing optional files fall back to the values transformers would use.
// Throws kNotFound / kBadCheckpoint naming the file and the field.
Config load_config(const std::filesystem::path& dir);

// True when `dir/config.json` declares model_type florence2 (used by the registry).
bool is_florence2_folder(const std::filesystem::path& dir);

}  // namespace vlm::florence2
