#include "config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::florence2 {
namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open " + path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kBadCheckpoint, path.string() + " is not valid JSON: " + e.what());
  }
}

// Reads `key` from `object` when present and not null, checking its type; `where` names the file.
template <typename T>
void read(const json& object, const char* key, T& out, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    throw Error(ErrorCode::kBadCheckpoint, where + ": field \"" + key + "\" has an unexpected type: " + it->dump());
  }
}

template <typename T>
void read_optional(const json& object, const char* key, std::optional<T>& out, const std::string& where) {
  if (object.contains(key) && !object[key].is_null()) {
    T value{};
    read(object, key, value, where);
    out = value;
  }
}

// transformers' Florence2PostProcessor reads only these two entries, with 0 and no banned phrases
// when they are absent.
PostProcessorConfig parse_post_processor(const json& object, const std::string& where) {
  if (!object.is_object()) {
    throw Error(ErrorCode::kBadCheckpoint, where + ": \"post_processor_config\" is not an object");
  }
  PostProcessorConfig config;
  config.ocr_area_threshold = 0.0;
  config.banned_grounding_tokens.clear();
  const json ocr = object.value("ocr", json::object());
  const json grounding = object.value("phrase_grounding", json::object());
  if (!ocr.is_object() || !grounding.is_object()) {
    throw Error(ErrorCode::kBadCheckpoint, where + ": post_processor_config.ocr and .phrase_grounding must be objects");
  }
  read(ocr, "AREA_THRESHOLD", config.ocr_area_threshold, where + " post_processor_config.ocr");
  read(grounding, "banned_grounding_tokens", config.banned_grounding_tokens,
       where + " post_processor_config.phrase_grounding");
  if (!(config.ocr_area_threshold >= 0.0 && config.ocr_area_threshold <= 1.0)) {
    throw Error(ErrorCode::kBadCheckpoint, where +
                                               ": post_processor_config.ocr.AREA_THRESHOLD must be in [0, 1], got " +
                                               std::to_string(config.ocr_area_threshold));
  }
  return config;
}

std::vector<int> int_list(const json& object, const char* key, std::vector<int> fallback, const std::string& where) {
  read(object, key, fallback, where);
  return fallback;
}

void check_vision(const VisionConfig& v, const std::string& where) {
  const auto n = v.embed_dim.size();
  auto same = [&](std::size_t size, const char* name) {
    if (size != n) {
      throw Error(ErrorCode::kBadCheckpoint, where + ": vision_config." + name + " has " + std::to_string(size) +
                                                 " entries, embed_dim has " + std::to_string(n));
    }
  };
  if (n == 0) throw Error(ErrorCode::kBadCheckpoint, where + ": vision_config has no stages");
  same(v.depths.size(), "depths");
  same(v.patch_size.size(), "patch_size");
  same(v.patch_stride.size(), "patch_stride");
  same(v.patch_padding.size(), "patch_padding");
  same(v.patch_prenorm.size(), "patch_prenorm");
  same(v.num_heads.size(), "num_heads");
  same(v.num_groups.size(), "num_groups");
  for (std::size_t i = 0; i < n; ++i) {
    if (v.num_heads[i] <= 0 || v.embed_dim[i] % v.num_heads[i] != 0 || v.num_groups[i] <= 0 ||
        v.embed_dim[i] % v.num_groups[i] != 0) {
      throw Error(ErrorCode::kBadCheckpoint, where + ": vision stage " + std::to_string(i) + " embed_dim " +
                                                 std::to_string(v.embed_dim[i]) + " is not divisible by num_heads " +
                                                 std::to_string(v.num_heads[i]) + " and num_groups " +
                                                 std::to_string(v.num_groups[i]));
    }
  }
}

VisionConfig parse_vision(const json& j, CheckpointLayout layout, const json& top, const std::string& where) {
  VisionConfig v;
  const char* dim_key = layout == CheckpointLayout::kOriginal ? "dim_embed" : "embed_dim";
  v.embed_dim = int_list(j, dim_key, {128, 256, 512, 1024}, where);
  v.depths = int_list(j, "depths", {1, 1, 9, 1}, where);
  v.patch_size = int_list(j, "patch_size", {7, 3, 3, 3}, where);
  v.patch_stride = int_list(j, "patch_stride", {4, 2, 2, 2}, where);
  v.patch_padding = int_list(j, "patch_padding", {3, 1, 1, 1}, where);
  v.patch_prenorm = {false, true, true, true};
  read(j, "patch_prenorm", v.patch_prenorm, where);
  v.num_heads = int_list(j, "num_heads", {4, 8, 16, 32}, where);
  v.num_groups = int_list(j, "num_groups", {4, 8, 16, 32}, where);
  read(j, "in_channels", v.in_channels, where);
  read(j, "window_size", v.window_size, where);
  read(j, "mlp_ratio", v.mlp_ratio, where);
  read(j, "qkv_bias", v.qkv_bias, where);
  std::string activation = "gelu";
  read(j, "activation_function", activation, where);
  if (activation != "gelu") {
    throw Error(ErrorCode::kUnsupportedModel, where + ": vision activation " + activation + " is not supported");
  }
  if (layout == CheckpointLayout::kOriginal) {
    // Remote-code configs keep the projection size at the top level too; both must agree.
    read(top, "projection_dim", v.projection_dim, where);
    read(j, "projection_dim", v.projection_dim, where);
    if (j.contains("visual_temporal_embedding")) {
      read(j["visual_temporal_embedding"], "max_temporal_embeddings", v.max_temporal_embeddings, where);
    }
    if (j.contains("image_pos_embed")) {
      read(j["image_pos_embed"], "max_pos_embeddings", v.max_position_embeddings, where);
    }
  } else {
    read(j, "projection_dim", v.projection_dim, where);
    read(j, "max_temporal_embeddings", v.max_temporal_embeddings, where);
    read(j, "max_position_embeddings", v.max_position_embeddings, where);
  }
  check_vision(v, where);
  return v;
}

TextConfig parse_text(const json& j, CheckpointLayout layout, const std::string& where) {
  TextConfig t;
  // BartConfig defaults (native) and Florence2LanguageConfig defaults (original) differ in vocab only.
  t.vocab_size = layout == CheckpointLayout::kOriginal ? 51289 : 50265;
  t.d_model = 1024;
  t.encoder_layers = t.decoder_layers = 12;
  t.encoder_attention_heads = t.decoder_attention_heads = 16;
  t.encoder_ffn_dim = t.decoder_ffn_dim = 4096;
  read(j, "vocab_size", t.vocab_size, where);
  read(j, "d_model", t.d_model, where);
  read(j, "encoder_layers", t.encoder_layers, where);
  read(j, "decoder_layers", t.decoder_layers, where);
  read(j, "encoder_attention_heads", t.encoder_attention_heads, where);
  read(j, "decoder_attention_heads", t.decoder_attention_heads, where);
  read(j, "encoder_ffn_dim", t.encoder_ffn_dim, where);
  read(j, "decoder_ffn_dim", t.decoder_ffn_dim, where);
  read(j, "max_position_embeddings", t.max_position_embeddings, where);
  read(j, "scale_embedding", t.scale_embedding, where);
  read(j, "activation_function", t.activation_function, where);
  read(j, "pad_token_id", t.pad_token_id, where);
  read(j, "bos_token_id", t.bos_token_id, where);
  read(j, "eos_token_id", t.eos_token_id, where);
  read(j, "decoder_start_token_id", t.decoder_start_token_id, where);
  if (t.activation_function != "gelu") {
    throw Error(ErrorCode::kUnsupportedModel,
                where + ": text activation " + t.activation_function + " is not supported");
  }
  bool normalize_before = false;
  read(j, "normalize_before", normalize_before, where);
  bool add_final_layer_norm = false;
  read(j, "add_final_layer_norm", add_final_layer_norm, where);
  if (normalize_before || add_final_layer_norm) {
    throw Error(ErrorCode::kUnsupportedModel,
                where + ": pre-norm BART (normalize_before / add_final_layer_norm) is not Florence-2");
  }
  if (t.d_model % t.encoder_attention_heads != 0 || t.d_model % t.decoder_attention_heads != 0) {
    throw Error(ErrorCode::kBadCheckpoint,
                where + ": d_model " + std::to_string(t.d_model) + " is not divisible by the attention head counts");
  }
  return t;
}

// Generation fields as GenerationConfig reads them from a JSON object (generation_config.json, or
// the model config when there is no such file).
void apply_generation(const json& j, GenerationConfig& g, const std::string& where) {
  read(j, "num_beams", g.num_beams, where);
  read_optional(j, "max_length", g.max_length, where);
  read_optional(j, "max_new_tokens", g.max_new_tokens, where);
  read(j, "min_new_tokens", g.min_new_tokens, where);
  if (j.contains("early_stopping") && !j["early_stopping"].is_null()) {
    const auto& e = j["early_stopping"];
    if (e.is_boolean()) {
      g.early_stopping =
          e.get<bool>() ? GenerationConfig::EarlyStopping::kTrue : GenerationConfig::EarlyStopping::kFalse;
    } else if (e.is_string() && e.get<std::string>() == "never") {
      g.early_stopping = GenerationConfig::EarlyStopping::kNever;
    } else {
      throw Error(ErrorCode::kBadCheckpoint,
                  where + ": early_stopping must be true, false or \"never\", got " + e.dump());
    }
  }
  read(j, "length_penalty", g.length_penalty, where);
  read(j, "no_repeat_ngram_size", g.no_repeat_ngram_size, where);
  read(j, "decoder_start_token_id", g.decoder_start_token_id, where);
  read_optional(j, "forced_bos_token_id", g.forced_bos_token_id, where);
  read_optional(j, "forced_eos_token_id", g.forced_eos_token_id, where);
  read(j, "pad_token_id", g.pad_token_id, where);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    if (j["eos_token_id"].is_array()) {
      read(j, "eos_token_id", g.eos_token_ids, where);
    } else {
      int eos = 2;
      read(j, "eos_token_id", eos, where);
      g.eos_token_ids = {eos};
    }
  }
  bool do_sample = false;
  read(j, "do_sample", do_sample, where);
  if (do_sample) {
    throw Error(ErrorCode::kUnsupportedModel,
                where + ": do_sample=true is not supported (greedy and beam search only)");
  }
  if (g.num_beams < 1) throw Error(ErrorCode::kBadCheckpoint, where + ": num_beams must be >= 1");
}

PreprocessorConfig parse_preprocessor(const json& j, const std::string& where) {
  PreprocessorConfig p;
  if (j.contains("size")) {
    const auto& s = j["size"];
    if (s.is_object() && s.contains("height") && s.contains("width")) {
      read(s, "height", p.height, where);
      read(s, "width", p.width, where);
    } else {
      throw Error(ErrorCode::kUnsupportedModel,
                  where + ": size must be {height, width} for Florence-2, got " + s.dump());
    }
  }
  read(j, "do_resize", p.do_resize, where);
  read(j, "resample", p.resample, where);
  read(j, "do_rescale", p.do_rescale, where);
  read(j, "rescale_factor", p.rescale_factor, where);
  read(j, "do_normalize", p.do_normalize, where);
  std::vector<double> mean(p.image_mean.begin(), p.image_mean.end());
  std::vector<double> std_dev(p.image_std.begin(), p.image_std.end());
  read(j, "image_mean", mean, where);
  read(j, "image_std", std_dev, where);
  if (mean.size() != 3 || std_dev.size() != 3) {
    throw Error(ErrorCode::kBadCheckpoint, where + ": image_mean and image_std need 3 values");
  }
  std::copy(mean.begin(), mean.end(), p.image_mean.begin());
  std::copy(std_dev.begin(), std_dev.end(), p.image_std.begin());
  read(j, "image_seq_length", p.image_seq_length, where);
  bool center_crop = false;
  read(j, "do_center_crop", center_crop, where);
  if (center_crop) throw Error(ErrorCode::kUnsupportedModel, where + ": do_center_crop=true is not supported");
  if (p.resample != 3) {
    throw Error(ErrorCode::kUnsupportedModel,
                where + ": resample " + std::to_string(p.resample) + " is not supported (only 3, bicubic)");
  }
  return p;
}

}  // namespace

int GenerationConfig::resolved_max_length(int default_new_tokens) const {
  // transformers counts max_length over the decoder sequence, whose prompt is the start token.
  if (max_new_tokens) return 1 + *max_new_tokens;
  if (max_length) return *max_length;
  return 1 + default_new_tokens;
}

bool is_florence2_folder(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  if (!std::filesystem::is_regular_file(path)) return false;
  std::ifstream in(path);
  const auto j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.value("model_type", std::string()) == "florence2";
}

Config load_config(const std::filesystem::path& dir) {
  Config config;
  const auto config_path = dir / "config.json";
  const auto where = config_path.string();
  const json top = read_json(config_path);
  if (top.value("model_type", std::string()) != "florence2") {
    throw Error(ErrorCode::kUnsupportedModel,
                where + ": model_type is \"" + top.value("model_type", std::string()) + "\", expected florence2");
  }
  if (!top.contains("vision_config") || !top["vision_config"].is_object()) {
    throw Error(ErrorCode::kBadCheckpoint, where + ": no vision_config object");
  }
  const json& vision = top["vision_config"];
  config.layout = vision.contains("dim_embed") ? CheckpointLayout::kOriginal : CheckpointLayout::kNative;
  config.vision = parse_vision(vision, config.layout, top, where);
  const json text = top.contains("text_config") && top["text_config"].is_object() ? top["text_config"] : json::object();
  config.text = parse_text(text, config.layout, where);

  GenerationConfig& g = config.generation;
  g.decoder_start_token_id = config.text.decoder_start_token_id;
  g.eos_token_ids = {config.text.eos_token_id};
  g.pad_token_id = config.text.pad_token_id;
  const auto generation_path = dir / "generation_config.json";
  if (std::filesystem::exists(generation_path)) {
    apply_generation(read_json(generation_path), g, generation_path.string());
  } else {
    // Without the file transformers builds the generation config from the model config, where the
    // text config's values win over the top level's.
    apply_generation(top, g, where);
    apply_generation(text, g, where);
  }

  const auto preprocessor_path = dir / "preprocessor_config.json";
  if (std::filesystem::exists(preprocessor_path)) {
    config.preprocessor = parse_preprocessor(read_json(preprocessor_path), preprocessor_path.string());
  }
  const auto processor_path = dir / "processor_config.json";
  if (std::filesystem::exists(processor_path)) {
    const json processor = read_json(processor_path);
    if (processor.contains("post_processor_config") && !processor["post_processor_config"].is_null()) {
      config.post_processor = parse_post_processor(processor["post_processor_config"], processor_path.string());
    }
  }
  return config;
}

}  // namespace vlm::florence2
