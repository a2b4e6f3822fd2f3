// Image loading against PIL's decode of the same files (written by core_fixtures.py from the shared
// photos), and every kind of bad input mapped to its typed error.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <opencv2/core.hpp>
#include <string>

#include "core_test_data.h"
#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
using test::core_data;

fs::path images() { return core_data() / "images"; }

struct Diff {
  double mean = 0;
  double max = 0;
  double p999 = 0;  // 99.9th percentile of per-sample differences
};

Diff compare_to_reference(const Image& image, const std::string& name) {
  nlohmann::json entry = test::read_json(images() / "manifest.json").at(name);
  EXPECT_EQ(image.width(), entry["width"].get<int>()) << name;
  EXPECT_EQ(image.height(), entry["height"].get<int>()) << name;
  if (image.width() != entry["width"].get<int>() || image.height() != entry["height"].get<int>())
    return {255, 255, 255};
  std::vector<std::uint8_t> reference = test::read_bytes(images() / entry["reference"].get<std::string>());
  EXPECT_EQ(reference.size(), image.rgb.total() * 3) << name;
  cv::Mat want(image.height(), image.width(), CV_8UC3, reference.data());
  cv::Mat diff;
  cv::absdiff(image.rgb, want, diff);
  Diff out;
  out.mean = cv::mean(diff.reshape(1))[0];
  cv::minMaxLoc(diff.reshape(1), nullptr, &out.max);
  std::vector<int> histogram(256, 0);
  for (auto it = diff.begin<std::uint8_t>(); it != diff.end<std::uint8_t>(); ++it) ++histogram[*it];
  std::size_t seen = 0;
  for (int v = 0; v < 256; ++v) {
    seen += static_cast<std::size_t>(histogram[v]);
    if (seen >= diff.total() * 3 * 999 / 1000) {
      out.p999 = v;
      break;
    }
  }
  return out;
}

void expect_rgb8(const Image& image) {
  EXPECT_EQ(image.rgb.type(), CV_8UC3);
  EXPECT_TRUE(image.rgb.isContinuous());
}

TEST(Image, LosslessFormatsDecodeExactlyAsPil) {
  // Gray is replicated to three channels, alpha dropped, 16-bit samples reduced to their high byte.
  for (const char* name : {"photo.png", "photo.bmp", "photo.tiff", "photo_lossless.webp", "gray.png", "rgba.png",
                           "rgb16.png", "gray16.png"}) {
    SCOPED_TRACE(name);
    Image image = load_image(images() / name);
    expect_rgb8(image);
    Diff diff = compare_to_reference(image, name);
    EXPECT_EQ(diff.max, 0.0) << "mean " << diff.mean;
  }
}

TEST(Image, LossyFormatsDecodeWithinDecoderTolerance) {
  // Our libjpeg-turbo/libwebp (Debian) and Pillow's bundled ones may differ in IDCT/upsampling
  // rounding: a mean difference under 1 level and rare larger differences.
  for (const char* name : {"photo.jpg", "photo_lossy.webp"}) {
    SCOPED_TRACE(name);
    Image image = load_image(images() / name);
    expect_rgb8(image);
    Diff diff = compare_to_reference(image, name);
    EXPECT_LT(diff.mean, 1.0);
    EXPECT_LE(diff.p999, 8.0) << "max " << diff.max;
  }
}

TEST(Image, ExifOrientationIsApplied) {
  const std::string name = "exif6.jpg";
  std::vector<std::uint8_t> bytes = test::read_bytes(images() / name);
  ImageHeader header = probe_image(bytes);
  // Stored landscape...
  EXPECT_EQ(header.width, 397U);
  EXPECT_EQ(header.height, 223U);
  // ...shown portrait, and the pixels are PIL's exif_transpose of the same file.
  Image image = decode_image(bytes);
  expect_rgb8(image);
  EXPECT_EQ(image.width(), 223);
  EXPECT_EQ(image.height(), 397);
  Diff diff = compare_to_reference(image, name);
  EXPECT_LT(diff.mean, 1.0);
  EXPECT_LE(diff.p999, 8.0) << "max " << diff.max;
}

TEST(Image, ProbeReadsFormatAndSizeFromTheHeader) {
  nlohmann::json manifest = test::read_json(images() / "manifest.json");
  const std::map<std::string, ImageFormat> formats = {{"PNG", ImageFormat::kPng},
                                                      {"BMP", ImageFormat::kBmp},
                                                      {"TIFF", ImageFormat::kTiff},
                                                      {"WEBP", ImageFormat::kWebp},
                                                      {"JPEG", ImageFormat::kJpeg}};
  int probed = 0;
  for (const auto& [name, entry] : manifest.items()) {
    if (!entry.contains("reference") || name == "exif6.jpg") continue;
    SCOPED_TRACE(name);
    ImageHeader header = probe_image(test::read_bytes(images() / name));
    EXPECT_EQ(header.format, formats.at(entry["format"].get<std::string>()));
    EXPECT_EQ(header.width, entry["width"].get<std::uint32_t>());
    EXPECT_EQ(header.height, entry["height"].get<std::uint32_t>());
    ++probed;
  }
  EXPECT_GE(probed, 10);
}

TEST(Image, DecodeFromBytesEqualsLoadFromFile) {
  std::vector<std::uint8_t> bytes = test::read_bytes(images() / "photo.png");
  Image from_bytes = decode_image(bytes);
  Image from_file = load_image(images() / "photo.png");
  EXPECT_EQ(cv::norm(from_bytes.rgb, from_file.rgb, cv::NORM_INF), 0.0);
}

void expect_error(const fs::path& path, ErrorCode code, const std::vector<std::string>& fragments,
                  const ImageLoadOptions& options = {}) {
  SCOPED_TRACE(path.filename().string());
  try {
    load_image(path, options);
    FAIL() << "loaded without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "'" << fragment << "' not in: " << e.what();
    }
  }
}

TEST(Image, BadInputsGetTypedErrorsThatNameTheProblem) {
  expect_error(images() / "truncated.jpg", ErrorCode::kImageCorrupt, {"truncated.jpg", "JPEG"});
  expect_error(images() / "truncated.png", ErrorCode::kImageCorrupt, {"truncated.png", "PNG"});
  expect_error(images() / "damaged.png", ErrorCode::kImageCorrupt, {"damaged.png", "PNG"});
  expect_error(images() / "random.bin", ErrorCode::kNotAnImage, {"random.bin", "not an image", "4096 bytes"});
  expect_error(images() / "empty.jpg", ErrorCode::kEmptyInput, {"empty.jpg", "0 bytes"});
  expect_error(images() / "animation.gif", ErrorCode::kUnsupportedImage, {"animation.gif", "not supported"});
  expect_error(images() / "8k.png", ErrorCode::kImageTooLarge, {"8000x8000", "50000000"});
  expect_error(images() / "huge.jpg", ErrorCode::kImageTooLarge, {"60000x60000"});
  expect_error(images() / "no_such_file.png", ErrorCode::kNotFound, {"no_such_file.png"});
  expect_error(images(), ErrorCode::kInvalidArgument, {"directory"});
}

TEST(Image, ZeroBytesAndTinyPrefixesFromMemory) {
  std::vector<std::uint8_t> none;
  EXPECT_THROW(decode_image(none), Error);
  try {
    decode_image(none);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kEmptyInput);
  }
  // Every prefix of a real PNG and JPEG is refused with a typed error, never a crash or an exception
  // of another type.
  for (const char* name : {"photo.png", "photo.jpg", "photo.bmp", "photo.tiff", "photo_lossless.webp"}) {
    std::vector<std::uint8_t> bytes = test::read_bytes(images() / name);
    for (std::size_t size : {std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8}, std::size_t{12},
                             std::size_t{16}, std::size_t{24}, std::size_t{33}, std::size_t{100}, bytes.size() / 3}) {
      SCOPED_TRACE(std::string(name) + " first " + std::to_string(size) + " bytes");
      try {
        decode_image(std::span<const std::uint8_t>(bytes.data(), size));
        ADD_FAILURE() << "decoded a prefix";
      } catch (const Error& e) {
        EXPECT_TRUE(e.code() == ErrorCode::kImageCorrupt || e.code() == ErrorCode::kNotAnImage) << e.what();
      }
    }
  }
}

TEST(Image, DeclaredHugePngIsRefusedBeforeDecodingQuicklyAndInBoundedMemory) {
  std::vector<std::uint8_t> bytes = test::read_bytes(images() / "huge.png");
  ASSERT_LT(bytes.size(), 100U);
  ImageHeader header = probe_image(bytes);
  EXPECT_EQ(header.width, 100000U);
  EXPECT_EQ(header.height, 100000U);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto start = std::chrono::steady_clock::now();
  try {
    decode_image(bytes);
    FAIL() << "decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kImageTooLarge);
    EXPECT_NE(std::string(e.what()).find("100000x100000"), std::string::npos) << e.what();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(seconds, 0.05);
  // Peak resident size grows by far less than the 30 GB a decode would need (ru_maxrss is in KiB).
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 16 * 1024);
}

TEST(Image, PixelLimitIsConfigurableAndInclusive) {
  const fs::path photo = images() / "photo.png";  // 333 x 445 = 148185 pixels
  ImageLoadOptions exact;
  exact.max_pixels = 333 * 445;
  EXPECT_EQ(load_image(photo, exact).width(), 333);
  ImageLoadOptions below;
  below.max_pixels = 333 * 445 - 1;
  expect_error(photo, ErrorCode::kImageTooLarge, {"333x445", "148184"}, below);
}

}  // namespace
}  // namespace vlm
