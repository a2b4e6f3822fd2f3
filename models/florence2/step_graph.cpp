#include "step_graph.h"

#if VLM_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vlm::florence2 {

#if VLM_WITH_CUDA

struct StepGraph::Impl {
  // Made by capture(): constructing a CUDAGraph initialises CUDA, which a CPU-only run must not need.
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  bool captured = false;
};

StepGraph::StepGraph() : impl_(std::make_unique<Impl>()) {}
StepGraph::~StepGraph() = default;

std::string StepGraph::capture(const std::function<void()>& prepare, const std::function<void()>& step) {
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
  // Capture needs a stream other than the legacy default one; warm-up runs there too, so that the
  // workspaces it creates belong to the stream that is captured.
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, current.device_index());
  at::cuda::CUDAEvent inputs_ready;
  inputs_ready.record(current);
  inputs_ready.block(side);
  std::string failure;
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    bool capturing = false;
    try {
      prepare();
      impl_->graph = std::make_unique<at::cuda::CUDAGraph>();
      // Thread-local mode: other threads of the server (another model on this GPU) may keep calling
      // CUDA while this one captures.
      impl_->graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      step();
      capturing = false;
      impl_->graph->capture_end();
      impl_->captured = true;
    } catch (const std::exception& e) {
      failure = e.what();
      if (capturing) {
        // Ends the stream capture and the allocator's routing to the graph's pool; the capture is
        // already invalid, so its own error is expected and dropped.
        try {
          impl_->graph->capture_end();
        } catch (const std::exception&) {
        }
      }
      (void)cudaGetLastError();
      impl_->captured = false;
    }
  }
  at::cuda::CUDAEvent side_done;
  side_done.record(side);
  side_done.block(current);
  const auto line = failure.find('\n');
  return line == std::string::npos ? failure : failure.substr(0, line);
}

bool StepGraph::captured() const { return impl_->captured; }

void StepGraph::replay() { impl_->graph->replay(); }

#else

struct StepGraph::Impl {};

StepGraph::StepGraph() = default;
StepGraph::~StepGraph() = default;

std::string StepGraph::capture(const std::function<void()>& /*prepare*/, const std::function<void()>& /*step*/) {
  return "this build has no CUDA";
}

bool StepGraph::captured() const { return false; }

void StepGraph::replay() {}

#endif

}  // namespace vlm::florence2
