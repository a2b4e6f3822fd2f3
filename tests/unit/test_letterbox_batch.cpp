// The device half of the YOLO letterbox (src/ops/cuda/letterbox_kernel.cpp: tensor ops, run here on
// the CPU) against the OpenCV half (cv::resize INTER_LINEAR + pad 114, what the CPU path and the
// references use) on the real photos: the shared ones in $VLM_ASSETS/images and core_fixtures.py's
// re-encodings (grayscale, EXIF-rotated, RGBA, 16-bit). Tolerance: none, byte for byte (the device
// half replays OpenCV's fixed-point arithmetic).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core_test_data.h"
#include "letterbox_kernels.h"
#include "vlm/device_image.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/ops/letterbox.h"
#include "vlm/ops/letterbox_batch.h"

namespace vlm::ops {
namespace {

std::vector<std::filesystem::path> photo_paths() {
  const char* assets = std::getenv("VLM_ASSETS");
  if (assets == nullptr) throw std::runtime_error("VLM_ASSETS is not set; run through ctest");
  std::vector<std::filesystem::path> paths;
  for (const auto& folder :
       {std::filesystem::path(assets) / "images", std::filesystem::path(assets) / "images" / "coco8" / "images"}) {
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (entry.path().extension() == ".jpg") paths.push_back(entry.path());
    }
  }
  const nlohmann::json manifest = test::read_json(test::core_data() / "images" / "manifest.json");
  for (const auto& [name, entry] : manifest.items()) {
    if (entry.contains("reference")) paths.push_back(test::core_data() / "images" / name);
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::vector<Image> photos() {
  std::vector<Image> images;
  for (const auto& path : photo_paths()) images.push_back(load_image(path));
  return images;
}

std::vector<Letterbox> boxes_for(const std::vector<Image>& images, int width, int height) {
  std::vector<Letterbox> boxes;
  for (const Image& image : images) boxes.push_back(compute_letterbox(image.width(), image.height(), width, height));
  return boxes;
}

at::Tensor device_half(const std::vector<Image>& images, const std::vector<Letterbox>& boxes, int width, int height) {
  const PackedLayout layout = packed_layout(images, width, height);
  at::Tensor buffer = at::empty({layout.total_bytes}, at::kByte);
  pack_images(images, boxes, layout, buffer.data_ptr<std::uint8_t>());
  std::vector<at::Tensor> device_pixels;
  for (const Image& image : images) {
    if (image.on_device()) device_pixels.push_back(image.device->rgb);
  }
  return letterbox_packed(buffer, layout, device_pixels);
}

// The same pixels as a decoded-on-device image (Image::device), here on the CPU: the device half is
// tensor ops and runs the same there.
Image as_device_image(const Image& host) {
  const at::Tensor pixels = at::from_blob(host.rgb.data, {host.height(), host.width(), 3}, at::kByte).clone();
  Image image;
  image.device = std::make_shared<const DeviceImage>(DeviceImage{pixels, nullptr});
  return image;
}

TEST(LetterboxBatch, DeviceHalfEqualsOpenCvOnThePhotos) {
  const std::vector<Image> images = photos();
  // More than one pass of the device half (8 images), a grayscale PNG and an EXIF-rotated JPEG.
  ASSERT_GE(images.size(), 16U);
  ASSERT_TRUE(std::any_of(images.begin(), images.end(), [](const Image& i) { return i.width() == 223; }))
      << "exif6.jpg (223x397 once rotated) is missing";
  // Square and odd targets; zidane.jpg (1280x720) into 640 is OpenCV's exact-halving case; 832x736
  // enlarges most photos.
  for (const auto& [width, height] :
       {std::pair{640, 640}, std::pair{320, 320}, std::pair{333, 257}, std::pair{832, 736}}) {
    SCOPED_TRACE(std::to_string(width) + "x" + std::to_string(height));
    const std::vector<Letterbox> boxes = boxes_for(images, width, height);
    const at::Tensor want = letterbox_cpu(images, boxes, width, height);
    const at::Tensor got = device_half(images, boxes, width, height);
    ASSERT_EQ(got.sizes(), want.sizes());
    ASSERT_EQ(got.scalar_type(), at::kByte);
    const at::Tensor diff = (got.to(at::kInt) - want.to(at::kInt)).abs();
    const int max_diff = diff.max().item<int>();
    const double mean_diff = diff.to(at::kDouble).mean().item<double>();
    std::printf("%dx%d: %zu images, max abs diff %d, mean %.6f\n", width, height, images.size(), max_diff, mean_diff);
    EXPECT_EQ(max_diff, 0);
    for (std::size_t i = 0; i < images.size(); ++i) {
      const at::Tensor image = diff[static_cast<std::int64_t>(i)];
      EXPECT_EQ(image.max().item<int>(), 0) << photo_paths()[i];
    }
  }
}

TEST(LetterboxBatch, DeviceImagesGiveTheBytesOfTheSameHostImagesInMixedBatches) {
  const std::vector<Image> host = photos();
  // Every third image decoded on the device (nvJPEG takes baseline JPEGs, the CPU the rest), all of
  // them, and a batch of one.
  std::vector<Image> mixed;
  std::vector<Image> all_device;
  for (std::size_t i = 0; i < host.size(); ++i) {
    mixed.push_back(i % 3 == 1 ? as_device_image(host[i]) : host[i]);
    all_device.push_back(as_device_image(host[i]));
  }
  const std::vector<Image> one_host{host[1]};
  const std::vector<Image> one_device{all_device[1]};
  for (const auto& [width, height] : {std::pair{640, 640}, std::pair{333, 257}}) {
    SCOPED_TRACE(std::to_string(width) + "x" + std::to_string(height));
    const std::vector<Letterbox> boxes = boxes_for(host, width, height);
    const at::Tensor want = letterbox_cpu(host, boxes, width, height);
    EXPECT_TRUE(at::equal(device_half(mixed, boxes_for(mixed, width, height), width, height), want));
    EXPECT_TRUE(at::equal(device_half(all_device, boxes_for(all_device, width, height), width, height), want));
    EXPECT_TRUE(at::equal(device_half(one_device, boxes_for(one_device, width, height), width, height),
                          letterbox_cpu(one_host, boxes_for(one_host, width, height), width, height)));
  }
}

TEST(LetterboxBatch, CpuRefusesADeviceImage) {
  LetterboxBatch letterbox(64, 64, c10::Device(c10::kCPU), at::kFloat);
  std::vector<Letterbox> boxes;
  const std::vector<Image> images{as_device_image(Image{cv::Mat(10, 12, CV_8UC3, cv::Scalar(7, 8, 9))})};
  try {
    letterbox.make_input(images, boxes);
    FAIL() << "a device image was accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("image 0 as a device image"), std::string::npos) << e.what();
  }
}

TEST(LetterboxBatch, PadsWith114AroundTheResizedImage) {
  // 333x445 photo into 640x640: 479 columns wide, 80 columns of pad on the left and 81 on the right.
  const std::vector<Image> images{load_image(test::core_data() / "images" / "photo.png")};
  const std::vector<Letterbox> boxes = boxes_for(images, 640, 640);
  ASSERT_EQ(boxes[0].left, 80);
  const at::Tensor got = device_half(images, boxes, 640, 640)[0];
  EXPECT_TRUE(got.narrow(1, 0, 80).eq(114).all().item<bool>());
  EXPECT_TRUE(got.narrow(1, 559, 81).eq(114).all().item<bool>());
  EXPECT_FALSE(got.narrow(1, 80, 1).eq(114).all().item<bool>());
}

TEST(LetterboxBatch, ModelInputOnCpuIsTheOpenCvBatchOver255) {
  const std::vector<Image> images = photos();
  LetterboxBatch letterbox(320, 256, c10::Device(c10::kCPU), at::kFloat);
  std::vector<Letterbox> boxes;
  const at::Tensor input = letterbox.make_input(images, boxes);
  ASSERT_EQ(boxes.size(), images.size());
  const at::Tensor want = letterbox_cpu(images, boxes, 320, 256).permute({0, 3, 1, 2}).to(at::kFloat).div(255.0);
  EXPECT_EQ(input.sizes(), (std::vector<std::int64_t>{static_cast<std::int64_t>(images.size()), 3, 256, 320}));
  EXPECT_TRUE(input.is_contiguous());
  EXPECT_TRUE(at::equal(input, want));
}

TEST(LetterboxBatch, RefusesAnImageThatIsNotEightBitRgb) {
  LetterboxBatch letterbox(64, 64, c10::Device(c10::kCPU), at::kFloat);
  std::vector<Letterbox> boxes;
  const std::vector<Image> gray{Image{cv::Mat(10, 12, CV_8UC1, cv::Scalar(7))}};
  try {
    letterbox.make_input(gray, boxes);
    FAIL() << "a 1-channel image was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("12x10, 1 channels"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vlm::ops
