#include "postprocess.h"

#include <ATen/ATen.h>

#include <limits>
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
  at::Tensor xy = xywh.slice(-1, 0, 2);
  at::Tensor half_wh = xywh.slice(-1, 2, 4) / 2;
  return at::cat({xy - half_wh, xy + half_wh}, -1);
}

// valid [B, N] narrowed to the requested classes (class_id [B, N] int64).
at::Tensor keep_classes(const at::Tensor& valid, const at::Tensor& class_id, const std::vector<int>& classes) {
  if (classes.empty()) return valid;
  at::Tensor wanted = at::tensor(std::vector<int64_t>(classes.begin(), classes.end()), at::kLong).to(class_id.device());
  return valid & at::isin(class_id, wanted);
}

// Detections padded to max_det when the head gives fewer rows than that.
at::Tensor pad_rows(const at::Tensor& rows, int64_t max_det) {
  if (rows.size(1) >= max_det) return rows.slice(1, 0, max_det);
  at::Tensor padded = at::zeros({rows.size(0), max_det, rows.size(2)}, rows.options());
  padded.select(2, 5).fill_(-1.0);
  padded.slice(1, 0, rows.size(1)).copy_(rows);
  return padded;
}

// Rows [B, max_det, 6] gathered from rows [B, K, 6] at keep [B, max_det] (-1: none, class set to -1).
at::Tensor gather_rows(const at::Tensor& rows, const at::Tensor& keep) {
  if (rows.size(1) == 0) return pad_rows(rows, keep.size(1));
  at::Tensor index = keep.clamp_min(0).unsqueeze(-1).expand({-1, -1, rows.size(2)});
  at::Tensor picked = rows.gather(1, index);
  picked.select(2, 5).masked_fill_(keep < 0, -1.0);
  return picked;
}

// v10 / YOLO26 heads give their final choice, best first: keep the rows over the threshold and of
// the wanted classes, in order.
at::Tensor select_end_to_end(const at::Tensor& pred, const DetectOptions& options) {
  const float conf = options.conf.value_or(kYoloDefaultConf);
  at::Tensor valid = keep_classes(pred.select(2, 4) > conf, pred.select(2, 5).to(at::kLong), options.classes);
  // A stable sort on "not valid" moves the valid rows to the front without reordering them.
  at::Tensor order = std::get<1>((~valid).to(at::kByte).sort(/*stable=*/true, 1, /*descending=*/false));
  at::Tensor rows = pred.gather(1, order.unsqueeze(-1).expand({-1, -1, pred.size(2)})).clone();
  rows.select(2, 5).masked_fill_(~valid.gather(1, order), -1.0);
  return pad_rows(rows, options.max_det);
}

// Candidate order for NMS: descending score, ties in anchor order (what the reference's compaction
// then stable sort gives), at most kMaxNmsInput per image. Invalid candidates sort last.
at::Tensor candidate_order(const at::Tensor& key, const at::Tensor& counts) {
  int64_t k = std::min(key.size(1), kMaxNmsInput);
  // On the CPU reading the count costs nothing and bounds the sort; on CUDA it would wait for the device.
  if (!key.is_cuda()) k = std::min(k, counts.numel() == 0 ? 0 : counts.max().item<int64_t>());
  if (k == key.size(1)) return std::get<1>(key.sort(/*stable=*/true, 1, /*descending=*/true));
  // topk picks the k best; sorting their indices restores anchor order for the stable sort.
  at::Tensor picked = std::get<0>(std::get<1>(key.topk(k, 1, /*largest=*/true, /*sorted=*/false)).sort(1));
  return picked.gather(1, std::get<1>(key.gather(1, picked).sort(/*stable=*/true, 1, /*descending=*/true)));
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

at::Tensor select_detections(const at::Tensor& output, HeadLayout layout, const DetectOptions& options) {
  at::Tensor pred = output.to(at::kFloat);
  if (layout == HeadLayout::kEndToEnd) return select_end_to_end(pred, options);
  if (layout == HeadLayout::kAnchorFree) pred = pred.transpose(1, 2);  // [B, N, 4 + nc]
  const float conf = options.conf.value_or(kYoloDefaultConf);
  at::Tensor scores;
  at::Tensor valid;
  if (layout == HeadLayout::kAnchorObjectness) {
    scores = pred.slice(2, 5) * pred.slice(2, 4, 5);  // objectness x class probability
    valid = pred.select(2, 4) > conf;
  } else {
    scores = pred.slice(2, 4);
  }
  auto [best, class_id] = scores.max(2);
  valid = valid.defined() ? valid & (best > conf) : best > conf;
  valid = keep_classes(valid, class_id, options.classes);
  at::Tensor counts = valid.sum(1).clamp_max(kMaxNmsInput);

  at::Tensor order = candidate_order(best.masked_fill(~valid, -std::numeric_limits<float>::infinity()), counts);
  at::Tensor rows =
      at::cat({xywh_to_xyxy(pred.slice(2, 0, 4)), best.unsqueeze(-1), class_id.unsqueeze(-1).to(at::kFloat)}, 2);
  rows = rows.gather(1, order.unsqueeze(-1).expand({-1, -1, rows.size(2)}));
  at::Tensor offset = rows.slice(2, 5, 6) * (options.agnostic_nms ? 0.0 : kClassOffset);
  at::Tensor keep = ops::batched_nms(rows.slice(2, 0, 4) + offset, counts, options.iou, options.max_det);
  return gather_rows(rows, keep);
}

int64_t detection_count(const at::Tensor& rows) {
  auto r = rows.accessor<float, 2>();
  int64_t n = 0;
  while (n < rows.size(0) && r[n][5] >= 0) ++n;
  return n;
}

void rescale_to_original(at::Tensor& rows, const ops::Letterbox& box, int width, int height, int input_width,
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
