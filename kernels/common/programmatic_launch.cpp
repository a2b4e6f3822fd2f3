#include "common/programmatic_launch.h"

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>

namespace vlm::kernels {
namespace {
std::atomic<bool> g_enabled{true};
}  // namespace

void set_programmatic_launch_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }
bool programmatic_launch_enabled() { return g_enabled.load(std::memory_order_relaxed); }

bool programmatic_launch_supported(int device) {
  if (!g_enabled.load(std::memory_order_relaxed)) return false;
  // 0: not asked yet, 1: no, 2: yes. Racing first callers both ask the driver and agree.
  static std::array<std::atomic<int>, 64> known{};
  if (device < 0 || device >= static_cast<int>(known.size())) return false;
  int state = known[device].load(std::memory_order_relaxed);
  if (state == 0) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      major = 0;
    }
    state = major >= 9 ? 2 : 1;
    known[device].store(state, std::memory_order_relaxed);
  }
  return state == 2;
}

}  // namespace vlm::kernels
