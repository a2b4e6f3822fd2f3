// The JPEG header facts a GPU decoder is routed by (ImageHeader's frame marker, components, EXIF
// orientation) and vlm::ops::apply_exif_orientation, against OpenCV's own reading of the same
// bytes: exif6.jpg (core_fixtures.py) with its orientation tag rewritten to each of 1..8, decoded
// with and without OpenCV applying it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <vector>

#include "core_test_data.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/ops/orientation.h"

namespace vlm {
namespace {

// The byte offset of the orientation tag's value in a little- or big-endian Exif block.
std::size_t orientation_value_offset(const std::vector<std::uint8_t>& jpeg) {
  for (std::size_t at = 0; at + 10 < jpeg.size(); ++at) {
    const bool little = jpeg[at] == 0x12 && jpeg[at + 1] == 0x01 && jpeg[at + 2] == 0x03 && jpeg[at + 3] == 0x00;
    const bool big = jpeg[at] == 0x01 && jpeg[at + 1] == 0x12 && jpeg[at + 2] == 0x00 && jpeg[at + 3] == 0x03;
    if (little || big) return at + 8 + (big ? 1 : 0);
  }
  throw std::runtime_error("no orientation tag in the fixture");
}

at::Tensor as_tensor(const cv::Mat& bgr) { return at::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, at::kByte).clone(); }

TEST(ExifOrientation, HeaderAndPixelsMatchOpenCvForAllEight) {
  std::vector<std::uint8_t> jpeg = test::read_bytes(test::core_data() / "images" / "exif6.jpg");
  const std::size_t value_at = orientation_value_offset(jpeg);
  ASSERT_EQ(jpeg[value_at], 6);
  for (int orientation = 1; orientation <= 8; ++orientation) {
    SCOPED_TRACE("orientation " + std::to_string(orientation));
    jpeg[value_at] = static_cast<std::uint8_t>(orientation);
    const ImageHeader header = probe_image(jpeg);
    EXPECT_EQ(header.exif_orientation, orientation);
    EXPECT_EQ(header.jpeg_components, 3);
    EXPECT_EQ(header.jpeg_frame_marker, 0xC0);
    const cv::Mat encoded(1, static_cast<int>(jpeg.size()), CV_8UC1, jpeg.data());
    const cv::Mat shown = cv::imdecode(encoded, cv::IMREAD_COLOR);
    const cv::Mat stored = cv::imdecode(encoded, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
    ASSERT_FALSE(shown.empty());
    const at::Tensor ours = ops::apply_exif_orientation(as_tensor(stored), orientation);
    ASSERT_EQ(ours.sizes(), as_tensor(shown).sizes());
    EXPECT_TRUE(at::equal(ours.contiguous(), as_tensor(shown)));
  }
}

TEST(ExifOrientation, PlainJpegIsUprightAndOtherValuesAreRefused) {
  const ImageHeader header = probe_image(test::read_bytes(test::core_data() / "images" / "photo.jpg"));
  EXPECT_EQ(header.exif_orientation, 1);
  EXPECT_EQ(header.jpeg_components, 3);
  EXPECT_THROW(ops::apply_exif_orientation(at::zeros({2, 3, 3}, at::kByte), 9), Error);
  EXPECT_THROW(ops::apply_exif_orientation(at::zeros({2, 3}, at::kByte), 1), Error);
}

}  // namespace
}  // namespace vlm
