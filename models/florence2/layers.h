#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "weights.h"

// Building blocks read from the checkpoint by their name scope (CTranslate2-style). The typed layers
// resolve their tensors once, when the model loads; calling them looks nothing up.
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
  at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, weight, bias); }
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
};

// Name-scoped calls for the per-request image side (DaViT, projector), which runs once per image.
inline at::Tensor linear(const Weights& w, const std::string& scope, const at::Tensor& x, bool bias = true) {
  return at::linear(x, w.get(scope + ".weight"), bias ? w.get(scope + ".bias") : at::Tensor());
}

inline at::Tensor layer_norm(const Weights& w, const std::string& scope, const at::Tensor& x) {
  return at::layer_norm(x, {x.size(-1)}, w.get(scope + ".weight"), w.get(scope + ".bias"), kLayerNormEps);
}

// Exact (erf) GELU: ACT2FN["gelu"] in transformers.
inline at::Tensor gelu_exact(const at::Tensor& x) { return at::gelu(x); }

}  // namespace vlm::florence2
