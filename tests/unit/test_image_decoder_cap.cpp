// OpenCV's own decoder cap (OPENCV_IO_MAX_IMAGE_PIXELS) as a second fence behind the header probe.
// ctest starts this binary with OPENCV_IO_MAX_IMAGE_PIXELS=1000000, as a container image or a
// Kubernetes manifest sets it: an image the pixel limit allows but the decoder's cap does not is
// refused 413-style (kImageTooLarge), and changing the variable after start-up changes nothing,
// because OpenCV 4.6 reads it into a static when libopencv_imgcodecs is loaded.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm {
namespace {

constexpr std::uint64_t kCap = 1'000'000;  // the value ctest sets (tests/unit/CMakeLists.txt)

std::vector<std::uint8_t> png(int width, int height) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(40, 120, 200));
  std::vector<std::uint8_t> out;
  EXPECT_TRUE(cv::imencode(".png", image, out));
  return out;
}

// What the probe lets through (--max-pixels far above the cap): only the decoder can refuse.
const ImageLoadOptions kLoose{50'000'000};

TEST(DecoderCap, TheEnvironmentOfTheProcessIsTheCap) { EXPECT_EQ(decoder_pixel_cap(), kCap); }

TEST(DecoderCap, ImageOverTheCapIsRefusedAsTooLarge) {
  const auto bytes = png(1001, 1000);  // 1,001,000 pixels: within --max-pixels, over the cap
  try {
    decode_image(bytes, kLoose);
    FAIL() << "a 1001x1000 image decoded under OPENCV_IO_MAX_IMAGE_PIXELS=" << kCap;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kImageTooLarge) << e.what();
    EXPECT_NE(std::string(e.what()).find("1001x1000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("OPENCV_IO_MAX_IMAGE_PIXELS"), std::string::npos) << e.what();
  }
}

TEST(DecoderCap, ImageAtTheCapDecodes) {
  const Image image = decode_image(png(1000, 1000), kLoose);
  EXPECT_EQ(image.width(), 1000);
  EXPECT_EQ(image.height(), 1000);
}

TEST(DecoderCap, OpenCvReadTheCapWhenItWasLoaded) {
  // Raised after start-up: OpenCV keeps the value it read at load, so the image is still refused,
  // and decoder_pixel_cap() (which reads the environment) would now be wrong; the server logs the
  // cap at start-up, before anything could change it.
  ASSERT_EQ(::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "100000000", 1), 0);
  EXPECT_THROW(decode_image(png(1001, 1000), kLoose), Error);
  ASSERT_EQ(::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "1000000", 1), 0);
}

}  // namespace
}  // namespace vlm
