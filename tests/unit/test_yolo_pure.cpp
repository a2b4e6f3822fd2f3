// The pure parts of YOLO loading: letterbox geometry and pixels against ultralytics' LetterBox (run in
// core_fixtures.py), and the config.txt metadata of both exporters.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <string>

#include "core_test_data.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/ops/letterbox.h"
#include "yolo_metadata.h"

namespace vlm::yolo {
namespace {

using test::core_data;

TEST(Letterbox, GeometryMatchesUltralyticsForOddSizes) {
  nlohmann::json cases = test::read_json(core_data() / "letterbox.json");
  ASSERT_GE(cases.size(), 40U);
  for (const auto& c : cases) {
    const int w = c["width"];
    const int h = c["height"];
    const int tw = c["target_width"];
    const int th = c["target_height"];
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h) + " -> " + std::to_string(tw) + "x" + std::to_string(th));
    ops::Letterbox box = ops::compute_letterbox(w, h, tw, th);
    EXPECT_EQ(box.resized_width, c["resized_width"].get<int>());
    EXPECT_EQ(box.resized_height, c["resized_height"].get<int>());
    EXPECT_EQ(box.left, c["left"].get<int>());
    EXPECT_EQ(box.top, c["top"].get<int>());
    EXPECT_EQ(box.right, c["right"].get<int>());
    EXPECT_EQ(box.bottom, c["bottom"].get<int>());
    EXPECT_EQ(box.left + box.resized_width + box.right, tw);
    EXPECT_EQ(box.top + box.resized_height + box.bottom, th);
  }
}

TEST(Letterbox, PixelsMatchUltralyticsOnAPhoto) {
  Image image = load_image(core_data() / "images" / "photo.png");
  cv::Mat padded = ops::apply_letterbox(image.rgb, ops::compute_letterbox(image.width(), image.height(), 640, 640));
  ASSERT_EQ(padded.rows, 640);
  ASSERT_EQ(padded.cols, 640);
  ASSERT_EQ(padded.type(), CV_8UC3);
  std::vector<std::uint8_t> want = test::read_bytes(core_data() / "letterbox_photo.rgb");
  ASSERT_EQ(want.size(), 640U * 640U * 3U);
  cv::Mat reference(640, 640, CV_8UC3, want.data());
  cv::Mat diff;
  cv::absdiff(padded, reference, diff);
  double max_diff = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
  // Both sides run cv::resize INTER_LINEAR (Debian's OpenCV here, opencv-python there); their
  // fixed-point paths may round a value differently by one.
  EXPECT_LE(max_diff, 1.0);
  EXPECT_LT(cv::mean(diff.reshape(1))[0], 0.05);
  // 333x445 scales to 479x640: 80 columns of pad on the left, 81 on the right, exactly 114.
  EXPECT_EQ(padded.at<cv::Vec3b>(320, 79), cv::Vec3b(114, 114, 114));
  EXPECT_EQ(padded.at<cv::Vec3b>(320, 559), cv::Vec3b(114, 114, 114));
  EXPECT_NE(padded.at<cv::Vec3b>(320, 80), cv::Vec3b(114, 114, 114));
}

const char* const kUltralyticsConfig = R"json({"description": "Ultralytics YOLO11n model trained on coco.yaml",
  "author": "Ultralytics", "date": "2025-01-01T00:00:00", "version": "8.4.190",
  "license": "AGPL-3.0 License (https://ultralytics.com/license)", "docs": "https://docs.ultralytics.com",
  "stride": 32, "task": "detect", "batch": 4, "imgsz": [480, 640],
  "names": {"0": "person", "1": "bicycle", "2": "car"}, "args": {"batch": 4, "half": false}, "channels": 3})json";

const char* const kYolov5Config =
    R"({"shape": [2, 3, 320, 416], "stride": 32, "names": {"0": "person", "1": "bicycle", "2": "car", "3": "motorcycle"}})";

TEST(YoloMetadata, UltralyticsExport) {
  YoloMetadata meta = parse_yolo_metadata(kUltralyticsConfig, "m.torchscript");
  EXPECT_EQ(meta.exporter, Exporter::kUltralytics);
  EXPECT_EQ(meta.task, "detect");
  EXPECT_EQ(meta.names, (std::vector<std::string>{"person", "bicycle", "car"}));
  EXPECT_EQ(meta.stride, 32);
  EXPECT_EQ(meta.image_height, 480);
  EXPECT_EQ(meta.image_width, 640);
  EXPECT_EQ(meta.batch, 4);
  EXPECT_FALSE(meta.end2end);
  EXPECT_EQ(meta.version, "8.4.190");
}

TEST(YoloMetadata, UltralyticsSquareSizeEndToEndAndOutOfOrderIds) {
  YoloMetadata meta = parse_yolo_metadata(
      R"({"task": "detect", "imgsz": 320, "stride": 64, "end2end": true, "names": {"1": "b", "0": "a", "2": "c"}})",
      "x");
  EXPECT_EQ(meta.image_height, 320);
  EXPECT_EQ(meta.image_width, 320);
  EXPECT_EQ(meta.stride, 64);
  EXPECT_TRUE(meta.end2end);
  EXPECT_EQ(meta.names, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(YoloMetadata, Yolov5Export) {
  YoloMetadata meta = parse_yolo_metadata(kYolov5Config, "v5.torchscript");
  EXPECT_EQ(meta.exporter, Exporter::kYolov5);
  EXPECT_EQ(meta.task, "detect");
  EXPECT_EQ(meta.batch, 2);
  EXPECT_EQ(meta.image_height, 320);
  EXPECT_EQ(meta.image_width, 416);
  EXPECT_EQ(meta.stride, 32);
  ASSERT_EQ(meta.names.size(), 4U);
  EXPECT_EQ(meta.names[3], "motorcycle");
  // Older yolov5 exports list the names and the strides as arrays.
  meta = parse_yolo_metadata(R"({"shape": [1, 3, 640, 640], "stride": [8, 16, 32], "names": ["cat", "dog"]})", "old");
  EXPECT_EQ(meta.names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(meta.stride, 32);
}

void expect_error(const std::string& config, ErrorCode code, const std::string& fragment) {
  SCOPED_TRACE(config);
  try {
    parse_yolo_metadata(config, "model.torchscript");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.torchscript"), std::string::npos) << e.what();
  }
}

TEST(YoloMetadata, OtherTasksAreUnsupportedModels) {
  for (const char* task : {"segment", "pose", "classify", "obb"}) {
    std::string config = std::string(R"({"task": ")") + task + R"(", "imgsz": [640, 640], "names": {"0": "person"}})";
    expect_error(config, ErrorCode::kUnsupportedModel, task);
  }
}

TEST(YoloMetadata, MalformedMetadataIsABadCheckpoint) {
  expect_error("", ErrorCode::kBadCheckpoint, "no config.txt");
  expect_error("{not json", ErrorCode::kBadCheckpoint, "not a JSON object");
  expect_error("[1, 2]", ErrorCode::kBadCheckpoint, "not a JSON object");
  expect_error(R"({"task": "detect", "imgsz": 640})", ErrorCode::kBadCheckpoint, "no class names");
  expect_error(R"({"task": "detect", "imgsz": 640, "names": {}})", ErrorCode::kBadCheckpoint, "no classes");
  expect_error(R"({"task": "detect", "imgsz": 640, "names": {"x": "a"}})", ErrorCode::kBadCheckpoint, "'x'");
  expect_error(R"({"task": "detect", "imgsz": 640, "names": {"0": "a", "5": "b"}})", ErrorCode::kBadCheckpoint,
               "0..N-1");
  expect_error(R"({"task": "detect", "imgsz": 640, "names": [1, 2]})", ErrorCode::kBadCheckpoint, "strings");
  expect_error(R"({"names": ["a"]})", ErrorCode::kBadCheckpoint, "neither 'task'");
  expect_error(R"({"shape": [1, 3, 640], "names": ["a"]})", ErrorCode::kBadCheckpoint, "[B, C, H, W]");
  expect_error(R"({"task": "detect", "imgsz": [0, 640], "names": ["a"]})", ErrorCode::kBadCheckpoint, "out of range");
  expect_error(R"({"task": "detect", "imgsz": 100000, "names": ["a"]})", ErrorCode::kBadCheckpoint, "out of range");
}

TEST(YoloMetadata, WrongJsonTypesAreABadCheckpointNotACrash) {
  // nlohmann's type errors must not escape as anything but vlm::Error kBadCheckpoint.
  for (const char* config :
       {R"({"task": "detect", "imgsz": ["a", "b"], "names": ["a"]})", R"({"task": 5, "imgsz": 640, "names": ["a"]})",
        R"({"shape": [1, 3, "640", 640], "names": ["a"]})",
        R"({"task": "detect", "imgsz": 640, "stride": "32", "names": ["a"]})",
        R"({"task": "detect", "imgsz": 640, "stride": [], "names": ["a"]})"}) {
    SCOPED_TRACE(config);
    try {
      parse_yolo_metadata(config, "model.torchscript");
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadCheckpoint) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "escaped as a non-vlm exception: " << e.what();
    }
  }
}

}  // namespace
}  // namespace vlm::yolo
