#pragma once

#include <opencv2/core/mat.hpp>

// The letterbox every YOLO input goes through. Geometry in src/ops/letterbox.cpp, pixels in
// src/ops/cpu/letterbox_kernel.cpp (OpenCV, on the host).
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

}  // namespace vlm::ops
