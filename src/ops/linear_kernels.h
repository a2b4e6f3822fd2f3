#pragma once

#include <ATen/core/Tensor.h>

#include "vlm/ops/linear.h"

// The CUDA half of vlm::ops::linear; the front file checks shapes, dtypes, layout and alignment.
namespace vlm::ops {
#ifdef VLM_WITH_CUDA
// x: contiguous [rows, in] float16 or bfloat16, rows <= kFewRowsMaxRows, in % 8 == 0, 16-byte aligned;
// weight: contiguous [out, in] of x's dtype, 16-byte aligned; bias: [out] of x's dtype or undefined.
at::Tensor linear_few_rows_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                Activation activation);
#endif
}  // namespace vlm::ops
