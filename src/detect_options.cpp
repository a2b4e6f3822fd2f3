#include <cmath>
#include <string>

#include "vlm/error.h"
#include "vlm/model.h"

namespace vlm {

void validate(const DetectOptions& options) {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); };
  if (!std::isfinite(options.conf) || options.conf < 0.0F || options.conf > 1.0F) {
    fail("conf must be in [0, 1], got " + std::to_string(options.conf));
  }
  if (!std::isfinite(options.iou) || options.iou < 0.0F || options.iou > 1.0F) {
    fail("iou must be in [0, 1], got " + std::to_string(options.iou));
  }
  if (options.max_det < 1 || options.max_det > 10000) {
    fail("max_det must be in [1, 10000], got " + std::to_string(options.max_det));
  }
  for (int class_id : options.classes) {
    if (class_id < 0) fail("classes must be non-negative class ids, got " + std::to_string(class_id));
  }
}

}  // namespace vlm
