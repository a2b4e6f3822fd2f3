#pragma once

#include <span>
#include <string_view>

namespace vlm::server {

// One file of the results page (server/web), compiled in by CMake (web_assets.cpp.in).
struct WebAsset {
  std::string_view path;  // the route that serves it
  std::string_view content_type;
  std::string_view body;
};

std::span<const WebAsset> web_assets();

// The headers every page file is sent with: the page's own scripts and styles only, nothing inline,
// no other origin, and requests to this server alone.
inline constexpr std::string_view kWebContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

}  // namespace vlm::server
