#include "admission.h"

namespace vlm::server {

std::shared_ptr<void> Admission::try_admit() {
  int current = admitted_.load();
  do {
    if (current >= limit_) return nullptr;
  } while (!admitted_.compare_exchange_weak(current, current + 1));
  return std::shared_ptr<Admission>(this, [](Admission* admission) { --admission->admitted_; });
}

}  // namespace vlm::server
