#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace vlm::florence2::bench {

// One name's share of the profiled steps: a kernel (or memcpy/memset) on a CUDA device, a host op
// (its self time) on the CPU, a decoder part, or a host CUDA API call.
struct ProfileRow {
  std::string name;
  double calls = 0;  // over all profiled steps
  double us = 0;     // over all profiled steps
};

// What libtorch's Kineto profiler recorded over `steps` decode steps.
struct StepProfile {
  int steps = 0;
  bool on_device = false;         // rows are CUDA device activities, else host ops
  std::vector<ProfileRow> rows;   // per kernel (CUDA) or per host op, self time (CPU)
  std::vector<ProfileRow> parts;  // the same time per decoder part (the decoder's record_function scopes)
  std::vector<ProfileRow> api;    // host CUDA runtime and driver calls, per name (CUDA only)
  double kernels = 0;             // device activities per kind, over all steps (CUDA only)
  double memcpys = 0;
  double memsets = 0;
  int invalid = 0;     // device activities CUPTI gave invalid timestamps, left out
  double wall_us = 0;  // of the profiled steps, the profiler running
};

// Runs `step` `steps` times under the Kineto profiler (CPU activities, and CUDA ones on a CUDA
// device), synchronised before and after, and sums what it recorded per name and per decoder part.
StepProfile profile_steps(const c10::Device& device, int steps, const std::function<void()>& step);

// Prints `profile` as tables under `title`: per kernel or op, calls and time per step and share of
// the total (the shares sum to 100%), the host API calls and device activities per step on CUDA,
// and, with `with_parts`, the same time per decoder part. `wall_ms` is the step's wall time
// measured without the profiler.
void print_profile(std::ostream& out, const std::string& title, const StepProfile& profile, double wall_ms,
                   bool with_parts);

}  // namespace vlm::florence2::bench
