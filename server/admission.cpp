#include "admission.h"

namespace vlm::server {

Admission::Admission(int limit) : limit_(limit), trim_([this] { return admitted_.load() > 0; }, kBurstOverAfter) {}

std::shared_ptr<void> Admission::try_admit() {
  int current = admitted_.load();
  do {
    if (current >= limit_) {
      trim_.note_burst();
      return nullptr;
    }
  } while (!admitted_.compare_exchange_weak(current, current + 1));
  // A lone request at a time grows nothing worth a trim, which walks every arena.
  if (current + 1 >= 2) {
    trim_.note_burst();
  } else {
    trim_.note_activity();
  }
  return std::shared_ptr<Admission>(this, [](Admission* admission) { admission->release(); });
}

void Admission::release() {
  --admitted_;
  trim_.note_activity();
}

}  // namespace vlm::server
