// POST /think: one image and a question; four private steps; the final answer, its evidence, timings
// and the audit_id of the record that proves what ran. Every outcome, errors included, is audited;
// an answer whose record cannot be written is not sent.
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "app.h"
#include "errors.h"
#include "image_input.h"
#include "vlm/image.h"
#include "vlm/think/service.h"

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

// The served models as /think's steps reach them, each through its batcher.
class ServedStepModels final : public think::ModelSource {
 public:
  ServedStepModels(ServerContext& context, const HttpRequest& request, std::chrono::steady_clock::time_point deadline)
      : context_(context), request_(request), deadline_(deadline) {}

  std::vector<think::NamedStepModel> all() override {
    std::vector<think::NamedStepModel> out;
    for (const auto& [name, served] : context_.models()) {
      if (served->batcher) out.push_back(lend(*served));
    }
    return out;
  }
  think::NamedStepModel named(const std::string& name) override { return lend(context_.model_for(name)); }

 private:
  think::NamedStepModel lend(ServedModel& served) {
    steps_.push_back(std::make_unique<BatcherStepModel>(served, request_, deadline_));
    return {served.name, steps_.back().get()};
  }

  ServerContext& context_;
  const HttpRequest& request_;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<std::unique_ptr<BatcherStepModel>> steps_;
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
  ImageLoadOptions load;
  load.max_pixels = static_cast<std::uint64_t>(config_.max_pixels);
  const think::Service service(context_.think_policy(), audit_log, load);

  think::ThinkRequest think_request;
  ImageInput input;
  try {
    input = parse_image_input(request, {1, {"question", "model"}});
    think_request.question = string_param(input.params, "question");
    if (think_request.question.empty())
      throw Error(ErrorCode::kMissingQuestion, "send the question as the 'question' parameter");
    think_request.models = think::split_model_names(string_param(input.params, "model"));
  } catch (const Error& error) {
    service.record_refused(request.request_id, context_.client_id(), error.code());
    throw;
  }
  const std::string& bytes = input.images.front();
  think_request.request_id = request.request_id;
  think_request.client = context_.client_id();
  think_request.image = std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  ServedStepModels models(context_, request, context_.deadline(request.start));
  response.body = service.answer(think_request, models).dump();
}

}  // namespace vlm::server
