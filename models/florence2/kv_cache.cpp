#include "kv_cache.h"

namespace vlm::florence2 {

void KvCache::reorder(const at::Tensor& rows) {
  for (auto& layer : layers) {
    layer.self_key.copy_(layer.self_key.index_select(0, rows));
    layer.self_value.copy_(layer.self_value.index_select(0, rows));
  }
}

}  // namespace vlm::florence2
