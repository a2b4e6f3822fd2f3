#include "errors.h"

namespace vlm::server {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 422;
    case ErrorCode::kNotFound: return 404;
    // Bytes that are no image, or an image format we cannot decode: the media type is the problem.
    case ErrorCode::kNotAnImage: return 415;
    case ErrorCode::kUnsupportedImage: return 415;
    // A recognised image that is damaged: well-formed request, unprocessable content.
    case ErrorCode::kImageCorrupt: return 422;
    case ErrorCode::kImageTooLarge: return 413;
    case ErrorCode::kEmptyInput: return 400;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kBadCheckpoint:
    case ErrorCode::kUnsupportedModel:
    case ErrorCode::kIo:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

nlohmann::json error_json(const std::string& code, const std::string& message, const std::string& request_id) {
  return {{"error", {{"code", code}, {"message", message}, {"request_id", request_id}}}};
}

std::string library_error_code(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_media_type";
    case 416: return "range_not_satisfiable";
    case 431: return "headers_too_large";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal_error" : "bad_request";
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
