#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core/mat.hpp>

// The letterbox every YOLO input goes through. Geometry in src/ops/letterbox.cpp, pixels in
// src/ops/cpu/letterbox_kernel.cpp (OpenCV, on the host) and src/ops/cuda/letterbox_kernel.cpp (the
// same arithmetic in tensor ops, for a whole batch on the device); include/vlm/ops/letterbox_batch.h
// makes a model's input from either.
namespace vlm::ops {

// Geometry of an Ultralytics letterbox: scale to fit, then pad with gray to the model's input size.
struct Letterbox {
  int resized_width = 0;
  int resized_height = 0;
  int left = 0;
  int top = 0;
  int right = 0;
  int bottom = 0;
};

// Same arithmetic as ultralytics' LetterBox(auto=False, center=True) and yolov5's letterbox(auto=False),
// including Python's round-half-to-even.
Letterbox compute_letterbox(int width, int height, int target_width, int target_height);

// Resizes (bilinear, as cv2.INTER_LINEAR) and pads with 114 into a target-sized RGB image.
cv::Mat apply_letterbox(const cv::Mat& rgb, const Letterbox& box);

// cv::resize INTER_LINEAR's sampling of 8-bit images along one axis, as OpenCV computes it
// (imgproc/src/resize.cpp): output i reads source[first[i]] and source[second[i]] (both inside the
// image) with weights first_weight[i] and second_weight[i] in 1/2048ths, from the half-pixel centre
// (i + 0.5) * source / target - 0.5 computed in double, then float, the weights rounded half to even.
struct LinearTaps {
  std::vector<std::int32_t> first;
  std::vector<std::int32_t> second;
  std::vector<std::int32_t> first_weight;
  std::vector<std::int32_t> second_weight;
};
inline constexpr int kLinearWeightBits = 11;

// Columns: a centre left of the first pixel or on/right of the last one reads that pixel alone
// (weight 2048, 0), as OpenCV's horizontal pass does.
LinearTaps linear_column_taps(int source_size, int target_size);
// Rows: OpenCV keeps the unclamped fraction and clamps the two row indices instead.
LinearTaps linear_row_taps(int source_size, int target_size);

}  // namespace vlm::ops
