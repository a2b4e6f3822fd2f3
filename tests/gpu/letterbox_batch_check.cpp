// The YOLO input made on CUDA (vlm::ops::LetterboxBatch: one pinned upload, letterbox on the device)
// against the CPU half (OpenCV) on the photos, in fp32 and fp16, also with device images (written on
// another stream, as nvJPEG's are) mixed into the batch, and the time of each per batch.
// Tolerance: the same bytes (every input value, times 255 and rounded, equal; fp32 values within
// 1e-6, the one-ulp difference of dividing by 255 on the device). Exits 77 (ctest: skipped) where no
// CUDA device is visible.
//   letterbox_batch_check [IMAGE_FOLDER]     (default: $VLM_ASSETS/images, searched recursively)
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vlm/device_image.h"
#include "vlm/image.h"
#include "vlm/ops/letterbox_batch.h"

namespace {

using vlm::Image;
using vlm::ops::Letterbox;
using vlm::ops::LetterboxBatch;

std::vector<Image> load_photos(const std::filesystem::path& folder) {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    const std::string extension = entry.path().extension().string();
    if (extension == ".jpg" || extension == ".png") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<Image> images;
  for (const auto& path : paths) images.push_back(vlm::load_image(path));
  return images;
}

// Mean milliseconds of make_input for the whole batch, the device waited for.
double time_ms(LetterboxBatch& letterbox, const std::vector<Image>& images, c10::Device device) {
  std::vector<Letterbox> boxes;
  letterbox.make_input(images, boxes);
  if (device.is_cuda()) c10::cuda::device_synchronize();
  constexpr int kRuns = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int run = 0; run < kRuns; ++run) letterbox.make_input(images, boxes);
  if (device.is_cuda()) c10::cuda::device_synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / kRuns;
}

}  // namespace

int main(int argc, char** argv) {
  if (c10::cuda::device_count() == 0) {
    std::printf("skipped: no CUDA device visible (this check needs a GPU)\n");
    return 77;
  }
  const char* assets = std::getenv("VLM_ASSETS");
  const std::filesystem::path folder = argc > 1
                                           ? std::filesystem::path(argv[1])
                                           : std::filesystem::path(assets ? assets : "../shared/assets") / "images";
  const std::vector<Image> images = load_photos(folder);
  if (images.size() < 8) {
    std::printf("FAIL: %zu photos under %s, expected at least 8\n", images.size(), folder.c_str());
    return 1;
  }
  const c10::Device cuda(c10::kCUDA, 0);
  int failures = 0;
  for (const auto& [width, height] : {std::pair{640, 640}, std::pair{333, 257}}) {
    std::vector<Letterbox> boxes;
    LetterboxBatch on_cpu(width, height, c10::Device(c10::kCPU), at::kFloat);
    const at::Tensor want = on_cpu.make_input(images, boxes);
    for (const at::ScalarType dtype : {at::kFloat, at::kHalf}) {
      LetterboxBatch on_cuda(width, height, cuda, dtype);
      // Twice without waiting in between: the second batch reuses the staging buffer.
      const at::Tensor first = on_cuda.make_input(images, boxes).to(at::kFloat).cpu();
      const at::Tensor again = on_cuda.make_input(images, boxes).to(at::kFloat).cpu();
      const at::Tensor levels = (first.mul(255).round() - want.mul(255).round()).abs();
      const double max_levels = levels.max().item<double>();
      const double mean_levels = levels.mean().item<double>();
      const double max_value = (first - want).abs().max().item<double>();
      const bool ok = max_levels == 0 && at::equal(first, again) && (dtype == at::kHalf || max_value <= 1e-6);
      failures += ok ? 0 : 1;
      std::printf("%s %dx%d %s, %zu photos: max %.0f levels (mean %.6f), max value diff %.3g%s\n", ok ? "PASS" : "FAIL",
                  width, height, dtype == at::kHalf ? "fp16" : "fp32", images.size(), max_levels, mean_levels,
                  max_value, at::equal(first, again) ? "" : ", second batch differs");
    }
  }
  // Device images (as NvjpegDecoder hands them over: written on another stream, with a ready event)
  // mixed with host ones in one batch, and a batch of device images only: the same bytes as all-host.
  {
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, 0);
    std::vector<Image> mixed;
    std::vector<Image> all_device;
    {
      const c10::cuda::CUDAStreamGuard guard(side);
      auto ready = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
      std::vector<at::Tensor> uploaded;
      for (const Image& image : images) {
        uploaded.push_back(
            at::from_blob(image.rgb.data, {image.height(), image.width(), 3}, at::kByte).to(cuda, true).contiguous());
      }
      ready->record(side.unwrap());
      const std::shared_ptr<const c10::Event> shared = std::move(ready);
      for (std::size_t i = 0; i < images.size(); ++i) {
        Image on_device;
        on_device.device = std::make_shared<const vlm::DeviceImage>(vlm::DeviceImage{uploaded[i], shared});
        mixed.push_back(i % 2 == 0 ? on_device : images[i]);
        all_device.push_back(on_device);
      }
    }
    std::vector<Letterbox> boxes;
    LetterboxBatch on_cpu(640, 640, c10::Device(c10::kCPU), at::kFloat);
    const at::Tensor want = on_cpu.make_input(images, boxes);
    LetterboxBatch on_cuda(640, 640, cuda, at::kFloat);
    for (const auto* batch : {&mixed, &all_device}) {
      const at::Tensor got = on_cuda.make_input(*batch, boxes).cpu();
      const double max_value = (got - want).abs().max().item<double>();
      const bool ok = max_value <= 1e-6;
      failures += ok ? 0 : 1;
      std::printf("%s 640x640 fp32, %zu photos, %s: max value diff %.3g against all host images\n",
                  ok ? "PASS" : "FAIL", images.size(),
                  batch == &mixed ? "every other one a device image" : "all device images", max_value);
    }
  }
  // The serving shape: batches of 1 and 8 photos into 640x640, CPU half (OpenCV) beside CUDA half.
  for (const std::size_t batch : {std::size_t{1}, std::size_t{8}}) {
    const std::vector<Image> some(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(batch));
    LetterboxBatch on_cpu(640, 640, c10::Device(c10::kCPU), at::kFloat);
    LetterboxBatch on_cuda(640, 640, cuda, at::kFloat);
    std::printf("time: batch %zu into 640x640: CPU (OpenCV) %.2f ms, CUDA (upload + device) %.2f ms\n", batch,
                time_ms(on_cpu, some, c10::Device(c10::kCPU)), time_ms(on_cuda, some, cuda));
  }
  return failures == 0 ? 0 : 1;
}
