// The only place that knows every model family: a path's contents decide which loader runs.
#include <chrono>

#include "florence2.h"
#include "vlm/error.h"
#include "vlm/model.h"
#include "yolo_model.h"

namespace vlm {

std::unique_ptr<Model> load_model(const std::filesystem::path& path, const ModelOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(ErrorCode::kNotFound, "model not found: " + path.string());
  if (std::filesystem::is_regular_file(path, ec) && path.extension() != ".pt" && yolo::is_torchscript_file(path)) {
    return yolo::load_yolo_model(path, options);
  }
  if (std::filesystem::is_directory(path, ec) && florence2::is_florence2_model_folder(path)) {
    return florence2::load_florence2_model(path, options);
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(
        ErrorCode::kUnsupportedModel,
        path.string() + " is a folder but holds no model this build can load (Florence-2 folders need config.json)");
  }
  if (path.extension() == ".pt") {
    // The packages' own exporters go online (hub lookups, yolov5 -> "v5u" renames) and write beside the
    // weights; the project's helper does neither, so it is the one command we point to.
    throw Error(ErrorCode::kUnsupportedModel,
                path.string() +
                    " is a PyTorch training checkpoint; export it to TorchScript first with vlmserve's export helper "
                    "(Ultralytics and yolov5 checkpoints, offline): `scripts/export_yolo.sh " +
                    std::filesystem::absolute(path, ec).string() + "` in the source tree writes models/" +
                    path.stem().string() + ".torchscript");
  }
  throw Error(ErrorCode::kUnsupportedModel, path.string() + " is neither a TorchScript export nor a model folder");
}

}  // namespace vlm
