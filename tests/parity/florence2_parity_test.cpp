// Florence-2 against transformers 5.23: references written by florence2_make_fixtures.py.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config.h"
#include "pipeline.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/safetensors.h"

namespace fs = std::filesystem;
using namespace vlm::florence2;

namespace {

fs::path data_dir() {
  const char* env = std::getenv("VLM_TEST_DATA");
  return fs::path(env ? env : "build/test-data") / "florence2";
}

fs::path assets_dir() {
  const char* env = std::getenv("VLM_ASSETS");
  return fs::path(env ? env : "../shared/assets");
}

// max |a - b| / max |b|: the error relative to the reference's scale (elementwise relative error
// is meaningless where the reference crosses zero).
double relative_error(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kCPU, at::kDouble);
  const at::Tensor b = expected.to(at::kCPU, at::kDouble);
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e9;
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

constexpr double kTolerance = 1e-4;

void check_forward(const std::string& layout, const std::string& size) {
  const vlm::SafetensorsFile refs(data_dir() / (size + "_refs.safetensors"));
  const Pipeline pipeline(data_dir() / (size + "_" + layout), PipelineOptions{});
  // Three photos keep CI time down; generation below covers all of them.
  auto ref = [&](const std::string& name) {
    const at::Tensor t = refs.tensor(size + "." + name);
    return t.slice(0, 0, std::min<std::int64_t>(3, t.size(0)));
  };
  const at::Tensor pixel_values = ref("pixel_values");
  const at::Tensor vision = pipeline.vision_features(pixel_values);
  const at::Tensor image = pipeline.project(vision);
  const at::Tensor ids = refs.tensor(size + ".prompt_ids").unsqueeze(0).expand({pixel_values.size(0), -1});
  const at::Tensor encoded = pipeline.encode(image, ids);
  const at::Tensor logits = pipeline.first_step_logits(encoded);
  const double errors[] = {relative_error(vision, ref("vision_features")), relative_error(image, ref("image_features")),
                           relative_error(encoded, ref("encoder_output")), relative_error(logits, ref("logits"))};
  EXPECT_LE(errors[0], kTolerance) << "vision features";
  EXPECT_LE(errors[1], kTolerance) << "image features";
  EXPECT_LE(errors[2], kTolerance) << "encoder output";
  EXPECT_LE(errors[3], kTolerance) << "first-step logits";
  std::cout << layout << "/" << size << ": vision " << errors[0] << ", image " << errors[1] << ", encoder " << errors[2]
            << ", logits " << errors[3] << "\n";
}

void check_generation(const std::string& layout, bool all_tasks) {
  const vlm::SafetensorsFile refs(data_dir() / "tiny_refs.safetensors");
  const auto tasks = nlohmann::json::parse(refs.metadata().at("tasks").get<std::string>());
  const int max_new_tokens = std::stoi(refs.metadata().at("max_new_tokens").get<std::string>());
  const Pipeline pipeline(data_dir() / ("tiny_" + layout), PipelineOptions{});
  const at::Tensor image = pipeline.image_features(refs.tensor("tiny.pixel_values"));
  GenerationConfig generation = pipeline.config().generation;
  if (layout == "native") {
    // generation_config.json of the fixture, as transformers read it.
    EXPECT_EQ(generation.num_beams, 3);
    EXPECT_EQ(generation.no_repeat_ngram_size, 3);
    EXPECT_EQ(generation.forced_bos_token_id.value_or(-1), 0);
    EXPECT_EQ(generation.forced_eos_token_id.value_or(-1), 2);
    EXPECT_EQ(generation.resolved_max_length(1024), 1 + max_new_tokens);
  }
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    if (!all_tasks && tasks[t][0] != "<OD>") continue;
    const auto name = "task" + std::to_string(t);
    const at::Tensor ids = refs.tensor(name + ".prompt_ids").unsqueeze(0).expand({image.size(0), -1});
    const at::Tensor encoded = pipeline.encode(image, ids);
    for (const auto& [mode, beams] : {std::pair{"greedy", 1}, std::pair{"beam", 3}}) {
      GenerationConfig g = generation;
      g.num_beams = beams;
      g.early_stopping = GenerationConfig::EarlyStopping::kTrue;
      g.no_repeat_ngram_size = 3;
      g.forced_bos_token_id = 0;
      g.forced_eos_token_id = 2;
      g.length_penalty = 1.0;
      const at::Tensor out = pipeline.generate(encoded, g, 1 + max_new_tokens);
      const at::Tensor expected = refs.tensor(name + "." + mode);
      EXPECT_TRUE(out.sizes() == expected.sizes() && out.equal(expected))
          << layout << " " << tasks[t][0] << " " << mode << ": got " << out << " expected " << expected;
    }
  }
}

}  // namespace

TEST(Florence2Parity, ImageProcessorMatchesTransformers) {
  const vlm::SafetensorsFile refs(data_dir() / "tiny_refs.safetensors");
  const Pipeline pipeline(data_dir() / "tiny_native", PipelineOptions{});
  const at::Tensor expected = refs.tensor("tiny.pixel_values");
  for (std::int64_t i = 0; i < expected.size(0); ++i) {
    const at::Tensor rgb = refs.tensor("image" + std::to_string(i) + ".rgb");
    const at::Tensor actual = pipeline.image_processor().process_rgb(rgb);
    EXPECT_LE((actual[0] - expected[i]).abs().max().item<double>(), 1e-6) << "image " << i;
  }
}

TEST(Florence2Parity, DecodedPhotosMatchPil) {
  const vlm::SafetensorsFile refs(data_dir() / "tiny_refs.safetensors");
  const auto images = nlohmann::json::parse(refs.metadata().at("images").get<std::string>());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const vlm::Image image = vlm::load_image(assets_dir() / images[i].get<std::string>());
    const at::Tensor ours = at::from_blob(image.rgb.data, {image.height(), image.width(), 3}, at::kByte);
    const at::Tensor pil = refs.tensor("image" + std::to_string(i) + ".rgb");
    ASSERT_EQ(ours.sizes(), pil.sizes()) << images[i];
    const auto differing = (ours.to(at::kInt) - pil.to(at::kInt)).abs().gt(0).sum().item<std::int64_t>();
    EXPECT_EQ(differing, 0) << images[i] << ": decoded pixels differ from PIL's";
  }
}

TEST(Florence2Parity, TinyForwardNative) { check_forward("native", "tiny"); }
TEST(Florence2Parity, TinyForwardOriginal) { check_forward("original", "tiny"); }
TEST(Florence2Parity, TinyGenerationNativeEveryTask) { check_generation("native", true); }
TEST(Florence2Parity, TinyGenerationOriginal) { check_generation("original", false); }
// Reduced precision on the CPU: the same pipeline in bf16 and fp16 against transformers' fp32
// logits. bf16 keeps 8 mantissa bits, so a few percent of the logit scale is the expected error.
TEST(Florence2Parity, TinyForwardReducedPrecision) {
  const vlm::SafetensorsFile refs(data_dir() / "tiny_refs.safetensors");
  const at::Tensor pixel_values = refs.tensor("tiny.pixel_values").slice(0, 0, 2);
  const at::Tensor ids = refs.tensor("tiny.prompt_ids").unsqueeze(0).expand({2, -1});
  for (const auto dtype : {at::kBFloat16, at::kHalf}) {
    const Pipeline pipeline(data_dir() / "tiny_native", PipelineOptions{at::kCPU, dtype});
    const at::Tensor encoded = pipeline.encode(pipeline.image_features(pixel_values), ids);
    EXPECT_EQ(encoded.scalar_type(), dtype);
    const double error = relative_error(pipeline.first_step_logits(encoded), refs.tensor("tiny.logits").slice(0, 0, 2));
    std::cout << c10::toString(dtype) << " logits relative error " << error << "\n";
    EXPECT_LE(error, 5e-2) << c10::toString(dtype);
  }
}

TEST(Florence2ParityBase, BaseForwardNative) { check_forward("native", "base"); }
TEST(Florence2ParityBase, BaseForwardOriginal) { check_forward("original", "base"); }

TEST(Florence2Parity, RealConfigsParse) {
  const Config base = load_config(assets_dir() / "florence2" / "Florence-2-base");
  EXPECT_EQ(base.layout, CheckpointLayout::kOriginal);
  EXPECT_EQ(base.vision.embed_dim, (std::vector<int>{128, 256, 512, 1024}));
  EXPECT_EQ(base.vision.projection_dim, 768);
  EXPECT_EQ(base.text.d_model, 768);
  EXPECT_EQ(base.text.vocab_size, 51289);
  // No generation_config.json: generation settings come from text_config.
  EXPECT_EQ(base.generation.num_beams, 3);
  EXPECT_EQ(base.generation.no_repeat_ngram_size, 3);
  EXPECT_EQ(base.generation.forced_bos_token_id.value_or(-1), 0);
  EXPECT_EQ(base.preprocessor.height, 768);
  const Config large = load_config(assets_dir() / "florence2" / "Florence-2-large");
  EXPECT_EQ(large.vision.embed_dim.back(), 2048);
  EXPECT_EQ(large.text.max_position_embeddings, 4096);
  EXPECT_EQ(large.generation.num_beams, 3);
  EXPECT_EQ(large.generation.early_stopping, GenerationConfig::EarlyStopping::kFalse);
  EXPECT_EQ(large.generation.no_repeat_ngram_size, 0);
}

// Post-processing settings: processor_config.json's post_processor_config when present (with
// transformers' reading: a missing entry is 0 / no banned phrases), else the original checkpoints'.
TEST(Florence2Parity, PostProcessorSettingsComeFromProcessorConfig) {
  const fs::path dir = fs::temp_directory_path() / ("vlm_f2_processor_config_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(assets_dir() / "florence2" / "Florence-2-base" / "config.json", dir / "config.json");
  auto write = [&](const std::string& text) { std::ofstream(dir / "processor_config.json") << text; };

  const Config original = load_config(dir);  // no processor_config.json
  EXPECT_DOUBLE_EQ(original.post_processor.ocr_area_threshold, 0.01);
  EXPECT_EQ(original.post_processor.banned_grounding_tokens, PostProcessorConfig::default_banned_grounding_tokens());

  write(R"({"processor_class": "Florence2Processor"})");  // the onnx-community file: no settings
  EXPECT_DOUBLE_EQ(load_config(dir).post_processor.ocr_area_threshold, 0.01);

  write(R"({"post_processor_config": {"ocr": {"AREA_THRESHOLD": 0.05},
            "phrase_grounding": {"banned_grounding_tokens": ["it", "the image"]}}})");
  const Config native = load_config(dir);
  EXPECT_DOUBLE_EQ(native.post_processor.ocr_area_threshold, 0.05);
  EXPECT_EQ(native.post_processor.banned_grounding_tokens, (std::vector<std::string>{"it", "the image"}));

  write(R"({"post_processor_config": {"pure_text": {}}})");
  const Config bare = load_config(dir);
  EXPECT_DOUBLE_EQ(bare.post_processor.ocr_area_threshold, 0.0);
  EXPECT_TRUE(bare.post_processor.banned_grounding_tokens.empty());

  for (const char* bad :
       {R"({"post_processor_config": {"ocr": {"AREA_THRESHOLD": "0.01"}}})",
        R"({"post_processor_config": {"ocr": {"AREA_THRESHOLD": 2}}})", R"({"post_processor_config": [1]})"}) {
    write(bad);
    try {
      load_config(dir);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const vlm::Error& e) {
      EXPECT_EQ(e.code(), vlm::ErrorCode::kBadCheckpoint) << e.what();
      EXPECT_NE(std::string(e.what()).find("processor_config.json"), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
}

namespace {
void expect_load_error(const std::string& dir, const std::string& needle) {
  try {
    const Pipeline pipeline(data_dir() / dir, PipelineOptions{});
    ADD_FAILURE() << dir << " loaded without error";
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kBadCheckpoint) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << dir << ": " << e.what();
  }
}
}  // namespace

TEST(Florence2Parity, LoadingErrorsNameTheTensor) {
  expect_load_error("broken_missing", "model.language_model.decoder.layers.1.fc2.weight");
  expect_load_error("broken_shape",
                    "model.language_model.encoder.layers.0.fc1.weight has shape [32, 64], expected [64, 32]");
  expect_load_error("broken_dtype", "model.multi_modal_projector.image_proj_norm.weight has dtype Int");
  expect_load_error("broken_extra", "model.vision_tower.blocks.0.0.spatial_block.unexpected.weight");
  expect_load_error("broken_truncated", "model.safetensors");
  expect_load_error("broken_truncated_bin", "pytorch_model.bin");
}
