#include "kv_cache.h"

namespace vlm::florence2 {

void KvCache::reorder(const at::Tensor& rows, std::int64_t positions) {
  for (auto& layer : layers) {
    for (at::Tensor* buffer : {&layer.self_key, &layer.self_value}) {
      at::Tensor written = positions < 0 ? *buffer : buffer->narrow(2, 0, positions);
      written.copy_(written.index_select(0, rows));
    }
  }
}

}  // namespace vlm::florence2
