#include "request_image_decoder.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "vlm/logging.h"
#ifdef VLM_WITH_NVJPEG
#include "vlm/nvjpeg_decoder.h"
#endif

namespace vlm::server {
namespace {

std::span<const std::uint8_t> bytes_of(const std::string& input) {
  return {reinterpret_cast<const std::uint8_t*>(input.data()), input.size()};
}

#ifdef VLM_WITH_NVJPEG
// nvJPEG decodes a JPEG's entropy-coded data on the calling CPU thread and the rest on the GPU, so
// decodes beyond the cores only wait for one; the cap bounds the device and pinned memory they keep.
std::size_t pool_size() { return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 16); }
#endif

}  // namespace

struct RequestImageDecoder::DevicePool {
#ifdef VLM_WITH_NVJPEG
  std::vector<std::unique_ptr<NvjpegDecoder>> decoders;
  std::mutex mutex;
  std::condition_variable returned;
  std::vector<NvjpegDecoder*> idle;

  // A failing device (out of memory, say) fails every batch: one warning a minute says so, with the
  // count of those not reported since, instead of one per request.
  void warn_failed_batch(std::size_t images, const char* reason) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex);
    if (warned && now - last_warning < std::chrono::minutes(1)) {
      ++unreported;
      return;
    }
    log::warn(
        "image decoding: nvJPEG failed a batch of {} JPEGs ({}); they are decoded on the CPU{}", images, reason,
        unreported == 0 ? std::string() : fmt::format(" ({} more batches failed since the last warning)", unreported));
    warned = true;
    last_warning = now;
    unreported = 0;
  }
  bool warned = false;
  std::chrono::steady_clock::time_point last_warning;
  std::size_t unreported = 0;

  // A decoder lent to one request; returned to the pool when the lease ends, however it ends.
  class Lease {
   public:
    explicit Lease(DevicePool& pool) : pool_(pool) {
      std::unique_lock lock(pool_.mutex);
      pool_.returned.wait(lock, [this] { return !pool_.idle.empty(); });
      decoder_ = pool_.idle.back();
      pool_.idle.pop_back();
    }
    ~Lease() {
      {
        std::lock_guard lock(pool_.mutex);
        pool_.idle.push_back(decoder_);
      }
      pool_.returned.notify_one();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    NvjpegDecoder& decoder() const { return *decoder_; }

   private:
    DevicePool& pool_;
    NvjpegDecoder* decoder_ = nullptr;
  };
#endif
};

std::string_view image_decoder_name(ImageDecoderKind kind) {
  return kind == ImageDecoderKind::kNvjpeg ? "nvjpeg" : "opencv";
}

RequestImageDecoder::RequestImageDecoder(std::string_view setting, const Model& model) {
  if (setting == "cpu") {
    reason_ = "--image-decoder cpu";
    return;
  }
  if (!model.accepts_device_images()) {
    reason_ = "the model takes host images only";
    return;
  }
#ifdef VLM_WITH_NVJPEG
  const std::string& device = model.info().device;
  // The GPU's JPEG engines where it has them (measured on an H100: 0.32 ms for one photo and 4,617
  // photos/s in batches of 8, against 1.44 ms and 498/s for the CUDA backend), else the CUDA backend.
  auto make_pool = [&device](NvjpegDecoder::Backend backend) {
    auto pool = std::make_unique<DevicePool>();
    for (std::size_t i = pool_size(); i > 0; --i) {
      pool->decoders.push_back(std::make_unique<NvjpegDecoder>(device, backend));
      pool->idle.push_back(pool->decoders.back().get());
    }
    return pool;
  };
  std::string engines;
  try {
    pool_ = make_pool(NvjpegDecoder::Backend::kHardware);
    engines = "the GPU's JPEG engines";
  } catch (const Error& hardware) {
    try {
      pool_ = make_pool(NvjpegDecoder::Backend::kCuda);
      engines = std::string("CUDA (no JPEG engines: ") + hardware.what() + ")";
    } catch (const Error& error) {
      reason_ = std::string("nvJPEG did not start on ") + device + ": " + error.what();
      log::warn("image decoding: {}; JPEGs are decoded on the CPU", reason_);
      return;
    }
  }
  kind_ = ImageDecoderKind::kNvjpeg;
  reason_ = "nvJPEG on " + device + " with " + engines + ", " + std::to_string(pool_->decoders.size()) +
            " decoders; other formats and JPEGs it does not take on the CPU";
#else
  reason_ = "this build has no nvJPEG";
#endif
}

RequestImageDecoder::~RequestImageDecoder() = default;

std::vector<DecodedImage> RequestImageDecoder::decode(std::span<const std::string> inputs,
                                                      const ImageLoadOptions& options) const {
  std::vector<DecodedImage> out(inputs.size());
  if (kind_ == ImageDecoderKind::kNvjpeg) decode_on_device(inputs, options, out);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (out[i].image || out[i].error) continue;
    try {
      out[i].image = decode_image(bytes_of(inputs[i]), options);
    } catch (const Error& error) {
      out[i].error = error;
    }
  }
  return out;
}

void RequestImageDecoder::decode_on_device(std::span<const std::string> inputs, const ImageLoadOptions& options,
                                           std::vector<DecodedImage>& out) const {
#ifdef VLM_WITH_NVJPEG
  std::vector<std::size_t> jpegs;
  std::vector<std::span<const std::uint8_t>> batch;
  std::vector<ImageHeader> headers;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    try {
      const ImageHeader header = check_image_header(bytes_of(inputs[i]), options);
      if (header.format != ImageFormat::kJpeg) continue;
      jpegs.push_back(i);
      batch.push_back(bytes_of(inputs[i]));
      headers.push_back(header);
    } catch (const Error& error) {
      out[i].error = error;
    }
  }
  if (batch.empty()) return;
  std::vector<Image> decoded;
  try {
    decoded = DevicePool::Lease(*pool_).decoder().decode(batch, headers);
  } catch (const std::exception& error) {
    // Device memory running out, say: these images are decoded on the CPU like any nvJPEG refuses.
    pool_->warn_failed_batch(batch.size(), error.what());
    return;
  }
  for (std::size_t k = 0; k < jpegs.size(); ++k) {
    if (decoded[k].on_device()) out[jpegs[k]].image = std::move(decoded[k]);
  }
#else
  (void)inputs;
  (void)options;
  (void)out;
#endif
}

}  // namespace vlm::server
