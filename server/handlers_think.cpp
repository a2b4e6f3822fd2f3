// POST /think: one image and a question; four private steps; the final answer, its evidence, timings
// and the audit_id of the record that proves what ran. Every outcome, errors included, is audited;
// an answer whose record cannot be written is not sent.
#include <chrono>
#include <optional>

#include "app.h"
#include "errors.h"
#include "image_input.h"
#include "vlm/audit/crypto.h"
#include "vlm/image.h"
#include "vlm/logging.h"
#include "vlm/think/pipeline.h"

namespace vlm::server {
namespace {

// Reaches a served model through its batcher, so /think shares the queue, deadline and metrics of
// /detect instead of calling Model::run behind the batcher's back.
class BatcherStepModel final : public think::StepModel {
 public:
  BatcherStepModel(ServedModel& served, const HttpRequest& request, std::chrono::steady_clock::time_point deadline)
      : served_(served), request_(request), deadline_(deadline) {}
  const ModelInfo& info() const override { return served_.model->info(); }

  ImageResult run(const Image& image, const DetectOptions& options) override {
    std::optional<Ticket> ticket;
    {
      Batcher::Incoming incoming(*served_.batcher);
      ticket.emplace(served_.batcher->submit({image}, options, deadline_));
    }
    auto results = ticket->await(deadline_, request_.is_connection_closed);
    if (results.size() != 1) throw Error(ErrorCode::kInternal, "batcher returned a result count other than 1");
    return std::move(results.front());
  }

 private:
  ServedModel& served_;
  const HttpRequest& request_;
  std::chrono::steady_clock::time_point deadline_;
};

std::string string_param(const nlohmann::json& params, const char* name) {
  if (!params.contains(name)) return {};
  const auto& value = params[name];
  if (!value.is_string()) throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be a string");
  return value.get<std::string>();
}

}  // namespace

void App::handle_think(const HttpRequest& request, HttpResponse& response) {
  audit::AuditLog* const audit_log = context_.audit_log();
  if (audit_log == nullptr) {
    throw Error(ErrorCode::kAuditUnavailable,
                "/think is disabled: the server needs --audit-dir and --audit-key-file to audit it");
  }
  std::string question;
  std::string image_sha256;
  think::PrivateRecord record;
  // Whatever happens below, the log gets one record for this request before the client hears back.
  const auto audit_failure = [&](const std::string& outcome) {
    try {
      audit_log->append(think::think_audit_entry(request.request_id, context_.client_id(), image_sha256, question,
                                                 nullptr, nullptr, outcome));
    } catch (const Error& error) {
      // The request already failed; its error response goes out either way.
      log::error("request {}: audit append failed: {}", request.request_id, error.what());
    }
  };
  try {
    const auto deadline = context_.deadline(request.start);
    const ImageInput input = parse_image_input(request, {1, {"question", "model"}});
    question = string_param(input.params, "question");
    if (question.empty()) throw Error(ErrorCode::kMissingQuestion, "send the question as the 'question' parameter");
    const auto& bytes = input.images.front();
    image_sha256 = audit::to_hex(audit::sha256(bytes));

    // Models: the ones the client names (comma-separated), else every loaded one; the first
    // Florence-2 and the first YOLO among them take their steps.
    std::vector<std::string> wanted;
    const std::string named = string_param(input.params, "model");
    for (std::size_t start = 0; start < named.size();) {
      const auto comma = std::min(named.find(',', start), named.size());
      if (comma > start) wanted.push_back(named.substr(start, comma - start));
      start = comma + 1;
    }
    std::vector<std::unique_ptr<BatcherStepModel>> steps;
    think::ThinkModels models;
    const auto take = [&](ServedModel& served) {
      const std::string& family = served.model->info().family;
      think::StepModel*& slot = family == "florence2" ? models.florence : models.detector;
      if (slot != nullptr || (family != "florence2" && family != "yolo")) return;
      steps.push_back(std::make_unique<BatcherStepModel>(served, request, deadline));
      slot = steps.back().get();
      (family == "florence2" ? models.florence_name : models.detector_name) = served.name;
    };
    if (wanted.empty()) {
      for (const auto& [name, served] : context_.models()) {
        if (served->batcher) take(*served);
      }
    } else {
      for (const auto& name : wanted) take(context_.model_for(name));
    }
    if (models.florence == nullptr && models.detector == nullptr) {
      throw Error(ErrorCode::kModelUnavailable, "/think needs a ready YOLO or Florence-2 model");
    }

    ImageLoadOptions load;
    load.max_pixels = static_cast<std::uint64_t>(config_.max_pixels);
    const Image image =
        decode_image(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), load);
    think::ThinkResult result = think::run_think(image, question, models, context_.think_policy(), {}, record);

    audit::Appended appended;
    try {
      appended = audit_log->append(think::think_audit_entry(request.request_id, context_.client_id(), image_sha256,
                                                            question, &result, &record, result.outcome));
    } catch (const Error& error) {
      // Fail closed: no answer leaves without its record. The cause (a file system error, never
      // request text) goes to the server log only.
      log::error("request {}: audit append failed: {}", request.request_id, error.what());
      throw Error(ErrorCode::kAuditUnavailable, "the audit record could not be written; no answer was released");
    }
    nlohmann::json body = std::move(result.final_answer);
    body["outcome"] = result.outcome;
    body["timings"] = std::move(result.timings);
    nlohmann::json names = nlohmann::json::array();
    for (const auto& model : result.models) names.push_back(model.name);
    body["models"] = std::move(names);
    body["audit_id"] = appended.record_hash;
    body["request_id"] = request.request_id;
    response.body = body.dump();
  } catch (const Error& error) {
    // A failed append was already logged; a second attempt would fail the same way.
    if (error.code() != ErrorCode::kAuditUnavailable)
      audit_failure("error:" + std::string(error_code_name(error.code())));
    throw;
  } catch (...) {
    audit_failure("error:internal");
    throw;
  }
}

}  // namespace vlm::server
