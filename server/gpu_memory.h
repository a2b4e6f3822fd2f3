#pragma once

#include <optional>
#include <string>

namespace vlm::server {

struct GpuMemory {
  long long used_bytes = 0;
  long long total_bytes = 0;
};
// Memory of the CUDA device named by `device` ("cuda", "cuda:1"); nullopt on CPU or without CUDA.
std::optional<GpuMemory> gpu_memory(const std::string& device);

}  // namespace vlm::server
