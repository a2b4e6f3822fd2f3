// draw_detections on blank images, judged by its pixels: a label's text is drawn in full however
// close its box is to an edge, and crowded labels do not hide each other's text.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "vlm/annotate.h"

namespace vlm {
namespace {

constexpr int kWidth = 640;
constexpr int kHeight = 480;

Detection detection(std::string label, int class_id, float x1, float y1, float x2, float y2) {
  return {std::move(label), class_id, 0.87F, {x1, y1, x2, y2}};
}

// Caption text is white; box and label colours are saturated (no channel above ~230 with the others
// far below), so a pixel whose every channel is bright belongs to the text.
int text_pixels(const std::vector<Detection>& detections) {
  Image image{cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar(0, 0, 0))};
  ImageResult result;
  result.detections = detections;
  cv::Mat drawn = draw_detections(image, result);
  int count = 0;
  for (int y = 0; y < drawn.rows; ++y) {
    for (int x = 0; x < drawn.cols; ++x) {
      const auto& p = drawn.at<cv::Vec3b>(y, x);
      if (std::min({p[0], p[1], p[2]}) > 200) ++count;
    }
  }
  return count;
}

TEST(Annotate, LabelsNearEveryEdgeAreDrawnInFull) {
  const int centred = text_pixels({detection("traffic light", 9, 300, 200, 340, 260)});
  ASSERT_GT(centred, 100);
  const std::vector<std::pair<const char*, Detection>> at_edges = {
      {"right edge", detection("traffic light", 9, kWidth - 12, 200, kWidth - 1, 260)},
      {"top right corner", detection("traffic light", 9, kWidth - 30, 0, kWidth - 1, 20)},
      {"top edge", detection("traffic light", 9, 300, 0, 340, 40)},
      {"left edge, past it", detection("traffic light", 9, -20, 100, 30, 160)},
      {"bottom right, whole image height", detection("traffic light", 9, kWidth - 5, 0, kWidth - 1, kHeight - 1)},
      {"bottom edge", detection("traffic light", 9, 300, kHeight - 3, 340, kHeight - 1)},
  };
  for (const auto& [where, d] : at_edges) EXPECT_EQ(text_pixels({d}), centred) << where;
}

TEST(Annotate, CrowdedLabelsDoNotHideEachOther) {
  // Five boxes at (almost) the same place, as a crowd of people gives, and a row along the top edge.
  std::vector<Detection> crowd;
  for (int i = 0; i < 5; ++i) {
    crowd.push_back(detection("person" + std::to_string(i), i, 200 + 2 * i, 150 + i, 320, 400));
  }
  for (int i = 0; i < 4; ++i) crowd.push_back(detection("car" + std::to_string(i), 2, 20 + 8 * i, 0, 200, 60));
  int alone = 0;
  for (const Detection& d : crowd) alone += text_pixels({d});
  EXPECT_EQ(text_pixels(crowd), alone);
}

TEST(Annotate, CaptionWiderThanTheImageShrinksToFit) {
  // A thumbnail: at the normal size this caption is ~270 pixels wide.
  Image image{cv::Mat(100, 200, CV_8UC3, cv::Scalar(0, 0, 0))};
  ImageResult result;
  result.detections = {detection("a very long class name indeed", 1, 120, 40, 190, 90)};
  cv::Mat drawn = draw_detections(image, result);
  int leftmost = drawn.cols;
  int rightmost = -1;
  for (int y = 0; y < drawn.rows; ++y) {
    for (int x = 0; x < drawn.cols; ++x) {
      const auto& p = drawn.at<cv::Vec3b>(y, x);
      if (std::min({p[0], p[1], p[2]}) > 200) {
        leftmost = std::min(leftmost, x);
        rightmost = std::max(rightmost, x);
      }
    }
  }
  // The text spans most of the width and ends inside it, clear of both edges.
  EXPECT_GT(rightmost - leftmost, drawn.cols / 2);
  EXPECT_GT(leftmost, 0);
  EXPECT_LT(rightmost, drawn.cols - 1);
}

}  // namespace
}  // namespace vlm
