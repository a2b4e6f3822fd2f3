#include "yolo_metadata.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "vlm/error.h"

namespace vlm::yolo {
namespace {

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw Error(ErrorCode::kBadCheckpoint, source + ": " + what);
}

// names is {"0": "person", ...} (ultralytics, yolov5 >= 7) or ["person", ...] (older yolov5).
std::vector<std::string> parse_names(const nlohmann::json& names, const std::string& source) {
  std::vector<std::string> out;
  if (names.is_array()) {
    for (const auto& name : names) {
      if (!name.is_string()) bad(source, "class names must be strings");
      out.push_back(name.get<std::string>());
    }
    return out;
  }
  if (!names.is_object()) bad(source, "metadata has no class names");
  out.resize(names.size());
  for (const auto& [key, name] : names.items()) {
    std::size_t id = 0;
    try {
      id = std::stoul(key);
    } catch (const std::exception&) {
      bad(source, "class id '" + key + "' is not a number");
    }
    if (id >= out.size() || !name.is_string()) bad(source, "class ids must be 0..N-1 with string names");
    out[id] = name.get<std::string>();
  }
  return out;
}

YoloMetadata parse_config(const std::string& config_text, const std::string& source) {
  if (config_text.empty()) {
    bad(source,
        "TorchScript file carries no config.txt metadata (class names, stride): export the .pt checkpoint with "
        "vlmserve's export helper, `scripts/export_yolo.sh WEIGHTS.pt` in the source tree");
  }
  nlohmann::json config = nlohmann::json::parse(config_text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) bad(source, "config.txt metadata is not a JSON object");
  if (!config.contains("names")) bad(source, "config.txt metadata has no class names");

  YoloMetadata meta;
  meta.names = parse_names(config["names"], source);
  if (meta.names.empty()) bad(source, "model has no classes");
  if (config.contains("task")) {
    meta.exporter = Exporter::kUltralytics;
    meta.task = config.value("task", "detect");
    meta.batch = config.value("batch", 1);
    meta.end2end = config.value("end2end", false);
    meta.version = config.value("version", "");
    const auto& imgsz = config.contains("imgsz") ? config["imgsz"] : nlohmann::json();
    if (imgsz.is_array() && imgsz.size() == 2) {
      meta.image_height = imgsz[0].get<int>();
      meta.image_width = imgsz[1].get<int>();
    } else if (imgsz.is_number_integer()) {
      meta.image_height = meta.image_width = imgsz.get<int>();
    }
  } else if (config.contains("shape")) {
    // yolov5 export.py records the traced input shape [B, C, H, W] and no task.
    meta.exporter = Exporter::kYolov5;
    const auto& shape = config["shape"];
    if (!shape.is_array() || shape.size() != 4) bad(source, "yolov5 metadata shape must be [B, C, H, W]");
    meta.batch = shape[0].get<int>();
    meta.image_height = shape[2].get<int>();
    meta.image_width = shape[3].get<int>();
  } else {
    bad(source, "config.txt metadata has neither 'task' (ultralytics) nor 'shape' (yolov5)");
  }
  if (config.contains("stride")) {
    const auto& stride = config["stride"];
    if (stride.is_array() && stride.empty()) bad(source, "stride list is empty");
    meta.stride = stride.is_array() ? std::max(1, stride.back().get<int>()) : stride.get<int>();
  }
  if (meta.task != "detect") {
    throw Error(ErrorCode::kUnsupportedModel,
                source + ": model task is '" + meta.task + "'; vlmserve serves YOLO detection models only");
  }
  if (meta.image_height <= 0 || meta.image_width <= 0 || meta.image_height > 8192 || meta.image_width > 8192) {
    bad(source, "image size " + std::to_string(meta.image_height) + "x" + std::to_string(meta.image_width) +
                    " is out of range");
  }
  return meta;
}

}  // namespace

YoloMetadata parse_yolo_metadata(const std::string& config_text, const std::string& source) {
  try {
    return parse_config(config_text, source);
  } catch (const nlohmann::json::exception& e) {
    // A value of the wrong JSON type ("imgsz": ["a"]) is malformed metadata, not an internal error.
    bad(source, std::string("config.txt metadata has a value of the wrong type: ") + e.what());
  }
}

}  // namespace vlm::yolo
