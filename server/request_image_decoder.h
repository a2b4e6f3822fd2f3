#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm::server {

// One request image's outcome: the image, or the vlm::Error decode_image gives those bytes.
struct DecodedImage {
  std::optional<Image> image;
  std::optional<Error> error;
};

enum class ImageDecoderKind { kOpencv, kNvjpeg };
std::string_view image_decoder_name(ImageDecoderKind kind);  // "opencv", "nvjpeg"

// How the images of requests for one served model are decoded (--image-decoder auto|cpu).
//  - OpenCV on the host (decode_image), image by image: with `cpu`, for every model that does not
//    accept device images (Model::accepts_device_images), in a build without nvJPEG, and where nvJPEG
//    does not start on the model's device (tried here, at load; logged).
//  - nvJPEG otherwise: a pool of decoders for the model's device, all made here at load (making one
//    allocates and synchronises the device: never on a request's path), on the GPU's JPEG engines
//    where it has them (A100, H100: NvjpegDecoder::Backend::kHardware), else nvJPEG's CUDA backend;
//    each is lent to one request at a time. The request's JPEGs are decoded as one batch onto the
//    device, and what nvJPEG does not take (other formats, CMYK, progressive, a batch it refuses) by
//    decode_image. Every image's header is checked first (check_image_header: the pixel limit, scans,
//    truncation), so refusals are decode_image's own, per image, and no byte it would refuse reaches
//    nvJPEG.
class RequestImageDecoder {
 public:
  // `setting` is "auto" or "cpu" (validate(ServerConfig) refuses anything else).
  RequestImageDecoder(std::string_view setting, const Model& model);

  ~RequestImageDecoder();
  RequestImageDecoder(const RequestImageDecoder&) = delete;
  RequestImageDecoder& operator=(const RequestImageDecoder&) = delete;

  ImageDecoderKind kind() const { return kind_; }
  // Why this decoder was chosen, for the start-up log ("nvJPEG on cuda:0", "--image-decoder cpu", ...).
  const std::string& reason() const { return reason_; }

  // One outcome per input, in order. Safe to call from any number of threads at once.
  std::vector<DecodedImage> decode(std::span<const std::string> inputs, const ImageLoadOptions& options) const;

 private:
  void decode_on_device(std::span<const std::string> inputs, const ImageLoadOptions& options,
                        std::vector<DecodedImage>& out) const;

  struct DevicePool;  // nvJPEG decoders and who holds them

  ImageDecoderKind kind_ = ImageDecoderKind::kOpencv;
  std::string reason_;
  std::unique_ptr<DevicePool> pool_;  // nvJPEG only
};

}  // namespace vlm::server
