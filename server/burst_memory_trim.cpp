#include "burst_memory_trim.h"

#include <malloc.h>

namespace vlm::server {

BurstMemoryTrim::BurstMemoryTrim(std::function<bool()> busy, std::chrono::milliseconds quiet)
    : busy_(std::move(busy)), quiet_(quiet), thread_([this] { run(); }) {}

BurstMemoryTrim::~BurstMemoryTrim() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void BurstMemoryTrim::note_activity() { last_activity_.store(Clock::now().time_since_epoch().count()); }

void BurstMemoryTrim::note_burst() {
  note_activity();
  // One wake-up a burst: the requests after the first only move the quiet period's start.
  if (pending_.exchange(true)) return;
  { std::lock_guard lock(mutex_); }
  wake_.notify_one();
}

void BurstMemoryTrim::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || pending_.load(); });
    if (stop_) return;
    const Clock::rep seen = last_activity_.load();
    const Clock::time_point quiet_from{Clock::duration(seen)};
    if (Clock::now() < quiet_from + quiet_ || busy_()) {
      wake_.wait_until(lock, std::max(quiet_from + quiet_, Clock::now() + quiet_ / 4), [this] { return stop_; });
      continue;
    }
    pending_ = false;
    lock.unlock();
    malloc_trim(0);
    trims_.fetch_add(1);
    lock.lock();
    // A request that began between the check and clearing the flag found it still set.
    if (last_activity_.load() != seen) pending_ = true;
  }
}

}  // namespace vlm::server
