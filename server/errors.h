#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::server {

// Handlers throw vlm::Error; the status, the public code and Retry-After come from its code's row
// in the error table (include/vlm/error.h). Messages are written for the client: they say what was
// received, never internal paths.

// {"error": {"code", "message", "request_id"}}
nlohmann::json error_json(ErrorCode code, const std::string& message, const std::string& request_id);

// The code and message for a status the HTTP library produced on its own (header limits, body too large).
ErrorCode library_error_code(int status);
std::string library_error_message(int status);

}  // namespace vlm::server
