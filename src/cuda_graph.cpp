#include "vlm/cuda_graph.h"

#if VLM_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vlm {

#if VLM_WITH_CUDA

struct CudaGraph::Impl {
  // Made by capture(): constructing a CUDAGraph initialises CUDA, which a CPU-only run must not need.
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  bool captured = false;
};

CudaGraph::CudaGraph() : impl_(std::make_unique<Impl>()) {}
CudaGraph::~CudaGraph() = default;

std::string CudaGraph::capture(const std::function<void()>& prepare, const std::function<void()>& work,
                               const CudaGraph* share_pool_with) {
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
      const at::cuda::MempoolId_t pool = share_pool_with != nullptr && share_pool_with->captured()
                                             ? share_pool_with->impl_->graph->pool()
                                             : at::cuda::MempoolId_t{0, 0};
      impl_->graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      work();
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

bool CudaGraph::captured() const { return impl_->captured; }

void CudaGraph::replay() { impl_->graph->replay(); }

#else

struct CudaGraph::Impl {};

CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;

std::string CudaGraph::capture(const std::function<void()>& /*prepare*/, const std::function<void()>& /*work*/,
                               const CudaGraph* /*share_pool_with*/) {
  return "this build has no CUDA";
}

bool CudaGraph::captured() const { return false; }

void CudaGraph::replay() {}

#endif

}  // namespace vlm
