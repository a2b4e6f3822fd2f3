#pragma once

#include <string>

#include <ATen/ATen.h>

#include "weights.h"

// Building blocks read from the checkpoint by their name scope (CTranslate2-style).
namespace vlm::florence2 {

inline at::Tensor linear(const Weights& w, const std::string& scope, const at::Tensor& x, bool bias = true) {
  return at::linear(x, w.get(scope + ".weight"), bias ? w.get(scope + ".bias") : at::Tensor());
}

inline at::Tensor layer_norm(const Weights& w, const std::string& scope, const at::Tensor& x) {
  // nn.LayerNorm's default epsilon, used by every norm in Florence-2.
  constexpr double kEps = 1e-5;
  return at::layer_norm(x, {x.size(-1)}, w.get(scope + ".weight"), w.get(scope + ".bias"), kEps);
}

// Exact (erf) GELU: ACT2FN["gelu"] in transformers.
inline at::Tensor gelu_exact(const at::Tensor& x) { return at::gelu(x); }

}  // namespace vlm::florence2
