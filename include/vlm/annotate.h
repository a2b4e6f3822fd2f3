#pragma once

#include <opencv2/core/mat.hpp>

#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm {

// The image with each detection's box and "label score" drawn, as RGB; one colour per class.
// Labels stay wholly inside the image and do not cover each other where boxes crowd: each goes
// above its box, else inside or below it, else to the nearest free row.
cv::Mat draw_detections(const Image& image, const ImageResult& result);

}  // namespace vlm
