#pragma once

#include <span>

#include <ATen/ATen.h>

#include "config.h"
#include "vlm/image.h"

namespace vlm::florence2 {

// transformers' Florence-2 image processor (CLIPImageProcessor, torchvision backend, which transformers
// picks whenever torchvision is installed): bicubic antialiased resize of the uint8 image straight to
// height x width (no aspect ratio kept, no crop) through the same ATen kernel torchvision calls, then
// (x - mean*255) / (std*255) in float32, the fused rescale+normalize it applies.
class ImageProcessor {
 public:
  explicit ImageProcessor(const PreprocessorConfig& config) : config_(config) {}
  // [N, 3, height, width] float32 on the CPU.
  at::Tensor operator()(std::span<const Image> images) const;
  // One image given as a uint8 HWC RGB tensor; [1, 3, height, width].
  at::Tensor process_rgb(const at::Tensor& rgb_hwc) const;

 private:
  PreprocessorConfig config_;
};

}  // namespace vlm::florence2
