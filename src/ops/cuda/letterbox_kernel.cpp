// The device half of the letterbox, in ATen ops rather than a CUDA kernel: integer gathers and
// shifts give the same bytes on every device, so the CPU unit test (tests/unit/test_letterbox_batch.cpp)
// checks exactly what runs on the GPU.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../letterbox_kernels.h"

namespace vlm::ops {
namespace {

// Images per pass: bounds the int64 index and int32 intermediates (about 100 bytes per canvas pixel,
// 40 MB per 640x640 image) whatever the batch size.
constexpr std::int64_t kImagesPerPass = 8;

constexpr std::int64_t kFirst = 0;
constexpr std::int64_t kSecond = 1;
constexpr std::int64_t kFirstWeight = 2;
constexpr std::int64_t kSecondWeight = 3;
constexpr int kPadValue = 114;

std::int64_t align8(std::int64_t bytes) { return (bytes + 7) / 8 * 8; }

// One image's four table rows along one axis of the canvas: `pad_before` entries of padding, the
// resized extent from `taps` (indices scaled by `stride` and offset by `base`), padding after.
void fill_axis(const LinearTaps& taps, std::int64_t base, std::int64_t stride, int pad_before, std::int64_t extent,
               std::int64_t* table) {
  std::fill(table + kFirst * extent, table + (kFirst + 1) * extent, -1);
  std::fill(table + kSecond * extent, table + (kSecond + 1) * extent, -1);
  std::fill(table + kFirstWeight * extent, table + (kSecondWeight + 1) * extent, 0);
  for (std::size_t i = 0; i < taps.first.size(); ++i) {
    const auto at = pad_before + static_cast<std::int64_t>(i);
    table[kFirst * extent + at] = base + taps.first[i] * stride;
    table[kSecond * extent + at] = base + taps.second[i] * stride;
    table[kFirstWeight * extent + at] = taps.first_weight[i];
    table[kSecondWeight * extent + at] = taps.second_weight[i];
  }
}

}  // namespace

PackedLayout packed_layout(std::span<const Image> images, int target_width, int target_height) {
  PackedLayout layout;
  layout.batch = static_cast<std::int64_t>(images.size());
  layout.target_width = target_width;
  layout.target_height = target_height;
  for (const Image& image : images) {
    if (!image.on_device()) layout.pixel_bytes += std::int64_t{image.width()} * image.height() * 3;
  }
  layout.rows_offset = align8(layout.pixel_bytes);
  layout.columns_offset = layout.rows_offset + layout.batch * 4 * target_height * 8;
  layout.total_bytes = layout.columns_offset + layout.batch * 4 * target_width * 8;
  return layout;
}

void pack_images(std::span<const Image> images, std::span<const Letterbox> boxes, const PackedLayout& layout,
                 std::uint8_t* buffer) {
  auto* rows = reinterpret_cast<std::int64_t*>(buffer + layout.rows_offset);
  auto* columns = reinterpret_cast<std::int64_t*>(buffer + layout.columns_offset);
  std::int64_t host_pixel = 0;
  std::int64_t device_pixel = layout.pixel_bytes / 3;  // device images follow the host ones
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Image& image = images[i];
    const int width = image.width();
    const int height = image.height();
    std::int64_t& pixel = image.on_device() ? device_pixel : host_pixel;
    if (!image.on_device()) {
      const auto row_bytes = static_cast<std::size_t>(width) * 3;
      for (int y = 0; y < height; ++y) std::memcpy(buffer + (pixel * 3) + y * row_bytes, image.rgb.ptr(y), row_bytes);
    }
    const Letterbox& box = boxes[i];
    const auto n = static_cast<std::int64_t>(i);
    fill_axis(linear_row_taps(height, box.resized_height), pixel, width, box.top, layout.target_height,
              rows + n * 4 * layout.target_height);
    fill_axis(linear_column_taps(width, box.resized_width), 0, 1, box.left, layout.target_width,
              columns + n * 4 * layout.target_width);
    pixel += std::int64_t{width} * height;
  }
}

at::Tensor letterbox_packed(const at::Tensor& packed, const PackedLayout& layout,
                            std::span<const at::Tensor> device_pixels) {
  const std::int64_t batch = layout.batch;
  const std::int64_t height = layout.target_height;
  const std::int64_t width = layout.target_width;
  // One tensor of pixels for the gathers below: host then device images, as pack_images indexed them.
  // Joining them costs one device copy of the device images (a 1080p photo: 6 MB), far less than
  // the gathers; a batch of one device image needs none.
  std::vector<at::Tensor> parts;
  if (layout.pixel_bytes > 0 || device_pixels.empty()) parts.push_back(packed.narrow(0, 0, layout.pixel_bytes));
  for (const at::Tensor& image : device_pixels) parts.push_back(image.reshape({-1}));
  const at::Tensor pixels = (parts.size() == 1 ? parts.front() : at::cat(parts)).view({-1, 3});
  const at::Tensor rows =
      packed.narrow(0, layout.rows_offset, batch * 4 * height * 8).view(at::kLong).view({batch, 4, height});
  const at::Tensor columns =
      packed.narrow(0, layout.columns_offset, batch * 4 * width * 8).view(at::kLong).view({batch, 4, width});
  at::Tensor out = at::empty({batch, height, width, 3}, packed.options());
  for (std::int64_t start = 0; start < batch; start += kImagesPerPass) {
    const std::int64_t count = std::min(kImagesPerPass, batch - start);
    const at::Tensor r = rows.narrow(0, start, count);
    const at::Tensor c = columns.narrow(0, start, count);
    // [n, H, 1] and [n, 1, W]: each canvas pixel's index is its row's start plus its column.
    const at::Tensor row0 = r.select(1, kFirst).clamp_min(0).unsqueeze(2);
    const at::Tensor row1 = r.select(1, kSecond).clamp_min(0).unsqueeze(2);
    const at::Tensor col0 = c.select(1, kFirst).clamp_min(0).unsqueeze(1);
    const at::Tensor col1 = c.select(1, kSecond).clamp_min(0).unsqueeze(1);
    const at::Tensor alpha0 = c.select(1, kFirstWeight).to(at::kInt).view({count, 1, width, 1});
    const at::Tensor alpha1 = c.select(1, kSecondWeight).to(at::kInt).view({count, 1, width, 1});
    const at::Tensor beta0 = r.select(1, kFirstWeight).to(at::kInt).view({count, height, 1, 1});
    const at::Tensor beta1 = r.select(1, kSecondWeight).to(at::kInt).view({count, height, 1, 1});
    auto tap = [&](const at::Tensor& row, const at::Tensor& column) {
      return pixels.index_select(0, (row + column).reshape({-1})).view({count, height, width, 3}).to(at::kInt);
    };
    // OpenCV's horizontal pass (Q11 sums, up to 255 * 2048), then its vertical pass on each row's sum
    // shifted right by 4, so that the products fit 32 bits as in its SIMD code.
    at::Tensor first = tap(row0, col0).mul_(alpha0).add_(tap(row0, col1).mul_(alpha1));
    at::Tensor second = tap(row1, col0).mul_(alpha0).add_(tap(row1, col1).mul_(alpha1));
    first.bitwise_right_shift_(4).mul_(beta0).bitwise_right_shift_(16);
    second.bitwise_right_shift_(4).mul_(beta1).bitwise_right_shift_(16);
    // OpenCV's vector path saturates to 0..255 (its scalar path cannot leave that range).
    first.add_(second).add_(2).bitwise_right_shift_(2).clamp_(0, 255);
    const at::Tensor inside = (r.select(1, kFirst) >= 0).unsqueeze(2) & (c.select(1, kFirst) >= 0).unsqueeze(1);
    first.masked_fill_(inside.logical_not().unsqueeze(3), kPadValue);
    out.narrow(0, start, count).copy_(first);
  }
  return out;
}

}  // namespace vlm::ops
