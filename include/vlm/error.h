#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vlm {

// Every failure inside vlmserve is a vlm::Error carrying one of these codes. The edges (CLI, HTTP)
// look the code up in one table (error_code_info) for the HTTP status, the public code string and
// the exit status; nothing else decides.
enum class ErrorCode {
  // Inputs, from a flag, a file or a request.
  kInvalidArgument,   // a parameter or flag value is out of range or malformed
  kUnknownParameter,  // a request parameter no route takes
  kNotFound,          // a file, repository or route that does not exist
  kModelNotFound,     // a request names a model the server does not serve
  kNotAnImage,        // bytes that are no image format we know
  kUnsupportedImage,  // a recognised image format we cannot decode
  kImageCorrupt,      // a recognised image that is truncated or damaged
  kImageTooLarge,     // the declared pixel count is over the limit
  kEmptyInput,        // zero bytes
  kUnreadableVideo,   // a video file (CLI input) that cannot be opened or decoded
  // Models and the machine.
  kBadCheckpoint,     // weights or model files that are malformed or do not fit the architecture
  kUnsupportedModel,  // a model file we understand but cannot serve (other task, other head)
  kIo,                // the operating system refused a read or write
  kUnavailable,       // the backend asked for cannot run here (device, kernel, build, network)
  kInternal,          // a bug
  // Malformed HTTP requests.
  kBadRequest,            // the HTTP library could not parse the request
  kBadJson,               // a JSON body that is not valid JSON or not the expected shape
  kBadBase64,             // a base64 image that does not decode
  kMissingImage,          // an image route got no image
  kMissingQuestion,       // /think got no question
  kUnauthorized,          // missing or wrong API key
  kMethodNotAllowed,      // a known path with another method
  kRequestTimeout,        // the client was too slow sending the request
  kPayloadTooLarge,       // a body over --max-body-mb
  kTooManyImages,         // more images than --max-images
  kTooManyPixels,         // images that declare more pixels than --max-request-pixels
  kUriTooLong,            // a request target over the library's limit
  kUnsupportedMediaType,  // a body type or encoding no route takes
  kRangeNotSatisfiable,   // a Range header the library cannot serve
  kHeadersTooLarge,       // headers over the library's limit
  // Outcomes of serving: the request was fine, the server could not take or finish it.
  kClientClosed,        // the client went away before its answer
  kLoading,             // models are still loading
  kDraining,            // the server is shutting down
  kServerFailed,        // loading failed; the server takes no work
  kOverloaded,          // --max-concurrent-requests reached
  kQueueFull,           // the model's batch queue is full
  kTimeout,             // no result within --timeout-s
  kTooManyConnections,  // --max-connections-per-peer reached
  kModelUnavailable,    // no loaded model can run the route
  kAuditUnavailable,    // /think cannot write its audit record
  // Keep the serving outcomes last (is_serving_outcome() is a range check) and kAuditUnavailable
  // the last of all (kErrorCodeCount).
};

// The request was fine and the server could not take or finish it (queue full, timeout, client
// gone): layers that rewrap model errors let these through unchanged.
constexpr bool is_serving_outcome(ErrorCode code) { return code >= ErrorCode::kClientClosed; }

// CLI exit statuses (README "Exit status").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;     // some inputs failed, or a local failure (disk, damaged files)
inline constexpr int kExitUsage = 2;       // fix the command: a bad flag, a file of the wrong kind
inline constexpr int kExitRetryLater = 3;  // the network or the backend was unavailable: worth a retry
inline constexpr int kExitNotFound = 4;    // a file, repository or revision does not exist

// One row of the error table: everything an edge needs to report a code.
struct ErrorCodeInfo {
  ErrorCode code;
  std::string_view name;  // public snake_case code: JSON error bodies, audit outcomes, logs
  int http_status;
  int exit_status;
  // False where the message can carry internal detail (paths, tensor names): HTTP clients get a
  // pointer to the server log instead.
  bool client_message;
  int retry_after_s;  // > 0: HTTP answers carry Retry-After with this many seconds
};

// The table, one row per code in enum order (server/openapi.json documents every row; a unit test
// holds them equal). This header stays C++17: the CUDA kernels include it.
inline constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::kAuditUnavailable) + 1;
const std::array<ErrorCodeInfo, kErrorCodeCount>& error_code_table();
const ErrorCodeInfo& error_code_info(ErrorCode code);
inline std::string_view error_code_name(ErrorCode code) { return error_code_info(code).name; }
inline int http_status(ErrorCode code) { return error_code_info(code).http_status; }
inline int exit_status(ErrorCode code) { return error_code_info(code).exit_status; }

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace vlm
