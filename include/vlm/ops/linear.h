#pragma once

#include <ATen/core/Tensor.h>

namespace vlm::ops {

enum class Activation { kNone, kGeluExact };

// at::linear(x, weight, bias) (bias may be undefined), then `activation` (exact, erf GELU), with the
// linear's output rounded to x's dtype before the activation as the separate ops round it. On CUDA,
// for float16 or bfloat16 x of at most kFewRowsMaxRows rows (all but the last dimension flattened),
// contiguous, with in-features a multiple of 8, one kernel streams the weight once, a warp per output
// feature, accumulating in float32, and applies bias and activation on the way out: a decode step's
// projections, which cuBLAS runs as 64-row tiles at a few microseconds each with the activation a
// kernel of its own. Anything else, and every CPU tensor, runs the ATen ops.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                  Activation activation = Activation::kNone);

inline constexpr int64_t kFewRowsMaxRows = 8;

}  // namespace vlm::ops
