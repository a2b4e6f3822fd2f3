#pragma once

#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vlm/audit/audit_log.h"
#include "vlm/image.h"
#include "vlm/model.h"
#include "vlm/think/policy.h"

// POST /think and `vlmserve think`: four private steps over one image, then a final answer.
// The steps' text lives only in the transcript; the answer handed back is whatever the redaction
// parser (transcript.h) releases from <final>, so no other path from the steps to the caller exists.
namespace vlm::think {

// One loaded model as the pipeline reaches it: the server goes through its batcher, the CLI calls
// Model::run under a lock.
class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual const ModelInfo& info() const = 0;
  virtual ImageResult run(const Image& image, const DetectOptions& options) = 0;
};

class DirectStepModel final : public StepModel {
 public:
  explicit DirectStepModel(Model& model) : model_(model) {}
  const ModelInfo& info() const override { return model_.info(); }
  ImageResult run(const Image& image, const DetectOptions& options) override;

 private:
  Model& model_;
  std::mutex mutex_;  // Model::run is not thread-safe
};

struct ThinkModels {
  StepModel* florence = nullptr;  // Florence-2: caption, OD, OCR with regions, phrase grounding
  StepModel* detector = nullptr;  // YOLO: observe and ground from detections when no Florence-2
  std::string florence_name;
  std::string detector_name;
};

struct ThinkSettings {
  float detector_conf = 0.25F;
  std::size_t max_evidence = 50;
};

// Safe to return: built only from the redacted final block, plus step timings (numbers).
struct ThinkResult {
  nlohmann::json final_answer;  // {"kind", "answer", "evidence": [{"label", "box", "source"}]}
  std::string outcome;          // answered, refused, unanswerable, inconclusive
  nlohmann::json timings;       // {"observe_ms", "read_ms", "ground_ms", "check_ms", "total_ms"}
  std::vector<audit::ModelVersion> models;
};

// The private side of one run, for the audit HMACs only. Wiped when destroyed; never log it.
struct PrivateRecord {
  PrivateRecord() = default;
  PrivateRecord(const PrivateRecord&) = delete;
  PrivateRecord& operator=(const PrivateRecord&) = delete;
  ~PrivateRecord();
  std::string transcript;
  std::string final_text;
};

// Throws vlm::Error: kInvalidArgument (empty or over-long question), kUnavailable (no usable model),
// or kInternal when a step fails or the transcript does not pass redaction. Error messages name
// the step and the error code only, never model output or the question.
ThinkResult run_think(const Image& image, const std::string& question, ThinkModels& models, const Policy& policy,
                      const ThinkSettings& settings, PrivateRecord& record);

// Keeps transcripts out of crash output: no core dumps (RLIMIT_CORE 0) and no ptrace or
// /proc/PID/mem reads by other processes of the same user (PR_SET_DUMPABLE 0). Returns false, with
// the process unchanged, where the system refuses.
bool protect_process_memory();

// Audit record of one /think; private texts go in only to be HMACed by the log.
audit::RequestEntry think_audit_entry(const std::string& request_id, const std::string& client,
                                      const std::string& image_sha256, const std::string& question,
                                      const ThinkResult* result, const PrivateRecord* record,
                                      const std::string& outcome);

}  // namespace vlm::think
