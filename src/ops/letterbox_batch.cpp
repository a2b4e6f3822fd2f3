#include "vlm/ops/letterbox_batch.h"

#include <ATen/ATen.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <string>

#include "letterbox_kernels.h"
#include "vlm/error.h"
#include "vlm/logging.h"

namespace vlm::ops {

LetterboxBatch::LetterboxBatch(int target_width, int target_height, c10::Device device, c10::ScalarType dtype)
    : target_width_(target_width), target_height_(target_height), device_(device), dtype_(dtype) {
  if (target_width <= 0 || target_height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "letterbox target size must be positive, got " +
                                                 std::to_string(target_width) + "x" + std::to_string(target_height));
  }
}

at::Tensor LetterboxBatch::make_input(std::span<const Image> images, std::vector<Letterbox>& boxes) {
  boxes.clear();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const cv::Mat& rgb = images[i].rgb;
    if (rgb.empty() || rgb.type() != CV_8UC3) {
      throw Error(ErrorCode::kInvalidArgument,
                  "letterbox: image " + std::to_string(i) + " is not an 8-bit 3-channel image (got " +
                      std::to_string(rgb.cols) + "x" + std::to_string(rgb.rows) + ", " +
                      std::to_string(rgb.channels()) + " channels, depth " + std::to_string(rgb.depth()) + ")");
    }
    boxes.push_back(compute_letterbox(rgb.cols, rgb.rows, target_width_, target_height_));
  }
  at::Tensor batch;
  if (device_.is_cuda()) {
    const PackedLayout layout = packed_layout(images, target_width_, target_height_);
    std::uint8_t* buffer = staging(layout.total_bytes);
    pack_images(images, boxes, layout, buffer);
    const at::Tensor packed = staging_.narrow(0, 0, layout.total_bytes).to(device_, /*non_blocking=*/true);
    if (!upload_done_) upload_done_.emplace(device_.type());
    upload_done_->record(c10::impl::VirtualGuardImpl(device_.type()).getStream(device_));
    batch = letterbox_packed(packed, layout);
  } else {
    batch = letterbox_cpu(images, boxes, target_width_, target_height_).to(device_);
  }
  // Bytes until here: a quarter of the traffic of float pixels.
  return batch.permute({0, 3, 1, 2}).to(dtype_).div_(255.0).contiguous();
}

std::uint8_t* LetterboxBatch::staging(std::int64_t bytes) {
  // The previous batch's copy may still be in flight (a caller that did not wait for the device).
  if (upload_done_) upload_done_->synchronize();
  if (!staging_.defined() || staging_.numel() < bytes) {
    // Doubling keeps regrowth rare as photos get larger; each growth pins new memory once.
    const std::int64_t capacity = std::max(bytes, staging_.defined() ? 2 * staging_.numel() : bytes);
    staging_ = at::empty({capacity}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    log::info("letterbox: pinned upload buffer grown to {:.1f} MiB", static_cast<double>(capacity) / (1 << 20));
  }
  return staging_.data_ptr<std::uint8_t>();
}

}  // namespace vlm::ops
