#pragma once

#include <string_view>

namespace vlm::server {

// server/openapi.json, compiled in (generated TU; see server/CMakeLists.txt).
std::string_view openapi_document();

}  // namespace vlm::server
