#pragma once

#include <map>
#include <string>
#include <vector>

namespace vlm::cli {

// The class index of each detection in files that number classes (YOLO label files, COCO
// categories): the model's own class id, or, for an open-vocabulary model (Florence-2, no class
// list), an index given to each label in the order labels first appear in the run.
class Categories {
 public:
  explicit Categories(std::vector<std::string> class_names);

  // 0-based.
  int index_of(int class_id, const std::string& label);
  const std::vector<std::string>& names() const { return names_; }
  bool open_vocabulary() const { return open_vocabulary_; }
  // The COCO category id of an index: COCO's own ids (1..90, with gaps) when the classes are COCO's
  // 80 in their usual order, so results evaluate against COCO's annotation files as they are;
  // index + 1 otherwise (COCO ids start at 1).
  int coco_id(int index) const;

 private:
  std::vector<std::string> names_;
  std::map<std::string, int, std::less<>> by_label_;
  bool open_vocabulary_;
  bool coco80_;
};

}  // namespace vlm::cli
