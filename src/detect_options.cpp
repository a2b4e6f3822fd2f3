#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "vlm/error.h"
#include "vlm/model.h"

namespace vlm {

void validate(const DetectOptions& options) {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::kInvalidArgument, what); };
  if (options.conf && (!std::isfinite(*options.conf) || *options.conf < 0.0F || *options.conf > 1.0F)) {
    fail("conf must be in [0, 1], got " + std::to_string(*options.conf));
  }
  if (!std::isfinite(options.iou) || options.iou < 0.0F || options.iou > 1.0F) {
    fail("iou must be in [0, 1], got " + std::to_string(options.iou));
  }
  if (options.max_det < 1 || options.max_det > kMaxDetLimit) {
    fail("max_det must be in [1, " + std::to_string(kMaxDetLimit) + "], got " + std::to_string(options.max_det));
  }
  for (int class_id : options.classes) {
    if (class_id < 0 || class_id > kMaxClassId) {
      fail("classes must be class ids in [0, " + std::to_string(kMaxClassId) + "], got " + std::to_string(class_id));
    }
  }
  if (options.num_beams && (*options.num_beams < 1 || *options.num_beams > kMaxNumBeams)) {
    fail("num_beams must be in [1, " + std::to_string(kMaxNumBeams) + "], got " + std::to_string(*options.num_beams));
  }
  if (options.max_new_tokens && *options.max_new_tokens < 1) {
    fail("max_new_tokens must be >= 1, got " + std::to_string(*options.max_new_tokens));
  }
  if (options.no_repeat_ngram_size &&
      (*options.no_repeat_ngram_size < 0 || *options.no_repeat_ngram_size > kMaxNoRepeatNgramSize)) {
    fail("no_repeat_ngram_size must be in [0, " + std::to_string(kMaxNoRepeatNgramSize) + "], got " +
         std::to_string(*options.no_repeat_ngram_size));
  }
  if (options.length_penalty &&
      (!std::isfinite(*options.length_penalty) || std::fabs(*options.length_penalty) > kMaxLengthPenalty)) {
    fail("length_penalty must be in [-100, 100], got " + std::to_string(*options.length_penalty));
  }
}

std::vector<int> warm_up_batch_sizes(int batch_max) {
  std::vector<int> sizes;
  for (int size = 1; size < batch_max; size *= 2) sizes.push_back(size);
  sizes.push_back(std::max(1, batch_max));
  return sizes;
}

void check_class_ids(const DetectOptions& options, const std::vector<std::string>& class_names) {
  if (class_names.empty()) return;
  const auto count = static_cast<int>(class_names.size());
  for (int class_id : options.classes) {
    if (class_id >= count) {
      throw Error(ErrorCode::kInvalidArgument, "classes: id " + std::to_string(class_id) +
                                                   " is out of range; the model has " + std::to_string(count) +
                                                   " classes (0.." + std::to_string(count - 1) + ")");
    }
  }
}

}  // namespace vlm
