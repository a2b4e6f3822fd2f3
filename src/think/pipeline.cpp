#include "vlm/think/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <span>

#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "vlm/error.h"
#include "vlm/think/question.h"
#include "vlm/think/transcript.h"

namespace vlm::think {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Evidence {
  std::string label;
  std::array<float, 4> box{};
  std::string source;   // detection, grounding, ocr
  float score = -1.0F;  // < 0: the model gives none
};

struct OcrLine {
  std::string text;
  std::array<float, 4> box{};
};

// Runs one step; a model error leaves as an error that names the step and the code, nothing else,
// because model errors can quote model output and must not become a side channel for step text.
// Serving outcomes (the server's timeout, queue-full and client-closed errors) pass through unchanged.
template <typename Fn>
void run_step(const char* step, double& ms, Fn&& fn) {
  const auto start = Clock::now();
  try {
    fn();
  } catch (const Error& error) {
    if (is_serving_outcome(error.code())) throw;
    throw Error(ErrorCode::kInternal,
                std::string("think step ") + step + " failed (" + std::string(error_code_name(error.code())) + ")");
  }
  ms = ms_since(start);
}

ImageResult run_task(StepModel& model, const Image& image, const std::string& task, const std::string& text = {}) {
  DetectOptions options;
  options.task = task;
  options.text = text;
  return model.run(image, options);
}

std::string box_text(const std::array<float, 4>& b) {
  return "[" + std::to_string(std::lround(b[0])) + "," + std::to_string(std::lround(b[1])) + "," +
         std::to_string(std::lround(b[2])) + "," + std::to_string(std::lround(b[3])) + "]";
}

// Clips to the image; nullopt for boxes that are not finite or have no area inside it.
std::optional<std::array<float, 4>> clip_box(std::array<float, 4> b, const Image& image) {
  for (float v : b) {
    if (!std::isfinite(v)) return std::nullopt;
  }
  const auto w = static_cast<float>(image.width());
  const auto h = static_cast<float>(image.height());
  b[0] = std::clamp(b[0], 0.0F, w);
  b[2] = std::clamp(b[2], 0.0F, w);
  b[1] = std::clamp(b[1], 0.0F, h);
  b[3] = std::clamp(b[3], 0.0F, h);
  if (b[2] - b[0] < 1.0F || b[3] - b[1] < 1.0F) return std::nullopt;
  return b;
}

std::vector<OcrLine> ocr_lines(const ImageResult& result) {
  std::vector<OcrLine> lines;
  if (!result.answer) return lines;
  for (const QuadRegion& region : result.answer->quad_regions) {
    std::array<float, 4> box = {1e9F, 1e9F, -1e9F, -1e9F};
    for (std::size_t k = 0; k < 8; k += 2) {
      const float x = region.quad[k];
      const float y = region.quad[k + 1];
      box = {std::min(box[0], x), std::min(box[1], y), std::max(box[2], x), std::max(box[3], y)};
    }
    std::string text = region.label;
    // Florence-2 OCR labels carry the </s> end marker on some lines.
    for (const std::string marker : {"</s>", "<s>"}) {
      for (auto pos = text.find(marker); pos != std::string::npos; pos = text.find(marker))
        text.erase(pos, marker.size());
    }
    lines.push_back({std::move(text), box});
  }
  return lines;
}

bool inside(const std::array<float, 4>& inner, const std::array<float, 4>& outer) {
  const float cx = (inner[0] + inner[2]) / 2;
  const float cy = (inner[1] + inner[3]) / 2;
  return cx >= outer[0] && cx <= outer[2] && cy >= outer[1] && cy <= outer[3];
}

std::string summary(const std::vector<Evidence>& items) {
  std::map<std::string, std::size_t> counts;
  for (const auto& item : items) ++counts[item.label];
  std::vector<std::pair<std::size_t, std::string>> ordered;
  for (const auto& [label, n] : counts) ordered.emplace_back(n, label);
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::string out;
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (i > 0) out += i + 1 == ordered.size() ? " and " : ", ";
    out += std::to_string(ordered[i].first) + " " + counted_noun(ordered[i].second, ordered[i].first);
  }
  return out;
}

nlohmann::json evidence_json(const std::vector<Evidence>& items, std::size_t limit) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) {
    nlohmann::json e = {{"label", items[i].label}, {"box", items[i].box}, {"source", items[i].source}};
    if (items[i].score >= 0) e["score"] = items[i].score;
    out.push_back(std::move(e));
  }
  return out;
}

std::string model_version(const ModelInfo& info) {
  return std::filesystem::path(info.source).filename().string() + " (" + info.dtype + ", " + info.device + ")";
}

// One /think run. The steps share what they found through the members; each writes its own
// transcript section, and only check() decides the final answer.
class ThinkRun {
 public:
  ThinkRun(const Image& image, const std::string& question, ThinkModels& models, const Policy& policy,
           const ThinkSettings& settings)
      : image_(image),
        settings_(settings),
        florence_(models.florence),
        detector_(models.detector),
        q_(parse_question(question)),
        refused_(policy.refused_topic(question)) {}

  // Detections (and with Florence-2 a detailed caption) of the whole image.
  void observe() {
    if (refused_ != nullptr) {
      writer_.step(Step::kObserve, "skipped: the question is refused by policy");
      return;
    }
    std::vector<Detection> detections;
    if (florence_ != nullptr) {
      const auto described = run_task(*florence_, image_, "<MORE_DETAILED_CAPTION>");
      if (described.answer && described.answer->shape == AnswerShape::kText) caption_ = described.answer->text;
      detections = run_task(*florence_, image_, "<OD>").detections;
    } else {
      DetectOptions options;
      options.conf = settings_.detector_conf;
      detections = detector_->run(image_, options).detections;
    }
    std::string text = caption_.empty() ? "" : "caption: " + caption_ + "\n";
    for (const auto& d : detections) {
      text += d.label + " " + std::to_string(d.score) + " " + box_text(d.box) + "\n";
      if (auto box = clip_box(d.box, image_)) {
        observed_.push_back({d.label, *box, "detection", florence_ != nullptr ? -1.0F : d.score});
      }
    }
    writer_.step(Step::kObserve, text.empty() ? "nothing detected" : text);
  }

  // The image's text lines with their boxes (Florence-2 OCR).
  void read() {
    if (refused_ != nullptr) {
      writer_.step(Step::kRead, "skipped: the question is refused by policy");
    } else if (florence_ == nullptr) {
      writer_.step(Step::kRead, "unavailable: no OCR-capable model is loaded");
    } else {
      lines_ = ocr_lines(run_task(*florence_, image_, "<OCR_WITH_REGION>"));
      std::string text;
      for (const auto& line : lines_) text += line.text + " " + box_text(line.box) + "\n";
      writer_.step(Step::kRead, text.empty() ? "no text found" : text);
    }
  }

  // Boxes of the question's subject: Florence-2 phrase grounding, else the detector's matching classes.
  void ground() {
    if (refused_ != nullptr) {
      writer_.step(Step::kGround, "skipped: the question is refused by policy");
      return;
    }
    std::string text = "subject: " + (q_.subject.empty() ? std::string("(none)") : q_.subject) + "\n";
    if (florence_ != nullptr && !q_.subject.empty()) {
      for (const auto& d : run_task(*florence_, image_, "<CAPTION_TO_PHRASE_GROUNDING>", q_.subject).detections) {
        if (auto box = clip_box(d.box, image_)) {
          grounded_.push_back({d.label.empty() ? q_.subject : d.label, *box, "grounding"});
        } else {
          ++dropped_boxes_;
        }
      }
    } else if (detector_ != nullptr) {
      labels_ = matching_labels(q_.subject, detector_->info().classes);
      for (const auto& item : observed_) {
        if (std::find(labels_.begin(), labels_.end(), item.label) != labels_.end()) grounded_.push_back(item);
      }
      text += "detector classes named: " + std::to_string(labels_.size()) + "\n";
    }
    for (const auto& g : grounded_) text += g.label + " " + box_text(g.box) + "\n";
    writer_.step(Step::kGround, text);
  }

  // Policy, consistency between the steps, and the final answer.
  void check(ThinkResult& result) {
    std::string check;
    const auto answer = [&](const char* kind, const std::string& text, const std::vector<Evidence>& evidence,
                            const char* outcome) {
      final_answer_ = {{"kind", kind}, {"answer", text}, {"evidence", evidence_json(evidence, settings_.max_evidence)}};
      result.outcome = outcome;
    };
    if (refused_ != nullptr) {
      check = "policy: refused (topic " + refused_->topic + ")";
      answer("refusal", refused_->refusal, {}, "refused");
    } else {
      check = "policy: allowed\n";
      if (dropped_boxes_ > 0)
        check += "grounding boxes outside the image dropped: " + std::to_string(dropped_boxes_) + "\n";
      switch (q_.kind) {
        case QuestionKind::kCount: {
          if (florence_ == nullptr && !q_.subject.empty() && labels_.empty()) {
            check += "consistency: the subject is not a class the detector knows";
            answer("unanswerable", "I can't count that: the loaded detector does not recognise that kind of object.",
                   {}, "unanswerable");
            break;
          }
          const std::vector<Evidence>& counted = q_.subject.empty() ? observed_ : grounded_;
          if (florence_ != nullptr && !q_.subject.empty()) {
            // Grounding and detection are two independent looks; a disagreement means neither is trusted.
            std::vector<std::string> od_labels;
            for (const auto& o : observed_) od_labels.push_back(o.label);
            const auto named = matching_labels(q_.subject, od_labels);
            std::size_t od_count = 0;
            for (const auto& o : observed_) od_count += std::count(named.begin(), named.end(), o.label) > 0 ? 1 : 0;
            if (!named.empty() && od_count != grounded_.size()) {
              check += "consistency: grounding and detection disagree";
              answer("inconclusive", "The steps disagree about this count, so I won't give one.", {}, "inconclusive");
              break;
            }
          }
          const std::string noun = labels_.size() == 1  ? labels_.front()
                                   : q_.subject.empty() ? std::string("object")
                                                        : q_.subject;
          const std::size_t n = counted.size();
          const std::string text =
              n == 1 ? "There is 1 " + noun + "."
                     : "There are " + std::to_string(n) + " " +
                           (labels_.size() == 1 || q_.subject.empty() ? counted_noun(noun, n) : noun) + ".";
          check += "consistency: ok";
          answer("count", text, counted, "answered");
          break;
        }
        case QuestionKind::kText: {
          if (florence_ == nullptr) {
            check += "consistency: no OCR step ran";
            answer("unanswerable", "I can't read text: no OCR-capable model (Florence-2) is loaded.", {},
                   "unanswerable");
            break;
          }
          std::vector<Evidence> used;
          std::string text;
          for (const auto& line : lines_) {
            const bool in_subject = std::any_of(grounded_.begin(), grounded_.end(),
                                                [&](const Evidence& g) { return inside(line.box, g.box); });
            if (grounded_.empty() || in_subject) {
              text += (text.empty() ? "" : " ") + line.text;
              used.push_back({"text", line.box, "ocr"});
            }
          }
          if (text.empty()) {
            for (const auto& line : lines_) {
              text += (text.empty() ? "" : " ") + line.text;
              used.push_back({"text", line.box, "ocr"});
            }
          }
          check += "consistency: ok";
          answer("text", text.empty() ? std::string("I can't find any text in the image.") : text, used, "answered");
          break;
        }
        case QuestionKind::kDescribe: {
          std::string text = caption_;
          if (text.empty()) {
            const std::string seen = summary(observed_);
            text = seen.empty() ? "I don't see any object I recognise in this image." : "I see " + seen + ".";
          }
          check += "consistency: ok";
          answer("description", text, grounded_.empty() ? observed_ : grounded_, "answered");
          break;
        }
      }
    }
    writer_.step(Step::kCheck, check);
  }

  TranscriptWriter& writer() { return writer_; }
  const nlohmann::json& final_answer() const { return final_answer_; }

 private:
  const Image& image_;
  const ThinkSettings& settings_;
  StepModel* florence_;
  StepModel* detector_;
  const Question q_;
  const PolicyTopic* refused_;
  TranscriptWriter writer_;
  std::vector<Evidence> observed_;
  std::string caption_;
  std::vector<OcrLine> lines_;
  std::vector<Evidence> grounded_;
  std::vector<std::string> labels_;
  std::size_t dropped_boxes_ = 0;
  nlohmann::json final_answer_;
};

}  // namespace

ImageResult DirectStepModel::run(const Image& image, const DetectOptions& options) {
  std::lock_guard lock(mutex_);
  auto results = model_.run(std::span(&image, 1), options);
  if (results.size() != 1) {
    throw Error(ErrorCode::kInternal, "model returned " + std::to_string(results.size()) + " results for 1 image");
  }
  return std::move(results.front());
}

PrivateRecord::~PrivateRecord() {
  OPENSSL_cleanse(transcript.data(), transcript.size());
  OPENSSL_cleanse(final_text.data(), final_text.size());
}

ThinkResult run_think(const Image& image, const std::string& question, ThinkModels& models, const Policy& policy,
                      const ThinkSettings& settings, PrivateRecord& record) {
  const auto start = Clock::now();
  if (normalize_words(question).empty()) {
    throw Error(ErrorCode::kInvalidArgument, "question is empty (it needs at least one letter or digit)");
  }
  // Characters, not bytes: a 200-character question in CJK is 600 bytes of UTF-8. Every byte but
  // a continuation byte (10xxxxxx) starts a code point.
  const auto chars = static_cast<std::size_t>(std::count_if(
      question.begin(), question.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U; }));
  if (chars > policy.max_question_chars) {
    throw Error(ErrorCode::kInvalidArgument, "question has " + std::to_string(chars) +
                                                 " characters, more than the policy's max_question_chars " +
                                                 std::to_string(policy.max_question_chars));
  }
  StepModel* florence = models.florence;
  StepModel* detector = models.detector;
  if (florence == nullptr && detector == nullptr) {
    throw Error(ErrorCode::kUnavailable, "think needs a loaded YOLO or Florence-2 model");
  }
  ThinkResult result;
  if (florence != nullptr)
    result.models.push_back({models.florence_name, florence->info().family, model_version(florence->info())});
  if (detector != nullptr && florence == nullptr) {
    result.models.push_back({models.detector_name, detector->info().family, model_version(detector->info())});
  }

  ThinkRun run(image, question, models, policy, settings);
  double observe_ms = 0, read_ms = 0, ground_ms = 0, check_ms = 0;
  run_step("observe", observe_ms, [&] { run.observe(); });
  run_step("read", read_ms, [&] { run.read(); });
  run_step("ground", ground_ms, [&] { run.ground(); });
  run_step("check", check_ms, [&] { run.check(result); });

  run.writer().final_answer(run.final_answer().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  record.transcript = run.writer().str();
  // The only way out of the transcript.
  record.final_text = final_text_or_throw(record.transcript);
  auto released = nlohmann::json::parse(record.final_text, nullptr, false);
  if (!released.is_object() || !released.contains("answer")) {
    throw Error(ErrorCode::kInternal, "the final block is not an answer object");
  }
  result.final_answer = std::move(released);
  result.timings = {{"observe_ms", observe_ms},
                    {"read_ms", read_ms},
                    {"ground_ms", ground_ms},
                    {"check_ms", check_ms},
                    {"total_ms", ms_since(start)}};
  return result;
}

bool protect_process_memory() {
  const rlimit no_core{0, 0};
  return ::setrlimit(RLIMIT_CORE, &no_core) == 0 && ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

audit::RequestEntry think_audit_entry(const std::string& request_id, const std::string& client,
                                      const std::string& image_sha256, const std::string& question,
                                      const ThinkResult* result, const PrivateRecord* record,
                                      const std::string& outcome) {
  audit::RequestEntry entry;
  entry.request_id = request_id;
  entry.client = client.empty() ? "anonymous" : client;
  entry.endpoint = "/think";
  if (result != nullptr) entry.models = result->models;
  entry.image_sha256 = image_sha256;
  entry.question = question;
  if (record != nullptr && !record->transcript.empty()) entry.transcript = record->transcript;
  if (record != nullptr && !record->final_text.empty()) entry.final_answer = record->final_text;
  entry.outcome = outcome;
  return entry;
}

}  // namespace vlm::think
