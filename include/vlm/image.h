#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include <opencv2/core/mat.hpp>

namespace vlm {

struct ImageLoadOptions {
  // Checked against the size the file declares, before any pixel is decoded.
  std::uint64_t max_pixels = 50'000'000;
};

enum class ImageFormat { kJpeg, kPng, kBmp, kWebp, kTiff };

struct DeviceImage;  // vlm/device_image.h (a torch header): pixels decoded straight onto a device

// An 8-bit RGB image, EXIF orientation applied, as every model here consumes it. On the host (rgb),
// or, only for a model whose accepts_device_images() is true, on that model's device (device set,
// rgb empty): everything else that reads pixels (annotate, think, Florence-2, the CLI) gets host images.
struct Image {
  Image() = default;
  explicit Image(cv::Mat host_rgb) : rgb(std::move(host_rgb)) {}

  cv::Mat rgb;  // CV_8UC3, RGB order, continuous; empty for a device image
  std::shared_ptr<const DeviceImage> device;
  bool on_device() const { return device != nullptr; }
  int width() const;
  int height() const;
};

// Size and format read from the header alone. Throws kEmptyInput, kNotAnImage or kImageCorrupt.
struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  // Why the data ends early (missing end marker), empty when complete. Reported after the size
  // check, so an oversized image is named as such even when it is also cut short.
  std::string truncation;
  // JPEG only: start-of-scan markers counted up to kMaxJpegScans + 1 (then counting stops).
  std::size_t jpeg_scans = 0;
  // JPEG only, what a GPU decoder must know before it is given the bytes: the start-of-frame marker
  // (0xC0 baseline, 0xC1 extended, 0xC2 progressive, others lossless or arithmetic-coded), the
  // number of components (1 gray, 3 YCbCr, 4 CMYK/YCCK) and the EXIF orientation (tag 0x0112 of
  // the first APP1 Exif segment; 1, upright, when absent or unreadable), which decode_image applies.
  std::uint8_t jpeg_frame_marker = 0;
  int jpeg_components = 0;
  int exif_orientation = 1;
};
// Progressive JPEGs from common encoders have about 10 scans; a file with more than this is
// refused before decoding (each scan costs a pass over the whole image).
inline constexpr std::size_t kMaxJpegScans = 100;
ImageHeader probe_image(std::span<const std::uint8_t> bytes);
std::string_view image_format_name(ImageFormat format);

// OpenCV's own decoder cap, OPENCV_IO_MAX_IMAGE_PIXELS as the process environment has it now (2^30,
// OpenCV's default, when unset). OpenCV 4.6 reads the variable once, into a static initialised
// when libopencv_imgcodecs is loaded, so this is the cap in force only until the environment
// changes: ask at start-up. A decoded image over it is refused kImageTooLarge.
std::uint64_t decoder_pixel_cap();

// probe_image plus every refusal decode_image makes before decoding (pixel limit, JPEG scans,
// truncation), for decoders other than OpenCV's to start from. Throws as decode_image does.
ImageHeader check_image_header(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options = {});
// Throws vlm::Error: kEmptyInput, kNotAnImage, kImageTooLarge, kImageCorrupt, kUnsupportedImage.
Image decode_image(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options = {});
// As decode_image, plus kNotFound / kIo for the file itself.
Image load_image(const std::filesystem::path& path, const ImageLoadOptions& options = {});

}  // namespace vlm
