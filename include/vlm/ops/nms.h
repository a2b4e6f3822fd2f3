#pragma once

#include <ATen/core/Tensor.h>

namespace vlm::ops {

// Greedy non-maximum suppression, same contract as torchvision.ops.nms: boxes [N, 4] (x1, y1, x2, y2),
// scores [N], float32 or float16, on CPU or CUDA. Returns int64 indices of kept boxes, by descending
// score, on the input's device; the CUDA path never copies to the host.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// Greedy NMS for a batch of images at once, without waiting for the device: boxes [B, K, 4] float32,
// each image's candidates already in descending score order, of which the first counts[b] are real
// (counts: int64 [B] on the same device, read there). Returns int64 [B, max_kept]: for each image the
// indices (into K) of the boxes kept, best first, as nms() would keep them, stopping after max_kept;
// the remaining entries are -1.
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& counts, double iou_threshold, int64_t max_kept);

}  // namespace vlm::ops
