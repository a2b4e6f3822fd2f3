// GET / and the files of the results page (server/web, compiled in).
#include "app.h"

namespace vlm::server {

void App::handle_web_asset(const WebAsset& asset, const HttpRequest&, HttpResponse& response) {
  response.content_type = std::string(asset.content_type);
  response.body = std::string(asset.body);
  response.headers = {
      {"Content-Security-Policy", std::string(kWebContentSecurityPolicy)},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      // Revalidated on every load, so a page cached from an older server is never paired with a newer API.
      {"Cache-Control", "no-cache"},
  };
}

}  // namespace vlm::server
