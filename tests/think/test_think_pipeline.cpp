// The /think pipeline over real models: YOLOv5n (yolo_fixtures) and the tiny random-weight
// Florence-2 (florence2_fixtures). Checks what the private transcript holds against what leaves.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "vlm/audit/audit_log.h"
#include "vlm/audit/key_file.h"
#include "vlm/audit/record.h"
#include "vlm/audit/verify.h"
#include "vlm/error.h"
#include "vlm/think/pipeline.h"
#include "vlm/think/transcript.h"

namespace vlm::think {
namespace {

namespace fs = std::filesystem;

fs::path env_path(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? fs::path(value) : fs::path(fallback);
}

fs::path assets() { return env_path("VLM_ASSETS", VLM_SOURCE_DIR "/../shared/assets"); }
fs::path test_data() { return env_path("VLM_TEST_DATA", "/tmp"); }

Policy policy() { return Policy::load(fs::path(VLM_SOURCE_DIR) / "configs" / "think-policy.json"); }

class YoloThink : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto path = test_data() / "yolov5n.torchscript";
    ASSERT_TRUE(fs::exists(path)) << path << " is made by the yolo_fixtures test setup";
    model_ = load_model(path, ModelOptions{}).release();
  }
  static void TearDownTestSuite() { delete model_; }
  static Model* model_;
};
Model* YoloThink::model_ = nullptr;

// Fault injection around the real model: its n-th call fails the way a model can fail.
class FailingStep final : public StepModel {
 public:
  explicit FailingStep(StepModel& inner) : inner_(inner) {}
  const ModelInfo& info() const override { return inner_.info(); }
  ImageResult run(const Image&, const DetectOptions&) override {
    throw Error(ErrorCode::kBadCheckpoint, "tensor layer.3 holds STEPCANARY text from the model");
  }

 private:
  StepModel& inner_;
};

TEST_F(YoloThink, TranscriptStaysPrivateAndMatchesItsAuditRecord) {
  DirectStepModel yolo(*model_);
  ThinkModels models;
  models.detector = &yolo;
  models.detector_name = "yolov5n";
  const Image image = load_image(assets() / "images" / "bus.jpg");
  PrivateRecord record;
  const auto result = run_think(image, "How many people are in this photo?", models, policy(), {}, record);
  EXPECT_EQ(result.outcome, "answered");
  EXPECT_EQ(result.final_answer["kind"], "count");

  // The transcript holds all four steps; the bus seen in the observe step is not in the answer.
  for (const char* tag : {"<think-observe>", "<think-read>", "<think-ground>", "<think-check>", "<final>"}) {
    EXPECT_NE(record.transcript.find(tag), std::string::npos) << tag;
  }
  const auto observe_end = record.transcript.find("</think-observe>");
  EXPECT_NE(record.transcript.substr(0, observe_end).find("bus "), std::string::npos);
  EXPECT_EQ(result.final_answer.dump().find("bus"), std::string::npos);
  EXPECT_EQ(redact(record.transcript).final_text, record.final_text);
  EXPECT_EQ(nlohmann::json::parse(record.final_text), result.final_answer);

  // The audit record's HMACs let the key holder confirm this exact transcript and nothing else.
  // A fresh directory per run. Not fs::remove_all: in a binary linked with the PyPI libtorch, that
  // symbol resolves to libtorch's own older std::filesystem copy and crashes.
  std::string pattern = (test_data() / "think-pipeline-audit-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  audit::AuditOptions options;
  options.directory = dir / "log";
  options.key_file = dir / "audit.key";
  options.checkpoint_interval = std::chrono::milliseconds(0);
  std::string audit_id;
  {
    audit::AuditLog log(options);
    audit_id = log.append(think_audit_entry("req-1", "key-test", std::string(64, 'b'),
                                            "How many people are in this photo?", &result, &record, result.outcome))
                   .record_hash;
  }
  const auto found = audit::find_records({options.directory}, audit_id);
  ASSERT_EQ(found.size(), 1U);
  const auto key = audit::load_key_file(options.key_file);
  EXPECT_EQ(found[0].record["transcript_hmac"], audit::text_hmac(key, "transcript", record.transcript));
  EXPECT_NE(found[0].record["transcript_hmac"], audit::text_hmac(key, "transcript", record.transcript + " "));
  EXPECT_EQ(found[0].record["final_hmac"], audit::text_hmac(key, "final", record.final_text));
  EXPECT_EQ(found[0].record["models"][0]["family"], "yolo");
  EXPECT_TRUE(audit::verify_log({options.directory}, {}).ok);
}

TEST_F(YoloThink, ModelErrorNamesOnlyTheStepAndCode) {
  DirectStepModel yolo(*model_);
  FailingStep failing(yolo);
  ThinkModels models;
  models.detector = &failing;
  const Image image = load_image(assets() / "images" / "bus.jpg");
  PrivateRecord record;
  try {
    run_think(image, "how many people?", models, policy(), {}, record);
    FAIL() << "a failing model produced an answer";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInternal);
    EXPECT_STREQ(error.what(), "think step observe failed (bad_checkpoint)");
  }
  EXPECT_TRUE(record.final_text.empty());
}

TEST_F(YoloThink, RefusalRunsNoModelAndQuestionsAreBounded) {
  DirectStepModel yolo(*model_);
  FailingStep failing(yolo);  // a refused question must not reach the model at all
  ThinkModels models;
  models.detector = &failing;
  const Image image = load_image(assets() / "images" / "zidane.jpg");
  PrivateRecord record;
  const auto result = run_think(image, "Who is this man?", models, policy(), {}, record);
  EXPECT_EQ(result.outcome, "refused");
  EXPECT_EQ(result.final_answer["answer"], "I can't identify people from their appearance.");
  EXPECT_THROW(run_think(image, "   ?! ", models, policy(), {}, record), Error);
  EXPECT_THROW(run_think(image, std::string(501, 'a'), models, policy(), {}, record), Error);
}

TEST(FlorenceThink, RandomWeightFlorenceOutputNeverBreaksRedaction) {
  const auto path = test_data() / "florence2" / "tiny_native";
  ASSERT_TRUE(fs::exists(path)) << path << " is made by the florence2_fixtures test setup";
  auto florence = load_model(path, ModelOptions{});
  DirectStepModel step(*florence);
  ThinkModels models;
  models.florence = &step;
  models.florence_name = "tiny";
  const Image image = load_image(assets() / "images" / "bus.jpg");
  // Random weights generate arbitrary token soup, tag-like text included: every question kind must
  // still end in a well-formed final whose evidence lies inside the image.
  for (const char* question : {"How many buses are there?", "What does the sign say?"}) {
    PrivateRecord record;
    const auto result = run_think(image, question, models, policy(), {}, record);
    EXPECT_TRUE(redact(record.transcript).ok()) << question;
    EXPECT_TRUE(result.final_answer["answer"].is_string()) << question;
    for (const auto& e : result.final_answer["evidence"]) {
      const auto box = e["box"].get<std::array<float, 4>>();
      EXPECT_TRUE(box[0] >= 0 && box[1] >= 0 && box[2] <= image.width() && box[3] <= image.height()) << e.dump();
    }
    EXPECT_EQ(result.models.front().family, "florence2");
  }
}

}  // namespace
}  // namespace vlm::think
