#pragma once

#include <string>

#include <c10/core/Device.h>

namespace vlm {

// "cpu", "cuda" or "cuda:N" to a device that exists here; throws kInvalidArgument for malformed names
// and kUnavailable when CUDA is asked for but absent.
c10::Device parse_device(const std::string& name);

// Waits for queued device work, so timings measure the work and not its launch.
void synchronize(const c10::Device& device);

}  // namespace vlm
