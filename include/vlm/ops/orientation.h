#pragma once

#include <ATen/core/Tensor.h>

namespace vlm::ops {

// An [H, W, C] image as EXIF orientation `orientation` (1..8; ImageHeader::exif_orientation) says to
// show it, the same transposes and flips as OpenCV's imdecode; on the image's device, a view where
// no copy is needed. Throws vlm::Error kInvalidArgument for another orientation or shape.
at::Tensor apply_exif_orientation(const at::Tensor& image, int orientation);

}  // namespace vlm::ops
