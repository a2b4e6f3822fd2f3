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

bool fused_embedding_takes(const at::Tensor& table, const at::Tensor& ids, const at::Tensor& positions,
                           const at::Tensor& position, const at::Tensor& weight, const at::Tensor& bias) {
  const auto dtype = table.scalar_type();
  const int64_t d = table.dim() == 2 ? table.size(1) : 0;
  return table.is_cuda() && (dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16) && d > 0 &&
         d <= kAddLayerNormMaxWidth && table.is_contiguous() && positions.dim() == 2 && positions.size(1) == d &&
         positions.scalar_type() == dtype && positions.is_contiguous() && weight.scalar_type() == dtype &&
         bias.scalar_type() == dtype && weight.numel() == d && bias.numel() == d && weight.is_contiguous() &&
         bias.is_contiguous() && ids.scalar_type() == at::kLong && ids.dim() == 2 &&
         position.scalar_type() == at::kLong && position.numel() == 1 && ids.device() == table.device() &&
         position.device() == table.device() && positions.device() == table.device() &&
         weight.device() == table.device() && bias.device() == table.device();
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

at::Tensor embedding_layer_norm(const at::Tensor& table, const at::Tensor& ids, double scale,
                                const at::Tensor& positions, const at::Tensor& position, int64_t offset,
                                const at::Tensor& weight, const at::Tensor& bias, double eps) {
#ifdef VLM_WITH_CUDA
  if (fused_embedding_takes(table, ids, positions, position, weight, bias)) {
    return embedding_layer_norm_cuda(table, ids, scale, positions, position, offset, weight, bias, eps);
  }
#endif
  at::Tensor h = at::embedding(table, ids.index_select(1, position.reshape({1})).squeeze(1));
  if (scale != 1.0) h = h * scale;
  return at::layer_norm(h + positions.index_select(0, position.reshape({1}) + offset), {table.size(1)}, weight, bias,
                        eps);
}

}  // namespace vlm::ops
