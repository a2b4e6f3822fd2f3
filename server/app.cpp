#include "app.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "request_id.h"
#include "vlm/logging.h"

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

App::App(ServerContext& context) : context_(context), config_(context.config()) {
  routes_ = route_table();
  image_url_policy_.hosts = config_.image_url_hosts;
  image_url_policy_.max_bytes = static_cast<std::size_t>(config_.image_url_max_mb * 1024.0 * 1024.0);
  image_url_policy_.timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(config_.image_url_timeout_s * 1000.0)));
  image_url_policy_.allow_private = config_.image_url_allow_private;
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
    const ErrorShape shape = error_shape_for(request.path);
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      if (error_code_info(e.code()).client_message) {
        const auto* field = dynamic_cast<const FieldError*>(&e);
        return error_response(e.code(), e.what(), request.request_id, shape,
                              field != nullptr ? field->field() : std::string());
      }
      // Internal failures keep their details in the log, not in the response.
      log::error("request {}: {}: {}", request.request_id, error_code_name(e.code()), e.what());
      return error_response(e.code(), "internal error; see the server log for request " + request.request_id,
                            request.request_id, shape);
    } catch (const std::exception& e) {
      log::error("request {}: unexpected exception: {}", request.request_id, log::sanitize(e.what()));
    } catch (...) {
      log::error("request {}: unexpected non-standard exception", request.request_id);
    }
    return error_response(ErrorCode::kInternal, "internal error; see the server log for request " + request.request_id,
                          request.request_id, shape);
  };
  return hooks;
}

HttpResponse App::error_response(ErrorCode code, const std::string& message, const std::string& request_id,
                                 ErrorShape shape, const std::string& field) const {
  const ErrorCodeInfo& info = error_code_info(code);
  HttpResponse response;
  response.status = info.http_status;
  const nlohmann::json body =
      shape == ErrorShape::kOpenAi ? openai_error_json(code, message, field) : error_json(code, message, request_id);
  // Messages quote what the client sent (a task, a parameter value), which need not be UTF-8: the
  // strict default would throw here, inside the exception hook, and terminate the server.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  const ErrorShape shape = error_shape_for(request.path);

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
                            request.request_id, shape);
    }
    std::string allow;
    for (const auto& method : allowed) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse response = error_response(
        ErrorCode::kMethodNotAllowed,
        request.method.substr(0, 16) + " is not allowed on " + request.path + " (allowed: " + allow + ")",
        request.request_id, shape);
    response.headers.emplace_back("Allow", allow);
    return response;
  }

  // Compressed bodies are refused before a byte is read: inflating them is a decompression-bomb risk.
  const std::string encoding = lower(request.header("Content-Encoding"));
  if (!encoding.empty() && encoding != "identity") {
    return error_response(
        ErrorCode::kUnsupportedMediaType,
        "Content-Encoding '" + log::sanitize(encoding.substr(0, 32)) + "' is not accepted; send the body uncompressed",
        request.request_id, shape);
  }
  const std::string transfer = lower(request.header("Transfer-Encoding"));
  if (!transfer.empty() && transfer != "chunked") {
    return error_response(ErrorCode::kUnsupportedMediaType,
                          "Transfer-Encoding '" + log::sanitize(transfer.substr(0, 32)) +
                              "' is not accepted; use chunked or Content-Length",
                          request.request_id, shape);
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
        request.request_id, shape);
  }

  if (route->access == Access::kApiKey && !config_.api_key.empty() && !authorized(request)) {
    HttpResponse response =
        error_response(ErrorCode::kUnauthorized, "missing or wrong API key (send 'Authorization: Bearer <key>')",
                       request.request_id, shape);
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }

  if (route->inference && context_.state() != ServerState::kReady) {
    const ServerState state = context_.state();
    return error_response(state_error_code(state),
                          "the server is " + std::string(server_state_name(state)) + " and takes no inference requests",
                          request.request_id, shape);
  }
  if (route->inference) {
    request.hold = context_.admission().try_admit();
    if (!request.hold) {
      return error_response(ErrorCode::kOverloaded,
                            "the server is at --max-concurrent-requests (" +
                                std::to_string(context_.admission().limit()) + "); retry later",
                            request.request_id, shape);
    }
  }
  return std::nullopt;
}

void App::after(const HttpRequest& request, int status, std::size_t bytes,
                std::vector<std::pair<std::string, std::string>>& headers) {
  const RouteSpec* route = find_route(request.method, request.path);
  const double seconds = elapsed_s(request.start);
  context_.metrics().observe_request(route != nullptr ? route->path : "unmatched",
                                     route != nullptr ? route->method : "other", status, seconds);
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

}  // namespace vlm::server
