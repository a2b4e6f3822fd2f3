#include "vlm/ops/letterbox.h"

#include <algorithm>
#include <cmath>

namespace vlm::ops {
namespace {

// Python's round(): ties go to the even neighbour (std::nearbyint in the default rounding mode).
int python_round(double value) { return static_cast<int>(std::nearbyint(value)); }

// OpenCV's saturate_cast<short>(float): cvRound, ties to even in the default rounding mode.
std::int32_t q11_weight(float weight) {
  return static_cast<std::int32_t>(std::nearbyint(weight * static_cast<float>(1 << kLinearWeightBits)));
}

enum class Edge { kClampFraction, kClampIndex };

LinearTaps linear_taps(int source_size, int target_size, Edge edge) {
  // cv::resize computes the inverse scale from the sizes, then the scale from it, both in double.
  const double inverse_scale = static_cast<double>(target_size) / source_size;
  const double scale = 1.0 / inverse_scale;
  LinearTaps taps;
  for (auto* column : {&taps.first, &taps.second, &taps.first_weight, &taps.second_weight}) {
    column->resize(static_cast<std::size_t>(target_size));
  }
  for (int i = 0; i < target_size; ++i) {
    float fraction = static_cast<float>((i + 0.5) * scale - 0.5);
    int index = static_cast<int>(std::floor(fraction));
    fraction -= static_cast<float>(index);
    if (edge == Edge::kClampFraction && (index < 0 || index >= source_size - 1)) {
      fraction = 0.f;
      index = index < 0 ? 0 : source_size - 1;
    }
    const auto at = static_cast<std::size_t>(i);
    taps.first[at] = std::clamp(index, 0, source_size - 1);
    taps.second[at] = std::clamp(index + 1, 0, source_size - 1);
    taps.first_weight[at] = q11_weight(1.f - fraction);
    taps.second_weight[at] = q11_weight(fraction);
  }
  return taps;
}

}  // namespace

Letterbox compute_letterbox(int width, int height, int target_width, int target_height) {
  double r = std::min(static_cast<double>(target_height) / height, static_cast<double>(target_width) / width);
  Letterbox box;
  box.resized_width = std::max(python_round(width * r), 1);
  box.resized_height = std::max(python_round(height * r), 1);
  double dw = (target_width - box.resized_width) / 2.0;
  double dh = (target_height - box.resized_height) / 2.0;
  box.top = python_round(dh - 0.1);
  box.bottom = python_round(dh + 0.1);
  box.left = python_round(dw - 0.1);
  box.right = python_round(dw + 0.1);
  return box;
}

LinearTaps linear_column_taps(int source_size, int target_size) {
  return linear_taps(source_size, target_size, Edge::kClampFraction);
}

LinearTaps linear_row_taps(int source_size, int target_size) {
  return linear_taps(source_size, target_size, Edge::kClampIndex);
}

}  // namespace vlm::ops
