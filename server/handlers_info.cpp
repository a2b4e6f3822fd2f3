// GET /health, /ready, /v1/models, /metrics, /openapi.json.
#include <fmt/format.h>

#include "app.h"
#include "errors.h"
#include "gpu_memory.h"
#include "openapi_document.h"
#include "vlm/model_json.h"

namespace vlm::server {

void App::handle_health(const HttpRequest&, HttpResponse& response) {
  const ServerState state = context_.state();
  response.body = nlohmann::json{{"status", server_state_name(state)}}.dump();
}

void App::handle_ready(const HttpRequest& request, HttpResponse& response) {
  const ServerState state = context_.state();
  if (state == ServerState::kReady && context_.audit_log() != nullptr && !context_.audit_log()->writable()) {
    // A full or read-only disk takes longer to fix than a queue to drain: probes back off longer.
    response = error_response(ErrorCode::kAuditUnavailable,
                              "not ready: the audit log cannot be written, so /think would fail", request.request_id);
    response.headers.emplace_back("Retry-After", "5");
    return;
  }
  if (state == ServerState::kReady) {
    response.body = nlohmann::json{{"status", "ready"}}.dump();
    return;
  }
  throw Error(state_error_code(state), "not ready: the server is " + std::string(server_state_name(state)));
}

void App::handle_models(const HttpRequest&, HttpResponse& response) {
  nlohmann::json data = nlohmann::json::array();
  const ServerState state = context_.state();
  const bool loaded = state == ServerState::kReady || state == ServerState::kDraining;
  for (const auto& spec : config_.models) {
    nlohmann::json entry;
    std::int64_t created = context_.started_unix_s();
    if (loaded && context_.models().contains(spec.name)) {
      const ServedModel& served = *context_.models().at(spec.name);
      entry = to_json(served.model->info());
      entry["status"] = "ready";
      entry["image_decoder"] = image_decoder_name(served.image_decoder->kind());
      created = served.loaded_unix_s;
    } else {
      entry["status"] = server_state_name(state);
    }
    // OpenAI's model object first (its clients read these four), then vlmserve's own fields.
    entry["id"] = spec.name;
    entry["object"] = "model";
    entry["created"] = created;
    entry["owned_by"] = "vlmserve";
    entry["name"] = spec.name;
    entry["default"] = spec.name == context_.default_model();
    entry["batch_max"] = config_.batch_max;
    data.push_back(std::move(entry));
  }
  response.body = nlohmann::json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

void App::handle_metrics(const HttpRequest&, HttpResponse& response) {
  std::string text = context_.metrics().render();
  const ServerState state = context_.state();
  text += "# HELP vlm_server_ready 1 when every model is loaded and the server is not draining.\n";
  text += fmt::format("# TYPE vlm_server_ready gauge\nvlm_server_ready {}\n", state == ServerState::kReady ? 1 : 0);
  text += "# HELP vlm_inference_requests_active Inference requests admitted and not yet answered.\n";
  text += fmt::format("# TYPE vlm_inference_requests_active gauge\nvlm_inference_requests_active {}\n",
                      context_.admission().admitted());
  text +=
      "# HELP vlm_memory_trims_total Times the server gave the memory a burst of requests freed back to the system.\n";
  text += fmt::format("# TYPE vlm_memory_trims_total counter\nvlm_memory_trims_total {}\n",
                      context_.admission().memory_trims());
  if (state == ServerState::kReady || state == ServerState::kDraining) {
    text += "# HELP vlm_queue_depth Requests waiting for a forward pass, by model.\n# TYPE vlm_queue_depth gauge\n";
    for (const auto& [name, served] : context_.models()) {
      text += fmt::format("vlm_queue_depth{{model=\"{}\"}} {}\n", prometheus_label(name), served->batcher->depth());
    }
  }
  if (auto memory = gpu_memory(config_.model_options.device)) {
    text +=
        "# HELP vlm_gpu_memory_used_bytes Device memory in use (all processes).\n# TYPE vlm_gpu_memory_used_bytes "
        "gauge\n";
    text += fmt::format("vlm_gpu_memory_used_bytes{{device=\"{}\"}} {}\n",
                        prometheus_label(config_.model_options.device), memory->used_bytes);
    text += "# HELP vlm_gpu_memory_total_bytes Device memory size.\n# TYPE vlm_gpu_memory_total_bytes gauge\n";
    text += fmt::format("vlm_gpu_memory_total_bytes{{device=\"{}\"}} {}\n",
                        prometheus_label(config_.model_options.device), memory->total_bytes);
  }
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = std::move(text);
}

void App::handle_openapi(const HttpRequest&, HttpResponse& response) {
  response.body = std::string(openapi_document());
}

}  // namespace vlm::server
