#pragma once

// Host half of programmatic_launch.cuh, without CUDA headers.
namespace vlm::kernels {

// Whether kernels launched with launch_kernel() on `device` start before the previous kernel ends:
// compute capability 9.0 or later and not turned off.
bool programmatic_launch_supported(int device);

// On by default; vlm::set_programmatic_dependent_launch (vlm/runtime.h) is the public switch.
void set_programmatic_launch_enabled(bool enabled);
bool programmatic_launch_enabled();

}  // namespace vlm::kernels
