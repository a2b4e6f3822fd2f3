#include <ATen/ATen.h>

#include <opencv2/imgproc.hpp>

#include "../letterbox_kernels.h"
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

at::Tensor letterbox_cpu(std::span<const Image> images, std::span<const Letterbox> boxes, int target_width,
                         int target_height) {
  at::Tensor batch = at::empty({static_cast<std::int64_t>(images.size()), target_height, target_width, 3}, at::kByte);
  for (std::size_t i = 0; i < images.size(); ++i) {
    cv::Mat padded = apply_letterbox(images[i].rgb, boxes[i]);
    cv::Mat slot(target_height, target_width, CV_8UC3, batch[static_cast<std::int64_t>(i)].data_ptr<std::uint8_t>());
    padded.copyTo(slot);
  }
  return batch;
}

}  // namespace vlm::ops
