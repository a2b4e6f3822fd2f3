#include "common/programmatic_launch.h"

#include <ATen/cuda/CUDAContext.h>

#include <atomic>

namespace vlm::kernels {
namespace {
std::atomic<bool> g_enabled{true};
}  // namespace

void set_programmatic_launch_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }
bool programmatic_launch_enabled() { return g_enabled.load(std::memory_order_relaxed); }

bool programmatic_launch_supported(int device) {
  // ATen caches each device's properties after the first query.
  return g_enabled.load(std::memory_order_relaxed) && at::cuda::getDeviceProperties(device)->major >= 9;
}

}  // namespace vlm::kernels
