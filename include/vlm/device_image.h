#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>

#include <memory>

namespace vlm {

// An image decoded onto a device (NvjpegDecoder), as vlm::Image::device holds it.
//
// Its pixels are written on the decoder's own stream and read on a model's: `ready` (recorded on the
// decoder's stream after the last write) orders the reader after the writer on the device, and the
// reader tells the caching allocator which stream uses the memory, so that when the image is freed its
// block is not handed out again before the reader's work is done. use_on_stream does both.
struct DeviceImage {
  at::Tensor rgb;  // uint8 [H, W, 3], RGB, contiguous, EXIF orientation applied
  // One event for every image of a decoded batch; null only for pixels the reader's own stream wrote.
  std::shared_ptr<const c10::Event> ready;
};

// Makes `stream` wait for the image's pixels (on the device: no host sync) and records that it reads
// them (the allocator's recordStream). Call it before enqueuing the first read on `stream`.
void use_on_stream(const DeviceImage& image, const c10::Stream& stream);

}  // namespace vlm
