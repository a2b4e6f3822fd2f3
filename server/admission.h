#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "burst_memory_trim.h"

namespace vlm::server {

// Bounds the inference requests the server works on at once, from the moment their headers are
// accepted until their response is written. Beyond the bound a request is refused before its body
// is read, so overload costs a header parse, not a decode, a queue slot or a connection worker.
class Admission {
 public:
  explicit Admission(int limit);

  // A slot held until the returned token is destroyed; null when `limit` requests already hold one.
  std::shared_ptr<void> try_admit();
  int admitted() const { return admitted_.load(); }
  int limit() const { return limit_; }
  // Trims after bursts so far (vlm_memory_trims_total).
  long long memory_trims() const { return trim_.trims(); }

 private:
  void release();

  // How long without a request beginning or ending ends a burst.
  static constexpr std::chrono::milliseconds kBurstOverAfter{500};

  const int limit_;
  std::atomic<int> admitted_{0};
  BurstMemoryTrim trim_;
};

}  // namespace vlm::server
