#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "admission.h"
#include "batcher.h"
#include "metrics.h"
#include "request_image_decoder.h"
#include "server_config.h"
#include "vlm/audit/audit_log.h"
#include "vlm/error.h"
#include "vlm/model.h"
#include "vlm/think/policy.h"

namespace vlm::server {

enum class ServerState { kLoading, kReady, kDraining, kFailed };
std::string_view server_state_name(ServerState state);
// The error a request gets for arriving in this state (loading, draining, failed).
ErrorCode state_error_code(ServerState state);

struct ServedModel {
  std::string name;
  std::int64_t loaded_unix_s = 0;  // when it became ready (GET /v1/models `created`)
  std::unique_ptr<Model> model;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<RequestImageDecoder> image_decoder;  // --image-decoder's choice for this model
  StageHistograms* stages = nullptr;                   // the model's vlm_request_stage_seconds, owned by Metrics
};

// What the routes serve from, with no HTTP in it: the models and their batchers, the server's state,
// the admitted inference requests, metrics, and the /think audit log and policy. The route layer
// (App, app.h) reads it; serve.cpp drives its lifecycle (load, drain, close).
class ServerContext {
 public:
  explicit ServerContext(ServerConfig config);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Loads, warms up and starts batching every model; on failure the state becomes kFailed.
  void load_models();
  // Readiness ends, new inference requests get 503; waits (bounded) for the admitted ones.
  bool drain(std::chrono::steady_clock::duration timeout);
  // Writes the audit log's shutdown checkpoint and closes it (no-op without --audit-dir); for an
  // exit that cannot wait for the destructor.
  void close_audit_log();

  ServerState state() const { return state_.load(); }
  const ServerConfig& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  // Inference requests from accepted headers to written response: the one in-flight count (drain,
  // vlm_inference_requests_active).
  Admission& admission() { return admission_; }
  // Readable once the state is kReady (or kDraining after it): published by load_models.
  const std::map<std::string, std::unique_ptr<ServedModel>>& models() const { return models_; }
  const std::string& default_model() const { return default_model_; }
  std::int64_t started_unix_s() const { return started_unix_s_; }
  // The named (or default) model; throws vlm::Error model_not_found.
  ServedModel& model_for(const std::string& name);
  // When a request that started at `start` must have its answer (--timeout-s).
  std::chrono::steady_clock::time_point deadline(std::chrono::steady_clock::time_point start) const;

  audit::AuditLog* audit_log() { return audit_log_.get(); }  // null without --audit-dir: /think answers 503
  const think::Policy& think_policy() const { return think_policy_; }
  const std::string& client_id() const { return client_id_; }

 private:
  ServerConfig config_;
  Metrics metrics_;
  std::map<std::string, std::unique_ptr<ServedModel>> models_;
  std::string default_model_;
  std::int64_t started_unix_s_ = 0;
  std::atomic<ServerState> state_{ServerState::kLoading};
  Admission admission_;
  std::unique_ptr<audit::AuditLog> audit_log_;
  think::Policy think_policy_;
  std::string client_id_;  // audit identity: the API key's id, never the key
};

}  // namespace vlm::server
