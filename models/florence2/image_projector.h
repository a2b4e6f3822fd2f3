#pragma once

#include <ATen/ATen.h>

#include "layers.h"
#include "weights.h"

namespace vlm::florence2 {

// Florence2MultiModalProjector: learned 2-D position embeddings and the cosine temporal embedding
// added to the DaViT features, a spatial-average token prepended to the per-position tokens, then a
// linear projection to d_model and a LayerNorm. Its tensors are resolved from `weights` at
// construction.
class ImageProjector {
 public:
  explicit ImageProjector(const Weights& weights);
  // [B, C, H, W] -> [B, 1 + H*W, d_model].
  at::Tensor operator()(const at::Tensor& features) const;

 private:
  at::Tensor rows_;      // [positions, C/2]: the row embeddings
  at::Tensor columns_;   // [positions, C/2]
  at::Tensor temporal_;  // [1, C]: temporal position 0 (one frame)
  Linear projection_;    // no bias
  LayerNorm norm_;
};

}  // namespace vlm::florence2
