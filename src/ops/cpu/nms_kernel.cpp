#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "../nms_kernels.h"

namespace vlm::ops {

at::Tensor nms_keep_mask_cpu(const at::Tensor& boxes_sorted, float iou_threshold) {
  const int64_t n = boxes_sorted.size(0);
  auto b = boxes_sorted.accessor<float, 2>();
  std::vector<float> area(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) area[i] = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]);
  at::Tensor keep = at::zeros({n}, at::kBool);
  bool* kept = keep.data_ptr<bool>();
  std::vector<char> suppressed(static_cast<std::size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    kept[i] = true;
    for (int64_t j = i + 1; j < n; ++j) {
      if (suppressed[j]) continue;
      // Same arithmetic, order and strict comparison as torchvision's kernel, so ties resolve alike.
      float w = std::max(0.0F, std::min(b[i][2], b[j][2]) - std::max(b[i][0], b[j][0]));
      float h = std::max(0.0F, std::min(b[i][3], b[j][3]) - std::max(b[i][1], b[j][1]));
      float inter = w * h;
      float iou = inter / (area[i] + area[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

}  // namespace vlm::ops
