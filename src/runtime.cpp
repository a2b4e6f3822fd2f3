#include "vlm/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "vlm/ops/attention.h"

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

}  // namespace vlm
