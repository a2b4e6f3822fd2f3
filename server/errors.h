#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::server {

// An error that already knows its HTTP status and its public code ("queue_full", "unauthorized").
// Messages are written for the client: they say what was received, never internal paths.
class ApiError : public std::exception {
 public:
  ApiError(int status, std::string code, std::string message,
           std::vector<std::pair<std::string, std::string>> headers = {})
      : status_(status), code_(std::move(code)), message_(std::move(message)), headers_(std::move(headers)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }

 private:
  int status_;
  std::string code_;
  std::string message_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

// The one mapping from vlm::ErrorCode to HTTP status (documented in server/openapi.json).
int http_status(ErrorCode code);

// {"error": {"code", "message", "request_id"}}
nlohmann::json error_json(const std::string& code, const std::string& message, const std::string& request_id);

// Public code for a status the HTTP library produced on its own (header limits, body too large).
std::string library_error_code(int status);
std::string library_error_message(int status);

}  // namespace vlm::server
