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

at::Tensor batched_nms_cpu(const at::Tensor& boxes_sorted, const at::Tensor& counts, float iou_threshold,
                           int64_t max_kept) {
  const int64_t batch = boxes_sorted.size(0);
  at::Tensor keep = at::full({batch, max_kept}, -1, at::kLong);
  auto b = boxes_sorted.accessor<float, 3>();
  auto n = counts.accessor<int64_t, 1>();
  auto out = keep.accessor<int64_t, 2>();
  for (int64_t image = 0; image < batch; ++image) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n[image] && kept < max_kept; ++i) {
      const auto c = b[image][i];
      const float area_c = (c[2] - c[0]) * (c[3] - c[1]);
      bool suppressed = false;
      for (int64_t k = 0; k < kept && !suppressed; ++k) {
        const auto p = b[image][out[image][k]];
        // nms_keep_mask_cpu's arithmetic, with the kept box first as there.
        float w = std::max(0.0F, std::min(p[2], c[2]) - std::max(p[0], c[0]));
        float h = std::max(0.0F, std::min(p[3], c[3]) - std::max(p[1], c[1]));
        float inter = w * h;
        float area_p = (p[2] - p[0]) * (p[3] - p[1]);
        suppressed = inter / (area_p + area_c - inter) > iou_threshold;
      }
      if (!suppressed) out[image][kept++] = i;
    }
  }
  return keep;
}

}  // namespace vlm::ops
