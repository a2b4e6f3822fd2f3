#pragma once

#include <ATen/core/Tensor.h>

// Per-device implementations behind vlm::ops::nms; inputs are checked and sorted by the front file.
namespace vlm::ops {

// boxes_sorted: [N, 4] float32 in descending score order. Returns a bool [N] keep mask.
at::Tensor nms_keep_mask_cpu(const at::Tensor& boxes_sorted, float iou_threshold);
// boxes_sorted: [B, K, 4] contiguous float32; counts: int64 [B]. Returns int64 [B, max_kept], -1 padded.
at::Tensor batched_nms_cpu(const at::Tensor& boxes_sorted, const at::Tensor& counts, float iou_threshold,
                           int64_t max_kept);
#ifdef VLM_WITH_CUDA
at::Tensor nms_keep_mask_cuda(const at::Tensor& boxes_sorted, float iou_threshold);
at::Tensor batched_nms_cuda(const at::Tensor& boxes_sorted, const at::Tensor& counts, float iou_threshold,
                            int64_t max_kept);
#endif

}  // namespace vlm::ops
