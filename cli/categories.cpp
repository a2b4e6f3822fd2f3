#include "categories.h"

#include <array>
#include <string_view>

namespace vlm::cli {
namespace {

constexpr std::array<std::string_view, 80> kCoco80 = {
    "person",         "bicycle",    "car",           "motorcycle",    "airplane",     "bus",           "train",
    "truck",          "boat",       "traffic light", "fire hydrant",  "stop sign",    "parking meter", "bench",
    "bird",           "cat",        "dog",           "horse",         "sheep",        "cow",           "elephant",
    "bear",           "zebra",      "giraffe",       "backpack",      "umbrella",     "handbag",       "tie",
    "suitcase",       "frisbee",    "skis",          "snowboard",     "sports ball",  "kite",          "baseball bat",
    "baseball glove", "skateboard", "surfboard",     "tennis racket", "bottle",       "wine glass",    "cup",
    "fork",           "knife",      "spoon",         "bowl",          "banana",       "apple",         "sandwich",
    "orange",         "broccoli",   "carrot",        "hot dog",       "pizza",        "donut",         "cake",
    "chair",          "couch",      "potted plant",  "bed",           "dining table", "toilet",        "tv",
    "laptop",         "mouse",      "remote",        "keyboard",      "cell phone",   "microwave",     "oven",
    "toaster",        "sink",       "refrigerator",  "book",          "clock",        "vase",          "scissors",
    "teddy bear",     "hair drier", "toothbrush"};

// COCO's category ids of its 80 detection classes (the ids of instances_*.json).
constexpr std::array<int, 80> kCoco91Ids = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
    60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

bool is_coco80(const std::vector<std::string>& names) {
  if (names.size() != kCoco80.size()) return false;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != kCoco80[i]) return false;
  }
  return true;
}

}  // namespace

Categories::Categories(std::vector<std::string> class_names)
    : names_(std::move(class_names)), open_vocabulary_(names_.empty()), coco80_(is_coco80(names_)) {}

int Categories::index_of(int class_id, const std::string& label) {
  if (!open_vocabulary_) return class_id;
  auto it = by_label_.find(label);
  if (it != by_label_.end()) return it->second;
  int index = static_cast<int>(names_.size());
  names_.push_back(label);
  by_label_.emplace(label, index);
  return index;
}

int Categories::coco_id(int index) const {
  if (coco80_ && index >= 0 && index < static_cast<int>(kCoco91Ids.size())) return kCoco91Ids[index];
  return index + 1;
}

}  // namespace vlm::cli
