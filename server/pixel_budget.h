#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vlm::server {

// Sums the pixels the images' headers declare and throws vlm::Error too_many_pixels when the
// request as a whole is over `max_request_pixels`, before any image is decoded: each image alone
// may be within --max-pixels while their decoded copies together are not. Images whose header
// cannot be read count 0 here; decoding reports them with their own error. A single image is
// left to --max-pixels, which the budget is never below.
void check_request_pixels(const std::vector<std::string>& images, std::uint64_t max_request_pixels);

}  // namespace vlm::server
