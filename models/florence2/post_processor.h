#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "vlm/model.h"

// Florence-2 answer parsing, identical to transformers' Florence2Processor.post_process_generation
// (transformers 5.23): the same regular-expression semantics (hand-written, linear time), the same
// float32 dequantization ((bin + 0.5) * size / 1000, truncated to int), typed: vlm::task_answer_json
// (vlm/model_json.h) writes the answer back in transformers' output shape. Torch-free.
//
//   auto parsed = post_process_generation("</s><s>car<loc_52><loc_0><loc_999><loc_620></s>", "<OD>",
//                                         {.width = 640, .height = 480});
//   // parsed.boxes: one Detection "car" [33, 0, 639, 297]; as JSON
//   // {"<OD>": {"bboxes": [[33, 0, 639, 297]], "labels": ["car"]}}
//
// transformers' output per task (coordinates are whole pixels of the original image), and where
// each part lands here:
//   pure text tasks                     "<CAPTION>": "text"                         answer.text
//   <OD>, <DENSE_REGION_CAPTION>,       {"bboxes": [[x0, y0, x1, y1], ...],         boxes
//   <REGION_PROPOSAL>, phrase grounding  "labels": [...]}
//   <OCR_WITH_REGION>                   {"quad_boxes": [[x0, y0, ..., x3, y3], ...], answer.quad_regions
//                                        "labels": [...]}
//   segmentation tasks                  {"polygons": [[[x, y, ...], ...], ...],     answer.polygon_regions
//                                        "labels": [...]}
//   <OPEN_VOCABULARY_DETECTION>         {"bboxes", "bboxes_labels", "polygons",     boxes and
//                                        "polygons_labels"}                          answer.polygon_regions
namespace vlm::florence2 {

struct ImageSize {
  int width = 0;
  int height = 0;
};

// The post-processor configuration of the original (Microsoft) checkpoints.
struct PostProcessorConfig {
  // <OCR_WITH_REGION>: lines whose quad (shoelace over its first three edges, as transformers
  // computes it) covers less than this fraction of the image are dropped; 0 keeps all.
  double ocr_area_threshold = 0.01;
  // <CAPTION_TO_PHRASE_GROUNDING>: phrases that are never grounded ("it", "the image", ...).
  std::vector<std::string> banned_grounding_tokens = default_banned_grounding_tokens();

  static std::vector<std::string> default_banned_grounding_tokens();
};

// Byte range [begin, end) of the text a region was parsed from, as offsets into the text with every
// <s>, </s> and <pad> removed (what the parsers read).
struct TextRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};

// The text one region of an answer came from: its label's text (empty when it has none) and its
// <loc_*> tokens, never <poly>, </poly> or <sep>.
struct RegionSource {
  TextRange label;
  std::vector<TextRange> locations;
};

// A task's answer, its boxes (scores left at 0; generated_ids left to the caller), and where each
// region came from, in the order boxes, then polygon regions, or quad regions (none for pure text).
struct ParsedAnswer {
  TaskAnswer answer;
  std::vector<Detection> boxes;
  std::vector<RegionSource> sources;
};

// text: the generated ids decoded with special tokens kept (<s>, </s>, <loc_N>, <poly>, ...).
// Throws vlm::Error kInvalidArgument for a non-positive image size.
ParsedAnswer post_process_generation(std::string_view text, std::string_view task, ImageSize image_size,
                                     const PostProcessorConfig& config = {});

// transformers' dequantization of one loc bin along an axis of the given length.
int dequantize_bin(long long bin, int axis_size);

}  // namespace vlm::florence2
