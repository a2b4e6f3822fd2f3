#pragma once

#include <ATen/core/Tensor.h>

#include "vlm/model.h"
#include "vlm/ops/letterbox.h"
#include "yolo_metadata.h"

namespace vlm::yolo {

// The three output layouts a detection export can have.
enum class HeadLayout {
  kAnchorObjectness,  // yolov5: [B, N, 5 + nc] = xywh, objectness, class scores
  kAnchorFree,        // v8 / v11: [B, 4 + nc, N] = xywh, class scores
  kEndToEnd,          // v10 / YOLO26: [B, K, 6] = x1 y1 x2 y2, score, class, already selected
};

// Decides the layout from an output tensor and the class count, or throws kUnsupportedModel.
HeadLayout detect_head_layout(const at::Tensor& output, const YoloMetadata& meta);

// Rows [B, max_det, 6] (x1, y1, x2, y2, score, class) for every image of a raw model output, in
// letterboxed-input pixels, after confidence, class filter, NMS and max_det, as the reference packages
// do it; an image's rows after its last detection have class -1. Stays on the output's device and
// never waits for it, so the caller copies a whole batch's detections to the host once.
at::Tensor select_detections(const at::Tensor& output, HeadLayout layout, const DetectOptions& options);

// How many leading rows of one image's [max_det, 6] result (on the CPU) are detections.
int64_t detection_count(const at::Tensor& rows);

// Maps rows back to the original image and clips, with the exporter's own convention.
void rescale_to_original(at::Tensor& rows, const ops::Letterbox& box, int width, int height, int input_width,
                         int input_height, Exporter exporter);

}  // namespace vlm::yolo
