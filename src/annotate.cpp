#include "vlm/annotate.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgproc.hpp>

namespace vlm {
namespace {

cv::Scalar class_colour(int class_id) {
  // Golden-ratio hue steps keep neighbouring class ids visually apart.
  double hue = std::fmod(0.618033988749895 * (class_id + 1), 1.0) * 180.0;
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, 230));
  cv::Mat rgb;
  cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  auto pixel = rgb.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(pixel[0]), static_cast<double>(pixel[1]), static_cast<double>(pixel[2])};
}

}  // namespace

cv::Mat draw_detections(const Image& image, const ImageResult& result) {
  cv::Mat canvas = image.rgb.clone();
  int thickness = std::max(1, static_cast<int>(std::lround(std::max(canvas.cols, canvas.rows) / 400.0)));
  double font_scale = std::max(0.4, thickness / 3.0);
  for (const Detection& d : result.detections) {
    cv::Scalar colour = class_colour(d.class_id);
    cv::Point top_left(static_cast<int>(d.box[0]), static_cast<int>(d.box[1]));
    cv::Point bottom_right(static_cast<int>(d.box[2]), static_cast<int>(d.box[3]));
    cv::rectangle(canvas, top_left, bottom_right, colour, thickness, cv::LINE_AA);
    char caption[160];
    std::snprintf(caption, sizeof(caption), "%s %.2f", d.label.c_str(), d.score);
    int baseline = 0;
    cv::Size text = cv::getTextSize(caption, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    int y = std::max(text.height + baseline, top_left.y);
    cv::rectangle(canvas, cv::Point(top_left.x, y - text.height - baseline), cv::Point(top_left.x + text.width, y),
                  colour, cv::FILLED);
    cv::putText(canvas, caption, cv::Point(top_left.x, y - baseline), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
  }
  return canvas;
}

}  // namespace vlm
