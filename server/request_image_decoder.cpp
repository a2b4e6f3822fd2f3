#include "request_image_decoder.h"

#include <memory>

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
// Each HTTP worker thread's nvJPEG decoders, one per slot (a served model): a decoder's state is not
// thread-safe, and one made per thread serves all of that thread's requests without a lock.
struct ThreadDecoder {
  std::unique_ptr<NvjpegDecoder> decoder;
  bool failed = false;  // did not start on this thread: OpenCV from now on
};
thread_local std::vector<ThreadDecoder> thread_decoders;
std::atomic<std::size_t> next_slot{0};
#endif

}  // namespace

std::string_view image_decoder_name(ImageDecoderKind kind) {
  return kind == ImageDecoderKind::kNvjpeg ? "nvjpeg" : "opencv";
}

RequestImageDecoder::RequestImageDecoder(std::string_view setting, const Model& model) : device_(model.info().device) {
  if (setting == "cpu") {
    reason_ = "--image-decoder cpu";
    return;
  }
  if (!model.accepts_device_images()) {
    reason_ = "the model takes host images only";
    return;
  }
#ifdef VLM_WITH_NVJPEG
  try {
    // Started once here so that /v1/models and the log say what serves; each thread makes its own.
    const NvjpegDecoder probe(device_);
  } catch (const Error& error) {
    reason_ = std::string("nvJPEG did not start on ") + device_ + ": " + error.what();
    log::warn("image decoding: {}; JPEGs are decoded on the CPU", reason_);
    return;
  }
  kind_ = ImageDecoderKind::kNvjpeg;
  slot_ = next_slot++;
  reason_ = "nvJPEG on " + device_ + "; other formats and JPEGs it does not take on the CPU";
#else
  reason_ = "this build has no nvJPEG";
#endif
}

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
  if (thread_decoders.size() <= slot_) thread_decoders.resize(slot_ + 1);
  ThreadDecoder& mine = thread_decoders[slot_];
  if (mine.failed) return;
  if (!mine.decoder) {
    try {
      mine.decoder = std::make_unique<NvjpegDecoder>(device_);
    } catch (const Error& error) {
      mine.failed = true;
      if (!start_failure_logged_.exchange(true)) {
        log::warn("image decoding: nvJPEG did not start on an HTTP worker thread ({}); it decodes on the CPU",
                  error.what());
      }
      return;
    }
  }
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
    decoded = mine.decoder->decode(batch, headers);
  } catch (const std::exception& error) {
    // Device memory running out, say: these images are decoded on the CPU like any nvJPEG refuses.
    log::warn("image decoding: nvJPEG failed a batch of {} JPEGs ({}); they are decoded on the CPU", batch.size(),
              error.what());
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
