#include "kv_cache.h"

namespace vlm::florence2 {

void KvCache::reorder(const at::Tensor& rows, std::int64_t positions) {
  // [layers * 2, rows, heads, positions, head_dim]
  const at::Tensor written = (positions < 0 ? self : self.narrow(4, 0, positions)).flatten(0, 1);
  written.copy_(written.index_select(1, rows));
}

}  // namespace vlm::florence2
