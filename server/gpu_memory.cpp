#include "gpu_memory.h"

#ifdef VLM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace vlm::server {

std::optional<GpuMemory> gpu_memory(const std::string& device) {
#ifdef VLM_WITH_CUDA
  if (!device.starts_with("cuda")) return std::nullopt;
  const int index = device.size() > 5 ? std::stoi(device.substr(5)) : 0;
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return std::nullopt;
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  const bool ok = cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  cudaSetDevice(previous);
  if (!ok) return std::nullopt;
  return GpuMemory{static_cast<long long>(total_bytes - free_bytes), static_cast<long long>(total_bytes)};
#else
  (void)device;
  return std::nullopt;
#endif
}

}  // namespace vlm::server
