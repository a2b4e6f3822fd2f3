#include "kv_cache.h"

namespace vlm::florence2 {

void KvCache::reorder(const at::Tensor& rows) {
  for (auto& layer : layers) {
    auto key = layer.self_key.narrow(2, 0, length);
    key.copy_(key.index_select(0, rows));
    auto value = layer.self_value.narrow(2, 0, length);
    value.copy_(value.index_select(0, rows));
  }
}

}  // namespace vlm::florence2
