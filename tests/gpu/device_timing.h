#pragma once

#include <c10/cuda/CUDAFunctions.h>

#include <chrono>
#include <functional>

namespace vlm::gpu_check {

// Microseconds per call of `op` on the current device: 20 calls of warm-up, then 500 timed between
// two device synchronisations (eager launches: each call's launch overhead is included).
inline double time_us(const std::function<void()>& op) {
  for (int i = 0; i < 20; ++i) op();
  c10::cuda::device_synchronize();
  constexpr int kRuns = 500;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) op();
  c10::cuda::device_synchronize();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRuns;
}

}  // namespace vlm::gpu_check
