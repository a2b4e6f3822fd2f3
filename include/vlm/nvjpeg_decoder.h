#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vlm/image.h"

namespace vlm {

// Batched JPEG decoding on a CUDA device with nvJPEG (the nvidia-nvjpeg wheel; the vlm_nvjpeg library
// exists only where CMake found it). The server decodes the JPEGs of requests for a model that accepts
// device images with it (server/request_image_decoder.h); tests/gpu/nvjpeg_decode_check.cpp measures it
// against decode_image (OpenCV) on the photos. This header is torch-free, for server/.
//
// A decoded image is a device image (Image::device: RGB uint8 [H, W, 3], EXIF orientation applied as
// decode_image applies it), written on the decoder's own stream. What nvJPEG is not given, or refuses,
// comes back empty (no rgb, no device), for decode_image to decode on the CPU: other formats, CMYK/YCCK
// (OpenCV converts them), progressive, lossless and arithmetic-coded JPEGs, and the whole batch when
// nvJPEG fails it. Not thread-safe: one caller at a time (the server lends each of a pool to one request).
// Its buffers come from torch's caching allocators, so that growing them never synchronises the device.
class NvjpegDecoder {
 public:
  // kCuda: nvJPEG's default backend (entropy decoding on the calling CPU thread, the rest in CUDA
  // kernels). kHardware: the GPU's JPEG decoder engines (A100, H100 and later), for baseline JPEGs
  // other than 4:1:1 and 4:1:0, which it leaves to the CPU like the formats above.
  enum class Backend { kCuda, kHardware };
  // `device`: "cuda" or "cuda:N". Throws vlm::Error kUnavailable when nvJPEG cannot start there (for
  // kHardware: also where the GPU has no JPEG engines), kInvalidArgument for a device that is not CUDA.
  explicit NvjpegDecoder(const std::string& device, Backend backend = Backend::kCuda);
  ~NvjpegDecoder();
  NvjpegDecoder(const NvjpegDecoder&) = delete;
  NvjpegDecoder& operator=(const NvjpegDecoder&) = delete;

  // `headers[i]` is what check_image_header returned for `images[i]`: the caller checks every image
  // first (pixel limit, scans, truncation), so that no byte decode_image would refuse reaches nvJPEG and
  // each refusal is reported on its own image. Returns once the pixels are on the device (its stream
  // synchronised, so that the caller's decode time is the decode's); the images' ready event orders any
  // other stream after the decode all the same.
  std::vector<Image> decode(std::span<const std::span<const std::uint8_t>> images,
                            std::span<const ImageHeader> headers);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vlm
