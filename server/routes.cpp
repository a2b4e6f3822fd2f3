// Every route the server answers, in one table. A new endpoint is one line here plus its handler.
#include "app.h"
#include "web_assets.h"

namespace vlm::server {

std::vector<RouteSpec> App::route_table() {
  auto bind = [this](void (App::*method)(const HttpRequest&, HttpResponse&)) -> HttpHandler {
    return [this, method](const HttpRequest& request, HttpResponse& response) { (this->*method)(request, response); };
  };
  //       method  path             access            info log  inference  handler
  std::vector<RouteSpec> routes = {
      {"GET", "/health", Access::kPublic, false, false, bind(&App::handle_health)},
      {"GET", "/ready", Access::kPublic, false, false, bind(&App::handle_ready)},
      {"GET", "/metrics", Access::kApiKey, false, false, bind(&App::handle_metrics)},
      {"GET", "/v1/models", Access::kApiKey, true, false, bind(&App::handle_models)},
      {"GET", "/openapi.json", Access::kApiKey, true, false, bind(&App::handle_openapi)},
      {"POST", "/detect", Access::kApiKey, true, true, bind(&App::handle_detect)},
      {"POST", "/think", Access::kApiKey, true, true, bind(&App::handle_think)},
      {"POST", "/v1/chat/completions", Access::kApiKey, true, true, bind(&App::handle_chat_completions)},
  };
  // The results page (GET /, its stylesheet and script): public, since a browser cannot send the API
  // key when it loads a page; the page asks for the key and sends it with its own API calls.
  for (const WebAsset& asset : web_assets()) {
    routes.push_back({"GET", std::string(asset.path), Access::kPublic, false, false,
                      [this, &asset](const HttpRequest& request, HttpResponse& response) {
                        handle_web_asset(asset, request, response);
                      }});
  }
  return routes;
}

}  // namespace vlm::server
