#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/Event.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <span>
#include <vector>

#include "vlm/image.h"
#include "vlm/ops/letterbox.h"

namespace vlm::ops {

// A YOLO model's input from a batch of decoded images: letterboxed to the model's size (pad 114), RGB,
// pixel / 255, [B, 3, H, W] in the model's dtype on its device. One entry point, two halves:
//  - CPU: OpenCV per image on the host (src/ops/cpu/letterbox_kernel.cpp);
//  - CUDA: the host images and every image's resize tables packed into one pinned host buffer, one
//    copy to the device, and resize + pad for the whole batch there (src/ops/cuda/letterbox_kernel.cpp),
//    with the same bytes as the CPU half; images decoded on the device join the batch there.
// Not thread-safe: the model's one worker thread owns it.
class LetterboxBatch {
 public:
  LetterboxBatch(int target_width, int target_height, c10::Device device, c10::ScalarType dtype);

  // `boxes` receives each image's geometry, for mapping detections back. Images may be on the host or,
  // on CUDA, already on this device (Image::device, as NvjpegDecoder makes them), mixed in one batch:
  // device images are waited for on the device (no host sync) and resized by the same code as the
  // uploaded host ones, so the same pixels give the same bytes. Throws vlm::Error kInvalidArgument for
  // an image that is not 8-bit, 3-channel and non-empty, or a device image on another device.
  at::Tensor make_input(std::span<const Image> images, std::vector<Letterbox>& boxes);

 private:
  void check_host_image(const cv::Mat& rgb, std::size_t index) const;
  void check_device_image(const DeviceImage& image, std::size_t index) const;
  // The host buffer every batch is packed into: pinned, so the copy is a DMA the host does not wait
  // for, and reused, because pinning is slow (a cudaHostAlloc per batch would cost more than the copy).
  std::uint8_t* staging(std::int64_t bytes);

  int target_width_;
  int target_height_;
  c10::Device device_;
  c10::ScalarType dtype_;
  at::Tensor staging_;
  // Recorded after each upload: the buffer is rewritten only once the device has read it.
  std::optional<c10::Event> upload_done_;
};

}  // namespace vlm::ops
