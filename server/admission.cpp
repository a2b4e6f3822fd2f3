#include "admission.h"

#include <malloc.h>

namespace vlm::server {
namespace {

// At most one heap trim a second: malloc_trim walks every arena (a few ms after a burst).
constexpr auto kTrimInterval = std::chrono::seconds(1);

}  // namespace

std::shared_ptr<void> Admission::try_admit() {
  int current = admitted_.load();
  do {
    if (current >= limit_) return nullptr;
  } while (!admitted_.compare_exchange_weak(current, current + 1));
  return std::shared_ptr<Admission>(this, [](Admission* admission) { admission->release(); });
}

void Admission::release() {
  if (--admitted_ > 0) return;
  // The last request of a burst is answered: glibc keeps the freed decode buffers and tensors of
  // every connection thread's arena mapped until asked, so RSS would stay at the burst's peak.
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  auto last = last_trim_.load();
  if (now.count() - last < std::chrono::duration_cast<std::chrono::steady_clock::duration>(kTrimInterval).count()) {
    return;
  }
  if (last_trim_.compare_exchange_strong(last, now.count())) malloc_trim(0);
}

}  // namespace vlm::server
