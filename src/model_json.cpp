#include <cmath>

#include "vlm/model.h"

namespace vlm {
namespace {

// Timings to the microsecond; model outputs stay exact so that consumers can compare them.
double round_ms(double value) { return std::round(value * 1000.0) / 1000.0; }

}  // namespace

nlohmann::json to_json(const Detection& detection) {
  return {
      {"label", detection.label},
      {"class_id", detection.class_id},
      {"score", detection.score},
      {"box", {detection.box[0], detection.box[1], detection.box[2], detection.box[3]}},
  };
}

nlohmann::json to_json(const Timings& timings) {
  return {{"preprocess_ms", round_ms(timings.preprocess_ms)},
          {"inference_ms", round_ms(timings.inference_ms)},
          {"postprocess_ms", round_ms(timings.postprocess_ms)}};
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
  return {{"family", info.family},
          {"source", info.source},
          {"tasks", info.tasks},
          {"text_tasks", info.text_tasks},
          {"classes", info.classes},
          {"device", info.device},
          {"dtype", info.dtype},
          {"attention", info.attention},
          {"image_size", info.image_size},
          {"max_batch", info.max_batch},
          {"load_ms", round_ms(info.load_ms)}};
}

}  // namespace vlm
