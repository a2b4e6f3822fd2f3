#include <cmath>

#include "vlm/model_json.h"

namespace vlm {
namespace {

// Timings to the microsecond; model outputs stay exact so that consumers can compare them.
double round_ms(double value) { return std::round(value * 1000.0) / 1000.0; }

// Florence-2's coordinates are whole pixels; transformers returns them as ints.
long long pixel(float value) { return static_cast<long long>(value); }

nlohmann::json points_json(std::span<const float> points) {
  nlohmann::json out = nlohmann::json::array();
  for (const float v : points) out.push_back(pixel(v));
  return out;
}

nlohmann::json boxes_json(std::span<const Detection> boxes, nlohmann::json& labels) {
  nlohmann::json out = nlohmann::json::array();
  labels = nlohmann::json::array();
  for (const Detection& box : boxes) {
    out.push_back(points_json(box.box));
    labels.push_back(box.label);
  }
  return out;
}

nlohmann::json polygons_json(std::span<const PolygonRegion> regions, nlohmann::json& labels) {
  nlohmann::json out = nlohmann::json::array();
  labels = nlohmann::json::array();
  for (const PolygonRegion& region : regions) {
    nlohmann::json polygons = nlohmann::json::array();
    for (const auto& polygon : region.polygons) polygons.push_back(points_json(polygon));
    out.push_back(std::move(polygons));
    labels.push_back(region.label);
  }
  return out;
}

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
  if (result.answer) {
    out["task"] = result.answer->task;
    out["result"] = task_answer_json(*result.answer, result.detections);
    out["generated_ids"] = result.answer->generated_ids;
    // One per region, in the order `result` lists them (boxes, then polygons, or quad boxes).
    out["scores"] = nullptr;
    if (result.answer->scored) {
      auto scores = nlohmann::json::array();
      for (const Detection& box : result.detections) scores.push_back(box.score);
      for (const PolygonRegion& region : result.answer->polygon_regions) scores.push_back(region.score);
      for (const QuadRegion& region : result.answer->quad_regions) scores.push_back(region.score);
      out["scores"] = std::move(scores);
    }
  }
  out["timings"] = to_json(result.timings);
  return out;
}

nlohmann::json task_answer_json(const TaskAnswer& answer, std::span<const Detection> boxes) {
  nlohmann::json labels;
  switch (answer.shape) {
    case AnswerShape::kText: return answer.text;
    case AnswerShape::kBoxes: {
      nlohmann::json bboxes = boxes_json(boxes, labels);
      return {{"bboxes", std::move(bboxes)}, {"labels", std::move(labels)}};
    }
    case AnswerShape::kQuadBoxes: {
      nlohmann::json quads = nlohmann::json::array();
      labels = nlohmann::json::array();
      for (const QuadRegion& region : answer.quad_regions) {
        quads.push_back(points_json(region.quad));
        labels.push_back(region.label);
      }
      return {{"quad_boxes", std::move(quads)}, {"labels", std::move(labels)}};
    }
    case AnswerShape::kPolygons: {
      nlohmann::json polygons = polygons_json(answer.polygon_regions, labels);
      return {{"polygons", std::move(polygons)}, {"labels", std::move(labels)}};
    }
    case AnswerShape::kBoxesOrPolygons: {
      nlohmann::json bboxes_labels;
      nlohmann::json bboxes = boxes_json(boxes, bboxes_labels);
      nlohmann::json polygons = polygons_json(answer.polygon_regions, labels);
      return {{"bboxes", std::move(bboxes)},
              {"bboxes_labels", std::move(bboxes_labels)},
              {"polygons", std::move(polygons)},
              {"polygons_labels", std::move(labels)}};
    }
  }
  return nullptr;
}

nlohmann::json to_json(const ModelInfo& info) {
  return {{"family", info.family},         {"source", info.source},       {"tasks", info.tasks},
          {"text_tasks", info.text_tasks}, {"classes", info.classes},     {"device", info.device},
          {"dtype", info.dtype},           {"attention", info.attention}, {"cuda_graphs", info.cuda_graphs},
          {"image_size", info.image_size}, {"max_batch", info.max_batch}, {"load_ms", round_ms(info.load_ms)}};
}

}  // namespace vlm
