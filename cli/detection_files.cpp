#include "detection_files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm::cli {
namespace {

std::string g(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

// A label is free text for open-vocabulary models: keep it one safe folder name.
std::string folder_name(const std::string& label) {
  std::string out = label;
  std::replace(out.begin(), out.end(), '/', '_');
  if (out.empty() || out.starts_with('.')) out = "_" + out;
  return out;
}

}  // namespace

std::string yolo_label_text(const ImageResult& result, Categories& categories, bool with_score) {
  std::string text;
  const double width = result.width;
  const double height = result.height;
  for (const Detection& d : result.detections) {
    const auto& b = d.box;
    text += std::to_string(categories.index_of(d.class_id, d.label));
    text += " " + g((b[0] + b[2]) / 2.0 / width) + " " + g((b[1] + b[3]) / 2.0 / height) + " " +
            g((b[2] - b[0]) / width) + " " + g((b[3] - b[1]) / height);
    if (with_score) text += " " + g(d.score);
    text += '\n';
  }
  return text;
}

std::vector<std::filesystem::path> CropWriter::write(const Image& image, const ImageResult& result,
                                                     const std::string& stem) {
  std::vector<std::filesystem::path> written;
  for (const Detection& d : result.detections) {
    const auto& b = d.box;
    // Ultralytics' save_one_box: xywh, w and h * 1.02 + 10, back to corners truncated to integers.
    double cx = (b[0] + b[2]) / 2.0;
    double cy = (b[1] + b[3]) / 2.0;
    double w = (b[2] - b[0]) * 1.02 + 10.0;
    double h = (b[3] - b[1]) * 1.02 + 10.0;
    auto clip = [](double v, int high) { return std::clamp(static_cast<int>(std::trunc(v)), 0, high); };
    int x1 = clip(cx - w / 2, image.width());
    int y1 = clip(cy - h / 2, image.height());
    int x2 = clip(cx + w / 2, image.width());
    int y2 = clip(cy + h / 2, image.height());
    if (x2 <= x1 || y2 <= y1) continue;
    std::string folder = folder_name(d.label);
    std::string name = stem + ".jpg";
    for (int n = 2; used_.contains(folder + "/" + name); ++n) name = stem + std::to_string(n) + ".jpg";
    used_.insert(folder + "/" + name);
    std::filesystem::path target = dir_ / folder / name;
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    cv::Mat bgr;
    cv::cvtColor(image.rgb(cv::Rect(x1, y1, x2 - x1, y2 - y1)), bgr, cv::COLOR_RGB2BGR);
    bool ok = false;
    try {
      ok = cv::imwrite(target.string(), bgr, {cv::IMWRITE_JPEG_QUALITY, 95});
    } catch (const cv::Exception&) {
      ok = false;
    }
    if (!ok) throw Error(ErrorCode::kIo, "cannot write crop " + target.string());
    written.push_back(target);
  }
  return written;
}

std::filesystem::path unique_output(const std::filesystem::path& dir, const std::string& stem, const std::string& ext,
                                    std::set<std::string>& used) {
  std::string name = stem + ext;
  for (int n = 1; used.contains(name); ++n) name = stem + "_" + std::to_string(n) + ext;
  used.insert(name);
  return dir / name;
}

}  // namespace vlm::cli
