#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "vlm/ops/add_layer_norm.h"
#include "vlm/ops/linear.h"
#include "weights.h"

// Building blocks read from the checkpoint by their name scope (CTranslate2-style). They resolve their
// tensors once, when the model loads; calling them builds no name and looks nothing up.
namespace vlm::florence2 {

// nn.LayerNorm's default epsilon, used by every norm in Florence-2.
constexpr double kLayerNormEps = 1e-5;

struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined

  static Linear load(const Weights& w, const std::string& scope, bool bias = true) {
    return {w.get(scope + ".weight"), bias ? w.get(scope + ".bias") : at::Tensor()};
  }
  // One GEMM for several projections of the same input (Q, K and V): their weights stacked on the
  // output dimension, so the result's columns are the parts in order.
  static Linear fused(const Weights& w, const std::string& scope, const std::vector<std::string>& parts) {
    std::vector<at::Tensor> weights;
    std::vector<at::Tensor> biases;
    for (const auto& part : parts) {
      weights.push_back(w.get(scope + "." + part + ".weight"));
      biases.push_back(w.get(scope + "." + part + ".bias"));
    }
    return {at::cat(weights, 0), at::cat(biases, 0)};
  }
  at::Tensor operator()(const at::Tensor& x) const { return ops::linear(x, weight, bias); }
  // Followed by the exact (erf) GELU, ACT2FN["gelu"] in transformers; one kernel for a decode step's rows.
  at::Tensor gelu(const at::Tensor& x) const { return ops::linear(x, weight, bias, ops::Activation::kGeluExact); }
};

struct LayerNorm {
  at::Tensor weight;
  at::Tensor bias;

  static LayerNorm load(const Weights& w, const std::string& scope) {
    return {w.get(scope + ".weight"), w.get(scope + ".bias")};
  }
  at::Tensor operator()(const at::Tensor& x) const {
    return at::layer_norm(x, {x.size(-1)}, weight, bias, kLayerNormEps);
  }
  // (*this)(x + y), one kernel on CUDA: BART's post-norm residual.
  at::Tensor residual(const at::Tensor& x, const at::Tensor& y) const {
    return ops::add_layer_norm(x, y, weight, bias, kLayerNormEps);
  }
};

// nn.Conv2d with its stride, padding and groups fixed at load. A depth-wise convolution is one with
// a group per channel (depthwise()).
struct Conv2d {
  at::Tensor weight;  // [out, in / groups, kh, kw]
  at::Tensor bias;    // [out]
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t groups = 1;

  static Conv2d load(const Weights& w, const std::string& scope, std::int64_t stride, std::int64_t padding) {
    return {w.get(scope + ".weight"), w.get(scope + ".bias"), stride, padding, 1};
  }
  // DaViT's positional encoding: 3x3, stride 1, padding 1, one group per channel.
  static Conv2d depthwise(const Weights& w, const std::string& scope) {
    const at::Tensor& weight = w.get(scope + ".weight");
    return {weight, w.get(scope + ".bias"), 1, 1, weight.size(0)};
  }
  at::Tensor operator()(const at::Tensor& x) const { return at::conv2d(x, weight, bias, stride, padding, 1, groups); }
};

}  // namespace vlm::florence2
