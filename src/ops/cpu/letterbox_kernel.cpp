#include <opencv2/imgproc.hpp>

#include "vlm/ops/letterbox.h"

namespace vlm::ops {

cv::Mat apply_letterbox(const cv::Mat& rgb, const Letterbox& box) {
  cv::Mat resized = rgb;
  if (rgb.cols != box.resized_width || rgb.rows != box.resized_height) {
    cv::resize(rgb, resized, cv::Size(box.resized_width, box.resized_height), 0, 0, cv::INTER_LINEAR);
  }
  cv::Mat padded;
  cv::copyMakeBorder(resized, padded, box.top, box.bottom, box.left, box.right, cv::BORDER_CONSTANT,
                     cv::Scalar(114, 114, 114));
  return padded;
}

}  // namespace vlm::ops
