#include "vlm/nvjpeg_decoder.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <nvjpeg.h>

#include <string>

#include "vlm/error.h"
#include "vlm/logging.h"
#include "vlm/ops/orientation.h"

namespace vlm {
namespace {

void check(nvjpegStatus_t status, const char* call) {
  if (status != NVJPEG_STATUS_SUCCESS) {
    throw Error(ErrorCode::kUnavailable,
                std::string("nvJPEG: ") + call + " failed with status " + std::to_string(static_cast<int>(status)));
  }
}

constexpr std::uint8_t kBaseline = 0xC0;
constexpr std::uint8_t kExtendedHuffman = 0xC1;

}  // namespace

struct NvjpegDecoder::State {
  c10::Device device;
  nvjpegHandle_t handle = nullptr;
  nvjpegJpegState_t jpeg = nullptr;
  // nvjpegDecodeBatchedInitialize is needed again only when the batch size changes (or after a failure).
  int initialized_batch = 0;
  bool failure_logged = false;
};

NvjpegDecoder::NvjpegDecoder(c10::Device device) : state_(std::make_unique<State>(State{device})) {
  if (!device.is_cuda()) {
    throw Error(ErrorCode::kUnavailable, "nvJPEG decodes on a CUDA device, got " + device.str());
  }
  const c10::cuda::CUDAGuard guard(device);
  check(nvjpegCreateEx(NVJPEG_BACKEND_DEFAULT, nullptr, nullptr, NVJPEG_FLAGS_DEFAULT, &state_->handle),
        "nvjpegCreateEx");
  check(nvjpegJpegStateCreate(state_->handle, &state_->jpeg), "nvjpegJpegStateCreate");
}

NvjpegDecoder::~NvjpegDecoder() {
  if (state_->jpeg != nullptr) nvjpegJpegStateDestroy(state_->jpeg);
  if (state_->handle != nullptr) nvjpegDestroy(state_->handle);
}

std::vector<at::Tensor> NvjpegDecoder::decode(std::span<const std::span<const std::uint8_t>> images,
                                              const ImageLoadOptions& options) {
  std::vector<at::Tensor> decoded(images.size());
  std::vector<std::size_t> chosen;
  std::vector<int> orientations;
  std::vector<const unsigned char*> data;
  std::vector<std::size_t> lengths;
  std::vector<at::Tensor> outputs;
  std::vector<nvjpegImage_t> destinations;
  const c10::cuda::CUDAGuard guard(state_->device);
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::span<const std::uint8_t> bytes = images[i];
    const ImageHeader header = check_image_header(bytes, options);
    if (header.format != ImageFormat::kJpeg || (header.jpeg_components != 1 && header.jpeg_components != 3)) continue;
    if (header.jpeg_frame_marker != kBaseline && header.jpeg_frame_marker != kExtendedHuffman) continue;
    int components = 0;
    nvjpegChromaSubsampling_t subsampling = NVJPEG_CSS_UNKNOWN;
    int widths[NVJPEG_MAX_COMPONENT] = {};
    int heights[NVJPEG_MAX_COMPONENT] = {};
    if (nvjpegGetImageInfo(state_->handle, bytes.data(), bytes.size(), &components, &subsampling, widths, heights) !=
            NVJPEG_STATUS_SUCCESS ||
        subsampling == NVJPEG_CSS_UNKNOWN || static_cast<std::uint32_t>(widths[0]) != header.width ||
        static_cast<std::uint32_t>(heights[0]) != header.height) {
      continue;
    }
    chosen.push_back(i);
    orientations.push_back(header.exif_orientation);
    data.push_back(bytes.data());
    lengths.push_back(bytes.size());
    outputs.push_back(
        at::empty({heights[0], widths[0], 3}, at::TensorOptions().dtype(at::kByte).device(state_->device)));
    nvjpegImage_t destination{};
    destination.channel[0] = outputs.back().data_ptr<std::uint8_t>();
    destination.pitch[0] = static_cast<std::size_t>(widths[0]) * 3;
    destinations.push_back(destination);
  }
  if (chosen.empty()) return decoded;
  const auto batch = static_cast<int>(chosen.size());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(state_->device.index()).stream();
  nvjpegStatus_t status = NVJPEG_STATUS_SUCCESS;
  if (state_->initialized_batch != batch) {
    status = nvjpegDecodeBatchedInitialize(state_->handle, state_->jpeg, batch, 1, NVJPEG_OUTPUT_RGBI);
    state_->initialized_batch = status == NVJPEG_STATUS_SUCCESS ? batch : 0;
  }
  if (status == NVJPEG_STATUS_SUCCESS) {
    status =
        nvjpegDecodeBatched(state_->handle, state_->jpeg, data.data(), lengths.data(), destinations.data(), stream);
  }
  if (status != NVJPEG_STATUS_SUCCESS) {
    // The state must be initialised again after a failed batch; its images go to the CPU decoder.
    state_->initialized_batch = 0;
    if (!state_->failure_logged) {
      log::info("nvJPEG refused a batch of {} JPEGs (status {}); they are decoded on the CPU", batch,
                static_cast<int>(status));
      state_->failure_logged = true;
    }
    return decoded;
  }
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    decoded[chosen[k]] = ops::apply_exif_orientation(outputs[k], orientations[k]).contiguous();
  }
  return decoded;
}

}  // namespace vlm
