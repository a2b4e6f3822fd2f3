#include "vlm/nvjpeg_decoder.h"

#include <ATen/ATen.h>
#include <ATen/core/CachingHostAllocator.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nvjpeg.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "vlm/device.h"
#include "vlm/device_image.h"
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

// The JPEG engines decode baseline JPEGs with these samplings only (nvjpeg.h, NVJPEG_BACKEND_HARDWARE);
// a batch holding another fails as a whole.
bool hardware_decodes(nvjpegChromaSubsampling_t subsampling) {
  return subsampling != NVJPEG_CSS_411 && subsampling != NVJPEG_CSS_410 && subsampling != NVJPEG_CSS_410V;
}

c10::Device cuda_device(const std::string& name) {
  const c10::Device device = parse_device(name);
  if (!device.is_cuda()) throw Error(ErrorCode::kInvalidArgument, "nvJPEG decodes on a CUDA device, got " + name);
  return device;
}

// nvJPEG's buffers come from torch's caching allocators, not from its defaults (cudaMalloc/cudaFree,
// cudaHostAlloc/cudaFreeHost), each of which synchronises the whole device: a decoder that grows its
// buffers for a larger photo would otherwise stall the model's stream beside it. The V2 interface
// passes the stream each buffer is used on, as the caching allocators need.
int device_malloc(void* /*ctx*/, void** ptr, std::size_t size, cudaStream_t stream) {
  try {
    *ptr = c10::cuda::CUDACachingAllocator::raw_alloc_with_stream(size, stream);
    return 0;
  } catch (const std::exception&) {
    return 1;
  }
}

int device_free(void* /*ctx*/, void* ptr, std::size_t /*size*/, cudaStream_t /*stream*/) {
  c10::cuda::CUDACachingAllocator::raw_delete(ptr);
  return 0;
}

// The caching host allocator hands out DataPtrs; the pinned buffers nvJPEG holds are kept here by address.
struct PinnedBuffers {
  std::mutex mutex;
  std::unordered_map<void*, at::DataPtr> held;
  c10::DeviceIndex device = 0;
};

int pinned_malloc(void* ctx, void** ptr, std::size_t size, cudaStream_t /*stream*/) {
  auto& buffers = *static_cast<PinnedBuffers*>(ctx);
  try {
    at::DataPtr buffer = at::getHostAllocator(at::kCUDA)->allocate(size);
    *ptr = buffer.get();
    const std::lock_guard lock(buffers.mutex);
    buffers.held.emplace(*ptr, std::move(buffer));
    return 0;
  } catch (const std::exception&) {
    return 1;
  }
}

int pinned_free(void* ctx, void* ptr, std::size_t /*size*/, cudaStream_t stream) {
  auto& buffers = *static_cast<PinnedBuffers*>(ctx);
  at::DataPtr buffer;
  {
    const std::lock_guard lock(buffers.mutex);
    const auto it = buffers.held.find(ptr);
    if (it == buffers.held.end()) return 1;
    buffer = std::move(it->second);
    buffers.held.erase(it);
  }
  // Not handed out again before the copies queued on `stream` that read it have run.
  at::getHostAllocator(at::kCUDA)->record_event(ptr, buffer.get_context(),
                                                c10::cuda::getStreamFromExternal(stream, buffers.device).unwrap());
  return 0;
}

}  // namespace

struct NvjpegDecoder::State {
  State(c10::Device cuda, c10::cuda::CUDAStream own) : device(cuda), stream(own) {}
  c10::Device device;
  // The decoder's own stream: decoding here overlaps a model's work on its stream, and the images'
  // ready event orders the model's reads after it.
  c10::cuda::CUDAStream stream;
  PinnedBuffers pinned;  // declared before the handle, which frees into it
  nvjpegHandle_t handle = nullptr;
  nvjpegJpegState_t jpeg = nullptr;
  // nvjpegDecodeBatchedInitialize is needed again only when the batch size changes (or after a failure).
  int initialized_batch = 0;
  bool failure_logged = false;
  bool hardware = false;
};

NvjpegDecoder::NvjpegDecoder(const std::string& device, Backend backend) {
  const c10::Device cuda = cuda_device(device);
  const c10::cuda::CUDAGuard guard(cuda);
  state_ = std::make_unique<State>(cuda, c10::cuda::getStreamFromPool(false, cuda.index()));
  state_->pinned.device = cuda.index();
  state_->hardware = backend == Backend::kHardware;
  nvjpegDevAllocatorV2_t device_allocator{device_malloc, device_free, nullptr};
  nvjpegPinnedAllocatorV2_t pinned_allocator{pinned_malloc, pinned_free, &state_->pinned};
  try {
    check(nvjpegCreateExV2(backend == Backend::kHardware ? NVJPEG_BACKEND_HARDWARE : NVJPEG_BACKEND_DEFAULT,
                           &device_allocator, &pinned_allocator, NVJPEG_FLAGS_DEFAULT, &state_->handle),
          "nvjpegCreateExV2");
    check(nvjpegJpegStateCreate(state_->handle, &state_->jpeg), "nvjpegJpegStateCreate");
  } catch (const Error&) {
    // A constructor that throws gets no destructor call.
    if (state_->handle != nullptr) nvjpegDestroy(state_->handle);
    throw;
  }
}

NvjpegDecoder::~NvjpegDecoder() {
  const c10::cuda::CUDAGuard guard(state_->device);
  if (state_->jpeg != nullptr) nvjpegJpegStateDestroy(state_->jpeg);
  if (state_->handle != nullptr) nvjpegDestroy(state_->handle);
}

std::vector<Image> NvjpegDecoder::decode(std::span<const std::span<const std::uint8_t>> images,
                                         std::span<const ImageHeader> headers) {
  if (headers.size() != images.size()) {
    throw Error(ErrorCode::kInvalidArgument, "nvJPEG: " + std::to_string(images.size()) + " images but " +
                                                 std::to_string(headers.size()) + " headers");
  }
  std::vector<Image> decoded(images.size());
  std::vector<std::size_t> chosen;
  std::vector<int> orientations;
  std::vector<const unsigned char*> data;
  std::vector<std::size_t> lengths;
  std::vector<at::Tensor> outputs;
  std::vector<nvjpegImage_t> destinations;
  const c10::cuda::CUDAGuard guard(state_->device);
  // Allocations below belong to the decoder's stream; the model's stream records its use of them.
  const c10::cuda::CUDAStreamGuard stream_guard(state_->stream);
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::span<const std::uint8_t> bytes = images[i];
    const ImageHeader& header = headers[i];
    if (header.format != ImageFormat::kJpeg || (header.jpeg_components != 1 && header.jpeg_components != 3)) continue;
    if (header.jpeg_frame_marker != kBaseline && (state_->hardware || header.jpeg_frame_marker != kExtendedHuffman)) {
      continue;
    }
    int components = 0;
    nvjpegChromaSubsampling_t subsampling = NVJPEG_CSS_UNKNOWN;
    int widths[NVJPEG_MAX_COMPONENT] = {};
    int heights[NVJPEG_MAX_COMPONENT] = {};
    if (nvjpegGetImageInfo(state_->handle, bytes.data(), bytes.size(), &components, &subsampling, widths, heights) !=
            NVJPEG_STATUS_SUCCESS ||
        subsampling == NVJPEG_CSS_UNKNOWN || (state_->hardware && !hardware_decodes(subsampling)) ||
        static_cast<std::uint32_t>(widths[0]) != header.width ||
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
  nvjpegStatus_t status = NVJPEG_STATUS_SUCCESS;
  if (state_->initialized_batch != batch) {
    status = nvjpegDecodeBatchedInitialize(state_->handle, state_->jpeg, batch, 1, NVJPEG_OUTPUT_RGBI);
    state_->initialized_batch = status == NVJPEG_STATUS_SUCCESS ? batch : 0;
  }
  if (status == NVJPEG_STATUS_SUCCESS) {
    status = nvjpegDecodeBatched(state_->handle, state_->jpeg, data.data(), lengths.data(), destinations.data(),
                                 state_->stream.stream());
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
  std::vector<at::Tensor> oriented;
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    oriented.push_back(ops::apply_exif_orientation(outputs[k], orientations[k]).contiguous());
  }
  auto ready = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
  ready->record(state_->stream.unwrap());
  ready->synchronize();
  const std::shared_ptr<const c10::Event> shared_ready = std::move(ready);
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    decoded[chosen[k]].device = std::make_shared<const DeviceImage>(DeviceImage{oriented[k], shared_ready});
  }
  return decoded;
}

}  // namespace vlm
