#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

// The CUDA half of vlm::ops::add_layer_norm; the front file checks shapes, dtypes and layout.
namespace vlm::ops {
#ifdef VLM_WITH_CUDA
// x, y: contiguous [rows, d] of one dtype; weight, bias: contiguous [d] of the same dtype; d <= 4096.
at::Tensor add_layer_norm_cuda(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                               const at::Tensor& bias, double eps);
// ids: int64 [rows, length], any strides; table [vocab, d] and positions [P, d] contiguous, of
// weight's dtype; position: one int64 on the device. Indices out of range trip a device assert, as
// at::embedding's.
at::Tensor embedding_layer_norm_cuda(const at::Tensor& table, const at::Tensor& ids, double scale,
                                     const at::Tensor& positions, const at::Tensor& position, std::int64_t offset,
                                     const at::Tensor& weight, const at::Tensor& bias, double eps);
#endif
}  // namespace vlm::ops
