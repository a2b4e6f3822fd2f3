#pragma once

#include <ATen/ATen.h>

#include "config.h"
#include "weights.h"

namespace vlm::florence2 {

// Florence2MultiModalProjector: learned 2-D position embeddings and the cosine temporal embedding
// added to the DaViT features, a spatial-average token prepended to the per-position tokens, then a
// linear projection to d_model and a LayerNorm. [B, C, H, W] -> [B, 1 + H*W, d_model].
at::Tensor project_image_features(const Weights& weights, const at::Tensor& features);

}  // namespace vlm::florence2
