#include "vlm/ops/add_layer_norm.h"

#include <ATen/ATen.h>

#include "add_layer_norm_kernels.h"

namespace vlm::ops {
#ifdef VLM_WITH_CUDA
namespace {

bool fused_kernel_takes(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const at::Tensor& bias) {
  const auto dtype = x.scalar_type();
  const int64_t d = x.dim() == 0 ? 0 : x.size(-1);
  return x.is_cuda() && x.sizes() == y.sizes() && y.scalar_type() == dtype && weight.scalar_type() == dtype &&
         bias.scalar_type() == dtype && (dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16) &&
         d > 0 && d <= kAddLayerNormMaxWidth && weight.numel() == d && bias.numel() == d && x.is_contiguous() &&
         y.is_contiguous() && weight.is_contiguous() && bias.is_contiguous() && y.device() == x.device() &&
         weight.device() == x.device() && bias.device() == x.device();
}

}  // namespace
#endif

at::Tensor add_layer_norm(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const at::Tensor& bias,
                          double eps) {
#ifdef VLM_WITH_CUDA
  if (fused_kernel_takes(x, y, weight, bias)) {
    const int64_t d = x.size(-1);
    return add_layer_norm_cuda(x.view({-1, d}), y.view({-1, d}), weight, bias, eps).view(x.sizes());
  }
#endif
  return at::layer_norm(x + y, {x.size(-1)}, weight, bias, eps);
}

}  // namespace vlm::ops
