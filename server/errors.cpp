#include "errors.h"

namespace vlm::server {

nlohmann::json error_json(ErrorCode code, const std::string& message, const std::string& request_id) {
  return {{"error", {{"code", std::string(error_code_name(code))}, {"message", message}, {"request_id", request_id}}}};
}

ErrorShape error_shape_for(std::string_view path) {
  return path.starts_with("/v1/") ? ErrorShape::kOpenAi : ErrorShape::kVlm;
}

nlohmann::json openai_error_json(ErrorCode code, const std::string& message, const std::string& param) {
  return {{"error",
           {{"message", message},
            {"type", std::string(openai_error_type(code))},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", std::string(error_code_name(code))}}}};
}

std::string_view openai_error_type(ErrorCode code) {
  const int status = http_status(code);
  if (status == 401) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

ErrorCode library_error_code(int status) {
  switch (status) {
    case 400: return ErrorCode::kBadRequest;
    case 404: return ErrorCode::kNotFound;
    case 405: return ErrorCode::kMethodNotAllowed;
    case 408: return ErrorCode::kRequestTimeout;
    case 413: return ErrorCode::kPayloadTooLarge;
    case 414: return ErrorCode::kUriTooLong;
    case 415: return ErrorCode::kUnsupportedMediaType;
    case 416: return ErrorCode::kRangeNotSatisfiable;
    case 431: return ErrorCode::kHeadersTooLarge;
    case 503: return ErrorCode::kUnavailable;
    default: return status >= 500 ? ErrorCode::kInternal : ErrorCode::kBadRequest;
  }
}

std::string library_error_message(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request (bad request line, a header line over the limit, too many headers, or an "
             "unreadable body)";
    case 404: return "no such route";
    case 405: return "method not allowed on this path (the Allow header lists the methods it takes)";
    case 413: return "request body is over the size limit";
    case 414: return "request target is over the length limit";
    case 415: return "request body encoding is not supported (compressed bodies are refused)";
    default: return "request could not be served";
  }
}

}  // namespace vlm::server
