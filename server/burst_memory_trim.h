#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace vlm::server {

// Gives the memory a burst of requests freed back to the system once the burst is over. glibc
// keeps what connection threads free (request bodies, decoded images, tensors) mapped in their
// arenas, so without a trim RSS stays near a burst's peak. The trim waits until no request has
// begun or ended for `quiet` and none is running: a trim at the last response of a burst missed
// what threads freed after it, and requests admitted one at a time near the end of a burst.
class BurstMemoryTrim {
 public:
  // `busy` says whether a request is running now.
  BurstMemoryTrim(std::function<bool()> busy, std::chrono::milliseconds quiet);
  ~BurstMemoryTrim();
  BurstMemoryTrim(const BurstMemoryTrim&) = delete;
  BurstMemoryTrim& operator=(const BurstMemoryTrim&) = delete;

  // A request of a burst (two or more at once, or one refused) began: trim once it is over.
  void note_burst();
  // A request began or ended: a pending trim waits `quiet` from now.
  void note_activity();
  // Trims done so far.
  long long trims() const { return trims_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  void run();

  const std::function<bool()> busy_;
  const std::chrono::milliseconds quiet_;
  std::atomic<Clock::rep> last_activity_{0};
  std::atomic<bool> pending_{false};
  std::atomic<long long> trims_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vlm::server
