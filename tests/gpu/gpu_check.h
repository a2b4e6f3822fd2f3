#pragma once

#include <c10/cuda/CUDAFunctions.h>

#include <chrono>
#include <cstdio>
#include <functional>

namespace vlm::gpu_check {

// The exit status ctest reads as "skipped" (SKIP_RETURN_CODE).
inline constexpr int kSkipped = 77;

// True, after saying so, where no CUDA device is visible (CI's machines): the check exits kSkipped.
inline bool no_cuda_device() {
  if (c10::cuda::device_count() > 0) return false;
  std::printf("skipped: no CUDA device visible (this check needs a GPU)\n");
  return true;
}

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
