#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::server {

// Handlers throw vlm::Error; the status, the public code and Retry-After come from its code's row
// in the error table (include/vlm/error.h). Messages are written for the client: they say what was
// received, never internal paths.

// An error about one field of a request body. OpenAI's error shape names the field (`param`), so
// clients can point at it; elsewhere it is an Error like any other.
class FieldError : public Error {
 public:
  FieldError(ErrorCode code, std::string field, const std::string& message)
      : Error(code, message), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Two shapes of the same errors: routes under /v1/ speak OpenAI's, so that its clients raise their
// own typed exceptions; every other route speaks vlmserve's. Code, status and message are the same.
enum class ErrorShape { kVlm, kOpenAi };
ErrorShape error_shape_for(std::string_view path);

// {"error": {"code", "message", "request_id"}}
nlohmann::json error_json(ErrorCode code, const std::string& message, const std::string& request_id);
// {"error": {"message", "type", "param", "code"}}: OpenAI's shape. `type` is OpenAI's class of the
// status (openai_error_type); `param` is null unless the error is a FieldError.
nlohmann::json openai_error_json(ErrorCode code, const std::string& message, const std::string& param);
// invalid_request_error, authentication_error, not_found_error or server_error, from the code's status.
std::string_view openai_error_type(ErrorCode code);

// The code and message for a status the HTTP library produced on its own (header limits, body too large).
ErrorCode library_error_code(int status);
std::string library_error_message(int status);

}  // namespace vlm::server
