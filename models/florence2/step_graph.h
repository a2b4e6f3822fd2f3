#pragma once

#include <functional>
#include <memory>
#include <string>

namespace vlm::florence2 {

// A decode step captured once as a CUDA graph and replayed: at batch 1 a step is a few hundred small
// kernels whose launches, not their work, set its time. This is the decoder's only CUDA-specific code.
class StepGraph {
 public:
  StepGraph();
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Runs `prepare` and then captures `step` on a side stream of the current CUDA device. `prepare`
  // must run one step eagerly (so that cuBLAS workspaces, autotuned kernels and the like exist before
  // capture, which may not create them) and then restore the state the step starts from. Returns
  // the reason when capture failed, after which replay() must not be called; empty on success.
  std::string capture(const std::function<void()>& prepare, const std::function<void()>& step);
  bool captured() const;
  // Launches the captured step on the current stream.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlm::florence2
