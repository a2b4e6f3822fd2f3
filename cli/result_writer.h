#pragma once

#include <memory>
#include <ostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "categories.h"

namespace vlm::cli {

// Where `vlmserve detect` puts its records (one per image or video frame, the shape of
// POST /detect's, or an error record), in the --format asked for.
class ResultWriter {
 public:
  virtual ~ResultWriter() = default;
  // Throws kIo when the output cannot be written.
  virtual void write(const nlohmann::json& record) = 0;
  // After the last record: formats that are one document write it here.
  virtual void finish() {}
};

// Throws kInvalidArgument naming the value unless `format` is jsonl, coco or csv.
void check_result_format(std::string_view format);

// jsonl: each record as one JSON line, as it comes.
// coco: one COCO document at the end ({info, images, annotations, categories}; bbox [x, y, w, h]
//   with score; category ids from Categories::coco_id); failed inputs are left out (stderr has them).
// csv: a header, then one row per detection (path, frame, timestamp_s, width, height, class_id,
//   label, score, x1, y1, x2, y2, error); an image without detections gets one row with the
//   detection columns empty, a failed one a row with only path (and frame) and error.
std::unique_ptr<ResultWriter> make_result_writer(std::string_view format, std::ostream& out, Categories& categories);

}  // namespace vlm::cli
