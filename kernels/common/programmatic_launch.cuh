#pragma once

// Programmatic dependent launch (compute capability 9.0+): a kernel launched with launch_kernel() may
// start while the kernel before it in the stream is still running, so its launch and its prologue
// (loading weights) overlap that kernel's tail. Decode steps are chains of ~100 kernels of a few
// microseconds each, bound by exactly that latency.
//
// A kernel launched this way keeps three rules:
//  1. Before grid_dependency_wait() it reads only memory that the kernel just before it in the stream
//     does not write (weights, keys and values of earlier steps), and it writes nothing.
//  2. It calls allow_dependent_launch() only after grid_dependency_wait(): a kernel started early by
//     it then overlaps this kernel alone, never one further back, so rule 1 holds for it too.
//  3. Its file is compiled with sm_90 code (vlm_programmatic_launch_sources() in CMake, which defines
//     VLM_PROGRAMMATIC_LAUNCH_CODE). compute_80 PTX has no griddepcontrol: a kernel from it would
//     skip the wait and race, so launch_kernel() does not compile without that code.
// griddepcontrol.wait returns once the grids this one depends on have completed and their memory is
// visible, whether or not they ever called launch_dependents; on other GPUs both calls are no-ops.
#include <cuda_runtime.h>

#include <utility>

#include "common/programmatic_launch.h"

namespace vlm::kernels {

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

#ifndef VLM_PROGRAMMATIC_LAUNCH_CODE
#error "kernels launched with launch_kernel() need sm_90 code: add the file to vlm_programmatic_launch_sources()"
#endif

// Launches `kernel` on `stream`, programmatically dependent on the previous kernel where `device`
// supports it and it is on (programmatic_dependent_launch()). Returns the launch's status.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(int device, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                          cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  if (programmatic_launch_supported(device)) {
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace vlm::kernels
