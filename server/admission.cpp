#include "admission.h"

#include <malloc.h>

namespace vlm::server {

std::shared_ptr<void> Admission::try_admit() {
  int current = admitted_.load();
  do {
    if (current >= limit_) return nullptr;
  } while (!admitted_.compare_exchange_weak(current, current + 1));
  if (current + 1 >= 2) burst_ = true;
  return std::shared_ptr<Admission>(this, [](Admission* admission) { admission->release(); });
}

void Admission::release() {
  if (--admitted_ > 0) return;
  // The last request of a burst is answered: glibc keeps the freed decode buffers and tensors of
  // every connection thread's arena mapped until asked, so RSS would stay at the burst's peak.
  // A lone request at a time (no burst) grows nothing worth a trim, which walks every arena.
  if (burst_.exchange(false)) malloc_trim(0);
}

}  // namespace vlm::server
