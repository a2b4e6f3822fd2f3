// Florence-2 task table against the task data onnx-community ships in its preprocessor_config.json
// (copied from the original processor), plus the errors our API adds.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "post_processor.h"
#include "task_prompts.h"
#include "vlm/error.h"
#include "vlm/model_json.h"

namespace {

using Json = nlohmann::json;
namespace f2 = vlm::florence2;

// {task: answer} as transformers' post_process_generation returns it, through the JSON edge the
// server and the CLI write results with.
Json post_process_json(std::string_view text, std::string_view task, f2::ImageSize size,
                       const f2::PostProcessorConfig& config = {}) {
  const f2::ParsedAnswer parsed = f2::post_process_generation(text, task, size, config);
  return Json{{std::string(task), vlm::task_answer_json(parsed.answer, parsed.boxes)}};
}

Json onnx_file(const char* name) {
  const char* assets = std::getenv("VLM_ASSETS");
  const std::filesystem::path path = std::filesystem::path(assets != nullptr ? assets : "../shared/assets") /
                                     "florence2" / "onnx-community-Florence-2-base" / name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return Json::parse(in);
}

Json onnx_preprocessor_config() { return onnx_file("preprocessor_config.json"); }

// onnx-community baked the processor's tokens into its files: same contents, same ids.
TEST(Florence2Tasks, ProcessorAddedTokensMatchTheBakedInOnes) {
  const Json added = onnx_file("added_tokens.json");
  const auto tokens = f2::processor_added_tokens();
  ASSERT_EQ(tokens.size(), added.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    ASSERT_TRUE(added.contains(tokens[i])) << tokens[i];
    EXPECT_EQ(added.at(tokens[i]).get<int>(), 50265 + static_cast<int>(i)) << tokens[i];
  }
}

TEST(Florence2Tasks, TableMatchesTheCheckpointsTaskData) {
  const Json config = onnx_preprocessor_config();
  const Json& without = config.at("task_prompts_without_inputs");
  const Json& with = config.at("task_prompts_with_input");
  const Json& types = config.at("tasks_answer_post_processing_type");
  EXPECT_EQ(f2::tasks().size(), without.size() + with.size());
  for (const f2::TaskInfo& task : f2::tasks()) {
    const std::string token(task.token);
    const Json& table = task.takes_input ? with : without;
    ASSERT_TRUE(table.contains(token)) << token;
    EXPECT_EQ(table.at(token).get<std::string>(), task.prompt) << token;
    ASSERT_TRUE(types.contains(token)) << token;
    EXPECT_EQ(types.at(token).get<std::string>(), f2::post_process_type_name(task.post_process)) << token;
    EXPECT_EQ(f2::find_task(token), &task);
    EXPECT_EQ(f2::post_process_type(token), task.post_process);
  }
  for (auto it = types.begin(); it != types.end(); ++it) EXPECT_NE(f2::find_task(it.key()), nullptr) << it.key();
}

TEST(Florence2Tasks, TaskPromptJoinsTaskAndText) {
  EXPECT_EQ(f2::task_prompt("<OD>"), "Locate the objects with category name in the image.");
  EXPECT_EQ(f2::task_prompt("<OPEN_VOCABULARY_DETECTION>", " a dog "), "Locate a dog in the image.");
  try {
    f2::task_prompt("<CAPTION>", "extra words");
    ADD_FAILURE() << "text for a task without input was accepted";
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("<CAPTION>extra words"), std::string::npos) << e.what();
  }
}

std::string request_error(std::string_view task, std::string_view text) {
  try {
    f2::request_prompt(task, text);
  } catch (const vlm::Error& e) {
    EXPECT_EQ(e.code(), vlm::ErrorCode::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "request accepted: task '" << task << "' text '" << text << "'";
  return {};
}

TEST(Florence2Tasks, RequestPromptRefusesWhatTheTaskCannotTake) {
  EXPECT_EQ(f2::request_prompt("<OD>", ""), f2::task_prompt("<OD>"));
  EXPECT_EQ(f2::request_prompt("<REGION_TO_OCR>", "<loc_1><loc_2><loc_3><loc_4>"),
            "What text is in the region <loc_1><loc_2><loc_3><loc_4>?");
  EXPECT_NE(request_error("<NOPE>", "").find("unknown Florence-2 task '<NOPE>'"), std::string::npos);
  EXPECT_NE(request_error("od", "").find("<OD>"), std::string::npos);  // the message lists the known tasks
  for (const auto& task : f2::tasks()) {
    if (task.takes_input) {
      EXPECT_NE(request_error(task.token, "").find("needs text"), std::string::npos) << task.token;
      // Python's str.strip() whitespace, U+3000 included, is no text either.
      EXPECT_NE(request_error(task.token, " \t\u3000").find("needs text"), std::string::npos) << task.token;
    } else {
      EXPECT_NE(request_error(task.token, " ").find("takes no text"), std::string::npos) << task.token;
    }
  }
  // A long text is quoted, cut on a UTF-8 boundary, not echoed whole.
  const std::string message = request_error("<CAPTION>", std::string(63, 'x') + "\u00e9" + std::string(1000, 'y'));
  EXPECT_NE(message.find(std::string(63, 'x') + "...'"), std::string::npos) << message;
  EXPECT_LT(message.size(), 200U);
  // Text that smuggles in a task without input is refused, as transformers refuses it.
  request_error("<OPEN_VOCABULARY_DETECTION>", "a dog<OD>");
}

TEST(Florence2Tasks, UnknownTasksAreParsedAsPureText) {
  EXPECT_EQ(f2::post_process_type("<NOT_A_TASK>"), f2::PostProcessType::kPureText);
  const Json out = post_process_json("<s> hi <loc_1></s>", "<NOT_A_TASK>", {10, 10});
  EXPECT_EQ(out, (Json{{"<NOT_A_TASK>", "hi <loc_1>"}}));
}

// Token soup for every task: answers keep transformers' shapes and stay valid UTF-8 JSON.
TEST(Florence2PostProcess, RandomTextsKeepTheAnswerShape) {
  std::mt19937 rng(5);
  const std::vector<std::string> pool = {
      "car",   " a dog", "日本",  "é", "\n", " ",        "<s>",       "</s>",    "<pad>",     "<poly>",  "</poly>",
      "<sep>", "<od>",   "<loc_", ">", "<",  "<loc_12>", "<loc_999>", "<loc_0>", "<loc_500>", "<loc_7>", "\xc2\xa0"};
  for (int n = 0; n < 2000; ++n) {
    std::string text;
    for (int k = static_cast<int>(rng() % 60); k > 0; --k) text += pool[rng() % pool.size()];
    for (const f2::TaskInfo& task : f2::tasks()) {
      const f2::ImageSize size{1 + static_cast<int>(rng() % 4000), 1 + static_cast<int>(rng() % 4000)};
      const Json out = post_process_json(text, task.token, size);
      ASSERT_EQ(out.size(), 1u);
      const Json& answer = out.at(std::string(task.token));
      EXPECT_NO_THROW((void)out.dump()) << Json(text).dump();
      switch (task.post_process) {
        case f2::PostProcessType::kPureText: EXPECT_TRUE(answer.is_string()); break;
        case f2::PostProcessType::kOcr:
          EXPECT_EQ(answer.at("quad_boxes").size(), answer.at("labels").size());
          for (const Json& q : answer.at("quad_boxes")) EXPECT_EQ(q.size(), 8u);
          break;
        case f2::PostProcessType::kPolygons:
          EXPECT_EQ(answer.at("polygons").size(), answer.at("labels").size());
          for (const Json& polys : answer.at("polygons")) {
            for (const Json& p : polys) EXPECT_EQ(p.size() % 2, 0u);
          }
          break;
        case f2::PostProcessType::kDescriptionWithBboxesOrPolygons:
          EXPECT_EQ(answer.at("bboxes").size(), answer.at("bboxes_labels").size());
          EXPECT_EQ(answer.at("polygons").size(), answer.at("polygons_labels").size());
          break;
        default:
          EXPECT_EQ(answer.at("bboxes").size(), answer.at("labels").size());
          for (const Json& b : answer.at("bboxes")) {
            ASSERT_EQ(b.size(), 4u);
            // Bins 0..999 land inside the image.
            EXPECT_LE(b[0].get<int>(), size.width);
            EXPECT_LE(b[1].get<int>(), size.height);
          }
      }
    }
  }
}

TEST(Florence2PostProcess, RejectsEmptyImageSize) {
  for (const f2::ImageSize size : {f2::ImageSize{0, 10}, f2::ImageSize{10, 0}, f2::ImageSize{-1, 5}}) {
    try {
      f2::post_process_generation("car<loc_1><loc_2><loc_3><loc_4>", "<OD>", size);
      ADD_FAILURE() << "accepted " << size.width << "x" << size.height;
    } catch (const vlm::Error& e) {
      EXPECT_EQ(e.code(), vlm::ErrorCode::kInvalidArgument);
    }
  }
}

}  // namespace
