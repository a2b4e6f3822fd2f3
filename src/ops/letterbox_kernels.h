#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>

#include "vlm/image.h"
#include "vlm/ops/letterbox.h"

// Per-device halves behind vlm::ops::LetterboxBatch; images and boxes are checked by the front file.
// Both return the batch as [B, target_height, target_width, 3] uint8 RGB, identical byte for byte.
namespace vlm::ops {

// OpenCV on the host, image by image (cv::resize INTER_LINEAR, pad 114).
at::Tensor letterbox_cpu(std::span<const Image> images, std::span<const Letterbox> boxes, int target_width,
                         int target_height);

// Where each part of a packed batch lies in its byte buffer. A packed batch is everything the device
// half reads from the host, in one buffer so that one copy moves it: the host images' RGB bytes back to
// back, then, at `rows_offset`, int64 [B, 4, target_height] and, at `columns_offset`, int64
// [B, 4, target_width] for every image of the batch: for each canvas row the pixel index where its
// first and second source rows start (for a column, the two source columns), -1 in the padding, and
// their weights (1/2048ths; linear_row_taps / linear_column_taps). Pixel indices count RGB triplets
// in the batch's pixels: the host images' (the buffer's first pixel_bytes), then the device images'
// (Image::device), in batch order.
struct PackedLayout {
  std::int64_t batch = 0;
  std::int64_t target_width = 0;
  std::int64_t target_height = 0;
  std::int64_t pixel_bytes = 0;  // host images only
  std::int64_t rows_offset = 0;
  std::int64_t columns_offset = 0;
  std::int64_t total_bytes = 0;
};

PackedLayout packed_layout(std::span<const Image> images, int target_width, int target_height);
// Writes the batch into `buffer` (at least layout.total_bytes, host memory).
void pack_images(std::span<const Image> images, std::span<const Letterbox> boxes, const PackedLayout& layout,
                 std::uint8_t* buffer);

// The device half, in tensor ops so the same code runs (and is tested) on the CPU: `packed` is the
// uint8 buffer pack_images wrote, on any device, and `device_pixels` the device images' uint8 [H, W, 3]
// tensors in batch order, on the same device; the result is on that device. Reproduces OpenCV's
// fixed-point INTER_LINEAR (horizontal pass in Q11, vertical pass ((b * (h >> 4)) >> 16), summed,
// + 2 >> 2), so it equals letterbox_cpu exactly.
at::Tensor letterbox_packed(const at::Tensor& packed, const PackedLayout& layout,
                            std::span<const at::Tensor> device_pixels = {});

}  // namespace vlm::ops
