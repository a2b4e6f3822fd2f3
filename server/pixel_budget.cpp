#include "pixel_budget.h"

#include <cstdint>
#include <span>

#include "vlm/error.h"
#include "vlm/image.h"

namespace vlm::server {

void check_request_pixels(const std::vector<std::string>& images, std::uint64_t max_request_pixels) {
  // One image is --max-pixels' business (the budget is never below it); its error names the image.
  if (images.size() < 2) return;
  std::uint64_t total = 0;
  for (const auto& bytes : images) {
    try {
      const ImageHeader header =
          probe_image(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      const std::uint64_t pixels = std::uint64_t{header.width} * header.height;
      total = pixels > UINT64_MAX - total ? UINT64_MAX : total + pixels;
    } catch (const Error&) {
      continue;
    }
  }
  if (total > max_request_pixels) {
    throw Error(ErrorCode::kTooManyPixels, std::to_string(images.size()) + " images declare " + std::to_string(total) +
                                               " pixels in total, over the per-request limit of " +
                                               std::to_string(max_request_pixels) + " (--max-request-pixels)");
  }
}

}  // namespace vlm::server
