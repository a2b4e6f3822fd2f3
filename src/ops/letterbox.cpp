#include "vlm/ops/letterbox.h"

#include <algorithm>
#include <cmath>

namespace vlm::ops {
namespace {

// Python's round(): ties go to the even neighbour (std::nearbyint in the default rounding mode).
int python_round(double value) { return static_cast<int>(std::nearbyint(value)); }

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

}  // namespace vlm::ops
