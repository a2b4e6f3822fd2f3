#include "vlm/ops/nms.h"

#include <ATen/ATen.h>

#include "nms_kernels.h"
#include "vlm/error.h"

namespace vlm::ops {

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  if (boxes.dim() != 2 || boxes.size(1) != 4) {
    throw Error(ErrorCode::kInvalidArgument, "nms: boxes should be [N, 4], got " + c10::str(boxes.sizes()));
  }
  if (scores.dim() != 1 || scores.size(0) != boxes.size(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                "nms: scores should be [" + std::to_string(boxes.size(0)) + "], got " + c10::str(scores.sizes()));
  }
  if (boxes.device() != scores.device()) {
    throw Error(ErrorCode::kInvalidArgument, "nms: boxes and scores must be on one device");
  }
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  // Stable descending sort, as torchvision, so equal scores keep their input order.
  at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  at::Tensor sorted = boxes.index_select(0, order).to(at::kFloat).contiguous();
  at::Tensor keep;
  if (boxes.is_cuda()) {
#ifdef VLM_WITH_CUDA
    keep = nms_keep_mask_cuda(sorted, static_cast<float>(iou_threshold));
#else
    throw Error(ErrorCode::kUnavailable, "nms: this build has no CUDA kernels");
#endif
  } else {
    keep = nms_keep_mask_cpu(sorted, static_cast<float>(iou_threshold));
  }
  return order.masked_select(keep);
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& counts, double iou_threshold, int64_t max_kept) {
  if (boxes.dim() != 3 || boxes.size(2) != 4) {
    throw Error(ErrorCode::kInvalidArgument, "batched_nms: boxes should be [B, K, 4], got " + c10::str(boxes.sizes()));
  }
  if (counts.dim() != 1 || counts.size(0) != boxes.size(0) || counts.scalar_type() != at::kLong) {
    throw Error(ErrorCode::kInvalidArgument, "batched_nms: counts should be int64 [" + std::to_string(boxes.size(0)) +
                                                 "], got " + c10::str(counts.sizes()));
  }
  if (boxes.device() != counts.device()) {
    throw Error(ErrorCode::kInvalidArgument, "batched_nms: boxes and counts must be on one device");
  }
  if (max_kept < 1) throw Error(ErrorCode::kInvalidArgument, "batched_nms: max_kept must be at least 1");
  at::Tensor sorted = boxes.to(at::kFloat).contiguous();
  if (boxes.is_cuda()) {
#ifdef VLM_WITH_CUDA
    return batched_nms_cuda(sorted, counts.contiguous(), static_cast<float>(iou_threshold), max_kept);
#else
    throw Error(ErrorCode::kUnavailable, "batched_nms: this build has no CUDA kernels");
#endif
  }
  return batched_nms_cpu(sorted, counts.contiguous(), static_cast<float>(iou_threshold), max_kept);
}

}  // namespace vlm::ops
