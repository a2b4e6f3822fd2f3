#pragma once

#include <ATen/core/Tensor.h>

// Per-device implementations behind vlm::ops::nms; inputs are checked and sorted by the front file.
namespace vlm::ops {

// boxes_sorted: [N, 4] float32 in descending score order. Returns a bool [N] keep mask.
at::Tensor nms_keep_mask_cpu(const at::Tensor& boxes_sorted, float iou_threshold);
#ifdef VLM_WITH_CUDA
at::Tensor nms_keep_mask_cuda(const at::Tensor& boxes_sorted, float iou_threshold);
#endif

}  // namespace vlm::ops
