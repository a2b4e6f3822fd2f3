#include "vlm/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "vlm/ops/attention.h"

#if VLM_WITH_CUDA
#include "common/programmatic_launch.h"
#endif

namespace vlm {

void set_cpu_threads(int threads) { at::set_num_threads(threads); }

void require_exact_float32() {
  // libtorch 2.9+ keeps per-op precisions; the legacy allow_tf32 flags do not reach every path.
  auto& context = at::globalContext();
  for (auto op : {at::Float32Op::CONV, at::Float32Op::MATMUL, at::Float32Op::RNN}) {
    context.setFloat32Precision(at::Float32Backend::CUDA, op, at::Float32Precision::IEEE);
  }
  context.setAllowTF32CuDNN(false);
  context.setAllowTF32CuBLAS(false);
}

void set_default_attention_backend_by_name(std::string_view name) {
  set_default_attention_backend(parse_attention_backend(name));
}

void set_programmatic_dependent_launch([[maybe_unused]] bool enabled) {
#if VLM_WITH_CUDA
  kernels::set_programmatic_launch_enabled(enabled);
#endif
}

bool programmatic_dependent_launch() {
#if VLM_WITH_CUDA
  return kernels::programmatic_launch_enabled();
#else
  return false;
#endif
}

}  // namespace vlm
