#include "image_projector.h"

#include "layers.h"
#include "vlm/error.h"

namespace vlm::florence2 {

at::Tensor project_image_features(const Weights& weights, const at::Tensor& features) {
  const std::string scope = "model.multi_modal_projector";
  const auto height = features.size(2);
  const auto width = features.size(3);
  const at::Tensor& rows = weights.get(scope + ".image_position_embed.row_embeddings.weight");
  const at::Tensor& columns = weights.get(scope + ".image_position_embed.column_embeddings.weight");
  if (height > rows.size(0) || width > columns.size(0)) {
    throw Error(ErrorCode::kInvalidArgument, "vision feature map " + std::to_string(height) + "x" +
                                                 std::to_string(width) + " exceeds the " +
                                                 std::to_string(rows.size(0)) + " learned image positions");
  }
  const at::Tensor x_emb = columns.slice(0, 0, width);  // [W, C/2]
  const at::Tensor y_emb = rows.slice(0, 0, height);    // [H, C/2]
  const at::Tensor pos = at::cat({x_emb.unsqueeze(0).expand({height, width, x_emb.size(1)}),
                                  y_emb.unsqueeze(1).expand({height, width, y_emb.size(1)})},
                                 -1)
                             .permute({2, 0, 1})
                             .unsqueeze(0);
  at::Tensor x = (features + pos).flatten(2).transpose(1, 2);  // [B, HW, C]
  const at::Tensor temporal = weights.get(scope + ".visual_temporal_embed.pos_idx_to_embed").slice(0, 0, 1);
  x = x + temporal.unsqueeze(1);  // one frame: temporal position 0
  const at::Tensor spatial = x.mean(1, /*keepdim=*/true);
  // transformers averages over the single frame too; a mean of one element is the element itself.
  x = at::cat({spatial, x}, 1);
  x = at::linear(x, weights.get(scope + ".image_projection.weight"));
  x = layer_norm(weights, scope + ".image_proj_norm", x);
  return x;
}

}  // namespace vlm::florence2
