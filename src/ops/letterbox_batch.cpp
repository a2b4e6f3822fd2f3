#include "vlm/ops/letterbox_batch.h"

#include <ATen/ATen.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <string>

#include "letterbox_kernels.h"
#include "vlm/device_image.h"
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
  std::vector<at::Tensor> device_pixels;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].on_device()) {
      check_device_image(*images[i].device, i);
      device_pixels.push_back(images[i].device->rgb);
    } else {
      check_host_image(images[i].rgb, i);
    }
    boxes.push_back(compute_letterbox(images[i].width(), images[i].height(), target_width_, target_height_));
  }
  at::Tensor batch;
  if (device_.is_cuda()) {
    const PackedLayout layout = packed_layout(images, target_width_, target_height_);
    std::uint8_t* buffer = staging(layout.total_bytes);
    pack_images(images, boxes, layout, buffer);
    const at::Tensor packed = staging_.narrow(0, 0, layout.total_bytes).to(device_, /*non_blocking=*/true);
    const c10::Stream stream = c10::impl::VirtualGuardImpl(device_.type()).getStream(device_);
    if (!upload_done_) upload_done_.emplace(device_.type());
    upload_done_->record(stream);
    // Each decoded batch's event is waited for on the device; the host goes straight on.
    for (const Image& image : images) {
      if (image.on_device()) use_on_stream(*image.device, stream);
    }
    batch = letterbox_packed(packed, layout, device_pixels);
  } else {
    batch = letterbox_cpu(images, boxes, target_width_, target_height_).to(device_);
  }
  // Bytes until here: a quarter of the traffic of float pixels.
  return batch.permute({0, 3, 1, 2}).to(dtype_).div_(255.0).contiguous();
}

void LetterboxBatch::check_host_image(const cv::Mat& rgb, std::size_t index) const {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw Error(ErrorCode::kInvalidArgument,
                "letterbox: image " + std::to_string(index) + " is not an 8-bit 3-channel image (got " +
                    std::to_string(rgb.cols) + "x" + std::to_string(rgb.rows) + ", " + std::to_string(rgb.channels()) +
                    " channels, depth " + std::to_string(rgb.depth()) + ")");
  }
}

void LetterboxBatch::check_device_image(const DeviceImage& image, std::size_t index) const {
  const at::Tensor& rgb = image.rgb;
  const bool shaped = rgb.defined() && rgb.scalar_type() == at::kByte && rgb.dim() == 3 && rgb.size(2) == 3 &&
                      rgb.size(0) > 0 && rgb.size(1) > 0 && rgb.is_contiguous();
  if (!shaped) {
    throw Error(ErrorCode::kInvalidArgument,
                "letterbox: device image " + std::to_string(index) +
                    " is not a contiguous uint8 [H, W, 3] tensor (got " +
                    (rgb.defined() ? std::string(c10::toString(rgb.scalar_type())) + " " + c10::str(rgb.sizes())
                                   : std::string("an undefined tensor")) +
                    ")");
  }
  // The CPU half reads cv::Mats only, and a tensor on another GPU would be read across devices.
  if (!device_.is_cuda() || rgb.device() != device_) {
    throw Error(ErrorCode::kInvalidArgument, "letterbox on " + device_.str() + " takes host images and images on " +
                                                 device_.str() + " only (Model::accepts_device_images), got image " +
                                                 std::to_string(index) + " as a device image on " + rgb.device().str());
  }
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
