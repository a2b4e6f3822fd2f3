// The pure parts of `vlmserve detect`'s outputs and inputs: glob expansion (against Python's
// glob(recursive=True) semantics: '**' spans folders, hidden entries only by a dotted pattern), COCO
// category ids (COCO's own for its 80 classes), class indices of open-vocabulary labels and YOLO label
// lines. The end-to-end checks against yolov5 and pycocotools are tests/integration/test_cli_outputs.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "categories.h"
#include "detection_files.h"
#include "glob_pattern.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

class GlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("vlm-glob-" + std::to_string(::getpid()));
    for (const char* file : {"a.jpg", "b.png", ".hidden.jpg", "x/c.jpg", "x/y/d.jpg", ".dot/e.jpg", "x/y/f.txt"}) {
      fs::create_directories((root_ / file).parent_path());
      std::ofstream(root_ / file) << "x";
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  std::vector<std::string> names(const std::string& pattern) {
    std::vector<std::string> out;
    for (const fs::path& p : expand_glob((root_ / pattern).string())) out.push_back(fs::relative(p, root_).string());
    return out;
  }

  fs::path root_;
};

TEST_F(GlobTest, StarQuestionAndBrackets) {
  EXPECT_EQ(names("*.jpg"), (std::vector<std::string>{"a.jpg"}));
  EXPECT_EQ(names("?.[jp][pn]g"), (std::vector<std::string>{"a.jpg", "b.png"}));
  EXPECT_EQ(names(".*.jpg"), (std::vector<std::string>{".hidden.jpg"}));
  EXPECT_EQ(names("x/*/d.jpg"), (std::vector<std::string>{"x/y/d.jpg"}));
  EXPECT_TRUE(names("*.webp").empty());
  EXPECT_TRUE(names("nowhere/*.jpg").empty());
}

TEST_F(GlobTest, DoubleStarSpansFoldersButNotHiddenOnes) {
  EXPECT_EQ(names("**/*.jpg"), (std::vector<std::string>{"a.jpg", "x/c.jpg", "x/y/d.jpg"}));
  EXPECT_EQ(names("x/**/*.jpg"), (std::vector<std::string>{"x/c.jpg", "x/y/d.jpg"}));
}

TEST(IsGlob, Wildcards) {
  EXPECT_TRUE(is_glob("photos/*.jpg"));
  EXPECT_TRUE(is_glob("a?.png"));
  EXPECT_TRUE(is_glob("[ab].png"));
  EXPECT_FALSE(is_glob("photos/bus.jpg"));
}

std::vector<std::string> coco80_names() {
  // The class names COCO-trained YOLO exports carry, in their order.
  return {
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
}

TEST(Categories, CocoClassesGetCocoIds) {
  Categories coco(coco80_names());
  // instances_val2017.json: person 1, bus 6, backpack 27, dining table 67, toothbrush 90.
  EXPECT_EQ(coco.coco_id(0), 1);
  EXPECT_EQ(coco.coco_id(5), 6);
  EXPECT_EQ(coco.coco_id(24), 27);
  EXPECT_EQ(coco.coco_id(60), 67);
  EXPECT_EQ(coco.coco_id(79), 90);
  std::vector<std::string> renamed = coco80_names();
  renamed[79] = "brush";
  EXPECT_EQ(Categories(renamed).coco_id(79), 80);
}

TEST(Categories, OpenVocabularyLabelsNumberedByFirstAppearance) {
  Categories labels({});
  EXPECT_TRUE(labels.open_vocabulary());
  EXPECT_EQ(labels.index_of(-1, "car"), 0);
  EXPECT_EQ(labels.index_of(-1, "wheel"), 1);
  EXPECT_EQ(labels.index_of(-1, "car"), 0);
  EXPECT_EQ(labels.names(), (std::vector<std::string>{"car", "wheel"}));
  EXPECT_EQ(labels.coco_id(1), 2);
}

TEST(YoloLabels, NormalisedCentreAndSizeAsPercentG) {
  ImageResult result;
  result.width = 800;
  result.height = 400;
  result.detections = {{"bus", 5, 0.8765432F, {100, 50, 300, 250}}};
  Categories categories(coco80_names());
  EXPECT_EQ(yolo_label_text(result, categories, false), "5 0.25 0.375 0.25 0.5\n");
  EXPECT_EQ(yolo_label_text(result, categories, true), "5 0.25 0.375 0.25 0.5 0.876543\n");
  result.detections.clear();
  EXPECT_EQ(yolo_label_text(result, categories, true), "");
}

}  // namespace
}  // namespace vlm::cli
