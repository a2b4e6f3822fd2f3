#pragma once

#include <opencv2/core/mat.hpp>

#include "vlm/model.h"

namespace vlm {

// The image with each detection's box and "label score" drawn, as RGB; one colour per class.
cv::Mat draw_detections(const Image& image, const ImageResult& result);

}  // namespace vlm
