// Every route the server answers, in one table. A new endpoint is one line here plus its handler.
#include "app.h"

namespace vlm::server {

std::vector<RouteSpec> App::route_table() {
  auto bind = [this](void (App::*method)(const HttpRequest&, HttpResponse&)) -> HttpHandler {
    return [this, method](const HttpRequest& request, HttpResponse& response) { (this->*method)(request, response); };
  };
  //       method  path             access            info log  inference  handler
  return {
      {"GET", "/health", Access::kPublic, false, false, bind(&App::handle_health)},
      {"GET", "/ready", Access::kPublic, false, false, bind(&App::handle_ready)},
      {"GET", "/metrics", Access::kApiKey, false, false, bind(&App::handle_metrics)},
      {"GET", "/v1/models", Access::kApiKey, true, false, bind(&App::handle_models)},
      {"GET", "/openapi.json", Access::kApiKey, true, false, bind(&App::handle_openapi)},
      {"POST", "/detect", Access::kApiKey, true, true, bind(&App::handle_detect)},
      {"POST", "/think", Access::kApiKey, true, true, bind(&App::handle_think)},
      {"POST", "/v1/chat/completions", Access::kApiKey, true, true, bind(&App::handle_chat_completions)},
  };
}

}  // namespace vlm::server
