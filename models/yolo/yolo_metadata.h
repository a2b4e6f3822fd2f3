#pragma once

#include <string>
#include <vector>

namespace vlm::yolo {

// Which exporter wrote the file: the conventions for box rescaling differ between the two.
enum class Exporter { kUltralytics, kYolov5 };

// What an export says about itself in its embedded config.txt.
struct YoloMetadata {
  Exporter exporter = Exporter::kUltralytics;
  std::string task = "detect";
  std::vector<std::string> names;  // index = class id
  int stride = 32;
  int image_height = 640;
  int image_width = 640;
  int batch = 1;
  bool end2end = false;  // v10 / YOLO26 heads that emit [B, K, 6] after their own selection
  std::string version;   // exporter's package version, when recorded
};

// Parses config.txt from `yolo export format=torchscript` (ultralytics) or yolov5's export.py.
// Throws kBadCheckpoint on malformed metadata and kUnsupportedModel for non-detection tasks.
YoloMetadata parse_yolo_metadata(const std::string& config_text, const std::string& source);

}  // namespace vlm::yolo
