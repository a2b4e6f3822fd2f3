#include "image_processor.h"

#include <vector>

#include "vlm/error.h"

namespace vlm::florence2 {

at::Tensor ImageProcessor::process_rgb(const at::Tensor& rgb_hwc) const {
  if (rgb_hwc.scalar_type() != at::kByte || rgb_hwc.dim() != 3 || rgb_hwc.size(2) != 3) {
    throw Error(ErrorCode::kInvalidArgument, "image must be uint8 HxWx3 RGB");
  }
  // CHW view of HWC memory, as torchvision sees a PIL image converted with pil_to_tensor.
  at::Tensor image = rgb_hwc.permute({2, 0, 1}).unsqueeze(0);
  if (config_.do_resize && (image.size(2) != config_.height || image.size(3) != config_.width)) {
    // torchvision resize_image: on CPU, bicubic runs natively on uint8 (the PIL-compatible
    // antialias kernel), so no float round trip.
    image = at::_upsample_bicubic2d_aa(image.contiguous(at::MemoryFormat::ChannelsLast),
                                       {config_.height, config_.width}, /*align_corners=*/false);
  }
  at::Tensor out = image.to(at::kFloat);
  const auto options = at::TensorOptions().dtype(at::kFloat);
  if (config_.do_rescale && config_.do_normalize) {
    // transformers fuses both steps: mean and std tensors (float32) scaled by 1/rescale_factor.
    const double inverse = 1.0 / config_.rescale_factor;
    const at::Tensor mean =
        at::tensor(std::vector<double>(config_.image_mean.begin(), config_.image_mean.end()), options) * inverse;
    const at::Tensor std_dev =
        at::tensor(std::vector<double>(config_.image_std.begin(), config_.image_std.end()), options) * inverse;
    out = out.sub_(mean.view({-1, 1, 1})).div_(std_dev.view({-1, 1, 1}));
  } else if (config_.do_normalize) {
    const at::Tensor mean =
        at::tensor(std::vector<double>(config_.image_mean.begin(), config_.image_mean.end()), options);
    const at::Tensor std_dev =
        at::tensor(std::vector<double>(config_.image_std.begin(), config_.image_std.end()), options);
    out = out.sub_(mean.view({-1, 1, 1})).div_(std_dev.view({-1, 1, 1}));
  } else if (config_.do_rescale) {
    out = out * config_.rescale_factor;
  }
  return out.contiguous();
}

at::Tensor ImageProcessor::operator()(std::span<const Image> images) const {
  std::vector<at::Tensor> batch;
  batch.reserve(images.size());
  for (const auto& image : images) {
    if (image.rgb.empty() || image.rgb.type() != CV_8UC3 || !image.rgb.isContinuous()) {
      throw Error(ErrorCode::kInvalidArgument, "image must be a continuous 8-bit 3-channel RGB matrix");
    }
    const at::Tensor hwc = at::from_blob(image.rgb.data, {image.height(), image.width(), 3}, at::kByte);
    batch.push_back(process_rgb(hwc));
  }
  return at::cat(batch, 0);
}

}  // namespace vlm::florence2
