#include "vlm/think/service.h"

#include "vlm/audit/crypto.h"
#include "vlm/logging.h"

namespace vlm::think {
namespace {

// The first Florence-2 and the first YOLO take the steps; other families have none to take.
ThinkModels choose_models(const std::vector<NamedStepModel>& offered) {
  ThinkModels chosen;
  for (const auto& [name, model] : offered) {
    const std::string& family = model->info().family;
    if (family == "florence2" && chosen.florence == nullptr) {
      chosen.florence = model;
      chosen.florence_name = name;
    } else if (family == "yolo" && chosen.detector == nullptr) {
      chosen.detector = model;
      chosen.detector_name = name;
    }
  }
  if (chosen.florence == nullptr && chosen.detector == nullptr) {
    throw Error(ErrorCode::kModelUnavailable, "/think needs a ready YOLO or Florence-2 model");
  }
  return chosen;
}

std::vector<NamedStepModel> offered_models(const ThinkRequest& request, ModelSource& source) {
  if (request.models.empty()) return source.all();
  std::vector<NamedStepModel> offered;
  for (const auto& name : request.models) offered.push_back(source.named(name));
  return offered;
}

}  // namespace

Service::Service(const Policy& policy, audit::AuditLog* audit_log, ImageLoadOptions image_options)
    : policy_(policy), audit_log_(audit_log), image_options_(image_options) {}

nlohmann::json Service::answer(const ThinkRequest& request, ModelSource& source) const {
  const std::string image_sha256 = audit::to_hex(audit::sha256(request.image));
  PrivateRecord record;
  const auto record_failure = [&](const std::string& outcome) {
    if (audit_log_ == nullptr) return;
    try {
      audit_log_->append(think_audit_entry(request.request_id, request.client, image_sha256, request.question, nullptr,
                                           nullptr, outcome));
    } catch (const Error& error) {
      // The request already failed; its error goes out either way.
      log::error("request {}: audit append failed: {}", request.request_id, error.what());
    }
  };

  ThinkResult result;
  try {
    ThinkModels models = choose_models(offered_models(request, source));
    const Image image = decode_image(request.image, image_options_);
    result = run_think(image, request.question, models, policy_, ThinkSettings{}, record);
  } catch (const Error& error) {
    record_failure("error:" + std::string(error_code_name(error.code())));
    throw;
  } catch (...) {
    record_failure("error:internal");
    throw;
  }

  nlohmann::json body = std::move(result.final_answer);
  if (audit_log_ != nullptr) {
    try {
      body["audit_id"] = audit_log_
                             ->append(think_audit_entry(request.request_id, request.client, image_sha256,
                                                        request.question, &result, &record, result.outcome))
                             .record_hash;
    } catch (const Error& error) {
      // Fail closed: no answer leaves without its record. The cause (a file system error, never
      // request text) goes to the log only.
      log::error("request {}: audit append failed: {}", request.request_id, error.what());
      throw Error(ErrorCode::kAuditUnavailable, "the audit record could not be written; no answer was released");
    }
  }
  body["outcome"] = result.outcome;
  body["timings"] = std::move(result.timings);
  nlohmann::json names = nlohmann::json::array();
  for (const auto& model : result.models) names.push_back(model.name);
  body["models"] = std::move(names);
  body["request_id"] = request.request_id;
  return body;
}

void Service::record_refused(const std::string& request_id, const std::string& client, ErrorCode code) const {
  if (audit_log_ == nullptr) return;
  try {
    audit_log_->append(
        think_audit_entry(request_id, client, "", "", nullptr, nullptr, "error:" + std::string(error_code_name(code))));
  } catch (const Error& error) {
    log::error("request {}: audit append failed: {}", request_id, error.what());
  }
}

std::vector<std::string> split_model_names(const std::string& text) {
  std::vector<std::string> names;
  for (std::size_t start = 0; start < text.size();) {
    const auto comma = std::min(text.find(',', start), text.size());
    if (comma > start) names.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}

}  // namespace vlm::think
