#include "vlm/ops/linear.h"

#include <cstdint>

#include <ATen/ATen.h>

#include "linear_kernels.h"

namespace vlm::ops {
#ifdef VLM_WITH_CUDA
namespace {

bool aligned16(const at::Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.const_data_ptr()) % 16 == 0; }

bool few_rows_kernel_takes(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const auto dtype = x.scalar_type();
  if (!x.is_cuda() || (dtype != at::kHalf && dtype != at::kBFloat16) || x.dim() == 0) return false;
  const int64_t in = x.size(-1);
  const int64_t rows = in == 0 ? 0 : x.numel() / in;
  return rows >= 1 && rows <= kFewRowsMaxRows && in % 8 == 0 && x.is_contiguous() && aligned16(x) &&
         weight.dim() == 2 && weight.size(1) == in && weight.scalar_type() == dtype && weight.is_contiguous() &&
         weight.device() == x.device() && aligned16(weight) &&
         (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.scalar_type() == dtype &&
                              bias.is_contiguous() && bias.device() == x.device()));
}

}  // namespace
#endif

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Activation activation) {
#ifdef VLM_WITH_CUDA
  if (few_rows_kernel_takes(x, weight, bias)) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    return linear_few_rows_cuda(x.view({-1, x.size(-1)}), weight, bias, activation).view(shape);
  }
#endif
  at::Tensor y = at::linear(x, weight, bias);
  return activation == Activation::kGeluExact ? at::gelu(y) : y;
}

}  // namespace vlm::ops
