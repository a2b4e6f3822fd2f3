#include "image_projector.h"

#include <string>

#include "vlm/error.h"

namespace vlm::florence2 {
namespace {
const std::string kScope = "model.multi_modal_projector";
}  // namespace

ImageProjector::ImageProjector(const Weights& weights)
    : rows_(weights.get(kScope + ".image_position_embed.row_embeddings.weight")),
      columns_(weights.get(kScope + ".image_position_embed.column_embeddings.weight")),
      temporal_(weights.get(kScope + ".visual_temporal_embed.pos_idx_to_embed").slice(0, 0, 1)),
      projection_(Linear::load(weights, kScope + ".image_projection", /*bias=*/false)),
      norm_(LayerNorm::load(weights, kScope + ".image_proj_norm")) {}

at::Tensor ImageProjector::operator()(const at::Tensor& features) const {
  const auto height = features.size(2);
  const auto width = features.size(3);
  if (height > rows_.size(0) || width > columns_.size(0)) {
    throw Error(ErrorCode::kInvalidArgument, "vision feature map " + std::to_string(height) + "x" +
                                                 std::to_string(width) + " exceeds the " +
                                                 std::to_string(rows_.size(0)) + " learned image positions");
  }
  const at::Tensor x_emb = columns_.slice(0, 0, width);  // [W, C/2]
  const at::Tensor y_emb = rows_.slice(0, 0, height);    // [H, C/2]
  const at::Tensor pos = at::cat({x_emb.unsqueeze(0).expand({height, width, x_emb.size(1)}),
                                  y_emb.unsqueeze(1).expand({height, width, y_emb.size(1)})},
                                 -1)
                             .permute({2, 0, 1})
                             .unsqueeze(0);
  at::Tensor x = (features + pos).flatten(2).transpose(1, 2);  // [B, HW, C]
  x = x + temporal_.unsqueeze(1);
  const at::Tensor spatial = x.mean(1, /*keepdim=*/true);
  // transformers averages over the single frame too; a mean of one element is the element itself.
  x = at::cat({spatial, x}, 1);
  return norm_(projection_(x));
}

}  // namespace vlm::florence2
