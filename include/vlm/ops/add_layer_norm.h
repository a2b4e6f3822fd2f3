#pragma once

#include <ATen/core/Tensor.h>

namespace vlm::ops {

// at::layer_norm(x + y, {d}, weight, bias, eps) over the last dimension d, with the sum rounded to the
// inputs' dtype first as the two separate ops round it: BART's post-norm residual step. On CUDA, for
// contiguous float32, float16 or bfloat16 rows of at most kAddLayerNormMaxWidth, one kernel reads x and
// y once and writes the result (two kernels and a round trip of the sum otherwise: at batch 1 each of
// Florence-2's 19 per-step LayerNorms was its own launch beside its add); anything else, and every
// CPU tensor, runs the two ops.
at::Tensor add_layer_norm(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const at::Tensor& bias,
                          double eps);

// A decode step's input embedding: for each row of `ids` [rows, length] (int64, the sequences so
// far) its token at the step's position, t = ids[:, position], then
// at::layer_norm(table[t] * scale + positions[position + offset]) with each op's rounding; `position`
// is a one-element int64 tensor on the device, so a replayed CUDA graph reads the current one and the
// token the previous step wrote. Returns [rows, d]. On CUDA with the conditions above, one kernel
// (six ops otherwise).
at::Tensor embedding_layer_norm(const at::Tensor& table, const at::Tensor& ids, double scale,
                                const at::Tensor& positions, const at::Tensor& position, int64_t offset,
                                const at::Tensor& weight, const at::Tensor& bias, double eps);

inline constexpr int64_t kAddLayerNormMaxWidth = 4096;

}  // namespace vlm::ops
