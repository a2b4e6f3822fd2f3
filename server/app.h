#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "http_server.h"
#include "image_url.h"
#include "server_context.h"
#include "web_assets.h"

namespace vlm::server {

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

// The route layer between the HTTP adapter (http_server.h) and the ServerContext: the route table,
// the policy around every route (request ids, CORS, API key, refusals from headers alone, access
// log, metrics, exceptions to the one error shape) and the handlers.
class App {
 public:
  explicit App(ServerContext& context);

  // The route table, in routes.cpp.
  std::vector<RouteSpec> route_table();
  std::vector<HttpRoute> http_routes();
  HttpHooks hooks();

  // Route handlers (routes.cpp names them; each lives in its own handlers_*.cpp file).
  void handle_health(const HttpRequest& request, HttpResponse& response);
  void handle_ready(const HttpRequest& request, HttpResponse& response);
  void handle_models(const HttpRequest& request, HttpResponse& response);
  void handle_metrics(const HttpRequest& request, HttpResponse& response);
  void handle_openapi(const HttpRequest& request, HttpResponse& response);
  void handle_detect(const HttpRequest& request, HttpResponse& response);
  void handle_think(const HttpRequest& request, HttpResponse& response);             // handlers_think.cpp
  void handle_chat_completions(const HttpRequest& request, HttpResponse& response);  // handlers_chat.cpp
  void handle_web_asset(const WebAsset& asset, const HttpRequest& request, HttpResponse& response);  // handlers_web.cpp

 private:
  std::optional<HttpResponse> before(HttpRequest& request);
  void after(const HttpRequest& request, int status, std::size_t bytes,
             std::vector<std::pair<std::string, std::string>>& headers);
  // The error in the route's shape (errors.h), with the status and Retry-After of the code's row in
  // the error table; `field` names the request field at fault (OpenAI's `param`).
  HttpResponse error_response(ErrorCode code, const std::string& message, const std::string& request_id,
                              ErrorShape shape = ErrorShape::kVlm, const std::string& field = {}) const;
  const RouteSpec* find_route(const std::string& method, const std::string& path) const;
  bool authorized(const HttpRequest& request) const;
  void add_cors(const HttpRequest& request, std::vector<std::pair<std::string, std::string>>& headers) const;

  ServerContext& context_;
  const ServerConfig& config_;
  std::vector<RouteSpec> routes_;
  ImageUrlPolicy image_url_policy_;  // from --image-url-*, for chat requests' image URLs
};

}  // namespace vlm::server
