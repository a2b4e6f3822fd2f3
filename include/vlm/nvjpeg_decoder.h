#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "vlm/image.h"

namespace vlm {

// Batched JPEG decoding on a CUDA device with nvJPEG (the nvidia-nvjpeg wheel; the vlm_nvjpeg library
// exists only where CMake found it). Not yet on the serving path: tests/gpu/nvjpeg_decode_check.cpp
// measures it against decode_image (OpenCV) on the photos.
//
// Each image's header is checked first (check_image_header: pixel limit, scans, truncation), so no
// byte reaches nvJPEG that decode_image would refuse. A decoded image is RGB uint8 [H, W, 3] on the
// device, EXIF orientation applied as decode_image applies it. What nvJPEG is not given, or refuses,
// comes back undefined, for decode_image to decode on the CPU: other formats, CMYK/YCCK (OpenCV
// converts them), progressive, lossless and arithmetic-coded JPEGs, and the whole batch when nvJPEG
// fails it. Not thread-safe: one per worker thread.
class NvjpegDecoder {
 public:
  // Throws vlm::Error kUnavailable when nvJPEG cannot start on `device`.
  explicit NvjpegDecoder(c10::Device device);
  ~NvjpegDecoder();
  NvjpegDecoder(const NvjpegDecoder&) = delete;
  NvjpegDecoder& operator=(const NvjpegDecoder&) = delete;

  // Throws what check_image_header throws, for the first image whose header fails.
  std::vector<at::Tensor> decode(std::span<const std::span<const std::uint8_t>> images,
                                 const ImageLoadOptions& options);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vlm
