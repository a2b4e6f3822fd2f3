#include "vlm/ops/orientation.h"

#include <ATen/ATen.h>

#include <string>

#include "vlm/error.h"

namespace vlm::ops {

at::Tensor apply_exif_orientation(const at::Tensor& image, int orientation) {
  if (image.dim() != 3) {
    throw Error(ErrorCode::kInvalidArgument,
                "EXIF orientation: image should be [H, W, C], got " + std::to_string(image.dim()) + "D");
  }
  // OpenCV's ExifTransform (imgcodecs/src/loadsave.cpp): 2-4 flip, 5-8 transpose first.
  constexpr std::int64_t kRows = 0;
  constexpr std::int64_t kColumns = 1;
  switch (orientation) {
    case 1: return image;
    case 2: return image.flip({kColumns});
    case 3: return image.flip({kRows, kColumns});
    case 4: return image.flip({kRows});
    case 5: return image.transpose(kRows, kColumns);
    case 6: return image.transpose(kRows, kColumns).flip({kColumns});
    case 7: return image.transpose(kRows, kColumns).flip({kRows, kColumns});
    case 8: return image.transpose(kRows, kColumns).flip({kRows});
    default:
      throw Error(ErrorCode::kInvalidArgument, "EXIF orientation must be 1..8, got " + std::to_string(orientation));
  }
}

}  // namespace vlm::ops
