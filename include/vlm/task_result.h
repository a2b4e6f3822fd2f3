#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vlm {

// The forms a generative task's answer takes; they mirror the keys transformers'
// Florence2Processor.post_process_generation returns, so the JSON edge can reproduce them exactly.
enum class AnswerShape : std::uint8_t {
  kText,             // "<CAPTION>": "a bus"
  kBoxes,            // {"bboxes", "labels"}: the boxes are the result's detections
  kQuadBoxes,        // {"quad_boxes", "labels"}: text regions
  kPolygons,         // {"polygons", "labels"}
  kBoxesOrPolygons,  // {"bboxes", "bboxes_labels", "polygons", "polygons_labels"}
};

// One line of text found in the image, with the quadrilateral around it (x0, y0, ..., x3, y3 in
// original-image pixels, clockwise from the top left as the model emits it).
struct QuadRegion {
  std::string label;
  float score = 0.0F;  // see TaskAnswer::scored
  std::array<float, 8> quad{};
};

// One labelled instance drawn as one or more polygons, each a flat list x, y, x, y, ...
struct PolygonRegion {
  std::string label;
  float score = 0.0F;
  std::vector<std::vector<float>> polygons;
};

// What a generative model answered for one image, beside the boxes in ImageResult::detections.
struct TaskAnswer {
  std::string task;  // the task token, e.g. "<OD>"
  AnswerShape shape = AnswerShape::kText;
  std::string text;  // kText answers
  std::vector<QuadRegion> quad_regions;
  std::vector<PolygonRegion> polygon_regions;
  std::vector<std::int32_t> generated_ids;  // the decoder's output, special tokens included
  // The regions carry scores (the probabilities of the tokens they were read from); false for text
  // answers and where the tokens could not be matched to the text.
  bool scored = false;
};

}  // namespace vlm
