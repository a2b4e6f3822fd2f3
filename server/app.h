#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admission.h"
#include "batcher.h"
#include "http_server.h"
#include "metrics.h"
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
  std::unique_ptr<Model> model;
  std::unique_ptr<Batcher> batcher;
};

// Who may call a route and how loudly it is logged; the route table (routes.cpp) sets both.
enum class Access { kPublic, kApiKey };

struct RouteSpec {
  std::string method;
  std::string path;
  Access access = Access::kApiKey;
  bool log_at_info = true;  // probes (/health, /ready, /metrics) log at debug
  bool inference = false;   // refused with 503 while loading or draining
  HttpHandler handler;
};

// The application behind the HTTP adapter: models, state, policy (auth, ids, CORS, logs, errors).
class App {
 public:
  explicit App(ServerConfig config);
  ~App();

  // The route table, in routes.cpp.
  std::vector<RouteSpec> route_table();
  std::vector<HttpRoute> http_routes();
  HttpHooks hooks();

  // Loads, warms up and starts batching every model; on failure the state becomes kFailed.
  void load_models();
  // Readiness ends, new inference requests get 503; waits (bounded) for in-flight ones.
  bool drain(std::chrono::steady_clock::duration timeout);
  // Writes the audit log's shutdown checkpoint and closes it (no-op without --audit-dir); for an
  // exit that cannot wait for the destructor.
  void close_audit_log();
  ServerState state() const { return state_.load(); }
  const ServerConfig& config() const { return config_; }

  // Route handlers (routes.cpp names them; each lives in its own handlers_*.cpp file).
  void handle_health(const HttpRequest& request, HttpResponse& response);
  void handle_ready(const HttpRequest& request, HttpResponse& response);
  void handle_models(const HttpRequest& request, HttpResponse& response);
  void handle_metrics(const HttpRequest& request, HttpResponse& response);
  void handle_openapi(const HttpRequest& request, HttpResponse& response);
  void handle_detect(const HttpRequest& request, HttpResponse& response);
  void handle_think(const HttpRequest& request, HttpResponse& response);  // handlers_think.cpp

  // For handlers of image routes: the named (or default) ready model; throws model_not_found.
  ServedModel& model_for(const std::string& name);

 private:
  std::optional<HttpResponse> before(HttpRequest& request);
  void after(const HttpRequest& request, int status, std::size_t bytes,
             std::vector<std::pair<std::string, std::string>>& headers);
  // The one error shape, with the status and Retry-After of the code's row in the error table.
  HttpResponse error_response(ErrorCode code, const std::string& message, const std::string& request_id) const;
  const RouteSpec* find_route(const std::string& method, const std::string& path) const;
  bool authorized(const HttpRequest& request) const;
  void add_cors(const HttpRequest& request, std::vector<std::pair<std::string, std::string>>& headers) const;

  ServerConfig config_;
  Metrics metrics_;
  std::vector<RouteSpec> routes_;
  std::map<std::string, std::unique_ptr<ServedModel>> models_;
  std::string default_model_;
  std::atomic<ServerState> state_{ServerState::kLoading};
  std::atomic<int> active_requests_{0};         // inference requests between parse and response
  Admission admission_;                         // inference requests from headers to written response
  std::unique_ptr<audit::AuditLog> audit_log_;  // null: /think answers 503
  think::Policy think_policy_;
  std::string client_id_;  // audit identity: the API key's id, never the key
  friend class ActiveRequest;
};

}  // namespace vlm::server
