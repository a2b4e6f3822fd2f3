#include "vlm/error.h"

namespace vlm {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kNotAnImage: return "not_an_image";
    case ErrorCode::kUnsupportedImage: return "unsupported_image";
    case ErrorCode::kImageCorrupt: return "image_corrupt";
    case ErrorCode::kImageTooLarge: return "image_too_large";
    case ErrorCode::kEmptyInput: return "empty_input";
    case ErrorCode::kBadCheckpoint: return "bad_checkpoint";
    case ErrorCode::kUnsupportedModel: return "unsupported_model";
    case ErrorCode::kIo: return "io_error";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal_error";
  }
  return "internal_error";
}

}  // namespace vlm
