#pragma once

#include <functional>
#include <memory>
#include <string>

namespace vlm {

// Work captured once as a CUDA graph and replayed: a Florence-2 decode step or a YOLO forward pass at
// small batches is hundreds of small kernels whose launches, not their work, set its time. The one
// place that talks to CUDA graphs; a build without CUDA compiles it to "never captured".
class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Runs `prepare` and then captures `work` on a side stream of the current CUDA device. `prepare`
  // must run the work once eagerly (so that cuBLAS workspaces, autotuned kernels and the like exist
  // before capture, which may not create them) and then restore the state the work starts from.
  // With `share_pool_with` (an already captured graph), this graph's memory comes from that graph's
  // pool: safe only when the two are never replayed at the same time and every tensor either one
  // hands out stays referenced while it is read. Returns the reason when capture failed, after which
  // replay() must not be called; empty on success.
  std::string capture(const std::function<void()>& prepare, const std::function<void()>& work,
                      const CudaGraph* share_pool_with = nullptr);
  bool captured() const;
  // Launches the captured work on the current stream.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlm
