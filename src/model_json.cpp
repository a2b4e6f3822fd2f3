#include <cmath>

#include "vlm/model.h"

namespace vlm {
namespace {

// Pixel coordinates to 0.01 px and timings to 0.001 ms: enough for any consumer, and short lines.
double round_to(double value, double step) { return std::round(value / step) * step; }

}  // namespace

nlohmann::json to_json(const Detection& detection) {
  return {
      {"label", detection.label},
      {"class_id", detection.class_id},
      {"score", round_to(detection.score, 1e-5)},
      {"box",
       {round_to(detection.box[0], 0.01), round_to(detection.box[1], 0.01), round_to(detection.box[2], 0.01),
        round_to(detection.box[3], 0.01)}},
  };
}

nlohmann::json to_json(const Timings& timings) {
  return {{"preprocess_ms", round_to(timings.preprocess_ms, 1e-3)},
          {"inference_ms", round_to(timings.inference_ms, 1e-3)},
          {"postprocess_ms", round_to(timings.postprocess_ms, 1e-3)}};
}

nlohmann::json to_json(const ImageResult& result) {
  nlohmann::json out = {{"width", result.width}, {"height", result.height}};
  auto detections = nlohmann::json::array();
  for (const Detection& detection : result.detections) detections.push_back(to_json(detection));
  out["detections"] = std::move(detections);
  if (result.extra.is_object()) {
    for (const auto& [key, value] : result.extra.items()) out[key] = value;
  }
  out["timings"] = to_json(result.timings);
  return out;
}

nlohmann::json to_json(const ModelInfo& info) {
  return {{"family", info.family},       {"source", info.source},     {"tasks", info.tasks},
          {"classes", info.classes},     {"device", info.device},     {"dtype", info.dtype},
          {"attention", info.attention}, {"image_size", info.image_size}, {"max_batch", info.max_batch},
          {"load_ms", round_to(info.load_ms, 1e-3)}};
}

}  // namespace vlm
