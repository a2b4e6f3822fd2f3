#pragma once

#include <ATen/core/Tensor.h>

namespace vlm::ops {

// Greedy non-maximum suppression, same contract as torchvision.ops.nms: boxes [N, 4] (x1, y1, x2, y2),
// scores [N], float32 or float16, on CPU or CUDA. Returns int64 indices of kept boxes, by descending
// score, on the input's device; the CUDA path never copies to the host.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace vlm::ops
