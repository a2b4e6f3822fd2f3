#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "vlm/device_image.h"
#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm {

// A device image's size is its tensor's ([H, W, 3]).
int Image::width() const { return device ? static_cast<int>(device->rgb.size(1)) : rgb.cols; }
int Image::height() const { return device ? static_cast<int>(device->rgb.size(0)) : rgb.rows; }

std::uint64_t decoder_pixel_cap() {
  constexpr std::uint64_t kOpenCvDefault = std::uint64_t{1} << 30U;
  const char* value = std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS");
  if (value == nullptr) return kOpenCvDefault;
  // OpenCV's grammar (parseOption<size_t> in core/src/system.cpp): digits, then nothing, KB or MB
  // (binary multiples). Any other value makes OpenCV throw while it loads, before main.
  const std::string_view text(value);
  const auto digits = std::min(text.size(), text.find_first_not_of("0123456789"));
  std::uint64_t number = 0;
  std::from_chars(text.data(), text.data() + digits, number);
  const std::string_view suffix = text.substr(digits);
  if (suffix == "MB" || suffix == "Mb" || suffix == "mb") return number << 20U;
  if (suffix == "KB" || suffix == "Kb" || suffix == "kb") return number << 10U;
  return number;
}

ImageHeader check_image_header(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options) {
  ImageHeader header = probe_image(bytes);
  std::uint64_t pixels = std::uint64_t{header.width} * header.height;
  if (pixels > options.max_pixels) {
    throw Error(ErrorCode::kImageTooLarge, std::string(image_format_name(header.format)) + " image declares " +
                                               std::to_string(header.width) + "x" + std::to_string(header.height) +
                                               " pixels, over the limit of " + std::to_string(options.max_pixels));
  }
  if (header.jpeg_scans > kMaxJpegScans) {
    throw Error(ErrorCode::kUnsupportedImage, "JPEG image has more than " + std::to_string(kMaxJpegScans) +
                                                  " scans; progressive JPEGs with more scans are not decoded");
  }
  if (!header.truncation.empty()) {
    throw Error(ErrorCode::kImageCorrupt,
                std::string(image_format_name(header.format)) + " image is truncated or corrupt: " + header.truncation);
  }
  return header;
}

Image decode_image(std::span<const std::uint8_t> bytes, const ImageLoadOptions& options) {
  const ImageHeader header = check_image_header(bytes, options);
  // imdecode wants a Mat header; it only reads the buffer. IMREAD_COLOR applies EXIF orientation and
  // turns gray, 16-bit and RGBA inputs into 8-bit BGR.
  cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<std::uint8_t*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    // OpenCV checks the size against its own caps (validateInputImageSize) before allocating.
    if (e.err.find("CV_IO_MAX_IMAGE_") != std::string::npos) {
      throw Error(ErrorCode::kImageTooLarge, std::string(image_format_name(header.format)) + " image declares " +
                                                 std::to_string(header.width) + "x" + std::to_string(header.height) +
                                                 " pixels, over the decoder's cap (OPENCV_IO_MAX_IMAGE_PIXELS=" +
                                                 std::to_string(decoder_pixel_cap()) + ")");
    }
    throw Error(ErrorCode::kImageCorrupt,
                std::string(image_format_name(header.format)) + " image could not be decoded: " + e.err);
  }
  if (bgr.empty()) {
    throw Error(ErrorCode::kImageCorrupt,
                std::string(image_format_name(header.format)) + " image could not be decoded (truncated or corrupt)");
  }
  // The probe's size is what the pixel limit checked; a decoder that read another size from the
  // same bytes (EXIF orientation aside) means the two disagree about the file, so it is refused.
  const auto cols = static_cast<std::uint32_t>(bgr.cols);
  const auto rows = static_cast<std::uint32_t>(bgr.rows);
  if (!(cols == header.width && rows == header.height) && !(cols == header.height && rows == header.width)) {
    throw Error(ErrorCode::kImageCorrupt, std::string(image_format_name(header.format)) + " image declares " +
                                              std::to_string(header.width) + "x" + std::to_string(header.height) +
                                              " pixels but decodes to " + std::to_string(cols) + "x" +
                                              std::to_string(rows));
  }
  // Swapped in place: cvtColor into a new Mat (or onto itself, which copies first) would hold a
  // second full-size buffer per image while both exist.
  for (int y = 0; y < bgr.rows; ++y) {
    auto* row = bgr.ptr<cv::Vec3b>(y);
    for (int x = 0; x < bgr.cols; ++x) std::swap(row[x][0], row[x][2]);
  }
  Image image;
  image.rgb = std::move(bgr);
  return image;
}

Image load_image(const std::filesystem::path& path, const ImageLoadOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(ErrorCode::kNotFound, "no such file: " + path.string());
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorCode::kInvalidArgument, path.string() + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot open " + path.string());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read " + path.string());
  try {
    return decode_image(bytes, options);
  } catch (const Error& e) {
    throw Error(e.code(), path.string() + ": " + e.what());
  }
}

}  // namespace vlm
