// Florence-2 against transformers 5.23: references written by florence2_make_fixtures.py.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config.h"
#include "pipeline.h"
#include "request_generation.h"
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

// A reference decision whose relative margin (generation_margins.py) is below this is a near-tie:
// 100x the forward pass's measured relative error (~1e-6), the same bound as kTolerance. Where our
// ids differ from transformers', the test passes only if the reference's own decision at the first
// step where the two chose differently was such a near-tie; a divergence at a clear margin fails.
constexpr double kNearTie = 1e-4;

struct Divergence {
  std::int64_t row;   // image
  std::int64_t step;  // decoding step whose decision differed
  double margin;      // the reference's relative margin at that step
};

// Greedy: the first position where row r differs was decided at the step before it.
std::vector<Divergence> greedy_divergences(const at::Tensor& ours, const at::Tensor& expected,
                                           const at::Tensor& margins, std::int64_t pad) {
  std::vector<Divergence> out;
  const auto length = std::max(ours.size(1), expected.size(1));
  for (std::int64_t r = 0; r < expected.size(0); ++r) {
    for (std::int64_t p = 1; p < length; ++p) {
      const auto a = p < ours.size(1) ? ours[r][p].item<std::int64_t>() : pad;
      const auto b = p < expected.size(1) ? expected[r][p].item<std::int64_t>() : pad;
      if (a == b) continue;
      const double margin = p - 1 < margins.size(1) ? margins[r][p - 1].item<double>() : 0.0;
      out.push_back({r, p - 1, margin});
      break;
    }
  }
  return out;
}

// Beams: the final ids show a flipped decision only steps later, or not at all, so compare the
// running beams step by step; a difference at step s was decided at step s - 1. Rows whose running
// beams agree throughout must end with identical ids (margin -1 marks such a row: nothing to excuse it).
std::vector<Divergence> beam_divergences(const at::Tensor& ours, const at::Tensor& expected, const BeamTrace& trace,
                                         const at::Tensor& running, const at::Tensor& margins, std::int64_t beams) {
  std::vector<Divergence> out;
  const auto steps = std::min<std::int64_t>(static_cast<std::int64_t>(trace.running.size()), running.size(0));
  for (std::int64_t r = 0; r < expected.size(0); ++r) {
    bool diverged = false;
    for (std::int64_t s = 1; s < steps && !diverged; ++s) {
      const at::Tensor mine = trace.running[s].narrow(0, r * beams, beams);
      const at::Tensor theirs = running[s].narrow(0, r * beams, beams).narrow(1, 0, s + 1);
      if (!mine.equal(theirs)) {
        out.push_back({r, s - 1, margins[r][s - 1].item<double>()});
        diverged = true;
      }
    }
    const bool same_ids = ours.size(1) == expected.size(1) && ours[r].equal(expected[r]);
    if (!diverged && !same_ids) out.push_back({r, steps, -1.0});
  }
  return out;
}

bool is_near_tie(const Divergence& d) { return d.margin >= 0.0 && d.margin < kNearTie; }

// The settings transformers generated the references with (florence2_make_fixtures.py GENERATION).
GenerationConfig reference_settings(GenerationConfig g, int beams) {
  g.num_beams = beams;
  g.early_stopping = GenerationConfig::EarlyStopping::kTrue;
  g.no_repeat_ngram_size = 3;
  g.forced_bos_token_id = 0;
  g.forced_eos_token_id = 2;
  g.length_penalty = 1.0;
  return g;
}

struct GenerationFixture {
  vlm::SafetensorsFile refs{data_dir() / "tiny_refs.safetensors"};
  nlohmann::json tasks = nlohmann::json::parse(refs.metadata().at("tasks").get<std::string>());
  int max_new_tokens = std::stoi(refs.metadata().at("max_new_tokens").get<std::string>());
  std::string checkpoint = refs.metadata().at("generation_checkpoint").get<std::string>();
};

// Each generated token's log-probability against transformers' compute_transition_scores
// (generation_margins.py token_log_probs), within this (absolute), for every row whose ids equal the
// reference's, up to its first EOS (transformers leaves greedy's padding unmasked). Measured: beams
// within 1e-4; greedy up to 9.4e-4, about what transformers' own greedy log-probs move by with the
// batch they run in (one token of the same photo: -0.792270 in the reference's batch of 10 photos,
// -0.792391 in a batch of 2, ours -0.792405).
constexpr double kLogProbTolerance = 2e-3;

int log_prob_rows_checked = 0;

void check_token_log_probs(const Generated& ours, const at::Tensor& expected_ids, const at::Tensor& expected,
                           const std::vector<Divergence>& divergences, const GenerationConfig& g,
                           const std::string& key) {
  ASSERT_EQ(ours.token_log_probs.sizes(), ours.ids.sizes()) << key;
  for (std::int64_t r = 0; r < expected_ids.size(0); ++r) {
    const bool diverged =
        std::any_of(divergences.begin(), divergences.end(), [&](const Divergence& d) { return d.row == r; });
    if (diverged || ours.ids.size(1) != expected_ids.size(1) || !ours.ids[r].equal(expected_ids[r])) continue;
    ++log_prob_rows_checked;
    EXPECT_EQ(ours.token_log_probs[r][0].item<float>(), 0.0F) << key << " start token";
    for (std::int64_t p = 1; p < ours.ids.size(1); ++p) {
      const double mine = ours.token_log_probs[r][p].item<double>();
      const double theirs = expected[r][p - 1].item<double>();
      EXPECT_LE(std::abs(mine - theirs), kLogProbTolerance)
          << key << " image " << r << " position " << p << ": " << mine << " vs transformers' " << theirs;
      const auto id = ours.ids[r][p].item<std::int64_t>();
      if (std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), id) != g.eos_token_ids.end()) break;
    }
  }
}

// Generates from `encoded` with `g` and compares with the reference `key`: the ids, then each
// token's log-probability.
std::vector<Divergence> compare_generation(const Pipeline& pipeline, const GenerationFixture& fixture,
                                           const at::Tensor& encoded, const std::string& key, const GenerationConfig& g,
                                           int max_length) {
  BeamTrace trace;
  const Generated generated = pipeline.generate(encoded, g, max_length, &trace);
  const at::Tensor& out = generated.ids;
  const at::Tensor expected = fixture.refs.tensor(key);
  const at::Tensor margins = fixture.refs.tensor(key + ".margin");
  const int beams = std::max(1, g.num_beams);
  std::vector<Divergence> divergences =
      beams == 1 ? greedy_divergences(out, expected, margins, g.pad_token_id)
                 : beam_divergences(out, expected, trace, fixture.refs.tensor(key + ".running"), margins, beams);
  check_token_log_probs(generated, expected, fixture.refs.tensor(key + ".log_probs"), divergences, g, key);
  return divergences;
}

// The same against task<N>.greedy / task<N>.beam, generated with the fixture's own settings.
std::vector<Divergence> compare_generation(const Pipeline& pipeline, const GenerationFixture& fixture,
                                           const at::Tensor& encoded, const std::string& key, int beams) {
  return compare_generation(pipeline, fixture, encoded, key, reference_settings(pipeline.config().generation, beams),
                            1 + fixture.max_new_tokens);
}

// Fails on a divergence at a clear reference margin; counts and prints near-ties.
void report_divergences(const std::vector<Divergence>& divergences, const std::string& what);

int near_ties_seen = 0;

void check_generation(const std::string& layout, bool all_tasks) {
  const GenerationFixture fixture;
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_" + layout), PipelineOptions{});
  const at::Tensor image = pipeline.image_features(fixture.refs.tensor("tiny.pixel_values"));
  if (layout == "native") {
    // generation_config.json of the fixture, as transformers read it.
    const GenerationConfig& generation = pipeline.config().generation;
    EXPECT_EQ(generation.num_beams, 3);
    EXPECT_EQ(generation.no_repeat_ngram_size, 3);
    EXPECT_EQ(generation.forced_bos_token_id.value_or(-1), 0);
    EXPECT_EQ(generation.forced_eos_token_id.value_or(-1), 2);
    EXPECT_EQ(generation.resolved_max_length(1024), 1 + fixture.max_new_tokens);
  }
  double smallest_margin = std::numeric_limits<double>::infinity();
  for (std::size_t t = 0; t < fixture.tasks.size(); ++t) {
    const auto task = fixture.tasks[t][0].get<std::string>();
    if (!all_tasks && task != "<OD>") continue;
    const auto name = "task" + std::to_string(t);
    const at::Tensor ids = fixture.refs.tensor(name + ".prompt_ids").unsqueeze(0).expand({image.size(0), -1});
    const at::Tensor encoded = pipeline.encode(image, ids);
    for (const auto& [mode, beams] : {std::pair{"greedy", 1}, std::pair{"beam", 3}}) {
      const std::string key = name + "." + mode;
      smallest_margin = std::min(smallest_margin, fixture.refs.tensor(key + ".margin").min().item<double>());
      report_divergences(compare_generation(pipeline, fixture, encoded, key, beams), layout + " " + task + " " + mode);
    }
  }
  std::cout << layout << " generation: token log-probs matched on " << log_prob_rows_checked << " rows so far\n";
  std::cout << layout << " generation: " << near_ties_seen << " near-tie divergence(s) so far (tolerance " << kNearTie
            << "); smallest reference margin on any step " << smallest_margin << "\n";
}

void report_divergences(const std::vector<Divergence>& divergences, const std::string& what) {
  for (const auto& d : divergences) {
    const std::string where = what + ", image " + std::to_string(d.row) + ", step " + std::to_string(d.step);
    if (is_near_tie(d)) {
      ++near_ties_seen;
      std::cout << "near-tie: " << where << ": reference margin " << d.margin << " < " << kNearTie << "\n";
    } else {
      ADD_FAILURE() << where << ": ids differ from transformers' at a clear reference margin "
                    << (d.margin < 0.0 ? std::string("(running beams agreed at every step)")
                                       : std::to_string(d.margin));
    }
  }
}

// A request's generation settings as DetectOptions, from the fixture's generate() kwargs.
vlm::DetectOptions request_options(const nlohmann::json& kwargs) {
  vlm::DetectOptions options;
  if (kwargs.contains("num_beams")) options.num_beams = kwargs["num_beams"].get<int>();
  if (kwargs.contains("max_new_tokens")) options.max_new_tokens = kwargs["max_new_tokens"].get<int>();
  if (kwargs.contains("no_repeat_ngram_size")) options.no_repeat_ngram_size = kwargs["no_repeat_ngram_size"].get<int>();
  if (kwargs.contains("length_penalty")) options.length_penalty = kwargs["length_penalty"].get<double>();
  if (kwargs.contains("early_stopping")) {
    const auto& e = kwargs["early_stopping"];
    options.early_stopping = e.is_string() ? vlm::EarlyStopping::kNever
                                           : (e.get<bool>() ? vlm::EarlyStopping::kTrue : vlm::EarlyStopping::kFalse);
  }
  return options;
}

}  // namespace

// Per-request generation settings change the ids exactly as the same generate() kwargs change
// transformers': each setting over the checkpoint's generation_config.json, <OD> on every photo.
TEST(Florence2Parity, RequestGenerationSettingsMatchTransformers) {
  const GenerationFixture fixture;
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_native"), PipelineOptions{});
  const auto controls = nlohmann::json::parse(fixture.refs.metadata().at("controls").get<std::string>());
  const auto task = fixture.refs.metadata().at("controls_task").get<std::string>();
  std::string default_key;
  for (std::size_t t = 0; t < fixture.tasks.size(); ++t) {
    if (fixture.tasks[t][0] == task) default_key = "task" + std::to_string(t);
  }
  ASSERT_FALSE(default_key.empty()) << task;
  ASSERT_GE(controls.size(), 3u);
  const at::Tensor image = pipeline.image_features(fixture.refs.tensor("tiny.pixel_values"));
  const at::Tensor ids = fixture.refs.tensor(default_key + ".prompt_ids").unsqueeze(0).expand({image.size(0), -1});
  const at::Tensor encoded = pipeline.encode(image, ids);
  // The checkpoint's defaults give the fixture's beam-3 reference; every setting must change that.
  const at::Tensor defaults = fixture.refs.tensor(default_key + ".beam");
  for (std::size_t c = 0; c < controls.size(); ++c) {
    const std::string key = "control" + std::to_string(c);
    const at::Tensor expected = fixture.refs.tensor(key);
    EXPECT_FALSE(expected.sizes() == defaults.sizes() && expected.equal(defaults))
        << controls[c].dump() << " gives transformers' default answer: the case tests nothing";
    const vlm::DetectOptions options = request_options(controls[c]);
    const GenerationConfig g = request_generation(pipeline.config().generation, options);
    const int max_length = request_max_length(g, 1024, 1024);
    EXPECT_EQ(max_length, 1 + controls[c]["max_new_tokens"].get<int>());
    // First a request of the same shape with other step values, so that the control reuses its
    // decode state and must replace every value that request left there.
    GenerationConfig other = g;
    other.length_penalty = g.length_penalty + 1.0;
    other.early_stopping = g.early_stopping == GenerationConfig::EarlyStopping::kTrue
                               ? GenerationConfig::EarlyStopping::kNever
                               : GenerationConfig::EarlyStopping::kTrue;
    pipeline.generate(encoded, other, max_length);
    const std::size_t states = pipeline.decode_states_created();
    report_divergences(compare_generation(pipeline, fixture, encoded, key, g, max_length), controls[c].dump());
    EXPECT_EQ(pipeline.decode_states_created(), states) << controls[c].dump() << " did not reuse the decode state";
  }
}

// On CUDA (fp32, the decode step captured as a CUDA graph) the per-request settings give
// transformers' ids and token log-probabilities, as on the CPU, on the capture and on a replay of the
// kept state. Label gpu (ctest florence2_parity_cuda); skipped without a device.
TEST(Florence2Cuda, RequestGenerationSettingsMatchTransformers) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const GenerationFixture fixture;
  const Pipeline cuda(data_dir() / (fixture.checkpoint + "_native"),
                      PipelineOptions{at::Device(at::kCUDA), at::kFloat, vlm::AttentionBackend::kAuto});
  const auto controls = nlohmann::json::parse(fixture.refs.metadata().at("controls").get<std::string>());
  const at::Tensor pixels = fixture.refs.tensor("tiny.pixel_values");
  const at::Tensor ids = fixture.refs.tensor("task3.prompt_ids").unsqueeze(0).expand({pixels.size(0), -1});
  const at::Tensor encoded = cuda.encode(cuda.image_features(pixels), ids);
  for (std::size_t c = 0; c < controls.size(); ++c) {
    const GenerationConfig g = request_generation(cuda.config().generation, request_options(controls[c]));
    const int max_length = request_max_length(g, 1024, 1024);
    for (int run = 0; run < 2; ++run) {
      report_divergences(compare_generation(cuda, fixture, encoded, "control" + std::to_string(c), g, max_length),
                         "cuda " + controls[c].dump() + " run " + std::to_string(run));
      EXPECT_TRUE(cuda.last_generation_graphed()) << controls[c].dump() << " run " << run;
    }
  }
}

// The server's --max-new-tokens-limit: a request above it is refused naming the field and the limit;
// the checkpoint's own default is capped to it.
TEST(Florence2Parity, MaxNewTokensLimit) {
  GenerationConfig g;
  g.max_new_tokens = 1024;
  EXPECT_EQ(request_max_length(g, 1024, 64), 65);
  EXPECT_EQ(request_max_length(g, 1024, 4096), 1025);
  vlm::DetectOptions options;
  options.max_new_tokens = 65;
  try {
    check_generation_options(options, 64);
    ADD_FAILURE() << "max_new_tokens 65 passed a limit of 64";
  } catch (const vlm::Error& error) {
    EXPECT_EQ(error.code(), vlm::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("max_new_tokens must be at most 64"), std::string::npos) << error.what();
  }
  options.max_new_tokens = 64;
  EXPECT_NO_THROW(check_generation_options(options, 64));
}

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

// The near-tie rule has teeth: answering the <CAPTION> prompt and comparing with transformers' <OD>
// ids must be reported as a divergence at a clear margin, for greedy and for beams.
TEST(Florence2Parity, GenerationCheckFailsAClearDivergence) {
  const GenerationFixture fixture;
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_native"), PipelineOptions{});
  const at::Tensor image = pipeline.image_features(fixture.refs.tensor("tiny.pixel_values"));
  std::size_t caption = 0, od = 0;
  for (std::size_t t = 0; t < fixture.tasks.size(); ++t) {
    if (fixture.tasks[t][0] == "<CAPTION>") caption = t;
    if (fixture.tasks[t][0] == "<OD>") od = t;
  }
  const at::Tensor ids =
      fixture.refs.tensor("task" + std::to_string(caption) + ".prompt_ids").unsqueeze(0).expand({image.size(0), -1});
  const at::Tensor encoded = pipeline.encode(image, ids);
  for (const auto& [mode, beams] : {std::pair{"greedy", 1}, std::pair{"beam", 3}}) {
    const auto divergences =
        compare_generation(pipeline, fixture, encoded, "task" + std::to_string(od) + "." + mode, beams);
    EXPECT_FALSE(divergences.empty()) << mode;
    for (const auto& d : divergences) {
      EXPECT_FALSE(is_near_tie(d)) << mode << " image " << d.row << " step " << d.step << " margin " << d.margin;
    }
  }
}
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

// The attention backend is the model's own setting, checked when it loads: flash cannot run on the
// CPU, so loading refuses it there instead of the first request failing; eager and sdpa load and
// give the same logits.
TEST(Florence2Parity, AttentionBackendIsCheckedAtLoad) {
  try {
    const Pipeline pipeline(data_dir() / "tiny_native",
                            PipelineOptions{at::kCPU, at::kFloat, vlm::AttentionBackend::kFlash});
    ADD_FAILURE() << "flash on the CPU loaded";
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("flash"), std::string::npos) << e.what();
  }
  const vlm::SafetensorsFile refs(data_dir() / "tiny_refs.safetensors");
  const at::Tensor pixel_values = refs.tensor("tiny.pixel_values").slice(0, 0, 1);
  const at::Tensor ids = refs.tensor("tiny.prompt_ids").unsqueeze(0);
  for (const auto backend : {vlm::AttentionBackend::kEager, vlm::AttentionBackend::kSdpa}) {
    const Pipeline pipeline(data_dir() / "tiny_native", PipelineOptions{at::kCPU, at::kFloat, backend});
    EXPECT_EQ(pipeline.attention_backend(), backend);
    const at::Tensor logits = pipeline.first_step_logits(pipeline.encode(pipeline.image_features(pixel_values), ids));
    EXPECT_LE(relative_error(logits, refs.tensor("tiny.logits").slice(0, 0, 1)), kTolerance)
        << vlm::attention_backend_name(backend);
  }
}

// A decode state (on CUDA with its captured step) is kept and reused by later requests of the same
// shape: reset must leave nothing of the previous generation. Run here on the CPU with the captured
// step's fixed shapes: a reused state gives the ids a fresh generation gives. The two requests ask
// different tasks whose prompts have the same length (one encoder length, one state): the taught model
// may give every photo of one task the same answer (it did in a CI run, and so does the random tiny
// model), which would leave a stale state unseen; a caption and a detection never look alike.
TEST(Florence2Parity, ReusedDecodeStateMatchesAFreshOne) {
  const GenerationFixture fixture;
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_native"), PipelineOptions{});
  const at::Tensor pixels = fixture.refs.tensor("tiny.pixel_values");
  ASSERT_GE(pixels.size(0), 3);
  const auto prompt_of = [&](const std::string& task) {
    for (std::size_t i = 0; i < fixture.tasks.size(); ++i) {
      if (fixture.tasks[i][0] == task) {
        return fixture.refs.tensor("task" + std::to_string(i) + ".prompt_ids").unsqueeze(0).expand({2, -1});
      }
    }
    throw std::runtime_error("no " + task + " in the fixture's tasks");
  };
  const at::Tensor caption = prompt_of("<DETAILED_CAPTION>");
  const at::Tensor detection = prompt_of("<OD>");
  ASSERT_EQ(caption.size(1), detection.size(1)) << "the two prompts must have one length";
  const at::Tensor first = pipeline.encode(pipeline.image_features(pixels.slice(0, 0, 2)), caption);
  const at::Tensor second = pipeline.encode(pipeline.image_features(pixels.slice(0, 1, 3)), detection);
  const int max_length = 1 + fixture.max_new_tokens;
  for (const int beams : {1, 3}) {
    const GenerationConfig g = reference_settings(pipeline.config().generation, beams);
    const int capacity = length_bucket(max_length, pipeline.max_generation_length());
    DecodeState state(pipeline.decoder(), g, DecodeShape{2, beams, first.size(1), capacity}, first.options());
    state.use_fixed_shapes();
    const Generated fresh_first = pipeline.generate(first, g, max_length);
    const Generated fresh_second = pipeline.generate(second, g, max_length);
    EXPECT_FALSE(fresh_first.ids.equal(fresh_second.ids))
        << "the two batches must differ for the test to mean anything";
    const Generated reused_first = state.run(first, generation_values(g, max_length));
    const Generated reused_second = state.run(second, generation_values(g, max_length));
    EXPECT_TRUE(reused_first.ids.equal(fresh_first.ids)) << beams << " beams, first use";
    EXPECT_TRUE(reused_second.ids.equal(fresh_second.ids)) << beams << " beams, reused";
    // The token log-probs the fixed-shape (graphed) step carries are those of the eager step.
    EXPECT_TRUE(reused_first.token_log_probs.equal(fresh_first.token_log_probs)) << beams << " beams, first use";
    EXPECT_TRUE(reused_second.token_log_probs.equal(fresh_second.token_log_probs)) << beams << " beams, reused";
  }
}

// The length buckets: 1 + a power of two of new tokens from 64, capped at the model's longest
// max_length; a max_length above that cap gets a state of its own size.
TEST(Florence2Parity, LengthBuckets) {
  EXPECT_EQ(length_bucket(2, 1025), 65);
  EXPECT_EQ(length_bucket(65, 1025), 65);
  EXPECT_EQ(length_bucket(66, 1025), 129);
  EXPECT_EQ(length_bucket(513, 1025), 513);
  EXPECT_EQ(length_bucket(514, 1025), 1025);
  EXPECT_EQ(length_bucket(1025, 1025), 1025);
  EXPECT_EQ(length_bucket(20, 50), 50);
  EXPECT_EQ(length_bucket(60, 50), 60);
}

namespace {

GenerationConfig with_values(GenerationConfig g, const GenerationValues& values) {
  g.max_new_tokens = values.max_length - 1;
  g.length_penalty = values.length_penalty;
  g.early_stopping = values.early_stopping;
  g.no_repeat_ngram_size = values.no_repeat_ngram_size;
  return g;
}

}  // namespace

// One decode state of a length bucket serves requests that differ in max_new_tokens, length_penalty,
// early_stopping and no_repeat_ngram_size (values the step reads from device scalars): run in turn through the same
// fixed-shape (graphed) state, each gives the ids and token log-probs of a fresh state of the same
// bucket exactly, the ids of a fresh state sized to the request alone, and, where the fixture has
// transformers' answer for the settings, transformers' ids (near-tie rule) and log-probs.
TEST(Florence2Parity, BucketedDecodeStateServesEveryRequestInItsBucket) {
  using EarlyStopping = GenerationConfig::EarlyStopping;
  const GenerationFixture fixture;
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_native"), PipelineOptions{});
  constexpr std::int64_t kPhotos = 4;  // of the fixture's, to keep the 30 generations below quick
  // A task whose answers on these photos run 15 new tokens, so that every shorter request cuts them.
  std::string task;
  for (std::size_t t = 0; t < fixture.tasks.size(); ++t) {
    if (fixture.tasks[t][0] == "<CAPTION_TO_PHRASE_GROUNDING>") task = "task" + std::to_string(t);
  }
  ASSERT_FALSE(task.empty());
  const at::Tensor image = pipeline.image_features(fixture.refs.tensor("tiny.pixel_values").slice(0, 0, kPhotos));
  const at::Tensor ids = fixture.refs.tensor(task + ".prompt_ids").unsqueeze(0).expand({kPhotos, -1});
  const at::Tensor encoded = pipeline.encode(image, ids);
  const int reference_length = 1 + fixture.max_new_tokens;  // the references' settings
  const int capacity = length_bucket(reference_length, pipeline.max_generation_length());
  ASSERT_GT(capacity, reference_length) << "the bucket must be larger than the requests for the test to mean anything";
  const std::vector<GenerationValues> requests = {{reference_length, 1.0, EarlyStopping::kTrue, 3},
                                                  {13, 2.0, EarlyStopping::kNever, 2},
                                                  {9, -0.5, EarlyStopping::kFalse, 3},
                                                  {6, 1.0, EarlyStopping::kTrue, 1},
                                                  {reference_length, 1.0, EarlyStopping::kTrue, 3}};
  for (const auto& [mode, beams] : {std::pair{"greedy", 1}, std::pair{"beam", 3}}) {
    const GenerationConfig g = reference_settings(pipeline.config().generation, beams);
    const DecodeShape bucket{encoded.size(0), beams, encoded.size(1), capacity};
    DecodeState state(pipeline.decoder(), g, bucket, encoded.options());
    state.use_fixed_shapes();
    at::Tensor first_ids;
    for (std::size_t r = 0; r < requests.size(); ++r) {
      const GenerationValues& values = requests[r];
      const GenerationConfig request = with_values(g, values);
      const std::string what = std::string(mode) + " request " + std::to_string(r) + " (max_length " +
                               std::to_string(values.max_length) + ", length_penalty " +
                               std::to_string(values.length_penalty) + ")";
      BeamTrace trace;
      const Generated reused = state.run(encoded, values, &trace);
      const Generated same_bucket =
          DecodeState(pipeline.decoder(), request, bucket, encoded.options()).run(encoded, values);
      EXPECT_TRUE(reused.ids.equal(same_bucket.ids)) << what;
      EXPECT_TRUE(reused.token_log_probs.equal(same_bucket.token_log_probs)) << what;
      const DecodeShape own{encoded.size(0), beams, encoded.size(1), values.max_length};
      const Generated unbucketed =
          DecodeState(pipeline.decoder(), request, own, encoded.options()).run(encoded, values);
      EXPECT_TRUE(reused.ids.equal(unbucketed.ids)) << what << ": ids differ from a state sized to the request";
      // Attention sums over the cache's whole length, so another length moves the last bits.
      EXPECT_TRUE(at::allclose(reused.token_log_probs, unbucketed.token_log_probs, 0, 1e-5)) << what;
      if (r == 0) first_ids = reused.ids;
      if (r > 0 && values.max_length != reference_length) {
        EXPECT_FALSE(reused.ids.sizes() == first_ids.sizes() && reused.ids.equal(first_ids))
            << what << " gives the first request's answer: the case tests nothing";
      }
      if (values.max_length == reference_length) {
        const std::string key = task + "." + mode;
        // The reference's rows for these photos, trimmed to the longest of them (pad_token_id fills
        // the rest), as generate() returns a batch of these photos alone.
        at::Tensor expected = fixture.refs.tensor(key).slice(0, 0, kPhotos);
        const auto longest = (expected != g.pad_token_id).to(at::kLong).sum(1).max().item<std::int64_t>();
        expected = expected.narrow(1, 0, longest);
        const at::Tensor margins = fixture.refs.tensor(key + ".margin").slice(0, 0, kPhotos);
        const auto divergences =
            beams == 1
                ? greedy_divergences(reused.ids, expected, margins, g.pad_token_id)
                : beam_divergences(reused.ids, expected, trace,
                                   fixture.refs.tensor(key + ".running").slice(1, 0, kPhotos * beams), margins, beams);
        check_token_log_probs(reused, expected, fixture.refs.tensor(key + ".log_probs").slice(0, 0, kPhotos),
                              divergences, g, key);
        report_divergences(divergences, what);
      }
    }
  }
}

// Requests that differ only in max_new_tokens (within a length bucket), length_penalty,
// early_stopping or no_repeat_ngram_size (1 to 3) reuse the one decode state of their batch, beams
// and bucket; a longer bucket, other beams or no n-gram ban build another, and a kept state is
// found again.
TEST(Florence2Parity, GeneratorBuildsOneDecodeStatePerBucket) {
  using EarlyStopping = GenerationConfig::EarlyStopping;
  const GenerationFixture fixture;
  PipelineOptions options;
  options.kept_decode_states = 4;  // as on CUDA (the CPU keeps one)
  const Pipeline pipeline(data_dir() / (fixture.checkpoint + "_native"), options);
  const at::Tensor pixels = fixture.refs.tensor("tiny.pixel_values").slice(0, 0, 1);
  const at::Tensor encoded =
      pipeline.encode(pipeline.image_features(pixels), fixture.refs.tensor("task0.prompt_ids").unsqueeze(0));
  GenerationConfig g = reference_settings(pipeline.config().generation, 3);
  EXPECT_EQ(pipeline.decode_states_created(), 0u);
  struct Case {
    int beams;
    int max_length;
    double length_penalty;
    EarlyStopping early_stopping;
    int no_repeat_ngram_size;
    std::size_t states;  // created after this request
  };
  const std::vector<Case> cases = {
      {3, 21, 1.0, EarlyStopping::kTrue, 3, 1},   {3, 9, 2.0, EarlyStopping::kNever, 3, 1},
      {3, 65, -0.5, EarlyStopping::kFalse, 2, 1}, {3, 66, 1.0, EarlyStopping::kTrue, 3, 2},
      {1, 30, 1.0, EarlyStopping::kTrue, 3, 3},   {1, 12, 1.0, EarlyStopping::kTrue, 1, 3},
      {3, 40, 1.0, EarlyStopping::kNever, 3, 3},  {3, 40, 1.0, EarlyStopping::kTrue, 0, 4},
  };
  for (const auto& c : cases) {
    g.num_beams = c.beams;
    g.length_penalty = c.length_penalty;
    g.early_stopping = c.early_stopping;
    g.no_repeat_ngram_size = c.no_repeat_ngram_size;
    const Generated generated = pipeline.generate(encoded, g, c.max_length);
    EXPECT_LE(generated.ids.size(1), c.max_length);
    EXPECT_EQ(pipeline.decode_states_created(), c.states)
        << c.beams << " beams, max_length " << c.max_length << ", length_penalty " << c.length_penalty
        << ", no_repeat_ngram_size " << c.no_repeat_ngram_size;
  }
}
