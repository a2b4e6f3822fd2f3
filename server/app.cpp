#include "app.h"

#include <algorithm>
#include <thread>

#include <opencv2/core.hpp>

#include "errors.h"
#include "gpu_memory.h"
#include "request_id.h"
#include "vlm/audit/crypto.h"
#include "vlm/logging.h"
#include "vlm/think/pipeline.h"

namespace vlm::server {
namespace {

double elapsed_s(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

std::string_view server_state_name(ServerState state) {
  switch (state) {
    case ServerState::kLoading: return "loading";
    case ServerState::kReady: return "ready";
    case ServerState::kDraining: return "draining";
    case ServerState::kFailed: return "failed";
  }
  return "failed";
}

ErrorCode state_error_code(ServerState state) {
  switch (state) {
    case ServerState::kLoading: return ErrorCode::kLoading;
    case ServerState::kDraining: return ErrorCode::kDraining;
    case ServerState::kReady:  // a ready server refuses nothing for its state; reaching here is a bug
    case ServerState::kFailed: return ErrorCode::kServerFailed;
  }
  return ErrorCode::kServerFailed;
}

App::App(ServerConfig config) : config_(std::move(config)), admission_(config_.max_concurrent_requests) {
  validate(config_);
  routes_ = route_table();
  default_model_ = config_.default_model.empty() ? config_.models.front().name : config_.default_model;
  if (config_.audit) {
    if (!think::protect_process_memory())
      log::warn("could not disable core dumps: a crash could write /think transcripts to disk");
    think_policy_ = config_.think_policy.empty() ? think::Policy::builtin() : think::Policy::load(config_.think_policy);
    audit_log_ = std::make_unique<audit::AuditLog>(*config_.audit);
    // Keyed, so the id in the log cannot be used to test guesses of the API key.
    client_id_ = config_.api_key.empty() ? "anonymous"
                                         : "key-" + audit_log_->text_hmac("api_key_id", config_.api_key).substr(0, 16);
    const auto& recovery = audit_log_->recovery();
    if (recovery.dropped_bytes > 0) {
      log::warn("audit log: dropped a torn last line of {} bytes (sha256 {}) left by a crash; chain resumed at seq {}",
                recovery.dropped_bytes, recovery.dropped_sha256, recovery.resumed_seq);
    }
    log::info("audit log in {} ({}), checkpoints signed by {}", config_.audit->directory.string(),
              recovery.new_log ? "new chain" : "resumed from " + recovery.resumed_file,
              audit::to_hex(audit_log_->public_key()));
  }
}

App::~App() {
  for (auto& [name, served] : models_) {
    if (served->batcher) served->batcher->stop();
  }
}

std::vector<HttpRoute> App::http_routes() {
  std::vector<HttpRoute> routes;
  for (const auto& route : routes_) routes.push_back({route.method, route.path, route.handler});
  return routes;
}

HttpHooks App::hooks() {
  HttpHooks hooks;
  hooks.before = [this](HttpRequest& request) { return before(request); };
  hooks.after = [this](const HttpRequest& request, int status, std::size_t bytes,
                       std::vector<std::pair<std::string, std::string>>& headers) {
    after(request, status, bytes, headers);
  };
  hooks.library_error = [this](int status, const std::string& request_id) {
    const std::string id = request_id.empty() ? generate_request_id() : request_id;
    HttpResponse response = error_response(library_error_code(status), library_error_message(status), id);
    response.status = status;  // the library's own status, whichever code names it
    response.headers.emplace_back("X-Request-Id", id);
    return response;
  };
  hooks.too_many_connections = [this](const std::string& peer) {
    const std::string id = generate_request_id();
    log::warn("refused a connection from {}: it has --max-connections-per-peer ({}) open", peer,
              config_.max_connections_per_peer);
    HttpResponse response =
        error_response(ErrorCode::kTooManyConnections,
                       "this address already has --max-connections-per-peer (" +
                           std::to_string(config_.max_connections_per_peer) + ") connections open; retry later",
                       id);
    response.headers.emplace_back("X-Request-Id", id);
    return response;
  };
  hooks.exception = [this](const HttpRequest& request, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      if (error_code_info(e.code()).client_message) return error_response(e.code(), e.what(), request.request_id);
      // Internal failures keep their details in the log, not in the response.
      log::error("request {}: {}: {}", request.request_id, error_code_name(e.code()), e.what());
      return error_response(e.code(), "internal error; see the server log for request " + request.request_id,
                            request.request_id);
    } catch (const std::exception& e) {
      log::error("request {}: unexpected exception: {}", request.request_id, log::sanitize(e.what()));
    } catch (...) {
      log::error("request {}: unexpected non-standard exception", request.request_id);
    }
    return error_response(ErrorCode::kInternal, "internal error; see the server log for request " + request.request_id,
                          request.request_id);
  };
  return hooks;
}

HttpResponse App::error_response(ErrorCode code, const std::string& message, const std::string& request_id) const {
  const ErrorCodeInfo& info = error_code_info(code);
  HttpResponse response;
  response.status = info.http_status;
  // Messages quote what the client sent (a task, a parameter value), which need not be UTF-8: the
  // strict default would throw here, inside the exception hook, and terminate the server.
  response.body = error_json(code, message, request_id).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (info.retry_after_s > 0) response.headers.emplace_back("Retry-After", std::to_string(info.retry_after_s));
  return response;
}

const RouteSpec* App::find_route(const std::string& method, const std::string& path) const {
  for (const auto& route : routes_) {
    if (route.path == path && (route.method == method || (method == "HEAD" && route.method == "GET"))) return &route;
  }
  return nullptr;
}

bool App::authorized(const HttpRequest& request) const {
  const std::string header = request.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || lower(header.substr(0, kBearer.size())) != "bearer ") return false;
  return constant_time_equal(std::string_view(header).substr(kBearer.size()), config_.api_key);
}

void App::add_cors(const HttpRequest& request, std::vector<std::pair<std::string, std::string>>& headers) const {
  const std::string origin = request.header("Origin");
  if (origin.empty() || config_.cors_origins.empty()) return;
  const bool any =
      std::find(config_.cors_origins.begin(), config_.cors_origins.end(), "*") != config_.cors_origins.end();
  if (!any &&
      std::find(config_.cors_origins.begin(), config_.cors_origins.end(), origin) == config_.cors_origins.end()) {
    return;
  }
  headers.emplace_back("Access-Control-Allow-Origin", any ? "*" : origin);
  if (!any) headers.emplace_back("Vary", "Origin");
  headers.emplace_back("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
}

std::optional<HttpResponse> App::before(HttpRequest& request) {
  const std::string client_id = request.header("X-Request-Id");
  request.request_id = acceptable_request_id(client_id) ? client_id : generate_request_id();

  // CORS preflight: answered for allowed origins without auth (browsers send no credentials).
  if (request.method == "OPTIONS" && request.has_header("Origin") && !config_.cors_origins.empty()) {
    HttpResponse response;
    response.status = 204;
    response.content_type.clear();
    response.headers = {{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                        {"Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id"},
                        {"Access-Control-Max-Age", "600"}};
    return response;
  }

  const RouteSpec* route = find_route(request.method, request.path);
  if (route == nullptr) {
    std::vector<std::string> allowed;
    for (const auto& r : routes_) {
      if (r.path == request.path) allowed.push_back(r.method);
    }
    if (allowed.empty()) {
      return error_response(ErrorCode::kNotFound, "no route " + log::sanitize(request.path.substr(0, 200)),
                            request.request_id);
    }
    std::string allow;
    for (const auto& method : allowed) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse response = error_response(
        ErrorCode::kMethodNotAllowed,
        request.method.substr(0, 16) + " is not allowed on " + request.path + " (allowed: " + allow + ")",
        request.request_id);
    response.headers.emplace_back("Allow", allow);
    return response;
  }

  // Compressed bodies are refused before a byte is read: inflating them is a decompression-bomb risk.
  const std::string encoding = lower(request.header("Content-Encoding"));
  if (!encoding.empty() && encoding != "identity") {
    return error_response(
        ErrorCode::kUnsupportedMediaType,
        "Content-Encoding '" + log::sanitize(encoding.substr(0, 32)) + "' is not accepted; send the body uncompressed",
        request.request_id);
  }
  const std::string transfer = lower(request.header("Transfer-Encoding"));
  if (!transfer.empty() && transfer != "chunked") {
    return error_response(ErrorCode::kUnsupportedMediaType,
                          "Transfer-Encoding '" + log::sanitize(transfer.substr(0, 32)) +
                              "' is not accepted; use chunked or Content-Length",
                          request.request_id);
  }

  // The HTTP library only notices an over-limit Content-Length after reading up to the limit;
  // refusing here answers at once and never reads the body.
  const std::string length = request.header("Content-Length");
  const auto max_body = static_cast<unsigned long long>(config_.max_body_mb * 1024.0 * 1024.0);
  if (!length.empty() && length.size() <= 19 && std::all_of(length.begin(), length.end(), ::isdigit) &&
      std::stoull(length) > max_body) {
    return error_response(
        ErrorCode::kPayloadTooLarge,
        "request body of " + length + " bytes is over the limit of " + std::to_string(max_body) + " bytes",
        request.request_id);
  }

  if (route->access == Access::kApiKey && !config_.api_key.empty() && !authorized(request)) {
    HttpResponse response = error_response(
        ErrorCode::kUnauthorized, "missing or wrong API key (send 'Authorization: Bearer <key>')", request.request_id);
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }

  if (route->inference && state_.load() != ServerState::kReady) {
    const ServerState state = state_.load();
    return error_response(state_error_code(state),
                          "the server is " + std::string(server_state_name(state)) + " and takes no inference requests",
                          request.request_id);
  }
  if (route->inference) {
    request.hold = admission_.try_admit();
    if (!request.hold) {
      return error_response(
          ErrorCode::kOverloaded,
          "the server is at --max-concurrent-requests (" + std::to_string(admission_.limit()) + "); retry later",
          request.request_id);
    }
  }
  return std::nullopt;
}

void App::after(const HttpRequest& request, int status, std::size_t bytes,
                std::vector<std::pair<std::string, std::string>>& headers) {
  const RouteSpec* route = find_route(request.method, request.path);
  const double seconds = elapsed_s(request.start);
  metrics_.observe_request(route != nullptr ? route->path : "unmatched", route != nullptr ? route->method : "other",
                           status, seconds);
  add_cors(request, headers);
  const bool loud = route == nullptr || route->log_at_info || status >= 400;
  const log::Level level = loud ? log::Level::kInfo : log::Level::kDebug;
  if (log::enabled(level)) {
    // Client-controlled fields go through sanitize() so they cannot forge log lines.
    log::write(level, fmt::format("{} {} {} {}B {:.1f}ms id={} peer={}", log::sanitize(request.method.substr(0, 16)),
                                  log::sanitize(request.path.substr(0, 256)), status, bytes, seconds * 1e3,
                                  request.request_id.empty() ? "-" : request.request_id, request.remote_addr));
  }
}

void App::load_models() {
  try {
    // Built aside and published before the state turns ready: handlers read models_ only then.
    std::map<std::string, std::unique_ptr<ServedModel>> loaded;
    for (const auto& spec : config_.models) {
      const auto start = std::chrono::steady_clock::now();
      const std::string path = config_.resolve_model_path ? config_.resolve_model_path(spec.path) : spec.path;
      log::info("loading model '{}' from {}", spec.name, path);
      auto served = std::make_unique<ServedModel>();
      served->name = spec.name;
      served->model = load_model(path, config_.model_options);
      // The server's own --classes, --task, ... fail here, naming what the model takes, rather than
      // in every request.
      served->model->check_options(config_.default_options);
      // Warm-up runs pay for lazy initialisation (allocator growth, per-shape kernel setup) before
      // /ready says yes: the whole path once, and a forward pass at each batch size the batcher
      // forms, so neither the first request nor the first batch of a new size stalls.
      const int side = std::max(32, served->model->info().image_size);
      std::vector<Image> warm(1);
      warm[0].rgb = cv::Mat(side, side, CV_8UC3, cv::Scalar(114, 114, 114));
      for (int i = 0; i < config_.warmup_runs; ++i) {
        served->model->run(warm, DetectOptions{});
        served->model->warm_up(config_.batch_max);
      }
      BatcherOptions batching;
      batching.batch_max = config_.batch_max;
      batching.batch_wait_ms = config_.batch_wait_ms;
      batching.queue_capacity = config_.queue;
      served->batcher = std::make_unique<Batcher>(spec.name, *served->model, batching, metrics_);
      const double seconds = elapsed_s(start);
      metrics_.set_model_load_seconds(spec.name, seconds);
      log::info("model '{}' ready: {} on {} ({:.0f} ms with warm-up)", spec.name, served->model->info().family,
                served->model->info().device, seconds * 1e3);
      loaded.emplace(spec.name, std::move(served));
    }
    models_ = std::move(loaded);
    ServerState expected = ServerState::kLoading;
    state_.compare_exchange_strong(expected, ServerState::kReady);
  } catch (const std::exception& e) {
    log::error("loading models failed: {}", e.what());
    state_ = ServerState::kFailed;
    throw;
  }
}

bool App::drain(std::chrono::steady_clock::duration timeout) {
  state_ = ServerState::kDraining;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Admitted covers a request from its headers to its written response (a body still uploading
  // included); active, one inside its handler.
  while (admission_.admitted() > 0 || active_requests_.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log::warn("drain timed out with {} requests still running",
                std::max(admission_.admitted(), active_requests_.load()));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void App::close_audit_log() {
  if (!audit_log_) return;
  try {
    audit_log_->close();
  } catch (const Error& e) {
    log::error("audit log: closing failed: {}", e.what());
  }
}

ServedModel& App::model_for(const std::string& name) {
  const std::string& wanted = name.empty() ? default_model_ : name;
  auto it = models_.find(wanted);
  if (it == models_.end()) {
    std::string known;
    for (const auto& spec : config_.models) known += (known.empty() ? "" : ", ") + spec.name;
    throw Error(ErrorCode::kModelNotFound,
                "no model named '" + log::sanitize(wanted.substr(0, 64)) + "' (loaded: " + known + ")");
  }
  return *it->second;
}

}  // namespace vlm::server
