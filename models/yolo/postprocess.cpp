#include "postprocess.h"

#include <ATen/ATen.h>

#include <string>

#include "vlm/error.h"
#include "vlm/ops/nms.h"

namespace vlm::yolo {
namespace {

// Both reference packages separate classes for one NMS call by offsetting boxes by class x 7680.
constexpr double kClassOffset = 7680.0;
// The reference packages' cap on boxes entering NMS.
constexpr int64_t kMaxNmsInput = 30000;

at::Tensor xywh_to_xyxy(const at::Tensor& xywh) {
  at::Tensor xy = xywh.slice(1, 0, 2);
  at::Tensor half_wh = xywh.slice(1, 2, 4) / 2;
  return at::cat({xy - half_wh, xy + half_wh}, 1);
}

at::Tensor keep_classes(const at::Tensor& rows, const std::vector<int>& classes) {
  if (classes.empty() || rows.size(0) == 0) return rows;
  at::Tensor wanted = at::tensor(std::vector<int64_t>(classes.begin(), classes.end()), rows.options().dtype(at::kLong))
                          .to(rows.dtype());
  return rows.index({(rows.slice(1, 5, 6) == wanted).any(1)});
}

at::Tensor suppress(at::Tensor rows, const DetectOptions& options) {
  if (rows.size(0) == 0) return rows;
  if (rows.size(0) > kMaxNmsInput)
    rows = rows.index({rows.select(1, 4).argsort(/*stable=*/true, 0, true).slice(0, 0, kMaxNmsInput)});
  at::Tensor offsets = rows.slice(1, 5, 6) * (options.agnostic_nms ? 0.0 : kClassOffset);
  at::Tensor keep = ops::nms(rows.slice(1, 0, 4) + offsets, rows.select(1, 4), options.iou);
  return rows.index_select(0, keep.slice(0, 0, options.max_det));
}

}  // namespace

HeadLayout detect_head_layout(const at::Tensor& output, const YoloMetadata& meta) {
  const auto nc = static_cast<int64_t>(meta.names.size());
  std::string got = c10::str(output.sizes());
  if (output.dim() != 3) {
    throw Error(ErrorCode::kUnsupportedModel, "YOLO output should be 3-d, got " + got);
  }
  if (meta.exporter == Exporter::kYolov5) {
    if (output.size(2) == 5 + nc) return HeadLayout::kAnchorObjectness;
    throw Error(ErrorCode::kUnsupportedModel,
                "yolov5 detection output should be [B, N, " + std::to_string(5 + nc) + "], got " + got);
  }
  if (output.size(2) == 6 && (meta.end2end || output.size(1) != 4 + nc)) return HeadLayout::kEndToEnd;
  if (output.size(1) == 4 + nc) return HeadLayout::kAnchorFree;
  throw Error(ErrorCode::kUnsupportedModel, "detection output should be [B, " + std::to_string(4 + nc) +
                                                ", N] or [B, K, 6] for " + std::to_string(nc) + " classes, got " + got);
}

at::Tensor select_detections(const at::Tensor& output, int64_t index, HeadLayout layout, const DetectOptions& options) {
  at::Tensor pred = output.select(0, index).to(at::kFloat);
  if (layout == HeadLayout::kEndToEnd) {
    at::Tensor rows = pred.index({pred.select(1, 4) > options.conf});
    return keep_classes(rows, options.classes).slice(0, 0, options.max_det);
  }
  at::Tensor boxes;
  at::Tensor scores;
  if (layout == HeadLayout::kAnchorObjectness) {
    pred = pred.index({pred.select(1, 4) > options.conf});
    scores = pred.slice(1, 5) * pred.slice(1, 4, 5);  // objectness x class probability
    boxes = pred.slice(1, 0, 4);
  } else {
    pred = pred.t();
    scores = pred.slice(1, 4);
    pred = pred.index({scores.amax(1) > options.conf});
    scores = pred.slice(1, 4);
    boxes = pred.slice(1, 0, 4);
  }
  auto [best, class_id] = scores.max(1, /*keepdim=*/true);
  at::Tensor rows = at::cat({xywh_to_xyxy(boxes), best, class_id.to(at::kFloat)}, 1);
  rows = rows.index({best.view(-1) > options.conf});
  return suppress(keep_classes(rows, options.classes), options);
}

void rescale_to_original(at::Tensor& rows, const Letterbox& box, int width, int height, int input_width,
                         int input_height, Exporter exporter) {
  if (rows.size(0) == 0) return;
  double gain_x = 0.0;
  double gain_y = 0.0;
  double pad_x = 0.0;
  double pad_y = 0.0;
  if (exporter == Exporter::kYolov5) {
    // yolov5's scale_boxes: one gain, fractional padding.
    gain_x = gain_y = std::min(static_cast<double>(input_height) / height, static_cast<double>(input_width) / width);
    pad_x = (input_width - width * gain_x) / 2;
    pad_y = (input_height - height * gain_y) / 2;
  } else {
    // ultralytics' scale_boxes: per-axis gain from the rounded resize, integer padding as applied.
    gain_x = static_cast<double>(box.resized_width) / width;
    gain_y = static_cast<double>(box.resized_height) / height;
    pad_x = box.left;
    pad_y = box.top;
  }
  at::Tensor x = rows.slice(1, 0, 4).slice(1, 0, 4, 2);
  at::Tensor y = rows.slice(1, 1, 4, 2);
  x.sub_(pad_x).div_(gain_x).clamp_(0, width);
  y.sub_(pad_y).div_(gain_y).clamp_(0, height);
}

}  // namespace vlm::yolo
