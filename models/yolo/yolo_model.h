#pragma once

#include <filesystem>
#include <memory>

#include "vlm/model.h"

namespace vlm::yolo {

// True when `path` looks like a TorchScript archive (a zip holding a TorchScript program).
bool is_torchscript_file(const std::filesystem::path& path);

// Loads an Ultralytics or yolov5 TorchScript detection export and warms it up.
std::unique_ptr<Model> load_yolo_model(const std::filesystem::path& path, const ModelOptions& options);

}  // namespace vlm::yolo
