// vlm::NvjpegDecoder (batched JPEG decoding on the GPU) against decode_image (OpenCV, libjpeg-turbo)
// on the photos and on tests/gpu/make_jpeg_variants.py's variants of one (grayscale, CMYK,
// EXIF-rotated, progressive, 4:4:4, 4:2:2), and the decode rate of each over the photo set.
// Tolerance: the same size and orientation, and a mean absolute difference of at most 2 levels per
// image (torchvision's bound for nvJPEG against libjpeg-turbo: the IDCTs and chroma upsampling differ);
// the maximum is printed. CMYK and progressive JPEGs must be left to the CPU (undefined result). The
// GPU's hardware JPEG decoder, where it has one, is measured the same way beside the CUDA backend.
// Exits 77 (ctest: skipped) where no CUDA device is visible.
//   nvjpeg_decode_check FOLDER...     (every .jpg under each, recursively)
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "vlm/device_image.h"
#include "vlm/error.h"
#include "vlm/image.h"
#include "vlm/nvjpeg_decoder.h"

namespace {

struct Jpeg {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

std::vector<Jpeg> read_jpegs(const std::vector<std::filesystem::path>& folders) {
  std::vector<Jpeg> jpegs;
  for (const auto& folder : folders) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
      if (entry.path().extension() != ".jpg") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      jpegs.push_back(
          {entry.path().filename().string(), {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()}});
    }
  }
  std::sort(jpegs.begin(), jpegs.end(), [](const Jpeg& a, const Jpeg& b) { return a.name < b.name; });
  return jpegs;
}

std::vector<std::span<const std::uint8_t>> spans(const std::vector<Jpeg>& jpegs) {
  std::vector<std::span<const std::uint8_t>> out;
  for (const Jpeg& jpeg : jpegs) out.emplace_back(jpeg.bytes);
  return out;
}

// The decoder's contract: every image's header checked first, by the caller.
std::vector<vlm::Image> decode_on_gpu(vlm::NvjpegDecoder& decoder,
                                      std::span<const std::span<const std::uint8_t>> batch) {
  std::vector<vlm::ImageHeader> headers;
  for (const auto& bytes : batch) headers.push_back(vlm::check_image_header(bytes));
  return decoder.decode(batch, headers);
}

bool must_fall_back(const std::string& name) { return name.starts_with("cmyk") || name.starts_with("progressive"); }

// Each JPEG decoded by `decoder` against decode_image: mean abs difference at most 2 levels, and the
// CPU fallback exactly for the variants nvJPEG does not take. Returns the failures.
int compare_with_opencv(vlm::NvjpegDecoder& decoder, const std::vector<Jpeg>& jpegs, const char* backend) {
  const std::vector<vlm::Image> decoded = decode_on_gpu(decoder, spans(jpegs));
  int failures = 0;
  for (std::size_t i = 0; i < jpegs.size(); ++i) {
    const vlm::Image cpu = vlm::decode_image(jpegs[i].bytes);
    const at::Tensor want = at::from_blob(cpu.rgb.data, {cpu.height(), cpu.width(), 3}, at::kByte);
    const bool fell_back = !decoded[i].on_device();
    if (fell_back || must_fall_back(jpegs[i].name)) {
      const bool ok = fell_back == must_fall_back(jpegs[i].name);
      failures += ok ? 0 : 1;
      std::printf("%s %-9s %-24s %s\n", ok ? "PASS" : "FAIL", backend, jpegs[i].name.c_str(),
                  fell_back ? "left to the CPU decoder" : "decoded on the GPU, expected the CPU fallback");
      continue;
    }
    const at::Tensor got = decoded[i].device->rgb.cpu();
    if (got.sizes() != want.sizes()) {
      ++failures;
      std::printf("FAIL %-9s %-24s GPU %ldx%ld, CPU %dx%d\n", backend, jpegs[i].name.c_str(),
                  static_cast<long>(got.size(1)), static_cast<long>(got.size(0)), cpu.width(), cpu.height());
      continue;
    }
    const at::Tensor diff = (got.to(at::kInt) - want.to(at::kInt)).abs();
    const double mean = diff.to(at::kDouble).mean().item<double>();
    const int max = diff.max().item<int>();
    const bool ok = mean <= 2.0;
    failures += ok ? 0 : 1;
    std::printf("%s %-9s %-24s %dx%d: max abs %d, mean %.3f levels\n", ok ? "PASS" : "FAIL", backend,
                jpegs[i].name.c_str(), cpu.width(), cpu.height(), max, mean);
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (c10::cuda::device_count() == 0) {
    std::printf("skipped: no CUDA device visible (this check needs a GPU)\n");
    return 77;
  }
  std::vector<std::filesystem::path> folders(argv + 1, argv + argc);
  const std::vector<Jpeg> jpegs = read_jpegs(folders);
  if (jpegs.size() < 8) {
    std::printf("FAIL: %zu JPEGs found, expected at least 8 (give the photo and variant folders)\n", jpegs.size());
    return 1;
  }
  vlm::NvjpegDecoder decoder("cuda:0");
  int failures = compare_with_opencv(decoder, jpegs, "cuda");
  std::unique_ptr<vlm::NvjpegDecoder> hardware;
  try {
    hardware = std::make_unique<vlm::NvjpegDecoder>("cuda:0", vlm::NvjpegDecoder::Backend::kHardware);
  } catch (const vlm::Error& error) {
    std::printf("hardware backend: not available here (%s)\n", error.what());
  }
  // Measured only (the server decodes with the CUDA backend): its failures are printed, not counted, and
  // it is timed only where it decoded every image the CUDA backend did.
  if (hardware) {
    const int differ = compare_with_opencv(*hardware, jpegs, "hardware");
    std::printf("hardware backend: %d image(s) outside the tolerance or not decoded (measured, not counted)\n", differ);
    if (differ != 0) hardware.reset();
  }

  // Decode rate over the set in batches of 8, and one image at a time (a single client's latency):
  // GPU (device synchronised) against OpenCV on one thread.
  std::vector<Jpeg> gpu_set;
  for (const Jpeg& jpeg : jpegs) {
    if (!must_fall_back(jpeg.name)) gpu_set.push_back(jpeg);
  }
  const std::vector<std::span<const std::uint8_t>> all = spans(gpu_set);
  constexpr int kRounds = 5;
  // Images per second over the set in batches of `batch`, and the median ms of one batch.
  auto rate = [&](std::size_t batch, auto&& decode_batch) {
    decode_batch(std::span(all).first(std::min(batch, all.size())));
    c10::cuda::device_synchronize();
    std::vector<double> each_ms;
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < kRounds; ++round) {
      for (std::size_t at = 0; at < all.size(); at += batch) {
        const auto begin = std::chrono::steady_clock::now();
        decode_batch(std::span(all).subspan(at, std::min(batch, all.size() - at)));
        c10::cuda::device_synchronize();
        each_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count());
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::nth_element(each_ms.begin(), each_ms.begin() + each_ms.size() / 2, each_ms.end());
    return std::pair{static_cast<double>(all.size() * kRounds) / seconds, each_ms[each_ms.size() / 2]};
  };
  const auto on = [](vlm::NvjpegDecoder& gpu) {
    return [&gpu](std::span<const std::span<const std::uint8_t>> batch) { decode_on_gpu(gpu, batch); };
  };
  const auto opencv = [](std::span<const std::span<const std::uint8_t>> batch) {
    for (const auto& bytes : batch) vlm::decode_image(bytes);
  };
  std::printf("%-34s %14s %14s %14s %14s\n", "decoder", "batch 8 img/s", "batch 8 p50 ms", "batch 1 img/s",
              "batch 1 p50 ms");
  // Returns (images/s in batches of 8, p50 ms of one image), the figures the summary line compares.
  auto row = [&](const char* name, auto&& decode_batch) {
    const auto [rate8, ms8] = rate(8, decode_batch);
    const auto [rate1, ms1] = rate(1, decode_batch);
    std::printf("%-34s %14.0f %14.2f %14.0f %14.2f\n", name, rate8, ms8, rate1, ms1);
    return std::pair{rate8, ms1};
  };
  const auto gpu = row("nvJPEG, CUDA backend", on(decoder));
  std::pair<double, double> engine{0, 0};
  if (hardware) engine = row("nvJPEG, hardware backend", on(*hardware));
  const auto cpu = row("OpenCV, one CPU thread", opencv);
  std::printf(
      "decode rate: %zu JPEGs, batches of 8: nvJPEG %.0f images/s (hardware %.0f), OpenCV %.0f images/s; "
      "one image: %.2f ms (hardware %.2f), OpenCV %.2f ms\n",
      all.size(), gpu.first, engine.first, cpu.first, gpu.second, engine.second, cpu.second);
  return failures == 0 ? 0 : 1;
}
