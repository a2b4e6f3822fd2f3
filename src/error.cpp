#include "vlm/error.h"

#include <array>

namespace vlm {
namespace {

using enum ErrorCode;

// The exit status follows what the user should do next: fix the command (usage), retry later, or
// look for what is missing; everything else is a failure. HTTP statuses are those server/openapi.json
// documents.
constexpr std::array<ErrorCodeInfo, kErrorCodeCount> kTable = {{
    ErrorCodeInfo{kInvalidArgument, "invalid_argument", 422, kExitUsage, true, 0},
    ErrorCodeInfo{kUnknownParameter, "unknown_parameter", 422, kExitUsage, true, 0},
    ErrorCodeInfo{kNotFound, "not_found", 404, kExitNotFound, true, 0},
    ErrorCodeInfo{kModelNotFound, "model_not_found", 404, kExitUsage, true, 0},
    // Bytes that are no image, or an image format we cannot decode: the media type is the problem.
    ErrorCodeInfo{kNotAnImage, "not_an_image", 415, kExitUsage, true, 0},
    ErrorCodeInfo{kUnsupportedImage, "unsupported_image", 415, kExitUsage, true, 0},
    // A recognised image that is damaged: well-formed request, unprocessable content.
    ErrorCodeInfo{kImageCorrupt, "image_corrupt", 422, kExitUsage, true, 0},
    ErrorCodeInfo{kImageTooLarge, "image_too_large", 413, kExitUsage, true, 0},
    ErrorCodeInfo{kEmptyInput, "empty_input", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kUnreadableVideo, "unreadable_video", 415, kExitUsage, true, 0},
    ErrorCodeInfo{kBadCheckpoint, "bad_checkpoint", 500, kExitFailure, false, 0},
    // The wrong kind of file for this build (a training checkpoint, a GGUF repository): fix the command.
    ErrorCodeInfo{kUnsupportedModel, "unsupported_model", 500, kExitUsage, false, 0},
    ErrorCodeInfo{kIo, "io_error", 500, kExitFailure, false, 0},
    ErrorCodeInfo{kUnavailable, "unavailable", 503, kExitRetryLater, false, 0},
    ErrorCodeInfo{kInternal, "internal_error", 500, kExitFailure, false, 0},
    ErrorCodeInfo{kBadRequest, "bad_request", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kBadJson, "bad_json", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kBadBase64, "bad_base64", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kMissingImage, "missing_image", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kMissingQuestion, "missing_question", 400, kExitUsage, true, 0},
    ErrorCodeInfo{kUnauthorized, "unauthorized", 401, kExitUsage, true, 0},
    ErrorCodeInfo{kMethodNotAllowed, "method_not_allowed", 405, kExitUsage, true, 0},
    ErrorCodeInfo{kRequestTimeout, "request_timeout", 408, kExitRetryLater, true, 0},
    ErrorCodeInfo{kPayloadTooLarge, "payload_too_large", 413, kExitUsage, true, 0},
    ErrorCodeInfo{kTooManyImages, "too_many_images", 413, kExitUsage, true, 0},
    ErrorCodeInfo{kTooManyPixels, "too_many_pixels", 413, kExitUsage, true, 0},
    ErrorCodeInfo{kUriTooLong, "uri_too_long", 414, kExitUsage, true, 0},
    ErrorCodeInfo{kUnsupportedMediaType, "unsupported_media_type", 415, kExitUsage, true, 0},
    ErrorCodeInfo{kRangeNotSatisfiable, "range_not_satisfiable", 416, kExitUsage, true, 0},
    ErrorCodeInfo{kHeadersTooLarge, "headers_too_large", 431, kExitUsage, true, 0},
    // nginx's status for a client that closed the connection: it reaches the access log and the
    // metrics, never the client.
    ErrorCodeInfo{kClientClosed, "client_closed", 499, kExitFailure, true, 0},
    ErrorCodeInfo{kLoading, "loading", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kDraining, "draining", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kServerFailed, "failed", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kOverloaded, "overloaded", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kQueueFull, "queue_full", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kTimeout, "timeout", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kTooManyConnections, "too_many_connections", 503, kExitRetryLater, true, 1},
    ErrorCodeInfo{kModelUnavailable, "model_unavailable", 503, kExitRetryLater, true, 0},
    ErrorCodeInfo{kAuditUnavailable, "audit_unavailable", 503, kExitRetryLater, true, 0},
}};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<std::size_t>(kTable[i].code) != i) return false;
  }
  return true;
}
static_assert(in_enum_order(), "error table rows must follow ErrorCode's order");

}  // namespace

const std::array<ErrorCodeInfo, kErrorCodeCount>& error_code_table() { return kTable; }

const ErrorCodeInfo& error_code_info(ErrorCode code) {
  const auto index = static_cast<std::size_t>(code);
  return index < kTable.size() ? kTable[index] : kTable[static_cast<std::size_t>(kInternal)];
}

}  // namespace vlm
