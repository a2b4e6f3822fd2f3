#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace vlm {

// Every failure inside vlmserve is a vlm::Error carrying one of these codes. The edges (CLI, HTTP)
// map the code to an exit status or an HTTP status and print the message; nothing else decides.
enum class ErrorCode {
  kInvalidArgument,   // a parameter or flag value is out of range or malformed
  kNotFound,          // a file, model or route that does not exist
  kNotAnImage,        // bytes that are no image format we know
  kUnsupportedImage,  // a recognised image format we cannot decode
  kImageCorrupt,      // a recognised image that is truncated or damaged
  kImageTooLarge,     // the declared pixel count is over the limit
  kEmptyInput,        // zero bytes
  kBadCheckpoint,     // weights or model files that are malformed or do not fit the architecture
  kUnsupportedModel,  // a model file we understand but cannot serve (other task, other head)
  kIo,                // the operating system refused a read or write
  kUnavailable,       // the backend asked for cannot run here (device, kernel, build)
  kInternal,          // a bug
};

// Stable snake_case name of a code, used in JSON error bodies and logs ("image_too_large").
std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace vlm
