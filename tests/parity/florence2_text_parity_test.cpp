// Parity of Florence-2 prompt construction and post-processing with transformers'
// Florence2Processor, on the reference written by florence2_text_reference.py (test setup).

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "post_processor.h"
#include "task_prompts.h"
#include "vlm/error.h"
#include "vlm/model_json.h"

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
namespace f2 = vlm::florence2;

// {task: answer} as transformers' post_process_generation returns it, through the JSON edge the
// server and the CLI write results with.
Json post_process_json(std::string_view text, std::string_view task, f2::ImageSize size,
                       const f2::PostProcessorConfig& config = {}) {
  const f2::ParsedAnswer parsed = f2::post_process_generation(text, task, size, config);
  return Json{{std::string(task), vlm::task_answer_json(parsed.answer, parsed.boxes)}};
}

const Json& reference() {
  static const Json kReference = [] {
    const char* dir = std::getenv("VLM_TEST_DATA");
    if (dir == nullptr) throw std::runtime_error("VLM_TEST_DATA is not set (run through ctest)");
    const fs::path path = fs::path(dir) / "florence2_text" / "reference.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("missing " + path.string() + " (the florence2_text_reference fixture writes it)");
    return Json::parse(in);
  }();
  return kReference;
}

// Structural equality; numbers compare within 1e-4 whatever their JSON type (Python ints vs floats).
bool same(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return std::fabs(a.get<double>() - b.get<double>()) <= 1e-4;
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !same(it.value(), b.at(it.key()))) return false;
    }
    return true;
  }
  return a == b;
}

f2::PostProcessorConfig config_named(const std::string& name) {
  const Json& c = reference().at("configs").at(name);
  f2::PostProcessorConfig config;
  config.ocr_area_threshold = c.at("ocr_area_threshold").get<double>();
  config.banned_grounding_tokens = c.at("banned_grounding_tokens").get<std::vector<std::string>>();
  return config;
}

TEST(Florence2TextParity, PostProcessGenerationEveryTask) {
  const auto& cases = reference().at("cases");
  ASSERT_GT(cases.size(), 1000u);
  std::set<std::string> tasks;
  int failures = 0;
  for (const Json& c : cases) {
    const std::string task = c.at("task").get<std::string>();
    const std::string text = c.at("text").get<std::string>();
    const f2::ImageSize size{c.at("image_size")[0].get<int>(), c.at("image_size")[1].get<int>()};
    const Json got = post_process_json(text, task, size, config_named(c.at("config").get<std::string>()));
    tasks.insert(task);
    if (!same(got, c.at("expected")) && ++failures <= 8) {
      ADD_FAILURE() << task << " " << size.width << "x" << size.height << " " << c.at("config").get<std::string>()
                    << "\n  text " << Json(text).dump() << "\n  got  " << got.dump() << "\n  want "
                    << c.at("expected").dump();
    }
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " cases";
  for (const char* task :
       {"<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>", "<OD>", "<DENSE_REGION_CAPTION>",
        "<REGION_PROPOSAL>", "<CAPTION_TO_PHRASE_GROUNDING>", "<REFERRING_EXPRESSION_SEGMENTATION>",
        "<REGION_TO_SEGMENTATION>", "<OPEN_VOCABULARY_DETECTION>", "<REGION_TO_CATEGORY>", "<REGION_TO_DESCRIPTION>",
        "<OCR>", "<OCR_WITH_REGION>"}) {
    EXPECT_TRUE(tasks.contains(task)) << task << " has no reference case";
  }
}

// Our defaults are the original checkpoints' configuration the reference ran with.
TEST(Florence2TextParity, DefaultConfigIsTheOriginalOne) {
  const f2::PostProcessorConfig defaults;
  const f2::PostProcessorConfig original = config_named("original");
  EXPECT_EQ(defaults.ocr_area_threshold, original.ocr_area_threshold);
  EXPECT_EQ(std::set<std::string>(defaults.banned_grounding_tokens.begin(), defaults.banned_grounding_tokens.end()),
            std::set<std::string>(original.banned_grounding_tokens.begin(), original.banned_grounding_tokens.end()));
}

TEST(Florence2TextParity, ConstructPrompts) {
  for (const Json& p : reference().at("prompts")) {
    const std::string input = p.at("input").get<std::string>();
    if (p.at("expected").is_null()) {
      EXPECT_THROW(f2::construct_prompt(input), vlm::Error) << Json(input).dump();
    } else {
      EXPECT_EQ(f2::construct_prompt(input), p.at("expected").get<std::string>()) << Json(input).dump();
    }
  }
}

}  // namespace
