#include "vlm/annotate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace vlm {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

cv::Scalar class_colour(int class_id) {
  // Golden-ratio hue steps keep neighbouring class ids visually apart.
  double hue = std::fmod(0.618033988749895 * (class_id + 1), 1.0) * 180.0;
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, 230));
  cv::Mat rgb;
  cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  auto pixel = rgb.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(pixel[0]), static_cast<double>(pixel[1]), static_cast<double>(pixel[2])};
}

// A caption and where its filled background goes; the text sits inside that rectangle.
struct Label {
  std::string text;
  cv::Scalar colour;
  double font_scale = 1.0;
  int thickness = 1;
  int pad = 1;
  int text_height = 0;
  cv::Rect area;
};

cv::Size label_size(const std::string& text, double font_scale, int thickness, int pad, int& text_height) {
  int baseline = 0;
  cv::Size size = cv::getTextSize(text, kFont, font_scale, thickness, &baseline);
  text_height = size.height;
  return {size.width + 2 * pad, size.height + baseline + 2 * pad};
}

cv::Rect clamp_inside(cv::Rect rect, cv::Size image) {
  rect.x = std::clamp(rect.x, 0, std::max(0, image.width - rect.width));
  rect.y = std::clamp(rect.y, 0, std::max(0, image.height - rect.height));
  return rect;
}

bool overlaps_any(const cv::Rect& rect, const std::vector<Label>& placed) {
  return std::any_of(placed.begin(), placed.end(), [&](const Label& l) { return (l.area & rect).area() > 0; });
}

// Above the box, else inside its top edge, below it, inside its bottom edge; each clamped into
// the image. Where all four are taken by earlier labels (boxes crowd), the first slides down or
// up a label height at a time to the nearest free row. Earlier detections (higher scores) win.
cv::Rect place(const Detection& d, cv::Size size, cv::Size image, const std::vector<Label>& placed) {
  const int x1 = static_cast<int>(std::lround(d.box[0]));
  const int y1 = static_cast<int>(std::lround(d.box[1]));
  const int y2 = static_cast<int>(std::lround(d.box[3]));
  const std::vector<cv::Rect> candidates = {
      clamp_inside({x1, y1 - size.height, size.width, size.height}, image),
      clamp_inside({x1, y1, size.width, size.height}, image),
      clamp_inside({x1, y2, size.width, size.height}, image),
      clamp_inside({x1, y2 - size.height, size.width, size.height}, image),
  };
  for (const cv::Rect& rect : candidates) {
    if (!overlaps_any(rect, placed)) return rect;
  }
  const cv::Rect first = candidates.front();
  for (int step = 1; step * size.height < image.height; ++step) {
    for (int direction : {1, -1}) {
      cv::Rect moved = first + cv::Point(0, direction * step * size.height);
      if (moved.y < 0 || moved.y + moved.height > image.height) continue;
      if (!overlaps_any(moved, placed)) return moved;
    }
  }
  return first;  // no free row: overlap rather than drop the label
}

}  // namespace

cv::Mat draw_detections(const Image& image, const ImageResult& result) {
  cv::Mat canvas = image.rgb.clone();
  const cv::Size bounds(canvas.cols, canvas.rows);
  const int thickness = std::max(1, static_cast<int>(std::lround(std::max(canvas.cols, canvas.rows) / 400.0)));
  const double font_scale = std::max(0.4, thickness / 3.0);

  std::vector<Label> labels;
  labels.reserve(result.detections.size());
  for (const Detection& d : result.detections) {
    Label label;
    char caption[160];
    std::snprintf(caption, sizeof(caption), "%s %.2f", d.label.c_str(), d.score);
    label.text = caption;
    label.colour = class_colour(d.class_id);
    label.font_scale = font_scale;
    label.thickness = thickness;
    label.pad = thickness;
    cv::Size size = label_size(label.text, label.font_scale, label.thickness, label.pad, label.text_height);
    // A caption wider than the image is drawn smaller rather than cut off.
    if (size.width > bounds.width) {
      label.font_scale *= static_cast<double>(bounds.width) / size.width;
      label.thickness = 1;
      label.pad = 1;
      size = label_size(label.text, label.font_scale, label.thickness, label.pad, label.text_height);
    }
    label.area = place(d, size, bounds, labels);
    labels.push_back(std::move(label));
  }

  // Every box first, then every label, so no later box is drawn across an earlier caption.
  for (const Detection& d : result.detections) {
    cv::rectangle(canvas, cv::Point(static_cast<int>(d.box[0]), static_cast<int>(d.box[1])),
                  cv::Point(static_cast<int>(d.box[2]), static_cast<int>(d.box[3])), class_colour(d.class_id),
                  thickness, cv::LINE_AA);
  }
  for (const Label& label : labels) {
    cv::rectangle(canvas, label.area, label.colour, cv::FILLED);
    cv::putText(canvas, label.text, cv::Point(label.area.x + label.pad, label.area.y + label.pad + label.text_height),
                kFont, label.font_scale, cv::Scalar(255, 255, 255), label.thickness, cv::LINE_AA);
  }
  return canvas;
}

}  // namespace vlm
