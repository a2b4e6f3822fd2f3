#pragma once

#include <filesystem>
#include <set>
#include <string>

#include "categories.h"
#include "vlm/model.h"

namespace vlm::cli {

// A YOLO label file's text: one "class x_center y_center width height[ score]" line per detection,
// normalised by the image size, numbers as printf's %g writes them (what yolov5's detect.py and
// Ultralytics write with save_txt / save_conf).
std::string yolo_label_text(const ImageResult& result, Categories& categories, bool with_score);

// Writes each detection's crop as DIR/<label>/<stem>.jpg, then <stem>2.jpg, <stem>3.jpg, ... for
// further crops of one class, as Ultralytics' save_crop lays them out, with its margins: the box
// grown by 2% plus 10 pixels in width and height, clipped to the image. Returns the files written.
class CropWriter {
 public:
  explicit CropWriter(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // Throws kIo when a crop cannot be written.
  std::vector<std::filesystem::path> write(const Image& image, const ImageResult& result, const std::string& stem);

 private:
  std::filesystem::path dir_;
  std::set<std::string> used_;  // "<class folder>/<file name>" written in this run
};

// A file name in `dir` not yet used in this run, so same-named inputs from different folders do not
// overwrite each other: <stem><ext>, then <stem>_1<ext>, ...
std::filesystem::path unique_output(const std::filesystem::path& dir, const std::string& stem, const std::string& ext,
                                    std::set<std::string>& used);

}  // namespace vlm::cli
